/*
 * worker.c - export workers.  Each worker loops: claim the oldest runnable
 * job (the queue marks it running, durably), run it, record the outcome.
 *
 * One job:
 *  1. te_mirror_fetch_tag into <state_dir>/mirrors/<project> from the
 *     configured git_url (never a URL from a payload);
 *  2. the tag must still be what the forge reported: its peeled commit or,
 *     for events that carry the ref value (Gitea "create"), the tag
 *     object.  Otherwise the job fails "tag moved" (not retried: a newer
 *     delivery describes the new state);
 *  3. te_export_run with the project's export section and %git_tag%, in
 *     the project's own build state (te_project_build_dir); it
 *     applies the semver rule against the mirror's tags itself (so
 *     v1.2.9 after v1.3.0 leaves ":1"), as for the CLI and the hook.
 * TE_ENET failures (a registry or a base image pull out of reach) are
 * retried with back-off retry_delay * 2^(attempt-1) up to max_attempts;
 * everything else fails the job at once, a build that ran out of
 * export.build_timeout (TE_ETIMEDOUT) included: running it again would
 * only hold a worker as long again.
 * The commit gets a status (status.h) when a job starts and when it ends;
 * a failure that will be retried posts none: the job is still running
 * as far as the forge's page is concerned.
 */
#include "mirror_refs.h"
#include "server.h"
#include "slog.h"
#include "status.h"

#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>

#include "tagexport/export.h"
#include "tagexport/mirror.h"
#include "tagexport/fs.h"

struct job_log;

struct ts_worker {
	struct ts_server *server;
	pthread_t thread;
	bool started;
	bool busy;
	bool abandoned; /* requeued at shutdown; its outcome is dropped */
	char job_id[TS_JOB_ID_MAX];
	struct job_log *log; /* of the job it runs, for the job page */
};

/* The job log: every core message, bounded (the tail is dropped). */
struct job_log {
	const char *job_id;
	pthread_mutex_t lock; /* the core may report from several threads */
	te_buf buf;
};

static void job_log_fn(void *payload, te_log_level level, const char *msg)
{
	struct job_log *jl = payload;
	static const char *const names[] = {"debug", "info", "warn", "error"};
	char esc[1100];

	ts_log_core((void *)jl->job_id, level, msg);
	if (level < TE_LOG_INFO)
		return;
	ts_escape(esc, sizeof(esc), msg);
	pthread_mutex_lock(&jl->lock);
	if (jl->buf.len + strlen(esc) + 16 < jl->buf.max)
		te_buf_printf(&jl->buf, NULL, "%s: %s\n", names[level], esc);
	pthread_mutex_unlock(&jl->lock);
}

