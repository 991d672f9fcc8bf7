/* ring.partition = "failsafe" (doc/ring.md §13, tests/model/failsafe.pml):
 * a node cut off from etcd keeps serving on its last state past its
 * deadline only while every other director of the ring confirms, over
 * the links (§14), that it cannot reach etcd either; a node that gave
 * such a confirmation is bound: it acts on nothing etcd says and writes
 * nothing there but its lease renewals until the binding lapses or its
 * holder says it is back in touch.
 *
 *   holder: CONFIRM? <seq>  ->  giver: YES (bound for failsafe_bind) | NO
 *   holder back in touch: INTOUCH <seq>  ->  giver drops that binding
 *
 * The holder counts a YES failsafe_confirm from when it *sent* the
 * request, the giver is bound failsafe_bind from when it *answered*, and
 * bind > confirm * 1.02 + the slowest answer the holder accepts: the
 * holder's copy always lapses first. The rules' numbers below are §13's. */
#include <errno.h>
#include <event2/event.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "common/clock.h"
#include "common/file.h"
#include "common/sbuf.h"
#include "common/xmalloc.h"
#include "ring/etcd.h"
#include "ring/ring_peer.h"
#include "ring/ring_private.h"

#define RING_FAILSAFE_FROZEN_TEXT "this director is bound by a failsafe confirmation"

/* A YES this node holds (rule 3), or a binding it gave (rule 5). */
struct ring_failsafe_entry {
	char *name;			/* the peer: giver, or holder */
	uint64_t until;			/* monotonic ms */
	uint64_t seq;			/* the holder's request it answered */
};

struct ring_failsafe_list {
	struct ring_failsafe_entry *items;
	size_t count, cap;
};

struct ring_failsafe {
	uint64_t confirm_ms, bind_ms;
	struct event *tick;		/* asks, and lets bindings lapse */
	struct event *expiry;		/* failsafe: the first YES to lapse */
	uint64_t seq;			/* of this node's requests (never reset:
					 * an INTOUCH names the last one) */
	bool asked;			/* asked since it was last in touch */
	unsigned int asking;		/* requests in flight */
	struct ring_failsafe_list held;	/* YES answers, by giver */
	struct ring_failsafe_list given;	/* bindings, by holder */
	uint64_t start_bound_until;	/* rule 8: a binding of the last run */
	bool active;			/* serving failsafe past the deadline */
	bool spent;			/* fenced since the last full read (rule 7) */
	bool frozen;
	char *bound_file;		/* <base_dir>/failsafe-bound (rule 8) */
};

/* One request's answers. */
struct ring_failsafe_ask {
	struct ring *ring;
	uint64_t sent_ms;
};

static struct ring_failsafe_entry *ring_failsafe_find(struct ring_failsafe_list *l,
						      const char *name)
{
	for (size_t i = 0; i < l->count; i++) {
		if (strcmp(l->items[i].name, name) == 0)
			return &l->items[i];
	}
	return NULL;
}

static struct ring_failsafe_entry *ring_failsafe_get(struct ring_failsafe_list *l,
						     const char *name)
{
	struct ring_failsafe_entry *e = ring_failsafe_find(l, name);
	if (e != NULL)
		return e;
	l->items = xgrow(l->items, &l->cap, l->count + 1, sizeof(*l->items));
	e = &l->items[l->count++];
	memset(e, 0, sizeof(*e));
	e->name = xstrdup(name);
	return e;
}

static void ring_failsafe_clear(struct ring_failsafe_list *l)
{
	for (size_t i = 0; i < l->count; i++)
		free(l->items[i].name);
	l->count = 0;
}

/* Out of touch: the last renewal that worked was sent more than
 * lease_ttl/2 ago (or there is no lease). */
static bool ring_failsafe_out_of_touch(const struct ring *r, uint64_t now)
{
	return r->lease == 0 || now - r->renewed_sent_ms > r->ttl_ms / 2;
}

/* ---- frozen (rule 5) --------------------------------------------------- */

/* Frozen while a binding lasts, or while serving failsafe (rule 4: it
 * takes no pin, acks and commits nothing, even once etcd answers before
 * its lease renewal does): etcd is asked nothing but renewals, and its
 * watch is not followed; thawed, the node reads the ring again. */
