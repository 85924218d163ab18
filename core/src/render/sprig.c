/*
 * sprig.c - Sprig v3.2.3's template functions (sprig.TxtFuncMap(),
 * https://masterminds.github.io/sprig/) for the Go template engine: the
 * registration (te_render_funcs_add_sprig), the helpers the Sprig files
 * share (sprig_int.h), the defaults/logic family and the string functions.
 * The other families have a file each (sprig_lists.c, sprig_dicts.c,
 * sprig_math.c, sprig_float.c, sprig_case.c, sprig_date.c, sprig_regex.c
 * ...).  Names refused on purpose (random results, key generation, the
 * network) are registered as unsupported with their reason: a template
 * naming one fails when parsed.  expandenv, which werf never offers, is
 * not registered at all.
 */
#include <stdlib.h>
#include <string.h>

#include "render/sprig_int.h"

/* ---- helpers ---- */

/* Sprig's empty(): reflect's zero value test for the value model. */
bool sp_empty(const te_render_value *v)
{
	switch (v ? v->kind : TE_RENDER_NIL) {
	case TE_RENDER_BOOL:
		return !v->u.b;
	case TE_RENDER_INT:
		return v->u.i == 0;
	case TE_RENDER_FLOAT:
		return v->u.f == 0;
	case TE_RENDER_STRING:
		return v->u.s.len == 0;
	case TE_RENDER_LIST:
		return te_render_value_len(v) == 0;
	case TE_RENDER_MAP:
		/* an object is a Go struct or a pointer to one: never empty */
		return !v->methods && te_render_value_len(v) == 0;
	default:
		return true;
	}
}

int sp_ret(te_render_value **out, te_render_value *v, te_error *err)
{
	*out = v;
	return v ? 0 : te_error_set(err, TE_ENOMEM, "out of memory");
}

int sp_ret_ref(te_render_value **out, te_render_value *v, te_error *err)
{
	return sp_ret(out, v ? te_render_value_ref(v) : te_render_value_nil(),
	              err);
}

int sp_ret_bool(te_render_value **out, bool b, te_error *err)
{
	return sp_ret(out, te_render_value_bool(b), err);
}

static int sp_ret_str(te_render_value **out, const char *s, size_t n,
                      te_error *err)
{
	return sp_ret(out, te_render_value_string(s, n), err);
}

/* The buffer's bytes become the result string (the buffer is reset). */
int sp_ret_buf(te_render_value **out, te_buf *b, te_error *err)
{
	size_t n = b->len;
	char *s;

	if (err->code) {
		/* te_buf's limit is the output limit (TE_BUF_INIT above) */
		if (err->code == TE_EINVALID && b->max &&
		    strstr(err->msg, "exceeds the limit of")) {
			*err = (te_error)TE_ERROR_INIT;
			te_error_set(err, TE_EINVALID,
			             "result exceeds the output limit of %zu "
			             "bytes",
			             b->max);
		}
		te_buf_dispose(b);
		return err->code;
	}
	s = te_buf_detach(b);
	if (!s)
		return te_error_set(err, TE_ENOMEM, "out of memory");
	return sp_ret(out, te_render__strown(s, n), err);
}

/* Go converts arguments to the parameter's type before the call; these
 * checks give the same verdict (the message is Go's, inside "error
 * calling NAME:"). */
int sp_want(const te_render_value *v, te_render_kind kind, const char *go_type,
            te_error *err)
{
	if (v && v->kind == kind)
		return 0;
	return te_error_set(
	    err, TE_EINVALID, "wrong type for value; expected %s; got %s",
	    go_type, v ? te_render__typename(v, false) : "<nil>");
}

size_t sp_out_max(const te_render_call *call)
{
	return call->s->set->limits.output_max;
}

int sp_steps(te_render_call *call, uint64_t n, te_error *err)
{
	struct te_exec *s = call->s;

	s->steps += n;
	if (s->steps <= s->set->limits.steps_max)
		return 0;
	s->budget = s->budget ? s->budget : 1;
	return te_error_set(err, TE_EINVALID,
	                    "work budget of %llu steps exceeded",
	                    (unsigned long long)s->set->limits.steps_max);
}

/* A list of count elements must fit the budgets before it is built: each
 * element costs a step and 8 bytes of the output limit. */
int sp_list_budget(te_render_call *call, uint64_t count, te_error *err)
{
	if (count > sp_out_max(call) / 8)
		return te_error_set(
		    err, TE_EINVALID,
		    "result of %llu elements exceeds the output "
		    "limit of %zu bytes (8 per element)",
		    (unsigned long long)count, sp_out_max(call));
	return sp_steps(call, count, err);
}

