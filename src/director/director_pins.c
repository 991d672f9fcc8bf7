/* A ring's pins in the director (doc/ring.md §3-4).
 *
 * Pins are assignments held ring-wide: a user pinned by any node is
 * routed to the pinned host on every node. Here they are user records
 * like any other, counted in remote_pins (other nodes') and own_pin (this
 * node's); a record with remote pins never expires, and one whose last
 * remote pin goes while this node holds neither a session nor a pin of
 * its own is forgotten at once, so the user follows the hash again here
 * exactly when it does everywhere.
 *
 * A record whose own pin exists is not forgotten when it expires: the
 * ring deletes the pin and the record goes only once this node's view of
 * etcd shows the deletion (director_user_released), and the user's
 * logins wait meanwhile: until then another node may hold a pin that
 * this node has not seen, taken against its own (doc/ring.md §11, P1).
 *
 * Three kinds of login wait here, as a move's do:
 *   - a user that only other nodes pin: this node first writes its own
 *     pin (the ring does, asked through pin_cb.needed), so that the pin
 *     outlives the others while this node has sessions of the user;
 *   - while a host change is prepared (director_rings_prepare), a user
 *     without a record whose hash differs between the current and the
 *     next rings: it waits for the commit, since nodes switch at
 *     different moments and must not answer differently meanwhile;
 *   - a user whose own pin is being released.
 * All resume through the completion queue. */
#include <stdlib.h>
#include <string.h>

#include "common/xmalloc.h"
#include "director/director_private.h"

static void director_pins_forgotten(void *ctx, const struct director_user *u);
static void director_pins_release(void *ctx, struct director_user *u);

void director_pins_attach(struct director *d, struct user_directory *dir)
{
	dir->forgotten = d->pin_cb.forgotten != NULL ? director_pins_forgotten : NULL;
	dir->release = d->pin_cb.release != NULL ? director_pins_release : NULL;
	dir->pins_ctx = d;
}

void director_set_pin_callbacks(struct director *d,
				const struct director_pin_callbacks *cb, void *ctx)
{
	d->pin_cb = *cb;
	d->pin_ctx = ctx;
	for (size_t i = 0; i < d->tags_count; i++)
		director_pins_attach(d, &d->tags[i].users);
}

/* The tag whose directory holds the record. */
static const char *director_pins_tag_of(struct director *d, const struct director_user *u)
{
	for (size_t i = 0; i < d->tags_count; i++) {
		if (user_directory_lookup(&d->tags[i].users, u->hash) == u)
			return d->tags[i].name;
	}
	return NULL;
}

static void director_pins_forgotten(void *ctx, const struct director_user *u)
{
	struct director *d = ctx;
	const char *tag = director_pins_tag_of(d, u);
	if (d->pin_cb.forgotten != NULL && tag != NULL)
		d->pin_cb.forgotten(d->pin_ctx, tag, u->hash);
}

static void director_pins_release(void *ctx, struct director_user *u)
{
	struct director *d = ctx;
	const char *tag = director_pins_tag_of(d, u);
	if (d->pin_cb.release != NULL && tag != NULL)
		d->pin_cb.release(d->pin_ctx, tag, u->hash);
}

static void director_pin_wait_add(struct director *d, uint16_t tag, uint32_t hash,
				  uint64_t waiter)
{
	d->pin_waits = xgrow(d->pin_waits, &d->pin_waits_cap, d->pin_waits_count + 1,
			     sizeof(*d->pin_waits));
	d->pin_waits[d->pin_waits_count++] =
		(struct director_pin_wait){ .tag = tag, .hash = hash, .waiter = waiter };
}

/* Resumes the logins waiting for this user's pin; true if there were. */
static bool director_pin_waits_resume(struct director *d, uint16_t tag, uint32_t hash)
{
	bool any = false;
	size_t kept = 0;
	for (size_t i = 0; i < d->pin_waits_count; i++) {
		struct director_pin_wait *w = &d->pin_waits[i];
		if (w->tag == tag && w->hash == hash) {
			director_defer_resume(d, w->waiter);
			any = true;
		} else {
			d->pin_waits[kept++] = *w;
		}
	}
	d->pin_waits_count = kept;
	return any;
}

enum director_route_result director_pins_route(struct director *d, uint16_t tag,
					       uint32_t hash, struct director_user *u,
					       uint64_t waiter)
{
	struct director_tag *t = &d->tags[tag];
	if (d->pins_loading && d->pin_cb.known != NULL &&
	    !d->pin_cb.known(d->pin_ctx, t->name, hash)) {
		director_pin_wait_add(d, tag, hash, waiter);
		return DIRECTOR_ROUTE_WAIT;
	}
	if (u == NULL) {
		if (d->rings_prepared &&
		    chash_lookup(&t->ring, hash) != chash_lookup(&t->next_ring, hash)) {
			d->prepare_waiters = xgrow(d->prepare_waiters, &d->prepare_waiters_cap,
						   d->prepare_waiters_count + 1,
						   sizeof(*d->prepare_waiters));
			d->prepare_waiters[d->prepare_waiters_count++] = waiter;
			return DIRECTOR_ROUTE_WAIT;
		}
		return DIRECTOR_ROUTE_OK;
	}
	if (u->releasing) {
		director_pin_wait_add(d, tag, hash, waiter);
		return DIRECTOR_ROUTE_WAIT;
	}
	if (u->remote_pins == 0 || u->own_pin || d->pin_cb.needed == NULL)
		return DIRECTOR_ROUTE_OK;
	/* only other nodes pin it: ask for a pin of this node's own, once */
	bool asked = false;
	for (size_t i = 0; i < d->pin_waits_count && !asked; i++)
		asked = d->pin_waits[i].tag == tag && d->pin_waits[i].hash == hash;
	director_pin_wait_add(d, tag, hash, waiter);
	if (!asked)
		d->pin_cb.needed(d->pin_ctx, t->name, hash, u->host, u->username);
	return DIRECTOR_ROUTE_WAIT;
}

