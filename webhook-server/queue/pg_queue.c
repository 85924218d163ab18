/*
 * pg_queue.c - the postgres driver of the job queue (queue.h): several
 * tagexport-server replicas share one PostgreSQL database.
 *
 * A job is one row of tagexport_jobs: its JSON (job.c, the same document
 * the journal driver writes) in doc, plus the columns the queries need.
 * Dedupe is two UNIQUE constraints (delivery_key, triple_key) and an
 * INSERT .. ON CONFLICT DO NOTHING, never a check-then-insert: the same
 * delivery sent to three replicas at once makes one row.
 *
 * Group commit: submits insert into one open transaction (a "batch", on
 * its own connection) and ts_queue_wait commits it: one WAL flush for all
 * the deliveries that arrived meanwhile, as the journal shares one
 * fdatasync.  A ticket names its batches; wait returns once they are
 * committed, or fails when one of them was rolled back (then none of its
 * deliveries got a 202, and the forge delivers them again).  Rows of an
 * open batch are invisible to other replicas until the commit; an insert
 * of the same key elsewhere waits for it (ON CONFLICT).
 *
 * Claims take the oldest runnable row with FOR UPDATE SKIP LOCKED
 * (https://www.postgresql.org/docs/current/sql-select.html#SQL-FOR-UPDATE-SHARE)
 * and stamp it with this queue's claim token and a lease on the
 * database's clock; a heartbeat thread renews the leases of the rows this
 * queue holds.  A running row whose lease ran out (its replica died) is
 * runnable again: the next claim counts a new attempt, as the journal
 * does for a job it finds running at open.  Finish and requeue check the
 * claim token, so a replica that lost its lease cannot overwrite the run
 * of the replica that took the job over.
 *
 * Submits NOTIFY tagexport_jobs; a listener thread (LISTEN, its own
 * connection) wakes the workers (ts_queue_set_wake), which also poll.
 *
 * The schema is versioned (tagexport_schema) and created or migrated at
 * open inside a transaction holding an advisory lock, so replicas that
 * start together migrate once
 * (https://www.postgresql.org/docs/current/explicit-locking.html#ADVISORY-LOCKS).
 *
 * The DSN may hold a password: it is never part of a message.
 */
#include "queue/driver.h"
#include "queue/job.h"
#include "queue/queue.h"

#include <errno.h>
#include <inttypes.h>
#include <libpq-fe.h>
#include <poll.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include <time.h>

#define PG_POOL 8           /* connections for queue calls */
#define PG_BATCHES 4        /* submit batches open at once */
#define PG_SCHEMA_VERSION 1 /* what this server creates and reads */
#define PG_CHANNEL "tagexport_jobs"
/* pg_advisory_xact_lock key of the migration: "tagexpor" in ASCII */
#define PG_MIGRATE_LOCK "8386091173236985714"
/* The database's clock, whole seconds: leases do not depend on the
 * replicas' clocks agreeing. */
#define PG_NOW "(extract(epoch from clock_timestamp()))::bigint"

static const char schema_v1[] =
    "CREATE TABLE tagexport_jobs ("
    " id text PRIMARY KEY,"
    " delivery_key text UNIQUE,"
    " triple_key text NOT NULL UNIQUE,"
    " state smallint NOT NULL,"
    " created_at bigint NOT NULL,"
    " updated_at bigint NOT NULL,"
    " not_before bigint NOT NULL DEFAULT 0,"
    " lease_until bigint NOT NULL DEFAULT 0,"
    " claim text,"
    " doc text NOT NULL);"
    "CREATE INDEX tagexport_jobs_runnable ON tagexport_jobs"
    " (created_at, id) WHERE state IN (0, 1);"
    "CREATE INDEX tagexport_jobs_finished ON tagexport_jobs"
    " (updated_at) WHERE state IN (2, 3);";

typedef struct pgq {
	struct ts_queue base;
	char *dsn; /* secret */
	unsigned lease;
	char token[33]; /* this queue's claims */
	pthread_mutex_t mu;
	pthread_cond_t cv;      /* a pool slot freed */
	pthread_cond_t stop_cv; /* stopping */
	PGconn *pool[PG_POOL];
	bool busy[PG_POOL];
	bool stopping;
	void (*wake)(void *);
	void *wake_payload;
	pthread_t beat, listener;
	bool threads;
	/* group commit of submits (the file's comment); under bmu */
	pthread_mutex_t bmu;
	pthread_cond_t bcv; /* a batch was resolved or became free */
	struct batch {
		PGconn *c;
		uint64_t gen; /* the batch open in c's transaction; 0 */
		bool busy;    /* a statement of c runs (outside bmu) */
	} batch[PG_BATCHES];
	uint64_t last_gen;   /* batches begun */
	uint64_t failed[16]; /* recent failed batches (ring) */
	size_t nfailed;
} pgq;

static const struct ts_queue_ops pg_ops;

/* ---- connections ----------------------------------------------------------
 */

static void quiet(void *arg, const char *message)
{
	(void)arg;
	(void)message;
}

static PGconn *pg_connect(const char *dsn)
{
	/* The DSN's own settings win (later keywords override earlier
	 * ones); these are defaults. */
	const char *const keys[] = {"connect_timeout", "application_name",
	                            "dbname", NULL};
	const char *const values[] = {"5", "tagexport-server", dsn, NULL};

	PGconn *c = PQconnectdbParams(keys, values, 1);

	/* libpq prints server notices to stderr; the server logs its own */
	if (c)
		PQsetNoticeProcessor(c, quiet, NULL);
	return c;
}

