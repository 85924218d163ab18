/*
 * api.c - the admin API under /api/v1/ (all need "Authorization: Bearer
 * <admin token>", compared in constant time; 401 otherwise):
 *
 *   GET  /api/v1/jobs[?limit=N]          newest first (default 100)
 *   GET  /api/v1/jobs/<id>               one job with its bounded log
 *   POST /api/v1/jobs/<id>/retry         failed/succeeded -> queued
 *   POST /api/v1/projects/<name>/exports {"ref":"refs/tags/T","commit":"<sha>"}
 *        (what hooks/post-receive sends) -> 202 like a webhook
 *   POST /api/v1/projects/<name>/poll    poll the project's tags now (poll.c)
 */
#include "server.h"
#include "slog.h"
#include "verify.h"

#include <jansson.h>
#include <stdlib.h>
#include <string.h>

#define API_JOBS_DEFAULT 100
#define API_JOBS_MAX 10000

static void reply(struct ts_response *res, unsigned int status, json_t *obj)
{
	char *s = obj ? json_dumps(obj, JSON_COMPACT) : NULL;

	ts_response_reset(res);
	res->status = status;
	if (!s || te_buf_puts(&res->body, s, NULL) < 0 ||
	    te_buf_puts(&res->body, "\n", NULL) < 0)
		ts_response_error(res, 500, "out of memory");
	free(s);
	json_decref(obj);
}

/* Strings from payloads may hold invalid UTF-8 or anything; jansson needs
 * valid UTF-8, so a failed conversion becomes null instead of an error. */
static json_t *str_or_null(const char *s)
{
	json_t *v = s ? json_string(s) : NULL;

	return v ? v : json_null();
}

static json_t *job_json(const ts_job *job, bool full)
{
	json_t *o = json_object(), *results = json_array();
	size_t i;

	if (!o || !results) {
		json_decref(o);
		json_decref(results);
		return NULL;
	}
	json_object_set_new(o, "id", json_string(job->id));
	json_object_set_new(o, "project", str_or_null(job->project));
	json_object_set_new(o, "tag", str_or_null(job->tag));
	json_object_set_new(o, "commit", json_string(job->commit));
	json_object_set_new(o, "source", str_or_null(job->source));
	json_object_set_new(o, "origin",
	                    json_string(ts_job_origin(job->source)));
	json_object_set_new(o, "delivery_id", str_or_null(job->delivery_id));
	json_object_set_new(o, "state",
	                    json_string(ts_job_state_str(job->state)));
	json_object_set_new(o, "attempts", json_integer(job->attempts));
	json_object_set_new(o, "created_at", json_integer(job->created_at));
	json_object_set_new(o, "updated_at", json_integer(job->updated_at));
	json_object_set_new(o, "not_before", json_integer(job->not_before));
	if (job->started_at)
		json_object_set_new(o, "started_at",
		                    json_integer(job->started_at));
	json_object_set_new(o, "error", str_or_null(job->error));
	if (job->runners.count) {
		json_t *runners = json_array();

		for (i = 0; runners && i < job->runners.count; i++)
			json_array_append_new(
			    runners, str_or_null(job->runners.items[i]));
		json_object_set_new(
		    o, "runner",
		    str_or_null(job->runners.items[job->runners.count - 1]));
		json_object_set_new(o, "runners",
		                    runners ? runners : json_null());
	}
	for (i = 0; i < job->results.count; i++)
		json_array_append_new(results,
		                      str_or_null(job->results.items[i]));
	json_object_set_new(o, "results", results);
	if (full)
		json_object_set_new(o, "log", str_or_null(job->log));
	return o;
}

static void list_jobs(struct ts_response *res, struct ts_server *s,
                      const char *query)
{
	te_error err = TE_ERROR_INIT;
	ts_job **jobs = NULL;
	size_t n = 0, i;
	size_t limit = API_JOBS_DEFAULT;
	json_t *arr, *o;

	if (query && !strncmp(query, "limit=", 6)) {
		char *end;
		unsigned long v = strtoul(query + 6, &end, 10);
		if (*end || v == 0 || v > API_JOBS_MAX) {
			ts_response_error(res, 400, "bad limit");
			return;
		}
		limit = v;
	}
	if (ts_queue_list(&jobs, &n, s->queue, limit, &err) < 0) {
		ts_logkv(TE_LOG_ERROR, "cannot list jobs", "error", err.msg,
		         NULL);
		ts_response_error(res, 500, "cannot list jobs");
		return;
	}
	arr = json_array();
	for (i = 0; arr && i < n; i++)
		json_array_append_new(arr, job_json(jobs[i], false));
	ts_queue_list_free(jobs, n);
	o = arr ? json_pack("{s:o}", "jobs", arr) : NULL;
	reply(res, 200, o);
}

static void get_job(struct ts_response *res, struct ts_server *s,
                    const char *id)
{
	te_error err = TE_ERROR_INIT;
	ts_job *job = NULL;
	int rc = ts_queue_get(&job, s->queue, id, &err);

	if (rc == TE_ENOTFOUND || (rc == 0 && !job)) {
		ts_response_error(res, 404, "no such job");
		return;
	}
	if (rc < 0) {
		ts_response_error(res, rc == TE_EINVALID ? 404 : 500, err.msg);
		return;
	}
	reply(res, 200, job_json(job, true));
	ts_job_free(job);
}

/* The retried job's commit shows it pending again (status.h). */
static void queued_status(struct ts_server *s, const char *id)
{
	te_error err = TE_ERROR_INIT;
	ts_job *job = NULL;

	if (ts_queue_get(&job, s->queue, id, &err) == 0)
		ts_status_queued(s, job->id, job->project, job->tag,
		                 job->commit);
	ts_job_free(job);
}

