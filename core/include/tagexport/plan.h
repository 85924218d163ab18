/*
 * plan.h - the plan of an export: images, their stages and the DAG of
 * images that use other images.
 *
 * One structure for every image kind.  A plan holds images; an image is
 * an ordered chain of stages; an image may depend on other images of the
 * same plan (werf's `dependencies`, Stapel's `fromImage` and `import`),
 * which then are built first.  Each stage has:
 *   - a name, for messages ("dockerfile", "RUN npm ci", "beforeInstall");
 *   - an input: a string that stands for everything the stage reads at
 *     this commit other than the stages before it (a content digest the
 *     image kind computes; the plan never interprets it);
 *   - a digest, computed by te_plan_seal: a pure function of the input,
 *     the name, the previous stage's digest and the final digests of
 *     the images that enter this stage (te_plan_add_dependency: the
 *     first stage; te_plan_add_dependency_at: the stage named);
 *   - optionally a resolver, for a stage whose presence and input depend
 *     on what the stages repo holds (werf's gitCache depends on the
 *     commit recorded in the previous stage's image): te_plan_seal calls
 *     it once the stages before it have their digests, and it gives the
 *     stage's input or drops the stage from the chain;
 *   - its tag in the stages repo (the digest itself) and reference
 *     "<repo>:<digest>";
 *   - a builder: a callback and its payload that build the stage on top
 *     of the previous stage's image and push it under the stage's
 *     reference.  The builder knows nothing about werf.yaml; whatever it
 *     needs (a Dockerfile, a shell script, files) is in its payload.
 * An image's content-based tag is its last stage's digest.
 *
 * Digest rule (te_plan_seal): the first stage of an image without
 * dependencies entering it whose input is already a content tag
 * (TE_PLAN_DIGEST_LEN lowercase hex digits) keeps it as its digest, so a
 * one-stage image has the content tag its image kind computes.  Every
 * other stage gets SHA3-224 over ":::"-joined fields (werf's
 * Sha3_224Hash): the version "tagexport-stage-v1", the previous stage's
 * digest ("" for the first), the name, the input, then "deps:<n>" and the
 * final digests of the n images entering the stage, sorted by image name
 * ("deps:<n>" always for the first stage, n >= 1 only for the others, so
 * a later stage without dependencies hashes just the four fields), then,
 * when m >= 1 stages of other images enter it, "stages:<m>" and their
 * digests sorted by image name and stage index.  An
 * image that enters a later stage only leaves the stages before it
 * cached when it changes (werf: an import's source is a dependency of
 * the dependencies<When><Stage> stage where it lands,
 * https://werf.io/docs/v2/usage/build/stapel/imports.html).
 *
 * Lifetime and ownership:
 *   - te_plan_new returns a plan the caller frees with te_plan_free;
 *   - images and stages are owned by the plan: the handles returned by
 *     te_plan_add_image and te_plan_add_stage, and every string an
 *     accessor returns, stay valid until te_plan_free;
 *   - a stage's payload is owned by the plan from the moment it is
 *     passed to te_plan_add_stage (even when that call fails): the
 *     plan calls free_payload on it exactly once, in te_plan_free (or
 *     in te_plan_seal for a stage its resolver drops: handles to that
 *     stage are invalid after the seal);
 *   - strings passed in are copied.
 * Building a plan (te_plan_add_*, te_plan_seal) is single-threaded.
 * te_schedule_run (schedule.h) is the only code that calls builders and
 * records results; after it returns the plan is read-only again.
 */
#ifndef TAGEXPORT_PLAN_H
#define TAGEXPORT_PLAN_H

#include <stdatomic.h>
#include <stdbool.h>
#include <stddef.h>

#include "tagexport/buf.h"
#include "tagexport/error.h"
#include "tagexport/log.h"
#include "tagexport/registry.h"

