/*
 * gitsrc.c - read a project from a git commit with libgit2.
 *
 * Invariants:
 * 1. Nothing is read from the working tree; every byte comes from the
 *    object database of the commit asked for.
 * 2. Caller paths are project-relative and are cleaned here: empty and "."
 *    components dropped, absolute paths and ".." components rejected.  The
 *    project prefix (the --dir relative to the work tree) is prepended.
 * 3. Tree entry names are checked before use ("", ".", ".." and names
 *    holding '/' or NUL are refused), so materialize can hand them to
 *    *at() calls as single components.
 * 4. materialize never follows a symlink: parents are opened with
 *    O_NOFOLLOW|O_DIRECTORY relative to the destination's fd, files are
 *    created with O_CREAT|O_EXCL|O_NOFOLLOW.
 * 5. A symlink is materialized only when it resolves inside the root the
 *    way the kernel would resolve it (path_resolution(7)): through the
 *    other symlinks of the context, at most TE_GITSRC_MAX_HOPS of them,
 *    never climbing above the root at any step and never absolute.  A
 *    kept link that does not is an error naming the link and the step
 *    that leaves; links nobody keeps are ignored.  Dangling links are
 *    fine: they lead nowhere.
 * 6. The size of every blob is known from its object header before it is
 *    read: nothing larger than the caller's bound is ever inflated into
 *    memory.  Files above stream_min are written by a `git cat-file blob`
 *    child straight into their file descriptor, because libgit2 1.5 reads
 *    packed objects whole (git_odb_open_rstream streams loose objects
 *    only, see git2/odb.h), while git streams undeltified blobs
 *    (git-cat-file(1), core.bigFileThreshold in git-config(1)).
 * 7. Limits (max file size, max context size) are checked over every kept
 *    file before the first byte is written.
 */
#include "tagexport/gitsrc.h"
#include "tagexport/fs.h"

#include "proc_int.h"

#include <errno.h>
#include <ctype.h>
#include <inttypes.h>
#include <stdarg.h>
#include <stdio.h>
#include <fcntl.h>
#include <limits.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <git2.h>

/* Deeper trees than this are refused rather than recursed into. */
#define TE_GITSRC_MAX_DEPTH 256
#define TE_GITSRC_PATH_MAX 4096
/* Longest symlink target read (PATH_MAX on Linux). */
#define TE_GITSRC_LINK_MAX 4096
/* Symlinks followed while resolving one link, as Linux's MAXSYMLINKS
 * (path_resolution(7)). */
#define TE_GITSRC_MAX_HOPS 40
/* What a `git cat-file` child may say on stderr before we stop reading. */
#define TE_GITSRC_GIT_STDERR_MAX 4096

struct te_gitsrc {
	git_repository *repo;
	char *prefix; /* project dir inside the work tree, "" or "a/b" */
};

/* Copy libgit2's message right away: it lives in thread-local storage
 * that the next libgit2 call may overwrite. */
static int git_fail(te_error *err, int gerr, const char *fmt, ...)
    TE_PRINTF(3, 4);

static int git_fail(te_error *err, int gerr, const char *fmt, ...)
{
	const git_error *e = git_error_last();
	char head[TE_ERROR_MSG_MAX];
	te_code code;
	va_list ap;

	switch (gerr) {
	case GIT_ENOTFOUND:
		code = TE_ENOTFOUND;
		break;
	case GIT_EAMBIGUOUS:
	case GIT_EINVALIDSPEC:
	case GIT_EINVALID:
	case GIT_EBAREREPO:
		code = TE_EINVALID;
		break;
	default:
		code = TE_ERROR;
		break;
	}
	va_start(ap, fmt);
	vsnprintf(head, sizeof(head), fmt, ap);
	va_end(ap);
	code = te_error_set(err, code, "%s: %s", head,
	                    e && e->message && *e->message ? e->message
	                                                   : "libgit2 error");
	git_error_clear();
	return code;
}

/* libgit2 maps packs in windows of 1 GiB, up to 8 GiB on 64-bit systems
 * (git_libgit2_opts GIT_OPT_SET_MWINDOW_*): every page of a pack that was
 * read stays in our resident set until its window is unmapped, so reading
 * a context of many files below stream_min would grow with the pack. */
#define TE_GITSRC_MWINDOW_SIZE ((size_t)4 << 20)
#define TE_GITSRC_MWINDOW_LIMIT ((size_t)16 << 20)

int te_gitsrc_global_init(te_error *err)
{
	int rc = git_libgit2_init();

	if (rc < 0)
		return git_fail(err, rc, "initializing libgit2");
	rc = git_libgit2_opts(GIT_OPT_SET_MWINDOW_SIZE, TE_GITSRC_MWINDOW_SIZE);
	if (rc == 0)
		rc = git_libgit2_opts(GIT_OPT_SET_MWINDOW_MAPPED_LIMIT,
		                      TE_GITSRC_MWINDOW_LIMIT);
	if (rc < 0)
		return git_fail(err, rc, "bounding libgit2's pack windows");
	return 0;
}

/*
 * Clean a project-relative path into out (no leading/trailing '/', no "."
 * components).  ".." and absolute paths are TE_EINVALID.
 */
static int clean_path(te_buf *out, const char *path, te_error *err)
{
	const char *p = path, *end;
	size_t n;

	if (!path)
		return 0;
	if (*path == '/')
		return te_error_set(err, TE_EINVALID,
		                    "path '%s' must be relative", path);
	while (*p) {
		end = strchr(p, '/');
		n = end ? (size_t)(end - p) : strlen(p);
		if (n == 2 && p[0] == '.' && p[1] == '.')
			return te_error_set(err, TE_EINVALID,
			                    "path '%s' must not contain '..'",
			                    path);
		if (n && !(n == 1 && p[0] == '.')) {
			if (out->len && te_buf_put(out, "/", 1, err) < 0)
				return err->code;
			if (te_buf_put(out, p, n, err) < 0)
				return err->code;
		}
		p += n;
		if (*p == '/')
			p++;
	}
	return 0;
}

