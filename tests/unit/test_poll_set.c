/*
 * test_poll_set.c - the poller's seen-tags file
 * (webhook-server/poll_set.c): parsing hostile text, the round trip
 * through the file, and what counts as seen.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include "rm_rf.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "poll_set.h"

#define OID_A "1111111111111111111111111111111111111111"
#define OID_B "bbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbb"

static char dir[] = "/tmp/te-pollset.XXXXXX";

static int setup(void **state)
{
	(void)state;
	assert_non_null(mkdtemp(dir));
	return 0;
}

static int teardown(void **state)
{
	(void)state;
	rm_rf(dir);
	return 0;
}

static int parse(te_strvec *names, te_strvec *commits, const char *text,
                 te_error *err)
{
	return ts_poll_set_parse(names, commits, text, strlen(text), err);
}

static void test_parse(void **state)
{
	te_strvec names = TE_STRVEC_INIT, commits = TE_STRVEC_INIT;
	te_error err = TE_ERROR_INIT;

	(void)state;
	assert_int_equal(parse(&names, &commits,
	                       OID_A " v1.0.0\n" OID_B " release/2\n", &err),
	                 0);
	assert_int_equal(names.count, 2);
	assert_string_equal(names.items[1], "release/2");
	assert_string_equal(commits.items[1], OID_B);
	ts_poll_set_sort(&names, &commits);
	assert_string_equal(names.items[0], "release/2");
	assert_string_equal(commits.items[0], OID_B);
	assert_true(ts_poll_set_has(&names, &commits, "v1.0.0", OID_A));
	/* the same name at another commit: a moved tag, not seen */
	assert_false(ts_poll_set_has(&names, &commits, "v1.0.0", OID_B));
	assert_false(ts_poll_set_has(&names, &commits, "v9", OID_A));
	te_strvec_dispose(&names);
	te_strvec_dispose(&commits);
	assert_int_equal(parse(&names, &commits, "", &err), 0);
	assert_int_equal(names.count, 0);
}

static void test_parse_hostile(void **state)
{
	static const char *bad[] = {
	    OID_A " v1",  /* no final newline: cut */
	    OID_A "v1\n", /* no space */
	    OID_A " \n",  /* no name */
	    "111 v1\n",   /* short commit */
	    "ABCDEF1111111111111111111111111111111111 v1\n", /* upper */
	    OID_A " -v1\n", /* not a tag name */
	    OID_A " a..b\n",
	    OID_A " ../../etc/passwd\n",
	    OID_A " v1\tx\n",
	    "\n",
	    NULL};
	te_strvec names = TE_STRVEC_INIT, commits = TE_STRVEC_INIT;
	size_t i;

	(void)state;
	for (i = 0; bad[i]; i++) {
		te_error err = TE_ERROR_INIT;
		assert_int_equal(parse(&names, &commits, bad[i], &err),
		                 TE_EINVALID);
		assert_non_null(strstr(err.msg, "poll set"));
		te_strvec_dispose(&names);
		te_strvec_dispose(&commits);
	}
	{
		/* an embedded NUL never passes as the end of a name */
		static const char nul[] = OID_A " v1\0x\n";
		te_error err = TE_ERROR_INIT;
		assert_int_equal(ts_poll_set_parse(&names, &commits, nul,
		                                   sizeof(nul) - 1, &err),
		                 TE_EINVALID);
		te_strvec_dispose(&names);
		te_strvec_dispose(&commits);
	}
}

static void test_parse_bounded(void **state)
{
	te_buf text = TE_BUF_INIT(SIZE_MAX - 1);
	te_strvec names = TE_STRVEC_INIT, commits = TE_STRVEC_INIT;
	te_error err = TE_ERROR_INIT;
	int i;

	(void)state;
	for (i = 0; i <= TS_POLL_TAGS_MAX; i++)
		assert_int_equal(te_buf_printf(&text, NULL, OID_A " t%d\n", i),
		                 0);
	assert_int_equal(
	    ts_poll_set_parse(&names, &commits, text.ptr, text.len, &err),
	    TE_EINVALID);
	assert_non_null(strstr(err.msg, "more than"));
	te_strvec_dispose(&names);
	te_strvec_dispose(&commits);
	te_buf_dispose(&text);
}

static void test_save_load(void **state)
{
	te_strvec names = TE_STRVEC_INIT, commits = TE_STRVEC_INIT;
	te_strvec n2 = TE_STRVEC_INIT, c2 = TE_STRVEC_INIT;
	te_error err = TE_ERROR_INIT;
	char sub[256], path[320];
	bool found = true;
	struct stat st;

	(void)state;
	snprintf(sub, sizeof(sub), "%s/poll", dir);
	/* never polled: not found, not an error */
	assert_int_equal(ts_poll_set_load(&n2, &c2, &found, sub, "shop", &err),
	                 0);
	assert_false(found);
	assert_int_equal(te_strvec_push(&names, "v1.0.0", NULL), 0);
	assert_int_equal(te_strvec_push(&commits, OID_A, NULL), 0);
	assert_int_equal(te_strvec_push(&names, "v2", NULL), 0);
	assert_int_equal(te_strvec_push(&commits, OID_B, NULL), 0);
	assert_int_equal(ts_poll_set_save(sub, "shop", &names, &commits, &err),
	                 0);
	snprintf(path, sizeof(path), "%s/shop.tags", sub);
	assert_int_equal(stat(path, &st), 0);
	assert_int_equal(st.st_mode & 0777, 0600);
	snprintf(path, sizeof(path), "%s/shop.tags.tmp.%ld", sub,
	         (long)getpid());
	assert_int_not_equal(access(path, F_OK), 0);
	assert_int_equal(ts_poll_set_load(&n2, &c2, &found, sub, "shop", &err),
	                 0);
	assert_true(found);
	assert_int_equal(n2.count, 2);
	assert_true(ts_poll_set_has(&n2, &c2, "v2", OID_B));
	te_strvec_dispose(&n2);
	te_strvec_dispose(&c2);
	/* replaced as a whole; an empty set is a set (polled, no tags) */
	te_strvec_dispose(&names);
	te_strvec_dispose(&commits);
	assert_int_equal(ts_poll_set_save(sub, "shop", &names, &commits, &err),
	                 0);
	assert_int_equal(ts_poll_set_load(&n2, &c2, &found, sub, "shop", &err),
	                 0);
	assert_true(found);
	assert_int_equal(n2.count, 0);
}

static void test_load_corrupt(void **state)
{
	te_strvec names = TE_STRVEC_INIT, commits = TE_STRVEC_INIT;
	te_error err = TE_ERROR_INIT;
	char path[300];
	bool found;
	FILE *f;

	(void)state;
	snprintf(path, sizeof(path), "%s/bad.tags", dir);
	f = fopen(path, "w");
	assert_non_null(f);
	fputs(OID_A " v1\nnot a line\n", f);
	fclose(f);
	assert_int_equal(
	    ts_poll_set_load(&names, &commits, &found, dir, "bad", &err),
	    TE_EINVALID);
	/* the error names the file and the line */
	assert_non_null(strstr(err.msg, "bad.tags"));
	assert_non_null(strstr(err.msg, "line 2"));
	te_strvec_dispose(&names);
	te_strvec_dispose(&commits);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_parse),
	    cmocka_unit_test(test_parse_hostile),
	    cmocka_unit_test(test_parse_bounded),
	    cmocka_unit_test(test_save_load),
	    cmocka_unit_test(test_load_corrupt),
	};
	return cmocka_run_group_tests(tests, setup, teardown);
}
