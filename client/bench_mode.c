/* bench_mode.c -- the measurements of qclient bench (bench_mode.h).
 *
 * Each mode connects its own clients (a batch size is a client option),
 * runs an untimed warm-up so that the first configuration does not pay
 * for page faults and connection set-up, then R timed runs of each
 * configuration (--repeat), whose figures are shown as medians.  With
 * --vs-baseline the runs alternate qjob, qfwd, qjob, qfwd ... so that each
 * pair sees the same machine, and "vs qfwd" is the median of the R paired
 * ratios: on a noisy machine that cancels the drift a ratio of medians
 * keeps.
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
#include "bench_runs.h"
#include "bench_stats.h"
#include "cli.h"

#define MODE_MAX_CONFIGS 64     /* split and batch configurations */
#define MODE_WARMUP_JOBS 1000   /* untimed jobs before a stream mode, at most N */
#define MODE_LINE 96            /* bytes of a progress bar's line */

/* ------------------------------------------------------------ helpers */

static int s_code(int bench_rc)
{
    return bench_rc == BENCH_TIMEOUT ? CLI_TIMEOUT : CLI_FAILED;
}

/* CLI_OK if ok, else CLI_FAILED with a message. */
static int s_no_memory(bool ok, char *err, size_t errlen)
{
    if (!ok)
        snprintf(err, errlen, "out of memory");
    return ok ? CLI_OK : CLI_FAILED;
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

/* ------------------------------------------------------------ measuring */

/* What a mode measures through, and what it measured. */
typedef struct meas {
    qj_client *c;             /* qjob, or NULL: not measured (or not connected yet) */
    bench_fwd_t *f;           /* qfwd, or NULL: not measured */
    msgpack_sbuffer args;     /* the argument of each qjob job */
    bench_runs_t *q, *b;      /* the configuration at hand: qjob's runs, qfwd's */
} meas_t;

/* Set m up: the jobs' argument, room for cfg->repeat runs, a qjob client
 * if client (batch_max 0, inflight jobs in flight), qfwd if fwd.  Returns
 * a qclient exit code; m is for s_meas_close either way. */
static int s_meas_open(const bench_cfg_t *cfg, const bench_env_t *env, bool client, bool fwd,
                       uint64_t inflight, meas_t *m, char *err, size_t errlen)
{
    memset(m, 0, sizeof *m);
    msgpack_sbuffer_init(&m->args);
    s_payload_args(cfg, &m->args);
    m->q = bench_runs_new(cfg->repeat);
    m->b = bench_runs_new(cfg->repeat);
    int rc = s_no_memory(m->q && m->b, err, errlen);
    if (rc == CLI_OK && client)
        rc = s_client(cfg, env, 0, inflight, &m->c, err, errlen);
    if (rc == CLI_OK && fwd)
        rc = s_fwd(cfg, env, &m->f, err, errlen);
    return rc;
}

static void s_meas_close(meas_t *m)
{
    qj_client_destroy(&m->c);
    bench_fwd_destroy(&m->f);
    msgpack_sbuffer_destroy(&m->args);
    bench_runs_destroy(&m->q);
    bench_runs_destroy(&m->b);
}

/* Run r of the stream s (what names it on the bar): on qjob if m->c,
 * then on qfwd if m->f, into m->q and m->b. */
static int s_stream_pair(const bench_cfg_t *cfg, bench_env_t *env, meas_t *m,
                         const bench_stream_t *s, const char *what, int r, char *err,
                         size_t errlen)
{
    char line[MODE_LINE];
    bench_run_t run;
    if (m->c) {
        snprintf(line, sizeof line, "%s run %d/%d", what, r + 1, cfg->repeat);
        bench_bar_begin(&env->bar, line, s->jobs);
        double cpu0 = s_proc_cpu(env->broker_proc);
        int brc = bench_load_stream(m->c, s, &env->bar, &run, err, errlen);
        if (brc != BENCH_OK)
            return s_code(brc);
        bench_runs_stream(m->q, &run, s_proc_cpu(env->broker_proc) - cpu0);
    }
    if (m->f) {
        snprintf(line, sizeof line, "%s (qfwd) run %d/%d", what, r + 1, cfg->repeat);
        bench_bar_begin(&env->bar, line, s->jobs);
        double cpu0 = s_proc_cpu(env->fwd_proc);
        int brc = bench_fwd_stream(m->f, cfg->payload, s->jobs, s->window, s->group,
                                   s->timeout_ms, &env->bar, &run, err, errlen);
        if (brc != BENCH_OK)
            return s_code(brc);
        bench_runs_stream(m->b, &run, s_proc_cpu(env->fwd_proc) - cpu0);
    }
    return CLI_OK;
}

/* The R runs of the stream s, qjob's and qfwd's alternating. */
static int s_stream_runs(const bench_cfg_t *cfg, bench_env_t *env, meas_t *m,
                         const bench_stream_t *s, const char *what, char *err, size_t errlen)
{
    bench_runs_reset(m->q);
    bench_runs_reset(m->b);
    int rc = CLI_OK;
    for (int r = 0; r < cfg->repeat && rc == CLI_OK; r++)
        rc = s_stream_pair(cfg, env, m, s, what, r, err, errlen);
    return rc;
}

/* ------------------------------------------------------------ split */

typedef struct split_row {
    uint64_t n, size;
    bench_runs_t *runs;       /* one per round */
    bench_summary_t t;        /* wall time of the runs */
    bench_summary_t vs_ref;   /* time over the reference n's, round by round */
    double client_us;         /* median CPU per job of qclient */
    double broker_us;         /* and of the broker (NAN unless this run started it) */
} split_row_t;

/* One run of row's jobs, all submitted at once. */
static int s_split_run(const bench_cfg_t *cfg, bench_env_t *env, meas_t *m, split_row_t *row,
                       const char *what, char *err, size_t errlen)
{
    m->args.size = 0;
    msgpack_packer pk;
    msgpack_packer_init(&pk, &m->args, msgpack_sbuffer_write);
    msgpack_pack_map(&pk, 1);
    msgpack_pack_str_with_body(&pk, "samples", 7);
    msgpack_pack_uint64(&pk, row->size);
    bench_stream_t s = {"pi", m->args.data, m->args.size, row->n, row->n, row->n,
                        s_timeout_ms(cfg)};
    bench_run_t run;
    bench_bar_begin(&env->bar, what, row->n);
    double cpu0 = s_proc_cpu(env->broker_proc);
    int brc = bench_load_stream(m->c, &s, &env->bar, &run, err, errlen);
    if (brc != BENCH_OK)
        return s_code(brc);
    if (row->runs)
        bench_runs_stream(row->runs, &run, s_proc_cpu(env->broker_proc) - cpu0);
    return CLI_OK;
}

/* R rounds, each running every n once in turn: a host whose speed drifts
 * (as a shared VM's does by tens of percent within seconds) then touches
 * every n alike, and the ratio of two n's within a round cancels it. */
static int s_split_runs(const bench_cfg_t *cfg, bench_env_t *env, meas_t *m,
                        split_row_t *rows, int nrows, int ref, char *err, size_t errlen)
{
    char what[MODE_LINE];
    split_row_t warm = rows[0];
    warm.runs = NULL;
    int rc = s_split_run(cfg, env, m, &warm, "split warm-up", err, errlen);
    for (int r = 0; r < cfg->repeat && rc == CLI_OK; r++)
        for (int i = 0; i < nrows && rc == CLI_OK; i++) {
            snprintf(what, sizeof what, "split round %d/%d n=%llu", r + 1, cfg->repeat,
                     (unsigned long long)rows[i].n);
            rc = s_split_run(cfg, env, m, &rows[i], what, err, errlen);
        }
    bench_bar_clear(&env->bar);
    for (int i = 0; i < nrows && rc == CLI_OK; i++) {
        bench_runs_summary(rows[i].runs, BENCH_FIG_SECS, &rows[i].t);
        bench_runs_ratio(rows[i].runs, rows[ref].runs, BENCH_FIG_SECS, &rows[i].vs_ref);
        rows[i].client_us = bench_runs_median(rows[i].runs, BENCH_FIG_CPU);
        rows[i].broker_us = bench_runs_median(rows[i].runs, BENCH_FIG_SRV);
    }
    return rc;
}

/* The transport's cost per job for the split pattern (all n at once),
 * for --vs-baseline: seconds per job through qfwd (median of the runs). */
static int s_split_baseline(const bench_cfg_t *cfg, bench_env_t *env, meas_t *m,
                            double *per_job, char *err, size_t errlen)
{
    qj_client_destroy(&m->c);   /* qfwd alone from here */
    int rc = s_fwd(cfg, env, &m->f, err, errlen);
    uint64_t jobs = cfg->max_n * 8 > 20000 ? cfg->max_n * 8 : 20000;
    bench_stream_t s = {"echo", NULL, 0, jobs, cfg->max_n, 1, s_timeout_ms(cfg)};
    if (rc == CLI_OK)
        rc = s_stream_runs(cfg, env, m, &s, "split baseline", err, errlen);
    bench_bar_clear(&env->bar);
    if (rc == CLI_OK)
        *per_job = bench_runs_median(m->b, BENCH_FIG_US) / 1e6;
    return rc;
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
    int nrows = 0, ref = 0;
    bool have_runs = true;
    for (uint64_t n = cfg->min_n; n <= cfg->max_n && nrows < MODE_MAX_CONFIGS; n *= 2) {
        /* The reference: the first n that keeps every slot busy. */
        if (n <= (uint64_t)(env->slots > 0 ? env->slots : 1))
            ref = nrows;
        rows[nrows] = (split_row_t){.n = n, .size = cfg->work / n > 0 ? cfg->work / n : 1,
                                    .runs = bench_runs_new(cfg->repeat)};
        have_runs = have_runs && rows[nrows++].runs;
    }
    meas_t m;
    int rc = s_meas_open(cfg, env, true, false, cfg->max_n, &m, err, errlen);
    if (rc == CLI_OK)
        rc = s_no_memory(have_runs, err, errlen);
    if (rc == CLI_OK)
        rc = s_split_runs(cfg, env, &m, rows, nrows, ref, err, errlen);
    for (int i = 0; i < nrows; i++)
        bench_runs_destroy(&rows[i].runs);
    double base = NAN;
    if (rc == CLI_OK && cfg->vs_baseline)
        rc = s_split_baseline(cfg, env, &m, &base, err, errlen);
    s_meas_close(&m);
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
    int cjps = s_col(t, "jobs_per_s", "jobs/s", 0);
    int ccpu = s_col(t, "client_cpu_us", "client cpu us/job", 2);
    int csrv = env->broker_proc ? s_col(t, "server_cpu_us", "broker cpu us/job", 2) : -1;
    char ref_head[40];
    snprintf(ref_head, sizeof ref_head, "vs n=%llu", (unsigned long long)rows[ref].n);
    int cref = s_col(t, "vs_ref", ref_head, 2), cref_min = -1, cref_max = -1;
    if (cfg->repeat > 1) {
        cref_min = s_col(t, "vs_ref_min", "min", 2);
        cref_max = s_col(t, "vs_ref_max", "max", 2);
        bench_table_spread(t, cref, cref_min, cref_max);
    }
    int cfit = s_col(t, "fit_s", "fit s", 4);
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
        bench_table_set(t, r, ccpu, rows[i].client_us);
        if (csrv >= 0)
            bench_table_set(t, r, csrv, rows[i].broker_us);
        bench_table_set(t, r, cref, rows[i].vs_ref.median);
        if (cref_min >= 0) {
            bench_table_set(t, r, cref_min, rows[i].vs_ref.min);
            bench_table_set(t, r, cref_max, rows[i].vs_ref.max);
        }
        if (have_fit && rows[i].n >= cfg->fit_from)
            bench_table_set(t, r, cfit, fit.intercept + fit.slope * n);
    }
    bench_table_note(t, "speed-up: median time at n = %llu over median time at n; %d worker "
                     "slots", (unsigned long long)rows[0].n, env->slots);
    bench_table_note(t, "%d rounds, each running every n once in turn; vs n=%llu: time at n over "
                     "time at n = %llu in the same round, median (min-max) over the rounds",
                     cfg->repeat, (unsigned long long)rows[ref].n,
                     (unsigned long long)rows[ref].n);
    bench_table_meta(t, "ref_n", (double)rows[ref].n);
    bench_table_note(t, "cpu us/job: of qclient%s, per job, median of the runs",
                     csrv >= 0 ? " and of the broker" : "");
    bench_table_meta(t, "runs", cfg->repeat);
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
                         "window %llu, median of %d runs)", base * 1e6,
                         (unsigned long long)cfg->max_n, cfg->repeat);
        if (have_fit)
            bench_table_note(t, "per-job overhead / baseline cost per job = %.2f",
                             fit.slope / base);
        bench_table_meta(t, "baseline_us", base * 1e6);
    }
    s_split_plot(cfg, env, out, rows, nrows, have_fit ? &fit : NULL);
    return CLI_OK;
}