/* Values built by templates nest at most as deep as JSON data may
 * (te_render_value_from_json), so that freeing and printing them, which
 * recurse, stay shallow.  Visiting costs a step per 8 containers. */
static size_t sp_depth_walk(const te_render_value *v, size_t *visits,
                            size_t limit)
{
	size_t i, d, max = 0, n;

	if (!v || (v->kind != TE_RENDER_LIST && v->kind != TE_RENDER_MAP))
		return 0;
	if (limit == 0)
		return 1;
	(*visits)++;
	n = te_render_value_len(v);
	for (i = 0; i < n && max < limit; i++) {
		d = sp_depth_walk(v->kind == TE_RENDER_LIST ? v->u.list.items[i]
		                                            : v->u.map.vals[i],
		                  visits, limit - 1);
		if (d > max)
			max = d;
	}
	return max + 1;
}

int sp_nest_check(te_render_call *call, const te_render_value *v, te_error *err)
{
	size_t visits = 0;

	if (sp_depth_walk(v, &visits, SP_DEPTH_MAX) >= SP_DEPTH_MAX)
		return te_error_set(err, TE_EINVALID,
		                    "values nest deeper than %d levels",
		                    SP_DEPTH_MAX);
	return sp_steps(call, visits / 8, err);
}

/* A result of n bytes must fit the output budget before it is built, so
 * that hostile counts fail at once instead of allocating. */
static int sp_budget(const te_render_call *call, uint64_t n, te_error *err)
{
	if (n > sp_out_max(call))
		return te_error_set(err, TE_EINVALID,
		                    "result exceeds the output limit of %zu "
		                    "bytes",
		                    sp_out_max(call));
	return 0;
}

/* fmt's %v of v into b (Sprig's strval for everything but strings). */
int sp_strval(te_buf *b, const te_render_value *v, te_error *err)
{
	if (v && v->kind == TE_RENDER_STRING)
		return te_buf_put(b, v->u.s.ptr, v->u.s.len, err);
	return te_render__print_value(b, v, err);
}

/* ---- defaults and logic (defaults.go, reflect.go) ---- */

static int f_default(te_render_value **out, te_render_call *call, sp_args a,
                     size_t n, void *p, te_error *err)
{
	(void)call;
	(void)p;
	if (n < 2 || sp_empty(a[1]))
		return sp_ret_ref(out, a[0], err);
	return sp_ret_ref(out, a[1], err);
}

static int f_empty(te_render_value **out, te_render_call *call, sp_args a,
                   size_t n, void *p, te_error *err)
{
	(void)call;
	(void)n;
	(void)p;
	return sp_ret_bool(out, sp_empty(a[0]), err);
}

static int f_coalesce(te_render_value **out, te_render_call *call, sp_args a,
                      size_t n, void *p, te_error *err)
{
	size_t i;

	(void)call;
	(void)p;
	for (i = 0; i < n; i++)
		if (!sp_empty(a[i]))
			return sp_ret_ref(out, a[i], err);
	return sp_ret_ref(out, NULL, err);
}

/* all (payload NULL) and any (payload non-NULL). */
static int f_all_any(te_render_value **out, te_render_call *call, sp_args a,
                     size_t n, void *p, te_error *err)
{
	bool any = p != NULL;
	size_t i;

	(void)call;
	for (i = 0; i < n; i++)
		if (sp_empty(a[i]) == !any)
			return sp_ret_bool(out, any, err);
	return sp_ret_bool(out, !any, err);
}

static int f_ternary(te_render_value **out, te_render_call *call, sp_args a,
                     size_t n, void *p, te_error *err)
{
	(void)call;
	(void)n;
	(void)p;
	if (sp_want(a[2], TE_RENDER_BOOL, "bool", err) < 0)
		return err->code;
	return sp_ret_ref(out, a[2]->u.b ? a[0] : a[1], err);
}

static int f_fail(te_render_value **out, te_render_call *call, sp_args a,
                  size_t n, void *p, te_error *err)
{
	(void)out;
	(void)call;
	(void)n;
	(void)p;
	if (WANT_STR(a[0]) < 0)
		return err->code;
	return te_error_set(err, TE_EINVALID, "%s", a[0]->u.s.ptr);
}

static int f_tostring(te_render_value **out, te_render_call *call, sp_args a,
                      size_t n, void *p, te_error *err)
{
	te_buf b = TE_BUF_INIT(sp_out_max(call));

	(void)n;
	(void)p;
	sp_strval(&b, a[0], err);
	return sp_ret_buf(out, &b, err);
}

