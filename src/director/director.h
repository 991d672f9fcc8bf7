/* The director on one node (reference §1-2): the backend hosts, one vhost
 * ring and one user directory per tag, the routing of logins, and the
 * changes an admin makes (add, update, up, down, remove, flush, move).
 * A change made by an admin and one received from a ring peer later go
 * through the same functions.
 *
 * The director never reaches into sessions: it asks through callbacks to
 * close the sessions of a user hash (a move's kill), tells when a login
 * that had to wait may go on, and when the host list changed (so that it
 * can be saved). Time is passed in as wall-clock seconds. */
#ifndef LOFT_DIRECTOR_DIRECTOR_H
#define LOFT_DIRECTOR_DIRECTOR_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <time.h>

#include "common/net.h"
#include "conf/config.h"
#include "director/hosts.h"

struct event_base;
struct director;

/* What a session keeps to release its assignment later: no pointers, so
 * a host or user that disappears meanwhile cannot dangle. */
struct director_ticket {
	uint32_t hash;
	uint16_t tag;		/* index of the tag */
	bool held;		/* a session reference is held */
};

struct director_callbacks {
	/* close every session of this user hash; how many were asked to */
	size_t (*kill)(void *ctx, uint32_t hash);
	/* a login that waited (DIRECTOR_ROUTE_WAIT) may try again */
	void (*resume)(void *ctx, uint64_t waiter);
	/* the host list changed (persist it) */
	void (*hosts_changed)(void *ctx);
};

/* base may be NULL (tests): moves then finish without the kick delay. */
struct director *director_new(const struct config *cfg, struct event_base *base,
			      char **error_r);
void director_free(struct director **d);
/* Loads <state_dir>/director.state over the configured hosts and saves
 * every later host change there (state.h). -1 when the file is invalid or
 * cannot be written: loftd must not start then. */
int director_open_state(struct director *d, const char *state_dir, char **error_r);
void director_set_callbacks(struct director *d, const struct director_callbacks *cb,
			    void *ctx);

uint32_t director_user_hash(struct director *d, const char *username);

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

/* ---- changes (§2.5, §4.2); each returns one of these ------------------ */

enum director_result {
	DIRECTOR_OK,
	DIRECTOR_NOTFOUND,
	DIRECTOR_TRYAGAIN,	/* busy with this user: try again later */
	DIRECTOR_INVALID,	/* refused; the reason is in *error_r */
};

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
 * once every move finished (at once if there was nothing to move). */
enum director_result director_reset_users(struct director *d, const struct ipaddr *ip,
					  unsigned int max_parallel, time_t now,
					  void (*done)(void *ctx), void *ctx);

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

/* Every assignment, optionally only those on one host (USER-LIST). */
struct director_user_info {
	uint32_t hash;
	time_t expires;
	const struct director_host *host;
	const char *username;	/* "" when only the hash is known */
	const char *tag;
};
void director_users_foreach(struct director *d, const struct ipaddr *ip, time_t now,
			    void (*cb)(const struct director_user_info *info, void *ctx),
			    void *ctx);

#endif
