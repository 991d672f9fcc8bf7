/* Pins in etcd (doc/ring.md §3): P/pins/<hash>/<tag>/<node> = {"host":ip}
 * on the node's lease. Other nodes' pins go to the director as remote
 * pins; this node writes its own for its users who would move with a
 * host change (ring_prepare.c), for a login of a user only others pin
 * (only while one of their pins naming the login's host still exists: a
 * compare in the transaction), and lets them go when its record of the
 * user expires: the record stays until this node's view shows the pin
 * gone (doc/ring.md §3). The tag is escaped ('%' and '/' as %25, %2F). */
#include <event2/event.h>
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "common/sbuf.h"
#include "common/xmalloc.h"
#include "director/director.h"
#include "ring/etcd.h"
#include "ring/ring_private.h"

/* ---- keys ----------------------------------------------------------- */

static void ring_pin_tag_escape(struct sbuf *out, const char *tag)
{
	for (const char *p = tag; *p != '\0'; p++) {
		if (*p == '%' || *p == '/')
			sbuf_appendf(out, "%%%02X", (unsigned char)*p);
		else
			sbuf_appendc(out, *p);
	}
}

char *ring_user_key(const struct ring *r, const char *kind, uint32_t hash,
		    const char *tag, const char *node)
{
	struct sbuf b = SBUF_INIT;
	sbuf_appendf(&b, "%s%s/%u/", r->prefix, kind, hash);
	ring_pin_tag_escape(&b, tag);
	if (node != NULL)
		sbuf_appendf(&b, "/%s", node);
	char *key = xstrdup(sbuf_cstr(&b));
	sbuf_free(&b);
	return key;
}

char *ring_pin_value(const char *ip)
{
	json_t *o = json_pack("{s:s}", "host", ip);
	char *text = json_dumps(o, JSON_COMPACT);
	json_decref(o);
	return text;
}

int ring_user_key_parse(const char *rest, size_t len, uint32_t *hash_r,
			struct sbuf *tag, const char **node_r, size_t *node_len_r)
{
	const char *end = rest + len;
	char *e;
	unsigned long h = strtoul(rest, &e, 10);
	if (e == rest || e >= end || *e != '/' || h > UINT32_MAX)
		return -1;
	const char *p = e + 1;
	const char *slash = memchr(p, '/', (size_t)(end - p));
	if ((slash == NULL) != (node_r == NULL))
		return -1;
	if (slash == NULL)
		slash = end;
	for (; p < slash; p++) {
		unsigned int c;
		if (*p == '%' && slash - p >= 3 && sscanf(p + 1, "%2x", &c) == 1) {
			sbuf_appendc(tag, (char)c);
			p += 2;
		} else {
			sbuf_appendc(tag, *p);
		}
	}
	*hash_r = (uint32_t)h;
	if (node_r != NULL) {
		*node_r = slash + 1;
		*node_len_r = (size_t)(end - *node_r);
	}
	return 0;
}

/* ---- the pin map: what this node applied to its director --------------- */

/* A pin key as applied: the director counts pins, so each key is applied
 * once and taken back once; a key written again with another host, or
 * on another lease, is taken back and applied again (doc/ring.md §11,
 * P5). */
struct ring_pin_seen {
	struct hmap_node node;
	bool own;			/* this node's, on its current lease */
	bool seen;			/* read again by the current full read */
	struct ipaddr host;
	int64_t mod_revision;		/* of the newest write applied */
	size_t len;
	char key[];			/* "<hash>/<tag>/<node>" */
};

static struct ring_pin_seen *ring_pin_seen_find(struct ring *r, const char *rest,
						size_t len)
{
	struct hmap_node *n;
	HMAP_FOR_EACH_WITH_HASH(n, hash_bytes(rest, len), &r->pins) {
		struct ring_pin_seen *p = CONTAINER_OF(n, struct ring_pin_seen, node);
		if (p->len == len && memcmp(p->key, rest, len) == 0)
			return p;
	}
	return NULL;
}

/* This node's own pin key of the user; *rest_r: where the part the map
 * is keyed by starts ("<hash>/<tag>/<node>", as ring_state_apply hands
 * pin keys over: after P/pins/). */
static char *ring_pin_own_key(const struct ring *r, const char *tag, uint32_t hash,
			      size_t *rest_r)
{
	*rest_r = strlen(r->prefix) + strlen("pins/");
	return ring_user_key(r, "pins", hash, tag, r->name);
}

