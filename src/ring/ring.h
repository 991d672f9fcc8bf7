/* The director ring (doc/ring.md): this loftd as one node of several that
 * share one routing state in etcd. The ring
 *   - checks that every node routes with the same settings (P/settings);
 *   - keeps this node's membership (P/members/<name>) on an etcd lease it
 *     renews, and fences the node when it cannot (ring.partition);
 *   - reads the ring's whole state at start and follows it with a watch,
 *     before the node serves (ready);
 *   - answers the ring commands (DIRECTOR-LIST, ring status).
 *
 * It reaches the director only through the director's API, and sessions
 * not at all: the daemon wires what the ring reports (ready, serving or
 * fenced, failed) to the listeners and the proxy. Nothing here blocks
 * the loop; nothing here logs (reports go to a callback). */
#ifndef LOFT_RING_RING_H
#define LOFT_RING_RING_H

#include <stdbool.h>
#include <stdint.h>
#include <time.h>

#include "common/log.h"
#include "common/net.h"
#include "conf/config.h"
#include "director/hosts.h"

struct event_base;
struct director;
struct ring;

struct ring_callbacks {
	/* the ring's state is loaded: the node may serve (once) */
	void (*ready)(void *ctx);
	/* fenced (false): cut off from etcd past its lease; serving again
	 * (true) once etcd answers and the state is read again */
	void (*serving)(void *ctx, bool serving);
	/* fence mode: the node must relay nothing from this moment on its
	 * monotonic clock (ms) unless renewed first; 0: no such moment.
	 * The fence itself comes from a timer due then, but a loop that
	 * stalled may run socket callbacks first. */
	void (*deadline)(void *ctx, uint64_t fence_at_ms);
	/* the node cannot be part of this ring (its settings differ from
	 * the ring's): it must stop */
	void (*failed)(void *ctx, const char *error);
	/* something an operator should know */
	void (*report)(void *ctx, enum log_level level, const char *text);
};

/* What an upgrade hands the new loftd (loftd(8) SIGUSR2): the node's
 * lease (it renews it, so the node never leaves the ring), when the node
 * joined, and the socket the other nodes' links come to. */
struct ring_handover {
	int64_t lease;
	time_t started;
	int peer_fd;		/* -1: none */
};
void ring_handover_info(const struct ring *ring, struct ring_handover *h);

/* NULL with the reason when the settings cannot make a client (a bad
 * endpoint). Connecting goes on in the background, retried until etcd
 * answers. inherit (NULL: none): what the loftd this one replaces held;
 * its lease is taken over if etcd still has it, else a new one taken. */
struct ring *ring_new(struct event_base *base, const struct config *cfg,
		      struct director *director, const struct ring_callbacks *cb,
		      void *ctx, const struct ring_handover *inherit, char **error_r);
/* The address the other nodes reach this one at (ring.address, else the
 * first listener's). */
const char *ring_config_address(const struct config *cfg);
/* Leaves the ring: revokes the lease (so the ring stops waiting for this
 * node at once), then done(ctx), within the etcd request timeout. */
void ring_stop(struct ring *ring, void (*done)(void *ctx), void *ctx);
void ring_free(struct ring **ring);

bool ring_is_serving(const struct ring *ring);

/* This node's health checks' verdict of a backend (error: why it failed,
 * NULL when ok): published for the ring to agree on (doc/ring.md §7). */
void ring_health_verdict(struct ring *ring, const struct ipaddr *ip,
			 enum director_health verdict, const char *error);

/* One director of the ring, for DIRECTOR-LIST and ring status (§5.5). */
struct ring_member_info {
	const char *name;
	const char *address;
	unsigned int port;
	bool self;
	/* self: "ring synced", "syncing", "fenced", "removed"; others:
	 * "synced", "syncing" (has not applied the host list yet), "down" */
	const char *status;
	time_t since;		/* when it joined */
	time_t last_failed;	/* down: since when (as this node saw it) */
	/* self: the last lease renewal's round trip; others: their lease's
	 * age (how long since they renewed it, in whole seconds) */
	unsigned int ping_ms;
};
/* director ring add|remove (reference §3.7, doc/ring.md §8): reply(ctx,
 * line) once, on a later turn: "OK", "NOTFOUND" or why not. port 0: ring
 * add: this node's ring.port; ring remove: the first with the address. */
typedef void ring_director_reply_cb(void *ctx, const char *line);
void ring_director_add(struct ring *ring, const struct ipaddr *ip, unsigned int port,
		       ring_director_reply_cb *reply, void *ctx);
void ring_director_remove(struct ring *ring, const struct ipaddr *ip, unsigned int port,
			  ring_director_reply_cb *reply, void *ctx);

/* ---- the links between nodes (doc/ring.md §14) ---- */
struct sbuf;
/* A command another node sent, other than the ring's own: the answer
 * (the admin protocol's lines) goes to out. */
typedef void ring_peer_command_cb(void *ctx, char **args, int nargs, struct sbuf *out);
void ring_set_peer_commands(struct ring *ring, ring_peer_command_cb *cb, void *ctx);
/* This node's name in the ring. */
const char *ring_self_name(const struct ring *ring);

/* A node's answer to ring_call_all(): its payload (len bytes) when
 * error is NULL, else why it has none. */
typedef void ring_call_answer_cb(void *ctx, const char *node, const char *error,
				 const char *payload, size_t len);
typedef void ring_call_done_cb(void *ctx);
/* Sends a command (fields) to every other node: answer() once per live
 * member as it answers, or with an error when it has not within
 * ring.peer_timeout, and at once for each director that is down; then
 * done(). Nothing runs before ring_call_all() returns; at ring_free()
 * every call still going ends the same way. ctx must live until done. */
void ring_call_all(struct ring *ring, const char *const *fields, size_t count,
		   ring_call_answer_cb *answer, ring_call_done_cb *done, void *ctx);

/* ---- limits counted over the ring (doc/ring.md §15) ---- */
/* What this node counts, asked when the ring sends. */
struct ring_limits_source {
	/* sessions of (user, ip) here now */
	unsigned int (*count)(void *ctx, const char *user, const struct ipaddr *ip);
	/* every (user, ip) with sessions here, for a full snapshot */
	void (*foreach_user_ip)(void *ctx, void (*cb)(void *cb_ctx, const char *user,
						      const struct ipaddr *ip,
						      unsigned int count),
				void *cb_ctx);
	/* count failures another node saw from ip raised its penalty */
	void (*remote_failures)(void *ctx, const struct ipaddr *ip, unsigned int count);
};
void ring_limits_set_source(struct ring *ring, const struct ring_limits_source *src,
			    void *ctx);
/* The sessions of (user, ip) here changed in number: the others hear
 * the new count within ring.limits_interval. */
void ring_limits_changed(struct ring *ring, const char *user, const struct ipaddr *ip);
/* An auth failure here raised ip's penalty: the others raise theirs. */
void ring_limits_failure(struct ring *ring, const struct ipaddr *ip);
/* Sessions of (user, ip) on the other nodes, as they last said. */
unsigned int ring_limits_remote_user_ip(struct ring *ring, const char *user,
					const struct ipaddr *ip);

void ring_members_foreach(struct ring *ring,
			  void (*cb)(const struct ring_member_info *m, void *ctx),
			  void *ctx);

#endif
