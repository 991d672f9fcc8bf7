/* The proxy: what every session shares (config, auth, director, registry,
 * TLS contexts) and the entry points the daemon wires to listeners. */
#ifndef LOFT_PROXY_PROXY_H
#define LOFT_PROXY_PROXY_H

#include <openssl/ssl.h>
#include <stdbool.h>
#include <stdint.h>
#include <time.h>

#include "common/list.h"
#include "conf/config.h"
#include "core/listener.h"
#include "proto/front.h"
#include "proxy/ip_limit.h"
#include "registry/registry.h"

struct event_base;
struct auth;
struct director;
struct penalty;
struct proxy_protocol;

struct relay_pools;

struct proxy {
	struct event_base *base;
	struct config *cfg;	/* the current one (a reference): what new
				 * sessions start with and take a reference
				 * to (LMTP sessions read it as they go) */
	struct auth *auth;
	struct director *director;
	struct registry registry;
	struct relay_pools *relay_pools;	/* this loop's idle pipes, buffers */
	bool serving;			/* false: fenced, logins are refused */
	SSL_CTX *client_tls;	/* NULL without tls.cert */
	SSL_CTX *backend_tls;	/* NULL when backend.ssl = no */
	struct front_params front_params;
	struct penalty *penalty;	/* NULL when auth.penalty is off */
	uint64_t next_id;
	size_t input_limit;	/* client bytes buffered before login */
	struct list header_waits;	/* PROXY protocol headers still to come */
	unsigned int max_connections;	/* limits.max_connections, or fewer
					 * when descriptors are short (the
					 * daemon decides); 0: none */
	struct ip_limit prelogin;	/* limits.max_prelogin_per_ip */
	time_t refusal_logged;		/* refusals are logged once a second */
	unsigned int refusals_unlogged;
	char hostname[256];		/* login.hostname, or the system's */
};

/* What a listener serves; the accept callback's context. */
struct proxy_listener {
	struct proxy *proxy;
	const struct config_listener *set;
	const struct proxy_protocol *protocol;
};

/* In login.trusted_networks. */
bool proxy_trusted(const struct config *cfg, const struct ipaddr *ip);

/* A pre-login slot of the client's address (limits.max_prelogin_per_ip;
 * a trusted client, as proxy_trusted() says, is not counted). On false
 * the connection was refused with the protocol's "try later" line and
 * closed. *taken_r: a slot is held and must go back through
 * proxy_prelogin_release(). */
bool proxy_prelogin_admit(struct proxy_listener *pl, const struct listener_accept *acc,
			  bool trusted, bool *taken_r);
void proxy_prelogin_release(struct proxy *proxy, const struct ipaddr *ip);

/* Session ids as 16 hex digits, in logs, who -1 and to backends. */
#define PROXY_ID_STRLEN 17

/* A new session's registry entry: the next id (also written to id_str),
 * the service, the client's address, pre-login, started now. The owner
 * sets the callbacks and adds it to the registry. */
void proxy_entry_init(struct proxy *proxy, struct registry_entry *reg,
		      char id_str[PROXY_ID_STRLEN], const char *service,
		      const struct listener_accept *acc);

/* Takes a reference to cfg. */
struct proxy *proxy_new(struct event_base *base, struct config *cfg,
			struct auth *auth, struct director *director,
			SSL_CTX *client_tls, SSL_CTX *backend_tls);
/* After a reload: new sessions start with cfg (the proxy takes a
 * reference and drops the old one's), and the proxy's own settings
 * derive from it. Running sessions keep theirs. */
void proxy_set_config(struct proxy *proxy, struct config *cfg);
/* Closes every session with the protocol's goodbye, and every
 * connection still sending its PROXY protocol header. */
void proxy_shutdown(struct proxy *proxy, const char *text);
/* The first step of a spread shutdown: the same for every session that
 * is not proxying yet (nothing of a user's work is lost, and none may
 * log in meanwhile). */
void proxy_shutdown_logins(struct proxy *proxy, const char *text);
/* Closes up to n proxying sessions, the oldest first. */
void proxy_shutdown_some(struct proxy *proxy, const char *text, size_t n);
/* Once a second: forgets stale auth penalties. */
void proxy_expire(struct proxy *proxy, time_t now);

/* A director cut off from its ring stops serving (doc/ring.md §6): new
 * logins and LMTP recipients get a temporary failure and proxied sessions
 * are closed with a goodbye, so clients go to another director; serving
 * again takes new logins. */
void proxy_set_serving(struct proxy *proxy, bool serving);

/* limits.keepalive and limits.tcp_user_timeout for a socket. */
void proxy_keepalive(const struct config *cfg, struct net_keepalive *ka_r);

/* The director's callbacks (ctx: the proxy): close the sessions of a user
 * hash routed in a tag for a move, close a user's sessions for a director
 * kick (the name, or a user_* field's value, exactly), and let a login
 * that waited for a move go on. */
size_t proxy_director_kill(void *ctx, uint16_t tag, uint32_t hash);
size_t proxy_director_kick(void *ctx, const char *field, const char *value);
void proxy_director_resume(void *ctx, uint64_t session_id);
void proxy_free(struct proxy **proxy);

void proxy_listener_init(struct proxy_listener *pl, struct proxy *proxy,
			 const struct config_listener *set);
listener_accept_cb proxy_accept;

#endif
