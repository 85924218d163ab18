/*
 * known_hosts.c - SSH host keys against an OpenSSH known_hosts file
 * (known_hosts.h).
 *
 * The file is read as hostile text: every field is bounded, a line that
 * does not parse is skipped (as OpenSSH does), and wildcard matching is
 * the linear two-pointer kind, so no pattern can make it explode.
 */
#include <ctype.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/hmac.h>
#include <openssl/sha.h>

#include "tagexport/base64.h"
#include "tagexport/known_hosts.h"

/* Longest host name looked up ("[name]:port" included) and longest
 * base64 field decoded: an RSA-16384 key blob is ~2 KiB. */
#define NAME_MAX_BYTES 300
#define FIELD_MAX 8192
#define BLOB_MAX (FIELD_MAX / 4 * 3)

struct field {
	const char *p;
	size_t len;
};

/* The next whitespace-separated field of [*s, end); empty at the end. */
static struct field next_field(const char **s, const char *end)
{
	struct field f;

	while (*s < end && (**s == ' ' || **s == '\t'))
		(*s)++;
	f.p = *s;
	while (*s < end && **s != ' ' && **s != '\t')
		(*s)++;
	f.len = (size_t)(*s - f.p);
	return f;
}

static bool field_is(struct field f, const char *word)
{
	return f.len == strlen(word) && memcmp(f.p, word, f.len) == 0;
}

/* Case-insensitive glob with * and ?: the linear kind that remembers only
 * the last star, so no pattern backtracks more than once per byte. */
static bool glob_match(const char *pat, size_t plen, const char *s)
{
	size_t p = 0, star = (size_t)-1, resume = 0, i = 0, slen = strlen(s);

	while (i < slen) {
		if (p < plen &&
		    (pat[p] == '?' || tolower((unsigned char)pat[p]) ==
		                          tolower((unsigned char)s[i]))) {
			p++;
			i++;
		} else if (p < plen && pat[p] == '*') {
			star = p++;
			resume = i;
		} else if (star != (size_t)-1) {
			p = star + 1;
			i = ++resume;
		} else {
			return false;
		}
	}
	while (p < plen && pat[p] == '*')
		p++;
	return p == plen;
}

/* Does a comma-separated pattern list name `name`?  A matching negated
 * pattern wins over every positive one. */
static bool patterns_match(struct field hosts, const char *name)
{
	const char *s = hosts.p, *end = hosts.p + hosts.len;
	bool hit = false;

	while (s < end) {
		const char *comma = memchr(s, ',', (size_t)(end - s));
		const char *stop = comma ? comma : end;
		bool negated = *s == '!';
		const char *pat = negated ? s + 1 : s;

		if (stop > pat && glob_match(pat, (size_t)(stop - pat), name)) {
			if (negated)
				return false;
			hit = true;
		}
		s = comma ? comma + 1 : end;
	}
	return hit;
}

/* |1|base64(salt)|base64(HMAC-SHA1(salt, name)) */
static bool hashed_match(struct field hosts, const char *name)
{
	unsigned char salt[64], want[64], got[EVP_MAX_MD_SIZE];
	const char *bar, *end = hosts.p + hosts.len;
	unsigned int got_len = 0;
	struct field fs, fh;
	long salt_len, want_len;

	fs.p = hosts.p + 3;
	bar = memchr(fs.p, '|', (size_t)(end - fs.p));
	if (!bar)
		return false;
	fs.len = (size_t)(bar - fs.p);
	fh.p = bar + 1;
	fh.len = (size_t)(end - fh.p);
	salt_len = te_base64_decode(salt, sizeof(salt), fs.p, fs.len);
	want_len = te_base64_decode(want, sizeof(want), fh.p, fh.len);
	if (salt_len <= 0 || want_len != SHA_DIGEST_LENGTH)
		return false;
	if (!HMAC(EVP_sha1(), salt, (int)salt_len, (const unsigned char *)name,
	          strlen(name), got, &got_len) ||
	    got_len != SHA_DIGEST_LENGTH)
		return false;
	return CRYPTO_memcmp(got, want, SHA_DIGEST_LENGTH) == 0;
}

