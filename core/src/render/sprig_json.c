/*
 * sprig_json.c - Sprig v3.2.3's JSON encoders (defaults.go;
 * https://masterminds.github.io/sprig/defaults.html): toJson
 * toPrettyJson toRawJson and their must* forms, as Go's encoding/json
 * writes values (https://pkg.go.dev/encoding/json#Marshal): map keys in
 * order, HTML characters escaped but by toRawJson, invalid UTF-8 as
 * \ufffd, U+2028/U+2029 escaped, \b and \f as Go 1.22 writes them,
 * floats in the shortest form ('e' below 1e-6 and from 1e21), NaN and
 * infinities refused.
 */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "render/sprig_int.h"

struct jenc {
	te_buf b;
	bool html;          /* escape <, > and & */
	const char *indent; /* NULL: compact */
	te_error *err;
};

static void jput(struct jenc *j, const char *s, size_t n)
{
	te_buf_put(&j->b, s, n, j->err);
}

static void jputs(struct jenc *j, const char *s)
{
	jput(j, s, strlen(s));
}

static void jstring(struct jenc *j, const char *s, size_t n)
{
	static const char hex[] = "0123456789abcdef";
	char esc[8] = "\\u00";
	size_t i = 0, w;
	int32_t r;
	unsigned char c;

	jput(j, "\"", 1);
	while (i < n && !j->err->code) {
		c = (unsigned char)s[i];
		if (c >= 0x80) {
			r = te_render__rune(s + i, n - i, &w);
			if (r == 0xFFFD && w == 1)
				jputs(j, "\\ufffd");
			else if (r == 0x2028 || r == 0x2029)
				jputs(j, r == 0x2028 ? "\\u2028" : "\\u2029");
			else
				jput(j, s + i, w);
			i += w;
			continue;
		}
		i++;
		if (c == '"' || c == '\\') {
			jput(j, "\\", 1);
			jput(j, (const char *)&c, 1);
		} else if (strchr("\n\r\t\b\f", c) && c) {
			jput(j,
			     c == '\n'   ? "\\n"
			     : c == '\r' ? "\\r"
			     : c == '\t' ? "\\t"
			     : c == '\b' ? "\\b"
			                 : "\\f",
			     2);
		} else if (c < 0x20 || (j->html && strchr("<>&", c))) {
			esc[4] = hex[c >> 4];
			esc[5] = hex[c & 15];
			jput(j, esc, 6);
		} else {
			jput(j, (const char *)&c, 1);
		}
	}
	jput(j, "\"", 1);
}

/* encoding/json's float: shortest digits, 'f' form, or 'e' form for
 * magnitudes below 1e-6 or from 1e21 with a one-digit negative exponent
 * written e-7, not e-07.  The digits come from fmt's %v (shortest). */
static void jfloat(struct jenc *j, double f)
{
	te_buf g = TE_BUF_INIT(64);
	char digits[32], out[64];
	int nd = 0, dp = 0, exp = 0, o = 0, k;
	bool seen_point = false, neg = f < 0 || (f == 0 && signbit(f));
	const char *p;
	double a = fabs(f);
	te_render_value *fv;

	if (isnan(f) || isinf(f)) {
		te_error_set(j->err, TE_EINVALID, "json: unsupported value: %s",
		             isnan(f) ? "NaN"
		             : f > 0  ? "+Inf"
		                      : "-Inf");
		return;
	}
	fv = te_render_value_float(a);
	if (!fv) {
		te_error_set(j->err, TE_ENOMEM, "out of memory");
		return;
	}
	te_render__print_value(&g, fv, j->err);
	te_render_value_unref(fv);
	if (j->err->code) {
		te_buf_dispose(&g);
		return;
	}
	for (p = g.ptr; *p && *p != 'e'; p++) {
		if (*p == '.') {
			seen_point = true;
		} else if (nd > 0 || *p != '0') {
			digits[nd++] = *p;
			dp += !seen_point;
		} else if (seen_point) {
			dp--; /* a leading zero after the point */
		}
	}
	if (*p == 'e')
		exp = atoi(p + 1);
	te_buf_dispose(&g);
	if (neg)
		out[o++] = '-';
	if (nd == 0) {
		out[o++] = '0';
	} else if (a < 1e-6 || a >= 1e21) {
		dp += exp;
		out[o++] = digits[0];
		if (nd > 1) {
			out[o++] = '.';
			for (k = 1; k < nd; k++)
				out[o++] = digits[k];
		}
		o += snprintf(out + o, sizeof(out) - (size_t)o,
		              dp - 1 < 0 && dp - 1 > -10 ? "e%d" : "e%+03d",
		              dp - 1);
	} else {
		dp += exp;
		if (dp <= 0) {
			out[o++] = '0';
			out[o++] = '.';
			for (k = 0; k < -dp; k++)
				out[o++] = '0';
			for (k = 0; k < nd; k++)
				out[o++] = digits[k];
		} else {
			for (k = 0; k < dp || k < nd; k++) {
				if (k == dp)
					out[o++] = '.';
				out[o++] = k < nd ? digits[k] : '0';
			}
		}
	}
	jput(j, out, (size_t)o);
}

