/* wjobs.c -- the jobs a worker process holds (wjobs.h). */
#include "wjobs.h"

#include <assert.h>
#include <inttypes.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "clock.h"
#include "coro.h"
#include "ctx.h"
#include "dlist.h"
#include "log.h"
#include "registry.h"
#include "scheduler.h"

/* Bytes of values and errors per RESULTS message, at most: half a frame,
 * leaving the rest for the maps around them. */
#define RESULTS_BYTES (QJ_MAX_MSG / 2)

/* Rounds of a turn (wjobs_run), and so the jobs a turn starts per slot:
 * after that many, the host flushes and polls even if jobs wait. */
#define TURN_ROUNDS 64

/* Adaptive prefetch: how fast the estimate of a job's length follows the
 * jobs (weight of the newest), and the least it may be (µs): the work a
 * worker does per job besides the task itself. */
#define JOB_US_WEIGHT 0.125
#define JOB_US_FLOOR 2.0

typedef enum { JOB_WAITING, JOB_RUNNING, JOB_DONE } job_state_t;

typedef struct job job_t;

typedef struct runner runner_t;

struct job {
    job_t *prev, *next;        /* in waiting, running or done (state says which) */
    job_t *prog_next;          /* in wjobs.prog while a progress report waits */
    wjobs_t *set;
    job_state_t state;
    qj_ctx *ctx;               /* owned; kept with the job when it is reused */
    qj_task_fn fn;             /* the task; NULL once it has failed without running */
    coro_t *co;                /* its runner's coroutine, while it runs */
    uint64_t id;
    uint32_t attempt;
    uint32_t timeout_ms;       /* 0 = none */
    uint64_t deadline;         /* mono ms when it times out; 0 = none or passed */
    uint64_t limit;            /* the same, kept once passed: for the supervisor */
    bool blocked;              /* waits for sub-jobs: its slot is lent */
    bool prog;                 /* a progress report waits to be sent */
    int ret;                   /* what the task returned */
    uint64_t t_submit, t_start, t_finish; /* unix µs */
    uint64_t prog_done, prog_total;
    char note[QJ_MAX_NOTE + 1];
    char task[QJ_MAX_TASK_NAME + 1];
};

DLIST_DEFINE(jlist, job_t)

/* A coroutine that runs jobs one after the other (s_runner). */
struct runner {
    runner_t *prev, *next;     /* in wjobs.runners: all of them */
    runner_t *next_idle;       /* in wjobs.idle while it waits for a job */
    wjobs_t *set;
    coro_t *co;                /* owned by the scheduler */
    job_t *job;                /* the job it runs; NULL while idle */
};

struct wjobs {
    wjobs_opts_t o;
    sched_t *sched;
    runner_t *runners;         /* every runner (freed with the set) */
    runner_t *idle;            /* runners waiting for a job */
    size_t nidle;
    jlist_t waiting, running, done;
    job_t *prog;               /* jobs with a progress report to send */
    job_t *spare;              /* finished jobs kept for reuse (next links) */
    size_t nspare;
    job_t *cur;                /* last answer of s_current */
    size_t active;             /* running jobs not waiting for sub-jobs */
    size_t lent;               /* running jobs waiting for sub-jobs */
    size_t ntimed;             /* running jobs with a deadline */
    long given;                /* credit the broker holds for us, as far as we know */
    unsigned prefetch;         /* in force now (adaptive: follows job_us) */
    double job_us;             /* a job's time in its slot, moving average;
                                  < 0 until one has finished */
    uint64_t done_since;       /* wall µs when the oldest unsent result was ready
                                  (its t_finish) */
    uint64_t stamp;            /* the last wall clock reading (µs) ... */
    bool stamp_fresh;          /* ... and no task code has run since, nor the
                                  host waited: it is still "now" */
    size_t turn_starts;        /* jobs started in this turn (wjobs_run) */
    qj_task_fn last_fn;        /* the last task looked up, and its name: jobs */
    char last_task[QJ_MAX_TASK_NAME]; /* come in runs of one task */
    uint32_t last_len;
    wjobs_clock_fn clock;      /* the seam (wjobs_set_clock), or NULL */
    void *clock_arg;
    bool draining;
    uint64_t finished;
    msg_result_t *rv;          /* scratch for RESULTS */
    size_t rv_cap;
};

