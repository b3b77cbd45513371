/* msg.c -- the qjob wire codec (proto/PROTOCOL.md is the contract):
 * names, the reader, and msg_decode; msg_encode is in msgenc.c.
 *
 * Every map of the wire format is described once, in msgschema.c, as a
 * table of fields (key, type, where it lives in the C struct, limits,
 * required or not).  The decoder here and the encoder in msgenc.c both
 * walk those tables, so the two cannot drift apart and a key added to a
 * table is added to both directions.
 *
 * Decoding: header check, then one walk over the body's bytes in place
 * (mpraw.h), with no msgpack-c object tree in between: each key is matched
 * against the table (the next field in table order first), unknown keys
 * are skipped, known ones type-checked and bounded.  The walk is the
 * pre-check too: every read is checked as mpck_check checks the same bytes
 * (lengths and counts within the body, depth, no 0xc1, timestamps, nothing
 * after the value), and an item array is allocated only for a count the
 * bytes left can hold, so nothing is allocated for a body that does not
 * fit its bytes.  Only bodies too big for the value count to be implied
 * by their size go through mpck_check first; and on any failure mpck_check
 * runs, so that a fault in the bytes is reported (with mpck's message)
 * before a fault in the content, exactly as a separate pre-check would.
 * Most pairs never get that far: the fast path (msgfast.h) matches a
 * fixstr key as one 64-bit word against the field expected next and reads
 * the common encodings of scalars, short str/bin and the t tuple straight
 * into the struct, whole arrays of items in one loop (and ACCEPTED's
 * [ref, id] here); anything else, or anything wrong, is read again by the
 * generic walk, which alone accepts the rest and writes every error
 * message.  The walk knows a missing required field by one mask
 * (msgschema_t.req).
 * str and bin values borrow from the frame; item arrays are carved from
 * the reader's zone, which is recycled (not freed) between messages, so a
 * steady stream of messages costs no malloc.
 *
 * Conventions worth knowing:
 *  - An optional key holding nil is treated as absent (many encoders write
 *    nil for "not set"); a required key holding nil is malformed.
 *  - A duplicate known key is malformed (which one would win is not
 *    something two implementations agree on).
 *  - Zero means absent for optional numbers: the encoder leaves out zero,
 *    false and NULL fields, and a receiver applies the protocol default
 *    (e.g. backoff 0 = broker default 1000 ms, queue NULL = "default").
 *  - Tuples ([ref, id], [id, outcome], t, prog) need their leading items;
 *    items past those are ignored, so a tuple can grow compatibly.
 */
#include "msg.h"

#include <assert.h>
#include <inttypes.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "mpck.h"
#include "mpraw.h"
#include "msgfast.h"
#include "msgerr.h"
#include "msgschema.h"

/* Short local names for the schema types. */
typedef msgschema_field_t field_t;
typedef msgschema_t shape_t;

/* Zone chunk sizes: a reader's zone starts with one small chunk (made on
 * first use: a worker keeps a reader per job it holds, for the job's
 * arguments, and most never decode a frame) and, when a message needed
 * more, takes a bigger one for the next (up to the cap), so that repeated
 * big batches are decoded without malloc as well. */
#define ZONE_FRAME_CHUNK (64u * 1024)
#define ZONE_VALUE_CHUNK (4u * 1024)
#define ZONE_MAX_CHUNK (4u * 1024 * 1024)

struct msg_reader {
    msgpack_zone *zone;   /* objects and item arrays of the last msg_decode */
    uintptr_t zbase;      /* zone's first free byte after the last recycle */
    msgpack_zone *vzone;  /* the last msg_value_decode (kept apart so that decoding
                             a job's args leaves the JOBS message intact) */
    uintptr_t vbase;
};

/* ---- names ------------------------------------------------------------ */

static const char *const s_err_names[] = {
    "ok", "frame", "version", "command", "body", "too_big", "limit", "hello",
    "role", "denied", "queue_full", "unknown_job", "unknown_task", "shutdown", "internal",
};
static const char *const s_st_names[] = {"ok", "error", "timeout", "cancelled", "lost", "unknown"};
static const char *const s_state_names[] = {"queued", "delayed", "running", "done", "dead", "unknown"};

#define NAME_OF(tab, i) ((i) >= 0 && (size_t)(i) < sizeof(tab) / sizeof(tab[0]) ? tab[i] : "?")

