/* The directors the ring expects, `director ring add|remove` (reference
 * §3.7, doc/ring.md §1, §8), and how every node looks in ring status.
 *
 * P/directors/<address>:<port> (no lease) names a director of the ring:
 * each node writes its own when its process first joins, an admin's
 * `ring add` writes one ahead of a node that has not joined yet. A
 * director without a live member is listed as down (Dovecot lists its
 * configured directors the same way).
 *
 * `ring remove` deletes the director's key. The node itself, seeing its
 * key go (or missing when it reads the state again), fences (closes its
 * sessions, refuses logins) and only then revokes its own lease, so that
 * its pins never vanish while its sessions still run; the admin is
 * answered once its membership is gone. A node that is dead or cut off
 * loses its membership with its lease (and has fenced itself by then).
 * A removed node stays out until its key is back (`ring add`) or its
 * process restarts. */
#include <event2/event.h>
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/xmalloc.h"
#include "ring/etcd.h"
#include "ring/ring_private.h"


/* A director of P/directors/, with when this node saw it go down. */
struct ring_director {
	char *address;
	unsigned int port;
	time_t down_since;	/* 0: never seen down; its "added" until seen */
};

/* An admin's ring add or remove waiting for etcd or for the ring. */
struct ring_director_op {
	struct ring_director_op *next;	/* in ring->director_ops */
	struct ring *ring;
	struct etcd_request *req;
	struct event *timer;
	char *address;			/* remove: the member that must go */
	unsigned int port;
	bool committed;			/* the key's change is in etcd */
	ring_director_reply_cb *reply;
	void *ctx;
	const char *answer;		/* set: answered on the timer's turn */
};

/* A lease-age probe of another node (ring status' "ping ms"). */
struct ring_probe {
	struct ring_probe *next;	/* in ring->probes */
	struct ring *ring;
	struct etcd_request *req;
	char *name;
};

static bool ring_is_self(const struct ring *r, const char *address, unsigned int port)
{
	return port == r->port && strcmp(address, r->address) == 0;
}

static struct ring_director *ring_director_find(struct ring *r, const char *address,
						unsigned int port)
{
	for (size_t i = 0; i < r->directors_count; i++) {
		struct ring_director *d = &r->directors[i];
		if (d->port == port && strcmp(d->address, address) == 0)
			return d;
	}
	return NULL;
}

static struct ring_member *ring_member_at(struct ring *r, const char *address,
					  unsigned int port)
{
	for (size_t i = 0; i < r->members_count; i++) {
		struct ring_member *m = &r->members[i];
		if (m->port == port && strcmp(m->address, address) == 0)
			return m;
	}
	return NULL;
}

bool ring_director_down(struct ring *r, size_t i, char *buf, size_t size)
{
	for (size_t k = 0; k < r->directors_count; k++) {
		const struct ring_director *d = &r->directors[k];
		if (ring_member_at(r, d->address, d->port) != NULL || i-- > 0)
			continue;
		snprintf(buf, size, "%s:%u", d->address, d->port);
		return true;
	}
	return false;
}

bool ring_director_peer(struct ring *r, size_t i, char *name, size_t size,
			const char **address_r, unsigned int *port_r)
{
	for (size_t k = 0; k < r->directors_count; k++) {
		const struct ring_director *d = &r->directors[k];
		if (ring_is_self(r, d->address, d->port) || i-- > 0)
			continue;
		const struct ring_member *m = ring_member_at(r, d->address, d->port);
		if (m != NULL)
			snprintf(name, size, "%s", m->name);
		else
			snprintf(name, size, "%s:%u", d->address, d->port);
		*address_r = d->address;
		*port_r = d->port;
		return true;
	}
	return false;
}

bool ring_director_named(struct ring *r, const char *name)
{
	char buf[300];
	for (size_t k = 0; k < r->directors_count; k++) {
		snprintf(buf, sizeof(buf), "%s:%u", r->directors[k].address, r->directors[k].port);
		if (strcmp(buf, name) == 0)
			return true;
	}
	return false;
}

/* ---- the keys ---------------------------------------------------------- */

static void ring_removed(struct ring *r)
{
	ring_report(r, LOG_LEVEL_ERROR, "ring: removed from the ring by an admin "
		    "(director ring remove): fenced; serving again once added back "
		    "(director ring add %s %u) or restarted", r->address, r->port);
	r->phase = RING_REMOVED;
	ring_lease_withhold(r);
	/* the sessions are closed: now the pins may go with the lease */
	etcd_request_cancel(&r->keepalive);
	if (r->lease != 0)
		(void)etcd_lease_revoke(r->etcd, r->lease, ring_ignore_result, NULL);
	r->lease = 0;
}

