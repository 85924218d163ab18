/*
 * export.c - one export run, from a commit to published tags.
 *
 * Order of work, chosen so that bad input never leaves anything behind:
 *   1. everything that can be checked without side effects is checked
 *      first: --repo, every --tag template against every final image,
 *      werf.yaml, image selection, content-based tags;
 *   2. images missing from the stages repo are built and pushed there;
 *   3. each image's stages manifest and config are read once, the config
 *      is relabelled once, and the result is published under every tag.
 * A manifest whose config did not change is published with its original
 * bytes, so re-exporting unchanged content yields identical digests.
 */
#include "tagexport/export.h"

#include <errno.h>
#include <fcntl.h>
#include <ftw.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <jansson.h>

#include "tagexport/buf.h"
#include "tagexport/build.h"
#include "tagexport/config.h"
#include "tagexport/digest.h"
#include "tagexport/gitsrc.h"
#include "tagexport/image.h"
#include "tagexport/reference.h"
#include "tagexport/registry.h"
#include "tagexport/select.h"
#include "tagexport/template.h"

#define WERF_YAML_MAX (1024 * 1024)
#define MAX_REGISTRIES 16

/* The per-image state of a run. */
struct image_job {
	const te_image_config *cfg;
	te_image_inputs inputs;
	const char *platform;
	char *stages_tag; /* == inputs.content_tag */
	te_buf manifest;  /* exported manifest bytes */
	char media_type[128];
	te_buf config; /* exported config bytes */
	char config_digest[TE_DIGEST_STR_MAX];
	te_image_manifest parsed; /* the stages manifest's descriptors */
};

struct run {
	const te_export_opts *opts;
	te_log log;
	te_gitsrc *src;
	te_werf_config *cfg;
	te_ref repo;
	char *git_tag;
	char commit[41];
	struct image_job *jobs;
	size_t njobs;
	te_registry *registries[MAX_REGISTRIES];
	size_t nregistries;
	te_export_result *result;
};

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
	ropts.insecure = run->opts->insecure_registry;
	ropts.skip_tls_verify = run->opts->skip_tls_verify;
	ropts.docker_config_dir = run->opts->docker_config;
	ropts.log = run->log;
	rc = te_registry_new(out, host, &ropts, err);
	if (rc < 0)
		return rc;
	run->registries[run->nregistries++] = *out;
	return 0;
}

/* werf.yaml, else werf.yml, unless --config names one. */
static int load_config(struct run *run, te_error *err)
{
	static const char *const defaults[] = {"werf.yaml", "werf.yml"};
	te_buf data = TE_BUF_INIT(WERF_YAML_MAX);
	const char *path = NULL;
	size_t i;
	int rc = TE_ENOTFOUND;

	if (run->opts->config_path) {
		path = run->opts->config_path;
		rc = te_gitsrc_read_file(&data, run->src, run->commit, path,
		                         err);
		if (rc == TE_ENOTFOUND) {
			te_error_clear(err);
			rc = te_error_set(err, TE_EINVALID,
			                  "config %s not found in commit %.12s",
			                  path, run->commit);
		}
	} else {
		for (i = 0; i < 2 && rc == TE_ENOTFOUND; i++) {
			te_error_clear(err);
			path = defaults[i];
			rc = te_gitsrc_read_file(&data, run->src, run->commit,
			                         path, err);
		}
		if (rc == TE_ENOTFOUND) {
			te_error_clear(err);
			rc =
			    te_error_set(err, TE_EINVALID,
			                 "werf.yaml (or werf.yml) not found in "
			                 "commit %.12s",
			                 run->commit);
		}
	}
	if (rc < 0)
		goto done;
	rc = te_config_parse(&run->cfg, data.ptr, data.len, path, err);
done:
	te_buf_dispose(&data);
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
		job->cfg = &cfg->images[i];
		job->inputs = (te_image_inputs)TE_IMAGE_INPUTS_INIT;
		te_buf_init(&job->manifest, TE_MANIFEST_MAX);
		te_buf_init(&job->config, TE_CONFIG_MAX);
	}
done:
	free(names);
	free(chosen);
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
	for (i = 0; i < run->opts->ntags && rc == 0; i++)
		rc = te_template_validate(run->opts->tags[i], names, run->njobs,
		                          run->git_tag, run->commit, err);
	free(names);
	return rc;
}

static int compute_content_tags(struct run *run, te_error *err)
{
	size_t i;
	int rc = 0;

	for (i = 0; i < run->njobs && rc == 0; i++) {
		struct image_job *job = &run->jobs[i];
		const te_strvec *platforms = &job->cfg->platforms;

		if (platforms->count > 1)
			return te_error_set(
			    err, TE_EUNSUPPORTED,
			    "image \"%s\": multi-platform builds are not "
			    "supported yet",
			    job->cfg->name);
		job->platform = platforms->count ? platforms->items[0] : NULL;
		rc = te_digest_image(&job->inputs, run->src, run->commit,
		                     job->cfg, job->platform, err);
		/* A missing Dockerfile is a mistake in the project, not a
		 * failed export. */
		if (rc == TE_ENOTFOUND)
			rc = err->code = TE_EINVALID;
		job->stages_tag = job->inputs.content_tag;
	}
	return rc;
}

