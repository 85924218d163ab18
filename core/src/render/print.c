/*
 * print.c - Go's fmt (https://pkg.go.dev/fmt) for the template value
 * model: Sprint, Sprintln, Sprintf with verbs %v %d %b %o %O %x %X %c %q
 * %U %e %E %f %F %g %G %s %t %T %%, the flags + - # 0 space, width and
 * precision (also from `*` and `[n]` argument indexes), and Go's error
 * forms (%!d(string=x), %!v(MISSING), %!(EXTRA ...), %!(NOVERB)).  Also
 * strconv's Quote/Unquote and UTF-8 decoding with Go's rules.
 */
#include <float.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "render/render_int.h"
#include "tagexport/hex.h"

/* ---- UTF-8 and quoting (strconv) ---- */

int32_t te_render__rune(const char *s, size_t len, size_t *width)
{
	const unsigned char *u = (const unsigned char *)s;
	int32_t r;
	size_t n, i;

	*width = 1;
	if (len == 0)
		return 0xFFFD;
	if (u[0] < 0x80)
		return u[0];
	if (u[0] >= 0xC2 && u[0] <= 0xDF)
		n = 2, r = u[0] & 0x1F;
	else if (u[0] >= 0xE0 && u[0] <= 0xEF)
		n = 3, r = u[0] & 0x0F;
	else if (u[0] >= 0xF0 && u[0] <= 0xF4)
		n = 4, r = u[0] & 0x07;
	else
		return 0xFFFD;
	if (len < n)
		return 0xFFFD;
	for (i = 1; i < n; i++) {
		if ((u[i] & 0xC0) != 0x80)
			return 0xFFFD;
		r = (r << 6) | (u[i] & 0x3F);
	}
	if ((n == 3 && r < 0x800) ||
	    (n == 4 && (r < 0x10000 || r > 0x10FFFF)) ||
	    (r >= 0xD800 && r <= 0xDFFF))
		return 0xFFFD;
	*width = n;
	return r;
}

size_t te_render__put_rune(char *d, int32_t r)
{
	if (r < 0 || r > 0x10FFFF || (r >= 0xD800 && r <= 0xDFFF))
		r = 0xFFFD;
	if (r < 0x80) {
		d[0] = (char)r;
		return 1;
	}
	if (r < 0x800) {
		d[0] = (char)(0xC0 | (r >> 6));
		d[1] = (char)(0x80 | (r & 0x3F));
		return 2;
	}
	if (r < 0x10000) {
		d[0] = (char)(0xE0 | (r >> 12));
		d[1] = (char)(0x80 | ((r >> 6) & 0x3F));
		d[2] = (char)(0x80 | (r & 0x3F));
		return 3;
	}
	d[0] = (char)(0xF0 | (r >> 18));
	d[1] = (char)(0x80 | ((r >> 12) & 0x3F));
	d[2] = (char)(0x80 | ((r >> 6) & 0x3F));
	d[3] = (char)(0x80 | (r & 0x3F));
	return 4;
}

/* unicode.IsPrint, exact for Latin-1 and the common format/space
 * characters; other assigned-ness is not tracked. */
bool te_render__is_print(int32_t r)
{
	if (r < 0x20 || r == 0x7F || (r >= 0x80 && r < 0xA0) || r == 0xA0 ||
	    r == 0xAD)
		return false;
	if (r > 0x10FFFF || (r >= 0xD800 && r <= 0xDFFF) ||
	    (r >= 0xE000 && r <= 0xF8FF) || r >= 0xF0000)
		return false;
	if (r == 0x1680 || (r >= 0x2000 && r <= 0x200F) ||
	    (r >= 0x2028 && r <= 0x202F) || (r >= 0x205F && r <= 0x206F) ||
	    r == 0x3000 || r == 0xFEFF || (r >= 0xFFF9 && r <= 0xFFFB) ||
	    (r & 0xFFFE) == 0xFFFE)
		return false;
	return true;
}

static const char lhex[] = "0123456789abcdef";

static int quote_rune_into(te_buf *b, int32_t r, size_t width, char q,
                           bool ascii, const char *raw, te_error *err)
{
	char tmp[16];
	size_t n;

	if (width == 1 && r == 0xFFFD) {
		snprintf(tmp, sizeof(tmp), "\\x%c%c",
		         lhex[(unsigned char)raw[0] >> 4],
		         lhex[(unsigned char)raw[0] & 15]);
		return te_buf_puts(b, tmp, err);
	}
	if (r == q || r == '\\') {
		tmp[0] = '\\';
		tmp[1] = (char)r;
		return te_buf_put(b, tmp, 2, err);
	}
	if (ascii ? (r < 0x7F && r >= 0x20) : te_render__is_print(r)) {
		n = te_render__put_rune(tmp, r);
		return te_buf_put(b, tmp, n, err);
	}
	switch (r) {
	case '\a':
		return te_buf_puts(b, "\\a", err);
	case '\b':
		return te_buf_puts(b, "\\b", err);
	case '\f':
		return te_buf_puts(b, "\\f", err);
	case '\n':
		return te_buf_puts(b, "\\n", err);
	case '\r':
		return te_buf_puts(b, "\\r", err);
	case '\t':
		return te_buf_puts(b, "\\t", err);
	case '\v':
		return te_buf_puts(b, "\\v", err);
	default:
		break;
	}
	if (r < ' ' || r == 0x7F)
		snprintf(tmp, sizeof(tmp), "\\x%02x", (unsigned)r);
	else if (r < 0x10000)
		snprintf(tmp, sizeof(tmp), "\\u%04x", (unsigned)r);
	else
		snprintf(tmp, sizeof(tmp), "\\U%08x", (unsigned)r);
	return te_buf_puts(b, tmp, err);
}

