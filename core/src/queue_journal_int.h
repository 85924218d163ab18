/*
 * queue_journal_int.h - the job queue's submit journal (internal to the
 * queue).
 *
 * A submit is made durable by one line appended to the journal and a
 * group-committed fdatasync; the job's own file is written only when the
 * job first changes state.  So the journal is the only durable record of
 * a job that has not run yet, and it is kept in segments:
 * <dir>/journal.<10 digits>, numbered upwards, plus <dir>/journal (the
 * single journal of earlier versions, replayed as segment 0).
 *
 * Each line belongs to one segment; the queue "holds" a line while the
 * line is its job's only record and releases it once the job's file is
 * durable.  A full segment is sealed and a new one started; a sealed
 * segment is deleted once all its lines are synced and released.  A
 * new segment is started at every open, so a torn line (a crash in the
 * middle of an append) is only ever at the end of an old segment.
 *
 * Locking: te_journal_open, te_journal_start and te_journal_free are
 * called without the queue's mutex (the one given to te_journal_open),
 * every other function with it held; te_journal_sync and
 * te_journal_rotate drop it while they wait for the disk.  Lines never
 * contain "\n" except at their end.
 */
#ifndef TAGEXPORT_QUEUE_JOURNAL_INT_H
#define TAGEXPORT_QUEUE_JOURNAL_INT_H

#include <pthread.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "tagexport/error.h"

typedef struct te_journal te_journal;
typedef struct te_journal_seg te_journal_seg;

/* Longest line replayed; a longer one is skipped as not ours. */
#define TE_JOURNAL_LINE_MAX (1024 * 1024)

/* Where a line is: its segment's number and its offset in that file.
 * Numbers are never reused while a te_journal exists. */
typedef struct te_journal_pos {
	uint64_t seg;
	uint64_t off;
} te_journal_pos;

/* Called for each complete line at open, oldest first (without its
 * "\n").  Return 1 to hold the line (see above), 0 to drop it, or a
 * negative error code to abort the open. */
typedef int (*te_journal_line_fn)(void *ctx, te_journal_seg *seg,
                                  const te_journal_pos *pos, const char *line,
                                  size_t len, te_error *err);

/* Replay every segment in dirfd (borrowed; must stay open until
 * te_journal_free) through fn.  Appends are possible only after
 * te_journal_start. */
int te_journal_open(te_journal **out, int dirfd, pthread_mutex_t *mu,
                    te_journal_line_fn fn, void *ctx, te_error *err);

/* Delete the segments nothing holds and start a new, durable segment. */
int te_journal_start(te_journal *j, te_error *err);

/* Append line (ending in "\n") with one write: on success *seg, *pos
 * and *gen name it and the line is held.  A failed write is cut off
 * again; if that fails too, the segment is sealed so no later line
 * follows a torn one. */
int te_journal_append(te_journal_seg **seg, te_journal_pos *pos, uint64_t *gen,
                      te_journal *j, const char *line, size_t len,
                      te_error *err);

/* Return once line generation gen is on disk.  Concurrent callers share
 * one fdatasync per segment (group commit). */
int te_journal_sync(te_journal *j, uint64_t gen, te_error *err);

/* Start a new segment if the current one is full (or sealed after a
 * failed write).  Failing to is not the caller's error: lines go on to
 * the current segment and the next call tries again, unless it is
 * sealed, in which case te_journal_append fails. */
void te_journal_rotate(te_journal *j);

/* The held line in seg is no longer needed (its job file is durable). */
void te_journal_release(te_journal *j, te_journal_seg *seg);

/* Make the lines at pos (n of them, sorted here) unreadable for good:
 * their first byte is overwritten and the segments synced, so no replay
 * brings their jobs back (for jobs the queue forgets).  Lines whose
 * segment is already deleted are gone anyway.  Called WITHOUT the
 * mutex: it writes only bytes that no append touches again. */
int te_journal_cancel(te_journal *j, te_journal_pos *pos, size_t n,
                      te_error *err);

void te_journal_free(te_journal *j);

/* Test and bench hooks: rotate above limit bytes (default 8 MiB); syncs
 * (fdatasync of segments, fsync of the directory) since open; segments
 * on disk. */
void te_journal__set_limit(te_journal *j, size_t limit);
size_t te_journal__sync_count(const te_journal *j);
size_t te_journal__segments(const te_journal *j);

#endif