void director_pins_committed(struct director *d)
{
	for (size_t i = 0; i < d->prepare_waiters_count; i++)
		director_defer_resume(d, d->prepare_waiters[i]);
	d->prepare_waiters_count = 0;
}

enum director_result director_user_remote_pin(struct director *d, const char *tag,
					      uint32_t hash, const struct ipaddr *ip,
					      bool add, time_t now)
{
	struct director_host *host = director_host_list_find(&d->hosts, ip);
	uint16_t idx;
	struct director_tag *t = director_tag_get(d, tag, add && host != NULL, &idx);
	if (t == NULL)
		return DIRECTOR_NOTFOUND;
	struct director_user *u = user_directory_lookup(&t->users, hash);
	if (!add) {
		if (u == NULL)
			return DIRECTOR_OK;
		user_directory_remote_pin(&t->users, u, -1, now);
		/* the last pin gone: follow the hash, as every node does now,
		 * unless this node has sessions there (it pins them itself) */
		if (u->remote_pins == 0 && u->sessions == 0 && !u->own_pin &&
		    u->pinned == 0 && !u->releasing)
			user_directory_remove(&t->users, u);
		return DIRECTOR_OK;
	}
	if (host == NULL)
		return DIRECTOR_NOTFOUND;
	if (u == NULL)
		u = user_directory_add(&t->users, hash, host, "", now, d->next_gen++);
	else if (u->host != host && u->pinned == 0)
		/* every pin of a user names one host (doc/ring.md §3): a record
		 * that disagrees is stale, the ring is right */
		user_directory_set_host(u, host);
	user_directory_remote_pin(&t->users, u, +1, now);
	return DIRECTOR_OK;
}

void director_user_own_pin(struct director *d, const char *tag, uint32_t hash,
			   bool held, const struct ipaddr *ip, time_t now)
{
	struct director_host *host = held && ip != NULL ?
		director_host_list_find(&d->hosts, ip) : NULL;
	uint16_t idx;
	struct director_tag *t = director_tag_get(d, tag, host != NULL, &idx);
	if (t == NULL)
		return;
	struct director_user *u = user_directory_lookup(&t->users, hash);
	if (u == NULL && host != NULL) {
		/* a write of its own that ran late (after the record
		 * expired): other nodes route by it, so must this one */
		u = user_directory_add(&t->users, hash, host, "", now, d->next_gen++);
	}
	/* while it is released, the release's end decides */
	if (u != NULL && !u->releasing)
		u->own_pin = held;
	director_pin_waits_resume(d, idx, hash);
}

void director_user_route_again(struct director *d, const char *tag, uint32_t hash)
{
	uint16_t idx;
	if (director_tag_get(d, tag, false, &idx) != NULL)
		director_pin_waits_resume(d, idx, hash);
}

void director_set_pins_loading(struct director *d, bool loading)
{
	d->pins_loading = loading;
	if (loading)
		return;
	/* the logins that waited to know a user's pins route again (any
	 * other pin wait resumed with them waits again) */
	for (size_t i = 0; i < d->pin_waits_count; i++)
		director_defer_resume(d, d->pin_waits[i].waiter);
	d->pin_waits_count = 0;
}

void director_user_released(struct director *d, const char *tag, uint32_t hash,
			    bool held, time_t now)
{
	uint16_t idx;
	struct director_tag *t = director_tag_get(d, tag, false, &idx);
	if (t == NULL)
		return;
	struct director_user *u = user_directory_lookup(&t->users, hash);
	if (u != NULL)
		(void)user_directory_released(&t->users, u, held, now);
	director_pin_waits_resume(d, idx, hash);
}

void director_forget_ring_users(struct director *d)
{
	for (size_t i = 0; i < d->tags_count; i++) {
		struct user_directory *dir = &d->tags[i].users;
		struct hmap_node *n, *next;
		HMAP_FOR_EACH_SAFE(n, next, &dir->users) {
			struct director_user *u = CONTAINER_OF(n, struct director_user, node);
			/* the ring's pins are read again; the ring's view of
			 * them starts empty too */
			u->own_pin = 0;
			if (u->pinned == 0) {
				user_directory_remove(dir, u);
			} else {
				/* being moved (never idle, in no list): the
				 * move, read again, holds it */
				u->remote_pins = 0;
				u->releasing = 0;
			}
		}
	}
	for (size_t i = 0; i < d->pin_waits_count; i++)
		director_defer_resume(d, d->pin_waits[i].waiter);
	d->pin_waits_count = 0;
}

void director_pins_free(struct director *d)
{
	free(d->prepare_waiters);
	free(d->pin_waits);
}