/* ------------------------------------------------------------ batch */

/* The best fixed k of a batch sweep (by median jobs/s), for --auto. */
typedef struct batch_best {
    uint64_t k;               /* 0 until a k has been measured */
    double rate;              /* its median jobs/s */
    bench_runs_t *runs;       /* its runs */
} batch_best_t;

/* batch --auto: jobs submitted one at a time with the client's adaptive
 * batching (batch_max 0), after a warm-up that gives it its figures, next
 * to the best fixed k of the sweep.  m has no qfwd: qjob alone runs. */
static int s_batch_auto(const bench_cfg_t *cfg, bench_env_t *env, bench_out_t *out, meas_t *m,
                        const batch_best_t *best, char *err, size_t errlen)
{
    uint64_t window = cfg->window > 4 * best->k ? cfg->window : 4 * best->k;
    int rc = s_client(cfg, env, 0, window, &m->c, err, errlen);
    if (rc != CLI_OK)
        return rc;
    s_warm(m->c, cfg, &m->args);
    qj_batch_info info, after;
    qj_client_batch_info(m->c, &info);
    bench_stream_t s = {cfg->task, m->args.data, m->args.size, cfg->jobs, window, 1,
                        s_timeout_ms(cfg)};
    rc = s_stream_runs(cfg, env, m, &s, "batch adaptive", err, errlen);
    bench_bar_clear(&env->bar);
    qj_client_batch_info(m->c, &after);
    qj_client_destroy(&m->c);
    if (rc != CLI_OK)
        return rc;

    bench_table_t *t = s_table(out, "batch_auto", "batch --auto: adaptive batching against "
                                                  "the best fixed k (qjob)");
    if (!t)
        return CLI_FAILED;
    int cw = s_col(t, "system", "", BENCH_TEXT), ck = s_col(t, "k", "jobs/msg", 0);
    int cm = s_col(t, "messages", "messages", 0);
    bench_fig_cols_t fc;
    bench_runs_fig_cols(t, env->broker_proc ? "broker cpu us/job" : NULL, &fc);
    int cr = s_col(t, "vs_best", "vs best k", 3);
    double msgs = bench_runs_median(m->q, BENCH_FIG_MSGS), rate = bench_runs_median(m->q, BENCH_FIG_RATE);
    for (int i = 0; i < 2; i++) {
        int r = bench_table_row(t);
        bench_table_set_text(t, r, cw, i == 0 ? "adaptive" : "best fixed k");
        bench_table_set(t, r, ck, i == 0 ? ceil((double)cfg->jobs / msgs) : (double)best->k);
        bench_table_set(t, r, cm, i == 0 ? msgs : ceil((double)cfg->jobs / (double)best->k));
        bench_runs_fig_row(t, r, &fc, i == 0 ? m->q : best->runs);
        bench_table_set(t, r, cr, (i == 0 ? rate : best->rate) / best->rate);
    }
    bench_table_note(t, "adaptive: one qj_submit at a time, batch_max 0, window %llu; the "
                     "client aimed at %u jobs per message (a SUBMIT's round trip %.0f us, a "
                     "job's compute %.1f us: communication under %.0f%% of compute)",
                     (unsigned long long)window, after.batch, after.msg_us, after.job_us,
                     100 * after.share);
    bench_table_note(t, "jobs/msg: mean jobs per SUBMIT; before the timed runs the warm-up's "
                     "results gave %s figures", info.msg_us > 0 && info.job_us > 0 ? "the"
                                                                                  : "no");
    bench_runs_note(t, cfg->repeat, false);
    bench_table_note(t, "vs best k: median jobs/s over the best k's median jobs/s");
    bench_table_meta(t, "auto_batch", after.batch);
    bench_table_meta(t, "auto_msg_us", after.msg_us);
    bench_table_meta(t, "auto_job_us", after.job_us);
    return CLI_OK;
}

