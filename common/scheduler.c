/* sched.c -- a cooperative scheduler: FIFO run queue plus a timer heap.
 *
 * Each coroutine has a task record (its coro data pointer) in one of three
 * states: RUNNABLE (in the run queue), RUNNING (being resumed by
 * sched_run) or PARKED (waiting for sched_wake and/or its timer).  A task
 * is in the run queue exactly when it is RUNNABLE, and has a timer only
 * while PARKED, so a wake and a timer for the same park cannot both count:
 * whichever comes first makes the task RUNNABLE and drops the other.
 *
 * sched_run resumes at most the tasks that were runnable when it started
 * (after firing due timers).  Tasks made runnable meanwhile -- a yield, a
 * spawn, a wake from inside a coroutine -- wait for the next call, so a
 * coroutine that keeps yielding cannot starve the host's socket polling;
 * sched_timeout_ms() is 0 while anything is runnable.
 */
#include "scheduler.h"

#include "clock.h"
#include "theap.h"

#include <assert.h>
#include <limits.h>
#include <stdlib.h>

typedef enum { TASK_RUNNABLE, TASK_RUNNING, TASK_PARKED } task_state_t;

/* Why a task's last park ended. */
typedef enum { WOKE_BY_WAKE, WOKE_BY_TIMER } woke_by_t;

/* The scheduler's record of one coroutine. */
typedef struct task task_t;
struct task {
    sched_t *sched;             /* owner */
    coro_t *co;                 /* owned; its data pointer is this task */
    void *arg;                  /* fn's argument, passed to on_exit */
    void (*on_exit)(void *arg); /* may be NULL */
    task_state_t state;
    woke_by_t woke_by;          /* set when a PARKED task becomes RUNNABLE */
    task_t *run_next;           /* run queue link while RUNNABLE */
    task_t *prev, *next;        /* list of all live tasks, for sched_destroy */
    theap_node_t timer;         /* in sched.timers while PARKED with a timeout;
                                   key: deadline, ms on the scheduler's clock */
};

struct sched {
    size_t stack_size;          /* for every coroutine spawned */
    sched_clock_fn clock;       /* ms; clock_mono_ms unless a test injects one */
    void *clock_arg;
    task_t *run_head;           /* FIFO of RUNNABLE tasks */
    task_t *run_tail;
    size_t run_len;
    theap_t *timers;            /* PARKED tasks with a timer; a place reserved per task */
    task_t *tasks;              /* all live tasks */
    size_t count;
    sched_resume_fn hook;       /* around each resume, or NULL */
    void *hook_arg;
};

/* The task sched_run is resuming on this thread, NULL between resumes. */
static __thread task_t *s_running;

static uint64_t s_mono_ms(void *arg)
{
    (void)arg;
    return clock_mono_ms();
}

/* ----------------------------------------------------------------- timers */

static task_t *s_task_of_timer(theap_node_t *node)
{
    return (task_t *)(void *)((char *)node - offsetof(task_t, timer));
}

/* Give the running task t a timer due in ms (negative counts as 0).
 * Equal deadlines fire in the order they were armed (theap keeps ties in
 * push order). */
static void s_timer_arm(sched_t *s, task_t *t, long ms)
{
    assert(!theap_contains(s->timers, &t->timer));
    uint64_t now = sched_now_ms(s);
    uint64_t delay = ms > 0 ? (uint64_t)ms : 0;
    t->timer.key = delay > UINT64_MAX - now ? UINT64_MAX : now + delay;
    /* Cannot fail: sched_spawn reserved a place for every task. */
    int rc = theap_push(s->timers, &t->timer);
    assert(rc == 0);
    (void)rc;
}

static void s_timer_drop(sched_t *s, task_t *t)
{
    if (theap_contains(s->timers, &t->timer))
        theap_remove(s->timers, &t->timer);
}

/* -------------------------------------------------------------- run queue */

static void s_make_runnable(sched_t *s, task_t *t)
{
    t->state = TASK_RUNNABLE;
    t->run_next = NULL;
    if (s->run_tail)
        s->run_tail->run_next = t;
    else
        s->run_head = t;
    s->run_tail = t;
    s->run_len++;
}

static task_t *s_pop_runnable(sched_t *s)
{
    task_t *t = s->run_head;
    if (!t)
        return NULL;
    s->run_head = t->run_next;
    if (!s->run_head)
        s->run_tail = NULL;
    s->run_len--;
    t->run_next = NULL;
    return t;
}

/* A PARKED task becomes RUNNABLE for the given reason; its other way out
 * of the park (timer or wake) no longer applies. */
static void s_unpark(sched_t *s, task_t *t, woke_by_t why)
{
    assert(t->state == TASK_PARKED);
    s_timer_drop(s, t);
    t->woke_by = why;
    s_make_runnable(s, t);
}

static void s_fire_timers(sched_t *s)
{
    if (theap_size(s->timers) == 0)
        return;         /* no timer: no need to read the clock */
    uint64_t now = sched_now_ms(s);
    theap_node_t *next;
    while ((next = theap_peek(s->timers)) && next->key <= now)
        s_unpark(s, s_task_of_timer(next), WOKE_BY_TIMER);
}

/* ------------------------------------------------------------------ tasks */

static void s_task_unlink(sched_t *s, task_t *t)
{
    if (t->prev)
        t->prev->next = t->next;
    else
        s->tasks = t->next;
    if (t->next)
        t->next->prev = t->prev;
    s->count--;
}

