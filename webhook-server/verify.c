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
#include "tagexport/base64.h"
#include "tagexport/hex.h"

#include <openssl/core_names.h>
#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/hmac.h>
#include <openssl/sha.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

struct ts_hmac {
	EVP_MAC_CTX *keyed; /* initialised with the key, never updated */
};

static bool mac(unsigned char out[32], const void *key, size_t keylen,
                const void *data, size_t len)
{
	unsigned int outlen = 0;

	if (!HMAC(EVP_sha256(), key, (int)keylen, data, len, out, &outlen))
		return false;
	return outlen == 32;
}

/* 64 hex digits into out[32]. */
static bool unhex32(unsigned char out[32], const char *hex, size_t hexlen)
{
	size_t i;
	int bad = 0;

	if (!hex || hexlen != 64)
		return false;
	for (i = 0; i < 32; i++) {
		int hi = te_hex_digit(hex[2 * i]),
		    lo = te_hex_digit(hex[2 * i + 1]);
		bad |= (hi < 0) | (lo < 0);
		out[i] = (unsigned char)(((hi & 15) << 4) | (lo & 15));
	}
	return !bad;
}

int ts_hmac_new(struct ts_hmac **out, const void *key, size_t keylen,
                te_error *err)
{
	char digest[] = "SHA256"; /* OSSL_PARAM takes a non-const pointer */
	OSSL_PARAM params[] = {
	    OSSL_PARAM_construct_utf8_string(OSSL_MAC_PARAM_DIGEST, digest, 0),
	    OSSL_PARAM_construct_end()};
	struct ts_hmac *k = calloc(1, sizeof(*k));
	EVP_MAC *hmac = EVP_MAC_fetch(NULL, "HMAC", NULL);
	int rc = 0;

	*out = NULL;
	if (!k || !hmac || !(k->keyed = EVP_MAC_CTX_new(hmac)) ||
	    !EVP_MAC_init(k->keyed, key, keylen, params)) {
		rc = te_error_set(err, TE_ERROR, "cannot set up HMAC-SHA256");
		ts_hmac_free(k);
		goto done;
	}
	*out = k;
done:
	EVP_MAC_free(hmac);
	return rc;
}

void ts_hmac_free(struct ts_hmac *k)
{
	if (!k)
		return;
	EVP_MAC_CTX_free(k->keyed);
	free(k);
}

bool ts_hmac_hex_ok(const struct ts_hmac *k, const void *data, size_t len,
                    const char *hex, size_t hexlen)
{
	unsigned char want[32], got[32];
	EVP_MAC_CTX *c;
	size_t outlen = 0;
	bool ok;

	if (!unhex32(got, hex, hexlen))
		return false;
	/* A copy of the keyed context starts where a fresh HMAC would be
	 * after the key setup; k itself is never written. */
	if (!(c = EVP_MAC_CTX_dup(k->keyed)))
		return false;
	ok = EVP_MAC_update(c, data, len) &&
	     EVP_MAC_final(c, want, &outlen, sizeof(want)) && outlen == 32;
	EVP_MAC_CTX_free(c);
	return ok && CRYPTO_memcmp(want, got, sizeof(want)) == 0;
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

bool ts_bearer_ok(const char *token, size_t token_len,
                  const char *authorization)
{
	static const char prefix[] = "Bearer ";
	const char *tok;

	if (!token || !authorization ||
	    strncasecmp(authorization, prefix, sizeof(prefix) - 1) != 0)
		return false;
	tok = authorization + sizeof(prefix) - 1;
	while (*tok == ' ')
		tok++;
	return ts_secret_equal(token, token_len, tok, strlen(tok));
}

bool ts_basic_ok(const char *token, size_t token_len, const char *authorization)
{
	static const char prefix[] = "Basic ";
	unsigned char plain[1024];
	const char *b64, *pass;
	long n;
	bool ok;

	if (!token || !authorization ||
	    strncasecmp(authorization, prefix, sizeof(prefix) - 1) != 0)
		return false;
	b64 = authorization + sizeof(prefix) - 1;
	while (*b64 == ' ')
		b64++;
	n = te_base64_decode(plain, sizeof(plain) - 1, b64, strlen(b64));
	if (n < 0)
		return false;
	plain[n] = '\0';
	/* RFC 7617 section 2: the user-id cannot hold a colon, the
	 * password may. */
	pass = memchr(plain, ':', (size_t)n);
	ok = pass &&
	     ts_secret_equal(token, token_len, pass + 1,
	                     (size_t)n - (size_t)(pass + 1 - (char *)plain));
	explicit_bzero(plain, sizeof(plain));
	return ok;
}
