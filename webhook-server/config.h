/*
 * config.h - the tagexport-server configuration file (YAML).
 *
 * ts_config_load reads and validates the whole file into typed values;
 * nothing else in the server touches YAML.  Errors read
 * "<file>:<line>: <what>".  Secrets (webhook secrets, the admin token)
 * are read from their files or environment variables at load time, so a
 * SIGHUP reload picks up rotated secrets; they are never part of an error
 * message.  Relative paths are relative to the config file's directory.
 *
 * A loaded config is immutable and reference counted: request handlers and
 * workers hold a reference while they use it, a reload swaps the pointer.
 */
#ifndef TS_CONFIG_H
#define TS_CONFIG_H

#include <stdatomic.h>
#include <stdbool.h>
#include <stddef.h>

#include "tagexport/buf.h"
#include "tagexport/error.h"
#include "tagexport/export.h"
#include "tagexport/labels.h"
#include "tagexport/werfcfg.h"

/*
 * Budgets: a hostile or broken file is refused cheaply, with an error that
 * names the limit.  The YAML is scanned (te_config_yaml_scan) before a
 * tree is built: nesting at most TE_CONFIG_MAX_DEPTH levels, at most
 * TE_CONFIG_MAX_EVENTS nodes, one document, and no mapping may repeat a
 * key ("<file>:<line>: duplicate key \"<key>\"").
 */
#define TS_CONFIG_MAX_SIZE (4 * 1024 * 1024) /* bytes of the file */
#define TS_CONFIG_MAX_PROJECTS 1000          /* entries of projects: */

typedef enum {
	TS_FORGE_GITHUB = 0,
	TS_FORGE_GITLAB = 1,
	TS_FORGE_GITEA = 2
} ts_forge;

const char *ts_forge_name(ts_forge forge);

typedef enum { TS_LOG_TEXT = 0, TS_LOG_JSON = 1 } ts_log_format;

#define TS_PROJECT_NAME_MAX 64

struct ts_project {
	char *name; /* [a-z0-9_-]{1,64}: URL segment and mirror dir name */
	ts_forge forge;
	char *repository; /* full name the forge sends, e.g. "acme/shop" */
	char *secret;     /* webhook secret (never logged) */
	size_t secret_len;
	struct ts_hmac *hmac; /* secret prepared for HMAC-SHA256 (verify.h) */
	char *git_url;
	char *git_token_file;       /* optional HTTPS token */
	char *git_ssh_key_file;     /* optional SSH private key */
	char *git_known_hosts_file; /* optional; else ~/.ssh/known_hosts */
	char *git_username;         /* optional */
	char *docker_config;        /* optional dir with config.json */
	te_strvec tags;             /* globs on the tag name; empty = all */
	unsigned poll_interval;     /* seconds between tag polls; 0 = off */
	/* export: the knobs of `tagexport export` */
	char *repo;
	te_strvec tag_templates;
	te_labels *add_labels; /* never NULL */
	te_strvec images;      /* image patterns; empty = all final images */
	bool insecure_registry;
	bool skip_tls_verify;
	uint64_t max_file_size;    /* bytes; 0 = the core's default (2 GiB) */
	uint64_t max_context_size; /* bytes; 0 = the core's default (8 GiB) */
	unsigned build_timeout;    /* export.build_timeout, seconds; 0 = 1h */
	/* export.parallel_tasks_limit: images built at once; 0 = werf's
	 * default (5), -1 = no limit */
	int parallel_tasks_limit;
	/* allow_chroot_isolation: builds run in a chroot, NOT isolated from
	 * the machine; -1 while parsing = the top-level value */
	int allow_chroot;
	/* werf.yaml templates (werfcfg.h): env: NAME: VALUE is all their
	 * `env` sees ("NAME=VALUE"; never the server's environment; values
	 * are never logged), werf_env: is .Env, loose_giterminism: lets env
	 * read any of them; render points into this project */
	te_strvec env;
	/* secrets: werf.yaml build secrets by id: {env: NAME} (of env:
	 * above) or {file: PATH}; values are read per build, never logged */
	struct ts_build_secret {
		char *id;
		char *env;
		char *file;
	} * build_secrets;
	size_t nbuild_secrets;
	/* ssh_key_files: keys for werf.yaml's ssh: (RUN --mount=type=ssh);
	 * the server's own agent is never used */
	te_strvec ssh_keys;
	char *werf_env;
	bool loose_giterminism;
	te_werfcfg_opts render;
	/* status: commit statuses on the forge (status.h); off when the
	 * section is absent */
	struct ts_status_config {
		bool enabled;
		char *token; /* from token_file (never logged) */
		size_t token_len;
		char *api_url; /* http(s), no trailing '/' */
		char *context; /* status name; "tagexport/export" */
	} status;
	int line; /* where the project starts in the file */
};

struct ts_config {
	atomic_int refs;
	char *path;
	char *host; /* numeric address */
	unsigned short port;
	char *state_dir;
	int workers;
	char *admin_token; /* NULL: the API answers 401 to everyone */
	size_t admin_token_len;
	ts_log_format log_format;
	size_t max_body;             /* bytes; default 25 MiB */
	unsigned request_timeout;    /* seconds for a whole request; 10 */
	unsigned shutdown_timeout;   /* seconds to wait for running jobs; 60 */
	int http_threads;            /* MHD thread pool size; 0 = auto */
	int max_attempts;            /* export attempts per job; 5 */
	unsigned retry_delay;        /* seconds, doubled per attempt; 30 */
	unsigned job_retention_days; /* finished jobs kept; 90, 0 = all */
	/* hostile load (server.c): bytes of bodies buffered before their
	 * signature is checked, all requests together; 64 MiB */
	size_t max_pending_body;
	unsigned max_connections_per_ip; /* 64; 0 = no per-address limit */
	char *metrics_token; /* NULL: /metrics is open to everyone */
	size_t metrics_token_len;
	bool allow_chroot; /* allow_chroot_isolation; false */
	char *public_url;  /* where the job pages are; NULL: unknown */
	bool ui_public;    /* /jobs pages readable without the admin token */
	size_t nprojects;
	struct ts_project *projects;
};

/* Read and validate path.  The result has one reference. */
int ts_config_load(struct ts_config **out, const char *path, te_error *err);

/*
 * Parse config text; filename is used in messages and to resolve relative
 * paths (its directory).  Exposed for the unit tests.
 */
int ts_config_parse(struct ts_config **out, const char *data, size_t len,
                    const char *filename, te_error *err);

/* Borrowed project by name, NULL when not configured. */
const struct ts_project *ts_config_project(const struct ts_config *cfg,
                                           const char *name);

void ts_config_ref(struct ts_config *cfg);
/* Drops a reference; frees the config with the last one. */
void ts_config_unref(struct ts_config *cfg);

/* Project names: [a-z0-9_-]{1,64}. */
bool ts_project_name_valid(const char *name);

/* The project's export section into opts (borrowed from pr: keep the
 * config referenced while opts is in use); the caller sets the source
 * (dir, commit, git_tag), state_dir and log.  The server's workers and the
 * standalone hook export the same way. */
void ts_project_export_opts(te_export_opts *opts, const struct ts_project *pr);

#endif
