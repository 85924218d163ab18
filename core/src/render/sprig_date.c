/*
 * sprig_date.c - Sprig v3.2.3's date functions (date.go;
 * https://masterminds.github.io/sprig/date.html): now date htmlDate
 * dateInZone date_in_zone htmlDateInZone unixEpoch dateModify date_modify
 * mustDateModify must_date_modify ago, over Go's time package rules
 * (https://pkg.go.dev/time): layouts ("2006-01-02 15:04:05"), zones from
 * the IANA database in /usr/share/zoneinfo (TZif files and their POSIX TZ
 * footer, https://www.rfc-editor.org/rfc/rfc8536), time.Time's String.
 *
 * A time is an object (te_render__object_with) holding [unix seconds,
 * nanoseconds, zone name, monotonic reading or nil]; its methods are
 * those templates call on a time.Time: String Format Unix UnixNano UTC
 * Year Month Day Hour Minute Second Nanosecond YearDay Weekday.  "Local"
 * is /etc/localtime (Go also honours $TZ; the library reads no
 * environment).  now and ago read the clock: their results are not
 * reproducible, as in werf.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "render/sprig_int.h"

#define TZ_FILE_MAX ((size_t)256 << 10)
#define DAY 86400

/* ---- the civil calendar (proleptic Gregorian) ---- */

static int64_t floor_div(int64_t a, int64_t b)
{
	return a / b - (a % b != 0 && (a < 0) != (b < 0));
}

/* days since 1970-01-01 of y-m-d (Howard Hinnant's days_from_civil) */
static int64_t days_from_civil(int64_t y, int m, int d)
{
	int64_t era, yoe, doy, doe;

	y -= m <= 2;
	era = floor_div(y, 400);
	yoe = y - era * 400;
	doy = (153 * (m + (m > 2 ? -3 : 9)) + 2) / 5 + d - 1;
	doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
	return era * 146097 + doe - 719468;
}

struct civil {
	int64_t year;
	int month, day, hour, min, sec, wday, yday; /* yday from 1 */
};

static void civil_from(int64_t local, struct civil *c)
{
	int64_t days = floor_div(local, DAY), s = local - days * DAY;
	int64_t z = days + 719468, era = floor_div(z, 146097);
	int64_t doe = z - era * 146097;
	int64_t yoe = (doe - doe / 1460 + doe / 36524 - doe / 146096) / 365;
	int64_t doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
	int64_t mp = (5 * doy + 2) / 153;

	c->day = (int)(doy - (153 * mp + 2) / 5 + 1);
	c->month = (int)(mp < 10 ? mp + 3 : mp - 9);
	c->year = yoe + era * 400 + (c->month <= 2);
	c->hour = (int)(s / 3600);
	c->min = (int)(s / 60 % 60);
	c->sec = (int)(s % 60);
	c->wday = (int)(((days % 7) + 11) % 7); /* 1970-01-01: Thursday */
	c->yday = (int)(days - days_from_civil(c->year, 1, 1) + 1);
}

static bool is_leap(int64_t y)
{
	return y % 4 == 0 && (y % 100 != 0 || y % 400 == 0);
}

static int days_in(int m, int64_t y)
{
	static const int d[] = {31, 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31};

	return m == 2 && is_leap(y) ? 29 : d[m - 1];
}

/* ---- zones ---- */

struct zone {
	char abbr[32];
	int32_t off;
	bool dst;
};

struct tz {
	struct zone *zones;
	size_t nz;
	int64_t *when;
	unsigned char *idx;
	size_t ntx;
	char ext[128];
};

static void tz_free(struct tz *z)
{
	free(z->zones);
	free(z->when);
	free(z->idx);
	memset(z, 0, sizeof(*z));
}

static uint32_t be32(const unsigned char *p)
{
	return (uint32_t)p[0] << 24 | (uint32_t)p[1] << 16 |
	       (uint32_t)p[2] << 8 | p[3];
}

static int64_t be64(const unsigned char *p)
{
	return (int64_t)((uint64_t)be32(p) << 32 | be32(p + 4));
}

/* LoadLocationFromTZData: the v2+ block when there is one. */
static bool tz_parse(struct tz *z, const unsigned char *p, size_t n)
{
	size_t cnt[6], i, tsize = 4, need, off = 0;
	bool v2;
	const unsigned char *d, *ab, *nl;

	for (;;) {
		if (n - off < 44 || memcmp(p + off, "TZif", 4) != 0)
			return false;
		v2 = p[off + 4] >= '2';
		for (i = 0; i < 6; i++)
			cnt[i] = be32(p + off + 20 + 4 * i);
		/* isut isstd leap time type char */
		need = cnt[3] * tsize + cnt[3] + cnt[4] * 6 + cnt[5] +
		       cnt[2] * (tsize + 4) + cnt[1] + cnt[0];
		if (cnt[3] > 100000 || cnt[4] > 256 || cnt[5] > 4096 ||
		    cnt[2] > 100000 || n - off - 44 < need)
			return false;
		if (tsize == 4 && v2) {
			off += 44 + need;
			tsize = 8;
			continue;
		}
		break;
	}
	d = p + off + 44;
	if (cnt[4] == 0)
		return false;
	z->ntx = cnt[3];
	z->nz = cnt[4];
	z->when = calloc(z->ntx ? z->ntx : 1, sizeof(*z->when));
	z->idx = calloc(z->ntx ? z->ntx : 1, 1);
	z->zones = calloc(z->nz, sizeof(*z->zones));
	if (!z->when || !z->idx || !z->zones)
		return false;
	for (i = 0; i < z->ntx; i++)
		z->when[i] =
		    tsize == 8 ? be64(d + 8 * i) : (int32_t)be32(d + 4 * i);
	d += z->ntx * tsize;
	for (i = 0; i < z->ntx; i++)
		if ((z->idx[i] = d[i]) >= z->nz)
			return false;
	d += z->ntx;
	ab = d + z->nz * 6;
	for (i = 0; i < z->nz; i++) {
		size_t a = d[6 * i + 5], l = 0;

		z->zones[i].off = (int32_t)be32(d + 6 * i);
		z->zones[i].dst = d[6 * i + 4] != 0;
		if (a >= cnt[5])
			return false;
		while (a + l < cnt[5] && ab[a + l] &&
		       l < sizeof(z->zones[i].abbr) - 1)
			l++;
		memcpy(z->zones[i].abbr, ab + a, l);
	}
	d = ab + cnt[5] + cnt[2] * (tsize + 4) + cnt[1] + cnt[0];
	/* the footer: "\nTZ\n" */
	if (v2 && d < p + n && *d == '\n' &&
	    (nl = memchr(d + 1, '\n', (size_t)(p + n - d - 1))) != NULL &&
	    (size_t)(nl - d - 1) < sizeof(z->ext)) {
		memcpy(z->ext, d + 1, (size_t)(nl - d - 1));
		z->ext[nl - d - 1] = '\0';
	}
	return true;
}

static bool tz_read(struct tz *z, const char *path)
{
	FILE *f = fopen(path, "rb");
	unsigned char *buf;
	size_t n;
	bool ok;

	if (!f)
		return false;
	buf = malloc(TZ_FILE_MAX);
	n = buf ? fread(buf, 1, TZ_FILE_MAX, f) : 0;
	ok = buf && !ferror(f) && n < TZ_FILE_MAX && tz_parse(z, buf, n);
	fclose(f);
	free(buf);
	if (!ok)
		tz_free(z);
	return ok;
}

/* time.LoadLocation: false for an unknown or bad name (Sprig then uses
 * UTC).  "UTC" and "" are UTC (no zones), "Local" /etc/localtime. */
