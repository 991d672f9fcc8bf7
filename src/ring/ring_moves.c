/* Moves, kill first, ring-wide (doc/ring.md §5, reference §2.6):
 *
 *   propose  the admin's node creates P/moves/<hash>/<tag> = {"id","host"}
 *            if no move of the user and no host change is in flight
 *            (else TRYAGAIN, doveadm exits 75)
 *   hold     every node, seeing it, holds the user's logins and closes its
 *            sessions (director_user_move_hold); once they are gone it
 *            writes P/moves-ack/<hash>/<tag>/<node> = id on its lease
 *   finish   every node that sees every live node's ack waits
 *            user_kick_delay, then tries the one transaction (compare on
 *            the move's revision): the user's pins go, the move's pin
 *            P/pins/<hash>/<tag>/@move names the new host on a lease of
 *            user_expire (etcd's clock decides when it may follow the
 *            hash again), the move and its acks go
 *   go on    every node sees the move gone and lets the held logins go
 *            on; the admin's node answers OK
 *
 * A node that dies is no longer waited for once its lease has gone; one
 * cut off has fenced itself (its sessions closed) by then. */
#include <event2/event.h>
#include <jansson.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "common/sbuf.h"
#include "common/xmalloc.h"
#include "director/director.h"
#include "ring/etcd.h"
#include "ring/ring_private.h"

#define RING_MOVE_PIN "@move"

struct ring_move {
	struct ring_move *next;		/* in ring->moves */
	struct ring *ring;
	char *rest;			/* "<hash>/<escaped tag>" */
	char *tag;
	uint32_t hash;
	char *id;
	char *host;
	int64_t revision;		/* the move key's: the finish compares it */
	char **acked;			/* the nodes that acknowledged */
	size_t acked_count, acked_cap;
	bool ready;			/* this node's sessions of the user are gone */
	bool seen;			/* read again by the current full read */
	struct event *delay;		/* user_kick_delay, once everyone acked */
	bool delay_over;
	struct etcd_request *ack, *lease, *finish;
	int64_t lease_id;		/* the move's pin's, while finishing */
};

static struct ring_move *ring_move_find(struct ring *r, const char *rest, size_t len)
{
	for (struct ring_move *m = r->moves; m != NULL; m = m->next) {
		if (strlen(m->rest) == len && memcmp(m->rest, rest, len) == 0)
			return m;
	}
	return NULL;
}

static struct ring_move *ring_move_find_user(struct ring *r, const char *tag,
					     uint32_t hash)
{
	for (struct ring_move *m = r->moves; m != NULL; m = m->next) {
		if (m->hash == hash && strcmp(m->tag, tag) == 0)
			return m;
	}
	return NULL;
}

static bool ring_move_acked_by(const struct ring_move *m, const char *node, size_t len)
{
	for (size_t i = 0; i < m->acked_count; i++) {
		if (strlen(m->acked[i]) == len && memcmp(m->acked[i], node, len) == 0)
			return true;
	}
	return false;
}

static void ring_move_acks_clear(struct ring_move *m)
{
	for (size_t i = 0; i < m->acked_count; i++)
		free(m->acked[i]);
	m->acked_count = 0;
}

static void ring_move_free(struct ring_move *m)
{
	etcd_request_cancel(&m->ack);
	etcd_request_cancel(&m->lease);
	etcd_request_cancel(&m->finish);
	if (m->delay != NULL)
		event_free(m->delay);
	ring_move_acks_clear(m);
	free(m->acked);
	free(m->rest);
	free(m->tag);
	free(m->id);
	free(m->host);
	free(m);
}

/* Out of the list; the held logins go on. */
static void ring_move_end(struct ring_move *m)
{
	struct ring *r = m->ring;
	for (struct ring_move **p = &r->moves; *p != NULL; p = &(*p)->next) {
		if (*p == m) {
			*p = m->next;
			break;
		}
	}
	director_user_move_end(r->director, m->tag, m->hash);
	ring_request_finished(r, m->id);
	ring_move_free(m);
}

static void ring_retry_soon(struct ring *r)
{
	struct timeval tv = { 1, 0 };
	evtimer_add(r->retry_timer, &tv);
}

/* ---- propose ---------------------------------------------------------- */

