/* The director on one node (reference §1-2): the backend hosts, one vhost
 * ring and one user directory per tag, the routing of logins, and the
 * changes an admin makes (add, update, up, down, remove, flush, move,
 * kick).
 *
 * Two layers of change:
 *   - requests: director_change() takes one typed change (struct
 *     director_change, the same message for an admin, a test or a ring
 *     peer) and answers through a done callback on a later loop turn,
 *     never inline. A ring of nodes replaces the handler (commit to etcd,
 *     acknowledgements); the local one applies at once.
 *   - apply: director_host_set() ... director_user_move() are the pure
 *     transitions a handler applies; they return their verdict at once.
 *
 * The director never runs a callback of its own caller inside one of its
 * table walks: completions (a change's done, a held login's resume, a
 * flush step) are queued and run from the loop (or director_dispatch()
 * in tests). It never reaches into sessions: it asks through callbacks
 * to close sessions, and reports what an operator should know through a
 * callback instead of logging. Time comes in as arguments, or from the
 * clock set with director_set_clock() where a timer of its own fires. */
#ifndef LOFT_DIRECTOR_DIRECTOR_H
#define LOFT_DIRECTOR_DIRECTOR_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <time.h>

#include "common/log.h"
#include "common/net.h"
#include "conf/config.h"
#include "director/hosts.h"

struct event_base;
struct director;

/* What a session keeps to release its assignment later: no pointers, so
 * a host or user that disappears meanwhile cannot dangle. The generation
 * names the assignment the reference was taken on: a release after that
 * assignment was forgotten (flush -F, remove) leaves a newer one alone. */
struct director_ticket {
	uint32_t hash;
	uint32_t gen;
	uint16_t tag;		/* index of the tag */
	bool held;		/* a session reference is held */
};

/* No tag index: a session routed by a passdb host, not by the director. */
#define DIRECTOR_TAG_NONE UINT16_MAX

struct director_callbacks {
	/* close every session of this user hash in this tag (a move's kill);
	 * how many were asked to. Must not call back into the director. */
	size_t (*kill)(void *ctx, uint16_t tag, uint32_t hash);
	/* director kick (§2.9): close the sessions of the user named exactly
	 * (field NULL) or with this user_* field value; how many */
	size_t (*kick)(void *ctx, const char *field, const char *value);
	/* a login that waited (DIRECTOR_ROUTE_WAIT) may try again */
	void (*resume)(void *ctx, uint64_t waiter);
};

/* Something an operator should know: what was loaded, a save that failed,
 * a move that timed out, what a flush did. */
typedef void director_report_fn(void *ctx, enum log_level level, const char *text);

/* base may be NULL (tests): moves then finish without the kick delay and
 * completions wait for director_dispatch(). */
struct director *director_new(const struct config *cfg, struct event_base *base,
			      char **error_r);
/* Ends moves and flushes; every pending done callback still runs once
 * (resumes do not: their sessions are gone). */
void director_free(struct director **d);
void director_set_callbacks(struct director *d, const struct director_callbacks *cb,
			    void *ctx);
void director_set_report(struct director *d, director_report_fn *fn, void *ctx);
/* Wall-clock seconds for the director's own timers (default time()). */
void director_set_clock(struct director *d, time_t (*now)(void *ctx), void *ctx);
/* Runs the queued completions (the loop does this by itself). */
void director_dispatch(struct director *d);

/* ---- persistence ------------------------------------------------------ */

/* Where the host list is kept between runs: the state file on one node
 * (state.h), the ring's store in a ring. */
struct director_store {
	/* The saved hosts, and the configured hosts an admin removed (their
	 * entries carry only an address). 0 also when nothing is saved yet
	 * (*found_r false); -1 when the saved state is unusable. */
	int (*load)(struct director_store *store, struct director_host_list *hosts,
		    struct director_host_list *removed, bool *found_r, char **error_r);
	/* The current hosts; those of initial missing from them are removed. */
	int (*save_hosts)(struct director_store *store,
			  const struct director_host_list *hosts,
			  const struct director_host_list *initial, char **error_r);
	void (*free)(struct director_store *store);
	const char *name;	/* for messages: the file, or the ring */
};

