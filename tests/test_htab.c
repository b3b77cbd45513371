/* test_htab.c -- the open-addressing table: find, collisions, removal
 * (backward shift keeps every other item findable), growth, iteration. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <cmocka.h>

#include "htab.h"

typedef struct item {
    uint64_t key;
    int value;
} item_t;

static bool s_eq(const void *item, const void *key)
{
    return ((const item_t *)item)->key == *(const uint64_t *)key;
}

static item_t *s_find(htab_t *t, uint64_t h, uint64_t key)
{
    return htab_find(t, h, s_eq, &key);
}

static void test_insert_find_remove(void **state)
{
    (void)state;
    htab_t *t = htab_new();
    assert_non_null(t);
    enum { N = 10000 };
    item_t *items = calloc(N, sizeof *items);
    for (int i = 0; i < N; i++) {
        items[i].key = (uint64_t)i * 7 + 1;
        items[i].value = i;
        assert_int_equal(htab_insert(t, items[i].key, &items[i]), 0);
    }
    assert_int_equal(htab_count(t), N);
    for (int i = 0; i < N; i++)
        assert_ptr_equal(s_find(t, items[i].key, items[i].key), &items[i]);
    assert_null(s_find(t, 2, 2));
    /* Remove every other one; the rest must stay findable. */
    for (int i = 0; i < N; i += 2)
        assert_int_equal(htab_remove(t, items[i].key, &items[i]), 0);
    assert_int_equal(htab_remove(t, items[0].key, &items[0]), -1);
    assert_int_equal(htab_count(t), N / 2);
    for (int i = 0; i < N; i++) {
        item_t *found = s_find(t, items[i].key, items[i].key);
        if (i % 2)
            assert_ptr_equal(found, &items[i]);
        else
            assert_null(found);
    }
    htab_destroy(&t);
    assert_null(t);
    htab_destroy(&t);
    free(items);
}

static void test_same_hash(void **state)
{
    (void)state;
    /* Many items under one hash: find tells them apart with eq, removal of
     * one in the middle of the run keeps the others. */
    htab_t *t = htab_new();
    item_t items[50];
    for (int i = 0; i < 50; i++) {
        items[i] = (item_t){.key = (uint64_t)i, .value = i};
        assert_int_equal(htab_insert(t, 42, &items[i]), 0);
    }
    for (int i = 0; i < 50; i++)
        assert_ptr_equal(s_find(t, 42, (uint64_t)i), &items[i]);
    assert_int_equal(htab_remove(t, 42, &items[25]), 0);
    assert_null(s_find(t, 42, 25));
    for (int i = 0; i < 50; i++)
        if (i != 25)
            assert_ptr_equal(s_find(t, 42, (uint64_t)i), &items[i]);
    htab_destroy(&t);
}

/* One item under two hashes (idmap moves a key's item between tables,
 * and a caller may index one record twice): removal takes the entry of
 * the hash it is given, not another of the same item. */
static void test_remove_by_hash_and_item(void **state)
{
    (void)state;
    htab_t *t = htab_new();
    item_t a = {.key = 1}, b = {.key = 2};
    assert_int_equal(htab_insert(t, 5, &a), 0);
    assert_int_equal(htab_insert(t, 6, &a), 0);
    assert_int_equal(htab_insert(t, 7, &b), 0);
    assert_int_equal(htab_remove(t, 7, &a), -1);
    assert_int_equal(htab_remove(t, 6, &b), -1);
    assert_int_equal(htab_count(t), 3);
    assert_int_equal(htab_remove(t, 6, &a), 0);
    assert_ptr_equal(s_find(t, 5, 1), &a);
    assert_null(s_find(t, 6, 1));
    assert_int_equal(htab_remove(t, 6, &a), -1);
    assert_int_equal(htab_count(t), 2);
    /* The table's own memory: its slots grow with its items. */
    size_t small = htab_bytes(t);
    item_t many[100];
    for (uint64_t i = 0; i < 100; i++)
        assert_int_equal(htab_insert(t, 100 + i, &many[i]), 0);
    assert_true(htab_bytes(t) > small);
    assert_true(htab_bytes(t) >= 103 * 2 * sizeof(void *));
    htab_destroy(&t);
}

