/*
 * pages_html.c - rendering of the job pages (pages.h).  Pure: the jobs
 * come in, HTML goes out; pages.c fetches the jobs and checks access.
 */
#include "pages.h"

#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

/* Seconds between reloads of a page that shows work in progress. */
#define REFRESH_SECONDS 3

static const char STYLE[] =
    "body{font:15px/1.45 system-ui,sans-serif;margin:0 auto;padding:12px;"
    "max-width:1200px;color:#1f2328;background:#fff}"
    "h1{font-size:1.3em;margin:.3em 0;overflow-wrap:anywhere}"
    "h2{font-size:1.05em;margin:1.2em 0 .4em}"
    "a{color:#0969da}"
    "table{border-collapse:collapse;width:100%}"
    "th,td{text-align:left;padding:6px 8px;border-bottom:1px solid #d0d7de;"
    "vertical-align:top;overflow-wrap:anywhere}"
    "th{font-size:.85em;color:#59636e}"
    "code,pre{font:13px/1.4 ui-monospace,monospace}"
    "pre{background:#f6f8fa;padding:10px;white-space:pre-wrap;"
    "overflow-wrap:anywhere;border-radius:6px}"
    ".st{display:inline-block;padding:1px 8px;border-radius:10px;"
    "font-weight:600;font-size:.85em;white-space:nowrap}"
    ".st-queued{background:#eaeef2;color:#424a53}"
    ".st-running{background:#fff1c2;color:#7d4e00}"
    ".st-succeeded{background:#dafbe1;color:#116329}"
    ".st-failed{background:#ffebe9;color:#a40e26}"
    ".refs{margin:0;padding:0;list-style:none}"
    ".err{color:#a40e26;overflow-wrap:anywhere}"
    ".note{color:#59636e;font-size:.9em}"
    "dl{display:grid;grid-template-columns:max-content 1fr;gap:4px 16px}"
    "dt{color:#59636e}dd{margin:0;overflow-wrap:anywhere}"
    "@media (max-width:700px){thead{display:none}"
    "tr{display:block;border-bottom:1px solid #d0d7de;padding:6px 0}"
    "td{display:block;border:0;padding:2px 4px}"
    "td::before{content:attr(data-label) \": \";color:#59636e}"
    "dl{grid-template-columns:1fr}}";

int ts_html_escape(te_buf *out, const char *s, te_error *err)
{
	const char *run = s;
	int rc = 0;

	for (; rc == 0 && *s; s++) {
		const char *ent = NULL;
		switch (*s) {
		case '&':
			ent = "&amp;";
			break;
		case '<':
			ent = "&lt;";
			break;
		case '>':
			ent = "&gt;";
			break;
		case '"':
			ent = "&quot;";
			break;
		case '\'':
			ent = "&#39;";
			break;
		default:
			continue;
		}
		rc = te_buf_put(out, run, (size_t)(s - run), err);
		if (rc == 0)
			rc = te_buf_puts(out, ent, err);
		run = s + 1;
	}
	if (rc == 0)
		rc = te_buf_put(out, run, strlen(run), err);
	return rc;
}

/* Where the authority that starts at p ends (RFC 3986 section 3.2): at
 * the path, query or fragment, or at what cannot be in a URL in text. */
static size_t authority_len(const char *p)
{
	return strcspn(p, "/?#\\ \t\r\n\"'<>`");
}

char *ts_html_redact(const char *s)
{
	size_t n = strlen(s);
	te_buf out = TE_BUF_INIT(n * 2 + 16);
	const char *p = s, *sep;

	while ((sep = strstr(p, "://")) != NULL) {
		const char *auth = sep + 3, *at = NULL, *q;
		size_t alen = authority_len(auth);

		for (q = auth; q < auth + alen; q++)
			if (*q == '@')
				at = q; /* the last '@': RFC 3986 3.2.1 */
		if (!at) {
			if (te_buf_put(&out, p, (size_t)(auth - p), NULL) < 0)
				goto fail;
			p = auth;
			continue;
		}
		if (te_buf_put(&out, p, (size_t)(auth - p), NULL) < 0 ||
		    te_buf_puts(&out, "***", NULL) < 0)
			goto fail;
		p = at;
	}
	if (te_buf_puts(&out, p, NULL) < 0)
		goto fail;
	return te_buf_detach(&out);
fail:
	te_buf_dispose(&out);
	return NULL;
}

