/*
 * export_build.c - the build half of an export run: the run's images as a
 * plan (plan.h), the builders of Dockerfile images (the whole Dockerfile
 * in one `buildah build` with buildah's layer cache, or, with `staged:
 * true`, one stage per instruction), the scheduler call (schedule.h),
 * and the stages index of each multi-platform image.
 *
 * Builders run on the scheduler's threads.  They share the run read-only
 * except for the git source, which they read under run->src_mu (libgit2
 * objects are not shared between threads: libgit2 docs/threading.md);
 * the registry clients of the run are only used by the lookup callback,
 * which the scheduler serialises, and after the schedule.
 */
#include <ctype.h>
#include <errno.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <fcntl.h>
#include <sys/stat.h>
#include <sys/utsname.h>
#include <unistd.h>

#include "export_int.h"
#include "secrets_int.h"
#include "tagexport/build.h"
#include "tagexport/dockerfile.h"
#include "tagexport/fs.h"
#include "tagexport/labels.h"
#include "tagexport/fs.h"
#include "tagexport/imagespec.h"
#include "tagexport/schedule.h"
#include "tagexport/stapel.h"

#define TE_EXPORT_DOCKERFILE_MAX (1024 * 1024) /* as digest.c reads it */

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
	te_export__registry_opts(&ropts, run);
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
	te_export__context_limits(&lim, run);
	rc = te_gitsrc_materialize(
	    run->src, run->commit, job->inputs.context_dir, ctx->ptr,
	    te_export__keep_file, &job->inputs.files, &lim, err);
	if (rc < 0) {
		te_fs_remove_tree(ctx->ptr);
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
	te_secret_values secrets; /* werf.yaml secrets' values (secrets.c) */
	te_buf ssh;               /* RUN's ssh source, when werf.yaml has ssh */
};

static void build_inputs_dispose(struct build_inputs *in)
{
	if (in->ctx.len)
		te_fs_remove_tree(in->ctx.ptr);
	if (in->authfile.len)
		remove_authfile(in->authfile.ptr);
	te_buf_dispose(&in->ctx);
	te_buf_dispose(&in->dockerfile);
	te_buf_dispose(&in->authfile);
	te_strvec_dispose(&in->insecure);
	te_strvec_dispose(&in->args);
	te_labels_free(in->labels);
	te_secrets__dispose(&in->secrets);
	te_buf_dispose(&in->ssh);
}

static void build_inputs_init(struct build_inputs *in)
{
	te_buf_init(&in->ctx, 4096);
	te_buf_init(&in->dockerfile, TE_EXPORT_DOCKERFILE_MAX);
	te_buf_init(&in->authfile, 4096);
	in->insecure = (te_strvec)TE_STRVEC_INIT;
	in->args = (te_strvec)TE_STRVEC_INIT;
	in->labels = NULL;
	in->secrets = (te_secret_values){NULL, NULL, 0};
	te_buf_init(&in->ssh, 65536);
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
	if (rc == 0)
		rc = te_secrets__resolve(&in->secrets, job->cfg,
		                         run->opts->secret,
		                         run->opts->secret_payload, err);
	if (rc == 0 && job->cfg->ssh)
		rc = te_secrets__ssh_source(&in->ssh, run->opts, err);
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
	b->network = job->cfg->network;
	b->add_hosts = (const char *const *)job->cfg->add_hosts.items;
	b->nadd_hosts = job->cfg->add_hosts.count;
	b->secrets = in->secrets.items;
	b->nsecrets = in->secrets.count;
	if (job->cfg->ssh) {
		b->ssh_id = job->cfg->ssh;
		b->ssh_source = in->ssh.ptr;
	}
}

/* werf.yaml's imageSpec, applied to the config of an image's last stage
 * before it is pushed (build.h, edit_config). */
struct spec_edit {
	const te_imagespec *spec;
	const char *image;
	const char *project;
	const te_log *log;
};

