/* Host changes in two phases, and admin changes acknowledged by the
 * whole ring (doc/ring.md §4, §8).
 *
 *   propose   the admin's node writes P/hostchange (the new list) if
 *             P/hosts is still what it read and no change is in flight
 *   prepare   every node, seeing it: the director takes the new list with
 *             its rings deferred, prepares them, and the node pins its
 *             users whose host would change; then P/hostchange-ack/<node>
 *             (ring_prepare.c)
 *   commit    once every live node acknowledged, any node: P/hosts = the
 *             new list, the change and its acks deleted, in one
 *             transaction that compares the change's revision
 *   apply     every node, seeing P/hosts: the rings are committed, held
 *             logins go on; P/applied/<node> says so
 *   answer    the admin's node answers OK once every live node applied
 *             the commit (or "Ring sync timed out" after 30 s)
 *
 * A node that dies is no longer waited for once its lease has gone; one
 * that is cut off has fenced itself by then. */
#include <event2/event.h>
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/clock.h"
#include "common/xmalloc.h"
#include "director/director.h"
#include "ring/etcd.h"
#include "ring/ring_private.h"

#define RING_BUSY_TEXT "host is already being updated - try again later"
#define RING_NO_ETCD_TEXT "etcd cannot take the change now (no leader): try again later"
/* A proposal etcd did not answer is sent again for this long: an
 * election takes etcd a second or two; a quorum lost, for ever, and the
 * admin should hear so soon. */
#define RING_PROPOSAL_RETRY_MS 6000

/* ---- admin requests --------------------------------------------------- */

static void ring_request_answer(struct ring_request **rqp, enum director_result result,
				const char *error)
{
	struct ring_request *rq = *rqp;
	struct ring *r = rq->ring;
	*rqp = rq->next;
	director_change_answer(r->director, rq->done, rq->done_ctx, result, error);
	event_free(rq->timer);
	free(rq->id);
	free(rq);
}

static void ring_change_abandon(struct ring *r);

static void ring_request_timeout(evutil_socket_t fd, short what, void *arg)
{
	struct ring_request *target = arg;
	struct ring *r = target->ring;
	(void)fd;
	(void)what;
	/* the admin's own change still waits for a node: give it up, or
	 * every later change would answer TRYAGAIN until that node goes */
	if (r->change.present && r->change.id != NULL && strcmp(r->change.id, target->id) == 0)
		ring_change_abandon(r);
	for (struct ring_request **p = &r->requests; *p != NULL; p = &(*p)->next) {
		if (*p == target) {
			ring_request_answer(p, DIRECTOR_INVALID, RING_TIMEOUT_TEXT);
			return;
		}
	}
}

struct ring_request *ring_request_add(struct ring *r, const char *id,
				      director_change_done_cb *done, void *ctx)
{
	struct ring_request *rq = xcalloc(1, sizeof(*rq));
	rq->ring = r;
	rq->id = xstrdup(id);
	rq->done = done;
	rq->done_ctx = ctx;
	rq->timer = evtimer_new(r->base, ring_request_timeout, rq);
	struct timeval tv = { RING_SYNC_TIMEOUT_MS / 1000, 0 };
	evtimer_add(rq->timer, &tv);
	rq->next = r->requests;
	r->requests = rq;
	/* the watch may have shown the commit before the proposal's answer */
	if (r->hosts_id != NULL && strcmp(r->hosts_id, id) == 0)
		rq->committed = r->hosts_revision;
	return rq;
}

/* Every live node has applied the revision. */
static bool ring_applied_everywhere(struct ring *r, int64_t revision)
{
	for (size_t i = 0; i < r->members_count; i++) {
		if (r->members[i].applied < revision)
			return false;
	}
	return true;
}

/* ---- propose ------------------------------------------------------------ */

struct ring_proposal {
	struct ring_proposal *next;	/* in ring->proposals */
	struct etcd_request *req;
	struct ring *ring;
	char *id;
	char *key, *value;		/* the one put; the value names the id */
	struct etcd_compare cmps[RING_PROPOSAL_COMPARES];
	char *cmp_keys[RING_PROPOSAL_COMPARES];	/* theirs */
	size_t cmp_count;
	struct event *retry;
	uint64_t deadline_ms;		/* retries stop (monotonic) */
	bool unknown;			/* a try got no answer */
	director_change_done_cb *done;
	void *done_ctx;
};

