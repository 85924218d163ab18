/*
 * server.c - libmicrohttpd glue: routing, limits, deadlines.  The answers
 * themselves come from intake.c and api.c, which never see MHD types.
 *
 * Limits, in the order a hostile client meets them:
 *  1. connection count (MHD_OPTION_CONNECTION_LIMIT, 1000), connections
 *     per client address (MHD_OPTION_PER_IP_CONNECTION_LIMIT,
 *     max_connections_per_ip: MHD closes the extra ones at accept and
 *     logs "Server reached connection limit"; it counts across the
 *     whole thread pool) and
 *     header memory (MHD_OPTION_CONNECTION_MEMORY_LIMIT: larger headers
 *     get 431/413);
 *  2. a whole-request deadline: MHD's own timeout is an idle timeout that
 *     a client trickling one byte at a time never hits, so a watchdog
 *     thread shuts down connections whose current request (or idle gap)
 *     lasts longer than request_timeout seconds;
 *  3. the body: a Content-Length above max_body is answered 413 before a
 *     single body byte is read; chunked bodies are counted as they arrive
 *     and answered 413 (or cut) as soon as they cross the limit.  Bodies
 *     are never buffered beyond max_body.
 *  4. the pending-body budget (max_pending_body_bytes): a GitHub or Gitea
 *     body can only be authenticated once all of it is in (the HMAC is
 *     over the whole body, and the JSON is parsed only after that, so it
 *     is buffered anyway), so every byte buffered before that check
 *     counts against one budget for all requests.  A body with a
 *     Content-Length reserves all of it before its first byte is read;
 *     a chunked one reserves as it grows.  A request that would cross the
 *     budget is answered 503 with Retry-After (request_timeout seconds)
 *     and the connection closed; an admitted one keeps its share until
 *     its body is checked or the request ends.  Requests that a header
 *     authenticates take no share: GitLab's X-Gitlab-Token (a header, not
 *     a MAC) and the API's bearer token are checked before the body.
 *     How signed deliveries keep getting in while the budget is under
 *     attack:
 *       - bodies over small_body (64 KiB, or 1/16 of the budget when that
 *         is less; a forge's tag push is a few KiB) may only fill 3/4 of
 *         the budget; the last quarter is for small bodies.  Floods of
 *         large bodies (the cheap way to eat memory) never reach it, and
 *         filling it with small ones takes budget/4 / 64 KiB concurrent
 *         connections (256 at the default), more than one address may
 *         open;
 *       - a share is held for request_timeout seconds at most (item 2),
 *         however slowly the body trickles;
 *       - a single unauthenticated body is capped at 3/4 of the budget
 *         (413 above): one that could never be admitted is not retried.
 *     Memory is then bounded by the budget plus MHD's per-connection
 *     header memory, whatever the clients do.
 *
 * Threads: MHD's pool (one thread per CPU by default) does the CPU work of
 * every request, including the queue's record of a new job (one write,
 * ts_queue_submit_nowait).  The answer may only go out once that record
 * is on disk, so the connection is suspended (MHD_suspend_connection)
 * and put on the committer's list.  The committer thread takes the whole
 * list at once, makes all of it durable with one ts_queue_wait (one
 * fdatasync), answers and resumes every connection, and takes the next
 * list, which filled up meanwhile: the batch grows with the load, and
 * the HTTP threads never sit in a sync.  (Several committers, syncing in
 * parallel, were measured: more syncs, no more throughput, since on a
 * loaded machine the CPU, not the disk, is the limit.)
 */
#include "server.h"
#include "slog.h"
#include "verify.h"

#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <microhttpd.h>
#include <netinet/in.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#define API_BODY_MAX (1024 * 1024)
#define HEADER_MEMORY (16 * 1024)
#define MAX_CONNECTIONS 1000
/* A forge's delivery is a few KiB (a tag push has no commit list). */
#define SMALL_BODY (64 * 1024)

struct conn {
	int fd;
	/* Atomic: every request restarts it, and taking the list lock
	 * for that would make the HTTP threads contend on every request. */
	_Atomic time_t deadline;
	struct conn *prev, *next;
};

struct ts_http {
	struct ts_server *server;
	struct MHD_Daemon *daemon;
	unsigned int timeout;
	size_t max_body;
	/* the pending-body budget (header comment, item 4) */
	atomic_size_t pending; /* bytes reserved by unverified bodies */
	size_t pending_max;    /* max_pending_body_bytes */
	size_t pending_large;  /* what bodies over small_body may fill */
	size_t small_body;
	pthread_mutex_t lock; /* conns, watchdog_stop */
	pthread_cond_t watchdog_cond;
	struct conn *conns;
	bool watchdog_stop;
	bool watchdog_started;
	pthread_t watchdog;
	atomic_int active; /* requests between first call and completion */
	struct {
		struct MHD_Response *r;
		unsigned int status;
	} fixed[TS_FIXED_COUNT]; /* built at start, queued by every thread */

