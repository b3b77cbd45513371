/* msgenc.c -- msg_encode, the encoder half of the wire codec (msg.h).
 *
 * It walks the same tables as the decoder (msgschema.c), writing each
 * present field straight into the caller's buffer (mpraw.h): a field
 * first reserves the most bytes it can take, then writes them without
 * further checks, so a message costs a few reallocs at most the first
 * time a buffer is used and none after.  Every value gets its minimal
 * msgpack encoding, as PROTOCOL.md §8 asks.
 *
 * A map reserves room for all its fields at once, so that scalars, t and
 * short strings (s_put_small) are written with no check of their own.  The
 * items of an array of maps (the jobs of SUBMIT and JOBS, the results of
 * RESULTS) are written in one loop with no call in it (s_enc_items) as
 * long as the buffer has room and each field is one s_put_small writes;
 * s_enc_map writes any other item, and says what is wrong with it.
 *
 * Only fields that hold something are written (zero, false and NULL mean
 * absent, see msg.c), except MS_REQ and MS_ALL ones; lengths and counts
 * are checked against the tables' limits, and a value over its limit
 * fails the whole message with a message saying which.
 */
#include "msg.h"

#include <assert.h>
#include <inttypes.h>
#include <string.h>

#include "mpraw.h"
#include "msgerr.h"
#include "msgschema.h"

typedef msgschema_field_t field_t;
typedef msgschema_t shape_t;

/* The encoder writes straight into the caller's buffer (mpraw.h): each
 * field first reserves the most bytes it can take, then writes without
 * further checks. */
typedef struct enc {
    msgpack_sbuffer *buf;
    bool nomem;           /* the buffer could not grow: the frame is incomplete */
    msgerr_t at;          /* where the walk is, for messages */
} enc_t;

/* Where to write up to n more bytes, or NULL once memory has run out
 * (msg_encode reports it; nothing more is written meanwhile). */
static inline uint8_t *s_room(enc_t *e, size_t n)
{
    uint8_t *w = e->nomem ? NULL : mpraw_room(e->buf, n);
    if (!w) e->nomem = true;
    return w;
}

/* Bytes to reserve for a field's key: a fixstr, and the room s_put_key
 * writes over (keys are short). */
#define KEY_MAX(f) (1u + sizeof (f)->kraw)

/* The key as a fixstr: kword (its header and first 7 bytes, zero-padded)
 * and the next 8 bytes of the zero-padded kraw, two stores of a known size
 * whatever the key's length, past its end into reserved room that what
 * follows overwrites. */
static inline uint8_t *s_put_key(uint8_t *w, const field_t *f)
{
    uint64_t word = f->kword;
#if __BYTE_ORDER__ == __ORDER_BIG_ENDIAN__
    word = __builtin_bswap64(word);   /* kword is little-endian */
#endif
    memcpy(w, &word, 8);
    memcpy(w + 8, f->kraw + 7, 8);
    return w + 1 + f->klen;
}

static bool s_bytes_set(const msg_bytes_t *b) { return b->ptr != NULL; }

/* A result status (MS_DONE) goes out whenever the job is done or dead,
 * even when it is 0 (ok). */
static bool s_done(const field_t *f, const char *base)
{
    if (!(f->flags & MS_DONE)) return false;
    uint8_t state = ((const msg_result_t *)base)->state;
    return state == MSG_STATE_DONE || state == MSG_STATE_DEAD;
}

/* Write a str/bin (after f's key if key) after checking its length
 * against lo..hi. */
static int s_enc_bytes(enc_t *e, const field_t *f, long item, const msg_bytes_t *b, bool bin, uint32_t lo,
                       uint32_t hi, bool key)
{
    const char *ptr = b->ptr ? b->ptr : f->dflt ? f->dflt : "";
    uint32_t len = b->ptr ? b->len : (uint32_t)strlen(ptr);
    if (len < lo || len > hi) {
        char range[48];
        msgerr_range(range, sizeof range, lo, hi, "bytes");
        msgerr_fail(&e->at, QJ_E_LIMIT, f, item, "must be a %s %s (got %" PRIu32 " bytes)", bin ? "bin" : "string",
               range, len);
        return -1;
    }
    uint8_t *w = s_room(e, KEY_MAX(f) + MPRAW_HDR_MAX + (size_t)len);
    if (!w) return 0;
    if (key) w = s_put_key(w, f);
    w = bin ? mpraw_put_bin(w, ptr, len) : mpraw_put_str(w, ptr, len);
    mpraw_commit(e->buf, w);
    return 0;
}

