/* Session registry: a hash map by id plus a list in registration order
 * (listings come out oldest first, stably). */
#include "registry/registry.h"

#include <stdlib.h>
#include <string.h>

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
}

void registry_deinit(struct registry *reg)
{
	hmap_destroy(&reg->by_id);
	list_init(&reg->entries);
}

void registry_add(struct registry *reg, struct registry_entry *e)
{
	hmap_insert(&reg->by_id, &e->id_node, hash_u64(e->id));
	list_append(&reg->entries, &e->node);
}

void registry_remove(struct registry *reg, struct registry_entry *e)
{
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

void registry_entry_clear(struct registry_entry *e)
{
	free(e->user);
	e->user = NULL;
	for (size_t i = 0; i < e->alt_count; i++) {
		free(e->alt[i].field);
		free(e->alt[i].value);
	}
	free(e->alt);
	e->alt = NULL;
	e->alt_count = 0;
}

void registry_entry_set_user(struct registry_entry *e, const char *user)
{
	free(e->user);
	e->user = xstrdup(user);
}

void registry_entry_add_alt(struct registry_entry *e, const char *field,
			    const char *value)
{
	e->alt = xrealloc(e->alt, (e->alt_count + 1) * sizeof(*e->alt));
	e->alt[e->alt_count].field = xstrdup(field);
	e->alt[e->alt_count].value = xstrdup(value);
	e->alt_count++;
}

const char *registry_state_name(enum registry_state state)
{
	return registry_state_names[state];
}