static void test_iterate(void **state)
{
    (void)state;
    htab_t *t = htab_new();
    item_t items[100];
    for (int i = 0; i < 100; i++) {
        items[i] = (item_t){.key = htab_hash_bytes(&i, sizeof i), .value = i};
        htab_insert(t, items[i].key, &items[i]);
    }
    int seen[100] = {0};
    size_t cursor = 0;
    item_t *it;
    int n = 0;
    while ((it = htab_next(t, &cursor))) {
        seen[it->value]++;
        n++;
    }
    assert_int_equal(n, 100);
    for (int i = 0; i < 100; i++)
        assert_int_equal(seen[i], 1);
    htab_destroy(&t);
}

static int s_cmp_u64(const void *a, const void *b)
{
    uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;
    return x < y ? -1 : x > y;
}

static void test_hashes(void **state)
{
    (void)state;
    assert_true(htab_hash_bytes("a", 1) != htab_hash_bytes("b", 1));
    assert_true(htab_hash_bytes("ab", 2) == htab_hash_bytes("ab", 2));
    assert_true(htab_hash_pair(1, 2) != htab_hash_pair(2, 1));
    /* One-to-one in its second value (idmap relies on it): no two of many
     * consecutive or scattered values share a hash. */
    enum { N = 1 << 16 };
    uint64_t *h = malloc(2 * N * sizeof *h);
    for (uint64_t i = 0; i < N; i++) {
        h[i] = htab_hash_pair(0, i);
        h[N + i] = htab_hash_pair(0, (i + 1) << 40 | 1);
    }
    qsort(h, 2 * N, sizeof *h, s_cmp_u64);
    for (size_t i = 1; i < 2 * N; i++)
        assert_true(h[i - 1] != h[i]);
    free(h);
    /* Sequential keys: an aligned group of four shares all but the low two
     * bits; the next group lands elsewhere. */
    uint64_t h8 = htab_hash_seq(7, 8);
    for (uint64_t n = 8; n < 12; n++) {
        assert_int_equal(htab_hash_seq(7, n) >> 2, h8 >> 2);
        assert_int_equal(htab_hash_seq(7, n) & 3, n & 3);
    }
    assert_true((htab_hash_seq(7, 12) >> 2) != (h8 >> 2));
    assert_true(htab_hash_seq(7, 8) != htab_hash_seq(8, 8));
}

/* Sequential ids hashed with htab_hash_seq, inserted and removed in a
 * sliding window (how the broker uses its id table): all stay findable,
 * unknown ids are not found. */
static void test_sequential_window(void **state)
{
    (void)state;
    enum { N = 50000, W = 5000 };
    htab_t *t = htab_new();
    item_t *items = calloc(N, sizeof *items);
    for (int i = 0; i < N; i++) {
        items[i].key = 1000000 + (uint64_t)i;
        assert_int_equal(htab_insert(t, htab_hash_seq(0, items[i].key), &items[i]), 0);
        if (i >= W) {
            item_t *old = &items[i - W];
            assert_int_equal(htab_remove(t, htab_hash_seq(0, old->key), old), 0);
        }
    }
    assert_int_equal(htab_count(t), W);
    for (int i = 0; i < N; i++) {
        item_t *f = s_find(t, htab_hash_seq(0, items[i].key), items[i].key);
        assert_ptr_equal(f, i >= N - W ? &items[i] : NULL);
    }
    htab_destroy(&t);
    free(items);
}

/* Random inserts and removals checked against a plain array. */
static void test_random_against_model(void **state)
{
    (void)state;
    enum { N = 2000 };
    htab_t *t = htab_new();
    item_t *items = calloc(N, sizeof *items);
    bool *in = calloc(N, sizeof *in);
    srand(7);
    for (int i = 0; i < N; i++)
        items[i].key = (uint64_t)rand() << 16 | (uint64_t)i;
    for (int round = 0; round < 50000; round++) {
        int i = rand() % N;
        /* A small hash space makes long probe runs and wrap-around. */
        uint64_t h = items[i].key % 97;
        if (in[i]) {
            assert_int_equal(htab_remove(t, h, &items[i]), 0);
            in[i] = false;
        } else {
            assert_int_equal(htab_insert(t, h, &items[i]), 0);
            in[i] = true;
        }
        int j = rand() % N;
        item_t *f = s_find(t, items[j].key % 97, items[j].key);
        assert_ptr_equal(f, in[j] ? &items[j] : NULL);
    }
    htab_destroy(&t);
    free(items);
    free(in);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_insert_find_remove),
        cmocka_unit_test(test_same_hash),
        cmocka_unit_test(test_remove_by_hash_and_item),
        cmocka_unit_test(test_iterate),
        cmocka_unit_test(test_hashes),
        cmocka_unit_test(test_sequential_window),
        cmocka_unit_test(test_random_against_model),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
