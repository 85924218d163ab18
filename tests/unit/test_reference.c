#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdlib.h>
#include <string.h>

#include "tagexport/reference.h"

#define SHA                                                                    \
	"sha256:"                                                              \
	"0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef"

static void check(const char *in, const char *domain, const char *path,
                  const char *tag, const char *digest, const char *formatted)
{
	te_error err = TE_ERROR_INIT;
	te_ref r = TE_REF_INIT;
	char *s;

	if (te_ref_parse(&r, in, &err) != 0)
		fail_msg("%s: %s", in, err.msg);
	assert_string_equal(r.domain, domain);
	assert_string_equal(r.path, path);
	if (tag)
		assert_string_equal(r.tag, tag);
	else
		assert_null(r.tag);
	if (digest)
		assert_string_equal(r.digest, digest);
	else
		assert_null(r.digest);
	s = te_ref_format(&r);
	assert_non_null(s);
	assert_string_equal(s, formatted);
	free(s);
	te_ref_dispose(&r);
	assert_null(r.domain);
}

static void reject(const char *in, const char *needle)
{
	te_error err = TE_ERROR_INIT;
	te_ref r = TE_REF_INIT;

	if (te_ref_parse(&r, in, &err) == 0)
		fail_msg("accepted %s", in);
	assert_int_equal(err.code, TE_EINVALID);
	assert_null(r.domain);
	assert_null(r.path);
	if (!strstr(err.msg, needle))
		fail_msg("%s: message %s lacks %s", in, err.msg, needle);
}

static void doc_examples(void **state)
{
	(void)state;
	check("busybox", "docker.io", "library/busybox", "latest", NULL,
	      "docker.io/library/busybox:latest");
	check("localhost/a", "localhost", "a", "latest", NULL,
	      "localhost/a:latest");
	check("127.0.0.1:5000/research/x:1", "127.0.0.1:5000", "research/x",
	      "1", NULL, "127.0.0.1:5000/research/x:1");
	check("foo/bar", "docker.io", "foo/bar", "latest", NULL,
	      "docker.io/foo/bar:latest");
}

static void normalisation(void **state)
{
	(void)state;
	check("index.docker.io/foo/bar:1", "docker.io", "foo/bar", "1", NULL,
	      "docker.io/foo/bar:1");
	check("index.docker.io/busybox", "docker.io", "library/busybox",
	      "latest", NULL, "docker.io/library/busybox:latest");
	check("docker.io/busybox:1.36", "docker.io", "library/busybox", "1.36",
	      NULL, "docker.io/library/busybox:1.36");
	check("busybox@" SHA, "docker.io", "library/busybox", NULL, SHA,
	      "docker.io/library/busybox@" SHA);
	check("reg.example.com/a/b:v1@" SHA, "reg.example.com", "a/b", "v1",
	      SHA, "reg.example.com/a/b:v1@" SHA);
	check("[::1]:5000/a/b:c", "[::1]:5000", "a/b", "c", NULL,
	      "[::1]:5000/a/b:c");
	check("localhost:5000/x", "localhost:5000", "x", "latest", NULL,
	      "localhost:5000/x:latest");
	check("a.b-c.io/x__y/z---q/w.v_u:T_1.-", "a.b-c.io", "x__y/z---q/w.v_u",
	      "T_1.-", NULL, "a.b-c.io/x__y/z---q/w.v_u:T_1.-");
	check("Foo/bar", "Foo", "bar", "latest", NULL, "Foo/bar:latest");
	check("a---b/c", "docker.io", "a---b/c", "latest", NULL,
	      "docker.io/a---b/c:latest");
	/* distribution reads "host:port" alone as name:tag on Docker Hub */
	check("localhost:5000", "docker.io", "library/localhost", "5000", NULL,
	      "docker.io/library/localhost:5000");
}

