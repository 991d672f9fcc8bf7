/* A latency histogram with fixed buckets, kept by whoever measures (a
 * login's time to proxying) and read by whoever exposes it (the metrics
 * endpoint). Observing is a short scan of constant bounds and two
 * additions: no allocation, no lookup, no lock (one loop thread). */
#ifndef LOFT_COMMON_HISTOGRAM_H
#define LOFT_COMMON_HISTOGRAM_H

#include <stddef.h>
#include <stdint.h>

/* Upper bounds in microseconds, from 1 ms to 30 s (login.timeout's
 * default is 60 s; slower logins land in the last, unbounded bucket). */
#define HISTOGRAM_BOUNDS 14
extern const uint64_t histogram_bounds_us[HISTOGRAM_BOUNDS];

struct histogram {
	/* per bucket, not cumulative; [HISTOGRAM_BOUNDS]: above the last bound */
	uint64_t counts[HISTOGRAM_BOUNDS + 1];
	uint64_t sum_us;
};

void histogram_observe(struct histogram *h, uint64_t us);

#endif
