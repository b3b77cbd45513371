/* htab.c -- open-addressing hash table of pointers (see htab.h). */
#include "htab.h"

#include <assert.h>
#include <stdlib.h>
#include <string.h>

#define HTAB_MIN_BITS 4

typedef struct slot {
    uint64_t h;   /* the item's hash, kept so probes and growth never touch items */
    void *item;   /* NULL = empty */
} slot_t;

struct htab {
    slot_t *slots;
    uint32_t bits;   /* capacity is 1 << bits */
    size_t count;
};

/* The low bits of the hash: callers hand in mixed hashes (htab_hash_*),
 * and htab_hash_seq relies on its low two bits landing side by side. */
static inline size_t s_home(uint64_t h, uint32_t bits)
{
    return (size_t)(h & (((uint64_t)1 << bits) - 1));
}

static slot_t *s_alloc(uint32_t bits)
{
    return calloc((size_t)1 << bits, sizeof(slot_t));
}

htab_t *htab_new(void)
{
    htab_t *self = calloc(1, sizeof *self);
    if (!self)
        return NULL;
    self->bits = HTAB_MIN_BITS;
    self->slots = s_alloc(self->bits);
    if (!self->slots) {
        free(self);
        return NULL;
    }
    return self;
}

void htab_destroy(htab_t **self_p)
{
    if (!self_p || !*self_p)
        return;
    free((*self_p)->slots);
    free(*self_p);
    *self_p = NULL;
}

static void s_place(slot_t *slots, uint32_t bits, uint64_t h, void *item)
{
    size_t mask = ((size_t)1 << bits) - 1;
    size_t i = s_home(h, bits);
    while (slots[i].item)
        i = (i + 1) & mask;
    slots[i].h = h;
    slots[i].item = item;
}

static int s_grow(htab_t *self)
{
    uint32_t bits = self->bits + 1;
    slot_t *slots = s_alloc(bits);
    if (!slots)
        return -1;
    size_t cap = (size_t)1 << self->bits;
    for (size_t i = 0; i < cap; i++)
        if (self->slots[i].item)
            s_place(slots, bits, self->slots[i].h, self->slots[i].item);
    free(self->slots);
    self->slots = slots;
    self->bits = bits;
    return 0;
}

int htab_insert(htab_t *self, uint64_t h, void *item)
{
    assert(item);
    size_t cap = (size_t)1 << self->bits;
    if ((self->count + 1) * 4 > cap * 3 && s_grow(self) != 0)
        return -1;
    s_place(self->slots, self->bits, h, item);
    self->count++;
    return 0;
}

void *htab_find(const htab_t *self, uint64_t h, htab_eq_fn eq, const void *key)
{
    size_t mask = ((size_t)1 << self->bits) - 1;
    for (size_t i = s_home(h, self->bits); self->slots[i].item; i = (i + 1) & mask)
        if (self->slots[i].h == h && eq(self->slots[i].item, key))
            return self->slots[i].item;
    return NULL;
}

int htab_remove(htab_t *self, uint64_t h, const void *item)
{
    size_t mask = ((size_t)1 << self->bits) - 1;
    size_t i = s_home(h, self->bits);
    while (self->slots[i].item != item || self->slots[i].h != h) {
        if (!self->slots[i].item)
            return -1;
        i = (i + 1) & mask;
    }
    /* Backward shift: pull later members of the probe run into the hole
     * when the hole lies between their home and their slot, so lookups
     * never stop early at a gap. */
    size_t hole = i;
    for (size_t j = (i + 1) & mask; self->slots[j].item; j = (j + 1) & mask) {
        size_t home = s_home(self->slots[j].h, self->bits);
        if (((j - home) & mask) >= ((j - hole) & mask)) {
            self->slots[hole] = self->slots[j];
            hole = j;
        }
    }
    self->slots[hole].item = NULL;
    self->count--;
    return 0;
}

size_t htab_count(const htab_t *self)
{
    return self->count;
}

size_t htab_bytes(const htab_t *self)
{
    return sizeof *self + ((size_t)1 << self->bits) * sizeof(slot_t);
}

void *htab_next(const htab_t *self, size_t *cursor)
{
    size_t cap = (size_t)1 << self->bits;
    while (*cursor < cap) {
        void *item = self->slots[(*cursor)++].item;
        if (item)
            return item;
    }
    return NULL;
}

static inline uint64_t s_mix(uint64_t h)
{
    h ^= h >> 30;
    h *= 0xbf58476d1ce4e5b9ull;
    h ^= h >> 27;
    h *= 0x94d049bb133111ebull;
    return h ^ (h >> 31);
}

uint64_t htab_hash_bytes(const void *data, size_t len)
{
    /* FNV-1a, then a final avalanche so that short keys that differ in
     * one byte land far apart. */
    const unsigned char *p = data;
    uint64_t h = 0xcbf29ce484222325ull;
    for (size_t i = 0; i < len; i++) {
        h ^= p[i];
        h *= 0x100000001b3ull;
    }
    return s_mix(h);
}

uint64_t htab_hash_pair(uint64_t a, uint64_t b)
{
    return s_mix(a ^ s_mix(b + 0x9E3779B97F4A7C15ull));
}

uint64_t htab_hash_seq(uint64_t seed, uint64_t n)
{
    return (htab_hash_pair(seed, n >> 2) & ~(uint64_t)3) | (n & 3);
}
