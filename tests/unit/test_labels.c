#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdlib.h>
#include <string.h>

#include "tagexport/labels.h"

static te_labels *parse_ok(const char *const *envp, const char *const *flags,
                           size_t nflags, const char *sep)
{
	te_error err = TE_ERROR_INIT;
	te_labels *l = NULL;

	assert_int_equal(
	    te_labels_parse_werf(&l, envp, flags, nflags, sep, &err), 0);
	assert_non_null(l);
	return l;
}

static void set_replaces_in_place(void **state)
{
	te_error err = TE_ERROR_INIT;
	te_labels *l = NULL;

	(void)state;
	assert_int_equal(te_labels_new(&l, &err), 0);
	assert_int_equal(te_labels_set(l, "a", "1", &err), 0);
	assert_int_equal(te_labels_set(l, "b", "2", &err), 0);
	assert_int_equal(te_labels_set(l, "a", "3", &err), 0);
	assert_int_equal(te_labels_count(l), 2);
	assert_string_equal(te_labels_key(l, 0), "a");
	assert_string_equal(te_labels_value(l, 0), "3");
	assert_string_equal(te_labels_key(l, 1), "b");
	assert_null(te_labels_key(l, 2));
	assert_null(te_labels_get(l, "c"));
	assert_null(te_labels_get(l, ""));
	te_labels_free(l);
	te_labels_free(NULL);
}

/* werf-export.md 4.4 example. */
static void doc_example(void **state)
{
	const char *envp[] = {"PATH=/bin", "WERF_EXPORT_ADD_LABEL_1=a=1", NULL};
	const char *flags[] = {"b=2\nc=x=y"};
	te_labels *l;

	(void)state;
	l = parse_ok(envp, flags, 1, NULL);
	assert_int_equal(te_labels_count(l), 3);
	assert_string_equal(te_labels_get(l, "a"), "1");
	assert_string_equal(te_labels_get(l, "b"), "2");
	assert_string_equal(te_labels_get(l, "c"), "x=y");
	assert_string_equal(te_labels_key(l, 0), "a");
	te_labels_free(l);
}

static void custom_separator(void **state)
{
	const char *flags[] = {"a=1,b=2", "c=3"};
	te_labels *l;

	(void)state;
	l = parse_ok(NULL, flags, 2, ",");
	assert_int_equal(te_labels_count(l), 3);
	assert_string_equal(te_labels_get(l, "b"), "2");
	assert_string_equal(te_labels_get(l, "c"), "3");
	te_labels_free(l);

	/* multi-character separator */
	{
		const char *f2[] = {"a=1::b=2:3"};

		l = parse_ok(NULL, f2, 1, "::");
		assert_string_equal(te_labels_get(l, "a"), "1");
		assert_string_equal(te_labels_get(l, "b"), "2:3");
		te_labels_free(l);
	}
}

static void env_separator(void **state)
{
	const char *envp[] = {"WERF_EXPORT_ADD_LABEL_SEPARATOR=;",
	                      "WERF_EXPORT_ADD_LABEL_X=a=1;b=2", NULL};
	const char *empty_sep[] = {"WERF_EXPORT_ADD_LABEL_SEPARATOR=",
	                           "WERF_EXPORT_ADD_LABEL_X=a=1\nb=2", NULL};
	const char *flags[] = {"c=3;d=4"};
	te_labels *l;

	(void)state;
	l = parse_ok(envp, flags, 1, NULL);
	assert_int_equal(te_labels_count(l), 4);
	assert_string_equal(te_labels_get(l, "d"), "4");
	/* the SEPARATOR variable is not itself a label source */
	assert_null(te_labels_get(l, ";"));
	te_labels_free(l);

	/* an explicit flag beats the variable */
	{
		const char *f2[] = {"c=3;d=4"};

		l = parse_ok(envp, NULL, 0, "\n");
		assert_string_equal(te_labels_get(l, "a"), "1;b=2");
		te_labels_free(l);
		(void)f2;
	}

	/* empty variable: default newline */
	l = parse_ok(empty_sep, NULL, 0, NULL);
	assert_string_equal(te_labels_get(l, "a"), "1");
	assert_string_equal(te_labels_get(l, "b"), "2");
	te_labels_free(l);
}

static void env_sorted_as_whole_entries(void **state)
{
	/* "..._A=k=2" < "..._A_=k=1" < "..._B=k=3" by whole-string order,
	 * although the name "..._A" < "..._A_" < "..._B" too; use values
	 * that only whole-string order can rank. */
	const char *envp[] = {"WERF_EXPORT_ADD_LABEL_B=k=last",
	                      "WERF_EXPORT_ADD_LABEL_A_=k=middle",
	                      "WERF_EXPORT_ADD_LABEL_A=k=first",
	                      "WERF_EXPORT_ADD_LABEL_SEPARATORX=k=sep", NULL};
	const char *envp2[] = {"WERF_EXPORT_ADD_LABEL_2=k=two",
	                       "WERF_EXPORT_ADD_LABEL_10=k=ten", NULL};
	const char *flags[] = {"k=flag"};
	te_labels *l;

	(void)state;
	l = parse_ok(envp, NULL, 0, NULL);
	assert_string_equal(te_labels_get(l, "k"), "last");
	te_labels_free(l);
	/* "..._10" sorts before "..._2": "two" wins */
	l = parse_ok(envp2, NULL, 0, NULL);
	assert_string_equal(te_labels_get(l, "k"), "two");
	te_labels_free(l);
	/* flags come after the environment */
	l = parse_ok(envp2, flags, 1, NULL);
	assert_string_equal(te_labels_get(l, "k"), "flag");
	assert_int_equal(te_labels_count(l), 1);
	te_labels_free(l);
}

