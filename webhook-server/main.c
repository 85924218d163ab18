/*
 * main.c - tagexport-server: start-up, signals, shutdown.
 *
 *   tagexport-server --config FILE [--port-file FILE] [--check]
 *
 * Signals are blocked in every thread and taken here with sigtimedwait:
 *   SIGHUP           reload the config (the old one stays on error)
 *   SIGTERM, SIGINT  stop intake, let running jobs finish for
 *                    shutdown_timeout seconds, requeue the rest, exit 0
 * Between signals, at start-up and then hourly, finished jobs older than
 * job_retention_days are pruned from the queue, so years of tags do not
 * pile up in memory.
 * Crash safety does not depend on any of this: accepted jobs are on disk
 * before the 202, and jobs found "running" at start-up run again.
 */
#include "server.h"
#include "slog.h"
#include "status.h"

#include <errno.h>
#include <getopt.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "tagexport/gitsrc.h"

#ifndef TE_VERSION
#define TE_VERSION "dev"
#endif

struct ts_config *ts_server_config(struct ts_server *s)
{
	struct ts_config *cfg;

	pthread_mutex_lock(&s->cfg_lock);
	cfg = s->cfg;
	ts_config_ref(cfg);
	pthread_mutex_unlock(&s->cfg_lock);
	return cfg;
}

void ts_server_set_config(struct ts_server *s, struct ts_config *cfg)
{
	struct ts_config *old;

	pthread_mutex_lock(&s->cfg_lock);
	old = s->cfg;
	s->cfg = cfg;
	pthread_mutex_unlock(&s->cfg_lock);
	if (old)
		ts_config_unref(old);
}

static void usage(FILE *f)
{
	fputs("usage: tagexport-server --config FILE [--port-file FILE] "
	      "[--check]\n"
	      "  --config FILE     server configuration (YAML)\n"
	      "  --port-file FILE  write the bound port there once listening\n"
	      "  --check           validate the configuration and exit\n"
	      "  --version         print the version\n",
	      f);
}

static int mkdir_state(const char *base, const char *sub, te_error *err)
{
	char path[4096];

	snprintf(path, sizeof(path), "%s%s%s", base, sub ? "/" : "",
	         sub ? sub : "");
	if (mkdir(path, 0700) < 0 && errno != EEXIST)
		return te_error_set_errno(err, TE_EIO, errno,
		                          "cannot create %s", path);
	return 0;
}

#define PRUNE_INTERVAL 3600 /* seconds */
#define STATUS_DRAIN 5      /* seconds for statuses at shutdown */

static void prune(struct ts_server *s)
{
	struct ts_config *cfg = ts_server_config(s);
	int64_t days = cfg->job_retention_days;
	te_error err = TE_ERROR_INIT;
	size_t removed = 0;
	char n[24];

	ts_config_unref(cfg);
	if (days == 0)
		return;
	if (ts_queue_prune(&removed, s->queue,
	                   (int64_t)time(NULL) - days * 86400, &err) < 0)
		ts_logkv(TE_LOG_ERROR, "cannot prune finished jobs", "error",
		         err.msg, NULL);
	if (removed == 0)
		return;
	snprintf(n, sizeof(n), "%zu", removed);
	ts_logkv(TE_LOG_INFO, "finished jobs pruned", "count", n, NULL);
}

static void reload(struct ts_server *s, const char *path)
{
	struct ts_config *cfg = NULL, *cur;
	te_error err = TE_ERROR_INIT;

	if (ts_config_load(&cfg, path, &err) < 0) {
		ts_logkv(TE_LOG_ERROR, "reload failed, keeping the old config",
		         "error", err.msg, NULL);
		return;
	}
	cur = ts_server_config(s);
	if (strcmp(cur->host, cfg->host) != 0 || cur->port != cfg->port ||
	    strcmp(cur->state_dir, cfg->state_dir) != 0 ||
	    cur->workers != cfg->workers ||
	    cur->http_threads != cfg->http_threads ||
	    cur->max_body != cfg->max_body ||
	    cur->request_timeout != cfg->request_timeout ||
	    cur->queue_driver != cfg->queue_driver ||
	    cur->queue_lease != cfg->queue_lease ||
	    strcmp(cur->instance, cfg->instance) != 0 ||
	    (cur->queue_dsn && strcmp(cur->queue_dsn, cfg->queue_dsn) != 0))
		ts_logkv(TE_LOG_WARN,
		         "listen, state_dir, workers, http_threads, "
		         "max_body_bytes, request_timeout, queue and instance "
		         "change only at restart",
		         NULL);
	ts_config_unref(cur);
	ts_log_set_format(cfg->log_format);
	ts_server_set_config(s, cfg);
	ts_logkv(TE_LOG_INFO, "configuration reloaded", "path", path, NULL);
}

/* ts_queue_set_wake's callback: another replica queued a job. */
static void wake_workers(void *srv)
{
	ts_workers_wake(srv);
}

/* The job queue of cfg's driver, its runner named cfg->instance. */
static int open_queue(ts_queue **out, const struct ts_config *cfg,
                      const char *qdir, te_error *err)
{
	int rc;

	if (cfg->queue_driver == TS_QUEUE_POSTGRES)
		rc = ts_queue_open_postgres(out, cfg->queue_dsn,
		                            cfg->queue_lease, err);
	else
		rc = ts_queue_open_journal(out, qdir, err);
	if (rc == 0 &&
	    (rc = ts_queue_set_instance(*out, cfg->instance, err)) < 0) {
		ts_queue_free(*out);
		*out = NULL;
	}
	return rc;
}

