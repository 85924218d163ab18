/*
 * forge_gitea.c - Gitea and Forgejo deliveries (webhooks.md section 3.1).
 *
 * Signature: X-Forgejo-Signature / X-Gitea-Signature (bare hex), else
 * X-Hub-Signature-256 ("sha256=" hex); an empty value means the hook has
 * no secret, which counts as missing.  Gitea signs the JSON payload, so
 * for a form body (payload=<urlencoded JSON>) the MAC covers the decoded
 * JSON, unlike GitHub.
 *
 * Triggers: "push" of refs/tags/<name> (no created/deleted fields: a zero
 * "after" is a deletion; head_commit.id is the peeled commit) and
 * "create" with ref_type "tag" ("ref" is the short name, "sha" the ref
 * value — the tag object for an annotated tag; the worker accepts either).
 */
#include "forge.h"
#include "verify.h"

#include <jansson.h>
#include <stdlib.h>
#include <string.h>

static const char *sig_header(const struct ts_hook_request *req, bool *prefixed)
{
	static const char *const bare[] = {"X-Forgejo-Signature",
	                                   "X-Gitea-Signature"};
	const char *v;
	size_t i;

	*prefixed = false;
	for (i = 0; i < sizeof(bare) / sizeof(bare[0]); i++) {
		v = req->header(req->header_ctx, bare[i]);
		if (v && *v)
			return v;
	}
	v = req->header(req->header_ctx, "X-Hub-Signature-256");
	if (v && *v && strcmp(v, "sha256=") != 0) {
		*prefixed = true;
		return v;
	}
	return NULL;
}

ts_auth ts_gitea_verify(const struct ts_hmac *hmac,
                        const struct ts_hook_request *req)
{
	const char *data = req->body;
	size_t len = req->body_len;
	char *form = NULL;
	bool prefixed, ok;
	const char *sig = sig_header(req, &prefixed);

	if (!sig)
		return TS_AUTH_MISSING;
	if (prefixed) {
		if (strncmp(sig, "sha256=", 7) != 0)
			return TS_AUTH_BAD;
		sig += 7;
	}
	if (ts_forge__is_form(req)) {
		form = ts_forge__form_payload(req->body, req->body_len, &len);
		if (!form)
			return TS_AUTH_BAD;
		data = form;
	}
	ok = ts_hmac_hex_ok(hmac, data, len, sig, strlen(sig));
	free(form);
	return ok ? TS_AUTH_OK : TS_AUTH_BAD;
}

static const char *event_header(const struct ts_hook_request *req)
{
	const char *v = req->header(req->header_ctx, "X-Forgejo-Event");

	if (!v)
		v = req->header(req->header_ctx, "X-Gitea-Event");
	if (!v)
		v = req->header(req->header_ctx, "X-Gogs-Event");
	return v;
}

int ts_gitea_parse(struct ts_hook_event *ev, const struct ts_hook_request *req,
                   te_error *err)
{
	const char *event = event_header(req);
	const char *ref, *type;
	json_t *root = NULL;
	int rc;

	ts_forge__delivery(ev,
	                   req->header(req->header_ctx, "X-Forgejo-Delivery"));
	ts_forge__delivery(ev,
	                   req->header(req->header_ctx, "X-Gitea-Delivery"));
	if ((rc = ts_forge__json(&root, req, err)) < 0)
		return rc;
	if (!event) {
		rc = te_error_set(err, TE_EINVALID,
		                  "missing X-Gitea-Event header");
		goto done;
	}
	ref = ts_forge__str(root, "ref");
	if (!strcmp(event, "create")) {
		type = ts_forge__str(root, "ref_type");
		if (!type || strcmp(type, "tag") != 0) {
			ev->ignored = "branch created";
			goto done;
		}
		if (!ref) {
			rc = te_error_set(err, TE_EINVALID,
			                  "create without a ref");
			goto done;
		}
		if (!strncmp(ref, "refs/tags/", 10))
			ref += 10;
		rc = ts_forge__tag_event(
		    ev, ts_forge__str(root, "repository.full_name"), ref,
		    ts_forge__str(root, "sha"), err);
		goto done;
	}
	if (!strcmp(event, "delete")) {
		ev->ignored = "tag deleted";
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
