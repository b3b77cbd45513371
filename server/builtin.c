/* builtin.c -- the built-in tasks (builtin.h). */
#include "builtin.h"

#include "ctx.h"

#include <inttypes.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>

/* Points the pi task computes between two yields: about a millisecond of
 * work, so other coroutines of the process get a turn that often. */
#define PI_CHUNK (1u << 20)
/* Sub-jobs pi_split submits at most. */
#define PI_MAX_PARTS 65536

static int s_noop(qj_ctx *ctx)
{
    (void)ctx;
    return 0;
}

/* Returns the argument bytes as they came, undecoded; an explicit nil
 * gives the same empty result as no arguments. */
static int s_echo(qj_ctx *ctx)
{
    size_t len;
    const void *args = qj_args_mp(ctx, &len);
    if (!args || (len == 1 && *(const unsigned char *)args == 0xc0))
        return qj_return_nil(ctx);
    return qj_return_mp(ctx, args, len) == 0
               ? 0 : qj_fail(ctx, "echo: out of memory copying the arguments");
}

static int s_sleep(qj_ctx *ctx)
{
    int64_t ms = qj_arg_int(ctx, "ms", -1);
    if (ms < 0 || ms > 86400000)
        return qj_fail(ctx, "sleep takes {\"ms\": N} with 0 <= N <= 86400000");
    return qj_sleep(ctx, (long)ms);
}

static int s_fail(qj_ctx *ctx)
{
    return qj_fail(ctx, "%s", qj_arg_str(ctx, "message", "failed on purpose (task 'fail')"));
}

/* splitmix64's output function: a bijection of 64-bit words whose every
 * output bit depends on every input bit.  Turns a seed into a start. */
static inline uint64_t s_mix(uint64_t z)
{
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
    return z ^ (z >> 31);
}

uint64_t builtin_pi_hits(uint64_t seed, uint64_t first, uint64_t n)
{
    /* Point i comes from wyrand (Wang Yi's generator) at counter
     * start + (i + 1) * WY_INC: one 64x64->128-bit multiply per point, and
     * no dependency between points but an addition, so the CPU overlaps
     * them (about 1.7 ns a point here, against 3 to 6 for splitmix64).
     * The counter form makes any split of the work draw the same points.
     * The two 31-bit halves of the output are x and y in [0, 2^31); the
     * point is inside when x^2 + y^2 < (2^31)^2, which fits in 63 bits. */
    const uint64_t WY_INC = 0xa0761d6478bd642full, WY_XOR = 0xe7037ed1a0b428dbull;
    uint64_t s = s_mix(seed) + first * WY_INC;
    uint64_t hits = 0;
    for (uint64_t i = 0; i < n; i++) {
        s += WY_INC;
        __uint128_t t = (__uint128_t)s * (s ^ WY_XOR);
        uint64_t r = (uint64_t)(t >> 64) ^ (uint64_t)t;
        uint64_t x = r >> 33, y = r & 0x7fffffffu;
        hits += x * x + y * y < (1ull << 62);
    }
    return hits;
}

static int s_pi(qj_ctx *ctx)
{
    int64_t samples = qj_arg_int(ctx, "samples", -1);
    if (samples < 1)
        return qj_fail(ctx, "pi takes {\"samples\": N} with N >= 1 (and optionally \"seed\")");
    uint64_t seed = (uint64_t)qj_arg_int(ctx, "seed", (int64_t)qj_ctx_job_id(ctx));
    uint64_t n = (uint64_t)samples, hits = 0;
    for (uint64_t done = 0; done < n;) {
        uint64_t chunk = n - done < PI_CHUNK ? n - done : PI_CHUNK;
        hits += builtin_pi_hits(seed, done, chunk);
        done += chunk;
        if (done < n && qj_yield(ctx) != 0)
            return -1;
    }
    return qj_return_double(ctx, 4.0 * (double)hits / (double)n);
}

