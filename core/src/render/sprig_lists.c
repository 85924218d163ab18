/*
 * sprig_lists.c - Sprig v3.2.3's list and dict functions (list.go,
 * dict.go; https://masterminds.github.io/sprig/lists.html and
 * dicts.html): list tuple first last rest initial reverse compact uniq
 * without has append push prepend concat sortAlpha and their must*
 * forms; dict get hasKey pluck keys pick omit values.
 *
 * Lists and maps built here are new values: arguments are never changed.
 * Go's map iteration order is random, so where Sprig's result follows it
 * (keys, values) this gives one of Go's possible orders: key order.
 */
#include <stdlib.h>
#include <string.h>

#include "render/sprig_int.h"

/* What Sprig's reflect.TypeOf(x).Kind() does with x: a panic for nil (Go
 * reports the runtime error), its own error naming the kind otherwise.
 * what: Sprig's message up to the kind ("Cannot find first on type"). */
static int sp_want_list(const te_render_value *v, const char *what,
                        te_error *err)
{
	if (!v || v->kind == TE_RENDER_NIL)
		return te_error_set(err, TE_EINVALID,
		                    "runtime error: invalid memory address or "
		                    "nil pointer dereference");
	if (v->kind == TE_RENDER_LIST)
		return 0;
	return te_error_set(err, TE_EINVALID, "%s %s", what, sp_kind(v));
}

static int sp_push(te_render_value *list, te_render_value *item, te_error *err)
{
	return te_render_list_push(list, te_render_value_ref(item), err);
}

/* A new list of items[from, to), skipping those drop() refuses. */
static int sp_sublist(te_render_value **out, const te_render_value *l,
                      size_t from, size_t to, te_error *err)
{
	te_render_value *r = te_render_value_list();
	size_t i;

	if (!r)
		return te_error_set(err, TE_ENOMEM, "out of memory");
	for (i = from; i < to; i++)
		if (sp_push(r, l->u.list.items[i], err) < 0) {
			te_render_value_unref(r);
			return err->code;
		}
	*out = r;
	return 0;
}

static int f_list(te_render_value **out, te_render_call *call, sp_args a,
                  size_t n, void *p, te_error *err)
{
	te_render_value *r = te_render_value_list();
	size_t i;

	(void)p;
	if (!r)
		return te_error_set(err, TE_ENOMEM, "out of memory");
	for (i = 0; i < n; i++)
		if (sp_nest_check(call, a[i], err) < 0 ||
		    sp_push(r, a[i], err) < 0) {
			te_render_value_unref(r);
			return err->code;
		}
	*out = r;
	return 0;
}

/* first (payload "first") and last. */
static int f_first_last(te_render_value **out, te_render_call *call, sp_args a,
                        size_t n, void *p, te_error *err)
{
	bool first = !strcmp(p, "first");
	size_t len;

	(void)call;
	(void)n;
	if (sp_want_list(a[0],
	                 first ? "Cannot find first on type"
	                       : "Cannot find last on type",
	                 err) < 0)
		return err->code;
	len = a[0]->u.list.len;
	if (len == 0)
		return sp_ret_ref(out, NULL, err);
	return sp_ret_ref(out, a[0]->u.list.items[first ? 0 : len - 1], err);
}

/* rest (payload "rest") and initial: all but the first or the last. */
static int f_rest_initial(te_render_value **out, te_render_call *call,
                          sp_args a, size_t n, void *p, te_error *err)
{
	bool rest = !strcmp(p, "rest");
	size_t len;

	(void)call;
	(void)n;
	if (sp_want_list(a[0],
	                 rest ? "Cannot find rest on type"
	                      : "Cannot find initial on type",
	                 err) < 0)
		return err->code;
	len = a[0]->u.list.len;
	if (len == 0)
		return sp_sublist(out, a[0], 0, 0, err);
	return sp_sublist(out, a[0], rest ? 1 : 0, rest ? len : len - 1, err);
}

