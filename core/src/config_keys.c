/*
 * config_keys.c - the werf.yaml keys of Dockerfile images beyond the build
 * itself: dependencies, imageSpec (also meta build.imageSpec), network,
 * addHost, ssh and secrets
 * (https://werf.io/docs/v2/reference/werf_yaml.html), and the
 * config.secrets rules of werf-giterminism.yaml they are checked against.
 * config.c calls these on each image document (config_int.h).
 */
#include "tagexport/config.h"
#include "config_int.h"

#include <ctype.h>
#include <fnmatch.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <arpa/inet.h>
#include <sys/socket.h>
#include <yaml.h>

static const char *const import_types[] = {"ImageName", "ImageDigest",
                                           "ImageRepo", "ImageTag"};

static int parse_import(struct ctx *c, te_image_import *imp,
                        const yaml_node_t *n)
{
	yaml_node_t *type = te_config__map_get(c, n, "type");
	yaml_node_t *arg = te_config__map_get(c, n, "targetBuildArg");
	size_t i;

	if (te_config__map_get(c, n, "targetEnv"))
		return te_config__fail(
		    c, te_config__map_get(c, n, "targetEnv"), TE_EINVALID,
		    "import targetEnv applies to Stapel images; a "
		    "Dockerfile image takes targetBuildArg");
	if (!type || te_config__is_null(type))
		return te_config__fail(
		    c, n, TE_EINVALID,
		    "import needs a type (ImageName, ImageDigest, "
		    "ImageRepo or ImageTag)");
	for (i = 0; i < 4; i++)
		if (strcmp(te_config__scalar(type), import_types[i]) == 0)
			break;
	if (i == 4)
		return te_config__fail(
		    c, type, TE_EINVALID,
		    "unknown import type \"%s\": use ImageName, "
		    "ImageDigest, ImageRepo or ImageTag",
		    te_config__scalar(type));
	imp->type = (te_import_type)i;
	if (!arg || te_config__is_null(arg) || !*te_config__scalar(arg))
		return te_config__fail(c, n, TE_EINVALID,
		                       "import needs targetBuildArg");
	if (strspn(te_config__scalar(arg),
	           "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrs"
	           "tuvwxyz0123456789_") != strlen(te_config__scalar(arg)))
		return te_config__fail(c, arg, TE_EINVALID,
		                       "invalid targetBuildArg \"%s\"",
		                       te_config__scalar(arg));
	imp->build_arg = te_strdup(te_config__scalar(arg), c->err);
	return imp->build_arg ? 0 : TE_ENOMEM;
}

static int parse_dependency(struct ctx *c, te_image_dependency *d,
                            const yaml_node_t *n)
{
	yaml_node_t *image = te_config__map_get(c, n, "image"), *imports;
	yaml_node_item_t *it;
	int rc;

	d->line = te_config__node_line(c, n);
	if (te_config__map_get(c, n, "before") ||
	    te_config__map_get(c, n, "after"))
		return te_config__fail(
		    c, n, TE_EINVALID,
		    "dependency before/after apply to Stapel images");
	if (!image || te_config__is_null(image) || !*te_config__scalar(image))
		return te_config__fail(c, n, TE_EINVALID,
		                       "dependency needs an image");
	if (!(d->image = te_strdup(te_config__scalar(image), c->err)))
		return TE_ENOMEM;
	imports = te_config__map_get(c, n, "imports");
	if (!imports || imports->type != YAML_SEQUENCE_NODE)
		return 0;
	d->imports = calloc((size_t)(imports->data.sequence.items.top -
	                             imports->data.sequence.items.start) +
	                        1,
	                    sizeof(*d->imports));
	if (!d->imports)
		return te_error_set(c->err, TE_ENOMEM, "out of memory");
	for (it = imports->data.sequence.items.start;
	     it < imports->data.sequence.items.top; it++) {
		rc = parse_import(c, &d->imports[d->nimports++],
		                  te_config__get_node(c, *it));
		if (rc < 0)
			return rc;
	}
	return 0;
}

