/* Reading the ring's pins while serving (doc/ring.md §9): a node that
 * joins (or forgot its pins) reads everything but the pins first and
 * serves; the pins follow in 1,000 ranges of keys, one request at a
 * time on the full read's own etcd client. A ring of a million pins
 * takes etcd tens of seconds to send; meanwhile a login of a user whose
 * range is not read yet reads that user's pins alone first.
 *
 * The view stays right for every user it routes: each range, and each
 * user's own read, is answered at one revision; a user counts as known
 * once this node's watch has passed that revision (the events since are
 * applied on top: puts by their revision, deletes noted as tombstones so
 * that a range read before a delete arrived cannot bring the pin back).
 *
 * Ranges: the key after P/pins/ starts with the user's hash in decimal;
 * range b (0-999) holds the keys from "pins/<b as 3 digits>" up to the
 * next one ("pins/" itself for 0, the prefix's end for 999), so every
 * key lies in exactly one (a short hash such as "7/" sorts between
 * "699" and "700": '/' comes before '0'). */
#include <event2/event.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/clock.h"
#include "common/xmalloc.h"
#include "director/director.h"
#include "ring/etcd.h"
#include "ring/ring_private.h"

#define RING_PINS_RANGES 1000

/* A user whose pins were read alone, or a key deleted while loading. */
struct ring_pins_note {
	struct hmap_node node;
	int64_t revision;		/* the read's; the delete's */
	struct etcd_request *req;	/* the user's read in flight */
	struct ring *ring;
	struct event *retry;
	char *tag;
	uint32_t hash;
	size_t len;
	char key[];			/* the user's "<hash>/<tag>/"; a deleted
					 * pin's "<hash>/<tag>/<node>" */
};

struct ring_pins_loader {
	unsigned int next;		/* the next range to read */
	struct etcd_request *req;
	struct event *retry;
	int64_t revision[RING_PINS_RANGES];	/* each range's read; 0: not yet */
	int64_t last;			/* the latest of them */
	struct hmap users;		/* users read alone */
	struct hmap deleted;		/* pin keys deleted meanwhile */
	uint64_t started_ms;
	size_t pins;
};

/* ---- notes ------------------------------------------------------------ */

static struct ring_pins_note *ring_pins_note_find(struct hmap *map, const char *key,
						  size_t len)
{
	struct hmap_node *n;
	HMAP_FOR_EACH_WITH_HASH(n, hash_bytes(key, len), map) {
		struct ring_pins_note *e = CONTAINER_OF(n, struct ring_pins_note, node);
		if (e->len == len && memcmp(e->key, key, len) == 0)
			return e;
	}
	return NULL;
}

static struct ring_pins_note *ring_pins_note_add(struct hmap *map, const char *key,
						 size_t len)
{
	struct ring_pins_note *e = xcalloc(1, sizeof(*e) + len + 1);
	e->len = len;
	memcpy(e->key, key, len);
	hmap_insert(map, &e->node, hash_bytes(key, len));
	return e;
}

static void ring_pins_notes_free(struct hmap *map)
{
	struct hmap_node *n, *next;
	HMAP_FOR_EACH_SAFE(n, next, map) {
		struct ring_pins_note *e = CONTAINER_OF(n, struct ring_pins_note, node);
		hmap_remove(map, n);
		etcd_request_cancel(&e->req);
		if (e->retry != NULL)
			event_free(e->retry);
		free(e->tag);
		free(e);
	}
	hmap_destroy(map);
}

/* ---- applying what a read brought ---------------------------------------- */

/* The range a user's keys lie in (see the top). */
static unsigned int ring_pins_range_of(uint32_t hash)
{
	char digits[16];
	int n = snprintf(digits, sizeof(digits), "%u", hash);
	if (n >= 3)
		return (unsigned int)(digits[0] - '0') * 100 +
			(unsigned int)(digits[1] - '0') * 10 + (unsigned int)(digits[2] - '0');
	/* "7/": just below "700"; "42/": just below "420" */
	unsigned int b = (unsigned int)(digits[0] - '0') * 100;
	if (n == 2)
		b += (unsigned int)(digits[1] - '0') * 10;
	return b - 1;
}