static int f_reverse(te_render_value **out, te_render_call *call, sp_args a,
                     size_t n, void *p, te_error *err)
{
	te_render_value *r;
	size_t i, len;

	(void)call;
	(void)n;
	(void)p;
	if (sp_want_list(a[0], "Cannot find reverse on type", err) < 0)
		return err->code;
	r = te_render_value_list();
	if (!r)
		return te_error_set(err, TE_ENOMEM, "out of memory");
	len = a[0]->u.list.len;
	for (i = len; i > 0; i--)
		if (sp_push(r, a[0]->u.list.items[i - 1], err) < 0) {
			te_render_value_unref(r);
			return err->code;
		}
	*out = r;
	return 0;
}

static bool in_values(te_render_value *const *hay, size_t n,
                      const te_render_value *needle)
{
	size_t i;

	for (i = 0; i < n; i++)
		if (sp_deep_equal(needle, hay[i]))
			return true;
	return false;
}

/* compact (payload "compact"), uniq and without: the elements kept, in
 * order.  uniq and without compare every pair: a step per 8 compares. */
static int f_filter(te_render_value **out, te_render_call *call, sp_args a,
                    size_t n, void *p, te_error *err)
{
	const char *op = p;
	te_render_value *r, *item;
	size_t i, len;
	bool keep;

	if (sp_want_list(a[0],
	                 !strcmp(op, "compact") ? "Cannot compact on type"
	                 : !strcmp(op, "uniq")  ? "Cannot find uniq on type"
	                                        : "Cannot find without on type",
	                 err) < 0)
		return err->code;
	r = te_render_value_list();
	if (!r)
		return te_error_set(err, TE_ENOMEM, "out of memory");
	len = a[0]->u.list.len;
	for (i = 0; i < len; i++) {
		item = a[0]->u.list.items[i];
		if (!strcmp(op, "compact")) {
			keep = !sp_empty(item);
		} else if (!strcmp(op, "uniq")) {
			keep = !in_values(r->u.list.items, r->u.list.len, item);
			if (sp_steps(call, r->u.list.len / 8, err) < 0)
				goto fail;
		} else {
			keep = !in_values(a + 1, n - 1, item);
			if (sp_steps(call, (n - 1) / 8, err) < 0)
				goto fail;
		}
		if (keep && sp_push(r, item, err) < 0)
			goto fail;
	}
	*out = r;
	return 0;
fail:
	te_render_value_unref(r);
	return err->code;
}

/* has NEEDLE LIST; a nil list has nothing. */
static int f_has(te_render_value **out, te_render_call *call, sp_args a,
                 size_t n, void *p, te_error *err)
{
	(void)n;
	(void)p;
	if (!a[1] || a[1]->kind == TE_RENDER_NIL)
		return sp_ret_bool(out, false, err);
	if (sp_want_list(a[1], "Cannot find has on type", err) < 0 ||
	    sp_steps(call, a[1]->u.list.len / 8, err) < 0)
		return err->code;
	return sp_ret_bool(
	    out, in_values(a[1]->u.list.items, a[1]->u.list.len, a[0]), err);
}

/* append/push (payload "push") and prepend: a new list with one more. */
static int f_push(te_render_value **out, te_render_call *call, sp_args a,
                  size_t n, void *p, te_error *err)
{
	bool push = !strcmp(p, "push");
	te_render_value *r = NULL;

	(void)n;
	if (sp_want_list(
	        a[0], push ? "Cannot push on type" : "Cannot prepend on type",
	        err) < 0 ||
	    sp_nest_check(call, a[1], err) < 0)
		return err->code;
	if (push) {
		if (sp_sublist(&r, a[0], 0, a[0]->u.list.len, err) < 0 ||
		    sp_push(r, a[1], err) < 0)
			goto fail;
	} else {
		r = te_render_value_list();
		if (!r)
			return te_error_set(err, TE_ENOMEM, "out of memory");
		if (sp_push(r, a[1], err) < 0)
			goto fail;
		for (size_t i = 0; i < a[0]->u.list.len; i++)
			if (sp_push(r, a[0]->u.list.items[i], err) < 0)
				goto fail;
	}
	*out = r;
	return 0;
fail:
	te_render_value_unref(r);
	return err->code;
}

