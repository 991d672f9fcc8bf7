/* loftd: load the configuration, build the modules, bind the listeners
 * and the admin socket, and run the event loop until SIGTERM/SIGINT. */
#include <errno.h>
#include <event2/event.h>
#include <getopt.h>
#include <pwd.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "admin/admin.h"
#include "admin/ipc.h"
#include "auth/auth.h"
#include "common/clock.h"
#include "common/log.h"
#include "common/macros.h"
#include "common/xmalloc.h"
#include "conf/config.h"
#include "core/listener.h"
#include "core/tls.h"
#include "core/tls_tickets.h"
#include "daemon/loftd.h"
#include "daemon/privileges.h"
#include "daemon/reload.h"
#include "daemon/service.h"
#include "daemon/shared_limits.h"
#include "director/director.h"
#include "director/state.h"
#include "metrics/metrics.h"
#include "metrics/server.h"
#include "proxy/health.h"
#include "ring/ring.h"
#include "proxy/proxy.h"

#define LOFTD_DEFAULT_CONFIG "/etc/loft/loft.conf"
#define LOFTD_MAX_OVERRIDES 64
#define LOFTD_EXPIRE_INTERVAL_S 1
/* descriptors besides two per session: listeners, sockets, pipes of
 * relays in flight, state and log files */
#define LOFTD_NOFILE_RESERVE 1024


static void loftd_usage(FILE *out)
{
	fprintf(out,
		"usage: loftd [-c config] [-o key=value]... [-n] [-k] [-D]\n"
		"  -c FILE   configuration file (default " LOFTD_DEFAULT_CONFIG ")\n"
		"  -o K=V    override one setting, e.g. -o login.timeout=30s\n"
		"  -n        print the effective configuration and exit\n"
		"  -k        print the name of every setting and exit\n"
		"  -D        log at debug level\n"
		"loftd runs in the foreground and logs to stderr.\n");
}

#define LOFTD_GOODBYE "Server shutting down."
#define LOFTD_STOP_TICK_MS 50

static void loftd_left_ring(void *ctx)
{
	struct loftd *d = ctx;
	event_base_loopexit(d->base, NULL);
}

/* The last step of a stop: leave the ring (its lease revoked, so the
 * others stop waiting for this node at once), then end the loop. */
void loftd_exit(struct loftd *d)
{
	if (d->ring == NULL) {
		event_base_loopexit(d->base, NULL);
		return;
	}
	/* the loftd this one replaced relays on this node's lease: its
	 * sessions go before the lease does (doc/ring.md §16) */
	upgrade_forward_fence(d, false, clock_monotonic_ms());
	ring_stop(d->ring, loftd_left_ring, d);
}

static void loftd_stop_now(struct loftd *d)
{
	proxy_shutdown(d->proxy, LOFTD_GOODBYE);
	loftd_exit(d);
}

/* Closes the share of proxied sessions the elapsed time calls for
 * (Dovecot's login_proxy_max_disconnect_delay); sessions that ended on
 * their own count as closed. */
static void loftd_stop_tick(evutil_socket_t fd, short what, void *arg)
{
	struct loftd *d = arg;
	(void)fd;
	(void)what;
	uint64_t delay = d->cfg->shutdown.max_disconnect_delay_ms;
	uint64_t elapsed = clock_monotonic_ms() - d->stop_start;
	size_t left = registry_count(&d->proxy->registry);
	size_t due = elapsed >= delay ? d->stop_total :
		(size_t)((uint64_t)d->stop_total * elapsed / delay);
	size_t closed = d->stop_total - MIN(left, d->stop_total);
	if (due > closed)
		proxy_shutdown_some(d->proxy, LOFTD_GOODBYE, due - closed);
	if (registry_count(&d->proxy->registry) == 0) {
		event_del(d->stop_tick);
		loftd_exit(d);
	}
}

