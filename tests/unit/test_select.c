#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdbool.h>
#include <string.h>

#include "tagexport/select.h"

static const char *names[] = {"backend", "frontend", "db",
                              "app1",    "app2",     "tools/cli"};
#define NNAMES (sizeof(names) / sizeof(names[0]))

/* want: a string of '1'/'0' per name */
static void sel(const char *const *patterns, size_t n, const char *want)
{
	te_error err = TE_ERROR_INIT;
	bool selected[NNAMES];
	char got[NNAMES + 1];
	size_t i;

	if (te_select_images(selected, names, NNAMES, patterns, n, &err) != 0)
		fail_msg("%s", err.msg);
	for (i = 0; i < NNAMES; i++)
		got[i] = selected[i] ? '1' : '0';
	got[NNAMES] = '\0';
	assert_string_equal(got, want);
}

static void sel_fails(const char *const *patterns, size_t n, const char *msg)
{
	te_error err = TE_ERROR_INIT;
	bool selected[NNAMES];
	size_t i;

	assert_int_equal(
	    te_select_images(selected, names, NNAMES, patterns, n, &err),
	    TE_EINVALID);
	assert_string_equal(err.msg, msg);
	for (i = 0; i < NNAMES; i++)
		assert_false(selected[i]);
}

static void no_patterns_select_all(void **state)
{
	(void)state;
	sel(NULL, 0, "111111");
}

static void globs(void **state)
{
	const char *p1[] = {"app*"};
	const char *p2[] = {"backend", "db"};
	const char *p3[] = {"*"};
	const char *p4[] = {"tools/*"};
	const char *p5[] = {"app[12]"};
	const char *p6[] = {"app[^1]"};
	const char *p7[] = {"?b"};
	const char *p8[] = {"*end"};
	const char *p9[] = {"[a-c]*"};
	const char *p10[] = {"tools[/]cli"}; /* a class may match '/' */
	const char *p11[] = {"*/cli"};
	const char *p12[] = {"\\db"};
	const char *p13[] = {"*e*d"};

	(void)state;
	sel(p1, 1, "000110");
	sel(p2, 2, "101000");
	sel(p3, 1, "111110"); /* '*' does not cross '/' */
	sel(p4, 1, "000001");
	sel(p5, 1, "000110");
	sel(p6, 1, "000010");
	sel(p7, 1, "001000");
	sel(p8, 1, "110000");
	sel(p9, 1, "100110");
	sel(p10, 1, "000001");
	sel(p11, 1, "000001");
	sel(p12, 1, "001000");
	sel(p13, 1, "110000");
}

static void excludes(void **state)
{
	const char *p1[] = {"!app*"};
	const char *p2[] = {"app*", "!app2"};
	const char *p3[] = {"app2", "!app*"}; /* verbatim include survives */
	const char *p4[] = {"!*", "db"};
	const char *p5[] = {"!nomatch"};
	const char *p6[] = {"!*/*"};

	(void)state;
	sel(p1, 1, "111001");
	sel(p2, 2, "000100");
	sel(p3, 2, "000010");
	sel(p4, 2, "001000");
	sel(p5, 1, "111111");
	sel(p6, 1, "111110");
}

static void errors(void **state)
{
	const char *p1[] = {"nothing*"};
	const char *p2[] = {"**"};
	const char *p3[] = {"app*", "!tools/**"};
	const char *p4[] = {"a$b"};
	const char *p5[] = {"a&b"};
	const char *p6[] = {"a|b"};
	const char *p7[] = {"[invalid"};
	const char *p8[] = {"!app[", "db"};
	const char *p9[] = {"db", "a\\"};
	const char *p10[] = {"x[]"};
	const char *p12[] = {"tools?cli"}; /* '?' never matches '/' */
	char long_pat[102];
	const char *p11[] = {long_pat};

	(void)state;
	sel_fails(p1, 1, "no image matches pattern \"nothing*\"");
	sel_fails(p2, 1, "recursive glob (**) not supported");
	sel_fails(p3, 2, "recursive glob (**) not supported");
	sel_fails(p4, 1, "special characters not allowed");
	sel_fails(p5, 1, "special characters not allowed");
	sel_fails(p6, 1, "special characters not allowed");
	sel_fails(p7, 1,
	          "invalid pattern \"[invalid\": syntax error in pattern");
	sel_fails(p8, 2, "invalid pattern \"app[\": syntax error in pattern");
	sel_fails(p9, 2, "invalid pattern \"a\\\\\": syntax error in pattern");
	sel_fails(p10, 1, "invalid pattern \"x[]\": syntax error in pattern");
	sel_fails(p12, 1, "no image matches pattern \"tools?cli\"");
	memset(long_pat, 'a', 101);
	long_pat[101] = '\0';
	sel_fails(p11, 1, "pattern too long");
	long_pat[100] = '\0'; /* exactly 100 is allowed */
	sel_fails(p11, 1,
	          "no image matches pattern \"aaaaaaaaaaaaaaaaaaaa"
	          "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa"
	          "aaaaaaaaaaaaaaaaaaaaaaaaaaaaa\"");
}

static void malformed_tail_reported_after_mismatch(void **state)
{
	/* Go checks the rest of the pattern even once the name mismatched */
	const char *p1[] = {"zzz*[", "db"};

	(void)state;
	sel_fails(p1, 2, "invalid pattern \"zzz*[\": syntax error in pattern");
}

static void no_images(void **state)
{
	te_error err = TE_ERROR_INIT;
	const char *p[] = {"!x"};
	const char *q[] = {"x"};
	bool dummy = true;

	(void)state;
	assert_int_equal(te_select_images(&dummy, NULL, 0, p, 1, &err), 0);
	assert_int_equal(te_select_images(&dummy, NULL, 0, q, 1, &err),
	                 TE_EINVALID);
	assert_string_equal(err.msg, "no image matches pattern \"x\"");
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(no_patterns_select_all),
	    cmocka_unit_test(globs),
	    cmocka_unit_test(excludes),
	    cmocka_unit_test(errors),
	    cmocka_unit_test(malformed_tail_reported_after_mismatch),
	    cmocka_unit_test(no_images),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