static int quote_with(te_buf *b, const char *s, size_t len, char q, bool ascii,
                      te_error *err)
{
	size_t i = 0, w;
	int32_t r;

	te_buf_put(b, &q, 1, err);
	while (i < len) {
		r = te_render__rune(s + i, len - i, &w);
		if (quote_rune_into(b, r, w, q, ascii, s + i, err) < 0)
			return err->code;
		i += w;
	}
	return te_buf_put(b, &q, 1, err);
}

int te_render__quote(te_buf *b, const char *s, size_t len, bool ascii,
                     te_error *err)
{
	return quote_with(b, s, len, '"', ascii, err);
}

static int quote_rune(te_buf *b, int32_t r, bool ascii, te_error *err)
{
	char raw[4];

	if (r < 0 || r > 0x10FFFF || (r >= 0xD800 && r <= 0xDFFF))
		r = 0xFFFD;
	te_buf_puts(b, "'", err);
	te_render__put_rune(raw, r);
	quote_rune_into(b, r, r == 0xFFFD ? 3 : 1, '\'', ascii, raw, err);
	return te_buf_puts(b, "'", err);
}

/* strconv.UnquoteChar: one (possibly escaped) character of s. */
static int unquote_char(const char *s, size_t len, char q, int32_t *r,
                        bool *multibyte, size_t *used)
{
	size_t n = 0, i, w;
	uint32_t u;
	int v, x;

	*multibyte = false;
	if (len == 0 || s[0] == q)
		return -1;
	if ((unsigned char)s[0] >= 0x80) {
		*r = te_render__rune(s, len, &w);
		*used = w;
		*multibyte = true;
		return 0;
	}
	if (s[0] != '\\') {
		*r = (unsigned char)s[0];
		*used = 1;
		return 0;
	}
	if (len < 2)
		return -1;
	*used = 2;
	{
		/* one-letter escapes: \a \b \f \n \r \t \v \\ */
		static const char from[] = "abfnrtv\\",
		                  to[] = "\a\b\f\n\r\t\v\\";
		const char *hit = strchr(from, s[1]);

		if (s[1] && hit) {
			*r = to[hit - from];
			return 0;
		}
	}
	switch (s[1]) {
	case '\'':
	case '"':
		if (s[1] != q)
			return -1;
		*r = s[1];
		return 0;
	case 'x':
		n = 2;
		break;
	case 'u':
		n = 4;
		break;
	case 'U':
		n = 8;
		break;
	default:
		if (s[1] >= '0' && s[1] <= '7') {
			if (len < 4)
				return -1;
			v = 0;
			for (i = 1; i < 4; i++) {
				if (s[i] < '0' || s[i] > '7')
					return -1;
				v = v * 8 + (s[i] - '0');
			}
			if (v > 255)
				return -1;
			*r = v;
			*used = 4;
			return 0;
		}
		return -1;
	}
	if (len < 2 + n)
		return -1;
	u = 0;
	for (i = 0; i < n; i++) {
		x = te_hex_digit(s[2 + i]);
		if (x < 0)
			return -1;
		u = u * 16 + (uint32_t)x; /* 8 digits fit in 32 bits */
	}
	*used = 2 + n;
	if (s[1] == 'x') {
		*r = (int32_t)u; /* a raw byte */
		return 0;
	}
	if (u > 0x10FFFF || (u >= 0xD800 && u <= 0xDFFF))
		return -1;
	*r = (int32_t)u;
	*multibyte = true;
	return 0;
}

int te_render__char_const(const char *s, size_t len, int32_t *r)
{
	size_t used;
	bool mb;

	if (len < 2 || unquote_char(s + 1, len - 1, '\'', r, &mb, &used) < 0)
		return -1;
	if (used + 2 != len || s[len - 1] != '\'')
		return -2;
	return 0;
}

