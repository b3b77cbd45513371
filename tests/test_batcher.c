/* test_batcher.c -- the client's adaptive batch size (client/batcher.c):
 * nothing known means no cut; long jobs go one per message, tiny ones in
 * big messages; the round trip is measured per SUBMIT; a figure that moves
 * moves k. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <cmocka.h>

#include "batcher.h"
#include "qjlimits.h"

/* A SUBMIT numbered seq that took rtt_us to be answered. */
static void s_round_trip(batcher_t *b, uint64_t seq, uint64_t rtt_us)
{
    batcher_sent(b, seq, 10, 1000000);
    batcher_answered(b, seq, 1000000 + rtt_us);
}

static void test_nothing_known(void **state)
{
    (void)state;
    batcher_t b;
    memset(&b, 0, sizeof b);
    assert_int_equal(batcher_target(&b), QJ_MAX_BATCH);
    /* One figure alone is not enough. */
    s_round_trip(&b, 1, 100);
    assert_int_equal(batcher_target(&b), QJ_MAX_BATCH);
    memset(&b, 0, sizeof b);
    batcher_job(&b, 5000);
    assert_int_equal(batcher_target(&b), QJ_MAX_BATCH);
}

static void test_long_jobs_one_per_message(void **state)
{
    (void)state;
    batcher_t b;
    memset(&b, 0, sizeof b);
    s_round_trip(&b, 1, 200);
    batcher_job(&b, 50000);                      /* 50 ms of compute */
    assert_int_equal(batcher_target(&b), 1);
}

static void test_k_keeps_communication_under_its_share(void **state)
{
    (void)state;
    batcher_t b;
    memset(&b, 0, sizeof b);
    s_round_trip(&b, 1, 200);
    batcher_job(&b, 100);                        /* 200 / (0.1 x 100) = 20 */
    assert_int_equal(batcher_target(&b), 20);
    memset(&b, 0, sizeof b);
    s_round_trip(&b, 1, 210);
    batcher_job(&b, 100);                        /* 21, rounded up: 21 */
    assert_int_equal(batcher_target(&b), 21);
    /* Tiny jobs: as many as a message takes. */
    memset(&b, 0, sizeof b);
    s_round_trip(&b, 1, 500);
    batcher_job(&b, 0);
    assert_int_equal(batcher_target(&b), QJ_MAX_BATCH);
}

static void test_figures_follow_the_workload(void **state)
{
    (void)state;
    batcher_t b;
    memset(&b, 0, sizeof b);
    s_round_trip(&b, 1, 200);
    batcher_job(&b, 20000);
    assert_int_equal(batcher_target(&b), 1);
    /* The jobs become tiny: within a hundred-odd results k is large. */
    for (int i = 0; i < 128; i++)
        batcher_job(&b, 1);
    assert_true(batcher_target(&b) >= 1000);
    /* And long again. */
    for (int i = 0; i < 64; i++)
        batcher_job(&b, 20000);
    assert_int_equal(batcher_target(&b), 1);
}

static void test_round_trips_by_submit(void **state)
{
    (void)state;
    batcher_t b;
    memset(&b, 0, sizeof b);
    batcher_job(&b, 100);
    batcher_sent(&b, 1, 5, 1000);
    batcher_sent(&b, 2, 7, 1100);
    assert_int_equal(b.messages, 2);
    assert_int_equal(b.jobs, 12);
    batcher_answered(&b, 1, 1300);               /* 300 us */
    assert_int_equal(batcher_target(&b), 30);
    batcher_answered(&b, 1, 99999);              /* answered twice: no sample */
    assert_int_equal(b.msg_samples, 1);
    batcher_answered(&b, 0, 99999);              /* no SUBMIT (ERROR without one) */
    assert_int_equal(b.msg_samples, 1);
    /* A SUBMIT whose slot a later one took gives no sample. */
    batcher_sent(&b, 3, 1, 2000);
    batcher_sent(&b, 3 + BATCHER_RING, 1, 2100);
    batcher_answered(&b, 3, 2200);
    assert_int_equal(b.msg_samples, 1);
    batcher_answered(&b, 3 + BATCHER_RING, 2200);
    assert_int_equal(b.msg_samples, 2);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_nothing_known),
        cmocka_unit_test(test_long_jobs_one_per_message),
        cmocka_unit_test(test_k_keeps_communication_under_its_share),
        cmocka_unit_test(test_figures_follow_the_workload),
        cmocka_unit_test(test_round_trips_by_submit),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