/* libpq's message, first line only, or what. */
static int pg_fail(te_error *err, PGconn *c, const char *what)
{
	const char *m = c ? PQerrorMessage(c) : "";
	size_t n = strcspn(m, "\n");
	bool down = !c || PQstatus(c) != CONNECTION_OK;

	return te_error_set(err, down ? TE_ENET : TE_ERROR, "queue: %s%s: %.*s",
	                    what, down ? " (database unreachable)" : "", (int)n,
	                    n ? m : "no detail");
}

/* A connection of the pool, connected; release it with put_conn. */
static int get_conn(PGconn **out, int *slot, pgq *q, te_error *err)
{
	int i;

	pthread_mutex_lock(&q->mu);
	for (;;) {
		for (i = 0; i < PG_POOL && q->busy[i]; i++)
			;
		if (i < PG_POOL)
			break;
		pthread_cond_wait(&q->cv, &q->mu);
	}
	q->busy[i] = true;
	pthread_mutex_unlock(&q->mu);
	if (q->pool[i] && PQstatus(q->pool[i]) != CONNECTION_OK) {
		PQfinish(q->pool[i]);
		q->pool[i] = NULL;
	}
	if (!q->pool[i])
		q->pool[i] = pg_connect(q->dsn);
	if (!q->pool[i] || PQstatus(q->pool[i]) != CONNECTION_OK) {
		pg_fail(err, q->pool[i], "cannot connect");
		PQfinish(q->pool[i]);
		q->pool[i] = NULL;
		pthread_mutex_lock(&q->mu);
		q->busy[i] = false;
		pthread_cond_signal(&q->cv);
		pthread_mutex_unlock(&q->mu);
		return err->code;
	}
	*out = q->pool[i];
	*slot = i;
	return 0;
}

static void put_conn(pgq *q, int slot)
{
	PGconn *c = q->pool[slot];

	/* A connection left inside a transaction (an error between BEGIN
	 * and COMMIT) is rolled back before the next user gets it. */
	if (c && PQstatus(c) == CONNECTION_OK &&
	    PQtransactionStatus(c) != PQTRANS_IDLE)
		PQclear(PQexec(c, "ROLLBACK"));
	pthread_mutex_lock(&q->mu);
	q->busy[slot] = false;
	pthread_cond_signal(&q->cv);
	pthread_mutex_unlock(&q->mu);
}

static PGresult *pg_exec(PGconn *c, const char *sql, int n,
                         const char *const *params)
{
	/* without parameters, one string may hold several statements */
	return n ? PQexecParams(c, sql, n, NULL, params, NULL, NULL, 0)
	         : PQexec(c, sql);
}

/* Run sql with text parameters (NULL = SQL NULL); the result when its
 * status is want, else NULL with err set. */
static PGresult *pg_run(PGconn *c, const char *sql, int n,
                        const char *const *params, ExecStatusType want,
                        te_error *err)
{
	bool idle = PQtransactionStatus(c) == PQTRANS_IDLE;
	PGresult *r = pg_exec(c, sql, n, params);

	/* A pooled connection the database dropped (a restart) fails its
	 * next statement: outside a transaction, reconnect and run it once
	 * more.  A statement that did commit before the reply was lost is
	 * safe to repeat: submits are INSERT .. ON CONFLICT DO NOTHING. */
	if (!(r && PQresultStatus(r) == want) && idle &&
	    PQstatus(c) == CONNECTION_BAD) {
		PQclear(r);
		PQreset(c);
		r = PQstatus(c) == CONNECTION_OK ? pg_exec(c, sql, n, params)
		                                 : NULL;
	}

	if (r && PQresultStatus(r) == want)
		return r;
	PQclear(r);
	pg_fail(err, c, "database error");
	return NULL;
}

static int pg_cmd(PGconn *c, const char *sql, int n, const char *const *params,
                  te_error *err)
{
	PGresult *r = pg_run(c, sql, n, params, PGRES_COMMAND_OK, err);

	PQclear(r);
	return r ? 0 : err->code;
}

/* ---- schema ------------------------------------------------------------- */

static int migrate(PGconn *c, te_error *err)
{
	PGresult *r = NULL;
	int version, rc;

	if ((rc = pg_cmd(c, "BEGIN", 0, NULL, err)) < 0)
		return rc;
	r = pg_run(c, "SELECT pg_advisory_xact_lock(" PG_MIGRATE_LOCK ")", 0,
	           NULL, PGRES_TUPLES_OK, err);
	if (!r)
		goto fail;
	PQclear(r);
	if ((rc = pg_cmd(c,
	                 "CREATE TABLE IF NOT EXISTS tagexport_schema"
	                 " (version integer NOT NULL)",
	                 0, NULL, err)) < 0)
		goto fail;
	r = pg_run(c, "SELECT coalesce(max(version), 0) FROM tagexport_schema",
	           0, NULL, PGRES_TUPLES_OK, err);
	if (!r)
		goto fail;
	version = atoi(PQgetvalue(r, 0, 0));
	PQclear(r);
	if (version > PG_SCHEMA_VERSION) {
		te_error_set(err, TE_EUNSUPPORTED,
		             "queue: the database's schema is version %d, "
		             "newer than this server's %d",
		             version, PG_SCHEMA_VERSION);
		goto fail;
	}
	if (version < 1 && (pg_cmd(c, schema_v1, 0, NULL, err) < 0 ||
	                    pg_cmd(c, "INSERT INTO tagexport_schema VALUES (1)",
	                           0, NULL, err) < 0))
		goto fail;
	return pg_cmd(c, "COMMIT", 0, NULL, err);
fail:
	PQclear(PQexec(c, "ROLLBACK"));
	return err->code ? err->code : TE_ERROR;
}

/* ---- jobs -----------------------------------------------------------------
 */

static void int_text(char out[24], int64_t v)
{
	snprintf(out, 24, "%" PRId64, v);
}