static bool tz_load(struct tz *z, const char *name, size_t len)
{
	static const char *const dirs[] = {"/usr/share/zoneinfo/",
	                                   "/usr/share/lib/zoneinfo/",
	                                   "/usr/lib/locale/TZ/"};
	char path[512];
	size_t i;

	memset(z, 0, sizeof(*z));
	if (len == 0 || (len == 3 && memcmp(name, "UTC", 3) == 0))
		return true;
	if (len == 5 && memcmp(name, "Local", 5) == 0) {
		tz_read(z, "/etc/localtime"); /* else UTC, as Go's Local */
		return true;
	}
	/* Go's containsDotDot and absolute names; a NUL never names a file */
	if (name[0] == '/' || name[0] == '\\' || memchr(name, '\0', len) ||
	    len > 255)
		return false;
	for (i = 0; i + 1 < len; i++)
		if (name[i] == '.' && name[i + 1] == '.' &&
		    (i == 0 || name[i - 1] == '/') &&
		    (i + 2 == len || name[i + 2] == '/'))
			return false;
	for (i = 0; i < sizeof(dirs) / sizeof(dirs[0]); i++) {
		snprintf(path, sizeof(path), "%s%.*s", dirs[i], (int)len, name);
		if (tz_read(z, path))
			return true;
	}
	return false;
}

/* ---- POSIX TZ strings (Go's tzset) ---- */

struct rule {
	char kind; /* 'J' julian, 'D' day of year, 'M' month-week-day */
	int day, week, mon, time;
};

static bool tzs_num(const char **s, int min, int max, int *out)
{
	int v = 0;
	const char *p = *s;

	if (!(*p >= '0' && *p <= '9'))
		return false;
	while (*p >= '0' && *p <= '9') {
		v = v * 10 + (*p++ - '0');
		if (v > max)
			return false;
	}
	if (v < min)
		return false;
	*out = v;
	*s = p;
	return true;
}

static bool tzs_name(const char **s, char *out, size_t cap)
{
	const char *p = *s, *e;
	size_t l;

	if (!*p)
		return false;
	if (*p == '<') {
		e = strchr(p, '>');
		if (!e)
			return false;
		l = (size_t)(e - p - 1);
		p++;
		*s = e + 1;
	} else {
		for (e = p; *e && !strchr("0123456789,-+", *e); e++)
			;
		l = (size_t)(e - p);
		if (l < 3)
			return false;
		*s = e;
	}
	if (l >= cap)
		l = cap - 1;
	memcpy(out, p, l);
	out[l] = '\0';
	return true;
}

static bool tzs_offset(const char **s, int *out)
{
	bool neg = false;
	int h, m = 0, sec = 0;

	if (**s == '+' || **s == '-')
		neg = *(*s)++ == '-';
	if (!tzs_num(s, 0, 24 * 7, &h))
		return false;
	if (**s == ':') {
		++*s;
		if (!tzs_num(s, 0, 59, &m))
			return false;
		if (**s == ':') {
			++*s;
			if (!tzs_num(s, 0, 59, &sec))
				return false;
		}
	}
	*out = (h * 3600 + m * 60 + sec) * (neg ? -1 : 1);
	return true;
}

static bool tzs_rule(const char **s, struct rule *r)
{
	memset(r, 0, sizeof(*r));
	if (**s == 'J') {
		++*s;
		r->kind = 'J';
		if (!tzs_num(s, 1, 365, &r->day))
			return false;
	} else if (**s == 'M') {
		++*s;
		r->kind = 'M';
		if (!tzs_num(s, 1, 12, &r->mon) || *(*s)++ != '.' ||
		    !tzs_num(s, 1, 5, &r->week) || *(*s)++ != '.' ||
		    !tzs_num(s, 0, 6, &r->day))
			return false;
	} else {
		r->kind = 'D';
		if (!tzs_num(s, 0, 365, &r->day))
			return false;
	}
	r->time = 2 * 3600;
	if (**s != '/')
		return true;
	++*s;
	return tzs_offset(s, &r->time);
}

/* tzruleTime: seconds into the year at which the rule starts */
static int64_t tzs_rule_time(int64_t year, const struct rule *r, int off)
{
	static const int before[] = {0,   31,  59,  90,  120, 151,
	                             181, 212, 243, 273, 304, 334};
	int64_t s = 0, yy0, yy1, yy2, dow, d;
	int m1, i;

	if (r->kind == 'J') {
		s = (int64_t)(r->day - 1) * DAY;
		if (is_leap(year) && r->day >= 60)
			s += DAY;
	} else if (r->kind == 'D') {
		s = (int64_t)r->day * DAY;
	} else {
		m1 = (r->mon + 9) % 12 + 1;
		yy0 = year - (r->mon <= 2);
		yy1 = yy0 / 100;
		yy2 = yy0 % 100;
		dow = ((26 * m1 - 2) / 10 + 1 + yy2 + yy2 / 4 + yy1 / 4 -
		       2 * yy1) %
		      7;
		if (dow < 0)
			dow += 7;
		d = r->day - dow;
		if (d < 0)
			d += 7;
		for (i = 1; i < r->week; i++) {
			if (d + 7 >= days_in(r->mon, year))
				break;
			d += 7;
		}
		d += before[r->mon - 1] + (is_leap(year) && r->mon > 2);
		s = d * DAY;
	}
	return s + r->time - off;
}

/* tzset: the zone of sec by the TZ string, false when it does not parse */
static bool posix_tz(const char *s, int64_t sec, struct zone *out)
{
	char std[32], dst[32];
	int stdoff, dstoff;
	struct rule r1, r2;
	struct civil c;
	int64_t ysec, t1, t2;

	if (!tzs_name(&s, std, sizeof(std)) || !tzs_offset(&s, &stdoff))
		return false;
	stdoff = -stdoff;
	if (!*s || *s == ',') {
		snprintf(out->abbr, sizeof(out->abbr), "%s", std);
		out->off = stdoff;
		return true;
	}
	if (!tzs_name(&s, dst, sizeof(dst)))
		return false;
	if (!*s || *s == ',') {
		dstoff = stdoff + 3600;
	} else {
		if (!tzs_offset(&s, &dstoff))
			return false;
		dstoff = -dstoff;
	}
	if (!*s)
		s = ",M3.2.0,M11.1.0";
	if (*s != ',' && *s != ';')
		return false;
	s++;
	if (!tzs_rule(&s, &r1) || *s++ != ',' || !tzs_rule(&s, &r2) || *s)
		return false;
	civil_from(sec, &c);
	ysec = (int64_t)(c.yday - 1) * DAY + sec % DAY;
	t1 = tzs_rule_time(c.year, &r1, stdoff);
	t2 = tzs_rule_time(c.year, &r2, dstoff);
	if (t2 < t1) {
		int64_t t = t1;
		char tmp[32];
		int o = stdoff;

		t1 = t2;
		t2 = t;
		memcpy(tmp, std, sizeof(tmp));
		memcpy(std, dst, sizeof(tmp));
		memcpy(dst, tmp, sizeof(tmp));
		stdoff = dstoff;
		dstoff = o;
	}
	if (ysec < t1 || ysec >= t2) {
		snprintf(out->abbr, sizeof(out->abbr), "%s", std);
		out->off = stdoff;
	} else {
		snprintf(out->abbr, sizeof(out->abbr), "%s", dst);
		out->off = dstoff;
	}
	return true;
}

/* Location.lookup: the zone in effect at sec. */
static struct zone tz_lookup(const struct tz *z, int64_t sec)
{
	struct zone r = {"UTC", 0, false}, e;
	size_t lo = 0, hi, m, i;
	bool first_used = false;

	if (z->nz == 0)
		return r;
	if (z->ntx == 0 || sec < z->when[0]) {
		/* lookupFirstZone */
		for (i = 0; i < z->ntx; i++)
			first_used = first_used || z->idx[i] == 0;
		if (!first_used)
			return z->zones[0];
		if (z->ntx && z->zones[z->idx[0]].dst)
			for (i = z->idx[0]; i-- > 0;)
				if (!z->zones[i].dst)
					return z->zones[i];
		for (i = 0; i < z->nz; i++)
			if (!z->zones[i].dst)
				return z->zones[i];
		return z->zones[0];
	}
	hi = z->ntx;
	while (hi - lo > 1) {
		m = lo + (hi - lo) / 2;
		if (sec < z->when[m])
			hi = m;
		else
			lo = m;
	}
	r = z->zones[z->idx[lo]];
	if (lo == z->ntx - 1 && z->ext[0] && posix_tz(z->ext, sec, &e))
		return e;
	return r;
}

/* ---- time values ---- */

enum { T_SEC, T_NSEC, T_ZONE, T_MONO, T_FIXED };

static const te_render_funcs time_methods;

