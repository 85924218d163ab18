/*
 * export.c - one export run, from a commit to published tags.
 *
 * Order of work, chosen so that bad input never leaves anything behind:
 *   1. everything that can be checked without side effects is checked
 *      first: --repo, every --tag template against every final image,
 *      werf.yaml, image selection, content-based tags;
 *   2. the images and what they depend on become a plan (plan.h: a chain
 *      of stages per image, a DAG of images), sealed before any build;
 *      the scheduler (schedule.h) builds the stages missing from the
 *      stages repo, images side by side, dependencies first;
 *   3. each image's stages manifest and config are read once, the config
 *      is relabelled once, and the result is published under every tag.
 * A manifest whose config did not change is published with its original
 * bytes, so re-exporting unchanged content yields identical digests.
 *
 * Multi-platform images (two or more platforms; werf-export.md 3, 4.6):
 *   - each platform is a single-platform job of its own with its own
 *     content tag; the image's tag is te_digest_multiplatform over them;
 *   - building (export_build.c) pushes each missing platform image under
 *     its own tag, then an index of them under the image's tag: a Docker
 *     manifest list, as werf stores, since buildah writes Docker schema
 *     2 images (an OCI index if a child is an OCI manifest);
 *   - exporting follows the stored media type, not werf.yaml: a stages
 *     index has each child relabelled like a single image and pushed by
 *     digest, then the index, rewritten with only digests and sizes
 *     changed (platforms and annotations kept), is pushed under the tag
 *     with its own media type.  Attestation entries are dropped when an
 *     image entry changed (they would attest digests that are not in the
 *     new index) and copied untouched when nothing changed.
 */
#include "tagexport/export.h"

#include <errno.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>

#include <jansson.h>

#include "export_int.h"
#include "tagexport/buf.h"
#include "tagexport/config.h"
#include "tagexport/digest.h"
#include "tagexport/gitsrc.h"
#include "tagexport/image.h"
#include "tagexport/reference.h"
#include "tagexport/registry.h"
#include "tagexport/select.h"
#include "tagexport/semver.h"
#include "tagexport/template.h"
#include "tagexport/werfcfg.h"

#include "secrets_int.h"

static void job_init(struct image_job *job, const te_image_config *cfg)
{
	job->cfg = cfg;
	job->inputs = (te_image_inputs)TE_IMAGE_INPUTS_INIT;
	te_buf_init(&job->manifest, TE_MANIFEST_MAX);
	te_buf_init(&job->stages, TE_MANIFEST_MAX);
	te_buf_init(&job->config, TE_CONFIG_MAX);
}

static void job_dispose(struct image_job *job)
{
	size_t i;

	for (i = 0; i < job->nplatforms; i++)
		job_dispose(&job->platforms[i]);
	free(job->platforms);
	for (i = 0; i < job->nchildren; i++)
		job_dispose(&job->children[i]);
	free(job->children);
	te_image_inputs_dispose(&job->inputs);
	te_buf_dispose(&job->manifest);
	te_buf_dispose(&job->stages);
	te_buf_dispose(&job->config);
	te_image_manifest_dispose(&job->parsed);
}

/* The registry options every te_registry of the run starts from. */
void te_export__registry_opts(te_registry_opts *o, const struct run *run)
{
	if (run->opts->registry)
		*o = *run->opts->registry;
	o->insecure = run->opts->insecure_registry;
	o->skip_tls_verify = run->opts->skip_tls_verify;
	o->docker_config_dir = run->opts->docker_config;
	o->log = run->log;
}

int te_export__registry_for(te_registry **out, struct run *run,
                            const char *host, te_error *err)
{
	te_registry_opts ropts = {0};
	size_t i;
	int rc;

	for (i = 0; i < run->nregistries; i++) {
		if (strcmp(te_registry_host(run->registries[i]), host) == 0) {
			*out = run->registries[i];
			return 0;
		}
	}
	if (run->nregistries == MAX_REGISTRIES)
		return te_error_set(err, TE_EINVALID,
		                    "too many registries in one run (max %d)",
		                    MAX_REGISTRIES);
	te_export__registry_opts(&ropts, run);
	rc = te_registry_new(out, host, &ropts, err);
	if (rc < 0)
		return rc;
	run->registries[run->nregistries++] = *out;
	return 0;
}

/* werf.yaml rendered as werf renders it (werfcfg.h), then parsed. */
static int load_config(struct run *run, te_error *err)
{
	te_werfcfg_opts ropts = {0};
	char *text = NULL, *path = NULL;
	size_t len = 0;
	int rc;

	if (run->opts->render)
		ropts = *run->opts->render;
	ropts.config_path = run->opts->config_path;
	rc = te_werfcfg_render(&text, &len, &path, run->src, run->commit,
	                       &ropts, err);
	if (rc < 0)
		return rc;
	rc = te_config_parse(&run->cfg, text, len, path, err);
	free(text);
	run->config_file = path;
	return rc;
}