/* dependencies: validated as a list of mappings (dependency_fields). */
int te_config__parse_dependencies(struct ctx *c, te_image_config *img,
                                  const yaml_node_t *n)
{
	yaml_node_item_t *it;
	int rc;

	if (!n || n->type != YAML_SEQUENCE_NODE)
		return 0;
	img->deps = calloc((size_t)(n->data.sequence.items.top -
	                            n->data.sequence.items.start) +
	                       1,
	                   sizeof(*img->deps));
	if (!img->deps)
		return te_error_set(c->err, TE_ENOMEM, "out of memory");
	for (it = n->data.sequence.items.start; it < n->data.sequence.items.top;
	     it++) {
		rc = parse_dependency(c, &img->deps[img->ndeps++],
		                      te_config__get_node(c, *it));
		if (rc < 0)
			return rc;
	}
	return 0;
}

/* ---- imageSpec, network, addHost -------------------------------------- */

static bool flag(const yaml_node_t *n)
{
	return n && te_config__bool_value(n) == 1;
}

/* A scalar or a list of scalars (validated already) appended to out. */
static int str_list(struct ctx *c, te_strvec *out, const yaml_node_t *n)
{
	yaml_node_item_t *it;
	int rc;

	if (!n || te_config__is_null(n))
		return 0;
	if (n->type == YAML_SCALAR_NODE)
		return te_strvec_push(out, te_config__scalar(n), c->err);
	for (it = n->data.sequence.items.start; it < n->data.sequence.items.top;
	     it++) {
		yaml_node_t *v = te_config__get_node(c, *it);

		if ((rc = te_strvec_push(
		         out, te_config__is_null(v) ? "" : te_config__scalar(v),
		         c->err)) < 0)
			return rc;
	}
	return 0;
}

/* A mapping of scalars as key, value pairs; a null value is "". */
static int str_pairs(struct ctx *c, te_strvec *out, const yaml_node_t *n,
                     const char *field)
{
	yaml_node_pair_t *p;
	int rc;

	if (!n || te_config__is_null(n))
		return 0;
	for (p = n->data.mapping.pairs.start; p < n->data.mapping.pairs.top;
	     p++) {
		yaml_node_t *k = te_config__get_node(c, p->key);
		yaml_node_t *v = te_config__get_node(c, p->value);

		if (!*te_config__scalar(k) ||
		    (!strcmp(field, "env") &&
		     strpbrk(te_config__scalar(k), "= \t\r\n")))
			return te_config__fail(c, k, TE_EINVALID,
			                       "invalid %s name \"%s\"", field,
			                       te_config__scalar(k));
		if ((rc = te_strvec_push(out, te_config__scalar(k), c->err)) <
		        0 ||
		    (rc = te_strvec_push(
		         out, te_config__is_null(v) ? "" : te_config__scalar(v),
		         c->err)) < 0)
			return rc;
	}
	return 0;
}

/* removeLabels / removeEnv: each "/RE/" must compile. */
static int patterns(struct ctx *c, te_strvec *out, const yaml_node_t *n,
                    const char *field)
{
	yaml_node_item_t *it;
	te_error perr = TE_ERROR_INIT;
	int rc;

	if ((rc = str_list(c, out, n)) < 0 || !n || te_config__is_null(n))
		return rc;
	for (it = n->data.sequence.items.start; it < n->data.sequence.items.top;
	     it++) {
		yaml_node_t *v = te_config__get_node(c, *it);

		if (te_imagespec_check_pattern(te_config__scalar(v), &perr) < 0)
			return te_config__fail(c, v, perr.code, "%s: %s", field,
			                       perr.msg);
	}
	return 0;
}

static int seconds(struct ctx *c, long long *out, const yaml_node_t *n,
                   const char *field)
{
	te_error perr = TE_ERROR_INIT;

	*out = 0;
	if (!n || te_config__is_null(n))
		return 0;
	if (te_imagespec_seconds_parse(out, te_config__scalar(n), &perr) < 0)
		return te_config__fail(c, n, TE_EINVALID, "healthcheck %s: %s",
		                       field, perr.msg);
	return 0;
}

