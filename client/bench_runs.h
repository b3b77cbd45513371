/* bench_runs.h -- the R runs of one configuration of qclient bench
 * (--repeat): each run's figures as they come, then per figure the median
 * over the runs (with min and max), and the ratio of one system's runs to
 * another's run by run, when the two ran back to back (qjob, qfwd, qjob,
 * qfwd ...): on a noisy machine the median of those paired ratios cancels
 * the drift that a ratio of medians keeps.
 *
 * Also the table columns that show them, so that every mode shows its
 * medians, ratios and number of runs the same way.
 */
#ifndef QJ_BENCH_RUNS_H
#define QJ_BENCH_RUNS_H

#include <stdbool.h>
#include <stddef.h>

#include "bench_load.h"
#include "bench_plot.h"
#include "bench_stats.h"
#include "bench_table.h"

/* The figures of one stream run (bench_runs_stream). */
enum {
    BENCH_FIG_SECS,       /* wall time */
    BENCH_FIG_RATE,       /* jobs/s */
    BENCH_FIG_US,         /* wall time per job, µs */
    BENCH_FIG_CPU,        /* this process's CPU per job, µs */
    BENCH_FIG_SRV,        /* the server's CPU per job, µs (NAN: not known) */
    BENCH_FIG_MSGS,       /* messages sent with jobs */
    BENCH_FIG_STREAM,     /* how many */
};

#define BENCH_RUNS_FIGS 8 /* figures of one run, at most */

typedef struct bench_runs bench_runs_t;

/* Room for repeat runs (>= 1) of up to BENCH_RUNS_FIGS figures.  NULL if
 * out of memory. */
bench_runs_t *bench_runs_new(int repeat);

/* Free; safe on NULL and twice. */
void bench_runs_destroy(bench_runs_t **self_p);

/* Forget the runs recorded, for the next configuration. */
void bench_runs_reset(bench_runs_t *rs);

/* Runs recorded so far. */
int bench_runs_count(const bench_runs_t *rs);

/* Record one run's figures figs[0..n), n <= BENCH_RUNS_FIGS; there must
 * be room for it (fewer than repeat recorded). */
void bench_runs_add(bench_runs_t *rs, const double *figs, int n);

/* Record a stream run as the BENCH_FIG_* figures, the server having used
 * srv_secs of CPU during it (NAN if not known). */
void bench_runs_stream(bench_runs_t *rs, const bench_run_t *run, double srv_secs);

/* Figure f over the runs recorded (one at least). */
void bench_runs_summary(const bench_runs_t *rs, int f, bench_summary_t *out);
double bench_runs_median(const bench_runs_t *rs, int f);

/* Figure f of q's runs over b's, run i over run i (as many runs in each). */
void bench_runs_ratio(const bench_runs_t *q, const bench_runs_t *b, int f,
                      bench_summary_t *out);

/* Make dst hold src's runs (both made for the same repeat). */
void bench_runs_copy(bench_runs_t *dst, const bench_runs_t *src);

/* A point of series at x, y the median of figure f, with a min-max bar
 * when there are several runs. */
void bench_runs_point(bench_plot_t *p, int series, double x, const bench_runs_t *rs, int f);

/* ------------------------------------------------------------ tables */

/* The columns of the stream figures in a table; -1: not shown. */
typedef struct bench_fig_cols {
    int c[BENCH_FIG_STREAM];
} bench_fig_cols_t;

/* Add the columns every stream table has: secs, jobs/s, us/job, the
 * client's CPU, and the server's if srv_head (its heading) is not NULL.
 * Messages are left to the table, which counts them its own way. */
void bench_runs_fig_cols(bench_table_t *t, const char *srv_head, bench_fig_cols_t *fc);

/* Row r: each figure's median over rs's runs. */
void bench_runs_fig_row(bench_table_t *t, int r, const bench_fig_cols_t *fc,
                        const bench_runs_t *rs);

/* The columns of a ratio to qfwd: "vs_baseline" (the median of the paired
 * ratios) and, over several runs, "vs_baseline_min" and "_max" (shown in
 * the text form inside the first, "median (min-max)"); -1: not shown. */
typedef struct bench_ratio_cols {
    int med, min, max;
} bench_ratio_cols_t;

extern const bench_ratio_cols_t bench_no_ratio;

/* Add the ratio columns for repeat runs, with decimals. */
bench_ratio_cols_t bench_runs_ratio_cols(bench_table_t *t, int repeat, int decimals);

/* Row r: figure f of q's runs over b's, paired. */
void bench_runs_ratio_row(bench_table_t *t, int r, const bench_ratio_cols_t *rc,
                          const bench_runs_t *q, const bench_runs_t *b, int f);

/* Say under t what its figures are over, with or without a ratio to qfwd,
 * and record the number of runs (meta "runs"). */
void bench_runs_note(bench_table_t *t, int repeat, bool ratio);

#endif
