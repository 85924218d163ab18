/*
 * stapel/build.c - Stapel images as plan images (plan.h): one plan stage
 * per conveyor stage, each built by buildah on top of the previous one.
 *
 * A stage's builder writes a private build context under
 * <state>/tmp/stapel-XXXXXX and a Dockerfile (stapel/dockerfile.c):
 *
 *   from               FROM <from> | FROM <fromImage's last stage>
 *   gitArchive         COPY of each mapping's files at the commit
 *                      (include/exclude applied, --chown owner:group)
 *   beforeInstall..    RUN of the stage's commands as one script under
 *   setup              `bash -e` (a static bash in a read-only bind mount
 *                      of the context, so a base without bash works and
 *                      the bash never lands in the image); install,
 *                      beforeSetup and setup first apply the git patch
 *   gitLatestPatch     the git patch
 *   dockerInstructions ENV, LABEL, EXPOSE, ... (werf's `docker:`)
 *
 * The git patch of a stage goes from the commit recorded in the previous
 * stage's label TE_STAPEL_GIT_LABEL to the current commit, per mapping:
 * deleted files are removed (busybox rm from the same bind mount), then
 * changed and added files are copied.  Stages that write git files set
 * the label to the current commit; other stages inherit it.
 *
 * Every stage image carries werf's labels: werf (project),
 * werf-project-repo-commit, werf-stage-content-digest.
 */
#include "stapel/stapel_build.h"

#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <jansson.h>

#include "tagexport/fs.h"
#include "tagexport/image.h"
#include "tagexport/imagespec.h"
#include "tagexport/labels.h"
#include "tagexport/reference.h"

#define CONFIG_MAX (4 * 1024 * 1024)
#define DOCKERFILE_MAX (1024 * 1024)
#define SCRIPT_MAX (16 * 1024 * 1024)

/* A plan stage's payload. */
struct stage_job {
	const te_stapel_env *env;
	const te_image_config *image;
	te_stapel_stage_kind kind;
	bool last; /* the image's last stage: its imageSpec edits the config */
	const char *platform; /* --platform; NULL: native */
	char *from_pinned; /* fromLatest: <repo>@<digest> the from stage uses */
	const te_plan_image *base; /* fromImage: its plan image */
	/* per dependency of the image: its plan image */
	const te_plan_image **deps;
	/* per import of the image: the source's plan image, NULL for an
	 * external one; then the deps array */
	const te_plan_image *imports[];
};

/* What one build of one stage holds. */
struct job {
	const struct stage_job *sj;
	const te_stage_ctx *ctx;
	const te_stapel_image *img;
	te_buf dir;        /* the build context */
	te_buf df;         /* the Dockerfile */
	te_buf script;     /* the stage's commands */
	te_buf patch;      /* removals of the git patch */
	te_buf imports;    /* the `imports` script (filtered imports) */
	te_buf pre;        /* Dockerfile stages before FROM (imports) */
	bool tools;        /* the tools directory is needed */
	bool git_written;  /* the stage writes git files: label them */
	char *prev_commit; /* the base's TE_STAPEL_GIT_LABEL, or NULL */
	te_registry *reg;  /* this build's client of the stages repo */
	te_buf base_manifest;
	te_buf base_config;
	char base_type[128];
	te_error *err;
};

/* ---- files: the tools directory and the mappings ----------------------- */

static int copy_file(const char *from, const char *to, mode_t mode,
                     te_error *err)
{
	te_buf data = TE_BUF_INIT(64u << 20);
	bool big = false;
	int in, out, rc = 0;

	in = open(from, O_RDONLY | O_CLOEXEC);
	if (in < 0)
		return te_error_set_errno(err, TE_EUNSUPPORTED, errno,
		                          "cannot read %s (Debian: apt-get "
		                          "install bash-static busybox-static)",
		                          from);
	if (te_fs_read_all(&data, in, &big) < 0 || big)
		rc = te_error_set(err, TE_EIO, "reading %s", from);
	close(in);
	out = rc == 0 ? open(to, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, mode)
	              : -1;
	if (rc == 0 && out < 0)
		rc = te_error_set_errno(err, TE_EIO, errno, "creating %s", to);
	if (rc == 0 && te_fs_write_all(out, data.ptr, data.len) < 0)
		rc = te_error_set_errno(err, TE_EIO, errno, "writing %s", to);
	if (out >= 0)
		close(out);
	te_buf_dispose(&data);
	return rc;
}

static int write_text(const char *path, const te_buf *b, te_error *err)
{
	int fd = open(path, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0644);
	int rc = 0;

	if (fd < 0)
		return te_error_set_errno(err, TE_EIO, errno, "creating %s",
		                          path);
	if (te_fs_write_all(fd, b->ptr, b->len) < 0)
		rc = te_error_set_errno(err, TE_EIO, errno, "writing %s", path);
	close(fd);
	return rc;
}

/* <dir>/<name>, in a buffer the caller disposes. */
static int join(te_buf *out, const struct job *j, const char *name)
{
	te_buf_clear(out);
	return te_buf_printf(out, j->err, "%s/%s", j->dir.ptr, name);
}

/* The bind-mounted tools: bash, busybox, and the script. */
static int write_tools(struct job *j)
{
	const te_stapel_env *env = j->sj->env;
	te_buf p = TE_BUF_INIT(8192);
	int rc;

	rc = join(&p, j, TE_STAPEL_TOOLS);
	if (rc == 0 && mkdir(p.ptr, 0755) < 0)
		rc = te_error_set_errno(j->err, TE_EIO, errno, "mkdir %s",
		                        p.ptr);
	if (rc == 0)
		rc = join(&p, j, TE_STAPEL_TOOLS "/bash");
	if (rc == 0)
		rc = copy_file(env->bash ? env->bash : "/bin/bash-static",
		               p.ptr, 0755, j->err);
	if (rc == 0)
		rc = join(&p, j, TE_STAPEL_TOOLS "/busybox");
	if (rc == 0)
		rc = copy_file(env->busybox ? env->busybox : "/bin/busybox",
		               p.ptr, 0755, j->err);
	if (rc == 0)
		rc = join(&p, j, TE_STAPEL_TOOLS "/script");
	if (rc == 0)
		rc = write_text(p.ptr, &j->script, j->err);
	if (rc == 0)
		rc = join(&p, j, TE_STAPEL_TOOLS "/patch");
	if (rc == 0)
		rc = write_text(p.ptr, &j->patch, j->err);
	if (rc == 0 && j->imports.len)
		rc = te_buf_puts(&j->imports, "\"imp_$1\"\n", j->err);
	if (rc == 0)
		rc = join(&p, j, TE_STAPEL_TOOLS "/imports");
	if (rc == 0)
		rc = write_text(p.ptr, &j->imports, j->err);
	te_buf_dispose(&p);
	return rc;
}

/* One file of a mapping at a commit. */
struct fent {
	char *path;  /* relative to the mapping's add */
	char id[64]; /* "<octal mode> <oid>" */
};

struct flist {
	struct fent *items;
	size_t count, cap;
	const te_ignore *include, *exclude;
	te_error *err;
};

static void flist_dispose(struct flist *f)
{
	size_t i;

	for (i = 0; i < f->count; i++)
		free(f->items[i].path);
	free(f->items);
	memset(f, 0, sizeof(*f));
}

