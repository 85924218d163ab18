/*
 * intake.c - POST /hooks/<project> once the body is in (forge.h has the
 * delivery life-cycle) for a known project (server.c answers 404 to the
 * others).  Answers:
 *   401 missing or wrong signature/token     403 repository of another project
 *   400 malformed JSON or payload
 *   200 {"ignored":"<reason>"}               202 {"job":"<id>","status":...}
 * 202 is sent only once ts_queue_wait returned for the job's record, i.e.
 * the job is on disk.
 * The answers that never vary are fixed ones (server.h): the HTTP layer
 * sends them prebuilt.
 */
#include "server.h"
#include "slog.h"
#include "status.h"

#include <jansson.h>
#include <stdio.h>
#include <string.h>
#include <strings.h>

static const struct {
	unsigned int status;
	const char *key, *text;
} fixed[TS_FIXED_COUNT] = {
    [TS_FIXED_NOT_FOUND] = {404, "error", "not found"},
    [TS_FIXED_UNKNOWN_PROJECT] = {404, "error", "unknown project"},
    [TS_FIXED_METHOD] = {405, "error", "method not allowed"},
    [TS_FIXED_TOO_LARGE] = {413, "error", "body too large"},
    [TS_FIXED_MISSING_SIGNATURE] = {401, "error", "missing signature"},
    [TS_FIXED_BAD_SIGNATURE] = {401, "error", "bad signature"},
    [TS_FIXED_UNAUTHORIZED] = {401, "error", "unauthorized"},
    [TS_FIXED_BUSY] = {503, "error",
                       "too many unauthenticated bodies pending, retry later"},
    [TS_FIXED_IGNORED_PING] = {200, "ignored", "ping"},
    [TS_FIXED_IGNORED_CREATE] = {200, "ignored",
                                 "create event (the push event triggers)"},
    [TS_FIXED_IGNORED_EVENT] = {200, "ignored", "event not handled"},
    [TS_FIXED_IGNORED_BRANCH_PUSH] = {200, "ignored", "branch push"},
    [TS_FIXED_IGNORED_BRANCH_CREATED] = {200, "ignored", "branch created"},
    [TS_FIXED_IGNORED_TAG_DELETED] = {200, "ignored", "tag deleted"},
    [TS_FIXED_IGNORED_TAG_FILTERED] = {200, "ignored", "tag filtered"},
};

void ts_response_init(struct ts_response *res)
{
	res->status = 500;
	res->content_type = "application/json";
	res->fixed = TS_FIXED_NONE;
	te_buf_init(&res->body, TS_RESPONSE_BODY_MAX);
}

void ts_response_dispose(struct ts_response *res)
{
	te_buf_dispose(&res->body);
}

