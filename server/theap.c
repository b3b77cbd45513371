/* theap.c -- binary min-heap of embedded timer nodes (see theap.h). */
#include "theap.h"

#include <assert.h>
#include <stdlib.h>

struct theap {
    theap_node_t **v;
    uint32_t n, cap;
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
        if (self->v[parent]->key <= node->key)
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
        if (child + 1 < self->n && self->v[child + 1]->key < self->v[child]->key)
            child++;
        if (node->key <= self->v[child]->key)
            break;
        s_set(self, i, self->v[child]);
        i = child;
    }
    s_set(self, i, node);
}

int theap_push(theap_t *self, theap_node_t *node)
{
    if (self->n == self->cap) {
        uint32_t cap = self->cap ? self->cap * 2 : 64;
        theap_node_t **v = realloc(self->v, (size_t)cap * sizeof *v);
        if (!v)
            return -1;
        self->v = v;
        self->cap = cap;
    }
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
    assert(i < self->n && self->v[i] == node);
    theap_node_t *last = self->v[--self->n];
    if (last == node)
        return;
    s_set(self, i, last);
    /* The moved node may belong above or below the hole. */
    if (i > 0 && self->v[(i - 1) / 2]->key > last->key)
        s_up(self, i);
    else
        s_down(self, i);
}

uint32_t theap_size(const theap_t *self)
{
    return self->n;
}
