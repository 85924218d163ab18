/*
 * test_status.c - commit statuses: the request each forge gets for each
 * state (URL, auth header, JSON body), the one-line descriptions, and the
 * retry policy.  The sender's HTTP is exercised by integration/t44.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "status.h"

static const char sha[] = "A98C4E1D7F2B0C35E6D9A8B7C1F0E2D3B4A5C6D7";
static const char lsha[] = "a98c4e1d7f2b0c35e6d9a8b7c1f0e2d3b4a5c6d7";

static char name[] = "shop", token[] = "tok-123",
            context[] = "tagexport/export";

static void project(te_project *pr, te_forge forge, const char *repo,
                    const char *api)
{
	memset(pr, 0, sizeof(*pr));
	pr->name = name;
	pr->forge = forge;
	pr->repository = (char *)repo;
	pr->status.enabled = true;
	pr->status.token = token;
	pr->status.token_len = 7;
	pr->status.api_url = (char *)api;
	pr->status.context = context;
}

static struct ts_status_msg *build(const te_project *pr, const char *public_url,
                                   ts_status_event ev)
{
	struct ts_status_info info = {.job_id = "1700000000-0123abcd",
	                              .project = "shop",
	                              .tag = "v1.2.0",
	                              .commit = sha,
	                              .event = ev,
	                              .attempt = 1,
	                              .max_attempts = 5,
	                              .nimages = 3,
	                              .error = "image \"api\": build failed"};
	struct ts_status_msg *m = NULL;
	te_error err = TE_ERROR_INIT;

	assert_int_equal(ts_status_msg_new(&m, pr, public_url, &info, &err), 0);
	assert_non_null(m);
	return m;
}

static json_t *body_of(const struct ts_status_msg *m)
{
	json_t *o = json_loads(m->body, 0, NULL);

	assert_non_null(o);
	return o;
}

static const char *field(json_t *o, const char *key)
{
	return json_string_value(json_object_get(o, key));
}

/* The request for each event, QUEUED..FAILED, to the project pr: its
 * URL, auth header, "state" (want, by event) and the status's name under
 * name_key; extra, when given, checks the rest of the body. */
static void check_events(const te_project *pr, const char *public_url,
                         const char *url, const char *auth,
                         const char *const want[4], const char *name_key,
                         void (*extra)(const struct ts_status_msg *, json_t *))
{
	struct ts_status_msg *m;
	json_t *o;
	int ev;

	for (ev = TS_STATUS_QUEUED; ev <= TS_STATUS_FAILED; ev++) {
		m = build(pr, public_url, (ts_status_event)ev);
		assert_string_equal(m->url, url);
		assert_string_equal(m->auth, auth);
		o = body_of(m);
		assert_string_equal(field(o, "state"), want[ev]);
		assert_string_equal(field(o, name_key), "tagexport/export");
		if (extra)
			extra(m, o);
		json_decref(o);
		ts_status_msg_free(m);
	}
}

static void github_body(const struct ts_status_msg *m, json_t *o)
{
	assert_string_equal(m->commit, lsha);
	assert_string_equal(field(o, "target_url"),
	                    "https://te.example.com/jobs/1700000000-0123abcd");
	assert_non_null(field(o, "description"));
	assert_null(json_object_get(o, "ref"));
	assert_null(json_object_get(o, "name"));
	/* the token is in the header only */
	assert_null(strstr(m->body, "tok-123"));
}

static void github_requests(void **state)
{
	static const char *const want[] = {"pending", "pending", "success",
	                                   "failure"};
	te_project pr;
	struct ts_status_msg *m;
	json_t *o;

	(void)state;
	project(&pr, TE_FORGE_GITHUB, "acme/shop", "https://api.github.com");
	check_events(&pr, "https://te.example.com",
	             "https://api.github.com/repos/acme/shop/statuses/"
	             "a98c4e1d7f2b0c35e6d9a8b7c1f0e2d3b4a5c6d7",
	             "Authorization: Bearer tok-123", want, "context",
	             github_body);
	/* Without public_url there is no job page to link. */
	m = build(&pr, NULL, TS_STATUS_SUCCEEDED);
	o = body_of(m);
	assert_null(json_object_get(o, "target_url"));
	assert_string_equal(field(o, "description"), "exported 3 images");
	json_decref(o);
	ts_status_msg_free(m);
}

