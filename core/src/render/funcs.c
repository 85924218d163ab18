/*
 * funcs.c - the function table and Go's template builtins
 * (text/template/funcs.go): and, or, not, len, index, slice, print,
 * printf, println, html, js, urlquery, call, eq, ne, lt, le, gt, ge.
 *
 * Builtins see executor values (struct te_xv) so they can tell Go's
 * invalid value (a missing key) from a nil interface, as Go's reflect
 * based builtins do.  and/or are evaluated lazily by exec.c.
 */
#include <stdlib.h>
#include <string.h>

#include "render/render_int.h"

/* ---- the caller's table ---- */

int te_render_funcs_new(te_render_funcs **out, te_error *err)
{
	*out = calloc(1, sizeof(**out));
	if (!*out)
		return te_error_set(err, TE_ENOMEM, "out of memory");
	return 0;
}

static bool valid_ident(const char *s)
{
	size_t i;

	if (!s || !*s)
		return false;
	for (i = 0; s[i]; i++) {
		unsigned char c = (unsigned char)s[i];

		if (!(c == '_' || (c >= 'a' && c <= 'z') ||
		      (c >= 'A' && c <= 'Z') ||
		      (i > 0 && c >= '0' && c <= '9') || c >= 0x80))
			return false;
	}
	return true;
}

/* Entries are kept sorted by name for a binary search per call. */
static size_t func_find(const te_render_funcs *funcs, const char *name,
                        bool *found)
{
	size_t lo = 0, hi = funcs->len, mid;
	int c;

	*found = false;
	while (lo < hi) {
		mid = lo + (hi - lo) / 2;
		c = strcmp(funcs->items[mid].name, name);
		if (c == 0) {
			*found = true;
			return mid;
		}
		if (c < 0)
			lo = mid + 1;
		else
			hi = mid;
	}
	return lo;
}

int te_render_funcs_add(te_render_funcs *funcs, const char *name,
                        te_render_fn fn, size_t min_args, size_t max_args,
                        void *payload, te_error *err)
{
	struct te_func *items, *f;
	size_t at, cap;
	bool found;
	char *copy;

	if (!funcs || !fn || !valid_ident(name) || min_args > max_args)
		return te_error_set(err, TE_EINVALID,
		                    "render: bad function registration %s",
		                    name ? name : "(null)");
	at = func_find(funcs, name, &found);
	if (!found) {
		if (funcs->len == funcs->cap) {
			cap = funcs->cap ? funcs->cap * 2 : 16;
			items = realloc(funcs->items, cap * sizeof(*items));
			if (!items)
				return te_error_set(err, TE_ENOMEM,
				                    "out of memory");
			funcs->items = items;
			funcs->cap = cap;
		}
		copy = strdup(name);
		if (!copy)
			return te_error_set(err, TE_ENOMEM, "out of memory");
		memmove(funcs->items + at + 1, funcs->items + at,
		        (funcs->len - at) * sizeof(*funcs->items));
		memset(&funcs->items[at], 0, sizeof(*funcs->items));
		funcs->items[at].name = copy;
		funcs->len++;
	}
	f = &funcs->items[at];
	f->fn = fn;
	f->min_args = min_args;
	f->max_args = max_args;
	f->payload = payload;
	f->flags = 0;
	return 0;
}

int te_render__funcs_add_unsupported(te_render_funcs *funcs, const char *name,
                                     te_render_fn fn, void *payload,
                                     te_error *err)
{
	bool found;
	int rc;

	rc = te_render_funcs_add(funcs, name, fn, 0, TE_RENDER_VARIADIC,
	                         payload, err);
	if (rc == 0)
		funcs->items[func_find(funcs, name, &found)].flags =
		    TE_FN_UNSUPPORTED;
	return rc;
}

void te_render_funcs_free(te_render_funcs *funcs)
{
	size_t i;

	if (!funcs)
		return;
	for (i = 0; i < funcs->len; i++)
		free((char *)funcs->items[i].name);
	free(funcs->items);
	free(funcs);
}