const char *msg_cmd_name(int cmd)
{
    const shape_t *b = msgschema_body(cmd);
    return b ? b->name : "?";
}

const char *msg_err_name(int code) { return NAME_OF(s_err_names, code); }
const char *msg_st_name(int st) { return NAME_OF(s_st_names, st); }
const char *msg_state_name(int state) { return NAME_OF(s_state_names, state); }

void msg_batch_range(uint32_t i, uint32_t n, char *buf, size_t len)
{
    unsigned long long lo = i < 64 ? 1ull << i : 0;
    if (i == 0 || i + 1 >= n)
        snprintf(buf, len, "%llu", lo);
    else
        snprintf(buf, len, "%llu-%llu", lo, 2 * lo - 1);
}

bool msg_peek(const void *frame, size_t len, uint8_t *cmd)
{
    const uint8_t *h = frame;
    if (len < MSG_HEADER_LEN || h[0] != MSG_MAGIC0 || h[1] != MSG_MAGIC1 || h[2] != MSG_VERSION)
        return false;
    if (cmd) *cmd = h[3];
    return msgschema_body(h[3]) != NULL;
}

/* ---- reader ----------------------------------------------------------- */

static msgpack_zone *s_zone_new(size_t chunk, uintptr_t *base)
{
    msgpack_zone *z = msgpack_zone_new(chunk);
    if (z) *base = (uintptr_t)z->chunk_list.ptr;
    return z;
}

/* Empty the zone for the next message (make it, with chunks of first
 * bytes, if there is none yet).  If the last message overflowed the first
 * chunk (its free pointer left that chunk), trade the zone for one with
 * bigger chunks; clearing alone would free the extra chunks and the next
 * message of the same size would malloc them again.  Returns false if
 * there is no zone for want of memory. */
static bool s_zone_recycle(msgpack_zone **zp, uintptr_t *base, size_t first)
{
    msgpack_zone *z = *zp;
    if (!z) return (*zp = s_zone_new(first, base)) != NULL;
    uintptr_t cur = (uintptr_t)z->chunk_list.ptr;
    bool spilled = cur < *base || cur > *base + z->chunk_size;
    if (spilled && z->chunk_size < ZONE_MAX_CHUNK) {
        uintptr_t nbase;
        msgpack_zone *bigger = s_zone_new(z->chunk_size * 4, &nbase);
        if (bigger) {
            msgpack_zone_free(z);
            *zp = bigger;
            *base = nbase;
            return true;
        }
    }
    msgpack_zone_clear(z);
    *base = (uintptr_t)z->chunk_list.ptr;
    return true;
}

msg_reader_t *msg_reader_new(void)
{
    return calloc(1, sizeof(msg_reader_t));   /* the zones come on first use */
}

void msg_reader_destroy(msg_reader_t **self_p)
{
    if (!self_p || !*self_p) return;
    msg_reader_t *self = *self_p;
    if (self->zone) msgpack_zone_free(self->zone);
    if (self->vzone) msgpack_zone_free(self->vzone);
    free(self);
    *self_p = NULL;
}

/* ---- decoding --------------------------------------------------------- */

/* For the few small functions of the per-value path, which the compiler
 * would otherwise leave out of line. */
#define HOT static inline __attribute__((always_inline))

typedef struct dec {
    msgpack_zone *zone;   /* item arrays go here */
    const uint8_t *end;   /* of the body */
    uint32_t open;        /* containers open around the map being walked */
    bool broken;          /* the bytes are not well-formed msgpack (mpraw) */
    msgerr_t at;          /* where the walk is, for messages */
} dec_t;

/* A fault, said at the place of decoder d (msgerr.h). */
#define s_fail(d, ...) msgerr_fail(&(d)->at, __VA_ARGS__)

/* A value of the body, read by s_read: o is its head; *pp points past it
 * (scalars) or at its first item (arrays, maps).  Every s_ function below
 * that takes pp consumes the value whole, unless it fails. */
typedef const uint8_t **cursor_t;

/* The bytes are not msgpack: msg_decode asks mpck what is wrong with them. */
static msg_err_t s_broken(dec_t *d) __attribute__((cold, noinline));
static msg_err_t s_broken(dec_t *d)
{
    d->broken = true;
    return QJ_E_BODY;
}