/* strconv.Atoi: optional sign, decimal digits; out of range gives the
 * nearest int64 (Atoi returns it with its error, Sprig drops the error);
 * a syntax error gives 0. */
int64_t te_render__sp_atoi(const char *s, size_t n)
{
	uint64_t u = 0, lim;
	bool neg = false, over = false;
	size_t i = 0;

	if (n && (s[0] == '+' || s[0] == '-'))
		neg = s[i++] == '-';
	if (i == n)
		return 0;
	lim = neg ? (uint64_t)1 << 63 : ((uint64_t)1 << 63) - 1;
	for (; i < n; i++) {
		if (s[i] < '0' || s[i] > '9')
			return 0;
		if (!over && u > (lim - (uint64_t)(s[i] - '0')) / 10)
			over = true;
		else if (!over)
			u = u * 10 + (uint64_t)(s[i] - '0');
	}
	if (over)
		u = lim;
	return neg ? (int64_t)(0 - u) : (int64_t)u;
}

static int f_atoi(te_render_value **out, te_render_call *call, sp_args a,
                  size_t n, void *p, te_error *err)
{
	(void)call;
	(void)n;
	(void)p;
	if (WANT_STR(a[0]) < 0)
		return err->code;
	return sp_ret(out,
	              te_render_value_int(
	                  te_render__sp_atoi(a[0]->u.s.ptr, a[0]->u.s.len)),
	              err);
}

/* Go's reflect Kind of a value the model holds: YAML and JSON integers
 * are Go ints (werf decodes werf.yaml values into interface{}). */
/* An object's Go type or kind, from the payload of its " type" or " kind"
 * entry (names no template can call), NULL when it has none. */
static const char *object_says(const te_render_value *v, const char *what)
{
	const struct te_func *f =
	    v && v->methods ? te_render__find_func(v->methods, what) : NULL;

	return f ? (const char *)f->payload : NULL;
}

const char *sp_kind(const te_render_value *v)
{
	if (object_says(v, " kind"))
		return object_says(v, " kind");
	switch (v ? v->kind : TE_RENDER_NIL) {
	case TE_RENDER_BOOL:
		return "bool";
	case TE_RENDER_INT:
		return "int";
	case TE_RENDER_FLOAT:
		return "float64";
	case TE_RENDER_STRING:
		return "string";
	case TE_RENDER_LIST:
		return "slice";
	case TE_RENDER_MAP:
		return "map";
	default:
		return "invalid";
	}
}

const char *sp_type(const te_render_value *v)
{
	if (object_says(v, " type"))
		return object_says(v, " type");
	switch (v ? v->kind : TE_RENDER_NIL) {
	case TE_RENDER_LIST:
		return "[]interface {}";
	case TE_RENDER_MAP:
		return "map[string]interface {}";
	case TE_RENDER_NIL:
		return "<nil>";
	default:
		return sp_kind(v);
	}
}

/* payload: the describing function (sp_kind or sp_type). */
static int f_typeof(te_render_value **out, te_render_call *call, sp_args a,
                    size_t n, void *p, te_error *err)
{
	const char *(*describe)(const te_render_value *) =
	    (const char *(*)(const te_render_value *))(uintptr_t)p;
	const char *t = describe(a[0]);

	(void)call;
	(void)n;
	return sp_ret_str(out, t, strlen(t), err);
}

static int f_kindis(te_render_value **out, te_render_call *call, sp_args a,
                    size_t n, void *p, te_error *err)
{
	(void)call;
	(void)n;
	(void)p;
	if (WANT_STR(a[0]) < 0)
		return err->code;
	return sp_ret_bool(out, !strcmp(a[0]->u.s.ptr, sp_kind(a[1])), err);
}

/* typeIs (payload NULL) and typeIsLike (also accepts "*" + type). */
static int f_typeis(te_render_value **out, te_render_call *call, sp_args a,
                    size_t n, void *p, te_error *err)
{
	const char *t = sp_type(a[1]), *want;

	(void)call;
	(void)n;
	if (WANT_STR(a[0]) < 0)
		return err->code;
	want = a[0]->u.s.ptr;
	if (p && want[0] == '*')
		return sp_ret_bool(out, false, err); /* no pointer types */
	return sp_ret_bool(out, !strcmp(want, t), err);
}