void ring_move_request(struct ring *r, const struct director_change *c,
		       director_change_done_cb *done, void *done_ctx)
{
	if (!ring_is_serving(r) || !r->hosts_known) {
		director_change_answer(r->director, done, done_ctx, DIRECTOR_INVALID,
				       "this director is not in touch with its ring");
		return;
	}
	const struct director_host_spec *host = NULL;
	for (size_t i = 0; i < r->hosts.count && host == NULL; i++) {
		if (ipaddr_equal(&r->hosts.hosts[i].ip, &c->ip))
			host = &r->hosts.hosts[i];
	}
	if (host == NULL) {
		director_change_answer(r->director, done, done_ctx, DIRECTOR_NOTFOUND, NULL);
		return;
	}
	if (r->change.present || ring_move_find_user(r, host->tag, c->user_hash) != NULL) {
		director_change_answer(r->director, done, done_ctx, DIRECTOR_TRYAGAIN, NULL);
		return;
	}
	/* already there (a pin or the hash, the same on every node): only
	 * the timestamp would change, as in Dovecot (§2.6) */
	struct director_lookup l;
	director_user_lookup(r->director, c->user_hash, host->tag, c->now, &l);
	if ((l.assigned && ipaddr_equal(&l.current, &c->ip)) ||
	    (!l.assigned && l.have_hashed && ipaddr_equal(&l.hashed, &c->ip))) {
		director_change_answer(r->director, done, done_ctx, DIRECTOR_OK, NULL);
		return;
	}
	char *id = ring_change_id(r);
	char ip[IPADDR_STRLEN];
	json_t *o = json_pack("{s:s, s:s}", "id", id, "host", ipaddr_to_str(&c->ip, ip));
	char *value = json_dumps(o, JSON_COMPACT | JSON_SORT_KEYS);
	json_decref(o);
	char *key = ring_user_key(r, "moves", c->user_hash, host->tag, NULL);
	char *change_key = ring_key(r, "hostchange");
	struct etcd_compare cmp[2] = {
		{ .key = key, .key_len = strlen(key), .target = ETCD_TARGET_CREATE,
		  .result = ETCD_CMP_EQUAL, .number = 0 },
		{ .key = change_key, .key_len = strlen(change_key),
		  .target = ETCD_TARGET_CREATE, .result = ETCD_CMP_EQUAL, .number = 0 },
	};
	ring_propose(r, id, cmp, 2, key, value, done, done_ctx);
	free(value);
	free(key);
	free(change_key);
}

/* ---- hold ------------------------------------------------------------- */

static void ring_move_acked(const struct etcd_result *res, void *ctx)
{
	struct ring_move *m = ctx;
	m->ack = NULL;
	if (res->outcome != ETCD_OK) {
		ring_report(m->ring, LOG_LEVEL_WARNING, "ring: acknowledging move %s: %s",
			    m->id, res->error != NULL ? res->error : "no answer");
		ring_retry_soon(m->ring);
	}
}

static void ring_move_ack(struct ring_move *m)
{
	struct ring *r = m->ring;
	if (m->ack != NULL || r->lease == 0 ||
	    ring_move_acked_by(m, r->name, strlen(r->name)))
		return;
	char *key = ring_user_key(r, "moves-ack", m->hash, m->tag, r->name);
	struct etcd_put_params put = {
		.key = key, .key_len = strlen(key), .value = m->id,
		.value_len = strlen(m->id), .lease = r->lease,
	};
	m->ack = etcd_kv_put(r->etcd, &put, ring_move_acked, m);
	free(key);
}

void ring_move_ready(void *ctx, const char *tag, uint32_t hash)
{
	struct ring *r = ctx;
	struct ring_move *m = ring_move_find_user(r, tag, hash);
	if (m == NULL)
		return;
	m->ready = true;
	ring_move_ack(m);
}

