#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdlib.h>
#include <string.h>

#include "tagexport/image.h"

/* A config as buildah writes it, werf labels included. */
static const char CONFIG[] =
    "{\"architecture\":\"amd64\",\"config\":{\"Env\":[\"PATH=/bin\"],"
    "\"Labels\":{\"io.buildah.version\":\"1.28.2\",\"werf\":\"shop\","
    "\"werf-stage-content-digest\":\"abc\",\"werfoo\":\"x\","
    "\"org.example\":\"keep\"}},\"os\":\"linux\",\"rootfs\":{\"type\":"
    "\"layers\",\"diff_ids\":[\"sha256:00\"]}}";

static const char MANIFEST[] =
    "{\"schemaVersion\":2,\"mediaType\":"
    "\"application/vnd.oci.image.manifest.v1+json\",\"config\":{"
    "\"mediaType\":\"application/vnd.oci.image.config.v1+json\","
    "\"digest\":\"sha256:"
    "1111111111111111111111111111111111111111111111111111111111111111\","
    "\"size\":10},\"layers\":[{\"mediaType\":\"application/"
    "vnd.oci.image.layer.v1.tar+gzip\",\"digest\":\"sha256:"
    "2222222222222222222222222222222222222222222222222222222222222222\","
    "\"size\":33554432}],\"annotations\":{\"a\":\"b\"}}";

static te_labels *labels_of(const char *k, const char *v)
{
	te_labels *l = NULL;
	te_error err = TE_ERROR_INIT;

	assert_int_equal(te_labels_new(&l, &err), 0);
	if (k)
		assert_int_equal(te_labels_set(l, k, v, &err), 0);
	return l;
}

static void relabel_strips_werf_prefix_only(void **state)
{
	te_buf out = TE_BUF_INIT(1 << 20);
	te_error err = TE_ERROR_INIT;
	bool changed = false;

	(void)state;
	assert_int_equal(te_image_relabel_config(&out, &changed, CONFIG,
	                                         strlen(CONFIG), NULL, &err),
	                 0);
	assert_true(changed);
	assert_null(strstr(out.ptr, "\"werf"));
	assert_non_null(strstr(out.ptr, "\"org.example\":\"keep\""));
	assert_non_null(strstr(out.ptr, "io.buildah.version"));
	/* Everything but the labels is untouched, in the same order. */
	assert_non_null(strstr(out.ptr, "{\"architecture\":\"amd64\","));
	assert_non_null(strstr(out.ptr, "\"diff_ids\":[\"sha256:00\"]"));
	te_buf_dispose(&out);
}

static void relabel_adds_and_overrides(void **state)
{
	te_buf out = TE_BUF_INIT(1 << 20);
	te_error err = TE_ERROR_INIT;
	te_labels *add = labels_of("org.example", "new");
	bool changed = false;

	(void)state;
	assert_int_equal(te_labels_set(add, "a&b", "<x>", &err), 0);
	assert_int_equal(te_image_relabel_config(&out, &changed, CONFIG,
	                                         strlen(CONFIG), add, &err),
	                 0);
	assert_true(changed);
	assert_non_null(strstr(out.ptr, "\"org.example\":\"new\""));
	assert_non_null(strstr(out.ptr, "\"a&b\":\"<x>\""));
	te_labels_free(add);
	te_buf_dispose(&out);
}

static void relabel_without_change_keeps_bytes(void **state)
{
	/* Odd spacing proves the bytes are not re-serialized. */
	static const char clean[] =
	    "{ \"config\": {\"Labels\": {\"k\": \"v\"}} }";
	te_buf out = TE_BUF_INIT(1 << 20);
	te_error err = TE_ERROR_INIT;
	te_labels *same = labels_of("k", "v");
	bool changed = true;

	(void)state;
	assert_int_equal(te_image_relabel_config(&out, &changed, clean,
	                                         strlen(clean), same, &err),
	                 0);
	assert_false(changed);
	assert_string_equal(out.ptr, clean);
	te_labels_free(same);
	te_buf_dispose(&out);
}

static void relabel_creates_missing_labels(void **state)
{
	static const char bare[] = "{\"config\":null,\"os\":\"linux\"}";
	te_buf out = TE_BUF_INIT(1 << 20);
	te_error err = TE_ERROR_INIT;
	te_labels *add = labels_of("x", "1");
	bool changed = false;

	(void)state;
	assert_int_equal(te_image_relabel_config(&out, &changed, bare,
	                                         strlen(bare), add, &err),
	                 0);
	assert_true(changed);
	assert_string_equal(out.ptr,
	                    "{\"config\":{\"Labels\":{\"x\":\"1\"}},\"os\":"
	                    "\"linux\"}");
	te_labels_free(add);
	te_buf_dispose(&out);
}

