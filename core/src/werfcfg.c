/*
 * werfcfg.c - werf.yaml through the Go template engine, as werf renders
 * it (https://werf.io/docs/v2/reference/werf_yaml_template_engine.html).
 */
#include "tagexport/werfcfg.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <yaml.h>

#include "tagexport/buf.h"
#include "tagexport/config.h"
#include "config_int.h"
#include "tagexport/regex.h"
#include "werfcfg_int.h"

#define GITERMINISM_FILE "werf-giterminism.yaml"
#define GITERMINISM_MAX ((size_t)64 << 10)
#define TEMPLATES_TOTAL_MAX ((size_t)16 << 20)
/* werf names the main template so (its errors read `template:
 * werfConfig:LINE:COL: ...`). */
#define MAIN_NAME "werfConfig"
#define FILES_TOTAL_MAX ((size_t)16 << 20)
#define GLOB_MATCHES_MAX 10000

struct wctx {
	te_gitsrc *src;
	const char *commit;
	const te_werfcfg_opts *opts;
	te_render_set *set;
	te_strvec allow; /* allowEnvVariables entries */
	const char *dir; /* templates directory */
	size_t ntemplates, template_bytes;
	unsigned int tpl_calls;
	size_t files_bytes; /* read by .Files so far */
	te_error *err;      /* for the walk callbacks */
};

/* ---- werf-giterminism.yaml ------------------------------------------- */

static yaml_node_t *map_get(yaml_document_t *doc, yaml_node_t *map,
                            const char *key)
{
	yaml_node_pair_t *p;

	if (!map || map->type != YAML_MAPPING_NODE)
		return NULL;
	for (p = map->data.mapping.pairs.start; p < map->data.mapping.pairs.top;
	     p++) {
		yaml_node_t *k = yaml_document_get_node(doc, p->key);

		if (k && k->type == YAML_SCALAR_NODE &&
		    !strcmp((const char *)k->data.scalar.value, key))
			return yaml_document_get_node(doc, p->value);
	}
	return NULL;
}

static int allow_list_load(struct wctx *w, yaml_document_t *doc, te_error *err)
{
	yaml_node_t *n = yaml_document_get_root_node(doc);
	yaml_node_item_t *it;

	n = map_get(doc, n, "config");
	n = map_get(doc, n, "goTemplateRendering");
	n = map_get(doc, n, "allowEnvVariables");
	if (!n)
		return 0;
	if (n->type != YAML_SEQUENCE_NODE)
		return te_error_set(err, TE_EINVALID,
		                    GITERMINISM_FILE
		                    ": config.goTemplateRendering."
		                    "allowEnvVariables must be a list");
	for (it = n->data.sequence.items.start; it < n->data.sequence.items.top;
	     it++) {
		yaml_node_t *s = yaml_document_get_node(doc, *it);

		if (!s || s->type != YAML_SCALAR_NODE)
			return te_error_set(err, TE_EINVALID,
			                    GITERMINISM_FILE
			                    ": allowEnvVariables entries must "
			                    "be strings");
		if (te_strvec_push(&w->allow,
		                   (const char *)s->data.scalar.value, err) < 0)
			return TE_ENOMEM;
	}
	return 0;
}

/* A missing file allows nothing. */
static int giterminism_load(struct wctx *w, te_error *err)
{
	te_buf data = TE_BUF_INIT(GITERMINISM_MAX);
	yaml_document_t doc;
	int rc;

	rc = te_gitsrc_read_file(&data, w->src, w->commit, GITERMINISM_FILE,
	                         err);
	if (rc == TE_ENOTFOUND) {
		te_error_clear(err);
		rc = 0;
	} else if (rc == 0 &&
	           (rc = te_config__load_doc(&doc, data.ptr, data.len,
	                                     GITERMINISM_FILE, err)) == 0) {
		rc = allow_list_load(w, &doc, err);
		yaml_document_delete(&doc);
	}
	te_buf_dispose(&data);
	return rc;
}

