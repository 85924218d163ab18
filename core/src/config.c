/*
 * config.c - werf.yaml parsing (werf-export.md 2.3-2.6) with libyaml.
 *
 * Invariants:
 *  1. The text is split into sections exactly like werf's splitContent:
 *     a separator is a line "---" followed only by blanks/CR and an
 *     optional "#comment".  Each section remembers its first file line, so
 *     every error names a real line: "<file>:<line>: <message>".
 *  2. Each section is first scanned with the event API (cheap, no tree)
 *     to bound nesting depth and node count, then loaded as a document.
 *  3. Every node is validated against a static schema (typed table, like
 *     UnmarshalStrict): unknown keys, duplicate keys and wrong types fail.
 *     Values we do not use are still type-checked.  Aliases are followed
 *     with a depth limit and a visit budget (cycles, "billion laughs").
 *  4. Scalars follow YAML 1.1 as yaml.v2 resolves them: y/yes/on/true are
 *     booleans, "~"/"null"/"" are null.
 */
#include "tagexport/config.h"
#include "config_int.h"
#include "stapel/stapel_int.h"

#include <ctype.h>
#include <fnmatch.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <yaml.h>

#define CFG_MAX_NAME 255
#define CFG_MAX_PROJECT 50

static const struct field healthcheck_fields[] = {
    {"test", K_STRLIST, NULL}, {"interval", K_STR, NULL},
    {"timeout", K_STR, NULL},  {"startPeriod", K_STR, NULL},
    {"retries", K_INT, NULL},  {NULL, K_ANY, NULL},
};

static const struct field imagespec_config_fields[] = {
    {"labels", K_STRMAP, NULL},
    {"removeLabels", K_STRLIST, NULL},
    {"keepEssentialWerfLabels", K_BOOL, NULL},
    {"clearWerfLabels", K_BOOL, NULL},
    {"env", K_STRMAP, NULL},
    {"removeEnv", K_STRLIST, NULL},
    {"volumes", K_STRLIST, NULL},
    {"removeVolumes", K_STRLIST, NULL},
    {"expose", K_STRLIST, NULL},
    {"user", K_STR, NULL},
    {"cmd", K_STRLIST, NULL},
    {"entrypoint", K_STRLIST, NULL},
    {"workingDir", K_STR, NULL},
    {"stopSignal", K_STR, NULL},
    {"healthcheck", K_MAP, healthcheck_fields},
    {"clearCmd", K_BOOL, NULL},
    {"clearEntrypoint", K_BOOL, NULL},
    {"clearUser", K_BOOL, NULL},
    {"clearWorkingDir", K_BOOL, NULL},
    {NULL, K_ANY, NULL},
};

/* The meta build.imageSpec takes only these (werf_yaml.yml, build.imageSpec).
 */
static const struct field imagespec_global_config_fields[] = {
    {"labels", K_STRMAP, NULL},
    {"removeLabels", K_STRLIST, NULL},
    {"keepEssentialWerfLabels", K_BOOL, NULL},
    {NULL, K_ANY, NULL},
};

static const struct field imagespec_global_fields[] = {
    {"author", K_STR, NULL},
    {"clearHistory", K_BOOL, NULL},
    {"config", K_MAP, imagespec_global_config_fields},
    {NULL, K_ANY, NULL},
};

static const struct field imagespec_fields[] = {
    {"author", K_STR, NULL},
    {"clearHistory", K_BOOL, NULL},
    {"config", K_MAP, imagespec_config_fields},
    {NULL, K_ANY, NULL},
};

static const struct field build_fields[] = {
    {"cacheVersion", K_STR, NULL},
    {"platform", K_STRLIST, NULL},
    {"staged", K_BOOL, NULL},
    {"imageSpec", K_MAP, imagespec_global_fields},
    {NULL, K_ANY, NULL},
};

static const struct field helmchartconfig_fields[] = {
    {"appVersion", K_STR, NULL},
    {NULL, K_ANY, NULL},
};

static const struct field deploy_fields[] = {
    {"helmChartDir", K_STR, NULL},
    {"helmChartConfig", K_MAP, helmchartconfig_fields},
    {"helmRelease", K_STR, NULL},
    {"helmReleaseSlug", K_BOOL, NULL},
    {"namespace", K_STR, NULL},
    {"namespaceSlug", K_BOOL, NULL},
    {NULL, K_ANY, NULL},
};

static const struct field limit_fields[] = {
    {"last", K_INT, NULL},
    {"in", K_STR, NULL},
    {"operator", K_STR, NULL},
    {NULL, K_ANY, NULL},
};

static const struct field references_fields[] = {
    {"branch", K_STR, NULL},
    {"tag", K_STR, NULL},
    {"limit", K_MAP, limit_fields},
    {NULL, K_ANY, NULL},
};

static const struct field keeppolicy_fields[] = {
    {"references", K_MAP, references_fields},
    {"imagesPerReference", K_MAP, limit_fields},
    {NULL, K_ANY, NULL},
};

static const struct field cleanup_fields[] = {
    {"disable", K_BOOL, NULL},
    {"disableKubernetesBasedPolicy", K_BOOL, NULL},
    {"disableGitHistoryBasedPolicy", K_BOOL, NULL},
    {"disableBuiltWithinLastNHoursPolicy", K_BOOL, NULL},
    {"keepImagesBuiltWithinLastNHours", K_INT, NULL},
    {"keepPolicies", K_MAPLIST, keeppolicy_fields},
    {NULL, K_ANY, NULL},
};

static const struct field gitworktree_fields[] = {
    {"forceShallowClone", K_BOOL, NULL},
    {"allowUnshallow", K_BOOL, NULL},
    {"allowFetchOriginBranchesAndTags", K_BOOL, NULL},
    {NULL, K_ANY, NULL},
};

static const struct field meta_fields[] = {
    {"configVersion", K_ANY, NULL},
    {"project", K_STR, NULL},
    {"build", K_MAP, build_fields},
    {"deploy", K_MAP, deploy_fields},
    {"cleanup", K_MAP, cleanup_fields},
    {"gitWorktree", K_MAP, gitworktree_fields},
    {NULL, K_ANY, NULL},
};

static const struct field import_fields[] = {
    {"type", K_STR, NULL},
    {"targetBuildArg", K_STR, NULL},
    {"targetEnv", K_STR, NULL},
    {NULL, K_ANY, NULL},
};

static const struct field dependency_fields[] = {
    {"image", K_STR, NULL}, {"before", K_STR, NULL},
    {"after", K_STR, NULL}, {"imports", K_MAPLIST, import_fields},
    {NULL, K_ANY, NULL},
};

static const struct field secret_fields[] = {
    {"id", K_STR, NULL},    {"env", K_STR, NULL}, {"src", K_STR, NULL},
    {"value", K_STR, NULL}, {NULL, K_ANY, NULL},
};

