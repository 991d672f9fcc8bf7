/* The Prometheus text exposition format, version 0.0.4, written into an
 * sbuf: a family's HELP and TYPE lines, then its samples
 *
 *   # HELP loft_logins_total Logins by protocol and result.
 *   # TYPE loft_logins_total counter
 *   loft_logins_total{protocol="imap",result="ok"} 42
 *
 * Values are unsigned integers written with a fixed number of decimals
 * (an integer of microseconds is written as seconds with 6), so that no
 * floating point rounding shows (0.0025, not 0.0025000000000000001).
 * Label values are escaped as the format requires (\\, \" and \n); HELP
 * texts escape \\ and \n. Names are the caller's constants and are not
 * checked. Library code: no I/O, no logging. */
#ifndef LOFT_METRICS_EXPO_H
#define LOFT_METRICS_EXPO_H

#include <stddef.h>
#include <stdint.h>

#include "common/histogram.h"
#include "common/sbuf.h"

enum metrics_type {
	METRICS_COUNTER,
	METRICS_GAUGE,
	METRICS_HISTOGRAM,
};

struct metrics_label {
	const char *name;
	const char *value;
};

/* The "# HELP" and "# TYPE" lines of a family. */
void metrics_expo_family(struct sbuf *out, const char *name, enum metrics_type type,
			 const char *help);
/* One sample: name{labels} value, the value being value / 10^decimals
 * (decimals <= 9). */
void metrics_expo_sample(struct sbuf *out, const char *name,
			 const struct metrics_label *labels, size_t labels_count,
			 uint64_t value, unsigned int decimals);
/* A histogram's samples in seconds: name_bucket with cumulative counts
 * per le bound and le="+Inf", then name_sum and name_count. labels are
 * the histogram's own (le comes last). */
void metrics_expo_histogram(struct sbuf *out, const char *name,
			    const struct metrics_label *labels, size_t labels_count,
			    const struct histogram *h);

#endif
