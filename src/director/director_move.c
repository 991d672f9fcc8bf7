/* Moving users (reference §2.6-2.7) on one node:
 *
 *   move: assign the new host, pin the user (it cannot expire), ask for
 *   its sessions to close (callback), and hold its logins; when its last
 *   session has released its ticket, wait director.user_kick_delay so that
 *   backend processes can exit, then let the held logins go on. A move
 *   that has not finished after 30 s ends with a warning, as in Dovecot.
 *
 *   reset (flush): the users of a host whose hash now points elsewhere are
 *   moved, at most max_parallel at a time; users whose tag has no host left
 *   are killed and forgotten afterwards.
 *
 * Callbacks (resume, done) run after the move left the table, so they may
 * route the user again at once. */
#include <event2/event.h>
#include <stdlib.h>
#include <string.h>

#include "common/clock.h"
#include "common/log.h"
#include "common/xmalloc.h"
#include "director/director_private.h"

#define DIRECTOR_MOVE_TIMEOUT_MS 30000

enum director_move_state {
	MOVE_KILLING,	/* waiting for the user's sessions to close */
	MOVE_DELAY,	/* user_kick_delay before logins go on */
};

struct director_move {
	struct hmap_node node;
	struct director *d;
	uint16_t tag;
	uint32_t hash;
	enum director_move_state state;
	struct event *timer;
	uint64_t *waiters;
	size_t nwaiters, cap;
	void (*done)(void *ctx);
	void *done_ctx;
};

static uint64_t director_move_key(uint16_t tag, uint32_t hash)
{
	return hash_u64((uint64_t)tag << 32 | hash);
}

static struct director_move *director_move_find(struct director *d, uint16_t tag,
						uint32_t hash)
{
	struct hmap_node *n;
	HMAP_FOR_EACH_WITH_HASH(n, director_move_key(tag, hash), &d->moves) {
		struct director_move *m = CONTAINER_OF(n, struct director_move, node);
		if (m->tag == tag && m->hash == hash)
			return m;
	}
	return NULL;
}

bool director_user_moving(struct director *d, uint16_t tag, uint32_t hash)
{
	return director_move_find(d, tag, hash) != NULL;
}

void director_move_add_waiter(struct director *d, uint16_t tag, uint32_t hash,
			      uint64_t waiter)
{
	struct director_move *m = director_move_find(d, tag, hash);
	m->waiters = xgrow(m->waiters, &m->cap, m->nwaiters + 1, sizeof(*m->waiters));
	m->waiters[m->nwaiters++] = waiter;
}

/* Takes the move out of the table, unpins the user, then tells whoever
 * waited. With notify false (shutdown) nobody is told. */
static void director_move_finish(struct director_move *m, bool notify)
{
	struct director *d = m->d;
	hmap_remove(&d->moves, &m->node);
	if (m->timer != NULL)
		event_free(m->timer);
	struct director_tag *t = &d->tags[m->tag];
	struct director_user *u = user_directory_lookup(&t->users, m->hash);
	if (u != NULL)
		user_directory_unpin(&t->users, u, time(NULL));
	for (size_t i = 0; notify && i < m->nwaiters; i++) {
		if (d->cb.resume != NULL)
			d->cb.resume(d->cb_ctx, m->waiters[i]);
	}
	if (notify && m->done != NULL)
		m->done(m->done_ctx);
	free(m->waiters);
	free(m);
}

static void director_move_timer(evutil_socket_t fd, short what, void *arg)
{
	struct director_move *m = arg;
	(void)fd;
	(void)what;
	if (m->state == MOVE_KILLING)
		log_warning("director: finishing user hash %u move timed out, its state "
			    "may now be inconsistent (state=killing)", m->hash);
	director_move_finish(m, true);
}

static void director_move_arm(struct director_move *m, uint64_t ms)
{
	struct timeval tv = { (time_t)(ms / 1000), (suseconds_t)(ms % 1000) * 1000 };
	evtimer_add(m->timer, &tv);
}

/* The sessions are gone: wait user_kick_delay, then let logins go on. */
static void director_move_enter_delay(struct director_move *m)
{
	m->state = MOVE_DELAY;
	if (m->timer == NULL || m->d->kick_delay_ms == 0) {
		director_move_finish(m, true);
		return;
	}
	director_move_arm(m, m->d->kick_delay_ms);
}

void director_move_sessions_gone(struct director *d, uint16_t tag, uint32_t hash)
{
	struct director_move *m = director_move_find(d, tag, hash);
	if (m != NULL && m->state == MOVE_KILLING)
		director_move_enter_delay(m);
}