static const struct field dockerfile_image_fields[] = {
    {"image", K_ANY, NULL},
    {"dockerfile", K_STR, NULL},
    {"context", K_STR, NULL},
    {"contextAddFiles", K_STR_OR_LIST, NULL},
    {"contextAddFile", K_STR_OR_LIST, NULL},
    {"target", K_STR, NULL},
    {"args", K_ANY, NULL},
    {"addHost", K_STR_OR_LIST, NULL},
    {"network", K_STR, NULL},
    {"ssh", K_STR, NULL},
    {"staged", K_BOOL, NULL},
    {"final", K_BOOL, NULL},
    {"platform", K_STRLIST, NULL},
    {"cacheVersion", K_STR, NULL},
    {"fromCacheVersion", K_STR, NULL},
    {"imageSpec", K_MAP, imagespec_fields},
    {"dependencies", K_MAPLIST, dependency_fields},
    {"secrets", K_MAPLIST, secret_fields},
    {NULL, K_ANY, NULL},
};

struct section {
	const char *text;
	size_t len;
	int line; /* file line of text[0] */
};

int te_config__node_line(const struct ctx *c, const yaml_node_t *n)
{
	return c->line0 + (int)n->start_mark.line;
}

int te_config__fail(struct ctx *c, const yaml_node_t *n, te_code code,
                    const char *fmt, ...)
{
	char what[TE_ERROR_MSG_MAX];
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(what, sizeof(what), fmt, ap);
	va_end(ap);
	return te_error_set(c->err, code, "%s:%d: %s", c->file,
	                    n ? te_config__node_line(c, n) : c->line0, what);
}

/* The text of a scalar; "" for a mapping or sequence, whose union member
 * is not a string (callers type-check first, this is the backstop). */
const char *te_config__scalar(const yaml_node_t *n)
{
	if (!n || n->type != YAML_SCALAR_NODE)
		return "";
	return (const char *)n->data.scalar.value;
}

static const char *kind_name(const yaml_node_t *n)
{
	if (n->type == YAML_MAPPING_NODE)
		return "a mapping";
	if (n->type == YAML_SEQUENCE_NODE)
		return "a list";
	return "a scalar";
}

static bool is_plain(const yaml_node_t *n)
{
	return n->type == YAML_SCALAR_NODE &&
	       n->data.scalar.style == YAML_PLAIN_SCALAR_STYLE;
}

bool te_config__is_null(const yaml_node_t *n)
{
	const char *v;

	if (!is_plain(n))
		return false;
	v = te_config__scalar(n);
	return !*v || !strcmp(v, "~") || !strcmp(v, "null") ||
	       !strcmp(v, "Null") || !strcmp(v, "NULL");
}

/* YAML 1.1 booleans as yaml.v2 resolves them; -1 when not a boolean. */
int te_config__bool_value(const yaml_node_t *n)
{
	static const char *const yes[] = {"y",   "Y",    "yes",  "Yes",
	                                  "YES", "true", "True", "TRUE",
	                                  "on",  "On",   "ON",   NULL};
	static const char *const no[] = {"n",   "N",     "no",    "No",
	                                 "NO",  "false", "False", "FALSE",
	                                 "off", "Off",   "OFF",   NULL};
	size_t i;

	if (!is_plain(n))
		return -1;
	for (i = 0; yes[i]; i++)
		if (!strcmp(te_config__scalar(n), yes[i]))
			return 1;
	for (i = 0; no[i]; i++)
		if (!strcmp(te_config__scalar(n), no[i]))
			return 0;
	return -1;
}

static bool is_decimal(const char *s)
{
	if (*s == '+' || *s == '-')
		s++;
	if (!isdigit((unsigned char)*s))
		return false;
	while (isdigit((unsigned char)*s) || *s == '_')
		s++;
	return !*s;
}

/* A plain scalar that YAML 1.1 would resolve to a number. */
static bool is_number(const char *s)
{
	const char *p = s;
	bool digits = false;

	if (is_decimal(s))
		return true;
	if (!strncmp(s, "0x", 2) || !strncmp(s, "0b", 2))
		return s[2] && strspn(s + 2, "0123456789abcdefABCDEF_") ==
		                   strlen(s + 2);
	if (*p == '+' || *p == '-')
		p++;
	if (!strcmp(p, ".inf") || !strcmp(p, ".Inf") || !strcmp(p, ".INF"))
		return true;
	if (!strcmp(s, ".nan") || !strcmp(s, ".NaN") || !strcmp(s, ".NAN"))
		return true;
	while (isdigit((unsigned char)*p) || *p == '_') {
		digits = true;
		p++;
	}
	if (*p != '.')
		return false;
	p++;
	while (isdigit((unsigned char)*p) || *p == '_') {
		digits = true;
		p++;
	}
	if (*p == 'e' || *p == 'E') {
		p++;
		if (*p == '+' || *p == '-')
			p++;
		if (!isdigit((unsigned char)*p))
			return false;
		while (isdigit((unsigned char)*p))
			p++;
	}
	return digits && !*p;
}

/* Would yaml.v2 decode this scalar into a Go string inside interface{}? */
bool te_config__is_string(const yaml_node_t *n)
{
	if (n->type != YAML_SCALAR_NODE)
		return false;
	if (!is_plain(n))
		return true;
	return !te_config__is_null(n) && te_config__bool_value(n) < 0 &&
	       !is_number(te_config__scalar(n));
}

yaml_node_t *te_config__get_node(struct ctx *c, int idx)
{
	return yaml_document_get_node(c->doc, idx);
}

static int check_text(struct ctx *c, const yaml_node_t *n, const char *what)
{
	if (n->data.scalar.length > TE_CONFIG_MAX_STRING)
		return te_config__fail(c, n, TE_EINVALID,
		                       "%s is longer than %d bytes", what,
		                       TE_CONFIG_MAX_STRING);
	if (memchr(n->data.scalar.value, '\0', n->data.scalar.length))
		return te_config__fail(c, n, TE_EINVALID,
		                       "%s contains a NUL byte", what);
	return 0;
}

struct keyref {
	const char *key;
	size_t index; /* byte offset of the key in the text */
	int line;     /* file line of the key */
};

static int cmp_keyref(const void *a, const void *b)
{
	const struct keyref *x = a, *y = b;
	int r = strcmp(x->key, y->key);

	if (r)
		return r;
	/* later key last, so the duplicate reported is the second one */
	return x->index < y->index ? -1 : x->index > y->index;
}

/* The first key (in sort order) that repeats an earlier one, or NULL;
 * sorts refs (O(n log n)). */
static const struct keyref *find_duplicate(struct keyref *refs, size_t n)
{
	size_t i;

	if (n < 2)
		return NULL;
	qsort(refs, n, sizeof(*refs), cmp_keyref);
	for (i = 1; i < n; i++)
		if (!strcmp(refs[i].key, refs[i - 1].key))
			return &refs[i];
	return NULL;
}