struct gtime {
	int64_t sec, nsec;
	const char *zone;
	size_t zone_len;
	bool has_mono;
	int64_t mono;
	bool fixed; /* a FixedZone: zone is its name, fixed_off its offset */
	int fixed_off;
};

static te_render_value *time_object(const struct gtime *t)
{
	te_render_value *l = te_render_value_list();
	te_error err = TE_ERROR_INIT;

	if (!l)
		return NULL;
	te_render_list_push(l, te_render_value_int(t->sec), &err);
	te_render_list_push(l, te_render_value_int(t->nsec), &err);
	te_render_list_push(l, te_render_value_string(t->zone, t->zone_len),
	                    &err);
	te_render_list_push(l,
	                    t->has_mono ? te_render_value_int(t->mono)
	                                : te_render_value_nil(),
	                    &err);
	te_render_list_push(l,
	                    t->fixed ? te_render_value_int(t->fixed_off)
	                             : te_render_value_nil(),
	                    &err);
	if (err.code) {
		te_render_value_unref(l);
		return NULL;
	}
	return te_render__object_with(&time_methods, l);
}

static bool is_time(const te_render_value *v)
{
	return v && v->methods == &time_methods;
}

static void time_of(const te_render_value *v, struct gtime *t)
{
	te_render_value *const *f = v->inner->u.list.items;

	t->sec = f[T_SEC]->u.i;
	t->nsec = f[T_NSEC]->u.i;
	t->zone = f[T_ZONE]->u.s.ptr;
	t->zone_len = f[T_ZONE]->u.s.len;
	t->has_mono = f[T_MONO]->kind == TE_RENDER_INT;
	t->mono = t->has_mono ? f[T_MONO]->u.i : 0;
	t->fixed = f[T_FIXED]->kind == TE_RENDER_INT;
	t->fixed_off = t->fixed ? (int)f[T_FIXED]->u.i : 0;
}

static int time_ret(te_render_value **out, const struct gtime *t, te_error *err)
{
	*out = time_object(t);
	return *out ? 0 : te_error_set(err, TE_ENOMEM, "out of memory");
}

/* ---- Format (time/format.go) ---- */

static const char *const month_names[] = {
    "January", "February", "March",     "April",   "May",      "June",
    "July",    "August",   "September", "October", "November", "December"};
static const char *const day_names[] = {"Sunday",    "Monday",   "Tuesday",
                                        "Wednesday", "Thursday", "Friday",
                                        "Saturday"};

static void put_int(te_buf *b, int64_t v, int width, te_error *err)
{
	char tmp[32];
	uint64_t u = v < 0 ? 0 - (uint64_t)v : (uint64_t)v;
	int n = 0;

	if (v < 0)
		te_buf_put(b, "-", 1, err);
	do
		tmp[n++] = (char)('0' + u % 10);
	while ((u /= 10) > 0);
	while (n < width)
		tmp[n++] = '0';
	while (n > 0)
		te_buf_put(b, &tmp[--n], 1, err);
}

static bool lower_start(const char *s, size_t n)
{
	return n > 0 && *s >= 'a' && *s <= 'z';
}

/* Go's layout elements (time/format.go's std* constants). */
enum std {
	S_NONE,
	S_LONGMONTH,
	S_MONTH,
	S_NUMMONTH,
	S_ZEROMONTH,
	S_LONGWEEKDAY,
	S_WEEKDAY,
	S_DAY,
	S_UNDERDAY,
	S_ZERODAY,
	S_UNDERYEARDAY,
	S_ZEROYEARDAY,
	S_HOUR,
	S_HOUR12,
	S_ZEROHOUR12,
	S_MINUTE,
	S_ZEROMINUTE,
	S_SECOND,
	S_ZEROSECOND,
	S_LONGYEAR,
	S_YEAR,
	S_PM,
	S_PM_LOWER,
	S_TZ,
	S_TZNUM, /* -0700 forms, Z07 forms: see struct chunk */
	S_FRAC0,
	S_FRAC9
};

struct chunk {
	enum std std;
	size_t pre, len;             /* literal prefix, then the element */
	bool iso, colon, secs, shrt; /* S_TZNUM */
	size_t digits;               /* S_FRAC* */
};

static bool at(const char *s, size_t n, size_t i, const char *w)
{
	size_t l = strlen(w);

	return n - i >= l && memcmp(s + i, w, l) == 0;
}

static bool digit_at(const char *s, size_t n, size_t i)
{
	return i < n && s[i] >= '0' && s[i] <= '9';
}

/* The time zone forms after '-' or 'Z', longest first as Go tries them. */
static size_t tz_form(const char *s, size_t n, size_t i, struct chunk *c)
{
	static const struct {
		const char *f;
		bool colon, secs, shrt;
	} forms[] = {{"070000", false, true, false},
	             {"07:00:00", true, true, false},
	             {"0700", false, false, false},
	             {"07:00", true, false, false},
	             {"07", false, false, true}};
	size_t k;

	for (k = 0; k < sizeof(forms) / sizeof(forms[0]); k++)
		if (at(s, n, i + 1, forms[k].f)) {
			c->colon = forms[k].colon;
			c->secs = forms[k].secs;
			c->shrt = forms[k].shrt;
			return strlen(forms[k].f) + 1;
		}
	return 0;
}

/* nextStdChunk: the first layout element of s (S_NONE: none). */
static struct chunk next_std(const char *s, size_t n)
{
	struct chunk c;
	size_t i, j;

	memset(&c, 0, sizeof(c));
	for (i = 0; i < n; i++) {
		c.pre = i;
		switch (s[i]) {
		case 'J':
			if (at(s, n, i, "January")) {
				c.std = S_LONGMONTH, c.len = 7;
				return c;
			}
			if (at(s, n, i, "Jan") &&
			    !lower_start(s + i + 3, n - i - 3)) {
				c.std = S_MONTH, c.len = 3;
				return c;
			}
			break;
		case 'M':
			if (at(s, n, i, "Monday")) {
				c.std = S_LONGWEEKDAY, c.len = 6;
				return c;
			}
			if (at(s, n, i, "Mon") &&
			    !lower_start(s + i + 3, n - i - 3)) {
				c.std = S_WEEKDAY, c.len = 3;
				return c;
			}
			if (at(s, n, i, "MST")) {
				c.std = S_TZ, c.len = 3;
				return c;
			}
			break;
		case '0':
			if (i + 1 < n && s[i + 1] >= '1' && s[i + 1] <= '6') {
				static const enum std z[] = {
				    S_ZEROMONTH,  S_ZERODAY,    S_ZEROHOUR12,
				    S_ZEROMINUTE, S_ZEROSECOND, S_YEAR};
				c.std = z[s[i + 1] - '1'], c.len = 2;
				return c;
			}
			if (at(s, n, i, "002")) {
				c.std = S_ZEROYEARDAY, c.len = 3;
				return c;
			}
			break;
		case '1':
			if (i + 1 < n && s[i + 1] == '5')
				c.std = S_HOUR, c.len = 2;
			else
				c.std = S_NUMMONTH, c.len = 1;
			return c;
		case '2':
			if (at(s, n, i, "2006"))
				c.std = S_LONGYEAR, c.len = 4;
			else
				c.std = S_DAY, c.len = 1;
			return c;
		case '_':
			if (i + 1 < n && s[i + 1] == '2') {
				if (at(s, n, i + 1, "2006")) {
					c.pre = i + 1; /* "_" then the year */
					c.std = S_LONGYEAR, c.len = 4;
					return c;
				}
				c.std = S_UNDERDAY, c.len = 2;
				return c;
			}
			if (at(s, n, i, "__2")) {
				c.std = S_UNDERYEARDAY, c.len = 3;
				return c;
			}
			break;
		case '3':
			c.std = S_HOUR12, c.len = 1;
			return c;
		case '4':
			c.std = S_MINUTE, c.len = 1;
			return c;
		case '5':
			c.std = S_SECOND, c.len = 1;
			return c;
		case 'P':
			if (i + 1 < n && s[i + 1] == 'M') {
				c.std = S_PM, c.len = 2;
				return c;
			}
			break;
		case 'p':
			if (i + 1 < n && s[i + 1] == 'm') {
				c.std = S_PM_LOWER, c.len = 2;
				return c;
			}
			break;
		case '-':
		case 'Z':
			if ((c.len = tz_form(s, n, i, &c)) > 0) {
				c.std = S_TZNUM;
				c.iso = s[i] == 'Z';
				return c;
			}
			break;
		case '.':
		case ',':
			if (i + 1 < n && (s[i + 1] == '0' || s[i + 1] == '9')) {
				for (j = i + 1; j < n && s[j] == s[i + 1]; j++)
					;
				if (!digit_at(s, n, j)) {
					c.std =
					    s[i + 1] == '0' ? S_FRAC0 : S_FRAC9;
					c.len = j - i;
					c.digits = j - i - 1;
					return c;
				}
			}
			break;
		}
	}
	c.std = S_NONE;
	c.pre = n;
	return c;
}

