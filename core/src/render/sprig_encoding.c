/*
 * sprig_encoding.c - Sprig v3.2.3's encoders and checksums (crypto.go,
 * strings.go; https://masterminds.github.io/sprig/encoding.html and
 * crypto.html): b64enc b64dec b32enc (RFC 4648 standard alphabets, padded),
 * sha1sum sha256sum (lower-case hex, via OpenSSL's EVP digests) and
 * adler32sum (RFC 1950's Adler-32, in decimal).
 */
#include <inttypes.h>
#include <openssl/evp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "render/sprig_int.h"
#include "tagexport/base64.h"

/* Encoded text is at most twice the input: checked before allocating. */
static int enc_budget(te_render_call *call, size_t in, te_error *err)
{
	if (in > sp_out_max(call) / 2)
		return te_error_set(err, TE_EINVALID,
		                    "result exceeds the output limit of %zu "
		                    "bytes",
		                    sp_out_max(call));
	return 0;
}

static int f_b64enc(te_render_value **out, te_render_call *call, sp_args a,
                    size_t n, void *p, te_error *err)
{
	size_t len;
	char *s;

	(void)n;
	(void)p;
	if (WANT_STR(a[0]) < 0 || enc_budget(call, a[0]->u.s.len, err) < 0)
		return err->code;
	s = malloc(TE_BASE64_LEN(a[0]->u.s.len) + 1);
	if (!s)
		return te_error_set(err, TE_ENOMEM, "out of memory");
	len = te_base64_encode(s, (const unsigned char *)a[0]->u.s.ptr,
	                       a[0]->u.s.len);
	return sp_ret(out, te_render__strown(s, len), err);
}

