/* bench_mode.c -- the measurements of qclient bench (bench_mode.h).
 *
 * Each mode connects its own clients (a batch size is a client option),
 * runs an untimed warm-up so that the first configuration does not pay
 * for page faults and connection set-up, then its timed runs; with
 * --vs-baseline each configuration is measured on qfwd right after qjob,
 * so that both see the same machine.
 */
#include "bench_mode.h"

#include <assert.h>
#include <math.h>
#include <msgpack.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "bench_fwd.h"
#include "bench_load.h"
#include "bench_stats.h"
#include "cli.h"

#define MODE_MAX_CONFIGS 64     /* split and batch configurations */
#define MODE_WARMUP_JOBS 1000   /* untimed jobs before a stream mode, at most N */

/* ------------------------------------------------------------ helpers */

static int s_code(int bench_rc)
{
    return bench_rc == BENCH_TIMEOUT ? CLI_TIMEOUT : CLI_FAILED;
}

static int s_timeout_ms(const bench_cfg_t *cfg)
{
    return (int)fmin(cfg->timeout_s * 1000.0, 2e9);
}

/* A client for this run, connected and welcomed. */
static int s_client(const bench_cfg_t *cfg, const bench_env_t *env, int batch_max,
                    uint64_t inflight, qj_client **out, char *err, size_t errlen)
{
    qj_options o;
    qj_options_init(&o);
    o.broker = env->broker;
    o.batch_max = batch_max;
    o.max_inflight = inflight > 10000 ? (int)inflight : 0;
    o.name = "qclient-bench";
    o.curve_secret = env->curve_secret;
    o.broker_key = env->broker_key;
    qj_client *c = qj_client_new(&o, err, errlen);
    if (!c)
        return CLI_USAGE;
    if (qj_client_ready(c, (int)(cfg->connect_s * 1000)) < 0) {
        snprintf(err, errlen, "cannot reach the broker at %s (no answer within %g s)",
                 env->broker, cfg->connect_s);
        qj_client_destroy(&c);
        return CLI_UNREACHABLE;
    }
    *out = c;
    return CLI_OK;
}

/* The argument of every stream job: a bin of payload bytes. */
static size_t s_arg_bytes(const bench_cfg_t *cfg)
{
    return cfg->args ? cfg->args_len : cfg->payload;
}

/* Each job's argument: --args as given, else a bin of --payload bytes. */
static void s_payload_args(const bench_cfg_t *cfg, msgpack_sbuffer *sb)
{
    if (cfg->args) {
        msgpack_sbuffer_write(sb, cfg->args, cfg->args_len);
        return;
    }
    size_t payload = cfg->payload;
    static const char xs[256] = {'x'};
    msgpack_packer pk;
    msgpack_packer_init(&pk, sb, msgpack_sbuffer_write);
    msgpack_pack_bin(&pk, payload);
    for (size_t done = 0; done < payload; done += sizeof xs)
        msgpack_pack_bin_body(&pk, xs, payload - done < sizeof xs ? payload - done : sizeof xs);
}

static double s_proc_cpu(const bench_proc_t *p)
{
    double v = p ? bench_proc_cpu(p) : -1;
    return v < 0 ? NAN : v;
}

static bench_table_t *s_table(bench_out_t *out, const char *name, const char *title)
{
    assert(out->ntables < BENCH_MAX_TABLES);
    bench_table_t *t = bench_table_new(name, title);
    if (t)
        out->tables[out->ntables++] = t;
    return t;
}

static int s_col(bench_table_t *t, const char *key, const char *head, int decimals)
{
    int c = bench_table_column(t, key, head, decimals);
    assert(c >= 0);
    return c;
}

static void s_warm(qj_client *c, const bench_cfg_t *cfg, const msgpack_sbuffer *args)
{
    uint64_t n = cfg->jobs < MODE_WARMUP_JOBS ? cfg->jobs : MODE_WARMUP_JOBS;
    bench_stream_t s = {cfg->task, args->data, args->size, n, cfg->window < n ? cfg->window : n,
                        1, s_timeout_ms(cfg)};
    bench_run_t r;
    char err[256];
    bench_load_stream(c, &s, NULL, &r, err, sizeof err);   /* a real run reports failures */
}

static void s_warm_fwd(bench_fwd_t *f, const bench_cfg_t *cfg)
{
    bench_run_t r;
    char err[256];
    uint64_t n = cfg->jobs < MODE_WARMUP_JOBS ? cfg->jobs : MODE_WARMUP_JOBS;
    bench_fwd_stream(f, cfg->payload, n, 100, 1, s_timeout_ms(cfg), NULL, &r, err, sizeof err);
}

