/*
 * sprig_semver.c - Sprig v3.2.3's semverCompare and semver (semver.go)
 * over github.com/Masterminds/semver/v3 (v3.2: NewVersion, NewConstraint,
 * Constraints.Check; https://github.com/Masterminds/semver).
 *
 * The library parses with regular expressions (Go's RE2, which picks the
 * match a backtracking search finds first); the matchers below follow
 * those expressions piece by piece: the version pattern, the constraint
 * "op version" pattern whose operator alternation is tried in the
 * library's order (= "" != > < >= => <= =< ~ ~> ^), the validity pattern
 * and the "A - B" range rewrite.  Each piece is greedy and what may follow
 * it can never start with what it would give back, so the greedy match is
 * the one the backtracking search finds.
 */
#include <inttypes.h>
#include <stdlib.h>
#include <string.h>

#include "render/sprig_int.h"

/* working copies of a constraint: a few times its length at most */
#define SV_TEXT_MAX ((size_t)256 << 20)

/* ---- pieces of the patterns ---- */

static bool re_space(char c)
{
	return c == ' ' || c == '\t' || c == '\n' || c == '\f' || c == '\r';
}

static bool re_digit(char c)
{
	return c >= '0' && c <= '9';
}

/* [0-9A-Za-z\-] */
static bool re_ident(char c)
{
	return re_digit(c) || (c >= 'a' && c <= 'z') ||
	       (c >= 'A' && c <= 'Z') || c == '-';
}

/* [0-9|x|X|\*]: the class holds '|' too */
static bool re_cvchar(char c)
{
	return re_digit(c) || c == '|' || c == 'x' || c == 'X' || c == '*';
}

static size_t re_skip_space(const char *s, size_t n, size_t i)
{
	while (i < n && re_space(s[i]))
		i++;
	return i;
}

/* (SEP[0-9A-Za-z\-]+(\.[0-9A-Za-z\-]+)*)? at i: its end (i when absent) */
static size_t re_dotted(const char *s, size_t n, size_t i, char sep)
{
	size_t j, k;

	if (i >= n || s[i] != sep || i + 1 >= n || !re_ident(s[i + 1]))
		return i;
	for (j = i + 1; j < n && re_ident(s[j]); j++)
		;
	while (j + 1 < n && s[j] == '.' && re_ident(s[j + 1])) {
		for (k = j + 1; k < n && re_ident(s[k]); k++)
			;
		j = k;
	}
	return j;
}

/* The groups of a version-like match (offsets into the text). */
struct vmatch {
	size_t start, end;     /* the whole match */
	size_t cv;             /* the version's start ('v' included) */
	size_t maj, maj_end;   /* digits (or [0-9|xX*]) */
	size_t min, min_end;   /* ".N", empty when absent */
	size_t pat, pat_end;   /* ".N" */
	size_t pre, pre_end;   /* "-a.b" */
	size_t meta, meta_end; /* "+a.b" */
};

/* v?(C+)(\.C+)?(\.C+)?(-pre)?(\+meta)? at i, C the digit class or the
 * constraint class; false when it does not match. */
static bool re_version(const char *s, size_t n, size_t i, bool cv,
                       struct vmatch *m)
{
	bool (*cls)(char) = cv ? re_cvchar : re_digit;
	size_t j;

	m->start = m->cv = i;
	if (i < n && s[i] == 'v' && i + 1 < n && cls(s[i + 1]))
		i++;
	if (i >= n || !cls(s[i]))
		return false;
	m->maj = i;
	while (i < n && cls(s[i]))
		i++;
	m->maj_end = m->min = m->min_end = i;
	if (i + 1 < n && s[i] == '.' && cls(s[i + 1])) {
		for (j = i + 1; j < n && cls(s[j]); j++)
			;
		m->min_end = i = j;
	}
	m->pat = m->pat_end = i;
	if (m->min_end > m->min && i + 1 < n && s[i] == '.' && cls(s[i + 1])) {
		for (j = i + 1; j < n && cls(s[j]); j++)
			;
		m->pat_end = i = j;
	}
	m->pre = i;
	m->pre_end = i = re_dotted(s, n, i, '-');
	m->meta = i;
	m->meta_end = i = re_dotted(s, n, i, '+');
	m->end = i;
	return true;
}

