/* wjobs.h -- the jobs a worker process holds, and the credit they imply.
 *
 * Each job runs its task in a coroutine of the set's scheduler, at most
 * `coros` at a time; the rest wait in FIFO order (prefetched).  A job
 * waiting for sub-jobs does not count against `coros`: its slot is lent.
 * Finished jobs wait for wjobs_flush, which sends their results, progress
 * reports and the credit they free through the host's send function.
 *
 * Credit (PROTOCOL.md §4.4): the broker may send as many jobs as the
 * credit we granted and it has not used.  HELLO grants coros + prefetch;
 * each finished job grants one more; a job that starts waiting for
 * sub-jobs grants one more (its slot is lent), and takes it back (one
 * less) when it stops waiting.  Invariant, once messages have arrived:
 * broker's credit + jobs held = coros + prefetch + jobs lent; with
 * max_jobs, less as the last jobs are taken (a process to be recycled
 * after N jobs takes N, not N plus what it would have prefetched).
 *
 * Adaptive prefetch (prefetch_max > prefetch): the prefetch of that
 * invariant follows the jobs' length, so that the jobs held beyond the
 * slots last about WJOBS_HOARD_US: enough that a slot does not wait a
 * round trip to the broker for its next job when that would matter, and
 * no more, so that a worker does not sit on work another could start.
 * Tiny jobs get up to prefetch_max; jobs longer than WJOBS_HOARD_US (for
 * which a round trip is noise) get prefetch itself, and so does the first
 * job, before any length is known.
 *
 * Results wait while there is work to do and leave together: as soon as
 * the process has no job it can start, or when, by the jobs' recent
 * length, a result already waiting would wait WJOBS_HOLD_US if another job
 * ran first.  So the results of jobs of a few µs share messages, and the
 * result of a job of a few ms leaves at once.
 */
#ifndef QJ_WJOBS_H
#define QJ_WJOBS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "msg.h"
#include "qjob.h"
#include "super.h"

typedef struct wjobs wjobs_t;

/* How long a result may wait for others to share its message (µs), and
 * how much work (µs per slot) adaptive prefetch keeps held beyond the
 * slots: a refill asked for when a result leaves must arrive before the
 * held work runs out, so the hoard covers the hold plus a round trip.
 * A message costs the broker, the client and the kernels between them
 * some 20-40 µs of CPU here (wake-ups, system calls, a journal sync):
 * 2 ms of work per message keeps that near 2 % of the work, where 0.5 ms
 * made it 5-8 % (`qclient bench split`, n = 4096: jobs of 20 µs).  The
 * hoard is as much work as a process may sit on while another is idle at
 * the end of a burst, so it stays small. */
#define WJOBS_HOLD_US 2000
#define WJOBS_HOARD_US 3000

typedef struct wjobs_opts {
    unsigned coros;              /* jobs running at once, >= 1 */
    unsigned prefetch;           /* jobs held beyond that (adaptive: at least) */
    size_t stack_size;           /* bytes of each coroutine stack (0 = default) */
    const char *name;            /* worker name put in results (borrowed) */
    const qj_registry *reg;      /* the tasks (borrowed) */
    qj_client *client;           /* embedded client for sub-jobs (borrowed), or NULL */
    unsigned prefetch_max;       /* > prefetch: adapt prefetch up to this; else fixed */
    uint64_t max_jobs;           /* take no more jobs than this in all; 0 = no limit */
    super_watch_t *watch;        /* post each resumed job that has a timeout there
                                    (super.h), or NULL */
} wjobs_opts_t;

/* How the set sends a message (PROGRESS, RESULTS, CREDIT).  Returns 0 or -1. */
typedef int (*wjobs_send_fn)(void *arg, const msg_t *m);

/* Create an empty set with its scheduler.  NULL on allocation failure. */
wjobs_t *wjobs_new(const wjobs_opts_t *o);

/* Free the set; running tasks are abandoned, not unwound.  Safe on NULL,
 * nulls the caller's pointer. */
void wjobs_destroy(wjobs_t **self_p);

/* Take a job from a JOBS message (copied).  A job that cannot run
 * (unknown task, bad arguments) finishes at once with an error.  Returns
 * 0, or -1 if out of memory (the job was not taken). */
int wjobs_take(wjobs_t *s, const msg_job_t *mj);

/* Cancel a job: a waiting one finishes cancelled at once; a running one is
 * asked to stop (its coroutine is woken).  Unknown ids are ignored. */
void wjobs_cancel(wjobs_t *s, uint64_t id);

/* Start waiting jobs while slots are free, and run the coroutines until
 * none is runnable (or only ones that keep yielding are left), or until a
 * finished job's result would wait WJOBS_HOLD_US (wjobs.h, top), or 64
 * jobs per slot have started: then the host should flush what is due
 * (wjobs_flush_due), poll without waiting, and call again.  A runner whose job ends goes straight on with
 * the next waiting one when nothing else is runnable. */
void wjobs_run(wjobs_t *s);

/* Stop the jobs past their timeout (they end with status timeout), and
 * return the ms until the scheduler, a job waiting for a free slot or the
 * next deadline needs wjobs_run again (0: at once), or -1 if nothing is
 * due. */
long wjobs_timers(wjobs_t *s, uint64_t now_ms);

/* Send pending progress reports, then the results of finished jobs (as
 * few RESULTS messages as the limits allow) carrying the credit due, or a
 * CREDIT message if credit is due without results. */
void wjobs_flush(wjobs_t *s, wjobs_send_fn send, void *arg);

/* wjobs_flush, unless the results held can wait for more (wjobs.h, top):
 * a job can start now and they have not waited WJOBS_HOLD_US. */
void wjobs_flush_due(wjobs_t *s, wjobs_send_fn send, void *arg);

/* The connection is new (or the broker forgot it): forget the jobs not
 * started (the broker requeues them) and return the credit HELLO should
 * grant, leaving room for the jobs still running. */
uint32_t wjobs_hello_credit(wjobs_t *s);

/* Replace the clocks that time the jobs (unix µs, put in results) and the
 * wait of results (monotonic µs) with fn(arg) for both: a seam for tests,
 * which make a job last what they like.  NULL restores the real ones. */
typedef uint64_t (*wjobs_clock_fn)(void *arg);
void wjobs_set_clock(wjobs_t *s, wjobs_clock_fn fn, void *arg);

/* Draining: grant no more credit from now on. */
void wjobs_set_draining(wjobs_t *s);

/* For the embedded client's hooks, from inside a task coroutine: the id of
 * the running job (0 if none); it starts / stops waiting for sub-jobs. */
uint64_t wjobs_current(wjobs_t *s);
void wjobs_block(wjobs_t *s);
void wjobs_unblock(wjobs_t *s);
bool wjobs_stopping(wjobs_t *s);          /* the running job was told to stop */

size_t wjobs_held(const wjobs_t *s);      /* waiting + running */
uint64_t wjobs_finished(const wjobs_t *s);/* jobs finished since the start */
unsigned wjobs_prefetch(const wjobs_t *s);/* the prefetch in force (adaptive: now) */

#endif
