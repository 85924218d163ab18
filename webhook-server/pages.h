/*
 * pages.h - the job pages: server-rendered HTML for people (GET /jobs,
 * GET /jobs/<id>), next to the JSON API for programs.
 *
 * Every value that reaches a page goes through ts_html_escape, and text
 * that may quote a URL (errors, logs, references) through
 * ts_html_redact first, so no credential in a URL's userinfo is ever
 * shown.  The pages need nothing from outside (no script, font or
 * stylesheet is fetched): they work offline, and the HTTP layer sends
 * them with a Content-Security-Policy that forbids scripts altogether.
 */
#ifndef TS_PAGES_H
#define TS_PAGES_H

#include <stddef.h>
#include <stdint.h>

#include "tagexport/buf.h"
#include "tagexport/error.h"
#include "queue/queue.h"

/* Append s with & < > " ' as character references (HTML Living
 * Standard, "Escaping a string"), safe in text and in quoted attribute
 * values. */
int ts_html_escape(te_buf *out, const char *s, te_error *err);

/* Copy of s (the caller frees it) with the userinfo of every
 * scheme://user:secret@host in it replaced by "***". */
char *ts_html_redact(const char *s);

/* How long ago then was, seen at now, as people say it: "just now",
 * "42 s ago", "3 min ago", "5 h ago", "2 days ago" ("in 3 min" for the
 * future, e.g. a retry's not_before).  Always NUL-terminated. */
void ts_relative_time(char *out, size_t cap, int64_t then, int64_t now);

/* A duration in seconds: "7 s", "3 min 05 s", "2 h 10 min". */
void ts_duration_text(char *out, size_t cap, int64_t secs);

/* The exact time, "2026-12-02 04:51:15 UTC". */
void ts_utc_text(char *out, size_t cap, int64_t t);

/* The pages, appended to out.  jobs are borrowed. */
int ts_pages_list(te_buf *out, ts_job *const *jobs, size_t n, int64_t now,
                  te_error *err);
int ts_pages_job(te_buf *out, const ts_job *job, int64_t now, te_error *err);
/* A page saying msg (for 404 and the like). */
int ts_pages_message(te_buf *out, const char *title, const char *msg,
                     te_error *err);

#endif