/* prefix + cleaned path. */
static int full_path(te_buf *out, const te_gitsrc *src, const char *path,
                     te_error *err)
{
	te_buf rel = TE_BUF_INIT(TE_GITSRC_PATH_MAX);
	int rc;

	if ((rc = clean_path(&rel, path, err)) < 0)
		goto done;
	if ((rc = te_buf_puts(out, src->prefix, err)) < 0)
		goto done;
	if (out->len && rel.len && (rc = te_buf_put(out, "/", 1, err)) < 0)
		goto done;
	rc = te_buf_put(out, rel.ptr, rel.len, err);
done:
	te_buf_dispose(&rel);
	return rc;
}

static int project_prefix(char **out, git_repository *repo, const char *dir,
                          te_error *err)
{
	const char *workdir = git_repository_workdir(repo);
	char *rdir = NULL, *rwork = NULL;
	size_t wlen;
	int rc = 0;

	*out = NULL;
	if (!workdir) {
		*out = te_strdup("", err);
		return *out ? 0 : err->code;
	}
	rdir = realpath(dir, NULL);
	rwork = realpath(workdir, NULL);
	if (!rdir || !rwork) {
		rc = te_error_set_errno(err, TE_EIO, errno, "resolving '%s'",
		                        dir);
		goto done;
	}
	wlen = strlen(rwork);
	if (strncmp(rdir, rwork, wlen) == 0 &&
	    (rdir[wlen] == '\0' || rdir[wlen] == '/' ||
	     (wlen == 1 && rwork[0] == '/'))) {
		const char *rel = rdir + wlen;

		while (*rel == '/')
			rel++;
		/* Inside .git there is no project directory: use the root. */
		if (strcmp(rel, ".git") == 0 || strncmp(rel, ".git/", 5) == 0)
			rel = "";
		*out = te_strdup(rel, err);
	} else {
		*out = te_strdup("", err);
	}
	if (!*out)
		rc = err->code;
done:
	free(rdir);
	free(rwork);
	return rc;
}

int te_gitsrc_open(te_gitsrc **out, const char *dir, te_error *err)
{
	te_gitsrc *src;
	int rc;

	*out = NULL;
	if (!dir || !*dir)
		return te_error_set(err, TE_EINVALID, "empty repository dir");
	src = calloc(1, sizeof(*src));
	if (!src)
		return te_error_set(err, TE_ENOMEM, "out of memory");
	rc = git_repository_open_ext(&src->repo, dir, 0, NULL);
	if (rc < 0) {
		rc = git_fail(err, rc, "opening git repository at '%s'", dir);
		goto done;
	}
	if ((rc = project_prefix(&src->prefix, src->repo, dir, err)) < 0)
		goto done;
	*out = src;
	src = NULL;
done:
	te_gitsrc_free(src);
	return rc;
}

int te_gitsrc_open_root(te_gitsrc **out, const te_gitsrc *src, te_error *err)
{
	te_gitsrc *root;
	int rc;

	*out = NULL;
	root = calloc(1, sizeof(*root));
	if (!root)
		return te_error_set(err, TE_ENOMEM, "out of memory");
	rc =
	    git_repository_open_ext(&root->repo, git_repository_path(src->repo),
	                            GIT_REPOSITORY_OPEN_NO_SEARCH, NULL);
	if (rc < 0)
		rc = git_fail(err, rc, "opening git repository at '%s'",
		              git_repository_path(src->repo));
	else if (!(root->prefix = te_strdup("", err)))
		rc = TE_ENOMEM;
	if (rc < 0) {
		te_gitsrc_free(root);
		return rc;
	}
	*out = root;
	return 0;
}

void te_gitsrc_free(te_gitsrc *src)
{
	if (!src)
		return;
	git_repository_free(src->repo);
	free(src->prefix);
	free(src);
}

int te_gitsrc_tag_names(te_strvec *out, te_gitsrc *src, te_error *err)
{
	git_strarray names = {NULL, 0};
	size_t i;
	int rc;

	rc = git_tag_list(&names, src->repo);
	if (rc < 0)
		return git_fail(err, rc, "cannot list tags");
	for (i = 0; rc == 0 && i < names.count; i++)
		rc = te_strvec_push(out, names.strings[i], err);
	git_strarray_dispose(&names);
	return rc;
}

int te_gitsrc_resolve(char commit_out[41], char **tag_out, te_gitsrc *src,
                      const char *rev, te_error *err)
{
	git_object *obj = NULL, *commit = NULL;
	git_reference *ref = NULL;
	int rc;

	if (tag_out)
		*tag_out = NULL;
	if (!rev)
		rev = "HEAD";
	if (!*rev)
		return te_error_set(err, TE_EINVALID, "empty revision");
	rc = git_revparse_single(&obj, src->repo, rev);
	if (rc < 0) {
		rc = git_fail(err, rc, "revision '%s'", rev);
		goto done;
	}
	rc = git_object_peel(&commit, obj, GIT_OBJECT_COMMIT);
	if (rc < 0) {
		rc = git_fail(err, rc == GIT_ENOTFOUND ? GIT_EINVALID : rc,
		              "revision '%s' is not a commit", rev);
		goto done;
	}
	git_oid_tostr(commit_out, 41, git_object_id(commit));
	/* The same lookup rules revparse used: an exact ref name, then
	 * refs/<rev>, refs/tags/<rev>, refs/heads/<rev> ... */
	if (tag_out && git_reference_dwim(&ref, src->repo, rev) == 0 &&
	    git_reference_is_tag(ref)) {
		*tag_out = te_strdup(git_reference_shorthand(ref), err);
		if (!*tag_out) {
			rc = err->code;
			goto done;
		}
	}
	git_error_clear();
	rc = 0;
done:
	git_reference_free(ref);
	git_object_free(commit);
	git_object_free(obj);
	return rc;
}

