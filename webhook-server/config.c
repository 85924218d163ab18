/*
 * config.c - tagexport-server's YAML configuration (config.h).
 *
 * The projects, state_dir and allow_chroot_isolation are the core's
 * (tagexport/project.h: the standalone hook reads them too); this file
 * reads the server's own top-level keys through the core's YAML readers,
 * so both halves check and report the same way.
 */
#include "config.h"
#include "verify.h"

#include <arpa/inet.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* What the server's keys collect while the file is parsed. */
struct server_keys {
	struct ts_config *cfg;
	const yaml_node_t *token_node, *metrics_node, *queue_node, *dsn_node;
	char *token_file, *token_env, *metrics_file, *dsn_file;
	bool have_lease;
};

static int parse_listen(struct ts_config *cfg, const te_project_yaml *p,
                        const yaml_node_t *node, te_error *err)
{
	const char *s = te_project_yaml_scalar(node), *colon, *hs, *he;
	char host[64], *end;
	unsigned char addr[16];
	unsigned long port;

	if (!s)
		goto bad;
	colon = strrchr(s, ':');
	if (!colon || colon == s)
		goto bad;
	hs = s;
	he = colon;
	if (*s == '[') {
		if (colon[-1] != ']')
			goto bad;
		hs = s + 1;
		he = colon - 1;
	}
	if ((size_t)(he - hs) >= sizeof(host) || he == hs)
		goto bad;
	memcpy(host, hs, (size_t)(he - hs));
	host[he - hs] = '\0';
	if (!strcmp(host, "localhost"))
		strcpy(host, "127.0.0.1");
	if (inet_pton(*s == '[' ? AF_INET6 : AF_INET, host, addr) != 1)
		goto bad;
	errno = 0;
	port = strtoul(colon + 1, &end, 10);
	if (errno || *end || !colon[1] || port > 65535)
		goto bad;
	free(cfg->host);
	cfg->host = te_strdup(host, err);
	if (!cfg->host)
		return TE_ENOMEM;
	cfg->port = (unsigned short)port;
	return 0;
bad:
	return te_project_yaml_fail(
	    p, node, err,
	    "listen must be ADDRESS:PORT with a numeric IPv4 address, "
	    "[IPv6] or localhost");
}

static int parse_log_format(struct ts_config *cfg, const te_project_yaml *p,
                            const yaml_node_t *vn, te_error *err)
{
	const char *s = te_project_yaml_scalar(vn);

	if (s && !strcmp(s, "json"))
		cfg->log_format = TS_LOG_JSON;
	else if (s && !strcmp(s, "text"))
		cfg->log_format = TS_LOG_TEXT;
	else
		return te_project_yaml_fail(p, vn, err,
		                            "log_format must be text or json");
	return 0;
}

/* A bounded integer key into an int, unsigned or size_t field. */
struct uint_key {
	const char *key;
	unsigned long min, max;
	size_t off;
	char kind; /* 'i' int, 'u' unsigned, 'z' size_t */
};

#define UK(k, lo, hi, field, kind)                                             \
	{                                                                      \
		k, lo, hi, offsetof(struct ts_config, field), kind             \
	}
static const struct uint_key uint_keys[] = {
    UK("workers", 0, 64, workers, 'i'),
    UK("max_body_bytes", 1024, 1024UL * 1024 * 1024, max_body, 'z'),
    UK("request_timeout", 1, 3600, request_timeout, 'u'),
    UK("shutdown_timeout", 0, 86400, shutdown_timeout, 'u'),
    UK("http_threads", 0, 256, http_threads, 'i'),
    UK("max_attempts", 1, 100, max_attempts, 'i'),
    UK("retry_delay", 1, 86400, retry_delay, 'u'),
    UK("job_retention_days", 0, 36500, job_retention_days, 'u'),
    UK("max_pending_body_bytes", 64 * 1024, 64UL * 1024 * 1024 * 1024,
       max_pending_body, 'z'),
    UK("max_connections_per_ip", 0, 1000, max_connections_per_ip, 'u'),
};
#undef UK