static void ring_proposal_free(struct ring_proposal *p)
{
	for (struct ring_proposal **q = &p->ring->proposals; *q != NULL; q = &(*q)->next) {
		if (*q == p) {
			*q = p->next;
			break;
		}
	}
	etcd_request_cancel(&p->req);
	event_free(p->retry);
	for (size_t i = 0; i < p->cmp_count; i++)
		free(p->cmp_keys[i]);
	free(p->key);
	free(p->value);
	free(p->id);
	free(p);
}

/* A compare failed: if the key holds this proposal (an earlier try whose
 * answer never came did get there), it is in flight after all. */
static bool ring_proposal_there(const struct ring_proposal *p, const struct etcd_result *res)
{
	if (res->response_count < 1 || res->responses[0].kv_count < 1)
		return false;
	const struct etcd_kv *kv = &res->responses[0].kvs[0];
	json_error_t jerr;
	json_t *o = json_loadb((const char *)kv->value, kv->value_len, 0, &jerr);
	const char *id = json_string_value(json_object_get(o, "id"));
	bool ours = id != NULL && strcmp(id, p->id) == 0;
	json_decref(o);
	return ours;
}

static void ring_proposal_send(struct ring_proposal *p);

static void ring_proposal_again(evutil_socket_t fd, short what, void *arg)
{
	(void)fd;
	(void)what;
	ring_proposal_send(arg);
}

static void ring_proposed(const struct etcd_result *res, void *ctx)
{
	struct ring_proposal *p = ctx;
	struct ring *r = p->ring;
	p->req = NULL;
	if (res->outcome == ETCD_OK && (res->succeeded || ring_proposal_there(p, res))) {
		/* answered when every node applied it */
		(void)ring_request_add(r, p->id, p->done, p->done_ctx);
		ring_change_settle(r);
	} else if (res->outcome == ETCD_OK) {
		/* another change got there first */
		director_change_answer(r->director, p->done, p->done_ctx, DIRECTOR_TRYAGAIN,
				       RING_BUSY_TEXT);
	} else {
		/* no answer (it may have been applied), or none possible (no
		 * leader): etcd's leader may be changing, which takes a second
		 * or two; the same transaction again tells */
		bool again = clock_monotonic_ms() < p->deadline_ms;
		p->unknown = p->unknown || res->outcome == ETCD_UNKNOWN;
		ring_report(r, LOG_LEVEL_WARNING, "ring: change %s: etcd %s: %s%s",
			    p->id, res->endpoint != NULL ? res->endpoint : "-",
			    res->error != NULL ? res->error : "no answer",
			    again ? "; trying again" : "");
		if (again) {
			struct timeval tv = { 0, 500 * 1000 };
			evtimer_add(p->retry, &tv);
			return;
		}
		/* a try that got no answer may still be applied: the admin
		 * looks; else etcd said why nothing was */
		director_change_answer(r->director, p->done, p->done_ctx, DIRECTOR_INVALID,
				       p->unknown ? RING_TIMEOUT_TEXT : RING_NO_ETCD_TEXT);
	}
	ring_proposal_free(p);
}

static void ring_proposal_send(struct ring_proposal *p)
{
	struct etcd_op put = { .type = ETCD_OP_PUT, .u.put = {
		.key = p->key, .key_len = strlen(p->key),
		.value = p->value, .value_len = strlen(p->value) } };
	struct etcd_op get = { .type = ETCD_OP_RANGE, .u.range = {
		.key = p->key, .key_len = strlen(p->key) } };
	struct etcd_txn_params txn = {
		.compares = p->cmps, .compare_count = p->cmp_count,
		.success = &put, .success_count = 1, .failure = &get, .failure_count = 1,
	};
	p->req = etcd_kv_txn(p->ring->etcd, &txn, ring_proposed, p);
}

char *ring_change_id(struct ring *r)
{
	return xasprintf("%s-%lld-%u", r->name, (long long)r->started, ++r->change_seq);
}

