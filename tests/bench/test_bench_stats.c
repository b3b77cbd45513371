/* test_bench_stats.c -- order statistics, paired ratios and the
 * least-squares line, against figures worked out by hand. */
#include <math.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include "bench_stats.h"

static void assert_near(double got, double want)
{
    if (fabs(got - want) > 1e-9 * fmax(1.0, fabs(want)))
        fail_msg("got %.12g, wanted %.12g", got, want);
}

static void test_sort(void **state)
{
    (void)state;
    double v[] = {3, -1, 2.5, 2.5, 0};
    bench_stats_sort(v, 5);
    double want[] = {-1, 0, 2.5, 2.5, 3};
    for (int i = 0; i < 5; i++)
        assert_near(v[i], want[i]);
}

static void test_percentile_interpolates(void **state)
{
    (void)state;
    /* 1..10: rank h = 9p/100; p90 -> h = 8.1 -> 9 + 0.1 * (10 - 9). */
    double v[10];
    for (int i = 0; i < 10; i++)
        v[i] = i + 1;
    assert_near(bench_stats_percentile(v, 10, 0), 1);
    assert_near(bench_stats_percentile(v, 10, 50), 5.5);
    assert_near(bench_stats_percentile(v, 10, 90), 9.1);
    assert_near(bench_stats_percentile(v, 10, 99.9), 9.991);
    assert_near(bench_stats_percentile(v, 10, 100), 10);
}

static void test_percentile_one_value(void **state)
{
    (void)state;
    double v[] = {42};
    assert_near(bench_stats_percentile(v, 1, 0), 42);
    assert_near(bench_stats_percentile(v, 1, 99.9), 42);
}

static void test_summary(void **state)
{
    (void)state;
    double v[] = {5, 1, 4, 2, 3, 9};
    bench_summary_t s;
    bench_stats_summary(v, 6, &s);
    assert_int_equal(s.n, 6);
    assert_near(s.min, 1);
    assert_near(s.max, 9);
    assert_near(s.mean, 4);
    assert_near(s.median, 3.5);   /* even count: between 3 and 4 */
    assert_near(v[0], 1);         /* sorted in place */
    double odd[] = {0.3, 0.1, 0.2};
    bench_stats_summary(odd, 3, &s);
    assert_near(s.median, 0.2);
}

static void test_paired(void **state)
{
    (void)state;
    /* Odd: ratios 2, 3, 1 -> median 2, while the ratio of the medians
     * would be 4 / 3 (pairing is the point).  Even: ratios 0.5, 3, 3, 2.5
     * -> median between 2.5 and 3.  One: its own ratio. */
    static const struct {
        double num[4], den[4];
        size_t n;
        double median, min, max;
    } cases[] = {
        {{2, 9, 4}, {1, 3, 4}, 3, 2, 1, 3},
        {{1, 6, 3, 10}, {2, 2, 1, 4}, 4, 2.75, 0.5, 3},
        {{3}, {4}, 1, 0.75, 0.75, 0.75},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        double ratios[4];
        bench_summary_t s;
        bench_stats_paired(cases[i].num, cases[i].den, cases[i].n, ratios, &s);
        assert_int_equal(s.n, cases[i].n);
        assert_near(s.median, cases[i].median);
        assert_near(s.min, cases[i].min);
        assert_near(s.max, cases[i].max);
        assert_near(ratios[0], s.min);                  /* the scratch holds them, sorted */
        assert_near(ratios[cases[i].n - 1], s.max);
    }
    assert_near(cases[0].num[1], 9);                    /* the inputs are untouched */
}

static void test_fit_exact_line(void **state)
{
    (void)state;
    /* T(n) = 0.05 s + 20 us x n, at job counts like split's. */
    double x[] = {256, 512, 1024, 2048, 4096}, y[5];
    for (int i = 0; i < 5; i++)
        y[i] = 0.05 + 20e-6 * x[i];
    bench_fit_t f;
    assert_int_equal(bench_stats_fit(x, y, 5, &f), 0);
    assert_near(f.slope, 20e-6);
    assert_near(f.intercept, 0.05);
    assert_near(f.r2, 1);
    assert_int_equal(f.n, 5);
}

static void test_fit_noisy(void **state)
{
    (void)state;
    /* (0,1) (1,3) (2,2) (3,5): mean x 1.5, mean y 2.75; sxx = 5, sxy = 5.5,
     * syy = 8.75; slope 1.1, intercept 1.1, r2 = 30.25 / 43.75. */
    double x[] = {0, 1, 2, 3}, y[] = {1, 3, 2, 5};
    bench_fit_t f;
    assert_int_equal(bench_stats_fit(x, y, 4, &f), 0);
    assert_near(f.slope, 1.1);
    assert_near(f.intercept, 1.1);
    assert_near(f.r2, 30.25 / 43.75);
}

static void test_fit_flat(void **state)
{
    (void)state;
    double x[] = {1, 2, 4}, y[] = {7, 7, 7};
    bench_fit_t f;
    assert_int_equal(bench_stats_fit(x, y, 3, &f), 0);
    assert_near(f.slope, 0);
    assert_near(f.intercept, 7);
    assert_near(f.r2, 1);
}

static void test_fit_refuses(void **state)
{
    (void)state;
    double x[] = {3, 3, 3}, y[] = {1, 2, 3};
    bench_fit_t f = {.slope = 99};
    assert_int_equal(bench_stats_fit(x, y, 3, &f), -1);   /* a vertical line */
    assert_int_equal(bench_stats_fit(x, y, 1, &f), -1);   /* one point */
    assert_int_equal(bench_stats_fit(x, y, 0, &f), -1);
    assert_near(f.slope, 99);                             /* untouched */
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_sort),
        cmocka_unit_test(test_percentile_interpolates),
        cmocka_unit_test(test_percentile_one_value),
        cmocka_unit_test(test_summary),
        cmocka_unit_test(test_paired),
        cmocka_unit_test(test_fit_exact_line),
        cmocka_unit_test(test_fit_noisy),
        cmocka_unit_test(test_fit_flat),
        cmocka_unit_test(test_fit_refuses),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
