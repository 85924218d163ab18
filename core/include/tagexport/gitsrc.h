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

#include "tagexport/buf.h"
#include "tagexport/error.h"

typedef struct te_gitsrc te_gitsrc;

/* Call once per process before any other te_gitsrc function. */
int te_gitsrc_global_init(te_error *err);

/* dir: a directory inside a repository (bare or not); discovered upwards. */
int te_gitsrc_open(te_gitsrc **out, const char *dir, te_error *err);
void te_gitsrc_free(te_gitsrc *src);

/*
 * Resolve rev (NULL = HEAD; any revparse syntax, annotated tags peeled) to
 * a commit.  commit_out: 40 hex + NUL.  tag_out: when rev names a tag
 * (refs/tags/<name> or a bare tag name), the tag's short name as a heap
 * string, else NULL.
 */
int te_gitsrc_resolve(char commit_out[41], char **tag_out, te_gitsrc *src,
                      const char *rev, te_error *err);

/* Append the short names of all tags of the repository to out. */
int te_gitsrc_tag_names(te_strvec *out, te_gitsrc *src, te_error *err);

/* Append the blob at project-relative path to out (bounded by out->max).
 * TE_ENOTFOUND when no such file; TE_EINVALID when it is not a blob. */
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

/*
 * Write the files under project-relative dir into dest (an existing, empty,
 * private directory) keeping modes and symlinks; entries for which keep
 * returns false are skipped (NULL keep: all).  Never writes outside dest:
 * no symlink is followed while writing, and symlinks whose target is
 * absolute or climbs above dir are skipped (not created).  Files get mode
 * 0644 or 0755, directories 0755.
 */
typedef bool (*te_gitsrc_keep_fn)(const char *path, void *payload);
int te_gitsrc_materialize(te_gitsrc *src, const char *commit, const char *dir,
                          const char *dest, te_gitsrc_keep_fn keep,
                          void *payload, te_error *err);

#endif
