/*
 * sprig_duration.c - Sprig v3.2.3's duration and durationRound (date.go;
 * https://masterminds.github.io/sprig/date.html), on Go's time.Duration:
 * its String form ("1h2m3.5s") and time.ParseDuration.
 *
 * Sprig switches on the argument's Go type: duration takes an int64 or a
 * string of decimal seconds, durationRound an int64 of nanoseconds or a
 * ParseDuration string; anything else (a template's int among them) is 0.
 * This value model has no int64 apart from int, so ints are "anything
 * else", as they are for Sprig called from a template.
 */
#include <string.h>

#include "render/sprig_int.h"

#define NS_SECOND 1000000000ull

/* time.Duration.String into b. */
int sp_duration_string(te_buf *b, int64_t d, te_error *err)
{
	char buf[40];
	size_t w = sizeof(buf);
	uint64_t u = d < 0 ? 0 - (uint64_t)d : (uint64_t)d;
	int prec, i;
	bool print = false;

	if (u == 0)
		return te_buf_puts(b, "0s", err);
	buf[--w] = 's';
	if (u < NS_SECOND) {
		if (u < 1000) {
			prec = 0;
			buf[--w] = 'n';
		} else if (u < 1000000) {
			prec = 3;
			w -= 2;
			memcpy(buf + w, "\xC2\xB5", 2); /* µ */
		} else {
			prec = 6;
			buf[--w] = 'm';
		}
	} else {
		prec = 9;
	}
	/* fmtFrac: the fraction without trailing zeros */
	for (i = 0; i < prec; i++) {
		print = print || u % 10 != 0;
		if (print)
			buf[--w] = (char)('0' + u % 10);
		u /= 10;
	}
	if (print)
		buf[--w] = '.';
	if (prec == 9) {
		uint64_t sec = u % 60, min;

		do
			buf[--w] = (char)('0' + sec % 10);
		while ((sec /= 10) > 0);
		u /= 60;
		if (u > 0) {
			buf[--w] = 'm';
			min = u % 60;
			do
				buf[--w] = (char)('0' + min % 10);
			while ((min /= 10) > 0);
			u /= 60;
			if (u > 0) {
				buf[--w] = 'h';
				do
					buf[--w] = (char)('0' + u % 10);
				while ((u /= 10) > 0);
			}
		}
	} else {
		do
			buf[--w] = (char)('0' + u % 10);
		while ((u /= 10) > 0);
	}
	if (d < 0)
		buf[--w] = '-';
	return te_buf_put(b, buf + w, sizeof(buf) - w, err);
}

/* time.ParseDuration: 0, or PD_INVALID, PD_MISSING_UNIT, PD_UNKNOWN_UNIT
 * (*unit, *unit_len: the unit named in Go's message). */
enum { PD_OK, PD_INVALID, PD_MISSING_UNIT, PD_UNKNOWN_UNIT };
static int parse_duration_why(const char *s, size_t n, int64_t *out,
                              size_t *unit_at, size_t *unit_len)
{
	static const struct {
		const char *name;
		uint64_t ns;
	} units[] = {{"ns", 1},
	             {"us", 1000},
	             {"\xC2\xB5s", 1000},
	             {"\xCE\xBCs", 1000},
	             {"ms", 1000000},
	             {"s", NS_SECOND},
	             {"m", 60 * NS_SECOND},
	             {"h", 3600 * NS_SECOND}};
	const uint64_t top = (uint64_t)1 << 63;
	uint64_t d = 0, v, f, unit;
	double scale;
	bool neg = false, pre, post, over;
	size_t i = 0, j, k, u;

	if (n && (s[0] == '-' || s[0] == '+'))
		neg = s[i++] == '-';
	if (n - i == 1 && s[i] == '0') {
		*out = 0;
		return PD_OK;
	}
	if (i == n)
		return PD_INVALID;
	while (i < n) {
		if (!(s[i] == '.' || (s[i] >= '0' && s[i] <= '9')))
			return PD_INVALID;
		for (v = 0, j = i; j < n && s[j] >= '0' && s[j] <= '9'; j++) {
			if (v > top / 10)
				return PD_INVALID;
			v = v * 10 + (uint64_t)(s[j] - '0');
			if (v > top)
				return PD_INVALID;
		}
		pre = j != i;
		i = j;
		post = false;
		f = 0;
		scale = 1;
		if (i < n && s[i] == '.') {
			over = false;
			for (j = ++i; j < n && s[j] >= '0' && s[j] <= '9';
			     j++) {
				if (over || f > (top - 1) / 10 ||
				    f * 10 + (uint64_t)(s[j] - '0') > top) {
					over = true;
					continue;
				}
				f = f * 10 + (uint64_t)(s[j] - '0');
				scale *= 10;
			}
			post = j != i;
			i = j;
		}
		if (!pre && !post)
			return PD_INVALID;
		for (j = i;
		     j < n && s[j] != '.' && !(s[j] >= '0' && s[j] <= '9'); j++)
			;
		if (j == i)
			return PD_MISSING_UNIT;
		unit = 0;
		for (k = 0; k < sizeof(units) / sizeof(units[0]); k++) {
			u = strlen(units[k].name);
			if (u == j - i && memcmp(s + i, units[k].name, u) == 0)
				unit = units[k].ns;
		}
		if (!unit) {
			*unit_at = i;
			*unit_len = j - i;
			return PD_UNKNOWN_UNIT;
		}
		if (v > top / unit)
			return PD_INVALID;
		v *= unit;
		if (f > 0) {
			v += (uint64_t)((double)f * ((double)unit / scale));
			if (v > top)
				return PD_INVALID;
		}
		d += v;
		if (d > top)
			return PD_INVALID;
		i = j;
	}
	if (!neg && d > top - 1)
		return PD_INVALID;
	*out = neg ? (int64_t)(0 - d) : (int64_t)d;
	return PD_OK;
}

