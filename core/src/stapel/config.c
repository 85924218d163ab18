/*
 * stapel/config.c - Stapel image documents of werf.yaml into a typed
 * te_stapel_image (https://werf.io/docs/v2/reference/werf_yaml.html, the
 * Stapel image section).
 *
 * The document is validated against the schema below first (unknown keys,
 * duplicates and wrong types fail with their line), then read field by
 * field; every semantic check names the key and its line.  Keys that are
 * valid werf but not built here are refused, never dropped.
 */
#include "stapel/stapel_int.h"

#include <errno.h>
#include <fnmatch.h>
#include <stdlib.h>
#include <string.h>

#include <jansson.h>

#include "tagexport/mirror.h"

static const struct field paths_fields[] = {
    {"install", K_STR_OR_LIST, NULL},
    {"beforeSetup", K_STR_OR_LIST, NULL},
    {"setup", K_STR_OR_LIST, NULL},
    {NULL, K_ANY, NULL},
};

/* https://werf.io/docs/v2/reference/werf_yaml.html, git.basicAuth; the
 * usage page names the file source `src`, the reference `file` */
static const struct field password_fields[] = {
    {"env", K_STR, NULL},   {"src", K_STR, NULL}, {"file", K_STR, NULL},
    {"value", K_STR, NULL}, {NULL, K_ANY, NULL},
};

static const struct field basic_auth_fields[] = {
    {"username", K_STR, NULL},
    {"password", K_MAP, password_fields},
    {NULL, K_ANY, NULL},
};

static const struct field git_fields[] = {
    {"url", K_STR, NULL},
    {"basicAuth", K_MAP, basic_auth_fields},
    {"branch", K_STR, NULL},
    {"commit", K_STR, NULL},
    {"tag", K_STR, NULL},
    {"add", K_STR, NULL},
    {"to", K_STR, NULL},
    {"owner", K_STR, NULL},
    {"group", K_STR, NULL},
    {"includePaths", K_STR_OR_LIST, NULL},
    {"excludePaths", K_STR_OR_LIST, NULL},
    {"stageDependencies", K_MAP, paths_fields},
    {"herebyIAdmitThatBranchMightBreakReproducibility", K_BOOL, NULL},
    {NULL, K_ANY, NULL},
};

static const struct field shell_fields[] = {
    {"beforeInstall", K_STR_OR_LIST, NULL},
    {"install", K_STR_OR_LIST, NULL},
    {"beforeSetup", K_STR_OR_LIST, NULL},
    {"setup", K_STR_OR_LIST, NULL},
    {"cacheVersion", K_STR, NULL},
    {"beforeInstallCacheVersion", K_STR, NULL},
    {"installCacheVersion", K_STR, NULL},
    {"beforeSetupCacheVersion", K_STR, NULL},
    {"setupCacheVersion", K_STR, NULL},
    {NULL, K_ANY, NULL},
};

static const struct field docker_fields[] = {
    {"exactValues", K_BOOL, NULL},
    {"USER", K_STR, NULL},
    {"WORKDIR", K_STR, NULL},
    {"VOLUME", K_STR_OR_LIST, NULL},
    {"ENV", K_STRMAP, NULL},
    {"LABEL", K_STRMAP, NULL},
    {"EXPOSE", K_STR_OR_LIST, NULL},
    {"ENTRYPOINT", K_STR_OR_LIST, NULL},
    {"CMD", K_STR_OR_LIST, NULL},
    {"HEALTHCHECK", K_STR, NULL},
    {NULL, K_ANY, NULL},
};

static const struct field mount_fields[] = {
    {"from", K_STR, NULL},
    {"fromPath", K_STR, NULL},
    {"to", K_STR, NULL},
    {NULL, K_ANY, NULL},
};

static const struct field import_fields[] = {
    {"artifact", K_STR, NULL},
    {"image", K_STR, NULL},
    {"from", K_STR, NULL},
    {"stage", K_STR, NULL},
    {"before", K_STR, NULL},
    {"after", K_STR, NULL},
    {"add", K_STR, NULL},
    {"to", K_STR, NULL},
    {"owner", K_STR, NULL},
    {"group", K_STR, NULL},
    {"includePaths", K_STR_OR_LIST, NULL},
    {"excludePaths", K_STR_OR_LIST, NULL},
    {NULL, K_ANY, NULL},
};

static const struct field dep_import_fields[] = {
    {"type", K_STR, NULL},
    {"targetEnv", K_STR, NULL},
    {NULL, K_ANY, NULL},
};

static const struct field dependency_fields[] = {
    {"image", K_STR, NULL}, {"before", K_STR, NULL},
    {"after", K_STR, NULL}, {"imports", K_MAPLIST, dep_import_fields},
    {NULL, K_ANY, NULL},
};

static const struct field stapel_fields[] = {
    {"image", K_ANY, NULL},
    {"artifact", K_STR, NULL},
    {"final", K_BOOL, NULL},
    {"cacheVersion", K_STR, NULL},
    {"platform", K_STRLIST, NULL},
    {"from", K_STR, NULL},
    {"fromLatest", K_BOOL, NULL},
    {"herebyIAdmitThatFromLatestMightBreakReproducibility", K_BOOL, NULL},
    {"fromImage", K_STR, NULL},
    {"fromArtifact", K_STR, NULL},
    {"fromCacheVersion", K_STR, NULL},
    {"disableGitAfterPatch", K_BOOL, NULL},
    {"git", K_MAPLIST, git_fields},
    {"secrets", K_ANY, NULL}, /* config.c: te_config__parse_secrets */
    {"shell", K_MAP, shell_fields},
    {"ansible", K_ANY, NULL},
    {"imageSpec", K_ANY, NULL}, /* config.c: parse_imagespec */
    {"docker", K_MAP, docker_fields},
    {"mount", K_MAPLIST, mount_fields},
    {"import", K_MAPLIST, import_fields},
    {"dependencies", K_MAPLIST, dependency_fields},
    {NULL, K_ANY, NULL},
};

