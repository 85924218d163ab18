/*
 * sprig_fromjson.c - Sprig v3.2.3's fromJson and mustFromJson
 * (defaults.go): Go's json.Unmarshal into an interface{}
 * (https://pkg.go.dev/encoding/json#Unmarshal).
 *
 * The text is first checked as encoding/json's scanner checks it, state
 * by state, so that a syntax error carries Go's words ("invalid character
 * 'x' looking for beginning of value", "unexpected end of JSON input");
 * then it is decoded: objects to dicts (a repeated key: the last wins),
 * arrays to lists, every number to a float64 (one out of range is Go's
 * UnmarshalTypeError and decodes as nil), strings with invalid UTF-8 and
 * lone surrogates as U+FFFD.  fromJson gives nil on any error,
 * mustFromJson fails with it.  Nesting stops at SP_DEPTH_MAX (Go: 10000),
 * an error for both.
 */
#include <errno.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "render/sprig_int.h"

/* ---- the scanner (encoding/json/scanner.go) ---- */

enum js {
	JS_BEGIN_VALUE,
	JS_BEGIN_VALUE_OR_EMPTY,
	JS_BEGIN_STRING,
	JS_BEGIN_STRING_OR_EMPTY,
	JS_END_VALUE,
	JS_END_TOP,
	JS_STR,
	JS_STR_ESC,
	JS_STR_U, /* JS_STR_U + k: k hex digits read */
	JS_STR_U1,
	JS_STR_U2,
	JS_STR_U3,
	JS_NEG,
	JS_1,
	JS_0,
	JS_DOT,
	JS_DOT0,
	JS_E,
	JS_ESIGN,
	JS_E0,
	JS_LIT /* a literal's remaining letters */
};

struct jscan {
	enum js st;
	char stack[SP_DEPTH_MAX]; /* 'k' object key, 'v' object value, 'a' */
	size_t depth;
	bool end_top;
	const char *lit, *lit_name; /* JS_LIT: letters left, the literal */
	const char *ctx;            /* the error's context, NULL: none */
	unsigned char bad;
	bool too_deep;
};

static bool js_space(unsigned char c)
{
	return c == ' ' || c == '\t' || c == '\r' || c == '\n';
}

static bool js_hex(unsigned char c)
{
	return (c >= '0' && c <= '9') ||
	       ((c | 0x20) >= 'a' && (c | 0x20) <= 'f');
}

static void js_error(struct jscan *s, unsigned char c, const char *ctx)
{
	s->bad = c;
	s->ctx = ctx;
}

static void js_push(struct jscan *s, unsigned char c, char kind, enum js next)
{
	if (s->depth == SP_DEPTH_MAX) {
		s->too_deep = true;
		js_error(s, c, "");
		return;
	}
	s->stack[s->depth++] = kind;
	s->st = next;
}

static void js_pop(struct jscan *s)
{
	if (--s->depth == 0) {
		s->st = JS_END_TOP;
		s->end_top = true;
	} else {
		s->st = JS_END_VALUE;
	}
}

static void js_step(struct jscan *s, unsigned char c);

static void js_end_value(struct jscan *s, unsigned char c)
{
	char *top;

	if (s->depth == 0) {
		s->st = JS_END_TOP;
		s->end_top = true;
		js_step(s, c);
		return;
	}
	s->st = JS_END_VALUE;
	if (js_space(c))
		return;
	top = &s->stack[s->depth - 1];
	if (*top == 'k') {
		if (c != ':')
			return js_error(s, c, "after object key");
		*top = 'v';
		s->st = JS_BEGIN_VALUE;
	} else if (*top == 'v') {
		if (c == ',') {
			*top = 'k';
			s->st = JS_BEGIN_STRING;
		} else if (c == '}') {
			js_pop(s);
		} else {
			js_error(s, c, "after object key:value pair");
		}
	} else {
		if (c == ',')
			s->st = JS_BEGIN_VALUE;
		else if (c == ']')
			js_pop(s);
		else
			js_error(s, c, "after array element");
	}
}

static void js_begin_value(struct jscan *s, unsigned char c)
{
	static const char *const lits[] = {"true", "false", "null"};
	size_t i;

	if (js_space(c))
		return;
	switch (c) {
	case '{':
		return js_push(s, c, 'k', JS_BEGIN_STRING_OR_EMPTY);
	case '[':
		return js_push(s, c, 'a', JS_BEGIN_VALUE_OR_EMPTY);
	case '"':
		s->st = JS_STR;
		return;
	case '-':
		s->st = JS_NEG;
		return;
	case '0':
		s->st = JS_0;
		return;
	}
	for (i = 0; i < 3; i++)
		if (c == lits[i][0]) {
			s->st = JS_LIT;
			s->lit_name = lits[i];
			s->lit = lits[i] + 1;
			return;
		}
	if (c >= '1' && c <= '9') {
		s->st = JS_1;
		return;
	}
	js_error(s, c, "looking for beginning of value");
}