/* One row of the batch table per k: R runs of qjob (if qjob) and of qfwd
 * (if fwd) with k jobs per message, and the best k so far in *best. */
static int s_batch_sweep(const bench_cfg_t *cfg, bench_env_t *env, bench_out_t *out, bool qjob,
                         meas_t *m, batch_best_t *best, char *err, size_t errlen)
{
    bool fwd = m->f != NULL;
    bench_table_t *t = s_table(out, "batch", qjob ? "batch: N jobs sent k per message (qjob)"
                                                  : "batch: N jobs sent k per message (qfwd)");
    if (!t)
        return CLI_FAILED;
    int ck = s_col(t, "k", "k", 0), cm = s_col(t, "messages", "messages", 0);
    bench_proc_t *server = qjob ? env->broker_proc : env->fwd_proc;
    bench_fig_cols_t fc;
    bench_runs_fig_cols(t, !server ? NULL : qjob ? "broker cpu us/job" : "qfwd cpu us/job", &fc);
    int cb = qjob && fwd ? s_col(t, "baseline_jobs_per_s", "qfwd jobs/s", 0) : -1;
    bench_ratio_cols_t cr = qjob && fwd ? bench_runs_ratio_cols(t, cfg->repeat, 3) : bench_no_ratio;

    char sub[160];
    snprintf(sub, sizeof sub, "N = %llu jobs of %zu bytes%s", (unsigned long long)cfg->jobs,
             cfg->payload, cfg->repeat > 1 ? ", median of the runs (bars: min-max)" : "");
    bench_plot_t *p = bench_plot_new("Jobs per second against jobs per message", sub,
                                     "jobs per message k", BENCH_AXIS_LOG2, "jobs/s",
                                     BENCH_AXIS_LOG10);
    out->plot = p;
    int sq = qjob && p ? bench_plot_series(p, "qjob (broker + workers)", BENCH_STYLE_MARKERS) : -1;
    int sf = fwd && p ? bench_plot_series(p, "qfwd (bare ZeroMQ forwarder)", BENCH_STYLE_MARKERS)
                      : -1;
    char what[MODE_LINE];
    int rc = CLI_OK;
    for (uint64_t k = cfg->k_min; k <= cfg->k_max && rc == CLI_OK; k *= 2) {
        uint64_t window = cfg->window > 4 * k ? cfg->window : 4 * k;
        if (qjob) {
            rc = s_client(cfg, env, (int)k, window, &m->c, err, errlen);
            if (rc != CLI_OK)
                break;
            s_warm(m->c, cfg, &m->args);
        }
        bench_stream_t s = {cfg->task, m->args.data, m->args.size, cfg->jobs, window, k,
                            s_timeout_ms(cfg)};
        snprintf(what, sizeof what, "batch k=%llu", (unsigned long long)k);
        rc = s_stream_runs(cfg, env, m, &s, what, err, errlen);
        qj_client_destroy(&m->c);
        if (rc != CLI_OK)
            break;
        int r = bench_table_row(t);
        bench_table_set(t, r, ck, (double)k);
        bench_table_set(t, r, cm, qjob ? ceil((double)cfg->jobs / (double)k)
                                       : bench_runs_median(m->b, BENCH_FIG_MSGS));
        bench_runs_fig_row(t, r, &fc, qjob ? m->q : m->b);
        if (cb >= 0) {
            bench_table_set(t, r, cb, bench_runs_median(m->b, BENCH_FIG_RATE));
            bench_runs_ratio_row(t, r, &cr, m->q, m->b, BENCH_FIG_RATE);
        }
        if (qjob && bench_runs_median(m->q, BENCH_FIG_RATE) > best->rate) {
            best->k = k;
            best->rate = bench_runs_median(m->q, BENCH_FIG_RATE);
            bench_runs_copy(best->runs, m->q);
        }
        if (sq >= 0)
            bench_runs_point(p, sq, (double)k, m->q, BENCH_FIG_RATE);
        if (sf >= 0)
            bench_runs_point(p, sf, (double)k, m->b, BENCH_FIG_RATE);
    }
    bench_bar_clear(&env->bar);
    bench_table_note(t, "task %s, %zu-byte argument, window max(%llu, 4k) jobs in flight%s",
                     qjob ? cfg->task : "echo", s_arg_bytes(cfg), (unsigned long long)cfg->window,
                     cr.med >= 0 ? "; vs qfwd = qjob jobs/s / qfwd jobs/s" : "");
    bench_runs_note(t, cfg->repeat, cr.med >= 0);
    return rc;
}