void ring_propose(struct ring *r, char *id, const struct etcd_compare *cmps,
		  size_t cmp_count, const char *key, const char *value,
		  director_change_done_cb *done, void *done_ctx)
{
	struct ring_proposal *p = xcalloc(1, sizeof(*p));
	p->ring = r;
	p->id = id;
	p->key = xstrdup(key);
	p->value = xstrdup(value);
	for (size_t i = 0; i < cmp_count && i < RING_PROPOSAL_COMPARES; i++) {
		p->cmps[i] = cmps[i];
		p->cmp_keys[i] = xstrndup(cmps[i].key, cmps[i].key_len);
		p->cmps[i].key = p->cmp_keys[i];
	}
	p->cmp_count = cmp_count < RING_PROPOSAL_COMPARES ? cmp_count : RING_PROPOSAL_COMPARES;
	p->deadline_ms = clock_monotonic_ms() + RING_PROPOSAL_RETRY_MS;
	p->retry = evtimer_new(r->base, ring_proposal_again, p);
	p->done = done;
	p->done_ctx = done_ctx;
	p->next = r->proposals;
	r->proposals = p;
	ring_proposal_send(p);
}

static char *ring_change_json(const char *id, const struct ring_hosts *h)
{
	char *hosts = ring_hosts_to_json(h);
	json_error_t jerr;
	json_t *o = json_loads(hosts, 0, &jerr);
	json_object_set_new(o, "id", json_string(id));
	char *text = json_dumps(o, JSON_COMPACT | JSON_SORT_KEYS);
	json_decref(o);
	free(hosts);
	return text;
}

void ring_change_request(struct ring *r, const struct director_change *c,
			 director_change_done_cb *done, void *done_ctx)
{
	const char *error = NULL;
	if (!ring_is_serving(r) || !r->hosts_known) {
		director_change_answer(r->director, done, done_ctx, DIRECTOR_INVALID,
				       "this director is not in touch with its ring");
		return;
	}
	if (r->change.present) {
		director_change_answer(r->director, done, done_ctx, DIRECTOR_TRYAGAIN,
				       RING_BUSY_TEXT);
		return;
	}
	struct ring_hosts next;
	ring_hosts_copy(&next, &r->hosts);
	enum director_result res = ring_hosts_change(&next, c, &error);
	char *before = ring_hosts_to_json(&r->hosts), *after = ring_hosts_to_json(&next);
	bool same = strcmp(before, after) == 0;
	free(before);
	if (res != DIRECTOR_OK || same) {
		/* refused, or nothing changes (HOST-UP of a host that is up):
		 * answered at once, as Dovecot answers an unchanged state */
		director_change_answer(r->director, done, done_ctx, res, error);
		ring_hosts_free(&next);
		free(after);
		return;
	}
	free(after);
	ring_change_propose_hosts(r, &next, done, done_ctx);
	ring_hosts_free(&next);
}

void ring_change_propose_hosts(struct ring *r, const struct ring_hosts *next,
			       director_change_done_cb *done, void *done_ctx)
{
	char *id = ring_change_id(r);
	char *value = ring_change_json(id, next);
	char *hosts_key = ring_key(r, "hosts"), *change_key = ring_key(r, "hostchange");
	struct etcd_compare cmp[2] = {
		{ .key = hosts_key, .key_len = strlen(hosts_key), .target = ETCD_TARGET_MOD,
		  .result = ETCD_CMP_EQUAL, .number = r->hosts_revision },
		{ .key = change_key, .key_len = strlen(change_key),
		  .target = ETCD_TARGET_CREATE, .result = ETCD_CMP_EQUAL, .number = 0 },
	};
	ring_propose(r, id, cmp, 2, change_key, value, done, done_ctx);
	free(value);
	free(hosts_key);
	free(change_key);
}

/* ---- the keys ----------------------------------------------------------------- */

void ring_change_proposed(struct ring *r, const struct etcd_kv *kv, bool deleted)
{
	struct ring_hostchange *ch = &r->change;
	bool was_prepared = ch->prepared;
	free(ch->id);
	ch->id = NULL;
	ring_hosts_free(&ch->hosts);
	ch->present = false;
	ch->prepared = false;
	ring_prepare_cancel(r);
	for (size_t i = 0; i < r->members_count; i++)
		r->members[i].acked = false;
	if (was_prepared && r->hosts_known) {
		/* committed (P/hosts came first and is the new list) or given
		 * up: route by the ring's list, let held logins go on */
		director_set_deferred_rings(r->director, false);
		director_hosts_replace(r->director, r->hosts.hosts, r->hosts.count);
	}
	if (deleted)
		return;
	char *error;
	json_error_t jerr;
	json_t *o = json_loadb((const char *)kv->value, kv->value_len, 0, &jerr);
	const char *id = json_string_value(json_object_get(o, "id"));
	if (id == NULL || ring_hosts_from_json(&ch->hosts, kv->value, kv->value_len,
					       &error) < 0) {
		ring_report(r, LOG_LEVEL_ERROR, "ring: %shostchange is not a host change: "
			    "ignored", r->prefix);
		if (id != NULL)
			free(error);
		json_decref(o);
		return;
	}
	ch->id = xstrdup(id);
	ch->revision = kv->mod_revision;
	ch->present = true;
	ch->seen_ms = clock_monotonic_ms();
	json_decref(o);
}