static int parse_uint_key(struct ts_config *cfg, const te_project_yaml *p,
                          const struct uint_key *uk, const yaml_node_t *vn,
                          te_error *err)
{
	char *field = (char *)cfg + uk->off;
	unsigned long v = 0;
	int rc;

	rc = te_project_yaml_uint(&v, p, vn, uk->key, uk->min, uk->max, err);
	if (rc < 0)
		return rc;
	if (uk->kind == 'i')
		*(int *)(void *)field = (int)v;
	else if (uk->kind == 'u')
		*(unsigned *)(void *)field = (unsigned)v;
	else
		*(size_t *)(void *)field = v;
	return 0;
}

/* queue: {driver: journal|postgres, dsn_file: PATH, lease: SECONDS}; the
 * DSN is read in queue_finish. */
static int parse_queue(struct server_keys *sk, const te_project_yaml *p,
                       const yaml_node_t *node, te_error *err)
{
	yaml_node_pair_t *pair;
	unsigned long v;
	int rc = 0;

	if (node->type != YAML_MAPPING_NODE)
		return te_project_yaml_fail(p, node, err,
		                            "queue must be a mapping");
	sk->queue_node = node;
	for (pair = node->data.mapping.pairs.start;
	     rc == 0 && pair < node->data.mapping.pairs.top; pair++) {
		yaml_node_t *kn = te_project_yaml_node(p, pair->key);
		yaml_node_t *vn = te_project_yaml_node(p, pair->value);
		const char *k = te_project_yaml_scalar(kn), *s;
		char what[200];

		if (!k) {
			rc = te_project_yaml_fail(p, kn, err,
			                          "keys must be strings");
		} else if (!strcmp(k, "driver")) {
			s = te_project_yaml_scalar(vn);
			if (s && !strcmp(s, "journal"))
				sk->cfg->queue_driver = TS_QUEUE_JOURNAL;
			else if (s && !strcmp(s, "postgres"))
				sk->cfg->queue_driver = TS_QUEUE_POSTGRES;
			else
				rc = te_project_yaml_fail(
				    p, vn, err,
				    "queue.driver must be journal or postgres");
		} else if (!strcmp(k, "dsn_file")) {
			sk->dsn_node = vn;
			rc = te_project_yaml_path(&sk->dsn_file, p, vn,
			                          "queue.dsn_file", err);
		} else if (!strcmp(k, "lease")) {
			rc = te_project_yaml_uint(&v, p, vn, "queue.lease", 5,
			                          3600, err);
			sk->cfg->queue_lease = (unsigned)v;
			sk->have_lease = true;
		} else {
			snprintf(what, sizeof(what),
			         "unknown key \"%.64s\" in queue", k);
			rc = te_project_yaml_fail(p, kn, err, what);
		}
	}
	return rc;
}

/* instance: the name recorded as a job's runner. */
static int parse_instance(struct ts_config *cfg, const te_project_yaml *p,
                          const yaml_node_t *vn, te_error *err)
{
	int rc = te_project_yaml_str(&cfg->instance, p, vn, "instance", err);

	if (rc == 0 &&
	    (strlen(cfg->instance) > TS_INSTANCE_MAX ||
	     strspn(cfg->instance, "abcdefghijklmnopqrstuvwxyz"
	                           "ABCDEFGHIJKLMNOPQRSTUVWXYZ"
	                           "0123456789._:-") != strlen(cfg->instance)))
		rc = te_project_yaml_fail(p, vn, err,
		                          "instance must be 1..128 of "
		                          "[A-Za-z0-9._:-]");
	return rc;
}

/* The driver's settings agree; the DSN is read (a secret); the instance
 * defaults to host:port. */