/* reflect.DeepEqual: same kind and equal contents. */
bool sp_deep_equal(const te_render_value *x, const te_render_value *y)
{
	size_t i, kl, yl;
	const char *k;

	if (!x || !y || x->kind != y->kind)
		return (!x || x->kind == TE_RENDER_NIL) &&
		       (!y || y->kind == TE_RENDER_NIL);
	switch (x->kind) {
	case TE_RENDER_BOOL:
		return x->u.b == y->u.b;
	case TE_RENDER_INT:
		return x->u.i == y->u.i;
	case TE_RENDER_FLOAT:
		return x->u.f == y->u.f;
	case TE_RENDER_STRING:
		return x->u.s.len == y->u.s.len &&
		       !memcmp(x->u.s.ptr, y->u.s.ptr, x->u.s.len);
	case TE_RENDER_LIST:
		if (x->u.list.len != y->u.list.len)
			return false;
		for (i = 0; i < x->u.list.len; i++)
			if (!sp_deep_equal(x->u.list.items[i],
			                   y->u.list.items[i]))
				return false;
		return true;
	case TE_RENDER_MAP:
		if (x->u.map.len != y->u.map.len)
			return false;
		for (i = 0; i < x->u.map.len; i++) {
			k = te_render_map_key_at(x, i, &kl);
			if (!te_render_map_get(y, k, kl) ||
			    !sp_deep_equal(x->u.map.vals[i],
			                   te_render_map_get(y, k, kl)))
				return false;
		}
		(void)yl;
		return true;
	default:
		return true;
	}
}

static int f_deepequal(te_render_value **out, te_render_call *call, sp_args a,
                       size_t n, void *p, te_error *err)
{
	(void)call;
	(void)n;
	(void)p;
	return sp_ret_bool(out, sp_deep_equal(a[0], a[1]), err);
}

/* ---- strings (strings.go) ---- */

/* unicode.IsSpace */
static bool sp_is_space(int32_t r)
{
	switch (r) {
	case '\t':
	case '\n':
	case '\v':
	case '\f':
	case '\r':
	case ' ':
	case 0x85:
	case 0xA0:
	case 0x1680:
	case 0x2028:
	case 0x2029:
	case 0x202F:
	case 0x205F:
	case 0x3000:
		return true;
	default:
		return r >= 0x2000 && r <= 0x200A;
	}
}

/* Does rune r occur in cutset (strings.Trim's rune set)?  cutset NULL:
 * unicode.IsSpace. */
static bool sp_in_set(int32_t r, const te_render_value *cutset)
{
	size_t i = 0, w;

	if (!cutset)
		return sp_is_space(r);
	while (i < cutset->u.s.len) {
		if (te_render__rune(cutset->u.s.ptr + i, cutset->u.s.len - i,
		                    &w) == r)
			return true;
		i += w;
	}
	return false;
}

/* The length of the valid or invalid rune ending at s[n-1]. */
static size_t sp_last_rune(const char *s, size_t n, int32_t *r)
{
	size_t start = n - 1, w;

	while (start > 0 && n - start < 4 &&
	       ((unsigned char)s[start] & 0xC0) == 0x80)
		start--;
	*r = te_render__rune(s + start, n - start, &w);
	if (start + w != n) { /* not one rune: the last byte alone */
		*r = 0xFFFD;
		return 1;
	}
	return w;
}

static int sp_trim(te_render_value **out, const te_render_value *s,
                   const te_render_value *cutset, te_error *err)
{
	const char *p = s->u.s.ptr;
	size_t lo = 0, hi = s->u.s.len, w;
	int32_t r;

	while (lo < hi) {
		r = te_render__rune(p + lo, hi - lo, &w);
		if (!sp_in_set(r, cutset))
			break;
		lo += w;
	}
	while (hi > lo) {
		w = sp_last_rune(p + lo, hi - lo, &r);
		if (!sp_in_set(r, cutset))
			break;
		hi -= w;
	}
	return sp_ret_str(out, p + lo, hi - lo, err);
}

static int f_trim(te_render_value **out, te_render_call *call, sp_args a,
                  size_t n, void *p, te_error *err)
{
	(void)call;
	(void)n;
	(void)p;
	if (WANT_STR(a[0]) < 0)
		return err->code;
	return sp_trim(out, a[0], NULL, err);
}

/* Two string parameters, Sprig's order: (cutset or affix, subject). */
static int want_two_str(sp_args a, te_error *err)
{
	if (WANT_STR(a[0]) < 0 || WANT_STR(a[1]) < 0)
		return err->code;
	return 0;
}

static int f_trimall(te_render_value **out, te_render_call *call, sp_args a,
                     size_t n, void *p, te_error *err)
{
	(void)call;
	(void)n;
	(void)p;
	if (want_two_str(a, err) < 0)
		return err->code;
	return sp_trim(out, a[1], a[0], err);
}