	/* the committer: requests whose job record awaits its sync */
	pthread_mutex_t commit_lock;
	pthread_cond_t commit_cond;
	struct req *commits, *commits_tail;
	bool commit_stop;
	bool committer_started;
	pthread_t committer;
};

enum route { ROUTE_HOOK, ROUTE_API, ROUTE_DISCARD };

enum req_state {
	REQ_BODY = 0, /* receiving */
	REQ_QUEUED,   /* suspended, the committer has it */
	REQ_READY     /* res is the answer, send it */
};

struct req {
	enum route route;
	enum req_state state;
	struct ts_intake_job job;
	struct ts_response res;
	/* ROUTE_HOOK: the URL's project, in a config referenced until the
	 * request completes */
	struct ts_config *cfg;
	const te_project *pr;
	te_buf body;
	size_t limit;
	size_t reserved;    /* of the pending-body budget */
	bool authenticated; /* by a header: takes no share of the budget */
	bool too_large; /* chunked body crossed the limit: discard the rest */
	bool busy;      /* chunked body crossed the budget: discard the rest */
	bool answered;  /* a response is queued; ignore the rest */
	/* REQ_QUEUED: on the committer's list */
	struct MHD_Connection *conn;
	struct req *next;
	struct timespec body_done; /* ROUTE_HOOK: for the accept histogram */
};

static struct MHD_Response *new_response(const char *ctype, const char *body,
                                         size_t len, bool close)
{
	struct MHD_Response *r;

	r = MHD_create_response_from_buffer(len, (void *)body,
	                                    MHD_RESPMEM_MUST_COPY);
	if (!r)
		return NULL;
	MHD_add_response_header(r, MHD_HTTP_HEADER_CONTENT_TYPE, ctype);
	MHD_add_response_header(r, "Cache-Control", "no-store");
	/* The job pages (pages.c) run no script and load nothing: a value
	 * that escaped escaping still could not run (CSP Level 3). */
	if (!strncmp(ctype, "text/html", 9))
		MHD_add_response_header(r, "Content-Security-Policy",
		                        "default-src 'none'; "
		                        "style-src 'unsafe-inline'; "
		                        "base-uri 'none'; form-action 'none'; "
		                        "frame-ancestors 'none'");
	if (close)
		MHD_add_response_header(r, MHD_HTTP_HEADER_CONNECTION, "close");
	return r;
}

static enum MHD_Result send_reply(struct MHD_Connection *c, unsigned int status,
                                  const char *ctype, const char *body,
                                  size_t len)
{
	struct MHD_Response *r = new_response(ctype, body, len, false);
	enum MHD_Result ret;

	if (!r)
		return MHD_NO;
	ret = MHD_queue_response(c, status, r);
	MHD_destroy_response(r);
	return ret;
}

/* MHD counts the references to a response: one can be queued on any
 * number of connections, from any thread. */
static enum MHD_Result send_fixed(struct ts_http *h, struct MHD_Connection *c,
                                  enum ts_fixed which)
{
	return MHD_queue_response(c, h->fixed[which].status, h->fixed[which].r);
}

static enum MHD_Result send_response(struct ts_http *h,
                                     struct MHD_Connection *c,
                                     struct ts_response *res)
{
	if (res->fixed != TS_FIXED_NONE)
		return send_fixed(h, c, res->fixed);
	return send_reply(c, res->status, res->content_type, res->body.ptr,
	                  res->body.len);
}

static const char *header_of(void *ctx, const char *name)
{
	return MHD_lookup_connection_value((struct MHD_Connection *)ctx,
	                                   MHD_HEADER_KIND, name);
}

/* The declared Content-Length, if any (MHD has already rejected a
 * malformed one with 400; an overflowing one reads as the maximum). */
static bool declared_length(struct MHD_Connection *c, unsigned long long *out)
{
	const char *cl = header_of(c, MHD_HTTP_HEADER_CONTENT_LENGTH);
	char *end;

	if (!cl)
		return false;
	errno = 0;
	*out = strtoull(cl, &end, 10);
	if (errno == ERANGE)
		*out = ULLONG_MAX;
	return errno == ERANGE || *end == '\0';
}

/* Take n more bytes of the budget for r: false, and nothing taken, when
 * that would cross it.  Bodies over small_body may fill pending_large
 * only: the rest is kept for forge-sized deliveries. */
