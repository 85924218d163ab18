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
	const yaml_node_t *token_node, *metrics_node;
	char *token_file, *token_env, *metrics_file;
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

/* The secrets and the checks that span keys, once every key was read. */
static int server_finish(struct server_keys *sk, const te_project_yaml *p,
                         te_error *err)
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
		return server_finish(sk, p, err);
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
