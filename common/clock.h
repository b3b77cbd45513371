/* clock.h -- the two clocks qjob uses.
 *
 * Wall time (unix µs) stamps a job's life, because the stamps travel
 * between hosts; monotonic time drives every timeout, because wall time
 * can jump. */
#ifndef QJ_CLOCK_H
#define QJ_CLOCK_H

#include <stdint.h>

uint64_t clock_wall_us(void);   /* unix time, µs */
uint64_t clock_mono_us(void);   /* CLOCK_MONOTONIC, µs */
uint64_t clock_mono_ms(void);   /* CLOCK_MONOTONIC, ms */

#endif