/* A name, or /RE/: Go's regexp "^RE$", as werf builds it
 * (pkg/giterminism_manager/config/config.go, IsEnvNameAccepted): not
 * grouped, so /A|B/ is "^A|B$". */
static int pattern_match(bool *match, const char *pat, const char *name,
                         te_error *err)
{
	size_t n = strlen(pat);
	te_regex *re = NULL;
	te_buf expr = TE_BUF_INIT(TE_REGEX_PATTERN_MAX + 2);
	int rc;

	if (n < 2 || pat[0] != '/' || pat[n - 1] != '/') {
		*match = !strcmp(pat, name);
		return 0;
	}
	rc = te_buf_printf(&expr, err, "^%.*s$", (int)(n - 2), pat + 1);
	if (rc == 0)
		rc = te_regex_compile(&re, expr.ptr, expr.len, 0, err);
	if (rc == 0)
		rc = te_regex_match(match, re, name, strlen(name), NULL, err);
	if (rc < 0)
		te_error_wrap(err, GITERMINISM_FILE ": allowEnvVariables: %s",
		              pat);
	te_regex_free(re);
	te_buf_dispose(&expr);
	return rc;
}

static int env_check(struct wctx *w, const char *name, te_error *err)
{
	bool match = false;
	size_t i;

	if (w->opts->loose_giterminism)
		return 0;
	for (i = 0; i < w->allow.count && !match; i++)
		if (pattern_match(&match, w->allow.items[i], name, err) < 0)
			return err->code;
	if (match)
		return 0;
	return te_error_set(err, TE_EINVALID,
	                    "env name \"%s\" not allowed by giterminism "
	                    "(config.goTemplateRendering.allowEnvVariables "
	                    "of " GITERMINISM_FILE ")",
	                    name);
}

/* ---- werf's functions ------------------------------------------------ */

static int want_string(const char **s, te_render_value *v, const char *what,
                       te_error *err)
{
	if (te_render_value_kind(v) != TE_RENDER_STRING)
		return te_error_set(err, TE_EINVALID, "%s: expected a string",
		                    what);
	*s = te_render_value_str(v, NULL);
	return 0;
}

static int put_string(te_render_value **out, const char *s, size_t len,
                      te_error *err)
{
	*out = te_render_value_string(s, len);
	return *out ? 0 : te_error_set(err, TE_ENOMEM, "out of memory");
}

/* env NAME [DEFAULT]: werf's rules (giterminism first; an unset variable
 * is an error without a default unless giterminism is loose; an empty
 * one takes the default). */
static int fn_env(te_render_value **out, te_render_call *call,
                  te_render_value *const *args, size_t nargs, void *payload,
                  te_error *err)
{
	struct wctx *w = payload;
	const char *name = NULL, *def = NULL, *val = NULL;
	bool found = false;

	(void)call;
	if (nargs > 2)
		return te_error_set(err, TE_EINVALID,
		                    "more than 1 optional argument prohibited");
	if (want_string(&name, args[0], "env name", err) < 0 ||
	    (nargs == 2 && want_string(&def, args[1], "env default", err) < 0))
		return TE_EINVALID;
	if (env_check(w, name, err) < 0)
		return TE_EINVALID;
	if (w->opts->lookup_env)
		found =
		    w->opts->lookup_env(&val, name, w->opts->lookup_payload);
	if (!found) {
		if (def)
			val = def;
		else if (!w->opts->loose_giterminism)
			return te_error_set(err, TE_EINVALID,
			                    "the environment variable \"%s\" "
			                    "must be set or default must be "
			                    "provided",
			                    name);
		else
			val = "";
	} else if (!*val && def) {
		val = def;
	}
	return put_string(out, val, strlen(val), err);
}

