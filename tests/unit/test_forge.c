/*
 * test_forge.c - forge adapters and signature checks against the recorded
 * sample deliveries in tests/fixtures/webhooks (HMACs computed with the
 * secret "test-secret-not-for-production" over the exact file bytes).
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "forge.h"
#include "verify.h"

#ifndef TE_FIXTURES_DIR
#define TE_FIXTURES_DIR "../fixtures"
#endif

static const char secret[] = "test-secret-not-for-production";

struct hdr {
	const char *name;
	const char *value;
};

struct fake {
	struct hdr h[16];
	char *body;
	size_t len;
};

static const char *lookup(void *ctx, const char *name)
{
	struct fake *f = ctx;
	size_t i;

	for (i = 0; i < 16 && f->h[i].name; i++)
		if (!strcasecmp(f->h[i].name, name))
			return f->h[i].value;
	return NULL;
}

static char *slurp(const char *name, size_t *len)
{
	char path[1024];
	FILE *fp;
	char *buf;
	long n;

	snprintf(path, sizeof(path), "%s/webhooks/%s", TE_FIXTURES_DIR, name);
	fp = fopen(path, "rb");
	assert_non_null(fp);
	fseek(fp, 0, SEEK_END);
	n = ftell(fp);
	fseek(fp, 0, SEEK_SET);
	buf = malloc((size_t)n + 1);
	assert_non_null(buf);
	assert_int_equal(fread(buf, 1, (size_t)n, fp), (size_t)n);
	buf[n] = '\0';
	fclose(fp);
	*len = (size_t)n;
	return buf;
}

static struct ts_hook_request req_of(struct fake *f)
{
	struct ts_hook_request r = {lookup, f, f->body, f->len};
	return r;
}

static void load(struct fake *f, const char *file)
{
	f->body = slurp(file, &f->len);
}

static void set_body(struct fake *f, const char *s)
{
	f->body = strdup(s);
	f->len = strlen(s);
}

/* ts_forge_parse of body with f's headers, which must succeed; body is
 * freed, the caller disposes *ev. */
static void parse_body(struct ts_hook_event *ev, struct fake *f, te_forge forge,
                       const char *body)
{
	struct ts_hook_request r;
	te_error err = TE_ERROR_INIT;

	set_body(f, body);
	r = req_of(f);
	assert_int_equal(ts_forge_parse(ev, forge, &r, &err), 0);
	free(f->body);
	f->body = NULL;
}

/* body is a valid delivery that forge ignores, for why (NULL: any). */
static void expect_ignored(struct fake *f, te_forge forge, const char *body,
                           const char *why)
{
	struct ts_hook_event ev;

	parse_body(&ev, f, forge, body);
	assert_false(ev.is_tag);
	if (why)
		assert_string_equal(ev.ignored, why);
	ts_hook_event_dispose(&ev);
}

/* body is a push of tag at commit (the peeled, lowercased id). */
static void expect_tag(struct fake *f, te_forge forge, const char *body,
                       const char *tag, const char *commit)
{
	struct ts_hook_event ev;

	parse_body(&ev, f, forge, body);
	assert_true(ev.is_tag);
	assert_string_equal(ev.tag, tag);
	assert_string_equal(ev.commit, commit);
	ts_hook_event_dispose(&ev);
}

/* ---- signatures ------------------------------------------------------ */

/* ts_forge_verify with key prepared as the server does at config load. */
static ts_auth verify(te_forge forge, const char *key, size_t keylen,
                      const struct ts_hook_request *r)
{
	te_error err = TE_ERROR_INIT;
	struct ts_hmac *hmac = NULL;
	ts_auth auth;

	assert_int_equal(ts_hmac_new(&hmac, key, keylen, &err), 0);
	auth = ts_forge_verify(forge, key, keylen, hmac, r);
	ts_hmac_free(hmac);
	return auth;
}

/* ts_hmac_hex_ok with a key prepared for the call. */
static bool hex_ok(const char *key, const char *body, const char *hex,
                   size_t hexlen)
{
	te_error err = TE_ERROR_INIT;
	struct ts_hmac *hmac = NULL;
	bool ok;

	assert_int_equal(ts_hmac_new(&hmac, key, strlen(key), &err), 0);
	ok = ts_hmac_hex_ok(hmac, body, strlen(body), hex, hexlen);
	ts_hmac_free(hmac);
	return ok;
}