static bool reserve(struct ts_http *h, struct req *r, size_t n)
{
	size_t cap =
	    r->reserved + n > h->small_body ? h->pending_large : h->pending_max;
	size_t cur = atomic_load(&h->pending);

	do {
		if (n > cap || cur > cap - n)
			return false;
	} while (!atomic_compare_exchange_weak(&h->pending, &cur, cur + n));
	r->reserved += n;
	return true;
}

/* r's body is checked (or dropped): its share goes back. */
static void release(struct ts_http *h, struct req *r)
{
	if (r->reserved)
		atomic_fetch_sub(&h->pending, r->reserved);
	r->reserved = 0;
}

static enum MHD_Result refuse_busy(struct ts_http *h, struct MHD_Connection *c,
                                   struct req *r)
{
	unsigned long dropped;

	if (r->route == ROUTE_HOOK)
		ts_metrics_request(h->server->metrics, r->pr->name,
		                   te_forge_name(r->pr->forge), "busy");
	if (ts_log_allow(TS_LOG_KEY_BUSY, &dropped)) {
		char n[24];
		snprintf(n, sizeof(n), "%lu", dropped);
		ts_logkv(TE_LOG_WARN, "request refused", "reason",
		         "pending body budget spent", "project",
		         r->pr ? r->pr->name : "", "suppressed_before", n,
		         NULL);
	}
	r->answered = true;
	return send_fixed(h, c, TS_FIXED_BUSY);
}

/* Start buffering r's body (header comment, item 4).  A request that a
 * header authenticated takes no share; the others reserve their declared
 * length now (503 when it does not fit), or their body as it grows. */
static enum MHD_Result admit(struct ts_http *h, struct MHD_Connection *c,
                             struct req *r, bool authenticated)
{
	unsigned long long declared = 0;
	bool has_length = declared_length(c, &declared);

	r->authenticated = authenticated;
	if (!authenticated && r->limit > h->pending_large)
		r->limit = h->pending_large; /* could never be admitted */
	if (has_length && declared > r->limit) {
		if (r->route == ROUTE_HOOK)
			ts_metrics_request(h->server->metrics, r->pr->name,
			                   te_forge_name(r->pr->forge),
			                   "too_large");
		r->answered = true;
		return send_fixed(h, c, TS_FIXED_TOO_LARGE);
	}
	te_buf_init(&r->body, r->limit);
	if (!authenticated && has_length && !reserve(h, r, (size_t)declared))
		return refuse_busy(h, c, r);
	return MHD_YES;
}

/* GitLab's token is a header, not a MAC over the body: a delivery that
 * carries the right one is authenticated before its body arrives. */
static bool hook_header_authenticated(struct MHD_Connection *c,
                                      const struct ts_config *cfg,
                                      const te_project *pr)
{
	struct ts_hook_request hr = {header_of, c, NULL, 0};

	return pr->forge == TE_FORGE_GITLAB &&
	       ts_forge_verify(pr->forge, pr->secret, pr->secret_len,
	                       ts_config_hmac(cfg, pr), &hr) == TS_AUTH_OK;
}

static bool api_header_authenticated(struct ts_server *s,
                                     struct MHD_Connection *c)
{
	struct ts_config *cfg = ts_server_config(s);
	bool ok = ts_bearer_ok(cfg->admin_token, cfg->admin_token_len,
	                       header_of(c, MHD_HTTP_HEADER_AUTHORIZATION));

	ts_config_unref(cfg);
	return ok;
}

/* GET /metrics, behind metrics_token_file when the config sets one. */
static enum MHD_Result metrics(struct ts_http *h, struct MHD_Connection *c)
{
	struct ts_server *s = h->server;
	struct ts_config *cfg = ts_server_config(s);
	te_error err = TE_ERROR_INIT;
	struct ts_response res;
	enum MHD_Result ret;
	bool ok;

	ok = !cfg->metrics_token ||
	     ts_bearer_ok(cfg->metrics_token, cfg->metrics_token_len,
	                  header_of(c, MHD_HTTP_HEADER_AUTHORIZATION));
	ts_config_unref(cfg);
	if (!ok)
		return send_fixed(h, c, TS_FIXED_UNAUTHORIZED);
	ts_response_init(&res);
	res.status = 200;
	res.content_type = "text/plain; version=0.0.4";
	if (ts_metrics_render(&res.body, s->metrics, s->queue, &err) < 0 ||
	    te_buf_printf(&res.body, &err,
	                  "# HELP tagexport_pending_body_bytes Bytes reserved "
	                  "by request bodies not authenticated yet.\n"
	                  "# TYPE tagexport_pending_body_bytes gauge\n"
	                  "tagexport_pending_body_bytes %zu\n",
	                  atomic_load(&h->pending)) < 0)
		ts_response_error(&res, 500, "cannot render metrics");
	ret = send_response(h, c, &res);
	ts_response_dispose(&res);
	return ret;
}

