/* mpck.h -- non-allocating pre-check of untrusted msgpack bytes.
 *
 * msgpack-c's decoder trusts the counts it reads: a 5-byte array32 header
 * claiming 2^32 elements makes it allocate before it notices the bytes are
 * missing.  mpck walks the bytes first, without allocating, and accepts
 * them only if they hold exactly one value that fits: every declared
 * length and element count fits in the bytes left, nesting stays within
 * max_depth, the total number of values within max_values, and the value
 * ends exactly at the end of the buffer.  Non-minimal encodings (an
 * array32 holding 3 elements) are valid msgpack and are accepted.
 */
#ifndef QJ_MPCK_H
#define QJ_MPCK_H

#include <stddef.h>
#include <stdint.h>

typedef struct mpck_limits {
    uint32_t max_depth;   /* containers nested deeper than this are refused */
    uint32_t max_values;  /* values (scalars and containers) in total */
} mpck_limits_t;

/* The limits used for frames and for args/result values (qjlimits.h). */
extern const mpck_limits_t mpck_default_limits;

/* Check that buf[0..len) is exactly one well-formed msgpack value within
 * the limits.  Reads no byte at or past buf + len.  Returns 0, or -1 with
 * a message naming the offset and the fault in err. */
int mpck_check(const void *buf, size_t len, const mpck_limits_t *limits,
               char *err, size_t errlen);

#endif
