/* test_sched.c -- the cooperative scheduler: run order, timers on an
 * injected clock, park/wake, lifetime. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "scheduler.h"

/* ---------------------------------------------------------------- helpers */

/* The injected clock: time moves only when a test says so. */
typedef struct {
    uint64_t now;
} fake_clock_t;

static uint64_t s_fake_now(void *arg)
{
    return ((fake_clock_t *)arg)->now;
}

typedef struct {
    sched_t *s;
    fake_clock_t clock;
} fixture_t;

static int s_setup(void **state)
{
    fixture_t *f = calloc(1, sizeof *f);
    if (!f)
        return -1;
    f->s = sched_new(0);
    if (!f->s)
        return -1;
    f->clock.now = 1000;
    sched_set_clock(f->s, s_fake_now, &f->clock);
    *state = f;
    return 0;
}

static int s_teardown(void **state)
{
    fixture_t *f = *state;
    sched_destroy(&f->s);
    free(f);
    return 0;
}

/* Events in order, shared by the coroutines of one test. */
#define LOG_MAX 256
typedef struct {
    int ev[LOG_MAX];
    int n;
} log_t;

static void s_log(log_t *l, int e)
{
    assert_true(l->n < LOG_MAX);
    l->ev[l->n++] = e;
}

static void s_log_expect(const log_t *l, const int *want, int n)
{
    assert_int_equal(l->n, n);
    for (int i = 0; i < n; i++)
        if (l->ev[i] != want[i])
            fail_msg("event %d is %d, expected %d", i, l->ev[i], want[i]);
}

/* A coroutine's argument: who it is and where to log. */
typedef struct {
    int id;
    log_t *log;
    long ms;            /* for the sleeping/parking bodies */
    int rc;             /* what sched_sleep/sched_park returned */
    uint64_t woke_at;   /* sched_now_ms after it returned */
    coro_t *other;      /* a coroutine to wake, for the waking bodies */
    void *child_arg;    /* argument of the coroutine the spawning body spawns */
    int exits;          /* on_exit calls */
} actor_t;

static void s_on_exit(void *arg)
{
    actor_t *a = arg;
    /* on_exit runs on the host's stack, after the body returned. */
    assert_null(coro_current());
    assert_null(sched_current());
    a->exits++;
}

/* ------------------------------------------------------------ run order */

static void s_note_body(void *arg)
{
    actor_t *a = arg;
    s_log(a->log, a->id);
}

static void test_fifo_order(void **state)
{
    fixture_t *f = *state;
    log_t log = {.n = 0};
    actor_t a[5];
    for (int i = 0; i < 5; i++) {
        a[i] = (actor_t){.id = i, .log = &log};
        assert_non_null(sched_spawn(f->s, s_note_body, &a[i], s_on_exit));
    }
    assert_int_equal(sched_count(f->s), 5);
    assert_int_equal(log.n, 0);     /* spawning does not run anything */
    assert_int_equal(sched_run(f->s), 5);
    s_log_expect(&log, (int[]){0, 1, 2, 3, 4}, 5);
    assert_int_equal(sched_count(f->s), 0);
    for (int i = 0; i < 5; i++)
        assert_int_equal(a[i].exits, 1);
    assert_int_equal(sched_run(f->s), 0);
}

static void s_yield_body(void *arg)
{
    actor_t *a = arg;
    for (int i = 0; i < 3; i++) {
        s_log(a->log, a->id * 10 + i);
        sched_pass();
    }
}

static void test_yield_round_robin(void **state)
{
    fixture_t *f = *state;
    log_t log = {.n = 0};
    actor_t a[3];
    for (int i = 0; i < 3; i++) {
        a[i] = (actor_t){.id = i + 1, .log = &log};
        assert_non_null(sched_spawn(f->s, s_yield_body, &a[i], NULL));
    }
    /* Each sched_run resumes each runnable coroutine once, no more: a
     * coroutine that yields waits for the next call. */
    for (int round = 0; round < 4; round++) {
        assert_int_equal(sched_run(f->s), 3);
        assert_int_equal(log.n, round < 3 ? 3 * (round + 1) : 9);
    }
    s_log_expect(&log, (int[]){10, 20, 30, 11, 21, 31, 12, 22, 32}, 9);
    assert_int_equal(sched_count(f->s), 0);
}