/* Loads the store's hosts over the configured ones (saved hosts win,
 * removed configured hosts stay removed, hosts new in mail_servers join)
 * and saves every later host change there. The director owns the store
 * from now on (also on error). -1: the state is unusable or cannot be
 * written, and loftd must not start. */
int director_set_store(struct director *d, struct director_store *store,
		       char **error_r);

uint32_t director_user_hash(struct director *d, const char *username);
/* The index of a tag (DIRECTOR_TAG_NONE when unknown). */
uint16_t director_tag_index(struct director *d, const char *tag);
/* The name of a tag by its index; NULL when there is no such index. */
const char *director_tag_name(const struct director *d, uint16_t idx);

/* ---- routing -------------------------------------------------------------- */

enum director_route_result {
	DIRECTOR_ROUTE_OK,
	DIRECTOR_ROUTE_WAIT,	/* the user is being moved: resume() follows */
	DIRECTOR_ROUTE_FAIL,
};

/* Routes a user (§2.3): the existing assignment if there is one (even to a
 * host that has gone down since, as Dovecot does), else the ring's choice,
 * which becomes the assignment. On OK a session reference is taken, which
 * director_release() gives back. A user being moved waits: `waiter` is
 * handed to resume() when the move is over. FAIL comes with a reason. */
enum director_route_result director_route(struct director *d, const char *username,
					  const char *tag, time_t now, uint64_t waiter,
					  const struct director_host **host_r,
					  struct director_ticket *ticket_r,
					  const char **error_r);
void director_release(struct director *d, struct director_ticket *ticket,
		      time_t now);

/* Counted as changes are applied, for metrics (read at scrape time). */
struct director_stats {
	uint64_t moves;		/* user moves: director move, here or on another
				 * node of the ring */
	uint64_t flushes;	/* director flush, with or without -F */
};
const struct director_stats *director_get_stats(const struct director *d);

/* Forgets expired assignments; returns how many. */
unsigned int director_expire(struct director *d, time_t now);

/* The ring's choice for a hash among the current hosts (no assignment). */
const struct director_host *director_hashed_host(struct director *d,
						 uint32_t hash, const char *tag);

const struct director_host_list *director_hosts(const struct director *d);
/* Hosts of director.mail_servers that are not in the list now. */
void director_removed_hosts(const struct director *d,
			    void (*cb)(const struct director_host *initial, void *ctx),
			    void *ctx);

/* ---- change requests ------------------------------------------------------ */

enum director_change_type {
	DIRECTOR_CHANGE_HOST_SET,	/* add, or set the vhost count */
	DIRECTOR_CHANGE_HOST_UPDATE,	/* vhost count of an existing host */
	DIRECTOR_CHANGE_HOST_UP,
	DIRECTOR_CHANGE_HOST_DOWN,
	DIRECTOR_CHANGE_HOST_REMOVE,
	DIRECTOR_CHANGE_HOST_FLUSH,	/* flush -F: forget, kick nobody */
	DIRECTOR_CHANGE_HOST_RESET,	/* flush: move who hashes elsewhere */
	DIRECTOR_CHANGE_USER_MOVE,
	DIRECTOR_CHANGE_USER_KICK,
};

/* One change. Strings need to live only for the director_change() call. */
struct director_change {
	enum director_change_type type;
	struct ipaddr ip;
	bool all_hosts;		/* FLUSH, RESET: every host (ip unused) */
	const char *tag;	/* HOST_SET: NULL keeps/means no tag */
	int vhosts;		/* HOST_SET, HOST_UPDATE; < 0: unchanged/default */
	uint32_t user_hash;	/* USER_MOVE */
	unsigned int max_parallel; /* RESET; 0: director.max_parallel_moves */
	const char *kick_field;	/* USER_KICK: NULL, or the user_* field */
	const char *kick_value;	/* USER_KICK: the user name or field value */
	time_t now;
};

enum director_result {
	DIRECTOR_OK,
	DIRECTOR_NOTFOUND,
	DIRECTOR_TRYAGAIN,	/* busy with this user: try again later */
	DIRECTOR_INVALID,	/* refused; the reason is in the error */
};