static const char *const user_names[TE_STAPEL_NUSER] = {
    "beforeInstall", "install", "beforeSetup", "setup"};

const char *te_stapel_user_name(te_stapel_user u)
{
	return (unsigned)u < TE_STAPEL_NUSER ? user_names[u] : "?";
}

/* One Stapel document being read: the yaml context and the image name
 * every message carries. */
struct doc {
	struct ctx *c;
	const char *name;
};

static int refuse(struct doc *d, const yaml_node_t *n, te_code code,
                  const char *what)
{
	return te_config__fail(d->c, n, code, "image \"%s\": %s", d->name,
	                       what);
}

static const yaml_node_t *get(struct doc *d, const yaml_node_t *map,
                              const char *key)
{
	const yaml_node_t *v = te_config__map_get(d->c, map, key);

	return v && !te_config__is_null(v) ? v : NULL;
}

static int opt_str(struct doc *d, char **out, const yaml_node_t *map,
                   const char *key)
{
	return te_config__opt_string(d->c, out, get(d, map, key), NULL);
}

/* A scalar or a list of scalars appended to out. */
static int str_list(struct doc *d, te_strvec *out, const yaml_node_t *map,
                    const char *key)
{
	const yaml_node_t *v = get(d, map, key);
	yaml_node_item_t *it;
	int rc;

	if (!v)
		return 0;
	if (v->type == YAML_SCALAR_NODE)
		return te_strvec_push(out, te_config__scalar(v), d->c->err);
	for (it = v->data.sequence.items.start; it < v->data.sequence.items.top;
	     it++) {
		rc = te_strvec_push(
		    out, te_config__scalar(te_config__get_node(d->c, *it)),
		    d->c->err);
		if (rc < 0)
			return rc;
	}
	return 0;
}

/* Globs (includePaths, excludePaths, stageDependencies): werf's path
 * masks, matched with the .dockerignore engine (ignore.h), whose line
 * syntax must not leak in: no newline, no leading '!' or '#'. */
static int glob_list(struct doc *d, te_strvec *out, const yaml_node_t *map,
                     const char *key)
{
	size_t i, first = out->count;
	int rc = str_list(d, out, map, key);
	char what[128];

	for (i = first; rc == 0 && i < out->count; i++) {
		const char *g = out->items[i];
		if (g[0] != '!' && g[0] != '#' && !strpbrk(g, "\r\n"))
			continue;
		snprintf(what, sizeof(what),
		         "%s: mask \"%.40s\" must not start with '!' or '#' "
		         "or hold a line break",
		         key, g);
		return refuse(d, get(d, map, key), TE_EINVALID, what);
	}
	return rc;
}

/* An absolute path in an image or a repository, cleaned ("/a/./b/" ->
 * "/a/b"); ".." may not climb above "/". */
static int abs_path(struct doc *d, char **out, const yaml_node_t *map,
                    const char *key, const char *deflt)
{
	const yaml_node_t *v = get(d, map, key);
	const char *s = v ? te_config__scalar(v) : deflt;
	char *rel = NULL;
	char what[128];

	*out = NULL;
	if (!s)
		return 0;
	if (s[0] != '/') {
		snprintf(what, sizeof(what), "%s must be an absolute path",
		         key);
		return refuse(d, v, TE_EINVALID, what);
	}
	rel = te_config__clean_rel(s + 1, d->c->err);
	if (!rel) {
		if (d->c->err->code != TE_OK)
			return d->c->err->code;
		snprintf(what, sizeof(what), "%s must not climb above /", key);
		return refuse(d, v, TE_EINVALID, what);
	}
	*out = malloc(strlen(rel) + 2);
	if (*out) {
		(*out)[0] = '/';
		memcpy(*out + 1, rel, strlen(rel) + 1);
	}
	free(rel);
	return *out ? 0 : te_error_set(d->c->err, TE_ENOMEM, "out of memory");
}

/* Each (map, list-of-mappings) item of key: a pointer to its node. */
static size_t list_len(const yaml_node_t *v)
{
	if (!v || v->type != YAML_SEQUENCE_NODE)
		return 0;
	return (size_t)(v->data.sequence.items.top -
	                v->data.sequence.items.start);
}

static const yaml_node_t *list_item(struct doc *d, const yaml_node_t *v,
                                    size_t i)
{
	return te_config__get_node(d->c, v->data.sequence.items.start[i]);
}

static void *alloc_items(struct doc *d, size_t n, size_t size)
{
	void *p = calloc(n ? n : 1, size);

	if (!p)
		te_error_set(d->c->err, TE_ENOMEM, "out of memory");
	return p;
}

/* basicAuth: a username and exactly one password source. */
static int parse_basic_auth(struct doc *d, te_stapel_git *g,
                            const yaml_node_t *n)
{
	static const char *const keys[] = {"env", "src", "file", "value"};
	static const te_secret_kind kinds[] = {TE_SECRET_ENV, TE_SECRET_SRC,
	                                       TE_SECRET_SRC, TE_SECRET_VALUE};
	const yaml_node_t *pw;
	size_t i, found = 0;
	int rc;

	if (!n)
		return 0;
	rc = opt_str(d, &g->auth_user, n, "username");
	pw = get(d, n, "password");
	for (i = 0; rc == 0 && pw && i < 4; i++) {
		if (!get(d, pw, keys[i]))
			continue;
		found++;
		g->auth_kind = kinds[i];
		rc = opt_str(d, &g->auth_password, pw, keys[i]);
	}
	if (rc < 0)
		return rc;
	if (found != 1 || !g->auth_user)
		return refuse(d, n, TE_EINVALID,
		              "git basicAuth needs \"username\" and a "
		              "\"password\" with one of env, src or value");
	return 0;
}