static int s_batch(const bench_cfg_t *cfg, bench_env_t *env, bench_out_t *out, bool qjob,
                   char *err, size_t errlen)
{
    meas_t m;
    batch_best_t best = {0};
    int rc = s_meas_open(cfg, env, false, !qjob || cfg->vs_baseline, 0, &m, err, errlen);
    best.runs = bench_runs_new(cfg->repeat);
    if (rc == CLI_OK)
        rc = s_no_memory(best.runs != NULL, err, errlen);
    if (rc == CLI_OK)
        rc = s_batch_sweep(cfg, env, out, qjob, &m, &best, err, errlen);
    bench_fwd_destroy(&m.f);    /* the adaptive run is qjob's alone */
    if (rc == CLI_OK && qjob && cfg->batch_auto && best.k)
        rc = s_batch_auto(cfg, env, out, &m, &best, err, errlen);
    bench_runs_destroy(&best.runs);
    s_meas_close(&m);
    return rc;
}

/* ------------------------------------------------------------ latency */

static const struct {
    const char *name;
    double p;
} s_pcts[] = {{"p50", 50}, {"p90", 90}, {"p99", 99}, {"p99.9", 99.9}, {"max", 100}};

#define NPCTS (sizeof s_pcts / sizeof s_pcts[0])

