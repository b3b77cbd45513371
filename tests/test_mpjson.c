/* test_mpjson.c -- JSON <-> msgpack: round trips, exact integers, floats,
 * bin as base64, ext and timestamps, hostile msgpack, JSON errors. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "mpjson.h"

static char E[256];

/* JSON text -> msgpack bytes in *sb (cleared first). */
static void to_mp(const char *json, msgpack_sbuffer *sb)
{
    sb->size = 0;
    if (mpjson_from_text(json, sb, E, sizeof E) != 0) fail_msg("%s: %s", json, E);
}

/* msgpack bytes -> compact JSON text (caller frees), via an exact-size copy. */
static char *to_text(const void *mp, size_t len)
{
    void *copy = malloc(len ? len : 1);
    assert_non_null(copy);
    memcpy(copy, mp, len);
    json_t *j = mpjson_to_json(copy, len, E, sizeof E);
    free(copy);
    if (!j) return NULL;
    char *text = json_dumps(j, JSON_ENCODE_ANY | JSON_COMPACT | JSON_SORT_KEYS);
    json_decref(j);
    return text;
}

static void assert_mp_to_json(const void *mp, size_t len, const char *want)
{
    char *got = to_text(mp, len);
    if (!got) fail_msg("conversion failed: %s", E);
    assert_string_equal(got, want);
    free(got);
}

static void test_round_trips(void **state)
{
    (void)state;
    const char *cases[] = {
        "null", "true", "false", "0", "1", "-1", "127", "128", "-32", "-33", "65536",
        "9223372036854775807", "-9223372036854775808", "1.5", "1.0", "-0.0", "1e+300", "2.5e-300",
        "\"\"", "\"h\\u00e9llo \\u2603 \\ud83d\\ude00\"", "\"nul\\u0000inside\"",
        "[]", "{}", "[1,[2,[3,[4]]],{\"a\":{\"b\":[]}}]",
        "{\"x\":1,\"y\":[true,null,\"s\"],\"z\":{\"w\":-2.25}}",
    };
    msgpack_sbuffer sb;
    msgpack_sbuffer_init(&sb);
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        json_error_t je;
        json_t *want = json_loads(cases[i], JSON_DECODE_ANY | JSON_ALLOW_NUL, &je);
        if (!want) fail_msg("%s: %s", cases[i], je.text);
        to_mp(cases[i], &sb);
        json_t *got = mpjson_to_json(sb.data, sb.size, E, sizeof E);
        if (!got) fail_msg("%s: %s", cases[i], E);
        if (!json_equal(want, got)) fail_msg("round trip of %s changed it", cases[i]);
        /* A real stays a real, an integer an integer. */
        assert_int_equal(json_typeof(want), json_typeof(got));
        json_decref(want);
        json_decref(got);
    }
    msgpack_sbuffer_destroy(&sb);
}

/* The msgpack side: smallest integers, floats as float64. */
static void test_packed_forms(void **state)
{
    (void)state;
    msgpack_sbuffer sb;
    msgpack_sbuffer_init(&sb);
    struct { const char *json; const char *mp; size_t len; } cases[] = {
        {"1", "\x01", 1},
        {"-1", "\xff", 1},
        {"300", "\xcd\x01\x2c", 3},
        {"1.0", "\xcb\x3f\xf0\x00\x00\x00\x00\x00\x00", 9},
        {"9223372036854775807", "\xcf\x7f\xff\xff\xff\xff\xff\xff\xff", 9},
        {"{\"x\":1}", "\x81\xa1x\x01", 4},
        {"null", "\xc0", 1},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        to_mp(cases[i].json, &sb);
        assert_int_equal(sb.size, cases[i].len);
        assert_memory_equal(sb.data, cases[i].mp, cases[i].len);
    }
    /* mpjson_from_text appends: two values back to back. */
    sb.size = 0;
    assert_int_equal(mpjson_from_text("1", &sb, E, sizeof E), 0);
    assert_int_equal(mpjson_from_text("[2]", &sb, E, sizeof E), 0);
    assert_int_equal(sb.size, 3);
    assert_memory_equal(sb.data, "\x01\x91\x02", 3);
    msgpack_sbuffer_destroy(&sb);
}