/* Mapping keys must be scalars without duplicates. */
static int check_keys(struct ctx *c, const yaml_node_t *map)
{
	yaml_node_pair_t *p;
	struct keyref *refs = NULL;
	const struct keyref *dup;
	size_t n = 0, i;
	int rc = 0;

	n = (size_t)(map->data.mapping.pairs.top -
	             map->data.mapping.pairs.start);
	refs = calloc(n ? n : 1, sizeof(*refs));
	if (!refs)
		return te_error_set(c->err, TE_ENOMEM, "out of memory");
	for (i = 0, p = map->data.mapping.pairs.start; i < n; i++, p++) {
		yaml_node_t *k = te_config__get_node(c, p->key);
		if (!k || k->type != YAML_SCALAR_NODE) {
			rc = te_config__fail(c, k ? k : map, TE_EINVALID,
			                     "mapping keys must be scalars");
			goto done;
		}
		refs[i].key = te_config__scalar(k);
		refs[i].index = k->start_mark.index;
		refs[i].line = te_config__node_line(c, k);
	}
	dup = find_duplicate(refs, n);
	if (dup)
		rc = te_error_set(c->err, TE_EINVALID,
		                  "%s:%d: duplicate key \"%s\"", c->file,
		                  dup->line, dup->key);
done:
	free(refs);
	return rc;
}

static int validate(struct ctx *c, const yaml_node_t *n, enum kind kind,
                    const struct field *sub, const char *name, int depth);

int te_config__validate_map(struct ctx *c, const yaml_node_t *n,
                            const struct field *fields, const char *name,
                            int depth)
{
	yaml_node_pair_t *p;
	const struct field *f;
	int rc;

	rc = check_keys(c, n);
	if (rc < 0)
		return rc;
	for (p = n->data.mapping.pairs.start; p < n->data.mapping.pairs.top;
	     p++) {
		yaml_node_t *k = te_config__get_node(c, p->key);
		yaml_node_t *v = te_config__get_node(c, p->value);

		for (f = fields; f->name; f++)
			if (!strcmp(f->name, te_config__scalar(k)))
				break;
		if (!f->name) {
			if (name)
				return te_config__fail(
				    c, k, TE_EINVALID,
				    "unknown field \"%s\" in \"%s\"",
				    te_config__scalar(k), name);
			return te_config__fail(c, k, TE_EINVALID,
			                       "unknown field \"%s\"",
			                       te_config__scalar(k));
		}
		rc = validate(c, v, f->kind, f->sub, f->name, depth + 1);
		if (rc < 0)
			return rc;
	}
	return 0;
}

static int validate_scalars(struct ctx *c, const yaml_node_t *n,
                            const char *name)
{
	yaml_node_item_t *it;

	for (it = n->data.sequence.items.start; it < n->data.sequence.items.top;
	     it++) {
		yaml_node_t *v = te_config__get_node(c, *it);
		if (!v || v->type != YAML_SCALAR_NODE)
			return te_config__fail(c, v ? v : n, TE_EINVALID,
			                       "field \"%s\" must be a list of "
			                       "strings",
			                       name);
	}
	return 0;
}

/* Any YAML: only keys (scalar, unique), depth and size are checked. */
static int validate_any(struct ctx *c, const yaml_node_t *n, const char *name,
                        int depth)
{
	yaml_node_item_t *it;
	yaml_node_pair_t *p;
	int rc;

	if (n->type == YAML_SEQUENCE_NODE) {
		for (it = n->data.sequence.items.start;
		     it < n->data.sequence.items.top; it++) {
			rc = validate(c, te_config__get_node(c, *it), K_ANY,
			              NULL, name, depth + 1);
			if (rc < 0)
				return rc;
		}
	} else if (n->type == YAML_MAPPING_NODE) {
		rc = check_keys(c, n);
		if (rc < 0)
			return rc;
		for (p = n->data.mapping.pairs.start;
		     p < n->data.mapping.pairs.top; p++) {
			rc = validate(c, te_config__get_node(c, p->key), K_ANY,
			              NULL, name, depth + 1);
			if (rc == 0)
				rc = validate(c,
				              te_config__get_node(c, p->value),
				              K_ANY, NULL, name, depth + 1);
			if (rc < 0)
				return rc;
		}
	}
	return 0;
}

static int validate(struct ctx *c, const yaml_node_t *n, enum kind kind,
                    const struct field *sub, const char *name, int depth)
{
	yaml_node_item_t *it;
	yaml_node_pair_t *p;
	int rc;

	if (!n)
		return te_error_set(c->err, TE_EINVALID, "%s: broken yaml",
		                    c->file);
	if (depth > TE_CONFIG_MAX_DEPTH)
		return te_config__fail(c, n, TE_EINVALID,
		                       "nesting deeper than %d levels",
		                       TE_CONFIG_MAX_DEPTH);
	if (++c->visits > TE_CONFIG_MAX_VISITS)
		return te_config__fail(c, n, TE_EINVALID,
		                       "more than %d yaml nodes visited (alias "
		                       "expansion)",
		                       TE_CONFIG_MAX_VISITS);
	if (n->type == YAML_SCALAR_NODE) {
		rc = check_text(c, n, "value");
		if (rc < 0)
			return rc;
	}
	if (kind != K_ANY && te_config__is_null(n))
		return 0;
	switch (kind) {
	case K_ANY:
		return validate_any(c, n, name, depth);
	case K_STR:
		if (n->type != YAML_SCALAR_NODE)
			return te_config__fail(c, n, TE_EINVALID,
			                       "field \"%s\" must be a string",
			                       name);
		return 0;
	case K_BOOL:
		if (te_config__bool_value(n) < 0)
			return te_config__fail(c, n, TE_EINVALID,
			                       "field \"%s\" must be a boolean",
			                       name);
		return 0;
	case K_INT:
		if (!is_plain(n) || !is_decimal(te_config__scalar(n)))
			return te_config__fail(
			    c, n, TE_EINVALID,
			    "field \"%s\" must be an integer", name);
		return 0;
	case K_STR_OR_LIST:
		if (n->type == YAML_SCALAR_NODE)
			return 0;
		/* fallthrough */
	case K_STRLIST:
		if (n->type != YAML_SEQUENCE_NODE)
			return te_config__fail(c, n, TE_EINVALID,
			                       "field \"%s\" must be a list of "
			                       "strings",
			                       name);
		for (it = n->data.sequence.items.start;
		     it < n->data.sequence.items.top; it++) {
			rc = validate(c, te_config__get_node(c, *it), K_STR,
			              NULL, name, depth + 1);
			if (rc < 0)
				return rc;
		}
		return validate_scalars(c, n, name);
	case K_MAP:
		if (n->type != YAML_MAPPING_NODE)
			return te_config__fail(c, n, TE_EINVALID,
			                       "field \"%s\" must be a mapping",
			                       name);
		return te_config__validate_map(c, n, sub, name, depth);
	case K_STRMAP:
		if (n->type != YAML_MAPPING_NODE)
			return te_config__fail(c, n, TE_EINVALID,
			                       "field \"%s\" must be a mapping",
			                       name);
		rc = check_keys(c, n);
		if (rc < 0)
			return rc;
		for (p = n->data.mapping.pairs.start;
		     p < n->data.mapping.pairs.top; p++) {
			rc = validate(c, te_config__get_node(c, p->value),
			              K_STR, NULL, name, depth + 1);
			if (rc < 0)
				return rc;
		}
		return 0;
	case K_MAPLIST:
		if (n->type != YAML_SEQUENCE_NODE)
			return te_config__fail(c, n, TE_EINVALID,
			                       "field \"%s\" must be a list",
			                       name);
		for (it = n->data.sequence.items.start;
		     it < n->data.sequence.items.top; it++) {
			rc = validate(c, te_config__get_node(c, *it), K_MAP,
			              sub, name, depth + 1);
			if (rc < 0)
				return rc;
		}
		return 0;
	}
	return 0;
}

