/* Limits counted over the whole ring (doc/ring.md §15): each node tells
 * the others, every ring.limits_interval, how many sessions each (user,
 * client address) it changed has now, and the auth failures that raised a
 * penalty here; each node adds what the others said to its own counts
 * when it checks login.max_userip_connections and raises its penalty
 * for their failures. Nothing waits for the others on the login path: a
 * count may be as old as one interval plus the time a message takes.
 *
 * A node first sends each member a full snapshot (every pair it has),
 * then only changes; a member it could not reach, or that joined again
 * under a new lease, gets a full snapshot again. Counts of nodes that are
 * no longer members are dropped. */
#include <event2/event.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "common/hmap.h"
#include "common/sbuf.h"
#include "common/tabescape.h"
#include "common/xmalloc.h"
#include "ring/ring_peer.h"
#include "ring/ring_private.h"

/* A (user, address) pair with a count: the changed set (count unused),
 * a node's counts and the totals over the other nodes. */
struct ring_limits_pair {
	struct hmap_node node;
	struct ipaddr ip;
	unsigned int count;
	char user[];
};

struct ring_limits_failure {
	struct hmap_node node;
	struct ipaddr ip;
	unsigned int count;
};

/* Another node: what it said (counts), what it heard from us (synced). */
struct ring_limits_peer {
	struct ring_limits_peer *next;
	char *name;
	struct hmap counts;
	int64_t synced_lease;		/* its lease when our full snapshot got
					 * there; 0: send it one */
};

struct ring_limits {
	struct event *timer;
	struct hmap changed;		/* our pairs changed since the last send */
	struct hmap failures;		/* our raised penalties since then */
	struct hmap totals;		/* the other nodes' counts, added up */
	struct ring_limits_peer *peers;
	unsigned int calls;		/* sends in flight */
	const struct ring_limits_source *src;
	void *src_ctx;
};

/* One send's answers: which peers it went to and whether it was full. */
struct ring_limits_send {
	struct ring *ring;
	bool full;
};

static uint64_t ring_limits_hash(const char *user, const struct ipaddr *ip)
{
	return hash_string_icase(user) ^ ipaddr_hash(ip);
}

static struct ring_limits_pair *ring_limits_find(const struct hmap *map, const char *user,
						 const struct ipaddr *ip, uint64_t hash)
{
	struct hmap_node *n;
	HMAP_FOR_EACH_WITH_HASH(n, hash, map) {
		struct ring_limits_pair *p = CONTAINER_OF(n, struct ring_limits_pair, node);
		if (ipaddr_equal(&p->ip, ip) && strcasecmp(p->user, user) == 0)
			return p;
	}
	return NULL;
}

static struct ring_limits_pair *ring_limits_get(struct hmap *map, const char *user,
						const struct ipaddr *ip)
{
	uint64_t hash = ring_limits_hash(user, ip);
	struct ring_limits_pair *p = ring_limits_find(map, user, ip, hash);
	if (p == NULL) {
		size_t len = strlen(user);
		p = xcalloc(1, sizeof(*p) + len + 1);
		memcpy(p->user, user, len + 1);
		p->ip = *ip;
		hmap_insert(map, &p->node, hash);
	}
	return p;
}

static void ring_limits_pairs_clear(struct hmap *map)
{
	struct hmap_node *n, *next;
	HMAP_FOR_EACH_SAFE(n, next, map) {
		hmap_remove(map, n);
		free(CONTAINER_OF(n, struct ring_limits_pair, node));
	}
}

static void ring_limits_failures_clear(struct hmap *map)
{
	struct hmap_node *n, *next;
	HMAP_FOR_EACH_SAFE(n, next, map) {
		hmap_remove(map, n);
		free(CONTAINER_OF(n, struct ring_limits_failure, node));
	}
}

/* A node's count of a pair is now count: the totals follow. */
static void ring_limits_set(struct ring_limits *l, struct ring_limits_peer *peer,
			    const char *user, const struct ipaddr *ip, unsigned int count)
{
	struct ring_limits_pair *p = ring_limits_get(&peer->counts, user, ip);
	struct ring_limits_pair *t = ring_limits_get(&l->totals, user, ip);
	t->count = t->count - p->count + count;
	p->count = count;
	if (count == 0) {
		hmap_remove(&peer->counts, &p->node);
		free(p);
	}
	if (t->count == 0) {
		hmap_remove(&l->totals, &t->node);
		free(t);
	}
}

/* Forgets everything a node said. */
static void ring_limits_peer_clear(struct ring_limits *l, struct ring_limits_peer *peer)
{
	struct hmap_node *n, *next;
	HMAP_FOR_EACH_SAFE(n, next, &peer->counts) {
		struct ring_limits_pair *p = CONTAINER_OF(n, struct ring_limits_pair, node);
		ring_limits_set(l, peer, p->user, &p->ip, 0);
	}
}

static struct ring_limits_peer *ring_limits_peer_get(struct ring_limits *l, const char *name)
{
	for (struct ring_limits_peer *p = l->peers; p != NULL; p = p->next) {
		if (strcmp(p->name, name) == 0)
			return p;
	}
	struct ring_limits_peer *p = xcalloc(1, sizeof(*p));
	p->name = xstrdup(name);
	hmap_init(&p->counts);
	p->next = l->peers;
	l->peers = p;
	return p;
}

