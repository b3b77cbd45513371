/* test_theap.c -- the timer heap: nodes come out in key order, and a
 * node removed from anywhere leaves the order intact. */
#include <setjmp.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <cmocka.h>

#include "theap.h"

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

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_order),
        cmocka_unit_test(test_remove_anywhere),
        cmocka_unit_test(test_peek_is_min),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
