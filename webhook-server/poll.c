/*
 * poll.c - polling for tags whose webhook never came (the forge was
 * down, the server was, or GitHub sent no push event because more than
 * three tags were pushed at once:
 * https://docs.github.com/en/webhooks/webhook-events-and-payloads#push).
 *
 * One poll of a project:
 *  1. list the tags git_url advertises (te_mirror_list_tags, with the
 *     project's credentials; nothing is fetched);
 *  2. compare with the tags seen by the last poll (poll_set.h, in
 *     <state_dir>/poll): with no set yet (the first poll ever), only
 *     record them - nothing old is exported;
 *  3. every tag that is new, or moved to another commit, passes the
 *     project's tags globs and has no job yet (of any state: a failed
 *     job is not queued again by a poll, as a redelivery would) is
 *     submitted as a webhook would be, source "poll";
 *  4. once those jobs are on disk, the remote's list becomes the set.
 *     A crash before that polls the same tags again: the dedupe makes
 *     that harmless.
 * Every poll runs on the poller thread, one at a time, so two never race
 * on a set file.  POST .../poll hands its project to that thread and
 * waits for the answer, at most until shortly before the request's
 * deadline (then 202, the poll goes on): libgit2 has no network timeout,
 * and an HTTP thread stuck in a remote that never answers would hold up
 * every later request and the shutdown.
 */
#include "poll_set.h"
#include "server.h"
#include "slog.h"

#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "tagexport/mirror.h"

/* Seconds ts_poller_stop waits for a poll in progress, at least. */
/* Seconds ts_poller_stop waits for a poll in progress, at least. */
#define POLL_STOP_MIN 5
/* POST .../poll requests waiting for the poller thread, at most. */
#define POLL_REQS_MAX 16

struct due {
	char name[TE_PROJECT_NAME_MAX + 1];
	time_t next;
};

/* A POST .../poll, handed to the poller thread.  Freed by the HTTP
 * thread once done, or by the poller when the HTTP thread gave up
 * waiting (abandoned). */
struct poll_req {
	char name[TE_PROJECT_NAME_MAX + 1];
	bool done, abandoned;
	te_error err;
	json_t *answer;
	struct poll_req *next;
};

struct ts_poller {
	pthread_mutex_t lock; /* everything below but the due table */
	pthread_cond_t cond;  /* a request or stop for the thread */
	pthread_cond_t done;  /* a request answered, or the thread exited */
	bool stop;
	bool exited; /* the thread is past its last poll */
	bool started;
	struct poll_req *reqs; /* waiting for the thread */
	size_t nreqs;          /* waiting or being served */
	pthread_t thread;
	struct due *due; /* the poller thread's own */
	size_t ndue;
};

/* Submit every (names[i], commits[i]) that has no job yet and wait for
 * them all to be durable; they go to queued as {"tag","commit","job"}. */
static int submit_all(json_t *queued, struct ts_server *s, const te_project *pr,
                      const te_strvec *names, const te_strvec *commits,
                      te_error *err)
{
	struct ts_submission *subs = NULL;
	char existing[TS_JOB_ID_MAX];
	bool found;
	ts_queue_ticket all = {0, 0, 0, 0};
	te_error wait = TE_ERROR_INIT;
	struct ts_response res;
	size_t i, n = 0;
	int rc = 0;

	ts_response_init(&res);
	if (names->count == 0)
		goto done;
	subs = calloc(names->count, sizeof(*subs));
	if (!subs) {
		rc = te_error_set(err, TE_ENOMEM, "out of memory");
		goto done;
	}
	for (i = 0; i < names->count; i++) {
		/* A job of any state, a failed one included, is left as it
		 * is: "no job yet" is what the poll is for. */
		rc = ts_queue_find(existing, &found, s->queue, pr->name,
		                   names->items[i], commits->items[i], err);
		if (rc < 0)
			break; /* what was recorded is still waited for */
		if (found)
			continue;
		subs[n].pr = pr;
		subs[n].tag = names->items[i];
		subs[n].commit = commits->items[i];
		subs[n].source = "poll";
		if (!ts_submission_record(&res, s, &subs[n])) {
			rc = te_error_set(err, TE_EIO, "cannot queue a job");
			break;
		}
		ts_queue_ticket_merge(&all, &subs[n++].ticket);
	}
	ts_queue_wait(s->queue, &all, &wait);
	for (i = 0; i < n; i++) {
		ts_response_reset(&res);
		ts_submission_answer(&res, s, &subs[i], &wait);
		if (res.status != 202) {
			rc = te_error_set(err, TE_EIO, "cannot queue a job");
			continue;
		}
		json_array_append_new(queued, json_pack("{s:s,s:s,s:s}", "tag",
		                                        subs[i].tag, "commit",
		                                        subs[i].commit, "job",
		                                        subs[i].id));
	}
done:
	free(subs);
	ts_response_dispose(&res);
	return rc;
}

