/*
 * test_known_hosts.c - host keys against known_hosts text.  The keys, the
 * fingerprint and the hashed lines were made by OpenSSH's ssh-keygen
 * (-t ed25519; -l; -H), not by the code under test.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "tagexport/base64.h"
#include "tagexport/known_hosts.h"

#define KEY_A                                                                  \
	"AAAAC3NzaC1lZDI1NTE5AAAAIEYjBjAYt2uSynVOSPywG1ONvo6gSMifcBwqsVDYDnt4"
#define KEY_B                                                                  \
	"AAAAC3NzaC1lZDI1NTE5AAAAIHXp5vCOJgPtb3woX15yfokZMuOYZV8zqVfhWW0byxl0"
/* ssh-keygen -l of KEY_A */
#define FP_A "SHA256:5wKBB9VfmGr7pL7r6Jb0C4PgPoG6YfSdeMx3Sy9ly2M"
/* ssh-keygen -H of "[127.0.0.1]:2222 KEY_A" and "example.org KEY_A" */
#define HASHED_PORT                                                            \
	"|1|PisSft8JQbbn3GMr89d4SND0AW8=|gBftDT4q3s8KGvHyXmdnTnwuIGU="
#define HASHED_NAME                                                            \
	"|1|g4AHPha9IXdBaL0U8KgWMrLE2aw=|03NPlgD+wgWM8Lraujd62p/Yk3A="

struct key {
	unsigned char blob[128];
	size_t len;
};

static struct key decode(const char *b64)
{
	struct key k;
	long len = te_base64_decode(k.blob, sizeof(k.blob), b64, strlen(b64));

	assert_true(len > 0);
	k.len = (size_t)len;
	return k;
}

static te_hostkey_result check(const char *text, const char *host,
                               unsigned int port, const char *b64)
{
	struct key k = decode(b64);

	return te_known_hosts_check(text, strlen(text), host, port, k.blob,
	                            k.len);
}

static void test_plain_names(void **state)
{
	const char *kh = "# comment\n"
	                 "\n"
	                 "git.example.org ssh-ed25519 " KEY_A " comment\n"
	                 "other.example.org,10.0.0.1 ssh-ed25519 " KEY_B "\n";

	(void)state;
	assert_int_equal(check(kh, "git.example.org", 22, KEY_A),
	                 TE_HOSTKEY_MATCH);
	assert_int_equal(check(kh, "GIT.Example.ORG", 0, KEY_A),
	                 TE_HOSTKEY_MATCH);
	assert_int_equal(check(kh, "10.0.0.1", 22, KEY_B), TE_HOSTKEY_MATCH);
	/* Listed, with another key: a changed (or spoofed) host. */
	assert_int_equal(check(kh, "git.example.org", 22, KEY_B),
	                 TE_HOSTKEY_MISMATCH);
	assert_int_equal(check(kh, "new.example.org", 22, KEY_A),
	                 TE_HOSTKEY_UNKNOWN);
	/* A prefix of a listed name is another name. */
	assert_int_equal(check(kh, "git.example", 22, KEY_A),
	                 TE_HOSTKEY_UNKNOWN);
}

static void test_ports(void **state)
{
	const char *kh = "[127.0.0.1]:2222 ssh-ed25519 " KEY_A "\n"
	                 "127.0.0.1 ssh-ed25519 " KEY_B "\n";

	(void)state;
	assert_int_equal(check(kh, "127.0.0.1", 2222, KEY_A), TE_HOSTKEY_MATCH);
	/* Port 22 is the bare name; another port is another host. */
	assert_int_equal(check(kh, "127.0.0.1", 22, KEY_B), TE_HOSTKEY_MATCH);
	assert_int_equal(check(kh, "127.0.0.1", 22, KEY_A),
	                 TE_HOSTKEY_MISMATCH);
	assert_int_equal(check(kh, "127.0.0.1", 2223, KEY_A),
	                 TE_HOSTKEY_UNKNOWN);
}

static void test_hashed_names(void **state)
{
	const char *kh = HASHED_PORT " ssh-ed25519 " KEY_A "\n" HASHED_NAME
	                             " ssh-ed25519 " KEY_A "\n";

	(void)state;
	assert_int_equal(check(kh, "127.0.0.1", 2222, KEY_A), TE_HOSTKEY_MATCH);
	assert_int_equal(check(kh, "example.org", 22, KEY_A), TE_HOSTKEY_MATCH);
	assert_int_equal(check(kh, "example.org", 22, KEY_B),
	                 TE_HOSTKEY_MISMATCH);
	assert_int_equal(check(kh, "example.com", 22, KEY_A),
	                 TE_HOSTKEY_UNKNOWN);
	assert_int_equal(check(kh, "127.0.0.1", 22, KEY_A), TE_HOSTKEY_UNKNOWN);
}

