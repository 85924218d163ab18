/*
 * server.h - shared state of one tagexport-server process.
 *
 * Threads: MHD's pool answers HTTP (server.c -> intake.c / api.c), N
 * workers run exports (worker.c), a watchdog enforces request deadlines,
 * and main() waits for signals.  Everything reaches this struct through
 * MHD's cls pointers or thread arguments; there are no globals besides
 * the log format.
 */
#ifndef TS_SERVER_H
#define TS_SERVER_H

#include <pthread.h>
#include <stdbool.h>
#include <time.h>

#include "config.h"
#include "forge.h"
#include "metrics.h"
#include "tagexport/buf.h"
#include "queue/queue.h"

struct ts_http;
struct ts_poller;
struct ts_worker;
struct ts_status;

struct ts_server {
	pthread_mutex_t cfg_lock; /* guards cfg (the pointer) */
	struct ts_config *cfg;
	ts_queue *queue;
	struct ts_metrics *metrics;
	struct ts_status *status; /* commit status sender (status.h) */
	time_t started;

	pthread_mutex_t work_lock; /* guards stopping and the workers */
	pthread_cond_t work_cond;  /* new work, or stop */
	pthread_cond_t idle_cond;  /* a worker finished a job */
	bool stopping;
	int nworkers;
	struct ts_worker *workers;

	struct ts_http *http;
	struct ts_poller *poller; /* poll.c */
};

/* The current configuration, with a reference (ts_config_unref it). */
struct ts_config *ts_server_config(struct ts_server *s);
/* Install cfg (takes its reference) and drop the old one. */
void ts_server_set_config(struct ts_server *s, struct ts_config *cfg);

/*
 * The answers that never vary.  The HTTP layer builds each one once, at
 * start, from ts_response_fixed_body, and queues that same response for
 * every request that gets it: no JSON encoding, no allocation.
 */
enum ts_fixed {
	TS_FIXED_NONE = 0,
	TS_FIXED_NOT_FOUND,         /* 404 not found */
	TS_FIXED_UNKNOWN_PROJECT,   /* 404 unknown project */
	TS_FIXED_METHOD,            /* 405 method not allowed */
	TS_FIXED_TOO_LARGE,         /* 413 body too large */
	TS_FIXED_MISSING_SIGNATURE, /* 401 */
	TS_FIXED_BAD_SIGNATURE,     /* 401 */
	TS_FIXED_UNAUTHORIZED,      /* 401 no or wrong bearer token */
	TS_FIXED_BUSY, /* 503 the pending-body budget is spent (server.c) */
	/* 200 {"ignored":...} with the reasons forge*.c and intake.c give */
	TS_FIXED_IGNORED_PING,
	TS_FIXED_IGNORED_CREATE,
	TS_FIXED_IGNORED_EVENT,
	TS_FIXED_IGNORED_BRANCH_PUSH,
	TS_FIXED_IGNORED_BRANCH_CREATED,
	TS_FIXED_IGNORED_TAG_DELETED,
	TS_FIXED_IGNORED_TAG_FILTERED,
	TS_FIXED_COUNT
};

/* An HTTP answer built by the MHD-free handlers. */
struct ts_response {
	unsigned int status;
	const char *content_type; /* static */
	te_buf body;
	enum ts_fixed fixed; /* not NONE: that answer, body left empty */
};

#define TS_RESPONSE_BODY_MAX (16 * 1024 * 1024)

void ts_response_init(struct ts_response *res);
void ts_response_dispose(struct ts_response *res);
/* Empty the body (no write to te_buf's shared empty string: te_buf_clear
 * on a never-grown buffer writes to it from every thread). */
void ts_response_reset(struct ts_response *res);
/* {"error":"<msg>"} with the message JSON-escaped. */
void ts_response_error(struct ts_response *res, unsigned int status,
                       const char *msg);
/* Make res the fixed answer which: status and fixed set, no body. */
void ts_response_fixed(struct ts_response *res, enum ts_fixed which);
/* The status and body of a fixed answer, written out as the equivalent
 * ts_response_error would (for the HTTP layer's start-up). */
void ts_response_fixed_body(struct ts_response *res, enum ts_fixed which);

