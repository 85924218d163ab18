/*
 * poll_set.h - the tags a project's poller has seen, kept in
 * <state_dir>/poll/<project>.tags so that a restart neither exports old
 * tags again nor misses the ones pushed while the server was down.
 *
 * The file is text, one "<40 hex commit> <tag>\n" line per tag, written
 * atomically (temp file, fsync, rename, fsync of the directory): a crash
 * leaves the old set or the new one, never a mix.  Tag names are
 * validated on the way in (ts_tag_name_valid: the poller keeps no other);
 * the name never becomes a path, only the project name
 * (te_project_name_valid) does.
 */
#ifndef TS_POLL_SET_H
#define TS_POLL_SET_H

#include <stdbool.h>
#include <stddef.h>

#include "tagexport/buf.h"
#include "tagexport/error.h"

/* Most tags one poll (and one set) handles. */
#define TS_POLL_TAGS_MAX 10000

/* Parse a set file's text into names/commits (appended; the caller
 * disposes).  TE_EINVALID naming the line on a malformed one, or when
 * there are more than TS_POLL_TAGS_MAX lines. */
int ts_poll_set_parse(te_strvec *names, te_strvec *commits, const char *data,
                      size_t len, te_error *err);

/* The file text of a set (appended to out). */
int ts_poll_set_format(te_buf *out, const te_strvec *names,
                       const te_strvec *commits, te_error *err);

/* Sort a set by tag name (names and commits move together), for
 * ts_poll_set_has. */
void ts_poll_set_sort(te_strvec *names, te_strvec *commits);

/* Has the set (sorted by ts_poll_set_sort) seen tag name at commit?
 * O(log n): a poll looks up every remote tag. */
bool ts_poll_set_has(const te_strvec *names, const te_strvec *commits,
                     const char *name, const char *commit);

/* Load <dir>/<project>.tags, sorted.  *found is false (and the lists empty)
 * when the file does not exist yet: the project was never polled. */
int ts_poll_set_load(te_strvec *names, te_strvec *commits, bool *found,
                     const char *dir, const char *project, te_error *err);

/* Replace <dir>/<project>.tags (dir created 0700 when missing). */
int ts_poll_set_save(const char *dir, const char *project,
                     const te_strvec *names, const te_strvec *commits,
                     te_error *err);

#endif
