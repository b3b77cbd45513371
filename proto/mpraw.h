/* mpraw.h -- msgpack bytes read and written in place (internal to proto/).
 *
 * The codec's hot path (msg.c): reading a frame without building a
 * msgpack-c object tree, and writing one without a callback per token.
 * Everything here is static inline, because it runs once per value of
 * every message and a call per value would cost as much as the work.
 *
 * Reading checks as it goes what mpck_check checks of the same bytes
 * (every length within the buffer, no 0xc1, timestamps, depth), so that a
 * decoder walking a message once, reading what it needs and skipping the
 * rest with mpraw_skip, refuses what mpck refuses; the count of values
 * (mpck's max_values) it leaves to its caller.  A value is seen through a
 * msgpack_object: scalars, str, bin and ext are filled in full
 * (str/bin/ext point into the bytes); for an array or a map only the count
 * is (ptr is NULL): its items follow the header.
 *
 * Writing produces the minimal encoding of each value, byte for byte what
 * msgpack-c's packer writes, into a msgpack_sbuffer: reserve room first
 * (mpraw_room), then write with the mpraw_put_* functions, which return
 * the position after what they wrote.
 */
#ifndef QJ_MPRAW_H
#define QJ_MPRAW_H

#include <msgpack.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

/* Bytes of the longest header of each kind (type byte + length or value). */
#define MPRAW_UINT_MAX 9    /* uint64 */
#define MPRAW_HDR_MAX 5     /* str32, bin32, array32, map32 */

/* ---- reading ---------------------------------------------------------- */

static inline uint32_t mpraw_be16(const uint8_t *p) { return (uint32_t)p[0] << 8 | p[1]; }

static inline uint32_t mpraw_be32(const uint8_t *p)
{
    return (uint32_t)p[0] << 24 | (uint32_t)p[1] << 16 | (uint32_t)p[2] << 8 | p[3];
}

static inline uint64_t mpraw_be64(const uint8_t *p)
{
    return (uint64_t)mpraw_be32(p) << 32 | mpraw_be32(p + 4);
}

/* A timestamp's data (ext -1): 4 bytes of seconds, 8 bytes of nsec30|sec34,
 * or 12 bytes of nsec32 + sec64.  Returns NULL if valid, else the fault. */
static inline const char *mpraw_timestamp_fault(const uint8_t *d, uint32_t len)
{
    if (len == 4) return NULL;
    if (len == 8) return (mpraw_be32(d) >> 2) > 999999999u ? "timestamp nanoseconds over 999999999" : NULL;
    if (len == 12) return mpraw_be32(d) > 999999999u ? "timestamp nanoseconds over 999999999" : NULL;
    return "timestamp (ext -1) must hold 4, 8 or 12 bytes";
}

/* A str, bin or ext body of n bytes at p (ext: its type byte first), if it
 * ends by end. */
static inline const uint8_t *mpraw_span(msgpack_object *o, msgpack_object_type t,
                                        const uint8_t *p, uint32_t n, const uint8_t *end)
{
    o->type = t;
    if (t == MSGPACK_OBJECT_EXT) {
        if ((size_t)(end - p) < 1 || n > (size_t)(end - p) - 1) return NULL;
        o->via.ext.type = (int8_t)p[0];
        o->via.ext.size = n;
        o->via.ext.ptr = (const char *)p + 1;
        if (o->via.ext.type == -1 && mpraw_timestamp_fault(p + 1, n)) return NULL;
        return p + 1 + n;
    }
    if (n > (size_t)(end - p)) return NULL;
    o->via.str.size = n;   /* str and bin share the layout */
    o->via.str.ptr = (const char *)p;
    return p + n;
}

/* An array or map of n items (pairs for a map) whose first item is at p:
 * each item takes a byte at least, so more than are left is a lie. */
