/* bench_bar.h -- a progress line on stderr while a benchmark runs, drawn
 * only when stderr is a terminal and at most ten times a second, so that
 * it costs nothing measurable and never lands in a log file.
 */
#ifndef QJ_BENCH_BAR_H
#define QJ_BENCH_BAR_H

#include <stdbool.h>
#include <stdint.h>

typedef struct bench_bar {
    bool tty;             /* stderr is a terminal: draw */
    const char *what;     /* the configuration running ("n=64 run 2/3") */
    uint64_t total;       /* jobs in this configuration */
    uint64_t start_us;    /* when it began */
    uint64_t drawn_us;    /* last drawing */
    bool shown;           /* something is on the line (to clear) */
} bench_bar_t;

/* Set the bar up; quiet forces it off (--json on a terminal, tests). */
void bench_bar_init(bench_bar_t *b, bool quiet);

/* A new configuration begins: what (borrowed until the next call) and
 * how many jobs it runs. */
void bench_bar_begin(bench_bar_t *b, const char *what, uint64_t total);

/* done of total jobs have finished.  Cheap when there is nothing to draw. */
void bench_bar_update(bench_bar_t *b, uint64_t done);

/* Clear the line (before printing results). */
void bench_bar_clear(bench_bar_t *b);

#endif
