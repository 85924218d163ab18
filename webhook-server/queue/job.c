/*
 * job.c - one job of the queue: field validation, copies, and the
 * JSON form shared by job files and journal lines (queue/job.h).
 */
#include <stdlib.h>
#include <string.h>

#include <jansson.h>

#include "queue/job.h"
#include "tagexport/buf.h"

#define JOB_FILE_VERSION 1
#define LOG_TRUNCATED "[log truncated]\n"

/* ---- fields ------------------------------------------------------------ */

const char *ts_job_state_str(ts_job_state state)
{
	switch (state) {
	case TS_JOB_QUEUED:
		return "queued";
	case TS_JOB_RUNNING:
		return "running";
	case TS_JOB_SUCCEEDED:
		return "succeeded";
	case TS_JOB_FAILED:
		return "failed";
	}
	return "unknown";
}

const char *ts_job_origin(const char *source)
{
	if (!source)
		return "unknown";
	if (!strcmp(source, "github") || !strcmp(source, "gitlab") ||
	    !strcmp(source, "gitea"))
		return "webhook";
	return source;
}

static int state_from_str(ts_job_state *out, const char *s)
{
	int i;

	for (i = TS_JOB_QUEUED; i <= TS_JOB_FAILED; i++) {
		if (strcmp(s, ts_job_state_str((ts_job_state)i)) == 0) {
			*out = (ts_job_state)i;
			return 0;
		}
	}
	return -1;
}

/* Length of the valid UTF-8 sequence at s (n bytes left), 0 if invalid. */
static size_t utf8_seq(const unsigned char *s, size_t n)
{
	unsigned int cp;
	size_t len, i;

	if (s[0] < 0x80)
		return 1;
	if ((s[0] & 0xe0) == 0xc0) {
		len = 2;
		cp = s[0] & 0x1f;
	} else if ((s[0] & 0xf0) == 0xe0) {
		len = 3;
		cp = s[0] & 0x0f;
	} else if ((s[0] & 0xf8) == 0xf0) {
		len = 4;
		cp = s[0] & 0x07;
	} else {
		return 0;
	}
	if (len > n)
		return 0;
	for (i = 1; i < len; i++) {
		if ((s[i] & 0xc0) != 0x80)
			return 0;
		cp = (cp << 6) | (s[i] & 0x3f);
	}
	if ((len == 2 && cp < 0x80) || (len == 3 && cp < 0x800) ||
	    (len == 4 && cp < 0x10000) || cp > 0x10ffff ||
	    (cp >= 0xd800 && cp <= 0xdfff))
		return 0;
	return len;
}

bool ts_job__field_valid(const char *s)
{
	const unsigned char *p = (const unsigned char *)s;
	size_t n, len;

	if (!s)
		return false;
	n = strlen(s);
	if (n == 0 || n > TS_JOB_FIELD_MAX)
		return false;
	while (n > 0) {
		if (*p < 0x20 || *p == 0x7f)
			return false;
		len = utf8_seq(p, n);
		if (len == 0)
			return false;
		p += len;
		n -= len;
	}
	return true;
}

bool ts_job__commit_valid(const char *s)
{
	size_t i;

	if (!s || strlen(s) != 40)
		return false;
	for (i = 0; i < 40; i++)
		if (!((s[i] >= '0' && s[i] <= '9') ||
		      (s[i] >= 'a' && s[i] <= 'f') ||
		      (s[i] >= 'A' && s[i] <= 'F')))
			return false;
	return true;
}

bool ts_job__id_valid(const char *s)
{
	size_t i;

	if (!s || strlen(s) != 19 || s[10] != '-')
		return false;
	for (i = 0; i < 10; i++)
		if (s[i] < '0' || s[i] > '9')
			return false;
	for (i = 11; i < 19; i++)
		if (!((s[i] >= '0' && s[i] <= '9') ||
		      (s[i] >= 'a' && s[i] <= 'f')))
			return false;
	return true;
}

