/*
 * sprig_math.c - Sprig v3.2.3's integer functions (numeric.go, list.go;
 * https://masterminds.github.io/sprig/math.html): add add1 sub mul div
 * mod max min biggest int int64 until untilStep seq toDecimal slice
 * mustSlice.
 *
 * Sprig converts numbers with spf13/cast's ToInt64: ints as they are,
 * floats truncated, bools 0/1, nil 0, strings parsed as Go integer
 * literals (strconv.ParseInt base 0, after dropping a ".0..." tail), and
 * 0 for anything else.  Go's int64 arithmetic wraps; division by zero is
 * Go's runtime error.
 */
#include <stdlib.h>
#include <string.h>

#include "render/sprig_int.h"

static int digit_val(char c)
{
	if (c >= '0' && c <= '9')
		return c - '0';
	c = (char)(c | 0x20);
	return c >= 'a' && c <= 'z' ? c - 'a' + 10 : 99;
}

/* strconv's underscoreOK: underscores only between digits (or after a
 * base prefix). */
static bool underscore_ok(const char *s, size_t n)
{
	char saw = '^';
	size_t i = 0;
	bool hex = false;

	if (n && (s[0] == '-' || s[0] == '+'))
		s++, n--;
	if (n >= 2 && s[0] == '0' && strchr("bBoOxX", s[1]) != NULL) {
		i = 2;
		saw = '0';
		hex = (s[1] | 0x20) == 'x';
	}
	for (; i < n; i++) {
		if ((s[i] >= '0' && s[i] <= '9') ||
		    (hex && digit_val(s[i]) < 16)) {
			saw = '0';
			continue;
		}
		if (s[i] == '_') {
			if (saw != '0')
				return false;
			saw = '_';
			continue;
		}
		if (saw == '_')
			return false;
		saw = '!';
	}
	return saw != '_';
}

/* strconv.ParseInt(s, 0, 64); false on any error. */
static bool parse_int0(const char *s0, size_t n0, int64_t *out)
{
	const char *s = s0;
	size_t n = n0, i;
	uint64_t u = 0, lim;
	bool neg = false, unders = false;
	int base = 10, d;

	if (n && (s[0] == '+' || s[0] == '-')) {
		neg = s[0] == '-';
		s++, n--;
	}
	if (n == 0)
		return false;
	if (s[0] == '0') {
		base = 8;
		if (n >= 3 && strchr("bBoOxX", s[1]) != NULL) {
			base = (s[1] | 0x20) == 'b'   ? 2
			       : (s[1] | 0x20) == 'o' ? 8
			                              : 16;
			s += 2, n -= 2;
		} else {
			s++, n--;
		}
	}
	lim = neg ? (uint64_t)1 << 63 : ((uint64_t)1 << 63) - 1;
	for (i = 0; i < n; i++) {
		if (s[i] == '_') {
			unders = true;
			continue;
		}
		d = digit_val(s[i]);
		if (d >= base || u > (lim - (uint64_t)d) / (uint64_t)base)
			return false;
		u = u * (uint64_t)base + (uint64_t)d;
	}
	if (unders && !underscore_ok(s0, n0))
		return false;
	*out = neg ? (int64_t)(0 - u) : (int64_t)u;
	return true;
}

/* cast's trimZeroDecimal: "5.00" -> "5"; "5.10", "5." stay. */
static size_t trim_zero_decimal(const char *s, size_t n)
{
	bool zero = false;
	size_t i;

	for (i = n; i > 0; i--) {
		if (s[i - 1] == '.')
			return zero ? i - 1 : n;
		if (s[i - 1] != '0')
			return n;
		zero = true;
	}
	return n;
}

/* Go's int64(f) on amd64: out of range and NaN give the minimum. */
static int64_t go_f2i(double f)
{
	if (f >= -9223372036854775808.0 && f < 9223372036854775808.0)
		return (int64_t)f;
	return INT64_MIN;
}

/* cast.ToInt64 */
static int64_t to_int64(const te_render_value *v)
{
	int64_t i;

	switch (v ? v->kind : TE_RENDER_NIL) {
	case TE_RENDER_INT:
		return v->u.i;
	case TE_RENDER_FLOAT:
		return go_f2i(v->u.f);
	case TE_RENDER_BOOL:
		return v->u.b;
	case TE_RENDER_STRING:
		if (parse_int0(v->u.s.ptr,
		               trim_zero_decimal(v->u.s.ptr, v->u.s.len), &i))
			return i;
		return 0;
	default:
		return 0;
	}
}

static int ret_int(te_render_value **out, int64_t i, te_error *err)
{
	return sp_ret(out, te_render_value_int(i), err);
}

