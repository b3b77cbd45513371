/* test_client_map.c -- the client's uint64 -> pointer hash table:
 * put/get/del, growth, deletion inside probe runs, iteration. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdlib.h>

#include "client_map.h"

static void *s_val(uint64_t k)
{
    return (void *)(uintptr_t)(k * 8 + 8);
}

static void test_empty(void **state)
{
    (void)state;
    cmap_t m;
    cmap_init(&m);
    assert_null(cmap_get(&m, 1));
    assert_null(cmap_del(&m, 1));
    size_t pos = 0;
    assert_null(cmap_next(&m, &pos, NULL));
    cmap_clear(&m);
}

static void test_put_get_replace(void **state)
{
    (void)state;
    cmap_t m;
    cmap_init(&m);
    assert_int_equal(cmap_put(&m, 7, s_val(7)), 0);
    assert_ptr_equal(cmap_get(&m, 7), s_val(7));
    assert_int_equal(cmap_put(&m, 7, s_val(9)), 0);
    assert_int_equal(m.count, 1);
    assert_ptr_equal(cmap_get(&m, 7), s_val(9));
    assert_null(cmap_get(&m, 8));
    assert_null(cmap_get(&m, 0));
    assert_ptr_equal(cmap_del(&m, 7), s_val(9));
    assert_null(cmap_get(&m, 7));
    assert_int_equal(m.count, 0);
    cmap_clear(&m);
}

/* Many keys, grown through several sizes, deleted in an order that
 * breaks probe runs (every third key), then the rest: every lookup must
 * still find exactly the keys that remain. */
static void test_many_with_deletes(void **state)
{
    (void)state;
    enum { N = 50000 };
    cmap_t m;
    cmap_init(&m);
    /* sequential ids and a spread-out set, as ids and refs are */
    for (uint64_t k = 1; k <= N; k++)
        assert_int_equal(cmap_put(&m, k * (k % 2 ? 1 : 4096), s_val(k)), 0);
    assert_int_equal(m.count, N);
    assert_true(m.cap >= 2 * N);
    for (uint64_t k = 1; k <= N; k += 3)
        assert_ptr_equal(cmap_del(&m, k * (k % 2 ? 1 : 4096)), s_val(k));
    for (uint64_t k = 1; k <= N; k++) {
        void *v = cmap_get(&m, k * (k % 2 ? 1 : 4096));
        if ((k - 1) % 3 == 0)
            assert_null(v);
        else
            assert_ptr_equal(v, s_val(k));
    }
    size_t pos = 0, seen = 0;
    uint64_t key;
    while (cmap_next(&m, &pos, &key))
        seen++;
    assert_int_equal(seen, m.count);
    for (uint64_t k = 1; k <= N; k++)
        cmap_del(&m, k * (k % 2 ? 1 : 4096));
    assert_int_equal(m.count, 0);
    for (size_t i = 0; i < m.cap; i++)
        assert_int_equal(m.slots[i].key, 0);
    cmap_clear(&m);
}

/* Keys that collide on purpose: multiples of the table size land in few
 * home slots, so deletion has to shift entries that wrap around. */
static void test_wraparound_runs(void **state)
{
    (void)state;
    cmap_t m;
    cmap_init(&m);
    uint64_t keys[8];
    for (int round = 0; round < 200; round++) {
        for (int i = 0; i < 8; i++) {
            keys[i] = (uint64_t)(round * 8 + i) * 16 + 1;
            assert_int_equal(cmap_put(&m, keys[i], s_val(keys[i])), 0);
        }
        for (int i = 7; i >= 0; i -= 2)
            assert_ptr_equal(cmap_del(&m, keys[i]), s_val(keys[i]));
        for (int i = 0; i < 8; i++)
            assert_ptr_equal(cmap_get(&m, keys[i]), i % 2 ? NULL : s_val(keys[i]));
        for (int i = 0; i < 8; i += 2)
            assert_non_null(cmap_del(&m, keys[i]));
    }
    assert_int_equal(m.count, 0);
    cmap_clear(&m);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_empty),
        cmocka_unit_test(test_put_get_replace),
        cmocka_unit_test(test_many_with_deletes),
        cmocka_unit_test(test_wraparound_runs),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
