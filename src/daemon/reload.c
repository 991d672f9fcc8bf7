/* Reloading on SIGHUP: a new configuration (restart-only keys keep their
 * running values) replaces the current one for everything that starts
 * from now on; sessions keep the one they started with. */
#include "daemon/reload.h"

#include <stdlib.h>
#include <string.h>

#include "auth/auth.h"
#include "common/log.h"
#include "common/xmalloc.h"
#include "core/tls.h"
#include "daemon/loftd.h"
#include "daemon/service.h"
#include "proxy/health.h"
#include "proxy/proxy.h"

struct reload_count {
	size_t applied, restart;
	bool passdb_changed;
};

static void reload_report(const char *key, bool applied, void *ctx)
{
	struct reload_count *count = ctx;
	if (strcmp(key, "passdb") == 0)
		count->passdb_changed = true;
	if (applied) {
		log_info("reload: %s changed", key);
		count->applied++;
	} else {
		log_warning("reload: %s changed, but only a restart applies it; "
			    "loftd keeps the running value", key);
		count->restart++;
	}
}

static bool reload_same(const char *a, const char *b)
{
	return a == NULL || b == NULL ? a == b : strcmp(a, b) == 0;
}

/* -1: logged, and *error_r says why (the caller frees). */
static int loftd_reload_failed(char *error, char **error_r)
{
	*error_r = xasprintf("reload failed, the running configuration stays: %s", error);
	free(error);
	log_error("%s", *error_r);
	return -1;
}

static int loftd_reload_config(struct loftd *d, const char *why, char **error_r)
{
	char *error = NULL;
	log_info("%s: reloading %s", why, d->config_path);
	struct config *fresh = config_load(d->config_path, d->overrides,
					   d->overrides_count, &error);
	if (fresh == NULL)
		return loftd_reload_failed(error, error_r);
	/* certificates are read again even when their paths did not change
	 * (a renewed certificate in the same file) */
	SSL_CTX *client_tls;
	if (loftd_client_tls(fresh, &client_tls, &error) < 0) {
		config_free(&fresh);
		return loftd_reload_failed(error, error_r);
	}
	/* TLS 1.2 session ids survive, as tickets do (same keys), unless
	 * the protocols or ciphers they were agreed under changed */
	if (fresh->tls.min_protocol == d->cfg->tls.min_protocol &&
	    reload_same(fresh->tls.ciphers, d->cfg->tls.ciphers))
		tls_server_ctx_copy_sessions(client_tls, d->client_tls);
	struct reload_count count = { 0, 0, false };
	config_reload_merge(d->cfg, fresh, reload_report, &count);
	/* from here on fresh is what runs; the old configuration goes with
	 * its last holder (a session that started with it) */
	struct config *old = d->cfg;
	d->cfg = fresh;
	/* sessions hold their own references to the old context */
	SSL_CTX_free(d->client_tls);
	d->client_tls = client_tls;
	d->proxy->client_tls = client_tls;
	proxy_set_config(d->proxy, fresh);
	auth_apply_config(d->auth, fresh);
	/* the passdbs themselves change only with a restart, but an edited
	 * passdb section mostly means the users behind it changed (moved to
	 * another directory, renamed): their cached answers go now, not
	 * after auth.cache.ttl (Dovecot's auth process, restarted by a
	 * reload, loses its cache too) */
	if (count.passdb_changed)
		log_info("reload: passdb changed: auth cache flushed (%zu entries)",
			 auth_flush_cache(d->auth, NULL, 0));
	health_set_config(d->health, fresh);
	/* the listeners did not change (only a restart changes them): their
	 * settings are read from the new copy */
	for (size_t i = 0; i < d->listeners_count; i++)
		d->plisteners[i].set = &fresh->listeners[i];
	d->proxy->max_connections = loftd_setup_nofile(fresh);
	if (!d->debug)
		log_set_level((enum log_level)fresh->log.level);
	config_unref(&old);
	log_info("reload done: %zu settings changed, %zu need a restart; TLS "
		 "certificates read again", count.applied, count.restart);
	return 0;
}

int loftd_reload(struct loftd *d, const char *why, char **error_r)
{
	service_reloading(d);
	int ret = loftd_reload_config(d, why, error_r);
	service_reloaded(d);
	return ret;
}