static int s_enc_map(enc_t *e, const shape_t *sh, const char *base);
static uint32_t s_enc_items(enc_t *e, const shape_t *sh, const char *items, uint32_t i, uint32_t n);

static int s_enc_list(enc_t *e, const field_t *f, const char *base)
{
    uint32_t n = *(const uint32_t *)(base + f->noff);
    const void *items = *(const void *const *)(base + f->off);
    if (n < f->min || n > f->max) {
        char range[48];
        msgerr_range(range, sizeof range, f->min, f->max, "items");
        msgerr_fail(&e->at, QJ_E_LIMIT, f, -1, "must be an array %s (got %" PRIu32 " items)", range, n);
        return -1;
    }
    if (n && !items) {
        msgerr_fail(&e->at, QJ_E_BODY, f, -1, "has %" PRIu32 " items but no array", n);
        return -1;
    }
    uint8_t *w = s_room(e, KEY_MAX(f) + MPRAW_HDR_MAX + (f->type == MS_IDS ? (size_t)n * MPRAW_UINT_MAX : 0));
    if (!w) return 0;
    w = mpraw_put_array(s_put_key(w, f), n);
    if (f->type == MS_IDS) {
        for (uint32_t i = 0; i < n; i++) w = mpraw_put_uint(w, ((const uint64_t *)items)[i]);
        mpraw_commit(e->buf, w);
        return 0;
    }
    mpraw_commit(e->buf, w);
    if (f->type == MS_MAPS) {
        msgerr_t outer = e->at;   /* the item's place, for messages, while in it */
        e->at.where = f->sub->name;
        e->at.in_item = true;
        for (uint32_t i = 0;; i++) {
            if ((i = s_enc_items(e, f->sub, items, i, n)) == n) break;
            e->at.idx = i;
            if (s_enc_map(e, f->sub, (const char *)items + (size_t)i * f->sub->size)) return -1;
        }
        e->at = outer;
        return 0;
    }
    for (uint32_t i = 0; i < n; i++) {
        switch (f->type) {
        case MS_NAMES:
            if (s_enc_bytes(e, f, i, &((const msg_bytes_t *)items)[i], false, 1, QJ_MAX_QUEUE_NAME, false))
                return -1;
            break;
        case MS_ACKS: {
            const msg_ack_t *a = &((const msg_ack_t *)items)[i];
            if (!(w = s_room(e, 1 + 3 * MPRAW_UINT_MAX))) return 0;
            w = mpraw_put_array(w, a->code ? 4 : 2);
            w = mpraw_put_uint(w, a->ref);
            w = mpraw_put_uint(w, a->id);
            if (a->code) w = mpraw_put_uint(w, a->code);
            mpraw_commit(e->buf, w);
            if (a->code && s_enc_bytes(e, f, i, &a->text, false, 0, QJ_MAX_ERROR, false)) return -1;
            break;
        }
        case MS_OUTCOMES: {
            const msg_outcome_t *oc = &((const msg_outcome_t *)items)[i];
            if (!(w = s_room(e, 1 + 2 * MPRAW_UINT_MAX))) return 0;
            w = mpraw_put_array(w, 2);
            w = mpraw_put_uint(w, oc->id);
            w = mpraw_put_uint(w, oc->outcome);
            mpraw_commit(e->buf, w);
            break;
        }
        default: assert(!"unknown list type");
        }
    }
    return 0;
}

/* Whether error code c has a name in this version ("?" if not). */
static bool s_named(int c) { return msg_err_name(c)[0] != '?'; }