static int list_file(const te_gitsrc_entry *e, void *payload)
{
	struct flist *f = payload;
	struct fent *items;

	if (!te_stapel__git_keeps(f->include, f->exclude, e->path))
		return 0;
	if (f->count == f->cap) {
		size_t cap = f->cap ? f->cap * 2 : 64;
		items = realloc(f->items, cap * sizeof(*items));
		if (!items)
			return te_error_set(f->err, TE_ENOMEM, "out of memory");
		f->items = items;
		f->cap = cap;
	}
	f->items[f->count].path = te_strdup(e->path, f->err);
	if (!f->items[f->count].path)
		return TE_ENOMEM;
	snprintf(f->items[f->count].id, sizeof(f->items[0].id), "%o %s",
	         e->mode, e->oid);
	f->count++;
	return 0;
}

static int cmp_fent(const void *a, const void *b)
{
	return strcmp(((const struct fent *)a)->path,
	              ((const struct fent *)b)->path);
}

/* The mapping's kept files at commit, sorted by strcmp (git's tree order
 * is not); a missing add is an empty mapping. */
static int list_mapping(struct flist *f, const struct job *j,
                        const te_stapel_git *g, const char *commit)
{
	int rc;

	rc = te_gitsrc_walk(j->sj->env->src, commit, g->add + 1, list_file, f,
	                    j->err);
	if (rc == TE_ENOTFOUND) {
		te_error_clear(j->err);
		rc = 0;
	}
	if (rc == 0 && f->count > 1)
		qsort(f->items, f->count, sizeof(*f->items), cmp_fent);
	return rc;
}

/* Does some path of the sorted list lie under the directory dir? */
static bool dir_in(const struct flist *f, const char *dir)
{
	size_t lo = 0, hi = f->count, n = strlen(dir);

	while (lo < hi) {
		size_t mid = (lo + hi) / 2;
		if (strcmp(f->items[mid].path, dir) < 0)
			lo = mid + 1;
		else
			hi = mid;
	}
	for (; lo < f->count && !strncmp(f->items[lo].path, dir, n); lo++)
		if (f->items[lo].path[n] == '/')
			return true;
	return false;
}

static int full_path(char **out, const te_stapel_git *g, const char *path,
                     te_error *err)
{
	te_buf b = TE_BUF_INIT(65536);
	int rc;

	rc = te_buf_printf(&b, err, "%s%s%s", g->to,
	                   strcmp(g->to, "/") ? "/" : "", path);
	*out = rc == 0 ? te_buf_detach(&b) : NULL;
	te_buf_dispose(&b);
	return rc;
}

/* The directories of a changed file that the base has: the mapping's
 * `to` and its parents, and those holding a file at the previous commit. */
static int known_dirs(te_stapel_patchset *ps, const te_stapel_git *g,
                      const struct flist *prev, const char *path, te_error *err)
{
	char dir[4096], *full = NULL;
	const char *p;
	int rc = 0;

	for (p = strchr(path, '/'); rc == 0 && p; p = strchr(p + 1, '/')) {
		snprintf(dir, sizeof(dir), "%.*s", (int)(p - path), path);
		if (!dir_in(prev, dir))
			break;
		rc = full_path(&full, g, dir, err);
		if (rc == 0)
			rc = te_strvec_push_owned(&ps->known_dirs, full, err);
	}
	for (p = g->to; rc == 0 && p; p = strchr(p + 1, '/')) {
		snprintf(dir, sizeof(dir), "%.*s", (int)(p - g->to), g->to);
		if (*dir)
			rc = te_strvec_push(&ps->known_dirs, dir, err);
	}
	if (rc == 0 && strcmp(g->to, "/"))
		rc = te_strvec_push(&ps->known_dirs, g->to, err);
	return rc;
}

static int add_change(te_stapel_patchset *ps, const te_stapel_git *g,
                      const struct flist *prev, const struct fent *e,
                      bool numeric, te_error *err)
{
	te_stapel_patch_file *f;
	unsigned mode = 0;
	int rc;

	if (ps->nfiles == ps->cap) {
		size_t cap = ps->cap ? ps->cap * 2 : 32;
		f = realloc(ps->files, cap * sizeof(*f));
		if (!f)
			return te_error_set(err, TE_ENOMEM, "out of memory");
		ps->files = f;
		ps->cap = cap;
	}
	f = &ps->files[ps->nfiles];
	memset(f, 0, sizeof(*f));
	if (sscanf(e->id, "%o %40s", &mode, f->oid) != 2)
		return te_error_set(err, TE_EINVALID, "bad tree entry");
	f->mode = mode;
	rc = numeric ? te_stapel__patch_owner(f, g, err) : 0;
	if (rc == 0)
		rc = full_path(&f->path, g, e->path, err);
	if (rc == 0)
		ps->nfiles++;
	return rc == 0 ? known_dirs(ps, g, prev, e->path, err) : rc;
}

static void patchset_dispose(te_stapel_patchset *ps)
{
	size_t i;

	for (i = 0; i < ps->nfiles; i++)
		free(ps->files[i].path);
	free(ps->files);
	te_strvec_dispose(&ps->removed);
	te_strvec_dispose(&ps->known_dirs);
	memset(ps, 0, sizeof(*ps));
}

static int diff_into(te_stapel_patchset *ps, const te_stapel_git *g,
                     const struct flist *prev, const struct flist *cur,
                     bool numeric, te_error *err)
{
	size_t a = 0, b = 0;
	char *full;
	int rc = 0, c;

	while (rc == 0 && (a < prev->count || b < cur->count)) {
		c = a == prev->count ? 1
		    : b == cur->count
		        ? -1
		        : strcmp(prev->items[a].path, cur->items[b].path);
		if (c < 0) {
			rc = full_path(&full, g, prev->items[a++].path, err);
			if (rc == 0)
				rc = te_strvec_push_owned(&ps->removed, full,
				                          err);
		} else if (c > 0) {
			rc = add_change(ps, g, prev, &cur->items[b++], numeric,
			                err);
		} else {
			if (strcmp(prev->items[a].id, cur->items[b].id))
				rc = add_change(ps, g, prev, &cur->items[b],
				                numeric, err);
			a++;
			b++;
		}
	}
	return rc;
}

static int cmp_patch_file(const void *a, const void *b)
{
	return strcmp(((const te_stapel_patch_file *)a)->path,
	              ((const te_stapel_patch_file *)b)->path);
}

/* Mapping i from the base's commit to ours into ps (paths sorted);
 * numeric: owners as numbers for the layer (stapel/layer.c). */
static int collect_mapping(te_stapel_patchset *ps, struct job *j, size_t i,
                           bool numeric)
{
	const te_stapel_git *g = &j->img->git[i];
	struct flist prev, cur;
	te_ignore *inc = NULL, *exc = NULL;
	int rc;

	memset(&prev, 0, sizeof(prev));
	memset(&cur, 0, sizeof(cur));
	rc = te_stapel__matcher(&inc, &g->include_paths, j->err);
	if (rc == 0)
		rc = te_stapel__matcher(&exc, &g->exclude_paths, j->err);
	prev.include = cur.include = inc;
	prev.exclude = cur.exclude = exc;
	prev.err = cur.err = j->err;
	if (rc == 0)
		rc = list_mapping(&prev, j, g, j->prev_commit);
	if (rc == 0)
		rc = list_mapping(&cur, j, g, j->sj->env->commit);
	if (rc == 0)
		rc = diff_into(ps, g, &prev, &cur, numeric, j->err);
	flist_dispose(&prev);
	flist_dispose(&cur);
	te_ignore_free(inc);
	te_ignore_free(exc);
	if (ps->nfiles > 1)
		qsort(ps->files, ps->nfiles, sizeof(*ps->files),
		      cmp_patch_file);
	te_strvec_sort(&ps->removed);
	te_strvec_sort(&ps->known_dirs);
	return rc;
}

