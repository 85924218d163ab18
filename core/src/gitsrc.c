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
 *    created with O_CREAT|O_EXCL|O_NOFOLLOW, and symlinks whose target is
 *    absolute or climbs above the materialized root are not created.
 */
#include "tagexport/gitsrc.h"
#include "tagexport/fs.h"

#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <fcntl.h>
#include <limits.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <git2.h>

/* Deeper trees than this are refused rather than recursed into. */
#define TE_GITSRC_MAX_DEPTH 256
#define TE_GITSRC_PATH_MAX 4096

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

int te_gitsrc_global_init(te_error *err)
{
	int rc = git_libgit2_init();

	if (rc < 0)
		return git_fail(err, rc, "initializing libgit2");
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

static int commit_tree(git_tree **out, te_gitsrc *src, const char *commit,
                       te_error *err)
{
	git_commit *c = NULL;
	git_oid oid;
	int rc;

	if (!commit || strlen(commit) != GIT_OID_HEXSZ ||
	    git_oid_fromstr(&oid, commit) < 0)
		return te_error_set(err, TE_EINVALID,
		                    "'%s' is not a full commit id",
		                    commit ? commit : "(null)");
	rc = git_commit_lookup(&c, src->repo, &oid);
	if (rc < 0)
		return git_fail(err, rc, "commit %s", commit);
	rc = git_commit_tree(out, c);
	if (rc < 0)
		rc = git_fail(err, rc, "tree of commit %s", commit);
	git_commit_free(c);
	return rc;
}

int te_gitsrc_read_file(te_buf *out, te_gitsrc *src, const char *commit,
                        const char *path, te_error *err)
{
	te_buf full = TE_BUF_INIT(TE_GITSRC_PATH_MAX);
	git_tree *tree = NULL;
	git_tree_entry *entry = NULL;
	git_blob *blob = NULL;
	git_object_size_t size;
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
	rc = git_blob_lookup(&blob, src->repo, git_tree_entry_id(entry));
	if (rc < 0) {
		rc = git_fail(err, rc, "reading '%s'", path);
		goto done;
	}
	size = git_blob_rawsize(blob);
	if (size > (git_object_size_t)(out->max - out->len)) {
		rc = te_error_set(err, TE_EINVALID,
		                  "'%s' exceeds the limit of %zu bytes", path,
		                  out->max);
		goto done;
	}
	rc = te_buf_put(out, git_blob_rawcontent(blob), (size_t)size, err);
done:
	git_blob_free(blob);
	git_tree_entry_free(entry);
	git_tree_free(tree);
	te_buf_dispose(&full);
	return rc;
}

int te_gitsrc_read_blob(te_buf *out, te_gitsrc *src, const char *oid,
                        te_error *err)
{
	git_blob *blob = NULL;
	git_object_size_t size;
	git_oid id;
	int rc;

	if (!oid || strlen(oid) != GIT_OID_HEXSZ ||
	    git_oid_fromstr(&id, oid) < 0)
		return te_error_set(err, TE_EINVALID, "'%s' is not a blob id",
		                    oid ? oid : "(null)");
	rc = git_blob_lookup(&blob, src->repo, &id);
	if (rc < 0)
		return git_fail(err, rc, "blob %s", oid);
	size = git_blob_rawsize(blob);
	if (size > (git_object_size_t)(out->max - out->len))
		rc = te_error_set(err, TE_EINVALID,
		                  "blob %s exceeds the limit of %zu bytes", oid,
		                  out->max);
	else
		rc = te_buf_put(out, git_blob_rawcontent(blob), (size_t)size,
		                err);
	git_blob_free(blob);
	return rc;
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

/*
 * May a symlink at path (relative to the materialized root) point at
 * target without leaving the root?  Lexical check: absolute targets and
 * any prefix that climbs above the root are refused.
 */
static bool link_stays_inside(const char *path, const char *target, size_t tlen)
{
	const char *p;
	long depth = 0;
	size_t i = 0, n;

	if (tlen == 0 || target[0] == '/' || memchr(target, '\0', tlen))
		return false;
	for (p = path; *p; p++)
		if (*p == '/')
			depth++;
	while (i < tlen) {
		n = 0;
		while (i + n < tlen && target[i + n] != '/')
			n++;
		if (n == 2 && target[i] == '.' && target[i + 1] == '.') {
			if (--depth < 0)
				return false;
		} else if (n && !(n == 1 && target[i] == '.')) {
			depth++;
		}
		i += n + 1;
	}
	return true;
}

struct mat_state {
	te_gitsrc *src;
	int rootfd;
	int dirfd;      /* fd of cached parent directory, or -1 */
	te_buf dirpath; /* the path dirfd refers to */
	te_gitsrc_keep_fn keep;
	void *payload;
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

static int materialize_one(const te_gitsrc_entry *ent, void *payload)
{
	struct mat_state *ms = payload;
	const char *slash, *name;
	git_blob *blob = NULL;
	const char *data;
	size_t plen, size;
	git_oid oid;
	int fd = -1, rc;

	if (ms->keep && !ms->keep(ent->path, ms->payload))
		return 0;
	slash = strrchr(ent->path, '/');
	plen = slash ? (size_t)(slash - ent->path) : 0;
	name = slash ? slash + 1 : ent->path;
	if (git_oid_fromstr(&oid, ent->oid) < 0)
		return te_error_set(ms->err, TE_EINVALID, "bad blob id");
	rc = git_blob_lookup(&blob, ms->src->repo, &oid);
	if (rc < 0)
		return git_fail(ms->err, rc, "reading '%s'", ent->path);
	data = git_blob_rawcontent(blob);
	size = (size_t)git_blob_rawsize(blob);
	if (ent->mode == 0120000u) {
		char *target = NULL;

		if (!link_stays_inside(ent->path, data, size))
			goto done; /* documented: escaping links are skipped */
		if ((rc = open_parent(ms, ent->path, plen)) < 0)
			goto done;
		target = malloc(size + 1);
		if (!target) {
			rc = te_error_set(ms->err, TE_ENOMEM, "out of memory");
			goto done;
		}
		memcpy(target, data, size);
		target[size] = '\0';
		if (symlinkat(target, ms->dirfd, name) < 0)
			rc = te_error_set_errno(ms->err, TE_EIO, errno,
			                        "creating symlink '%s'",
			                        ent->path);
		free(target);
		goto done;
	}
	if ((rc = open_parent(ms, ent->path, plen)) < 0)
		goto done;
	fd = openat(ms->dirfd, name,
	            O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0600);
	if (fd < 0) {
		rc = te_error_set_errno(ms->err, TE_EIO, errno, "creating '%s'",
		                        ent->path);
		goto done;
	}
	if (te_fs_write_all(fd, data, size) < 0 ||
	    fchmod(fd, ent->mode == 0100755u ? 0755 : 0644) < 0) {
		rc = te_error_set_errno(ms->err, TE_EIO, errno, "writing '%s'",
		                        ent->path);
		goto done;
	}
	if (close(fd) < 0) {
		fd = -1;
		rc = te_error_set_errno(ms->err, TE_EIO, errno, "writing '%s'",
		                        ent->path);
		goto done;
	}
	fd = -1;
done:
	if (fd >= 0)
		close(fd);
	git_blob_free(blob);
	return rc;
}

int te_gitsrc_materialize(te_gitsrc *src, const char *commit, const char *dir,
                          const char *dest, te_gitsrc_keep_fn keep,
                          void *payload, te_error *err)
{
	struct mat_state ms = {.src = src,
	                       .rootfd = -1,
	                       .dirfd = -1,
	                       .dirpath = TE_BUF_INIT(TE_GITSRC_PATH_MAX),
	                       .keep = keep,
	                       .payload = payload,
	                       .err = err};
	int rc;

	ms.rootfd = open(dest, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
	if (ms.rootfd < 0)
		return te_error_set_errno(err, TE_EIO, errno, "opening '%s'",
		                          dest);
	rc = te_gitsrc_walk(src, commit, dir, materialize_one, &ms, err);
	if (ms.dirfd >= 0 && ms.dirfd != ms.rootfd)
		close(ms.dirfd);
	close(ms.rootfd);
	te_buf_dispose(&ms.dirpath);
	return rc;
}
