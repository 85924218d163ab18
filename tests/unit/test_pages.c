/*
 * test_pages.c - the job pages' pure parts (webhook-server/pages_html.c):
 * HTML escaping, URL credential redaction, relative times and durations,
 * whole pages rendered from hostile job values; and Basic credentials
 * (verify.c).
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdlib.h>
#include <string.h>

#include "pages.h"
#include "verify.h"

#define NOW 1800000000

static void test_escape(void **state)
{
	te_buf out = TE_BUF_INIT(1024);

	(void)state;
	assert_int_equal(ts_html_escape(&out, "a<b>&\"c'd", NULL), 0);
	assert_string_equal(out.ptr, "a&lt;b&gt;&amp;&quot;c&#39;d");
	te_buf_clear(&out);
	assert_int_equal(ts_html_escape(&out, "", NULL), 0);
	assert_string_equal(out.ptr, "");
	assert_int_equal(ts_html_escape(&out, "plain v1.2.0 \xc3\xa9", NULL),
	                 0);
	assert_string_equal(out.ptr, "plain v1.2.0 \xc3\xa9");
	te_buf_clear(&out);
	/* Entities are escaped again, not trusted. */
	assert_int_equal(ts_html_escape(&out, "&lt;script&gt;", NULL), 0);
	assert_string_equal(out.ptr, "&amp;lt;script&amp;gt;");
	te_buf_dispose(&out);
}

static void test_escape_limit(void **state)
{
	te_buf out = TE_BUF_INIT(8);
	te_error err = TE_ERROR_INIT;

	(void)state;
	assert_true(ts_html_escape(&out, "<<<<<<", &err) < 0);
	assert_int_not_equal(err.code, TE_OK);
	te_buf_dispose(&out);
}

static void redacts(const char *in, const char *want)
{
	char *got = ts_html_redact(in);

	assert_non_null(got);
	assert_string_equal(got, want);
	free(got);
}

static void test_redact(void **state)
{
	(void)state;
	redacts("fetch https://user:tok@git.example.com/a.git failed",
	        "fetch https://***@git.example.com/a.git failed");
	/* An unencoded '@' in the secret: up to the last one. */
	redacts("https://u:p@ss@h/x", "https://***@h/x");
	redacts("ssh://git@h:22/x and http://h/y?a=b@c",
	        "ssh://***@h:22/x and http://h/y?a=b@c");
	redacts("no url here, a@b", "no url here, a@b");
	redacts("tail https://t@", "tail https://***@");
	redacts("", "");
}

static void test_relative_time(void **state)
{
	static const struct {
		int64_t ago;
		const char *want;
	} cases[] = {
	    {0, "just now"},    {4, "just now"},      {42, "42 s ago"},
	    {60, "1 min ago"},  {180, "3 min ago"},   {3599, "59 min ago"},
	    {7200, "2 h ago"},  {86400, "1 day ago"}, {3 * 86400, "3 days ago"},
	    {-180, "in 3 min"}, {-30, "in 30 s"},
	};
	char out[48];
	size_t i;

	(void)state;
	for (i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		ts_relative_time(out, sizeof(out), NOW - cases[i].ago, NOW);
		assert_string_equal(out, cases[i].want);
	}
	/* Cut, never overflowing. */
	ts_relative_time(out, 4, NOW - 180, NOW);
	assert_string_equal(out, "3 m");
}

static void test_duration_and_utc(void **state)
{
	char out[48];

	(void)state;
	ts_duration_text(out, sizeof(out), 7);
	assert_string_equal(out, "7 s");
	ts_duration_text(out, sizeof(out), 185);
	assert_string_equal(out, "3 min 05 s");
	ts_duration_text(out, sizeof(out), 7800);
	assert_string_equal(out, "2 h 10 min");
	ts_duration_text(out, sizeof(out), -5);
	assert_string_equal(out, "0 s");
	ts_utc_text(out, sizeof(out), 1800000000);
	assert_string_equal(out, "2027-01-15 08:00:00 UTC");
}

static ts_job *hostile_job(ts_job_state state)
{
	ts_job *job = calloc(1, sizeof(*job));

	assert_non_null(job);
	strcpy(job->id, "1800000000-0123abcd");
	memset(job->commit, 'a', 40);
	job->project = strdup("shop");
	job->tag = strdup("v1\"><img src=x>");
	job->source = strdup("github");
	job->state = state;
	job->attempts = 1;
	job->created_at = NOW - 300;
	job->started_at = NOW - 200;
	job->updated_at = NOW - 20;
	job->error = strdup("push to https://bob:hunter2@reg.example.com "
	                    "failed <b>");
	job->log = strdup("info: <script>alert(1)</script>\n");
	assert_int_equal(te_strvec_push(&job->results,
	                                "reg.example.com/shop/app:v1@sha256:"
	                                "0123",
	                                NULL),
	                 0);
	return job;
}

