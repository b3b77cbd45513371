/* msg.c -- the qjob wire codec (proto/PROTOCOL.md is the contract).
 *
 * Every map of the wire format is described once, in msgschema.c, as a
 * table of fields (key, type, where it lives in the C struct, limits,
 * required or not).  This file is the engine that walks those tables: the
 * same table drives the decoder and the encoder, so the two cannot drift
 * apart and a key added to a table is added to both directions.
 *
 * Decoding: header check, mpck pre-check (nothing is allocated for a body
 * that does not fit its bytes), msgpack_unpack into the reader's zone,
 * then a walk over the map: each key is matched against the table by
 * length then memcmp, unknown keys are skipped, known ones type-checked
 * and bounded.  str and bin values borrow from the frame; item arrays are
 * carved from the zone, which is recycled (not freed) between messages, so
 * a steady stream of messages costs no malloc.
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
#include "msgschema.h"

/* Short local names for the schema types. */
typedef msgschema_field_t field_t;
typedef msgschema_t shape_t;

/* Zone chunk sizes: a reader starts with one small chunk and, when a
 * message needed more, takes a bigger one for the next (up to the cap),
 * so that repeated big batches are decoded without malloc as well. */
#define ZONE_MIN_CHUNK (64u * 1024)
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

/* Empty the zone for the next message.  If the last message overflowed
 * the first chunk (its free pointer left that chunk), trade the zone for
 * one with bigger chunks; clearing alone would free the extra chunks and
 * the next message of the same size would malloc them again. */
static void s_zone_recycle(msgpack_zone **zp, uintptr_t *base)
{
    msgpack_zone *z = *zp;
    uintptr_t cur = (uintptr_t)z->chunk_list.ptr;
    bool spilled = cur < *base || cur > *base + z->chunk_size;
    if (spilled && z->chunk_size < ZONE_MAX_CHUNK) {
        uintptr_t nbase;
        msgpack_zone *bigger = s_zone_new(z->chunk_size * 4, &nbase);
        if (bigger) {
            msgpack_zone_free(z);
            *zp = bigger;
            *base = nbase;
            return;
        }
    }
    msgpack_zone_clear(z);
    *base = (uintptr_t)z->chunk_list.ptr;
}

