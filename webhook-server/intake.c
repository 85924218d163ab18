/*
 * intake.c - POST /hooks/<project> once the body is in (forge.h has the
 * delivery life-cycle).  Answers:
 *   401 missing or wrong signature/token     404 unknown project
 *   400 malformed JSON or payload            403 repository of another project
 *   200 {"ignored":"<reason>"}               202 {"job":"<id>","status":...}
 * 202 is sent only after te_queue_submit returned, i.e. the job is on disk.
 */
#include "server.h"
#include "slog.h"

#include <jansson.h>
#include <stdio.h>
#include <string.h>
#include <strings.h>

void ts_response_init(struct ts_response *res)
{
	res->status = 500;
	res->content_type = "application/json";
	te_buf_init(&res->body, TS_RESPONSE_BODY_MAX);
}

void ts_response_dispose(struct ts_response *res)
{
	te_buf_dispose(&res->body);
}

void ts_response_reset(struct ts_response *res)
{
	if (res->body.cap)
		te_buf_clear(&res->body);
}

static void set_json(struct ts_response *res, unsigned int status, json_t *obj)
{
	char *s = obj ? json_dumps(obj, JSON_COMPACT) : NULL;

	ts_response_reset(res);
	res->status = status;
	res->content_type = "application/json";
	if (!s || te_buf_puts(&res->body, s, NULL) < 0 ||
	    te_buf_puts(&res->body, "\n", NULL) < 0) {
		res->status = 500;
		ts_response_reset(res);
		te_buf_puts(&res->body, "{\"error\":\"out of memory\"}\n",
		            NULL);
	}
	free(s);
	json_decref(obj);
}

void ts_response_error(struct ts_response *res, unsigned int status,
                       const char *msg)
{
	set_json(res, status, json_pack("{s:s}", "error", msg));
}

static void ignored(struct ts_response *res, const char *reason)
{
	set_json(res, 200, json_pack("{s:s}", "ignored", reason));
}

void ts_submit(struct ts_response *res, struct ts_server *s,
               const struct ts_project *pr, const char *tag, const char *commit,
               const char *delivery, const char *source)
{
	char id[TE_JOB_ID_MAX], key[TS_PROJECT_NAME_MAX + TS_DELIVERY_MAX + 2];
	te_job_request req = {pr->name, tag, commit, NULL, source};
	te_error err = TE_ERROR_INIT;
	te_job *job = NULL;
	bool existed = false;
	const char *state = "queued";

	if (delivery && *delivery) {
		/* Delivery ids are per forge, not global: scope them. */
		snprintf(key, sizeof(key), "%s/%s", pr->name, delivery);
		req.delivery_id = key;
	}
	if (te_queue_submit(id, &existed, s->queue, &req, (int64_t)time(NULL),
	                    &err) < 0) {
		ts_logkv(TE_LOG_ERROR, "cannot queue the job", "project",
		         pr->name, "tag", tag, "error", err.msg, NULL);
		ts_response_error(res, 500, "cannot queue the job");
		return;
	}
	if (existed) {
		unsigned long dropped;
		if (te_queue_get(&job, s->queue, id, &err) == 0 && job)
			state = te_job_state_str(job->state);
		/* Replays of one signed delivery are cheap to send: bound
		 * the log lines they cost. */
		if (ts_log_allow(3, &dropped))
			ts_logkv(TE_LOG_INFO, "duplicate delivery", "project",
			         pr->name, "tag", tag, "commit", commit, "job",
			         id, "source", source, NULL);
		set_json(res, 202,
		         json_pack("{s:s,s:s,s:b}", "job", id, "status", state,
		                   "duplicate", 1));
		te_job_free(job);
		return;
	}
	ts_logkv(TE_LOG_INFO, "job queued", "project", pr->name, "tag", tag,
	         "commit", commit, "job", id, "source", source, "delivery",
	         delivery, NULL);
	ts_workers_wake(s);
	set_json(res, 202, json_pack("{s:s,s:s}", "job", id, "status", state));
}