/* Returns how many it applied. */
static size_t ring_pins_loader_apply(struct ring *r, const struct etcd_kv *kvs,
				     size_t count)
{
	size_t applied = 0;
	struct ring_pins_loader *l = r->loader;
	size_t skip = strlen(r->prefix) + strlen("pins/");
	for (size_t i = 0; i < count; i++) {
		const struct etcd_kv *kv = &kvs[i];
		if (kv->key_len <= skip)
			continue;
		const char *rest = (const char *)kv->key + skip;
		size_t len = kv->key_len - skip;
		/* deleted since (the read ran before the watch said so) */
		const struct ring_pins_note *gone = ring_pins_note_find(&l->deleted, rest, len);
		if (gone != NULL && gone->revision > kv->mod_revision)
			continue;
		ring_pins_apply(r, rest, len, kv, false);
		applied++;
	}
	return applied;
}

void ring_pins_loader_deleted(struct ring *r, const char *rest, size_t len,
			      int64_t revision)
{
	struct ring_pins_loader *l = r->loader;
	if (l == NULL)
		return;
	struct ring_pins_note *e = ring_pins_note_find(&l->deleted, rest, len);
	if (e == NULL)
		e = ring_pins_note_add(&l->deleted, rest, len);
	if (revision > e->revision)
		e->revision = revision;
}

/* ---- the ranges ----------------------------------------------------------- */

static void ring_pins_range_read(struct ring *r);

static void ring_pins_later(evutil_socket_t fd, short what, void *arg)
{
	(void)fd;
	(void)what;
	ring_pins_range_read(arg);
}

static void ring_pins_range_done(const struct etcd_result *res, void *ctx)
{
	struct ring *r = ctx;
	struct ring_pins_loader *l = r->loader;
	l->req = NULL;
	if (res->outcome != ETCD_OK) {
		ring_report(r, LOG_LEVEL_WARNING, "ring: reading pins (range %u of %u): %s; "
			    "again in a second", l->next, RING_PINS_RANGES,
			    res->error != NULL ? res->error : "no answer");
		struct timeval tv = { 1, 0 };
		evtimer_add(l->retry, &tv);
		return;
	}
	l->pins += ring_pins_loader_apply(r, res->op.kvs, res->op.kv_count);
	l->revision[l->next] = res->header.revision;
	if (res->header.revision > l->last)
		l->last = res->header.revision;
	l->next++;
	if (l->next < RING_PINS_RANGES)
		ring_pins_range_read(r);
	else
		ring_pins_loader_settle(r);
}

static void ring_pins_range_read(struct ring *r)
{
	struct ring_pins_loader *l = r->loader;
	char *from = l->next == 0 ? ring_key(r, "pins/") : ring_key(r, "pins/%03u", l->next);
	char *to = l->next + 1 == RING_PINS_RANGES ? ring_key(r, "pins0") :
		ring_key(r, "pins/%03u", l->next + 1);
	struct etcd_range_params p = {
		.key = from, .key_len = strlen(from), .range_end = to, .range_end_len = strlen(to),
	};
	l->req = etcd_kv_range(r->etcd_load, &p, ring_pins_range_done, r);
	free(from);
	free(to);
}

/* ---- one user's pins, for a login ------------------------------------------ */

static void ring_pins_user_read(struct ring_pins_note *u);

static void ring_pins_user_later(evutil_socket_t fd, short what, void *arg)
{
	(void)fd;
	(void)what;
	ring_pins_user_read(arg);
}