static void github_published_vector(void **state)
{
	const char *key = "It's a Secret to Everybody";
	const char *body = "Hello, World!";
	char hex[65];

	(void)state;
	assert_true(hex_ok(
	    key, body,
	    "757107ea0eb2509fc211221cce984b8a37570b6d7586c22c46f4379c8b043e17",
	    64));
	assert_true(hex_ok(
	    key, body,
	    "757107EA0EB2509FC211221CCE984B8A37570B6D7586C22C46F4379C8B043E17",
	    64));
	ts_hmac_sha256_hex(hex, key, strlen(key), body, strlen(body));
	assert_string_equal(
	    hex,
	    "757107ea0eb2509fc211221cce984b8a37570b6d7586c22c46f4379c8b043e17");
	/* odd length, non-hex, truncated */
	assert_false(hex_ok(
	    key, body,
	    "757107ea0eb2509fc211221cce984b8a37570b6d7586c22c46f4379c8b043e1",
	    63));
	assert_false(hex_ok(
	    key, body,
	    "757107ea0eb2509fc211221cce984b8a37570b6d7586c22c46f4379c8b043ezz",
	    64));
	assert_false(hex_ok(key, body, "", 0));
}

static void github_signature_cases(void **state)
{
	struct fake f = {{{"X-GitHub-Event", "push"},
	                  {"Content-Type", "application/json"},
	                  {"X-Hub-Signature-256",
	                   "sha256=96d30789cb284d0d1daed61555d74e1b37924dfdbcf5"
	                   "98bf40287570a5e93ce9"}},
	                 NULL,
	                 0};
	struct ts_hook_request r;

	(void)state;
	load(&f, "github-push-tag.json");
	r = req_of(&f);
	assert_int_equal(verify(TE_FORGE_GITHUB, secret, strlen(secret), &r),
	                 TS_AUTH_OK);
	/* wrong secret */
	assert_int_equal(verify(TE_FORGE_GITHUB, "other", 5, &r), TS_AUTH_BAD);
	/* one flipped byte of the body */
	f.body[10] ^= 1;
	assert_int_equal(verify(TE_FORGE_GITHUB, secret, strlen(secret), &r),
	                 TS_AUTH_BAD);
	f.body[10] ^= 1;
	/* wrong algorithm prefix */
	f.h[2].value = "sha1=96d30789cb284d0d1daed61555d74e1b37924dfdbcf598bf40"
	               "287570a5e93ce9";
	assert_int_equal(verify(TE_FORGE_GITHUB, secret, strlen(secret), &r),
	                 TS_AUTH_BAD);
	f.h[2].value = "96d30789cb284d0d1daed61555d74e1b37924dfdbcf598bf4028757"
	               "0a5e93ce9";
	assert_int_equal(verify(TE_FORGE_GITHUB, secret, strlen(secret), &r),
	                 TS_AUTH_BAD);
	/* empty digest (hook without secret) and missing header */
	f.h[2].value = "sha256=";
	assert_int_equal(verify(TE_FORGE_GITHUB, secret, strlen(secret), &r),
	                 TS_AUTH_MISSING);
	/* only the legacy sha1 header: not enough */
	f.h[2].name = "X-Hub-Signature";
	f.h[2].value = "sha1=81ec10fc6d6cb97f470ed0672e829f9da90c8196";
	assert_int_equal(verify(TE_FORGE_GITHUB, secret, strlen(secret), &r),
	                 TS_AUTH_MISSING);
	free(f.body);
}

static void gitlab_token_cases(void **state)
{
	struct fake f = {
	    {{"X-Gitlab-Event", "Tag Push Hook"}, {"X-Gitlab-Token", secret}},
	    NULL,
	    0};
	struct ts_hook_request r;

	(void)state;
	load(&f, "gitlab-tag-push.json");
	r = req_of(&f);
	assert_int_equal(verify(TE_FORGE_GITLAB, secret, strlen(secret), &r),
	                 TS_AUTH_OK);
	f.h[1].value = "test-secret-not-for-productioN";
	assert_int_equal(verify(TE_FORGE_GITLAB, secret, strlen(secret), &r),
	                 TS_AUTH_BAD);
	f.h[1].value = "test-secret";
	assert_int_equal(verify(TE_FORGE_GITLAB, secret, strlen(secret), &r),
	                 TS_AUTH_BAD);
	f.h[1].value = "";
	assert_int_equal(verify(TE_FORGE_GITLAB, secret, strlen(secret), &r),
	                 TS_AUTH_MISSING);
	f.h[1].name = "X-Other";
	assert_int_equal(verify(TE_FORGE_GITLAB, secret, strlen(secret), &r),
	                 TS_AUTH_MISSING);
	free(f.body);
}