void ring_directors_apply(struct ring *r, const char *rest, size_t len,
			  const struct etcd_kv *kv, bool deleted)
{
	(void)rest;
	(void)len;
	json_error_t jerr;
	json_t *o = deleted ? NULL : json_loadb((const char *)kv->value, kv->value_len, 0, &jerr);
	const char *address = json_string_value(json_object_get(o, "address"));
	json_int_t port = json_integer_value(json_object_get(o, "port"));
	if (deleted) {
		/* the key names it: address:port, the port after the last ':' */
		char *name = xstrndup(rest, len);
		char *colon = strrchr(name, ':');
		if (colon != NULL) {
			*colon = '\0';
			struct ring_director *d = ring_director_find(r, name,
						(unsigned int)strtoul(colon + 1, NULL, 10));
			if (d != NULL) {
				free(d->address);
				*d = r->directors[--r->directors_count];
			}
			if (ring_is_self(r, name, (unsigned int)strtoul(colon + 1, NULL, 10)) &&
			    r->phase == RING_SERVING)
				ring_removed(r);
		}
		free(name);
		return;
	}
	if (address == NULL || port <= 0 || port > 65535) {
		ring_report(r, LOG_LEVEL_WARNING, "ring: director %.*s: not a director's "
			    "value, ignored", (int)len, rest);
		json_decref(o);
		return;
	}
	if (ring_director_find(r, address, (unsigned int)port) == NULL) {
		r->directors = xgrow(r->directors, &r->directors_cap, r->directors_count + 1,
				     sizeof(*r->directors));
		struct ring_director *d = &r->directors[r->directors_count++];
		d->address = xstrdup(address);
		d->port = (unsigned int)port;
		d->down_since = (time_t)json_integer_value(json_object_get(o, "added"));
	}
	if (ring_is_self(r, address, (unsigned int)port) && r->phase == RING_REMOVED) {
		ring_report(r, LOG_LEVEL_INFO, "ring: added back to the ring: joining");
		ring_rejoin(r, true);
	}
	json_decref(o);
}

void ring_directors_load_begin(struct ring *r)
{
	for (size_t i = 0; i < r->directors_count; i++)
		free(r->directors[i].address);
	r->directors_count = 0;
}

void ring_directors_loaded(struct ring *r)
{
	if (ring_director_find(r, r->address, r->port) == NULL)
		ring_removed(r);
}

char *ring_directors_own_value(const struct ring *r)
{
	json_t *o = json_pack("{s:s, s:i, s:I}", "address", r->address, "port",
			      (int)r->port, "added", (json_int_t)time(NULL));
	char *text = json_dumps(o, JSON_COMPACT | JSON_SORT_KEYS);
	json_decref(o);
	return text;
}

/* A member's key is gone: its director is down from now. */
void ring_directors_member_gone(struct ring *r, const char *address, unsigned int port)
{
	struct ring_director *d = ring_director_find(r, address, port);
	if (d != NULL)
		d->down_since = time(NULL);
}

/* ---- admin commands --------------------------------------------------------- */

static void ring_director_op_free(struct ring_director_op *op)
{
	for (struct ring_director_op **p = &op->ring->director_ops; *p != NULL; p = &(*p)->next) {
		if (*p == op) {
			*p = op->next;
			break;
		}
	}
	etcd_request_cancel(&op->req);
	event_free(op->timer);
	free(op->address);
	free(op);
}

static void ring_director_op_answer(struct ring_director_op *op, const char *line)
{
	ring_director_reply_cb *reply = op->reply;
	void *ctx = op->ctx;
	ring_director_op_free(op);
	reply(ctx, line);
}

static void ring_director_op_timer(evutil_socket_t fd, short what, void *arg)
{
	struct ring_director_op *op = arg;
	(void)fd;
	(void)what;
	ring_director_op_answer(op, op->answer != NULL ? op->answer : RING_TIMEOUT_TEXT);
}

static struct ring_director_op *ring_director_op_new(struct ring *r, ring_director_reply_cb *reply,
						      void *ctx)
{
	struct ring_director_op *op = xcalloc(1, sizeof(*op));
	op->ring = r;
	op->reply = reply;
	op->ctx = ctx;
	op->timer = evtimer_new(r->base, ring_director_op_timer, op);
	struct timeval tv = { RING_SYNC_TIMEOUT_MS / 1000, 0 };
	evtimer_add(op->timer, &tv);
	op->next = r->director_ops;
	r->director_ops = op;
	return op;
}