static void ring_failsafe_update_frozen(struct ring *r, uint64_t now)
{
	struct ring_failsafe *f = r->failsafe;
	bool bound = f->start_bound_until > now;
	for (size_t i = 0; i < f->given.count; i++)
		bound |= f->given.items[i].until > now;
	bool frozen = bound || f->active;
	if (frozen && !f->frozen && bound)
		ring_report(r, LOG_LEVEL_WARNING, "ring: bound by a failsafe confirmation: "
			    "routing on the state as it is, acting on no change of it");
	const char *why = bound ? RING_FAILSAFE_FROZEN_TEXT :
		"this director serves in failsafe mode (etcd is down)";
	etcd_client_set_frozen(r->etcd, frozen ? why : NULL);
	etcd_client_set_frozen(r->etcd_load, frozen ? why : NULL);
	if (frozen == f->frozen)
		return;
	f->frozen = frozen;
	if (frozen) {
		etcd_watch_free(&r->watch);
		return;
	}
	ring_report(r, LOG_LEVEL_INFO, "ring: no failsafe confirmation binds this "
		    "node any more: reading the ring's state again");
	/* a read that failed while frozen waits for its retry: now */
	if (r->phase == RING_LOAD && r->req == NULL)
		evtimer_del(r->retry_timer);
	if (r->phase == RING_SERVING || (r->phase == RING_LOAD && r->req == NULL))
		ring_rejoin(r, false);
}

bool ring_failsafe_frozen(const struct ring *r)
{
	return r->failsafe != NULL && r->failsafe->frozen && !r->failsafe->active;
}

/* Rule 8: the bindings a run gave outlive it, in a file under base_dir:
 * when the binding lapses on the monotonic clock, which a restart of the
 * process keeps. No fsync: a crash of the machine outlasts any binding
 * (and base_dir is a tmpfs that a reboot clears). */
