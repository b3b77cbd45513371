/* test_task.c -- the task API over a qj_ctx: arguments, results, failure,
 * stop requests, progress. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdlib.h>
#include <string.h>

#include "ctx.h"
#include "qjlimits.h"
#include "mpjson.h"
#include "scheduler.h"

/* Start ctx on a job whose arguments are the given JSON. */
static void s_start_json(qj_ctx *ctx, const char *json)
{
    msgpack_sbuffer sb;
    msgpack_sbuffer_init(&sb);
    char err[256];
    assert_int_equal(mpjson_from_text(json, &sb, err, sizeof err), 0);
    assert_int_equal(qj_ctx_start(ctx, 42, 3, "cpu", sb.data, sb.size, err, sizeof err), 0);
    msgpack_sbuffer_destroy(&sb);
}

/* The job's outcome, and its value as JSON text (caller frees). */
static qj_status s_outcome(qj_ctx *ctx, int ret, char **json, const char **error)
{
    const void *val;
    size_t len;
    qj_status st = qj_ctx_outcome(ctx, ret, &val, &len, error);
    if (json) {
        char err[256];
        json_t *j = mpjson_to_json(val, len, err, sizeof err);
        assert_non_null(j);
        *json = json_dumps(j, JSON_COMPACT | JSON_ENCODE_ANY);
        json_decref(j);
    }
    return st;
}

static void s_expect_value(qj_ctx *ctx, const char *want)
{
    char *json;
    const char *error;
    assert_int_equal(s_outcome(ctx, 0, &json, &error), QJ_OK);
    assert_null(error);
    assert_string_equal(json, want);
    free(json);
}

static void test_args(void **state)
{
    (void)state;
    qj_ctx *ctx = qj_ctx_new(NULL);
    assert_non_null(ctx);
    s_start_json(ctx, "{\"n\": 7, \"neg\": -5, \"f\": 2.5, \"whole\": 1e6, \"s\": \"hi\", "
                      "\"list\": [1]}");
    assert_int_equal(qj_ctx_job_id(ctx), 42);
    assert_int_equal(qj_ctx_attempt(ctx), 3);
    assert_string_equal(qj_ctx_queue(ctx), "cpu");
    assert_int_equal(qj_args(ctx)->type, MSGPACK_OBJECT_MAP);

    assert_int_equal(qj_arg_int(ctx, "n", 0), 7);
    assert_int_equal(qj_arg_int(ctx, "neg", 0), -5);
    assert_int_equal(qj_arg_int(ctx, "whole", 0), 1000000);   /* a whole float */
    assert_int_equal(qj_arg_int(ctx, "f", 99), 99);           /* not whole */
    assert_int_equal(qj_arg_int(ctx, "s", 99), 99);           /* wrong type */
    assert_int_equal(qj_arg_int(ctx, "missing", -1), -1);
    assert_true(qj_arg_double(ctx, "f", 0) == 2.5);
    assert_true(qj_arg_double(ctx, "n", 0) == 7.0);
    assert_true(qj_arg_double(ctx, "list", -1) == -1);
    assert_string_equal(qj_arg_str(ctx, "s", NULL), "hi");
    assert_null(qj_arg_str(ctx, "n", NULL));
    assert_string_equal(qj_arg_str(ctx, "nope", "dflt"), "dflt");

    char *json = qj_args_json(ctx);
    assert_non_null(json);
    assert_non_null(strstr(json, "\"s\":\"hi\""));
    free(json);

    /* A uint64 over INT64_MAX does not fit: the default. */
    msgpack_sbuffer sb;
    msgpack_sbuffer_init(&sb);
    msgpack_packer pk;
    msgpack_packer_init(&pk, &sb, msgpack_sbuffer_write);
    msgpack_pack_map(&pk, 1);
    msgpack_pack_str(&pk, 3);
    msgpack_pack_str_body(&pk, "big", 3);
    msgpack_pack_uint64(&pk, UINT64_MAX);
    char err[256];
    assert_int_equal(qj_ctx_start(ctx, 1, 1, NULL, sb.data, sb.size, err, sizeof err), 0);
    msgpack_sbuffer_destroy(&sb);
    assert_int_equal(qj_arg_int(ctx, "big", 99), 99);
    assert_true(qj_arg_double(ctx, "big", 0) > 1e19);

    /* Arguments that are not a map: every lookup gives the default. */
    s_start_json(ctx, "[1, 2]");
    assert_int_equal(qj_args(ctx)->type, MSGPACK_OBJECT_ARRAY);
    assert_int_equal(qj_arg_int(ctx, "n", 5), 5);
    /* No arguments at all: nil. */
    assert_int_equal(qj_ctx_start(ctx, 1, 1, NULL, NULL, 0, err, sizeof err), 0);
    assert_int_equal(qj_args(ctx)->type, MSGPACK_OBJECT_NIL);
    assert_string_equal(qj_ctx_queue(ctx), "default");
    qj_ctx_destroy(&ctx);
    assert_null(ctx);
    qj_ctx_destroy(&ctx);
}

