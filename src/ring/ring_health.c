/* Health verdicts agreed by the ring (doc/ring.md §7).
 *
 * Each node's own checks (proxy/health.c) give a verdict per backend; the
 * node publishes it as P/health/<host>/<node> ("ok" or "failing") on its
 * lease. A backend leaves the hash rings when more than half of the live
 * nodes publish "failing" for it, and comes back when more than half
 * publish "ok"; anything else keeps the ring's verdict as it is, so one
 * node with a broken route to a backend cannot make the ring route
 * differently. The agreed verdict is part of P/hosts and changes through
 * a host change (§4) like an admin's, so every node applies it at the
 * same point and users with sessions on the backend keep it (their new
 * logins fail fast, as on a single node).
 *
 * What this node published is what the watch shows of its own key, not
 * what it sent: a put that timed out may commit later, after a newer
 * one, and the next comparison puts the verdict again. */
#include <stdlib.h>
#include <string.h>

#include "common/xmalloc.h"
#include "director/director.h"
#include "ring/etcd.h"
#include "ring/ring_private.h"

/* This node's own verdict of a backend, and its put in flight. */
struct ring_own_verdict {
	struct ring_own_verdict *next;	/* in ring->own_verdicts */
	struct ring *ring;
	struct ipaddr ip;
	enum director_health verdict;
	struct etcd_request *req;
};

static struct ring_verdict *ring_verdict_find(struct ring *r, const struct ipaddr *ip,
					      const char *node, size_t len)
{
	for (size_t i = 0; i < r->verdicts_count; i++) {
		struct ring_verdict *v = &r->verdicts[i];
		if (ipaddr_equal(&v->ip, ip) && strlen(v->node) == len &&
		    memcmp(v->node, node, len) == 0)
			return v;
	}
	return NULL;
}

static void ring_verdict_drop(struct ring *r, struct ring_verdict *v)
{
	free(v->node);
	*v = r->verdicts[--r->verdicts_count];
}

void ring_health_apply(struct ring *r, const char *rest, size_t len,
		       const struct etcd_kv *kv, bool deleted)
{
	const char *slash = memchr(rest, '/', len);
	char ipstr[IPADDR_STRLEN];
	struct ipaddr ip;
	size_t iplen = slash != NULL ? (size_t)(slash - rest) : 0;
	if (slash == NULL || iplen >= sizeof(ipstr) || slash + 1 == rest + len)
		return;
	memcpy(ipstr, rest, iplen);
	ipstr[iplen] = '\0';
	if (ipaddr_parse(ipstr, &ip) < 0)
		return;
	const char *node = slash + 1;
	size_t node_len = len - iplen - 1;
	struct ring_verdict *v = ring_verdict_find(r, &ip, node, node_len);
	char value[16];
	enum director_health health = DIRECTOR_HEALTH_UNKNOWN;
	if (!deleted && kv->value_len < sizeof(value)) {
		memcpy(value, kv->value, kv->value_len);
		value[kv->value_len] = '\0';
		(void)ring_health_parse(value, &health);
	}
	if (health == DIRECTOR_HEALTH_UNKNOWN) {
		/* deleted, or a value this version does not know: no verdict */
		if (v != NULL)
			ring_verdict_drop(r, v);
		return;
	}
	if (v == NULL) {
		r->verdicts = xgrow(r->verdicts, &r->verdicts_cap, r->verdicts_count + 1,
				    sizeof(*r->verdicts));
		v = &r->verdicts[r->verdicts_count++];
		v->ip = ip;
		v->node = xstrndup(node, node_len);
	}
	v->health = health;
}

void ring_health_load_begin(struct ring *r)
{
	while (r->verdicts_count > 0)
		ring_verdict_drop(r, &r->verdicts[0]);
}

/* ---- this node's verdicts ---------------------------------------------- */

static void ring_own_put_done(const struct etcd_result *res, void *ctx)
{
	struct ring_own_verdict *o = ctx;
	/* whatever happened, the watch shows what etcd holds; the next
	 * comparison puts it again if that is not the verdict */
	(void)res;
	o->req = NULL;
}

/* Puts (or deletes, for a host no longer in the list) this node's
 * verdicts where etcd does not hold them yet. */