struct director_change_result {
	enum director_result result;
	const char *error;	/* DIRECTOR_INVALID: a static text */
	size_t kicked;		/* USER_KICK: sessions asked to close */
	/* USER_KICK in a ring: how many on each node (valid during the
	 * callback); 0 nodes on a single node */
	size_t kick_nodes;
	const char *const *kick_node_names;
	const size_t *kick_node_counts;
};

typedef void director_change_done_cb(void *ctx, const struct director_change_result *r);

/* Requests a change; done(ctx, result) runs once, on a later loop turn:
 * at once for most changes, when every move is over for HOST_RESET. */
void director_change(struct director *d, const struct director_change *c,
		     director_change_done_cb *done, void *ctx);

/* Who carries changes out: the local handler (the default) applies them;
 * a ring installs its own, which ends in the apply functions below. */
typedef void director_change_handler_fn(void *ctx, const struct director_change *c,
					director_change_done_cb *done, void *done_ctx);
void director_set_change_handler(struct director *d, director_change_handler_fn *fn,
				 void *ctx);
/* Answers a change on a later turn, like any answer: for a handler that
 * decided it itself (error: a static text, with DIRECTOR_INVALID). */
void director_change_answer(struct director *d, director_change_done_cb *done,
			    void *done_ctx, enum director_result result,
			    const char *error);
/* The local handler, for a replacement that wants it for some changes. */
void director_change_apply_local(struct director *d, const struct director_change *c,
				 director_change_done_cb *done, void *done_ctx);

/* ---- apply (§2.5, §4.2): pure transitions, verdict at once ---------------- */

/* HOST-SET: creates the host (vhosts < 0: the default 100) or changes its
 * vhost count (vhosts < 0: unchanged). A tag cannot change. */
enum director_result director_host_set(struct director *d, const struct ipaddr *ip,
				       const char *tag, int vhosts, time_t now,
				       const char **error_r);
/* HOST-UPDATE: changes the vhost count of an existing host. */
enum director_result director_host_update(struct director *d, const struct ipaddr *ip,
					  int vhosts, const char **error_r);
/* HOST-UP / HOST-DOWN: moves nobody; records when the state changed. */
enum director_result director_host_set_down(struct director *d,
					    const struct ipaddr *ip, bool down,
					    time_t now);
/* HOST-REMOVE: the host and its assignments go, nobody is kicked. */
enum director_result director_host_remove(struct director *d, const struct ipaddr *ip);
/* HOST-FLUSH (flush -F): forgets the host's assignments (every host's with
 * ip NULL), nobody is kicked. */
enum director_result director_host_flush(struct director *d, const struct ipaddr *ip);

/* Health checks report a host's state (with the reason when failing); a
 * failing host leaves the rings, whatever an admin set, and comes back
 * when it passes. NOTFOUND when the host is gone meanwhile. */
enum director_result director_host_set_health(struct director *d,
					      const struct ipaddr *ip,
					      enum director_health health,
					      const char *error, time_t now);
/* A ring's node: this node's own checks only say why they fail (for
 * HOST-HEALTH); the verdict that routes is the ring's, in the host list
 * (director_hosts_replace). NOTFOUND when the host is gone. */
enum director_result director_host_note_check(struct director *d, const struct ipaddr *ip,
					      const char *error);
/* Health checks are running: HOST-HEALTH has something to say. */
void director_health_enable(struct director *d);
bool director_health_enabled(const struct director *d);

/* USER-MOVE (§2.6): assigns the user hash to the host; if that changes its
 * host, its sessions are closed and its logins wait until they are gone
 * and director.user_kick_delay has passed. TRYAGAIN while being moved. */
enum director_result director_user_move(struct director *d, uint32_t hash,
					const struct ipaddr *ip, time_t now);

/* HOST-RESET-USERS (§2.7): moves the users of the host (of every host with
 * ip NULL) whose hash now points elsewhere, at most max_parallel at once
 * (0: director.max_parallel_moves). NOTFOUND, or OK with done(ctx) called
 * on a later turn once every move finished. */