/* Read the next value's head into *o.  false if the bytes are broken. */
HOT bool s_read(dec_t *d, cursor_t pp, msgpack_object *o)
{
    const uint8_t *p = mpraw_head(*pp, d->end, o);
    if (!p) return false;
    *pp = p;
    return true;
}

/* Skip n whole values at *pp, inside open containers. */
static bool s_skip(dec_t *d, cursor_t pp, uint64_t n, uint32_t open)
{
    for (; n; n--)
        if (!(*pp = mpraw_skip(*pp, d->end, open, mpck_default_limits.max_depth))) return false;
    return true;
}

static uint64_t s_width_max(uint8_t width)
{
    return width >= 8 ? UINT64_MAX : (UINT64_C(1) << (8 * width)) - 1;
}

static msg_err_t s_uint_fail(dec_t *d, const field_t *f, long item, const msgpack_object *o,
                             uint64_t max) __attribute__((cold, noinline));
static msg_err_t s_uint_fail(dec_t *d, const field_t *f, long item, const msgpack_object *o,
                             uint64_t max)
{
    char got[48];
    return s_fail(d, QJ_E_BODY, f, item,
                       "must be an unsigned integer of at most %" PRIu64 " (got %s)", max,
                       msgerr_got(o, got, sizeof got));
}

/* An unsigned integer of at most max, or a body error. */
HOT msg_err_t s_uint(dec_t *d, const field_t *f, long item, const msgpack_object *o, uint64_t max,
                     uint64_t *out)
{
    if (o->type != MSGPACK_OBJECT_POSITIVE_INTEGER || o->via.u64 > max)
        return s_uint_fail(d, f, item, o, max);
    *out = o->via.u64;
    return QJ_E_OK;
}

/* The next value of the body as an unsigned integer of at most max. */
HOT msg_err_t s_next_uint(dec_t *d, const field_t *f, long item, cursor_t pp, uint64_t max,
                          uint64_t *out)
{
    msgpack_object o;
    if (!s_read(d, pp, &o)) return s_broken(d);
    return s_uint(d, f, item, &o, max, out);
}

static msg_err_t s_bytes_fail(dec_t *d, const field_t *f, long item, const msgpack_object *o, bool bin,
                              uint32_t lo, uint32_t hi, bool exact) __attribute__((cold, noinline));
static msg_err_t s_bytes_fail(dec_t *d, const field_t *f, long item, const msgpack_object *o, bool bin,
                              uint32_t lo, uint32_t hi, bool exact)
{
    msgpack_object_type want = bin ? MSGPACK_OBJECT_BIN : MSGPACK_OBJECT_STR;
    char got[48], range[48];
    msgerr_range(range, sizeof range, lo, hi, "bytes");
    if (o->type != want)
        return s_fail(d, QJ_E_BODY, f, item, "must be a %s %s (got %s)", bin ? "bin" : "string", range,
                      msgerr_got(o, got, sizeof got));
    return s_fail(d, exact ? QJ_E_BODY : QJ_E_LIMIT, f, item, "must be a %s %s (got %" PRIu32 " bytes)",
                  bin ? "bin" : "string", range, o->via.str.size);
}

/* A str or bin of lo..hi bytes; wrong type is body, wrong size limit. */
HOT msg_err_t s_bytes(dec_t *d, const field_t *f, long item, const msgpack_object *o, bool bin,
                      uint32_t lo, uint32_t hi, bool exact, msg_bytes_t *out)
{
    msgpack_object_type want = bin ? MSGPACK_OBJECT_BIN : MSGPACK_OBJECT_STR;
    uint32_t len = o->via.str.size; /* str and bin share the layout */
    if (o->type == want && len >= lo && len <= hi) {
        out->ptr = len ? o->via.str.ptr : "";
        out->len = len;
        return QJ_E_OK;
    }
    return s_bytes_fail(d, f, item, o, bin, lo, hi, exact);
}