char *ts_job__clean_text(const char *s, size_t len, size_t max, te_error *err)
{
	const unsigned char *p = (const unsigned char *)s;
	bool cut = false;
	te_buf out = TE_BUF_INIT(SIZE_MAX - 1);
	size_t n;

	if (max > 0 && len > max) {
		size_t keep = max - (sizeof(LOG_TRUNCATED) - 1);

		p += len - keep;
		len = keep;
		/* Do not start in the middle of a character. */
		while (len > 0 && (*p & 0xc0) == 0x80) {
			p++;
			len--;
		}
		cut = true;
	}
	if (cut && te_buf_puts(&out, LOG_TRUNCATED, err) < 0)
		goto fail;
	while (len > 0) {
		n = utf8_seq(p, len);
		if (n == 0 || *p == 0x7f ||
		    (*p < 0x20 && *p != '\n' && *p != '\t')) {
			if (te_buf_put(&out, "?", 1, err) < 0)
				goto fail;
			n = 1;
		} else if (te_buf_put(&out, p, n, err) < 0) {
			goto fail;
		}
		p += n;
		len -= n;
	}
	return te_buf_detach(&out);
fail:
	te_buf_dispose(&out);
	return NULL;
}

/* ---- jobs --------------------------------------------------------------- */

void ts_job__dispose(ts_job *job)
{
	free(job->project);
	free(job->tag);
	free(job->delivery_id);
	free(job->source);
	free(job->error);
	free(job->log);
	te_strvec_dispose(&job->results);
	te_strvec_dispose(&job->runners);
	memset(job, 0, sizeof(*job));
}

void ts_job_free(ts_job *job)
{
	if (!job)
		return;
	ts_job__dispose(job);
	free(job);
}

int ts_job__dup_str(char **out, const char *s, te_error *err)
{
	*out = NULL;
	if (!s)
		return 0;
	*out = te_strdup(s, err);
	return *out ? 0 : err->code;
}

int ts_job__copy(ts_job *dst, const ts_job *src, te_error *err)
{
	size_t i;
	int rc;

	memcpy(dst->id, src->id, sizeof(dst->id));
	memcpy(dst->commit, src->commit, sizeof(dst->commit));
	dst->state = src->state;
	dst->attempts = src->attempts;
	dst->created_at = src->created_at;
	dst->updated_at = src->updated_at;
	dst->not_before = src->not_before;
	dst->started_at = src->started_at;
	rc = ts_job__dup_str(&dst->project, src->project, err);
	if (rc == 0)
		rc = ts_job__dup_str(&dst->tag, src->tag, err);
	if (rc == 0)
		rc = ts_job__dup_str(&dst->delivery_id, src->delivery_id, err);
	if (rc == 0)
		rc = ts_job__dup_str(&dst->source, src->source, err);
	if (rc == 0)
		rc = ts_job__dup_str(&dst->error, src->error, err);
	if (rc == 0)
		rc = ts_job__dup_str(&dst->log, src->log, err);
	for (i = 0; rc == 0 && i < src->results.count; i++)
		rc = te_strvec_push(&dst->results, src->results.items[i], err);
	for (i = 0; rc == 0 && i < src->runners.count; i++)
		rc = te_strvec_push(&dst->runners, src->runners.items[i], err);
	return rc;
}

int ts_job__add_runner(ts_job *job, const char *instance, te_error *err)
{
	if (!instance || !*instance)
		return 0;
	/* attempts are unbounded (API retries): keep the latest ones */
	if (job->runners.count >= TS_JOB_RUNNERS_MAX) {
		free(job->runners.items[0]);
		memmove(job->runners.items, job->runners.items + 1,
		        (job->runners.count - 1) * sizeof(char *));
		job->runners.items[--job->runners.count] = NULL;
	}
	return te_strvec_push(&job->runners, instance, err);
}

