#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "registry_int.h"

#define EMPTY_SHA                                                              \
	"sha256:"                                                              \
	"e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"

static void digest_validation(void **state)
{
	char d[TE_DIGEST_STR_MAX];

	(void)state;
	assert_true(te_reg__digest_valid(EMPTY_SHA));
	assert_false(te_reg__digest_valid(NULL));
	assert_false(te_reg__digest_valid("sha256:abc"));
	assert_false(te_reg__digest_valid("sha256:"
	                                  "E3B0C44298FC1C149AFBF4C8996FB92427AE"
	                                  "41E4649B934CA495991B7852B855"));
	assert_false(te_reg__digest_valid(EMPTY_SHA "0"));
	assert_false(te_reg__digest_valid("sha512:"
	                                  "e3b0c44298fc1c149afbf4c8996fb92427ae"
	                                  "41e4649b934ca495991b7852b855"));
	assert_false(te_reg__digest_valid("sha256:"
	                                  "e3b0c44298fc1c149afbf4c8996fb92427ae"
	                                  "41e4649b934ca495991b7852b85/"));
	te_reg__sha256(d, "", 0);
	assert_string_equal(d, EMPTY_SHA);
	te_reg__sha256(d, "abc", 3);
	assert_string_equal(d, "sha256:ba7816bf8f01cfea414140de5dae2223b00361a3"
	                       "96177a9cb410ff61f20015ad");
}

static void loopback_hosts(void **state)
{
	(void)state;
	assert_true(te_reg__host_is_loopback("localhost"));
	assert_true(te_reg__host_is_loopback("LocalHost:5000"));
	assert_true(te_reg__host_is_loopback("127.0.0.1:5000"));
	assert_true(te_reg__host_is_loopback("127.10.20.30"));
	assert_true(te_reg__host_is_loopback("[::1]:5000"));
	assert_true(te_reg__host_is_loopback("[::1]"));
	assert_false(te_reg__host_is_loopback("127.0.0.1.evil.com"));
	assert_false(te_reg__host_is_loopback("127.example:5000"));
	assert_false(te_reg__host_is_loopback("localhost.example.com"));
	assert_false(te_reg__host_is_loopback("[::10]"));
	assert_false(te_reg__host_is_loopback("ghcr.io"));
	assert_false(te_reg__host_is_loopback(""));
}

static void challenge_bearer(void **state)
{
	struct te_reg_challenge c;
	te_error err = TE_ERROR_INIT;

	(void)state;
	assert_int_equal(te_reg__parse_challenge(
	                     &c,
	                     "Bearer realm=\"https://auth.example/token\","
	                     "service=\"registry.example\","
	                     "scope=\"repository:ns/app:pull,push\","
	                     "error=\"insufficient_scope\"",
	                     &err),
	                 0);
	assert_int_equal(c.scheme, TE_REG_AUTH_BEARER);
	assert_string_equal(c.realm, "https://auth.example/token");
	assert_string_equal(c.service, "registry.example");
	assert_string_equal(c.scope, "repository:ns/app:pull,push");
	assert_string_equal(c.error, "insufficient_scope");
}

static void challenge_basic_and_multi(void **state)
{
	struct te_reg_challenge c;
	te_error err = TE_ERROR_INIT;

	(void)state;
	assert_int_equal(
	    te_reg__parse_challenge(&c, "Basic realm=\"basic-realm\"", &err),
	    0);
	assert_int_equal(c.scheme, TE_REG_AUTH_BASIC);
	assert_string_equal(c.realm, "basic-realm");

	/* two challenges in one value (header callback joins with ", "):
	 * Bearer wins over Basic whatever the order; schemes are
	 * case-insensitive; token (unquoted) values work */
	assert_int_equal(
	    te_reg__parse_challenge(&c,
	                            "basic realm=\"x, y\", BEARER "
	                            "realm=https://a.example/t,service=svc",
	                            &err),
	    0);
	assert_int_equal(c.scheme, TE_REG_AUTH_BEARER);
	assert_string_equal(c.realm, "https://a.example/t");
	assert_string_equal(c.service, "svc");

	/* unknown schemes are skipped, their params ignored */
	assert_int_equal(
	    te_reg__parse_challenge(&c,
	                            "Negotiate abc==, Digest realm=\"d\", "
	                            "Basic realm=\"b\"",
	                            &err),
	    0);
	assert_int_equal(c.scheme, TE_REG_AUTH_BASIC);
	assert_string_equal(c.realm, "b");
}

