/*
 * verify.c - HMAC-SHA256 signatures and token comparison (verify.h).
 *
 * GitHub: "X-Hub-Signature-256: sha256=<hex>", HMAC-SHA256 of the raw
 * body keyed by the webhook secret (docs: validating webhook deliveries).
 * Gitea/Forgejo: the same MAC as bare hex.  GitLab: the secret itself in
 * X-Gitlab-Token.  The hex is decoded and the raw MACs are compared with
 * CRYPTO_memcmp: a plain memcmp or strcmp returns at the first differing
 * byte and leaks timing.
 */
#include "verify.h"

#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/hmac.h>
#include <openssl/sha.h>
#include <stdio.h>

static int hexval(char c)
{
	if (c >= '0' && c <= '9')
		return c - '0';
	if (c >= 'a' && c <= 'f')
		return c - 'a' + 10;
	if (c >= 'A' && c <= 'F')
		return c - 'A' + 10;
	return -1;
}

static bool mac(unsigned char out[32], const void *key, size_t keylen,
                const void *data, size_t len)
{
	unsigned int outlen = 0;

	if (!HMAC(EVP_sha256(), key, (int)keylen, data, len, out, &outlen))
		return false;
	return outlen == 32;
}

bool ts_hmac_sha256_hex_ok(const void *key, size_t keylen, const void *data,
                           size_t len, const char *hex, size_t hexlen)
{
	unsigned char want[32], got[32];
	size_t i;
	int bad = 0;

	if (!hex || hexlen != 64 || keylen > (size_t)0x7fffffff)
		return false;
	for (i = 0; i < 32; i++) {
		int hi = hexval(hex[2 * i]), lo = hexval(hex[2 * i + 1]);
		bad |= (hi < 0) | (lo < 0);
		got[i] = (unsigned char)(((hi & 15) << 4) | (lo & 15));
	}
	if (bad)
		return false;
	if (!mac(want, key, keylen, data, len))
		return false;
	return CRYPTO_memcmp(want, got, sizeof(want)) == 0;
}

void ts_hmac_sha256_hex(char out[65], const void *key, size_t keylen,
                        const void *data, size_t len)
{
	unsigned char m[32];
	size_t i;

	out[0] = '\0';
	if (!mac(m, key, keylen, data, len))
		return;
	for (i = 0; i < 32; i++)
		snprintf(out + 2 * i, 3, "%02x", m[i]);
}

bool ts_secret_equal(const void *a, size_t alen, const void *b, size_t blen)
{
	unsigned char da[SHA256_DIGEST_LENGTH], db[SHA256_DIGEST_LENGTH];

	SHA256(a, alen, da);
	SHA256(b, blen, db);
	return CRYPTO_memcmp(da, db, sizeof(da)) == 0;
}