static int parse_doc(ts_job **out, const char *doc, te_error *err)
{
	ts_job *job = calloc(1, sizeof(*job));
	int rc;

	*out = NULL;
	if (!job)
		return te_error_set(err, TE_ENOMEM, "queue: out of memory");
	rc = ts_job__from_json(job, doc, strlen(doc), NULL, err);
	if (rc < 0) {
		free(job);
		return te_error_wrap(err, "queue: a stored job");
	}
	*out = job;
	return 0;
}

/* Write job back to its row (inside the caller's transaction); leased:
 * this queue's claim with a fresh lease, else none. */
static int write_job(PGconn *c, pgq *q, const ts_job *job, bool leased,
                     te_error *err)
{
	char state[4], updated[24], not_before[24], lease[24];
	char *doc = NULL;
	size_t len;
	int rc;

	if ((rc = ts_job__to_json(&doc, &len, job, err)) < 0)
		return rc;
	snprintf(state, sizeof(state), "%d", (int)job->state);
	int_text(updated, job->updated_at);
	int_text(not_before, job->not_before);
	int_text(lease, leased ? (int64_t)q->lease : -1);
	{
		const char *p[] = {job->id,    state, updated,
		                   not_before, lease, leased ? q->token : NULL,
		                   doc};
		rc = pg_cmd(c,
		            "UPDATE tagexport_jobs SET state = $2,"
		            " updated_at = $3, not_before = $4,"
		            " lease_until = CASE WHEN $5::bigint < 0 THEN 0"
		            " ELSE " PG_NOW " + $5::bigint END,"
		            " claim = $6, doc = $7 WHERE id = $1",
		            7, p, err);
	}
	free(doc);
	return rc;
}

/* What a change does to a job it holds locked: 0 write it, 1 leave it,
 * or an error (the transaction is rolled back). */
typedef int (*change_fn)(ts_job *job, bool ours, void *ctx, te_error *err);

/* Lock job id, let fn change it, write it back; *changed says whether
 * it did.  TE_ENOTFOUND when there is no such job. */
static int change_job(bool *changed, pgq *q, const char *id, change_fn fn,
                      void *ctx, bool leased, bool notify, te_error *err)
{
	const char *p[] = {id, q->token};
	PGresult *r = NULL;
	ts_job *job = NULL;
	PGconn *c;
	int slot, rc;

	*changed = false;
	if ((rc = get_conn(&c, &slot, q, err)) < 0)
		return rc;
	if ((rc = pg_cmd(c, "BEGIN", 0, NULL, err)) < 0)
		goto done;
	r = pg_run(c,
	           "SELECT doc, claim IS NOT DISTINCT FROM $2 FROM"
	           " tagexport_jobs WHERE id = $1 FOR UPDATE",
	           2, p, PGRES_TUPLES_OK, err);
	if (!r) {
		rc = err->code;
		goto done;
	}
	if (PQntuples(r) == 0) {
		rc = te_error_set(err, TE_ENOTFOUND, "queue: no job %s", id);
		goto done;
	}
	if ((rc = parse_doc(&job, PQgetvalue(r, 0, 0), err)) < 0 ||
	    (rc = fn(job, PQgetvalue(r, 0, 1)[0] == 't', ctx, err)) < 0)
		goto done;
	if (rc == 0 && (rc = write_job(c, q, job, leased, err)) == 0)
		*changed = true;
	if (rc >= 0 && *changed && notify)
		rc = pg_cmd(c, "NOTIFY " PG_CHANNEL, 0, NULL, err);
	if (rc >= 0)
		rc = pg_cmd(c, "COMMIT", 0, NULL, err);
done:
	PQclear(r);
	ts_job_free(job);
	put_conn(q, slot);
	return rc < 0 ? rc : 0;
}

/* ---- submit batches -------------------------------------------------------
 */

/* The submit's statements, prepared once per batch connection (parsing
 * and planning them per delivery cost more than running them). */
static const char sql_insert[] =
    "WITH ins AS (INSERT INTO tagexport_jobs (id, delivery_key, triple_key,"
    " state, created_at, updated_at, doc) VALUES ($1, $2, $3, 0, $4, $4, $5)"
    " ON CONFLICT DO NOTHING RETURNING id)"
    " SELECT id, pg_notify('" PG_CHANNEL "', '') FROM ins";
static const char sql_existing[] =
    "SELECT id, state FROM tagexport_jobs WHERE delivery_key = $1"
    " OR triple_key = $2 ORDER BY (delivery_key = $1) IS TRUE DESC LIMIT 1";

static int pg_prepare(PGconn *c, const char *name, const char *sql, int n,
                      te_error *err)
{
	PGresult *r = PQprepare(c, name, sql, n, NULL);
	bool ok = r && PQresultStatus(r) == PGRES_COMMAND_OK;

	PQclear(r);
	return ok ? 0 : pg_fail(err, c, "cannot prepare a statement");
}

static PGresult *pg_run_prepared(PGconn *c, const char *name, int n,
                                 const char *const *params, ExecStatusType want,
                                 te_error *err)
{
	PGresult *r = PQexecPrepared(c, name, n, params, NULL, NULL, 0);

	if (r && PQresultStatus(r) == want)
		return r;
	PQclear(r);
	pg_fail(err, c, "database error");
	return NULL;
}

static bool batch_failed(const pgq *q, uint64_t first, uint64_t last)
{
	size_t i, n = q->nfailed < 16 ? q->nfailed : 16;

	for (i = 0; i < n; i++)
		if (q->failed[i] >= first && q->failed[i] <= last)
			return true;
	return false;
}

/* End b's batch (without bmu; b is busy): committed, or rolled back
 * when ok is false or the commit fails.  Then, under bmu, b is free and
 * its batch resolved. */
