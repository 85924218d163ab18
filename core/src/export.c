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
 *   - building pushes each missing platform image under its own tag, then
 *     an index of them under the image's tag: a Docker manifest list, as
 *     werf stores, since buildah writes Docker schema 2 images (an OCI
 *     index if a child is an OCI manifest);
 *   - exporting follows the stored media type, not werf.yaml: a stages
 *     index has each child relabelled like a single image and pushed by
 *     digest, then the index, rewritten with only digests and sizes
 *     changed (platforms and annotations kept), is pushed under the tag
 *     with its own media type.  Attestation entries are dropped when an
 *     image entry changed (they would attest digests that are not in the
 *     new index) and copied untouched when nothing changed.
 */
#include "tagexport/export.h"

#include <ctype.h>
#include <errno.h>
#include <fcntl.h>
#include <ftw.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <jansson.h>

#include "tagexport/buf.h"
#include "tagexport/build.h"
#include "tagexport/config.h"
#include "tagexport/digest.h"
#include "tagexport/dockerfile.h"
#include "tagexport/gitsrc.h"
#include "tagexport/image.h"
#include "tagexport/plan.h"
#include "tagexport/reference.h"
#include "tagexport/registry.h"
#include "tagexport/schedule.h"
#include "tagexport/select.h"
#include "tagexport/semver.h"
#include "tagexport/template.h"
#include "tagexport/werfcfg.h"

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
};

/* The registry options every te_registry of the run starts from. */
static void base_registry_opts(te_registry_opts *o, const struct run *run)
{
	if (run->opts->registry)
		*o = *run->opts->registry;
	o->insecure = run->opts->insecure_registry;
	o->skip_tls_verify = run->opts->skip_tls_verify;
	o->docker_config_dir = run->opts->docker_config;
	o->log = run->log;
}

static int registry_for(te_registry **out, struct run *run, const char *host,
                        te_error *err)
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
	base_registry_opts(&ropts, run);
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

static bool keep_input_file(const char *path, void *payload);