/* An array of lo..hi items; its items are checked by the caller. */
static msg_err_t s_array(dec_t *d, const field_t *f, const msgpack_object *o, const char *of,
                         uint32_t lo, uint32_t hi)
{
    char got[48], range[48];
    if (o->type == MSGPACK_OBJECT_ARRAY && o->via.array.size >= lo && o->via.array.size <= hi)
        return QJ_E_OK;
    if (o->type != MSGPACK_OBJECT_ARRAY)
        return s_fail(d, QJ_E_BODY, f, -1, "must be an array %s (got %s)", of, msgerr_got(o, got, sizeof got));
    msgerr_range(range, sizeof range, lo, hi, "items");
    return s_fail(d, QJ_E_LIMIT, f, -1, "must be an array %s (got %" PRIu32 " items)", range,
                  o->via.array.size);
}

/* A tuple item: an array of at least n items. */
static msg_err_t s_tuple(dec_t *d, const field_t *f, long item, const msgpack_object *o, uint32_t n,
                         const char *form)
{
    char got[48];
    if (o->type != MSGPACK_OBJECT_ARRAY || o->via.array.size < n)
        return s_fail(d, QJ_E_BODY, f, item, "must be %s (got %s)", form, msgerr_got(o, got, sizeof got));
    return QJ_E_OK;
}

/* An array of n items from the zone; zeroed if zero, for items whose
 * absent fields must read as zero (maps).  Arrays of items the decoder
 * writes in full are not. */
static void *s_alloc(dec_t *d, size_t n, size_t size, bool zero)
{
    if (n == 0) return NULL;
    void *p = msgpack_zone_malloc(d->zone, n * size);
    if (p && zero) memset(p, 0, n * size);
    return p;
}

static msg_err_t s_map(dec_t *d, const msgpack_object *o, cursor_t pp, const shape_t *sh, void *base,
                       msgfast_order_t *ord);

static msg_err_t s_nomem(dec_t *d) { return s_fail(d, QJ_E_INTERNAL, NULL, -1, "out of memory"); }

/* A tuple's items past the n this version reads: skipped (the tuple is
 * open inside open containers). */
static msg_err_t s_tuple_rest(dec_t *d, cursor_t pp, const msgpack_object *o, uint32_t n, uint32_t open)
{
    if (o->via.array.size > n && !s_skip(d, pp, o->via.array.size - n, open)) return s_broken(d);
    return QJ_E_OK;
}

