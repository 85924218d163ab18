/*
 * schedule.h - build a sealed plan (plan.h): images side by side,
 * dependencies first, each stage looked up in the stages repo before it
 * is built.
 *
 * Threads: up to `parallel` worker threads each take an image whose
 * dependencies are done and walk its stages.  The lookup callback and
 * the log are called by one thread at a time (the scheduler serialises
 * them), so a te_registry and a non-thread-safe log may be used there;
 * builders run concurrently (plan.h says what they may touch).
 *
 * Per image: the last stage is looked up first (one HEAD when the image
 * is complete in the repo); when it is missing, stages are looked up
 * from the first on and the build starts at the first missing one, on
 * top of the stage before it.  Progress: one INFO line per image state
 * change: "image <name>: found in repo", "image <name>: building" (with
 * the stage it starts at), "image <name>: built in <s>s".
 *
 * Failure: the first error wins; it names the image ("image "<name>":
 * ...").  The other running builders are cancelled (their processes are
 * killed, they push nothing), no further image starts, and the call
 * returns once every worker has stopped.
 */
#ifndef TAGEXPORT_SCHEDULE_H
#define TAGEXPORT_SCHEDULE_H

#include <stdbool.h>
#include <stddef.h>

#include "tagexport/error.h"
#include "tagexport/log.h"
#include "tagexport/plan.h"
#include "tagexport/registry.h"

/* werf's --parallel-tasks-limit default (werf export --help). */
#define TE_SCHEDULE_PARALLEL_DEFAULT 5
/* What "-1" (no limit) means: threads are capped here. */
#define TE_SCHEDULE_PARALLEL_MAX 256

/*
 * Does stage st exist in the stages repo?  *exists, and digest (its
 * manifest digest) when it does.  Called serialised.
 */
typedef int (*te_schedule_lookup_fn)(bool *exists,
                                     char digest[TE_DIGEST_STR_MAX],
                                     const te_plan_stage *st, void *payload,
                                     te_error *err);

/*
 * Optional: one build of a stage among several processes or machines
 * sharing the stages repo.  lock blocks while another holder builds the
 * tag and hands back what unlock then releases; called from builder
 * threads at once (thread-safe).  After lock the stage is looked up
 * again: when the holder built it meanwhile, it is not built twice.
 */
typedef int (*te_schedule_lock_fn)(void **held, void *payload,
                                   const te_plan_stage *st, te_error *err);
typedef void (*te_schedule_unlock_fn)(void *payload, void *held);

typedef struct te_schedule_opts {
	/* Builds at once: 0 = TE_SCHEDULE_PARALLEL_DEFAULT, -1 = no limit,
	 * else 1..TE_SCHEDULE_PARALLEL_MAX. */
	int parallel;
	te_schedule_lookup_fn lookup;
	void *lookup_payload;
	te_schedule_lock_fn lock; /* NULL: no locking */
	te_schedule_unlock_fn unlock;
	void *lock_payload;
	te_log log;
	/* Images to build, with everything they depend on; NULL = all. */
	te_plan_image *const *targets;
	size_t ntargets;
} te_schedule_opts;

/**
 * Build what is missing.  On success every covered image has its
 * te_plan_image_digest and te_plan_image_built set.
 * @param plan  sealed; only its result fields are written
 * @return 0; the first builder's or lookup's error, wrapped with the
 *         image name; TE_EINVALID (plan not sealed, bad parallel);
 *         TE_ENOMEM; TE_EIO (a thread could not be started)
 */
int te_schedule_run(te_plan *plan, const te_schedule_opts *opts, te_error *err);

/**
 * Parse a --parallel-tasks-limit value: "-1" or 1..TE_SCHEDULE_PARALLEL_MAX
 * ("0" is refused as werf's flag has no such value).
 * @return 0; TE_EINVALID naming the text
 */
int te_schedule_parallel_parse(int *out, const char *text, te_error *err);

#endif
