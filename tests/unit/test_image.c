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

#define D1                                                                     \
	"sha256:"                                                              \
	"1111111111111111111111111111111111111111111111111111111111111111"
#define D2                                                                     \
	"sha256:"                                                              \
	"2222222222222222222222222222222222222222222222222222222222222222"
#define D3                                                                     \
	"sha256:"                                                              \
	"3333333333333333333333333333333333333333333333333333333333333333"
#define D9                                                                     \
	"sha256:"                                                              \
	"9999999999999999999999999999999999999999999999999999999999999999"
#define V2 "application/vnd.docker.distribution.manifest.v2+json"
#define OCIM "application/vnd.oci.image.manifest.v1+json"

/* An OCI index as BuildKit writes it: two images and an attestation. */
static const char INDEX[] =
    "{\"schemaVersion\":2,\"mediaType\":"
    "\"application/vnd.oci.image.index.v1+json\",\"manifests\":["
    "{\"mediaType\":\"" OCIM "\",\"digest\":\"" D1 "\",\"size\":100,"
    "\"platform\":{\"architecture\":\"amd64\",\"os\":\"linux\"},"
    "\"annotations\":{\"org.example.p\":\"amd\"}},"
    "{\"mediaType\":\"" OCIM "\",\"digest\":\"" D2 "\",\"size\":200,"
    "\"platform\":{\"architecture\":\"arm\",\"os\":\"linux\",\"variant\":"
    "\"v7\"},\"urls\":[\"https://example.com/x\"]},"
    "{\"mediaType\":\"" OCIM "\",\"digest\":\"" D3 "\",\"size\":300,"
    "\"annotations\":{\"vnd.docker.reference.digest\":\"" D1 "\","
    "\"vnd.docker.reference.type\":\"attestation-manifest\"},"
    "\"platform\":{\"architecture\":\"unknown\",\"os\":\"unknown\"}}],"
    "\"annotations\":{\"org.opencontainers.image.created\":\"now\"}}";

static void index_parse_reads_entries(void **state)
{
	te_image_index idx;
	te_error err = TE_ERROR_INIT;
	char p[TE_PLATFORM_STR_MAX];

	(void)state;
	assert_int_equal(te_image_index_parse(&idx, INDEX, strlen(INDEX), &err),
	                 0);
	assert_string_equal(idx.media_type,
	                    "application/vnd.oci.image.index.v1+json");
	assert_int_equal(idx.nentries, 3);
	assert_string_equal(idx.entries[0].digest, D1);
	assert_int_equal(idx.entries[1].size, 200);
	assert_string_equal(idx.entries[1].media_type, OCIM);
	te_image_platform_format(p, &idx.entries[1].platform);
	assert_string_equal(p, "linux/arm/v7");
	assert_false(idx.entries[0].attestation);
	assert_false(idx.entries[1].attestation);
	assert_true(idx.entries[2].attestation);
	te_image_index_dispose(&idx);
	assert_true(te_image_is_index_type(
	    "application/vnd.docker.distribution.manifest.list.v2+json"));
	assert_false(te_image_is_index_type(V2));
}

