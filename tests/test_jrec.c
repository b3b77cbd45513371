/* test_jrec.c -- journal records: the CRC-32C (the CPU's instruction and
 * the table, against known vectors and each other), a round trip of every
 * type, grouped records (a head and items), limits, hostile payloads, and
 * the reader's resynchronisation after a damaged payload, a damaged
 * header, a torn tail and garbage. */
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

/* jrec_decode of a record of its own into *out; 0, or -1 with err. */
typedef struct one {
    jrec_t rec;
    int n;
} one_t;

static int s_one_item(void *ctx, const jrec_t *rec)
{
    one_t *o = ctx;
    o->rec = *rec;
    o->n++;
    return 0;
}

static int s_decode(uint8_t type, const uint8_t *payload, size_t len, jrec_t *out, char *err,
                    size_t errlen)
{
    one_t o = {0};
    int rc = jrec_decode(type, payload, len, s_one_item, &o, err, errlen);
    if (rc == 0)
        assert_int_equal(o.n, 1);
    else
        assert_int_equal(o.n, 0); /* nothing of a refused record */
    *out = o.rec;
    return rc;
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
    char err[128];
    assert_int_equal(jrec_decode(type, payload, len, NULL, NULL, err, sizeof err), 0);
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

/* The CRC-32C check value and the vectors of RFC 3720 (iSCSI), B.4. */
static void s_known_vectors(uint32_t (*crc)(uint32_t, const void *, size_t))
{
    uint8_t v[48];
    assert_int_equal(crc(0, "123456789", 9), 0xE3069283u);
    assert_int_equal(crc(0, "", 0), 0);
    memset(v, 0, 32);
    assert_int_equal(crc(0, v, 32), 0x8A9136AAu);
    memset(v, 0xff, 32);
    assert_int_equal(crc(0, v, 32), 0x62A8AB43u);
    for (int i = 0; i < 32; i++)
        v[i] = (uint8_t)i;
    assert_int_equal(crc(0, v, 32), 0x46DD794Eu);
    for (int i = 0; i < 32; i++)
        v[i] = (uint8_t)(31 - i);
    assert_int_equal(crc(0, v, 32), 0x113FDB5Cu);
    static const uint8_t read10[48] = {
        0x01, 0xc0, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00,
        0x00, 0x00, 0x14, 0x00, 0x00, 0x00, 0x00, 0x00, 0x04, 0x00, 0x00, 0x00, 0x00, 0x14,
        0x00, 0x00, 0x00, 0x18, 0x28, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x02, 0x00,
        0x00, 0x00, 0x00, 0x00, 0x00, 0x00};
    assert_int_equal(crc(0, read10, sizeof read10), 0xD9963A56u);
}

static void test_crc(void **state)
{
    (void)state;
    s_known_vectors(jrec_crc);
    s_known_vectors(jrec_crc_soft);
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

static void test_crc_engines_agree(void **state)
{
    (void)state;
    const char *engine = jrec_crc_engine();
    assert_true(strcmp(engine, "sse4.2") == 0 || strcmp(engine, "armv8-crc") == 0 ||
                strcmp(engine, "table") == 0);
#if defined(__x86_64__)
    __builtin_cpu_init();
    if (__builtin_cpu_supports("sse4.2"))
        assert_string_equal(engine, "sse4.2"); /* the instruction, where there is one */
#endif
    /* Every length, at every alignment, from any starting value (past
     * several blocks of the instruction's three lanes). */
    static uint8_t data[1100];
    uint32_t x = 2463534242u;
    for (size_t i = 0; i < sizeof data; i++) {
        x ^= x << 13;
        x ^= x >> 17;
        x ^= x << 5;
        data[i] = (uint8_t)x;
    }
    for (size_t align = 0; align < 8; align++)
        for (size_t len = 0; len + align <= sizeof data; len++) {
            uint32_t seed = len * 0x9E3779B9u;
            assert_int_equal(jrec_crc(seed, data + align, len),
                             jrec_crc_soft(seed, data + align, len));
        }
    assert_int_equal(jrec_crc(0, data, sizeof data), jrec_crc_soft(0, data, sizeof data));
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
        assert_int_equal(s_decode(out[2], out + JREC_HEADER_LEN, n - JREC_HEADER_LEN, &back,
                                     err, sizeof err), 0);
        s_rec_equal(&r, &back);
        assert_string_not_equal(jrec_type_name(t), "?");
    }
    /* Absent byte strings stay absent. */
    jrec_t r = {.type = JREC_JOB, .id = 1, .queue = {"q", 1}, .task = {"t", 1}}, back;
    uint8_t out[256];
    jrec_encode(&r, out);
    char err[128];
    assert_int_equal(s_decode(JREC_JOB, out + JREC_HEADER_LEN,
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

/* Where fields of s_sample(JREC_JOB) lie in its payload: its head (time,
 * cid, queue "emails"), then its item up to the task's length byte (id,
 * 'has', the four optional numbers, then the fixed ones). */
#define SAMPLE_HEAD (8 + 1 + QJ_CID_LEN + 1 + 6)
#define SAMPLE_TASK_AT (SAMPLE_HEAD + 8 + 1 + 4 * 8 + 8 + 4 + 4 + 2 + 2 + 1 + 1)

static void test_decode_refuses_bad_payloads(void **state)
{
    (void)state;
    char err[160];
    jrec_t r = s_sample(JREC_JOB), back;
    uint8_t out[512];
    size_t n = jrec_size(&r);
    jrec_encode(&r, out);
    uint8_t *p = out + JREC_HEADER_LEN;
    size_t plen = n - JREC_HEADER_LEN;
    /* Every truncation is refused, never read past. */
    for (size_t cut = 0; cut < plen; cut++)
        assert_int_equal(s_decode(JREC_JOB, p, cut, &back, err, sizeof err), -1);
    /* A grouped record holds items to its end: a byte more is a cut item. */
    p[plen] = 0xAB;
    assert_int_equal(s_decode(JREC_JOB, p, plen + 1, &back, err, sizeof err), -1);
    assert_non_null(strstr(err, "of its item 2"));
    /* A record that is not grouped ignores bytes after its fields (fields
     * may be added to it). */
    jrec_t q = s_sample(JREC_REQUEUE);
    jrec_encode(&q, out);
    memset(out + jrec_size(&q), 0xAB, 8);
    assert_int_equal(s_decode(JREC_REQUEUE, out + JREC_HEADER_LEN,
                              jrec_size(&q) - JREC_HEADER_LEN + 8, &back, err, sizeof err), 0);
    s_rec_equal(&q, &back);
    /* A cid of 5 bytes (the fields after it shift): refused with a reason. */
    jrec_encode(&r, out);
    p[8] = 5;
    err[0] = '\0';
    assert_int_equal(s_decode(JREC_JOB, p, plen, &back, err, sizeof err), -1);
    assert_non_null(strstr(err, "job record with a cid"));
    p[8] = QJ_CID_LEN;
    /* A job without a task: its length byte 0, its byte "x" the key's
     * length 0, and the args' length shifted (still 0, a byte left over). */
    jrec_t notask = s_sample(JREC_JOB);
    notask.task = (msg_bytes_t){"x", 1};
    notask.key = notask.args = (msg_bytes_t){0};
    jrec_encode(&notask, out);
    assert_int_equal(p[SAMPLE_TASK_AT], 1);
    p[SAMPLE_TASK_AT] = 0;
    p[SAMPLE_TASK_AT + 1] = 0;
    assert_int_equal(s_decode(JREC_JOB, p, jrec_size(&notask) - JREC_HEADER_LEN, &back, err,
                              sizeof err), -1);
    assert_non_null(strstr(err, "task name"));
    /* 'has': an unknown bit, or a field marked present that is 0 (the
     * layout is canonical: one encoding per record). */
    size_t has_at = SAMPLE_HEAD + 8;
    jrec_encode(&r, out);
    assert_int_equal(p[has_at], 15);
    p[has_at] = 31;
    assert_int_equal(s_decode(JREC_JOB, p, plen, &back, err, sizeof err), -1);
    assert_non_null(strstr(err, "'has'"));
    jrec_t zero = s_sample(JREC_JOB);
    zero.parent = 0;
    jrec_encode(&zero, out);
    size_t zlen = jrec_size(&zero) - JREC_HEADER_LEN;
    assert_int_equal(p[has_at], 13);
    p[has_at] = 15;           /* parent marked present: 8 zero bytes after ref */
    uint8_t shifted[512];
    memcpy(shifted, p, has_at + 1 + 8);
    memset(shifted + has_at + 1 + 8, 0, 8);
    memcpy(shifted + has_at + 1 + 16, p + has_at + 1 + 8, zlen - has_at - 1 - 8);
    assert_int_equal(s_decode(JREC_JOB, shifted, zlen + 8, &back, err, sizeof err), -1);
    assert_non_null(strstr(err, "present but 0"));
    /* Unknown type, unknown status, id 0. */
    jrec_encode(&r, out);
    assert_int_equal(s_decode(200, p, plen, &back, err, sizeof err), -1);
    assert_non_null(strstr(err, "unknown record type"));
    jrec_t f = s_sample(JREC_FINISH);
    f.st = MSG_ST_UNKNOWN;
    jrec_encode(&f, out);
    assert_int_equal(s_decode(JREC_FINISH, out + JREC_HEADER_LEN,
                              jrec_size(&f) - JREC_HEADER_LEN, &back, err, sizeof err), -1);
    jrec_t d = {.type = JREC_DISPATCH, .id = 0};
    jrec_encode(&d, out);
    assert_int_equal(s_decode(JREC_DISPATCH, out + JREC_HEADER_LEN,
                              jrec_size(&d) - JREC_HEADER_LEN, &back, err, sizeof err), -1);
    /* A head with no item. */
    assert_int_equal(s_decode(JREC_DISPATCH, out + JREC_HEADER_LEN, 8, &back, err, sizeof err),
                     -1);
    assert_non_null(strstr(err, "'id' of its item 1"));
    /* A huge declared length (the value's) inside a short payload. */
    uint8_t huge[8 + 2 + 8 + 1 + 2 + 2 * 8 + 4 + 16] = {0};
    huge[10] = 1;                                /* id */
    memcpy(huge + 37, "\xff\xff\xff\x7f", 4);    /* the value's length */
    assert_int_equal(s_decode(JREC_FINISH, huge, sizeof huge, &back, err, sizeof err), -1);
    assert_non_null(strstr(err, "'val'"));
}

/* ---- grouped records */

typedef struct items {
    int n;
    jrec_t rec[8];
    int stop_at;        /* stop after this many (0: never) */
} items_t;

static int s_items(void *ctx, const jrec_t *rec)
{
    items_t *it = ctx;
    assert_true(it->n < 8);
    it->rec[it->n++] = *rec;
    return it->stop_at && it->n == it->stop_at;
}

/* A record of one head and n items, built as jbuf.c builds them. */
static size_t s_group(const jrec_t *recs, int n, uint8_t *out)
{
    uint8_t *payload = out + JREC_HEADER_LEN, *p = payload;
    p += jrec_head(&recs[0], p);
    for (int i = 0; i < n; i++) {
        uint8_t head[JREC_HEAD_MAX], first[JREC_HEAD_MAX];
        size_t hlen = jrec_head(&recs[i], head);
        assert_int_equal(hlen, jrec_head(&recs[0], first));
        assert_memory_equal(head, first, hlen);   /* the items share their head */
        assert_true(jrec_item_size(&recs[i]) > 0);
        uint8_t *end = jrec_item(&recs[i], p);
        assert_int_equal((size_t)(end - p), jrec_item_size(&recs[i]));
        p = end;
    }
    jrec_seal(out, recs[0].type, (size_t)(p - payload));
    return (size_t)(p - out);
}

/* jrec_head_is: true for the head jrec_head writes, false once any of its
 * fields differs (or its length). */
static void test_head_is(void **state)
{
    (void)state;
    for (int t = JREC_JOB; t <= JREC_END; t++) {
        jrec_t r = s_sample(t);
        uint8_t head[JREC_HEAD_MAX + 1];
        size_t len = jrec_head(&r, head);
        assert_int_equal(len == 0, !jrec_grouped(t));
        assert_true(jrec_head_is(&r, head, len));
        if (len)
            assert_false(jrec_head_is(&r, head, len - 1));
        /* An item's own fields are not its head's. */
        r.id++;
        r.attempt++;
        r.task = (msg_bytes_t){"other", 5};
        r.val = r.err = (msg_bytes_t){0};
        assert_true(jrec_head_is(&r, head, len));
    }
    jrec_t job = s_sample(JREC_JOB), fin = s_sample(JREC_FINISH);
    uint8_t jh[JREC_HEAD_MAX], fh[JREC_HEAD_MAX];
    size_t jlen = jrec_head(&job, jh), flen = jrec_head(&fin, fh);
    static const char CID2[QJ_CID_LEN] = "0123456789abcdeX";
    jrec_t other[] = {job, job, job, job, job, fin, fin, fin, fin};
    other[0].t_queued++;
    other[1].cid = (msg_bytes_t){CID2, QJ_CID_LEN};
    other[2].cid = (msg_bytes_t){0};
    other[3].queue = (msg_bytes_t){"emailz", 6};
    other[4].queue = (msg_bytes_t){"email", 5};
    other[5].final_us += 1ull << 56;
    other[6].wk = (msg_bytes_t){"host:1/1", 8};
    other[7].wk = (msg_bytes_t){"host:1/", 7};
    other[8].wk = (msg_bytes_t){0};
    for (int i = 0; i < 9; i++)
        assert_false(jrec_head_is(&other[i], i < 5 ? jh : fh, i < 5 ? jlen : flen));
    jrec_t d = s_sample(JREC_DISPATCH);
    uint8_t dh[8];
    jrec_head(&d, dh);
    d.t_dispatched ^= 1;
    assert_false(jrec_head_is(&d, dh, 8));
}

static void test_groups_round_trip(void **state)
{
    (void)state;
    assert_true(jrec_grouped(JREC_JOB) && jrec_grouped(JREC_DISPATCH) &&
                jrec_grouped(JREC_FINISH));
    assert_false(jrec_grouped(JREC_REQUEUE) || jrec_grouped(JREC_CANCEL) ||
                 jrec_grouped(JREC_NEXT_ID) || jrec_grouped(JREC_END));
    /* Jobs of one head, each optional field present in some, absent in
     * others; items of different sizes. */
    jrec_t jobs[5];
    for (int i = 0; i < 5; i++) {
        jobs[i] = s_sample(JREC_JOB);
        jobs[i].id = 100 + (uint64_t)i;
        jobs[i].ref = i & 1 ? 0 : 7 + (uint64_t)i;
        jobs[i].parent = i & 2 ? 0 : 99;
        jobs[i].t_dispatched = i == 3 ? 0 : 3000;
        jobs[i].due_us = i == 4 ? 4000 : 0;
        jobs[i].args = i == 2 ? (msg_bytes_t){0} : jobs[i].args;
        jobs[i].key = i == 1 ? (msg_bytes_t){"k", 1} : (msg_bytes_t){0};
    }
    jrec_t fin[3], dis[3];
    for (int i = 0; i < 3; i++) {
        fin[i] = s_sample(JREC_FINISH);
        fin[i].id = 200 + (uint64_t)i;
        fin[i].st = (uint8_t)i;
        fin[i].err = i ? (msg_bytes_t){0} : fin[i].err;
        dis[i] = s_sample(JREC_DISPATCH);
        dis[i].id = 300 + (uint64_t)i;
        dis[i].attempt = (uint16_t)(i + 1);
    }
    struct { const jrec_t *recs; int n; } cases[] = {{jobs, 5}, {fin, 3}, {dis, 3}};
    for (int c = 0; c < 3; c++) {
        uint8_t out[2048];
        size_t len = s_group(cases[c].recs, cases[c].n, out);
        assert_true(len > JREC_HEADER_LEN);
        /* Smaller than a record per item: one header, one head. */
        size_t apart = 0;
        for (int i = 0; i < cases[c].n; i++)
            apart += jrec_size(&cases[c].recs[i]);
        assert_true(len < apart);
        items_t it = {0};
        char err[160];
        assert_int_equal(jrec_scan(out, len, NULL, NULL, NULL), len); /* intact */
        assert_int_equal(jrec_decode(out[2], out + JREC_HEADER_LEN, len - JREC_HEADER_LEN,
                                     s_items, &it, err, sizeof err), 0);
        assert_int_equal(it.n, cases[c].n);
        for (int i = 0; i < it.n; i++)
            s_rec_equal(&cases[c].recs[i], &it.rec[i]);
        /* Stopped after the second: 1, and no third. */
        items_t stop = {.stop_at = 2};
        assert_int_equal(jrec_decode(out[2], out + JREC_HEADER_LEN, len - JREC_HEADER_LEN,
                                     s_items, &stop, err, sizeof err), 1);
        assert_int_equal(stop.n, 2);
        /* A record whose last item is bad is refused whole. */
        items_t none = {0};
        out[len - 1] ^= 0xff;
        jrec_seal(out, out[2], len - JREC_HEADER_LEN);
        int rc = jrec_decode(out[2], out + JREC_HEADER_LEN, len - JREC_HEADER_LEN, s_items,
                             &none, err, sizeof err);
        if (rc != 0) /* (a DISPATCH's last byte is an attempt: any value is one) */
            assert_int_equal(none.n, 0);
    }
    /* A bad item in the middle: nothing is handed over. */
    jobs[2].task = (msg_bytes_t){"x", 1};
    jobs[2].key = jobs[2].args = (msg_bytes_t){0};
    jobs[2].ref = jobs[2].parent = jobs[2].t_dispatched = jobs[2].due_us = 0;
    uint8_t out[2048];
    size_t len = s_group(jobs, 4, out);
    size_t at = JREC_HEADER_LEN + SAMPLE_HEAD + jrec_item_size(&jobs[0]) +
                jrec_item_size(&jobs[1]) + 8 + 1 + 8 + 4 + 4 + 2 + 2 + 1 + 1;
    assert_int_equal(out[at], 1);
    assert_int_equal(out[at + 1], 'x');
    out[at] = 0;              /* a task of 0 bytes, its "x" taken out */
    memmove(out + at + 1, out + at + 2, len - at - 2);
    len--;
    jrec_seal(out, JREC_JOB, len - JREC_HEADER_LEN);
    items_t it = {0};
    char err[160];
    assert_int_equal(jrec_decode(JREC_JOB, out + JREC_HEADER_LEN, len - JREC_HEADER_LEN,
                                 s_items, &it, err, sizeof err), -1);
    assert_int_equal(it.n, 0);
    assert_non_null(strstr(err, "task name"));
    assert_non_null(strstr(err, "item 3"));
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
        cmocka_unit_test(test_crc_engines_agree),
        cmocka_unit_test(test_round_trip_every_type),
        cmocka_unit_test(test_limits),
        cmocka_unit_test(test_decode_refuses_bad_payloads),
        cmocka_unit_test(test_head_is),
        cmocka_unit_test(test_groups_round_trip),
        cmocka_unit_test(test_scan_clean),
        cmocka_unit_test(test_scan_damaged_payload_in_the_middle),
        cmocka_unit_test(test_scan_damaged_header),
        cmocka_unit_test(test_scan_torn_tail),
        cmocka_unit_test(test_scan_garbage),
        cmocka_unit_test(test_scan_stops_when_asked),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