static void loftd_on_signal(evutil_socket_t sig, short what, void *arg)
{
	struct loftd *d = arg;
	const char *name = sig == SIGTERM ? "SIGTERM" : "SIGINT";
	(void)what;

	if (sig == SIGHUP) {
		char *error = NULL;
		(void)loftd_reload(d, "SIGHUP", &error);
		free(error);
		return;
	}
	if (sig == SIGUSR2) {
		upgrade_start(d, "SIGUSR2", NULL, NULL);
		return;
	}
	if (d->stop_tick != NULL) {
		log_info("%s again: closing the remaining %zu sessions now", name,
			 registry_count(&d->proxy->registry));
		loftd_stop_now(d);
		return;
	}
	log_info("%s: shutting down", name);
	loftd_stop(d);
}

void loftd_stop(struct loftd *d)
{
	upgrade_cancel(d);
	service_stopping(d, NULL);
	for (size_t i = 0; i < d->listeners_count; i++)
		listener_stop(d->listeners[i]);
	uint64_t delay = d->cfg->shutdown.max_disconnect_delay_ms;
	if (delay == 0) {
		loftd_stop_now(d);
		return;
	}
	proxy_shutdown_logins(d->proxy, LOFTD_GOODBYE);
	d->stop_total = registry_count(&d->proxy->registry);
	d->stop_start = clock_monotonic_ms();
	log_info("closing %zu proxied sessions over %llu.%03llus "
		 "(shutdown.max_disconnect_delay; signal again to close them now)",
		 d->stop_total, (unsigned long long)(delay / 1000),
		 (unsigned long long)(delay % 1000));
	struct timeval tv = { 0, LOFTD_STOP_TICK_MS * 1000 };
	d->stop_tick = event_new(d->base, -1, EV_PERSIST, loftd_stop_tick, d);
	event_add(d->stop_tick, &tv);
	loftd_stop_tick(-1, 0, d);
}

static void loftd_expire(evutil_socket_t fd, short what, void *arg)
{
	struct loftd *d = arg;
	(void)fd;
	(void)what;
	time_t now = time(NULL);
	director_expire(d->director, now);
	proxy_expire(d->proxy, now);
}

/* What the director and the passdbs report outside any request (a failed
 * state save, a users file reloaded): logged as they say. */
static void loftd_report(void *ctx, enum log_level level, const char *text)
{
	(void)ctx;
	log_msg(level, "%s", text);
}

/* One node: a probe's verdict is the director's. A ring's nodes agree on
 * one first (doc/ring.md §7). */
static void loftd_health_verdict(void *ctx, const struct ipaddr *ip,
				 enum director_health verdict, const char *error)
{
	struct loftd *d = ctx;
	if (d->ring != NULL)
		ring_health_verdict(d->ring, ip, verdict, error);
	else
		(void)director_host_set_health(d->director, ip, verdict, error, time(NULL));
}

/* The director closes sessions here, and in the loftd this one replaced
 * while that one still relays some (upgrade.h). */
static size_t loftd_director_kill(void *ctx, uint16_t tag, uint32_t hash)
{
	struct loftd *d = ctx;
	upgrade_forward_kill(d, tag, hash);
	return proxy_director_kill(d->proxy, tag, hash);
}

static size_t loftd_director_kick(void *ctx, const char *field, const char *value)
{
	struct loftd *d = ctx;
	upgrade_forward_kick(d, field, value);
	return proxy_director_kick(d->proxy, field, value);
}

static void loftd_director_resume(void *ctx, uint64_t waiter)
{
	struct loftd *d = ctx;
	proxy_director_resume(d->proxy, waiter);
}

/* The director's state is loaded (a ring's too): logins may be routed,
 * and the service manager may say loftd is up. */
static void loftd_serve(void *ctx)
{
	struct loftd *d = ctx;
	upgrade_apply_users(d);
	for (size_t i = 0; i < d->listeners_count; i++)
		listener_start(d->listeners[i]);
	service_ready(d);
	upgrade_serving(d);
}

/* The fence (doc/ring.md §6): this loftd's sessions, and those of the
 * one it replaced while that one relays some (upgrade.h). */