/* The remote's tags that the last poll had not seen at that commit and
 * that the project's globs select. */
static int pick_new(te_strvec *names, te_strvec *commits, const te_project *pr,
                    const te_strvec *remote, const te_strvec *remote_commits,
                    const te_strvec *seen, const te_strvec *seen_commits,
                    te_error *err)
{
	size_t i;

	for (i = 0; i < remote->count; i++) {
		const char *tag = remote->items[i],
		           *c = remote_commits->items[i];
		if (ts_poll_set_has(seen, seen_commits, tag, c) ||
		    !te_project_tag_selected(&pr->tags, tag))
			continue;
		if (te_strvec_push(names, tag, err) < 0 ||
		    te_strvec_push(commits, c, err) < 0)
			return err->code;
	}
	return 0;
}

/* Only the tags the server could export (ts_tag_name_valid, stricter than
 * git's rules) are queued and recorded. */
static int keep_valid(te_strvec *names, te_strvec *commits, te_error *err)
{
	te_strvec n = TE_STRVEC_INIT, c = TE_STRVEC_INIT, tmp;
	size_t i;

	for (i = 0; i < names->count; i++) {
		if (!ts_tag_name_valid(names->items[i]))
			continue;
		if (te_strvec_push(&n, names->items[i], err) < 0 ||
		    te_strvec_push(&c, commits->items[i], err) < 0) {
			te_strvec_dispose(&n);
			te_strvec_dispose(&c);
			return err->code;
		}
	}
	tmp = *names;
	*names = n;
	te_strvec_dispose(&tmp);
	tmp = *commits;
	*commits = c;
	te_strvec_dispose(&tmp);
	return 0;
}

/* The seen set; one that cannot be parsed (a disk fault, a hand edit) is
 * dropped with a warning and the poll counts as a first one: polling goes
 * on instead of failing until someone deletes the file. */
static int load_seen(te_strvec *names, te_strvec *commits, bool *found,
                     const char *dir, const char *project, te_error *err)
{
	int rc = ts_poll_set_load(names, commits, found, dir, project, err);

	if (rc != TE_EINVALID)
		return rc;
	ts_logkv(TE_LOG_WARN, "poll: seen set unreadable, recording anew",
	         "project", project, "error", err->msg, NULL);
	te_error_clear(err);
	te_strvec_dispose(names);
	te_strvec_dispose(commits);
	*found = false;
	return 0;
}

static int poll_locked(json_t *queued, bool *first, struct ts_server *s,
                       const struct ts_config *cfg, const te_project *pr,
                       te_error *err)
{
	te_mirror_auth auth = TE_MIRROR_AUTH_INIT;
	te_strvec remote = TE_STRVEC_INIT, remote_commits = TE_STRVEC_INIT;
	te_strvec seen = TE_STRVEC_INIT, seen_commits = TE_STRVEC_INIT;
	te_strvec fresh = TE_STRVEC_INIT, fresh_commits = TE_STRVEC_INIT;
	te_buf dir = TE_BUF_INIT(4096);
	bool found = false, more = false;
	char n[24];
	int rc;

	auth.token_file = pr->git_token_file;
	auth.ssh_key_file = pr->git_ssh_key_file;
	auth.known_hosts_file = pr->git_known_hosts_file;
	auth.username = pr->git_username;
	if ((rc = te_buf_printf(&dir, err, "%s/poll", cfg->state_dir)) < 0 ||
	    (rc = te_mirror_list_tags(&remote, &remote_commits, &more,
	                              pr->git_url, &auth, TS_POLL_TAGS_MAX,
	                              err)) < 0 ||
	    (rc = load_seen(&seen, &seen_commits, &found, dir.ptr, pr->name,
	                    err)) < 0 ||
	    (rc = keep_valid(&remote, &remote_commits, err)) < 0)
		goto done;
	if (more) {
		snprintf(n, sizeof(n), "%d", TS_POLL_TAGS_MAX);
		ts_logkv(TE_LOG_WARN, "poll: too many tags, the rest ignored",
		         "project", pr->name, "limit", n, NULL);
	}
	*first = !found;
	if (found &&
	    ((rc = pick_new(&fresh, &fresh_commits, pr, &remote,
	                    &remote_commits, &seen, &seen_commits, err)) < 0 ||
	     (rc = submit_all(queued, s, pr, &fresh, &fresh_commits, err)) < 0))
		goto done;
	rc = ts_poll_set_save(dir.ptr, pr->name, &remote, &remote_commits, err);
done:
	te_strvec_dispose(&remote);
	te_strvec_dispose(&remote_commits);
	te_strvec_dispose(&seen);
	te_strvec_dispose(&seen_commits);
	te_strvec_dispose(&fresh);
	te_strvec_dispose(&fresh_commits);
	te_buf_dispose(&dir);
	return rc;
}