/* url, the ref to check out (at most one of branch, tag, commit) and
 * basicAuth of a remote mapping. */
static int parse_remote(struct doc *d, te_stapel_git *g, const yaml_node_t *n)
{
	char what[200];
	int rc;

	if (!g->url)
		return 0;
	if (te_stapel__url_check(g->url, what, sizeof(what)) < 0)
		return refuse(d, get(d, n, "url"), TE_EINVALID, what);
	if (!!g->branch + !!g->tag + !!g->commit > 1)
		return refuse(d, n, TE_EINVALID,
		              "git url: give one of branch, tag and commit");
	if (g->commit &&
	    (strlen(g->commit) < 7 || strlen(g->commit) > 40 ||
	     strspn(g->commit, "0123456789abcdef") != strlen(g->commit)))
		return refuse(d, get(d, n, "commit"), TE_EINVALID,
		              "git commit must be 7 to 40 lowercase hex "
		              "digits");
	if ((g->tag && !te_mirror_tag_valid(g->tag)) ||
	    (g->branch && !te_mirror_tag_valid(g->branch)))
		return refuse(d, n, TE_EINVALID,
		              "git tag or branch is not a valid ref name");
	rc = parse_basic_auth(d, g, get(d, n, "basicAuth"));
	if (rc == 0 && g->auth_user && te_stapel__url_scheme_ssh(g->url))
		rc = refuse(d, n, TE_EINVALID,
		            "git basicAuth is for http and https urls");
	return rc;
}

static int parse_git(struct doc *d, te_stapel_git *g, const yaml_node_t *n)
{
	const yaml_node_t *deps;
	int rc, u;

	g->line = te_config__node_line(d->c, n);
	rc = opt_str(d, &g->url, n, "url");
	if (rc == 0)
		rc = opt_str(d, &g->branch, n, "branch");
	if (rc == 0)
		rc = opt_str(d, &g->tag, n, "tag");
	if (rc == 0)
		rc = opt_str(d, &g->commit, n, "commit");
	if (rc == 0)
		rc = opt_str(d, &g->owner, n, "owner");
	if (rc == 0)
		rc = opt_str(d, &g->group, n, "group");
	if (rc == 0)
		rc = abs_path(d, &g->add, n, "add", "/");
	if (rc == 0)
		rc = abs_path(d, &g->to, n, "to", NULL);
	if (rc == 0)
		rc = glob_list(d, &g->include_paths, n, "includePaths");
	if (rc == 0)
		rc = glob_list(d, &g->exclude_paths, n, "excludePaths");
	if (rc < 0)
		return rc;
	if (!g->to)
		return refuse(d, n, TE_EINVALID,
		              "git mapping needs \"to: <absolute path>\"");
	if (!g->url &&
	    (g->branch || g->tag || g->commit || get(d, n, "basicAuth")))
		return refuse(d, n, TE_EINVALID,
		              "git branch, tag, commit and basicAuth need "
		              "\"url\" (a remote repository)");
	rc = parse_remote(d, g, n);
	if (rc < 0)
		return rc;
	deps = get(d, n, "stageDependencies");
	for (u = TE_STAPEL_INSTALL; deps && u < TE_STAPEL_NUSER; u++) {
		rc = glob_list(d, &g->stage_deps[u], deps, user_names[u]);
		if (rc < 0)
			return rc;
	}
	return 0;
}

static int parse_shell(struct doc *d, te_stapel_shell *sh, const yaml_node_t *n)
{
	char key[64];
	int rc = 0, u;

	if (!n)
		return 0;
	for (u = 0; rc == 0 && u < TE_STAPEL_NUSER; u++) {
		snprintf(key, sizeof(key), "%sCacheVersion", user_names[u]);
		rc = str_list(d, &sh->cmds[u], n, user_names[u]);
		if (rc == 0)
			rc = opt_str(d, &sh->stage_cache_version[u], n, key);
	}
	if (rc == 0)
		rc = opt_str(d, &sh->cache_version, n, "cacheVersion");
	return rc;
}

/* `before: install` / `after: setup` into a te_stapel_when. */
static int parse_when(struct doc *d, te_stapel_when *out, const yaml_node_t *n,
                      const char *what)
{
	const yaml_node_t *before = get(d, n, "before");
	const yaml_node_t *after = get(d, n, "after");
	const yaml_node_t *v = before ? before : after;
	char msg[160];
	int setup;

	if (before && after) {
		snprintf(msg, sizeof(msg),
		         "%s: specify only one of before and after", what);
		return refuse(d, after, TE_EINVALID, msg);
	}
	if (!v) {
		snprintf(msg, sizeof(msg),
		         "%s needs \"before\" or \"after\" (install or setup)",
		         what);
		return refuse(d, n, TE_EINVALID, msg);
	}
	if (strcmp(te_config__scalar(v), "install") &&
	    strcmp(te_config__scalar(v), "setup")) {
		snprintf(msg, sizeof(msg),
		         "%s: %s \"%.40s\" must be install or setup", what,
		         before ? "before" : "after", te_config__scalar(v));
		return refuse(d, v, TE_EINVALID, msg);
	}
	setup = !strcmp(te_config__scalar(v), "setup");
	*out = (te_stapel_when)(setup * 2 + (before ? 0 : 1));
	return 0;
}

/* werf's import source: `from:` (werf image or external reference),
 * else the deprecated `image:` / `artifact:`. */
