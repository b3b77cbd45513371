/* fuzz_journal.c -- libFuzzer target for the journal reader: jrec_scan
 * (finding intact records in damaged bytes) and jrec_decode (their
 * payloads), what qbroker runs over its files at start.
 *
 * An input is the body of a segment, or a whole segment file (its 24-byte
 * header, starting "QJJL", is skipped as the broker's reader does after
 * checking it).  Besides "no crash, no sanitizer report", it checks:
 *  - the intact records and the damaged stretches tile the input: in
 *    order, without gap or overlap, ending at its end; the offset
 *    returned is the end of the last intact record;
 *  - a payload that decodes re-encodes to the same bytes (the layout is
 *    canonical), unless the record carries bytes after its known fields.
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

#include "jrec.h"

typedef struct walk {
    const uint8_t *base;
    size_t next;          /* where the next record or stretch must start */
    size_t last_intact;   /* end of the last intact record */
    size_t damaged;
    uint8_t out[JREC_HEADER_LEN + JREC_MAX_PAYLOAD];
} walk_t;

static walk_t s_walk;

static void s_die(const char *what, size_t off)
{
    fprintf(stderr, "fuzz_journal: %s (offset %zu)\n", what, off);
    abort();
}

static int s_intact(void *ctx, size_t off, uint8_t type, const uint8_t *payload, size_t len)
{
    walk_t *w = ctx;
    if (off != w->next)
        s_die("an intact record does not start where the last piece ended", off);
    if (payload != w->base + off + JREC_HEADER_LEN)
        s_die("payload is not where the header is", off);
    w->next = w->last_intact = off + JREC_HEADER_LEN + len;
    jrec_t r;
    char err[256];
    if (jrec_decode(type, payload, len, &r, err, sizeof err) != 0) {
        w->damaged++;
        return 0;
    }
    size_t n = jrec_size(&r);
    if (n == 0)
        s_die("a decoded record is over the limits it was decoded within", off);
    if (n == JREC_HEADER_LEN + len) {
        jrec_encode(&r, w->out);
        if (memcmp(w->out + JREC_HEADER_LEN, payload, len) != 0 || w->out[2] != type)
            s_die("a decoded record does not re-encode to the same bytes", off);
    }
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
    w->base = data;
    w->next = w->last_intact = w->damaged = 0;
    size_t end = jrec_scan(data, size, s_intact, s_damaged, w);
    if (w->next != size)
        s_die("the pieces do not end at the end of the input", w->next);
    if (end != w->last_intact)
        s_die("the offset returned is not the end of the last intact record", end);
    if (expect_valid && w->damaged)
        s_die("a seed has damaged or unreadable records", end);
    return 0;
}
