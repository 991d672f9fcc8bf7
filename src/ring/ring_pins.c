/* Pins in etcd (doc/ring.md §3): P/pins/<hash>/<tag>/<node> = {"host":ip}
 * on the node's lease. Other nodes' pins go to the director as remote
 * pins; this node writes its own for its users who would move with a
 * host change (in the change's acknowledgement), for a login of a user
 * only others pin (only while one of their pins still exists: a compare
 * in the transaction), and lets them go when its record of the user is
 * forgotten. The tag is escaped ('%' and '/' as %25, %2F). */
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

static char *ring_pin_value(const struct director_host *host)
{
	json_t *o = json_pack("{s:s}", "host", host->ip_str);
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

/* A pin key this node applied to its director: the director counts
 * pins, so each key is applied once and taken back once. */
struct ring_pin_seen {
	struct hmap_node node;
	bool own;			/* this node's, on its current lease */
	bool seen;			/* read again by the current full read */
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
			director_user_own_pin(r->director, sbuf_cstr(&tag), hash, false, now);
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

void ring_pins_apply(struct ring *r, const char *rest, size_t len,
		     const struct etcd_kv *kv, bool deleted)
{
	struct ring_pin_seen *p = ring_pin_seen_find(r, rest, len);
	if (deleted) {
		if (p != NULL)
			ring_pin_seen_drop(r, p);
		return;
	}
	if (p != NULL) {
		/* a key written again is still the one pin */
		p->seen = true;
		return;
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
	/* a key of this node's name on another lease is a former run's: it
	 * pins like another node's until it expires */
	bool own = node_len == strlen(r->name) && memcmp(node, r->name, node_len) == 0 &&
		kv->lease == r->lease;
	bool applied = true;
	if (own) {
		director_user_own_pin(r->director, sbuf_cstr(&tag), hash, true, now);
	} else {
		json_error_t jerr;
		json_t *o = json_loadb((const char *)kv->value, kv->value_len, 0, &jerr);
		struct ipaddr ip;
		const char *host = json_string_value(json_object_get(o, "host"));
		applied = host != NULL && ipaddr_parse(host, &ip) == 0 &&
			director_user_remote_pin(r->director, sbuf_cstr(&tag), hash, &ip, true,
						 now) == DIRECTOR_OK;
		if (!applied)
			ring_report(r, LOG_LEVEL_WARNING, "ring: the pin %.*s names host %s, "
				    "which this node does not know: ignored", (int)len, rest,
				    host != NULL ? host : "(none)");
		json_decref(o);
	}
	sbuf_free(&tag);
	if (!applied)
		return;
	p = xmalloc(sizeof(*p) + len + 1);
	p->own = own;
	p->seen = true;
	p->len = len;
	memcpy(p->key, rest, len);
	p->key[len] = '\0';
	hmap_insert(&r->pins, &p->node, hash_bytes(rest, len));
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
		if (!p->seen)
			ring_pin_seen_drop(r, p);
	}
}

/* ---- pins for a host change --------------------------------------------- */

static void ring_pins_collect_one(const struct director_moving_user *u, void *ctx)
{
	struct ring_ops *ops = ctx;
	struct ring *r = ops->ring;
	/* a backend the ring found failing keeps only users with sessions
	 * (their logins fail fast); idle ones are routed afresh at once,
	 * as a single node's checks do (doc/ring.md §7) */
	if (u->current->unhealthy && u->sessions == 0)
		return;
	/* already where the new list sends it: nothing to keep */
	if (u->next == u->current)
		return;
	char *key = ring_user_key(r, "pins", u->hash, u->tag, r->name);
	size_t plen = strlen(r->prefix);
	const struct ring_pin_seen *held = ring_pin_seen_find(r, key + plen, strlen(key) - plen);
	if (held != NULL && held->own) {
		/* etcd has this node's pin of it (the watch showed it): a pin
		 * always names the user's host, so it is the same; writing it
		 * again on every host change cost a put per pinned user */
		free(key);
		return;
	}
	ring_ops_put(ops, key, ring_pin_value(u->current), r->lease);
	director_user_own_pin(r->director, u->tag, u->hash, true, time(NULL));
}

void ring_pins_for_change(struct ring *r, struct ring_ops *ops)
{
	ops->ring = r;
	director_rings_foreach_moving(r->director, ring_pins_collect_one, ops);
}

/* ---- this node's own pin for a login ----------------------------------- */

struct ring_pin_take {
	struct ring_pin_take *next;	/* in ring->takes */
	struct etcd_request *req;
	struct ring *ring;
	char *tag;
	uint32_t hash;
	unsigned int tries;
};

static void ring_pin_take_read(struct ring_pin_take *t);

static void ring_pin_take_free(struct ring_pin_take *t)
{
	for (struct ring_pin_take **p = &t->ring->takes; *p != NULL; p = &(*p)->next) {
		if (*p == t) {
			*p = t->next;
			break;
		}
	}
	free(t->tag);
	free(t);
}

static void ring_pin_take_end(struct ring_pin_take *t, bool held)
{
	director_user_own_pin(t->ring->director, t->tag, t->hash, held, time(NULL));
	ring_pin_take_free(t);
}

static void ring_pin_taken(const struct etcd_result *res, void *ctx)
{
	struct ring_pin_take *t = ctx;
	t->req = NULL;
	if (res->outcome == ETCD_OK && res->succeeded) {
		ring_pin_take_end(t, true);
		return;
	}
	/* the pin it was taken against went meanwhile: look again */
	if (res->outcome == ETCD_OK && ++t->tries < 3) {
		ring_pin_take_read(t);
		return;
	}
	ring_pin_take_end(t, false);
}

static void ring_pin_read(const struct etcd_result *res, void *ctx)
{
	struct ring_pin_take *t = ctx;
	struct ring *r = t->ring;
	const struct etcd_kv *other = NULL;
	t->req = NULL;
	size_t mine_len = strlen(r->name);
	for (size_t i = 0; res->outcome == ETCD_OK && i < res->op.kv_count; i++) {
		const struct etcd_kv *kv = &res->op.kvs[i];
		bool mine = kv->key_len >= mine_len && kv->lease == r->lease &&
			memcmp(kv->key + kv->key_len - mine_len, r->name, mine_len) == 0;
		if (!mine)
			other = kv;
	}
	if (other == NULL) {
		/* no pin left: the user follows the hash (the events say so) */
		ring_pin_take_end(t, false);
		return;
	}
	char *key = ring_user_key(r, "pins", t->hash, t->tag, r->name);
	struct etcd_compare cmp = {
		.key = other->key, .key_len = other->key_len, .target = ETCD_TARGET_MOD,
		.result = ETCD_CMP_EQUAL, .number = other->mod_revision,
	};
	struct etcd_op put = { .type = ETCD_OP_PUT, .u.put = {
		.key = key, .key_len = strlen(key), .value = other->value,
		.value_len = other->value_len, .lease = r->lease } };
	struct etcd_txn_params txn = {
		.compares = &cmp, .compare_count = 1, .success = &put, .success_count = 1,
	};
	t->req = etcd_kv_txn(r->etcd, &txn, ring_pin_taken, t);
	free(key);
}

static void ring_pin_take_read(struct ring_pin_take *t)
{
	char *prefix = ring_user_key(t->ring, "pins", t->hash, t->tag, "");
	struct etcd_range_params p = {
		.key = prefix, .key_len = strlen(prefix), .prefix = true,
	};
	t->req = etcd_kv_range(t->ring->etcd, &p, ring_pin_read, t);
	free(prefix);
}

static void ring_pin_needed(void *ctx, const char *tag, uint32_t hash,
			    const struct director_host *host, const char *username)
{
	struct ring *r = ctx;
	(void)host;
	(void)username;
	struct ring_pin_take *t = xcalloc(1, sizeof(*t));
	t->ring = r;
	t->tag = xstrdup(tag);
	t->hash = hash;
	t->next = r->takes;
	r->takes = t;
	ring_pin_take_read(t);
}

static void ring_pin_forgotten(void *ctx, const char *tag, uint32_t hash)
{
	struct ring *r = ctx;
	char *key = ring_user_key(r, "pins", hash, tag, r->name);
	struct etcd_delete_params del = { .key = key, .key_len = strlen(key) };
	(void)etcd_kv_delete(r->etcd, &del, ring_ignore_result, NULL);
	free(key);
}

void ring_pins_init(struct ring *r)
{
	hmap_init(&r->pins);
	static const struct director_pin_callbacks cb = {
		.needed = ring_pin_needed,
		.forgotten = ring_pin_forgotten,
		.move_ready = ring_move_ready,
	};
	director_set_pin_callbacks(r->director, &cb, r);
}

void ring_pins_free(struct ring *r)
{
	static const struct director_pin_callbacks none = { 0 };
	director_set_pin_callbacks(r->director, &none, NULL);
	while (r->takes != NULL) {
		etcd_request_cancel(&r->takes->req);
		ring_pin_take_free(r->takes);
	}
	struct hmap_node *n, *next;
	HMAP_FOR_EACH_SAFE(n, next, &r->pins) {
		hmap_remove(&r->pins, n);
		free(CONTAINER_OF(n, struct ring_pin_seen, node));
	}
	hmap_destroy(&r->pins);
}