/* Final images chosen by the positional patterns, in werf.yaml order. */
static int select_images(struct run *run, te_error *err)
{
	const te_werf_config *cfg = run->cfg;
	const char **names = NULL;
	bool *chosen = NULL;
	size_t i;
	int rc;

	names = calloc(cfg->nimages + 1, sizeof(*names));
	chosen = calloc(cfg->nimages + 1, sizeof(*chosen));
	run->jobs = calloc(cfg->nimages + 1, sizeof(*run->jobs));
	if (!names || !chosen || !run->jobs) {
		rc = te_error_set(err, TE_ENOMEM, "out of memory");
		goto done;
	}
	for (i = 0; i < cfg->nimages; i++)
		names[i] = cfg->images[i].name;
	rc = te_select_images(chosen, names, cfg->nimages, run->opts->patterns,
	                      run->opts->npatterns, err);
	if (rc < 0)
		goto done;
	for (i = 0; i < cfg->nimages; i++) {
		struct image_job *job;

		/* werf never exports intermediate images, even when named. */
		if (!chosen[i] || !cfg->images[i].final)
			continue;
		job = &run->jobs[run->njobs++];
		job_init(job, &cfg->images[i]);
	}
done:
	free(names);
	free(chosen);
	return rc;
}

/*
 * The semver rule (semver.h): templates with %semver*% placeholders are
 * skipped for tags that are not versions, floating ones (":1", ":1.2")
 * for pre-releases and for tags that are not the highest release of
 * their line among the repository's tags.
 */
static int select_templates(struct run *run, te_error *err)
{
	te_strvec repo_tags = TE_STRVEC_INIT;
	bool applies = true;
	size_t i;
	int rc = 0;

	for (i = 0; rc == 0 && i < run->opts->ntags; i++) {
		const char *tpl = run->opts->tags[i];

		if (run->git_tag && te_semver_template_uses(tpl)) {
			if (repo_tags.count == 0)
				rc = te_gitsrc_tag_names(&repo_tags, run->src,
				                         err);
			if (rc == 0)
				rc = te_semver_template_applies(
				    &applies, tpl, run->git_tag,
				    (const char *const *)repo_tags.items,
				    repo_tags.count, err);
		}
		if (rc == 0 && applies)
			rc = te_strvec_push(&run->tags, tpl, err);
		else if (rc == 0)
			te_log_emit(&run->log, TE_LOG_INFO,
			            "template %s skipped for tag %s (semver "
			            "rule)",
			            tpl, run->git_tag);
		applies = true;
	}
	te_strvec_dispose(&repo_tags);
	return rc;
}

static int validate_templates(struct run *run, te_error *err)
{
	const char **names = NULL;
	size_t i;
	int rc = 0;

	names = calloc(run->njobs + 1, sizeof(*names));
	if (!names)
		return te_error_set(err, TE_ENOMEM, "out of memory");
	for (i = 0; i < run->njobs; i++)
		names[i] = run->jobs[i].cfg->name;
	for (i = 0; i < run->tags.count && rc == 0; i++)
		rc = te_template_validate(run->tags.items[i], names, run->njobs,
		                          run->git_tag, run->commit, err);
	free(names);
	return rc;
}

static int cmp_str(const void *a, const void *b)
{
	return strcmp(*(const char *const *)a, *(const char *const *)b);
}

void te_export__context_limits(te_gitsrc_limits *lim, const struct run *run)
{
	memset(lim, 0, sizeof(*lim));
	lim->max_file_size = run->opts->max_file_size;
	lim->max_context_size = run->opts->max_context_size;
}

/* Limits and symlinks of one image's context, before anything is built. */
static int check_context(struct run *run, struct image_job *job, te_error *err)
{
	te_gitsrc_limits lim;
	int rc;

	te_export__context_limits(&lim, run);
	rc = te_gitsrc_check(NULL, run->src, run->commit,
	                     job->inputs.context_dir, te_export__keep_file,
	                     &job->inputs.files, &lim, err);
	if (rc < 0)
		te_error_wrap(err, "image \"%s\"", job->cfg->name);
	return rc;
}