static int parse_healthcheck(struct ctx *c, te_imagespec *s,
                             const yaml_node_t *n)
{
	const yaml_node_t *test;
	int rc;

	if (!n || te_config__is_null(n))
		return 0;
	s->has_healthcheck = true;
	test = te_config__map_get(c, n, "test");
	if (!test || te_config__is_null(test) ||
	    test->data.sequence.items.start == test->data.sequence.items.top)
		return te_config__fail(
		    c, n, TE_EINVALID,
		    "healthcheck needs a non-empty \"test\" list");
	if ((rc = str_list(c, &s->hc_test, test)) < 0 ||
	    (rc = seconds(c, &s->hc_interval,
	                  te_config__map_get(c, n, "interval"), "interval")) <
	        0 ||
	    (rc = seconds(c, &s->hc_timeout,
	                  te_config__map_get(c, n, "timeout"), "timeout")) <
	        0 ||
	    (rc = seconds(c, &s->hc_start_period,
	                  te_config__map_get(c, n, "startPeriod"),
	                  "startPeriod")) < 0)
		return rc;
	test = te_config__map_get(c, n, "retries");
	if (test && !te_config__is_null(test))
		s->hc_retries = strtoll(te_config__scalar(test), NULL, 10);
	if (s->hc_retries < 0 || s->hc_retries > 1000000)
		return te_config__fail(
		    c, test, TE_EINVALID,
		    "healthcheck retries must be 0 to 1000000");
	return 0;
}

static int opt_list(struct ctx *c, te_strvec *out, bool *has,
                    const yaml_node_t *n)
{
	if (!n || te_config__is_null(n))
		return 0;
	*has = true;
	return str_list(c, out, n);
}

static int parse_spec_config(struct ctx *c, te_imagespec *s,
                             const yaml_node_t *n)
{
	yaml_node_t *v;
	int rc;

	v = te_config__map_get(c, n, "clearWerfLabels");
	if (v)
		return te_config__fail(
		    c, v, TE_EINVALID,
		    "clearWerfLabels is deprecated in werf and not "
		    "supported: werf's essential labels stay in the "
		    "stages image and export strips every werf label; "
		    "remove the key");
	s->keep_essential_werf_labels =
	    flag(te_config__map_get(c, n, "keepEssentialWerfLabels"));
	s->clear_cmd = flag(te_config__map_get(c, n, "clearCmd"));
	s->clear_entrypoint = flag(te_config__map_get(c, n, "clearEntrypoint"));
	s->clear_user = flag(te_config__map_get(c, n, "clearUser"));
	s->clear_working_dir =
	    flag(te_config__map_get(c, n, "clearWorkingDir"));
	if ((rc = str_pairs(c, &s->labels, te_config__map_get(c, n, "labels"),
	                    "label")) < 0 ||
	    (rc = patterns(c, &s->remove_labels,
	                   te_config__map_get(c, n, "removeLabels"),
	                   "removeLabels")) < 0 ||
	    (rc = str_pairs(c, &s->env, te_config__map_get(c, n, "env"),
	                    "env")) < 0 ||
	    (rc = patterns(c, &s->remove_env,
	                   te_config__map_get(c, n, "removeEnv"),
	                   "removeEnv")) < 0 ||
	    (rc = str_list(c, &s->volumes,
	                   te_config__map_get(c, n, "volumes"))) < 0 ||
	    (rc = str_list(c, &s->remove_volumes,
	                   te_config__map_get(c, n, "removeVolumes"))) < 0 ||
	    (rc = opt_list(c, &s->expose, &s->has_expose,
	                   te_config__map_get(c, n, "expose"))) < 0 ||
	    (rc = opt_list(c, &s->cmd, &s->has_cmd,
	                   te_config__map_get(c, n, "cmd"))) < 0 ||
	    (rc = opt_list(c, &s->entrypoint, &s->has_entrypoint,
	                   te_config__map_get(c, n, "entrypoint"))) < 0 ||
	    (rc = te_config__opt_string(
	         c, &s->user, te_config__map_get(c, n, "user"), NULL)) < 0 ||
	    (rc = te_config__opt_string(c, &s->working_dir,
	                                te_config__map_get(c, n, "workingDir"),
	                                NULL)) < 0 ||
	    (rc = te_config__opt_string(c, &s->stop_signal,
	                                te_config__map_get(c, n, "stopSignal"),
	                                NULL)) < 0)
		return rc;
	return parse_healthcheck(c, s, te_config__map_get(c, n, "healthcheck"));
}

