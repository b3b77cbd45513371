/* test_registry.c -- task names, lookup, listing and plugin loading. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <libgen.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include "registry.h"

static int t_one(qj_ctx *ctx) { (void)ctx; return 0; }
static int t_two(qj_ctx *ctx) { (void)ctx; return 1; }

/* The example plugin, built next to this test in the build tree. */
static const char *s_example_plugin(void)
{
    static char path[4096];
    char exe[4000];
    ssize_t n = readlink("/proc/self/exe", exe, sizeof exe - 1);
    assert_true(n > 0);
    exe[n] = '\0';
    snprintf(path, sizeof path, "%s/../client/examples/example_tasks.so", dirname(exe));
    return path;
}

static void test_register_and_find(void **state)
{
    (void)state;
    qj_registry *reg = qj_registry_new();
    assert_non_null(reg);
    assert_int_equal(qj_register(reg, "zeta", t_one, "last"), 0);
    assert_int_equal(qj_register(reg, "alpha", t_two, NULL), 0);
    assert_int_equal(qj_register(reg, "alphabet", t_one, ""), 0);
    assert_int_equal(qj_registry_count(reg), 3);
    assert_ptr_equal(qj_registry_find(reg, "alpha", 5), t_two);
    assert_ptr_equal(qj_registry_find(reg, "alphabet", 8), t_one);
    assert_ptr_equal(qj_registry_find(reg, "zeta", 4), t_one);
    /* By length, not by NUL: a prefix of a name is another name. */
    assert_ptr_equal(qj_registry_find(reg, "alphabet", 5), t_two);
    assert_null(qj_registry_find(reg, "alph", 4));
    assert_null(qj_registry_find(reg, "beta", 4));
    assert_null(qj_registry_find(reg, "", 0));
    assert_string_equal(qj_registry_error(reg), "");
    const char *name, *help, *origin;
    qj_registry_task(reg, 2, &name, &help, &origin);   /* in name order */
    assert_string_equal(name, "zeta");
    assert_string_equal(help, "last");
    assert_string_equal(origin, "built-in");
    qj_registry_task(reg, 0, &name, &help, &origin);
    assert_string_equal(name, "alpha");
    assert_string_equal(help, "");
    qj_registry_destroy(&reg);
    assert_null(reg);
    qj_registry_destroy(&reg);   /* safe twice */
}

static void test_refused_names(void **state)
{
    (void)state;
    qj_registry *reg = qj_registry_new();
    assert_int_equal(qj_register(reg, "echo", t_one, NULL), 0);
    assert_int_equal(qj_register(reg, "echo", t_two, NULL), -1);
    assert_non_null(strstr(qj_registry_error(reg), "already registered (by built-in)"));
    assert_ptr_equal(qj_registry_find(reg, "echo", 4), t_one);   /* the first one stays */

    assert_int_equal(qj_register(reg, "", t_one, NULL), -1);
    assert_non_null(strstr(qj_registry_error(reg), "invalid"));
    assert_int_equal(qj_register(reg, "two words", t_one, NULL), -1);
    assert_int_equal(qj_register(reg, "tab\there", t_one, NULL), -1);
    assert_int_equal(qj_register(reg, NULL, t_one, NULL), -1);
    assert_int_equal(qj_register(reg, "nofn", NULL, NULL), -1);
    assert_non_null(strstr(qj_registry_error(reg), "no function"));
    char longname[200];
    memset(longname, 'x', sizeof longname - 1);
    longname[sizeof longname - 1] = '\0';
    assert_int_equal(qj_register(reg, longname, t_one, NULL), -1);
    longname[128] = '\0';   /* exactly the limit */
    assert_int_equal(qj_register(reg, longname, t_one, NULL), 0);
    assert_int_equal(qj_registry_count(reg), 2);
    qj_registry_destroy(&reg);
}

static void test_names(void **state)
{
    (void)state;
    qj_registry *reg = qj_registry_new();
    char buf[64];
    qj_registry_names(reg, buf, sizeof buf);
    assert_string_equal(buf, "");
    const char *names[] = {"pi", "echo", "sleep", "noop"};
    for (size_t i = 0; i < 4; i++)
        assert_int_equal(qj_register(reg, names[i], t_one, NULL), 0);
    qj_registry_names(reg, buf, sizeof buf);
    assert_string_equal(buf, "echo, noop, pi, sleep");
    /* Too small: cut at a name, marked with "...". */
    char small[16];
    qj_registry_names(reg, small, sizeof small);
    assert_string_equal(small, "echo, noop, ...");
    qj_registry_destroy(&reg);
}

static void test_load_errors(void **state)
{
    (void)state;
    qj_registry *reg = qj_registry_new();
    char err[512];
    assert_int_equal(qj_registry_load(reg, "/nonexistent/plugin.so", err, sizeof err), -1);
    assert_non_null(strstr(err, "cannot load plugin /nonexistent/plugin.so"));
    /* A shared object that is not a plugin. */
    assert_int_equal(qj_registry_load(reg, "libm.so.6", err, sizeof err), -1);
    assert_non_null(strstr(err, "is not a qjob plugin"));
    assert_non_null(strstr(err, "qjob_plugin_init"));
    assert_int_equal(qj_registry_count(reg), 0);
    qj_registry_destroy(&reg);
}

static void test_load_example(void **state)
{
    (void)state;
    qj_registry *reg = qj_registry_new();
    char err[1024];
    const char *path = s_example_plugin();
    assert_int_equal(qj_register(reg, "echo", t_one, NULL), 0);
    int rc = qj_registry_load(reg, path, err, sizeof err);
    if (rc != 0)
        fail_msg("%s", err);
    assert_non_null(qj_registry_find(reg, "wordcount", 9));
    assert_non_null(qj_registry_find(reg, "fib", 3));
    assert_non_null(qj_registry_find(reg, "tree", 4));
    size_t n = qj_registry_count(reg);
    for (size_t i = 0; i < n; i++) {
        const char *name, *help, *origin;
        qj_registry_task(reg, i, &name, &help, &origin);
        assert_string_equal(origin, strcmp(name, "echo") == 0 ? "built-in" : path);
    }

    /* Loaded twice: every name is taken; the load fails, naming the
     * first owner, and leaves the first load's tasks in place. */
    assert_int_equal(qj_registry_load(reg, path, err, sizeof err), -1);
    assert_non_null(strstr(err, "already registered"));
    assert_non_null(strstr(err, path));
    assert_int_equal(qj_registry_count(reg), n);
    assert_non_null(qj_registry_find(reg, "wordcount", 9));
    qj_registry_destroy(&reg);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_register_and_find),
        cmocka_unit_test(test_refused_names),
        cmocka_unit_test(test_names),
        cmocka_unit_test(test_load_errors),
        cmocka_unit_test(test_load_example),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