static void gitea_signature_cases(void **state)
{
	static const char sig[] = "d91510cf7c2a577fe01f39ba60ac887c70aef388c8"
	                          "3ab53ec2a17a36b0761c14";
	struct fake f = {{{"X-Gitea-Event", "push"},
	                  {"Content-Type", "application/json"},
	                  {"X-Gitea-Signature", sig}},
	                 NULL,
	                 0};
	struct ts_hook_request r;

	(void)state;
	load(&f, "gitea-tag-push.json");
	r = req_of(&f);
	assert_int_equal(verify(TE_FORGE_GITEA, secret, strlen(secret), &r),
	                 TS_AUTH_OK);
	f.h[2].name = "X-Forgejo-Signature";
	assert_int_equal(verify(TE_FORGE_GITEA, secret, strlen(secret), &r),
	                 TS_AUTH_OK);
	f.h[2].name = "X-Hub-Signature-256";
	f.h[2].value = "sha256=d91510cf7c2a577fe01f39ba60ac887c70aef388c83ab53e"
	               "c2a17a36b0761c14";
	assert_int_equal(verify(TE_FORGE_GITEA, secret, strlen(secret), &r),
	                 TS_AUTH_OK);
	/* a hook without a secret sends empty digests */
	f.h[2].name = "X-Gitea-Signature";
	f.h[2].value = "";
	f.h[3].name = "X-Hub-Signature-256";
	f.h[3].value = "sha256=";
	assert_int_equal(verify(TE_FORGE_GITEA, secret, strlen(secret), &r),
	                 TS_AUTH_MISSING);
	f.h[2].value = "00";
	assert_int_equal(verify(TE_FORGE_GITEA, secret, strlen(secret), &r),
	                 TS_AUTH_BAD);
	free(f.body);
}

/* Gitea signs the JSON, not the form body that carries it. */
static void gitea_form_body(void **state)
{
	const char *json = "{\"ref\":\"refs/tags/v1.0.0\",\"after\":\"1f6e3a9c"
	                   "2d8b07e4a5c6d7e8f9a0b1c2d3e4f506\",\"repository\":{"
	                   "\"full_name\":\"o/r\"}}";
	char sig[65], form[512], *p;
	struct fake f = {{{"X-Gitea-Event", "push"},
	                  {"Content-Type", "application/x-www-form-urlencoded"},
	                  {"X-Gitea-Signature", sig}},
	                 NULL,
	                 0};
	struct ts_hook_request r;
	struct ts_hook_event ev;
	te_error err = TE_ERROR_INIT;
	const char *q;

	(void)state;
	ts_hmac_sha256_hex(sig, secret, strlen(secret), json, strlen(json));
	p = form + sprintf(form, "payload=");
	for (q = json; *q; q++)
		p += (*q == '{' || *q == '}' || *q == '"' || *q == ':' ||
		      *q == '/' || *q == ',')
		         ? sprintf(p, "%%%02X", (unsigned char)*q)
		         : sprintf(p, "%c", *q);
	set_body(&f, form);
	r = req_of(&f);
	assert_int_equal(verify(TE_FORGE_GITEA, secret, strlen(secret), &r),
	                 TS_AUTH_OK);
	assert_int_equal(ts_forge_parse(&ev, TE_FORGE_GITEA, &r, &err), 0);
	assert_true(ev.is_tag);
	assert_string_equal(ev.tag, "v1.0.0");
	assert_string_equal(ev.commit,
	                    "1f6e3a9c2d8b07e4a5c6d7e8f9a0b1c2d3e4f506");
	ts_hook_event_dispose(&ev);
	free(f.body);
}

/* GitHub signs the raw form body. */
static void github_form_body(void **state)
{
	const char *form = "payload=%7B%22zen%22%3A%22hi%22%7D";
	char sig[72] = "sha256=";
	struct fake f = {{{"X-GitHub-Event", "ping"},
	                  {"Content-Type", "application/x-www-form-urlencoded"},
	                  {"X-Hub-Signature-256", sig}},
	                 NULL,
	                 0};
	struct ts_hook_request r;
	struct ts_hook_event ev;
	te_error err = TE_ERROR_INIT;

	(void)state;
	ts_hmac_sha256_hex(sig + 7, secret, strlen(secret), form, strlen(form));
	set_body(&f, form);
	r = req_of(&f);
	assert_int_equal(verify(TE_FORGE_GITHUB, secret, strlen(secret), &r),
	                 TS_AUTH_OK);
	assert_int_equal(ts_forge_parse(&ev, TE_FORGE_GITHUB, &r, &err), 0);
	assert_false(ev.is_tag);
	assert_string_equal(ev.ignored, "ping");
	ts_hook_event_dispose(&ev);
	free(f.body);
}

