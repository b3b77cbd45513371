/* msgfast.c -- the decoder's fast path (msgfast.h).
 *
 * Every function here either takes a value whole or consumes nothing, and
 * reads no byte at or past end; the two loops at the bottom have no call
 * in them (everything else is inlined into them).
 */
#include "msgfast.h"

#include <stdbool.h>
#include <string.h>

#include "mpraw.h"
#include "msg.h"

/* For the small functions of the loops, which the compiler would otherwise
 * leave out of line. */
#define HOT static inline __attribute__((always_inline))

typedef msgschema_field_t field_t;
typedef msgschema_t shape_t;

/* The 8 bytes at p as a little-endian word, the form of field_t.kword. */
HOT uint64_t s_word(const uint8_t *p)
{
    uint64_t w;
    memcpy(&w, p, 8);
#if __BYTE_ORDER__ == __ORDER_BIG_ENDIAN__
    w = __builtin_bswap64(w);
#endif
    return w;
}

/* Field f's key as the fixstr at p, whose first 8 bytes are w: its header
 * and up to 7 bytes of the key compared as one word, the rest of a longer
 * key byte by byte (a loop, not memcmp: a call would cost the loops their
 * registers). */
HOT bool s_key_raw(const field_t *f, uint64_t w, const uint8_t *p, const uint8_t *end)
{
    if ((w & f->kmask) != f->kword) return false;
    uint32_t klen = f->klen;
    if (klen <= 7) return true;
    if (klen + 1 > (size_t)(end - p)) return false;
    for (uint32_t i = 7; i < klen; i++)
        if (p[i + 1] != (uint8_t)f->kraw[i]) return false;
    return true;
}

/* A str or bin of len bytes at s, within f's limits, into *out. */
HOT const uint8_t *s_fast_bytes(const field_t *f, const uint8_t *s, uint32_t len, const uint8_t *end,
                                msg_bytes_t *out)
{
    if (len > (size_t)(end - s) || len < f->min || len > f->max) return NULL;
    out->ptr = len ? (const char *)s : "";
    out->len = len;
    return s + len;
}

/* The value of field f at p (p < end), read into the struct at base if it
 * is a scalar, str, bin or t tuple in one of its common encodings and
 * within f's limits. */
HOT const uint8_t *s_fast_value(const field_t *f, const uint8_t *p, const uint8_t *end, char *base)
{
    uint8_t b = p[0];
    void *out = base + f->off;
    uint64_t u;
    switch (f->kind) {
    case MK_U8:
        if (!(p = mpraw_get_uint(p, end, UINT8_MAX, &u))) return NULL;
        *(uint8_t *)out = (uint8_t)u;
        return p;
    case MK_U16:
        if (!(p = mpraw_get_uint(p, end, UINT16_MAX, &u))) return NULL;
        *(uint16_t *)out = (uint16_t)u;
        return p;
    case MK_U32:
        if (!(p = mpraw_get_uint(p, end, UINT32_MAX, &u))) return NULL;
        *(uint32_t *)out = (uint32_t)u;
        return p;
    case MK_U64:
        return mpraw_get_uint(p, end, UINT64_MAX, out);
    case MK_STR:
        if (b >= 0xa0 && b <= 0xbf) return s_fast_bytes(f, p + 1, b & 0x1fu, end, out);
        if (b == 0xd9 && end - p >= 2) return s_fast_bytes(f, p + 2, p[1], end, out);
        return NULL;
    case MK_BIN:
        if (b == 0xc4 && end - p >= 2) return s_fast_bytes(f, p + 2, p[1], end, out);
        return NULL;
    case MK_BOOL:
        if (b != 0xc2 && b != 0xc3) return NULL;
        *(bool *)out = b == 0xc3;
        return p + 1;
    case MK_PRI:   /* a fixint: -32..127, within -128..127 */
        if (b <= 0x7f) *(int32_t *)out = b;
        else if (b >= 0xe0) *(int32_t *)out = (int8_t)b;
        else return NULL;
        return p + 1;
    case MK_TIMES: {
        msg_times_t *t = out;
        if (b != 0x95) return NULL;   /* exactly the 5 items: nothing to skip */
        p++;
        if (p >= end || !(p = mpraw_get_uint(p, end, UINT64_MAX, &t->submitted))) return NULL;
        if (p >= end || !(p = mpraw_get_uint(p, end, UINT64_MAX, &t->queued))) return NULL;
        if (p >= end || !(p = mpraw_get_uint(p, end, UINT64_MAX, &t->dispatched))) return NULL;
        if (p >= end || !(p = mpraw_get_uint(p, end, UINT64_MAX, &t->started))) return NULL;
        if (p >= end || !(p = mpraw_get_uint(p, end, UINT64_MAX, &t->finished))) return NULL;
        return p;
    }
    default:
        return NULL;
    }
}

/* The loop of msgfast_pairs, inlined into both loops below: the field
 * tried first is the one ord expects after field w->at - 1; any other is
 * searched for from there, wrapping around, and remembered in ord.
 * Returns true if it read every pair left. */
HOT bool s_fast_run(const shape_t *sh, const uint8_t *end, char *base, msgfast_order_t *ord,
                    msgfast_walk_t *w)
{
    const field_t *fields = sh->fields;
    const uint8_t *p = w->p;
    uint32_t left = w->left, seen = w->seen, at = w->at;
    for (; left; left--) {
        if (end - p < 8) break;   /* else not a fixstr: no key's word matches */
        uint64_t word = s_word(p);
        uint32_t j = ord->next[at];
        if (!s_key_raw(&fields[j], word, p, end)) {
            uint32_t n = sh->nfields, tried = 1;
            do {
                if (tried++ == n) goto out;
                if (++j == n) j = 0;
            } while (!s_key_raw(&fields[j], word, p, end));
            ord->next[at] = (uint8_t)j;
        }
        const field_t *f = &fields[j];
        const uint8_t *v = p + 1 + f->klen;
        if ((seen & (1u << j)) || v >= end || !(v = s_fast_value(f, v, end, base))) break;
        seen |= 1u << j;
        at = j + 1;
        p = v;
    }
out:
    w->p = p;
    w->left = left;
    w->seen = seen;
    w->at = at;
    return left == 0;
}

void msgfast_pairs(const shape_t *sh, const uint8_t *end, char *base, msgfast_order_t *ord,
                   msgfast_walk_t *w)
{
    /* A list expected (the bodies of SUBMIT, JOBS, RESULTS ... start with
     * one): not for the fast path, said before the loop is set up. */
    if (sh->fields[ord->next[w->at]].kind == MK_OTHER) return;
    msgfast_walk_t here = *w;
    s_fast_run(sh, end, base, ord, &here);
    *w = here;
}

uint32_t msgfast_items(const shape_t *sh, const uint8_t *end, char *items, uint32_t i, uint32_t n,
                       msgfast_order_t *ord, const uint8_t **pp)
{
    const uint8_t *p = *pp;
    for (; i < n && p < end; i++) {
        /* A fixmap header.  Its count needs no check against the bytes left
         * (mpraw_count's): the pairs are read within them, 2 bytes at least
         * each, or the item is not taken. */
        if ((p[0] & 0xf0) != 0x80) break;
        msgfast_walk_t w = {.p = p + 1, .left = p[0] & 0x0fu};
        if (!s_fast_run(sh, end, items + (size_t)i * sh->size, ord, &w) || (sh->req & ~w.seen)) break;
        p = w.p;
    }
    *pp = p;
    return i;
}
