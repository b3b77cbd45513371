/* test_jbuf.c -- records waiting to be written: items of one type and one
 * head grouped into one record, sealed by anything else, split at
 * JBUF_GROUP_MAX; what the buffer grows by adds up to what it holds; a
 * partial write leaves the rest. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <cmocka.h>

#include "jbuf.h"

/* What the buffer holds: its records, their items. */
typedef struct held {
    int records, items;
    uint8_t type[64];
    size_t plen[64];
    uint64_t ids[16384];
    uint64_t times[16384];     /* DISPATCH: t_dispatched of each item */
} held_t;

static int s_item(void *ctx, const jrec_t *rec)
{
    held_t *h = ctx;
    assert_true(h->items < 16384);
    h->times[h->items] = rec->t_dispatched;
    h->ids[h->items++] = rec->id;
    return 0;
}

static int s_intact(void *ctx, size_t off, uint8_t type, const uint8_t *payload, size_t len)
{
    held_t *h = ctx;
    char err[160];
    (void)off;
    assert_true(h->records < 64);
    h->type[h->records] = type;
    h->plen[h->records++] = len;
    assert_int_equal(jrec_decode(type, payload, len, s_item, h, err, sizeof err), 0);
    return 0;
}

static void s_damaged(void *ctx, size_t off, size_t len, int type, const char *why)
{
    (void)ctx;
    (void)type;
    fail_msg("damaged at %zu (%zu bytes): %s", off, len, why);
}

static held_t *s_held(jbuf_t *b)
{
    static held_t h;
    memset(&h, 0, sizeof h);
    size_t len;
    const uint8_t *data = jbuf_data(b, &len);
    assert_int_equal(len, jbuf_len(b));
    assert_int_equal(jrec_scan(data, len, s_intact, s_damaged, &h), len);
    return &h;
}

static jrec_t s_lease(uint64_t id, uint64_t t)
{
    return (jrec_t){.type = JREC_DISPATCH, .id = id, .attempt = 1, .t_dispatched = t};
}

static void test_grouped_and_sealed(void **state)
{
    (void)state;
    jbuf_t *b = jbuf_new();
    assert_non_null(b);
    size_t len;
    jbuf_data(b, &len);
    assert_int_equal(len, 0);
    size_t grown = 0;
    for (uint64_t id = 1; id <= 3; id++) {
        jrec_t r = s_lease(id, 5);
        grown += jbuf_append(b, &r);
    }
    assert_int_equal(grown, JREC_HEADER_LEN + 8 + 3 * 10); /* one header, one head */
    jrec_t other_time = s_lease(4, 6), cancel = {.type = JREC_CANCEL, .id = 4};
    jrec_t after = s_lease(5, 6);
    grown += jbuf_append(b, &other_time);   /* another head: another record */
    grown += jbuf_append(b, &cancel);       /* another type */
    grown += jbuf_append(b, &after);        /* same head as two back: a new record */
    assert_int_equal(jbuf_len(b), grown);
    held_t *h = s_held(b);
    assert_int_equal(h->records, 4);
    uint8_t types[] = {JREC_DISPATCH, JREC_DISPATCH, JREC_CANCEL, JREC_DISPATCH};
    for (int i = 0; i < 4; i++)
        assert_int_equal(h->type[i], types[i]);
    assert_int_equal(h->items, 6);
    for (int i = 0; i < 6; i++)
        assert_int_equal(h->ids[i], i == 4 ? 4 : i < 4 ? (uint64_t)i + 1 : 5);
    assert_int_equal(h->times[2], 5);
    assert_int_equal(h->times[3], 6);
    /* Sealed by jbuf_data: what comes next is a record of its own. */
    jrec_t more = s_lease(6, 6);
    size_t before = jbuf_len(b);
    assert_int_equal(jbuf_append(b, &more), JREC_HEADER_LEN + 8 + 10);
    assert_int_equal(jbuf_len(b), before + JREC_HEADER_LEN + 8 + 10);
    assert_int_equal(s_held(b)->records, 5);
    jbuf_destroy(&b);
    assert_null(b);
    jbuf_destroy(&b);
}

/* Heads of every length a FINISH's takes, differing in one byte only:
 * never grouped; the same bytes: grouped. */
