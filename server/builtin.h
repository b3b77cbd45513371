/* builtin.h -- the tasks every qworker has, without plugins.
 *
 *   noop                          returns nil
 *   echo      any                 returns its arguments
 *   sleep     {"ms": N}           sleeps N ms (yielding its coroutine), returns nil
 *   pi        {"samples": N[, "seed": S]}
 *                                 Monte-Carlo estimate of pi from N points (a double);
 *                                 the benchmarks' unit of CPU work
 *   fail      {"message": "..."}  fails with that message
 *   pi_split  {"samples": N, "parts": P[, "seed": S]}
 *                                 runs P `pi` sub-jobs of N/P points each on the
 *                                 job's queue, awaits them, returns their average
 */
#ifndef QJ_BUILTIN_H
#define QJ_BUILTIN_H

#include <stdint.h>

#include "qjob.h"

/* Register the built-in tasks.  Returns 0, or -1 (qj_registry_error says why). */
int builtin_register(qj_registry *reg);

/* How many of n points, drawn from the pseudo-random sequence named by
 * seed starting at point first, fall inside the quarter circle.  The same
 * (seed, first, n) always gives the same count, so the work splits. */
uint64_t builtin_pi_hits(uint64_t seed, uint64_t first, uint64_t n);

#endif
