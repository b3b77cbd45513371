/* test_queue.c -- priority levels and FIFO order within each, removal from
 * the middle, front pushes for returned jobs, the worker list, the
 * dispatch wait histogram. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <cmocka.h>

#include "queue.h"

static job_t *s_job(uint64_t id, int pri)
{
    msg_job_t spec = {.task = {"t", 1}, .pri = pri};
    job_t *j = job_new(&spec, id);
    assert_non_null(j);
    return j;
}

static void test_priority_then_fifo(void **state)
{
    (void)state;
    queue_t *q = queue_new("default", 7);
    assert_non_null(q);
    assert_string_equal(q->name, "default");
    assert_null(queue_pop(q));
    /* ids in submit order; priorities mixed, including both extremes. */
    int pris[] = {0, 5, -3, 5, 0, 127, -128, 5, 0};
    enum { N = sizeof pris / sizeof pris[0] };
    job_t *jobs[N];
    for (int i = 0; i < N; i++) {
        jobs[i] = s_job((uint64_t)i + 1, pris[i]);
        queue_push(q, jobs[i]);
    }
    assert_int_equal(q->depth, N);
    uint64_t want[] = {6, 2, 4, 8, 1, 5, 9, 3, 7};
    for (int i = 0; i < N; i++) {
        assert_ptr_equal(queue_peek(q), queue_peek(q));
        job_t *j = queue_pop(q);
        assert_non_null(j);
        assert_int_equal(j->id, want[i]);
    }
    assert_int_equal(q->depth, 0);
    assert_null(queue_peek(q));
    for (int i = 0; i < N; i++)
        job_free(&jobs[i]);
    queue_destroy(&q);
    assert_null(q);
    queue_destroy(&q);
}

static void test_remove_and_front(void **state)
{
    (void)state;
    queue_t *q = queue_new("q", 1);
    job_t *a = s_job(1, 0), *b = s_job(2, 0), *c = s_job(3, 0), *d = s_job(4, 9);
    queue_push(q, a);
    queue_push(q, b);
    queue_push(q, c);
    queue_remove(q, b); /* from the middle */
    assert_int_equal(q->depth, 2);
    queue_push_front(q, b); /* came back: before the others of its level */
    queue_push(q, d);
    queue_remove(q, d); /* the only one of its level: the level empties */
    assert_int_equal(queue_pop(q)->id, 2);
    assert_int_equal(queue_pop(q)->id, 1);
    assert_int_equal(queue_pop(q)->id, 3);
    assert_null(queue_pop(q));
    job_free(&a);
    job_free(&b);
    job_free(&c);
    job_free(&d);
    queue_destroy(&q);
}

static void test_workers(void **state)
{
    (void)state;
    queue_t *q = queue_new("q", 1);
    struct peer *w[10];
    for (int i = 0; i < 10; i++) {
        w[i] = (struct peer *)(uintptr_t)(0x1000 + i * 16);
        assert_int_equal(queue_add_worker(q, w[i]), 0);
    }
    assert_int_equal(q->nworkers, 10);
    q->rr = 5;
    queue_remove_worker(q, w[2]); /* before the round-robin point: it moves back */
    assert_int_equal(q->nworkers, 9);
    assert_int_equal(q->rr, 4);
    assert_ptr_equal(q->workers[q->rr], w[5]);
    queue_remove_worker(q, w[2]); /* not there: nothing happens */
    assert_int_equal(q->nworkers, 9);
    for (int i = 0; i < 10; i++)
        queue_remove_worker(q, w[i]);
    assert_int_equal(q->nworkers, 0);
    queue_destroy(&q);
}

static void test_wait_histogram(void **state)
{
    (void)state;
    queue_t *q = queue_new("q", 1);
    for (int i = 1; i < QUEUE_WAIT_BOUNDS; i++)
        assert_true(queue_wait_le[i] > queue_wait_le[i - 1]);
    queue_note_wait(q, 0);                          /* first bucket */
    queue_note_wait(q, queue_wait_le[0]);           /* a bound counts under it */
    queue_note_wait(q, queue_wait_le[0] + 1);       /* the next one */
    queue_note_wait(q, queue_wait_le[5]);
    queue_note_wait(q, queue_wait_le[QUEUE_WAIT_BOUNDS - 1] + 1); /* past every bound */
    assert_int_equal(q->wait[0], 2);
    assert_int_equal(q->wait[1], 1);
    assert_int_equal(q->wait[5], 1);
    assert_int_equal(q->wait[QUEUE_WAIT_BOUNDS], 1);
    uint64_t sum = 0;
    for (int i = 0; i <= QUEUE_WAIT_BOUNDS; i++)
        sum += q->wait[i];
    assert_int_equal(sum, 5);
    assert_int_equal(q->dispatched, 5);
    assert_int_equal(q->wait_us, 2 * queue_wait_le[0] + 1 + queue_wait_le[5] +
                                     queue_wait_le[QUEUE_WAIT_BOUNDS - 1] + 1);
    queue_destroy(&q);
}

/* The recent rate counts what was done in the last QUEUE_RATE_SECS seconds
 * of samples, not since start. */
static void test_done_rate(void **state)
{
    (void)state;
    queue_t *q = queue_new("q", 1);
    uint64_t sec = 1000;
    queue_sample_done(q, sec);
    q->done = 50;                                   /* a young queue: all of it */
    assert_int_equal(queue_done_recent(q, sec), 50);
    for (int i = 0; i < QUEUE_RATE_SECS; i++) {     /* 5 a second for a while */
        queue_sample_done(q, ++sec);
        q->done += 5;
    }
    assert_int_equal(queue_done_recent(q, sec), 5 * QUEUE_RATE_SECS);
    for (int i = 0; i < QUEUE_RATE_SECS; i++)       /* then nothing */
        queue_sample_done(q, ++sec);
    assert_int_equal(queue_done_recent(q, sec), 0);
    queue_destroy(&q);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_priority_then_fifo),
        cmocka_unit_test(test_remove_and_front),
        cmocka_unit_test(test_workers),
        cmocka_unit_test(test_wait_histogram),
        cmocka_unit_test(test_done_rate),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
