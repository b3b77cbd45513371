/* mpck.c -- non-allocating pre-check of untrusted msgpack bytes.
 *
 * One pass over the bytes, iterative: a small stack holds how many values
 * each open container still expects.  Besides the structure, it keeps
 * `need`, the number of values declared but not yet read anywhere in the
 * tree.  Every value costs at least one byte, so need <= bytes left is the
 * bound that makes a later msgpack_unpack safe: the decoder can never be
 * asked to allocate more objects than there are bytes in the buffer.
 *
 * Timestamps (ext type -1) are checked as the msgpack spec defines them
 * (4, 8 or 12 bytes, nanoseconds below 10^9): strict decoders in other
 * languages refuse anything else, so we refuse it at the door too.
 */
#include "mpck.h"

#include <assert.h>
#include <inttypes.h>
#include <stdio.h>
#include <string.h>

#include "qjlimits.h"
#include "mpraw.h"

/* Deepest nesting the checker can track; callers' max_depth must not
 * exceed it (checked by assert: it is a programmer error). */
#define MPCK_STACK 64

const mpck_limits_t mpck_default_limits = {
    .max_depth = QJ_MAX_DEPTH,
    .max_values = QJ_MAX_VALUES,
};

/* What one header byte announces. */
typedef enum { K_FIXED, K_BYTES, K_EXT, K_ARRAY, K_MAP, K_BAD } kind_t;

typedef struct head {
    kind_t kind;
    uint8_t extra;       /* bytes after the type byte: payload (K_FIXED) or length field */
    uint32_t inline_n;   /* fix* types: length or count carried in the type byte */
    uint32_t fixed_len;  /* fixext: data bytes (the ext type byte comes first) */
    const char *what;    /* for messages */
} head_t;

/* Classify a type byte.  Pure table logic, no reads past the byte. */
static head_t s_head(uint8_t b)
{
    head_t h = {K_FIXED, 0, 0, 0, "positive fixint"};
    if (b <= 0x7f) return h;
    if (b <= 0x8f) return (head_t){K_MAP, 0, b & 0x0fu, 0, "fixmap"};
    if (b <= 0x9f) return (head_t){K_ARRAY, 0, b & 0x0fu, 0, "fixarray"};
    if (b <= 0xbf) return (head_t){K_BYTES, 0, b & 0x1fu, 0, "fixstr"};
    if (b >= 0xe0) return (head_t){K_FIXED, 0, 0, 0, "negative fixint"};
    switch (b) {
    case 0xc0: return (head_t){K_FIXED, 0, 0, 0, "nil"};
    case 0xc1: return (head_t){K_BAD, 0, 0, 0, "never-used byte 0xc1"};
    case 0xc2: case 0xc3: return (head_t){K_FIXED, 0, 0, 0, "bool"};
    case 0xc4: return (head_t){K_BYTES, 1, 0, 0, "bin8"};
    case 0xc5: return (head_t){K_BYTES, 2, 0, 0, "bin16"};
    case 0xc6: return (head_t){K_BYTES, 4, 0, 0, "bin32"};
    case 0xc7: return (head_t){K_EXT, 1, 0, 0, "ext8"};
    case 0xc8: return (head_t){K_EXT, 2, 0, 0, "ext16"};
    case 0xc9: return (head_t){K_EXT, 4, 0, 0, "ext32"};
    case 0xca: return (head_t){K_FIXED, 4, 0, 0, "float32"};
    case 0xcb: return (head_t){K_FIXED, 8, 0, 0, "float64"};
    case 0xcc: return (head_t){K_FIXED, 1, 0, 0, "uint8"};
    case 0xcd: return (head_t){K_FIXED, 2, 0, 0, "uint16"};
    case 0xce: return (head_t){K_FIXED, 4, 0, 0, "uint32"};
    case 0xcf: return (head_t){K_FIXED, 8, 0, 0, "uint64"};
    case 0xd0: return (head_t){K_FIXED, 1, 0, 0, "int8"};
    case 0xd1: return (head_t){K_FIXED, 2, 0, 0, "int16"};
    case 0xd2: return (head_t){K_FIXED, 4, 0, 0, "int32"};
    case 0xd3: return (head_t){K_FIXED, 8, 0, 0, "int64"};
    case 0xd4: return (head_t){K_EXT, 0, 0, 1, "fixext1"};
    case 0xd5: return (head_t){K_EXT, 0, 0, 2, "fixext2"};
    case 0xd6: return (head_t){K_EXT, 0, 0, 4, "fixext4"};
    case 0xd7: return (head_t){K_EXT, 0, 0, 8, "fixext8"};
    case 0xd8: return (head_t){K_EXT, 0, 0, 16, "fixext16"};
    case 0xd9: return (head_t){K_BYTES, 1, 0, 0, "str8"};
    case 0xda: return (head_t){K_BYTES, 2, 0, 0, "str16"};
    case 0xdb: return (head_t){K_BYTES, 4, 0, 0, "str32"};
    case 0xdc: return (head_t){K_ARRAY, 2, 0, 0, "array16"};
    case 0xdd: return (head_t){K_ARRAY, 4, 0, 0, "array32"};
    case 0xde: return (head_t){K_MAP, 2, 0, 0, "map16"};
    default: return (head_t){K_MAP, 4, 0, 0, "map32"}; /* 0xdf */
    }
}