/* required MSG VALUE: VALUE unless nil or "". */
static int fn_required(te_render_value **out, te_render_call *call,
                       te_render_value *const *args, size_t nargs,
                       void *payload, te_error *err)
{
	const char *msg = NULL;
	te_render_kind k = te_render_value_kind(args[1]);
	size_t len = 0;

	(void)call;
	(void)nargs;
	(void)payload;
	if (want_string(&msg, args[0], "required message", err) < 0)
		return TE_EINVALID;
	if (k == TE_RENDER_STRING)
		te_render_value_str(args[1], &len);
	if (k == TE_RENDER_NIL || (k == TE_RENDER_STRING && len == 0))
		return te_error_set(err, TE_EINVALID, "%s", msg);
	*out = te_render_value_ref(args[1]);
	return 0;
}

static int exec_named(te_render_value **out, te_render_call *call,
                      const char *name, te_render_value *data, te_error *err)
{
	char *text = NULL;
	size_t len = 0;
	int rc;

	rc = te_render_call_template(&text, &len, call, name, data, err);
	if (rc < 0)
		return rc;
	rc = put_string(out, text, len, err);
	free(text);
	return rc;
}

/* include NAME DATA: the output of template NAME. */
static int fn_include(te_render_value **out, te_render_call *call,
                      te_render_value *const *args, size_t nargs, void *payload,
                      te_error *err)
{
	const char *name = NULL;

	(void)nargs;
	(void)payload;
	if (want_string(&name, args[0], "include name", err) < 0)
		return TE_EINVALID;
	return exec_named(out, call, name, args[1], err);
}

/* tpl TEXT DATA: TEXT parsed as a new template of the same set (so it
 * sees every define) and executed.  Bounded by TE_WERFCFG_TPL_CALLS_MAX,
 * each parse by the set's input_max. */
static int fn_tpl(te_render_value **out, te_render_call *call,
                  te_render_value *const *args, size_t nargs, void *payload,
                  te_error *err)
{
	struct wctx *w = payload;
	const char *text = NULL;
	size_t len = 0;
	char name[32];

	(void)nargs;
	if (want_string(&text, args[0], "tpl text", err) < 0)
		return TE_EINVALID;
	if (w->tpl_calls >= TE_WERFCFG_TPL_CALLS_MAX)
		return te_error_set(err, TE_EINVALID,
		                    "more than %d tpl calls in one render",
		                    TE_WERFCFG_TPL_CALLS_MAX);
	/* werf names it by a random string; a counter keeps names unique
	 * and messages reproducible. */
	snprintf(name, sizeof(name), "tpl-%u", ++w->tpl_calls);
	te_render_value_str(args[0], &len);
	if (te_render_parse(w->set, name, text, len, err) < 0)
		return TE_EINVALID;
	return exec_named(out, call, name, args[1], err);
}

/* ---- .Files: the commit's files (werf reads them from the commit) ----- */

/* Read a project file for .Files within the render's FILES_TOTAL_MAX. */
static int files_read(te_buf *data, struct wctx *w, const char *path,
                      te_error *err)
{
	int rc;

	rc = te_gitsrc_read_file(data, w->src, w->commit, path, err);
	if (rc < 0)
		return rc;
	w->files_bytes += data->len;
	if (w->files_bytes > FILES_TOTAL_MAX)
		return te_error_set(err, TE_EINVALID,
		                    ".Files read more than %zu bytes in all",
		                    FILES_TOTAL_MAX);
	return 0;
}

/* .Files.Get PATH: the file's content; a missing file is an error. */
static int files_get(te_render_value **out, te_render_call *call,
                     te_render_value *const *args, size_t nargs, void *payload,
                     te_error *err)
{
	struct wctx *w = payload;
	te_buf data = TE_BUF_INIT(TE_WERFCFG_FILE_MAX);
	const char *path = NULL;
	int rc;

	(void)call;
	(void)nargs;
	if (want_string(&path, args[0], "path", err) < 0)
		return TE_EINVALID;
	rc = files_read(&data, w, path, err);
	if (rc == TE_ENOTFOUND) {
		te_error_clear(err);
		rc = te_error_set(err, TE_EINVALID,
		                  "{{ .Files.Get \"%s\" }}: no such file in "
		                  "commit %.12s",
		                  path, w->commit);
	}
	if (rc == 0)
		rc = put_string(out, data.ptr, data.len, err);
	te_buf_dispose(&data);
	return rc;
}