static void test_bad_args(void **state)
{
    (void)state;
    qj_ctx *ctx = qj_ctx_new(NULL);
    char err[256];
    /* An array32 header claiming 2^32 - 1 elements, with none there. */
    const unsigned char hostile[] = {0xdd, 0xff, 0xff, 0xff, 0xff};
    assert_int_equal(qj_ctx_start(ctx, 1, 1, NULL, hostile, sizeof hostile, err, sizeof err), -1);
    assert_non_null(strstr(err, "not one valid msgpack value"));
    assert_int_equal(qj_args(ctx)->type, MSGPACK_OBJECT_NIL);
    /* Two values where one is expected. */
    const unsigned char two[] = {0x01, 0x02};
    assert_int_equal(qj_ctx_start(ctx, 1, 1, NULL, two, sizeof two, err, sizeof err), -1);
    qj_ctx_destroy(&ctx);
}

static void test_returns(void **state)
{
    (void)state;
    qj_ctx *ctx = qj_ctx_new(NULL);
    s_start_json(ctx, "{}");
    s_expect_value(ctx, "null");              /* no call: nil */
    assert_int_equal(qj_return_int(ctx, -12), 0);
    s_expect_value(ctx, "-12");
    assert_int_equal(qj_return_double(ctx, 0.5), 0);
    s_expect_value(ctx, "0.5");
    assert_int_equal(qj_return_str(ctx, "a\"b"), 0);
    s_expect_value(ctx, "\"a\\\"b\"");
    assert_int_equal(qj_return_json(ctx, "{\"k\": [1, 2.5, null]}"), 0);
    s_expect_value(ctx, "{\"k\":[1,2.5,null]}");
    /* Bad JSON leaves the last good value. */
    assert_int_equal(qj_return_json(ctx, "{oops"), -1);
    s_expect_value(ctx, "{\"k\":[1,2.5,null]}");
    const unsigned char mp[] = {0x92, 0x01, 0xa1, 'x'};   /* [1, "x"] */
    assert_int_equal(qj_return_mp(ctx, mp, sizeof mp), 0);
    s_expect_value(ctx, "[1,\"x\"]");
    assert_int_equal(qj_return_mp(ctx, mp, 3), -1);        /* truncated */
    s_expect_value(ctx, "[1,\"x\"]");
    msgpack_packer *pk = qj_return_packer(ctx);
    msgpack_pack_map(pk, 1);
    msgpack_pack_str(pk, 1);
    msgpack_pack_str_body(pk, "y", 1);
    msgpack_pack_true(pk);
    s_expect_value(ctx, "{\"y\":true}");
    assert_int_equal(qj_return_nil(ctx), 0);
    s_expect_value(ctx, "null");

    /* A new job starts with nil, whatever the last one returned. */
    qj_return_int(ctx, 5);
    s_start_json(ctx, "{}");
    s_expect_value(ctx, "null");
    qj_ctx_destroy(&ctx);
}

