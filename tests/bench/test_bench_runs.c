/* test_bench_runs.c -- repeated runs: medians per figure, paired ratios,
 * and the columns that show them, against figures worked out by hand. */
#include <math.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "bench_runs.h"

static void assert_near(double got, double want)
{
    if (fabs(got - want) > 1e-9 * fmax(1.0, fabs(want)))
        fail_msg("got %.12g, wanted %.12g", got, want);
}

/* Three runs of one figure each. */
static bench_runs_t *s_three(double a, double b, double c)
{
    bench_runs_t *rs = bench_runs_new(3);
    assert_non_null(rs);
    bench_runs_add(rs, &a, 1);
    bench_runs_add(rs, &b, 1);
    bench_runs_add(rs, &c, 1);
    return rs;
}

static void test_stream_medians(void **state)
{
    (void)state;
    bench_runs_t *rs = bench_runs_new(3);
    assert_non_null(rs);
    /* 1000 jobs in 0.5 s, 0.1 s, 0.2 s: the median run is 0.2 s. */
    const double secs[] = {0.5, 0.1, 0.2};
    for (int i = 0; i < 3; i++) {
        bench_run_t run = {secs[i], 1000, 250, secs[i] / 2};
        bench_runs_stream(rs, &run, secs[i] / 4);
    }
    assert_int_equal(bench_runs_count(rs), 3);
    assert_near(bench_runs_median(rs, BENCH_FIG_SECS), 0.2);
    assert_near(bench_runs_median(rs, BENCH_FIG_RATE), 5000);
    assert_near(bench_runs_median(rs, BENCH_FIG_US), 200);
    assert_near(bench_runs_median(rs, BENCH_FIG_CPU), 100);
    assert_near(bench_runs_median(rs, BENCH_FIG_SRV), 50);
    assert_near(bench_runs_median(rs, BENCH_FIG_MSGS), 250);
    bench_summary_t s;
    bench_runs_summary(rs, BENCH_FIG_SECS, &s);
    assert_near(s.min, 0.1);
    assert_near(s.max, 0.5);
    /* A summary leaves the runs in their order: run 0 is still 0.5 s. */
    bench_runs_t *copy = bench_runs_new(3);
    assert_non_null(copy);
    bench_runs_copy(copy, rs);
    assert_int_equal(bench_runs_count(copy), 3);
    bench_runs_ratio(rs, copy, BENCH_FIG_SECS, &s);
    assert_near(s.min, 1);
    assert_near(s.max, 1);
    bench_runs_reset(rs);
    assert_int_equal(bench_runs_count(rs), 0);
    bench_runs_destroy(&copy);
    bench_runs_destroy(&rs);
    bench_runs_destroy(&rs);   /* twice is safe */
    assert_null(rs);
}

static void test_ratio_is_paired(void **state)
{
    (void)state;
    /* The machine slows down for run 1: both systems lose.  Run by run the
     * ratios are 0.5, 0.5, 0.3: median 0.5, while the ratio of the medians
     * (90 / 200) would be 0.45. */
    bench_runs_t *q = s_three(100, 20, 90);
    bench_runs_t *b = s_three(200, 40, 300);
    bench_summary_t s;
    bench_runs_ratio(q, b, 0, &s);
    assert_near(s.median, 0.5);
    assert_near(s.min, 0.3);
    assert_near(s.max, 0.5);
    /* The runs are untouched: the pairs are the same the second time. */
    bench_runs_ratio(q, b, 0, &s);
    assert_near(s.median, 0.5);
    assert_near(s.min, 0.3);
    bench_runs_destroy(&q);
    bench_runs_destroy(&b);
}

static void test_ratio_columns(void **state)
{
    (void)state;
    bench_runs_t *q = s_three(100, 20, 90);
    bench_runs_t *b = s_three(200, 40, 300);
    bench_table_t *t = bench_table_new("x", "x");
    assert_non_null(t);
    bench_ratio_cols_t rc = bench_runs_ratio_cols(t, 3, 2);
    assert_true(rc.min >= 0 && rc.max >= 0);
    int r = bench_table_row(t);
    bench_runs_ratio_row(t, r, &rc, q, b, 0);
    bench_runs_note(t, 3, true);
    assert_near(bench_table_get(t, r, rc.med), 0.5);
    assert_near(bench_table_get(t, r, rc.min), 0.3);
    assert_near(bench_table_get(t, r, rc.max), 0.5);
    /* Text: one column, "median (min-max)"; JSON: three numbers. */
    char text[512] = "";
    FILE *f = fmemopen(text, sizeof text - 1, "w");
    assert_non_null(f);
    bench_table_print(t, f);
    fclose(f);
    assert_non_null(strstr(text, "0.50 (0.30-0.50)"));
    assert_null(strstr(text, "vs qfwd min"));
    assert_non_null(strstr(text, "medians of 3 runs"));
    json_t *j = bench_table_json(t);
    json_t *row = json_array_get(json_object_get(j, "rows"), 0);
    assert_near(json_number_value(json_object_get(row, "vs_baseline_min")), 0.3);
    assert_near(json_number_value(json_object_get(row, "vs_baseline_max")), 0.5);
    assert_int_equal(json_integer_value(json_object_get(json_object_get(j, "meta"), "runs")), 3);
    json_decref(j);
    bench_table_destroy(&t);
    bench_runs_destroy(&q);
    bench_runs_destroy(&b);
}

static void test_ratio_one_run(void **state)
{
    (void)state;
    /* One run: no spread to show, and the note says so. */
    bench_table_t *t = bench_table_new("x", "x");
    assert_non_null(t);
    bench_ratio_cols_t rc = bench_runs_ratio_cols(t, 1, 2);
    assert_true(rc.med >= 0);
    assert_int_equal(rc.min, -1);
    assert_int_equal(rc.max, -1);
    bench_runs_note(t, 1, true);
    json_t *j = bench_table_json(t);
    assert_int_equal(json_array_size(json_object_get(j, "columns")), 1);
    const char *note = json_string_value(json_array_get(json_object_get(j, "notes"), 0));
    assert_non_null(note);
    assert_non_null(strstr(note, "one run"));
    json_decref(j);
    bench_table_destroy(&t);
}

static void test_fig_columns(void **state)
{
    (void)state;
    bench_runs_t *rs = bench_runs_new(1);
    assert_non_null(rs);
    bench_run_t run = {2.0, 1000, 10, 0.5};
    bench_runs_stream(rs, &run, NAN);
    bench_table_t *t = bench_table_new("x", "x");
    assert_non_null(t);
    bench_fig_cols_t fc;
    bench_runs_fig_cols(t, NULL, &fc);
    assert_int_equal(fc.c[BENCH_FIG_SRV], -1);    /* no server column asked */
    assert_int_equal(fc.c[BENCH_FIG_MSGS], -1);
    int r = bench_table_row(t);
    bench_runs_fig_row(t, r, &fc, rs);
    assert_near(bench_table_get(t, r, fc.c[BENCH_FIG_RATE]), 500);
    assert_near(bench_table_get(t, r, fc.c[BENCH_FIG_CPU]), 500);
    bench_table_destroy(&t);
    bench_runs_destroy(&rs);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_stream_medians),
        cmocka_unit_test(test_ratio_is_paired),
        cmocka_unit_test(test_ratio_columns),
        cmocka_unit_test(test_ratio_one_run),
        cmocka_unit_test(test_fig_columns),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