void ts_relative_time(char *out, size_t cap, int64_t then, int64_t now)
{
	int64_t d = now - then, a = d < 0 ? -d : d;
	const char *pre = d < 0 ? "in " : "", *post = d < 0 ? "" : " ago";

	if (a < 5)
		snprintf(out, cap, "just now");
	else if (a < 60)
		snprintf(out, cap, "%s%lld s%s", pre, (long long)a, post);
	else if (a < 3600)
		snprintf(out, cap, "%s%lld min%s", pre, (long long)(a / 60),
		         post);
	else if (a < 86400)
		snprintf(out, cap, "%s%lld h%s", pre, (long long)(a / 3600),
		         post);
	else
		snprintf(out, cap, "%s%lld day%s%s", pre,
		         (long long)(a / 86400), a < 2 * 86400 ? "" : "s",
		         post);
}

void ts_duration_text(char *out, size_t cap, int64_t secs)
{
	long long s = secs < 0 ? 0 : (long long)secs;

	if (s < 60)
		snprintf(out, cap, "%lld s", s);
	else if (s < 3600)
		snprintf(out, cap, "%lld min %02lld s", s / 60, s % 60);
	else
		snprintf(out, cap, "%lld h %02lld min", s / 3600,
		         s % 3600 / 60);
}

void ts_utc_text(char *out, size_t cap, int64_t t)
{
	time_t tt = (time_t)t;
	struct tm tm;

	if (!gmtime_r(&tt, &tm) ||
	    strftime(out, cap, "%Y-%m-%d %H:%M:%S UTC", &tm) == 0)
		snprintf(out, cap, "%lld", (long long)t);
}

/* Escaped after redaction: for text that may quote a URL. */
static int put_text(te_buf *out, const char *s, te_error *err)
{
	char *clean = ts_html_redact(s ? s : "");
	int rc;

	if (!clean)
		return te_error_set(err, TE_ENOMEM, "out of memory");
	rc = ts_html_escape(out, clean, err);
	free(clean);
	return rc;
}

/* <time> with the relative text and the exact UTC time on hover; a dash
 * for 0 (never). */
static int put_time(te_buf *out, int64_t t, int64_t now, te_error *err)
{
	char rel[48], exact[48];

	if (t <= 0)
		return te_buf_puts(out, "&mdash;", err);
	ts_relative_time(rel, sizeof(rel), t, now);
	ts_utc_text(exact, sizeof(exact), t);
	return te_buf_printf(out, err, "<time title=\"%s\">%s</time>", exact,
	                     rel);
}

/* How long the job ran: its last attempt, up to now while it runs. */
static int put_duration(te_buf *out, const ts_job *job, int64_t now,
                        te_error *err)
{
	char d[48];

	if (job->started_at <= 0 || job->state == TS_JOB_QUEUED)
		return te_buf_puts(out, "&mdash;", err);
	ts_duration_text(
	    d, sizeof(d),
	    (job->state == TS_JOB_RUNNING ? now : job->updated_at) -
	        job->started_at);
	return te_buf_puts(out, d, err);
}

static int put_state(te_buf *out, ts_job_state state, te_error *err)
{
	static const char *const marks[] = {
	    [TS_JOB_QUEUED] = "&#9675;",     /* white circle */
	    [TS_JOB_RUNNING] = "&#9680;",    /* half circle */
	    [TS_JOB_SUCCEEDED] = "&#10003;", /* check mark */
	    [TS_JOB_FAILED] = "&#10007;"};   /* ballot x */
	const char *name = ts_job_state_str(state);

	return te_buf_printf(out, err, "<span class=\"st st-%s\">%s %s</span>",
	                     name, marks[state], name);
}