static void s_spin_body(void *arg)
{
    int *spins = arg;
    for (;;) {
        (*spins)++;
        sched_pass();
    }
}

static void test_run_returns_despite_endless_yielder(void **state)
{
    fixture_t *f = *state;
    int spins = 0;
    assert_non_null(sched_spawn(f->s, s_spin_body, &spins, NULL));
    for (int i = 1; i <= 5; i++) {
        assert_int_equal(sched_run(f->s), 1);
        assert_int_equal(spins, i);
        assert_int_equal(sched_timeout_ms(f->s), 0);
    }
    /* Teardown destroys it while runnable. */
}

static void s_bare_yield_body(void *arg)
{
    actor_t *a = arg;
    s_log(a->log, 1);
    coro_yield();   /* not sched_pass: the scheduler must still keep it */
    s_log(a->log, 2);
}

static void test_bare_coro_yield_counts_as_yield(void **state)
{
    fixture_t *f = *state;
    log_t log = {.n = 0};
    actor_t a = {.log = &log};
    assert_non_null(sched_spawn(f->s, s_bare_yield_body, &a, s_on_exit));
    assert_int_equal(sched_run(f->s), 1);
    assert_int_equal(sched_count(f->s), 1);
    assert_int_equal(sched_run(f->s), 1);
    s_log_expect(&log, (int[]){1, 2}, 2);
    assert_int_equal(a.exits, 1);
}

/* ---------------------------------------------------------------- sleep */

static void s_sleep_body(void *arg)
{
    actor_t *a = arg;
    a->rc = sched_sleep(a->ms);
    a->woke_at = sched_now_ms(sched_current());
    s_log(a->log, a->id);
}

static void test_sleep_order_fake_clock(void **state)
{
    fixture_t *f = *state;
    log_t log = {.n = 0};
    actor_t a[4] = {
        {.id = 1, .log = &log, .ms = 30, .rc = 99},
        {.id = 2, .log = &log, .ms = 10, .rc = 99},
        {.id = 3, .log = &log, .ms = 20, .rc = 99},
        {.id = 4, .log = &log, .ms = 10, .rc = 99},   /* same deadline as 2: FIFO */
    };
    for (int i = 0; i < 4; i++)
        assert_non_null(sched_spawn(f->s, s_sleep_body, &a[i], NULL));
    assert_int_equal(sched_run(f->s), 4);
    assert_int_equal(log.n, 0);
    assert_int_equal(sched_count(f->s), 4);

    assert_int_equal(sched_timeout_ms(f->s), 10);
    f->clock.now += 9;
    assert_int_equal(sched_timeout_ms(f->s), 1);
    assert_int_equal(sched_run(f->s), 0);   /* not due yet */
    f->clock.now += 1;
    assert_int_equal(sched_timeout_ms(f->s), 0);
    assert_int_equal(sched_run(f->s), 2);
    s_log_expect(&log, (int[]){2, 4}, 2);

    f->clock.now += 100;    /* both remaining timers are overdue */
    assert_int_equal(sched_run(f->s), 2);
    s_log_expect(&log, (int[]){2, 4, 3, 1}, 4);
    for (int i = 0; i < 4; i++)
        assert_int_equal(a[i].rc, 0);
    assert_int_equal(a[1].woke_at, 1010);
    assert_int_equal(a[0].woke_at, 1110);
    assert_int_equal(sched_count(f->s), 0);
    assert_int_equal(sched_timeout_ms(f->s), -1);
}

static void test_sleep_zero_and_negative(void **state)
{
    fixture_t *f = *state;
    log_t log = {.n = 0};
    actor_t a[2] = {
        {.id = 1, .log = &log, .ms = 0, .rc = 99},
        {.id = 2, .log = &log, .ms = -5, .rc = 99},
    };
    for (int i = 0; i < 2; i++)
        assert_non_null(sched_spawn(f->s, s_sleep_body, &a[i], NULL));
    assert_int_equal(sched_run(f->s), 2);
    assert_int_equal(log.n, 0);
    assert_int_equal(sched_timeout_ms(f->s), 0);    /* due now */
    assert_int_equal(sched_run(f->s), 2);
    s_log_expect(&log, (int[]){1, 2}, 2);
    assert_int_equal(a[0].rc, 0);
    assert_int_equal(a[1].rc, 0);
}

#define SLEEPERS 5000

typedef struct {
    long delay;
    uint64_t due;
    uint64_t fired;
    int rc;
} sleeper_t;

