/*
 * stapel/stages.c - the stage list of a Stapel image at a commit and what
 * each stage's digest depends on, as werf lists it
 * (https://werf.io/docs/v2/usage/build/stapel/overview.html and the
 * stage table of https://werf.io/docs/v2/usage/build/process.html).
 *
 * Each present stage gets an input: SHA3-224 (te_digest, ":::"-joined
 * fields) over that stage's own dependencies.  The plan (plan.h) chains
 * them: a stage's digest covers the previous stage's digest, so a change
 * re-runs that stage and everything after it.
 *
 * Invariants:
 *  1. Only what werf lists goes into an input: instructions, cache
 *     versions, `stageDependencies` file contents (path, mode and blob id
 *     of every matching file), mapping parameters, import/dependency
 *     parameters, the base, mounts.  A file no stage depends on changes
 *     no input here: it reaches the image through gitLatestPatch, whose
 *     input the plan resolves from the patch (stapel/build.c).
 *  2. gitArchive depends on the mapping parameters, not on the commit: the
 *     archive is taken once; later commits reach the image as patches
 *     (the user stage whose dependencies changed, else gitLatestPatch).
 *  3. An empty stage (no commands, no imports, no mappings) is absent.
 */
#include "stapel/stapel_int.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "tagexport/digest.h"
#include "tagexport/gitsrc.h"
#include "tagexport/ignore.h"

#define STAGES_VERSION "tagexport-stapel-v1"

static const char *const stage_names[TE_STAPEL_NSTAGES] = {
    "from",
    "beforeInstall",
    "dependenciesBeforeInstall",
    "gitArchive",
    "install",
    "dependenciesAfterInstall",
    "beforeSetup",
    "dependenciesBeforeSetup",
    "setup",
    "dependenciesAfterSetup",
    "gitCache",
    "gitLatestPatch",
    "dockerInstructions",
};

const char *te_stapel_stage_name(te_stapel_stage_kind k)
{
	return (unsigned)k < TE_STAPEL_NSTAGES ? stage_names[k] : "?";
}

/* One hasher per stage; the first failure sticks. */
struct hash {
	te_digest *d;
	int rc;
	te_error *err;
};

static void h_str(struct hash *h, const char *s)
{
	if (h->rc == 0)
		h->rc = te_digest_field(h->d, s ? s : "", s ? strlen(s) : 0,
		                        h->err);
}

/* A value that may be unset: "=" then the value, or "-" alone. */
static void h_opt(struct hash *h, const char *s)
{
	h_str(h, s ? "=" : "-");
	if (s)
		h_str(h, s);
}

static void h_fmt(struct hash *h, const char *tag, size_t n)
{
	char buf[64];

	snprintf(buf, sizeof(buf), "%s:%zu", tag, n);
	h_str(h, buf);
}

/* A counted list, so an item holding ":::" cannot shift the fields. */
static void h_list(struct hash *h, const char *tag, const te_strvec *v)
{
	size_t i;

	h_fmt(h, tag, v->count);
	for (i = 0; i < v->count; i++)
		h_str(h, v->items[i]);
}

static int h_begin(struct hash *h, te_stapel_stage_kind k, te_error *err)
{
	h->err = err;
	h->rc = te_digest_new(&h->d, err);
	h_str(h, STAGES_VERSION);
	h_str(h, stage_names[k]);
	return h->rc;
}

/* ---- the files of the git mappings ---------------------------------- */

/* A glob list as a path matcher: a path matches when a glob matches it
 * or one of its parent directories (werf's include/exclude rule). */
int te_stapel__matcher(te_ignore **out, const te_strvec *globs, te_error *err)
{
	te_buf text = TE_BUF_INIT(TE_IGNORE_MAX_SIZE);
	size_t i;
	int rc = 0;

	*out = NULL;
	if (globs->count == 0)
		return 0;
	for (i = 0; rc == 0 && i < globs->count; i++)
		rc = te_buf_printf(&text, err, "%s\n", globs->items[i]);
	if (rc == 0)
		rc = te_ignore_parse(out, text.ptr, text.len, err);
	te_buf_dispose(&text);
	return rc;
}

/* The matchers of one mapping and the hashers its files feed. */
struct files {
	const te_stapel_git *git;
	te_ignore *include, *exclude;
	te_ignore *deps[TE_STAPEL_NUSER];
	struct hash *all;                   /* a sink (see hash_files) */
	struct hash *user[TE_STAPEL_NUSER]; /* NULL: stage absent */
	const char *only;                   /* add names a file: its name */
	te_error *err;
};