/* The commit named by a full hex id (errors name it). */
static int commit_lookup(git_commit **out, te_gitsrc *src, const char *commit,
                         te_error *err)
{
	git_oid oid;
	int rc;

	if (!commit || strlen(commit) != GIT_OID_HEXSZ ||
	    git_oid_fromstr(&oid, commit) < 0)
		return te_error_set(err, TE_EINVALID,
		                    "'%s' is not a full commit id",
		                    commit ? commit : "(null)");
	rc = git_commit_lookup(out, src->repo, &oid);
	if (rc < 0)
		return git_fail(err, rc, "commit %s", commit);
	return 0;
}

static int commit_tree(git_tree **out, te_gitsrc *src, const char *commit,
                       te_error *err)
{
	git_commit *c = NULL;
	int rc;

	rc = commit_lookup(&c, src, commit, err);
	if (rc < 0)
		return rc;
	rc = git_commit_tree(out, c);
	if (rc < 0)
		rc = git_fail(err, rc, "tree of commit %s", commit);
	git_commit_free(c);
	return rc;
}

int te_gitsrc_commit_time(int64_t *unix_out, int *offset_out, te_gitsrc *src,
                          const char *commit, te_error *err)
{
	const git_signature *author;
	git_commit *c = NULL;
	int rc;

	rc = commit_lookup(&c, src, commit, err);
	if (rc < 0)
		return rc;
	author = git_commit_author(c);
	*unix_out = (int64_t)author->when.time;
	*offset_out = author->when.offset;
	git_commit_free(c);
	return 0;
}

/* The size of blob oid from its object header: nothing is inflated
 * (a packed object's header holds its size, see gitformat-pack(5)). */
static int blob_size(uint64_t *out, te_gitsrc *src, const git_oid *oid,
                     const char *what, te_error *err)
{
	git_odb *odb = NULL;
	git_object_t type;
	size_t size;
	int rc;

	rc = git_repository_odb(&odb, src->repo);
	if (rc < 0)
		return git_fail(err, rc, "object database");
	rc = git_odb_read_header(&size, &type, odb, oid);
	git_odb_free(odb);
	if (rc < 0)
		return git_fail(err, rc, "reading '%s'", what);
	if (type != GIT_OBJECT_BLOB)
		return te_error_set(err, TE_EINVALID, "'%s' is not a blob",
		                    what);
	*out = size;
	return 0;
}

/* Append blob oid to out, refusing before reading it when it would not
 * fit out->max. */
static int read_blob_bounded(te_buf *out, te_gitsrc *src, const git_oid *oid,
                             const char *what, te_error *err)
{
	git_blob *blob = NULL;
	uint64_t size;
	int rc;

	if ((rc = blob_size(&size, src, oid, what, err)) < 0)
		return rc;
	if (size > (uint64_t)(out->max - out->len))
		return te_error_set(err, TE_EINVALID,
		                    "'%s' exceeds the limit of %zu bytes", what,
		                    out->max);
	rc = git_blob_lookup(&blob, src->repo, oid);
	if (rc < 0)
		return git_fail(err, rc, "reading '%s'", what);
	rc = te_buf_put(out, git_blob_rawcontent(blob),
	                (size_t)git_blob_rawsize(blob), err);
	git_blob_free(blob);
	return rc;
}

int te_gitsrc_read_file(te_buf *out, te_gitsrc *src, const char *commit,
                        const char *path, te_error *err)
{
	te_buf full = TE_BUF_INIT(TE_GITSRC_PATH_MAX);
	git_tree *tree = NULL;
	git_tree_entry *entry = NULL;
	int rc;

	if ((rc = full_path(&full, src, path, err)) < 0)
		goto done;
	if (full.len == 0) {
		rc = te_error_set(err, TE_EINVALID, "'%s' is not a file", path);
		goto done;
	}
	if ((rc = commit_tree(&tree, src, commit, err)) < 0)
		goto done;
	rc = git_tree_entry_bypath(&entry, tree, full.ptr);
	if (rc == GIT_ENOTFOUND) {
		git_error_clear();
		rc = te_error_set(err, TE_ENOTFOUND, "no file '%s' in commit",
		                  path);
		goto done;
	} else if (rc < 0) {
		rc = git_fail(err, rc, "looking up '%s'", path);
		goto done;
	}
	switch (git_tree_entry_filemode(entry)) {
	case GIT_FILEMODE_BLOB:
	case GIT_FILEMODE_BLOB_EXECUTABLE:
		break;
	case GIT_FILEMODE_LINK:
		rc = te_error_set(err, TE_EINVALID, "'%s' is a symlink", path);
		goto done;
	default:
		rc = te_error_set(err, TE_EINVALID, "'%s' is not a file", path);
		goto done;
	}
	rc = read_blob_bounded(out, src, git_tree_entry_id(entry), path, err);
done:
	git_tree_entry_free(entry);
	git_tree_free(tree);
	te_buf_dispose(&full);
	return rc;
}

int te_gitsrc_read_blob(te_buf *out, te_gitsrc *src, const char *oid,
                        te_error *err)
{
	git_oid id;

	if (!oid || strlen(oid) != GIT_OID_HEXSZ ||
	    git_oid_fromstr(&id, oid) < 0)
		return te_error_set(err, TE_EINVALID, "'%s' is not a blob id",
		                    oid ? oid : "(null)");
	return read_blob_bounded(out, src, &id, oid, err);
}