static void index_rewrite_replaces_digests_only(void **state)
{
	const te_image_index_update up[] = {{D1, D9, 1234}};
	te_buf out = TE_BUF_INIT(1 << 20);
	te_error err = TE_ERROR_INIT;
	te_image_index idx;
	bool changed = false;

	(void)state;
	assert_int_equal(te_image_index_rewrite(&out, &changed, INDEX,
	                                        strlen(INDEX), up, 1, false,
	                                        &err),
	                 0);
	assert_true(changed);
	assert_null(strstr(out.ptr, D1 "\",\"size\":100"));
	/* The entry keeps its place, mediaType, platform and annotations. */
	assert_non_null(
	    strstr(out.ptr, "{\"mediaType\":\"" OCIM "\",\"digest\":\"" D9
	                    "\",\"size\":1234,\"platform\":{\"architecture\":"
	                    "\"amd64\",\"os\":\"linux\"},\"annotations\":{"
	                    "\"org.example.p\":\"amd\"}}"));
	assert_non_null(strstr(out.ptr, "\"variant\":\"v7\"},\"urls\":["));
	assert_non_null(
	    strstr(out.ptr, "\"org.opencontainers.image.created\""));
	/* The attestation stays when not asked to drop it. */
	assert_non_null(strstr(out.ptr, D3));
	assert_int_equal(te_image_index_parse(&idx, out.ptr, out.len, &err), 0);
	assert_int_equal(idx.nentries, 3);
	assert_string_equal(idx.entries[0].digest, D9);
	assert_string_equal(idx.entries[1].digest, D2);
	te_image_index_dispose(&idx);
	te_buf_dispose(&out);
}

static void index_rewrite_drops_attestations(void **state)
{
	const te_image_index_update up[] = {{D1, D9, 1}, {D2, D1, 2}};
	static const char only_att[] =
	    "{\"schemaVersion\":2,\"manifests\":[{\"digest\":\"" D3 "\","
	    "\"size\":1,\"platform\":{\"architecture\":\"unknown\",\"os\":"
	    "\"unknown\"}}]}";
	te_buf out = TE_BUF_INIT(1 << 20);
	te_error err = TE_ERROR_INIT;
	te_image_index idx;
	bool changed = false;

	(void)state;
	assert_int_equal(te_image_index_rewrite(&out, &changed, INDEX,
	                                        strlen(INDEX), up, 2, true,
	                                        &err),
	                 0);
	assert_true(changed);
	assert_null(strstr(out.ptr, D3));
	assert_null(strstr(out.ptr, "attestation"));
	assert_int_equal(te_image_index_parse(&idx, out.ptr, out.len, &err), 0);
	assert_int_equal(idx.nentries, 2);
	/* Updates apply to the old digests, not one after another. */
	assert_string_equal(idx.entries[0].digest, D9);
	assert_string_equal(idx.entries[1].digest, D1);
	assert_int_equal(idx.entries[1].size, 2);
	te_image_index_dispose(&idx);
	assert_int_equal(te_image_index_rewrite(&out, &changed, only_att,
	                                        strlen(only_att), NULL, 0, true,
	                                        &err),
	                 TE_EINVALID);
	te_buf_dispose(&out);
}

static void index_rewrite_without_change_keeps_bytes(void **state)
{
	static const char spaced[] =
	    "{ \"schemaVersion\": 2, \"manifests\": [ {\"digest\": \"" D1
	    "\", \"size\": 5} ] }";
	const te_image_index_update same[] = {{D1, D1, 5}, {D2, D9, 7}};
	te_buf out = TE_BUF_INIT(1 << 20);
	te_error err = TE_ERROR_INIT;
	bool changed = true;

	(void)state;
	assert_int_equal(te_image_index_rewrite(&out, &changed, spaced,
	                                        strlen(spaced), same, 2, true,
	                                        &err),
	                 0);
	assert_false(changed);
	assert_string_equal(out.ptr, spaced);
	te_buf_dispose(&out);
}