msg_reader_t *msg_reader_new(void)
{
    msg_reader_t *self = calloc(1, sizeof *self);
    if (!self) return NULL;
    self->zone = s_zone_new(ZONE_MIN_CHUNK, &self->zbase);
    self->vzone = s_zone_new(ZONE_MIN_CHUNK, &self->vbase);
    if (!self->zone || !self->vzone) msg_reader_destroy(&self);
    return self;
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

typedef struct dec {
    msgpack_zone *zone;
    const char *where;    /* command name, or item name inside an array */
    uint32_t idx;         /* index of the item, when inside an array */
    bool in_item;
    char *err;
    size_t errlen;
} dec_t;

/* Describe what a value is, for "(got ...)". */
static const char *s_got(const msgpack_object *o, char *buf, size_t n)
{
    switch (o->type) {
    case MSGPACK_OBJECT_NIL: return "nil";
    case MSGPACK_OBJECT_BOOLEAN: return "a bool";
    case MSGPACK_OBJECT_POSITIVE_INTEGER: snprintf(buf, n, "%" PRIu64, o->via.u64); return buf;
    case MSGPACK_OBJECT_NEGATIVE_INTEGER: snprintf(buf, n, "%" PRId64, o->via.i64); return buf;
    case MSGPACK_OBJECT_FLOAT32: case MSGPACK_OBJECT_FLOAT64: return "a float";
    case MSGPACK_OBJECT_STR: snprintf(buf, n, "a string of %" PRIu32 " bytes", o->via.str.size); return buf;
    case MSGPACK_OBJECT_BIN: snprintf(buf, n, "a bin of %" PRIu32 " bytes", o->via.bin.size); return buf;
    case MSGPACK_OBJECT_ARRAY: snprintf(buf, n, "an array of %" PRIu32, o->via.array.size); return buf;
    case MSGPACK_OBJECT_MAP: return "a map";
    default: return "an ext";
    }
}

/* Fill the error buffer: "<where>: key '<key>'[ item i] <what>". Returns code. */
static msg_err_t s_fail(dec_t *d, msg_err_t code, const field_t *f, long item, const char *fmt, ...)
    __attribute__((format(printf, 5, 6)));

static msg_err_t s_fail(dec_t *d, msg_err_t code, const field_t *f, long item, const char *fmt, ...)
{
    if (!d->err || !d->errlen) return code;
    int n;
    if (d->in_item) n = snprintf(d->err, d->errlen, "%s %" PRIu32 ": ", d->where, d->idx);
    else n = snprintf(d->err, d->errlen, "%s: ", d->where);
    if (f && n >= 0 && (size_t)n < d->errlen)
        n += snprintf(d->err + n, d->errlen - (size_t)n, "key '%s' ", f->key);
    if (item >= 0 && n >= 0 && (size_t)n < d->errlen)
        n += snprintf(d->err + n, d->errlen - (size_t)n, "item %ld ", item);
    if (n >= 0 && (size_t)n < d->errlen) {
        va_list ap;
        va_start(ap, fmt);
        vsnprintf(d->err + n, d->errlen - (size_t)n, fmt, ap);
        va_end(ap);
    }
    return code;
}

/* Describe a length range: "of 16 bytes", "of at most 128 bytes", "of 1-64 bytes". */
static void s_range(char *buf, size_t n, uint32_t lo, uint32_t hi, const char *unit)
{
    if (lo == hi) snprintf(buf, n, "of %" PRIu32 " %s", lo, unit);
    else if (lo == 0) snprintf(buf, n, "of at most %" PRIu32 " %s", hi, unit);
    else snprintf(buf, n, "of %" PRIu32 "-%" PRIu32 " %s", lo, hi, unit);
}

static uint64_t s_width_max(uint8_t width)
{
    return width >= 8 ? UINT64_MAX : (UINT64_C(1) << (8 * width)) - 1;
}

/* An unsigned integer of at most max, or a body error. */
static msg_err_t s_uint(dec_t *d, const field_t *f, long item, const msgpack_object *o,
                        uint64_t max, uint64_t *out)
{
    char got[48];
    if (o->type != MSGPACK_OBJECT_POSITIVE_INTEGER || o->via.u64 > max)
        return s_fail(d, QJ_E_BODY, f, item, "must be an unsigned integer of at most %" PRIu64 " (got %s)",
                      max, s_got(o, got, sizeof got));
    *out = o->via.u64;
    return QJ_E_OK;
}

/* A str or bin of lo..hi bytes; wrong type is body, wrong size limit. */
static msg_err_t s_bytes(dec_t *d, const field_t *f, long item, const msgpack_object *o, bool bin,
                         uint32_t lo, uint32_t hi, bool exact, msg_bytes_t *out)
{
    msgpack_object_type want = bin ? MSGPACK_OBJECT_BIN : MSGPACK_OBJECT_STR;
    uint32_t len = o->via.str.size; /* str and bin share the layout */
    if (o->type == want && len >= lo && len <= hi) {
        out->ptr = len ? o->via.str.ptr : "";
        out->len = len;
        return QJ_E_OK;
    }
    char got[48], range[48];
    s_range(range, sizeof range, lo, hi, "bytes");
    if (o->type != want)
        return s_fail(d, QJ_E_BODY, f, item, "must be a %s %s (got %s)", bin ? "bin" : "string", range,
                      s_got(o, got, sizeof got));
    return s_fail(d, exact ? QJ_E_BODY : QJ_E_LIMIT, f, item, "must be a %s %s (got %" PRIu32 " bytes)",
                  bin ? "bin" : "string", range, len);
}

/* An array of lo..hi items; its items are checked by the caller. */
static msg_err_t s_array(dec_t *d, const field_t *f, const msgpack_object *o, const char *of,
                         uint32_t lo, uint32_t hi)
{
    char got[48], range[48];
    if (o->type == MSGPACK_OBJECT_ARRAY && o->via.array.size >= lo && o->via.array.size <= hi)
        return QJ_E_OK;
    if (o->type != MSGPACK_OBJECT_ARRAY)
        return s_fail(d, QJ_E_BODY, f, -1, "must be an array %s (got %s)", of, s_got(o, got, sizeof got));
    s_range(range, sizeof range, lo, hi, "items");
    return s_fail(d, QJ_E_LIMIT, f, -1, "must be an array %s (got %" PRIu32 " items)", range,
                  o->via.array.size);
}

/* A tuple item: an array of at least n items. */
static msg_err_t s_tuple(dec_t *d, const field_t *f, long item, const msgpack_object *o, uint32_t n,
                         const char *form)
{
    char got[48];
    if (o->type != MSGPACK_OBJECT_ARRAY || o->via.array.size < n)
        return s_fail(d, QJ_E_BODY, f, item, "must be %s (got %s)", form, s_got(o, got, sizeof got));
    return QJ_E_OK;
}

static void *s_alloc(dec_t *d, size_t n, size_t size)
{
    if (n == 0) return NULL;
    void *p = msgpack_zone_malloc(d->zone, n * size);
    if (p) memset(p, 0, n * size);
    return p;
}

static msg_err_t s_map(dec_t *d, const msgpack_object *o, const shape_t *sh, void *base);

static msg_err_t s_nomem(dec_t *d) { return s_fail(d, QJ_E_INTERNAL, NULL, -1, "out of memory"); }

/* Decode a list-typed field (arrays and tuples). */
static msg_err_t s_list(dec_t *d, const field_t *f, const msgpack_object *o, char *base)
{
    msg_err_t rc;
    const msgpack_object *v = o->via.array.ptr;
    uint32_t n = o->via.array.size;
    void *items = NULL;
    switch (f->type) {
    case MS_MAPS: {
        if ((rc = s_array(d, f, o, "of maps", f->min, f->max))) return rc;
        if (n && !(items = s_alloc(d, n, f->sub->size))) return s_nomem(d);
        dec_t sub = *d;
        sub.where = f->sub->name;
        sub.in_item = true;
        for (uint32_t i = 0; i < n; i++) {
            sub.idx = i;
            if ((rc = s_map(&sub, &v[i], f->sub, (char *)items + (size_t)i * f->sub->size))) return rc;
        }
        break;
    }
    case MS_IDS: {
        if ((rc = s_array(d, f, o, "of unsigned integers", f->min, f->max))) return rc;
        uint64_t *ids = items = s_alloc(d, n, sizeof *ids);
        if (n && !ids) return s_nomem(d);
        for (uint32_t i = 0; i < n; i++)
            if ((rc = s_uint(d, f, i, &v[i], UINT64_MAX, &ids[i]))) return rc;
        break;
    }
    case MS_NAMES: {
        if ((rc = s_array(d, f, o, "of strings", f->min, f->max))) return rc;
        msg_bytes_t *names = items = s_alloc(d, n, sizeof *names);
        if (n && !names) return s_nomem(d);
        for (uint32_t i = 0; i < n; i++)
            if ((rc = s_bytes(d, f, i, &v[i], false, 1, QJ_MAX_QUEUE_NAME, false, &names[i]))) return rc;
        break;
    }
    case MS_ACKS: {
        if ((rc = s_array(d, f, o, "of [ref, id] or [ref, 0, code, text]", f->min, f->max))) return rc;
        msg_ack_t *acks = items = s_alloc(d, n, sizeof *acks);
        if (n && !acks) return s_nomem(d);
        for (uint32_t i = 0; i < n; i++) {
            const char *form = "[ref, id] or [ref, 0, code, text]";
            if ((rc = s_tuple(d, f, i, &v[i], 2, form))) return rc;
            const msgpack_object *t = v[i].via.array.ptr;
            uint32_t tn = v[i].via.array.size;
            uint64_t code = 0;
            if ((rc = s_uint(d, f, i, &t[0], UINT64_MAX, &acks[i].ref)) ||
                (rc = s_uint(d, f, i, &t[1], UINT64_MAX, &acks[i].id)) ||
                (tn > 2 && (rc = s_uint(d, f, i, &t[2], UINT16_MAX, &code))) ||
                (tn > 3 && t[3].type != MSGPACK_OBJECT_NIL &&
                 (rc = s_bytes(d, f, i, &t[3], false, 0, QJ_MAX_ERROR, false, &acks[i].text))))
                return rc;
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
            if ((rc = s_tuple(d, f, i, &v[i], 2, "[id, outcome]")) ||
                (rc = s_uint(d, f, i, &v[i].via.array.ptr[0], UINT64_MAX, &outs[i].id)) ||
                (rc = s_uint(d, f, i, &v[i].via.array.ptr[1], UINT8_MAX, &oc)))
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
            if ((rc = s_uint(d, f, i, &v[i], UINT64_MAX, slot[i]))) return rc;
        return QJ_E_OK;
    }
    case MS_PROG: {
        msg_result_t *r = (msg_result_t *)base;
        if ((rc = s_tuple(d, f, -1, o, 2, "[done, total, note]")) ||
            (rc = s_uint(d, f, 0, &v[0], UINT64_MAX, &r->prog_done)) ||
            (rc = s_uint(d, f, 1, &v[1], UINT64_MAX, &r->prog_total)) ||
            (n > 2 && v[2].type != MSGPACK_OBJECT_NIL &&
             (rc = s_bytes(d, f, 2, &v[2], false, 0, QJ_MAX_NOTE, false, &r->prog_note))))
            return rc;
        return QJ_E_OK;
    }
    default:
        assert(!"unknown list type");
    }
    *(void **)(base + f->off) = items;
    *(uint32_t *)(base + f->noff) = n;
    return QJ_E_OK;
}

/* bad_by: {error name: count}; names this version does not know are skipped. */
static msg_err_t s_badby(dec_t *d, const field_t *f, const msgpack_object *o, msg_stats_t *st)
{
    char got[48];
    if (o->type != MSGPACK_OBJECT_MAP)
        return s_fail(d, QJ_E_BODY, f, -1, "must be a map of error name to count (got %s)",
                      s_got(o, got, sizeof got));
    for (uint32_t i = 0; i < o->via.map.size; i++) {
        const msgpack_object_kv *kv = &o->via.map.ptr[i];
        uint64_t count = 0;
        msg_err_t rc;
        if (kv->key.type != MSGPACK_OBJECT_STR)
            return s_fail(d, QJ_E_BODY, f, i, "key must be a string (got %s)", s_got(&kv->key, got, sizeof got));
        if ((rc = s_uint(d, f, i, &kv->val, UINT64_MAX, &count))) return rc;
        for (size_t c = 1; c < sizeof s_err_names / sizeof s_err_names[0] && c < 16; c++)
            if (strlen(s_err_names[c]) == kv->key.via.str.size &&
                memcmp(s_err_names[c], kv->key.via.str.ptr, kv->key.via.str.size) == 0)
                st->bad_by_code[c] = count;
    }
    return QJ_E_OK;
}

static msg_err_t s_field(dec_t *d, const field_t *f, const msgpack_object *o, char *base)
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
                      f, -1, "must be an integer from -128 to 127 (got %s)", s_got(o, got, sizeof got));
    case MS_BOOL:
        if (o->type != MSGPACK_OBJECT_BOOLEAN)
            return s_fail(d, QJ_E_BODY, f, -1, "must be a bool (got %s)", s_got(o, got, sizeof got));
        *(bool *)(base + f->off) = o->via.boolean;
        return QJ_E_OK;
    case MS_STR:
    case MS_BIN:
        return s_bytes(d, f, -1, o, f->type == MS_BIN, f->min, f->max, f->flags & MS_EXACT,
                       (msg_bytes_t *)(base + f->off));
    case MS_BADBY:
        return s_badby(d, f, o, (msg_stats_t *)(base + f->off));
    default:
        return s_list(d, f, o, base);
    }
}

