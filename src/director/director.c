/* The director: tags, rings, the store, routing and lookups. Host changes
 * live in director_apply.c, requests and completions in director_change.c,
 * moves in director_move.c and flushes in director_reset.c. */
#include "director/director.h"

#include <event2/event.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/xmalloc.h"
#include "director/director_private.h"

static time_t director_clock_default(void *ctx)
{
	(void)ctx;
	return time(NULL);
}

time_t director_now(struct director *d)
{
	return d->clock(d->clock_ctx);
}

void director_report(struct director *d, enum log_level level, const char *fmt, ...)
{
	char text[512];
	va_list ap;
	if (d->report == NULL)
		return;
	va_start(ap, fmt);
	vsnprintf(text, sizeof(text), fmt, ap);
	va_end(ap);
	d->report(d->report_ctx, level, text);
}

/* Down hosts, unhealthy hosts and hosts with 0 vhosts have no points. */
static int director_ring_filter(const struct director_host *h, void *ctx)
{
	(void)ctx;
	return !h->down && !h->unhealthy;
}

struct director_tag *director_tag_get(struct director *d, const char *name,
				      bool create, uint16_t *idx_r)
{
	for (size_t i = 0; i < d->tags_count; i++) {
		if (strcmp(d->tags[i].name, name) == 0) {
			if (idx_r != NULL)
				*idx_r = (uint16_t)i;
			return &d->tags[i];
		}
	}
	if (!create)
		return NULL;
	d->tags = xrealloc(d->tags, (d->tags_count + 1) * sizeof(*d->tags));
	struct director_tag *t = &d->tags[d->tags_count];
	memset(t, 0, sizeof(*t));
	t->name = xstrdup(name);
	user_directory_init(&t->users, d->expire_secs);
	director_pins_attach(d, &t->users);
	chash_build(&t->initial_ring, &d->initial, t->name, NULL, NULL);
	/* a tag born between prepare and commit gets its next ring now */
	if (d->rings_prepared)
		chash_build(&t->next_ring, &d->hosts, t->name, director_ring_filter, NULL);
	if (idx_r != NULL)
		*idx_r = (uint16_t)d->tags_count;
	d->tags_count++;
	return t;
}

uint16_t director_tag_index(struct director *d, const char *tag)
{
	uint16_t idx;
	return director_tag_get(d, tag == NULL ? "" : tag, false, &idx) != NULL ?
		idx : DIRECTOR_TAG_NONE;
}

const char *director_tag_name(const struct director *d, uint16_t idx)
{
	return idx < d->tags_count ? d->tags[idx].name : NULL;
}

/* ---- rings ------------------------------------------------------------- */

void director_rings_prepare(struct director *d)
{
	for (size_t i = 0; i < d->tags_count; i++) {
		chash_free(&d->tags[i].next_ring);
		chash_build(&d->tags[i].next_ring, &d->hosts, d->tags[i].name,
			    director_ring_filter, NULL);
	}
	d->rings_prepared = true;
}

void director_rings_foreach_moving(struct director *d,
				   void (*cb)(const struct director_moving_user *u,
					      void *ctx),
				   void *ctx)
{
	if (!d->rings_prepared)
		return;
	for (size_t i = 0; i < d->tags_count; i++) {
		struct director_tag *t = &d->tags[i];
		struct hmap_node *n;
		HMAP_FOR_EACH(n, &t->users.users) {
			struct director_user *u = CONTAINER_OF(n, struct director_user, node);
			const struct director_host *next = chash_lookup(&t->next_ring, u->hash);
			const struct director_host *hashed = chash_lookup(&t->ring, u->hash);
			/* a user being moved gets the move's pin when it ends */
			if (next == hashed || director_user_moving(d, (uint16_t)i, u->hash))
				continue;
			struct director_moving_user mu = {
				.hash = u->hash, .tag = t->name, .username = u->username,
				.current = u->host, .hashed = hashed, .next = next,
				.sessions = u->sessions, .local = u->local != 0,
				.ring_pinned = u->own_pin || u->remote_pins > 0,
			};
			cb(&mu, ctx);
		}
	}
}

void director_rings_commit(struct director *d)
{
	if (!d->rings_prepared)
		director_rings_prepare(d);
	for (size_t i = 0; i < d->tags_count; i++) {
		struct director_tag *t = &d->tags[i];
		chash_free(&t->ring);
		t->ring = t->next_ring;
		memset(&t->next_ring, 0, sizeof(t->next_ring));
	}
	d->rings_prepared = false;
	/* no ring points at a removed host any more */
	director_host_list_free(&d->retired);
	director_pins_committed(d);
}

void director_set_deferred_rings(struct director *d, bool deferred)
{
	d->rings_deferred = deferred;
}

