/* director kick on every node (reference §2.9, doc/ring.md §8):
 *
 *   the admin's node puts P/kicks/<id> = {"value":…[,"field":…]} on its
 *   lease (so it goes if that node dies); every node, seeing it once,
 *   closes the matching sessions and puts P/kicks-ack/<id>/<node> = how
 *   many, on its lease; the admin's node answers once every live node
 *   acknowledged (with the sum), then deletes the kick and its acks.
 *
 * Dovecot answers once the kick is started; loft answers once it is done
 * everywhere, or "Ring sync timed out" after 30 s. */
#include <event2/event.h>
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/xmalloc.h"
#include "director/director.h"
#include "ring/etcd.h"
#include "ring/ring_private.h"

#define RING_KICK_TIMEOUT_S 30

/* A kick this node applied (so a key read again is not applied twice),
 * or, for the admin's node, one it waits for. */
struct ring_kick {
	struct ring_kick *next;		/* in ring->kicks */
	struct ring *ring;
	char *id;
	bool applied;			/* its sessions here were closed */
	bool seen;			/* read again by the current full read */
	/* the admin's node only */
	director_change_done_cb *done;
	void *done_ctx;
	struct event *timer;
	char **acked;
	size_t *acked_kicked;		/* how many each acked node closed */
	size_t acked_count, acked_cap, acked_kicked_cap;
	size_t kicked;
};

static struct ring_kick *ring_kick_find(struct ring *r, const char *id, size_t len)
{
	for (struct ring_kick *k = r->kicks; k != NULL; k = k->next) {
		if (strlen(k->id) == len && memcmp(k->id, id, len) == 0)
			return k;
	}
	return NULL;
}

static struct ring_kick *ring_kick_new(struct ring *r, const char *id, size_t len)
{
	struct ring_kick *k = xcalloc(1, sizeof(*k));
	k->ring = r;
	k->id = xstrndup(id, len);
	k->next = r->kicks;
	r->kicks = k;
	return k;
}

static void ring_kick_free(struct ring_kick *k)
{
	for (struct ring_kick **p = &k->ring->kicks; *p != NULL; p = &(*p)->next) {
		if (*p == k) {
			*p = k->next;
			break;
		}
	}
	if (k->timer != NULL)
		event_free(k->timer);
	for (size_t i = 0; i < k->acked_count; i++)
		free(k->acked[i]);
	free(k->acked);
	free(k->acked_kicked);
	free(k->id);
	free(k);
}

/* The admin's answer; the kick's keys go. */
static void ring_kick_answer(struct ring_kick *k, enum director_result result,
			     const char *error)
{
	struct ring *r = k->ring;
	if (k->done == NULL)
		return;
	struct director_change_result res = {
		.result = result, .error = error, .kicked = k->kicked,
		.kick_nodes = k->acked_count,
		.kick_node_names = (const char *const *)k->acked,
		.kick_node_counts = k->acked_kicked,
	};
	/* from an etcd answer or a timer: no walk of the director's runs */
	k->done(k->done_ctx, &res);
	k->done = NULL;
	if (k->timer != NULL)
		evtimer_del(k->timer);
	char *key = ring_key(r, "kicks/%s", k->id), *acks = ring_key(r, "kicks-ack/%s/", k->id);
	struct etcd_delete_params del = { .key = key, .key_len = strlen(key) };
	struct etcd_delete_params del_acks = {
		.key = acks, .key_len = strlen(acks), .prefix = true,
	};
	(void)etcd_kv_delete(r->etcd, &del, ring_ignore_result, NULL);
	(void)etcd_kv_delete(r->etcd, &del_acks, ring_ignore_result, NULL);
	free(key);
	free(acks);
}

static void ring_kick_timeout(evutil_socket_t fd, short what, void *arg)
{
	(void)fd;
	(void)what;
	ring_kick_answer(arg, DIRECTOR_INVALID, "Ring sync timed out");
}

