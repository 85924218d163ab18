/*
 * map.h - the queue's string-keyed hash maps (job by id, by
 * delivery, by project + tag + commit).  Internal to the queue.
 *
 * Open addressing with linear probing; each entry keeps its key's hash.
 * Growing never stops the world: the new table is filled a few slots per
 * insert while lookups see both tables (a queue of 300,000 jobs used to
 * hold its lock for hundreds of milliseconds rehashing three tables of a
 * million slots at once).
 *
 * Ownership: keys are copied in and freed by the map; values are
 * borrowed.  Not thread-safe: the queue's mutex guards every map.
 */
#ifndef TS_QUEUE_MAP_H
#define TS_QUEUE_MAP_H

#include <stddef.h>

#include "tagexport/error.h"

struct ts_qmap_ent {
	char *key; /* NULL: empty; ts_qmap__tombstone: deleted (old table) */
	void *value;
	size_t hash;
};

/* Zero-initialized is an empty map. */
struct ts_qmap {
	struct ts_qmap_ent *ents; /* the table new keys go to */
	size_t cap;               /* power of two, or 0 */
	size_t count;             /* keys in the map */
	struct ts_qmap_ent *old;  /* while growing: the table being emptied */
	size_t old_cap;
	size_t cursor; /* slots of old below this are copied to ents */
};

/* The value of key, or NULL. */
void *ts_qmap_get(const struct ts_qmap *m, const char *key);
/* Add key -> value; key must not be in the map. */
int ts_qmap_put(struct ts_qmap *m, const char *key, void *value, te_error *err);
/* Remove key if present. */
void ts_qmap_del(struct ts_qmap *m, const char *key);
void ts_qmap_free(struct ts_qmap *m);

#endif