/* An imageSpec mapping (validated against its field table already). */
int te_config__parse_imagespec(struct ctx *c, te_imagespec *s,
                               const yaml_node_t *n)
{
	yaml_node_t *v;
	int rc;

	if (!n || te_config__is_null(n))
		return 0;
	if ((rc = te_config__opt_string(
	         c, &s->author, te_config__map_get(c, n, "author"), NULL)) < 0)
		return rc;
	s->clear_history = flag(te_config__map_get(c, n, "clearHistory"));
	v = te_config__map_get(c, n, "config");
	if (!v || te_config__is_null(v))
		return 0;
	return parse_spec_config(c, s, v);
}

/* werf's values for docker build --network: "default" (our private
 * network), "none".  "host" would give every RUN the machine's own
 * network, loopback services included: refused like any escape from the
 * build's isolation. */
int te_config__parse_network(struct ctx *c, te_image_config *img,
                             const yaml_node_t *n)
{
	const char *v;

	if (!n || te_config__is_null(n) || !*te_config__scalar(n))
		return 0;
	v = te_config__scalar(n);
	if (!strcmp(v, "host"))
		return te_config__fail(
		    c, n, TE_EINVALID,
		    "network \"host\" is refused: RUN would share "
		    "this machine's network and reach its loopback "
		    "services; use \"default\" or \"none\"");
	if (strcmp(v, "default") && strcmp(v, "none"))
		return te_config__fail(
		    c, n, TE_EINVALID,
		    "invalid network \"%s\": use \"default\" or "
		    "\"none\"",
		    v);
	img->network = te_strdup(v, c->err);
	return img->network ? 0 : TE_ENOMEM;
}

/* "host:ip" (docker build --add-host): a DNS name and an IP address. */
static bool valid_add_host(const char *v)
{
	const char *colon = strchr(v, ':');
	unsigned char addr[16];
	char ip[64];
	size_t i, n;

	if (!colon || colon == v || colon - v > 253)
		return false;
	for (i = 0; v + i < colon; i++)
		if (!isalnum((unsigned char)v[i]) && !strchr(".-_", v[i]))
			return false;
	n = strlen(colon + 1);
	if (!n || n >= sizeof(ip))
		return false;
	memcpy(ip, colon + 1, n + 1);
	return inet_pton(AF_INET, ip, addr) == 1 ||
	       inet_pton(AF_INET6, ip, addr) == 1;
}

int te_config__parse_add_hosts(struct ctx *c, te_image_config *img,
                               const yaml_node_t *n)
{
	size_t i;
	int rc;

	if ((rc = str_list(c, &img->add_hosts, n)) < 0)
		return rc;
	for (i = 0; i < img->add_hosts.count; i++)
		if (!valid_add_host(img->add_hosts.items[i]))
			return te_config__fail(
			    c, n, TE_EINVALID,
			    "invalid addHost \"%s\": use host:ip",
			    img->add_hosts.items[i]);
	return 0;
}

/* ssh: werf's value is docker build --ssh's, "default" or an id; the
 * agent or keys behind it are the machine's (the front end's), never a
 * socket or key path written in the commit. */
int te_config__parse_ssh(struct ctx *c, te_image_config *img,
                         const yaml_node_t *n)
{
	const char *v;
	size_t i;

	if (!n || te_config__is_null(n) || !*te_config__scalar(n))
		return 0;
	v = te_config__scalar(n);
	if (strchr(v, '='))
		return te_config__fail(
		    c, n, TE_EINVALID,
		    "ssh \"%.100s\": a socket or key path in werf.yaml "
		    "is refused; write \"ssh: default\" and give the "
		    "agent or keys to tagexport (SSH_AUTH_SOCK, "
		    "--ssh-key)",
		    v);
	for (i = 0; v[i]; i++)
		if (!isalnum((unsigned char)v[i]) && !strchr("_.-", v[i]))
			return te_config__fail(c, n, TE_EINVALID,
			                       "invalid ssh id \"%.100s\"", v);
	img->ssh_line = te_config__node_line(c, n);
	img->ssh = te_strdup(v, c->err);
	return img->ssh ? 0 : TE_ENOMEM;
}

