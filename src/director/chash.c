/* Vhost ring construction and lookup. Building costs one MD5 per vhost and
 * happens only when hosts change; a lookup is a binary search. */
#include "director/chash.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/xmalloc.h"
#include "director/user_hash.h"

static int chash_point_cmp(const void *a, const void *b)
{
	const struct chash_point *pa = a, *pb = b;
	if (pa->value != pb->value)
		return pa->value < pb->value ? -1 : 1;
	return ipaddr_cmp(&pa->host->ip, &pb->host->ip);
}

static int chash_default_filter(const struct director_host *host, void *ctx)
{
	(void)ctx;
	return !host->down;
}

void chash_build(struct chash *ring, const struct director_host_list *hosts,
		 const char *tag, chash_host_filter_cb *include, void *ctx)
{
	size_t total = 0;

	if (include == NULL)
		include = chash_default_filter;
	chash_free(ring);
	for (size_t i = 0; i < hosts->count; i++) {
		const struct director_host *h = hosts->hosts[i];
		if (strcmp(h->tag, tag) == 0 && include(h, ctx))
			total += h->vhost_count;
	}
	ring->points = xmalloc((total == 0 ? 1 : total) * sizeof(*ring->points));
	for (size_t i = 0; i < hosts->count; i++) {
		struct director_host *h = hosts->hosts[i];
		if (strcmp(h->tag, tag) != 0 || !include(h, ctx))
			continue;
		for (unsigned int v = 0; v < h->vhost_count; v++) {
			char buf[IPADDR_STRLEN + 16];
			int n = snprintf(buf, sizeof(buf), "%s-%u", h->ip_str, v);
			ring->points[ring->count].value = md5_u32(buf, (size_t)n);
			ring->points[ring->count].host = h;
			ring->count++;
		}
	}
	qsort(ring->points, ring->count, sizeof(*ring->points), chash_point_cmp);
}

void chash_free(struct chash *ring)
{
	free(ring->points);
	ring->points = NULL;
	ring->count = 0;
}

struct director_host *chash_lookup(const struct chash *ring, uint32_t hash)
{
	size_t lo = 0, hi = ring->count;

	if (ring->count == 0)
		return NULL;
	/* first point with value >= hash */
	while (lo < hi) {
		size_t mid = lo + (hi - lo) / 2;
		if (ring->points[mid].value < hash)
			lo = mid + 1;
		else
			hi = mid;
	}
	if (lo == ring->count)
		lo = 0; /* wrap around to the lowest point */
	return ring->points[lo].host;
}