/* The operators in the library's alternation order. */
static const char *const ops[] = {
    "=", "", "!=", ">", "<", ">=", "=>", "<=", "=<", "~", "~>", "^"};
#define NOPS (sizeof(ops) / sizeof(ops[0]))

/* (op)\s*(cv) at i: the first operator after which a version matches. */
static bool re_op_cv(const char *s, size_t n, size_t i, size_t *op,
                     struct vmatch *m)
{
	size_t k, l;

	for (k = 0; k < NOPS; k++) {
		l = strlen(ops[k]);
		if (l > n - i || memcmp(s + i, ops[k], l) != 0)
			continue;
		if (re_version(s, n, re_skip_space(s, n, i + l), true, m)) {
			*op = k;
			m->start = i;
			return true;
		}
	}
	return false;
}

/* validConstraintRegex: items separated by spaces or a comma. */
static bool re_valid(const char *s, size_t n)
{
	struct vmatch m;
	size_t i = re_skip_space(s, n, 0), j, op;

	for (;;) {
		if (!re_op_cv(s, n, i, &op, &m))
			return false;
		j = re_skip_space(s, n, m.end);
		if (j == n)
			return true;
		if (s[j] == ',')
			j = re_skip_space(s, n, j + 1);
		else if (j == m.end)
			return false;
		i = j;
	}
}

/* ---- versions (version.go) ---- */

struct sv {
	uint64_t major, minor, patch;
	char *pre, *meta, *orig; /* NUL-terminated, owned */
};

static void sv_free(struct sv *v)
{
	free(v->pre);
	free(v->meta);
	free(v->orig);
	memset(v, 0, sizeof(*v));
}

static char *dup_n(const char *s, size_t n)
{
	char *d = malloc(n + 1);

	if (d) {
		memcpy(d, s, n);
		d[n] = '\0';
	}
	return d;
}

/* strconv.ParseUint(s, 10, 64): false on a syntax or range error. */
static bool parse_u64(const char *s, size_t n, uint64_t *out)
{
	uint64_t v = 0;
	size_t i;

	if (n == 0)
		return false;
	for (i = 0; i < n; i++) {
		if (!re_digit(s[i]))
			return false;
		if (v > (UINT64_MAX - (uint64_t)(s[i] - '0')) / 10)
			return false;
		v = v * 10 + (uint64_t)(s[i] - '0');
	}
	*out = v;
	return true;
}

static int seg_error(const char *s, size_t n, te_error *err)
{
	bool digits = true;
	size_t i;

	for (i = 0; i < n; i++)
		digits = digits && re_digit(s[i]);
	return te_error_set(err, TE_EINVALID,
	                    "Error parsing version segment: strconv.ParseUint: "
	                    "parsing \"%.*s\": %s",
	                    (int)n, s,
	                    digits ? "value out of range" : "invalid syntax");
}

/* semver.NewVersion */
static int sv_parse(struct sv *v, const char *s, size_t n, te_error *err)
{
	struct vmatch m;
	size_t i, j;

	memset(v, 0, sizeof(*v));
	if (!re_version(s, n, 0, false, &m) || m.end != n)
		return te_error_set(err, TE_EINVALID,
		                    "Invalid Semantic Version");
	if (!parse_u64(s + m.maj, m.maj_end - m.maj, &v->major))
		return seg_error(s + m.maj, m.maj_end - m.maj, err);
	if (m.min_end > m.min &&
	    !parse_u64(s + m.min + 1, m.min_end - m.min - 1, &v->minor))
		return seg_error(s + m.min + 1, m.min_end - m.min - 1, err);
	if (m.pat_end > m.pat &&
	    !parse_u64(s + m.pat + 1, m.pat_end - m.pat - 1, &v->patch))
		return seg_error(s + m.pat + 1, m.pat_end - m.pat - 1, err);
	/* validatePrerelease: numeric parts have no leading zero */
	for (i = m.pre + 1; m.pre_end > m.pre && i < m.pre_end; i = j + 1) {
		bool num = true;

		for (j = i; j < m.pre_end && s[j] != '.'; j++)
			num = num && re_digit(s[j]);
		if (num && j - i > 1 && s[i] == '0')
			return te_error_set(err, TE_EINVALID,
			                    "Version segment starts with 0");
	}
	v->pre = dup_n(s + m.pre + (m.pre_end > m.pre),
	               m.pre_end - m.pre - (m.pre_end > m.pre));
	v->meta = dup_n(s + m.meta + (m.meta_end > m.meta),
	                m.meta_end - m.meta - (m.meta_end > m.meta));
	v->orig = dup_n(s, n);
	if (!v->pre || !v->meta || !v->orig) {
		sv_free(v);
		return te_error_set(err, TE_ENOMEM, "out of memory");
	}
	return 0;
}

