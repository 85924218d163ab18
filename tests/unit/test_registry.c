#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include "rm_rf.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <sys/stat.h>

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

static void upload_range(void **state)
{
	static const char *const bad[] = {"",
	                                  "-",
	                                  "0",
	                                  "0-",
	                                  "1-5",
	                                  "-5",
	                                  "0--1",
	                                  "0-+5",
	                                  "0- 5",
	                                  "0-5 ",
	                                  "0-5,7-9",
	                                  "0-5x",
	                                  "bytes",
	                                  "bytes 0-5",
	                                  "0x0-0x5",
	                                  "00-5-",
	                                  "0-9223372036854775807",
	                                  "0-99999999999999999999"};
	int64_t off = 7;
	size_t i;

	(void)state;
	assert_int_equal(te_reg__upload_range_parse(&off, "0-0"), 0);
	assert_int_equal(off, 0); /* empty (or one byte: see the header) */
	assert_int_equal(te_reg__upload_range_parse(&off, "0-1"), 0);
	assert_int_equal(off, 2);
	assert_int_equal(te_reg__upload_range_parse(&off, "0-1572863"), 0);
	assert_int_equal(off, 1572864);
	assert_int_equal(te_reg__upload_range_parse(&off, "bytes=0-99"), 0);
	assert_int_equal(off, 100);
	assert_int_equal(te_reg__upload_range_parse(&off, "00-9"), 0);
	assert_int_equal(off, 10);
	assert_int_equal(
	    te_reg__upload_range_parse(&off, "0-9223372036854775806"), 0);
	assert_true(off == INT64_MAX);
	for (i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		off = 7;
		assert_int_equal(te_reg__upload_range_parse(&off, bad[i]),
		                 TE_EINVALID);
		assert_int_equal(off, -1);
	}
	assert_int_equal(te_reg__upload_range_parse(&off, NULL), TE_EINVALID);
}

static void content_range(void **state)
{
	static const char *const bad[] = {
	    "",           "bytes",         "bytes 5-4/10", "bytes 0-9/9",
	    "bytes */10", "bytes 0-9/",    "bytes 0-9",    "bytes=0-9/10",
	    "0-9/10",     "bytes -1-9/10", "bytes 0-9/*x", "bytes 0-9/10 "};
	int64_t first = 7;
	size_t i;

	(void)state;
	assert_int_equal(te_reg__content_range_first(&first, "bytes 0-9/10"),
	                 0);
	assert_int_equal(first, 0);
	assert_int_equal(te_reg__content_range_first(
	                     &first, "bytes 1048576-3146705/3146706"),
	                 0);
	assert_int_equal(first, 1048576);
	assert_int_equal(te_reg__content_range_first(&first, "BYTES 5-5/*"), 0);
	assert_int_equal(first, 5);
	for (i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		first = 7;
		assert_int_equal(te_reg__content_range_first(&first, bad[i]),
		                 TE_EINVALID);
		assert_int_equal(first, -1);
	}
}

static void lookup(const char *json, const char *host, int want_rc,
                   const char *want_user, const char *want_pass)
{
	te_error err = TE_ERROR_INIT;
	struct te_reg_creds c;
	char helper[TE_REG_HELPER_NAME_MAX];

	assert_int_equal(
	    te_reg__config_lookup(&c, helper, json, strlen(json), host, &err),
	    want_rc);
	if (want_user) {
		assert_non_null(c.user);
		assert_string_equal(c.user, want_user);
		assert_string_equal(c.pass, want_pass);
	} else {
		assert_null(c.user);
		assert_null(c.pass);
	}
	if (want_rc < 0) /* never leak the secret into messages */
		assert_null(strstr(err.msg, "dXNlcjpw"));
	te_reg__creds_clear(&c);
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
	lookup("{\"auths\":{\"h\":{}}}", "h", 0, NULL, NULL);
	/* broken input */
	lookup("{not json", "h", TE_EINVALID, NULL, NULL);
	lookup("{\"auths\":{\"h\":{\"auth\":\"!!!!\"}}}", "h", TE_EINVALID,
	       NULL, NULL);
	/* base64("nocolon") */
	lookup("{\"auths\":{\"h\":{\"auth\":\"bm9jb2xvbg==\"}}}", "h",
	       TE_EINVALID, NULL, NULL);
}