static void test_wildcards_and_negation(void **state)
{
	const char *kh =
	    "*.example.org,!evil.example.org ssh-ed25519 " KEY_A "\n"
	    "git?.example.net ssh-ed25519 " KEY_A "\n";

	(void)state;
	assert_int_equal(check(kh, "git.example.org", 22, KEY_A),
	                 TE_HOSTKEY_MATCH);
	assert_int_equal(check(kh, "evil.example.org", 22, KEY_A),
	                 TE_HOSTKEY_UNKNOWN);
	assert_int_equal(check(kh, "git1.example.net", 22, KEY_A),
	                 TE_HOSTKEY_MATCH);
	assert_int_equal(check(kh, "git12.example.net", 22, KEY_A),
	                 TE_HOSTKEY_UNKNOWN);
	assert_int_equal(check(kh, "example.org", 22, KEY_A),
	                 TE_HOSTKEY_UNKNOWN);
}

static void test_markers(void **state)
{
	const char *kh = "@revoked * ssh-ed25519 " KEY_B "\n"
	                 "@cert-authority *.example.org ssh-ed25519 " KEY_A "\n"
	                 "git.example.org ssh-ed25519 " KEY_B "\n";

	(void)state;
	/* Revoked wins over the plain entry that lists the same key. */
	assert_int_equal(check(kh, "git.example.org", 22, KEY_B),
	                 TE_HOSTKEY_REVOKED);
	/* A CA key is not a host key: no certificates here. */
	assert_int_equal(check(kh, "www.example.org", 22, KEY_A),
	                 TE_HOSTKEY_UNKNOWN);
}

static void test_hostile_text(void **state)
{
	char *big;
	size_t i, n = 200000;
	const char *kh = "git.example.org ssh-ed25519 !!!notbase64\n"
	                 "git.example.org ssh-ed25519\n"
	                 "git.example.org\r\n"
	                 "@revoked\n"
	                 "|1|garbage ssh-ed25519 " KEY_A "\n"
	                 "|1|| ssh-ed25519 " KEY_A "\n"
	                 ", ssh-ed25519 " KEY_A "\n"
	                 "git.example.org ssh-ed25519 " KEY_A "\r\n";

	(void)state;
	/* Malformed lines are skipped; the last one (CRLF) still counts. */
	assert_int_equal(check(kh, "git.example.org", 22, KEY_A),
	                 TE_HOSTKEY_MATCH);
	/* Not NUL-terminated: the length bounds the scan. */
	assert_int_equal(te_known_hosts_check("git.example.org ssh-ed25519 "
	                                      "AAAA",
	                                      16, "git.example.org", 22,
	                                      (const unsigned char *)"x", 1),
	                 TE_HOSTKEY_UNKNOWN);
	/* A pattern made to backtrack stays linear. */
	big = malloc(n + 128);
	assert_non_null(big);
	for (i = 0; i < n; i += 2)
		memcpy(big + i, "*a", 2);
	memcpy(big + n, "b ssh-ed25519 " KEY_A "\n", 15 + strlen(KEY_A));
	assert_int_equal(te_known_hosts_check(big, n + 15 + strlen(KEY_A),
	                                      "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa"
	                                      "aaaaaaaaaaaaaaaaaaaaaaaaaaac",
	                                      22, (const unsigned char *)"x",
	                                      1),
	                 TE_HOSTKEY_UNKNOWN);
	free(big);
	/* An absurd host name is no host. */
	big = malloc(1000);
	assert_non_null(big);
	memset(big, 'h', 999);
	big[999] = '\0';
	assert_int_equal(check("* ssh-ed25519 " KEY_A "\n", big, 22, KEY_A),
	                 TE_HOSTKEY_UNKNOWN);
	free(big);
}

static void test_fingerprint_and_type(void **state)
{
	struct key k = decode(KEY_A);
	char fp[TE_HOSTKEY_FINGERPRINT_MAX], type[32];

	(void)state;
	te_known_hosts_fingerprint(fp, k.blob, k.len);
	assert_string_equal(fp, FP_A);
	te_known_hosts_key_type(type, sizeof(type), k.blob, k.len);
	assert_string_equal(type, "ssh-ed25519");
	/* A blob whose length field lies. */
	te_known_hosts_key_type(type, sizeof(type),
	                        (const unsigned char *)"\0\0\1\0ssh", 7);
	assert_string_equal(type, "unknown");
	te_known_hosts_key_type(type, 5, k.blob, k.len); /* too small */
	assert_string_equal(type, "unkn");
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_plain_names),
	    cmocka_unit_test(test_ports),
	    cmocka_unit_test(test_hashed_names),
	    cmocka_unit_test(test_wildcards_and_negation),
	    cmocka_unit_test(test_markers),
	    cmocka_unit_test(test_hostile_text),
	    cmocka_unit_test(test_fingerprint_and_type),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
