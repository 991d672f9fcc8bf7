/* Session registry: by id, in registration order (listings come out
 * oldest first, stably), and indexed by user and by backend. Index
 * buckets exist while they hold sessions. */
#include "registry/registry.h"

#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "common/xmalloc.h"

static const char *const registry_state_names[] = {
	[REGISTRY_STATE_PRELOGIN] = "pre-login",
	[REGISTRY_STATE_LOGIN] = "login",
	[REGISTRY_STATE_PROXYING] = "proxying",
};

void registry_init(struct registry *reg)
{
	hmap_init(&reg->by_id);
	list_init(&reg->entries);
	hmap_init(&reg->users);
	hmap_init(&reg->backends);
	reg->walk = 0;
	reg->user_ip_changed = NULL;
	reg->changed_ctx = NULL;
}

void registry_deinit(struct registry *reg)
{
	/* entries belong to their sessions; only empty buckets can be left */
	hmap_destroy(&reg->by_id);
	hmap_destroy(&reg->users);
	hmap_destroy(&reg->backends);
	list_init(&reg->entries);
}

void registry_add(struct registry *reg, struct registry_entry *e)
{
	e->director_tag = REGISTRY_TAG_NONE;
	hmap_insert(&reg->by_id, &e->id_node, hash_u64(e->id));
	list_append(&reg->entries, &e->node);
}

void registry_remove(struct registry *reg, struct registry_entry *e)
{
	registry_clear_login(reg, e);
	hmap_remove(&reg->by_id, &e->id_node);
	list_unlink(&reg->entries, &e->node);
}

struct registry_entry *registry_find(const struct registry *reg, uint64_t id)
{
	struct hmap_node *n;
	HMAP_FOR_EACH_WITH_HASH(n, hash_u64(id), &reg->by_id) {
		struct registry_entry *e = CONTAINER_OF(n, struct registry_entry, id_node);
		if (e->id == id)
			return e;
	}
	return NULL;
}

struct registry_user *registry_user_find(const struct registry *reg,
					 const char *name)
{
	struct hmap_node *n;
	HMAP_FOR_EACH_WITH_HASH(n, hash_string_icase(name), &reg->users) {
		struct registry_user *u = CONTAINER_OF(n, struct registry_user, node);
		if (strcasecmp(u->name, name) == 0)
			return u;
	}
	return NULL;
}

struct registry_backend *registry_backend_find(const struct registry *reg,
					       const struct ipaddr *ip)
{
	struct hmap_node *n;
	HMAP_FOR_EACH_WITH_HASH(n, ipaddr_hash(ip), &reg->backends) {
		struct registry_backend *b = CONTAINER_OF(n, struct registry_backend, node);
		if (ipaddr_equal(&b->ip, ip))
			return b;
	}
	return NULL;
}

void registry_foreach_backend(const struct registry *reg,
			      void (*cb)(const struct ipaddr *ip, size_t sessions, void *ctx),
			      void *ctx)
{
	struct hmap_node *n;
	HMAP_FOR_EACH(n, &reg->backends) {
		const struct registry_backend *b =
			CONTAINER_OF(n, struct registry_backend, node);
		cb(&b->ip, b->sessions.count, ctx);
	}
}

static void registry_unindex_user(struct registry *reg, struct registry_entry *e)
{
	struct registry_user *u = e->user_idx;
	if (u == NULL)
		return;
	list_unlink(&u->sessions, &e->user_node);
	e->user_idx = NULL;
	if (reg->user_ip_changed != NULL)
		reg->user_ip_changed(reg->changed_ctx, u->name, &e->client_ip);
	if (list_is_empty(&u->sessions)) {
		hmap_remove(&reg->users, &u->node);
		free(u);
	}
}

static void registry_unindex_backend(struct registry *reg, struct registry_entry *e)
{
	struct registry_backend *b = e->backend_idx;
	if (b == NULL)
		return;
	list_unlink(&b->sessions, &e->backend_node);
	e->backend_idx = NULL;
	if (list_is_empty(&b->sessions)) {
		hmap_remove(&reg->backends, &b->node);
		free(b);
	}
}