/* Read a length field of 1, 2 or 4 bytes (big-endian; the caller has
 * checked the bytes are there). */
static uint32_t s_len(const uint8_t *p, uint8_t width)
{
    return width == 1 ? p[0] : width == 2 ? mpraw_be16(p) : mpraw_be32(p);
}

#define FAIL(...)                                             \
    do {                                                      \
        if (err && errlen) snprintf(err, errlen, __VA_ARGS__); \
        return -1;                                            \
    } while (0)

int mpck_check(const void *buf, size_t len, const mpck_limits_t *limits,
               char *err, size_t errlen)
{
    assert(buf || len == 0);
    if (!limits) limits = &mpck_default_limits;
    assert(limits->max_depth <= MPCK_STACK);

    const uint8_t *const start = buf;
    const uint8_t *p = start;
    const uint8_t *const end = start + len;
    /* Values still expected by each open container; stack[0] stands for
     * the top level, which expects the one value.  sp is the number of
     * open containers. */
    uint64_t stack[MPCK_STACK + 1];
    uint32_t sp = 0;
    uint64_t need = 1;          /* values declared and not yet read, tree-wide */
    uint64_t values = 0;

    if (len == 0) FAIL("empty input: expected one msgpack value");
    stack[0] = 1;
    for (;;) {
        if (p == end)
            FAIL("offset %zu: truncated, %" PRIu64 " more value(s) expected", (size_t)(p - start), need);
        if (++values > limits->max_values)
            FAIL("offset %zu: more than %" PRIu32 " values", (size_t)(p - start), limits->max_values);
        need--;
        stack[sp]--;

        /* The common bytes first (one-byte values, fixstr, fixmap,
         * fixarray, uints, bin8) when they pass; anything else, and any
         * fault, takes the general path below, which has the messages. */
        uint8_t b = *p;
        size_t after = (size_t)(end - p) - 1;
        if (b <= 0x7f || b >= 0xe0) {
            p++;
            goto complete;
        }
        if ((b & 0xe0u) == 0xa0 && (b & 0x1fu) <= after) {
            p += 1 + (b & 0x1fu);
            goto complete;
        }
        if (b <= 0x9f && sp < limits->max_depth) {
            uint64_t items = b <= 0x8f ? 2u * (b & 0x0fu) : (b & 0x0fu);
            if (need + items <= after) {
                p++;
                if (!items) goto complete;
                need += items;
                stack[++sp] = items;
                continue; /* its first element comes next */
            }
        }
        if (b >= 0xcc && b <= 0xcf && (1u << (b - 0xcc)) <= after) {
            p += 1 + (1u << (b - 0xcc));
            goto complete;
        }
        if (b == 0xc4 && after >= 1 && p[1] <= after - 1) {
            p += 2 + p[1];
            goto complete;
        }

        size_t off = (size_t)(p - start);
        head_t h = s_head(*p++);
        size_t left = (size_t)(end - p);
        if (h.kind == K_BAD) FAIL("offset %zu: %s", off, h.what);
        if (left < h.extra)
            FAIL("offset %zu: %s truncated: needs %u header bytes, %zu left", off, h.what,
                 (unsigned)h.extra, left);
        uint32_t n = h.extra ? s_len(p, h.extra) : h.inline_n;
        if (h.kind != K_FIXED) p += h.extra;
        left = (size_t)(end - p);

        switch (h.kind) {
        case K_FIXED:
            p += h.extra;
            break;
        case K_BYTES:
            if (n > left)
                FAIL("offset %zu: %s claims %" PRIu32 " bytes but only %zu remain", off, h.what, n, left);
            p += n;
            break;
        case K_EXT: {
            uint32_t dlen = h.fixed_len ? h.fixed_len : n;
            if (left < 1 || dlen > left - 1)
                FAIL("offset %zu: %s claims %" PRIu32 " data bytes but only %zu remain", off, h.what,
                     dlen, left ? left - 1 : 0);
            if ((int8_t)p[0] == -1) {
                const char *fault = mpraw_timestamp_fault(p + 1, dlen);
                if (fault) FAIL("offset %zu: %s", off, fault);
            }
            p += 1 + dlen;
            break;
        }
        case K_ARRAY:
        case K_MAP: {
            if (sp + 1 > limits->max_depth)
                FAIL("offset %zu: %s nested deeper than %" PRIu32 " levels", off, h.what,
                     limits->max_depth);
            uint64_t items = h.kind == K_MAP ? 2 * (uint64_t)n : n;
            if (need + items > left)
                FAIL("offset %zu: %s claims %" PRIu32 " %s but only %zu bytes remain for %" PRIu64
                     " values", off, h.what, n, h.kind == K_MAP ? "pairs" : "items", left, need + items);
            if (items) {
                need += items;
                stack[++sp] = items;
                continue; /* its first element comes next */
            }
            break;
        }
        case K_BAD:
            break;
        }
    complete:
        /* A value is complete: close every container it completed. */
        while (stack[sp] == 0) {
            if (sp == 0) goto done;
            sp--;
        }
    }
done:
    if (p != end)
        FAIL("offset %zu: %zu trailing byte(s) after the value", (size_t)(p - start),
             (size_t)(end - p));
    return 0;
}
