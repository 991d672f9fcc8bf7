/* Reloading on SIGHUP. */
#include "daemon/reload.h"

#include <stdlib.h>

#include "common/log.h"
#include "common/xmalloc.h"
#include "daemon/loftd.h"
#include "proxy/proxy.h"

struct reload_count {
	size_t applied, restart;
};

static void reload_report(const char *key, bool applied, void *ctx)
{
	struct reload_count *count = ctx;
	if (applied) {
		log_info("reload: %s changed", key);
		count->applied++;
	} else {
		log_warning("reload: %s changed, but only a restart applies it; "
			    "loftd keeps the running value", key);
		count->restart++;
	}
}

void loftd_reload(struct loftd *d)
{
	char *error = NULL;
	log_info("SIGHUP: reloading %s", d->config_path);
	struct config *fresh = config_load(d->config_path, d->overrides,
					   d->overrides_count, &error);
	if (fresh == NULL) {
		log_error("reload failed, the running configuration stays: %s", error);
		free(error);
		return;
	}
	/* certificates are read again even when their paths did not change
	 * (a renewed certificate in the same file) */
	SSL_CTX *client_tls;
	if (loftd_client_tls(fresh, &client_tls, &error) < 0) {
		log_error("reload failed, the running configuration stays: %s", error);
		free(error);
		config_free(&fresh);
		return;
	}
	struct reload_count count = { 0, 0 };
	config_reload_apply(d->cfg, fresh, reload_report, &count);
	/* sessions hold their own references to the old context */
	SSL_CTX_free(d->client_tls);
	d->client_tls = client_tls;
	d->proxy->client_tls = client_tls;
	proxy_apply_config(d->proxy);
	d->proxy->max_connections = loftd_setup_nofile(d->cfg);
	if (!d->debug)
		log_set_level((enum log_level)d->cfg->log.level);
	d->retired = xrealloc(d->retired, (d->retired_count + 1) * sizeof(*d->retired));
	d->retired[d->retired_count++] = fresh;
	log_info("reload done: %zu settings changed, %zu need a restart; TLS "
		 "certificates read again", count.applied, count.restart);
}
