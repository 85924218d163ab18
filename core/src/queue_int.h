/*
 * queue_int.h - test hooks of the job queue (not part of the public API).
 */
#ifndef TAGEXPORT_QUEUE_INT_H
#define TAGEXPORT_QUEUE_INT_H

#include <stddef.h>

#include "tagexport/queue.h"

/* Number of directory fsyncs issued for job writes since te_queue_open
 * (the start-up sync of the loaded directory not included). */
size_t te_queue__fsync_count(te_queue *q);

/* Number of job-file writes (each one a rename into jobs/) since open. */
size_t te_queue__write_count(te_queue *q);

#endif