/* concat LISTS...: Sprig panics with a string for a non-list. */
static int f_concat(te_render_value **out, te_render_call *call, sp_args a,
                    size_t n, void *p, te_error *err)
{
	te_render_value *r = te_render_value_list();
	size_t i, j;

	(void)call;
	(void)p;
	if (!r)
		return te_error_set(err, TE_ENOMEM, "out of memory");
	for (i = 0; i < n; i++) {
		if (a[i] && a[i]->kind != TE_RENDER_NIL &&
		    a[i]->kind != TE_RENDER_LIST) {
			te_error_set(err, TE_EINVALID,
			             "Cannot concat type %s as list",
			             sp_kind(a[i]));
			goto fail;
		}
		if (sp_want_list(a[i], "", err) < 0)
			goto fail;
		for (j = 0; j < a[i]->u.list.len; j++)
			if (sp_push(r, a[i]->u.list.items[j], err) < 0)
				goto fail;
	}
	*out = r;
	return 0;
fail:
	te_render_value_unref(r);
	return err->code;
}

/* ---- sortAlpha ---- */

struct sp_str {
	char *s;
	size_t len;
};

static int sp_str_cmp(const void *x, const void *y)
{
	const struct sp_str *a = x, *b = y;
	int c = memcmp(a->s, b->s, a->len < b->len ? a->len : b->len);

	if (c)
		return c;
	return a->len < b->len ? -1 : a->len > b->len;
}

/* Sprig's strslice of a list (nils dropped) sorted bytewise; anything
 * else is a one-element list of its strval. */
static int f_sortalpha(te_render_value **out, te_render_call *call, sp_args a,
                       size_t n, void *p, te_error *err)
{
	const te_render_value *l = a[0];
	size_t cnt = l && l->kind == TE_RENDER_LIST ? l->u.list.len : 1, i,
	       k = 0;
	struct sp_str *v = calloc(cnt ? cnt : 1, sizeof(*v));
	te_render_value *r = te_render_value_list();
	te_buf b = TE_BUF_INIT(sp_out_max(call));

	(void)n;
	(void)p;
	if (!v || !r) {
		te_error_set(err, TE_ENOMEM, "out of memory");
		goto done;
	}
	for (i = 0; i < cnt && !err->code; i++) {
		const te_render_value *e =
		    l && l->kind == TE_RENDER_LIST ? l->u.list.items[i] : l;

		if (l && l->kind == TE_RENDER_LIST && e->kind == TE_RENDER_NIL)
			continue;
		te_buf_clear(&b);
		if (sp_strval(&b, e, err) < 0)
			break;
		v[k].len = b.len;
		v[k].s = malloc(b.len + 1);
		if (!v[k].s) {
			te_error_set(err, TE_ENOMEM, "out of memory");
			break;
		}
		memcpy(v[k++].s, b.ptr, b.len);
	}
	if (!err->code)
		qsort(v, k, sizeof(*v), sp_str_cmp);
	for (i = 0; i < k && !err->code; i++)
		te_render_list_push(r, te_render_value_string(v[i].s, v[i].len),
		                    err);
	if (!err->code && sp_steps(call, k / 8, err) == 0) {
		*out = r;
		r = NULL;
	}
done:
	for (i = 0; v && i < k; i++)
		free(v[i].s);
	free(v);
	te_buf_dispose(&b);
	te_render_value_unref(r);
	return err->code;
}

/* ---- dicts ---- */

/* A map[string]interface{} parameter: nil passes as Go's nil map. */
static int want_map(const te_render_value *v, te_error *err)
{
	if (!v || v->kind == TE_RENDER_NIL || v->kind == TE_RENDER_MAP)
		return 0;
	return sp_want(v, TE_RENDER_MAP, "map[string]interface {}", err);
}

static te_render_value *map_get(const te_render_value *m,
                                const te_render_value *key)
{
	if (!m || m->kind != TE_RENDER_MAP)
		return NULL;
	return te_render_map_get(m, key->u.s.ptr, key->u.s.len);
}