/* This node's own pin key of the user, as the map has it (or NULL). */
static struct ring_pin_seen *ring_pin_own_find(struct ring *r, const char *tag,
					       uint32_t hash)
{
	size_t rest;
	char *key = ring_pin_own_key(r, tag, hash, &rest);
	struct ring_pin_seen *p = ring_pin_seen_find(r, key + rest, strlen(key) - rest);
	free(key);
	return p != NULL && p->own ? p : NULL;
}

/* Takes the pin back from the director and forgets the key. */
static void ring_pin_seen_drop(struct ring *r, struct ring_pin_seen *p)
{
	uint32_t hash;
	const char *node;
	size_t node_len;
	struct sbuf tag = SBUF_INIT;
	if (ring_user_key_parse(p->key, p->len, &hash, &tag, &node, &node_len) == 0) {
		time_t now = time(NULL);
		if (p->own) {
			director_user_own_pin(r->director, sbuf_cstr(&tag), hash, false, NULL,
					      now);
		} else {
			struct ipaddr none = { 0 };
			(void)director_user_remote_pin(r->director, sbuf_cstr(&tag), hash,
						       &none, false, now);
		}
	}
	sbuf_free(&tag);
	hmap_remove(&r->pins, &p->node);
	free(p);
}

/* Applies the pin key rest (a write at mod_revision) to the director and
 * the map, unless the map has it already as it is. */
static void ring_pin_set(struct ring *r, const char *rest, size_t len, bool own,
			 const struct ipaddr *host, int64_t mod_revision)
{
	struct ring_pin_seen *p = ring_pin_seen_find(r, rest, len);
	if (p != NULL) {
		p->seen = true;
		if (p->own == own && ipaddr_equal(&p->host, host)) {
			if (mod_revision > p->mod_revision)
				p->mod_revision = mod_revision;
			return;
		}
		ring_pin_seen_drop(r, p);
	}
	uint32_t hash;
	const char *node;
	size_t node_len;
	struct sbuf tag = SBUF_INIT;
	if (ring_user_key_parse(rest, len, &hash, &tag, &node, &node_len) < 0) {
		sbuf_free(&tag);
		return;
	}
	time_t now = time(NULL);
	bool applied = true;
	if (own)
		director_user_own_pin(r->director, sbuf_cstr(&tag), hash, true, host, now);
	else
		applied = director_user_remote_pin(r->director, sbuf_cstr(&tag), hash, host,
						   true, now) == DIRECTOR_OK;
	sbuf_free(&tag);
	if (!applied) {
		char ip[IPADDR_STRLEN];
		ring_report(r, LOG_LEVEL_WARNING, "ring: the pin %.*s names host %s, "
			    "which this node does not know: ignored", (int)len, rest,
			    ipaddr_to_str(host, ip));
		return;
	}
	p = xmalloc(sizeof(*p) + len + 1);
	p->own = own;
	p->seen = true;
	p->host = *host;
	p->mod_revision = mod_revision;
	p->len = len;
	memcpy(p->key, rest, len);
	p->key[len] = '\0';
	hmap_insert(&r->pins, &p->node, hash_bytes(rest, len));
}

void ring_pins_apply(struct ring *r, const char *rest, size_t len,
		     const struct etcd_kv *kv, bool deleted)
{
	struct ring_pin_seen *p = ring_pin_seen_find(r, rest, len);
	if (p != NULL && kv->mod_revision < p->mod_revision) {
		/* older than what a transaction's answer already told */
		p->seen = true;
		return;
	}
	if (deleted) {
		ring_pins_loader_deleted(r, rest, len, kv->mod_revision);
		if (p != NULL)
			ring_pin_seen_drop(r, p);
		return;
	}
	json_error_t jerr;
	json_t *o = json_loadb((const char *)kv->value, kv->value_len, 0, &jerr);
	const char *host = json_string_value(json_object_get(o, "host"));
	struct ipaddr ip;
	if (host == NULL || ipaddr_parse(host, &ip) < 0) {
		ring_report(r, LOG_LEVEL_WARNING, "ring: the pin %.*s names no host: ignored",
			    (int)len, rest);
		json_decref(o);
		return;
	}
	json_decref(o);
	/* a key of this node's name on another lease is a former run's: it
	 * pins like another node's until it expires */
	const char *slash = memrchr(rest, '/', len);
	size_t name_len = strlen(r->name);
	bool own = slash != NULL && (size_t)(rest + len - slash - 1) == name_len &&
		memcmp(slash + 1, r->name, name_len) == 0 && kv->lease == r->lease;
	ring_pin_set(r, rest, len, own, &ip, kv->mod_revision);
}

