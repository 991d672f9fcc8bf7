/* The ring's state as this node knows it, from the full read at join and
 * the watch after it (doc/ring.md §1): the live members
 * (P/members/<name>), the host list and a change of it in flight, the
 * nodes' acknowledgements, and the pins. Keys this version does not know are ignored, so a
 * newer node's keys do not trouble an older one. */
#include <jansson.h>
#include <stdlib.h>
#include <string.h>

#include "common/xmalloc.h"
#include "ring/etcd.h"
#include "ring/ring_private.h"


static void ring_member_clear(struct ring_member *m)
{
	free(m->name);
	free(m->address);
	memset(m, 0, sizeof(*m));
}

static struct ring_member *ring_member_find(struct ring *r, const char *name,
					    size_t len)
{
	for (size_t i = 0; i < r->members_count; i++) {
		if (strlen(r->members[i].name) == len &&
		    memcmp(r->members[i].name, name, len) == 0)
			return &r->members[i];
	}
	return NULL;
}

static void ring_member_apply(struct ring *r, const char *name, size_t len,
			      const struct etcd_kv *kv, bool deleted)
{
	struct ring_member *m = ring_member_find(r, name, len);
	if (deleted) {
		if (m == NULL)
			return;
		ring_directors_member_gone(r, m->address, m->port);
		ring_member_clear(m);
		*m = r->members[--r->members_count];
		return;
	}
	json_error_t jerr;
	json_t *o = json_loadb((const char *)kv->value, kv->value_len, 0, &jerr);
	const char *address = json_string_value(json_object_get(o, "address"));
	json_int_t port = json_integer_value(json_object_get(o, "port"));
	json_int_t started = json_integer_value(json_object_get(o, "started"));
	if (address == NULL || port <= 0 || port > 65535) {
		ring_report(r, LOG_LEVEL_WARNING, "ring: member %.*s: not a member's "
			    "value, ignored", (int)len, name);
		json_decref(o);
		return;
	}
	if (m == NULL) {
		r->members = xgrow(r->members, &r->members_cap, r->members_count + 1,
				   sizeof(*r->members));
		m = &r->members[r->members_count++];
		memset(m, 0, sizeof(*m));
		m->name = xstrndup(name, len);
	}
	free(m->address);
	m->address = xstrdup(address);
	m->port = (unsigned int)port;
	m->started = (time_t)started;
	m->lease = kv->lease;
	json_decref(o);
}

struct ring_member *ring_member_get(struct ring *r, const char *name)
{
	return ring_member_find(r, name, strlen(name));
}

/* A key naming a node: its node as a C string. */
static void ring_node_acked(struct ring *r, const char *node, size_t len,
			    const struct etcd_kv *kv, bool deleted)
{
	char *name = xstrndup(node, len);
	ring_change_acked(r, name, kv, deleted);
	free(name);
}

static void ring_node_applied(struct ring *r, const char *node, size_t len,
			      const struct etcd_kv *kv, bool deleted)
{
	char *name = xstrndup(node, len);
	ring_change_applied(r, name, kv, deleted);
	free(name);
}

static void ring_hosts_key(struct ring *r, const char *rest, size_t len,
			   const struct etcd_kv *kv, bool deleted)
{
	(void)rest;
	(void)len;
	if (deleted)
		ring_report(r, LOG_LEVEL_ERROR, "ring: %shosts was deleted: this node "
			    "keeps routing by the list it has", r->prefix);
	else
		ring_change_hosts(r, kv);
}

static void ring_hostchange_key(struct ring *r, const char *rest, size_t len,
				const struct etcd_kv *kv, bool deleted)
{
	(void)rest;
	(void)len;
	ring_change_proposed(r, kv, deleted);
}

/* The keys by name: "exact" ones whole, the others as a prefix of the
 * rest (which the handler gets). */
static const struct ring_key_handler {
	const char *name;
	bool exact;
	void (*apply)(struct ring *r, const char *rest, size_t len,
		      const struct etcd_kv *kv, bool deleted);
} ring_key_handlers[] = {
	{ "members/", false, ring_member_apply },
	{ "hosts", true, ring_hosts_key },
	{ "hostchange", true, ring_hostchange_key },
	{ "hostchange-ack/", false, ring_node_acked },
	{ "applied/", false, ring_node_applied },
	{ "pins/", false, ring_pins_apply },
	{ "moves/", false, ring_moves_apply },
	{ "moves-ack/", false, ring_moves_ack_apply },
	{ "kicks/", false, ring_kicks_apply },
	{ "kicks-ack/", false, ring_kicks_ack_apply },
	{ "health/", false, ring_health_apply },
	{ "directors/", false, ring_directors_apply },
};

void ring_state_apply(struct ring *r, const struct etcd_kv *kv, bool deleted)
{
	size_t plen = strlen(r->prefix);
	if (kv->key_len < plen || memcmp(kv->key, r->prefix, plen) != 0)
		return;
	const char *rest = (const char *)kv->key + plen;
	size_t len = kv->key_len - plen;
	for (size_t i = 0; i < ARRAY_SIZE(ring_key_handlers); i++) {
		const struct ring_key_handler *h = &ring_key_handlers[i];
		size_t n = strlen(h->name);
		if (h->exact ? len == n && memcmp(rest, h->name, n) == 0 :
		    len > n && memcmp(rest, h->name, n) == 0) {
			h->apply(r, rest + n, len - n, kv, deleted);
			return;
		}
	}
}

void ring_state_load(struct ring *r, const struct etcd_op_result *parts, size_t nparts,
		     bool with_pins)
{
	for (size_t i = 0; i < r->members_count; i++)
		ring_member_clear(&r->members[i]);
	r->members_count = 0;
	ring_change_proposed(r, NULL, true);
	if (with_pins)
		ring_pins_load_begin(r);
	ring_moves_load_begin(r);
	ring_kicks_load_begin(r);
	ring_health_load_begin(r);
	ring_directors_load_begin(r);
	/* the members first (the keys that name a node count for a member),
	 * moves and kicks before their acks (which sort first) */
	static const char *const first[] = { "members/", "moves/", "kicks/" };
	size_t plen = strlen(r->prefix);
	for (size_t pass = 0; pass <= ARRAY_SIZE(first); pass++) {
		for (size_t part = 0; part < nparts; part++) {
			for (size_t i = 0; i < parts[part].kv_count; i++) {
				const struct etcd_kv *kv = &parts[part].kvs[i];
				size_t kind = 0;
				while (kind < ARRAY_SIZE(first) &&
				       !(kv->key_len > plen + strlen(first[kind]) &&
					 memcmp(kv->key + plen, first[kind],
						strlen(first[kind])) == 0))
					kind++;
				if (kind == pass)
					ring_state_apply(r, kv, false);
			}
		}
	}
	ring_moves_load_end(r);
	ring_kicks_load_end(r);
	if (with_pins)
		ring_pins_load_end(r);
}

void ring_state_free(struct ring *r)
{
	for (size_t i = 0; i < r->members_count; i++)
		ring_member_clear(&r->members[i]);
	r->members_count = 0;
	free(r->members);
	r->members = NULL;
}
