/* Socket helpers shared by the benchmark's load generator and backend. */
#ifndef LOFT_BENCH_NET_H
#define LOFT_BENCH_NET_H

#include <stdint.h>

#include "common/net.h"

struct bench_addr {
	struct ipaddr ip;
	uint16_t port;
};

/* "ip:port" or "[v6]:port"; -1 when malformed. */
int bench_addr_parse(const char *s, struct bench_addr *addr_r);
/* A non-blocking listening socket (SO_REUSEADDR); exits on failure. */
int bench_listen(const struct bench_addr *addr);
/* Starts a non-blocking connect, bound to source (which may be NULL)
 * without fixing its port, so ports are shared across destinations;
 * -1 with errno on failure. */
int bench_connect(const struct bench_addr *dest, const struct ipaddr *source);
/* Raises RLIMIT_NOFILE as far as allowed; returns the new soft limit. */
unsigned long bench_raise_nofile(void);
double bench_now(void);		/* monotonic seconds */

#endif
