/* Shared proxy state and the accept entry point. */
#include "proxy/proxy.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include "auth/auth.h"
#include "auth/penalty.h"
#include "common/clock.h"
#include "common/log.h"
#include "common/xmalloc.h"
#include "core/relay.h"
#include "director/director.h"
#include "proto/sasl.h"
#include "proxy/header_wait.h"
#include "proxy/protocols.h"
#include "registry/filter.h"

const char *const proxy_login_result_names[PROXY_LOGIN_RESULTS] = {
	[PROXY_LOGIN_OK] = "ok",
	[PROXY_LOGIN_AUTH_FAILED] = "auth_failed",
	[PROXY_LOGIN_BACKEND_FAILED] = "backend_failed",
	[PROXY_LOGIN_LIMIT] = "limit",
	[PROXY_LOGIN_TIMEOUT] = "timeout",
	[PROXY_LOGIN_ERROR] = "error",
};

const char *const proxy_conn_result_names[PROXY_CONN_RESULTS] = {
	[PROXY_CONN_ACCEPTED] = "accepted",
	[PROXY_CONN_LIMIT] = "limit",
};

/* auth.passthrough_mechanisms as sasl.h's bits; config_validate()
 * checked the names. */
static unsigned int proxy_passthrough_mask(const struct config *cfg)
{
	unsigned int mask;
	const char *bad;
	const struct conf_strlist *l = &cfg->auth.passthrough_mechanisms;
	return sasl_passthrough_mask(l->items, l->count, &mask, &bad) < 0 ? 0 : mask;
}

/* What the proxy derives from the configuration: at start and after a
 * reload (sessions already running keep what they copied). */

static void proxy_apply_config(struct proxy *p)
{
	const struct config *cfg = p->cfg;
	if (cfg->login.hostname[0] != '\0')
		snprintf(p->hostname, sizeof(p->hostname), "%s", cfg->login.hostname);
	else if (gethostname(p->hostname, sizeof(p->hostname) - 1) < 0)
		snprintf(p->hostname, sizeof(p->hostname), "localhost");
	p->front_params = (struct front_params){
		.greeting = cfg->login.greeting,
		.hostname = p->hostname,
		.max_line = cfg->login.max_line_length,
		.max_literal = cfg->login.max_literal_size,
		.max_bad_commands = cfg->login.max_bad_commands,
		.disable_plaintext_auth = cfg->login.disable_plaintext_auth,
		.passthrough_mechs = proxy_passthrough_mask(cfg),
		.sieve_capability = cfg->managesieve.sieve_capability,
		.notify_capability = cfg->managesieve.notify_capability,
	};
	/* room for a LOGIN with two literals and its line segments */
	p->input_limit = 2 * cfg->login.max_line_length +
		2 * cfg->login.max_literal_size;
	if (cfg->auth.penalty && p->penalty == NULL) {
		p->penalty = penalty_new();
		penalty_set_raised_hook(p->penalty, p->shared.failure, p->shared.ctx);
	} else if (!cfg->auth.penalty)
		penalty_free(&p->penalty);
	/* the failures of logins whose client left count there too */
	if (p->auth != NULL)
		auth_set_penalty(p->auth, p->penalty);
	p->prelogin.max = cfg->limits.max_prelogin_per_ip;
}

void proxy_set_shared_limits(struct proxy *p, const struct proxy_shared_limits *shared)
{
	p->shared = *shared;
	if (p->penalty != NULL)
		penalty_set_raised_hook(p->penalty, shared->failure, shared->ctx);
}

void proxy_remote_failures(struct proxy *p, const struct ipaddr *ip, unsigned int count)
{
	if (p->penalty != NULL)
		penalty_failure_remote(p->penalty, ip, count, time(NULL));
}

struct proxy *proxy_new(struct event_base *base, struct config *cfg,
			struct auth *auth, struct director *director,
			SSL_CTX *client_tls, SSL_CTX *backend_tls)
{
	struct proxy *p = xcalloc(1, sizeof(*p));
	p->base = base;
	p->cfg = config_ref(cfg);
	p->auth = auth;
	p->director = director;
	p->client_tls = client_tls;
	p->backend_tls = backend_tls;
	registry_init(&p->registry);
	p->relay_pools = relay_pools_new();
	p->serving = true;
	list_init(&p->header_waits);
	p->max_connections = cfg->limits.max_connections;
	ip_limit_init(&p->prelogin, cfg->limits.max_prelogin_per_ip);
	p->next_id = proxy_id_seed();
	proxy_apply_config(p);
	return p;
}