static int cmp_u64(uint64_t a, uint64_t b)
{
	return a < b ? -1 : a > b;
}

/* comparePrePart */
static int pre_part_cmp(const char *s, size_t sn, const char *o, size_t on)
{
	uint64_t si = 0, oi = 0;
	bool sok, ook;
	int c;

	if (sn == on && memcmp(s, o, sn) == 0)
		return 0;
	if (sn == 0)
		return -1;
	if (on == 0)
		return 1;
	ook = parse_u64(o, on, &oi);
	sok = parse_u64(s, sn, &si);
	if (!ook && !sok) {
		c = memcmp(s, o, sn < on ? sn : on);
		if (c == 0)
			c = sn < on ? -1 : 1;
		return c > 0 ? 1 : -1;
	}
	if (!ook)
		return -1;
	if (!sok)
		return 1;
	return si > oi ? 1 : -1;
}

/* comparePrerelease: dot-separated parts, a missing part is "". */
static int pre_cmp(const char *a, const char *b)
{
	const char *ea, *eb;
	int d;

	for (;;) {
		ea = a ? strchr(a, '.') : NULL;
		eb = b ? strchr(b, '.') : NULL;
		if (!a && !b)
			return 0;
		d = pre_part_cmp(
		    a ? a : "", a ? (ea ? (size_t)(ea - a) : strlen(a)) : 0,
		    b ? b : "", b ? (eb ? (size_t)(eb - b) : strlen(b)) : 0);
		if (d)
			return d;
		a = ea ? ea + 1 : NULL;
		b = eb ? eb + 1 : NULL;
	}
}

/* Version.Compare */
static int sv_cmp(const struct sv *v, const struct sv *o)
{
	int d = cmp_u64(v->major, o->major);

	if (!d)
		d = cmp_u64(v->minor, o->minor);
	if (!d)
		d = cmp_u64(v->patch, o->patch);
	if (d)
		return d;
	if (!*v->pre && !*o->pre)
		return 0;
	if (!*v->pre)
		return 1;
	if (!*o->pre)
		return -1;
	return pre_cmp(v->pre, o->pre);
}

/* ---- constraints (constraints.go) ---- */

enum cop { C_EQ, C_NE, C_GT, C_LT, C_GE, C_LE, C_TILDE, C_CARET };

struct con {
	enum cop op;
	struct sv v;
	bool dirty, minor_dirty, patch_dirty;
};

static enum cop op_kind(size_t k)
{
	static const enum cop kinds[NOPS] = {C_EQ, C_EQ,    C_NE,    C_GT,
	                                     C_LT, C_GE,    C_GE,    C_LE,
	                                     C_LE, C_TILDE, C_TILDE, C_CARET};
	return kinds[k];
}

static bool is_x(const char *s, size_t n)
{
	return n == 1 && (s[0] == 'x' || s[0] == '*' || s[0] == 'X');
}