static sleeper_t *s_fired_order[SLEEPERS];
static int s_fired_n;

static void s_many_sleep_body(void *arg)
{
    sleeper_t *z = arg;
    sched_t *s = sched_current();
    z->due = sched_now_ms(s) + (uint64_t)z->delay;
    z->rc = sched_sleep(z->delay);
    z->fired = sched_now_ms(s);
    s_fired_order[s_fired_n++] = z;
}

static void test_thousands_of_sleepers_fire_in_order(void **state)
{
    fixture_t *f = *state;
    sleeper_t *zs = calloc(SLEEPERS, sizeof *zs);
    assert_non_null(zs);
    s_fired_n = 0;
    uint32_t seed = 12345;
    for (int i = 0; i < SLEEPERS; i++) {
        seed = seed * 1103515245u + 12345u;
        zs[i].delay = (long)((seed >> 8) % 3000);
        zs[i].rc = 99;
        assert_non_null(sched_spawn(f->s, s_many_sleep_body, &zs[i], NULL));
    }
    assert_int_equal(sched_run(f->s), SLEEPERS);
    assert_int_equal(s_fired_n, 0);

    /* Jump the clock to each next deadline, as a host's poll would wait. */
    int rounds = 0;
    while (sched_count(f->s) > 0 && rounds < 10000) {
        long t = sched_timeout_ms(f->s);
        assert_true(t >= 0);
        f->clock.now += (uint64_t)t;
        sched_run(f->s);
        rounds++;
    }
    assert_int_equal(s_fired_n, SLEEPERS);
    for (int i = 0; i < SLEEPERS; i++) {
        sleeper_t *z = s_fired_order[i];
        assert_int_equal(z->rc, 0);
        assert_int_equal(z->fired, z->due);     /* not late, not early */
        if (i > 0)
            assert_true(s_fired_order[i - 1]->due <= z->due);
    }
    free(zs);
}

/* ----------------------------------------------------------- park / wake */

static void s_park_body(void *arg)
{
    actor_t *a = arg;
    s_log(a->log, a->id);
    a->rc = sched_park(a->ms);
    a->woke_at = sched_now_ms(sched_current());
    s_log(a->log, -a->id);
}

static void test_park_wake(void **state)
{
    fixture_t *f = *state;
    log_t log = {.n = 0};
    actor_t a = {.id = 1, .log = &log, .ms = -1, .rc = 99};
    coro_t *co = sched_spawn(f->s, s_park_body, &a, s_on_exit);
    assert_non_null(co);
    assert_int_equal(sched_run(f->s), 1);
    assert_int_equal(sched_timeout_ms(f->s), -1);   /* parked, no timer */
    assert_int_equal(sched_run(f->s), 0);
    f->clock.now += 1000000;
    assert_int_equal(sched_run(f->s), 0);           /* no timeout: still parked */
    assert_int_equal(sched_count(f->s), 1);

    sched_wake(f->s, co);
    assert_int_equal(sched_timeout_ms(f->s), 0);
    sched_wake(f->s, co);                           /* already runnable: no effect */
    assert_int_equal(sched_run(f->s), 1);
    assert_int_equal(a.rc, 0);
    s_log_expect(&log, (int[]){1, -1}, 2);
    assert_int_equal(a.exits, 1);
    assert_int_equal(sched_count(f->s), 0);
}

static void test_park_timeout_returns_1(void **state)
{
    fixture_t *f = *state;
    log_t log = {.n = 0};
    actor_t a = {.id = 1, .log = &log, .ms = 50, .rc = 99};
    assert_non_null(sched_spawn(f->s, s_park_body, &a, NULL));
    assert_int_equal(sched_run(f->s), 1);
    assert_int_equal(sched_timeout_ms(f->s), 50);
    f->clock.now += 49;
    assert_int_equal(sched_run(f->s), 0);
    assert_int_equal(a.rc, 99);
    f->clock.now += 1;
    assert_int_equal(sched_run(f->s), 1);
    assert_int_equal(a.rc, 1);
    assert_int_equal(a.woke_at, 1050);
}