const struct te_func *te_render__find_func(const te_render_funcs *funcs,
                                           const char *name)
{
	bool found;
	size_t at;

	if (!funcs)
		return NULL;
	at = func_find(funcs, name, &found);
	return found ? &funcs->items[at] : NULL;
}

/* ---- helpers ---- */

static int set_bool(struct te_xv *out, bool b, te_error *err)
{
	out->v = te_render_value_bool(b);
	out->boxed = false;
	return out->v ? 0 : te_error_set(err, TE_ENOMEM, "out of memory");
}

static int set_int(struct te_xv *out, int64_t i, te_error *err)
{
	out->v = te_render_value_int(i);
	out->boxed = false;
	return out->v ? 0 : te_error_set(err, TE_ENOMEM, "out of memory");
}

static int set_buf(struct te_xv *out, te_buf *b, te_error *err)
{
	size_t len = b->len;
	char *s;

	if (err->code)
		return err->code;
	s = te_buf_detach(b);
	if (!s)
		return te_error_set(err, TE_ENOMEM, "out of memory");
	out->v = te_render__strown(s, len);
	out->boxed = false;
	return out->v ? 0 : te_error_set(err, TE_ENOMEM, "out of memory");
}

/* Go's indirectInterface: nil interfaces and missing values are both
 * "invalid" to the reflect based builtins. */
static const te_render_value *ind(const struct te_xv *x)
{
	if (!x->v || x->v->kind == TE_RENDER_NIL)
		return NULL;
	return x->v;
}

bool te_render__xtruth(const struct te_xv *x)
{
	return te_render__truth(x->v);
}

static te_render_value **plain_args(struct te_xv *args, size_t n)
{
	te_render_value **a = calloc(n ? n : 1, sizeof(*a));
	size_t i;

	if (a)
		for (i = 0; i < n; i++)
			a[i] = args[i].v;
	return a;
}

/* ---- builtins ---- */

static int b_not(struct te_exec *s, struct te_xv *out, struct te_xv *args,
                 size_t n, te_error *err)
{
	(void)s;
	(void)n;
	return set_bool(out, !te_render__xtruth(&args[0]), err);
}

static int b_len(struct te_exec *s, struct te_xv *out, struct te_xv *args,
                 size_t n, te_error *err)
{
	const te_render_value *v = args[0].v;

	(void)s;
	(void)n;
	if (!v)
		return te_error_set(err, TE_EINVALID,
		                    "reflect: call of reflect.Value.Type on "
		                    "zero Value");
	switch (v->kind) {
	case TE_RENDER_NIL:
		return te_error_set(err, TE_EINVALID, "len of nil pointer");
	case TE_RENDER_STRING:
		return set_int(out, (int64_t)v->u.s.len, err);
	case TE_RENDER_LIST:
	case TE_RENDER_MAP:
		return set_int(out, (int64_t)te_render_value_len(v), err);
	default:
		return te_error_set(err, TE_EINVALID, "len of type %s",
		                    te_render__typename(v, false));
	}
}

/* indexArg: an int index within 0..cap. */
static int index_arg(const struct te_xv *x, size_t cap, size_t *out,
                     te_error *err)
{
	const te_render_value *v = ind(x);

	if (!v)
		return te_error_set(err, TE_EINVALID,
		                    "cannot index slice/array with nil");
	if (v->kind != TE_RENDER_INT)
		return te_error_set(err, TE_EINVALID,
		                    "cannot index slice/array with type %s",
		                    te_render__typename(v, false));
	if (v->u.i < 0 || (uint64_t)v->u.i > cap)
		return te_error_set(err, TE_EINVALID,
		                    "index out of range: %lld",
		                    (long long)v->u.i);
	*out = (size_t)v->u.i;
	return 0;
}