int te_render__unquote(char **out, size_t *out_len, const char *s, size_t len)
{
	char q, *d;
	size_t i, o = 0, used;
	bool mb;
	int32_t r;

	*out = NULL;
	if (len < 2 || s[0] != s[len - 1])
		return -1;
	q = s[0];
	d = malloc(len + 1);
	if (!d)
		return -1;
	s++;
	len -= 2;
	if (q == '`') {
		for (i = 0; i < len; i++) {
			if (s[i] == '`')
				goto bad;
			if (s[i] != '\r')
				d[o++] = s[i];
		}
		goto ok;
	}
	if (q != '"' && q != '\'')
		goto bad;
	for (i = 0; i < len; i += used) {
		if (s[i] == '\n' ||
		    unquote_char(s + i, len - i, q, &r, &mb, &used) < 0)
			goto bad;
		if (!mb) /* ASCII, or a raw byte from \x or octal */
			d[o++] = (char)r;
		else if ((unsigned char)s[i] >= 0x80) /* UTF-8 as written */
			memcpy(d + o, s + i, used), o += used;
		else /* \u or \U */
			o += te_render__put_rune(d + o, r);
		if (q == '\'' && i + used != len)
			goto bad;
	}
	if (q == '\'' && len == 0)
		goto bad;
ok:
	d[o] = '\0';
	*out = d;
	*out_len = o;
	return 0;
bad:
	free(d);
	return -1;
}

/* ---- the printer ---- */

struct fmtf {
	bool plus, minus, sharp, space, zero, plus_v, sharp_v;
	bool wid_present, prec_present;
	int wid, prec;
};

struct pp {
	te_buf *b;
	te_error *err;
	struct fmtf f;
};

static void put(struct pp *p, const char *s, size_t n)
{
	te_buf_put(p->b, s, n, p->err);
}

static void puts_(struct pp *p, const char *s)
{
	te_buf_puts(p->b, s, p->err);
}

static size_t rune_count(const char *s, size_t n)
{
	size_t i = 0, c = 0, w;

	while (i < n) {
		te_render__rune(s + i, n - i, &w);
		i += w;
		c++;
	}
	return c;
}

static void write_padding(struct pp *p, int n)
{
	char pad = p->f.zero ? '0' : ' ';
	char chunk[64];
	int k;

	memset(chunk, pad, sizeof(chunk));
	while (n > 0 && !p->err->code) {
		k = n > 64 ? 64 : n;
		put(p, chunk, (size_t)k);
		n -= k;
	}
}

static void pad(struct pp *p, const char *s, size_t n)
{
	int width;

	if (!p->f.wid_present || p->f.wid == 0) {
		put(p, s, n);
		return;
	}
	width = p->f.wid - (int)rune_count(s, n);
	if (!p->f.minus) {
		write_padding(p, width);
		put(p, s, n);
	} else {
		put(p, s, n);
		write_padding(p, width);
	}
}

static void pad_nozero(struct pp *p, const char *s, size_t n)
{
	bool z = p->f.zero;

	p->f.zero = false;
	pad(p, s, n);
	p->f.zero = z;
}

static void fmt_integer(struct pp *p, uint64_t u, int base, bool is_signed,
                        char verb, const char *digits)
{
	bool negative = is_signed && (int64_t)u < 0;
	char stackbuf[80], *buf = stackbuf;
	size_t size = sizeof(stackbuf), i;
	int prec = 0;

	if (negative)
		u = -u;
	if (p->f.wid_present || p->f.prec_present) {
		size_t need = 3 + (size_t)p->f.wid + (size_t)p->f.prec;
		if (need > size) {
			buf = malloc(need);
			if (!buf) {
				te_error_set(p->err, TE_ENOMEM,
				             "out of memory");
				return;
			}
			size = need;
		}
	}
	if (p->f.prec_present) {
		prec = p->f.prec;
		if (prec == 0 && u == 0) {
			bool z = p->f.zero;

			p->f.zero = false;
			write_padding(p, p->f.wid);
			p->f.zero = z;
			goto done;
		}
	} else if (p->f.zero && p->f.wid_present) {
		prec = p->f.wid;
		if (negative || p->f.plus || p->f.space)
			prec--;
	}
	i = size;
	while (u >= (uint64_t)base) {
		buf[--i] = digits[u % (uint64_t)base];
		u /= (uint64_t)base;
	}
	buf[--i] = digits[u];
	while (i > 0 && prec > (int)(size - i))
		buf[--i] = '0';
	if (p->f.sharp) {
		if (base == 2) {
			buf[--i] = 'b';
			buf[--i] = '0';
		} else if (base == 8 && buf[i] != '0') {
			buf[--i] = '0';
		} else if (base == 16) {
			buf[--i] = digits[16];
			buf[--i] = '0';
		}
	}
	if (verb == 'O') {
		buf[--i] = 'o';
		buf[--i] = '0';
	}
	if (negative)
		buf[--i] = '-';
	else if (p->f.plus)
		buf[--i] = '+';
	else if (p->f.space)
		buf[--i] = ' ';
	pad_nozero(p, buf + i, size - i);
done:
	if (buf != stackbuf)
		free(buf);
}

static void print_value(struct pp *p, const te_render_value *v, int32_t verb,
                        int depth);

static void bad_verb(struct pp *p, const te_render_value *v, int32_t verb)
{
	char enc[4];

	puts_(p, "%!");
	put(p, enc, te_render__put_rune(enc, verb));
	puts_(p, "(");
	if (!v || v->kind == TE_RENDER_NIL) {
		puts_(p, "<nil>");
	} else {
		puts_(p, te_render__typename(v, false));
		puts_(p, "=");
		print_value(p, v, 'v', 0);
	}
	puts_(p, ")");
}

