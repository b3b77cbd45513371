/* test_mpck.c -- the msgpack pre-check: every type, hostile headers, limits.
 *
 * Every input is copied into a heap block of exactly its length, so that
 * ASan and valgrind report any read past the end. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>
#include <msgpack.h>

#include "qjlimits.h"
#include "mpck.h"

static char s_err[256];

/* Check bytes through an exact-size heap copy. */
static int check_lim(const void *bytes, size_t len, const mpck_limits_t *lim)
{
    void *copy = malloc(len ? len : 1);
    assert_non_null(copy);
    if (len) memcpy(copy, bytes, len);
    s_err[0] = '\0';
    int rc = mpck_check(copy, len, lim, s_err, sizeof s_err);
    free(copy);
    if (rc != 0) assert_true(strlen(s_err) > 0);
    return rc;
}

static int check(const void *bytes, size_t len) { return check_lim(bytes, len, &mpck_default_limits); }

#define OK(...) do { const uint8_t b_[] = {__VA_ARGS__}; assert_int_equal(check(b_, sizeof b_), 0); } while (0)
#define BAD(...) do { const uint8_t b_[] = {__VA_ARGS__}; assert_int_equal(check(b_, sizeof b_), -1); } while (0)

/* msgpack-c must agree: what mpck accepts unpacks in full. */
static void assert_unpacks(const void *bytes, size_t len)
{
    msgpack_zone z;
    msgpack_object o;
    size_t off = 0;
    assert_true(msgpack_zone_init(&z, 4096));
    assert_int_equal(msgpack_unpack(bytes, len, &off, &z, &o), MSGPACK_UNPACK_SUCCESS);
    assert_int_equal(off, len);
    msgpack_zone_destroy(&z);
}

static void test_scalars(void **state)
{
    (void)state;
    OK(0xc0);                                   /* nil */
    OK(0xc2); OK(0xc3);                         /* false, true */
    OK(0x00); OK(0x7f); OK(0xe0); OK(0xff);     /* fixints */
    OK(0xcc, 1); OK(0xcd, 1, 2); OK(0xce, 1, 2, 3, 4); OK(0xcf, 1, 2, 3, 4, 5, 6, 7, 8);
    OK(0xd0, 1); OK(0xd1, 1, 2); OK(0xd2, 1, 2, 3, 4); OK(0xd3, 1, 2, 3, 4, 5, 6, 7, 8);
    OK(0xca, 0x3f, 0x80, 0, 0); OK(0xcb, 0x3f, 0xf0, 0, 0, 0, 0, 0, 0);
    BAD(0xcc); BAD(0xcd, 1); BAD(0xce, 1, 2, 3); BAD(0xcf, 1, 2, 3, 4, 5, 6, 7);
    BAD(0xd3, 1); BAD(0xca, 0, 0, 0); BAD(0xcb, 0, 0, 0, 0, 0, 0, 0);
    BAD(0xc1);                                  /* never used */
}

static void test_strings_and_bins(void **state)
{
    (void)state;
    OK(0xa0); OK(0xa3, 'a', 'b', 'c'); BAD(0xa3, 'a', 'b');
    OK(0xd9, 0); OK(0xd9, 2, 'h', 'i'); BAD(0xd9, 3, 'h', 'i'); BAD(0xd9);
    OK(0xda, 0, 1, 'x'); BAD(0xda, 0, 2, 'x'); BAD(0xda, 0);
    OK(0xdb, 0, 0, 0, 1, 'x'); BAD(0xdb, 0, 0, 0, 2, 'x'); BAD(0xdb, 0, 0, 0);
    OK(0xc4, 0); OK(0xc4, 1, 9); BAD(0xc4, 2, 9);
    OK(0xc5, 0, 1, 9); BAD(0xc5, 1, 0, 9);
    OK(0xc6, 0, 0, 0, 1, 9); BAD(0xc6, 0, 0, 1, 0, 9);
}