static int index_one(struct te_xv *item, const struct te_xv *index,
                     te_error *err)
{
	const te_render_value *v = item->v, *k;
	te_render_value *r;
	size_t x;

	if (v && v->kind == TE_RENDER_NIL)
		return te_error_set(err, TE_EINVALID, "index of nil pointer");
	switch (v->kind) {
	case TE_RENDER_LIST:
	case TE_RENDER_STRING:
		if (index_arg(index,
		              v->kind == TE_RENDER_STRING ? v->u.s.len
		                                          : v->u.list.len,
		              &x, err) < 0)
			return err->code;
		if (v->kind == TE_RENDER_STRING) {
			if (x >= v->u.s.len)
				return te_error_set(err, TE_EINVALID,
				                    "reflect: string index out "
				                    "of range");
			r = te_render_value_int((unsigned char)v->u.s.ptr[x]);
			if (!r)
				return te_error_set(err, TE_ENOMEM,
				                    "out of memory");
			te_render_value_unref(item->v);
			item->v = r;
			item->boxed = false;
			return 0;
		}
		if (x >= v->u.list.len)
			return te_error_set(
			    err, TE_EINVALID,
			    "reflect: slice index out of range");
		r = te_render_value_ref(v->u.list.items[x]);
		break;
	case TE_RENDER_MAP:
		k = ind(index);
		if (!k)
			return te_error_set(err, TE_EINVALID,
			                    "value is nil; should be of type "
			                    "string");
		if (k->kind != TE_RENDER_STRING)
			return te_error_set(
			    err, TE_EINVALID,
			    "value has type %s; should be string",
			    te_render__typename(k, false));
		r = te_render_map_get(v, k->u.s.ptr, k->u.s.len);
		r = r ? te_render_value_ref(r) : te_render_value_nil();
		if (!r)
			return te_error_set(err, TE_ENOMEM, "out of memory");
		break;
	default:
		return te_error_set(err, TE_EINVALID,
		                    "can't index item of type %s",
		                    te_render__typename(v, false));
	}
	te_render_value_unref(item->v);
	item->v = r;
	item->boxed = true;
	return 0;
}

static int b_index(struct te_exec *s, struct te_xv *out, struct te_xv *args,
                   size_t n, te_error *err)
{
	struct te_xv item = {NULL, false};
	size_t i;

	(void)s;
	if (!ind(&args[0]))
		return te_error_set(err, TE_EINVALID, "index of untyped nil");
	item.v = te_render_value_ref(args[0].v);
	item.boxed = args[0].boxed;
	for (i = 1; i < n; i++) {
		if (index_one(&item, &args[i], err) < 0) {
			te_render_value_unref(item.v);
			return err->code;
		}
	}
	*out = item;
	return 0;
}

static int b_slice(struct te_exec *s, struct te_xv *out, struct te_xv *args,
                   size_t n, te_error *err)
{
	const te_render_value *v = ind(&args[0]);
	size_t idx[3] = {0, 0, 0}, cap, i;
	te_render_value *r;

	(void)s;
	if (!v)
		return te_error_set(err, TE_EINVALID, "slice of untyped nil");
	if (n - 1 > 3)
		return te_error_set(err, TE_EINVALID,
		                    "too many slice indexes: %zu", n - 1);
	if (v->kind == TE_RENDER_STRING) {
		if (n - 1 == 3)
			return te_error_set(err, TE_EINVALID,
			                    "cannot 3-index slice a string");
		cap = v->u.s.len;
	} else if (v->kind == TE_RENDER_LIST) {
		cap = v->u.list.len;
	} else {
		return te_error_set(err, TE_EINVALID,
		                    "can't slice item of type %s",
		                    te_render__typename(v, false));
	}
	idx[1] = cap;
	for (i = 1; i < n; i++) {
		/* unlike index, Go's slice does not look through interface{}:
		 * an index read from a map or list is refused */
		if (args[i].boxed)
			return te_error_set(
			    err, TE_EINVALID,
			    "cannot index slice/array with type "
			    "interface {}");
		if (index_arg(&args[i], cap, &idx[i - 1], err) < 0)
			return err->code;
	}
	if (idx[0] > idx[1])
		return te_error_set(err, TE_EINVALID,
		                    "invalid slice index: %zu > %zu", idx[0],
		                    idx[1]);
	if (n - 1 == 3 && idx[1] > idx[2])
		return te_error_set(err, TE_EINVALID,
		                    "invalid slice index: %zu > %zu", idx[1],
		                    idx[2]);
	if (v->kind == TE_RENDER_STRING) {
		r = te_render_value_string(v->u.s.ptr + idx[0],
		                           idx[1] - idx[0]);
	} else {
		r = te_render_value_list();
		for (i = idx[0]; r && i < idx[1]; i++)
			if (te_render_list_push(
			        r, te_render_value_ref(v->u.list.items[i]),
			        err) < 0) {
				te_render_value_unref(r);
				return err->code;
			}
	}
	if (!r)
		return te_error_set(err, TE_ENOMEM, "out of memory");
	out->v = r;
	out->boxed = false;
	return 0;
}