static inline const uint8_t *mpraw_count(msgpack_object *o, msgpack_object_type t, uint32_t n,
                                         const uint8_t *p, const uint8_t *end)
{
    uint64_t items = t == MSGPACK_OBJECT_MAP ? 2 * (uint64_t)n : n;
    if (items > (size_t)(end - p)) return NULL;
    o->type = t;
    o->via.array.size = n;   /* array and map share the layout */
    o->via.array.ptr = NULL;
    return p;
}

static inline const uint8_t *mpraw_int(msgpack_object *o, int64_t v, const uint8_t *next)
{
    /* As msgpack-c: a signed encoding of a value >= 0 is a positive integer. */
    o->type = v < 0 ? MSGPACK_OBJECT_NEGATIVE_INTEGER : MSGPACK_OBJECT_POSITIVE_INTEGER;
    o->via.i64 = v;
    return next;
}

static inline const uint8_t *mpraw_uint(msgpack_object *o, uint64_t v, const uint8_t *next)
{
    o->type = MSGPACK_OBJECT_POSITIVE_INTEGER;
    o->via.u64 = v;
    return next;
}

/* mpraw_head for the type bytes it does not inline (p is past the type
 * byte b, and there are left bytes from p). */
static __attribute__((noinline, unused)) const uint8_t *
mpraw_head_rest(uint8_t b, const uint8_t *p, const uint8_t *end, msgpack_object *o)
{
    size_t left = (size_t)(end - p);
    if (b >= 0xe0)
        return mpraw_int(o, (int8_t)b, p);
    /* Bytes of the length or value field that follow the type byte. */
    static const uint8_t extra[32] = {
        0, 0, 0, 0, 1, 2, 4, 1, 2, 4, 4, 8, 1, 2, 4, 8,   /* 0xc0-0xcf */
        1, 2, 4, 8, 1, 1, 1, 1, 1, 1, 2, 4, 2, 4, 2, 4,   /* 0xd0-0xdf */
    };
    uint8_t x = extra[b - 0xc0];
    if (b >= 0xd4 && b <= 0xd8)
        x = 0;   /* fixext: the size is in the type byte */
    if (left < x)
        return NULL;
    switch (b) {
    case 0xc0: o->type = MSGPACK_OBJECT_NIL; return p;
    case 0xc2: case 0xc3: o->type = MSGPACK_OBJECT_BOOLEAN; o->via.boolean = b == 0xc3; return p;
    case 0xc4: return mpraw_span(o, MSGPACK_OBJECT_BIN, p + 1, p[0], end);
    case 0xc5: return mpraw_span(o, MSGPACK_OBJECT_BIN, p + 2, mpraw_be16(p), end);
    case 0xc6: return mpraw_span(o, MSGPACK_OBJECT_BIN, p + 4, mpraw_be32(p), end);
    case 0xc7: return mpraw_span(o, MSGPACK_OBJECT_EXT, p + 1, p[0], end);
    case 0xc8: return mpraw_span(o, MSGPACK_OBJECT_EXT, p + 2, mpraw_be16(p), end);
    case 0xc9: return mpraw_span(o, MSGPACK_OBJECT_EXT, p + 4, mpraw_be32(p), end);
    case 0xca: {
        uint32_t bits = mpraw_be32(p);
        float f;
        memcpy(&f, &bits, sizeof f);
        o->type = MSGPACK_OBJECT_FLOAT32;
        o->via.f64 = f;
        return p + 4;
    }
    case 0xcb: {
        uint64_t bits = mpraw_be64(p);
        memcpy(&o->via.f64, &bits, sizeof bits);
        o->type = MSGPACK_OBJECT_FLOAT64;
        return p + 8;
    }
    case 0xcc: return mpraw_uint(o, p[0], p + 1);
    case 0xcd: return mpraw_uint(o, mpraw_be16(p), p + 2);
    case 0xce: return mpraw_uint(o, mpraw_be32(p), p + 4);
    case 0xcf: return mpraw_uint(o, mpraw_be64(p), p + 8);
    case 0xd0: return mpraw_int(o, (int8_t)p[0], p + 1);
    case 0xd1: return mpraw_int(o, (int16_t)mpraw_be16(p), p + 2);
    case 0xd2: return mpraw_int(o, (int32_t)mpraw_be32(p), p + 4);
    case 0xd3: return mpraw_int(o, (int64_t)mpraw_be64(p), p + 8);
    case 0xd4: return mpraw_span(o, MSGPACK_OBJECT_EXT, p, 1, end);
    case 0xd5: return mpraw_span(o, MSGPACK_OBJECT_EXT, p, 2, end);
    case 0xd6: return mpraw_span(o, MSGPACK_OBJECT_EXT, p, 4, end);
    case 0xd7: return mpraw_span(o, MSGPACK_OBJECT_EXT, p, 8, end);
    case 0xd8: return mpraw_span(o, MSGPACK_OBJECT_EXT, p, 16, end);
    case 0xd9: return mpraw_span(o, MSGPACK_OBJECT_STR, p + 1, p[0], end);
    case 0xda: return mpraw_span(o, MSGPACK_OBJECT_STR, p + 2, mpraw_be16(p), end);
    case 0xdb: return mpraw_span(o, MSGPACK_OBJECT_STR, p + 4, mpraw_be32(p), end);
    case 0xdc: return mpraw_count(o, MSGPACK_OBJECT_ARRAY, mpraw_be16(p), p + 2, end);
    case 0xdd: return mpraw_count(o, MSGPACK_OBJECT_ARRAY, mpraw_be32(p), p + 4, end);
    case 0xde: return mpraw_count(o, MSGPACK_OBJECT_MAP, mpraw_be16(p), p + 2, end);
    case 0xdf: return mpraw_count(o, MSGPACK_OBJECT_MAP, mpraw_be32(p), p + 4, end);
    default: return NULL;   /* 0xc1 is not msgpack */
    }
}