/* Paths kept when materializing: those of the filters, or only those of
 * a patch (its files are absolute image paths: to + path). */
struct keep {
	const te_stapel_patchset *only; /* NULL: every file kept */
	const char *to;
	const te_ignore *include, *exclude;
};

static bool keep_file(const char *path, void *payload)
{
	const struct keep *k = payload;
	te_stapel_patch_file key;
	char *full = NULL;
	te_error ignored = TE_ERROR_INIT;
	bool found;
	te_stapel_git g;

	if (!k->only)
		return te_stapel__git_keeps(k->include, k->exclude, path);
	memset(&g, 0, sizeof(g));
	g.to = (char *)k->to;
	if (full_path(&full, &g, path, &ignored) < 0)
		return false;
	key.path = full;
	found = bsearch(&key, k->only->files, k->only->nfiles, sizeof(key),
	                cmp_patch_file) != NULL;
	free(full);
	return found;
}

/* Write the kept files of mapping i into <dir>/g<i> and COPY them. */
static int copy_mapping(struct job *j, size_t i, struct keep *k)
{
	const te_stapel_git *g = &j->img->git[i];
	const te_stapel_env *env = j->sj->env;
	te_buf dest = TE_BUF_INIT(8192);
	char src[32];
	int rc;

	snprintf(src, sizeof(src), "g%zu", i);
	rc = join(&dest, j, src);
	if (rc == 0 && mkdir(dest.ptr, 0755) < 0)
		rc = te_error_set_errno(j->err, TE_EIO, errno, "mkdir %s",
		                        dest.ptr);
	if (rc == 0)
		rc = te_gitsrc_materialize(env->src, env->commit, g->add + 1,
		                           dest.ptr, keep_file, k, env->limits,
		                           j->err);
	if (rc == TE_ENOTFOUND || rc == TE_EINVALID)
		rc = te_error_wrap(j->err, "git add %s (line %d)", g->add,
		                   g->line);
	if (rc == 0) {
		snprintf(src, sizeof(src), "g%zu/", i);
		rc = te_stapel__df_copy(&j->df, src, g->to, g->owner, g->group,
		                        j->err);
	}
	te_buf_dispose(&dest);
	return rc;
}

static int stage_git_archive(struct job *j)
{
	struct keep k = {NULL, NULL, NULL, NULL};
	te_ignore *inc = NULL, *exc = NULL;
	size_t i;
	int rc = 0;

	for (i = 0; rc == 0 && i < j->img->ngit; i++) {
		rc = te_stapel__matcher(&inc, &j->img->git[i].include_paths,
		                        j->err);
		if (rc == 0)
			rc = te_stapel__matcher(
			    &exc, &j->img->git[i].exclude_paths, j->err);
		k.include = inc;
		k.exclude = exc;
		if (rc == 0)
			rc = copy_mapping(j, i, &k);
		te_ignore_free(inc);
		te_ignore_free(exc);
		inc = exc = NULL;
	}
	j->git_written = true;
	return rc;
}

/* One shell word in single quotes. */
static int sh_quote(te_buf *b, const char *s, te_error *err)
{
	int rc = te_buf_puts(b, "'", err);

	for (; rc == 0 && *s; s++)
		rc = *s == '\'' ? te_buf_puts(b, "'\\''", err)
		                : te_buf_put(b, s, 1, err);
	return rc == 0 ? te_buf_puts(b, "'", err) : rc;
}

static int remove_line(struct job *j, const char *full)
{
	int rc = te_buf_puts(&j->patch,
	                     "/" TE_STAPEL_TOOLS "/busybox rm -rf -- ", j->err);

	if (rc == 0)
		rc = sh_quote(&j->patch, full, j->err);
	return rc == 0 ? te_buf_puts(&j->patch, "\n", j->err) : rc;
}

/* The git patch from the base's commit to ours, mapping by mapping:
 * removals into the patch script, changed files copied. */
static int apply_patch(struct job *j)
{
	te_stapel_patchset ps;
	struct keep k = {&ps, NULL, NULL, NULL};
	size_t i, r;
	int rc = 0;

	if (!j->prev_commit || !j->img->ngit)
		return 0;
	j->git_written = true;
	if (!strcmp(j->prev_commit, j->sj->env->commit))
		return 0;
	for (i = 0; rc == 0 && i < j->img->ngit; i++) {
		memset(&ps, 0, sizeof(ps));
		k.to = j->img->git[i].to;
		rc = collect_mapping(&ps, j, i, false);
		for (r = 0; rc == 0 && r < ps.removed.count; r++)
			rc = remove_line(j, ps.removed.items[r]);
		if (rc == 0 && ps.nfiles)
			rc = copy_mapping(j, i, &k);
		patchset_dispose(&ps);
	}
	return rc;
}

/* The commit the base image's git files come from (its label), or NULL
 * when it has none. */
static int base_commit(struct job *j)
{
	const te_stapel_env *env = j->sj->env;
	te_image_manifest m;
	char digest[TE_DIGEST_STR_MAX];
	const char *tag = strrchr(j->ctx->base_ref, ':') + 1, *v;
	json_t *root = NULL;
	int rc;

	memset(&m, 0, sizeof(m));
	rc = te_registry_manifest_get(&j->base_manifest, j->base_type, digest,
	                              j->reg, env->repo_path, tag, j->err);
	if (rc == 0)
		rc = te_image_manifest_parse(&m, j->base_manifest.ptr,
		                             j->base_manifest.len, j->err);
	if (rc == 0)
		rc = te_registry_blob_get(&j->base_config, j->reg,
		                          env->repo_path, m.config_digest,
		                          j->err);
	if (rc < 0)
		goto done;
	root = json_loadb(j->base_config.ptr, j->base_config.len, 0, NULL);
	v = json_string_value(json_object_get(
	    json_object_get(json_object_get(root, "config"), "Labels"),
	    TE_STAPEL_GIT_LABEL));
	if (v && strlen(v) == 40 && strspn(v, "0123456789abcdef") == 40) {
		j->prev_commit = te_strdup(v, j->err);
		if (!j->prev_commit)
			rc = TE_ENOMEM;
	}
done:
	json_decref(root);
	te_image_manifest_dispose(&m);
	return rc;
}

/* ---- gitLatestPatch as a layer put in the registry (stapel/layer.c) ---- */

static int stage_labels(te_labels **out, const struct job *j);