/* Strings builtins build are capped like the output. */
static size_t out_max(const struct te_exec *s)
{
	return s->set->limits.output_max;
}

static int b_print(struct te_exec *s, struct te_xv *out, struct te_xv *args,
                   size_t n, bool ln, te_error *err)
{
	te_buf b = TE_BUF_INIT(out_max(s));
	te_render_value **a = plain_args(args, n);
	int rc;

	if (!a)
		return te_error_set(err, TE_ENOMEM, "out of memory");
	te_render__sprint(&b, a, n, ln, err);
	free(a);
	rc = set_buf(out, &b, err);
	te_buf_dispose(&b);
	return rc;
}

static int b_sprint(struct te_exec *s, struct te_xv *out, struct te_xv *args,
                    size_t n, te_error *err)
{
	return b_print(s, out, args, n, false, err);
}

static int b_sprintln(struct te_exec *s, struct te_xv *out, struct te_xv *args,
                      size_t n, te_error *err)
{
	return b_print(s, out, args, n, true, err);
}

static int b_sprintf(struct te_exec *s, struct te_xv *out, struct te_xv *args,
                     size_t n, te_error *err)
{
	te_buf b = TE_BUF_INIT(out_max(s));
	te_render_value **a = plain_args(args + 1, n - 1);
	const te_render_value *f = args[0].v;
	int rc;

	if (!a)
		return te_error_set(err, TE_ENOMEM, "out of memory");
	te_render__sprintf(&b, f->u.s.ptr, f->u.s.len, a, n - 1, err);
	free(a);
	rc = set_buf(out, &b, err);
	te_buf_dispose(&b);
	return rc;
}

/* evalArgs of funcs.go: a lone string as is, else fmt.Sprint with nil
 * arguments shown as "<no value>" (printableValue of an invalid value). */
static int eval_args(te_buf *b, struct te_xv *args, size_t n, te_error *err)
{
	te_render_value **a, *novalue = NULL;
	size_t i;

	if (n == 1 && args[0].v && args[0].v->kind == TE_RENDER_STRING)
		return te_buf_put(b, args[0].v->u.s.ptr, args[0].v->u.s.len,
		                  err);
	a = plain_args(args, n);
	if (!a)
		return te_error_set(err, TE_ENOMEM, "out of memory");
	for (i = 0; i < n; i++) {
		if (a[i] && a[i]->kind != TE_RENDER_NIL)
			continue;
		if (!novalue)
			novalue = te_render_value_string("<no value>", 10);
		if (!novalue) {
			free(a);
			return te_error_set(err, TE_ENOMEM, "out of memory");
		}
		a[i] = novalue;
	}
	te_render__sprint(b, a, n, false, err);
	te_render_value_unref(novalue);
	free(a);
	return err->code;
}

static int b_html(struct te_exec *s, struct te_xv *out, struct te_xv *args,
                  size_t n, te_error *err)
{
	te_buf in = TE_BUF_INIT(out_max(s)), b = TE_BUF_INIT(out_max(s));
	size_t i;
	int rc;

	if (eval_args(&in, args, n, err) == 0) {
		for (i = 0; i < in.len && !err->code; i++) {
			switch (in.ptr[i]) {
			case '\0':
				te_buf_puts(&b, "\xef\xbf\xbd", err);
				break;
			case '"':
				te_buf_puts(&b, "&#34;", err);
				break;
			case '\'':
				te_buf_puts(&b, "&#39;", err);
				break;
			case '&':
				te_buf_puts(&b, "&amp;", err);
				break;
			case '<':
				te_buf_puts(&b, "&lt;", err);
				break;
			case '>':
				te_buf_puts(&b, "&gt;", err);
				break;
			default:
				te_buf_put(&b, in.ptr + i, 1, err);
			}
		}
	}
	rc = set_buf(out, &b, err);
	te_buf_dispose(&in);
	te_buf_dispose(&b);
	return rc;
}