void ring_pins_note_own(struct ring *r, const char *tag, uint32_t hash,
			const struct ipaddr *host, int64_t revision)
{
	size_t rest;
	char *key = ring_pin_own_key(r, tag, hash, &rest);
	ring_pin_set(r, key + rest, strlen(key) - rest, true, host, revision);
	free(key);
}

bool ring_pins_own(struct ring *r, const char *tag, uint32_t hash)
{
	return ring_pin_own_find(r, tag, hash) != NULL;
}

void ring_pins_load_begin(struct ring *r)
{
	struct hmap_node *n;
	HMAP_FOR_EACH(n, &r->pins)
		CONTAINER_OF(n, struct ring_pin_seen, node)->seen = false;
}

void ring_pins_load_end(struct ring *r)
{
	struct hmap_node *n, *next;
	HMAP_FOR_EACH_SAFE(n, next, &r->pins) {
		struct ring_pin_seen *p = CONTAINER_OF(n, struct ring_pin_seen, node);
		/* (a write a transaction's answer told of after the read's
		 * revision: the watch, from there, brings it) */
		if (!p->seen && p->mod_revision <= r->revision)
			ring_pin_seen_drop(r, p);
	}
}

/* ---- taking a pin for a login, letting one go ------------------------- */

enum ring_pin_op_kind {
	RING_PIN_TAKE,		/* a login of a user only others pin */
	RING_PIN_RELEASE,	/* the record of a user it pins expired */
};

/* One user's pin request; once etcd answered, it may wait for this
 * node's view of etcd to reach the answer's revision. */
struct ring_pin_op {
	struct list_node node;		/* in ring->pin_ops */
	struct ring *ring;
	enum ring_pin_op_kind kind;
	char *tag;
	uint32_t hash;
	struct ipaddr host;		/* TAKE: where the login goes */
	unsigned int tries;
	struct etcd_request *req;
	struct event *later;		/* no answer: again (or done) a bit later */
	int64_t wait_revision;		/* answered: done once the view is there */
};

static void ring_pin_op_free(struct ring_pin_op *op)
{
	list_unlink(&op->ring->pin_ops, &op->node);
	etcd_request_cancel(&op->req);
	event_free(op->later);
	free(op->tag);
	free(op);
}

static void ring_pin_op_later(evutil_socket_t fd, short what, void *arg);

static struct ring_pin_op *ring_pin_op_new(struct ring *r, enum ring_pin_op_kind kind,
					   const char *tag, uint32_t hash)
{
	struct ring_pin_op *op = xcalloc(1, sizeof(*op));
	op->later = evtimer_new(r->base, ring_pin_op_later, op);
	op->ring = r;
	op->kind = kind;
	op->tag = xstrdup(tag);
	op->hash = hash;
	list_append(&r->pin_ops, &op->node);
	return op;
}

/* The view has reached what etcd answered: the logins route again with
 * it, or the release is over. */
static void ring_pin_op_done(struct ring_pin_op *op)
{
	struct ring *r = op->ring;
	if (op->kind == RING_PIN_TAKE) {
		director_user_route_again(r->director, op->tag, op->hash);
	} else {
		/* a newer pin of its own there (a write that ran late): it
		 * holds the user again */
		bool held = ring_pins_own(r, op->tag, op->hash);
		ring_report(r, LOG_LEVEL_DEBUG, "ring: pin of %u released at revision %lld%s",
			    op->hash, (long long)r->revision,
			    held ? ": a newer one holds the user" : "");
		director_user_released(r->director, op->tag, op->hash, held, time(NULL));
	}
	ring_pin_op_free(op);
}

static void ring_pin_op_wait(struct ring_pin_op *op, int64_t revision)
{
	op->wait_revision = revision > 0 ? revision : 1;
	if (op->ring->revision >= op->wait_revision)
		ring_pin_op_done(op);
}

/* Done after a while, never at once: no answer (etcd refusing at once
 * must not make logins spin), or called inside the director's walks. */
static void ring_pin_op_wait_later(struct ring_pin_op *op, int64_t revision,
				   unsigned int secs)
{
	op->wait_revision = revision > 0 ? revision : 1;
	struct timeval tv = { secs, 0 };
	evtimer_add(op->later, &tv);
}

static void ring_pin_release_send(struct ring_pin_op *op);

static void ring_pin_op_later(evutil_socket_t fd, short what, void *arg)
{
	struct ring_pin_op *op = arg;
	(void)fd;
	(void)what;
	if (op->wait_revision != 0)
		ring_pin_op_wait(op, op->wait_revision);
	else
		ring_pin_release_send(op);
}