static void fmt_c(struct pp *p, uint64_t u)
{
	char tmp[4];
	int32_t r = u > 0x10FFFF ? 0xFFFD : (int32_t)u;

	pad(p, tmp, te_render__put_rune(tmp, r));
}

static void fmt_unicode(struct pp *p, uint64_t u)
{
	te_buf t = TE_BUF_INIT((size_t)2 << 20); /* precision <= 1e6 */
	char tmp[8];
	int prec = 4;

	if (p->f.prec_present && p->f.prec > 4)
		prec = p->f.prec;
	te_buf_printf(&t, p->err, "U+%0*llX", prec, (unsigned long long)u);
	if (p->f.sharp && u <= 0x10FFFF && te_render__is_print((int32_t)u)) {
		te_buf_puts(&t, " '", p->err);
		te_buf_put(&t, tmp, te_render__put_rune(tmp, (int32_t)u),
		           p->err);
		te_buf_puts(&t, "'", p->err);
	}
	pad_nozero(p, t.ptr, t.len);
	te_buf_dispose(&t);
}

static void fmt_int(struct pp *p, const te_render_value *v, int32_t verb)
{
	uint64_t u = (uint64_t)v->u.i;
	te_buf t = TE_BUF_INIT(64);

	switch (verb) {
	case 'v':
	case 'd':
		fmt_integer(p, u, 10, true, verb, "0123456789abcdefx");
		break;
	case 'b':
		fmt_integer(p, u, 2, true, verb, "0123456789abcdefx");
		break;
	case 'o':
	case 'O':
		fmt_integer(p, u, 8, true, verb, "0123456789abcdefx");
		break;
	case 'x':
		fmt_integer(p, u, 16, true, verb, "0123456789abcdefx");
		break;
	case 'X':
		fmt_integer(p, u, 16, true, verb, "0123456789ABCDEFX");
		break;
	case 'c':
		fmt_c(p, u);
		break;
	case 'q':
		quote_rune(&t, u > 0x10FFFF ? 0xFFFD : (int32_t)u, p->f.plus,
		           p->err);
		pad(p, t.ptr, t.len);
		break;
	case 'U':
		fmt_unicode(p, u);
		break;
	default:
		bad_verb(p, v, verb);
	}
	te_buf_dispose(&t);
}

/* Shortest decimal digits that read back as f: *digits (no dot), count
 * nd and decimal point position dp (value = 0.digits * 10^dp). */
void te_render__shortest(double f, char *digits, int *nd, int *dp)
{
	char tmp[40], *e;
	int prec, n = 0, i;

	for (prec = 0; prec < 17; prec++) {
		snprintf(tmp, sizeof(tmp), "%.*e", prec, f);
		if (strtod(tmp, NULL) == f)
			break;
	}
	for (i = 0; tmp[i] && tmp[i] != 'e'; i++)
		if (tmp[i] >= '0' && tmp[i] <= '9')
			digits[n++] = tmp[i];
	e = strchr(tmp, 'e');
	while (n > 1 && digits[n - 1] == '0')
		n--;
	digits[n] = '\0';
	*nd = n;
	*dp = atoi(e + 1) + 1;
	if (f == 0) {
		*nd = 1;
		*dp = 1;
	}
}

/* strconv.FormatFloat(f, verb, prec, 64) for e E f F g G; prec -1 is
 * the shortest representation. */
static void format_float(char *out, size_t n, double f, char verb, int prec)
{
	char digits[32];
	int nd, dp, eprec, exp;
	char lower = (char)(verb | 0x20);

	if (prec >= 0 || lower == 'f' || lower == 'e') {
		if (prec < 0) {
			te_render__shortest(fabs(f), digits, &nd, &dp);
			prec =
			    lower == 'e' ? nd - 1 : (nd - dp > 0 ? nd - dp : 0);
		}
		if (lower == 'g' && prec == 0)
			prec = 1;
		switch (verb) {
		case 'e':
			snprintf(out, n, "%.*e", prec, f);
			break;
		case 'E':
			snprintf(out, n, "%.*E", prec, f);
			break;
		case 'g':
			snprintf(out, n, "%.*g", prec, f);
			break;
		case 'G':
			snprintf(out, n, "%.*G", prec, f);
			break;
		default:
			snprintf(out, n, "%.*f", prec, f);
		}
		return;
	}
	/* shortest %g: %e when the exponent is < -4 or >= 21 digits for
	 * %v... Go uses eprec 6 when shortest, see strconv/ftoa.go */
	te_render__shortest(fabs(f), digits, &nd, &dp);
	eprec = 6;
	exp = dp - 1;
	if (f == 0)
		exp = 0;
	if (exp < -4 || exp >= eprec)
		snprintf(out, n, verb == 'G' ? "%.*E" : "%.*e", nd - 1, f);
	else
		snprintf(out, n, "%.*f", nd - dp > 0 ? nd - dp : 0, f);
}