_Static_assert(NPCTS + 1 <= BENCH_RUNS_FIGS, "a latency run's figures fit");

/* The distribution of us[0..n) (sorted) as a plot series of about 200
 * points, denser in the tail. */
static void s_cdf(bench_plot_t *p, int series, const double *us, size_t n)
{
    for (int i = 0; i <= 200; i++) {
        double q = i <= 180 ? i * 99.0 / 180 : 99 + (i - 180) * 1.0 / 20;
        bench_plot_point(p, series, bench_stats_percentile(us, n, q), q, NAN, NAN);
    }
}

/* Record a latency run: its round trips us[0..n), sorted here, as the
 * statistics of s_pcts and the mean. */
static void s_latency_record(bench_runs_t *rs, double *us, size_t n)
{
    bench_summary_t s;
    bench_stats_summary(us, n, &s);
    double figs[NPCTS + 1];
    for (size_t i = 0; i < NPCTS; i++)
        figs[i] = bench_stats_percentile(us, n, s_pcts[i].p);
    figs[NPCTS] = s.mean;
    bench_runs_add(rs, figs, (int)NPCTS + 1);
}

/* Latency run r: on qjob if m->c, then on qfwd if m->f; the round trips
 * into q[0..rounds) and b[0..rounds), their statistics into m->q, m->b.
 * The first run starts with the untimed round trips. */