/* int and int64: cast.ToInt / ToInt64 (the same on 64-bit Go). */
static int f_int(te_render_value **out, te_render_call *call, sp_args a,
                 size_t n, void *p, te_error *err)
{
	(void)call;
	(void)n;
	(void)p;
	return ret_int(out, to_int64(a[0]), err);
}

/* add, mul, max/biggest, min over all arguments (payload: the op). */
static int f_fold(te_render_value **out, te_render_call *call, sp_args a,
                  size_t n, void *p, te_error *err)
{
	char op = *(const char *)p;
	uint64_t acc = op == '+' ? 0 : (uint64_t)to_int64(a[0]);
	int64_t x;
	size_t i;

	(void)call;
	for (i = op == '+' ? 0 : 1; i < n; i++) {
		x = to_int64(a[i]);
		if (op == '+')
			acc += (uint64_t)x;
		else if (op == '*')
			acc *= (uint64_t)x;
		else if (op == '>' ? x > (int64_t)acc : x < (int64_t)acc)
			acc = (uint64_t)x;
	}
	return ret_int(out, (int64_t)acc, err);
}

static int f_add1(te_render_value **out, te_render_call *call, sp_args a,
                  size_t n, void *p, te_error *err)
{
	(void)call;
	(void)n;
	(void)p;
	return ret_int(out, (int64_t)((uint64_t)to_int64(a[0]) + 1), err);
}

/* sub, div, mod of two arguments (payload: the op). */
static int f_binary(te_render_value **out, te_render_call *call, sp_args a,
                    size_t n, void *p, te_error *err)
{
	char op = *(const char *)p;
	int64_t x = to_int64(a[0]), y = to_int64(a[1]);

	(void)call;
	(void)n;
	if (op == '-')
		return ret_int(out, (int64_t)((uint64_t)x - (uint64_t)y), err);
	if (y == 0)
		return te_error_set(err, TE_EINVALID,
		                    "runtime error: integer divide by zero");
	if (y == -1) /* Go wraps MinInt64 / -1; C does not */
		return ret_int(out, op == '/' ? (int64_t)(0 - (uint64_t)x) : 0,
		               err);
	return ret_int(out, op == '/' ? x / y : x % y, err);
}

/* untilStep START STOP STEP, as Sprig counts: up while below stop for a
 * positive step, down while above it for a negative one. */
static int until_step(te_render_value **out, te_render_call *call,
                      int64_t start, int64_t stop, int64_t step, te_error *err)
{
	te_render_value *r;
	uint64_t count = 0, span, mag;
	int64_t i;

	if (stop < start && step < 0) {
		span = (uint64_t)start - (uint64_t)stop;
		mag = 0 - (uint64_t)step;
		count = (span - 1) / mag + 1;
	} else if (stop > start && step > 0) {
		span = (uint64_t)stop - (uint64_t)start;
		count = (span - 1) / (uint64_t)step + 1;
	}
	if (sp_list_budget(call, count, err) < 0)
		return err->code;
	r = te_render_value_list();
	if (!r)
		return te_error_set(err, TE_ENOMEM, "out of memory");
	for (i = start; count > 0; count--) {
		if (te_render_list_push(r, te_render_value_int(i), err) < 0) {
			te_render_value_unref(r);
			return err->code;
		}
		i = (int64_t)((uint64_t)i + (uint64_t)step);
	}
	*out = r;
	return 0;
}

static int f_until(te_render_value **out, te_render_call *call, sp_args a,
                   size_t n, void *p, te_error *err)
{
	(void)n;
	(void)p;
	if (WANT_INT(a[0]) < 0)
		return err->code;
	return until_step(out, call, 0, a[0]->u.i, a[0]->u.i < 0 ? -1 : 1, err);
}

static int f_untilstep(te_render_value **out, te_render_call *call, sp_args a,
                       size_t n, void *p, te_error *err)
{
	(void)n;
	(void)p;
	if (WANT_INT(a[0]) < 0 || WANT_INT(a[1]) < 0 || WANT_INT(a[2]) < 0)
		return err->code;
	return until_step(out, call, a[0]->u.i, a[1]->u.i, a[2]->u.i, err);
}

/* Sprig's slice LIST [START [END]] (it replaces Go's builtin slice): an
 * empty list gives nil, indices go through cast.ToInt, out of range is
 * reflect's panic. */
