/* bench_runs.c -- repeated runs, their medians and paired ratios
 * (bench_runs.h). */
#include "bench_runs.h"

#include <assert.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

struct bench_runs {
    int n;                /* runs recorded */
    int repeat;           /* room for this many */
    double v[];           /* v[f * repeat + r]: figure f of run r, so that the runs of
                             a figure are one array; row BENCH_RUNS_FIGS is scratch
                             for sorting */
};

bench_runs_t *bench_runs_new(int repeat)
{
    assert(repeat >= 1);
    size_t cells = (size_t)(BENCH_RUNS_FIGS + 1) * (size_t)repeat;
    bench_runs_t *rs = calloc(1, sizeof *rs + cells * sizeof rs->v[0]);
    if (rs)
        rs->repeat = repeat;
    return rs;
}

void bench_runs_destroy(bench_runs_t **self_p)
{
    free(*self_p);
    *self_p = NULL;
}

void bench_runs_reset(bench_runs_t *rs)
{
    rs->n = 0;
}

int bench_runs_count(const bench_runs_t *rs)
{
    return rs->n;
}

/* Figure f of every run.  A summary of const runs sorts a copy in the
 * scratch row, which is not part of what they hold: hence the cast. */
static double *s_fig(const bench_runs_t *rs, int f)
{
    return (double *)rs->v + (size_t)f * (size_t)rs->repeat;
}

void bench_runs_add(bench_runs_t *rs, const double *figs, int n)
{
    assert(rs->n < rs->repeat && n <= BENCH_RUNS_FIGS);
    for (int f = 0; f < n; f++)
        s_fig(rs, f)[rs->n] = figs[f];
    rs->n++;
}

void bench_runs_stream(bench_runs_t *rs, const bench_run_t *run, double srv_secs)
{
    double jobs = (double)run->jobs;
    double figs[BENCH_FIG_STREAM] = {
        [BENCH_FIG_SECS] = run->secs,
        [BENCH_FIG_RATE] = jobs / run->secs,
        [BENCH_FIG_US] = run->secs * 1e6 / jobs,
        [BENCH_FIG_CPU] = run->cpu_secs * 1e6 / jobs,
        [BENCH_FIG_SRV] = srv_secs * 1e6 / jobs,
        [BENCH_FIG_MSGS] = (double)run->messages,
    };
    bench_runs_add(rs, figs, BENCH_FIG_STREAM);
}

void bench_runs_summary(const bench_runs_t *rs, int f, bench_summary_t *out)
{
    assert(rs->n >= 1 && f >= 0 && f < BENCH_RUNS_FIGS);
    double *scratch = s_fig(rs, BENCH_RUNS_FIGS);
    memcpy(scratch, s_fig(rs, f), (size_t)rs->n * sizeof *scratch);
    bench_stats_summary(scratch, (size_t)rs->n, out);
}

double bench_runs_median(const bench_runs_t *rs, int f)
{
    bench_summary_t s;
    bench_runs_summary(rs, f, &s);
    return s.median;
}

void bench_runs_ratio(const bench_runs_t *q, const bench_runs_t *b, int f,
                      bench_summary_t *out)
{
    assert(q->n >= 1 && q->n == b->n && f >= 0 && f < BENCH_RUNS_FIGS);
    bench_stats_paired(s_fig(q, f), s_fig(b, f), (size_t)q->n, s_fig(q, BENCH_RUNS_FIGS), out);
}

void bench_runs_copy(bench_runs_t *dst, const bench_runs_t *src)
{
    assert(dst->repeat == src->repeat);
    memcpy(dst->v, src->v, (size_t)BENCH_RUNS_FIGS * (size_t)src->repeat * sizeof *dst->v);
    dst->n = src->n;
}

void bench_runs_point(bench_plot_t *p, int series, double x, const bench_runs_t *rs, int f)
{
    bench_summary_t s;
    bench_runs_summary(rs, f, &s);
    bool bar = rs->n > 1;
    bench_plot_point(p, series, x, s.median, bar ? s.min : NAN, bar ? s.max : NAN);
}

/* ------------------------------------------------------------ tables */

static int s_col(bench_table_t *t, const char *key, const char *head, int decimals)
{
    int c = bench_table_column(t, key, head, decimals);
    assert(c >= 0);
    return c;
}

void bench_runs_fig_cols(bench_table_t *t, const char *srv_head, bench_fig_cols_t *fc)
{
    fc->c[BENCH_FIG_SECS] = s_col(t, "secs", "secs", 3);
    fc->c[BENCH_FIG_RATE] = s_col(t, "jobs_per_s", "jobs/s", 0);
    fc->c[BENCH_FIG_US] = s_col(t, "us_per_job", "us/job", 2);
    fc->c[BENCH_FIG_CPU] = s_col(t, "client_cpu_us", "client cpu us/job", 2);
    fc->c[BENCH_FIG_SRV] = srv_head ? s_col(t, "server_cpu_us", srv_head, 2) : -1;
    fc->c[BENCH_FIG_MSGS] = -1;
}

void bench_runs_fig_row(bench_table_t *t, int r, const bench_fig_cols_t *fc,
                        const bench_runs_t *rs)
{
    for (int f = 0; f < BENCH_FIG_STREAM; f++)
        if (fc->c[f] >= 0)
            bench_table_set(t, r, fc->c[f], bench_runs_median(rs, f));
}

const bench_ratio_cols_t bench_no_ratio = {-1, -1, -1};

bench_ratio_cols_t bench_runs_ratio_cols(bench_table_t *t, int repeat, int decimals)
{
    bench_ratio_cols_t rc = {s_col(t, "vs_baseline", "vs qfwd", decimals), -1, -1};
    if (repeat > 1) {
        rc.min = s_col(t, "vs_baseline_min", "vs qfwd min", decimals);
        rc.max = s_col(t, "vs_baseline_max", "vs qfwd max", decimals);
        bench_table_spread(t, rc.med, rc.min, rc.max);
    }
    return rc;
}

void bench_runs_ratio_row(bench_table_t *t, int r, const bench_ratio_cols_t *rc,
                          const bench_runs_t *q, const bench_runs_t *b, int f)
{
    bench_summary_t s;
    bench_runs_ratio(q, b, f, &s);
    bench_table_set(t, r, rc->med, s.median);
    if (rc->min >= 0) {
        bench_table_set(t, r, rc->min, s.min);
        bench_table_set(t, r, rc->max, s.max);
    }
}

void bench_runs_note(bench_table_t *t, int repeat, bool ratio)
{
    bench_table_meta(t, "runs", repeat);
    if (repeat == 1)
        bench_table_note(t, "one run%s", ratio ? "; qfwd's right after qjob's" : "");
    else if (ratio)
        bench_table_note(t, "medians of %d runs; vs qfwd: median (min-max) of the %d ratios "
                         "qjob run i / qfwd run i, each pair back to back", repeat, repeat);
    else
        bench_table_note(t, "medians of %d runs", repeat);
}