static int s_latency_pair(const bench_cfg_t *cfg, bench_env_t *env, meas_t *m, int r,
                          double *q, double *b, char *err, size_t errlen)
{
    size_t n = cfg->rounds, warm = r == 0 ? cfg->warmup : 0;
    char line[MODE_LINE];
    if (m->c) {
        snprintf(line, sizeof line, "latency run %d/%d", r + 1, cfg->repeat);
        bench_bar_begin(&env->bar, line, n);
        int brc = bench_load_latency(m->c, cfg->task, m->args.data, m->args.size, n, warm,
                                     s_timeout_ms(cfg), &env->bar, q, err, errlen);
        if (brc != BENCH_OK)
            return s_code(brc);
        s_latency_record(m->q, q, n);
    }
    if (m->f) {
        snprintf(line, sizeof line, "latency (qfwd) run %d/%d", r + 1, cfg->repeat);
        bench_bar_begin(&env->bar, line, n);
        int brc = bench_fwd_latency(m->f, cfg->payload, n, warm, s_timeout_ms(cfg), &env->bar,
                                    b, err, errlen);
        if (brc != BENCH_OK)
            return s_code(brc);
        s_latency_record(m->b, b, n);
    }
    return CLI_OK;
}

/* The table and plot of a latency run: m's runs, and all round trips
 * q[0..all) and b[0..all) for the distribution. */
