/* test_wjobs.c -- a worker process's jobs: running, batching of results,
 * credit (with slots lent by jobs waiting for sub-jobs), cancel, timeout,
 * progress.  A small simulated broker hands out jobs only within the
 * credit granted, and checks the credit invariant of wjobs.h. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "builtin.h"
#include "clock.h"
#include "registry.h"
#include "scheduler.h"
#include "wjobs.h"

#define MAX_SEEN 64

/* What the set sent, as the broker would see it. */
typedef struct seen {
    long credit;                 /* simulated broker's credit for us */
    uint64_t next_id;
    int results_msgs, credit_msgs, progress_msgs;
    int nresults;                /* all seen; the first MAX_SEEN kept below */
    uint64_t ids[MAX_SEEN];
    int st[MAX_SEEN];
    char err[MAX_SEEN][200];
    uint64_t prog_done, prog_total;
    char prog_note[64];
} seen_t;

static wjobs_t *g_set;
static sched_t *g_sched;
static coro_t *g_parked[8];
static int g_nparked;

static int s_send(void *arg, const msg_t *m)
{
    seen_t *s = arg;
    switch (m->cmd) {
    case MSG_RESULTS:
        s->results_msgs++;
        for (uint32_t i = 0; i < m->nresults; i++, s->nresults++) {
            const msg_result_t *r = &m->results[i];
            assert_int_equal(r->worker.len, 5);
            assert_true(r->t.started > 0 && r->t.finished >= r->t.started);
            if (s->nresults >= MAX_SEEN)
                continue;   /* counted, not kept */
            s->ids[s->nresults] = r->id;
            s->st[s->nresults] = r->st;
            snprintf(s->err[s->nresults], sizeof s->err[0], "%.*s", (int)r->error.len,
                     r->error.ptr ? r->error.ptr : "");
        }
        s->credit += m->credit;
        break;
    case MSG_CREDIT:
        s->credit_msgs++;
        s->credit += m->credit;
        break;
    case MSG_PROGRESS:
        s->progress_msgs++;
        s->prog_done = m->done;
        s->prog_total = m->total;
        snprintf(s->prog_note, sizeof s->prog_note, "%.*s", (int)m->note.len,
                 m->note.ptr ? m->note.ptr : "");
        break;
    default:
        fail_msg("unexpected %s", msg_cmd_name(m->cmd));
    }
    return 0;
}

/* The broker sends one job, which it may only do with credit left. */
static uint64_t s_dispatch(seen_t *s, const char *task, uint32_t timeout_ms)
{
    assert_true(s->credit > 0);
    s->credit--;
    msg_job_t mj = {0};
    mj.id = ++s->next_id;
    mj.task = (msg_bytes_t){task, (uint32_t)strlen(task)};
    mj.queue = (msg_bytes_t){"default", 7};
    mj.attempt = 1;
    mj.timeout_ms = timeout_ms;
    assert_int_equal(wjobs_take(g_set, &mj), 0);
    return mj.id;
}

/* One turn of the host's loop (wproc.c). */
static void s_turn(seen_t *s)
{
    wjobs_run(g_set);
    wjobs_flush_due(g_set, s_send, s);
}

/* wjobs.h: broker's credit + jobs held = coros + prefetch + jobs lent. */
static void s_check_invariant(const seen_t *s, long slots, long lent)
{
    assert_int_equal(s->credit + (long)wjobs_held(g_set), slots + lent);
}

/* Tasks. */
static int t_wait(qj_ctx *ctx)
{
    /* What qj_await does inside a task: lend the slot, park until woken. */
    (void)ctx;
    wjobs_block(g_set);
    g_sched = sched_current();
    g_parked[g_nparked++] = coro_current();
    sched_park(-1);
    wjobs_unblock(g_set);
    return qj_return_int(ctx, 1);
}

static int t_sleepy(qj_ctx *ctx)
{
    return qj_sleep(ctx, 3600 * 1000);
}

