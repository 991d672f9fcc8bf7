/* Auth failure penalty table: a hash map by (truncated) address and a
 * list by last change, so expiry pops old records from the front. */
#include "auth/penalty.h"

#include <stdbool.h>
#include <stdlib.h>
#include <string.h>

#include "common/hmap.h"
#include "common/list.h"
#include "common/xmalloc.h"

#define PENALTY_MAX 4
#define PENALTY_DECAY_SECS 15
#define PENALTY_MAX_DELAY_SECS 15
#define PENALTY_EXPIRE_SECS 29	/* 2 + 4 + 8 + 15, as Dovecot's auth sets it */
#define PENALTY_CHECKSUMS 10

struct penalty_rec {
	struct hmap_node node;
	struct list_node lru;
	struct ipaddr ip;
	unsigned int penalty;
	time_t last_penalty;
	time_t last_update;
	uint64_t checksums[PENALTY_CHECKSUMS];
	unsigned int nchecksums;
};

struct penalty {
	struct hmap recs;
	struct list lru;	/* oldest last_update first */
	penalty_raised_cb *raised;
	void *raised_ctx;
};

/* IPv6 clients count per /48 so one client cannot fill the table. */
static struct ipaddr penalty_key(const struct ipaddr *ip)
{
	struct ipaddr k = *ip;
	if (k.family == AF_INET6)
		memset(&k.u.v6.s6_addr[6], 0, 10);
	return k;
}

static struct penalty_rec *penalty_find(struct penalty *p, const struct ipaddr *ip)
{
	struct ipaddr k = penalty_key(ip);
	struct hmap_node *n;
	HMAP_FOR_EACH_WITH_HASH(n, ipaddr_hash(&k), &p->recs) {
		struct penalty_rec *r = CONTAINER_OF(n, struct penalty_rec, node);
		if (ipaddr_equal(&r->ip, &k))
			return r;
	}
	return NULL;
}

static void penalty_remove(struct penalty *p, struct penalty_rec *r)
{
	hmap_remove(&p->recs, &r->node);
	list_unlink(&p->lru, &r->lru);
	free(r);
}

static void penalty_touch(struct penalty *p, struct penalty_rec *r, time_t now)
{
	r->last_update = now;
	list_unlink(&p->lru, &r->lru);
	list_append(&p->lru, &r->lru);
}

static unsigned int penalty_effective(const struct penalty_rec *r, time_t now)
{
	if (r == NULL || now - r->last_penalty >= PENALTY_DECAY_SECS)
		return 0;
	return r->penalty;
}

struct penalty *penalty_new(void)
{
	struct penalty *p = xcalloc(1, sizeof(*p));
	hmap_init(&p->recs);
	list_init(&p->lru);
	return p;
}

void penalty_free(struct penalty **pp)
{
	struct penalty *p = *pp;
	if (p == NULL)
		return;
	while (!list_is_empty(&p->lru))
		penalty_remove(p, CONTAINER_OF(p->lru.head, struct penalty_rec, lru));
	hmap_destroy(&p->recs);
	free(p);
	*pp = NULL;
}

void penalty_set_raised_hook(struct penalty *p, penalty_raised_cb *cb, void *ctx)
{
	p->raised = cb;
	p->raised_ctx = ctx;
}

unsigned int penalty_delay_ms(struct penalty *p, const struct ipaddr *ip, time_t now)
{
	unsigned int pen = penalty_effective(penalty_find(p, ip), now);
	if (pen == 0)
		return 0;
	unsigned int secs = 2u << pen;
	return (secs > PENALTY_MAX_DELAY_SECS ? PENALTY_MAX_DELAY_SECS : secs) * 1000;
}

static struct penalty_rec *penalty_get(struct penalty *p, const struct ipaddr *ip)
{
	struct penalty_rec *r = penalty_find(p, ip);
	if (r == NULL) {
		r = xcalloc(1, sizeof(*r));
		r->ip = penalty_key(ip);
		hmap_insert(&p->recs, &r->node, ipaddr_hash(&r->ip));
		list_append(&p->lru, &r->lru);
	}
	return r;
}

static void penalty_raise(struct penalty *p, struct penalty_rec *r, unsigned int pen,
			  time_t now)
{
	r->penalty = pen + 1 > PENALTY_MAX ? PENALTY_MAX : pen + 1;
	r->last_penalty = now;
	penalty_touch(p, r, now);
}

void penalty_failure_remote(struct penalty *p, const struct ipaddr *ip,
			    unsigned int count, time_t now)
{
	struct penalty_rec *r = penalty_get(p, ip);
	for (unsigned int i = 0; i < count && i < PENALTY_MAX; i++)
		penalty_raise(p, r, penalty_effective(r, now), now);
}

bool penalty_failure(struct penalty *p, const struct ipaddr *ip, const char *user,
		     const char *password, time_t now)
{
	struct penalty_rec *r = penalty_find(p, ip);
	unsigned int pen = penalty_effective(r, now);
	r = penalty_get(p, ip);
	/* the password and the user, hashed together: not stored in clear */
	size_t plen = strlen(password), ulen = strlen(user);
	char *buf = xmalloc(plen + ulen + 1);
	memcpy(buf, password, plen);
	memcpy(buf + plen, user, ulen + 1);
	uint64_t sum = hash_bytes(buf, plen + ulen);
	explicit_bzero(buf, plen + ulen);
	free(buf);
	for (unsigned int i = 0; i < r->nchecksums; i++) {
		if (r->checksums[i] == sum) {
			r->penalty = pen; /* the same mistake again: no escalation */
			return false;
		}
	}
	if (r->nchecksums < PENALTY_CHECKSUMS)
		r->checksums[r->nchecksums++] = sum;
	penalty_raise(p, r, pen, now);
	if (p->raised != NULL)
		p->raised(p->raised_ctx, ip);
	return true;
}

void penalty_success(struct penalty *p, const struct ipaddr *ip, time_t now)
{
	struct penalty_rec *r = penalty_find(p, ip);
	if (r != NULL && penalty_effective(r, now) > 0)
		penalty_remove(p, r);
}

size_t penalty_expire(struct penalty *p, time_t now)
{
	while (!list_is_empty(&p->lru)) {
		struct penalty_rec *r = CONTAINER_OF(p->lru.head, struct penalty_rec, lru);
		if (now - r->last_update < PENALTY_EXPIRE_SECS)
			break;
		penalty_remove(p, r);
	}
	return hmap_count(&p->recs);
}