/* gitLatestPatch without buildah; TE_EUNSUPPORTED: build it instead. */
static int push_patch_layer(char digest_out[TE_DIGEST_STR_MAX], struct job *j)
{
	const te_stapel_env *env = j->sj->env;
	te_stapel_patchset ps;
	te_labels *labels = NULL;
	te_stapel_layer_target t;
	size_t i;
	int rc;

	memset(&ps, 0, sizeof(ps));
	rc = base_commit(j);
	j->git_written = j->prev_commit != NULL;
	for (i = 0; rc == 0 && j->prev_commit &&
	            strcmp(j->prev_commit, env->commit) && i < j->img->ngit;
	     i++)
		rc = collect_mapping(&ps, j, i, true);
	if (rc == 0)
		rc = stage_labels(&labels, j);
	if (rc == 0) {
		t.src = env->src;
		t.base_manifest = &j->base_manifest;
		t.media_type = j->base_type;
		t.base_config = &j->base_config;
		t.labels = labels;
		t.reg = j->reg;
		t.repo = env->repo_path;
		t.tag = te_plan_stage_digest(j->ctx->stage);
		rc = te_stapel__layer_push(digest_out, &ps, &t, j->err);
	}
	if (rc == 0)
		te_log_emit(
		    &j->ctx->log, TE_LOG_INFO,
		    "image %s: building stage gitLatestPatch: one layer "
		    "put in the stages repo (%zu files, %zu removed)",
		    te_plan_image_name(j->ctx->image), ps.nfiles,
		    ps.removed.count);
	te_labels_free(labels);
	patchset_dispose(&ps);
	return rc;
}

static int stage_user(struct job *j, te_stapel_user u)
{
	const te_strvec *cmds = &j->img->shell.cmds[u];
	size_t i;
	int rc = 0;

	/* werf: a user stage after gitArchive brings the files up to the
	 * commit first */
	if (u != TE_STAPEL_BEFORE_INSTALL)
		rc = apply_patch(j);
	for (i = 0; rc == 0 && i < cmds->count; i++)
		rc = te_buf_printf(&j->script, j->err, "%s\n", cmds->items[i]);
	j->tools = true;
	return rc;
}

/* The image an import copies from: a stage of a werf image (its last,
 * or the one named by `stage`), or an external reference. */
static int import_source(const char **out, const struct job *j, size_t i)
{
	const te_stapel_import *im = &j->img->imports[i];
	const te_plan_image *src = j->sj->imports[i];
	size_t k;

	*out = im->external;
	if (!src)
		return 0;
	*out = te_plan_image_ref(src);
	if (!im->stage)
		return 0;
	for (k = 0; k < te_plan_stage_count(src); k++)
		if (!strcmp(te_plan_stage_name(te_plan_stage_at(src, k)),
		            im->stage)) {
			*out = te_plan_stage_ref(te_plan_stage_at(src, k));
			return 0;
		}
	return te_error_set(j->err, TE_EINVALID,
	                    "%s:%d: import: image \"%s\" has no stage \"%s\" "
	                    "(empty stages are left out)",
	                    j->sj->env->file, im->line, im->image, im->stage);
}

/* One `dependencies` import: the image's name, digest, repo or tag
 * (https://werf.io/docs/v2/reference/werf_yaml.html, dependencies). */
static int dep_value(te_buf *out, const struct job *j, const te_plan_image *dep,
                     const char *type)
{
	const te_stapel_env *env = j->sj->env;
	const char *ref = te_plan_image_ref(dep), *colon = strrchr(ref, ':');
	char digest[TE_DIGEST_STR_MAX];
	bool exists = false;
	int rc;

	if (!strcmp(type, "ImageName"))
		return te_buf_puts(out, ref, j->err);
	if (!strcmp(type, "ImageRepo"))
		return te_buf_put(out, ref, (size_t)(colon - ref), j->err);
	if (!strcmp(type, "ImageTag"))
		return te_buf_puts(out, colon + 1, j->err);
	rc = te_registry_manifest_exists(&exists, digest, j->reg,
	                                 env->repo_path, colon + 1, j->err);
	if (rc == 0 && !exists)
		rc = te_error_set(j->err, TE_ENOTFOUND,
		                  "%s is not in the "
		                  "stages repo",
		                  ref);
	return rc == 0 ? te_buf_puts(out, digest, j->err) : rc;
}

static int stage_deps_env(struct job *j, te_stapel_when when)
{
	te_buf value = TE_BUF_INIT(4096);
	size_t i, k;
	int rc = 0;

	for (i = 0; rc == 0 && i < j->img->ndeps; i++) {
		const te_stapel_dependency *d = &j->img->deps[i];

		for (k = 0; rc == 0 && d->when == when && k < d->imports.count;
		     k++) {
			const char *item = d->imports.items[k];
			const char *eq = strchr(item, '=');
			char type[32];

			snprintf(type, sizeof(type), "%.*s", (int)(eq - item),
			         item);
			te_buf_clear(&value);
			rc = dep_value(&value, j, j->sj->deps[i], type);
			if (rc == 0)
				rc = te_stapel__df_env(&j->df, eq + 1,
				                       value.ptr, j->err);
		}
	}
	te_buf_dispose(&value);
	return rc;
}

/*
 * The `imports` script's functions (stapel_build.h,
 * te_stapel__df_import_stage), run by bash in a stage FROM the source; one
 * function imp_<i> per filtered import follows, then the call of the one
 * the RUN names.  werf selects with rsync filters (werf/werf,
 * pkg/build/stage, generateSafeCp): masks relative to add; an excluded
 * path takes everything under it; an include keeps the path and all under
 * it, exclusion winning.  Masks are bash globs with globstar: '*' stays
 * within a path component, '**' as a whole component spans directories.
 * Patterns reach the script single-quoted and expand with IFS empty: no
 * word splitting, nothing but globbing.
 */
static const char import_lib[] =
    "T=/" TE_STAPEL_TOOLS "\n"
    "B=$T/busybox\n"
    "OUT=/" TE_STAPEL_IMPORT_DIR "\n"
    "shopt -s globstar dotglob nullglob\n"
    "IFS=\n"
    "declare -A ex kept\n"
    "# $1 or one of its directories is listed in the array named $2\n"
    "listed() {\n"
    "\tlocal p=$1\n"
    "\tlocal -n set=$2\n"
    "\twhile :; do\n"
    "\t\tif [[ -n ${set[$p]+x} ]]; then return 0; fi\n"
    "\t\tif [[ $p != */* ]]; then return 1; fi\n"
    "\t\tp=${p%/*}\n"
    "\tdone\n"
    "}\n"
    "ex_under() {\n"
    "\tlocal k\n"
    "\tfor k in \"${!ex[@]}\"; do\n"
    "\t\tif [[ $k == \"$1\"/* ]]; then return 0; fi\n"
    "\tdone\n"
    "\treturn 1\n"
    "}\n"
    "# directory $1 (and its parents) in OUT, with the source's mode and "
    "owner\n"
    "mkd() {\n"
    "\tif [[ -d $OUT/$1 ]]; then return 0; fi\n"
    "\tif [[ $1 == */* ]]; then mkd \"${1%/*}\"; fi\n"
    "\t\"$B\" mkdir -- \"$OUT/$1\"\n"
    "\t\"$B\" chmod \"$(\"$B\" stat -c %a -- \"$1\")\" \"$OUT/$1\"\n"
    "\t\"$B\" chown \"$(\"$B\" stat -c %u:%g -- \"$1\")\" \"$OUT/$1\"\n"
    "}\n"
    "keep() {\n"
    "\tlocal p=${1%/} c\n"
    "\tp=${p#./}\n"
    "\tif [[ ! -e $p && ! -L $p ]] || [[ /$p/ == */../* ]]; then return 0; fi\n"
    "\tif listed \"$p\" ex || listed \"$p\" kept; then return 0; fi\n"
    "\tif [[ -d $p && ! -L $p ]] && { ex_under \"$p\" || [[ -e $OUT/$p ]]; }; "
    "then\n"
    "\t\tmkd \"$p\"\n"
    "\t\tfor c in \"$p\"/*; do keep \"$c\"; done\n"
    "\t\treturn 0\n"
    "\tfi\n"
    "\tif [[ $p == */* ]]; then mkd \"${p%/*}\"; fi\n"
    "\t\"$B\" cp -a -- \"$p\" \"$OUT/$p\"\n"
    "\tkept[$p]=1\n"
    "}\n"
    "# run_import ADD NEXCLUDE EXCLUDE... INCLUDE...\n"
    "run_import() {\n"
    "\tlocal add=$1 n=$2 p pat\n"
    "\tshift 2\n"
    "\tif [[ ! -d $add ]]; then\n"
    "\t\techo \"import: add $add is not a directory in the source image\" \\\n"
    "\t\t\t\"(includePaths/excludePaths filter a directory)\" >&2\n"
    "\t\texit 1\n"
    "\tfi\n"
    "\tcd -- \"$add\"\n"
    "\t\"$B\" mkdir -p \"$OUT\"\n"
    "\tfor pat in \"${@:1:n}\"; do\n"
    "\t\twhile [[ $pat == /* ]]; do pat=${pat#/}; done\n"
    "\t\tfor p in $pat; do ex[${p%/}]=1; done\n"
    "\tdone\n"
    "\tshift \"$n\"\n"
    "\tif (($#)); then\n"
    "\t\tfor pat in \"$@\"; do\n"
    "\t\t\twhile [[ $pat == /* ]]; do pat=${pat#/}; done\n"
    "\t\t\tfor p in $pat; do keep \"$p\"; done\n"
    "\t\tdone\n"
    "\telse\n"
    "\t\tfor p in *; do keep \"$p\"; done\n"
    "\tfi\n"
    "}\n";

