/* Single-node director: tags, rings and user directories. */
#include "director/director.h"

#include <stdlib.h>
#include <string.h>

#include "common/xmalloc.h"
#include "director/chash.h"
#include "director/user_hash.h"
#include "director/users.h"

struct director_tag {
	char *name;
	struct chash ring;
	struct user_directory users;
};

struct director {
	struct user_hasher *hasher;
	struct director_host_list hosts;
	struct director_tag *tags;
	size_t tags_count;
	time_t expire_secs;
};

static struct director_tag *director_tag_find(struct director *d,
					      const char *name, uint16_t *idx_r)
{
	for (size_t i = 0; i < d->tags_count; i++) {
		if (strcmp(d->tags[i].name, name) == 0) {
			if (idx_r != NULL)
				*idx_r = (uint16_t)i;
			return &d->tags[i];
		}
	}
	return NULL;
}

static void director_tag_add(struct director *d, const char *name)
{
	if (director_tag_find(d, name, NULL) != NULL)
		return;
	d->tags = xrealloc(d->tags, (d->tags_count + 1) * sizeof(*d->tags));
	struct director_tag *t = &d->tags[d->tags_count++];
	memset(t, 0, sizeof(*t));
	t->name = xstrdup(name);
	user_directory_init(&t->users, d->expire_secs);
}

static void director_rebuild_rings(struct director *d)
{
	for (size_t i = 0; i < d->tags_count; i++)
		chash_build(&d->tags[i].ring, &d->hosts, d->tags[i].name, NULL, NULL);
}

struct director *director_new(const struct config *cfg, char **error_r)
{
	struct director *d = xcalloc(1, sizeof(*d));

	d->hasher = user_hasher_new(cfg->director.username_hash);
	d->expire_secs = (time_t)(cfg->director.user_expire_ms / 1000);
	for (size_t i = 0; i < cfg->director.mail_servers.count; i++) {
		char *error;
		if (director_hosts_parse(&d->hosts, cfg->director.mail_servers.items[i],
					 &error) < 0) {
			*error_r = xasprintf("%s: director.mail_servers: %s",
					     config_source(cfg, "director.mail_servers"),
					     error);
			free(error);
			director_free(&d);
			return NULL;
		}
	}
	/* the untagged directory always exists: users without director_tag */
	director_tag_add(d, "");
	for (size_t i = 0; i < d->hosts.count; i++)
		director_tag_add(d, d->hosts.hosts[i]->tag);
	director_rebuild_rings(d);
	return d;
}

void director_free(struct director **dp)
{
	struct director *d = *dp;
	if (d == NULL)
		return;
	for (size_t i = 0; i < d->tags_count; i++) {
		user_directory_deinit(&d->tags[i].users);
		chash_free(&d->tags[i].ring);
		free(d->tags[i].name);
	}
	free(d->tags);
	director_host_list_free(&d->hosts);
	user_hasher_free(&d->hasher);
	free(d);
	*dp = NULL;
}

uint32_t director_user_hash(struct director *d, const char *username)
{
	return user_hasher_hash(d->hasher, username);
}

const struct director_host *director_route(struct director *d,
					   const char *username, const char *tag,
					   time_t now,
					   struct director_ticket *ticket_r,
					   const char **error_r)
{
	uint16_t idx;
	struct director_tag *t = director_tag_find(d, tag == NULL ? "" : tag, &idx);

	ticket_r->held = false;
	if (t == NULL) {
		*error_r = "unknown tag";
		return NULL;
	}
	uint32_t hash = user_hasher_hash(d->hasher, username);
	struct director_user *u = user_directory_lookup(&t->users, hash);
	if (u != NULL) {
		u = user_directory_refresh(&t->users, u, username, now);
	} else {
		struct director_host *host = chash_lookup(&t->ring, hash);
		if (host == NULL) {
			*error_r = "no hosts";
			return NULL;
		}
		u = user_directory_add(&t->users, hash, host, username, now);
	}
	user_directory_session_ref(&t->users, u);
	ticket_r->hash = hash;
	ticket_r->tag = idx;
	ticket_r->held = true;
	return u->host;
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
	if (u != NULL)
		user_directory_session_unref(&t->users, u, now);
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
	struct director_tag *t = director_tag_find(d, tag, NULL);
	return t == NULL ? NULL : chash_lookup(&t->ring, hash);
}

const struct director_host_list *director_hosts(const struct director *d)
{
	return &d->hosts;
}
