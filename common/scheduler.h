/* scheduler.h -- a cooperative scheduler: runnable coroutines plus timers.
 *
 * The scheduler never blocks and owns no socket.  Its host (a worker
 * process's zmq_poll loop, or a test) calls sched_run() to run every
 * runnable coroutine until each yields, parks or finishes, asks
 * sched_timeout_ms() how long it may sleep in zmq_poll, and calls
 * sched_run() again after polling (which first fires due timers).
 *
 * Inside a coroutine, sched_sleep/sched_park/sched_pass suspend it; from
 * anywhere on the scheduler's thread, sched_wake makes a parked coroutine
 * runnable.  Timers live in a binary heap (theap.h).
 */
#ifndef QJ_SCHED_H
#define QJ_SCHED_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "coro.h"

typedef struct sched sched_t;

/* Monotonic milliseconds, overridable for tests (a seam, not a mock). */
typedef uint64_t (*sched_clock_fn)(void *arg);

/* Create a scheduler whose coroutines get stacks of stack_size bytes
 * (0 = CORO_STACK_DEFAULT).  Returns NULL on allocation failure. */
sched_t *sched_new(size_t stack_size);

/* Destroy a scheduler and every coroutine it still holds (abandoned, not
 * unwound).  Safe on NULL; nulls the caller's pointer. */
void sched_destroy(sched_t **self_p);

/* Replace the clock (default CLOCK_MONOTONIC in ms). */
void sched_set_clock(sched_t *s, sched_clock_fn fn, void *arg);

/* Called on the host's stack around every resume: with resuming true just
 * before a coroutine runs, false once it has given the turn back (or
 * ended); co_arg is the arg it was spawned with.  For a watchdog that
 * must know which coroutine holds the thread. */
typedef void (*sched_resume_fn)(void *hook_arg, void *co_arg, bool resuming);

/* Set (or with NULL, clear) the resume hook. */
void sched_set_resume_hook(sched_t *s, sched_resume_fn fn, void *arg);

/* Create a coroutine running fn(arg) and make it runnable.  on_exit, if
 * not NULL, is called with arg on the host's stack after fn returns and
 * before the coroutine is freed.  Returns the coroutine (owned by the
 * scheduler) or NULL. */
coro_t *sched_spawn(sched_t *s, coro_fn fn, void *arg, void (*on_exit)(void *arg));

/* Fire due timers, then resume, in FIFO order, each coroutine runnable at
 * that point, once.  Coroutines made runnable meanwhile (a yield, a spawn,
 * a wake from inside a coroutine) wait for the next call, so a coroutine
 * that keeps yielding cannot keep the host from polling; sched_timeout_ms
 * is then 0.  Returns how many resumes it made. */
size_t sched_run(sched_t *s);

/* Milliseconds until the next timer is due (0 if something is runnable or
 * due), or -1 if there is no timer and nothing runnable: a zmq_poll
 * timeout. */
long sched_timeout_ms(const sched_t *s);

/* Coroutines alive (runnable, parked or sleeping). */
size_t sched_count(const sched_t *s);

/* The scheduler running the current coroutine, or NULL if the caller is
 * not inside one of a scheduler's coroutines. */
sched_t *sched_current(void);

/* Inside a coroutine: pass the turn, letting every other runnable
 * coroutine run once.  (Not "sched_yield": that is the C library's
 * sched_yield(2), which this would replace for the whole process.) */
void sched_pass(void);

/* Inside a coroutine: suspend for ms milliseconds.  Returns 0, or -1 if
 * woken early by sched_wake (for example to cancel it). */
int sched_sleep(long ms);

/* Inside a coroutine: suspend until sched_wake(co) or until timeout_ms
 * (-1 = no limit).  Returns 0 if woken, 1 if the time ran out. */
int sched_park(long timeout_ms);

/* Make a parked or sleeping coroutine runnable (its timer is dropped).
 * No effect on one that is already runnable or running. */
void sched_wake(sched_t *s, coro_t *co);

/* Current scheduler time in ms (its clock). */
uint64_t sched_now_ms(const sched_t *s);

#endif
