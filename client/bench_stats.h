/* bench_stats.h -- the statistics qclient bench reports: order statistics
 * of a sample (median, percentiles), the ratios of paired runs, and a
 * least-squares line.
 *
 * Pure functions on arrays of doubles: no allocation, no I/O, so that the
 * unit test checks them against figures worked out by hand.
 */
#ifndef QJ_BENCH_STATS_H
#define QJ_BENCH_STATS_H

#include <stddef.h>

/* Five figures of one sample. */
typedef struct bench_summary {
    size_t n;             /* size of the sample */
    double min, max;
    double mean;
    double median;
} bench_summary_t;

/* A line y = intercept + slope * x fitted by least squares. */
typedef struct bench_fit {
    double slope;
    double intercept;
    double r2;            /* coefficient of determination, 1 = perfect; 1 when
                             every y is equal and the line goes through them */
    size_t n;             /* points used */
} bench_fit_t;

/* Sort v[0..n) ascending, in place. */
void bench_stats_sort(double *v, size_t n);

/* The p-th percentile (0 <= p <= 100) of sorted[0..n), n >= 1, linearly
 * interpolated between the two nearest ranks (so p = 50 is the median and
 * p = 100 the maximum). */
double bench_stats_percentile(const double *sorted, size_t n, double p);

/* Summarise v[0..n), n >= 1.  Sorts v in place (the caller's order is
 * lost; percentiles can then be read from v). */
void bench_stats_summary(double *v, size_t n, bench_summary_t *out);

/* Summarise the paired ratios num[i] / den[i], i < n, n >= 1: run i of
 * one system over run i of the other, measured back to back, so that a
 * drift of the machine between pairs cancels.  ratios[0..n) is the
 * caller's scratch and ends up holding the ratios, sorted.  The median of
 * the ratios is not the ratio of the medians. */
void bench_stats_paired(const double *num, const double *den, size_t n, double *ratios,
                        bench_summary_t *out);

/* Fit y = a + b x through the points (x[i], y[i]), i < n.  Returns 0, or
 * -1 if there are fewer than 2 points or every x is the same (no line is
 * defined); *out is untouched then. */
int bench_stats_fit(const double *x, const double *y, size_t n, bench_fit_t *out);

#endif
