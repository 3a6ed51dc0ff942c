/*
 * Clocks. Token times (iat, nbf, exp) are Unix seconds from the real-time
 * clock; timeouts and latencies use the monotonic clock.
 */
#ifndef TOKEND_CLOCK_H
#define TOKEND_CLOCK_H

#include <stdint.h>

int64_t tk_now(void);      /* Unix seconds */
uint64_t tk_mono_ns(void); /* monotonic nanoseconds */
uint64_t tk_mono_ms(void); /* monotonic milliseconds */

#endif
