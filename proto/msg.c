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
 * Most pairs never get that far: a fast path (s_find_raw, s_fast_value)
 * matches a fixstr key as one 64-bit word and reads the common encodings
 * of scalars, short str/bin and the t tuple straight into the struct;
 * anything else, or anything wrong, is read again by the generic walk,
 * which alone accepts the rest and writes every error message.
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

static void *s_alloc(dec_t *d, size_t n, size_t size)
{
    if (n == 0) return NULL;
    void *p = msgpack_zone_malloc(d->zone, n * size);
    if (p) memset(p, 0, n * size);
    return p;
}

static msg_err_t s_map(dec_t *d, const msgpack_object *o, cursor_t pp, const shape_t *sh, void *base);

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
        if (n && !(items = s_alloc(d, n, f->sub->size))) return s_nomem(d);
        dec_t sub = *d;
        sub.at.where = f->sub->name;
        sub.at.in_item = true;
        sub.open = d->open + 2;   /* the array, the item */
        for (uint32_t i = 0; i < n; i++) {
            sub.at.idx = i;
            if (!s_read(d, pp, &v)) return s_broken(d);
            if ((rc = s_map(&sub, &v, pp, f->sub, (char *)items + (size_t)i * f->sub->size))) {
                d->broken = sub.broken;
                return rc;
            }
        }
        break;
    }
    case MS_IDS: {
        if ((rc = s_array(d, f, o, "of unsigned integers", f->min, f->max))) return rc;
        uint64_t *ids = items = s_alloc(d, n, sizeof *ids);
        if (n && !ids) return s_nomem(d);
        for (uint32_t i = 0; i < n; i++)
            if ((rc = s_next_uint(d, f, i, pp, UINT64_MAX, &ids[i]))) return rc;
        break;
    }
    case MS_NAMES: {
        if ((rc = s_array(d, f, o, "of strings", f->min, f->max))) return rc;
        msg_bytes_t *names = items = s_alloc(d, n, sizeof *names);
        if (n && !names) return s_nomem(d);
        for (uint32_t i = 0; i < n; i++) {
            if (!s_read(d, pp, &v)) return s_broken(d);
            if ((rc = s_bytes(d, f, i, &v, false, 1, QJ_MAX_QUEUE_NAME, false, &names[i]))) return rc;
        }
        break;
    }
    case MS_ACKS: {
        if ((rc = s_array(d, f, o, "of [ref, id] or [ref, 0, code, text]", f->min, f->max))) return rc;
        msg_ack_t *acks = items = s_alloc(d, n, sizeof *acks);
        if (n && !acks) return s_nomem(d);
        for (uint32_t i = 0; i < n; i++) {
            const char *form = "[ref, id] or [ref, 0, code, text]";
            msgpack_object t, text;
            if (!s_read(d, pp, &t)) return s_broken(d);
            if ((rc = s_tuple(d, f, i, &t, 2, form))) return rc;
            uint32_t tn = t.via.array.size;
            uint64_t code = 0;
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
        msg_outcome_t *outs = items = s_alloc(d, n, sizeof *outs);
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
 * in table order (ours do), so the search starts after the last field
 * found and wraps around: a map of n keys costs about n compares, not
 * n^2/2, when its absent fields are skipped. */
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

static inline int s_find(const shape_t *sh, const char *k, uint32_t len, uint32_t *hint)
{
    uint32_t n = sh->nfields, j = *hint;
    for (uint32_t tried = 0; tried < n; tried++, j++) {
        if (j >= n) j = 0;
        if (s_key_is(&sh->fields[j], k, len)) {
            *hint = j + 1;
            return (int)j;
        }
    }
    return -1;
}

/* ---- the fast path: the common encodings read straight from the bytes.
 * Each function below either takes a value whole and returns the position
 * after it, or returns NULL having consumed nothing, and the generic walk
 * (s_read, s_field) reads the same bytes again and says what is wrong.
 * So it only ever accepts what the generic walk accepts, and every error
 * message comes from one place. */

/* Field f's key as the fixstr at p (its header and up to 7 bytes of the
 * key compared as one 64-bit word), if the body holds 8 bytes from p. */
HOT bool s_key_raw(const field_t *f, const uint8_t *p, const uint8_t *end)
{
    uint64_t w;
    memcpy(&w, p, 8);
#if __BYTE_ORDER__ == __ORDER_BIG_ENDIAN__
    w = __builtin_bswap64(w);   /* kword is little-endian */
#endif
    if ((w & f->kmask) != f->kword) return false;
    uint32_t klen = f->klen;
    return klen <= 7 || (klen + 1 <= (size_t)(end - p) && memcmp(p + 8, f->kraw + 7, klen - 7) == 0);
}

/* The field of sh whose key is the fixstr at p, searched as s_find does;
 * -1 if none is, or if the key is not a fixstr with 8 bytes left from it. */
HOT int s_find_raw(const shape_t *sh, const uint8_t *p, const uint8_t *end, uint32_t *hint)
{
    if (end - p < 8 || (p[0] & 0xe0) != 0xa0) return -1;
    uint32_t n = sh->nfields, j = *hint;
    for (uint32_t tried = 0; tried < n; tried++, j++) {
        if (j >= n) j = 0;
        if (s_key_raw(&sh->fields[j], p, end)) {
            *hint = j + 1;
            return (int)j;
        }
    }
    return -1;
}

/* An unsigned integer of at most max at p, into *u. */
HOT const uint8_t *s_fast_uint(const uint8_t *p, const uint8_t *end, uint64_t max, uint64_t *u)
{
    size_t left = (size_t)(end - p);
    uint8_t b = p[0];
    const uint8_t *next;
    if (b <= 0x7f) *u = b, next = p + 1;
    else if (b == 0xcc && left >= 2) *u = p[1], next = p + 2;
    else if (b == 0xcd && left >= 3) *u = mpraw_be16(p + 1), next = p + 3;
    else if (b == 0xce && left >= 5) *u = mpraw_be32(p + 1), next = p + 5;
    else if (b == 0xcf && left >= 9) *u = mpraw_be64(p + 1), next = p + 9;
    else return NULL;
    return *u <= max ? next : NULL;
}

/* The value of field f at p (p < end), read into the struct at base if it
 * is a scalar, str, bin or t tuple in one of its common encodings and
 * within f's limits. */
HOT const uint8_t *s_fast_value(const field_t *f, const uint8_t *p, const uint8_t *end, char *base)
{
    uint8_t b = p[0];
    uint64_t u;
    switch (f->type) {
    case MS_UINT:
        if (!(p = s_fast_uint(p, end, s_width_max(f->width), &u))) return NULL;
        switch (f->width) {
        case 1: *(uint8_t *)(base + f->off) = (uint8_t)u; break;
        case 2: *(uint16_t *)(base + f->off) = (uint16_t)u; break;
        case 4: *(uint32_t *)(base + f->off) = (uint32_t)u; break;
        default: *(uint64_t *)(base + f->off) = u; break;
        }
        return p;
    case MS_STR:
    case MS_BIN: {
        uint32_t len;
        const uint8_t *s;
        if (f->type == MS_STR && b >= 0xa0 && b <= 0xbf) len = b & 0x1fu, s = p + 1;
        else if (b == (f->type == MS_STR ? 0xd9 : 0xc4) && end - p >= 2) len = p[1], s = p + 2;
        else return NULL;
        if (len > (size_t)(end - s) || len < f->min || len > f->max) return NULL;
        msg_bytes_t *out = (msg_bytes_t *)(base + f->off);
        out->ptr = len ? (const char *)s : "";
        out->len = len;
        return s + len;
    }
    case MS_BOOL:
        if (b != 0xc2 && b != 0xc3) return NULL;
        *(bool *)(base + f->off) = b == 0xc3;
        return p + 1;
    case MS_PRI:   /* a fixint: -32..127, within -128..127 */
        if (b <= 0x7f) *(int32_t *)(base + f->off) = b;
        else if (b >= 0xe0) *(int32_t *)(base + f->off) = (int8_t)b;
        else return NULL;
        return p + 1;
    case MS_TIMES: {
        msg_times_t *t = (msg_times_t *)(base + f->off);
        if (b != 0x95) return NULL;   /* exactly the 5 items: nothing to skip */
        p++;
        if (p >= end || !(p = s_fast_uint(p, end, UINT64_MAX, &t->submitted))) return NULL;
        if (p >= end || !(p = s_fast_uint(p, end, UINT64_MAX, &t->queued))) return NULL;
        if (p >= end || !(p = s_fast_uint(p, end, UINT64_MAX, &t->dispatched))) return NULL;
        if (p >= end || !(p = s_fast_uint(p, end, UINT64_MAX, &t->started))) return NULL;
        if (p >= end || !(p = s_fast_uint(p, end, UINT64_MAX, &t->finished))) return NULL;
        return p;
    }
    default:
        return NULL;
    }
}

/* Decode map o (its pairs at *pp) into the struct at base according to sh.
 * Each pair goes through the fast path above when it can; when it cannot
 * (or fails there), the generic walk reads it from its start. */
static msg_err_t s_map(dec_t *d, const msgpack_object *o, cursor_t pp, const shape_t *sh, void *base)
{
    char got[48];
    uint32_t seen = 0, hint = 0;
    msg_err_t rc;
    if (o->type != MSGPACK_OBJECT_MAP)
        return s_fail(d, QJ_E_BODY, NULL, -1, "must be a map (got %s)", msgerr_got(o, got, sizeof got));
    for (uint32_t i = 0; i < o->via.map.size; i++) {
        uint32_t raw_hint = hint;
        int j = s_find_raw(sh, *pp, d->end, &raw_hint);
        if (j >= 0 && !(seen & (1u << j))) {
            const field_t *f = &sh->fields[j];
            const uint8_t *v = *pp + 1 + f->klen;
            const uint8_t *next = v < d->end ? s_fast_value(f, v, d->end, base) : NULL;
            if (next) {
                seen |= 1u << j;
                hint = raw_hint;
                *pp = next;
                continue;
            }
        }
        msgpack_object k, v;
        if (!s_read(d, pp, &k)) return s_broken(d);
        if (k.type != MSGPACK_OBJECT_STR)
            return s_fail(d, QJ_E_BODY, NULL, -1, "map key %" PRIu32 " must be a string (got %s)", i,
                          msgerr_got(&k, got, sizeof got));
        j = s_find(sh, k.via.str.ptr, k.via.str.size, &hint);
        if (j < 0) {   /* a key this version does not know */
            if (!s_skip(d, pp, 1, d->open)) return s_broken(d);
            continue;
        }
        if (!s_read(d, pp, &v)) return s_broken(d);
        const field_t *f = &sh->fields[j];
        if (seen & (1u << j)) return s_fail(d, QJ_E_BODY, f, -1, "appears twice");
        seen |= 1u << j;
        if (v.type == MSGPACK_OBJECT_NIL && !(f->flags & MS_REQ)) continue;
        if ((rc = s_field(d, f, &v, pp, base))) return rc;
    }
    /* Only the fields not seen can be missing: look at those alone. */
    uint32_t unseen = ~seen & (sh->nfields >= 32 ? UINT32_MAX : (1u << sh->nfields) - 1);
    for (; unseen; unseen &= unseen - 1) {
        uint32_t j = (uint32_t)__builtin_ctz(unseen);
        if (sh->fields[j].flags & MS_REQ) return s_fail(d, QJ_E_BODY, &sh->fields[j], -1, "is required");
    }
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
    else
        rc = s_map(&d, &root, &p, sh, out);
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