void ts_response_reset(struct ts_response *res)
{
	res->fixed = TS_FIXED_NONE;
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

void ts_response_fixed(struct ts_response *res, enum ts_fixed which)
{
	ts_response_reset(res);
	res->status = fixed[which].status;
	res->content_type = "application/json";
	res->fixed = which;
}

void ts_response_fixed_body(struct ts_response *res, enum ts_fixed which)
{
	set_json(res, fixed[which].status,
	         json_pack("{s:s}", fixed[which].key, fixed[which].text));
}

static void ignored(struct ts_response *res, const char *reason)
{
	int i;

	for (i = TS_FIXED_IGNORED_PING; i < TS_FIXED_COUNT; i++)
		if (!strcmp(fixed[i].text, reason)) {
			ts_response_fixed(res, (enum ts_fixed)i);
			return;
		}
	set_json(res, 200, json_pack("{s:s}", "ignored", reason));
}

void ts_status_queued(struct ts_server *s, const char *id, const char *project,
                      const char *tag, const char *commit)
{
	struct ts_config *cfg = ts_server_config(s);
	struct ts_status_info info = {.job_id = id,
	                              .project = project,
	                              .tag = tag,
	                              .commit = commit,
	                              .event = TS_STATUS_QUEUED};

	ts_status_post(s->status, cfg, &info);
	ts_config_unref(cfg);
}

bool ts_submission_record(struct ts_response *res, struct ts_server *s,
                          struct ts_submission *sub)
{
	ts_job_request req = {sub->pr->name, sub->tag, sub->commit, NULL,
	                      sub->source};
	te_error err = TE_ERROR_INIT;

	if (sub->delivery && *sub->delivery) {
		/* Delivery ids are per forge, not global: scope them. */
		snprintf(sub->key, sizeof(sub->key), "%s/%s", sub->pr->name,
		         sub->delivery);
		req.delivery_id = sub->key;
	}
	if (ts_queue_submit_nowait(sub->id, &sub->outcome, &sub->ticket,
	                           s->queue, &req, (int64_t)time(NULL),
	                           &err) < 0) {
		ts_logkv(TE_LOG_ERROR, "cannot queue the job", "project",
		         sub->pr->name, "tag", sub->tag, "error", err.msg,
		         NULL);
		/* database unreachable: 503, the forge delivers again */
		ts_response_error(res, err.code == TE_ENET ? 503 : 500,
		                  "cannot queue the job");
		return false;
	}
	/* Before the wait for the disk: a worker may claim the job at once,
	 * and its "running" must come after this. */
	if (sub->outcome != TS_SUBMIT_EXISTING)
		ts_status_queued(s, sub->id, sub->pr->name, sub->tag,
		                 sub->commit);
	return true;
}

void ts_submission_answer(struct ts_response *res, struct ts_server *s,
                          const struct ts_submission *sub, const te_error *wait)
{
	const char *state = "queued";
	te_error err = TE_ERROR_INIT;
	unsigned long dropped;
	ts_job_state now;
	bool requeued;

	if (wait->code != TE_OK) {
		/* Not on disk: the forge's retry will find the job again. */
		ts_logkv(TE_LOG_ERROR, "cannot queue the job", "project",
		         sub->pr->name, "tag", sub->tag, "job", sub->id,
		         "error", wait->msg, NULL);
		ts_response_error(res, 500, "cannot queue the job");
		return;
	}
	if (sub->outcome == TS_SUBMIT_EXISTING) {
		if (ts_queue_state(&now, s->queue, sub->id, &err) == 0)
			state = ts_job_state_str(now);
		/* Replays of one signed delivery are cheap to send: bound
		 * the log lines they cost. */
		if (ts_log_allow(TS_LOG_KEY_DUPLICATE, &dropped))
			ts_logkv(TE_LOG_INFO, "duplicate delivery", "project",
			         sub->pr->name, "tag", sub->tag, "commit",
			         sub->commit, "job", sub->id, "source",
			         sub->source, NULL);
		set_json(res, 202,
		         json_pack("{s:s,s:s,s:b}", "job", sub->id, "status",
		                   state, "duplicate", 1));
		return;
	}
	/* A failed job that a new delivery (or the same one again) queued
	 * again is logged every time: only a job that failed gets there, and
	 * it fails before a replay can queue it once more. */
	requeued = sub->outcome == TS_SUBMIT_REQUEUED;
	ts_logkv(TE_LOG_INFO,
	         requeued ? "failed job queued again" : "job queued", "project",
	         sub->pr->name, "tag", sub->tag, "commit", sub->commit, "job",
	         sub->id, "source", sub->source, "delivery", sub->delivery,
	         NULL);
	ts_workers_wake(s);
	/* The queue made the id ([0-9a-f-] only): nothing to escape, and
	 * no JSON tree for the busiest answer. */
	ts_response_reset(res);
	res->status = 202;
	res->content_type = "application/json";
	if (te_buf_printf(
	        &res->body, NULL, "{\"job\":\"%s\",\"status\":\"%s\"%s}\n",
	        sub->id, state,
	        requeued ? ",\"duplicate\":true,\"requeued\":true" : "") < 0)
		ts_response_error(res, 500, "out of memory");
}

void ts_submit(struct ts_response *res, struct ts_server *s,
               const te_project *pr, const char *tag, const char *commit,
               const char *delivery, const char *source)
{
	struct ts_submission sub = {.pr = pr,
	                            .tag = tag,
	                            .commit = commit,
	                            .delivery = delivery,
	                            .source = source};
	te_error err = TE_ERROR_INIT;

	if (ts_submission_record(res, s, &sub)) {
		ts_queue_wait(s->queue, &sub.ticket, &err);
		ts_submission_answer(res, s, &sub, &err);
	}
}

bool ts_intake_begin(struct ts_response *res, struct ts_server *s,
                     struct ts_config *cfg, const te_project *pr,
                     const struct ts_hook_request *req,
                     struct ts_intake_job *job)
{
	struct ts_hook_event ev;
	te_error err = TE_ERROR_INIT;
	const char *result = "error";
	unsigned long dropped;
	ts_auth auth;

	memset(&ev, 0, sizeof(ev));
	auth = ts_forge_verify(pr->forge, pr->secret, pr->secret_len,
	                       ts_config_hmac(cfg, pr), req);
	if (auth != TS_AUTH_OK) {
		const char *why = auth == TS_AUTH_MISSING ? "missing signature"
		                                          : "bad signature";
		if (ts_log_allow(TS_LOG_KEY_REFUSED, &dropped)) {
			char n[24];
			snprintf(n, sizeof(n), "%lu", dropped);
			ts_logkv(TE_LOG_WARN, "delivery refused", "project",
			         pr->name, "reason", why, "suppressed_before",
			         n, NULL);
		}
		ts_response_fixed(res, auth == TS_AUTH_MISSING
		                           ? TS_FIXED_MISSING_SIGNATURE
		                           : TS_FIXED_BAD_SIGNATURE);
		result = "unauthorized";
		goto done;
	}
	if (ts_forge_parse(&ev, pr->forge, req, &err) < 0) {
		if (ts_log_allow(TS_LOG_KEY_MALFORMED, &dropped))
			ts_logkv(TE_LOG_WARN, "bad delivery", "project",
			         pr->name, "error", err.msg, "delivery",
			         ev.delivery, NULL);
		ts_response_error(res, err.code == TE_ENOMEM ? 500 : 400,
		                  err.msg);
		result = "bad_request";
		goto done;
	}
	if (!ev.is_tag) {
		ts_logkv(TE_LOG_DEBUG, "delivery ignored", "project", pr->name,
		         "reason", ev.ignored, "delivery", ev.delivery, NULL);
		ignored(res, ev.ignored);
		result = "ignored";
		goto done;
	}
	if (strcasecmp(ev.repository, pr->repository) != 0) {
		if (ts_log_allow(TS_LOG_KEY_FOREIGN, &dropped))
			ts_logkv(TE_LOG_WARN, "delivery refused", "project",
			         pr->name, "reason", "repository mismatch",
			         "repository", ev.repository, NULL);
		ts_response_error(res, 403,
		                  "repository does not match the project");
		result = "forbidden";
		goto done;
	}
	if (!te_project_tag_selected(&pr->tags, ev.tag)) {
		if (ts_log_allow(TS_LOG_KEY_FILTERED, &dropped))
			ts_logkv(TE_LOG_INFO, "delivery ignored", "project",
			         pr->name, "reason", "tag filtered", "tag",
			         ev.tag, NULL);
		ignored(res, "tag filtered");
		result = "ignored";
		goto done;
	}
	/* A submit is due: record it; the event and the config go to job. */
	memset(job, 0, sizeof(*job));
	job->ev = ev;
	memset(&ev, 0, sizeof(ev));
	job->sub.pr = pr;
	job->sub.tag = job->ev.tag;
	job->sub.commit = job->ev.commit;
	job->sub.delivery = job->ev.delivery;
	job->sub.source = te_forge_name(pr->forge);
	if (!ts_submission_record(res, s, &job->sub)) {
		result = "error";
		ts_hook_event_dispose(&job->ev);
		goto done;
	}
	ts_config_ref(cfg);
	job->cfg = cfg;
	return true;
done:
	ts_metrics_request(s->metrics, pr->name, te_forge_name(pr->forge),
	                   result);
	ts_hook_event_dispose(&ev);
	return false;
}

void ts_intake_finish(struct ts_response *res, struct ts_server *s,
                      struct ts_intake_job *job, const te_error *wait)
{
	const te_project *pr = job->sub.pr;

	ts_submission_answer(res, s, &job->sub, wait);
	ts_metrics_request(s->metrics, pr->name, te_forge_name(pr->forge),
	                   res->status == 202 ? "accepted" : "error");
	ts_hook_event_dispose(&job->ev);
	ts_config_unref(job->cfg);
	job->cfg = NULL;
}
