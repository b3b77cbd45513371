/* theap.h -- a binary min-heap of timers embedded in their owners.
 *
 * Whatever waits until a due time holds a theap_node_t: the broker's
 * delayed jobs (an `at` in the future, a retry waiting out its backoff),
 * the scheduler's sleeping and parked coroutines.  The heap is an array of
 * node pointers ordered by node->key (the due time), and each node records
 * its own position so that a cancelled timer leaves the heap in O(log n)
 * without a search.  The owner of a node gets back from it with
 * container_of-style pointer arithmetic.
 *
 * Nodes with equal keys come out in the order they were pushed, so timers
 * due in the same millisecond fire in the order they were set.
 */
#ifndef QJ_THEAP_H
#define QJ_THEAP_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

typedef struct theap_node {
    uint64_t key;   /* due time; smaller comes out first */
    uint32_t idx;   /* position in the heap, maintained by theap */
    uint32_t seq;   /* push order among equal keys, maintained by theap */
} theap_node_t;

typedef struct theap theap_t;

/* Create an empty heap.  Returns NULL on allocation failure. */
theap_t *theap_new(void);

/* Free the heap (not the nodes); safe on NULL, nulls the caller's pointer. */
void theap_destroy(theap_t **self_p);

/* Make room for n nodes in all, so that theap_push cannot fail while the
 * heap holds fewer than n: for a caller that must not fail later (the
 * scheduler reserves a place per coroutine when it spawns one).  Returns
 * 0, or -1 if the heap could not grow (it is left as it was). */
int theap_reserve(theap_t *self, size_t n);

/* Add a node whose key the caller has set.  The node must not be in a
 * heap already.  Returns 0, or -1 if the heap could not grow. */
int theap_push(theap_t *self, theap_node_t *node);

/* The node with the smallest key, or NULL if the heap is empty. */
theap_node_t *theap_peek(const theap_t *self);

/* Remove and return the node with the smallest key, or NULL if empty. */
theap_node_t *theap_pop(theap_t *self);

/* Remove a node that is in this heap. */
void theap_remove(theap_t *self, theap_node_t *node);

/* Whether node is in this heap.  Any initialised node may be asked (one
 * zeroed and never pushed, one pushed and since removed). */
bool theap_contains(const theap_t *self, const theap_node_t *node);

/* Number of nodes. */
uint32_t theap_size(const theap_t *self);

#endif