static void test_big_integers_and_floats(void **state)
{
    (void)state;
    /* uint64 above INT64_MAX becomes a real (documented). */
    assert_mp_to_json("\xcf\xff\xff\xff\xff\xff\xff\xff\xff", 9, "1.8446744073709552e19");
    assert_mp_to_json("\xcf\x7f\xff\xff\xff\xff\xff\xff\xff", 9, "9223372036854775807");
    assert_mp_to_json("\xd3\x80\x00\x00\x00\x00\x00\x00\x00", 9, "-9223372036854775808");
    assert_mp_to_json("\xca\x3f\xc0\x00\x00", 5, "1.5");                  /* float32 */
    assert_mp_to_json("\xcb\x7f\xf8\x00\x00\x00\x00\x00\x00", 9, "null"); /* NaN */
    assert_mp_to_json("\xcb\x7f\xf0\x00\x00\x00\x00\x00\x00", 9, "null"); /* +inf */
    /* An integer-encoded-as-int8 positive value is a plain integer. */
    assert_mp_to_json("\xd0\x05", 2, "5");
    /* JSON text holds int64 only: jansson says so with a position. */
    msgpack_sbuffer sb;
    msgpack_sbuffer_init(&sb);
    assert_int_equal(mpjson_from_text("18446744073709551615", &sb, E, sizeof E), -1);
    assert_non_null(strstr(E, "line 1, column"));
    msgpack_sbuffer_destroy(&sb);
}

static void test_bin_is_base64(void **state)
{
    (void)state;
    assert_mp_to_json("\xc4\x00", 2, "\"\"");
    assert_mp_to_json("\xc4\x01" "f", 3, "\"Zg==\"");
    assert_mp_to_json("\xc4\x02" "fo", 4, "\"Zm8=\"");
    assert_mp_to_json("\xc4\x03" "foo", 5, "\"Zm9v\"");
    assert_mp_to_json("\xc4\x06" "foobar", 8, "\"Zm9vYmFy\"");
    assert_mp_to_json("\xc4\x03\xff\xfe\xfd", 5, "\"//79\"");
}

static void test_ext_and_timestamps(void **state)
{
    (void)state;
    assert_mp_to_json("\xd6\xff\x5f\x5e\x10\x00", 6, "\"2020-09-13T12:26:40Z\"");
    /* timestamp64: 500000000 ns << 2 | seconds 1600000000 */
    assert_mp_to_json("\xd7\xff\x77\x35\x94\x00\x5f\x5e\x10\x00", 10, "\"2020-09-13T12:26:40.5Z\"");
    assert_mp_to_json("\xc7\x0c\xff\x00\x00\x00\x01\x00\x00\x00\x00\x00\x00\x00\x00", 15,
                      "\"1970-01-01T00:00:00.000000001Z\"");
    assert_mp_to_json("\xd5\x05\x01\x02", 4, "{\"data\":\"AQI=\",\"ext\":5}");
}

static void test_strings_and_keys(void **state)
{
    (void)state;
    /* Invalid UTF-8 bytes become U+FFFD; valid parts are kept. */
    assert_mp_to_json("\xa4" "a\xff" "b\xc3", 5, "\"a\xef\xbf\xbd" "b\xef\xbf\xbd\"");
    assert_mp_to_json("\xa3\xed\xa0\x80", 4, "\"\xef\xbf\xbd\xef\xbf\xbd\xef\xbf\xbd\"");  /* surrogate */
    assert_mp_to_json("\xa2\xc3\xa9", 3, "\"\xc3\xa9\"");
    /* Non-string keys use their JSON text. */
    assert_mp_to_json("\x83\x01\xa1" "a\xc0\xa1" "b\x92\x01\x02\xa1" "c", 12,
                      "{\"1\":\"a\",\"[1,2]\":\"c\",\"null\":\"b\"}");
    /* A key holding a NUL byte survives (jansson escapes it). */
    assert_mp_to_json("\x81\xa2\x00k\x01", 5, "{\"\\u0000k\":1}");
    /* Duplicate keys: the last wins. */
    assert_mp_to_json("\x82\xa1k\x01\xa1k\x02", 7, "{\"k\":2}");
    assert_mp_to_json("\x92\x90\x80", 3, "[[],{}]");
}

