/* The director on one node: the host list from director.mail_servers, one
 * vhost ring and one user directory per tag, and the lookup that routes a
 * login (reference §2.3, single-node case). Admin changes (a later issue)
 * and ring messages will go through the same functions.
 *
 * Time is passed in as wall-clock seconds, so tests can drive expiry. */
#ifndef LOFT_DIRECTOR_DIRECTOR_H
#define LOFT_DIRECTOR_DIRECTOR_H

#include <stdint.h>
#include <time.h>

#include "common/net.h"
#include "conf/config.h"
#include "director/hosts.h"

struct director;

/* What a session keeps to release its assignment later: no pointers, so
 * a host or user that disappears meanwhile cannot dangle. */
struct director_ticket {
	uint32_t hash;
	uint16_t tag;		/* index of the tag */
	bool held;		/* a session reference is held */
};

struct director *director_new(const struct config *cfg, char **error_r);
void director_free(struct director **d);

uint32_t director_user_hash(struct director *d, const char *username);

/* Routes a user: the existing assignment if there is one (even to a host
 * that has gone down since, as Dovecot does), else the ring's choice,
 * which becomes the assignment. Takes a session reference on success,
 * which director_release() gives back. Returns the host, or NULL with a
 * reason ("no hosts", "unknown tag"). */
const struct director_host *director_route(struct director *d,
					   const char *username, const char *tag,
					   time_t now,
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

#endif