static void batch_end(pgq *q, struct batch *b, bool ok)
{
	te_error err = TE_ERROR_INIT;

	if (ok && pg_cmd(b->c, "COMMIT", 0, NULL, &err) < 0)
		ok = false;
	if (!ok && PQstatus(b->c) == CONNECTION_OK)
		PQclear(PQexec(b->c, "ROLLBACK"));
	pthread_mutex_lock(&q->bmu);
	if (!ok)
		q->failed[q->nfailed++ % 16] = b->gen;
	b->gen = 0;
	b->busy = false;
	pthread_cond_broadcast(&q->bcv);
	pthread_mutex_unlock(&q->bmu);
}

/* A free batch connection, marked busy: one with an open batch if there
 * is one (its deliveries share the commit), else any. */
static struct batch *batch_take(pgq *q)
{
	struct batch *b = NULL;
	size_t i;

	pthread_mutex_lock(&q->bmu);
	for (;;) {
		for (i = 0; i < PG_BATCHES; i++)
			if (!q->batch[i].busy &&
			    (!b || (q->batch[i].gen && !b->gen)))
				b = &q->batch[i];
		if (b)
			break;
		pthread_cond_wait(&q->bcv, &q->bmu);
	}
	b->busy = true;
	pthread_mutex_unlock(&q->bmu);
	return b;
}

/* b (taken) connected and inside a batch's transaction. */
static int batch_begin(pgq *q, struct batch *b, te_error *err)
{
	if (b->gen)
		return 0;
	if (b->c && PQstatus(b->c) != CONNECTION_OK) {
		PQfinish(b->c);
		b->c = NULL;
	}
	if (!b->c) {
		b->c = pg_connect(q->dsn);
		if (!b->c || PQstatus(b->c) != CONNECTION_OK ||
		    pg_prepare(b->c, "te_insert", sql_insert, 5, err) < 0 ||
		    pg_prepare(b->c, "te_existing", sql_existing, 2, err) < 0) {
			if (!err->code)
				pg_fail(err, b->c, "cannot connect");
			PQfinish(b->c);
			b->c = NULL;
			return err->code;
		}
	}
	if (pg_cmd(b->c, "BEGIN", 0, NULL, err) < 0)
		return err->code;
	pthread_mutex_lock(&q->bmu);
	b->gen = ++q->last_gen;
	pthread_mutex_unlock(&q->bmu);
	return 0;
}

static void batch_give(pgq *q, struct batch *b)
{
	pthread_mutex_lock(&q->bmu);
	b->busy = false;
	pthread_cond_broadcast(&q->bcv);
	pthread_mutex_unlock(&q->bmu);
}

/* With bmu held: a batch of [first, last] still open, or NULL. */
static struct batch *batch_open_in(pgq *q, uint64_t first, uint64_t last)
{
	size_t i;

	for (i = 0; i < PG_BATCHES; i++)
		if (q->batch[i].gen >= first && q->batch[i].gen <= last &&
		    q->batch[i].gen)
			return &q->batch[i];
	return NULL;
}

/* ---- submit ------------------------------------------------------------- */

static int new_job_doc(char **doc, size_t *len, char id[TS_JOB_ID_MAX],
                       const ts_job_request *req, const char *commit,
                       int64_t now, te_error *err)
{
	ts_job job;
	uint32_t r;
	long long secs = now < 0 ? 0 : now > 9999999999LL ? 9999999999LL : now;
	int rc;

	if (getrandom(&r, sizeof(r), 0) != sizeof(r))
		return te_error_set_errno(err, TE_EIO, errno,
		                          "queue: getrandom failed");
	snprintf(id, TS_JOB_ID_MAX, "%010lld-%08x", secs, (unsigned)r);
	memset(&job, 0, sizeof(job));
	memcpy(job.id, id, TS_JOB_ID_MAX);
	memcpy(job.commit, commit, 41);
	job.state = TS_JOB_QUEUED;
	job.created_at = job.updated_at = now;
	job.project = (char *)req->project;
	job.tag = (char *)req->tag;
	job.delivery_id = req->delivery_id && *req->delivery_id
	                      ? (char *)req->delivery_id
	                      : NULL;
	job.source = (char *)req->source;
	/* borrowed strings: not disposed */
	rc = ts_job__to_json(doc, len, &job, err);
	return rc;
}

static int requeue_failed_fn(ts_job *job, bool ours, void *ctx, te_error *err)
{
	int64_t now = *(const int64_t *)ctx;

	(void)ours;
	(void)err;
	if (job->state != TS_JOB_FAILED)
		return 1;
	ts_job__requeued(job, now);
	return 0;
}

/* The job that took the request's delivery id or triple; found false
 * when it is gone again (pruned in between). */
static int existing(char id_out[TS_JOB_ID_MAX], int *state, bool *found,
                    PGconn *c, const char *dkey, const char *tkey,
                    te_error *err)
{
	const char *p[] = {dkey, tkey};
	PGresult *r;

	r = pg_run_prepared(c, "te_existing", 2, p, PGRES_TUPLES_OK, err);
	if (!r)
		return err->code;
	*found = PQntuples(r) == 1;
	if (*found) {
		snprintf(id_out, TS_JOB_ID_MAX, "%s", PQgetvalue(r, 0, 0));
		*state = atoi(PQgetvalue(r, 0, 1));
	}
	PQclear(r);
	return 0;
}

/* One INSERT .. ON CONFLICT DO NOTHING: a new row, or the existing job's
 * id (*state its state). */
