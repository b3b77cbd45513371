/* test_config.c -- the configuration file: entries become options in front
 * of the command line, the command line and the program's own section
 * win, and every mistake is named with its file, line and key. */
#include <getopt.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <cmocka.h>

#include "config.h"

static const struct option OPTS[] = {
    {"bind", required_argument, NULL, 'b'},
    {"binder", required_argument, NULL, 'B'},
    {"name", required_argument, NULL, 'n'},
    {"insecure", no_argument, NULL, 'I'},
    {"heartbeat", required_argument, NULL, 'H'},
    {"log-level", required_argument, NULL, 'l'},
    {"color", optional_argument, NULL, 'c'},
    {"help", no_argument, NULL, 'h'},
    {"version", no_argument, NULL, 'V'},
    {NULL, 0, NULL, 0},
};

static char dir[] = "/tmp/qjob-test-config-XXXXXX";
static char path[sizeof dir + 32];
static char E[512];

static int setup(void **state)
{
    (void)state;
    unsetenv("QJOB_CONFIG");
    return 0;
}

/* Write the test's configuration file. */
static void put(const char *text)
{
    FILE *f = fopen(path, "w");
    assert_non_null(f);
    fputs(text, f);
    fclose(f);
}

/* argv of a test: a NULL-terminated copy of the given words. */
typedef struct args {
    int argc;
    char **argv;
    char *words[32];
} args_t;

static void mk(args_t *a, ...)
{
    va_list ap;
    va_start(ap, a);
    a->argc = 0;
    a->words[a->argc++] = "qbroker";
    for (char *w; (w = va_arg(ap, char *)) != NULL;)
        a->words[a->argc++] = w;
    va_end(ap);
    a->words[a->argc] = NULL;
    a->argv = a->words;
}

/* Apply and compare the result with the expected words (after argv[0]). */
static void expect(args_t *a, const char *def, const char *const *want)
{
    if (cfg_apply(def, "qbroker", OPTS, &a->argc, &a->argv, E, sizeof E) != 0)
        fail_msg("cfg_apply failed: %s", E);
    assert_string_equal(a->argv[0], "qbroker");
    int n = 0;
    while (want[n])
        n++;
    for (int i = 0; i < n && i + 1 < a->argc; i++)
        assert_string_equal(a->argv[i + 1], want[i]);
    assert_int_equal(a->argc, n + 1);
    assert_null(a->argv[a->argc]);
}

/* Apply, expect failure with a message holding each of the given parts,
 * and argc/argv left as they were. */
static void expect_error(args_t *a, const char *def, const char *const *parts)
{
    int argc = a->argc;
    char **argv = a->argv;
    E[0] = 0;
    assert_int_equal(cfg_apply(def, "qbroker", OPTS, &a->argc, &a->argv, E, sizeof E), -1);
    assert_int_equal(a->argc, argc);
    assert_ptr_equal(a->argv, argv);
    for (size_t i = 0; parts[i]; i++)
        if (!strstr(E, parts[i]))
            fail_msg("error '%s' does not mention '%s'", E, parts[i]);
}

static void test_no_file_leaves_argv(void **state)
{
    (void)state;
    args_t a;
    mk(&a, "--bind", "x", NULL);
    char **before = a.argv;
    assert_int_equal(cfg_apply(NULL, "qbroker", OPTS, &a.argc, &a.argv, E, sizeof E), 0);
    assert_ptr_equal(a.argv, before);
    assert_int_equal(a.argc, 3);
    char missing[sizeof dir + 32];
    snprintf(missing, sizeof missing, "%s/absent.conf", dir);
    assert_int_equal(cfg_apply(missing, "qbroker", OPTS, &a.argc, &a.argv, E, sizeof E), 0);
    assert_ptr_equal(a.argv, before);
}

static void test_entries_go_first(void **state)
{
    (void)state;
    put("# comment\n"
        "; another\n"
        "[qjob]\n"
        "log-level = debug\n"
        "\n"
        "[qworker]\n"
        "procs = 4\n"
        "[qbroker]\n"
        "bind = tcp://10.0.0.1:5555   ; inline comment\n"
        "bind=ipc:///run/q.sock\n"
        "heartbeat = 500\n"
        "  # an indented comment is fine\n"
        "insecure = yes\n");
    args_t a;
    mk(&a, "--config", path, "--name", "n1", NULL);
    expect(&a, NULL, (const char *const[]){"--log-level=debug", "--bind=tcp://10.0.0.1:5555",
           "--bind=ipc:///run/q.sock", "--heartbeat=500", "--insecure", "--name", "n1", NULL});
}