static void put_tz(te_buf *b, int off, const struct chunk *k, te_error *err)
{
	int zone = off / 60, abs = off;

	if (k->iso && off == 0) {
		te_buf_put(b, "Z", 1, err);
		return;
	}
	if (zone < 0) {
		te_buf_put(b, "-", 1, err);
		zone = -zone;
		abs = -abs;
	} else {
		te_buf_put(b, "+", 1, err);
	}
	put_int(b, zone / 60, 2, err);
	if (k->colon)
		te_buf_put(b, ":", 1, err);
	if (!k->shrt)
		put_int(b, zone % 60, 2, err);
	if (k->secs) {
		if (k->colon)
			te_buf_put(b, ":", 1, err);
		put_int(b, abs % 60, 2, err);
	}
}

/* One element of Time.Format. */
static void format_std(te_buf *b, const struct chunk *k, const char *sep,
                       const struct civil *c, int64_t nsec,
                       const struct zone *z, te_error *err)
{
	static const struct chunk plain_tz = {S_TZNUM, 0,     0,     false,
	                                      false,   false, false, 0};
	int hr = c->hour % 12 ? c->hour % 12 : 12;
	char digits[9];
	int64_t ns = nsec;
	size_t l;
	int i;

	switch (k->std) {
	case S_LONGMONTH:
		te_buf_puts(b, month_names[c->month - 1], err);
		break;
	case S_MONTH:
		te_buf_put(b, month_names[c->month - 1], 3, err);
		break;
	case S_NUMMONTH:
	case S_ZEROMONTH:
		put_int(b, c->month, k->std == S_ZEROMONTH ? 2 : 0, err);
		break;
	case S_LONGWEEKDAY:
		te_buf_puts(b, day_names[c->wday], err);
		break;
	case S_WEEKDAY:
		te_buf_put(b, day_names[c->wday], 3, err);
		break;
	case S_DAY:
	case S_ZERODAY:
		put_int(b, c->day, k->std == S_ZERODAY ? 2 : 0, err);
		break;
	case S_UNDERDAY:
		if (c->day < 10)
			te_buf_put(b, " ", 1, err);
		put_int(b, c->day, 0, err);
		break;
	case S_UNDERYEARDAY:
		if (c->yday < 100)
			te_buf_puts(b, c->yday < 10 ? "  " : " ", err);
		put_int(b, c->yday, 0, err);
		break;
	case S_ZEROYEARDAY:
		put_int(b, c->yday, 3, err);
		break;
	case S_HOUR:
		put_int(b, c->hour, 2, err);
		break;
	case S_HOUR12:
	case S_ZEROHOUR12:
		put_int(b, hr, k->std == S_ZEROHOUR12 ? 2 : 0, err);
		break;
	case S_MINUTE:
	case S_ZEROMINUTE:
		put_int(b, c->min, k->std == S_ZEROMINUTE ? 2 : 0, err);
		break;
	case S_SECOND:
	case S_ZEROSECOND:
		put_int(b, c->sec, k->std == S_ZEROSECOND ? 2 : 0, err);
		break;
	case S_LONGYEAR:
		put_int(b, c->year, 4, err);
		break;
	case S_YEAR:
		put_int(b, c->year % 100 < 0 ? -(c->year % 100) : c->year % 100,
		        2, err);
		break;
	case S_PM:
	case S_PM_LOWER:
		te_buf_puts(b,
		            c->hour >= 12 ? (k->std == S_PM ? "PM" : "pm")
		                          : (k->std == S_PM ? "AM" : "am"),
		            err);
		break;
	case S_TZ:
		if (z->abbr[0])
			te_buf_puts(b, z->abbr, err);
		else
			put_tz(b, z->off, &plain_tz, err);
		break;
	case S_TZNUM:
		put_tz(b, z->off, k, err);
		break;
	case S_FRAC0:
	case S_FRAC9:
		/* .000 fixed, .999 without trailing zeros (none: nothing) */
		for (i = 8; i >= 0; i--, ns /= 10)
			digits[i] = (char)('0' + ns % 10);
		l = k->digits > 9 ? 9 : k->digits;
		if (k->std == S_FRAC9)
			while (l > 0 && digits[l - 1] == '0')
				l--;
		if (l > 0 || k->std == S_FRAC0) {
			te_buf_put(b, sep, 1, err);
			te_buf_put(b, digits, l, err);
		}
		break;
	default:
		break;
	}
}

/* Time.Format(layout) of the instant sec+nsec seen in zone z. */
static int time_format(te_buf *b, const char *lay, size_t n, int64_t sec,
                       int64_t nsec, const struct zone *z, te_error *err)
{
	struct civil c;
	struct chunk k;

	civil_from(sec + z->off, &c);
	while (n > 0 && !err->code) {
		k = next_std(lay, n);
		te_buf_put(b, lay, k.pre, err);
		if (k.std == S_NONE)
			break;
		format_std(b, &k, lay + k.pre, &c, nsec, z, err);
		lay += k.pre + k.len;
		n -= k.pre + k.len;
	}
	return err->code;
}

/* The zone in effect at sec in the location named name (UTC when it
 * does not load). */
static struct zone zone_named(const char *name, size_t len, int64_t sec)
{
	struct tz z;
	struct zone zn;

	if (!tz_load(&z, name, len))
		memset(&z, 0, sizeof(z));
	zn = tz_lookup(&z, sec);
	tz_free(&z);
	return zn;
}

/* The zone of t in its own location. */
static struct zone zone_of(const struct gtime *t)
{
	struct zone zn = {"", 0, false};

	if (!t->fixed)
		return zone_named(t->zone, t->zone_len, t->sec);
	snprintf(zn.abbr, sizeof(zn.abbr), "%.*s", (int)t->zone_len, t->zone);
	zn.off = t->fixed_off;
	return zn;
}

/* t in the zone named zone, or in its own when zone is NULL. */
static int format_in(te_buf *b, const char *layout, size_t layout_len,
                     const struct gtime *t, const char *zone, size_t zone_len,
                     te_error *err)
{
	struct zone zn = zone ? zone_named(zone, zone_len, t->sec) : zone_of(t);

	return time_format(b, layout, layout_len, t->sec, t->nsec, &zn, err);
}

/* Time.String: with " m=+S.NNNNNNNNN" when it has a monotonic reading */
static int time_string(te_buf *b, const struct gtime *t, te_error *err)
{
	uint64_t m;

	static const char layout[] = "2006-01-02 15:04:05.999999999 -0700 MST";

	format_in(b, layout, sizeof(layout) - 1, t, NULL, 0, err);
	if (!t->has_mono)
		return err->code;
	m = t->mono < 0 ? 0 - (uint64_t)t->mono : (uint64_t)t->mono;
	te_buf_printf(b, err, " m=%c%llu.%09llu", t->mono < 0 ? '-' : '+',
	              (unsigned long long)(m / 1000000000u),
	              (unsigned long long)(m % 1000000000u));
	return err->code;
}

static void time_now(struct gtime *t)
{
	struct timespec ts, mono;

	clock_gettime(CLOCK_REALTIME, &ts);
	clock_gettime(CLOCK_MONOTONIC, &mono);
	t->sec = ts.tv_sec;
	t->nsec = ts.tv_nsec;
	t->zone = "Local";
	t->zone_len = 5;
	t->has_mono = true;
	t->mono = (int64_t)mono.tv_sec * 1000000000 + mono.tv_nsec;
	t->fixed = false;
	t->fixed_off = 0;
}