static void retry_job(struct ts_response *res, struct ts_server *s,
                      const char *id)
{
	te_error err = TE_ERROR_INIT;
	int rc = ts_queue_retry(s->queue, id, (int64_t)time(NULL), &err);

	if (rc == TE_ENOTFOUND) {
		ts_response_error(res, 404, "no such job");
		return;
	}
	if (rc < 0) {
		ts_response_error(res, rc == TE_EINVALID ? 409 : 500, err.msg);
		return;
	}
	ts_logkv(TE_LOG_INFO, "job retried", "job", id, NULL);
	queued_status(s, id);
	ts_workers_wake(s);
	reply(res, 200, json_pack("{s:s,s:s}", "job", id, "status", "queued"));
}

static void project_export(struct ts_response *res, struct ts_server *s,
                           const struct ts_config *cfg, const char *name,
                           const char *body, size_t len)
{
	const te_project *pr = ts_config_project(cfg, name);
	json_error_t jerr;
	json_t *root;
	const char *ref, *commit;
	char lower[41];
	size_t i;

	if (!pr) {
		ts_response_error(res, 404, "unknown project");
		return;
	}
	root = json_loadb(body, len, JSON_REJECT_DUPLICATES, &jerr);
	ref = json_string_value(json_object_get(root, "ref"));
	commit = json_string_value(json_object_get(root, "commit"));
	if (!root || !json_is_object(root) || !ref || !commit) {
		ts_response_error(res, 400,
		                  "expected {\"ref\":\"refs/tags/...\","
		                  "\"commit\":\"<40 hex>\"}");
		goto done;
	}
	if (strncmp(ref, "refs/tags/", 10) != 0 ||
	    !ts_tag_name_valid(ref + 10)) {
		ts_response_error(res, 400,
		                  "ref must be a valid refs/tags/ name");
		goto done;
	}
	if (!ts_oid_valid(commit)) {
		ts_response_error(res, 400, "commit must be 40 hex digits");
		goto done;
	}
	if (!te_project_tag_selected(&pr->tags, ref + 10)) {
		reply(res, 200, json_pack("{s:s}", "ignored", "tag filtered"));
		goto done;
	}
	for (i = 0; i < 40; i++)
		lower[i] = (char)((commit[i] >= 'A' && commit[i] <= 'F')
		                      ? commit[i] - 'A' + 'a'
		                      : commit[i]);
	lower[40] = '\0';
	ts_submit(res, s, pr, ref + 10, lower, NULL, "api");
done:
	json_decref(root);
}

/* Copy one path segment (up to '/' or end) if it is a sane identifier:
 * [A-Za-z0-9._-], so nothing from the URL reaches the queue unchecked. */
static const char *segment(char *out, size_t cap, const char *p)
{
	size_t n = strcspn(p, "/"), i;

	if (n == 0 || n >= cap)
		return NULL;
	for (i = 0; i < n; i++) {
		char c = p[i];
		if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') ||
		      (c >= '0' && c <= '9') || c == '-' || c == '_' ||
		      c == '.'))
			return NULL;
	}
	if (p[0] == '.')
		return NULL;
	memcpy(out, p, n);
	out[n] = '\0';
	return p + n;
}

/* /api/v1/projects/<name>/{exports,poll}, both POST. */
static void project_route(struct ts_response *res, struct ts_server *s,
                          const struct ts_config *cfg, const char *p, bool post,
                          const char *body, size_t body_len)
{
	char name[TE_PROJECT_NAME_MAX + 1];
	const char *rest = segment(name, sizeof(name), p);
	bool exports = rest && !strcmp(rest, "/exports");
	bool poll = rest && !strcmp(rest, "/poll");

	if (!exports && !poll)
		ts_response_error(res, 404, "not found");
	else if (!post)
		ts_response_error(res, 405, "method not allowed");
	else if (exports)
		project_export(res, s, cfg, name, body, body_len);
	else if (!ts_config_project(cfg, name))
		ts_response_error(res, 404, "unknown project");
	else
		ts_poll_now(res, s, cfg, ts_config_project(cfg, name));
}

void ts_api(struct ts_response *res, struct ts_server *s, const char *method,
            const char *url, const char *authorization, const char *body,
            size_t body_len)
{
	struct ts_config *cfg = ts_server_config(s);
	const char *p = url + strlen("/api/v1/"), *q;
	char seg[TS_JOB_ID_MAX + 64], path[512];
	bool get = !strcmp(method, "GET"), post = !strcmp(method, "POST");
	size_t plen;

	if (!ts_bearer_ok(cfg->admin_token, cfg->admin_token_len,
	                  authorization)) {
		ts_response_error(res, 401, "unauthorized");
		goto done;
	}
	q = strchr(p, '?');
	plen = q ? (size_t)(q - p) : strlen(p);
	if (plen >= sizeof(path)) {
		ts_response_error(res, 404, "not found");
		goto done;
	}
	memcpy(path, p, plen);
	path[plen] = '\0';
	if (!strcmp(path, "jobs") && get) {
		list_jobs(res, s, q ? q + 1 : NULL);
	} else if (!strncmp(path, "jobs/", 5)) {
		const char *rest = segment(seg, sizeof(seg), path + 5);
		if (!rest)
			ts_response_error(res, 404, "no such job");
		else if (!*rest && get)
			get_job(res, s, seg);
		else if (!strcmp(rest, "/retry") && post)
			retry_job(res, s, seg);
		else
			ts_response_error(res, 405, "method not allowed");
	} else if (!strncmp(path, "projects/", 9)) {
		project_route(res, s, cfg, path + 9, post, body, body_len);
	} else {
		ts_response_error(res, 404, "not found");
	}
done:
	ts_config_unref(cfg);
}