static int s_fwd(const bench_cfg_t *cfg, const bench_env_t *env, bench_fwd_t **out, char *err,
                 size_t errlen)
{
    bench_fwd_t *f = bench_fwd_new(env->fwd, env->fwd_key, err, errlen);
    if (!f)
        return CLI_USAGE;
    int rc = bench_fwd_ready(f, (int)(cfg->connect_s * 1000), err, errlen);
    if (rc != BENCH_OK) {
        bench_fwd_destroy(&f);
        return rc == BENCH_TIMEOUT ? CLI_UNREACHABLE : CLI_FAILED;
    }
    s_warm_fwd(f, cfg);
    *out = f;
    return CLI_OK;
}

/* ------------------------------------------------------------ split */

typedef struct split_row {
    uint64_t n, size;
    bench_summary_t t;
} split_row_t;

static int s_split_runs(const bench_cfg_t *cfg, bench_env_t *env, qj_client *c,
                        split_row_t *rows, int nrows, char *err, size_t errlen)
{
    double *t = calloc((size_t)cfg->repeat, sizeof *t);
    if (!t) {
        snprintf(err, errlen, "out of memory");
        return CLI_FAILED;
    }
    msgpack_sbuffer args;
    msgpack_sbuffer_init(&args);
    char what[96];
    int rc = CLI_OK;
    /* The first run is a warm-up, not timed. */
    for (int i = 0; i < nrows && rc == CLI_OK; i++) {
        args.size = 0;
        msgpack_packer pk;
        msgpack_packer_init(&pk, &args, msgpack_sbuffer_write);
        msgpack_pack_map(&pk, 1);
        msgpack_pack_str_with_body(&pk, "samples", 7);
        msgpack_pack_uint64(&pk, rows[i].size);
        bench_stream_t s = {"pi", args.data, args.size, rows[i].n, rows[i].n, rows[i].n,
                            s_timeout_ms(cfg)};
        for (int r = i == 0 ? -1 : 0; r < cfg->repeat; r++) {
            bench_run_t run;
            snprintf(what, sizeof what, "split n=%llu %s %d/%d", (unsigned long long)rows[i].n,
                     r < 0 ? "warm-up" : "run", r < 0 ? 1 : r + 1, r < 0 ? 1 : cfg->repeat);
            bench_bar_begin(&env->bar, what, rows[i].n);
            int brc = bench_load_stream(c, &s, &env->bar, &run, err, errlen);
            if (brc != BENCH_OK) {
                rc = s_code(brc);
                break;
            }
            if (r >= 0)
                t[r] = run.secs;
        }
        if (rc == CLI_OK)
            bench_stats_summary(t, (size_t)cfg->repeat, &rows[i].t);
    }
    bench_bar_clear(&env->bar);
    msgpack_sbuffer_destroy(&args);
    free(t);
    return rc;
}

/* The transport's cost per job for the split pattern (all n at once),
 * for --vs-baseline: seconds per job through qfwd. */
static int s_split_baseline(const bench_cfg_t *cfg, bench_env_t *env, double *per_job,
                            char *err, size_t errlen)
{
    bench_fwd_t *f = NULL;
    int rc = s_fwd(cfg, env, &f, err, errlen);
    if (rc != CLI_OK)
        return rc;
    uint64_t jobs = cfg->max_n * 8 > 20000 ? cfg->max_n * 8 : 20000;
    bench_run_t run;
    bench_bar_begin(&env->bar, "split baseline (qfwd)", jobs);
    int brc = bench_fwd_stream(f, 16, jobs, cfg->max_n, 1, s_timeout_ms(cfg), &env->bar, &run,
                               err, errlen);
    bench_bar_clear(&env->bar);
    bench_fwd_destroy(&f);
    if (brc != BENCH_OK)
        return s_code(brc);
    *per_job = run.secs / (double)run.jobs;
    return CLI_OK;
}