void ring_moves_apply(struct ring *r, const char *rest, size_t len,
		      const struct etcd_kv *kv, bool deleted)
{
	struct ring_move *m = ring_move_find(r, rest, len);
	if (deleted) {
		if (m != NULL)
			ring_move_end(m);
		return;
	}
	json_error_t jerr;
	json_t *o = json_loadb((const char *)kv->value, kv->value_len, 0, &jerr);
	const char *id = json_string_value(json_object_get(o, "id"));
	const char *host = json_string_value(json_object_get(o, "host"));
	if (m != NULL && id != NULL && strcmp(m->id, id) != 0) {
		/* another move of the user under the same key: a full read
		 * after the one this node knew finished and a new one began
		 * (doc/ring.md §11, M1). Holding on to the old one would ack
		 * with its id, and nobody would ever finish the new one. */
		ring_move_end(m);
		m = NULL;
	}
	if (m != NULL) {
		m->seen = true;
		m->revision = kv->mod_revision;
		json_decref(o);
		return;
	}
	uint32_t hash;
	struct sbuf tag = SBUF_INIT;
	struct ipaddr ip;
	if (ring_user_key_parse(rest, len, &hash, &tag, NULL, NULL) < 0 || id == NULL ||
	    host == NULL || ipaddr_parse(host, &ip) < 0) {
		ring_report(r, LOG_LEVEL_ERROR, "ring: %smoves/%.*s is not a move: ignored",
			    r->prefix, (int)len, rest);
		json_decref(o);
		sbuf_free(&tag);
		return;
	}
	m = xcalloc(1, sizeof(*m));
	m->ring = r;
	m->rest = xstrndup(rest, len);
	m->tag = xstrdup(sbuf_cstr(&tag));
	m->hash = hash;
	m->id = xstrdup(id);
	m->host = xstrdup(host);
	m->revision = kv->mod_revision;
	m->seen = true;
	m->next = r->moves;
	r->moves = m;
	json_decref(o);
	sbuf_free(&tag);
	/* ring_move_ready may come at once: the move is listed by now */
	if (director_user_move_hold(r->director, m->tag, m->hash, &ip, time(NULL)) !=
	    DIRECTOR_OK) {
		ring_report(r, LOG_LEVEL_WARNING, "ring: move %s names host %s, which this "
			    "node does not know: nothing to hold here", m->id, m->host);
		ring_move_ready(r, m->tag, m->hash);
	}
}

void ring_moves_ack_apply(struct ring *r, const char *rest, size_t len,
			  const struct etcd_kv *kv, bool deleted)
{
	const char *slash = len > 0 ? memrchr(rest, '/', len) : NULL;
	if (slash == NULL)
		return;
	struct ring_move *m = ring_move_find(r, rest, (size_t)(slash - rest));
	const char *node = slash + 1;
	size_t node_len = len - (size_t)(node - rest);
	if (m == NULL)
		return;
	bool had = ring_move_acked_by(m, node, node_len);
	bool ours = !deleted && kv->value_len == strlen(m->id) &&
		memcmp(kv->value, m->id, kv->value_len) == 0;
	if (ours && !had) {
		m->acked = xgrow(m->acked, &m->acked_cap, m->acked_count + 1,
				 sizeof(*m->acked));
		m->acked[m->acked_count++] = xstrndup(node, node_len);
	} else if (deleted && had) {
		for (size_t i = 0; i < m->acked_count; i++) {
			if (strlen(m->acked[i]) == node_len &&
			    memcmp(m->acked[i], node, node_len) == 0) {
				free(m->acked[i]);
				m->acked[i] = m->acked[--m->acked_count];
				break;
			}
		}
	}
}

/* ---- finish ------------------------------------------------------------- */

static void ring_move_finished(const struct etcd_result *res, void *ctx)
{
	struct ring_move *m = ctx;
	struct ring *r = m->ring;
	m->finish = NULL;
	if (res->outcome == ETCD_OK && res->succeeded)
		return;		/* the watch ends it */
	if (res->outcome == ETCD_OK) {
		/* another node finished it first: this lease is not needed */
		(void)etcd_lease_revoke(r->etcd, m->lease_id, ring_ignore_result, NULL);
		return;
	}
	ring_report(r, LOG_LEVEL_WARNING, "ring: finishing move %s: %s", m->id,
		    res->error != NULL ? res->error : "no answer");
	ring_retry_soon(r);
}