static bool has_prefix(const te_render_value *s, const te_render_value *x)
{
	return s->u.s.len >= x->u.s.len &&
	       !memcmp(s->u.s.ptr, x->u.s.ptr, x->u.s.len);
}

static bool has_suffix(const te_render_value *s, const te_render_value *x)
{
	return s->u.s.len >= x->u.s.len &&
	       !memcmp(s->u.s.ptr + s->u.s.len - x->u.s.len, x->u.s.ptr,
	               x->u.s.len);
}

static const char *sp_find(const char *s, size_t n, const char *x, size_t xn)
{
	size_t i;

	if (xn == 0)
		return s;
	for (i = 0; xn <= n && i <= n - xn; i++)
		if (s[i] == x[0] && !memcmp(s + i, x, xn))
			return s + i;
	return NULL;
}

/* payload: 'p' trimPrefix, 's' trimSuffix. */
static int f_trimaffix(te_render_value **out, te_render_call *call, sp_args a,
                       size_t n, void *p, te_error *err)
{
	const te_render_value *s = a[1], *x = a[0];
	bool prefix = *(const char *)p == 'p';

	(void)call;
	(void)n;
	if (want_two_str(a, err) < 0)
		return err->code;
	if (prefix && has_prefix(s, x))
		return sp_ret_str(out, s->u.s.ptr + x->u.s.len,
		                  s->u.s.len - x->u.s.len, err);
	if (!prefix && has_suffix(s, x))
		return sp_ret_str(out, s->u.s.ptr, s->u.s.len - x->u.s.len,
		                  err);
	return sp_ret_ref(out, a[1], err);
}

/* payload: 'c' contains, 'p' hasPrefix, 's' hasSuffix. */
static int f_strtest(te_render_value **out, te_render_call *call, sp_args a,
                     size_t n, void *p, te_error *err)
{
	const te_render_value *s = a[1], *x = a[0];
	char op = *(const char *)p;

	(void)call;
	(void)n;
	if (want_two_str(a, err) < 0)
		return err->code;
	if (op == 'p')
		return sp_ret_bool(out, has_prefix(s, x), err);
	if (op == 's')
		return sp_ret_bool(out, has_suffix(s, x), err);
	return sp_ret_bool(
	    out,
	    sp_find(s->u.s.ptr, s->u.s.len, x->u.s.ptr, x->u.s.len) != NULL,
	    err);
}

/* strings.Repeat, within the output budget; Go panics on a negative
 * count and text/template reports the panic's text. */
static int sp_repeat(te_buf *b, const te_render_call *call, const char *s,
                     size_t len, int64_t count, te_error *err)
{
	int64_t i;

	if (count < 0)
		return te_error_set(err, TE_EINVALID,
		                    "strings: negative Repeat count");
	if (len && sp_budget(call, (uint64_t)count * len + b->len, err) < 0)
		return err->code;
	if (len && (uint64_t)count > sp_out_max(call) / len)
		return sp_budget(call, (uint64_t)-1, err);
	for (i = 0; i < count && len; i++)
		if (te_buf_put(b, s, len, err) < 0)
			return err->code;
	return 0;
}

static int f_repeat(te_render_value **out, te_render_call *call, sp_args a,
                    size_t n, void *p, te_error *err)
{
	te_buf b = TE_BUF_INIT(sp_out_max(call));

	(void)n;
	(void)p;
	if (WANT_INT(a[0]) < 0 || WANT_STR(a[1]) < 0)
		return err->code;
	sp_repeat(&b, call, a[1]->u.s.ptr, a[1]->u.s.len, a[0]->u.i, err);
	return sp_ret_buf(out, &b, err);
}

/* goutils' DeleteWhiteSpace reads the string byte by byte, each byte as
 * the rune of that value: bytes that are unicode.IsSpace runes (0x85 and
 * 0xA0 too) go, the others are written back UTF-8 encoded, so non-ASCII
 * text comes out re-encoded as if it were Latin-1.  Unchanged when no
 * byte goes. */