static void js_number(struct jscan *s, unsigned char c)
{
	bool digit = c >= '0' && c <= '9';

	switch (s->st) {
	case JS_NEG:
		if (digit)
			s->st = c == '0' ? JS_0 : JS_1;
		else
			js_error(s, c, "in numeric literal");
		return;
	case JS_1:
		if (digit)
			return;
		/* fall through */
	case JS_0:
		if (c == '.')
			s->st = JS_DOT;
		else if (c == 'e' || c == 'E')
			s->st = JS_E;
		else
			js_end_value(s, c);
		return;
	case JS_DOT:
		if (digit)
			s->st = JS_DOT0;
		else
			js_error(s, c,
			         "after decimal point in numeric literal");
		return;
	case JS_DOT0:
		if (c == 'e' || c == 'E')
			s->st = JS_E;
		else if (!digit)
			js_end_value(s, c);
		return;
	case JS_E:
		if (c == '+' || c == '-') {
			s->st = JS_ESIGN;
			return;
		}
		/* fall through */
	case JS_ESIGN:
		if (digit)
			s->st = JS_E0;
		else
			js_error(s, c, "in exponent of numeric literal");
		return;
	default: /* JS_E0 */
		if (!digit)
			js_end_value(s, c);
		return;
	}
}

static void js_string(struct jscan *s, unsigned char c)
{
	switch (s->st) {
	case JS_STR:
		if (c == '"')
			s->st = JS_END_VALUE;
		else if (c == '\\')
			s->st = JS_STR_ESC;
		else if (c < 0x20)
			js_error(s, c, "in string literal");
		return;
	case JS_STR_ESC:
		if (strchr("bfnrt\\/\"", c) && c)
			s->st = JS_STR;
		else if (c == 'u')
			s->st = JS_STR_U;
		else
			js_error(s, c, "in string escape code");
		return;
	default: /* JS_STR_U .. JS_STR_U3 */
		if (!js_hex(c))
			js_error(s, c, "in \\u hexadecimal character escape");
		else
			s->st = s->st == JS_STR_U3 ? JS_STR : s->st + 1;
		return;
	}
}

static void js_step(struct jscan *s, unsigned char c)
{
	switch (s->st) {
	case JS_BEGIN_VALUE_OR_EMPTY:
		if (js_space(c))
			return;
		if (c == ']')
			return js_end_value(s, c);
		return js_begin_value(s, c);
	case JS_BEGIN_VALUE:
		return js_begin_value(s, c);
	case JS_BEGIN_STRING_OR_EMPTY:
		if (js_space(c))
			return;
		if (c == '}') {
			s->stack[s->depth - 1] = 'v';
			return js_end_value(s, c);
		}
		/* fall through */
	case JS_BEGIN_STRING:
		if (js_space(c))
			return;
		if (c == '"')
			s->st = JS_STR;
		else
			js_error(s, c,
			         "looking for beginning of object key "
			         "string");
		return;
	case JS_END_VALUE:
		return js_end_value(s, c);
	case JS_END_TOP:
		if (!js_space(c))
			js_error(s, c, "after top-level value");
		return;
	case JS_LIT:
		if (c != (unsigned char)*s->lit) {
			/* "in literal true (expecting 'r')" */
			js_error(s, c, s->lit);
			return;
		}
		if (*++s->lit == '\0')
			s->st = JS_END_VALUE;
		return;
	case JS_STR:
	case JS_STR_ESC:
	case JS_STR_U:
	case JS_STR_U1:
	case JS_STR_U2:
	case JS_STR_U3:
		return js_string(s, c);
	default:
		return js_number(s, c);
	}
}

/* encoding/json's quoteChar: the byte as a rune, in single quotes. */
static void js_quote_char(te_buf *b, unsigned char c, te_error *err)
{
	char tmp[4];
	te_buf q = TE_BUF_INIT(64);

	if (c == '\'' || c == '"') {
		te_buf_printf(b, err, c == '"' ? "'\"'" : "'\\''");
		return;
	}
	te_render__quote(&q, tmp, te_render__put_rune(tmp, c), false, err);
	if (!err->code)
		te_buf_printf(b, err, "'%.*s'", (int)(q.len - 2), q.ptr + 1);
	te_buf_dispose(&q);
}