static int t_prog(qj_ctx *ctx)
{
    qj_progress(ctx, 1, 3, "one");
    qj_progress(ctx, 2, 3, "two");
    return 0;
}

static int t_current(qj_ctx *ctx)
{
    return qj_return_int(ctx, (int64_t)(wjobs_current(g_set) == qj_ctx_job_id(ctx)));
}

/* The set's clock (wjobs_set_clock): time moves only when a task says,
 * so that what depends on the jobs' length does not depend on the
 * machine's speed. */
static uint64_t g_now_us = 1700000000000000ull;

static uint64_t s_clock(void *arg)
{
    (void)arg;
    return g_now_us;
}

/* Jobs that last 1 µs, 800 µs and 5 ms. */
static int t_us1(qj_ctx *ctx)
{
    (void)ctx;
    g_now_us += 1;
    return 0;
}

static int t_us800(qj_ctx *ctx)
{
    (void)ctx;
    g_now_us += 800;
    return 0;
}

static int t_ms5(qj_ctx *ctx)
{
    (void)ctx;
    g_now_us += 5000;
    return 0;
}

/* The supervisor's watch of test_watch_follows_the_running_job. */
static super_watch_t g_watch;

/* Fails unless the watch shows this job, with a deadline, exactly when it
 * has a timeout. */
static int t_watched(qj_ctx *ctx)
{
    uint64_t id = atomic_load(&g_watch.job_id), deadline = atomic_load(&g_watch.deadline_ms);
    bool timed = qj_ctx_job_id(ctx) % 2 == 0;   /* the test gives even ids a timeout */
    if (timed ? id != qj_ctx_job_id(ctx) || deadline == 0 : id != 0 || deadline != 0)
        return qj_fail(ctx, "watch shows job %llu, deadline %llu", (unsigned long long)id,
                       (unsigned long long)deadline);
    return 0;
}

static qj_registry *g_reg;

/* A set with adaptive prefetch up to prefetch_max (0: fixed), taking at
 * most max_jobs (0: no limit). */
static void s_new_set_opts(unsigned coros, unsigned prefetch, unsigned prefetch_max,
                           uint64_t max_jobs, seen_t *s)
{
    wjobs_opts_t o = {coros, prefetch, 0, "w:1/0", g_reg, NULL, prefetch_max, max_jobs, NULL};
    g_set = wjobs_new(&o);
    assert_non_null(g_set);
    wjobs_set_clock(g_set, s_clock, NULL);
    memset(s, 0, sizeof *s);
    s->credit = wjobs_hello_credit(g_set);
    g_nparked = 0;
}

static void s_new_set(unsigned coros, unsigned prefetch, seen_t *s)
{
    s_new_set_opts(coros, prefetch, 0, 0, s);
    assert_int_equal(s->credit, coros + prefetch);
}

static int s_setup(void **state)
{
    (void)state;
    g_reg = qj_registry_new();
    if (!g_reg || builtin_register(g_reg) != 0 || qj_register(g_reg, "wait", t_wait, NULL) ||
        qj_register(g_reg, "sleepy", t_sleepy, NULL) || qj_register(g_reg, "prog", t_prog, NULL) ||
        qj_register(g_reg, "current", t_current, NULL) || qj_register(g_reg, "us1", t_us1, NULL) ||
        qj_register(g_reg, "us800", t_us800, NULL) || qj_register(g_reg, "ms5", t_ms5, NULL) ||
        qj_register(g_reg, "watched", t_watched, NULL))
        return -1;
    return 0;
}

static int s_teardown(void **state)
{
    (void)state;
    wjobs_destroy(&g_set);
    qj_registry_destroy(&g_reg);
    return 0;
}