/* %x %X %b of a float: Go's hexadecimal and binary exponent forms
 * (strconv.FormatFloat 'x' and 'b'): mantissa 1.h... (rounding may not
 * leave a leading 2, as C's %a can) and an exponent of two digits. */
static void format_float_bin(char *out, size_t n, double f, char verb, int prec)
{
	char *pp, *lead;
	int e;

	if (verb == 'b') {
		int exp2;
		double m = frexp(fabs(f), &exp2);
		unsigned long long mant = (unsigned long long)ldexp(m, 53);

		exp2 -= 53;
		if (f == 0)
			exp2 = -1074, mant = 0;
		snprintf(out, n, "%s%llup%+d", signbit(f) ? "-" : "", mant,
		         exp2);
		return;
	}
	if (prec >= 0)
		snprintf(out, n, verb == 'X' ? "%.*A" : "%.*a", prec, f);
	else
		snprintf(out, n, verb == 'X' ? "%A" : "%a", f);
	pp = strpbrk(out, "pP");
	if (!pp)
		return;
	e = atoi(pp + 1);
	lead = strpbrk(out, "xX") + 1;
	if (*lead == '2') {
		/* rounded up to 2.000...: Go writes 1.000... twice as big */
		*lead = '1';
		e++;
	}
	snprintf(pp, n - (size_t)(pp - out), "%c%c%02d",
	         verb == 'X' ? 'P' : 'p', e < 0 ? '-' : '+', e < 0 ? -e : e);
}

/* The '#' flag: keep the decimal point and, for %g %v %x, the trailing
 * zeros up to the precision (fmt/format.go fmtFloat).  s[0] is the sign
 * and s has room to grow. */
static size_t sharp_float(char *s, size_t len, char verb, int prec, size_t room)
{
	char tail[32] = "";
	int digits = 0;
	bool point = false, nonzero = false;
	size_t i;

	if (verb == 'v' || verb == 'g' || verb == 'G' || verb == 'x')
		digits = prec == -1 ? 6 : prec;
	for (i = 1; i < len; i++) {
		char c = s[i];

		if (c == '.') {
			point = true;
		} else if (c == 'p' || c == 'P' ||
		           ((c == 'e' || c == 'E') && verb != 'x' &&
		            verb != 'X')) {
			snprintf(tail, sizeof(tail), "%s", s + i);
			len = i;
			break;
		} else {
			nonzero = nonzero || c != '0';
			if (nonzero)
				digits--;
		}
	}
	if (!point) {
		if (len == 2 && s[1] == '0')
			digits--;
		s[len++] = '.';
	}
	while (digits-- > 0 && len < room)
		s[len++] = '0';
	memcpy(s + len, tail, strlen(tail) + 1);
	return len + strlen(tail);
}

static void fmt_float(struct pp *p, const te_render_value *v, int32_t verb)
{
	char *num, *s;
	int prec;
	double f = v->u.f;
	size_t len, cap;

	switch (verb) {
	case 'v':
		verb = 'g';
		prec = -1;
		break;
	case 'b':
	case 'g':
	case 'G':
	case 'x':
	case 'X':
		prec = -1;
		break;
	case 'f':
	case 'e':
	case 'E':
	case 'F':
		prec = 6;
		break;
	default:
		bad_verb(p, v, verb);
		return;
	}
	if (p->f.prec_present)
		prec = p->f.prec;
	/* %f of 1e308 has 309 digits; precision adds up to 1e6 more */
	cap = 400 + (prec > 0 ? (size_t)prec : 0) + 64;
	num = malloc(cap);
	if (!num) {
		te_error_set(p->err, TE_ENOMEM, "out of memory");
		return;
	}
	s = num + 1;
	if (isinf(f) || isnan(f)) {
		snprintf(s, cap - 1, "%s",
		         isnan(f) ? "NaN" : (f < 0 ? "-Inf" : "Inf"));
	} else if (verb == 'b' || verb == 'x' || verb == 'X') {
		format_float_bin(s, cap - 1, f, (char)verb, prec);
	} else {
		format_float(s, cap - 1, f, (char)verb, prec);
	}
	if (*s != '-' && *s != '+') {
		num[0] = '+';
		s = num;
	}
	if (p->f.space && s[0] == '+' && !p->f.plus)
		s[0] = ' ';
	len = strlen(s);
	if (s[1] == 'I' || s[1] == 'N') {
		if (s[1] == 'N' && !p->f.space && !p->f.plus)
			s++, len--;
		pad_nozero(p, s, len);
		goto done;
	}
	if (p->f.sharp && verb != 'b')
		len = sharp_float(s, len, (char)verb, prec, cap - 64);
	if (p->f.plus || s[0] != '+') {
		if (p->f.zero && p->f.wid_present && p->f.wid > (int)len) {
			put(p, s, 1);
			write_padding(p, p->f.wid - (int)len);
			put(p, s + 1, len - 1);
			goto done;
		}
		pad(p, s, len);
		goto done;
	}
	pad(p, s + 1, len - 1);
done:
	free(num);
}

