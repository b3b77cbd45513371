/* example_tasks.c -- an example qjob task plugin.
 *
 * Build it as a shared object and load it into qworker:
 *
 *     cc -shared -fPIC -o example_tasks.so example_tasks.c $(pkg-config --cflags msgpack)
 *     qworker --tasks ./example_tasks.so
 *     qclient submit wordcount '{"text": "to be or not to be"}'     # prints 6
 *
 * A plugin exports one function, qjob_plugin_init(), which qworker calls
 * once, before it forks its worker processes; it registers each task by
 * name.  It is not linked against libqjob: the qj_* functions it calls are
 * qworker's own (qworker exports them).
 *
 * A task is a function int task(qj_ctx *ctx).  It reads its arguments
 * with qj_arg_int / qj_arg_str / qj_args ..., sets its result with one of
 * qj_return_* (the last call wins; no call means nil) and returns 0; or it
 * returns qj_fail(ctx, "why").  It runs in a coroutine: a task that takes
 * long should call qj_yield (or qj_sleep) now and then, which lets the
 * other jobs of its process run and returns -1 once the job is cancelled.
 * A task may submit sub-jobs through qj_ctx_client(ctx) and wait for them
 * with qj_await / qj_gather: while it waits, its worker slot is lent to
 * other jobs, so a job may wait for jobs that wait for jobs.
 */
#include <ctype.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <time.h>

#include "qjob.h"

/* wordcount {"text": "..."} -> the number of words (runs of non-space). */
static int wordcount(qj_ctx *ctx)
{
    const char *text = qj_arg_str(ctx, "text", NULL);
    if (!text)
        return qj_fail(ctx, "wordcount takes {\"text\": \"...\"}");
    int64_t words = 0;
    for (const char *p = text; *p;) {
        while (*p && isspace((unsigned char)*p))
            p++;
        if (*p)
            words++;
        while (*p && !isspace((unsigned char)*p))
            p++;
    }
    return qj_return_int(ctx, words);
}

/* fib {"n": N} -> the Nth Fibonacci number (0 <= N <= 92: it fits 64 bits). */
static int fib(qj_ctx *ctx)
{
    int64_t n = qj_arg_int(ctx, "n", -1);
    if (n < 0 || n > 92)
        return qj_fail(ctx, "fib takes {\"n\": N} with 0 <= N <= 92");
    int64_t a = 0, b = 1;
    for (int64_t i = 0; i < n; i++) {
        int64_t t = a + b;
        a = b;
        b = t;
    }
    return qj_return_int(ctx, a);
}

/* countdown {"from": N, "ms": M} -> N, after N steps of M ms, reporting
 * progress at each step (qclient status shows it).  qj_sleep returns -1
 * when the job is cancelled: the task then stops at once. */
static int countdown(qj_ctx *ctx)
{
    int64_t from = qj_arg_int(ctx, "from", -1), ms = qj_arg_int(ctx, "ms", 100);
    if (from < 0 || ms < 0 || ms > 60000)
        return qj_fail(ctx, "countdown takes {\"from\": N, \"ms\": M} with N >= 0 and "
                       "0 <= M <= 60000");
    for (int64_t i = 0; i < from; i++) {
        char note[32];
        snprintf(note, sizeof note, "%" PRId64 " to go", from - i);
        if (qj_progress(ctx, (uint64_t)i, (uint64_t)from, note) != 0 || qj_sleep(ctx, (long)ms) != 0)
            return -1;   /* cancelled: the job ends "cancelled" */
    }
    return qj_return_int(ctx, from);
}

/* tree {"depth": D, "fanout": F} -> how many jobs the tree had.
 *
 * A job of depth D > 0 submits F jobs of depth D - 1 and waits for all of
 * them, so a tree of depth 3 has jobs waiting for jobs waiting for jobs.
 * It finishes however few worker slots there are, because a job waiting
 * for sub-jobs lends its slot. */
