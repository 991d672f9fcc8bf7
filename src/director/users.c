/* User directory: a hash map by user hash plus an idle list ordered by
 * timestamp, so expiry pops from the head without scanning. Every record
 * is one allocation with the username inline. */
#include "director/users.h"

#include <stdlib.h>
#include <string.h>

#include "common/xmalloc.h"

void user_directory_init(struct user_directory *dir, time_t expire_secs)
{
	hmap_init(&dir->users);
	list_init(&dir->idle);
	dir->expire_secs = expire_secs;
}

void user_directory_deinit(struct user_directory *dir)
{
	struct hmap_node *n, *next;
	HMAP_FOR_EACH_SAFE(n, next, &dir->users) {
		struct director_user *u = CONTAINER_OF(n, struct director_user, node);
		hmap_remove(&dir->users, n);
		free(u);
	}
	hmap_destroy(&dir->users);
	list_init(&dir->idle);
}

static struct director_user *user_of_idle(struct list_node *n)
{
	return n == NULL ? NULL : CONTAINER_OF(n, struct director_user, idle_node);
}

/* In the idle list exactly while it has no sessions, is not being moved
 * and no other node of a ring pins it. */
static bool user_is_idle(const struct director_user *u)
{
	return u->sessions == 0 && u->pinned == 0 && u->remote_pins == 0 &&
		u->releasing == 0;
}

static void user_idle_unlink(struct user_directory *dir, struct director_user *u)
{
	list_unlink(&dir->idle, &u->idle_node);
}

static void user_idle_append(struct user_directory *dir, struct director_user *u)
{
	list_append(&dir->idle, &u->idle_node);
}

struct director_user *user_directory_lookup(const struct user_directory *dir,
					    uint32_t hash)
{
	struct hmap_node *n;
	HMAP_FOR_EACH_WITH_HASH(n, hash_u64(hash), &dir->users) {
		struct director_user *u = CONTAINER_OF(n, struct director_user, node);
		if (u->hash == hash)
			return u;
	}
	return NULL;
}

static struct director_user *user_alloc(uint32_t hash, const char *username)
{
	size_t len = strlen(username);
	struct director_user *u = xcalloc(1, sizeof(*u) + len + 1);
	u->hash = hash;
	memcpy(u->username, username, len + 1);
	return u;
}

struct director_user *user_directory_add(struct user_directory *dir,
					 uint32_t hash, struct director_host *host,
					 const char *username, time_t now, uint32_t gen)
{
	struct director_user *u = user_alloc(hash, username);
	u->gen = gen;
	u->host = host;
	u->timestamp = now;
	host->user_count++;
	hmap_insert(&dir->users, &u->node, hash_u64(hash));
	user_idle_append(dir, u);
	return u;
}

struct director_user *user_directory_refresh(struct user_directory *dir,
					     struct director_user *u,
					     const char *username, time_t now)
{
	if (strcmp(u->username, username) != 0) {
		/* a colliding or re-cased name: keep the newest, in place */
		struct director_user *nu = user_alloc(u->hash, username);
		nu->host = u->host;
		nu->sessions = u->sessions;
		nu->pinned = u->pinned;
		nu->own_pin = u->own_pin;
		nu->releasing = u->releasing;
		nu->local = u->local;
		nu->remote_pins = u->remote_pins;
		nu->gen = u->gen;
		bool idle = user_is_idle(u);
		if (idle)
			user_idle_unlink(dir, u);
		hmap_remove(&dir->users, &u->node);
		free(u);
		u = nu;
		hmap_insert(&dir->users, &u->node, hash_u64(u->hash));
		if (idle)
			user_idle_append(dir, u);
	}
	u->timestamp = now;
	if (user_is_idle(u)) {
		user_idle_unlink(dir, u);
		user_idle_append(dir, u);
	}
	return u;
}

void user_directory_session_ref(struct user_directory *dir,
				struct director_user *u)
{
	if (user_is_idle(u))
		user_idle_unlink(dir, u);
	u->sessions++;
}