/* RFC 4648 section 6: 5-byte groups to 8 characters, "=" padded. */
static int f_b32enc(te_render_value **out, te_render_call *call, sp_args a,
                    size_t n, void *p, te_error *err)
{
	static const char abc[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZ234567";
	const unsigned char *in;
	size_t len, i, j, o = 0, chars;
	uint64_t group;
	char *s;

	(void)n;
	(void)p;
	if (WANT_STR(a[0]) < 0 || enc_budget(call, a[0]->u.s.len, err) < 0)
		return err->code;
	in = (const unsigned char *)a[0]->u.s.ptr;
	len = a[0]->u.s.len;
	s = malloc((len + 4) / 5 * 8 + 1);
	if (!s)
		return te_error_set(err, TE_ENOMEM, "out of memory");
	for (i = 0; i < len; i += 5) {
		group = 0;
		for (j = 0; j < 5; j++)
			group = group << 8 | (i + j < len ? in[i + j] : 0);
		/* characters carrying data for 1..5 input bytes */
		chars = len - i >= 5 ? 8 : (size_t[]){0, 2, 4, 5, 7}[len - i];
		for (j = 0; j < 8; j++)
			s[o++] =
			    j < chars ? abc[(group >> (35 - 5 * j)) & 31] : '=';
	}
	s[o] = '\0';
	return sp_ret(out, te_render__strown(s, o), err);
}

/* payload: the OpenSSL digest name ("SHA1", "SHA256"). */
static int f_shasum(te_render_value **out, te_render_call *call, sp_args a,
                    size_t n, void *p, te_error *err)
{
	unsigned char md[EVP_MAX_MD_SIZE];
	char hex[2 * EVP_MAX_MD_SIZE + 1];
	unsigned int mdlen = 0, i;
	const EVP_MD *type = EVP_get_digestbyname(p);

	(void)call;
	(void)n;
	if (WANT_STR(a[0]) < 0)
		return err->code;
	if (!type ||
	    !EVP_Digest(a[0]->u.s.ptr, a[0]->u.s.len, md, &mdlen, type, NULL))
		return te_error_set(err, TE_ERROR, "%s digest failed",
		                    (const char *)p);
	for (i = 0; i < mdlen; i++)
		snprintf(hex + 2 * i, 3, "%02x", md[i]);
	return sp_ret(out, te_render_value_string(hex, 2 * mdlen), err);
}

static int f_adler32(te_render_value **out, te_render_call *call, sp_args a,
                     size_t n, void *p, te_error *err)
{
	const unsigned char *s;
	uint32_t x = 1, y = 0;
	char dec[16];
	size_t i;

	(void)call;
	(void)n;
	(void)p;
	if (WANT_STR(a[0]) < 0)
		return err->code;
	s = (const unsigned char *)a[0]->u.s.ptr;
	for (i = 0; i < a[0]->u.s.len; i++) {
		x = (x + s[i]) % 65521;
		y = (y + x) % 65521;
	}
	snprintf(dec, sizeof(dec), "%" PRIu32, y << 16 | x);
	return sp_ret(out, te_render_value_string(dec, strlen(dec)), err);
}

static int b64_value(unsigned char c)
{
	if (c >= 'A' && c <= 'Z')
		return c - 'A';
	if (c >= 'a' && c <= 'z')
		return c - 'a' + 26;
	if (c >= '0' && c <= '9')
		return c - '0' + 52;
	return c == '+' ? 62 : c == '/' ? 63 : -1;
}

static size_t skip_newlines(const unsigned char *s, size_t n, size_t i)
{
	while (i < n && (s[i] == '\n' || s[i] == '\r'))
		i++;
	return i;
}

/*
 * One 4-character group of Go's base64.StdEncoding decoder: newlines are
 * skipped anywhere, "=" padding is required.  Appends the bytes to b;
 * returns -1, or the input offset Go's CorruptInputError names.
 */
static long b64_group(te_buf *b, const unsigned char *s, size_t n, size_t *si,
                      te_error *err)
{
	int d[4] = {0, 0, 0, 0}, v;
	size_t j, len = 4;
	unsigned char out[3];
	unsigned long val;

	for (j = 0; j < 4; j++) {
		if (*si == n) {
			if (j == 0)
				return -1;
			return (long)(*si - j);
		}
		v = b64_value(s[(*si)++]);
		if (v >= 0) {
			d[j] = v;
			continue;
		}
		if (s[*si - 1] == '\n' || s[*si - 1] == '\r') {
			j--;
			continue;
		}
		if (s[*si - 1] != '=' || j < 2)
			return (long)(*si - 1);
		if (j == 2) {
			*si = skip_newlines(s, n, *si);
			if (*si == n)
				return (long)n;
			if (s[*si] != '=')
				return (long)(*si - 1);
			(*si)++;
		}
		*si = skip_newlines(s, n, *si);
		if (*si < n)
			return (long)*si;
		len = j;
		break;
	}
	val = (unsigned long)d[0] << 18 | (unsigned long)d[1] << 12 |
	      (unsigned long)d[2] << 6 | (unsigned long)d[3];
	out[0] = (unsigned char)(val >> 16);
	out[1] = (unsigned char)(val >> 8);
	out[2] = (unsigned char)val;
	te_buf_put(b, out, len - 1, err);
	return -1;
}

long sp_b64_decode(te_buf *b, const char *text, size_t n, te_error *err)
{
	const unsigned char *s = (const unsigned char *)text;
	size_t si = 0;
	long bad = -1;

	while (si < n && bad < 0 && !err->code)
		bad = b64_group(b, s, n, &si, err);
	return bad;
}

/* b64dec: the decoded bytes, or Go's error text as the result (Sprig
 * returns err.Error() instead of failing). */
static int f_b64dec(te_render_value **out, te_render_call *call, sp_args a,
                    size_t n, void *p, te_error *err)
{
	te_buf b = TE_BUF_INIT(sp_out_max(call));
	long bad;

	(void)n;
	(void)p;
	if (WANT_STR(a[0]) < 0)
		return err->code;
	bad = sp_b64_decode(&b, a[0]->u.s.ptr, a[0]->u.s.len, err);
	if (bad >= 0) {
		te_buf_clear(&b);
		te_buf_printf(&b, err, "illegal base64 data at input byte %ld",
		              bad);
	}
	return sp_ret_buf(out, &b, err);
}

const struct sp_entry te_render__sp_encoding[] = {
    {"adler32sum", f_adler32, 1, 1, NULL},
    {"b32enc", f_b32enc, 1, 1, NULL},
    {"b64dec", f_b64dec, 1, 1, NULL},
    {"b64enc", f_b64enc, 1, 1, NULL},
    {"sha1sum", f_shasum, 1, 1, "SHA1"},
    {"sha256sum", f_shasum, 1, 1, "SHA256"},
};
const size_t te_render__sp_encoding_len =
    sizeof(te_render__sp_encoding) / sizeof(te_render__sp_encoding[0]);
