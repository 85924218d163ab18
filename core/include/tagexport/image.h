/*
 * image.h - pure transformations of image manifests and configs.
 *
 * Registry documents are kept as raw bytes; these functions parse them
 * only to read fields and serialize only what they really change (a
 * re-serialized document gets a new digest).  All input is untrusted.
 */
#ifndef TAGEXPORT_IMAGE_H
#define TAGEXPORT_IMAGE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "tagexport/buf.h"
#include "tagexport/error.h"
#include "tagexport/labels.h"
#include "tagexport/registry.h"

/* "sha256:" + lowercase hex of SHA-256(data). */
void te_image_sha256(char out[TE_DIGEST_STR_MAX], const void *data, size_t len);

/* True for "sha256:" followed by exactly 64 lowercase hex digits. */
bool te_image_digest_valid(const char *digest);

/* True for OCI and Docker schema 2 single-image manifest media types. */
bool te_image_is_manifest_type(const char *media_type);

/*
 * A parsed single-image manifest: the config descriptor and the layers.
 * Owns its strings; release with te_image_manifest_dispose.
 */
typedef struct te_image_manifest {
	char config_digest[TE_DIGEST_STR_MAX];
	int64_t config_size;
	size_t nlayers;
	te_blob_desc *layers; /* digests point into layer_digests */
	char (*layer_digests)[TE_DIGEST_STR_MAX];
} te_image_manifest;

int te_image_manifest_parse(te_image_manifest *out, const void *data,
                            size_t len, te_error *err);
void te_image_manifest_dispose(te_image_manifest *m);

/*
 * werf export's label rewrite: drop every label whose key starts with
 * "werf", then set the extra labels.  out receives the new config bytes;
 * *changed is false (and out holds the original bytes) when nothing
 * changed, so digests stay stable.
 */
int te_image_relabel_config(te_buf *out, bool *changed, const void *config,
                            size_t len, const te_labels *add, te_error *err);

/* Manifest bytes with the config descriptor's digest and size replaced;
 * every other field is kept. */
int te_image_manifest_set_config(te_buf *out, const void *manifest, size_t len,
                                 const char *config_digest, size_t config_size,
                                 te_error *err);

#endif