/* The task whose coroutine is running; asserts that the caller is one. */
static task_t *s_self(void)
{
    task_t *t = s_running;
    assert(t && "sched_pass/sleep/park called outside a scheduler coroutine");
    assert(coro_current() == t->co);
    return t;
}

/* Park the running task until s_unpark; returns why it ended. */
static woke_by_t s_park_self(task_t *t)
{
    t->state = TASK_PARKED;
    coro_yield();
    return t->woke_by;
}

/* ----------------------------------------------------------------- public */

sched_t *sched_new(size_t stack_size)
{
    sched_t *s = calloc(1, sizeof *s);
    if (!s)
        return NULL;
    s->timers = theap_new();
    if (!s->timers) {
        free(s);
        return NULL;
    }
    s->stack_size = stack_size;
    s->clock = s_mono_ms;
    return s;
}

void sched_destroy(sched_t **self_p)
{
    assert(self_p);
    sched_t *s = *self_p;
    if (!s)
        return;
    assert(!(s_running && s_running->sched == s) && "sched_destroy from inside its own coroutine");
    task_t *t = s->tasks;
    while (t) {
        task_t *next = t->next;
        coro_destroy(&t->co);
        free(t);
        t = next;
    }
    theap_destroy(&s->timers);
    free(s);
    *self_p = NULL;
}

void sched_set_clock(sched_t *s, sched_clock_fn fn, void *arg)
{
    assert(s && fn);
    s->clock = fn;
    s->clock_arg = arg;
}

void sched_set_resume_hook(sched_t *s, sched_resume_fn fn, void *arg)
{
    assert(s);
    s->hook = fn;
    s->hook_arg = arg;
}

coro_t *sched_spawn(sched_t *s, coro_fn fn, void *arg, void (*on_exit)(void *arg))
{
    assert(s && fn);
    /* Arming a timer inside a coroutine must not fail: reserve its place now. */
    if (theap_reserve(s->timers, s->count + 1) != 0)
        return NULL;
    task_t *t = calloc(1, sizeof *t);
    if (!t)
        return NULL;
    t->co = coro_new(fn, arg, s->stack_size);
    if (!t->co) {
        free(t);
        return NULL;
    }
    coro_set_data(t->co, t);
    t->sched = s;
    t->arg = arg;
    t->on_exit = on_exit;
    t->next = s->tasks;
    if (s->tasks)
        s->tasks->prev = t;
    s->tasks = t;
    s->count++;
    s_make_runnable(s, t);
    return t->co;
}

size_t sched_run(sched_t *s)
{
    assert(s);
    assert(!s_running && "sched_run called from inside a coroutine");
    s_fire_timers(s);

    size_t budget = s->run_len;
    size_t resumes = 0;
    while (budget-- > 0) {
        task_t *t = s_pop_runnable(s);
        assert(t);
        t->state = TASK_RUNNING;
        s_running = t;
        if (s->hook)
            s->hook(s->hook_arg, t->arg, true);
        bool alive = coro_resume(t->co);
        if (s->hook)
            s->hook(s->hook_arg, t->arg, false);
        s_running = NULL;
        resumes++;
        if (!alive) {
            assert(!theap_contains(s->timers, &t->timer));
            s_task_unlink(s, t);
            if (t->on_exit)
                t->on_exit(t->arg);
            coro_destroy(&t->co);
            free(t);
        } else if (t->state == TASK_RUNNING) {
            /* A bare coro_yield(): treat it as sched_pass(). */
            s_make_runnable(s, t);
        }
    }
    return resumes;
}

long sched_timeout_ms(const sched_t *s)
{
    assert(s);
    if (s->run_len > 0)
        return 0;
    const theap_node_t *next = theap_peek(s->timers);
    if (!next)
        return -1;
    uint64_t now = sched_now_ms(s);
    uint64_t due = next->key;
    if (due <= now)
        return 0;
    return due - now > (uint64_t)LONG_MAX ? LONG_MAX : (long)(due - now);
}

size_t sched_count(const sched_t *s)
{
    assert(s);
    return s->count;
}

sched_t *sched_current(void)
{
    task_t *t = s_running;
    /* A scheduler coroutine may itself resume a plain coroutine; inside
     * that one we are not in a scheduler's coroutine. */
    return t && coro_current() == t->co ? t->sched : NULL;
}

void sched_pass(void)
{
    task_t *t = s_self();
    s_make_runnable(t->sched, t);
    coro_yield();
}

int sched_sleep(long ms)
{
    task_t *t = s_self();
    s_timer_arm(t->sched, t, ms);
    return s_park_self(t) == WOKE_BY_TIMER ? 0 : -1;
}

int sched_park(long timeout_ms)
{
    task_t *t = s_self();
    if (timeout_ms >= 0)
        s_timer_arm(t->sched, t, timeout_ms);
    return s_park_self(t) == WOKE_BY_TIMER ? 1 : 0;
}

void sched_wake(sched_t *s, coro_t *co)
{
    assert(s && co);
    task_t *t = coro_data(co);
    assert(t && t->sched == s && "sched_wake: coroutine of another scheduler");
    if (t->state == TASK_PARKED)
        s_unpark(s, t, WOKE_BY_WAKE);
}

uint64_t sched_now_ms(const sched_t *s)
{
    assert(s);
    return s->clock(s->clock_arg);
}
