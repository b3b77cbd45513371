/* jrec.c -- journal records: checksum, layout, resynchronising reader
 * (see jrec.h and server/JOURNAL.md). */
#include "jrec.h"

#include <endian.h>
#include <stdio.h>
#include <string.h>

#if defined(__x86_64__) && defined(__GNUC__)
#include <nmmintrin.h>
#define JREC_CRC_SSE42 1
#elif defined(__aarch64__) && defined(__GNUC__)
#include <arm_acle.h>
#include <sys/auxv.h>
#ifndef HWCAP_CRC32
#define HWCAP_CRC32 (1 << 7)
#endif
#define JREC_CRC_ARMV8 1
#endif

/* ---- CRC-32C
 *
 * Castagnoli's polynomial (reflected 0x82F63B78), as iSCSI, ext4 and
 * LevelDB use: it catches more error patterns than zlib's CRC-32 at the
 * same cost, needs no library, and x86_64 (SSE4.2) and ARMv8 CPUs compute
 * it with one instruction per 8 bytes, several times faster than the
 * table.  The table ("slicing by 8", about 1 GB/s) serves other CPUs.
 *
 * The instruction takes 3 cycles and can start every cycle: over a long
 * buffer (a grouped record is kilobytes), three lanes of CRC_LANE bytes
 * each are computed at once, from 0 for the second and third, and joined:
 * the CRC register is linear, so that of A+B+C from state s is
 * Z(Z(crc(s, A)) ^ crc(0, B)) ^ crc(0, C), where Z moves a register over
 * CRC_LANE zero bytes (s_crc_zeros: four lookups). */

#define CRC_LANE 128

static uint32_t s_crc_table[8][256];
static uint32_t s_crc_zeros[4][256];

typedef uint32_t (*crc_fn)(uint32_t crc, const uint8_t *p, size_t len);