static void s_split_plot(const bench_cfg_t *cfg, const bench_env_t *env, bench_out_t *out,
                         const split_row_t *rows, int nrows, const bench_fit_t *fit)
{
    char sub[160];
    snprintf(sub, sizeof sub, "W = %llu pi samples in all, %d worker slots, median of %d runs "
             "(bars: min-max)", (unsigned long long)cfg->work, env->slots, cfg->repeat);
    bench_plot_t *p = bench_plot_new("qjob: one job cut into n jobs", sub, "jobs n",
                                     BENCH_AXIS_LOG2, "wall time (s)", BENCH_AXIS_LOG10);
    if (!p)
        return;
    int med = bench_plot_series(p, "measured (median)", BENCH_STYLE_MARKERS);
    /* No more than one job per worker slot runs at once: past that, the
     * ideal time stays flat. */
    int ideal = bench_plot_series(p, "ideal: T(1) / min(n, slots)", BENCH_STYLE_DASHED);
    double slots = env->slots > 0 ? env->slots : 1;
    int fl = fit ? bench_plot_series(p, "fit: a + b n", BENCH_STYLE_DASHED) : -1;
    for (int i = 0; i < nrows; i++) {
        double n = (double)rows[i].n;
        bench_plot_point(p, med, n, rows[i].t.median, rows[i].t.min, rows[i].t.max);
        bench_plot_point(p, ideal, n, rows[0].t.median * fmin((double)rows[0].n, slots) /
                                          fmin(n, slots), NAN, NAN);
        if (fit && rows[i].n >= cfg->fit_from)
            bench_plot_point(p, fl, n, fit->intercept + fit->slope * n, NAN, NAN);
    }
    out->plot = p;
}

static int s_split(const bench_cfg_t *cfg, bench_env_t *env, bench_out_t *out, char *err,
                   size_t errlen)
{
    split_row_t rows[MODE_MAX_CONFIGS];
    int nrows = 0;
    for (uint64_t n = cfg->min_n; n <= cfg->max_n && nrows < MODE_MAX_CONFIGS; n *= 2)
        rows[nrows++] = (split_row_t){n, cfg->work / n > 0 ? cfg->work / n : 1, {0}};
    qj_client *c = NULL;
    int rc = s_client(cfg, env, 0, cfg->max_n, &c, err, errlen);
    if (rc == CLI_OK)
        rc = s_split_runs(cfg, env, c, rows, nrows, err, errlen);
    qj_client_destroy(&c);
    double base = NAN;
    if (rc == CLI_OK && cfg->vs_baseline)
        rc = s_split_baseline(cfg, env, &base, err, errlen);
    if (rc != CLI_OK)
        return rc;

    double fx[MODE_MAX_CONFIGS], fy[MODE_MAX_CONFIGS];
    size_t nfit = 0;
    for (int i = 0; i < nrows; i++)
        if (rows[i].n >= cfg->fit_from) {
            fx[nfit] = (double)rows[i].n;
            fy[nfit++] = rows[i].t.median;
        }
    bench_fit_t fit;
    bool have_fit = bench_stats_fit(fx, fy, nfit, &fit) == 0;

    bench_table_t *t = s_table(out, "split", "split: W pi samples cut into n jobs "
                                             "(wall time of all n, seconds)");
    if (!t)
        return CLI_FAILED;
    int cn = s_col(t, "n", "n", 0), cs = s_col(t, "job_size", "samples/job", 0);
    int cmed = s_col(t, "median_s", "median s", 4), cmin = s_col(t, "min_s", "min s", 4);
    int cmax = s_col(t, "max_s", "max s", 4), csp = s_col(t, "speedup", "speed-up", 2);
    int cjps = s_col(t, "jobs_per_s", "jobs/s", 0), cfit = s_col(t, "fit_s", "fit s", 4);
    for (int i = 0; i < nrows; i++) {
        int r = bench_table_row(t);
        double n = (double)rows[i].n;
        bench_table_set(t, r, cn, n);
        bench_table_set(t, r, cs, (double)rows[i].size);
        bench_table_set(t, r, cmed, rows[i].t.median);
        bench_table_set(t, r, cmin, rows[i].t.min);
        bench_table_set(t, r, cmax, rows[i].t.max);
        bench_table_set(t, r, csp, rows[0].t.median / rows[i].t.median);
        bench_table_set(t, r, cjps, n / rows[i].t.median);
        if (have_fit && rows[i].n >= cfg->fit_from)
            bench_table_set(t, r, cfit, fit.intercept + fit.slope * n);
    }
    bench_table_note(t, "speed-up: median time at n = %llu over median time at n; %d runs each, "
                     "%d worker slots", (unsigned long long)rows[0].n, cfg->repeat, env->slots);
    if (have_fit) {
        bench_table_note(t, "per-job overhead: %.2f us (least-squares fit over n >= %llu, %zu "
                         "points: T(n) = %.4f s + %.2f us x n, r^2 = %.4f)",
                         fit.slope * 1e6, (unsigned long long)cfg->fit_from, fit.n,
                         fit.intercept, fit.slope * 1e6, fit.r2);
        bench_table_meta(t, "overhead_us", fit.slope * 1e6);
        bench_table_meta(t, "fit_intercept_s", fit.intercept);
        bench_table_meta(t, "fit_r2", fit.r2);
        bench_table_meta(t, "fit_points", (double)fit.n);
    } else {
        bench_table_note(t, "per-job overhead: no fit (it needs 2 configurations with n >= %llu; "
                         "see --fit-from)", (unsigned long long)cfg->fit_from);
    }
    bench_table_meta(t, "fit_from", (double)cfg->fit_from);
    bench_table_meta(t, "work", (double)cfg->work);
    if (cfg->vs_baseline) {
        bench_table_note(t, "baseline: qfwd moves one job in %.2f us (one job per message, "
                         "window %llu)", base * 1e6, (unsigned long long)cfg->max_n);
        if (have_fit)
            bench_table_note(t, "per-job overhead / baseline cost per job = %.2f",
                             fit.slope / base);
        bench_table_meta(t, "baseline_us", base * 1e6);
    }
    s_split_plot(cfg, env, out, rows, nrows, have_fit ? &fit : NULL);
    return CLI_OK;
}

