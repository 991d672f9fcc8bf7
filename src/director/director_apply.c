/* The director's host changes (reference §2.5, §4.2): add, update, up,
 * down, remove, flush -F, and health verdicts. Each is a pure transition
 * with its verdict returned at once; nothing here calls back into a
 * caller (moves it ends queue their completions). */
#include <stdlib.h>
#include <string.h>

#include "common/xmalloc.h"
#include "director/director_private.h"

#define DIRECTOR_VHOST_MAX_TEXT "vhost count too large"

/* Forgets every assignment to a host (or to every host), ending moves (a
 * ring's move goes on until the ring ends it: director_move_abort()).
 * director_move_abort() only counts and queues, so the walk stays valid. */
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

/* The host leaves the list; the routing rings may still point at it
 * until the next rings are committed. */
static void director_host_retire(struct director *d, struct director_host *h)
{
	director_forget_users(d, h);
	director_host_list_unlink(&d->hosts, h);
	director_host_list_append(&d->retired, h);
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
	(void)now;
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
	if (vhosts < 0) {
		*error_r = "invalid vhost count";
		return DIRECTOR_INVALID;
	}
	if (director_check_vhosts(vhosts, error_r) != DIRECTOR_OK)
		return DIRECTOR_INVALID;
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
	director_host_retire(d, h);
	director_hosts_changed(d);
	return DIRECTOR_OK;
}

enum director_result director_host_flush(struct director *d, const struct ipaddr *ip)
{
	struct director_host *h = NULL;
	if (ip != NULL && (h = director_host_list_find(&d->hosts, ip)) == NULL)
		return DIRECTOR_NOTFOUND;
	director_forget_users(d, h);
	d->stats.flushes++;
	return DIRECTOR_OK;
}

static const struct director_host_spec *
director_host_spec_find(const struct director_host_spec *specs, size_t count,
			const struct ipaddr *ip)
{
	for (size_t i = 0; i < count; i++) {
		if (ipaddr_equal(&specs[i].ip, ip))
			return &specs[i];
	}
	return NULL;
}

void director_hosts_replace(struct director *d, const struct director_host_spec *specs,
			    size_t count)
{
	/* hosts gone, or whose tag differs (a tag never changes in place) */
	for (size_t i = d->hosts.count; i-- > 0;) {
		struct director_host *h = d->hosts.hosts[i];
		const struct director_host_spec *spec =
			director_host_spec_find(specs, count, &h->ip);
		if (spec == NULL || strcmp(spec->tag, h->tag) != 0)
			director_host_retire(d, h);
	}
	for (size_t i = 0; i < count; i++) {
		const struct director_host_spec *spec = &specs[i];
		struct director_host *h = director_host_list_find(&d->hosts, &spec->ip);
		if (h == NULL) {
			const struct director_host *init =
				director_host_list_find(&d->initial, &spec->ip);
			h = director_host_list_add(&d->hosts, &spec->ip,
						   init != NULL ? init->hostname : NULL,
						   spec->tag);
			(void)director_tag_get(d, h->tag, true, NULL);
		}
		h->vhost_count = spec->vhosts;
		h->down = spec->down;
		h->last_updown = spec->last_updown;
		h->health = spec->health;
		h->health_changed = spec->health_changed;
		h->unhealthy = spec->health == DIRECTOR_HEALTH_FAILING;
	}
	director_hosts_changed(d);
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
		if (!d->rings_deferred)
			director_rings_commit(d);
	}
	return DIRECTOR_OK;
}

enum director_result director_host_note_check(struct director *d, const struct ipaddr *ip,
					      const char *error)
{
	struct director_host *h = director_host_list_find(&d->hosts, ip);
	if (h == NULL)
		return DIRECTOR_NOTFOUND;
	free(h->health_error);
	h->health_error = error != NULL ? xstrdup(error) : NULL;
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
