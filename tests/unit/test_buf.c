#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdlib.h>
#include <string.h>

#include "tagexport/buf.h"

static void put_respects_limit(void **state)
{
	te_buf b = TE_BUF_INIT(8);
	te_error err = TE_ERROR_INIT;

	(void)state;
	assert_string_equal(b.ptr, "");
	assert_int_equal(te_buf_puts(&b, "12345", &err), 0);
	assert_int_equal(te_buf_puts(&b, "6789", &err), TE_EINVALID);
	assert_string_equal(b.ptr, "12345");
	assert_int_equal(b.len, 5);
	assert_non_null(strstr(err.msg, "8 bytes"));
	te_buf_dispose(&b);
}

static void printf_appends(void **state)
{
	te_buf b = TE_BUF_INIT(1024);
	te_error err = TE_ERROR_INIT;
	char *s;

	(void)state;
	assert_int_equal(te_buf_printf(&b, &err, "%s-%d", "a", 42), 0);
	assert_int_equal(te_buf_printf(&b, &err, "/%03d", 7), 0);
	s = te_buf_detach(&b);
	assert_string_equal(s, "a-42/007");
	assert_string_equal(b.ptr, "");
	free(s);
}

static void error_first_wins_and_wrap(void **state)
{
	te_error err = TE_ERROR_INIT;

	(void)state;
	assert_int_equal(te_error_set(&err, TE_ENOTFOUND, "no %s", "x"),
	                 TE_ENOTFOUND);
	assert_int_equal(te_error_set(&err, TE_EINVALID, "later"),
	                 TE_ENOTFOUND);
	te_error_wrap(&err, "reading %s", "y\nz");
	assert_string_equal(err.msg, "reading y z: no x");
	te_error_clear(&err);
	assert_int_equal(err.code, TE_OK);
}

static void strvec_is_argv_shaped(void **state)
{
	te_strvec v = TE_STRVEC_INIT;
	te_error err = TE_ERROR_INIT;
	int i;

	(void)state;
	for (i = 0; i < 20; i++)
		assert_int_equal(te_strvec_pushf(&v, &err, "%02d", 19 - i), 0);
	te_strvec_sort(&v);
	assert_string_equal(v.items[0], "00");
	assert_string_equal(v.items[19], "19");
	assert_null(v.items[20]);
	assert_true(te_strvec_contains(&v, "07"));
	assert_false(te_strvec_contains(&v, "20"));
	te_strvec_dispose(&v);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(put_respects_limit),
	    cmocka_unit_test(printf_appends),
	    cmocka_unit_test(error_first_wins_and_wrap),
	    cmocka_unit_test(strvec_is_argv_shaped),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