/* ------------------------------------------------------------ batch */

/* What a batch run of qjob measured, for the --auto comparison. */
typedef struct batch_fig {
    uint64_t k;           /* jobs per message: fixed, or the mean of the adaptive run */
    uint64_t messages;
    double secs, rate, client_cpu_us, broker_cpu_us;
} batch_fig_t;

/* batch --auto: jobs submitted one at a time with the client's adaptive
 * batching (batch_max 0), after a warm-up that gives it its figures, next
 * to the best fixed k of the sweep. */
static int s_batch_auto(const bench_cfg_t *cfg, bench_env_t *env, bench_out_t *out,
                        const msgpack_sbuffer *args, const batch_fig_t *best, char *err,
                        size_t errlen)
{
    uint64_t window = cfg->window > 4 * best->k ? cfg->window : 4 * best->k;
    qj_client *c = NULL;
    int rc = s_client(cfg, env, 0, window, &c, err, errlen);
    if (rc != CLI_OK)
        return rc;
    s_warm(c, cfg, args);
    qj_batch_info info;
    qj_client_batch_info(c, &info);
    double srv0 = s_proc_cpu(env->broker_proc);
    bench_stream_t s = {cfg->task, args->data, args->size, cfg->jobs, window, 1,
                        s_timeout_ms(cfg)};
    bench_run_t run = {0};
    bench_bar_begin(&env->bar, "batch adaptive", cfg->jobs);
    int brc = bench_load_stream(c, &s, &env->bar, &run, err, errlen);
    bench_bar_clear(&env->bar);
    qj_batch_info after;
    qj_client_batch_info(c, &after);
    qj_client_destroy(&c);
    if (brc != BENCH_OK)
        return s_code(brc);
    batch_fig_t a = {run.messages ? (run.jobs + run.messages - 1) / run.messages : 0,
                     run.messages, run.secs, (double)run.jobs / run.secs,
                     run.cpu_secs * 1e6 / (double)run.jobs,
                     (s_proc_cpu(env->broker_proc) - srv0) * 1e6 / (double)run.jobs};

    bench_table_t *t = s_table(out, "batch_auto", "batch --auto: adaptive batching against "
                                                  "the best fixed k (qjob)");
    if (!t)
        return CLI_FAILED;
    int cw = s_col(t, "system", "", BENCH_TEXT), ck = s_col(t, "k", "jobs/msg", 0);
    int cm = s_col(t, "messages", "messages", 0), cs = s_col(t, "secs", "secs", 3);
    int cj = s_col(t, "jobs_per_s", "jobs/s", 0), cu = s_col(t, "us_per_job", "us/job", 2);
    int ccpu = s_col(t, "client_cpu_us", "client cpu us/job", 2);
    int csrv = env->broker_proc ? s_col(t, "server_cpu_us", "broker cpu us/job", 2) : -1;
    int cr = s_col(t, "vs_best", "vs best k", 3);
    for (int i = 0; i < 2; i++) {
        const batch_fig_t *f = i == 0 ? &a : best;
        int r = bench_table_row(t);
        bench_table_set_text(t, r, cw, i == 0 ? "adaptive" : "best fixed k");
        bench_table_set(t, r, ck, (double)f->k);
        bench_table_set(t, r, cm, (double)f->messages);
        bench_table_set(t, r, cs, f->secs);
        bench_table_set(t, r, cj, f->rate);
        bench_table_set(t, r, cu, 1e6 / f->rate);
        bench_table_set(t, r, ccpu, f->client_cpu_us);
        if (csrv >= 0)
            bench_table_set(t, r, csrv, f->broker_cpu_us);
        bench_table_set(t, r, cr, f->rate / best->rate);
    }
    bench_table_note(t, "adaptive: one qj_submit at a time, batch_max 0, window %llu; the "
                     "client aimed at %u jobs per message (a SUBMIT's round trip %.0f us, a "
                     "job's compute %.1f us: communication under %.0f%% of compute)",
                     (unsigned long long)window, after.batch, after.msg_us, after.job_us,
                     100 * after.share);
    bench_table_note(t, "jobs/msg: mean jobs per SUBMIT; before the timed run the warm-up's "
                     "results gave %s figures", info.msg_us > 0 && info.job_us > 0 ? "the"
                                                                                  : "no");
    bench_table_meta(t, "auto_batch", after.batch);
    bench_table_meta(t, "auto_msg_us", after.msg_us);
    bench_table_meta(t, "auto_job_us", after.job_us);
    return CLI_OK;
}

