/*
 * map.c - string-keyed hash maps that grow a step at a time
 * (queue/map.h).
 *
 * Invariants:
 *  1. ents has no tombstones: deletions there shift the rest of the
 *     cluster back, so a probe stops at the first empty slot.
 *  2. While growing, every key is in ents, or in old at or above cursor
 *     (not copied yet), or both (copied: the same key pointer, owned by
 *     the ents entry).  A deletion tombstones the old entry instead of
 *     shifting, because a shift could move a not-yet-copied entry below
 *     cursor, where the copying never looks.
 *  3. Each insert copies STEP slots of old; a table doubles when it is
 *     half full, so the copying ends long before the next doubling.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "queue/map.h"
#include "strmap_int.h"
#include "tagexport/buf.h"

#define FIRST_CAP 64
#define STEP 8

static char tombstone;
#define TOMBSTONE (&tombstone)

static size_t hash_str(const char *s)
{
	return te_str_hash(s, strlen(s));
}

static struct ts_qmap_ent *find(struct ts_qmap_ent *ents, size_t cap,
                                const char *key, size_t hash)
{
	size_t mask = cap - 1, i;

	if (cap == 0)
		return NULL;
	for (i = hash & mask; ents[i].key; i = (i + 1) & mask)
		if (ents[i].key != TOMBSTONE && ents[i].hash == hash &&
		    strcmp(ents[i].key, key) == 0)
			return &ents[i];
	return NULL;
}

/* Into the first free slot of its cluster (invariant 1: no tombstones). */
static void place(struct ts_qmap *m, const struct ts_qmap_ent *e)
{
	size_t mask = m->cap - 1, i;

	for (i = e->hash & mask; m->ents[i].key; i = (i + 1) & mask)
		;
	m->ents[i] = *e;
}

/* Copy up to n slots of old into ents (invariant 2). */
static void copy_some(struct ts_qmap *m, size_t n)
{
	while (m->old && n-- > 0) {
		struct ts_qmap_ent *e = &m->old[m->cursor++];

		if (e->key && e->key != TOMBSTONE)
			place(m, e);
		if (m->cursor == m->old_cap) {
			free(m->old);
			m->old = NULL;
			m->old_cap = m->cursor = 0;
		}
	}
}

static int grow(struct ts_qmap *m, te_error *err)
{
	size_t cap = m->cap ? m->cap * 2 : FIRST_CAP;
	struct ts_qmap_ent *ents;

	copy_some(m, SIZE_MAX); /* never two growths at once */
	ents = calloc(cap, sizeof(*ents));
	if (!ents)
		return te_error_set(err, TE_ENOMEM, "queue: out of memory");
	if (m->cap) {
		m->old = m->ents;
		m->old_cap = m->cap;
		m->cursor = 0;
	}
	m->ents = ents;
	m->cap = cap;
	return 0;
}

void *ts_qmap_get(const struct ts_qmap *m, const char *key)
{
	size_t hash = hash_str(key);
	struct ts_qmap_ent *e = find(m->ents, m->cap, key, hash);

	if (!e && m->old)
		e = find(m->old, m->old_cap, key, hash);
	return e ? e->value : NULL;
}

int ts_qmap_put(struct ts_qmap *m, const char *key, void *value, te_error *err)
{
	struct ts_qmap_ent e = {NULL, value, hash_str(key)};
	int rc;

	if ((m->count + 1) * 2 > m->cap) {
		rc = grow(m, err);
		if (rc < 0)
			return rc;
	}
	e.key = te_strdup(key, err);
	if (!e.key)
		return err->code;
	place(m, &e);
	m->count++;
	copy_some(m, STEP);
	return 0;
}

/* Remove ents[i] and shift the rest of its cluster back (invariant 1):
 * an entry moves into the hole unless its home slot lies cyclically in
 * (i, j]. */
static void remove_at(struct ts_qmap *m, size_t i)
{
	size_t mask = m->cap - 1, j, home;

	m->ents[i].key = NULL;
	for (j = (i + 1) & mask; m->ents[j].key; j = (j + 1) & mask) {
		home = m->ents[j].hash & mask;
		if ((j > i && (home <= i || home > j)) ||
		    (j < i && (home <= i && home > j))) {
			m->ents[i] = m->ents[j];
			m->ents[j].key = NULL;
			i = j;
		}
	}
}

void ts_qmap_del(struct ts_qmap *m, const char *key)
{
	size_t hash = hash_str(key);
	struct ts_qmap_ent *e = find(m->ents, m->cap, key, hash);
	struct ts_qmap_ent *o =
	    m->old ? find(m->old, m->old_cap, key, hash) : NULL;
	char *owned;

	if (!e && !o)
		return;
	owned = e ? e->key : o->key;
	if (o)
		o->key = TOMBSTONE;
	if (e)
		remove_at(m, (size_t)(e - m->ents));
	free(owned);
	m->count--;
}

void ts_qmap_free(struct ts_qmap *m)
{
	size_t i;

	for (i = 0; i < m->cap; i++)
		free(m->ents[i].key);
	for (i = m->cursor; m->old && i < m->old_cap; i++)
		if (m->old[i].key != TOMBSTONE)
			free(m->old[i].key);
	free(m->ents);
	free(m->old);
	memset(m, 0, sizeof(*m));
}