/* Read the value (scalar) or the header (array, map) at p, in bytes that
 * end at end, into *o.  Returns the position after it: after a scalar,
 * str, bin or ext, the next value; after an array or map header, its first
 * item.  Returns NULL if the bytes are not that: past end, 0xc1, a length
 * running past end, an array or map claiming more items than bytes are
 * left, a timestamp (ext -1) that is not one.  The types of the hot path
 * (small ints, short strings, maps and arrays of up to 15, uints, bin8)
 * are read inline. */
static inline __attribute__((always_inline)) const uint8_t *
mpraw_head(const uint8_t *p, const uint8_t *end, msgpack_object *o)
{
    if (p >= end)
        return NULL;
    uint8_t b = *p++;
    size_t left = (size_t)(end - p);
    if (b <= 0x7f)
        return mpraw_uint(o, b, p);
    if (b >= 0xa0 && b <= 0xbf)
        return mpraw_span(o, MSGPACK_OBJECT_STR, p, b & 0x1fu, end);
    if (b <= 0x8f)
        return mpraw_count(o, MSGPACK_OBJECT_MAP, b & 0x0fu, p, end);
    if (b <= 0x9f)
        return mpraw_count(o, MSGPACK_OBJECT_ARRAY, b & 0x0fu, p, end);
    switch (b) {
    case 0xc4: return left >= 1 ? mpraw_span(o, MSGPACK_OBJECT_BIN, p + 1, p[0], end) : NULL;
    case 0xcc: return left >= 1 ? mpraw_uint(o, p[0], p + 1) : NULL;
    case 0xcd: return left >= 2 ? mpraw_uint(o, mpraw_be16(p), p + 2) : NULL;
    case 0xce: return left >= 4 ? mpraw_uint(o, mpraw_be32(p), p + 4) : NULL;
    case 0xcf: return left >= 8 ? mpraw_uint(o, mpraw_be64(p), p + 8) : NULL;
    default: return mpraw_head_rest(b, p, end, o);
    }
}

/* An unsigned integer at p (p < end) of at most max (max >= 127: a fixint
 * is always taken), in the encodings a packer writes one in, into *u.
 * Returns the position after it, or NULL for anything else (another type,
 * a value over max, a length past end), having written nothing. */
