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

/* True for the OCI index and the Docker manifest list media types. */
bool te_image_is_index_type(const char *media_type);

#define TE_IMAGE_INDEX_MAX_ENTRIES 256
#define TE_PLATFORM_FIELD_MAX 32
#define TE_PLATFORM_STR_MAX (3 * TE_PLATFORM_FIELD_MAX)

/*
 * A platform as an index entry describes it.  Every field is empty or
 * 1-31 characters of [A-Za-z0-9._-]; variant may be empty.
 */
typedef struct te_image_platform {
	char os[TE_PLATFORM_FIELD_MAX];
	char architecture[TE_PLATFORM_FIELD_MAX];
	char variant[TE_PLATFORM_FIELD_MAX];
} te_image_platform;

/* Parse "os/arch[/variant]" as written in werf.yaml ("linux/arm64"). */
int te_image_platform_parse(te_image_platform *out, const char *text,
                            te_error *err);

/* The platform an image config declares (its os, architecture and
 * variant fields); TE_EINVALID when os or architecture is missing. */
int te_image_config_platform(te_image_platform *out, const void *config,
                             size_t len, te_error *err);

/* True when have is the platform want asks for: same os and
 * architecture, and the same variant when want names one. */
bool te_image_platform_matches(const te_image_platform *want,
                               const te_image_platform *have);

/* "os/arch[/variant]"; "" when os and architecture are both empty. */
void te_image_platform_format(char out[TE_PLATFORM_STR_MAX],
                              const te_image_platform *p);

/*
 * One entry of an image index (OCI index or Docker manifest list).
 * attestation is true for BuildKit attestation manifests (annotation
 * vnd.docker.reference.type=attestation-manifest, or platform
 * unknown/unknown): they describe an image rather than being one.
 */
typedef struct te_image_index_entry {
	char digest[TE_DIGEST_STR_MAX];
	int64_t size;
	char media_type[128]; /* "" when the entry has no mediaType */
	bool has_platform;
	te_image_platform platform;
	bool attestation;
} te_image_index_entry;

/* A parsed index; release with te_image_index_dispose. */
typedef struct te_image_index {
	char media_type[128]; /* the document's mediaType, "" if absent */
	size_t nentries;
	te_image_index_entry *entries;
} te_image_index;

/*
 * Parse an index.  Rejected (TE_EINVALID): anything but a JSON object with
 * schemaVersion 2 and a "manifests" array of at most
 * TE_IMAGE_INDEX_MAX_ENTRIES descriptors, each with a valid sha256 digest,
 * a non-negative size, a string mediaType when present and a platform
 * object of well-formed strings when present; duplicate keys.
 */
int te_image_index_parse(te_image_index *out, const void *data, size_t len,
                         te_error *err);
void te_image_index_dispose(te_image_index *idx);

/* Replace the entries whose digest is `digest` with new_digest and
 * new_size. */
typedef struct te_image_index_update {
	const char *digest;
	const char *new_digest;
	int64_t new_size;
} te_image_index_update;

/*
 * The index bytes with every update applied and, when drop_attestations
 * is set, attestation entries removed.  Everything else is kept as it was:
 * each entry's mediaType, platform, annotations, urls and artifactType,
 * and the index's own mediaType and annotations.  *changed is false (and
 * out holds the original bytes) when nothing changed, so digests stay
 * stable.  The input must pass te_image_index_parse; every update names a
 * valid new digest and a non-negative size.
 */
int te_image_index_rewrite(te_buf *out, bool *changed, const void *index,
                           size_t len, const te_image_index_update *updates,
                           size_t nupdates, bool drop_attestations,
                           te_error *err);

/* An entry of a new index. */
typedef struct te_image_index_child {
	const char *media_type;
	const char *digest;
	int64_t size;
	te_image_platform platform;
} te_image_index_child;

/*
 * A new index of media type `media_type` listing children in the given
 * order, each with its platform.  The bytes depend only on the input, so
 * the same children always give the same index digest.
 */
int te_image_index_build(te_buf *out, const char *media_type,
                         const te_image_index_child *children, size_t n,
                         te_error *err);

#endif
