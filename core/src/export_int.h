/*
 * export_int.h - the state of one export run, shared by export.c (select,
 * content tags, relabel and publish) and export_build.c (the plan of the
 * run's images and their builders).  Private.
 */
#ifndef TAGEXPORT_EXPORT_INT_H
#define TAGEXPORT_EXPORT_INT_H

#include <pthread.h>
#include <stdbool.h>

#include "tagexport/buf.h"
#include "tagexport/config.h"
#include "tagexport/digest.h"
#include "tagexport/export.h"
#include "tagexport/gitsrc.h"
#include "tagexport/image.h"
#include "tagexport/plan.h"
#include "tagexport/reference.h"
#include "tagexport/registry.h"

#define MAX_REGISTRIES 16

/* The per-image state of a run. */
struct image_job {
	const te_image_config *cfg;
	te_image_inputs inputs;
	const char *platform;
	char *stages_tag;    /* the plan's tag of the image (its last stage's
	                        digest); inputs.content_tag until sealed */
	te_plan_image *pimg; /* in run->plan; NULL for an index */
	te_buf manifest;     /* exported manifest bytes */
	te_buf stages;       /* the stages manifest, when already fetched */
	char media_type[128];
	te_buf config; /* exported config bytes */
	char config_digest[TE_DIGEST_STR_MAX];
	te_image_manifest parsed; /* the stages manifest's descriptors */

	/* Multi-platform images. */
	char index_tag[TE_CONTENT_TAG_LEN + 1]; /* stages_tag of an index */
	struct image_job *platforms; /* to build: one job per platform,
	                                sorted by platform */
	size_t nplatforms;
	struct image_job *children; /* to publish: entries of the index */
	size_t nchildren;
	/* An index entry (a child). */
	char source_digest[TE_DIGEST_STR_MAX]; /* in the stages index */
	char digest[TE_DIGEST_STR_MAX];        /* exported */
	char platform_desc[TE_PLATFORM_STR_MAX];
	bool attestation;
};

struct run {
	const te_export_opts *opts;
	te_log log;
	te_gitsrc *src;
	te_werf_config *cfg;
	te_ref repo;
	char *git_tag;
	char commit[41];
	te_strvec tags;         /* the --tag templates that apply to git_tag */
	struct image_job *jobs; /* the images to export */
	size_t njobs;
	struct image_job *extra; /* built only: what jobs depend on */
	size_t nextra;
	char *config_file; /* werf.yaml's path, for messages */
	te_plan *plan;
	/* libgit2 objects are not shared between threads (libgit2's
	 * docs/threading.md): builders read the commit under this lock. */
	pthread_mutex_t src_mu;
	char storage_driver[16];
	te_registry *registries[MAX_REGISTRIES];
	size_t nregistries;
	te_export_result *result;
	struct te_export_stapel *stapel; /* export_build.c, Stapel builds */
};

/* The registry options every te_registry of the run starts from. */
void te_export__registry_opts(te_registry_opts *o, const struct run *run);
/* The run's client for host (one per host, owned by the run). */
int te_export__registry_for(te_registry **out, struct run *run,
                            const char *host, te_error *err);
/* te_gitsrc_keep_fn: is path one of the files the content tag covers
 * (payload: a job's inputs.files)? */
bool te_export__keep_file(const char *path, void *payload);
void te_export__context_limits(te_gitsrc_limits *lim, const struct run *run);
/* The job (exported or built only) of the image called name, or NULL. */
struct image_job *te_export__find_job(struct run *run, const char *name);

/* The job of cfg; an image no job builds yet becomes one more built-only
 * job (run->extra) with its content tag computed, and the images it
 * depends on too.  For images only the plan finds out about (a Stapel
 * image's fromImage, import or dependency naming a Dockerfile image). */
int te_export__add_job(struct image_job **out, struct run *run,
                       const te_image_config *cfg, te_error *err);

/* export_build.c: every job of the run (and every platform of one) into
 * run->plan, sealed; afterwards each job's stages_tag is its plan tag.
 * Errors name werf.yaml:LINE and the image. */
int te_export__plan(struct run *run, te_error *err);
/* export_build.c: build what the stages repo lacks (schedule.h), then
 * store the index of each multi-platform image; sets each result's
 * built flag.  run->result must exist. */
int te_export__build(struct run *run, te_error *err);

/* export_build.c: release what Stapel builders shared; NULL-safe. */
void te_export__stapel_free(struct run *run);

#endif