enum director_result director_reset_users(struct director *d, const struct ipaddr *ip,
					  unsigned int max_parallel, time_t now,
					  void (*done)(void *ctx), void *ctx);

/* ---- a host change in phases ---------------------------------------------- */

/* The apply functions change the host list, then route by it at once. A
 * ring splits that so that every node can first keep the users that
 * would move (Dovecot's sticky assignment, §2.5):
 *   director_rings_prepare()      rings for the host list as it is now,
 *                                 beside the rings routing uses;
 *   director_rings_foreach_moving() every assigned user whose hashed host
 *                                 differs between the two, with the host
 *                                 it has and the one it would hash to;
 *   director_rings_commit()       routing uses the new rings; hosts
 *                                 removed meanwhile are freed.
 * With director_set_deferred_rings(d, true) the apply functions stop
 * after the host list; the caller runs the phases. */
void director_set_deferred_rings(struct director *d, bool deferred);
void director_rings_prepare(struct director *d);
struct director_moving_user {
	uint32_t hash;
	const char *tag;
	const char *username;
	const struct director_host *current;	/* the assigned host */
	const struct director_host *hashed;	/* the current rings' */
	const struct director_host *next;	/* NULL: no host in the tag */
	uint32_t sessions;
	bool ring_pinned;		/* a ring's pin (any node's) holds it */
	bool local;			/* a login here routed by the record */
};
void director_rings_foreach_moving(struct director *d,
				   void (*cb)(const struct director_moving_user *u,
					      void *ctx),
				   void *ctx);
void director_rings_commit(struct director *d);

/* ---- a ring's pins (doc/ring.md §3) ------------------------------------------ */

/* What the director asks of a ring about pins. Both may only take note
 * (start a request): they run inside routing and inside table walks. */
struct director_pin_callbacks {
	/* a login of a user only other nodes pin: this node must hold a pin
	 * of its own before it routes the user (the login waits; answer
	 * with director_user_own_pin()) */
	void (*needed)(void *ctx, const char *tag, uint32_t hash,
		       const struct director_host *host, const char *username);
	/* this node's record of a user it held a pin for is gone (its host
	 * removed, flush -F): let the pin go */
	void (*forgotten)(void *ctx, const char *tag, uint32_t hash);
	/* a user it holds a pin for expired here (or its backend fails):
	 * the record stays and its logins wait until the pin is gone from
	 * etcd and from this node's view of it (doc/ring.md §3, P1); answer
	 * with director_user_released() */
	void (*release)(void *ctx, const char *tag, uint32_t hash);
	/* while pins are being read (director_set_pins_loading): whether
	 * this node's view has every pin of the user; if not, the login
	 * waits until director_user_route_again() */
	bool (*known)(void *ctx, const char *tag, uint32_t hash);
	/* a ring's move (director_user_move_hold): this node's sessions of
	 * the user are gone, or the move timeout passed */
	void (*move_ready)(void *ctx, const char *tag, uint32_t hash);
};
void director_set_pin_callbacks(struct director *d,
				const struct director_pin_callbacks *cb, void *ctx);

/* Another node pins the user (add) or lets its pin go. While any node's
 * pin exists the user is routed to the pinned host here too; when the
 * last goes and this node holds none of its own, the user follows the
 * hash again. NOTFOUND: no such host (the pin is ignored). */
enum director_result director_user_remote_pin(struct director *d, const char *tag,
					      uint32_t hash, const struct ipaddr *ip,
					      bool add, time_t now);
/* This node's own pin of the user is in its view of etcd (held) or gone
 * from it; held logins go on. A pin of its own for a user it has no
 * record of (a write that ran late) makes the record, on the host at ip
 * (doc/ring.md §3, P4; NULL: makes none). */
void director_user_own_pin(struct director *d, const char *tag, uint32_t hash,
			   bool held, const struct ipaddr *ip, time_t now);
/* The user's logins that wait route again: the pin needed for a login
 * could not be taken, or the ring has read the user's pins. */
void director_user_route_again(struct director *d, const char *tag, uint32_t hash);
/* While a ring reads its pins (after it started serving), every login
 * asks pin_cb.known first. */