/* ---- building ---------------------------------------------------------- */

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

static int build_image(struct run *run, struct image_job *job, te_error *err)
{
	te_build_opts bopts = {0};
	te_labels *labels = NULL;
	te_strvec insecure = TE_STRVEC_INIT;
	te_buf ctx = TE_BUF_INIT(4096);
	te_buf dockerfile = TE_BUF_INIT(4096);
	te_buf authfile = TE_BUF_INIT(4096);
	te_buf image_ref = TE_BUF_INIT(4096);
	char digest[72];
	bool have_ctx = false;
	size_t i;
	int rc;

	rc = te_buf_printf(&ctx, err, "%s/tmp", run->opts->state_dir);
	if (rc < 0)
		goto done;
	if (mkdir(ctx.ptr, 0700) < 0 && errno != EEXIST) {
		rc =
		    te_error_set_errno(err, TE_EIO, errno, "mkdir %s", ctx.ptr);
		goto done;
	}
	rc = te_buf_puts(&ctx, "/context-XXXXXX", err);
	if (rc < 0)
		goto done;
	if (!mkdtemp(ctx.ptr)) {
		rc = te_error_set_errno(err, TE_EIO, errno, "mkdtemp %s",
		                        ctx.ptr);
		goto done;
	}
	have_ctx = true;
	rc = te_gitsrc_materialize(run->src, run->commit,
	                           job->inputs.context_dir, ctx.ptr,
	                           keep_input_file, &job->inputs.files, err);
	if (rc < 0)
		goto done;

	rc = te_labels_new(&labels, err);
	if (rc == 0)
		rc = te_labels_set(labels, "werf", run->cfg->project, err);
	if (rc == 0)
		rc = te_labels_set(labels, "werf-project-repo-commit",
		                   run->commit, err);
	if (rc == 0)
		rc = te_labels_set(labels, "werf-stage-content-digest",
		                   job->stages_tag, err);
	for (i = 0; rc == 0 && i < job->inputs.bases.count; i++)
		rc = add_insecure_host(&insecure, job->inputs.bases.items[i],
		                       run->opts->insecure_registry, err);
	if (rc == 0 &&
	    (run->opts->insecure_registry ||
	     te_ref_host_is_loopback(run->repo.domain)) &&
	    !te_strvec_contains(&insecure, run->repo.domain))
		rc = te_strvec_push(&insecure, run->repo.domain, err);
	if (rc == 0)
		rc = te_buf_printf(&dockerfile, err, "%s/%s", ctx.ptr,
		                   job->inputs.dockerfile_path);
	if (rc == 0)
		rc =
		    te_buf_printf(&image_ref, err, "%s/%s:%s", run->repo.domain,
		                  run->repo.path, job->stages_tag);
	if (rc == 0 && run->opts->docker_config)
		rc = te_buf_printf(&authfile, err, "%s/config.json",
		                   run->opts->docker_config);
	if (rc < 0)
		goto done;

	bopts.buildah = run->opts->buildah;
	bopts.state_dir = run->opts->state_dir;
	bopts.context_dir = ctx.ptr;
	bopts.dockerfile = dockerfile.ptr;
	bopts.target = job->cfg->target;
	bopts.build_args = (const char *const *)job->cfg->args.items;
	bopts.nbuild_args = job->cfg->args.count;
	bopts.platform = job->platform;
	bopts.labels = labels;
	bopts.image_ref = image_ref.ptr;
	bopts.authfile = authfile.len && access(authfile.ptr, R_OK) == 0
	                     ? authfile.ptr
	                     : NULL;
	bopts.insecure_hosts = (const char *const *)insecure.items;
	bopts.ninsecure_hosts = insecure.count;
	bopts.skip_tls_verify = run->opts->skip_tls_verify;
	bopts.log = run->log;
	te_log_emit(&run->log, TE_LOG_INFO, "building %s -> %s", job->cfg->name,
	            image_ref.ptr);
	rc = te_build_and_push(digest, &bopts, err);
done:
	if (have_ctx)
		remove_tree(ctx.ptr);
	te_labels_free(labels);
	te_strvec_dispose(&insecure);
	te_buf_dispose(&ctx);
	te_buf_dispose(&dockerfile);
	te_buf_dispose(&authfile);
	te_buf_dispose(&image_ref);
	return rc;
}

static int ensure_built(struct run *run, struct image_job *job,
                        te_export_image *res, te_error *err)
{
	char digest[TE_DIGEST_STR_MAX];
	te_registry *reg = NULL;
	bool exists = false;
	int rc;

	rc = registry_for(&reg, run, run->repo.domain, err);
	if (rc < 0)
		return rc;
	rc = te_registry_manifest_exists(&exists, digest, reg, run->repo.path,
	                                 job->stages_tag, err);
	if (rc < 0)
		return te_error_wrap(err, "checking %s/%s:%s", run->repo.domain,
		                     run->repo.path, job->stages_tag);
	if (exists) {
		te_log_emit(&run->log, TE_LOG_INFO,
		            "%s: %s/%s:%s exists, not building", job->cfg->name,
		            run->repo.domain, run->repo.path, job->stages_tag);
		return 0;
	}
	rc = build_image(run, job, err);
	if (rc < 0)
		return te_error_wrap(err, "image \"%s\"", job->cfg->name);
	res->built = true;
	return 0;
}