/* Sprig's date argument: a time, an int of Unix seconds (in Local), or
 * anything else meaning now. */
static void time_arg(const te_render_value *v, struct gtime *t)
{
	if (is_time(v)) {
		time_of(v, t);
	} else if (v && v->kind == TE_RENDER_INT) {
		memset(t, 0, sizeof(*t));
		t->sec = v->u.i;
		t->zone = "Local";
		t->zone_len = 5;
	} else {
		time_now(t);
	}
}

/* ---- functions ---- */

static int f_now(te_render_value **out, te_render_call *call, sp_args a,
                 size_t n, void *p, te_error *err)
{
	struct gtime t;

	(void)call;
	(void)a;
	(void)n;
	(void)p;
	time_now(&t);
	return time_ret(out, &t, err);
}

/* date FMT T, dateInZone FMT T ZONE, htmlDate T, htmlDateInZone T ZONE */
static int f_date(te_render_value **out, te_render_call *call, sp_args a,
                  size_t n, void *p, te_error *err)
{
	te_buf b = TE_BUF_INIT(sp_out_max(call));
	const char *kind = p, *layout = "2006-01-02";
	size_t layout_len = 10;
	const te_render_value *tv, *zone = NULL;
	struct gtime t;

	(void)n;
	if (kind[0] == 'h') { /* htmlDate, htmlDateInZone */
		tv = a[0];
		if (kind[4] == 'Z' && WANT_STR(zone = a[1]) < 0)
			return err->code;
	} else {
		if (WANT_STR(a[0]) < 0 ||
		    (kind[0] == 'z' && WANT_STR(zone = a[2]) < 0))
			return err->code;
		layout = a[0]->u.s.ptr;
		layout_len = a[0]->u.s.len;
		tv = a[1];
		if (sp_steps(call, a[0]->u.s.len / 8, err) < 0)
			return err->code;
	}
	time_arg(tv, &t);
	format_in(&b, layout, layout_len, &t, zone ? zone->u.s.ptr : "Local",
	          zone ? zone->u.s.len : 5, err);
	return sp_ret_buf(out, &b, err);
}

static int want_time(const te_render_value *v, te_error *err)
{
	if (is_time(v))
		return 0;
	return te_error_set(err, TE_EINVALID,
	                    "wrong type for value; expected time.Time; got %s",
	                    v ? te_render__typename(v, false) : "<nil>");
}

static int f_unix_epoch(te_render_value **out, te_render_call *call, sp_args a,
                        size_t n, void *p, te_error *err)
{
	char num[32];
	struct gtime t;

	(void)call;
	(void)n;
	(void)p;
	if (want_time(a[0], err) < 0)
		return err->code;
	time_of(a[0], &t);
	snprintf(num, sizeof(num), "%lld", (long long)t.sec);
	return sp_ret(out, te_render_value_string(num, strlen(num)), err);
}

/* Time.Add: the wall clock and the monotonic reading move together */
static void time_add(struct gtime *t, int64_t d)
{
	int64_t ns = t->nsec + d % 1000000000;

	t->sec += d / 1000000000 + floor_div(ns, 1000000000);
	t->nsec = ns - floor_div(ns, 1000000000) * 1000000000;
	if (t->has_mono)
		t->mono += d;
}

/* dateModify DURATION T (payload: must) */
static int f_date_modify(te_render_value **out, te_render_call *call, sp_args a,
                         size_t n, void *p, te_error *err)
{
	struct gtime t;
	int64_t d;

	(void)call;
	(void)n;
	if (WANT_STR(a[0]) < 0 || want_time(a[1], err) < 0)
		return err->code;
	time_of(a[1], &t);
	if (sp_parse_duration(a[0]->u.s.ptr, a[0]->u.s.len, &d, err) < 0) {
		if (p) /* mustDateModify: the error; time.Time{} unused */
			return err->code;
		*err = (te_error)TE_ERROR_INIT;
		return sp_ret_ref(out, a[1], err);
	}
	time_add(&t, d);
	return time_ret(out, &t, err);
}

/* ago T: time.Since(T) rounded to the second */
static int f_ago(te_render_value **out, te_render_call *call, sp_args a,
                 size_t n, void *p, te_error *err)
{
	te_buf b = TE_BUF_INIT(sp_out_max(call));
	struct gtime now, t;
	int64_t d, r;

	(void)n;
	(void)p;
	time_now(&now);
	if (is_time(a[0]) || (a[0] && a[0]->kind == TE_RENDER_INT))
		time_arg(a[0], &t);
	else
		t = now;
	d = (now.sec - t.sec) * 1000000000 + (now.nsec - t.nsec);
	if (t.has_mono)
		d = now.mono - t.mono;
	/* Duration.Round(time.Second) */
	r = d % 1000000000;
	if (r < 0)
		r = -r;
	if (d < 0)
		d = r + r < 1000000000 ? d + r : d - 1000000000 + r;
	else
		d = r + r < 1000000000 ? d - r : d + 1000000000 - r;
	sp_duration_string(&b, d, err);
	return sp_ret_buf(out, &b, err);
}

/* ---- Parse (time/format.go's parse, into Local) ---- */

static const char *const short_days[] = {"Sun", "Mon", "Tue", "Wed",
                                         "Thu", "Fri", "Sat"};

/* A cursor over the value being parsed. */
struct pv {
	const char *s;
	size_t n;
};

static void pv_adv(struct pv *v, size_t k)
{
	v->s += k;
	v->n -= k;
}

static bool pv_digit(const struct pv *v, size_t i)
{
	return i < v->n && v->s[i] >= '0' && v->s[i] <= '9';
}

/* time's atoi: an optional sign and decimal digits, nothing after */
static bool t_atoi(const char *s, size_t n, int64_t *out)
{
	bool neg = false;
	uint64_t x = 0;
	size_t i = 0;

	if (n && (s[0] == '-' || s[0] == '+'))
		neg = s[i++] == '-';
	if (i == n)
		return false;
	for (; i < n; i++) {
		if (s[i] < '0' || s[i] > '9' || x > ((uint64_t)1 << 63) / 10)
			return false;
		x = x * 10 + (uint64_t)(s[i] - '0');
		if (x > (uint64_t)1 << 63)
			return false;
	}
	*out = neg ? -(int64_t)x : (int64_t)x;
	return true;
}

/* getnum / getnum3 */
static bool getnum(struct pv *v, bool fixed, int64_t *out)
{
	if (!pv_digit(v, 0))
		return false;
	if (!pv_digit(v, 1)) {
		if (fixed)
			return false;
		*out = v->s[0] - '0';
		pv_adv(v, 1);
		return true;
	}
	*out = (v->s[0] - '0') * 10 + (v->s[1] - '0');
	pv_adv(v, 2);
	return true;
}

static bool getnum3(struct pv *v, bool fixed, int64_t *out)
{
	size_t i;
	int64_t x = 0;

	for (i = 0; i < 3 && pv_digit(v, i); i++)
		x = x * 10 + (v->s[i] - '0');
	if (i == 0 || (fixed && i != 3))
		return false;
	*out = x;
	pv_adv(v, i);
	return true;
}

/* lookup: a name of tab, case-insensitively (ASCII) */
static bool name_lookup(const char *const *tab, size_t n, size_t cut,
                        struct pv *v, int64_t *out)
{
	size_t i, k, l;

	for (i = 0; i < n; i++) {
		l = cut ? cut : strlen(tab[i]);
		if (v->n < l)
			continue;
		for (k = 0; k < l; k++) {
			char a = v->s[k], b = tab[i][k];

			if (a >= 'A' && a <= 'Z')
				a = (char)(a + 32);
			if (b >= 'A' && b <= 'Z')
				b = (char)(b + 32);
			if (a != b)
				break;
		}
		if (k == l) {
			*out = (int64_t)i;
			pv_adv(v, l);
			return true;
		}
	}
	return false;
}

static bool space_skip(struct pv *v)
{
	while (v->n && v->s[0] == ' ')
		pv_adv(v, 1);
	return true;
}

