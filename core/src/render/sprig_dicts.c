/*
 * sprig_dicts.c - Sprig v3.2.3's dict functions that change a dict in
 * place (dict.go; https://masterminds.github.io/sprig/dicts.html): set
 * unset merge mergeOverwrite mustMerge mustMergeOverwrite.
 *
 * Sprig's dicts are Go maps, so these mutate the map they are given and
 * every alias sees the change (render_int.h, "Mutable maps").  merge
 * follows github.com/imdario/mergo v0.3 (deepMerge of two
 * map[string]interface{} values), rule by rule:
 *  - a nil source value replaces only when overwriting;
 *  - a map source value merges into a map destination value in place,
 *    and a non-empty destination value of any kind is kept when the
 *    source value is a map, even when overwriting (a list source value
 *    replaces it when overwriting);
 *  - otherwise the source value is stored when overwriting, when the
 *    destination lacks the key or when its value is empty (Go's zero).
 */
#include <string.h>

#include "render/sprig_int.h"

/* A map[string]interface{} parameter: Go refuses nil data and objects
 * (Go structs) too. */
static int want_dict(const te_render_value *v, te_error *err)
{
	if (v && v->kind == TE_RENDER_MAP && v->methods)
		return te_error_set(err, TE_EINVALID,
		                    "wrong type for value; expected "
		                    "map[string]interface {}; got object");
	return sp_want(v, TE_RENDER_MAP, "map[string]interface {}", err);
}

static bool is_container(const te_render_value *v)
{
	return v && (v->kind == TE_RENDER_LIST || v->kind == TE_RENDER_MAP);
}

static te_render_value *child(const te_render_value *v, size_t i)
{
	return v->kind == TE_RENDER_LIST ? v->u.list.items[i]
	                                 : v->u.map.vals[i];
}

/* Whether v is m or holds it, and v's height (levels of containers),
 * visiting each container once per path; *visits counts them. */
static bool holds(const te_render_value *v, const te_render_value *m,
                  size_t *height, size_t *visits, size_t limit)
{
	size_t i, h, max = 0, n;

	*height = 0;
	if (!is_container(v))
		return false;
	if (v == m)
		return true;
	(*visits)++;
	n = te_render_value_len(v);
	for (i = 0; i < n && limit > 1; i++) {
		if (holds(child(v, i), m, &h, visits, limit - 1))
			return true;
		if (h > max)
			max = h;
	}
	*height = max + 1;
	return false;
}

/* Whether m has a chain of at least d containers (m counts). */
static bool reaches(const te_render_value *m, size_t d, size_t *visits)
{
	size_t i, n;

	if (d == 0)
		return true;
	if (!is_container(m))
		return false;
	(*visits)++;
	if (d == 1)
		return true;
	n = te_render_value_len(m);
	for (i = 0; i < n; i++)
		if (reaches(child(m, i), d - 1, visits))
			return true;
	return false;
}

/*
 * v may be stored in map m in place.  A container that holds m would
 * make a cycle (Go would recurse forever printing it): refused.  m may
 * sit inside other values, so storing v can deepen them by as much as
 * v is higher than m: the execution's total deepening is bounded, which
 * keeps every value under 2 * SP_DEPTH_MAX levels for the recursive
 * walks (printing, freeing, copying).
 */
static int adopt_check(te_render_call *call, const te_render_value *m,
                       const te_render_value *v, te_error *err)
{
	struct te_exec *s = call->s;
	size_t h = 0, visits = 0, grow = 0;

	if (!is_container(v))
		return 0;
	if (holds(v, m, &h, &visits, SP_DEPTH_MAX + 1))
		return te_error_set(err, TE_EINVALID,
		                    "a dict cannot hold itself");
	if (h + 1 >= SP_DEPTH_MAX)
		return te_error_set(err, TE_EINVALID,
		                    "values nest deeper than %d levels",
		                    SP_DEPTH_MAX);
	/* a map no list or map holds deepens nothing else; m's height
	 * stays under SP_DEPTH_MAX as dict's results do */
	if (m->held == 0)
		grow = 0;
	else if (!reaches(m, h + 1, &visits))
		grow = h + 1; /* at most; exact enough for the bound */
	if (grow > SP_DEPTH_MAX - s->deepened)
		return te_error_set(err, TE_EINVALID,
		                    "values nest deeper than %d levels",
		                    SP_DEPTH_MAX);
	s->deepened += (unsigned int)grow;
	return sp_steps(call, visits / 8 + 1, err);
}

static int dict_store(te_render_call *call, te_render_value *m, const char *k,
                      size_t kl, te_render_value *v, te_error *err)
{
	if (adopt_check(call, m, v, err) < 0)
		return err->code;
	return te_render_map_set(m, k, kl, te_render_value_ref(v), err);
}

