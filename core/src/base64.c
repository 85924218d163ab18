/*
 * base64.c - standard base64 (base64.h).
 *
 * Decoding is done here rather than with OpenSSL's EVP_DecodeBlock: that
 * one wants whole padded quads, skips surrounding whitespace and reports
 * the padding as decoded zero bytes, which every caller then had to
 * correct for.
 */
#include <stdint.h>

#include "tagexport/base64.h"

static const char alphabet[] =
    "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";

static int value_of(char c)
{
	if (c >= 'A' && c <= 'Z')
		return c - 'A';
	if (c >= 'a' && c <= 'z')
		return c - 'a' + 26;
	if (c >= '0' && c <= '9')
		return c - '0' + 52;
	if (c == '+')
		return 62;
	if (c == '/')
		return 63;
	return -1;
}

long te_base64_decode(unsigned char *out, size_t cap, const char *in,
                      size_t len)
{
	uint32_t acc = 0;
	size_t i, n = 0;
	int bits = 0;

	if (len % 4 == 0 && len > 0 && in[len - 1] == '=')
		len -= (len > 1 && in[len - 2] == '=') ? 2 : 1;
	if (len % 4 == 1)
		return -1; /* one character cannot end a quad */
	for (i = 0; i < len; i++) {
		int v = value_of(in[i]);

		if (v < 0)
			return -1;
		acc = (acc << 6) | (uint32_t)v;
		bits += 6;
		if (bits >= 8) {
			bits -= 8;
			if (n == cap)
				return -1;
			out[n++] = (unsigned char)(acc >> bits);
		}
	}
	/* The bits left over must be the zero padding of the last quad. */
	if (acc & ((1u << bits) - 1))
		return -1;
	return (long)n;
}

size_t te_base64_encode(char *out, const unsigned char *in, size_t len)
{
	size_t i, n = 0;

	for (i = 0; i + 2 < len; i += 3) {
		uint32_t v = (uint32_t)in[i] << 16 | (uint32_t)in[i + 1] << 8 |
		             in[i + 2];
		out[n++] = alphabet[v >> 18];
		out[n++] = alphabet[(v >> 12) & 63];
		out[n++] = alphabet[(v >> 6) & 63];
		out[n++] = alphabet[v & 63];
	}
	if (i < len) {
		uint32_t v = (uint32_t)in[i] << 16;

		if (i + 1 < len)
			v |= (uint32_t)in[i + 1] << 8;
		out[n++] = alphabet[v >> 18];
		out[n++] = alphabet[(v >> 12) & 63];
		out[n++] = i + 1 < len ? alphabet[(v >> 6) & 63] : '=';
		out[n++] = '=';
	}
	out[n] = '\0';
	return n;
}