static uint32_t s_crc_by_table(uint32_t crc, const uint8_t *p, size_t len)
{
    crc = ~crc;
    while (len >= 8) {
        uint32_t lo = crc ^ ((uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 |
                             (uint32_t)p[3] << 24);
        crc = s_crc_table[7][lo & 0xff] ^ s_crc_table[6][(lo >> 8) & 0xff] ^
              s_crc_table[5][(lo >> 16) & 0xff] ^ s_crc_table[4][lo >> 24] ^
              s_crc_table[3][p[4]] ^ s_crc_table[2][p[5]] ^ s_crc_table[1][p[6]] ^
              s_crc_table[0][p[7]];
        p += 8;
        len -= 8;
    }
    while (len--)
        crc = (crc >> 8) ^ s_crc_table[0][(crc ^ *p++) & 0xff];
    return ~crc;
}

/* The register c (not inverted) moved over CRC_LANE zero bytes. */
static inline uint32_t s_crc_zero_lane(uint32_t c)
{
    return s_crc_zeros[0][c & 0xff] ^ s_crc_zeros[1][(c >> 8) & 0xff] ^
           s_crc_zeros[2][(c >> 16) & 0xff] ^ s_crc_zeros[3][c >> 24];
}

static inline uint64_t s_load64(const uint8_t *p)
{
    uint64_t v;
    memcpy(&v, p, 8);
    return v;
}

/* The CPU's CRC-32C instruction, on 8 bytes and on 1. */
#ifdef JREC_CRC_SSE42
#define CRC_TARGET __attribute__((target("sse4.2")))
#define CRC_STEP64(c, v) ((uint32_t)_mm_crc32_u64((c), (v)))
#define CRC_STEP8(c, b) _mm_crc32_u8((c), (b))
#define CRC_ENGINE "sse4.2"
#elif defined(JREC_CRC_ARMV8)
#define CRC_TARGET __attribute__((target("+crc")))
#define CRC_STEP64(c, v) __crc32cd((c), (v))
#define CRC_STEP8(c, b) __crc32cb((c), (b))
#define CRC_ENGINE "armv8-crc"
#endif

#ifdef CRC_TARGET
CRC_TARGET
static uint32_t s_crc_by_insn(uint32_t crc, const uint8_t *p, size_t len)
{
    crc = ~crc;
    for (; len >= 3 * CRC_LANE; p += 3 * CRC_LANE, len -= 3 * CRC_LANE) {
        uint32_t b = 0, d = 0;
        for (size_t i = 0; i < CRC_LANE; i += 8) {
            crc = CRC_STEP64(crc, s_load64(p + i));
            b = CRC_STEP64(b, s_load64(p + CRC_LANE + i));
            d = CRC_STEP64(d, s_load64(p + 2 * CRC_LANE + i));
        }
        crc = s_crc_zero_lane(s_crc_zero_lane(crc) ^ b) ^ d;
    }
    while (len >= 8) {
        crc = CRC_STEP64(crc, s_load64(p));
        p += 8;
        len -= 8;
    }
    while (len--)
        crc = CRC_STEP8(crc, *p++);
    return ~crc;
}
#endif

static crc_fn s_crc = s_crc_by_table;

/* Before main (no thread yet, so no race): the table, and the engine. */
__attribute__((constructor)) static void s_crc_init(void)
{
    for (uint32_t n = 0; n < 256; n++) {
        uint32_t c = n;
        for (int k = 0; k < 8; k++)
            c = c & 1 ? (c >> 1) ^ 0x82F63B78u : c >> 1;
        s_crc_table[0][n] = c;
    }
    for (uint32_t n = 0; n < 256; n++)
        for (int t = 1; t < 8; t++)
            s_crc_table[t][n] = (s_crc_table[t - 1][n] >> 8) ^
                                s_crc_table[0][s_crc_table[t - 1][n] & 0xff];
    /* Z of each bit alone; Z of a byte at a place is the XOR of its bits'. */
    uint32_t bit[32];
    for (int b = 0; b < 32; b++) {
        uint32_t c = 1u << b;
        for (int i = 0; i < CRC_LANE; i++)
            c = (c >> 8) ^ s_crc_table[0][c & 0xff];
        bit[b] = c;
    }
    for (int k = 0; k < 4; k++)
        for (uint32_t v = 0; v < 256; v++) {
            uint32_t c = 0;
            for (int b = 0; b < 8; b++)
                if (v >> b & 1)
                    c ^= bit[8 * k + b];
            s_crc_zeros[k][v] = c;
        }
#ifdef JREC_CRC_SSE42
    __builtin_cpu_init();
    if (__builtin_cpu_supports("sse4.2"))
        s_crc = s_crc_by_insn;
#elif defined(JREC_CRC_ARMV8)
    if (getauxval(AT_HWCAP) & HWCAP_CRC32)
        s_crc = s_crc_by_insn;
#endif
}

uint32_t jrec_crc(uint32_t crc, const void *buf, size_t len)
{
    return s_crc(crc, buf, len);
}

uint32_t jrec_crc_soft(uint32_t crc, const void *buf, size_t len)
{
    return s_crc_by_table(crc, buf, len);
}

const char *jrec_crc_engine(void)
{
#ifdef CRC_ENGINE
    if (s_crc != s_crc_by_table)
        return CRC_ENGINE;
#endif
    return "table";
}

/* ---- writing: straight stores of little-endian integers */

static inline uint8_t *s_u8(uint8_t *p, uint8_t v)
{
    *p = v;
    return p + 1;
}

static inline uint8_t *s_u16(uint8_t *p, uint16_t v)
{
    v = htole16(v);
    memcpy(p, &v, 2);
    return p + 2;
}

static inline uint8_t *s_u32(uint8_t *p, uint32_t v)
{
    v = htole32(v);
    memcpy(p, &v, 4);
    return p + 4;
}

static inline uint8_t *s_u64(uint8_t *p, uint64_t v)
{
    v = htole64(v);
    memcpy(p, &v, 8);
    return p + 8;
}

static inline uint32_t s_len(msg_bytes_t b)
{
    return b.ptr ? b.len : 0;
}

/* A byte string after its length, in a prefix of lenbytes (1, 2 or 4). */
static inline uint8_t *s_bytes(uint8_t *p, msg_bytes_t b, int lenbytes)
{
    uint32_t n = s_len(b);
    if (lenbytes == 1)
        p = s_u8(p, (uint8_t)n);
    else if (lenbytes == 2)
        p = s_u16(p, (uint16_t)n);
    else
        p = s_u32(p, n);
    if (n)
        memcpy(p, b.ptr, n);
    return p + n;
}

/* The optional fields of a JOB item, present when not 0: a bit each in
 * its 'has' byte, the fields in this order. */
enum { HAS_REF = 1, HAS_PARENT = 2, HAS_DISPATCHED = 4, HAS_DUE = 8, HAS_ALL = 15 };

/* Fixed parts: of each grouped type's head and item before their byte
 * strings and optional fields (length prefixes included), of the others'
 * payloads. */
#define JOB_HEAD_FIXED (8 + 1 + 1)
#define JOB_ITEM_FIXED (8 + 1 + 8 + 4 + 4 + 2 + 2 + 1 + 1 + 1 + 1 + 4)
#define DISPATCH_HEAD 8
#define DISPATCH_ITEM (8 + 2)
#define FINISH_HEAD_FIXED (8 + 2)
#define FINISH_ITEM_FIXED (8 + 1 + 2 + 8 + 8 + 4 + 2)
#define REQUEUE_LEN (8 + 2 + 8 + 1)
#define NUMBER_LEN 8

_Static_assert(JOB_HEAD_FIXED + QJ_CID_LEN + QJ_MAX_QUEUE_NAME <= JREC_HEAD_MAX,
               "a JOB head fits in JREC_HEAD_MAX");

static uint8_t s_job_has(const jrec_t *r)
{
    return (uint8_t)((r->ref ? HAS_REF : 0) | (r->parent ? HAS_PARENT : 0) |
                     (r->t_dispatched ? HAS_DISPATCHED : 0) | (r->due_us ? HAS_DUE : 0));
}

static size_t s_head_len(const jrec_t *r)
{
    switch (r->type) {
    case JREC_JOB: return JOB_HEAD_FIXED + (size_t)s_len(r->cid) + s_len(r->queue);
    case JREC_DISPATCH: return DISPATCH_HEAD;
    case JREC_FINISH: return FINISH_HEAD_FIXED + (size_t)s_len(r->wk);
    default: return 0;
    }
}

size_t jrec_head(const jrec_t *r, uint8_t *out)
{
    uint8_t *p = out;
    switch (r->type) {
    case JREC_JOB:
        p = s_u64(p, r->t_queued);
        p = s_bytes(p, r->cid, 1);
        p = s_bytes(p, r->queue, 1);
        break;
    case JREC_DISPATCH:
        p = s_u64(p, r->t_dispatched);
        break;
    case JREC_FINISH:
        p = s_u64(p, r->final_us);
        p = s_bytes(p, r->wk, 2);
        break;
    default:
        break;
    }
    return (size_t)(p - out);
}

/* b is the byte string at p, after its prefix of lenbytes? */
static inline bool s_bytes_at(msg_bytes_t b, const uint8_t *p, const uint8_t *end,
                              int lenbytes)
{
    uint32_t n = s_len(b);
    if ((size_t)(end - p) != (size_t)lenbytes + n)
        return false;
    uint32_t have = lenbytes == 1 ? p[0] : (uint32_t)p[0] | (uint32_t)p[1] << 8;
    return have == n && (n == 0 || memcmp(p + lenbytes, b.ptr, n) == 0);
}

static inline bool s_u64_at(uint64_t v, const uint8_t *p)
{
    uint64_t have;
    memcpy(&have, p, 8);
    return le64toh(have) == v;
}

bool jrec_head_is(const jrec_t *r, const uint8_t *head, size_t len)
{
    const uint8_t *end = head + len;
    switch (r->type) {
    case JREC_JOB: {
        uint32_t cid = s_len(r->cid);
        return len == JOB_HEAD_FIXED + (size_t)cid + s_len(r->queue) &&
               s_u64_at(r->t_queued, head) && head[8] == cid &&
               (cid == 0 || memcmp(head + 9, r->cid.ptr, QJ_CID_LEN) == 0) &&
               s_bytes_at(r->queue, head + 9 + cid, end, 1);
    }
    case JREC_DISPATCH:
        return len == DISPATCH_HEAD && s_u64_at(r->t_dispatched, head);
    case JREC_FINISH:
        return len >= FINISH_HEAD_FIXED && s_u64_at(r->final_us, head) &&
               s_bytes_at(r->wk, head + 8, end, 2);
    default:
        return len == 0;
    }
}

size_t jrec_item_size(const jrec_t *r)
{
    switch (r->type) {
    case JREC_JOB: {
        uint32_t cid = s_len(r->cid), q = s_len(r->queue), t = s_len(r->task),
                 k = s_len(r->key), a = s_len(r->args);
        if ((cid && cid != QJ_CID_LEN) || q < 1 || q > QJ_MAX_QUEUE_NAME || t < 1 ||
            t > QJ_MAX_TASK_NAME || k > QJ_MAX_KEY || a > QJ_MAX_ARGS)
            return 0;
        static const uint8_t present[16] = {0, 1, 1, 2, 1, 2, 2, 3, 1, 2, 2, 3, 2, 3, 3, 4};
        return JOB_ITEM_FIXED + 8 * (size_t)present[s_job_has(r)] + t + k + a;
    }
    case JREC_DISPATCH: return DISPATCH_ITEM;
    case JREC_REQUEUE: return REQUEUE_LEN;
    case JREC_FINISH: {
        uint32_t v = s_len(r->val), e = s_len(r->err), k = s_len(r->wk);
        if (v > QJ_MAX_VALUE || e > QJ_MAX_ERROR || k > QJ_MAX_NAME)
            return 0;
        return FINISH_ITEM_FIXED + (size_t)v + e;
    }
    case JREC_CANCEL:
    case JREC_NEXT_ID:
    case JREC_END: return NUMBER_LEN;
    default: return 0;
    }
}

uint8_t *jrec_item(const jrec_t *r, uint8_t *p)
{
    switch (r->type) {
    case JREC_JOB: {
        uint8_t has = s_job_has(r);
        p = s_u64(p, r->id);
        p = s_u8(p, has);
        if (has & HAS_REF)
            p = s_u64(p, r->ref);
        if (has & HAS_PARENT)
            p = s_u64(p, r->parent);
        if (has & HAS_DISPATCHED)
            p = s_u64(p, r->t_dispatched);
        if (has & HAS_DUE)
            p = s_u64(p, r->due_us);
        p = s_u64(p, r->t_submit);
        p = s_u32(p, r->timeout_ms);
        p = s_u32(p, r->backoff_ms);
        p = s_u16(p, r->retries);
        p = s_u16(p, r->attempt);
        p = s_u8(p, (uint8_t)r->pri);
        p = s_u8(p, r->flags);
        p = s_bytes(p, r->task, 1);
        p = s_bytes(p, r->key, 1);
        return s_bytes(p, r->args, 4);
    }
    case JREC_DISPATCH:
        p = s_u64(p, r->id);
        return s_u16(p, r->attempt);
    case JREC_REQUEUE:
        p = s_u64(p, r->id);
        p = s_u16(p, r->attempt);
        p = s_u64(p, r->due_us);
        return s_u8(p, r->front ? 1 : 0);
    case JREC_FINISH:
        p = s_u64(p, r->id);
        p = s_u8(p, r->st);
        p = s_u16(p, r->attempt);
        p = s_u64(p, r->started);
        p = s_u64(p, r->finished);
        p = s_bytes(p, r->val, 4);
        return s_bytes(p, r->err, 2);
    default: /* CANCEL, NEXT_ID, END: one number */
        return s_u64(p, r->id);
    }
}

void jrec_seal(uint8_t *rec, uint8_t type, size_t plen)
{
    rec[0] = JREC_MARK0;
    rec[1] = JREC_MARK1;
    rec[2] = type;
    rec[3] = 0;
    s_u32(rec + 4, (uint32_t)plen);
    uint32_t crc = jrec_crc(jrec_crc(0, rec, 8), rec + JREC_HEADER_LEN, plen);
    s_u32(rec + 8, crc);
}

size_t jrec_size(const jrec_t *r)
{
    size_t n = jrec_item_size(r);
    return n ? JREC_HEADER_LEN + s_head_len(r) + n : 0;
}

void jrec_encode(const jrec_t *r, uint8_t *out)
{
    uint8_t *payload = out + JREC_HEADER_LEN;
    uint8_t *end = jrec_item(r, payload + jrec_head(r, payload));
    jrec_seal(out, r->type, (size_t)(end - payload));
}

/* ---- reading */

typedef struct rd {
    const uint8_t *p, *end;
    const char *short_of; /* first field that did not fit, or NULL */
} rd_t;

static bool s_need(rd_t *r, size_t n, const char *what)
{
    if (r->short_of)
        return false;
    if ((size_t)(r->end - r->p) < n) {
        r->short_of = what;
        return false;
    }
    return true;
}

static uint64_t s_get(rd_t *r, int nbytes, const char *what)
{
    if (!s_need(r, (size_t)nbytes, what))
        return 0;
    uint64_t v = 0;
    for (int i = 0; i < nbytes; i++)
        v |= (uint64_t)r->p[i] << (8 * i);
    r->p += nbytes;
    return v;
}

/* A byte string with a prefix of lenbytes; absent (NULL) if empty. */
static msg_bytes_t s_get_bytes(rd_t *r, int lenbytes, const char *what)
{
    uint32_t n = (uint32_t)s_get(r, lenbytes, what);
    if (!s_need(r, n, what) || n == 0)
        return (msg_bytes_t){0};
    msg_bytes_t b = {(const char *)r->p, n};
    r->p += n;
    return b;
}

/* The head of a grouped record into out.  NULL, or what is wrong. */
static const char *s_get_head(rd_t *r, jrec_t *out)
{
    switch (out->type) {
    case JREC_JOB:
        out->t_queued = s_get(r, 8, "t_queued");
        out->cid = s_get_bytes(r, 1, "cid");
        out->queue = s_get_bytes(r, 1, "queue");
        if (r->short_of)
            return NULL;
        if (out->cid.len && out->cid.len != QJ_CID_LEN)
            return "a cid of the wrong length";
        if (out->queue.len < 1 || out->queue.len > QJ_MAX_QUEUE_NAME)
            return "a queue name of the wrong length";
        return NULL;
    case JREC_DISPATCH:
        out->t_dispatched = s_get(r, 8, "t_dispatched");
        return NULL;
    case JREC_FINISH:
        out->final_us = s_get(r, 8, "final");
        out->wk = s_get_bytes(r, 2, "wk");
        return !r->short_of && out->wk.len > QJ_MAX_NAME ? "a worker name over its limit"
                                                         : NULL;
    default:
        return NULL;
    }
}

/* A JOB item's optional field: present (and then never 0) or 0. */
static uint64_t s_get_opt(rd_t *r, uint8_t has, uint8_t bit, const char *what, bool *zero)
{
    if (!(has & bit))
        return 0;
    uint64_t v = s_get(r, 8, what);
    if (v == 0)
        *zero = true;
    return v;
}

/* One item (or a record that is not grouped) into out, whose head fields
 * are kept.  NULL, or what is wrong. */
static const char *s_get_item(rd_t *r, jrec_t *out)
{
    out->id = s_get(r, 8, out->type == JREC_END || out->type == JREC_NEXT_ID ? "number" : "id");
    switch (out->type) {
    case JREC_JOB: {
        uint8_t has = (uint8_t)s_get(r, 1, "has");
        bool zero = false;
        out->ref = s_get_opt(r, has, HAS_REF, "ref", &zero);
        out->parent = s_get_opt(r, has, HAS_PARENT, "parent", &zero);
        out->t_dispatched = s_get_opt(r, has, HAS_DISPATCHED, "t_dispatched", &zero);
        out->due_us = s_get_opt(r, has, HAS_DUE, "due", &zero);
        out->t_submit = s_get(r, 8, "t_submit");
        out->timeout_ms = (uint32_t)s_get(r, 4, "timeout");
        out->backoff_ms = (uint32_t)s_get(r, 4, "backoff");
        out->retries = (uint16_t)s_get(r, 2, "retries");
        out->attempt = (uint16_t)s_get(r, 2, "attempt");
        out->pri = (int8_t)(uint8_t)s_get(r, 1, "pri");
        out->flags = (uint8_t)s_get(r, 1, "flags");
        out->task = s_get_bytes(r, 1, "task");
        out->key = s_get_bytes(r, 1, "key");
        out->args = s_get_bytes(r, 4, "args");
        if (r->short_of)
            return NULL;
        if (has & ~HAS_ALL)
            return "unknown bits in its 'has' byte";
        if (zero)
            return "an optional field present but 0";
        if (out->task.len < 1 || out->task.len > QJ_MAX_TASK_NAME)
            return "a task name of the wrong length";
        if (out->key.len > QJ_MAX_KEY)
            return "an idempotency key over its limit";
        if (out->args.len > QJ_MAX_ARGS)
            return "arguments over their limit";
        break;
    }
    case JREC_DISPATCH:
        out->attempt = (uint16_t)s_get(r, 2, "attempt");
        break;
    case JREC_REQUEUE: {
        out->attempt = (uint16_t)s_get(r, 2, "attempt");
        out->due_us = s_get(r, 8, "due");
        uint64_t front = s_get(r, 1, "front");
        out->front = front == 1;
        if (front > 1)
            return "a front flag neither 0 nor 1";
        break;
    }
    case JREC_FINISH:
        out->st = (uint8_t)s_get(r, 1, "st");
        out->attempt = (uint16_t)s_get(r, 2, "attempt");
        out->started = s_get(r, 8, "started");
        out->finished = s_get(r, 8, "finished");
        out->val = s_get_bytes(r, 4, "val");
        out->err = s_get_bytes(r, 2, "err");
        if (r->short_of)
            return NULL;
        if (out->st > MSG_ST_LOST)
            return "an unknown status";
        if (out->val.len > QJ_MAX_VALUE || out->err.len > QJ_MAX_ERROR)
            return "a result field over its limit";
        break;
    default:
        break;
    }
    if (!r->short_of && out->id == 0 && out->type != JREC_END)
        return "id 0";
    return NULL;
}

int jrec_decode(uint8_t type, const uint8_t *payload, size_t len, jrec_item_fn fn, void *ctx,
                char *err, size_t errlen)
{
    if (type < JREC_JOB || type > JREC_END) {
        snprintf(err, errlen, "unknown record type %u", type);
        return -1;
    }
    jrec_t rec;
    memset(&rec, 0, sizeof rec);
    rec.type = type;
    rd_t r = {payload, payload + len, NULL};
    bool grouped = jrec_grouped(type);
    const char *bad = s_get_head(&r, &rec);
    const uint8_t *items = r.p;
    unsigned n = 0;
    /* First every item is checked, so that a record is used whole or not
     * at all; then they are handed over. */
    while (!bad && !r.short_of) {
        n++;
        bad = s_get_item(&r, &rec);
        if (!grouped || r.p == r.end)
            break;
    }
    if (r.short_of && grouped && n > 0) {
        snprintf(err, errlen, "%s record of %zu bytes ends inside the field '%s' of its item %u",
                 jrec_type_name(type), len, r.short_of, n);
        return -1;
    }
    if (r.short_of) {
        snprintf(err, errlen, "%s record of %zu bytes ends inside its field '%s'",
                 jrec_type_name(type), len, r.short_of);
        return -1;
    }
    if (bad) {
        if (grouped && n > 0)
            snprintf(err, errlen, "%s record with %s in its item %u", jrec_type_name(type), bad,
                     n);
        else
            snprintf(err, errlen, "%s record with %s", jrec_type_name(type), bad);
        return -1;
    }
    if (!fn)
        return 0;
    r.p = items;
    for (unsigned i = 0; i < n; i++) {
        s_get_item(&r, &rec);
        if (fn(ctx, &rec) != 0)
            return 1;
    }
    return 0;
}

const char *jrec_type_name(int type)
{
    switch (type) {
    case JREC_JOB: return "job";
    case JREC_DISPATCH: return "dispatch";
    case JREC_REQUEUE: return "requeue";
    case JREC_FINISH: return "finish";
    case JREC_CANCEL: return "cancel";
    case JREC_NEXT_ID: return "next-id";
    case JREC_END: return "end";
    default: return "?";
    }
}

/* ---- scanning */

static uint32_t s_le32(const uint8_t *p)
{
    return (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 | (uint32_t)p[3] << 24;
}

/* Is there an intact record at off?  NULL if so, else what is wrong. */
static const char *s_check(const uint8_t *buf, size_t len, size_t off)
{
    if (len - off < JREC_HEADER_LEN)
        return "header cut short";
    const uint8_t *h = buf + off;
    if (h[0] != JREC_MARK0 || h[1] != JREC_MARK1)
        return "no record mark";
    uint32_t plen = s_le32(h + 4);
    if (plen > JREC_MAX_PAYLOAD)
        return "length over the limit";
    if (len - off - JREC_HEADER_LEN < plen)
        return "payload cut short";
    uint32_t crc = jrec_crc(jrec_crc(0, h, 8), h + JREC_HEADER_LEN, plen);
    if (crc != s_le32(h + 8))
        return "checksum mismatch";
    return NULL;
}

/* The next offset after off where an intact record starts, or len. */
static size_t s_resync(const uint8_t *buf, size_t len, size_t off)
{
    /* A damaged payload with an intact header: the record after it is
     * where the header says. */
    if (len - off >= JREC_HEADER_LEN && buf[off] == JREC_MARK0 && buf[off + 1] == JREC_MARK1) {
        uint32_t plen = s_le32(buf + off + 4);
        size_t next = off + JREC_HEADER_LEN + (size_t)plen;
        if (plen <= JREC_MAX_PAYLOAD && next < len && !s_check(buf, len, next))
            return next;
    }
    for (size_t p = off + 1; p < len; p++) {
        const uint8_t *m = memchr(buf + p, JREC_MARK0, len - p);
        if (!m)
            break;
        p = (size_t)(m - buf);
        if (!s_check(buf, len, p))
            return p;
    }
    return len;
}

size_t jrec_scan(const uint8_t *buf, size_t len, jrec_intact_fn intact,
                 jrec_damaged_fn damaged, void *ctx)
{
    size_t off = 0, good_end = 0;
    while (off < len) {
        const char *why = s_check(buf, len, off);
        if (!why) {
            uint32_t plen = s_le32(buf + off + 4);
            if (intact && intact(ctx, off, buf[off + 2], buf + off + JREC_HEADER_LEN, plen) != 0)
                return off;
            off += JREC_HEADER_LEN + (size_t)plen;
            good_end = off;
            continue;
        }
        size_t next = s_resync(buf, len, off);
        bool marked = len - off >= 3 && buf[off] == JREC_MARK0 && buf[off + 1] == JREC_MARK1;
        if (damaged)
            damaged(ctx, off, next - off, marked ? buf[off + 2] : -1, why);
        off = next;
    }
    return good_end;
}
