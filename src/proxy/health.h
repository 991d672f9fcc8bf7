/* Built-in health checks of the backends (director.health). Every
 * interval each backend in the director's list is checked over IMAP, as a
 * login would reach it (backend.imap_port, backend.ssl): connect, TLS if
 * configured, the "* OK" greeting, and with health.user a real login with
 * the same state machine as users' logins. After `fall` failures in a row
 * the director takes the host off its rings; after `rise` passes it comes
 * back. The director keeps the verdict (admins see it with HOST-HEALTH);
 * this file only runs the checks.
 *
 * It lives in proxy/ rather than director/ because a check logs in with
 * proto's backend machines, which the director may not use. */
#ifndef LOFT_PROXY_HEALTH_H
#define LOFT_PROXY_HEALTH_H

#include <openssl/ssl.h>

#include "conf/config.h"

struct event_base;
struct director;
struct health;

/* NULL when director.health.interval is 0 (no checks). backend_tls may be
 * NULL when backend.ssl is "no". */
struct health *health_new(struct event_base *base, const struct config *cfg,
			  struct director *director, SSL_CTX *backend_tls);
void health_free(struct health **h);

#endif