static void context_limits(te_gitsrc_limits *lim, const struct run *run)
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

	context_limits(&lim, run);
	rc = te_gitsrc_check(NULL, run->src, run->commit,
	                     job->inputs.context_dir, keep_input_file,
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

static int compute_job_tag(struct run *run, struct image_job *job,
                           te_error *err)
{
	const te_strvec *platforms = &job->cfg->platforms;
	int rc;

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

static struct image_job *find_job(struct run *run, const char *name)
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

			if (find_job(run, name))
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

/* ---- building ---------------------------------------------------------- */

#define TE_EXPORT_DOCKERFILE_MAX (1024 * 1024) /* as digest.c reads it */

static int remove_entry(const char *path, const struct stat *st, int flag,
                        struct FTW *ftw)
{
	(void)st;
	(void)flag;
	(void)ftw;
	return remove(path);
}

static void remove_tree(const char *dir)
{
	nftw(dir, remove_entry, 16, FTW_DEPTH | FTW_PHYS);
}

static int cmp_strp(const void *key, const void *item)
{
	return strcmp((const char *)key, *(char *const *)item);
}

/* Only the files the content-based tag covers reach the build, so the
 * tag really is a function of everything the build can read. */
static bool keep_input_file(const char *path, void *payload)
{
	const te_strvec *files = payload;

	return bsearch(path, files->items, files->count, sizeof(char *),
	               cmp_strp) != NULL;
}

static int add_insecure_host(te_strvec *hosts, const char *ref_text,
                             bool insecure_all, te_error *err)
{
	te_ref ref = TE_REF_INIT;
	te_error ignored = TE_ERROR_INIT;
	int rc = 0;

	if (strcmp(ref_text, "scratch") == 0)
		return 0;
	if (te_ref_parse(&ref, ref_text, &ignored) < 0)
		return 0; /* buildah reports unusable base images itself */
	if ((insecure_all || te_ref_host_is_loopback(ref.domain)) &&
	    !te_strvec_contains(hosts, ref.domain))
		rc = te_strvec_push(hosts, ref.domain, err);
	te_ref_dispose(&ref);
	return rc;
}

/* Delete dir/auth.json and dir (best effort). */
static void remove_authfile(char *path)
{
	char *slash;

	unlink(path);
	slash = strrchr(path, '/');
	if (slash && strcmp(slash, "/auth.json") == 0) {
		*slash = '\0';
		rmdir(path);
		*slash = '/';
	}
}

/* buildah gets the credentials export itself would use (helpers already
 * run) in a private auth.json: state/tmp/auth-XXXXXX/auth.json, 0600. */
static int make_authfile(te_buf *path, struct run *run, struct image_job *job,
                         te_error *err)
{
	te_registry_opts ropts = {0};
	te_strvec hosts = TE_STRVEC_INIT;
	size_t i;
	int rc = 0;

	for (i = 0; rc == 0 && i < job->inputs.bases.count; i++)
		rc = add_insecure_host(&hosts, job->inputs.bases.items[i], true,
		                       err);
	if (rc == 0 && !te_strvec_contains(&hosts, run->repo.domain))
		rc = te_strvec_push(&hosts, run->repo.domain, err);
	if (rc == 0)
		rc = te_buf_printf(path, err, "%s/tmp/auth-XXXXXX",
		                   run->opts->state_dir);
	if (rc < 0)
		goto done;
	if (!mkdtemp(path->ptr)) {
		rc = te_error_set_errno(err, TE_EIO, errno, "mkdtemp %s",
		                        path->ptr);
		te_buf_clear(path);
		goto done;
	}
	rc = te_buf_puts(path, "/auth.json", err);
	if (rc < 0)
		goto done;
	base_registry_opts(&ropts, run);
	rc = te_registry_authfile_write(path->ptr,
	                                (const char *const *)hosts.items,
	                                hosts.count, &ropts, err);
done:
	if (rc < 0 && path->len)
		remove_authfile(path->ptr);
	if (rc < 0)
		te_buf_clear(path);
	te_strvec_dispose(&hosts);
	return rc;
}

/* The Dockerfile bytes te_digest_image hashed: the same blob of the same
 * commit, read again (git objects are named by their content). */
static int read_dockerfile(te_buf *out, struct run *run, struct image_job *job,
                           te_error *err)
{
	const char *dir = job->inputs.context_dir;
	te_buf path = TE_BUF_INIT(8192);
	int rc;

	rc = te_buf_printf(&path, err, "%s%s%s", dir, *dir ? "/" : "",
	                   job->inputs.dockerfile_path);
	if (rc == 0)
		rc = te_gitsrc_read_file(out, run->src, run->commit, path.ptr,
		                         err);
	te_buf_dispose(&path);
	return rc;
}

/* The build args of one image: werf.yaml's args, then each dependency
 * import (werf_yaml.yml, dependencies): the dependency is built, so its
 * results in the plan are final. */
static int build_args(te_strvec *out, struct run *run,
                      const struct image_job *job, te_error *err)
{
	const te_image_config *cfg = job->cfg;
	size_t i, j;
	int rc = 0;

	for (i = 0; rc == 0 && i < cfg->args.count; i++)
		rc = te_strvec_push(out, cfg->args.items[i], err);
	for (i = 0; rc == 0 && i < cfg->ndeps; i++) {
		const te_image_dependency *d = &cfg->deps[i];
		const te_plan_image *dep =
		    te_plan_image_find(run->plan, d->image);
		const char *value;

		for (j = 0; rc == 0 && dep && j < d->nimports; j++) {
			switch (d->imports[j].type) {
			case TE_IMPORT_IMAGE_NAME:
				value = te_plan_image_ref(dep);
				break;
			case TE_IMPORT_IMAGE_DIGEST:
				value = te_plan_image_digest(dep);
				break;
			case TE_IMPORT_IMAGE_REPO:
				value = te_plan_repo(run->plan);
				break;
			default:
				value = te_plan_image_tag(dep);
				break;
			}
			rc = te_strvec_pushf(out, err, "%s=%s",
			                     d->imports[j].build_arg, value);
		}
	}
	return rc;
}

/* The werf labels of a stages image (werf's image metadata labels). */
static int stage_labels(te_labels **out, struct run *run, const char *digest,
                        te_error *err)
{
	int rc;

	rc = te_labels_new(out, err);
	if (rc == 0)
		rc = te_labels_set(*out, "werf", run->cfg->project, err);
	if (rc == 0)
		rc = te_labels_set(*out, "werf-project-repo-commit",
		                   run->commit, err);
	if (rc == 0)
		rc = te_labels_set(*out, "werf-stage-content-digest", digest,
		                   err);
	return rc;
}

/* Hosts buildah may reach without TLS: loopback or --insecure-registry
 * base images, and the stages repo. */
static int insecure_hosts(te_strvec *out, struct run *run,
                          const struct image_job *job, te_error *err)
{
	size_t i;
	int rc = 0;

	for (i = 0; rc == 0 && i < job->inputs.bases.count; i++)
		rc = add_insecure_host(out, job->inputs.bases.items[i],
		                       run->opts->insecure_registry, err);
	if (rc == 0 &&
	    (run->opts->insecure_registry ||
	     te_ref_host_is_loopback(run->repo.domain)) &&
	    !te_strvec_contains(out, run->repo.domain))
		rc = te_strvec_push(out, run->repo.domain, err);
	return rc;
}

/* The build context of one image in <state>/tmp/context-XXXXXX: only the
 * files its content tag covers, or none (an instruction that reads no
 * context).  ctx holds the directory on success. */
static int make_context(te_buf *ctx, struct run *run, struct image_job *job,
                        bool files, te_error *err)
{
	te_gitsrc_limits lim;
	int rc;

	rc = te_buf_printf(ctx, err, "%s/tmp", run->opts->state_dir);
	if (rc < 0)
		return rc;
	if (mkdir(ctx->ptr, 0700) < 0 && errno != EEXIST)
		return te_error_set_errno(err, TE_EIO, errno, "mkdir %s",
		                          ctx->ptr);
	if ((rc = te_buf_puts(ctx, "/context-XXXXXX", err)) < 0)
		return rc;
	if (!mkdtemp(ctx->ptr)) {
		rc = te_error_set_errno(err, TE_EIO, errno, "mkdtemp %s",
		                        ctx->ptr);
		te_buf_clear(ctx);
		return rc;
	}
	if (!files)
		return 0;
	context_limits(&lim, run);
	rc = te_gitsrc_materialize(
	    run->src, run->commit, job->inputs.context_dir, ctx->ptr,
	    keep_input_file, &job->inputs.files, &lim, err);
	if (rc < 0) {
		remove_tree(ctx->ptr);
		te_buf_clear(ctx);
	}
	return rc;
}

/* What one buildah build of an image needs, read from the commit (under
 * run->src_mu) and prepared before any process starts. */
struct build_inputs {
	te_buf ctx;        /* the context directory */
	te_buf dockerfile; /* the image's Dockerfile */
	te_buf authfile;
	te_strvec insecure;
	te_strvec args;
	te_labels *labels;
};

static void build_inputs_dispose(struct build_inputs *in)
{
	if (in->ctx.len)
		remove_tree(in->ctx.ptr);
	if (in->authfile.len)
		remove_authfile(in->authfile.ptr);
	te_buf_dispose(&in->ctx);
	te_buf_dispose(&in->dockerfile);
	te_buf_dispose(&in->authfile);
	te_strvec_dispose(&in->insecure);
	te_strvec_dispose(&in->args);
	te_labels_free(in->labels);
}

static void build_inputs_init(struct build_inputs *in)
{
	te_buf_init(&in->ctx, 4096);
	te_buf_init(&in->dockerfile, TE_EXPORT_DOCKERFILE_MAX);
	te_buf_init(&in->authfile, 4096);
	in->insecure = (te_strvec)TE_STRVEC_INIT;
	in->args = (te_strvec)TE_STRVEC_INIT;
	in->labels = NULL;
}

/* Fill in (after build_inputs_init; build_inputs_dispose in any case). */
static int build_inputs_load(struct build_inputs *in, struct run *run,
                             struct image_job *job, const char *digest,
                             bool files, te_error *err)
{
	int rc;

	pthread_mutex_lock(&run->src_mu);
	rc = make_context(&in->ctx, run, job, files, err);
	if (rc == 0)
		rc = read_dockerfile(&in->dockerfile, run, job, err);
	if (rc == 0)
		rc = make_authfile(&in->authfile, run, job, err);
	pthread_mutex_unlock(&run->src_mu);
	if (rc == 0 && digest)
		rc = stage_labels(&in->labels, run, digest, err);
	if (rc == 0)
		rc = insecure_hosts(&in->insecure, run, job, err);
	if (rc == 0)
		rc = build_args(&in->args, run, job, err);
	return rc;
}

static void base_build_opts(te_build_opts *b, struct run *run,
                            struct image_job *job,
                            const struct build_inputs *in,
                            const te_stage_ctx *ctx)
{
	memset(b, 0, sizeof(*b));
	b->buildah = run->opts->buildah;
	b->state_dir = run->opts->state_dir;
	b->context_dir = in->ctx.ptr;
	b->isolation = run->opts->isolation;
	b->timeout = run->opts->build_timeout;
	b->name = job->cfg->name;
	b->build_args = (const char *const *)in->args.items;
	b->nbuild_args = in->args.count;
	b->platform = job->platform;
	b->labels = in->labels;
	b->image_ref = ctx->image_ref;
	b->authfile = in->authfile.len ? in->authfile.ptr : NULL;
	b->insecure_hosts = (const char *const *)in->insecure.items;
	b->ninsecure_hosts = in->insecure.count;
	b->skip_tls_verify = run->opts->skip_tls_verify;
	b->storage_driver = run->storage_driver;
	b->cancel = ctx->cancel;
	b->log = ctx->log;
}

/* A builder's payload (plan.h): the run and the image it builds. */
struct stage_payload {
	struct run *run;
	struct image_job *job;
};

/* The one stage of a Dockerfile image: `buildah build` of the whole
 * Dockerfile with buildah's layer cache of the state dir. */
static int build_dockerfile(char digest[TE_DIGEST_STR_MAX],
                            const te_stage_ctx *ctx, void *payload,
                            te_error *err)
{
	struct stage_payload *p = payload;
	struct build_inputs in;
	te_build_opts bopts;
	int rc;

	build_inputs_init(&in);
	rc = build_inputs_load(&in, p->run, p->job,
	                       te_plan_stage_digest(ctx->stage), true, err);
	if (rc == 0) {
		base_build_opts(&bopts, p->run, p->job, &in, ctx);
		bopts.dockerfile = in.dockerfile.ptr;
		bopts.dockerfile_len = in.dockerfile.len;
		bopts.target = p->job->cfg->target;
		bopts.layers = true;
		rc = te_build_and_push(digest, &bopts, err);
	}
	build_inputs_dispose(&in);
	return rc;
}

/* ---- staged: true ------------------------------------------------------ */

/*
 * A staged image (werf's staged Dockerfile builder, werf_yaml.yml
 * "staged") is a chain of one stage per Dockerfile instruction.  Each is
 * built by buildah from a one-instruction Dockerfile on top of the stage
 * before it, pulled from the stages repo:
 *
 *   FROM <previous stage>      (the first stage: the Dockerfile's own
 *   ARG ...                     global ARGs and FROM)
 *   <the instruction, as written>
 *
 * with the stage's ARGs in scope repeated before it.  A stage's input
 * (plan.h adds the previous stage's digest) is SHA3-224 over: the
 * instruction as written; for FROM the global ARG lines, the platform,
 * build.cacheVersion and cacheVersion (as werf's FROM stage) and the
 * build args; for ARG the values werf.yaml gives the names it
 * declares; for COPY, ADD and RUN --mount the path, mode and blob id of
 * every context file their sources match (all context files when one is
 * a symlink).  ENV, WORKDIR, USER, SHELL and the like live in the image
 * config, which the next stage inherits.
 *
 * Supported: single-stage Dockerfiles.  Refused with an error naming the
 * image: several FROM instructions and ONBUILD (a trigger would run
 * again in every later stage built FROM this one).
 */

/* A context file an instruction may read: "path\0mode\0oid". */
struct ctx_file {
	char *path;
	char *rec;
	size_t reclen;
	bool link;
};

struct ctx_files {
	struct ctx_file *items;
	size_t count, cap;
	const te_strvec *keep; /* job->inputs.files, sorted */
	te_error *err;
};

static void ctx_files_dispose(struct ctx_files *f)
{
	size_t i;

	for (i = 0; i < f->count; i++) {
		free(f->items[i].path);
		free(f->items[i].rec);
	}
	free(f->items);
}

static int collect_ctx_file(const te_gitsrc_entry *e, void *payload)
{
	struct ctx_files *f = payload;
	struct ctx_file *it;
	te_buf rec = TE_BUF_INIT(16384);
	int rc;

	if (!keep_input_file(e->path, (void *)f->keep))
		return 0;
	if (f->count == f->cap) {
		size_t cap = f->cap ? f->cap * 2 : 64;
		struct ctx_file *p = realloc(f->items, cap * sizeof(*p));

		if (!p)
			return te_error_set(f->err, TE_ENOMEM, "out of memory");
		f->items = p;
		f->cap = cap;
	}
	it = &f->items[f->count];
	memset(it, 0, sizeof(*it));
	it->link = e->mode == 0120000;
	if ((rc = te_buf_puts(&rec, e->path, f->err)) < 0 ||
	    (rc = te_buf_put(&rec, "", 1, f->err)) < 0 ||
	    (rc = te_buf_printf(&rec, f->err, "%o", e->mode)) < 0 ||
	    (rc = te_buf_put(&rec, "", 1, f->err)) < 0 ||
	    (rc = te_buf_puts(&rec, e->oid, f->err)) < 0)
		goto done;
	it->reclen = rec.len;
	it->rec = te_buf_detach(&rec);
	it->path = te_strdup(e->path, f->err);
	if (!it->rec || !it->path) {
		free(it->rec);
		free(it->path);
		rc = te_error_set(f->err, TE_ENOMEM, "out of memory");
		goto done;
	}
	f->count++;
done:
	te_buf_dispose(&rec);
	return rc;
}

/* What staged planning reads once per image. */
struct staged_ctx {
	struct run *run;
	struct image_job *job;
	te_dockerfile *df;
	struct ctx_files files;
	te_strvec args; /* werf.yaml args, then "NAME=<import ...>" */
	te_buf prelude; /* escape directive and global ARG lines */
	te_buf argtext; /* the stage's ARG lines so far */
};

static int staged_fail(const struct staged_ctx *c, te_code code,
                       const char *what, te_error *err)
{
	return te_error_set(err, code, "%s:%d: image \"%s\": staged: %s",
	                    c->run->config_file, c->job->cfg->line,
	                    c->job->cfg->name, what);
}

/* Build args for digests: values of werf.yaml args; imports stand for
 * the dependency (whose tag the plan adds to the first stage). */
static int staged_args(struct staged_ctx *c, te_error *err)
{
	const te_image_config *cfg = c->job->cfg;
	size_t i, j;
	int rc = 0;

	for (i = 0; rc == 0 && i < cfg->args.count; i++)
		rc = te_strvec_push(&c->args, cfg->args.items[i], err);
	for (i = 0; rc == 0 && i < cfg->ndeps; i++)
		for (j = 0; rc == 0 && j < cfg->deps[i].nimports; j++)
			rc = te_strvec_pushf(&c->args, err, "%s=<import %s %d>",
			                     cfg->deps[i].imports[j].build_arg,
			                     cfg->deps[i].image,
			                     (int)cfg->deps[i].imports[j].type);
	return rc;
}

/* Is NAME (the start of an ARG word) declared by the ARG line? */
static bool arg_declares(const char *text, const char *name, size_t nlen)
{
	const char *p = text;

	while (*p && !isspace((unsigned char)*p))
		p++; /* the keyword */
	for (;;) {
		while (*p && isspace((unsigned char)*p))
			p++;
		if (!*p)
			return false;
		if (strncmp(p, name, nlen) == 0 &&
		    (p[nlen] == '=' || !p[nlen] ||
		     isspace((unsigned char)p[nlen])))
			return true;
		while (*p && !isspace((unsigned char)*p))
			p++;
	}
}

/* The context files the instruction's sources match (te_dockerfile_inputs
 * of FROM scratch + the ARGs in scope + the instruction). */
static int hash_step_files(te_digest *d, struct staged_ctx *c, const char *text,
                           te_error *err)
{
	te_buf mini = TE_BUF_INIT(4 * TE_EXPORT_DOCKERFILE_MAX);
	te_strvec bases = TE_STRVEC_INIT, sources = TE_STRVEC_INIT;
	te_dockerfile *df = NULL;
	bool all = false;
	size_t i;
	int rc;

	rc = te_buf_printf(&mini, err, "%sFROM scratch\n%s%s", c->prelude.ptr,
	                   c->argtext.ptr, text);
	if (rc == 0)
		rc = te_dockerfile_parse(&df, mini.ptr, mini.len, err);
	if (rc == 0)
		rc = te_dockerfile_inputs(&bases, &sources, df, NULL,
		                          (const char *const *)c->args.items,
		                          c->args.count, err);
	for (i = 0; rc == 0 && i < c->files.count; i++)
		all |= c->files.items[i].link &&
		       te_dockerfile_sources_match(&sources,
		                                   c->files.items[i].path);
	for (i = 0; rc == 0 && i < c->files.count; i++)
		if (all || te_dockerfile_sources_match(&sources,
		                                       c->files.items[i].path))
			rc = te_digest_field(d, c->files.items[i].rec,
			                     c->files.items[i].reclen, err);
	te_dockerfile_free(df);
	te_strvec_dispose(&bases);
	te_strvec_dispose(&sources);
	te_buf_dispose(&mini);
	return rc;
}

static int step_field(te_digest *d, const char *s, te_error *err)
{
	return te_digest_field(d, s, strlen(s), err);
}

/* The input of one instruction's stage (see the top of this part). */
static int step_input(char out[TE_CONTENT_TAG_LEN + 1], struct staged_ctx *c,
                      const char *kw, const char *text, te_error *err)
{
	te_digest *d = NULL;
	size_t i;
	int rc;

	if ((rc = te_digest_new(&d, err)) < 0)
		return rc;
	if ((rc = step_field(d, "tagexport-staged-v1", err)) < 0 ||
	    (rc = step_field(d, text, err)) < 0)
		goto done;
	if (strcmp(kw, "from") == 0) {
		const te_image_config *cfg = c->job->cfg;

		/* werf's FROM stage covers the image's cacheVersion too. */
		if ((rc = step_field(d, c->prelude.ptr, err)) < 0 ||
		    (rc =
		         step_field(d, c->job->platform ? c->job->platform : "",
		                    err)) < 0 ||
		    (rc = step_field(d,
		                     cfg->build_cache_version
		                         ? cfg->build_cache_version
		                         : "",
		                     err)) < 0 ||
		    (rc = step_field(
		         d, cfg->cache_version ? cfg->cache_version : "",
		         err)) < 0)
			goto done;
		for (i = 0; rc == 0 && i < c->args.count; i++)
			rc = step_field(d, c->args.items[i], err);
	} else if (strcmp(kw, "arg") == 0) {
		for (i = 0; rc == 0 && i < c->args.count; i++)
			if (arg_declares(text, c->args.items[i],
			                 strcspn(c->args.items[i], "=")))
				rc = step_field(d, c->args.items[i], err);
	} else if (!strcmp(kw, "copy") || !strcmp(kw, "add") ||
	           !strcmp(kw, "run")) {
		rc = hash_step_files(d, c, text, err);
	}
	if (rc == 0)
		rc = te_digest_final(out, d, err);
done:
	te_digest_free(d);
	return rc;
}

/* The builder payload of one instruction. */
struct step_payload {
	struct run *run;
	struct image_job *job;
	char *prelude; /* first stage: what comes before its FROM */
	char *argtext; /* later stages: the stage's ARG lines before it */
	char *text;
	char escape;
	bool context; /* it reads the build context */
	bool last;    /* it carries the image's werf labels */
};

static void step_payload_free(void *payload)
{
	struct step_payload *p = payload;

	if (!p)
		return;
	free(p->prelude);
	free(p->argtext);
	free(p->text);
	free(p);
}

static int build_step(char digest[TE_DIGEST_STR_MAX], const te_stage_ctx *ctx,
                      void *payload, te_error *err)
{
	struct step_payload *p = payload;
	te_buf df = TE_BUF_INIT(4 * TE_EXPORT_DOCKERFILE_MAX);
	struct build_inputs in;
	te_build_opts bopts;
	int rc;

	build_inputs_init(&in);
	if (!ctx->base_ref)
		rc = te_buf_printf(&df, err, "%s%s", p->prelude, p->text);
	else
		rc = te_buf_printf(&df, err, "%sFROM %s\n%s%s",
		                   p->escape == '`' ? "# escape=`\n" : "",
		                   ctx->base_ref, p->argtext, p->text);
	/* The werf labels of the last stage as one LABEL instruction of the
	 * file we write (the text ends with a whole instruction): buildah
	 * turns each --label into a step of its own. */
	if (rc == 0 && p->last)
		rc = te_buf_printf(
		    &df, err,
		    "LABEL \"werf\"=\"%s\" \"werf-project-repo-commit\"=\"%s\" "
		    "\"werf-stage-content-digest\"=\"%s\"\n",
		    p->run->cfg->project, p->run->commit,
		    te_plan_stage_digest(ctx->stage));
	if (rc == 0)
		rc = build_inputs_load(&in, p->run, p->job, NULL, p->context,
		                       err);
	if (rc == 0) {
		base_build_opts(&bopts, p->run, p->job, &in, ctx);
		bopts.dockerfile = df.ptr;
		bopts.dockerfile_len = df.len;
		bopts.keep_image = true; /* the next stage pulls it */
		rc = te_build_and_push(digest, &bopts, err);
	}
	build_inputs_dispose(&in);
	te_buf_dispose(&df);
	return rc;
}

/* A stage name for messages: the instruction's first line, cut. */
static void step_name(char out[96], const char *text)
{
	size_t n = strcspn(text, "\n"), i;

	if (n > 90)
		n = 90;
	for (i = 0; i < n; i++)
		out[i] = (unsigned char)text[i] < 0x20 ? ' ' : text[i];
	out[n] = '\0';
	if (!n)
		snprintf(out, 96, "instruction");
}

static int add_step(struct staged_ctx *c, const char *kw, const char *text,
                    bool last, te_error *err)
{
	te_plan_stage_spec spec = {0};
	struct step_payload *p;
	char input[TE_CONTENT_TAG_LEN + 1], name[96];
	int rc;

	if ((rc = step_input(input, c, kw, text, err)) < 0)
		return rc;
	p = calloc(1, sizeof(*p));
	if (!p)
		return te_error_set(err, TE_ENOMEM, "out of memory");
	p->run = c->run;
	p->job = c->job;
	p->escape = te_dockerfile_escape(c->df);
	p->context =
	    !strcmp(kw, "copy") || !strcmp(kw, "add") || !strcmp(kw, "run");
	p->last = last;
	p->prelude = te_strdup(c->prelude.ptr, err);
	p->argtext = te_strdup(c->argtext.ptr, err);
	p->text = te_strdup(text, err);
	step_name(name, text);
	spec.name = name;
	spec.input = input;
	spec.build = build_step;
	spec.payload = p;
	spec.free_payload = step_payload_free;
	if (!p->prelude || !p->argtext || !p->text) {
		step_payload_free(p);
		return TE_ENOMEM;
	}
	return te_plan_add_stage(NULL, c->job->pimg, &spec, err);
}

static int plan_steps(struct staged_ctx *c, te_error *err)
{
	size_t i, n = te_dockerfile_step_count(c->df);
	const char *kw, *text;
	long stage;
	int rc = 0;

	if (te_dockerfile_escape(c->df) == '`')
		rc = te_buf_puts(&c->prelude, "# escape=`\n", err);
	for (i = 0; rc == 0 && i < n; i++) {
		text = te_dockerfile_step(c->df, i, &kw, &stage);
		if (strcmp(kw, "onbuild") == 0)
			return staged_fail(c, TE_EUNSUPPORTED,
			                   "ONBUILD is not supported (it would "
			                   "run again in every later stage)",
			                   err);
		if (stage < 0) {
			rc = te_buf_puts(&c->prelude, text, err);
			continue;
		}
		rc = add_step(c, kw, text, i + 1 == n, err);
		if (rc == 0 && strcmp(kw, "arg") == 0)
			rc = te_buf_puts(&c->argtext, text, err);
	}
	return rc;
}

static int plan_staged(struct run *run, struct image_job *job, te_error *err)
{
	struct staged_ctx c;
	te_buf dockerfile = TE_BUF_INIT(TE_EXPORT_DOCKERFILE_MAX);
	int rc;

	memset(&c, 0, sizeof(c));
	c.run = run;
	c.job = job;
	c.files.keep = &job->inputs.files;
	c.files.err = err;
	te_buf_init(&c.prelude, TE_EXPORT_DOCKERFILE_MAX + 64);
	te_buf_init(&c.argtext, TE_EXPORT_DOCKERFILE_MAX);
	rc = read_dockerfile(&dockerfile, run, job, err);
	if (rc == 0)
		rc = te_dockerfile_parse(&c.df, dockerfile.ptr, dockerfile.len,
		                         err);
	if (rc == 0 && te_dockerfile_stage_count(c.df) != 1) {
		char what[160];

		snprintf(what, sizeof(what),
		         "only single-stage Dockerfiles can be staged; %s has "
		         "%zu FROM instructions (remove staged to build it)",
		         job->inputs.dockerfile_path,
		         te_dockerfile_stage_count(c.df));
		rc = staged_fail(&c, TE_EUNSUPPORTED, what, err);
	}
	if (rc == 0)
		rc = te_gitsrc_walk(run->src, run->commit,
		                    job->inputs.context_dir, collect_ctx_file,
		                    &c.files, err);
	if (rc == 0)
		rc = staged_args(&c, err);
	if (rc == 0)
		rc = plan_steps(&c, err);
	te_dockerfile_free(c.df);
	ctx_files_dispose(&c.files);
	te_strvec_dispose(&c.args);
	te_buf_dispose(&c.prelude);
	te_buf_dispose(&c.argtext);
	te_buf_dispose(&dockerfile);
	return rc;
}

#define DOCKER_V2_TYPE "application/vnd.docker.distribution.manifest.v2+json"
#define DOCKER_LIST_TYPE                                                       \
	"application/vnd.docker.distribution.manifest.list.v2+json"
#define OCI_INDEX_TYPE "application/vnd.oci.image.index.v1+json"

/* The index entry of one built platform image, after checking that the
 * image really is for that platform. */
static int index_child(te_image_index_child *out, struct run *run,
                       te_registry *reg, struct image_job *p, te_error *err)
{
	te_buf body = TE_BUF_INIT(TE_MANIFEST_MAX);
	te_buf config = TE_BUF_INIT(TE_CONFIG_MAX);
	te_image_platform want;
	char have[TE_PLATFORM_STR_MAX];
	int rc;

	rc = te_registry_manifest_get(&body, p->media_type, p->digest, reg,
	                              run->repo.path, p->stages_tag, err);
	if (rc < 0)
		goto done;
	if (!te_image_is_manifest_type(p->media_type)) {
		rc = te_error_set(err, TE_EUNSUPPORTED,
		                  "stages image %s has media type %s, not an "
		                  "image manifest",
		                  p->stages_tag, p->media_type);
		goto done;
	}
	rc = te_image_manifest_parse(&p->parsed, body.ptr, body.len, err);
	if (rc == 0)
		rc = te_registry_blob_get(&config, reg, run->repo.path,
		                          p->parsed.config_digest, err);
	if (rc == 0)
		rc = te_image_config_platform(&out->platform, config.ptr,
		                              config.len, err);
	if (rc == 0)
		rc = te_image_platform_parse(&want, p->platform, err);
	if (rc < 0)
		goto done;
	if (!te_image_platform_matches(&want, &out->platform)) {
		te_image_platform_format(have, &out->platform);
		rc = te_error_set(err, TE_EBUILD,
		                  "the image built for %s is for %s",
		                  p->platform, have);
		goto done;
	}
	out->media_type = p->media_type;
	out->digest = p->digest;
	out->size = (int64_t)body.len;
done:
	te_buf_dispose(&body);
	te_buf_dispose(&config);
	return rc;
}

/* Store the index of the platform images under the image's tag.  The
 * children are pushed already: a registry refuses an index whose
 * children it lacks. */
static int push_stages_index(struct run *run, te_registry *reg,
                             struct image_job *job, te_error *err)
{
	te_image_index_child *children = NULL;
	te_buf index = TE_BUF_INIT(TE_MANIFEST_MAX);
	const char *media_type = DOCKER_LIST_TYPE;
	char digest[TE_DIGEST_STR_MAX];
	size_t i;
	int rc = 0;

	children = calloc(job->nplatforms + 1, sizeof(*children));
	if (!children)
		return te_error_set(err, TE_ENOMEM, "out of memory");
	for (i = 0; i < job->nplatforms && rc == 0; i++) {
		rc = index_child(&children[i], run, reg, &job->platforms[i],
		                 err);
		/* A Docker list holds only Docker manifests. */
		if (rc == 0 && strcmp(children[i].media_type, DOCKER_V2_TYPE))
			media_type = OCI_INDEX_TYPE;
	}
	if (rc == 0)
		rc = te_image_index_build(&index, media_type, children,
		                          job->nplatforms, err);
	if (rc == 0)
		rc = te_registry_manifest_put(digest, reg, run->repo.path,
		                              job->stages_tag, media_type,
		                              index.ptr, index.len, err);
	if (rc == 0)
		te_log_emit(&run->log, TE_LOG_INFO, "stored index %s/%s:%s@%s",
		            run->repo.domain, run->repo.path, job->stages_tag,
		            digest);
	free(children);
	te_buf_dispose(&index);
	if (rc < 0)
		te_error_wrap(err, "image \"%s\"", job->cfg->name);
	return rc;
}

/* After the platform images are built: the index of them, unless it is
 * stored already. */
static int ensure_index(struct run *run, struct image_job *job,
                        te_export_image *res, te_error *err)
{
	char digest[TE_DIGEST_STR_MAX];
	te_registry *reg = NULL;
	bool exists = false;
	size_t i;
	int rc;

	for (i = 0; i < job->nplatforms; i++)
		res->built |= te_plan_image_built(job->platforms[i].pimg);
	rc = registry_for(&reg, run, run->repo.domain, err);
	if (rc < 0)
		return rc;
	rc = te_registry_manifest_exists(&exists, digest, reg, run->repo.path,
	                                 job->stages_tag, err);
	if (rc < 0)
		return te_error_wrap(err, "checking %s/%s:%s", run->repo.domain,
		                     run->repo.path, job->stages_tag);
	if (exists)
		return 0;
	res->built = true;
	return push_stages_index(run, reg, job, err);
}

/* ---- the plan ----------------------------------------------------------- */

static void free_payload(void *p)
{
	free(p);
}

/* One image of the plan, named as its progress lines show it. */
static int plan_job(struct run *run, struct image_job *job, const char *name,
                    te_error *err)
{
	te_plan_stage_spec spec = {0};
	struct stage_payload *p;
	te_buf where = TE_BUF_INIT(4096);
	int rc;

	rc = te_buf_printf(&where, err, "%s:%d", run->config_file,
	                   job->cfg->line);
	if (rc == 0)
		rc = te_plan_add_image(&job->pimg, run->plan, name, where.ptr,
		                       err);
	te_buf_dispose(&where);
	if (rc < 0)
		return rc;
	if (job->cfg->staged)
		return plan_staged(run, job, err);
	p = calloc(1, sizeof(*p));
	if (!p)
		return te_error_set(err, TE_ENOMEM, "out of memory");
	p->run = run;
	p->job = job;
	spec.name = "dockerfile";
	spec.input = job->inputs.content_tag;
	spec.build = build_dockerfile;
	spec.payload = p;
	spec.free_payload = free_payload;
	return te_plan_add_stage(NULL, job->pimg, &spec, err);
}

static int plan_image(struct run *run, struct image_job *job, te_error *err)
{
	te_buf name = TE_BUF_INIT(4096);
	size_t i;
	int rc = 0;

	if (!job->nplatforms)
		return plan_job(run, job, job->cfg->name, err);
	if (job->cfg->staged)
		return te_error_set(err, TE_EUNSUPPORTED,
		                    "%s:%d: image \"%s\": staged: a "
		                    "multi-platform image cannot be staged yet",
		                    run->config_file, job->cfg->line,
		                    job->cfg->name);
	if (job->cfg->ndeps)
		return te_error_set(err, TE_EUNSUPPORTED,
		                    "%s:%d: image \"%s\": dependencies of a "
		                    "multi-platform image are not supported",
		                    run->config_file, job->cfg->line,
		                    job->cfg->name);
	for (i = 0; rc == 0 && i < job->nplatforms; i++) {
		te_buf_clear(&name);
		rc = te_buf_printf(&name, err, "%s (%s)", job->cfg->name,
		                   job->platforms[i].platform);
		if (rc == 0)
			rc = plan_job(run, &job->platforms[i], name.ptr, err);
	}
	te_buf_dispose(&name);
	return rc;
}

static int plan_dependencies(struct run *run, struct image_job *job,
                             te_error *err)
{
	size_t i;
	int rc = 0;

	for (i = 0; rc == 0 && i < job->cfg->ndeps; i++) {
		struct image_job *dep = find_job(run, job->cfg->deps[i].image);

		if (dep && dep->nplatforms)
			return te_error_set(
			    err, TE_EUNSUPPORTED,
			    "%s:%d: image \"%s\": a dependency on the "
			    "multi-platform image \"%s\" is not supported",
			    run->config_file, job->cfg->deps[i].line,
			    job->cfg->name, dep->cfg->name);
		if (dep)
			rc = te_plan_add_dependency(job->pimg, dep->pimg, err);
	}
	return rc;
}

/* After sealing, every image's tag is its plan tag. */
static void take_plan_tags(struct image_job *jobs, size_t n)
{
	size_t i, j;

	for (i = 0; i < n; i++) {
		if (jobs[i].pimg)
			jobs[i].stages_tag =
			    (char *)te_plan_image_tag(jobs[i].pimg);
		for (j = 0; j < jobs[i].nplatforms; j++)
			jobs[i].platforms[j].stages_tag =
			    (char *)te_plan_image_tag(
			        jobs[i].platforms[j].pimg);
	}
}

static int make_plan(struct run *run, te_error *err)
{
	size_t i;
	int rc;

	rc = te_plan_new(&run->plan, run->repo.domain, run->repo.path, err);
	for (i = 0; rc == 0 && i < run->njobs; i++)
		rc = plan_image(run, &run->jobs[i], err);
	for (i = 0; rc == 0 && i < run->nextra; i++)
		rc = plan_image(run, &run->extra[i], err);
	for (i = 0; rc == 0 && i < run->njobs; i++)
		rc = plan_dependencies(run, &run->jobs[i], err);
	for (i = 0; rc == 0 && i < run->nextra; i++)
		rc = plan_dependencies(run, &run->extra[i], err);
	if (rc == 0)
		rc = te_plan_seal(run->plan, err);
	if (rc < 0)
		return rc;
	take_plan_tags(run->jobs, run->njobs);
	take_plan_tags(run->extra, run->nextra);
	return 0;
}

static int lookup_stage(bool *exists, char digest[TE_DIGEST_STR_MAX],
                        const te_plan_stage *st, void *payload, te_error *err)
{
	struct run *run = payload;
	te_registry *reg = NULL;
	int rc;

	rc = registry_for(&reg, run, run->repo.domain, err);
	if (rc == 0)
		rc = te_registry_manifest_exists(exists, digest, reg,
		                                 run->repo.path,
		                                 te_plan_stage_digest(st), err);
	if (rc < 0)
		te_error_wrap(err, "checking %s", te_plan_stage_ref(st));
	return rc;
}

/* Build what the stages repo lacks, then the indexes of multi-platform
 * images. */
static int build_all(struct run *run, te_error *err)
{
	te_schedule_opts sopts = {0};
	size_t i;
	int rc;

	rc = te_build_storage_driver(
	    run->storage_driver, sizeof(run->storage_driver),
	    run->opts->buildah, run->opts->state_dir, &run->log, err);
	if (rc < 0)
		return rc;
	te_log_emit(&run->log, TE_LOG_DEBUG, "storage driver: %s",
	            run->storage_driver);
	sopts.parallel = run->opts->parallel > TE_SCHEDULE_PARALLEL_MAX
	                     ? TE_SCHEDULE_PARALLEL_MAX
	                     : run->opts->parallel;
	sopts.lookup = lookup_stage;
	sopts.lookup_payload = run;
	sopts.log = run->log;
	rc = te_schedule_run(run->plan, &sopts, err);
	for (i = 0; rc == 0 && i < run->njobs; i++) {
		struct image_job *job = &run->jobs[i];
		te_export_image *res = &run->result->images[i];

		if (job->nplatforms)
			rc = ensure_index(run, job, res, err);
		else
			res->built = te_plan_image_built(job->pimg);
	}
	return rc;
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

	rc = registry_for(&reg, run, run->repo.domain, err);
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
	rc = registry_for(&src_reg, run, run->repo.domain, err);
	if (rc == 0)
		rc = registry_for(&dst_reg, run, dst.domain, err);
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
		rc = make_plan(&run, err);
	if (rc == 0)
		rc = init_result(&run, err);
	if (rc == 0)
		rc = build_all(&run, err);
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