static void challenge_rejects(void **state)
{
	struct te_reg_challenge c;
	te_error err = TE_ERROR_INIT;

	(void)state;
	assert_int_equal(te_reg__parse_challenge(&c, "", &err), TE_EINVALID);
	te_error_clear(&err);
	assert_int_equal(
	    te_reg__parse_challenge(&c, "Digest realm=\"x\"", &err),
	    TE_EINVALID);
	te_error_clear(&err);
	assert_int_equal(
	    te_reg__parse_challenge(&c, "Bearer service=\"x\"", &err),
	    TE_EINVALID);
	te_error_clear(&err);
	/* unterminated quote and junk must not crash */
	assert_int_equal(te_reg__parse_challenge(&c, "Basic realm=\"abc", &err),
	                 0);
	assert_string_equal(c.realm, "abc");
	assert_int_equal(te_reg__parse_challenge(&c, "=,\"\"=,,", &err),
	                 TE_EINVALID);
}

static void challenge_truncates_long_values(void **state)
{
	struct te_reg_challenge c;
	te_error err = TE_ERROR_INIT;
	char big[5000];

	(void)state;
	memcpy(big, "Bearer realm=\"https://", 22);
	memset(big + 22, 'a', sizeof(big) - 24);
	big[sizeof(big) - 2] = '"';
	big[sizeof(big) - 1] = '\0';
	assert_int_equal(te_reg__parse_challenge(&c, big, &err), 0);
	assert_int_equal(strlen(c.realm), sizeof(c.realm) - 1);
}

static void location_resolution(void **state)
{
	te_error err = TE_ERROR_INIT;
	char *u = NULL;
	const char *base = "http://127.0.0.1:5000/v2/a/b/blobs/uploads/";

	(void)state;
	assert_int_equal(
	    te_reg__resolve_location(
	        &u, base, "/v2/a/b/blobs/uploads/uuid?_state=x", &err),
	    0);
	assert_string_equal(u, "http://127.0.0.1:5000/v2/a/b/blobs/uploads/"
	                       "uuid?_state=x");
	free(u);
	assert_int_equal(te_reg__resolve_location(&u, base, "uuid2", &err), 0);
	assert_string_equal(u,
	                    "http://127.0.0.1:5000/v2/a/b/blobs/uploads/uuid2");
	free(u);
	assert_int_equal(te_reg__resolve_location(
	                     &u, base, "https://s3.example/up?sig=1&x=2", &err),
	                 0);
	assert_string_equal(u, "https://s3.example/up?sig=1&x=2");
	free(u);
	assert_int_equal(
	    te_reg__resolve_location(&u, base, "ftp://evil.example/x", &err),
	    TE_EINVALID);
	assert_null(u);
	te_error_clear(&err);
	assert_int_equal(te_reg__resolve_location(&u, base, "", &err),
	                 TE_EINVALID);
	te_error_clear(&err);
	assert_int_equal(te_reg__resolve_location(&u, base, NULL, &err),
	                 TE_EINVALID);
}

static void url_digest_param(void **state)
{
	te_error err = TE_ERROR_INIT;
	char *u = NULL;

	(void)state;
	assert_int_equal(
	    te_reg__url_add_digest(&u, "http://h/up/1", EMPTY_SHA, &err), 0);
	assert_string_equal(u, "http://h/up/1?digest=sha256%3Ae3b0c44298fc1c14"
	                       "9afbf4c8996fb92427ae41e4649b934ca495991b7852b8"
	                       "55");
	free(u);
	assert_int_equal(te_reg__url_add_digest(&u, "http://h/up/1?_state=z",
	                                        EMPTY_SHA, &err),
	                 0);
	assert_non_null(strstr(u, "?_state=z&digest=sha256%3A"));
	free(u);
}

static void lookup(const char *json, const char *host, int want_rc,
                   const char *want_user, const char *want_pass)
{
	te_error err = TE_ERROR_INIT;
	char *user = NULL, *pass = NULL;

	assert_int_equal(
	    te_reg__config_lookup(&user, &pass, json, strlen(json), host, &err),
	    want_rc);
	if (want_user) {
		assert_non_null(user);
		assert_string_equal(user, want_user);
		assert_string_equal(pass, want_pass);
	} else {
		assert_null(user);
		assert_null(pass);
	}
	if (want_rc < 0) /* never leak the secret into messages */
		assert_null(strstr(err.msg, "dXNlcjpw"));
	te_reg__secret_free(user);
	te_reg__secret_free(pass);
}