static void test_job_page(void **state)
{
	ts_job *job = hostile_job(TS_JOB_FAILED);
	te_buf out = TE_BUF_INIT(1 << 20);

	(void)state;
	assert_int_equal(ts_pages_job(&out, job, NOW, NULL), 0);
	assert_null(strstr(out.ptr, "<script>"));
	assert_null(strstr(out.ptr, "<img"));
	assert_null(strstr(out.ptr, "<b>"));
	assert_null(strstr(out.ptr, "hunter2"));
	assert_non_null(strstr(out.ptr, "&lt;script&gt;alert(1)"));
	assert_non_null(strstr(out.ptr, "v1&quot;&gt;&lt;img src=x&gt;"));
	assert_non_null(strstr(out.ptr, "st-failed"));
	assert_non_null(strstr(out.ptr, "reg.example.com/shop/app:v1@sha256:"
	                                "0123"));
	/* 180 s it ran; relative times with the exact one on hover */
	assert_non_null(strstr(out.ptr, "3 min 00 s"));
	assert_non_null(strstr(out.ptr, "title=\"2027-01-15 07:56:40 UTC\">"
	                                "3 min ago</time>"));
	assert_non_null(strstr(out.ptr, "name=\"viewport\""));
	/* finished: no refresh */
	assert_null(strstr(out.ptr, "http-equiv=\"refresh\""));
	te_buf_dispose(&out);
	ts_job_free(job);
}

static void test_running_job_refreshes(void **state)
{
	ts_job *job = hostile_job(TS_JOB_RUNNING);
	te_buf out = TE_BUF_INIT(1 << 20);

	(void)state;
	free(job->log);
	job->log = NULL;
	assert_int_equal(ts_pages_job(&out, job, NOW, NULL), 0);
	assert_non_null(strstr(out.ptr, "http-equiv=\"refresh\""));
	assert_non_null(strstr(out.ptr, "st-running"));
	/* it runs: the duration counts up to now */
	assert_non_null(strstr(out.ptr, "3 min 20 s"));
	te_buf_dispose(&out);
	ts_job_free(job);
}

static void test_list_page(void **state)
{
	ts_job *jobs[2] = {hostile_job(TS_JOB_SUCCEEDED),
	                   hostile_job(TS_JOB_QUEUED)};
	te_buf out = TE_BUF_INIT(1 << 20);

	(void)state;
	free(jobs[1]->source);
	jobs[1]->source = strdup("poll");
	jobs[1]->started_at = 0;
	assert_int_equal(ts_pages_list(&out, jobs, 2, NOW, NULL), 0);
	assert_null(strstr(out.ptr, "<img"));
	assert_non_null(strstr(out.ptr, "href=\"/jobs/1800000000-0123abcd\""));
	assert_non_null(strstr(out.ptr, ">aaaaaaa</code>"));
	assert_non_null(strstr(out.ptr, ">webhook<"));
	assert_non_null(strstr(out.ptr, ">poll<"));
	assert_non_null(strstr(out.ptr, "st-succeeded"));
	assert_non_null(strstr(out.ptr, "st-queued"));
	/* the reference, its digest on hover */
	assert_non_null(strstr(out.ptr, "<code title=\"sha256:0123\">"
	                                "reg.example.com/shop/app:v1</code>"));
	/* a queued job: the page refreshes */
	assert_non_null(strstr(out.ptr, "http-equiv=\"refresh\""));
	te_buf_clear(&out);
	assert_int_equal(ts_pages_list(&out, NULL, 0, NOW, NULL), 0);
	assert_non_null(strstr(out.ptr, "No jobs yet"));
	te_buf_dispose(&out);
	ts_job_free(jobs[0]);
	ts_job_free(jobs[1]);
}

static void test_basic_auth(void **state)
{
	static const char tok[] = "s3cret:with colon";

	(void)state;
	/* "anyone:s3cret:with colon" */
	assert_true(ts_basic_ok(tok, strlen(tok),
	                        "Basic YW55b25lOnMzY3JldDp3aXRoIGNvbG9u"));
	assert_true(ts_basic_ok(tok, strlen(tok),
	                        "basic  YW55b25lOnMzY3JldDp3aXRoIGNvbG9u"));
	/* "anyone:s3cret" */
	assert_false(
	    ts_basic_ok(tok, strlen(tok), "Basic YW55b25lOnMzY3JldA=="));
	/* no colon at all */
	assert_false(ts_basic_ok(tok, strlen(tok), "Basic czNjcmV0"));
	assert_false(ts_basic_ok(tok, strlen(tok), "Basic !!!"));
	assert_false(ts_basic_ok(tok, strlen(tok), "Bearer s3cret:with colon"));
	assert_false(ts_basic_ok(tok, strlen(tok), NULL));
	assert_false(ts_basic_ok(NULL, 0, "Basic YW55b25lOnMzY3JldA=="));
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_escape),
	    cmocka_unit_test(test_escape_limit),
	    cmocka_unit_test(test_redact),
	    cmocka_unit_test(test_relative_time),
	    cmocka_unit_test(test_duration_and_utc),
	    cmocka_unit_test(test_job_page),
	    cmocka_unit_test(test_running_job_refreshes),
	    cmocka_unit_test(test_list_page),
	    cmocka_unit_test(test_basic_auth),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