/* ---- parsers --------------------------------------------------------- */

static void github_tag_push(void **state)
{
	struct fake f = {
	    {{"X-GitHub-Event", "push"},
	     {"X-GitHub-Delivery", "5b1f2c80-cb8e-11f1-9a3e-2d1f4c7b9e10"},
	     {"Content-Type", "application/json"}},
	    NULL,
	    0};
	struct ts_hook_request r;
	struct ts_hook_event ev;
	te_error err = TE_ERROR_INIT;

	(void)state;
	load(&f, "github-push-tag.json");
	r = req_of(&f);
	assert_int_equal(ts_forge_parse(&ev, TE_FORGE_GITHUB, &r, &err), 0);
	assert_true(ev.is_tag);
	assert_string_equal(ev.repository, "acme-corp/widget-api");
	assert_string_equal(ev.tag, "v1.4.0");
	/* head_commit.id, the peeled commit, not "after" (tag object) */
	assert_string_equal(ev.commit,
	                    "c41d9e07b2f86a3315d0e8c97b1a2f4e6d5c3b2a");
	assert_string_equal(ev.delivery,
	                    "5b1f2c80-cb8e-11f1-9a3e-2d1f4c7b9e10");
	ts_hook_event_dispose(&ev);
	free(f.body);
}

static void github_ignored_events(void **state)
{
	struct fake f = {
	    {{"X-GitHub-Event", "push"}, {"Content-Type", "application/json"}},
	    NULL,
	    0};
	struct ts_hook_request r;
	struct ts_hook_event ev;
	te_error err = TE_ERROR_INIT;

	(void)state;
	load(&f, "github-push-branch.json");
	r = req_of(&f);
	assert_int_equal(ts_forge_parse(&ev, TE_FORGE_GITHUB, &r, &err), 0);
	assert_false(ev.is_tag);
	assert_string_equal(ev.ignored, "branch push");
	ts_hook_event_dispose(&ev);
	free(f.body);

	expect_ignored(&f, TE_FORGE_GITHUB,
	               "{\"ref\":\"refs/tags/v1\",\"deleted\":true,\"after\":"
	               "\"0000000000000000000000000000000000000000\","
	               "\"head_commit\":null,\"repository\":{\"full_name\":"
	               "\"a/b\"}}",
	               "tag deleted");
	f.h[0].value = "ping";
	expect_ignored(&f, TE_FORGE_GITHUB,
	               "{\"zen\":\"Keep it simple.\",\"hook_id\":1}", "ping");
	f.h[0].value = "create";
	expect_ignored(&f, TE_FORGE_GITHUB,
	               "{\"zen\":\"Keep it simple.\",\"hook_id\":1}", NULL);
}

static void malformed_payloads(void **state)
{
	static const char *const bad[] = {
	    "{\"ref\":",
	    "[1,2]",
	    "{\"ref\":\"refs/tags/v1\"} trailing",
	    /* duplicate keys: two parsers could disagree on the tag */
	    "{\"ref\":\"refs/tags/v1\",\"ref\":\"refs/tags/v2\"}",
	    /* hostile tag names */
	    "{\"ref\":\"refs/tags/--upload-pack=touch\",\"after\":\"1f6e3a9c"
	    "2d8b07e4a5c6d7e8f9a0b1c2d3e4f506\",\"repository\":{\"full_name\":"
	    "\"a/b\"}}",
	    "{\"ref\":\"refs/tags/v1\\nINJECTED\",\"after\":\"1f6e3a9c2d8b07e4"
	    "a5c6d7e8f9a0b1c2d3e4f506\",\"repository\":{\"full_name\":\"a/"
	    "b\"}}",
	    "{\"ref\":\"refs/tags/../../etc\",\"after\":\"1f6e3a9c2d8b07e4a5c6"
	    "d7e8f9a0b1c2d3e4f506\",\"repository\":{\"full_name\":\"a/b\"}}",
	    /* bad object id */
	    "{\"ref\":\"refs/tags/"
	    "v1\",\"after\":\"1f6e3a9c;id\",\"repository\":"
	    "{\"full_name\":\"a/b\"}}",
	};
	struct fake f = {{{"X-GitHub-Event", "push"},
	                  {"X-Gitea-Event", "push"},
	                  {"Content-Type", "application/json"}},
	                 NULL,
	                 0};
	struct ts_hook_request r;
	struct ts_hook_event ev;
	size_t i;

	(void)state;
	for (i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		te_error err = TE_ERROR_INIT;
		set_body(&f, bad[i]);
		r = req_of(&f);
		assert_int_equal(ts_forge_parse(&ev, TE_FORGE_GITEA, &r, &err),
		                 TE_EINVALID);
		ts_hook_event_dispose(&ev);
		te_error_clear(&err);
		assert_int_equal(ts_forge_parse(&ev, TE_FORGE_GITHUB, &r, &err),
		                 TE_EINVALID);
		ts_hook_event_dispose(&ev);
		free(f.body);
	}
}