static int insert_or_find(char id_out[TS_JOB_ID_MAX], bool *inserted,
                          int *state, PGconn *c, const ts_job_request *req,
                          const char *commit, const char *dkey,
                          const char *tkey, int64_t now, te_error *err)
{
	char id[TS_JOB_ID_MAX], created[24];
	char *doc = NULL;
	size_t len;
	bool found = false;
	int tries, rc = 0;

	int_text(created, now);
	/* A row that vanished between the conflict and the look-up (pruned)
	 * or an id collision: try again, a few times. */
	for (tries = 0; tries < 4 && !found; tries++) {
		PGresult *r;

		free(doc);
		doc = NULL;
		if ((rc = new_job_doc(&doc, &len, id, req, commit, now, err)) <
		    0)
			break;
		{
			const char *p[] = {id, dkey, tkey, created, doc};
			r = pg_run_prepared(c, "te_insert", 5, p,
			                    PGRES_TUPLES_OK, err);
		}
		if (!r) {
			rc = err->code;
			break;
		}
		*inserted = PQntuples(r) == 1;
		PQclear(r);
		if (*inserted) {
			memcpy(id_out, id, TS_JOB_ID_MAX);
			*state = TS_JOB_QUEUED;
			break;
		}
		if ((rc = existing(id_out, state, &found, c, dkey, tkey, err)) <
		    0)
			break;
	}
	free(doc);
	if (rc == 0 && !*inserted && !found)
		rc = te_error_set(err, TE_ERROR,
		                  "queue: cannot record the job (conflicts "
		                  "kept changing)");
	return rc;
}

static int pg_submit_nowait(char id_out[TS_JOB_ID_MAX],
                            ts_submit_outcome *outcome, ts_queue_ticket *ticket,
                            ts_queue *base, const ts_job_request *req,
                            int64_t now, te_error *err)
{
	pgq *q = (pgq *)base;
	te_buf dkey = TE_BUF_INIT(4 * TS_JOB_FIELD_MAX);
	te_buf tkey = TE_BUF_INIT(4 * TS_JOB_FIELD_MAX);
	char commit[41];
	bool inserted = false, changed;
	struct batch *b;
	int state = 0, rc;

	id_out[0] = '\0';
	*outcome = TS_SUBMIT_NEW;
	memset(ticket, 0, sizeof(*ticket));
	if ((rc = ts_job__request_valid(req, err)) < 0)
		goto done;
	ts_job__lower_commit(commit, req->commit);
	if ((req->delivery_id && *req->delivery_id &&
	     (rc = te_buf_printf(&dkey, err, "%s\n%s", req->project,
	                         req->delivery_id)) < 0) ||
	    (rc = te_buf_printf(&tkey, err, "%s\n%s\n%s", req->project,
	                        req->tag, commit)) < 0)
		goto done;
	b = batch_take(q);
	if ((rc = batch_begin(q, b, err)) < 0) {
		batch_give(q, b);
		goto done;
	}
	rc = insert_or_find(id_out, &inserted, &state, b->c, req, commit,
	                    dkey.len ? dkey.ptr : NULL, tkey.ptr, now, err);
	if (rc < 0) {
		/* the error aborted the transaction: the batch is lost */
		batch_end(q, b, false);
		goto done;
	}
	ticket->batch_first = ticket->batch_last = b->gen;
	batch_give(q, b);
	if (rc < 0 || inserted)
		goto done;
	*outcome = TS_SUBMIT_EXISTING;
	if (state != TS_JOB_FAILED)
		goto done;
	rc = change_job(&changed, q, id_out, requeue_failed_fn, &now, false,
	                true, err);
	if (rc == 0 && changed)
		*outcome = TS_SUBMIT_REQUEUED;
done:
	te_buf_dispose(&dkey);
	te_buf_dispose(&tkey);
	return rc;
}

/* Commit the batches of ticket (the open one by this caller, as the
 * leader of everyone in it), or wait for whoever does. */
static int pg_wait(ts_queue *base, const ts_queue_ticket *ticket, te_error *err)
{
	pgq *q = (pgq *)base;
	struct batch *b;
	int rc = 0;

	if (!ticket->batch_last)
		return 0;
	pthread_mutex_lock(&q->bmu);
	while (
	    (b = batch_open_in(q, ticket->batch_first, ticket->batch_last))) {
		if (b->busy) {
			pthread_cond_wait(&q->bcv, &q->bmu);
			continue;
		}
		b->busy = true;
		pthread_mutex_unlock(&q->bmu);
		batch_end(q, b, true);
		pthread_mutex_lock(&q->bmu);
	}
	if (batch_failed(q, ticket->batch_first, ticket->batch_last))
		rc = te_error_set(err, TE_ENET,
		                  "queue: the jobs were not committed "
		                  "(database error); the forge delivers again");
	pthread_mutex_unlock(&q->bmu);
	return rc;
}

/* ---- claim, finish, requeue, retry ------------------------------------------
 */

static int pg_claim(ts_job **out, ts_queue *base, int64_t now, te_error *err)
{
	pgq *q = (pgq *)base;
	char when[24];
	const char *p[] = {when};
	PGresult *r = NULL;
	ts_job *job = NULL;
	PGconn *c;
	int slot, rc;

	*out = NULL;
	int_text(when, now);
	if ((rc = get_conn(&c, &slot, q, err)) < 0)
		return rc;
	if ((rc = pg_cmd(c, "BEGIN", 0, NULL, err)) < 0)
		goto done;
	r = pg_run(c,
	           "SELECT doc FROM tagexport_jobs WHERE (state = 0 AND"
	           " not_before <= $1) OR (state = 1 AND lease_until < " PG_NOW
	           ") ORDER BY created_at, id LIMIT 1 FOR UPDATE SKIP LOCKED",
	           1, p, PGRES_TUPLES_OK, err);
	if (!r) {
		rc = err->code;
		goto done;
	}
	if (PQntuples(r) == 0) {
		rc = pg_cmd(c, "COMMIT", 0, NULL, err);
		goto done;
	}
	if ((rc = parse_doc(&job, PQgetvalue(r, 0, 0), err)) < 0 ||
	    (rc = ts_job__claimed(job, now, q->base.instance, err)) < 0 ||
	    (rc = write_job(c, q, job, true, err)) < 0 ||
	    (rc = pg_cmd(c, "COMMIT", 0, NULL, err)) < 0)
		goto done;
	*out = job;
	job = NULL;
done:
	PQclear(r);
	ts_job_free(job);
	put_conn(q, slot);
	return rc;
}