static void test_wake_cancels_sleep_timer(void **state)
{
    fixture_t *f = *state;
    log_t log = {.n = 0};
    actor_t a = {.id = 1, .log = &log, .ms = 1000, .rc = 99};
    actor_t b = {.id = 2, .log = &log, .ms = 500, .rc = 99};
    coro_t *ca = sched_spawn(f->s, s_sleep_body, &a, NULL);
    assert_non_null(ca);
    assert_non_null(sched_spawn(f->s, s_sleep_body, &b, NULL));
    assert_int_equal(sched_run(f->s), 2);
    assert_int_equal(sched_timeout_ms(f->s), 500);

    sched_wake(f->s, ca);   /* drops a's timer: b's is still there */
    assert_int_equal(sched_run(f->s), 1);
    assert_int_equal(a.rc, -1);
    assert_int_equal(a.woke_at, 1000);
    assert_int_equal(sched_timeout_ms(f->s), 500);

    f->clock.now += 2000;   /* past a's old deadline: nothing extra fires */
    assert_int_equal(sched_run(f->s), 1);
    assert_int_equal(b.rc, 0);
    s_log_expect(&log, (int[]){1, 2}, 2);
    assert_int_equal(sched_timeout_ms(f->s), -1);
}

/* Wakes a->other, then logs. */
static void s_waker_body(void *arg)
{
    actor_t *a = arg;
    assert_ptr_equal(sched_current(), sched_current());
    sched_wake(sched_current(), a->other);
    sched_wake(sched_current(), coro_current());    /* itself, running: no effect */
    s_log(a->log, a->id);
}

static void test_wake_from_inside_coroutine(void **state)
{
    fixture_t *f = *state;
    log_t log = {.n = 0};
    actor_t sleeper = {.id = 1, .log = &log, .ms = -1, .rc = 99};
    actor_t waker = {.id = 2, .log = &log};
    waker.other = sched_spawn(f->s, s_park_body, &sleeper, NULL);
    assert_non_null(waker.other);
    assert_int_equal(sched_run(f->s), 1);           /* sleeper parks */
    assert_non_null(sched_spawn(f->s, s_waker_body, &waker, s_on_exit));
    assert_int_equal(sched_run(f->s), 1);           /* waker runs; sleeper waits for the next round */
    assert_int_equal(sched_run(f->s), 1);
    s_log_expect(&log, (int[]){1, 2, -1}, 3);
    assert_int_equal(sleeper.rc, 0);
    assert_int_equal(waker.exits, 1);
    assert_int_equal(sched_count(f->s), 0);
}

static void test_timer_and_wake_in_same_round(void **state)
{
    fixture_t *f = *state;
    log_t log = {.n = 0};
    /* The timer fires first (sched_run fires timers before running), so
     * the wake that comes later in the round finds it runnable: no effect,
     * and the sleeper runs once with rc 0. */
    actor_t sleeper = {.id = 1, .log = &log, .ms = 10, .rc = 99};
    actor_t waker = {.id = 2, .log = &log};
    waker.other = sched_spawn(f->s, s_sleep_body, &sleeper, NULL);
    assert_non_null(waker.other);
    assert_int_equal(sched_run(f->s), 1);
    assert_non_null(sched_spawn(f->s, s_waker_body, &waker, NULL));
    f->clock.now += 10;
    assert_int_equal(sched_run(f->s), 2);   /* waker, then the sleeper */
    assert_int_equal(sleeper.rc, 0);
    s_log_expect(&log, (int[]){2, 1}, 2);
    assert_int_equal(sched_run(f->s), 0);
    assert_int_equal(sched_count(f->s), 0);

    /* The other way round: woken, then its deadline passes before it runs.
     * The wake won, its timer is gone: -1, and it runs once. */
    log.n = 0;
    actor_t s2 = {.id = 3, .log = &log, .ms = 10, .rc = 99};
    coro_t *co = sched_spawn(f->s, s_sleep_body, &s2, NULL);
    assert_non_null(co);
    assert_int_equal(sched_run(f->s), 1);
    sched_wake(f->s, co);
    f->clock.now += 10;
    assert_int_equal(sched_run(f->s), 1);
    assert_int_equal(s2.rc, -1);
    s_log_expect(&log, (int[]){3}, 1);
    assert_int_equal(sched_run(f->s), 0);
}

static void test_wake_runnable_has_no_effect(void **state)
{
    fixture_t *f = *state;
    log_t log = {.n = 0};
    actor_t a = {.id = 7, .log = &log};
    coro_t *co = sched_spawn(f->s, s_note_body, &a, NULL);
    assert_non_null(co);
    sched_wake(f->s, co);   /* runnable, never run: must not be queued twice */
    sched_wake(f->s, co);
    assert_int_equal(sched_run(f->s), 1);
    s_log_expect(&log, (int[]){7}, 1);
    assert_int_equal(sched_run(f->s), 0);
}

