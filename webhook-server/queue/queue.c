/*
 * queue.c - the job queue's interface (queue.h): each call goes to the
 * driver the queue was opened with (driver.h); what is the same for every
 * driver (a submit is submit_nowait + wait, tickets, lists) is here.
 */
#include "queue/driver.h"
#include "queue/queue.h"

#include <pthread.h>
#include <stdlib.h>
#include <string.h>

#include "tagexport/buf.h"

struct ts_queue_lock {
	ts_queue *q;
	char *key;  /* repo "\n" tag */
	void *held; /* the driver's; NULL for a local lock */
};

/* Content tags locked by drivers without a shared lock: this process's
 * holders, a short list (one entry per running build). */
static pthread_mutex_t local_mu = PTHREAD_MUTEX_INITIALIZER;
static pthread_cond_t local_cv = PTHREAD_COND_INITIALIZER;
static te_strvec local_held = TE_STRVEC_INIT;

const char *ts_queue_driver_name(const ts_queue *q)
{
	return q->ops->name;
}

int ts_queue_set_instance(ts_queue *q, const char *instance, te_error *err)
{
	size_t i, n = strlen(instance);

	for (i = 0; i < n; i++)
		if (!strchr(
		        "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ"
		        "0123456789._:-[]",
		        instance[i]))
			break;
	if (n == 0 || n > TS_QUEUE_INSTANCE_MAX || i < n)
		return te_error_set(err, TE_EINVALID,
		                    "queue: an instance name is 1..%d of "
		                    "[A-Za-z0-9._:-] and brackets",
		                    TS_QUEUE_INSTANCE_MAX);
	memcpy(q->instance, instance, n + 1);
	return 0;
}

void ts_queue_free(ts_queue *q)
{
	if (q)
		q->ops->free(q);
}

size_t ts_queue_corrupt_count(ts_queue *q)
{
	return q->ops->corrupt_count(q);
}

int ts_queue_submit_nowait(char id_out[TS_JOB_ID_MAX],
                           ts_submit_outcome *outcome, ts_queue_ticket *ticket,
                           ts_queue *q, const ts_job_request *req, int64_t now,
                           te_error *err)
{
	return q->ops->submit_nowait(id_out, outcome, ticket, q, req, now, err);
}

int ts_queue_wait(ts_queue *q, const ts_queue_ticket *ticket, te_error *err)
{
	return q->ops->wait(q, ticket, err);
}

int ts_queue_submit(char id_out[TS_JOB_ID_MAX], ts_submit_outcome *outcome,
                    ts_queue *q, const ts_job_request *req, int64_t now,
                    te_error *err)
{
	ts_queue_ticket ticket = {0, 0, 0, 0};
	int rc;

	rc = ts_queue_submit_nowait(id_out, outcome, &ticket, q, req, now, err);
	if (rc == 0)
		rc = ts_queue_wait(q, &ticket, err);
	return rc;
}

void ts_queue_ticket_merge(ts_queue_ticket *into, const ts_queue_ticket *t)
{
	if (t->journal_gen > into->journal_gen)
		into->journal_gen = t->journal_gen;
	if (t->dir_gen > into->dir_gen)
		into->dir_gen = t->dir_gen;
	if (t->batch_first &&
	    (!into->batch_first || t->batch_first < into->batch_first))
		into->batch_first = t->batch_first;
	if (t->batch_last > into->batch_last)
		into->batch_last = t->batch_last;
}

int ts_queue_claim(ts_job **out, ts_queue *q, int64_t now, te_error *err)
{
	return q->ops->claim(out, q, now, err);
}

int ts_queue_finish(ts_queue *q, const char *id, bool success,
                    const char *error, const te_strvec *results,
                    const char *log, int64_t retry_at, int64_t now,
                    te_error *err)
{
	return q->ops->finish(q, id, success, error, results, log, retry_at,
	                      now, err);
}

int ts_queue_requeue(ts_queue *q, const char *id, int64_t now, te_error *err)
{
	return q->ops->requeue(q, id, now, err);
}

int ts_queue_retry(ts_queue *q, const char *id, int64_t now, te_error *err)
{
	return q->ops->retry(q, id, now, err);
}

int ts_queue_get(ts_job **out, ts_queue *q, const char *id, te_error *err)
{
	return q->ops->get(out, q, id, err);
}

int ts_queue_find(char id_out[TS_JOB_ID_MAX], bool *found, ts_queue *q,
                  const char *project, const char *tag, const char *commit,
                  te_error *err)
{
	return q->ops->find(id_out, found, q, project, tag, commit, err);
}

int ts_queue_state(ts_job_state *out, ts_queue *q, const char *id,
                   te_error *err)
{
	return q->ops->state(out, q, id, err);
}

int ts_queue_list(ts_job ***out, size_t *count, ts_queue *q, size_t limit,
                  te_error *err)
{
	return q->ops->list(out, count, q, limit, err);
}

void ts_queue_list_free(ts_job **jobs, size_t count)
{
	size_t i;

	if (!jobs)
		return;
	for (i = 0; i < count; i++)
		ts_job_free(jobs[i]);
	free(jobs);
}

void ts_queue_counts(size_t counts[4], ts_queue *q)
{
	q->ops->counts(counts, q);
}

int ts_queue_prune(size_t *removed, ts_queue *q, int64_t before, te_error *err)
{
	return q->ops->prune(removed, q, before, err);
}

int ts_queue_health(ts_queue *q, te_error *err)
{
	return q->ops->health ? q->ops->health(q, err) : 0;
}

void ts_queue_set_wake(ts_queue *q, void (*fn)(void *), void *payload)
{
	if (q->ops->set_wake)
		q->ops->set_wake(q, fn, payload);
}

static int local_lock(const char *key, te_error *err)
{
	int rc;

	pthread_mutex_lock(&local_mu);
	while (te_strvec_contains(&local_held, key))
		pthread_cond_wait(&local_cv, &local_mu);
	rc = te_strvec_push(&local_held, key, err);
	pthread_mutex_unlock(&local_mu);
	return rc;
}

static void local_unlock(const char *key)
{
	size_t i;

	pthread_mutex_lock(&local_mu);
	for (i = 0; i < local_held.count; i++)
		if (!strcmp(local_held.items[i], key))
			break;
	if (i < local_held.count) {
		free(local_held.items[i]);
		local_held.items[i] = local_held.items[--local_held.count];
		local_held.items[local_held.count] = NULL;
	}
	pthread_cond_broadcast(&local_cv);
	pthread_mutex_unlock(&local_mu);
}

int ts_queue_content_lock(ts_queue_lock **out, ts_queue *q, const char *repo,
                          const char *tag, te_error *err)
{
	te_buf key = TE_BUF_INIT(8192);
	ts_queue_lock *l;
	int rc;

	*out = NULL;
	if (!(l = calloc(1, sizeof(*l))))
		return te_error_set(err, TE_ENOMEM, "queue: out of memory");
	l->q = q;
	if ((rc = te_buf_printf(&key, err, "%s\n%s", repo, tag)) < 0)
		goto done;
	l->key = te_buf_detach(&key);
	rc = q->ops->lock ? q->ops->lock(&l->held, q, l->key, err)
	                  : local_lock(l->key, err);
done:
	te_buf_dispose(&key);
	if (rc < 0) {
		free(l->key);
		free(l);
		return rc;
	}
	*out = l;
	return 0;
}

void ts_queue_content_unlock(ts_queue_lock *l)
{
	if (!l)
		return;
	if (l->q->ops->lock)
		l->q->ops->unlock(l->q, l->held);
	else
		local_unlock(l->key);
	free(l->key);
	free(l);
}