static void test_bad_results(void **state)
{
    (void)state;
    qj_ctx *ctx = qj_ctx_new(NULL);
    const char *error;

    /* Packing two values is a task bug, reported as the job's error. */
    s_start_json(ctx, "{}");
    msgpack_packer *pk = qj_return_packer(ctx);
    msgpack_pack_int(pk, 1);
    msgpack_pack_int(pk, 2);
    assert_int_equal(s_outcome(ctx, 0, NULL, &error), QJ_ERROR);
    assert_non_null(strstr(error, "invalid result"));

    /* Over the value limit. */
    s_start_json(ctx, "{}");
    char *big = malloc(QJ_MAX_VALUE + 10);
    memset(big, 'a', QJ_MAX_VALUE + 9);
    big[QJ_MAX_VALUE + 9] = '\0';
    assert_int_equal(qj_return_str(ctx, big), 0);
    free(big);
    assert_int_equal(s_outcome(ctx, 0, NULL, &error), QJ_ERROR);
    assert_non_null(strstr(error, "over the limit"));

    /* Non-zero return without qj_fail. */
    s_start_json(ctx, "{}");
    assert_int_equal(s_outcome(ctx, 3, NULL, &error), QJ_ERROR);
    assert_non_null(strstr(error, "returned 3"));
    qj_ctx_destroy(&ctx);
}

static void test_fail(void **state)
{
    (void)state;
    qj_ctx *ctx = qj_ctx_new(NULL);
    const char *error;
    s_start_json(ctx, "{}");
    qj_return_int(ctx, 1);
    assert_int_equal(qj_fail(ctx, "bad %s %d", "input", 7), -1);
    assert_int_equal(s_outcome(ctx, -1, NULL, &error), QJ_ERROR);
    assert_string_equal(error, "bad input 7");

    /* A new job is not failed. */
    s_start_json(ctx, "{}");
    assert_int_equal(s_outcome(ctx, 0, NULL, &error), QJ_OK);

    /* Over QJ_MAX_ERROR: cut, and never in the middle of a character. */
    char *msg = malloc(QJ_MAX_ERROR * 2);
    memset(msg, 'a', QJ_MAX_ERROR - 1);
    strcpy(msg + QJ_MAX_ERROR - 1, "\xc3\xa9tail");   /* é across the limit */
    qj_fail(ctx, "%s", msg);
    s_outcome(ctx, -1, NULL, &error);
    assert_int_equal(strlen(error), QJ_MAX_ERROR - 1);
    free(msg);

    /* Bytes that are not UTF-8 become '?': peers decode text as UTF-8. */
    qj_fail(ctx, "x\xff" "y\xc3" "z\xed\xa0\x80" "ok \xe2\x82\xac");
    s_outcome(ctx, -1, NULL, &error);
    assert_string_equal(error, "x?y?z???ok \xe2\x82\xac");
    qj_ctx_destroy(&ctx);
}

