/* Shared by the ring's files. Internal to src/ring (the etcd client's
 * own internals are etcd_private.h). */
#ifndef LOFT_RING_PRIVATE_H
#define LOFT_RING_PRIVATE_H

#include <stdbool.h>
#include <stdint.h>
#include <time.h>

#include "common/hmap.h"
#include "common/list.h"
#include "director/director.h"
#include "ring/ring.h"

struct etcd_client;
struct etcd_request;
struct etcd_watch;
struct etcd_kv;
struct etcd_op_result;
struct etcd_compare;
struct etcd_op;
struct etcd_txn_params;
struct etcd_result;
struct event;
struct ring_proposal;
struct ring_pin_op;
struct ring_prepare;
struct ring_pins_loader;
struct ring_move;
struct ring_flush;
struct ring_kick;
struct ring_kick_apply;
struct ring_own_verdict;
struct ring_director;
struct ring_director_op;
struct ring_probe;
struct ring_peers;
struct ring_limits;
struct ring_failsafe;
struct sbuf;

enum ring_phase {
	RING_SETTINGS,
	RING_LEASE,
	RING_REGISTER,
	RING_LOAD,
	RING_SERVING,
	RING_REMOVED,		/* taken out by an admin: fenced, waits */
	RING_STOPPING,
};

/* etcd's "lease not found" */
#define RING_GRPC_NOT_FOUND 5

/* A live node: its P/members/<name> key. */
struct ring_member {
	char *name;
	char *address;
	unsigned int port;
	time_t started;
	int64_t lease;
	int64_t applied;		/* its P/applied/<name>: admin changes it applied */
	bool acked;			/* acknowledged the host change in flight */
	unsigned int lease_age_ms;	/* ring status' "ping ms" */
};

/* A host list: the ring's (P/hosts) or a proposed one (ring_hosts.c). */
struct ring_hosts {
	struct director_host_spec *hosts;
	char **tags;			/* owned; hosts[i].tag points at tags[i] */
	size_t count, cap, tags_cap;
};

/* A host change in flight (P/hostchange, doc/ring.md §4). */
struct ring_hostchange {
	bool present;
	char *id;
	int64_t revision;		/* its mod_revision: the commit's compare */
	struct ring_hosts hosts;
	bool prepared;			/* this node pinned its users and acked */
	uint64_t seen_ms;		/* when this node saw it (monotonic) */
};

/* A node's health verdict of a backend: its P/health/<host>/<node>. */
struct ring_verdict {
	struct ipaddr ip;
	char *node;
	enum director_health health;	/* OK or FAILING */
};

/* An admin's change waiting for the ring (doc/ring.md §8). */
struct ring_request {
	struct ring *ring;
	char *id;			/* the host change it proposed */
	int64_t committed;		/* the commit's revision; 0: not yet */
	bool finished;			/* a move: done once this node saw it end */
	director_change_done_cb *done;
	void *done_ctx;
	struct event *timer;
	struct ring_request *next;
};

struct ring {
	struct event_base *base;
	struct director *director;
	struct ring_callbacks cb;
	void *ctx;
	struct etcd_client *etcd;
	struct etcd_client *etcd_load;	/* the full read's (ring.c) */
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
	unsigned int retries;		/* failed steps since the last load */
	bool ever_served;
	int64_t adopt_lease;		/* an upgrade's: taken over, not granted */
	bool inherited;			/* started by an upgrade: the node joined
					 * (and declared itself) before */
	struct event *retry_timer;
	struct etcd_request *req;	/* the join's request in flight */
	struct etcd_watch *watch;
	int64_t revision;		/* everything up to it is applied */

	/* the lease (ring_lease.c) */
	int64_t lease;
	uint64_t lease_sent_ms;		/* when the grant in flight was sent */
	uint64_t keepalive_sent_ms;	/* when the renewal in flight was sent */
	uint64_t fence_at_ms;		/* no renewal by then: fenced */
	uint64_t renewed_sent_ms;	/* when the last renewal that worked was sent */
	unsigned int ping_ms;		/* the last renewal's round trip */
	struct event *lease_timer;
	struct event *fence_timer;	/* due at fence_at_ms */
	struct etcd_request *keepalive;
	bool fenced;
	bool withheld;			/* the daemon was told to stop serving */
	uint64_t warned_ms;		/* serve mode: the last warning */