/* Decode a list-typed field (arrays and tuples). */
static msg_err_t s_list(dec_t *d, const field_t *f, const msgpack_object *o, cursor_t pp, char *base)
{
    msg_err_t rc;
    uint32_t n = o->via.array.size;
    msgpack_object v;
    void *items = NULL;
    switch (f->type) {
    case MS_MAPS: {
        if ((rc = s_array(d, f, o, "of maps", f->min, f->max))) return rc;
        if (n && !(items = s_alloc(d, n, f->sub->size, true))) return s_nomem(d);
        dec_t sub = *d;
        sub.at.where = f->sub->name;
        sub.at.in_item = true;
        sub.open = d->open + 2;   /* the array, the item */
        msgfast_order_t ord;   /* one for all the items: they carry the same keys */
        msgfast_order_init(&ord, f->sub);
        for (uint32_t i = 0;; i++) {
            if ((i = msgfast_items(f->sub, d->end, items, i, n, &ord, pp)) == n) break;
            sub.at.idx = i;
            if (!s_read(d, pp, &v)) return s_broken(d);
            if ((rc = s_map(&sub, &v, pp, f->sub, (char *)items + (size_t)i * f->sub->size, &ord))) {
                d->broken = sub.broken;
                return rc;
            }
        }
        break;
    }
    case MS_IDS: {
        if ((rc = s_array(d, f, o, "of unsigned integers", f->min, f->max))) return rc;
        uint64_t *ids = items = s_alloc(d, n, sizeof *ids, false);
        if (n && !ids) return s_nomem(d);
        for (uint32_t i = 0; i < n; i++)
            if ((rc = s_next_uint(d, f, i, pp, UINT64_MAX, &ids[i]))) return rc;
        break;
    }
    case MS_NAMES: {
        if ((rc = s_array(d, f, o, "of strings", f->min, f->max))) return rc;
        msg_bytes_t *names = items = s_alloc(d, n, sizeof *names, false);
        if (n && !names) return s_nomem(d);
        for (uint32_t i = 0; i < n; i++) {
            if (!s_read(d, pp, &v)) return s_broken(d);
            if ((rc = s_bytes(d, f, i, &v, false, 1, QJ_MAX_QUEUE_NAME, false, &names[i]))) return rc;
        }
        break;
    }
    case MS_ACKS: {
        if ((rc = s_array(d, f, o, "of [ref, id] or [ref, 0, code, text]", f->min, f->max))) return rc;
        msg_ack_t *acks = items = s_alloc(d, n, sizeof *acks, false);
        if (n && !acks) return s_nomem(d);
        for (uint32_t i = 0; i < n; i++) {
            const char *form = "[ref, id] or [ref, 0, code, text]";
            msgpack_object t, text;
            /* The fast path: [ref, id] with an id, as our broker sends an ack. */
            const uint8_t *q = *pp;
            uint64_t ref, id;
            if (q + 1 < d->end && q[0] == 0x92 && (q = mpraw_get_uint(q + 1, d->end, UINT64_MAX, &ref)) &&
                q < d->end && (q = mpraw_get_uint(q, d->end, UINT64_MAX, &id)) && id) {
                acks[i] = (msg_ack_t){.ref = ref, .id = id};
                *pp = q;
                continue;
            }
            if (!s_read(d, pp, &t)) return s_broken(d);
            if ((rc = s_tuple(d, f, i, &t, 2, form))) return rc;
            uint32_t tn = t.via.array.size;
            uint64_t code = 0;
            acks[i].text = (msg_bytes_t){NULL, 0};   /* absent unless the tuple has it */
            if ((rc = s_next_uint(d, f, i, pp, UINT64_MAX, &acks[i].ref)) ||
                (rc = s_next_uint(d, f, i, pp, UINT64_MAX, &acks[i].id)) ||
                (tn > 2 && (rc = s_next_uint(d, f, i, pp, UINT16_MAX, &code))))
                return rc;
            if (tn > 3) {
                if (!s_read(d, pp, &text)) return s_broken(d);
                if (text.type != MSGPACK_OBJECT_NIL &&
                    (rc = s_bytes(d, f, i, &text, false, 0, QJ_MAX_ERROR, false, &acks[i].text)))
                    return rc;
            }
            if ((rc = s_tuple_rest(d, pp, &t, 4, d->open + 2))) return rc;
            acks[i].code = (uint16_t)code;
            if (acks[i].id == 0 && code == 0)
                return s_fail(d, QJ_E_BODY, f, i, "has neither an id nor an error code");
        }
        break;
    }
    case MS_OUTCOMES: {
        if ((rc = s_array(d, f, o, "of [id, outcome]", f->min, f->max))) return rc;
        msg_outcome_t *outs = items = s_alloc(d, n, sizeof *outs, false);
        if (n && !outs) return s_nomem(d);
        for (uint32_t i = 0; i < n; i++) {
            uint64_t oc = 0;
            msgpack_object t;
            if (!s_read(d, pp, &t)) return s_broken(d);
            if ((rc = s_tuple(d, f, i, &t, 2, "[id, outcome]")) ||
                (rc = s_next_uint(d, f, i, pp, UINT64_MAX, &outs[i].id)) ||
                (rc = s_next_uint(d, f, i, pp, UINT8_MAX, &oc)) ||
                (rc = s_tuple_rest(d, pp, &t, 2, d->open + 2)))
                return rc;
            outs[i].outcome = (uint8_t)oc;
        }
        break;
    }
    case MS_TIMES: {
        msg_times_t *t = (msg_times_t *)(base + f->off);
        uint64_t *slot[5] = {&t->submitted, &t->queued, &t->dispatched, &t->started, &t->finished};
        if ((rc = s_tuple(d, f, -1, o, 5, "[submitted, queued, dispatched, started, finished]")))
            return rc;
        for (uint32_t i = 0; i < 5; i++)
            if ((rc = s_next_uint(d, f, i, pp, UINT64_MAX, slot[i]))) return rc;
        return s_tuple_rest(d, pp, o, 5, d->open + 1);
    }
    case MS_PROG: {
        msg_result_t *r = (msg_result_t *)base;
        if ((rc = s_tuple(d, f, -1, o, 2, "[done, total, note]")) ||
            (rc = s_next_uint(d, f, 0, pp, UINT64_MAX, &r->prog_done)) ||
            (rc = s_next_uint(d, f, 1, pp, UINT64_MAX, &r->prog_total)))
            return rc;
        if (n > 2) {
            if (!s_read(d, pp, &v)) return s_broken(d);
            if (v.type != MSGPACK_OBJECT_NIL &&
                (rc = s_bytes(d, f, 2, &v, false, 0, QJ_MAX_NOTE, false, &r->prog_note)))
                return rc;
        }
        return s_tuple_rest(d, pp, o, 3, d->open + 1);
    }
    default:
        assert(!"unknown list type");
    }
    *(void **)(base + f->off) = items;
    *(uint32_t *)(base + f->noff) = n;
    return QJ_E_OK;
}