/* One single-platform job per platform, then the image's own tag. */
static int compute_index_tag(struct run *run, struct image_job *job,
                             te_error *err)
{
	const te_strvec *platforms = &job->cfg->platforms;
	const char **sorted = NULL, **tags = NULL;
	te_image_platform parsed;
	size_t i, n = platforms->count;
	int rc = 0;

	sorted = calloc(n + 1, sizeof(*sorted));
	tags = calloc(n + 1, sizeof(*tags));
	job->platforms = calloc(n + 1, sizeof(*job->platforms));
	if (!sorted || !tags || !job->platforms) {
		rc = te_error_set(err, TE_ENOMEM, "out of memory");
		goto done;
	}
	memcpy(sorted, platforms->items, n * sizeof(*sorted));
	qsort(sorted, n, sizeof(*sorted), cmp_str);
	for (i = 0; i < n; i++) {
		struct image_job *p = &job->platforms[i];

		rc = te_image_platform_parse(&parsed, sorted[i], err);
		if (rc < 0) {
			te_error_wrap(err, "image \"%s\"", job->cfg->name);
			goto done;
		}
		job_init(p, job->cfg);
		job->nplatforms++;
		p->platform = sorted[i];
		/* Errors name the image already. */
		rc = te_digest_image(&p->inputs, run->src, run->commit,
		                     job->cfg, p->platform, err);
		if (rc == TE_ENOTFOUND)
			rc = err->code = TE_EINVALID;
		if (rc < 0)
			goto done;
		p->stages_tag = p->inputs.content_tag;
		tags[i] = p->stages_tag;
		if ((rc = check_context(run, p, err)) < 0)
			goto done;
	}
	rc = te_digest_multiplatform(job->index_tag, sorted, tags, n, err);
	if (rc < 0) {
		te_error_wrap(err, "image \"%s\"", job->cfg->name);
		goto done;
	}
	job->stages_tag = job->index_tag;
done:
	free(sorted);
	free(tags);
	return rc;
}

/* A Stapel image's platforms, each a job of its own (sorted, as for an
 * index); their tags and the index tag come from the plan
 * (te_export__plan). */
static int stapel_platform_jobs(struct image_job *job, te_error *err)
{
	const te_strvec *platforms = &job->cfg->platforms;
	const char **sorted;
	te_image_platform parsed;
	size_t i, n = platforms->count;
	int rc = 0;

	sorted = calloc(n + 1, sizeof(*sorted));
	job->platforms = calloc(n + 1, sizeof(*job->platforms));
	if (!sorted || !job->platforms) {
		free(sorted);
		return te_error_set(err, TE_ENOMEM, "out of memory");
	}
	memcpy(sorted, platforms->items, n * sizeof(*sorted));
	qsort(sorted, n, sizeof(*sorted), cmp_str);
	for (i = 0; rc == 0 && i < n; i++) {
		rc = te_image_platform_parse(&parsed, sorted[i], err);
		if (rc < 0) {
			te_error_wrap(err, "image \"%s\"", job->cfg->name);
			break;
		}
		job_init(&job->platforms[i], job->cfg);
		job->platforms[i].platform = sorted[i];
		job->nplatforms++;
	}
	free(sorted);
	return rc;
}

static int compute_job_tag(struct run *run, struct image_job *job,
                           te_error *err)
{
	const te_strvec *platforms = &job->cfg->platforms;
	int rc;

	if (job->cfg->stapel && platforms->count > 1)
		return stapel_platform_jobs(job, err);
	if (job->cfg->stapel)
		return 0; /* the plan gives it: its last stage's digest */
	if (platforms->count > 1)
		return compute_index_tag(run, job, err);
	job->platform = platforms->count ? platforms->items[0] : NULL;
	rc = te_digest_image(&job->inputs, run->src, run->commit, job->cfg,
	                     job->platform, err);
	/* A missing Dockerfile is a mistake in the project, not a failed
	 * export. */
	if (rc == TE_ENOTFOUND)
		rc = err->code = TE_EINVALID;
	job->stages_tag = job->inputs.content_tag;
	if (rc == 0)
		rc = check_context(run, job, err);
	return rc;
}

static int compute_content_tags(struct run *run, te_error *err)
{
	size_t i;
	int rc = 0;

	for (i = 0; i < run->njobs && rc == 0; i++)
		rc = compute_job_tag(run, &run->jobs[i], err);
	for (i = 0; i < run->nextra && rc == 0; i++)
		rc = compute_job_tag(run, &run->extra[i], err);
	return rc;
}

struct image_job *te_export__find_job(struct run *run, const char *name)
{
	size_t i;

	for (i = 0; i < run->njobs; i++)
		if (strcmp(run->jobs[i].cfg->name, name) == 0)
			return &run->jobs[i];
	for (i = 0; i < run->nextra; i++)
		if (strcmp(run->extra[i].cfg->name, name) == 0)
			return &run->extra[i];
	return NULL;
}

static const te_image_config *find_config(const te_werf_config *cfg,
                                          const char *name)
{
	size_t i;

	for (i = 0; i < cfg->nimages; i++)
		if (strcmp(cfg->images[i].name, name) == 0)
			return &cfg->images[i];
	return NULL;
}