static void files_dispose(struct files *f)
{
	int u;

	te_ignore_free(f->include);
	te_ignore_free(f->exclude);
	for (u = 0; u < TE_STAPEL_NUSER; u++)
		te_ignore_free(f->deps[u]);
}

static int files_init(struct files *f, const te_stapel_git *g, te_error *err)
{
	int rc, u;

	memset(f, 0, sizeof(*f));
	f->git = g;
	f->err = err;
	rc = te_stapel__matcher(&f->include, &g->include_paths, err);
	if (rc == 0)
		rc = te_stapel__matcher(&f->exclude, &g->exclude_paths, err);
	for (u = 0; rc == 0 && u < TE_STAPEL_NUSER; u++)
		rc = te_stapel__matcher(&f->deps[u], &g->stage_deps[u], err);
	return rc;
}

/* werf: a mapping keeps a file that includePaths (when set) match and
 * excludePaths do not. */
bool te_stapel__git_keeps(const te_ignore *include, const te_ignore *exclude,
                          const char *path)
{
	if (include && !te_ignore_match(include, path))
		return false;
	return !te_ignore_match(exclude, path);
}

static void feed(struct hash *h, const te_gitsrc_entry *e)
{
	char mode[16];

	snprintf(mode, sizeof(mode), "%o", e->mode);
	h_str(h, e->path);
	h_str(h, mode);
	h_str(h, e->oid);
}

static int on_file(const te_gitsrc_entry *e, void *payload)
{
	struct files *f = payload;
	int u;

	if (f->only && strcmp(e->path, f->only))
		return 0;
	if (!te_stapel__git_keeps(f->include, f->exclude, e->path))
		return 0;
	feed(f->all, e);
	for (u = 0; u < TE_STAPEL_NUSER; u++)
		if (f->user[u] && f->deps[u] &&
		    te_ignore_match(f->deps[u], e->path))
			feed(f->user[u], e);
	return f->all->rc;
}

/* Walk the mapping's `add` (a directory, or a single file). */
static int walk_mapping(struct files *f, te_gitsrc *src, const char *commit)
{
	const char *add = f->git->add + 1; /* repository-relative */
	const char *slash;
	char *parent = NULL;
	int rc;

	rc = te_gitsrc_walk(src, commit, add, on_file, f, f->err);
	if (rc != TE_ENOTFOUND && rc != TE_EINVALID)
		return rc;
	if (!*add)
		return rc;
	te_error_clear(f->err);
	/* add may name a file: walk its directory for that one name */
	slash = strrchr(add, '/');
	f->only = slash ? slash + 1 : add;
	parent = slash ? strndup(add, (size_t)(slash - add)) : strdup("");
	if (!parent)
		return te_error_set(f->err, TE_ENOMEM, "out of memory");
	rc = te_gitsrc_walk(src, commit, parent, on_file, f, f->err);
	free(parent);
	if (rc == TE_ENOTFOUND) {
		/* nothing there at this commit: an empty mapping */
		te_error_clear(f->err);
		rc = 0;
	}
	return rc;
}

/* ---- the stages ------------------------------------------------------ */

struct build {
	const te_stapel_image *img;
	const te_stapel_inputs *in;
	struct hash h[TE_STAPEL_NSTAGES];
	bool present[TE_STAPEL_NSTAGES];
	te_error *err;
};

static const te_stapel_stage_kind user_stage[TE_STAPEL_NUSER] = {
    TE_STAPEL_STAGE_BEFORE_INSTALL, TE_STAPEL_STAGE_INSTALL,
    TE_STAPEL_STAGE_BEFORE_SETUP, TE_STAPEL_STAGE_SETUP};

static const te_stapel_stage_kind deps_stage[TE_STAPEL_NWHEN] = {
    TE_STAPEL_STAGE_DEPS_BEFORE_INSTALL, TE_STAPEL_STAGE_DEPS_AFTER_INSTALL,
    TE_STAPEL_STAGE_DEPS_BEFORE_SETUP, TE_STAPEL_STAGE_DEPS_AFTER_SETUP};

static int open_stage(struct build *b, te_stapel_stage_kind k)
{
	b->present[k] = true;
	return h_begin(&b->h[k], k, b->err);
}