void registry_set_user(struct registry *reg, struct registry_entry *e,
		       const char *user, uint32_t user_hash)
{
	registry_unindex_user(reg, e);
	free(e->user);
	e->user = xstrdup(user);
	e->user_hash = user_hash;
	struct registry_user *u = registry_user_find(reg, user);
	if (u == NULL) {
		size_t len = strlen(user);
		u = xcalloc(1, sizeof(*u) + len + 1);
		memcpy(u->name, user, len + 1);
		list_init(&u->sessions);
		hmap_insert(&reg->users, &u->node, hash_string_icase(user));
	}
	list_append(&u->sessions, &e->user_node);
	e->user_idx = u;
	if (reg->user_ip_changed != NULL)
		reg->user_ip_changed(reg->changed_ctx, u->name, &e->client_ip);
}

void registry_add_alt(struct registry_entry *e, const char *field, const char *value)
{
	e->alt = xrealloc(e->alt, (e->alt_count + 1) * sizeof(*e->alt));
	e->alt[e->alt_count].field = xstrdup(field);
	e->alt[e->alt_count].value = xstrdup(value);
	e->alt_count++;
}

void registry_set_director(struct registry_entry *e, uint32_t user_hash, uint16_t tag)
{
	e->user_hash = user_hash;
	e->director_tag = tag;
}

void registry_set_backend(struct registry *reg, struct registry_entry *e,
			  const struct ipaddr *ip, uint16_t port, const char *host)
{
	registry_unindex_backend(reg, e);
	free(e->backend_host);
	e->backend_host = host == NULL ? NULL : xstrdup(host);
	e->backend_ip = *ip;
	e->backend_port = port;
	struct registry_backend *b = registry_backend_find(reg, ip);
	if (b == NULL) {
		b = xcalloc(1, sizeof(*b));
		b->ip = *ip;
		list_init(&b->sessions);
		hmap_insert(&reg->backends, &b->node, ipaddr_hash(ip));
	}
	list_append(&b->sessions, &e->backend_node);
	e->backend_idx = b;
}

void registry_clear_login(struct registry *reg, struct registry_entry *e)
{
	registry_unindex_user(reg, e);
	registry_unindex_backend(reg, e);
	free(e->user);
	e->user = NULL;
	e->user_hash = 0;
	e->director_tag = REGISTRY_TAG_NONE;
	for (size_t i = 0; i < e->alt_count; i++) {
		free(e->alt[i].field);
		free(e->alt[i].value);
	}
	free(e->alt);
	e->alt = NULL;
	e->alt_count = 0;
	free(e->backend_host);
	e->backend_host = NULL;
	memset(&e->backend_ip, 0, sizeof(e->backend_ip));
	e->backend_port = 0;
}

bool registry_kick(struct registry_entry *e, const char *text)
{
	if (e->kicked)
		return false;
	e->kicked = true;
	e->kick(e, text);
	return true;
}

size_t registry_user_count(const struct registry *reg, const char *user)
{
	struct registry_user *u = registry_user_find(reg, user);
	return u == NULL ? 0 : u->sessions.count;
}

size_t registry_user_ip_count(const struct registry *reg, const char *user,
			      const struct ipaddr *ip)
{
	struct registry_user *u = registry_user_find(reg, user);
	size_t n = 0;
	if (u == NULL)
		return 0;
	for (struct list_node *node = u->sessions.head; node != NULL; node = node->next) {
		const struct registry_entry *e =
			CONTAINER_OF(node, struct registry_entry, user_node);
		if (!e->kicked && ipaddr_equal(&e->client_ip, ip))
			n++;
	}
	return n;
}

const char *registry_state_name(enum registry_state state)
{
	return registry_state_names[state];
}

const char *registry_alt_value(const struct registry_entry *e, const char *field)
{
	for (size_t i = 0; i < e->alt_count; i++) {
		if (strcmp(e->alt[i].field, field) == 0)
			return e->alt[i].value;
	}
	return NULL;
}
