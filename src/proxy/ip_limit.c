/* Per-address connection counts. */
#include "proxy/ip_limit.h"

#include <stdlib.h>

#include "common/xmalloc.h"

#define IP_LIMIT_SPARE_MAX 64

struct ip_count {
	struct hmap_node node;
	struct ipaddr ip;
	unsigned int count;
	struct ip_count *next_spare;
};

void ip_limit_init(struct ip_limit *l, unsigned int max)
{
	l->max = max;
	hmap_init(&l->counts);
	l->spare = NULL;
	l->spare_count = 0;
}

void ip_limit_deinit(struct ip_limit *l)
{
	struct hmap_node *n, *next;
	HMAP_FOR_EACH_SAFE(n, next, &l->counts) {
		hmap_remove(&l->counts, n);
		free(CONTAINER_OF(n, struct ip_count, node));
	}
	hmap_destroy(&l->counts);
	while (l->spare != NULL) {
		struct ip_count *c = l->spare;
		l->spare = c->next_spare;
		free(c);
	}
	l->spare_count = 0;
}

static struct ip_count *ip_limit_find(const struct ip_limit *l, const struct ipaddr *ip)
{
	struct hmap_node *n;
	HMAP_FOR_EACH_WITH_HASH(n, ipaddr_hash(ip), &l->counts) {
		struct ip_count *c = CONTAINER_OF(n, struct ip_count, node);
		if (ipaddr_equal(&c->ip, ip))
			return c;
	}
	return NULL;
}

bool ip_limit_take(struct ip_limit *l, const struct ipaddr *ip)
{
	if (l->max == 0)
		return true;
	struct ip_count *c = ip_limit_find(l, ip);
	if (c == NULL) {
		if (l->spare != NULL) {
			c = l->spare;
			l->spare = c->next_spare;
			l->spare_count--;
		} else {
			c = xmalloc(sizeof(*c));
		}
		c->ip = *ip;
		c->count = 0;
		hmap_insert(&l->counts, &c->node, ipaddr_hash(ip));
	}
	if (c->count >= l->max)
		return false;
	c->count++;
	return true;
}

void ip_limit_release(struct ip_limit *l, const struct ipaddr *ip)
{
	/* (max may have changed since the slot was taken: look anyway) */
	struct ip_count *c = ip_limit_find(l, ip);
	if (c == NULL || --c->count > 0)
		return;
	hmap_remove(&l->counts, &c->node);
	if (l->spare_count < IP_LIMIT_SPARE_MAX) {
		c->next_spare = l->spare;
		l->spare = c;
		l->spare_count++;
	} else {
		free(c);
	}
}

unsigned int ip_limit_count(const struct ip_limit *l, const struct ipaddr *ip)
{
	const struct ip_count *c = ip_limit_find(l, ip);
	return c == NULL ? 0 : c->count;
}
