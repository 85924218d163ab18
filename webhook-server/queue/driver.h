/*
 * driver.h - what a queue driver implements (queue.h is what the server
 * calls).  A driver's queue struct starts with a struct ts_queue whose ops
 * point to its table; queue.c forwards each ts_queue_* call there.  Every
 * op keeps the contract of the ts_queue_* function of the same name
 * (queue.h), including thread safety.
 *
 * Drivers: journal (journal_queue.c, one machine) and postgres
 * (pg_queue.c, several replicas on one database).
 */
#ifndef TS_QUEUE_DRIVER_H
#define TS_QUEUE_DRIVER_H

#include "queue/queue.h"

struct ts_queue_ops {
	const char *name; /* "journal", "postgres" */
	void (*free)(ts_queue *q);
	size_t (*corrupt_count)(ts_queue *q);
	int (*submit_nowait)(char id_out[TS_JOB_ID_MAX],
	                     ts_submit_outcome *outcome,
	                     ts_queue_ticket *ticket, ts_queue *q,
	                     const ts_job_request *req, int64_t now,
	                     te_error *err);
	int (*wait)(ts_queue *q, const ts_queue_ticket *ticket, te_error *err);
	int (*claim)(ts_job **out, ts_queue *q, int64_t now, te_error *err);
	int (*finish)(ts_queue *q, const char *id, bool success,
	              const char *error, const te_strvec *results,
	              const char *log, int64_t retry_at, int64_t now,
	              te_error *err);
	int (*requeue)(ts_queue *q, const char *id, int64_t now, te_error *err);
	int (*retry)(ts_queue *q, const char *id, int64_t now, te_error *err);
	int (*get)(ts_job **out, ts_queue *q, const char *id, te_error *err);
	int (*find)(char id_out[TS_JOB_ID_MAX], bool *found, ts_queue *q,
	            const char *project, const char *tag, const char *commit,
	            te_error *err);
	int (*state)(ts_job_state *out, ts_queue *q, const char *id,
	             te_error *err);
	int (*list)(ts_job ***out, size_t *count, ts_queue *q, size_t limit,
	            te_error *err);
	void (*counts)(size_t counts[4], ts_queue *q);
	int (*prune)(size_t *removed, ts_queue *q, int64_t before,
	             te_error *err);
	/* optional (NULL: always healthy; no wakes from elsewhere) */
	int (*health)(ts_queue *q, te_error *err);
	void (*set_wake)(ts_queue *q, void (*fn)(void *), void *payload);
	/* optional (NULL: a lock within this process, queue.c): hold key
	 * (repo "\n" tag) across replicas; *held is the driver's */
	int (*lock)(void **held, ts_queue *q, const char *key, te_error *err);
	void (*unlock)(ts_queue *q, void *held);
};

struct ts_queue {
	const struct ts_queue_ops *ops;
	char instance[TS_QUEUE_INSTANCE_MAX + 1]; /* "": none; the runner */
};

#endif
