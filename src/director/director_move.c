/* Moving users (reference §2.6) on one node:
 *
 *   move: assign the new host, pin the user (it cannot expire), ask for
 *   its sessions to close (callback), and hold its logins; when its last
 *   session has released its ticket, wait director.user_kick_delay so that
 *   backend processes can exit, then let the held logins go on. A move
 *   that has not finished after director.user_move_timeout ends with a
 *   warning, as in Dovecot (a ring replaces that fallback with its own).
 *
 * A ring's move (doc/ring.md §5) is held the same way on every node, but
 * ends only when the ring says so (director_user_move_end): once this
 * node's sessions of the user are gone (or the move timeout passed) it
 * tells the ring (pin_cb.move_ready) and keeps holding the logins; the
 * ring waits user_kick_delay once every node has said so.
 *
 * A move ends inside whatever ended it (a release, an abort from a
 * host change's walk, its timer): the held logins' resumes are queued
 * for the next loop turn, and the internal `moved` callback only counts
 * and queues (director_reset.c), so nothing walks the tables again from
 * inside a walk. */
#include <event2/event.h>
#include <stdlib.h>
#include <string.h>

#include "common/xmalloc.h"
#include "director/director_private.h"

enum director_move_state {
	MOVE_KILLING,	/* waiting for the user's sessions to close */
	MOVE_DELAY,	/* user_kick_delay before logins go on */
	MOVE_HELD,	/* a ring's: this node is ready, the ring decides */
};