yaml_node_t *te_config__map_get(struct ctx *c, const yaml_node_t *map,
                                const char *key)
{
	yaml_node_pair_t *p;

	for (p = map->data.mapping.pairs.start; p < map->data.mapping.pairs.top;
	     p++) {
		yaml_node_t *k = te_config__get_node(c, p->key);
		if (k && k->type == YAML_SCALAR_NODE &&
		    !strcmp(te_config__scalar(k), key))
			return te_config__get_node(c, p->value);
	}
	return NULL;
}

int te_config__yaml_fail(const char *file, int line0, const yaml_parser_t *p,
                         te_error *err)
{
	/* the context mark points at the offending key, the problem mark
	 * often only at the next line */
	int line = line0 + (int)(p->context ? p->context_mark.line
	                                    : p->problem_mark.line);

	if (p->error == YAML_MEMORY_ERROR)
		return te_error_set(err, TE_ENOMEM, "out of memory");
	if (p->context)
		return te_error_set(
		    err, TE_EINVALID, "%s:%d: yaml: %s %s", file, line,
		    p->problem ? p->problem : "error", p->context);
	return te_error_set(err, TE_EINVALID, "%s:%d: yaml: %s", file, line,
	                    p->problem ? p->problem : "error");
}

int te_config__load_doc(yaml_document_t *doc, const char *data, size_t len,
                        const char *name, te_error *err)
{
	yaml_parser_t parser;
	int rc = 0;

	if ((rc = te_config_yaml_scan(data, len, name, 1, false, err)) < 0)
		return rc;
	if (!yaml_parser_initialize(&parser))
		return te_error_set(err, TE_ENOMEM, "out of memory");
	yaml_parser_set_input_string(&parser, (const unsigned char *)data, len);
	if (!yaml_parser_load(&parser, doc))
		rc = te_config__yaml_fail(name, 1, &parser, err);
	yaml_parser_delete(&parser);
	return rc;
}

/* The keys seen so far in each open mapping of the event scan. */
struct scan_level {
	bool mapping;
	size_t children; /* nodes completed: keys and values alternate */
	struct keyref *keys;
	size_t nkeys, cap;
};

struct scan {
	struct scan_level levels[TE_CONFIG_MAX_DEPTH + 1];
	int depth; /* levels[0] is the document */
	bool unique_keys;
	const char *file;
	int line0;
	te_error *err;
};

static void level_reset(struct scan_level *l, bool mapping)
{
	size_t i;

	for (i = 0; i < l->nkeys; i++)
		free((char *)l->keys[i].key);
	free(l->keys);
	memset(l, 0, sizeof(*l));
	l->mapping = mapping;
}

/* A node starts at the current level: remember it if it is a key. */
static int scan_key(struct scan *s, const yaml_event_t *ev)
{
	struct scan_level *l = &s->levels[s->depth];
	struct keyref *keys;
	char *key;

	if (!s->unique_keys || !l->mapping || l->children % 2 ||
	    ev->type != YAML_SCALAR_EVENT)
		return 0;
	if (l->nkeys == l->cap) {
		size_t cap = l->cap ? l->cap * 2 : 8;
		keys = realloc(l->keys, cap * sizeof(*keys));
		if (!keys)
			return te_error_set(s->err, TE_ENOMEM, "out of memory");
		l->keys = keys;
		l->cap = cap;
	}
	key = strndup((const char *)ev->data.scalar.value,
	              ev->data.scalar.length);
	if (!key)
		return te_error_set(s->err, TE_ENOMEM, "out of memory");
	l->keys[l->nkeys].key = key;
	l->keys[l->nkeys].index = ev->start_mark.index;
	l->keys[l->nkeys].line = s->line0 + (int)ev->start_mark.line;
	l->nkeys++;
	return 0;
}

/* A mapping ends: its keys must be unique. */
static int scan_close(struct scan *s)
{
	struct scan_level *l = &s->levels[s->depth];
	const struct keyref *dup = find_duplicate(l->keys, l->nkeys);
	int rc = 0;

	if (dup)
		rc = te_error_set(s->err, TE_EINVALID,
		                  "%s:%d: duplicate key \"%s\"", s->file,
		                  dup->line, dup->key);
	level_reset(l, false);
	s->depth--;
	s->levels[s->depth].children++;
	return rc;
}

static int scan_event(struct scan *s, const yaml_event_t *ev, int *docs)
{
	int line = s->line0 + (int)ev->start_mark.line;
	int rc;

	switch (ev->type) {
	case YAML_DOCUMENT_START_EVENT:
		if (++*docs > 1)
			return te_error_set(
			    s->err, TE_EINVALID,
			    "%s:%d: more than one yaml document", s->file,
			    line);
		return 0;
	case YAML_SCALAR_EVENT:
	case YAML_ALIAS_EVENT:
		rc = scan_key(s, ev);
		s->levels[s->depth].children++;
		return rc;
	case YAML_SEQUENCE_START_EVENT:
	case YAML_MAPPING_START_EVENT:
		if (s->depth >= TE_CONFIG_MAX_DEPTH)
			return te_error_set(
			    s->err, TE_EINVALID,
			    "%s:%d: nesting deeper than %d levels", s->file,
			    line, TE_CONFIG_MAX_DEPTH);
		s->depth++;
		level_reset(&s->levels[s->depth],
		            ev->type == YAML_MAPPING_START_EVENT);
		return 0;
	case YAML_SEQUENCE_END_EVENT:
	case YAML_MAPPING_END_EVENT:
		return scan_close(s);
	default:
		return 0;
	}
}

int te_config_yaml_scan(const char *data, size_t len, const char *file,
                        int line0, bool unique_keys, te_error *err)
{
	yaml_parser_t parser;
	yaml_event_t ev;
	struct scan *s;
	size_t events = 0;
	int docs = 0, rc = 0;
	bool done = false;

	s = calloc(1, sizeof(*s));
	if (!s)
		return te_error_set(err, TE_ENOMEM, "out of memory");
	s->unique_keys = unique_keys;
	s->file = file;
	s->line0 = line0;
	s->err = err;
	if (!yaml_parser_initialize(&parser)) {
		free(s);
		return te_error_set(err, TE_ENOMEM, "out of memory");
	}
	yaml_parser_set_input_string(&parser, (const unsigned char *)data, len);
	while (!done && rc == 0) {
		if (!yaml_parser_parse(&parser, &ev)) {
			rc = te_config__yaml_fail(file, line0, &parser, err);
			break;
		}
		done = ev.type == YAML_STREAM_END_EVENT;
		rc = scan_event(s, &ev, &docs);
		if (rc == 0 && ++events > TE_CONFIG_MAX_EVENTS)
			rc = te_error_set(err, TE_EINVALID,
			                  "%s:%d: more than %d yaml nodes",
			                  file, line0 + (int)ev.start_mark.line,
			                  TE_CONFIG_MAX_EVENTS);
		yaml_event_delete(&ev);
	}
	for (; s->depth >= 0; s->depth--)
		level_reset(&s->levels[s->depth], false);
	free(s);
	yaml_parser_delete(&parser);
	return rc;
}

