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

#include "tagexport/error.h"
#include "tagexport/project.h"

/* The file's budgets are the core's (TE_PROJECT_FILE_MAX_SIZE,
 * TE_PROJECT_MAX; tagexport/project.h). */
typedef enum { TS_LOG_TEXT = 0, TS_LOG_JSON = 1 } ts_log_format;

/* queue.driver: the embedded journal (one machine) or PostgreSQL
 * (several replicas). */
typedef enum { TS_QUEUE_JOURNAL = 0, TS_QUEUE_POSTGRES = 1 } ts_queue_driver;

#define TS_INSTANCE_MAX 128 /* bytes of instance: (TS_QUEUE_INSTANCE_MAX) */

struct ts_hmac;

struct ts_config {
	atomic_int refs;
	const char *path;
	char *host; /* numeric address */
	unsigned short port;
	const char *state_dir;
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
	ts_queue_driver queue_driver;
	char *queue_dsn; /* postgres: libpq conninfo from dsn_file (a secret:
	                    it may hold a password; never logged) */
	size_t queue_dsn_len;
	unsigned queue_lease; /* postgres: seconds a claim lives; 60 */
	char *instance;       /* this replica's name; default host:port */
	/* state_dir, allow_chroot, path and the projects are borrowed from
	 * file (the core's part, shared with the standalone hook) */
	te_project_file *file;
	size_t nprojects;
	const te_project *projects;
	struct ts_hmac **hmacs; /* projects[i]'s secret, prepared (verify.h) */
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
const te_project *ts_config_project(const struct ts_config *cfg,
                                    const char *name);

/* The prepared HMAC key of pr, one of cfg's projects. */
const struct ts_hmac *ts_config_hmac(const struct ts_config *cfg,
                                     const te_project *pr);

void ts_config_ref(struct ts_config *cfg);
/* Drops a reference; frees the config with the last one. */
void ts_config_unref(struct ts_config *cfg);

#endif