static int put_head(te_buf *out, const char *title, bool refresh, te_error *err)
{
	int rc = te_buf_puts(out,
	                     "<!DOCTYPE html>\n<html lang=\"en\"><head>"
	                     "<meta charset=\"utf-8\">"
	                     "<meta name=\"viewport\" content=\"width=device-"
	                     "width, initial-scale=1\">",
	                     err);

	if (rc == 0 && refresh)
		rc = te_buf_printf(
		    out, err, "<meta http-equiv=\"refresh\" content=\"%d\">",
		    REFRESH_SECONDS);
	if (rc == 0)
		rc = te_buf_puts(out, "<title>", err);
	if (rc == 0)
		rc = ts_html_escape(out, title, err);
	if (rc == 0)
		rc =
		    te_buf_printf(out, err,
		                  " &middot; tagexport</title><style>%s</style>"
		                  "</head><body>\n",
		                  STYLE);
	return rc;
}

static bool in_progress(ts_job_state state)
{
	return state == TS_JOB_QUEUED || state == TS_JOB_RUNNING;
}

/* The "REF@sha256:..." results as a list: the reference, the digest on
 * hover (full is for the job page). */
static int put_refs(te_buf *out, const te_strvec *results, bool full,
                    te_error *err)
{
	size_t i;
	int rc;

	if (results->count == 0)
		return te_buf_puts(out, "&mdash;", err);
	rc = te_buf_puts(out, "<ul class=\"refs\">", err);
	for (i = 0; rc == 0 && i < results->count; i++) {
		char *r = ts_html_redact(results->items[i]), *at;
		if (!r)
			return te_error_set(err, TE_ENOMEM, "out of memory");
		at = full ? NULL : strrchr(r, '@');
		if (at)
			*at = '\0';
		rc = te_buf_puts(out, "<li><code", err);
		if (rc == 0 && at) {
			rc = te_buf_puts(out, " title=\"", err);
			if (rc == 0)
				rc = ts_html_escape(out, at + 1, err);
			if (rc == 0)
				rc = te_buf_puts(out, "\"", err);
		}
		if (rc == 0)
			rc = te_buf_puts(out, ">", err);
		if (rc == 0)
			rc = ts_html_escape(out, r, err);
		if (rc == 0)
			rc = te_buf_puts(out, "</code></li>", err);
		free(r);
	}
	return rc == 0 ? te_buf_puts(out, "</ul>", err) : rc;
}

/* One <td> with its data-label (the column name at phone width). */
static int cell_open(te_buf *out, const char *label, te_error *err)
{
	return te_buf_printf(out, err, "<td data-label=\"%s\">", label);
}

static int list_row(te_buf *out, const ts_job *job, int64_t now, te_error *err)
{
	int rc;

	rc = cell_open(out, "Project", err);
	if (rc == 0)
		rc = ts_html_escape(out, job->project, err);
	if (rc == 0)
		rc = te_buf_printf(out, err, "</td>");
	if (rc == 0)
		rc = cell_open(out, "Tag", err);
	/* The id is the queue's ([0-9a-f-]): safe in a URL as it is. */
	if (rc == 0)
		rc = te_buf_printf(out, err, "<a href=\"/jobs/%s\">", job->id);
	if (rc == 0)
		rc = ts_html_escape(out, job->tag, err);
	if (rc == 0)
		rc = te_buf_printf(out, err,
		                   "</a></td><td data-label=\"Commit\">"
		                   "<code title=\"%s\">%.7s</code></td>"
		                   "<td data-label=\"Origin\">%s</td>",
		                   job->commit, job->commit,
		                   ts_job_origin(job->source));
	if (rc == 0)
		rc = cell_open(out, "State", err);
	if (rc == 0)
		rc = put_state(out, job->state, err);
	if (rc == 0)
		rc = te_buf_puts(out, "</td>", err);
	if (rc == 0)
		rc = cell_open(out, "Started", err);
	if (rc == 0)
		rc = put_time(out, job->started_at, now, err);
	if (rc == 0)
		rc = te_buf_puts(out, "</td>", err);
	if (rc == 0)
		rc = cell_open(out, "Duration", err);
	if (rc == 0)
		rc = put_duration(out, job, now, err);
	if (rc == 0)
		rc = te_buf_puts(out, "</td>", err);
	if (rc == 0)
		rc = cell_open(out, "References", err);
	if (rc == 0)
		rc = put_refs(out, &job->results, false, err);
	if (rc == 0)
		rc = te_buf_puts(out, "</td></tr>\n", err);
	return rc;
}

