/* The node's lease, and fencing (doc/ring.md §6).
 *
 * The lease is renewed every lease_ttl/3. The fence deadline is counted
 * on the monotonic clock from the moment the last successful renewal was
 * *sent*: etcd never lets the lease go earlier than that plus the TTL, so
 * a node that fences itself at the deadline has stopped serving before
 * the rest of the ring can stop waiting for it. With ring.partition =
 * serve a cut-off node keeps routing and warns once a minute instead.
 *
 * Back in touch: a renewal that works means the node's keys are still
 * there, but what it missed is not known, so the state is read again
 * before it serves; a lease that is gone means a new lease and a new
 * membership first (ring_rejoin). */
#include <event2/event.h>

#include "common/clock.h"
#include "ring/etcd.h"
#include "ring/ring_private.h"

#define RING_WARN_EVERY_MS 60000
/* fenced this much before the deadline: libevent's coarse clock may fire
 * a timer a few ms early, and closing the sessions takes a moment */
#define RING_FENCE_MARGIN_MS 50

static void ring_lease_arm(struct ring *r)
{
	uint64_t ms = r->ttl_ms / 3;
	struct timeval tv = { (time_t)(ms / 1000), (suseconds_t)(ms % 1000) * 1000 };
	evtimer_add(r->lease_timer, &tv);
}

static bool ring_cut_off(const struct ring *r)
{
	return r->lease == 0 || clock_monotonic_ms() >= r->fence_at_ms;
}

void ring_lease_withhold(struct ring *r)
{
	r->fenced = true;
	/* the relay deadline stays where it was, in the past: a client's
	 * bytes that arrive before its session's goodbye reach no backend */
	if (!r->withheld) {
		r->withheld = true;
		r->cb.serving(r->ctx, false);
	}
}

void ring_lease_check(struct ring *r)
{
	if (r->phase == RING_REMOVED)
		return;	/* out until an admin adds it back */
	bool cut_off = ring_cut_off(r);
	uint64_t now = clock_monotonic_ms();
	if (cut_off && !r->fenced && !ring_failsafe_active(r)) {
		if (ring_failsafe_at_deadline(r))
			return;		/* every peer confirmed: serving on */
		r->fenced = true;
		r->warned_ms = now;
		if (r->serve_cut_off) {
			ring_report(r, LOG_LEVEL_WARNING, "ring: cut off from etcd past the "
				    "lease (%llu ms): still routing on the last state "
				    "(ring.partition = serve); users may reach two backends "
				    "if the ring changes meanwhile",
				    (unsigned long long)r->ttl_ms);
		} else {
			ring_report(r, LOG_LEVEL_ERROR, "ring: cut off from etcd past the "
				    "lease (%llu ms): fenced, no logins are served until etcd "
				    "answers again", (unsigned long long)r->ttl_ms);
			ring_lease_withhold(r);
		}
	} else if (cut_off && r->serve_cut_off && now - r->warned_ms >= RING_WARN_EVERY_MS) {
		r->warned_ms = now;
		ring_report(r, LOG_LEVEL_WARNING, "ring: still cut off from etcd: routing "
			    "on the last state; users may reach two backends if the ring "
			    "changes meanwhile");
	} else if (!cut_off && r->fenced && r->phase == RING_SERVING) {
		r->fenced = false;
		ring_report(r, LOG_LEVEL_INFO, "ring: in touch with etcd again: serving");
		if (r->withheld) {
			r->withheld = false;
			r->cb.serving(r->ctx, true);
		}
	}
}

/* The fence is checked at the deadline itself, not only on the next
 * renewal tick (up to lease_ttl/3 later, while etcd may have let the
 * lease go and the others routed the node's users elsewhere). */
static void ring_fence_arm(struct ring *r)
{
	if (r->fence_timer == NULL)
		return;		/* stopping */
	uint64_t now = clock_monotonic_ms();
	uint64_t ms = r->fence_at_ms > now ? r->fence_at_ms - now : 0;
	struct timeval tv = { (time_t)(ms / 1000), (suseconds_t)(ms % 1000) * 1000 };
	evtimer_add(r->fence_timer, &tv);
}

