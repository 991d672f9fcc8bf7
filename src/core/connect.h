/* Opening an outgoing TCP connection without blocking: the socket, its
 * options (TCP_NODELAY, keepalive) and connect(); then, when the socket
 * turns writable, whether the connect worked. Used for every connection
 * loftd makes to a backend (logins, LMTP, health checks). */
#ifndef LOFT_CORE_CONNECT_H
#define LOFT_CORE_CONNECT_H

#include <stdbool.h>
#include <stdint.h>

#include "common/net.h"

enum connect_result {
	CONNECT_DONE,		/* connected already (rare on TCP) */
	CONNECT_PENDING,	/* wait until the socket is writable */
	CONNECT_FAILED,		/* *error_r says why; no descriptor */
};

/* ka may be NULL (no keepalive options). *fd_r is a non-blocking,
 * close-on-exec socket unless FAILED. */
enum connect_result connect_start(const struct ipaddr *ip, uint16_t port,
				  const struct net_keepalive *ka, int *fd_r,
				  const char **error_r);
/* After the socket turned writable: 0, or -1 with why the connect failed. */
int connect_finish(int fd, const char **error_r);
/* Whether a pending connect has completed (the peer is known). */
bool connect_established(int fd);

#endif