/* ----------------------------------------------------- spawn from inside */

static void s_spawner_body(void *arg)
{
    actor_t *a = arg;
    s_log(a->log, a->id);
    assert_non_null(sched_spawn(sched_current(), s_note_body, a->child_arg, s_on_exit));
    s_log(a->log, a->id + 1);
}

static void test_spawn_from_inside(void **state)
{
    fixture_t *f = *state;
    log_t log = {.n = 0};
    actor_t child = {.id = 9, .log = &log};
    actor_t parent = {.id = 1, .log = &log, .child_arg = &child};
    assert_non_null(sched_spawn(f->s, s_spawner_body, &parent, s_on_exit));
    assert_int_equal(sched_run(f->s), 1);
    assert_int_equal(sched_count(f->s), 1);         /* the child, not yet run */
    assert_int_equal(sched_timeout_ms(f->s), 0);
    assert_int_equal(sched_run(f->s), 1);
    s_log_expect(&log, (int[]){1, 2, 9}, 3);
    assert_int_equal(parent.exits, 1);
    assert_int_equal(child.exits, 1);
}

/* --------------------------------------------------- timeout, current */

static void test_timeout_values(void **state)
{
    fixture_t *f = *state;
    log_t log = {.n = 0};
    assert_int_equal(sched_timeout_ms(f->s), -1);   /* nothing at all */
    actor_t a = {.id = 1, .log = &log, .ms = 100, .rc = 99};
    assert_non_null(sched_spawn(f->s, s_sleep_body, &a, NULL));
    assert_int_equal(sched_timeout_ms(f->s), 0);    /* runnable */
    sched_run(f->s);
    assert_int_equal(sched_timeout_ms(f->s), 100);
    f->clock.now += 40;
    assert_int_equal(sched_timeout_ms(f->s), 60);
    f->clock.now += 500;
    assert_int_equal(sched_timeout_ms(f->s), 0);    /* overdue */
    sched_run(f->s);
    assert_int_equal(sched_timeout_ms(f->s), -1);

    /* A huge timeout is clamped, not wrapped negative. */
    actor_t b = {.id = 2, .log = &log, .ms = LONG_MAX, .rc = 99};
    assert_non_null(sched_spawn(f->s, s_park_body, &b, NULL));
    sched_run(f->s);
    assert_true(sched_timeout_ms(f->s) > 0);
    assert_int_equal(sched_now_ms(f->s), f->clock.now);
}

typedef struct {
    sched_t *seen;
    coro_t *inner;
    sched_t *seen_in_inner;
} current_probe_t;

static void s_plain_inner(void *arg)
{
    current_probe_t *p = arg;
    p->seen_in_inner = sched_current();
}

static void s_current_body(void *arg)
{
    current_probe_t *p = arg;
    p->seen = sched_current();
    /* A plain coroutine resumed from a scheduler coroutine is not one. */
    p->inner = coro_new(s_plain_inner, p, 0);
    assert_non_null(p->inner);
    coro_resume(p->inner);
    coro_destroy(&p->inner);
}

static void test_current(void **state)
{
    fixture_t *f = *state;
    current_probe_t p = {0};
    p.seen_in_inner = (sched_t *)(void *)&p;
    assert_null(sched_current());
    assert_non_null(sched_spawn(f->s, s_current_body, &p, NULL));
    sched_run(f->s);
    assert_ptr_equal(p.seen, f->s);
    assert_null(p.seen_in_inner);
    assert_null(sched_current());
}

/* ------------------------------------------------------------- lifetime */

static int s_count_mappings(void)
{
    FILE *fp = fopen("/proc/self/maps", "r");
    if (!fp)
        return -1;
    int n = 0;
    for (int c; (c = fgetc(fp)) != EOF;)
        n += c == '\n';
    fclose(fp);
    return n;
}