void ring_change_acked(struct ring *r, const char *node, const struct etcd_kv *kv,
		       bool deleted)
{
	struct ring_member *m = ring_member_get(r, node);
	if (m == NULL)
		return;
	m->acked = !deleted && r->change.id != NULL && kv->value_len == strlen(r->change.id) &&
		memcmp(kv->value, r->change.id, kv->value_len) == 0;
}

void ring_change_applied(struct ring *r, const char *node, const struct etcd_kv *kv,
			 bool deleted)
{
	struct ring_member *m = ring_member_get(r, node);
	if (m != NULL)
		m->applied = deleted ? 0 : strtoll((const char *)kv->value, NULL, 10);
}

static void ring_applied_put(struct ring *r)
{
	char *key = ring_key(r, "applied/%s", r->name);
	char value[32];
	snprintf(value, sizeof(value), "%lld", (long long)r->hosts_revision);
	struct etcd_put_params put = {
		.key = key, .key_len = strlen(key), .value = value,
		.value_len = strlen(value), .lease = r->lease,
	};
	(void)etcd_kv_put(r->etcd, &put, ring_ignore_result, NULL);
	free(key);
}

void ring_change_hosts(struct ring *r, const struct etcd_kv *kv)
{
	char *error;
	struct ring_hosts h;
	if (ring_hosts_from_json(&h, kv->value, kv->value_len, &error) < 0) {
		ring_report(r, LOG_LEVEL_ERROR, "ring: %shosts: %s: ignored", r->prefix, error);
		free(error);
		return;
	}
	ring_hosts_free(&r->hosts);
	r->hosts = h;
	r->hosts_revision = kv->mod_revision;
	r->hosts_known = true;
	json_error_t jerr;
	json_t *o = json_loadb((const char *)kv->value, kv->value_len, 0, &jerr);
	const char *id = json_string_value(json_object_get(o, "id"));
	free(r->hosts_id);
	r->hosts_id = id != NULL ? xstrdup(id) : NULL;
	json_decref(o);
	/* the routing rings follow the ring's list now */
	director_set_deferred_rings(r->director, false);
	director_hosts_replace(r->director, r->hosts.hosts, r->hosts.count);
	for (struct ring_request *rq = r->requests; rq != NULL; rq = rq->next) {
		if (r->hosts_id != NULL && strcmp(rq->id, r->hosts_id) == 0)
			rq->committed = r->hosts_revision;
	}
}

/* ---- give up -------------------------------------------------------------------- */

/* Deletes the change in flight, if it is still the one this node saw (a
 * commit meanwhile wins): every node routes by P/hosts as it is. Nothing
 * was committed, so no node routed by the change's list. */
static void ring_change_abandon(struct ring *r)
{
	struct ring_hostchange *ch = &r->change;
	char waiting[256] = "";
	size_t used = 0;
	for (size_t i = 0; i < r->members_count && used < sizeof(waiting) - 1; i++) {
		if (!r->members[i].acked)
			used += (size_t)snprintf(waiting + used, sizeof(waiting) - used, "%s%s",
						 used > 0 ? ", " : "", r->members[i].name);
	}
	ring_report(r, LOG_LEVEL_WARNING, "ring: host change %s given up after %d s: "
		    "not acknowledged by %s", ch->id, RING_SYNC_TIMEOUT_MS / 1000,
		    used > 0 ? waiting : "(nobody: the commit did not come)");
	char *change_key = ring_key(r, "hostchange"), *acks = ring_key(r, "hostchange-ack/");
	struct etcd_compare cmp = {
		.key = change_key, .key_len = strlen(change_key), .target = ETCD_TARGET_MOD,
		.result = ETCD_CMP_EQUAL, .number = ch->revision,
	};
	struct etcd_op ops[2] = {
		{ .type = ETCD_OP_DELETE, .u.del = { .key = change_key,
		  .key_len = strlen(change_key) } },
		{ .type = ETCD_OP_DELETE, .u.del = { .key = acks, .key_len = strlen(acks),
		  .prefix = true } },
	};
	struct etcd_txn_params txn = {
		.compares = &cmp, .compare_count = 1, .success = ops, .success_count = 2,
	};
	(void)etcd_kv_txn(r->etcd, &txn, ring_ignore_result, NULL);
	free(change_key);
	free(acks);
	ch->seen_ms = clock_monotonic_ms();	/* once per deadline, if it stays */
}

