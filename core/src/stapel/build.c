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
 *   gitCache,          the git patch (gitCache only when the patch from
 *   gitLatestPatch     the previous stage's commit is 1 MiB or more,
 *                      gitLatestPatch only when it is not empty; both
 *                      resolved by te_plan_seal)
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

#include <ctype.h>
#include <errno.h>
#include <fcntl.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <jansson.h>

#include "tagexport/digest.h"
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
	/* werf.yaml's images (borrowed), to follow fromImage for mounts */
	const te_image_config *images;
	size_t nimages;
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
	te_buf dir;     /* the build context */
	te_buf df;      /* the Dockerfile */
	te_buf script;  /* the stage's commands */
	te_buf patch;   /* removals of the git patch */
	te_buf imports; /* the `imports` script (filtered imports) */
	te_buf pre;     /* Dockerfile stages before FROM (imports) */
	/* the image's mounts, then those of its fromImage chain */
	const te_stapel_mount **mounts;
	size_t nmounts;
	bool tools;        /* the tools directory is needed */
	bool git_written;  /* the stage writes git files: label them */
	char *prev_commit; /* the base's TE_STAPEL_GIT_LABEL, or NULL */
	te_registry *reg;  /* this build's client of the stages repo */
	te_buf base_manifest;
	te_buf base_config;
	char base_type[128];
	/* per mapping: the base's label of each remote one, or NULL */
	char **prev_remote;
	te_error *err;
};

/* ---- files: the tools directory and the mappings ----------------------- */