/* GET /jobs, /jobs/<id> (pages.c); a 401 asks for Basic credentials. */
static enum MHD_Result pages(struct ts_http *h, struct MHD_Connection *c,
                             const char *url)
{
	struct ts_response res;
	struct MHD_Response *r;
	enum MHD_Result ret = MHD_NO;

	ts_response_init(&res);
	ts_pages(&res, h->server, url,
	         header_of(c, MHD_HTTP_HEADER_AUTHORIZATION));
	r = new_response(res.content_type, res.body.ptr, res.body.len, false);
	if (r) {
		/* RFC 7617 section 2 */
		if (res.status == 401)
			MHD_add_response_header(
			    r, MHD_HTTP_HEADER_WWW_AUTHENTICATE,
			    "Basic realm=\"tagexport\", charset=\"UTF-8\"");
		ret = MHD_queue_response(c, res.status, r);
		MHD_destroy_response(r);
	}
	ts_response_dispose(&res);
	return ret;
}

static enum MHD_Result first_call(struct ts_http *h, struct MHD_Connection *c,
                                  const char *url, const char *method,
                                  struct req *r)
{
	struct ts_server *s = h->server;

	if (!strncmp(url, "/hooks/", 7)) {
		if (strcmp(method, "POST") != 0)
			return send_fixed(h, c, TS_FIXED_METHOD);
		/* The request keeps this config (and its project) to the
		 * end: a reload meanwhile does not change its answer. */
		if (te_project_name_valid(url + 7)) {
			r->cfg = ts_server_config(s);
			r->pr = ts_config_project(r->cfg, url + 7);
		}
		if (!r->pr) {
			ts_metrics_request(s->metrics, "_unknown", "none",
			                   "not_found");
			return send_fixed(h, c, TS_FIXED_UNKNOWN_PROJECT);
		}
		r->route = ROUTE_HOOK;
		r->limit = h->max_body;
		return admit(h, c, r,
		             hook_header_authenticated(c, r->cfg, r->pr));
	}
	if (!strncmp(url, "/api/v1/", 8)) {
		r->route = ROUTE_API;
		r->limit = API_BODY_MAX;
		return admit(h, c, r, api_header_authenticated(s, c));
	}
	if (!strcmp(url, "/healthz") &&
	    (!strcmp(method, "GET") || !strcmp(method, "HEAD"))) {
		static const char ok[] = "{\"status\":\"ok\"}\n";
		static const char down[] =
		    "{\"status\":\"error\",\"error\":\"job queue "
		    "unreachable\"}\n";
		te_error err = TE_ERROR_INIT;

		/* postgres: a replica without its database cannot take
		 * deliveries; the balancer should send them elsewhere */
		if (ts_queue_health(h->server->queue, &err) < 0)
			return send_reply(c, 503, "application/json", down,
			                  sizeof(down) - 1);
		return send_reply(c, 200, "application/json", ok,
		                  sizeof(ok) - 1);
	}
	if (!strcmp(url, "/metrics") && !strcmp(method, "GET"))
		return metrics(h, c);
	if (!strcmp(url, "/jobs") || !strncmp(url, "/jobs/", 6)) {
		if (strcmp(method, "GET") != 0 && strcmp(method, "HEAD") != 0)
			return send_fixed(h, c, TS_FIXED_METHOD);
		return pages(h, c, url);
	}
	return send_fixed(h, c, TS_FIXED_NOT_FOUND);
}

static double seconds_since(const struct timespec *t0)
{
	struct timespec t;

	clock_gettime(CLOCK_MONOTONIC, &t);
	return (double)(t.tv_sec - t0->tv_sec) +
	       (double)(t.tv_nsec - t0->tv_nsec) / 1e9;
}

/* Make a batch durable with one wait, then answer each request. */
static void commit_batch(struct ts_http *h, struct req *batch)
{
	ts_queue_ticket all = {0, 0, 0, 0};
	te_error err = TE_ERROR_INIT;
	struct req *r, *next;

	for (r = batch; r; r = r->next)
		ts_queue_ticket_merge(&all, &r->job.sub.ticket);
	ts_queue_wait(h->server->queue, &all, &err);
	for (r = batch; r; r = next) {
		/* Once resumed, the request may complete and be freed. */
		next = r->next;
		ts_intake_finish(&r->res, h->server, &r->job, &err);
		if (r->res.status == 202)
			ts_metrics_accept(h->server->metrics,
			                  seconds_since(&r->body_done));
		r->state = REQ_READY;
		MHD_resume_connection(r->conn);
	}
}