/* set DICT KEY VALUE: DICT with KEY set, changed in place. */
static int f_set(te_render_value **out, te_render_call *call, sp_args a,
                 size_t n, void *p, te_error *err)
{
	(void)n;
	(void)p;
	if (want_dict(a[0], err) < 0 || WANT_STR(a[1]) < 0)
		return err->code;
	if (a[2]) {
		if (dict_store(call, a[0], a[1]->u.s.ptr, a[1]->u.s.len, a[2],
		               err) < 0)
			return err->code;
	} else if (te_render_map_set(a[0], a[1]->u.s.ptr, a[1]->u.s.len,
	                             te_render_value_nil(), err) < 0) {
		return err->code;
	}
	return sp_ret_ref(out, a[0], err);
}

/* unset DICT KEY: DICT without KEY, changed in place. */
static int f_unset(te_render_value **out, te_render_call *call, sp_args a,
                   size_t n, void *p, te_error *err)
{
	(void)call;
	(void)n;
	(void)p;
	if (want_dict(a[0], err) < 0 || WANT_STR(a[1]) < 0)
		return err->code;
	te_render__map_del(a[0], a[1]->u.s.ptr, a[1]->u.s.len);
	return sp_ret_ref(out, a[0], err);
}

static int merge_maps(te_render_call *call, te_render_value *dst,
                      const te_render_value *src, bool over, te_error *err);

/* One key of mergo's deepMerge for maps (the rules above). */
static int merge_key(te_render_call *call, te_render_value *dst, const char *k,
                     size_t kl, te_render_value *sv, bool over, te_error *err)
{
	te_render_value *dv = te_render_map_get(dst, k, kl);
	bool src_container = is_container(sv);

	if (sv->kind == TE_RENDER_NIL) {
		if (!over)
			return 0;
		return dict_store(call, dst, k, kl, sv, err);
	}
	/* mergo stores a list before its emptiness test when overwriting */
	if (sv->kind == TE_RENDER_LIST && over)
		return dict_store(call, dst, k, kl, sv, err);
	if (sv->kind == TE_RENDER_MAP && dv && dv->kind == TE_RENDER_MAP &&
	    !dv->methods && merge_maps(call, dv, sv, over, err) < 0)
		return err->code;
	/* dv may have just been filled by the merge: tested now */
	if (dv && !sp_empty(dv) && src_container)
		return 0;
	if (over || !dv || sp_empty(dv))
		return dict_store(call, dst, k, kl, sv, err);
	return 0;
}

static int merge_maps(te_render_call *call, te_render_value *dst,
                      const te_render_value *src, bool over, te_error *err)
{
	te_render_value *snap;
	size_t i, kl;
	const char *k;
	int rc = 0;

	if (sp_steps(call, te_render_value_len(src) / 8 + 1, err) < 0)
		return err->code;
	/* src may be dst itself or inside it: walk a snapshot of its
	 * entries, as Go's MapKeys does */
	snap = te_render__map_snapshot(src);
	if (!snap)
		return te_error_set(err, TE_ENOMEM, "out of memory");
	for (i = 0; i < snap->u.map.len && rc == 0; i++) {
		k = te_render_map_key_at(snap, i, &kl);
		rc =
		    merge_key(call, dst, k, kl, snap->u.map.vals[i], over, err);
	}
	te_render_value_unref(snap);
	return rc;
}

/* merge/mergeOverwrite DST SRC...: SRCs merged into DST in place, DST
 * returned. */
static int f_merge(te_render_value **out, te_render_call *call, sp_args a,
                   size_t n, void *p, te_error *err)
{
	bool over = p != NULL;
	te_render_value *dst;
	size_t i;
	int rc = 0;

	for (i = 0; i < n; i++)
		if (want_dict(a[i], err) < 0)
			return err->code;
	dst = a[0];
	for (i = 1; i < n && rc == 0; i++)
		rc = merge_maps(call, dst, a[i], over, err);
	return rc < 0 ? rc : sp_ret_ref(out, dst, err);
}

#define V TE_RENDER_VARIADIC
const struct sp_entry te_render__sp_dicts[] = {
    {"merge", f_merge, 1, V, NULL},
    {"mergeOverwrite", f_merge, 1, V, "overwrite"},
    {"mustMerge", f_merge, 1, V, NULL},
    {"mustMergeOverwrite", f_merge, 1, V, "overwrite"},
    {"set", f_set, 3, 3, NULL},
    {"unset", f_unset, 2, 2, NULL},
};
#undef V
const size_t te_render__sp_dicts_len =
    sizeof(te_render__sp_dicts) / sizeof(te_render__sp_dicts[0]);
