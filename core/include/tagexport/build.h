/*
 * build.h - build an image with buildah and push it to the stages repo.
 *
 * buildah is exec'd with an argv array (never a shell), with its own
 * storage under state_dir, vfs storage and chroot isolation so it works
 * without a daemon or overlay support.  Output lines of buildah go to the
 * te_log at debug level.  Credentials reach buildah through --authfile
 * (a docker config.json), never through argv.
 */
#ifndef TAGEXPORT_BUILD_H
#define TAGEXPORT_BUILD_H

#include <stdbool.h>
#include <stddef.h>

#include "tagexport/error.h"
#include "tagexport/labels.h"
#include "tagexport/log.h"

typedef struct te_build_opts {
	const char *buildah;     /* program name or path; NULL = "buildah" */
	const char *state_dir;   /* storage root lives in <state_dir>/buildah */
	const char *context_dir; /* materialized build context */
	const char *dockerfile;  /* path of the Dockerfile inside context_dir */
	const char *target;      /* NULL: last stage */
	const char *const *build_args; /* "NAME=VALUE" */
	size_t nbuild_args;
	const char *platform;    /* NULL: native */
	const te_labels *labels; /* werf metadata labels for the stages image */
	const char *image_ref;   /* push destination, "host/repo:tag" */
	const char *authfile;    /* config.json with auths, may be NULL */
	const char *const *insecure_hosts; /* "host[:port]": plain HTTP, no TLS
	                                      verification, for pull and push */
	size_t ninsecure_hosts;
	bool skip_tls_verify; /* https without verification everywhere */
	te_log log;
} te_build_opts;

/* Build and push; digest_out gets the pushed manifest digest
 * ("sha256:<64 hex>"). */
int te_build_and_push(char digest_out[72], const te_build_opts *opts,
                      te_error *err);

#endif