	/* the ring's state (ring_state.c) */
	struct ring_member *members;
	size_t members_count, members_cap;
	struct ring_hosts hosts;	/* P/hosts as applied */
	char *hosts_id;			/* the change that made it */
	int64_t hosts_revision;		/* its mod_revision */
	bool hosts_known;
	struct ring_hostchange change;
	struct etcd_request *commit;	/* this node's try to commit a change */
	struct ring_prepare *prepare;	/* this node's pins and ack */
	struct ring_request *requests;	/* admin changes in flight */
	struct ring_proposal *proposals;	/* host changes being proposed */
	struct list pin_ops;		/* own pins being taken or let go */
	struct hmap pins;		/* pin keys applied (ring_pins.c) */
	struct ring_pins_loader *loader;	/* pins being read (ring_pins_load.c) */
	bool pins_partial;		/* the view lacks pins: logins ask first */
	struct ring_move *moves;	/* moves in flight (ring_moves.c) */
	struct ring_flush *flushes;	/* this node's admins' flushes */
	struct ring_kick *kicks;	/* kicks applied or waited for */
	struct ring_kick_apply *kick_applies;	/* local kicks being counted */
	struct ring_verdict *verdicts;	/* every node's (ring_health.c) */
	size_t verdicts_count, verdicts_cap;
	struct ring_own_verdict *own_verdicts;	/* this node's checks' */
	struct ring_director *directors;	/* P/directors/ (ring_directors.c) */
	size_t directors_count, directors_cap;
	struct ring_director_op *director_ops;	/* ring add|remove in flight */
	struct ring_probe *probes;	/* other nodes' lease ages being read */
	struct ring_peers *peers;	/* links to the other nodes (ring_peer.h) */
	struct ring_limits *limits;	/* counts shared with them (ring_limits.c) */
	struct ring_failsafe *failsafe;	/* ring.partition = failsafe; else NULL */
	unsigned int max_parallel_moves; /* director.max_parallel_moves */
	uint64_t kick_delay_ms;		/* director.user_kick_delay */
	int64_t user_expire_s;		/* director.user_expire: a move's pin */
	unsigned int change_seq;
	int64_t applied_sent;		/* the P/applied/<name> put last */

	void (*stop_done)(void *ctx);
	void *stop_ctx;
};

/* An admin command that waits for the ring answers this after 30 s, as
 * Dovecot's sync wait (reference §4.3). */
#define RING_SYNC_TIMEOUT_MS 30000
#define RING_TIMEOUT_TEXT "Ring sync timed out"

void ring_report(struct ring *r, enum log_level level, const char *fmt, ...)
	ATTR_FORMAT(3, 4);
/* An etcd callback for requests whose answer the watch tells anyway. */
void ring_ignore_result(const struct etcd_result *res, void *ctx);
/* prefix + the formatted rest. */
char *ring_key(const struct ring *r, const char *fmt, ...) ATTR_FORMAT(2, 3);
/* Transaction ops that own their keys and values. */
struct ring_ops {
	struct ring *ring;		/* for callbacks that fill it */
	struct etcd_op *ops;
	size_t count, cap;
	char **owned;
	size_t owned_count, owned_cap;
};
/* A put of key = value (both taken over) on the lease (0: none). */
void ring_ops_put(struct ring_ops *o, char *key, char *value, int64_t lease);
void ring_ops_free(struct ring_ops *o);

/* The lease is gone, or the state must be read again after a fence. */
void ring_rejoin(struct ring *r, bool new_lease);