/* A running job of this queue's claims. */
static int check_ours(const ts_job *job, bool ours, te_error *err)
{
	if (job->state != TS_JOB_RUNNING || !ours)
		return te_error_set(err, TE_EINVALID,
		                    "queue: job %s is not running here (its "
		                    "lease may have run out)",
		                    job->id);
	return 0;
}

struct finish_ctx {
	bool success;
	const char *error;
	const te_strvec *results;
	const char *log;
	int64_t retry_at, now;
};

static int finish_fn(ts_job *job, bool ours, void *ctx, te_error *err)
{
	const struct finish_ctx *f = ctx;
	int rc = check_ours(job, ours, err);

	if (rc == 0)
		rc = ts_job__finish(job, f->success, f->error, f->results,
		                    f->log, f->retry_at, f->now, err);
	return rc;
}

static int pg_finish(ts_queue *base, const char *id, bool success,
                     const char *error, const te_strvec *results,
                     const char *log, int64_t retry_at, int64_t now,
                     te_error *err)
{
	struct finish_ctx f = {success, error, results, log, retry_at, now};
	bool changed;

	return change_job(&changed, (pgq *)base, id, finish_fn, &f, false,
	                  retry_at > 0 && !success, err);
}

static int requeue_fn(ts_job *job, bool ours, void *ctx, te_error *err)
{
	int rc = check_ours(job, ours, err);

	if (rc == 0)
		ts_job__given_back(job, *(const int64_t *)ctx);
	return rc;
}

static int pg_requeue(ts_queue *base, const char *id, int64_t now,
                      te_error *err)
{
	bool changed;

	return change_job(&changed, (pgq *)base, id, requeue_fn, &now, false,
	                  true, err);
}

static int retry_fn(ts_job *job, bool ours, void *ctx, te_error *err)
{
	(void)ours;
	if (job->state != TS_JOB_FAILED && job->state != TS_JOB_SUCCEEDED)
		return te_error_set(err, TE_EINVALID,
		                    "queue: job %s is %s, not finished",
		                    job->id, ts_job_state_str(job->state));
	ts_job__requeued(job, *(const int64_t *)ctx);
	return 0;
}

static int pg_retry(ts_queue *base, const char *id, int64_t now, te_error *err)
{
	bool changed;

	return change_job(&changed, (pgq *)base, id, retry_fn, &now, false,
	                  true, err);
}

/* ---- reads ----------------------------------------------------------------
 */

/* One query's rows on a pooled connection. */
static PGresult *pg_query(pgq *q, const char *sql, int n, const char *const *p,
                          te_error *err)
{
	PGresult *r;
	PGconn *c;
	int slot;

	if (get_conn(&c, &slot, q, err) < 0)
		return NULL;
	r = pg_run(c, sql, n, p, PGRES_TUPLES_OK, err);
	put_conn(q, slot);
	return r;
}

static int pg_get(ts_job **out, ts_queue *base, const char *id, te_error *err)
{
	const char *p[] = {id};
	PGresult *r;
	int rc;

	*out = NULL;
	r = pg_query((pgq *)base,
	             "SELECT doc FROM tagexport_jobs WHERE id = $1", 1, p, err);
	if (!r)
		return err->code;
	rc = PQntuples(r) == 1
	         ? parse_doc(out, PQgetvalue(r, 0, 0), err)
	         : te_error_set(err, TE_ENOTFOUND, "queue: no job %s", id);
	PQclear(r);
	return rc;
}

static int pg_state(ts_job_state *out, ts_queue *base, const char *id,
                    te_error *err)
{
	const char *p[] = {id};
	PGresult *r;
	int rc = 0;

	r = pg_query((pgq *)base,
	             "SELECT state FROM tagexport_jobs WHERE id = $1", 1, p,
	             err);
	if (!r)
		return err->code;
	if (PQntuples(r) == 1)
		*out = (ts_job_state)atoi(PQgetvalue(r, 0, 0));
	else
		rc = te_error_set(err, TE_ENOTFOUND, "queue: no job %s", id);
	PQclear(r);
	return rc;
}

static int pg_find(char id_out[TS_JOB_ID_MAX], bool *found, ts_queue *base,
                   const char *project, const char *tag, const char *commit,
                   te_error *err)
{
	te_buf key = TE_BUF_INIT(4 * TS_JOB_FIELD_MAX);
	char lc[41];
	PGresult *r = NULL;
	int rc;

	*found = false;
	id_out[0] = '\0';
	if (!commit || !ts_job__commit_valid(commit))
		return te_error_set(err, TE_EINVALID,
		                    "queue: commit must be 40 hex digits");
	ts_job__lower_commit(lc, commit);
	if ((rc = te_buf_printf(&key, err, "%s\n%s\n%s", project, tag, lc)) < 0)
		goto done;
	{
		const char *p[] = {key.ptr};
		r = pg_query((pgq *)base,
		             "SELECT id FROM tagexport_jobs WHERE"
		             " triple_key = $1",
		             1, p, err);
	}
	if (!r) {
		rc = err->code;
		goto done;
	}
	*found = PQntuples(r) == 1;
	if (*found)
		snprintf(id_out, TS_JOB_ID_MAX, "%s", PQgetvalue(r, 0, 0));
done:
	PQclear(r);
	te_buf_dispose(&key);
	return rc;
}

