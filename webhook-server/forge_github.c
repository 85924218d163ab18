/*
 * forge_github.c - GitHub deliveries (webhooks.md section 1).
 *
 * Trigger: X-GitHub-Event "push" with ref refs/tags/<name>, not deleted.
 * The commit is head_commit.id: for an annotated tag "after" is the tag
 * object, head_commit is the peeled commit (GitHub changelog 2021-10-01).
 * "create" carries no object id at all, so it is only acknowledged; the
 * push event of the same tag does the work.
 */
#include "forge.h"
#include "verify.h"

#include <jansson.h>
#include <string.h>

ts_auth ts_github_verify(const struct ts_hmac *hmac,
                         const struct ts_hook_request *req)
{
	const char *sig = req->header(req->header_ctx, "X-Hub-Signature-256");

	/* The legacy sha1 X-Hub-Signature alone is not accepted: a secret
	 * is configured, so the strongest header must be there. */
	if (!sig || !*sig || !strcmp(sig, "sha256="))
		return TS_AUTH_MISSING;
	if (strncmp(sig, "sha256=", 7) != 0)
		return TS_AUTH_BAD;
	return ts_hmac_hex_ok(hmac, req->body, req->body_len, sig + 7,
	                      strlen(sig + 7))
	           ? TS_AUTH_OK
	           : TS_AUTH_BAD;
}

int ts_github_parse(struct ts_hook_event *ev, const struct ts_hook_request *req,
                    te_error *err)
{
	const char *event = req->header(req->header_ctx, "X-GitHub-Event");
	json_t *root = NULL;
	int rc;

	ts_forge__delivery(ev,
	                   req->header(req->header_ctx, "X-GitHub-Delivery"));
	if ((rc = ts_forge__json(&root, req, err)) < 0)
		return rc;
	if (!event) {
		rc = te_error_set(err, TE_EINVALID,
		                  "missing X-GitHub-Event header");
		goto done;
	}
	if (!strcmp(event, "ping")) {
		ev->ignored = "ping";
		goto done;
	}
	if (!strcmp(event, "create")) {
		ev->ignored = "create event (the push event triggers)";
		goto done;
	}
	if (strcmp(event, "push") != 0) {
		ev->ignored = "event not handled";
		goto done;
	}
	rc = ts_forge__push_event(ev, root, err);
done:
	json_decref(root);
	return rc;
}