static int f_nospace(te_render_value **out, te_render_call *call, sp_args a,
                     size_t n, void *p, te_error *err)
{
	te_buf b = TE_BUF_INIT(sp_out_max(call));
	char enc[4];
	size_t i, kept = 0;
	unsigned char c;

	(void)n;
	(void)p;
	if (WANT_STR(a[0]) < 0)
		return err->code;
	for (i = 0; i < a[0]->u.s.len && !err->code; i++) {
		c = (unsigned char)a[0]->u.s.ptr[i];
		if (sp_is_space(c))
			continue;
		kept++;
		te_buf_put(&b, enc, te_render__put_rune(enc, c), err);
	}
	if (kept == a[0]->u.s.len) {
		te_buf_dispose(&b);
		return sp_ret_ref(out, a[0], err);
	}
	return sp_ret_buf(out, &b, err);
}

/* quote (payload NULL): %q of strval; squote: '%v'.  nil args are
 * skipped, the rest joined by spaces. */
static int f_quote(te_render_value **out, te_render_call *call, sp_args a,
                   size_t n, void *p, te_error *err)
{
	te_buf b = TE_BUF_INIT(sp_out_max(call)),
	       v = TE_BUF_INIT(sp_out_max(call));
	bool first = true;
	size_t i;

	for (i = 0; i < n && !err->code; i++) {
		if (!a[i] || a[i]->kind == TE_RENDER_NIL)
			continue;
		if (!first)
			te_buf_put(&b, " ", 1, err);
		first = false;
		if (p) {
			te_buf_put(&b, "'", 1, err);
			sp_strval(&b, a[i], err);
			te_buf_put(&b, "'", 1, err);
			continue;
		}
		te_buf_clear(&v);
		if (sp_strval(&v, a[i], err) == 0)
			te_render__quote(&b, v.ptr, v.len, false, err);
	}
	te_buf_dispose(&v);
	return sp_ret_buf(out, &b, err);
}

static int f_cat(te_render_value **out, te_render_call *call, sp_args a,
                 size_t n, void *p, te_error *err)
{
	te_buf b = TE_BUF_INIT(sp_out_max(call));
	bool first = true;
	size_t i;

	(void)p;
	for (i = 0; i < n && !err->code; i++) {
		if (!a[i] || a[i]->kind == TE_RENDER_NIL)
			continue;
		if (!first)
			te_buf_put(&b, " ", 1, err);
		first = false;
		te_render__print_value(&b, a[i], err);
	}
	return sp_ret_buf(out, &b, err);
}

/* indent (payload NULL) and nindent (a newline first). */
static int f_indent(te_render_value **out, te_render_call *call, sp_args a,
                    size_t n, void *p, te_error *err)
{
	te_buf b = TE_BUF_INIT(sp_out_max(call)),
	       pad = TE_BUF_INIT(sp_out_max(call));
	const char *s, *nl;
	size_t len, lines = 1, i;

	(void)n;
	if (WANT_INT(a[0]) < 0 || WANT_STR(a[1]) < 0)
		return err->code;
	s = a[1]->u.s.ptr;
	len = a[1]->u.s.len;
	for (i = 0; i < len; i++)
		lines += s[i] == '\n';
	if (sp_repeat(&pad, call, " ", 1, a[0]->u.i, err) < 0 ||
	    sp_budget(call, (uint64_t)lines * pad.len + len + 1, err) < 0) {
		te_buf_dispose(&pad);
		return err->code;
	}
	if (p)
		te_buf_put(&b, "\n", 1, err);
	te_buf_put(&b, pad.ptr, pad.len, err);
	while ((nl = memchr(s, '\n', len)) != NULL && !err->code) {
		te_buf_put(&b, s, (size_t)(nl - s) + 1, err);
		te_buf_put(&b, pad.ptr, pad.len, err);
		len -= (size_t)(nl - s) + 1;
		s = nl + 1;
	}
	te_buf_put(&b, s, len, err);
	te_buf_dispose(&pad);
	return sp_ret_buf(out, &b, err);
}

/* replace OLD NEW SRC: strings.Replace(src, old, new, -1); an empty old
 * matches before every rune and at the end. */
static int f_replace(te_render_value **out, te_render_call *call, sp_args a,
                     size_t n, void *p, te_error *err)
{
	te_buf b = TE_BUF_INIT(sp_out_max(call));
	const char *s, *hit, *end;
	size_t on, w;

	(void)n;
	(void)p;
	if (WANT_STR(a[0]) < 0 || WANT_STR(a[1]) < 0 || WANT_STR(a[2]) < 0)
		return err->code;
	s = a[2]->u.s.ptr;
	end = s + a[2]->u.s.len;
	on = a[0]->u.s.len;
	if (on == 0) {
		te_buf_put(&b, a[1]->u.s.ptr, a[1]->u.s.len, err);
		while (s < end && !err->code) {
			te_render__rune(s, (size_t)(end - s), &w);
			te_buf_put(&b, s, w, err);
			te_buf_put(&b, a[1]->u.s.ptr, a[1]->u.s.len, err);
			s += w;
		}
		return sp_ret_buf(out, &b, err);
	}
	while (!err->code && (hit = sp_find(s, (size_t)(end - s), a[0]->u.s.ptr,
	                                    on)) != NULL) {
		te_buf_put(&b, s, (size_t)(hit - s), err);
		te_buf_put(&b, a[1]->u.s.ptr, a[1]->u.s.len, err);
		s = hit + on;
	}
	te_buf_put(&b, s, (size_t)(end - s), err);
	return sp_ret_buf(out, &b, err);
}