static void test_containers(void **state)
{
    (void)state;
    OK(0x90); OK(0x80); OK(0x92, 1, 2); OK(0x81, 0xa1, 'k', 0xc0);
    BAD(0x92, 1); BAD(0x81, 0xa1, 'k'); BAD(0x91);
    OK(0xdc, 0, 2, 1, 2); BAD(0xdc, 0, 3, 1, 2); BAD(0xdc, 0);
    OK(0xde, 0, 1, 1, 2); BAD(0xde, 0, 2, 1, 2);
    /* Non-minimal encodings are valid msgpack. */
    OK(0xdd, 0, 0, 0, 2, 1, 2);
    OK(0xdf, 0, 0, 0, 1, 0xa1, 'k', 3);
    OK(0xdd, 0, 0, 0, 0);
    /* Nested, mixed. */
    OK(0x82, 0xa1, 'a', 0x92, 0x90, 0x80, 0xa1, 'b', 0xc4, 1, 7);
}

static void test_ext_and_timestamps(void **state)
{
    (void)state;
    OK(0xd4, 5, 1); OK(0xd5, 5, 1, 2); OK(0xd6, 5, 1, 2, 3, 4);
    OK(0xd7, 5, 1, 2, 3, 4, 5, 6, 7, 8);
    OK(0xd8, 5, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15, 16);
    BAD(0xd4, 5); BAD(0xd4); BAD(0xd8, 5, 1, 2, 3);
    OK(0xc7, 0, 5); OK(0xc7, 2, 5, 1, 2); BAD(0xc7, 2, 5, 1); BAD(0xc7, 2); BAD(0xc7);
    OK(0xc8, 0, 1, 5, 1); BAD(0xc8, 0, 2, 5, 1);
    OK(0xc9, 0, 0, 0, 1, 5, 1); BAD(0xc9, 0, 0, 0, 2, 5, 1);
    /* Timestamps: ext -1 with 4, 8 or 12 bytes; nanoseconds < 10^9. */
    OK(0xd6, 0xff, 0x5f, 0x5e, 0x10, 0x00);
    OK(0xd7, 0xff, 0xee, 0x6b, 0x27, 0xfc, 0x00, 0x00, 0x00, 0x01);     /* 999999999 ns */
    BAD(0xd7, 0xff, 0xee, 0x6b, 0x28, 0x00, 0x00, 0x00, 0x00, 0x01);    /* 10^9 ns */
    OK(0xc7, 12, 0xff, 0x3b, 0x9a, 0xc9, 0xff, 0, 0, 0, 0, 0, 0, 0, 1); /* 999999999 ns */
    BAD(0xc7, 12, 0xff, 0x3b, 0x9a, 0xca, 0x00, 0, 0, 0, 0, 0, 0, 0, 1);
    BAD(0xd5, 0xff, 1, 2);                                              /* 2-byte timestamp */
    BAD(0xc7, 0, 0xff);
}

static void test_hostile_headers(void **state)
{
    (void)state;
    /* array32 claiming 2^32-1 items in 5 bytes. */
    BAD(0xdd, 0xff, 0xff, 0xff, 0xff);
    assert_non_null(strstr(s_err, "array32"));
    assert_non_null(strstr(s_err, "offset 0"));
    BAD(0xdf, 0xff, 0xff, 0xff, 0xff);
    BAD(0xdb, 0xff, 0xff, 0xff, 0xff);          /* str32 claiming 4 GiB */
    BAD(0xc6, 0xff, 0xff, 0xff, 0xff);          /* bin32 */
    BAD(0xc9, 0xff, 0xff, 0xff, 0xff, 1);       /* ext32 */
    /* Each claim fits alone, not together: 2 arrays of 3 in 8 bytes. */
    BAD(0x92, 0x93, 1, 2, 3, 0x93, 1, 2);
    BAD(0x92, 0xdc, 0, 3, 0xdc, 0, 3, 1);
    /* The bound is tree-wide: here the inner array's 4 items fit the 4
     * bytes after it, but the outer array still wants one more value, so
     * the header is refused at once rather than at the end of the walk. */
    BAD(0x92, 0x94, 1, 1, 1, 1);
    assert_non_null(strstr(s_err, "offset 1: fixarray claims 4 items"));
    /* A map of n pairs needs 2n values. */
    BAD(0x83, 1, 2, 3, 4, 5);
}