static void loftd_ring_serving(void *ctx, bool serving)
{
	struct loftd *d = ctx;
	proxy_set_serving(d->proxy, serving);
	upgrade_forward_fence(d, serving, d->proxy->relay_until_ms);
}

static void loftd_ring_deadline(void *ctx, uint64_t fence_at_ms)
{
	struct loftd *d = ctx;
	d->proxy->relay_until_ms = fence_at_ms;
	upgrade_forward_fence(d, d->proxy->serving, fence_at_ms);
}

static void loftd_ring_failed(void *ctx, const char *error)
{
	struct loftd *d = ctx;
	log_error("ring: %s", error);
	service_stopping(d, error);
	d->failed = true;
	event_base_loopexit(d->base, NULL);
}

void loftd_ring_detach(struct loftd *d)
{
	loftd_unshare_limits(d);
	admin_set_ring(d->admin, NULL);
	ring_free(&d->ring);
	log_info("ring: left the ring to the new loftd (its lease and links are its now)");
}

/* A ring of several (ring.etcd set) serves once it has read the ring's
 * state; a ring of one serves at once. */
static int loftd_setup_ring(struct loftd *d)
{
	char *error;
	if (d->cfg->ring.etcd.count == 0) {
		loftd_serve(d);
		return 0;
	}
	static const struct ring_callbacks ring_cb = {
		.ready = loftd_serve,
		.serving = loftd_ring_serving,
		.deadline = loftd_ring_deadline,
		.failed = loftd_ring_failed,
		.report = loftd_report,
	};
	struct ring_handover inherit = {
		d->upgrade.ring_lease, d->upgrade.ring_started, d->ring_peer_fd,
	};
	d->ring_peer_fd = -1;	/* the ring's now */
	d->ring = ring_new(d->base, d->cfg, d->director, &ring_cb, d,
			   inherit.lease != 0 || inherit.peer_fd >= 0 ? &inherit : NULL, &error);
	if (d->ring == NULL) {
		log_error("%s", error);
		free(error);
		return -1;
	}
	admin_set_ring(d->admin, d->ring);
	loftd_share_limits(d);
	log_info("ring: joining through %s", d->cfg->ring.etcd.items[0]);
	return 0;
}

int loftd_client_tls(const struct config *cfg, SSL_CTX **ctx_r, char **error_r)
{
	*ctx_r = NULL;
	if (cfg->tls.cert == NULL)
		return 0;
	*ctx_r = tls_server_ctx_new(cfg->tls.cert, cfg->tls.key, cfg->tls.min_protocol,
				    cfg->tls.ciphers, error_r);
	if (*ctx_r == NULL)
		return -1;
	char *error;
	if (tls_tickets_attach(*ctx_r, cfg->tls.ticket_key_file,
			       (unsigned int)(cfg->tls.ticket_lifetime_ms / 1000), &error) < 0) {
		*error_r = xasprintf("tls.ticket_key_file %s", error);
		free(error);
		SSL_CTX_free(*ctx_r);
		*ctx_r = NULL;
		return -1;
	}
	return 0;
}

static int loftd_setup_tls(struct loftd *d)
{
	char *error;
	const struct config *cfg = d->cfg;

	if (loftd_client_tls(cfg, &d->client_tls, &error) < 0) {
		log_error("%s: %s", config_source(cfg, "tls.cert"), error);
		free(error);
		return -1;
	}
	if (cfg->backend.ssl != CONF_BACKEND_SSL_NO) {
		d->backend_tls = tls_client_ctx_new(cfg->backend.ssl_verify,
						    cfg->backend.ssl_ca_file,
						    cfg->backend.ssl_ciphers, &error);
		if (d->backend_tls == NULL) {
			log_error("%s: %s", config_source(cfg, "backend.ssl_ca_file"), error);
			free(error);
			return -1;
		}
	}
	return 0;
}

