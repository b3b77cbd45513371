/* mpjson.h -- JSON text <-> one msgpack value, through jansson.
 *
 * The CLI takes job arguments as JSON and prints results as JSON; on the
 * wire both are msgpack.  Integers stay exact (64-bit), floats stay
 * floats, bin values become base64 strings in JSON (there is no way
 * back: JSON has no bytes), maps with non-string keys use the key's JSON
 * text as key. */
#ifndef QJ_MPJSON_H
#define QJ_MPJSON_H

#include <jansson.h>
#include <msgpack.h>
#include <stddef.h>

/* Parse JSON text and append it as one msgpack value to *out.  Returns 0,
 * or -1 with "line L, column C: what" in err. */
int mpjson_from_text(const char *json, msgpack_sbuffer *out, char *err, size_t errlen);

/* Append a jansson value as msgpack.  Returns 0 or -1. */
int mpjson_pack(msgpack_packer *pk, const json_t *v);

/* Convert msgpack bytes (pre-checked here: untrusted input is fine) to a
 * new jansson value; NULL and a message if the bytes are not one valid
 * value.  Empty input (len 0) gives JSON null.  Caller owns the result. */
json_t *mpjson_to_json(const void *mp, size_t len, char *err, size_t errlen);

/* Convert a decoded msgpack object.  Caller owns the result. */
json_t *mpjson_from_object(const msgpack_object *o);

#endif