static void ring_health_publish(struct ring *r)
{
	if (!ring_is_serving(r) || r->lease == 0)
		return;
	size_t name_len = strlen(r->name);
	for (struct ring_own_verdict **p = &r->own_verdicts; *p != NULL;) {
		struct ring_own_verdict *o = *p;
		const struct ring_verdict *held = ring_verdict_find(r, &o->ip, r->name, name_len);
		bool gone = r->hosts_known && ring_hosts_find(&r->hosts, &o->ip) == NULL;
		char ipstr[IPADDR_STRLEN];
		if (o->req != NULL || (!gone && held != NULL && held->health == o->verdict)) {
			p = &o->next;
			continue;
		}
		char *key = ring_key(r, "health/%s/%s", ipaddr_to_str(&o->ip, ipstr), r->name);
		if (gone) {
			/* no checks of it any more: its verdict goes */
			struct etcd_delete_params del = { .key = key, .key_len = strlen(key) };
			if (held != NULL)
				(void)etcd_kv_delete(r->etcd, &del, ring_ignore_result, NULL);
			*p = o->next;
			free(o);
			free(key);
			continue;
		}
		const char *value = ring_health_name(o->verdict);
		struct etcd_put_params put = {
			.key = key, .key_len = strlen(key), .value = value,
			.value_len = strlen(value), .lease = r->lease,
		};
		o->req = etcd_kv_put(r->etcd, &put, ring_own_put_done, o);
		free(key);
		p = &o->next;
	}
}

void ring_health_verdict(struct ring *r, const struct ipaddr *ip,
			 enum director_health verdict, const char *error)
{
	/* why this node's checks fail, for HOST-HEALTH; the ring decides */
	(void)director_host_note_check(r->director, ip, error);
	if (verdict == DIRECTOR_HEALTH_UNKNOWN)
		return;
	struct ring_own_verdict *o = r->own_verdicts;
	while (o != NULL && !ipaddr_equal(&o->ip, ip))
		o = o->next;
	if (o == NULL) {
		o = xcalloc(1, sizeof(*o));
		o->ring = r;
		o->ip = *ip;
		o->next = r->own_verdicts;
		r->own_verdicts = o;
	}
	o->verdict = verdict;
	ring_health_publish(r);
}

/* ---- agreement ----------------------------------------------------------- */

/* The verdict more than half of the live nodes publish for the host;
 * UNKNOWN when there is no such majority. */
static enum director_health ring_health_majority(struct ring *r, const struct ipaddr *ip)
{
	size_t votes[3] = { 0 };
	for (size_t i = 0; i < r->verdicts_count; i++) {
		const struct ring_verdict *v = &r->verdicts[i];
		if (ipaddr_equal(&v->ip, ip) && ring_member_get(r, v->node) != NULL)
			votes[v->health]++;
	}
	if (votes[DIRECTOR_HEALTH_FAILING] * 2 > r->members_count)
		return DIRECTOR_HEALTH_FAILING;
	if (votes[DIRECTOR_HEALTH_OK] * 2 > r->members_count)
		return DIRECTOR_HEALTH_OK;
	return DIRECTOR_HEALTH_UNKNOWN;
}

static void ring_health_proposal_done(void *ctx, const struct director_change_result *res)
{
	/* lost to another change, or timed out: the next settle looks again */
	(void)ctx;
	(void)res;
}

void ring_health_settle(struct ring *r)
{
	ring_health_publish(r);
	/* one host change at a time; a lost race is seen at the next settle */
	if (!ring_is_serving(r) || !r->hosts_known || r->change.present ||
	    r->proposals != NULL || r->verdicts_count == 0)
		return;
	struct ring_hosts next;
	ring_hosts_copy(&next, &r->hosts);
	bool changed = false;
	time_t now = time(NULL);
	for (size_t i = 0; i < next.count; i++) {
		struct director_host_spec *s = &next.hosts[i];
		enum director_health agreed = ring_health_majority(r, &s->ip);
		if (agreed == DIRECTOR_HEALTH_UNKNOWN || agreed == s->health)
			continue;
		/* a first verdict of ok changes no routing: not worth a line */
		char ipstr[IPADDR_STRLEN];
		if (s->health != DIRECTOR_HEALTH_UNKNOWN || agreed == DIRECTOR_HEALTH_FAILING)
			ring_report(r, agreed == DIRECTOR_HEALTH_FAILING ? LOG_LEVEL_WARNING :
				    LOG_LEVEL_INFO, "ring: backend %s is %s on most nodes: "
				    "proposing that it %s the rings",
				    ipaddr_to_str(&s->ip, ipstr), ring_health_name(agreed),
				    agreed == DIRECTOR_HEALTH_FAILING ? "leave" : "rejoin");
		s->health = agreed;
		s->health_changed = now;
		changed = true;
	}
	if (changed)
		ring_change_propose_hosts(r, &next, ring_health_proposal_done, NULL);
	ring_hosts_free(&next);
}

void ring_health_free(struct ring *r)
{
	while (r->own_verdicts != NULL) {
		struct ring_own_verdict *o = r->own_verdicts;
		r->own_verdicts = o->next;
		etcd_request_cancel(&o->req);
		free(o);
	}
	ring_health_load_begin(r);
	free(r->verdicts);
	r->verdicts = NULL;
	r->verdicts_cap = 0;
}