/* The state directories, the queue, workers and HTTP; srv takes cfg. */
static int start(struct ts_server *srv, struct ts_config *cfg,
                 const char *port_file, te_error *err)
{
	char qdir[4096];

	memset(srv, 0, sizeof(*srv));
	pthread_mutex_init(&srv->cfg_lock, NULL);
	pthread_mutex_init(&srv->work_lock, NULL);
	pthread_cond_init(&srv->work_cond, NULL);
	pthread_cond_init(&srv->idle_cond, NULL);
	srv->cfg = cfg;
	srv->started = time(NULL);
	if (snprintf(qdir, sizeof(qdir), "%s/queue", cfg->state_dir) >=
	    (int)sizeof(qdir))
		return te_error_set(err, TE_EINVALID, "state_dir too long");
	if (te_gitsrc_global_init(err) < 0 ||
	    mkdir_state(cfg->state_dir, NULL, err) < 0 ||
	    mkdir_state(cfg->state_dir, "mirrors", err) < 0 ||
	    mkdir_state(cfg->state_dir, "build", err) < 0 ||
	    open_queue(&srv->queue, cfg, qdir, err) < 0)
		return err->code;
	ts_queue_set_wake(srv->queue, wake_workers, srv);
	if (ts_metrics_new(&srv->metrics, err) < 0 ||
	    ts_status_start(&srv->status, err) < 0 ||
	    ts_workers_start(srv, cfg->workers, err) < 0 ||
	    ts_poller_start(srv, err) < 0 ||
	    ts_http_start(srv, port_file, err) < 0)
		return err->code;
	return 0;
}

/* Reload on SIGHUP and prune hourly until SIGTERM or SIGINT, returned. */
static int serve(struct ts_server *s, const sigset_t *sigs,
                 const char *config_path)
{
	prune(s);
	for (;;) {
		struct timespec interval = {PRUNE_INTERVAL, 0};
		int sig = sigtimedwait(sigs, NULL, &interval);

		if (sig < 0) {
			if (errno == EAGAIN)
				prune(s);
			continue;
		}
		if (sig != SIGHUP)
			return sig;
		reload(s, config_path);
	}
}

int main(int argc, char **argv)
{
	static const struct option longopts[] = {
	    {"config", required_argument, NULL, 'c'},
	    {"port-file", required_argument, NULL, 'p'},
	    {"check", no_argument, NULL, 'k'},
	    {"version", no_argument, NULL, 'V'},
	    {"help", no_argument, NULL, 'h'},
	    {NULL, 0, NULL, 0}};
	struct ts_server srv;
	struct ts_config *cfg = NULL;
	te_error err = TE_ERROR_INIT;
	const char *config_path = NULL, *port_file = NULL;
	bool check = false, clean_exit = true;
	sigset_t sigs;
	int opt, sig;

	while ((opt = getopt_long(argc, argv, "c:h", longopts, NULL)) != -1) {
		switch (opt) {
		case 'c':
			config_path = optarg;
			break;
		case 'p':
			port_file = optarg;
			break;
		case 'k':
			check = true;
			break;
		case 'V':
			puts("tagexport-server " TE_VERSION);
			return 0;
		case 'h':
			usage(stdout);
			return 0;
		default:
			usage(stderr);
			return 2;
		}
	}
	if (!config_path || optind != argc) {
		usage(stderr);
		return 2;
	}
	if (ts_config_load(&cfg, config_path, &err) < 0) {
		fprintf(stderr, "tagexport-server: %s\n", err.msg);
		return 2;
	}
	if (check) {
		ts_config_unref(cfg);
		puts("configuration OK");
		return 0;
	}
	ts_log_set_format(cfg->log_format);

	/* Before any thread exists, so every thread inherits the mask. */
	sigemptyset(&sigs);
	sigaddset(&sigs, SIGTERM);
	sigaddset(&sigs, SIGINT);
	sigaddset(&sigs, SIGHUP);
	pthread_sigmask(SIG_BLOCK, &sigs, NULL);
	signal(SIGPIPE, SIG_IGN);

	if (start(&srv, cfg, port_file, &err) < 0) {
		ts_logkv(TE_LOG_ERROR, "cannot start", "error", err.msg, NULL);
		return 1;
	}
	ts_logkv(TE_LOG_INFO, "tagexport-server started", "version", TE_VERSION,
	         NULL);

	sig = serve(&srv, &sigs, config_path);
	ts_logkv(TE_LOG_INFO, "stopping", "signal",
	         sig == SIGTERM ? "SIGTERM" : "SIGINT", NULL);
	ts_http_stop(&srv);
	cfg = ts_server_config(&srv);
	clean_exit = ts_poller_stop(&srv, cfg->shutdown_timeout);
	clean_exit = ts_workers_stop(&srv, cfg->shutdown_timeout) && clean_exit;
	ts_config_unref(cfg);
	ts_logkv(TE_LOG_INFO, "stopped", NULL);
	if (!clean_exit) {
		/* A worker is still inside te_export_run, or the poller in a
		 * poll: free nothing they use and run no exit handlers under
		 * them (a worker's job is back in the queue already). */
		_exit(0);
	}
	/* The last jobs' statuses get a few seconds, without retries. */
	ts_status_stop(srv.status, STATUS_DRAIN);
	ts_queue_free(srv.queue);
	ts_metrics_free(srv.metrics);
	ts_workers_free(&srv);
	ts_server_set_config(&srv, NULL);
	return 0;
}
