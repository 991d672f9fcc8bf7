/* This node's part of a host change (doc/ring.md §4): the director
 * prepares the next rings, this node pins where they are the users it
 * has records of whose host would change, then acknowledges.
 *
 * Each pin goes in a transaction that compares that the change is still
 * in flight (P/hostchange's revision: a pin that runs late, after the
 * commit, fails) and that the pin moves nobody: the user's pins in etcd
 * all name that host (they are equal byte for byte, ring_pin_value), or
 * there are none and the ring's list hashes it there (P/hosts cannot
 * change while the change is in flight: only its commit writes it). A
 * pin counts once its transaction succeeded, and the acknowledgement
 * goes once every pin is written: in the same transaction when they fit
 * in one, else after all of them (doc/ring.md §11, P3 and B1). Any
 * failure, and the whole step runs again a second later, on the view of
 * then. */
#include <event2/event.h>
#include <stdlib.h>
#include <string.h>

#include "common/xmalloc.h"
#include "director/director.h"
#include "ring/etcd.h"
#include "ring/ring_private.h"

/* etcd takes at most 128 compares and 128 ops per transaction: one
 * compare for the change, one per pin; one op per pin and the ack */
#define RING_PREPARE_PINS_PER_TXN 126

struct ring_prepare_pin {
	char *tag;
	uint32_t hash;
	struct ipaddr host;
	bool pinned;			/* the view has pins of the user */
};

struct ring_prepare_batch {
	struct ring_prepare *prep;
	struct etcd_request *req;
	size_t first, count;		/* its pins */
	bool ack;			/* it carries the acknowledgement */
};

struct ring_prepare {
	struct ring *ring;
	struct ring_prepare_pin *pins;
	size_t pins_count, pins_cap;
	struct ring_prepare_batch *batches;
	size_t batches_count;
	size_t pending;			/* batches not answered yet */
	bool acked;			/* the ack went (or goes) in a batch */
	bool failed;
	const char *why;		/* the first failure, for the log */
};

static void ring_prepare_free(struct ring_prepare *prep)
{
	for (size_t i = 0; i < prep->batches_count; i++)
		etcd_request_cancel(&prep->batches[i].req);
	for (size_t i = 0; i < prep->pins_count; i++)
		free(prep->pins[i].tag);
	free(prep->pins);
	free(prep->batches);
	free(prep);
}

void ring_prepare_cancel(struct ring *r)
{
	if (r->prepare != NULL) {
		ring_prepare_free(r->prepare);
		r->prepare = NULL;
	}
}

static void ring_prepare_collect(const struct director_moving_user *u, void *ctx)
{
	struct ring_prepare *prep = ctx;
	struct ring *r = prep->ring;
	/* a backend the ring found failing keeps only users with sessions
	 * (their logins fail fast); idle ones are routed afresh at once,
	 * as a single node's checks do (doc/ring.md §7) */
	if (u->current->unhealthy && u->sessions == 0)
		return;
	/* already where the new list sends it: nothing to keep */
	if (u->next == u->current)
		return;
	/* a record only another node's pin made: that pin keeps the user
	 * there, and this node has nothing of its own to keep. (Pinning it
	 * too would keep both pins alive for ever, each node's record
	 * held by the other's pin.) */
	if (!u->local)
		return;
	/* etcd has this node's pin of it (a pin always names the user's
	 * host): writing it again on every host change cost a put per
	 * pinned user */
	if (ring_pins_own(r, u->tag, u->hash))
		return;
	if (!u->ring_pinned && u->current != u->hashed) {
		/* no pin, yet not on its hash: a pin would move it on every
		 * other node. The view is behind; the compare would fail */
		prep->failed = true;
		prep->why = "a user's record is neither pinned nor on its hash";
		return;
	}
	prep->pins = xgrow(prep->pins, &prep->pins_cap, prep->pins_count + 1,
			   sizeof(*prep->pins));
	prep->pins[prep->pins_count++] = (struct ring_prepare_pin){
		.tag = xstrdup(u->tag), .hash = u->hash, .host = u->current->ip,
		.pinned = u->ring_pinned,
	};
}

static void ring_prepare_send(struct ring_prepare_batch *b);

/* Every batch answered: the ack next, done, or all again later. */
static void ring_prepare_answered(struct ring_prepare *prep)
{
	struct ring *r = prep->ring;
	if (prep->failed) {
		ring_report(r, LOG_LEVEL_WARNING, "ring: acknowledging host change %s: %s; "
			    "again in a second", r->change.id, prep->why);
		r->change.prepared = false;
		ring_prepare_cancel(r);
		struct timeval tv = { 1, 0 };
		evtimer_add(r->retry_timer, &tv);
		return;
	}
	if (!prep->acked) {
		/* every pin is written: now the acknowledgement */
		prep->acked = true;
		prep->batches_count = 1;
		prep->batches[0] = (struct ring_prepare_batch){ .prep = prep, .ack = true };
		prep->pending = 1;
		ring_prepare_send(&prep->batches[0]);
		return;
	}
	ring_prepare_cancel(r);		/* acknowledged: the watch tells the rest */
}