/* ---- relabelling ------------------------------------------------------- */

/* Read the stages manifest and config once; produce the exported ones. */
static int prepare_export(struct run *run, struct image_job *job, te_error *err)
{
	char digest[TE_DIGEST_STR_MAX];
	te_buf original = TE_BUF_INIT(TE_CONFIG_MAX);
	te_buf source = TE_BUF_INIT(TE_MANIFEST_MAX);
	te_registry *reg = NULL;
	bool changed = false;
	int rc;

	rc = registry_for(&reg, run, run->repo.domain, err);
	if (rc == 0)
		rc = te_registry_manifest_get(&source, job->media_type, digest,
		                              reg, run->repo.path,
		                              job->stages_tag, err);
	if (rc < 0)
		goto done;
	if (!te_image_is_manifest_type(job->media_type)) {
		rc = te_error_set(err, TE_EUNSUPPORTED,
		                  "stages image %s has media type %s; only "
		                  "single-platform image manifests are "
		                  "supported yet",
		                  job->stages_tag, job->media_type);
		goto done;
	}
	rc = te_image_manifest_parse(&job->parsed, source.ptr, source.len, err);
	if (rc == 0)
		rc = te_registry_blob_get(&original, reg, run->repo.path,
		                          job->parsed.config_digest, err);
	if (rc == 0)
		rc = te_image_relabel_config(&job->config, &changed,
		                             original.ptr, original.len,
		                             run->opts->add_labels, err);
	if (rc < 0)
		goto done;
	if (!changed) {
		memcpy(job->config_digest, job->parsed.config_digest,
		       TE_DIGEST_STR_MAX);
		rc = te_buf_put(&job->manifest, source.ptr, source.len, err);
		goto done;
	}
	te_image_sha256(job->config_digest, job->config.ptr, job->config.len);
	rc = te_image_manifest_set_config(&job->manifest, source.ptr,
	                                  source.len, job->config_digest,
	                                  job->config.len, err);
done:
	te_buf_dispose(&original);
	te_buf_dispose(&source);
	if (rc < 0)
		te_error_wrap(err, "image \"%s\"", job->cfg->name);
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
	rc = te_registry_blobs_copy(
	    &copied, dst_reg, dst.path, src_reg, run->repo.path,
	    job->parsed.layers, job->parsed.nlayers, run->opts->parallel, err);
	if (rc == 0)
		rc =
		    te_registry_blob_put(dst_reg, dst.path, job->config_digest,
		                         job->config.ptr, job->config.len, err);
	if (rc == 0)
		rc = te_registry_manifest_put(
		    digest, dst_reg, dst.path,
		    dst.digest ? dst.digest : dst.tag, job->media_type,
		    job->manifest.ptr, job->manifest.len, err);
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

static int export_image(struct run *run, struct image_job *job,
                        te_export_image *res, te_error *err)
{
	size_t i;
	int rc;

	rc = ensure_built(run, job, res, err);
	if (rc == 0)
		rc = prepare_export(run, job, err);
	if (rc < 0)
		return rc;
	res->refs = calloc(run->opts->ntags + 1, sizeof(*res->refs));
	if (!res->refs)
		return te_error_set(err, TE_ENOMEM, "out of memory");
	for (i = 0; i < run->opts->ntags; i++) {
		rc = publish(run, job, &res->refs[i], run->opts->tags[i], err);
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

	rc = check_opts(&run, err);
	if (rc == 0)
		rc = resolve_source(&run, err);
	if (rc == 0)
		rc = load_config(&run, err);
	if (rc == 0)
		rc = select_images(&run, err);
	if (rc == 0)
		rc = validate_templates(&run, err);
	if (rc == 0)
		rc = compute_content_tags(&run, err);
	if (rc == 0)
		rc = init_result(&run, err);
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
	for (i = 0; i < run.njobs; i++) {
		te_image_inputs_dispose(&run.jobs[i].inputs);
		te_buf_dispose(&run.jobs[i].manifest);
		te_buf_dispose(&run.jobs[i].config);
		te_image_manifest_dispose(&run.jobs[i].parsed);
	}
	free(run.jobs);
	for (i = 0; i < run.nregistries; i++)
		te_registry_free(run.registries[i]);
	te_export_result_free(run.result);
	te_config_free(run.cfg);
	te_gitsrc_free(run.src);
	te_ref_dispose(&run.repo);
	free(run.git_tag);
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
		free(img->name);
		free(img->content_based_tag);
		free(img->stages_ref);
	}
	free(res->images);
	free(res->git_tag);
	free(res);
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
