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

/*
 * Does hex (exactly 64 hex digits, either case, hexlen bytes) equal
 * HMAC-SHA256(key, data)?  Anything malformed is simply false.
 */
bool ts_hmac_sha256_hex_ok(const void *key, size_t keylen, const void *data,
                           size_t len, const char *hex, size_t hexlen);

/*
 * Constant-time equality of two secrets of any length: compares their
 * SHA-256 digests, so neither the content nor the length leaks.
 */
bool ts_secret_equal(const void *a, size_t alen, const void *b, size_t blen);

/* Lowercase hex HMAC-SHA256 into out[65]. */
void ts_hmac_sha256_hex(char out[65], const void *key, size_t keylen,
                        const void *data, size_t len);

#endif