static void js_escape(te_buf *b, const char *s, size_t n, te_error *err)
{
	static const char hex[] = "0123456789ABCDEF";
	size_t i, w;
	int32_t r;
	char u[8];

	for (i = 0; i < n && !err->code; i++) {
		unsigned char c = (unsigned char)s[i];

		switch (c) {
		case '\\':
			te_buf_puts(b, "\\\\", err);
			continue;
		case '\'':
			te_buf_puts(b, "\\'", err);
			continue;
		case '"':
			te_buf_puts(b, "\\\"", err);
			continue;
		case '<':
			te_buf_puts(b, "\\u003C", err);
			continue;
		case '>':
			te_buf_puts(b, "\\u003E", err);
			continue;
		case '&':
			te_buf_puts(b, "\\u0026", err);
			continue;
		case '=':
			te_buf_puts(b, "\\u003D", err);
			continue;
		default:
			break;
		}
		if (c < ' ') {
			u[0] = '\\', u[1] = 'u', u[2] = '0', u[3] = '0';
			u[4] = hex[c >> 4], u[5] = hex[c & 15];
			te_buf_put(b, u, 6, err);
			continue;
		}
		if (c < 0x80) {
			te_buf_put(b, s + i, 1, err);
			continue;
		}
		r = te_render__rune(s + i, n - i, &w);
		if (te_render__is_print(r) || (r == 0xFFFD && w == 1))
			te_buf_put(b, s + i, w, err);
		else
			te_buf_printf(b, err, "\\u%04X", (unsigned)r);
		i += w - 1;
	}
}

static int b_js(struct te_exec *s, struct te_xv *out, struct te_xv *args,
                size_t n, te_error *err)
{
	te_buf in = TE_BUF_INIT(out_max(s)), b = TE_BUF_INIT(out_max(s));
	int rc;

	if (eval_args(&in, args, n, err) == 0)
		js_escape(&b, in.ptr, in.len, err);
	rc = set_buf(out, &b, err);
	te_buf_dispose(&in);
	te_buf_dispose(&b);
	return rc;
}

