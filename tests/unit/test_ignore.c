#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "tagexport/buf.h"
#include "tagexport/ignore.h"

static te_ignore *parse_ok(const char *text)
{
	te_ignore *ig = NULL;
	te_error err = TE_ERROR_INIT;
	int rc = te_ignore_parse(&ig, text, strlen(text), &err);

	if (rc != 0)
		fail_msg("unexpected error %d: %s", rc, err.msg);
	assert_non_null(ig);
	return ig;
}

struct want {
	const char *path;
	bool excluded;
};

static void check(const char *rules, const struct want *w)
{
	te_ignore *ig = parse_ok(rules);

	for (; w->path; w++)
		if (te_ignore_match(ig, w->path) != w->excluded)
			fail_msg("%s: want %d", w->path, w->excluded);
	te_ignore_free(ig);
}

static void basics(void **state)
{
	static const struct want w[] = {
	    {"x.log", true},        {"a/b/c.log", true},  {"keep.log", false},
	    {"sub/keep.log", true}, {"notes.txt", false}, {"log", false},
	    {"a.log.txt", false},   {NULL, false},
	};

	(void)state;
	check("# comment\n**/*.log\n!keep.log\n", w);
}

static void directories(void **state)
{
	static const struct want w[] = {
	    {"node_modules", true},
	    {"node_modules/a/b.js", true},
	    {"x/node_modules/y", false},
	    {"build", true},
	    {"build/out/bin", true},
	    {"builder", false},
	    {"docs", false},
	    {"docs/a", true},
	    {"docs/a/b", true},
	    {"tmp/cache/x", true},
	    {"tmp/other", true},
	    {"tmp", false},
	    {NULL, false},
	};

	(void)state;
	check("node_modules\n/build/\ndocs/**\ntmp/*/\n", w);
}

static void wildcards(void **state)
{
	static const struct want w[] = {
	    {"a.md", true},    {"README.md", false}, {"dir/a.md", false},
	    {"f1", true},      {"f12", false},       {"ab/x/y/cd", true},
	    {"ab/cd", true},   {"abcd", false},      {"v1.txt", true},
	    {"vx.txt", false}, {"a+b(1)", true},     {"[x]", false},
	    {"*star", true},   {"xstar", false},     {NULL, false},
	};

	(void)state;
	check("*.md\n!README.md\nf?\nab/**/cd\nv[0-9].txt\na+b(1)\n\\*star\n",
	      w);
}

static void last_match_wins(void **state)
{
	static const struct want w[] = {
	    {"a/b", false},
	    {"a/c", true},
	    {"a/b/deep", false},
	    {NULL, false},
	};
	static const struct want w2[] = {
	    {"a/b", true},
	    {"a/c", true},
	    {NULL, false},
	};

	(void)state;
	check("a\n!a/b\n", w);
	check("!a/b\na\n", w2);
}

static void cleaning(void **state)
{
	static const struct want w[] = {
	    {"a/c", true},    {"b", true},   {"./b", true},
	    {"b/x", true},    {"d/e", true}, {"#hash", true},
	    {"spaced", true}, {"x", false},  {NULL, false},
	};

	(void)state;
	/* "  spaced  " is trimmed; " #hash" is a pattern, not a comment;
	 * "/b" is anchored at the root like "b"; "a/./x/../c" is cleaned */
	check("a/./x/../c\n/b\n\td//e/ \n #hash\n  spaced  \r\n\n", w);
}

static void everything_then_keep(void **state)
{
	static const struct want w[] = {
	    {"Dockerfile", false}, {"src/main.c", false}, {"src", false},
	    {"other/x", true},     {"README", true},      {NULL, false},
	};

	(void)state;
	check("*\n!Dockerfile\n!src\n", w);
	check("**\n!Dockerfile\n!src/**\n!src\n", w);
}

static void errors_and_limits(void **state)
{
	te_ignore *ig = NULL;
	te_error err = TE_ERROR_INIT;
	te_buf big = TE_BUF_INIT(2 * 1024 * 1024);
	int i;

	(void)state;
	assert_int_equal(te_ignore_parse(&ig, "a\n!\n", 4, &err), TE_EINVALID);
	assert_non_null(strstr(err.msg, "illegal exclusion pattern"));
	assert_null(ig);

	te_error_clear(&err);
	assert_int_equal(te_ignore_parse(&ig, "[a\n", 3, &err), TE_EINVALID);
	assert_non_null(strstr(err.msg, "syntax error in pattern"));

	te_error_clear(&err);
	for (i = 0; i < 10001; i++)
		assert_int_equal(te_buf_printf(&big, &err, "p%d\n", i), 0);
	assert_int_equal(te_ignore_parse(&ig, big.ptr, big.len, &err),
	                 TE_EINVALID);
	assert_non_null(strstr(err.msg, "more than 10000 patterns"));

	te_error_clear(&err);
	te_buf_clear(&big);
	for (i = 0; i < 1024 * 1024 + 1; i++)
		assert_int_equal(te_buf_put(&big, "#", 1, &err), 0);
	assert_int_equal(te_ignore_parse(&ig, big.ptr, big.len, &err),
	                 TE_EINVALID);
	assert_non_null(strstr(err.msg, "1 MiB"));
	te_buf_dispose(&big);

	/* empty file and NULL handle never exclude */
	te_error_clear(&err);
	assert_int_equal(te_ignore_parse(&ig, "", 0, &err), 0);
	assert_false(te_ignore_match(ig, "a"));
	te_ignore_free(ig);
	assert_false(te_ignore_match(NULL, "a"));
}