/* What the exported images depend on, transitively, is built too (not
 * exported), final or not, selected or not: werf builds it as well.
 * Breadth first: extra grows while it is walked; config names are
 * checked already (config.c), so every lookup succeeds. */
static int add_dependency_jobs(struct run *run, te_error *err)
{
	size_t i, j;

	run->extra = calloc(run->cfg->nimages + 1, sizeof(*run->extra));
	if (!run->extra)
		return te_error_set(err, TE_ENOMEM, "out of memory");
	for (i = 0; i < run->njobs + run->nextra; i++) {
		struct image_job *job = i < run->njobs
		                            ? &run->jobs[i]
		                            : &run->extra[i - run->njobs];

		for (j = 0; j < job->cfg->ndeps; j++) {
			const char *name = job->cfg->deps[j].image;
			const te_image_config *dep;

			if (te_export__find_job(run, name))
				continue;
			dep = find_config(run->cfg, name);
			if (!dep || run->nextra >= run->cfg->nimages)
				return te_error_set(err, TE_EINVALID,
				                    "image \"%s\": unknown "
				                    "dependency \"%s\"",
				                    job->cfg->name, name);
			job_init(&run->extra[run->nextra++], dep);
		}
	}
	return 0;
}

int te_export__add_job(struct image_job **out, struct run *run,
                       const te_image_config *cfg, te_error *err)
{
	struct image_job *job;
	size_t i;
	int rc;

	*out = te_export__find_job(run, cfg->name);
	if (*out)
		return 0;
	if (run->nextra >= run->cfg->nimages)
		return te_error_set(err, TE_EINVALID, "too many images");
	job = &run->extra[run->nextra++];
	job_init(job, cfg);
	rc = compute_job_tag(run, job, err);
	for (i = 0; rc == 0 && i < cfg->ndeps; i++) {
		const te_image_config *dep =
		    find_config(run->cfg, cfg->deps[i].image);
		struct image_job *ignored;

		if (!dep)
			return te_error_set(err, TE_EINVALID,
			                    "image \"%s\": unknown dependency "
			                    "\"%s\"",
			                    cfg->name, cfg->deps[i].image);
		rc = te_export__add_job(&ignored, run, dep, err);
	}
	if (rc == 0)
		*out = job;
	return rc;
}

static int cmp_strp(const void *key, const void *item)
{
	return strcmp((const char *)key, *(char *const *)item);
}

/* Only the files the content-based tag covers reach the build, so the
 * tag really is a function of everything the build can read. */
bool te_export__keep_file(const char *path, void *payload)
{
	const te_strvec *files = payload;

	return bsearch(path, files->items, files->count, sizeof(char *),
	               cmp_strp) != NULL;
}

/* ---- relabelling ------------------------------------------------------- */

/*
 * The exported manifest and config of one image manifest: the config
 * relabelled (or kept as it is when relabel is false, for attestations),
 * the manifest pointing at it.
 */
static int relabel_manifest(struct run *run, te_registry *reg,
                            struct image_job *job, const te_buf *source,
                            bool relabel, te_error *err)
{
	te_buf original = TE_BUF_INIT(TE_CONFIG_MAX);
	bool changed = false;
	int rc;

	rc = te_image_manifest_parse(&job->parsed, source->ptr, source->len,
	                             err);
	if (rc == 0)
		rc = te_registry_blob_get(relabel ? &original : &job->config,
		                          reg, run->repo.path,
		                          job->parsed.config_digest, err);
	if (rc == 0 && relabel)
		rc = te_image_relabel_config(&job->config, &changed,
		                             original.ptr, original.len,
		                             run->opts->add_labels, err);
	if (rc < 0)
		goto done;
	if (!changed) {
		memcpy(job->config_digest, job->parsed.config_digest,
		       TE_DIGEST_STR_MAX);
		rc = te_buf_put(&job->manifest, source->ptr, source->len, err);
		goto done;
	}
	te_image_sha256(job->config_digest, job->config.ptr, job->config.len);
	rc = te_image_manifest_set_config(&job->manifest, source->ptr,
	                                  source->len, job->config_digest,
	                                  job->config.len, err);
done:
	te_buf_dispose(&original);
	return rc;
}

