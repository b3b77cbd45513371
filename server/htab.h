/* htab.h -- a hash table of pointers, open addressing, keyed by a 64-bit hash.
 *
 * The broker indexes the same records several ways (jobs by key;
 * peers by routing id; sessions by cid; queues by name; and what does not
 * come in sequence in idmap.h's maps of job ids and refs).  htab stores only (hash, pointer) pairs: the record
 * itself holds its key, and the caller's eq function compares it, so one
 * table type serves every index without copying keys.  Linear probing
 * with backward-shift deletion (no tombstones), capacity a power of two,
 * load kept at or under 3/4.  Several items may share a hash; find walks
 * them in turn.  Hashes come from the htab_hash_* functions below.
 */
#ifndef QJ_HTAB_H
#define QJ_HTAB_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

typedef struct htab htab_t;

/* True if item has the key the caller is looking for. */
typedef bool (*htab_eq_fn)(const void *item, const void *key);

/* Create an empty table.  Returns NULL on allocation failure. */
htab_t *htab_new(void);

/* Free the table (not the items); safe on NULL, nulls the caller's pointer. */
void htab_destroy(htab_t **self_p);

/* Add item (not NULL) under hash h.  The caller makes sure the key is not
 * there already if keys must be unique.  Returns 0, or -1 if the table
 * could not grow (out of memory; the table is unchanged). */
int htab_insert(htab_t *self, uint64_t h, void *item);

/* The first item under hash h for which eq(item, key) is true, or NULL. */
void *htab_find(const htab_t *self, uint64_t h, htab_eq_fn eq, const void *key);

/* Remove this very item (pointer identity), stored under hash h.
 * Returns 0, or -1 if it was not in the table. */
int htab_remove(htab_t *self, uint64_t h, const void *item);

/* Number of items. */
size_t htab_count(const htab_t *self);

/* Bytes the table holds (its slots and itself, not the items). */
size_t htab_bytes(const htab_t *self);

/* Iterate: start with *cursor = 0; returns the next item or NULL at the
 * end.  The table must not change during an iteration. */
void *htab_next(const htab_t *self, size_t *cursor);

/* Hashes.  The table uses the low bits of a hash as the home slot, so a
 * caller hashes with one of these rather than passing a raw key. */

/* A well-mixed hash of a byte string (for names, cids, routing ids). */
uint64_t htab_hash_bytes(const void *data, size_t len);

/* A well-mixed hash of two values (for composite keys).  For a given a,
 * it is one-to-one in b (every step is invertible): a table keyed by one
 * 64-bit number can take equal hashes for equal keys, with an eq function
 * that returns true and never touches the item. */
uint64_t htab_hash_pair(uint64_t a, uint64_t b);

/* A hash for keys that come in sequence (job ids, a submitter's refs):
 * n and its neighbours in aligned groups of four get adjacent slots,
 * which share a cache line, while the groups spread over the table as
 * well-mixed hashes do.  A table holding a million recent jobs is far
 * bigger than the caches, and work on jobs goes roughly in id order: this
 * makes four jobs cost one cache miss instead of four, and keeps probe
 * runs short, so that looking up an unknown id stays cheap. */
uint64_t htab_hash_seq(uint64_t seed, uint64_t n);

#endif
