/* Time sources. Monotonic time drives timeouts; wall time is only for
 * timestamps that leave the process (logs, director expiry on the wire). */
#ifndef LOFT_COMMON_CLOCK_H
#define LOFT_COMMON_CLOCK_H

#include <stdint.h>
#include <time.h>

uint64_t clock_monotonic_ms(void);
/* For latencies measured in microseconds (histograms). */
uint64_t clock_monotonic_us(void);
uint64_t clock_wall_ms(void);

#endif