static void gitlab_tag_push(void **state)
{
	static const char *const headers[] = {"Tag Push Hook", "Push Hook",
	                                      "System Hook", "Service Hook"};
	size_t i;
	struct fake f = {
	    {{"X-Gitlab-Event", "Tag Push Hook"},
	     {"X-Gitlab-Event-UUID", "a4f1c9e2-6b3d-4e8a-9c7f-0d2e5b8a1c36"},
	     {"Idempotency-Key", "7e2d9b41-0c5a-4f38-b6e1-9a3c8d2f5e70"},
	     {"Content-Type", "application/json"}},
	    NULL,
	    0};
	struct ts_hook_request r;
	struct ts_hook_event ev;
	te_error err = TE_ERROR_INIT;

	(void)state;
	load(&f, "gitlab-tag-push.json");
	r = req_of(&f);
	assert_int_equal(ts_forge_parse(&ev, TE_FORGE_GITLAB, &r, &err), 0);
	assert_true(ev.is_tag);
	assert_string_equal(ev.repository, "platform/ingest-worker");
	assert_string_equal(ev.tag, "v2.3.0");
	assert_string_equal(ev.commit,
	                    "a98c4e1d7f2b0c35e6d9a8b7c1f0e2d3b4a5c6d7");
	/* Idempotency-Key wins: it survives "Resend" */
	assert_string_equal(ev.delivery,
	                    "7e2d9b41-0c5a-4f38-b6e1-9a3c8d2f5e70");
	ts_hook_event_dispose(&ev);

	/* The body decides, whatever the header says (a hook made by an
	 * integration sends "Service Hook"; a system hook "System Hook"). */
	for (i = 0; i < sizeof(headers) / sizeof(headers[0]); i++) {
		f.h[0].value = headers[i];
		assert_int_equal(ts_forge_parse(&ev, TE_FORGE_GITLAB, &r, &err),
		                 0);
		assert_true(ev.is_tag);
		assert_string_equal(ev.tag, "v2.3.0");
		/* checkout_sha (the peeled commit), not after (the tag) */
		assert_string_equal(ev.commit,
		                    "a98c4e1d7f2b0c35e6d9a8b7c1f0e2d3b4a5c6d7");
		ts_hook_event_dispose(&ev);
	}
	free(f.body);

	/* A system hook names the event in event_name only. */
	expect_tag(&f, TE_FORGE_GITLAB,
	           "{\"event_name\":\"tag_push\",\"ref\":\"refs/tags/v3\","
	           "\"after\":\"1111111111111111111111111111111111111111\","
	           "\"checkout_sha\":"
	           "\"2222222222222222222222222222222222222222\","
	           "\"project\":{\"path_with_namespace\":\"a/b\"}}",
	           "v3", "2222222222222222222222222222222222222222");

	/* A branch push stays ignored, even under "Tag Push Hook". */
	f.h[0].value = "Tag Push Hook";
	expect_ignored(&f, TE_FORGE_GITLAB,
	               "{\"object_kind\":\"push\",\"event_name\":\"push\","
	               "\"ref\":\"refs/heads/main\"}",
	               "branch push");

	/* Other kinds, or none, are not handled. */
	f.h[0].value = "Service Hook";
	expect_ignored(&f, TE_FORGE_GITLAB,
	               "{\"object_kind\":\"merge_request\"}",
	               "event not handled");
	expect_ignored(&f, TE_FORGE_GITLAB, "{\"ref\":\"refs/tags/v1\"}",
	               "event not handled");

	f.h[0].value = "Tag Push Hook";
	expect_ignored(&f, TE_FORGE_GITLAB,
	               "{\"object_kind\":\"tag_push\",\"ref\":\"refs/tags/v1\","
	               "\"after\":\"0000000000000000000000000000000000000000\","
	               "\"checkout_sha\":null}",
	               "tag deleted");
}