static int import_source(struct doc *d, te_stapel_import *im,
                         const yaml_node_t *n)
{
	static const char *const keys[] = {"from", "image", "artifact"};
	const yaml_node_t *v, *found = NULL;
	size_t i;

	for (i = 0; i < 3; i++) {
		v = get(d, n, keys[i]);
		if (v && found)
			return refuse(d, v, TE_EINVALID,
			              "import: specify only one of from, "
			              "image and artifact");
		if (v)
			found = v;
	}
	if (!found)
		return refuse(d, n, TE_EINVALID,
		              "import needs \"from\" (an image)");
	if (strpbrk(te_config__scalar(found), ":@"))
		im->external = te_strdup(te_config__scalar(found), d->c->err);
	else
		im->image = te_strdup(te_config__scalar(found), d->c->err);
	return im->external || im->image ? 0 : TE_ENOMEM;
}

static int parse_import(struct doc *d, te_stapel_import *im,
                        const yaml_node_t *n)
{
	int rc;

	im->line = te_config__node_line(d->c, n);
	rc = import_source(d, im, n);
	if (rc == 0)
		rc = opt_str(d, &im->stage, n, "stage");
	if (rc == 0)
		rc = opt_str(d, &im->owner, n, "owner");
	if (rc == 0)
		rc = opt_str(d, &im->group, n, "group");
	if (rc == 0)
		rc = abs_path(d, &im->add, n, "add", NULL);
	if (rc == 0)
		rc = abs_path(d, &im->to, n, "to", NULL);
	if (rc == 0)
		rc = glob_list(d, &im->include_paths, n, "includePaths");
	if (rc == 0)
		rc = glob_list(d, &im->exclude_paths, n, "excludePaths");
	if (rc == 0)
		rc = parse_when(d, &im->when, n, "import");
	if (rc < 0)
		return rc;
	if (!im->add)
		return refuse(d, n, TE_EINVALID,
		              "import needs \"add: <absolute path>\"");
	/* werf's import config: a user stage only (werf/werf
	 * pkg/config/import.go) */
	if (im->stage && strcmp(im->stage, "beforeInstall") &&
	    strcmp(im->stage, "install") && strcmp(im->stage, "beforeSetup") &&
	    strcmp(im->stage, "setup"))
		return refuse(d, get(d, n, "stage"), TE_EINVALID,
		              "import: stage must be beforeInstall, install, "
		              "beforeSetup or setup");
	if (!im->to)
		im->to = te_strdup(im->add, d->c->err);
	return im->to ? 0 : TE_ENOMEM;
}

/* fromPath: a host path, absolute here (werf also takes one relative to
 * the project directory, which a build from a commit does not have), and
 * one buildah's --volume HOST:CTR:OPTS can carry (no ':' or ','). */
static int from_path(struct doc *d, te_stapel_mount *m, const yaml_node_t *n,
                     const yaml_node_t *path)
{
	const char *s = te_config__scalar(path);
	int rc;

	if (s[0] != '/')
		return refuse(d, path, TE_EUNSUPPORTED,
		              "mount fromPath must be an absolute path (a "
		              "path relative to the project directory is not "
		              "supported)");
	rc = abs_path(d, &m->from_path, n, "fromPath", NULL);
	if (rc == 0 && strpbrk(m->from_path, ":,"))
		rc = refuse(d, path, TE_EUNSUPPORTED,
		            "mount fromPath must not hold ':' or ','");
	return rc;
}

static int parse_mount(struct doc *d, te_stapel_mount *m, const yaml_node_t *n)
{
	const yaml_node_t *from = get(d, n, "from");
	const yaml_node_t *path = get(d, n, "fromPath");
	int rc;

	m->line = te_config__node_line(d->c, n);
	if (from && path)
		return refuse(d, path, TE_EINVALID,
		              "mount: specify only one of from and fromPath");
	if (!from && !path)
		return refuse(d, n, TE_EINVALID,
		              "mount needs \"from: tmp_dir|build_dir\" or "
		              "\"fromPath\"");
	if (path) {
		m->from = TE_STAPEL_MOUNT_PATH;
		rc = from_path(d, m, n, path);
		if (rc < 0)
			return rc;
	} else if (!strcmp(te_config__scalar(from), "tmp_dir")) {
		m->from = TE_STAPEL_MOUNT_TMP_DIR;
	} else if (!strcmp(te_config__scalar(from), "build_dir")) {
		m->from = TE_STAPEL_MOUNT_BUILD_DIR;
	} else {
		return refuse(d, from, TE_EINVALID,
		              "mount from must be tmp_dir or build_dir");
	}
	rc = abs_path(d, &m->to, n, "to", NULL);
	if (rc < 0)
		return rc;
	if (!m->to)
		return refuse(d, n, TE_EINVALID,
		              "mount needs \"to: <absolute path>\"");
	if (strpbrk(m->to, ":,") || !strcmp(m->to, "/"))
		return refuse(d, get(d, n, "to"), TE_EINVALID,
		              "mount to must not be / or hold ':' or ','");
	return 0;
}

static int parse_dep_import(struct doc *d, te_stapel_dependency *dep,
                            const yaml_node_t *n)
{
	static const char *const types[] = {"ImageName", "ImageDigest",
	                                    "ImageRepo", "ImageTag", NULL};
	const yaml_node_t *type = get(d, n, "type");
	const yaml_node_t *env = get(d, n, "targetEnv");
	size_t i;

	if (!type || !env)
		return refuse(d, n, TE_EINVALID,
		              "dependencies imports need \"type\" and "
		              "\"targetEnv\"");
	for (i = 0; types[i]; i++)
		if (!strcmp(types[i], te_config__scalar(type)))
			break;
	if (!types[i])
		return refuse(d, type, TE_EINVALID,
		              "dependencies import type must be ImageName, "
		              "ImageDigest, ImageRepo or ImageTag");
	if (!*te_config__scalar(env) ||
	    strpbrk(te_config__scalar(env), "= \t\r\n"))
		return refuse(d, env, TE_EINVALID,
		              "dependencies targetEnv is not a valid "
		              "variable name");
	return te_strvec_pushf(&dep->imports, d->c->err, "%s=%s",
	                       te_config__scalar(type), te_config__scalar(env));
}