static int stop_walk(const te_gitsrc_entry *e, void *payload)
{
	(void)e;
	(void)payload;
	return TE_ETIMEDOUT; /* any distinct code: found one entry */
}

static int is_dir(bool *out, struct wctx *w, const char *path, te_error *err)
{
	int rc = te_gitsrc_walk(w->src, w->commit, path, stop_walk, NULL, err);

	*out = rc == TE_ETIMEDOUT;
	if (rc == TE_ENOTFOUND || rc == TE_ETIMEDOUT || rc == 0) {
		te_error_clear(err);
		return 0;
	}
	return rc;
}

static int put_bool(te_render_value **out, bool b, te_error *err)
{
	*out = te_render_value_bool(b);
	return *out ? 0 : te_error_set(err, TE_ENOMEM, "out of memory");
}

/* .Files.IsDir PATH; .Files.Exists PATH: a file or a directory. */
static int files_stat(te_render_value **out, te_render_call *call,
                      te_render_value *const *args, size_t nargs, void *payload,
                      te_error *err, bool dir_only)
{
	struct wctx *w = payload;
	te_buf data = TE_BUF_INIT(TE_WERFCFG_FILE_MAX);
	const char *path = NULL;
	bool found = false;
	int rc;

	(void)call;
	(void)nargs;
	if (want_string(&path, args[0], "path", err) < 0)
		return TE_EINVALID;
	rc = is_dir(&found, w, path, err);
	if (rc == 0 && !found && !dir_only) {
		/* the blob header decides: too large still exists */
		data.max = 0;
		rc = te_gitsrc_read_file(&data, w->src, w->commit, path, err);
		found = rc != TE_ENOTFOUND;
		te_error_clear(err);
		rc = 0;
	}
	te_buf_dispose(&data);
	return rc < 0 ? rc : put_bool(out, found, err);
}

static int files_exists(te_render_value **out, te_render_call *call,
                        te_render_value *const *args, size_t nargs,
                        void *payload, te_error *err)
{
	return files_stat(out, call, args, nargs, payload, err, false);
}

static int files_isdir(te_render_value **out, te_render_call *call,
                       te_render_value *const *args, size_t nargs,
                       void *payload, te_error *err)
{
	return files_stat(out, call, args, nargs, payload, err, true);
}

struct glob_walk {
	struct wctx *w;
	const char *pattern;
	te_strvec alts; /* pattern with its {a,b} expanded */
	te_render_value *map;
	size_t matches;
	unsigned long steps;
};

/* g->steps counts the whole Glob call: a pattern that backtracks too
 * much over the tree ends in an error, not in missing files. */
static bool glob_matches(struct glob_walk *g, const char *path)
{
	size_t i;

	for (i = 0; i < g->alts.count; i++)
		if (te_werfcfg__glob_match(g->alts.items[i], path, &g->steps))
			return true;
	return false;
}

static int glob_add(const te_gitsrc_entry *e, void *payload)
{
	struct glob_walk *g = payload;
	te_buf data = TE_BUF_INIT(TE_WERFCFG_FILE_MAX);
	te_render_value *v;
	int rc;

	if (e->mode == 0120000)
		return 0;
	if (!glob_matches(g, e->path))
		return g->steps <= TE_WERFCFG_GLOB_STEPS_MAX
		           ? 0
		           : te_error_set(g->w->err, TE_EINVALID,
		                          "{{ .Files.Glob \"%s\" }}: the "
		                          "pattern takes too many steps",
		                          g->pattern);
	if (++g->matches > GLOB_MATCHES_MAX)
		return te_error_set(g->w->err, TE_EINVALID,
		                    "{{ .Files.Glob \"%s\" }}: more than %d "
		                    "files",
		                    g->pattern, GLOB_MATCHES_MAX);
	rc = files_read(&data, g->w, e->path, g->w->err);
	if (rc == 0) {
		v = te_render_value_string(data.ptr, data.len);
		rc = v ? te_render_map_set(g->map, e->path, strlen(e->path), v,
		                           g->w->err)
		       : te_error_set(g->w->err, TE_ENOMEM, "out of memory");
	}
	te_buf_dispose(&data);
	return rc;
}