/* The peers that are no longer members: their counts go. */
static void ring_limits_prune(struct ring *r)
{
	struct ring_limits *l = r->limits;
	for (struct ring_limits_peer **pp = &l->peers; *pp != NULL;) {
		struct ring_limits_peer *p = *pp;
		if (ring_member_get(r, p->name) != NULL) {
			pp = &p->next;
			continue;
		}
		ring_limits_peer_clear(l, p);
		hmap_destroy(&p->counts);
		*pp = p->next;
		free(p->name);
		free(p);
	}
}

/* ---- sending ------------------------------------------------------- */

static void ring_limits_append_pair(struct sbuf *out, const char *user,
				    const struct ipaddr *ip, unsigned int count)
{
	char ipbuf[IPADDR_STRLEN];
	sbuf_appends(out, RING_LIMITS_USER_IP "\t");
	tabescape_append(out, user);
	sbuf_appendf(out, "\t%s\t%u\n", ipaddr_to_str(ip, ipbuf), count);
}

static void ring_limits_snapshot_one(void *ctx, const char *user, const struct ipaddr *ip,
				     unsigned int count)
{
	ring_limits_append_pair(ctx, user, ip, count);
}

static void ring_limits_sent(void *ctx, const char *node, const char *error,
			     const char *payload, size_t len)
{
	struct ring_limits_send *send = ctx;
	struct ring *r = send->ring;
	(void)payload;
	(void)len;
	struct ring_member *m = ring_member_get(r, node);
	struct ring_limits_peer *p = ring_limits_peer_get(r->limits, node);
	if (error != NULL)
		p->synced_lease = 0;	/* what it missed comes in a snapshot */
	else if (send->full && m != NULL)
		p->synced_lease = m->lease;
}

static void ring_limits_send_done(void *ctx)
{
	struct ring_limits_send *send = ctx;
	if (send->ring->limits != NULL)
		send->ring->limits->calls--;
	free(send);
}

/* Sends text (BEGIN and its pairs, failures and END to come) to the
 * members whose full flag is full. */
static void ring_limits_send(struct ring *r, bool full, const struct sbuf *body)
{
	struct ring_limits *l = r->limits;
	struct ring_limits_send *send = xcalloc(1, sizeof(*send));
	send->ring = r;
	send->full = full;
	struct ring_call *call = ring_call_new(r, ring_limits_sent, ring_limits_send_done, send);
	for (size_t i = 0; i < r->members_count; i++) {
		const struct ring_member *m = &r->members[i];
		if (strcmp(m->name, r->name) == 0)
			continue;
		struct ring_limits_peer *p = ring_limits_peer_get(l, m->name);
		if ((p->synced_lease != m->lease) == full)
			ring_call_add_node(call, m->name, m->address, m->port);
	}
	struct sbuf *text = ring_call_text(call);
	sbuf_appendf(text, RING_LIMITS_BEGIN "\t%s\n", full ? "full" : "delta");
	if (full)
		l->src->foreach_user_ip(l->src_ctx, ring_limits_snapshot_one, text);
	sbuf_append(text, sbuf_data(body), sbuf_len(body));
	sbuf_appends(text, RING_LIMITS_END "\n");
	l->calls++;
	ring_call_go(call);	/* with no node, it just ends */
}

static void ring_limits_tick(evutil_socket_t fd, short what, void *ctx)
{
	struct ring *r = ctx;
	struct ring_limits *l = r->limits;
	(void)fd;
	(void)what;
	if (l->calls > 0 || l->src == NULL || !ring_peers_enabled(r))
		return;		/* the last send is still going: changes wait */
	ring_limits_prune(r);
	bool any_new = false;
	for (size_t i = 0; i < r->members_count; i++) {
		const struct ring_member *m = &r->members[i];
		if (strcmp(m->name, r->name) != 0)
			any_new |= ring_limits_peer_get(l, m->name)->synced_lease != m->lease;
	}
	if (!any_new && hmap_count(&l->changed) == 0 && hmap_count(&l->failures) == 0)
		return;
	/* the changes (sent to the synced) and the failures (to all) */
	struct sbuf changes = SBUF_INIT, failures = SBUF_INIT;
	struct hmap_node *n;
	HMAP_FOR_EACH(n, &l->changed) {
		const struct ring_limits_pair *p = CONTAINER_OF(n, struct ring_limits_pair, node);
		ring_limits_append_pair(&changes, p->user, &p->ip,
					l->src->count(l->src_ctx, p->user, &p->ip));
	}
	HMAP_FOR_EACH(n, &l->failures) {
		const struct ring_limits_failure *f =
			CONTAINER_OF(n, struct ring_limits_failure, node);
		char ipbuf[IPADDR_STRLEN];
		sbuf_appendf(&failures, RING_LIMITS_FAILURES "\t%s\t%u\n",
			     ipaddr_to_str(&f->ip, ipbuf), f->count);
	}
	ring_limits_pairs_clear(&l->changed);
	ring_limits_failures_clear(&l->failures);
	sbuf_append(&changes, sbuf_data(&failures), sbuf_len(&failures));
	if (sbuf_len(&changes) > 0)
		ring_limits_send(r, false, &changes);
	if (any_new)
		ring_limits_send(r, true, &failures);
	sbuf_free(&changes);
	sbuf_free(&failures);
}

