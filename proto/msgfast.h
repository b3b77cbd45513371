/* msgfast.h -- the decoder's fast path (internal to proto/).
 *
 * msg.c decodes a map pair by pair; most pairs are a fixstr key of the
 * table and a value in a common encoding (a uint, a short str or bin, a
 * bool, a small priority, the t tuple), and most maps come as the items of
 * an array (the jobs of SUBMIT and JOBS, the results of RESULTS), all with
 * the same keys in the same order.  This module reads those straight from
 * the bytes into the struct, in loops with no call in them, so that their
 * state lives in registers: a key is matched as one 64-bit word against the
 * field the walk expects next (msgfast_order_t), a value read by its type
 * byte.
 *
 * It only ever accepts what msg.c's generic walk accepts, and checks the
 * bytes as it does (mpraw.h): whatever it does not take (another encoding,
 * an unknown or duplicate key, a value out of its limits, bytes that are
 * not msgpack) it leaves unconsumed, and the generic walk reads the same
 * bytes again and writes every error message.
 */
#ifndef QJ_MSGFAST_H
#define QJ_MSGFAST_H

#include <stdint.h>

#include "msgschema.h"

/* The keys of a map expected next, learnt as a map is read: next[s] is the
 * field tried first after field s - 1 (s = 0: at the map's start).  It
 * starts in table order, the order encoders write (ours do); each key found
 * elsewhere is remembered there, so that the items of an array of maps,
 * which carry the same keys, find each key at the first compare. */
typedef struct msgfast_order {
    uint8_t next[33];     /* 32 fields at most (msgschema.h), and the map's start */
} msgfast_order_t;

/* Where the walk over a map's pairs is, shared by the fast path and msg.c's
 * generic walk. */
typedef struct msgfast_walk {
    const uint8_t *p;     /* the next pair */
    uint32_t left;        /* pairs not read yet */
    uint32_t seen;        /* bit j: field j has been read */
    uint32_t at;          /* the field after the last one found (0: none yet) */
} msgfast_walk_t;

/* Start o in the table order of sh, for a map or for the items of an array
 * of maps of that shape. */
static inline void msgfast_order_init(msgfast_order_t *o, const msgschema_t *sh)
{
    static const msgfast_order_t table_order = {{0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15, 16,
                                                 17, 18, 19, 20, 21, 22, 23, 24, 25, 26, 27, 28, 29, 30, 31, 32}};
    *o = table_order;
    o->next[sh->nfields] = 0;   /* after the last field, the first: every entry names a field */
}

/* Read the pairs of a map of shape sh (which has fields) at w->p, in bytes
 * ending at end, into the struct at base, for as long as the fast path
 * takes them: a fixstr key of a field not seen yet, a value in a common
 * encoding within its limits.  Stops at the end of the map (w->left 0) or
 * at a pair it does not take, w->p at that pair's start; updates w and ord. */
void msgfast_pairs(const msgschema_t *sh, const uint8_t *end, char *base, msgfast_order_t *ord,
                   msgfast_walk_t *w);

/* Read items i, i + 1 ... of n of an array of maps of shape sh, the first at
 * *pp, into the structs of items (sh->size bytes each, zeroed), for as long
 * as the fast path takes them whole: a fixmap whose every pair it takes and
 * which holds every required field.  Returns the index of the first item it
 * did not take (n if none), with *pp at that item's start: the generic walk
 * reads that one from its start (what the fast path wrote of it, it writes
 * again). */
uint32_t msgfast_items(const msgschema_t *sh, const uint8_t *end, char *items, uint32_t i, uint32_t n,
                       msgfast_order_t *ord, const uint8_t **pp);

#endif