static void relabel_rejects_hostile_configs(void **state)
{
	static const char *const bad[] = {
	    "",
	    "[]",
	    "{\"config\":[]}",
	    "{\"config\":{\"Labels\":[1]}}",
	    "{\"a\":1,\"a\":2}",
	    "{\"config\":{\"Labels\":{\"k\":\"v\"}"};
	te_buf out = TE_BUF_INIT(1 << 20);
	te_labels *add = labels_of("x", "1");
	bool changed;
	size_t i;

	(void)state;
	for (i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		te_error err = TE_ERROR_INIT;

		assert_int_equal(te_image_relabel_config(&out, &changed, bad[i],
		                                         strlen(bad[i]), add,
		                                         &err),
		                 TE_EINVALID);
		assert_true(strlen(err.msg) > 0);
	}
	te_labels_free(add);
	te_buf_dispose(&out);
}

static void manifest_parse_and_patch(void **state)
{
	static const char newdig[] =
	    "sha256:"
	    "3333333333333333333333333333333333333333333333333333333333333333";
	te_image_manifest m;
	te_buf out = TE_BUF_INIT(1 << 20);
	te_error err = TE_ERROR_INIT;

	(void)state;
	assert_int_equal(
	    te_image_manifest_parse(&m, MANIFEST, strlen(MANIFEST), &err), 0);
	assert_int_equal(m.nlayers, 1);
	assert_int_equal(m.layers[0].size, 33554432);
	assert_string_equal(
	    m.layers[0].digest + 7,
	    "2222222222222222222222222222222222222222222222222222222222222222");
	assert_int_equal(m.config_size, 10);
	assert_int_equal(te_image_manifest_set_config(&out, MANIFEST,
	                                              strlen(MANIFEST), newdig,
	                                              1234, &err),
	                 0);
	assert_non_null(strstr(out.ptr, newdig));
	assert_non_null(strstr(out.ptr, "\"size\":1234"));
	assert_non_null(strstr(out.ptr, "\"annotations\":{\"a\":\"b\"}"));
	assert_non_null(strstr(out.ptr, "\"size\":33554432"));
	te_image_manifest_dispose(&m);
	te_buf_dispose(&out);
}

static void manifest_rejects_bad_descriptors(void **state)
{
	static const char *const bad[] = {
	    "{\"config\":{\"digest\":\"sha256:12\",\"size\":1},\"layers\":[]}",
	    "{\"config\":{\"digest\":\"sha256:"
	    "1111111111111111111111111111111111111111111111111111111111111111"
	    "\",\"size\":-1},\"layers\":[]}",
	    "{\"config\":{\"digest\":\"sha256:"
	    "1111111111111111111111111111111111111111111111111111111111111111"
	    "\",\"size\":1},\"layers\":{}}",
	    "{\"config\":{\"digest\":\"sha256:"
	    "1111111111111111111111111111111111111111111111111111111111111111"
	    "\",\"size\":1},\"layers\":[{\"digest\":\"../../"
	    "etc\",\"size\":1}]}",
	};
	te_image_manifest m;
	size_t i;

	(void)state;
	for (i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		te_error err = TE_ERROR_INIT;

		assert_int_equal(
		    te_image_manifest_parse(&m, bad[i], strlen(bad[i]), &err),
		    TE_EINVALID);
	}
}

static void digest_helpers(void **state)
{
	char d[TE_DIGEST_STR_MAX];

	(void)state;
	te_image_sha256(d, "", 0);
	assert_string_equal(
	    d,
	    "sha256:"
	    "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855");
	assert_true(te_image_digest_valid(d));
	d[10] = 'A';
	assert_false(te_image_digest_valid(d));
	assert_false(te_image_digest_valid("sha512:00"));
	assert_true(te_image_is_manifest_type(
	    "application/vnd.oci.image.manifest.v1+json"));
	assert_false(te_image_is_manifest_type(
	    "application/vnd.oci.image.index.v1+json"));
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(relabel_strips_werf_prefix_only),
	    cmocka_unit_test(relabel_adds_and_overrides),
	    cmocka_unit_test(relabel_without_change_keeps_bytes),
	    cmocka_unit_test(relabel_creates_missing_labels),
	    cmocka_unit_test(relabel_rejects_hostile_configs),
	    cmocka_unit_test(manifest_parse_and_patch),
	    cmocka_unit_test(manifest_rejects_bad_descriptors),
	    cmocka_unit_test(digest_helpers),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
