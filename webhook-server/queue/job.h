/*
 * job.h - one job of the queue: validation of its fields, its
 * copies, and its JSON form (the job file and the journal line).  Internal
 * to the queue (the drivers); ts_job itself is public (queue/queue.h).
 *
 * Ownership: every ts_job filled here owns its strings; dispose it with
 * ts_job__dispose (or ts_job_free for a heap one).
 */
#ifndef TS_QUEUE_JOB_H
#define TS_QUEUE_JOB_H

#include <stdbool.h>
#include <stddef.h>

#include "tagexport/error.h"
#include "queue/queue.h"

#define TS_JOB_FIELD_MAX 256    /* project, tag, delivery id, source */
#define TS_JOB_ERROR_MAX 4096   /* job error message */
#define TS_JOB_RESULT_MAX 1024  /* one "REF@sha256:..." */
#define TS_JOB_RESULTS_MAX 1024 /* number of results */
#define TS_JOB_RUNNERS_MAX 1000 /* runners kept: one per attempt */

/* A request field: 1..TS_JOB_FIELD_MAX bytes of UTF-8 without control
 * characters. */
bool ts_job__field_valid(const char *s);
/* 40 hex digits, either case. */
bool ts_job__commit_valid(const char *s);
/* A submit's request: TE_EINVALID naming the bad field (queue.h
 * ts_queue_submit). */
int ts_job__request_valid(const ts_job_request *req, te_error *err);
/* The 40 hex digits of commit (valid) in lower case: how jobs keep and
 * compare commits. */
void ts_job__lower_commit(char out[41], const char *commit);
/* A job id as the queue makes them: "<10 digits>-<8 lowercase hex>". */
bool ts_job__id_valid(const char *s);

/*
 * Copy s[0..len) into a heap string that jansson accepts: invalid UTF-8,
 * NUL and control characters other than \n and \t become '?'.  With
 * max > 0 and len > max, keep the last bytes (a log's tail matters most)
 * behind "[log truncated]" so the result fits in max bytes.  NULL (err
 * set) when out of memory.
 */
char *ts_job__clean_text(const char *s, size_t len, size_t max, te_error *err);

void ts_job__dispose(ts_job *job);
/* *out = a copy of s, or NULL for NULL. */
int ts_job__dup_str(char **out, const char *s, te_error *err);
/* Deep copy src into the zeroed dst; dst is left disposable on failure. */
int ts_job__copy(ts_job *dst, const ts_job *src, te_error *err);
/* Append instance (a copy) to job's runners, the oldest dropped beyond
 * TS_JOB_RUNNERS_MAX; NULL or "" adds nothing. */
int ts_job__add_runner(ts_job *job, const char *instance, te_error *err);
/* Forget the last runner (an attempt given back). */
void ts_job__drop_runner(ts_job *job);
/* State changes both drivers make on a copy of a job (then write it):
 * requeued: back to queued, runnable at once (retry, a failed job
 * delivered again); claimed: running, one more attempt, instance its
 * runner; given_back: the attempt of a claim returned (shutdown);
 * finish: the outcome of a run (queue.h ts_queue_finish). */
void ts_job__requeued(ts_job *next, int64_t now);
int ts_job__claimed(ts_job *next, int64_t now, const char *instance,
                    te_error *err);
void ts_job__given_back(ts_job *next, int64_t now);
int ts_job__finish(ts_job *next, bool success, const char *error,
                   const te_strvec *results, const char *log, int64_t retry_at,
                   int64_t now, te_error *err);
/* A heap deep copy (ts_job_free). */
int ts_job__dup(ts_job **out, const ts_job *src, te_error *err);

/* Serialize job to one line of compact JSON, a heap string (free()),
 * without "\n". */
int ts_job__to_json(char **out, size_t *len, const ts_job *job, te_error *err);
/* Parse and validate one job file's content (or journal line) into the
 * zeroed job; expect_id is the id its file name gives, NULL when there is
 * none (the id must then be a valid job id).  TE_EINVALID for anything
 * that is not a valid job of this version. */
int ts_job__from_json(ts_job *job, const char *data, size_t len,
                      const char *expect_id, te_error *err);

#endif
