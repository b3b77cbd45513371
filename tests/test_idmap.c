/* test_idmap.c -- the map of keys in sequence: keys in order, far apart,
 * in any order (a replay), removal out of order, removal by identity,
 * iteration over chunks and loose keys, and memory that stays bounded
 * whatever the pattern. */
#include <setjmp.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <cmocka.h>

#include "idmap.h"
#include "shuffle.h"

/* Job ids of a fresh broker start above unix_ms << 16. */
#define BASE (((uint64_t)1700000000000 << 16) + 1)

/* Items are the addresses of elements of one array, so that each is told
 * apart from the others and from NULL. */
static char s_items[1 << 16];

static void *s_item(size_t i)
{
    return &s_items[i % sizeof s_items];
}

static void test_in_sequence(void **state)
{
    (void)state;
    idmap_t *m = idmap_new();
    assert_non_null(m);
    size_t empty = idmap_bytes(m);
    enum { N = 10000 };
    for (size_t i = 0; i < N; i++)
        assert_int_equal(idmap_put(m, BASE + i, s_item(i)), 0);
    assert_int_equal(idmap_count(m), N);
    for (size_t i = 0; i < N; i++)
        assert_ptr_equal(idmap_get(m, BASE + i), s_item(i));
    assert_null(idmap_get(m, BASE - 1));
    assert_null(idmap_get(m, BASE + N));
    assert_null(idmap_get(m, 0));
    /* Dense keys cost about a pointer each. */
    assert_true(idmap_bytes(m) - empty < N * sizeof(void *) * 3 / 2 + 4096);
    /* Oldest first, as jobs expire: each emptied chunk is freed. */
    for (size_t i = 0; i < N; i++) {
        assert_int_equal(idmap_remove(m, BASE + i, s_item(i)), 0);
        if (i + 1 < N)
            assert_ptr_equal(idmap_get(m, BASE + i + 1), s_item(i + 1));
    }
    assert_int_equal(idmap_count(m), 0);
    assert_null(idmap_get(m, BASE));
    assert_true(idmap_bytes(m) <= empty + 4096); /* the current chunk at most */
    /* The sequence goes on where it was. */
    assert_int_equal(idmap_put(m, BASE + N, s_item(N)), 0);
    assert_ptr_equal(idmap_get(m, BASE + N), s_item(N));
    idmap_destroy(&m);
    assert_null(m);
    idmap_destroy(&m);
}

static void test_far_apart(void **state)
{
    (void)state;
    idmap_t *m = idmap_new();
    const uint64_t keys[] = {
        1, 2, 255, 256, 257, BASE, BASE + 1, BASE + ((uint64_t)1 << 40), (uint64_t)1 << 63,
        UINT64_MAX, UINT64_MAX - 1, UINT64_MAX - 256, 0, 0x123456789abcdefull,
    };
    enum { K = sizeof keys / sizeof keys[0] };
    for (size_t i = 0; i < K; i++)
        assert_int_equal(idmap_put(m, keys[i], s_item(i)), 0);
    for (size_t i = 0; i < K; i++)
        assert_ptr_equal(idmap_get(m, keys[i]), s_item(i));
    const uint64_t absent[] = {3, 254, 258, BASE + 2, BASE - 1, ((uint64_t)1 << 63) + 1,
                               UINT64_MAX - 2, 0x123456789abcdeeull};
    for (size_t i = 0; i < sizeof absent / sizeof absent[0]; i++)
        assert_null(idmap_get(m, absent[i]));
    /* A sequence that starts after them is kept in chunks. */
    size_t before = idmap_bytes(m);
    for (size_t i = 0; i < 1000; i++)
        assert_int_equal(idmap_put(m, BASE + 1000 + i, s_item(100 + i)), 0);
    assert_true(idmap_bytes(m) - before < 1000 * sizeof(void *) * 2 + 4096);
    for (size_t i = 0; i < K; i += 2)
        assert_int_equal(idmap_remove(m, keys[i], s_item(i)), 0);
    for (size_t i = 0; i < K; i++)
        assert_ptr_equal(idmap_get(m, keys[i]), i % 2 ? s_item(i) : NULL);
    for (size_t i = 0; i < 1000; i++)
        assert_ptr_equal(idmap_get(m, BASE + 1000 + i), s_item(100 + i));
    assert_int_equal(idmap_count(m), K / 2 + 1000);
    idmap_destroy(&m);
}

/* A restart: the journal replays the jobs it holds in no order of id
 * (queue by queue, then finished ones), then new ids follow, far above. */
static void test_replay_then_new(void **state)
{
    (void)state;
    idmap_t *m = idmap_new();
    enum { N = 5000 };
    size_t *order = test_shuffle(N, 42);
    for (size_t i = 0; i < N; i++)
        assert_int_equal(idmap_put(m, BASE + order[i] * 3, s_item(order[i])), 0);
    uint64_t next = BASE + ((uint64_t)3600 * 1000 << 16); /* an hour later */
    for (size_t i = 0; i < N; i++)
        assert_int_equal(idmap_put(m, next + i, s_item(N + i)), 0);
    assert_int_equal(idmap_count(m), 2 * N);
    for (size_t i = 0; i < N; i++) {
        assert_ptr_equal(idmap_get(m, BASE + i * 3), s_item(i));
        assert_null(idmap_get(m, BASE + i * 3 + 1));
        assert_ptr_equal(idmap_get(m, next + i), s_item(N + i));
    }
    /* The replayed jobs go in any order; the new ones stay findable. */
    for (size_t i = 0; i < N; i++) {
        assert_int_equal(idmap_remove(m, BASE + order[i] * 3, s_item(order[i])), 0);
        assert_null(idmap_get(m, BASE + order[i] * 3));
    }
    for (size_t i = 0; i < N; i++)
        assert_ptr_equal(idmap_get(m, next + i), s_item(N + i));
    assert_int_equal(idmap_count(m), N);
    free(order);
    idmap_destroy(&m);
}