/* filepath.Clean for a relative path; NULL if it is absolute or leaves
 * its root through "..". "." becomes "". */
char *te_config__clean_rel(const char *in, te_error *err)
{
	size_t n = strlen(in), i = 0, o = 0;
	char *out;

	if (in[0] == '/')
		return NULL;
	out = malloc(n + 1);
	if (!out) {
		te_error_set(err, TE_ENOMEM, "out of memory");
		return NULL;
	}
	while (i < n) {
		size_t j = i;
		while (j < n && in[j] != '/')
			j++;
		if (j == i || (j - i == 1 && in[i] == '.')) {
			/* empty or "." segment */
		} else if (j - i == 2 && in[i] == '.' && in[i + 1] == '.') {
			if (o == 0) {
				free(out);
				return NULL;
			}
			while (o > 0 && out[o - 1] != '/')
				o--;
			if (o > 0)
				o--;
		} else {
			if (o)
				out[o++] = '/';
			memcpy(out + o, in + i, j - i);
			o += j - i;
		}
		i = j + 1;
	}
	out[o] = '\0';
	return out;
}

static bool valid_project(const char *p)
{
	size_t n = strlen(p), i;

	if (n == 0 || n > CFG_MAX_PROJECT)
		return false;
	for (i = 0; i < n; i++) {
		char ch = p[i];
		if (!((ch >= 'a' && ch <= 'z') || (ch >= '0' && ch <= '9') ||
		      ch == '-'))
			return false;
	}
	return p[0] != '-' && p[n - 1] != '-';
}

struct meta {
	bool seen;
	char *project;
	te_strvec platforms;
	char *cache_version;    /* build.cacheVersion */
	bool staged;            /* build.staged */
	te_imagespec imagespec; /* build.imageSpec */
};

static int push_platforms(struct ctx *c, te_strvec *out, const yaml_node_t *n)
{
	yaml_node_item_t *it;
	int rc;

	if (!n || n->type != YAML_SEQUENCE_NODE)
		return 0;
	for (it = n->data.sequence.items.start; it < n->data.sequence.items.top;
	     it++) {
		yaml_node_t *v = te_config__get_node(c, *it);
		if (strchr(te_config__scalar(v), ','))
			return te_config__fail(
			    c, v, TE_EINVALID,
			    "platform \"%s\" must not contain a "
			    "comma, use a list",
			    te_config__scalar(v));
		if (!*te_config__scalar(v) || te_config__is_null(v))
			return te_config__fail(c, v, TE_EINVALID,
			                       "platform must not be empty");
		rc = te_strvec_push(out, te_config__scalar(v), c->err);
		if (rc < 0)
			return rc;
	}
	return 0;
}

static int parse_meta(struct ctx *c, const yaml_node_t *root, struct meta *m)
{
	yaml_node_t *v, *build;
	int rc;

	if (m->seen)
		return te_config__fail(c, root, TE_EINVALID,
		                       "duplicate meta config section");
	m->seen = true;
	rc = te_config__validate_map(c, root, meta_fields, NULL, 1);
	if (rc < 0)
		return rc;
	v = te_config__map_get(c, root, "configVersion");
	if (v->type != YAML_SCALAR_NODE)
		return te_config__fail(c, v, TE_EINVALID,
		                       "configVersion must be 1, got %s",
		                       kind_name(v));
	if (!is_plain(v) || !is_decimal(te_config__scalar(v)) ||
	    strtol(te_config__scalar(v), NULL, 10) != 1 ||
	    strchr(te_config__scalar(v), '_'))
		return te_config__fail(c, v, TE_EINVALID,
		                       "configVersion must be 1, got \"%s\"",
		                       te_config__scalar(v));
	v = te_config__map_get(c, root, "project");
	if (!v || te_config__is_null(v))
		return te_config__fail(
		    c, root, TE_EINVALID,
		    "project is required: add \"project: <name>\" to "
		    "the meta section");
	if (!valid_project(te_config__scalar(v)))
		return te_config__fail(
		    c, v, TE_EINVALID,
		    "invalid project name \"%s\": it must match "
		    "^(?:[a-z0-9]|[a-z0-9][a-z0-9-]*[a-z0-9])$ and be at "
		    "most 50 characters",
		    te_config__scalar(v));
	m->project = te_strdup(te_config__scalar(v), c->err);
	if (!m->project)
		return TE_ENOMEM;
	build = te_config__map_get(c, root, "build");
	if (!build || build->type != YAML_MAPPING_NODE)
		return 0;
	rc = te_config__opt_string(c, &m->cache_version,
	                           te_config__map_get(c, build, "cacheVersion"),
	                           NULL);
	if (rc < 0)
		return rc;
	v = te_config__map_get(c, build, "staged");
	m->staged =
	    v && !te_config__is_null(v) && te_config__bool_value(v) == 1;
	rc = te_config__parse_imagespec(
	    c, &m->imagespec, te_config__map_get(c, build, "imageSpec"));
	if (rc < 0)
		return rc;
	return push_platforms(c, &m->platforms,
	                      te_config__map_get(c, build, "platform"));
}

int te_config__check_name(struct ctx *c, const yaml_node_t *n)
{
	const unsigned char *s = n->data.scalar.value;
	size_t i;

	if (!te_config__is_string(n))
		return te_config__fail(
		    c, n, TE_EINVALID,
		    "image name must be a string, got \"%s\"",
		    te_config__scalar(n));
	if (n->data.scalar.length == 0)
		return te_config__fail(c, n, TE_EINVALID,
		                       "image name is empty");
	if (n->data.scalar.length > CFG_MAX_NAME)
		return te_config__fail(c, n, TE_EINVALID,
		                       "image name is longer than 255 bytes");
	for (i = 0; i < n->data.scalar.length; i++)
		if (s[i] < 0x20 || s[i] == 0x7f)
			return te_config__fail(c, n, TE_EINVALID,
			                       "image name contains a control "
			                       "character");
	return 0;
}

static int cmp_arg(const void *a, const void *b)
{
	const char *x = *(char *const *)a, *y = *(char *const *)b;
	size_t nx = strcspn(x, "="), ny = strcspn(y, "=");
	int r = memcmp(x, y, nx < ny ? nx : ny);

	if (r)
		return r;
	return nx < ny ? -1 : nx > ny;
}