#define TE_PLAN_DIGEST_LEN 56 /* SHA3-224 in hex, as TE_CONTENT_TAG_LEN */
#define TE_PLAN_MAX_IMAGES 4096
#define TE_PLAN_MAX_STAGES 1024 /* per image */
#define TE_PLAN_MAX_DEPS 256    /* per image */
#define TE_PLAN_MAX_INPUT (64 * 1024)

typedef struct te_plan te_plan;
typedef struct te_plan_image te_plan_image;
typedef struct te_plan_stage te_plan_stage;

/*
 * What a builder gets for one stage; every pointer is borrowed for the
 * duration of the call.
 */
typedef struct te_stage_ctx {
	const te_plan_image *image;
	const te_plan_stage *stage;
	/* The previous stage's image, "host/repo:<tag>", which exists in
	 * the stages repo; NULL for an image's first stage. */
	const char *base_ref;
	/* Where the result goes: "host/repo:<this stage's digest>". */
	const char *image_ref;
	/* Polled by the builder (atomic_load): once it reads non-zero, the
	 * builder kills whatever it started, pushes nothing and returns an
	 * error. */
	const atomic_int *cancel;
	/* Safe to call from the builder's thread (serialised by the
	 * scheduler). */
	te_log log;
} te_stage_ctx;

/*
 * Build one stage and push it to ctx->image_ref.  digest_out receives
 * the pushed manifest's digest ("sha256:<64 hex>").  Called on a worker
 * thread, possibly at the same time as builders of other images: a
 * builder touches only its payload, the files it creates and the
 * processes it starts.  It may read the results of the image's
 * dependencies (te_plan_image_digest and friends): they are final.
 */
typedef int (*te_stage_build_fn)(char digest_out[TE_DIGEST_STR_MAX],
                                 const te_stage_ctx *ctx, void *payload,
                                 te_error *err);
typedef void (*te_stage_free_fn)(void *payload);

/*
 * Resolve stage `index` of img during te_plan_seal (single-threaded):
 * stages 0..index-1 have their digests and refs (te_plan_stage_digest,
 * te_plan_stage_ref), and the images entering any stage of img are
 * sealed.  Either append the stage's input to input (at most
 * TE_PLAN_MAX_INPUT bytes; the spec's input is replaced) or set *absent:
 * the stage leaves the chain (its payload is freed right away) and the
 * next stage builds on the one before it.  May do I/O (the stages repo);
 * an error fails te_plan_seal, wrapped with the image and stage.
 */
typedef int (*te_stage_resolve_fn)(te_buf *input, bool *absent,
                                   const te_plan_image *img, size_t index,
                                   void *payload, te_error *err);

typedef struct te_plan_stage_spec {
	const char *name;  /* 1-200 bytes, no control characters */
	const char *input; /* at most TE_PLAN_MAX_INPUT bytes */
	te_stage_build_fn build;
	void *payload;                 /* owned by the plan, see above */
	te_stage_free_fn free_payload; /* NULL: the payload is not freed */
	/* NULL: input is final; else called by te_plan_seal (not for an
	 * image's first stage) */
	te_stage_resolve_fn resolve;
} te_plan_stage_spec;

/**
 * A new, empty plan for the stages repo repo_domain/repo_path (as in
 * "host:5000" and "group/app").
 * @param[out] out  free with te_plan_free
 * @return 0; TE_EINVALID for an empty domain or path; TE_ENOMEM
 */
int te_plan_new(te_plan **out, const char *repo_domain, const char *repo_path,
                te_error *err);
void te_plan_free(te_plan *plan);

/**
 * Add an image.  where prefixes errors about it ("werf.yaml:12"), may
 * be NULL.  The name must be unique in the plan.
 * @param[out] out  owned by the plan
 * @return 0; TE_EINVALID (duplicate name, too many images); TE_ENOMEM
 */
int te_plan_add_image(te_plan_image **out, te_plan *plan, const char *name,
                      const char *where, te_error *err);

