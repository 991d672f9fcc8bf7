/* The vhost ring of one tag (reference §1.2–1.3): every up host with that
 * tag contributes vhost_count points MD5("<ip>-<i>"); a user goes to the
 * first point >= its hash, wrapping to the lowest. */
#ifndef LOFT_DIRECTOR_CHASH_H
#define LOFT_DIRECTOR_CHASH_H

#include <stddef.h>
#include <stdint.h>

#include "director/hosts.h"

struct chash_point {
	uint32_t value;
	struct director_host *host;
};

struct chash {
	struct chash_point *points;	/* sorted by value, then host address */
	size_t count;
};

/* Builds the ring from the hosts of the list whose tag equals `tag` and
 * that `include` accepts (NULL: every host not set down). */
typedef int chash_host_filter_cb(const struct director_host *host, void *ctx);
void chash_build(struct chash *ring, const struct director_host_list *hosts,
		 const char *tag, chash_host_filter_cb *include, void *ctx);
void chash_free(struct chash *ring);

/* The host for a user hash, or NULL when the ring has no points. */
struct director_host *chash_lookup(const struct chash *ring, uint32_t hash);

#endif
