/*
 * hook.c - the post-receive hook's core (hook.h): stdin parsing, the
 * repository it runs in, its git config settings, the hook file, and
 * detached runs.
 */
#include "tagexport/hook.h"

#include <errno.h>
#include <fcntl.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <unistd.h>

#include <git2.h>
#include <openssl/evp.h>

#include "tagexport/fs.h"
#include "tagexport/mirror.h"

#include "proc_int.h"

#define HOOK_PATH_MAX 4096
/* A hook script larger than this is not something we would have written
 * (so it is compared as foreign without reading further). */
#define HOOK_SCRIPT_MAX (1024 * 1024)

struct te_hook_repo {
	git_repository *repo;
};

/* ---- stdin ----------------------------------------------------------- */

static bool hex40(char out[41], const char *s, size_t len)
{
	size_t i;

	if (len != 40)
		return false;
	for (i = 0; i < 40; i++) {
		char c = s[i];
		if (c >= 'A' && c <= 'F')
			c = (char)(c - 'A' + 'a');
		if (!((c >= '0' && c <= '9') || (c >= 'a' && c <= 'f')))
			return false;
		out[i] = c;
	}
	out[40] = '\0';
	return true;
}

static bool all_zero(const char *oid)
{
	return strspn(oid, "0") == 40;
}

/* Classify one line (no LF); u->kind and the fields it implies. */
static int parse_line(te_hook_update *u, const char *s, size_t len,
                      te_error *err)
{
	static const char prefix[] = "refs/tags/";
	const size_t plen = sizeof(prefix) - 1;
	const char *ref;
	size_t rlen;
	char *tag = NULL;

	u->kind = TE_HOOK_MALFORMED;
	if (len > TE_HOOK_LINE_MAX || len < 83 || s[40] != ' ' ||
	    s[81] != ' ' || !hex40(u->old_oid, s, 40) ||
	    !hex40(u->new_oid, s + 41, 40)) {
		u->old_oid[0] = u->new_oid[0] = '\0';
		return 0;
	}
	ref = s + 82;
	rlen = len - 82;
	if (memchr(ref, '\0', rlen))
		return 0;
	if (all_zero(u->new_oid)) {
		u->kind = TE_HOOK_DELETED;
		return 0;
	}
	if (rlen <= plen || memcmp(ref, prefix, plen) != 0) {
		u->kind = TE_HOOK_NOT_TAG;
		return 0;
	}
	tag = malloc(rlen - plen + 1);
	if (!tag)
		return te_error_set(err, TE_ENOMEM, "out of memory");
	memcpy(tag, ref + plen, rlen - plen);
	tag[rlen - plen] = '\0';
	if (!te_mirror_tag_valid(tag)) {
		free(tag);
		u->kind = TE_HOOK_BAD_NAME;
		return 0;
	}
	u->tag = tag;
	u->kind = TE_HOOK_TAG;
	return 0;
}

/* Lines in data[0..len), the last one with or without its LF, at most
 * TE_HOOK_LINES_MAX (parsing stops there); at least 1. */
static size_t count_lines(const char *data, size_t len)
{
	const char *p = data, *end = data + len, *nl;
	size_t n = 0;

	while (p < end && n < TE_HOOK_LINES_MAX) {
		n++;
		nl = memchr(p, '\n', (size_t)(end - p));
		if (!nl)
			break;
		p = nl + 1;
	}
	return n ? n : 1;
}

int te_hook_parse(te_hook_updates *out, const char *data, size_t len,
                  te_error *err)
{
	te_hook_update *items = NULL;
	size_t n = 0, lineno = 0, pos = 0;
	int rc = 0;

	out->items = NULL;
	out->count = 0;
	while (pos < len) {
		const char *nl = memchr(data + pos, '\n', len - pos);
		size_t llen = nl ? (size_t)(nl - (data + pos)) : len - pos;
		const char *line = data + pos;

		pos += llen + (nl ? 1 : 0);
		if (++lineno > TE_HOOK_LINES_MAX) {
			rc = te_error_set(err, TE_EINVALID,
			                  "more than %d ref updates",
			                  TE_HOOK_LINES_MAX);
			goto done;
		}
		if (llen == 0)
			continue;
		if (!items) {
			/* At most one update per line, from this one on:
			 * size it once. */
			items = calloc(
			    count_lines(line, len - (size_t)(line - data)),
			    sizeof(*items));
			if (!items) {
				rc = te_error_set(err, TE_ENOMEM,
				                  "out of memory");
				goto done;
			}
		}
		items[n].line = lineno;
		if ((rc = parse_line(&items[n], line, llen, err)) < 0)
			goto done;
		n++;
	}
	out->items = items;
	out->count = n;
	items = NULL;
done:
	if (items) {
		te_hook_updates tmp = {items, n};
		te_hook_updates_dispose(&tmp);
	}
	return rc;
}