static void ring_pins_user_done(const struct etcd_result *res, void *ctx)
{
	struct ring_pins_note *u = ctx;
	struct ring *r = u->ring;
	u->req = NULL;
	if (res->outcome != ETCD_OK) {
		struct timeval tv = { 1, 0 };
		evtimer_add(u->retry, &tv);
		return;
	}
	(void)ring_pins_loader_apply(r, res->op.kvs, res->op.kv_count);
	u->revision = res->header.revision;
	ring_pins_loader_settle(r);
}

static void ring_pins_user_read(struct ring_pins_note *u)
{
	char *key = ring_user_key(u->ring, "pins", u->hash, u->tag, "");
	struct etcd_range_params p = { .key = key, .key_len = strlen(key), .prefix = true };
	u->req = etcd_kv_range(u->ring->etcd, &p, ring_pins_user_done, u);
	free(key);
}

bool ring_pins_known(void *ctx, const char *tag, uint32_t hash)
{
	struct ring *r = ctx;
	struct ring_pins_loader *l = r->loader;
	if (!r->pins_partial)
		return true;
	if (l == NULL)
		return false;	/* read again whole: the read's end says */
	int64_t range = l->revision[ring_pins_range_of(hash)];
	if (range != 0 && r->revision >= range)
		return true;
	char *key = ring_user_key(r, "pins", hash, tag, "");
	size_t skip = strlen(r->prefix) + strlen("pins/"), len = strlen(key) - skip;
	struct ring_pins_note *u = ring_pins_note_find(&l->users, key + skip, len);
	if (u == NULL) {
		u = ring_pins_note_add(&l->users, key + skip, len);
		u->ring = r;
		u->tag = xstrdup(tag);
		u->hash = hash;
		u->retry = evtimer_new(r->base, ring_pins_user_later, u);
		ring_pins_user_read(u);
	}
	free(key);
	return u->revision != 0 && r->revision >= u->revision;
}

/* ---- the loader -------------------------------------------------------------- */

void ring_pins_loader_start(struct ring *r)
{
	ring_pins_loader_free(r);
	struct ring_pins_loader *l = xcalloc(1, sizeof(*l));
	hmap_init(&l->users);
	hmap_init(&l->deleted);
	l->retry = evtimer_new(r->base, ring_pins_later, r);
	l->started_ms = clock_monotonic_ms();
	r->loader = l;
	ring_pins_partial(r, true);
	ring_pins_range_read(r);
}

void ring_pins_partial(struct ring *r, bool partial)
{
	if (r->pins_partial == partial)
		return;
	r->pins_partial = partial;
	/* over: every login that waited routes again (director) */
	director_set_pins_loading(r->director, partial);
}

void ring_pins_loader_settle(struct ring *r)
{
	struct ring_pins_loader *l = r->loader;
	if (l == NULL)
		return;
	/* users read alone whose read the view has reached: their logins go */
	struct hmap_node *n;
	HMAP_FOR_EACH(n, &l->users) {
		struct ring_pins_note *u = CONTAINER_OF(n, struct ring_pins_note, node);
		if (u->revision != 0 && r->revision >= u->revision && u->tag != NULL) {
			director_user_route_again(r->director, u->tag, u->hash);
			free(u->tag);
			u->tag = NULL;		/* told; kept: it is known */
		}
	}
	if (l->next < RING_PINS_RANGES || r->revision < l->last)
		return;
	ring_report(r, LOG_LEVEL_INFO, "ring: %zu pins read in %.1f s while serving",
		    l->pins, (double)(clock_monotonic_ms() - l->started_ms) / 1000.0);
	ring_pins_loader_free(r);
	ring_pins_partial(r, false);
}

void ring_pins_loader_free(struct ring *r)
{
	struct ring_pins_loader *l = r->loader;
	if (l == NULL)
		return;
	r->loader = NULL;
	etcd_request_cancel(&l->req);
	event_free(l->retry);
	ring_pins_notes_free(&l->users);
	ring_pins_notes_free(&l->deleted);
	free(l);
}
