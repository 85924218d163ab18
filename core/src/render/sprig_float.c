/*
 * sprig_float.c - Sprig v3.2.3's float functions (numeric.go,
 * functions.go; https://masterminds.github.io/sprig/mathf.html): float64
 * addf add1f subf mulf divf maxf minf floor ceil round.
 *
 * Arguments convert with spf13/cast's ToFloat64 (ints, floats, bools,
 * nil as 0, strings by strconv.ParseFloat, anything else 0).  addf,
 * add1f, subf, mulf and divf compute in github.com/shopspring/decimal:
 * each float becomes the decimal of its shortest digits, sums and
 * products are exact, a quotient has 16 decimals (rounded half away
 * from zero), and the result is the float nearest to the decimal.  The
 * decimals are OpenSSL BIGNUMs (a coefficient and a power of ten).
 */
#include <ctype.h>
#include <errno.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/bn.h>

#include "render/sprig_int.h"

/* shopspring/decimal's DivisionPrecision */
#define DEC_DIV_PRECISION 16

/* ---- cast.ToFloat64 ---- */

/* Go's underscoreOK for a float literal: between digits only. */
static bool float_underscores_ok(const char *s, size_t n)
{
	char saw = '^';
	size_t i = 0;

	if (n && (s[0] == '+' || s[0] == '-'))
		i++;
	if (n - i >= 2 && s[i] == '0' && (s[i + 1] | 0x20) == 'x') {
		i += 2;
		saw = '0';
	}
	for (; i < n; i++) {
		if (isxdigit((unsigned char)s[i])) {
			saw = '0';
		} else if (s[i] == '_') {
			if (saw != '0')
				return false;
			saw = '_';
		} else {
			if (saw == '_')
				return false;
			saw = '!';
		}
	}
	return saw != '_';
}

/* strconv.ParseFloat(s, 64) without its error value: false on a syntax
 * or range error. */
static bool go_parse_float(const char *s, size_t n, double *out)
{
	char buf[64], *clean = buf, *end;
	const char *d;
	size_t i, m = 0;
	bool ok = false;

	if (n == 0 || isspace((unsigned char)s[0]) || memchr(s, '\0', n))
		return false;
	if (n >= sizeof(buf) && !(clean = malloc(n + 1)))
		return false;
	for (i = 0; i < n; i++)
		if (s[i] != '_')
			clean[m++] = s[i];
	clean[m] = '\0';
	d = clean + (clean[0] == '+' || clean[0] == '-');
	/* Go: hex floats need a 'p' exponent, "nan" takes no sign, no
	 * "nan(...)" and no "infin" */
	if (m != n && !float_underscores_ok(s, n))
		goto done;
	if (d[0] == '0' && (d[1] | 0x20) == 'x' && !strpbrk(d, "pP"))
		goto done;
	if (strncasecmp(d, "nan", 3) == 0 && (d != clean || d[3]))
		goto done;
	if (strncasecmp(d, "inf", 3) == 0 && d[3] &&
	    strcasecmp(d, "infinity") != 0)
		goto done;
	errno = 0;
	*out = strtod(clean, &end);
	ok = *end == '\0' && end != clean && !(errno == ERANGE && isinf(*out));
done:
	if (clean != buf)
		free(clean);
	return ok;
}

static double to_float64(const te_render_value *v)
{
	double f;

	switch (v ? v->kind : TE_RENDER_NIL) {
	case TE_RENDER_INT:
		return (double)v->u.i;
	case TE_RENDER_FLOAT:
		return v->u.f;
	case TE_RENDER_BOOL:
		return v->u.b ? 1 : 0;
	case TE_RENDER_STRING:
		return go_parse_float(v->u.s.ptr, v->u.s.len, &f) ? f : 0;
	default:
		return 0;
	}
}

static int ret_float(te_render_value **out, double f, te_error *err)
{
	return sp_ret(out, te_render_value_float(f), err);
}

/* ---- decimals ---- */

struct dec {
	BIGNUM *v;
	long exp; /* value = v * 10^exp */
};

static int dec_oom(te_error *err)
{
	return te_error_set(err, TE_ENOMEM, "out of memory");
}

