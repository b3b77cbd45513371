/* test_jrec.c -- journal records: the CRC-32C, a round trip of every type,
 * limits, hostile payloads, and the reader's resynchronisation after a
 * damaged payload, a damaged header, a torn tail and garbage. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <cmocka.h>

#include "jrec.h"

static const char CID[QJ_CID_LEN] = "0123456789abcdef";

/* One record of each type, with every field set. */
static jrec_t s_sample(int type)
{
    jrec_t r = {.type = (uint8_t)type, .id = 0x1122334455667788ull};
    switch (type) {
    case JREC_JOB:
        r.ref = 7;
        r.parent = 99;
        r.t_submit = 1000;
        r.t_queued = 2000;
        r.t_dispatched = 3000;
        r.due_us = 4000;
        r.timeout_ms = 500;
        r.backoff_ms = 250;
        r.retries = 3;
        r.attempt = 2;
        r.pri = -128;
        r.flags = JREC_F_DETACH | JREC_F_PROGRESS;
        r.cid = (msg_bytes_t){CID, QJ_CID_LEN};
        r.queue = (msg_bytes_t){"emails", 6};
        r.task = (msg_bytes_t){"send", 4};
        r.key = (msg_bytes_t){"order-42", 8};
        r.args = (msg_bytes_t){"\x81\xa1x\x01", 4};
        break;
    case JREC_DISPATCH:
        r.attempt = 3;
        r.t_dispatched = 123456;
        break;
    case JREC_REQUEUE:
        r.attempt = 1;
        r.due_us = 777;
        r.front = true;
        break;
    case JREC_FINISH:
        r.st = MSG_ST_ERROR;
        r.attempt = 4;
        r.final_us = 5555;
        r.started = 11;
        r.finished = 22;
        r.val = (msg_bytes_t){"\xc0", 1};
        r.err = (msg_bytes_t){"boom", 4};
        r.wk = (msg_bytes_t){"host:1/0", 8};
        break;
    default:
        break;
    }
    return r;
}

static void s_bytes_equal(msg_bytes_t a, msg_bytes_t b)
{
    assert_int_equal(a.ptr ? a.len : 0, b.ptr ? b.len : 0);
    if (a.ptr && a.len)
        assert_memory_equal(a.ptr, b.ptr, a.len);
}

static void s_rec_equal(const jrec_t *a, const jrec_t *b)
{
    assert_int_equal(a->type, b->type);
    assert_int_equal(a->id, b->id);
    assert_int_equal(a->ref, b->ref);
    assert_int_equal(a->parent, b->parent);
    assert_int_equal(a->t_submit, b->t_submit);
    assert_int_equal(a->t_queued, b->t_queued);
    assert_int_equal(a->t_dispatched, b->t_dispatched);
    assert_int_equal(a->due_us, b->due_us);
    assert_int_equal(a->timeout_ms, b->timeout_ms);
    assert_int_equal(a->backoff_ms, b->backoff_ms);
    assert_int_equal(a->retries, b->retries);
    assert_int_equal(a->attempt, b->attempt);
    assert_int_equal(a->pri, b->pri);
    assert_int_equal(a->flags, b->flags);
    assert_int_equal(a->front, b->front);
    assert_int_equal(a->st, b->st);
    assert_int_equal(a->final_us, b->final_us);
    assert_int_equal(a->started, b->started);
    assert_int_equal(a->finished, b->finished);
    s_bytes_equal(a->cid, b->cid);
    s_bytes_equal(a->queue, b->queue);
    s_bytes_equal(a->task, b->task);
    s_bytes_equal(a->key, b->key);
    s_bytes_equal(a->args, b->args);
    s_bytes_equal(a->val, b->val);
    s_bytes_equal(a->err, b->err);
    s_bytes_equal(a->wk, b->wk);
}

/* ---- a buffer of records and a scan that remembers what it saw */

typedef struct buf {
    uint8_t data[8192];
    size_t len;
    size_t off[16];     /* where each record starts */
    int n;
} buf_t;

static void s_put(buf_t *b, const jrec_t *r)
{
    size_t n = jrec_size(r);
    assert_true(n > 0 && b->len + n <= sizeof b->data);
    b->off[b->n++] = b->len;
    jrec_encode(r, b->data + b->len);
    b->len += n;
}