static int parse_dependency(struct doc *d, te_stapel_dependency *dep,
                            const yaml_node_t *n)
{
	const yaml_node_t *imports = get(d, n, "imports");
	size_t i;
	int rc;

	dep->line = te_config__node_line(d->c, n);
	rc = opt_str(d, &dep->image, n, "image");
	if (rc < 0)
		return rc;
	if (!dep->image || !*dep->image)
		return refuse(d, n, TE_EINVALID, "dependency needs \"image\"");
	rc = parse_when(d, &dep->when, n, "dependency");
	for (i = 0; rc == 0 && i < list_len(imports); i++)
		rc = parse_dep_import(d, dep, list_item(d, imports, i));
	return rc;
}

/* ENV and LABEL: "NAME=VALUE" in file order. */
static int str_map(struct doc *d, te_strvec *out, const yaml_node_t *map,
                   const char *key)
{
	const yaml_node_t *v = get(d, map, key);
	yaml_node_pair_t *p;
	int rc;

	for (p = v ? v->data.mapping.pairs.start : NULL;
	     v && p < v->data.mapping.pairs.top; p++) {
		const yaml_node_t *k = te_config__get_node(d->c, p->key);
		const yaml_node_t *val = te_config__get_node(d->c, p->value);

		if (!*te_config__scalar(k) || strchr(te_config__scalar(k), '='))
			return refuse(d, k, TE_EINVALID,
			              "docker ENV/LABEL name must be "
			              "non-empty without '='");
		rc = te_strvec_pushf(
		    out, d->c->err, "%s=%s", te_config__scalar(k),
		    te_config__is_null(val) ? "" : te_config__scalar(val));
		if (rc < 0)
			return rc;
	}
	return 0;
}

/* ENTRYPOINT and CMD: a string is the shell form; a list the exec form,
 * kept as a JSON array of strings (what buildah config takes). */
static int exec_form(struct doc *d, char **out, const yaml_node_t *map,
                     const char *key)
{
	const yaml_node_t *v = get(d, map, key);
	json_t *arr = NULL;
	size_t i;
	int rc = 0;

	if (!v || v->type == YAML_SCALAR_NODE)
		return opt_str(d, out, map, key);
	arr = json_array();
	for (i = 0; arr && i < list_len(v); i++)
		if (json_array_append_new(arr, json_string(te_config__scalar(
		                                   list_item(d, v, i)))))
			break;
	if (arr && i == list_len(v))
		*out = json_dumps(arr, JSON_COMPACT);
	if (!*out)
		rc = te_config__fail(d->c, v, TE_EINVALID,
		                     "image \"%s\": %s must be UTF-8 strings",
		                     d->name, key);
	json_decref(arr);
	return rc;
}

static int parse_docker(struct doc *d, te_stapel_docker *dk,
                        const yaml_node_t *n)
{
	int rc;

	if (!n)
		return 0;
	dk->set = true;
	rc = str_list(d, &dk->volume, n, "VOLUME");
	if (rc == 0)
		rc = str_list(d, &dk->expose, n, "EXPOSE");
	if (rc == 0)
		rc = str_map(d, &dk->env, n, "ENV");
	if (rc == 0)
		rc = str_map(d, &dk->label, n, "LABEL");
	if (rc == 0)
		rc = opt_str(d, &dk->workdir, n, "WORKDIR");
	if (rc == 0)
		rc = opt_str(d, &dk->user, n, "USER");
	if (rc == 0)
		rc = opt_str(d, &dk->healthcheck, n, "HEALTHCHECK");
	if (rc == 0)
		rc = exec_form(d, &dk->entrypoint, n, "ENTRYPOINT");
	if (rc == 0)
		rc = exec_form(d, &dk->cmd, n, "CMD");
	return rc;
}

/* The key node of key in map, or NULL. */
static const yaml_node_t *key_of(struct doc *d, const yaml_node_t *map,
                                 const char *key)
{
	yaml_node_pair_t *p;

	for (p = map->data.mapping.pairs.start; p < map->data.mapping.pairs.top;
	     p++) {
		const yaml_node_t *k = te_config__get_node(d->c, p->key);
		if (!strcmp(te_config__scalar(k), key))
			return k;
	}
	return NULL;
}

/* Keys werf has that are not built here: refused by name and the line
 * of the key. */
static int refuse_unsupported(struct doc *d, const yaml_node_t *root)
{
	const yaml_node_t *v;

	v = key_of(d, root, "ansible");
	if (v)
		return refuse(d, v, TE_EUNSUPPORTED,
		              "ansible is not supported (use shell)");
	return 0;
}