void ring_pins_settle(struct ring *r)
{
	ring_pins_loader_settle(r);
	struct list_node *n = r->pin_ops.head;
	while (n != NULL) {
		struct ring_pin_op *op = CONTAINER_OF(n, struct ring_pin_op, node);
		n = n->next;
		if (op->wait_revision != 0 && r->revision >= op->wait_revision)
			ring_pin_op_done(op);
	}
}

static void ring_pin_take_read(struct ring_pin_op *op);

static void ring_pin_taken(const struct etcd_result *res, void *ctx)
{
	struct ring_pin_op *op = ctx;
	op->req = NULL;
	if (res->outcome == ETCD_OK && res->succeeded) {
		/* held: the map and the director have it, the logins go on */
		ring_pins_note_own(op->ring, op->tag, op->hash, &op->host,
				   res->header.revision);
		ring_pin_op_free(op);
		return;
	}
	/* the pin it was taken against went meanwhile: look again */
	if (res->outcome == ETCD_OK && ++op->tries < 3) {
		ring_pin_take_read(op);
		return;
	}
	/* still no luck: the logins route again; no answer (the put may
	 * still land: its watch event makes the record, P4): a second later */
	if (res->outcome == ETCD_OK)
		ring_pin_op_wait(op, res->header.revision);
	else
		ring_pin_op_wait_later(op, op->ring->revision, 1);
}

/* Another node's pin that names the host the login goes to (§3: the
 * login holds the pin it routed by; doc/ring.md §11, P2), or NULL. */
static const struct etcd_kv *ring_pin_other(struct ring_pin_op *op,
					    const struct etcd_result *res)
{
	struct ring *r = op->ring;
	size_t mine_len = strlen(r->name);
	for (size_t i = 0; i < res->op.kv_count; i++) {
		const struct etcd_kv *kv = &res->op.kvs[i];
		bool mine = kv->key_len >= mine_len && kv->lease == r->lease &&
			memcmp(kv->key + kv->key_len - mine_len, r->name, mine_len) == 0;
		if (mine)
			continue;
		json_error_t jerr;
		json_t *o = json_loadb((const char *)kv->value, kv->value_len, 0, &jerr);
		const char *host = json_string_value(json_object_get(o, "host"));
		struct ipaddr ip;
		bool same = host != NULL && ipaddr_parse(host, &ip) == 0 &&
			ipaddr_equal(&ip, &op->host);
		json_decref(o);
		if (same)
			return kv;
	}
	return NULL;
}

static void ring_pin_read(const struct etcd_result *res, void *ctx)
{
	struct ring_pin_op *op = ctx;
	struct ring *r = op->ring;
	op->req = NULL;
	const struct etcd_kv *other = res->outcome == ETCD_OK ? ring_pin_other(op, res) : NULL;
	if (other == NULL) {
		/* no such pin (any more): once this node's view has caught
		 * up, the logins route again by what it says */
		if (res->outcome == ETCD_OK)
			ring_pin_op_wait(op, res->header.revision);
		else
			ring_pin_op_wait_later(op, r->revision, 1);
		return;
	}
	char *key = ring_user_key(r, "pins", op->hash, op->tag, r->name);
	char ip[IPADDR_STRLEN];
	char *value = ring_pin_value(ipaddr_to_str(&op->host, ip));
	struct etcd_compare cmp = {
		.key = other->key, .key_len = other->key_len, .target = ETCD_TARGET_MOD,
		.result = ETCD_CMP_EQUAL, .number = other->mod_revision,
	};
	struct etcd_op put = { .type = ETCD_OP_PUT, .u.put = {
		.key = key, .key_len = strlen(key), .value = value,
		.value_len = strlen(value), .lease = r->lease } };
	struct etcd_txn_params txn = {
		.compares = &cmp, .compare_count = 1, .success = &put, .success_count = 1,
	};
	op->req = etcd_kv_txn(r->etcd, &txn, ring_pin_taken, op);
	free(value);
	free(key);
}

static void ring_pin_take_read(struct ring_pin_op *op)
{
	char *prefix = ring_user_key(op->ring, "pins", op->hash, op->tag, "");
	struct etcd_range_params p = {
		.key = prefix, .key_len = strlen(prefix), .prefix = true,
	};
	op->req = etcd_kv_range(op->ring->etcd, &p, ring_pin_read, op);
	free(prefix);
}