/* The repository the mappings' `add` paths are read from (its root). */
static te_gitsrc *git_src(const te_stapel_env *env)
{
	return env->root ? env->root : env->src;
}

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
static int list_mapping(struct flist *f, const struct job *j, te_gitsrc *src,
                        const te_stapel_git *g, const char *commit)
{
	int rc;

	rc = te_gitsrc_walk(src, commit, g->add + 1, list_file, f, j->err);
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

/* Where mapping i's files come from: the project at the commit, or its
 * remote at the commit fetched (stapel/remote.c). */
static void mapping_src(te_gitsrc **src, const char **commit,
                        const struct job *j, size_t i)
{
	const te_stapel_env *env = j->sj->env;

	*src = git_src(env);
	*commit = env->commit;
	if (j->img->git[i].url)
		te_stapel__remote_get(src, commit, env->remotes,
		                      &j->img->git[i]);
}

/* The commit the base's files of mapping i come from, or NULL. */
static const char *mapping_prev(const struct job *j, size_t i)
{
	if (!j->img->git[i].url)
		return j->prev_commit;
	return j->prev_remote ? j->prev_remote[i] : NULL;
}

/* Does mapping i need a patch: the base has its files, at another
 * commit? */
static bool mapping_moved(const struct job *j, size_t i)
{
	const char *prev = mapping_prev(j, i), *commit;
	te_gitsrc *src;

	mapping_src(&src, &commit, j, i);
	return prev && strcmp(prev, commit);
}

/* Mapping i from the base's commit to ours into ps (paths sorted);
 * numeric: owners as numbers for the layer (stapel/layer.c). */
static int collect_mapping(te_stapel_patchset *ps, struct job *j, size_t i,
                           bool numeric)
{
	const te_stapel_git *g = &j->img->git[i];
	struct flist prev, cur;
	te_ignore *inc = NULL, *exc = NULL;
	te_gitsrc *src;
	const char *commit;
	size_t first = ps->nfiles, k;
	int rc;

	memset(&prev, 0, sizeof(prev));
	memset(&cur, 0, sizeof(cur));
	rc = te_stapel__matcher(&inc, &g->include_paths, j->err);
	if (rc == 0)
		rc = te_stapel__matcher(&exc, &g->exclude_paths, j->err);
	prev.include = cur.include = inc;
	prev.exclude = cur.exclude = exc;
	prev.err = cur.err = j->err;
	mapping_src(&src, &commit, j, i);
	if (rc == 0)
		rc = list_mapping(&prev, j, src, g, mapping_prev(j, i));
	if (rc == 0)
		rc = list_mapping(&cur, j, src, g, commit);
	if (rc == 0)
		rc = diff_into(ps, g, &prev, &cur, numeric, j->err);
	for (k = first; rc == 0 && g->url && k < ps->nfiles; k++)
		ps->files[k].src = src;
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
	te_gitsrc *gs;
	const char *commit;
	char src[32];
	int rc;

	snprintf(src, sizeof(src), "g%zu", i);
	rc = join(&dest, j, src);
	if (rc == 0 && mkdir(dest.ptr, 0755) < 0)
		rc = te_error_set_errno(j->err, TE_EIO, errno, "mkdir %s",
		                        dest.ptr);
	mapping_src(&gs, &commit, j, i);
	if (rc == 0)
		rc = te_gitsrc_materialize(gs, commit, g->add + 1, dest.ptr,
		                           keep_file, k, env->limits, j->err);
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
	for (i = 0; rc == 0 && i < j->img->ngit; i++) {
		if (!mapping_moved(j, i))
			continue;
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

static bool is_commit(const char *v)
{
	return v && strlen(v) == 40 && strspn(v, "0123456789abcdef") == 40;
}

/* The remote mappings' commits of the base (their labels). */
static int base_remotes(struct job *j, json_t *labels)
{
	char key[TE_STAPEL_GIT_LABEL_MAX];
	const char *v;
	size_t i;

	for (i = 0; i < j->img->ngit; i++) {
		if (!j->img->git[i].url)
			continue;
		snprintf(key, sizeof(key), TE_STAPEL_GIT_LABEL "-%zu", i);
		v = json_string_value(json_object_get(labels, key));
		if (!is_commit(v))
			continue;
		if (!j->prev_remote)
			j->prev_remote =
			    calloc(j->img->ngit, sizeof(*j->prev_remote));
		if (!j->prev_remote ||
		    !(j->prev_remote[i] = te_strdup(v, j->err)))
			return te_error_set(j->err, TE_ENOMEM, "out of memory");
	}
	return 0;
}

/* Forget what base_commit read (before reading it again). */
static void forget_base(struct job *j)
{
	size_t i;

	for (i = 0; j->prev_remote && i < j->img->ngit; i++)
		free(j->prev_remote[i]);
	free(j->prev_remote);
	j->prev_remote = NULL;
	free(j->prev_commit);
	j->prev_commit = NULL;
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
	if (rc == 0)
		rc = base_remotes(
		    j,
		    json_object_get(json_object_get(root, "config"), "Labels"));
done:
	json_decref(root);
	te_image_manifest_dispose(&m);
	return rc;
}

/* ---- gitLatestPatch as a layer put in the registry (stapel/layer.c) ---- */

static int stage_labels(te_labels **out, const struct job *j);

/* gitCache or gitLatestPatch without buildah; TE_EUNSUPPORTED: build it
 * instead. */
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
	for (i = 0; rc == 0 && j->prev_commit && i < j->img->ngit; i++)
		if (mapping_moved(j, i))
			rc = collect_mapping(&ps, j, i, true);
	if (rc == 0)
		rc = stage_labels(&labels, j);
	if (rc == 0) {
		t.src = git_src(env);
		t.base_manifest = &j->base_manifest;
		t.media_type = j->base_type;
		t.base_config = &j->base_config;
		t.labels = labels;
		t.reg = j->reg;
		t.repo = env->repo_path;
		t.tag = te_plan_stage_digest(j->ctx->stage);
		t.stage = te_stapel_stage_name(j->sj->kind);
		rc = te_stapel__layer_push(digest_out, &ps, &t, j->err);
	}
	if (rc == 0)
		te_log_emit(&j->ctx->log, TE_LOG_INFO,
		            "image %s: building stage %s: one layer "
		            "put in the stages repo (%zu files, %zu removed)",
		            te_plan_image_name(j->ctx->image),
		            te_stapel_stage_name(j->sj->kind), ps.nfiles,
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

/* The from stage: FROM, and the mount points emptied, as werf's from
 * stage does (https://werf.io/docs/v2/usage/build/stapel/mounts.html):
 * what the base holds there is not the image's. */
static int clear_mount_points(struct job *j)
{
	size_t i;
	int rc = 0;

	for (i = 0; rc == 0 && i < j->nmounts; i++)
		rc = remove_line(j, j->mounts[i]->to);
	return rc;
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
	case TE_STAPEL_STAGE_GIT_CACHE:
	case TE_STAPEL_STAGE_GIT_LATEST_PATCH:
		return apply_patch(j);
	case TE_STAPEL_STAGE_DOCKER:
		return te_stapel__df_docker(&j->df, &j->img->docker, j->err);
	default:
		return clear_mount_points(j);
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
		rc = te_stapel__df_script(&body, "patch", NULL, 0, NULL, 0,
		                          j->err);
	}
	if (rc == 0)
		rc = te_buf_put(&body, j->df.ptr, j->df.len, j->err);
	if (rc == 0 && j->script.len)
		rc = te_stapel__df_script(
		    &body, "script", (const te_stapel_mount *const *)j->mounts,
		    j->nmounts, j->sj->image->secrets, j->sj->image->nsecrets,
		    j->err);
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
	char key[TE_STAPEL_GIT_LABEL_MAX];
	size_t i;
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
	for (i = 0; rc == 0 && j->git_written && i < j->img->ngit; i++) {
		te_gitsrc *src;
		const char *commit;

		if (!j->img->git[i].url)
			continue;
		mapping_src(&src, &commit, j, i);
		snprintf(key, sizeof(key), TE_STAPEL_GIT_LABEL "-%zu", i);
		rc = te_labels_set(*out, key, commit, j->err);
	}
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

/* ---- mounts and secrets of the shell stages' RUN ---------------------- */

static bool has_target(const struct job *j, const char *to)
{
	size_t i;

	for (i = 0; i < j->nmounts; i++)
		if (!strcmp(j->mounts[i]->to, to))
			return true;
	return false;
}

/* The Stapel image ic is built on (fromImage), or NULL. */
static const te_image_config *base_of(const struct stage_job *sj,
                                      const te_image_config *ic)
{
	size_t i = ic->stapel->from_image
	               ? te_stapel__find_image(sj->images, sj->nimages,
	                                       ic->stapel->from_image)
	               : sj->nimages;

	return i < sj->nimages && sj->images[i].stapel ? &sj->images[i] : NULL;
}

/*
 * j->mounts: the image's own, then those of its fromImage, its base's and
 * so on, a target named once (the nearer image's wins).  werf records an
 * image's mounts in its from stage's labels and the images built on it
 * mount them too (https://werf.io/docs/v2/usage/build/stapel/mounts.html);
 * their allowances were checked when the base was planned.  fromImage
 * chains have no cycle (te_stapel__link); k bounds the walk anyway.
 */
static int collect_mounts(struct job *j)
{
	const te_image_config *ic;
	size_t cap = 0, i, k;

	for (ic = j->sj->image, k = 0; ic && k <= j->sj->nimages;
	     ic = base_of(j->sj, ic), k++)
		cap += ic->stapel->nmounts;
	j->mounts = calloc(cap ? cap : 1, sizeof(*j->mounts));
	if (!j->mounts)
		return te_error_set(j->err, TE_ENOMEM, "out of memory");
	for (ic = j->sj->image, k = 0; ic && k <= j->sj->nimages;
	     ic = base_of(j->sj, ic), k++)
		for (i = 0; i < ic->stapel->nmounts; i++)
			if (!has_target(j, ic->stapel->mounts[i].to))
				j->mounts[j->nmounts++] =
				    &ic->stapel->mounts[i];
	return 0;
}

/*
 * from: build_dir: <state>/mounts/projects/<project>/<mount id>, kept
 * between builds (werf: ~/.werf/shared_context/mounts/projects/<project>/
 * <mount id>, https://werf.io/docs/v2/usage/build/stapel/mounts.html);
 * the id is `to` made a file name plus a hash of it, so two targets never
 * share a directory.  The project is the operator's where there is one
 * (te_stapel_policy.project), else werf.yaml's; both are file names
 * ([a-z0-9_-], config.c and project.c).
 */
static int build_dir_path(te_buf *out, const te_stapel_env *env, const char *to,
                          te_error *err)
{
	const te_stapel_policy *op = env->policy;
	const char *project = op && op->project ? op->project : env->project;
	char hash[TE_CONTENT_TAG_LEN + 1], name[65];
	te_digest *d = NULL;
	size_t i, n = 0;
	int rc;

	rc = te_digest_new(&d, err);
	if (rc == 0)
		rc = te_digest_field(d, to, strlen(to), err);
	if (rc == 0)
		rc = te_digest_final(hash, d, err);
	te_digest_free(d);
	for (i = 1; rc == 0 && to[i] && n < sizeof(name) - 1; i++)
		name[n++] = isalnum((unsigned char)to[i]) || to[i] == '.' ||
		                    to[i] == '_'
		                ? to[i]
		                : '-';
	name[n] = '\0';
	if (rc == 0)
		rc = te_buf_printf(out, err, "%s/mounts/projects/%s/%s-%.16s",
		                   env->build->state_dir, project, name, hash);
	return rc;
}

/* fromPath by its real path: what te_stapel_mount_check matched against
 * the operator's globs, whatever a symlink on the way points to now. */
static int from_path_volume(te_strvec *out, const te_stapel_mount *m,
                            const struct job *j)
{
	char *real = realpath(m->from_path, NULL);
	int rc;

	if (!real)
		return te_error_set_errno(j->err, TE_ENOTFOUND, errno,
		                          "mount fromPath \"%s\"",
		                          m->from_path);
	if (strpbrk(real, ":,"))
		rc = te_error_set(j->err, TE_EUNSUPPORTED,
		                  "mount fromPath \"%s\" leads to a path with "
		                  "':' or ','",
		                  m->from_path);
	else
		rc = te_strvec_pushf(out, j->err, "%s:%s:rw", real, m->to);
	free(real);
	return rc;
}

/* The build's --volume list (build.h): build_dir and fromPath mounts.
 * build_dir gets buildah's U option: its files belong to RUN's root in
 * whatever user namespace runs it (under OCI isolation, host uid 100000),
 * so RUN can write there (buildah lchowns: a symlink RUN left there is
 * not followed out of it); a fromPath is the machine's and keeps its
 * owners. */
static int mount_volumes(te_strvec *out, const struct job *j)
{
	te_buf dir = TE_BUF_INIT(8192);
	size_t i;
	int rc = 0;

	for (i = 0; rc == 0 && i < j->nmounts; i++) {
		const te_stapel_mount *m = j->mounts[i];

		if (m->from == TE_STAPEL_MOUNT_PATH) {
			rc = from_path_volume(out, m, j);
			continue;
		}
		if (m->from != TE_STAPEL_MOUNT_BUILD_DIR)
			continue;
		te_buf_clear(&dir);
		rc = build_dir_path(&dir, j->sj->env, m->to, j->err);
		if (rc == 0)
			rc = te_fs_mkdirs(dir.ptr, j->err);
		if (rc == 0)
			rc = te_strvec_pushf(out, j->err, "%s:%s:rw,U", dir.ptr,
			                     m->to);
	}
	te_buf_dispose(&dir);
	return rc;
}

/* A shell stage's RUN: its volumes and the image's secrets' values
 * (released by the caller with env->secrets_put(*held)). */
static int run_mounts(te_build_opts *b, te_strvec *volumes, void **held,
                      const struct job *j)
{
	const te_stapel_env *env = j->sj->env;
	const te_image_config *ic = j->sj->image;
	int rc;

	rc = mount_volumes(volumes, j);
	b->volumes = (const char *const *)volumes->items;
	b->nvolumes = volumes->count;
	if (rc < 0 || !ic->nsecrets)
		return rc;
	if (!env->secrets_get)
		return te_error_set(j->err, TE_EINVALID,
		                    "this export has no source for build "
		                    "secrets");
	return env->secrets_get(held, &b->secrets, &b->nsecrets, ic,
	                        env->secrets_payload, j->err);
}

static int build_stage(char digest_out[TE_DIGEST_STR_MAX],
                       const te_stage_ctx *ctx, void *payload, te_error *err)
{
	const struct stage_job *sj = payload;
	struct job j;
	te_build_opts bopts = *sj->env->build;
	te_labels *labels = NULL;
	te_strvec volumes = TE_STRVEC_INIT;
	void *secrets_held = NULL;
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
		rc = collect_mounts(&j);
	if (rc == 0)
		rc = shared_stage(&found, &claimed, digest_out, &j);
	if (rc < 0 || found)
		goto done;
	/* the layer put without buildah has no config edit */
	if ((sj->kind == TE_STAPEL_STAGE_GIT_LATEST_PATCH ||
	     sj->kind == TE_STAPEL_STAGE_GIT_CACHE) &&
	    ctx->base_ref && !edits_config(sj)) {
		lock(sj->env);
		rc = push_patch_layer(digest_out, &j);
		unlock(sj->env);
		if (rc != TE_EUNSUPPORTED)
			goto done;
		te_log_emit(&ctx->log, TE_LOG_INFO, "image %s: %s: building",
		            te_plan_image_name(ctx->image), err->msg);
		te_error_clear(err);
		forget_base(&j);
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
	/* werf mounts into the assembly container: the shell stages' RUN */
	if (rc == 0 && j.script.len)
		rc = run_mounts(&bopts, &volumes, &secrets_held, &j);
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
	if (secrets_held)
		sj->env->secrets_put(secrets_held);
	te_strvec_dispose(&volumes);
	free(j.mounts);
	te_labels_free(labels);
	forget_base(&j);
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

/* ---- fromLatest ---------------------------------------------------------- */

#define GITERMINISM_FILE "werf-giterminism.yaml"
#define GITERMINISM_MAX ((size_t)64 << 10)

/* config.stapel of the commit's werf-giterminism.yaml
 * (https://werf.io/docs/v2/usage/project_configuration/giterminism.html);
 * dispose *allowed in any case. */
static int load_allowed(te_stapel_allowed *allowed, const te_stapel_env *env,
                        te_error *err)
{
	te_buf data = TE_BUF_INIT(GITERMINISM_MAX);
	int rc;

	lock(env);
	rc = te_gitsrc_read_file(&data, env->src, env->commit, GITERMINISM_FILE,
	                         err);
	unlock(env);
	if (rc == TE_ENOTFOUND) {
		te_error_clear(err);
		rc = te_stapel_allowed_parse(allowed, NULL, 0, err);
	} else if (rc == 0) {
		rc = te_stapel_allowed_parse(allowed, data.ptr, data.len, err);
	} else {
		te_stapel_allowed_parse(allowed, NULL, 0, NULL);
	}
	te_buf_dispose(&data);
	return rc;
}

/* A remote mapping by branch, or by none (the remote's default branch),
 * follows whatever the remote's branch holds. */
static bool git_by_branch(const te_stapel_git *g)
{
	return g->url && !g->tag && !g->commit;
}

/* What werf-giterminism.yaml must allow (fromLatest, remote mappings by
 * branch, build_dir and fromPath mounts), and what the operator must
 * allow on top (mounts), before anything is built or fetched. */
static int allowed_keys(const te_image_config *ic, const te_stapel_env *env,
                        te_error *err)
{
	const te_stapel_image *s = ic->stapel;
	te_stapel_allowed allowed;
	size_t i;
	bool need = s->from_latest;
	int rc = 0;

	for (i = 0; i < s->nmounts; i++)
		need |= s->mounts[i].from != TE_STAPEL_MOUNT_TMP_DIR;
	for (i = 0; i < s->ngit; i++)
		need |= git_by_branch(&s->git[i]);
	if (!need)
		return 0;
	memset(&allowed, 0, sizeof(allowed));
	if (!env->loose_giterminism)
		rc = load_allowed(&allowed, env, err);
	if (rc == 0 && !env->loose_giterminism && s->from_latest &&
	    !allowed.from_latest)
		rc = te_error_set(err, TE_EINVALID,
		                  "%s:%d: image \"%s\": fromLatest is not "
		                  "allowed by " GITERMINISM_FILE
		                  " (config.stapel.allowFromLatest)",
		                  env->file, s->from_latest_line, ic->name);
	for (i = 0; rc == 0 && i < s->ngit; i++)
		if (git_by_branch(&s->git[i]) && !env->loose_giterminism &&
		    !allowed.git_branch)
			rc = te_error_set(
			    err, TE_EINVALID,
			    "%s:%d: image \"%s\": git url %s: %s is not "
			    "allowed by " GITERMINISM_FILE
			    " (config.stapel.git.allowBranch); pin a tag or "
			    "commit",
			    env->file, s->git[i].line, ic->name, s->git[i].url,
			    s->git[i].branch
			        ? "branch"
			        : "no tag or commit (the default branch)");
	for (i = 0; rc == 0 && i < s->nmounts; i++)
		rc = te_stapel_mount_check(
		    &s->mounts[i], env->loose_giterminism ? NULL : &allowed,
		    env->policy, env->file, ic->name, err);
	/* a missing fromPath fails here, not in the middle of a build */
	for (i = 0; rc == 0 && i < s->nmounts; i++)
		if (s->mounts[i].from == TE_STAPEL_MOUNT_PATH &&
		    access(s->mounts[i].from_path, F_OK) < 0)
			rc = te_error_set_errno(
			    err, TE_ENOTFOUND, errno,
			    "%s:%d: image \"%s\": mount fromPath \"%s\"",
			    env->file, s->mounts[i].line, ic->name,
			    s->mounts[i].from_path);
	te_stapel_allowed_dispose(&allowed);
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

/* The remote mappings of ic, fetched (allowed_keys has checked that a
 * branch, or no ref, is allowed: a pinned tag or commit is reproducible,
 * a branch is not; https://werf.io/docs/v2/usage/project_configuration/
 * giterminism.html, "branch"). */
static int fetch_remotes(const te_image_config *ic, const te_stapel_env *env,
                         te_error *err)
{
	const te_stapel_image *s = ic->stapel;
	size_t i;
	int rc = 0;

	for (i = 0; rc == 0 && i < s->ngit; i++)
		rc = te_stapel_git_url_check(&s->git[i], env->policy, env->file,
		                             ic->name, err);
	for (i = 0; rc == 0 && i < s->ngit; i++)
		if (s->git[i].url)
			rc = te_stapel__remote_resolve(
			    env->remotes, &s->git[i], env->file, ic->name, err);
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

/* ---- gitCache --------------------------------------------------------- */

/* werf's gitCache (werf/werf pkg/build/stage/git_cache.go; "size of git
 * diff between last used commit and actual" in werf's stage table): a
 * patch stage that exists when the patch from the commit of the previous
 * stage's image to ours is 1 MiB or more; its digest covers the size in
 * whole MiB.  The next commits then find it in the stages repo and
 * gitLatestPatch carries only what changed since.  The size here is what
 * the patch layer holds: the bytes of the changed and added files. */

/* Does a stage of this kind, when built now, record our commit? */
static bool writes_git(te_stapel_stage_kind k)
{
	return k == TE_STAPEL_STAGE_GIT_ARCHIVE ||
	       k == TE_STAPEL_STAGE_INSTALL ||
	       k == TE_STAPEL_STAGE_BEFORE_SETUP ||
	       k == TE_STAPEL_STAGE_SETUP || k == TE_STAPEL_STAGE_GIT_CACHE ||
	       k == TE_STAPEL_STAGE_GIT_LATEST_PATCH;
}

/* The commit the stage before `index` records (j->prev_commit), as the
 * stages repo has it or as building it now would leave it: the nearest
 * stage back that is in the repo passes its label down, unless a stage
 * after it writes git files (then: ours, and no patch). */
static int cache_base_commit(struct job *j, te_stage_ctx *ctx,
                             const te_plan_image *img, size_t index)
{
	const te_stapel_env *env = j->sj->env;
	char digest[TE_DIGEST_STR_MAX];
	bool found = false;
	size_t k = index;
	int rc = 0;

	while (rc == 0 && k-- > 0) {
		const te_plan_stage *st = te_plan_stage_at(img, k);
		const struct stage_job *sj = te_plan_stage_payload(st);

		rc = te_registry_manifest_exists(
		    &found, digest, j->reg, env->repo_path,
		    te_plan_stage_digest(st), j->err);
		if (rc == 0 && found) {
			ctx->base_ref = te_plan_stage_ref(st);
			return base_commit(j);
		}
		if (rc == 0 && writes_git(sj->kind))
			break;
	}
	return rc;
}

/* The bytes of the changed and added files from j->prev_commit to ours. */
static int patch_size(uint64_t *out, struct job *j)
{
	const te_stapel_env *env = j->sj->env;
	te_stapel_patchset ps;
	struct keep k = {&ps, NULL, NULL, NULL};
	uint64_t total;
	te_gitsrc *src;
	const char *commit;
	size_t i;
	int rc = 0;

	*out = 0;
	for (i = 0; rc == 0 && i < j->img->ngit; i++) {
		memset(&ps, 0, sizeof(ps));
		k.to = j->img->git[i].to;
		total = 0;
		mapping_src(&src, &commit, j, i);
		rc = collect_mapping(&ps, j, i, false);
		if (rc == 0 && ps.nfiles)
			rc = te_gitsrc_check(&total, src, commit,
			                     j->img->git[i].add + 1, keep_file,
			                     &k, env->limits, j->err);
		*out += total;
		patchset_dispose(&ps);
	}
	return rc;
}

/* A job that reads patches of img between two commits of src and
 * nothing else (the unit tests' entry points below). */
static void offline_job(struct job *j, struct stage_job *sj, te_stapel_env *env,
                        const te_stapel_image *img, te_gitsrc *src,
                        const char *from, const char *to, te_error *err)
{
	memset(env, 0, sizeof(*env));
	memset(sj, 0, sizeof(*sj));
	memset(j, 0, sizeof(*j));
	env->src = src;
	env->commit = to;
	sj->env = env;
	j->sj = sj;
	j->img = img;
	j->prev_commit = (char *)from;
	j->err = err;
}

int te_stapel__patch_size(uint64_t *out, const te_stapel_image *img,
                          te_gitsrc *src, const char *from, const char *to,
                          const te_gitsrc_limits *lim, te_error *err)
{
	te_stapel_env env;
	struct stage_job sj;
	struct job j;

	offline_job(&j, &sj, &env, img, src, from, to, err);
	env.limits = lim;
	return patch_size(out, &j);
}

/* patch_size, or 0 when the repository lacks the base commit (a
 * rewritten history): werf then makes no gitCache either. */
static int commit_size(uint64_t *out, struct job *j)
{
	int64_t when;
	int offset, rc;

	*out = 0;
	rc = te_gitsrc_commit_time(&when, &offset, git_src(j->sj->env),
	                           j->prev_commit, j->err);
	if (rc == TE_ENOTFOUND || rc == TE_EINVALID) {
		te_error_clear(j->err);
		return 0;
	}
	return rc == 0 ? patch_size(out, j) : rc;
}

/* A resolver's job (plan.h, te_stage_resolve_fn): the stage's payload,
 * the stages repo, and the commit the stage before `index` records
 * (cache_base_commit).  Close it with resolver_close in any case. */
static int resolver_open(struct job *j, te_stage_ctx *ctx,
                         const struct stage_job *sj, const te_plan_image *img,
                         size_t index, te_error *err)
{
	int rc;

	memset(j, 0, sizeof(*j));
	memset(ctx, 0, sizeof(*ctx));
	j->sj = sj;
	j->ctx = ctx;
	j->img = sj->image->stapel;
	j->err = err;
	te_buf_init(&j->base_manifest, TE_MANIFEST_MAX);
	te_buf_init(&j->base_config, CONFIG_MAX);
	rc = te_registry_new(&j->reg, sj->env->registry_host,
	                     sj->env->registry_opts, err);
	return rc == 0 ? cache_base_commit(j, ctx, img, index) : rc;
}

static void resolver_close(struct job *j)
{
	forget_base(j);
	te_buf_dispose(&j->base_manifest);
	te_buf_dispose(&j->base_config);
	te_registry_free(j->reg);
}

static int resolve_git_cache(te_buf *input, bool *absent,
                             const te_plan_image *img, size_t index,
                             void *payload, te_error *err)
{
	const struct stage_job *sj = payload;
	te_stage_ctx ctx;
	struct job j;
	uint64_t size = 0;
	int rc = resolver_open(&j, &ctx, sj, img, index, err);

	if (rc == 0 && j.prev_commit && strcmp(j.prev_commit, sj->env->commit))
		rc = commit_size(&size, &j);
	*absent = size < TE_STAPEL_GIT_CACHE_STEP;
	if (rc == 0 && !*absent) {
		rc = te_buf_printf(
		    input, err, "gitCache:::patch-mib:%llu",
		    (unsigned long long)(size / TE_STAPEL_GIT_CACHE_STEP));
		te_log_emit(&sj->env->log, TE_LOG_INFO,
		            "image %s: gitCache: a patch of %llu bytes from "
		            "commit %.12s",
		            te_plan_image_name(img), (unsigned long long)size,
		            j.prev_commit);
	}
	resolver_close(&j);
	return rc;
}

/* ---- gitLatestPatch ---------------------------------------------------- */

/* werf's gitLatestPatch (werf/werf pkg/build/stage/git_latest_patch.go):
 * absent when the patch from the commit of the previous stage's image to
 * ours is empty for every mapping (IsEmpty), else its digest covers the
 * patch content of each mapping (GetDependencies).  The content here is
 * what the builder puts in the layer (push_patch_layer, apply_patch):
 * changed and added paths with their mode and blob id, removed paths. */

static void patch_field(te_digest *d, int *rc, const char *s, te_error *err)
{
	if (*rc == 0)
		*rc = te_digest_field(d, s, strlen(s), err);
}

/* werf fails when the previous stage's commit is not in the repository
 * (GitLatestPatchStage.IsEmpty): a patch from an unknown tree would leave
 * the files it no longer has in the image. */
static int check_prev_commit(struct job *j, size_t i)
{
	const char *prev = mapping_prev(j, i), *commit;
	te_gitsrc *src;
	int64_t when;
	int offset, rc;

	mapping_src(&src, &commit, j, i);
	rc = te_gitsrc_commit_time(&when, &offset, src, prev, j->err);
	if (rc == TE_ENOTFOUND || rc == TE_EINVALID) {
		te_error_clear(j->err);
		rc =
		    te_error_set(j->err, TE_ENOTFOUND,
		                 "git add %s (line %d): commit %s of the "
		                 "previous stage's image is not in the "
		                 "repository (a rewritten history?)",
		                 j->img->git[i].add, j->img->git[i].line, prev);
	}
	return rc;
}

/* Mapping i's patch (collect_mapping) into d; *changed when it has one. */
static int patch_mapping(te_digest *d, bool *changed, struct job *j, size_t i)
{
	te_stapel_patchset ps;
	char field[64];
	size_t k;
	int rc;

	memset(&ps, 0, sizeof(ps));
	rc = check_prev_commit(j, i);
	if (rc == 0)
		rc = collect_mapping(&ps, j, i, false);
	snprintf(field, sizeof(field), "files:%zu", ps.nfiles);
	patch_field(d, &rc, field, j->err);
	for (k = 0; k < ps.nfiles; k++) {
		snprintf(field, sizeof(field), "%o", ps.files[k].mode);
		patch_field(d, &rc, ps.files[k].path, j->err);
		patch_field(d, &rc, field, j->err);
		patch_field(d, &rc, ps.files[k].oid, j->err);
	}
	snprintf(field, sizeof(field), "removed:%zu", ps.removed.count);
	patch_field(d, &rc, field, j->err);
	for (k = 0; k < ps.removed.count; k++)
		patch_field(d, &rc, ps.removed.items[k], j->err);
	*changed |= ps.nfiles || ps.removed.count;
	patchset_dispose(&ps);
	return rc;
}

/* The digest of the patch from j's base commits to ours, per mapping;
 * *empty when no mapping changes (as apply_patch: nothing without the
 * base's commit). */
static int patch_digest(char out[TE_CONTENT_TAG_LEN + 1], bool *empty,
                        struct job *j)
{
	te_digest *d = NULL;
	char field[64];
	bool changed = false;
	size_t i;
	int rc;

	rc = te_digest_new(&d, j->err);
	for (i = 0; rc == 0 && i < j->img->ngit; i++) {
		snprintf(field, sizeof(field), "git:%zu", i);
		patch_field(d, &rc, field, j->err);
		if (rc == 0 && j->prev_commit && mapping_moved(j, i))
			rc = patch_mapping(d, &changed, j, i);
	}
	if (rc == 0)
		rc = te_digest_final(out, d, j->err);
	te_digest_free(d);
	*empty = !changed;
	return rc;
}

int te_stapel__patch_digest(char out[TE_CONTENT_TAG_LEN + 1], bool *empty,
                            const te_stapel_image *img, te_gitsrc *src,
                            const char *from, const char *to, te_error *err)
{
	te_stapel_env env;
	struct stage_job sj;
	struct job j;

	offline_job(&j, &sj, &env, img, src, from, to, err);
	return patch_digest(out, empty, &j);
}

/* The last stage carries the imageSpec (edits_config): it stays, an
 * empty layer with the edited config (werf's imageSpec stage). */
static int resolve_git_latest_patch(te_buf *input, bool *absent,
                                    const te_plan_image *img, size_t index,
                                    void *payload, te_error *err)
{
	const struct stage_job *sj = payload;
	te_stage_ctx ctx;
	struct job j;
	char digest[TE_CONTENT_TAG_LEN + 1];
	bool empty = true;
	int rc = resolver_open(&j, &ctx, sj, img, index, err);

	if (rc == 0)
		rc = patch_digest(digest, &empty, &j);
	*absent = empty && !edits_config(sj);
	/* the stage's own input (stages.c: its name, the imageSpec when
	 * last), then the patch */
	if (rc == 0 && !*absent)
		rc = te_buf_printf(
		    input, err, "%s:::patch:%s",
		    te_plan_stage_input(te_plan_stage_at(img, index)),
		    empty ? "-" : digest);
	if (rc == 0 && !empty)
		te_log_emit(
		    &sj->env->log, TE_LOG_INFO,
		    "image %s: gitLatestPatch: a patch from commit %.12s",
		    te_plan_image_name(img), j.prev_commit);
	resolver_close(&j);
	return rc;
}

/* ---- the plan's stages ---------------------------------------------- */

/* Everything a plan stage of ic needs but its kind. */
struct stages_ctx {
	te_plan_image *pi;
	const te_image_config *images; /* werf.yaml's, for fromImage chains */
	size_t nimages;
	const te_image_config *ic;
	const char *platform; /* --platform; NULL: native */
	const char *from_digest;
	const te_plan_image *base;
	const te_plan_image *const *imports;
	const te_plan_image *const *deps;
	const te_stapel_env *env;
};

static int add_one(te_plan_stage **out, const struct stages_ctx *c,
                   te_stapel_stage_kind kind, const char *input, bool last,
                   te_error *err)
{
	size_t nimp = c->ic->stapel->nimports, ndep = c->ic->stapel->ndeps;
	struct stage_job *sj =
	    calloc(1, sizeof(*sj) + (nimp + ndep) * sizeof(sj->imports[0]));
	te_plan_stage_spec spec = {te_stapel_stage_name(kind),
	                           input,
	                           build_stage,
	                           sj,
	                           stage_job_free,
	                           NULL};
	int rc;

	if (!sj)
		return te_error_set(err, TE_ENOMEM, "out of memory");
	sj->env = c->env;
	sj->image = c->ic;
	sj->kind = kind;
	sj->last = last;
	sj->platform = c->platform;
	if (kind == TE_STAPEL_STAGE_GIT_CACHE)
		spec.resolve = resolve_git_cache;
	if (kind == TE_STAPEL_STAGE_GIT_LATEST_PATCH)
		spec.resolve = resolve_git_latest_patch;
	if (c->from_digest && kind == TE_STAPEL_STAGE_FROM &&
	    (rc = pin_from(&sj->from_pinned, c->ic->stapel->from,
	                   c->from_digest, err)) < 0) {
		free(sj);
		return rc;
	}
	sj->base = c->base;
	sj->images = c->images;
	sj->nimages = c->nimages;
	if (nimp)
		memcpy(sj->imports, c->imports, nimp * sizeof(*c->imports));
	sj->deps = sj->imports + nimp;
	if (ndep)
		memcpy(sj->deps, c->deps, ndep * sizeof(*c->deps));
	return te_plan_add_stage(out, c->pi, &spec, err);
}

/* The plan stages of ic; by_kind[k]: the stage of kind k, or NULL.  A
 * gitCache candidate goes before gitLatestPatch: the plan resolves it. */
static int add_stages(te_plan_stage *by_kind[TE_STAPEL_NSTAGES],
                      const struct stages_ctx *c, te_error *err)
{
	const te_image_config *ic = c->ic;
	te_buf spec_text = TE_BUF_INIT(TE_IMAGESPEC_CONFIG_MAX);
	te_stapel_inputs in = {c->from_digest, ic->build_cache_version,
	                       c->platform, NULL, c->env->remotes};
	te_stapel_stages st;
	size_t i;
	int rc;

	rc = te_imagespec_serialize(&spec_text, &ic->imagespec, err);
	in.imagespec = spec_text.ptr;
	if (rc == 0)
		rc = te_stapel_stages_compute(&st, ic->stapel, git_src(c->env),
		                              c->env->commit, &in, err);
	te_buf_dispose(&spec_text);
	for (i = 0; rc == 0 && i < st.count; i++) {
		te_stapel_stage_kind k = st.items[i].kind;

		if (k == TE_STAPEL_STAGE_GIT_LATEST_PATCH)
			rc = add_one(&by_kind[TE_STAPEL_STAGE_GIT_CACHE], c,
			             TE_STAPEL_STAGE_GIT_CACHE, "", false, err);
		if (rc == 0)
			rc = add_one(&by_kind[k], c, k, st.items[i].input,
			             i + 1 == st.count, err);
	}
	return rc;
}

/* Where an import or a dependency lands. */
static const te_stapel_stage_kind deps_stage[TE_STAPEL_NWHEN] = {
    TE_STAPEL_STAGE_DEPS_BEFORE_INSTALL, TE_STAPEL_STAGE_DEPS_AFTER_INSTALL,
    TE_STAPEL_STAGE_DEPS_BEFORE_SETUP, TE_STAPEL_STAGE_DEPS_AFTER_SETUP};

/* An import enters the stage where it lands with its source's digest:
 * the source image's last stage, or the stage `stage` names (werf: that
 * stage's content digest, werf/werf pkg/build/stage/dependencies.go). */
static int add_import_dependency(te_plan_stage *at, te_plan_image *src,
                                 const te_stapel_import *im, const char *name,
                                 const te_stapel_env *env, te_error *err)
{
	size_t k;

	if (!im->stage)
		return te_plan_add_dependency_at(at, src, err);
	for (k = 0; k < te_plan_stage_count(src); k++) {
		te_plan_stage *st = te_plan_stage_at(src, k);

		if (!strcmp(te_plan_stage_name(st), im->stage))
			return te_plan_add_stage_dependency(at, st, err);
	}
	return te_error_set(err, TE_EINVALID,
	                    "%s:%d: image \"%s\": import: image \"%s\" has no "
	                    "stage \"%s\" (empty stages are left out)",
	                    env->file, im->line, name, im->image, im->stage);
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
	te_plan_stage *by_kind[TE_STAPEL_NSTAGES] = {NULL};
	/* the platform built: the one asked for, or the image's only one */
	const char *built = platform                   ? platform
	                    : ic->platforms.count == 1 ? ic->platforms.items[0]
	                                               : NULL;
	char from_digest[TE_DIGEST_STR_MAX];
	char where[300], name[600];
	size_t i;
	int rc = 0;

	rc = plan_name(name, sizeof(name), ic, platform, err);
	if (rc < 0)
		return rc;
	*out = te_plan_image_find(plan, name);
	if (*out)
		return 0;
	if (!platform && ic->platforms.count > 1)
		rc = te_error_set(err, TE_EUNSUPPORTED,
		                  "%s:%d: image \"%s\": is built for %zu "
		                  "platforms: name one",
		                  env->file, ic->line, ic->name,
		                  ic->platforms.count);
	if (rc == 0)
		rc = check_runnable(ic, built, env, err);
	if (rc == 0)
		rc = allowed_keys(ic, env, err);
	if (rc == 0)
		rc = fetch_remotes(ic, env, err);
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
	/* fromImage enters `from`; imports and dependencies the stage where
	 * they land (werf's stage table: dependencies<When><Stage> depends
	 * on the imported images' digests) */
	if (rc == 0 && base)
		rc = te_plan_add_dependency(pi, base, err);
	if (rc == 0) {
		struct stages_ctx c = {pi,
		                       images,
		                       n,
		                       ic,
		                       built,
		                       s->from_latest ? from_digest : NULL,
		                       base,
		                       (const te_plan_image *const *)imports,
		                       (const te_plan_image *const *)deps,
		                       env};
		rc = add_stages(by_kind, &c, err);
	}
	for (i = 0; rc == 0 && i < s->nimports; i++)
		if (imports[i])
			rc = add_import_dependency(
			    by_kind[deps_stage[s->imports[i].when]], imports[i],
			    &s->imports[i], ic->name, env, err);
	for (i = 0; rc == 0 && i < s->ndeps; i++)
		rc = te_plan_add_dependency_at(
		    by_kind[deps_stage[s->deps[i].when]], deps[i], err);
	if (rc == 0)
		*out = pi;
	free(imports);
	free(deps);
	return rc;
}