/* One entry of a stages index, fetched by digest and relabelled. */
static int prepare_child(struct run *run, te_registry *reg,
                         struct image_job *child, const te_image_index_entry *e,
                         te_error *err)
{
	te_buf body = TE_BUF_INIT(TE_MANIFEST_MAX);
	char digest[TE_DIGEST_STR_MAX];
	int rc;

	memcpy(child->source_digest, e->digest, TE_DIGEST_STR_MAX);
	te_image_platform_format(child->platform_desc, &e->platform);
	child->attestation = e->attestation;
	rc = te_registry_manifest_get(&body, child->media_type, digest, reg,
	                              run->repo.path, e->digest, err);
	if (rc < 0)
		goto done;
	if (body.len != (size_t)e->size ||
	    (e->media_type[0] && strcmp(e->media_type, child->media_type))) {
		rc = te_error_set(err, TE_EINVALID,
		                  "manifest %s does not match its index entry "
		                  "(size or media type)",
		                  e->digest);
		goto done;
	}
	if (!te_image_is_manifest_type(child->media_type)) {
		rc =
		    te_error_set(err, TE_EUNSUPPORTED,
		                 "index entry %s has media type %s; only image "
		                 "manifests are supported in an index",
		                 e->digest, child->media_type);
		goto done;
	}
	rc = relabel_manifest(run, reg, child, &body, !e->attestation, err);
	if (rc == 0)
		te_image_sha256(child->digest, child->manifest.ptr,
		                child->manifest.len);
done:
	te_buf_dispose(&body);
	return rc;
}

static bool seen_digest(const te_image_index *idx, size_t i)
{
	size_t j;

	for (j = 0; j < i; j++)
		if (strcmp(idx->entries[j].digest, idx->entries[i].digest) == 0)
			return true;
	return false;
}

/* Attestations are not published once the index drops them. */
static void drop_attestation_children(struct image_job *job)
{
	size_t i, kept = 0;

	for (i = 0; i < job->nchildren; i++) {
		if (job->children[i].attestation)
			job_dispose(&job->children[i]);
		else
			job->children[kept++] = job->children[i];
	}
	job->nchildren = kept;
}

/* A stages index: every child relabelled, then the index rewritten. */
static int prepare_index(struct run *run, te_registry *reg,
                         struct image_job *job, const te_buf *source,
                         te_error *err)
{
	te_image_index idx = {0};
	te_image_index_update *updates = NULL;
	size_t i, nupdates = 0, nimages = 0;
	bool changed = false;
	int rc;

	rc = te_image_index_parse(&idx, source->ptr, source->len, err);
	if (rc < 0)
		goto done;
	job->children = calloc(idx.nentries + 1, sizeof(*job->children));
	updates = calloc(idx.nentries + 1, sizeof(*updates));
	if (!job->children || !updates) {
		rc = te_error_set(err, TE_ENOMEM, "out of memory");
		goto done;
	}
	for (i = 0; i < idx.nentries; i++) {
		struct image_job *child = &job->children[job->nchildren];

		/* Two entries may share a manifest; publish it once. */
		if (seen_digest(&idx, i))
			continue;
		job_init(child, job->cfg);
		job->nchildren++;
		rc = prepare_child(run, reg, child, &idx.entries[i], err);
		if (rc < 0)
			goto done;
		nimages += !child->attestation;
		if (strcmp(child->digest, child->source_digest) == 0)
			continue;
		updates[nupdates].digest = child->source_digest;
		updates[nupdates].new_digest = child->digest;
		updates[nupdates].new_size = (int64_t)child->manifest.len;
		nupdates++;
	}
	if (nimages == 0) {
		rc = te_error_set(err, TE_EINVALID,
		                  "stages index %s has no image entries",
		                  job->stages_tag);
		goto done;
	}
	rc = te_image_index_rewrite(&job->manifest, &changed, source->ptr,
	                            source->len, updates, nupdates,
	                            nupdates > 0, err);
	if (rc == 0 && nupdates > 0)
		drop_attestation_children(job);
done:
	te_image_index_dispose(&idx);
	free(updates);
	return rc;
}

/* Read the stages manifest and config once; produce the exported ones. */
static int prepare_export(struct run *run, struct image_job *job, te_error *err)
{
	char digest[TE_DIGEST_STR_MAX];
	te_buf source = TE_BUF_INIT(TE_MANIFEST_MAX);
	te_registry *reg = NULL;
	int rc;

	rc = te_export__registry_for(&reg, run, run->repo.domain, err);
	if (rc == 0 && job->stages.len)
		rc = te_buf_put(&source, job->stages.ptr, job->stages.len, err);
	else if (rc == 0)
		rc = te_registry_manifest_get(&source, job->media_type, digest,
		                              reg, run->repo.path,
		                              job->stages_tag, err);
	if (rc < 0)
		goto done;
	if (te_image_is_index_type(job->media_type)) {
		rc = prepare_index(run, reg, job, &source, err);
		goto done;
	}
	if (!te_image_is_manifest_type(job->media_type)) {
		rc = te_error_set(err, TE_EUNSUPPORTED,
		                  "stages image %s has media type %s; only "
		                  "image manifests and indexes are supported",
		                  job->stages_tag, job->media_type);
		goto done;
	}
	rc = relabel_manifest(run, reg, job, &source, true, err);
done:
	te_buf_dispose(&source);
	if (rc < 0)
		te_error_wrap(err, "image \"%s\"", job->cfg->name);
	return rc;
}

