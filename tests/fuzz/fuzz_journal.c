/* fuzz_journal.c -- libFuzzer target for the journal reader: jrec_scan
 * (finding intact records in damaged bytes) and jrec_decode (their
 * payloads, grouped or not), what qbroker runs over its files at start;
 * and the writer (jrec_head, jrec_item, jbuf) over what was read.
 *
 * An input is the body of a segment, or a whole segment file (its 24-byte
 * header, starting "QJJL", is skipped as the broker's reader does after
 * checking it).  Besides "no crash, no sanitizer report", it checks:
 *  - the intact records and the damaged stretches tile the input: in
 *    order, without gap or overlap, ending at its end; the offset
 *    returned is the end of the last intact record;
 *  - a payload that decodes re-encodes to the same bytes (the layout is
 *    canonical: the items of a grouped record share its head), unless a
 *    record that is not grouped carries bytes after its known fields;
 *  - the items read, appended to a jbuf as the broker appends records,
 *    come out as intact records that hold the same items in the same
 *    order (grouped however jbuf groups them).
 * Mutated records seldom keep a checksum that holds, so the input is
 * also decoded as the payload of one record (its first byte the type),
 * with the same checks: the decoder sees hostile payloads directly.
 *
 * Build and run: tests/fuzz/run-fuzz.sh [SECONDS]
 * Seeds: QJ_FUZZ_EXPECT_VALID=1 build-fuzz/tests/fuzz/fuzz_journal -runs=0
 *        tests/fuzz/corpus_journal aborts on a seed whose records are not
 *        all intact and readable (the seeds named damaged-* are not).
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "jbuf.h"
#include "jrec.h"

typedef struct walk {
    const uint8_t *base;
    size_t next;          /* where the next record or stretch must start */
    size_t last_intact;   /* end of the last intact record */
    size_t damaged;
    jbuf_t *jb;           /* the items read, appended again */
    uint32_t items_crc;   /* of the items read: type, head and item bytes */
    uint64_t items;
    uint8_t *o;           /* where the re-encoding of the record goes on */
    uint8_t out[JREC_HEADER_LEN + JREC_MAX_PAYLOAD];
    uint8_t head[JREC_HEAD_MAX];
    size_t head_len;
} walk_t;

static walk_t s_walk;

static void s_die(const char *what, size_t off)
{
    fprintf(stderr, "fuzz_journal: %s (offset %zu)\n", what, off);
    abort();
}

/* The CRC of a sequence of items, each as its type, head and item bytes. */
static uint32_t s_item_crc(uint32_t crc, const jrec_t *rec)
{
    static uint8_t one[JREC_HEAD_MAX + JREC_MAX_PAYLOAD];
    one[0] = rec->type;
    uint8_t *p = one + 1;
    p += jrec_head(rec, p);
    p = jrec_item(rec, p);
    return jrec_crc(crc, one, (size_t)(p - one));
}

static int s_item(void *ctx, const jrec_t *rec)
{
    walk_t *w = ctx;
    if (jrec_item_size(rec) == 0)
        s_die("a decoded item is over the limits it was decoded within", w->next);
    uint8_t head[JREC_HEAD_MAX];
    size_t hlen = jrec_head(rec, head);
    if (w->o == w->out + JREC_HEADER_LEN) {   /* the record's first item: its head */
        memcpy(w->o, head, hlen);
        w->o += hlen;
        memcpy(w->head, head, hlen);
        w->head_len = hlen;
    } else if (hlen != w->head_len || memcmp(head, w->head, hlen) != 0) {
        s_die("the items of a record do not share its head", w->next);
    }
    if (!jrec_head_is(rec, w->head, w->head_len))
        s_die("an item is not of the head it was read with", w->next);
    w->o = jrec_item(rec, w->o);
    if (jbuf_append(w->jb, rec) == 0)
        s_die("an item read cannot be appended again", w->next);
    w->items_crc = s_item_crc(w->items_crc, rec);
    w->items++;
    return 0;
}

/* Decode a payload; if it is readable, check that it re-encodes to the
 * same bytes.  Returns 0, or -1 if it is refused. */