/* .Files.Glob PATTERN: map of matching file paths to their contents. */
static int files_glob(te_render_value **out, te_render_call *call,
                      te_render_value *const *args, size_t nargs, void *payload,
                      te_error *err)
{
	struct glob_walk g = {payload, NULL, TE_STRVEC_INIT, NULL, 0, 0};
	te_error *saved = g.w->err;
	int rc;

	(void)call;
	(void)nargs;
	if (want_string(&g.pattern, args[0], "pattern", err) < 0)
		return TE_EINVALID;
	if ((rc = te_werfcfg__glob_expand(&g.alts, g.pattern, err)) < 0) {
		te_strvec_dispose(&g.alts);
		return rc;
	}
	g.map = te_render_value_map();
	if (!g.map)
		return te_error_set(err, TE_ENOMEM, "out of memory");
	g.w->err = err;
	rc = te_gitsrc_walk(g.w->src, g.w->commit, "", glob_add, &g, err);
	g.w->err = saved;
	te_strvec_dispose(&g.alts);
	if (rc < 0) {
		te_render_value_unref(g.map);
		return rc;
	}
	*out = g.map;
	return 0;
}

static int files_methods(te_render_funcs **out, struct wctx *w, te_error *err)
{
	te_render_funcs *f = NULL;
	int rc;

	if ((rc = te_render_funcs_new(&f, err)) < 0)
		return rc;
	if ((rc = te_render_funcs_add(f, "Get", files_get, 1, 1, w, err)) < 0 ||
	    (rc = te_render_funcs_add(f, "Glob", files_glob, 1, 1, w, err)) <
	        0 ||
	    (rc = te_render_funcs_add(f, "Exists", files_exists, 1, 1, w,
	                              err)) < 0 ||
	    (rc = te_render_funcs_add(f, "IsDir", files_isdir, 1, 1, w, err)) <
	        0) {
		te_render_funcs_free(f);
		return rc;
	}
	*out = f;
	return 0;
}

/* fromYaml TEXT: a map, as yaml.v2 unmarshals into map[string]interface{}. */
static int fn_from_yaml(te_render_value **out, te_render_call *call,
                        te_render_value *const *args, size_t nargs,
                        void *payload, te_error *err)
{
	const char *text = NULL;
	size_t len = 0;

	(void)call;
	(void)nargs;
	(void)payload;
	if (want_string(&text, args[0], "fromYaml", err) < 0)
		return TE_EINVALID;
	te_render_value_str(args[0], &len);
	return te_werfcfg__from_yaml(out, text, len, err);
}

/* toYaml VALUE: yaml.v2's Marshal, the trailing newline removed. */
static int fn_to_yaml(te_render_value **out, te_render_call *call,
                      te_render_value *const *args, size_t nargs, void *payload,
                      te_error *err)
{
	char *text = NULL;
	size_t len = 0;
	int rc;

	(void)call;
	(void)nargs;
	(void)payload;
	rc = te_werfcfg__to_yaml(&text, &len, args[0], err);
	if (rc < 0)
		return rc;
	rc = put_string(out, text, len, err);
	free(text);
	return rc;
}

