/* test_task.c -- the task API over a qj_ctx: arguments, results, failure,
 * stop requests, progress. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdio.h>
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

/* Fails every decode, as msg_value_decode does when memory runs out. */
static int s_decode_nomem(struct msg_reader *reader, const void *mp, size_t len,
                          msgpack_object *obj, char *err, size_t errlen)
{
    (void)reader, (void)mp, (void)len;
    obj->type = MSGPACK_OBJECT_NIL;
    snprintf(err, errlen, "out of memory");
    return -1;
}

static int s_decodes;
static int (*s_real_decode)(struct msg_reader *, const void *, size_t, msgpack_object *,
                            char *, size_t);

/* Counts the decodes, then does the real one. */
static int s_decode_counted(struct msg_reader *reader, const void *mp, size_t len,
                            msgpack_object *obj, char *err, size_t errlen)
{
    s_decodes++;
    return s_real_decode(reader, mp, len, obj, err, errlen);
}

static void test_lazy_args(void **state)
{
    (void)state;
    s_real_decode = qj_ctx_decode;
    qj_ctx_decode = s_decode_counted;
    s_decodes = 0;
    qj_ctx *ctx = qj_ctx_new(NULL);
    const unsigned char mp[] = {0x81, 0xa1, 'n', 0x07};   /* {"n": 7} */
    char err[256];
    assert_int_equal(qj_ctx_start(ctx, 1, 1, NULL, mp, sizeof mp, err, sizeof err), 0);
    /* The raw bytes come without a decode, as a copy of the caller's. */
    size_t len;
    const void *raw = qj_args_mp(ctx, &len);
    assert_int_equal(len, sizeof mp);
    assert_memory_equal(raw, mp, sizeof mp);
    assert_ptr_not_equal(raw, mp);
    assert_int_equal(s_decodes, 0);
    /* The first look decodes, once for the whole job. */
    assert_int_equal(qj_arg_int(ctx, "n", 0), 7);
    assert_int_equal(qj_args(ctx)->type, MSGPACK_OBJECT_MAP);
    char *json = qj_args_json(ctx);
    assert_string_equal(json, "{\"n\":7}");
    free(json);
    assert_int_equal(s_decodes, 1);
    /* A job that never looks costs no decode; no arguments, none either. */
    assert_int_equal(qj_ctx_start(ctx, 2, 1, NULL, mp, sizeof mp, err, sizeof err), 0);
    s_expect_value(ctx, "null");
    assert_int_equal(qj_ctx_start(ctx, 3, 1, NULL, NULL, 0, err, sizeof err), 0);
    assert_null(qj_args_mp(ctx, &len));
    assert_int_equal(len, 0);
    assert_int_equal(qj_args(ctx)->type, MSGPACK_OBJECT_NIL);
    assert_int_equal(s_decodes, 1);
    /* Bad arguments leave no bytes behind. */
    const unsigned char two[] = {0x01, 0x02};
    assert_int_equal(qj_ctx_start(ctx, 4, 1, NULL, two, sizeof two, err, sizeof err), -1);
    assert_null(qj_args_mp(ctx, &len));
    assert_int_equal(len, 0);

    /* A decode that fails makes the arguments nil and the job an error
     * that says why, even if the task then fails or returns otherwise. */
    qj_ctx_decode = s_decode_nomem;
    assert_int_equal(qj_ctx_start(ctx, 5, 1, NULL, mp, sizeof mp, err, sizeof err), 0);
    assert_int_equal(qj_arg_int(ctx, "n", -1), -1);
    assert_int_equal(qj_args(ctx)->type, MSGPACK_OBJECT_NIL);
    qj_fail(ctx, "n is missing");
    const char *error;
    assert_int_equal(s_outcome(ctx, -1, NULL, &error), QJ_ERROR);
    assert_string_equal(error, "arguments are not one valid msgpack value: out of memory");
    /* The next job starts clean. */
    qj_ctx_decode = s_real_decode;
    assert_int_equal(qj_ctx_start(ctx, 6, 1, NULL, mp, sizeof mp, err, sizeof err), 0);
    assert_int_equal(qj_arg_int(ctx, "n", 0), 7);
    s_expect_value(ctx, "null");
    qj_ctx_destroy(&ctx);
}

static void test_arg_strs(void **state)
{
    (void)state;
    qj_ctx *ctx = qj_ctx_new(NULL);
    char big[2001];
    memset(big, 'b', sizeof big - 1);
    big[sizeof big - 1] = '\0';
    char json[2200];
    snprintf(json, sizeof json, "{\"a\": \"one\", \"b\": \"two\", \"big\": \"%s\"}", big);
    s_start_json(ctx, json);
    /* Each call gives its own copy, and every copy stays valid for the job. */
    const char *a = qj_arg_str(ctx, "a", NULL);
    const char *b = qj_arg_str(ctx, "b", NULL);
    const char *a2 = qj_arg_str(ctx, "a", NULL);
    const char *g = qj_arg_str(ctx, "big", NULL);
    const char *many[200];
    for (size_t i = 0; i < 200; i++)
        many[i] = qj_arg_str(ctx, "b", NULL);
    assert_ptr_not_equal(a, a2);
    assert_string_equal(a, "one");
    assert_string_equal(b, "two");
    assert_string_equal(a2, "one");
    assert_string_equal(g, big);
    for (size_t i = 0; i < 200; i++)
        assert_string_equal(many[i], "two");
    /* The next job's strings reuse the room the last one had. */
    s_start_json(ctx, "{\"a\": \"uno\"}");
    const char *again = qj_arg_str(ctx, "a", NULL);
    assert_string_equal(again, "uno");
    bool reused = again == a || again == b || again == a2;
    for (size_t i = 0; i < 200; i++)
        reused = reused || again == many[i];
    assert_true(reused);
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
        cmocka_unit_test(test_lazy_args),
        cmocka_unit_test(test_arg_strs),
        cmocka_unit_test(test_returns),
        cmocka_unit_test(test_bad_results),
        cmocka_unit_test(test_fail),
        cmocka_unit_test(test_stop),
        cmocka_unit_test(test_stop_wakes_sleep),
        cmocka_unit_test(test_progress),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
