/* The director: tags, hosts, rings, routing and the changes admins make.
 * Moves (kill, wait, reassign) live in director_move.c. */
#include "director/director.h"

#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "common/log.h"
#include "common/xmalloc.h"
#include "director/director_private.h"
#include "director/state.h"

#define DIRECTOR_VHOST_MAX_TEXT "vhost count too large"

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
	chash_build(&t->initial_ring, &d->initial, t->name, NULL, NULL);
	if (idx_r != NULL)
		*idx_r = (uint16_t)d->tags_count;
	d->tags_count++;
	return t;
}

/* Down hosts, unhealthy hosts and hosts with 0 vhosts have no points. */
static int director_ring_filter(const struct director_host *h, void *ctx)
{
	(void)ctx;
	return !h->down && !h->unhealthy;
}

static void director_rings_rebuild(struct director *d)
{
	for (size_t i = 0; i < d->tags_count; i++)
		chash_build(&d->tags[i].ring, &d->hosts, d->tags[i].name,
			    director_ring_filter, NULL);
}

void director_hosts_changed(struct director *d)
{
	char *error;
	director_rings_rebuild(d);
	if (d->state_path != NULL && director_state_save(d, &error) < 0) {
		log_error("director: saving the host list failed, so this change will "
			  "not survive a restart until a later save succeeds: %s", error);
		free(error);
	}
	if (d->cb.hosts_changed != NULL)
		d->cb.hosts_changed(d->cb_ctx);
}

/* A tag for every host's tag, then the rings. */
static void director_tags_create(struct director *d)
{
	for (size_t i = 0; i < d->hosts.count; i++)
		(void)director_tag_get(d, d->hosts.hosts[i]->tag, true, NULL);
	director_rings_rebuild(d);
}

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