static void test_command_line_wins(void **state)
{
    (void)state;
    put("[qbroker]\nbind = a\nbind = b\nheartbeat = 500\nname = file\n");
    args_t a;
    /* --bind given (with its value in the next element): both file binds
     * go; --heart is --heartbeat abbreviated; "--name" after "--" is not
     * an option. */
    mk(&a, "--bind", "c", "--heart=9", "--", "--name", NULL);
    setenv("QJOB_CONFIG", path, 1);
    expect(&a, NULL, (const char *const[]){"--name=file", "--bind", "c", "--heart=9", "--",
           "--name", NULL});
    /* the value of an option is not taken for an option */
    mk(&a, "--name", "--bind", NULL);
    expect(&a, NULL, (const char *const[]){"--bind=a", "--bind=b", "--heartbeat=500",
           "--name", "--bind", NULL});
    /* an ambiguous prefix (--bin: bind or binder) counts as neither */
    mk(&a, "--bin=z", NULL);
    expect(&a, NULL, (const char *const[]){"--bind=a", "--bind=b", "--heartbeat=500",
           "--name=file", "--bin=z", NULL});
}

static void test_getopt_sees_the_last(void **state)
{
    (void)state;
    put("[qbroker]\nheartbeat = 500\nname = file\n");
    args_t a;
    mk(&a, "--config", path, "--heartbeat", "7", NULL);
    assert_int_equal(cfg_apply(NULL, "qbroker", OPTS, &a.argc, &a.argv, E, sizeof E), 0);
    const char *hb = NULL, *name = NULL;
    int c;
    optind = 0;
    while ((c = getopt_long(a.argc, a.argv, "", OPTS, NULL)) != -1) {
        if (c == 'H') hb = optarg;
        else if (c == 'n') name = optarg;
        else fail_msg("unexpected option %d", c);
    }
    assert_int_equal(optind, a.argc);
    assert_string_equal(hb, "7");
    assert_string_equal(name, "file");
}

static void test_own_section_beats_common(void **state)
{
    (void)state;
    put("[qjob]\nlog-level = warn\nbind = common1\nbind = common2\nname = c\n"
        "[qbroker]\nlog-level = debug\nbind = own\n"
        "[qjob]\nheartbeat = 5\n");
    args_t a;
    mk(&a, "--config=", NULL);
    expect(&a, NULL, (const char *const[]){NULL});
    mk(&a, NULL);
    expect(&a, path, (const char *const[]){"--name=c", "--heartbeat=5",
           "--log-level=debug", "--bind=own", NULL});
}

static void test_flags(void **state)
{
    (void)state;
    args_t a;
    put("[qjob]\ninsecure = on\n[qbroker]\ninsecure = No\n");
    mk(&a, NULL);
    expect(&a, path, (const char *const[]){NULL});
    put("[qbroker]\ninsecure = TRUE\ncolor =\ncolor = red\n");
    mk(&a, NULL);
    expect(&a, path, (const char *const[]){"--insecure", "--color", "--color=red", NULL});
    put("[qbroker]\ninsecure = maybe\n");
    mk(&a, NULL);
    expect_error(&a, path, (const char *const[]){path, ":2:", "'insecure' is a flag", "maybe",
                 NULL});
}

static void test_config_option_and_env(void **state)
{
    (void)state;
    char other[sizeof dir + 32];
    snprintf(other, sizeof other, "%s/other.conf", dir);
    FILE *f = fopen(other, "w");
    assert_non_null(f);
    fputs("[qbroker]\nname = other\n", f);
    fclose(f);
    put("[qbroker]\nname = main\n");
    args_t a;
    /* --config beats $QJOB_CONFIG, which beats the default */
    setenv("QJOB_CONFIG", other, 1);
    mk(&a, "--config", path, NULL);
    expect(&a, other, (const char *const[]){"--name=main", NULL});
    mk(&a, NULL);
    expect(&a, path, (const char *const[]){"--name=other", NULL});
    /* an empty $QJOB_CONFIG reads nothing, not even the default */
    setenv("QJOB_CONFIG", "", 1);
    mk(&a, NULL);
    expect(&a, path, (const char *const[]){NULL});
    unsetenv("QJOB_CONFIG");
    mk(&a, NULL);
    expect(&a, path, (const char *const[]){"--name=main", NULL});
    /* a named file must exist; a default need not */
    char missing[sizeof dir + 32];
    snprintf(missing, sizeof missing, "%s/absent.conf", dir);
    mk(&a, "--config", missing, NULL);
    expect_error(&a, NULL, (const char *const[]){"cannot open", missing, NULL});
    setenv("QJOB_CONFIG", missing, 1);
    mk(&a, NULL);
    expect_error(&a, path, (const char *const[]){"cannot open", missing, NULL});
    unsetenv("QJOB_CONFIG");
    mk(&a, "--name", "x", "--config", NULL);
    expect_error(&a, NULL, (const char *const[]){"--config needs a FILE", NULL});
}