static void *committer_main(void *arg)
{
	struct ts_http *h = arg;
	struct req *batch;

	for (;;) {
		pthread_mutex_lock(&h->commit_lock);
		while (!h->commits && !h->commit_stop)
			pthread_cond_wait(&h->commit_cond, &h->commit_lock);
		batch = h->commits;
		h->commits = h->commits_tail = NULL;
		pthread_mutex_unlock(&h->commit_lock);
		if (!batch)
			return NULL; /* stopping, and nothing is left */
		commit_batch(h, batch);
	}
}

/* Suspend c until the committer has made r's job durable; false (nothing
 * changed) once it is stopping: the caller waits itself. */
static bool hand_over(struct ts_http *h, struct MHD_Connection *c,
                      struct req *r)
{
	pthread_mutex_lock(&h->commit_lock);
	if (h->commit_stop) {
		pthread_mutex_unlock(&h->commit_lock);
		return false;
	}
	r->conn = c;
	r->next = NULL;
	r->state = REQ_QUEUED;
	MHD_suspend_connection(c);
	if (h->commits_tail)
		h->commits_tail->next = r;
	else
		h->commits = r;
	h->commits_tail = r;
	pthread_cond_signal(&h->commit_cond);
	pthread_mutex_unlock(&h->commit_lock);
	return true;
}

static enum MHD_Result complete(struct ts_http *h, struct MHD_Connection *c,
                                const char *url, const char *method,
                                struct req *r)
{
	struct ts_response res;
	enum MHD_Result ret;

	ts_response_init(&res);
	if (r->route == ROUTE_HOOK) {
		struct ts_hook_request hr = {header_of, c, r->body.ptr,
		                             r->body.len};
		bool queued;
		clock_gettime(CLOCK_MONOTONIC, &r->body_done);
		queued = ts_intake_begin(&res, h->server, r->cfg, r->pr, &hr,
		                         &r->job);
		/* Checked: the event holds what is needed of the body. */
		te_buf_dispose(&r->body);
		release(h, r);
		if (queued) {
			te_error err = TE_ERROR_INIT;
			if (hand_over(h, c, r)) {
				ts_response_dispose(&res);
				return MHD_YES;
			}
			ts_queue_wait(h->server->queue, &r->job.sub.ticket,
			              &err);
			ts_intake_finish(&res, h->server, &r->job, &err);
		}
	} else {
		char full[1024];
		const char *limit = MHD_lookup_connection_value(
		    c, MHD_GET_ARGUMENT_KIND, "limit");
		if (limit)
			snprintf(full, sizeof(full), "%s?limit=%s", url, limit);
		else
			snprintf(full, sizeof(full), "%s", url);
		ts_api(&res, h->server, method, full,
		       header_of(c, MHD_HTTP_HEADER_AUTHORIZATION), r->body.ptr,
		       r->body.len);
		release(h, r);
	}
	ret = send_response(h, c, &res);
	ts_response_dispose(&res);
	return ret;
}

static enum MHD_Result handler(void *cls, struct MHD_Connection *c,
                               const char *url, const char *method,
                               const char *version, const char *upload_data,
                               size_t *upload_data_size, void **con_cls)
{
	struct ts_http *h = cls;
	struct req *r = *con_cls;

	(void)version;
	if (!r) {
		r = calloc(1, sizeof(*r));
		if (!r)
			return MHD_NO;
		/* Until a route accepts a body, any body is dropped. */
		r->route = ROUTE_DISCARD;
		te_buf_init(&r->body, 0);
		ts_response_init(&r->res);
		*con_cls = r;
		atomic_fetch_add(&h->active, 1);
		return first_call(h, c, url, method, r);
	}
	if (*upload_data_size) {
		size_t n = *upload_data_size;
		*upload_data_size = 0;
		if (r->answered || r->too_large || r->busy ||
		    r->route == ROUTE_DISCARD)
			return MHD_YES;
		if (n > r->limit - r->body.len) {
			/* A chunked body crossed the limit.  MHD 0.9 cannot
			 * answer in the middle of an upload, so the rest is
			 * read and dropped (never stored) and 413 follows;
			 * the request deadline bounds an endless body. */
			r->too_large = true;
			te_buf_dispose(&r->body);
			release(h, r);
			return MHD_YES;
		}
		if (!r->authenticated && r->body.len + n > r->reserved &&
		    !reserve(h, r, r->body.len + n - r->reserved)) {
			/* A chunked body crossed the budget: as above. */
			r->busy = true;
			te_buf_dispose(&r->body);
			release(h, r);
			return MHD_YES;
		}
		if (te_buf_put(&r->body, upload_data, n, NULL) < 0)
			return MHD_NO;
		return MHD_YES;
	}
	if (r->state == REQ_READY) {
		r->state = REQ_BODY;
		return send_response(h, c, &r->res);
	}
	if (r->state == REQ_QUEUED || r->answered || r->route == ROUTE_DISCARD)
		return MHD_YES;
	r->answered = true;
	if (r->too_large) {
		if (r->route == ROUTE_HOOK)
			ts_metrics_request(h->server->metrics, r->pr->name,
			                   te_forge_name(r->pr->forge),
			                   "too_large");
		return send_fixed(h, c, TS_FIXED_TOO_LARGE);
	}
	if (r->busy)
		return refuse_busy(h, c, r);
	return complete(h, c, url, method, r);
}