static void config_helpers_and_tokens(void **state)
{
	te_error err = TE_ERROR_INIT;
	struct te_reg_creds c;
	char helper[TE_REG_HELPER_NAME_MAX];
	const char *j;

	(void)state;
	/* credHelpers[host] beats credsStore; auths still parsed */
	j = "{\"credsStore\":\"desktop\",\"credHelpers\":{\"h:1\":\"ecr-"
	    "login\"},\"auths\":{\"h:1\":{\"identitytoken\":\"idt\"}}}";
	assert_int_equal(
	    te_reg__config_lookup(&c, helper, j, strlen(j), "h:1", &err), 0);
	assert_string_equal(helper, "ecr-login");
	assert_null(c.user);
	assert_string_equal(c.identity_token, "idt");
	te_reg__creds_clear(&c);
	assert_int_equal(
	    te_reg__config_lookup(&c, helper, j, strlen(j), "other", &err), 0);
	assert_string_equal(helper, "desktop");
	assert_true(te_reg__creds_empty(&c));
	/* Docker Hub helper key */
	j = "{\"credHelpers\":{\"https://index.docker.io/v1/\":\"hub\"}}";
	assert_int_equal(
	    te_reg__config_lookup(&c, helper, j, strlen(j), "docker.io", &err),
	    0);
	assert_string_equal(helper, "hub");
	assert_string_equal(te_reg__helper_server("docker.io"),
	                    "https://index.docker.io/v1/");
	assert_string_equal(te_reg__helper_server("127.0.0.1:5000"),
	                    "127.0.0.1:5000");
	/* registrytoken is a bearer token used as is */
	j = "{\"auths\":{\"h\":{\"registrytoken\":\"rt\"}}}";
	assert_int_equal(
	    te_reg__config_lookup(&c, helper, j, strlen(j), "h", &err), 0);
	assert_string_equal(c.registry_token, "rt");
	assert_false(te_reg__creds_empty(&c));
	te_reg__creds_clear(&c);
	/* helper names that could escape the exec are refused */
	j = "{\"credsStore\":\"../../bin/sh\"}";
	assert_int_equal(
	    te_reg__config_lookup(&c, helper, j, strlen(j), "h", &err),
	    TE_EINVALID);
	te_error_clear(&err);
	j = "{\"credHelpers\":{\"h\":\"a b\"}}";
	assert_int_equal(
	    te_reg__config_lookup(&c, helper, j, strlen(j), "h", &err),
	    TE_EINVALID);
	te_error_clear(&err);

	/* helper output */
	j = "{\"ServerURL\":\"h\",\"Username\":\"u\",\"Secret\":\"s\"}";
	assert_int_equal(te_reg__helper_parse(&c, j, strlen(j), &err), 0);
	assert_string_equal(c.user, "u");
	assert_string_equal(c.pass, "s");
	te_reg__creds_clear(&c);
	j = "{\"Username\":\"<token>\",\"Secret\":\"refresh\"}";
	assert_int_equal(te_reg__helper_parse(&c, j, strlen(j), &err), 0);
	assert_null(c.user);
	assert_string_equal(c.identity_token, "refresh");
	te_reg__creds_clear(&c);
	j = "credentials not found in native keychain";
	assert_int_equal(te_reg__helper_parse(&c, j, strlen(j), &err),
	                 TE_EAUTH);
	te_error_clear(&err);
}

static void write_text(const char *path, const char *text, int mode)
{
	FILE *f = fopen(path, "w");

	assert_non_null(f);
	fputs(text, f);
	fclose(f);
	chmod(path, (mode_t)mode);
}

