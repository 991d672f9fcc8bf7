/* The auth failure penalty per client address (reference §6.3), as
 * Dovecot's auth and anvil apply it:
 *
 * - the key is the client address (forwarded by a trusted proxy if so);
 *   IPv6 addresses count per /48;
 * - a penalty whose last increase is 15 s or more ago counts as 0;
 * - with penalty p > 0, authentication starts min(2 * 2^p, 15) s late
 *   (4 s, 8 s, then 15 s);
 * - a failure raises it to min(p + 1, 4), unless the same user and
 *   password already failed from there (a client retrying a stale
 *   password does not escalate; up to 10 are remembered);
 * - a success resets it; records go 29 s after their last change.
 *
 * Time is passed in (seconds). Loop-thread only. */
#ifndef LOFT_AUTH_PENALTY_H
#define LOFT_AUTH_PENALTY_H

#include <stdbool.h>
#include <stdint.h>
#include <time.h>

#include "common/net.h"

struct penalty;

struct penalty *penalty_new(void);
void penalty_free(struct penalty **p);

/* Called when a local failure raised ip's penalty (penalty_failure()
 * returned true): a director ring tells the other nodes (doc/ring.md
 * §15). NULL: nobody. */
typedef void penalty_raised_cb(void *ctx, const struct ipaddr *ip);
void penalty_set_raised_hook(struct penalty *p, penalty_raised_cb *cb, void *ctx);

/* How long to hold back an authentication from ip now, in ms (0: none). */
unsigned int penalty_delay_ms(struct penalty *p, const struct ipaddr *ip, time_t now);
/* true when the penalty rose (not the same mistake again). */
bool penalty_failure(struct penalty *p, const struct ipaddr *ip, const char *user,
		     const char *password, time_t now);
/* count failures that other nodes of a ring saw from ip (doc/ring.md
 * §15): each raises the penalty as a new mistake would. */
void penalty_failure_remote(struct penalty *p, const struct ipaddr *ip,
			    unsigned int count, time_t now);
void penalty_success(struct penalty *p, const struct ipaddr *ip, time_t now);
/* Forgets records unchanged for 29 s; returns how many remain. */
size_t penalty_expire(struct penalty *p, time_t now);

#endif