static void ring_fence_due(evutil_socket_t fd, short what, void *arg)
{
	struct ring *r = arg;
	(void)fd;
	(void)what;
	if (r->phase == RING_STOPPING || r->lease == 0 || !r->ever_served)
		return;
	if (clock_monotonic_ms() < r->fence_at_ms) {
		ring_fence_arm(r);	/* fired early (coarse clock) */
		return;
	}
	ring_lease_check(r);
}

void ring_lease_set(struct ring *r, int64_t id, uint64_t sent_ms, int64_t ttl_s)
{
	r->lease = id;
	r->renewed_sent_ms = sent_ms;
	uint64_t ttl_ms = ttl_s > 0 ? (uint64_t)ttl_s * 1000 : r->ttl_ms;
	/* never later than the TTL asked for, whatever etcd says is left */
	if (ttl_ms > r->ttl_ms)
		ttl_ms = r->ttl_ms;
	r->fence_at_ms = sent_ms + ttl_ms - (ttl_ms > 2 * RING_FENCE_MARGIN_MS ?
					    RING_FENCE_MARGIN_MS : 0);
	ring_fence_arm(r);
	if (!r->serve_cut_off && r->cb.deadline != NULL)
		r->cb.deadline(r->ctx, r->fence_at_ms);
}

static void ring_keepalive_done(const struct etcd_result *res, void *ctx)
{
	struct ring *r = ctx;
	r->keepalive = NULL;
	if (res->outcome == ETCD_OK && res->lease.ttl > 0) {
		r->ping_ms = (unsigned int)(clock_monotonic_ms() - r->keepalive_sent_ms);
		ring_lease_set(r, r->lease, r->keepalive_sent_ms, res->lease.ttl);
		/* what was missed (fenced, or served failsafe): read it all */
		if (ring_failsafe_renewed(r) || r->fenced)
			ring_rejoin(r, false);
		return;
	}
	if (res->outcome == ETCD_FAILED && res->grpc_code == RING_GRPC_NOT_FOUND) {
		ring_report(r, LOG_LEVEL_WARNING, "ring: this node's lease is gone: "
			    "joining again");
		r->lease = 0;
		ring_failsafe_lease_gone(r);
		ring_lease_check(r);
		ring_rejoin(r, true);
	}
	/* otherwise no answer: the deadline decides */
}

static void ring_lease_tick(evutil_socket_t fd, short what, void *arg)
{
	struct ring *r = arg;
	(void)fd;
	(void)what;
	if (r->phase == RING_STOPPING)
		return;
	if (r->lease != 0 && r->keepalive == NULL) {
		r->keepalive_sent_ms = clock_monotonic_ms();
		r->keepalive = etcd_lease_keepalive(r->etcd, r->lease, ring_keepalive_done, r);
	}
	if (r->ever_served)
		ring_lease_check(r);
	ring_directors_probe(r);
	ring_change_tick(r);
	ring_lease_arm(r);
}

void ring_lease_init(struct ring *r)
{
	r->lease_timer = evtimer_new(r->base, ring_lease_tick, r);
	/* after a stall (a paused VM) the timer and the sockets that became
	 * readable meanwhile are due in the same loop pass: the fence check
	 * runs first, so nothing a client sent meanwhile reaches a backend
	 * the ring may have given the user's successor (a SIGSTOP alone is
	 * safe anyway: epoll_wait() returns EINTR after SIGCONT) */
	(void)event_priority_set(r->lease_timer, 0);
	r->fence_timer = evtimer_new(r->base, ring_fence_due, r);
	(void)event_priority_set(r->fence_timer, 0);
	ring_lease_arm(r);
}

void ring_lease_deinit(struct ring *r)
{
	if (r->lease_timer != NULL) {
		event_free(r->lease_timer);
		r->lease_timer = NULL;
	}
	if (r->fence_timer != NULL) {
		event_free(r->fence_timer);
		r->fence_timer = NULL;
	}
	etcd_request_cancel(&r->keepalive);
}
