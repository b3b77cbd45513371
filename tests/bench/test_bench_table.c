/* test_bench_table.c -- a benchmark table as text, CSV and JSON. */
#include <math.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "bench_table.h"

/* What a writer puts in a FILE, as a string (caller frees). */
static char *s_capture(const bench_table_t *t, void (*write)(const bench_table_t *, FILE *))
{
    char *buf = NULL;
    size_t len = 0;
    FILE *f = open_memstream(&buf, &len);
    assert_non_null(f);
    write(t, f);
    fclose(f);
    return buf;
}

static bench_table_t *s_sample(void)
{
    bench_table_t *t = bench_table_new("latency", "latency: round trips (us)");
    assert_non_null(t);
    int cs = bench_table_column(t, "stat", "", BENCH_TEXT);
    int cu = bench_table_column(t, "us", "qjob us", 1);
    int ca = bench_table_column(t, "ratio", "vs qfwd", BENCH_AUTO);
    assert_int_equal(cs, 0);
    assert_int_equal(cu, 1);
    assert_int_equal(ca, 2);
    int r = bench_table_row(t);
    bench_table_set_text(t, r, cs, "p50");
    bench_table_set(t, r, cu, 148.04);
    bench_table_set(t, r, ca, 1.3578);
    r = bench_table_row(t);
    bench_table_set_text(t, r, cs, "p99, tail");   /* a comma: quoted in CSV */
    bench_table_set(t, r, cu, 2600);
    bench_table_set(t, r, ca, NAN);                /* empty */
    bench_table_note(t, "%d round trips", 2000);
    bench_table_meta(t, "rounds", 2000);
    return t;
}

static void test_text(void **state)
{
    (void)state;
    bench_table_t *t = s_sample();
    char *s = s_capture(t, bench_table_print);
    const char *want =
        "latency: round trips (us)\n"
        "           qjob us  vs qfwd\n"
        "---------------------------\n"
        "p50          148.0     1.36\n"
        "p99, tail   2600.0        -\n"
        "2000 round trips\n";
    assert_string_equal(s, want);
    free(s);
    bench_table_destroy(&t);
    bench_table_destroy(&t);   /* twice is safe */
    assert_null(t);
}

static void test_csv(void **state)
{
    (void)state;
    bench_table_t *t = s_sample();
    char *s = s_capture(t, bench_table_csv);
    assert_string_equal(s, "table,stat,us,ratio\n"
                           "latency,p50,148.04,1.3578\n"
                           "latency,\"p99, tail\",2600,\n");
    free(s);
    bench_table_destroy(&t);
}

static void test_json(void **state)
{
    (void)state;
    bench_table_t *t = s_sample();
    json_t *j = bench_table_json(t);
    assert_non_null(j);
    assert_string_equal(json_string_value(json_object_get(j, "name")), "latency");
    json_t *rows = json_object_get(j, "rows");
    assert_int_equal(json_array_size(rows), 2);
    json_t *r0 = json_array_get(rows, 0), *r1 = json_array_get(rows, 1);
    assert_string_equal(json_string_value(json_object_get(r0, "stat")), "p50");
    assert_true(fabs(json_real_value(json_object_get(r0, "us")) - 148.04) < 1e-9);
    assert_true(json_is_integer(json_object_get(r1, "us")));   /* 2600 stays an integer */
    assert_true(json_is_null(json_object_get(r1, "ratio")));   /* empty cell */
    assert_int_equal(json_array_size(json_object_get(j, "columns")), 3);
    assert_string_equal(json_string_value(json_array_get(json_object_get(j, "notes"), 0)),
                        "2000 round trips");
    assert_int_equal(json_integer_value(json_object_get(json_object_get(j, "meta"), "rounds")),
                     2000);
    json_decref(j);
    bench_table_destroy(&t);
}

static void test_limits(void **state)
{
    (void)state;
    bench_table_t *t = bench_table_new("x", "x");
    char key[16];
    for (int i = 0; i < 16; i++) {
        snprintf(key, sizeof key, "c%d", i);
        assert_int_equal(bench_table_column(t, key, key, 0), i);
    }
    assert_int_equal(bench_table_column(t, "c16", "c16", 0), -1);
    for (int i = 0; i < 100; i++)   /* rows grow */
        assert_int_equal(bench_table_row(t), i);
    assert_int_equal(bench_table_rows(t), 100);
    assert_true(isnan(bench_table_get(t, 99, 15)));
    bench_table_set(t, 99, 15, 3);
    assert_true(bench_table_get(t, 99, 15) == 3);
    bench_table_destroy(&t);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_text),
        cmocka_unit_test(test_csv),
        cmocka_unit_test(test_json),
        cmocka_unit_test(test_limits),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