static void hostile(void **state)
{
	char big[400];

	(void)state;
	reject("", "at least one component");
	reject(NULL, "at least one component");
	reject("..", "invalid repository path");
	reject("a b", "invalid repository path");
	reject(" a", "invalid repository path");
	reject("a//b", "invalid repository path");
	reject("a/", "invalid repository path");
	reject("host.io/", "missing repository path");
	reject("HOST/Path", "must be lowercase");
	reject("example.com/App", "must be lowercase");
	reject("Upper", "must be lowercase");
	reject("a:", "invalid tag");
	reject("a:-x", "invalid tag");
	reject("a:b:c", "invalid tag");
	reject("a:b/c", "invalid registry host");
	reject("x/w..v", "invalid repository path");
	reject("x/z-_-q", "invalid repository path");
	reject("x/a___b", "invalid repository path");
	reject("x/a.", "invalid repository path");
	reject("x/_a", "invalid repository path");
	reject("a@sha256:abc", "64 lowercase hex");
	reject(
	    "a@sha256:"
	    "0123456789ABCDEF0123456789abcdef0123456789abcdef0123456789abcdef",
	    "64 lowercase hex");
	reject("a@sha512:abc", "unsupported digest");
	reject("a@nocolon", "invalid digest");
	reject("a@", "invalid digest");
	reject("-a.io/x", "invalid registry host");
	reject("a_b.io/x", "invalid registry host");
	reject("host:port/x", "invalid registry host");
	reject("host:/x", "invalid registry host");
	reject("[zz]/x", "invalid repository path");
	reject("[zz:]/x", "invalid registry host");
	reject("[]:5000/x", "invalid registry host");
	reject(
	    "0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef",
	    "hexadecimal");
	reject("r\xc3\xa9g.io/x", "invalid registry host");
	reject("x/\xc3\xa9", "invalid repository path");
	/* name too long: 250 + "docker.io/" */
	memset(big, 'a', 250);
	big[250] = '\0';
	memcpy(big, "x/", 2);
	reject(big, "255 characters");
	memset(big, 'a', sizeof(big) - 1);
	big[sizeof(big) - 1] = '\0';
	reject(big, "255 characters");
	{
		char *huge = malloc(5000);

		assert_non_null(huge);
		memset(huge, 'a', 4999);
		huge[4999] = '\0';
		reject(huge, "longer than");
		free(huge);
	}
}

static void name_length_boundary(void **state)
{
	char in[300], want[320];

	(void)state;
	/* "r.io/" + 250 chars = 255: accepted */
	memcpy(in, "r.io/", 5);
	memset(in + 5, 'a', 250);
	in[255] = '\0';
	strcpy(want, in);
	strcat(want, ":latest");
	check(in, "r.io", in + 5, "latest", NULL, want);
	in[255] = 'a';
	in[256] = '\0';
	reject(in, "255 characters");
}

static void parse_repo(void **state)
{
	te_error err = TE_ERROR_INIT;
	te_ref r = TE_REF_INIT;

	(void)state;
	assert_int_equal(te_ref_parse_repo(&r, "localhost:5000/a/b", &err), 0);
	assert_string_equal(r.domain, "localhost:5000");
	assert_string_equal(r.path, "a/b");
	assert_null(r.tag);
	assert_null(r.digest);
	te_ref_dispose(&r);
	assert_int_equal(te_ref_parse_repo(&r, "busybox", &err), 0);
	assert_string_equal(r.path, "library/busybox");
	assert_null(r.tag);
	{
		char *s = te_ref_format(&r);

		assert_string_equal(s, "docker.io/library/busybox");
		free(s);
	}
	te_ref_dispose(&r);

	assert_int_equal(te_ref_parse_repo(&r, "a/b:1", &err), TE_EINVALID);
	assert_non_null(strstr(err.msg, "must not contain a tag or digest"));
	te_error_clear(&err);
	assert_int_equal(te_ref_parse_repo(&r, "a/b@" SHA, &err), TE_EINVALID);
	te_error_clear(&err);
	assert_int_equal(te_ref_parse_repo(&r, "localhost:5000", &err),
	                 TE_EINVALID);
	assert_non_null(strstr(err.msg, "localhost:5000/name"));
	te_error_clear(&err);
	assert_int_equal(te_ref_parse_repo(&r, "Bad Repo", &err), TE_EINVALID);
	te_error_clear(&err);
	assert_int_equal(te_ref_parse_repo(&r, "", &err), TE_EINVALID);
	assert_null(r.domain);
}