static void config_file(void **state)
{
	te_error err = TE_ERROR_INIT;
	char dir[] = "/tmp/te-reg-XXXXXX", path[128], auth[128];
	const char *files[2];
	struct te_reg_creds c;

	(void)state;
	assert_non_null(mkdtemp(dir));
	/* missing files: fine */
	files[0] = "/nonexistent/auth.json";
	assert_int_equal(
	    te_reg__creds_resolve(&c, dir, files, 1, "h", 1000, &err), 0);
	assert_true(te_reg__creds_empty(&c));
	assert_int_equal(
	    te_reg__creds_resolve(&c, NULL, NULL, 0, "h", 1000, &err), 0);
	snprintf(path, sizeof(path), "%s/config.json", dir);
	write_text(path,
	           "{\"auths\":{\"h:1\":{\"auth\":\"dXNlcjpwYTpzcw==\"}}}",
	           0600);
	snprintf(auth, sizeof(auth), "%s/auth.json", dir);
	write_text(auth,
	           "{\"auths\":{\"h:1\":{\"auth\":\"YTpi\"},"
	           "\"only-here:2\":{\"auth\":\"YTpi\"}}}",
	           0600);
	files[0] = auth;
	/* config.json first, then the auth files */
	assert_int_equal(
	    te_reg__creds_resolve(&c, dir, files, 1, "h:1", 1000, &err), 0);
	assert_string_equal(c.user, "user");
	assert_string_equal(c.pass, "pa:ss");
	te_reg__creds_clear(&c);
	assert_int_equal(
	    te_reg__creds_resolve(&c, dir, files, 1, "only-here:2", 1000, &err),
	    0);
	assert_string_equal(c.user, "a");
	assert_string_equal(c.pass, "b");
	te_reg__creds_clear(&c);
	unlink(auth);
	unlink(path);
	rmdir(dir);
}

/* A credential helper script on PATH: real fork/exec, stdin, timeout. */
static void helper_exec(void **state)
{
	te_error err = TE_ERROR_INIT;
	char dir[] = "/tmp/te-helper-XXXXXX", path[128], newpath[4096];
	const char *old = getenv("PATH");
	struct te_reg_creds c;

	(void)state;
	assert_non_null(mkdtemp(dir));
	snprintf(path, sizeof(path), "%s/docker-credential-tetest", dir);
	write_text(path,
	           "#!/bin/sh\n"
	           "read server\n"
	           "case \"$1:$server\" in\n"
	           "get:good.example) echo '{\"Username\":\"hu\",\"Secret\":"
	           "\"hs\"}' ;;\n"
	           "get:tok.example) echo '{\"Username\":\"<token>\","
	           "\"Secret\":\"idt\"}' ;;\n"
	           "get:slow.example) sleep 5 ;;\n"
	           "get:broken.example) echo 'secret-in-stderr' >&2; exit 3 "
	           ";;\n"
	           "*) echo 'credentials not found in native keychain'; "
	           "exit 1 ;;\n"
	           "esac\n",
	           0700);
	snprintf(newpath, sizeof(newpath), "%s:%s", dir, old ? old : "/bin");
	setenv("PATH", newpath, 1);
	assert_int_equal(
	    te_reg__helper_get(&c, "tetest", "good.example", 5000, &err), 0);
	assert_string_equal(c.user, "hu");
	assert_string_equal(c.pass, "hs");
	te_reg__creds_clear(&c);
	assert_int_equal(
	    te_reg__helper_get(&c, "tetest", "tok.example", 5000, &err), 0);
	assert_string_equal(c.identity_token, "idt");
	te_reg__creds_clear(&c);
	assert_int_equal(
	    te_reg__helper_get(&c, "tetest", "none.example", 5000, &err), 0);
	assert_true(te_reg__creds_empty(&c));
	assert_int_equal(
	    te_reg__helper_get(&c, "tetest", "broken.example", 5000, &err),
	    TE_EAUTH);
	assert_null(strstr(err.msg, "secret"));
	assert_non_null(strstr(err.msg, "exit 3"));
	te_error_clear(&err);
	assert_int_equal(
	    te_reg__helper_get(&c, "tetest", "slow.example", 300, &err),
	    TE_EAUTH);
	assert_non_null(strstr(err.msg, "timed out"));
	te_error_clear(&err);
	assert_int_equal(te_reg__helper_get(&c, "missing-one", "h", 5000, &err),
	                 TE_EAUTH);
	te_error_clear(&err);
	assert_int_equal(te_reg__helper_get(&c, "a;b", "h", 5000, &err),
	                 TE_EINVALID);
	te_error_clear(&err);
	if (old)
		setenv("PATH", old, 1);
	unlink(path);
	rmdir(dir);
}