/* bad_by: {error name: count}, the counts that are not zero. */
static uint8_t *s_put_badby(uint8_t *w, const msg_stats_t *st)
{
    uint32_t n = 0;
    for (int c = 1; c < 16; c++) n += st->bad_by_code[c] && s_named(c);
    w = mpraw_put_map(w, n);
    for (int c = 1; c < 16; c++) {
        if (!st->bad_by_code[c] || !s_named(c)) continue;
        w = mpraw_put_str(w, msg_err_name(c), (uint32_t)strlen(msg_err_name(c)));
        w = mpraw_put_uint(w, st->bad_by_code[c]);
    }
    return w;
}

/* Bytes bad_by takes at most: 15 names of under 32 bytes and their counts. */
#define BADBY_MAX (MPRAW_HDR_MAX + 15 * (32 + MPRAW_UINT_MAX))

/* Bytes any field takes at most when s_put_small writes it: its key, and
 * a value of at most a 5-tuple of uints (t), a str or bin of at most
 * SMALL_BYTES bytes, or a scalar. */
#define SMALL_MAX (KEY_MAX((const field_t *)0) + 1u + 5 * MPRAW_UINT_MAX)
#define SMALL_BYTES (SMALL_MAX - KEY_MAX((const field_t *)0) - MPRAW_HDR_MAX)
_Static_assert(SMALL_BYTES <= MPRAW_COPY_SHORT_MAX && SMALL_BYTES <= UINT8_MAX,
               "a small str or bin is copied by mpraw_copy_short after a header of 1 or 2 bytes");

/* Whether field f, holding zero, false or NULL, is sent all the same. */
static inline bool s_sent_when_zero(const field_t *f, const char *base)
{
    return (f->flags & (MS_REQ | MS_ALL)) || s_done(f, base);
}

/* A uint field's value v, if sent. */
static inline __attribute__((always_inline)) int s_put_uint(const field_t *f, const char *base, uint64_t v,
                                                            uint8_t **wp)
{
    if (!v && !s_sent_when_zero(f, base)) return 0;
    *wp = mpraw_put_uint(s_put_key(*wp, f), v);
    return 1;
}

/* A str or bin field's value b, if sent and small. */
static inline __attribute__((always_inline)) int s_put_bytes(const field_t *f, const msg_bytes_t *b,
                                                             uint8_t **wp)
{
    if (!b->ptr) return f->flags & (MS_REQ | MS_ALL) ? 2 : 0;   /* the default, if any: s_enc_bytes */
    if (b->len > SMALL_BYTES || b->len < f->min || b->len > f->max) return 2;
    uint8_t *w = s_put_key(*wp, f);
    /* The header mpraw_put_str / mpraw_put_bin write for this length. */
    if (f->kind == MK_STR && b->len < 32) {
        *w++ = (uint8_t)(0xa0 | b->len);
    } else {
        *w++ = f->kind == MK_STR ? 0xd9 : 0xc4;
        *w++ = (uint8_t)b->len;
    }
    *wp = mpraw_copy_short(w, b->ptr, b->len);
    return 1;
}

/* Write field f of the struct at base, its key and its value, at *wp (which
 * has SMALL_MAX bytes of room), if it holds something worth sending: zero,
 * false and NULL are left out, except in MS_REQ and MS_ALL fields (and
 * MS_DONE ones, see s_done).  Returns 1 if written, 0 if left out, or 2 if
 * the field is not a scalar, a t tuple or a str/bin of at most SMALL_BYTES
 * bytes within its limits: s_enc_field writes it (or says what is wrong)
 * and nothing was written here. */