/* Tree of project-relative dir (TE_ENOTFOUND when missing or not a dir). */
static int dir_tree(git_tree **out, te_gitsrc *src, const char *commit,
                    const char *dir, te_error *err)
{
	te_buf full = TE_BUF_INIT(TE_GITSRC_PATH_MAX);
	git_tree *root = NULL;
	git_tree_entry *entry = NULL;
	int rc;

	*out = NULL;
	if ((rc = full_path(&full, src, dir, err)) < 0)
		goto done;
	if ((rc = commit_tree(&root, src, commit, err)) < 0)
		goto done;
	if (full.len == 0) {
		*out = root;
		root = NULL;
		goto done;
	}
	rc = git_tree_entry_bypath(&entry, root, full.ptr);
	if (rc == GIT_ENOTFOUND ||
	    (rc == 0 && git_tree_entry_type(entry) != GIT_OBJECT_TREE)) {
		git_error_clear();
		rc =
		    te_error_set(err, TE_ENOTFOUND,
		                 "no directory '%s' in commit", dir ? dir : "");
		goto done;
	} else if (rc < 0) {
		rc = git_fail(err, rc, "looking up '%s'", dir);
		goto done;
	}
	rc = git_tree_lookup(out, src->repo, git_tree_entry_id(entry));
	if (rc < 0)
		rc = git_fail(err, rc, "reading tree '%s'", dir);
done:
	git_tree_entry_free(entry);
	git_tree_free(root);
	te_buf_dispose(&full);
	return rc;
}

static bool valid_entry_name(const char *name)
{
	if (!*name || strcmp(name, ".") == 0 || strcmp(name, "..") == 0)
		return false;
	return strchr(name, '/') == NULL;
}

struct walk_state {
	te_gitsrc *src;
	te_gitsrc_walk_fn fn;
	void *payload;
	te_buf path;
	te_error *err;
};

static int walk_tree(struct walk_state *ws, const git_tree *tree, int depth)
{
	size_t i, n = git_tree_entrycount(tree);
	size_t base = ws->path.len;
	char oid[GIT_OID_HEXSZ + 1];
	int rc = 0;

	if (depth > TE_GITSRC_MAX_DEPTH)
		return te_error_set(ws->err, TE_EINVALID,
		                    "tree deeper than %d levels at '%s'",
		                    TE_GITSRC_MAX_DEPTH, ws->path.ptr);
	for (i = 0; i < n && rc == 0; i++) {
		const git_tree_entry *e = git_tree_entry_byindex(tree, i);
		const char *name = git_tree_entry_name(e);
		git_filemode_t mode = git_tree_entry_filemode(e);
		te_gitsrc_entry ent;

		if (!valid_entry_name(name))
			return te_error_set(ws->err, TE_EINVALID,
			                    "invalid tree entry name under "
			                    "'%s'",
			                    ws->path.ptr);
		if (mode == GIT_FILEMODE_COMMIT)
			continue; /* submodule: not part of this repo */
		ws->path.len = base;
		ws->path.ptr[base] = '\0';
		if (base && (rc = te_buf_put(&ws->path, "/", 1, ws->err)) < 0)
			break;
		if ((rc = te_buf_puts(&ws->path, name, ws->err)) < 0)
			break;
		if (mode == GIT_FILEMODE_TREE) {
			git_tree *sub = NULL;

			rc = git_tree_lookup(&sub, git_tree_owner(tree),
			                     git_tree_entry_id(e));
			if (rc < 0)
				return git_fail(ws->err, rc,
				                "reading tree '%s'",
				                ws->path.ptr);
			rc = walk_tree(ws, sub, depth + 1);
			git_tree_free(sub);
			continue;
		}
		git_oid_tostr(oid, sizeof(oid), git_tree_entry_id(e));
		ent.path = ws->path.ptr;
		ent.oid = oid;
		ent.mode = mode == GIT_FILEMODE_LINK              ? 0120000u
		           : mode == GIT_FILEMODE_BLOB_EXECUTABLE ? 0100755u
		                                                  : 0100644u;
		rc = ws->fn(&ent, ws->payload);
		if (rc < 0 && ws->err->code == TE_OK)
			te_error_set(ws->err, rc, "walk stopped at '%s'",
			             ws->path.ptr);
	}
	ws->path.len = base;
	ws->path.ptr[base] = '\0';
	return rc;
}

int te_gitsrc_walk(te_gitsrc *src, const char *commit, const char *dir,
                   te_gitsrc_walk_fn fn, void *payload, te_error *err)
{
	struct walk_state ws = {src, fn, payload, TE_BUF_INIT(65536), err};
	git_tree *tree = NULL;
	int rc;

	if ((rc = dir_tree(&tree, src, commit, dir, err)) < 0)
		goto done;
	/* Make path.ptr writable from the start. */
	if ((rc = te_buf_put(&ws.path, "x", 1, err)) < 0)
		goto done;
	te_buf_clear(&ws.path);
	rc = walk_tree(&ws, tree, 0);
done:
	git_tree_free(tree);
	te_buf_dispose(&ws.path);
	return rc;
}

/* ---- the context: its entries, sizes, limits and symlinks ------------ */

/* One blob or symlink of the walked directory. */
struct ctx_ent {
	char *path;
	git_oid oid;
	unsigned int mode;
	bool keep;
	uint64_t size; /* kept regular files only */
};

/* Every entry of the context sorted by strcmp(path), kept or not: links
 * resolve through entries nobody keeps too (a conservative superset of
 * what gets materialized). */
struct ctx_index {
	struct ctx_ent *items;
	size_t count, cap;
	te_gitsrc_keep_fn keep;
	void *payload;
	te_error *err;
};