static void test_batched_results(void **state)
{
    (void)state;
    seen_t s;
    s_new_set(2, 8, &s);
    for (int i = 0; i < 10; i++)
        s_dispatch(&s, "echo", 0);
    assert_int_equal(s.credit, 0);
    s_turn(&s);
    /* All ten finished in one turn: one message, ten credits back. */
    assert_int_equal(s.results_msgs, 1);
    assert_int_equal(s.nresults, 10);
    assert_int_equal(s.credit_msgs, 0);
    assert_int_equal(s.credit, 10);
    for (int i = 0; i < 10; i++)
        assert_int_equal(s.st[i], MSG_ST_OK);
    assert_int_equal(wjobs_finished(g_set), 10);
    s_check_invariant(&s, 10, 0);
    wjobs_destroy(&g_set);
}

static void test_unknown_task(void **state)
{
    (void)state;
    seen_t s;
    s_new_set(1, 0, &s);
    s_dispatch(&s, "nosuch", 0);
    s_turn(&s);
    assert_int_equal(s.nresults, 1);
    assert_int_equal(s.st[0], MSG_ST_ERROR);
    assert_string_equal(s.err[0], "unknown task 'nosuch' (this worker has: current, echo, fail, "
                                  "ms5, noop, pi, pi_split, prog, sleep, sleepy, us1, us800, wait, "
                                  "watched)");
    s_check_invariant(&s, 1, 0);
    wjobs_destroy(&g_set);
}

static void test_lent_slots(void **state)
{
    (void)state;
    seen_t s;
    s_new_set(1, 0, &s);
    /* One slot.  A job that waits lends it: the broker gets a credit and
     * the next job runs meanwhile; twice over, then a plain job. */
    s_dispatch(&s, "wait", 0);
    s_turn(&s);
    assert_int_equal(g_nparked, 1);
    assert_int_equal(s.credit_msgs, 1);
    s_check_invariant(&s, 1, 1);
    s_dispatch(&s, "wait", 0);
    s_turn(&s);
    assert_int_equal(g_nparked, 2);
    s_check_invariant(&s, 1, 2);
    s_dispatch(&s, "echo", 0);
    s_turn(&s);
    assert_int_equal(s.nresults, 1);
    assert_int_equal(s.ids[0], 3);
    s_check_invariant(&s, 1, 2);

    /* Both stop waiting and finish: the slots come back, no credit is
     * granted twice. */
    sched_wake(g_sched, g_parked[0]);
    sched_wake(g_sched, g_parked[1]);
    s_turn(&s);
    assert_int_equal(s.nresults, 3);
    assert_int_equal(s.st[1], MSG_ST_OK);
    assert_int_equal(s.st[2], MSG_ST_OK);
    assert_int_equal(wjobs_held(g_set), 0);
    s_check_invariant(&s, 1, 0);
    wjobs_destroy(&g_set);
}

static void test_owed_credit(void **state)
{
    (void)state;
    seen_t s;
    s_new_set(1, 0, &s);
    s_dispatch(&s, "wait", 0);
    s_turn(&s);
    s_dispatch(&s, "sleepy", 0);   /* takes the lent slot */
    s_turn(&s);
    s_check_invariant(&s, 1, 1);
    /* The waiting job resumes while the lent slot is still in use: two
     * jobs run on one slot for a while, and the credit is owed... */
    sched_wake(g_sched, g_parked[0]);
    s_turn(&s);
    assert_int_equal(s.nresults, 1);
    assert_int_equal(s.credit, 0);   /* its result returned no credit */
    s_check_invariant(&s, 1, 0);
    /* ... until the other finishes. */
    wjobs_cancel(g_set, 2);
    s_turn(&s);
    assert_int_equal(s.nresults, 2);
    assert_int_equal(s.st[1], MSG_ST_CANCELLED);
    assert_int_equal(s.credit, 1);
    s_check_invariant(&s, 1, 0);
    wjobs_destroy(&g_set);
}

