/* test_theap.c -- the timer heap: nodes come out in key order, equal keys
 * in push order, a node removed from anywhere leaves the order intact, and
 * a reserved place cannot fail to take a node.
 *
 * Two seams (tests/meson.build): the test compiles its own theap.c with
 * THEAP_SEQ_LIMIT lowered, so that push numbers run out within the test;
 * and it is linked with -Wl,--wrap=realloc, so that theap's calls to
 * realloc come to __wrap_realloc, which fails on demand. */
#include <setjmp.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <cmocka.h>

#include "theap.h"

#if !defined(THEAP_SEQ_LIMIT) || THEAP_SEQ_LIMIT > 1000
#error "test_theap wants theap.c built with a small THEAP_SEQ_LIMIT"
#endif

static bool s_realloc_fails;

void *__real_realloc(void *p, size_t n);
void *__wrap_realloc(void *p, size_t n);

void *__wrap_realloc(void *p, size_t n)
{
    return s_realloc_fails ? NULL : __real_realloc(p, n);
}

/* Pop everything; asserts key order, and push order (rank) among equal
 * keys.  Returns how many came out. */
static int s_drain_in_order(theap_t *h, const theap_node_t *nodes, const int *rank)
{
    int out = 0;
    const theap_node_t *prev = NULL;
    theap_node_t *n;
    while ((n = theap_pop(h))) {
        assert_false(theap_contains(h, n));
        if (prev) {
            assert_true(n->key >= prev->key);
            if (n->key == prev->key)
                assert_true(rank[n - nodes] > rank[prev - nodes]);
        }
        prev = n;
        out++;
    }
    return out;
}

static void test_order(void **state)
{
    (void)state;
    theap_t *h = theap_new();
    assert_non_null(h);
    assert_null(theap_peek(h));
    assert_null(theap_pop(h));
    enum { N = 1000 };
    theap_node_t *nodes = calloc(N, sizeof *nodes);
    srand(3);
    for (int i = 0; i < N; i++) {
        nodes[i].key = (uint64_t)(rand() % 500);
        assert_int_equal(theap_push(h, &nodes[i]), 0);
    }
    assert_int_equal(theap_size(h), N);
    uint64_t last = 0;
    for (int i = 0; i < N; i++) {
        theap_node_t *n = theap_pop(h);
        assert_non_null(n);
        assert_true(n->key >= last);
        last = n->key;
    }
    assert_int_equal(theap_size(h), 0);
    theap_destroy(&h);
    assert_null(h);
    free(nodes);
}

static void test_remove_anywhere(void **state)
{
    (void)state;
    theap_t *h = theap_new();
    enum { N = 300 };
    theap_node_t nodes[N];
    bool removed[N] = {false};
    srand(5);
    for (int i = 0; i < N; i++) {
        nodes[i].key = (uint64_t)(rand() % 1000);
        theap_push(h, &nodes[i]);
    }
    for (int i = 0; i < N; i += 3) {
        theap_remove(h, &nodes[i]);
        removed[i] = true;
    }
    uint64_t last = 0;
    int out = 0;
    theap_node_t *n;
    while ((n = theap_pop(h))) {
        assert_false(removed[n - nodes]);
        assert_true(n->key >= last);
        last = n->key;
        out++;
    }
    assert_int_equal(out, N - (N + 2) / 3);
    theap_destroy(&h);
}

static void test_peek_is_min(void **state)
{
    (void)state;
    theap_t *h = theap_new();
    theap_node_t a = {.key = 30}, b = {.key = 10}, c = {.key = 20};
    theap_push(h, &a);
    theap_push(h, &b);
    theap_push(h, &c);
    assert_ptr_equal(theap_peek(h), &b);
    theap_remove(h, &b);
    assert_ptr_equal(theap_peek(h), &c);
    theap_destroy(&h);
}

/* Push n nodes with random keys below keys; rank[i] is node i's push count. */
static void s_push_random(theap_t *h, theap_node_t *nodes, int *rank, int n, int keys, int *pushes)
{
    for (int i = 0; i < n; i++) {
        nodes[i].key = (uint64_t)(rand() % keys);
        rank[i] = (*pushes)++;
        assert_int_equal(theap_push(h, &nodes[i]), 0);
    }
}

/* Take node i out and push it again. */
static void s_repush(theap_t *h, theap_node_t *nodes, int *rank, int i, int *pushes)
{
    theap_remove(h, &nodes[i]);
    rank[i] = (*pushes)++;
    assert_int_equal(theap_push(h, &nodes[i]), 0);
}

static void test_equal_keys_in_push_order(void **state)
{
    (void)state;
    theap_t *h = theap_new();
    enum { N = 1000 };
    theap_node_t nodes[N];
    int rank[N];
    int pushes = 0;
    srand(7);
    s_push_random(h, nodes, rank, N, 8, &pushes);
    /* Removed and pushed again, a node goes behind its equals. */
    for (int i = 0; i < N; i += 5)
        s_repush(h, nodes, rank, i, &pushes);
    assert_int_equal(s_drain_in_order(h, nodes, rank), N);
    theap_destroy(&h);
}

