/*
 * hook.h - the git post-receive hook: what a push asks for, and the
 * pieces `tagexport hook` needs around it (githooks(5); webhooks.md 3.4).
 *
 * Invariants:
 *  1. Everything on the hook's stdin is untrusted.  Lines and their count
 *     are bounded (TE_HOOK_LINE_MAX, TE_HOOK_LINES_MAX); object ids must be
 *     40 hex digits; a tag name is acted on only when te_mirror_tag_valid
 *     accepts it, and then only ever travels as one argv element or one
 *     JSON string.  It never reaches a shell, and never a path: files named
 *     after a tag use te_hook_job_stem (a hash).
 *  2. Only created or updated tags (refs/tags/...) are acted on; deletions (new
 * id all zeros) and every other ref are reported as such and ignored.
 *  3. An annotated tag is peeled to its commit in the repository the hook
 *     runs in, from the pushed object id (not from the ref, which a later
 *     push may already have moved).
 *  4. The hook file is replaced atomically (temp file + rename, mode
 *     0755), and a hook that is not tagexport's is never overwritten:
 *     te_hook_install refuses, or with chain keeps it as
 *     post-receive.chained, which the installed script runs first.
 */
#ifndef TAGEXPORT_HOOK_H
#define TAGEXPORT_HOOK_H

#include <stdbool.h>
#include <stddef.h>

#include "tagexport/buf.h"
#include "tagexport/error.h"

/* Longest stdin line accepted, in bytes, without its LF. */
#define TE_HOOK_LINE_MAX 4096
/* Most stdin lines accepted (ref updates in one push). */
#define TE_HOOK_LINES_MAX 10000
/* Most stdin bytes read: every line at its longest, with its LF. */
#define TE_HOOK_INPUT_MAX ((size_t)TE_HOOK_LINES_MAX * (TE_HOOK_LINE_MAX + 1))

/* What one "<old> <new> <ref>" line means to tagexport. */
typedef enum {
	TE_HOOK_TAG = 0,      /* refs/tags/<valid name> created or updated */
	TE_HOOK_DELETED = 1,  /* any ref whose new id is all zeros */
	TE_HOOK_NOT_TAG = 2,  /* a branch, a note, any ref but a tag */
	TE_HOOK_BAD_NAME = 3, /* refs/tags/<name> te_mirror_tag_valid refuses */
	TE_HOOK_MALFORMED = 4 /* not "<40 hex> <40 hex> <ref>", or too long */
} te_hook_kind;

typedef struct te_hook_update {
	te_hook_kind kind;
	size_t line;      /* 1-based line number on stdin */
	char old_oid[41]; /* lowercase hex; "" when malformed */
	char new_oid[41]; /* lowercase hex; "" when malformed */
	char *tag;        /* TE_HOOK_TAG only: the name after refs/tags/ */
} te_hook_update;

typedef struct te_hook_updates {
	te_hook_update *items;
	size_t count;
} te_hook_updates;

#define TE_HOOK_UPDATES_INIT                                                   \
	{                                                                      \
		NULL, 0                                                        \
	}

/**
 * Parse post-receive input.  Pure.  Each line (LF-terminated, the last
 * one may lack it; empty lines are skipped) becomes one update, in order.
 *
 * @param[out] out  filled on success; dispose with te_hook_updates_dispose
 *                  (also after a failure)
 * @param data      the bytes read from stdin, not NUL-terminated
 * @return 0; TE_EINVALID when there are more than TE_HOOK_LINES_MAX lines
 *         (nothing is returned then: such a push is not acted on at all);
 *         TE_ENOMEM
 */
int te_hook_parse(te_hook_updates *out, const char *data, size_t len,
                  te_error *err);
void te_hook_updates_dispose(te_hook_updates *updates);

/**
 * Read fd to its end into out (whose max is raised to TE_HOOK_INPUT_MAX).
 * @return 0; TE_EINVALID when the input is longer; TE_EIO
 */
int te_hook_read(te_buf *out, int fd, te_error *err);

/* "<commit>-<first 16 hex digits of sha256(tag)>": the name (before
 * ".log" / ".lock") of the files of one tag+commit. */
#define TE_HOOK_STEM_LEN (40 + 1 + 16)

/**
 * @param[out] out  the stem, NUL-terminated
 * @param commit    40 hex digits
 * @return 0; TE_EINVALID for a commit that is not 40 hex digits
 */
int te_hook_job_stem(char out[TE_HOOK_STEM_LEN + 1], const char *commit,
                     const char *tag, te_error *err);

/**
 * The files of one tag+commit of a project in standalone mode:
 * <state_dir>/hooks/<project>/<stem>.log and .lock.  Creates the
 * directories (0700) when missing.
 *
 * @param[out] log_path   appended
 * @param[out] lock_path  appended
 * @return 0; TE_EINVALID for a bad project name or commit; TE_EIO
 */
int te_hook_job_paths(te_buf *log_path, te_buf *lock_path,
                      const char *state_dir, const char *project,
                      const char *commit, const char *tag, te_error *err);

/* tagexport-server project names: [a-z0-9_-]{1,64}. */
bool te_hook_project_name_valid(const char *name);

/* ---- the repository the hook runs in (libgit2) ---------------------- */

typedef struct te_hook_repo te_hook_repo;