/* Layers, config and manifest of one image into dst_path under ref (a tag
 * or a digest); *copied grows by the bytes streamed. */
static int push_image(char digest[TE_DIGEST_STR_MAX], uint64_t *copied,
                      struct run *run, te_registry *dst_reg,
                      const char *dst_path, te_registry *src_reg,
                      const struct image_job *job, const char *ref,
                      te_error *err)
{
	uint64_t n = 0;
	int rc;

	rc = te_registry_blobs_copy(
	    &n, dst_reg, dst_path, src_reg, run->repo.path, job->parsed.layers,
	    job->parsed.nlayers, run->opts->parallel, err);
	if (rc == 0)
		rc =
		    te_registry_blob_put(dst_reg, dst_path, job->config_digest,
		                         job->config.ptr, job->config.len, err);
	if (rc == 0)
		rc = te_registry_manifest_put(
		    digest, dst_reg, dst_path, ref, job->media_type,
		    job->manifest.ptr, job->manifest.len, err);
	*copied += n;
	return rc;
}

/* The children by digest, then the index under ref. */
static int push_index(char digest[TE_DIGEST_STR_MAX], uint64_t *copied,
                      struct run *run, te_registry *dst_reg,
                      const char *dst_path, te_registry *src_reg,
                      const struct image_job *job, const char *ref,
                      te_error *err)
{
	char child_digest[TE_DIGEST_STR_MAX];
	size_t i;
	int rc = 0;

	for (i = 0; i < job->nchildren && rc == 0; i++)
		rc = push_image(child_digest, copied, run, dst_reg, dst_path,
		                src_reg, &job->children[i],
		                job->children[i].digest, err);
	if (rc == 0)
		rc = te_registry_manifest_put(
		    digest, dst_reg, dst_path, ref, job->media_type,
		    job->manifest.ptr, job->manifest.len, err);
	return rc;
}

static int publish(struct run *run, struct image_job *job, te_exported_ref *out,
                   const char *tpl, te_error *err)
{
	te_template_vars vars = {0};
	te_ref dst = TE_REF_INIT;
	te_registry *src_reg = NULL, *dst_reg = NULL;
	char digest[TE_DIGEST_STR_MAX];
	uint64_t copied = 0;
	char *rendered = NULL;
	int rc;

	vars.image = job->cfg->name;
	vars.content_based_tag = job->stages_tag;
	vars.git_tag = run->git_tag;
	vars.git_commit = run->commit;
	rc = te_template_render(&rendered, tpl, &vars, err);
	if (rc < 0)
		goto done;
	rc = te_ref_parse(&dst, rendered, err);
	if (rc < 0)
		goto done;
	rc = te_export__registry_for(&src_reg, run, run->repo.domain, err);
	if (rc == 0)
		rc = te_export__registry_for(&dst_reg, run, dst.domain, err);
	if (rc < 0)
		goto done;
	if (te_image_is_index_type(job->media_type))
		rc =
		    push_index(digest, &copied, run, dst_reg, dst.path, src_reg,
		               job, dst.digest ? dst.digest : dst.tag, err);
	else
		rc =
		    push_image(digest, &copied, run, dst_reg, dst.path, src_reg,
		               job, dst.digest ? dst.digest : dst.tag, err);
	if (rc < 0)
		goto done;
	run->result->bytes_copied += copied;
	out->reference = rendered;
	rendered = NULL;
	out->digest = te_strdup(digest, err);
	if (!out->digest)
		rc = TE_ENOMEM;
	te_log_emit(&run->log, TE_LOG_INFO, "exported %s@%s", out->reference,
	            digest);
done:
	if (rc < 0)
		te_error_wrap(err, "unable to export image \"%s\" to %s",
		              job->cfg->name, rendered ? rendered : tpl);
	free(rendered);
	te_ref_dispose(&dst);
	return rc;
}

/* The exported children of an index, for the report. */
static int report_platforms(te_export_image *res, const struct image_job *job,
                            te_error *err)
{
	size_t i;

	if (!job->nchildren)
		return 0;
	res->platforms = calloc(job->nchildren + 1, sizeof(*res->platforms));
	if (!res->platforms)
		return te_error_set(err, TE_ENOMEM, "out of memory");
	for (i = 0; i < job->nchildren; i++) {
		const struct image_job *child = &job->children[i];
		te_export_platform *p = &res->platforms[res->nplatforms];

		if (child->attestation)
			continue;
		res->nplatforms++;
		p->platform = te_strdup(child->platform_desc, err);
		p->digest = te_strdup(child->digest, err);
		if (!p->platform || !p->digest)
			return TE_ENOMEM;
	}
	return 0;
}