static int funcs_build(te_render_funcs **out, struct wctx *w, te_error *err)
{
	te_render_funcs *f = NULL;
	int rc;

	rc = te_render_funcs_new(&f, err);
	if (rc < 0)
		return rc;
	/* werf's order: Sprig's map (without expandenv), then werf's own
	 * functions, which win on a clash (env). See
	 * https://werf.io/documentation/v2/reference/werf_yaml_template_engine.html
	 */
	rc = te_render_funcs_add_sprig(f, err);
	if (rc < 0)
		goto done;
	if (w->opts->extra_funcs) {
		rc = w->opts->extra_funcs(f, w->opts->extra_payload, err);
		if (rc < 0)
			goto done;
	}
	if ((rc = te_render_funcs_add(f, "env", fn_env, 1, TE_RENDER_VARIADIC,
	                              w, err)) < 0 ||
	    (rc = te_render_funcs_add(f, "required", fn_required, 2, 2, w,
	                              err)) < 0 ||
	    (rc = te_render_funcs_add(f, "include", fn_include, 2, 2, w, err)) <
	        0 ||
	    (rc = te_render_funcs_add(f, "tpl", fn_tpl, 2, 2, w, err)) < 0 ||
	    (rc = te_render_funcs_add(f, "fromYaml", fn_from_yaml, 1, 1, w,
	                              err)) < 0 ||
	    (rc = te_render_funcs_add(f, "toYaml", fn_to_yaml, 1, 1, w, err)) <
	        0)
		goto done;
done:
	if (rc < 0)
		te_render_funcs_free(f);
	else
		*out = f;
	return rc;
}

/* ---- templates and werf.yaml ------------------------------------------ */

static bool ends_with(const char *s, const char *suffix)
{
	size_t n = strlen(s), m = strlen(suffix);

	return n >= m && !memcmp(s + n - m, suffix, m);
}

static int template_add(const te_gitsrc_entry *e, void *payload)
{
	struct wctx *w = payload;
	te_buf path = TE_BUF_INIT(4096),
	       data = TE_BUF_INIT(TE_WERFCFG_FILE_MAX);
	int rc = 0;

	if (!ends_with(e->path, ".tmpl") || e->mode == 0120000)
		return 0;
	if (++w->ntemplates > TE_WERFCFG_TEMPLATES_MAX) {
		rc = te_error_set(w->err, TE_EINVALID,
		                  "more than %d templates in %s",
		                  TE_WERFCFG_TEMPLATES_MAX, w->dir);
		goto done;
	}
	rc = te_buf_printf(&path, w->err, "%s/%s", w->dir, e->path);
	if (rc < 0)
		goto done;
	rc = te_gitsrc_read_file(&data, w->src, w->commit, path.ptr, w->err);
	if (rc < 0)
		goto done;
	w->template_bytes += data.len;
	if (w->template_bytes > TEMPLATES_TOTAL_MAX) {
		rc = te_error_set(w->err, TE_EINVALID,
		                  "templates in %s exceed %zu bytes in all",
		                  w->dir, TEMPLATES_TOTAL_MAX);
		goto done;
	}
	rc = te_render_parse(w->set, e->path, data.ptr, data.len, w->err);
done:
	te_buf_dispose(&path);
	te_buf_dispose(&data);
	return rc;
}

static int templates_load(struct wctx *w, te_error *err)
{
	int rc;

	w->dir = w->opts->templates_dir ? w->opts->templates_dir : ".werf";
	w->err = err;
	rc = te_gitsrc_walk(w->src, w->commit, w->dir, template_add, w, err);
	if (rc == TE_ENOTFOUND && w->ntemplates == 0) {
		te_error_clear(err);
		rc = 0;
	}
	return rc;
}

