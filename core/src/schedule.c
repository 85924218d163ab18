/*
 * schedule.c - walk a sealed plan with worker threads (schedule.h).
 *
 * One mutex guards the scheduling state (which image is ready, running,
 * done; the first error); a second one serialises the lookup callback,
 * and a third the log, so that neither needs to be thread-safe.  Builders
 * run without any lock held.  A condition variable wakes idle workers
 * when an image finishes (its dependents may become ready) or the run
 * fails.
 */
#include "tagexport/schedule.h"

#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "plan_int.h"

enum state { SKIP = 0, WAITING, READY, RUNNING, DONE };

struct sched {
	te_plan *plan;
	const te_schedule_opts *opts;
	pthread_mutex_t mu; /* the fields below */
	pthread_cond_t cv;
	pthread_mutex_t lookup; /* the lookup callback */
	pthread_mutex_t logmu;  /* the log */
	size_t remaining;       /* images not DONE */
	bool failed;
	te_error err; /* the first failure */
	atomic_int cancel;
	te_log log; /* opts->log behind logmu */
};

static void locked_log(void *payload, te_log_level level, const char *msg)
{
	struct sched *s = payload;

	pthread_mutex_lock(&s->logmu);
	if (s->opts->log.fn)
		s->opts->log.fn(s->opts->log.payload, level, msg);
	pthread_mutex_unlock(&s->logmu);
}

