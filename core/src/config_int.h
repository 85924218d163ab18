/*
 * config_int.h - the werf.yaml document machinery config.c shares with
 * the Stapel document parser (stapel/config.c).  Private to the core.
 *
 * A struct ctx is one loaded YAML document being turned into typed
 * config; every error goes through te_config__fail, so it reads
 * "<file>:<line>: <what>" with the line of the offending node.
 */
#ifndef TAGEXPORT_CONFIG_INT_H
#define TAGEXPORT_CONFIG_INT_H

#include <stdbool.h>
#include <stddef.h>

#include <yaml.h>

#include "tagexport/error.h"

enum kind {
	K_ANY,         /* any valid YAML */
	K_STR,         /* scalar (yaml.v2 stores any scalar in a string) */
	K_BOOL,        /* YAML 1.1 boolean */
	K_INT,         /* decimal integer */
	K_STRLIST,     /* sequence of scalars */
	K_STR_OR_LIST, /* scalar or sequence of scalars */
	K_MAP,         /* mapping with the keys of sub */
	K_STRMAP,      /* mapping of scalar to scalar */
	K_MAPLIST      /* sequence of K_MAP */
};

/* One key of a schema table; a table ends with a NULL name. */
struct field {
	const char *name;
	enum kind kind;
	const struct field *sub;
};

struct ctx {
	const char *file;
	yaml_document_t *doc;
	int line0; /* file line of the document's first line */
	size_t visits;
	te_error *err;
};

int te_config__node_line(const struct ctx *c, const yaml_node_t *n);
int te_config__fail(struct ctx *c, const yaml_node_t *n, te_code code,
                    const char *fmt, ...) TE_PRINTF(4, 5);
/* The text of a scalar node; "" for anything else (borrowed). */
const char *te_config__scalar(const yaml_node_t *n);
bool te_config__is_null(const yaml_node_t *n);
/* YAML 1.1 booleans as yaml.v2 resolves them; -1 when not a boolean. */
int te_config__bool_value(const yaml_node_t *n);
bool te_config__is_string(const yaml_node_t *n);
yaml_node_t *te_config__get_node(struct ctx *c, int idx);
yaml_node_t *te_config__map_get(struct ctx *c, const yaml_node_t *map,
                                const char *key);
/* Validate mapping n against fields: unknown keys, duplicate keys, types,
 * depth and the visit budget; name is the enclosing key for messages. */
int te_config__validate_map(struct ctx *c, const yaml_node_t *n,
                            const struct field *fields, const char *name,
                            int depth);
int te_config__check_name(struct ctx *c, const yaml_node_t *n);
/* *out = heap copy of the scalar, deflt when n is absent or null. */
int te_config__opt_string(struct ctx *c, char **out, const yaml_node_t *n,
                          const char *deflt);
/* *out = filepath.Clean of a relative path that stays inside. */
int te_config__check_path(struct ctx *c, const yaml_node_t *n,
                          const char *field, char **out);

/* filepath.Clean of a relative path (heap); NULL when it is absolute or
 * leaves its root through "..", or (err set) out of memory. */
char *te_config__clean_rel(const char *in, te_error *err);

/* A libyaml parser error as "<file>:<line>: yaml: <problem>" (line0: the
 * file line of the text's first line). */
int te_config__yaml_fail(const char *file, int line0, const yaml_parser_t *p,
                         te_error *err);

/* A whole YAML file other than werf.yaml (werf-giterminism.yaml): the
 * budgets of te_config_yaml_scan, then libyaml's document; errors as
 * te_config__yaml_fail with name.  On success *doc is the caller's
 * (yaml_document_delete). */
int te_config__load_doc(yaml_document_t *doc, const char *data, size_t len,
                        const char *name, te_error *err);

/* config_keys.c: the image keys beyond the build (each NULL node: not
 * set). */
struct te_image_config;
struct te_imagespec;
int te_config__parse_dependencies(struct ctx *c, struct te_image_config *img,
                                  const yaml_node_t *n);
int te_config__parse_imagespec(struct ctx *c, struct te_imagespec *s,
                               const yaml_node_t *n);
int te_config__parse_network(struct ctx *c, struct te_image_config *img,
                             const yaml_node_t *n);
int te_config__parse_add_hosts(struct ctx *c, struct te_image_config *img,
                               const yaml_node_t *n);
int te_config__parse_ssh(struct ctx *c, struct te_image_config *img,
                         const yaml_node_t *n);
int te_config__parse_secrets(struct ctx *c, struct te_image_config *img,
                             const yaml_node_t *n);

#endif