/* Answered on the next turn, like every admin answer. */
static void ring_director_op_answer_soon(struct ring_director_op *op, const char *line)
{
	struct timeval now = { 0, 0 };
	op->answer = line;
	evtimer_add(op->timer, &now);
}

static void ring_director_committed(const struct etcd_result *res, void *ctx)
{
	struct ring_director_op *op = ctx;
	op->req = NULL;
	if (res->outcome != ETCD_OK) {
		ring_report(op->ring, LOG_LEVEL_WARNING, "ring: director ring add/remove: "
			    "etcd %s: %s", res->endpoint != NULL ? res->endpoint : "-",
			    res->error != NULL ? res->error : "no answer");
		ring_director_op_answer(op, RING_TIMEOUT_TEXT);
		return;
	}
	op->committed = true;
	ring_directors_settle(op->ring);
}

void ring_directors_settle(struct ring *r)
{
	for (struct ring_director_op *op = r->director_ops, *next; op != NULL; op = next) {
		next = op->next;
		if (op->committed && op->answer == NULL &&
		    (op->address == NULL || ring_member_at(r, op->address, op->port) == NULL))
			ring_director_op_answer_soon(op, "OK");
	}
}

void ring_director_add(struct ring *r, const struct ipaddr *ip, unsigned int port,
		       ring_director_reply_cb *reply, void *ctx)
{
	struct ring_director_op *op = ring_director_op_new(r, reply, ctx);
	if (!ring_is_serving(r)) {
		ring_director_op_answer_soon(op, "this director is not in touch with its ring");
		return;
	}
	char address[IPADDR_STRLEN];
	ipaddr_to_str(ip, address);
	if (port == 0)
		port = r->port;
	if (ring_director_find(r, address, port) != NULL) {
		/* Dovecot: OK for a director already known */
		ring_director_op_answer_soon(op, "OK");
		return;
	}
	char *key = ring_key(r, "directors/%s:%u", address, port);
	json_t *o = json_pack("{s:s, s:i, s:I}", "address", address, "port", (int)port,
			      "added", (json_int_t)time(NULL));
	char *value = json_dumps(o, JSON_COMPACT | JSON_SORT_KEYS);
	json_decref(o);
	struct etcd_compare cmp = {
		.key = key, .key_len = strlen(key), .target = ETCD_TARGET_CREATE,
		.result = ETCD_CMP_EQUAL, .number = 0,
	};
	struct etcd_op put = { .type = ETCD_OP_PUT, .u.put = {
		.key = key, .key_len = strlen(key), .value = value,
		.value_len = strlen(value) } };
	struct etcd_txn_params txn = {
		.compares = &cmp, .compare_count = 1, .success = &put, .success_count = 1,
	};
	op->req = etcd_kv_txn(r->etcd, &txn, ring_director_committed, op);
	free(key);
	free(value);
}

/* The first director with the address (and port, unless 0), in the order
 * ring status lists them: declared ones and live members alike. */
static bool ring_director_target(struct ring *r, const char *address, unsigned int port,
				 unsigned int *port_r)
{
	bool found = false;
	for (size_t i = 0; i < r->directors_count; i++) {
		const struct ring_director *d = &r->directors[i];
		if (strcmp(d->address, address) == 0 && (port == 0 || d->port == port) &&
		    (!found || d->port < *port_r)) {
			*port_r = d->port;
			found = true;
		}
	}
	for (size_t i = 0; i < r->members_count; i++) {
		const struct ring_member *m = &r->members[i];
		if (strcmp(m->address, address) == 0 && (port == 0 || m->port == port) &&
		    (!found || m->port < *port_r)) {
			*port_r = m->port;
			found = true;
		}
	}
	return found;
}

void ring_director_remove(struct ring *r, const struct ipaddr *ip, unsigned int port,
			  ring_director_reply_cb *reply, void *ctx)
{
	struct ring_director_op *op = ring_director_op_new(r, reply, ctx);
	char address[IPADDR_STRLEN];
	ipaddr_to_str(ip, address);
	if (!ring_is_serving(r)) {
		ring_director_op_answer_soon(op, "this director is not in touch with its ring");
		return;
	}
	if (!ring_director_target(r, address, port, &port)) {
		ring_director_op_answer_soon(op, "NOTFOUND");
		return;
	}
	if (ring_is_self(r, address, port)) {
		ring_director_op_answer_soon(op, "a director cannot remove itself: run "
					     "director ring remove on another node");
		return;
	}
	op->address = xstrdup(address);
	op->port = port;
	char *key = ring_key(r, "directors/%s:%u", address, port);
	struct etcd_delete_params del = { .key = key, .key_len = strlen(key) };
	op->req = etcd_kv_delete(r->etcd, &del, ring_director_committed, op);
	free(key);
}

