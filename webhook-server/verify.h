/*
 * verify.h - webhook authentication primitives.
 *
 * All comparisons run in constant time with respect to the secret and the
 * presented value (CRYPTO_memcmp over fixed-size digests), so response
 * timing tells an attacker nothing about how close a guess was.
 */
#ifndef TS_VERIFY_H
#define TS_VERIFY_H

#include <stdbool.h>
#include <stddef.h>

#include "tagexport/error.h"

/*
 * Constant-time equality of two secrets of any length: compares their
 * SHA-256 digests, so neither the content nor the length leaks.
 */
bool ts_secret_equal(const void *a, size_t alen, const void *b, size_t blen);

/*
 * Does an Authorization header value carry "Bearer <token>" (scheme in any
 * case, RFC 6750 section 2.1) for this token, compared as above?  False
 * when token or authorization is NULL.
 */
bool ts_bearer_ok(const char *token, size_t token_len,
                  const char *authorization);

/*
 * Does an Authorization header value carry HTTP Basic credentials (RFC
 * 7617) whose password is token (any user name), compared as above?
 */
bool ts_basic_ok(const char *token, size_t token_len,
                 const char *authorization);

/*
 * An HMAC-SHA256 key prepared once: OpenSSL's one-shot HMAC() looks the
 * algorithms up and derives the key's pads on every call, which costs
 * more than hashing a typical delivery.  Immutable once made, so any
 * number of threads may check with one at the same time.
 */
struct ts_hmac;

int ts_hmac_new(struct ts_hmac **out, const void *key, size_t keylen,
                te_error *err);
void ts_hmac_free(struct ts_hmac *k);

/*
 * Does hex (exactly 64 hex digits, either case, hexlen bytes) equal
 * HMAC-SHA256(key, data)?  Anything malformed is simply false.
 */
bool ts_hmac_hex_ok(const struct ts_hmac *k, const void *data, size_t len,
                    const char *hex, size_t hexlen);

/* Lowercase hex HMAC-SHA256 into out[65]. */
void ts_hmac_sha256_hex(char out[65], const void *key, size_t keylen,
                        const void *data, size_t len);

#endif