/* from / fromImage / fromArtifact: exactly one. */
static int parse_base(struct doc *d, te_stapel_image *img,
                      const yaml_node_t *root)
{
	static const char *const keys[] = {"from", "fromImage", "fromArtifact"};
	const yaml_node_t *v, *found = NULL;
	size_t i, which = 0;
	int rc;

	for (i = 0; i < 3; i++) {
		v = get(d, root, keys[i]);
		if (v && found)
			return refuse(d, v, TE_EINVALID,
			              "specify only one of from, fromImage "
			              "and fromArtifact");
		if (v) {
			found = v;
			which = i;
		}
	}
	if (!found || !*te_config__scalar(found))
		return refuse(d, found ? found : root, TE_EINVALID,
		              "a base image is required: from, fromImage or "
		              "fromArtifact");
	img->from_line = te_config__node_line(d->c, found);
	rc = opt_str(d, which ? &img->from_image : &img->from, root,
	             keys[which]);
	if (rc < 0)
		return rc;
	v = get(d, root, "fromLatest");
	img->from_latest = v && te_config__bool_value(v) == 1;
	if (v)
		img->from_latest_line = te_config__node_line(d->c, v);
	if (img->from_latest && !img->from)
		return refuse(d, v, TE_EINVALID,
		              "fromLatest needs from (a registry image)");
	v = get(d, root, "disableGitAfterPatch");
	img->disable_git_after_patch = v && te_config__bool_value(v) == 1;
	rc = opt_str(d, &img->from_cache_version, root, "fromCacheVersion");
	if (rc == 0)
		rc = opt_str(d, &img->cache_version, root, "cacheVersion");
	return rc;
}

static int parse_lists(struct doc *d, te_stapel_image *img,
                       const yaml_node_t *root)
{
	const yaml_node_t *git = get(d, root, "git");
	const yaml_node_t *imp = get(d, root, "import");
	const yaml_node_t *mnt = get(d, root, "mount");
	const yaml_node_t *dep = get(d, root, "dependencies");
	size_t i;
	int rc = 0;

	img->git = alloc_items(d, list_len(git), sizeof(*img->git));
	img->imports = alloc_items(d, list_len(imp), sizeof(*img->imports));
	img->mounts = alloc_items(d, list_len(mnt), sizeof(*img->mounts));
	img->deps = alloc_items(d, list_len(dep), sizeof(*img->deps));
	if (!img->git || !img->imports || !img->mounts || !img->deps)
		return TE_ENOMEM;
	/* zeroed items free cleanly, so counts are set before parsing */
	img->ngit = list_len(git);
	img->nimports = list_len(imp);
	img->nmounts = list_len(mnt);
	img->ndeps = list_len(dep);
	for (i = 0; rc == 0 && i < img->ngit; i++)
		rc = parse_git(d, &img->git[i], list_item(d, git, i));
	for (i = 0; rc == 0 && i < img->nimports; i++)
		rc = parse_import(d, &img->imports[i], list_item(d, imp, i));
	for (i = 0; rc == 0 && i < img->nmounts; i++)
		rc = parse_mount(d, &img->mounts[i], list_item(d, mnt, i));
	for (i = 0; rc == 0 && i < img->ndeps; i++)
		rc = parse_dependency(d, &img->deps[i], list_item(d, dep, i));
	return rc;
}

int te_stapel__parse(te_stapel_image **out, struct ctx *c,
                     const yaml_node_t *root, const char *name)
{
	struct doc d = {c, name};
	te_stapel_image *img = NULL;
	int rc;

	*out = NULL;
	rc = te_config__validate_map(c, root, stapel_fields, NULL, 1);
	if (rc == 0)
		rc = refuse_unsupported(&d, root);
	if (rc < 0)
		return rc;
	img = calloc(1, sizeof(*img));
	if (!img)
		return te_error_set(c->err, TE_ENOMEM, "out of memory");
	img->line = te_config__node_line(
	    c, te_config__get_node(c, root->data.mapping.pairs.start->key));
	img->artifact = te_config__map_get(c, root, "artifact") != NULL;
	rc = parse_base(&d, img, root);
	if (rc == 0)
		rc = parse_shell(&d, &img->shell, get(&d, root, "shell"));
	if (rc == 0)
		rc = parse_docker(&d, &img->docker, get(&d, root, "docker"));
	if (rc == 0)
		rc = parse_lists(&d, img, root);
	if (rc < 0)
		goto done;
	*out = img;
	img = NULL;
done:
	te_stapel_image_free(img);
	return rc;
}

/* ---- werf-giterminism.yaml: config.stapel ----------------------------- */

#define GITERMINISM_NAME "werf-giterminism.yaml"

/* The key's node of a mapping; none when the map is not one. */
static const yaml_node_t *allowed_key(struct ctx *c, const yaml_node_t *map,
                                      const char *key)
{
	return map && map->type == YAML_MAPPING_NODE
	           ? te_config__map_get(c, map, key)
	           : NULL;
}

/* A boolean of config.stapel (key: its path below it); unset or null:
 * false. */
static int allowed_bool(bool *out, struct ctx *c, const yaml_node_t *v,
                        const char *key)
{
	*out = false;
	if (!v || te_config__is_null(v))
		return 0;
	if (te_config__bool_value(v) < 0)
		return te_config__fail(c, v, TE_EINVALID,
		                       "config.stapel.%s must be a boolean",
		                       key);
	*out = te_config__bool_value(v) == 1;
	return 0;
}

static int allowed_mount(te_stapel_allowed *out, struct ctx *c,
                         const yaml_node_t *mount);

int te_stapel_allowed_parse(te_stapel_allowed *out, const char *data,
                            size_t len, te_error *err)
{
	yaml_document_t doc;
	struct ctx c = {GITERMINISM_NAME, NULL, 1, 0, err};
	const yaml_node_t *n, *v = NULL;
	int rc;

	memset(out, 0, sizeof(*out));
	out->from_paths = (te_strvec)TE_STRVEC_INIT;
	if (!data)
		return 0;
	if ((rc = te_config__load_doc(&doc, data, len, GITERMINISM_NAME, err)) <
	    0)
		return rc;
	c.doc = &doc;
	n = yaml_document_get_root_node(&doc);
	if (n && n->type == YAML_MAPPING_NODE)
		n = te_config__map_get(&c, n, "config");
	if (n && n->type == YAML_MAPPING_NODE)
		n = te_config__map_get(&c, n, "stapel");
	if (n && n->type == YAML_MAPPING_NODE)
		v = te_config__map_get(&c, n, "allowFromLatest");
	rc = allowed_bool(&out->from_latest, &c, v, "allowFromLatest");
	if (rc == 0)
		rc = allowed_bool(
		    &out->git_branch, &c,
		    allowed_key(&c, allowed_key(&c, n, "git"), "allowBranch"),
		    "git.allowBranch");
	if (rc == 0 && n && n->type == YAML_MAPPING_NODE)
		rc = allowed_mount(out, &c, te_config__map_get(&c, n, "mount"));
	yaml_document_delete(&doc);
	return rc;
}

