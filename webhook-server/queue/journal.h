/*
 * journal.h - the job queue's submit journal (internal to the
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
 * Locking: ts_journal_open, ts_journal_start and ts_journal_free are
 * called without the queue's mutex (the one given to ts_journal_open),
 * every other function with it held; ts_journal_sync and
 * ts_journal_rotate drop it while they wait for the disk.  Lines never
 * contain "\n" except at their end.
 */
#ifndef TS_QUEUE_JOURNAL_H
#define TS_QUEUE_JOURNAL_H

#include <pthread.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "tagexport/error.h"

typedef struct ts_journal ts_journal;
typedef struct ts_journal_seg ts_journal_seg;

/* Longest line replayed; a longer one is skipped as not ours. */
#define TS_JOURNAL_LINE_MAX (1024 * 1024)

/* Where a line is: its segment's number and its offset in that file.
 * Numbers are never reused while a ts_journal exists. */
typedef struct ts_journal_pos {
	uint64_t seg;
	uint64_t off;
} ts_journal_pos;

/* Called for each complete line at open, oldest first (without its
 * "\n").  Return 1 to hold the line (see above), 0 to drop it, or a
 * negative error code to abort the open. */
typedef int (*ts_journal_line_fn)(void *ctx, ts_journal_seg *seg,
                                  const ts_journal_pos *pos, const char *line,
                                  size_t len, te_error *err);

/* Replay every segment in dirfd (borrowed; must stay open until
 * ts_journal_free) through fn.  Appends are possible only after
 * ts_journal_start. */
int ts_journal_open(ts_journal **out, int dirfd, pthread_mutex_t *mu,
                    ts_journal_line_fn fn, void *ctx, te_error *err);

/* Delete the segments nothing holds and start a new, durable segment. */
int ts_journal_start(ts_journal *j, te_error *err);

/* Append line (ending in "\n") with one write: on success *seg, *pos
 * and *gen name it and the line is held.  A failed write is cut off
 * again; if that fails too, the segment is sealed so no later line
 * follows a torn one. */
int ts_journal_append(ts_journal_seg **seg, ts_journal_pos *pos, uint64_t *gen,
                      ts_journal *j, const char *line, size_t len,
                      te_error *err);

/* Return once line generation gen is on disk.  Concurrent callers share
 * one fdatasync per segment (group commit). */
int ts_journal_sync(ts_journal *j, uint64_t gen, te_error *err);

/* Start a new segment if the current one is full (or sealed after a
 * failed write).  Failing to is not the caller's error: lines go on to
 * the current segment and the next call tries again, unless it is
 * sealed, in which case ts_journal_append fails. */
void ts_journal_rotate(ts_journal *j);

/* The held line in seg is no longer needed (its job file is durable). */
void ts_journal_release(ts_journal *j, ts_journal_seg *seg);

/* Make the lines at pos (n of them, sorted here) unreadable for good:
 * their first byte is overwritten and the segments synced, so no replay
 * brings their jobs back (for jobs the queue forgets).  Lines whose
 * segment is already deleted are gone anyway.  Called WITHOUT the
 * mutex: it writes only bytes that no append touches again. */
int ts_journal_cancel(ts_journal *j, ts_journal_pos *pos, size_t n,
                      te_error *err);

void ts_journal_free(ts_journal *j);

/* Test and bench hooks: rotate above limit bytes (default 8 MiB); syncs
 * (fdatasync of segments, fsync of the directory) since open; segments
 * on disk. */
void ts_journal__set_limit(ts_journal *j, size_t limit);
size_t ts_journal__sync_count(const ts_journal *j);
size_t ts_journal__segments(const ts_journal *j);

#endif