/* ---- receiving ----------------------------------------------------- */

void ring_limits_cmd_begin(struct ring *r, const char *peer, char **args, int nargs,
			   struct sbuf *out)
{
	(void)out;
	/* a full snapshot replaces what the node said before */
	if (nargs == 1 && strcmp(args[0], "full") == 0)
		ring_limits_peer_clear(r->limits, ring_limits_peer_get(r->limits, peer));
}

void ring_limits_cmd_user_ip(struct ring *r, const char *peer, char **args, int nargs,
			     struct sbuf *out)
{
	struct ipaddr ip;
	char *end;
	(void)out;
	if (nargs != 3 || ipaddr_parse(args[1], &ip) < 0)
		return;
	unsigned long count = strtoul(args[2], &end, 10);
	if (*end != '\0' || count > 1000000)
		return;
	ring_limits_set(r->limits, ring_limits_peer_get(r->limits, peer), args[0], &ip,
			(unsigned int)count);
}

void ring_limits_cmd_failures(struct ring *r, const char *peer, char **args, int nargs,
			      struct sbuf *out)
{
	struct ring_limits *l = r->limits;
	struct ipaddr ip;
	char *end;
	(void)out;
	if (nargs != 2 || ipaddr_parse(args[0], &ip) < 0 || l->src == NULL)
		return;
	unsigned long count = strtoul(args[1], &end, 10);
	if (*end != '\0' || count == 0)
		return;
	ring_report(r, LOG_LEVEL_DEBUG, "ring: %s saw %lu auth failures from %s",
		    peer, count, args[0]);
	l->src->remote_failures(l->src_ctx, &ip, count > 100 ? 100 : (unsigned int)count);
}

void ring_limits_cmd_end(struct ring *r, const char *peer, char **args, int nargs,
			 struct sbuf *out)
{
	(void)args;
	(void)nargs;
	(void)out;
	ring_report(r, LOG_LEVEL_DEBUG, "ring: limits from %s: %zu pairs counted there",
		    peer, hmap_count(&ring_limits_peer_get(r->limits, peer)->counts));
}

/* ---- the API ------------------------------------------------------- */

void ring_limits_init(struct ring *r, uint64_t interval_ms)
{
	struct ring_limits *l = xcalloc(1, sizeof(*l));
	r->limits = l;
	hmap_init(&l->changed);
	hmap_init(&l->failures);
	hmap_init(&l->totals);
	l->timer = event_new(r->base, -1, EV_PERSIST, ring_limits_tick, r);
	struct timeval tv = { (time_t)(interval_ms / 1000),
			      (suseconds_t)(interval_ms % 1000) * 1000 };
	evtimer_add(l->timer, &tv);
}

void ring_limits_deinit(struct ring *r)
{
	struct ring_limits *l = r->limits;
	if (l == NULL)
		return;
	event_free(l->timer);
	while (l->peers != NULL) {
		struct ring_limits_peer *p = l->peers;
		l->peers = p->next;
		ring_limits_pairs_clear(&p->counts);
		hmap_destroy(&p->counts);
		free(p->name);
		free(p);
	}
	ring_limits_pairs_clear(&l->changed);
	ring_limits_pairs_clear(&l->totals);
	ring_limits_failures_clear(&l->failures);
	hmap_destroy(&l->changed);
	hmap_destroy(&l->totals);
	hmap_destroy(&l->failures);
	free(l);
	r->limits = NULL;
}

void ring_limits_set_source(struct ring *r, const struct ring_limits_source *src, void *ctx)
{
	r->limits->src = src;
	r->limits->src_ctx = ctx;
}

void ring_limits_changed(struct ring *r, const char *user, const struct ipaddr *ip)
{
	(void)ring_limits_get(&r->limits->changed, user, ip);
}

void ring_limits_failure(struct ring *r, const struct ipaddr *ip)
{
	struct ring_limits *l = r->limits;
	uint64_t hash = ipaddr_hash(ip);
	struct hmap_node *n;
	HMAP_FOR_EACH_WITH_HASH(n, hash, &l->failures) {
		struct ring_limits_failure *f = CONTAINER_OF(n, struct ring_limits_failure, node);
		if (ipaddr_equal(&f->ip, ip)) {
			f->count++;
			return;
		}
	}
	struct ring_limits_failure *f = xcalloc(1, sizeof(*f));
	f->ip = *ip;
	f->count = 1;
	hmap_insert(&l->failures, &f->node, hash);
}

unsigned int ring_limits_remote_user_ip(struct ring *r, const char *user,
					const struct ipaddr *ip)
{
	const struct ring_limits_pair *t = ring_limits_find(&r->limits->totals, user, ip,
							    ring_limits_hash(user, ip));
	return t != NULL ? t->count : 0;
}
