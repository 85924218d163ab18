/*
 * hex.h - hexadecimal digits, as JSON \u escapes (RFC 8259 section 7),
 * percent-encoding (RFC 3986 section 2.1) and HMAC signature headers
 * spell them.  Pure; nothing to free.
 */
#ifndef TAGEXPORT_HEX_H
#define TAGEXPORT_HEX_H

/* The value (0-15) of one hex digit, either case; -1 for any other
 * character. */
int te_hex_digit(char c);

#endif