int ts_pages_list(te_buf *out, ts_job *const *jobs, size_t n, int64_t now,
                  te_error *err)
{
	bool busy = false;
	size_t i;
	int rc;

	for (i = 0; i < n; i++)
		busy = busy || in_progress(jobs[i]->state);
	rc = put_head(out, "Jobs", busy, err);
	if (rc == 0)
		rc = te_buf_printf(out, err,
		                   "<h1>Export jobs</h1><p class=\"note\">%zu "
		                   "most recent, newest first%s.</p>\n",
		                   n,
		                   busy ? "; this page refreshes while jobs "
		                          "run"
		                        : "");
	if (rc == 0 && n == 0)
		rc = te_buf_puts(out, "<p>No jobs yet.</p>\n", err);
	if (rc == 0 && n > 0)
		rc =
		    te_buf_puts(out,
		                "<table><thead><tr><th>Project</th><th>Tag</th>"
		                "<th>Commit</th><th>Origin</th><th>State</th>"
		                "<th>Started</th><th>Duration</th>"
		                "<th>Exported references</th></tr></thead>"
		                "<tbody>\n",
		                err);
	for (i = 0; rc == 0 && i < n; i++) {
		rc = te_buf_puts(out, "<tr>", err);
		if (rc == 0)
			rc = list_row(out, jobs[i], now, err);
	}
	if (rc == 0 && n > 0)
		rc = te_buf_puts(out, "</tbody></table>\n", err);
	if (rc == 0)
		rc = te_buf_puts(out, "</body></html>\n", err);
	return rc;
}

/* <dt>label</dt><dd>, the caller writes the value and the </dd>. */
static int dt(te_buf *out, const char *label, te_error *err)
{
	return te_buf_printf(out, err, "<dt>%s</dt><dd>", label);
}

static int job_facts(te_buf *out, const ts_job *job, int64_t now, te_error *err)
{
	int rc = te_buf_puts(out, "<dl>", err);

	if (rc == 0)
		rc = dt(out, "Project", err);
	if (rc == 0)
		rc = ts_html_escape(out, job->project, err);
	if (rc == 0)
		rc =
		    te_buf_printf(out, err,
		                  "</dd><dt>Commit</dt><dd><code>%s</code></dd>"
		                  "<dt>Origin</dt><dd>%s",
		                  job->commit, ts_job_origin(job->source));
	/* Which forge sent the webhook. */
	if (rc == 0 && strcmp(job->source, ts_job_origin(job->source)) != 0) {
		rc = te_buf_puts(out, " (", err);
		if (rc == 0)
			rc = ts_html_escape(out, job->source, err);
		if (rc == 0)
			rc = te_buf_puts(out, ")", err);
	}
	if (rc == 0)
		rc =
		    te_buf_printf(out, err, "</dd><dt>Attempts</dt><dd>%d</dd>",
		                  job->attempts);
	if (rc == 0)
		rc = dt(out, "Queued", err);
	if (rc == 0)
		rc = put_time(out, job->created_at, now, err);
	if (rc == 0)
		rc = te_buf_puts(out, "</dd>", err);
	if (rc == 0)
		rc = dt(out, "Started", err);
	if (rc == 0)
		rc = put_time(out, job->started_at, now, err);
	if (rc == 0)
		rc = te_buf_puts(out, "</dd>", err);
	if (rc == 0)
		rc = dt(out, "Duration", err);
	if (rc == 0)
		rc = put_duration(out, job, now, err);
	if (rc == 0)
		rc = te_buf_puts(out, "</dd>", err);
	if (rc == 0 && job->state == TS_JOB_QUEUED && job->not_before > now) {
		rc = dt(out, "Next attempt", err);
		if (rc == 0)
			rc = put_time(out, job->not_before, now, err);
		if (rc == 0)
			rc = te_buf_puts(out, "</dd>", err);
	}
	if (rc == 0)
		rc = te_buf_printf(
		    out, err, "<dt>Job</dt><dd><code>%s</code></dd></dl>\n",
		    job->id);
	return rc;
}

