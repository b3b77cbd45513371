/* theap.c -- binary min-heap of embedded timer nodes (see theap.h). */
#include "theap.h"

#include <assert.h>
#include <stdlib.h>

/* Records embed a node (a queued job is 128 bytes): the push order fits in
 * what would otherwise be padding. */
_Static_assert(sizeof(theap_node_t) == 16, "theap_node_t must stay 16 bytes");

/* The push numbers run from 0 to this, then start again (see s_renumber).
 * The unit test lowers it to reach that point. */
#ifndef THEAP_SEQ_LIMIT
#define THEAP_SEQ_LIMIT UINT32_MAX
#endif

struct theap {
    theap_node_t **v;
    uint32_t n, cap;
    uint32_t next_seq;      /* seq of the next push */
};

theap_t *theap_new(void)
{
    return calloc(1, sizeof(theap_t));
}

void theap_destroy(theap_t **self_p)
{
    if (!self_p || !*self_p)
        return;
    free((*self_p)->v);
    free(*self_p);
    *self_p = NULL;
}

static inline bool s_before(const theap_node_t *a, const theap_node_t *b)
{
    return a->key < b->key || (a->key == b->key && a->seq < b->seq);
}

static inline bool s_contains(const theap_t *self, const theap_node_t *node)
{
    return node->idx < self->n && self->v[node->idx] == node;
}

static inline void s_set(theap_t *self, uint32_t i, theap_node_t *node)
{
    self->v[i] = node;
    node->idx = i;
}

static void s_up(theap_t *self, uint32_t i)
{
    theap_node_t *node = self->v[i];
    while (i > 0) {
        uint32_t parent = (i - 1) / 2;
        if (!s_before(node, self->v[parent]))
            break;
        s_set(self, i, self->v[parent]);
        i = parent;
    }
    s_set(self, i, node);
}

static void s_down(theap_t *self, uint32_t i)
{
    theap_node_t *node = self->v[i];
    for (;;) {
        uint32_t child = 2 * i + 1;
        if (child >= self->n)
            break;
        if (child + 1 < self->n && s_before(self->v[child + 1], self->v[child]))
            child++;
        if (!s_before(self->v[child], node))
            break;
        s_set(self, i, self->v[child]);
        i = child;
    }
    s_set(self, i, node);
}

static int s_compare(const void *a, const void *b)
{
    const theap_node_t *x = *(theap_node_t *const *)a;
    const theap_node_t *y = *(theap_node_t *const *)b;
    return s_before(x, y) ? -1 : s_before(y, x);
}

/* When the push numbers run out (every 2^32 pushes), number the nodes
 * afresh from 0 in the order they come out, so that equal keys keep their
 * order for ever.  A sorted array is a valid heap.  Cannot fail. */
static void s_renumber(theap_t *self)
{
    qsort(self->v, self->n, sizeof *self->v, s_compare);
    for (uint32_t i = 0; i < self->n; i++) {
        s_set(self, i, self->v[i]);
        self->v[i]->seq = i;
    }
    self->next_seq = self->n;
}

int theap_reserve(theap_t *self, size_t n)
{
    if (n <= self->cap)
        return 0;
    if (n > UINT32_MAX)
        return -1;
    size_t cap = self->cap ? 2 * (size_t)self->cap : 64;
    while (cap < n)
        cap *= 2;
    if (cap > UINT32_MAX)
        cap = UINT32_MAX;
    theap_node_t **v = realloc(self->v, cap * sizeof *v);
    if (!v)
        return -1;
    self->v = v;
    self->cap = (uint32_t)cap;
    return 0;
}

int theap_push(theap_t *self, theap_node_t *node)
{
    if (self->n == self->cap && theap_reserve(self, (size_t)self->n + 1) != 0)
        return -1;
    if (self->next_seq >= THEAP_SEQ_LIMIT)
        s_renumber(self);
    node->seq = self->next_seq++;
    s_set(self, self->n++, node);
    s_up(self, self->n - 1);
    return 0;
}

theap_node_t *theap_peek(const theap_t *self)
{
    return self->n ? self->v[0] : NULL;
}

theap_node_t *theap_pop(theap_t *self)
{
    if (self->n == 0)
        return NULL;
    theap_node_t *top = self->v[0];
    theap_remove(self, top);
    return top;
}

void theap_remove(theap_t *self, theap_node_t *node)
{
    uint32_t i = node->idx;
    assert(s_contains(self, node));
    theap_node_t *last = self->v[--self->n];
    if (last == node)
        return;
    s_set(self, i, last);
    /* The moved node may belong above or below the hole. */
    if (i > 0 && s_before(last, self->v[(i - 1) / 2]))
        s_up(self, i);
    else
        s_down(self, i);
}

bool theap_contains(const theap_t *self, const theap_node_t *node)
{
    return s_contains(self, node);
}

uint32_t theap_size(const theap_t *self)
{
    return self->n;
}
