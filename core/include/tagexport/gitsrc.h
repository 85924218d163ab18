/*
 * gitsrc.h - read a project straight from a git commit (libgit2).
 *
 * Nothing is read from the working tree: files come from the commit's
 * tree, so uncommitted changes are ignored.  A te_gitsrc owns its open
 * repository; paths are relative to the project directory inside the
 * repository (the --dir the repository was opened from).
 */
#ifndef TAGEXPORT_GITSRC_H
#define TAGEXPORT_GITSRC_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "tagexport/buf.h"
#include "tagexport/error.h"

typedef struct te_gitsrc te_gitsrc;

/* Call once per process before any other te_gitsrc function. */
int te_gitsrc_global_init(te_error *err);

/* dir: a directory inside a repository (bare or not); discovered upwards. */
int te_gitsrc_open(te_gitsrc **out, const char *dir, te_error *err);
void te_gitsrc_free(te_gitsrc *src);

/* A second handle on src's repository whose paths are relative to the
 * repository's root rather than the project directory (werf's `git.add`
 * is a path in the repository,
 * https://werf.io/docs/v2/usage/build/stapel/git.html).  Free with
 * te_gitsrc_free. */
int te_gitsrc_open_root(te_gitsrc **out, const te_gitsrc *src, te_error *err);

/*
 * Resolve rev (NULL = HEAD; any revparse syntax, annotated tags peeled) to
 * a commit.  commit_out: 40 hex + NUL.  tag_out: when rev names a tag
 * (refs/tags/<name> or a bare tag name), the tag's short name as a heap
 * string, else NULL.
 */
int te_gitsrc_resolve(char commit_out[41], char **tag_out, te_gitsrc *src,
                      const char *rev, te_error *err);

/* The author time of commit (40 hex): seconds since the epoch and the
 * author's UTC offset in minutes, as git records them. */
int te_gitsrc_commit_time(int64_t *unix_out, int *offset_out, te_gitsrc *src,
                          const char *commit, te_error *err);

/* Append the short names of all tags of the repository to out. */
int te_gitsrc_tag_names(te_strvec *out, te_gitsrc *src, te_error *err);

/* Append the blob at project-relative path to out (bounded by out->max,
 * checked from the object header before anything is read).  TE_ENOTFOUND
 * when no such file; TE_EINVALID when it is not a blob or too large. */
int te_gitsrc_read_file(te_buf *out, te_gitsrc *src, const char *commit,
                        const char *path, te_error *err);

/* Append the blob with the given 40-hex id to out (bounded by out->max);
 * used to read symlink targets found by te_gitsrc_walk.  TE_ENOTFOUND when
 * there is no such blob, TE_EINVALID for a malformed id. */
int te_gitsrc_read_blob(te_buf *out, te_gitsrc *src, const char *oid,
                        te_error *err);

typedef struct te_gitsrc_entry {
	const char *path;  /* relative to the walked directory */
	const char *oid;   /* 40 hex blob id (link target blob for symlinks) */
	unsigned int mode; /* git filemode: 0100644, 0100755, 0120000 */
} te_gitsrc_entry;

/* Return <0 to stop (that value is returned), 0 to continue. */
typedef int (*te_gitsrc_walk_fn)(const te_gitsrc_entry *entry, void *payload);

/*
 * Visit every blob and symlink under project-relative dir ("" = project
 * root) in path order.  Submodules (gitlinks) are skipped.  A missing dir
 * is TE_ENOTFOUND.
 */
int te_gitsrc_walk(te_gitsrc *src, const char *commit, const char *dir,
                   te_gitsrc_walk_fn fn, void *payload, te_error *err);

/* Which entries of a directory te_gitsrc_check and te_gitsrc_materialize
 * look at (path relative to that directory); NULL: all. */
typedef bool (*te_gitsrc_keep_fn)(const char *path, void *payload);

#define TE_GITSRC_MAX_FILE_SIZE ((uint64_t)2 << 30)    /* 2 GiB */
#define TE_GITSRC_MAX_CONTEXT_SIZE ((uint64_t)8 << 30) /* 8 GiB */
#define TE_GITSRC_STREAM_MIN ((uint64_t)8 << 20)       /* 8 MiB */

/* Bounds of a build context.  Zero fields take the defaults above. */
typedef struct te_gitsrc_limits {
	uint64_t max_file_size;    /* largest kept file, bytes */
	uint64_t max_context_size; /* all kept files together, bytes */
	/* Files larger than this are written by a `git cat-file blob` child
	 * straight to disk instead of being read into memory (git must be
	 * in PATH); smaller ones are read in process. */
	uint64_t stream_min;
} te_gitsrc_limits;

/**
 * Check the kept entries under project-relative dir without writing
 * anything: every file against lim (NULL: defaults), the total against
 * lim->max_context_size, and every kept symlink resolved through the
 * other symlinks of dir (at most 40 in a row, as Linux's MAXSYMLINKS)
 * must never be absolute or climb above dir at any step.  Dangling links
 * pass: they lead nowhere.
 *
 * @param[out] total_out bytes of the kept files (may be NULL).
 * @param err TE_EINVALID naming the file and the limit, the total and the
 *            limit, or the link and the step that leaves dir (or loops);
 *            TE_ENOTFOUND when dir does not exist.
 */
int te_gitsrc_check(uint64_t *total_out, te_gitsrc *src, const char *commit,
                    const char *dir, te_gitsrc_keep_fn keep, void *payload,
                    const te_gitsrc_limits *lim, te_error *err);

/*
 * Write the kept files under project-relative dir into dest (an existing,
 * empty, private directory) keeping modes and symlinks.  Runs
 * te_gitsrc_check first, so nothing is written when a limit is exceeded
 * or a kept symlink leads outside.  Never writes outside dest: no symlink
 * is followed while writing.  Memory stays bounded whatever the file
 * sizes: see te_gitsrc_limits.stream_min.  Files get mode 0644 or 0755,
 * directories 0755.
 */
int te_gitsrc_materialize(te_gitsrc *src, const char *commit, const char *dir,
                          const char *dest, te_gitsrc_keep_fn keep,
                          void *payload, const te_gitsrc_limits *lim,
                          te_error *err);

/* Parse a size: digits, optionally followed by B, KiB, MiB, GiB or TiB
 * ("512MiB", "2GiB", "1048576").  TE_EINVALID for anything else, zero or
 * an overflow. */
int te_gitsrc_size_parse(uint64_t *out, const char *text, te_error *err);

#endif