/* decimal.NewFromFloat: the shortest digits of f. */
static int dec_from_float(struct dec *d, double f, te_error *err)
{
	char digits[40], num[48];
	int nd, dp;

	if (isnan(f) || isinf(f))
		return te_error_set(err, TE_EINVALID,
		                    "Cannot create a Decimal from %s",
		                    isnan(f) ? "NaN"
		                    : f > 0  ? "+Inf"
		                             : "-Inf");
	d->exp = 0;
	if (f == 0)
		return BN_dec2bn(&d->v, "0") ? 0 : dec_oom(err);
	te_render__shortest(fabs(f), digits, &nd, &dp);
	snprintf(num, sizeof(num), "%s%s", f < 0 ? "-" : "", digits);
	d->exp = (long)dp - nd;
	return BN_dec2bn(&d->v, num) ? 0 : dec_oom(err);
}

/* d->v *= 10^k */
static bool dec_scale_up(struct dec *d, long k, BN_CTX *ctx)
{
	BIGNUM *p = BN_new(), *ten = BN_new(), *e = BN_new();
	bool ok = p && ten && e && BN_set_word(ten, 10) &&
	          BN_set_word(e, (BN_ULONG)k) && BN_exp(p, ten, e, ctx) &&
	          BN_mul(d->v, d->v, p, ctx);

	if (ok)
		d->exp -= k;
	BN_free(p);
	BN_free(ten);
	BN_free(e);
	return ok;
}

/* decimal.RescalePair: both to the smaller exponent. */
static bool dec_rescale_pair(struct dec *a, struct dec *b, BN_CTX *ctx)
{
	if (a->exp > b->exp)
		return dec_scale_up(a, a->exp - b->exp, ctx);
	if (b->exp > a->exp)
		return dec_scale_up(b, b->exp - a->exp, ctx);
	return true;
}

static void dec_free(struct dec *d)
{
	BN_free(d->v);
	d->v = NULL;
}

/* Compare |a| * 10^shift... as decimal.Cmp of two decimals (copies). */
static int dec_cmp(const struct dec *a, const struct dec *b, BN_CTX *ctx,
                   bool *ok)
{
	struct dec x = {BN_dup(a->v), a->exp}, y = {BN_dup(b->v), b->exp};
	int c = 0;

	*ok = x.v && y.v && dec_rescale_pair(&x, &y, ctx);
	if (*ok)
		c = BN_cmp(x.v, y.v);
	dec_free(&x);
	dec_free(&y);
	return c;
}

/* decimal.DivRound(b, 16): a = a / b. */
static int dec_div(struct dec *a, struct dec *b, BN_CTX *ctx, te_error *err)
{
	struct dec q = {BN_new(), -DEC_DIV_PRECISION};
	struct dec r = {BN_new(), 0}, babs = {BN_dup(b->v), b->exp};
	long e = a->exp - b->exp + DEC_DIV_PRECISION;
	bool ok = q.v && r.v && babs.v, neg;
	int c;

	if (ok && BN_is_zero(b->v)) {
		te_error_set(err, TE_EINVALID, "decimal division by 0");
		goto done;
	}
	neg = BN_is_negative(a->v) != BN_is_negative(b->v) && !BN_is_zero(a->v);
	/* a / b scaled so that the quotient is an integer multiple of
	 * 10^-16: the remainder keeps the scale of the dividend */
	if (ok && e < 0) {
		struct dec bb = {b->v, 0};

		ok = dec_scale_up(&bb, -e, ctx);
		r.exp = a->exp;
	} else if (ok) {
		ok = dec_scale_up(a, e, ctx);
		r.exp = b->exp - DEC_DIV_PRECISION;
	}
	ok = ok && BN_div(q.v, r.v, a->v, b->v, ctx);
	if (!ok)
		goto done;
	/* round half away from zero: 2|r| * 10^16 against |b| */
	BN_set_negative(r.v, 0);
	BN_set_negative(babs.v, 0);
	ok = BN_lshift1(r.v, r.v) != 0;
	r.exp += DEC_DIV_PRECISION;
	c = ok ? dec_cmp(&r, &babs, ctx, &ok) : 0;
	if (ok && c >= 0)
		ok = neg ? BN_sub_word(q.v, 1) : BN_add_word(q.v, 1);
	if (ok) {
		BN_free(a->v);
		*a = q;
		q.v = NULL;
	}
done:
	dec_free(&q);
	dec_free(&r);
	dec_free(&babs);
	if (!ok && !err->code)
		dec_oom(err);
	return err->code;
}