static int sp_map_put(te_render_value *m, const char *k, size_t kl,
                      te_render_value *v, te_error *err)
{
	return te_render_map_set(m, k, kl, te_render_value_ref(v), err);
}

/* dict K V ...: keys are strval'd, a last key without value gets "". */
static int f_dict(te_render_value **out, te_render_call *call, sp_args a,
                  size_t n, void *p, te_error *err)
{
	te_render_value *r = te_render_value_map(), *empty = NULL, *v;
	te_buf k = TE_BUF_INIT(sp_out_max(call));
	size_t i;

	(void)p;
	if (!r)
		return te_error_set(err, TE_ENOMEM, "out of memory");
	for (i = 0; i < n && !err->code; i += 2) {
		te_buf_clear(&k);
		if (sp_strval(&k, a[i], err) < 0)
			break;
		if (i + 1 < n) {
			v = a[i + 1];
			if (sp_nest_check(call, v, err) < 0)
				break;
		} else {
			empty = te_render_value_string("", 0);
			v = empty;
			if (!v) {
				te_error_set(err, TE_ENOMEM, "out of memory");
				break;
			}
		}
		sp_map_put(r, k.ptr, k.len, v, err);
	}
	te_buf_dispose(&k);
	te_render_value_unref(empty);
	if (err->code) {
		te_render_value_unref(r);
		return err->code;
	}
	*out = r;
	return 0;
}

/* get MAP KEY: the value, or "" when absent. */
static int f_get(te_render_value **out, te_render_call *call, sp_args a,
                 size_t n, void *p, te_error *err)
{
	te_render_value *v;

	(void)call;
	(void)n;
	(void)p;
	if (want_map(a[0], err) < 0 || WANT_STR(a[1]) < 0)
		return err->code;
	v = map_get(a[0], a[1]);
	if (v)
		return sp_ret_ref(out, v, err);
	return sp_ret(out, te_render_value_string("", 0), err);
}

static int f_haskey(te_render_value **out, te_render_call *call, sp_args a,
                    size_t n, void *p, te_error *err)
{
	(void)call;
	(void)n;
	(void)p;
	if (want_map(a[0], err) < 0 || WANT_STR(a[1]) < 0)
		return err->code;
	return sp_ret_bool(out, map_get(a[0], a[1]) != NULL, err);
}

/* pluck KEY MAPS...: the values of KEY in the maps that have it. */
static int f_pluck(te_render_value **out, te_render_call *call, sp_args a,
                   size_t n, void *p, te_error *err)
{
	te_render_value *r, *v;
	size_t i;

	(void)call;
	(void)p;
	if (WANT_STR(a[0]) < 0)
		return err->code;
	for (i = 1; i < n; i++)
		if (want_map(a[i], err) < 0)
			return err->code;
	r = te_render_value_list();
	if (!r)
		return te_error_set(err, TE_ENOMEM, "out of memory");
	for (i = 1; i < n; i++) {
		v = map_get(a[i], a[0]);
		if (v && sp_push(r, v, err) < 0) {
			te_render_value_unref(r);
			return err->code;
		}
	}
	*out = r;
	return 0;
}

/* keys MAPS... (payload "keys"), values MAP: in key order. */
static int f_keys_values(te_render_value **out, te_render_call *call, sp_args a,
                         size_t n, void *p, te_error *err)
{
	bool keys = !strcmp(p, "keys");
	te_render_value *r;
	const char *k;
	size_t i, j, kl;

	(void)call;
	for (i = 0; i < n; i++)
		if (want_map(a[i], err) < 0)
			return err->code;
	r = te_render_value_list();
	if (!r)
		return te_error_set(err, TE_ENOMEM, "out of memory");
	for (i = 0; i < n && !err->code; i++) {
		for (j = 0; j < te_render_value_len(a[i]) && !err->code; j++) {
			if (!keys) {
				sp_push(r, te_render_map_value_at(a[i], j),
				        err);
				continue;
			}
			k = te_render_map_key_at(a[i], j, &kl);
			te_render_list_push(r, te_render_value_string(k, kl),
			                    err);
		}
	}
	if (err->code) {
		te_render_value_unref(r);
		return err->code;
	}
	*out = r;
	return 0;
}