static void test_framing(void **state)
{
    (void)state;
    assert_int_equal(check("", 0), -1);
    assert_non_null(strstr(s_err, "empty"));
    BAD(0xc0, 0xc0);
    assert_non_null(strstr(s_err, "trailing"));
    BAD(0x91, 1, 2);
    BAD(0x80, 0);
}

static void test_depth(void **state)
{
    (void)state;
    uint8_t buf[40];
    for (int depth = 1; depth <= 34; depth++) {
        memset(buf, 0x91, (size_t)depth);       /* depth nested 1-arrays */
        buf[depth] = 0x01;
        assert_int_equal(check(buf, (size_t)depth + 1), depth <= QJ_MAX_DEPTH ? 0 : -1);
        if (depth <= QJ_MAX_DEPTH) assert_unpacks(buf, (size_t)depth + 1);
        /* An empty container at the bottom counts as a level too. */
        buf[depth - 1] = 0x90;
        assert_int_equal(check(buf, (size_t)depth), depth <= QJ_MAX_DEPTH ? 0 : -1);
    }
    memset(buf, 0x91, 33);
    buf[33] = 1;
    assert_int_equal(check(buf, 34), -1);
    assert_non_null(strstr(s_err, "deeper"));
    mpck_limits_t two = {.max_depth = 2, .max_values = 100};
    const uint8_t d2[] = {0x91, 0x81, 1, 2}, d3[] = {0x91, 0x91, 0x91, 1};
    assert_int_equal(check_lim(d2, sizeof d2, &two), 0);
    assert_int_equal(check_lim(d3, sizeof d3, &two), -1);
}

static void test_value_count(void **state)
{
    (void)state;
    mpck_limits_t three = {.max_depth = 32, .max_values = 3};
    const uint8_t ok[] = {0x92, 1, 2}, over[] = {0x93, 1, 2, 3}, map[] = {0x81, 1, 0x91, 2};
    assert_int_equal(check_lim(ok, sizeof ok, &three), 0);
    assert_int_equal(check_lim(over, sizeof over, &three), -1);
    assert_non_null(strstr(s_err, "values"));
    assert_int_equal(check_lim(map, sizeof map, &three), -1);   /* map, key, array, item = 4 */
    assert_int_equal(mpck_default_limits.max_values, QJ_MAX_VALUES);
    assert_int_equal(mpck_default_limits.max_depth, QJ_MAX_DEPTH);

    /* 2^20 values pass, one more does not: an array16 of 65535 nils is
     * 65536 values; 16 of them nested in one array hold 2^20 + 1. */
    size_t len = 3 + 16 * (3 + 65535);
    uint8_t *big = malloc(len);
    assert_non_null(big);
    uint8_t *p = big;
    *p++ = 0xdc; *p++ = 0; *p++ = 16;
    for (int i = 0; i < 16; i++) {
        *p++ = 0xdc; *p++ = 0xff; *p++ = 0xff;
        memset(p, 0xc0, 65535);
        p += 65535;
    }
    assert_int_equal(check(big, len), -1);                    /* 1 + 16 * 65536 */
    big[2] = 15;
    assert_int_equal(check(big, len - (3 + 65535)), 0);       /* 1 + 15 * 65536 */
    free(big);
}