bool ts_intake_begin(struct ts_response *res, struct ts_server *s,
                     const char *project, const struct ts_hook_request *req,
                     struct ts_intake_job *job)
{
	struct ts_config *cfg = ts_server_config(s);
	const struct ts_project *pr = ts_config_project(cfg, project);
	struct ts_hook_event ev;
	te_error err = TE_ERROR_INIT;
	const char *forge, *result = "error";
	unsigned long dropped;
	ts_auth auth;

	memset(&ev, 0, sizeof(ev));
	if (!pr) {
		ts_response_error(res, 404, "unknown project");
		ts_metrics_request(s->metrics, "_unknown", "none", "not_found");
		goto done;
	}
	forge = ts_forge_name(pr->forge);
	auth = ts_forge_verify(pr->forge, pr->secret, pr->secret_len, req);
	if (auth != TS_AUTH_OK) {
		const char *why = auth == TS_AUTH_MISSING ? "missing signature"
		                                          : "bad signature";
		if (ts_log_allow(0, &dropped)) {
			char n[24];
			snprintf(n, sizeof(n), "%lu", dropped);
			ts_logkv(TE_LOG_WARN, "delivery refused", "project",
			         pr->name, "reason", why, "suppressed_before",
			         n, NULL);
		}
		ts_response_error(res, 401, why);
		result = "unauthorized";
		goto count;
	}
	if (ts_forge_parse(&ev, pr->forge, req, &err) < 0) {
		if (ts_log_allow(1, &dropped))
			ts_logkv(TE_LOG_WARN, "bad delivery", "project",
			         pr->name, "error", err.msg, "delivery",
			         ev.delivery, NULL);
		ts_response_error(res, err.code == TE_ENOMEM ? 500 : 400,
		                  err.msg);
		result = "bad_request";
		goto count;
	}
	if (!ev.is_tag) {
		ts_logkv(TE_LOG_DEBUG, "delivery ignored", "project", pr->name,
		         "reason", ev.ignored, "delivery", ev.delivery, NULL);
		ignored(res, ev.ignored);
		result = "ignored";
		goto count;
	}
	if (strcasecmp(ev.repository, pr->repository) != 0) {
		if (ts_log_allow(2, &dropped))
			ts_logkv(TE_LOG_WARN, "delivery refused", "project",
			         pr->name, "reason", "repository mismatch",
			         "repository", ev.repository, NULL);
		ts_response_error(res, 403,
		                  "repository does not match the project");
		result = "forbidden";
		goto count;
	}
	if (!ts_tag_selected(&pr->tags, ev.tag)) {
		ts_logkv(TE_LOG_INFO, "delivery ignored", "project", pr->name,
		         "reason", "tag filtered", "tag", ev.tag, NULL);
		ignored(res, "tag filtered");
		result = "ignored";
		goto count;
	}
	/* A submit is due: hand the event and the config over. */
	job->cfg = cfg;
	job->pr = pr;
	job->ev = ev;
	return true;
count:
	ts_metrics_request(s->metrics, pr->name, forge, result);
done:
	ts_hook_event_dispose(&ev);
	ts_config_unref(cfg);
	return false;
}

void ts_intake_finish(struct ts_response *res, struct ts_server *s,
                      struct ts_intake_job *job)
{
	const struct ts_project *pr = job->pr;

	ts_submit(res, s, pr, job->ev.tag, job->ev.commit, job->ev.delivery,
	          ts_forge_name(pr->forge));
	ts_metrics_request(s->metrics, pr->name, ts_forge_name(pr->forge),
	                   res->status == 202 ? "accepted" : "error");
	ts_hook_event_dispose(&job->ev);
	ts_config_unref(job->cfg);
	job->cfg = NULL;
	job->pr = NULL;
}

void ts_intake(struct ts_response *res, struct ts_server *s,
               const char *project, const struct ts_hook_request *req)
{
	struct ts_intake_job job;

	if (ts_intake_begin(res, s, project, req, &job))
		ts_intake_finish(res, s, &job);
}
