/* mpjson.c -- JSON text <-> one msgpack value, through jansson.
 *
 * Mapping, beyond the obvious:
 *  - JSON integers are packed in the smallest msgpack integer; JSON reals
 *    stay float64 even when integral (1.0 is not 1).
 *  - msgpack integers up to INT64_MAX become JSON integers, exactly.  A
 *    uint64 above INT64_MAX has no exact JSON form in jansson (json_int_t
 *    is int64), so it becomes a JSON real (exact up to 2^53, rounded
 *    above).  Likewise JSON text can hold integers only in int64 range:
 *    jansson refuses a larger literal ("too big integer").
 *  - float NaN and infinities, which JSON cannot write, become null.
 *  - str that is not valid UTF-8 keeps its valid parts; each bad byte
 *    becomes U+FFFD (JSON strings are Unicode).
 *  - bin becomes a base64 string (RFC 4648, padded); there is no way back.
 *  - timestamps (ext -1) become RFC 3339 UTC strings
 *    ("2020-09-13T12:26:40.5Z"); other ext values become
 *    {"ext": type, "data": base64}.
 *  - a map key that is not a str is replaced by its compact JSON text
 *    ({1: "a"} gives {"1": "a"}); of duplicate keys, the last one wins.
 */
#include "mpjson.h"

#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <msgpack/timestamp.h>

#include "mpck.h"

static void s_err(char *err, size_t errlen, const char *fmt, ...) __attribute__((format(printf, 3, 4)));

static void s_err(char *err, size_t errlen, const char *fmt, ...)
{
    if (!err || !errlen) return;
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(err, errlen, fmt, ap);
    va_end(ap);
}

/* ---- JSON -> msgpack -------------------------------------------------- */

int mpjson_from_text(const char *json, msgpack_sbuffer *out, char *err, size_t errlen)
{
    json_error_t je;
    json_t *v = json_loads(json, JSON_DECODE_ANY | JSON_ALLOW_NUL, &je);
    if (!v) {
        s_err(err, errlen, "line %d, column %d: %s", je.line, je.column, je.text);
        return -1;
    }
    size_t start = out->size;
    msgpack_packer pk;
    msgpack_packer_init(&pk, out, msgpack_sbuffer_write);
    int rc = mpjson_pack(&pk, v);
    json_decref(v);
    if (rc != 0) {
        out->size = start;
        s_err(err, errlen, "out of memory");
        return -1;
    }
    /* Refuse here, with a message for the user, what every receiver would
     * refuse later (nesting over 32 levels, over 2^20 values). */
    char why[160];
    if (mpck_check(out->data + start, out->size - start, &mpck_default_limits, why, sizeof why) != 0) {
        out->size = start;
        s_err(err, errlen, "value too complex for the wire: %s", why);
        return -1;
    }
    return 0;
}

int mpjson_pack(msgpack_packer *pk, const json_t *cv)
{
    /* jansson's getters take non-const pointers but do not modify. */
    json_t *v = (json_t *)cv;
    switch (json_typeof(v)) {
    case JSON_OBJECT: {
        if (msgpack_pack_map(pk, json_object_size(v)) != 0) return -1;
        for (void *it = json_object_iter(v); it; it = json_object_iter_next(v, it)) {
            size_t klen = json_object_iter_key_len(it);
            if (msgpack_pack_str_with_body(pk, json_object_iter_key(it), klen) != 0 ||
                mpjson_pack(pk, json_object_iter_value(it)) != 0)
                return -1;
        }
        return 0;
    }
    case JSON_ARRAY: {
        size_t n = json_array_size(v);
        if (msgpack_pack_array(pk, n) != 0) return -1;
        for (size_t i = 0; i < n; i++)
            if (mpjson_pack(pk, json_array_get(v, i)) != 0) return -1;
        return 0;
    }
    case JSON_STRING:
        return msgpack_pack_str_with_body(pk, json_string_value(v), json_string_length(v));
    case JSON_INTEGER:
        return msgpack_pack_int64(pk, (int64_t)json_integer_value(v));
    case JSON_REAL:
        return msgpack_pack_double(pk, json_real_value(v));
    case JSON_TRUE:
        return msgpack_pack_true(pk);
    case JSON_FALSE:
        return msgpack_pack_false(pk);
    default:
        return msgpack_pack_nil(pk);
    }
}

