/*
 * queue.h - the durable job queue of tagexport-server.
 *
 * Invariants:
 *  1. te_queue_submit returns only after the job is on disk (file written,
 *     fsync'd, renamed into place, directory fsync'd): an accepted job
 *     survives SIGKILL and power loss.  Concurrent submitters share one
 *     directory fsync (group commit) so throughput does not collapse.
 *  2. A job file is replaced atomically (write temp, fsync, rename); a
 *     reader never sees half a job.
 *  3. On open, jobs found "running" were interrupted: they go back to
 *     "queued" with their attempt count kept, and run again.
 *  4. The same delivery id, or the same project + tag + commit, maps to
 *     the existing job: submitting twice never queues twice.
 * States: queued -> running -> succeeded | failed; failed jobs may be
 * retried (back to queued).  All functions are thread-safe.
 */
#ifndef TAGEXPORT_QUEUE_H
#define TAGEXPORT_QUEUE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "tagexport/buf.h"
#include "tagexport/error.h"

#define TE_JOB_ID_MAX 40
#define TE_JOB_LOG_MAX (64 * 1024)

typedef enum {
	TE_JOB_QUEUED = 0,
	TE_JOB_RUNNING = 1,
	TE_JOB_SUCCEEDED = 2,
	TE_JOB_FAILED = 3
} te_job_state;

const char *te_job_state_str(te_job_state state);

/* What a trigger (webhook, API, hook) asks for. */
typedef struct te_job_request {
	const char *project;     /* configured project name */
	const char *tag;         /* git tag name, e.g. "v1.2.0" */
	const char *commit;      /* 40 hex commit the forge reported */
	const char *delivery_id; /* forge delivery id for dedupe; may be NULL */
	const char *source; /* "github", "gitlab", "gitea", "api", "hook" */
} te_job_request;

/* A snapshot of a job; owned by the caller, free with te_job_free. */
typedef struct te_job {
	char id[TE_JOB_ID_MAX];
	char *project;
	char *tag;
	char commit[41];
	char *delivery_id;
	char *source;
	te_job_state state;
	int attempts;
	int64_t created_at; /* unix seconds */
	int64_t updated_at;
	int64_t not_before; /* earliest time to run (retry back-off) */
	char *error;        /* last error, NULL when none */
	te_strvec results;  /* "REF@sha256:..." of a successful export */
	char *log;          /* bounded job log (TE_JOB_LOG_MAX) */
} te_job;

void te_job_free(te_job *job);

typedef struct te_queue te_queue;

/* dir is created (0700) if missing; existing jobs are loaded.  Job files
 * live in <dir>/jobs/<id>.json; a file that cannot be read or validated
 * does not stop start-up: it is moved to <dir>/corrupt/ (see
 * te_queue_corrupt_count). */
int te_queue_open(te_queue **out, const char *dir, te_error *err);

/* Number of job files moved to <dir>/corrupt/ by te_queue_open (for the
 * caller to log). */
size_t te_queue_corrupt_count(te_queue *q);
void te_queue_free(te_queue *q);

/* Durable submit.  *existed tells whether an existing job was returned. */
int te_queue_submit(char id_out[TE_JOB_ID_MAX], bool *existed, te_queue *q,
                    const te_job_request *req, int64_t now, te_error *err);

/* Take the oldest queued job whose not_before <= now and mark it running
 * (durably, attempts + 1).  *out is NULL when none is runnable. */
int te_queue_claim(te_job **out, te_queue *q, int64_t now, te_error *err);

/* Record the outcome of a claimed job.  retry_at > 0 with a failure puts
 * it back to queued with not_before = retry_at (transient errors). */
int te_queue_finish(te_queue *q, const char *id, bool success,
                    const char *error, const te_strvec *results,
                    const char *log, int64_t retry_at, int64_t now,
                    te_error *err);

/* Put a running job back to queued without counting a failure (shutdown). */
int te_queue_requeue(te_queue *q, const char *id, int64_t now, te_error *err);

/* Failed or succeeded job -> queued again (API retry). TE_ENOTFOUND. */
int te_queue_retry(te_queue *q, const char *id, int64_t now, te_error *err);

int te_queue_get(te_job **out, te_queue *q, const char *id, te_error *err);

/* Snapshot of all jobs, newest first, at most limit (0 = all). */
int te_queue_list(te_job ***out, size_t *count, te_queue *q, size_t limit,
                  te_error *err);
void te_queue_list_free(te_job **jobs, size_t count);

/* Number of jobs per state (array indexed by te_job_state). */
void te_queue_counts(size_t counts[4], te_queue *q);

#endif
