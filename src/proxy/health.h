/* Built-in health checks of the backends (director.health). Every
 * interval each backend in the director's list is checked over IMAP, as a
 * login would reach it (backend.imap_port, backend.ssl): connect, TLS if
 * configured, the "* OK" greeting, and with health.user a real login with
 * the same state machine as users' logins. After `fall` failures in a row
 * the verdict is "failing"; after `rise` passes "ok" again. Verdicts go to
 * a callback the daemon wires: on one node straight into the director
 * (which takes the host off its rings and keeps the verdict for
 * HOST-HEALTH); in a ring they are published and the ring's agreed
 * verdict is applied. This file only runs the checks.
 *
 * It lives in proxy/ rather than director/ because a check logs in with
 * proto's backend machines, which the director may not use. */
#ifndef LOFT_PROXY_HEALTH_H
#define LOFT_PROXY_HEALTH_H

#include <openssl/ssl.h>

#include "common/net.h"
#include "conf/config.h"
#include "director/hosts.h"

struct event_base;
struct director;
struct health;

/* Every probe's verdict, after every probe (error: the failed check's
 * reason, NULL when ok). */
typedef void health_verdict_cb(void *ctx, const struct ipaddr *ip,
			       enum director_health verdict, const char *error);

/* NULL when director.health.interval is 0 (no checks). backend_tls may be
 * NULL when backend.ssl is "no". The director is read for its host list.
 * cfg must outlive the checks, or be replaced with health_set_config()
 * first. */
struct health *health_new(struct event_base *base, const struct config *cfg,
			  struct director *director, SSL_CTX *backend_tls,
			  health_verdict_cb *verdict, void *verdict_ctx);
/* After a reload: the next checks read cfg (h may be NULL). */
void health_set_config(struct health *h, const struct config *cfg);
void health_free(struct health **h);

/* The checks of one backend so far, for metrics. */
struct health_results {
	const char *ip_str;
	uint64_t passed;
	uint64_t failed;
};
/* Every backend being checked (h may be NULL: none). */
void health_foreach_results(const struct health *h,
			    void (*cb)(const struct health_results *r, void *ctx),
			    void *ctx);

#endif