static void test_cancel(void **state)
{
    (void)state;
    seen_t s;
    s_new_set(1, 1, &s);
    uint64_t running = s_dispatch(&s, "sleepy", 0);
    uint64_t waiting = s_dispatch(&s, "echo", 0);
    s_turn(&s);
    assert_int_equal(s.nresults, 0);
    wjobs_cancel(g_set, waiting);   /* not started: finishes at once */
    wjobs_cancel(g_set, 999);       /* not ours: ignored */
    s_turn(&s);
    assert_int_equal(s.nresults, 1);
    assert_int_equal(s.ids[0], waiting);
    assert_int_equal(s.st[0], MSG_ST_CANCELLED);
    wjobs_cancel(g_set, running);   /* asleep: woken, stops */
    s_turn(&s);
    assert_int_equal(s.nresults, 2);
    assert_int_equal(s.ids[1], running);
    assert_int_equal(s.st[1], MSG_ST_CANCELLED);
    s_check_invariant(&s, 2, 0);
    wjobs_destroy(&g_set);
}

static void test_timeout(void **state)
{
    (void)state;
    seen_t s;
    s_new_set(1, 0, &s);
    s_dispatch(&s, "sleepy", 5);
    s_turn(&s);
    for (int i = 0; i < 5000 && s.nresults == 0; i++) {
        usleep(1000);
        wjobs_timers(g_set, clock_mono_ms());
        s_turn(&s);
    }
    assert_int_equal(s.nresults, 1);
    assert_int_equal(s.st[0], MSG_ST_TIMEOUT);
    assert_non_null(strstr(s.err[0], "timeout"));
    s_check_invariant(&s, 1, 0);
    wjobs_destroy(&g_set);
}

static void test_progress(void **state)
{
    (void)state;
    seen_t s;
    s_new_set(1, 0, &s);
    s_dispatch(&s, "prog", 0);
    s_turn(&s);
    /* Two reports in one turn: only the latest is sent. */
    assert_int_equal(s.progress_msgs, 1);
    assert_int_equal(s.prog_done, 2);
    assert_int_equal(s.prog_total, 3);
    assert_string_equal(s.prog_note, "two");
    assert_int_equal(s.nresults, 1);
    wjobs_destroy(&g_set);
}

static void test_current(void **state)
{
    (void)state;
    seen_t s;
    s_new_set(3, 0, &s);
    for (int i = 0; i < 3; i++)
        s_dispatch(&s, "current", 0);
    assert_int_equal(wjobs_current(g_set), 0);   /* the host's stack: no job */
    s_turn(&s);
    assert_int_equal(s.nresults, 3);
    for (int i = 0; i < 3; i++)
        assert_int_equal(s.st[i], MSG_ST_OK);
    wjobs_destroy(&g_set);
}

static void test_hello_and_drain(void **state)
{
    (void)state;
    seen_t s;
    s_new_set(1, 2, &s);
    s_dispatch(&s, "sleepy", 0);
    s_dispatch(&s, "echo", 0);
    s_dispatch(&s, "echo", 0);
    wjobs_run(g_set);   /* the sleeper starts; the echoes wait */
    /* A new connection: the waiting jobs go back to the broker, and the
     * credit leaves room for the one still running. */
    assert_int_equal(wjobs_hello_credit(g_set), 2);
    s.credit = 2;
    assert_int_equal(wjobs_held(g_set), 1);
    s_check_invariant(&s, 3, 0);
    /* Draining: results go out, credit does not. */
    wjobs_set_draining(g_set);
    wjobs_cancel(g_set, 1);
    s_turn(&s);
    assert_int_equal(s.nresults, 1);
    assert_int_equal(s.credit, 2);
    assert_int_equal(s.credit_msgs, 0);
    wjobs_destroy(&g_set);
}

/* Results of a turn share a message, unless the turn runs long: then they
 * leave before a job that would make them wait WJOBS_HOLD_US starts. */
