/*
 * config.h - werf.yaml: document splitting, the meta document and
 * Dockerfile image documents (werf-export.md 2.3-2.6).
 *
 * Input is werf.yaml as rendered by te_werfcfg_render (werfcfg.h): a
 * `{{` left in it is plain text.  Nothing is read from disk here.
 * Stapel documents (image: or artifact: without dockerfile:) are parsed by
 * the Stapel module (stapel.h); keys it cannot honour are TE_EUNSUPPORTED
 * naming the key and line.  Every other mistake is TE_EINVALID with
 * "<file>:<line>: <what>".  The te_werf_config owns all its strings.
 */
#ifndef TAGEXPORT_CONFIG_H
#define TAGEXPORT_CONFIG_H

#include <stdbool.h>
#include <stddef.h>

#include "tagexport/buf.h"
#include "tagexport/error.h"
#include "tagexport/stapel.h"
#include "tagexport/imagespec.h"

/*
 * Budgets: hostile werf.yaml stays cheap.  Each is checked before the work
 * it bounds, and its error names the limit.
 */
#define TE_CONFIG_MAX_SIZE (1024 * 1024) /* bytes of werf.yaml */
#define TE_CONFIG_MAX_DEPTH 64           /* nested mappings and sequences */
#define TE_CONFIG_MAX_EVENTS 200000      /* yaml events of one document */
#define TE_CONFIG_MAX_VISITS 1000000     /* nodes validated, aliases followed */
#define TE_CONFIG_MAX_IMAGES 1000        /* images in one werf.yaml */
#define TE_CONFIG_MAX_STRING (64 * 1024) /* bytes of one scalar */

/* werf's dependency import types (werf_yaml.yml, dependencies). */
typedef enum {
	TE_IMPORT_IMAGE_NAME = 0,   /* "host/repo:tag" of the dependency */
	TE_IMPORT_IMAGE_DIGEST = 1, /* its manifest digest */
	TE_IMPORT_IMAGE_REPO = 2,   /* "host/repo" */
	TE_IMPORT_IMAGE_TAG = 3     /* its content-based tag */
} te_import_type;

typedef struct te_image_import {
	te_import_type type;
	char *build_arg; /* targetBuildArg */
} te_image_import;

typedef struct te_image_dependency {
	char *image; /* a name of an image of the same werf.yaml */
	te_image_import *imports;
	size_t nimports;
	int line;
} te_image_dependency;
/* A build secret (https://werf.io/docs/v2/usage/build/images.html, "Using
 * build secrets"): RUN --mount=type=secret,id=<id> reads it. */
typedef enum {
	TE_SECRET_ENV = 0,  /* ref: an environment variable name */
	TE_SECRET_SRC = 1,  /* ref: a file path of the machine ("~/" = home) */
	TE_SECRET_VALUE = 2 /* ref: the value itself, written in werf.yaml */
} te_secret_kind;

typedef struct te_secret_config {
	char *id; /* env: the name, src: the file's base name by default */
	te_secret_kind kind;
	char *ref;
	int line; /* werf.yaml line of the entry */
} te_secret_config;

#define TE_CONFIG_MAX_SECRETS 64

typedef struct te_image_config {
	char *name;          /* werf image name */
	char *dockerfile;    /* relative to context; "Dockerfile" if empty */
	char *context;       /* relative to the project dir; "" = project dir */
	char *target;        /* NULL when not set */
	te_strvec args;      /* "NAME=VALUE", sorted by name */
	te_strvec platforms; /* image platform, else meta build.platform */
	bool final;          /* default true; false for artifacts */
	int line;            /* line of the document's first key */
	te_stapel_image *stapel;   /* a Stapel image (dockerfile, context,
	                            * target, args unset); NULL: Dockerfile */
	char *cache_version;       /* cacheVersion; NULL when not set */
	char *build_cache_version; /* meta build.cacheVersion; NULL if unset */
	bool staged;               /* staged, else meta build.staged */
	bool staged_set;           /* staged was given on the image itself */
	te_image_dependency *deps; /* dependencies, in file order; every
	                              image names an image of the config */
	size_t ndeps;
	/* imageSpec with build.imageSpec merged under it (final images) */
	te_imagespec imagespec;
	char *network;       /* "default", "none" or NULL (default) */
	te_strvec add_hosts; /* "host:ip", werf.yaml order */
	char *ssh;    /* ssh: the id RUN --mount=type=ssh names, or NULL */
	int ssh_line; /* its werf.yaml line */
	te_secret_config *secrets; /* werf.yaml order, ids unique */
	size_t nsecrets;
} te_image_config;

typedef struct te_werf_config {
	char *project;
	size_t nimages;
	te_image_config *images; /* in file order */
} te_werf_config;

/* Is the line p[0..len) (no newline) a document separator by werf's rule:
 * `---`, then only spaces, tabs or CRs, optionally a `#` comment. */
bool te_config_is_separator(const char *p, size_t len);

int te_config_parse(te_werf_config **out, const char *data, size_t len,
                    const char *filename, te_error *err);
void te_config_free(te_werf_config *cfg);

/**
 * Scan YAML text with libyaml's event parser, without building a tree, so
 * that a document is only loaded once its shape is known to be cheap: at
 * most one document, nesting at most TE_CONFIG_MAX_DEPTH levels, at most
 * TE_CONFIG_MAX_EVENTS events; with unique_keys, no mapping repeats a
 * scalar key (libyaml itself accepts duplicates).  Pure.
 *
 * @param file   name used in messages, "<file>:<line>: <what>"
 * @param line0  file line of data[0]
 * @return 0; TE_EINVALID (syntax error or a limit exceeded); TE_ENOMEM
 */
int te_config_yaml_scan(const char *data, size_t len, const char *file,
                        int line0, bool unique_keys, te_error *err);

/* werf-giterminism.yaml's config.secrets allow lists. */
typedef struct te_secrets_allowed {
	te_strvec env_variables; /* allowEnvVariables: names or /RE/ */
	te_strvec files;         /* allowFiles: paths or globs (fnmatch) */
	te_strvec value_ids;     /* allowValueIds: ids */
} te_secrets_allowed;

/*
 * Read config.secrets of werf-giterminism.yaml text (data may be NULL: no
 * file, nothing allowed).  out must be zeroed; release its lists with
 * te_strvec_dispose.  TE_EINVALID names the file and what is wrong.
 */
int te_config_secrets_allowed(te_secrets_allowed *out, const char *data,
                              size_t len, te_error *err);

/*
 * Is secret s of an image allowed?  TE_EINVALID "werf.yaml:LINE: secret
 * ... is not allowed by werf-giterminism.yaml (config.secrets.<list>)"
 * otherwise.  file is werf.yaml's name in messages.
 */
int te_config_secret_check(const te_secrets_allowed *allowed,
                           const te_secret_config *s, const char *file,
                           te_error *err);

#endif