void te_hook_updates_dispose(te_hook_updates *updates)
{
	size_t i;

	if (!updates)
		return;
	for (i = 0; i < updates->count; i++)
		free(updates->items[i].tag);
	free(updates->items);
	updates->items = NULL;
	updates->count = 0;
}

int te_hook_read(te_buf *out, int fd, te_error *err)
{
	out->max = TE_HOOK_INPUT_MAX;
	if (te_fs_read_all(out, fd, NULL) == 0)
		return 0;
	if (errno == EFBIG)
		return te_error_set(err, TE_EINVALID,
		                    "hook input longer than %zu bytes",
		                    (size_t)TE_HOOK_INPUT_MAX);
	return te_error_set_errno(err, TE_EIO, errno,
	                          "cannot read the hook input");
}

/* ---- names and paths -------------------------------------------------- */

int te_hook_job_stem(char out[TE_HOOK_STEM_LEN + 1], const char *commit,
                     const char *tag, te_error *err)
{
	static const char hexd[] = "0123456789abcdef";
	unsigned char md[EVP_MAX_MD_SIZE];
	unsigned int mdlen = 0;
	char lower[41];
	size_t i;

	out[0] = '\0';
	if (!commit || !hex40(lower, commit, strlen(commit)))
		return te_error_set(err, TE_EINVALID,
		                    "commit must be 40 hex digits");
	if (!tag ||
	    EVP_Digest(tag, strlen(tag), md, &mdlen, EVP_sha256(), NULL) != 1 ||
	    mdlen < 8)
		return te_error_set(err, TE_ERROR, "sha256 failed");
	memcpy(out, lower, 40);
	out[40] = '-';
	for (i = 0; i < 8; i++) {
		out[41 + 2 * i] = hexd[md[i] >> 4];
		out[42 + 2 * i] = hexd[md[i] & 15];
	}
	out[TE_HOOK_STEM_LEN] = '\0';
	return 0;
}

