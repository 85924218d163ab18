/*
 * value.c - the value model of the template engine (render.h).
 */
#include <jansson.h>
#include <stdlib.h>
#include <string.h>

#include "render/render_int.h"

#define JSON_DEPTH_MAX 512

static te_render_value *value_new(te_render_kind kind)
{
	te_render_value *v = calloc(1, sizeof(*v));

	if (v) {
		v->refs = 1;
		v->kind = kind;
	}
	return v;
}

te_render_value *te_render_value_nil(void)
{
	return value_new(TE_RENDER_NIL);
}

te_render_value *te_render_value_bool(bool b)
{
	te_render_value *v = value_new(TE_RENDER_BOOL);

	if (v)
		v->u.b = b;
	return v;
}

te_render_value *te_render_value_int(int64_t i)
{
	te_render_value *v = value_new(TE_RENDER_INT);

	if (v)
		v->u.i = i;
	return v;
}

te_render_value *te_render_value_float(double f)
{
	te_render_value *v = value_new(TE_RENDER_FLOAT);

	if (v)
		v->u.f = f;
	return v;
}

te_render_value *te_render__strown(char *s, size_t len)
{
	te_render_value *v = value_new(TE_RENDER_STRING);

	if (!v) {
		free(s);
		return NULL;
	}
	v->u.s.ptr = s;
	v->u.s.len = len;
	return v;
}

te_render_value *te_render_value_string(const char *s, size_t len)
{
	char *copy = malloc(len + 1);

	if (!copy)
		return NULL;
	if (len)
		memcpy(copy, s, len);
	copy[len] = '\0';
	return te_render__strown(copy, len);
}

te_render_value *te_render_value_list(void)
{
	return value_new(TE_RENDER_LIST);
}

te_render_value *te_render_value_map(void)
{
	return value_new(TE_RENDER_MAP);
}

te_render_value *te_render_value_object(const te_render_funcs *methods)
{
	te_render_value *v = te_render_value_map();

	if (v)
		v->methods = methods;
	return v;
}

te_render_value *te_render__object_with(const te_render_funcs *methods,
                                        te_render_value *inner)
{
	te_render_value *v = inner ? te_render_value_object(methods) : NULL;

	if (!v) {
		te_render_value_unref(inner);
		return NULL;
	}
	v->inner = inner;
	return v;
}

te_render_value *te_render__stringer(const te_render_value *v)
{
	return te_render__stringer_named(v, "String");
}

te_render_value *te_render__stringer_named(const te_render_value *v,
                                           const char *method)
{
	const struct te_func *f;
	struct te_render_call call = {NULL, v};
	te_render_value *r = NULL;
	te_error err = TE_ERROR_INIT;

	if (!v || !v->methods)
		return NULL;
	f = te_render__find_func(v->methods, method);
	if (!f || !f->fn || f->fn(&r, &call, NULL, 0, f->payload, &err) < 0 ||
	    !r || r->kind != TE_RENDER_STRING) {
		te_render_value_unref(r);
		return NULL;
	}
	return r;
}

te_render_value *te_render_value_ref(te_render_value *v)
{
	if (v)
		v->refs++;
	return v;
}

void te_render_value_unref(te_render_value *v)
{
	size_t i;

	if (!v || --v->refs > 0)
		return;
	te_render_value_unref(v->inner);
	switch (v->kind) {
	case TE_RENDER_STRING:
		free(v->u.s.ptr);
		break;
	case TE_RENDER_LIST:
		for (i = 0; i < v->u.list.len; i++) {
			v->u.list.items[i]->held--;
			te_render_value_unref(v->u.list.items[i]);
		}
		free(v->u.list.items);
		break;
	case TE_RENDER_MAP:
		for (i = 0; i < v->u.map.len; i++) {
			free(v->u.map.keys[i]);
			v->u.map.vals[i]->held--;
			te_render_value_unref(v->u.map.vals[i]);
		}
		free(v->u.map.keys);
		free(v->u.map.klens);
		free(v->u.map.vals);
		break;
	default:
		break;
	}
	free(v);
}

