/* director flush on a node of a ring (reference §2.7, doc/ring.md §5):
 * the users of a host (or of every host) whose hashed host differs from
 * the one they are on are moved there, each with a ring-wide move, at
 * most max_parallel at a time; the admin is answered once every move is
 * over. In a ring every such user is pinned (doc/ring.md §3), so this
 * node's records, which mirror every pin, name them all.
 *
 * Not in a ring: flush -F (forget without kicking) is refused, since
 * nodes forgetting users at different moments could put a user on two
 * backends; and users whose tag has no host left stay where they are
 * (Dovecot kills them), with a warning. */
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "common/clock.h"
#include "common/xmalloc.h"
#include "director/director.h"
#include "ring/ring_private.h"

struct ring_flush_item {
	char *tag;
	uint32_t hash;
	struct ipaddr to;
};

struct ring_flush {
	struct ring_flush *next;	/* in ring->flushes */
	struct ring *ring;		/* NULL: the ring is gone, moves still answer */
	struct ring_flush_item *items;
	size_t count, cap, next_item, moved;
	unsigned int active, max_parallel, orphaned;
	uint64_t start_ms;
	director_change_done_cb *done;
	void *done_ctx;
};

static void ring_flush_free(struct ring_flush *f)
{
	for (size_t i = 0; i < f->count; i++)
		free(f->items[i].tag);
	free(f->items);
	free(f);
}

static void ring_flush_unlink(struct ring_flush *f)
{
	for (struct ring_flush **p = &f->ring->flushes; *p != NULL; p = &(*p)->next) {
		if (*p == f) {
			*p = f->next;
			break;
		}
	}
}

static void ring_flush_step(struct ring_flush *f);

static void ring_flush_moved(void *ctx, const struct director_change_result *res)
{
	struct ring_flush *f = ctx;
	f->active--;
	if (f->ring == NULL) {
		if (f->active == 0)
			ring_flush_free(f);
		return;
	}
	/* TRYAGAIN: the user is being moved already, as a reset skips it */
	if (res->result == DIRECTOR_OK)
		f->moved++;
	ring_flush_step(f);
}

static void ring_flush_step(struct ring_flush *f)
{
	struct ring *r = f->ring;
	while (f->active < f->max_parallel && f->next_item < f->count) {
		const struct ring_flush_item *it = &f->items[f->next_item++];
		struct director_change c = {
			.type = DIRECTOR_CHANGE_USER_MOVE, .ip = it->to, .user_hash = it->hash,
			.now = time(NULL),
		};
		f->active++;
		ring_move_request(r, &c, ring_flush_moved, f);
	}
	if (f->active > 0 || f->next_item < f->count)
		return;
	uint64_t ms = clock_monotonic_ms() - f->start_ms;
	ring_report(r, LOG_LEVEL_INFO, "ring: flush moved %zu users in %u.%03u secs "
		    "(max parallel=%u)", f->moved, (unsigned int)(ms / 1000),
		    (unsigned int)(ms % 1000), f->max_parallel);
	if (f->orphaned > 0)
		ring_report(r, LOG_LEVEL_WARNING, "ring: flush left %u users whose tag has "
			    "no host left where they are", f->orphaned);
	ring_flush_unlink(f);
	director_change_answer(r->director, f->done, f->done_ctx, DIRECTOR_OK, NULL);
	ring_flush_free(f);
}

static void ring_flush_collect(const struct director_user_info *info, void *ctx)
{
	struct ring_flush *f = ctx;
	const struct director_host *hashed =
		director_hashed_host(f->ring->director, info->hash, info->tag);
	if (hashed == info->host)
		return;
	if (hashed == NULL) {
		f->orphaned++;
		return;
	}
	f->items = xgrow(f->items, &f->cap, f->count + 1, sizeof(*f->items));
	f->items[f->count++] = (struct ring_flush_item){
		.tag = xstrdup(info->tag), .hash = info->hash, .to = hashed->ip,
	};
}

void ring_flush_request(struct ring *r, const struct director_change *c,
			director_change_done_cb *done, void *done_ctx)
{
	if (c->type == DIRECTOR_CHANGE_HOST_FLUSH) {
		director_change_answer(r->director, done, done_ctx, DIRECTOR_INVALID,
				       "flush -F is refused in a director ring: nodes "
				       "forgetting users at different moments could put a "
				       "user on two backends; use flush");
		return;
	}
	if (!ring_is_serving(r) || !r->hosts_known) {
		director_change_answer(r->director, done, done_ctx, DIRECTOR_INVALID,
				       "this director is not in touch with its ring");
		return;
	}
	bool known = c->all_hosts;
	for (size_t i = 0; i < r->hosts.count && !known; i++)
		known = ipaddr_equal(&r->hosts.hosts[i].ip, &c->ip);
	if (!known) {
		director_change_answer(r->director, done, done_ctx, DIRECTOR_NOTFOUND, NULL);
		return;
	}
	struct ring_flush *f = xcalloc(1, sizeof(*f));
	f->ring = r;
	f->max_parallel = c->max_parallel > 0 ? c->max_parallel : r->max_parallel_moves;
	f->start_ms = clock_monotonic_ms();
	f->done = done;
	f->done_ctx = done_ctx;
	director_users_foreach(r->director, c->all_hosts ? NULL : &c->ip, c->now,
			       ring_flush_collect, f);
	f->next = r->flushes;
	r->flushes = f;
	ring_flush_step(f);
}

void ring_flushes_free(struct ring *r)
{
	while (r->flushes != NULL) {
		struct ring_flush *f = r->flushes;
		r->flushes = f->next;
		director_change_answer(r->director, f->done, f->done_ctx, DIRECTOR_INVALID,
				       "the director is stopping");
		f->ring = NULL;
		/* its moves are answered on a later turn: the last frees it */
		if (f->active == 0)
			ring_flush_free(f);
	}
}
