/* test_parse.c -- strict option numbers (common/parse.c). */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <math.h>

#include "parse.h"

static void test_u64(void **state)
{
    (void)state;
    uint64_t v = 7;
    assert_int_equal(parse_u64("42", 0, 100, &v), 0);
    assert_int_equal(v, 42);
    assert_int_equal(parse_u64("18446744073709551615", 0, UINT64_MAX, &v), 0);
    assert_true(v == UINT64_MAX);
    v = 7;
    const char *bad[] = {"", "-1", "4x", " ", "101", "18446744073709551616", "0x10"};
    for (size_t i = 0; i < sizeof bad / sizeof *bad; i++)
        assert_int_equal(parse_u64(bad[i], 0, 100, &v), -1);
    assert_int_equal(parse_u64("0", 1, 100, &v), -1);   /* below lo */
    assert_int_equal(v, 7);                              /* untouched on error */
}

static void test_i64(void **state)
{
    (void)state;
    int64_t v = 0;
    assert_int_equal(parse_i64("-128", -128, 127, &v), 0);
    assert_int_equal(v, -128);
    assert_int_equal(parse_i64("-129", -128, 127, &v), -1);
    assert_int_equal(parse_i64("128", -128, 127, &v), -1);
    assert_int_equal(parse_i64("", -128, 127, &v), -1);
    assert_int_equal(parse_i64("1.5", -128, 127, &v), -1);
}

static void test_double(void **state)
{
    (void)state;
    double v = 0;
    assert_int_equal(parse_double("0.25", 0, 1, &v), 0);
    assert_true(v == 0.25);
    const char *bad[] = {"", "nan", "inf", "-0.5", "1.5", "2s", "1e400"};
    for (size_t i = 0; i < sizeof bad / sizeof *bad; i++)
        assert_int_equal(parse_double(bad[i], 0, 1, &v), -1);
    assert_int_equal(parse_double("1e300", 0, HUGE_VAL, &v), 0);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_u64),
        cmocka_unit_test(test_i64),
        cmocka_unit_test(test_double),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