static bool filtered(const te_stapel_import *im)
{
	return im->include_paths.count || im->exclude_paths.count;
}

/* imp_<i>: run_import with add, the exclude count, excludes, includes. */
static int import_function(struct job *j, size_t i)
{
	const te_stapel_import *im = &j->img->imports[i];
	size_t k;
	int rc = 0;

	if (!j->imports.len)
		rc = te_buf_puts(&j->imports, import_lib, j->err);
	if (rc == 0)
		rc = te_buf_printf(&j->imports, j->err,
		                   "imp_%zu() {\n\trun_import ", i);
	if (rc == 0)
		rc = sh_quote(&j->imports, im->add, j->err);
	if (rc == 0)
		rc = te_buf_printf(&j->imports, j->err, " %zu",
		                   im->exclude_paths.count);
	for (k = 0; rc == 0 && k < im->exclude_paths.count; k++) {
		rc = te_buf_puts(&j->imports, " ", j->err);
		if (rc == 0)
			rc = sh_quote(&j->imports, im->exclude_paths.items[k],
			              j->err);
	}
	for (k = 0; rc == 0 && k < im->include_paths.count; k++) {
		rc = te_buf_puts(&j->imports, " ", j->err);
		if (rc == 0)
			rc = sh_quote(&j->imports, im->include_paths.items[k],
			              j->err);
	}
	return rc == 0 ? te_buf_puts(&j->imports, "\n}\n", j->err) : rc;
}

static int import_one(struct job *j, size_t i, const char *from)
{
	const te_stapel_import *im = &j->img->imports[i];
	int rc;

	if (!filtered(im))
		return te_stapel__df_import(&j->df, from, im, j->err);
	j->tools = true;
	rc = import_function(j, i);
	if (rc == 0)
		rc = te_stapel__df_import_stage(&j->pre, from, i, j->err);
	if (rc == 0)
		rc = te_stapel__df_import_filtered(&j->df, i, im, j->err);
	return rc;
}

/* dependencies<When><Stage>: the imports landing there, then the
 * dependencies' variables. */
static int stage_imports(struct job *j, te_stapel_when when)
{
	const char *from;
	size_t i;
	int rc = 0;

	for (i = 0; rc == 0 && i < j->img->nimports; i++) {
		if (j->img->imports[i].when != when)
			continue;
		rc = import_source(&from, j, i);
		if (rc == 0)
			rc = import_one(j, i, from);
	}
	return rc == 0 ? stage_deps_env(j, when) : rc;
}

static int stage_body(struct job *j)
{
	switch (j->sj->kind) {
	case TE_STAPEL_STAGE_DEPS_BEFORE_INSTALL:
		return stage_imports(j, TE_STAPEL_BEFORE_INSTALL_STAGE);
	case TE_STAPEL_STAGE_DEPS_AFTER_INSTALL:
		return stage_imports(j, TE_STAPEL_AFTER_INSTALL_STAGE);
	case TE_STAPEL_STAGE_DEPS_BEFORE_SETUP:
		return stage_imports(j, TE_STAPEL_BEFORE_SETUP_STAGE);
	case TE_STAPEL_STAGE_DEPS_AFTER_SETUP:
		return stage_imports(j, TE_STAPEL_AFTER_SETUP_STAGE);
	case TE_STAPEL_STAGE_BEFORE_INSTALL:
		return stage_user(j, TE_STAPEL_BEFORE_INSTALL);
	case TE_STAPEL_STAGE_INSTALL:
		return stage_user(j, TE_STAPEL_INSTALL);
	case TE_STAPEL_STAGE_BEFORE_SETUP:
		return stage_user(j, TE_STAPEL_BEFORE_SETUP);
	case TE_STAPEL_STAGE_SETUP:
		return stage_user(j, TE_STAPEL_SETUP);
	case TE_STAPEL_STAGE_GIT_ARCHIVE:
		return stage_git_archive(j);
	case TE_STAPEL_STAGE_GIT_LATEST_PATCH:
		return apply_patch(j);
	case TE_STAPEL_STAGE_DOCKER:
		return te_stapel__df_docker(&j->df, &j->img->docker, j->err);
	default:
		return 0; /* from: FROM alone */
	}
}

/* The Dockerfile: FROM, the patch's removals, the COPYs (already in df
 * from stage_body), the script. */
static int dockerfile(struct job *j)
{
	const struct stage_job *sj = j->sj;
	const char *base = j->ctx->base_ref;
	te_buf body = TE_BUF_INIT(DOCKERFILE_MAX);
	int rc = 0;

	if (!base)
		base = sj->base          ? te_plan_image_ref(sj->base)
		       : sj->from_pinned ? sj->from_pinned
		                         : j->img->from;
	if (j->ctx->base_ref && sj->kind != TE_STAPEL_STAGE_GIT_ARCHIVE)
		rc = base_commit(j);
	if (rc == 0)
		rc = stage_body(j);
	/* stage_body wrote COPYs and docker lines to df: put the import
	 * stages, then FROM first */
	if (rc == 0)
		rc = te_buf_put(&body, j->pre.ptr, j->pre.len, j->err);
	if (rc == 0)
		rc = te_stapel__df_from(&body, base, j->err);
	if (rc == 0 && j->patch.len) {
		j->tools = true;
		rc = te_stapel__df_script(&body, "patch", NULL, j->err);
	}
	if (rc == 0)
		rc = te_buf_put(&body, j->df.ptr, j->df.len, j->err);
	if (rc == 0 && j->script.len)
		rc = te_stapel__df_script(&body, "script", j->img, j->err);
	if (rc == 0) {
		te_buf_dispose(&j->df);
		j->df = body;
		te_buf_init(&body, DOCKERFILE_MAX);
	}
	te_buf_dispose(&body);
	return rc;
}