static void test_bad_keys(void **state)
{
    (void)state;
    args_t a;
    mk(&a, NULL);
    put("[qbroker]\nbind = a\n\nbnd = b\n");
    expect_error(&a, path, (const char *const[]){path, ":4:", "unknown key 'bnd'", "[qbroker]",
                 NULL});
    put("[qjob]\nprocs = 2\n");
    expect_error(&a, path, (const char *const[]){":2:", "unknown key 'procs'", "[qjob]", NULL});
    put("[qbroker]\nhelp = yes\n");
    expect_error(&a, path, (const char *const[]){":2:", "'help' cannot be set", NULL});
    put("[qbroker]\nconfig = /x\n");
    expect_error(&a, path, (const char *const[]){":2:", "'config' cannot be set", NULL});
    put("name = x\n");
    expect_error(&a, path, (const char *const[]){":1:", "'name' is outside any section", NULL});
    put("[qborker]\nname = x\n");
    expect_error(&a, path, (const char *const[]){":2:", "unknown section [qborker]", NULL});
    put("[qbroker]\nname =\n");
    expect_error(&a, path, (const char *const[]){":2:", "'name' needs a value", NULL});
    /* another program's section is not checked against our options */
    put("[qworker]\nprocs = 2\n[qclient]\ntimeout = 3\n");
    expect(&a, path, (const char *const[]){NULL});
}

static void test_bad_lines(void **state)
{
    (void)state;
    args_t a;
    mk(&a, NULL);
    put("[qbroker]\nname = a\nthis line has no equals sign\nbnd = x\n");
    expect_error(&a, path, (const char *const[]){path, ":3:", "neither", NULL});
    put("[qbroker]\nname = a\n  bind = b\n");
    expect_error(&a, path, (const char *const[]){":3:", "indented line", NULL});
    char big[600];
    memset(big, 'x', sizeof big - 1);
    big[sizeof big - 1] = 0;
    char text[700];
    snprintf(text, sizeof text, "[qbroker]\n\nname = %s\n", big);
    put(text);
    expect_error(&a, path, (const char *const[]){":3:", "line longer than", NULL});
    put("[qbroker\nname = a\n");
    expect_error(&a, path, (const char *const[]){":1:", "neither", NULL});
}

static void test_repeated_calls(void **state)
{
    (void)state;
    put("[qbroker]\nname = a\n");
    args_t a;
    mk(&a, "--heartbeat=1", NULL);
    expect(&a, path, (const char *const[]){"--name=a", "--heartbeat=1", NULL});
    /* applying again to the built argv (copied before it is released):
     * --name=a is on the command line now, so the file's goes */
    expect(&a, path, (const char *const[]){"--name=a", "--heartbeat=1", NULL});
    put("[qbroker]\nname = b\nbind = x\n");
    expect(&a, path, (const char *const[]){"--bind=x", "--name=a", "--heartbeat=1", NULL});
}

int main(void)
{
    if (!mkdtemp(dir)) {
        perror("mkdtemp");
        return 1;
    }
    snprintf(path, sizeof path, "%s/qjob.conf", dir);
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup(test_no_file_leaves_argv, setup),
        cmocka_unit_test_setup(test_entries_go_first, setup),
        cmocka_unit_test_setup(test_command_line_wins, setup),
        cmocka_unit_test_setup(test_getopt_sees_the_last, setup),
        cmocka_unit_test_setup(test_own_section_beats_common, setup),
        cmocka_unit_test_setup(test_flags, setup),
        cmocka_unit_test_setup(test_config_option_and_env, setup),
        cmocka_unit_test_setup(test_bad_keys, setup),
        cmocka_unit_test_setup(test_bad_lines, setup),
        cmocka_unit_test_setup(test_repeated_calls, setup),
    };
    int rc = cmocka_run_group_tests(tests, NULL, NULL);
    char other[sizeof dir + 32];
    snprintf(other, sizeof other, "%s/other.conf", dir);
    unlink(path);
    unlink(other);
    rmdir(dir);
    return rc;
}