/* ----------------------------------------------------------------- clocks */

static uint64_t s_wall_us(const wjobs_t *s)
{
    return s->clock ? s->clock(s->clock_arg) : clock_wall_us();
}

/* The wall clock now, read at most once between two runs of task code:
 * the jobs a turn starts after another finished share that reading, so a
 * job of a µs costs one clock read, not three. */
static uint64_t s_now_us(wjobs_t *s)
{
    if (!s->stamp_fresh) {
        s->stamp = s_wall_us(s);
        s->stamp_fresh = true;
    }
    return s->stamp;
}

/* ------------------------------------------------------------------ lists */

static jlist_t *s_list(wjobs_t *s, const job_t *j)
{
    return j->state == JOB_WAITING ? &s->waiting : j->state == JOB_RUNNING ? &s->running
                                                                           : &s->done;
}

/* ------------------------------------------------------------------- jobs */

static int s_progress(void *arg, qj_ctx *ctx, uint64_t done, uint64_t total, const char *note)
{
    (void)ctx;
    job_t *j = arg;
    /* Keep the latest report; wjobs_flush sends it at the end of the
     * loop's turn, so a task reporting in a tight loop costs one message
     * per turn. */
    j->prog_done = done;
    j->prog_total = total;
    snprintf(j->note, sizeof j->note, "%s", note ? note : "");
    if (!j->prog) {
        j->prog = true;
        j->prog_next = j->set->prog;
        j->set->prog = j;
    }
    return 0;
}

static job_t *s_job_new(wjobs_t *s)
{
    job_t *j = s->spare;
    if (j) {
        s->spare = j->next;
        s->nspare--;
        return j;
    }
    j = calloc(1, sizeof *j);
    if (!j)
        return NULL;
    j->set = s;
    qj_ctx_host host = {s_progress, s->o.client, j};
    if (!(j->ctx = qj_ctx_new(&host))) {
        free(j);
        return NULL;
    }
    return j;
}

static void s_job_free(job_t *j)
{
    qj_ctx_destroy(&j->ctx);
    free(j);
}

/* Keep a finished job's memory for the next one, up to a bound. */
static void s_recycle(wjobs_t *s, job_t *j)
{
    if (s->nspare >= 2 * ((size_t)s->o.coros + s->prefetch) + 16) {
        s_job_free(j);
        return;
    }
    j->next = s->spare;
    s->spare = j;
    s->nspare++;
}

/* The job is over (ran, or failed before it could): queue its result and
 * the credit it frees. */
static void s_finish(wjobs_t *s, job_t *j)
{
    jlist_remove(s_list(s, j), j);
    j->state = JOB_DONE;
    s->stamp_fresh = false;
    j->t_finish = s_now_us(s);
    if (!s->done.head)
        s->done_since = j->t_finish;
    jlist_push_back(&s->done, j);
    s->finished++;
    double us = (double)(j->t_finish - j->t_start);
    s->job_us = s->job_us < 0 ? us : s->job_us + JOB_US_WEIGHT * (us - s->job_us);
}

/* The credit to grant now: what keeps broker's credit + jobs held at
 * coros + prefetch + jobs lent (wjobs.h); < 0 if we hold more (owed).
 * With max_jobs, never more than the jobs still to take. */
static long s_credit_due(const wjobs_t *s)
{
    if (s->draining)
        return 0;
    long held = (long)s->waiting.n + (long)s->running.n;
    long due = (long)s->o.coros + (long)s->prefetch + (long)s->lent - s->given - held;
    if (s->o.max_jobs) {
        uint64_t taken = s->finished + (uint64_t)held + (uint64_t)s->given;
        long left = taken >= s->o.max_jobs ? 0 : (long)(s->o.max_jobs - taken);
        if (due > left)
            due = left;
    }
    return due;
}