/* parseConstraint on one found item. */
static int con_parse(struct con *c, const char *s, size_t n, te_error *err)
{
	struct vmatch m;
	te_buf ver = TE_BUF_INIT(SV_TEXT_MAX);
	te_error e2 = TE_ERROR_INIT;
	size_t op, i = re_skip_space(s, n, 0);

	memset(c, 0, sizeof(*c));
	if (!re_op_cv(s, n, i, &op, &m) || re_skip_space(s, n, m.end) != n)
		return te_error_set(err, TE_EINVALID,
		                    "improper constraint: %.*s", (int)n, s);
	c->op = op_kind(op);
	/* a wildcard or missing part: the rest becomes 0 */
	if (is_x(s + m.maj, m.maj_end - m.maj)) {
		c->dirty = true;
		te_buf_puts(&ver, "0.0.0", &e2);
	} else if (m.min_end == m.min ||
	           is_x(s + m.min + 1, m.min_end - m.min - 1)) {
		c->dirty = c->minor_dirty = true;
		te_buf_put(&ver, s + m.maj, m.maj_end - m.maj, &e2);
		te_buf_puts(&ver, ".0.0", &e2);
	} else if (m.pat_end == m.pat ||
	           is_x(s + m.pat + 1, m.pat_end - m.pat - 1)) {
		c->dirty = c->patch_dirty = true;
		te_buf_put(&ver, s + m.maj, m.min_end - m.maj, &e2);
		te_buf_puts(&ver, ".0", &e2);
	}
	if (c->dirty)
		te_buf_put(&ver, s + m.pre, m.pre_end - m.pre, &e2);
	else
		te_buf_put(&ver, s + m.cv, m.end - m.cv, &e2);
	if (e2.code) {
		te_buf_dispose(&ver);
		return te_error_set(err, e2.code, "%s", e2.msg);
	}
	if (sv_parse(&c->v, ver.ptr ? ver.ptr : "", ver.len, &e2) < 0) {
		te_buf_dispose(&ver);
		if (e2.code == TE_ENOMEM)
			return te_error_set(err, TE_ENOMEM, "out of memory");
		return te_error_set(err, TE_EINVALID,
		                    "constraint Parser Error");
	}
	te_buf_dispose(&ver);
	return 0;
}

/* The checks, without their error texts (Check drops them). */
static bool con_tilde(const struct sv *v, const struct con *c)
{
	if (*v->pre && !*c->v.pre)
		return false;
	if (sv_cmp(v, &c->v) < 0)
		return false;
	if (!c->v.major && !c->v.minor && !c->v.patch && !c->minor_dirty &&
	    !c->patch_dirty)
		return true;
	if (v->major != c->v.major)
		return false;
	return v->minor == c->v.minor || c->minor_dirty;
}

static bool con_check(const struct sv *v, const struct con *c)
{
	bool pre_only = *v->pre && !*c->v.pre;

	switch (c->op) {
	case C_NE:
		if (c->dirty) {
			if (pre_only)
				return false;
			if (c->v.major != v->major)
				return true;
			if (c->v.minor != v->minor && !c->minor_dirty)
				return true;
			if (c->minor_dirty)
				return false;
			if (c->v.patch != v->patch && !c->patch_dirty)
				return true;
			if (c->patch_dirty) {
				if (*v->pre || *c->v.pre)
					return pre_cmp(v->pre, c->v.pre) != 0;
				return false;
			}
		}
		return sv_cmp(v, &c->v) != 0;
	case C_GT:
		if (pre_only)
			return false;
		if (!c->dirty)
			return sv_cmp(v, &c->v) == 1;
		if (v->major != c->v.major)
			return v->major > c->v.major;
		if (c->minor_dirty)
			return false;
		if (c->patch_dirty)
			return v->minor > c->v.minor;
		return sv_cmp(v, &c->v) == 1;
	case C_LT:
		return !pre_only && sv_cmp(v, &c->v) < 0;
	case C_GE:
		return !pre_only && sv_cmp(v, &c->v) >= 0;
	case C_LE:
		if (pre_only)
			return false;
		if (!c->dirty)
			return sv_cmp(v, &c->v) <= 0;
		if (v->major > c->v.major)
			return false;
		return !(v->major == c->v.major && v->minor > c->v.minor &&
		         !c->minor_dirty);
	case C_TILDE:
		return con_tilde(v, c);
	case C_EQ:
		if (pre_only)
			return false;
		if (c->dirty)
			return con_tilde(v, c);
		return sv_cmp(v, &c->v) == 0;
	case C_CARET:
		if (pre_only || sv_cmp(v, &c->v) < 0)
			return false;
		if (c->v.major > 0 || c->minor_dirty)
			return v->major == c->v.major;
		if (v->major > 0)
			return false;
		if (c->v.minor > 0 || c->patch_dirty)
			return v->minor == c->v.minor;
		if (v->minor > 0)
			return false;
		return c->v.patch == v->patch;
	}
	return false;
}