void user_directory_session_unref(struct user_directory *dir,
				  struct director_user *u, time_t now)
{
	if (u->sessions == 0)
		return;
	if (--u->sessions == 0) {
		u->timestamp = now;
		if (user_is_idle(u))
			user_idle_append(dir, u);
	}
}

void user_directory_pin(struct user_directory *dir, struct director_user *u)
{
	if (user_is_idle(u))
		user_idle_unlink(dir, u);
	u->pinned = 1;
}

void user_directory_unpin(struct user_directory *dir, struct director_user *u,
			  time_t now)
{
	if (u->pinned == 0)
		return;
	u->pinned = 0;
	u->timestamp = now;
	if (user_is_idle(u))
		user_idle_append(dir, u);
}

void user_directory_remote_pin(struct user_directory *dir, struct director_user *u,
			       int delta, time_t now)
{
	bool was_idle = user_is_idle(u);
	if (delta < 0 && u->remote_pins == 0)
		return;
	u->remote_pins = (uint16_t)(u->remote_pins + delta);
	if (was_idle && !user_is_idle(u)) {
		user_idle_unlink(dir, u);
	} else if (!was_idle && user_is_idle(u)) {
		u->timestamp = now;
		user_idle_append(dir, u);
	}
}

void user_directory_set_host(struct director_user *u, struct director_host *host)
{
	u->host->user_count--;
	u->host = host;
	host->user_count++;
}

void user_directory_remove(struct user_directory *dir, struct director_user *u)
{
	if (u->own_pin && dir->forgotten != NULL)
		dir->forgotten(dir->pins_ctx, u);
	if (user_is_idle(u))
		user_idle_unlink(dir, u);
	hmap_remove(&dir->users, &u->node);
	u->host->user_count--;
	free(u);
}

void user_directory_release(struct user_directory *dir, struct director_user *u)
{
	if (user_is_idle(u))
		user_idle_unlink(dir, u);
	u->releasing = 1;
	dir->release(dir->pins_ctx, u);
}

bool user_directory_released(struct user_directory *dir, struct director_user *u,
			     bool held, time_t now)
{
	if (u->releasing == 0)
		return false;
	u->own_pin = held;
	if (!held && u->sessions == 0 && u->pinned == 0 && u->remote_pins == 0) {
		/* still marked releasing, so not taken for a member of the
		 * idle list, which it left when the release began */
		user_directory_remove(dir, u);
		return true;
	}
	u->releasing = 0;
	if (user_is_idle(u)) {
		u->timestamp = now;
		user_idle_append(dir, u);
	}
	return false;
}

unsigned int user_directory_expire(struct user_directory *dir, time_t now)
{
	unsigned int n = 0;
	struct director_user *u;
	while ((u = user_of_idle(dir->idle.head)) != NULL &&
	       u->timestamp + dir->expire_secs <= now) {
		if (u->own_pin && dir->release != NULL) {
			/* a ring: the record outlives its pin in etcd (doc/
			 * ring.md §3, P1) */
			user_directory_release(dir, u);
		} else {
			user_directory_remove(dir, u);
		}
		n++;
	}
	return n;
}

time_t user_directory_next_expiry(const struct user_directory *dir)
{
	struct director_user *u = user_of_idle(dir->idle.head);
	return u == NULL ? 0 : u->timestamp + dir->expire_secs;
}

time_t user_directory_expires(const struct user_directory *dir,
			      const struct director_user *u, time_t now)
{
	if (user_is_idle(u) || now <= u->timestamp)
		return u->timestamp + dir->expire_secs;
	/* a user with sessions is refreshed as Dovecot's login processes
	 * refresh it (every expire/2, §2.2), so the time stays put between
	 * refreshes and is always ahead */
	time_t step = dir->expire_secs / 2 > 0 ? dir->expire_secs / 2 : 1;
	time_t refreshed = u->timestamp + (now - u->timestamp) / step * step;
	return refreshed + dir->expire_secs;
}