/* checkValid: 0, or err set to Go's SyntaxError text. */
static int js_check(const unsigned char *p, size_t n, te_error *err)
{
	struct jscan *s = calloc(1, sizeof(*s));
	te_buf b = TE_BUF_INIT(512);
	size_t i;

	if (!s)
		return te_error_set(err, TE_ENOMEM, "out of memory");
	s->st = JS_BEGIN_VALUE;
	for (i = 0; i < n && !s->ctx; i++)
		js_step(s, p[i]);
	if (!s->ctx && !s->end_top) /* scanner.eof: one more space */
		js_step(s, ' ');
	if (s->too_deep)
		te_error_set(err, TE_EINVALID,
		             "values nest deeper than %d levels", SP_DEPTH_MAX);
	else if (!s->ctx && !s->end_top)
		te_error_set(err, TE_EINVALID, "unexpected end of JSON input");
	else if (s->ctx) {
		te_buf_puts(&b, "invalid character ", err);
		js_quote_char(&b, s->bad, err);
		if (s->st == JS_LIT)
			te_buf_printf(&b, err,
			              " in literal %s (expecting '%c')",
			              s->lit_name, *s->ctx);
		else
			te_buf_printf(&b, err, " %s", s->ctx);
		if (!err->code)
			te_error_set(err, TE_EINVALID, "%s", b.ptr);
	}
	te_buf_dispose(&b);
	free(s);
	return err->code;
}

/* ---- the decoder, on checked text (encoding/json/decode.go) ---- */

struct jdec {
	const char *p;
	size_t n, i;
	te_render_call *call;
	char *type_err; /* the first UnmarshalTypeError, as Go saves it */
};

static void jd_space(struct jdec *d)
{
	while (d->i < d->n && js_space((unsigned char)d->p[d->i]))
		d->i++;
}

static unsigned jd_hex4(const char *p)
{
	unsigned v = 0;
	int k;

	for (k = 0; k < 4; k++) {
		unsigned char c = (unsigned char)p[k];
		v = v * 16 + (c <= '9' ? c - '0' : (c | 0x20) - 'a' + 10);
	}
	return v;
}

/* decode.go's unquote: escapes, surrogate pairs, U+FFFD for what is
 * not valid. */
static int jd_string(struct jdec *d, te_buf *b, te_error *err)
{
	char tmp[4];
	size_t w;
	unsigned r, r2;

	d->i++; /* the opening quote */
	while (d->p[d->i] != '"' && !err->code) {
		if (d->p[d->i] != '\\') {
			int32_t rr =
			    te_render__rune(d->p + d->i, d->n - d->i, &w);
			if (rr == 0xFFFD && w == 1)
				te_buf_put(b, "\xEF\xBF\xBD", 3, err);
			else
				te_buf_put(b, d->p + d->i, w, err);
			d->i += w;
			continue;
		}
		d->i++;
		switch (d->p[d->i]) {
		case 'b':
			te_buf_put(b, "\b", 1, err);
			break;
		case 'f':
			te_buf_put(b, "\f", 1, err);
			break;
		case 'n':
			te_buf_put(b, "\n", 1, err);
			break;
		case 'r':
			te_buf_put(b, "\r", 1, err);
			break;
		case 't':
			te_buf_put(b, "\t", 1, err);
			break;
		case 'u':
			r = jd_hex4(d->p + d->i + 1);
			d->i += 4;
			if (r >= 0xD800 && r < 0xE000) {
				r2 = 0;
				if (r < 0xDC00 && d->p[d->i + 1] == '\\' &&
				    d->p[d->i + 2] == 'u')
					r2 = jd_hex4(d->p + d->i + 3);
				if (r2 >= 0xDC00 && r2 < 0xE000) {
					r = 0x10000 + ((r - 0xD800) << 10) +
					    (r2 - 0xDC00);
					d->i += 6;
				} else {
					r = 0xFFFD;
				}
			}
			te_buf_put(b, tmp, te_render__put_rune(tmp, (int32_t)r),
			           err);
			break;
		default: /* " \ / */
			te_buf_put(b, d->p + d->i, 1, err);
		}
		d->i++;
	}
	d->i++;
	return err->code;
}

static te_render_value *jd_value(struct jdec *d, te_error *err);