static inline __attribute__((always_inline)) const uint8_t *
mpraw_get_uint(const uint8_t *p, const uint8_t *end, uint64_t max, uint64_t *u)
{
    size_t left = (size_t)(end - p);
    uint8_t b = p[0];
    uint64_t v;
    if (b <= 0x7f) {
        *u = b;
        return p + 1;
    }
    switch (b) {
    case 0xcc: if (left < 2) return NULL; v = p[1]; p += 2; break;
    case 0xcd: if (left < 3) return NULL; v = mpraw_be16(p + 1); p += 3; break;
    case 0xce: if (left < 5) return NULL; v = mpraw_be32(p + 1); p += 5; break;
    case 0xcf: if (left < 9) return NULL; v = mpraw_be64(p + 1); p += 9; break;
    default: return NULL;
    }
    if (v > max)
        return NULL;
    *u = v;
    return p;
}

/* Skip one whole value at p (containers with everything inside), checking
 * it as mpck_check would: NULL if mpraw_head refuses any of it, or if it
 * opens containers deeper than max_depth, counting the open ones it sits
 * in.  Returns the position after it. */
static __attribute__((noinline, unused)) const uint8_t *
mpraw_skip(const uint8_t *p, const uint8_t *end, uint32_t open, uint32_t max_depth)
{
    uint64_t outer[64];   /* values still expected by the containers around */
    uint32_t sp = 0;
    uint64_t here = 1;    /* values still expected at this level */
    for (;;) {
        msgpack_object o;
        if (!(p = mpraw_head(p, end, &o)))
            return NULL;
        here--;
        uint64_t items = o.type == MSGPACK_OBJECT_ARRAY ? o.via.array.size
                         : o.type == MSGPACK_OBJECT_MAP ? 2 * (uint64_t)o.via.map.size : 0;
        if (o.type == MSGPACK_OBJECT_ARRAY || o.type == MSGPACK_OBJECT_MAP) {
            if (open + sp + 1 > max_depth || sp == sizeof outer / sizeof outer[0])
                return NULL;
            if (items) {
                outer[sp++] = here;
                here = items;
                continue;
            }
        }
        while (here == 0) {
            if (sp == 0)
                return p;
            here = outer[--sp];
        }
    }
}

/* ---- writing ---------------------------------------------------------- */

/* Make room for n more bytes at the end of b.  Returns where to write
 * them, or NULL if memory ran out (b is unchanged). */
static inline uint8_t *mpraw_room(msgpack_sbuffer *b, size_t n)
{
    if (b->alloc - b->size < n) {
        size_t cap = b->alloc ? b->alloc : 8192;
        while (cap - b->size < n)
            cap *= 2;
        char *d = realloc(b->data, cap);
        if (!d)
            return NULL;
        b->data = d;
        b->alloc = cap;
    }
    return (uint8_t *)b->data + b->size;
}

/* Everything up to w (from mpraw_room) is now part of b. */
static inline void mpraw_commit(msgpack_sbuffer *b, const uint8_t *w)
{
    b->size = (size_t)((const char *)w - b->data);
}

static inline uint8_t *mpraw_put_be16(uint8_t *w, uint32_t v)
{
    w[0] = (uint8_t)(v >> 8);
    w[1] = (uint8_t)v;
    return w + 2;
}

static inline uint8_t *mpraw_put_be32(uint8_t *w, uint32_t v)
{
    w[0] = (uint8_t)(v >> 24);
    w[1] = (uint8_t)(v >> 16);
    w[2] = (uint8_t)(v >> 8);
    w[3] = (uint8_t)v;
    return w + 4;
}

