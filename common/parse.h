/* parse.h -- strict numbers from command-line and config text.
 *
 * The whole string must be the number: no sign where none is allowed, no
 * trailing junk, no overflow, within [lo, hi].  Every program parses its
 * options with these, so "--procs 4x" is refused the same way everywhere. */
#ifndef QJ_PARSE_H
#define QJ_PARSE_H

#include <stdint.h>

/* Each returns 0 and sets *out, or -1 (leaving *out alone). */
int parse_u64(const char *s, uint64_t lo, uint64_t hi, uint64_t *out);
int parse_i64(const char *s, int64_t lo, int64_t hi, int64_t *out);
int parse_double(const char *s, double lo, double hi, double *out);  /* finite only */

#endif