void ts_job__drop_runner(ts_job *job)
{
	if (job->runners.count == 0)
		return;
	free(job->runners.items[--job->runners.count]);
	job->runners.items[job->runners.count] = NULL;
}

int ts_job__dup(ts_job **out, const ts_job *src, te_error *err)
{
	ts_job *job = calloc(1, sizeof(*job));
	int rc;

	*out = NULL;
	if (!job)
		return te_error_set(err, TE_ENOMEM, "queue: out of memory");
	rc = ts_job__copy(job, src, err);
	if (rc < 0) {
		ts_job_free(job);
		return rc;
	}
	*out = job;
	return 0;
}

static json_t *json_str_or_null(const char *s)
{
	return s ? json_string(s) : json_null();
}

/* "runner": who runs (or last ran) the job, "runners": each attempt's. */
static int put_runners(json_t *root, const ts_job *job, te_error *err)
{
	json_t *arr = json_array();
	size_t i;

	for (i = 0; arr && i < job->runners.count; i++)
		if (json_array_append_new(
		        arr, json_string(job->runners.items[i])) < 0)
			break;
	if (!arr || i < job->runners.count ||
	    json_object_set_new(root, "runners", arr) < 0 ||
	    json_object_set_new(
	        root, "runner",
	        json_string(job->runners.items[job->runners.count - 1])) < 0)
		return te_error_set(err, TE_EINVALID,
		                    "queue: cannot encode the runners");
	return 0;
}

int ts_job__to_json(char **out, size_t *len, const ts_job *job, te_error *err)
{
	json_t *root = NULL, *results = NULL;
	size_t i;
	int rc = 0;

	*out = NULL;
	results = json_array();
	if (!results) {
		rc = te_error_set(err, TE_ENOMEM, "queue: out of memory");
		goto done;
	}
	for (i = 0; i < job->results.count; i++) {
		if (json_array_append_new(
		        results, json_string(job->results.items[i])) < 0) {
			rc = te_error_set(err, TE_EINVALID,
			                  "queue: cannot encode a result");
			goto done;
		}
	}
	root = json_pack(
	    "{s:i, s:s, s:s, s:s, s:s, s:o, s:s, s:s, s:i, s:I, s:I, s:I, "
	    "s:o, s:O, s:s}",
	    "version", JOB_FILE_VERSION, "id", job->id, "project", job->project,
	    "tag", job->tag, "commit", job->commit, "delivery_id",
	    json_str_or_null(job->delivery_id), "source", job->source, "state",
	    ts_job_state_str(job->state), "attempts", job->attempts,
	    "created_at", (json_int_t)job->created_at, "updated_at",
	    (json_int_t)job->updated_at, "not_before",
	    (json_int_t)job->not_before, "error", json_str_or_null(job->error),
	    "results", results, "log", job->log ? job->log : "");
	if (!root) {
		rc = te_error_set(err, TE_EINVALID, "queue: cannot encode job");
		goto done;
	}
	/* Only a job that ran has it: files of older versions lack it. */
	if (job->started_at &&
	    json_object_set_new(root, "started_at",
	                        json_integer((json_int_t)job->started_at)) <
	        0) {
		rc = te_error_set(err, TE_ENOMEM, "queue: out of memory");
		goto done;
	}
	if (job->runners.count && (rc = put_runners(root, job, err)) < 0)
		goto done;
	*out = json_dumps(root, JSON_COMPACT);
	if (!*out) {
		rc = te_error_set(err, TE_ENOMEM, "queue: cannot encode job");
		goto done;
	}
	*len = strlen(*out);
done:
	json_decref(root);
	json_decref(results);
	return rc;
}

