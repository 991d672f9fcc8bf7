/* Shared by the ring's files. Internal to src/ring (the etcd client's
 * own internals are etcd_private.h). */
#ifndef LOFT_RING_PRIVATE_H
#define LOFT_RING_PRIVATE_H

#include <stdbool.h>
#include <stdint.h>
#include <time.h>

#include "ring/ring.h"

struct etcd_client;
struct etcd_request;
struct etcd_watch;
struct etcd_kv;
struct event;

enum ring_phase {
	RING_SETTINGS,
	RING_LEASE,
	RING_REGISTER,
	RING_LOAD,
	RING_SERVING,
	RING_STOPPING,
};

/* A live node: its P/members/<name> key. */
struct ring_member {
	char *name;
	char *address;
	unsigned int port;
	time_t started;
	int64_t lease;
};

struct ring {
	struct event_base *base;
	struct director *director;
	struct ring_callbacks cb;
	void *ctx;
	struct etcd_client *etcd;
	char *prefix;			/* ring.prefix: every key under it */
	char *name;
	char *address;
	unsigned int port;
	char *settings;			/* this node's P/settings value */
	time_t started;
	uint64_t ttl_ms;
	bool serve_cut_off;		/* ring.partition = serve */

	enum ring_phase phase;
	int retry_logged;		/* the phase whose trouble was logged */
	bool ever_served;
	struct event *retry_timer;
	struct etcd_request *req;	/* the join's request in flight */
	struct etcd_watch *watch;
	int64_t revision;		/* everything up to it is applied */

	/* the lease (ring_lease.c) */
	int64_t lease;
	uint64_t lease_sent_ms;		/* when the grant in flight was sent */
	uint64_t keepalive_sent_ms;	/* when the renewal in flight was sent */
	uint64_t fence_at_ms;		/* no renewal by then: fenced */
	unsigned int ping_ms;		/* the last renewal's round trip */
	struct event *lease_timer;
	struct etcd_request *keepalive;
	bool fenced;
	uint64_t warned_ms;		/* serve mode: the last warning */

	/* the ring's state (ring_state.c) */
	struct ring_member *members;
	size_t members_count, members_cap;

	void (*stop_done)(void *ctx);
	void *stop_ctx;
};

void ring_report(struct ring *r, enum log_level level, const char *fmt, ...)
	ATTR_FORMAT(3, 4);
/* prefix + the formatted rest. */
char *ring_key(const struct ring *r, const char *fmt, ...) ATTR_FORMAT(2, 3);
/* The lease is gone, or the state must be read again after a fence. */
void ring_rejoin(struct ring *r, bool new_lease);

/* ring_lease.c */
void ring_lease_init(struct ring *r);
void ring_lease_deinit(struct ring *r);
/* A lease was granted (or renewed) from a request sent at sent_ms. */
void ring_lease_set(struct ring *r, int64_t id, uint64_t sent_ms, int64_t ttl_s);
/* Fences or unfences as the deadline says; after a (re)load. */
void ring_lease_check(struct ring *r);

/* ring_state.c */
/* One key of the ring as read or watched (deleted: a DELETE event). */
void ring_state_apply(struct ring *r, const struct etcd_kv *kv, bool deleted);
/* Forgets the state (before a full read). */
void ring_state_reset(struct ring *r);

#endif