static te_render_value *jd_number(struct jdec *d, te_error *err)
{
	size_t start = d->i;
	char buf[64], *s = buf;
	double f;

	while (d->i < d->n && strchr("+-.0123456789eE", d->p[d->i]) &&
	       d->p[d->i])
		d->i++;
	if (d->i - start >= sizeof(buf) && !(s = malloc(d->i - start + 1))) {
		te_error_set(err, TE_ENOMEM, "out of memory");
		return NULL;
	}
	memcpy(s, d->p + start, d->i - start);
	s[d->i - start] = '\0';
	errno = 0;
	f = strtod(s, NULL);
	if (errno == ERANGE && isinf(f)) {
		if (!d->type_err) {
			te_buf t = TE_BUF_INIT(TE_ERROR_MSG_MAX);
			te_buf_printf(&t, err,
			              "json: cannot unmarshal number %s into "
			              "Go value of type float64",
			              s);
			d->type_err = te_buf_detach(&t);
		}
		if (s != buf)
			free(s);
		return err->code ? NULL : te_render_value_nil();
	}
	if (s != buf)
		free(s);
	return te_render_value_float(f);
}

static te_render_value *jd_array(struct jdec *d, te_error *err)
{
	te_render_value *l = te_render_value_list(), *v;

	d->i++;
	jd_space(d);
	if (d->p[d->i] == ']') {
		d->i++;
		return l;
	}
	while (l && !err->code) {
		v = jd_value(d, err);
		if (!v || te_render_list_push(l, v, err) < 0)
			break;
		jd_space(d);
		if (d->p[d->i++] == ']')
			return l;
	}
	te_render_value_unref(l);
	return NULL;
}

static te_render_value *jd_object(struct jdec *d, te_error *err)
{
	te_render_value *m = te_render_value_map(), *v;
	te_buf k = TE_BUF_INIT(sp_out_max(d->call));

	d->i++;
	jd_space(d);
	if (d->p[d->i] == '}') {
		d->i++;
		te_buf_dispose(&k);
		return m;
	}
	while (m && !err->code) {
		jd_space(d);
		te_buf_clear(&k);
		if (jd_string(d, &k, err) < 0)
			break;
		jd_space(d);
		d->i++; /* ':' */
		v = jd_value(d, err);
		if (!v ||
		    te_render_map_set(m, k.ptr ? k.ptr : "", k.len, v, err) < 0)
			break;
		jd_space(d);
		if (d->p[d->i++] == '}') {
			te_buf_dispose(&k);
			return m;
		}
	}
	te_buf_dispose(&k);
	te_render_value_unref(m);
	return NULL;
}

static te_render_value *jd_value(struct jdec *d, te_error *err)
{
	te_buf b = TE_BUF_INIT(sp_out_max(d->call));
	te_render_value *v = NULL;
	char c;

	jd_space(d);
	c = d->p[d->i];
	if (c == '{') {
		v = jd_object(d, err);
	} else if (c == '[') {
		v = jd_array(d, err);
	} else if (c == '"') {
		if (jd_string(d, &b, err) == 0)
			v = te_render_value_string(b.ptr ? b.ptr : "", b.len);
	} else if (c == 't' || c == 'f') {
		v = te_render_value_bool(c == 't');
		d->i += c == 't' ? 4 : 5;
	} else if (c == 'n') {
		v = te_render_value_nil();
		d->i += 4;
	} else {
		v = jd_number(d, err);
	}
	te_buf_dispose(&b);
	if (!v && !err->code)
		te_error_set(err, TE_ENOMEM, "out of memory");
	return v;
}

/* fromJson (payload NULL) and mustFromJson. */
static int f_fromjson(te_render_value **out, te_render_call *call, sp_args a,
                      size_t n, void *p, te_error *err)
{
	struct jdec d = {NULL, 0, 0, call, NULL};
	te_render_value *v;

	(void)n;
	if (WANT_STR(a[0]) < 0 || sp_steps(call, a[0]->u.s.len / 64, err) < 0)
		return err->code;
	d.p = a[0]->u.s.ptr;
	d.n = a[0]->u.s.len;
	if (js_check((const unsigned char *)d.p, d.n, err) < 0) {
		/* nesting the value model cannot hold fails both forms */
		if (p || err->code == TE_ENOMEM ||
		    strstr(err->msg, "nest deeper"))
			return err->code;
		*err = (te_error)TE_ERROR_INIT;
		return sp_ret_ref(out, NULL, err);
	}
	v = jd_value(&d, err);
	if (!v)
		return err->code;
	if (d.type_err && p) {
		te_error_set(err, TE_EINVALID, "%s", d.type_err);
		te_render_value_unref(v);
		v = NULL;
	}
	free(d.type_err);
	return v ? sp_ret(out, v, err) : err->code;
}

const struct sp_entry te_render__sp_fromjson[] = {
    {"fromJson", f_fromjson, 1, 1, NULL},
    {"mustFromJson", f_fromjson, 1, 1, "must"},
};
const size_t te_render__sp_fromjson_len =
    sizeof(te_render__sp_fromjson) / sizeof(te_render__sp_fromjson[0]);
