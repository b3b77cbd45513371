/* msgerr.h -- the codec's fault messages (internal to proto/).
 *
 * The decoder and the encoder (msg.c, msgenc.c) say what was wrong the
 * same way: "<where>[ <item>]: key '<key>'[ item i] <what>", e.g.
 * "job 3: key 'task' must be a string of 1-128 bytes (got 300 bytes)".
 * A msgerr_t carries the where part down the walk over nested maps, and
 * the caller's buffer the message goes to.
 */
#ifndef QJ_MSGERR_H
#define QJ_MSGERR_H

#include <msgpack.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "msg.h"
#include "msgschema.h"

typedef struct msgerr {
    const char *where;    /* command name, or item name inside an array */
    uint32_t idx;         /* index of the item, when inside an array */
    bool in_item;
    char *err;            /* the caller's buffer (may be NULL) */
    size_t errlen;
} msgerr_t;

/* Write "<where>: key '<f->key>' item <item> <fmt...>" to e's buffer (no key
 * part if f is NULL, no item part if item < 0).  Returns code. */
msg_err_t msgerr_fail(const msgerr_t *e, msg_err_t code, const msgschema_field_t *f, long item,
                      const char *fmt, ...) __attribute__((format(printf, 5, 6), cold));

/* Describe a length range into buf: "of 16 bytes", "of at most 128 bytes",
 * "of 1-64 bytes". */
void msgerr_range(char *buf, size_t n, uint32_t lo, uint32_t hi, const char *unit);

/* Describe what a value is, for "(got ...)": "nil", "300", "a string of 3
 * bytes" ...  Returns buf or a constant string. */
const char *msgerr_got(const msgpack_object *o, char *buf, size_t n);

/* The rules of HELLO across fields, which the tables cannot state (role
 * 0 or 1; a client has a cid).  Returns QJ_E_OK, or QJ_E_BODY with the
 * message written through e. */
msg_err_t msgerr_hello(const msgerr_t *e, const msg_t *m);

#endif