/* ring_lease.c */
void ring_lease_init(struct ring *r);
void ring_lease_deinit(struct ring *r);
/* A lease was granted (or renewed) from a request sent at sent_ms. */
void ring_lease_set(struct ring *r, int64_t id, uint64_t sent_ms, int64_t ttl_s);
/* Fences or unfences as the deadline says; after a (re)load. */
void ring_lease_check(struct ring *r);
/* Fenced whatever ring.partition says: the daemon stops serving. */
void ring_lease_withhold(struct ring *r);

/* ring_hosts.c */
void ring_hosts_free(struct ring_hosts *h);
void ring_hosts_copy(struct ring_hosts *dst, const struct ring_hosts *src);
void ring_hosts_from_director(struct ring_hosts *h, const struct director_host_list *list);
char *ring_hosts_to_json(const struct ring_hosts *h);
/* The host with the address, or NULL. */
struct director_host_spec *ring_hosts_find(const struct ring_hosts *h,
					   const struct ipaddr *ip);
int ring_hosts_from_json(struct ring_hosts *h, const void *data, size_t len,
			 char **error_r);
/* An admin's change applied to a copy of the list; OK, NOTFOUND, INVALID
 * (*error_r: a static text). */
enum director_result ring_hosts_change(struct ring_hosts *h, const struct director_change *c,
				       const char **error_r);

/* "ok", "failing"; NULL for UNKNOWN (none). */
const char *ring_health_name(enum director_health health);
int ring_health_parse(const char *name, enum director_health *health_r);

/* ring_change.c */
/* A new id for a change this node proposes. */
char *ring_change_id(struct ring *r);
/* Proposes the host list next (a copy of the ring's, changed) as a host
 * change, answered as ring_propose() says. */
void ring_change_propose_hosts(struct ring *r, const struct ring_hosts *next,
			       director_change_done_cb *done, void *done_ctx);
/* Proposes a change: puts key = value (a JSON object with "id": id) if
 * the compares hold. Success adds an admin request for id (taken over); a
 * failed compare answers TRYAGAIN, unless the key holds this proposal (an
 * earlier try got there); no answer: tried again for a few seconds (an
 * election), then "Ring sync timed out", or etcd's reason. */
#define RING_PROPOSAL_COMPARES 2
void ring_propose(struct ring *r, char *id, const struct etcd_compare *cmps,
		  size_t cmp_count, const char *key, const char *value,
		  director_change_done_cb *done, void *done_ctx);
struct ring_request *ring_request_add(struct ring *r, const char *id,
				      director_change_done_cb *done, void *ctx);
/* The admin request for id is answered OK at the next settle. */
void ring_request_finished(struct ring *r, const char *id);
/* An admin's change (the director's change handler). */
void ring_change_request(struct ring *r, const struct director_change *c,
			 director_change_done_cb *done, void *done_ctx);
/* The keys of host changes as read or watched. */
void ring_change_hosts(struct ring *r, const struct etcd_kv *kv);
void ring_change_proposed(struct ring *r, const struct etcd_kv *kv, bool deleted);
void ring_change_acked(struct ring *r, const char *node, const struct etcd_kv *kv,
		       bool deleted);
void ring_change_applied(struct ring *r, const char *node, const struct etcd_kv *kv,
			 bool deleted);
/* After a batch of events (a watch message, the full read): commit a
 * change every live node acknowledged, answer admins. */
void ring_change_settle(struct ring *r);
/* Every lease renewal: gives up a change pending for twice the admin's
 * deadline (its proposer gone, a node that never acknowledges). */
void ring_change_tick(struct ring *r);
void ring_change_free(struct ring *r);

/* ring_pins.c */
/* P/<kind>/<hash>/<escaped tag>, and "/<node>" unless node is NULL. */
char *ring_user_key(const struct ring *r, const char *kind, uint32_t hash,
		    const char *tag, const char *node);
/* "<hash>/<tag>[/<node>]" (the node part only, and always, with node_r):
 * the parts, the tag unescaped into tag. */
int ring_user_key_parse(const char *rest, size_t len, uint32_t *hash_r,
			struct sbuf *tag, const char **node_r, size_t *node_len_r);