static int b_urlquery(struct te_exec *s, struct te_xv *out, struct te_xv *args,
                      size_t n, te_error *err)
{
	te_buf in = TE_BUF_INIT(out_max(s)), b = TE_BUF_INIT(out_max(s));
	size_t i;
	int rc;

	if (eval_args(&in, args, n, err) == 0) {
		for (i = 0; i < in.len && !err->code; i++) {
			unsigned char c = (unsigned char)in.ptr[i];

			if ((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') ||
			    (c >= '0' && c <= '9') || strchr("-_.~", c))
				te_buf_put(&b, in.ptr + i, 1, err);
			else if (c == ' ')
				te_buf_puts(&b, "+", err);
			else
				te_buf_printf(&b, err, "%%%02X", c);
		}
	}
	rc = set_buf(out, &b, err);
	te_buf_dispose(&in);
	te_buf_dispose(&b);
	return rc;
}

static int b_call(struct te_exec *s, struct te_xv *out, struct te_xv *args,
                  size_t n, te_error *err)
{
	const te_render_value *f = ind(&args[0]);

	(void)s;
	(void)out;
	(void)n;
	/* the value model has no function values */
	if (!f)
		return te_error_set(err, TE_EINVALID, "call of nil");
	return te_error_set(err, TE_EINVALID, "non-function of type %s",
	                    te_render__typename(f, false));
}

/* ---- comparisons ---- */

enum bkind { K_INVALID, K_BOOL, K_INT, K_FLOAT, K_STRING };

static enum bkind basic_kind(const te_render_value *v)
{
	switch (te_render_value_kind(v)) {
	case TE_RENDER_BOOL:
		return K_BOOL;
	case TE_RENDER_INT:
		return K_INT;
	case TE_RENDER_FLOAT:
		return K_FLOAT;
	case TE_RENDER_STRING:
		return K_STRING;
	default:
		return K_INVALID;
	}
}

static int str_cmp(const te_render_value *a, const te_render_value *b)
{
	size_t n = a->u.s.len < b->u.s.len ? a->u.s.len : b->u.s.len;
	int c = memcmp(a->u.s.ptr, b->u.s.ptr, n);

	if (c)
		return c;
	return a->u.s.len < b->u.s.len ? -1 : a->u.s.len > b->u.s.len;
}

/* Go formats these values with %s (so %!s(int=1) shows up) or %v. */
static int print_for_error(te_buf *b, const te_render_value *v, bool verb_s,
                           te_error *err)
{
	te_render_value *arg = (te_render_value *)v;

	return te_render__sprintf(b, verb_s ? "%s" : "%v", 2, &arg, 1, err);
}

static int non_comparable(const te_render_value *a, const te_render_value *b,
                          bool two, te_error *err)
{
	te_buf sa = TE_BUF_INIT(TE_RENDER_MSG_VALUE_MAX),
	       sb = TE_BUF_INIT(TE_RENDER_MSG_VALUE_MAX);
	te_error e = TE_ERROR_INIT;

	print_for_error(&sa, a, true, &e);
	print_for_error(&sb, b, !two, &e);
	if (two)
		te_error_set(err, TE_EINVALID,
		             "non-comparable types %s: %s, %s: %s", sa.ptr,
		             te_render__typename(a, false),
		             te_render__typename(b, false), sb.ptr);
	else
		te_error_set(err, TE_EINVALID, "non-comparable type %s: %s",
		             sb.ptr, te_render__typename(b, false));
	te_buf_dispose(&sa);
	te_buf_dispose(&sb);
	return err->code;
}

static int eq_one(const te_render_value *a, const te_render_value *b,
                  bool *truth, te_error *err)
{
	enum bkind k1 = basic_kind(a), k2 = basic_kind(b);

	*truth = false;
	if (k1 != k2) {
		if (a && b)
			return te_error_set(
			    err, TE_EINVALID,
			    "incompatible types for comparison");
		return 0;
	}
	switch (k1) {
	case K_BOOL:
		*truth = a->u.b == b->u.b;
		return 0;
	case K_INT:
		*truth = a->u.i == b->u.i;
		return 0;
	case K_FLOAT:
		*truth = a->u.f == b->u.f;
		return 0;
	case K_STRING:
		*truth = str_cmp(a, b) == 0;
		return 0;
	default:
		break;
	}
	/* lists, maps and nil */
	if (a && b && a->kind != b->kind)
		return non_comparable(a, b, true, err);
	if (!a || !b) {
		*truth = !a == !b;
		return 0;
	}
	return non_comparable(a, b, false, err);
}

static int b_eq(struct te_exec *s, struct te_xv *out, struct te_xv *args,
                size_t n, te_error *err)
{
	bool truth = false;
	size_t i;

	(void)s;
	if (n < 2)
		return te_error_set(err, TE_EINVALID,
		                    "missing argument for comparison");
	for (i = 1; i < n && !truth; i++)
		if (eq_one(ind(&args[0]), ind(&args[i]), &truth, err) < 0)
			return err->code;
	return set_bool(out, truth, err);
}

static int b_ne(struct te_exec *s, struct te_xv *out, struct te_xv *args,
                size_t n, te_error *err)
{
	bool truth;

	(void)s;
	(void)n;
	if (eq_one(ind(&args[0]), ind(&args[1]), &truth, err) < 0)
		return err->code;
	return set_bool(out, !truth, err);
}

static int lt_one(const te_render_value *a, const te_render_value *b,
                  bool *truth, te_error *err)
{
	enum bkind k1 = basic_kind(a), k2 = basic_kind(b);

	*truth = false;
	if (k1 == K_INVALID || k2 == K_INVALID)
		return te_error_set(err, TE_EINVALID,
		                    "invalid type for comparison");
	if (k1 != k2)
		return te_error_set(err, TE_EINVALID,
		                    "incompatible types for comparison");
	switch (k1) {
	case K_INT:
		*truth = a->u.i < b->u.i;
		return 0;
	case K_FLOAT:
		*truth = a->u.f < b->u.f;
		return 0;
	case K_STRING:
		*truth = str_cmp(a, b) < 0;
		return 0;
	default:
		return te_error_set(err, TE_EINVALID,
		                    "invalid type for comparison");
	}
}

static int compare(struct te_xv *args, char op, bool *truth, te_error *err)
{
	const te_render_value *a = ind(&args[0]), *b = ind(&args[1]);
	bool lt, eq;

	if (lt_one(a, b, &lt, err) < 0)
		return err->code;
	switch (op) {
	case '<':
		*truth = lt;
		return 0;
	case '>':
		*truth = !lt;
		return 0;
	default:
		break;
	}
	/* le (op 'l') and gt (op 'g') need equality too */
	eq = false;
	if (!lt && eq_one(a, b, &eq, err) < 0)
		return err->code;
	*truth = op == 'l' ? (lt || eq) : !(lt || eq);
	return 0;
}

#define CMP_FN(fname, op)                                                      \
	static int fname(struct te_exec *s, struct te_xv *out,                 \
	                 struct te_xv *args, size_t n, te_error *err)          \
	{                                                                      \
		bool truth;                                                    \
		(void)s;                                                       \
		(void)n;                                                       \
		if (compare(args, op, &truth, err) < 0)                        \
			return err->code;                                      \
		return set_bool(out, truth, err);                              \
	}

CMP_FN(b_lt, '<')
CMP_FN(b_ge, '>')
CMP_FN(b_le, 'l')
CMP_FN(b_gt, 'g')

/* and/or never run through here: exec.c evaluates them lazily. */
static int b_lazy(struct te_exec *s, struct te_xv *out, struct te_xv *args,
                  size_t n, te_error *err)
{
	(void)s;
	(void)out;
	(void)args;
	(void)n;
	return te_error_set(err, TE_ERROR, "internal error: lazy builtin");
}

#define V TE_RENDER_VARIADIC
#define R TE_FN_REFLECT
static const struct te_func builtins[] = {
    {"and", NULL, b_lazy, 1, V, NULL, R},
    {"call", NULL, b_call, 1, V, NULL, R},
    {"eq", NULL, b_eq, 1, V, NULL, R},
    {"ge", NULL, b_ge, 2, 2, NULL, R},
    {"gt", NULL, b_gt, 2, 2, NULL, R},
    {"html", NULL, b_html, 0, V, NULL, 0},
    {"index", NULL, b_index, 1, V, NULL, R},
    {"js", NULL, b_js, 0, V, NULL, 0},
    {"le", NULL, b_le, 2, 2, NULL, R},
    {"len", NULL, b_len, 1, 1, NULL, R},
    {"lt", NULL, b_lt, 2, 2, NULL, R},
    {"ne", NULL, b_ne, 2, 2, NULL, R},
    {"not", NULL, b_not, 1, 1, NULL, R},
    {"or", NULL, b_lazy, 1, V, NULL, R},
    {"print", NULL, b_sprint, 0, V, NULL, 0},
    {"printf", NULL, b_sprintf, 1, V, NULL, TE_FN_FMT_STRING},
    {"println", NULL, b_sprintln, 0, V, NULL, 0},
    {"slice", NULL, b_slice, 1, V, NULL, R},
    {"urlquery", NULL, b_urlquery, 0, V, NULL, 0},
};
#undef R
#undef V

static int builtin_cmp(const void *key, const void *elem)
{
	return strcmp((const char *)key, ((const struct te_func *)elem)->name);
}

/* builtins[] is in name order. */
int te_render__builtins_find(const struct te_func **out, const char *name)
{
	*out = bsearch(name, builtins, sizeof(builtins) / sizeof(builtins[0]),
	               sizeof(builtins[0]), builtin_cmp);
	return *out ? 0 : TE_ENOTFOUND;
}
