/*
 * plan_int.h - the plan's structures, shared by plan.c (building and
 * sealing a plan) and schedule.c (walking it).  Private.
 */
#ifndef TAGEXPORT_PLAN_INT_H
#define TAGEXPORT_PLAN_INT_H

#include "tagexport/plan.h"

struct te_plan_stage {
	te_plan_image *image;
	size_t index;
	char *name;
	char *input;
	te_stage_build_fn build;
	void *payload;
	te_stage_free_fn free_payload;
	te_stage_resolve_fn resolve;
	te_plan_image **deps; /* entering this stage (not the first's) */
	size_t ndeps;
	te_plan_stage **stage_deps; /* stages of other images entering it */
	size_t nstage_deps;
	char digest[TE_PLAN_DIGEST_LEN + 1];
	char *ref; /* "host/repo:<digest>" */
};

struct te_plan_image {
	te_plan *plan;
	size_t index; /* in plan->images */
	char *name;
	char *where;
	te_plan_stage **stages;
	size_t nstages;
	te_plan_image **deps; /* every image used: the build order */
	size_t ndeps;
	te_plan_image **first_deps; /* entering the first stage */
	size_t nfirst_deps;
	/* Results, written by te_schedule_run only. */
	char digest[TE_DIGEST_STR_MAX];
	bool built;
	/* Scratch of te_plan_seal and te_schedule_run. */
	int mark;
	size_t waiting; /* dependencies not done yet */
};

struct te_plan {
	char *repo; /* "host/repo" */
	te_plan_image **images;
	size_t nimages;
	te_plan_image **order; /* topological, after seal */
	bool sealed;
};

#endif
