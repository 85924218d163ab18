/*
 * log.h - how the core reports progress without printing.
 *
 * The core never writes to stdout/stderr.  Long operations take a te_log
 * (callback + payload) and report one-line messages through it; the front
 * end decides the format and destination.  A NULL callback drops messages.
 */
#ifndef TAGEXPORT_LOG_H
#define TAGEXPORT_LOG_H

#include "tagexport/error.h"

typedef enum {
	TE_LOG_DEBUG = 0,
	TE_LOG_INFO = 1,
	TE_LOG_WARN = 2,
	TE_LOG_ERROR = 3
} te_log_level;

typedef void (*te_log_fn)(void *payload, te_log_level level, const char *msg);

typedef struct te_log {
	te_log_fn fn;
	void *payload;
} te_log;

void te_log_emit(const te_log *log, te_log_level level, const char *fmt, ...)
    TE_PRINTF(3, 4);

#endif