static int queue_finish(struct server_keys *sk, const te_project_yaml *p,
                        const yaml_node_t *root, te_error *err)
{
	struct ts_config *cfg = sk->cfg;
	const yaml_node_t *at = sk->queue_node ? sk->queue_node : root;
	char name[80];

	if (cfg->queue_driver == TS_QUEUE_POSTGRES && !sk->dsn_file)
		return te_project_yaml_fail(p, at, err,
		                            "queue.driver postgres needs "
		                            "queue.dsn_file");
	if (cfg->queue_driver == TS_QUEUE_JOURNAL &&
	    (sk->dsn_file || sk->have_lease))
		return te_project_yaml_fail(p, at, err,
		                            "queue.dsn_file and queue.lease go "
		                            "with driver: postgres");
	if (sk->dsn_file &&
	    te_project_yaml_secret(&cfg->queue_dsn, &cfg->queue_dsn_len, p,
	                           sk->dsn_node, sk->dsn_file, NULL, err) < 0)
		return err->code;
	if (cfg->instance)
		return 0;
	snprintf(name, sizeof(name),
	         strchr(cfg->host, ':') ? "[%s]:%u" : "%s:%u", cfg->host,
	         (unsigned)cfg->port);
	cfg->instance = te_strdup(name, err);
	return cfg->instance ? 0 : TE_ENOMEM;
}

/* The secrets and the checks that span keys, once every key was read. */
static int server_finish(struct server_keys *sk, const te_project_yaml *p,
                         const yaml_node_t *root, te_error *err)
{
	struct ts_config *cfg = sk->cfg;
	int rc = 0;

	if (sk->token_file && sk->token_env)
		return te_project_yaml_fail(
		    p, sk->token_node, err,
		    "use one of admin_token_file and admin_token_env");
	if (sk->token_file || sk->token_env)
		rc = te_project_yaml_secret(
		    &cfg->admin_token, &cfg->admin_token_len, p, sk->token_node,
		    sk->token_file, sk->token_env, err);
	if (rc == 0 && sk->metrics_file)
		rc = te_project_yaml_secret(
		    &cfg->metrics_token, &cfg->metrics_token_len, p,
		    sk->metrics_node, sk->metrics_file, NULL, err);
	if (rc == 0)
		rc = queue_finish(sk, p, root, err);
	return rc;
}

/* te_project_key_fn: the server's top-level keys. */
static int server_key(void *payload, const te_project_yaml *p, const char *k,
                      const yaml_node_t *vn, te_error *err)
{
	struct server_keys *sk = payload;
	struct ts_config *cfg = sk->cfg;
	size_t i;

	if (!k)
		return server_finish(sk, p, vn, err);
	for (i = 0; i < sizeof(uint_keys) / sizeof(uint_keys[0]); i++)
		if (!strcmp(k, uint_keys[i].key))
			return parse_uint_key(cfg, p, &uint_keys[i], vn, err);
	if (!strcmp(k, "listen"))
		return parse_listen(cfg, p, vn, err);
	if (!strcmp(k, "log_format"))
		return parse_log_format(cfg, p, vn, err);
	if (!strcmp(k, "admin_token_file")) {
		sk->token_node = vn;
		return te_project_yaml_path(&sk->token_file, p, vn,
		                            "admin_token_file", err);
	}
	if (!strcmp(k, "admin_token_env")) {
		sk->token_node = vn;
		return te_project_yaml_str(&sk->token_env, p, vn,
		                           "admin_token_env", err);
	}
	if (!strcmp(k, "metrics_token_file")) {
		sk->metrics_node = vn;
		return te_project_yaml_path(&sk->metrics_file, p, vn,
		                            "metrics_token_file", err);
	}
	if (!strcmp(k, "public_url"))
		return te_project_yaml_url(&cfg->public_url, p, vn,
		                           "public_url", err);
	if (!strcmp(k, "queue"))
		return parse_queue(sk, p, vn, err);
	if (!strcmp(k, "instance"))
		return parse_instance(cfg, p, vn, err);
	if (!strcmp(k, "ui_public"))
		return te_project_yaml_bool(&cfg->ui_public, p, vn, "ui_public",
		                            err);
	return TE_ENOTFOUND;
}

static void config_free(struct ts_config *cfg)
{
	size_t i;

	if (!cfg)
		return;
	for (i = 0; cfg->hmacs && i < cfg->nprojects; i++)
		ts_hmac_free(cfg->hmacs[i]);
	free(cfg->hmacs);
	te_project_file_free(cfg->file);
	free(cfg->host);
	free(cfg->public_url);
	free(cfg->instance);
	if (cfg->queue_dsn) {
		explicit_bzero(cfg->queue_dsn, cfg->queue_dsn_len);
		free(cfg->queue_dsn);
	}
	if (cfg->admin_token) {
		explicit_bzero(cfg->admin_token, cfg->admin_token_len);
		free(cfg->admin_token);
	}
	if (cfg->metrics_token) {
		explicit_bzero(cfg->metrics_token, cfg->metrics_token_len);
		free(cfg->metrics_token);
	}
	free(cfg);
}