static void ring_pin_needed(void *ctx, const char *tag, uint32_t hash,
			    const struct director_host *host, const char *username)
{
	struct ring *r = ctx;
	(void)username;
	struct ring_pin_op *op = ring_pin_op_new(r, RING_PIN_TAKE, tag, hash);
	op->host = host->ip;
	ring_pin_take_read(op);
}

static void ring_pin_deleted(const struct etcd_result *res, void *ctx)
{
	struct ring_pin_op *op = ctx;
	op->req = NULL;
	if (res->outcome != ETCD_OK) {
		/* unknown: it may have run or not; only an answer says */
		struct timeval tv = { 1, 0 };
		evtimer_add(op->later, &tv);
		return;
	}
	/* deleted, or a newer write of it is there (compare failed): the
	 * view shows which once it reaches this revision */
	ring_pin_op_wait(op, res->header.revision);
}

/* Deletes this node's own pin of the user if it is still the write the
 * view has (p): a newer one (a request that ran late) is not deleted
 * blindly but seen, and holds the user. */
static struct etcd_request *ring_pin_delete(struct ring *r, const char *tag, uint32_t hash,
					    const struct ring_pin_seen *p,
					    etcd_result_cb *cb, void *ctx)
{
	char *key = ring_user_key(r, "pins", hash, tag, r->name);
	struct etcd_compare cmp = {
		.key = key, .key_len = strlen(key), .target = ETCD_TARGET_MOD,
		.result = ETCD_CMP_EQUAL, .number = p->mod_revision,
	};
	struct etcd_op del = { .type = ETCD_OP_DELETE, .u.del = {
		.key = key, .key_len = strlen(key) } };
	struct etcd_txn_params txn = {
		.compares = &cmp, .compare_count = 1, .success = &del, .success_count = 1,
	};
	struct etcd_request *req = etcd_kv_txn(r->etcd, &txn, cb, ctx);
	free(key);
	return req;
}

static void ring_pin_release_send(struct ring_pin_op *op)
{
	struct ring *r = op->ring;
	struct ring_pin_seen *p = ring_pin_own_find(r, op->tag, op->hash);
	ring_report(r, LOG_LEVEL_DEBUG, "ring: releasing the pin of %u (revision %lld)",
		    op->hash, p != NULL ? (long long)p->mod_revision : 0LL);
	if (p == NULL)
		ring_pin_op_wait_later(op, r->revision, 0);	/* gone already */
	else
		op->req = ring_pin_delete(r, op->tag, op->hash, p, ring_pin_deleted, op);
}

static void ring_pin_release(void *ctx, const char *tag, uint32_t hash)
{
	struct ring *r = ctx;
	ring_pin_release_send(ring_pin_op_new(r, RING_PIN_RELEASE, tag, hash));
}

/* A record gone at once (its host removed, flush -F): its pin goes, if
 * it is still the one this node knows. */
static void ring_pin_forgotten(void *ctx, const char *tag, uint32_t hash)
{
	struct ring *r = ctx;
	struct ring_pin_seen *p = ring_pin_own_find(r, tag, hash);
	if (p != NULL)
		(void)ring_pin_delete(r, tag, hash, p, ring_ignore_result, NULL);
}

/* ---- set up, forget, free ------------------------------------------------ */

void ring_pins_init(struct ring *r)
{
	hmap_init(&r->pins);
	list_init(&r->pin_ops);
	static const struct director_pin_callbacks cb = {
		.needed = ring_pin_needed,
		.forgotten = ring_pin_forgotten,
		.release = ring_pin_release,
		.known = ring_pins_known,
		.move_ready = ring_move_ready,
	};
	director_set_pin_callbacks(r->director, &cb, r);
}

static void ring_pins_clear(struct ring *r)
{
	while (r->pin_ops.head != NULL)
		ring_pin_op_free(CONTAINER_OF(r->pin_ops.head, struct ring_pin_op, node));
	struct hmap_node *n, *next;
	HMAP_FOR_EACH_SAFE(n, next, &r->pins) {
		hmap_remove(&r->pins, n);
		free(CONTAINER_OF(n, struct ring_pin_seen, node));
	}
}

void ring_pins_forget(struct ring *r)
{
	ring_pins_clear(r);
	director_forget_ring_users(r->director);
}

void ring_pins_free(struct ring *r)
{
	static const struct director_pin_callbacks none = { 0 };
	director_set_pin_callbacks(r->director, &none, NULL);
	ring_pins_loader_free(r);
	ring_pins_clear(r);
	hmap_destroy(&r->pins);
}
