/* Session matching with index selection. */
#include "registry/filter.h"

#include <string.h>
#include <strings.h>

#include "common/wildcard.h"

static bool filter_user_matches(const struct registry_filter *f,
				const struct registry_entry *e)
{
	if (f->user_masks_count == 0)
		return true;
	const char *name = f->alt_field != NULL ?
		registry_alt_value(e, f->alt_field) : e->user;
	if (name == NULL)
		return false;
	for (size_t i = 0; i < f->user_masks_count; i++) {
		if (f->exact ? strcasecmp(name, f->user_masks[i]) == 0 :
		    wildcard_match_icase(name, f->user_masks[i]))
			return true;
	}
	return false;
}

static bool filter_dest_matches(const struct registry_filter *f,
				const struct registry_entry *e)
{
	if (f->dests_count == 0 && f->dest_hosts_count == 0)
		return true;
	if (!ipaddr_is_set(&e->backend_ip))
		return false;
	for (size_t i = 0; i < f->dests_count; i++) {
		if (ipaddr_equal(&f->dests[i], &e->backend_ip))
			return true;
	}
	char ip[IPADDR_STRLEN];
	ipaddr_to_str(&e->backend_ip, ip);
	for (size_t i = 0; i < f->dest_hosts_count; i++) {
		if (wildcard_match_icase(ip, f->dest_hosts[i]) ||
		    (e->backend_host != NULL &&
		     wildcard_match_icase(e->backend_host, f->dest_hosts[i])))
			return true;
	}
	return false;
}

/* What an index walk has already established about its sessions. */
enum filter_known {
	FILTER_KNOWN_NOTHING = 0,
	FILTER_KNOWN_USER = 1 << 0,	/* reached through a matching user bucket */
	FILTER_KNOWN_DEST = 1 << 1,	/* reached through a matching backend */
};

static bool filter_match(const struct registry_filter *f,
			 const struct registry_entry *e, unsigned int known)
{
	if (e->kicked)
		return false;
	if ((f->logged_in || f->user_masks_count > 0) && e->user == NULL)
		return false;
	if (f->proxied && !ipaddr_is_set(&e->backend_ip))
		return false;
	if (f->have_net && !cidr_match(&f->net, &e->client_ip))
		return false;
	if (f->have_hash && e->user_hash != f->hash)
		return false;
	if (f->have_tag && e->director_tag != f->tag &&
	    e->director_tag != REGISTRY_TAG_NONE)
		return false;
	if (f->have_except && ipaddr_equal(&f->except, &e->backend_ip))
		return false;
	return ((known & FILTER_KNOWN_USER) != 0 || filter_user_matches(f, e)) &&
		((known & FILTER_KNOWN_DEST) != 0 || filter_dest_matches(f, e));
}

bool registry_filter_match(const struct registry_filter *f,
			   const struct registry_entry *e)
{
	return filter_match(f, e, FILTER_KNOWN_NOTHING);
}

/* Calls cb for the matching sessions of one index bucket. */
static void filter_walk_list(struct list *sessions, size_t node_offset,
			     const struct registry_filter *f, unsigned int known,
			     registry_match_cb *cb, void *ctx)
{
	struct list_node *n = sessions->head;
	while (n != NULL) {
		struct list_node *next = n->next;
		struct registry_entry *e =
			(struct registry_entry *)(void *)((char *)n - node_offset);
		if (filter_match(f, e, known))
			cb(e, ctx);
		n = next;
	}
}

static bool filter_masks_are_names(const struct registry_filter *f)
{
	if (f->user_masks_count == 0 || f->alt_field != NULL)
		return false;
	if (f->exact)
		return true;
	for (size_t i = 0; i < f->user_masks_count; i++) {
		if (wildcard_has_wildcards(f->user_masks[i]))
			return false;
	}
	return true;
}

void registry_match(struct registry *reg, const struct registry_filter *f,
		    registry_match_cb *cb, void *ctx)
{
	/* a bucket named twice (any case) is walked once: buckets remember
	 * the walk that last visited them */
	uint64_t walk = ++reg->walk;
	if (filter_masks_are_names(f)) {
		for (size_t i = 0; i < f->user_masks_count; i++) {
			struct registry_user *u = registry_user_find(reg, f->user_masks[i]);
			if (u == NULL || u->walked == walk)
				continue;
			u->walked = walk;
			filter_walk_list(&u->sessions,
					 offsetof(struct registry_entry, user_node),
					 f, FILTER_KNOWN_USER, cb, ctx);
		}
		return;
	}
	if (f->dests_count > 0 && f->dest_hosts_count == 0) {
		for (size_t i = 0; i < f->dests_count; i++) {
			struct registry_backend *b = registry_backend_find(reg, &f->dests[i]);
			if (b == NULL || b->walked == walk)
				continue;
			b->walked = walk;
			filter_walk_list(&b->sessions,
					 offsetof(struct registry_entry, backend_node),
					 f, FILTER_KNOWN_DEST, cb, ctx);
		}
		return;
	}
	filter_walk_list(&reg->entries, offsetof(struct registry_entry, node), f,
			 FILTER_KNOWN_NOTHING, cb, ctx);
}