/* skip: the layout's literal text; spaces match runs of spaces */
static bool skip_literal(struct pv *v, const char *p, size_t pn)
{
	while (pn > 0) {
		if (p[0] == ' ') {
			if (v->n && v->s[0] != ' ')
				return false;
			while (pn && p[0] == ' ')
				p++, pn--;
			space_skip(v);
			continue;
		}
		if (!v->n || v->s[0] != p[0])
			return false;
		p++, pn--;
		pv_adv(v, 1);
	}
	return true;
}

/* parseNanoseconds: the fraction with its separator, nbytes long */
static bool parse_nanos(const struct pv *v, size_t nbytes, int64_t *ns,
                        const char **range)
{
	size_t i;

	if (v->s[0] != '.' && v->s[0] != ',')
		return false;
	if (nbytes > 10)
		nbytes = 10;
	if (!t_atoi(v->s + 1, nbytes - 1, ns))
		return false;
	if (*ns < 0) {
		*range = "fractional second";
		return true;
	}
	for (i = 0; i < 10 - nbytes; i++)
		*ns *= 10;
	return true;
}

/* parseSignedOffset / parseTimeZone */
static size_t signed_offset(const char *s, size_t n)
{
	size_t i = 1;
	uint64_t x = 0;

	if (n == 0 || (s[0] != '-' && s[0] != '+'))
		return 0;
	while (i < n && s[i] >= '0' && s[i] <= '9') {
		if (x > ((uint64_t)1 << 63) / 10)
			return 0;
		x = x * 10 + (uint64_t)(s[i++] - '0');
	}
	if (i == 1 || x > 23)
		return 0;
	return i;
}

static size_t zone_name_len(const char *s, size_t n)
{
	size_t up = 0;

	if (n < 3)
		return 0;
	if (n >= 4 && (!memcmp(s, "ChST", 4) || !memcmp(s, "MeST", 4)))
		return 4;
	if (!memcmp(s, "GMT", 3))
		return n == 3 ? 3 : 3 + signed_offset(s + 3, n - 3);
	if (s[0] == '+' || s[0] == '-')
		return signed_offset(s, n);
	while (up < 6 && up < n && s[up] >= 'A' && s[up] <= 'Z')
		up++;
	if (up == 5 && s[4] == 'T')
		return 5;
	if (up == 4 && (s[3] == 'T' || !memcmp(s, "WITA", 4)))
		return 4;
	return up == 3 ? 3 : 0;
}

struct pstate {
	int64_t year, month, day, yday, hour, min, sec, nsec;
	int zone_off; /* -1: none */
	bool utc, am, pm;
	char zname[16];
	size_t zname_len;
	const char *range;
};

/* One layout element; false: Go's errBad. */
static bool parse_std(struct pstate *st, const struct chunk *k,
                      const char *rest, size_t rest_n, struct pv *v)
{
	struct pv hold = *v;
	int64_t x, hr, mm, ss;
	size_t l;
	char sign;

	switch (k->std) {
	case S_YEAR:
		if (v->n < 2)
			return false;
		if (!t_atoi(v->s, 2, &x))
			return false;
		pv_adv(v, 2);
		st->year = x >= 69 ? x + 1900 : x + 2000;
		return true;
	case S_LONGYEAR:
		if (v->n < 4 || !pv_digit(v, 0))
			return false;
		x = 0;
		pv_adv(v, 4);
		if (!t_atoi(hold.s, 4, &x))
			return false;
		st->year = x;
		return true;
	case S_MONTH:
	case S_LONGMONTH:
		if (!name_lookup(month_names, 12, k->std == S_MONTH ? 3 : 0, v,
		                 &x))
			return false;
		st->month = x + 1;
		return true;
	case S_NUMMONTH:
	case S_ZEROMONTH:
		if (!getnum(v, k->std == S_ZEROMONTH, &st->month))
			return false;
		if (st->month <= 0 || st->month > 12)
			st->range = "month";
		return true;
	case S_WEEKDAY:
		return name_lookup(short_days, 7, 0, v, &x);
	case S_LONGWEEKDAY:
		return name_lookup(day_names, 7, 0, v, &x);
	case S_DAY:
	case S_UNDERDAY:
	case S_ZERODAY:
		if (k->std == S_UNDERDAY && v->n && v->s[0] == ' ')
			pv_adv(v, 1);
		return getnum(v, k->std == S_ZERODAY, &st->day);
	case S_UNDERYEARDAY:
	case S_ZEROYEARDAY:
		for (l = 0; l < 2; l++)
			if (k->std == S_UNDERYEARDAY && v->n && v->s[0] == ' ')
				pv_adv(v, 1);
		return getnum3(v, k->std == S_ZEROYEARDAY, &st->yday);
	case S_HOUR:
		x = getnum(v, false, &st->hour);
		if (st->hour < 0 || st->hour >= 24)
			st->range = "hour";
		return x;
	case S_HOUR12:
	case S_ZEROHOUR12:
		x = getnum(v, k->std == S_ZEROHOUR12, &st->hour);
		if (st->hour < 0 || st->hour > 12)
			st->range = "hour";
		return x;
	case S_MINUTE:
	case S_ZEROMINUTE:
		x = getnum(v, k->std == S_ZEROMINUTE, &st->min);
		if (st->min < 0 || st->min >= 60)
			st->range = "minute";
		return x;
	case S_SECOND:
	case S_ZEROSECOND:
		if (!getnum(v, k->std == S_ZEROSECOND, &st->sec))
			return false;
		if (st->sec < 0 || st->sec >= 60) {
			st->range = "second";
			return true;
		}
		/* a fraction right after the seconds, unless the layout
		 * has one next */
		if (v->n >= 2 && (v->s[0] == '.' || v->s[0] == ',') &&
		    pv_digit(v, 1)) {
			struct chunk nk = next_std(rest, rest_n);

			if (nk.std == S_FRAC0 || nk.std == S_FRAC9)
				return true;
			for (l = 2; pv_digit(v, l); l++)
				;
			x = parse_nanos(v, l, &st->nsec, &st->range);
			pv_adv(v, l);
			return x;
		}
		return true;
	case S_PM:
	case S_PM_LOWER:
		if (v->n < 2)
			return false;
		pv_adv(v, 2);
		if (!memcmp(hold.s, k->std == S_PM ? "PM" : "pm", 2))
			st->pm = true;
		else if (!memcmp(hold.s, k->std == S_PM ? "AM" : "am", 2))
			st->am = true;
		else
			return false;
		return true;
	case S_TZNUM:
		if (k->iso && !k->secs && v->n && v->s[0] == 'Z') {
			pv_adv(v, 1);
			st->utc = true;
			return true;
		}
		if (k->colon && !k->secs) {
			if (v->n < 6 || v->s[3] != ':')
				return false;
			hold = *v;
			pv_adv(v, 6);
			if (!t_atoi(hold.s + 1, 2, &hr) ||
			    !t_atoi(hold.s + 4, 2, &mm))
				return false;
			ss = 0;
		} else if (k->shrt) {
			if (v->n < 3)
				return false;
			hold = *v;
			pv_adv(v, 3);
			if (!t_atoi(hold.s + 1, 2, &hr))
				return false;
			mm = ss = 0;
		} else if (k->colon) {
			if (v->n < 9 || v->s[3] != ':' || v->s[6] != ':')
				return false;
			hold = *v;
			pv_adv(v, 9);
			if (!t_atoi(hold.s + 1, 2, &hr) ||
			    !t_atoi(hold.s + 4, 2, &mm) ||
			    !t_atoi(hold.s + 7, 2, &ss))
				return false;
		} else if (k->secs) {
			if (v->n < 7)
				return false;
			hold = *v;
			pv_adv(v, 7);
			if (!t_atoi(hold.s + 1, 2, &hr) ||
			    !t_atoi(hold.s + 3, 2, &mm) ||
			    !t_atoi(hold.s + 5, 2, &ss))
				return false;
		} else {
			if (v->n < 5)
				return false;
			hold = *v;
			pv_adv(v, 5);
			if (!t_atoi(hold.s + 1, 2, &hr) ||
			    !t_atoi(hold.s + 3, 2, &mm))
				return false;
			ss = 0;
		}
		sign = hold.s[0];
		st->zone_off = (int)((hr * 60 + mm) * 60 + ss);
		if (sign == '-')
			st->zone_off = -st->zone_off;
		else if (sign != '+')
			return false;
		return true;
	case S_TZ:
		if (v->n >= 3 && !memcmp(v->s, "UTC", 3)) {
			st->utc = true;
			pv_adv(v, 3);
			return true;
		}
		l = zone_name_len(v->s, v->n);
		if (l == 0 || l >= sizeof(st->zname))
			return false;
		memcpy(st->zname, v->s, l);
		st->zname_len = l;
		pv_adv(v, l);
		return true;
	case S_FRAC0:
		if (v->n < 1 + k->digits)
			return false;
		x = parse_nanos(v, 1 + k->digits, &st->nsec, &st->range);
		pv_adv(v, 1 + k->digits);
		return x;
	case S_FRAC9:
		if (v->n < 2 || (v->s[0] != '.' && v->s[0] != ',') ||
		    !pv_digit(v, 1))
			return true;
		for (l = 0; l < 9 && pv_digit(v, l + 1); l++)
			;
		x = parse_nanos(v, 1 + l, &st->nsec, &st->range);
		pv_adv(v, 1 + l);
		return x;
	default:
		return true;
	}
}

