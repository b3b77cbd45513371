/* theap.h -- a binary min-heap of timers embedded in their owners.
 *
 * The broker holds delayed jobs (an `at` in the future, a retry waiting
 * out its backoff) until they are due.  Each job embeds a theap_node_t;
 * the heap is an array of node pointers ordered by node->key (the due
 * time), and each node records its own position so that a cancelled job
 * leaves the heap in O(log n) without a search.  The owner of a node gets
 * back from it with container_of-style pointer arithmetic.
 */
#ifndef QJ_THEAP_H
#define QJ_THEAP_H

#include <stdint.h>

typedef struct theap_node {
    uint64_t key;   /* due time; smaller comes out first */
    uint32_t idx;   /* position in the heap, maintained by theap */
} theap_node_t;

typedef struct theap theap_t;

/* Create an empty heap.  Returns NULL on allocation failure. */
theap_t *theap_new(void);

/* Free the heap (not the nodes); safe on NULL, nulls the caller's pointer. */
void theap_destroy(theap_t **self_p);

/* Add a node whose key the caller has set.  The node must not be in a
 * heap already.  Returns 0, or -1 if the heap could not grow. */
int theap_push(theap_t *self, theap_node_t *node);

/* The node with the smallest key, or NULL if the heap is empty. */
theap_node_t *theap_peek(const theap_t *self);

/* Remove and return the node with the smallest key, or NULL if empty. */
theap_node_t *theap_pop(theap_t *self);

/* Remove a node that is in this heap. */
void theap_remove(theap_t *self, theap_node_t *node);

/* Number of nodes. */
uint32_t theap_size(const theap_t *self);

#endif
