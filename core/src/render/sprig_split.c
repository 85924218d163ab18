/*
 * sprig_split.c - Sprig v3.2.3's splitting and joining (strings.go;
 * https://masterminds.github.io/sprig/string_slice.html): splitList split
 * splitn (Go's strings.Split/SplitN), join toStrings (Sprig's strslice)
 * and substr (Go's string slicing, its panics included).
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "render/sprig_int.h"

/* Go's strings.Index */
static const char *find(const char *s, size_t n, const char *x, size_t xn)
{
	size_t i;

	for (i = 0; xn <= n && i <= n - xn; i++)
		if (!memcmp(s + i, x, xn))
			return s + i;
	return NULL;
}

/* Go's strings.SplitN(s, sep, limit) as a list of strings; limit < 0:
 * all parts.  An empty sep splits after each UTF-8 sequence. */
static int split_n(te_render_value **out, te_render_call *call,
                   const te_render_value *s, const te_render_value *sep,
                   int64_t limit, te_error *err)
{
	const char *p = s->u.s.ptr, *end = p + s->u.s.len, *hit;
	te_render_value *r;
	uint64_t parts = 0, max;
	size_t w;

	/* the parts there are (runes for an empty sep), at most limit */
	for (hit = p; hit < end; parts++) {
		if (sep->u.s.len == 0) {
			te_render__rune(hit, (size_t)(end - hit), &w);
			hit += w;
		} else {
			hit = find(hit, (size_t)(end - hit), sep->u.s.ptr,
			           sep->u.s.len);
			if (!hit)
				break;
			hit += sep->u.s.len;
		}
	}
	max = sep->u.s.len ? parts + 1 : parts;
	if (limit >= 0 && (uint64_t)limit < max)
		max = (uint64_t)limit;
	if (sp_list_budget(call, max, err) < 0)
		return err->code;
	r = te_render_value_list();
	if (!r)
		return te_error_set(err, TE_ENOMEM, "out of memory");
	for (; max > 1; max--) {
		if (sep->u.s.len == 0) {
			/* Go's explode turns an invalid byte into U+FFFD */
			if (te_render__rune(p, (size_t)(end - p), &w) ==
			        0xFFFD &&
			    w == 1) {
				if (te_render_list_push(r,
				                        te_render_value_string(
				                            "\xEF\xBF\xBD", 3),
				                        err) < 0)
					goto fail;
				p++;
				continue;
			}
			hit = p + w;
		} else {
			hit = find(p, (size_t)(end - p), sep->u.s.ptr,
			           sep->u.s.len);
		}
		if (te_render_list_push(
		        r, te_render_value_string(p, (size_t)(hit - p)), err) <
		    0)
			goto fail;
		p = sep->u.s.len ? hit + sep->u.s.len : hit;
	}
	if (max == 1 &&
	    te_render_list_push(r, te_render_value_string(p, (size_t)(end - p)),
	                        err) < 0)
		goto fail;
	*out = r;
	return 0;
fail:
	te_render_value_unref(r);
	return err->code;
}

/* The parts of a list as Sprig's split and splitn give them: a map from
 * "_0", "_1", ... */
static int parts_map(te_render_value **out, te_render_value *list,
                     te_error *err)
{
	te_render_value *m = te_render_value_map();
	char key[32];
	size_t i;
	int n;

	if (!m) {
		te_render_value_unref(list);
		return te_error_set(err, TE_ENOMEM, "out of memory");
	}
	for (i = 0; i < list->u.list.len; i++) {
		n = snprintf(key, sizeof(key), "_%zu", i);
		if (te_render_map_set(
		        m, key, (size_t)n,
		        te_render_value_ref(list->u.list.items[i]), err) < 0)
			break;
	}
	te_render_value_unref(list);
	if (err->code) {
		te_render_value_unref(m);
		return err->code;
	}
	*out = m;
	return 0;
}

/* splitList SEP S (payload NULL) and split SEP S (a map). */
static int f_split(te_render_value **out, te_render_call *call, sp_args a,
                   size_t n, void *p, te_error *err)
{
	te_render_value *l = NULL;

	(void)n;
	if (WANT_STR(a[0]) < 0 || WANT_STR(a[1]) < 0 ||
	    split_n(&l, call, a[1], a[0], -1, err) < 0)
		return err->code;
	if (!p) {
		*out = l;
		return 0;
	}
	return parts_map(out, l, err);
}

