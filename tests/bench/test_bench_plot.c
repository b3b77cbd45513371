/* test_bench_plot.c -- the SVG plot writer: the document's shape, its
 * axes, escaping, and the refusals.  (tests/integration/test_bench.py
 * parses the plots qclient bench writes with an XML parser.) */
#include <math.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <cmocka.h>

#include "bench_plot.h"

static char s_path[64];

static int s_setup(void **state)
{
    (void)state;
    snprintf(s_path, sizeof s_path, "/tmp/test_bench_plot.%ld.svg", (long)getpid());
    return 0;
}

static int s_teardown(void **state)
{
    (void)state;
    unlink(s_path);
    return 0;
}

static char *s_slurp(const char *path)
{
    FILE *f = fopen(path, "r");
    assert_non_null(f);
    char *buf = calloc(1, 1 << 20);
    size_t n = fread(buf, 1, (1 << 20) - 1, f);
    fclose(f);
    buf[n] = '\0';
    return buf;
}

static int s_count(const char *s, const char *what)
{
    int n = 0;
    for (const char *p = strstr(s, what); p; p = strstr(p + 1, what))
        n++;
    return n;
}

static void test_split_like(void **state)
{
    (void)state;
    bench_plot_t *p = bench_plot_new("time <vs> n & more", "W = 2^25", "jobs n", BENCH_AXIS_LOG2,
                                     "wall time (s)", BENCH_AXIS_LOG10);
    assert_non_null(p);
    int m = bench_plot_series(p, "measured", BENCH_STYLE_MARKERS);
    int i = bench_plot_series(p, "ideal", BENCH_STYLE_DASHED);
    assert_int_equal(m, 0);
    assert_int_equal(i, 1);
    for (int k = 0; k <= 12; k++) {
        double n = 1 << k;
        assert_int_equal(bench_plot_point(p, m, n, 0.2 / n + 1e-5 * n, 0.9 * (0.2 / n), 0.3), 0);
        assert_int_equal(bench_plot_point(p, i, n, 0.2 / n, NAN, NAN), 0);
    }
    bench_plot_point(p, m, 0, 1, NAN, NAN);   /* not on a log axis: left out */
    char err[256];
    assert_int_equal(bench_plot_write(p, s_path, err, sizeof err), 0);
    char *svg = s_slurp(s_path);
    assert_true(!strncmp(svg, "<?xml", 5));
    assert_non_null(strstr(svg, "<svg xmlns=\"http://www.w3.org/2000/svg\""));
    assert_non_null(strstr(svg, "</svg>\n"));
    assert_non_null(strstr(svg, "time &lt;vs&gt; n &amp; more"));   /* escaped */
    assert_null(strstr(svg, "<vs>"));
    /* 13 markers plus one in the legend; a bar for each marker. */
    assert_int_equal(s_count(svg, "<circle"), 14);
    /* Powers of two on x (1 ... 4096), decades on y. */
    assert_non_null(strstr(svg, ">4096</text>"));
    assert_non_null(strstr(svg, ">0.1</text>"));
    assert_non_null(strstr(svg, "stroke-dasharray"));
    assert_non_null(strstr(svg, ">measured</text>"));
    assert_non_null(strstr(svg, ">ideal</text>"));
    free(svg);
    bench_plot_destroy(&p);
    bench_plot_destroy(&p);
    assert_null(p);
}

static void test_linear_axis(void **state)
{
    (void)state;
    bench_plot_t *p = bench_plot_new("cdf", NULL, "us", BENCH_AXIS_LOG10, "%", BENCH_AXIS_LINEAR);
    int s = bench_plot_series(p, "qjob", BENCH_STYLE_LINE);
    for (int q = 0; q <= 100; q += 10)
        bench_plot_point(p, s, 100 + q, q, NAN, NAN);
    char err[256];
    assert_int_equal(bench_plot_write(p, s_path, err, sizeof err), 0);
    char *svg = s_slurp(s_path);
    assert_non_null(strstr(svg, ">0</text>"));     /* linear ticks from 0 ... */
    assert_non_null(strstr(svg, ">100</text>"));   /* ... to 100 */
    assert_int_equal(s_count(svg, "<circle"), 0);  /* a plain line has no markers */
    free(svg);
    bench_plot_destroy(&p);
}

static void test_refusals(void **state)
{
    (void)state;
    bench_plot_t *p = bench_plot_new("t", NULL, "x", BENCH_AXIS_LOG2, "y", BENCH_AXIS_LOG10);
    int s = bench_plot_series(p, "s", BENCH_STYLE_MARKERS);
    char err[256] = "";
    assert_int_equal(bench_plot_write(p, s_path, err, sizeof err), -1);   /* no points */
    assert_non_null(strstr(err, "nothing to plot"));
    bench_plot_point(p, s, -1, 5, NAN, NAN);                               /* x <= 0 on log */
    assert_int_equal(bench_plot_write(p, s_path, err, sizeof err), -1);
    bench_plot_point(p, s, 2, 5, NAN, NAN);
    assert_int_equal(bench_plot_write(p, "/nonexistent-dir/x.svg", err, sizeof err), -1);
    assert_non_null(strstr(err, "/nonexistent-dir/x.svg"));
    assert_int_equal(bench_plot_point(p, 7, 1, 1, NAN, NAN), -1);          /* no such series */
    for (int i = 1; i < 8; i++)
        assert_int_equal(bench_plot_series(p, "more", BENCH_STYLE_LINE), i);
    assert_int_equal(bench_plot_series(p, "one too many", BENCH_STYLE_LINE), -1);
    bench_plot_destroy(&p);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_split_like, s_setup, s_teardown),
        cmocka_unit_test_setup_teardown(test_linear_axis, s_setup, s_teardown),
        cmocka_unit_test_setup_teardown(test_refusals, s_setup, s_teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