bool te_hook_project_name_valid(const char *name)
{
	size_t i;

	if (!name)
		return false;
	for (i = 0; name[i]; i++) {
		char c = name[i];
		if (i >= 64)
			return false;
		if (!((c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') ||
		      c == '_' || c == '-'))
			return false;
	}
	return i > 0;
}

static int mkdir_one(const char *path, te_error *err)
{
	if (mkdir(path, 0700) < 0 && errno != EEXIST)
		return te_error_set_errno(err, TE_EIO, errno,
		                          "cannot create %s", path);
	return 0;
}

static int mkdirs(const char *path, te_error *err)
{
	char tmp[HOOK_PATH_MAX];
	size_t i, len = strlen(path);
	int rc;

	if (len == 0 || len >= sizeof(tmp))
		return te_error_set(err, TE_EINVALID, "bad directory name");
	memcpy(tmp, path, len + 1);
	for (i = 1; i <= len; i++) {
		if (tmp[i] != '/' && tmp[i] != '\0')
			continue;
		tmp[i] = '\0';
		if ((rc = mkdir_one(tmp, err)) < 0)
			return rc;
		tmp[i] = path[i];
	}
	return 0;
}

int te_hook_job_paths(te_buf *log_path, te_buf *lock_path,
                      const char *state_dir, const char *project,
                      const char *commit, const char *tag, te_error *err)
{
	te_buf dir = TE_BUF_INIT(HOOK_PATH_MAX);
	char stem[TE_HOOK_STEM_LEN + 1];
	int rc;

	if (!te_hook_project_name_valid(project)) {
		rc = te_error_set(err, TE_EINVALID, "invalid project name");
		goto done;
	}
	if ((rc = te_hook_job_stem(stem, commit, tag, err)) < 0 ||
	    (rc = te_buf_printf(&dir, err, "%s/hooks/%s", state_dir, project)) <
	        0 ||
	    (rc = mkdirs(dir.ptr, err)) < 0 ||
	    (rc = te_buf_printf(log_path, err, "%s/%s.log", dir.ptr, stem)) <
	        0 ||
	    (rc = te_buf_printf(lock_path, err, "%s/%s.lock", dir.ptr, stem)) <
	        0)
		goto done;
done:
	te_buf_dispose(&dir);
	return rc;
}

/* ---- repository ------------------------------------------------------- */

/* Copy libgit2's message at once (thread-local, overwritten by the next
 * call), prefixed with what we were doing. */
static int git_fail(te_error *err, int gerr, const char *what)
{
	const git_error *e = git_error_last();
	te_code code = gerr == GIT_ENOTFOUND ? TE_ENOTFOUND : TE_ERROR;

	code = te_error_set(err, code, "%s: %s", what,
	                    e && e->message && *e->message ? e->message
	                                                   : "libgit2 error");
	git_error_clear();
	return code;
}

int te_hook_repo_open(te_hook_repo **out, const char *git_dir, te_error *err)
{
	te_hook_repo *r = NULL;
	int gerr, rc = 0;

	*out = NULL;
	r = calloc(1, sizeof(*r));
	if (!r)
		return te_error_set(err, TE_ENOMEM, "out of memory");
	gerr = git_repository_open_ext(&r->repo, git_dir,
	                               GIT_REPOSITORY_OPEN_NO_SEARCH |
	                                   GIT_REPOSITORY_OPEN_NO_DOTGIT,
	                               NULL);
	if (gerr < 0) {
		rc = git_fail(err, gerr, git_dir);
		goto done;
	}
	*out = r;
	r = NULL;
done:
	te_hook_repo_free(r);
	return rc;
}

void te_hook_repo_free(te_hook_repo *repo)
{
	if (!repo)
		return;
	git_repository_free(repo->repo);
	free(repo);
}

const char *te_hook_repo_path(const te_hook_repo *repo)
{
	return git_repository_path(repo->repo);
}

int te_hook_repo_hooks_dir(char **out, te_hook_repo *repo, te_error *err)
{
	git_config *cfg = NULL;
	git_buf set = GIT_BUF_INIT;
	te_buf dir = TE_BUF_INIT(HOOK_PATH_MAX);
	const char *base;
	int gerr, rc;

	*out = NULL;
	gerr = git_repository_config_snapshot(&cfg, repo->repo);
	if (gerr == 0)
		gerr = git_config_get_path(&set, cfg, "core.hooksPath");
	if (gerr < 0 && gerr != GIT_ENOTFOUND) {
		rc = git_fail(err, gerr, "core.hooksPath");
		goto done;
	}
	if (gerr == GIT_ENOTFOUND || set.size == 0) {
		git_error_clear();
		rc = te_buf_printf(&dir, err, "%shooks",
		                   git_repository_path(repo->repo));
	} else if (set.ptr[0] == '/') {
		rc = te_buf_puts(&dir, set.ptr, err);
	} else {
		/* Where git runs hooks: the work tree, or a bare git dir. */
		base = git_repository_is_bare(repo->repo)
		           ? git_repository_path(repo->repo)
		           : git_repository_workdir(repo->repo);
		rc = te_buf_printf(&dir, err, "%s%s", base, set.ptr);
	}
	if (rc == 0 && !(*out = te_buf_detach(&dir)))
		rc = te_error_set(err, TE_ENOMEM, "out of memory");
done:
	te_buf_dispose(&dir);
	git_buf_dispose(&set);
	git_config_free(cfg);
	return rc;
}

static int peel_object(char commit_out[41], git_object *obj, const char *what,
                       te_error *err)
{
	git_object *commit = NULL;
	int gerr;

	gerr = git_object_peel(&commit, obj, GIT_OBJECT_COMMIT);
	if (gerr < 0) {
		git_error_clear();
		return te_error_set(err, TE_EINVALID,
		                    "%s does not point to a commit", what);
	}
	git_oid_tostr(commit_out, 41, git_object_id(commit));
	git_object_free(commit);
	return 0;
}

int te_hook_repo_peel(char commit_out[41], te_hook_repo *repo, const char *oid,
                      te_error *err)
{
	git_object *obj = NULL;
	git_oid id;
	char lower[41];
	int gerr, rc;

	commit_out[0] = '\0';
	if (!oid || !hex40(lower, oid, strlen(oid)))
		return te_error_set(err, TE_EINVALID,
		                    "object id must be 40 hex digits");
	if (git_oid_fromstr(&id, lower) < 0) {
		git_error_clear();
		return te_error_set(err, TE_EINVALID, "bad object id");
	}
	gerr = git_object_lookup(&obj, repo->repo, &id, GIT_OBJECT_ANY);
	if (gerr < 0)
		return git_fail(err, gerr, "pushed object");
	rc = peel_object(commit_out, obj, "the pushed object", err);
	git_object_free(obj);
	return rc;
}

int te_hook_repo_tag_commit(char commit_out[41], te_hook_repo *repo,
                            const char *tag, te_error *err)
{
	git_reference *ref = NULL;
	git_object *obj = NULL;
	te_buf name = TE_BUF_INIT(TE_MIRROR_TAG_MAX + 16);
	int gerr, rc;

	commit_out[0] = '\0';
	if (!te_mirror_tag_valid(tag))
		return te_error_set(err, TE_EINVALID, "invalid tag name");
	if ((rc = te_buf_printf(&name, err, "refs/tags/%s", tag)) < 0)
		goto done;
	gerr = git_reference_lookup(&ref, repo->repo, name.ptr);
	if (gerr == 0)
		gerr = git_reference_peel(&obj, ref, GIT_OBJECT_ANY);
	if (gerr < 0) {
		rc = git_fail(err, gerr, "tag");
		goto done;
	}
	rc = peel_object(commit_out, obj, "the tag", err);
done:
	git_object_free(obj);
	git_reference_free(ref);
	te_buf_dispose(&name);
	return rc;
}

/* ---- settings -------------------------------------------------------------
 */

static const struct {
	const char *key;
	size_t offset;
} setting_keys[] = {
    {"tagexport.project", offsetof(te_hook_settings, project)},
    {"tagexport.config", offsetof(te_hook_settings, config)},
    {"tagexport.server", offsetof(te_hook_settings, server)},
    {"tagexport.tokenFile", offsetof(te_hook_settings, token_file)},
    {"tagexport.bin", offsetof(te_hook_settings, bin)},
};

#define NSETTINGS (sizeof(setting_keys) / sizeof(setting_keys[0]))

static char **setting_slot(te_hook_settings *s, size_t i)
{
	return (char **)(void *)((char *)s + setting_keys[i].offset);
}

static const char *setting_value(const te_hook_settings *s, size_t i)
{
	return *(char *const *)(const void *)((const char *)s +
	                                      setting_keys[i].offset);
}

int te_hook_settings_read(te_hook_settings *out, te_hook_repo *repo,
                          te_error *err)
{
	git_config *cfg = NULL, *snap = NULL;
	size_t i;
	int gerr, rc = 0;

	memset(out, 0, sizeof(*out));
	gerr = git_repository_config(&cfg, repo->repo);
	if (gerr == 0)
		gerr = git_config_snapshot(&snap, cfg);
	if (gerr < 0) {
		rc = git_fail(err, gerr, "cannot read the git config");
		goto done;
	}
	for (i = 0; i < NSETTINGS; i++) {
		const char *v = NULL;
		gerr = git_config_get_string(&v, snap, setting_keys[i].key);
		if (gerr == GIT_ENOTFOUND) {
			git_error_clear();
			continue;
		}
		if (gerr < 0) {
			rc = git_fail(err, gerr, setting_keys[i].key);
			goto done;
		}
		if (!*v)
			continue;
		*setting_slot(out, i) = te_strdup(v, err);
		if (!*setting_slot(out, i)) {
			rc = TE_ENOMEM;
			goto done;
		}
	}
done:
	git_config_free(snap);
	git_config_free(cfg);
	if (rc < 0)
		te_hook_settings_dispose(out);
	return rc;
}

int te_hook_settings_write(te_hook_repo *repo, const te_hook_settings *s,
                           te_error *err)
{
	git_config *cfg = NULL, *local = NULL;
	size_t i;
	int gerr, rc = 0;

	gerr = git_repository_config(&cfg, repo->repo);
	if (gerr == 0)
		gerr =
		    git_config_open_level(&local, cfg, GIT_CONFIG_LEVEL_LOCAL);
	if (gerr < 0) {
		rc = git_fail(err, gerr, "cannot open the repository config");
		goto done;
	}
	for (i = 0; i < NSETTINGS; i++) {
		const char *v = setting_value(s, i);
		if (v)
			gerr = git_config_set_string(local, setting_keys[i].key,
			                             v);
		else {
			gerr =
			    git_config_delete_entry(local, setting_keys[i].key);
			if (gerr == GIT_ENOTFOUND) {
				git_error_clear();
				gerr = 0;
			}
		}
		if (gerr < 0) {
			rc = git_fail(err, gerr, setting_keys[i].key);
			goto done;
		}
	}
done:
	git_config_free(local);
	git_config_free(cfg);
	return rc;
}

void te_hook_settings_dispose(te_hook_settings *s)
{
	size_t i;

	if (!s)
		return;
	for (i = 0; i < NSETTINGS; i++) {
		free(*setting_slot(s, i));
		*setting_slot(s, i) = NULL;
	}
}

/* ---- the hook file ---------------------------------------------------- */

/* Read a regular file of at most HOOK_SCRIPT_MAX bytes; *too_big when
 * larger.  Symlinks are not followed (a symlinked hook is foreign). */
static int read_small(te_buf *out, bool *too_big, const char *path,
                      te_error *err)
{
	int fd, rc = 0;

	*too_big = false;
	fd = open(path, O_RDONLY | O_NOFOLLOW | O_CLOEXEC);
	if (fd < 0) {
		if (errno == ELOOP) {
			*too_big = true;
			return 0;
		}
		return te_error_set_errno(err, TE_EIO, errno, "cannot read %s",
		                          path);
	}
	if (te_fs_read_all(out, fd, too_big) < 0)
		rc = te_error_set_errno(err, TE_EIO, errno, "cannot read %s",
		                        path);
	close(fd);
	return rc;
}

static bool exists(const char *path)
{
	struct stat st;

	return lstat(path, &st) == 0;
}

int te_hook_install(te_hook_install_result *result, char **path_out,
                    const char *hooks_dir, const char *script, bool chain,
                    te_error *err)
{
	te_buf hooks = TE_BUF_INIT(HOOK_PATH_MAX),
	       path = TE_BUF_INIT(HOOK_PATH_MAX);
	te_buf chained = TE_BUF_INIT(HOOK_PATH_MAX), old = TE_BUF_INIT(0);
	size_t slen = strlen(script), hdlen;
	struct stat st;
	bool foreign = false, too_big = false;
	int rc;

	*result = TE_HOOK_INSTALL_NEW;
	if (path_out)
		*path_out = NULL;
	if (!strstr(script, TE_HOOK_SCRIPT_MARKER)) {
		rc = te_error_set(err, TE_EINVALID,
		                  "the hook script lacks its marker line");
		goto done;
	}
	old.max = HOOK_SCRIPT_MAX;
	hdlen = strlen(hooks_dir);
	while (hdlen > 1 && hooks_dir[hdlen - 1] == '/')
		hdlen--;
	if ((rc = te_buf_put(&hooks, hooks_dir, hdlen, err)) < 0 ||
	    (rc = mkdir_one(hooks.ptr, err)) < 0)
		goto done;
	if ((rc = te_buf_printf(&path, err, "%s/post-receive.d", hooks.ptr)) <
	    0)
		goto done;
	if (stat(path.ptr, &st) == 0 && S_ISDIR(st.st_mode))
		rc = te_buf_puts(&path, "/tagexport", err);
	else {
		te_buf_clear(&path);
		rc = te_buf_printf(&path, err, "%s/post-receive", hooks.ptr);
	}
	if (rc < 0 ||
	    (rc = te_buf_printf(&chained, err, "%s.chained", path.ptr)) < 0)
		goto done;

	if (exists(path.ptr)) {
		if ((rc = read_small(&old, &too_big, path.ptr, err)) < 0)
			goto done;
		if (!too_big && old.len == slen &&
		    memcmp(old.ptr, script, slen) == 0) {
			/* Same bytes; still make sure it can run. */
			if (lstat(path.ptr, &st) == 0 &&
			    (st.st_mode & 0755) != 0755 &&
			    chmod(path.ptr, 0755) < 0) {
				rc = te_error_set_errno(err, TE_EIO, errno,
				                        "cannot chmod %s",
				                        path.ptr);
				goto done;
			}
			*result = TE_HOOK_INSTALL_SAME;
			goto out;
		}
		foreign = too_big || !strstr(old.ptr, TE_HOOK_SCRIPT_MARKER);
	}
	if (foreign) {
		if (!chain) {
			rc = te_error_set(
			    err, TE_EINVALID,
			    "%s exists and is not tagexport's hook: rerun with "
			    "--chain to keep it (as %s, run before tagexport "
			    "with the same input), or move it away",
			    path.ptr, chained.ptr);
			goto done;
		}
		if (exists(chained.ptr)) {
			rc = te_error_set(err, TE_EINVALID,
			                  "cannot chain %s: %s already exists",
			                  path.ptr, chained.ptr);
			goto done;
		}
		if (rename(path.ptr, chained.ptr) < 0) {
			rc = te_error_set_errno(err, TE_EIO, errno,
			                        "cannot rename %s", path.ptr);
			goto done;
		}
		*result = TE_HOOK_INSTALL_CHAINED;
	} else if (old.len) {
		*result = TE_HOOK_INSTALL_UPDATED;
	}
	if ((rc = te_fs_write_atomic(path.ptr, script, slen, 0755, err)) < 0) {
		/* Put the foreign hook back where it was. */
		if (*result == TE_HOOK_INSTALL_CHAINED)
			(void)rename(chained.ptr, path.ptr);
		goto done;
	}
out:
	if (path_out) {
		*path_out = te_buf_detach(&path);
		if (!*path_out)
			rc = te_error_set(err, TE_ENOMEM, "out of memory");
	}
done:
	te_buf_dispose(&hooks);
	te_buf_dispose(&path);
	te_buf_dispose(&chained);
	te_buf_dispose(&old);
	return rc;
}

/* ---- detached runs --------------------------------------------------------
 */

int te_hook_lock(int *fd_out, bool *busy, const char *path, te_error *err)
{
	int fd;

	*fd_out = -1;
	*busy = false;
	fd = open(path, O_RDWR | O_CREAT | O_NOFOLLOW | O_CLOEXEC, 0600);
	if (fd < 0)
		return te_error_set_errno(err, TE_EIO, errno,
		                          "cannot open lock file %s", path);
	while (flock(fd, LOCK_EX | LOCK_NB) < 0) {
		int e = errno;
		if (e == EINTR)
			continue;
		close(fd);
		if (e == EWOULDBLOCK) {
			*busy = true;
			return 0;
		}
		return te_error_set_errno(err, TE_EIO, e, "cannot lock %s",
		                          path);
	}
	*fd_out = fd;
	return 0;
}

int te_hook_spawn_detached(const char *exe, const char *const *argv, int log_fd,
                           int lock_fd, te_error *err)
{
	struct te_proc_opts po = TE_PROC_OPTS_INIT;
	pid_t pid;
	int rc;

	/* Descriptors of the runner: 0 /dev/null, 1 and 2 the log, 3 the
	 * lock; it runs in its own session with "/" as its cwd. */
	po.file = exe;
	/* exec does not modify argv (POSIX rationale for its type). */
	po.argv = (char *const *)(uintptr_t)argv;
	po.stdout_fd = log_fd;
	po.stderr_fd = log_fd;
	po.keep_fd = lock_fd;
	po.detach = true;
	if ((rc = te_proc_spawn(&pid, &po, err)) < 0)
		te_error_wrap(err, "cannot start detached run");
	return rc;
}
