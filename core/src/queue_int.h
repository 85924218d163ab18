/*
 * queue_int.h - test hooks of the job queue (not part of the public API).
 */
#ifndef TAGEXPORT_QUEUE_INT_H
#define TAGEXPORT_QUEUE_INT_H

#include <stdbool.h>
#include <stddef.h>

#include "tagexport/queue.h"

/* Number of directory fsyncs issued for job updates since te_queue_open
 * (the start-up sync of the loaded directory not included); submits are
 * made durable by the journal instead. */
size_t te_queue__fsync_count(te_queue *q);

/* Number of syncs issued since te_queue_open (not counting open's own):
 * journal fdatasyncs, directory fsyncs for new journal segments, and
 * job-file and directory fsyncs of updates. */
size_t te_queue__sync_count(te_queue *q);

/* Start a new journal segment once the current one is above limit bytes
 * (default 8 MiB). */
void te_queue__set_journal_limit(te_queue *q, size_t limit);

/* Journal segments on disk (the current one included). */
size_t te_queue__journal_segments(te_queue *q);

/* Number of job-file writes (each one a rename into jobs/) since open:
 * updates only, submits write no job file. */
size_t te_queue__write_count(te_queue *q);

#endif
