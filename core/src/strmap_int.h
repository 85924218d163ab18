/*
 * strmap_int.h - a small string-keyed hash map with borrowed keys, for
 * sets and indexes that only grow (dockerfile.c: duplicate sources, the
 * variables in scope).  webhook-server/queue/map.h is the queue's map, with
 * deletion and step-wise growth; both hash with te_str_hash.
 *
 * Header-only (static inline) so that partial builds with TE_CORE_MODULES
 * need no extra translation unit.  Keys are (pointer, length) pairs the
 * caller keeps alive and unchanged while the map holds them.  Open
 * addressing, linear probing, doubled at half full: O(1) expected.
 */
#ifndef TAGEXPORT_STRMAP_INT_H
#define TAGEXPORT_STRMAP_INT_H

#include <stdbool.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "tagexport/error.h"

/* FNV-1a (http://www.isthe.com/chongo/tech/comp/fnv/) over n bytes. */
static inline size_t te_str_hash(const char *s, size_t n)
{
	uint64_t h = 1469598103934665603ULL;
	size_t i;

	for (i = 0; i < n; i++) {
		h ^= (unsigned char)s[i];
		h *= 1099511628211ULL;
	}
	return (size_t)(h ^ (h >> 29));
}

struct te_strmap_ent {
	const char *key; /* NULL: empty slot */
	size_t klen;
	size_t hash;
	size_t value;
};

/* Zero-initialized is an empty map. */
struct te_strmap {
	struct te_strmap_ent *ents;
	size_t cap; /* power of two, or 0 */
	size_t count;
};

static inline struct te_strmap_ent *te_strmap__slot(const struct te_strmap *m,
                                                    const char *key,
                                                    size_t klen, size_t hash)
{
	size_t mask = m->cap - 1, i;

	for (i = hash & mask; m->ents[i].key; i = (i + 1) & mask)
		if (m->ents[i].hash == hash && m->ents[i].klen == klen &&
		    memcmp(m->ents[i].key, key, klen) == 0)
			break;
	return &m->ents[i];
}

/* The entry of key, or NULL. */
static inline struct te_strmap_ent *te_strmap_find(const struct te_strmap *m,
                                                   const char *key, size_t klen)
{
	struct te_strmap_ent *e;

	if (!m->cap)
		return NULL;
	e = te_strmap__slot(m, key, klen, te_str_hash(key, klen));
	return e->key ? e : NULL;
}

static inline int te_strmap__grow(struct te_strmap *m, te_error *err)
{
	struct te_strmap old = *m;
	size_t i;

	m->cap = old.cap ? old.cap * 2 : 64;
	m->ents = calloc(m->cap, sizeof(*m->ents));
	if (!m->ents) {
		*m = old;
		return te_error_set(err, TE_ENOMEM, "out of memory");
	}
	for (i = 0; i < old.cap; i++)
		if (old.ents[i].key)
			*te_strmap__slot(m, old.ents[i].key, old.ents[i].klen,
			                 old.ents[i].hash) = old.ents[i];
	free(old.ents);
	return 0;
}

/* Set key to value (added, or replaced when present); *added tells which
 * (may be NULL).  key is borrowed. */
static inline int te_strmap_put(struct te_strmap *m, const char *key,
                                size_t klen, size_t value, bool *added,
                                te_error *err)
{
	struct te_strmap_ent *e;
	size_t hash = te_str_hash(key, klen);
	int rc;

	if (2 * (m->count + 1) > m->cap && (rc = te_strmap__grow(m, err)) < 0)
		return rc;
	e = te_strmap__slot(m, key, klen, hash);
	if (added)
		*added = !e->key;
	if (!e->key) {
		e->key = key;
		e->klen = klen;
		e->hash = hash;
		m->count++;
	}
	e->value = value;
	return 0;
}

static inline void te_strmap_dispose(struct te_strmap *m)
{
	free(m->ents);
	memset(m, 0, sizeof(*m));
}

#endif
