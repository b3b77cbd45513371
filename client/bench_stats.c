/* bench_stats.c -- order statistics, paired ratios and least squares
 * (bench_stats.h). */
#include "bench_stats.h"

#include <assert.h>
#include <math.h>
#include <stdlib.h>

static int s_cmp(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}

void bench_stats_sort(double *v, size_t n)
{
    if (n > 1)
        qsort(v, n, sizeof *v, s_cmp);
}

double bench_stats_percentile(const double *sorted, size_t n, double p)
{
    assert(n >= 1 && p >= 0 && p <= 100);
    /* Rank h in [0, n-1]; between ranks the value moves linearly (the
     * "type 7" estimator of R and numpy's default). */
    double h = (double)(n - 1) * p / 100.0;
    size_t lo = (size_t)floor(h);
    if (lo >= n - 1)
        return sorted[n - 1];
    double frac = h - (double)lo;
    return sorted[lo] + frac * (sorted[lo + 1] - sorted[lo]);
}

void bench_stats_summary(double *v, size_t n, bench_summary_t *out)
{
    assert(n >= 1);
    bench_stats_sort(v, n);
    double sum = 0;
    for (size_t i = 0; i < n; i++)
        sum += v[i];
    out->n = n;
    out->min = v[0];
    out->max = v[n - 1];
    out->mean = sum / (double)n;
    out->median = bench_stats_percentile(v, n, 50);
}

void bench_stats_paired(const double *num, const double *den, size_t n, double *ratios,
                        bench_summary_t *out)
{
    for (size_t i = 0; i < n; i++)
        ratios[i] = num[i] / den[i];
    bench_stats_summary(ratios, n, out);
}

int bench_stats_fit(const double *x, const double *y, size_t n, bench_fit_t *out)
{
    if (n < 2)
        return -1;
    /* Centre the data first: the sums of squares of raw x (job counts in
     * the thousands) and raw y would lose digits to cancellation. */
    double mx = 0, my = 0;
    for (size_t i = 0; i < n; i++) {
        mx += x[i];
        my += y[i];
    }
    mx /= (double)n;
    my /= (double)n;
    double sxx = 0, sxy = 0, syy = 0;
    for (size_t i = 0; i < n; i++) {
        double dx = x[i] - mx, dy = y[i] - my;
        sxx += dx * dx;
        sxy += dx * dy;
        syy += dy * dy;
    }
    if (sxx == 0)
        return -1;
    out->slope = sxy / sxx;
    out->intercept = my - out->slope * mx;
    /* r^2 = 1 - SSres/SStot, which for a least-squares line is
     * sxy^2 / (sxx syy). */
    out->r2 = syy == 0 ? 1.0 : (sxy * sxy) / (sxx * syy);
    out->n = n;
    return 0;
}