/* decimal's Float64: the float nearest to the decimal (strtod rounds
 * correctly, as big.Rat.Float64 does). */
static int dec_to_float(const struct dec *d, double *f, te_error *err)
{
	char *num = BN_bn2dec(d->v), *s;
	size_t n;

	if (!num)
		return dec_oom(err);
	n = strlen(num) + 32;
	s = malloc(n);
	if (!s) {
		OPENSSL_free(num);
		return dec_oom(err);
	}
	snprintf(s, n, "%se%ld", num, d->exp);
	*f = strtod(s, NULL);
	free(s);
	OPENSSL_free(num);
	return 0;
}

enum dec_op { DEC_ADD, DEC_SUB, DEC_MUL, DEC_DIV };

/* One step; costs a work step per 512 bits of the operands. */
static int dec_apply(te_render_call *call, struct dec *a, struct dec *b,
                     enum dec_op op, BN_CTX *ctx, te_error *err)
{
	bool ok = true;

	if (sp_steps(call,
	             1 + (uint64_t)(BN_num_bits(a->v) + BN_num_bits(b->v)) /
	                     512,
	             err) < 0)
		return err->code;
	switch (op) {
	case DEC_ADD:
	case DEC_SUB:
		ok = dec_rescale_pair(a, b, ctx) &&
		     (op == DEC_ADD ? BN_add(a->v, a->v, b->v)
		                    : BN_sub(a->v, a->v, b->v));
		break;
	case DEC_MUL:
		ok = BN_mul(a->v, a->v, b->v, ctx) != 0;
		a->exp += b->exp;
		break;
	case DEC_DIV:
		return dec_div(a, b, ctx, err);
	}
	return ok ? 0 : dec_oom(err);
}

/* Sprig's execDecimalOp(first, rest, op); add1f's rest is {1}, addf's
 * first is 0. */
static int dec_fold(te_render_call *call, double first, sp_args rest, size_t n,
                    enum dec_op op, double *f, te_error *err)
{
	struct dec acc = {NULL, 0}, x = {NULL, 0};
	BN_CTX *ctx = BN_CTX_new();
	size_t i;

	if (!ctx)
		return dec_oom(err);
	if (dec_from_float(&acc, first, err) < 0)
		goto done;
	for (i = 0; i < n; i++) {
		if (dec_from_float(&x, rest ? to_float64(rest[i]) : 1, err) <
		        0 ||
		    dec_apply(call, &acc, &x, op, ctx, err) < 0)
			goto done;
	}
	dec_to_float(&acc, f, err);
done:
	dec_free(&acc);
	dec_free(&x);
	BN_CTX_free(ctx);
	return err->code;
}

static int f_decimal(te_render_value **out, te_render_call *call, sp_args a,
                     size_t n, void *p, te_error *err)
{
	const char *name = p;
	double f = 0;

	if (strcmp(name, "add1f") == 0) {
		if (dec_fold(call, to_float64(a[0]), NULL, 1, DEC_ADD, &f,
		             err) < 0)
			return err->code;
	} else if (strcmp(name, "addf") == 0) {
		if (dec_fold(call, 0, a, n, DEC_ADD, &f, err) < 0)
			return err->code;
	} else {
		enum dec_op op = name[0] == 's'   ? DEC_SUB
		                 : name[0] == 'm' ? DEC_MUL
		                                  : DEC_DIV;

		if (dec_fold(call, to_float64(a[0]), a + 1, n - 1, op, &f,
		             err) < 0)
			return err->code;
	}
	return ret_float(out, f, err);
}

/* ---- the rest ---- */

static int f_float64(te_render_value **out, te_render_call *call, sp_args a,
                     size_t n, void *p, te_error *err)
{
	(void)call;
	(void)n;
	(void)p;
	return ret_float(out, to_float64(a[0]), err);
}