/* Decode map o into the struct at base according to sh. */
static msg_err_t s_map(dec_t *d, const msgpack_object *o, const shape_t *sh, void *base)
{
    char got[48];
    uint32_t seen = 0;
    msg_err_t rc;
    if (o->type != MSGPACK_OBJECT_MAP)
        return s_fail(d, QJ_E_BODY, NULL, -1, "must be a map (got %s)", s_got(o, got, sizeof got));
    for (uint32_t i = 0; i < o->via.map.size; i++) {
        const msgpack_object *k = &o->via.map.ptr[i].key;
        const msgpack_object *v = &o->via.map.ptr[i].val;
        if (k->type != MSGPACK_OBJECT_STR)
            return s_fail(d, QJ_E_BODY, NULL, -1, "map key %" PRIu32 " must be a string (got %s)", i,
                          s_got(k, got, sizeof got));
        for (uint32_t j = 0; j < sh->nfields; j++) {
            const field_t *f = &sh->fields[j];
            if (f->klen != k->via.str.size || memcmp(f->key, k->via.str.ptr, f->klen) != 0) continue;
            if (seen & (1u << j)) return s_fail(d, QJ_E_BODY, f, -1, "appears twice");
            seen |= 1u << j;
            if (v->type == MSGPACK_OBJECT_NIL && !(f->flags & MS_REQ)) break;
            if ((rc = s_field(d, f, v, base))) return rc;
            break;
        }
    }
    for (uint32_t j = 0; j < sh->nfields; j++)
        if ((sh->fields[j].flags & MS_REQ) && !(seen & (1u << j)))
            return s_fail(d, QJ_E_BODY, &sh->fields[j], -1, "is required");
    return QJ_E_OK;
}