static void test_destroy_with_parked_coroutines(void **state)
{
    (void)state;
    fake_clock_t clock = {.now = 0};
    sched_t *s = sched_new(32 * 1024);
    assert_non_null(s);
    sched_set_clock(s, s_fake_now, &clock);
    int maps_before = s_count_mappings();

    log_t log = {.n = 0};
    actor_t a[200];
    for (int i = 0; i < 200; i++) {
        /* parked forever, parked with a timer, sleeping, runnable */
        a[i] = (actor_t){.id = i, .log = &log, .ms = i % 4 == 0 ? -1 : i, .rc = 99};
        coro_t *co;
        if (i % 4 == 3)
            co = sched_spawn(s, s_spin_body, &a[i].rc, NULL);
        else
            co = sched_spawn(s, i % 4 == 2 ? s_sleep_body : s_park_body, &a[i], s_on_exit);
        assert_non_null(co);
    }
    sched_run(s);
    assert_int_equal(sched_count(s), 200);
    assert_true(s_count_mappings() > maps_before + 100);

    sched_destroy(&s);
    assert_null(s);
    sched_destroy(&s);  /* safe twice */
    /* Every stack is unmapped (LeakSanitizer and valgrind check the heap). */
    assert_true(s_count_mappings() <= maps_before + 4);
    for (int i = 0; i < 200; i++)
        assert_int_equal(a[i].exits, 0);    /* abandoned, not finished */
}

static void test_real_clock_short_sleep(void **state)
{
    (void)state;
    sched_t *s = sched_new(0);
    assert_non_null(s);
    log_t log = {.n = 0};
    actor_t a = {.id = 1, .log = &log, .ms = 2, .rc = 99};
    uint64_t t0 = sched_now_ms(s);
    assert_non_null(sched_spawn(s, s_sleep_body, &a, NULL));
    /* Bounded: a broken timer fails instead of hanging. */
    for (int i = 0; i < 1000 && sched_count(s) > 0; i++) {
        sched_run(s);
        long t = sched_timeout_ms(s);
        assert_true(t <= 2);
        if (t > 0)
            nanosleep(&(struct timespec){.tv_nsec = t * 1000000L}, NULL);
    }
    assert_int_equal(sched_count(s), 0);
    assert_int_equal(a.rc, 0);
    assert_true(a.woke_at >= t0 + 2);
    sched_destroy(&s);
}

/* The resume hook brackets every resume, with the coroutine's arg. */
typedef struct {
    void *cur;       /* arg of the coroutine being resumed, or NULL */
    size_t pairs;    /* resumes bracketed */
} hook_log_t;

static void s_hook(void *arg, void *co_arg, bool resuming)
{
    hook_log_t *h = arg;
    if (resuming) {
        assert_null(h->cur);
        h->cur = co_arg;
    } else {
        assert_ptr_equal(h->cur, co_arg);
        h->cur = NULL;
        h->pairs++;
    }
}

static void test_resume_hook(void **state)
{
    fixture_t *f = *state;
    hook_log_t h = {NULL, 0};
    sched_set_resume_hook(f->s, s_hook, &h);
    log_t log = {.n = 0};
    actor_t a[2];
    size_t resumes = 0;
    for (int i = 0; i < 2; i++) {
        a[i] = (actor_t){.id = i + 1, .log = &log};
        assert_non_null(sched_spawn(f->s, s_yield_body, &a[i], NULL));
    }
    resumes += sched_run(f->s);
    assert_int_equal(h.pairs, resumes);
    sched_set_resume_hook(f->s, NULL, NULL);
    while (sched_count(f->s))
        sched_run(f->s);
    assert_int_equal(h.pairs, resumes);   /* cleared: no more calls */
    assert_null(h.cur);
}

#define T(name) cmocka_unit_test_setup_teardown(name, s_setup, s_teardown)

int main(void)
{
    const struct CMUnitTest tests[] = {
        T(test_fifo_order),
        T(test_yield_round_robin),
        T(test_run_returns_despite_endless_yielder),
        T(test_bare_coro_yield_counts_as_yield),
        T(test_sleep_order_fake_clock),
        T(test_sleep_zero_and_negative),
        T(test_thousands_of_sleepers_fire_in_order),
        T(test_park_wake),
        T(test_park_timeout_returns_1),
        T(test_wake_cancels_sleep_timer),
        T(test_wake_from_inside_coroutine),
        T(test_timer_and_wake_in_same_round),
        T(test_wake_runnable_has_no_effect),
        T(test_spawn_from_inside),
        T(test_timeout_values),
        T(test_current),
        T(test_destroy_with_parked_coroutines),
        T(test_real_clock_short_sleep),
        T(test_resume_hook),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
