/* HOST-RESET-USERS, the flush (reference §2.7): the users of a host whose
 * hash now points elsewhere are moved, at most max_parallel at a time;
 * users whose tag has no host left are killed on their host and forgotten
 * afterwards.
 *
 * A flush runs in steps from the director's completion queue: the first
 * on the turn after the request, then one after each move ends (a move's
 * end only counts and asks for a step, since it may happen inside a walk
 * of the tables). It holds users by (tag, hash) and hosts by address, so
 * whatever an admin removes meanwhile cannot dangle. */
#include <stdlib.h>

#include "common/clock.h"
#include "common/xmalloc.h"
#include "director/director_private.h"

struct director_reset_item {
	uint16_t tag;
	uint32_t hash;
};

struct director_reset {
	struct list_node node;		/* in director->resets */
	struct director *d;
	struct director_reset_item *items;
	size_t count, cap, next;
	unsigned int active, max_parallel;
	bool step_queued;
	bool stepping;			/* inside a step: moves that end count only */
	struct ipaddr *orphaned;	/* hosts whose users had nowhere to go */
	size_t norphaned, orphaned_cap;
	uint64_t start_ms;
	void (*done)(void *ctx);
	void *done_ctx;
};

static void director_reset_free(struct director_reset *r)
{
	free(r->items);
	free(r->orphaned);
	free(r);
}

static void director_reset_finish(struct director_reset *r)
{
	struct director *d = r->d;
	/* users that were killed because their tag had no host left; a host
	 * removed meanwhile took its users with it */
	for (size_t i = 0; i < r->norphaned; i++)
		(void)director_host_flush(d, &r->orphaned[i]);
	uint64_t ms = clock_monotonic_ms() - r->start_ms;
	director_report(d, LOG_LEVEL_INFO,
			"director: moved %zu users in %u.%03u secs (max parallel=%u)",
			r->count, (unsigned int)(ms / 1000), (unsigned int)(ms % 1000),
			r->max_parallel);
	list_unlink(&d->resets, &r->node);
	r->done(r->done_ctx);
	director_reset_free(r);
}

static void director_reset_queue_step(struct director_reset *r);

/* A move of this flush ended, maybe inside a walk: count, and step on
 * the next turn. */
static void director_reset_moved(void *ctx)
{
	struct director_reset *r = ctx;
	r->active--;
	if (!r->stepping)
		director_reset_queue_step(r);
}

static void director_reset_step(void *ctx)
{
	struct director_reset *r = ctx;
	struct director *d = r->d;
	time_t now = director_now(d);

	r->step_queued = false;
	r->stepping = true;
	while (r->active < r->max_parallel && r->next < r->count) {
		struct director_reset_item *it = &r->items[r->next++];
		struct director_tag *t = &d->tags[it->tag];
		struct director_user *u = user_directory_lookup(&t->users, it->hash);
		if (u == NULL || director_user_moving(d, it->tag, it->hash))
			continue;
		struct director_host *to = chash_lookup(&t->ring, it->hash);
		r->active++;
		/* no host left in the tag: kill on the old host, forget later */
		director_move_start(d, it->tag, u, to != NULL ? to : u->host, to == NULL,
				    now, director_reset_moved, r);
	}
	r->stepping = false;
	if (r->next == r->count && r->active == 0)
		director_reset_finish(r);
}

static void director_reset_queue_step(struct director_reset *r)
{
	if (r->step_queued)
		return;
	r->step_queued = true;
	director_defer_call(r->d, director_reset_step, r);
}

static void director_reset_add(struct director_reset *r, uint16_t tag, uint32_t hash)
{
	r->items = xgrow(r->items, &r->cap, r->count + 1, sizeof(*r->items));
	r->items[r->count].tag = tag;
	r->items[r->count].hash = hash;
	r->count++;
}

static void director_reset_orphan(struct director_reset *r, const struct ipaddr *ip)
{
	for (size_t i = 0; i < r->norphaned; i++) {
		if (ipaddr_equal(&r->orphaned[i], ip))
			return;
	}
	r->orphaned = xgrow(r->orphaned, &r->orphaned_cap, r->norphaned + 1,
			    sizeof(*r->orphaned));
	r->orphaned[r->norphaned++] = *ip;
}

enum director_result director_reset_users(struct director *d, const struct ipaddr *ip,
					  unsigned int max_parallel, time_t now,
					  void (*done)(void *ctx), void *ctx)
{
	struct director_host *host = NULL;
	if (ip != NULL && (host = director_host_list_find(&d->hosts, ip)) == NULL)
		return DIRECTOR_NOTFOUND;
	(void)now;
	d->stats.flushes++;
	struct director_reset *r = xcalloc(1, sizeof(*r));
	r->d = d;
	r->max_parallel = max_parallel != 0 ? max_parallel : d->max_parallel_moves;
	r->start_ms = clock_monotonic_ms();
	r->done = done;
	r->done_ctx = ctx;
	list_append(&d->resets, &r->node);
	/* only users whose hash now points elsewhere move (§2.7) */
	for (size_t i = 0; i < d->tags_count; i++) {
		struct director_tag *t = &d->tags[i];
		struct hmap_node *n;
		HMAP_FOR_EACH(n, &t->users.users) {
			struct director_user *u = CONTAINER_OF(n, struct director_user, node);
			if (host != NULL && u->host != host)
				continue;
			struct director_host *to = chash_lookup(&t->ring, u->hash);
			if (to == u->host)
				continue;
			if (to == NULL)
				director_reset_orphan(r, &u->host->ip);
			director_reset_add(r, (uint16_t)i, u->hash);
		}
	}
	/* the moves start on the next turn: never inside the request */
	director_reset_queue_step(r);
	return DIRECTOR_OK;
}

void director_resets_free(struct director *d)
{
	/* unfinished flushes end too: their owners free what they hold */
	struct list_node *ln;
	while ((ln = list_pop_head(&d->resets)) != NULL) {
		struct director_reset *r = CONTAINER_OF(ln, struct director_reset, node);
		r->done(r->done_ctx);
		director_reset_free(r);
	}
}
