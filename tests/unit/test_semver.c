#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <string.h>

#include "tagexport/semver.h"

static void test_parse_valid(void **state)
{
	te_error err = TE_ERROR_INIT;
	te_semver v;

	(void)state;
	assert_int_equal(te_semver_parse(&v, "v1.2.3", &err), 0);
	assert_true(v.major == 1 && v.minor == 2 && v.patch == 3);
	assert_string_equal(v.pre, "");
	assert_string_equal(v.build, "");

	assert_int_equal(te_semver_parse(&v, "1.2.3", &err), 0);
	assert_true(v.major == 1 && v.minor == 2 && v.patch == 3);

	assert_int_equal(te_semver_parse(&v, "1.2.3-rc.1", &err), 0);
	assert_string_equal(v.pre, "rc.1");

	assert_int_equal(te_semver_parse(&v, "v1.2.3+build", &err), 0);
	assert_string_equal(v.pre, "");
	assert_string_equal(v.build, "build");

	assert_int_equal(
	    te_semver_parse(&v, "0.0.0-alpha-1.0.x-y+exp.sha.5114f85", &err),
	    0);
	assert_string_equal(v.pre, "alpha-1.0.x-y");
	assert_string_equal(v.build, "exp.sha.5114f85");

	assert_int_equal(te_semver_parse(&v, "10.20.30+001", &err), 0);
	assert_int_equal(te_semver_parse(&v, "18446744073709551615.0.0", &err),
	                 0);
	assert_true(v.major == UINT64_MAX);
	assert_int_equal(err.code, TE_OK);
}

static void test_parse_invalid(void **state)
{
	static const char *bad[] = {
	    "",
	    "v",
	    "1",
	    "1.2",
	    "1.2.3.4",
	    "01.2.3",
	    "1.02.3",
	    "1.2.03",
	    "V1.2.3",
	    "vv1.2.3",
	    "1.2.3-",
	    "1.2.3+",
	    "1.2.3-01",
	    "1.2.3-a..b",
	    "1.2.3-a_b",
	    "1.2.3+a..b",
	    " 1.2.3",
	    "1.2.3 ",
	    "-1.2.3",
	    "1.2.-3",
	    "release",
	    "1.2.3-rc/1",
	    "1.2.3\n",
	    "1.2.3-é",
	    "18446744073709551616.0.0",
	};
	size_t i;

	(void)state;
	for (i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		te_error err = TE_ERROR_INIT;
		te_semver v;

		assert_int_equal(te_semver_parse(&v, bad[i], &err),
		                 TE_EINVALID);
		assert_int_equal(err.code, TE_EINVALID);
		assert_true(strlen(err.msg) > 0);
		assert_false(te_semver_is_valid(bad[i]));
	}
}

static int cmp(const char *a, const char *b)
{
	te_error err = TE_ERROR_INIT;
	te_semver va, vb;

	assert_int_equal(te_semver_parse(&va, a, &err), 0);
	assert_int_equal(te_semver_parse(&vb, b, &err), 0);
	return te_semver_compare(&va, &vb);
}

static void test_precedence(void **state)
{
	/* semver.org section 11, in increasing order. */
	static const char *order[] = {
	    "1.0.0-alpha",  "1.0.0-alpha.1", "1.0.0-alpha.beta", "1.0.0-beta",
	    "1.0.0-beta.2", "1.0.0-beta.11", "1.0.0-rc.1",       "1.0.0",
	    "1.0.1",        "1.1.0",         "1.10.0",           "2.0.0",
	};
	size_t n = sizeof(order) / sizeof(order[0]), i, j;

	(void)state;
	for (i = 0; i < n; i++)
		for (j = 0; j < n; j++) {
			int c = cmp(order[i], order[j]);

			if (i < j)
				assert_true(c < 0);
			else if (i > j)
				assert_true(c > 0);
			else
				assert_int_equal(c, 0);
		}
	assert_int_equal(cmp("v1.2.3+a", "1.2.3+b"), 0);
	assert_true(cmp("1.0.0-2", "1.0.0-10") < 0);
	assert_true(cmp("1.0.0-9", "1.0.0-a") < 0);
	assert_true(cmp("1.0.0-A", "1.0.0-a") < 0);
}

static bool applies(const char *tpl, const char *tag, const char *const *all,
                    size_t n)
{
	te_error err = TE_ERROR_INIT;
	bool ok = true;

	assert_int_equal(
	    te_semver_template_applies(&ok, tpl, tag, all, n, &err), 0);
	return ok;
}