void director_hosts_changed(struct director *d)
{
	char *error;
	if (!d->rings_deferred)
		director_rings_commit(d);
	if (d->store != NULL &&
	    d->store->save_hosts(d->store, &d->hosts, &d->initial, &error) < 0) {
		director_report(d, LOG_LEVEL_ERROR, "director: saving the host list failed, "
				"so this change will not survive a restart until a later "
				"save succeeds: %s", error);
		free(error);
	}
}

/* A tag for every host's tag, then the rings. */
static void director_tags_create(struct director *d)
{
	for (size_t i = 0; i < d->hosts.count; i++)
		(void)director_tag_get(d, d->hosts.hosts[i]->tag, true, NULL);
	director_rings_commit(d);
}

/* ---- lifecycle ------------------------------------------------------- */

static int director_parse_hosts(struct director_host_list *list,
				const struct config *cfg, char **error_r)
{
	for (size_t i = 0; i < cfg->director.mail_servers.count; i++) {
		char *error;
		if (director_hosts_parse(list, cfg->director.mail_servers.items[i],
					 &error) < 0) {
			*error_r = xasprintf("%s: director.mail_servers: %s",
					     config_source(cfg, "director.mail_servers"),
					     error);
			free(error);
			return -1;
		}
	}
	return 0;
}

static void director_dispatch_event(evutil_socket_t fd, short what, void *arg)
{
	(void)fd;
	(void)what;
	director_dispatch(arg);
}

struct director *director_new(const struct config *cfg, struct event_base *base,
			      char **error_r)
{
	struct director *d = xcalloc(1, sizeof(*d));

	d->base = base;
	d->hasher = user_hasher_new(cfg->director.username_hash);
	d->expire_secs = (time_t)(cfg->director.user_expire_ms / 1000);
	d->kick_delay_ms = cfg->director.user_kick_delay_ms;
	d->move_timeout_ms = cfg->director.user_move_timeout_ms;
	d->max_parallel_moves = cfg->director.max_parallel_moves;
	d->clock = director_clock_default;
	d->change_fn = NULL;
	hmap_init(&d->moves);
	list_init(&d->resets);
	list_init(&d->completions);
	if (base != NULL)
		d->dispatch_ev = event_new(base, -1, 0, director_dispatch_event, d);
	/* the configured list twice: the live one, and the initial one that
	 * answers "Initial config" (§1.5) */
	if (director_parse_hosts(&d->hosts, cfg, error_r) < 0 ||
	    director_parse_hosts(&d->initial, cfg, error_r) < 0) {
		director_free(&d);
		return NULL;
	}
	/* the untagged directory always exists: users without director_tag */
	(void)director_tag_get(d, "", true, NULL);
	director_tags_create(d);
	return d;
}

/* The saved hosts replace the configured ones; a configured host the
 * store does not know (added to mail_servers since) joins, unless an
 * admin had removed it. */
static void director_hosts_merge(struct director *d, struct director_host_list *saved,
				 const struct director_host_list *removed)
{
	for (size_t i = 0; i < d->hosts.count; i++) {
		const struct director_host *c = d->hosts.hosts[i];
		if (director_host_list_find(saved, &c->ip) != NULL ||
		    director_host_list_find(removed, &c->ip) != NULL)
			continue;
		struct director_host *h = director_host_list_add(saved, &c->ip, NULL, c->tag);
		h->vhost_count = c->vhost_count;
		director_report(d, LOG_LEVEL_INFO,
				"director: %s is new in director.mail_servers: added",
				c->ip_str);
	}
	for (size_t i = 0; i < saved->count; i++) {
		struct director_host *h = saved->hosts[i];
		const struct director_host *init = director_host_list_find(&d->initial, &h->ip);
		if (init != NULL && init->hostname != NULL)
			h->hostname = xstrdup(init->hostname);
	}
	director_host_list_free(&d->hosts);
	d->hosts = *saved;
	memset(saved, 0, sizeof(*saved));
}

int director_set_store(struct director *d, struct director_store *store,
		       char **error_r)
{
	struct director_host_list saved = { 0 }, removed = { 0 };
	bool found;
	char *error;

	d->store = store;
	if (store->load(store, &saved, &removed, &found, error_r) < 0)
		return -1;
	if (found) {
		director_hosts_merge(d, &saved, &removed);
		director_report(d, LOG_LEVEL_INFO, "director: loaded %zu hosts from %s",
				d->hosts.count, store->name);
	} else {
		director_report(d, LOG_LEVEL_INFO, "director: no saved state in %s yet: "
				"starting from director.mail_servers", store->name);
	}
	director_host_list_free(&saved);
	director_host_list_free(&removed);
	director_tags_create(d);
	/* written back at once: an unwritable store shows now, not at the
	 * first change an admin makes */
	if (store->save_hosts(store, &d->hosts, &d->initial, &error) < 0) {
		*error_r = xasprintf("director state cannot be saved: %s", error);
		free(error);
		return -1;
	}
	return 0;
}

