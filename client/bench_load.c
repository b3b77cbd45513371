/* bench_load.c -- streams and round trips through the client library
 * (bench_load.h).
 *
 * The stream keeps its handles in slots with a free list, as qclient map
 * does: a job's completion callback records its outcome, frees the
 * handle and returns the slot, so the window is exact (jobs submitted and
 * not finished) whatever order results come back in.  Between bursts the
 * client's descriptor is polled; ZMQ_FD is edge-triggered, so it is
 * polled only after qj_client_process has reported nothing left to do
 * (it reads ZMQ_EVENTS last).
 */
#include "bench_load.h"

#include <poll.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>

#include "clock.h"

#define LOAD_TICK_MS 20       /* poll bound, so the time limit is checked */

typedef struct stream_run stream_run_t;

typedef struct slot {
    stream_run_t *run;
    qj_job *j;            /* NULL when free */
} slot_t;

struct stream_run {
    slot_t *slots;        /* window of them */
    size_t *free;         /* indexes of free slots */
    size_t nfree;
    uint64_t outstanding, done, failed;
    char first_error[256];
};

double bench_load_cpu(void)
{
    struct rusage ru;
    if (getrusage(RUSAGE_SELF, &ru) < 0)
        return 0;
    return (double)(ru.ru_utime.tv_sec + ru.ru_stime.tv_sec) +
           (double)(ru.ru_utime.tv_usec + ru.ru_stime.tv_usec) / 1e6;
}

static void s_describe(const qj_job *j, char *buf, size_t len)
{
    const char *e = qj_job_error(j);
    snprintf(buf, len, "job %llu ended %s%s%s", (unsigned long long)qj_job_id(j),
             qj_status_name(qj_job_status(j)), e ? ": " : "", e ? e : "");
}

static void s_on_done(qj_job *j, void *arg)
{
    slot_t *s = arg;
    stream_run_t *r = s->run;
    if (qj_job_status(j) != QJ_OK && r->failed++ == 0)
        s_describe(j, r->first_error, sizeof r->first_error);
    r->done++;
    r->outstanding--;
    qj_job_free(&s->j);
    r->free[r->nfree++] = (size_t)(s - r->slots);
}

/* The size of the next group, if the window has room for it, else 0. */
static uint64_t s_next_group(const bench_stream_t *s, const stream_run_t *r,
                             uint64_t submitted)
{
    uint64_t left = s->jobs - submitted;
    uint64_t g = s->group < left ? s->group : left;
    return r->outstanding + g <= s->window ? g : 0;
}

/* Submit the next group if the window has room for it.  Returns the
 * number submitted, or -1 with a message. */
static int s_submit_group(qj_client *c, const bench_stream_t *s, stream_run_t *r,
                          uint64_t submitted, char *err, size_t errlen)
{
    uint64_t g = s_next_group(s, r, submitted);
    for (uint64_t i = 0; i < g; i++) {
        qj_job *j = qj_submit(c, s->task, s->args, s->args_len, NULL, err, errlen);
        if (!j)
            return -1;
        slot_t *slot = &r->slots[r->free[--r->nfree]];
        slot->j = j;
        r->outstanding++;
        qj_on_done(j, s_on_done, slot);
    }
    return (int)g;
}

static int s_stream(qj_client *c, const bench_stream_t *s, stream_run_t *r, bench_bar_t *bar,
                    char *err, size_t errlen)
{
    uint64_t submitted = 0;
    uint64_t deadline = clock_mono_ms() + (uint64_t)s->timeout_ms;
    while (r->done < s->jobs) {
        int g;
        while ((g = s_submit_group(c, s, r, submitted, err, errlen)) > 0)
            submitted += (uint64_t)g;
        if (g < 0)
            return BENCH_FAILED;
        int n = qj_client_process(c);
        if (n < 0) {
            snprintf(err, errlen, "the connection to the broker failed");
            return BENCH_FAILED;
        }
        if (bar)
            bench_bar_update(bar, r->done);
        if (r->done >= s->jobs)
            break;
        if (clock_mono_ms() >= deadline) {
            snprintf(err, errlen, "%llu of %llu jobs not finished after %d s (--timeout)",
                     (unsigned long long)(s->jobs - r->done), (unsigned long long)s->jobs,
                     s->timeout_ms / 1000);
            return BENCH_TIMEOUT;
        }
        if (n > 0 || s_next_group(s, r, submitted) > 0)
            continue;   /* more may be waiting, or there is room to submit */
        struct pollfd p = {qj_client_fd(c), POLLIN, 0};
        if (p.fd >= 0)
            poll(&p, 1, LOAD_TICK_MS);
    }
    return BENCH_OK;
}