void director_set_pins_loading(struct director *d, bool loading);
/* The release asked for is over: held, a newer pin of this node's own is
 * there (it holds the user again), else the record goes unless other
 * pins, sessions or a move hold it. Held logins go on. */
void director_user_released(struct director *d, const char *tag, uint32_t hash,
			    bool held, time_t now);
/* A ring node back with a new lease (its sessions closed by the fence):
 * forgets every record and every pin count, keeping only users being
 * moved (doc/ring.md §6, R1); held logins route again. */
void director_forget_ring_users(struct director *d);
/* A ring's move of a user to the host at ip (doc/ring.md §5): its
 * record (made if missing) names the host, its logins wait and its
 * sessions are closed; pin_cb.move_ready says when they are gone. The
 * logins go on at director_user_move_end(), when the ring finished the
 * move. NOTFOUND: no such host. */
enum director_result director_user_move_hold(struct director *d, const char *tag,
					     uint32_t hash, const struct ipaddr *ip,
					     time_t now);
void director_user_move_end(struct director *d, const char *tag, uint32_t hash);
/* Replaces the whole host list (a ring's): hosts are added, changed
 * (vhosts, up/down and its time) or removed (their users forgotten).
 * The rings follow unless deferred (director_set_deferred_rings). */
struct director_host_spec {
	struct ipaddr ip;
	const char *tag;
	unsigned int vhosts;
	bool down;
	time_t last_updown;
	/* a ring's agreed health verdict (doc/ring.md §7): a failing host
	 * has no points, as with a single node's checks */
	enum director_health health;
	time_t health_changed;
};
void director_hosts_replace(struct director *d, const struct director_host_spec *hosts,
			    size_t count);

/* ---- lookups ---------------------------------------------------------------- */

/* USER-LOOKUP (§1.5). */
struct director_lookup {
	bool assigned;
	struct ipaddr current;
	time_t expires;
	bool have_hashed;
	struct ipaddr hashed;
	bool have_initial;
	struct ipaddr initial;
};
void director_user_lookup(struct director *d, uint32_t hash, const char *tag,
			  time_t now, struct director_lookup *r);

/* ---- an upgrade's overlap (loftd(8) SIGUSR2) ------------------------------ */

/* Every session reference director_route() takes (taken, with the host
 * and the user name) and director_release() gives back (host and
 * username NULL): the loftd an upgrade replaced tells its successor, so
 * that the successor counts the sessions the old process still relays.
 * NULL (the default): nobody is told. */
typedef void director_session_watch_fn(void *ctx, const char *tag, uint32_t hash,
				       const struct director_host *host,
				       const char *username, bool taken);
void director_set_session_watch(struct director *d, director_session_watch_fn *fn,
				void *ctx);

enum director_hold_result {
	DIRECTOR_HOLD_OK,
	/* this director routes the user to another host (no reference is
	 * taken), or is moving it (ticket_r holds one all the same: the
	 * move waits for the session's end): the other process's session
	 * must close */
	DIRECTOR_HOLD_ELSEWHERE,
	DIRECTOR_HOLD_UNKNOWN,	/* a tag or host this director does not know */
};
/* An assignment (and with ticket_r, one session) of the loftd this one
 * replaces: the user's record goes to ip as if the user had logged in at
 * `now` (if it has none yet), and ticket_r holds a session reference as
 * a login's would, for director_release() when that session ends. So a
 * move waits for the other process's sessions too, and the record does
 * not expire under them. */
enum director_hold_result director_user_hold(struct director *d, const char *tag,
					     uint32_t hash, const struct ipaddr *ip,
					     const char *username, time_t now,
					     struct director_ticket *ticket_r);

/* Every assignment, optionally only those on one host (USER-LIST). */
struct director_user_info {
	uint32_t hash;
	time_t expires;
	const struct director_host *host;
	const char *username;	/* "" when only the hash is known */
	const char *tag;
	uint32_t sessions;	/* session references held on it */
};
void director_users_foreach(struct director *d, const struct ipaddr *ip, time_t now,
			    void (*cb)(const struct director_user_info *info, void *ctx),
			    void *ctx);

#endif
