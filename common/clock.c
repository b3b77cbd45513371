#include "clock.h"

#include <time.h>

static uint64_t s_read(clockid_t id, uint64_t div)
{
    struct timespec ts;
    clock_gettime(id, &ts);
    return (uint64_t)ts.tv_sec * (1000000000u / div) + (uint64_t)ts.tv_nsec / div;
}

uint64_t clock_wall_us(void) { return s_read(CLOCK_REALTIME, 1000); }
uint64_t clock_mono_us(void) { return s_read(CLOCK_MONOTONIC, 1000); }
uint64_t clock_mono_ms(void) { return s_read(CLOCK_MONOTONIC, 1000000); }