static void config_auth(void **state)
{
	(void)state;
	/* base64("user:pa:ss") */
	lookup(
	    "{\"auths\":{\"127.0.0.1:5000\":{\"auth\":\"dXNlcjpwYTpzcw==\"}}}",
	    "127.0.0.1:5000", 0, "user", "pa:ss");
	/* legacy URL keys and case */
	lookup("{\"auths\":{\"https://Reg.Example:5000/v1/\":"
	       "{\"auth\":\"dXNlcjpwYTpzcw==\"}}}",
	       "reg.example:5000", 0, "user", "pa:ss");
	/* docker hub key */
	lookup("{\"auths\":{\"https://index.docker.io/v1/\":"
	       "{\"auth\":\"dXNlcjpwYTpzcw==\"}}}",
	       "docker.io", 0, "user", "pa:ss");
	/* username/password fields */
	lookup("{\"auths\":{\"r.example\":{\"username\":\"u\","
	       "\"password\":\"p\"}}}",
	       "r.example", 0, "u", "p");
	/* exact key beats a normalized one */
	lookup("{\"auths\":{\"https://r.example\":{\"username\":\"a\","
	       "\"password\":\"1\"},\"r.example\":{\"username\":\"b\","
	       "\"password\":\"2\"}}}",
	       "r.example", 0, "b", "2");
	/* unpadded base64 ("user:pass" = dXNlcjpwYXNz) */
	lookup("{\"auths\":{\"h\":{\"auth\":\"dXNlcjpwYXM\"}}}", "h", 0, "user",
	       "pas");
	/* no entry, other host, no auths: no credentials, no error */
	lookup("{\"auths\":{\"other:5000\":{\"auth\":\"dXNlcjpwYTpzcw==\"}}}",
	       "127.0.0.1:5000", 0, NULL, NULL);
	lookup("{\"credsStore\":\"desktop\"}", "h", 0, NULL, NULL);
	lookup("{\"auths\":{\"h\":{}}}", "h", 0, NULL, NULL);
	/* broken input */
	lookup("{not json", "h", TE_EINVALID, NULL, NULL);
	lookup("{\"auths\":{\"h\":{\"auth\":\"!!!!\"}}}", "h", TE_EINVALID,
	       NULL, NULL);
	/* base64("nocolon") */
	lookup("{\"auths\":{\"h\":{\"auth\":\"bm9jb2xvbg==\"}}}", "h",
	       TE_EINVALID, NULL, NULL);
}

static void config_file(void **state)
{
	te_error err = TE_ERROR_INIT;
	char dir[] = "/tmp/te-reg-XXXXXX", path[64];
	char *user = NULL, *pass = NULL;
	FILE *f;

	(void)state;
	assert_non_null(mkdtemp(dir));
	/* missing file: fine */
	assert_int_equal(te_reg__config_load(&user, &pass, dir, "h", &err), 0);
	assert_null(user);
	assert_int_equal(te_reg__config_load(&user, &pass, NULL, "h", &err), 0);
	snprintf(path, sizeof(path), "%s/config.json", dir);
	f = fopen(path, "w");
	assert_non_null(f);
	fputs("{\"auths\":{\"h:1\":{\"auth\":\"dXNlcjpwYTpzcw==\"}}}", f);
	fclose(f);
	assert_int_equal(te_reg__config_load(&user, &pass, dir, "h:1", &err),
	                 0);
	assert_string_equal(user, "user");
	assert_string_equal(pass, "pa:ss");
	te_reg__secret_free(user);
	te_reg__secret_free(pass);
	unlink(path);
	rmdir(dir);
}