/* rewriteRange: every "A - B" becomes ">= A, <= B" (each replacing the
 * first occurrence of its text, as strings.Replace does). */
static int rewrite_range(te_buf *out, const char *s, size_t n, te_error *err)
{
	te_buf cur = TE_BUF_INIT(SV_TEXT_MAX), next = TE_BUF_INIT(SV_TEXT_MAX);
	struct vmatch a, b;
	size_t i = 0, j, start;
	char *hit;

	te_buf_put(&cur, s, n, err);
	te_buf_put(&cur, "", 0, err);
	while (i < n && !err->code) {
		start = i;
		j = re_skip_space(s, n, i);
		if (!re_version(s, n, j, true, &a) || a.end >= n ||
		    !re_space(s[a.end]) ||
		    (j = re_skip_space(s, n, a.end)) >= n || s[j] != '-' ||
		    j + 1 >= n || !re_space(s[j + 1]) ||
		    !re_version(s, n, re_skip_space(s, n, j + 1), true, &b)) {
			i++;
			continue;
		}
		j = re_skip_space(s, n, b.end);
		/* the match is s[start, j): replace its first occurrence */
		hit = cur.ptr ? memmem(cur.ptr, cur.len, s + start, j - start)
		              : NULL;
		if (hit) {
			te_buf_clear(&next);
			te_buf_put(&next, cur.ptr, (size_t)(hit - cur.ptr),
			           err);
			te_buf_puts(&next, ">= ", err);
			te_buf_put(&next, s + a.cv, a.end - a.cv, err);
			te_buf_puts(&next, ", <= ", err);
			te_buf_put(&next, s + b.cv, b.end - b.cv, err);
			te_buf_put(&next, hit + (j - start),
			           cur.len - (size_t)(hit - cur.ptr) -
			               (j - start),
			           err);
			te_buf_clear(&cur);
			te_buf_put(&cur, next.ptr, next.len, err);
		}
		i = j > start ? j : start + 1;
	}
	te_buf_put(out, cur.ptr ? cur.ptr : "", cur.len, err);
	te_buf_dispose(&cur);
	te_buf_dispose(&next);
	return err->code;
}

/* NewConstraint(c).Check(v), with NewConstraint's errors. */
static int constraint_check(const char *s, size_t n, const struct sv *v,
                            bool *ok, te_error *err)
{
	te_buf c = TE_BUF_INIT(SV_TEXT_MAX);
	const char *part, *end, *bar;
	struct vmatch m;
	struct con con;
	size_t i, op;
	bool all;

	*ok = false;
	if (rewrite_range(&c, s, n, err) < 0)
		goto done;
	part = c.ptr ? c.ptr : "";
	end = part + c.len;
	/* every "||" part is checked for errors, even after a match */
	for (;;) {
		bar = memmem(part, (size_t)(end - part), "||", 2);
		if (!bar)
			bar = end;
		if (!re_valid(part, (size_t)(bar - part))) {
			te_error_set(err, TE_EINVALID,
			             "improper constraint: %.*s",
			             (int)(bar - part), part);
			goto done;
		}
		all = true;
		for (i = 0; i < (size_t)(bar - part);) {
			if (!re_op_cv(part, (size_t)(bar - part), i, &op, &m)) {
				i++;
				continue;
			}
			if (con_parse(&con, part + i, m.end - i, err) < 0)
				goto done;
			all = all && con_check(v, &con);
			sv_free(&con.v);
			i = m.end;
		}
		*ok = *ok || all;
		if (bar == end)
			break;
		part = bar + 2;
	}
done:
	te_buf_dispose(&c);
	return err->code;
}