static void override_order(void **state)
{
	const char *flags[] = {"a=1\nb=1", "a=2", "b=3\na=4"};
	te_labels *l;

	(void)state;
	l = parse_ok(NULL, flags, 3, NULL);
	assert_string_equal(te_labels_get(l, "a"), "4");
	assert_string_equal(te_labels_get(l, "b"), "3");
	assert_string_equal(te_labels_key(l, 0), "a");
	te_labels_free(l);
}

static void value_forms(void **state)
{
	const char *flags[] = {"empty=", "eq=a=b==c", "sp ace= x "};
	te_labels *l;

	(void)state;
	l = parse_ok(NULL, flags, 3, NULL);
	assert_string_equal(te_labels_get(l, "empty"), "");
	assert_string_equal(te_labels_get(l, "eq"), "a=b==c");
	assert_string_equal(te_labels_get(l, "sp ace"), " x ");
	te_labels_free(l);
}

static void expect_error(const char *const *envp, const char *flag,
                         const char *sep, const char *msg)
{
	te_error err = TE_ERROR_INIT;
	te_labels *l = (te_labels *)&err; /* must be reset to NULL */
	const char *flags[1];

	flags[0] = flag;
	assert_int_equal(
	    te_labels_parse_werf(&l, envp, flags, flag ? 1 : 0, sep, &err),
	    TE_EINVALID);
	assert_null(l);
	assert_string_equal(err.msg, msg);
}

static void errors(void **state)
{
	const char *bad_env[] = {"WERF_EXPORT_ADD_LABEL_Z=oops", NULL};

	(void)state;
	/* key without '=' */
	expect_error(NULL, "novalue", NULL,
	             "unsupported --add-label value: invalid value \"novalue\" "
	             "(\"\\n\"): invalid key=value pair \"novalue\" (\"=\")");
	/* empty piece from a trailing separator */
	expect_error(NULL, "a=1\n", NULL,
	             "unsupported --add-label value: invalid value "
	             "\"a=1\\n\" (\"\\n\"): invalid key=value pair \"\" "
	             "(\"=\")");
	/* empty key */
	expect_error(NULL, "a=1,=2", ",",
	             "unsupported --add-label value: invalid value "
	             "\"a=1,=2\" (\",\"): invalid key=value pair \"=2\" "
	             "(\"=\")");
	/* empty value string */
	expect_error(NULL, "", NULL,
	             "unsupported --add-label value: invalid value \"\" "
	             "(\"\\n\"): invalid key=value pair \"\" (\"=\")");
	/* from the environment */
	expect_error(bad_env, NULL, NULL,
	             "unsupported --add-label value: invalid value \"oops\" "
	             "(\"\\n\"): invalid key=value pair \"oops\" (\"=\")");
	/* Go %q escapes quotes, tabs and bad bytes */
	expect_error(NULL, "a\"b\t\xff", ",",
	             "unsupported --add-label value: invalid value "
	             "\"a\\\"b\\t\\xff\" (\",\"): invalid key=value pair "
	             "\"a\\\"b\\t\\xff\" (\"=\")");
}

static void long_value_error_is_bounded(void **state)
{
	te_error err = TE_ERROR_INIT;
	te_labels *l = NULL;
	char *big = malloc(100001);
	const char *flags[1];

	(void)state;
	assert_non_null(big);
	memset(big, 'x', 100000);
	big[100000] = '\0';
	flags[0] = big;
	assert_int_equal(te_labels_parse_werf(&l, NULL, flags, 1, NULL, &err),
	                 TE_EINVALID);
	assert_true(strlen(err.msg) < TE_ERROR_MSG_MAX);
	assert_non_null(strstr(err.msg, "...\""));
	free(big);
}

static void empty_separator_splits_runes(void **state)
{
	te_error err = TE_ERROR_INIT;
	te_labels *l = NULL;
	const char *flags[] = {""};

	(void)state;
	/* Go's strings.Split("", "") has no pieces: nothing, no error */
	l = parse_ok(NULL, flags, 1, "");
	assert_int_equal(te_labels_count(l), 0);
	te_labels_free(l);
	l = NULL;
	flags[0] = "a=1";
	assert_int_equal(te_labels_parse_werf(&l, NULL, flags, 1, "", &err),
	                 TE_EINVALID);
	assert_non_null(strstr(err.msg, "pair \"a\""));
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(set_replaces_in_place),
	    cmocka_unit_test(doc_example),
	    cmocka_unit_test(custom_separator),
	    cmocka_unit_test(env_separator),
	    cmocka_unit_test(env_sorted_as_whole_entries),
	    cmocka_unit_test(override_order),
	    cmocka_unit_test(value_forms),
	    cmocka_unit_test(errors),
	    cmocka_unit_test(long_value_error_is_bounded),
	    cmocka_unit_test(empty_separator_splits_runes),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