/* math.Max / math.Min: infinities win, then NaN, and +0 > -0. */
static double go_max(double x, double y, bool min)
{
	double inf = min ? -INFINITY : INFINITY;

	if (x == inf || y == inf)
		return inf;
	if (isnan(x) || isnan(y))
		return NAN;
	if (x == 0 && x == y)
		return signbit(x) == min ? x : y;
	return min ? (x < y ? x : y) : (x > y ? x : y);
}

static int f_maxf_minf(te_render_value **out, te_render_call *call, sp_args a,
                       size_t n, void *p, te_error *err)
{
	double acc = to_float64(a[0]);
	size_t i;

	(void)call;
	for (i = 1; i < n; i++)
		acc = go_max(acc, to_float64(a[i]), p != NULL);
	return ret_float(out, acc, err);
}

static int f_floor_ceil(te_render_value **out, te_render_call *call, sp_args a,
                        size_t n, void *p, te_error *err)
{
	double f = to_float64(a[0]);

	(void)call;
	(void)n;
	return ret_float(out, p ? ceil(f) : floor(f), err);
}

/* Go's math.Pow(10, y) for an integral y: Go multiplies successive
 * squarings of the mantissa (math/pow.go), which rounds differently
 * from C's pow above 10^22. */
static double go_pow10(double y)
{
	double a1 = 1, x1, ay = fabs(y);
	int ae = 0, xe;
	int64_t i;

	if (y == 0)
		return 1;
	if (y == 1)
		return 10;
	if (ay >= 9223372036854775808.0)
		return y > 0 ? INFINITY : 0;
	x1 = frexp(10, &xe);
	for (i = (int64_t)ay; i != 0; i >>= 1) {
		if (xe < -(1 << 12) || (1 << 12) < xe) {
			ae += xe;
			break;
		}
		if (i & 1) {
			a1 *= x1;
			ae += xe;
		}
		x1 *= x1;
		xe <<= 1;
		if (x1 < .5) {
			x1 += x1;
			xe--;
		}
	}
	if (y < 0) {
		a1 = 1 / a1;
		ae = -ae;
	}
	return ldexp(a1, ae);
}

/* round VALUE PLACES [ROUND_ON]: Sprig's own rounding (numeric.go). */
static int f_round(te_render_value **out, te_render_call *call, sp_args a,
                   size_t n, void *p, te_error *err)
{
	double on = .5, places, pow10, digit, frac, ip, r;

	(void)call;
	(void)p;
	/* Go converts an integral float constant (1.0) to the int param */
	if (a[1] && a[1]->kind == TE_RENDER_FLOAT && fabs(a[1]->u.f) < 9e18 &&
	    a[1]->u.f == (double)(int64_t)a[1]->u.f)
		places = (double)(int64_t)a[1]->u.f;
	else if (WANT_INT(a[1]) < 0)
		return err->code;
	else
		places = (double)a[1]->u.i;
	if (n > 2) {
		if (a[2] && a[2]->kind == TE_RENDER_INT)
			on = (double)a[2]->u.i;
		else if (sp_want(a[2], TE_RENDER_FLOAT, "float64", err) < 0)
			return err->code;
		else
			on = a[2]->u.f;
	}
	pow10 = go_pow10(places);
	digit = pow10 * to_float64(a[0]);
	frac = modf(digit, &ip);
	r = frac >= on ? ceil(digit) : floor(digit);
	return ret_float(out, r / pow10, err);
}

#define V TE_RENDER_VARIADIC
const struct sp_entry te_render__sp_float[] = {
    {"add1f", f_decimal, 1, 1, "add1f"},  {"addf", f_decimal, 0, V, "addf"},
    {"ceil", f_floor_ceil, 1, 1, "ceil"}, {"divf", f_decimal, 1, V, "divf"},
    {"float64", f_float64, 1, 1, NULL},   {"floor", f_floor_ceil, 1, 1, NULL},
    {"maxf", f_maxf_minf, 1, V, NULL},    {"minf", f_maxf_minf, 1, V, "min"},
    {"mulf", f_decimal, 1, V, "mulf"},    {"round", f_round, 2, V, NULL},
    {"subf", f_decimal, 1, V, "subf"},
};
#undef V
const size_t te_render__sp_float_len =
    sizeof(te_render__sp_float) / sizeof(te_render__sp_float[0]);