static int loftd_setup_listeners(struct loftd *d)
{
	const struct config *cfg = d->cfg;

	d->listeners = xcalloc(cfg->listeners_count, sizeof(*d->listeners));
	d->plisteners = xcalloc(cfg->listeners_count, sizeof(*d->plisteners));
	for (size_t i = 0; i < cfg->listeners_count; i++) {
		const struct config_listener *set = &cfg->listeners[i];
		unsigned int port = config_listener_port(set);
		char *error;
		proxy_listener_init(&d->plisteners[i], d->proxy, set);
		/* after an upgrade, the old loftd's socket: no connection lost */
		d->listeners[i] = listener_adopt(d->base, d->upgrade.fds,
						 d->upgrade.fds_count, set->address,
						 (uint16_t)port, proxy_accept, &d->plisteners[i]);
		if (d->listeners[i] == NULL)
			d->listeners[i] = listener_new(d->base, set->address, (uint16_t)port,
						       proxy_accept, &d->plisteners[i], &error);
		if (d->listeners[i] == NULL) {
			log_error("%s: %s", set->source, error);
			free(error);
			return -1;
		}
		d->listeners_count = i + 1;
		struct net_keepalive ka;
		proxy_keepalive(d->cfg, &ka);
		if (listener_set_keepalive(d->listeners[i], &ka) < 0)
			log_warning("%s: keepalive not set on %s port %u: %m", set->source,
				    set->address, port);
		log_info("listening for %s on %s port %u%s",
			 conf_protocol_names[set->protocol], set->address, port,
			 set->tls ? " (TLS)" : "");
	}
	return 0;
}

/* Two descriptors per session (client and backend): the soft limit is
 * raised as far as limits.max_connections needs and the hard limit (or,
 * for root with CAP_SYS_RESOURCE, the kernel) allows. Returns how many
 * connections fit: when fewer than configured, that is said at start and
 * loftd refuses the rest cleanly instead of failing on EMFILE. */
unsigned int loftd_setup_nofile(const struct config *cfg)
{
	unsigned int max = cfg->limits.max_connections;
	struct rlimit rl;
	if (max == 0 || getrlimit(RLIMIT_NOFILE, &rl) < 0)
		return max;
	rlim_t want = (rlim_t)max * 2 + LOFTD_NOFILE_RESERVE;
	if (rl.rlim_cur < want) {
		struct rlimit raised = { want, MAX(want, rl.rlim_max) };
		if (setrlimit(RLIMIT_NOFILE, &raised) < 0) {
			raised = (struct rlimit){ MIN(want, rl.rlim_max), rl.rlim_max };
			(void)setrlimit(RLIMIT_NOFILE, &raised);
		}
		if (getrlimit(RLIMIT_NOFILE, &rl) < 0)
			return max;
	}
	if (rl.rlim_cur >= want)
		return max;
	unsigned int fit = rl.rlim_cur > 2 * LOFTD_NOFILE_RESERVE ?
		(unsigned int)((rl.rlim_cur - LOFTD_NOFILE_RESERVE) / 2) :
		(unsigned int)(rl.rlim_cur / 4);
	log_warning("RLIMIT_NOFILE is %llu, too low for limits.max_connections = %u: "
		    "connections beyond %u are refused; raise the limit (e.g. "
		    "LimitNOFILE= of the service) or lower limits.max_connections",
		    (unsigned long long)rl.rlim_cur, max, fit);
	return fit;
}

/* "" keeps nothing: runtime host changes end with the process. */
static int loftd_setup_state(struct loftd *d)
{
	const char *dir = d->cfg->state_dir;
	char *error;
	if (d->cfg->ring.etcd.count > 0) {
		/* the ring's host list lives in etcd (doc/ring.md §1) */
		return 0;
	}
	if (dir[0] == '\0') {
		log_info("state_dir is empty: director host changes will not survive a restart");
		return 0;
	}
	if (mkdir(dir, 0750) < 0 && errno != EEXIST) {
		log_error("%s: cannot create state_dir %s: %m",
			  config_source(d->cfg, "state_dir"), dir);
		return -1;
	}
	struct director_store *store = director_state_store_open(dir, d->upgrade.lock_fd,
								 &error);
	d->upgrade.lock_fd = -1;
	if (store == NULL) {
		log_error("%s", error);
		free(error);
		return -1;
	}
	d->state_lock_fd = director_state_store_lock_fd(store);
	if (director_set_store(d->director, store, &error) < 0) {
		log_error("%s", error);
		free(error);
		return -1;
	}
	return 0;
}