static int s_batch(const bench_cfg_t *cfg, bench_env_t *env, bench_out_t *out, bool qjob,
                   char *err, size_t errlen)
{
    bool fwd = !qjob || cfg->vs_baseline;
    bench_table_t *t = s_table(out, "batch", qjob ? "batch: N jobs sent k per message (qjob)"
                                                  : "batch: N jobs sent k per message (qfwd)");
    if (!t)
        return CLI_FAILED;
    int ck = s_col(t, "k", "k", 0), cm = s_col(t, "messages", "messages", 0);
    int cs = s_col(t, "secs", "secs", 3), cj = s_col(t, "jobs_per_s", "jobs/s", 0);
    int cu = s_col(t, "us_per_job", "us/job", 2);
    int ccpu = s_col(t, "client_cpu_us", "client cpu us/job", 2);
    bench_proc_t *server = qjob ? env->broker_proc : env->fwd_proc;
    int csrv = server ? s_col(t, "server_cpu_us", qjob ? "broker cpu us/job" : "qfwd cpu us/job",
                              2) : -1;
    int cb = qjob && fwd ? s_col(t, "baseline_jobs_per_s", "qfwd jobs/s", 0) : -1;
    int cr = qjob && fwd ? s_col(t, "vs_baseline", "vs qfwd", 3) : -1;

    char sub[160];
    snprintf(sub, sizeof sub, "N = %llu jobs of %zu bytes", (unsigned long long)cfg->jobs,
             cfg->payload);
    bench_plot_t *p = bench_plot_new("Jobs per second against jobs per message", sub,
                                     "jobs per message k", BENCH_AXIS_LOG2, "jobs/s",
                                     BENCH_AXIS_LOG10);
    out->plot = p;
    int sq = qjob && p ? bench_plot_series(p, "qjob (broker + workers)", BENCH_STYLE_MARKERS) : -1;
    int sf = fwd && p ? bench_plot_series(p, "qfwd (bare ZeroMQ forwarder)", BENCH_STYLE_MARKERS)
                      : -1;

    msgpack_sbuffer args;
    msgpack_sbuffer_init(&args);
    s_payload_args(cfg, &args);
    bench_fwd_t *f = NULL;
    int rc = fwd ? s_fwd(cfg, env, &f, err, errlen) : CLI_OK;
    char what[96];
    batch_fig_t best = {0};
    for (uint64_t k = cfg->k_min; k <= cfg->k_max && rc == CLI_OK; k *= 2) {
        uint64_t window = cfg->window > 4 * k ? cfg->window : 4 * k;
        int r = bench_table_row(t);
        bench_table_set(t, r, ck, (double)k);
        bench_table_set(t, r, cm, ceil((double)cfg->jobs / (double)k));
        bench_run_t run = {0};
        double srv0 = s_proc_cpu(server);
        if (qjob) {
            qj_client *c = NULL;
            rc = s_client(cfg, env, (int)k, window, &c, err, errlen);
            if (rc != CLI_OK)
                break;
            s_warm(c, cfg, &args);
            srv0 = s_proc_cpu(server);
            bench_stream_t s = {cfg->task, args.data, args.size, cfg->jobs, window, k,
                                s_timeout_ms(cfg)};
            snprintf(what, sizeof what, "batch k=%llu", (unsigned long long)k);
            bench_bar_begin(&env->bar, what, cfg->jobs);
            int brc = bench_load_stream(c, &s, &env->bar, &run, err, errlen);
            qj_client_destroy(&c);
            if (brc != BENCH_OK) {
                rc = s_code(brc);
                break;
            }
        } else {
            snprintf(what, sizeof what, "batch (qfwd) k=%llu", (unsigned long long)k);
            bench_bar_begin(&env->bar, what, cfg->jobs);
            int brc = bench_fwd_stream(f, cfg->payload, cfg->jobs, window, k, s_timeout_ms(cfg),
                                       &env->bar, &run, err, errlen);
            if (brc != BENCH_OK) {
                rc = s_code(brc);
                break;
            }
            bench_table_set(t, r, cm, (double)run.messages);
        }
        double rate = (double)run.jobs / run.secs;
        double srv_us = (s_proc_cpu(server) - srv0) * 1e6 / (double)run.jobs;
        bench_table_set(t, r, cs, run.secs);
        bench_table_set(t, r, cj, rate);
        bench_table_set(t, r, cu, run.secs * 1e6 / (double)run.jobs);
        bench_table_set(t, r, ccpu, run.cpu_secs * 1e6 / (double)run.jobs);
        if (csrv >= 0)
            bench_table_set(t, r, csrv, srv_us);
        if (qjob && rate > best.rate)
            best = (batch_fig_t){k, (cfg->jobs + k - 1) / k, run.secs, rate,
                                 run.cpu_secs * 1e6 / (double)run.jobs, srv_us};
        if (p)
            bench_plot_point(p, qjob ? sq : sf, (double)k, rate, NAN, NAN);
        if (qjob && fwd) {
            bench_run_t b;
            snprintf(what, sizeof what, "batch (qfwd) k=%llu", (unsigned long long)k);
            bench_bar_begin(&env->bar, what, cfg->jobs);
            int brc = bench_fwd_stream(f, cfg->payload, cfg->jobs, window, k, s_timeout_ms(cfg),
                                       &env->bar, &b, err, errlen);
            if (brc != BENCH_OK) {
                rc = s_code(brc);
                break;
            }
            double brate = (double)b.jobs / b.secs;
            bench_table_set(t, r, cb, brate);
            bench_table_set(t, r, cr, rate / brate);
            if (p)
                bench_plot_point(p, sf, (double)k, brate, NAN, NAN);
        }
    }
    bench_bar_clear(&env->bar);
    bench_fwd_destroy(&f);
    bench_table_note(t, "task %s, %zu-byte argument, window max(%llu, 4k) jobs in flight%s",
                     qjob ? cfg->task : "echo", s_arg_bytes(cfg), (unsigned long long)cfg->window,
                     cr >= 0 ? "; vs qfwd = qjob jobs/s / qfwd jobs/s" : "");
    if (rc == CLI_OK && qjob && cfg->batch_auto && best.rate > 0)
        rc = s_batch_auto(cfg, env, out, &args, &best, err, errlen);
    msgpack_sbuffer_destroy(&args);
    return rc;
}