static int f_plural(te_render_value **out, te_render_call *call, sp_args a,
                    size_t n, void *p, te_error *err)
{
	(void)call;
	(void)n;
	(void)p;
	if (WANT_STR(a[0]) < 0 || WANT_STR(a[1]) < 0 || WANT_INT(a[2]) < 0)
		return err->code;
	return sp_ret_ref(out, a[2]->u.i == 1 ? a[0] : a[1], err);
}

/* trunc N S: the first N bytes, or the last -N (bytes, as Sprig does). */
static int f_trunc(te_render_value **out, te_render_call *call, sp_args a,
                   size_t n, void *p, te_error *err)
{
	int64_t c;
	size_t len;

	(void)call;
	(void)n;
	(void)p;
	if (WANT_INT(a[0]) < 0 || WANT_STR(a[1]) < 0)
		return err->code;
	c = a[0]->u.i;
	len = a[1]->u.s.len;
	if (c < 0 && (int64_t)len + c > 0)
		return sp_ret_str(out, a[1]->u.s.ptr + len + (size_t)c,
		                  (size_t)-c, err);
	if (c >= 0 && len > (uint64_t)c)
		return sp_ret_str(out, a[1]->u.s.ptr, (size_t)c, err);
	return sp_ret_ref(out, a[1], err);
}

/* ---- names refused on purpose ---- */

static int f_unsupported(te_render_value **out, te_render_call *call, sp_args a,
                         size_t n, void *p, te_error *err)
{
	(void)out;
	(void)call;
	(void)a;
	(void)n;
	return te_error_set(err, TE_EUNSUPPORTED,
	                    "function is not supported by tagexport: %s",
	                    (const char *)p);
}

/* ---- the table ---- */

#define V TE_RENDER_VARIADIC

static const struct sp_entry sp_table[] = {
    {"all", f_all_any, 0, V, NULL},
    {"any", f_all_any, 0, V, "any"},
    {"atoi", f_atoi, 1, 1, NULL},
    {"cat", f_cat, 0, V, NULL},
    {"coalesce", f_coalesce, 0, V, NULL},
    {"contains", f_strtest, 2, 2, "c"},
    {"deepEqual", f_deepequal, 2, 2, NULL},
    {"default", f_default, 1, V, NULL},
    {"empty", f_empty, 1, 1, NULL},
    {"fail", f_fail, 1, 1, NULL},
    {"hasPrefix", f_strtest, 2, 2, "p"},
    {"hasSuffix", f_strtest, 2, 2, "s"},
    {"indent", f_indent, 2, 2, NULL},
    {"kindIs", f_kindis, 2, 2, NULL},
    {"kindOf", f_typeof, 1, 1, (const void *)(uintptr_t)sp_kind},
    {"nindent", f_indent, 2, 2, "n"},
    {"nospace", f_nospace, 1, 1, NULL},
    {"plural", f_plural, 3, 3, NULL},
    {"quote", f_quote, 0, V, NULL},
    {"repeat", f_repeat, 2, 2, NULL},
    {"replace", f_replace, 3, 3, NULL},
    {"squote", f_quote, 0, V, "s"},
    {"ternary", f_ternary, 3, 3, NULL},
    {"toString", f_tostring, 1, 1, NULL},
    {"trim", f_trim, 1, 1, NULL},
    {"trimAll", f_trimall, 2, 2, NULL},
    {"trimPrefix", f_trimaffix, 2, 2, "p"},
    {"trimSuffix", f_trimaffix, 2, 2, "s"},
    {"trimall", f_trimall, 2, 2, NULL},
    {"trunc", f_trunc, 2, 2, NULL},
    {"typeIs", f_typeis, 2, 2, NULL},
    {"typeIsLike", f_typeis, 2, 2, "like"},
    {"typeOf", f_typeof, 1, 1, (const void *)(uintptr_t)sp_type},
};
#undef V