static int pg_list(ts_job ***out, size_t *count, ts_queue *base, size_t limit,
                   te_error *err)
{
	char lim[24];
	const char *p[] = {limit ? lim : NULL};
	ts_job **jobs = NULL;
	PGresult *r;
	size_t n, i;
	int rc = 0;

	*out = NULL;
	*count = 0;
	int_text(lim, (int64_t)limit);
	r = pg_query((pgq *)base,
	             "SELECT doc FROM tagexport_jobs ORDER BY created_at DESC,"
	             " id DESC LIMIT $1::bigint",
	             1, p, err);
	if (!r)
		return err->code;
	n = (size_t)PQntuples(r);
	jobs = calloc(n ? n : 1, sizeof(*jobs));
	if (!jobs)
		rc = te_error_set(err, TE_ENOMEM, "queue: out of memory");
	for (i = 0; rc == 0 && i < n; i++)
		rc = parse_doc(&jobs[i], PQgetvalue(r, (int)i, 0), err);
	PQclear(r);
	if (rc < 0) {
		ts_queue_list_free(jobs, n);
		return rc;
	}
	*out = jobs;
	*count = n;
	return 0;
}

static void pg_counts(size_t counts[4], ts_queue *base)
{
	te_error err = TE_ERROR_INIT;
	PGresult *r;
	int i, s;

	memset(counts, 0, 4 * sizeof(size_t));
	r = pg_query(
	    (pgq *)base,
	    "SELECT state, count(*) FROM tagexport_jobs GROUP BY state", 0,
	    NULL, &err);
	for (i = 0; r && i < PQntuples(r); i++) {
		s = atoi(PQgetvalue(r, i, 0));
		if (s >= 0 && s < 4)
			counts[s] =
			    (size_t)strtoull(PQgetvalue(r, i, 1), NULL, 10);
	}
	PQclear(r);
}

static int pg_prune(size_t *removed, ts_queue *base, int64_t before,
                    te_error *err)
{
	char b[24];
	const char *p[] = {b};
	PGresult *r;

	*removed = 0;
	int_text(b, before);
	r = pg_query((pgq *)base,
	             "WITH d AS (DELETE FROM tagexport_jobs WHERE state IN"
	             " (2, 3) AND updated_at < $1 RETURNING 1)"
	             " SELECT count(*) FROM d",
	             1, p, err);
	if (!r)
		return err->code;
	*removed = (size_t)strtoull(PQgetvalue(r, 0, 0), NULL, 10);
	PQclear(r);
	return 0;
}

static size_t pg_corrupt_count(ts_queue *base)
{
	(void)base;
	return 0;
}

static int pg_health(ts_queue *base, te_error *err)
{
	PGresult *r = pg_query((pgq *)base, "SELECT 1", 0, NULL, err);

	PQclear(r);
	return r ? 0 : err->code;
}

/* ---- heartbeat and listener -------------------------------------------------
 */

/* Sleep up to secs, false once the queue is stopping. */
static bool nap(pgq *q, unsigned secs)
{
	struct timespec until;
	bool go;

	clock_gettime(CLOCK_REALTIME, &until);
	until.tv_sec += secs;
	pthread_mutex_lock(&q->mu);
	while (!q->stopping &&
	       pthread_cond_timedwait(&q->stop_cv, &q->mu, &until) != ETIMEDOUT)
		;
	go = !q->stopping;
	pthread_mutex_unlock(&q->mu);
	return go;
}

/* Renew the leases of this queue's running jobs, a third of a lease
 * apart; a failed renewal is tried again at the next beat. */
static void *heartbeat(void *arg)
{
	pgq *q = arg;
	unsigned every = q->lease / 3 ? q->lease / 3 : 1;
	char lease[24];
	const char *p[] = {lease, q->token};

	int_text(lease, (int64_t)q->lease);
	while (nap(q, every)) {
		te_error err = TE_ERROR_INIT;
		PGconn *c;
		int slot;

		if (get_conn(&c, &slot, q, &err) < 0)
			continue;
		(void)pg_cmd(c,
		             "UPDATE tagexport_jobs SET lease_until = " PG_NOW
		             " + $1::bigint WHERE state = 1 AND claim = $2",
		             2, p, &err);
		put_conn(q, slot);
	}
	return NULL;
}

static void wake_workers(pgq *q)
{
	void (*fn)(void *);
	void *payload;

	pthread_mutex_lock(&q->mu);
	fn = q->wake;
	payload = q->wake_payload;
	pthread_mutex_unlock(&q->mu);
	if (fn)
		fn(payload);
}

/* Drain a LISTEN connection's notifications for up to a second; false
 * when the connection is lost. */
static bool listen_once(pgq *q, PGconn *c)
{
	struct pollfd pfd = {PQsocket(c), POLLIN, 0};
	PGnotify *n;
	bool any = false;

	if (poll(&pfd, 1, 1000) < 0 && errno != EINTR)
		return false;
	if (!PQconsumeInput(c))
		return false;
	while ((n = PQnotifies(c))) {
		any = true;
		PQfreemem(n);
	}
	if (any)
		wake_workers(q);
	return PQstatus(c) == CONNECTION_OK;
}

static bool listen_start(PGconn *c)
{
	PGresult *r;
	bool ok;

	if (!c || PQstatus(c) != CONNECTION_OK)
		return false;
	r = PQexec(c, "LISTEN " PG_CHANNEL);
	ok = PQresultStatus(r) == PGRES_COMMAND_OK;
	PQclear(r);
	return ok;
}

static void *listener(void *arg)
{
	pgq *q = arg;
	PGconn *c = NULL;

	while (nap(q, 0)) {
		if (!c) {
			c = pg_connect(q->dsn);
			if (!listen_start(c)) {
				PQfinish(c);
				c = NULL;
				if (!nap(q, 1))
					break;
				continue;
			}
			/* jobs queued while we were not listening */
			wake_workers(q);
		}
		if (!listen_once(q, c)) {
			PQfinish(c);
			c = NULL;
		}
	}
	PQfinish(c);
	return NULL;
}