/* ---- ring status ------------------------------------------------------------- */

static void ring_probed(const struct etcd_result *res, void *ctx)
{
	struct ring_probe *p = ctx;
	struct ring *r = p->ring;
	p->req = NULL;
	struct ring_member *m = ring_member_get(r, p->name);
	if (m != NULL && res->outcome == ETCD_OK && res->lease.ttl >= 0 &&
	    res->lease.granted_ttl >= res->lease.ttl)
		m->lease_age_ms = (unsigned int)(res->lease.granted_ttl - res->lease.ttl) * 1000;
	for (struct ring_probe **q = &r->probes; *q != NULL; q = &(*q)->next) {
		if (*q == p) {
			*q = p->next;
			break;
		}
	}
	free(p->name);
	free(p);
}

void ring_directors_probe(struct ring *r)
{
	if (r->phase != RING_SERVING || r->probes != NULL)
		return;
	for (size_t i = 0; i < r->members_count; i++) {
		const struct ring_member *m = &r->members[i];
		if (strcmp(m->name, r->name) == 0 || m->lease == 0)
			continue;
		struct ring_probe *p = xcalloc(1, sizeof(*p));
		p->ring = r;
		p->name = xstrdup(m->name);
		p->next = r->probes;
		r->probes = p;
		p->req = etcd_lease_timetolive(r->etcd, m->lease, false, ring_probed, p);
	}
}

static int ring_member_cmp(const void *a, const void *b)
{
	const struct ring_member_info *x = a, *y = b;
	int c = strcmp(x->address, y->address);
	return c != 0 ? c : (int)x->port - (int)y->port;
}

static const char *ring_self_status(const struct ring *r)
{
	if (r->phase == RING_REMOVED)
		return "removed";
	if (r->fenced)
		return "fenced";
	if (ring_failsafe_active(r))
		return "failsafe";
	if (ring_failsafe_frozen(r))
		return "frozen";
	/* (it serves while it reads the pins, but its view is not whole) */
	return r->phase == RING_SERVING && !r->pins_partial ? "ring synced" : "syncing";
}

void ring_members_foreach(struct ring *r,
			  void (*cb)(const struct ring_member_info *m, void *ctx),
			  void *ctx)
{
	/* every live member, every declared director without one, and this
	 * node whatever the ring says; sorted by address and port, as
	 * Dovecot lists its directors */
	size_t cap = r->members_count + r->directors_count + 1, n = 0;
	struct ring_member_info *rows = xcalloc(cap, sizeof(*rows));
	rows[n++] = (struct ring_member_info){
		.name = r->name, .address = r->address, .port = r->port, .self = true,
		.since = r->started, .status = ring_self_status(r), .ping_ms = r->ping_ms,
	};
	for (size_t i = 0; i < r->members_count; i++) {
		const struct ring_member *m = &r->members[i];
		if (ring_is_self(r, m->address, m->port))
			continue;
		bool synced = !r->hosts_known || m->applied >= r->hosts_revision;
		rows[n++] = (struct ring_member_info){
			.name = m->name, .address = m->address, .port = m->port,
			.since = m->started, .status = synced ? "synced" : "syncing",
			.ping_ms = m->lease_age_ms,
		};
	}
	for (size_t i = 0; i < r->directors_count; i++) {
		const struct ring_director *d = &r->directors[i];
		if (ring_is_self(r, d->address, d->port) ||
		    ring_member_at(r, d->address, d->port) != NULL)
			continue;
		rows[n++] = (struct ring_member_info){
			.name = "", .address = d->address, .port = d->port,
			.status = "down", .last_failed = d->down_since,
		};
	}
	qsort(rows, n, sizeof(*rows), ring_member_cmp);
	for (size_t i = 0; i < n; i++)
		cb(&rows[i], ctx);
	free(rows);
}

void ring_directors_free(struct ring *r)
{
	while (r->director_ops != NULL)
		ring_director_op_answer(r->director_ops, RING_TIMEOUT_TEXT);
	while (r->probes != NULL) {
		struct ring_probe *p = r->probes;
		r->probes = p->next;
		etcd_request_cancel(&p->req);
		free(p->name);
		free(p);
	}
	ring_directors_load_begin(r);
	free(r->directors);
	r->directors = NULL;
}
