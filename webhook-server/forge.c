/*
 * forge.c - what the three forge adapters share (forge.h): strict JSON
 * loading, form bodies, tag name and object id validation, tag globs.
 */
#include "forge.h"
#include "tagexport/hex.h"

#include <jansson.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#define TS_TAG_MAX 200

ts_auth ts_forge_verify(te_forge forge, const char *secret, size_t secret_len,
                        const struct ts_hmac *hmac,
                        const struct ts_hook_request *req)
{
	switch (forge) {
	case TE_FORGE_GITHUB:
		return ts_github_verify(hmac, req);
	case TE_FORGE_GITLAB:
		return ts_gitlab_verify(secret, secret_len, req);
	case TE_FORGE_GITEA:
		return ts_gitea_verify(hmac, req);
	}
	return TS_AUTH_BAD;
}

int ts_forge_parse(struct ts_hook_event *ev, te_forge forge,
                   const struct ts_hook_request *req, te_error *err)
{
	memset(ev, 0, sizeof(*ev));
	switch (forge) {
	case TE_FORGE_GITHUB:
		return ts_github_parse(ev, req, err);
	case TE_FORGE_GITLAB:
		return ts_gitlab_parse(ev, req, err);
	case TE_FORGE_GITEA:
		return ts_gitea_parse(ev, req, err);
	}
	return te_error_set(err, TE_EINVALID, "unknown forge");
}

void ts_hook_event_dispose(struct ts_hook_event *ev)
{
	free(ev->repository);
	free(ev->tag);
	ev->repository = NULL;
	ev->tag = NULL;
}

bool ts_tag_name_valid(const char *tag)
{
	size_t len, i;
	const char *comp;

	if (!tag)
		return false;
	len = strlen(tag);
	if (len == 0 || len > TS_TAG_MAX || tag[0] == '-' || tag[0] == '/' ||
	    tag[len - 1] == '/' || tag[len - 1] == '.' || !strcmp(tag, "@"))
		return false;
	for (i = 0; i < len; i++) {
		unsigned char c = (unsigned char)tag[i];
		if (c < 0x20 || c == 0x7f || strchr(" ~^:?*[\\", c))
			return false;
		if (c == '.' && tag[i + 1] == '.')
			return false;
		if (c == '@' && tag[i + 1] == '{')
			return false;
		if (c == '/' && tag[i + 1] == '/')
			return false;
	}
	/* Per component: no leading '.', no ".lock" suffix. */
	for (comp = tag; comp; comp = strchr(comp, '/')) {
		const char *end;
		size_t clen;
		if (*comp == '/')
			comp++;
		end = strchr(comp, '/');
		clen = end ? (size_t)(end - comp) : strlen(comp);
		if (clen == 0 || comp[0] == '.')
			return false;
		if (clen >= 5 && !memcmp(comp + clen - 5, ".lock", 5))
			return false;
		if (!end)
			break;
		comp = end;
	}
	return true;
}

bool ts_oid_valid(const char *s)
{
	size_t i;

	if (!s)
		return false;
	for (i = 0; i < 40; i++) {
		char c = s[i];
		if (!((c >= '0' && c <= '9') || (c >= 'a' && c <= 'f') ||
		      (c >= 'A' && c <= 'F')))
			return false;
	}
	return s[40] == '\0';
}

bool ts_forge__zero_oid(const char *s)
{
	if (!s || !*s)
		return false;
	for (; *s; s++)
		if (*s != '0')
			return false;
	return true;
}

bool ts_forge__is_form(const struct ts_hook_request *req)
{
	const char *ct = req->header(req->header_ctx, "Content-Type");

	return ct && !strncasecmp(ct, "application/x-www-form-urlencoded",
	                          strlen("application/x-www-form-urlencoded"));
}

char *ts_forge__form_payload(const char *body, size_t len, size_t *out_len)
{
	const char *p = body, *end = body + len;

	while (p < end) {
		const char *amp = memchr(p, '&', (size_t)(end - p));
		const char *fend = amp ? amp : end;
		if ((size_t)(fend - p) >= 8 && !memcmp(p, "payload=", 8)) {
			char *out = malloc((size_t)(fend - p) + 1);
			size_t n = 0;
			const char *q;
			if (!out)
				return NULL;
			for (q = p + 8; q < fend; q++) {
				if (*q == '+') {
					out[n++] = ' ';
				} else if (*q == '%' && fend - q >= 3 &&
				           te_hex_digit(q[1]) >= 0 &&
				           te_hex_digit(q[2]) >= 0) {
					out[n++] =
					    (char)(te_hex_digit(q[1]) * 16 +
					           te_hex_digit(q[2]));
					q += 2;
				} else {
					out[n++] = *q;
				}
			}
			out[n] = '\0';
			*out_len = n;
			return out;
		}
		p = fend + 1;
	}
	return NULL;
}