/* Adaptive prefetch: as many held jobs as make WJOBS_HOARD_US of work per
 * slot by the jobs' recent length (none for jobs longer than that), within
 * prefetch..prefetch_max; prefetch itself until a job has finished. */
static void s_adapt(wjobs_t *s)
{
    if (s->o.prefetch_max <= s->o.prefetch || s->job_us < 0)
        return;
    double job_us = s->job_us > JOB_US_FLOOR ? s->job_us : JOB_US_FLOOR;
    double want = (double)s->o.coros * WJOBS_HOARD_US / job_us;
    s->prefetch = want >= s->o.prefetch_max ? s->o.prefetch_max
                  : want <= s->o.prefetch ? s->o.prefetch : (unsigned)want;
}

/* A job that cannot run fails at once with a message. */
static void s_fail_now(wjobs_t *s, job_t *j, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
static void s_fail_now(wjobs_t *s, job_t *j, const char *fmt, ...)
{
    char msg[QJ_MAX_ERROR];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    j->fn = NULL;
    j->ret = qj_fail(j->ctx, "%s", msg);
    j->t_start = s_wall_us(s);
    log_info("job %" PRIu64 " (%s) failed: %s", j->id, j->task, msg);
    s_finish(s, j);
}

/* Post the job about to hold the thread on the supervisor's watch if it
 * has a timeout, so that the supervisor can kill this process if the job
 * keeps the thread past it; else clear what was posted. */
static void s_watch_post(wjobs_t *s, const job_t *j)
{
    super_watch_t *w = s->o.watch;
    if (j && j->limit) {
        atomic_store(&w->deadline_ms, j->limit);
        atomic_store(&w->job_id, j->id);
    } else if (atomic_load_explicit(&w->job_id, memory_order_relaxed)) {
        atomic_store(&w->job_id, 0);
        atomic_store(&w->deadline_ms, 0);
    }
}

/* Waiting job j takes a slot: it is running from now (its runner is the
 * caller's business). */
static void s_begin(wjobs_t *s, job_t *j)
{
    jlist_remove(&s->waiting, j);
    j->state = JOB_RUNNING;
    jlist_push_back(&s->running, j);
    j->t_start = s_now_us(s);
    s->turn_starts++;
}

/* The slot got, the job's deadline starts. */
static void s_begun(wjobs_t *s, job_t *j)
{
    s->active++;
    if (j->timeout_ms) {
        j->deadline = j->limit = clock_mono_ms() + j->timeout_ms;
        s->ntimed++;
    }
    log_debug("job %" PRIu64 " (%s) started, attempt %" PRIu32, j->id, j->task, j->attempt);
}

/* A job waits, a slot is free, and the turn has not started its share of
 * jobs (TURN_ROUNDS per slot). */
static bool s_has_room(const wjobs_t *s)
{
    return s->waiting.head && s->active < s->o.coros &&
           s->turn_starts < (size_t)TURN_ROUNDS * s->o.coros;
}

/* Would a result waiting have waited WJOBS_HOLD_US (wjobs.h, top) if one
 * more job ran first, by the jobs' recent length? */
static bool s_hold_over(wjobs_t *s)
{
    return s->done.head &&
           (double)(s_now_us(s) - s->done_since) + s->job_us >= WJOBS_HOLD_US;
}

/* May a job start now, from a runner whose job just ended?  If there is
 * room and the results waiting can wait: else the host flushes first. */
static bool s_may_start(wjobs_t *s)
{
    return s_has_room(s) && !s_hold_over(s);
}

/* A coroutine that runs jobs: one job at a time; when one ends and nothing
 * else is runnable, it goes straight on with the next waiting job, else it
 * waits idle to be handed one (s_start).  Reusing coroutines saves a stack
 * mapping (mmap, mprotect, munmap and the page faults of a fresh stack:
 * about 10 µs) per job; going straight on saves the two switches to the
 * host and back (and a clock read). */
static void s_runner(void *arg)
{
    runner_t *r = arg;
    wjobs_t *s = r->set;
    while (r->job) {
        job_t *j = r->job;
        j->ret = j->fn(j->ctx);
        if (j->blocked)   /* the client's block and unblock did not pair up */
            s->lent--;
        else
            s->active--;
        if (j->deadline)
            s->ntimed--;
        if (s->cur == j)
            s->cur = NULL;
        j->co = NULL;
        s_finish(s, j);
        r->job = NULL;
        if (sched_timeout_ms(s->sched) != 0 && s_may_start(s)) {
            j = s->waiting.head;
            s_begin(s, j);
            r->job = j;
            j->co = r->co;
            s_begun(s, j);
            if (s->o.watch)
                s_watch_post(s, j);
            continue;
        }
        if (s->nidle >= s->o.coros)
            break;   /* enough idle runners already: this one ends */
        r->next_idle = s->idle;
        s->idle = r;
        s->nidle++;
        while (!r->job)
            sched_park(-1);   /* until s_start hands it a job */
    }
}

/* Runs on the host's stack when a runner has ended. */
static void s_runner_exit(void *arg)
{
    runner_t *r = arg;
    wjobs_t *s = r->set;
    if (r->prev)
        r->prev->next = r->next;
    else
        s->runners = r->next;
    if (r->next)
        r->next->prev = r->prev;
    free(r);
}

/* Give job j to an idle runner, or to a new one.  Returns 0 or -1. */
static int s_run_job(wjobs_t *s, job_t *j)
{
    runner_t *r = s->idle;
    if (r) {
        s->idle = r->next_idle;
        s->nidle--;
        r->job = j;
        j->co = r->co;
        sched_wake(s->sched, r->co);
        return 0;
    }
    if (!(r = calloc(1, sizeof *r)))
        return -1;
    r->set = s;
    r->job = j;
    if (!(r->co = sched_spawn(s->sched, s_runner, r, s_runner_exit))) {
        free(r);
        return -1;
    }
    r->next = s->runners;
    if (s->runners)
        s->runners->prev = r;
    s->runners = r;
    j->co = r->co;
    return 0;
}

static void s_start(wjobs_t *s)
{
    while (s_has_room(s)) {
        job_t *j = s->waiting.head;
        s_begin(s, j);
        if (s_run_job(s, j) != 0) {
            s_fail_now(s, j, "worker %s cannot start a coroutine (no memory for a "
                       "%zu-byte stack): retry, or lower --coros or --stack", s->o.name,
                       s->o.stack_size);
            continue;
        }
        s_begun(s, j);
    }
}

/* Ask a running job to stop and wake its coroutine, so that a sleeping
 * task notices now. */
static void s_stop(wjobs_t *s, job_t *j, qj_status why)
{
    qj_ctx_stop(j->ctx, why);
    if (j->co)
        sched_wake(s->sched, j->co);
}

/* The job whose coroutine is running, or NULL on the host's stack. */
static job_t *s_current(wjobs_t *s)
{
    coro_t *co = coro_current();
    if (!co)
        return NULL;
    if (s->cur && s->cur->co == co)
        return s->cur;
    for (job_t *j = s->running.head; j; j = j->next)
        if (j->co == co)
            return s->cur = j;
    return NULL;
}

/* Copy a wire string into dst as a C string, cut to fit (the codec has
 * already held it to its limit). */
static void s_copy(char *dst, size_t cap, msg_bytes_t b)
{
    size_t n = b.len < cap - 1 ? b.len : cap - 1;
    memcpy(dst, b.ptr, n);
    dst[n] = '\0';
}

/* The scheduler's resume hook: task code is about to run, so the clock
 * reading is no longer "now".  With a watch, the job of the runner about
 * to run is posted there (s_watch_post), and cleared after. */
static void s_on_resume(void *arg, void *co_arg, bool resuming)
{
    wjobs_t *s = arg;
    if (resuming)
        s->stamp_fresh = false;
    if (s->o.watch)
        s_watch_post(s, resuming ? ((runner_t *)co_arg)->job : NULL);
}

/* ----------------------------------------------------------------- public */

wjobs_t *wjobs_new(const wjobs_opts_t *o)
{
    assert(o && o->coros >= 1 && o->name && o->reg);
    wjobs_t *s = calloc(1, sizeof *s);
    if (!s)
        return NULL;
    s->o = *o;
    s->prefetch = o->prefetch;
    s->job_us = -1;   /* not known until a job has finished */
    if (!(s->sched = sched_new(o->stack_size))) {
        free(s);
        return NULL;
    }
    sched_set_resume_hook(s->sched, s_on_resume, s);
    return s;
}

void wjobs_destroy(wjobs_t **self_p)
{
    if (!self_p || !*self_p)
        return;
    wjobs_t *s = *self_p;
    /* The scheduler first: no task code may run once its job is freed.
     * It abandons the runners' coroutines without their on_exit. */
    sched_destroy(&s->sched);
    while (s->runners) {
        runner_t *r = s->runners;
        s->runners = r->next;
        free(r);
    }
    jlist_t *lists[] = {&s->waiting, &s->running, &s->done};
    for (size_t i = 0; i < 3; i++)
        while (lists[i]->head) {
            job_t *j = lists[i]->head;
            jlist_remove(lists[i], j);
            s_job_free(j);
        }
    while (s->spare) {
        job_t *j = s->spare;
        s->spare = j->next;
        s_job_free(j);
    }
    free(s->rv);
    free(s);
    *self_p = NULL;
}

/* The task named by a job: the registry's answer, remembered for the next
 * job of the same task. */
static qj_task_fn s_find_task(wjobs_t *s, msg_bytes_t name)
{
    if (s->last_fn && name.len == s->last_len && memcmp(s->last_task, name.ptr, name.len) == 0)
        return s->last_fn;
    qj_task_fn fn = qj_registry_find(s->o.reg, name.ptr, name.len);
    if (fn && name.len <= sizeof s->last_task) {
        memcpy(s->last_task, name.ptr, name.len);
        s->last_len = name.len;
        s->last_fn = fn;
    }
    return fn;
}

int wjobs_take(wjobs_t *s, const msg_job_t *mj)
{
    job_t *j = s_job_new(s);
    if (!j)
        return -1;
    if (s->given > 0)
        s->given--;   /* the broker spent one credit on it */
    j->id = mj->id;
    j->attempt = mj->attempt;
    j->timeout_ms = mj->timeout_ms;
    j->deadline = j->limit = 0;
    j->t_submit = mj->t_submit;
    j->t_start = j->t_finish = 0;
    j->blocked = j->prog = false;
    j->ret = 0;
    s_copy(j->task, sizeof j->task, mj->task);
    char queue[QJ_MAX_QUEUE_NAME + 1];
    s_copy(queue, sizeof queue, mj->queue.ptr ? mj->queue : (msg_bytes_t){"default", 7});
    j->state = JOB_WAITING;
    jlist_push_back(&s->waiting, j);

    char err[300];
    if (qj_ctx_start(j->ctx, j->id, j->attempt, queue, mj->args.ptr, mj->args.len, err,
                     sizeof err) != 0) {
        s_fail_now(s, j, "%s", err);
        return 0;
    }
    j->fn = s_find_task(s, mj->task);
    if (!j->fn) {
        char names[2048];
        qj_registry_names(s->o.reg, names, sizeof names);
        s_fail_now(s, j, "unknown task '%s' (this worker has: %s)%s", j->task, names,
                   strcmp(j->task, "exec") == 0
                       ? "; exec runs commands, so it is off unless qworker is started with "
                         "--allow-exec" : "");
    }
    return 0;
}

void wjobs_cancel(wjobs_t *s, uint64_t id)
{
    for (job_t *j = s->waiting.head; j; j = j->next)
        if (j->id == id) {
            qj_ctx_stop(j->ctx, QJ_CANCELLED);
            /* As if the task had noticed at once: the outcome is "cancelled". */
            j->ret = qj_cancelled(j->ctx) ? -1 : 0;
            j->fn = NULL;
            j->t_start = s_wall_us(s);
            log_info("job %" PRIu64 " (%s) cancelled before it started", id, j->task);
            s_finish(s, j);
            return;
        }
    for (job_t *j = s->running.head; j; j = j->next)
        if (j->id == id) {
            log_info("job %" PRIu64 " (%s): cancel requested", id, j->task);
            s_stop(s, j, QJ_CANCELLED);
            return;
        }
    log_debug("cancel for job %" PRIu64 ", which this worker does not hold", id);
}

void wjobs_run(wjobs_t *s)
{
    /* A job that starts waiting for sub-jobs frees its slot for the next
     * one, hence the rounds; a task that keeps yielding is runnable at the
     * end of every round, and must not keep the host from its socket.  A
     * result that would wait WJOBS_HOLD_US or more if another job ran
     * first (by the jobs' recent length) ends the turn, so that the host
     * sends it, and the credit that brings the next jobs, now.  (The
     * host may have waited since the last turn: the clock is read anew.
     * A wall clock that jumps only makes results leave a turn early.) */
    s->stamp_fresh = false;
    s->turn_starts = 0;
    for (int round = 0; round < TURN_ROUNDS; round++) {
        s_start(s);
        if (sched_run(s->sched) == 0)
            break;
        if (s_hold_over(s))
            break;
        if (sched_timeout_ms(s->sched) == 0 && !(s->waiting.head && s->active < s->o.coros))
            break;
    }
}

long wjobs_timers(wjobs_t *s, uint64_t now)
{
    /* A turn cut short (wjobs_run) leaves jobs that can start now. */
    long next = s->waiting.head && s->active < s->o.coros ? 0 : sched_timeout_ms(s->sched);
    if (s->ntimed == 0)
        return next;
    for (job_t *j = s->running.head; j; j = j->next) {
        if (!j->deadline)
            continue;
        if (now >= j->deadline) {
            log_info("job %" PRIu64 " (%s) ran past its timeout of %" PRIu32 " ms: stopping it",
                     j->id, j->task, j->timeout_ms);
            j->deadline = 0;
            s->ntimed--;
            s_stop(s, j, QJ_TIMEOUT);
            next = 0;
        } else if (next < 0 || (long)(j->deadline - now) < next) {
            next = (long)(j->deadline - now);
        }
    }
    return next;
}

/* Fill s->rv with the results of the first finished jobs, as many as fit
 * one message.  Returns how many, 0 if out of memory. */
static size_t s_fill_results(wjobs_t *s)
{
    size_t n = 0, bytes = 0;
    uint32_t name_len = (uint32_t)strlen(s->o.name);
    for (job_t *j = s->done.head; j && n < QJ_MAX_BATCH; j = j->next, n++) {
        if (n == s->rv_cap) {
            size_t cap = s->rv_cap ? 2 * s->rv_cap : 64;
            msg_result_t *rv = realloc(s->rv, cap * sizeof *rv);
            if (!rv)
                break;
            s->rv = rv;
            s->rv_cap = cap;
        }
        const void *val;
        size_t len;
        const char *err;
        qj_status st = qj_ctx_outcome(j->ctx, j->ret, &val, &len, &err);
        size_t elen = err ? strlen(err) : 0;
        if (n > 0 && bytes + len + elen > RESULTS_BYTES)
            break;
        bytes += len + elen;
        s->rv[n] = (msg_result_t){
            .id = j->id, .st = (uint8_t)st, .attempts = j->attempt,
            .value = {val, (uint32_t)len},
            .error = {err, (uint32_t)elen},
            .worker = {s->o.name, name_len},
            .t = {.submitted = j->t_submit, .started = j->t_start, .finished = j->t_finish},
        };
        log_debug("job %" PRIu64 " (%s) %s in %.3f ms%s%s", j->id, j->task, msg_st_name(st),
                  (double)(j->t_finish - j->t_start) / 1000.0, err ? ": " : "",
                  err ? err : "");
    }
    return n;
}

/* Would the held results still be in time if another job ran first?  Only
 * while one can start now: an idle worker has nothing to wait for. */
static bool s_holding(wjobs_t *s)
{
    return s->done.head && s->waiting.head && s->active < s->o.coros && !s_hold_over(s);
}

void wjobs_flush_due(wjobs_t *s, wjobs_send_fn send, void *arg)
{
    if (!s_holding(s))
        wjobs_flush(s, send, arg);
}

void wjobs_flush(wjobs_t *s, wjobs_send_fn send, void *arg)
{
    while (s->prog) {
        job_t *j = s->prog;
        s->prog = j->prog_next;
        j->prog = false;
        msg_t m = {.cmd = MSG_PROGRESS, .id = j->id, .done = j->prog_done,
                   .total = j->prog_total};
        if (j->note[0])
            m.note = (msg_bytes_t){j->note, (uint32_t)strlen(j->note)};
        send(arg, &m);
    }
    while (s->done.head) {
        size_t n = s_fill_results(s);
        if (n == 0) {
            /* No memory for even one result: try again next turn. */
            log_error("out of memory sending %zu results", s->done.n);
            return;
        }
        s_adapt(s);
        long due = s_credit_due(s);
        msg_t m = {.cmd = MSG_RESULTS, .results = s->rv, .nresults = (uint32_t)n};
        if (due > 0)
            m.credit = (uint32_t)due;
        if (send(arg, &m) == 0)
            s->given += m.credit;
        for (size_t i = 0; i < n; i++) {
            job_t *j = s->done.head;
            jlist_remove(&s->done, j);
            s_recycle(s, j);
        }
    }
    s_adapt(s);
    long due = s_credit_due(s);
    if (due > 0) {
        msg_t m = {.cmd = MSG_CREDIT, .credit = (uint32_t)due};
        if (send(arg, &m) == 0)
            s->given += due;
    }
}

uint32_t wjobs_hello_credit(wjobs_t *s)
{
    size_t n = s->waiting.n;
    while (s->waiting.head) {
        job_t *j = s->waiting.head;
        jlist_remove(&s->waiting, j);
        s_recycle(s, j);
    }
    if (n)
        log_info("gave back %zu jobs not started: the broker requeues them", n);
    /* A new connection: the broker holds no credit for us yet. */
    s->given = 0;
    long credit = s_credit_due(s);
    if (credit <= 0)
        return 0;
    s->given = credit;
    return (uint32_t)credit;
}

void wjobs_set_clock(wjobs_t *s, wjobs_clock_fn fn, void *arg)
{
    s->clock = fn;
    s->clock_arg = arg;
}

void wjobs_set_draining(wjobs_t *s)
{
    s->draining = true;
}

uint64_t wjobs_current(wjobs_t *s)
{
    job_t *j = s_current(s);
    return j ? j->id : 0;
}

bool wjobs_stopping(wjobs_t *s)
{
    job_t *j = s_current(s);
    return j && qj_cancelled(j->ctx);
}

void wjobs_block(wjobs_t *s)
{
    job_t *j = s_current(s);
    if (!j || j->blocked)
        return;
    j->blocked = true;
    s->active--;
    s->lent++;   /* one more credit due (s_credit_due) */
}

void wjobs_unblock(wjobs_t *s)
{
    job_t *j = s_current(s);
    if (!j || !j->blocked)
        return;
    j->blocked = false;
    s->active++;
    s->lent--;   /* one credit less due */
}

size_t wjobs_held(const wjobs_t *s) { return s->waiting.n + s->running.n; }
uint64_t wjobs_finished(const wjobs_t *s) { return s->finished; }
unsigned wjobs_prefetch(const wjobs_t *s) { return s->prefetch; }