static int f_splitn(te_render_value **out, te_render_call *call, sp_args a,
                    size_t n, void *p, te_error *err)
{
	te_render_value *l = NULL;

	(void)n;
	(void)p;
	if (WANT_STR(a[0]) < 0 || WANT_INT(a[1]) < 0 || WANT_STR(a[2]) < 0 ||
	    split_n(&l, call, a[2], a[0], a[1]->u.i < 0 ? -1 : a[1]->u.i, err) <
	        0)
		return err->code;
	return parts_map(out, l, err);
}

/* Sprig's strslice: a list's non-nil elements, nil none, else the value
 * itself, each as strval gives it.  Joined by sep when sep is not NULL
 * (join), else returned as a list (toStrings). */
static int strslice(te_render_value **out, te_render_call *call,
                    const te_render_value *v, const te_render_value *sep,
                    te_error *err)
{
	te_buf b = TE_BUF_INIT(sp_out_max(call)),
	       one = TE_BUF_INIT(sp_out_max(call));
	const te_render_value *e;
	te_render_value *r = sep ? NULL : te_render_value_list();
	size_t i, cnt = v->kind == TE_RENDER_LIST ? v->u.list.len : 1, k = 0;

	if (!sep && !r)
		return te_error_set(err, TE_ENOMEM, "out of memory");
	for (i = 0; i < cnt && !err->code; i++) {
		e = v->kind == TE_RENDER_LIST ? v->u.list.items[i] : v;
		if (e->kind == TE_RENDER_NIL)
			continue;
		if (sep && k++ > 0)
			te_buf_put(&b, sep->u.s.ptr, sep->u.s.len, err);
		if (sep) {
			sp_strval(&b, e, err);
			continue;
		}
		te_buf_clear(&one);
		if (sp_strval(&one, e, err) == 0)
			te_render_list_push(
			    r, te_render_value_string(one.ptr, one.len), err);
	}
	te_buf_dispose(&one);
	if (sep)
		return sp_ret_buf(out, &b, err);
	if (err->code) {
		te_render_value_unref(r);
		return err->code;
	}
	*out = r;
	return 0;
}

static int f_join(te_render_value **out, te_render_call *call, sp_args a,
                  size_t n, void *p, te_error *err)
{
	(void)n;
	(void)p;
	if (WANT_STR(a[0]) < 0)
		return err->code;
	return strslice(out, call, a[1], a[0], err);
}

static int f_tostrings(te_render_value **out, te_render_call *call, sp_args a,
                       size_t n, void *p, te_error *err)
{
	(void)n;
	(void)p;
	return strslice(out, call, a[0], NULL, err);
}

/* substr START END S: s[:end] for a negative start, s[start:] for an end
 * out of range, else s[start:end]; bad bounds are Go's runtime panics. */
static int f_substr(te_render_value **out, te_render_call *call, sp_args a,
                    size_t n, void *p, te_error *err)
{
	int64_t start, end, len;

	(void)call;
	(void)n;
	(void)p;
	if (WANT_INT(a[0]) < 0 || WANT_INT(a[1]) < 0 || WANT_STR(a[2]) < 0)
		return err->code;
	start = a[0]->u.i;
	end = a[1]->u.i;
	len = (int64_t)a[2]->u.s.len;
	if (start < 0) {
		if (end < 0)
			return te_error_set(
			    err, TE_EINVALID,
			    "runtime error: slice bounds out of range [:%lld]",
			    (long long)end);
		if (end > len)
			return te_error_set(
			    err, TE_EINVALID,
			    "runtime error: slice bounds out of range [:%lld] "
			    "with length %lld",
			    (long long)end, (long long)len);
		start = 0;
	} else if (end < 0 || end > len) {
		if (start > len)
			return te_error_set(err, TE_EINVALID,
			                    "runtime error: slice bounds out "
			                    "of range [%lld:%lld]",
			                    (long long)start, (long long)len);
		end = len;
	} else if (start > end) {
		return te_error_set(
		    err, TE_EINVALID,
		    "runtime error: slice bounds out of range [%lld:%lld]",
		    (long long)start, (long long)end);
	}
	return sp_ret(out,
	              te_render_value_string(a[2]->u.s.ptr + start,
	                                     (size_t)(end - start)),
	              err);
}

#define V TE_RENDER_VARIADIC
const struct sp_entry te_render__sp_split[] = {
    {"join", f_join, 2, 2, NULL},       {"split", f_split, 2, 2, "map"},
    {"splitList", f_split, 2, 2, NULL}, {"splitn", f_splitn, 3, 3, NULL},
    {"substr", f_substr, 3, 3, NULL},   {"toStrings", f_tostrings, 1, 1, NULL},
};
#undef V
const size_t te_render__sp_split_len =
    sizeof(te_render__sp_split) / sizeof(te_render__sp_split[0]);