static inline __attribute__((always_inline)) int s_put_small(const field_t *f, const char *base,
                                                             uint8_t **wp)
{
    const void *p = base + f->off;
    uint8_t *w = *wp;
    switch (f->kind) {
    case MK_U8: return s_put_uint(f, base, *(const uint8_t *)p, wp);
    case MK_U16: return s_put_uint(f, base, *(const uint16_t *)p, wp);
    case MK_U32: return s_put_uint(f, base, *(const uint32_t *)p, wp);
    case MK_U64: return s_put_uint(f, base, *(const uint64_t *)p, wp);
    case MK_STR:
    case MK_BIN: return s_put_bytes(f, p, wp);
    case MK_PRI: {
        int32_t pri = *(const int32_t *)p;
        if (!pri && !(f->flags & (MS_REQ | MS_ALL))) return 0;
        if (pri < -128 || pri > 127) return 2;
        w = mpraw_put_int(s_put_key(w, f), pri);
        break;
    }
    case MK_BOOL:
        if (!*(const bool *)p && !(f->flags & (MS_REQ | MS_ALL))) return 0;
        w = s_put_key(w, f);
        *w++ = *(const bool *)p ? 0xc3 : 0xc2;
        break;
    case MK_TIMES: {
        const msg_times_t *t = p;
        if (!(t->submitted || t->queued || t->dispatched || t->started || t->finished) &&
            !(f->flags & (MS_REQ | MS_ALL)))
            return 0;
        w = mpraw_put_array(s_put_key(w, f), 5);
        w = mpraw_put_uint(w, t->submitted);
        w = mpraw_put_uint(w, t->queued);
        w = mpraw_put_uint(w, t->dispatched);
        w = mpraw_put_uint(w, t->started);
        w = mpraw_put_uint(w, t->finished);
        break;
    }
    default:
        return 2;
    }
    *wp = w;
    return 1;
}

/* Write field f of the struct at base, as s_put_small, for what that one
 * leaves (it writes every uint, bool, t and priority in range).  Returns 1
 * if written, 0 if left out, -1 if the value is over a limit. */
static int s_enc_field(enc_t *e, const field_t *f, const char *base)
{
    const void *p = base + f->off;
    bool always = f->flags & (MS_REQ | MS_ALL);
    uint8_t *w;
    switch (f->type) {
    case MS_PRI:
        msgerr_fail(&e->at, QJ_E_LIMIT, f, -1, "must be an integer from -128 to 127 (got %" PRId32 ")",
                    *(const int32_t *)p);
        return -1;
    case MS_STR:
    case MS_BIN:
        if (!s_bytes_set(p) && !always) return 0;
        return s_enc_bytes(e, f, -1, p, f->type == MS_BIN, f->min, f->max, true) < 0 ? -1 : 1;
    case MS_PROG: {
        const msg_result_t *r = (const msg_result_t *)base;
        bool note = s_bytes_set(&r->prog_note);
        if (!(r->prog_done || r->prog_total || note) && !always) return 0;
        if (!(w = s_room(e, KEY_MAX(f) + 1 + 2 * MPRAW_UINT_MAX))) return 0;
        w = mpraw_put_array(s_put_key(w, f), note ? 3 : 2);
        w = mpraw_put_uint(w, r->prog_done);
        w = mpraw_put_uint(w, r->prog_total);
        mpraw_commit(e->buf, w);
        if (note && s_enc_bytes(e, f, 2, &r->prog_note, false, 0, QJ_MAX_NOTE, false) < 0) return -1;
        return 1;
    }
    case MS_BADBY:
        if (!(w = s_room(e, KEY_MAX(f) + BADBY_MAX))) return 0;
        w = s_put_badby(s_put_key(w, f), p);
        break;
    case MS_UINT:
    case MS_BOOL:
    case MS_TIMES:
        assert(!"s_put_small writes these");
        return 0;
    default:
        if (!*(const uint32_t *)(base + f->noff) && !always) return 0;
        return s_enc_list(e, f, base) < 0 ? -1 : 1;
    }
    mpraw_commit(e->buf, w);
    return 1;
}

/* Write fields *jp, *jp + 1 ... of shape sh from the struct at base at *wp
 * (room for SMALL_MAX bytes each) with s_put_small, up to the end of the
 * table or the first that s_put_small leaves to s_enc_field (*jp is left
 * at that one).  Returns how many were written.  Inlined into the loops
 * below, so that the table walk lives in registers (a write through *wp
 * may alias anything the loop would otherwise read from memory again). */
static inline __attribute__((always_inline)) uint32_t s_put_fields(const shape_t *sh, const char *base,
                                                                   uint8_t **wp, uint32_t *jp)
{
    const field_t *fields = sh->fields;
    uint32_t nf = sh->nfields, n = 0, j = *jp;
    uint8_t *w = *wp;
    for (; j < nf; j++) {
        int rc = s_put_small(&fields[j], base, &w);
        if (rc == 2) break;
        n += (uint32_t)rc;
    }
    *wp = w;
    *jp = j;
    return n;
}