static void http_errors(void **state)
{
	te_error err = TE_ERROR_INIT;
	const char *body = "{\"errors\":[{\"code\":\"MANIFEST_INVALID\","
	                   "\"message\":\"manifest invalid\","
	                   "\"detail\":{}}]}";

	(void)state;
	assert_int_equal(
	    te_reg__http_error(&err, 400, body, strlen(body),
	                       "PUT manifest 127.0.0.1:5000/x:tag"),
	    TE_ERROR);
	assert_string_equal(err.msg, "PUT manifest 127.0.0.1:5000/x:tag: 400 "
	                             "MANIFEST_INVALID: manifest invalid");
	te_error_clear(&err);
	assert_int_equal(te_reg__http_error(&err, 401, "", 0, "GET x"),
	                 TE_EAUTH);
	assert_string_equal(err.msg, "GET x: HTTP 401");
	te_error_clear(&err);
	assert_int_equal(te_reg__http_error(&err, 403, "<html>", 6, "GET x"),
	                 TE_EAUTH);
	te_error_clear(&err);
	assert_int_equal(
	    te_reg__http_error(&err, 404, "404 page not found\n", 19, "GET x"),
	    TE_ENOTFOUND);
	assert_string_equal(err.msg, "GET x: HTTP 404");
	te_error_clear(&err);
	assert_int_equal(te_reg__http_error(&err, 503, NULL, 0, "GET x"),
	                 TE_ENET);
	te_error_clear(&err);
	assert_int_equal(te_reg__http_error(&err, 429, NULL, 0, "GET x"),
	                 TE_ENET);
	te_error_clear(&err);
	/* hostile message: control chars neutralised, several errors */
	body =
	    "{\"errors\":[{\"code\":\"DENIED\",\"message\":\"a\\nb\\u001b\"},"
	    "{\"code\":\"X\"}]}";
	te_reg__http_error(&err, 403, body, strlen(body), "w");
	assert_string_equal(err.msg, "w: 403 DENIED: a?b? (and more)");
}

static void feed(struct te_reg_resp *r, const char *line)
{
	char *copy = strdup(line);

	assert_int_equal(te_reg__header_cb(copy, 1, strlen(line), r),
	                 strlen(line));
	free(copy);
}

static void header_capture(void **state)
{
	struct te_reg_resp r;
	char *big;

	(void)state;
	memset(&r, 0, sizeof(r));
	feed(&r, "HTTP/1.1 307 Temporary Redirect\r\n");
	feed(&r, "Location: https://cdn.example/x\r\n");
	assert_int_equal(r.status, 307);
	/* a new status line resets everything */
	feed(&r, "HTTP/2 202 \r\n");
	assert_int_equal(r.status, 202);
	assert_string_equal(r.location, "");
	assert_int_equal(r.content_length, -1);
	feed(&r, "location:   /v2/x/blobs/uploads/1?a=b \r\n");
	feed(&r, "Content-Type: application/vnd.oci.image.manifest.v1+json; "
	         "charset=utf-8\r\n");
	feed(&r, "Docker-Content-Digest: " EMPTY_SHA "\r\n");
	feed(&r, "Content-Length: 1234\r\n");
	feed(&r, "WWW-Authenticate: Basic realm=\"a\"\r\n");
	feed(&r, "Www-Authenticate: Bearer realm=\"b\"\r\n");
	feed(&r, "X-Junk\r\n");
	assert_string_equal(r.location, "/v2/x/blobs/uploads/1?a=b");
	assert_string_equal(r.content_type,
	                    "application/vnd.oci.image.manifest.v1+json");
	assert_string_equal(r.docker_digest, EMPTY_SHA);
	assert_int_equal(r.content_length, 1234);
	assert_string_equal(r.www_auth,
	                    "Basic realm=\"a\", Bearer realm=\"b\"");
	assert_false(r.overflow);

	/* oversized values are dropped, never truncated into something
	 * that could be used */
	big = malloc(TE_REG_LOCATION_MAX + 64);
	assert_non_null(big);
	memcpy(big, "Location: ", 10);
	memset(big + 10, 'a', TE_REG_LOCATION_MAX + 10);
	memcpy(big + TE_REG_LOCATION_MAX + 20, "\r\n", 3);
	feed(&r, big);
	assert_string_equal(r.location, "");
	assert_true(r.overflow);
	free(big);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(digest_validation),
	    cmocka_unit_test(loopback_hosts),
	    cmocka_unit_test(challenge_bearer),
	    cmocka_unit_test(challenge_basic_and_multi),
	    cmocka_unit_test(challenge_rejects),
	    cmocka_unit_test(challenge_truncates_long_values),
	    cmocka_unit_test(location_resolution),
	    cmocka_unit_test(url_digest_param),
	    cmocka_unit_test(config_auth),
	    cmocka_unit_test(config_file),
	    cmocka_unit_test(http_errors),
	    cmocka_unit_test(header_capture),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
