/* test_builtin.c -- the built-in tasks, run directly on a ctx (the ones
 * that need sub-jobs are covered by tests/integration/test_worker.py). */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "builtin.h"
#include "ctx.h"
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
    if (!f->reg || !f->ctx || builtin_register(f->reg) != 0)
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

/* Run task with JSON arguments; returns the status, *json the value as
 * JSON (caller frees) and *error the failure message. */
static qj_status s_run(fixture_t *f, const char *task, const char *args, char **json,
                       const char **error)
{
    qj_task_fn fn = qj_registry_find(f->reg, task, strlen(task));
    assert_non_null(fn);
    msgpack_sbuffer sb;
    msgpack_sbuffer_init(&sb);
    char err[256];
    if (args)
        assert_int_equal(mpjson_from_text(args, &sb, err, sizeof err), 0);
    assert_int_equal(qj_ctx_start(f->ctx, 1234, 1, NULL, sb.data, sb.size, err, sizeof err), 0);
    msgpack_sbuffer_destroy(&sb);
    int ret = fn(f->ctx);
    const void *val;
    size_t len;
    qj_status st = qj_ctx_outcome(f->ctx, ret, &val, &len, error);
    json_t *j = mpjson_to_json(val, len, err, sizeof err);
    assert_non_null(j);
    *json = json_dumps(j, JSON_COMPACT | JSON_ENCODE_ANY);
    json_decref(j);
    return st;
}

static void test_registered(void **state)
{
    fixture_t *f = *state;
    char names[256];
    qj_registry_names(f->reg, names, sizeof names);
    assert_string_equal(names, "echo, fail, noop, pi, pi_split, sleep");
}

static void test_noop_echo(void **state)
{
    fixture_t *f = *state;
    char *v;
    const char *err;
    assert_int_equal(s_run(f, "noop", "{\"x\": 1}", &v, &err), QJ_OK);
    assert_string_equal(v, "null");
    free(v);
    assert_int_equal(s_run(f, "echo", "{\"x\": [1, \"two\", {\"3\": 4.5}]}", &v, &err), QJ_OK);
    assert_string_equal(v, "{\"x\":[1,\"two\",{\"3\":4.5}]}");
    free(v);
    assert_int_equal(s_run(f, "echo", NULL, &v, &err), QJ_OK);
    assert_string_equal(v, "null");
    free(v);

    /* Echo hands back the argument bytes themselves; an explicit nil is
     * the empty (nil) result, as no arguments are. */
    qj_task_fn echo = qj_registry_find(f->reg, "echo", 4);
    const unsigned char mp[] = {0x92, 0xcc, 0x05, 0xa1, 'x'};   /* [5, "x"], 5 not minimal */
    const unsigned char nil[] = {0xc0};
    char e[256];
    const void *val;
    size_t len;
    assert_int_equal(qj_ctx_start(f->ctx, 1, 1, NULL, mp, sizeof mp, e, sizeof e), 0);
    assert_int_equal(qj_ctx_outcome(f->ctx, echo(f->ctx), &val, &len, &err), QJ_OK);
    assert_int_equal(len, sizeof mp);
    assert_memory_equal(val, mp, sizeof mp);
    assert_int_equal(qj_ctx_start(f->ctx, 2, 1, NULL, nil, sizeof nil, e, sizeof e), 0);
    assert_int_equal(qj_ctx_outcome(f->ctx, echo(f->ctx), &val, &len, &err), QJ_OK);
    assert_null(val);
    assert_int_equal(len, 0);
}

static void test_fail_task(void **state)
{
    fixture_t *f = *state;
    char *v;
    const char *err;
    assert_int_equal(s_run(f, "fail", "{\"message\": \"boom\"}", &v, &err), QJ_ERROR);
    assert_string_equal(err, "boom");
    free(v);
    assert_int_equal(s_run(f, "fail", "{}", &v, &err), QJ_ERROR);
    assert_non_null(strstr(err, "on purpose"));
    free(v);
}