static void test_stop(void **state)
{
    (void)state;
    qj_ctx *ctx = qj_ctx_new(NULL);
    const char *error;
    s_start_json(ctx, "{}");
    assert_false(qj_cancelled(ctx));
    assert_int_equal(qj_yield(ctx), 0);
    assert_int_equal(qj_sleep(ctx, 1), 0);   /* outside a scheduler: a plain sleep */

    /* Flagged but never noticed: the task ran to its end, its result stands. */
    qj_ctx_stop(ctx, QJ_CANCELLED);
    qj_return_int(ctx, 1);
    assert_int_equal(s_outcome(ctx, 0, NULL, &error), QJ_OK);

    /* Noticed: the job ends cancelled whatever the task returns. */
    assert_int_equal(qj_sleep(ctx, 100000), -1);
    assert_int_equal(qj_yield(ctx), -1);
    assert_int_equal(qj_progress(ctx, 1, 2, NULL), -1);
    assert_int_equal(s_outcome(ctx, 0, NULL, &error), QJ_CANCELLED);
    assert_non_null(strstr(error, "cancelled"));

    /* The first reason sticks. */
    s_start_json(ctx, "{}");
    qj_ctx_stop(ctx, QJ_TIMEOUT);
    qj_ctx_stop(ctx, QJ_CANCELLED);
    assert_true(qj_cancelled(ctx));
    assert_int_equal(s_outcome(ctx, -1, NULL, &error), QJ_TIMEOUT);
    assert_non_null(strstr(error, "timeout"));
    qj_ctx_destroy(&ctx);
}

/* ---- stop requests inside a scheduler coroutine */

static int g_sleep_rc = 99;

static void s_sleeper(void *arg)
{
    g_sleep_rc = qj_sleep(arg, 3600 * 1000);
}

static void test_stop_wakes_sleep(void **state)
{
    (void)state;
    qj_ctx *ctx = qj_ctx_new(NULL);
    s_start_json(ctx, "{}");
    sched_t *s = sched_new(0);
    coro_t *co = sched_spawn(s, s_sleeper, ctx, NULL);
    sched_run(s);
    assert_int_equal(g_sleep_rc, 99);        /* asleep */
    sched_wake(s, co);                        /* a wake-up that is not a stop */
    sched_run(s);
    assert_int_equal(g_sleep_rc, 99);        /* sleeps on */
    qj_ctx_stop(ctx, QJ_CANCELLED);
    sched_wake(s, co);
    sched_run(s);
    assert_int_equal(g_sleep_rc, -1);
    assert_int_equal(sched_count(s), 0);
    sched_destroy(&s);
    qj_ctx_destroy(&ctx);
}

/* ---- progress */

typedef struct prog_seen {
    int calls;
    uint64_t done, total;
    char note[QJ_MAX_NOTE + 8];
    qj_ctx *ctx;
} prog_seen_t;

static int s_on_progress(void *arg, qj_ctx *ctx, uint64_t done, uint64_t total,
                         const char *note)
{
    prog_seen_t *p = arg;
    p->calls++;
    p->ctx = ctx;
    p->done = done;
    p->total = total;
    strcpy(p->note, note ? note : "(null)");
    return 0;
}

static void test_progress(void **state)
{
    (void)state;
    prog_seen_t seen = {0};
    qj_ctx_host host = {s_on_progress, NULL, &seen};
    qj_ctx *ctx = qj_ctx_new(&host);
    s_start_json(ctx, "{}");
    assert_null(qj_ctx_client(ctx));
    assert_int_equal(qj_progress(ctx, 3, 10, "three"), 0);
    assert_int_equal(seen.calls, 1);
    assert_ptr_equal(seen.ctx, ctx);
    assert_int_equal(seen.done, 3);
    assert_int_equal(seen.total, 10);
    assert_string_equal(seen.note, "three");
    assert_int_equal(qj_progress(ctx, 4, 10, NULL), 0);
    assert_string_equal(seen.note, "(null)");
    char note[QJ_MAX_NOTE * 2];
    memset(note, 'n', sizeof note - 1);
    note[sizeof note - 1] = '\0';
    assert_int_equal(qj_progress(ctx, 5, 10, note), 0);
    assert_int_equal(strlen(seen.note), QJ_MAX_NOTE);
    qj_ctx_destroy(&ctx);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_args),
        cmocka_unit_test(test_bad_args),
        cmocka_unit_test(test_returns),
        cmocka_unit_test(test_bad_results),
        cmocka_unit_test(test_fail),
        cmocka_unit_test(test_stop),
        cmocka_unit_test(test_stop_wakes_sleep),
        cmocka_unit_test(test_progress),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