static int stage_labels(te_labels **out, const struct job *j)
{
	const te_stapel_env *env = j->sj->env;
	int rc;

	rc = te_labels_new(out, j->err);
	if (rc == 0)
		rc = te_labels_set(*out, "werf", env->project, j->err);
	if (rc == 0)
		rc = te_labels_set(*out, "werf-project-repo-commit",
		                   env->commit, j->err);
	if (rc == 0)
		rc = te_labels_set(*out, "werf-stage-content-digest",
		                   te_plan_stage_digest(j->ctx->stage), j->err);
	if (rc == 0 && j->git_written)
		rc = te_labels_set(*out, TE_STAPEL_GIT_LABEL, env->commit,
		                   j->err);
	return rc;
}

static int make_dir(struct job *j)
{
	const te_stapel_env *env = j->sj->env;
	int rc;

	rc = te_buf_printf(&j->dir, j->err, "%s/tmp", env->build->state_dir);
	if (rc == 0)
		rc = te_fs_mkdirs(j->dir.ptr, j->err);
	if (rc == 0)
		rc = te_buf_puts(&j->dir, "/stapel-XXXXXX", j->err);
	if (rc == 0 && !mkdtemp(j->dir.ptr))
		rc = te_error_set_errno(j->err, TE_EIO, errno, "mkdtemp %s",
		                        j->dir.ptr);
	return rc;
}

/* A stage two images share is built by one builder: claim its digest;
 * when another builder had it, it is in the stages repo now (*found,
 * digest_out set) unless that build failed, and then it is ours. */
static int shared_stage(bool *found, bool *claimed,
                        char digest_out[TE_DIGEST_STR_MAX], struct job *j)
{
	const char *tag = te_plan_stage_digest(j->ctx->stage);
	bool waited = false;
	int rc;

	*found = false;
	rc = te_stapel__claim(&waited, j->sj->env->inflight, tag, j->err);
	*claimed = rc == 0;
	if (rc < 0 || !waited)
		return rc;
	rc = te_registry_manifest_exists(found, digest_out, j->reg,
	                                 j->sj->env->repo_path, tag, j->err);
	if (rc == 0 && *found)
		te_log_emit(&j->ctx->log, TE_LOG_INFO,
		            "image %s: stage %s was built for another image",
		            te_plan_image_name(j->ctx->image),
		            te_stapel_stage_name(j->sj->kind));
	return rc;
}

/* The commit is read by one builder at a time (te_stapel_env.src_mu). */
static void lock(const te_stapel_env *env)
{
	if (env->src_mu)
		pthread_mutex_lock(env->src_mu);
}

static void unlock(const te_stapel_env *env)
{
	if (env->src_mu)
		pthread_mutex_unlock(env->src_mu);
}

/* ---- imageSpec: the last stage's config, edited before the push ------ */

static int edit_imagespec(te_buf *out, const void *config, size_t len,
                          void *payload, te_error *err)
{
	const struct stage_job *sj = payload;
	int rc = te_imagespec_apply(out, config, len, &sj->image->imagespec,
	                            sj->image->name, sj->env->project, err);

	return rc < 0 ? te_error_wrap(err, "imageSpec") : 0;
}

/* Does this stage carry the image's imageSpec (build.h, edit_config)? */
static bool edits_config(const struct stage_job *sj)
{
	return sj->last && !te_imagespec_is_empty(&sj->image->imagespec);
}

static void set_edit(te_build_opts *b, const struct stage_job *sj,
                     const te_stage_ctx *ctx)
{
	if (!edits_config(sj))
		return;
	b->edit_config = edit_imagespec;
	b->edit_payload = (void *)sj;
	/* werf warns here; export strips every werf label anyway */
	if (te_imagespec_warns_essential(&sj->image->imagespec))
		te_log_emit(&ctx->log, TE_LOG_WARN,
		            "image %s: imageSpec: removeLabels matches one of "
		            "werf's essential labels, kept in the stages image "
		            "(keepEssentialWerfLabels: true silences this)",
		            sj->image->name);
}

static int build_stage(char digest_out[TE_DIGEST_STR_MAX],
                       const te_stage_ctx *ctx, void *payload, te_error *err)
{
	const struct stage_job *sj = payload;
	struct job j;
	te_build_opts bopts = *sj->env->build;
	te_labels *labels = NULL;
	bool have_dir = false, found = false, claimed = false;
	int rc;

	memset(&j, 0, sizeof(j));
	j.sj = sj;
	j.ctx = ctx;
	j.img = sj->image->stapel;
	j.err = err;
	te_buf_init(&j.dir, 8192);
	te_buf_init(&j.df, DOCKERFILE_MAX);
	te_buf_init(&j.script, SCRIPT_MAX);
	te_buf_init(&j.patch, SCRIPT_MAX);
	te_buf_init(&j.imports, SCRIPT_MAX);
	te_buf_init(&j.pre, DOCKERFILE_MAX);
	te_buf_init(&j.base_manifest, TE_MANIFEST_MAX);
	te_buf_init(&j.base_config, CONFIG_MAX);
	rc = te_registry_new(&j.reg, sj->env->registry_host,
	                     sj->env->registry_opts, err);
	if (rc == 0)
		rc = shared_stage(&found, &claimed, digest_out, &j);
	if (rc < 0 || found)
		goto done;
	/* the layer put without buildah has no config edit */
	if (sj->kind == TE_STAPEL_STAGE_GIT_LATEST_PATCH && ctx->base_ref &&
	    !edits_config(sj)) {
		lock(sj->env);
		rc = push_patch_layer(digest_out, &j);
		unlock(sj->env);
		if (rc != TE_EUNSUPPORTED)
			goto done;
		te_log_emit(&ctx->log, TE_LOG_INFO, "image %s: %s: building",
		            te_plan_image_name(ctx->image), err->msg);
		te_error_clear(err);
		free(j.prev_commit);
		j.prev_commit = NULL;
		j.git_written = false;
		te_buf_clear(&j.base_manifest);
		te_buf_clear(&j.base_config);
	}
	rc = make_dir(&j);
	have_dir = rc == 0;
	if (rc == 0) {
		lock(sj->env);
		rc = dockerfile(&j);
		unlock(sj->env);
	}
	if (rc == 0 && j.tools)
		rc = write_tools(&j);
	if (rc == 0)
		rc = stage_labels(&labels, &j);
	if (rc == 0) {
		bopts.context_dir = j.dir.ptr;
		bopts.dockerfile = j.df.ptr;
		bopts.dockerfile_len = j.df.len;
		bopts.labels = labels;
		bopts.image_ref = ctx->image_ref;
		bopts.name = sj->image->name;
		bopts.cancel = ctx->cancel;
		bopts.log = ctx->log;
		bopts.platform = sj->platform;
		set_edit(&bopts, sj, ctx);
		te_log_emit(&ctx->log, TE_LOG_INFO,
		            "image %s: building stage %s",
		            te_plan_image_name(ctx->image),
		            te_stapel_stage_name(sj->kind));
		rc = te_build_and_push(digest_out, &bopts, err);
	}
done:
	if (rc < 0)
		te_error_wrap(err, "image \"%s\": stage %s",
		              te_plan_image_name(ctx->image),
		              te_stapel_stage_name(sj->kind));
	if (have_dir)
		te_fs_remove_tree(j.dir.ptr);
	te_labels_free(labels);
	free(j.prev_commit);
	te_buf_dispose(&j.dir);
	te_buf_dispose(&j.df);
	te_buf_dispose(&j.script);
	te_buf_dispose(&j.patch);
	te_buf_dispose(&j.imports);
	te_buf_dispose(&j.pre);
	te_buf_dispose(&j.base_manifest);
	te_buf_dispose(&j.base_config);
	te_registry_free(j.reg);
	if (claimed)
		te_stapel__release(sj->env->inflight,
		                   te_plan_stage_digest(ctx->stage));
	return rc;
}