static void test_heads_compared_whole(void **state)
{
    (void)state;
    char wk[2][QJ_MAX_NAME];
    memset(wk, 'w', sizeof wk);
    for (uint32_t len = 0; len <= 40; len++)
        for (uint32_t at = 0; at < len + 10; at++) {
            jbuf_t *b = jbuf_new();
            memset(wk[1], 'w', sizeof wk[1]);
            if (at < len)
                wk[1][at] = 'x';            /* the worker's name differs */
            uint64_t final_us = 1000;     /* or its byte at - len differs */
            if (at >= len && at < len + 8)
                final_us += 1ull << (8 * (at - len));
            jrec_t f[3];
            for (int i = 0; i < 3; i++)
                f[i] = (jrec_t){.type = JREC_FINISH, .id = (uint64_t)i + 1, .attempt = 1,
                                .final_us = i == 1 ? final_us : 1000,
                                .wk = {wk[i == 1], len}};
            for (int i = 0; i < 3; i++)
                assert_true(jbuf_append(b, &f[i]) > 0);
            held_t *h = s_held(b);
            bool differs = at < len + 8;    /* (the time is 8 bytes) */
            assert_int_equal(h->items, 3);
            assert_int_equal(h->records, differs ? 3 : 1);
            jbuf_destroy(&b);
        }
}

static void test_split_at_group_max(void **state)
{
    (void)state;
    jbuf_t *b = jbuf_new();
    int n = (int)(JBUF_GROUP_MAX / 10) * 2 + 7;
    for (int i = 0; i < n; i++) {
        jrec_t r = s_lease((uint64_t)i + 1, 9);
        assert_true(jbuf_append(b, &r) > 0);
    }
    held_t *h = s_held(b);
    assert_int_equal(h->items, n);
    assert_int_equal(h->records, 3);
    for (int i = 0; i < h->records; i++)
        assert_true(h->plen[i] <= JBUF_GROUP_MAX);
    for (int i = 0; i < n; i++)
        assert_int_equal(h->ids[i], (uint64_t)i + 1);
    jbuf_destroy(&b);
    /* An item bigger than a group has a record of its own; the next one
     * of the same head starts another. */
    b = jbuf_new();
    static char args[QJ_MAX_ARGS];
    jrec_t big = {.type = JREC_JOB, .id = 1, .queue = {"q", 1}, .task = {"t", 1},
                  .args = {args, sizeof args}};
    jrec_t small = big;
    small.id = 2;
    small.args = (msg_bytes_t){args, 3};
    assert_true(jbuf_append(b, &big) > sizeof args);
    assert_true(jbuf_append(b, &small) > JREC_HEADER_LEN);
    h = s_held(b);
    assert_int_equal(h->records, 2);
    assert_int_equal(h->items, 2);
    jbuf_destroy(&b);
}

static void test_refused_items_leave_nothing(void **state)
{
    (void)state;
    jbuf_t *b = jbuf_new();
    jrec_t r = s_lease(1, 5);
    size_t one = jbuf_append(b, &r);
    jrec_t bad = {.type = JREC_JOB, .id = 2, .queue = {"q", 1}}; /* no task */
    jrec_t unknown = {.type = 99, .id = 3};
    assert_int_equal(jbuf_append(b, &bad), 0);
    assert_int_equal(jbuf_append(b, &unknown), 0);
    assert_int_equal(jbuf_len(b), one);
    r.id = 4;
    assert_int_equal(jbuf_append(b, &r), 10); /* still open: joins */
    held_t *h = s_held(b);
    assert_int_equal(h->records, 1);
    assert_int_equal(h->items, 2);
    jbuf_destroy(&b);
}

static void test_partial_write_keeps_the_rest(void **state)
{
    (void)state;
    jbuf_t *b = jbuf_new();
    for (uint64_t id = 1; id <= 4; id++) {
        jrec_t r = s_lease(id, id <= 2 ? 5 : 6);
        jbuf_append(b, &r);
    }
    size_t len;
    const uint8_t *data = jbuf_data(b, &len);
    size_t first = JREC_HEADER_LEN + 8 + 2 * 10;
    uint8_t copy[256];
    memcpy(copy, data, len);
    jbuf_consume(b, first - 5);          /* a write(2) that took part of it */
    assert_int_equal(jbuf_len(b), len - first + 5);
    data = jbuf_data(b, &len);
    assert_memory_equal(data, copy + first - 5, len);
    jbuf_consume(b, 5);
    jrec_t r = s_lease(5, 6);            /* after the seal: a record of its own */
    jbuf_append(b, &r);
    held_t *h = s_held(b);
    assert_int_equal(h->records, 2);
    assert_int_equal(h->items, 3);
    assert_int_equal(h->ids[2], 5);
    jbuf_data(b, &len);
    jbuf_consume(b, len);
    assert_int_equal(jbuf_len(b), 0);
    jbuf_destroy(&b);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_grouped_and_sealed),
        cmocka_unit_test(test_heads_compared_whole),
        cmocka_unit_test(test_split_at_group_max),
        cmocka_unit_test(test_refused_items_leave_nothing),
        cmocka_unit_test(test_partial_write_keeps_the_rest),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
