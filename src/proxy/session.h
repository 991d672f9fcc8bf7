/* One client session from accept to close (DESIGN.md §3): TLS, the
 * protocol front until credentials, auth, routing, the backend login, and
 * the relay. Internal to src/proxy. */
#ifndef LOFT_PROXY_SESSION_H
#define LOFT_PROXY_SESSION_H

#include "core/listener.h"
#include "proxy/proxy.h"

void session_new(struct proxy_listener *pl, const struct listener_accept *acc);
/* Closes at once with the protocol's goodbye (shutdown). */
void session_shutdown(struct registry_entry *entry, const char *text);
/* A login that waited for the director may route again (next loop turn). */
void session_director_resume(struct registry_entry *entry);

#endif
