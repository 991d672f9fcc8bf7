/* Selecting sessions for who, kick and the doveadm-compatible commands
 * (reference §7.1, §8.2): username masks (any matches; '*' and '?',
 * ASCII case-insensitive), optionally against an alternative-username
 * field instead of the name; a client network; backends by address or
 * name; the director's user hash. All given criteria must hold.
 *
 * registry_match() walks the user index when every mask is a plain name,
 * the backend index when backends are given by address, and every session
 * only otherwise. Sessions with a kick on its way are skipped. */
#ifndef LOFT_REGISTRY_FILTER_H
#define LOFT_REGISTRY_FILTER_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "common/net.h"
#include "registry/registry.h"

struct registry_filter {
	const char *const *user_masks;
	size_t user_masks_count;
	const char *alt_field;		/* masks match this user_* field */
	bool exact;			/* masks are names: no wildcards */
	bool have_net;
	struct cidr net;		/* client address */
	/* the backend: any of these addresses, or a name matching any of
	 * these masks (the passdb host or the backend's configured name) */
	const struct ipaddr *dests;
	size_t dests_count;
	const char *const *dest_hosts;
	size_t dest_hosts_count;
	bool have_hash;
	uint32_t hash;			/* the director's user hash */
	bool have_tag;			/* with the hash: routed in this tag, or
					 * not by the director at all */
	uint16_t tag;
	bool have_except;
	struct ipaddr except;		/* ... except sessions on this backend */
	bool logged_in;			/* only sessions with a user */
	bool proxied;			/* only sessions with a backend */
};

bool registry_filter_match(const struct registry_filter *f,
			   const struct registry_entry *e);

typedef void registry_match_cb(struct registry_entry *e, void *ctx);
/* Calls cb for every matching session; cb may kick it. */
void registry_match(struct registry *reg, const struct registry_filter *f,
		    registry_match_cb *cb, void *ctx);

#endif
