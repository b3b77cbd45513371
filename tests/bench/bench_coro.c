/* bench_coro.c -- what a coroutine switch, a coroutine's life and a
 * scheduler round cost, for the backend compiled in.
 *
 *   bench_coro [ROUNDS]     (default 2,000,000 resume/yield round trips)
 *
 * Prints one line per figure; compare builds with -Dcoro_backend=asm and
 * -Dcoro_backend=ucontext. */
#include <stdio.h>
#include <stdlib.h>

#include "clock.h"
#include "coro.h"
#include "scheduler.h"

static void s_ping_body(void *arg)
{
    long n = *(long *)arg;
    for (long i = 0; i < n; i++)
        coro_yield();
}

static void s_nothing_body(void *arg)
{
    (void)arg;
}

static void s_yield_body(void *arg)
{
    long n = *(long *)arg;
    for (long i = 0; i < n; i++)
        sched_pass();
}

int main(int argc, char **argv)
{
    long rounds = argc > 1 ? atol(argv[1]) : 2000000;
    if (rounds <= 0) {
        fprintf(stderr, "usage: bench_coro [ROUNDS > 0]\n");
        return 2;
    }
    printf("backend %s\n", coro_backend());

    /* One round trip is two switches: into the coroutine and back. */
    coro_t *co = coro_new(s_ping_body, &rounds, 0);
    if (!co)
        return 1;
    uint64_t t0 = clock_mono_us();
    while (coro_resume(co))
        ;
    uint64_t t1 = clock_mono_us();
    coro_destroy(&co);
    double ns = (double)(t1 - t0) * 1000.0 / (double)rounds;
    printf("resume+yield round trip  %8.1f ns  (%.1f ns per switch)\n", ns, ns / 2);

    /* A whole short life: map the stack, run to the end, unmap. */
    long lives = rounds / 20 > 0 ? rounds / 20 : 1;
    t0 = clock_mono_us();
    for (long i = 0; i < lives; i++) {
        co = coro_new(s_nothing_body, NULL, 0);
        if (!co)
            return 1;
        coro_resume(co);
        coro_destroy(&co);
    }
    t1 = clock_mono_us();
    printf("new+resume+destroy       %8.1f ns\n", (double)(t1 - t0) * 1000.0 / (double)lives);

    /* Scheduler: 100 coroutines yielding; one resume each per sched_run. */
    sched_t *s = sched_new(0);
    if (!s)
        return 1;
    long per = rounds / 100 > 0 ? rounds / 100 : 1;
    for (int i = 0; i < 100; i++)
        if (!sched_spawn(s, s_yield_body, &per, NULL))
            return 1;
    size_t resumes = 0;
    t0 = clock_mono_us();
    while (sched_count(s) > 0)
        resumes += sched_run(s);
    t1 = clock_mono_us();
    sched_destroy(&s);
    printf("sched_pass resume       %8.1f ns\n", (double)(t1 - t0) * 1000.0 / (double)resumes);
    return 0;
}
