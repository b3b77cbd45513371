/* idmap.c -- keys in chunks of consecutive keys, the rest hashed (see idmap.h). */
#include "idmap.h"

#include <assert.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>

#include "htab.h"

#define MASK ((uint64_t)IDMAP_CHUNK - 1)

/* Chunks found without the table: a direct-mapped cache by chunk number,
 * which covers the last RECENT * IDMAP_CHUNK keys (the jobs in flight). */
#define RECENT 64

typedef struct chunk {
    uint64_t no;                /* holds keys no << IDMAP_BITS and the next IDMAP_CHUNK - 1 */
    uint32_t n;                 /* items held */
    struct chunk *next, *prev;  /* every chunk of the map */
    void *item[IDMAP_CHUNK];    /* by the key's low bits; NULL = not here */
} chunk_t;

struct idmap {
    htab_t *chunks;     /* chunk_t by s_hash(no) */
    htab_t *loose;      /* items by s_hash(key); NULL until a key goes there */
    chunk_t *all;       /* every chunk, for the sweep and destroy */
    chunk_t *cur;       /* the chunk the last key put went to, or NULL */
    chunk_t *recent[RECENT]; /* chunk no at no % RECENT, or another, or NULL */
    chunk_t *drain;     /* the chunk last removed from (old keys go in order too) */
    uint64_t last;      /* the last key put */
    bool last_loose;    /* it went to the hash table */
    size_t count;       /* keys held */
    size_t in_chunks;   /* of those, held in chunks */
    size_t nchunks;
};

/* htab_hash_pair is one-to-one in its second value, so equal hashes mean
 * equal keys: the tables need no comparison, and never touch an item. */
static inline uint64_t s_hash(uint64_t key)
{
    return htab_hash_pair(0, key);
}

static bool s_same(const void *item, const void *key)
{
    (void)item;
    (void)key;
    return true;
}

idmap_t *idmap_new(void)
{
    idmap_t *self = calloc(1, sizeof *self);
    if (!self)
        return NULL;
    self->chunks = htab_new();
    if (!self->chunks) {
        free(self);
        return NULL;
    }
    return self;
}

void idmap_destroy(idmap_t **self_p)
{
    if (!self_p || !*self_p)
        return;
    idmap_t *self = *self_p;
    while (self->all) {
        chunk_t *c = self->all;
        self->all = c->next;
        free(c);
    }
    htab_destroy(&self->chunks);
    htab_destroy(&self->loose);
    free(self);
    *self_p = NULL;
}

static chunk_t *s_chunk(const idmap_t *self, uint64_t no)
{
    chunk_t *c = self->recent[no % RECENT];
    if (c && c->no == no)
        return c;
    return htab_find(self->chunks, s_hash(no), s_same, NULL);
}

/* A new empty chunk for keys no << IDMAP_BITS on, or NULL if out of memory. */
static chunk_t *s_chunk_new(idmap_t *self, uint64_t no)
{
    chunk_t *c = malloc(sizeof *c);
    if (!c)
        return NULL;
    if (htab_insert(self->chunks, s_hash(no), c) != 0) {
        free(c);
        return NULL;
    }
    c->no = no;
    c->n = 0;
    memset(c->item, 0, sizeof c->item);
    c->prev = NULL;
    c->next = self->all;
    if (self->all)
        self->all->prev = c;
    self->all = c;
    self->nchunks++;
    self->recent[no % RECENT] = c;
    return c;
}

/* Free a chunk that holds no key. */
static void s_chunk_free(idmap_t *self, chunk_t *c)
{
    assert(c->n == 0);
    htab_remove(self->chunks, s_hash(c->no), c);
    if (c->prev)
        c->prev->next = c->next;
    else
        self->all = c->next;
    if (c->next)
        c->next->prev = c->prev;
    if (self->cur == c)
        self->cur = NULL;
    if (self->recent[c->no % RECENT] == c)
        self->recent[c->no % RECENT] = NULL;
    if (self->drain == c)
        self->drain = NULL;
    self->nchunks--;
    free(c);
}

/* True if a key in chunk no continues a sequence: the key put before it
 * fell in the same chunk, or the chunk before exists. */
static bool s_continues(const idmap_t *self, uint64_t no)
{
    return (self->last >> IDMAP_BITS) == no || (no > 0 && s_chunk(self, no - 1));
}

static int s_loose_put(idmap_t *self, uint64_t key, void *item)
{
    if (!self->loose && !(self->loose = htab_new()))
        return -1;
    return htab_insert(self->loose, s_hash(key), item);
}

/* A new chunk takes the key put just before into its range, which went
 * to the hash table for want of a sequence (the first of one): lookups
 * then find the hash table empty, as long as keys come in sequence. */