static int index_add(const te_gitsrc_entry *ent, void *payload)
{
	struct ctx_index *ix = payload;
	struct ctx_ent *e;

	if (ix->count == ix->cap) {
		size_t cap = ix->cap ? ix->cap * 2 : 64;
		struct ctx_ent *p = realloc(ix->items, cap * sizeof(*p));

		if (!p)
			return te_error_set(ix->err, TE_ENOMEM,
			                    "out of memory");
		ix->items = p;
		ix->cap = cap;
	}
	e = &ix->items[ix->count];
	memset(e, 0, sizeof(*e));
	if (git_oid_fromstr(&e->oid, ent->oid) < 0)
		return te_error_set(ix->err, TE_EINVALID, "bad blob id");
	e->path = te_strdup(ent->path, ix->err);
	if (!e->path)
		return ix->err->code;
	e->mode = ent->mode;
	e->keep = !ix->keep || ix->keep(ent->path, ix->payload);
	ix->count++;
	return 0;
}

static int ent_cmp(const void *a, const void *b)
{
	return strcmp(((const struct ctx_ent *)a)->path,
	              ((const struct ctx_ent *)b)->path);
}

static void index_dispose(struct ctx_index *ix)
{
	size_t i;

	for (i = 0; i < ix->count; i++)
		free(ix->items[i].path);
	free(ix->items);
	ix->items = NULL;
	ix->count = ix->cap = 0;
}

static int index_build(struct ctx_index *ix, te_gitsrc *src, const char *commit,
                       const char *dir, te_error *err)
{
	int rc = te_gitsrc_walk(src, commit, dir, index_add, ix, err);

	if (rc == 0)
		qsort(ix->items, ix->count, sizeof(*ix->items), ent_cmp);
	return rc;
}

/* strcmp(path, key + "/"), without building that string. */
static int cmp_under(const char *path, const char *key, size_t klen)
{
	int c = strncmp(path, key, klen);

	if (c)
		return c;
	if (path[klen] != '/')
		return (unsigned char)path[klen] - '/';
	return path[klen + 1] ? 1 : 0;
}

enum node { NODE_NONE, NODE_DIR, NODE_FILE, NODE_LINK };

/* What path (no leading or trailing '/', "" = root) is in the context;
 * *ent gets the entry of a file or link. */
static enum node index_lookup(const struct ctx_index *ix, const char *path,
                              const struct ctx_ent **ent)
{
	size_t lo = 0, hi = ix->count, mid, klen = strlen(path);

	if (!klen)
		return NODE_DIR;
	while (lo < hi) {
		mid = lo + (hi - lo) / 2;
		if (strcmp(ix->items[mid].path, path) < 0)
			lo = mid + 1;
		else
			hi = mid;
	}
	if (lo < ix->count && strcmp(ix->items[lo].path, path) == 0) {
		*ent = &ix->items[lo];
		return ix->items[lo].mode == 0120000u ? NODE_LINK : NODE_FILE;
	}
	/* A directory exists when some entry lies under it. */
	hi = ix->count;
	while (lo < hi) {
		mid = lo + (hi - lo) / 2;
		if (cmp_under(ix->items[mid].path, path, klen) < 0)
			lo = mid + 1;
		else
			hi = mid;
	}
	if (lo < ix->count && strncmp(ix->items[lo].path, path, klen) == 0 &&
	    ix->items[lo].path[klen] == '/')
		return NODE_DIR;
	return NODE_NONE;
}

/* The target of link e, bounded, NUL-free and not empty. */
static int link_target(te_buf *out, te_gitsrc *src, const struct ctx_ent *e,
                       te_error *err)
{
	int rc;

	te_buf_clear(out);
	rc = read_blob_bounded(out, src, &e->oid, e->path, err);
	if (rc < 0)
		return te_error_wrap(err, "symlink '%s'", e->path);
	if (out->len == 0 || memchr(out->ptr, '\0', out->len))
		return te_error_set(err, TE_EINVALID,
		                    "symlink '%s' has an empty target or one "
		                    "holding a NUL byte",
		                    e->path);
	return 0;
}

/* Drop the last component of a path ("a/b" -> "a", "a" -> ""). */
static void path_up(te_buf *p)
{
	char *slash = strrchr(p->ptr, '/');

	p->len = slash ? (size_t)(slash - p->ptr) : 0;
	p->ptr[p->len] = '\0';
}

struct resolve {
	te_buf cur;    /* directory reached so far, resolved */
	te_buf rest;   /* what is left to walk */
	te_buf target; /* target of via */
	te_buf tmp;
	const struct ctx_ent *via; /* the link being followed */
};

/* Follow via (reached while resolving link): continue with its target,
 * then what is left of rest after pos.  An absolute target leaves. */
static int resolve_enter(struct resolve *r, const struct ctx_ent *link,
                         const struct ctx_ent *via, size_t pos, te_gitsrc *src,
                         te_error *err)
{
	int rc;

	r->via = via;
	if ((rc = link_target(&r->target, src, via, err)) < 0)
		return rc;
	if (r->target.ptr[0] == '/')
		return te_error_set(err, TE_EINVALID,
		                    "symlink '%s' leads outside the build "
		                    "context: '%s' -> '%s' is absolute",
		                    link->path, via->path, r->target.ptr);
	te_buf_clear(&r->tmp);
	rc = te_buf_put(&r->tmp, r->target.ptr, r->target.len, err);
	if (rc == 0 && pos < r->rest.len)
		rc = te_buf_printf(&r->tmp, err, "/%s", r->rest.ptr + pos);
	if (rc < 0)
		return rc;
	te_buf_clear(&r->rest);
	return te_buf_put(&r->rest, r->tmp.ptr, r->tmp.len, err);
}

/*
 * Resolve link as path_resolution(7) does, against the context: 0 when
 * it ends inside the root (or dangles: a missing component or a file
 * used as a directory ends the walk inside), TE_EINVALID naming the link
 * and the step that is absolute or climbs above the root.
 */
