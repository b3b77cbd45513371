/* slab.h -- size-classed allocation of the broker's small records.
 *
 * Every job costs the broker a record and, once finished, a result: two
 * allocations and two frees, in bursts of thousands.  malloc serves those
 * bursts from its locked arena path (the broker has threads: ZeroMQ's, the
 * journal's syncer), with two atomic operations each.  A slab allocator
 * for one thread does the same with a few loads and stores: objects are
 * cut from 64 KiB blocks, each holding objects of one size class (16-byte
 * steps up to SLAB_MAX); an object given back goes on its block's free
 * list; a block found from an object by its address (blocks are aligned
 * to their size).  Blocks come from 4 MiB mappings (few mappings however
 * large the broker grows); a block whose objects are all given back
 * returns its pages to the system (madvise) unless it is the last of its
 * class with room, and is used again for any class.
 *
 * Larger sizes go to malloc.  The caller passes the size again when it
 * frees (a record knows its size), so objects carry no header.  Under
 * AddressSanitizer and valgrind, objects are announced as heap blocks, so
 * that a use after free or a leak is still reported.
 *
 * Not thread-safe: one allocator per thread that uses it.
 */
#ifndef QJ_SLAB_H
#define QJ_SLAB_H

#include <stddef.h>

/* Larger objects are malloc's. */
#define SLAB_MAX 512

typedef struct slab slab_t;

/* Create an allocator with no memory yet.  Returns NULL if out of memory. */
slab_t *slab_new(void);

/* Give back every block; safe on NULL, nulls the caller's pointer.  Every
 * object must have been freed (they would be lost: the pages go). */
void slab_destroy(slab_t **self_p);

/* An object of size bytes (not 0), 16-byte aligned, not zeroed.  Returns
 * NULL if out of memory. */
void *slab_alloc(slab_t *self, size_t size);

/* Give back an object from slab_alloc with the same size; safe on NULL. */
void slab_free(slab_t *self, void *obj, size_t size);

/* Bytes mapped and holding pages (blocks in use or kept), for tests and
 * reports. */
size_t slab_bytes(const slab_t *self);

#endif