void proxy_set_config(struct proxy *p, struct config *cfg)
{
	struct config *old = p->cfg;
	p->cfg = config_ref(cfg);
	proxy_apply_config(p);
	config_unref(&old);
}

void proxy_expire(struct proxy *p, time_t now)
{
	if (p->penalty != NULL)
		penalty_expire(p->penalty, now);
}

void proxy_shutdown_some(struct proxy *p, const char *text, size_t n)
{
	struct registry_entry *e;
	while (n-- > 0 && (e = registry_first(&p->registry)) != NULL)
		e->shutdown(e, text);
}

void proxy_shutdown_logins(struct proxy *p, const char *text)
{
	header_waits_free(p);
	struct registry_entry *e = registry_first(&p->registry), *next;
	for (; e != NULL; e = next) {
		/* shutdown closes e at once; the next entry stays valid */
		next = registry_entry_of(e->node.next);
		if (e->state != REGISTRY_STATE_PROXYING)
			e->shutdown(e, text);
	}
}

void proxy_shutdown(struct proxy *p, const char *text)
{
	header_waits_free(p);
	proxy_shutdown_some(p, text, SIZE_MAX);
}

void proxy_free(struct proxy **pp)
{
	struct proxy *p = *pp;
	if (p == NULL)
		return;
	proxy_shutdown(p, "Server shutting down.");
	registry_deinit(&p->registry);
	ip_limit_deinit(&p->prelogin);
	penalty_free(&p->penalty);
	relay_pools_free(&p->relay_pools);
	config_unref(&p->cfg);
	free(p);
	*pp = NULL;
}

void proxy_keepalive(const struct config *cfg, struct net_keepalive *ka_r)
{
	ka_r->idle_s = (unsigned int)(cfg->limits.keepalive.idle_ms / 1000);
	ka_r->interval_s = (unsigned int)(cfg->limits.keepalive.interval_ms / 1000);
	ka_r->count = cfg->limits.keepalive.count;
	ka_r->user_timeout_ms = (unsigned int)cfg->limits.tcp_user_timeout_ms;
}

struct proxy_kick_ctx {
	const char *text;
	size_t count;
};

static void proxy_kick_one(struct registry_entry *e, void *ctx)
{
	struct proxy_kick_ctx *k = ctx;
	if (registry_kick(e, k->text))
		k->count++;
}

size_t proxy_director_kill(void *ctx, uint16_t tag, uint32_t hash)
{
	struct proxy *p = ctx;
	struct registry_filter f = {
		.have_hash = true, .hash = hash, .have_tag = true, .tag = tag,
	};
	struct proxy_kick_ctx k = { "Kicked via director.", 0 };
	registry_match(&p->registry, &f, proxy_kick_one, &k);
	return k.count;
}

size_t proxy_director_kick(void *ctx, const char *field, const char *value)
{
	struct proxy *p = ctx;
	const char *names[1] = { value };
	/* §2.9: exact names, no wildcards */
	struct registry_filter f = {
		.user_masks = names, .user_masks_count = 1, .alt_field = field,
		.exact = true,
	};
	struct proxy_kick_ctx k = { "Kicked by admin.", 0 };
	registry_match(&p->registry, &f, proxy_kick_one, &k);
	return k.count;
}

void proxy_set_serving(struct proxy *p, bool serving)
{
	p->serving = serving;
	if (serving)
		return;
	struct registry_filter f = { .proxied = true };
	struct proxy_kick_ctx k = { PROXY_FENCED_TEXT, 0 };
	registry_match(&p->registry, &f, proxy_kick_one, &k);
}

void proxy_director_resume(void *ctx, uint64_t session_id)
{
	struct proxy *p = ctx;
	struct registry_entry *e = registry_find(&p->registry, session_id);
	if (e != NULL)
		if (e->resume != NULL)
			e->resume(e);
}

void proxy_count_backend(struct proxy *p, const struct ipaddr *ip, bool failed)
{
	/* a binary search of a few hosts; only logins routed by a passdb's
	 * host, LMTP, and failures pay it */
	const struct director_host *h = director_host_list_find(director_hosts(p->director),
								ip);
	if (h != NULL) {
		if (failed)
			h->stats->failures++;
		else
			h->stats->connections++;
	} else if (failed) {
		p->stats.other_backend_failures++;
	} else {
		p->stats.other_backend_connections++;
	}
}