/* ---- secrets ------------------------------------------------------------ */

/* buildah's --secret id: one word a RUN --mount can name. */
static bool valid_secret_id(const char *id)
{
	size_t n = strlen(id), i;

	if (n == 0 || n > 128)
		return false;
	for (i = 0; i < n; i++)
		if (!isalnum((unsigned char)id[i]) && !strchr("_.-", id[i]))
			return false;
	return true;
}

static bool valid_env_name(const char *s)
{
	if (!*s || isdigit((unsigned char)*s))
		return false;
	for (; *s; s++)
		if (!isalnum((unsigned char)*s) && *s != '_')
			return false;
	return true;
}

/* One secrets entry: exactly one of env, src, value; an id, given or
 * werf's default (the env name, the src file's base name). */
static int parse_secret(struct ctx *c, te_secret_config *out,
                        const yaml_node_t *n)
{
	static const char *const keys[] = {"env", "src", "value"};
	const yaml_node_t *src = NULL, *idn = te_config__map_get(c, n, "id");
	const char *id = NULL, *ref;
	size_t i, found = 0;

	out->line = te_config__node_line(c, n);
	for (i = 0; i < 3; i++) {
		const yaml_node_t *v = te_config__map_get(c, n, keys[i]);

		if (!v || te_config__is_null(v))
			continue;
		found++;
		src = v;
		out->kind = (te_secret_kind)i;
	}
	if (found != 1)
		return te_config__fail(
		    c, n, TE_EINVALID,
		    "a secret needs exactly one of env, src and value");
	ref = te_config__scalar(src);
	if (out->kind == TE_SECRET_ENV && !valid_env_name(ref))
		return te_config__fail(
		    c, src, TE_EINVALID,
		    "secret env \"%s\" is not a variable name", ref);
	if (out->kind == TE_SECRET_SRC && !*ref)
		return te_config__fail(c, src, TE_EINVALID,
		                       "secret src is empty");
	if (idn && !te_config__is_null(idn))
		id = te_config__scalar(idn);
	else if (out->kind == TE_SECRET_ENV)
		id = ref;
	else if (out->kind == TE_SECRET_SRC)
		id = strrchr(ref, '/') ? strrchr(ref, '/') + 1 : ref;
	else
		return te_config__fail(c, n, TE_EINVALID,
		                       "a secret value needs an id");
	if (!valid_secret_id(id))
		return te_config__fail(
		    c, idn ? idn : src, TE_EINVALID,
		    "invalid secret id \"%.128s\": use letters, digits, "
		    "'_', '.' and '-'",
		    id);
	out->id = te_strdup(id, c->err);
	out->ref = out->id ? te_strdup(ref, c->err) : NULL;
	return out->ref ? 0 : TE_ENOMEM;
}

int te_config__parse_secrets(struct ctx *c, te_image_config *img,
                             const yaml_node_t *n)
{
	yaml_node_item_t *it;
	size_t count, i, j;
	int rc;

	if (!n || te_config__is_null(n))
		return 0;
	count =
	    (size_t)(n->data.sequence.items.top - n->data.sequence.items.start);
	if (count > TE_CONFIG_MAX_SECRETS)
		return te_config__fail(c, n, TE_EINVALID,
		                       "more than %d secrets",
		                       TE_CONFIG_MAX_SECRETS);
	img->secrets = calloc(count + 1, sizeof(*img->secrets));
	if (!img->secrets)
		return te_error_set(c->err, TE_ENOMEM, "out of memory");
	for (it = n->data.sequence.items.start, i = 0;
	     it < n->data.sequence.items.top; it++, i++) {
		img->nsecrets++;
		rc = parse_secret(c, &img->secrets[i],
		                  te_config__get_node(c, *it));
		if (rc < 0)
			return rc;
		for (j = 0; j < i; j++)
			if (!strcmp(img->secrets[j].id, img->secrets[i].id))
				return te_config__fail(
				    c, te_config__get_node(c, *it), TE_EINVALID,
				    "duplicate secret id \"%s\"",
				    img->secrets[i].id);
	}
	return 0;
}