static void hash_from(struct build *b)
{
	const te_stapel_image *img = b->img;
	struct hash *h = &b->h[TE_STAPEL_STAGE_FROM];
	size_t i;

	h_opt(h, img->from);
	h_opt(h, img->from_image); /* its digest: the plan's dependency */
	h_opt(h, img->from_latest ? b->in->from_digest : NULL);
	h_opt(h, img->from_cache_version);
	h_opt(h, img->cache_version);
	h_opt(h, b->in->cache_version);
	h_opt(h, b->in->platform);
	h_fmt(h, "mounts", img->nmounts);
	for (i = 0; i < img->nmounts; i++) {
		h_fmt(h, "from", (size_t)img->mounts[i].from);
		h_opt(h, img->mounts[i].from_path);
		h_str(h, img->mounts[i].to);
	}
}

static void hash_user(struct build *b, te_stapel_user u)
{
	const te_stapel_shell *sh = &b->img->shell;
	struct hash *h = &b->h[user_stage[u]];

	h_list(h, "commands", &sh->cmds[u]);
	h_opt(h, sh->cache_version);
	h_opt(h, sh->stage_cache_version[u]);
	/* the files of stageDependencies follow, fed by the walk */
}

static void hash_import(struct hash *h, const te_stapel_import *im)
{
	h_str(h, "import");
	h_opt(h, im->image); /* its digest: the plan's dependency */
	h_opt(h, im->external);
	h_opt(h, im->stage);
	h_str(h, im->add);
	h_str(h, im->to);
	h_opt(h, im->owner);
	h_opt(h, im->group);
	h_list(h, "include", &im->include_paths);
	h_list(h, "exclude", &im->exclude_paths);
}

static void hash_mapping(struct hash *h, const te_stapel_git *g)
{
	te_buf url = TE_BUF_INIT(16384);

	h_str(h, "git");
	/* a remote's url without credentials, never its ref: a moved tag
	 * reaches the image as a patch, as a new project commit does */
	if (g->url) {
		if (h->rc == 0)
			h->rc = te_stapel__url_normalize(&url, g->url, h->err);
		h_str(h, "url");
		h_str(h, url.ptr);
	}
	te_buf_dispose(&url);
	h_str(h, g->add);
	h_str(h, g->to);
	h_opt(h, g->owner);
	h_opt(h, g->group);
	h_list(h, "include", &g->include_paths);
	h_list(h, "exclude", &g->exclude_paths);
}

static void hash_docker(struct hash *h, const te_stapel_docker *dk)
{
	h_list(h, "VOLUME", &dk->volume);
	h_list(h, "EXPOSE", &dk->expose);
	h_list(h, "ENV", &dk->env);
	h_list(h, "LABEL", &dk->label);
	h_opt(h, dk->workdir);
	h_opt(h, dk->user);
	h_opt(h, dk->entrypoint);
	h_opt(h, dk->cmd);
	h_opt(h, dk->healthcheck);
}

/* Which stages exist and their config-only fields. */
static int open_stages(struct build *b)
{
	const te_stapel_image *img = b->img;
	size_t i;
	int rc, u;

	rc = open_stage(b, TE_STAPEL_STAGE_FROM);
	for (u = 0; rc == 0 && u < TE_STAPEL_NUSER; u++)
		if (img->shell.cmds[u].count)
			rc = open_stage(b, user_stage[u]);
	for (i = 0; rc == 0 && i < img->nimports; i++)
		if (!b->present[deps_stage[img->imports[i].when]])
			rc = open_stage(b, deps_stage[img->imports[i].when]);
	for (i = 0; rc == 0 && i < img->ndeps; i++)
		if (!b->present[deps_stage[img->deps[i].when]])
			rc = open_stage(b, deps_stage[img->deps[i].when]);
	if (rc == 0 && img->ngit)
		rc = open_stage(b, TE_STAPEL_STAGE_GIT_ARCHIVE);
	if (rc == 0 && img->ngit && !img->disable_git_after_patch)
		rc = open_stage(b, TE_STAPEL_STAGE_GIT_LATEST_PATCH);
	if (rc == 0 && img->docker.set)
		rc = open_stage(b, TE_STAPEL_STAGE_DOCKER);
	return rc;
}

