/*
 * base64.h - standard base64 (RFC 4648 section 4, the "+/" alphabet), as
 * docker config.json auth entries and OpenSSH key fields use it.
 *
 * Pure functions: no allocation, no global state; in is never trusted.
 */
#ifndef TAGEXPORT_BASE64_H
#define TAGEXPORT_BASE64_H

#include <stddef.h>

/* Bytes te_base64_encode writes for n input bytes (NUL not counted). */
#define TE_BASE64_LEN(n) (((n) + 2) / 3 * 4)

/*
 * Decode len characters of in into out (cap bytes).  The "=" padding is
 * optional (some docker clients omit it); anything else outside the
 * alphabet, including whitespace, makes the input invalid.  Returns the
 * decoded length, or -1 when in is not base64 or out is too small.
 */
long te_base64_decode(unsigned char *out, size_t cap, const char *in,
                      size_t len);

/* Encode len bytes of in into out, which holds TE_BASE64_LEN(len) + 1
 * bytes; padded and NUL-terminated.  Returns the length written. */
size_t te_base64_encode(char *out, const unsigned char *in, size_t len);

#endif