/* A pin's value, {"host":ip}: pins of one host are equal byte for byte
 * (a host change's compares rely on it). Allocated. */
char *ring_pin_value(const char *ip);
void ring_pins_init(struct ring *r);
/* A pin key as read or watched. */
void ring_pins_apply(struct ring *r, const char *rest, size_t len,
		     const struct etcd_kv *kv, bool deleted);
/* This node's own pin was written at revision (a transaction's answer):
 * counted now, before the watch shows it. */
void ring_pins_note_own(struct ring *r, const char *tag, uint32_t hash,
			const struct ipaddr *host, int64_t revision);
/* Whether this node's view has a pin of its own for the user. */
bool ring_pins_own(struct ring *r, const char *tag, uint32_t hash);
/* Around a full read: pins not read again are gone. */
void ring_pins_load_begin(struct ring *r);
void ring_pins_load_end(struct ring *r);
/* The view reached a new revision: pin requests waiting for it end. */
void ring_pins_settle(struct ring *r);
/* Back with a new lease after a fence: every record and pin forgotten. */
void ring_pins_forget(struct ring *r);
void ring_pins_free(struct ring *r);

/* ring_pins_load.c: the pins read while serving */
/* Reads every pin, range by range, after a read of the rest. */
void ring_pins_loader_start(struct ring *r);
/* Stops reading (the state is read again); the view stays partial. */
void ring_pins_loader_free(struct ring *r);
/* Whether the view lacks pins (logins wait to know their user's). */
void ring_pins_partial(struct ring *r, bool partial);
/* The director's pin_cb.known. */
bool ring_pins_known(void *ctx, const char *tag, uint32_t hash);
/* A pin key deleted (a watch event) while pins are read. */
void ring_pins_loader_deleted(struct ring *r, const char *rest, size_t len,
			      int64_t revision);
/* The view reached a new revision: users and the whole read known. */
void ring_pins_loader_settle(struct ring *r);

/* ring_prepare.c: this node's part of a host change (doc/ring.md §4) */
/* Pins the users who would move, then acknowledges the change. */
void ring_prepare_start(struct ring *r);
/* The change is gone or another: what is in flight no longer counts. */
void ring_prepare_cancel(struct ring *r);

/* ring_moves.c: moves (doc/ring.md §5) */
void ring_move_request(struct ring *r, const struct director_change *c,
		       director_change_done_cb *done, void *done_ctx);
/* P/moves/<hash>/<tag> and P/moves-ack/<hash>/<tag>/<node> as read or
 * watched. */
void ring_moves_apply(struct ring *r, const char *rest, size_t len,
		      const struct etcd_kv *kv, bool deleted);
void ring_moves_ack_apply(struct ring *r, const char *rest, size_t len,
			  const struct etcd_kv *kv, bool deleted);
/* The director says this node is done with a moved user's sessions. */
void ring_move_ready(void *ctx, const char *tag, uint32_t hash);
/* Acks to send again, moves every live node acknowledged to finish. */
void ring_moves_settle(struct ring *r);
void ring_moves_load_begin(struct ring *r);
void ring_moves_load_end(struct ring *r);
void ring_moves_free(struct ring *r);

/* ring_flush.c: flush, as ring-wide moves */
void ring_flush_request(struct ring *r, const struct director_change *c,
			director_change_done_cb *done, void *done_ctx);
void ring_flushes_free(struct ring *r);

/* ring_kicks.c: director kick on every node */
void ring_kick_request(struct ring *r, const struct director_change *c,
		       director_change_done_cb *done, void *done_ctx);
/* P/kicks/<id> and P/kicks-ack/<id>/<node> as read or watched. */
void ring_kicks_apply(struct ring *r, const char *rest, size_t len,
		      const struct etcd_kv *kv, bool deleted);
void ring_kicks_ack_apply(struct ring *r, const char *rest, size_t len,
			  const struct etcd_kv *kv, bool deleted);