static void s_adopt(idmap_t *self, chunk_t *c)
{
    if (!self->last_loose || (self->last >> IDMAP_BITS) != c->no)
        return;
    uint64_t h = s_hash(self->last);
    void *item = htab_find(self->loose, h, s_same, NULL);
    if (!item)
        return;
    htab_remove(self->loose, h, item);
    c->item[self->last & MASK] = item;
    c->n++;
    self->in_chunks++;
}

int idmap_put(idmap_t *self, uint64_t key, void *item)
{
    assert(item);
    uint64_t no = key >> IDMAP_BITS;
    chunk_t *c = s_chunk(self, no);
    if (!c && s_continues(self, no) && (c = s_chunk_new(self, no)))
        s_adopt(self, c); /* (out of memory: the key goes loose) */
    if (c) {
        assert(!c->item[key & MASK]);
        c->item[key & MASK] = item;
        c->n++;
        self->in_chunks++;
        if (c != self->cur) {
            /* The sequence moved on: the chunk it left is freed once it
             * is empty, not before (it would be made again at once). */
            chunk_t *old = self->cur;
            self->cur = c;
            if (old && old->n == 0)
                s_chunk_free(self, old);
        }
    } else if (s_loose_put(self, key, item) != 0) {
        return -1;
    }
    self->last = key;
    self->last_loose = !c;
    self->count++;
    return 0;
}

void *idmap_get(const idmap_t *self, uint64_t key)
{
    const chunk_t *c = s_chunk(self, key >> IDMAP_BITS);
    if (c && c->item[key & MASK])
        return c->item[key & MASK];
    /* A key put before its chunk was made, or moved out of a sparse one. */
    if (!self->loose || htab_count(self->loose) == 0)
        return NULL;
    return htab_find(self->loose, s_hash(key), s_same, NULL);
}

/* True if the chunks hold on average under a quarter of their slots,
 * beyond one chunk's worth (the current one may be nearly empty). */
static bool s_sparse(const idmap_t *self)
{
    return self->nchunks * IDMAP_CHUNK > 4 * self->in_chunks + IDMAP_CHUNK;
}

/* Move the keys of chunks under half full (but the current one) to the
 * hash table, and free those chunks.  Afterwards the chunks hold on average
 * at least half their slots, less the current one's, so that s_sparse turns
 * true again only after removals or new chunks in proportion to the work
 * done here.  Stops where the hash table cannot grow. */
static void s_sweep(idmap_t *self)
{
    chunk_t *next;
    for (chunk_t *c = self->all; c; c = next) {
        next = c->next;
        if (c == self->cur || c->n >= IDMAP_CHUNK / 2)
            continue;
        for (uint32_t i = 0; i < IDMAP_CHUNK && c->n; i++) {
            if (!c->item[i])
                continue;
            if (s_loose_put(self, (c->no << IDMAP_BITS) | i, c->item[i]) != 0)
                return;
            c->item[i] = NULL;
            c->n--;
            self->in_chunks--;
        }
        s_chunk_free(self, c);
    }
}

int idmap_remove(idmap_t *self, uint64_t key, const void *item)
{
    assert(item);
    uint64_t no = key >> IDMAP_BITS;
    chunk_t *c = self->drain && self->drain->no == no ? self->drain : s_chunk(self, no);
    self->drain = c;
    if (c && c->item[key & MASK] == item) {
        c->item[key & MASK] = NULL;
        c->n--;
        self->in_chunks--;
        self->count--;
        if (c->n == 0 && c != self->cur)
            s_chunk_free(self, c);
        else if (s_sparse(self))
            s_sweep(self);
        return 0;
    }
    if (!self->loose || htab_remove(self->loose, s_hash(key), item) != 0)
        return -1;
    self->count--;
    return 0;
}

size_t idmap_count(const idmap_t *self)
{
    return self->count;
}

void *idmap_next(const idmap_t *self, size_t *cursor)
{
    /* The cursor's low bit tells the part: 0 the chunks, the rest being
     * (position in the chunk table, index in the chunk); 1 the loose keys,
     * the rest being the position in their table. */
    size_t at = *cursor >> 1;
    if (!(*cursor & 1)) {
        size_t pos = at >> IDMAP_BITS, i = at & MASK;
        for (;;) {
            size_t after = pos;
            const chunk_t *c = htab_next(self->chunks, &after);
            if (!c)
                break;
            for (; i < IDMAP_CHUNK; i++)
                if (c->item[i]) {
                    size_t p = pos, j = i + 1;
                    if (j == IDMAP_CHUNK)
                        p = after, j = 0;
                    *cursor = ((p << IDMAP_BITS) | j) << 1;
                    return c->item[i];
                }
            pos = after;
            i = 0;
        }
        at = 0;
    }
    void *item = self->loose ? htab_next(self->loose, &at) : NULL;
    *cursor = (at << 1) | 1;
    return item;
}

size_t idmap_bytes(const idmap_t *self)
{
    return sizeof *self + self->nchunks * sizeof(chunk_t) + htab_bytes(self->chunks) +
           (self->loose ? htab_bytes(self->loose) : 0);
}