typedef struct seen {
    int n;
    size_t off[16];
    uint8_t type[16];
    int ndamaged;
    size_t damaged_off[4], damaged_len[4];
    int damaged_type[4];
} seen_t;

static int s_intact(void *ctx, size_t off, uint8_t type, const uint8_t *payload, size_t len)
{
    seen_t *s = ctx;
    jrec_t r;
    char err[128];
    assert_int_equal(jrec_decode(type, payload, len, &r, err, sizeof err), 0);
    s->off[s->n] = off;
    s->type[s->n++] = type;
    return 0;
}

static void s_damaged(void *ctx, size_t off, size_t len, int type, const char *why)
{
    seen_t *s = ctx;
    assert_non_null(why);
    s->damaged_off[s->ndamaged] = off;
    s->damaged_len[s->ndamaged] = len;
    s->damaged_type[s->ndamaged++] = type;
}

/* Records of types 1..7 in a buffer. */
static void s_fill(buf_t *b)
{
    memset(b, 0, sizeof *b);
    for (int t = JREC_JOB; t <= JREC_END; t++) {
        jrec_t r = s_sample(t);
        s_put(b, &r);
    }
}

/* ---- tests */

static void test_crc(void **state)
{
    (void)state;
    /* The check value of CRC-32C (RFC 3720, B.4 and every CRC catalogue). */
    assert_int_equal(jrec_crc(0, "123456789", 9), 0xE3069283u);
    assert_int_equal(jrec_crc(0, "", 0), 0);
    /* Continuing a CRC gives the CRC of the whole, at any split. */
    const char text[] = "the quick brown fox jumps over the lazy dog, twice over";
    uint32_t whole = jrec_crc(0, text, sizeof text - 1);
    for (size_t cut = 0; cut < sizeof text; cut++)
        assert_int_equal(jrec_crc(jrec_crc(0, text, cut), text + cut, sizeof text - 1 - cut),
                         whole);
    /* Any single flipped bit changes it. */
    char copy[sizeof text];
    for (size_t i = 0; i < (sizeof text - 1) * 8; i++) {
        memcpy(copy, text, sizeof text);
        copy[i / 8] ^= (char)(1 << (i % 8));
        assert_int_not_equal(jrec_crc(0, copy, sizeof text - 1), whole);
    }
}

static void test_round_trip_every_type(void **state)
{
    (void)state;
    for (int t = JREC_JOB; t <= JREC_END; t++) {
        jrec_t r = s_sample(t), back;
        uint8_t out[512];
        size_t n = jrec_size(&r);
        assert_true(n >= JREC_HEADER_LEN && n <= sizeof out);
        jrec_encode(&r, out);
        assert_int_equal(out[0], JREC_MARK0);
        assert_int_equal(out[2], t);
        char err[128];
        assert_int_equal(jrec_decode(out[2], out + JREC_HEADER_LEN, n - JREC_HEADER_LEN, &back,
                                     err, sizeof err), 0);
        s_rec_equal(&r, &back);
        assert_string_not_equal(jrec_type_name(t), "?");
    }
    /* Absent byte strings stay absent. */
    jrec_t r = {.type = JREC_JOB, .id = 1, .queue = {"q", 1}, .task = {"t", 1}}, back;
    uint8_t out[256];
    jrec_encode(&r, out);
    char err[128];
    assert_int_equal(jrec_decode(JREC_JOB, out + JREC_HEADER_LEN,
                                 jrec_size(&r) - JREC_HEADER_LEN, &back, err, sizeof err), 0);
    assert_null(back.key.ptr);
    assert_null(back.args.ptr);
    assert_null(back.cid.ptr);
}

static void test_limits(void **state)
{
    (void)state;
    char big[QJ_MAX_TASK_NAME + 2];
    memset(big, 'x', sizeof big);
    jrec_t r = s_sample(JREC_JOB);
    r.task = (msg_bytes_t){big, QJ_MAX_TASK_NAME + 1};
    assert_int_equal(jrec_size(&r), 0);
    r = s_sample(JREC_JOB);
    r.queue = (msg_bytes_t){0};
    assert_int_equal(jrec_size(&r), 0);
    r = s_sample(JREC_JOB);
    r.cid = (msg_bytes_t){CID, 5};
    assert_int_equal(jrec_size(&r), 0);
    r = s_sample(JREC_FINISH);
    r.wk = (msg_bytes_t){big, QJ_MAX_NAME + 1};
    assert_int_equal(jrec_size(&r), 0);
    r = (jrec_t){.type = 99, .id = 1};
    assert_int_equal(jrec_size(&r), 0);
}

