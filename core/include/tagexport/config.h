/*
 * config.h - werf.yaml: document splitting, the meta document and
 * Dockerfile image documents (werf-export.md 2.3-2.6).
 *
 * Input is the committed werf.yaml bytes; nothing is read from disk here.
 * Stapel images, artifacts and Go templates ({{ }}) are rejected with a
 * TE_EUNSUPPORTED error.  Every other mistake is TE_EINVALID with
 * "<file>:<line>: <what>".  The te_werf_config owns all its strings.
 */
#ifndef TAGEXPORT_CONFIG_H
#define TAGEXPORT_CONFIG_H

#include <stdbool.h>
#include <stddef.h>

#include "tagexport/buf.h"
#include "tagexport/error.h"

typedef struct te_image_config {
	char *name;          /* werf image name */
	char *dockerfile;    /* relative to context; "Dockerfile" if empty */
	char *context;       /* relative to the project dir; "" = project dir */
	char *target;        /* NULL when not set */
	te_strvec args;      /* "NAME=VALUE", sorted by name */
	te_strvec platforms; /* image platform, else meta build.platform */
	bool final;          /* default true */
	int line;            /* line of the document's first key */
} te_image_config;

typedef struct te_werf_config {
	char *project;
	size_t nimages;
	te_image_config *images; /* in file order */
} te_werf_config;

int te_config_parse(te_werf_config **out, const char *data, size_t len,
                    const char *filename, te_error *err);
void te_config_free(te_werf_config *cfg);

#endif