/* pick MAP KEYS... (payload "pick") and omit MAP KEYS...: a new map. */
static int f_pick_omit(te_render_value **out, te_render_call *call, sp_args a,
                       size_t n, void *p, te_error *err)
{
	bool pick = !strcmp(p, "pick");
	te_render_value *r, *v;
	const char *k;
	size_t i, j, kl;
	bool listed;

	if (want_map(a[0], err) < 0)
		return err->code;
	for (i = 1; i < n; i++)
		if (WANT_STR(a[i]) < 0)
			return err->code;
	r = te_render_value_map();
	if (!r)
		return te_error_set(err, TE_ENOMEM, "out of memory");
	if (sp_steps(call, te_render_value_len(a[0]) * (n - 1) / 8, err) < 0)
		goto fail;
	for (i = 0; i < te_render_value_len(a[0]); i++) {
		k = te_render_map_key_at(a[0], i, &kl);
		v = te_render_map_value_at(a[0], i);
		listed = false;
		for (j = 1; j < n && !listed; j++)
			listed = a[j]->u.s.len == kl &&
			         !memcmp(a[j]->u.s.ptr, k, kl);
		if (listed == pick && sp_map_put(r, k, kl, v, err) < 0)
			goto fail;
	}
	*out = r;
	return 0;
fail:
	te_render_value_unref(r);
	return err->code;
}

/* Go's failed type assertion x.(T) on an interface{} value. */
static int conversion_error(const te_render_value *v, const char *want,
                            te_error *err)
{
	return te_error_set(err, TE_EINVALID,
	                    "interface conversion: interface {} is %s, not %s",
	                    v && v->kind != TE_RENDER_NIL ? sp_type(v) : "nil",
	                    want);
}

#define GO_MAP "map[string]interface {}"

/* dig KEYS... DEFAULT MAP: the value at the path of keys, DEFAULT when a
 * key is missing; a step that is no map is Go's failed assertion. */
static int f_dig(te_render_value **out, te_render_call *call, sp_args a,
                 size_t n, void *p, te_error *err)
{
	const te_render_value *m;
	te_render_value *step;
	size_t i;

	(void)call;
	(void)p;
	if (n < 3)
		return te_error_set(err, TE_EINVALID,
		                    "dig needs at least three arguments");
	m = a[n - 1];
	if (!m || m->kind != TE_RENDER_MAP)
		return conversion_error(m, GO_MAP, err);
	for (i = 0; i < n - 2; i++)
		if (!a[i] || a[i]->kind != TE_RENDER_STRING)
			return conversion_error(a[i], "string", err);
	for (i = 0; i < n - 2; i++) {
		if (!m || m->kind != TE_RENDER_MAP)
			return conversion_error(m, GO_MAP, err);
		step = te_render_map_get(m, a[i]->u.s.ptr, a[i]->u.s.len);
		if (!step)
			return sp_ret_ref(out, a[n - 2], err);
		m = step;
	}
	return sp_ret_ref(out, (te_render_value *)m, err);
}

/* A copy of v sharing nothing with it (values nest at most
 * SP_DEPTH_MAX deep, so the recursion is bounded). */