static void test_decode_refuses_bad_payloads(void **state)
{
    (void)state;
    char err[128];
    jrec_t r = s_sample(JREC_JOB), back;
    uint8_t out[512];
    size_t n = jrec_size(&r);
    jrec_encode(&r, out);
    uint8_t *p = out + JREC_HEADER_LEN;
    size_t plen = n - JREC_HEADER_LEN;
    /* Every truncation is refused, never read past. */
    for (size_t cut = 0; cut < plen; cut++)
        assert_int_equal(jrec_decode(JREC_JOB, p, cut, &back, err, sizeof err), -1);
    /* Bytes after the known fields are ignored (fields may be added). */
    memset(p + plen, 0xAB, 8);
    assert_int_equal(jrec_decode(JREC_JOB, p, plen + 8, &back, err, sizeof err), 0);
    /* A cid of 5 bytes (the fields after it shift): refused with a reason. */
    size_t cid_at = 7 * 8 + 2 * 4 + 2 * 2 + 2;
    uint8_t save = p[cid_at];
    p[cid_at] = 5;
    err[0] = '\0';
    assert_int_equal(jrec_decode(JREC_JOB, p, plen, &back, err, sizeof err), -1);
    assert_non_null(strstr(err, "job record"));
    p[cid_at] = save;
    /* A job without a task. */
    jrec_t notask = s_sample(JREC_JOB);
    notask.task = (msg_bytes_t){"x", 1};
    notask.key = notask.args = (msg_bytes_t){0};
    jrec_encode(&notask, out);
    size_t task_at = JREC_HEADER_LEN + cid_at + 1 + QJ_CID_LEN + 1 + 6;
    out[task_at] = 0;     /* task length 0; its byte "x" becomes an empty key, */
    out[task_at + 1] = 0; /* the rest empty args and one byte ignored */
    assert_int_equal(jrec_decode(JREC_JOB, out + JREC_HEADER_LEN,
                                 jrec_size(&notask) - JREC_HEADER_LEN, &back, err, sizeof err),
                     -1);
    assert_non_null(strstr(err, "task name"));
    jrec_encode(&r, out);
    /* Unknown type, unknown status, id 0. */
    assert_int_equal(jrec_decode(200, p, plen, &back, err, sizeof err), -1);
    assert_non_null(strstr(err, "unknown record type"));
    jrec_t f = s_sample(JREC_FINISH);
    f.st = MSG_ST_UNKNOWN;
    jrec_encode(&f, out);
    assert_int_equal(jrec_decode(JREC_FINISH, out + JREC_HEADER_LEN,
                                 jrec_size(&f) - JREC_HEADER_LEN, &back, err, sizeof err), -1);
    jrec_t d = {.type = JREC_DISPATCH, .id = 0};
    jrec_encode(&d, out);
    assert_int_equal(jrec_decode(JREC_DISPATCH, out + JREC_HEADER_LEN,
                                 jrec_size(&d) - JREC_HEADER_LEN, &back, err, sizeof err), -1);
    /* A huge declared length (the value's) inside a short payload. */
    uint8_t huge[8 + 1 + 2 + 3 * 8 + 4 + 16] = {1};
    memcpy(huge + 35, "\xff\xff\xff\x7f", 4);
    assert_int_equal(jrec_decode(JREC_FINISH, huge, sizeof huge, &back, err, sizeof err), -1);
    assert_non_null(strstr(err, "'val'"));
}

static void test_scan_clean(void **state)
{
    (void)state;
    buf_t b;
    s_fill(&b);
    seen_t s = {0};
    assert_int_equal(jrec_scan(b.data, b.len, s_intact, s_damaged, &s), b.len);
    assert_int_equal(s.n, 7);
    assert_int_equal(s.ndamaged, 0);
    for (int i = 0; i < 7; i++) {
        assert_int_equal(s.off[i], b.off[i]);
        assert_int_equal(s.type[i], JREC_JOB + i);
    }
    assert_int_equal(jrec_scan(b.data, 0, s_intact, s_damaged, &s), 0);
}