/* fmt's truncateString: precision limits the runes of a string. */
static size_t truncated(struct pp *p, const char *s, size_t n)
{
	size_t i = 0, w;
	int runes = 0;

	if (!p->f.prec_present)
		return n;
	while (i < n && runes < p->f.prec) {
		te_render__rune(s + i, n - i, &w);
		i += w;
		runes++;
	}
	return i;
}

static bool can_backquote(const char *s, size_t n)
{
	size_t i = 0, w;
	int32_t r;

	while (i < n) {
		r = te_render__rune(s + i, n - i, &w);
		if (w == 1 && r == 0xFFFD)
			return false;
		if ((r < ' ' && r != '\t') || r == '`' || r == 0x7F ||
		    r == 0xFEFF)
			return false;
		i += w;
	}
	return true;
}

static void fmt_sbx(struct pp *p, const char *s, size_t n, const char *digits)
{
	te_buf t = TE_BUF_INIT((size_t)64 << 20);
	size_t i, len = n;
	int width;

	if (p->f.prec_present && (size_t)p->f.prec < len)
		len = (size_t)p->f.prec;
	if (len == 0) {
		if (p->f.wid_present)
			write_padding(p, p->f.wid);
		return;
	}
	for (i = 0; i < len; i++) {
		if (p->f.space && i > 0)
			te_buf_puts(&t, " ", p->err);
		if (p->f.sharp && (p->f.space || i == 0)) {
			te_buf_put(&t, "0", 1, p->err);
			te_buf_put(&t, digits + 16, 1, p->err);
		}
		te_buf_put(&t, digits + ((unsigned char)s[i] >> 4), 1, p->err);
		te_buf_put(&t, digits + ((unsigned char)s[i] & 15), 1, p->err);
	}
	width = p->f.wid_present ? p->f.wid - (int)t.len : 0;
	if (!p->f.minus)
		write_padding(p, width);
	put(p, t.ptr, t.len);
	if (p->f.minus)
		write_padding(p, width);
	te_buf_dispose(&t);
}

static void fmt_string(struct pp *p, const te_render_value *v, int32_t verb)
{
	const char *s = v->u.s.ptr;
	size_t n = v->u.s.len;
	te_buf t = TE_BUF_INIT((size_t)128 << 20);

	switch (verb) {
	case 'v':
		if (p->f.sharp_v)
			goto quote;
		/* fall through */
	case 's':
		pad(p, s, truncated(p, s, n));
		break;
	case 'x':
		fmt_sbx(p, s, n, "0123456789abcdefx");
		break;
	case 'X':
		fmt_sbx(p, s, n, "0123456789ABCDEFX");
		break;
	case 'q':
	quote:
		n = truncated(p, s, n);
		if (p->f.sharp && can_backquote(s, n)) {
			te_buf_puts(&t, "`", p->err);
			te_buf_put(&t, s, n, p->err);
			te_buf_puts(&t, "`", p->err);
		} else {
			quote_with(&t, s, n, '"', p->f.plus, p->err);
		}
		pad(p, t.ptr, t.len);
		break;
	default:
		bad_verb(p, v, verb);
	}
	te_buf_dispose(&t);
}

/* fmt's handleMethods: an object with a String method prints its
 * result (semver's Version). */
static bool print_stringer(struct pp *p, const te_render_value *v, int32_t verb)
{
	te_render_value *str;

	if (p->f.sharp_v || verb <= 0 || verb > 127 ||
	    !strchr("vsqxX", (int)verb))
		return false;
	str = te_render__stringer(v);
	if (!str)
		return false;
	fmt_string(p, str, verb);
	te_render_value_unref(str);
	return true;
}

static void print_value(struct pp *p, const te_render_value *v, int32_t verb,
                        int depth)
{
	size_t i;

	if (p->err->code)
		return;
	switch (te_render_value_kind(v)) {
	case TE_RENDER_NIL:
		if (depth > 0) {
			puts_(p, p->f.sharp_v ? "interface {}(nil)" : "<nil>");
		} else if (verb == 'v') {
			pad(p, "<nil>", 5);
		} else {
			bad_verb(p, NULL, verb);
		}
		return;
	case TE_RENDER_BOOL:
		if (verb == 't' || verb == 'v')
			pad(p, v->u.b ? "true" : "false", v->u.b ? 4 : 5);
		else
			bad_verb(p, v, verb);
		return;
	case TE_RENDER_INT:
		fmt_int(p, v, verb);
		return;
	case TE_RENDER_FLOAT:
		fmt_float(p, v, verb);
		return;
	case TE_RENDER_STRING:
		fmt_string(p, v, verb);
		return;
	case TE_RENDER_LIST:
		puts_(p, p->f.sharp_v ? "[]interface {}{" : "[");
		for (i = 0; i < v->u.list.len; i++) {
			if (i > 0)
				puts_(p, p->f.sharp_v ? ", " : " ");
			print_value(p, v->u.list.items[i], verb, depth + 1);
		}
		puts_(p, p->f.sharp_v ? "}" : "]");
		return;
	case TE_RENDER_MAP:
		if (v->methods && print_stringer(p, v, verb))
			return;
		puts_(p, p->f.sharp_v ? "map[string]interface {}{" : "map[");
		for (i = 0; i < v->u.map.len; i++) {
			te_render_value key = {.refs = 1,
			                       .kind = TE_RENDER_STRING};

			if (i > 0)
				puts_(p, p->f.sharp_v ? ", " : " ");
			key.u.s.ptr = v->u.map.keys[i];
			key.u.s.len = v->u.map.klens[i];
			print_value(p, &key, verb, depth + 1);
			puts_(p, ":");
			print_value(p, v->u.map.vals[i], verb, depth + 1);
		}
		puts_(p, p->f.sharp_v ? "}" : "]");
		return;
	}
}

