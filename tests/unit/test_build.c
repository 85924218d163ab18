#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <string.h>

#include "tagexport/build.h"

static void timeout_parses_go_durations(void **state)
{
	static const struct {
		const char *text;
		unsigned seconds;
	} ok[] = {{"30s", 30},
	          {"10m", 600},
	          {"1h", 3600},
	          {"1h30m", 5400},
	          {"1h0m5s", 3605},
	          {"90m", 5400},
	          {"168h", 7 * 24 * 3600}};
	te_error err = TE_ERROR_INIT;
	unsigned v;
	size_t i;

	(void)state;
	for (i = 0; i < sizeof(ok) / sizeof(ok[0]); i++) {
		assert_int_equal(te_build_timeout_parse(&v, ok[i].text, &err),
		                 0);
		assert_int_equal(v, ok[i].seconds);
	}
}

static void timeout_refuses_the_rest(void **state)
{
	static const char *const bad[] = {"",     "10",
	                                  "s",    "0s",
	                                  "1d",   "10m1h",
	                                  "1h1h", "-5s",
	                                  "1.5h", "1h ",
	                                  " 1h",  "169h",
	                                  "1h5",  "99999999999999999999s"};
	te_error err = TE_ERROR_INIT;
	unsigned v = 7;
	size_t i;

	(void)state;
	for (i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		te_error_clear(&err);
		assert_int_equal(te_build_timeout_parse(&v, bad[i], &err),
		                 TE_EINVALID);
		assert_int_equal(v, 0);
		assert_non_null(strstr(err.msg, "invalid build timeout"));
	}
}

static void timeout_formats_what_it_parses(void **state)
{
	static const unsigned values[] = {
	    1, 10, 59, 60, 61, 3600, 5400, 3605, TE_BUILD_TIMEOUT_MAX};
	te_error err = TE_ERROR_INIT;
	char text[32];
	unsigned v;
	size_t i;

	(void)state;
	te_build_timeout_format(text, sizeof(text), 5400);
	assert_string_equal(text, "1h30m");
	te_build_timeout_format(text, sizeof(text), 10);
	assert_string_equal(text, "10s");
	for (i = 0; i < sizeof(values) / sizeof(values[0]); i++) {
		te_build_timeout_format(text, sizeof(text), values[i]);
		assert_int_equal(te_build_timeout_parse(&v, text, &err), 0);
		assert_int_equal(v, values[i]);
	}
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(timeout_parses_go_durations),
	    cmocka_unit_test(timeout_refuses_the_rest),
	    cmocka_unit_test(timeout_formats_what_it_parses),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
