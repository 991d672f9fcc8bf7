/* A connection on a proxy_protocol listener, waiting for the PROXY
 * protocol header its load balancer sends first (proto/proxy_protocol.h).
 * Only the header's bytes are read - what follows (a TLS ClientHello, a
 * command) stays in the socket for the session. With the header read,
 * the session starts as if the client had connected from the address the
 * header names. Internal to src/proxy. */
#ifndef LOFT_PROXY_HEADER_WAIT_H
#define LOFT_PROXY_HEADER_WAIT_H

#include "core/listener.h"
#include "proxy/proxy.h"

/* Takes the accepted socket; it is closed if no valid header arrives
 * within login.timeout. */
void header_wait_start(struct proxy_listener *pl, const struct listener_accept *acc);
/* Shutdown: closes every connection still waiting. */
void header_waits_free(struct proxy *proxy);

#endif