static void test_scan_damaged_payload_in_the_middle(void **state)
{
    (void)state;
    buf_t b;
    s_fill(&b);
    b.data[b.off[3] + JREC_HEADER_LEN + 5] ^= 0x40; /* FINISH's payload */
    seen_t s = {0};
    assert_int_equal(jrec_scan(b.data, b.len, s_intact, s_damaged, &s), b.len);
    assert_int_equal(s.n, 6);                     /* every other record kept */
    assert_int_equal(s.ndamaged, 1);
    assert_int_equal(s.damaged_off[0], b.off[3]); /* where it was */
    assert_int_equal(s.damaged_len[0], b.off[4] - b.off[3]);
    assert_int_equal(s.damaged_type[0], JREC_FINISH);
    assert_int_equal(s.type[3], JREC_CANCEL);
}

static void test_scan_damaged_header(void **state)
{
    (void)state;
    buf_t b;
    s_fill(&b);
    b.data[b.off[1] + 5] = 0x7f;   /* DISPATCH's length: now absurd */
    b.data[b.off[2]] = 0;          /* REQUEUE's mark */
    seen_t s = {0};
    assert_int_equal(jrec_scan(b.data, b.len, s_intact, s_damaged, &s), b.len);
    assert_int_equal(s.n, 5);
    assert_int_equal(s.ndamaged, 1);               /* one stretch, both records */
    assert_int_equal(s.damaged_off[0], b.off[1]);
    assert_int_equal(s.damaged_len[0], b.off[3] - b.off[1]);
    assert_int_equal(s.off[1], b.off[3]);          /* found again at FINISH */
}

static void test_scan_torn_tail(void **state)
{
    (void)state;
    buf_t b;
    s_fill(&b);
    /* Cut inside the last record's header, then inside its payload. */
    size_t cuts[] = {b.off[6] + 3, b.off[6] + JREC_HEADER_LEN + 2};
    for (int k = 0; k < 2; k++) {
        seen_t s = {0};
        assert_int_equal(jrec_scan(b.data, cuts[k], s_intact, s_damaged, &s), b.off[6]);
        assert_int_equal(s.n, 6);
        assert_int_equal(s.ndamaged, 1);
        assert_int_equal(s.damaged_off[0] + s.damaged_len[0], cuts[k]);
    }
    /* A tail of zeros, as a file extended but never written leaves. */
    memset(b.data + b.len, 0, 300);
    seen_t s = {0};
    assert_int_equal(jrec_scan(b.data, b.len + 300, s_intact, s_damaged, &s), b.len);
    assert_int_equal(s.n, 7);
    assert_int_equal(s.damaged_type[0], -1);
}

static void test_scan_garbage(void **state)
{
    (void)state;
    uint8_t junk[4096];
    uint32_t x = 12345;
    for (size_t i = 0; i < sizeof junk; i++) {
        x = x * 1103515245u + 12345u;
        junk[i] = (uint8_t)(x >> 16);
        if (i % 97 == 0)
            junk[i] = JREC_MARK0; /* plenty of false starts */
    }
    seen_t s = {0};
    assert_int_equal(jrec_scan(junk, sizeof junk, s_intact, s_damaged, &s), 0);
    assert_int_equal(s.n, 0);
    assert_int_equal(s.ndamaged, 1);
    assert_int_equal(s.damaged_len[0], sizeof junk);
}

static int s_stop_at_two(void *ctx, size_t off, uint8_t type, const uint8_t *payload,
                         size_t len)
{
    (void)off;
    (void)type;
    (void)payload;
    (void)len;
    return ++*(int *)ctx == 2 ? -1 : 0;
}

static void test_scan_stops_when_asked(void **state)
{
    (void)state;
    buf_t b;
    s_fill(&b);
    int n = 0;
    assert_int_equal(jrec_scan(b.data, b.len, s_stop_at_two, NULL, &n), b.off[1]);
    assert_int_equal(n, 2);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_crc),
        cmocka_unit_test(test_round_trip_every_type),
        cmocka_unit_test(test_limits),
        cmocka_unit_test(test_decode_refuses_bad_payloads),
        cmocka_unit_test(test_scan_clean),
        cmocka_unit_test(test_scan_damaged_payload_in_the_middle),
        cmocka_unit_test(test_scan_damaged_header),
        cmocka_unit_test(test_scan_torn_tail),
        cmocka_unit_test(test_scan_garbage),
        cmocka_unit_test(test_scan_stops_when_asked),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
