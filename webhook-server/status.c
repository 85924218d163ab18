/*
 * status.c - commit statuses on the forge (status.h): building the
 * requests, and the sender threads that deliver them with libcurl.
 *
 * The sender keeps one stream per job: a FIFO of requests and the last
 * event posted.  A thread takes a stream that no other thread holds and
 * whose head is due, sends the head, and on a retryable failure leaves it
 * at the head with a later due time: the job's later statuses wait behind
 * it, other jobs do not.  A stream goes when it is empty and its job
 * reached a final state; idle streams of jobs that never do (a job whose
 * status section was removed by a reload) are bounded by
 * STATUS_IDLE_MAX.
 */
#include "status.h"
#include "forge.h"
#include "slog.h"
#include "queue/queue.h"
#include "tagexport/retry.h"

#include <curl/curl.h>
#include <jansson.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#define STATUS_QUEUE_MAX 10000 /* requests waiting, all jobs together */
#define STATUS_IDLE_MAX 1024   /* empty streams kept for their last event */
#define STATUS_RETRY_AFTER_MAX 60
#define STATUS_CONNECT_TIMEOUT 5L
#define STATUS_TIMEOUT 10L
#define STATUS_ANSWER_MAX 200 /* bytes of an error answer kept for the log */

const char *ts_status_state(te_forge forge, ts_status_event ev)
{
	switch (ev) {
	case TS_STATUS_QUEUED:
		return "pending";
	case TS_STATUS_RUNNING:
		return forge == TE_FORGE_GITLAB ? "running" : "pending";
	case TS_STATUS_SUCCEEDED:
		return "success";
	case TS_STATUS_FAILED:
		break;
	}
	return forge == TE_FORGE_GITLAB ? "failed" : "failure";
}

/* Length of the longest prefix of s of at most max bytes that ends on a
 * UTF-8 character boundary. */
static size_t utf8_cut(const char *s, size_t len, size_t max)
{
	if (len <= max)
		return len;
	while (max > 0 && ((unsigned char)s[max] & 0xc0) == 0x80)
		max--;
	return max;
}

/* Whether s is UTF-8 that a JSON string can hold (jansson checks: no
 * overlongs, no surrogates, at most U+10FFFF). */
static bool utf8_ok(const char *s, size_t len)
{
	json_t *probe = json_stringn(s, len);

	json_decref(probe);
	return probe != NULL;
}

/* A long error keeps its first two "context: " parts when they fit (the
 * image and what failed), not the start of a tool's output. */
static size_t cut(const char *line, size_t len)
{
	size_t i, end = 0;
	int parts = 0;

	if (len <= TS_STATUS_DESCRIPTION_MAX)
		return len;
	for (i = 0; i + 1 < len && i <= TS_STATUS_DESCRIPTION_MAX; i++)
		if (line[i] == ':' && line[i + 1] == ' ') {
			end = i;
			if (++parts == 2)
				break;
		}
	return end ? end : utf8_cut(line, len, TS_STATUS_DESCRIPTION_MAX);
}

void ts_status_describe(char out[TS_STATUS_DESCRIPTION_MAX + 1],
                        ts_status_event ev, int attempt, int max_attempts,
                        size_t nimages, const char *error)
{
	char line[1024];
	bool bad_utf8;
	size_t len, i;

	switch (ev) {
	case TS_STATUS_QUEUED:
		snprintf(line, sizeof(line), "export queued");
		break;
	case TS_STATUS_RUNNING:
		/* a retry through the API may go past max_attempts */
		if (attempt > 1 && attempt <= max_attempts)
			snprintf(line, sizeof(line),
			         "export running (attempt %d of %d)", attempt,
			         max_attempts);
		else if (attempt > 1)
			snprintf(line, sizeof(line),
			         "export running (attempt %d)", attempt);
		else
			snprintf(line, sizeof(line), "export running");
		break;
	case TS_STATUS_SUCCEEDED:
		snprintf(line, sizeof(line), "exported %zu image%s", nimages,
		         nimages == 1 ? "" : "s");
		break;
	case TS_STATUS_FAILED:
		snprintf(line, sizeof(line), "%s",
		         error && *error ? error : "export failed");
		break;
	}
	len = strcspn(line, "\r\n");
	/* JSON strings are UTF-8: a line that is not keeps its ASCII */
	bad_utf8 = !utf8_ok(line, len);
	for (i = 0; i < len; i++)
		if ((unsigned char)line[i] < 0x20 || line[i] == 0x7f)
			line[i] = ' ';
		else if (bad_utf8 && (unsigned char)line[i] >= 0x80)
			line[i] = '?';
	len = cut(line, len);
	memcpy(out, line, len);
	out[len] = '\0';
}