void ring_change_tick(struct ring *r)
{
	/* a change whose proposer is gone too: any node gives it up, later */
	if (r->phase == RING_SERVING && !r->fenced && r->change.present &&
	    clock_monotonic_ms() - r->change.seen_ms > 2 * RING_SYNC_TIMEOUT_MS)
		ring_change_abandon(r);
}

/* ---- commit ------------------------------------------------------------------- */

static void ring_committed(const struct etcd_result *res, void *ctx)
{
	struct ring *r = ctx;
	r->commit = NULL;
	/* a lost race or no answer: the watch tells what happened */
	(void)res;
}

static void ring_change_commit(struct ring *r)
{
	struct ring_hostchange *ch = &r->change;
	char *change_key = ring_key(r, "hostchange"), *hosts_key = ring_key(r, "hosts");
	char *acks = ring_key(r, "hostchange-ack/");
	char *value = ring_change_json(ch->id, &ch->hosts);
	struct etcd_compare cmp = {
		.key = change_key, .key_len = strlen(change_key), .target = ETCD_TARGET_MOD,
		.result = ETCD_CMP_EQUAL, .number = ch->revision,
	};
	struct etcd_op ops[3] = {
		{ .type = ETCD_OP_PUT, .u.put = { .key = hosts_key, .key_len = strlen(hosts_key),
		  .value = value, .value_len = strlen(value) } },
		{ .type = ETCD_OP_DELETE, .u.del = { .key = change_key,
		  .key_len = strlen(change_key) } },
		{ .type = ETCD_OP_DELETE, .u.del = { .key = acks, .key_len = strlen(acks),
		  .prefix = true } },
	};
	struct etcd_txn_params txn = {
		.compares = &cmp, .compare_count = 1, .success = ops, .success_count = 3,
	};
	r->commit = etcd_kv_txn(r->etcd, &txn, ring_committed, r);
	free(change_key);
	free(hosts_key);
	free(acks);
	free(value);
}

void ring_change_settle(struct ring *r)
{
	if (r->phase != RING_SERVING)
		return;
	struct ring_hostchange *ch = &r->change;
	if (ch->present) {
		ring_prepare_start(r);
		bool all = true;
		for (size_t i = 0; i < r->members_count && all; i++)
			all = r->members[i].acked;
		if (all && r->commit == NULL)
			ring_change_commit(r);
	}
	if (r->hosts_known && r->lease != 0 && r->applied_sent != r->hosts_revision) {
		r->applied_sent = r->hosts_revision;
		ring_applied_put(r);
	}
	ring_pins_settle(r);
	ring_moves_settle(r);
	ring_kicks_settle(r);
	ring_health_settle(r);
	ring_directors_settle(r);
	for (struct ring_request **p = &r->requests; *p != NULL;) {
		if ((*p)->finished ||
		    ((*p)->committed != 0 && ring_applied_everywhere(r, (*p)->committed)))
			ring_request_answer(p, DIRECTOR_OK, NULL);
		else
			p = &(*p)->next;
	}
}

void ring_request_finished(struct ring *r, const char *id)
{
	for (struct ring_request *rq = r->requests; rq != NULL; rq = rq->next) {
		if (strcmp(rq->id, id) == 0)
			rq->finished = true;
	}
}

void ring_change_free(struct ring *r)
{
	while (r->proposals != NULL) {
		struct ring_proposal *p = r->proposals;
		director_change_answer(r->director, p->done, p->done_ctx, DIRECTOR_INVALID,
				       RING_TIMEOUT_TEXT);
		ring_proposal_free(p);
	}
	while (r->requests != NULL)
		ring_request_answer(&r->requests, DIRECTOR_INVALID, RING_TIMEOUT_TEXT);
	etcd_request_cancel(&r->commit);
	ring_prepare_cancel(r);
	free(r->change.id);
	ring_hosts_free(&r->change.hosts);
	ring_hosts_free(&r->hosts);
	free(r->hosts_id);
	memset(&r->change, 0, sizeof(r->change));
}