static int f_semver_compare(te_render_value **out, te_render_call *call,
                            sp_args a, size_t n, void *p, te_error *err)
{
	struct sv v = {0};
	char empty[1] = "";
	bool ok = false;
	uint64_t len;
	te_error verr = TE_ERROR_INIT;

	(void)n;
	(void)p;
	if (WANT_STR(a[0]) < 0 || WANT_STR(a[1]) < 0)
		return err->code;
	/* the scans are quadratic at worst: charged before */
	len = a[0]->u.s.len;
	if (sp_steps(call, len / 64 + (len / 64) * (len / 64), err) < 0)
		return err->code;
	/* the constraint's errors come first */
	sv_parse(&v, a[1]->u.s.ptr, a[1]->u.s.len, &verr);
	if (verr.code) /* checked against 0.0.0, the result unused */
		v.pre = v.meta = empty;
	if (constraint_check(a[0]->u.s.ptr, a[0]->u.s.len, &v, &ok, err) == 0 &&
	    verr.code)
		*err = verr;
	if (verr.code)
		v.pre = v.meta = NULL;
	sv_free(&v);
	if (err->code)
		return err->code;
	return sp_ret_bool(out, ok, err);
}

/* ---- the Version object (semver "1.2.3") ---- */

/*
 * The object's inner value is the list [major minor patch pre metadata
 * original] (the numbers as int64 bit patterns of Go's uint64).  A
 * *Version (from semver) has every method the templates can call; a
 * Version (from IncMajor...) lacks the pointer-receiver ones (Original,
 * Compare, Equal, LessThan, GreaterThan), as Go's method sets do.
 */
enum sv_field { F_MAJOR, F_MINOR, F_PATCH, F_PRE, F_META, F_ORIG };

static const te_render_funcs sv_ptr_methods, sv_val_methods;

static te_render_value *sv_object(const struct sv *v, bool ptr)
{
	te_render_value *l = te_render_value_list();
	const uint64_t nums[3] = {v->major, v->minor, v->patch};
	const char *strs[3] = {v->pre, v->meta, v->orig};
	te_error err = TE_ERROR_INIT;
	size_t i;

	for (i = 0; l && i < 3; i++)
		te_render_list_push(l, te_render_value_int((int64_t)nums[i]),
		                    &err);
	for (i = 0; l && i < 3; i++)
		te_render_list_push(
		    l, te_render_value_string(strs[i], strlen(strs[i])), &err);
	if (err.code) {
		te_render_value_unref(l);
		return NULL;
	}
	return te_render__object_with(ptr ? &sv_ptr_methods : &sv_val_methods,
	                              l);
}

/* The receiver's fields, borrowed. */
static void sv_of(const te_render_value *obj, struct sv *v)
{
	const te_render_value *l = obj->inner;

	v->major = (uint64_t)l->u.list.items[F_MAJOR]->u.i;
	v->minor = (uint64_t)l->u.list.items[F_MINOR]->u.i;
	v->patch = (uint64_t)l->u.list.items[F_PATCH]->u.i;
	v->pre = l->u.list.items[F_PRE]->u.s.ptr;
	v->meta = l->u.list.items[F_META]->u.s.ptr;
	v->orig = l->u.list.items[F_ORIG]->u.s.ptr;
}

/* Version.String: MAJOR.MINOR.PATCH[-pre][+meta] */
static int sv_string(te_buf *b, const struct sv *v, te_error *err)
{
	te_buf_printf(b, err, "%" PRIu64 ".%" PRIu64 ".%" PRIu64, v->major,
	              v->minor, v->patch);
	if (*v->pre)
		te_buf_printf(b, err, "-%s", v->pre);
	if (*v->meta)
		te_buf_printf(b, err, "+%s", v->meta);
	return err->code;
}

static int m_string(te_render_value **out, te_render_call *call, sp_args a,
                    size_t n, void *p, te_error *err)
{
	te_buf b = TE_BUF_INIT(SV_TEXT_MAX);
	struct sv v;

	(void)a;
	(void)n;
	(void)p;
	sv_of(call->receiver, &v);
	sv_string(&b, &v, err);
	return sp_ret_buf(out, &b, err);
}