static void certs_dirs(void **state)
{
	te_error err = TE_ERROR_INIT;
	char root[] = "/tmp/te-certs-XXXXXX", d[128], p[160];
	const char *roots[2];
	te_buf pem = TE_BUF_INIT(1024 * 1024);
	char *cert = NULL, *key = NULL;

	(void)state;
	assert_non_null(mkdtemp(root));
	snprintf(d, sizeof(d), "%s/h:5000", root);
	assert_int_equal(mkdir(d, 0700), 0);
	snprintf(p, sizeof(p), "%s/ca.crt", d);
	write_text(p, "CA-ONE", 0600);
	snprintf(p, sizeof(p), "%s/extra.crt", d);
	write_text(p, "CA-TWO", 0600);
	snprintf(p, sizeof(p), "%s/client.cert", d);
	write_text(p, "C", 0600);
	snprintf(p, sizeof(p), "%s/client.key", d);
	write_text(p, "K", 0600);
	roots[0] = "/nonexistent";
	roots[1] = root;
	assert_int_equal(
	    te_reg__certs_find(&pem, &cert, &key, roots, 2, "h:5000", &err), 0);
	assert_non_null(strstr(pem.ptr, "CA-ONE"));
	assert_non_null(strstr(pem.ptr, "CA-TWO"));
	assert_non_null(cert);
	assert_non_null(strstr(cert, "client.cert"));
	assert_non_null(strstr(key, "client.key"));
	free(cert);
	free(key);
	te_buf_clear(&pem);
	/* other host: nothing */
	assert_int_equal(
	    te_reg__certs_find(&pem, &cert, &key, roots, 2, "h:5001", &err), 0);
	assert_int_equal(pem.len, 0);
	assert_null(cert);
	/* a .cert without its .key is a configuration error */
	snprintf(p, sizeof(p), "%s/client.key", d);
	unlink(p);
	assert_int_equal(
	    te_reg__certs_find(&pem, &cert, &key, roots, 2, "h:5000", &err),
	    TE_EINVALID);
	te_error_clear(&err);
	te_buf_dispose(&pem);
	assert_int_equal(rm_rf(root), 0);
}

static const te_retry_policy policy = {
    .attempts = 5,
    .base_ms = 1000,
    .max_delay_ms = 30000,
    .total_ms = 120000,
    .retry_after_cap_ms = 60000,
    .jitter_pct = 10,
};

static long decide(int attempt, long status, int curl_code, const char *code,
                   const char *retry_after, long elapsed, uint32_t jitter)
{
	struct te_reg_retry_in in;

	memset(&in, 0, sizeof(in));
	in.attempt = attempt;
	in.status = status;
	in.curl_code = curl_code;
	in.error_code = code;
	in.retry_after = retry_after;
	in.now = 784111777; /* Sun, 06 Nov 1994 08:49:37 GMT */
	in.elapsed_ms = elapsed;
	in.jitter = jitter;
	return te_reg__retry_decide(&policy, &in);
}