/* One poll of pr (on the poller thread); *out (NULL on failure) is the
 * answer of POST .../poll. */
static int poll_project(json_t **out, struct ts_server *s,
                        const struct ts_config *cfg, const te_project *pr,
                        te_error *err)
{
	json_t *queued = json_array();
	bool first = false;
	char n[24];
	int rc;

	*out = NULL;
	if (!queued)
		return te_error_set(err, TE_ENOMEM, "out of memory");
	rc = poll_locked(queued, &first, s, cfg, pr, err);
	if (rc < 0) {
		json_decref(queued);
		ts_logkv(TE_LOG_WARN, "poll failed", "project", pr->name,
		         "error", err->msg, NULL);
		return rc;
	}
	snprintf(n, sizeof(n), "%zu", json_array_size(queued));
	ts_logkv(first ? TE_LOG_INFO : TE_LOG_DEBUG,
	         first ? "poll: first poll, existing tags recorded" : "polled",
	         "project", pr->name, "queued", n, NULL);
	*out = json_pack("{s:s,s:b,s:o}", "project", pr->name, "first", first,
	                 "queued", queued);
	return *out ? 0 : te_error_set(err, TE_ENOMEM, "out of memory");
}

static void reply_json(struct ts_response *res, unsigned int status, json_t *o)
{
	char *text = o ? json_dumps(o, JSON_COMPACT) : NULL;

	ts_response_reset(res);
	res->status = status;
	res->content_type = "application/json";
	if (!text || te_buf_puts(&res->body, text, NULL) < 0 ||
	    te_buf_puts(&res->body, "\n", NULL) < 0)
		ts_response_error(res, 500, "out of memory");
	free(text);
}

static void req_free(struct poll_req *r)
{
	json_decref(r->answer);
	free(r);
}

/* The answer of a served request. */
static void answer(struct ts_response *res, const struct poll_req *r)
{
	if (r->answer)
		reply_json(res, 200, r->answer);
	else
		ts_response_error(res,
		                  r->err.code == TE_ENOMEM      ? 500
		                  : r->err.code == TE_ENOTFOUND ? 404
		                                                : 502,
		                  r->err.msg);
}

void ts_poll_now(struct ts_response *res, struct ts_server *s,
                 const struct ts_config *cfg, const te_project *pr)
{
	struct ts_poller *p = s->poller;
	struct poll_req *r = calloc(1, sizeof(*r));
	unsigned int wait =
	    cfg->request_timeout > 2 ? cfg->request_timeout - 2 : 1;
	struct timespec until;

	if (!r) {
		ts_response_error(res, 500, "out of memory");
		return;
	}
	snprintf(r->name, sizeof(r->name), "%s", pr->name);
	te_error_clear(&r->err);
	pthread_mutex_lock(&p->lock);
	if (p->stop || p->nreqs >= POLL_REQS_MAX) {
		pthread_mutex_unlock(&p->lock);
		free(r);
		ts_response_error(res, 503, "too many polls pending");
		return;
	}
	r->next = p->reqs;
	p->reqs = r;
	p->nreqs++;
	pthread_cond_signal(&p->cond);
	clock_gettime(CLOCK_REALTIME, &until);
	until.tv_sec += wait;
	while (!r->done &&
	       pthread_cond_timedwait(&p->done, &p->lock, &until) == 0)
		;
	if (!r->done) {
		r->abandoned = true; /* the poller frees it */
		pthread_mutex_unlock(&p->lock);
		reply_json(res, 202,
		           json_pack("{s:s,s:s}", "project", pr->name, "status",
		                     "polling"));
		return;
	}
	pthread_mutex_unlock(&p->lock);
	answer(res, r);
	req_free(r);
}

/* Serve the requests taken off the list (on the poller thread). */
static void serve(struct ts_server *s, struct poll_req *r)
{
	struct ts_poller *p = s->poller;
	struct ts_config *cfg = ts_server_config(s);
	struct poll_req *next;

	for (; r; r = next) {
		const te_project *pr = ts_config_project(cfg, r->name);
		json_t *o = NULL;
		te_error err = TE_ERROR_INIT;

		next = r->next;
		if (!pr)
			te_error_set(&err, TE_ENOTFOUND, "unknown project");
		else
			poll_project(&o, s, cfg, pr, &err);
		pthread_mutex_lock(&p->lock);
		p->nreqs--;
		if (r->abandoned) {
			json_decref(o);
			req_free(r);
		} else {
			r->answer = o;
			r->err = err;
			r->done = true;
			pthread_cond_broadcast(&p->done);
		}
		pthread_mutex_unlock(&p->lock);
	}
	ts_config_unref(cfg);
}