/* admin.allow_users as uids: names are looked up now, while the user
 * database is surely readable; numbers are taken as they are. */
static int loftd_admin_uids(const struct config *cfg, uid_t **uids_r)
{
	const struct conf_strlist *users = &cfg->admin.allow_users;
	uid_t *uids = xcalloc(users->count + 1, sizeof(*uids));
	for (size_t i = 0; i < users->count; i++) {
		const char *name = users->items[i];
		char *end;
		unsigned long n = strtoul(name, &end, 10);
		const struct passwd *pw;
		if (name[0] != '\0' && *end == '\0' && n < (uid_t)-1) {
			uids[i] = (uid_t)n;
		} else if ((pw = getpwnam(name)) != NULL) {
			uids[i] = pw->pw_uid;
		} else {
			log_error("%s: admin.allow_users: no such user: %s",
				  config_source(cfg, "admin.allow_users"), name);
			free(uids);
			return -1;
		}
	}
	*uids_r = uids;
	return 0;
}

/* loftadm reload [--upgrade], through the admin socket */
static int loftd_admin_reload(void *ctx, char **error_r)
{
	return loftd_reload(ctx, "loftadm reload", error_r);
}

static void loftd_admin_upgrade(void *ctx, admin_upgrade_done_fn *done, void *done_ctx)
{
	upgrade_start(ctx, "loftadm reload --upgrade", done, done_ctx);
}

/* loftadm auth cache flush: the auth object is the daemon's to reach. */
static size_t loftd_auth_cache_flush(void *ctx, const char *const *users, size_t count)
{
	struct loftd *d = ctx;
	size_t flushed = auth_flush_cache(d->auth, users, count);
	if (count == 0)
		log_info("auth cache flushed: %zu entries", flushed);
	else
		log_info("auth cache flushed for %zu users: %zu entries", count, flushed);
	return flushed;
}

static int loftd_setup_admin(struct loftd *d)
{
	char *error, path[4096];
	uid_t *uids;

	if (mkdir(d->cfg->base_dir, 0755) < 0 && errno != EEXIST) {
		log_error("%s: cannot create base_dir %s: %m",
			  config_source(d->cfg, "base_dir"), d->cfg->base_dir);
		return -1;
	}
	if (loftd_admin_uids(d->cfg, &uids) < 0)
		return -1;
	struct line_server_access access = {
		.uids = uids, .uids_count = d->cfg->admin.allow_users.count,
		.max_clients = d->cfg->admin.max_clients,
	};
	snprintf(path, sizeof(path), "%s/admin", d->cfg->base_dir);
	/* until the ring exists, the director is called by its first listener */
	d->admin = admin_new(d->base, path, &d->proxy->registry, d->director,
			     d->cfg->listeners[0].address, &access, &error);
	if (d->admin != NULL) {
		admin_set_auth_cache_flush(d->admin, loftd_auth_cache_flush, d);
		/* doveadm proxy list|kick -a <base_dir>/ipc */
		snprintf(path, sizeof(path), "%s/ipc", d->cfg->base_dir);
		d->ipc = ipc_new(d->base, path, &d->proxy->registry, &access, &error);
	}
	free(uids);
	if (d->admin == NULL || d->ipc == NULL) {
		log_error("%s", error);
		free(error);
		return -1;
	}
	static const struct admin_daemon_ops daemon_ops = {
		.reload = loftd_admin_reload,
		.upgrade = loftd_admin_upgrade,
	};
	admin_set_daemon_ops(d->admin, &daemon_ops, d);
	return 0;
}