static void gitlab_body(const struct ts_status_msg *m, json_t *o)
{
	(void)m;
	assert_string_equal(field(o, "ref"), "v1.2.0");
	assert_string_equal(field(o, "target_url"),
	                    "http://te:8080/jobs/1700000000-0123abcd");
	assert_null(json_object_get(o, "context"));
}

static void gitlab_requests(void **state)
{
	static const char *const want[] = {"pending", "running", "success",
	                                   "failed"};
	te_project pr;

	(void)state;
	project(&pr, TE_FORGE_GITLAB, "platform/sub group/ingest.worker",
	        "https://gl.example.com/api/v4");
	/* the whole path is one URL-encoded segment */
	check_events(&pr, "http://te:8080",
	             "https://gl.example.com/api/v4/projects/"
	             "platform%2Fsub%20group%2Fingest.worker/statuses/"
	             "a98c4e1d7f2b0c35e6d9a8b7c1f0e2d3b4a5c6d7",
	             "PRIVATE-TOKEN: tok-123", want, "name", gitlab_body);
}

static void gitea_requests(void **state)
{
	static const char *const want[] = {"pending", "pending", "success",
	                                   "failure"};
	te_project pr;

	(void)state;
	project(&pr, TE_FORGE_GITEA, "infra/edge-proxy",
	        "https://gitea.example.com/api/v1");
	check_events(&pr, NULL,
	             "https://gitea.example.com/api/v1/repos/"
	             "infra/edge-proxy/statuses/"
	             "a98c4e1d7f2b0c35e6d9a8b7c1f0e2d3b4a5c6d7",
	             "Authorization: token tok-123", want, "context", NULL);
}

static void refused(void **state)
{
	struct ts_status_info info = {.job_id = "j",
	                              .project = "shop",
	                              .tag = "v1",
	                              .commit = "abc",
	                              .event = TS_STATUS_QUEUED};
	te_project pr;
	struct ts_status_msg *m = NULL;
	te_error err = TE_ERROR_INIT;

	(void)state;
	project(&pr, TE_FORGE_GITHUB, "a/b", "https://api.github.com");
	assert_int_equal(ts_status_msg_new(&m, &pr, NULL, &info, &err),
	                 TE_EINVALID);
	assert_null(m);
	info.commit = sha;
	info.tag = "caf\xe9"; /* not UTF-8: no JSON string can hold it */
	pr.forge = TE_FORGE_GITLAB;
	te_error_clear(&err);
	assert_int_equal(ts_status_msg_new(&m, &pr, NULL, &info, &err),
	                 TE_EINVALID);
	assert_string_equal(err.msg, "tag is not UTF-8");
	pr.status.enabled = false;
	te_error_clear(&err);
	assert_int_equal(ts_status_msg_new(&m, &pr, NULL, &info, &err),
	                 TE_EINVALID);
	ts_status_msg_free(NULL);
}