int ts_job__from_json(ts_job *job, const char *data, size_t len,
                      const char *expect_id, te_error *err)
{
	json_t *root = NULL, *delivery = NULL, *error = NULL, *results = NULL;
	json_t *runners = NULL;
	json_error_t jerr;
	const char *id, *project, *tag, *commit, *source, *state, *log;
	json_int_t created, updated, not_before, started = 0;
	int version, attempts, rc = 0;
	size_t i;

	memset(job, 0, sizeof(*job));
	root = json_loadb(data, len, JSON_REJECT_DUPLICATES, &jerr);
	if (!root) {
		rc = te_error_set(err, TE_EINVALID, "bad json: %s", jerr.text);
		goto done;
	}
	if (json_unpack_ex(root, &jerr, 0,
	                   "{s:i, s:s, s:s, s:s, s:s, s:o, s:s, s:s, s:i, "
	                   "s:I, s:I, s:I, s:o, s:o, s:s, s?I, s?o}",
	                   "version", &version, "id", &id, "project", &project,
	                   "tag", &tag, "commit", &commit, "delivery_id",
	                   &delivery, "source", &source, "state", &state,
	                   "attempts", &attempts, "created_at", &created,
	                   "updated_at", &updated, "not_before", &not_before,
	                   "error", &error, "results", &results, "log", &log,
	                   "started_at", &started, "runners", &runners) < 0) {
		rc = te_error_set(err, TE_EINVALID, "bad job: %s", jerr.text);
		goto done;
	}
	if (version != JOB_FILE_VERSION ||
	    (expect_id ? strcmp(id, expect_id) != 0 : !ts_job__id_valid(id)) ||
	    !ts_job__field_valid(project) || !ts_job__field_valid(tag) ||
	    !ts_job__commit_valid(commit) || !ts_job__field_valid(source) ||
	    state_from_str(&job->state, state) < 0 || attempts < 0 ||
	    (!json_is_null(delivery) &&
	     !ts_job__field_valid(json_string_value(delivery))) ||
	    (!json_is_null(error) && !json_is_string(error)) ||
	    !json_is_array(results) ||
	    json_array_size(results) > TS_JOB_RESULTS_MAX ||
	    strlen(log) > TS_JOB_LOG_MAX ||
	    (runners && (!json_is_array(runners) ||
	                 json_array_size(runners) > TS_JOB_RUNNERS_MAX))) {
		rc = te_error_set(err, TE_EINVALID, "bad job fields");
		goto done;
	}
	snprintf(job->id, sizeof(job->id), "%s", id);
	snprintf(job->commit, sizeof(job->commit), "%s", commit);
	job->attempts = attempts;
	job->created_at = created;
	job->updated_at = updated;
	job->not_before = not_before;
	job->started_at = started;
	rc = ts_job__dup_str(&job->project, project, err);
	if (rc == 0)
		rc = ts_job__dup_str(&job->tag, tag, err);
	if (rc == 0)
		rc = ts_job__dup_str(&job->delivery_id,
		                     json_string_value(delivery), err);
	if (rc == 0)
		rc = ts_job__dup_str(&job->source, source, err);
	if (rc == 0)
		rc =
		    ts_job__dup_str(&job->error, json_string_value(error), err);
	if (rc == 0)
		rc = ts_job__dup_str(&job->log, log, err);
	for (i = 0; rc == 0 && i < json_array_size(results); i++) {
		const char *r = json_string_value(json_array_get(results, i));

		if (!r) {
			rc = te_error_set(err, TE_EINVALID, "bad result");
			break;
		}
		rc = te_strvec_push(&job->results, r, err);
	}
	for (i = 0; rc == 0 && runners && i < json_array_size(runners); i++) {
		const char *r = json_string_value(json_array_get(runners, i));

		if (!r || !ts_job__field_valid(r)) {
			rc = te_error_set(err, TE_EINVALID, "bad runner");
			break;
		}
		rc = te_strvec_push(&job->runners, r, err);
	}
done:
	if (rc < 0)
		ts_job__dispose(job);
	json_decref(root);
	return rc;
}

/* ---- state changes shared by the drivers --------------------------------- */

