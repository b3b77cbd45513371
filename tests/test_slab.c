/* test_slab.c -- the size-classed allocator: every size up to SLAB_MAX
 * and beyond, objects that never overlap, reuse of what is freed, pages
 * given back once blocks empty, and a random mix checked against a copy. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <cmocka.h>

#include "slab.h"

static void test_sizes(void **state)
{
    (void)state;
    slab_t *s = slab_new();
    assert_non_null(s);
    assert_int_equal(slab_bytes(s), 0);
    enum { TOP = SLAB_MAX + 64 };
    unsigned char *obj[TOP + 1];
    for (size_t n = 1; n <= TOP; n++) {
        obj[n] = slab_alloc(s, n);
        assert_non_null(obj[n]);
        assert_int_equal((uintptr_t)obj[n] % 16, 0);
        memset(obj[n], (int)(n & 0xff), n);
    }
    /* Each object kept its bytes: none overlaps another. */
    for (size_t n = 1; n <= TOP; n++)
        for (size_t i = 0; i < n; i++)
            assert_int_equal(obj[n][i], n & 0xff);
    assert_true(slab_bytes(s) > 0);
    for (size_t n = 1; n <= TOP; n++)
        slab_free(s, obj[n], n);
    slab_free(s, NULL, 8);
    slab_destroy(&s);
    assert_null(s);
    slab_destroy(&s);
}

static void test_reuse(void **state)
{
    (void)state;
    slab_t *s = slab_new();
    void *a = slab_alloc(s, 150), *b = slab_alloc(s, 150);
    assert_ptr_not_equal(a, b);
    slab_free(s, a, 150);
    /* The same class (16-byte steps) takes the freed object first. */
    void *c = slab_alloc(s, 145);
    assert_ptr_equal(c, a);
    void *d = slab_alloc(s, 160);
    assert_ptr_not_equal(d, b);
    assert_ptr_not_equal(d, c);
    slab_free(s, b, 150);
    slab_free(s, c, 145);
    slab_free(s, d, 160);
    /* Larger sizes are malloc's: no block for them. */
    size_t before = slab_bytes(s);
    void *big = slab_alloc(s, SLAB_MAX + 1);
    assert_non_null(big);
    memset(big, 1, SLAB_MAX + 1);
    assert_int_equal(slab_bytes(s), before);
    slab_free(s, big, SLAB_MAX + 1);
    slab_destroy(&s);
}

/* A burst of a million jobs' worth of objects, then all freed: the pages
 * go back but for a few blocks, and the next burst is served again. */
static void test_pages_given_back(void **state)
{
    (void)state;
    slab_t *s = slab_new();
    enum { N = 100000, SIZE = 160 };
    void **v = malloc(N * sizeof *v);
    for (int round = 0; round < 2; round++) {
        for (size_t i = 0; i < N; i++) {
            v[i] = slab_alloc(s, SIZE);
            assert_non_null(v[i]);
            memcpy(v[i], &i, sizeof i);
        }
        size_t full = slab_bytes(s);
        assert_true(full >= (size_t)N * SIZE);
        assert_true(full <= (size_t)N * SIZE * 11 / 10 + (64 << 10));
        for (size_t i = 0; i < N; i++) {
            size_t k;
            memcpy(&k, v[i], sizeof k);
            assert_int_equal(k, i);
            slab_free(s, v[i], SIZE);
        }
        /* Oldest first, as jobs expire: blocks empty one after another. */
        assert_true(slab_bytes(s) <= (size_t)3 << 20);
    }
    free(v);
    slab_destroy(&s);
}

/* Random allocations and frees of mixed sizes, each object filled with a
 * pattern of its own and checked when it is freed. */
static void test_random_mix(void **state)
{
    (void)state;
    slab_t *s = slab_new();
    enum { SLOTS = 4096, STEPS = 200000 };
    unsigned char **obj = calloc(SLOTS, sizeof *obj);
    size_t *len = calloc(SLOTS, sizeof *len);
    uint64_t seed = 12345;
    for (size_t step = 0; step < STEPS; step++) {
        seed = seed * 6364136223846793005ull + 1442695040888963407ull;
        size_t i = (size_t)(seed >> 40) % SLOTS;
        if (obj[i]) {
            for (size_t k = 0; k < len[i]; k++)
                assert_int_equal(obj[i][k], (unsigned char)(i + k));
            slab_free(s, obj[i], len[i]);
            obj[i] = NULL;
        } else {
            len[i] = 1 + (size_t)(seed >> 20) % (SLAB_MAX + 100);
            obj[i] = slab_alloc(s, len[i]);
            assert_non_null(obj[i]);
            for (size_t k = 0; k < len[i]; k++)
                obj[i][k] = (unsigned char)(i + k);
        }
    }
    for (size_t i = 0; i < SLOTS; i++)
        if (obj[i])
            slab_free(s, obj[i], len[i]);
    free(obj);
    free(len);
    slab_destroy(&s);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_sizes),
        cmocka_unit_test(test_reuse),
        cmocka_unit_test(test_pages_given_back),
        cmocka_unit_test(test_random_mix),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