static void index_rejects_hostile_documents(void **state)
{
#define ENTRY(x) "{\"schemaVersion\":2,\"manifests\":[" x "]}"
	static const char *const bad[] = {
	    "",
	    "[]",
	    "{\"manifests\":[]}",
	    "{\"schemaVersion\":1,\"manifests\":[]}",
	    "{\"schemaVersion\":\"2\",\"manifests\":[]}",
	    "{\"schemaVersion\":2}",
	    "{\"schemaVersion\":2,\"manifests\":{}}",
	    "{\"schemaVersion\":2,\"mediaType\":7,\"manifests\":[]}",
	    "{\"schemaVersion\":2,\"schemaVersion\":2,\"manifests\":[]}",
	    ENTRY("1"),
	    ENTRY("{\"size\":1}"),
	    ENTRY("{\"digest\":\"sha256:12\",\"size\":1}"),
	    ENTRY("{\"digest\":\"" D1 "\\u0000x\",\"size\":1}"),
	    ENTRY("{\"digest\":\"" D1 "\",\"size\":-1}"),
	    ENTRY("{\"digest\":\"" D1 "\",\"size\":\"1\"}"),
	    ENTRY("{\"digest\":\"" D1 "\",\"size\":1,\"mediaType\":[]}"),
	    ENTRY("{\"digest\":\"" D1 "\",\"size\":1,\"platform\":\"x\"}"),
	    ENTRY("{\"digest\":\"" D1 "\",\"size\":1,\"platform\":{\"os\":"
	          "\"linux\"}}"),
	    ENTRY("{\"digest\":\"" D1 "\",\"size\":1,\"platform\":{\"os\":"
	          "\"linux\",\"architecture\":\"a/../b\"}}"),
	    ENTRY("{\"digest\":\"" D1 "\",\"size\":1,\"platform\":{\"os\":"
	          "\"linux\",\"architecture\":\"amd64\",\"variant\":\"\\n\"}}"),
	    ENTRY("{\"digest\":\"" D1 "\",\"size\":1,\"annotations\":[]}"),
	    ENTRY("{\"digest\":\"" D1 "\",\"size\":1,\"size\":2}"),
	};
#undef ENTRY
	const te_image_index_update up[] = {{D1, "sha256:nope", 1}};
	te_buf big = TE_BUF_INIT(1 << 20);
	te_buf out = TE_BUF_INIT(1 << 20);
	te_image_index idx;
	te_error err = TE_ERROR_INIT;
	bool changed;
	size_t i;

	(void)state;
	for (i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		te_error e = TE_ERROR_INIT;

		assert_int_equal(
		    te_image_index_parse(&idx, bad[i], strlen(bad[i]), &e),
		    TE_EINVALID);
		assert_true(strlen(e.msg) > 0);
		te_error_clear(&e);
		assert_int_equal(te_image_index_rewrite(&out, &changed, bad[i],
		                                        strlen(bad[i]), NULL, 0,
		                                        true, &e),
		                 TE_EINVALID);
	}
	/* Too many entries: each one would be a registry round trip. */
	assert_int_equal(
	    te_buf_puts(&big, "{\"schemaVersion\":2,\"manifests\":[", &err), 0);
	for (i = 0; i <= TE_IMAGE_INDEX_MAX_ENTRIES; i++)
		assert_int_equal(te_buf_printf(&big, &err,
		                               "%s{\"digest\":\"" D1
		                               "\",\"size\":1}",
		                               i ? "," : ""),
		                 0);
	assert_int_equal(te_buf_puts(&big, "]}", &err), 0);
	assert_int_equal(te_image_index_parse(&idx, big.ptr, big.len, &err),
	                 TE_EINVALID);
	te_error_clear(&err);
	/* A malformed update is refused before anything is written. */
	assert_int_equal(te_image_index_rewrite(&out, &changed, INDEX,
	                                        strlen(INDEX), up, 1, false,
	                                        &err),
	                 TE_EINVALID);
	te_buf_dispose(&big);
	te_buf_dispose(&out);
}