/* Every prefix of a valid value that covers every type is refused. */
static void test_every_truncation(void **state)
{
    (void)state;
    msgpack_sbuffer sb;
    msgpack_packer pk;
    msgpack_sbuffer_init(&sb);
    msgpack_packer_init(&pk, &sb, msgpack_sbuffer_write);
    char blob[300];
    memset(blob, 'x', sizeof blob);
    msgpack_pack_map(&pk, 3);
    msgpack_pack_str_with_body(&pk, "a", 1);
    msgpack_pack_array(&pk, 20);
    msgpack_pack_nil(&pk);
    msgpack_pack_true(&pk);
    msgpack_pack_uint64(&pk, UINT64_MAX);
    msgpack_pack_int64(&pk, INT64_MIN);
    msgpack_pack_uint16(&pk, 300);
    msgpack_pack_int32(&pk, -70000);
    msgpack_pack_float(&pk, 1.5f);
    msgpack_pack_double(&pk, 2.25);
    msgpack_pack_str_with_body(&pk, blob, 40);
    msgpack_pack_str_with_body(&pk, blob, 300);
    msgpack_pack_bin_with_body(&pk, blob, 3);
    msgpack_pack_bin_with_body(&pk, blob, 300);
    msgpack_pack_ext_with_body(&pk, blob, 1, 7);
    msgpack_pack_ext_with_body(&pk, blob, 16, 7);
    msgpack_pack_ext_with_body(&pk, blob, 20, 7);
    msgpack_pack_ext_with_body(&pk, blob, 300, 7);
    msgpack_pack_array(&pk, 0);
    msgpack_pack_map(&pk, 0);
    msgpack_pack_int8(&pk, -3);
    msgpack_pack_uint8(&pk, 200);
    msgpack_pack_str_with_body(&pk, "b", 1);
    msgpack_pack_array(&pk, 17);
    for (int i = 0; i < 17; i++) msgpack_pack_int(&pk, i);
    msgpack_pack_str_with_body(&pk, "c", 1);
    msgpack_pack_map(&pk, 16);
    for (int i = 0; i < 16; i++) {
        msgpack_pack_int(&pk, i);
        msgpack_pack_nil(&pk);
    }
    assert_int_equal(check(sb.data, sb.size), 0);
    assert_unpacks(sb.data, sb.size);
    for (size_t len = 0; len < sb.size; len++) assert_int_equal(check(sb.data, len), -1);
    msgpack_sbuffer_destroy(&sb);
}

/* Random mutations of a valid value: never a crash, and whatever mpck
 * accepts msgpack-c unpacks in full (mpck is never more lenient). */
static void test_mutations_agree_with_msgpack(void **state)
{
    (void)state;
    const uint8_t seed[] = {0x83, 0xa1, 'a', 0x93, 0x01, 0xcd, 0x01, 0x00, 0xc4, 0x02, 9, 9,
                            0xa1, 'b', 0xdc, 0x00, 0x02, 0xc3, 0xd6, 0xff, 0, 0, 0, 1,
                            0xa1, 'c', 0x81, 0xa0, 0xcb, 0, 0, 0, 0, 0, 0, 0, 0};
    uint8_t buf[sizeof seed];
    uint32_t rng = 12345;
    int accepted = 0;
    for (int round = 0; round < 200000; round++) {
        memcpy(buf, seed, sizeof seed);
        int flips = 1 + round % 3;
        for (int k = 0; k < flips; k++) {
            rng = rng * 1103515245u + 12345u;
            buf[(rng >> 8) % sizeof buf] = (uint8_t)(rng >> 20);
        }
        rng = rng * 1103515245u + 12345u;
        size_t len = sizeof buf - (rng >> 16) % 4;
        if (mpck_check(buf, len, &mpck_default_limits, s_err, sizeof s_err) == 0) {
            assert_unpacks(buf, len);
            accepted++;
        }
    }
    assert_true(accepted > 0);
}

static void test_error_buffer_optional(void **state)
{
    (void)state;
    const uint8_t bad[] = {0xc1};
    assert_int_equal(mpck_check(bad, sizeof bad, &mpck_default_limits, NULL, 0), -1);
    char tiny[4];
    assert_int_equal(mpck_check(bad, sizeof bad, NULL, tiny, sizeof tiny), -1);
    assert_int_equal(strlen(tiny), 3);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_scalars),
        cmocka_unit_test(test_strings_and_bins),
        cmocka_unit_test(test_containers),
        cmocka_unit_test(test_ext_and_timestamps),
        cmocka_unit_test(test_hostile_headers),
        cmocka_unit_test(test_framing),
        cmocka_unit_test(test_depth),
        cmocka_unit_test(test_value_count),
        cmocka_unit_test(test_every_truncation),
        cmocka_unit_test(test_mutations_agree_with_msgpack),
        cmocka_unit_test(test_error_buffer_optional),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