void te_stapel_allowed_dispose(te_stapel_allowed *a)
{
	te_strvec_dispose(&a->from_paths);
}

static bool glob_any(const char *const *globs, size_t n, const char *path)
{
	size_t i;

	for (i = 0; i < n; i++)
		if (fnmatch(globs[i], path, 0) == 0)
			return true;
	return false;
}

int te_stapel_git_url_check(const te_stapel_git *g, const te_stapel_policy *op,
                            const char *file, const char *name, te_error *err)
{
	if (!op || !g->url || glob_any(op->git_urls, op->ngit_urls, g->url))
		return 0;
	return te_error_set(err, TE_EINVALID,
	                    "%s:%d: image \"%s\": git url %s is not allowed "
	                    "by the operator's project settings "
	                    "(stapel_git_urls)",
	                    file, g->line, name, g->url);
}

/* The operator's word on a fromPath: its real path must match, so a
 * symlink or ".." inside an allowed directory leads nowhere else. */
static int operator_path(const te_stapel_mount *m, const te_stapel_policy *op,
                         const char *file, const char *name, te_error *err)
{
	char *real = realpath(m->from_path, NULL);
	int rc = 0;

	if (!real)
		return te_error_set_errno(err, TE_ENOTFOUND, errno,
		                          "%s:%d: image \"%s\": mount fromPath "
		                          "\"%s\"",
		                          file, m->line, name, m->from_path);
	if (!glob_any(op->from_paths, op->nfrom_paths, real))
		rc = te_error_set(err, TE_EINVALID,
		                  "%s:%d: image \"%s\": mount fromPath \"%s\" "
		                  "is not allowed by the operator's project "
		                  "settings (stapel_mounts.from_paths)",
		                  file, m->line, name, m->from_path);
	free(real);
	return rc;
}

int te_stapel_mount_check(const te_stapel_mount *m, const te_stapel_allowed *a,
                          const te_stapel_policy *op, const char *file,
                          const char *name, te_error *err)
{
	bool dir = m->from == TE_STAPEL_MOUNT_BUILD_DIR;

	if (m->from == TE_STAPEL_MOUNT_TMP_DIR)
		return 0;
	/* https://werf.io/docs/v2/usage/project_configuration/
	 * giterminism.html#mount: neither is allowed by default */
	if (a && dir && !a->build_dir)
		return te_error_set(
		    err, TE_EINVALID,
		    "%s:%d: image \"%s\": mount from: build_dir "
		    "is not allowed by " GITERMINISM_NAME
		    " (config.stapel.mount.allowBuildDir)",
		    file, m->line, name);
	if (a && !dir &&
	    !glob_any((const char *const *)a->from_paths.items,
	              a->from_paths.count, m->from_path))
		return te_error_set(
		    err, TE_EINVALID,
		    "%s:%d: image \"%s\": mount fromPath \"%s\" "
		    "is not allowed by " GITERMINISM_NAME
		    " (config.stapel.mount.allowFromPaths)",
		    file, m->line, name, m->from_path);
	if (op && dir && !op->build_dir)
		return te_error_set(
		    err, TE_EINVALID,
		    "%s:%d: image \"%s\": mount from: build_dir "
		    "is not allowed by the operator's project "
		    "settings (stapel_mounts.build_dir)",
		    file, m->line, name);
	if (op && !dir)
		return operator_path(m, op, file, name, err);
	return 0;
}

/* mount.allowBuildDir and mount.allowFromPaths (a list of globs). */
static int allowed_mount(te_stapel_allowed *out, struct ctx *c,
                         const yaml_node_t *mount)
{
	const yaml_node_t *v = allowed_key(c, mount, "allowFromPaths");
	const yaml_node_t *item;
	yaml_node_item_t *it;
	int rc;

	rc = allowed_bool(&out->build_dir, c,
	                  allowed_key(c, mount, "allowBuildDir"),
	                  "mount.allowBuildDir");
	if (rc < 0 || !v || te_config__is_null(v))
		return rc;
	if (v->type != YAML_SEQUENCE_NODE)
		return te_config__fail(
		    c, v, TE_EINVALID,
		    "config.stapel.mount.allowFromPaths must "
		    "be a list of globs");
	for (it = v->data.sequence.items.start; it < v->data.sequence.items.top;
	     it++) {
		item = te_config__get_node(c, *it);
		if (!item || item->type != YAML_SCALAR_NODE)
			return te_config__fail(
			    c, v, TE_EINVALID,
			    "config.stapel.mount.allowFromPaths must be a "
			    "list of globs");
		rc = te_strvec_push(&out->from_paths, te_config__scalar(item),
		                    c->err);
		if (rc < 0)
			return rc;
	}
	return 0;
}

static void free_git(te_stapel_git *g)
{
	int u;

	free(g->url);
	free(g->auth_user);
	if (g->auth_password)
		explicit_bzero(g->auth_password, strlen(g->auth_password));
	free(g->auth_password);
	free(g->branch);
	free(g->tag);
	free(g->commit);
	free(g->add);
	free(g->to);
	free(g->owner);
	free(g->group);
	te_strvec_dispose(&g->include_paths);
	te_strvec_dispose(&g->exclude_paths);
	for (u = 0; u < TE_STAPEL_NUSER; u++)
		te_strvec_dispose(&g->stage_deps[u]);
}