static int s_payload(walk_t *w, size_t off, uint8_t type, const uint8_t *payload, size_t len)
{
    char err[256];
    w->o = w->out + JREC_HEADER_LEN;
    uint64_t items = w->items;
    if (jrec_decode(type, payload, len, s_item, w, err, sizeof err) != 0) {
        if (w->items != items)
            s_die("a refused record handed items over", off);
        return -1;
    }
    size_t plen = (size_t)(w->o - (w->out + JREC_HEADER_LEN));
    if (jrec_grouped(type) ? plen != len : plen > len)
        s_die("a decoded record does not re-encode to its length", off);
    if (memcmp(w->out + JREC_HEADER_LEN, payload, plen) != 0)
        s_die("a decoded record does not re-encode to the same bytes", off);
    return 0;
}

static int s_intact(void *ctx, size_t off, uint8_t type, const uint8_t *payload, size_t len)
{
    walk_t *w = ctx;
    if (off != w->next)
        s_die("an intact record does not start where the last piece ended", off);
    if (payload != w->base + off + JREC_HEADER_LEN)
        s_die("payload is not where the header is", off);
    w->next = w->last_intact = off + JREC_HEADER_LEN + len;
    if (s_payload(w, off, type, payload, len) != 0)
        w->damaged++;
    return 0;
}

static void s_damaged(void *ctx, size_t off, size_t len, int type, const char *why)
{
    walk_t *w = ctx;
    (void)type;
    if (off != w->next || len == 0 || !why)
        s_die("a damaged stretch does not start where the last piece ended", off);
    w->next = off + len;
    w->damaged++;
}

/* The items of the records jbuf wrote: the same as those read. */
typedef struct again {
    uint32_t crc;
    uint64_t items;
} again_t;

static int s_again_item(void *ctx, const jrec_t *rec)
{
    again_t *a = ctx;
    a->crc = s_item_crc(a->crc, rec);
    a->items++;
    return 0;
}

static int s_again(void *ctx, size_t off, uint8_t type, const uint8_t *payload, size_t len)
{
    char err[256];
    if (jrec_decode(type, payload, len, s_again_item, ctx, err, sizeof err) != 0)
        s_die("a record jbuf wrote does not decode", off);
    return 0;
}

static void s_not_again(void *ctx, size_t off, size_t len, int type, const char *why)
{
    (void)ctx;
    (void)len;
    (void)type;
    (void)why;
    s_die("jbuf wrote a damaged record", off);
}

/* The items appended to w->jb come out of it as they went in. */
static void s_check_jbuf(walk_t *w)
{
    size_t n;
    const uint8_t *written = jbuf_data(w->jb, &n);
    again_t a = {0};
    if (jrec_scan(written, n, s_again, s_not_again, &a) != n || a.items != w->items ||
        a.crc != w->items_crc)
        s_die("the records jbuf wrote do not hold the items read", 0);
    jbuf_destroy(&w->jb);
}

static void s_start(walk_t *w, const uint8_t *base)
{
    w->base = base;
    w->next = w->last_intact = w->damaged = 0;
    w->items = 0;
    w->items_crc = 0;
    w->jb = jbuf_new();
    if (!w->jb)
        abort();
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    static int expect_valid = -1;
    if (expect_valid < 0)
        expect_valid = getenv("QJ_FUZZ_EXPECT_VALID") != NULL;
    if (size >= 24 && memcmp(data, "QJJL", 4) == 0) {
        data += 24;
        size -= 24;
    }
    walk_t *w = &s_walk;
    s_start(w, data);
    size_t end = jrec_scan(data, size, s_intact, s_damaged, w);
    if (w->next != size)
        s_die("the pieces do not end at the end of the input", w->next);
    if (end != w->last_intact)
        s_die("the offset returned is not the end of the last intact record", end);
    if (expect_valid && w->damaged)
        s_die("a seed has damaged or unreadable records", end);
    s_check_jbuf(w);
    if (size > 0) {
        s_start(w, data);
        s_payload(w, 0, data[0], data + 1, size - 1);
        s_check_jbuf(w);
    }
    return 0;
}