static void test_template_uses(void **state)
{
	(void)state;
	assert_int_equal(te_semver_template_uses("r/a:%git_tag%"), 0);
	assert_int_equal(te_semver_template_uses("r/a:%semver%"),
	                 TE_SEMVER_USES_FULL);
	assert_int_equal(
	    te_semver_template_uses("r/a:%semver_major%.%semver_minor%"),
	    TE_SEMVER_USES_MAJOR | TE_SEMVER_USES_MINOR);
	assert_int_equal(te_semver_template_uses("r/a:%semver_patch%"),
	                 TE_SEMVER_USES_PATCH);
	assert_int_equal(te_semver_template_uses("r/a:%semver"), 0);
}

static void test_non_semver_skip(void **state)
{
	(void)state;
	assert_true(applies("r/a:%git_tag%", "release-7", NULL, 0));
	assert_false(applies("r/a:%semver%", "release-7", NULL, 0));
	assert_false(applies("r/a:%semver_major%", "release-7", NULL, 0));
	assert_false(applies("r/a:%semver_patch%", "1.2", NULL, 0));
}

static void test_prerelease_skip(void **state)
{
	static const char *const all[] = {"v1.0.0", "v1.1.0-rc.1"};

	(void)state;
	/* Exact versions apply to pre-releases... */
	assert_true(applies("r/a:%semver%", "v1.1.0-rc.1", all, 2));
	assert_true(applies("r/a:%semver_major%.%semver_minor%.%semver_patch%",
	                    "v1.1.0-rc.1", all, 2));
	/* ...floating ones do not. */
	assert_false(applies("r/a:%semver_major%", "v1.1.0-rc.1", all, 2));
	assert_false(applies("r/a:%semver_major%.%semver_minor%", "v1.1.0-rc.1",
	                     all, 2));
	/* A pre-release never blocks a floating tag either. */
	{
		static const char *const all2[] = {"v1.0.0", "v1.1.0-rc.1",
		                                   "v1.0.0-rc.1"};

		assert_true(applies("r/a:%semver_major%", "v1.0.0", all2, 3));
	}
}

static void test_never_backwards(void **state)
{
	static const char *const all[] = {"v1.2.8", "v1.3.0", "v2.0.0",
	                                  "latest", "v1.2.9", "v1.4.0-rc.1"};
	const size_t n = sizeof(all) / sizeof(all[0]);

	(void)state;
	/* v1.2.9 pushed after v1.3.0: ":1" stays on 1.3.0, ":1.2" moves. */
	assert_false(applies("r/a:%semver_major%", "v1.2.9", all, n));
	assert_true(
	    applies("r/a:%semver_major%.%semver_minor%", "v1.2.9", all, n));
	assert_true(applies("r/a:%semver%", "v1.2.9", all, n));
	assert_true(applies("r/a:%git_tag%", "v1.2.9", all, n));
	/* v1.3.0 is the highest 1.x release (2.0.0 is another line). */
	assert_true(applies("r/a:%semver_major%", "v1.3.0", all, n));
	assert_true(applies("r/a:%semver_major%", "v2.0.0", all, n));
	assert_false(applies("r/a:%semver_major%", "v1.2.8", all, n));
	/* Tag not in the list yet (list taken before the push). */
	assert_true(applies("r/a:%semver_major%", "v1.5.0", all, n));
	/* Same precedence, different build: still the highest. */
	assert_true(applies("r/a:%semver_major%", "1.3.0+b2", all, n));
	/* No other tags at all. */
	assert_true(applies("r/a:%semver_major%", "v0.1.0", NULL, 0));
}

static void test_vars(void **state)
{
	te_error err = TE_ERROR_INIT;
	te_semver_vars v;

	(void)state;
	assert_int_equal(te_semver_vars_get(&v, "v1.2.3-rc.1", &err), 0);
	assert_string_equal(v.semver, "1.2.3-rc.1");
	assert_string_equal(v.major, "1");
	assert_string_equal(v.minor, "2");
	assert_string_equal(v.patch, "3");
	assert_int_equal(te_semver_vars_get(&v, "10.0.7+build.5", &err), 0);
	assert_string_equal(v.semver, "10.0.7_build.5");
	assert_string_equal(v.major, "10");
	assert_int_equal(te_semver_vars_get(&v, "v1.2", &err), TE_EINVALID);
	assert_string_equal(v.semver, "");
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_parse_valid),
	    cmocka_unit_test(test_parse_invalid),
	    cmocka_unit_test(test_precedence),
	    cmocka_unit_test(test_template_uses),
	    cmocka_unit_test(test_non_semver_skip),
	    cmocka_unit_test(test_prerelease_skip),
	    cmocka_unit_test(test_never_backwards),
	    cmocka_unit_test(test_vars),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