static void restart_deadline(struct ts_http *h, struct MHD_Connection *c)
{
	const union MHD_ConnectionInfo *ci;

	ci = MHD_get_connection_info(c, MHD_CONNECTION_INFO_SOCKET_CONTEXT);
	if (ci && ci->socket_context) {
		struct conn *k = ci->socket_context;
		atomic_store(&k->deadline, time(NULL) + h->timeout);
	}
}

static void completed(void *cls, struct MHD_Connection *c, void **con_cls,
                      enum MHD_RequestTerminationCode toe)
{
	struct ts_http *h = cls;
	struct req *r = *con_cls;

	(void)toe;
	if (r) {
		te_buf_dispose(&r->body);
		release(h, r);
		ts_response_dispose(&r->res);
		ts_config_unref(r->cfg);
		free(r);
		*con_cls = NULL;
		atomic_fetch_sub(&h->active, 1);
	}
	restart_deadline(h, c);
}

/* Called when the request line is in: the request's deadline starts. */
static void *uri_logged(void *cls, const char *uri, struct MHD_Connection *c)
{
	(void)uri;
	restart_deadline(cls, c);
	return NULL;
}

static void notify_connection(void *cls, struct MHD_Connection *c,
                              void **socket_context,
                              enum MHD_ConnectionNotificationCode code)
{
	struct ts_http *h = cls;
	struct conn *k;

	if (code == MHD_CONNECTION_NOTIFY_STARTED) {
		const union MHD_ConnectionInfo *ci = MHD_get_connection_info(
		    c, MHD_CONNECTION_INFO_CONNECTION_FD);
		k = calloc(1, sizeof(*k));
		if (!k || !ci) {
			free(k);
			return;
		}
		k->fd = ci->connect_fd;
		atomic_init(&k->deadline, time(NULL) + h->timeout);
		pthread_mutex_lock(&h->lock);
		k->next = h->conns;
		if (h->conns)
			h->conns->prev = k;
		h->conns = k;
		pthread_mutex_unlock(&h->lock);
		*socket_context = k;
		return;
	}
	/* CLOSED comes before MHD closes the fd, so under the lock the
	 * watchdog never touches a descriptor that was reused. */
	k = *socket_context;
	if (!k)
		return;
	pthread_mutex_lock(&h->lock);
	if (k->prev)
		k->prev->next = k->next;
	else
		h->conns = k->next;
	if (k->next)
		k->next->prev = k->prev;
	pthread_mutex_unlock(&h->lock);
	free(k);
	*socket_context = NULL;
}

static void *watchdog_main(void *arg)
{
	struct ts_http *h = arg;
	struct timespec until;

	pthread_mutex_lock(&h->lock);
	while (!h->watchdog_stop) {
		time_t now = time(NULL);
		struct conn *k;
		for (k = h->conns; k; k = k->next) {
			time_t d = atomic_load(&k->deadline);
			/* Unless a new request restarted it meanwhile. */
			if (d < now && atomic_compare_exchange_strong(
			                   &k->deadline, &d, (time_t)LONG_MAX))
				shutdown(k->fd, SHUT_RDWR);
		}
		clock_gettime(CLOCK_REALTIME, &until);
		until.tv_sec += 1;
		pthread_cond_timedwait(&h->watchdog_cond, &h->lock, &until);
	}
	pthread_mutex_unlock(&h->lock);
	return NULL;
}