static bool host_match(struct field hosts, const char *name)
{
	if (hosts.len > 3 && memcmp(hosts.p, "|1|", 3) == 0)
		return hashed_match(hosts, name);
	return patterns_match(hosts, name);
}

/* The name a known_hosts file lists host under, lower case. */
static bool lookup_name(char out[NAME_MAX_BYTES], const char *host,
                        unsigned int port)
{
	int n;
	char *c;

	if (port == 0 || port == 22)
		n = snprintf(out, NAME_MAX_BYTES, "%s", host);
	else
		n = snprintf(out, NAME_MAX_BYTES, "[%s]:%u", host, port);
	if (n < 0 || n >= NAME_MAX_BYTES)
		return false;
	for (c = out; *c; c++)
		*c = (char)tolower((unsigned char)*c);
	return true;
}

te_hostkey_result te_known_hosts_check(const char *text, size_t len,
                                       const char *host, unsigned int port,
                                       const unsigned char *key, size_t key_len)
{
	char name[NAME_MAX_BYTES];
	const char *s = text, *end = text + len;
	bool listed = false, matched = false;

	if (!text || !host || !*host || !lookup_name(name, host, port))
		return TE_HOSTKEY_UNKNOWN;
	while (s < end) {
		const char *eol = memchr(s, '\n', (size_t)(end - s));
		const char *line_end = eol ? eol : end;
		unsigned char decoded[BLOB_MAX];
		struct field marker = {NULL, 0}, hosts, type, b64;
		const char *p = s;
		bool revoked = false, same;
		long n;

		s = eol ? eol + 1 : end;
		if (line_end > p && line_end[-1] == '\r')
			line_end--;
		hosts = next_field(&p, line_end);
		if (hosts.len == 0 || hosts.p[0] == '#')
			continue;
		if (hosts.p[0] == '@') {
			marker = hosts;
			if (!field_is(marker, "@revoked"))
				continue; /* @cert-authority, or unknown */
			revoked = true;
			hosts = next_field(&p, line_end);
		}
		type = next_field(&p, line_end);
		b64 = next_field(&p, line_end);
		if (hosts.len == 0 || type.len == 0 || b64.len == 0 ||
		    b64.len > FIELD_MAX || !host_match(hosts, name))
			continue;
		n = te_base64_decode(decoded, sizeof(decoded), b64.p, b64.len);
		if (n < 0)
			continue;
		same =
		    (size_t)n == key_len && memcmp(decoded, key, key_len) == 0;
		if (revoked) {
			if (same)
				return TE_HOSTKEY_REVOKED;
			continue;
		}
		listed = true;
		matched = matched || same;
	}
	if (matched)
		return TE_HOSTKEY_MATCH;
	return listed ? TE_HOSTKEY_MISMATCH : TE_HOSTKEY_UNKNOWN;
}

void te_known_hosts_fingerprint(char out[TE_HOSTKEY_FINGERPRINT_MAX],
                                const unsigned char *key, size_t key_len)
{
	unsigned char md[SHA256_DIGEST_LENGTH];
	char b64[TE_BASE64_LEN(SHA256_DIGEST_LENGTH) + 1];
	size_t n;

	SHA256(key, key_len, md);
	n = te_base64_encode(b64, md, sizeof(md));
	while (n > 0 && b64[n - 1] == '=')
		n--;
	snprintf(out, TE_HOSTKEY_FINGERPRINT_MAX, "SHA256:%.*s", (int)n, b64);
}

void te_known_hosts_key_type(char *out, size_t cap, const unsigned char *key,
                             size_t key_len)
{
	uint32_t n;
	size_t i;

	if (!cap)
		return;
	snprintf(out, cap, "unknown");
	if (key_len < 4)
		return;
	n = (uint32_t)key[0] << 24 | (uint32_t)key[1] << 16 |
	    (uint32_t)key[2] << 8 | key[3];
	if (n == 0 || n > key_len - 4 || n >= cap)
		return;
	for (i = 0; i < n; i++)
		if (!isgraph(key[4 + i]))
			return;
	memcpy(out, key + 4, n);
	out[n] = '\0';
}
