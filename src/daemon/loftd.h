/* The daemon's parts, shared by its files (main.c wires them, reload.c
 * re-reads the configuration). */
#ifndef LOFT_DAEMON_LOFTD_H
#define LOFT_DAEMON_LOFTD_H

#include <openssl/ssl.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <time.h>

#include "conf/config.h"
#include "daemon/privileges.h"
#include "daemon/service.h"
#include "daemon/upgrade.h"

struct loftd {
	struct config *cfg;		/* the current one; a reference */
	struct event_base *base;
	struct director *director;
	struct auth *auth;
	struct proxy *proxy;
	struct admin *admin;
	struct ipc *ipc;
	struct health *health;
	struct ring *ring;		/* NULL: a ring of one */
	int ring_peer_fd;		/* an upgrade's ring.port socket; -1: none */
	struct metrics_server *metrics;	/* NULL: metrics.port is 0 */
	time_t start_time;
	SSL_CTX *client_tls;
	SSL_CTX *backend_tls;
	struct proxy_listener *plisteners;
	struct listener **listeners;
	size_t listeners_count;
	struct event *sigterm, *sigint, *sighup, *sigusr2, *expire;
	struct event *stop_tick;	/* set: a spread shutdown is under way */
	uint64_t stop_start;		/* monotonic ms */
	size_t stop_total;		/* proxied sessions when it began */
	struct privileges priv;
	struct service service;		/* sd_notify: READY, STATUS, ... */
	struct upgrade upgrade;		/* SIGUSR2 */
	int state_lock_fd;		/* the state_dir's lock; -1: none */
	/* how the configuration was loaded, to load it again */
	const char *config_path;
	const struct config_override *overrides;
	size_t overrides_count;
	bool debug;			/* -D: the log level stays debug */
	bool failed;			/* stopped by a fatal error */
};

/* The TLS context towards clients from cfg's tls.* (NULL without
 * tls.cert); -1 with the reason when the files or settings do not load
 * (main.c; at start and on reload). */
int loftd_client_tls(const struct config *cfg, SSL_CTX **ctx_r, char **error_r);
/* Raises RLIMIT_NOFILE for limits.max_connections; returns how many
 * connections fit (main.c). */
unsigned int loftd_setup_nofile(const struct config *cfg);
/* Serves metrics.* (none for port 0); -1 after logging why (main.c). */
int loftd_setup_metrics(struct loftd *d);
/* Stops as on SIGTERM: no more accepting, proxied sessions closed over
 * shutdown.max_disconnect_delay (main.c). */
void loftd_stop(struct loftd *d);
/* Leaves the ring, if any, and ends the event loop (main.c). */
void loftd_exit(struct loftd *d);
/* The successor an upgrade started holds the node's lease now: this
 * loftd lets go of the ring without revoking it (main.c). */
void loftd_ring_detach(struct loftd *d);

#endif