static int f_slice(te_render_value **out, te_render_call *call, sp_args a,
                   size_t n, void *p, te_error *err)
{
	const te_render_value *l = a[0];
	te_render_value *r;
	int64_t start = 0, end, i;

	(void)call;
	(void)p;
	if (!l || l->kind == TE_RENDER_NIL)
		return te_error_set(err, TE_EINVALID,
		                    "runtime error: invalid memory address or "
		                    "nil pointer dereference");
	if (l->kind != TE_RENDER_LIST)
		return te_error_set(err, TE_EINVALID,
		                    "list should be type of slice or array but "
		                    "%s",
		                    sp_kind(l));
	if (l->u.list.len == 0)
		return sp_ret_ref(out, NULL, err);
	end = (int64_t)l->u.list.len;
	if (n > 1)
		start = to_int64(a[1]);
	if (n > 2)
		end = to_int64(a[2]);
	if (start < 0 || end < start || end > (int64_t)l->u.list.len)
		return te_error_set(err, TE_EINVALID,
		                    "reflect.Value.Slice: slice index out of "
		                    "bounds");
	r = te_render_value_list();
	if (!r)
		return te_error_set(err, TE_ENOMEM, "out of memory");
	for (i = start; i < end; i++)
		if (te_render_list_push(
		        r, te_render_value_ref(l->u.list.items[i]), err) < 0) {
			te_render_value_unref(r);
			return err->code;
		}
	*out = r;
	return 0;
}

/* seq [START [STEP]] END: the integers as Sprig's intArrayToString
 * writes them, space separated. */
static int f_seq(te_render_value **out, te_render_call *call, sp_args a,
                 size_t n, void *p, te_error *err)
{
	te_buf b = TE_BUF_INIT(sp_out_max(call));
	te_render_value *l = NULL;
	int64_t start = 1, end, step = 1, inc;
	size_t i;
	int rc;

	(void)p;
	for (i = 0; i < n; i++)
		if (WANT_INT(a[i]) < 0)
			return err->code;
	if (n == 0 || n > 3)
		return sp_ret(out, te_render_value_string("", 0), err);
	end = a[n - 1]->u.i;
	if (n > 1)
		start = a[0]->u.i;
	inc = end < start ? -1 : 1;
	step = n == 3 ? a[1]->u.i : inc;
	if (n == 3 && end < start && step > 0)
		return sp_ret(out, te_render_value_string("", 0), err);
	rc = until_step(&l, call, start,
	                (int64_t)((uint64_t)end + (uint64_t)inc), step, err);
	for (i = 0; rc == 0 && i < l->u.list.len && !err->code; i++)
		te_buf_printf(&b, err, i ? " %lld" : "%lld",
		              (long long)l->u.list.items[i]->u.i);
	te_render_value_unref(l);
	if (rc < 0) {
		te_buf_dispose(&b);
		return rc;
	}
	return sp_ret_buf(out, &b, err);
}

/* toDecimal: fmt.Sprint of the value read as an octal number
 * (strconv.ParseInt base 8: sign, digits 0-7, nothing else), else 0. */
static int f_todecimal(te_render_value **out, te_render_call *call, sp_args a,
                       size_t n, void *p, te_error *err)
{
	te_buf b = TE_BUF_INIT(sp_out_max(call));
	uint64_t u = 0, lim;
	bool neg = false, ok;
	size_t i = 0;

	(void)n;
	(void)p;
	if (sp_strval(&b, a[0], err) < 0) {
		te_buf_dispose(&b);
		return err->code;
	}
	if (b.len && (b.ptr[0] == '+' || b.ptr[0] == '-'))
		neg = b.ptr[i++] == '-';
	lim = neg ? (uint64_t)1 << 63 : ((uint64_t)1 << 63) - 1;
	ok = i < b.len;
	for (; ok && i < b.len; i++) {
		ok = b.ptr[i] >= '0' && b.ptr[i] <= '7' &&
		     u <= (lim - (uint64_t)(b.ptr[i] - '0')) / 8;
		u = u * 8 + (uint64_t)(b.ptr[i] - '0');
	}
	te_buf_dispose(&b);
	if (!ok)
		u = 0;
	return ret_int(out, neg ? (int64_t)(0 - u) : (int64_t)u, err);
}

#define V TE_RENDER_VARIADIC
const struct sp_entry te_render__sp_math[] = {
    {"add", f_fold, 0, V, "+"},
    {"add1", f_add1, 1, 1, NULL},
    {"biggest", f_fold, 1, V, ">"},
    {"div", f_binary, 2, 2, "/"},
    {"int", f_int, 1, 1, NULL},
    {"int64", f_int, 1, 1, NULL},
    {"max", f_fold, 1, V, ">"},
    {"min", f_fold, 1, V, "<"},
    {"mod", f_binary, 2, 2, "%"},
    {"mul", f_fold, 1, V, "*"},
    {"mustSlice", f_slice, 1, V, NULL},
    {"seq", f_seq, 0, V, NULL},
    {"slice", f_slice, 1, V, NULL},
    {"sub", f_binary, 2, 2, "-"},
    {"toDecimal", f_todecimal, 1, 1, NULL},
    {"until", f_until, 1, 1, NULL},
    {"untilStep", f_untilstep, 3, 3, NULL},
};
#undef V
const size_t te_render__sp_math_len =
    sizeof(te_render__sp_math) / sizeof(te_render__sp_math[0]);
