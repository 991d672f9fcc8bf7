/* Connections per client address, bounded: the pre-login slots of
 * limits.max_prelogin_per_ip, so that one address cannot hold every
 * pre-login connection loftd has room for. An address is counted only
 * while it has connections; a few freed records are kept for reuse, so
 * a steady stream of logins allocates nothing. */
#ifndef LOFT_PROXY_IP_LIMIT_H
#define LOFT_PROXY_IP_LIMIT_H

#include <stdbool.h>

#include "common/hmap.h"
#include "common/net.h"

struct ip_limit {
	unsigned int max;	/* 0: no limit (nothing is counted); may
				 * change while slots are held */
	struct hmap counts;	/* struct ip_count by address */
	struct ip_count *spare;	/* freed records, for reuse */
	unsigned int spare_count;
};

void ip_limit_init(struct ip_limit *l, unsigned int max);
void ip_limit_deinit(struct ip_limit *l);
/* Takes a slot for ip; false (and nothing taken) when it has max. */
bool ip_limit_take(struct ip_limit *l, const struct ipaddr *ip);
/* Gives back a slot that ip_limit_take() gave. */
void ip_limit_release(struct ip_limit *l, const struct ipaddr *ip);
/* Slots ip holds now. */
unsigned int ip_limit_count(const struct ip_limit *l, const struct ipaddr *ip);

#endif