struct director_move {
	struct hmap_node node;
	struct director *d;
	uint16_t tag;
	uint32_t hash;
	enum director_move_state state;
	bool ring;
	struct event *timer;
	uint64_t *waiters;
	size_t nwaiters, cap;
	void (*moved)(void *ctx);
	void *moved_ctx;
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

/* Takes the move out of the table and unpins the user; held logins are
 * resumed on the next turn. With notify false (shutdown) nobody is told. */
static void director_move_finish(struct director_move *m, bool notify)
{
	struct director *d = m->d;
	hmap_remove(&d->moves, &m->node);
	if (m->timer != NULL)
		event_free(m->timer);
	struct director_tag *t = &d->tags[m->tag];
	struct director_user *u = user_directory_lookup(&t->users, m->hash);
	if (u != NULL)
		user_directory_unpin(&t->users, u, director_now(d));
	for (size_t i = 0; notify && i < m->nwaiters; i++)
		director_defer_resume(d, m->waiters[i]);
	if (notify && m->moved != NULL)
		m->moved(m->moved_ctx);
	free(m->waiters);
	free(m);
}

static void director_move_ready(struct director_move *m);

static void director_move_timer(evutil_socket_t fd, short what, void *arg)
{
	struct director_move *m = arg;
	(void)fd;
	(void)what;
	if (m->state == MOVE_KILLING)
		director_report(m->d, LOG_LEVEL_WARNING,
				"director: finishing user hash %u move timed out, its "
				"state may now be inconsistent (state=killing)", m->hash);
	if (m->ring)
		director_move_ready(m);
	else
		director_move_finish(m, true);
}

static void director_move_arm(struct director_move *m, uint64_t ms)
{
	struct timeval tv = { (time_t)(ms / 1000), (suseconds_t)(ms % 1000) * 1000 };
	evtimer_add(m->timer, &tv);
}

/* A ring's move: this node is done with the user's sessions. */
static void director_move_ready(struct director_move *m)
{
	struct director *d = m->d;
	m->state = MOVE_HELD;
	if (m->timer != NULL)
		evtimer_del(m->timer);
	if (d->pin_cb.move_ready != NULL)
		d->pin_cb.move_ready(d->pin_ctx, d->tags[m->tag].name, m->hash);
}

/* The sessions are gone: wait user_kick_delay, then let logins go on. */
static void director_move_enter_delay(struct director_move *m)
{
	if (m->ring) {
		director_move_ready(m);
		return;
	}
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

static struct director_move *director_move_new(struct director *d, uint16_t tag,
					       struct director_user *user,
					       void (*moved)(void *ctx), void *ctx)
{
	struct director_move *m = xcalloc(1, sizeof(*m));
	m->d = d;
	m->tag = tag;
	m->hash = user->hash;
	m->state = MOVE_KILLING;
	m->moved = moved;
	m->moved_ctx = ctx;
	if (d->base != NULL)
		m->timer = evtimer_new(d->base, director_move_timer, m);
	hmap_insert(&d->moves, &m->node, director_move_key(tag, user->hash));
	user_directory_pin(&d->tags[tag].users, user);
	return m;
}

/* Closes the user's sessions; the move goes on once they are gone. */
static void director_move_kill(struct director_move *m, const struct director_user *user)
{
	struct director *d = m->d;
	if (d->cb.kill != NULL)
		d->cb.kill(d->cb_ctx, m->tag, user->hash);
	if (user->sessions == 0)
		director_move_enter_delay(m);
	else if (m->timer != NULL)
		director_move_arm(m, d->move_timeout_ms);
}

void director_move_start(struct director *d, uint16_t tag, struct director_user *user,
			 struct director_host *host, bool force_kill, time_t now,
			 void (*moved)(void *ctx), void *ctx)
{
	bool changed = user->host != host;
	user_directory_set_host(user, host);
	user->timestamp = now;
	if (!changed && !force_kill) {
		/* the same host: only the timestamp is refreshed (§2.6) */
		if (moved != NULL)
			moved(ctx);
		return;
	}
	director_move_kill(director_move_new(d, tag, user, moved, ctx), user);
}

enum director_result director_user_move_hold(struct director *d, const char *tag,
					     uint32_t hash, const struct ipaddr *ip,
					     time_t now)
{
	struct director_host *host = director_host_list_find(&d->hosts, ip);
	uint16_t idx;
	struct director_tag *t = director_tag_get(d, tag, host != NULL, &idx);
	if (host == NULL || t == NULL)
		return DIRECTOR_NOTFOUND;
	if (director_user_moving(d, idx, hash))
		return DIRECTOR_OK;
	/* every node holds the user's logins, with a record or not */
	struct director_user *u = user_directory_lookup(&t->users, hash);
	if (u == NULL)
		u = user_directory_add(&t->users, hash, host, "", now, d->next_gen++);
	user_directory_set_host(u, host);
	u->timestamp = now;
	struct director_move *m = director_move_new(d, idx, u, NULL, NULL);
	m->ring = true;
	d->stats.moves++;
	director_move_kill(m, u);
	return DIRECTOR_OK;
}

void director_user_move_end(struct director *d, const char *tag, uint32_t hash)
{
	uint16_t idx;
	struct director_move *m = director_tag_get(d, tag, false, &idx) != NULL ?
		director_move_find(d, idx, hash) : NULL;
	if (m != NULL)
		director_move_finish(m, true);
}

void director_move_abort(struct director *d, uint16_t tag, uint32_t hash)
{
	struct director_move *m = director_move_find(d, tag, hash);
	/* a ring's move ends only when the ring says (move_end): until
	 * every node closed the user's sessions, another may still have
	 * one on its old backend */
	if (m != NULL && !m->ring)
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
	d->stats.moves++;
	struct director_user *u = user_directory_lookup(&t->users, hash);
	if (u == NULL) {
		/* known only by its hash until its next login names it */
		(void)user_directory_add(&t->users, hash, host, "", now, d->next_gen++);
		return DIRECTOR_OK;
	}
	director_move_start(d, idx, u, host, false, now, NULL, NULL);
	return DIRECTOR_OK;
}

void director_moves_free(struct director *d)
{
	struct hmap_node *n, *next;
	HMAP_FOR_EACH_SAFE(n, next, &d->moves)
		director_move_finish(CONTAINER_OF(n, struct director_move, node), false);
}