static int s_latency_out(const bench_cfg_t *cfg, bench_out_t *out, bool qjob, const meas_t *m,
                         double *q, double *b, size_t all)
{
    bool fwd = m->f != NULL;
    bench_table_t *t = s_table(out, "latency", qjob ? "latency: one job at a time, round trip "
                               "(us)" : "latency: one job at a time through qfwd, round trip "
                               "(us)");
    if (!t)
        return CLI_FAILED;
    int cst = s_col(t, "stat", "", BENCH_TEXT);
    int cq = qjob ? s_col(t, "us", "qjob us", 1) : -1;
    int cb = fwd ? s_col(t, qjob ? "baseline_us" : "us", "qfwd us", 1) : -1;
    bench_ratio_cols_t cr = qjob && fwd ? bench_runs_ratio_cols(t, cfg->repeat, 2) : bench_no_ratio;
    for (int i = 0; i <= (int)NPCTS; i++) {
        int r = bench_table_row(t);
        bench_table_set_text(t, r, cst, i == (int)NPCTS ? "mean" : s_pcts[i].name);
        if (cq >= 0)
            bench_table_set(t, r, cq, bench_runs_median(m->q, i));
        if (cb >= 0)
            bench_table_set(t, r, cb, bench_runs_median(m->b, i));
        if (cr.med >= 0)
            bench_runs_ratio_row(t, r, &cr, m->q, m->b, i);
    }
    bench_table_note(t, "%zu round trips after %zu untimed; task %s, %zu-byte argument%s",
                     cfg->rounds, cfg->warmup, qjob ? cfg->task : "echo", s_arg_bytes(cfg),
                     cr.med >= 0 ? "; vs qfwd = qjob / qfwd" : "");
    bench_runs_note(t, cfg->repeat, cr.med >= 0);
    char sub[96];
    snprintf(sub, sizeof sub, "%zu sequential round trips of one job (%d runs)", cfg->rounds,
             cfg->repeat);
    bench_plot_t *p = bench_plot_new("Round-trip latency, cumulative", sub, "round trip (us)",
                                     BENCH_AXIS_LOG10, "% of round trips at most",
                                     BENCH_AXIS_LINEAR);
    if (p && qjob) {
        bench_stats_sort(q, all);
        s_cdf(p, bench_plot_series(p, "qjob", BENCH_STYLE_LINE), q, all);
    }
    if (p && fwd) {
        bench_stats_sort(b, all);
        s_cdf(p, bench_plot_series(p, "qfwd (bare ZeroMQ)", BENCH_STYLE_LINE), b, all);
    }
    out->plot = p;
    return CLI_OK;
}