/* ---- the plan ----------------------------------------------------------- */

/* ---- fromLatest ---------------------------------------------------------- */

#define GITERMINISM_FILE "werf-giterminism.yaml"
#define GITERMINISM_MAX ((size_t)64 << 10)

/* werf-giterminism.yaml of the commit must allow fromLatest
 * (https://werf.io/docs/v2/usage/project_configuration/giterminism.html). */
static int from_latest_allowed(const te_image_config *ic,
                               const te_stapel_env *env, te_error *err)
{
	te_buf data = TE_BUF_INIT(GITERMINISM_MAX);
	te_stapel_allowed allowed;
	int rc;

	if (env->loose_giterminism)
		return 0;
	lock(env);
	rc = te_gitsrc_read_file(&data, env->src, env->commit, GITERMINISM_FILE,
	                         err);
	unlock(env);
	if (rc == TE_ENOTFOUND) {
		te_error_clear(err);
		rc = te_stapel_allowed_parse(&allowed, NULL, 0, err);
	} else if (rc == 0) {
		rc = te_stapel_allowed_parse(&allowed, data.ptr, data.len, err);
	}
	te_buf_dispose(&data);
	if (rc == 0 && !allowed.from_latest)
		rc = te_error_set(err, TE_EINVALID,
		                  "%s:%d: image \"%s\": fromLatest is not "
		                  "allowed by " GITERMINISM_FILE
		                  " (config.stapel.allowFromLatest)",
		                  env->file, ic->stapel->from_latest_line,
		                  ic->name);
	return rc;
}

/* werf's fromLatest: the base image's manifest digest as its registry has
 * it now (so a moved tag rebuilds, and the build uses that very image). */
static int from_latest_digest(char digest[TE_DIGEST_STR_MAX],
                              const te_image_config *ic,
                              const te_stapel_env *env, te_error *err)
{
	te_ref ref = TE_REF_INIT;
	te_registry *reg = NULL;
	te_registry_opts o = *env->registry_opts;
	bool exists = false;
	size_t i;
	int rc;

	rc = te_ref_parse(&ref, ic->stapel->from, err);
	o.insecure = false;
	for (i = 0; rc == 0 && i < env->build->ninsecure_hosts; i++)
		o.insecure |=
		    !strcmp(env->build->insecure_hosts[i], ref.domain);
	if (rc == 0)
		rc = te_registry_new(&reg, te_ref_api_host(&ref), &o, err);
	if (rc == 0)
		rc = te_registry_manifest_exists(
		    &exists, digest, reg, ref.path,
		    ref.digest ? ref.digest : ref.tag, err);
	if (rc == 0 && !exists)
		rc = te_error_set(err, TE_ENOTFOUND,
		                  "%s:%d: image \"%s\": fromLatest: %s is not "
		                  "in its registry",
		                  env->file, ic->stapel->from_line, ic->name,
		                  ic->stapel->from);
	te_registry_free(reg);
	te_ref_dispose(&ref);
	return rc;
}

/* <domain>/<path>@<digest>: the from stage builds on what was hashed. */
static int pin_from(char **out, const char *from, const char *digest,
                    te_error *err)
{
	te_ref ref = TE_REF_INIT;
	te_buf b = TE_BUF_INIT(4096);
	int rc = te_ref_parse(&ref, from, err);

	if (rc == 0)
		rc = te_buf_printf(&b, err, "%s/%s@%s", ref.domain, ref.path,
		                   digest);
	*out = rc == 0 ? te_buf_detach(&b) : NULL;
	if (rc == 0 && !*out)
		rc = te_error_set(err, TE_ENOMEM, "out of memory");
	te_buf_dispose(&b);
	te_ref_dispose(&ref);
	return rc;
}

static void stage_job_free(void *p)
{
	struct stage_job *sj = p;

	free(sj->from_pinned);
	free(sj);
}

static int add_stages(te_plan_image *pi, const te_image_config *ic,
                      const char *platform, const char *from_digest,
                      const te_plan_image *base,
                      const te_plan_image *const *imports,
                      const te_plan_image *const *deps,
                      const te_stapel_env *env, te_error *err)
{
	te_buf spec_text = TE_BUF_INIT(TE_IMAGESPEC_CONFIG_MAX);
	te_stapel_inputs in = {from_digest, ic->build_cache_version, platform,
	                       NULL};
	te_stapel_stages st;
	size_t i;
	int rc;

	rc = te_imagespec_serialize(&spec_text, &ic->imagespec, err);
	in.imagespec = spec_text.ptr;
	if (rc == 0)
		rc = te_stapel_stages_compute(&st, ic->stapel, env->src,
		                              env->commit, &in, err);
	te_buf_dispose(&spec_text);
	for (i = 0; rc == 0 && i < st.count; i++) {
		size_t nimp = ic->stapel->nimports, ndep = ic->stapel->ndeps;
		struct stage_job *sj = calloc(
		    1, sizeof(*sj) + (nimp + ndep) * sizeof(sj->imports[0]));
		te_plan_stage_spec spec = {
		    te_stapel_stage_name(st.items[i].kind), st.items[i].input,
		    build_stage, sj, stage_job_free};

		if (!sj)
			return te_error_set(err, TE_ENOMEM, "out of memory");
		sj->env = env;
		sj->image = ic;
		sj->kind = st.items[i].kind;
		sj->last = i + 1 == st.count;
		sj->platform = platform;
		if (from_digest && st.items[i].kind == TE_STAPEL_STAGE_FROM &&
		    (rc = pin_from(&sj->from_pinned, ic->stapel->from,
		                   from_digest, err)) < 0) {
			free(sj);
			return rc;
		}
		sj->base = base;
		if (nimp)
			memcpy(sj->imports, imports, nimp * sizeof(*imports));
		sj->deps = sj->imports + nimp;
		if (ndep)
			memcpy(sj->deps, deps, ndep * sizeof(*deps));
		rc = te_plan_add_stage(NULL, pi, &spec, err);
	}
	return rc;
}

/* The plan image of the werf image `name` that image ic, built for
 * platform (NULL: native), uses (`what` at line), added first when
 * needed: a Stapel image for that platform, anything else through
 * env->add_other. */