static void print_arg(struct pp *p, const te_render_value *v, int32_t verb)
{
	if (verb == 'T') {
		const char *t = (!v || v->kind == TE_RENDER_NIL)
		                    ? "<nil>"
		                    : te_render__typename(v, false);
		/* Go prints the type name with fmtS (precision and padding),
		 * a nil with padString (padding only) */
		pad(p, t,
		    v && v->kind != TE_RENDER_NIL ? truncated(p, t, strlen(t))
		                                  : strlen(t));
		return;
	}
	if (verb == 'p') {
		bad_verb(p, v, verb);
		return;
	}
	print_value(p, v, verb, 0);
}

int te_render__print_value(te_buf *b, const te_render_value *v, te_error *err)
{
	struct pp p = {b, err, {0}};

	print_arg(&p, v, 'v');
	return err->code;
}

static bool is_string(const te_render_value *v)
{
	return v && v->kind == TE_RENDER_STRING;
}

int te_render__sprint(te_buf *b, te_render_value *const *args, size_t n,
                      bool ln, te_error *err)
{
	struct pp p = {b, err, {0}};
	bool prev_string = false, str;
	size_t i;

	for (i = 0; i < n && !err->code; i++) {
		str = is_string(args[i]);
		if (i > 0 && (ln || (!str && !prev_string)))
			puts_(&p, " ");
		print_arg(&p, args[i], 'v');
		prev_string = str;
	}
	if (ln)
		puts_(&p, "\n");
	return err->code;
}

static bool too_large(long long x)
{
	return x > 1000000 || x < -1000000;
}

/* parsenum: digits at fmt[*i]. */
static bool parse_num(const char *fmt, size_t end, size_t *i, int *num)
{
	long long n = 0;
	bool any = false;

	while (*i < end && fmt[*i] >= '0' && fmt[*i] <= '9') {
		if (too_large(n)) {
			*num = 0;
			*i = end;
			return false;
		}
		n = n * 10 + (fmt[*i] - '0');
		any = true;
		(*i)++;
	}
	*num = (int)n;
	return any;
}

/* fmt's argNumber: an optional [n] (1-based) at fmt[*i].  A bad or
 * out-of-range index spoils the directive (BADINDEX); an unclosed '['
 * consumes only itself. */
static void arg_number(const char *fmt, size_t end, size_t *i, size_t nargs,
                       size_t *argnum, bool *after_index, bool *good,
                       bool *reordered)
{
	size_t j, k;
	int idx;
	bool ok = false;

	*after_index = false;
	if (*i >= end || fmt[*i] != '[')
		return;
	*reordered = true;
	for (j = *i + 1; end - *i >= 3 && j < end; j++) {
		if (fmt[j] != ']')
			continue;
		k = *i + 1;
		ok = parse_num(fmt, j, &k, &idx) && k == j;
		*i = j + 1;
		if (ok && idx >= 1 && (size_t)(idx - 1) < nargs) {
			*argnum = (size_t)idx - 1;
			*after_index = true;
			return;
		}
		*good = false;
		*after_index = ok;
		return;
	}
	(*i)++;
	*good = false;
}

static bool int_from_arg(te_render_value *const *args, size_t n, size_t *argnum,
                         int *num)
{
	const te_render_value *v;
	bool ok = false;

	*num = 0;
	if (*argnum < n) {
		v = args[*argnum];
		if (v && v->kind == TE_RENDER_INT) {
			ok = !too_large(v->u.i);
			*num = ok ? (int)v->u.i : 0;
		}
		(*argnum)++;
	}
	return ok;
}

static void print_extra(struct pp *p, te_render_value *const *args, size_t n,
                        size_t from)
{
	size_t i;

	puts_(p, "%!(EXTRA ");
	for (i = from; i < n; i++) {
		if (i > from)
			puts_(p, ", ");
		if (!args[i] || args[i]->kind == TE_RENDER_NIL) {
			puts_(p, "<nil>");
		} else {
			puts_(p, te_render__typename(args[i], false));
			puts_(p, "=");
			print_arg(p, args[i], 'v');
		}
	}
	puts_(p, ")");
}

