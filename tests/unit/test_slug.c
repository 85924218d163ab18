#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "tagexport/slug.h"
#include "slug_map.h"

struct row {
	const char *in;
	const char *slug;
	const char *docker_tag;
	const char *murmur; /* NULL: not listed */
};

/* werf-export.md 1.6, rows 1-17 (row 16 split into its four inputs). */
static const struct row table[] = {
    {"backend", "backend", "backend", "27dba8ed"},
    {"my_app", "my-app", "my_app", "dfb02b87"},
    {"Frontend/App", "frontend-app", "frontend-app-36ef7b", "36ef7b"},
    {"app.v2", "app-v2", "app.v2", "84036b49"},
    {"-lead", "lead", "lead-c2b42368", "c2b42368"},
    {"UPPER", "upper", "UPPER", "1bc8d886"},
    {"a--b", "a-b", "a--b", "d93060a1"},
    {"\xd1\x82\xd0\xb5\xd1\x81\xd1\x82", "tyest", "tyest-9483632b", "9483632b"},
    {"\xd0\x81\xd0\xbb\xd0\xba\xd0\xb0_2", "yolka-2", "yolka-2-23c07e69",
     "23c07e69"},
    {"\xc3\xbc"
     "ber caf\xc3\xa9",
     "uber-cafe", "uber-cafe-277ff22b", "277ff22b"},
    {"a b!@#c", "a-bc", "a-bc-ff935296", "ff935296"},
    {"Hello World!", "hello-world", "hello-world-dc09357d", "dc09357d"},
    {"feature/JIRA-123_fix", "feature-jira-123-fix",
     "feature-jira-123-fix-8c19c126", "8c19c126"},
    {"nginx:1.25", "nginx-1-25", "nginx-1-25-d83310a2", "d83310a2"},
    {"x--", "x", "x--", "5bdb4a5"},
    {"--", "", "ba25c49b", "ba25c49b"},
    {"!!!", "", "4e4955fc", "4e4955fc"},
    {"~", "", "9905b33e", "9905b33e"},
    {"\xce\xa9", "", "4f323f71", "4f323f71"},
    {"", "", "", NULL},
};

static char *murmur_hex(const char *s)
{
	char buf[16];

	snprintf(buf, sizeof(buf), "%x",
	         (unsigned)te_slug_murmur3(s, strlen(s), 0));
	return strdup(buf);
}

static void check_slug(const char *in, const char *want)
{
	te_error err = TE_ERROR_INIT;
	char *out = NULL;

	assert_int_equal(te_slug_slugify(&out, in, &err), 0);
	assert_string_equal(out, want);
	free(out);
}

static void check_docker_tag(const char *in, const char *want)
{
	te_error err = TE_ERROR_INIT;
	char *out = NULL;

	assert_int_equal(te_slug_docker_tag(&out, in, &err), 0);
	assert_string_equal(out, want);
	assert_true(strlen(out) <= 128);
	free(out);
}

static void table_rows_1_to_17(void **state)
{
	size_t i;

	(void)state;
	for (i = 0; i < sizeof(table) / sizeof(table[0]); i++) {
		check_slug(table[i].in, table[i].slug);
		check_docker_tag(table[i].in, table[i].docker_tag);
		if (table[i].murmur) {
			char *h = murmur_hex(table[i].in);

			assert_string_equal(h, table[i].murmur);
			free(h);
		}
	}
}

static void table_row_18_long_crop(void **state)
{
	char in[256], want[256];
	char *h;
	int i;

	(void)state;
	strcpy(in, "service-");
	for (i = 0; i < 12; i++)
		strcat(in, "abcdefghij");
	strcat(in, "xy");
	assert_int_equal(strlen(in), 130);
	check_slug(in, in);
	h = murmur_hex(in);
	assert_string_equal(h, "ad9ba21b");
	free(h);
	memcpy(want, in, 119);
	strcpy(want + 119, "-ad9ba21b");
	assert_int_equal(strlen(want), 128);
	check_docker_tag(in, want);
}

static void table_row_19_crop_on_dash(void **state)
{
	char in[256], slug[256], want[256];
	char *h;

	(void)state;
	strcpy(in, "x/");
	memset(in + 2, 'a', 116);
	in[118] = '_';
	memset(in + 119, 'b', 20);
	in[139] = '\0';
	strcpy(slug, "x-");
	memset(slug + 2, 'a', 116);
	slug[118] = '-';
	memset(slug + 119, 'b', 20);
	slug[139] = '\0';
	check_slug(in, slug);
	h = murmur_hex(in);
	assert_string_equal(h, "70fc87c2");
	free(h);
	strcpy(want, "x-");
	memset(want + 2, 'a', 116);
	strcpy(want + 118, "--70fc87c2");
	assert_int_equal(strlen(want), 128);
	check_docker_tag(in, want);
}

/* Vectors from werf's own tests that apply to Slug/DockerTag/murmur. */
static void werf_vectors(void **state)
{
	char *h;

	(void)state;
	check_docker_tag("-data", "data-a871d86e");
	check_docker_tag("da/ta", "da-ta-afa96f8");
	check_docker_tag("helo/ehlo", "helo-ehlo-b6f6ab1f");
	check_docker_tag("16.04", "16.04");
	h = murmur_hex("A"); /* LimitedSlug("A") = a-54dcf7ce */
	assert_string_equal(h, "54dcf7ce");
	free(h);
	h = murmur_hex("My_branch"); /* k8s ns = my-branch-8ebf2d1d */
	assert_string_equal(h, "8ebf2d1d");
	free(h);
}

