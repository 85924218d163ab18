/*
 * werfcfg_int.h - werf's fromYaml and toYaml (werfcfg_yaml.c), as
 * gopkg.in/yaml.v2 v2.4.0 decodes into map[string]interface{} and
 * encodes (https://pkg.go.dev/gopkg.in/yaml.v2).
 */
#ifndef TE_WERFCFG_INT_H
#define TE_WERFCFG_INT_H

#include <stdbool.h>
#include <stddef.h>

#include "tagexport/buf.h"
#include "tagexport/error.h"
#include "tagexport/render.h"

/* At most this many bytes of YAML text in or out. */
#define TE_WERFCFG_YAML_MAX ((size_t)16 << 20)

/* yaml.Unmarshal into map[string]interface{}: *out is a map (an empty
 * document gives an empty map).  Errors in yaml.v2's words
 * ("yaml: line N: ..."). */
int te_werfcfg__from_yaml(te_render_value **out, const char *text, size_t len,
                          te_error *err);

/* yaml.Marshal of v, with one trailing newline removed (werf's toYaml).
 * *out is heap, NUL-terminated. */
int te_werfcfg__to_yaml(char **out, size_t *out_len, const te_render_value *v,
                        te_error *err);

/* .Files.Glob's patterns (werfcfg_glob.c): doublestar's syntax.  expand
 * turns `{a,b}` alternatives into plain patterns (at most 256); match
 * takes one of them, adding to *steps (past TE_WERFCFG_GLOB_STEPS_MAX it
 * gives up with false). */
#define TE_WERFCFG_GLOB_STEPS_MAX 20000000 /* per Glob call */
int te_werfcfg__glob_expand(te_strvec *out, const char *pattern, te_error *err);
bool te_werfcfg__glob_match(const char *p, const char *s, unsigned long *steps);

/* One image of `werf config graph`: werf's imageGraph
 * (https://werf.io/docs/v2/reference/cli/werf_config_graph.html). */
typedef struct te_werfcfg_graph_node {
	const char *image; /* "" for a nameless image */
	const char *from;  /* a werf image it is built FROM, or NULL */
	const char *const *imports;
	size_t nimports;
	const char *const *dependencies;
	size_t ndependencies;
} te_werfcfg_graph_node;

/* yaml.Marshal of the list, trailing newline removed, as werf prints
 * it.  *out is heap, NUL-terminated. */
int te_werfcfg__graph_yaml(char **out, size_t *out_len,
                           const te_werfcfg_graph_node *nodes, size_t n,
                           te_error *err);

#endif