void director_set_callbacks(struct director *d, const struct director_callbacks *cb,
			    void *ctx)
{
	d->cb = *cb;
	d->cb_ctx = ctx;
}

void director_set_report(struct director *d, director_report_fn *fn, void *ctx)
{
	d->report = fn;
	d->report_ctx = ctx;
}

void director_set_clock(struct director *d, time_t (*now)(void *ctx), void *ctx)
{
	d->clock = now;
	d->clock_ctx = ctx;
}

void director_free(struct director **dp)
{
	struct director *d = *dp;
	if (d == NULL)
		return;
	director_moves_free(d);
	director_resets_free(d);
	director_completions_free(d);
	director_pins_free(d);
	if (d->dispatch_ev != NULL)
		event_free(d->dispatch_ev);
	hmap_destroy(&d->moves);
	for (size_t i = 0; i < d->tags_count; i++) {
		user_directory_deinit(&d->tags[i].users);
		chash_free(&d->tags[i].ring);
		chash_free(&d->tags[i].next_ring);
		chash_free(&d->tags[i].initial_ring);
		free(d->tags[i].name);
	}
	free(d->tags);
	director_host_list_free(&d->hosts);
	director_host_list_free(&d->initial);
	director_host_list_free(&d->retired);
	user_hasher_free(&d->hasher);
	if (d->store != NULL)
		d->store->free(d->store);
	free(d);
	*dp = NULL;
}

uint32_t director_user_hash(struct director *d, const char *username)
{
	return user_hasher_hash(d->hasher, username);
}

/* ---- routing ----------------------------------------------------------- */

enum director_route_result director_route(struct director *d, const char *username,
					  const char *tag, time_t now, uint64_t waiter,
					  const struct director_host **host_r,
					  struct director_ticket *ticket_r,
					  const char **error_r)
{
	uint16_t idx;
	struct director_tag *t = director_tag_get(d, tag == NULL ? "" : tag, false, &idx);

	ticket_r->held = false;
	if (t == NULL) {
		*error_r = "unknown tag";
		return DIRECTOR_ROUTE_FAIL;
	}
	uint32_t hash = user_hasher_hash(d->hasher, username);
	if (director_user_moving(d, idx, hash)) {
		/* §2.6: logins of a user being moved wait for the kill */
		director_move_add_waiter(d, idx, hash, waiter);
		return DIRECTOR_ROUTE_WAIT;
	}
	struct director_user *u = user_directory_lookup(&t->users, hash);
	if (u != NULL && u->host->unhealthy && u->sessions == 0 && u->remote_pins == 0 &&
	    !u->releasing) {
		/* failing health checks and nobody on it here: routing the
		 * user afresh cannot put it on two backends; a ring's pin of
		 * its own goes first, as when the record expires */
		if (u->own_pin && t->users.release != NULL) {
			user_directory_release(&t->users, u);
		} else {
			user_directory_remove(&t->users, u);
			u = NULL;
		}
	}
	/* a ring: a host change being prepared, a pin to take first */
	enum director_route_result waits = director_pins_route(d, idx, hash, u, waiter);
	if (waits != DIRECTOR_ROUTE_OK)
		return waits;
	if (u != NULL) {
		u = user_directory_refresh(&t->users, u, username, now);
	} else {
		struct director_host *host = chash_lookup(&t->ring, hash);
		if (host == NULL) {
			*error_r = "no hosts";
			return DIRECTOR_ROUTE_FAIL;
		}
		u = user_directory_add(&t->users, hash, host, username, now, d->next_gen++);
	}
	if (u->host->unhealthy) {
		/* the user still has sessions on it: fail fast, not twice */
		*error_r = "the user's backend is failing its health checks";
		return DIRECTOR_ROUTE_FAIL;
	}
	u->local = 1;
	user_directory_session_ref(&t->users, u);
	ticket_r->hash = hash;
	ticket_r->gen = u->gen;
	ticket_r->tag = idx;
	ticket_r->held = true;
	*host_r = u->host;
	if (d->session_watch != NULL)
		d->session_watch(d->session_watch_ctx, t->name, hash, u->host, username, true);
	return DIRECTOR_ROUTE_OK;
}

void director_release(struct director *d, struct director_ticket *ticket,
		      time_t now)
{
	if (!ticket->held)
		return;
	ticket->held = false;
	if (ticket->tag >= d->tags_count)
		return;
	struct director_tag *t = &d->tags[ticket->tag];
	if (d->session_watch != NULL)
		d->session_watch(d->session_watch_ctx, t->name, ticket->hash, NULL, NULL, false);
	struct director_user *u = user_directory_lookup(&t->users, ticket->hash);
	/* the assignment this ticket was taken on may be gone, and a newer
	 * one (another login since a flush -F) is not this ticket's to count
	 * down: that would let it expire, or a move go on, under a live
	 * session (B7) */
	if (u == NULL || u->gen != ticket->gen)
		return;
	user_directory_session_unref(&t->users, u, now);
	if (u->sessions == 0)
		director_move_sessions_gone(d, ticket->tag, ticket->hash);
}