static bool stopping(struct ts_poller *p)
{
	bool stop;

	pthread_mutex_lock(&p->lock);
	stop = p->stop;
	pthread_mutex_unlock(&p->lock);
	return stop;
}

/* When pr is next due, from the last round's table (now when new). */
static time_t next_due(const struct ts_poller *p, const char *name, time_t now)
{
	size_t i;

	for (i = 0; i < p->ndue; i++)
		if (!strcmp(p->due[i].name, name))
			return p->due[i].next;
	return now;
}

/* Poll the projects that are due; the table follows the current config
 * (a reload adds and drops projects). */
static void poll_round(struct ts_server *s)
{
	struct ts_poller *p = s->poller;
	struct ts_config *cfg = ts_server_config(s);
	struct due *due =
	    calloc(cfg->nprojects ? cfg->nprojects : 1, sizeof(*due));
	te_error err = TE_ERROR_INIT;
	size_t i, n = 0;
	json_t *o;

	for (i = 0; due && i < cfg->nprojects; i++) {
		const te_project *pr = &cfg->projects[i];
		time_t now = time(NULL), next;
		if (pr->poll_interval == 0)
			continue;
		next = next_due(p, pr->name, now);
		if (now >= next && !stopping(p)) {
			te_error_clear(&err);
			if (poll_project(&o, s, cfg, pr, &err) == 0)
				json_decref(o);
			next = time(NULL) + (time_t)pr->poll_interval;
		}
		snprintf(due[n].name, sizeof(due[n].name), "%s", pr->name);
		due[n++].next = next;
	}
	if (due) {
		free(p->due);
		p->due = due;
		p->ndue = n;
	}
	ts_config_unref(cfg);
}

static void *poller_main(void *arg)
{
	struct ts_server *s = arg;
	struct ts_poller *p = s->poller;
	struct poll_req *reqs, *r;
	struct timespec until;

	pthread_mutex_lock(&p->lock);
	while (!p->stop) {
		reqs = p->reqs;
		p->reqs = NULL;
		pthread_mutex_unlock(&p->lock);
		serve(s, reqs);
		poll_round(s);
		pthread_mutex_lock(&p->lock);
		clock_gettime(CLOCK_REALTIME, &until);
		until.tv_sec += 1;
		if (!p->stop && !p->reqs)
			pthread_cond_timedwait(&p->cond, &p->lock, &until);
	}
	/* Stopping: whoever still waits is told so. */
	for (r = p->reqs; r; r = reqs) {
		reqs = r->next;
		p->nreqs--;
		if (r->abandoned) {
			req_free(r);
			continue;
		}
		te_error_set(&r->err, TE_ENET, "the server is stopping");
		r->done = true;
	}
	p->reqs = NULL;
	p->exited = true;
	pthread_cond_broadcast(&p->done);
	pthread_mutex_unlock(&p->lock);
	return NULL;
}

int ts_poller_start(struct ts_server *s, te_error *err)
{
	struct ts_poller *p = calloc(1, sizeof(*p));

	if (!p)
		return te_error_set(err, TE_ENOMEM, "out of memory");
	pthread_mutex_init(&p->lock, NULL);
	pthread_cond_init(&p->cond, NULL);
	pthread_cond_init(&p->done, NULL);
	s->poller = p;
	if (pthread_create(&p->thread, NULL, poller_main, s) != 0)
		return te_error_set(err, TE_ERROR, "cannot start the poller");
	p->started = true;
	return 0;
}

bool ts_poller_stop(struct ts_server *s, unsigned int timeout)
{
	struct ts_poller *p = s->poller;
	struct timespec until;
	bool exited;

	if (!p)
		return true;
	clock_gettime(CLOCK_REALTIME, &until);
	until.tv_sec += timeout < POLL_STOP_MIN ? POLL_STOP_MIN : timeout;
	pthread_mutex_lock(&p->lock);
	p->stop = true;
	pthread_cond_broadcast(&p->cond);
	while (p->started && !p->exited &&
	       pthread_cond_timedwait(&p->done, &p->lock, &until) == 0)
		;
	exited = !p->started || p->exited;
	pthread_mutex_unlock(&p->lock);
	if (!exited) {
		/* A poll that never ends (a remote that accepts and never
		 * answers): the thread still uses p, so nothing is freed. */
		ts_logkv(TE_LOG_WARN, "poller still busy, left running", NULL);
		return false;
	}
	if (p->started)
		pthread_join(p->thread, NULL);
	pthread_cond_destroy(&p->done);
	pthread_cond_destroy(&p->cond);
	pthread_mutex_destroy(&p->lock);
	free(p->due);
	free(p);
	s->poller = NULL;
	return true;
}
