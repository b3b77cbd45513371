/* gm_bench.c -- load generator for gearmand with libgearman, for
 * tests/bench/peers.sh: the patterns qclient bench runs on qjob.
 *
 *   gm_bench -p PORT pipeline [-n JOBS] [-s BYTES] [-w WORKERS] [-b BATCH]
 *       WORKERS processes (forked here) run an echo function.  The client
 *       submits foreground jobs, BATCH at a time (gearman_client_add_task
 *       x BATCH, then gearman_client_run_tasks), so every result comes back
 *       to it, as with qjob.  Timed from the first submit to the last
 *       result.  Prints: jobs=N secs=S jobs_per_s=R
 *   gm_bench -p PORT latency [-n ROUNDS] [-s BYTES] [-W WARMUP]
 *       One worker; gearman_client_do, one job at a time.  Prints:
 *       rounds=N p50_us= p90_us= p99_us= p999_us= max_us=
 *
 * Workers stop on a STOP job (a background job, one per worker).  The
 * whole run is bounded by alarm(300), in each process.  Exit status 0, or
 * 1 with a message on stderr.
 */
#include <errno.h>
#include <libgearman/gearman.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#define GM_MAX_WORKERS 64
#define GM_FUNCTION "qjob_bench_echo"
#define GM_STOP "STOP"
#define GM_HOST "127.0.0.1"

static void die(const char *fmt, ...) __attribute__((format(printf, 1, 2), noreturn));

static void die(const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    fprintf(stderr, "gm_bench[%ld]: ", (long)getpid());
    vfprintf(stderr, fmt, ap);
    fputc('\n', stderr);
    va_end(ap);
    exit(1);
}