static void test_sleep_task(void **state)
{
    fixture_t *f = *state;
    char *v;
    const char *err;
    assert_int_equal(s_run(f, "sleep", "{\"ms\": 1}", &v, &err), QJ_OK);
    free(v);
    assert_int_equal(s_run(f, "sleep", "{\"ms\": -1}", &v, &err), QJ_ERROR);
    assert_non_null(strstr(err, "{\"ms\": N}"));
    free(v);
    assert_int_equal(s_run(f, "sleep", "{}", &v, &err), QJ_ERROR);
    free(v);
}

static void test_pi_task(void **state)
{
    fixture_t *f = *state;
    char *v;
    const char *err;
    assert_int_equal(s_run(f, "pi", "{\"samples\": 2000000, \"seed\": 7}", &v, &err), QJ_OK);
    double est = strtod(v, NULL);
    free(v);
    /* 2M points: the standard error is about 0.0012. */
    assert_true(fabs(est - M_PI) < 0.01);
    /* The same seed gives the same estimate; the default seed is the job id. */
    assert_int_equal(s_run(f, "pi", "{\"samples\": 2000000, \"seed\": 7}", &v, &err), QJ_OK);
    assert_true(strtod(v, NULL) == est);
    free(v);
    assert_int_equal(s_run(f, "pi", "{\"samples\": 1000}", &v, &err), QJ_OK);
    char *w;
    assert_int_equal(s_run(f, "pi", "{\"samples\": 1000, \"seed\": 1234}", &w, &err), QJ_OK);
    assert_string_equal(v, w);
    free(v);
    free(w);

    assert_int_equal(s_run(f, "pi", "{\"samples\": 0}", &v, &err), QJ_ERROR);
    assert_non_null(strstr(err, "samples"));
    free(v);
    assert_int_equal(s_run(f, "pi", "{\"samples\": \"many\"}", &v, &err), QJ_ERROR);
    free(v);
}

static void test_pi_hits_split(void **state)
{
    (void)state;
    /* The points are a function of (seed, index): any split of the work
     * counts the same hits as doing it in one go. */
    uint64_t whole = builtin_pi_hits(99, 0, 300000);
    uint64_t parts = builtin_pi_hits(99, 0, 100000) + builtin_pi_hits(99, 100000, 150000) +
                     builtin_pi_hits(99, 250000, 50000);
    assert_int_equal(whole, parts);
    assert_true(builtin_pi_hits(99, 0, 300000) != builtin_pi_hits(100, 0, 300000));
    assert_int_equal(builtin_pi_hits(5, 0, 0), 0);
}

static void test_pi_split_args(void **state)
{
    fixture_t *f = *state;
    char *v;
    const char *err;
    assert_int_equal(s_run(f, "pi_split", "{\"samples\": 10, \"parts\": 20}", &v, &err),
                     QJ_ERROR);
    assert_non_null(strstr(err, "1 <= P <= N"));
    free(v);
    /* Valid arguments, but this ctx has no client for sub-jobs. */
    assert_int_equal(s_run(f, "pi_split", "{\"samples\": 100, \"parts\": 2}", &v, &err),
                     QJ_ERROR);
    assert_non_null(strstr(err, "no client"));
    free(v);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_registered, s_setup, s_teardown),
        cmocka_unit_test_setup_teardown(test_noop_echo, s_setup, s_teardown),
        cmocka_unit_test_setup_teardown(test_fail_task, s_setup, s_teardown),
        cmocka_unit_test_setup_teardown(test_sleep_task, s_setup, s_teardown),
        cmocka_unit_test_setup_teardown(test_pi_task, s_setup, s_teardown),
        cmocka_unit_test(test_pi_hits_split),
        cmocka_unit_test_setup_teardown(test_pi_split_args, s_setup, s_teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