static void free_import(te_stapel_import *im)
{
	free(im->image);
	free(im->external);
	free(im->stage);
	free(im->add);
	free(im->to);
	free(im->owner);
	free(im->group);
	te_strvec_dispose(&im->include_paths);
	te_strvec_dispose(&im->exclude_paths);
}

static void free_docker(te_stapel_docker *dk)
{
	te_strvec_dispose(&dk->volume);
	te_strvec_dispose(&dk->expose);
	te_strvec_dispose(&dk->env);
	te_strvec_dispose(&dk->label);
	free(dk->workdir);
	free(dk->user);
	free(dk->entrypoint);
	free(dk->cmd);
	free(dk->healthcheck);
}

void te_stapel_image_free(te_stapel_image *img)
{
	size_t i;
	int u;

	if (!img)
		return;
	free(img->from);
	free(img->from_image);
	free(img->from_cache_version);
	free(img->cache_version);
	for (i = 0; i < img->ngit; i++)
		free_git(&img->git[i]);
	free(img->git);
	for (u = 0; u < TE_STAPEL_NUSER; u++) {
		te_strvec_dispose(&img->shell.cmds[u]);
		free(img->shell.stage_cache_version[u]);
	}
	free(img->shell.cache_version);
	for (i = 0; i < img->nimports; i++)
		free_import(&img->imports[i]);
	free(img->imports);
	for (i = 0; i < img->nmounts; i++) {
		free(img->mounts[i].from_path);
		free(img->mounts[i].to);
	}
	free(img->mounts);
	for (i = 0; i < img->ndeps; i++) {
		free(img->deps[i].image);
		te_strvec_dispose(&img->deps[i].imports);
	}
	free(img->deps);
	free_docker(&img->docker);
	free(img);
}

size_t te_stapel__find_image(const te_image_config *images, size_t n,
                             const char *name)
{
	size_t i;

	for (i = 0; i < n; i++)
		if (!strcmp(images[i].name, name))
			return i;
	return n;
}

static int check_ref(const te_image_config *images, size_t n, size_t self,
                     const char *ref, const char *what, int line,
                     const char *file, te_error *err)
{
	size_t j = te_stapel__find_image(images, n, ref);

	if (j == n)
		return te_error_set(err, TE_EINVALID,
		                    "%s:%d: image \"%s\": %s \"%s\" is not "
		                    "defined in werf.yaml",
		                    file, line, images[self].name, what, ref);
	if (j == self)
		return te_error_set(err, TE_EINVALID,
		                    "%s:%d: image \"%s\": %s names the image "
		                    "itself",
		                    file, line, images[self].name, what);
	return 0;
}

/* The images one image needs built first, visited with fn. */
static int each_ref(const te_image_config *img,
                    int (*fn)(const char *ref, const char *what, int line,
                              void *payload),
                    void *payload)
{
	const te_stapel_image *s = img->stapel;
	size_t i;
	int rc = 0;

	if (!s)
		return 0;
	if (s->from_image)
		rc = fn(s->from_image, "fromImage", s->from_line, payload);
	for (i = 0; rc == 0 && i < s->nimports; i++)
		if (s->imports[i].image)
			rc = fn(s->imports[i].image, "import",
			        s->imports[i].line, payload);
	for (i = 0; rc == 0 && i < s->ndeps; i++)
		rc = fn(s->deps[i].image, "dependency", s->deps[i].line,
		        payload);
	return rc;
}

struct walk {
	const te_image_config *images;
	size_t n, self;
	unsigned char *color; /* 0 new, 1 on the path, 2 done */
	const char *file;
	te_error *err;
};

static int visit(struct walk *w, size_t i);

static int visit_ref(const char *ref, const char *what, int line, void *payload)
{
	struct walk *w = payload;
	size_t self = w->self, j;
	int rc;

	rc = check_ref(w->images, w->n, self, ref, what, line, w->file, w->err);
	if (rc < 0)
		return rc;
	j = te_stapel__find_image(w->images, w->n, ref);
	if (w->color[j] == 1)
		return te_error_set(w->err, TE_EINVALID,
		                    "%s:%d: image \"%s\": %s \"%s\" makes a "
		                    "cycle of images",
		                    w->file, line, w->images[self].name, what,
		                    ref);
	rc = visit(w, j);
	w->self = self;
	return rc;
}

static int visit(struct walk *w, size_t i)
{
	int rc;

	if (w->color[i])
		return 0;
	w->color[i] = 1;
	w->self = i;
	rc = each_ref(&w->images[i], visit_ref, w);
	w->color[i] = 2;
	return rc;
}

/* werf v2: `from:` may name an image of werf.yaml instead of a registry
 * image (https://werf.io/docs/v2/usage/build/stapel/base.html). */
static void resolve_from(te_image_config *images, size_t n)
{
	size_t i;

	for (i = 0; i < n; i++) {
		te_stapel_image *s = images[i].stapel;

		if (!s || !s->from || s->from_latest ||
		    te_stapel__find_image(images, n, s->from) == n)
			continue;
		s->from_image = s->from;
		s->from = NULL;
	}
}

int te_stapel__link(te_image_config *images, size_t n, const char *file,
                    te_error *err)
{
	struct walk w = {images, n, 0, NULL, file, err};
	size_t i;
	int rc = 0;

	resolve_from(images, n);
	w.color = calloc(n ? n : 1, 1);
	if (!w.color)
		return te_error_set(err, TE_ENOMEM, "out of memory");
	for (i = 0; rc == 0 && i < n; i++)
		rc = visit(&w, i);
	free(w.color);
	return rc;
}
