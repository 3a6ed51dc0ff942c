/*
 * Clocks: real time for token timestamps (Unix seconds), the monotonic
 * clock for timeouts and latencies. Both calls go through the vDSO, so they
 * are cheap enough for the hot path.
 */
#include "tokend/clock.h"

#include "tokend/common.h"

#include <time.h>

int64_t tk_now(void)
{
    struct timespec ts;
    int rc = clock_gettime(CLOCK_REALTIME, &ts);
    TK_ASSERT(rc == 0);
    return (int64_t)ts.tv_sec;
}

uint64_t tk_mono_ns(void)
{
    struct timespec ts;
    int rc = clock_gettime(CLOCK_MONOTONIC, &ts);
    TK_ASSERT(rc == 0);
    return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

uint64_t tk_mono_ms(void)
{
    return tk_mono_ns() / 1000000u;
}
