/*
 * secrets_int.h - werf.yaml build secrets (and the other keys that need
 * the machine: ssh, network) for one export run: the checks made before
 * anything is built, the werf-giterminism.yaml rules and the values
 * handed to the builder.
 *
 * Values are held only while one image builds, wiped before they are
 * freed, and never enter an error message, a log line, the content tag
 * or the image (the builder mounts them for RUN --mount=type=secret).
 */
#ifndef TAGEXPORT_SECRETS_INT_H
#define TAGEXPORT_SECRETS_INT_H

#include <stdbool.h>
#include <stddef.h>

#include "tagexport/build.h"
#include "tagexport/config.h"
#include "tagexport/error.h"
#include "tagexport/export.h"
#include "tagexport/gitsrc.h"

#define TE_SECRET_VALUE_MAX (1024 * 1024)

/*
 * Check every secret of img before anything is built: allowed by
 * werf-giterminism.yaml of the commit (unless loose), and its value
 * available from fn (env, src).  Errors name werf.yaml:LINE and the
 * secret, never its value.
 */
int te_secrets__check(te_gitsrc *src, const char *commit,
                      const te_image_config *img, const char *file, bool loose,
                      te_export_secret_fn fn, void *payload, te_error *err);

/*
 * Everything te_secrets__check checks, plus: an ssh: needs an agent or
 * keys in o (paths without ','), network none needs OCI isolation.
 * Errors name werf.yaml:LINE and the image.
 */
int te_secrets__check_image(const te_export_opts *o, te_gitsrc *src,
                            const char *commit, const te_image_config *img,
                            te_error *err);

/* RUN's ssh source for buildah --ssh ID=SOURCE: o's keys joined with ',',
 * else its agent socket. */
int te_secrets__ssh_source(te_buf *out, const te_export_opts *o, te_error *err);

/* The values of img's secrets, in werf.yaml order. */
typedef struct te_secret_values {
	te_build_secret *items;
	te_buf *values;
	size_t count;
} te_secret_values;

int te_secrets__resolve(te_secret_values *out, const te_image_config *img,
                        te_export_secret_fn fn, void *payload, te_error *err);

/* Wipe and free; out may be zeroed or partly filled. */
void te_secrets__dispose(te_secret_values *v);

#endif