static void test_remove_out_of_order(void **state)
{
    (void)state;
    idmap_t *m = idmap_new();
    enum { N = 20000 };
    for (size_t i = 0; i < N; i++)
        assert_int_equal(idmap_put(m, BASE + i, s_item(i)), 0);
    size_t dense = idmap_bytes(m);
    size_t *order = test_shuffle(N, 7);
    bool *gone = calloc(N, sizeof *gone);
    for (size_t i = 0; i < N; i++) {
        size_t k = order[i];
        assert_int_equal(idmap_remove(m, BASE + k, s_item(k)), 0);
        gone[k] = true;
        assert_int_equal(idmap_remove(m, BASE + k, s_item(k)), -1);
        if (i % 1000 == 999) {
            for (size_t j = 0; j < N; j++)
                assert_ptr_equal(idmap_get(m, BASE + j), gone[j] ? NULL : s_item(j));
            /* Sparse chunks hand their keys to the hash table: memory
             * does not grow as the chunks empty. */
            assert_true(idmap_bytes(m) <= dense * 3 / 2);
        }
    }
    assert_int_equal(idmap_count(m), 0);
    free(gone);
    free(order);
    idmap_destroy(&m);
}

/* One job in a hundred stays (a queue nobody serves) while the rest come
 * and go: memory follows the jobs held, not the span of their ids. */
static void test_sparse_survivors(void **state)
{
    (void)state;
    idmap_t *m = idmap_new();
    size_t empty = idmap_bytes(m);
    enum { N = 200000, WINDOW = 1000 };
    for (size_t i = 0; i < N; i++) {
        assert_int_equal(idmap_put(m, BASE + i, s_item(i)), 0);
        if (i >= WINDOW && (i - WINDOW) % 100 != 0)
            assert_int_equal(idmap_remove(m, BASE + i - WINDOW, s_item(i - WINDOW)), 0);
    }
    size_t held = idmap_count(m);
    assert_int_equal(held, WINDOW + (N - WINDOW + 99) / 100);
    assert_true(idmap_bytes(m) - empty <= held * 64 + 16384);
    for (size_t i = 0; i < N; i++) {
        bool kept = i >= N - WINDOW || i % 100 == 0;
        assert_ptr_equal(idmap_get(m, BASE + i), kept ? s_item(i) : NULL);
    }
    idmap_destroy(&m);
}

static void test_remove_by_identity(void **state)
{
    (void)state;
    idmap_t *m = idmap_new();
    assert_int_equal(idmap_put(m, BASE, s_item(1)), 0);
    assert_int_equal(idmap_put(m, 5, s_item(2)), 0); /* loose */
    assert_int_equal(idmap_remove(m, BASE, s_item(2)), -1);
    assert_int_equal(idmap_remove(m, 5, s_item(1)), -1);
    assert_int_equal(idmap_remove(m, BASE + 1, s_item(1)), -1);
    assert_int_equal(idmap_remove(m, 6, s_item(2)), -1);
    assert_int_equal(idmap_count(m), 2);
    assert_ptr_equal(idmap_get(m, BASE), s_item(1));
    assert_ptr_equal(idmap_get(m, 5), s_item(2));
    assert_int_equal(idmap_remove(m, 5, s_item(2)), 0);
    assert_int_equal(idmap_remove(m, BASE, s_item(1)), 0);
    assert_int_equal(idmap_count(m), 0);
    idmap_destroy(&m);
}

static void test_iterate(void **state)
{
    (void)state;
    idmap_t *m = idmap_new();
    size_t cursor = 0;
    assert_null(idmap_next(m, &cursor));
    /* Whole chunks (so that items sit at both ends of them), keys out of
     * sequence, and a chunk made after a loose key of its range. */
    enum { N = 3 * IDMAP_CHUNK };
    uint64_t start = BASE & ~(uint64_t)(IDMAP_CHUNK - 1);
    size_t n = 0;
    for (size_t i = 0; i < N; i++)
        assert_int_equal(idmap_put(m, start + i, s_item(n++)), 0);
    const uint64_t odd[] = {7, 1000000, (uint64_t)1 << 50, 1 << 20, (1 << 20) + 1};
    for (size_t i = 0; i < sizeof odd / sizeof odd[0]; i++)
        assert_int_equal(idmap_put(m, odd[i], s_item(n++)), 0);
    assert_ptr_equal(idmap_get(m, 1 << 20), s_item(n - 2)); /* loose */
    assert_ptr_equal(idmap_get(m, (1 << 20) + 1), s_item(n - 1)); /* chunk */
    assert_null(idmap_get(m, (1 << 20) + 2));
    size_t total = n;
    unsigned char *seen = calloc(total, 1);
    void *item;
    cursor = 0;
    size_t visits = 0;
    while ((item = idmap_next(m, &cursor))) {
        size_t i = (size_t)((char *)item - s_items);
        assert_true(i < total);
        assert_int_equal(seen[i], 0);
        seen[i] = 1;
        visits++;
    }
    assert_int_equal(visits, total);
    assert_null(idmap_next(m, &cursor)); /* stays at the end */
    free(seen);
    idmap_destroy(&m);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_in_sequence),
        cmocka_unit_test(test_far_apart),
        cmocka_unit_test(test_replay_then_new),
        cmocka_unit_test(test_remove_out_of_order),
        cmocka_unit_test(test_sparse_survivors),
        cmocka_unit_test(test_remove_by_identity),
        cmocka_unit_test(test_iterate),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
