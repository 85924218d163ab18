/*
 * test_mirror_refs.c - tag listing of a bare mirror from loose refs and
 * packed-refs (webhook-server/mirror_refs.c).
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

#include "mirror_refs.h"

#define OID_A "1111111111111111111111111111111111111111"
#define OID_B "2222222222222222222222222222222222222222"
#define OID_C "3333333333333333333333333333333333333333"
#define OID_D "4444444444444444444444444444444444444444"

static char dir[] = "/tmp/te-mrefs.XXXXXX";

static void put(const char *rel, const char *text)
{
	char path[512];
	FILE *f;

	snprintf(path, sizeof(path), "%s/%s", dir, rel);
	f = fopen(path, "w");
	assert_non_null(f);
	fputs(text, f);
	fclose(f);
}

static int setup(void **state)
{
	char path[512];

	(void)state;
	if (!mkdtemp(dir))
		return -1;
	snprintf(path, sizeof(path), "%s/refs", dir);
	mkdir(path, 0700);
	snprintf(path, sizeof(path), "%s/refs/tags", dir);
	mkdir(path, 0700);
	snprintf(path, sizeof(path), "%s/refs/tags/release", dir);
	mkdir(path, 0700);
	return 0;
}

static int teardown(void **state)
{
	(void)state;
	return rm_rf(dir) == 0 ? 0 : -1;
}

static const char *oid_of(const te_strvec *names, const te_strvec *oids,
                          const char *name)
{
	size_t i;

	for (i = 0; i < names->count; i++)
		if (!strcmp(names->items[i], name))
			return oids->items[i];
	return NULL;
}

static void empty_repository(void **state)
{
	te_strvec names = TE_STRVEC_INIT, oids = TE_STRVEC_INIT;
	te_error err = TE_ERROR_INIT;

	(void)state;
	assert_int_equal(ts_mirror_tags(&names, &oids, "/nonexistent/x", &err),
	                 0);
	assert_int_equal(names.count, 0);
}

static void loose_and_packed(void **state)
{
	te_strvec names = TE_STRVEC_INIT, oids = TE_STRVEC_INIT;
	te_error err = TE_ERROR_INIT;

	(void)state;
	put("packed-refs",
	    "# pack-refs with: peeled fully-peeled sorted\n" OID_A
	    " refs/tags/v1.0.0\n"
	    "^" OID_D "\n" OID_B " refs/tags/v1.1.0\n" OID_C
	    " refs/heads/main\n");
	put("refs/tags/v1.1.0", OID_C "\n"); /* loose wins over packed */
	put("refs/tags/release/v2", OID_D "\n");
	put("refs/tags/v3.lock", OID_D "\n"); /* being written: skipped */
	put("refs/tags/garbage", "not an oid\n");
	assert_int_equal(ts_mirror_tags(&names, &oids, dir, &err), 0);
	assert_int_equal(names.count, 3);
	assert_string_equal(oid_of(&names, &oids, "v1.0.0"), OID_A);
	assert_string_equal(oid_of(&names, &oids, "v1.1.0"), OID_C);
	assert_string_equal(oid_of(&names, &oids, "release/v2"), OID_D);
	assert_null(oid_of(&names, &oids, "main"));
	assert_null(oid_of(&names, &oids, "v3.lock"));
	te_strvec_dispose(&names);
	te_strvec_dispose(&oids);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(empty_repository),
	    cmocka_unit_test(loose_and_packed),
	};

	return cmocka_run_group_tests(tests, setup, teardown);
}