static int check_link(struct resolve *r, const struct ctx_index *ix,
                      te_gitsrc *src, const struct ctx_ent *link, te_error *err)
{
	const struct ctx_ent *e = NULL;
	size_t pos = 0, n;
	int hops = 1, rc;

	te_buf_clear(&r->cur);
	te_buf_clear(&r->rest);
	if ((rc = te_buf_puts(&r->cur, link->path, err)) < 0)
		return rc;
	path_up(&r->cur);
	if ((rc = resolve_enter(r, link, link, 0, src, err)) < 0)
		return rc;
	for (;;) {
		while (pos < r->rest.len && r->rest.ptr[pos] == '/')
			pos++;
		if (pos >= r->rest.len)
			return 0;
		n = strcspn(r->rest.ptr + pos, "/");
		if (n == 1 && r->rest.ptr[pos] == '.') {
			pos += n;
			continue;
		}
		if (n == 2 && r->rest.ptr[pos] == '.' &&
		    r->rest.ptr[pos + 1] == '.') {
			if (r->cur.len == 0)
				return te_error_set(
				    err, TE_EINVALID,
				    "symlink '%s' leads outside the build "
				    "context: '%s' -> '%s' climbs above its "
				    "root",
				    link->path, r->via->path, r->target.ptr);
			path_up(&r->cur);
			pos += n;
			continue;
		}
		if ((r->cur.len &&
		     (rc = te_buf_put(&r->cur, "/", 1, err)) < 0) ||
		    (rc = te_buf_put(&r->cur, r->rest.ptr + pos, n, err)) < 0)
			return rc;
		pos += n;
		switch (index_lookup(ix, r->cur.ptr, &e)) {
		case NODE_DIR:
			continue;
		case NODE_NONE:
		case NODE_FILE:
			return 0; /* dangles, or ENOTDIR: leads nowhere */
		case NODE_LINK:
			break;
		}
		if (++hops > TE_GITSRC_MAX_HOPS)
			return te_error_set(err, TE_EINVALID,
			                    "symlink '%s' does not resolve: "
			                    "more than %d symlinks in a row "
			                    "(a loop, or a chain too long)",
			                    link->path, TE_GITSRC_MAX_HOPS);
		path_up(&r->cur);
		if ((rc = resolve_enter(r, link, e, pos, src, err)) < 0)
			return rc;
		pos = 0;
	}
}

static uint64_t limit_or(uint64_t v, uint64_t dflt)
{
	return v ? v : dflt;
}

/* Sizes of the kept files against the limits, then every kept link. */
static int index_check(uint64_t *total_out, struct ctx_index *ix,
                       te_gitsrc *src, const te_gitsrc_limits *lim,
                       te_error *err)
{
	const te_gitsrc_limits none = {0};
	struct resolve r = {TE_BUF_INIT(65536), TE_BUF_INIT(262144),
	                    TE_BUF_INIT(TE_GITSRC_LINK_MAX),
	                    TE_BUF_INIT(262144), NULL};
	uint64_t max_file, max_ctx, total = 0;
	size_t i;
	int rc = 0;

	if (!lim)
		lim = &none;
	max_file = limit_or(lim->max_file_size, TE_GITSRC_MAX_FILE_SIZE);
	max_ctx = limit_or(lim->max_context_size, TE_GITSRC_MAX_CONTEXT_SIZE);
	for (i = 0; i < ix->count; i++) {
		struct ctx_ent *e = &ix->items[i];

		if (!e->keep || e->mode == 0120000u)
			continue;
		if ((rc = blob_size(&e->size, src, &e->oid, e->path, err)) < 0)
			goto done;
		if (e->size > max_file) {
			rc = te_error_set(err, TE_EINVALID,
			                  "context file '%s' is %" PRIu64
			                  " bytes, over the max file size of "
			                  "%" PRIu64 " bytes",
			                  e->path, e->size, max_file);
			goto done;
		}
		total =
		    e->size > UINT64_MAX - total ? UINT64_MAX : total + e->size;
	}
	if (total > max_ctx) {
		rc = te_error_set(
		    err, TE_EINVALID,
		    "build context is %" PRIu64
		    " bytes, over the max context size of %" PRIu64 " bytes",
		    total, max_ctx);
		goto done;
	}
	for (i = 0; i < ix->count && rc == 0; i++)
		if (ix->items[i].keep && ix->items[i].mode == 0120000u)
			rc = check_link(&r, ix, src, &ix->items[i], err);
	if (rc == 0 && total_out)
		*total_out = total;
done:
	te_buf_dispose(&r.cur);
	te_buf_dispose(&r.rest);
	te_buf_dispose(&r.target);
	te_buf_dispose(&r.tmp);
	return rc;
}

int te_gitsrc_check(uint64_t *total_out, te_gitsrc *src, const char *commit,
                    const char *dir, te_gitsrc_keep_fn keep, void *payload,
                    const te_gitsrc_limits *lim, te_error *err)
{
	struct ctx_index ix = {NULL, 0, 0, keep, payload, err};
	int rc;

	if (total_out)
		*total_out = 0;
	rc = index_build(&ix, src, commit, dir, err);
	if (rc == 0)
		rc = index_check(total_out, &ix, src, lim, err);
	index_dispose(&ix);
	return rc;
}

/* ---- materialize --------------------------------------------------------- */

struct mat_state {
	te_gitsrc *src;
	int rootfd;
	int dirfd;      /* fd of cached parent directory, or -1 */
	te_buf dirpath; /* the path dirfd refers to */
	uint64_t stream_min;
	te_error *err;
};

/* Open (creating as needed) the parent directory of path, never
 * following symlinks.  Caches the last one. */