static void parse_error(te_error *err, const char *layout, size_t ln,
                        const char *value, size_t vn, const char *velem,
                        size_t ven, const char *lelem, size_t len,
                        const char *msg, const char *extra, size_t extra_n)
{
	te_buf b = TE_BUF_INIT(TE_RENDER_MSG_VALUE_MAX);
	te_error e2 = TE_ERROR_INIT;

	te_buf_puts(&b, "parsing time ", &e2);
	sp_time_quote(&b, value, vn, &e2);
	if (msg) {
		te_buf_puts(&b, msg, &e2);
		if (extra)
			sp_time_quote(&b, extra, extra_n, &e2);
	} else {
		te_buf_puts(&b, " as ", &e2);
		sp_time_quote(&b, layout, ln, &e2);
		te_buf_puts(&b, ": cannot parse ", &e2);
		sp_time_quote(&b, velem, ven, &e2);
		te_buf_puts(&b, " as ", &e2);
		sp_time_quote(&b, lelem, len, &e2);
	}
	te_error_set(err, e2.code ? e2.code : TE_EINVALID, "%s",
	             e2.code ? e2.msg : b.ptr);
	te_buf_dispose(&b);
}

/* Date(y, m, d, h, mi, s, ns, loc) for the location of t (fixed or
 * named): the offset found at the local reading, then at the instant */
static void time_date(struct gtime *t, const struct pstate *st)
{
	int64_t unix =
	    days_from_civil(st->year, (int)st->month, (int)st->day) * DAY +
	    st->hour * 3600 + st->min * 60 + st->sec;
	int off;

	t->nsec = st->nsec;
	if (t->fixed) {
		t->sec = unix - t->fixed_off;
		return;
	}
	off = zone_named(t->zone, t->zone_len, unix).off;
	if (off)
		off = zone_named(t->zone, t->zone_len, unix - off).off;
	t->sec = unix - off;
}

/* Location.lookupName on Local: the offset of a zone named name. */
static bool lookup_name(const char *name, size_t nl, int64_t unix, int *off)
{
	struct tz z;
	size_t i;
	bool found = false;

	if (!tz_load(&z, "Local", 5))
		return false;
	for (i = 0; i < z.nz && !found; i++)
		if (strlen(z.zones[i].abbr) == nl &&
		    !memcmp(z.zones[i].abbr, name, nl)) {
			struct zone at = tz_lookup(&z, unix - z.zones[i].off);

			if (!strcmp(at.abbr, z.zones[i].abbr)) {
				*off = at.off;
				found = true;
			}
		}
	for (i = 0; i < z.nz && !found; i++)
		if (strlen(z.zones[i].abbr) == nl &&
		    !memcmp(z.zones[i].abbr, name, nl)) {
			*off = z.zones[i].off;
			found = true;
		}
	tz_free(&z);
	return found;
}

static const int days_before[] = {0,   31,  59,  90,  120, 151, 181,
                                  212, 243, 273, 304, 334, 365};

/* time.ParseInLocation(layout, value, time.Local); a fixed zone's name
 * goes to zbuf (16 bytes), which t->zone then points to. */
static int time_parse(struct gtime *t, char *zbuf, const char *layout,
                      size_t ln, const char *value, size_t vn, te_error *err)
{
	struct pstate st = {0,  -1,    -1,    -1,    0,   0, 0,   0,
	                    -1, false, false, false, {0}, 0, NULL};
	struct pv v = {value, vn};
	const char *l = layout;
	size_t n = ln;
	struct chunk k;
	int64_t m = 0, d = 0;
	int off = 0;

	memset(t, 0, sizeof(*t));
	for (;;) {
		k = next_std(l, n);
		if (!skip_literal(&v, l, k.pre)) {
			parse_error(err, layout, ln, value, vn, v.s, v.n, l,
			            k.pre, NULL, NULL, 0);
			return err->code;
		}
		if (k.std == S_NONE) {
			if (v.n) {
				parse_error(err, layout, ln, value, vn, NULL, 0,
				            NULL, 0, ": extra text: ", v.s,
				            v.n);
				return err->code;
			}
			break;
		}
		l += k.pre;
		n -= k.pre;
		if (!parse_std(&st, &k, l + k.len, n - k.len, &v) || st.range) {
			if (st.range) {
				te_buf msg = TE_BUF_INIT(64);

				te_buf_printf(&msg, err, ": %s out of range",
				              st.range);
				parse_error(err, layout, ln, value, vn, NULL, 0,
				            NULL, 0, msg.ptr, NULL, 0);
				te_buf_dispose(&msg);
				return err->code;
			}
			parse_error(err, layout, ln, value, vn, v.s, v.n, l,
			            k.len, NULL, NULL, 0);
			return err->code;
		}
		l += k.len;
		n -= k.len;
	}
	if (st.pm && st.hour < 12)
		st.hour += 12;
	else if (st.am && st.hour == 12)
		st.hour = 0;
	if (st.yday >= 0) {
		if (is_leap(st.year)) {
			if (st.yday == 31 + 29) {
				m = 2;
				d = 29;
			} else if (st.yday > 31 + 29) {
				st.yday--;
			}
		}
		if (st.yday < 1 || st.yday > 365) {
			parse_error(err, layout, ln, value, vn, NULL, 0, NULL,
			            0, ": day-of-year out of range", NULL, 0);
			return err->code;
		}
		if (m == 0) {
			m = (st.yday - 1) / 31 + 1;
			if (days_before[m] < st.yday)
				m++;
			d = st.yday - days_before[m - 1];
		}
		if (st.month >= 0 && st.month != m) {
			parse_error(err, layout, ln, value, vn, NULL, 0, NULL,
			            0, ": day-of-year does not match month",
			            NULL, 0);
			return err->code;
		}
		st.month = m;
		if (st.day >= 0 && st.day != d) {
			parse_error(err, layout, ln, value, vn, NULL, 0, NULL,
			            0, ": day-of-year does not match day", NULL,
			            0);
			return err->code;
		}
		st.day = d;
	} else {
		if (st.month < 0)
			st.month = 1;
		if (st.day < 0)
			st.day = 1;
	}
	if (st.day < 1 || st.day > days_in((int)st.month, st.year)) {
		parse_error(err, layout, ln, value, vn, NULL, 0, NULL, 0,
		            ": day out of range", NULL, 0);
		return err->code;
	}
	t->zone = "Local";
	t->zone_len = 5;
	if (st.utc) {
		t->zone = "UTC";
		t->zone_len = 3;
		time_date(t, &st);
		return 0;
	}
	if (st.zone_off != -1) {
		struct zone lz;

		t->zone = "UTC";
		t->zone_len = 3;
		time_date(t, &st);
		t->sec -= st.zone_off;
		lz = zone_named("Local", 5, t->sec);
		t->zone = "Local";
		t->zone_len = 5;
		if (lz.off == st.zone_off &&
		    (st.zname_len == 0 ||
		     (strlen(lz.abbr) == st.zname_len &&
		      !memcmp(lz.abbr, st.zname, st.zname_len))))
			return 0;
		t->fixed = true;
		t->fixed_off = st.zone_off;
		memcpy(zbuf, st.zname, st.zname_len);
		t->zone = zbuf;
		t->zone_len = st.zname_len;
		return 0;
	}
	if (st.zname_len) {
		t->zone = "UTC";
		t->zone_len = 3;
		time_date(t, &st);
		if (lookup_name(st.zname, st.zname_len, t->sec, &off)) {
			t->sec -= off;
			t->zone = "Local";
			t->zone_len = 5;
			return 0;
		}
		off = 0;
		if (st.zname_len > 3 && !memcmp(st.zname, "GMT", 3)) {
			int64_t h = 0;

			t_atoi(st.zname + 3, st.zname_len - 3, &h);
			off = (int)h * 3600;
		}
		t->fixed = true;
		t->fixed_off = off;
		memcpy(zbuf, st.zname, st.zname_len);
		t->zone = zbuf;
		t->zone_len = st.zname_len;
		return 0;
	}
	time_date(t, &st);
	return 0;
}