static int export_image(struct run *run, struct image_job *job,
                        te_export_image *res, te_error *err)
{
	size_t i;
	int rc;

	rc = prepare_export(run, job, err);
	if (rc == 0)
		rc = report_platforms(res, job, err);
	if (rc < 0)
		return rc;
	res->refs = calloc(run->tags.count + 1, sizeof(*res->refs));
	if (!res->refs)
		return te_error_set(err, TE_ENOMEM, "out of memory");
	for (i = 0; i < run->tags.count; i++) {
		rc = publish(run, job, &res->refs[i], run->tags.items[i], err);
		if (rc < 0)
			return rc;
		res->nrefs++;
	}
	return 0;
}

static int init_result(struct run *run, te_error *err)
{
	te_export_result *res;
	size_t i;

	res = calloc(1, sizeof(*res));
	if (!res)
		return te_error_set(err, TE_ENOMEM, "out of memory");
	run->result = res;
	memcpy(res->commit, run->commit, sizeof(res->commit));
	if (run->git_tag && !(res->git_tag = te_strdup(run->git_tag, err)))
		return TE_ENOMEM;
	res->images = calloc(run->njobs + 1, sizeof(*res->images));
	if (!res->images)
		return te_error_set(err, TE_ENOMEM, "out of memory");
	for (i = 0; i < run->njobs; i++) {
		te_export_image *img = &res->images[i];

		res->nimages++;
		img->name = te_strdup(run->jobs[i].cfg->name, err);
		img->content_based_tag =
		    te_strdup(run->jobs[i].stages_tag, err);
		img->stages_ref =
		    te_ref_format(&(te_ref){run->repo.domain, run->repo.path,
		                            run->jobs[i].stages_tag, NULL});
		if (!img->name || !img->content_based_tag || !img->stages_ref)
			return te_error_set(err, TE_ENOMEM, "out of memory");
	}
	return 0;
}

/* Before anything is built: each image's build keys can be honoured
 * (secrets.c). */
static int check_build_keys(struct run *run, te_error *err)
{
	size_t i;
	int rc = 0;

	for (i = 0; i < run->njobs && rc == 0; i++)
		rc = te_secrets__check_image(run->opts, run->src, run->commit,
		                             run->jobs[i].cfg, err);
	return rc;
}

static int check_opts(struct run *run, te_error *err)
{
	const te_export_opts *opts = run->opts;
	int rc;

	if (opts->version != TE_EXPORT_OPTS_VERSION)
		return te_error_set(err, TE_EINVALID,
		                    "te_export_opts version %u not supported",
		                    opts->version);
	if (opts->ntags == 0)
		return te_error_set(err, TE_EINVALID,
		                    "required at least one tag template: use "
		                    "the --tag option to specify templates");
	if (!opts->repo || !*opts->repo)
		return te_error_set(err, TE_EINVALID,
		                    "--repo is required: the stages repository "
		                    "to build into (or set WERF_REPO)");
	if (!opts->state_dir)
		return te_error_set(err, TE_EINVALID, "state_dir is required");
	rc = te_ref_parse_repo(&run->repo, opts->repo, err);
	if (rc < 0)
		return te_error_wrap(err, "invalid --repo \"%s\"", opts->repo);
	return 0;
}

static int resolve_source(struct run *run, te_error *err)
{
	char *tag_from_rev = NULL;
	int rc;

	rc = te_gitsrc_open(&run->src, run->opts->dir ? run->opts->dir : ".",
	                    err);
	if (rc < 0) {
		err->code = TE_EINVALID; /* a bad --dir is a usage error */
		return rc;
	}
	rc = te_gitsrc_resolve(run->commit, &tag_from_rev, run->src,
	                       run->opts->commit, err);
	if (rc < 0) {
		free(tag_from_rev);
		err->code = TE_EINVALID;
		return te_error_wrap(err, "revision \"%s\"",
		                     run->opts->commit ? run->opts->commit
		                                       : "HEAD");
	}
	if (run->opts->git_tag) {
		free(tag_from_rev);
		run->git_tag = te_strdup(run->opts->git_tag, err);
		if (!run->git_tag)
			return TE_ENOMEM;
	} else {
		run->git_tag = tag_from_rev;
	}
	return 0;
}