static te_render_value *deep_copy(const te_render_value *v, size_t *nodes,
                                  te_error *err)
{
	te_render_value *r;
	const char *k;
	size_t i, kl;

	(*nodes)++;
	switch (v ? v->kind : TE_RENDER_NIL) {
	case TE_RENDER_LIST:
		r = te_render_value_list();
		for (i = 0; r && i < v->u.list.len; i++)
			if (te_render_list_push(
			        r, deep_copy(v->u.list.items[i], nodes, err),
			        err) < 0)
				break;
		break;
	case TE_RENDER_MAP:
		r = te_render_value_map();
		for (i = 0; r && i < v->u.map.len; i++) {
			k = te_render_map_key_at(v, i, &kl);
			if (te_render_map_set(
			        r, k, kl,
			        deep_copy(te_render_map_value_at(v, i), nodes,
			                  err),
			        err) < 0)
				break;
		}
		break;
	case TE_RENDER_STRING:
		r = te_render_value_string(v->u.s.ptr, v->u.s.len);
		break;
	default:
		r = te_render_value_ref((te_render_value *)v);
		break;
	}
	if (!r && !err->code)
		te_error_set(err, TE_ENOMEM, "out of memory");
	if (err->code) {
		te_render_value_unref(r);
		return NULL;
	}
	return r;
}

static int f_deepcopy(te_render_value **out, te_render_call *call, sp_args a,
                      size_t n, void *p, te_error *err)
{
	size_t nodes = 0;

	(void)n;
	(void)p;
	if (!a[0] || a[0]->kind == TE_RENDER_NIL) /* copystructure's panic */
		return te_error_set(
		    err, TE_EINVALID,
		    "reflect: call of reflect.Value.Type on zero "
		    "Value");
	/* the copy is as large as the argument, already in memory: its
	 * cost is charged afterwards, a step per 8 values */
	*out = deep_copy(a[0], &nodes, err);
	if (*out && sp_steps(call, nodes / 8, err) < 0) {
		te_render_value_unref(*out);
		*out = NULL;
	}
	return *out ? 0 : err->code;
}

#define V TE_RENDER_VARIADIC
const struct sp_entry te_render__sp_lists[] = {
    {"append", f_push, 2, 2, "push"},
    {"compact", f_filter, 1, 1, "compact"},
    {"concat", f_concat, 0, V, NULL},
    {"deepCopy", f_deepcopy, 1, 1, NULL},
    {"dict", f_dict, 0, V, NULL},
    {"dig", f_dig, 0, V, NULL},
    {"first", f_first_last, 1, 1, "first"},
    {"get", f_get, 2, 2, NULL},
    {"has", f_has, 2, 2, NULL},
    {"hasKey", f_haskey, 2, 2, NULL},
    {"initial", f_rest_initial, 1, 1, "initial"},
    {"keys", f_keys_values, 0, V, "keys"},
    {"last", f_first_last, 1, 1, "last"},
    {"list", f_list, 0, V, NULL},
    {"mustAppend", f_push, 2, 2, "push"},
    {"mustCompact", f_filter, 1, 1, "compact"},
    {"mustDeepCopy", f_deepcopy, 1, 1, NULL},
    {"mustFirst", f_first_last, 1, 1, "first"},
    {"mustHas", f_has, 2, 2, NULL},
    {"mustInitial", f_rest_initial, 1, 1, "initial"},
    {"mustLast", f_first_last, 1, 1, "last"},
    {"mustPrepend", f_push, 2, 2, "prepend"},
    {"mustPush", f_push, 2, 2, "push"},
    {"mustRest", f_rest_initial, 1, 1, "rest"},
    {"mustReverse", f_reverse, 1, 1, NULL},
    {"mustUniq", f_filter, 1, 1, "uniq"},
    {"mustWithout", f_filter, 1, V, "without"},
    {"omit", f_pick_omit, 1, V, "omit"},
    {"pick", f_pick_omit, 1, V, "pick"},
    {"pluck", f_pluck, 1, V, NULL},
    {"prepend", f_push, 2, 2, "prepend"},
    {"push", f_push, 2, 2, "push"},
    {"rest", f_rest_initial, 1, 1, "rest"},
    {"reverse", f_reverse, 1, 1, NULL},
    {"sortAlpha", f_sortalpha, 1, 1, NULL},
    {"tuple", f_list, 0, V, NULL},
    {"uniq", f_filter, 1, 1, "uniq"},
    {"values", f_keys_values, 1, 1, "values"},
    {"without", f_filter, 1, V, "without"},
};
#undef V
const size_t te_render__sp_lists_len =
    sizeof(te_render__sp_lists) / sizeof(te_render__sp_lists[0]);
