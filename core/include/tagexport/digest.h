/*
 * digest.h - content-based tags: SHA3-224 over an image's real build
 * inputs at one commit (werf's Sha3_224Hash joins fields with ":::").
 *
 * Inputs of one Dockerfile image: the Dockerfile bytes, target, build args,
 * platform, the base image references of the stages the target needs, and
 * the git blob ids (with path and mode) of the context files that its
 * COPY/ADD instructions can read after .dockerignore.  No timestamps: the
 * same commit gives the same tag on any machine.
 */
#ifndef TAGEXPORT_DIGEST_H
#define TAGEXPORT_DIGEST_H

#include <stddef.h>

#include "tagexport/buf.h"
#include "tagexport/config.h"
#include "tagexport/error.h"
#include "tagexport/gitsrc.h"

#define TE_CONTENT_TAG_LEN 56

/* Incremental hasher: fields are separated by ":::" as werf does. */
typedef struct te_digest te_digest;
int te_digest_new(te_digest **out, te_error *err);
int te_digest_field(te_digest *d, const void *data, size_t len, te_error *err);
int te_digest_final(char out[TE_CONTENT_TAG_LEN + 1], te_digest *d,
                    te_error *err);
void te_digest_free(te_digest *d);

typedef struct te_image_inputs {
	char content_tag[TE_CONTENT_TAG_LEN + 1];
	char *context_dir;     /* project-relative context directory */
	char *dockerfile_path; /* context-relative Dockerfile path */
	te_strvec files;       /* context-relative files a build may read,
	                          sorted; includes the Dockerfile and
	                          .dockerignore when present */
	te_strvec bases;       /* base image references */
} te_image_inputs;

#define TE_IMAGE_INPUTS_INIT                                                   \
	{                                                                      \
		{0}, NULL, NULL, TE_STRVEC_INIT, TE_STRVEC_INIT                \
	}

/* platform: the one platform being built, or NULL for the native one. */
int te_digest_image(te_image_inputs *out, te_gitsrc *src, const char *commit,
                    const te_image_config *img, const char *platform,
                    te_error *err);
void te_image_inputs_dispose(te_image_inputs *in);

/*
 * The content-based tag of a multi-platform image (werf-export.md 3):
 * SHA3-224 over the per-platform content tags, ":::"-joined, in the order
 * of their platforms sorted by strcmp.  tags[i] is the te_digest_image
 * tag of platforms[i]; the input order does not matter.  TE_EINVALID for
 * fewer than two platforms, a platform listed twice or a tag that is not
 * TE_CONTENT_TAG_LEN lowercase hex digits.
 */
int te_digest_multiplatform(char out[TE_CONTENT_TAG_LEN + 1],
                            const char *const *platforms,
                            const char *const *tags, size_t n, te_error *err);

#endif
