/* idmap.h -- a map from 64-bit keys to pointers, for keys that come in
 * sequence.
 *
 * The broker hands out job ids in sequence, and a submitter numbers its
 * refs in sequence; the jobs it holds are mostly a window of recent ones,
 * which come and go roughly in order.  A hash table of a million jobs is
 * far bigger than the caches, so each lookup there costs a cache miss or
 * two.  idmap keeps keys in chunks of IDMAP_CHUNK consecutive keys, each a
 * plain array of pointers indexed by the key's low bits, found through a
 * small table of chunk numbers (and the chunk last put into, at hand): a
 * lookup touches memory that stays in cache, and a key costs 8 bytes.
 *
 * Keys that do not continue a sequence (a restart's replay in any order,
 * ids far apart, a client that numbers its refs its own way) go to a hash
 * table instead ("loose" keys).  A chunk is made for a key only when the
 * key before it fell in the same chunk, or the chunk before exists.  A
 * chunk whose keys are all gone is freed; when chunks hold on average
 * under a quarter of their slots, the sparse ones (under half full) hand
 * their keys to the hash table and are freed, so that memory stays within
 * about 4 pointers per key whatever the pattern.
 *
 * Not for concurrent use; the broker's loop is its only user.
 */
#ifndef QJ_IDMAP_H
#define QJ_IDMAP_H

#include <stddef.h>
#include <stdint.h>

/* Keys per chunk (a power of two): a chunk is 2 KiB of pointers. */
#define IDMAP_BITS 8
#define IDMAP_CHUNK (1u << IDMAP_BITS)

typedef struct idmap idmap_t;

/* Create an empty map.  Returns NULL if out of memory. */
idmap_t *idmap_new(void);

/* Free the map (not the items); safe on NULL, nulls the caller's pointer. */
void idmap_destroy(idmap_t **self_p);

/* Map key to item (not NULL).  The key must not be in the map.  Returns 0,
 * or -1 if out of memory (the map is unchanged). */
int idmap_put(idmap_t *self, uint64_t key, void *item);

/* The item mapped from key, or NULL. */
void *idmap_get(const idmap_t *self, uint64_t key);

/* Remove key if it maps to this very item.  Returns 0, or -1 if it does
 * not (nothing changes).  A sparse chunk whose keys cannot move to the
 * hash table for want of memory stays as it is. */
int idmap_remove(idmap_t *self, uint64_t key, const void *item);

/* Number of keys held. */
size_t idmap_count(const idmap_t *self);

/* Iterate over the items, in no order: start with *cursor = 0; returns
 * the next item or NULL at the end.  The map must not change during an
 * iteration. */
void *idmap_next(const idmap_t *self, size_t *cursor);

/* Bytes the map itself holds (chunks and tables, not the items): for
 * tests and reports. */
size_t idmap_bytes(const idmap_t *self);

#endif