struct director *director_new(const struct config *cfg, struct event_base *base,
			      char **error_r)
{
	struct director *d = xcalloc(1, sizeof(*d));

	d->base = base;
	d->state_lock_fd = -1;
	d->hasher = user_hasher_new(cfg->director.username_hash);
	d->expire_secs = (time_t)(cfg->director.user_expire_ms / 1000);
	d->kick_delay_ms = cfg->director.user_kick_delay_ms;
	d->max_parallel_moves = cfg->director.max_parallel_moves;
	hmap_init(&d->moves);
	list_init(&d->resets);
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

int director_open_state(struct director *d, const char *state_dir, char **error_r)
{
	char *error;
	if (director_state_lock(d, state_dir, error_r) < 0)
		return -1;
	d->state_path = xasprintf("%s/" DIRECTOR_STATE_FILE, state_dir);
	if (director_state_load(d, error_r) < 0)
		return -1;
	director_tags_create(d);
	/* written back at once: an unwritable state_dir shows now, not at
	 * the first change an admin makes */
	if (director_state_save(d, &error) < 0) {
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

void director_free(struct director **dp)
{
	struct director *d = *dp;
	if (d == NULL)
		return;
	director_moves_free(d);
	hmap_destroy(&d->moves);
	for (size_t i = 0; i < d->tags_count; i++) {
		user_directory_deinit(&d->tags[i].users);
		chash_free(&d->tags[i].ring);
		chash_free(&d->tags[i].initial_ring);
		free(d->tags[i].name);
	}
	free(d->tags);
	director_host_list_free(&d->hosts);
	director_host_list_free(&d->initial);
	user_hasher_free(&d->hasher);
	free(d->state_path);
	if (d->state_lock_fd >= 0)
		close(d->state_lock_fd);
	free(d);
	*dp = NULL;
}

uint32_t director_user_hash(struct director *d, const char *username)
{
	return user_hasher_hash(d->hasher, username);
}

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
	if (u != NULL && u->host->unhealthy && u->sessions == 0) {
		/* failing health checks and nobody on it here: routing the
		 * user afresh cannot put it on two backends */
		user_directory_remove(&t->users, u);
		u = NULL;
	}
	if (u != NULL) {
		u = user_directory_refresh(&t->users, u, username, now);
	} else {
		struct director_host *host = chash_lookup(&t->ring, hash);
		if (host == NULL) {
			*error_r = "no hosts";
			return DIRECTOR_ROUTE_FAIL;
		}
		u = user_directory_add(&t->users, hash, host, username, now);
	}
	if (u->host->unhealthy) {
		/* the user still has sessions on it: fail fast, not twice */
		*error_r = "the user's backend is failing its health checks";
		return DIRECTOR_ROUTE_FAIL;
	}
	user_directory_session_ref(&t->users, u);
	ticket_r->hash = hash;
	ticket_r->tag = idx;
	ticket_r->held = true;
	*host_r = u->host;
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
	struct director_user *u = user_directory_lookup(&t->users, ticket->hash);
	if (u == NULL)
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

void director_removed_hosts(const struct director *d,
			    void (*cb)(const struct director_host *initial, void *ctx),
			    void *ctx)
{
	for (size_t i = 0; i < d->initial.count; i++) {
		if (director_host_list_find(&d->hosts, &d->initial.hosts[i]->ip) == NULL)
			cb(d->initial.hosts[i], ctx);
	}
}

/* ---- host changes ---------------------------------------------------- */

/* Forgets every assignment to a host (or to every host), ending moves. */
static void director_forget_users(struct director *d, const struct director_host *host)
{
	for (size_t i = 0; i < d->tags_count; i++) {
		struct user_directory *dir = &d->tags[i].users;
		struct hmap_node *n, *next;
		HMAP_FOR_EACH_SAFE(n, next, &dir->users) {
			struct director_user *u = CONTAINER_OF(n, struct director_user, node);
			if (host != NULL && u->host != host)
				continue;
			director_move_abort(d, (uint16_t)i, u->hash);
			user_directory_remove(dir, u);
		}
	}
}

static enum director_result director_check_vhosts(int vhosts, const char **error_r)
{
	if (vhosts > DIRECTOR_VHOST_MAX) {
		*error_r = DIRECTOR_VHOST_MAX_TEXT;
		return DIRECTOR_INVALID;
	}
	return DIRECTOR_OK;
}

enum director_result director_host_set(struct director *d, const struct ipaddr *ip,
				       const char *tag, int vhosts, time_t now,
				       const char **error_r)
{
	if (director_check_vhosts(vhosts, error_r) != DIRECTOR_OK)
		return DIRECTOR_INVALID;
	struct director_host *h = director_host_list_find(&d->hosts, ip);
	if (h == NULL) {
		/* a configured name comes back with a host it named */
		const struct director_host *init = director_host_list_find(&d->initial, ip);
		h = director_host_list_add(&d->hosts, ip,
					   init != NULL ? init->hostname : NULL,
					   tag != NULL ? tag : "");
		h->last_updown = 0;
		(void)director_tag_get(d, h->tag, true, NULL);
		(void)now;
	} else if (tag != NULL && strcmp(tag, h->tag) != 0) {
		*error_r = "host tag can't be changed";
		return DIRECTOR_INVALID;
	}
	if (vhosts >= 0)
		h->vhost_count = (unsigned int)vhosts;
	director_hosts_changed(d);
	return DIRECTOR_OK;
}

enum director_result director_host_update(struct director *d, const struct ipaddr *ip,
					  int vhosts, const char **error_r)
{
	struct director_host *h = director_host_list_find(&d->hosts, ip);
	if (h == NULL)
		return DIRECTOR_NOTFOUND;
	if (vhosts < 0 || director_check_vhosts(vhosts, error_r) != DIRECTOR_OK) {
		if (vhosts < 0)
			*error_r = "invalid vhost count";
		return DIRECTOR_INVALID;
	}
	h->vhost_count = (unsigned int)vhosts;
	director_hosts_changed(d);
	return DIRECTOR_OK;
}

enum director_result director_host_set_down(struct director *d,
					    const struct ipaddr *ip, bool down,
					    time_t now)
{
	struct director_host *h = director_host_list_find(&d->hosts, ip);
	if (h == NULL)
		return DIRECTOR_NOTFOUND;
	if (h->down != down) {
		h->down = down;
		h->last_updown = now;
		director_hosts_changed(d);
	}
	return DIRECTOR_OK;
}

enum director_result director_host_remove(struct director *d, const struct ipaddr *ip)
{
	struct director_host *h = director_host_list_find(&d->hosts, ip);
	if (h == NULL)
		return DIRECTOR_NOTFOUND;
	director_forget_users(d, h);
	director_host_list_remove(&d->hosts, h);
	director_hosts_changed(d);
	return DIRECTOR_OK;
}

enum director_result director_host_flush(struct director *d, const struct ipaddr *ip)
{
	struct director_host *h = NULL;
	if (ip != NULL && (h = director_host_list_find(&d->hosts, ip)) == NULL)
		return DIRECTOR_NOTFOUND;
	director_forget_users(d, h);
	return DIRECTOR_OK;
}

enum director_result director_host_set_health(struct director *d,
					      const struct ipaddr *ip,
					      enum director_health health,
					      const char *error, time_t now)
{
	struct director_host *h = director_host_list_find(&d->hosts, ip);
	if (h == NULL)
		return DIRECTOR_NOTFOUND;
	free(h->health_error);
	h->health_error = error != NULL ? xstrdup(error) : NULL;
	if (h->health == health)
		return DIRECTOR_OK;
	h->health = health;
	h->health_changed = now;
	bool unhealthy = health == DIRECTOR_HEALTH_FAILING;
	if (h->unhealthy != unhealthy) {
		h->unhealthy = unhealthy;
		/* health is not part of the saved state, but the rings change */
		director_rings_rebuild(d);
	}
	return DIRECTOR_OK;
}

void director_health_enable(struct director *d)
{
	d->health_checks = true;
}

bool director_health_enabled(const struct director *d)
{
	return d->health_checks;
}

/* ---- lookups ----------------------------------------------------------- */

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
			};
			cb(&info, ctx);
		}
	}
}