/* Every other name of sprig.TxtFuncMap() v3.2.3 but expandenv. */
/* Refused on purpose, with the reason given at parse time: a rendered
 * werf.yaml must be the same bytes for the same commit (its content-based
 * tag covers it), so random results are refused, and rendering never
 * reaches the network. */
static const struct {
	const char *name, *why;
} sp_refused[] = {
    {"bcrypt", "its result is random (a salted hash)"},
    {"buildCustomCert",
     "certificates exist only for the gen* functions, which are refused"},
    {"encryptAES", "its result is random (a random IV)"},
    {"env", "werf's env replaces it"},
    {"genCA", "it generates keys at random"},
    {"genCAWithKey", "it generates certificates with random serial numbers"},
    {"genPrivateKey", "it generates keys at random"},
    {"genSelfSignedCert", "it generates keys at random"},
    {"genSelfSignedCertWithKey",
     "it generates certificates with random serial numbers"},
    {"genSignedCert", "it generates keys at random"},
    {"genSignedCertWithKey",
     "it generates certificates with random serial numbers"},
    {"getHostByName", "a template must not reach the network"},
    {"htpasswd", "its result is random (a salted hash)"},
    {"randAlpha", "its result is random"},
    {"randAlphaNum", "its result is random"},
    {"randAscii", "its result is random"},
    {"randBytes", "its result is random"},
    {"randInt", "its result is random"},
    {"randNumeric", "its result is random"},
    {"shuffle", "its result is random"},
    {"uuidv4", "its result is random"},
};

static int add_table(te_render_funcs *funcs, const struct sp_entry *t, size_t n,
                     te_error *err)
{
	size_t i;
	int rc = 0;

	for (i = 0; i < n && rc == 0; i++)
		rc = te_render_funcs_add(funcs, t[i].name, t[i].fn,
		                         t[i].min_args, t[i].max_args,
		                         (void *)(uintptr_t)t[i].payload, err);
	return rc;
}

int te_render_funcs_add_sprig(te_render_funcs *funcs, te_error *err)
{
	size_t i;
	int rc = 0;

	rc = add_table(funcs, sp_table, sizeof(sp_table) / sizeof(sp_table[0]),
	               err);
	if (rc < 0)
		goto done;
	rc =
	    add_table(funcs, te_render__sp_lists, te_render__sp_lists_len, err);
	if (rc == 0)
		rc = add_table(funcs, te_render__sp_math,
		               te_render__sp_math_len, err);
	if (rc == 0)
		rc = add_table(funcs, te_render__sp_encoding,
		               te_render__sp_encoding_len, err);
	if (rc == 0)
		rc = add_table(funcs, te_render__sp_split,
		               te_render__sp_split_len, err);
	if (rc == 0)
		rc = add_table(funcs, te_render__sp_json,
		               te_render__sp_json_len, err);
	if (rc == 0)
		rc = add_table(funcs, te_render__sp_dicts,
		               te_render__sp_dicts_len, err);
	if (rc == 0)
		rc = add_table(funcs, te_render__sp_float,
		               te_render__sp_float_len, err);
	if (rc == 0)
		rc = add_table(funcs, te_render__sp_case,
		               te_render__sp_case_len, err);
	if (rc == 0)
		rc = add_table(funcs, te_render__sp_paths,
		               te_render__sp_paths_len, err);
	if (rc == 0)
		rc = add_table(funcs, te_render__sp_fromjson,
		               te_render__sp_fromjson_len, err);
	if (rc == 0)
		rc = add_table(funcs, te_render__sp_semver,
		               te_render__sp_semver_len, err);
	if (rc == 0)
		rc = add_table(funcs, te_render__sp_duration,
		               te_render__sp_duration_len, err);
	if (rc == 0)
		rc = add_table(funcs, te_render__sp_url, te_render__sp_url_len,
		               err);
	if (rc == 0)
		rc = add_table(funcs, te_render__sp_crypto,
		               te_render__sp_crypto_len, err);
	if (rc == 0)
		rc = add_table(funcs, te_render__sp_date,
		               te_render__sp_date_len, err);
	if (rc == 0)
		rc = add_table(funcs, te_render__sp_regex,
		               te_render__sp_regex_len, err);
	if (rc < 0)
		goto done;
	for (i = 0; i < sizeof(sp_refused) / sizeof(sp_refused[0]); i++) {
		rc = te_render__funcs_add_unsupported(
		    funcs, sp_refused[i].name, f_unsupported,
		    (void *)(uintptr_t)sp_refused[i].why, err);
		if (rc < 0)
			goto done;
	}
done:
	return rc;
}