void ts_config_ref(struct ts_config *cfg)
{
	atomic_fetch_add(&cfg->refs, 1);
}

void ts_config_unref(struct ts_config *cfg)
{
	if (cfg && atomic_fetch_sub(&cfg->refs, 1) == 1)
		config_free(cfg);
}

static struct ts_config *config_new(te_error *err)
{
	struct ts_config *cfg = calloc(1, sizeof(*cfg));

	if (!cfg) {
		te_error_set(err, TE_ENOMEM, "out of memory");
		return NULL;
	}
	atomic_init(&cfg->refs, 1);
	cfg->host = te_strdup("127.0.0.1", err);
	if (!cfg->host) {
		free(cfg);
		return NULL;
	}
	cfg->port = 8080;
	cfg->workers = 2;
	cfg->max_body = 25 * 1024 * 1024;
	cfg->request_timeout = 10;
	cfg->shutdown_timeout = 60;
	cfg->max_attempts = 5;
	cfg->retry_delay = 30;
	cfg->job_retention_days = 90;
	cfg->max_pending_body = 64 * 1024 * 1024;
	cfg->max_connections_per_ip = 64;
	cfg->queue_lease = 60;
	return cfg;
}

/* The projects are the core's; their prepared HMAC keys are the server's. */
static int config_adopt(struct ts_config *cfg, te_project_file *file,
                        te_error *err)
{
	size_t i;
	int rc;

	cfg->file = file;
	cfg->path = file->path;
	cfg->state_dir = file->state_dir;
	cfg->allow_chroot = file->allow_chroot;
	cfg->projects = file->projects;
	cfg->nprojects = file->nprojects;
	cfg->hmacs =
	    calloc(file->nprojects ? file->nprojects : 1, sizeof(*cfg->hmacs));
	if (!cfg->hmacs)
		return te_error_set(err, TE_ENOMEM, "out of memory");
	for (i = 0; i < file->nprojects; i++)
		if ((rc = ts_hmac_new(&cfg->hmacs[i], file->projects[i].secret,
		                      file->projects[i].secret_len, err)) < 0)
			return rc;
	return 0;
}

static int config_finish(struct ts_config **out, struct ts_config *cfg,
                         te_project_file *file, struct server_keys *sk, int rc,
                         te_error *err)
{
	if (rc == 0)
		rc = config_adopt(cfg, file, err);
	else
		te_project_file_free(file);
	if (rc < 0) {
		config_free(cfg);
		cfg = NULL;
	}
	free(sk->token_file);
	free(sk->token_env);
	free(sk->metrics_file);
	free(sk->dsn_file);
	*out = cfg;
	return rc;
}

int ts_config_parse(struct ts_config **out, const char *data, size_t len,
                    const char *filename, te_error *err)
{
	struct server_keys sk = {0};
	te_project_file *file = NULL;
	int rc;

	*out = NULL;
	if (!(sk.cfg = config_new(err)))
		return TE_ENOMEM;
	rc = te_project_file_parse(&file, data, len, filename, server_key, &sk,
	                           err);
	return config_finish(out, sk.cfg, file, &sk, rc, err);
}

int ts_config_load(struct ts_config **out, const char *path, te_error *err)
{
	struct server_keys sk = {0};
	te_project_file *file = NULL;
	int rc;

	*out = NULL;
	if (!(sk.cfg = config_new(err)))
		return TE_ENOMEM;
	rc = te_project_file_load(&file, path, server_key, &sk, err);
	return config_finish(out, sk.cfg, file, &sk, rc, err);
}

const te_project *ts_config_project(const struct ts_config *cfg,
                                    const char *name)
{
	return te_project_file_find(cfg->file, name);
}

const struct ts_hmac *ts_config_hmac(const struct ts_config *cfg,
                                     const te_project *pr)
{
	return cfg->hmacs[pr - cfg->projects];
}