static void gitea_events(void **state)
{
	struct fake f = {
	    {{"X-Gitea-Event", "push"},
	     {"X-Gitea-Delivery", "9d3f0b6e-2a71-4c58-8e19-4b6d2f0a7c35"},
	     {"Content-Type", "application/json"}},
	    NULL,
	    0};
	struct ts_hook_request r;
	struct ts_hook_event ev;
	te_error err = TE_ERROR_INIT;

	(void)state;
	load(&f, "gitea-tag-push.json");
	r = req_of(&f);
	assert_int_equal(ts_forge_parse(&ev, TE_FORGE_GITEA, &r, &err), 0);
	assert_true(ev.is_tag);
	assert_string_equal(ev.repository, "infra/edge-proxy");
	assert_string_equal(ev.tag, "v0.9.1");
	assert_string_equal(ev.commit,
	                    "6d0b9f2e4a1c3e5d7f9a0b2c4d6e8f0a1b3c5d7e");
	assert_string_equal(ev.delivery,
	                    "9d3f0b6e-2a71-4c58-8e19-4b6d2f0a7c35");
	ts_hook_event_dispose(&ev);
	free(f.body);

	f.h[0].value = "create";
	expect_tag(&f, TE_FORGE_GITEA,
	           "{\"ref\":\"v0.9.1\",\"ref_type\":\"tag\",\"sha\":"
	           "\"1F6E3A9C2D8B07E4A5C6D7E8F9A0B1C2D3E4F506\","
	           "\"repository\":{\"full_name\":\"infra/edge-proxy\"}}",
	           "v0.9.1", "1f6e3a9c2d8b07e4a5c6d7e8f9a0b1c2d3e4f506");
	expect_ignored(&f, TE_FORGE_GITEA,
	               "{\"ref\":\"main\",\"ref_type\":\"branch\",\"sha\":"
	               "\"1f6e3a9c2d8b07e4a5c6d7e8f9a0b1c2d3e4f506\"}",
	               NULL);

	f.h[0].value = "push";
	expect_ignored(&f, TE_FORGE_GITEA,
	               "{\"ref\":\"refs/tags/v1\",\"after\":"
	               "\"0000000000000000000000000000000000000000\"}",
	               "tag deleted");
}

static void tag_names(void **state)
{
	static const char *const good[] = {
	    "v1.2.3", "1.0.0-rc.1", "release/2",  "$(id)",
	    "`id`",   "v1.0;id",    "caf\xc3\xa9"};
	static const char *const bad[] = {
	    "",      "-x",        "--upload-pack=touch",
	    "a..b",  "a b",       "a~1",
	    "a^",    "a:b",       "a?",
	    "a*",    "a[",        "a\\b",
	    "a\nb",  "a\x1b[31m", "a\x7f",
	    "a@{1}", "@",         ".hidden",
	    "x/.y",  "a.lock",    "a/",
	    "/a",    "a//b",      "a."};
	size_t i;
	char longtag[260];

	(void)state;
	for (i = 0; i < sizeof(good) / sizeof(good[0]); i++)
		assert_true(ts_tag_name_valid(good[i]));
	for (i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
		assert_false(ts_tag_name_valid(bad[i]));
	memset(longtag, 'a', sizeof(longtag) - 1);
	longtag[sizeof(longtag) - 1] = '\0';
	assert_false(ts_tag_name_valid(longtag));
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(github_published_vector),
	    cmocka_unit_test(github_signature_cases),
	    cmocka_unit_test(gitlab_token_cases),
	    cmocka_unit_test(gitea_signature_cases),
	    cmocka_unit_test(gitea_form_body),
	    cmocka_unit_test(github_form_body),
	    cmocka_unit_test(github_tag_push),
	    cmocka_unit_test(github_ignored_events),
	    cmocka_unit_test(malformed_payloads),
	    cmocka_unit_test(gitlab_tag_push),
	    cmocka_unit_test(gitea_events),
	    cmocka_unit_test(tag_names),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