/* Cancel and free the first n sub-jobs. */
static void s_drop(qj_job **jobs, size_t n, bool cancel)
{
    for (size_t i = 0; i < n; i++) {
        char err[128];
        if (cancel && !qj_job_done(jobs[i]))
            qj_cancel(jobs[i], err, sizeof err);
        qj_job_free(&jobs[i]);
    }
    free(jobs);
}

static int s_pi_split(qj_ctx *ctx)
{
    int64_t samples = qj_arg_int(ctx, "samples", -1);
    int64_t parts = qj_arg_int(ctx, "parts", -1);
    if (samples < 1 || parts < 1 || parts > PI_MAX_PARTS || parts > samples)
        return qj_fail(ctx, "pi_split takes {\"samples\": N, \"parts\": P} with "
                       "1 <= P <= N and P <= %d", PI_MAX_PARTS);
    qj_client *c = qj_ctx_client(ctx);
    if (!c)
        return qj_fail(ctx, "pi_split: no client for sub-jobs in this context");
    uint64_t seed = s_mix((uint64_t)qj_arg_int(ctx, "seed", (int64_t)qj_ctx_job_id(ctx)));
    size_t np = (size_t)parts;
    qj_job **jobs = calloc(np, sizeof *jobs);
    if (!jobs)
        return qj_fail(ctx, "pi_split: out of memory for %zu sub-jobs", np);
    qj_submit_opts o;
    qj_submit_opts_init(&o);
    o.queue = qj_ctx_queue(ctx);
    for (size_t i = 0; i < np; i++) {
        uint64_t n = (uint64_t)samples / np + (i < (uint64_t)samples % np);
        char args[96], err[256];
        snprintf(args, sizeof args, "{\"samples\": %" PRIu64 ", \"seed\": %" PRId64 "}", n,
                 (int64_t)(seed + i));
        if (!(jobs[i] = qj_submit_json(c, "pi", args, &o, err, sizeof err))) {
            s_drop(jobs, i, true);
            return qj_fail(ctx, "pi_split: cannot submit part %zu: %s", i + 1, err);
        }
    }
    if (qj_gather(jobs, np, -1) != 0 || qj_cancelled(ctx)) {
        s_drop(jobs, np, true);
        return qj_cancelled(ctx) ? -1 : qj_fail(ctx, "pi_split: waiting for the parts failed");
    }
    double sum = 0;
    for (size_t i = 0; i < np; i++) {
        uint64_t n = (uint64_t)samples / np + (i < (uint64_t)samples % np);
        char *v = qj_job_status(jobs[i]) == QJ_OK ? qj_job_value_json(jobs[i]) : NULL;
        char *end = NULL;
        double est = v ? strtod(v, &end) : 0;
        bool ok = v && end != v && *end == '\0';
        free(v);
        if (!ok) {
            int rc = qj_fail(ctx, "pi_split: part %zu (job %" PRIu64 ") ended %s: %s", i + 1,
                             qj_job_id(jobs[i]), qj_status_name(qj_job_status(jobs[i])),
                             qj_job_error(jobs[i]) ? qj_job_error(jobs[i]) : "not a number");
            s_drop(jobs, np, false);
            return rc;
        }
        sum += est * (double)n;
    }
    s_drop(jobs, np, false);
    return qj_return_double(ctx, sum / (double)samples);
}

int builtin_register(qj_registry *reg)
{
    static const struct {
        const char *name;
        qj_task_fn fn;
        const char *help;
    } tasks[] = {
        {"noop", s_noop, "does nothing, returns nil"},
        {"echo", s_echo, "returns its arguments"},
        {"sleep", s_sleep, "{\"ms\": N}: sleeps N ms without holding the process"},
        {"pi", s_pi, "{\"samples\": N[, \"seed\": S]}: Monte-Carlo estimate of pi"},
        {"fail", s_fail, "{\"message\": M}: fails with M"},
        {"pi_split", s_pi_split,
         "{\"samples\": N, \"parts\": P}: pi over P sub-jobs, averaged"},
    };
    for (size_t i = 0; i < sizeof tasks / sizeof tasks[0]; i++)
        if (qj_register(reg, tasks[i].name, tasks[i].fn, tasks[i].help) != 0)
            return -1;
    return 0;
}