/* ---- msgpack -> JSON -------------------------------------------------- */

json_t *mpjson_to_json(const void *mp, size_t len, char *err, size_t errlen)
{
    if (len == 0) return json_null();
    char why[160];
    if (mpck_check(mp, len, &mpck_default_limits, why, sizeof why) != 0) {
        s_err(err, errlen, "not a valid msgpack value: %s", why);
        return NULL;
    }
    msgpack_zone zone;
    if (!msgpack_zone_init(&zone, 2048)) {
        s_err(err, errlen, "out of memory");
        return NULL;
    }
    msgpack_object o;
    size_t off = 0;
    json_t *j = NULL;
    if (msgpack_unpack(mp, len, &off, &zone, &o) == MSGPACK_UNPACK_SUCCESS) {
        j = mpjson_from_object(&o);
        if (!j) s_err(err, errlen, "out of memory");
    } else {
        s_err(err, errlen, "msgpack decoder refused the value");
    }
    msgpack_zone_destroy(&zone);
    return j;
}

/* Length of the valid UTF-8 sequence at p (1-4), or 0 if it is not one.
 * Rejects overlong forms, surrogates and code points above U+10FFFF, as
 * jansson does. */
static size_t s_utf8_len(const unsigned char *p, size_t left)
{
    unsigned char c = p[0];
    size_t n;
    unsigned lo = 0x80, hi = 0xbf;
    if (c < 0x80) return 1;
    if (c >= 0xc2 && c <= 0xdf) n = 2;
    else if (c >= 0xe0 && c <= 0xef) n = 3, lo = c == 0xe0 ? 0xa0 : 0x80, hi = c == 0xed ? 0x9f : 0xbf;
    else if (c >= 0xf0 && c <= 0xf4) n = 4, lo = c == 0xf0 ? 0x90 : 0x80, hi = c == 0xf4 ? 0x8f : 0xbf;
    else return 0;
    if (left < n || p[1] < lo || p[1] > hi) return 0;
    for (size_t i = 2; i < n; i++)
        if ((p[i] & 0xc0) != 0x80) return 0;
    return n;
}

/* A JSON string from bytes that should be UTF-8 (see the top). */
static json_t *s_string(const char *s, size_t len)
{
    json_t *j = json_stringn(s, len);
    if (j) return j;
    /* Invalid UTF-8: every bad byte becomes the 3-byte U+FFFD. */
    char *fixed = malloc(3 * len + 1);
    if (!fixed) return NULL;
    size_t o = 0;
    for (size_t i = 0; i < len;) {
        size_t n = s_utf8_len((const unsigned char *)s + i, len - i);
        if (n) {
            memcpy(fixed + o, s + i, n);
            o += n;
            i += n;
        } else {
            memcpy(fixed + o, "\xef\xbf\xbd", 3);
            o += 3;
            i++;
        }
    }
    j = json_stringn_nocheck(fixed, o);
    free(fixed);
    return j;
}