static int parse_args(struct ctx *c, te_image_config *img, const yaml_node_t *n)
{
	yaml_node_pair_t *p;
	int rc;

	if (!n || te_config__is_null(n))
		return 0;
	if (n->type != YAML_MAPPING_NODE)
		return te_config__fail(c, n, TE_EINVALID,
		                       "field \"args\" must be a mapping");
	for (p = n->data.mapping.pairs.start; p < n->data.mapping.pairs.top;
	     p++) {
		yaml_node_t *k = te_config__get_node(c, p->key);
		yaml_node_t *v = te_config__get_node(c, p->value);
		const char *val;
		int b;

		if (!*te_config__scalar(k) ||
		    strchr(te_config__scalar(k), '=') ||
		    strpbrk(te_config__scalar(k), " \t\r\n"))
			return te_config__fail(c, k, TE_EINVALID,
			                       "invalid build arg name \"%s\"",
			                       te_config__scalar(k));
		if (v->type != YAML_SCALAR_NODE)
			return te_config__fail(
			    c, v, TE_EINVALID,
			    "args value of \"%s\" must be a scalar",
			    te_config__scalar(k));
		/* yaml.v2 + %v: booleans print as true/false, null as "" */
		b = te_config__bool_value(v);
		if (b >= 0)
			val = b ? "true" : "false";
		else if (te_config__is_null(v))
			val = "";
		else
			val = te_config__scalar(v);
		rc = te_strvec_pushf(&img->args, c->err, "%s=%s",
		                     te_config__scalar(k), val);
		if (rc < 0)
			return rc;
	}
	if (img->args.count > 1)
		qsort(img->args.items, img->args.count, sizeof(char *),
		      cmp_arg);
	return 0;
}

int te_config__opt_string(struct ctx *c, char **out, const yaml_node_t *n,
                          const char *deflt)
{
	const char *v = deflt;

	if (n && !te_config__is_null(n))
		v = te_config__scalar(n);
	if (!v) {
		*out = NULL;
		return 0;
	}
	*out = te_strdup(v, c->err);
	return *out ? 0 : TE_ENOMEM;
}

int te_config__check_path(struct ctx *c, const yaml_node_t *n,
                          const char *field, char **out)
{
	const char *v = n && !te_config__is_null(n) ? te_config__scalar(n) : "";

	*out = NULL;
	if (v[0] == '/')
		return te_config__fail(c, n, TE_EINVALID,
		                       "%s \"%s\" must be a relative path",
		                       field, v);
	*out = te_config__clean_rel(v, c->err);
	if (!*out) {
		if (c->err->code != TE_OK)
			return c->err->code;
		return te_config__fail(
		    c, n, TE_EINVALID,
		    "%s \"%s\" must not leave the project directory", field, v);
	}
	return 0;
}

/* One image of a Dockerfile document; the name node may be NULL (nameless
 * legacy image). */
static int fill_image(struct ctx *c, te_image_config *img,
                      const yaml_node_t *root, const yaml_node_t *name)
{
	yaml_node_t *v;
	yaml_node_pair_t *first = root->data.mapping.pairs.start;
	int rc;

	img->final = true;
	img->line = te_config__node_line(c, te_config__get_node(c, first->key));
	rc = te_config__opt_string(c, &img->name, name, "");
	if (rc < 0)
		return rc;
	rc = te_config__check_path(c, te_config__map_get(c, root, "dockerfile"),
	                           "dockerfile", &img->dockerfile);
	if (rc < 0)
		return rc;
	if (!*img->dockerfile) {
		free(img->dockerfile);
		img->dockerfile = te_strdup("Dockerfile", c->err);
		if (!img->dockerfile)
			return TE_ENOMEM;
	}
	rc = te_config__check_path(c, te_config__map_get(c, root, "context"),
	                           "context", &img->context);
	if (rc < 0)
		return rc;
	rc = te_config__opt_string(c, &img->target,
	                           te_config__map_get(c, root, "target"), NULL);
	if (rc < 0)
		return rc;
	if (img->target && !*img->target) {
		free(img->target);
		img->target = NULL;
	}
	rc = parse_args(c, img, te_config__map_get(c, root, "args"));
	if (rc < 0)
		return rc;
	rc = push_platforms(c, &img->platforms,
	                    te_config__map_get(c, root, "platform"));
	if (rc < 0)
		return rc;
	v = te_config__map_get(c, root, "final");
	if (v && !te_config__is_null(v))
		img->final = te_config__bool_value(v) == 1;
	v = te_config__map_get(c, root, "staged");
	img->staged =
	    v && !te_config__is_null(v) && te_config__bool_value(v) == 1;
	img->staged_set = v && !te_config__is_null(v);
	rc = te_config__opt_string(c, &img->cache_version,
	                           te_config__map_get(c, root, "cacheVersion"),
	                           NULL);
	if (rc < 0 ||
	    (rc = te_config__parse_dependencies(
	         c, img, te_config__map_get(c, root, "dependencies"))) < 0 ||
	    (rc = te_config__parse_network(
	         c, img, te_config__map_get(c, root, "network"))) < 0 ||
	    (rc = te_config__parse_add_hosts(
	         c, img, te_config__map_get(c, root, "addHost"))) < 0 ||
	    (rc = te_config__parse_secrets(
	         c, img, te_config__map_get(c, root, "secrets"))) < 0 ||
	    (rc = te_config__parse_ssh(c, img,
	                               te_config__map_get(c, root, "ssh"))) < 0)
		return rc;
	return te_config__parse_imagespec(
	    c, &img->imagespec, te_config__map_get(c, root, "imageSpec"));
}

struct images {
	te_image_config *items;
	size_t count;
	size_t cap;
};

static int new_image(struct ctx *c, struct images *imgs, te_image_config **out)
{
	te_image_config *items;
	size_t cap;

	if (imgs->count >= TE_CONFIG_MAX_IMAGES)
		return te_error_set(c->err, TE_EINVALID,
		                    "%s: more than %d images", c->file,
		                    TE_CONFIG_MAX_IMAGES);
	if (imgs->count == imgs->cap) {
		cap = imgs->cap ? imgs->cap * 2 : 8;
		items = realloc(imgs->items, cap * sizeof(*items));
		if (!items)
			return te_error_set(c->err, TE_ENOMEM, "out of memory");
		imgs->items = items;
		imgs->cap = cap;
	}
	*out = &imgs->items[imgs->count++];
	memset(*out, 0, sizeof(**out));
	return 0;
}

typedef int (*fill_fn)(struct ctx *c, te_image_config *img,
                       const yaml_node_t *root, const yaml_node_t *name);

static int add_image(struct ctx *c, struct images *imgs,
                     const yaml_node_t *root, const yaml_node_t *name,
                     fill_fn fill)
{
	te_image_config *img = NULL;
	size_t i;
	int rc;

	if (name) {
		rc = te_config__check_name(c, name);
		if (rc < 0)
			return rc;
		for (i = 0; i < imgs->count; i++)
			if (!strcmp(imgs->items[i].name,
			            te_config__scalar(name)))
				return te_config__fail(
				    c, name, TE_EINVALID,
				    "conflict between images names "
				    "\"%s\"",
				    te_config__scalar(name));
	}
	rc = new_image(c, imgs, &img);
	if (rc < 0)
		return rc;
	return fill(c, img, root, name);
}

/* One image per name of the document's `image:` (a name, a list of
 * names, or ~ for the nameless legacy image). */