/* ------------------------------------------------------------ latency */

static const struct {
    const char *name;
    double p;
} s_pcts[] = {{"p50", 50}, {"p90", 90}, {"p99", 99}, {"p99.9", 99.9}, {"max", 100}};

#define NPCTS (sizeof s_pcts / sizeof s_pcts[0])

/* The distribution of us[0..n) (sorted) as a plot series of about 200
 * points, denser in the tail. */
static void s_cdf(bench_plot_t *p, int series, const double *us, size_t n)
{
    for (int i = 0; i <= 200; i++) {
        double q = i <= 180 ? i * 99.0 / 180 : 99 + (i - 180) * 1.0 / 20;
        bench_plot_point(p, series, bench_stats_percentile(us, n, q), q, NAN, NAN);
    }
}

static int s_latency(const bench_cfg_t *cfg, bench_env_t *env, bench_out_t *out, bool qjob,
                     char *err, size_t errlen)
{
    bool fwd = !qjob || cfg->vs_baseline;
    size_t n = cfg->rounds;
    double *q = calloc(n, sizeof *q), *b = calloc(n, sizeof *b);
    if (!q || !b) {
        free(q);
        free(b);
        snprintf(err, errlen, "out of memory for %zu round trips", n);
        return CLI_FAILED;
    }
    int rc = CLI_OK;
    if (qjob) {
        msgpack_sbuffer args;
        msgpack_sbuffer_init(&args);
        s_payload_args(cfg, &args);
        qj_client *c = NULL;
        rc = s_client(cfg, env, 0, 0, &c, err, errlen);
        if (rc == CLI_OK) {
            bench_bar_begin(&env->bar, "latency", n);
            int brc = bench_load_latency(c, cfg->task, args.data, args.size, n, cfg->warmup,
                                         s_timeout_ms(cfg), &env->bar, q, err, errlen);
            if (brc != BENCH_OK)
                rc = s_code(brc);
        }
        qj_client_destroy(&c);
        msgpack_sbuffer_destroy(&args);
    }
    bench_fwd_t *f = NULL;
    if (rc == CLI_OK && fwd)
        rc = s_fwd(cfg, env, &f, err, errlen);
    if (rc == CLI_OK && fwd) {
        bench_bar_begin(&env->bar, "latency (qfwd)", n);
        int brc = bench_fwd_latency(f, cfg->payload, n, cfg->warmup, s_timeout_ms(cfg),
                                    &env->bar, b, err, errlen);
        if (brc != BENCH_OK)
            rc = s_code(brc);
    }
    bench_fwd_destroy(&f);
    bench_bar_clear(&env->bar);
    bench_table_t *t = rc == CLI_OK ? s_table(out, "latency", qjob ? "latency: one job at a "
                                              "time, round trip (us)" : "latency: one job at a "
                                              "time through qfwd, round trip (us)") : NULL;
    if (t) {
        bench_summary_t sq, sb;
        if (qjob)
            bench_stats_summary(q, n, &sq);
        if (fwd)
            bench_stats_summary(b, n, &sb);
        int cst = s_col(t, "stat", "", BENCH_TEXT);
        int cq = qjob ? s_col(t, "us", "qjob us", 1) : -1;
        int cb = fwd ? s_col(t, qjob ? "baseline_us" : "us", "qfwd us", 1) : -1;
        int cr = qjob && fwd ? s_col(t, "vs_baseline", "vs qfwd", 2) : -1;
        for (size_t i = 0; i <= NPCTS; i++) {
            int r = bench_table_row(t);
            bool mean = i == NPCTS;
            bench_table_set_text(t, r, cst, mean ? "mean" : s_pcts[i].name);
            double vq = qjob ? (mean ? sq.mean : bench_stats_percentile(q, n, s_pcts[i].p)) : NAN;
            double vb = fwd ? (mean ? sb.mean : bench_stats_percentile(b, n, s_pcts[i].p)) : NAN;
            if (cq >= 0)
                bench_table_set(t, r, cq, vq);
            if (cb >= 0)
                bench_table_set(t, r, cb, vb);
            if (cr >= 0)
                bench_table_set(t, r, cr, vq / vb);
        }
        bench_table_note(t, "%zu round trips after %zu untimed; task %s, %zu-byte argument%s", n,
                         cfg->warmup, qjob ? cfg->task : "echo", s_arg_bytes(cfg),
                         cr >= 0 ? "; vs qfwd = qjob / qfwd" : "");
        char sub[96];
        snprintf(sub, sizeof sub, "%zu sequential round trips of one job", n);
        bench_plot_t *p = bench_plot_new("Round-trip latency, cumulative", sub,
                                         "round trip (us)", BENCH_AXIS_LOG10,
                                         "% of round trips at most", BENCH_AXIS_LINEAR);
        if (p && qjob)
            s_cdf(p, bench_plot_series(p, "qjob", BENCH_STYLE_LINE), q, n);
        if (p && fwd)
            s_cdf(p, bench_plot_series(p, "qfwd (bare ZeroMQ)", BENCH_STYLE_LINE), b, n);
        out->plot = p;
    }
    free(q);
    free(b);
    return rc;
}