static void classes(void **state)
{
	static const struct want w[] = {
	    {"bx", true},  {"ax", false}, {"]y", true},  {"ay", true},
	    {"by", false}, {"c1", true},  {"d1", false}, {"]z", true},
	    {"!w", true},  {"bw", false}, {NULL, false},
	};

	(void)state;
	/* filepath.Match: '^' negates, a leading ']' is a member, '\\'
	 * quotes, ranges; '!' is an ordinary member */
	check("[^a]x\n[]a]y\n[a-c]1\n[\\]]z\n[!]w\n", w);
}

/* Runs of "**" and "*" mean what they meant as regular expressions. */
static void wildcard_runs(void **state)
{
	static const struct want w[] = {
	    {"x", true},       {"a/x", true},         {"a/b/x", true},
	    {"ax", false},     {"k/a", true},         {"k/a/b/c", true},
	    {"k", false},      {"m/anything", false}, {"m/a/b", true},
	    {"mz/q/r", false}, {NULL, false},
	};

	(void)state;
	check("**/**/**/x\nk/***\nm/**/*/**/*\n", w);
}

/* Fuzzer find (tests/fuzz/regressions/ignore, regenerated here): lines of
 * thousands of "**\/" took glibc's regcomp gigabytes.  Now a line that
 * long is refused, and the longest allowed ones are cheap. */
static void fuzz_regressions(void **state)
{
	te_buf text = TE_BUF_INIT(2 * 1024 * 1024);
	te_error err = TE_ERROR_INIT;
	te_ignore *ig = NULL;
	bool excluded = true;
	char *path;
	int i, j;

	(void)state;
	/* oom-dstar-10lines */
	for (i = 0; i < 10; i++) {
		for (j = 0; j < 3000; j++)
			assert_int_equal(te_buf_puts(&text, "**/", &err), 0);
		assert_int_equal(te_buf_puts(&text, "x\n", &err), 0);
	}
	assert_int_equal(te_ignore_parse(&ig, text.ptr, text.len, &err),
	                 TE_EINVALID);
	assert_non_null(strstr(err.msg, "longer than 4096 bytes"));
	assert_null(ig);

	/* 1 MiB of the longest such lines allowed */
	te_buf_clear(&text);
	te_error_clear(&err);
	for (i = 0; i < 250; i++) {
		for (j = 0; j < (TE_IGNORE_MAX_LINE - 1) / 3; j++)
			assert_int_equal(te_buf_puts(&text, "**/", &err), 0);
		assert_int_equal(te_buf_puts(&text, "x\n", &err), 0);
	}
	assert_int_equal(te_ignore_parse(&ig, text.ptr, text.len, &err), 0);
	assert_true(te_ignore_match(ig, "x"));
	assert_true(te_ignore_match(ig, "a/b/x"));
	assert_true(te_ignore_match(ig, "a/x/b"));
	assert_false(te_ignore_match(ig, "a/y"));
	te_ignore_free(ig);

	/* a line of exactly TE_IGNORE_MAX_LINE bytes is fine */
	te_buf_clear(&text);
	for (i = 0; i < TE_IGNORE_MAX_LINE; i++)
		assert_int_equal(te_buf_puts(&text, "a", &err), 0);
	assert_int_equal(te_ignore_parse(&ig, text.ptr, text.len, &err), 0);
	te_ignore_free(ig);

	/* patterns that keep thousands of states alive run out of steps
	 * on a long path, and say so */
	te_buf_clear(&text);
	for (i = 0; i < 250; i++) {
		for (j = 0; j < TE_IGNORE_MAX_LINE / 2; j++)
			assert_int_equal(te_buf_puts(&text, "*a", &err), 0);
		assert_int_equal(te_buf_puts(&text, "\n", &err), 0);
	}
	assert_int_equal(te_ignore_parse(&ig, text.ptr, text.len, &err), 0);
	assert_int_equal(te_ignore_check(&excluded, ig, "aaaa", &err), 0);
	assert_false(excluded);
	path = malloc(2001);
	assert_non_null(path);
	memset(path, 'a', 2000);
	path[2000] = '\0';
	assert_int_equal(te_ignore_check(&excluded, ig, path, &err),
	                 TE_EINVALID);
	assert_non_null(strstr(err.msg, "more than 4194304 steps"));
	assert_false(excluded);
	assert_false(te_ignore_match(ig, path));
	free(path);
	te_ignore_free(ig);
	te_buf_dispose(&text);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(basics),
	    cmocka_unit_test(directories),
	    cmocka_unit_test(wildcards),
	    cmocka_unit_test(last_match_wins),
	    cmocka_unit_test(cleaning),
	    cmocka_unit_test(everything_then_keep),
	    cmocka_unit_test(errors_and_limits),
	    cmocka_unit_test(classes),
	    cmocka_unit_test(wildcard_runs),
	    cmocka_unit_test(fuzz_regressions),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