static int s_latency(const bench_cfg_t *cfg, bench_env_t *env, bench_out_t *out, bool qjob,
                     char *err, size_t errlen)
{
    size_t n = cfg->rounds, all = n * (size_t)cfg->repeat;
    double *q = calloc(all, sizeof *q), *b = calloc(all, sizeof *b);
    meas_t m;
    int rc = s_meas_open(cfg, env, qjob, !qjob || cfg->vs_baseline, 0, &m, err, errlen);
    if (rc == CLI_OK && (!q || !b)) {
        snprintf(err, errlen, "out of memory for %zu round trips", all);
        rc = CLI_FAILED;
    }
    for (int r = 0; r < cfg->repeat && rc == CLI_OK; r++)
        rc = s_latency_pair(cfg, env, &m, r, q + (size_t)r * n, b + (size_t)r * n, err, errlen);
    bench_bar_clear(&env->bar);
    if (rc == CLI_OK)
        rc = s_latency_out(cfg, out, qjob, &m, q, b, all);
    s_meas_close(&m);
    free(q);
    free(b);
    return rc;
}

/* ------------------------------------------------------------ throughput */

static int s_throughput(const bench_cfg_t *cfg, bench_env_t *env, bench_out_t *out, bool qjob,
                        char *err, size_t errlen)
{
    bool fwd = !qjob || cfg->vs_baseline;
    meas_t m;
    int rc = s_meas_open(cfg, env, qjob, fwd, cfg->window, &m, err, errlen);
    if (rc == CLI_OK && m.c)
        s_warm(m.c, cfg, &m.args);
    bench_stream_t s = {cfg->task, m.args.data, m.args.size, cfg->jobs, cfg->window, 1,
                        s_timeout_ms(cfg)};
    if (rc == CLI_OK)
        rc = s_stream_runs(cfg, env, &m, &s, "throughput", err, errlen);
    bench_bar_clear(&env->bar);
    bench_table_t *t = rc == CLI_OK ? s_table(out, "throughput", "throughput: N jobs, at most W "
                                              "in flight") : NULL;
    if (rc == CLI_OK && !t)
        rc = CLI_FAILED;
    if (rc != CLI_OK) {
        s_meas_close(&m);
        return rc;
    }
    int cw = s_col(t, "system", "", BENCH_TEXT), cn = s_col(t, "jobs", "jobs", 0);
    int cwin = s_col(t, "window", "window", 0);
    bench_fig_cols_t fc;
    bench_runs_fig_cols(t, "server cpu us/job", &fc);
    bench_ratio_cols_t cr = qjob && fwd ? bench_runs_ratio_cols(t, cfg->repeat, 3) : bench_no_ratio;
    for (int i = 0; i < 2; i++) {
        const bench_runs_t *rs = i == 0 ? m.q : m.b;
        if ((i == 0 && !qjob) || (i == 1 && !fwd))
            continue;
        int r = bench_table_row(t);
        bench_table_set_text(t, r, cw, i == 0 ? "qjob" : "qfwd");
        bench_table_set(t, r, cn, (double)cfg->jobs);
        bench_table_set(t, r, cwin, (double)cfg->window);
        bench_runs_fig_row(t, r, &fc, rs);
        if (cr.med >= 0)
            bench_runs_ratio_row(t, r, &cr, rs, m.b, BENCH_FIG_RATE);
    }
    bench_table_note(t, "task %s, %zu-byte argument; %sqfwd sends one job per message", qjob ?
                     cfg->task : "echo", s_arg_bytes(cfg), qjob ? "qjob batches submits itself, " : "");
    bench_table_note(t, "server cpu: of the qbroker or qfwd process, when this run started it");
    bench_runs_note(t, cfg->repeat, cr.med >= 0);
    s_meas_close(&m);
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