void director_move_start(struct director *d, uint16_t tag, struct director_user *user,
			 struct director_host *host, bool force_kill, time_t now,
			 void (*done)(void *ctx), void *ctx)
{
	bool changed = user->host != host;
	user_directory_set_host(user, host);
	user->timestamp = now;
	if (!changed && !force_kill) {
		/* the same host: only the timestamp is refreshed (§2.6) */
		if (done != NULL)
			done(ctx);
		return;
	}
	struct director_move *m = xcalloc(1, sizeof(*m));
	m->d = d;
	m->tag = tag;
	m->hash = user->hash;
	m->state = MOVE_KILLING;
	m->done = done;
	m->done_ctx = ctx;
	if (d->base != NULL)
		m->timer = evtimer_new(d->base, director_move_timer, m);
	hmap_insert(&d->moves, &m->node, director_move_key(tag, user->hash));
	user_directory_pin(&d->tags[tag].users, user);
	if (d->cb.kill != NULL)
		d->cb.kill(d->cb_ctx, user->hash);
	if (user->sessions == 0)
		director_move_enter_delay(m);
	else if (m->timer != NULL)
		director_move_arm(m, DIRECTOR_MOVE_TIMEOUT_MS);
}

void director_move_abort(struct director *d, uint16_t tag, uint32_t hash)
{
	struct director_move *m = director_move_find(d, tag, hash);
	if (m != NULL)
		director_move_finish(m, true);
}

enum director_result director_user_move(struct director *d, uint32_t hash,
					const struct ipaddr *ip, time_t now)
{
	struct director_host *host = director_host_list_find(&d->hosts, ip);
	if (host == NULL)
		return DIRECTOR_NOTFOUND;
	uint16_t idx;
	struct director_tag *t = director_tag_get(d, host->tag, true, &idx);
	if (director_user_moving(d, idx, hash))
		return DIRECTOR_TRYAGAIN;
	struct director_user *u = user_directory_lookup(&t->users, hash);
	if (u == NULL) {
		/* known only by its hash until its next login names it */
		u = user_directory_add(&t->users, hash, host, "", now);
		return DIRECTOR_OK;
	}
	director_move_start(d, idx, u, host, false, now, NULL, NULL);
	return DIRECTOR_OK;
}

/* ---- HOST-RESET-USERS ------------------------------------------------- */

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
	bool stepping;
	struct director_host **orphaned;	/* hosts whose users had nowhere to go */
	size_t norphaned, orphaned_cap;
	uint64_t start_ms;
	void (*done)(void *ctx);
	void *done_ctx;
};

static void director_reset_step(struct director_reset *r);

static void director_reset_move_done(void *ctx)
{
	struct director_reset *r = ctx;
	r->active--;
	if (!r->stepping)
		director_reset_step(r);
}

static void director_reset_finish(struct director_reset *r)
{
	struct director *d = r->d;
	/* users that were killed because their tag had no host left */
	for (size_t i = 0; i < r->norphaned; i++) {
		if (director_host_list_find(&d->hosts, &r->orphaned[i]->ip) == r->orphaned[i])
			(void)director_host_flush(d, &r->orphaned[i]->ip);
	}
	uint64_t ms = clock_monotonic_ms() - r->start_ms;
	log_info("director: moved %zu users in %u.%03u secs (max parallel=%u)",
		 r->count, (unsigned int)(ms / 1000), (unsigned int)(ms % 1000),
		 r->max_parallel);
	list_unlink(&d->resets, &r->node);
	r->done(r->done_ctx);
	free(r->items);
	free(r->orphaned);
	free(r);
}

static void director_reset_step(struct director_reset *r)
{
	struct director *d = r->d;
	time_t now = time(NULL);

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
				    now, director_reset_move_done, r);
	}
	r->stepping = false;
	if (r->next == r->count && r->active == 0)
		director_reset_finish(r);
}

static void director_reset_add(struct director_reset *r, uint16_t tag, uint32_t hash)
{
	r->items = xgrow(r->items, &r->cap, r->count + 1, sizeof(*r->items));
	r->items[r->count].tag = tag;
	r->items[r->count].hash = hash;
	r->count++;
}

static void director_reset_orphan(struct director_reset *r, struct director_host *h)
{
	for (size_t i = 0; i < r->norphaned; i++) {
		if (r->orphaned[i] == h)
			return;
	}
	r->orphaned = xgrow(r->orphaned, &r->orphaned_cap, r->norphaned + 1,
			    sizeof(*r->orphaned));
	r->orphaned[r->norphaned++] = h;
}

enum director_result director_reset_users(struct director *d, const struct ipaddr *ip,
					  unsigned int max_parallel, time_t now,
					  void (*done)(void *ctx), void *ctx)
{
	struct director_host *host = NULL;
	if (ip != NULL && (host = director_host_list_find(&d->hosts, ip)) == NULL)
		return DIRECTOR_NOTFOUND;
	(void)now;
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
				director_reset_orphan(r, u->host);
			director_reset_add(r, (uint16_t)i, u->hash);
		}
	}
	director_reset_step(r);
	return DIRECTOR_OK;
}

void director_moves_free(struct director *d)
{
	struct hmap_node *n, *next;
	HMAP_FOR_EACH_SAFE(n, next, &d->moves)
		director_move_finish(CONTAINER_OF(n, struct director_move, node), false);
	/* unfinished flushes end too: their owners free what they hold */
	struct list_node *ln;
	while ((ln = list_pop_head(&d->resets)) != NULL) {
		struct director_reset *r = CONTAINER_OF(ln, struct director_reset, node);
		r->done(r->done_ctx);
		free(r->items);
		free(r->orphaned);
		free(r);
	}
}