/* ---- the admin's node ---------------------------------------------------- */

struct ring_kick_put {
	struct ring *ring;
	char *id;
};

static void ring_kick_put(const struct etcd_result *res, void *ctx)
{
	struct ring_kick_put *p = ctx;
	struct ring_kick *k = ring_kick_find(p->ring, p->id, strlen(p->id));
	free(p->id);
	free(p);
	if (k == NULL || res->outcome == ETCD_OK)
		return;		/* the acks answer */
	ring_report(k->ring, LOG_LEVEL_WARNING, "ring: kick %s: etcd: %s", k->id,
		    res->error != NULL ? res->error : "no answer");
	ring_kick_answer(k, DIRECTOR_INVALID, "Ring sync timed out");
}

void ring_kick_request(struct ring *r, const struct director_change *c,
		       director_change_done_cb *done, void *done_ctx)
{
	if (!ring_is_serving(r)) {
		director_change_answer(r->director, done, done_ctx, DIRECTOR_INVALID,
				       "this director is not in touch with its ring");
		return;
	}
	char *id = ring_change_id(r);
	struct ring_kick *k = ring_kick_new(r, id, strlen(id));
	k->done = done;
	k->done_ctx = done_ctx;
	/* applied here too, when the watch shows it */
	k->timer = evtimer_new(r->base, ring_kick_timeout, k);
	struct timeval tv = { RING_KICK_TIMEOUT_S, 0 };
	evtimer_add(k->timer, &tv);
	json_t *o = json_pack("{s:s}", "value", c->kick_value);
	if (c->kick_field != NULL)
		json_object_set_new(o, "field", json_string(c->kick_field));
	char *value = json_dumps(o, JSON_COMPACT | JSON_SORT_KEYS);
	json_decref(o);
	char *key = ring_key(r, "kicks/%s", id);
	struct etcd_put_params put = {
		.key = key, .key_len = strlen(key), .value = value,
		.value_len = strlen(value), .lease = r->lease,
	};
	struct ring_kick_put *p = xcalloc(1, sizeof(*p));
	p->ring = r;
	p->id = id;
	(void)etcd_kv_put(r->etcd, &put, ring_kick_put, p);
	free(key);
	free(value);
}

void ring_kicks_ack_apply(struct ring *r, const char *rest, size_t len,
			  const struct etcd_kv *kv, bool deleted)
{
	const char *slash = memchr(rest, '/', len);
	if (slash == NULL || deleted)
		return;
	struct ring_kick *k = ring_kick_find(r, rest, (size_t)(slash - rest));
	if (k == NULL || k->done == NULL)
		return;
	const char *node = slash + 1;
	size_t node_len = len - (size_t)(node - rest);
	for (size_t i = 0; i < k->acked_count; i++) {
		if (strlen(k->acked[i]) == node_len && memcmp(k->acked[i], node, node_len) == 0)
			return;
	}
	k->acked = xgrow(k->acked, &k->acked_cap, k->acked_count + 1, sizeof(*k->acked));
	k->acked_kicked = xgrow(k->acked_kicked, &k->acked_kicked_cap, k->acked_count + 1,
				sizeof(*k->acked_kicked));
	char count[24] = "0";
	if (kv->value_len < sizeof(count)) {
		memcpy(count, kv->value, kv->value_len);
		count[kv->value_len] = '\0';
	}
	k->acked_kicked[k->acked_count] = strtoul(count, NULL, 10);
	k->kicked += k->acked_kicked[k->acked_count];
	k->acked[k->acked_count++] = xstrndup(node, node_len);
}

void ring_kicks_settle(struct ring *r)
{
	for (struct ring_kick *k = r->kicks, *next; k != NULL; k = next) {
		next = k->next;
		if (k->done == NULL)
			continue;
		bool all = true;
		for (size_t i = 0; i < r->members_count && all; i++) {
			bool found = false;
			for (size_t j = 0; j < k->acked_count && !found; j++)
				found = strcmp(k->acked[j], r->members[i].name) == 0;
			all = found;
		}
		if (all)
			ring_kick_answer(k, DIRECTOR_OK, NULL);
	}
}

