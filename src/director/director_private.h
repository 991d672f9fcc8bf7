/* Shared by the director's files. Internal to src/director. */
#ifndef LOFT_DIRECTOR_PRIVATE_H
#define LOFT_DIRECTOR_PRIVATE_H

#include "common/hmap.h"
#include "common/list.h"
#include "director/chash.h"
#include "director/director.h"
#include "director/user_hash.h"
#include "director/users.h"

struct event;

struct director_tag {
	char *name;
	struct chash ring;		/* the current hosts: what routing uses */
	struct chash next_ring;		/* prepared, not committed yet */
	struct chash initial_ring;	/* director.mail_servers as configured */
	struct user_directory users;
};

struct director {
	struct event_base *base;
	struct user_hasher *hasher;
	struct director_host_list hosts;
	struct director_host_list initial;
	/* removed hosts the routing rings may still point at: freed when
	 * the next rings are committed */
	struct director_host_list retired;
	struct director_tag *tags;	/* append-only: tickets hold indexes */
	size_t tags_count;
	time_t expire_secs;
	uint64_t kick_delay_ms;
	uint64_t move_timeout_ms;
	unsigned int max_parallel_moves;
	uint32_t next_gen;		/* generation of the next assignment */
	struct director_callbacks cb;
	void *cb_ctx;
	director_session_watch_fn *session_watch;
	void *session_watch_ctx;
	director_report_fn *report;
	void *report_ctx;
	time_t (*clock)(void *ctx);
	void *clock_ctx;
	director_change_handler_fn *change_fn;
	void *change_ctx;
	struct director_store *store;	/* NULL: host changes are not saved */
	struct hmap moves;		/* struct director_move by (tag, hash) */
	struct list resets;		/* running HOST-RESET-USERS jobs */
	struct list completions;	/* queued, run by director_dispatch() */
	struct event *dispatch_ev;	/* NULL without a loop */
	struct director_pin_callbacks pin_cb;	/* a ring's; zero: none */
	void *pin_ctx;
	bool pins_loading;			/* ask pin_cb.known first */
	/* logins waiting for the prepared rings' commit (their user hashes
	 * differently in them), and for this node's own pin of a user */
	uint64_t *prepare_waiters;
	size_t prepare_waiters_count, prepare_waiters_cap;
	struct director_pin_wait *pin_waits;
	size_t pin_waits_count, pin_waits_cap;
	bool rings_deferred;		/* the caller commits the rings */
	bool rings_prepared;
	bool health_checks;		/* hosts' health is being checked */
	struct director_stats stats;
};

time_t director_now(struct director *d);
struct director_tag *director_tag_get(struct director *d, const char *name,
				      bool create, uint16_t *idx_r);
/* After any change to hosts or vhosts: the rings (unless deferred) and
 * the store. */
void director_hosts_changed(struct director *d);
void director_report(struct director *d, enum log_level level, const char *fmt, ...)
	ATTR_FORMAT(3, 4);

/* ---- completions (director_change.c) ---------------------------------- */

/* Queued work that must not run inside the caller's walk. */
void director_defer_resume(struct director *d, uint64_t waiter);
void director_defer_call(struct director *d, void (*fn)(void *ctx), void *ctx);
/* Drops queued resumes and runs the rest (at free). */
void director_completions_free(struct director *d);

/* ---- moves (director_move.c) ------------------------------------------- */

bool director_user_moving(struct director *d, uint16_t tag, uint32_t hash);
/* A login for a user being moved waits for the move. */
void director_move_add_waiter(struct director *d, uint16_t tag, uint32_t hash,
			      uint64_t waiter);
/* The user's last session ended: a kill waiting for it may go on. */
void director_move_sessions_gone(struct director *d, uint16_t tag, uint32_t hash);
/* Starts a move of user to host (no kill if the host stays the same unless
 * forced). moved(ctx) is called when it is over, possibly inside a walk
 * of the director's tables: it may only count and queue. */
void director_move_start(struct director *d, uint16_t tag, struct director_user *user,
			 struct director_host *host, bool force_kill, time_t now,
			 void (*moved)(void *ctx), void *ctx);
/* Ends any move of a user that is about to be forgotten. */
void director_move_abort(struct director *d, uint16_t tag, uint32_t hash);
void director_moves_free(struct director *d);

/* ---- a ring's pins (director_pins.c) ------------------------------------ */

struct director_pin_wait {
	uint16_t tag;
	uint32_t hash;
	uint64_t waiter;
};

/* Routing's part: WAIT (the login waits) or OK to go on. u may be NULL. */
enum director_route_result director_pins_route(struct director *d, uint16_t tag,
					       uint32_t hash, struct director_user *u,
					       uint64_t waiter);
/* A new tag's directory tells the ring about forgotten pins too. */
void director_pins_attach(struct director *d, struct user_directory *dir);
/* The prepared rings are committed: held logins go on. */
void director_pins_committed(struct director *d);
void director_pins_free(struct director *d);

/* ---- flushes (director_reset.c) ---------------------------------------- */

void director_resets_free(struct director *d);

#endif