static void test_long_turn_sends_results_as_it_goes(void **state)
{
    (void)state;
    seen_t s;
    s_new_set(1, 8, &s);
    for (int i = 0; i < 6; i++)
        s_dispatch(&s, "us800", 0);
    /* Waited 0 + 800, 800 + 800 after the first two; a third would make
     * the first wait 2400 us. */
    wjobs_run(g_set);
    assert_int_equal(wjobs_timers(g_set, clock_mono_ms()), 0);   /* jobs can start now */
    wjobs_flush(g_set, s_send, &s);
    assert_int_equal(s.results_msgs, 1);
    assert_int_equal(s.nresults, 3);
    s_turn(&s);
    s_turn(&s);
    assert_int_equal(s.nresults, 6);
    assert_true(s.results_msgs >= 2);
    s_check_invariant(&s, 9, 0);
    wjobs_destroy(&g_set);

    /* Jobs of 5 ms: each result leaves before the next job starts. */
    s_new_set(1, 1, &s);
    s_dispatch(&s, "ms5", 0);
    s_dispatch(&s, "ms5", 0);
    s_turn(&s);
    assert_int_equal(s.nresults, 1);
    s_turn(&s);
    assert_int_equal(s.nresults, 2);
    assert_int_equal(s.results_msgs, 2);
    wjobs_destroy(&g_set);
}

/* Results wait across turns while a job can start, and leave when the
 * process runs out of jobs to start, or when one more job would make them
 * wait WJOBS_HOLD_US (here: the host's poll took that long). */
static void test_results_wait_for_company(void **state)
{
    (void)state;
    seen_t s;
    s_new_set(1, 300, &s);
    for (int i = 0; i < 200; i++)
        s_dispatch(&s, "us1", 0);
    s_turn(&s);
    assert_int_equal(wjobs_held(g_set), 200 - 64);   /* a turn starts 64 per slot */
    assert_int_equal(wjobs_timers(g_set, clock_mono_ms()), 0);
    assert_int_equal(s.results_msgs, 0);
    s_turn(&s);
    s_turn(&s);
    assert_int_equal(s.results_msgs, 0);
    s_turn(&s);   /* the last 8, and then nothing to start */
    assert_int_equal(s.results_msgs, 1);
    assert_int_equal(s.nresults, 200);
    s_check_invariant(&s, 1 + 300, 0);

    for (int i = 0; i < 100; i++)
        s_dispatch(&s, "us1", 0);
    s_turn(&s);
    assert_int_equal(s.results_msgs, 1);
    g_now_us += WJOBS_HOLD_US;
    s_turn(&s);
    assert_int_equal(s.results_msgs, 2);
    assert_int_equal(s.nresults, 200 + 65);   /* the one that ran before the clock was read */
    s_turn(&s);
    assert_int_equal(s.results_msgs, 3);
    assert_int_equal(s.nresults, 300);
    s_check_invariant(&s, 1 + 300, 0);
    wjobs_destroy(&g_set);
}

/* Adaptive prefetch: none until a job's length is known; tiny jobs take
 * it to its most, long ones back to its least, the credit following. */
static void test_adaptive_prefetch(void **state)
{
    (void)state;
    seen_t s;
    s_new_set_opts(1, 0, 64, 0, &s);
    assert_int_equal(s.credit, 1);
    assert_int_equal(wjobs_prefetch(g_set), 0);
    s_dispatch(&s, "us1", 0);
    s_turn(&s);
    assert_int_equal(wjobs_prefetch(g_set), 64);
    s_check_invariant(&s, 1 + 64, 0);
    /* 64 tiny jobs at once: one turn, one message, the credit back. */
    for (int i = 0; i < 64; i++)
        s_dispatch(&s, "us1", 0);
    s_turn(&s);
    assert_int_equal(s.results_msgs, 2);
    s_check_invariant(&s, 1 + 64, 0);
    /* Jobs of 5 ms: more than WJOBS_HOARD_US, so no prefetch; the credit
     * the broker holds drains as they come, none is granted meanwhile. */
    for (int i = 0; i < 200 && (wjobs_prefetch(g_set) > 0 || s.credit > 1); i++) {
        s_dispatch(&s, "ms5", 0);
        s_turn(&s);
    }
    assert_int_equal(wjobs_prefetch(g_set), 0);
    s_check_invariant(&s, 1, 0);
    wjobs_destroy(&g_set);
}