static int add_images(struct ctx *c, struct images *imgs,
                      const yaml_node_t *root, const yaml_node_t *v,
                      fill_fn fill)
{
	yaml_node_item_t *it;
	int rc;

	if (te_config__is_null(v))
		return add_image(c, imgs, root, NULL, fill);
	if (v->type == YAML_SCALAR_NODE)
		return add_image(c, imgs, root, v, fill);
	if (v->type != YAML_SEQUENCE_NODE)
		return te_config__fail(c, v, TE_EINVALID,
		                       "field \"image\" must be a string or "
		                       "a list of strings");
	if (v->data.sequence.items.start == v->data.sequence.items.top)
		return te_config__fail(c, v, TE_EINVALID,
		                       "field \"image\" is an empty list");
	for (it = v->data.sequence.items.start; it < v->data.sequence.items.top;
	     it++) {
		yaml_node_t *item = te_config__get_node(c, *it);
		if (item->type != YAML_SCALAR_NODE)
			return te_config__fail(c, item, TE_EINVALID,
			                       "field \"image\" must be a "
			                       "string or a list of strings");
		rc = add_image(c, imgs, root, item, fill);
		if (rc < 0)
			return rc;
	}
	return 0;
}

static int parse_dockerfile_doc(struct ctx *c, const yaml_node_t *root,
                                struct images *imgs)
{
	yaml_node_t *v;
	int rc;

	rc = te_config__validate_map(c, root, dockerfile_image_fields, NULL, 1);
	if (rc < 0)
		return rc;
	v = te_config__map_get(c, root, "contextAddFiles");
	if (!v)
		v = te_config__map_get(c, root, "contextAddFile");
	if (v)
		return te_config__fail(
		    c, v, TE_EINVALID,
		    "contextAddFiles is refused: the build "
		    "context is the commit's tree and nothing "
		    "outside the commit may enter a build; "
		    "commit the files instead");
	v = te_config__map_get(c, root, "image");
	if (!v)
		return te_config__fail(c, root, TE_EINVALID,
		                       "dockerfile image section has no "
		                       "\"image\" key");
	return add_images(c, imgs, root, v, fill_image);
}

/* A Stapel image or artifact: the Stapel module reads the document. */
static int fill_stapel(struct ctx *c, te_image_config *img,
                       const yaml_node_t *root, const yaml_node_t *name)
{
	yaml_node_t *v;
	int rc;

	img->line = te_config__node_line(
	    c, te_config__get_node(c, root->data.mapping.pairs.start->key));
	rc = te_config__opt_string(c, &img->name, name, "");
	if (rc == 0)
		rc = te_config__opt_string(c, &img->context, NULL, "");
	if (rc == 0)
		rc = te_stapel__parse(&img->stapel, c, root, img->name);
	if (rc == 0)
		rc = push_platforms(c, &img->platforms,
		                    te_config__map_get(c, root, "platform"));
	/* imageSpec is the same key as a Dockerfile image's (werf applies it
	 * after dockerInstructions); the Stapel schema leaves it to us */
	v = te_config__map_get(c, root, "imageSpec");
	if (rc == 0 && v && !te_config__is_null(v))
		rc = validate(c, v, K_MAP, imagespec_fields, "imageSpec", 1);
	if (rc == 0)
		rc = te_config__parse_imagespec(c, &img->imagespec, v);
	/* secrets: the Dockerfile images' key and rules; shell stages mount
	 * them (https://werf.io/docs/v2/reference/werf_yaml.html, secrets) */
	v = te_config__map_get(c, root, "secrets");
	if (rc == 0 && v && !te_config__is_null(v))
		rc = validate(c, v, K_MAPLIST, secret_fields, "secrets", 1);
	if (rc == 0)
		rc = te_config__parse_secrets(c, img, v);
	if (rc < 0)
		return rc;
	/* werf never exports artifacts; `final` is an image key */
	img->final = !img->stapel->artifact;
	v = te_config__map_get(c, root, "final");
	if (v && !te_config__is_null(v))
		img->final = te_config__bool_value(v) == 1;
	return 0;
}

static int parse_stapel_doc(struct ctx *c, const yaml_node_t *root,
                            struct images *imgs)
{
	yaml_node_t *image = te_config__map_get(c, root, "image");
	yaml_node_t *artifact = te_config__map_get(c, root, "artifact");

	if (image && artifact)
		return te_config__fail(c, artifact, TE_EINVALID,
		                       "specify only one of image and "
		                       "artifact");
	if (artifact) {
		if (te_config__is_null(artifact) ||
		    artifact->type != YAML_SCALAR_NODE)
			return te_config__fail(c, artifact, TE_EINVALID,
			                       "artifact needs a name");
		if (te_config__map_get(c, root, "final"))
			return te_config__fail(
			    c, te_config__map_get(c, root, "final"),
			    TE_EINVALID, "an artifact cannot be final");
		return add_image(c, imgs, root, artifact, fill_stapel);
	}
	return add_images(c, imgs, root, image, fill_stapel);
}

static int parse_section(const struct section *s, const char *file,
                         struct meta *m, struct images *imgs, te_error *err)
{
	yaml_parser_t parser;
	yaml_document_t doc;
	yaml_node_t *root;
	struct ctx c;
	bool have_parser = false, have_doc = false;
	int rc;

	rc = te_config_yaml_scan(s->text, s->len, file, s->line, false, err);
	if (rc < 0)
		return rc;
	if (!yaml_parser_initialize(&parser))
		return te_error_set(err, TE_ENOMEM, "out of memory");
	have_parser = true;
	yaml_parser_set_input_string(&parser, (const unsigned char *)s->text,
	                             s->len);
	if (!yaml_parser_load(&parser, &doc)) {
		rc = te_config__yaml_fail(file, s->line, &parser, err);
		goto done;
	}
	have_doc = true;
	c.file = file;
	c.doc = &doc;
	c.line0 = s->line;
	c.visits = 0;
	c.err = err;
	root = yaml_document_get_root_node(&doc);
	if (!root || te_config__is_null(root) ||
	    (root->type == YAML_MAPPING_NODE &&
	     root->data.mapping.pairs.start == root->data.mapping.pairs.top)) {
		rc = te_error_set(err, TE_EINVALID,
		                  "%s:%d: cannot recognize type of config "
		                  "section",
		                  file, s->line);
		goto done;
	}
	if (root->type != YAML_MAPPING_NODE) {
		rc = te_config__fail(&c, root, TE_EINVALID,
		                     "config section must be a mapping");
		goto done;
	}
	rc = check_keys(&c, root);
	if (rc < 0)
		goto done;
	if (te_config__map_get(&c, root, "configVersion"))
		rc = parse_meta(&c, root, m);
	else if (te_config__map_get(&c, root, "dockerfile"))
		rc = parse_dockerfile_doc(&c, root, imgs);
	else if (te_config__map_get(&c, root, "image") ||
	         te_config__map_get(&c, root, "artifact"))
		rc = parse_stapel_doc(&c, root, imgs);
	else
		rc = te_config__fail(
		    &c,
		    te_config__get_node(&c,
		                        root->data.mapping.pairs.start->key),
		    TE_EINVALID, "cannot recognize type of config section");
done:
	if (have_doc)
		yaml_document_delete(&doc);
	if (have_parser)
		yaml_parser_delete(&parser);
	return rc;
}

/* werf's emptyDocContent: only blank and comment lines. */
static bool blank_section(const char *p, size_t len)
{
	size_t i = 0;

	while (i < len) {
		while (i < len && (p[i] == ' ' || p[i] == '\t' || p[i] == '\r'))
			i++;
		if (i < len && p[i] == '#')
			while (i < len && p[i] != '\n')
				i++;
		if (i < len && p[i] != '\n')
			return false;
		i++;
	}
	return true;
}