/* bad_by: {error name: count}; names this version does not know are skipped. */
static msg_err_t s_badby(dec_t *d, const field_t *f, const msgpack_object *o, cursor_t pp,
                         msg_stats_t *st)
{
    char got[48];
    if (o->type != MSGPACK_OBJECT_MAP)
        return s_fail(d, QJ_E_BODY, f, -1, "must be a map of error name to count (got %s)",
                      msgerr_got(o, got, sizeof got));
    for (uint32_t i = 0; i < o->via.map.size; i++) {
        msgpack_object k;
        uint64_t count = 0;
        msg_err_t rc;
        if (!s_read(d, pp, &k)) return s_broken(d);
        if (k.type != MSGPACK_OBJECT_STR)
            return s_fail(d, QJ_E_BODY, f, i, "key must be a string (got %s)", msgerr_got(&k, got, sizeof got));
        if ((rc = s_next_uint(d, f, i, pp, UINT64_MAX, &count))) return rc;
        for (size_t c = 1; c < sizeof s_err_names / sizeof s_err_names[0] && c < 16; c++)
            if (strlen(s_err_names[c]) == k.via.str.size &&
                memcmp(s_err_names[c], k.via.str.ptr, k.via.str.size) == 0)
                st->bad_by_code[c] = count;
    }
    return QJ_E_OK;
}

static msg_err_t s_field(dec_t *d, const field_t *f, const msgpack_object *o, cursor_t pp, char *base)
{
    char got[48];
    uint64_t u = 0;
    msg_err_t rc;
    switch (f->type) {
    case MS_UINT:
        if ((rc = s_uint(d, f, -1, o, s_width_max(f->width), &u))) return rc;
        switch (f->width) {
        case 1: *(uint8_t *)(base + f->off) = (uint8_t)u; break;
        case 2: *(uint16_t *)(base + f->off) = (uint16_t)u; break;
        case 4: *(uint32_t *)(base + f->off) = (uint32_t)u; break;
        default: *(uint64_t *)(base + f->off) = u; break;
        }
        return QJ_E_OK;
    case MS_PRI:
        if (o->type == MSGPACK_OBJECT_POSITIVE_INTEGER && o->via.u64 <= 127)
            return *(int32_t *)(base + f->off) = (int32_t)o->via.u64, QJ_E_OK;
        if (o->type == MSGPACK_OBJECT_NEGATIVE_INTEGER && o->via.i64 >= -128)
            return *(int32_t *)(base + f->off) = (int32_t)o->via.i64, QJ_E_OK;
        return s_fail(d,
                      o->type == MSGPACK_OBJECT_POSITIVE_INTEGER || o->type == MSGPACK_OBJECT_NEGATIVE_INTEGER
                          ? QJ_E_LIMIT : QJ_E_BODY,
                      f, -1, "must be an integer from -128 to 127 (got %s)", msgerr_got(o, got, sizeof got));
    case MS_BOOL:
        if (o->type != MSGPACK_OBJECT_BOOLEAN)
            return s_fail(d, QJ_E_BODY, f, -1, "must be a bool (got %s)", msgerr_got(o, got, sizeof got));
        *(bool *)(base + f->off) = o->via.boolean;
        return QJ_E_OK;
    case MS_STR:
    case MS_BIN:
        return s_bytes(d, f, -1, o, f->type == MS_BIN, f->min, f->max, f->flags & MS_EXACT,
                       (msg_bytes_t *)(base + f->off));
    case MS_BADBY:
        return s_badby(d, f, o, pp, (msg_stats_t *)(base + f->off));
    default:
        return s_list(d, f, o, pp, base);
    }
}

/* The field of sh whose key is k[0..len), or -1.  Encoders write the keys
 * in table order (ours do), so the search starts at field *hint (the one
 * after the last found) and wraps around: a map of n keys costs about n
 * compares, not n^2/2, when its absent fields are skipped. */