static int tree(qj_ctx *ctx)
{
    int64_t depth = qj_arg_int(ctx, "depth", -1);
    int64_t fanout = qj_arg_int(ctx, "fanout", 2);
    if (depth < 0 || depth > 10 || fanout < 1 || fanout > 100)
        return qj_fail(ctx, "tree takes {\"depth\": D, \"fanout\": F} with 0 <= D <= 10 "
                       "and 1 <= F <= 100");
    if (depth == 0)
        return qj_return_int(ctx, 1);

    qj_client *c = qj_ctx_client(ctx);
    qj_job *kids[100];
    char args[64], err[256];
    snprintf(args, sizeof args, "{\"depth\": %" PRId64 ", \"fanout\": %" PRId64 "}", depth - 1,
             fanout);
    int64_t n = 0;
    for (; n < fanout; n++)
        if (!(kids[n] = qj_submit_json(c, "tree", args, NULL, err, sizeof err)))
            break;
    int rc = 0;
    int64_t total = 1;
    if (n < fanout)
        rc = qj_fail(ctx, "tree: cannot submit a sub-job: %s", err);
    else if (qj_gather(kids, (size_t)n, -1) != 0)
        rc = qj_cancelled(ctx) ? -1 : qj_fail(ctx, "tree: waiting for sub-jobs failed");
    for (int64_t i = 0; i < n; i++) {
        if (rc == 0) {
            char *v = qj_job_status(kids[i]) == QJ_OK ? qj_job_value_json(kids[i]) : NULL;
            if (v)
                total += strtoll(v, NULL, 10);
            else
                rc = qj_fail(ctx, "tree: sub-job %" PRIu64 " ended %s: %s", qj_job_id(kids[i]),
                             qj_status_name(qj_job_status(kids[i])),
                             qj_job_error(kids[i]) ? qj_job_error(kids[i]) : "no value");
            free(v);
        }
        qj_job_free(&kids[i]);
    }
    return rc == 0 ? qj_return_int(ctx, total) : rc;
}

/* spin {"ms": N} -> N, after busy-looping N ms WITHOUT yielding: the wrong
 * way to write a long task, kept to show timeouts.  Its coroutine never
 * gives the thread back, so the job cannot be stopped from inside its
 * process; with --job-timeout, the supervisor kills the worker process
 * half a second past the timeout, starts another, and the job ends as
 * timeout (or is retried). */
static int spin(qj_ctx *ctx)
{
    int64_t ms = qj_arg_int(ctx, "ms", -1);
    if (ms < 0 || ms > 3600000)
        return qj_fail(ctx, "spin takes {\"ms\": N} with 0 <= N <= 3600000");
    struct timespec t0, t;
    clock_gettime(CLOCK_MONOTONIC, &t0);
    do
        clock_gettime(CLOCK_MONOTONIC, &t);
    while ((t.tv_sec - t0.tv_sec) * 1000 + (t.tv_nsec - t0.tv_nsec) / 1000000 < ms);
    return qj_return_int(ctx, ms);
}

/* Called once by qworker --tasks: register the tasks.  Returns 0 or -1. */
int qjob_plugin_init(qj_registry *reg)
{
    if (qj_register(reg, "wordcount", wordcount, "{\"text\": T}: number of words in T") != 0 ||
        qj_register(reg, "fib", fib, "{\"n\": N}: the Nth Fibonacci number") != 0 ||
        qj_register(reg, "countdown", countdown,
                    "{\"from\": N, \"ms\": M}: N steps of M ms with progress") != 0 ||
        qj_register(reg, "tree", tree, "{\"depth\": D, \"fanout\": F}: a tree of sub-jobs") != 0 ||
        qj_register(reg, "spin", spin,
                    "{\"ms\": N}: busy-loops N ms without yielding (shows timeouts)") != 0)
        return -1;
    return 0;
}