/* A scrape: what the modules counted, read now. */
static void loftd_metrics_render(void *ctx, struct sbuf *out)
{
	struct loftd *d = ctx;
	const struct metrics_sources src = {
		.proxy = d->proxy, .director = d->director, .health = d->health,
		.ring = d->ring, .auth = d->auth, .start_time = d->start_time,
	};
	metrics_render(&src, out);
}

/* metrics.port 0: no endpoint. Bound before the privilege switch, like
 * the listeners. */
int loftd_setup_metrics(struct loftd *d)
{
	const struct config *cfg = d->cfg;
	char *error;
	if (cfg->metrics.port == 0)
		return 0;
	const struct metrics_server_settings set = {
		.address = cfg->metrics.address, .port = (uint16_t)cfg->metrics.port,
		.timeout_ms = cfg->metrics.timeout_ms,
		.render = loftd_metrics_render, .ctx = d,
	};
	d->metrics = metrics_server_new(d->base, &set, &error);
	if (d->metrics == NULL) {
		log_error("%s: metrics: %s", config_source(cfg, "metrics.port"), error);
		free(error);
		return -1;
	}
	log_info("metrics on http://%s:%u/metrics", cfg->metrics.address, cfg->metrics.port);
	return 0;
}

/* Last step of start-up: everything that needs root is done. */
static int loftd_drop_privileges(struct loftd *d)
{
	char *error;
	/* a ring keeps no state file (loftd_setup_state made no state_dir) */
	const char *state_dir = d->cfg->ring.etcd.count > 0 ? "" : d->cfg->state_dir;
	char state_file[4096] = "";
	/* written as root at a first start; a successor started by an upgrade
	 * (as `user`) reads it */
	if (state_dir[0] != '\0') {
		snprintf(state_file, sizeof(state_file), "%s/" DIRECTOR_STATE_FILE, state_dir);
		if (access(state_file, F_OK) < 0)
			state_file[0] = '\0';
	}
	if (privileges_own_dir(&d->priv, d->cfg->base_dir, &error) < 0 ||
	    privileges_own_dir(&d->priv, state_dir, &error) < 0 ||
	    privileges_own_dir(&d->priv, state_file, &error) < 0 ||
	    privileges_drop(&d->priv, &error) < 0) {
		log_error("%s", error);
		free(error);
		return -1;
	}
	if (d->priv.change)
		log_info("running as user %s (uid %u, gid %u)", d->priv.user,
			 (unsigned int)d->priv.uid, (unsigned int)d->priv.gid);
	return 0;
}

static void loftd_setup_signals(struct loftd *d)
{
	signal(SIGPIPE, SIG_IGN);
	d->sigterm = evsignal_new(d->base, SIGTERM, loftd_on_signal, d);
	d->sigint = evsignal_new(d->base, SIGINT, loftd_on_signal, d);
	d->sighup = evsignal_new(d->base, SIGHUP, loftd_on_signal, d);
	d->sigusr2 = evsignal_new(d->base, SIGUSR2, loftd_on_signal, d);
	evsignal_add(d->sigterm, NULL);
	evsignal_add(d->sigint, NULL);
	evsignal_add(d->sighup, NULL);
	evsignal_add(d->sigusr2, NULL);
	struct timeval tv = { LOFTD_EXPIRE_INTERVAL_S, 0 };
	d->expire = event_new(d->base, -1, EV_PERSIST, loftd_expire, d);
	event_add(d->expire, &tv);
}

