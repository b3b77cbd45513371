/* test_endpoint.c -- which addresses may be bound without authentication,
 * and the endpoint file written whole. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <cmocka.h>

#include "endpoint.h"

static void test_loopback(void **state)
{
    (void)state;
    const char *yes[] = {"localhost", "::1", "127.0.0.1", "127.1.2.3"};
    const char *no[] = {"10.0.0.1", "0.0.0.0", "*", "::", "example.com", "128.0.0.1", ""};
    for (size_t i = 0; i < sizeof yes / sizeof yes[0]; i++)
        assert_true(endpoint_loopback(yes[i]));
    for (size_t i = 0; i < sizeof no / sizeof no[0]; i++)
        assert_false(endpoint_loopback(no[i]));
}

static void test_check_bind(void **state)
{
    (void)state;
    char err[512];
    const char *ok[] = {"tcp://127.0.0.1:5555", "tcp://127.0.0.1:*", "tcp://[::1]:5555",
                        "tcp://localhost:1", "ipc:///tmp/x.sock", "inproc://x"};
    const char *refused[] = {"tcp://0.0.0.0:5555", "tcp://*:5555", "tcp://10.1.1.1:1",
                             "tcp://eth0:1", "udp://127.0.0.1:1", "pgm://x"};
    for (size_t i = 0; i < sizeof ok / sizeof ok[0]; i++)
        assert_int_equal(endpoint_check_bind(ok[i], false, err, sizeof err), 0);
    for (size_t i = 0; i < sizeof refused / sizeof refused[0]; i++) {
        err[0] = '\0';
        assert_int_equal(endpoint_check_bind(refused[i], false, err, sizeof err), -1);
        assert_non_null(strstr(err, refused[i]));
        assert_non_null(strstr(err, "--insecure"));
        assert_int_equal(endpoint_check_bind(refused[i], true, err, sizeof err), 0);
    }
}

static void test_write_file(void **state)
{
    (void)state;
    char dir[] = "/tmp/qjob-test-endpoint-XXXXXX", path[128], err[512], text[256];
    assert_non_null(mkdtemp(dir));
    snprintf(path, sizeof path, "%s/ep", dir);
    const char *lines[] = {"tcp://127.0.0.1:4000", "ipc:///tmp/b"};
    assert_int_equal(endpoint_write_file(path, "endpoint file", lines, 2, err, sizeof err), 0);
    FILE *f = fopen(path, "r");
    assert_non_null(f);
    size_t n = fread(text, 1, sizeof text - 1, f);
    text[n] = '\0';
    fclose(f);
    assert_string_equal(text, "tcp://127.0.0.1:4000\nipc:///tmp/b\n");
    unlink(path);
    rmdir(dir);
    /* The directory is gone: the message names the file and says why. */
    assert_int_equal(endpoint_write_file(path, "metrics file", lines, 1, err, sizeof err), -1);
    assert_non_null(strstr(err, "metrics file"));
    assert_non_null(strstr(err, "No such file"));
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_loopback),
        cmocka_unit_test(test_check_bind),
        cmocka_unit_test(test_write_file),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