static int add_used(te_plan_image **out, te_plan *plan,
                    const te_image_config *images, size_t n,
                    const te_image_config *ic, const char *platform,
                    const char *name, const char *what, int line,
                    const te_stapel_env *env, te_error *err)
{
	size_t j = te_stapel__find_image(images, n, name);
	const char *pick = NULL;
	int rc;

	if (j == n || (!images[j].stapel && !env->add_other))
		return te_error_set(err, TE_EUNSUPPORTED,
		                    "%s:%d: image \"%s\": %s of a Dockerfile "
		                    "image is not supported yet",
		                    env->file, line, ic->name, what);
	if (!images[j].stapel)
		rc = env->add_other(out, env->add_other_payload, &images[j],
		                    platform, err);
	else
		rc = te_stapel_pick_platform(&pick, &images[j].platforms,
		                             platform, env->native_platform,
		                             true, err);
	if (rc == 0 && images[j].stapel)
		return te_stapel_plan_add_for(out, plan, images, n, j, pick,
		                              env, err);
	if (rc < 0)
		te_error_wrap(err, "%s:%d: image \"%s\"%s%s%s: %s \"%s\"",
		              env->file, line, ic->name, platform ? " (" : "",
		              platform ? platform : "", platform ? ")" : "",
		              what, name);
	return rc;
}

/* Shell commands for a platform this machine cannot run are refused
 * before any build: buildah would fail with "exec format error" halfway
 * through the conveyor. */
static int check_runnable(const te_image_config *ic, const char *platform,
                          const te_stapel_env *env, te_error *err)
{
	te_image_platform p;
	char list[256] = "";
	size_t i;
	int rc;

	if (!platform || !env->runnable_archs ||
	    !te_stapel_runs_commands(ic->stapel))
		return 0;
	rc = te_image_platform_parse(&p, platform, err);
	if (rc < 0)
		return te_error_wrap(err, "%s:%d: image \"%s\"", env->file,
		                     ic->line, ic->name);
	if (te_strvec_contains(env->runnable_archs, p.architecture))
		return 0;
	for (i = 0; i < env->runnable_archs->count; i++) {
		size_t len = strlen(list);
		snprintf(list + len, sizeof(list) - len, "%s%s", i ? ", " : "",
		         env->runnable_archs->items[i]);
	}
	return te_error_set(err, TE_EUNSUPPORTED,
	                    "%s:%d: image \"%s\": shell commands for %s run "
	                    "%s binaries; this machine runs %s (emulation: "
	                    "qemu-user-static, binfmt-support)",
	                    env->file, ic->line, ic->name, platform,
	                    p.architecture, *list ? list : "its own");
}

/* `stage` names a stage of werf's Stapel conveyor: an import naming one
 * of a Dockerfile image is refused before any build. */
static int check_import_stage(const te_stapel_import *im,
                              const te_image_config *images, size_t n,
                              const te_image_config *ic,
                              const te_stapel_env *env, te_error *err)
{
	size_t j;

	if (!im->image || !im->stage)
		return 0;
	j = te_stapel__find_image(images, n, im->image);
	if (j == n || images[j].stapel)
		return 0;
	return te_error_set(err, TE_EINVALID,
	                    "%s:%d: image \"%s\": import: stage \"%s\": "
	                    "\"%s\" is a Dockerfile image, which has no "
	                    "Stapel stages (remove stage)",
	                    env->file, im->line, ic->name, im->stage,
	                    im->image);
}

/* The plan name of ic built for platform: its own name for its own
 * build, "<name> (<platform>)" for one of several. */
static int plan_name(char *out, size_t size, const te_image_config *ic,
                     const char *platform, te_error *err)
{
	int len = platform ? snprintf(out, size, "%s (%s)", ic->name, platform)
	                   : snprintf(out, size, "%s", ic->name);

	if (len < 0 || (size_t)len >= size)
		return te_error_set(err, TE_EINVALID,
		                    "image name \"%s\" is too long", ic->name);
	return 0;
}

int te_stapel_plan_add(te_plan_image **out, te_plan *plan,
                       const struct te_image_config *images, size_t n,
                       size_t index, const te_stapel_env *env, te_error *err)
{
	return te_stapel_plan_add_for(out, plan, images, n, index, NULL, env,
	                              err);
}

int te_stapel_plan_add_for(te_plan_image **out, te_plan *plan,
                           const struct te_image_config *images, size_t n,
                           size_t index, const char *platform,
                           const te_stapel_env *env, te_error *err)
{
	const te_image_config *ic = &images[index];
	const te_stapel_image *s = ic->stapel;
	te_plan_image *base = NULL, *pi = NULL, **imports = NULL, **deps = NULL;
	/* the platform built: the one asked for, or the image's only one */
	const char *built = platform                   ? platform
	                    : ic->platforms.count == 1 ? ic->platforms.items[0]
	                                               : NULL;
	char from_digest[TE_DIGEST_STR_MAX];
	char where[300], name[600];
	size_t i;
	int rc;

	rc = plan_name(name, sizeof(name), ic, platform, err);
	if (rc < 0)
		return rc;
	*out = te_plan_image_find(plan, name);
	if (*out)
		return 0;
	rc = te_stapel_check_buildable(s, env->file, ic->name, err);
	if (rc == 0 && !platform && ic->platforms.count > 1)
		rc = te_error_set(err, TE_EUNSUPPORTED,
		                  "%s:%d: image \"%s\": is built for %zu "
		                  "platforms: name one",
		                  env->file, ic->line, ic->name,
		                  ic->platforms.count);
	if (rc == 0)
		rc = check_runnable(ic, built, env, err);
	if (rc == 0 && s->from_latest)
		rc = from_latest_allowed(ic, env, err);
	if (rc == 0 && s->from_latest)
		rc = from_latest_digest(from_digest, ic, env, err);
	if (rc == 0 && s->from_image)
		rc = add_used(&base, plan, images, n, ic, built, s->from_image,
		              "fromImage", s->from_line, env, err);
	if (rc == 0) {
		imports = calloc(s->nimports + 1, sizeof(*imports));
		deps = calloc(s->ndeps + 1, sizeof(*deps));
		if (!imports || !deps)
			rc = te_error_set(err, TE_ENOMEM, "out of memory");
	}
	for (i = 0; rc == 0 && i < s->ndeps; i++)
		rc = add_used(&deps[i], plan, images, n, ic, built,
		              s->deps[i].image, "dependency", s->deps[i].line,
		              env, err);
	for (i = 0; rc == 0 && i < s->nimports; i++)
		if (s->imports[i].image)
			rc = add_used(&imports[i], plan, images, n, ic, built,
			              s->imports[i].image, "import",
			              s->imports[i].line, env, err);
	for (i = 0; rc == 0 && i < s->nimports; i++)
		rc =
		    check_import_stage(&s->imports[i], images, n, ic, env, err);
	snprintf(where, sizeof(where), "%s:%d", env->file, ic->line);
	if (rc == 0)
		rc = te_plan_add_image(&pi, plan, name, where, err);
	if (rc == 0 && base)
		rc = te_plan_add_dependency(pi, base, err);
	for (i = 0; rc == 0 && i < s->nimports; i++)
		if (imports[i])
			rc = te_plan_add_dependency(pi, imports[i], err);
	for (i = 0; rc == 0 && i < s->ndeps; i++)
		rc = te_plan_add_dependency(pi, deps[i], err);
	if (rc == 0)
		rc = add_stages(pi, ic, built,
		                s->from_latest ? from_digest : NULL, base,
		                (const te_plan_image *const *)imports,
		                (const te_plan_image *const *)deps, env, err);
	if (rc == 0)
		*out = pi;
	free(imports);
	free(deps);
	return rc;
}
