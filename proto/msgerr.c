/* msgerr.c -- the codec's fault messages (msgerr.h).  Only failures come
 * here, so nothing in this file is on the hot path. */
#include "msgerr.h"

#include <inttypes.h>
#include <stdarg.h>
#include <stdio.h>

msg_err_t msgerr_fail(const msgerr_t *e, msg_err_t code, const msgschema_field_t *f, long item,
                      const char *fmt, ...)
{
    if (!e->err || !e->errlen) return code;
    int n;
    if (e->in_item) n = snprintf(e->err, e->errlen, "%s %" PRIu32 ": ", e->where, e->idx);
    else n = snprintf(e->err, e->errlen, "%s: ", e->where);
    if (f && n >= 0 && (size_t)n < e->errlen)
        n += snprintf(e->err + n, e->errlen - (size_t)n, "key '%s' ", f->key);
    if (item >= 0 && n >= 0 && (size_t)n < e->errlen)
        n += snprintf(e->err + n, e->errlen - (size_t)n, "item %ld ", item);
    if (n >= 0 && (size_t)n < e->errlen) {
        va_list ap;
        va_start(ap, fmt);
        vsnprintf(e->err + n, e->errlen - (size_t)n, fmt, ap);
        va_end(ap);
    }
    return code;
}

void msgerr_range(char *buf, size_t n, uint32_t lo, uint32_t hi, const char *unit)
{
    if (lo == hi) snprintf(buf, n, "of %" PRIu32 " %s", lo, unit);
    else if (lo == 0) snprintf(buf, n, "of at most %" PRIu32 " %s", hi, unit);
    else snprintf(buf, n, "of %" PRIu32 "-%" PRIu32 " %s", lo, hi, unit);
}

const char *msgerr_got(const msgpack_object *o, char *buf, size_t n)
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

msg_err_t msgerr_hello(const msgerr_t *e, const msg_t *m)
{
    if (m->role > MSG_ROLE_WORKER)
        return msgerr_fail(e, QJ_E_BODY, NULL, -1, "key 'role' must be 0 (client) or 1 (worker) (got %u)",
                           (unsigned)m->role);
    if (m->role == MSG_ROLE_CLIENT && !m->cid.ptr)
        return msgerr_fail(e, QJ_E_BODY, NULL, -1, "key 'cid' is required for a client");
    return QJ_E_OK;
}