/* Rules across fields that the tables cannot state. */
static msg_err_t s_hello_check(dec_t *d, const msg_t *m)
{
    if (m->role > MSG_ROLE_WORKER)
        return s_fail(d, QJ_E_BODY, NULL, -1, "key 'role' must be 0 (client) or 1 (worker) (got %u)",
                      (unsigned)m->role);
    if (m->role == MSG_ROLE_CLIENT && !m->cid.ptr)
        return s_fail(d, QJ_E_BODY, NULL, -1, "key 'cid' is required for a client");
    return QJ_E_OK;
}

msg_err_t msg_decode(msg_reader_t *reader, const void *frame, size_t len, msg_t *out, char *err,
                     size_t errlen)
{
    assert(reader && out && (frame || len == 0));
    const uint8_t *h = frame;
    memset(out, 0, sizeof *out);
    if (err && errlen) err[0] = '\0';
    dec_t d = {.where = "frame", .err = err, .errlen = errlen};
    if (len < MSG_HEADER_LEN || h[0] != MSG_MAGIC0 || h[1] != MSG_MAGIC1)
        return s_fail(&d, QJ_E_FRAME, NULL, -1, "not a qjob frame (%zu bytes, needs 'QJ' and a 4-byte header)",
                      len);
    if (h[2] != MSG_VERSION)
        return s_fail(&d, QJ_E_VERSION, NULL, -1, "protocol version %u not supported (this is version %d)",
                      h[2], MSG_VERSION);
    const shape_t *sh = msgschema_body(h[3]);
    if (!sh) return s_fail(&d, QJ_E_COMMAND, NULL, -1, "unknown command 0x%02x", h[3]);
    out->cmd = h[3];
    d.where = sh->name;

    const char *body = (const char *)h + MSG_HEADER_LEN;
    size_t blen = len - MSG_HEADER_LEN;
    char why[160];
    if (mpck_check(body, blen, &mpck_default_limits, why, sizeof why) != 0)
        return s_fail(&d, QJ_E_BODY, NULL, -1, "body: %s", why);

    s_zone_recycle(&reader->zone, &reader->zbase);
    d.zone = reader->zone;
    msgpack_object root;
    size_t off = 0;
    msgpack_unpack_return ur = msgpack_unpack(body, blen, &off, reader->zone, &root);
    if (ur == MSGPACK_UNPACK_NOMEM_ERROR) return s_nomem(&d);
    if (ur != MSGPACK_UNPACK_SUCCESS)
        return s_fail(&d, QJ_E_BODY, NULL, -1, "body: msgpack decoder refused it (%d)", (int)ur);
    if (root.type != MSGPACK_OBJECT_MAP)
        return s_fail(&d, QJ_E_BODY, NULL, -1, "body must be a map (got %s)", s_got(&root, why, sizeof why));

    msg_err_t rc = s_map(&d, &root, sh, out);
    if (rc == QJ_E_OK && out->cmd == MSG_HELLO) rc = s_hello_check(&d, out);
    if (rc != QJ_E_OK) {
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
    s_zone_recycle(&reader->vzone, &reader->vbase);
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

/* ---- encoding --------------------------------------------------------- */

typedef struct enc {
    msgpack_packer pk;
    msgpack_sbuffer *buf;
    bool nomem;           /* a write to buf failed: the frame is incomplete */
    dec_t at;             /* reuses the decoder's message prefix: "<where>: key '...'" */
} enc_t;

/* Packer output: append to the caller's buffer and remember a failure, so
 * that a frame with a hole in it is never returned as a success. */
static int s_write(void *data, const char *p, size_t len)
{
    enc_t *e = data;
    if (msgpack_sbuffer_write(e->buf, p, len) != 0) e->nomem = true;
    return 0;
}

static bool s_bytes_set(const msg_bytes_t *b) { return b->ptr != NULL; }

/* Whether an optional field holds something worth sending. */
static bool s_present(const field_t *f, const char *base)
{
    if (f->flags & (MS_REQ | MS_ALL)) return true;
    const void *p = base + f->off;
    switch (f->type) {
    case MS_UINT:
        if (f->flags & MS_DONE) {
            uint8_t state = ((const msg_result_t *)base)->state;
            if (state == MSG_STATE_DONE || state == MSG_STATE_DEAD) return true;
        }
        switch (f->width) {
        case 1: return *(const uint8_t *)p != 0;
        case 2: return *(const uint16_t *)p != 0;
        case 4: return *(const uint32_t *)p != 0;
        default: return *(const uint64_t *)p != 0;
        }
    case MS_PRI: return *(const int32_t *)p != 0;
    case MS_BOOL: return *(const bool *)p;
    case MS_STR: case MS_BIN: return s_bytes_set(p);
    case MS_TIMES: {
        const msg_times_t *t = p;
        return t->submitted || t->queued || t->dispatched || t->started || t->finished;
    }
    case MS_PROG: {
        const msg_result_t *r = (const msg_result_t *)base;
        return r->prog_done || r->prog_total || s_bytes_set(&r->prog_note);
    }
    default: return *(const uint32_t *)(base + f->noff) != 0;
    }
}

static void s_pack_str(msgpack_packer *pk, const char *s, size_t len)
{
    msgpack_pack_str(pk, len);
    if (len) msgpack_pack_str_body(pk, s, len);
}

/* Pack a str/bin after checking its length against lo..hi. */
static int s_enc_bytes(enc_t *e, const field_t *f, long item, const msg_bytes_t *b, bool bin, uint32_t lo,
                       uint32_t hi)
{
    const char *ptr = b->ptr ? b->ptr : f->dflt ? f->dflt : "";
    uint32_t len = b->ptr ? b->len : (uint32_t)strlen(ptr);
    if (len < lo || len > hi) {
        char range[48];
        s_range(range, sizeof range, lo, hi, "bytes");
        s_fail(&e->at, QJ_E_LIMIT, f, item, "must be a %s %s (got %" PRIu32 " bytes)", bin ? "bin" : "string",
               range, len);
        return -1;
    }
    if (bin) {
        msgpack_pack_bin(&e->pk, len);
        if (len) msgpack_pack_bin_body(&e->pk, ptr, len);
    } else {
        s_pack_str(&e->pk, ptr, len);
    }
    return 0;
}

static int s_enc_map(enc_t *e, const shape_t *sh, const char *base);

static int s_enc_list(enc_t *e, const field_t *f, const char *base)
{
    uint32_t n = *(const uint32_t *)(base + f->noff);
    const void *items = *(const void *const *)(base + f->off);
    msgpack_packer *pk = &e->pk;
    if (n < f->min || n > f->max) {
        char range[48];
        s_range(range, sizeof range, f->min, f->max, "items");
        s_fail(&e->at, QJ_E_LIMIT, f, -1, "must be an array %s (got %" PRIu32 " items)", range, n);
        return -1;
    }
    if (n && !items) {
        s_fail(&e->at, QJ_E_BODY, f, -1, "has %" PRIu32 " items but no array", n);
        return -1;
    }
    msgpack_pack_array(pk, n);
    for (uint32_t i = 0; i < n; i++) {
        switch (f->type) {
        case MS_MAPS: {
            enc_t sub = *e;
            sub.at.where = f->sub->name;
            sub.at.in_item = true;
            sub.at.idx = i;
            if (s_enc_map(&sub, f->sub, (const char *)items + (size_t)i * f->sub->size)) return -1;
            break;
        }
        case MS_IDS: msgpack_pack_uint64(pk, ((const uint64_t *)items)[i]); break;
        case MS_NAMES:
            if (s_enc_bytes(e, f, i, &((const msg_bytes_t *)items)[i], false, 1, QJ_MAX_QUEUE_NAME)) return -1;
            break;
        case MS_ACKS: {
            const msg_ack_t *a = &((const msg_ack_t *)items)[i];
            msgpack_pack_array(pk, a->code ? 4 : 2);
            msgpack_pack_uint64(pk, a->ref);
            msgpack_pack_uint64(pk, a->id);
            if (a->code) {
                msgpack_pack_uint16(pk, a->code);
                if (s_enc_bytes(e, f, i, &a->text, false, 0, QJ_MAX_ERROR)) return -1;
            }
            break;
        }
        case MS_OUTCOMES: {
            const msg_outcome_t *oc = &((const msg_outcome_t *)items)[i];
            msgpack_pack_array(pk, 2);
            msgpack_pack_uint64(pk, oc->id);
            msgpack_pack_uint8(pk, oc->outcome);
            break;
        }
        default: assert(!"unknown list type");
        }
    }
    return 0;
}

static int s_enc_field(enc_t *e, const field_t *f, const char *base)
{
    msgpack_packer *pk = &e->pk;
    const void *p = base + f->off;
    switch (f->type) {
    case MS_UINT:
        switch (f->width) {
        case 1: msgpack_pack_uint8(pk, *(const uint8_t *)p); break;
        case 2: msgpack_pack_uint16(pk, *(const uint16_t *)p); break;
        case 4: msgpack_pack_uint32(pk, *(const uint32_t *)p); break;
        default: msgpack_pack_uint64(pk, *(const uint64_t *)p); break;
        }
        return 0;
    case MS_PRI: {
        int32_t pri = *(const int32_t *)p;
        if (pri < -128 || pri > 127) {
            s_fail(&e->at, QJ_E_LIMIT, f, -1, "must be an integer from -128 to 127 (got %" PRId32 ")", pri);
            return -1;
        }
        msgpack_pack_int32(pk, pri);
        return 0;
    }
    case MS_BOOL:
        return *(const bool *)p ? msgpack_pack_true(pk) : msgpack_pack_false(pk), 0;
    case MS_STR:
    case MS_BIN:
        return s_enc_bytes(e, f, -1, p, f->type == MS_BIN, f->min, f->max);
    case MS_TIMES: {
        const msg_times_t *t = p;
        msgpack_pack_array(pk, 5);
        msgpack_pack_uint64(pk, t->submitted);
        msgpack_pack_uint64(pk, t->queued);
        msgpack_pack_uint64(pk, t->dispatched);
        msgpack_pack_uint64(pk, t->started);
        msgpack_pack_uint64(pk, t->finished);
        return 0;
    }
    case MS_PROG: {
        const msg_result_t *r = (const msg_result_t *)base;
        bool note = s_bytes_set(&r->prog_note);
        msgpack_pack_array(pk, note ? 3 : 2);
        msgpack_pack_uint64(pk, r->prog_done);
        msgpack_pack_uint64(pk, r->prog_total);
        return note ? s_enc_bytes(e, f, 2, &r->prog_note, false, 0, QJ_MAX_NOTE) : 0;
    }
    case MS_BADBY: {
        const msg_stats_t *st = p;
        size_t named = sizeof s_err_names / sizeof s_err_names[0], n = 0;
        for (size_t c = 1; c < named && c < 16; c++) n += st->bad_by_code[c] != 0;
        msgpack_pack_map(pk, n);
        for (size_t c = 1; c < named && c < 16; c++) {
            if (!st->bad_by_code[c]) continue;
            s_pack_str(pk, s_err_names[c], strlen(s_err_names[c]));
            msgpack_pack_uint64(pk, st->bad_by_code[c]);
        }
        return 0;
    }
    default:
        return s_enc_list(e, f, base);
    }
}

/* The map header is written before its fields are known to be present,
 * then patched with the count: one pass over the table instead of two.
 * Tables of up to 15 fields use a fixmap (minimal, as in PROTOCOL.md §8);
 * bigger ones a map16. */
static int s_enc_map(enc_t *e, const shape_t *sh, const char *base)
{
    size_t at = e->buf->size;
    uint32_t n = 0;
    if (sh->nfields <= 15) msgpack_pack_map(&e->pk, 0);
    else s_write(e, "\xde\x00\x00", 3);
    for (uint32_t j = 0; j < sh->nfields; j++) {
        const field_t *f = &sh->fields[j];
        if (!s_present(f, base)) continue;
        n++;
        s_pack_str(&e->pk, f->key, f->klen);
        if (s_enc_field(e, f, base)) return -1;
    }
    if (e->nomem) return 0; /* msg_encode reports it */
    if (sh->nfields <= 15) {
        e->buf->data[at] = (char)(0x80 | n);
    } else {
        e->buf->data[at + 1] = (char)(n >> 8);
        e->buf->data[at + 2] = (char)n;
    }
    return 0;
}

int msg_encode(msgpack_sbuffer *buf, const msg_t *m, char *err, size_t errlen)
{
    assert(buf && m);
    enc_t e = {.buf = buf, .at = {.where = "frame", .err = err, .errlen = errlen}};
    const shape_t *sh = msgschema_body(m->cmd);
    buf->size = 0;
    if (err && errlen) err[0] = '\0';
    if (!sh) {
        s_fail(&e.at, QJ_E_COMMAND, NULL, -1, "unknown command 0x%02x", m->cmd);
        return -1;
    }
    e.at.where = sh->name;
    if (m->cmd == MSG_HELLO && s_hello_check(&e.at, m) != QJ_E_OK) return -1;
    const char hdr[MSG_HEADER_LEN] = {MSG_MAGIC0, MSG_MAGIC1, MSG_VERSION, (char)m->cmd};
    s_write(&e, hdr, sizeof hdr);
    msgpack_packer_init(&e.pk, &e, s_write);
    int rc = s_enc_map(&e, sh, (const char *)m);
    if (rc == 0 && e.nomem) {
        s_fail(&e.at, QJ_E_INTERNAL, NULL, -1, "out of memory while encoding");
        rc = -1;
    }
    if (rc != 0) buf->size = 0;
    return rc;
}