static int open_parent(struct mat_state *ms, const char *path, size_t plen)
{
	char comp[NAME_MAX + 1];
	const char *p = path, *end = path + plen;
	int fd, next;

	if (ms->dirfd >= 0 && ms->dirpath.len == plen &&
	    memcmp(ms->dirpath.ptr, path, plen) == 0)
		return 0;
	if (ms->dirfd >= 0 && ms->dirfd != ms->rootfd)
		close(ms->dirfd);
	ms->dirfd = -1;
	te_buf_clear(&ms->dirpath);
	fd = ms->rootfd;
	while (p < end) {
		const char *slash = memchr(p, '/', (size_t)(end - p));
		size_t n = slash ? (size_t)(slash - p) : (size_t)(end - p);

		if (n > NAME_MAX) {
			if (fd != ms->rootfd)
				close(fd);
			return te_error_set(ms->err, TE_EINVALID,
			                    "path component too long in '%s'",
			                    path);
		}
		memcpy(comp, p, n);
		comp[n] = '\0';
		if (mkdirat(fd, comp, 0755) < 0 && errno != EEXIST) {
			int e = errno;

			if (fd != ms->rootfd)
				close(fd);
			return te_error_set_errno(ms->err, TE_EIO, e,
			                          "creating directory for '%s'",
			                          path);
		}
		next = openat(fd, comp,
		              O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
		if (fd != ms->rootfd)
			close(fd);
		if (next < 0)
			return te_error_set_errno(ms->err, TE_EIO, errno,
			                          "opening directory for '%s'",
			                          path);
		fd = next;
		p += n + 1;
	}
	ms->dirfd = fd;
	return te_buf_put(&ms->dirpath, path, plen, ms->err);
}

/* One line of what git said, for an error message. */
static void one_line(te_buf *msg)
{
	size_t i;

	for (i = 0; i < msg->len; i++)
		if (msg->ptr[i] == '\n' || msg->ptr[i] == '\r' ||
		    msg->ptr[i] == '\t')
			msg->ptr[i] = ' ';
	while (msg->len && msg->ptr[msg->len - 1] == ' ')
		msg->ptr[--msg->len] = '\0';
}

/*
 * Have `git cat-file blob` write e's blob straight into fd: tagexport
 * never holds the bytes.  The child gets a fixed environment (no GIT_DIR
 * or GIT_OBJECT_DIRECTORY a hook may have set: libgit2 ignores them too)
 * and --no-replace-objects (libgit2 does not honour refs/replace either),
 * so both read the same object.  git streams a packed blob only when it
 * is not a delta and above core.bigFileThreshold (512 MiB by default), so
 * that is lowered to stream_min; small pack windows keep the child's
 * mapped pack pages bounded too (git-config(1), core.packedGit*).
 */
static int stream_blob(struct mat_state *ms, const struct ctx_ent *e, int fd)
{
	static char env_lc[] = "LC_ALL=C";
	static char env_nosystem[] = "GIT_CONFIG_NOSYSTEM=1";
	char *const envp[] = {env_lc, env_nosystem, NULL};
	char git[] = "git", noreplace[] = "--no-replace-objects", c[] = "-c";
	char catfile[] = "cat-file", blob[] = "blob";
	char window[] = "core.packedGitWindowSize=4m";
	char window_limit[] = "core.packedGitLimit=16m";
	char hex[GIT_OID_HEXSZ + 1];
	te_buf gitdir = TE_BUF_INIT(TE_GITSRC_PATH_MAX + 16);
	te_buf threshold = TE_BUF_INIT(64);
	te_buf msg = TE_BUF_INIT(TE_GITSRC_GIT_STDERR_MAX);
	struct te_proc_opts po = TE_PROC_OPTS_INIT;
	te_error ignored = TE_ERROR_INIT;
	int errp[2] = {-1, -1}, status = 0, rc;
	bool too_big = false;
	pid_t pid = -1;
	struct stat st;

	git_oid_tostr(hex, sizeof(hex), &e->oid);
	rc = te_buf_printf(&gitdir, ms->err, "--git-dir=%s",
	                   git_repository_path(ms->src->repo));
	if (rc == 0)
		rc = te_buf_printf(&threshold, ms->err,
		                   "core.bigFileThreshold=%" PRIu64,
		                   ms->stream_min);
	if (rc < 0)
		goto done;
	if (pipe2(errp, O_CLOEXEC) < 0) {
		rc = te_error_set_errno(ms->err, TE_EIO, errno, "pipe");
		goto done;
	}
	{
		char *const argv[] = {git,           gitdir.ptr, noreplace, c,
		                      threshold.ptr, c,          window,    c,
		                      window_limit,  catfile,    blob,      hex,
		                      NULL};

		po.argv = argv;
		po.envp = envp;
		po.stdout_fd = fd;
		po.stderr_fd = errp[1];
		po.new_pgrp = true;
		rc = te_proc_spawn(&pid, &po, ms->err);
	}
	if (rc < 0)
		goto done;
	close(errp[1]);
	errp[1] = -1;
	if (te_fs_read_all(&msg, errp[0], &too_big) < 0 || too_big)
		te_proc_kill(pid);
	rc = te_proc_wait(&status, pid, -1, ms->err);
	pid = -1;
	if (rc < 0)
		goto done;
	one_line(&msg);
	if (!WIFEXITED(status) || WEXITSTATUS(status) != 0) {
		rc = te_error_set(
		    ms->err, TE_EIO, "git cat-file blob %s for '%s' failed: %s",
		    hex, e->path, msg.len ? msg.ptr : "no message");
		goto done;
	}
	if (fstat(fd, &st) < 0 || (uint64_t)st.st_size != e->size) {
		rc = te_error_set(ms->err, TE_EIO,
		                  "git cat-file blob %s wrote %lld bytes of "
		                  "'%s', expected %" PRIu64,
		                  hex, (long long)st.st_size, e->path, e->size);
		goto done;
	}
done:
	if (pid > 0) {
		te_proc_kill(pid);
		(void)te_proc_wait(&status, pid, -1, &ignored);
	}
	if (errp[0] >= 0)
		close(errp[0]);
	if (errp[1] >= 0)
		close(errp[1]);
	te_buf_dispose(&gitdir);
	te_buf_dispose(&threshold);
	te_buf_dispose(&msg);
	return rc;
}

/* Small blobs in process: libgit2 reads them whole, at most stream_min. */
static int write_small_blob(struct mat_state *ms, const struct ctx_ent *e,
                            int fd)
{
	git_blob *blob = NULL;
	int rc;

	rc = git_blob_lookup(&blob, ms->src->repo, &e->oid);
	if (rc < 0)
		return git_fail(ms->err, rc, "reading '%s'", e->path);
	if (te_fs_write_all(fd, git_blob_rawcontent(blob),
	                    (size_t)git_blob_rawsize(blob)) < 0)
		rc = te_error_set_errno(ms->err, TE_EIO, errno, "writing '%s'",
		                        e->path);
	git_blob_free(blob);
	return rc;
}

static int write_link(struct mat_state *ms, const struct ctx_ent *e,
                      const char *name)
{
	te_buf target = TE_BUF_INIT(TE_GITSRC_LINK_MAX);
	int rc;

	rc = link_target(&target, ms->src, e, ms->err);
	if (rc == 0 && symlinkat(target.ptr, ms->dirfd, name) < 0)
		rc = te_error_set_errno(ms->err, TE_EIO, errno,
		                        "creating symlink '%s'", e->path);
	te_buf_dispose(&target);
	return rc;
}

static int materialize_one(struct mat_state *ms, const struct ctx_ent *e)
{
	const char *slash = strrchr(e->path, '/');
	const char *name = slash ? slash + 1 : e->path;
	size_t plen = slash ? (size_t)(slash - e->path) : 0;
	int fd = -1, rc;

	if ((rc = open_parent(ms, e->path, plen)) < 0)
		return rc;
	if (e->mode == 0120000u)
		return write_link(ms, e, name);
	fd = openat(ms->dirfd, name,
	            O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0600);
	if (fd < 0)
		return te_error_set_errno(ms->err, TE_EIO, errno,
		                          "creating '%s'", e->path);
	rc = e->size > ms->stream_min ? stream_blob(ms, e, fd)
	                              : write_small_blob(ms, e, fd);
	if (rc == 0 && fchmod(fd, e->mode == 0100755u ? 0755 : 0644) < 0)
		rc = te_error_set_errno(ms->err, TE_EIO, errno, "writing '%s'",
		                        e->path);
	if (close(fd) < 0 && rc == 0)
		rc = te_error_set_errno(ms->err, TE_EIO, errno, "writing '%s'",
		                        e->path);
	return rc;
}

int te_gitsrc_materialize(te_gitsrc *src, const char *commit, const char *dir,
                          const char *dest, te_gitsrc_keep_fn keep,
                          void *payload, const te_gitsrc_limits *lim,
                          te_error *err)
{
	struct ctx_index ix = {NULL, 0, 0, keep, payload, err};
	struct mat_state ms = {.src = src,
	                       .rootfd = -1,
	                       .dirfd = -1,
	                       .dirpath = TE_BUF_INIT(TE_GITSRC_PATH_MAX),
	                       .stream_min = TE_GITSRC_STREAM_MIN,
	                       .err = err};
	size_t i;
	int rc;

	if (lim && lim->stream_min)
		ms.stream_min = lim->stream_min;
	/* Everything is checked before the first byte is written. */
	rc = index_build(&ix, src, commit, dir, err);
	if (rc == 0)
		rc = index_check(NULL, &ix, src, lim, err);
	if (rc < 0)
		goto done;
	ms.rootfd = open(dest, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
	if (ms.rootfd < 0) {
		rc = te_error_set_errno(err, TE_EIO, errno, "opening '%s'",
		                        dest);
		goto done;
	}
	for (i = 0; i < ix.count && rc == 0; i++)
		if (ix.items[i].keep)
			rc = materialize_one(&ms, &ix.items[i]);
done:
	if (ms.dirfd >= 0 && ms.dirfd != ms.rootfd)
		close(ms.dirfd);
	if (ms.rootfd >= 0)
		close(ms.rootfd);
	te_buf_dispose(&ms.dirpath);
	index_dispose(&ix);
	return rc;
}

/* ---- sizes --------------------------------------------------------------- */

int te_gitsrc_size_parse(uint64_t *out, const char *text, te_error *err)
{
	static const struct {
		const char *name;
		unsigned shift;
	} units[] = {{"", 0},     {"B", 0},    {"KiB", 10},
	             {"MiB", 20}, {"GiB", 30}, {"TiB", 40}};
	const char *p = text;
	uint64_t v = 0;
	size_t i;

	*out = 0;
	if (!text || !isdigit((unsigned char)*p))
		goto bad;
	for (; isdigit((unsigned char)*p); p++) {
		if (v > (UINT64_MAX - 9) / 10)
			goto bad;
		v = v * 10 + (uint64_t)(*p - '0');
	}
	for (i = 0; i < sizeof(units) / sizeof(units[0]); i++) {
		if (strcmp(p, units[i].name) != 0)
			continue;
		if (v == 0 || v > (UINT64_MAX >> units[i].shift))
			goto bad;
		*out = v << units[i].shift;
		return 0;
	}
bad:
	return te_error_set(err, TE_EINVALID,
	                    "invalid size \"%.64s\": a positive number of "
	                    "bytes, optionally followed by B, KiB, MiB, GiB or "
	                    "TiB",
	                    text ? text : "");
}