/* toDate LAYOUT VALUE (payload: must): Go's zero time on an error. */
static int f_to_date(te_render_value **out, te_render_call *call, sp_args a,
                     size_t n, void *p, te_error *err)
{
	struct gtime t;
	char zname[16];
	int rc;

	(void)n;
	if (WANT_STR(a[0]) < 0 || WANT_STR(a[1]) < 0 ||
	    sp_steps(call, (a[0]->u.s.len + a[1]->u.s.len) / 8, err) < 0)
		return err->code;
	rc = time_parse(&t, zname, a[0]->u.s.ptr, a[0]->u.s.len, a[1]->u.s.ptr,
	                a[1]->u.s.len, err);
	if (rc < 0) {
		if (p || err->code == TE_ENOMEM)
			return err->code;
		/* time.Time{}: January 1, year 1, 00:00:00 UTC */
		*err = (te_error)TE_ERROR_INIT;
		memset(&t, 0, sizeof(t));
		t.sec = -62135596800;
		t.zone = "UTC";
		t.zone_len = 3;
	}
	return time_ret(out, &t, err);
}

/* ---- time.Time's methods ---- */

static int m_string(te_render_value **out, te_render_call *call, sp_args a,
                    size_t n, void *p, te_error *err)
{
	te_buf b = TE_BUF_INIT((size_t)1 << 20);
	struct gtime t;

	(void)a;
	(void)n;
	(void)p;
	time_of(call->receiver, &t);
	time_string(&b, &t, err);
	return sp_ret_buf(out, &b, err);
}

/* time.Time.MarshalJSON's text (RFC 3339 with nanoseconds), for toJson */
static int m_json(te_render_value **out, te_render_call *call, sp_args a,
                  size_t n, void *p, te_error *err)
{
	static const char layout[] = "2006-01-02T15:04:05.999999999Z07:00";
	te_buf b = TE_BUF_INIT((size_t)1 << 20);
	struct gtime t;

	(void)a;
	(void)n;
	(void)p;
	time_of(call->receiver, &t);
	format_in(&b, layout, sizeof(layout) - 1, &t, NULL, 0, err);
	return sp_ret_buf(out, &b, err);
}

static int m_format(te_render_value **out, te_render_call *call, sp_args a,
                    size_t n, void *p, te_error *err)
{
	te_buf b = TE_BUF_INIT(sp_out_max(call));
	struct gtime t;

	(void)n;
	(void)p;
	if (WANT_STR(a[0]) < 0)
		return err->code;
	time_of(call->receiver, &t);
	format_in(&b, a[0]->u.s.ptr, a[0]->u.s.len, &t, NULL, 0, err);
	return sp_ret_buf(out, &b, err);
}

static int m_utc(te_render_value **out, te_render_call *call, sp_args a,
                 size_t n, void *p, te_error *err)
{
	struct gtime t;

	(void)a;
	(void)n;
	(void)p;
	time_of(call->receiver, &t);
	t.zone = "UTC";
	t.zone_len = 3;
	t.has_mono = t.fixed = false; /* setLoc strips the reading */
	return time_ret(out, &t, err);
}

enum tpart {
	P_UNIX,
	P_UNIXNANO,
	P_YEAR,
	P_MONTH,
	P_DAY,
	P_HOUR,
	P_MINUTE,
	P_SECOND,
	P_NANO,
	P_YEARDAY,
	P_WEEKDAY
};

static int m_part(te_render_value **out, te_render_call *call, sp_args a,
                  size_t n, void *p, te_error *err)
{
	struct gtime t;
	struct zone zn;
	struct civil c;
	int64_t v;

	(void)a;
	(void)n;
	time_of(call->receiver, &t);
	zn = zone_of(&t);
	civil_from(t.sec + zn.off, &c);
	switch ((enum tpart)(uintptr_t)p) {
	case P_UNIX:
		v = t.sec;
		break;
	case P_UNIXNANO:
		v = t.sec * 1000000000 + t.nsec;
		break;
	case P_YEAR:
		v = c.year;
		break;
	case P_MONTH:
		return sp_ret(
		    out,
		    te_render_value_string(month_names[c.month - 1],
		                           strlen(month_names[c.month - 1])),
		    err);
	case P_DAY:
		v = c.day;
		break;
	case P_HOUR:
		v = c.hour;
		break;
	case P_MINUTE:
		v = c.min;
		break;
	case P_SECOND:
		v = c.sec;
		break;
	case P_NANO:
		v = t.nsec;
		break;
	case P_YEARDAY:
		v = c.yday;
		break;
	default:
		return sp_ret(out,
		              te_render_value_string(day_names[c.wday],
		                                     strlen(day_names[c.wday])),
		              err);
	}
	return sp_ret(out, te_render_value_int(v), err);
}

#define M(name, fn, min, max, payload)                                         \
	{                                                                      \
		(name), (fn), NULL, (min), (max),                              \
		    (void *)(uintptr_t)(payload), 0                            \
	}
static const struct te_func time_items[] = {
    M(" json", m_json, 0, 0, 0),
    M(" kind", NULL, 0, 0, "struct"),
    M(" type", NULL, 0, 0, "time.Time"),
    M("Day", m_part, 0, 0, P_DAY),
    M("Format", m_format, 1, 1, 0),
    M("Hour", m_part, 0, 0, P_HOUR),
    M("Minute", m_part, 0, 0, P_MINUTE),
    M("Month", m_part, 0, 0, P_MONTH),
    M("Nanosecond", m_part, 0, 0, P_NANO),
    M("Second", m_part, 0, 0, P_SECOND),
    M("String", m_string, 0, 0, 0),
    M("UTC", m_utc, 0, 0, 0),
    M("Unix", m_part, 0, 0, P_UNIX),
    M("UnixNano", m_part, 0, 0, P_UNIXNANO),
    M("Weekday", m_part, 0, 0, P_WEEKDAY),
    M("Year", m_part, 0, 0, P_YEAR),
    M("YearDay", m_part, 0, 0, P_YEARDAY),
};
#undef M
static const te_render_funcs time_methods = {
    (struct te_func *)time_items, sizeof(time_items) / sizeof(time_items[0]),
    sizeof(time_items) / sizeof(time_items[0])};

const struct sp_entry te_render__sp_date[] = {
    {"ago", f_ago, 1, 1, NULL},
    {"date", f_date, 2, 2, "date"},
    {"dateInZone", f_date, 3, 3, "zone"},
    {"dateModify", f_date_modify, 2, 2, NULL},
    {"date_in_zone", f_date, 3, 3, "zone"},
    {"date_modify", f_date_modify, 2, 2, NULL},
    {"htmlDate", f_date, 1, 1, "html"},
    {"htmlDateInZone", f_date, 2, 2, "htmlZ"},
    {"mustDateModify", f_date_modify, 2, 2, "must"},
    {"must_date_modify", f_date_modify, 2, 2, "must"},
    {"mustToDate", f_to_date, 2, 2, "must"},
    {"now", f_now, 0, 0, NULL},
    {"toDate", f_to_date, 2, 2, NULL},
    {"unixEpoch", f_unix_epoch, 1, 1, NULL},
};
const size_t te_render__sp_date_len =
    sizeof(te_render__sp_date) / sizeof(te_render__sp_date[0]);