/* Replace *field by a cleaned copy of s: with tail, the last max bytes
 * (logs); without, the first max bytes (messages). */
static int set_text(char **field, const char *s, size_t max, bool tail,
                    te_error *err)
{
	char *copy = NULL;
	size_t len;

	if (s) {
		len = strlen(s);
		if (!tail && len > max)
			len = max;
		copy = ts_job__clean_text(s, len, tail ? max : 0, err);
		if (!copy)
			return err->code;
	}
	free(*field);
	*field = copy;
	return 0;
}

void ts_job__requeued(ts_job *next, int64_t now)
{
	next->state = TS_JOB_QUEUED;
	next->not_before = 0;
	next->updated_at = now;
}

int ts_job__claimed(ts_job *next, int64_t now, const char *instance,
                    te_error *err)
{
	next->state = TS_JOB_RUNNING;
	next->attempts++;
	next->updated_at = now;
	next->started_at = now;
	return ts_job__add_runner(next, instance, err);
}

void ts_job__given_back(ts_job *next, int64_t now)
{
	next->state = TS_JOB_QUEUED;
	if (next->attempts > 0)
		next->attempts--;
	ts_job__drop_runner(next);
	next->updated_at = now;
}

int ts_job__finish(ts_job *next, bool success, const char *error,
                   const te_strvec *results, const char *log, int64_t retry_at,
                   int64_t now, te_error *err)
{
	size_t i;
	int rc;

	te_strvec_dispose(&next->results);
	if (success) {
		next->state = TS_JOB_SUCCEEDED;
		rc = set_text(&next->error, NULL, 0, false, err);
		for (i = 0; rc == 0 && results && i < results->count &&
		            i < TS_JOB_RESULTS_MAX;
		     i++) {
			const char *item = results->items[i];
			char *r;

			if (strlen(item) > TS_JOB_RESULT_MAX) {
				rc = te_error_set(err, TE_EINVALID,
				                  "queue: result too long");
				break;
			}
			r = ts_job__clean_text(item, strlen(item), 0, err);
			rc = r ? te_strvec_push_owned(&next->results, r, err)
			       : err->code;
		}
	} else {
		next->state = retry_at > 0 ? TS_JOB_QUEUED : TS_JOB_FAILED;
		next->not_before = retry_at > 0 ? retry_at : next->not_before;
		rc = set_text(&next->error, error ? error : "unknown error",
		              TS_JOB_ERROR_MAX, false, err);
	}
	if (rc == 0)
		rc = set_text(&next->log, log, TS_JOB_LOG_MAX, true, err);
	next->updated_at = now;
	return rc;
}

int ts_job__request_valid(const ts_job_request *req, te_error *err)
{
	if (!req)
		return te_error_set(err, TE_EINVALID, "queue: no request");
	if (!ts_job__field_valid(req->project))
		return te_error_set(err, TE_EINVALID,
		                    "queue: invalid project name");
	if (!ts_job__field_valid(req->tag) || strlen(req->tag) > 200)
		return te_error_set(err, TE_EINVALID,
		                    "queue: invalid tag name");
	if (!ts_job__commit_valid(req->commit))
		return te_error_set(err, TE_EINVALID,
		                    "queue: commit must be 40 hex digits");
	if (req->delivery_id && *req->delivery_id &&
	    !ts_job__field_valid(req->delivery_id))
		return te_error_set(err, TE_EINVALID,
		                    "queue: invalid delivery id");
	if (!ts_job__field_valid(req->source))
		return te_error_set(err, TE_EINVALID, "queue: invalid source");
	return 0;
}

void ts_job__lower_commit(char out[41], const char *commit)
{
	size_t i;

	for (i = 0; i < 40; i++)
		out[i] = (char)((commit[i] >= 'A' && commit[i] <= 'F')
		                    ? commit[i] - 'A' + 'a'
		                    : commit[i]);
	out[40] = '\0';
}