/* Frees everything, so that leak checkers see a clean exit. */
static void loftd_free(struct loftd *d)
{
	service_free(&d->service);
	metrics_server_free(&d->metrics);
	admin_free(&d->admin);
	ipc_free(&d->ipc);
	health_free(&d->health);
	if (d->ring != NULL)
		loftd_unshare_limits(d);
	ring_free(&d->ring);
	if (d->ring_peer_fd >= 0)
		close(d->ring_peer_fd);
	/* the upgrade's links and counts of the other loftd's sessions,
	 * before the sessions' end would tell the other loftd of each */
	upgrade_free(d);
	/* Sessions go first: auth_free() still delivers the verdicts of
	 * jobs in flight, to the proxy (auth.h: the context outlives auth),
	 * and they must find no session. */
	if (d->proxy != NULL)
		proxy_shutdown(d->proxy, LOFTD_GOODBYE);
	auth_free(&d->auth);
	proxy_free(&d->proxy);
	for (size_t i = 0; i < d->listeners_count; i++)
		listener_free(&d->listeners[i]);
	free(d->listeners);
	free(d->plisteners);
	director_free(&d->director);
	struct event *evs[] = { d->sigterm, d->sigint, d->sighup, d->sigusr2, d->expire,
				d->stop_tick };
	for (size_t i = 0; i < ARRAY_SIZE(evs); i++) {
		if (evs[i] != NULL)
			event_free(evs[i]);
	}
	if (d->base != NULL)
		event_base_free(d->base);
	SSL_CTX_free(d->client_tls);
	SSL_CTX_free(d->backend_tls);
	privileges_free(&d->priv);
	config_unref(&d->cfg);
}

/* The changelist folds the several interest changes a connection goes
 * through in one loop pass into one epoll_ctl() (fewer syscalls per
 * login; docs/BENCHMARKS.md).  Its known hazard is descriptors shared
 * through dup(), which loftd never makes. */
static struct event_base *loftd_event_base(void)
{
	struct event_config *cfg = event_config_new();
	if (cfg == NULL)
		return NULL;
	event_config_set_flag(cfg, EVENT_BASE_FLAG_EPOLL_USE_CHANGELIST);
	struct event_base *base = event_base_new_with_config(cfg);
	event_config_free(cfg);
	/* two priorities: 0 for what must run before any socket's callback
	 * in a loop pass (a ring's fence check after a stall), 1 (the
	 * default) for everything else */
	if (base != NULL && event_base_priority_init(base, 2) < 0) {
		event_base_free(base);
		return NULL;
	}
	return base;
}