static void index_build_is_deterministic(void **state)
{
	te_image_index_child c[2];
	te_buf out = TE_BUF_INIT(1 << 20);
	te_buf again = TE_BUF_INIT(1 << 20);
	te_error err = TE_ERROR_INIT;

	(void)state;
	memset(c, 0, sizeof(c));
	c[0].media_type = V2;
	c[0].digest = D1;
	c[0].size = 528;
	assert_int_equal(
	    te_image_platform_parse(&c[0].platform, "linux/amd64", &err), 0);
	c[1] = c[0];
	c[1].digest = D2;
	assert_int_equal(
	    te_image_platform_parse(&c[1].platform, "linux/arm/v7", &err), 0);
	assert_int_equal(
	    te_image_index_build(
	        &out,
	        "application/vnd.docker.distribution.manifest.list.v2+json", c,
	        2, &err),
	    0);
	assert_string_equal(
	    out.ptr,
	    "{\"schemaVersion\":2,\"mediaType\":\"application/"
	    "vnd.docker.distribution.manifest.list.v2+json\",\"manifests\":["
	    "{\"mediaType\":\"" V2 "\",\"size\":528,\"digest\":\"" D1 "\","
	    "\"platform\":{\"architecture\":\"amd64\",\"os\":\"linux\"}},"
	    "{\"mediaType\":\"" V2 "\",\"size\":528,\"digest\":\"" D2 "\","
	    "\"platform\":{\"architecture\":\"arm\",\"os\":\"linux\","
	    "\"variant\":\"v7\"}}]}");
	assert_int_equal(
	    te_image_index_build(
	        &again,
	        "application/vnd.docker.distribution.manifest.list.v2+json", c,
	        2, &err),
	    0);
	assert_string_equal(out.ptr, again.ptr);
	/* Not an index type; no children; a child that is not an image. */
	assert_int_equal(te_image_index_build(&out, V2, c, 2, &err),
	                 TE_EINVALID);
	te_error_clear(&err);
	assert_int_equal(
	    te_image_index_build(
	        &out, "application/vnd.oci.image.index.v1+json", c, 0, &err),
	    TE_EINVALID);
	te_error_clear(&err);
	c[1].media_type = "application/vnd.oci.image.index.v1+json";
	assert_int_equal(
	    te_image_index_build(
	        &out, "application/vnd.oci.image.index.v1+json", c, 2, &err),
	    TE_EINVALID);
	te_buf_dispose(&out);
	te_buf_dispose(&again);
}

static void platforms(void **state)
{
	static const char *const bad[] = {"",
	                                  "linux",
	                                  "linux/",
	                                  "/amd64",
	                                  "linux//v7",
	                                  "linux/amd64/",
	                                  "linux/amd64/v8/x",
	                                  "linux/am d64",
	                                  "linux/amd64\n"};
	te_image_platform want, have;
	te_error err = TE_ERROR_INIT;
	char s[TE_PLATFORM_STR_MAX];
	size_t i;

	(void)state;
	assert_int_equal(te_image_platform_parse(&want, "linux/arm64", &err),
	                 0);
	assert_int_equal(te_image_platform_parse(&have, "linux/arm64/v8", &err),
	                 0);
	te_image_platform_format(s, &have);
	assert_string_equal(s, "linux/arm64/v8");
	assert_true(te_image_platform_matches(&want, &have));
	assert_false(te_image_platform_matches(&have, &want));
	assert_int_equal(te_image_platform_parse(&have, "linux/amd64", &err),
	                 0);
	assert_false(te_image_platform_matches(&want, &have));
	for (i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		te_error e = TE_ERROR_INIT;

		assert_int_equal(te_image_platform_parse(&want, bad[i], &e),
		                 TE_EINVALID);
	}
	assert_int_equal(
	    te_image_config_platform(&have, CONFIG, strlen(CONFIG), &err), 0);
	te_image_platform_format(s, &have);
	assert_string_equal(s, "linux/amd64");
	assert_int_equal(
	    te_image_config_platform(&have, "{\"os\":\"linux\"}", 15, &err),
	    TE_EINVALID);
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
	    cmocka_unit_test(index_parse_reads_entries),
	    cmocka_unit_test(index_rewrite_replaces_digests_only),
	    cmocka_unit_test(index_rewrite_drops_attestations),
	    cmocka_unit_test(index_rewrite_without_change_keeps_bytes),
	    cmocka_unit_test(index_rejects_hostile_documents),
	    cmocka_unit_test(index_build_is_deterministic),
	    cmocka_unit_test(platforms),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
