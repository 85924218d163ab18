/*
 * werfcfg.h - render werf.yaml of a commit through the Go template engine
 * as werf does before parsing it
 * (https://werf.io/docs/v2/reference/werf_yaml_template_engine.html).
 *
 * Templates: every `*.tmpl` under the templates directory (default
 * `.werf`) of the commit, named by its path inside that directory, then
 * werf.yaml (else werf.yml, unless config_path) as the template
 * "werfConfig", executed with the data
 *   .Env          opts->env ("" when NULL)
 *   .Commit.Hash  the commit id
 *   .Commit.Date  Unix (seconds, a string) and Human (Go's time.String()
 *                 of the author time in the author's offset)
 *   .Files        Get PATH (content; missing: error), Exists PATH,
 *                 IsDir PATH, Glob PATTERN (map path -> content; `*`, `?`,
 *                 `**`), all from the commit: each file at most
 *                 TE_WERFCFG_FILE_MAX, 16 MiB read in all, 10000 matches
 * and werf's functions include, tpl, required, env, fromYaml and toYaml
 * (gopkg.in/yaml.v2 v2.4.0's results; checked against it by t61).  `env NAME
 * [DEFAULT]` obeys werf-giterminism.yaml of the commit
 * (config.goTemplateRendering.allowEnvVariables: names and /regexps/,
 * https://werf.io/docs/v2/usage/project_configuration/giterminism.html):
 * a name not allowed is an error naming it unless loose_giterminism.
 * Values come only from opts->lookup_env: the caller decides which
 * environment templates can see (the CLI: its own; the server: a
 * project's map).
 *
 *
 * Ownership: opts and everything it points to are borrowed for the call;
 * *out and *path_out are heap strings the caller frees.
 */
#ifndef TAGEXPORT_WERFCFG_H
#define TAGEXPORT_WERFCFG_H

#include <stdbool.h>
#include <stddef.h>

#include "tagexport/config.h"
#include "tagexport/error.h"
#include "tagexport/gitsrc.h"
#include "tagexport/render.h"

/* Set *value (borrowed until the render returns) and return true when the
 * variable name is set. */
typedef bool (*te_werfcfg_lookup_fn)(const char **value, const char *name,
                                     void *payload);

/* Register more functions after Sprig's (always there, as in werf) and
 * before werf's own, which win on a name clash. */
typedef int (*te_werfcfg_funcs_fn)(te_render_funcs *funcs, void *payload,
                                   te_error *err);

typedef struct te_werfcfg_opts {
	const char *config_path;   /* project-relative; NULL: werf.yaml|yml */
	const char *templates_dir; /* project-relative; NULL: ".werf" */
	const char *env;           /* .Env; NULL: "" */
	bool loose_giterminism;
	te_werfcfg_lookup_fn lookup_env; /* NULL: no variable is set */
	void *lookup_payload;
	te_werfcfg_funcs_fn extra_funcs; /* NULL: none beyond Sprig's, werf's */
	void *extra_payload;
} te_werfcfg_opts;

/* Bounds: werf.yaml and each template 1 MiB, 1000 templates, 16 MiB of
 * templates in all, 1000 tpl calls of one render. */
#define TE_WERFCFG_FILE_MAX ((size_t)1 << 20)
#define TE_WERFCFG_TEMPLATES_MAX 1000
#define TE_WERFCFG_TPL_CALLS_MAX 1000

/*
 * Render the config of commit.  out, out_len: the rendered text; path_out
 * (may be NULL): the config file used ("werf.yaml", "werf.yml" or
 * config_path).  Errors: TE_EINVALID for a missing config, a template
 * that does not parse or execute (Go's `template: NAME:LINE:COL: ...`), a
 * bad werf-giterminism.yaml, or an exceeded bound; nothing is returned
 * then.
 */
int te_werfcfg_render(char **out, size_t *out_len, char **path_out,
                      te_gitsrc *src, const char *commit,
                      const te_werfcfg_opts *opts, te_error *err);

/* One document of rendered text: bytes [off, off + len), its first line
 * (1-based) in the text.  Separator lines are in no document. */
typedef struct te_werfcfg_doc {
	size_t off;
	size_t len;
	int line;
} te_werfcfg_doc;

/*
 * Split rendered text into documents by werf's rule (not a YAML stream
 * parser): a line of `---`, then only spaces, tabs or CRs, optionally a
 * `#` comment, ends a document.  *docs (heap array, free() it) gets every
 * document, empty ones included, in order.  Pure.
 */
int te_werfcfg_split(te_werfcfg_doc **docs, size_t *ndocs, const char *text,
                     size_t len, te_error *err);

/*
 * `werf config graph [IMAGE...] [--final-images-only]`
 * (https://werf.io/docs/v2/reference/cli/werf_config_graph.html): for
 * each selected image, the images it depends on, as werf's YAML list
 *   - image: app
 *     dependsOn:
 *       from: base        (Stapel: fromImage, or a `from:` naming an image)
 *       import: [a, b]    (Stapel imports of werf images, in order)
 *       dependencies: [c] (`dependencies`, each name once)
 * Images: the named ones (an unknown name is TE_EINVALID), else all, in
 * werf.yaml order (werf's own order is a Go map's, so it varies between
 * runs; this one does not), then only final ones when final_only.
 * *out (heap, NUL-terminated, no trailing newline) is the caller's.
 */
int te_werfcfg_graph(char **out, size_t *out_len, const te_werf_config *cfg,
                     const char *const *names, size_t nnames, bool final_only,
                     te_error *err);

#endif
