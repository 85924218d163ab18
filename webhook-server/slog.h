/*
 * slog.h - tagexport-server's log lines on stderr: text or JSON lines.
 *
 * Every value is escaped before it is written: control characters, DEL,
 * bytes >= 0x80, quotes and backslashes become \xNN / \" / \\, so hostile
 * input (tag names, header values) can neither forge a line nor inject
 * terminal escapes.  Callers never pass secrets.
 */
#ifndef TS_SLOG_H
#define TS_SLOG_H

#include <stdbool.h>
#include <stddef.h>

#include "config.h"
#include "tagexport/log.h"

void ts_log_set_format(ts_log_format format);
void ts_log_set_level(te_log_level min);

/*
 * One event: a message plus key/value pairs, terminated by NULL:
 *   ts_logkv(TE_LOG_INFO, "job queued", "project", p, "tag", t, NULL);
 * A NULL value (after a key) is written as an empty string.
 */
void ts_logkv(te_log_level level, const char *msg, ...)
    __attribute__((sentinel));

/*
 * Rate limit for lines an attacker can trigger at will (refused
 * deliveries, and replays of one captured signed delivery): true for at
 * most TS_LOG_BURST lines per second per key; the next allowed line
 * reports how many were dropped via *suppressed.  Keys outside the table
 * are never limited.
 */
enum ts_log_key {
	TS_LOG_KEY_REFUSED,   /* missing or bad signature */
	TS_LOG_KEY_MALFORMED, /* a body that does not parse */
	TS_LOG_KEY_FOREIGN,   /* another repository's delivery */
	TS_LOG_KEY_DUPLICATE, /* a redelivery */
	TS_LOG_KEY_FILTERED,  /* a tag the project's globs leave out */
	TS_LOG_KEY_BUSY,      /* a body refused: pending budget spent */
	TS_LOG_KEYS
};
#define TS_LOG_BURST 20
bool ts_log_allow(unsigned int key, unsigned long *suppressed);

/* Escape src into dst (always NUL-terminated, truncated to cap). */
void ts_escape(char *dst, size_t cap, const char *src);

/* te_log callback: payload is a const char * job id (or NULL). */
void ts_log_core(void *payload, te_log_level level, const char *msg);

#endif
