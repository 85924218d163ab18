#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "tagexport/apiclient.h"

static int parse(te_api_reply *r, long status, const char *body, te_error *err)
{
	return te_api_parse_reply(r, status, body, body ? strlen(body) : 0,
	                          err);
}

static void test_queued(void **state)
{
	te_error err = TE_ERROR_INIT;
	te_api_reply r;

	(void)state;
	assert_int_equal(
	    parse(&r, 202, "{\"job\":\"42\",\"status\":\"queued\"}\n", &err),
	    0);
	assert_true(r.queued);
	assert_string_equal(r.job, "42");
	assert_string_equal(r.status, "queued");
	/* A duplicate answers with the existing job's state. */
	assert_int_equal(parse(&r, 202,
	                       "{\"job\":\"7\",\"status\":\"running\","
	                       "\"duplicate\":true}",
	                       &err),
	                 0);
	assert_string_equal(r.status, "running");
}

static void test_ignored(void **state)
{
	te_error err = TE_ERROR_INIT;
	te_api_reply r;

	(void)state;
	assert_int_equal(parse(&r, 200, "{\"ignored\":\"tag filtered\"}", &err),
	                 0);
	assert_false(r.queued);
	assert_string_equal(r.ignored, "tag filtered");
}

static void test_errors(void **state)
{
	te_error err = TE_ERROR_INIT;
	te_api_reply r;

	(void)state;
	assert_int_equal(parse(&r, 401, "{\"error\":\"unauthorized\"}", &err),
	                 TE_EAUTH);
	assert_non_null(strstr(err.msg, "401: unauthorized"));
	te_error_clear(&err);
	assert_int_equal(
	    parse(&r, 404, "{\"error\":\"unknown project\"}", &err),
	    TE_EINVALID);
	assert_string_equal(err.msg, "server answered 404: unknown project");
	te_error_clear(&err);
	assert_int_equal(parse(&r, 503, "<html>", &err), TE_ENET);
	assert_string_equal(err.msg, "server answered 503: no error message");
	te_error_clear(&err);
	/* 202 without a job id, 200 without a reason. */
	assert_int_equal(parse(&r, 202, "{}", &err), TE_EINVALID);
	te_error_clear(&err);
	assert_int_equal(parse(&r, 200, NULL, &err), TE_EINVALID);
	te_error_clear(&err);
}

static void test_hostile_text(void **state)
{
	te_error err = TE_ERROR_INIT;
	te_api_reply r;

	(void)state;
	/* Escape sequences from the server never reach the terminal. */
	assert_int_equal(parse(&r, 202,
	                       "{\"job\":\"4\\u001b[2J2\",\"status\":\"q\\n\"}",
	                       &err),
	                 0);
	assert_string_equal(r.job, "4?[2J2");
	assert_string_equal(r.status, "q?");
	assert_int_equal(
	    parse(&r, 400, "{\"error\":\"bad\\r\\nforged line\"}", &err),
	    TE_EINVALID);
	assert_null(strchr(err.msg, '\n'));
	assert_null(strchr(err.msg, '\r'));
}

static void test_submit_arguments(void **state)
{
	te_api_opts o = TE_API_OPTS_INIT;
	te_error err = TE_ERROR_INIT;
	te_api_reply r;
	const char *c = "0123456789abcdef0123456789abcdef01234567";

	(void)state;
	o.server = "ftp://x";
	o.token_file = "/nonexistent";
	assert_int_equal(te_api_submit_export(&r, &o, "p", "v1", c, &err),
	                 TE_EINVALID);
	te_error_clear(&err);
	o.server = "http://127.0.0.1:1";
	assert_int_equal(te_api_submit_export(&r, &o, "p", "-rf", c, &err),
	                 TE_EINVALID);
	te_error_clear(&err);
	assert_int_equal(te_api_submit_export(&r, &o, "../p", "v1", c, &err),
	                 TE_EINVALID);
	te_error_clear(&err);
	assert_int_equal(te_api_submit_export(&r, &o, "p", "v1", "HEAD", &err),
	                 TE_EINVALID);
	te_error_clear(&err);
	/* The token file is read before anything is sent. */
	assert_int_equal(te_api_submit_export(&r, &o, "p", "v1", c, &err),
	                 TE_EIO);
	assert_non_null(strstr(err.msg, "/nonexistent"));
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_queued),
	    cmocka_unit_test(test_ignored),
	    cmocka_unit_test(test_errors),
	    cmocka_unit_test(test_hostile_text),
	    cmocka_unit_test(test_submit_arguments),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