static double now_s(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

/* Mark what the targets need (SKIP stays for the rest). */
static void mark_needed(struct sched *s, te_plan_image *img)
{
	size_t i;

	if (img->mark != SKIP)
		return;
	img->mark = WAITING;
	s->remaining++;
	for (i = 0; i < img->ndeps; i++)
		mark_needed(s, img->deps[i]);
}

static void init_states(struct sched *s)
{
	te_plan *plan = s->plan;
	size_t i, j;

	for (i = 0; i < plan->nimages; i++) {
		plan->images[i]->mark = SKIP;
		plan->images[i]->digest[0] = '\0';
		plan->images[i]->built = false;
	}
	if (s->opts->targets)
		for (i = 0; i < s->opts->ntargets; i++)
			mark_needed(s, s->opts->targets[i]);
	else
		for (i = 0; i < plan->nimages; i++)
			mark_needed(s, plan->images[i]);
	for (i = 0; i < plan->nimages; i++) {
		te_plan_image *img = plan->images[i];

		img->waiting = 0;
		for (j = 0; j < img->ndeps; j++)
			img->waiting++;
		if (img->mark == WAITING && img->waiting == 0)
			img->mark = READY;
	}
}

static int lookup(struct sched *s, bool *exists, char digest[TE_DIGEST_STR_MAX],
                  const te_plan_stage *st, te_error *err)
{
	int rc;

	pthread_mutex_lock(&s->lookup);
	rc = s->opts->lookup(exists, digest, st, s->opts->lookup_payload, err);
	pthread_mutex_unlock(&s->lookup);
	return rc;
}

/* The first stage to build: nstages when the image is complete. */
static int first_missing(struct sched *s, te_plan_image *img, size_t *out,
                         te_error *err)
{
	char digest[TE_DIGEST_STR_MAX];
	bool exists = false;
	size_t i, last = img->nstages - 1;
	int rc;

	rc = lookup(s, &exists, digest, img->stages[last], err);
	if (rc < 0)
		return rc;
	if (exists) {
		memcpy(img->digest, digest, TE_DIGEST_STR_MAX);
		*out = img->nstages;
		return 0;
	}
	for (i = 0; i < last; i++) {
		if ((rc = lookup(s, &exists, digest, img->stages[i], err)) < 0)
			return rc;
		if (!exists)
			break;
	}
	*out = i;
	return 0;
}

static int build_stage_unlocked(struct sched *s, te_plan_image *img, size_t i,
                                te_error *err)
{
	te_plan_stage *st = img->stages[i];
	te_stage_ctx ctx;
	int rc;

	memset(&ctx, 0, sizeof(ctx));
	ctx.image = img;
	ctx.stage = st;
	ctx.base_ref = i ? img->stages[i - 1]->ref : NULL;
	ctx.image_ref = st->ref;
	ctx.cancel = &s->cancel;
	ctx.log = s->log;
	rc = st->build(img->digest, &ctx, st->payload, err);
	if (rc < 0 && img->nstages > 1)
		te_error_wrap(err, "stage %zu/%zu (%s)", i + 1, img->nstages,
		              st->name);
	return rc;
}

/* Under the caller's lock on st: did another export build it meanwhile?
 * Then its digest is the image's so far. */
static int built_meanwhile(struct sched *s, te_plan_image *img,
                           te_plan_stage *st, bool *found, te_error *err)
{
	char digest[TE_DIGEST_STR_MAX];
	int rc;

	*found = false;
	if ((rc = lookup(s, found, digest, st, err)) < 0 || !*found)
		return rc;
	memcpy(img->digest, digest, TE_DIGEST_STR_MAX);
	te_log_emit(&s->log, TE_LOG_INFO,
	            "image %s: stage %s built meanwhile by another export",
	            img->name, st->name);
	return 0;
}

static int build_stage(struct sched *s, te_plan_image *img, size_t i,
                       te_error *err)
{
	te_plan_stage *st = img->stages[i];
	void *held = NULL;
	bool found = false;
	int rc;

	if (s->opts->lock) {
		if ((rc = s->opts->lock(&held, s->opts->lock_payload, st,
		                        err)) < 0)
			return te_error_wrap(err, "locking %s", st->ref);
		rc = built_meanwhile(s, img, st, &found, err);
		if (rc < 0 || found) {
			s->opts->unlock(s->opts->lock_payload, held);
			return rc;
		}
	}
	rc = build_stage_unlocked(s, img, i, err);
	if (s->opts->lock)
		s->opts->unlock(s->opts->lock_payload, held);
	return rc;
}

static int run_image(struct sched *s, te_plan_image *img, te_error *err)
{
	size_t first = 0, i;
	double t0;
	int rc;

	if ((rc = first_missing(s, img, &first, err)) < 0)
		return rc;
	if (first == img->nstages) {
		te_log_emit(&s->log, TE_LOG_INFO, "image %s: found in repo",
		            img->name);
		return 0;
	}
	if (first)
		te_log_emit(&s->log, TE_LOG_INFO,
		            "image %s: building from stage %zu/%zu (%zu found "
		            "in repo)",
		            img->name, first + 1, img->nstages, first);
	else
		te_log_emit(&s->log, TE_LOG_INFO, "image %s: building",
		            img->name);
	t0 = now_s();
	for (i = first; i < img->nstages; i++) {
		if (atomic_load(&s->cancel))
			return te_error_set(err, TE_ERROR, "cancelled");
		if ((rc = build_stage(s, img, i, err)) < 0)
			return rc;
	}
	img->built = true;
	te_log_emit(&s->log, TE_LOG_INFO, "image %s: built in %.1fs", img->name,
	            now_s() - t0);
	return 0;
}

static te_plan_image *next_ready(struct sched *s)
{
	size_t i;

	for (i = 0; i < s->plan->nimages; i++)
		if (s->plan->order[i]->mark == READY)
			return s->plan->order[i];
	return NULL;
}

/* Under s->mu: img is done; its dependents may be ready now. */
static void finish(struct sched *s, te_plan_image *img)
{
	size_t i, j;

	img->mark = DONE;
	s->remaining--;
	for (i = 0; i < s->plan->nimages; i++) {
		te_plan_image *d = s->plan->images[i];

		for (j = 0; j < d->ndeps; j++)
			if (d->deps[j] == img && --d->waiting == 0 &&
			    d->mark == WAITING)
				d->mark = READY;
	}
}

static void fail(struct sched *s, te_plan_image *img, te_error *err)
{
	if (s->failed) {
		te_log_emit(&s->log, TE_LOG_INFO, "image %s: stopped",
		            img->name);
		return;
	}
	s->failed = true;
	atomic_store(&s->cancel, 1);
	s->err = *err;
	if (!strstr(s->err.msg, "image \""))
		te_error_wrap(&s->err, "image \"%s\"", img->name);
	te_log_emit(&s->log, TE_LOG_ERROR, "image %s: failed", img->name);
}

static void *worker(void *arg)
{
	struct sched *s = arg;
	te_plan_image *img;
	te_error err;
	int rc;

	pthread_mutex_lock(&s->mu);
	while (!s->failed && s->remaining) {
		img = next_ready(s);
		if (!img) {
			pthread_cond_wait(&s->cv, &s->mu);
			continue;
		}
		img->mark = RUNNING;
		pthread_mutex_unlock(&s->mu);
		te_error_clear(&err);
		rc = run_image(s, img, &err);
		pthread_mutex_lock(&s->mu);
		if (rc < 0)
			fail(s, img, &err);
		else
			finish(s, img);
		pthread_cond_broadcast(&s->cv);
	}
	pthread_mutex_unlock(&s->mu);
	return NULL;
}

static size_t thread_count(const struct sched *s)
{
	int p = s->opts->parallel;
	size_t n = p == 0  ? TE_SCHEDULE_PARALLEL_DEFAULT
	           : p < 0 ? TE_SCHEDULE_PARALLEL_MAX
	                   : (size_t)p;

	return n < s->remaining ? n : s->remaining;
}

static int start_workers(struct sched *s, te_error *err)
{
	pthread_t *threads;
	size_t i, n = thread_count(s), started = 0;
	int rc = 0, e;

	threads = calloc(n + 1, sizeof(*threads));
	if (!threads)
		return te_error_set(err, TE_ENOMEM, "out of memory");
	for (i = 0; i < n; i++) {
		if ((e = pthread_create(&threads[i], NULL, worker, s)) != 0) {
			rc = te_error_set_errno(err, TE_EIO, e,
			                        "starting a build thread");
			break;
		}
		started++;
	}
	if (started == 0) {
		free(threads);
		return rc;
	}
	/* Fewer threads than asked still finish the plan. */
	if (rc < 0) {
		te_error_clear(err);
		rc = 0;
	}
	for (i = 0; i < started; i++)
		pthread_join(threads[i], NULL);
	free(threads);
	return rc;
}

int te_schedule_run(te_plan *plan, const te_schedule_opts *opts, te_error *err)
{
	struct sched s;
	int rc;

	if (!plan->sealed || !opts->lookup)
		return te_error_set(err, TE_EINVALID,
		                    "schedule: the plan is not sealed or there "
		                    "is no lookup");
	if (opts->parallel < -1 || opts->parallel > TE_SCHEDULE_PARALLEL_MAX)
		return te_error_set(err, TE_EINVALID,
		                    "parallel tasks limit %d out of range",
		                    opts->parallel);
	memset(&s, 0, sizeof(s));
	s.plan = plan;
	s.opts = opts;
	s.log.fn = locked_log;
	s.log.payload = &s;
	atomic_init(&s.cancel, 0);
	pthread_mutex_init(&s.mu, NULL);
	pthread_cond_init(&s.cv, NULL);
	pthread_mutex_init(&s.lookup, NULL);
	pthread_mutex_init(&s.logmu, NULL);
	init_states(&s);
	rc = s.remaining ? start_workers(&s, err) : 0;
	if (rc == 0 && s.failed) {
		*err = s.err;
		rc = s.err.code < 0 ? s.err.code : TE_ERROR;
	}
	pthread_mutex_destroy(&s.mu);
	pthread_cond_destroy(&s.cv);
	pthread_mutex_destroy(&s.lookup);
	pthread_mutex_destroy(&s.logmu);
	return rc;
}

int te_schedule_parallel_parse(int *out, const char *text, te_error *err)
{
	char *end = NULL;
	long v;

	*out = 0;
	if (text && strcmp(text, "-1") == 0) {
		*out = -1;
		return 0;
	}
	if (text && *text >= '1' && *text <= '9') {
		v = strtol(text, &end, 10);
		if (*end == '\0' && v <= TE_SCHEDULE_PARALLEL_MAX) {
			*out = (int)v;
			return 0;
		}
	}
	return te_error_set(err, TE_EINVALID,
	                    "invalid parallel tasks limit \"%.32s\": use -1 "
	                    "(no limit) or 1-%d",
	                    text ? text : "", TE_SCHEDULE_PARALLEL_MAX);
}