static int apply_imagespec(te_buf *out, const void *config, size_t len,
                           void *payload, te_error *err)
{
	const struct spec_edit *e = payload;
	int rc = te_imagespec_apply(out, config, len, e->spec, e->image,
	                            e->project, err);

	/* werf's warning, worded for export (which strips them all) */
	if (rc == 0 && te_imagespec_warns_essential(e->spec))
		te_log_emit(e->log, TE_LOG_WARN,
		            "image %s: imageSpec removeLabels names werf's "
		            "essential labels, which stay in the stages image; "
		            "export strips every werf label (set "
		            "keepEssentialWerfLabels to silence this)",
		            e->image);
	return rc < 0 ? te_error_wrap(err, "imageSpec") : 0;
}

/* The last stage of an image with an imageSpec edits its config. */
static void edit_for_imagespec(te_build_opts *b, struct spec_edit *edit,
                               struct run *run, struct image_job *job,
                               const te_stage_ctx *ctx)
{
	if (te_imagespec_is_empty(&job->cfg->imagespec))
		return;
	*edit = (struct spec_edit){&job->cfg->imagespec, job->cfg->name,
	                           run->cfg->project, &ctx->log};
	b->edit_config = apply_imagespec;
	b->edit_payload = edit;
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
	struct spec_edit edit;
	te_build_opts bopts;
	int rc;

	build_inputs_init(&in);
	rc = build_inputs_load(&in, p->run, p->job,
	                       te_plan_stage_digest(ctx->stage), true, err);
	if (rc == 0) {
		base_build_opts(&bopts, p->run, p->job, &in, ctx);
		edit_for_imagespec(&bopts, &edit, p->run, p->job, ctx);
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

	if (!te_export__keep_file(e->path, (void *)f->keep))
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
	struct spec_edit edit;
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
		if (p->last)
			edit_for_imagespec(&bopts, &edit, p->run, p->job, ctx);
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
	rc = te_export__registry_for(&reg, run, run->repo.domain, err);
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

/* ---- Stapel images (stapel.h) ------------------------------------------ */

/* What every Stapel stage builder of the run shares: built once, freed
 * with the run (te_export__stapel_free). */
struct te_export_stapel {
	te_stapel_env env;
	te_build_opts build;
	te_registry_opts ropts;
	te_gitsrc_limits lim;
	te_strvec insecure;
	te_buf authfile;
	struct image_job bases; /* only inputs.bases: the `from` images */
	char native[64];        /* env.native_platform */
	te_strvec runnable;     /* env.runnable_archs */
};

void te_export__stapel_free(struct run *run)
{
	struct te_export_stapel *g = run->stapel;

	if (!g)
		return;
	if (g->authfile.len)
		remove_authfile(g->authfile.ptr);
	te_buf_dispose(&g->authfile);
	te_strvec_dispose(&g->insecure);
	te_strvec_dispose(&g->runnable);
	te_strvec_dispose(&g->bases.inputs.bases);
	te_stapel_inflight_free(g->env.inflight);
	te_stapel_remotes_free(g->env.remotes);
	te_gitsrc_free(g->env.root);
	free(g);
	run->stapel = NULL;
}

/* basicAuth passwords from env or src: the front end's build secrets. */
static int remote_secret(te_buf *out, const char *id, int kind, const char *ref,
                         void *payload, te_error *err)
{
	const struct run *run = payload;

	return run->opts->secret(out, id, (te_secret_kind)kind, ref,
	                         run->opts->secret_payload, err);
}

/* Remote git mappings fetch into <state>/git-remotes (stapel/remote.c);
 * ssh urls use the first of the project's ssh keys. */
static int stapel_remotes(te_stapel_remotes **out, struct run *run,
                          te_error *err)
{
	te_stapel_remote_opts o;

	memset(&o, 0, sizeof(o));
	o.state_dir = run->opts->state_dir;
	o.ssh_key = run->opts->nssh_keys ? run->opts->ssh_keys[0] : NULL;
	if (run->opts->secret) {
		o.secret = remote_secret;
		o.secret_payload = run;
	}
	return te_stapel_remotes_new(out, &o, err);
}

/* te_stapel_env's secrets: the values of one image's werf.yaml secrets
 * from the export's source, held while one stage builds (secrets.c). */
static int stapel_secrets_get(void **held, const te_build_secret **items,
                              size_t *n, const te_image_config *ic,
                              void *payload, te_error *err)
{
	const te_export_opts *o = payload;
	te_secret_values *v = calloc(1, sizeof(*v));
	int rc;

	*held = NULL;
	if (!v)
		return te_error_set(err, TE_ENOMEM, "out of memory");
	rc = te_secrets__resolve(v, ic, o->secret, o->secret_payload, err);
	if (rc < 0) {
		free(v);
		return rc;
	}
	*held = v;
	*items = v->items;
	*n = v->count;
	return 0;
}

static void stapel_secrets_put(void *held)
{
	te_secrets__dispose(held);
	free(held);
}
/* Can the binfmt_misc entry name run binaries in build containers?  It
 * must be enabled (its file's first line) and have the F flag: the
 * interpreter is opened when registered, so it need not exist inside
 * the container (Linux Documentation/admin-guide/binfmt-misc.rst). */
static bool binfmt_enabled(const char *name)
{
	char path[128], text[1024];
	const char *flags;
	ssize_t got;
	int fd;

	snprintf(path, sizeof(path), "/proc/sys/fs/binfmt_misc/%s", name);
	fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return false;
	got = read(fd, text, sizeof(text) - 1);
	close(fd);
	if (got < 0)
		return false;
	text[got] = '\0';
	if (strncmp(text, "enabled\n", 8))
		return false;
	flags = strstr(text, "\nflags: ");
	return flags && strcspn(flags + 8, "F\n") < strcspn(flags + 8, "\n");
}

/* The machine's platform, and the architectures it runs: its own and
 * those qemu-user emulates. */
static int host_platforms(struct te_export_stapel *g, te_error *err)
{
	struct utsname u;
	const char *own = NULL;

	if (uname(&u) == 0)
		own = te_stapel_goarch(u.machine);
	if (own) {
		snprintf(g->native, sizeof(g->native), "linux/%s", own);
		g->env.native_platform = g->native;
	}
	g->env.runnable_archs = &g->runnable;
	return te_stapel_runnable(&g->runnable, own ? u.machine : NULL,
	                          binfmt_enabled, err);
}

static int add_other(te_plan_image **out, void *payload,
                     const te_image_config *image, const char *platform,
                     te_error *err);

static int stapel_glue(struct run *run, te_error *err)
{
	struct te_export_stapel *g;
	te_buf tmp = TE_BUF_INIT(4096);
	size_t i;
	int rc = 0;

	if (run->stapel)
		return 0;
	g = calloc(1, sizeof(*g));
	if (!g)
		return te_error_set(err, TE_ENOMEM, "out of memory");
	run->stapel = g;
	g->bases.inputs.bases = (te_strvec)TE_STRVEC_INIT;
	g->insecure = (te_strvec)TE_STRVEC_INIT;
	g->runnable = (te_strvec)TE_STRVEC_INIT;
	te_buf_init(&g->authfile, 4096);
	for (i = 0; rc == 0 && i < run->cfg->nimages; i++) {
		const te_stapel_image *s = run->cfg->images[i].stapel;

		if (s && s->from)
			rc = te_strvec_push(&g->bases.inputs.bases, s->from,
			                    err);
	}
	if (rc == 0)
		rc = te_buf_printf(&tmp, err, "%s/tmp", run->opts->state_dir);
	if (rc == 0)
		rc = te_fs_mkdirs(tmp.ptr, err);
	te_buf_dispose(&tmp);
	if (rc == 0)
		rc = insecure_hosts(&g->insecure, run, &g->bases, err);
	if (rc == 0)
		rc = make_authfile(&g->authfile, run, &g->bases, err);
	if (rc == 0)
		rc = te_stapel_inflight_new(&g->env.inflight, err);
	if (rc == 0)
		rc = stapel_remotes(&g->env.remotes, run, err);
	/* git mappings name paths in the repository, not in --dir */
	if (rc == 0)
		rc = te_gitsrc_open_root(&g->env.root, run->src, err);
	rc = host_platforms(g, err);
	if (rc < 0)
		return rc;
	g->build.buildah = run->opts->buildah;
	g->build.state_dir = run->opts->state_dir;
	g->build.isolation = run->opts->isolation;
	g->build.timeout = run->opts->build_timeout;
	g->build.authfile = g->authfile.len ? g->authfile.ptr : NULL;
	g->build.insecure_hosts = (const char *const *)g->insecure.items;
	g->build.ninsecure_hosts = g->insecure.count;
	g->build.skip_tls_verify = run->opts->skip_tls_verify;
	/* filled by te_export__build before any builder runs */
	g->build.storage_driver = run->storage_driver;
	te_export__registry_opts(&g->ropts, run);
	te_export__context_limits(&g->lim, run);
	g->env.src = run->src;
	g->env.commit = run->commit;
	g->env.project = run->cfg->project;
	g->env.file = run->config_file;
	g->env.build = &g->build;
	g->env.registry_host = run->repo.domain;
	g->env.registry_opts = &g->ropts;
	g->env.repo_path = run->repo.path;
	g->env.src_mu = &run->src_mu;
	g->env.limits = &g->lim;
	g->env.loose_giterminism =
	    run->opts->render && run->opts->render->loose_giterminism;
	g->env.policy = run->opts->stapel_policy;
	g->env.secrets_get = stapel_secrets_get;
	g->env.secrets_put = stapel_secrets_put;
	g->env.secrets_payload = (void *)run->opts;
	g->env.log = run->log;
	g->env.add_other = add_other;
	g->env.add_other_payload = run;
	return 0;
}

/* A Stapel image: its conveyor (one per platform), and the images it
 * uses. */
static int plan_stapel(struct run *run, struct image_job *job, te_error *err)
{
	size_t index = (size_t)(job->cfg - run->cfg->images), i;
	int rc = stapel_glue(run, err);

	if (rc == 0 && !job->nplatforms)
		rc = te_stapel_plan_add(&job->pimg, run->plan, run->cfg->images,
		                        run->cfg->nimages, index,
		                        &run->stapel->env, err);
	for (i = 0; rc == 0 && i < job->nplatforms; i++)
		rc = te_stapel_plan_add_for(&job->platforms[i].pimg, run->plan,
		                            run->cfg->images, run->cfg->nimages,
		                            index, job->platforms[i].platform,
		                            &run->stapel->env, err);
	return rc;
}

static int plan_image(struct run *run, struct image_job *job, te_error *err);

/* te_stapel_add_other_fn: a Dockerfile image a Stapel image uses, as a
 * job of the run (built, not exported, unless selected), planned now;
 * of a multi-platform one, the platform the Stapel image is built for. */
static int add_other(te_plan_image **out, void *payload,
                     const te_image_config *image, const char *platform,
                     te_error *err)
{
	struct run *run = payload;
	struct image_job *job = NULL;
	const char *pick = NULL;
	size_t i;
	int rc;

	*out = NULL;
	rc = te_export__add_job(&job, run, image, err);
	if (rc == 0)
		rc = plan_image(run, job, err);
	if (rc == 0)
		rc = te_stapel_pick_platform(&pick, &image->platforms, platform,
		                             run->stapel->env.native_platform,
		                             false, err);
	if (rc < 0)
		return rc;
	if (!pick)
		*out = job->pimg;
	for (i = 0; pick && i < job->nplatforms; i++)
		if (!strcmp(job->platforms[i].platform, pick))
			*out = job->platforms[i].pimg;
	if (!*out)
		return te_error_set(err, TE_EINVALID,
		                    "no build of image \"%s\" for %s",
		                    image->name, pick ? pick : "this platform");
	return 0;
}

/* Is the job in the plan already (a Stapel image's plan added it)? */
static bool planned(const struct image_job *job)
{
	return job->pimg || (job->nplatforms && job->platforms[0].pimg);
}

static int plan_image(struct run *run, struct image_job *job, te_error *err)
{
	/* A nameless image (image: ~) is the only image of its werf.yaml. */
	const char *shown = *job->cfg->name ? job->cfg->name : "~";
	te_buf name = TE_BUF_INIT(4096);
	size_t i;
	int rc = 0;

	if (planned(job))
		return 0;
	if (job->cfg->stapel)
		return plan_stapel(run, job, err);
	if (!job->nplatforms)
		return plan_job(run, job, shown, err);
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
		rc = te_buf_printf(&name, err, "%s (%s)", shown,
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
		struct image_job *dep =
		    te_export__find_job(run, job->cfg->deps[i].image);

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

/* The Stapel images the plan builds for others (fromImage, import) are no
 * jobs, whose build keys export.c checked: their secrets are checked here,
 * still before anything is built. */
static int check_stapel_secrets(struct run *run, te_error *err)
{
	size_t i;
	int rc = 0;

	for (i = 0; rc == 0 && i < run->cfg->nimages; i++) {
		const te_image_config *ic = &run->cfg->images[i];

		if (ic->stapel && ic->nsecrets &&
		    !te_export__find_job(run, ic->name) &&
		    te_plan_image_find(run->plan, ic->name))
			rc = te_secrets__check_image(run->opts, run->src,
			                             run->commit, ic, err);
	}
	return rc;
}

/* A multi-platform Stapel image's tag: its index's, over the platforms'
 * plan tags as for a Dockerfile image (digest.h). */
static int stapel_index_tag(struct image_job *job, te_error *err)
{
	const char **platforms, **tags;
	size_t i;
	int rc;

	if (!job->cfg->stapel || !job->nplatforms)
		return 0;
	platforms = calloc(job->nplatforms, sizeof(*platforms));
	tags = calloc(job->nplatforms, sizeof(*tags));
	rc = platforms && tags ? 0
	                       : te_error_set(err, TE_ENOMEM, "out of memory");
	for (i = 0; rc == 0 && i < job->nplatforms; i++) {
		platforms[i] = job->platforms[i].platform;
		tags[i] = job->platforms[i].stages_tag;
	}
	if (rc == 0)
		rc = te_digest_multiplatform(job->index_tag, platforms, tags,
		                             job->nplatforms, err);
	if (rc == 0)
		job->stages_tag = job->index_tag;
	free(platforms);
	free(tags);
	return rc;
}

int te_export__plan(struct run *run, te_error *err)
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
		rc = check_stapel_secrets(run, err);
	if (rc == 0)
		rc = te_plan_seal(run->plan, err);
	if (rc < 0)
		return rc;
	take_plan_tags(run->jobs, run->njobs);
	take_plan_tags(run->extra, run->nextra);
	for (i = 0; rc == 0 && i < run->njobs; i++)
		rc = stapel_index_tag(&run->jobs[i], err);
	for (i = 0; rc == 0 && i < run->nextra; i++)
		rc = stapel_index_tag(&run->extra[i], err);
	return rc;
}

static int lookup_stage(bool *exists, char digest[TE_DIGEST_STR_MAX],
                        const te_plan_stage *st, void *payload, te_error *err)
{
	struct run *run = payload;
	te_registry *reg = NULL;
	int rc;

	rc = te_export__registry_for(&reg, run, run->repo.domain, err);
	if (rc == 0)
		rc = te_registry_manifest_exists(exists, digest, reg,
		                                 run->repo.path,
		                                 te_plan_stage_digest(st), err);
	if (rc < 0)
		te_error_wrap(err, "checking %s", te_plan_stage_ref(st));
	return rc;
}

/* te_export_opts.content_lock for the scheduler (schedule.h, lock). */
static int lock_stage(void **held, void *payload, const te_plan_stage *st,
                      te_error *err)
{
	const struct run *run = payload;
	const struct te_export_content_lock *cl = &run->opts->content_lock;

	return cl->lock(held, cl->payload, run->opts->repo,
	                te_plan_stage_digest(st), err);
}

static void unlock_stage(void *payload, void *held)
{
	const struct run *run = payload;
	const struct te_export_content_lock *cl = &run->opts->content_lock;

	cl->unlock(cl->payload, held);
}

/* Build what the stages repo lacks, then the indexes of multi-platform
 * images. */
int te_export__build(struct run *run, te_error *err)
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
	if (run->opts->content_lock.lock) {
		sopts.lock = lock_stage;
		sopts.unlock = unlock_stage;
		sopts.lock_payload = run;
	}
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