static void pg_set_wake(ts_queue *base, void (*fn)(void *), void *payload)
{
	pgq *q = (pgq *)base;

	pthread_mutex_lock(&q->mu);
	q->wake = fn;
	q->wake_payload = payload;
	pthread_mutex_unlock(&q->mu);
}

/* ---- content tag locks ------------------------------------------------ */

/* A session advisory lock on its own connection, held for the length of
 * a build: a replica that dies closes the connection, which releases it
 * (https://www.postgresql.org/docs/current/functions-admin.html#FUNCTIONS-ADVISORY-LOCKS).
 * The key is the database's 64-bit hash of repo "\n" tag. */
static int pg_lock(void **held, ts_queue *base, const char *key, te_error *err)
{
	pgq *q = (pgq *)base;
	const char *p[] = {key};
	PGconn *c = pg_connect(q->dsn);
	PGresult *r;

	*held = NULL;
	if (!c || PQstatus(c) != CONNECTION_OK) {
		pg_fail(err, c, "cannot connect");
		PQfinish(c);
		return err->code;
	}
	r = pg_run(c, "SELECT pg_advisory_lock(hashtextextended($1, 0))", 1, p,
	           PGRES_TUPLES_OK, err);
	if (!r) {
		PQfinish(c);
		return err->code;
	}
	PQclear(r);
	*held = c;
	return 0;
}

static void pg_unlock(ts_queue *base, void *held)
{
	(void)base;
	PQfinish(held); /* ends the session: its advisory locks go */
}

/* ---- open, free -------------------------------------------------------------
 */

static void pg_free(ts_queue *base)
{
	pgq *q = (pgq *)base;
	int i;

	if (!q)
		return;
	if (q->threads) {
		pthread_mutex_lock(&q->mu);
		q->stopping = true;
		pthread_cond_broadcast(&q->stop_cv);
		pthread_mutex_unlock(&q->mu);
		pthread_join(q->beat, NULL);
		pthread_join(q->listener, NULL);
	}
	for (i = 0; i < PG_POOL; i++)
		PQfinish(q->pool[i]);
	/* an open batch without a waiter: nobody got a 202 for it */
	for (i = 0; i < PG_BATCHES; i++)
		PQfinish(q->batch[i].c);
	pthread_cond_destroy(&q->bcv);
	pthread_mutex_destroy(&q->bmu);
	if (q->dsn) {
		explicit_bzero(q->dsn, strlen(q->dsn));
		free(q->dsn);
	}
	pthread_cond_destroy(&q->stop_cv);
	pthread_cond_destroy(&q->cv);
	pthread_mutex_destroy(&q->mu);
	free(q);
}

static int start_threads(pgq *q, te_error *err)
{
	int rc = pthread_create(&q->beat, NULL, heartbeat, q);

	if (rc == 0 &&
	    (rc = pthread_create(&q->listener, NULL, listener, q)) != 0) {
		pthread_mutex_lock(&q->mu);
		q->stopping = true;
		pthread_cond_broadcast(&q->stop_cv);
		pthread_mutex_unlock(&q->mu);
		pthread_join(q->beat, NULL);
	}
	if (rc != 0)
		return te_error_set_errno(err, TE_ERROR, rc,
		                          "queue: cannot start a thread");
	q->threads = true;
	return 0;
}

int ts_queue_open_postgres(ts_queue **out, const char *dsn, unsigned lease,
                           te_error *err)
{
	unsigned char raw[16];
	pgq *q;
	PGconn *c;
	int slot, i, rc;

	*out = NULL;
	if (!dsn || !*dsn || lease == 0)
		return te_error_set(err, TE_EINVALID,
		                    "queue: postgres needs a DSN and a lease");
	if (getrandom(raw, sizeof(raw), 0) != sizeof(raw))
		return te_error_set_errno(err, TE_EIO, errno,
		                          "queue: getrandom failed");
	q = calloc(1, sizeof(*q));
	if (!q)
		return te_error_set(err, TE_ENOMEM, "queue: out of memory");
	q->base.ops = &pg_ops;
	q->lease = lease;
	for (i = 0; i < 16; i++)
		snprintf(q->token + 2 * i, 3, "%02x", raw[i]);
	pthread_mutex_init(&q->mu, NULL);
	pthread_cond_init(&q->cv, NULL);
	pthread_cond_init(&q->stop_cv, NULL);
	pthread_mutex_init(&q->bmu, NULL);
	pthread_cond_init(&q->bcv, NULL);
	if (!(q->dsn = strdup(dsn))) {
		rc = te_error_set(err, TE_ENOMEM, "queue: out of memory");
		goto done;
	}
	if ((rc = get_conn(&c, &slot, q, err)) < 0)
		goto done;
	rc = migrate(c, err);
	put_conn(q, slot);
	if (rc == 0)
		rc = start_threads(q, err);
done:
	if (rc < 0) {
		pg_free(&q->base);
		return te_error_wrap(err, "opening job queue");
	}
	*out = &q->base;
	return 0;
}

static const struct ts_queue_ops pg_ops = {
    .name = "postgres",
    .free = pg_free,
    .corrupt_count = pg_corrupt_count,
    .submit_nowait = pg_submit_nowait,
    .wait = pg_wait,
    .claim = pg_claim,
    .finish = pg_finish,
    .requeue = pg_requeue,
    .retry = pg_retry,
    .get = pg_get,
    .find = pg_find,
    .state = pg_state,
    .list = pg_list,
    .counts = pg_counts,
    .prune = pg_prune,
    .health = pg_health,
    .set_wake = pg_set_wake,
    .lock = pg_lock,
    .unlock = pg_unlock,
};
