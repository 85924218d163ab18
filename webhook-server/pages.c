/*
 * pages.c - GET /jobs and GET /jobs/<id>: access and the jobs; the HTML
 * is pages_html.c's.
 *
 * Access: HTTP Basic (RFC 7617) with any user name and the admin token as
 * the password, compared in constant time; or nothing at all when the
 * config says ui_public: true.  The pages only read: nothing here changes
 * a job.
 */
#include "pages.h"
#include "server.h"
#include "slog.h"
#include "verify.h"

#include <stdlib.h>
#include <string.h>
#include <time.h>

/* Jobs on /jobs: the newest ones. */
#define PAGES_JOBS 100

static void html(struct ts_response *res, unsigned int status)
{
	res->status = status;
	res->content_type = "text/html; charset=utf-8";
}

static void message(struct ts_response *res, unsigned int status,
                    const char *title, const char *msg)
{
	ts_response_reset(res);
	html(res, status);
	if (ts_pages_message(&res->body, title, msg, NULL) < 0)
		ts_response_error(res, 500, "out of memory");
}

static void list_page(struct ts_response *res, struct ts_server *s)
{
	te_error err = TE_ERROR_INIT;
	ts_job **jobs = NULL;
	size_t n = 0;

	if (ts_queue_list(&jobs, &n, s->queue, PAGES_JOBS, &err) < 0) {
		ts_logkv(TE_LOG_ERROR, "cannot list jobs", "error", err.msg,
		         NULL);
		message(res, 500, "Error", "cannot list jobs");
		return;
	}
	ts_response_reset(res);
	html(res, 200);
	if (ts_pages_list(&res->body, jobs, n, (int64_t)time(NULL), &err) < 0)
		message(res, 500, "Error", "cannot render the page");
	ts_queue_list_free(jobs, n);
}

static void job_page(struct ts_response *res, struct ts_server *s,
                     const char *id)
{
	te_error err = TE_ERROR_INIT;
	ts_job *job = NULL;
	int rc = ts_queue_get(&job, s->queue, id, &err);

	if (rc == TE_ENOTFOUND || rc == TE_EINVALID || (rc == 0 && !job)) {
		message(res, 404, "Not found", "There is no such job.");
		return;
	}
	if (rc < 0) {
		message(res, 500, "Error", "cannot read the job");
		return;
	}
	/* The queue has the log of the last attempt that ended: while one
	 * runs, its worker has the log so far. */
	if (job->state == TS_JOB_RUNNING) {
		char *live = ts_workers_log(s, job->id);
		if (live) {
			free(job->log);
			job->log = live;
		}
	}
	ts_response_reset(res);
	html(res, 200);
	if (ts_pages_job(&res->body, job, (int64_t)time(NULL), &err) < 0)
		message(res, 500, "Error", "cannot render the page");
	ts_job_free(job);
}

/* A job id as the queue makes them (queue.h invariant 5): nothing else
 * from the URL goes further. */
static bool id_shaped(const char *id)
{
	size_t n = strlen(id);

	return n > 0 && n < TS_JOB_ID_MAX &&
	       strspn(id, "0123456789abcdef-") == n;
}

static bool allowed(struct ts_server *s, const char *authorization)
{
	struct ts_config *cfg = ts_server_config(s);
	bool ok =
	    cfg->ui_public ||
	    ts_basic_ok(cfg->admin_token, cfg->admin_token_len, authorization);

	ts_config_unref(cfg);
	return ok;
}

void ts_pages(struct ts_response *res, struct ts_server *s, const char *url,
              const char *authorization)
{
	if (!allowed(s, authorization)) {
		message(res, 401, "Sign in",
		        "These pages need the admin token as the password "
		        "(any user name).");
		return;
	}
	if (!strcmp(url, "/jobs") || !strcmp(url, "/jobs/"))
		list_page(res, s);
	else if (!strncmp(url, "/jobs/", 6) && id_shaped(url + 6))
		job_page(res, s, url + 6);
	else
		message(res, 404, "Not found", "There is no such page.");
}