static void hash_config(struct build *b)
{
	const te_stapel_image *img = b->img;
	size_t i;
	int u;

	hash_from(b);
	for (u = 0; u < TE_STAPEL_NUSER; u++)
		if (b->present[user_stage[u]])
			hash_user(b, (te_stapel_user)u);
	for (i = 0; i < img->nimports; i++)
		hash_import(&b->h[deps_stage[img->imports[i].when]],
		            &img->imports[i]);
	for (i = 0; i < img->ndeps; i++) {
		struct hash *h = &b->h[deps_stage[img->deps[i].when]];
		h_str(h, "dependency");
		h_str(h, img->deps[i].image);
		h_list(h, "imports", &img->deps[i].imports);
	}
	for (i = 0; i < img->ngit; i++)
		hash_mapping(&b->h[TE_STAPEL_STAGE_GIT_ARCHIVE], &img->git[i]);
	if (b->present[TE_STAPEL_STAGE_DOCKER])
		hash_docker(&b->h[TE_STAPEL_STAGE_DOCKER], &img->docker);
}

/* A mapping's files at its commit: the project's, or its remote's. */
static int walk_git(struct files *f, struct build *b, te_gitsrc *src,
                    const char *commit)
{
	if (f->git->url &&
	    !te_stapel__remote_get(&src, &commit, b->in->remotes, f->git))
		return te_error_set(b->err, TE_EINVALID,
		                    "git url %s (line %d) was not fetched",
		                    f->git->url, f->git->line);
	return walk_mapping(f, src, commit);
}

/* The files of stageDependencies for their user stage.  gitLatestPatch
 * hashes no file here: werf's digest of it covers the patch from the
 * previous stage's commit (werf/werf pkg/build/stage/git_latest_patch.go,
 * GetDependencies), which the plan resolves (stapel/build.c); the walk
 * feeds a sink for it. */
static int hash_files(struct build *b, te_gitsrc *src, const char *commit)
{
	struct hash sink = {NULL, 0, b->err};
	struct files f;
	size_t i;
	int rc, u;

	rc = te_digest_new(&sink.d, b->err);
	if (rc < 0)
		return rc;
	for (i = 0; rc == 0 && i < b->img->ngit; i++) {
		rc = files_init(&f, &b->img->git[i], b->err);
		f.all = &sink;
		h_fmt(f.all, "git", i);
		for (u = 0; u < TE_STAPEL_NUSER; u++)
			if (b->present[user_stage[u]]) {
				f.user[u] = &b->h[user_stage[u]];
				h_fmt(f.user[u], "git", i);
			}
		if (rc == 0)
			rc = walk_git(&f, b, src, commit);
		files_dispose(&f);
	}
	te_digest_free(sink.d);
	return rc;
}

/* imageSpec edits the config of the last stage (werf's imageSpec stage
 * comes after every other), so that stage's input covers it. */
static void hash_imagespec(struct build *b)
{
	int k = TE_STAPEL_NSTAGES - 1;

	if (!b->in->imagespec || !*b->in->imagespec)
		return;
	while (k > 0 && !b->present[k])
		k--;
	h_str(&b->h[k], "imageSpec");
	h_str(&b->h[k], b->in->imagespec);
}

static int finish(te_stapel_stages *out, struct build *b)
{
	int k, rc = 0;

	out->count = 0;
	for (k = 0; k < TE_STAPEL_NSTAGES; k++) {
		te_stapel_stage *st;

		if (!b->present[k])
			continue;
		if (b->h[k].rc < 0)
			return b->h[k].rc;
		st = &out->items[out->count++];
		st->kind = (te_stapel_stage_kind)k;
		rc = te_digest_final(st->input, b->h[k].d, b->err);
		if (rc < 0)
			return rc;
	}
	return 0;
}

int te_stapel_stages_compute(te_stapel_stages *out, const te_stapel_image *img,
                             te_gitsrc *src, const char *commit,
                             const te_stapel_inputs *in, te_error *err)
{
	static const te_stapel_inputs none = {NULL, NULL, NULL, NULL, NULL};
	struct build b;
	int rc, k;

	memset(&b, 0, sizeof(b));
	b.img = img;
	b.in = in ? in : &none;
	b.err = err;
	memset(out, 0, sizeof(*out));
	if (img->from_latest && !b.in->from_digest)
		return te_error_set(err, TE_EINVALID,
		                    "fromLatest needs the base image's digest");
	rc = open_stages(&b);
	if (rc == 0) {
		hash_config(&b);
		hash_imagespec(&b);
		rc = hash_files(&b, src, commit);
	}
	if (rc == 0)
		rc = finish(out, &b);
	for (k = 0; k < TE_STAPEL_NSTAGES; k++)
		te_digest_free(b.h[k].d);
	return rc;
}
