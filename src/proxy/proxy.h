/* The proxy: what every session shares (config, auth, director, registry,
 * TLS contexts) and the entry points the daemon wires to listeners. */
#ifndef LOFT_PROXY_PROXY_H
#define LOFT_PROXY_PROXY_H

#include <openssl/ssl.h>
#include <stdbool.h>
#include <stdint.h>
#include <time.h>

#include "common/histogram.h"
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

/* How a login ended (loft_logins_total): one result per set of
 * credentials a client sent, except when the client left or loftd
 * stopped meanwhile. */
enum proxy_login_result {
	PROXY_LOGIN_OK,			/* proxying */
	PROXY_LOGIN_AUTH_FAILED,	/* wrong credentials (passdb or backend), nologin */
	PROXY_LOGIN_BACKEND_FAILED,	/* the backend unreachable, failing, or refusing */
	PROXY_LOGIN_LIMIT,		/* login.max_userip_connections, auth.max_queue */
	PROXY_LOGIN_TIMEOUT,		/* login.timeout passed during the login */
	PROXY_LOGIN_ERROR,		/* the passdb failed, fenced, no host, a loop */
};
#define PROXY_LOGIN_RESULTS (PROXY_LOGIN_ERROR + 1)
extern const char *const proxy_login_result_names[PROXY_LOGIN_RESULTS];

/* A connection accepted, or refused by limits.max_connections or
 * limits.max_prelogin_per_ip (loft_connections_total). */
enum proxy_conn_result {
	PROXY_CONN_ACCEPTED,
	PROXY_CONN_LIMIT,
};
#define PROXY_CONN_RESULTS (PROXY_CONN_LIMIT + 1)
extern const char *const proxy_conn_result_names[PROXY_CONN_RESULTS];

/* The session state machines' states, by name (session_private.h,
 * lmtp_session.c), for the sessions gauge. */
#define PROXY_SESSION_STATES 7
extern const char *const proxy_session_state_names[PROXY_SESSION_STATES];
#define PROXY_LMTP_STATES 4
extern const char *const proxy_lmtp_state_names[PROXY_LMTP_STATES];

/* What sessions count as they go: plain integers in the proxy, read at
 * scrape time by src/metrics (the login path never calls it). Counters
 * only grow; the session gauges follow every state change. */
struct proxy_stats {
	uint64_t connections[CONF_PROTOCOLS][PROXY_CONN_RESULTS];
	uint64_t logins[CONF_PROTOCOLS][PROXY_LOGIN_RESULTS];
	uint64_t sessions[CONF_PROTOCOLS][PROXY_SESSION_STATES];	/* gauge */
	uint64_t lmtp_sessions[PROXY_LMTP_STATES];		/* gauge */
	uint64_t kicks;			/* sessions kicked (any kick, a move, fencing) */
	struct histogram login_latency;		/* accept to proxying */
	struct histogram backend_login_latency;	/* connect to logged in */
	/* backend connections to addresses outside the director's host
	 * list (a passdb's host); those inside count in the host */
	uint64_t other_backend_connections;
	uint64_t other_backend_failures;
};

/* What other nodes of a director ring count (doc/ring.md §15): the
 * daemon wires them to the ring; without one, all NULL. */
struct proxy_shared_limits {
	/* sessions of (user, ip) on the other nodes, as they last said */
	unsigned int (*user_ip_sessions)(void *ctx, const char *user,
					 const struct ipaddr *ip);
	/* a failure here raised ip's penalty: the others are told */
	void (*failure)(void *ctx, const struct ipaddr *ip);
	void *ctx;
};

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
	/* a ring in fence mode: past this monotonic ms nothing is relayed
	 * (the fence is due; 0: no limit), see session_relay_pump() */
	uint64_t relay_until_ms;
	SSL_CTX *client_tls;	/* NULL without tls.cert */
	SSL_CTX *backend_tls;	/* NULL when backend.ssl = no */
	struct front_params front_params;
	struct penalty *penalty;	/* NULL when auth.penalty is off */
	struct proxy_shared_limits shared;
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
	struct proxy_stats stats;
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
/* The first id of a process: random, so that the nodes of a ring started
 * in the same second, a restart and an upgrade's successor all count
 * from their own place (a backend logs the id as its session=, and an
 * admin greps the ring's logs for it). Below 2^62: a counter never
 * reaches the bench hooks' ids (top bit set, admin/cmd_bench.c). */
#define PROXY_ID_SEED_MASK ((UINT64_C(1) << 62) - 1)
uint64_t proxy_id_seed(void);

/* A new session's registry entry: the next id (also written to id_str),
 * the service, the client's address, pre-login, started now. The owner
 * sets the callbacks and adds it to the registry. */
void proxy_entry_init(struct proxy *proxy, struct registry_entry *reg,
		      char id_str[PROXY_ID_STRLEN], const char *service,
		      const struct listener_accept *acc);

/* The ring's counts take part in the limits from now on. */
void proxy_set_shared_limits(struct proxy *proxy, const struct proxy_shared_limits *shared);
/* count auth failures from ip that another node saw: the penalty rises. */
void proxy_remote_failures(struct proxy *proxy, const struct ipaddr *ip, unsigned int count);

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
#define PROXY_FENCED_TEXT "Director is cut off from its ring, please reconnect."

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

/* Counts a backend connection (a login's or an LMTP delivery's) to the
 * host at ip, and whether it failed: in the director's host (found by
 * address) or in other_backend_*. For the paths that do not hold the
 * host; a login the director routed counts through its host at once. */
void proxy_count_backend(struct proxy *proxy, const struct ipaddr *ip, bool failed);

void proxy_listener_init(struct proxy_listener *pl, struct proxy *proxy,
			 const struct config_listener *set);
listener_accept_cb proxy_accept;

#endif