/* werf.yaml, else werf.yml, unless config_path names one. */
static int config_read(te_buf *data, const char **path, struct wctx *w,
                       te_error *err)
{
	static const char *const defaults[] = {"werf.yaml", "werf.yml"};
	size_t i;
	int rc = TE_ENOTFOUND;

	if (w->opts->config_path) {
		*path = w->opts->config_path;
		rc = te_gitsrc_read_file(data, w->src, w->commit, *path, err);
		if (rc == TE_ENOTFOUND) {
			te_error_clear(err);
			rc = te_error_set(err, TE_EINVALID,
			                  "config %s not found in commit %.12s",
			                  *path, w->commit);
		}
		return rc;
	}
	for (i = 0; i < 2 && rc == TE_ENOTFOUND; i++) {
		te_error_clear(err);
		*path = defaults[i];
		rc = te_gitsrc_read_file(data, w->src, w->commit, *path, err);
	}
	if (rc == TE_ENOTFOUND) {
		te_error_clear(err);
		rc = te_error_set(err, TE_EINVALID,
		                  "werf.yaml (or werf.yml) not found in commit "
		                  "%.12s",
		                  w->commit);
	}
	return rc;
}

static int map_put_string(te_render_value *map, const char *key, const char *s,
                          te_error *err)
{
	te_render_value *v = te_render_value_string(s, strlen(s));

	if (!v)
		return te_error_set(err, TE_ENOMEM, "out of memory");
	return te_render_map_set(map, key, strlen(key), v, err);
}

/*
 * .Commit.Date: werf takes the author time as go-git decodes it (in the
 * author's UTC offset) and prints Human with Go's time.Time.String(),
 * "2006-01-02 15:04:05 -0700 MST"
 * (https://pkg.go.dev/time#Time.String).  The zone name is what Go's
 * time.Parse gives on a host whose local zone is UTC: "UTC" for +0000,
 * else the offset again ("+0300").
 */
static int commit_date(te_render_value **out, struct wctx *w, te_error *err)
{
	te_render_value *date = NULL;
	int64_t when = 0;
	int offset = 0, rc;
	time_t local;
	struct tm tm;
	char human[80], zone[8], unix_text[24];
	int a;

	rc = te_gitsrc_commit_time(&when, &offset, w->src, w->commit, err);
	if (rc < 0)
		return rc;
	local = (time_t)(when + (int64_t)offset * 60);
	if (!gmtime_r(&local, &tm))
		return te_error_set(err, TE_EINVALID,
		                    "commit time out of range");
	a = offset < 0 ? -offset : offset;
	snprintf(zone, sizeof(zone), "%c%02d%02d", offset < 0 ? '-' : '+',
	         a / 60 % 100, a % 60);
	snprintf(human, sizeof(human), "%04d-%02d-%02d %02d:%02d:%02d %s %s",
	         tm.tm_year + 1900, tm.tm_mon + 1, tm.tm_mday, tm.tm_hour,
	         tm.tm_min, tm.tm_sec, zone, offset ? zone : "UTC");
	snprintf(unix_text, sizeof(unix_text), "%lld", (long long)when);
	date = te_render_value_map();
	if (!date)
		return te_error_set(err, TE_ENOMEM, "out of memory");
	if ((rc = map_put_string(date, "Human", human, err)) < 0 ||
	    (rc = map_put_string(date, "Unix", unix_text, err)) < 0) {
		te_render_value_unref(date);
		return rc;
	}
	*out = date;
	return 0;
}

/* {Env: .., Commit: {Hash: .., Date: {Human: .., Unix: ..}}, Files: object}
 * as werf's template data. */
static int data_build(te_render_value **out, struct wctx *w,
                      const te_render_funcs *files, te_error *err)
{
	te_render_value *data = te_render_value_map();
	te_render_value *commit = te_render_value_map();
	te_render_value *fobj = te_render_value_object(files);
	te_render_value *date = NULL;
	int rc = TE_ENOMEM;

	if (!data || !commit || !fobj) {
		te_error_set(err, rc, "out of memory");
		goto done;
	}
	if ((rc = map_put_string(data, "Env", w->opts->env ? w->opts->env : "",
	                         err)) < 0 ||
	    (rc = map_put_string(commit, "Hash", w->commit, err)) < 0 ||
	    (rc = commit_date(&date, w, err)) < 0 ||
	    (rc = te_render_map_set(commit, "Date", 4, date, err)) < 0)
		goto done;
	rc = te_render_map_set(data, "Files", 5, fobj, err);
	fobj = NULL;
	if (rc < 0)
		goto done;
	rc = te_render_map_set(data, "Commit", 6, commit, err);
	commit = NULL;
done:
	te_render_value_unref(fobj);
	te_render_value_unref(commit);
	if (rc < 0)
		te_render_value_unref(data);
	else
		*out = data;
	return rc;
}