static void mhd_log(void *cls, const char *fmt, va_list ap)
{
	char msg[512];
	size_t n;

	(void)cls;
	vsnprintf(msg, sizeof(msg), fmt, ap);
	n = strlen(msg);
	while (n && (msg[n - 1] == '\n' || msg[n - 1] == '\r'))
		msg[--n] = '\0';
	ts_logkv(TE_LOG_WARN, "http", "detail", msg, NULL);
}

static int write_port_file(const char *path, unsigned int port, te_error *err)
{
	char tmp[4096], text[16];
	int fd, n;

	if (snprintf(tmp, sizeof(tmp), "%s.tmp", path) >= (int)sizeof(tmp))
		return te_error_set(err, TE_EINVALID,
		                    "port file path too long");
	fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
	if (fd < 0)
		return te_error_set_errno(err, TE_EIO, errno, "cannot write %s",
		                          tmp);
	n = snprintf(text, sizeof(text), "%u\n", port);
	if (write(fd, text, (size_t)n) != n || close(fd) < 0 ||
	    rename(tmp, path) < 0)
		return te_error_set_errno(err, TE_EIO, errno, "cannot write %s",
		                          path);
	return 0;
}

static int build_fixed(struct ts_http *h, te_error *err)
{
	struct ts_response res;
	char after[16];
	int i, rc = 0;

	ts_response_init(&res);
	for (i = TS_FIXED_NONE + 1; i < TS_FIXED_COUNT; i++) {
		/* Those stop a client that may still be sending. */
		bool close = i == TS_FIXED_UNKNOWN_PROJECT ||
		             i == TS_FIXED_TOO_LARGE || i == TS_FIXED_BUSY;
		ts_response_fixed_body(&res, (enum ts_fixed)i);
		h->fixed[i].status = res.status;
		h->fixed[i].r = new_response(res.content_type, res.body.ptr,
		                             res.body.len, close);
		if (!h->fixed[i].r) {
			rc = te_error_set(err, TE_ENOMEM, "out of memory");
			goto done;
		}
		/* RFC 9110 section 10.2.3: come back once the requests
		 * holding the budget have had their whole deadline. */
		snprintf(after, sizeof(after), "%u", h->timeout);
		if (i == TS_FIXED_BUSY)
			MHD_add_response_header(
			    h->fixed[i].r, MHD_HTTP_HEADER_RETRY_AFTER, after);
		/* RFC 6750 section 3 */
		if (i == TS_FIXED_UNAUTHORIZED)
			MHD_add_response_header(
			    h->fixed[i].r, MHD_HTTP_HEADER_WWW_AUTHENTICATE,
			    "Bearer");
	}
done:
	ts_response_dispose(&res);
	return rc;
}

static int auto_threads(void)
{
	long n = sysconf(_SC_NPROCESSORS_ONLN);

	if (n < 2)
		n = 2;
	return n > 32 ? 32 : (int)n;
}