/* Major Minor Patch Prerelease Metadata Original */
static int m_field(te_render_value **out, te_render_call *call, sp_args a,
                   size_t n, void *p, te_error *err)
{
	(void)a;
	(void)n;
	return sp_ret_ref(
	    out,
	    call->receiver->inner->u.list.items[(enum sv_field)(uintptr_t)p],
	    err);
}

/* validatePrerelease for SetPrerelease */
static int sv_check_pre(const char *s, size_t n, te_error *err)
{
	size_t i, j;
	bool num, ok;

	for (i = 0; i <= n; i = j + 1) {
		num = ok = true;
		for (j = i; j < n && s[j] != '.'; j++) {
			num = num && re_digit(s[j]);
			ok = ok && re_ident(s[j]);
		}
		if (num && j - i > 1 && s[i] == '0')
			return te_error_set(err, TE_EINVALID,
			                    "Version segment starts with 0");
		if (!num && !ok)
			return te_error_set(err, TE_EINVALID,
			                    "Invalid Prerelease string");
	}
	return 0;
}

static int sv_check_meta(const char *s, size_t n, te_error *err)
{
	size_t i;

	for (i = 0; i < n; i++)
		if (s[i] != '.' && !re_ident(s[i]))
			return te_error_set(err, TE_EINVALID,
			                    "Invalid Metadata string");
	return 0;
}

enum sv_change { INC_PATCH, INC_MINOR, INC_MAJOR, SET_PRE, SET_META };

/* IncPatch IncMinor IncMajor SetPrerelease SetMetadata: a new Version
 * whose original is the old one's "v" prefix and its String. */
static int m_change(te_render_value **out, te_render_call *call, sp_args a,
                    size_t n, void *p, te_error *err)
{
	enum sv_change c = (enum sv_change)(uintptr_t)p;
	te_buf orig = TE_BUF_INIT(SV_TEXT_MAX);
	struct sv v, nv;
	char empty[1] = "";

	(void)n;
	sv_of(call->receiver, &v);
	nv = v;
	if (c == SET_PRE || c == SET_META) {
		if (WANT_STR(a[0]) < 0 ||
		    (c == SET_PRE
		         ? sv_check_pre(a[0]->u.s.ptr, a[0]->u.s.len, err)
		         : sv_check_meta(a[0]->u.s.ptr, a[0]->u.s.len, err)) <
		        0)
			return err->code;
		if (c == SET_PRE)
			nv.pre = a[0]->u.s.ptr;
		else
			nv.meta = a[0]->u.s.ptr;
	} else {
		nv.pre = nv.meta = empty;
		if (c == INC_MAJOR) {
			nv.major++;
			nv.minor = nv.patch = 0;
		} else if (c == INC_MINOR) {
			nv.minor++;
			nv.patch = 0;
		} else if (!*v.pre) {
			nv.patch++;
		}
	}
	if (v.orig[0] == 'v')
		te_buf_puts(&orig, "v", err);
	if (sv_string(&orig, &nv, err) < 0) {
		te_buf_dispose(&orig);
		return err->code;
	}
	nv.orig = orig.ptr;
	*out = sv_object(&nv, false);
	te_buf_dispose(&orig);
	return *out ? 0 : te_error_set(err, TE_ENOMEM, "out of memory");
}

/* Compare Equal LessThan GreaterThan OTHER: OTHER is a *Version. */
static int m_compare(te_render_value **out, te_render_call *call, sp_args a,
                     size_t n, void *p, te_error *err)
{
	const char *what = p;
	struct sv v, o;
	int c;

	(void)n;
	if (!a[0] || a[0]->methods != &sv_ptr_methods)
		return te_error_set(
		    err, TE_EINVALID,
		    "wrong type for value; expected *semver.Version; got %s",
		    a[0] && a[0]->methods ? "semver.Version" : sp_type(a[0]));
	sv_of(call->receiver, &v);
	sv_of(a[0], &o);
	c = sv_cmp(&v, &o);
	if (what[0] == 'C')
		return sp_ret(out, te_render_value_int(c), err);
	return sp_ret_bool(out,
	                   what[0] == 'E'   ? c == 0
	                   : what[0] == 'L' ? c < 0
	                                    : c > 0,
	                   err);
}