static void descriptions(void **state)
{
	char d[TS_STATUS_DESCRIPTION_MAX + 1], err[400];
	size_t i;

	(void)state;
	ts_status_describe(d, TS_STATUS_QUEUED, 0, 5, 0, NULL);
	assert_string_equal(d, "export queued");
	ts_status_describe(d, TS_STATUS_RUNNING, 1, 5, 0, NULL);
	assert_string_equal(d, "export running");
	ts_status_describe(d, TS_STATUS_RUNNING, 2, 5, 0, NULL);
	assert_string_equal(d, "export running (attempt 2 of 5)");
	ts_status_describe(d, TS_STATUS_RUNNING, 6, 5, 0, NULL);
	assert_string_equal(d, "export running (attempt 6)");
	ts_status_describe(d, TS_STATUS_SUCCEEDED, 1, 5, 1, NULL);
	assert_string_equal(d, "exported 1 image");
	ts_status_describe(d, TS_STATUS_SUCCEEDED, 1, 5, 3, NULL);
	assert_string_equal(d, "exported 3 images");
	ts_status_describe(d, TS_STATUS_FAILED, 1, 5, 0,
	                   "image \"api\": build failed\nstep 2: exit 1");
	assert_string_equal(d, "image \"api\": build failed");
	ts_status_describe(d, TS_STATUS_FAILED, 1, 5, 0, "");
	assert_string_equal(d, "export failed");
	ts_status_describe(d, TS_STATUS_FAILED, 1, 5, 0, "a\tb\x1b[31m\xff");
	assert_string_equal(d, "a b [31m?");
	ts_status_describe(d, TS_STATUS_FAILED, 1, 5, 0, "caf\xc3\xa9 closed");
	assert_string_equal(d, "caf\xc3\xa9 closed");
	/* At most 140 bytes, never half a character: 139 'x' then 'é'. */
	memset(err, 'x', 139);
	strcpy(err + 139, "\xc3\xa9 and more");
	ts_status_describe(d, TS_STATUS_FAILED, 1, 5, 0, err);
	assert_int_equal(strlen(d), 139);
	for (i = 0; i < 300; i++)
		err[i] = 'y';
	err[300] = '\0';
	ts_status_describe(d, TS_STATUS_FAILED, 1, 5, 0, err);
	assert_int_equal(strlen(d), TS_STATUS_DESCRIPTION_MAX);
	/* A long error keeps its first two "context: " parts. */
	snprintf(err, sizeof(err),
	         "image \"api\": buildah build failed (exit 125): STEP 1/5: "
	         "FROM r.example.com/base:1 | STEP 2/5: COPY missing /x | "
	         "Error: building at STEP \"COPY missing /x\": no such file");
	ts_status_describe(d, TS_STATUS_FAILED, 1, 5, 0, err);
	assert_string_equal(d,
	                    "image \"api\": buildah build failed (exit 125)");
}

static void retries(void **state)
{
	(void)state;
	/* network errors and server trouble: 4, 8, 16, 32 s, five tries */
	assert_int_equal(ts_status_retry_delay(1, 0, 0), 4);
	assert_int_equal(ts_status_retry_delay(2, 503, 0), 8);
	assert_int_equal(ts_status_retry_delay(3, 500, 0), 16);
	assert_int_equal(ts_status_retry_delay(4, 429, 0), 32);
	assert_int_equal(ts_status_retry_delay(TS_STATUS_TRIES, 503, 0), -1);
	assert_int_equal(ts_status_retry_delay(1, 408, 0), 4);
	/* Retry-After wins, capped */
	assert_int_equal(ts_status_retry_delay(1, 503, 1), 1);
	assert_int_equal(ts_status_retry_delay(1, 429, 3600), 60);
	/* GitHub's secondary rate limit: 403 with Retry-After */
	assert_int_equal(ts_status_retry_delay(1, 403, 5), 5);
	/* the request itself is wrong: no retry */
	assert_int_equal(ts_status_retry_delay(1, 403, 0), -1);
	assert_int_equal(ts_status_retry_delay(1, 401, 0), -1);
	assert_int_equal(ts_status_retry_delay(1, 404, 0), -1);
	assert_int_equal(ts_status_retry_delay(1, 422, 0), -1);
	assert_int_equal(ts_status_retry_delay(1, 400, 0), -1);
	/* the core's status classes: a server that lacks the method */
	assert_int_equal(ts_status_retry_delay(1, 501, 0), -1);
	assert_int_equal(ts_status_retry_delay(1, 503, 1L << 40), 60);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(github_requests),
	    cmocka_unit_test(gitlab_requests),
	    cmocka_unit_test(gitea_requests),
	    cmocka_unit_test(refused),
	    cmocka_unit_test(descriptions),
	    cmocka_unit_test(retries),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
