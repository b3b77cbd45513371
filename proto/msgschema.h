/* msgschema.h -- the shape of every message body, as data (internal to proto/).
 *
 * Each map of the wire format (a command's body, a job, a result, a stats
 * entry) is a table of keys: msgschema_t.  The codec in msg.c walks these
 * tables to decode and to encode, so the wire format is written down once,
 * here and in PROTOCOL.md, and both directions follow it.
 */
#ifndef QJ_MSGSCHEMA_H
#define QJ_MSGSCHEMA_H

#include <stdint.h>

/* Field types. */
enum msgschema_type {
    MS_UINT,     /* unsigned integer stored in width bytes */
    MS_PRI,      /* integer -128..127 stored as int32 */
    MS_BOOL,
    MS_STR,      /* msg_bytes_t */
    MS_BIN,      /* msg_bytes_t */
    MS_MAPS,     /* array of maps of shape sub, allocated in the zone */
    MS_IDS,      /* array of uint64 */
    MS_NAMES,    /* array of str (HELLO queues) */
    MS_ACKS,     /* array of [ref, id] / [ref, 0, code, text] */
    MS_OUTCOMES, /* array of [id, outcome] */
    MS_TIMES,    /* msg_times_t as [submitted, queued, dispatched, started, finished] */
    MS_PROG,     /* msg_result_t progress as [done, total, note] */
    MS_BADBY,    /* msg_stats_t.bad_by_code as {error name: count} */
};

/* The same types as the fast paths see them: an unsigned integer's width
 * folded in, and every type they leave to the generic code as one, so
 * that reading or writing a common value costs one switch (msg.c, msgenc.c).
 * The table macros (msgschema.c) set it from type and width. */
enum msgschema_kind {
    MK_OTHER,    /* lists, prog, bad_by: the generic code only */
    MK_U8,       /* MS_UINT of width 1 */
    MK_U16,
    MK_U32,
    MK_U64,
    MK_PRI,
    MK_BOOL,
    MK_STR,
    MK_BIN,
    MK_TIMES,
};

/* Field flags. */
#define MS_REQ 1u    /* required: always encoded, decoding fails without it */
#define MS_ALL 2u    /* always encoded, even when zero */
#define MS_DONE 4u   /* result status: encoded when the job's state is done or dead */
#define MS_EXACT 8u  /* a length outside min..max is a shape error (body), not a limit */

struct msgschema;

/* One key of a map. */
typedef struct msgschema_field {
    const char *key;
    char kraw[16];            /* the key again, zero-padded: the encoder copies it whole */
    uint64_t kword, kmask;    /* the key as a fixstr, its first 8 bytes as a little-endian
                                 word, and the bytes of it that are the key's: the decoder
                                 matches a key on the wire with one compare */
    uint8_t klen;
    uint8_t type;
    uint8_t flags;
    uint8_t width;            /* MS_UINT: bytes of the C field */
    uint8_t kind;             /* enum msgschema_kind, from type and width */
    uint16_t off;             /* offset of the value (arrays: of the pointer) */
    uint16_t noff;            /* arrays: offset of the uint32 count */
    uint32_t min, max;        /* str/bin: bytes; arrays: items */
    const char *dflt;         /* required str: encoded when the field is NULL */
    const struct msgschema *sub; /* MS_MAPS: schema of the items */
} msgschema_field_t;

/* A map: its fields, the C struct they live in, and a name for messages.
 * At most 32 fields: the decoder marks the keys it has seen in a 32-bit mask,
 * and finds a missing required one by that mask against req. */
typedef struct msgschema {
    const char *name;
    const msgschema_field_t *fields;
    uint8_t nfields;
    uint16_t size;
    uint32_t req;             /* bit j set if fields[j] is MS_REQ: filled in when the
                                 program loads (msgschema.c), from the fields' flags */
} msgschema_t;

/* The body of command cmd, or NULL if cmd is not a known command. */
const msgschema_t *msgschema_body(int cmd);

#endif