static inline bool s_key_is(const field_t *f, const char *k, uint32_t len)
{
    if (f->klen != len) return false;
    switch (len) {   /* keys are a few bytes: compares of a known size, no call */
    case 1: return k[0] == f->key[0];
    case 2: return memcmp(k, f->key, 2) == 0;
    case 3: return memcmp(k, f->key, 3) == 0;
    case 4: return memcmp(k, f->key, 4) == 0;
    case 5: return memcmp(k, f->key, 5) == 0;
    case 6: return memcmp(k, f->key, 6) == 0;
    case 7: return memcmp(k, f->key, 7) == 0;
    case 8: return memcmp(k, f->key, 8) == 0;
    default: return memcmp(k, f->key, len) == 0;
    }
}

static inline int s_find(const shape_t *sh, const char *k, uint32_t len, uint32_t hint)
{
    uint32_t n = sh->nfields, j = hint;
    for (uint32_t tried = 0; tried < n; tried++, j++) {
        if (j >= n) j = 0;
        if (s_key_is(&sh->fields[j], k, len)) return (int)j;
    }
    return -1;
}

/* Pair i of map sh at w->p by the generic walk, for what the fast path did
 * not take: any key, any encoding, every check and message. */
static msg_err_t s_pair(dec_t *d, uint32_t i, msgfast_walk_t *w, const shape_t *sh, char *base)
{
    char got[48];
    msgpack_object k, v;
    cursor_t pp = &w->p;
    if (!s_read(d, pp, &k)) return s_broken(d);
    if (k.type != MSGPACK_OBJECT_STR)
        return s_fail(d, QJ_E_BODY, NULL, -1, "map key %" PRIu32 " must be a string (got %s)", i,
                      msgerr_got(&k, got, sizeof got));
    int j = s_find(sh, k.via.str.ptr, k.via.str.size, w->at);
    if (j < 0)   /* a key this version does not know */
        return s_skip(d, pp, 1, d->open) ? QJ_E_OK : s_broken(d);
    if (!s_read(d, pp, &v)) return s_broken(d);
    const field_t *f = &sh->fields[j];
    if (w->seen & (1u << j)) return s_fail(d, QJ_E_BODY, f, -1, "appears twice");
    w->seen |= 1u << j;
    w->at = (uint32_t)j + 1;
    if (v.type == MSGPACK_OBJECT_NIL && !(f->flags & MS_REQ)) return QJ_E_OK;
    return s_field(d, f, &v, pp, base);
}

static msg_err_t s_not_map(dec_t *d, const msgpack_object *o) __attribute__((cold, noinline));
static msg_err_t s_not_map(dec_t *d, const msgpack_object *o)
{
    char got[48];
    return s_fail(d, QJ_E_BODY, NULL, -1, "must be a map (got %s)", msgerr_got(o, got, sizeof got));
}

/* Decode map o (its pairs at *pp) into the struct at base according to sh,
 * expecting its keys in the order ord holds (and learning from them).
 * The pairs go through the fast path (msgfast_pairs) while it takes them;
 * one it does not take, the generic walk reads from its start. */
static msg_err_t s_map(dec_t *d, const msgpack_object *o, cursor_t pp, const shape_t *sh, void *base,
                       msgfast_order_t *ord)
{
    if (o->type != MSGPACK_OBJECT_MAP) return s_not_map(d, o);
    msgfast_walk_t w = {.p = *pp, .left = o->via.map.size};
    msg_err_t rc;
    while (w.left) {
        if (sh->nfields && (msgfast_pairs(sh, d->end, base, ord, &w), !w.left)) break;
        if ((rc = s_pair(d, o->via.map.size - w.left, &w, sh, base))) return rc;
        w.left--;
    }
    *pp = w.p;
    /* The first required field not seen, in table order. */
    uint32_t missing = sh->req & ~w.seen;
    if (missing) return s_fail(d, QJ_E_BODY, &sh->fields[__builtin_ctz(missing)], -1, "is required");
    return QJ_E_OK;
}