unsigned int director_expire(struct director *d, time_t now)
{
	unsigned int n = 0;
	for (size_t i = 0; i < d->tags_count; i++)
		n += user_directory_expire(&d->tags[i].users, now);
	return n;
}

const struct director_host *director_hashed_host(struct director *d,
						 uint32_t hash, const char *tag)
{
	struct director_tag *t = director_tag_get(d, tag, false, NULL);
	return t == NULL ? NULL : chash_lookup(&t->ring, hash);
}

const struct director_host_list *director_hosts(const struct director *d)
{
	return &d->hosts;
}

const struct director_stats *director_get_stats(const struct director *d)
{
	return &d->stats;
}

void director_removed_hosts(const struct director *d,
			    void (*cb)(const struct director_host *initial, void *ctx),
			    void *ctx)
{
	for (size_t i = 0; i < d->initial.count; i++) {
		if (director_host_list_find(&d->hosts, &d->initial.hosts[i]->ip) == NULL)
			cb(d->initial.hosts[i], ctx);
	}
}

/* ---- lookups ------------------------------------------------------------ */

void director_user_lookup(struct director *d, uint32_t hash, const char *tag,
			  time_t now, struct director_lookup *r)
{
	memset(r, 0, sizeof(*r));
	struct director_tag *t = director_tag_get(d, tag, false, NULL);
	if (t == NULL)
		return;
	struct director_user *u = user_directory_lookup(&t->users, hash);
	if (u != NULL) {
		r->assigned = true;
		r->current = u->host->ip;
		r->expires = user_directory_expires(&t->users, u, now);
	}
	const struct director_host *h = chash_lookup(&t->ring, hash);
	if (h != NULL) {
		r->have_hashed = true;
		r->hashed = h->ip;
	}
	h = chash_lookup(&t->initial_ring, hash);
	if (h != NULL) {
		r->have_initial = true;
		r->initial = h->ip;
	}
}

void director_set_session_watch(struct director *d, director_session_watch_fn *fn,
				void *ctx)
{
	d->session_watch = fn;
	d->session_watch_ctx = ctx;
}

enum director_hold_result director_user_hold(struct director *d, const char *tag,
					     uint32_t hash, const struct ipaddr *ip,
					     const char *username, time_t now,
					     struct director_ticket *ticket_r)
{
	uint16_t idx;
	struct director_tag *t = director_tag_get(d, tag, false, &idx);
	struct director_host *host = director_host_list_find(&d->hosts, ip);
	if (ticket_r != NULL)
		ticket_r->held = false;
	if (t == NULL || host == NULL)
		return DIRECTOR_HOLD_UNKNOWN;
	struct director_user *u = user_directory_lookup(&t->users, hash);
	/* being moved: the session counts (the move waits for its end) and
	 * must close; a record of its own (the move made it) is there */
	enum director_hold_result res = director_user_moving(d, idx, hash) ?
		DIRECTOR_HOLD_ELSEWHERE : DIRECTOR_HOLD_OK;
	if (u == NULL && res == DIRECTOR_HOLD_OK)
		u = user_directory_add(&t->users, hash, host, username, now, d->next_gen++);
	else if (u == NULL || (u->host != host && res == DIRECTOR_HOLD_OK))
		return DIRECTOR_HOLD_ELSEWHERE;
	if (ticket_r != NULL) {
		user_directory_session_ref(&t->users, u);
		ticket_r->hash = hash;
		ticket_r->gen = u->gen;
		ticket_r->tag = idx;
		ticket_r->held = true;
	}
	return res;
}

void director_users_foreach(struct director *d, const struct ipaddr *ip, time_t now,
			    void (*cb)(const struct director_user_info *info, void *ctx),
			    void *ctx)
{
	for (size_t i = 0; i < d->tags_count; i++) {
		struct user_directory *dir = &d->tags[i].users;
		struct hmap_node *n;
		HMAP_FOR_EACH(n, &dir->users) {
			struct director_user *u = CONTAINER_OF(n, struct director_user, node);
			if (ip != NULL && !ipaddr_equal(ip, &u->host->ip))
				continue;
			struct director_user_info info = {
				.hash = u->hash,
				.expires = user_directory_expires(dir, u, now),
				.host = u->host,
				.username = u->username,
				.tag = d->tags[i].name,
				.sessions = u->sessions,
			};
			cb(&info, ctx);
		}
	}
}
