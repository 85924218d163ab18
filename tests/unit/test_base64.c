/*
 * test_base64.c - base64 against RFC 4648's test vectors, optional padding,
 * and input that is not base64.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <string.h>

#include "tagexport/base64.h"

/* RFC 4648 section 10 */
static const struct {
	const char *plain, *encoded;
} vectors[] = {
    {"", ""},
    {"f", "Zg=="},
    {"fo", "Zm8="},
    {"foo", "Zm9v"},
    {"foob", "Zm9vYg=="},
    {"fooba", "Zm9vYmE="},
    {"foobar", "Zm9vYmFy"},
};

static long decode(unsigned char *out, size_t cap, const char *in)
{
	return te_base64_decode(out, cap, in, strlen(in));
}

static void test_rfc_vectors(void **state)
{
	unsigned char out[16];
	char enc[16];
	size_t i;

	(void)state;
	for (i = 0; i < sizeof(vectors) / sizeof(vectors[0]); i++) {
		size_t n = strlen(vectors[i].plain);

		assert_int_equal(
		    te_base64_encode(
		        enc, (const unsigned char *)vectors[i].plain, n),
		    strlen(vectors[i].encoded));
		assert_string_equal(enc, vectors[i].encoded);
		assert_int_equal(decode(out, sizeof(out), vectors[i].encoded),
		                 (long)n);
		assert_memory_equal(out, vectors[i].plain, n);
	}
}

static void test_padding_is_optional(void **state)
{
	unsigned char out[8];

	(void)state;
	assert_int_equal(decode(out, sizeof(out), "Zm9vYg"), 4);
	assert_memory_equal(out, "foob", 4);
	assert_int_equal(decode(out, sizeof(out), "Zm9vYmE"), 5);
	assert_memory_equal(out, "fooba", 5);
}

static void test_not_base64(void **state)
{
	unsigned char out[16];

	(void)state;
	assert_int_equal(decode(out, sizeof(out), "Zm9v Yg=="), -1);
	assert_int_equal(decode(out, sizeof(out), "Zm9v\n"), -1);
	assert_int_equal(decode(out, sizeof(out), "Zm9vY"), -1); /* 1 left */
	assert_int_equal(decode(out, sizeof(out), "Zg=a"), -1);
	assert_int_equal(decode(out, sizeof(out), "Zg="), -1); /* half pad */
	assert_int_equal(decode(out, sizeof(out), "Z==="), -1);
	assert_int_equal(decode(out, sizeof(out), "Zh=="), -1); /* stray bits */
	assert_int_equal(decode(out, sizeof(out), "Zm9v-_"), -1); /* url alph */
}

static void test_output_bound(void **state)
{
	unsigned char out[8];

	(void)state;
	assert_int_equal(decode(out, 5, "Zm9vYmFy"), -1);
	assert_int_equal(decode(out, 6, "Zm9vYmFy"), 6);
}

static void test_every_byte_round_trips(void **state)
{
	unsigned char in[256], out[256];
	char enc[TE_BASE64_LEN(256) + 1];
	size_t i, len;

	(void)state;
	for (i = 0; i < sizeof(in); i++)
		in[i] = (unsigned char)(255 - i);
	for (len = 250; len <= 256; len++) {
		size_t n = te_base64_encode(enc, in, len);

		assert_int_equal(n, TE_BASE64_LEN(len));
		assert_int_equal(te_base64_decode(out, sizeof(out), enc, n),
		                 (long)len);
		assert_memory_equal(out, in, len);
	}
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_rfc_vectors),
	    cmocka_unit_test(test_padding_is_optional),
	    cmocka_unit_test(test_not_base64),
	    cmocka_unit_test(test_output_bound),
	    cmocka_unit_test(test_every_byte_round_trips),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