static void test_hostile_msgpack(void **state)
{
    (void)state;
    json_t *j = mpjson_to_json("", 0, E, sizeof E);
    assert_true(json_is_null(j));
    json_decref(j);
    struct { const char *mp; size_t len; } bad[] = {
        {"\xdd\xff\xff\xff\xff", 5}, {"\xdb\xff\xff\xff\xff", 5}, {"\x92\x01", 2},
        {"\x01\x02", 2}, {"\xc1", 1}, {"\xd7\xff\xff\xff\xff\xff\x00\x00\x00\x00", 10},
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        E[0] = '\0';
        assert_null(to_text(bad[i].mp, bad[i].len));
        assert_non_null(strstr(E, "not a valid msgpack value"));
    }
    uint8_t deep[40];
    memset(deep, 0x91, 33);
    deep[33] = 0xc0;
    assert_null(to_text(deep, 34));
    assert_non_null(strstr(E, "deeper"));
    char *t = to_text(deep + 1, 33);
    assert_non_null(t);
    free(t);
}

static void test_json_errors_have_positions(void **state)
{
    (void)state;
    msgpack_sbuffer sb;
    msgpack_sbuffer_init(&sb);
    assert_int_equal(mpjson_from_text("{\"a\": 1,\n  \"b\": }", &sb, E, sizeof E), -1);
    assert_non_null(strstr(E, "line 2, column"));
    assert_int_equal(sb.size, 0);
    assert_int_equal(mpjson_from_text("", &sb, E, sizeof E), -1);
    assert_non_null(strstr(E, "line 1"));
    assert_int_equal(mpjson_from_text("[1, 2", &sb, E, sizeof E), -1);
    assert_int_equal(mpjson_from_text("1 2", &sb, E, sizeof E), -1);
    /* Valid JSON that no receiver would take: nested deeper than 32. */
    char deep[80];
    memset(deep, '[', 33);
    memset(deep + 33, ']', 33);
    deep[66] = '\0';
    assert_int_equal(mpjson_from_text(deep, &sb, E, sizeof E), -1);
    assert_non_null(strstr(E, "too complex"));
    assert_int_equal(sb.size, 0);
    deep[65] = '\0';
    assert_int_equal(mpjson_from_text(deep + 1, &sb, E, sizeof E), 0);
    msgpack_sbuffer_destroy(&sb);
}

static void test_from_object_directly(void **state)
{
    (void)state;
    msgpack_zone z;
    msgpack_object o;
    size_t off = 0;
    assert_true(msgpack_zone_init(&z, 1024));
    assert_int_equal(msgpack_unpack("\x82\xa1x\x01\xa1y\xc4\x01\x00", 9, &off, &z, &o), MSGPACK_UNPACK_SUCCESS);
    json_t *j = mpjson_from_object(&o);
    char *text = json_dumps(j, JSON_COMPACT | JSON_SORT_KEYS);
    assert_string_equal(text, "{\"x\":1,\"y\":\"AA==\"}");
    free(text);
    json_decref(j);
    msgpack_zone_destroy(&z);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_round_trips),
        cmocka_unit_test(test_packed_forms),
        cmocka_unit_test(test_big_integers_and_floats),
        cmocka_unit_test(test_bin_is_base64),
        cmocka_unit_test(test_ext_and_timestamps),
        cmocka_unit_test(test_strings_and_keys),
        cmocka_unit_test(test_hostile_msgpack),
        cmocka_unit_test(test_json_errors_have_positions),
        cmocka_unit_test(test_from_object_directly),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
