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
 * Polls run one at a time (the poller thread and POST .../poll share a
 * lock), so two never race on a set file.
 */
#include "poll_set.h"
#include "server.h"
#include "slog.h"

#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "tagexport/mirror.h"

struct due {
	char name[TS_PROJECT_NAME_MAX + 1];
	time_t next;
};

struct ts_poller {
	pthread_mutex_t poll_lock; /* one poll at a time */
	pthread_mutex_t lock;      /* stop */
	pthread_cond_t cond;
	bool stop;
	bool started;
	pthread_t thread;
	struct due *due; /* the poller thread's own */
	size_t ndue;
};

/* Submit every (names[i], commits[i]) that has no job yet and wait for
 * them all to be durable; they go to queued as {"tag","commit","job"}. */
static int submit_all(json_t *queued, struct ts_server *s,
                      const struct ts_project *pr, const te_strvec *names,
                      const te_strvec *commits, te_error *err)
{
	struct ts_submission *subs = NULL;
	char existing[TE_JOB_ID_MAX];
	bool found;
	te_queue_ticket all = {0, 0};
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
		rc = te_queue_find(existing, &found, s->queue, pr->name,
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
		te_queue_ticket_merge(&all, &subs[n++].ticket);
	}
	te_queue_wait(s->queue, &all, &wait);
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
static int pick_new(te_strvec *names, te_strvec *commits,
                    const struct ts_project *pr, const te_strvec *remote,
                    const te_strvec *remote_commits, const te_strvec *seen,
                    const te_strvec *seen_commits, te_error *err)
{
	size_t i;

	for (i = 0; i < remote->count; i++) {
		const char *tag = remote->items[i],
		           *c = remote_commits->items[i];
		if (ts_poll_set_has(seen, seen_commits, tag, c) ||
		    !ts_tag_selected(&pr->tags, tag))
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

static int poll_locked(json_t *queued, bool *first, struct ts_server *s,
                       const struct ts_config *cfg, const struct ts_project *pr,
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
	    (rc = ts_poll_set_load(&seen, &seen_commits, &found, dir.ptr,
	                           pr->name, err)) < 0 ||
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

/* One poll of pr; *out (NULL on failure) is the answer of POST .../poll. */
static int poll_project(json_t **out, struct ts_server *s,
                        const struct ts_config *cfg,
                        const struct ts_project *pr, te_error *err)
{
	json_t *queued = json_array();
	bool first = false;
	char n[24];
	int rc;

	*out = NULL;
	if (!queued)
		return te_error_set(err, TE_ENOMEM, "out of memory");
	pthread_mutex_lock(&s->poller->poll_lock);
	rc = poll_locked(queued, &first, s, cfg, pr, err);
	pthread_mutex_unlock(&s->poller->poll_lock);
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

void ts_poll_now(struct ts_response *res, struct ts_server *s,
                 const struct ts_config *cfg, const struct ts_project *pr)
{
	te_error err = TE_ERROR_INIT;
	json_t *o = NULL;
	char *text = NULL;

	if (poll_project(&o, s, cfg, pr, &err) < 0) {
		ts_response_error(res, err.code == TE_ENOMEM ? 500 : 502,
		                  err.msg);
		return;
	}
	text = json_dumps(o, JSON_COMPACT);
	json_decref(o);
	ts_response_reset(res);
	res->status = 200;
	res->content_type = "application/json";
	if (!text || te_buf_puts(&res->body, text, NULL) < 0 ||
	    te_buf_puts(&res->body, "\n", NULL) < 0)
		ts_response_error(res, 500, "out of memory");
	free(text);
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
		const struct ts_project *pr = &cfg->projects[i];
		time_t now = time(NULL), next;
		if (pr->poll_interval == 0)
			continue;
		next = next_due(p, pr->name, now);
		if (now >= next) {
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
	struct timespec until;

	pthread_mutex_lock(&p->lock);
	while (!p->stop) {
		pthread_mutex_unlock(&p->lock);
		poll_round(s);
		pthread_mutex_lock(&p->lock);
		clock_gettime(CLOCK_REALTIME, &until);
		until.tv_sec += 1;
		if (!p->stop)
			pthread_cond_timedwait(&p->cond, &p->lock, &until);
	}
	pthread_mutex_unlock(&p->lock);
	return NULL;
}

int ts_poller_start(struct ts_server *s, te_error *err)
{
	struct ts_poller *p = calloc(1, sizeof(*p));

	if (!p)
		return te_error_set(err, TE_ENOMEM, "out of memory");
	pthread_mutex_init(&p->poll_lock, NULL);
	pthread_mutex_init(&p->lock, NULL);
	pthread_cond_init(&p->cond, NULL);
	s->poller = p;
	if (pthread_create(&p->thread, NULL, poller_main, s) != 0)
		return te_error_set(err, TE_ERROR, "cannot start the poller");
	p->started = true;
	return 0;
}

void ts_poller_stop(struct ts_server *s)
{
	struct ts_poller *p = s->poller;

	if (!p)
		return;
	pthread_mutex_lock(&p->lock);
	p->stop = true;
	pthread_cond_signal(&p->cond);
	pthread_mutex_unlock(&p->lock);
	if (p->started)
		pthread_join(p->thread, NULL);
	pthread_cond_destroy(&p->cond);
	pthread_mutex_destroy(&p->lock);
	pthread_mutex_destroy(&p->poll_lock);
	free(p->due);
	free(p);
	s->poller = NULL;
}