static int job_body(te_buf *out, const ts_job *job, te_error *err)
{
	int rc = 0;

	if (job->error && *job->error) {
		rc = te_buf_puts(out, "<h2>Error</h2><p class=\"err\">", err);
		if (rc == 0)
			rc = put_text(out, job->error, err);
		if (rc == 0)
			rc = te_buf_puts(out, "</p>\n", err);
	}
	if (rc == 0)
		rc = te_buf_puts(out, "<h2>Exported references</h2>", err);
	if (rc == 0)
		rc = put_refs(out, &job->results, true, err);
	if (rc == 0)
		rc = te_buf_puts(out, "\n<h2>Log</h2>", err);
	if (rc == 0 && job->log && *job->log) {
		rc = te_buf_puts(out, "<pre id=\"log\">", err);
		if (rc == 0)
			rc = put_text(out, job->log, err);
		if (rc == 0)
			rc = te_buf_puts(out, "</pre>\n", err);
	} else if (rc == 0) {
		rc = te_buf_puts(out,
		                 in_progress(job->state)
		                     ? "<p class=\"note\">No log yet.</p>\n"
		                     : "<p class=\"note\">No log.</p>\n",
		                 err);
	}
	return rc;
}

int ts_pages_job(te_buf *out, const ts_job *job, int64_t now, te_error *err)
{
	bool busy = in_progress(job->state);
	int rc;

	rc = put_head(out, job->tag, busy, err);
	if (rc == 0)
		rc = te_buf_puts(out,
		                 "<p><a href=\"/jobs\">&larr; All jobs</a></p>"
		                 "<h1>",
		                 err);
	if (rc == 0)
		rc = ts_html_escape(out, job->tag, err);
	if (rc == 0)
		rc = te_buf_puts(out, " ", err);
	if (rc == 0)
		rc = put_state(out, job->state, err);
	if (rc == 0)
		rc = te_buf_puts(out, "</h1>\n", err);
	if (rc == 0 && busy)
		rc = te_buf_printf(
		    out, err,
		    "<p class=\"note\">This page refreshes every "
		    "%d s while the job is %s.</p>\n",
		    REFRESH_SECONDS, ts_job_state_str(job->state));
	if (rc == 0)
		rc = job_facts(out, job, now, err);
	if (rc == 0)
		rc = job_body(out, job, err);
	if (rc == 0)
		rc = te_buf_puts(out, "</body></html>\n", err);
	return rc;
}

int ts_pages_message(te_buf *out, const char *title, const char *msg,
                     te_error *err)
{
	int rc = put_head(out, title, false, err);

	if (rc == 0)
		rc = te_buf_puts(out, "<h1>", err);
	if (rc == 0)
		rc = ts_html_escape(out, title, err);
	if (rc == 0)
		rc = te_buf_puts(out, "</h1><p>", err);
	if (rc == 0)
		rc = ts_html_escape(out, msg, err);
	if (rc == 0)
		rc = te_buf_puts(out,
		                 "</p><p><a href=\"/jobs\">All jobs</a></p>"
		                 "</body></html>\n",
		                 err);
	return rc;
}