int bench_load_stream(qj_client *c, const bench_stream_t *s, bench_bar_t *bar,
                      bench_run_t *out, char *err, size_t errlen)
{
    if (s->window < s->group || s->group == 0) {
        snprintf(err, errlen, "the window (%llu) must hold at least one group (%llu)",
                 (unsigned long long)s->window, (unsigned long long)s->group);
        return BENCH_FAILED;
    }
    stream_run_t r = {0};
    r.slots = calloc(s->window, sizeof *r.slots);
    r.free = calloc(s->window, sizeof *r.free);
    if (!r.slots || !r.free) {
        free(r.slots);
        free(r.free);
        snprintf(err, errlen, "out of memory for a window of %llu jobs",
                 (unsigned long long)s->window);
        return BENCH_FAILED;
    }
    for (size_t i = 0; i < s->window; i++) {
        r.slots[i].run = &r;
        r.free[r.nfree++] = s->window - 1 - i;
    }
    qj_batch_info b0, b1;
    qj_client_batch_info(c, &b0);
    double cpu0 = bench_load_cpu();
    uint64_t t0 = clock_mono_us();
    int rc = s_stream(c, s, &r, bar, err, errlen);
    uint64_t t1 = clock_mono_us();
    out->secs = (double)(t1 - t0) / 1e6;
    out->cpu_secs = bench_load_cpu() - cpu0;
    out->jobs = r.done;
    qj_client_batch_info(c, &b1);
    out->messages = b1.messages - b0.messages;
    /* Handles still out (the run failed): free them; their jobs go on. */
    for (size_t i = 0; i < s->window; i++)
        qj_job_free(&r.slots[i].j);
    if (rc == BENCH_OK && r.failed) {
        snprintf(err, errlen, "%llu of %llu jobs failed; the first: %s",
                 (unsigned long long)r.failed, (unsigned long long)s->jobs, r.first_error);
        rc = BENCH_FAILED;
    }
    free(r.slots);
    free(r.free);
    return rc;
}

int bench_load_latency(qj_client *c, const char *task, const void *args, size_t args_len,
                       size_t n, size_t warmup, int timeout_ms, bench_bar_t *bar, double *us,
                       char *err, size_t errlen)
{
    uint64_t deadline = clock_mono_ms() + (uint64_t)timeout_ms;
    for (size_t i = 0; i < warmup + n; i++) {
        uint64_t now = clock_mono_ms();
        if (now >= deadline) {
            snprintf(err, errlen, "%zu of %zu round trips not done after %d s (--timeout)",
                     warmup + n - i, warmup + n, timeout_ms / 1000);
            return BENCH_TIMEOUT;
        }
        uint64_t t0 = clock_mono_us();
        qj_job *j = qj_submit(c, task, args, args_len, NULL, err, errlen);
        if (!j)
            return BENCH_FAILED;
        if (qj_await(j, (int)(deadline - now)) < 0) {
            snprintf(err, errlen, "round trip %zu did not finish within the time limit "
                                  "(--timeout)", i + 1);
            qj_job_free(&j);
            return BENCH_TIMEOUT;
        }
        uint64_t t1 = clock_mono_us();
        if (qj_job_status(j) != QJ_OK) {
            s_describe(j, err, errlen);
            qj_job_free(&j);
            return BENCH_FAILED;
        }
        qj_job_free(&j);
        if (i >= warmup)
            us[i - warmup] = (double)(t1 - t0);
        if (bar)
            bench_bar_update(bar, i + 1 > warmup ? i + 1 - warmup : 0);
    }
    return BENCH_OK;
}