int te_export_run(te_export_result **out, const te_export_opts *opts,
                  te_error *err)
{
	struct run run;
	size_t i;
	int rc;

	*out = NULL;
	memset(&run, 0, sizeof(run));
	run.opts = opts;
	run.log = opts->log;
	pthread_mutex_init(&run.src_mu, NULL);

	rc = check_opts(&run, err);
	if (rc == 0)
		rc = resolve_source(&run, err);
	if (rc == 0)
		rc = select_templates(&run, err);
	if (rc == 0 && run.tags.count == 0) {
		/* Every template is excluded by the semver rule: nothing to
		 * build or publish for this tag. */
		te_log_emit(&run.log, TE_LOG_INFO,
		            "no tag template applies to tag %s: nothing to do",
		            run.git_tag);
		rc = init_result(&run, err);
		if (rc == 0) {
			*out = run.result;
			run.result = NULL;
		}
		goto done;
	}
	if (rc == 0)
		rc = load_config(&run, err);
	if (rc == 0)
		rc = select_images(&run, err);
	if (rc == 0)
		rc = add_dependency_jobs(&run, err);
	if (rc == 0)
		rc = validate_templates(&run, err);
	if (rc == 0)
		rc = compute_content_tags(&run, err);
	if (rc == 0)
		rc = check_build_keys(&run, err);
	if (rc == 0)
		rc = te_export__plan(&run, err);
	if (rc == 0)
		rc = init_result(&run, err);
	if (rc == 0)
		rc = te_export__build(&run, err);
	if (rc < 0)
		goto done;
	for (i = 0; i < run.njobs; i++) {
		rc = export_image(&run, &run.jobs[i], &run.result->images[i],
		                  err);
		if (rc < 0)
			goto done;
	}
	*out = run.result;
	run.result = NULL;
done:
	for (i = 0; i < run.njobs; i++)
		job_dispose(&run.jobs[i]);
	free(run.jobs);
	for (i = 0; i < run.nextra; i++)
		job_dispose(&run.extra[i]);
	free(run.extra);
	te_plan_free(run.plan);
	te_export__stapel_free(&run);
	free(run.config_file);
	pthread_mutex_destroy(&run.src_mu);
	for (i = 0; i < run.nregistries; i++)
		te_registry_free(run.registries[i]);
	te_export_result_free(run.result);
	te_config_free(run.cfg);
	te_gitsrc_free(run.src);
	te_ref_dispose(&run.repo);
	free(run.git_tag);
	te_strvec_dispose(&run.tags);
	return rc;
}

void te_export_result_free(te_export_result *res)
{
	size_t i, j;

	if (!res)
		return;
	for (i = 0; i < res->nimages; i++) {
		te_export_image *img = &res->images[i];

		for (j = 0; j < img->nrefs; j++) {
			free(img->refs[j].reference);
			free(img->refs[j].digest);
		}
		free(img->refs);
		for (j = 0; j < img->nplatforms; j++) {
			free(img->platforms[j].platform);
			free(img->platforms[j].digest);
		}
		free(img->platforms);
		free(img->name);
		free(img->content_based_tag);
		free(img->stages_ref);
	}
	free(res->images);
	free(res->git_tag);
	free(res);
}

/* "platforms": [{"platform": "linux/arm64", "digest": ...}, ...] */
static int platforms_report(json_t *o, const te_export_image *img)
{
	json_t *list = json_array();
	size_t j;

	if (json_object_set_new(o, "platforms", list))
		return -1;
	for (j = 0; j < img->nplatforms; j++)
		if (json_array_append_new(
		        list, json_pack("{s:s, s:s}", "platform",
		                        img->platforms[j].platform, "digest",
		                        img->platforms[j].digest)))
			return -1;
	return 0;
}

static json_t *image_report(const te_export_image *img)
{
	json_t *o, *refs;
	size_t j;

	refs = json_array();
	o = json_pack("{s:s, s:s, s:b, s:o}", "content_based_tag",
	              img->content_based_tag, "stages_ref", img->stages_ref,
	              "built", img->built, "exported", refs);
	if (!o)
		return NULL;
	for (j = 0; j < img->nrefs; j++) {
		json_t *r =
		    json_pack("{s:s, s:s}", "reference", img->refs[j].reference,
		              "digest", img->refs[j].digest);

		if (json_array_append_new(refs, r)) {
			json_decref(o);
			return NULL;
		}
	}
	if (img->nplatforms && platforms_report(o, img) < 0) {
		json_decref(o);
		return NULL;
	}
	return o;
}

int te_export_report_json(char **out, const te_export_result *res,
                          te_error *err)
{
	json_t *root, *images = json_object();
	size_t i;

	*out = NULL;
	root = json_pack("{s:s, s:s?, s:I, s:o}", "commit", res->commit,
	                 "git_tag", res->git_tag, "bytes_copied",
	                 (json_int_t)res->bytes_copied, "images", images);
	for (i = 0; root && i < res->nimages; i++) {
		if (json_object_set_new(images, res->images[i].name,
		                        image_report(&res->images[i]))) {
			json_decref(root);
			root = NULL;
		}
	}
	if (root)
		*out = json_dumps(root, JSON_INDENT(2));
	json_decref(root);
	if (!*out)
		return te_error_set(err, TE_ENOMEM, "out of memory");
	return 0;
}