/* The map header is written before its fields are known to be present,
 * then patched with the count: one pass over the table instead of two.
 * Tables of up to 15 fields use a fixmap (minimal, as in PROTOCOL.md §8);
 * bigger ones a map16.  Room for every field still to come is reserved at
 * once, so that the common fields (s_put_small) are written with no check
 * of their own; the others go through s_enc_field, which reserves its own
 * room, and the reservation is made again after them. */
static int s_enc_map(enc_t *e, const shape_t *sh, const char *base)
{
    size_t at = e->buf->size;
    uint32_t n = 0, nf = sh->nfields;
    uint8_t *w = s_room(e, 3 + (size_t)nf * SMALL_MAX);
    if (!w) return 0;
    if (nf <= 15) {
        *w++ = 0x80;
    } else {
        *w++ = 0xde;
        *w++ = 0;
        *w++ = 0;
    }
    for (uint32_t j = 0;; j++) {
        n += s_put_fields(sh, base, &w, &j);
        if (j == nf) break;
        mpraw_commit(e->buf, w);
        int rc = s_enc_field(e, &sh->fields[j], base);
        if (rc < 0) return -1;
        n += (uint32_t)rc;
        if (!(w = s_room(e, (size_t)(nf - j) * SMALL_MAX))) return 0;
    }
    mpraw_commit(e->buf, w);
    if (nf <= 15) {
        e->buf->data[at] = (char)(0x80 | n);
    } else {
        e->buf->data[at + 1] = (char)(n >> 8);
        e->buf->data[at + 2] = (char)n;
    }
    return 0;
}

/* Items i, i + 1 ... of n of an array of maps of shape sh, written as
 * s_enc_map writes them, for as long as each fits the room the buffer has
 * already and every field of it is one s_put_small writes (and the shape
 * takes a fixmap).  Returns the index of the first item not written (n if
 * none): s_enc_map writes that one, growing the buffer or calling
 * s_enc_field, and says what is wrong if anything is.  A loop with no call
 * in it, so that its state lives in registers. */
static __attribute__((noinline)) uint32_t s_enc_items(enc_t *e, const shape_t *sh, const char *items,
                                                      uint32_t i, uint32_t n)
{
    msgpack_sbuffer *buf = e->buf;
    size_t room = 1 + (size_t)sh->nfields * SMALL_MAX;
    if (e->nomem || sh->nfields > 15) return i;
    for (; i < n && buf->alloc - buf->size >= room; i++) {
        uint8_t *head = (uint8_t *)buf->data + buf->size, *w = head + 1;
        uint32_t j = 0, count = s_put_fields(sh, items + (size_t)i * sh->size, &w, &j);
        if (j < sh->nfields) break;
        *head = (uint8_t)(0x80 | count);
        mpraw_commit(buf, w);
    }
    return i;
}

int msg_encode(msgpack_sbuffer *buf, const msg_t *m, char *err, size_t errlen)
{
    assert(buf && m);
    enc_t e = {.buf = buf, .at = {.where = "frame", .err = err, .errlen = errlen}};
    const shape_t *sh = msgschema_body(m->cmd);
    buf->size = 0;
    if (err && errlen) err[0] = '\0';
    if (!sh) {
        msgerr_fail(&e.at, QJ_E_COMMAND, NULL, -1, "unknown command 0x%02x", m->cmd);
        return -1;
    }
    e.at.where = sh->name;
    if (m->cmd == MSG_HELLO && msgerr_hello(&e.at, m) != QJ_E_OK) return -1;
    uint8_t *w = s_room(&e, MSG_HEADER_LEN);
    if (w) {
        *w++ = MSG_MAGIC0;
        *w++ = MSG_MAGIC1;
        *w++ = MSG_VERSION;
        *w++ = m->cmd;
        mpraw_commit(buf, w);
    }
    int rc = s_enc_map(&e, sh, (const char *)m);
    if (rc == 0 && e.nomem) {
        msgerr_fail(&e.at, QJ_E_INTERNAL, NULL, -1, "out of memory while encoding");
        rc = -1;
    }
    if (rc != 0) buf->size = 0;
    return rc;
}