/* ------------------------------------------------------------ throughput */

static int s_throughput(const bench_cfg_t *cfg, bench_env_t *env, bench_out_t *out, bool qjob,
                        char *err, size_t errlen)
{
    bool fwd = !qjob || cfg->vs_baseline;
    bench_run_t q = {0}, b = {0};
    double srv_q = NAN, srv_b = NAN;
    int rc = CLI_OK;
    if (qjob) {
        msgpack_sbuffer args;
        msgpack_sbuffer_init(&args);
        s_payload_args(cfg, &args);
        qj_client *c = NULL;
        rc = s_client(cfg, env, 0, cfg->window, &c, err, errlen);
        if (rc == CLI_OK) {
            s_warm(c, cfg, &args);
            bench_stream_t s = {cfg->task, args.data, args.size, cfg->jobs, cfg->window, 1,
                                s_timeout_ms(cfg)};
            double c0 = s_proc_cpu(env->broker_proc);
            bench_bar_begin(&env->bar, "throughput", cfg->jobs);
            int brc = bench_load_stream(c, &s, &env->bar, &q, err, errlen);
            srv_q = s_proc_cpu(env->broker_proc) - c0;
            if (brc != BENCH_OK)
                rc = s_code(brc);
        }
        qj_client_destroy(&c);
        msgpack_sbuffer_destroy(&args);
    }
    bench_fwd_t *f = NULL;
    if (rc == CLI_OK && fwd)
        rc = s_fwd(cfg, env, &f, err, errlen);
    if (rc == CLI_OK && fwd) {
        double c0 = s_proc_cpu(env->fwd_proc);
        bench_bar_begin(&env->bar, "throughput (qfwd)", cfg->jobs);
        int brc = bench_fwd_stream(f, cfg->payload, cfg->jobs, cfg->window, 1, s_timeout_ms(cfg),
                                   &env->bar, &b, err, errlen);
        srv_b = s_proc_cpu(env->fwd_proc) - c0;
        if (brc != BENCH_OK)
            rc = s_code(brc);
    }
    bench_fwd_destroy(&f);
    bench_bar_clear(&env->bar);
    if (rc != CLI_OK)
        return rc;
    bench_table_t *t = s_table(out, "throughput", "throughput: N jobs, at most W in flight");
    if (!t)
        return CLI_FAILED;
    int cw = s_col(t, "system", "", BENCH_TEXT), cn = s_col(t, "jobs", "jobs", 0);
    int cwin = s_col(t, "window", "window", 0), cs = s_col(t, "secs", "secs", 3);
    int cj = s_col(t, "jobs_per_s", "jobs/s", 0), cu = s_col(t, "us_per_job", "us/job", 2);
    int ccpu = s_col(t, "client_cpu_us", "client cpu us/job", 2);
    int csrv = s_col(t, "server_cpu_us", "server cpu us/job", 2);
    int cr = qjob && fwd ? s_col(t, "vs_baseline", "vs qfwd", 3) : -1;
    for (int i = 0; i < 2; i++) {
        const bench_run_t *run = i == 0 ? &q : &b;
        if ((i == 0 && !qjob) || (i == 1 && !fwd))
            continue;
        int r = bench_table_row(t);
        bench_table_set_text(t, r, cw, i == 0 ? "qjob" : "qfwd");
        bench_table_set(t, r, cn, (double)run->jobs);
        bench_table_set(t, r, cwin, (double)cfg->window);
        bench_table_set(t, r, cs, run->secs);
        bench_table_set(t, r, cj, (double)run->jobs / run->secs);
        bench_table_set(t, r, cu, run->secs * 1e6 / (double)run->jobs);
        bench_table_set(t, r, ccpu, run->cpu_secs * 1e6 / (double)run->jobs);
        bench_table_set(t, r, csrv, (i == 0 ? srv_q : srv_b) * 1e6 / (double)run->jobs);
        if (cr >= 0)
            bench_table_set(t, r, cr, ((double)run->jobs / run->secs) /
                                      ((double)b.jobs / b.secs));
    }
    bench_table_note(t, "task %s, %zu-byte argument; %sqfwd sends one job per message", qjob ?
                     cfg->task : "echo", s_arg_bytes(cfg), qjob ? "qjob batches submits itself, " : "");
    bench_table_note(t, "server cpu: of the qbroker or qfwd process, when this run started it");
    return CLI_OK;
}

