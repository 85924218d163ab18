/*
 * journal_queue.h - test hooks of the journal driver (not part of the
 * public API); q must be a journal queue (ts_queue_open_journal).
 */
#ifndef TS_JOURNAL_QUEUE_H
#define TS_JOURNAL_QUEUE_H

#include <stdbool.h>
#include <stddef.h>

#include "queue/queue.h"

/* Number of directory fsyncs issued for job updates since ts_queue_open
 * (the start-up sync of the loaded directory not included); submits are
 * made durable by the journal instead. */
size_t ts_queue__fsync_count(ts_queue *q);

/* Number of syncs issued since ts_queue_open (not counting open's own):
 * journal fdatasyncs, directory fsyncs for new journal segments, and
 * job-file and directory fsyncs of updates. */
size_t ts_queue__sync_count(ts_queue *q);

/* Start a new journal segment once the current one is above limit bytes
 * (default 8 MiB). */
void ts_queue__set_journal_limit(ts_queue *q, size_t limit);

/* Journal segments on disk (the current one included). */
size_t ts_queue__journal_segments(ts_queue *q);

/* Number of job-file writes (each one a rename into jobs/) since open:
 * updates only, submits write no job file. */
size_t ts_queue__write_count(ts_queue *q);

#endif
