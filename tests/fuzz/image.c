/*
 * image.c - manifests, image configs and indexes a registry returns:
 * te_image_manifest_parse, te_image_manifest_set_config,
 * te_image_relabel_config, te_image_config_platform,
 * te_image_index_parse, te_image_index_rewrite, te_image_platform_parse
 * and _format, te_image_is_manifest_type / _is_index_type.
 * Input: one JSON document (every function reads the same bytes).
 */
#include "fuzz.h"
#include "tagexport/image.h"

#define NEW_DIGEST                                                             \
	"sha256:"                                                              \
	"0000000000000000000000000000000000000000000000000000000000000000"

static void manifest(const uint8_t *data, size_t size)
{
	te_image_manifest m;
	te_buf out = TE_BUF_INIT(1 << 20);
	te_error err = TE_ERROR_INIT;

	memset(&m, 0, sizeof(m));
	if (te_image_manifest_parse(&m, data, size, &err) == 0)
		(void)te_image_manifest_set_config(&out, data, size, NEW_DIGEST,
		                                   42, &err);
	te_image_manifest_dispose(&m);
	te_buf_dispose(&out);
}

static void config(const uint8_t *data, size_t size)
{
	te_labels *add = NULL;
	te_buf out = TE_BUF_INIT(1 << 20);
	te_error err = TE_ERROR_INIT;
	te_image_platform p;
	char s[TE_PLATFORM_STR_MAX];
	bool changed;

	if (te_labels_new(&add, &err) == 0 &&
	    te_labels_set(add, "org.opencontainers.image.source", "x", &err) ==
	        0)
		(void)te_image_relabel_config(&out, &changed, data, size, add,
		                              &err);
	te_labels_free(add);
	te_buf_dispose(&out);
	err = (te_error)TE_ERROR_INIT;
	if (te_image_config_platform(&p, data, size, &err) == 0)
		te_image_platform_format(s, &p);
}

static void index_doc(const uint8_t *data, size_t size)
{
	te_image_index idx;
	te_image_index_update up;
	te_buf out = TE_BUF_INIT(1 << 20);
	te_error err = TE_ERROR_INIT;
	char s[TE_PLATFORM_STR_MAX];
	bool changed;
	size_t i;

	memset(&idx, 0, sizeof(idx));
	if (te_image_index_parse(&idx, data, size, &err) == 0) {
		(void)te_image_is_index_type(idx.media_type);
		for (i = 0; i < idx.nentries; i++) {
			(void)te_image_is_manifest_type(
			    idx.entries[i].media_type);
			te_image_platform_format(s, &idx.entries[i].platform);
		}
		up.digest = idx.nentries ? idx.entries[0].digest : NEW_DIGEST;
		up.new_digest = NEW_DIGEST;
		up.new_size = 7;
		(void)te_image_index_rewrite(&out, &changed, data, size, &up, 1,
		                             true, &err);
	}
	te_image_index_dispose(&idx);
	te_buf_dispose(&out);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	char *f[1], *copy = fuzz_split(data, size, f, 1, NULL);
	te_image_platform p, q;
	te_error err = TE_ERROR_INIT;
	char s[TE_PLATFORM_STR_MAX];

	if (!copy)
		return 0;
	manifest(data, size);
	config(data, size);
	index_doc(data, size);
	if (strlen(copy) < 256 &&
	    te_image_platform_parse(&p, copy, &err) == 0) {
		te_image_platform_format(s, &p);
		err = (te_error)TE_ERROR_INIT;
		if (*s && (te_image_platform_parse(&q, s, &err) < 0 ||
		           !te_image_platform_matches(&p, &q)))
			abort(); /* formatting round-trips */
	}
	free(copy);
	return 0;
}