/* ------------------------------------------------------------ modes */

int bench_mode_run(const bench_cfg_t *cfg, bench_env_t *env, bench_out_t *out, char *err,
                   size_t errlen)
{
    memset(out, 0, sizeof *out);
    const char *m = cfg->mode;
    if (!strcmp(m, "split"))
        return s_split(cfg, env, out, err, errlen);
    if (!strcmp(m, "batch"))
        return s_batch(cfg, env, out, true, err, errlen);
    if (!strcmp(m, "latency"))
        return s_latency(cfg, env, out, true, err, errlen);
    if (!strcmp(m, "throughput"))
        return s_throughput(cfg, env, out, true, err, errlen);
    assert(!strcmp(m, "baseline"));
    /* The batch curve is the baseline's plot, not the latency one. */
    int rc = s_latency(cfg, env, out, false, err, errlen);
    bench_plot_destroy(&out->plot);
    if (rc == CLI_OK)
        rc = s_throughput(cfg, env, out, false, err, errlen);
    if (rc == CLI_OK)
        rc = s_batch(cfg, env, out, false, err, errlen);
    return rc;
}

void bench_mode_out_free(bench_out_t *out)
{
    for (int i = 0; i < out->ntables; i++)
        bench_table_destroy(&out->tables[i]);
    out->ntables = 0;
    bench_plot_destroy(&out->plot);
}