/* ---- werf-giterminism.yaml: config.secrets ------------------------------ */

#define GITERMINISM_NAME "werf-giterminism.yaml"

static int allow_list(te_strvec *out, yaml_document_t *doc,
                      const yaml_node_t *secrets, const char *key,
                      te_error *err)
{
	struct ctx c = {GITERMINISM_NAME, doc, 1, 0, err};
	const yaml_node_t *n = te_config__map_get(&c, secrets, key);
	yaml_node_item_t *it;
	int rc;

	if (!n || te_config__is_null(n))
		return 0;
	if (n->type != YAML_SEQUENCE_NODE)
		return te_config__fail(
		    &c, n, TE_EINVALID,
		    "config.secrets.%s must be a list of strings", key);
	for (it = n->data.sequence.items.start; it < n->data.sequence.items.top;
	     it++) {
		const yaml_node_t *v = te_config__get_node(&c, *it);

		if (!v || v->type != YAML_SCALAR_NODE)
			return te_config__fail(
			    &c, v ? v : n, TE_EINVALID,
			    "config.secrets.%s must be a list of "
			    "strings",
			    key);
		if ((rc = te_strvec_push(out, te_config__scalar(v), err)) < 0)
			return rc;
	}
	return 0;
}

int te_config_secrets_allowed(te_secrets_allowed *out, const char *data,
                              size_t len, te_error *err)
{
	yaml_document_t doc;
	struct ctx c;
	const yaml_node_t *n;
	int rc;

	if (!data)
		return 0;
	if ((rc = te_config__load_doc(&doc, data, len, GITERMINISM_NAME, err)) <
	    0)
		return rc;
	c.file = GITERMINISM_NAME;
	c.doc = &doc;
	c.line0 = 1;
	c.visits = 0;
	c.err = err;
	n = yaml_document_get_root_node(&doc);
	if (n && n->type == YAML_MAPPING_NODE)
		n = te_config__map_get(&c, n, "config");
	if (n && n->type == YAML_MAPPING_NODE)
		n = te_config__map_get(&c, n, "secrets");
	if (!n || n->type != YAML_MAPPING_NODE)
		goto done;
	if ((rc = allow_list(&out->env_variables, &doc, n, "allowEnvVariables",
	                     err)) == 0 &&
	    (rc = allow_list(&out->files, &doc, n, "allowFiles", err)) == 0)
		rc = allow_list(&out->value_ids, &doc, n, "allowValueIds", err);
done:
	yaml_document_delete(&doc);
	return rc;
}

int te_config_secret_check(const te_secrets_allowed *allowed,
                           const te_secret_config *s, const char *file,
                           te_error *err)
{
	static const char *const lists[] = {"allowEnvVariables", "allowFiles",
	                                    "allowValueIds"};
	static const char *const kinds[] = {"env", "src", "value id"};
	const te_strvec *v = s->kind == TE_SECRET_ENV ? &allowed->env_variables
	                     : s->kind == TE_SECRET_SRC ? &allowed->files
	                                                : &allowed->value_ids;
	const char *name = s->kind == TE_SECRET_VALUE ? s->id : s->ref;
	bool match = false;
	size_t i;
	int rc;

	for (i = 0; i < v->count && !match; i++) {
		if (s->kind == TE_SECRET_SRC)
			match = fnmatch(v->items[i], name, 0) == 0;
		else if (s->kind == TE_SECRET_VALUE)
			match = strcmp(v->items[i], name) == 0;
		else if ((rc = te_imagespec_pattern_match(&match, v->items[i],
		                                          name, err)) < 0)
			return te_error_wrap(
			    err, GITERMINISM_NAME
			    ": config.secrets.allowEnvVariables");
	}
	if (match)
		return 0;
	return te_error_set(
	    err, TE_EINVALID,
	    "%s:%d: secret %s \"%s\" is not allowed by " GITERMINISM_NAME
	    " (config.secrets.%s)",
	    file, s->line, kinds[s->kind], name, lists[s->kind]);
}