int te_render_list_push(te_render_value *list, te_render_value *item,
                        te_error *err)
{
	te_render_value **items;
	size_t cap;

	if (!list || list->kind != TE_RENDER_LIST || !item) {
		te_render_value_unref(item);
		return te_error_set(err, TE_EINVALID,
		                    "render: push onto a non-list value");
	}
	if (list->u.list.len == list->u.list.cap) {
		cap = list->u.list.cap ? list->u.list.cap * 2 : 4;
		items = realloc(list->u.list.items, cap * sizeof(*items));
		if (!items) {
			te_render_value_unref(item);
			return te_error_set(err, TE_ENOMEM, "out of memory");
		}
		list->u.list.items = items;
		list->u.list.cap = cap;
	}
	item->held++;
	list->u.list.items[list->u.list.len++] = item;
	return 0;
}

static int key_cmp(const char *a, size_t alen, const char *b, size_t blen)
{
	int c = memcmp(a, b, alen < blen ? alen : blen);

	if (c)
		return c;
	return alen < blen ? -1 : alen > blen;
}

/* Binary search: index of key, or where it belongs (*found false). */
static size_t map_find(const te_render_value *m, const char *key,
                       size_t key_len, bool *found)
{
	size_t lo = 0, hi = m->u.map.len, mid;
	int c;

	*found = false;
	while (lo < hi) {
		mid = lo + (hi - lo) / 2;
		c = key_cmp(m->u.map.keys[mid], m->u.map.klens[mid], key,
		            key_len);
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

static int map_reserve(te_render_value *m, size_t cap)
{
	char **keys;
	size_t *klens;
	te_render_value **vals;

	keys = realloc(m->u.map.keys, cap * sizeof(*keys));
	if (!keys)
		return -1;
	m->u.map.keys = keys;
	klens = realloc(m->u.map.klens, cap * sizeof(*klens));
	if (!klens)
		return -1;
	m->u.map.klens = klens;
	vals = realloc(m->u.map.vals, cap * sizeof(*vals));
	if (!vals)
		return -1;
	m->u.map.vals = vals;
	m->u.map.cap = cap;
	return 0;
}

static int map_grow(te_render_value *m)
{
	return map_reserve(m, m->u.map.cap ? m->u.map.cap * 2 : 4);
}

int te_render_map_set(te_render_value *map, const char *key, size_t key_len,
                      te_render_value *val, te_error *err)
{
	bool found;
	size_t at, tail;
	char *k;

	if (!map || map->kind != TE_RENDER_MAP || !val) {
		te_render_value_unref(val);
		return te_error_set(err, TE_EINVALID,
		                    "render: set on a non-map value");
	}
	at = map_find(map, key, key_len, &found);
	if (found) {
		val->held++;
		map->u.map.vals[at]->held--;
		te_render_value_unref(map->u.map.vals[at]);
		map->u.map.vals[at] = val;
		return 0;
	}
	k = malloc(key_len + 1);
	if (!k || (map->u.map.len == map->u.map.cap && map_grow(map) < 0)) {
		free(k);
		te_render_value_unref(val);
		return te_error_set(err, TE_ENOMEM, "out of memory");
	}
	memcpy(k, key, key_len);
	k[key_len] = '\0';
	tail = map->u.map.len - at;
	memmove(map->u.map.keys + at + 1, map->u.map.keys + at,
	        tail * sizeof(char *));
	memmove(map->u.map.klens + at + 1, map->u.map.klens + at,
	        tail * sizeof(size_t));
	memmove(map->u.map.vals + at + 1, map->u.map.vals + at,
	        tail * sizeof(te_render_value *));
	map->u.map.keys[at] = k;
	map->u.map.klens[at] = key_len;
	val->held++;
	map->u.map.vals[at] = val;
	map->u.map.len++;
	return 0;
}

void te_render__map_del(te_render_value *map, const char *key, size_t key_len)
{
	bool found;
	size_t at = map_find(map, key, key_len, &found), tail;
	te_render_value *old;

	if (!found)
		return;
	free(map->u.map.keys[at]);
	old = map->u.map.vals[at];
	old->held--;
	tail = map->u.map.len - at - 1;
	memmove(map->u.map.keys + at, map->u.map.keys + at + 1,
	        tail * sizeof(char *));
	memmove(map->u.map.klens + at, map->u.map.klens + at + 1,
	        tail * sizeof(size_t));
	memmove(map->u.map.vals + at, map->u.map.vals + at + 1,
	        tail * sizeof(te_render_value *));
	map->u.map.len--;
	/* last: freeing old may free values that hold map, never map
	 * itself (the caller holds a reference) */
	te_render_value_unref(old);
}

te_render_value *te_render__map_snapshot(const te_render_value *map)
{
	te_render_value *r = te_render_value_map();
	size_t i, n = map->u.map.len;

	if (!r || (n && map_reserve(r, n) < 0)) {
		te_render_value_unref(r);
		return NULL;
	}
	for (i = 0; i < n; i++) {
		r->u.map.keys[i] = malloc(map->u.map.klens[i] + 1);
		if (!r->u.map.keys[i]) {
			te_render_value_unref(r);
			return NULL;
		}
		memcpy(r->u.map.keys[i], map->u.map.keys[i],
		       map->u.map.klens[i] + 1);
		r->u.map.klens[i] = map->u.map.klens[i];
		r->u.map.vals[i] = te_render_value_ref(map->u.map.vals[i]);
		r->u.map.vals[i]->held++;
		r->u.map.len = i + 1;
	}
	return r;
}

te_render_kind te_render_value_kind(const te_render_value *v)
{
	return v ? v->kind : TE_RENDER_NIL;
}

bool te_render_value_bool_get(const te_render_value *v)
{
	return v && v->kind == TE_RENDER_BOOL && v->u.b;
}

int64_t te_render_value_int_get(const te_render_value *v)
{
	return v && v->kind == TE_RENDER_INT ? v->u.i : 0;
}

double te_render_value_float_get(const te_render_value *v)
{
	return v && v->kind == TE_RENDER_FLOAT ? v->u.f : 0.0;
}

const char *te_render_value_str(const te_render_value *v, size_t *len)
{
	if (!v || v->kind != TE_RENDER_STRING) {
		if (len)
			*len = 0;
		return "";
	}
	if (len)
		*len = v->u.s.len;
	return v->u.s.ptr;
}

size_t te_render_value_len(const te_render_value *v)
{
	if (!v)
		return 0;
	if (v->kind == TE_RENDER_LIST)
		return v->u.list.len;
	if (v->kind == TE_RENDER_MAP)
		return v->u.map.len;
	return 0;
}

te_render_value *te_render_list_at(const te_render_value *v, size_t i)
{
	if (!v || v->kind != TE_RENDER_LIST || i >= v->u.list.len)
		return NULL;
	return v->u.list.items[i];
}

te_render_value *te_render_map_get(const te_render_value *v, const char *key,
                                   size_t key_len)
{
	bool found;
	size_t at;

	if (!v || v->kind != TE_RENDER_MAP)
		return NULL;
	at = map_find(v, key, key_len, &found);
	return found ? v->u.map.vals[at] : NULL;
}

const char *te_render_map_key_at(const te_render_value *v, size_t i,
                                 size_t *key_len)
{
	if (!v || v->kind != TE_RENDER_MAP || i >= v->u.map.len)
		return NULL;
	if (key_len)
		*key_len = v->u.map.klens[i];
	return v->u.map.keys[i];
}

te_render_value *te_render_map_value_at(const te_render_value *v, size_t i)
{
	if (!v || v->kind != TE_RENDER_MAP || i >= v->u.map.len)
		return NULL;
	return v->u.map.vals[i];
}

/* Go's reflect type names for what YAML/JSON decoding into interface{}
 * produces; a boxed value is seen through its interface{}. */
const char *te_render__typename(const te_render_value *v, bool boxed)
{
	if (boxed)
		return "interface {}";
	switch (te_render_value_kind(v)) {
	case TE_RENDER_BOOL:
		return "bool";
	case TE_RENDER_INT:
		return "int";
	case TE_RENDER_FLOAT:
		return "float64";
	case TE_RENDER_STRING:
		return "string";
	case TE_RENDER_LIST:
		return "[]interface {}";
	case TE_RENDER_MAP:
		return "map[string]interface {}";
	default:
		return "interface {}";
	}
}

/* Go's template truth (exec.go isTrue): empty and zero values are false. */
bool te_render__truth(const te_render_value *v)
{
	switch (te_render_value_kind(v)) {
	case TE_RENDER_BOOL:
		return v->u.b;
	case TE_RENDER_INT:
		return v->u.i != 0;
	case TE_RENDER_FLOAT:
		return v->u.f != 0;
	case TE_RENDER_STRING:
		return v->u.s.len > 0;
	case TE_RENDER_LIST:
		return v->u.list.len > 0;
	case TE_RENDER_MAP:
		/* an object stands for a Go struct: always true */
		return v->u.map.len > 0 || v->methods;
	default:
		return false;
	}
}

static te_render_value *from_json(json_t *j, int depth, te_error *err);

static int entry_cmp(const void *a, const void *b)
{
	const char *ka = *(const char *const *)a, *kb = *(const char *const *)b;

	return strcmp(ka, kb);
}

/* A JSON object: keys sorted once, then the map filled in order (sorted
 * inserts one by one would move O(n^2) entries for a big object). */
static te_render_value *from_json_object(json_t *j, int depth, te_error *err)
{
	size_t n = json_object_size(j), i = 0;
	te_render_value *v = te_render_value_map(), *item;
	const char **keys = calloc(n ? n : 1, sizeof(*keys));
	const char *key;
	json_t *elem;

	if (!v || !keys || (n && map_reserve(v, n) < 0)) {
		te_error_set(err, TE_ENOMEM, "out of memory");
		goto fail;
	}
	json_object_foreach(j, key, elem)
	{
		keys[i++] = key;
	}
	qsort(keys, n, sizeof(*keys), entry_cmp);
	for (i = 0; i < n; i++) {
		item = from_json(json_object_get(j, keys[i]), depth + 1, err);
		if (!item || te_render_map_set(v, keys[i], strlen(keys[i]),
		                               item, err) < 0)
			goto fail;
	}
	free(keys);
	return v;
fail:
	free(keys);
	te_render_value_unref(v);
	return NULL;
}

static te_render_value *from_json_array(json_t *j, int depth, te_error *err)
{
	te_render_value *v = te_render_value_list(), *item;
	json_t *elem;
	size_t i;

	if (!v) {
		te_error_set(err, TE_ENOMEM, "out of memory");
		return NULL;
	}
	json_array_foreach(j, i, elem)
	{
		item = from_json(elem, depth + 1, err);
		if (!item || te_render_list_push(v, item, err) < 0) {
			te_render_value_unref(v);
			return NULL;
		}
	}
	return v;
}

static te_render_value *from_json(json_t *j, int depth, te_error *err)
{
	te_render_value *v = NULL;

	if (depth > JSON_DEPTH_MAX) {
		te_error_set(err, TE_EINVALID,
		             "json data nested deeper than %d levels",
		             JSON_DEPTH_MAX);
		return NULL;
	}
	switch (json_typeof(j)) {
	case JSON_OBJECT:
		return from_json_object(j, depth, err);
	case JSON_ARRAY:
		return from_json_array(j, depth, err);
	case JSON_STRING:
		v = te_render_value_string(json_string_value(j),
		                           json_string_length(j));
		break;
	case JSON_INTEGER:
		v = te_render_value_int((int64_t)json_integer_value(j));
		break;
	case JSON_REAL:
		v = te_render_value_float(json_real_value(j));
		break;
	case JSON_TRUE:
	case JSON_FALSE:
		v = te_render_value_bool(json_is_true(j));
		break;
	case JSON_NULL:
		v = te_render_value_nil();
		break;
	}
	if (!v)
		te_error_set(err, TE_ENOMEM, "out of memory");
	return v;
}

int te_render_value_from_json(te_render_value **out, const char *json,
                              size_t len, te_error *err)
{
	json_error_t jerr;
	json_t *j;
	int rc = 0;

	*out = NULL;
	j = json_loadb(json, len, JSON_DECODE_ANY | JSON_ALLOW_NUL, &jerr);
	if (!j)
		return te_error_set(err, TE_EINVALID, "json data:%d:%d: %s",
		                    jerr.line, jerr.column, jerr.text);
	*out = from_json(j, 0, err);
	if (!*out)
		rc = err->code ? err->code : TE_ENOMEM;
	json_decref(j);
	return rc;
}
