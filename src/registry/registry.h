/* Every live session, whatever its state, so that admins can list and
 * kick them. A session embeds its struct registry_entry and keeps it
 * current through the functions below, which also maintain two indexes:
 * by username (ASCII case-insensitive) and by backend address. The
 * registry never frees entries. A kick calls the callback the session
 * registered; the session closes itself on a later loop turn, never from
 * inside the registry, so walking and kicking can be mixed safely. */
#ifndef LOFT_REGISTRY_REGISTRY_H
#define LOFT_REGISTRY_REGISTRY_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "common/hmap.h"
#include "common/list.h"
#include "common/macros.h"
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

#define REGISTRY_TAG_NONE UINT16_MAX

struct registry_entry;
/* Asks the session to say goodbye with `text` and close soon. */
typedef void registry_kick_cb(struct registry_entry *entry, const char *text);

struct registry_user;
struct registry_backend;

struct registry_entry {
	struct hmap_node id_node;
	struct list_node node;		/* in registration order */
	uint64_t id;
	const char *service;		/* static: "imap" */
	enum registry_state state;
	uint64_t start_ms;		/* wall clock */
	struct ipaddr client_ip;
	uint16_t client_port;
	registry_kick_cb *kick;
	/* closes at once with a goodbye (the process is stopping) */
	registry_kick_cb *shutdown;
	/* the director says a wait for a move is over (may be NULL) */
	void (*resume)(struct registry_entry *entry);
	bool kicked;			/* a kick is on its way: not listed again */

	/* set through registry_set_user() and registry_set_backend() */
	char *user;			/* NULL until authenticated */
	struct registry_alt *alt;
	size_t alt_count;
	uint32_t user_hash;		/* the director's hash of the user, 0 if none */
	uint16_t director_tag;		/* the director's tag index it was routed
					 * in; REGISTRY_TAG_NONE: not routed by
					 * the director (a passdb host) */
	struct ipaddr backend_ip;	/* unset until routed */
	uint16_t backend_port;
	char *backend_host;		/* the name it was routed by, or NULL */

	struct registry_user *user_idx;
	struct list_node user_node;
	struct registry_backend *backend_idx;
	struct list_node backend_node;
};

struct registry {
	struct hmap by_id;
	struct list entries;
	struct hmap users;		/* struct registry_user by name */
	struct hmap backends;		/* struct registry_backend by address */
	uint64_t walk;			/* numbers index walks (filter.c) */
	/* optional: the sessions of (user, client address) changed in
	 * number (a director ring shares the counts, doc/ring.md §15) */
	void (*user_ip_changed)(void *ctx, const char *user, const struct ipaddr *ip);
	void *changed_ctx;
};

void registry_init(struct registry *reg);
void registry_deinit(struct registry *reg);

void registry_add(struct registry *reg, struct registry_entry *entry);
/* Also forgets the entry's user, alternative names and backend. */
void registry_remove(struct registry *reg, struct registry_entry *entry);
struct registry_entry *registry_find(const struct registry *reg, uint64_t id);

void registry_set_user(struct registry *reg, struct registry_entry *entry,
		       const char *user, uint32_t user_hash);
void registry_add_alt(struct registry_entry *entry, const char *field,
		      const char *value);
/* How the director knows the user: its hash, and the tag index it was
 * routed in (REGISTRY_TAG_NONE: routed by a passdb host). */
void registry_set_director(struct registry_entry *entry, uint32_t user_hash,
			   uint16_t tag);
/* host: the passdb's host string or the backend's configured name. */
void registry_set_backend(struct registry *reg, struct registry_entry *entry,
			  const struct ipaddr *ip, uint16_t port, const char *host);
/* Back to "not logged in": no user, alternative names or backend. */
void registry_clear_login(struct registry *reg, struct registry_entry *entry);

/* Kicks one session unless a kick is already on its way; true if this
 * call kicked it. */
bool registry_kick(struct registry_entry *entry, const char *text);
/* Sessions of one user (exact name, case-insensitive). */
size_t registry_user_count(const struct registry *reg, const char *user);
/* Sessions of one user from one client address, kicked ones excluded. */
size_t registry_user_ip_count(const struct registry *reg, const char *user,
			      const struct ipaddr *ip);

const char *registry_state_name(enum registry_state state);
const char *registry_alt_value(const struct registry_entry *entry,
			       const char *field);

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

/* For the index walkers in filter.c. */
struct registry_user {
	struct hmap_node node;
	struct list sessions;	/* entries through user_node */
	uint64_t walked;	/* the last walk that visited this bucket */
	char name[];
};

struct registry_backend {
	struct hmap_node node;
	struct list sessions;	/* entries through backend_node */
	uint64_t walked;
	struct ipaddr ip;
};

/* Every backend address with sessions routed to it, and how many. */
void registry_foreach_backend(const struct registry *reg,
			      void (*cb)(const struct ipaddr *ip, size_t sessions, void *ctx),
			      void *ctx);

struct registry_user *registry_user_find(const struct registry *reg,
					 const char *name);
struct registry_backend *registry_backend_find(const struct registry *reg,
					       const struct ipaddr *ip);

#endif