/*
 * A submit in two steps, so that no HTTP thread waits for the disk:
 * ts_submission_record puts the job in the queue (ts_queue_submit_nowait)
 * and, unless it answered res with an error and returned false, leaves
 * in sub->ticket what must be synced; whoever waits for that ticket
 * (ts_queue_wait, one wait for many submissions) then calls
 * ts_submission_answer with the wait's error (code TE_OK: it worked).  The
 * strings are borrowed until then.
 */
struct ts_submission {
	const te_project *pr;
	const char *tag, *commit, *delivery, *source;
	char key[TE_PROJECT_NAME_MAX + TS_DELIVERY_MAX + 2]; /* delivery id */
	char id[TS_JOB_ID_MAX];
	ts_submit_outcome outcome;
	ts_queue_ticket ticket;
};

bool ts_submission_record(struct ts_response *res, struct ts_server *s,
                          struct ts_submission *sub);
void ts_submission_answer(struct ts_response *res, struct ts_server *s,
                          const struct ts_submission *sub,
                          const te_error *wait);

/* The commit status "queued" for a job just (re)queued (status.h), with
 * the current config; a no-op for projects without a status section. */
void ts_status_queued(struct ts_server *s, const char *id, const char *project,
                      const char *tag, const char *commit);

/* Both steps and the wait (the API): status 202 or 500. */
void ts_submit(struct ts_response *res, struct ts_server *s,
               const te_project *pr, const char *tag, const char *commit,
               const char *delivery, const char *source);

/* POST /hooks/<project> with the whole body received: ts_intake_begin
 * does the CPU work (signature, parsing, matching) for pr, a project of
 * cfg (both borrowed from the caller), and either answers res and
 * returns false, or returns true with job filled (it takes its own
 * reference on cfg) and job->sub recorded; the caller waits for
 * job->sub.ticket and ts_intake_finish answers res and releases job. */
struct ts_intake_job {
	struct ts_config *cfg; /* reference held until finish */
	struct ts_hook_event ev;
	struct ts_submission sub; /* pointing into ev */
};

bool ts_intake_begin(struct ts_response *res, struct ts_server *s,
                     struct ts_config *cfg, const te_project *pr,
                     const struct ts_hook_request *req,
                     struct ts_intake_job *job);
void ts_intake_finish(struct ts_response *res, struct ts_server *s,
                      struct ts_intake_job *job, const te_error *wait);

/* Everything under /api/v1/; authorization may be NULL. */
void ts_api(struct ts_response *res, struct ts_server *s, const char *method,
            const char *url, const char *authorization, const char *body,
            size_t body_len);

/* pages.c: GET /jobs and /jobs/<id> (HTML).  401 when neither ui_public
 * nor Basic credentials with the admin token allow it: the HTTP layer
 * then asks for Basic credentials. */
void ts_pages(struct ts_response *res, struct ts_server *s, const char *url,
              const char *authorization);

int ts_workers_start(struct ts_server *s, int n, te_error *err);
void ts_workers_wake(struct ts_server *s);
/* Stop claiming; wait up to timeout seconds for running jobs, requeue
 * the ones still running after that.  False when a worker was left
 * running (then nothing it uses may be freed). */
bool ts_workers_stop(struct ts_server *s, unsigned int timeout);
/* The log so far of job id while a worker runs it (a copy: free it);
 * NULL when none does. */
char *ts_workers_log(struct ts_server *s, const char *id);
/* Frees the workers array after a true ts_workers_stop. */
void ts_workers_free(struct ts_server *s);

/* poll.c: the tag poller thread (projects with a poll_interval), and one
 * poll of pr now (POST /api/v1/projects/<name>/poll): 200 with the jobs
 * it queued, 502 when the remote cannot be listed, 409 while another
 * poll runs.  Stop it after the HTTP layer (which may be polling) and
 * before the workers; false when a poll outlived timeout seconds (5 at
 * least): then nothing it uses may be freed. */
int ts_poller_start(struct ts_server *s, te_error *err);
bool ts_poller_stop(struct ts_server *s, unsigned int timeout);
void ts_poll_now(struct ts_response *res, struct ts_server *s,
                 const struct ts_config *cfg, const te_project *pr);

int ts_http_start(struct ts_server *s, const char *port_file, te_error *err);
/* Stop accepting, finish in-flight requests (bounded), close. */
void ts_http_stop(struct ts_server *s);

#endif