/* The first node in (key, push rank) order: what must pop. */
static int s_first(const theap_node_t *nodes, const int *rank, int n)
{
    int first = 0;
    for (int i = 1; i < n; i++) {
        if (nodes[i].key < nodes[first].key
            || (nodes[i].key == nodes[first].key && rank[i] < rank[first]))
            first = i;
    }
    return first;
}

static void test_ties_survive_renumbering(void **state)
{
    (void)state;
    theap_t *h = theap_new();
    enum { N = 40, ROUNDS = 20000 };
    theap_node_t nodes[N];
    int rank[N];
    int pushes = 0;
    srand(11);
    s_push_random(h, nodes, rank, N, 4, &pushes);
    /* Many times THEAP_SEQ_LIMIT pushes, keys close enough to tie often. */
    for (int r = 0; r < ROUNDS; r++) {
        int want = s_first(nodes, rank, N);
        theap_node_t *top = theap_pop(h);
        assert_ptr_equal(top, &nodes[want]);
        top->key += (uint64_t)(rand() % 3);
        rank[want] = pushes++;
        assert_int_equal(theap_push(h, top), 0);
        s_repush(h, nodes, rank, rand() % N, &pushes);
    }
    assert_int_equal(s_drain_in_order(h, nodes, rank), N);
    theap_destroy(&h);
}

static void test_contains(void **state)
{
    (void)state;
    theap_t *h = theap_new();
    theap_node_t a = {.key = 1}, b = {.key = 2};
    assert_false(theap_contains(h, &a));
    theap_push(h, &b);
    /* a's idx (0) is b's place: still not a's. */
    assert_false(theap_contains(h, &a));
    theap_push(h, &a);
    assert_true(theap_contains(h, &a));
    assert_true(theap_contains(h, &b));
    theap_remove(h, &b);
    assert_false(theap_contains(h, &b));
    assert_ptr_equal(theap_pop(h), &a);
    assert_false(theap_contains(h, &a));
    theap_destroy(&h);
}

static void test_reserved_push_cannot_fail(void **state)
{
    (void)state;
    theap_t *h = theap_new();
    enum { RESERVED = 100, MORE = 1000 };
    theap_node_t nodes[RESERVED + MORE] = {0};
    int rank[RESERVED + MORE];
    assert_int_equal(theap_reserve(h, RESERVED), 0);
    s_realloc_fails = true;
    /* Already room: no allocation, so no failure. */
    assert_int_equal(theap_reserve(h, RESERVED), 0);
    int pushed = 0;
    for (; pushed < RESERVED; pushed++) {
        nodes[pushed].key = (uint64_t)(RESERVED - pushed);
        rank[pushed] = pushed;
        assert_int_equal(theap_push(h, &nodes[pushed]), 0);
    }
    /* Beyond the reservation the heap must grow, and cannot. */
    int rc = 0;
    while (rc == 0 && pushed < RESERVED + MORE) {
        nodes[pushed].key = 0;
        rank[pushed] = pushed;
        rc = theap_push(h, &nodes[pushed]);
        pushed += rc == 0;
    }
    assert_int_equal(rc, -1);
    assert_int_equal(theap_size(h), pushed);
    assert_false(theap_contains(h, &nodes[pushed]));
    s_realloc_fails = false;
    assert_int_equal(s_drain_in_order(h, nodes, rank), pushed);
    theap_destroy(&h);
}

static void test_reserve_failure_leaves_heap(void **state)
{
    (void)state;
    theap_t *h = theap_new();
    theap_node_t nodes[3] = {{.key = 3}, {.key = 1}, {.key = 2}};
    int rank[3] = {0, 1, 2};
    for (int i = 0; i < 3; i++)
        theap_push(h, &nodes[i]);
    s_realloc_fails = true;
    assert_int_equal(theap_reserve(h, 100000), -1);
    s_realloc_fails = false;
    /* More places than a node's 32-bit position can address. */
    assert_int_equal(theap_reserve(h, (size_t)UINT32_MAX + 1), -1);
    assert_int_equal(theap_size(h), 3);
    assert_ptr_equal(theap_peek(h), &nodes[1]);
    assert_int_equal(s_drain_in_order(h, nodes, rank), 3);
    theap_destroy(&h);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_order),
        cmocka_unit_test(test_remove_anywhere),
        cmocka_unit_test(test_peek_is_min),
        cmocka_unit_test(test_equal_keys_in_push_order),
        cmocka_unit_test(test_ties_survive_renumbering),
        cmocka_unit_test(test_contains),
        cmocka_unit_test(test_reserved_push_cannot_fail),
        cmocka_unit_test(test_reserve_failure_leaves_heap),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