/* time's quote: non-ASCII and control bytes as \xNN. */
void sp_time_quote(te_buf *b, const char *s, size_t n, te_error *err)
{
	static const char hex[] = "0123456789abcdef";
	char e[4] = {'\\', 'x', 0, 0};
	size_t i;

	te_buf_put(b, "\"", 1, err);
	for (i = 0; i < n; i++) {
		unsigned char c = (unsigned char)s[i];

		if (c >= 0x80 || c < ' ') {
			e[2] = hex[c >> 4];
			e[3] = hex[c & 15];
			te_buf_put(b, e, 4, err);
			continue;
		}
		if (c == '"' || c == '\\')
			te_buf_put(b, "\\", 1, err);
		te_buf_put(b, s + i, 1, err);
	}
	te_buf_put(b, "\"", 1, err);
}

int sp_parse_duration(const char *s, size_t n, int64_t *out, te_error *err)
{
	te_buf m = TE_BUF_INIT(TE_RENDER_MSG_VALUE_MAX);
	size_t ua = 0, ul = 0;
	int why = parse_duration_why(s, n, out, &ua, &ul);

	if (why == PD_OK)
		return 0;
	if (why == PD_UNKNOWN_UNIT) {
		te_buf_puts(&m, "time: unknown unit ", err);
		sp_time_quote(&m, s + ua, ul, err);
		te_buf_puts(&m, " in duration ", err);
	} else {
		te_buf_puts(&m,
		            why == PD_MISSING_UNIT
		                ? "time: missing unit in duration "
		                : "time: invalid duration ",
		            err);
	}
	sp_time_quote(&m, s, n, err);
	if (!err->code)
		te_error_set(err, TE_EINVALID, "%s", m.ptr);
	te_buf_dispose(&m);
	return err->code;
}

/* duration SECONDS: a string of seconds (an int is Go's int: 0). */
static int f_duration(te_render_value **out, te_render_call *call, sp_args a,
                      size_t n, void *p, te_error *err)
{
	te_buf b = TE_BUF_INIT(sp_out_max(call));
	int64_t secs = 0;

	(void)n;
	(void)p;
	if (a[0] && a[0]->kind == TE_RENDER_STRING)
		secs = te_render__sp_atoi(a[0]->u.s.ptr, a[0]->u.s.len);
	/* time.Duration(n) * time.Second wraps as Go's int64 does */
	sp_duration_string(&b, (int64_t)((uint64_t)secs * NS_SECOND), err);
	return sp_ret_buf(out, &b, err);
}

/* durationRound D: the largest whole unit of D (y mo d h m s). */
static int f_duration_round(te_render_value **out, te_render_call *call,
                            sp_args a, size_t n, void *p, te_error *err)
{
	static const struct {
		uint64_t ns;
		const char *name;
	} units[] = {{365 * 24 * 3600 * NS_SECOND, "y"},
	             {30 * 24 * 3600 * NS_SECOND, "mo"},
	             {24 * 3600 * NS_SECOND, "d"},
	             {3600 * NS_SECOND, "h"},
	             {60 * NS_SECOND, "m"},
	             {NS_SECOND, "s"}};
	te_buf b = TE_BUF_INIT(sp_out_max(call));
	int64_t d = 0;
	uint64_t u;
	size_t i;

	(void)n;
	(void)p;
	size_t ua, ul;

	if (a[0] && a[0]->kind == TE_RENDER_STRING &&
	    parse_duration_why(a[0]->u.s.ptr, a[0]->u.s.len, &d, &ua, &ul) !=
	        PD_OK)
		d = 0;
	u = d < 0 ? 0 - (uint64_t)d : (uint64_t)d;
	for (i = 0; i < sizeof(units) / sizeof(units[0]); i++)
		if (u > units[i].ns) {
			te_buf_printf(&b, err, "%llu%s",
			              (unsigned long long)(u / units[i].ns),
			              units[i].name);
			return sp_ret_buf(out, &b, err);
		}
	te_buf_puts(&b, "0s", err);
	return sp_ret_buf(out, &b, err);
}

const struct sp_entry te_render__sp_duration[] = {
    {"duration", f_duration, 1, 1, NULL},
    {"durationRound", f_duration_round, 1, 1, NULL},
};
const size_t te_render__sp_duration_len =
    sizeof(te_render__sp_duration) / sizeof(te_render__sp_duration[0]);
