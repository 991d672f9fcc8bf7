/* The wiring of limits counted over a director ring (doc/ring.md §15):
 * the registry tells the ring which (user, client address) counts
 * changed, the ring asks the registry for them when it sends, the proxy
 * adds the other nodes' counts at login and has a raised penalty sent,
 * and the other nodes' failures raise the penalty here. */
#include "daemon/shared_limits.h"

#include <strings.h>

#include "common/hmap.h"
#include "proxy/proxy.h"
#include "registry/registry.h"
#include "ring/ring.h"

static void shared_limits_changed(void *ctx, const char *user, const struct ipaddr *ip)
{
	struct loftd *d = ctx;
	ring_limits_changed(d->ring, user, ip);
}

static unsigned int shared_limits_remote(void *ctx, const char *user, const struct ipaddr *ip)
{
	struct loftd *d = ctx;
	return ring_limits_remote_user_ip(d->ring, user, ip);
}

static void shared_limits_failure(void *ctx, const struct ipaddr *ip)
{
	struct loftd *d = ctx;
	ring_limits_failure(d->ring, ip);
}

static unsigned int shared_limits_count(void *ctx, const char *user, const struct ipaddr *ip)
{
	struct loftd *d = ctx;
	return (unsigned int)registry_user_ip_count(&d->proxy->registry, user, ip);
}

/* Each user's sessions, counted per address (a user has few). */
static void shared_limits_foreach(void *ctx, void (*cb)(void *cb_ctx, const char *user,
							const struct ipaddr *ip,
							unsigned int count),
				  void *cb_ctx)
{
	struct loftd *d = ctx;
	struct hmap_node *n;
	HMAP_FOR_EACH(n, &d->proxy->registry.users) {
		const struct registry_user *u = CONTAINER_OF(n, struct registry_user, node);
		for (struct list_node *a = u->sessions.head; a != NULL; a = a->next) {
			const struct registry_entry *e =
				CONTAINER_OF(a, struct registry_entry, user_node);
			bool first = true;
			for (struct list_node *b = u->sessions.head; b != a && first; b = b->next)
				first = !ipaddr_equal(&CONTAINER_OF(b, struct registry_entry,
								    user_node)->client_ip,
						      &e->client_ip);
			if (first)
				cb(cb_ctx, u->name, &e->client_ip,
				   shared_limits_count(d, u->name, &e->client_ip));
		}
	}
}

static void shared_limits_remote_failures(void *ctx, const struct ipaddr *ip,
					  unsigned int count)
{
	struct loftd *d = ctx;
	proxy_remote_failures(d->proxy, ip, count);
}

void loftd_share_limits(struct loftd *d)
{
	static const struct ring_limits_source source = {
		.count = shared_limits_count,
		.foreach_user_ip = shared_limits_foreach,
		.remote_failures = shared_limits_remote_failures,
	};
	const struct proxy_shared_limits shared = {
		.user_ip_sessions = shared_limits_remote,
		.failure = shared_limits_failure,
		.ctx = d,
	};
	d->proxy->registry.user_ip_changed = shared_limits_changed;
	d->proxy->registry.changed_ctx = d;
	proxy_set_shared_limits(d->proxy, &shared);
	ring_limits_set_source(d->ring, &source, d);
}

void loftd_unshare_limits(struct loftd *d)
{
	static const struct proxy_shared_limits none = { 0 };
	d->proxy->registry.user_ip_changed = NULL;
	proxy_set_shared_limits(d->proxy, &none);
}