static void ring_failsafe_save_bound(struct ring *r, uint64_t until)
{
	struct ring_failsafe *f = r->failsafe;
	char text[32];
	int len = snprintf(text, sizeof(text), "%llu\n", (unsigned long long)until);
	int fd = open(f->bound_file, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
	if (fd < 0 || write(fd, text, (size_t)len) != len)
		ring_report(r, LOG_LEVEL_WARNING, "ring: %s: %s (a restart within "
			    "ring.failsafe_bind may then act too early)", f->bound_file,
			    strerror(errno));
	if (fd >= 0)
		close(fd);
}

static void ring_failsafe_load_bound(struct ring *r, uint64_t now)
{
	struct ring_failsafe *f = r->failsafe;
	char *data = NULL, *error = NULL;
	size_t len;
	if (file_read_all(f->bound_file, 64, &data, &len, NULL, &error) <= 0) {
		free(error);
		return;
	}
	unsigned long long until = strtoull(data, NULL, 10);
	free(data);
	/* a clock from another boot could say anything: never past bind */
	if (until > now + f->bind_ms)
		until = now + f->bind_ms;
	if (until > now) {
		f->start_bound_until = until;
		ring_report(r, LOG_LEVEL_WARNING, "ring: the last run of this node gave a "
			    "failsafe confirmation that binds it for %llu ms more: waiting",
			    (unsigned long long)(until - now));
	}
}

/* ---- the deadline (rules 3, 4, 7) ------------------------------------- */

/* The first of the held confirmations to lapse; 0 when a peer has none. */
static uint64_t ring_failsafe_all_confirmed(struct ring *r, uint64_t now)
{
	struct ring_failsafe *f = r->failsafe;
	uint64_t first = UINT64_MAX;
	char name[300];
	const char *address;
	unsigned int port;
	for (size_t i = 0; ring_director_peer(r, i, name, sizeof(name), &address, &port); i++) {
		const struct ring_failsafe_entry *e = ring_failsafe_find(&f->held, name);
		if (e == NULL || e->until <= now)
			return 0;
		if (e->until < first)
			first = e->until;
	}
	/* the only director: nobody else routes; looked at again later */
	return first != UINT64_MAX ? first : now + f->confirm_ms;
}

static void ring_failsafe_arm_expiry(struct ring *r, uint64_t until, uint64_t now)
{
	uint64_t ms = until - now;
	struct timeval tv = { (time_t)(ms / 1000), (suseconds_t)(ms % 1000) * 1000 };
	evtimer_add(r->failsafe->expiry, &tv);
	/* the relay goes on until then, and no longer */
	if (r->cb.deadline != NULL)
		r->cb.deadline(r->ctx, until);
}

bool ring_failsafe_at_deadline(struct ring *r)
{
	struct ring_failsafe *f = r->failsafe;
	uint64_t now = clock_monotonic_ms();
	uint64_t until = f == NULL || f->spent ? 0 : ring_failsafe_all_confirmed(r, now);
	if (until == 0) {
		if (f != NULL)
			f->spent = true;
		return false;
	}
	f->active = true;
	ring_report(r, LOG_LEVEL_WARNING, "ring: cut off from etcd past the lease, and "
		    "every other director confirms it cannot reach etcd either: serving "
		    "in failsafe mode on the last state");
	ring_failsafe_update_frozen(r, now);
	ring_failsafe_arm_expiry(r, until, now);
	return true;
}

/* The first confirmation lapsed: a fresh one from every peer, or fence. */
static void ring_failsafe_expired(evutil_socket_t fd, short what, void *arg)
{
	struct ring *r = arg;
	struct ring_failsafe *f = r->failsafe;
	(void)fd;
	(void)what;
	if (!f->active)
		return;
	uint64_t now = clock_monotonic_ms();
	uint64_t until = ring_failsafe_all_confirmed(r, now);
	if (until != 0) {
		ring_failsafe_arm_expiry(r, until, now);
		return;
	}
	f->active = false;
	f->spent = true;
	ring_report(r, LOG_LEVEL_ERROR, "ring: a director no longer confirms that etcd is "
		    "down for it too: fenced, no logins are served until etcd answers again");
	ring_lease_withhold(r);
	ring_failsafe_update_frozen(r, now);
}

bool ring_failsafe_active(const struct ring *r)
{
	return r->failsafe != NULL && r->failsafe->active;
}

/* ---- asking (rule 2) and back in touch (rule 6) ----------------------- */

static void ring_failsafe_answer(void *ctx, const char *node, const char *error,
				 const char *payload, size_t len)
{
	struct ring_failsafe_ask *ask = ctx;
	struct ring_failsafe *f = ask->ring->failsafe;
	uint64_t now = clock_monotonic_ms();
	/* an answer slower than the margin between the two timers is no
	 * answer: the giver's binding might lapse before this copy */
	if (f == NULL || error != NULL || len != 4 || memcmp(payload, "YES\n", 4) != 0 ||
	    now - ask->sent_ms > f->bind_ms - f->confirm_ms - f->confirm_ms / 50)
		return;
	struct ring_failsafe_entry *e = ring_failsafe_get(&f->held, node);
	if (ask->sent_ms + f->confirm_ms > e->until)
		e->until = ask->sent_ms + f->confirm_ms;
}

static void ring_failsafe_asked(void *ctx)
{
	struct ring_failsafe_ask *ask = ctx;
	if (ask->ring->failsafe != NULL)
		ask->ring->failsafe->asking--;
	free(ask);
}

/* Sends a command to every peer; answer(NULL: none wanted). */
static void ring_failsafe_send(struct ring *r, const char *command, uint64_t seq,
			       ring_call_answer_cb *answer, ring_call_done_cb *done, void *ctx)
{
	struct ring_call *call = ring_call_new(r, answer, done, ctx);
	char name[300];
	const char *address;
	unsigned int port;
	for (size_t i = 0; ring_director_peer(r, i, name, sizeof(name), &address, &port); i++)
		ring_call_add_node(call, name, address, port);
	sbuf_appendf(ring_call_text(call), "%s\t%llu\n", command, (unsigned long long)seq);
	ring_call_go(call);
}

static void ring_failsafe_ignore(void *ctx, const char *node, const char *error,
				 const char *payload, size_t len)
{
	(void)ctx;
	(void)node;
	(void)error;
	(void)payload;
	(void)len;
}

static void ring_failsafe_ignore_done(void *ctx)
{
	(void)ctx;
}

bool ring_failsafe_renewed(struct ring *r)
{
	struct ring_failsafe *f = r->failsafe;
	if (f == NULL)
		return false;
	bool was_active = f->active;
	/* answers from before count no more (rule 2) */
	ring_failsafe_clear(&f->held);
	if (f->active) {
		f->active = false;
		evtimer_del(f->expiry);
		ring_report(r, LOG_LEVEL_INFO, "ring: in touch with etcd again: failsafe "
			    "mode ends");
		ring_failsafe_update_frozen(r, clock_monotonic_ms());
	}
	/* the peers it asked are bound by it no longer (rule 6) */
	if (f->asked) {
		f->asked = false;
		ring_failsafe_send(r, "INTOUCH", f->seq, ring_failsafe_ignore,
				   ring_failsafe_ignore_done, NULL);
	}
	return was_active;
}

void ring_failsafe_lease_gone(struct ring *r)
{
	struct ring_failsafe *f = r->failsafe;
	if (f == NULL || !f->active)
		return;
	/* the ring may have gone on without it: fence at once (rule 6) */
	f->active = false;
	f->spent = true;
	evtimer_del(f->expiry);
	ring_failsafe_update_frozen(r, clock_monotonic_ms());
}

void ring_failsafe_loaded(struct ring *r)
{
	if (r->failsafe != NULL)
		r->failsafe->spent = false;	/* rule 7: a view read again */
}

static void ring_failsafe_tick(evutil_socket_t fd, short what, void *arg)
{
	struct ring *r = arg;
	struct ring_failsafe *f = r->failsafe;
	(void)fd;
	(void)what;
	uint64_t now = clock_monotonic_ms();
	if (f->start_bound_until != 0 && f->start_bound_until <= now)
		f->start_bound_until = 0;
	for (size_t i = 0; i < f->given.count;) {
		if (f->given.items[i].until > now) {
			i++;
			continue;
		}
		free(f->given.items[i].name);
		f->given.items[i] = f->given.items[--f->given.count];
	}
	ring_failsafe_update_frozen(r, now);
	/* a node that fenced asks nobody until it has read the ring again */
	if (r->phase == RING_STOPPING || !r->ever_served || f->spent || f->asking > 0 ||
	    !ring_failsafe_out_of_touch(r, now))
		return;
	struct ring_failsafe_ask *ask = xcalloc(1, sizeof(*ask));
	ask->ring = r;
	ask->sent_ms = now;
	f->asking++;
	f->asked = true;
	ring_failsafe_send(r, "CONFIRM?", ++f->seq, ring_failsafe_answer, ring_failsafe_asked,
			   ask);
}

/* ---- the other nodes' messages (rules 1, 5) --------------------------- */

void ring_failsafe_cmd_confirm(struct ring *r, const char *peer, char **args, int nargs,
			       struct sbuf *out)
{
	struct ring_failsafe *f = r->failsafe;
	uint64_t now = clock_monotonic_ms();
	if (f == NULL || nargs != 1 || !ring_failsafe_out_of_touch(r, now)) {
		sbuf_appends(out, "NO\n");
		return;
	}
	struct ring_failsafe_entry *e = ring_failsafe_get(&f->given, peer);
	e->until = now + f->bind_ms;
	e->seq = strtoull(args[0], NULL, 10);
	ring_failsafe_save_bound(r, e->until);
	ring_failsafe_update_frozen(r, now);
	sbuf_appends(out, "YES\n");
}

void ring_failsafe_cmd_intouch(struct ring *r, const char *peer, char **args, int nargs,
			       struct sbuf *out)
{
	struct ring_failsafe *f = r->failsafe;
	(void)out;
	if (f == NULL || nargs != 1)
		return;
	struct ring_failsafe_entry *e = ring_failsafe_find(&f->given, peer);
	/* only the confirmations up to its seq: a newer request may have
	 * overtaken this message */
	if (e == NULL || e->seq > strtoull(args[0], NULL, 10))
		return;
	e->until = 0;
	ring_failsafe_tick(-1, 0, r);
}

/* ---- life ----------------------------------------------------------- */

void ring_failsafe_init(struct ring *r, const struct config *cfg)
{
	if (cfg->ring.partition != CONF_RING_PARTITION_FAILSAFE)
		return;
	if (cfg->ring.secret[0] == '\0' && cfg->ring.tls_cert[0] == '\0') {
		/* the default, in a ring configured before the links */
		ring_report(r, LOG_LEVEL_WARNING, "ring: failsafe mode needs links between "
			    "the nodes (ring.secret or ring.tls_cert): a node cut off from "
			    "etcd fences instead");
		return;
	}
	struct ring_failsafe *f = xcalloc(1, sizeof(*f));
	r->failsafe = f;
	f->confirm_ms = config_failsafe_confirm_ms(cfg);
	f->bind_ms = config_failsafe_bind_ms(cfg);
	f->bound_file = xasprintf("%s/failsafe-bound", cfg->base_dir);
	f->tick = event_new(r->base, -1, EV_PERSIST, ring_failsafe_tick, r);
	f->expiry = evtimer_new(r->base, ring_failsafe_expired, r);
	/* before any socket of the same turn (as the fence's timers) */
	(void)event_priority_set(f->expiry, 0);
	uint64_t ms = f->confirm_ms / 3;
	struct timeval tv = { (time_t)(ms / 1000), (suseconds_t)(ms % 1000) * 1000 };
	evtimer_add(f->tick, &tv);
	uint64_t now = clock_monotonic_ms();
	ring_failsafe_load_bound(r, now);
	ring_failsafe_update_frozen(r, now);
}

void ring_failsafe_deinit(struct ring *r)
{
	struct ring_failsafe *f = r->failsafe;
	if (f == NULL)
		return;
	event_free(f->tick);
	event_free(f->expiry);
	ring_failsafe_clear(&f->held);
	ring_failsafe_clear(&f->given);
	free(f->held.items);
	free(f->given.items);
	free(f->bound_file);
	free(f);
	r->failsafe = NULL;
}
