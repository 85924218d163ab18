/*
 * status.h - commit statuses on the forge: the tagged commit shows whether
 * its export is queued, running, done or failed.
 *
 *   GitHub          POST {api}/repos/{repository}/statuses/{sha}
 *                   Authorization: Bearer; pending -> success | failure
 *                   https://docs.github.com/en/rest/commits/statuses
 *   GitLab          POST {api}/projects/{url-encoded path}/statuses/{sha}
 *                   PRIVATE-TOKEN; pending -> running -> success | failed,
 *                   name = context, ref = the tag
 *                   https://docs.gitlab.com/api/commits/#set-the-pipeline-status-of-a-commit
 *   Gitea, Forgejo  POST {api}/repos/{repository}/statuses/{sha}
 *                   Authorization: token; as GitHub
 *                   https://gitea.com/api/swagger#/repository/repoCreateStatus
 *
 * Two halves: ts_status_msg_new builds one request (URL, auth header, JSON
 * body) from the project's status section, pure and unit-tested; the
 * sender (ts_status_start) delivers them from its own threads, so that a
 * slow or failing forge never fails or delays an export:
 *  1. ts_status_post never waits for the network: it appends to the job's
 *     queue in memory and returns.
 *  2. The statuses of one job are sent in the order they were posted, one
 *     at a time; different jobs go side by side (TS_STATUS_THREADS).
 *  3. A try that fails with a network error, 408, 429 or 5xx but 501/505
 *     (or 403 with Retry-After: GitHub's secondary rate limit) is tried
 *     again after ts_status_retry_delay (the core's te_retry_decide with
 *     this sender's bounds), at most TS_STATUS_TRIES tries; any other
 *     answer ends it.  Each try is bounded by libcurl timeouts.
 *  4. The token is only in the request's header: log lines name the
 *     forge, repository, commit, state and HTTP status, never the token.
 *  5. Nothing is durable: statuses not delivered at shutdown are dropped
 *     (a job requeued by a restart posts "pending" again when it runs).
 */
#ifndef TS_STATUS_H
#define TS_STATUS_H

#include <stdbool.h>
#include <stddef.h>

#include "config.h"
#include "tagexport/error.h"

typedef enum {
	TS_STATUS_QUEUED = 0,
	TS_STATUS_RUNNING = 1,
	TS_STATUS_SUCCEEDED = 2,
	TS_STATUS_FAILED = 3
} ts_status_event;

#define TS_STATUS_TRIES 5
#define TS_STATUS_THREADS 4
/* GitHub refuses longer descriptions (422). */
#define TS_STATUS_DESCRIPTION_MAX 140

/* The forge's word for ev: "pending", "running", "success", "failure"
 * or "failed".  Static. */
const char *ts_status_state(te_forge forge, ts_status_event ev);

/* What happened, in one line of at most TS_STATUS_DESCRIPTION_MAX bytes
 * (controls become spaces; a line that is not UTF-8 keeps its ASCII, the
 * other bytes become '?'): "export
 * queued", "export running (attempt 2 of 5)", "exported 3 images", or for
 * a failure the first line of error; a longer one keeps its first two
 * "context: " parts ("image \"api\": buildah build failed (exit 1)"),
 * else is cut on a character boundary. */
void ts_status_describe(char out[TS_STATUS_DESCRIPTION_MAX + 1],
                        ts_status_event ev, int attempt, int max_attempts,
                        size_t nimages, const char *error);

/* One status of one job (strings borrowed for the call). */
struct ts_status_info {
	const char *job_id;
	const char *project;
	const char *tag;
	const char *commit; /* 40 hex */
	ts_status_event event;
	int attempt, max_attempts; /* running: "attempt 2 of 5" */
	size_t nimages;            /* succeeded */
	const char *error;         /* failed */
};

/* One request, self-contained: it holds no reference to the config. */
struct ts_status_msg {
	te_forge forge;
	ts_status_event event;
	const char *state; /* static, ts_status_state */
	char *url;
	char *auth; /* "Name: value" with the token: never logged */
	char *body; /* JSON */
	char *repository;
	char commit[41];
	char description[TS_STATUS_DESCRIPTION_MAX + 1];
};

/* Build the request for info on pr's forge; public_url (may be NULL)
 * makes target_url <public_url>/jobs/<job id>.  The caller frees *out
 * with ts_status_msg_free.  TE_EINVALID for a commit that is not 40 hex
 * or a project without a status section. */
int ts_status_msg_new(struct ts_status_msg **out, const te_project *pr,
                      const char *public_url, const struct ts_status_info *info,
                      te_error *err);
/* NULL-safe; wipes the token. */
void ts_status_msg_free(struct ts_status_msg *m);

/* Seconds to wait before the next try after try number `tries` (1-based)
 * ended with http_status (0: no answer, a network error or a timeout) and
 * retry_after seconds (0: none); -1 to give up. */
int ts_status_retry_delay(int tries, long http_status, long retry_after);

/* ---- the sender ---------------------------------------------------------- */
struct ts_status;

int ts_status_start(struct ts_status **out, te_error *err);

/*
 * Queue info for its project in cfg (both borrowed for the call; a no-op
 * when the project has no status section or st is NULL).  Never blocks on the
 * network; a status that cannot be built is logged and dropped.  A "queued"
 * posted after the job's "running" is dropped (a worker may claim a job before
 * its submitter gets here), and so is a GitLab "running" right after "running"
 * (a retry: GitLab has no running -> running transition).
 */
void ts_status_post(struct ts_status *st, const struct ts_config *cfg,
                    const struct ts_status_info *info);

/* Send what is due for at most drain seconds (no more retries), then stop
 * the threads and free st; what is left is dropped and counted in the
 * log.  NULL-safe. */
void ts_status_stop(struct ts_status *st, unsigned int drain);

#endif
