/* bench_msg.c -- cost of the wire codec on the messages of the hot path.
 *
 * Encodes and decodes the messages a job's life costs (SUBMIT of 1 and 64
 * jobs, JOBS, RESULTS both ways, ACCEPTED), filled as the client, broker
 * and worker fill them for a small job, and prints nanoseconds per message
 * and per item.  The loop count is the first argument (items per case,
 * default 2000000); under callgrind give a small one, and a second
 * argument to run only the cases whose name contains it:
 *   valgrind --tool=callgrind tests/bench/bench_msg 20000 "jobs x64"
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "msg.h"

#define MAX_ITEMS 64

static double s_now(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static const char s_args[] = "\xc4\x10xxxxxxxxxxxxxxxx"; /* bin of 16 bytes, as qclient bench */
static const char s_worker[] = "bench-host:123456/0";
static const uint64_t T0 = 1700000000000000ull;     /* a unix µs timestamp */

static msg_job_t s_jobs[MAX_ITEMS];
static msg_result_t s_results[MAX_ITEMS];
static msg_ack_t s_acks[MAX_ITEMS];

/* A SUBMIT job as the client library fills it. */
static void s_submit_jobs(uint32_t n)
{
    for (uint32_t i = 0; i < n; i++)
        s_jobs[i] = (msg_job_t){.ref = 1000000 + i, .task = {"noop", 4},
                                .args = {s_args, sizeof s_args - 1}, .t_submit = T0 + i};
}

/* A JOBS job as the broker fills it. */
static void s_jobs_jobs(uint32_t n)
{
    for (uint32_t i = 0; i < n; i++)
        s_jobs[i] = (msg_job_t){.id = 5000000 + i, .task = {"noop", 4},
                                .args = {s_args, sizeof s_args - 1}, .queue = {"default", 7},
                                .attempt = 1, .t_submit = T0 + i};
}

/* RESULTS items: from a worker (to_client false) or from the broker. */
static void s_result_items(uint32_t n, bool to_client)
{
    for (uint32_t i = 0; i < n; i++) {
        msg_result_t *r = &s_results[i];
        *r = (msg_result_t){.id = 5000000 + i, .st = MSG_ST_OK, .attempts = 1,
                            .worker = {s_worker, sizeof s_worker - 1},
                            .t = {.submitted = T0 + i, .started = T0 + 900 + i,
                                  .finished = T0 + 905 + i}};
        if (to_client) {
            r->ref = 1000000 + i;
            r->t.queued = T0 + 300 + i;
            r->t.dispatched = T0 + 600 + i;
        }
    }
}

static void s_ack_items(uint32_t n)
{
    for (uint32_t i = 0; i < n; i++)
        s_acks[i] = (msg_ack_t){.ref = 1000000 + i, .id = 5000000 + i};
}

typedef struct bcase {
    const char *name;
    msg_t m;
    uint32_t items;
} bcase_t;

static const char *s_only;   /* run only the cases whose name contains this */

static int s_run(const bcase_t *c, long total_items)
{
    if (s_only && !strstr(c->name, s_only))
        return 0;
    msgpack_sbuffer sb;
    msgpack_sbuffer_init(&sb);
    msg_reader_t *r = msg_reader_new();
    char err[256];
    long reps = total_items / (c->items ? c->items : 1);
    if (reps < 1)
        reps = 1;
    if (!r || msg_encode(&sb, &c->m, err, sizeof err) != 0) {
        fprintf(stderr, "bench_msg: %s does not encode: %s\n", c->name, r ? err : "no memory");
        return -1;
    }
    size_t bytes = sb.size;
    double t0 = s_now();
    for (long i = 0; i < reps; i++)
        msg_encode(&sb, &c->m, err, sizeof err);
    double t1 = s_now();
    msg_t out;
    for (long i = 0; i < reps; i++)
        if (msg_decode(r, sb.data, sb.size, &out, err, sizeof err) != QJ_E_OK) {
            fprintf(stderr, "bench_msg: %s does not decode: %s\n", c->name, err);
            return -1;
        }
    double t2 = s_now();
    double n = (double)reps, items = c->items ? (double)c->items : 1;
    printf("%-22s %6zu B  encode %8.0f ns/msg %7.1f ns/item   decode %8.0f ns/msg %7.1f "
           "ns/item\n", c->name, bytes, (t1 - t0) / n * 1e9, (t1 - t0) / n / items * 1e9,
           (t2 - t1) / n * 1e9, (t2 - t1) / n / items * 1e9);
    msg_reader_destroy(&r);
    msgpack_sbuffer_destroy(&sb);
    return 0;
}

int main(int argc, char **argv)
{
    long total = argc > 1 ? atol(argv[1]) : 2000000;
    if (total <= 0) {
        fprintf(stderr, "usage: bench_msg [ITEMS_PER_CASE [CASE]]\n");
        return 2;
    }
    s_only = argc > 2 ? argv[2] : NULL;
    int rc = 0;
    static const uint32_t sizes[] = {1, 64};
    for (size_t k = 0; k < 2; k++) {
        uint32_t n = sizes[k];
        char names[5][32];
        snprintf(names[0], 32, "submit x%u", n);
        snprintf(names[1], 32, "jobs x%u", n);
        snprintf(names[2], 32, "results(worker) x%u", n);
        snprintf(names[3], 32, "results(client) x%u", n);
        snprintf(names[4], 32, "accepted x%u", n);
        s_submit_jobs(n);
        rc |= s_run(&(bcase_t){names[0], {.cmd = MSG_SUBMIT, .jobs = s_jobs, .njobs = n}, n},
                    total);
        s_jobs_jobs(n);
        rc |= s_run(&(bcase_t){names[1], {.cmd = MSG_JOBS, .jobs = s_jobs, .njobs = n}, n},
                    total);
        s_result_items(n, false);
        rc |= s_run(&(bcase_t){names[2], {.cmd = MSG_RESULTS, .results = s_results,
                                          .nresults = n, .credit = n}, n}, total);
        s_result_items(n, true);
        rc |= s_run(&(bcase_t){names[3], {.cmd = MSG_RESULTS, .results = s_results,
                                          .nresults = n}, n}, total);
        s_ack_items(n);
        rc |= s_run(&(bcase_t){names[4], {.cmd = MSG_ACCEPTED, .acks = s_acks, .nacks = n}, n},
                    total);
    }
    rc |= s_run(&(bcase_t){"credit", {.cmd = MSG_CREDIT, .credit = 1}, 0}, total / 16);
    return rc ? 1 : 0;
}
