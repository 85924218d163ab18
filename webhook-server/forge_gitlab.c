/*
 * forge_gitlab.c - GitLab deliveries (webhooks.md section 2).
 *
 * Trigger: the body's object_kind (else event_name) "tag_push",
 * whatever X-Gitlab-Event says: project hooks send "Tag Push Hook", system
 * hooks "System Hook" and hooks made by integrations "Service Hook", all
 * with the same body (https://docs.gitlab.com/user/project/integrations/
 * webhook_events/#tag-events).  The commit is checkout_sha, the peeled
 * commit (lib/gitlab/data_builder/push.rb); it is null when the tag is
 * removed.
 * Authentication is the secret itself in X-Gitlab-Token, compared in
 * constant time.  Dedupe on Idempotency-Key (stable across "Resend"),
 * else X-Gitlab-Event-UUID.
 */
#include "forge.h"
#include "verify.h"

#include <jansson.h>
#include <string.h>

ts_auth ts_gitlab_verify(const char *secret, size_t secret_len,
                         const struct ts_hook_request *req)
{
	const char *tok = req->header(req->header_ctx, "X-Gitlab-Token");

	if (!tok || !*tok)
		return TS_AUTH_MISSING;
	return ts_secret_equal(secret, secret_len, tok, strlen(tok))
	           ? TS_AUTH_OK
	           : TS_AUTH_BAD;
}

int ts_gitlab_parse(struct ts_hook_event *ev, const struct ts_hook_request *req,
                    te_error *err)
{
	const char *ref, *after, *commit, *kind;
	json_t *root = NULL;
	int rc;

	ts_forge__delivery(ev, req->header(req->header_ctx, "Idempotency-Key"));
	ts_forge__delivery(ev,
	                   req->header(req->header_ctx, "X-Gitlab-Event-UUID"));
	if ((rc = ts_forge__json(&root, req, err)) < 0)
		return rc;
	kind = ts_forge__str(root, "object_kind");
	if (!kind)
		kind = ts_forge__str(root, "event_name");
	if (kind && !strcmp(kind, "push")) {
		ev->ignored = "branch push";
		goto done;
	}
	if (!kind || strcmp(kind, "tag_push") != 0) {
		ev->ignored = "event not handled";
		goto done;
	}
	ref = ts_forge__str(root, "ref");
	if (!ref) {
		rc = te_error_set(err, TE_EINVALID, "tag push without a ref");
		goto done;
	}
	if (strncmp(ref, "refs/tags/", 10) != 0) {
		ev->ignored = "branch push";
		goto done;
	}
	after = ts_forge__str(root, "after");
	commit = ts_forge__str(root, "checkout_sha");
	if (ts_forge__zero_oid(after) || !commit) {
		ev->ignored = "tag deleted";
		goto done;
	}
	rc = ts_forge__tag_event(
	    ev, ts_forge__str(root, "project.path_with_namespace"), ref + 10,
	    commit, err);
done:
	json_decref(root);
	return rc;
}