/**
 * Open the repository at git_dir (a bare repository or a .git directory;
 * not discovered upwards).  te_gitsrc_global_init must have run.
 * @return 0; TE_ENOTFOUND when git_dir is not a repository
 */
int te_hook_repo_open(te_hook_repo **out, const char *git_dir, te_error *err);
void te_hook_repo_free(te_hook_repo *repo);

/* Absolute path of the git directory, with a trailing '/' (borrowed). */
const char *te_hook_repo_path(const te_hook_repo *repo);

/* The directory git runs the repository's hooks from: core.hooksPath
 * when set ("~/" expanded; a relative one is relative to the repository
 * if bare, else to its work tree, as git resolves it), else
 * <git dir>/hooks.  *out is a heap string (caller frees). */
int te_hook_repo_hooks_dir(char **out, te_hook_repo *repo, te_error *err);

/**
 * Peel the object oid (40 hex) to a commit, through any chain of
 * annotated tags.
 * @return 0; TE_ENOTFOUND when the object is missing; TE_EINVALID when it
 *         does not lead to a commit
 */
int te_hook_repo_peel(char commit_out[41], te_hook_repo *repo, const char *oid,
                      te_error *err);

/**
 * The commit refs/tags/<tag> points to now (peeled).
 * @return 0; TE_ENOTFOUND when the tag does not exist; TE_EINVALID when it
 *         does not lead to a commit
 */
int te_hook_repo_tag_commit(char commit_out[41], te_hook_repo *repo,
                            const char *tag, te_error *err);

/* ---- settings: the repository's git config, section "tagexport" ---- */

/*
 * Standalone mode has config; server mode has server and token_file.
 * Strings are heap-owned (te_hook_settings_dispose); NULL when unset.
 */
typedef struct te_hook_settings {
	char *project;    /* tagexport.project */
	char *config;     /* tagexport.config: server config file, absolute */
	char *server;     /* tagexport.server: base URL of tagexport-server */
	char *token_file; /* tagexport.tokenFile: admin token file, absolute */
	char *bin;        /* tagexport.bin: the tagexport binary, absolute */
} te_hook_settings;

#define TE_HOOK_SETTINGS_INIT                                                  \
	{                                                                      \
		NULL, NULL, NULL, NULL, NULL                                   \
	}

/* Read the tagexport.* keys (any config level). */
int te_hook_settings_read(te_hook_settings *out, te_hook_repo *repo,
                          te_error *err);

/* Write the keys into the repository's own config: set ones are set,
 * NULL ones are removed (so switching modes leaves no stale key). */
int te_hook_settings_write(te_hook_repo *repo, const te_hook_settings *s,
                           te_error *err);
void te_hook_settings_dispose(te_hook_settings *s);

/* ---- the hook file --------------------------------------------------- */

typedef enum {
	TE_HOOK_INSTALL_NEW = 0,  /* there was no hook */
	TE_HOOK_INSTALL_SAME = 1, /* the same script was installed already */
	TE_HOOK_INSTALL_UPDATED =
	    2,                      /* an older tagexport script was replaced */
	TE_HOOK_INSTALL_CHAINED = 3 /* a foreign hook became *.chained */
} te_hook_install_result;

/* A line every tagexport hook script carries; how an older version of
 * our own script is told from a foreign hook. */
#define TE_HOOK_SCRIPT_MARKER "# tagexport-post-receive-hook"

/**
 * Install script as the post-receive hook in hooks_dir (a repository's
 * te_hook_repo_hooks_dir; created if missing, one level).
 *
 * The file is <hooks_dir>/post-receive, or, when the directory
 * <hooks_dir>/post-receive.d exists (Gitea's layout: its own
 * post-receive runs every file in there), post-receive.d/tagexport.
 * An existing file equal to script is left alone; one containing
 * TE_HOOK_SCRIPT_MARKER is replaced; any other is refused (TE_EINVALID,
 * naming --chain) unless chain is set, in which case it is renamed to
 * post-receive.chained first (refused too if that name is taken).
 *
 * @param[out] result    what happened
 * @param[out] path_out  the hook file's path (heap, caller frees); may
 *                       be NULL
 * @param script         the whole script, must contain the marker
 * @return 0; TE_EINVALID (refused, see above); TE_EIO
 */
int te_hook_install(te_hook_install_result *result, char **path_out,
                    const char *hooks_dir, const char *script, bool chain,
                    te_error *err);

/* ---- detached runs --------------------------------------------------- */

/**
 * Take an exclusive flock on path (created 0600 when missing) without
 * waiting.
 *
 * @param[out] fd_out  the locked descriptor (close-on-exec; closing it
 *                     releases the lock), -1 when busy
 * @param[out] busy    true when another process holds the lock
 * @return 0 (locked or busy); TE_EIO
 */
int te_hook_lock(int *fd_out, bool *busy, const char *path, te_error *err);

/**
 * Run exe with argv detached from the caller: double fork, setsid, cwd
 * "/", stdin /dev/null, stdout and stderr on log_fd, lock_fd as
 * descriptor 3 (so the lock lives as long as the program), nothing else
 * open.  Returns once the program was exec'd (the caller never waits for
 * it, and it holds none of the caller's pipes).
 *
 * @return 0; TE_EIO when it could not be started (fork, exec errors)
 */
int te_hook_spawn_detached(const char *exe, const char *const *argv, int log_fd,
                           int lock_fd, te_error *err);

#endif