int main(int argc, char **argv)
{
	struct loftd d = { 0 };
	struct config_override overrides[LOFTD_MAX_OVERRIDES];
	size_t noverrides = 0;
	const char *config_path = LOFTD_DEFAULT_CONFIG;
	bool print_config = false, debug = false;
	char *error = NULL;
	int c, ret = EXIT_FAILURE;

	log_init("loftd");
	d.start_time = time(NULL);
	d.state_lock_fd = -1;
	d.ring_peer_fd = -1;
	upgrade_init(&d.upgrade, argc, argv);
	while ((c = getopt(argc, argv, "c:o:nkDh")) != -1) {
		switch (c) {
		case 'c':
			config_path = optarg;
			break;
		case 'o': {
			char *eq = strchr(optarg, '=');
			if (eq == NULL || noverrides == LOFTD_MAX_OVERRIDES) {
				fprintf(stderr, "loftd: -o needs key=value\n");
				goto out_args;
			}
			*eq = '\0';
			overrides[noverrides++] = (struct config_override){ optarg, eq + 1 };
			break;
		}
		case 'n':
			print_config = true;
			break;
		case 'D':
			debug = true;
			break;
		case 'k':
			config_print_keys(stdout);
			ret = EXIT_SUCCESS;
			goto out_args;
		case 'h':
			loftd_usage(stdout);
			ret = EXIT_SUCCESS;
			goto out_args;
		default:
			loftd_usage(stderr);
			goto out_args;
		}
	}
	if (optind != argc) {
		loftd_usage(stderr);
		goto out_args;
	}
	d.config_path = config_path;
	d.overrides = overrides;
	d.overrides_count = noverrides;
	d.debug = debug;
	d.cfg = config_load(config_path, overrides, noverrides, &error);
	if (d.cfg == NULL) {
		fprintf(stderr, "loftd: %s\n", error);
		free(error);
		return EXIT_FAILURE;
	}
	log_set_level(debug ? LOG_LEVEL_DEBUG : (enum log_level)d.cfg->log.level);
	d.base = loftd_event_base();
	if (d.base == NULL)
		log_fatal("event_base_new() failed");
	/* the director parses the host list: a bad one is a config error */
	d.director = director_new(d.cfg, d.base, &error);
	if (d.director == NULL) {
		fprintf(stderr, "loftd: %s\n", error);
		free(error);
		loftd_free(&d);
		return EXIT_FAILURE;
	}
	director_set_report(d.director, loftd_report, NULL);
	if (print_config) {
		config_print(d.cfg, stdout);
		loftd_free(&d);
		return EXIT_SUCCESS;
	}
	if (d.cfg->log.target == CONF_LOG_TARGET_SYSLOG &&
	    log_open_syslog(&error) < 0) {
		fprintf(stderr, "loftd: %s: log.target = syslog: %s\n",
			config_source(d.cfg, "log.target"), error);
		free(error);
		loftd_free(&d);
		return EXIT_FAILURE;
	}
	if (privileges_prepare(d.cfg, &d.priv, &error) < 0) {
		fprintf(stderr, "loftd: %s\n", error);
		free(error);
		loftd_free(&d);
		return EXIT_FAILURE;
	}
	unsigned int max_connections = loftd_setup_nofile(d.cfg);
	if (upgrade_is_successor(&d.upgrade) &&
	    (d.upgrade.ring_lease != 0) != (d.cfg->ring.etcd.count > 0)) {
		/* the node's lease would be renewed by nobody, or its sessions
		 * routed apart from the ring's: a restart's work */
		log_error("upgrade: the loftd this one replaces %s a ring's node and this "
			  "configuration %s: restart loftd to change that",
			  d.upgrade.ring_lease != 0 ? "is" : "is not",
			  d.upgrade.ring_lease != 0 ? "has no ring.etcd" : "sets ring.etcd");
		goto out;
	}
	if (loftd_setup_state(&d) < 0 || upgrade_take_users(&d) < 0 ||
	    loftd_setup_tls(&d) < 0)
		goto out;
	d.auth = auth_new(d.cfg, d.base, &error);
	if (d.auth == NULL) {
		log_error("%s", error);
		free(error);
		goto out;
	}
	auth_set_notice_callback(d.auth, loftd_report, NULL);
	d.proxy = proxy_new(d.base, d.cfg, d.auth, d.director, d.client_tls,
			    d.backend_tls);
	d.proxy->max_connections = max_connections;
	static const struct director_callbacks director_cb = {
		.kill = loftd_director_kill,
		.kick = loftd_director_kick,
		.resume = loftd_director_resume,
	};
	director_set_callbacks(d.director, &director_cb, &d);
	d.health = health_new(d.base, d.cfg, d.director, d.backend_tls,
			      loftd_health_verdict, &d);
	if (d.health != NULL)
		director_health_enable(d.director);
	if (loftd_setup_listeners(&d) < 0)
		goto out;
	if (d.cfg->ring.etcd.count > 0) {
		struct sockaddr_storage ss;
		d.ring_peer_fd = listener_take_fd(d.upgrade.fds, d.upgrade.fds_count,
						  ring_config_address(d.cfg),
						  (uint16_t)d.cfg->ring.port, &ss);
	}
	upgrade_close_unused(&d.upgrade);
	if (loftd_setup_admin(&d) < 0 ||
	    loftd_setup_metrics(&d) < 0 || loftd_drop_privileges(&d) < 0)
		goto out;
	loftd_setup_signals(&d);
	if (service_start(&d) < 0 || loftd_setup_ring(&d) < 0)
		goto out;
	log_info("loftd started (config %s, %zu backends)", config_path,
		 director_hosts(d.director)->count);
	event_base_dispatch(d.base);
	log_info("loftd stopped");
	ret = d.failed ? EXIT_FAILURE : EXIT_SUCCESS;
out:
	loftd_free(&d);
	return ret;
out_args:
	upgrade_free(&d);
	return ret;
}