/* semver VERSION */
static int f_semver(te_render_value **out, te_render_call *call, sp_args a,
                    size_t n, void *p, te_error *err)
{
	struct sv v;

	(void)call;
	(void)n;
	(void)p;
	if (WANT_STR(a[0]) < 0 ||
	    sv_parse(&v, a[0]->u.s.ptr, a[0]->u.s.len, err) < 0)
		return err->code;
	*out = sv_object(&v, true);
	sv_free(&v);
	return *out ? 0 : te_error_set(err, TE_ENOMEM, "out of memory");
}

/* The method tables, sorted by name (te_render__find_func searches);
 * te_render_funcs holds them through a non-const pointer, never writing. */
#define M(name, fn, min, max, payload)                                         \
	{                                                                      \
		(name), (fn), NULL, (min), (max),                              \
		    (void *)(uintptr_t)(payload), 0                            \
	}
static const struct te_func sv_ptr_items[] = {
    M(" kind", NULL, 0, 0, "ptr"),
    M(" type", NULL, 0, 0, "*semver.Version"),
    M("Compare", m_compare, 1, 1, "Compare"),
    M("Equal", m_compare, 1, 1, "Equal"),
    M("GreaterThan", m_compare, 1, 1, "GreaterThan"),
    M("IncMajor", m_change, 0, 0, INC_MAJOR),
    M("IncMinor", m_change, 0, 0, INC_MINOR),
    M("IncPatch", m_change, 0, 0, INC_PATCH),
    M("LessThan", m_compare, 1, 1, "LessThan"),
    M("Major", m_field, 0, 0, F_MAJOR),
    M("Metadata", m_field, 0, 0, F_META),
    M("Minor", m_field, 0, 0, F_MINOR),
    M("Original", m_field, 0, 0, F_ORIG),
    M("Patch", m_field, 0, 0, F_PATCH),
    M("Prerelease", m_field, 0, 0, F_PRE),
    M("SetMetadata", m_change, 1, 1, SET_META),
    M("SetPrerelease", m_change, 1, 1, SET_PRE),
    M("String", m_string, 0, 0, 0),
};
static const struct te_func sv_val_items[] = {
    M(" kind", NULL, 0, 0, "struct"),
    M(" type", NULL, 0, 0, "semver.Version"),
    M("IncMajor", m_change, 0, 0, INC_MAJOR),
    M("IncMinor", m_change, 0, 0, INC_MINOR),
    M("IncPatch", m_change, 0, 0, INC_PATCH),
    M("Major", m_field, 0, 0, F_MAJOR),
    M("Metadata", m_field, 0, 0, F_META),
    M("Minor", m_field, 0, 0, F_MINOR),
    M("Patch", m_field, 0, 0, F_PATCH),
    M("Prerelease", m_field, 0, 0, F_PRE),
    M("SetMetadata", m_change, 1, 1, SET_META),
    M("SetPrerelease", m_change, 1, 1, SET_PRE),
    M("String", m_string, 0, 0, 0),
};
#undef M
static const te_render_funcs sv_ptr_methods = {
    (struct te_func *)sv_ptr_items,
    sizeof(sv_ptr_items) / sizeof(sv_ptr_items[0]),
    sizeof(sv_ptr_items) / sizeof(sv_ptr_items[0])};
static const te_render_funcs sv_val_methods = {
    (struct te_func *)sv_val_items,
    sizeof(sv_val_items) / sizeof(sv_val_items[0]),
    sizeof(sv_val_items) / sizeof(sv_val_items[0])};

const struct sp_entry te_render__sp_semver[] = {
    {"semver", f_semver, 1, 1, NULL},
    {"semverCompare", f_semver_compare, 2, 2, NULL},
};
const size_t te_render__sp_semver_len =
    sizeof(te_render__sp_semver) / sizeof(te_render__sp_semver[0]);
