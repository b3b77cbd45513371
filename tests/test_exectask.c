/* test_exectask.c -- the exec task, run directly on a ctx (off a
 * scheduler qj_sleep sleeps the thread); its place in a worker process and
 * its cancel are covered by tests/integration/test_security.py. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <jansson.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "ctx.h"
#include "exectask.h"
#include "mpjson.h"
#include "registry.h"

typedef struct fixture {
    qj_registry *reg;
    qj_ctx *ctx;
} fixture_t;

static int s_setup(void **state)
{
    fixture_t *f = calloc(1, sizeof *f);
    f->reg = qj_registry_new();
    f->ctx = qj_ctx_new(NULL);
    if (!f->reg || !f->ctx || exectask_register(f->reg) != 0)
        return -1;
    *state = f;
    return 0;
}

static int s_teardown(void **state)
{
    fixture_t *f = *state;
    qj_ctx_destroy(&f->ctx);
    qj_registry_destroy(&f->reg);
    free(f);
    return 0;
}

/* Run exec with JSON arguments; returns the status, *value the result as
 * a JSON object (caller decrefs; NULL if none) and *error the message. */
static qj_status s_run(fixture_t *f, const char *args, json_t **value, const char **error)
{
    qj_task_fn fn = qj_registry_find(f->reg, EXECTASK_NAME, strlen(EXECTASK_NAME));
    assert_non_null(fn);
    msgpack_sbuffer sb;
    msgpack_sbuffer_init(&sb);
    char err[256];
    assert_int_equal(mpjson_from_text(args, &sb, err, sizeof err), 0);
    assert_int_equal(qj_ctx_start(f->ctx, 7, 1, NULL, sb.data, sb.size, err, sizeof err), 0);
    msgpack_sbuffer_destroy(&sb);
    int ret = fn(f->ctx);
    const void *val;
    size_t len;
    qj_status st = qj_ctx_outcome(f->ctx, ret, &val, &len, error);
    *value = len ? mpjson_to_json(val, len, err, sizeof err) : NULL;
    return st;
}

static const char *s_str(json_t *v, const char *key)
{
    return json_string_value(json_object_get(v, key));
}

static void test_output_and_status(void **state)
{
    json_t *v;
    const char *err;
    assert_int_equal(s_run(*state, "{\"argv\": [\"sh\", \"-c\", \"printf 'a\\\\n'; printf b >&2; "
                                   "exit 7\"]}", &v, &err), QJ_OK);
    assert_int_equal(json_integer_value(json_object_get(v, "exit")), 7);
    assert_true(json_is_null(json_object_get(v, "signal")));
    assert_string_equal(s_str(v, "stdout"), "a\n");
    assert_string_equal(s_str(v, "stderr"), "b");
    assert_true(json_is_false(json_object_get(v, "truncated")));
    assert_true(json_is_false(json_object_get(v, "timed_out")));
    json_decref(v);
    /* no shell between the words and the program */
    assert_int_equal(s_run(*state, "{\"argv\": [\"echo\", \"$(id)\", \"*\"]}", &v, &err), QJ_OK);
    assert_string_equal(s_str(v, "stdout"), "$(id) *\n");
    json_decref(v);
    /* stdin is /dev/null */
    assert_int_equal(s_run(*state, "{\"argv\": [\"cat\"]}", &v, &err), QJ_OK);
    assert_string_equal(s_str(v, "stdout"), "");
    assert_int_equal(json_integer_value(json_object_get(v, "exit")), 0);
    json_decref(v);
}

static void test_bounds(void **state)
{
    json_t *v;
    const char *err;
    assert_int_equal(s_run(*state, "{\"argv\": [\"head\", \"-c\", \"300000\", \"/dev/zero\"], "
                                   "\"max_output\": 1000}", &v, &err), QJ_OK);
    assert_int_equal(strlen(s_str(v, "stdout")), 0);   /* NUL bytes: JSON keeps them */
    assert_int_equal(json_string_length(json_object_get(v, "stdout")), 1000);
    assert_true(json_is_true(json_object_get(v, "truncated")));
    json_decref(v);
    /* bytes that are not UTF-8 come back as '?' */
    assert_int_equal(s_run(*state, "{\"argv\": [\"printf\", \"x\\\\377\\\\303\\\\251y\"]}", &v,
                           &err), QJ_OK);
    assert_string_equal(s_str(v, "stdout"), "x?\xc3\xa9y");
    json_decref(v);
    struct timespec t0, t1;
    clock_gettime(CLOCK_MONOTONIC, &t0);
    assert_int_equal(s_run(*state, "{\"argv\": [\"sh\", \"-c\", \"sleep 20 & sleep 20\"], "
                                   "\"timeout_ms\": 200}", &v, &err), QJ_OK);
    clock_gettime(CLOCK_MONOTONIC, &t1);
    assert_true(json_is_null(json_object_get(v, "exit")));
    assert_int_equal(json_integer_value(json_object_get(v, "signal")), 9);
    assert_true(json_is_true(json_object_get(v, "timed_out")));
    /* the whole group went: the background sleep does not hold the pipes */
    assert_true(t1.tv_sec - t0.tv_sec < 5);
    json_decref(v);
}

static void test_refusals(void **state)
{
    json_t *v;
    const char *err;
    static const char *const bad[] = {
        "{}", "{\"argv\": []}", "{\"argv\": \"ls\"}", "{\"argv\": [1]}", "[\"ls\"]",
        "{\"argv\": [\"\"]}", "{\"argv\": [\"true\"], \"timeout_ms\": 0}",
        "{\"argv\": [\"true\"], \"max_output\": 10000000}",
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        assert_int_equal(s_run(*state, bad[i], &v, &err), QJ_ERROR);
        assert_non_null(strstr(err, "exec"));
        json_decref(v);
    }
    /* (Under valgrind, posix_spawn cannot report a failed exec: the child
     * exits 127, as a shell's would.) */
    if (s_run(*state, "{\"argv\": [\"/no/such/program\"]}", &v, &err) == QJ_OK)
        assert_int_equal(json_integer_value(json_object_get(v, "exit")), 127);
    else
        assert_non_null(strstr(err, "cannot run '/no/such/program'"));
    json_decref(v);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_output_and_status),
        cmocka_unit_test(test_bounds),
        cmocka_unit_test(test_refusals),
    };
    return cmocka_run_group_tests(tests, s_setup, s_teardown);
}
