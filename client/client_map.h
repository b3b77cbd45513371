/* client_map.h -- a hash table from a non-zero uint64 key to a pointer.
 *
 * The client looks jobs up by ref (submits not yet accepted) and by id
 * (jobs it waits for) once per message item, at hundreds of thousands of
 * items a second, so both tables are open-addressed with linear probing:
 * one cache line per lookup in the common case, no allocation per entry,
 * and deletion by backward shift (no tombstones, so lookups stay short
 * however many entries came and went).
 */
#ifndef QJ_CLIENT_MAP_H
#define QJ_CLIENT_MAP_H

#include <stddef.h>
#include <stdint.h>

typedef struct cmap_slot {
    uint64_t key;          /* 0 = empty */
    void *val;
} cmap_slot_t;

typedef struct cmap {
    cmap_slot_t *slots;    /* cap entries, cap a power of two (or NULL) */
    size_t cap;
    size_t count;          /* entries in use */
} cmap_t;

/* Initialise an empty table (no allocation until the first put). */
void cmap_init(cmap_t *m);

/* Free the table's slots (not the values); the table is empty after. */
void cmap_clear(cmap_t *m);

/* The value stored under key, or NULL. */
void *cmap_get(const cmap_t *m, uint64_t key);

/* Store val under key (key != 0, val != NULL), replacing any earlier
 * value.  Returns 0, or -1 if the table could not grow (it is unchanged). */
int cmap_put(cmap_t *m, uint64_t key, void *val);

/* Remove key; returns the value it had, or NULL if it was not there. */
void *cmap_del(cmap_t *m, uint64_t key);

/* Visit every entry: *pos starts at 0; returns the next value and its key
 * in *key, or NULL at the end.  The table must not change meanwhile. */
void *cmap_next(const cmap_t *m, size_t *pos, uint64_t *key);

#endif
