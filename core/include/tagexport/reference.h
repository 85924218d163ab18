/*
 * reference.h - image references as docker/distribution parses them.
 *
 * Grammar and normalisation: ../shared/reference/oci-distribution.md
 * section 3 (splitDockerDomain).  A te_ref is a plain value; its strings
 * are owned by it and released with te_ref_dispose.
 */
#ifndef TAGEXPORT_REFERENCE_H
#define TAGEXPORT_REFERENCE_H

#include <stdbool.h>

#include "tagexport/error.h"

typedef struct te_ref {
	char *domain; /* "docker.io" for Docker Hub (index.docker.io too) */
	char *path;   /* repository path, "library/x" added for bare names */
	char *tag;    /* "latest" when neither tag nor digest was given */
	char *digest; /* "sha256:<64 hex>" or NULL */
} te_ref;

#define TE_REF_INIT                                                            \
	{                                                                      \
		NULL, NULL, NULL, NULL                                         \
	}

/* Parse and normalise s.  Errors (TE_EINVALID) name what was wrong. */
int te_ref_parse(te_ref *out, const char *s, te_error *err);

/* Parse a repository without tag or digest ("host/path", for --repo);
 * either one is a TE_EINVALID error.  out->tag and out->digest stay NULL. */
int te_ref_parse_repo(te_ref *out, const char *s, te_error *err);

void te_ref_dispose(te_ref *ref);

/* Host to talk to: docker.io -> registry-1.docker.io, else domain. */
const char *te_ref_api_host(const te_ref *ref);

/* True for localhost, 127.0.0.0/8 and [::1] (with any port). */
bool te_ref_host_is_loopback(const char *domain);

/* True when s is a valid tag: [A-Za-z0-9_][A-Za-z0-9_.-]{0,127}. */
bool te_ref_tag_valid(const char *s);

/* "domain/path:tag" (or "@digest"); caller frees. */
char *te_ref_format(const te_ref *ref);

#endif