int ts_http_start(struct ts_server *s, const char *port_file, te_error *err)
{
	struct ts_config *cfg = ts_server_config(s);
	struct ts_http *h = calloc(1, sizeof(*h));
	struct sockaddr_in6 a6;
	struct sockaddr_in a4;
	const struct sockaddr *sa;
	const union MHD_DaemonInfo *di;
	unsigned int flags = MHD_USE_INTERNAL_POLLING_THREAD | MHD_USE_EPOLL |
	                     MHD_USE_ITC | MHD_USE_TURBO | MHD_USE_ERROR_LOG |
	                     MHD_ALLOW_SUSPEND_RESUME;
	int threads, rc = 0;
	char port[8];

	if (!h) {
		rc = te_error_set(err, TE_ENOMEM, "out of memory");
		goto done;
	}
	h->server = s;
	h->timeout = cfg->request_timeout;
	h->max_body = cfg->max_body;
	h->pending_max = cfg->max_pending_body;
	h->pending_large = h->pending_max - h->pending_max / 4;
	h->small_body =
	    h->pending_max / 16 < SMALL_BODY ? h->pending_max / 16 : SMALL_BODY;
	atomic_init(&h->pending, 0);
	pthread_mutex_init(&h->lock, NULL);
	pthread_cond_init(&h->watchdog_cond, NULL);
	pthread_mutex_init(&h->commit_lock, NULL);
	pthread_cond_init(&h->commit_cond, NULL);
	atomic_init(&h->active, 0);
	s->http = h;
	if ((rc = build_fixed(h, err)) < 0)
		goto done;
	if (pthread_create(&h->committer, NULL, committer_main, h) != 0) {
		rc = te_error_set(err, TE_ERROR, "cannot start the committer");
		goto done;
	}
	h->committer_started = true;
	memset(&a4, 0, sizeof(a4));
	memset(&a6, 0, sizeof(a6));
	if (inet_pton(AF_INET, cfg->host, &a4.sin_addr) == 1) {
		a4.sin_family = AF_INET;
		a4.sin_port = htons(cfg->port);
		sa = (const struct sockaddr *)&a4;
	} else if (inet_pton(AF_INET6, cfg->host, &a6.sin6_addr) == 1) {
		a6.sin6_family = AF_INET6;
		a6.sin6_port = htons(cfg->port);
		sa = (const struct sockaddr *)&a6;
		flags |= MHD_USE_IPv6;
	} else {
		rc = te_error_set(err, TE_EINVALID, "bad listen address");
		goto done;
	}
	threads = cfg->http_threads > 0 ? cfg->http_threads : auto_threads();
	h->daemon = MHD_start_daemon(
	    flags, cfg->port, NULL, NULL, handler, h,
	    MHD_OPTION_EXTERNAL_LOGGER, mhd_log, h, MHD_OPTION_SOCK_ADDR, sa,
	    MHD_OPTION_THREAD_POOL_SIZE, (unsigned int)threads,
	    MHD_OPTION_CONNECTION_TIMEOUT, cfg->request_timeout,
	    MHD_OPTION_CONNECTION_LIMIT, (unsigned int)MAX_CONNECTIONS,
	    MHD_OPTION_PER_IP_CONNECTION_LIMIT,
	    (unsigned int)cfg->max_connections_per_ip,
	    MHD_OPTION_CONNECTION_MEMORY_LIMIT, (size_t)HEADER_MEMORY,
	    MHD_OPTION_LISTENING_ADDRESS_REUSE, (unsigned int)1,
	    MHD_OPTION_NOTIFY_COMPLETED, completed, h,
	    MHD_OPTION_NOTIFY_CONNECTION, notify_connection, h,
	    MHD_OPTION_URI_LOG_CALLBACK, uri_logged, h, MHD_OPTION_END);
	if (!h->daemon) {
		rc = te_error_set(err, TE_EIO, "cannot listen on %s:%u",
		                  cfg->host, (unsigned)cfg->port);
		goto done;
	}
	if (pthread_create(&h->watchdog, NULL, watchdog_main, h) != 0) {
		rc = te_error_set(err, TE_ERROR, "cannot start the watchdog");
		goto done;
	}
	h->watchdog_started = true;
	di = MHD_get_daemon_info(h->daemon, MHD_DAEMON_INFO_BIND_PORT);
	snprintf(port, sizeof(port), "%u", di ? (unsigned)di->port : 0u);
	ts_logkv(TE_LOG_INFO, "listening", "address", cfg->host, "port", port,
	         NULL);
	if (port_file && di)
		rc = write_port_file(port_file, di->port, err);
done:
	ts_config_unref(cfg);
	return rc;
}

void ts_http_stop(struct ts_server *s)
{
	struct ts_http *h = s->http;
	MHD_socket lsock;
	time_t until;

	if (!h)
		return;
	if (h->daemon) {
		/* Stop accepting; let requests in flight (a submit in
		 * progress) finish, bounded by the request deadline. */
		lsock = MHD_quiesce_daemon(h->daemon);
		if (lsock != MHD_INVALID_SOCKET)
			close(lsock);
		until = time(NULL) + h->timeout;
		while (atomic_load(&h->active) > 0 && time(NULL) < until)
			usleep(20 * 1000);
	}
	/* The committer answers what it has before MHD goes away (no
	 * connection may stay suspended); later submits wait inline. */
	pthread_mutex_lock(&h->commit_lock);
	h->commit_stop = true;
	pthread_cond_broadcast(&h->commit_cond);
	pthread_mutex_unlock(&h->commit_lock);
	if (h->committer_started)
		pthread_join(h->committer, NULL);
	if (h->daemon)
		MHD_stop_daemon(h->daemon);
	pthread_cond_destroy(&h->commit_cond);
	pthread_mutex_destroy(&h->commit_lock);
	if (h->watchdog_started) {
		pthread_mutex_lock(&h->lock);
		h->watchdog_stop = true;
		pthread_cond_signal(&h->watchdog_cond);
		pthread_mutex_unlock(&h->lock);
		pthread_join(h->watchdog, NULL);
	}
	pthread_cond_destroy(&h->watchdog_cond);
	pthread_mutex_destroy(&h->lock);
	for (int i = 0; i < TS_FIXED_COUNT; i++)
		if (h->fixed[i].r)
			MHD_destroy_response(h->fixed[i].r);
	free(h);
	s->http = NULL;
}