/* Answers the kicks every live node acknowledged. */
void ring_kicks_settle(struct ring *r);
void ring_kicks_load_begin(struct ring *r);
void ring_kicks_load_end(struct ring *r);
void ring_kicks_free(struct ring *r);

/* ring_health.c: health verdicts agreed by the ring (doc/ring.md §7) */
/* P/health/<host>/<node> as read or watched. */
void ring_health_apply(struct ring *r, const char *rest, size_t len,
		       const struct etcd_kv *kv, bool deleted);
/* Publishes this node's verdicts, proposes a verdict most nodes agree on. */
void ring_health_settle(struct ring *r);
void ring_health_load_begin(struct ring *r);
void ring_health_free(struct ring *r);

/* ring_directors.c: the directors the ring expects, ring add|remove */
void ring_directors_apply(struct ring *r, const char *rest, size_t len,
			  const struct etcd_kv *kv, bool deleted);
void ring_directors_load_begin(struct ring *r);
/* After a full read: a node whose own director key is gone was removed. */
void ring_directors_loaded(struct ring *r);
/* This node's P/directors value, written when its process first joins. */
char *ring_directors_own_value(const struct ring *r);
void ring_directors_member_gone(struct ring *r, const char *address, unsigned int port);
/* Answers the removals whose node is gone. */
void ring_directors_settle(struct ring *r);
/* Reads the other nodes' lease ages (every lease renewal). */
void ring_directors_probe(struct ring *r);
void ring_directors_free(struct ring *r);
/* The i-th director without a live member, as "address:port" into buf;
 * false past the last. */
bool ring_director_down(struct ring *r, size_t i, char *buf, size_t size);
/* The i-th director other than this node (a failsafe peer, doc/ring.md
 * §13): its member's name (else "address:port") into name, where it
 * listens; false past the last. */
bool ring_director_peer(struct ring *r, size_t i, char *name, size_t size,
			const char **address_r, unsigned int *port_r);
/* Whether name is a director's "address:port". */
bool ring_director_named(struct ring *r, const char *name);

/* ring_peer.c: the links between nodes (ring_peer.h) */
/* peer_fd: an upgrade's listening socket (-1: bind one). */
int ring_peers_init(struct ring *r, const struct config *cfg, int peer_fd, char **error_r);
void ring_peers_deinit(struct ring *r);
/* ring_failsafe.c (doc/ring.md §13) */
void ring_failsafe_init(struct ring *r, const struct config *cfg);
void ring_failsafe_deinit(struct ring *r);
/* At the fence deadline: true when every peer's confirmation holds and
 * the node serves on in failsafe mode; false: fence (never failsafe
 * again until the ring is read anew). */
bool ring_failsafe_at_deadline(struct ring *r);
bool ring_failsafe_active(const struct ring *r);
bool ring_failsafe_frozen(const struct ring *r);
/* A renewal worked: true when the node was serving failsafe (its view
 * must be read again); its peers hear INTOUCH. */
bool ring_failsafe_renewed(struct ring *r);
/* etcd says the lease is gone: no failsafe any more. */
void ring_failsafe_lease_gone(struct ring *r);
/* A full read of the ring's state ended. */
void ring_failsafe_loaded(struct ring *r);
/* ring_limits.c (after the peers: their calls end first) */
void ring_limits_init(struct ring *r, uint64_t interval_ms);
void ring_limits_deinit(struct ring *r);

/* ring_state.c */
struct ring_member *ring_member_get(struct ring *r, const char *name);
/* One key of the ring as read or watched (deleted: a DELETE event). */
void ring_state_apply(struct ring *r, const struct etcd_kv *kv, bool deleted);
/* A full read, in parts (ranges read at one revision): the state is what
 * it says (keys not in it are gone); the pins too unless !with_pins (they
 * are read apart: ring_pins_load.c). */
void ring_state_load(struct ring *r, const struct etcd_op_result *parts, size_t nparts,
		     bool with_pins);
void ring_state_free(struct ring *r);

#endif