static void say(struct job_log *jl, te_log_level level, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
static void say(struct job_log *jl, te_log_level level, const char *fmt, ...)
{
	char msg[1024];
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(msg, sizeof(msg), fmt, ap);
	va_end(ap);
	job_log_fn(jl, level, msg);
}

static int collect_results(te_strvec *results, const te_export_result *r,
                           te_error *err)
{
	size_t i, j;
	int rc;

	for (i = 0; i < r->nimages; i++)
		for (j = 0; j < r->images[i].nrefs; j++) {
			const te_exported_ref *ref = &r->images[i].refs[j];
			rc = te_strvec_pushf(results, err, "%s@%s",
			                     ref->reference, ref->digest);
			if (rc < 0)
				return rc;
		}
	return 0;
}

/* te_export_opts.content_lock over the queue's content tag locks (one
 * build per stage across replicas); several at once, one per image
 * building. */
static int content_lock(void **held, void *payload, const char *repo,
                        const char *tag, te_error *err)
{
	ts_queue_lock *l = NULL;
	int rc = ts_queue_content_lock(&l, payload, repo, tag, err);

	*held = l;
	return rc;
}

static void content_unlock(void *payload, void *held)
{
	(void)payload;
	ts_queue_content_unlock(held);
}

/* Run the job; returns 0 or a te_code with err set. */
static int run(te_strvec *results, uint64_t *bytes, size_t *nimages,
               struct ts_server *s, const struct ts_config *cfg,
               const ts_job *job, struct job_log *jl, te_error *err)
{
	const te_project *pr = ts_config_project(cfg, job->project);
	te_mirror_auth auth = TE_MIRROR_AUTH_INIT;
	te_export_opts opts = TE_EXPORT_OPTS_INIT;
	te_export_result *res = NULL;
	te_strvec names = TE_STRVEC_INIT, oids = TE_STRVEC_INIT;
	te_buf build = TE_BUF_INIT(4096);
	char mirror[4096], commit[41];
	bool matches;
	size_t i;
	int rc;

	if (!pr) {
		rc = te_error_set(err, TE_EINVALID,
		                  "project %s is no longer configured",
		                  job->project);
		goto done;
	}
	if (!te_project_name_valid(pr->name) || !ts_tag_name_valid(job->tag)) {
		rc = te_error_set(err, TE_EINVALID, "invalid job");
		goto done;
	}
	snprintf(mirror, sizeof(mirror), "%s/mirrors/%s", cfg->state_dir,
	         pr->name);
	if ((rc = te_project_build_dir(&build, cfg->state_dir, pr, err)) < 0 ||
	    (rc = te_fs_mkdirs(mirror, err)) < 0)
		goto done;
	auth.token_file = pr->git_token_file;
	auth.ssh_key_file = pr->git_ssh_key_file;
	auth.known_hosts_file = pr->git_known_hosts_file;
	auth.username = pr->git_username;
	say(jl, TE_LOG_INFO, "fetching tag %s", job->tag);
	rc = te_mirror_fetch_tag(commit, mirror, pr->git_url, job->tag, &auth,
	                         err);
	if (rc < 0) {
		te_error_wrap(err, "fetch");
		goto done;
	}
	if ((rc = ts_mirror_tags(&names, &oids, mirror, err)) < 0)
		goto done;
	matches = strcmp(commit, job->commit) == 0;
	for (i = 0; !matches && i < names.count; i++)
		matches = !strcmp(names.items[i], job->tag) &&
		          !strcmp(oids.items[i], job->commit);
	if (!matches) {
		rc = te_error_set(err, TE_EINVALID,
		                  "tag moved: it now points to %s, the forge "
		                  "reported %s",
		                  commit, job->commit);
		goto done;
	}
	say(jl, TE_LOG_INFO, "tag %s is commit %s", job->tag, commit);
	opts.dir = mirror;
	opts.commit = commit;
	opts.git_tag = job->tag;
	te_project_export_opts(&opts, pr);
	if (opts.isolation == TE_BUILD_ISOLATION_CHROOT)
		ts_logkv(TE_LOG_WARN,
		         "allow_chroot_isolation: builds are not isolated from "
		         "this machine",
		         "job", job->id, "project", pr->name, NULL);
	opts.state_dir = build.ptr;
	opts.log.fn = job_log_fn;
	opts.log.payload = jl;
	opts.content_lock.lock = content_lock;
	opts.content_lock.unlock = content_unlock;
	opts.content_lock.payload = s->queue;
	if ((rc = te_export_run(&res, &opts, err)) < 0)
		goto done;
	*bytes = res->bytes_copied;
	*nimages = res->nimages;
	rc = collect_results(results, res, err);
done:
	te_export_result_free(res);
	te_buf_dispose(&build);
	te_strvec_dispose(&names);
	te_strvec_dispose(&oids);
	return rc;
}

static void post_status(struct ts_server *s, const struct ts_config *cfg,
                        const ts_job *job, ts_status_event ev, size_t nimages,
                        const char *error)
{
	struct ts_status_info info = {.job_id = job->id,
	                              .project = job->project,
	                              .tag = job->tag,
	                              .commit = job->commit,
	                              .event = ev,
	                              .attempt = job->attempts,
	                              .max_attempts = cfg->max_attempts,
	                              .nimages = nimages,
	                              .error = error};

	ts_status_post(s->status, cfg, &info);
}

static void process(struct ts_worker *w, ts_job *job)
{
	struct ts_server *s = w->server;
	struct ts_config *cfg = ts_server_config(s);
	struct job_log jl = {job->id, PTHREAD_MUTEX_INITIALIZER,
	                     TE_BUF_INIT(TS_JOB_LOG_MAX - 1)};
	te_strvec results = TE_STRVEC_INIT;
	te_error err = TE_ERROR_INIT, ferr = TE_ERROR_INIT;
	struct timespec t0, t1;
	uint64_t bytes = 0;
	size_t nimages = 0;
	int64_t retry_at = 0, now;
	double secs;
	char attempts[16];
	int rc;

	pthread_mutex_lock(&s->work_lock);
	w->log = &jl;
	pthread_mutex_unlock(&s->work_lock);
	snprintf(attempts, sizeof(attempts), "%d", job->attempts);
	ts_logkv(TE_LOG_INFO, "job started", "job", job->id, "project",
	         job->project, "tag", job->tag, "attempt", attempts, NULL);
	post_status(s, cfg, job, TS_STATUS_RUNNING, 0, NULL);
	clock_gettime(CLOCK_MONOTONIC, &t0);
	rc = run(&results, &bytes, &nimages, s, cfg, job, &jl, &err);
	clock_gettime(CLOCK_MONOTONIC, &t1);
	secs = (double)(t1.tv_sec - t0.tv_sec) +
	       (double)(t1.tv_nsec - t0.tv_nsec) / 1e9;
	now = (int64_t)time(NULL);
	if (rc < 0 && err.code == TE_ENET &&
	    job->attempts < cfg->max_attempts) {
		int shift = job->attempts > 1 ? job->attempts - 1 : 0;
		if (shift > 20)
			shift = 20;
		retry_at = now + (int64_t)cfg->retry_delay * (1LL << shift);
	}
	if (rc < 0)
		say(&jl, TE_LOG_ERROR, "%s", err.msg);
	ts_metrics_export(s->metrics, secs, bytes, rc == 0);
	pthread_mutex_lock(&s->work_lock);
	if (w->abandoned) {
		/* Requeued by the shutdown: leave the job as it is now. */
		pthread_mutex_unlock(&s->work_lock);
		goto done;
	}
	pthread_mutex_unlock(&s->work_lock);
	if (ts_queue_finish(s->queue, job->id, rc == 0, rc < 0 ? err.msg : NULL,
	                    &results, jl.buf.ptr, retry_at, now, &ferr) < 0)
		ts_logkv(TE_LOG_ERROR, "cannot record the job outcome", "job",
		         job->id, "error", ferr.msg, NULL);
	if (rc == 0 || !retry_at)
		post_status(s, cfg, job,
		            rc == 0 ? TS_STATUS_SUCCEEDED : TS_STATUS_FAILED,
		            nimages, err.msg);
	if (rc == 0)
		ts_logkv(TE_LOG_INFO, "job succeeded", "job", job->id,
		         "project", job->project, "tag", job->tag, NULL);
	else
		ts_logkv(retry_at ? TE_LOG_WARN : TE_LOG_ERROR,
		         retry_at ? "job failed, will retry" : "job failed",
		         "job", job->id, "project", job->project, "tag",
		         job->tag, "error", err.msg, NULL);
done:
	pthread_mutex_lock(&s->work_lock);
	w->log = NULL;
	pthread_mutex_unlock(&s->work_lock);
	te_strvec_dispose(&results);
	te_buf_dispose(&jl.buf);
	ts_config_unref(cfg);
}

static void *worker_main(void *arg)
{
	struct ts_worker *w = arg;
	struct ts_server *s = w->server;

	for (;;) {
		te_error err = TE_ERROR_INIT;
		ts_job *job = NULL;
		struct timespec until;

		pthread_mutex_lock(&s->work_lock);
		if (s->stopping) {
			pthread_mutex_unlock(&s->work_lock);
			break;
		}
		pthread_mutex_unlock(&s->work_lock);
		if (ts_queue_claim(&job, s->queue, (int64_t)time(NULL), &err) <
		    0)
			ts_logkv(TE_LOG_ERROR, "cannot claim a job", "error",
			         err.msg, NULL);
		if (!job) {
			/* Wake on submit, else poll for retry back-offs. */
			clock_gettime(CLOCK_REALTIME, &until);
			until.tv_sec += 1;
			pthread_mutex_lock(&s->work_lock);
			if (!s->stopping)
				pthread_cond_timedwait(&s->work_cond,
				                       &s->work_lock, &until);
			pthread_mutex_unlock(&s->work_lock);
			continue;
		}
		pthread_mutex_lock(&s->work_lock);
		w->busy = true;
		snprintf(w->job_id, sizeof(w->job_id), "%s", job->id);
		pthread_mutex_unlock(&s->work_lock);
		process(w, job);
		ts_job_free(job);
		pthread_mutex_lock(&s->work_lock);
		w->busy = false;
		w->job_id[0] = '\0';
		pthread_cond_broadcast(&s->idle_cond);
		if (w->abandoned) {
			pthread_mutex_unlock(&s->work_lock);
			break;
		}
		pthread_mutex_unlock(&s->work_lock);
	}
	return NULL;
}

char *ts_workers_log(struct ts_server *s, const char *id)
{
	char *copy = NULL;
	int i;

	pthread_mutex_lock(&s->work_lock);
	for (i = 0; i < s->nworkers; i++) {
		struct job_log *jl = s->workers[i].log;
		if (!jl || strcmp(s->workers[i].job_id, id) != 0)
			continue;
		pthread_mutex_lock(&jl->lock);
		copy = strndup(jl->buf.ptr, jl->buf.len);
		pthread_mutex_unlock(&jl->lock);
		break;
	}
	pthread_mutex_unlock(&s->work_lock);
	return copy;
}

int ts_workers_start(struct ts_server *s, int n, te_error *err)
{
	int i, rc;

	if (n == 0) {
		ts_logkv(TE_LOG_WARN, "workers: 0, jobs are queued but not run",
		         NULL);
		return 0;
	}
	s->workers = calloc((size_t)n, sizeof(*s->workers));
	if (!s->workers)
		return te_error_set(err, TE_ENOMEM, "out of memory");
	s->nworkers = n;
	for (i = 0; i < n; i++) {
		s->workers[i].server = s;
		rc = pthread_create(&s->workers[i].thread, NULL, worker_main,
		                    &s->workers[i]);
		if (rc != 0)
			return te_error_set_errno(err, TE_ERROR, rc,
			                          "cannot start a worker");
		s->workers[i].started = true;
	}
	return 0;
}

void ts_workers_wake(struct ts_server *s)
{
	pthread_mutex_lock(&s->work_lock);
	pthread_cond_signal(&s->work_cond);
	pthread_mutex_unlock(&s->work_lock);
}

static int busy_count(struct ts_server *s)
{
	int i, n = 0;

	for (i = 0; i < s->nworkers; i++)
		n += s->workers[i].busy && !s->workers[i].abandoned;
	return n;
}

bool ts_workers_stop(struct ts_server *s, unsigned int timeout)
{
	struct timespec until;
	bool all = true;
	int i;

	clock_gettime(CLOCK_REALTIME, &until);
	until.tv_sec += timeout;
	pthread_mutex_lock(&s->work_lock);
	s->stopping = true;
	pthread_cond_broadcast(&s->work_cond);
	if (busy_count(s) > 0)
		ts_logkv(TE_LOG_INFO, "waiting for running jobs", NULL);
	while (busy_count(s) > 0)
		if (pthread_cond_timedwait(&s->idle_cond, &s->work_lock,
		                           &until) == ETIMEDOUT)
			break;
	for (i = 0; i < s->nworkers; i++) {
		struct ts_worker *w = &s->workers[i];
		te_error err = TE_ERROR_INIT;
		if (!w->busy)
			continue;
		/* te_export_run cannot be interrupted: put the job back so
		 * the next start runs it, and leave the thread to die with
		 * the process. */
		w->abandoned = true;
		if (ts_queue_requeue(s->queue, w->job_id, (int64_t)time(NULL),
		                     &err) < 0)
			ts_logkv(TE_LOG_ERROR, "cannot requeue a running job",
			         "job", w->job_id, "error", err.msg, NULL);
		else
			ts_logkv(TE_LOG_WARN, "running job requeued", "job",
			         w->job_id, NULL);
	}
	pthread_mutex_unlock(&s->work_lock);
	for (i = 0; i < s->nworkers; i++) {
		if (s->workers[i].abandoned)
			all = false;
		else if (s->workers[i].started)
			pthread_join(s->workers[i].thread, NULL);
	}
	return all;
}

void ts_workers_free(struct ts_server *s)
{
	free(s->workers);
	s->workers = NULL;
	s->nworkers = 0;
}
