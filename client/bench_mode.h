/* bench_mode.h -- the five measurements of qclient bench (split, batch,
 * latency, throughput, baseline): each runs its pattern R times against
 * the broker (and, with --vs-baseline, against qfwd in the same run, the
 * two alternating) and returns its figures as tables of medians and,
 * where one helps, a plot.
 *
 * bench.c owns everything around them: options, the processes of a
 * --spawn run, and writing the results.
 */
#ifndef QJ_BENCH_MODE_H
#define QJ_BENCH_MODE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "bench_bar.h"
#include "bench_plot.h"
#include "bench_proc.h"
#include "bench_table.h"

#define BENCH_MAX_TABLES 4

/* What the user asked for (bench.c fills it from the command line). */
typedef struct bench_cfg {
    const char *mode;         /* split, batch, latency, throughput, baseline */
    bool vs_baseline;         /* also measure qfwd, print ratios */
    double timeout_s;         /* each timed run, at most */
    double connect_s;         /* the broker's WELCOME, at most */
    int repeat;               /* timed runs of each configuration, R: medians shown */
    /* split */
    uint64_t work;            /* pi samples in all, W */
    uint64_t min_n, max_n;    /* job counts, doubling from min_n */
    uint64_t fit_from;        /* fit the time over n >= this */
    /* streams */
    const char *task;         /* batch, latency, throughput */
    size_t payload;           /* bytes of each job's argument */
    const char *args;         /* or: each job's argument, msgpack (--args JSON) */
    size_t args_len;
    uint64_t jobs;            /* N, jobs in a stream (batch, throughput) */
    size_t rounds;            /* latency: timed round trips */
    uint64_t window;          /* jobs in flight, at most */
    uint64_t k_min, k_max;    /* batch: k = k_min, 2 k_min ... k_max */
    bool batch_auto;          /* batch: also the client's adaptive batching */
    size_t warmup;            /* latency: untimed round trips first */
} bench_cfg_t;

/* Where to measure (bench.c sets it up). */
typedef struct bench_env {
    const char *broker;       /* qjob endpoint, or NULL for baseline alone */
    bench_proc_t *broker_proc;/* a broker this run started: its CPU is shown */
    int slots;                /* worker slots the broker has */
    const char *fwd;          /* qfwd endpoint, or NULL if not measured */
    bench_proc_t *fwd_proc;   /* a qfwd this run started */
    int fwd_workers;          /* its echo workers */
    const char *curve_secret; /* CURVE key files of the qjob clients; NULL: those of */
    const char *broker_key;   /* $QJOB_CURVE_SECRET / $QJOB_BROKER_KEY, or none */
    const char *fwd_key;      /* qfwd's public key file: CURVE to qfwd; NULL = none */
    bench_bar_t bar;
} bench_env_t;

/* What a mode produced. */
typedef struct bench_out {
    bench_table_t *tables[BENCH_MAX_TABLES];
    int ntables;
    bench_plot_t *plot;       /* or NULL: the mode has no plot */
} bench_out_t;

/* Run cfg->mode.  Returns a qclient exit code (cli.h): 0 with the figures
 * in *out, else the code and a message in err (1 a job failed, 3 the time
 * ran out, 4 the broker did not answer).  out's tables and plot belong to
 * the caller either way (bench_mode_out_free). */
int bench_mode_run(const bench_cfg_t *cfg, bench_env_t *env, bench_out_t *out, char *err,
                   size_t errlen);

/* Free what bench_mode_run produced. */
void bench_mode_out_free(bench_out_t *out);

#endif
