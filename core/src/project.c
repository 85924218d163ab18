/*
 * project.c - the projects of a tagexport-server configuration file
 * (project.h).
 *
 * The file is loaded as a libyaml document so every node keeps its line;
 * each key is checked against a fixed list (unknown keys are errors, so a
 * typo never silently falls back to a default).
 */
#include "tagexport/project.h"
#include "tagexport/config.h"
#include "tagexport/fs.h"
#include "tagexport/gitsrc.h"
#include "tagexport/schedule.h"

#include <errno.h>
#include <fcntl.h>
#include <fnmatch.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

const char *te_forge_name(te_forge forge)
{
	switch (forge) {
	case TE_FORGE_GITHUB:
		return "github";
	case TE_FORGE_GITLAB:
		return "gitlab";
	case TE_FORGE_GITEA:
		return "gitea";
	}
	return "unknown";
}

bool te_project_name_valid(const char *name)
{
	size_t i;

	for (i = 0; name[i]; i++) {
		char c = name[i];
		if (i >= TE_PROJECT_NAME_MAX)
			return false;
		if (!((c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') ||
		      c == '_' || c == '-'))
			return false;
	}
	return i > 0;
}

bool te_project_tag_selected(const te_strvec *globs, const char *tag)
{
	size_t i;

	if (!globs || globs->count == 0)
		return true;
	for (i = 0; i < globs->count; i++)
		if (fnmatch(globs->items[i], tag, 0) == 0)
			return true;
	return false;
}

static int line_of(const yaml_node_t *node)
{
	return node ? (int)node->start_mark.line + 1 : 0;
}

static int fail(const te_project_yaml *p, const yaml_node_t *node,
                te_error *err, const char *what)
{
	return te_error_set(err, TE_EINVALID, "%s:%d: %s", p->file,
	                    line_of(node), what);
}

static yaml_node_t *node_at(const te_project_yaml *p, int idx)
{
	return yaml_document_get_node(p->doc, idx);
}

static const char *scalar(const yaml_node_t *node)
{
	return node->type == YAML_SCALAR_NODE
	           ? (const char *)node->data.scalar.value
	           : NULL;
}

static bool is_null(const yaml_node_t *node)
{
	const char *s = scalar(node);

	if (!s || node->data.scalar.style != YAML_PLAIN_SCALAR_STYLE)
		return false;
	return !*s || !strcmp(s, "~") || !strcmp(s, "null") ||
	       !strcmp(s, "Null") || !strcmp(s, "NULL");
}

/* A non-empty string scalar without NUL bytes. */
static int get_str(char **out, const te_project_yaml *p,
                   const yaml_node_t *node, const char *key, te_error *err)
{
	char what[160];
	const char *s = scalar(node);

	if (!s || is_null(node) || !*s ||
	    strlen(s) != node->data.scalar.length) {
		snprintf(what, sizeof(what), "%s must be a non-empty string",
		         key);
		return fail(p, node, err, what);
	}
	free(*out);
	*out = te_strdup(s, err);
	return *out ? 0 : TE_ENOMEM;
}

static int get_path(char **out, const te_project_yaml *p,
                    const yaml_node_t *node, const char *key, te_error *err)
{
	char *s = NULL, *joined;
	size_t need;
	int rc;

	if ((rc = get_str(&s, p, node, key, err)) < 0)
		return rc;
	if (s[0] == '/' || !p->dir) {
		free(*out);
		*out = s;
		return 0;
	}
	need = strlen(p->dir) + strlen(s) + 2;
	joined = malloc(need);
	if (!joined) {
		free(s);
		return te_error_set(err, TE_ENOMEM, "out of memory");
	}
	snprintf(joined, need, "%s/%s", p->dir, s);
	free(s);
	free(*out);
	*out = joined;
	return 0;
}

/* An http(s) URL with a host and no blanks or controls; a trailing '/'
 * is dropped so paths can be appended. */
static int get_url(char **out, const te_project_yaml *p,
                   const yaml_node_t *node, const char *key, te_error *err)
{
	char what[160];
	const char *rest;
	size_t i, len;
	int rc;

	if ((rc = get_str(out, p, node, key, err)) < 0)
		return rc;
	rest = !strncmp(*out, "https://", 8)  ? *out + 8
	       : !strncmp(*out, "http://", 7) ? *out + 7
	                                      : NULL;
	for (i = 0; rest && (*out)[i]; i++)
		if ((unsigned char)(*out)[i] <= ' ' || (*out)[i] == 0x7f)
			rest = NULL;
	if (!rest || !*rest || *rest == '/') {
		snprintf(what, sizeof(what),
		         "%s must be an http:// or https:// URL", key);
		return fail(p, node, err, what);
	}
	len = strlen(*out);
	while (len > 0 && (*out)[len - 1] == '/')
		(*out)[--len] = '\0';
	return 0;
}

static int get_bool(bool *out, const te_project_yaml *p,
                    const yaml_node_t *node, const char *key, te_error *err)
{
	char what[160];
	const char *s = scalar(node);

	if (s && (!strcmp(s, "true") || !strcmp(s, "True") ||
	          !strcmp(s, "yes") || !strcmp(s, "on"))) {
		*out = true;
		return 0;
	}
	if (s && (!strcmp(s, "false") || !strcmp(s, "False") ||
	          !strcmp(s, "no") || !strcmp(s, "off"))) {
		*out = false;
		return 0;
	}
	snprintf(what, sizeof(what), "%s must be true or false", key);
	return fail(p, node, err, what);
}

static int get_uint(unsigned long *out, const te_project_yaml *p,
                    const yaml_node_t *node, const char *key, unsigned long min,
                    unsigned long max, te_error *err)
{
	char what[200];
	const char *s = scalar(node);
	char *end;
	unsigned long v;

	if (s && *s >= '0' && *s <= '9') {
		errno = 0;
		v = strtoul(s, &end, 10);
		if (!errno && !*end && v >= min && v <= max) {
			*out = v;
			return 0;
		}
	}
	snprintf(what, sizeof(what), "%s must be an integer from %lu to %lu",
	         key, min, max);
	return fail(p, node, err, what);
}

/* A size: bytes, or a number with B, KiB, MiB, GiB or TiB. */
static int get_size(uint64_t *out, const te_project_yaml *p,
                    const yaml_node_t *node, const char *key, te_error *err)
{
	te_error perr = TE_ERROR_INIT;
	char what[400];
	const char *s = scalar(node);

	if (s && strlen(s) == node->data.scalar.length &&
	    te_gitsrc_size_parse(out, s, &perr) == 0)
		return 0;
	snprintf(what, sizeof(what), "%s: %.300s", key,
	         perr.msg[0] ? perr.msg : "must be a size such as 512MiB");
	return fail(p, node, err, what);
}

/* A string or a list of strings. */
static int get_strlist(te_strvec *out, const te_project_yaml *p,
                       const yaml_node_t *node, const char *key, te_error *err)
{
	char what[160];
	yaml_node_item_t *it;
	char *s = NULL;
	int rc;

	te_strvec_dispose(out);
	if (node->type == YAML_SCALAR_NODE) {
		if ((rc = get_str(&s, p, node, key, err)) < 0)
			return rc;
		return te_strvec_push_owned(out, s, err);
	}
	if (node->type != YAML_SEQUENCE_NODE) {
		snprintf(what, sizeof(what), "%s must be a list of strings",
		         key);
		return fail(p, node, err, what);
	}
	for (it = node->data.sequence.items.start;
	     it < node->data.sequence.items.top; it++) {
		s = NULL;
		if ((rc = get_str(&s, p, node_at(p, *it), key, err)) < 0)
			return rc;
		if ((rc = te_strvec_push_owned(out, s, err)) < 0)
			return rc;
	}
	return 0;
}

/* env: a mapping of variable names to string values (empty allowed);
 * errors name the key, never a value. */
static int get_env_map(te_strvec *out, const te_project_yaml *p,
                       const yaml_node_t *node, te_error *err)
{
	yaml_node_pair_t *pair;
	int rc;

	te_strvec_dispose(out);
	if (node->type != YAML_MAPPING_NODE)
		return fail(p, node, err, "env must be a mapping NAME: VALUE");
	for (pair = node->data.mapping.pairs.start;
	     pair < node->data.mapping.pairs.top; pair++) {
		yaml_node_t *kn = node_at(p, pair->key);
		yaml_node_t *vn = node_at(p, pair->value);
		const char *k = scalar(kn), *v = scalar(vn);
		size_t i;

		if (!k || !*k || (k[0] >= '0' && k[0] <= '9'))
			return fail(p, kn, err,
			            "env names must match "
			            "[A-Za-z_][A-Za-z0-9_]*");
		for (i = 0; k[i]; i++)
			if (!(k[i] == '_' || (k[i] >= '0' && k[i] <= '9') ||
			      ((k[i] | 0x20) >= 'a' && (k[i] | 0x20) <= 'z')))
				return fail(p, kn, err,
				            "env names must match "
				            "[A-Za-z_][A-Za-z0-9_]*");
		if (!v || strlen(v) != vn->data.scalar.length)
			return fail(p, vn, err,
			            "env values must be strings without NUL");
		if ((rc = te_strvec_pushf(out, err, "%s=%s", k,
		                          is_null(vn) ? "" : v)) < 0)
			return rc;
	}
	return 0;
}

/* NAME's value in the project's env: map, or NULL. */
static const char *project_env_get(const te_project *pr, const char *name)
{
	size_t i, n = strlen(name);

	if (strchr(name, '='))
		return NULL;
	for (i = 0; i < pr->env.count; i++)
		if (!strncmp(pr->env.items[i], name, n) &&
		    pr->env.items[i][n] == '=')
			return pr->env.items[i] + n + 1;
	return NULL;
}

/* te_werfcfg_lookup_fn over a project's env: map. */
static bool project_env_lookup(const char **value, const char *name,
                               void *payload)
{
	const char *v = project_env_get(payload, name);

	if (v)
		*value = v;
	return v != NULL;
}

/* ---- secrets and ssh keys for werf.yaml's build keys ----------------- */

#define TE_PROJECT_SECRETS_MAX 64

static bool build_secret_id_valid(const char *id)
{
	size_t i, n = strlen(id);

	if (n == 0 || n > 128)
		return false;
	for (i = 0; i < n; i++)
		if (!(id[i] == '_' || id[i] == '.' || id[i] == '-' ||
		      (id[i] >= '0' && id[i] <= '9') ||
		      ((id[i] | 0x20) >= 'a' && (id[i] | 0x20) <= 'z')))
			return false;
	return true;
}

/* One secret: {env: NAME} or {file: PATH}. */
static int parse_build_secret(struct te_project_secret *s,
                              const te_project_yaml *p, const yaml_node_t *vn,
                              te_error *err)
{
	yaml_node_pair_t *q;
	const char *k;

	if (vn->type != YAML_MAPPING_NODE ||
	    vn->data.mapping.pairs.top - vn->data.mapping.pairs.start != 1)
		return fail(p, vn, err,
		            "a secret is {env: NAME} or {file: PATH}");
	q = vn->data.mapping.pairs.start;
	k = scalar(node_at(p, q->key));
	if (k && !strcmp(k, "env"))
		return get_str(&s->env, p, node_at(p, q->value), "env", err);
	if (k && !strcmp(k, "file"))
		return get_path(&s->file, p, node_at(p, q->value), "file", err);
	return fail(p, vn, err, "a secret is {env: NAME} or {file: PATH}");
}

/* secrets: {ID: {env: NAME} | {file: PATH}, ...} */
static int parse_build_secrets(te_project *pr, const te_project_yaml *p,
                               const yaml_node_t *node, te_error *err)
{
	yaml_node_pair_t *pair;
	size_t n;
	int rc = 0;

	if (node->type != YAML_MAPPING_NODE)
		return fail(p, node, err,
		            "secrets must be a mapping ID: {env: NAME} or "
		            "ID: {file: PATH}");
	n = (size_t)(node->data.mapping.pairs.top -
	             node->data.mapping.pairs.start);
	if (n > TE_PROJECT_SECRETS_MAX)
		return fail(p, node, err, "more than 64 secrets");
	pr->build_secrets = calloc(n + 1, sizeof(*pr->build_secrets));
	if (!pr->build_secrets)
		return te_error_set(err, TE_ENOMEM, "out of memory");
	for (pair = node->data.mapping.pairs.start;
	     rc == 0 && pair < node->data.mapping.pairs.top; pair++) {
		yaml_node_t *kn = node_at(p, pair->key);
		struct te_project_secret *s =
		    &pr->build_secrets[pr->nbuild_secrets++];
		const char *k = scalar(kn);

		if (!k || !build_secret_id_valid(k))
			return fail(
			    p, kn, err,
			    "secret ids must match [A-Za-z0-9_.-]{1,128}");
		if (!(s->id = te_strdup(k, err)))
			return TE_ENOMEM;
		rc = parse_build_secret(s, p, node_at(p, pair->value), err);
	}
	return rc;
}

/* ssh_key_files: private keys for werf.yaml's ssh: (relative to the
 * config file's directory); none of them may hold a ',' (buildah --ssh). */
static int get_ssh_keys(te_strvec *out, const te_project_yaml *p,
                        const yaml_node_t *node, te_error *err)
{
	size_t i;
	int rc;

	if ((rc = get_strlist(out, p, node, "ssh_key_files", err)) < 0)
		return rc;
	for (i = 0; i < out->count; i++) {
		char *abs = NULL;

		if (strchr(out->items[i], ','))
			return fail(p, node, err,
			            "ssh_key_files paths must not hold a ','");
		if (out->items[i][0] == '/' || !p->dir)
			continue;
		if (te_strvec_pushf(out, err, "%s/%s", p->dir, out->items[i]) <
		    0)
			return TE_ENOMEM;
		abs = out->items[--out->count];
		out->items[out->count] = NULL;
		free(out->items[i]);
		out->items[i] = abs;
	}
	return 0;
}

/* te_export_secret_fn of a project: by id, from its env: map or a file;
 * never from the process's own environment. */
static int project_build_secret(te_buf *out, const char *id,
                                te_secret_kind kind, const char *ref,
                                void *payload, te_error *err)
{
	const te_project *pr = payload;
	const struct te_project_secret *s = NULL;
	const char *v = NULL;
	bool too_big = false;
	size_t i;
	int fd, rc = 0;

	(void)kind;
	(void)ref;
	for (i = 0; i < pr->nbuild_secrets && !s; i++)
		if (!strcmp(pr->build_secrets[i].id, id))
			s = &pr->build_secrets[i];
	if (!s)
		return te_error_set(err, TE_ENOTFOUND,
		                    "project %s has no secret \"%s\" (secrets: "
		                    "in the server config)",
		                    pr->name, id);
	if (s->env) {
		if (!(v = project_env_get(pr, s->env)))
			return te_error_set(err, TE_ENOTFOUND,
			                    "project %s: env: has no %s",
			                    pr->name, s->env);
		return te_buf_puts(out, v, err);
	}
	fd = open(s->file, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return te_error_set_errno(err, TE_EIO, errno, "cannot read %s",
		                          s->file);
	if (te_fs_read_all(out, fd, &too_big) < 0 || too_big)
		rc = te_error_set(err, TE_EINVALID,
		                  "%s is unreadable or too large", s->file);
	close(fd);
	return rc;
}

/* Read a secret: the file's (or variable's) content minus trailing
 * whitespace.  The message names the file or variable, never the value. */
static int read_secret(char **out, size_t *len_out, const char *file,
                       const char *env, te_error *err)
{
	char buf[TE_PROJECT_SECRET_MAX + 1];
	size_t len = 0;
	ssize_t n;
	int fd = -1, rc = 0;

	if (file) {
		fd = open(file, O_RDONLY | O_CLOEXEC);
		if (fd < 0)
			return te_error_set_errno(err, TE_EIO, errno,
			                          "cannot read %s", file);
		while (len < sizeof(buf)) {
			n = read(fd, buf + len, sizeof(buf) - len);
			if (n < 0 && errno == EINTR)
				continue;
			if (n < 0) {
				rc = te_error_set_errno(err, TE_EIO, errno,
				                        "cannot read %s", file);
				goto done;
			}
			if (n == 0)
				break;
			len += (size_t)n;
		}
	} else {
		const char *v = getenv(env);
		if (!v) {
			rc = te_error_set(err, TE_EINVALID,
			                  "environment variable %s is not set",
			                  env);
			goto done;
		}
		len = strlen(v);
		if (len > TE_PROJECT_SECRET_MAX)
			len = sizeof(buf);
		memcpy(buf, v, len);
	}
	if (len > TE_PROJECT_SECRET_MAX) {
		rc = te_error_set(err, TE_EINVALID, "secret in %s is too long",
		                  file ? file : env);
		goto done;
	}
	while (len > 0 && (buf[len - 1] == '\n' || buf[len - 1] == '\r' ||
	                   buf[len - 1] == ' ' || buf[len - 1] == '\t'))
		len--;
	if (len == 0 || memchr(buf, '\0', len)) {
		rc = te_error_set(err, TE_EINVALID, "secret in %s is empty",
		                  file ? file : env);
		goto done;
	}
	*out = malloc(len + 1);
	if (!*out) {
		rc = te_error_set(err, TE_ENOMEM, "out of memory");
		goto done;
	}
	memcpy(*out, buf, len);
	(*out)[len] = '\0';
	*len_out = len;
done:
	explicit_bzero(buf, sizeof(buf));
	if (fd >= 0)
		close(fd);
	return rc;
}

static int secret_at(char **out, size_t *len, const te_project_yaml *p,
                     const yaml_node_t *node, const char *file, const char *env,
                     te_error *err)
{
	te_error sub = TE_ERROR_INIT;
	char what[TE_ERROR_MSG_MAX];

	if (read_secret(out, len, file, env, &sub) < 0) {
		snprintf(what, sizeof(what), "%s", sub.msg);
		return fail(p, node, err, what);
	}
	return 0;
}
static int parse_labels(te_labels *labels, const te_project_yaml *p,
                        const yaml_node_t *node, te_error *err)
{
	yaml_node_pair_t *pair;
	char *k = NULL, *v = NULL;
	int rc = 0;

	if (node->type != YAML_MAPPING_NODE)
		return fail(p, node, err,
		            "add_label must be a mapping of label: value");
	for (pair = node->data.mapping.pairs.start;
	     pair < node->data.mapping.pairs.top; pair++) {
		yaml_node_t *kn = node_at(p, pair->key);
		yaml_node_t *vn = node_at(p, pair->value);
		if ((rc = get_str(&k, p, kn, "a label name", err)) < 0)
			goto done;
		if (scalar(vn) && is_null(vn)) {
			free(v);
			v = te_strdup("", err);
		} else if ((rc = get_str(&v, p, vn, "a label value", err)) <
		           0) {
			goto done;
		}
		if (!v) {
			rc = TE_ENOMEM;
			goto done;
		}
		if (strchr(k, '=')) {
			rc =
			    fail(p, kn, err, "a label name cannot contain '='");
			goto done;
		}
		if ((rc = te_labels_set(labels, k, v, err)) < 0)
			goto done;
	}
done:
	free(k);
	free(v);
	return rc;
}

static int get_timeout(unsigned *out, const te_project_yaml *p,
                       const yaml_node_t *node, te_error *err)
{
	te_error perr = TE_ERROR_INIT;
	const char *s = scalar(node);

	if (te_build_timeout_parse(out, s ? s : "", &perr) < 0)
		return fail(p, node, err, perr.msg);
	return 0;
}

/* export.parallel_tasks_limit: werf's --parallel-tasks-limit. */
static int get_parallel(int *out, const te_project_yaml *p,
                        const yaml_node_t *node, te_error *err)
{
	te_error perr = TE_ERROR_INIT;
	const char *s = scalar(node);

	if (te_schedule_parallel_parse(out, s ? s : "", &perr) < 0)
		return fail(p, node, err, perr.msg);
	return 0;
}

static int parse_export(te_project *pr, const te_project_yaml *p,
                        const yaml_node_t *node, te_error *err)
{
	yaml_node_pair_t *pair;
	int rc;

	if (node->type != YAML_MAPPING_NODE)
		return fail(p, node, err, "export must be a mapping");
	for (pair = node->data.mapping.pairs.start;
	     pair < node->data.mapping.pairs.top; pair++) {
		yaml_node_t *kn = node_at(p, pair->key);
		yaml_node_t *vn = node_at(p, pair->value);
		const char *k = scalar(kn);

		if (!k)
			return fail(p, kn, err, "keys must be strings");
		if (!strcmp(k, "repo"))
			rc = get_str(&pr->repo, p, vn, "export.repo", err);
		else if (!strcmp(k, "tag"))
			rc = get_strlist(&pr->tag_templates, p, vn,
			                 "export.tag", err);
		else if (!strcmp(k, "add_label"))
			rc = parse_labels(pr->add_labels, p, vn, err);
		else if (!strcmp(k, "images"))
			rc = get_strlist(&pr->images, p, vn, "export.images",
			                 err);
		else if (!strcmp(k, "insecure_registry"))
			rc = get_bool(&pr->insecure_registry, p, vn,
			              "export.insecure_registry", err);
		else if (!strcmp(k, "skip_tls_verify"))
			rc = get_bool(&pr->skip_tls_verify, p, vn,
			              "export.skip_tls_verify", err);
		else if (!strcmp(k, "max_file_size"))
			rc = get_size(&pr->max_file_size, p, vn,
			              "export.max_file_size", err);
		else if (!strcmp(k, "max_context_size"))
			rc = get_size(&pr->max_context_size, p, vn,
			              "export.max_context_size", err);
		else if (!strcmp(k, "build_timeout"))
			rc = get_timeout(&pr->build_timeout, p, vn, err);
		else if (!strcmp(k, "parallel_tasks_limit"))
			rc =
			    get_parallel(&pr->parallel_tasks_limit, p, vn, err);
		else {
			char what[200];
			snprintf(what, sizeof(what),
			         "unknown key \"%.64s\" in export", k);
			return fail(p, kn, err, what);
		}
		if (rc < 0)
			return rc;
	}
	if (!pr->repo)
		return fail(p, node, err, "export.repo is required");
	if (pr->tag_templates.count == 0)
		return fail(p, node, err,
		            "export.tag needs at least one template");
	return 0;
}

/* stapel_mounts: the operator's allowance of Stapel's build_dir and
 * fromPath mounts (stapel.h, te_stapel_policy).  A commit's own
 * werf-giterminism.yaml cannot mount the machine's files: both must allow
 * a mount.  Absent: neither is allowed. */
static int parse_stapel_mounts(te_project *pr, const te_project_yaml *p,
                               const yaml_node_t *node, te_error *err)
{
	yaml_node_pair_t *pair;
	size_t i;
	int rc;

	if (node->type != YAML_MAPPING_NODE)
		return fail(p, node, err,
		            "stapel_mounts must be a mapping {build_dir: "
		            "bool, from_paths: [globs]}");
	for (pair = node->data.mapping.pairs.start;
	     pair < node->data.mapping.pairs.top; pair++) {
		yaml_node_t *kn = node_at(p, pair->key);
		yaml_node_t *vn = node_at(p, pair->value);
		const char *k = scalar(kn);

		if (k && !strcmp(k, "build_dir")) {
			rc = get_bool(&pr->stapel_policy.build_dir, p, vn,
			              "stapel_mounts.build_dir", err);
		} else if (k && !strcmp(k, "from_paths")) {
			rc = get_strlist(&pr->stapel_from_paths, p, vn,
			                 "stapel_mounts.from_paths", err);
			/* matched against a real path: absolute only */
			for (i = 0; rc == 0 && i < pr->stapel_from_paths.count;
			     i++)
				if (pr->stapel_from_paths.items[i][0] != '/')
					rc =
					    fail(p, vn, err,
					         "stapel_mounts.from_paths "
					         "must be absolute path globs");
		} else {
			char what[200];
			snprintf(what, sizeof(what),
			         "unknown key \"%.64s\" in stapel_mounts",
			         k ? k : "");
			rc = fail(p, kn, err, what);
		}
		if (rc < 0)
			return rc;
	}
	return 0;
}

/* The status section's keys; the forge's defaults and the token come in
 * status_finish, once the whole project (its forge) is known. */
static int parse_status(te_project *pr, char **token_file,
                        const te_project_yaml *p, const yaml_node_t *node,
                        te_error *err)
{
	te_project_status *st = &pr->status;
	yaml_node_pair_t *pair;
	int rc;

	if (node->type != YAML_MAPPING_NODE)
		return fail(p, node, err, "status must be a mapping");
	st->enabled = true;
	for (pair = node->data.mapping.pairs.start;
	     pair < node->data.mapping.pairs.top; pair++) {
		yaml_node_t *kn = node_at(p, pair->key);
		yaml_node_t *vn = node_at(p, pair->value);
		const char *k = scalar(kn);

		if (!k)
			return fail(p, kn, err, "keys must be strings");
		if (!strcmp(k, "token_file"))
			rc = get_path(token_file, p, vn, "status.token_file",
			              err);
		else if (!strcmp(k, "api_url"))
			rc =
			    get_url(&st->api_url, p, vn, "status.api_url", err);
		else if (!strcmp(k, "context"))
			rc =
			    get_str(&st->context, p, vn, "status.context", err);
		else {
			char what[200];
			snprintf(what, sizeof(what),
			         "unknown key \"%.64s\" in status", k);
			return fail(p, kn, err, what);
		}
		if (rc < 0)
			return rc;
	}
	return 0;
}

/* GitHub's API has one address; GitLab's and Gitea's are per instance. */
static int status_finish(te_project *pr, const char *token_file,
                         const te_project_yaml *p, const yaml_node_t *node,
                         te_error *err)
{
	te_project_status *st = &pr->status;

	if (!token_file)
		return fail(p, node, err, "status needs a token_file");
	if (!st->api_url && pr->forge != TE_FORGE_GITHUB)
		return fail(p, node, err,
		            "status.api_url is required for gitlab and gitea");
	if (!st->api_url)
		st->api_url = te_strdup("https://api.github.com", err);
	if (!st->context)
		st->context = te_strdup("tagexport/export", err);
	if (!st->api_url || !st->context)
		return TE_ENOMEM;
	return secret_at(&st->token, &st->token_len, p, node, token_file, NULL,
	                 err);
}

static int parse_project(te_project *pr, const te_project_yaml *p,
                         const yaml_node_t *node, te_error *err)
{
	yaml_node_pair_t *pair;
	const yaml_node_t *secret_node = NULL, *export_node = NULL;
	const yaml_node_t *status_node = NULL;
	char *secret_file = NULL, *secret_env = NULL, *forge = NULL;
	char *status_token_file = NULL;
	int rc = 0;

	pr->line = line_of(node);
	pr->allow_chroot = -1;
	if ((rc = te_labels_new(&pr->add_labels, err)) < 0)
		return rc;
	if (node->type != YAML_MAPPING_NODE)
		return fail(p, node, err, "a project must be a mapping");
	for (pair = node->data.mapping.pairs.start;
	     pair < node->data.mapping.pairs.top; pair++) {
		yaml_node_t *kn = node_at(p, pair->key);
		yaml_node_t *vn = node_at(p, pair->value);
		const char *k = scalar(kn);

		if (!k) {
			rc = fail(p, kn, err, "keys must be strings");
			goto done;
		}
		if (!strcmp(k, "name")) {
			rc = get_str(&pr->name, p, vn, "name", err);
			if (rc == 0 && !te_project_name_valid(pr->name))
				rc = fail(p, vn, err,
				          "project name must match "
				          "[a-z0-9_-]{1,64}");
		} else if (!strcmp(k, "forge")) {
			rc = get_str(&forge, p, vn, "forge", err);
			if (rc < 0)
				goto done;
			if (!strcmp(forge, "github"))
				pr->forge = TE_FORGE_GITHUB;
			else if (!strcmp(forge, "gitlab"))
				pr->forge = TE_FORGE_GITLAB;
			else if (!strcmp(forge, "gitea") ||
			         !strcmp(forge, "forgejo"))
				pr->forge = TE_FORGE_GITEA;
			else
				rc = fail(p, vn, err,
				          "forge must be github, gitlab or "
				          "gitea");
		} else if (!strcmp(k, "repository")) {
			rc = get_str(&pr->repository, p, vn, "repository", err);
		} else if (!strcmp(k, "secret_file")) {
			secret_node = vn;
			rc = get_path(&secret_file, p, vn, "secret_file", err);
		} else if (!strcmp(k, "secret_env")) {
			secret_node = vn;
			rc = get_str(&secret_env, p, vn, "secret_env", err);
		} else if (!strcmp(k, "git_url")) {
			rc = get_str(&pr->git_url, p, vn, "git_url", err);
		} else if (!strcmp(k, "git_token_file")) {
			rc = get_path(&pr->git_token_file, p, vn,
			              "git_token_file", err);
		} else if (!strcmp(k, "git_ssh_key_file")) {
			rc = get_path(&pr->git_ssh_key_file, p, vn,
			              "git_ssh_key_file", err);
		} else if (!strcmp(k, "git_known_hosts_file")) {
			rc = get_path(&pr->git_known_hosts_file, p, vn,
			              "git_known_hosts_file", err);
		} else if (!strcmp(k, "git_username")) {
			rc = get_str(&pr->git_username, p, vn, "git_username",
			             err);
		} else if (!strcmp(k, "docker_config")) {
			rc = get_path(&pr->docker_config, p, vn,
			              "docker_config", err);
		} else if (!strcmp(k, "tags")) {
			rc = get_strlist(&pr->tags, p, vn, "tags", err);
		} else if (!strcmp(k, "allow_chroot_isolation")) {
			bool b = false;

			rc = get_bool(&b, p, vn, "allow_chroot_isolation", err);
			pr->allow_chroot = b;
		} else if (!strcmp(k, "env")) {
			rc = get_env_map(&pr->env, p, vn, err);
		} else if (!strcmp(k, "werf_env")) {
			rc = get_str(&pr->werf_env, p, vn, "werf_env", err);
		} else if (!strcmp(k, "ssh_key_files")) {
			rc = get_ssh_keys(&pr->ssh_keys, p, vn, err);
		} else if (!strcmp(k, "secrets")) {
			rc = parse_build_secrets(pr, p, vn, err);
		} else if (!strcmp(k, "stapel_mounts")) {
			rc = parse_stapel_mounts(pr, p, vn, err);
		} else if (!strcmp(k, "stapel_git_urls")) {
			/* the remote git mappings a commit may make this
			 * machine fetch (stapel.h, te_stapel_policy) */
			rc = get_strlist(&pr->stapel_git_urls, p, vn,
			                 "stapel_git_urls", err);
		} else if (!strcmp(k, "loose_giterminism")) {
			rc = get_bool(&pr->loose_giterminism, p, vn,
			              "loose_giterminism", err);
		} else if (!strcmp(k, "poll_interval")) {
			unsigned long v = 0;
			rc =
			    get_uint(&v, p, vn, "poll_interval", 0, 86400, err);
			pr->poll_interval = (unsigned)v;
		} else if (!strcmp(k, "export")) {
			export_node = vn;
			rc = parse_export(pr, p, vn, err);
		} else if (!strcmp(k, "status")) {
			status_node = vn;
			rc = parse_status(pr, &status_token_file, p, vn, err);
		} else {
			char what[200];
			snprintf(what, sizeof(what),
			         "unknown key \"%.64s\" in project", k);
			rc = fail(p, kn, err, what);
		}
		if (rc < 0)
			goto done;
	}
	if (!pr->name) {
		rc = fail(p, node, err, "project needs a name");
		goto done;
	}
	if (!forge) {
		rc = fail(p, node, err, "project needs a forge");
		goto done;
	}
	if (!pr->repository) {
		rc = fail(p, node, err, "project needs a repository");
		goto done;
	}
	if (!pr->git_url) {
		rc = fail(p, node, err, "project needs a git_url");
		goto done;
	}
	if (!export_node) {
		rc = fail(p, node, err, "project needs an export section");
		goto done;
	}
	if (!!secret_file == !!secret_env) {
		rc = fail(p, secret_node ? secret_node : node, err,
		          "project needs exactly one of secret_file and "
		          "secret_env");
		goto done;
	}
	rc = secret_at(&pr->secret, &pr->secret_len, p, secret_node,
	               secret_file, secret_env, err);
	if (rc == 0 && status_node)
		rc = status_finish(pr, status_token_file, p, status_node, err);
	/* projects never move once parsed: the payload stays valid */
	pr->render.env = pr->werf_env;
	pr->render.loose_giterminism = pr->loose_giterminism;
	pr->render.lookup_env = project_env_lookup;
	pr->render.lookup_payload = pr;
	pr->stapel_policy.from_paths =
	    (const char *const *)pr->stapel_from_paths.items;
	pr->stapel_policy.nfrom_paths = pr->stapel_from_paths.count;
	pr->stapel_policy.git_urls =
	    (const char *const *)pr->stapel_git_urls.items;
	pr->stapel_policy.ngit_urls = pr->stapel_git_urls.count;
	pr->stapel_policy.project = pr->name;
done:
	free(status_token_file);
	free(secret_file);
	free(secret_env);
	free(forge);
	return rc;
}
static void project_dispose(te_project *pr)
{
	size_t i;

	for (i = 0; i < pr->env.count; i++)
		explicit_bzero(pr->env.items[i], strlen(pr->env.items[i]));
	te_strvec_dispose(&pr->env);
	for (i = 0; i < pr->nbuild_secrets; i++) {
		free(pr->build_secrets[i].id);
		free(pr->build_secrets[i].env);
		free(pr->build_secrets[i].file);
	}
	free(pr->build_secrets);
	te_strvec_dispose(&pr->ssh_keys);
	te_strvec_dispose(&pr->stapel_from_paths);
	te_strvec_dispose(&pr->stapel_git_urls);
	free(pr->werf_env);
	free(pr->name);
	free(pr->repository);
	if (pr->secret) {
		explicit_bzero(pr->secret, pr->secret_len);
		free(pr->secret);
	}
	free(pr->git_url);
	free(pr->git_token_file);
	free(pr->git_ssh_key_file);
	free(pr->git_known_hosts_file);
	free(pr->git_username);
	free(pr->docker_config);
	te_strvec_dispose(&pr->tags);
	free(pr->repo);
	te_strvec_dispose(&pr->tag_templates);
	te_labels_free(pr->add_labels);
	te_strvec_dispose(&pr->images);
	if (pr->status.token) {
		explicit_bzero(pr->status.token, pr->status.token_len);
		free(pr->status.token);
	}
	free(pr->status.api_url);
	free(pr->status.context);
}
static int parse_projects(te_project_file *f, const te_project_yaml *p,
                          const yaml_node_t *node, te_error *err)
{
	yaml_node_item_t *it;
	size_t n, i, j;
	int rc;

	if (node->type != YAML_SEQUENCE_NODE)
		return fail(p, node, err, "projects must be a list");
	n = (size_t)(node->data.sequence.items.top -
	             node->data.sequence.items.start);
	if (n > TE_PROJECT_MAX) {
		char what[64];
		snprintf(what, sizeof(what), "more than %d projects",
		         TE_PROJECT_MAX);
		return fail(p, node, err, what);
	}
	f->projects = calloc(n ? n : 1, sizeof(*f->projects));
	if (!f->projects)
		return te_error_set(err, TE_ENOMEM, "out of memory");
	for (it = node->data.sequence.items.start, i = 0;
	     it < node->data.sequence.items.top; it++, i++) {
		yaml_node_t *pn = node_at(p, *it);
		f->nprojects = i + 1;
		if ((rc = parse_project(&f->projects[i], p, pn, err)) < 0)
			return rc;
		for (j = 0; j < i; j++)
			if (!strcmp(f->projects[j].name, f->projects[i].name))
				return fail(p, pn, err,
				            "duplicate project name");
	}
	return 0;
}

/* One top-level key: ours, the caller's, or unknown. */
static int parse_key(te_project_file *f, const te_project_yaml *p,
                     const yaml_node_t *kn, const yaml_node_t *vn,
                     te_project_key_fn key_fn, void *payload, te_error *err)
{
	const char *k = scalar(kn);
	char what[200];
	int rc;

	if (!k)
		return fail(p, kn, err, "keys must be strings");
	if (!strcmp(k, "state_dir"))
		return get_path(&f->state_dir, p, vn, "state_dir", err);
	if (!strcmp(k, "allow_chroot_isolation"))
		return get_bool(&f->allow_chroot, p, vn,
		                "allow_chroot_isolation", err);
	if (!strcmp(k, "projects"))
		return parse_projects(f, p, vn, err);
	if (!key_fn)
		return 0;
	rc = key_fn(payload, p, k, vn, err);
	if (rc != TE_ENOTFOUND)
		return rc;
	snprintf(what, sizeof(what), "unknown key \"%.64s\"", k);
	return fail(p, kn, err, what);
}

static int parse_root(te_project_file *f, const te_project_yaml *p,
                      const yaml_node_t *root, te_project_key_fn key_fn,
                      void *payload, te_error *err)
{
	yaml_node_pair_t *pair;
	size_t i;
	int rc;

	if (!root || root->type != YAML_MAPPING_NODE)
		return fail(p, root, err,
		            "the configuration must be a mapping");
	for (pair = root->data.mapping.pairs.start;
	     pair < root->data.mapping.pairs.top; pair++)
		if ((rc = parse_key(f, p, node_at(p, pair->key),
		                    node_at(p, pair->value), key_fn, payload,
		                    err)) < 0)
			return rc;
	if (!f->state_dir)
		return fail(p, root, err, "state_dir is required");
	for (i = 0; i < f->nprojects; i++)
		if (f->projects[i].allow_chroot < 0)
			f->projects[i].allow_chroot = f->allow_chroot;
	return key_fn ? key_fn(payload, p, NULL, root, err) : 0;
}

void te_project_file_free(te_project_file *f)
{
	size_t i;

	if (!f)
		return;
	for (i = 0; i < f->nprojects; i++)
		project_dispose(&f->projects[i]);
	free(f->projects);
	free(f->path);
	free(f->state_dir);
	free(f);
}

/* The file's directory, for relative paths; NULL for a bare name. */
static int file_dir(char **out, const char *filename, te_error *err)
{
	const char *slash = strrchr(filename, '/');

	*out = NULL;
	if (!slash)
		return 0;
	*out = slash == filename
	           ? strdup("/")
	           : strndup(filename, (size_t)(slash - filename));
	return *out ? 0 : te_error_set(err, TE_ENOMEM, "out of memory");
}

int te_project_file_parse(te_project_file **out, const char *data, size_t len,
                          const char *filename, te_project_key_fn key_fn,
                          void *payload, te_error *err)
{
	yaml_parser_t parser;
	yaml_document_t doc;
	te_project_yaml p = {&doc, filename, NULL};
	te_project_file *f = NULL;
	bool have_doc = false;
	int rc = 0;

	*out = NULL;
	if (len > TE_PROJECT_FILE_MAX_SIZE)
		return te_error_set(err, TE_EINVALID,
		                    "%s is longer than %d bytes", filename,
		                    TE_PROJECT_FILE_MAX_SIZE);
	/* Depth and node count bounded, and every mapping's keys unique,
	 * before libyaml builds a tree: libyaml keeps both of two equal
	 * keys, and the later one would silently override the first (a
	 * second "projects:" once leaked the first list). */
	rc = te_config_yaml_scan(data, len, filename, 1, true, err);
	if (rc < 0)
		return rc;
	if (!yaml_parser_initialize(&parser))
		return te_error_set(err, TE_ENOMEM, "out of memory");
	yaml_parser_set_input_string(&parser, (const unsigned char *)data, len);
	if (!yaml_parser_load(&parser, &doc)) {
		rc = te_error_set(err, TE_EINVALID, "%s:%d: %s%s%s", filename,
		                  (int)parser.problem_mark.line + 1,
		                  parser.problem ? parser.problem : "bad YAML",
		                  parser.context ? " " : "",
		                  parser.context ? parser.context : "");
		goto done;
	}
	have_doc = true;
	f = calloc(1, sizeof(*f));
	if (!f) {
		rc = te_error_set(err, TE_ENOMEM, "out of memory");
		goto done;
	}
	if (!(f->path = te_strdup(filename, err))) {
		rc = TE_ENOMEM;
		goto done;
	}
	if ((rc = file_dir(&p.dir, filename, err)) < 0)
		goto done;
	rc = parse_root(f, &p, yaml_document_get_root_node(&doc), key_fn,
	                payload, err);
done:
	if (rc < 0) {
		te_project_file_free(f);
		f = NULL;
	}
	*out = f;
	free(p.dir);
	if (have_doc)
		yaml_document_delete(&doc);
	yaml_parser_delete(&parser);
	return rc;
}

int te_project_file_load(te_project_file **out, const char *path,
                         te_project_key_fn key_fn, void *payload, te_error *err)
{
	te_buf data = TE_BUF_INIT(TE_PROJECT_FILE_MAX_SIZE);
	int fd, rc = 0;

	*out = NULL;
	fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return te_error_set_errno(err, TE_EIO, errno, "cannot open %s",
		                          path);
	if (te_fs_read_all(&data, fd, NULL) < 0) {
		rc = errno == EFBIG
		         ? te_error_set(err, TE_EINVALID,
		                        "%s is longer than %d bytes", path,
		                        TE_PROJECT_FILE_MAX_SIZE)
		         : te_error_set_errno(err, TE_EIO, errno,
		                              "cannot read %s", path);
		goto done;
	}
	rc = te_project_file_parse(out, data.ptr, data.len, path, key_fn,
	                           payload, err);
done:
	close(fd);
	te_buf_dispose(&data);
	return rc;
}

const te_project *te_project_file_find(const te_project_file *f,
                                       const char *name)
{
	size_t i;

	for (i = 0; i < f->nprojects; i++)
		if (!strcmp(f->projects[i].name, name))
			return &f->projects[i];
	return NULL;
}

/* ---- the YAML readers, for the caller's keys ---------------------------- */

int te_project_yaml_fail(const te_project_yaml *y, const yaml_node_t *node,
                         te_error *err, const char *what)
{
	return fail(y, node, err, what);
}

yaml_node_t *te_project_yaml_node(const te_project_yaml *y, int idx)
{
	return node_at(y, idx);
}

const char *te_project_yaml_scalar(const yaml_node_t *node)
{
	return scalar(node);
}

int te_project_yaml_str(char **out, const te_project_yaml *y,
                        const yaml_node_t *node, const char *key, te_error *err)
{
	return get_str(out, y, node, key, err);
}

int te_project_yaml_path(char **out, const te_project_yaml *y,
                         const yaml_node_t *node, const char *key,
                         te_error *err)
{
	return get_path(out, y, node, key, err);
}

int te_project_yaml_url(char **out, const te_project_yaml *y,
                        const yaml_node_t *node, const char *key, te_error *err)
{
	return get_url(out, y, node, key, err);
}

int te_project_yaml_bool(bool *out, const te_project_yaml *y,
                         const yaml_node_t *node, const char *key,
                         te_error *err)
{
	return get_bool(out, y, node, key, err);
}

int te_project_yaml_uint(unsigned long *out, const te_project_yaml *y,
                         const yaml_node_t *node, const char *key,
                         unsigned long min, unsigned long max, te_error *err)
{
	return get_uint(out, y, node, key, min, max, err);
}

int te_project_yaml_secret(char **out, size_t *len, const te_project_yaml *y,
                           const yaml_node_t *node, const char *file,
                           const char *env, te_error *err)
{
	return secret_at(out, len, y, node, file, env, err);
}

int te_project_build_dir(te_buf *out, const char *state_dir,
                         const te_project *pr, te_error *err)
{
	int rc;

	te_buf_clear(out);
	if (!te_project_name_valid(pr->name))
		return te_error_set(err, TE_EINVALID, "invalid project name");
	rc = te_buf_printf(out, err, "%s/build/projects/%s", state_dir,
	                   pr->name);
	return rc < 0 ? rc : te_fs_mkdirs(out->ptr, err);
}

void te_project_export_opts(te_export_opts *opts, const te_project *pr)
{
	opts->repo = pr->repo;
	opts->tags = (const char *const *)pr->tag_templates.items;
	opts->ntags = pr->tag_templates.count;
	opts->patterns = (const char *const *)pr->images.items;
	opts->npatterns = pr->images.count;
	opts->add_labels = pr->add_labels;
	opts->insecure_registry = pr->insecure_registry;
	opts->skip_tls_verify = pr->skip_tls_verify;
	opts->docker_config = pr->docker_config;
	opts->max_file_size = pr->max_file_size;
	opts->max_context_size = pr->max_context_size;
	opts->build_timeout = pr->build_timeout;
	opts->parallel = pr->parallel_tasks_limit;
	opts->ssh_keys = (const char *const *)pr->ssh_keys.items;
	opts->nssh_keys = pr->ssh_keys.count;
	opts->secret = project_build_secret;
	opts->secret_payload = pr->render.lookup_payload; /* pr itself */
	opts->isolation = pr->allow_chroot > 0 ? TE_BUILD_ISOLATION_CHROOT
	                                       : TE_BUILD_ISOLATION_OCI;
	opts->render = &pr->render;
	opts->stapel_policy = &pr->stapel_policy;
}