/* The state of one Sprintf: where in the format, which argument next. */
struct scan {
	const char *fmt;
	size_t end, i;
	te_render_value *const *args;
	size_t n, argnum;
	bool good, after_index, reordered;
};

static void scan_index(struct scan *sc)
{
	arg_number(sc->fmt, sc->end, &sc->i, sc->n, &sc->argnum,
	           &sc->after_index, &sc->good, &sc->reordered);
}

static void scan_flags(struct pp *p, struct scan *sc)
{
	memset(&p->f, 0, sizeof(p->f));
	for (; sc->i < sc->end; sc->i++) {
		char c = sc->fmt[sc->i];

		if (c == '#')
			p->f.sharp = true;
		else if (c == '0')
			p->f.zero = !p->f.minus; /* only pad on the left */
		else if (c == '+')
			p->f.plus = true;
		else if (c == '-')
			p->f.minus = true, p->f.zero = false;
		else if (c == ' ')
			p->f.space = true;
		else
			break;
	}
}

static void scan_width(struct pp *p, struct scan *sc)
{
	if (sc->i < sc->end && sc->fmt[sc->i] == '*') {
		sc->i++;
		p->f.wid_present =
		    int_from_arg(sc->args, sc->n, &sc->argnum, &p->f.wid);
		if (!p->f.wid_present)
			puts_(p, "%!(BADWIDTH)");
		if (p->f.wid < 0) {
			p->f.wid = -p->f.wid;
			p->f.minus = true;
			p->f.zero = false;
		}
		sc->after_index = false;
		return;
	}
	p->f.wid_present = parse_num(sc->fmt, sc->end, &sc->i, &p->f.wid);
	if (sc->after_index && p->f.wid_present)
		sc->good = false;
}

static void scan_prec(struct pp *p, struct scan *sc)
{
	/* a '.' as the last byte is the verb, as in fmt */
	if (sc->i + 1 >= sc->end || sc->fmt[sc->i] != '.')
		return;
	sc->i++;
	if (sc->after_index)
		sc->good = false;
	scan_index(sc);
	if (sc->i < sc->end && sc->fmt[sc->i] == '*') {
		sc->i++;
		p->f.prec_present =
		    int_from_arg(sc->args, sc->n, &sc->argnum, &p->f.prec);
		if (p->f.prec < 0) {
			p->f.prec = 0;
			p->f.prec_present = false;
		}
		if (!p->f.prec_present)
			puts_(p, "%!(BADPREC)");
		sc->after_index = false;
		return;
	}
	p->f.prec_present = parse_num(sc->fmt, sc->end, &sc->i, &p->f.prec);
	if (!p->f.prec_present) {
		p->f.prec = 0;
		p->f.prec_present = true;
	}
}

/* One verb applied to the next argument. */
static void print_verb(struct pp *p, struct scan *sc, int32_t verb)
{
	const te_render_value *arg;
	char enc[4];

	if (verb == '%') {
		puts_(p, "%"); /* absorbs no argument, ignores width */
		return;
	}
	if (!sc->good || sc->argnum >= sc->n) {
		puts_(p, "%!");
		put(p, enc, te_render__put_rune(enc, verb));
		puts_(p, sc->good ? "(MISSING)" : "(BADINDEX)");
		return;
	}
	arg = sc->args[sc->argnum++];
	if (verb == 'v') {
		p->f.sharp_v = p->f.sharp;
		p->f.sharp = false;
		p->f.plus_v = p->f.plus;
		p->f.plus = false;
	}
	if (verb == 'w') {
		/* only Errorf wraps errors: Sprintf reports the whole value */
		bad_verb(p, arg, 'w');
		return;
	}
	/* any other rune: print_arg reports what it cannot format */
	print_arg(p, arg, verb);
}

int te_render__sprintf(te_buf *b, const char *fmt, size_t end,
                       te_render_value *const *args, size_t n, te_error *err)
{
	struct pp p = {b, err, {0}};
	struct scan sc = {fmt, end, 0, args, n, 0, true, false, false};
	size_t lasti, w;
	int32_t verb;

	while (sc.i < end && !err->code) {
		sc.good = true;
		lasti = sc.i;
		while (sc.i < end && fmt[sc.i] != '%')
			sc.i++;
		if (sc.i > lasti)
			put(&p, fmt + lasti, sc.i - lasti);
		if (sc.i >= end)
			break;
		sc.i++;
		scan_flags(&p, &sc);
		sc.after_index = false;
		scan_index(&sc);
		scan_width(&p, &sc);
		scan_prec(&p, &sc);
		if (!sc.after_index)
			scan_index(&sc);
		if (sc.i >= end) {
			puts_(&p, "%!(NOVERB)");
			break;
		}
		verb = te_render__rune(fmt + sc.i, end - sc.i, &w);
		sc.i += w;
		print_verb(&p, &sc, verb);
	}
	if (!sc.reordered && sc.argnum < n && !err->code) {
		memset(&p.f, 0, sizeof(p.f));
		print_extra(&p, args, n, sc.argnum);
	}
	return err->code;
}
