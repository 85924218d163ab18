/*
 * utf8_int.h - private helpers shared by slug.c, labels.c, template.c and
 * select.c: Go-compatible UTF-8 decoding and Go's %q quoting.
 *
 * Header-only (static inline) so that partial builds with TE_CORE_MODULES
 * need no extra translation unit.
 */
#ifndef TAGEXPORT_UTF8_INT_H
#define TAGEXPORT_UTF8_INT_H

#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#define TE_UTF8_INVALID 0xfffdu

/*
 * Decode one code point from s (len > 0 bytes available) as Go's range
 * loop does: returns the bytes consumed; a malformed, overlong, surrogate
 * or out-of-range sequence yields U+FFFD and consumes exactly one byte.
 */
static inline size_t te__utf8_next(const unsigned char *s, size_t len,
                                   uint32_t *cp)
{
	unsigned char b0 = s[0], lo = 0x80, hi = 0xbf;
	size_t n, i;
	uint32_t v;

	if (b0 < 0x80) {
		*cp = b0;
		return 1;
	}
	if (b0 >= 0xc2 && b0 <= 0xdf) {
		n = 2;
		v = b0 & 0x1fu;
	} else if (b0 >= 0xe0 && b0 <= 0xef) {
		n = 3;
		v = b0 & 0x0fu;
		if (b0 == 0xe0)
			lo = 0xa0;
		else if (b0 == 0xed)
			hi = 0x9f; /* no surrogates */
	} else if (b0 >= 0xf0 && b0 <= 0xf4) {
		n = 4;
		v = b0 & 0x07u;
		if (b0 == 0xf0)
			lo = 0x90;
		else if (b0 == 0xf4)
			hi = 0x8f; /* nothing above U+10FFFF */
	} else {
		goto bad;
	}
	if (len < n || s[1] < lo || s[1] > hi)
		goto bad;
	v = v << 6 | (s[1] & 0x3fu);
	for (i = 2; i < n; i++) {
		if (s[i] < 0x80 || s[i] > 0xbf)
			goto bad;
		v = v << 6 | (s[i] & 0x3fu);
	}
	*cp = v;
	return n;
bad:
	*cp = TE_UTF8_INVALID;
	return 1;
}

/*
 * Write s quoted the way Go's %q (strconv.Quote) does into dst (size > 8):
 * \a \b \f \n \r \t \v, \" and \\ escaped, other control bytes and
 * malformed bytes as \xHH, C1 controls and U+00AD as \u00HH, everything
 * else verbatim.  Overlong input is cut and ends in `..."`.
 */
static inline void te__goquote(char *dst, size_t size, const char *s)
{
	const unsigned char *p = (const unsigned char *)s;
	size_t len = strlen(s), i = 0, o = 0;

	dst[o++] = '"';
	while (i < len) {
		char esc[12];
		const char *piece = esc;
		size_t plen, n;
		uint32_t cp;

		n = te__utf8_next(p + i, len - i, &cp);
		esc[0] = '\\';
		esc[2] = '\0';
		plen = 2;
		if (cp == TE_UTF8_INVALID && n == 1) {
			snprintf(esc, sizeof(esc), "\\x%02x", p[i]);
			plen = 4;
		} else if (cp == '"' || cp == '\\') {
			esc[1] = (char)cp;
		} else if (cp == '\a') {
			esc[1] = 'a';
		} else if (cp == '\b') {
			esc[1] = 'b';
		} else if (cp == '\f') {
			esc[1] = 'f';
		} else if (cp == '\n') {
			esc[1] = 'n';
		} else if (cp == '\r') {
			esc[1] = 'r';
		} else if (cp == '\t') {
			esc[1] = 't';
		} else if (cp == '\v') {
			esc[1] = 'v';
		} else if (cp < 0x20 || cp == 0x7f) {
			snprintf(esc, sizeof(esc), "\\x%02x", (unsigned)cp);
			plen = 4;
		} else if ((cp >= 0x80 && cp <= 0x9f) || cp == 0xad) {
			snprintf(esc, sizeof(esc), "\\u%04x", (unsigned)cp);
			plen = 6;
		} else {
			piece = (const char *)p + i;
			plen = n;
		}
		/* keep room for `..."` and the terminator */
		if (o + plen + 5 > size) {
			memcpy(dst + o, "...", 3);
			o += 3;
			break;
		}
		memcpy(dst + o, piece, plen);
		o += plen;
		i += n;
	}
	dst[o++] = '"';
	dst[o] = '\0';
}

#endif