msg_err_t msg_decode(msg_reader_t *reader, const void *frame, size_t len, msg_t *out, char *err,
                     size_t errlen)
{
    assert(reader && out && (frame || len == 0));
    const uint8_t *h = frame;
    memset(out, 0, sizeof *out);
    if (err && errlen) err[0] = '\0';
    dec_t d = {.at = {.where = "frame", .err = err, .errlen = errlen}};
    if (len < MSG_HEADER_LEN || h[0] != MSG_MAGIC0 || h[1] != MSG_MAGIC1)
        return s_fail(&d, QJ_E_FRAME, NULL, -1, "not a qjob frame (%zu bytes, needs 'QJ' and a 4-byte header)",
                      len);
    if (h[2] != MSG_VERSION)
        return s_fail(&d, QJ_E_VERSION, NULL, -1, "protocol version %u not supported (this is version %d)",
                      h[2], MSG_VERSION);
    const shape_t *sh = msgschema_body(h[3]);
    if (!sh) return s_fail(&d, QJ_E_COMMAND, NULL, -1, "unknown command 0x%02x", h[3]);
    out->cmd = h[3];
    d.at.where = sh->name;

    const uint8_t *body = h + MSG_HEADER_LEN;
    size_t blen = len - MSG_HEADER_LEN;
    char why[160];
    /* The walk checks the bytes as it reads them (mpraw.h) as mpck would,
     * all but the count of values: a body of up to max_values bytes cannot
     * hold more (each takes a byte), a bigger one is counted by mpck first. */
    bool prechecked = blen > mpck_default_limits.max_values;
    if (prechecked && mpck_check(body, blen, &mpck_default_limits, why, sizeof why) != 0)
        return s_fail(&d, QJ_E_BODY, NULL, -1, "body: %s", why);

    if (!s_zone_recycle(&reader->zone, &reader->zbase, ZONE_FRAME_CHUNK)) return s_nomem(&d);
    d.zone = reader->zone;
    d.end = body + blen;
    d.open = 1;
    msgpack_object root;
    const uint8_t *p = body;
    msg_err_t rc;
    if (!s_read(&d, &p, &root))
        rc = s_broken(&d);
    else if (root.type != MSGPACK_OBJECT_MAP)
        rc = s_fail(&d, QJ_E_BODY, NULL, -1, "body must be a map (got %s)", msgerr_got(&root, why, sizeof why));
    else {
        msgfast_order_t ord;
        msgfast_order_init(&ord, sh);
        rc = s_map(&d, &root, &p, sh, out, &ord);
    }
    if (rc == QJ_E_OK && p != d.end) rc = s_broken(&d);   /* bytes after the body */
    if (rc == QJ_E_OK && out->cmd == MSG_HELLO) rc = msgerr_hello(&d.at, out);
    if (rc != QJ_E_OK) {
        /* A fault in the bytes wins over one in the content, wherever the
         * walk met them: mpck names it as if it had run first. */
        if (!prechecked && mpck_check(body, blen, &mpck_default_limits, why, sizeof why) != 0)
            rc = s_fail(&d, QJ_E_BODY, NULL, -1, "body: %s", why);
        else if (d.broken)
            rc = s_fail(&d, QJ_E_BODY, NULL, -1, "body: not well-formed msgpack");
        uint8_t cmd = out->cmd;
        memset(out, 0, sizeof *out);
        out->cmd = cmd;
    }
    return rc;
}

int msg_value_decode(msg_reader_t *reader, msg_bytes_t bytes, msgpack_object *obj, char *err,
                     size_t errlen)
{
    assert(reader && obj);
    memset(obj, 0, sizeof *obj);
    obj->type = MSGPACK_OBJECT_NIL;
    if (!bytes.ptr) return 0;
    if (mpck_check(bytes.ptr, bytes.len, &mpck_default_limits, err, errlen) != 0) return -1;
    if (!s_zone_recycle(&reader->vzone, &reader->vbase, ZONE_VALUE_CHUNK)) {
        if (err && errlen) snprintf(err, errlen, "out of memory");
        return -1;
    }
    size_t off = 0;
    msgpack_unpack_return ur = msgpack_unpack(bytes.ptr, bytes.len, &off, reader->vzone, obj);
    if (ur != MSGPACK_UNPACK_SUCCESS) {
        if (err && errlen)
            snprintf(err, errlen, "%s", ur == MSGPACK_UNPACK_NOMEM_ERROR ? "out of memory" : "msgpack decoder refused the value");
        obj->type = MSGPACK_OBJECT_NIL;
        return -1;
    }
    return 0;
}

