/*
 * class.c - rune sets of the regex module and the tree's node store:
 * ranges added in any order, then cleaned (sorted and merged), negated
 * or closed under Unicode simple case folding (Go's unicode.SimpleFold).
 */
#include <stdlib.h>
#include <string.h>

#include "regex/regex_int.h"

int te_re__class_add(struct te_re_class *c, uint32_t lo, uint32_t hi)
{
	uint32_t *p;
	size_t cap;

	if (c->n == c->cap) {
		cap = c->cap ? c->cap * 2 : 4;
		p = realloc(c->r, cap * 2 * sizeof(*p));
		if (!p)
			return TE_ENOMEM;
		c->r = p;
		c->cap = cap;
	}
	c->r[2 * c->n] = lo;
	c->r[2 * c->n + 1] = hi;
	c->n++;
	return 0;
}

int te_re__class_add_pairs(struct te_re_class *c, const uint32_t *r, size_t n)
{
	size_t i;

	for (i = 0; i < n; i++)
		if (te_re__class_add(c, r[2 * i], r[2 * i + 1]) < 0)
			return TE_ENOMEM;
	return 0;
}

static int cmp_pair(const void *a, const void *b)
{
	const uint32_t *x = a, *y = b;

	if (x[0] != y[0])
		return x[0] < y[0] ? -1 : 1;
	return x[1] < y[1] ? 1 : (x[1] > y[1] ? -1 : 0);
}

void te_re__class_clean(struct te_re_class *c)
{
	size_t i, w = 0;

	if (c->n < 2)
		return;
	qsort(c->r, c->n, 2 * sizeof(uint32_t), cmp_pair);
	for (i = 1; i < c->n; i++) {
		if (c->r[2 * i] <= c->r[2 * w + 1] + 1) {
			if (c->r[2 * i + 1] > c->r[2 * w + 1])
				c->r[2 * w + 1] = c->r[2 * i + 1];
			continue;
		}
		w++;
		c->r[2 * w] = c->r[2 * i];
		c->r[2 * w + 1] = c->r[2 * i + 1];
	}
	c->n = w + 1;
}

int te_re__class_negate(struct te_re_class *c)
{
	struct te_re_class out = {0};
	uint32_t next = 0;
	size_t i;
	int rc = 0;

	for (i = 0; i < c->n && rc == 0; i++) {
		if (c->r[2 * i] > next)
			rc = te_re__class_add(&out, next, c->r[2 * i] - 1);
		next = c->r[2 * i + 1] + 1;
	}
	if (rc == 0 && next <= RE_MAX_RUNE)
		rc = te_re__class_add(&out, next, RE_MAX_RUNE);
	if (rc < 0) {
		free(out.r);
		return rc;
	}
	free(c->r);
	*c = out;
	return 0;
}

bool te_re__class_has(const uint32_t *r, size_t n, uint32_t x)
{
	size_t lo = 0, hi = n, mid;

	while (lo < hi) {
		mid = lo + (hi - lo) / 2;
		if (x < r[2 * mid])
			hi = mid;
		else if (x > r[2 * mid + 1])
			lo = mid + 1;
		else
			return true;
	}
	return false;
}

uint32_t te_re__simple_fold(uint32_t r)
{
	size_t lo = 0, hi = te_unicode_fold_len, mid;

	while (lo < hi) {
		mid = lo + (hi - lo) / 2;
		if (r < te_unicode_fold[mid][0])
			hi = mid;
		else if (r > te_unicode_fold[mid][0])
			lo = mid + 1;
		else
			return te_unicode_fold[mid][1];
	}
	return r;
}

/* First fold-table index whose key is >= r. */
static size_t fold_lower(uint32_t r)
{
	size_t lo = 0, hi = te_unicode_fold_len, mid;

	while (lo < hi) {
		mid = lo + (hi - lo) / 2;
		if (te_unicode_fold[mid][0] < r)
			lo = mid + 1;
		else
			hi = mid;
	}
	return lo;
}

/* Every rune with a non-trivial orbit is a key of the fold table, so the
 * closure adds, for each key inside c, its whole orbit: a walk over the
 * keys inside each range, not over the range's runes. */
int te_re__class_fold(struct te_re_class *c)
{
	size_t i, k, n = c->n;
	uint32_t key, r;
	int rc = 0;

	for (i = 0; i < n && rc == 0; i++) {
		for (k = fold_lower(c->r[2 * i]);
		     k < te_unicode_fold_len && rc == 0 &&
		     te_unicode_fold[k][0] <= c->r[2 * i + 1];
		     k++) {
			key = te_unicode_fold[k][0];
			for (r = te_unicode_fold[k][1]; r != key && rc == 0;
			     r = te_re__simple_fold(r))
				rc = te_re__class_add(c, r, r);
		}
	}
	te_re__class_clean(c);
	return rc;
}

void te_re__class_free(struct te_re_class *c)
{
	free(c->r);
	memset(c, 0, sizeof(*c));
}

struct te_re_node *te_re__node_new(struct te_re_nodes *ns, enum re_op op)
{
	struct te_re_node *n, **v;
	size_t cap;

	if (ns->n == ns->cap) {
		cap = ns->cap ? ns->cap * 2 : 16;
		v = realloc(ns->v, cap * sizeof(*v));
		if (!v)
			return NULL;
		ns->v = v;
		ns->cap = cap;
	}
	n = calloc(1, sizeof(*n));
	if (!n)
		return NULL;
	n->op = op;
	ns->v[ns->n++] = n;
	return n;
}

int te_re__node_push(struct te_re_node *n, struct te_re_node *sub)
{
	struct te_re_node **v;
	size_t cap;

	if (n->nsub == n->subcap) {
		cap = n->subcap ? n->subcap * 2 : 2;
		v = realloc(n->sub, cap * sizeof(*v));
		if (!v)
			return TE_ENOMEM;
		n->sub = v;
		n->subcap = cap;
	}
	n->sub[n->nsub++] = sub;
	return 0;
}

void te_re__nodes_free(struct te_re_nodes *ns)
{
	size_t i;

	for (i = 0; i < ns->n; i++) {
		te_re__class_free(&ns->v[i]->cls);
		free(ns->v[i]->sub);
		free(ns->v[i]);
	}
	free(ns->v);
	memset(ns, 0, sizeof(*ns));
}
