/* Fixed-bucket latency histograms (histogram.h). */
#include "common/histogram.h"

const uint64_t histogram_bounds_us[HISTOGRAM_BOUNDS] = {
	1000, 2500, 5000, 10000, 25000, 50000, 100000, 250000, 500000,
	1000000, 2500000, 5000000, 10000000, 30000000,
};

void histogram_observe(struct histogram *h, uint64_t us)
{
	size_t i = 0;
	while (i < HISTOGRAM_BOUNDS && us > histogram_bounds_us[i])
		i++;
	h->counts[i]++;
	h->sum_us += us;
}