static void ring_move_lease_granted(const struct etcd_result *res, void *ctx)
{
	struct ring_move *m = ctx;
	struct ring *r = m->ring;
	m->lease = NULL;
	if (res->outcome != ETCD_OK || res->lease.id == 0) {
		ring_report(r, LOG_LEVEL_WARNING, "ring: a lease for move %s: %s", m->id,
			    res->error != NULL ? res->error : "no answer");
		ring_retry_soon(r);
		return;
	}
	m->lease_id = res->lease.id;
	char *key = ring_user_key(r, "moves", m->hash, m->tag, NULL);
	char *pins = ring_user_key(r, "pins", m->hash, m->tag, "");
	char *pin = ring_user_key(r, "pins", m->hash, m->tag, RING_MOVE_PIN);
	char *acks = ring_user_key(r, "moves-ack", m->hash, m->tag, "");
	/* the user's pins go, but the new pin's key may not lie in a range
	 * the same transaction deletes: two ranges around it */
	size_t pins_len = strlen(pins), pin_len = strlen(pin);
	char *pin_next = xstrndup(pin, pin_len + 1);	/* pin + "\0" */
	char *pins_end = xstrdup(pins);
	pins_end[pins_len - 1]++;			/* '/' + 1 */
	char *value = ring_pin_value(m->host);
	struct etcd_compare cmp = {
		.key = key, .key_len = strlen(key), .target = ETCD_TARGET_MOD,
		.result = ETCD_CMP_EQUAL, .number = m->revision,
	};
	struct etcd_op ops[5] = {
		{ .type = ETCD_OP_DELETE, .u.del = { .key = pins, .key_len = pins_len,
		  .range_end = pin, .range_end_len = pin_len } },
		{ .type = ETCD_OP_DELETE, .u.del = { .key = pin_next, .key_len = pin_len + 1,
		  .range_end = pins_end, .range_end_len = pins_len } },
		{ .type = ETCD_OP_PUT, .u.put = { .key = pin, .key_len = pin_len,
		  .value = value, .value_len = strlen(value), .lease = res->lease.id } },
		{ .type = ETCD_OP_DELETE, .u.del = { .key = acks, .key_len = strlen(acks),
		  .prefix = true } },
		{ .type = ETCD_OP_DELETE, .u.del = { .key = key, .key_len = strlen(key) } },
	};
	struct etcd_txn_params txn = {
		.compares = &cmp, .compare_count = 1, .success = ops, .success_count = 5,
	};
	m->finish = etcd_kv_txn(r->etcd, &txn, ring_move_finished, m);
	free(key);
	free(pins);
	free(pin);
	free(pin_next);
	free(pins_end);
	free(acks);
	free(value);
}

static void ring_move_finish(struct ring_move *m)
{
	struct ring *r = m->ring;
	if (m->lease != NULL || m->finish != NULL)
		return;
	m->lease = etcd_lease_grant(r->etcd, r->user_expire_s, 0, ring_move_lease_granted, m);
}

static void ring_move_delay_over(evutil_socket_t fd, short what, void *arg)
{
	struct ring_move *m = arg;
	(void)fd;
	(void)what;
	m->delay_over = true;
	ring_move_finish(m);
}

void ring_moves_settle(struct ring *r)
{
	for (struct ring_move *m = r->moves; m != NULL; m = m->next) {
		if (m->ready)
			ring_move_ack(m);
		bool all = true;
		for (size_t i = 0; i < r->members_count && all; i++) {
			const char *name = r->members[i].name;
			all = ring_move_acked_by(m, name, strlen(name));
		}
		if (!all)
			continue;
		if (m->delay_over) {
			ring_move_finish(m);
		} else if (m->delay == NULL) {
			/* user_kick_delay: the backends' processes may exit */
			m->delay = evtimer_new(r->base, ring_move_delay_over, m);
			struct timeval tv = { (time_t)(r->kick_delay_ms / 1000),
					      (suseconds_t)(r->kick_delay_ms % 1000) * 1000 };
			evtimer_add(m->delay, &tv);
		}
	}
}

/* ---- a full read ----------------------------------------------------------- */

void ring_moves_load_begin(struct ring *r)
{
	for (struct ring_move *m = r->moves; m != NULL; m = m->next) {
		m->seen = false;
		ring_move_acks_clear(m);
	}
}

void ring_moves_load_end(struct ring *r)
{
	for (struct ring_move *m = r->moves, *next; m != NULL; m = next) {
		next = m->next;
		if (!m->seen)
			ring_move_end(m);
	}
}

void ring_moves_free(struct ring *r)
{
	while (r->moves != NULL) {
		struct ring_move *m = r->moves;
		r->moves = m->next;
		ring_move_free(m);
	}
}