static void api_host(void **state)
{
	te_error err = TE_ERROR_INIT;
	te_ref r = TE_REF_INIT;

	(void)state;
	assert_int_equal(te_ref_parse(&r, "index.docker.io/a/b", &err), 0);
	assert_string_equal(te_ref_api_host(&r), "registry-1.docker.io");
	te_ref_dispose(&r);
	assert_int_equal(te_ref_parse(&r, "ghcr.io/a/b", &err), 0);
	assert_string_equal(te_ref_api_host(&r), "ghcr.io");
	te_ref_dispose(&r);
}

static void loopback(void **state)
{
	(void)state;
	assert_true(te_ref_host_is_loopback("localhost"));
	assert_true(te_ref_host_is_loopback("localhost:5000"));
	assert_true(te_ref_host_is_loopback("LocalHost:1"));
	assert_true(te_ref_host_is_loopback("127.0.0.1"));
	assert_true(te_ref_host_is_loopback("127.1.2.3:443"));
	assert_true(te_ref_host_is_loopback("127.255.255.255"));
	assert_true(te_ref_host_is_loopback("[::1]"));
	assert_true(te_ref_host_is_loopback("[::1]:5000"));
	assert_true(te_ref_host_is_loopback("[0:0:0:0:0:0:0:1]:5000"));
	assert_false(te_ref_host_is_loopback(NULL));
	assert_false(te_ref_host_is_loopback(""));
	assert_false(te_ref_host_is_loopback("localhost.evil.com"));
	assert_false(te_ref_host_is_loopback("localhost:"));
	assert_false(te_ref_host_is_loopback("localhost:x"));
	assert_false(te_ref_host_is_loopback("127.0.0.1.evil.com"));
	assert_false(te_ref_host_is_loopback("127.0.0.256"));
	assert_false(te_ref_host_is_loopback("127.0.0"));
	assert_false(te_ref_host_is_loopback("128.0.0.1"));
	assert_false(te_ref_host_is_loopback("10.0.0.1:5000"));
	assert_false(te_ref_host_is_loopback("[::2]"));
	assert_false(te_ref_host_is_loopback("[::1"));
	assert_false(te_ref_host_is_loopback("::1"));
	assert_false(te_ref_host_is_loopback("docker.io"));
}

static void tag_valid(void **state)
{
	char t[200];

	(void)state;
	assert_true(te_ref_tag_valid("latest"));
	assert_true(te_ref_tag_valid("_x"));
	assert_true(te_ref_tag_valid("V1.2-rc_3"));
	assert_true(te_ref_tag_valid("a"));
	assert_false(te_ref_tag_valid(NULL));
	assert_false(te_ref_tag_valid(""));
	assert_false(te_ref_tag_valid(".a"));
	assert_false(te_ref_tag_valid("-a"));
	assert_false(te_ref_tag_valid("a/b"));
	assert_false(te_ref_tag_valid("a b"));
	assert_false(te_ref_tag_valid("a:b"));
	assert_false(te_ref_tag_valid("\xc3\xa9"));
	memset(t, 'a', 128);
	t[128] = '\0';
	assert_true(te_ref_tag_valid(t));
	t[128] = 'a';
	t[129] = '\0';
	assert_false(te_ref_tag_valid(t));
}

static void format_edge(void **state)
{
	te_ref r = TE_REF_INIT;

	(void)state;
	assert_null(te_ref_format(NULL));
	assert_null(te_ref_format(&r));
	te_ref_dispose(&r);
	te_ref_dispose(NULL);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(doc_examples),
	    cmocka_unit_test(normalisation),
	    cmocka_unit_test(hostile),
	    cmocka_unit_test(name_length_boundary),
	    cmocka_unit_test(parse_repo),
	    cmocka_unit_test(api_host),
	    cmocka_unit_test(loopback),
	    cmocka_unit_test(tag_valid),
	    cmocka_unit_test(format_edge),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