bool te_config_is_separator(const char *p, size_t len)
{
	size_t i = 3;

	if (len < 3 || memcmp(p, "---", 3))
		return false;
	while (i < len && (p[i] == ' ' || p[i] == '\t' || p[i] == '\r'))
		i++;
	return i == len || p[i] == '#';
}

static void free_images(te_image_config *items, size_t count)
{
	size_t i, j, k;

	for (i = 0; i < count; i++) {
		free(items[i].name);
		free(items[i].dockerfile);
		free(items[i].context);
		free(items[i].target);
		te_strvec_dispose(&items[i].args);
		te_strvec_dispose(&items[i].platforms);
		te_stapel_image_free(items[i].stapel);
		free(items[i].cache_version);
		free(items[i].build_cache_version);
		for (j = 0; j < items[i].ndeps; j++) {
			te_image_dependency *d = &items[i].deps[j];

			for (k = 0; k < d->nimports; k++)
				free(d->imports[k].build_arg);
			free(d->imports);
			free(d->image);
		}
		free(items[i].deps);
		free(items[i].network);
		free(items[i].ssh);
		for (j = 0; j < items[i].nsecrets; j++) {
			free(items[i].secrets[j].id);
			free(items[i].secrets[j].ref);
		}
		free(items[i].secrets);
		te_strvec_dispose(&items[i].add_hosts);
		te_imagespec_dispose(&items[i].imagespec);
	}
	free(items);
}

static bool has_image(const struct images *imgs, const char *name)
{
	size_t i;

	for (i = 0; i < imgs->count; i++)
		if (strcmp(imgs->items[i].name, name) == 0)
			return true;
	return false;
}

/* The meta's build.cacheVersion and build.staged; dependency names. */
static int inherit_build(te_image_config *img, const struct meta *m,
                         const struct images *imgs, const char *file,
                         te_error *err)
{
	size_t j;

	if (!img->staged_set)
		img->staged = m->staged;
	if (m->cache_version &&
	    !(img->build_cache_version = te_strdup(m->cache_version, err)))
		return TE_ENOMEM;
	for (j = 0; j < img->ndeps; j++)
		if (!has_image(imgs, img->deps[j].image))
			return te_error_set(
			    err, TE_EINVALID,
			    "%s:%d: image \"%s\": dependency on "
			    "unknown image \"%s\"",
			    file, img->deps[j].line, img->name,
			    img->deps[j].image);
	return 0;
}

/* The global imageSpec goes under the image's own, for final images only
 * (https://werf.io/docs/v2/usage/build/images.html#global-configuration:
 * "does not apply for intermediate images"); label templates are filled
 * in here, before the content tag is computed. */
static int merge_imagespec(te_image_config *img, const te_imagespec *global,
                           const char *project, const char *file, te_error *err)
{
	te_imagespec merged = TE_IMAGESPEC_INIT;
	int rc;

	rc = te_imagespec_merge(&merged, img->final ? global : NULL,
	                        &img->imagespec, err);
	if (rc == 0)
		rc = te_imagespec_expand_labels(&merged, img->name, project,
		                                err);
	if (rc < 0) {
		te_imagespec_dispose(&merged);
		return te_error_wrap(err, "%s:%d", file, img->line);
	}
	te_imagespec_dispose(&img->imagespec);
	img->imagespec = merged;
	return 0;
}

static int finish(te_werf_config *cfg, struct meta *m, struct images *imgs,
                  const char *file, te_error *err)
{
	size_t i, j;
	int rc;

	if (!m->seen)
		return te_error_set(err, TE_EINVALID,
		                    "%s: meta config section not found: add "
		                    "\"configVersion: 1\" and \"project: "
		                    "<name>\" as the first document",
		                    file);
	for (i = 0; i < imgs->count; i++)
		if ((rc = inherit_build(&imgs->items[i], m, imgs, file, err)) <
		    0)
			return rc;
	for (i = 0; i < imgs->count; i++) {
		if (!*imgs->items[i].name && imgs->count > 1)
			return te_error_set(
			    err, TE_EINVALID,
			    "%s:%d: a nameless image (image: ~) must be "
			    "the only image",
			    file, imgs->items[i].line);
		if ((rc = merge_imagespec(&imgs->items[i], &m->imagespec,
		                          m->project, file, err)) < 0)
			return rc;
		if (imgs->items[i].platforms.count)
			continue;
		for (j = 0; j < m->platforms.count; j++) {
			rc = te_strvec_push(&imgs->items[i].platforms,
			                    m->platforms.items[j], err);
			if (rc < 0)
				return rc;
		}
	}
	rc = te_stapel__link(imgs->items, imgs->count, file, err);
	if (rc < 0)
		return rc;
	cfg->project = m->project;
	m->project = NULL;
	cfg->images = imgs->items;
	cfg->nimages = imgs->count;
	imgs->items = NULL;
	imgs->count = 0;
	return 0;
}

int te_config_parse(te_werf_config **out, const char *data, size_t len,
                    const char *filename, te_error *err)
{
	te_werf_config *cfg = NULL;
	struct meta m = {false, NULL,  TE_STRVEC_INIT,
	                 NULL,  false, TE_IMAGESPEC_INIT};
	struct images imgs = {NULL, 0, 0};
	struct section s;
	const char *file = filename ? filename : "werf.yaml";
	size_t pos = 0, start = 0;
	int line = 1, start_line = 1;
	int rc = 0;

	*out = NULL;
	if (len > TE_CONFIG_MAX_SIZE)
		return te_error_set(err, TE_EINVALID,
		                    "%s: larger than the 1 MiB limit", file);
	cfg = calloc(1, sizeof(*cfg));
	if (!cfg)
		return te_error_set(err, TE_ENOMEM, "out of memory");
	while (pos <= len) {
		const char *nl =
		    pos < len ? memchr(data + pos, '\n', len - pos) : NULL;
		size_t end = nl ? (size_t)(nl - data) : len;
		bool sep = te_config_is_separator(data + pos, end - pos);

		if (sep || end == len) {
			s.text = data + start;
			s.len = (sep ? pos : len) - start;
			s.line = start_line;
			if (!blank_section(s.text, s.len)) {
				rc = parse_section(&s, file, &m, &imgs, err);
				if (rc < 0)
					goto done;
			}
			start = end + 1;
			start_line = line + 1;
		}
		if (end == len)
			break;
		pos = end + 1;
		line++;
	}
	rc = finish(cfg, &m, &imgs, file, err);
	if (rc < 0)
		goto done;
	*out = cfg;
	cfg = NULL;
done:
	free(m.project);
	free(m.cache_version);
	te_strvec_dispose(&m.platforms);
	te_imagespec_dispose(&m.imagespec);
	free_images(imgs.items, imgs.count);
	te_config_free(cfg);
	return rc;
}

void te_config_free(te_werf_config *cfg)
{
	if (!cfg)
		return;
	free(cfg->project);
	free_images(cfg->images, cfg->nimages);
	free(cfg);
}