/* ---- every node ------------------------------------------------------------- */

/* A local kick being answered (on a later turn, maybe after the ring is
 * gone at shutdown: then ring is NULL). */
struct ring_kick_apply {
	struct ring_kick_apply *next;	/* in ring->kick_applies */
	struct ring *ring;
	char *id;
};

static void ring_kick_applied(void *ctx, const struct director_change_result *res)
{
	struct ring_kick_apply *a = ctx;
	struct ring *r = a->ring;
	if (r != NULL) {
		for (struct ring_kick_apply **p = &r->kick_applies; *p != NULL;
		     p = &(*p)->next) {
			if (*p == a) {
				*p = a->next;
				break;
			}
		}
	}
	if (r != NULL && r->lease != 0) {
		char *key = ring_key(r, "kicks-ack/%s/%s", a->id, r->name);
		char count[24];
		snprintf(count, sizeof(count), "%zu", res->kicked);
		struct etcd_put_params put = {
			.key = key, .key_len = strlen(key), .value = count,
			.value_len = strlen(count), .lease = r->lease,
		};
		(void)etcd_kv_put(r->etcd, &put, ring_ignore_result, NULL);
		free(key);
	}
	free(a->id);
	free(a);
}

void ring_kicks_apply(struct ring *r, const char *rest, size_t len,
		      const struct etcd_kv *kv, bool deleted)
{
	struct ring_kick *k = ring_kick_find(r, rest, len);
	if (deleted) {
		if (k != NULL && k->done == NULL)
			ring_kick_free(k);
		return;
	}
	if (k == NULL)
		k = ring_kick_new(r, rest, len);
	k->seen = true;
	if (k->applied)
		return;
	k->applied = true;
	json_error_t jerr;
	json_t *o = json_loadb((const char *)kv->value, kv->value_len, 0, &jerr);
	const char *value = json_string_value(json_object_get(o, "value"));
	const char *field = json_string_value(json_object_get(o, "field"));
	if (value == NULL) {
		ring_report(r, LOG_LEVEL_ERROR, "ring: %skicks/%.*s is not a kick: ignored",
			    r->prefix, (int)len, rest);
		json_decref(o);
		return;
	}
	struct director_change c = {
		.type = DIRECTOR_CHANGE_USER_KICK, .kick_field = field, .kick_value = value,
		.now = time(NULL),
	};
	struct ring_kick_apply *a = xcalloc(1, sizeof(*a));
	a->ring = r;
	a->id = xstrndup(rest, len);
	a->next = r->kick_applies;
	r->kick_applies = a;
	/* the sessions are closed now; the count comes on a later turn */
	director_change_apply_local(r->director, &c, ring_kick_applied, a);
	json_decref(o);
}

void ring_kicks_load_begin(struct ring *r)
{
	for (struct ring_kick *k = r->kicks; k != NULL; k = k->next)
		k->seen = false;
}

void ring_kicks_load_end(struct ring *r)
{
	/* a kick whose key is gone is over; one still there is not applied
	 * twice */
	for (struct ring_kick *k = r->kicks, *next; k != NULL; k = next) {
		next = k->next;
		if (!k->seen && k->done == NULL)
			ring_kick_free(k);
	}
}

void ring_kicks_free(struct ring *r)
{
	while (r->kicks != NULL) {
		struct ring_kick *k = r->kicks;
		if (k->done != NULL)
			director_change_answer(r->director, k->done, k->done_ctx,
					       DIRECTOR_INVALID, "the director is stopping");
		ring_kick_free(k);
	}
	for (struct ring_kick_apply *a = r->kick_applies; a != NULL; a = a->next)
		a->ring = NULL;
	r->kick_applies = NULL;
}
