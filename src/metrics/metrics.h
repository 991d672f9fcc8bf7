/* What loftd exposes on its metrics endpoint (doc/loftd.8.scd, METRICS):
 * one table of metric families, each written at scrape time from the
 * plain integers the other modules keep in their own objects as they
 * work (struct proxy_stats, a director host's stats, the director's,
 * the relay pools', the health probes', the auth cache's) and from their read-only
 * functions (the host list, the registry's backends, the ring's
 * members). Nothing on the login path calls this module: scraping costs
 * the scrape, and counting costs an increment.
 *
 * Label values are bounded: protocols, states and results are fixed
 * lists; backends are the director's hosts (by address) and "other"; no
 * user names or client addresses. */
#ifndef LOFT_METRICS_METRICS_H
#define LOFT_METRICS_METRICS_H

#include <time.h>

#include "common/sbuf.h"

struct proxy;
struct director;
struct health;
struct ring;
struct auth;

struct metrics_sources {
	const struct proxy *proxy;
	const struct director *director;
	const struct health *health;	/* NULL: no health checks */
	struct ring *ring;		/* NULL: a ring of one */
	const struct auth *auth;	/* its cache's counters */
	time_t start_time;		/* when loftd started */
};

/* Appends every family, in the text format of metrics/expo.h. */
void metrics_render(const struct metrics_sources *src, struct sbuf *out);

/* The name of every family metrics_render() may write, one per call, in
 * order (for the documentation check). */
void metrics_foreach_family(void (*cb)(const char *name, void *ctx), void *ctx);

#endif