static void murmur_reference_vectors(void **state)
{
	(void)state;
	/* Published MurmurHash3_x86_32 vectors. */
	assert_int_equal(te_slug_murmur3("", 0, 0), 0);
	assert_int_equal(te_slug_murmur3("", 0, 1), 0x514e28b7);
	assert_int_equal(te_slug_murmur3("\xff\xff\xff\xff", 4, 0), 0x76293b50);
	assert_int_equal(te_slug_murmur3("\x21\x43\x65\x87", 4, 0), 0xf55b516b);
	assert_int_equal(te_slug_murmur3("\x21\x43\x65", 3, 0), 0x7e4a8634);
	assert_int_equal(te_slug_murmur3("\x21\x43", 2, 0), 0xa0f7b07a);
	assert_int_equal(te_slug_murmur3("\x21", 1, 0), 0x72661cf4);
}

static void map_samples(void **state)
{
	(void)state;
	check_slug("\xc3\x9f", "b"); /* sharp s */
	check_slug("\xc4\xb0", "l"); /* capital I with dot */
	check_slug("\xc4\xb1", "l"); /* dotless i */
	check_slug("a\xd1\x8a"
	           "b",
	           "ab");                   /* hard sign -> "" */
	check_slug("\xe2\x92\xb6", "a");    /* circled A */
	check_slug("\xe2\x92\x91", "10");   /* number ten full stop */
	check_slug("\xe2\x84\xa1", "tel");  /* telephone sign */
	check_slug("\xd0\xb5", "ye");       /* cyrillic e */
	check_slug("\xd1\x89", "shch");     /* cyrillic shcha */
	check_slug("\xc3\x86", "ae");       /* AE */
	check_slug("\xef\xbc\xa1", "a");    /* fullwidth A */
	check_slug("\xe2\x91\xa8", "");     /* circled 9: unmapped */
	check_slug("\xd1\x96", "");         /* ukrainian i: unmapped */
	check_slug("\xf0\x9f\x98\x80", ""); /* emoji */
	check_slug("\xea\x9c\xb2", "aa");   /* Latin Extended-D AA */
}

static void dash_rules(void **state)
{
	(void)state;
	check_slug("--a--b--", "a-b");
	check_slug("a-!-b", "a-b");    /* dropped chars keep dash state */
	check_slug("a-\xd1\x8a", "a"); /* trailing dash before a "" map */
	check_slug("a -_ .", "a");
	check_slug("\xd1\x8a-a", "a");
	check_slug("ABC_def", "abc-def");
}

static void invalid_utf8_is_dropped(void **state)
{
	(void)state;
	check_slug("a\xff"
	           "b",
	           "ab");
	check_slug("a\xc3", "a"); /* truncated sequence */
	check_slug("a\xc0\xaf"
	           "b",
	           "ab"); /* overlong '/' is not a dash */
	check_slug("a\xed\xa0\x80"
	           "b",
	           "ab"); /* surrogate */
	check_slug("\xe2\x92"
	           "x",
	           "x"); /* byte after a bad lead kept */
	{
		char want[32], *h = murmur_hex("a\xff");

		snprintf(want, sizeof(want), "a-%s", h);
		check_docker_tag("a\xff", want);
		free(h);
	}
}

/* The generated table: complete, sorted for bsearch, ASCII output only. */
static void map_table_shape(void **state)
{
	size_t i, j;

	(void)state;
	assert_int_equal(TE_SLUG_MAP_LEN, 971);
	for (i = 0; i < TE_SLUG_MAP_LEN; i++) {
		const char *r = te_slug_map[i].repl;

		if (i > 0)
			assert_true(te_slug_map[i - 1].cp < te_slug_map[i].cp);
		assert_true(strlen(r) <= 4);
		for (j = 0; r[j]; j++)
			assert_true((r[j] >= 'a' && r[j] <= 'z') ||
			            (r[j] >= '0' && r[j] <= '9') ||
			            r[j] == '-');
	}
	assert_int_equal(te_slug_map[0].cp, 0x20);
	assert_int_equal(te_slug_map[TE_SLUG_MAP_LEN - 1].cp, 0xff5e);
}

static void too_long_input(void **state)
{
	te_error err = TE_ERROR_INIT;
	char *big = malloc(TE_SLUG_INPUT_MAX + 2), *out = NULL;

	(void)state;
	assert_non_null(big);
	memset(big, 'a', TE_SLUG_INPUT_MAX + 1);
	big[TE_SLUG_INPUT_MAX + 1] = '\0';
	assert_int_equal(te_slug_slugify(&out, big, &err), TE_EINVALID);
	assert_null(out);
	te_error_clear(&err);
	big[0] = '/'; /* not a valid tag, so it must be slugified */
	assert_int_equal(te_slug_docker_tag(&out, big, &err), TE_EINVALID);
	assert_null(out);
	big[TE_SLUG_INPUT_MAX] = '\0';
	assert_int_equal(te_slug_docker_tag(&out, big, &err), 0);
	assert_int_equal(strlen(out), 128);
	free(out);
	free(big);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(table_rows_1_to_17),
	    cmocka_unit_test(table_row_18_long_crop),
	    cmocka_unit_test(table_row_19_crop_on_dash),
	    cmocka_unit_test(werf_vectors),
	    cmocka_unit_test(murmur_reference_vectors),
	    cmocka_unit_test(map_samples),
	    cmocka_unit_test(dash_rules),
	    cmocka_unit_test(invalid_utf8_is_dropped),
	    cmocka_unit_test(map_table_shape),
	    cmocka_unit_test(too_long_input),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