/* Percent-encode everything but RFC 3986 unreserved characters and, when
 * keep_slash, '/' (GitLab wants the whole path as one segment). */
static int put_encoded(te_buf *b, const char *s, bool keep_slash)
{
	static const char hex[] = "0123456789ABCDEF";
	char esc[3];

	for (; *s; s++) {
		unsigned char c = (unsigned char)*s;
		if ((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') ||
		    (c >= '0' && c <= '9') || c == '-' || c == '.' ||
		    c == '_' || c == '~' || (keep_slash && c == '/')) {
			if (te_buf_put(b, s, 1, NULL) < 0)
				return TE_ENOMEM;
			continue;
		}
		esc[0] = '%';
		esc[1] = hex[c >> 4];
		esc[2] = hex[c & 15];
		if (te_buf_put(b, esc, 3, NULL) < 0)
			return TE_ENOMEM;
	}
	return 0;
}

static char *build_url(const te_project *pr, const char *commit)
{
	bool gitlab = pr->forge == TE_FORGE_GITLAB;
	te_buf b = TE_BUF_INIT(16 * 1024);

	if (te_buf_printf(&b, NULL, "%s/%s/", pr->status.api_url,
	                  gitlab ? "projects" : "repos") < 0 ||
	    put_encoded(&b, pr->repository, !gitlab) < 0 ||
	    te_buf_printf(&b, NULL, "/statuses/%s", commit) < 0) {
		te_buf_dispose(&b);
		return NULL;
	}
	return te_buf_detach(&b);
}

static char *build_auth(const te_project *pr)
{
	const char *name = pr->forge == TE_FORGE_GITHUB   ? "Authorization: "
	                                                    "Bearer "
	                   : pr->forge == TE_FORGE_GITLAB ? "PRIVATE-TOKEN: "
	                                                  : "Authorization: "
	                                                    "token ";
	size_t need = strlen(name) + pr->status.token_len + 1;
	char *s = malloc(need);

	if (s)
		snprintf(s, need, "%s%s", name, pr->status.token);
	return s;
}

static char *build_body(const te_project *pr, const char *public_url,
                        const struct ts_status_info *info,
                        const struct ts_status_msg *m)
{
	json_t *o = json_object();
	char url[4096];
	char *s = NULL;
	bool gitlab = pr->forge == TE_FORGE_GITLAB;
	int rc = 0;

	if (!o)
		return NULL;
	rc |= json_object_set_new(o, "state", json_string(m->state));
	rc |= json_object_set_new(o, gitlab ? "name" : "context",
	                          json_string(pr->status.context));
	rc |=
	    json_object_set_new(o, "description", json_string(m->description));
	if (gitlab)
		rc |= json_object_set_new(o, "ref", json_string(info->tag));
	if (public_url) {
		snprintf(url, sizeof(url), "%s/jobs/%s", public_url,
		         info->job_id);
		rc |= json_object_set_new(o, "target_url", json_string(url));
	}
	if (rc == 0)
		s = json_dumps(o, JSON_COMPACT);
	json_decref(o);
	return s;
}

int ts_status_msg_new(struct ts_status_msg **out, const te_project *pr,
                      const char *public_url, const struct ts_status_info *info,
                      te_error *err)
{
	struct ts_status_msg *m = NULL;
	size_t i;
	int rc = 0;

	*out = NULL;
	if (!pr->status.enabled)
		return te_error_set(err, TE_EINVALID,
		                    "project %s has no status section",
		                    pr->name);
	if (!ts_oid_valid(info->commit))
		return te_error_set(err, TE_EINVALID, "bad commit id");
	m = calloc(1, sizeof(*m));
	if (!m)
		return te_error_set(err, TE_ENOMEM, "out of memory");
	m->forge = pr->forge;
	m->event = info->event;
	m->state = ts_status_state(pr->forge, info->event);
	for (i = 0; i < 40; i++)
		m->commit[i] = (char)(info->commit[i] | 0x20); /* lowercase */
	m->url = build_url(pr, m->commit);
	m->auth = build_auth(pr);
	ts_status_describe(m->description, info->event, info->attempt,
	                   info->max_attempts, info->nimages, info->error);
	m->body = build_body(pr, public_url, info, m);
	m->repository = strdup(pr->repository);
	if (!m->body && !utf8_ok(info->tag, strlen(info->tag))) {
		rc = te_error_set(err, TE_EINVALID, "tag is not UTF-8");
		goto done;
	}
	if (!m->url || !m->auth || !m->body || !m->repository) {
		rc = te_error_set(err, TE_ENOMEM, "out of memory");
		goto done;
	}
	*out = m;
	m = NULL;
done:
	ts_status_msg_free(m);
	return rc;
}

void ts_status_msg_free(struct ts_status_msg *m)
{
	if (!m)
		return;
	if (m->auth) {
		explicit_bzero(m->auth, strlen(m->auth));
		free(m->auth);
	}
	free(m->url);
	free(m->body);
	free(m->repository);
	free(m);
}

/* 4, 8, 16, 32 s without jitter (one status per job, no herd): five
 * tries span about a minute, two with the request timeouts. */
static const te_retry_policy status_policy = {
    .attempts = TS_STATUS_TRIES,
    .base_ms = 4000,
    .max_delay_ms = 32000,
    .total_ms = 0,
    .retry_after_cap_ms = STATUS_RETRY_AFTER_MAX * 1000L,
    .jitter_pct = 0,
    .retry_403_with_retry_after = true,
};

int ts_status_retry_delay(int tries, long http_status, long retry_after)
{
	te_retry_try t;
	long ms;

	memset(&t, 0, sizeof(t));
	t.attempt = tries;
	t.net = http_status == 0 ? TE_RETRY_NET_TRANSIENT : TE_RETRY_NET_OK;
	t.status = http_status;
	/* clamped first: the product must not overflow */
	if (retry_after > STATUS_RETRY_AFTER_MAX)
		retry_after = STATUS_RETRY_AFTER_MAX;
	t.retry_after_ms = retry_after > 0 ? retry_after * 1000 : -1;
	ms = te_retry_decide(&status_policy, &t);
	return ms < 0 ? -1 : (int)(ms / 1000);
}

/* ---- the sender ---------------------------------------------------------- */

struct item {
	struct ts_status_msg *msg;
	int tries;
	time_t due;
	struct item *next;
};

struct stream {
	char job_id[TS_JOB_ID_MAX];
	ts_status_event last; /* the last event posted */
	bool busy;            /* a thread is sending its head */
	struct item *head, *tail;
	struct stream *next;
};

struct ts_status {
	pthread_mutex_t lock;
	pthread_cond_t cond;
	struct stream *streams;
	size_t queued; /* items in all streams */
	size_t idle;   /* streams with no item */
	unsigned long dropped;
	bool stopping;
	atomic_long deadline; /* when stopping: abort transfers after it */
	pthread_t threads[TS_STATUS_THREADS];
	int nthreads;
};

static bool final(ts_status_event ev)
{
	return ev == TS_STATUS_SUCCEEDED || ev == TS_STATUS_FAILED;
}

static void item_free(struct item *it)
{
	ts_status_msg_free(it->msg);
	free(it);
}

static struct stream *stream_find(struct ts_status *st, const char *id)
{
	struct stream *s;

	for (s = st->streams; s; s = s->next)
		if (!strcmp(s->job_id, id))
			return s;
	return NULL;
}

static void stream_unlink(struct ts_status *st, struct stream *gone)
{
	struct stream **p;

	for (p = &st->streams; *p; p = &(*p)->next)
		if (*p == gone) {
			*p = gone->next;
			break;
		}
	if (!gone->head)
		st->idle--;
	while (gone->head) {
		struct item *it = gone->head;
		gone->head = it->next;
		st->queued--;
		item_free(it);
	}
	free(gone);
}

/* Forget the oldest idle stream (the list is newest first). */
static void idle_trim(struct ts_status *st)
{
	struct stream *s, *oldest = NULL;

	if (st->idle <= STATUS_IDLE_MAX)
		return;
	for (s = st->streams; s; s = s->next)
		if (!s->head && !s->busy)
			oldest = s;
	if (oldest)
		stream_unlink(st, oldest);
}

/* Whether a new event for stream s must not be sent (status.h). */
static bool superseded(const struct stream *s, const struct ts_status_msg *m)
{
	if (!s)
		return false;
	if (m->event == TS_STATUS_QUEUED && s->last == TS_STATUS_RUNNING)
		return true;
	return m->forge == TE_FORGE_GITLAB && m->event == TS_STATUS_RUNNING &&
	       s->last == TS_STATUS_RUNNING;
}

/* Append m (taken) to job_id's stream; false when it was dropped. */
static bool enqueue(struct ts_status *st, const char *job_id,
                    struct ts_status_msg *m)
{
	struct stream *s = stream_find(st, job_id);
	struct item *it = NULL;

	if (st->stopping || st->queued >= STATUS_QUEUE_MAX || superseded(s, m))
		goto drop;
	it = calloc(1, sizeof(*it));
	if (!it)
		goto drop;
	if (!s) {
		s = calloc(1, sizeof(*s));
		if (!s)
			goto drop;
		snprintf(s->job_id, sizeof(s->job_id), "%s", job_id);
		s->next = st->streams;
		st->streams = s;
		st->idle++;
	}
	if (!s->head)
		st->idle--;
	it->msg = m;
	it->due = time(NULL);
	if (s->tail && s->head)
		s->tail->next = it;
	else
		s->head = it;
	s->tail = it;
	s->last = m->event;
	st->queued++;
	pthread_cond_signal(&st->cond);
	return true;
drop:
	free(it);
	ts_status_msg_free(m);
	return false;
}

void ts_status_post(struct ts_status *st, const struct ts_config *cfg,
                    const struct ts_status_info *info)
{
	const te_project *pr;
	struct ts_status_msg *m = NULL;
	te_error err = TE_ERROR_INIT;
	bool full;

	if (!st)
		return;
	pr = ts_config_project(cfg, info->project);
	if (!pr || !pr->status.enabled)
		return;
	if (ts_status_msg_new(&m, pr, cfg->public_url, info, &err) < 0) {
		ts_logkv(TE_LOG_ERROR, "cannot build a commit status", "job",
		         info->job_id, "project", pr->name, "error", err.msg,
		         NULL);
		return;
	}
	pthread_mutex_lock(&st->lock);
	full = st->queued >= STATUS_QUEUE_MAX;
	if (!enqueue(st, info->job_id, m) && full)
		st->dropped++;
	pthread_mutex_unlock(&st->lock);
}

struct answer {
	char text[STATUS_ANSWER_MAX + 1];
	size_t len;
};

static size_t keep_answer(char *data, size_t size, size_t n, void *arg)
{
	struct answer *a = arg;
	size_t len = size * n, room = STATUS_ANSWER_MAX - a->len;

	if (len < room)
		room = len;
	memcpy(a->text + a->len, data, room);
	a->len += room;
	a->text[a->len] = '\0';
	return len;
}

/* Abort a transfer once a stopping sender's drain time is over. */
static int progress(void *arg, curl_off_t dlt, curl_off_t dln, curl_off_t ult,
                    curl_off_t uln)
{
	struct ts_status *st = arg;
	long deadline = atomic_load(&st->deadline);

	(void)dlt;
	(void)dln;
	(void)ult;
	(void)uln;
	return deadline != 0 && (long)time(NULL) >= deadline;
}

/* One try; returns the HTTP status (0: none) and sets *retry_after. */
static long send_one(struct ts_status *st, const struct ts_status_msg *m,
                     long *retry_after, char *why, size_t whysize)
{
	struct curl_slist *h = NULL, *h2;
	struct answer ans = {"", 0};
	char errbuf[CURL_ERROR_SIZE] = "";
	curl_off_t ra = 0;
	long code = 0;
	CURL *c = curl_easy_init();
	CURLcode rc;

	*retry_after = 0;
	snprintf(why, whysize, "out of memory");
	if (!c)
		return 0;
	h = curl_slist_append(NULL, "Content-Type: application/json");
	h2 = h ? curl_slist_append(h, m->auth) : NULL;
	h = h2 ? curl_slist_append(h2,
	                           m->forge == TE_FORGE_GITHUB
	                               ? "Accept: application/vnd.github+json"
	                               : "Accept: application/json")
	       : NULL;
	if (!h) {
		curl_slist_free_all(h2);
		goto done;
	}
	curl_easy_setopt(c, CURLOPT_URL, m->url);
	curl_easy_setopt(c, CURLOPT_PROTOCOLS_STR, "http,https");
	curl_easy_setopt(c, CURLOPT_HTTPHEADER, h);
	curl_easy_setopt(c, CURLOPT_POSTFIELDS, m->body);
	curl_easy_setopt(c, CURLOPT_USERAGENT, "tagexport-server");
	curl_easy_setopt(c, CURLOPT_NOSIGNAL, 1L);
	curl_easy_setopt(c, CURLOPT_CONNECTTIMEOUT, STATUS_CONNECT_TIMEOUT);
	curl_easy_setopt(c, CURLOPT_TIMEOUT, STATUS_TIMEOUT);
	curl_easy_setopt(c, CURLOPT_ERRORBUFFER, errbuf);
	curl_easy_setopt(c, CURLOPT_WRITEFUNCTION, keep_answer);
	curl_easy_setopt(c, CURLOPT_WRITEDATA, &ans);
	curl_easy_setopt(c, CURLOPT_XFERINFOFUNCTION, progress);
	curl_easy_setopt(c, CURLOPT_XFERINFODATA, st);
	curl_easy_setopt(c, CURLOPT_NOPROGRESS, 0L);
	rc = curl_easy_perform(c);
	if (rc != CURLE_OK) {
		/* errbuf names the host, never the headers. */
		snprintf(why, whysize, "%s",
		         *errbuf ? errbuf : curl_easy_strerror(rc));
		goto done;
	}
	curl_easy_getinfo(c, CURLINFO_RESPONSE_CODE, &code);
	curl_easy_getinfo(c, CURLINFO_RETRY_AFTER, &ra);
	*retry_after = ra > 0 ? (long)ra : 0;
	snprintf(why, whysize, "%s", ans.text);
done:
	curl_slist_free_all(h);
	curl_easy_cleanup(c);
	return code;
}

/* A stream no thread holds whose head is due (or anything, when
 * stopping); else NULL and *next_due the earliest due time. */
static struct stream *take(struct ts_status *st, time_t now, time_t *next_due)
{
	struct stream *s;

	*next_due = now + 60;
	for (s = st->streams; s; s = s->next) {
		if (s->busy || !s->head)
			continue;
		if (st->stopping || s->head->due <= now) {
			s->busy = true;
			return s;
		}
		if (s->head->due < *next_due)
			*next_due = s->head->due;
	}
	return NULL;
}

static void log_outcome(const struct item *it, long code, const char *why,
                        bool delivered, int delay)
{
	const struct ts_status_msg *m = it->msg;
	char status[16], tries[16];

	snprintf(status, sizeof(status), "%ld", code);
	snprintf(tries, sizeof(tries), "%d", it->tries);
	if (delivered) {
		ts_logkv(TE_LOG_DEBUG, "commit status delivered", "forge",
		         te_forge_name(m->forge), "repository", m->repository,
		         "sha", m->commit, "state", m->state, NULL);
		return;
	}
	ts_logkv(delay >= 0 ? TE_LOG_INFO : TE_LOG_WARN,
	         delay >= 0 ? "commit status not delivered, will retry"
	                    : "commit status not delivered",
	         "forge", te_forge_name(m->forge), "repository", m->repository,
	         "sha", m->commit, "state", m->state, "http_status", status,
	         "tries", tries, "error", why, NULL);
}

/* Send s's head, called without st->lock; returns with it held, the
 * outcome recorded. */
static void deliver(struct ts_status *st, struct stream *s)
{
	struct item *it = s->head;
	char why[STATUS_ANSWER_MAX + CURL_ERROR_SIZE];
	long code, retry_after;
	int delay = -1;
	bool ok;

	code = send_one(st, it->msg, &retry_after, why, sizeof(why));
	it->tries++;
	ok = code >= 200 && code < 300;
	pthread_mutex_lock(&st->lock);
	if (!ok && !st->stopping)
		delay = ts_status_retry_delay(it->tries, code, retry_after);
	log_outcome(it, code, why, ok, delay);
	if (delay >= 0) {
		it->due = time(NULL) + delay;
	} else {
		s->head = it->next;
		st->queued--;
		item_free(it);
		if (!s->head) {
			s->tail = NULL;
			st->idle++;
		}
	}
	s->busy = false;
	if (!s->head && final(s->last))
		stream_unlink(st, s);
	else
		idle_trim(st);
	pthread_cond_broadcast(&st->cond);
}

static void *sender_main(void *arg)
{
	struct ts_status *st = arg;
	struct timespec until;
	struct stream *s;
	time_t now, next_due;

	pthread_mutex_lock(&st->lock);
	for (;;) {
		now = time(NULL);
		if (st->stopping && now >= atomic_load(&st->deadline))
			break;
		s = take(st, now, &next_due);
		if (s) {
			pthread_mutex_unlock(&st->lock);
			deliver(st, s); /* returns with the lock held */
			continue;
		}
		if (st->stopping && st->queued == 0)
			break;
		if (st->stopping && next_due > atomic_load(&st->deadline))
			next_due = atomic_load(&st->deadline);
		until.tv_sec = next_due;
		until.tv_nsec = 0;
		pthread_cond_timedwait(&st->cond, &st->lock, &until);
	}
	pthread_mutex_unlock(&st->lock);
	return NULL;
}

int ts_status_start(struct ts_status **out, te_error *err)
{
	struct ts_status *st = calloc(1, sizeof(*st));
	int i, rc;

	*out = NULL;
	if (!st)
		return te_error_set(err, TE_ENOMEM, "out of memory");
	pthread_mutex_init(&st->lock, NULL);
	/* CLOCK_REALTIME, as the due times (time(NULL)) */
	pthread_cond_init(&st->cond, NULL);
	atomic_init(&st->deadline, 0);
	for (i = 0; i < TS_STATUS_THREADS; i++) {
		rc = pthread_create(&st->threads[i], NULL, sender_main, st);
		if (rc != 0) {
			ts_status_stop(st, 0);
			return te_error_set_errno(
			    err, TE_ERROR, rc, "cannot start a status sender");
		}
		st->nthreads = i + 1;
	}
	*out = st;
	return 0;
}

void ts_status_stop(struct ts_status *st, unsigned int drain)
{
	char n[24];
	int i;

	if (!st)
		return;
	pthread_mutex_lock(&st->lock);
	st->stopping = true;
	atomic_store(&st->deadline, (long)time(NULL) + (long)drain);
	pthread_cond_broadcast(&st->cond);
	pthread_mutex_unlock(&st->lock);
	for (i = 0; i < st->nthreads; i++)
		pthread_join(st->threads[i], NULL);
	st->dropped += st->queued;
	while (st->streams)
		stream_unlink(st, st->streams);
	if (st->dropped > 0) {
		snprintf(n, sizeof(n), "%lu", st->dropped);
		ts_logkv(TE_LOG_WARN, "commit statuses dropped", "count", n,
		         NULL);
	}
	pthread_cond_destroy(&st->cond);
	pthread_mutex_destroy(&st->lock);
	free(st);
}
