/* client_map.c -- open-addressed uint64 -> pointer table (client_map.h). */
#include "client_map.h"

#include <assert.h>
#include <stdlib.h>

#define CMAP_MIN_CAP 16

/* Keys are job ids and refs: ids are sequential, refs count from 1.
 * Fibonacci hashing (multiply by 2^64 / golden ratio, keep the top bits)
 * puts consecutive keys far apart and evenly over the table, so linear
 * probing meets almost no clusters: a hash that scatters them at random
 * would make clusters of a few entries at half load, which every lookup
 * and deletion walks (5x slower on a client's put/del pattern). */
static size_t s_hash(uint64_t key, size_t cap)
{
    return (size_t)((key * 0x9E3779B97F4A7C15ULL) >> (64 - __builtin_ctzll(cap)));
}

void cmap_init(cmap_t *m)
{
    m->slots = NULL;
    m->cap = 0;
    m->count = 0;
}

void cmap_clear(cmap_t *m)
{
    free(m->slots);
    cmap_init(m);
}

void *cmap_get(const cmap_t *m, uint64_t key)
{
    if (m->count == 0 || key == 0)
        return NULL;
    for (size_t i = s_hash(key, m->cap);; i = (i + 1) & (m->cap - 1)) {
        if (m->slots[i].key == key)
            return m->slots[i].val;
        if (m->slots[i].key == 0)
            return NULL;
    }
}

static void s_insert(cmap_slot_t *slots, size_t cap, uint64_t key, void *val)
{
    size_t i = s_hash(key, cap);
    while (slots[i].key != 0 && slots[i].key != key)
        i = (i + 1) & (cap - 1);
    slots[i].key = key;
    slots[i].val = val;
}

/* Keep the load at most 1/2, so that probes stay short. */
static int s_grow(cmap_t *m)
{
    size_t cap = m->cap ? m->cap * 2 : CMAP_MIN_CAP;
    cmap_slot_t *slots = calloc(cap, sizeof *slots);
    if (!slots)
        return -1;
    for (size_t i = 0; i < m->cap; i++)
        if (m->slots[i].key)
            s_insert(slots, cap, m->slots[i].key, m->slots[i].val);
    free(m->slots);
    m->slots = slots;
    m->cap = cap;
    return 0;
}

int cmap_put(cmap_t *m, uint64_t key, void *val)
{
    assert(key != 0 && val != NULL);
    if ((m->count + 1) * 2 > m->cap && s_grow(m) < 0)
        return -1;
    size_t i = s_hash(key, m->cap);
    while (m->slots[i].key != 0 && m->slots[i].key != key)
        i = (i + 1) & (m->cap - 1);
    if (m->slots[i].key == 0)
        m->count++;
    m->slots[i].key = key;
    m->slots[i].val = val;
    return 0;
}

void *cmap_del(cmap_t *m, uint64_t key)
{
    if (m->count == 0 || key == 0)
        return NULL;
    size_t mask = m->cap - 1;
    size_t i = s_hash(key, m->cap);
    while (m->slots[i].key != key) {
        if (m->slots[i].key == 0)
            return NULL;
        i = (i + 1) & mask;
    }
    void *val = m->slots[i].val;
    m->count--;
    /* Backward shift: pull later entries of the probe run into the hole
     * unless their home slot lies cyclically after the hole. */
    size_t hole = i;
    for (size_t j = (i + 1) & mask; m->slots[j].key != 0; j = (j + 1) & mask) {
        size_t home = s_hash(m->slots[j].key, m->cap);
        if (((j - home) & mask) >= ((j - hole) & mask)) {
            m->slots[hole] = m->slots[j];
            hole = j;
        }
    }
    m->slots[hole].key = 0;
    m->slots[hole].val = NULL;
    return val;
}

void *cmap_next(const cmap_t *m, size_t *pos, uint64_t *key)
{
    for (; *pos < m->cap; (*pos)++) {
        if (m->slots[*pos].key) {
            if (key)
                *key = m->slots[*pos].key;
            return m->slots[(*pos)++].val;
        }
    }
    return NULL;
}
