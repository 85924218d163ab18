/*
 * test_hex.c - te_hex_digit over every byte value.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <string.h>

#include "tagexport/hex.h"

static void digits(void **state)
{
	static const char lower[] = "0123456789abcdef", upper[] = "ABCDEF";
	int c, valid = 0;

	(void)state;
	for (c = 0; c < 16; c++)
		assert_int_equal(te_hex_digit(lower[c]), c);
	for (c = 0; c < 6; c++)
		assert_int_equal(te_hex_digit(upper[c]), 10 + c);
	/* every other byte, the high half included, is not a digit */
	for (c = -128; c < 128; c++) {
		if (te_hex_digit((char)c) >= 0)
			valid++;
		else
			assert_null(c > 0 ? strchr("0123456789abcdefABCDEF", c)
			                  : NULL);
	}
	assert_int_equal(valid, 22);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(digits),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
