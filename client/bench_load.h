/* bench_load.h -- the load qclient bench puts on a qjob broker through
 * the client library: a stream of jobs with a bounded number in flight
 * (throughput, batch, split), and sequential round trips (latency).
 *
 * Both measure wall time on the monotonic clock from the first submit to
 * the last result, and fail (rather than report a figure) if any job did
 * not end ok, or if the time limit ran out.
 */
#ifndef QJ_BENCH_LOAD_H
#define QJ_BENCH_LOAD_H

#include <stddef.h>
#include <stdint.h>

#include "bench_bar.h"
#include "qjob.h"

/* How a run ended. */
enum {
    BENCH_OK = 0,
    BENCH_FAILED = -1,    /* a job failed, the connection failed, no memory */
    BENCH_TIMEOUT = -2,   /* the time limit ran out */
};

/* What one timed run measured. */
typedef struct bench_run {
    double secs;          /* wall time, first submit to last result */
    uint64_t jobs;        /* jobs that finished (all ok, or the run failed) */
    uint64_t messages;    /* messages the client sent with jobs (SUBMITs; qfwd: requests) */
    double cpu_secs;      /* this process's CPU time (user + system, all threads) */
} bench_run_t;

/* A stream of identical jobs. */
typedef struct bench_stream {
    const char *task;     /* "noop", "pi" ... */
    const void *args;     /* msgpack value given to every job, or NULL */
    size_t args_len;
    uint64_t jobs;        /* how many */
    uint64_t window;      /* at most this many submitted and not finished */
    uint64_t group;       /* submitted together (the batch k); window >= group */
    int timeout_ms;       /* for the whole run */
} bench_stream_t;

/* The CPU time this process has used so far, in seconds. */
double bench_load_cpu(void);

/* Run the stream s through c and measure it into *out.  c is a client
 * already connected (qj_client_ready).  Jobs are submitted group at a
 * time while the window has room for a whole group, so with the client's
 * batch_max equal to group, each SUBMIT carries group jobs.  bar (or NULL)
 * shows progress.  Returns BENCH_OK, or BENCH_FAILED / BENCH_TIMEOUT with a
 * message; no handle is left behind either way. */
int bench_load_stream(qj_client *c, const bench_stream_t *s, bench_bar_t *bar,
                      bench_run_t *out, char *err, size_t errlen);

/* Submit one task job, await it, then the next: warmup untimed round
 * trips, then n timed ones whose durations (µs) go to us[0..n).  Returns
 * BENCH_OK, or BENCH_FAILED / BENCH_TIMEOUT with a message. */
int bench_load_latency(qj_client *c, const char *task, const void *args, size_t args_len,
                       size_t n, size_t warmup, int timeout_ms, bench_bar_t *bar, double *us,
                       char *err, size_t errlen);

#endif