/* A process to be recycled after N jobs takes N, whatever its prefetch. */
static void test_max_jobs_caps_credit(void **state)
{
    (void)state;
    seen_t s;
    s_new_set_opts(2, 8, 0, 5, &s);
    assert_int_equal(s.credit, 5);
    for (int i = 0; i < 5; i++)
        s_dispatch(&s, "us1", 0);
    s_turn(&s);
    assert_int_equal(s.nresults, 5);
    assert_int_equal(s.credit, 0);
    assert_int_equal(s.credit_msgs, 0);
    wjobs_destroy(&g_set);
}

/* Jobs run back to back in one turn (a runner goes straight on with the
 * next), each posted on the supervisor's watch while it runs if it has a
 * timeout, the watch clear otherwise and after; a turn starts at most 64
 * jobs per slot before the host gets to flush and poll. */
static void test_watch_follows_the_running_job(void **state)
{
    (void)state;
    seen_t s;
    memset(&g_watch, 0, sizeof g_watch);
    wjobs_opts_t o = {1, 99, 0, "w:1/0", g_reg, NULL, 0, 0, &g_watch};
    g_set = wjobs_new(&o);
    assert_non_null(g_set);
    wjobs_set_clock(g_set, s_clock, NULL);
    memset(&s, 0, sizeof s);
    s.credit = wjobs_hello_credit(g_set);
    for (int i = 0; i < 6; i++)
        s_dispatch(&s, "watched", s.next_id % 2 == 1 ? 60000 : 0);   /* ids 2, 4, 6 */
    s_turn(&s);
    assert_int_equal(s.results_msgs, 1);
    assert_int_equal(s.nresults, 6);
    for (int i = 0; i < 6; i++) {
        assert_int_equal(s.st[i], MSG_ST_OK);
        assert_string_equal(s.err[i], "");
    }
    assert_int_equal(atomic_load(&g_watch.job_id), 0);
    assert_int_equal(atomic_load(&g_watch.deadline_ms), 0);

    for (int i = 0; i < 51; i++)
        s_dispatch(&s, "us1", 0);
    assert_int_equal(s_dispatch(&s, "watched", 60000), 58);   /* goes straight on after a us1 */
    for (int i = 0; i < 48; i++)
        s_dispatch(&s, "us1", 0);
    wjobs_run(g_set);
    assert_int_equal(wjobs_held(g_set), 100 - 64);
    assert_int_equal(wjobs_timers(g_set, clock_mono_ms()), 0);   /* the rest can start now */
    wjobs_flush(g_set, s_send, &s);
    assert_int_equal(s.st[57], MSG_ST_OK);
    assert_string_equal(s.err[57], "");
    s_turn(&s);
    assert_int_equal(wjobs_held(g_set), 0);
    assert_int_equal(wjobs_finished(g_set), 106);
    s_check_invariant(&s, 100, 0);
    wjobs_destroy(&g_set);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_batched_results),
        cmocka_unit_test(test_unknown_task),
        cmocka_unit_test(test_lent_slots),
        cmocka_unit_test(test_owed_credit),
        cmocka_unit_test(test_cancel),
        cmocka_unit_test(test_timeout),
        cmocka_unit_test(test_progress),
        cmocka_unit_test(test_current),
        cmocka_unit_test(test_hello_and_drain),
        cmocka_unit_test(test_long_turn_sends_results_as_it_goes),
        cmocka_unit_test(test_results_wait_for_company),
        cmocka_unit_test(test_adaptive_prefetch),
        cmocka_unit_test(test_max_jobs_caps_credit),
        cmocka_unit_test(test_watch_follows_the_running_job),
    };
    return cmocka_run_group_tests(tests, s_setup, s_teardown);
}