static void retry_decision(void **state)
{
	(void)state;
	/* retried: connection errors, 408/429/5xx, retryable codes */
	assert_int_equal(
	    decide(1, 0, CURLE_COULDNT_CONNECT, NULL, NULL, 0, 500), 1000);
	assert_int_equal(decide(1, 0, CURLE_RECV_ERROR, NULL, NULL, 0, 500),
	                 1000);
	assert_int_equal(decide(1, 0, CURLE_PARTIAL_FILE, NULL, NULL, 0, 500),
	                 1000);
	assert_int_equal(decide(1, 503, 0, NULL, NULL, 0, 500), 1000);
	assert_int_equal(decide(1, 408, 0, NULL, NULL, 0, 500), 1000);
	assert_int_equal(decide(1, 500, 0, "", NULL, 0, 500), 1000);
	assert_int_equal(decide(1, 404, 0, "BLOB_UPLOAD_INVALID", NULL, 0, 500),
	                 1000);
	assert_int_equal(decide(1, 400, 0, "UNKNOWN", NULL, 0, 500), 1000);
	assert_int_equal(decide(1, 403, 0, "TOOMANYREQUESTS", NULL, 0, 500),
	                 1000);
	/* exponential with +-10% jitter */
	assert_int_equal(decide(2, 503, 0, NULL, NULL, 0, 500), 2000);
	assert_int_equal(decide(3, 503, 0, NULL, NULL, 0, 500), 4000);
	assert_int_equal(decide(4, 503, 0, NULL, NULL, 0, 0), 7200);
	assert_int_equal(decide(4, 503, 0, NULL, NULL, 0, 1000), 8800);
	/* not retried: client errors, TLS trust, digest trouble, 501 */
	assert_int_equal(decide(1, 400, 0, "MANIFEST_INVALID", NULL, 0, 0), -1);
	assert_int_equal(decide(1, 404, 0, "MANIFEST_UNKNOWN", NULL, 0, 0), -1);
	assert_int_equal(decide(1, 403, 0, "DENIED", NULL, 0, 0), -1);
	assert_int_equal(decide(1, 401, 0, NULL, NULL, 0, 0), -1);
	assert_int_equal(decide(1, 501, 0, NULL, NULL, 0, 0), -1);
	assert_int_equal(
	    decide(1, 0, CURLE_PEER_FAILED_VERIFICATION, NULL, NULL, 0, 0), -1);
	assert_int_equal(
	    decide(1, 0, CURLE_COULDNT_RESOLVE_HOST, NULL, NULL, 0, 0), -1);
	assert_int_equal(decide(1, 0, CURLE_WRITE_ERROR, NULL, NULL, 0, 0), -1);
	/* bounded attempts and time */
	assert_int_equal(decide(5, 503, 0, NULL, NULL, 0, 500), -1);
	assert_int_equal(decide(2, 503, 0, NULL, NULL, 119000, 500), -1);
	/* Retry-After wins, seconds or HTTP-date, capped */
	assert_int_equal(decide(1, 429, 0, "TOOMANYREQUESTS", "3", 0, 0), 3000);
	assert_int_equal(decide(3, 503, 0, NULL, "0", 0, 0), 0);
	assert_int_equal(decide(1, 429, 0, NULL, "3600", 0, 0), 60000);
	assert_int_equal(
	    decide(1, 429, 0, NULL, "Sun, 06 Nov 1994 08:49:47 GMT", 0, 0),
	    10000);
	/* garbage Retry-After: computed backoff */
	assert_int_equal(decide(1, 429, 0, NULL, "soon", 0, 500), 1000);
	/* a Retry-After that crosses the budget stops */
	assert_int_equal(decide(1, 429, 0, NULL, "50", 100000, 0), -1);
}

static void error_codes(void **state)
{
	char code[64];
	const char *b = "{\"errors\":[{\"code\":\"BLOB_UPLOAD_INVALID\"}]}";

	(void)state;
	te_reg__error_code(code, b, strlen(b));
	assert_string_equal(code, "BLOB_UPLOAD_INVALID");
	te_reg__error_code(code, "<html>", 6);
	assert_string_equal(code, "");
	te_reg__error_code(code, NULL, 0);
	assert_string_equal(code, "");
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
	assert_string_equal(err.msg, "GET x: HTTP 401 (no credentials for "
	                             "this registry, or they were refused)");
	te_error_clear(&err);
	assert_int_equal(te_reg__http_error(&err, 403, "<html>", 6, "GET x"),
	                 TE_EAUTH);
	assert_string_equal(err.msg,
	                    "GET x: HTTP 403 (the credentials lack access)");
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
	feed(&r, "Retry-After: 3\r\n");
	feed(&r, "OCI-Chunk-Min-Length: 1048576\r\n");
	feed(&r, "Range: 0-1023\r\n");
	feed(&r, "Content-Range: bytes 5-9/10\r\n");
	assert_string_equal(r.range, "0-1023");
	assert_string_equal(r.content_range, "bytes 5-9/10");
	assert_string_equal(r.retry_after, "3");
	assert_int_equal(r.chunk_min, 1048576);

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
	    cmocka_unit_test(upload_range),
	    cmocka_unit_test(content_range),
	    cmocka_unit_test(config_auth),
	    cmocka_unit_test(config_file),
	    cmocka_unit_test(config_helpers_and_tokens),
	    cmocka_unit_test(helper_exec),
	    cmocka_unit_test(certs_dirs),
	    cmocka_unit_test(retry_decision),
	    cmocka_unit_test(error_codes),
	    cmocka_unit_test(http_errors),
	    cmocka_unit_test(header_capture),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