static void ring_prepare_done(const struct etcd_result *res, void *ctx)
{
	struct ring_prepare_batch *b = ctx;
	struct ring_prepare *prep = b->prep;
	b->req = NULL;
	if (res->outcome == ETCD_OK && res->succeeded) {
		for (size_t i = b->first; i < b->first + b->count; i++)
			ring_pins_note_own(prep->ring, prep->pins[i].tag, prep->pins[i].hash,
					   &prep->pins[i].host, res->header.revision);
	} else if (!prep->failed) {
		prep->failed = true;
		prep->why = res->outcome != ETCD_OK ?
			(res->error != NULL ? res->error : "no answer") :
			"the change or a user's pins changed meanwhile";
	}
	if (--prep->pending == 0)
		ring_prepare_answered(prep);
}

static void ring_prepare_send(struct ring_prepare_batch *b)
{
	struct ring_prepare *prep = b->prep;
	struct ring *r = prep->ring;
	size_t n = b->count + 1;
	struct etcd_compare *cmps = xcalloc(n, sizeof(*cmps));
	struct ring_ops ops = { 0 };
	char *change_key = ring_key(r, "hostchange");
	cmps[0] = (struct etcd_compare){
		.key = change_key, .key_len = strlen(change_key), .target = ETCD_TARGET_MOD,
		.result = ETCD_CMP_EQUAL, .number = r->change.revision,
	};
	char **prefixes = xcalloc(n, sizeof(*prefixes));
	for (size_t i = 0; i < b->count; i++) {
		const struct ring_prepare_pin *p = &prep->pins[b->first + i];
		char ip[IPADDR_STRLEN];
		char *value = ring_pin_value(ipaddr_to_str(&p->host, ip));
		prefixes[i] = ring_user_key(r, "pins", p->hash, p->tag, "");
		/* every pin of the user names this host, or there is none */
		cmps[i + 1] = p->pinned ?
			(struct etcd_compare){ .key = prefixes[i], .key_len = strlen(prefixes[i]),
				.prefix = true, .target = ETCD_TARGET_VALUE,
				.result = ETCD_CMP_EQUAL, .value = value,
				.value_len = strlen(value) } :
			(struct etcd_compare){ .key = prefixes[i], .key_len = strlen(prefixes[i]),
				.prefix = true, .target = ETCD_TARGET_CREATE,
				.result = ETCD_CMP_EQUAL, .number = 0 };
		ring_ops_put(&ops, ring_user_key(r, "pins", p->hash, p->tag, r->name), value,
			     r->lease);
	}
	if (b->ack)
		ring_ops_put(&ops, ring_key(r, "hostchange-ack/%s", r->name),
			     xstrdup(r->change.id), r->lease);
	struct etcd_txn_params txn = {
		.compares = cmps, .compare_count = n,
		.success = ops.ops, .success_count = ops.count,
	};
	b->req = etcd_kv_txn(r->etcd, &txn, ring_prepare_done, b);
	ring_ops_free(&ops);
	for (size_t i = 0; i < n; i++)
		free(prefixes[i]);
	free(prefixes);
	free(cmps);
	free(change_key);
}

void ring_prepare_start(struct ring *r)
{
	struct ring_hostchange *ch = &r->change;
	if (ch->prepared || r->prepare != NULL || r->lease == 0)
		return;
	director_set_deferred_rings(r->director, true);
	director_hosts_replace(r->director, ch->hosts.hosts, ch->hosts.count);
	director_rings_prepare(r->director);
	struct ring_prepare *prep = xcalloc(1, sizeof(*prep));
	prep->ring = r;
	r->prepare = prep;
	ch->prepared = true;
	director_rings_foreach_moving(r->director, ring_prepare_collect, prep);
	if (prep->failed) {
		ring_prepare_answered(prep);
		return;
	}
	/* the ack with the pins when they fit in one transaction, else
	 * after all of them */
	size_t per = RING_PREPARE_PINS_PER_TXN;
	prep->batches_count = prep->pins_count <= per ? 1 : (prep->pins_count + per - 1) / per;
	prep->batches = xcalloc(prep->batches_count, sizeof(*prep->batches));
	prep->acked = prep->batches_count == 1;
	prep->pending = prep->batches_count;
	for (size_t i = 0; i < prep->batches_count; i++) {
		size_t first = i * per;
		prep->batches[i] = (struct ring_prepare_batch){
			.prep = prep, .first = first,
			.count = prep->pins_count - first < per ? prep->pins_count - first : per,
			.ack = prep->acked,
		};
	}
	for (size_t i = 0; i < prep->batches_count; i++)
		ring_prepare_send(&prep->batches[i]);
}