void proxy_listener_init(struct proxy_listener *pl, struct proxy *proxy,
			 const struct config_listener *set)
{
	pl->proxy = proxy;
	pl->set = set;
	pl->protocol = proxy_protocol_get(set->protocol);
}

bool proxy_trusted(const struct config *cfg, const struct ipaddr *ip)
{
	const struct conf_cidrlist *nets = &cfg->login.trusted_networks;
	for (size_t i = 0; i < nets->count; i++) {
		if (cidr_match(&nets->items[i], ip))
			return true;
	}
	return false;
}

uint64_t proxy_id_seed(void)
{
	uint64_t seed;
	if (getrandom(&seed, sizeof(seed), 0) != (ssize_t)sizeof(seed)) {
		/* no kernel randomness (not on a kernel loftd runs on): the
		 * clock's nanoseconds and the pid still part two processes */
		seed = (uint64_t)clock_wall_ms() << 20 ^ (uint64_t)getpid() << 40 ^
		       clock_monotonic_us();
	}
	return seed & PROXY_ID_SEED_MASK;
}

void proxy_entry_init(struct proxy *proxy, struct registry_entry *reg,
		      char id_str[PROXY_ID_STRLEN], const char *service,
		      const struct listener_accept *acc)
{
	reg->id = ++proxy->next_id;
	snprintf(id_str, PROXY_ID_STRLEN, "%016llx", (unsigned long long)reg->id);
	reg->service = service;
	reg->client_ip = acc->peer_ip;
	reg->client_port = acc->peer_port;
	reg->state = REGISTRY_STATE_PRELOGIN;
	reg->start_ms = clock_wall_ms();
}

/* Says "try later" where the protocol allows it (not on a TLS listener:
 * no handshake yet) and closes; logs at most once a second. */
static void proxy_refuse(struct proxy_listener *pl, const struct listener_accept *acc,
			 const char *text, const char *why)
{
	struct proxy *p = pl->proxy;
	p->stats.connections[pl->set->protocol][PROXY_CONN_LIMIT]++;
	if (!pl->set->tls) {
		char line[256];
		int n = snprintf(line, sizeof(line), "%s%s%s", pl->protocol->refuse_prefix,
				 text, pl->protocol->refuse_suffix);
		(void)send(acc->fd, line, (size_t)n, MSG_DONTWAIT | MSG_NOSIGNAL);
	}
	close(acc->fd);
	time_t now = time(NULL);
	if (now == p->refusal_logged) {
		p->refusals_unlogged++;
		return;
	}
	char ip[IPADDR_STRLEN];
	log_warning("refused a %s connection from %s:%u: %s%s", pl->protocol->name,
		    ipaddr_to_str(&acc->peer_ip, ip), acc->peer_port, why,
		    p->refusals_unlogged > 0 ? " (and more refusals not logged)" : "");
	p->refusal_logged = now;
	p->refusals_unlogged = 0;
}

bool proxy_prelogin_admit(struct proxy_listener *pl, const struct listener_accept *acc,
			  bool trusted, bool *taken_r)
{
	struct proxy *p = pl->proxy;
	*taken_r = false;
	if (p->prelogin.max == 0 || trusted)
		return true;
	if (!ip_limit_take(&p->prelogin, &acc->peer_ip)) {
		proxy_refuse(pl, acc, "Too many connections from your address, try again later.",
			     "limits.max_prelogin_per_ip reached");
		return false;
	}
	*taken_r = true;
	return true;
}

void proxy_prelogin_release(struct proxy *p, const struct ipaddr *ip)
{
	ip_limit_release(&p->prelogin, ip);
}

void proxy_accept(const struct listener_accept *acc, void *ctx)
{
	struct proxy_listener *pl = ctx;
	struct proxy *p = pl->proxy;
	unsigned int max = p->max_connections;
	if (max != 0 && registry_count(&p->registry) + p->header_waits.count >= max) {
		proxy_refuse(pl, acc, "Server is busy, try again later.",
			     "limits.max_connections reached");
		return;
	}
	if (!pl->set->proxy_protocol) {
		pl->protocol->start(pl, acc);
		return;
	}
	/* only a balancer we trust may tell us who the client is */
	if (!proxy_trusted(p->cfg, &acc->peer_ip)) {
		char ip[IPADDR_STRLEN];
		log_warning("%s: PROXY protocol listener refused %s:%u: not in "
			    "login.trusted_networks", pl->set->source,
			    ipaddr_to_str(&acc->peer_ip, ip), acc->peer_port);
		close(acc->fd);
		return;
	}
	header_wait_start(pl, acc);
}