static double now_s(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static int s_stop;

/* The echo function: the result is a copy of the workload. */
static void *echo(gearman_job_st *job, void *context, size_t *result_size,
                  gearman_return_t *ret_ptr)
{
    (void)context;
    size_t n = gearman_job_workload_size(job);
    const void *w = gearman_job_workload(job);
    if (n == strlen(GM_STOP) && !memcmp(w, GM_STOP, n))
        s_stop = 1;
    void *r = malloc(n ? n : 1);
    if (!r) {
        *ret_ptr = GEARMAN_WORK_FAIL;
        return NULL;
    }
    memcpy(r, w, n);
    *result_size = n;
    *ret_ptr = GEARMAN_SUCCESS;
    return r;
}

static void worker(int port)
{
    alarm(300);   /* a fork does not inherit the parent's alarm */
    gearman_worker_st *w = gearman_worker_create(NULL);
    if (!w || gearman_worker_add_server(w, GM_HOST, (in_port_t)port) != GEARMAN_SUCCESS ||
        gearman_worker_add_function(w, GM_FUNCTION, 0, echo, NULL) != GEARMAN_SUCCESS)
        die("worker: cannot register with gearmand on port %d", port);
    while (!s_stop) {
        gearman_return_t rc = gearman_worker_work(w);
        if (rc != GEARMAN_SUCCESS)
            die("worker: %s", gearman_worker_error(w));
    }
    gearman_worker_free(w);
    exit(0);
}

static gearman_client_st *client(int port)
{
    gearman_client_st *c = gearman_client_create(NULL);
    if (!c || gearman_client_add_server(c, GM_HOST, (in_port_t)port) != GEARMAN_SUCCESS)
        die("cannot connect a client to gearmand on port %d", port);
    return c;
}

static pid_t *start_workers(int port, int n)
{
    pid_t *pids = calloc((size_t)n, sizeof *pids);
    for (int i = 0; i < n; i++) {
        pids[i] = fork();
        if (pids[i] == 0)
            worker(port);
        if (pids[i] < 0)
            die("fork: %s", strerror(errno));
    }
    return pids;
}

static void stop_workers(gearman_client_st *c, pid_t *pids, int n)
{
    for (int i = 0; i < n; i++)
        if (gearman_client_do_background(c, GM_FUNCTION, NULL, GM_STOP, strlen(GM_STOP), NULL) !=
            GEARMAN_SUCCESS)
            die("cannot send STOP: %s", gearman_client_error(c));
    for (int i = 0; i < n; i++) {
        int st;
        if (waitpid(pids[i], &st, 0) < 0 || !WIFEXITED(st) || WEXITSTATUS(st) != 0)
            die("worker %ld failed", (long)pids[i]);
    }
    free(pids);
}

/* Results that came back whole, counted as they complete: libgearman
 * hands a foreground job's data to this callback (gearman_task_result is
 * empty after run_tasks). */
typedef struct tally {
    size_t size;          /* bytes each result must have */
    long whole;
} tally_t;

static gearman_return_t on_complete(gearman_task_st *task)
{
    tally_t *t = gearman_task_context(task);
    if (gearman_task_data_size(task) == t->size)
        t->whole++;
    return GEARMAN_SUCCESS;
}

static int pipeline(int port, long jobs, size_t size, int workers, int batch)
{
    pid_t *pids = start_workers(port, workers);
    gearman_client_st *c = client(port);
    gearman_client_set_complete_fn(c, on_complete);
    tally_t tally = {size, 0};
    char *body = malloc(size);
    memset(body, 'x', size);
    gearman_task_st **tasks = calloc((size_t)batch, sizeof *tasks);
    double t0 = now_s();
    for (long done = 0; done < jobs;) {
        int b = jobs - done < batch ? (int)(jobs - done) : batch;
        for (int i = 0; i < b; i++) {
            gearman_return_t rc;
            tasks[i] = gearman_client_add_task(c, NULL, &tally, GM_FUNCTION, NULL, body, size,
                                               &rc);
            if (!tasks[i] || rc != GEARMAN_SUCCESS)
                die("add_task: %s", gearman_client_error(c));
        }
        if (gearman_client_run_tasks(c) != GEARMAN_SUCCESS)
            die("run_tasks: %s", gearman_client_error(c));
        for (int i = 0; i < b; i++) {
            if (gearman_task_return(tasks[i]) != GEARMAN_SUCCESS)
                die("a job failed: %s", gearman_strerror(gearman_task_return(tasks[i])));
            gearman_task_free(tasks[i]);
        }
        done += b;
    }
    double t1 = now_s();
    if (tally.whole != jobs)
        die("%ld of %ld results did not come back whole", jobs - tally.whole, jobs);
    stop_workers(c, pids, workers);
    printf("jobs=%ld secs=%.6f jobs_per_s=%.1f\n", jobs, t1 - t0, (double)jobs / (t1 - t0));
    gearman_client_free(c);
    free(tasks);
    free(body);
    return 0;
}

static int cmp_double(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}

/* The p-th percentile of sorted v[0..n), interpolated (as qclient bench). */
static double pct(const double *v, long n, double p)
{
    double h = (double)(n - 1) * p / 100.0;
    long lo = (long)h;
    if (lo >= n - 1)
        return v[n - 1];
    return v[lo] + (h - (double)lo) * (v[lo + 1] - v[lo]);
}

static int latency(int port, long rounds, size_t size, long warmup)
{
    pid_t *pids = start_workers(port, 1);
    gearman_client_st *c = client(port);
    char *body = malloc(size);
    memset(body, 'x', size);
    double *us = calloc((size_t)rounds, sizeof *us);
    for (long i = 0; i < warmup + rounds; i++) {
        double t0 = now_s();
        size_t n;
        gearman_return_t rc;
        void *r = gearman_client_do(c, GM_FUNCTION, NULL, body, size, &n, &rc);
        double t1 = now_s();
        if (rc != GEARMAN_SUCCESS || !r || n != size || memcmp(r, body, size) != 0)
            die("round trip %ld failed: %s", i + 1, gearman_client_error(c));
        free(r);
        if (i >= warmup)
            us[i - warmup] = (t1 - t0) * 1e6;
    }
    stop_workers(c, pids, 1);
    qsort(us, (size_t)rounds, sizeof *us, cmp_double);
    printf("rounds=%ld p50_us=%.1f p90_us=%.1f p99_us=%.1f p999_us=%.1f max_us=%.1f\n", rounds,
           pct(us, rounds, 50), pct(us, rounds, 90), pct(us, rounds, 99), pct(us, rounds, 99.9),
           us[rounds - 1]);
    gearman_client_free(c);
    free(us);
    free(body);
    return 0;
}

int main(int argc, char **argv)
{
    int port = 0, workers = 2, batch = 100, opt;
    long jobs = 100000, warmup = 500;
    size_t size = 16;
    while ((opt = getopt(argc, argv, "p:n:s:w:b:W:")) != -1) {
        switch (opt) {
        case 'p': port = atoi(optarg); break;
        case 'n': jobs = atol(optarg); break;
        case 's': size = (size_t)atol(optarg); break;
        case 'w': workers = atoi(optarg); break;
        case 'b': batch = atoi(optarg); break;
        case 'W': warmup = atol(optarg); break;
        default: return 2;
        }
    }
    if (optind != argc - 1 || port <= 0 || jobs < 1 || workers < 1 ||
        workers > GM_MAX_WORKERS || batch < 1 || warmup < 0 || size < 1) {
        fprintf(stderr, "usage: gm_bench -p PORT pipeline|latency [-n N] [-s BYTES] "
                        "[-w WORKERS] [-b BATCH] [-W WARMUP]\n");
        return 2;
    }
    signal(SIGPIPE, SIG_IGN);
    alarm(300);   /* and in each worker: nothing outlives a stuck run */
    if (!strcmp(argv[optind], "pipeline"))
        return pipeline(port, jobs, size, workers, batch);
    if (!strcmp(argv[optind], "latency"))
        return latency(port, jobs, size, warmup);
    fprintf(stderr, "gm_bench: unknown mode '%s' (pipeline or latency)\n", argv[optind]);
    return 2;
}