/**
 * Append a stage to img's chain.  The plan owns spec->payload from now
 * on (also when this fails).
 * @param[out] out  owned by the plan; may be NULL
 * @return 0; TE_EINVALID (bad name, input too long, no builder, too
 *         many stages, plan already sealed); TE_ENOMEM
 */
int te_plan_add_stage(te_plan_stage **out, te_plan_image *img,
                      const te_plan_stage_spec *spec, te_error *err);

/**
 * img uses dep: dep is built first and its final digest is part of
 * img's first stage digest.  Adding the same edge twice is one edge.
 * @return 0; TE_EINVALID (an image depending on itself, too many
 *         dependencies, sealed plan); TE_ENOMEM
 */
int te_plan_add_dependency(te_plan_image *img, te_plan_image *dep,
                           te_error *err);

/**
 * st's image uses dep from stage st on: dep is built first and its final
 * digest is part of st's digest (not of the stages before st).  Adding
 * the same pair twice counts once.
 * @return as te_plan_add_dependency
 */
int te_plan_add_dependency_at(te_plan_stage *st, te_plan_image *dep,
                              te_error *err);

/**
 * st's image uses stage `from` of another image (werf's import with
 * `stage:`): that image is built first and from's digest, not the
 * image's final one, is part of st's digest.  from must not have a
 * resolver (it could leave its chain).
 * @return as te_plan_add_dependency; TE_EINVALID for a resolved `from`
 */
int te_plan_add_stage_dependency(te_plan_stage *st, te_plan_stage *from,
                                 te_error *err);

/**
 * Check the DAG and compute every digest, dependencies first.  After
 * this the plan takes no more images, stages or edges.
 * @return 0; TE_EINVALID "<where>: image "a": dependency cycle a -> b
 *         -> a", or "<where>: image "a" has no stages"; TE_ENOMEM
 */
int te_plan_seal(te_plan *plan, te_error *err);

/* ---- reading a plan (borrowed results, valid until te_plan_free) ---- */

size_t te_plan_image_count(const te_plan *plan);
/* Images in the order they were added. */
te_plan_image *te_plan_image_at(const te_plan *plan, size_t i);
/* NULL when there is no such image. */
te_plan_image *te_plan_image_find(const te_plan *plan, const char *name);
/* A topological order (every image after its dependencies, otherwise in
 * the order added); valid after te_plan_seal. */
te_plan_image *te_plan_image_ordered(const te_plan *plan, size_t i);

const char *te_plan_image_name(const te_plan_image *img);
const char *te_plan_image_where(const te_plan_image *img); /* "" if none */
/* Every image img uses, whichever stage it enters. */
size_t te_plan_image_dep_count(const te_plan_image *img);
te_plan_image *te_plan_image_dep(const te_plan_image *img, size_t i);
size_t te_plan_stage_count(const te_plan_image *img);
te_plan_stage *te_plan_stage_at(const te_plan_image *img, size_t i);

/* After te_plan_seal: the last stage's digest, the content-based tag. */
const char *te_plan_image_tag(const te_plan_image *img);
/* After te_plan_seal: "host/repo:<tag>". */
const char *te_plan_image_ref(const te_plan_image *img);
/* "host/repo" of the plan. */
const char *te_plan_repo(const te_plan *plan);

/* After a successful te_schedule_run that covered img: the manifest
 * digest of the last stage in the stages repo; "" before. */
const char *te_plan_image_digest(const te_plan_image *img);
/* After te_schedule_run: true when at least one of its stages was built
 * by this run (false when every stage was found in the repo). */
bool te_plan_image_built(const te_plan_image *img);

const char *te_plan_stage_name(const te_plan_stage *st);
const char *te_plan_stage_input(const te_plan_stage *st);
/* After te_plan_seal. */
const char *te_plan_stage_digest(const te_plan_stage *st);
const char *te_plan_stage_ref(const te_plan_stage *st);
/* The stage's builder payload (borrowed). */
void *te_plan_stage_payload(const te_plan_stage *st);

#endif