static json_t *s_base64(const char *data, size_t len)
{
    static const char abc[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    const unsigned char *p = (const unsigned char *)data;
    size_t olen = 4 * ((len + 2) / 3);
    char *out = malloc(olen + 1);
    if (!out) return NULL;
    size_t o = 0, i = 0;
    for (; i + 2 < len; i += 3) {
        uint32_t w = (uint32_t)p[i] << 16 | (uint32_t)p[i + 1] << 8 | p[i + 2];
        out[o++] = abc[w >> 18];
        out[o++] = abc[(w >> 12) & 63];
        out[o++] = abc[(w >> 6) & 63];
        out[o++] = abc[w & 63];
    }
    if (i < len) {
        uint32_t w = (uint32_t)p[i] << 16 | (i + 1 < len ? (uint32_t)p[i + 1] << 8 : 0);
        out[o++] = abc[w >> 18];
        out[o++] = abc[(w >> 12) & 63];
        out[o++] = i + 1 < len ? abc[(w >> 6) & 63] : '=';
        out[o++] = '=';
    }
    json_t *j = json_stringn_nocheck(out, o);
    free(out);
    return j;
}

/* An ext value: a timestamp as RFC 3339 text, anything else as
 * {"ext": type, "data": base64}. */
static json_t *s_ext(const msgpack_object *o)
{
    msgpack_timestamp ts;
    if (msgpack_object_to_timestamp(o, &ts)) {
        time_t t = (time_t)ts.tv_sec;
        struct tm tm;
        char buf[64];
        if (gmtime_r(&t, &tm) && tm.tm_year >= -1900 && tm.tm_year <= 8099) {
            size_t n = (size_t)snprintf(buf, sizeof buf, "%04d-%02d-%02dT%02d:%02d:%02d", tm.tm_year + 1900,
                                        tm.tm_mon + 1, tm.tm_mday, tm.tm_hour, tm.tm_min, tm.tm_sec);
            if (ts.tv_nsec) {
                n += (size_t)snprintf(buf + n, sizeof buf - n, ".%09u", (unsigned)ts.tv_nsec);
                while (buf[n - 1] == '0') n--;
            }
            buf[n++] = 'Z';
            return json_stringn_nocheck(buf, n);
        }
    }
    json_t *j = json_object();
    if (!j || json_object_set_new(j, "ext", json_integer(o->via.ext.type)) != 0 ||
        json_object_set_new(j, "data", s_base64(o->via.ext.ptr, o->via.ext.size)) != 0) {
        json_decref(j);
        return NULL;
    }
    return j;
}

/* A map; a key that is not a str is replaced by its compact JSON text. */
static json_t *s_map(const msgpack_object *o)
{
    json_t *j = json_object();
    if (!j) return NULL;
    for (uint32_t i = 0; i < o->via.map.size; i++) {
        const msgpack_object *k = &o->via.map.ptr[i].key;
        json_t *key = k->type == MSGPACK_OBJECT_STR ? s_string(k->via.str.ptr, k->via.str.size) : NULL;
        if (k->type != MSGPACK_OBJECT_STR) {
            json_t *kj = mpjson_from_object(k);
            char *text = kj ? json_dumps(kj, JSON_ENCODE_ANY | JSON_COMPACT) : NULL;
            json_decref(kj);
            key = text ? json_string_nocheck(text) : NULL;
            free(text);
        }
        json_t *val = key ? mpjson_from_object(&o->via.map.ptr[i].val) : NULL;
        if (!val || json_object_setn_new_nocheck(j, json_string_value(key), json_string_length(key), val) != 0) {
            json_decref(key);
            json_decref(j);
            return NULL;
        }
        json_decref(key);
    }
    return j;
}

json_t *mpjson_from_object(const msgpack_object *o)
{
    switch (o->type) {
    case MSGPACK_OBJECT_NIL:
        return json_null();
    case MSGPACK_OBJECT_BOOLEAN:
        return json_boolean(o->via.boolean);
    case MSGPACK_OBJECT_POSITIVE_INTEGER:
        if (o->via.u64 <= (uint64_t)INT64_MAX) return json_integer((json_int_t)o->via.u64);
        return json_real((double)o->via.u64);
    case MSGPACK_OBJECT_NEGATIVE_INTEGER:
        return json_integer((json_int_t)o->via.i64);
    case MSGPACK_OBJECT_FLOAT32:
    case MSGPACK_OBJECT_FLOAT64:
        return isfinite(o->via.f64) ? json_real(o->via.f64) : json_null();
    case MSGPACK_OBJECT_STR:
        return s_string(o->via.str.ptr, o->via.str.size);
    case MSGPACK_OBJECT_BIN:
        return s_base64(o->via.bin.ptr, o->via.bin.size);
    case MSGPACK_OBJECT_EXT:
        return s_ext(o);
    case MSGPACK_OBJECT_ARRAY: {
        json_t *j = json_array();
        for (uint32_t i = 0; j && i < o->via.array.size; i++) {
            if (json_array_append_new(j, mpjson_from_object(&o->via.array.ptr[i])) != 0) {
                json_decref(j);
                return NULL;
            }
        }
        return j;
    }
    case MSGPACK_OBJECT_MAP:
        return s_map(o);
    default:
        return json_null();
    }
}