static inline uint8_t *mpraw_put_uint(uint8_t *w, uint64_t v)
{
    if (v < 0x80) {
        *w++ = (uint8_t)v;
    } else if (v <= UINT8_MAX) {
        *w++ = 0xcc;
        *w++ = (uint8_t)v;
    } else if (v <= UINT16_MAX) {
        *w++ = 0xcd;
        w = mpraw_put_be16(w, (uint32_t)v);
    } else if (v <= UINT32_MAX) {
        *w++ = 0xce;
        w = mpraw_put_be32(w, (uint32_t)v);
    } else {
        *w++ = 0xcf;
        w = mpraw_put_be32(w, (uint32_t)(v >> 32));
        w = mpraw_put_be32(w, (uint32_t)v);
    }
    return w;
}

/* A signed integer of 32 bits, as msgpack_pack_int32 writes it. */
static inline uint8_t *mpraw_put_int(uint8_t *w, int32_t v)
{
    if (v >= -32)
        return v < 0 ? (*w++ = (uint8_t)(int8_t)v, w) : mpraw_put_uint(w, (uint64_t)v);
    if (v >= INT8_MIN) {
        *w++ = 0xd0;
        *w++ = (uint8_t)(int8_t)v;
    } else if (v >= INT16_MIN) {
        *w++ = 0xd1;
        w = mpraw_put_be16(w, (uint32_t)(uint16_t)(int16_t)v);
    } else {
        *w++ = 0xd2;
        w = mpraw_put_be32(w, (uint32_t)v);
    }
    return w;
}

/* A header with a count: fix form (fix | n) below fixmax, else 16 or 32 bits. */
static inline uint8_t *mpraw_put_head(uint8_t *w, uint32_t n, uint8_t fix, uint32_t fixmax,
                                      uint8_t b8, uint8_t b16, uint8_t b32)
{
    if (n < fixmax) {
        *w++ = (uint8_t)(fix | n);
    } else if (b8 && n <= UINT8_MAX) {
        *w++ = b8;
        *w++ = (uint8_t)n;
    } else if (n <= UINT16_MAX) {
        *w++ = b16;
        w = mpraw_put_be16(w, n);
    } else {
        *w++ = b32;
        w = mpraw_put_be32(w, n);
    }
    return w;
}

/* Largest n mpraw_copy_short copies. */
#define MPRAW_COPY_SHORT_MAX 48

/* Copy n <= MPRAW_COPY_SHORT_MAX bytes from s to w, as memcpy, but inline:
 * two copies of a known size, overlapping in the middle (three above 32
 * bytes), so that a short string costs no call.  Returns w + n. */
static inline uint8_t *mpraw_copy_short(uint8_t *w, const void *s, uint32_t n)
{
    const uint8_t *src = s;
    if (n >= 16) {
        if (n > 32)
            memcpy(w + 16, src + 16, 16);
        memcpy(w, src, 16);
        memcpy(w + n - 16, src + n - 16, 16);
    } else if (n >= 8) {
        memcpy(w, src, 8);
        memcpy(w + n - 8, src + n - 8, 8);
    } else if (n >= 4) {
        memcpy(w, src, 4);
        memcpy(w + n - 4, src + n - 4, 4);
    } else if (n) {
        w[0] = src[0];
        w[n / 2] = src[n / 2];
        w[n - 1] = src[n - 1];
    }
    return w + n;
}

static inline uint8_t *mpraw_put_str(uint8_t *w, const void *s, uint32_t len)
{
    w = mpraw_put_head(w, len, 0xa0, 32, 0xd9, 0xda, 0xdb);
    if (len)
        memcpy(w, s, len);
    return w + len;
}

static inline uint8_t *mpraw_put_bin(uint8_t *w, const void *s, uint32_t len)
{
    w = mpraw_put_head(w, len, 0, 0, 0xc4, 0xc5, 0xc6);
    if (len)
        memcpy(w, s, len);
    return w + len;
}

static inline uint8_t *mpraw_put_array(uint8_t *w, uint32_t n)
{
    return mpraw_put_head(w, n, 0x90, 16, 0, 0xdc, 0xdd);
}

static inline uint8_t *mpraw_put_map(uint8_t *w, uint32_t n)
{
    return mpraw_put_head(w, n, 0x80, 16, 0, 0xde, 0xdf);
}

#endif
