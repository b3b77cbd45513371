/* bench_plot.h -- an XY plot written as a standalone SVG file, by hand:
 * axes with linear or logarithmic ticks and a grid, labels, series drawn
 * as markers joined by lines (optionally with min-max bars) or as dashed
 * reference lines, and a legend.
 *
 * Only what qclient bench draws: split (log-log time against the number
 * of jobs, with the ideal line), batch (jobs/s against jobs per message),
 * latency (the distribution of round trips).
 */
#ifndef QJ_BENCH_PLOT_H
#define QJ_BENCH_PLOT_H

#include <stddef.h>

typedef enum bench_axis {
    BENCH_AXIS_LINEAR,    /* ticks at 1, 2 or 5 x 10^k steps, from 0 */
    BENCH_AXIS_LOG10,     /* decades, with minor ticks at 2..9 */
    BENCH_AXIS_LOG2,      /* powers of two: job counts, batch sizes */
} bench_axis_t;

typedef enum bench_style {
    BENCH_STYLE_MARKERS,  /* markers joined by a solid line */
    BENCH_STYLE_DASHED,   /* a dashed line, no markers (ideal, fit) */
    BENCH_STYLE_LINE,     /* a solid line, no markers (many points) */
} bench_style_t;

typedef struct bench_plot bench_plot_t;

/* A new empty plot.  The strings are copied; subtitle may be NULL.
 * NULL if out of memory. */
bench_plot_t *bench_plot_new(const char *title, const char *subtitle,
                             const char *xlabel, bench_axis_t xaxis,
                             const char *ylabel, bench_axis_t yaxis);

/* Free a plot; safe on NULL and twice. */
void bench_plot_destroy(bench_plot_t **self_p);

/* Add a series named name (copied) drawn in style.  Returns its index
 * (series take colours in order), or -1 if out of memory or there are
 * already 8. */
int bench_plot_series(bench_plot_t *p, const char *name, bench_style_t style);

/* Add a point to a series.  lo and hi, unless NAN, draw a bar from lo to
 * hi through the point (the min and max of repeated runs).  A point that
 * a log axis cannot show (<= 0) is kept out of the drawing.  Returns 0, or
 * -1 if out of memory. */
int bench_plot_point(bench_plot_t *p, int series, double x, double y, double lo, double hi);

/* Write the plot to path as an SVG document.  Returns 0, or -1 with a
 * message (the file could not be written, or no series has a point to
 * draw). */
int bench_plot_write(const bench_plot_t *p, const char *path, char *err, size_t errlen);

#endif