int te_werfcfg_render(char **out, size_t *out_len, char **path_out,
                      te_gitsrc *src, const char *commit,
                      const te_werfcfg_opts *opts, te_error *err)
{
	struct wctx w;
	te_render_funcs *funcs = NULL, *files = NULL;
	te_render_value *data = NULL;
	te_buf text = TE_BUF_INIT(TE_WERFCFG_FILE_MAX);
	const char *path = NULL;
	char *path_copy = NULL;
	int rc;

	memset(&w, 0, sizeof(w));
	w.src = src;
	w.commit = commit;
	w.opts = opts;
	w.allow = (te_strvec)TE_STRVEC_INIT;
	if ((rc = config_read(&text, &path, &w, err)) < 0 ||
	    (rc = giterminism_load(&w, err)) < 0 ||
	    (rc = funcs_build(&funcs, &w, err)) < 0 ||
	    (rc = te_render_set_new(&w.set, funcs, NULL, err)) < 0 ||
	    (rc = templates_load(&w, err)) < 0 ||
	    (rc = te_render_parse(w.set, MAIN_NAME, text.ptr, text.len, err)) <
	        0 ||
	    (rc = files_methods(&files, &w, err)) < 0 ||
	    (rc = data_build(&data, &w, files, err)) < 0)
		goto done;
	if (path_out && !(path_copy = te_strdup(path, err))) {
		rc = TE_ENOMEM;
		goto done;
	}
	rc = te_render_exec(out, out_len, w.set, MAIN_NAME, data, err);
	if (rc < 0)
		goto done;
	if (path_out) {
		*path_out = path_copy;
		path_copy = NULL;
	}
done:
	free(path_copy);
	te_render_value_unref(data);
	te_render_set_free(w.set);
	te_render_funcs_free(funcs);
	te_render_funcs_free(files);
	te_strvec_dispose(&w.allow);
	te_buf_dispose(&text);
	return rc;
}

/* ---- werf's document splitter ----------------------------------------- */

static int doc_push(te_werfcfg_doc **docs, size_t *n, size_t *cap, size_t off,
                    size_t end, int line, te_error *err)
{
	if (*n == *cap) {
		size_t ncap = *cap ? *cap * 2 : 8;
		te_werfcfg_doc *d = realloc(*docs, ncap * sizeof(*d));

		if (!d)
			return te_error_set(err, TE_ENOMEM, "out of memory");
		*docs = d;
		*cap = ncap;
	}
	(*docs)[*n].off = off;
	(*docs)[*n].len = end - off;
	(*docs)[*n].line = line;
	(*n)++;
	return 0;
}

int te_werfcfg_split(te_werfcfg_doc **docs, size_t *ndocs, const char *text,
                     size_t len, te_error *err)
{
	te_werfcfg_doc *d = NULL;
	size_t n = 0, cap = 0, pos = 0, start = 0;
	int line = 1, start_line = 1, rc = 0;

	while (pos < len && rc == 0) {
		const char *nl = memchr(text + pos, '\n', len - pos);
		size_t end = nl ? (size_t)(nl - text) : len;

		if (te_config_is_separator(text + pos, end - pos)) {
			rc =
			    doc_push(&d, &n, &cap, start, pos, start_line, err);
			start = nl ? end + 1 : len;
			start_line = line + 1;
		}
		pos = nl ? end + 1 : len;
		line++;
	}
	if (rc == 0 && start < len)
		rc = doc_push(&d, &n, &cap, start, len, start_line, err);
	if (rc < 0) {
		free(d);
		return rc;
	}
	*docs = d;
	*ndocs = n;
	return 0;
}
