/* The user directory of one tag (reference §2.1): which host each user
 * hash is assigned to, and since when. An assignment lives while the user
 * has sessions and for `expire` seconds after the last one ended; then the
 * ring decides afresh. Records keep the username (loft's addition, so
 * that listings can name users instead of hashes).
 *
 * Time is passed in; nothing here reads a clock or touches the loop. */
#ifndef LOFT_DIRECTOR_USERS_H
#define LOFT_DIRECTOR_USERS_H

#include <stdbool.h>
#include <stdint.h>
#include <time.h>

#include "common/hmap.h"
#include "common/list.h"
#include "director/hosts.h"

struct director_user {
	struct hmap_node node;		/* keyed by hash */
	struct list_node idle_node;	/* in the idle list while it can expire */
	struct director_host *host;
	time_t timestamp;		/* last refresh: lookup or last session end */
	uint32_t hash;
	uint32_t sessions;
	uint32_t gen;			/* the director's generation at creation:
					 * tickets of an older record of this hash
					 * must not release this one */
	uint8_t pinned;			/* being moved: never expires meanwhile */
	uint8_t own_pin;		/* a ring: this node holds a pin for it */
	uint8_t local;			/* a login on this node routed by it (not
					 * only another node's pin) */
	uint8_t releasing;		/* a ring: its own pin is being let go; the
					 * record stays (no expiry, logins wait)
					 * until the ring says it is gone */
	uint16_t remote_pins;		/* a ring: pins other nodes hold; it never
					 * expires while there are any */
	char username[];		/* the most recent name with this hash ("" if
					 * only the hash is known) */
};

struct user_directory {
	struct hmap users;
	/* users without sessions, oldest timestamp first */
	struct list idle;
	time_t expire_secs;
	/* told when a user with own_pin set is forgotten (may be NULL); it
	 * may only take note: it runs inside the directory's walks */
	void (*forgotten)(void *ctx, const struct director_user *user);
	/* with it, an expiring user with own_pin set is not forgotten but
	 * marked releasing (out of the idle list) and handed to it; it may
	 * only take note. user_directory_released() ends that. */
	void (*release)(void *ctx, struct director_user *user);
	void *pins_ctx;			/* both hooks' */
};

void user_directory_init(struct user_directory *dir, time_t expire_secs);
void user_directory_deinit(struct user_directory *dir);

struct director_user *user_directory_lookup(const struct user_directory *dir,
					    uint32_t hash);
/* Creates an assignment (no sessions yet, timestamp now). */
struct director_user *user_directory_add(struct user_directory *dir,
					 uint32_t hash, struct director_host *host,
					 const char *username, time_t now, uint32_t gen);
/* A lookup refreshed the user; a renamed user keeps its record. */
struct director_user *user_directory_refresh(struct user_directory *dir,
					     struct director_user *user,
					     const char *username, time_t now);
void user_directory_session_ref(struct user_directory *dir,
				struct director_user *user);
void user_directory_session_unref(struct user_directory *dir,
				  struct director_user *user, time_t now);
void user_directory_remove(struct user_directory *dir, struct director_user *user);
/* Reassigns the user (host user counts follow). */
void user_directory_set_host(struct director_user *user, struct director_host *host);
/* A pinned user stays out of the idle list, so it cannot expire. */
void user_directory_pin(struct user_directory *dir, struct director_user *user);
void user_directory_unpin(struct user_directory *dir, struct director_user *user,
			  time_t now);
/* A pin another node of a ring holds (+1) or let go (-1): while there
 * are any the record never expires. */
void user_directory_remote_pin(struct user_directory *dir, struct director_user *user,
			       int delta, time_t now);
/* Hands the user with own_pin set to release (which must be set). */
void user_directory_release(struct user_directory *dir, struct director_user *user);
/* The ring let the user's own pin go (held: a newer one of its own is
 * there after all, it holds the user again). The record is forgotten if
 * nothing else holds it; returns true then. */
bool user_directory_released(struct user_directory *dir, struct director_user *user,
			     bool held, time_t now);
/* Forgets idle users whose timestamp + expire <= now (or hands them to
 * release, see above); returns how many. */
unsigned int user_directory_expire(struct user_directory *dir, time_t now);
/* When the next idle user expires, or 0 when none is idle. */
time_t user_directory_next_expiry(const struct user_directory *dir);
/* Expiry time reported to admins: timestamp + expire; for users that
 * still have sessions, as if refreshed every expire/2 since. */
time_t user_directory_expires(const struct user_directory *dir,
			      const struct director_user *user, time_t now);

#endif
