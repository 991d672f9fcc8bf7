/* Every live session, whatever its state, so that admins can list and
 * kick them. A session embeds its struct registry_entry and keeps it
 * current; the registry never frees entries. A kick calls the callback
 * the session registered: the session then closes itself on the next loop
 * turn, never from inside the registry. */
#ifndef LOFT_REGISTRY_REGISTRY_H
#define LOFT_REGISTRY_REGISTRY_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "common/hmap.h"
#include "common/list.h"
#include "common/net.h"

enum registry_state {
	REGISTRY_STATE_PRELOGIN,
	REGISTRY_STATE_LOGIN,		/* authenticating or logging in to a backend */
	REGISTRY_STATE_PROXYING,
};

struct registry_alt {
	char *field;
	char *value;
};

struct registry_entry;
typedef void registry_kick_cb(struct registry_entry *entry, const char *reason);

struct registry_entry {
	struct hmap_node id_node;
	struct list_node node;		/* in registration order */
	uint64_t id;
	const char *service;		/* static: "imap" */
	char *user;			/* NULL until authenticated */
	struct registry_alt *alt;
	size_t alt_count;
	struct ipaddr client_ip;
	uint16_t client_port;
	struct ipaddr backend_ip;	/* unset until routed */
	uint16_t backend_port;
	enum registry_state state;
	uint64_t start_ms;		/* wall clock */
	registry_kick_cb *kick;
};

struct registry {
	struct hmap by_id;
	struct list entries;
};

void registry_init(struct registry *reg);
void registry_deinit(struct registry *reg);

void registry_add(struct registry *reg, struct registry_entry *entry);
void registry_remove(struct registry *reg, struct registry_entry *entry);
struct registry_entry *registry_find(const struct registry *reg, uint64_t id);

/* Frees the user and alternative names of an entry. */
void registry_entry_clear(struct registry_entry *entry);
void registry_entry_set_user(struct registry_entry *entry, const char *user);
void registry_entry_add_alt(struct registry_entry *entry, const char *field,
			    const char *value);

const char *registry_state_name(enum registry_state state);

static inline size_t registry_count(const struct registry *reg)
{
	return reg->entries.count;
}

static inline struct registry_entry *registry_entry_of(struct list_node *n)
{
	return n == NULL ? NULL : CONTAINER_OF(n, struct registry_entry, node);
}

/* The oldest session, or NULL. */
static inline struct registry_entry *registry_first(const struct registry *reg)
{
	return registry_entry_of(reg->entries.head);
}

#define REGISTRY_FOR_EACH(entry, reg) \
	for ((entry) = registry_first(reg); (entry) != NULL; \
	     (entry) = registry_entry_of((entry)->node.next))

#endif