int ts_forge__json(json_t **out, const struct ts_hook_request *req,
                   te_error *err)
{
	json_error_t jerr;
	char *form = NULL;
	const char *data = req->body;
	size_t len = req->body_len;
	json_t *root;

	*out = NULL;
	if (ts_forge__is_form(req)) {
		form = ts_forge__form_payload(req->body, req->body_len, &len);
		if (!form)
			return te_error_set(
			    err, TE_EINVALID,
			    "form body without a payload field");
		data = form;
	}
	/* Duplicate keys would let this parser and another one see
	 * different data under the same signature: refuse them. */
	root = json_loadb(data, len, JSON_REJECT_DUPLICATES, &jerr);
	free(form);
	if (!root)
		return te_error_set(err, TE_EINVALID,
		                    "malformed JSON at line %d column %d",
		                    jerr.line, jerr.column);
	if (!json_is_object(root)) {
		json_decref(root);
		return te_error_set(err, TE_EINVALID,
		                    "the payload is not a JSON object");
	}
	*out = root;
	return 0;
}

/* "a.b.c" lookup of a string; NULL when absent or not a string. */
const char *ts_forge__str(json_t *obj, const char *path)
{
	char key[64];
	const char *dot;

	while ((dot = strchr(path, '.'))) {
		size_t n = (size_t)(dot - path);
		if (n >= sizeof(key))
			return NULL;
		memcpy(key, path, n);
		key[n] = '\0';
		obj = json_object_get(obj, key);
		if (!json_is_object(obj))
			return NULL;
		path = dot + 1;
	}
	return json_string_value(json_object_get(obj, path));
}

void ts_forge__delivery(struct ts_hook_event *ev, const char *value)
{
	size_t i, len;

	if (!value || ev->delivery[0])
		return;
	len = strlen(value);
	if (len == 0 || len > TS_DELIVERY_MAX)
		return;
	/* Only printable ASCII without spaces makes a dedupe key. */
	for (i = 0; i < len; i++)
		if (value[i] <= 0x20 || value[i] >= 0x7f)
			return;
	memcpy(ev->delivery, value, len + 1);
}

int ts_forge__push_event(struct ts_hook_event *ev, json_t *root, te_error *err)
{
	const char *ref = ts_forge__str(root, "ref");
	const char *after, *commit;

	if (!ref)
		return te_error_set(err, TE_EINVALID, "push without a ref");
	if (strncmp(ref, "refs/tags/", 10) != 0) {
		ev->ignored = "branch push";
		return 0;
	}
	after = ts_forge__str(root, "after");
	if (json_is_true(json_object_get(root, "deleted")) ||
	    ts_forge__zero_oid(after)) {
		ev->ignored = "tag deleted";
		return 0;
	}
	commit = ts_forge__str(root, "head_commit.id");
	return ts_forge__tag_event(ev,
	                           ts_forge__str(root, "repository.full_name"),
	                           ref + 10, commit ? commit : after, err);
}

int ts_forge__tag_event(struct ts_hook_event *ev, const char *repository,
                        const char *tag, const char *commit, te_error *err)
{
	size_t i;

	if (!repository || !*repository)
		return te_error_set(err, TE_EINVALID,
		                    "the payload names no repository");
	if (!ts_tag_name_valid(tag))
		return te_error_set(err, TE_EINVALID, "invalid tag name");
	if (!ts_oid_valid(commit))
		return te_error_set(err, TE_EINVALID,
		                    "the payload has no 40-hex commit id");
	ev->repository = strdup(repository);
	ev->tag = strdup(tag);
	if (!ev->repository || !ev->tag)
		return te_error_set(err, TE_ENOMEM, "out of memory");
	for (i = 0; i < 40; i++)
		ev->commit[i] = (char)(commit[i] >= 'A' && commit[i] <= 'F'
		                           ? commit[i] - 'A' + 'a'
		                           : commit[i]);
	ev->commit[40] = '\0';
	ev->is_tag = true;
	return 0;
}
