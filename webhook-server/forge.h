/*
 * forge.h - what a forge delivery means: authentication and parsing for
 * GitHub, GitLab and Gitea/Forgejo (../shared/reference/webhooks.md).
 *
 * Pure functions over the raw request (headers + body bytes), no I/O, so
 * the unit tests feed them the recorded sample deliveries.
 *
 * Delivery life-cycle in the server (server.c / intake.c):
 *
 *   received --(limits: size, time, pending-body budget)--> 413 / 503 /
 *      |                                                    closed
 *      |
 *   verified --(ts_forge_verify: signature over the raw body)--> 401
 *      |
 *   parsed   --(ts_forge_parse: strict JSON)--> 400
 *      |            `-- not a tag push (ping, branch, delete) --> 200 ignored
 *   matched  --(repository == project's, tag valid, glob)--> 403/400/200
 *      |
 *   queued   --(ts_queue_submit: fsync'd)--> 202 {"job":...}
 *      |            (a failed job of the same tag + commit: queued again)
 *      |
 *   exported by a worker (worker.c) --> succeeded | failed (retries)
 */
#ifndef TE_FORGE_H
#define TE_FORGE_H

#include <stdbool.h>
#include <stddef.h>

#include "config.h"
#include "tagexport/buf.h"
#include "tagexport/error.h"

/* Header lookup, case-insensitive; NULL when absent. */
typedef const char *(*ts_header_fn)(void *ctx, const char *name);

struct ts_hook_request {
	ts_header_fn header;
	void *header_ctx;
	const char *body; /* raw bytes as received */
	size_t body_len;
};

typedef enum {
	TS_AUTH_OK = 0,
	TS_AUTH_MISSING = 1, /* no (or an empty) signature/token header */
	TS_AUTH_BAD = 2      /* present but wrong or malformed */
} ts_auth;

struct ts_hmac;

/* Check the delivery's signature (or token) against the project secret:
 * GitLab's token is compared with secret, GitHub's and Gitea's HMAC is
 * checked with hmac, the same secret prepared by ts_hmac_new (verify.h)
 * once per config load. */
ts_auth ts_forge_verify(te_forge forge, const char *secret, size_t secret_len,
                        const struct ts_hmac *hmac,
                        const struct ts_hook_request *req);

/* Longest delivery id kept for dedupe. */
#define TS_DELIVERY_MAX 128

struct ts_hook_event {
	bool is_tag;         /* a tag push to consider */
	const char *ignored; /* static reason when !is_tag */
	char *repository;    /* full name from the payload (tag pushes) */
	char *tag;           /* tag name, validated by ts_tag_name_valid */
	char commit[41];     /* lowercase hex the forge reported */
	char delivery[TS_DELIVERY_MAX + 1]; /* "" when absent/unusable */
};

/*
 * Parse an authenticated delivery.  Returns 0 with ev filled (a tag push
 * or an ignored event), or TE_EINVALID for malformed JSON, a missing field
 * or an invalid tag name / object id (the caller answers 400).  Dispose ev
 * in every case.
 */
int ts_forge_parse(struct ts_hook_event *ev, te_forge forge,
                   const struct ts_hook_request *req, te_error *err);
void ts_hook_event_dispose(struct ts_hook_event *ev);

/* git check-ref-format rules for "refs/tags/<tag>", 1..200 bytes, no
 * control characters, no leading '-'. */
bool ts_tag_name_valid(const char *tag);

/* 40 hex digits (any case). */
bool ts_oid_valid(const char *s);

/* ---- shared by the forge_*.c files ---------------------------------- */
struct json_t;
int ts_forge__json(struct json_t **out, const struct ts_hook_request *req,
                   te_error *err);
/* Form bodies: URL-decoded value of field "payload" (heap string). */
char *ts_forge__form_payload(const char *body, size_t len, size_t *out_len);
bool ts_forge__is_form(const struct ts_hook_request *req);
const char *ts_forge__str(struct json_t *obj, const char *path);
bool ts_forge__zero_oid(const char *s);
int ts_forge__tag_event(struct ts_hook_event *ev, const char *repository,
                        const char *tag, const char *commit, te_error *err);
void ts_forge__delivery(struct ts_hook_event *ev, const char *value);
/* A GitHub-format "push" payload (GitHub, Gitea and Forgejo send the same
 * fields): tag pushes become events, branches and deletions are ignored. */
int ts_forge__push_event(struct ts_hook_event *ev, struct json_t *root,
                         te_error *err);

int ts_github_parse(struct ts_hook_event *ev, const struct ts_hook_request *req,
                    te_error *err);
ts_auth ts_github_verify(const struct ts_hmac *hmac,
                         const struct ts_hook_request *req);
int ts_gitlab_parse(struct ts_hook_event *ev, const struct ts_hook_request *req,
                    te_error *err);
ts_auth ts_gitlab_verify(const char *secret, size_t secret_len,
                         const struct ts_hook_request *req);
int ts_gitea_parse(struct ts_hook_event *ev, const struct ts_hook_request *req,
                   te_error *err);
ts_auth ts_gitea_verify(const struct ts_hmac *hmac,
                        const struct ts_hook_request *req);

#endif