static void jnewline(struct jenc *j, unsigned int depth)
{
	unsigned int i;

	if (!j->indent)
		return;
	jput(j, "\n", 1);
	for (i = 0; i < depth; i++)
		jputs(j, j->indent);
}

/* An object encodes as the string of its " json" method (a name no
 * template can call: time.Time's MarshalJSON text), else of its String
 * method (semver's Version, whose MarshalJSON is its String). */
static bool jstringer(struct jenc *j, const te_render_value *v)
{
	te_render_value *str =
	    v->methods ? te_render__stringer_named(v, " json") : NULL;

	if (!str && v->methods)
		str = te_render__stringer(v);

	if (!str)
		return false;
	jstring(j, str->u.s.ptr, str->u.s.len);
	te_render_value_unref(str);
	return true;
}

static void jvalue(struct jenc *j, const te_render_value *v, unsigned int depth)
{
	char num[32];
	const char *k;
	size_t i, n, kl;

	switch (v ? v->kind : TE_RENDER_NIL) {
	case TE_RENDER_BOOL:
		jputs(j, v->u.b ? "true" : "false");
		return;
	case TE_RENDER_INT:
		snprintf(num, sizeof(num), "%lld", (long long)v->u.i);
		jputs(j, num);
		return;
	case TE_RENDER_FLOAT:
		jfloat(j, v->u.f);
		return;
	case TE_RENDER_STRING:
		jstring(j, v->u.s.ptr, v->u.s.len);
		return;
	case TE_RENDER_LIST:
		if (v->u.list.nil && te_render_value_len(v) == 0) {
			jputs(j, "null");
			return;
		}
		break;
	case TE_RENDER_MAP:
		break;
	default:
		jputs(j, "null");
		return;
	}
	if (jstringer(j, v))
		return;
	n = te_render_value_len(v);
	jput(j, v->kind == TE_RENDER_LIST ? "[" : "{", 1);
	for (i = 0; i < n && !j->err->code; i++) {
		if (i)
			jput(j, ",", 1);
		jnewline(j, depth + 1);
		if (v->kind == TE_RENDER_LIST) {
			jvalue(j, v->u.list.items[i], depth + 1);
			continue;
		}
		k = te_render_map_key_at(v, i, &kl);
		jstring(j, k, kl);
		jputs(j, j->indent ? ": " : ":");
		jvalue(j, te_render_map_value_at(v, i), depth + 1);
	}
	if (n)
		jnewline(j, depth);
	jput(j, v->kind == TE_RENDER_LIST ? "]" : "}", 1);
}

/* payload: "json", "pretty" or "raw", upper case for the must* forms,
 * which report a failure; the others give "" instead (toRawJson panics,
 * which Go reports as the same error). */
static int f_tojson(te_render_value **out, te_render_call *call, sp_args a,
                    size_t n, void *p, te_error *err)
{
	const char *mode = p;
	struct jenc j = {TE_BUF_INIT(sp_out_max(call)), true, NULL, err};
	bool must = mode[0] >= 'A' && mode[0] <= 'Z';

	(void)n;
	if ((mode[0] | 0x20) == 'p')
		j.indent = "  ";
	if ((mode[0] | 0x20) == 'r')
		j.html = false;
	jvalue(&j, a[0], 0);
	/* only encoding/json's own refusals are swallowed, never a budget */
	if (!must && (mode[0] | 0x20) != 'r' && err->code == TE_EINVALID &&
	    !strncmp(err->msg, "json:", 5)) {
		*err = (te_error)TE_ERROR_INIT;
		te_buf_dispose(&j.b);
		return sp_ret(out, te_render_value_string("", 0), err);
	}
	return sp_ret_buf(out, &j.b, err);
}

const struct sp_entry te_render__sp_json[] = {
    {"mustToJson", f_tojson, 1, 1, "Json"},
    {"mustToPrettyJson", f_tojson, 1, 1, "Pretty"},
    {"mustToRawJson", f_tojson, 1, 1, "Raw"},
    {"toJson", f_tojson, 1, 1, "json"},
    {"toPrettyJson", f_tojson, 1, 1, "pretty"},
    {"toRawJson", f_tojson, 1, 1, "raw"},
};
const size_t te_render__sp_json_len =
    sizeof(te_render__sp_json) / sizeof(te_render__sp_json[0]);
