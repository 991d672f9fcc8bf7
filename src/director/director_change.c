/* Change requests and the completion queue.
 *
 * director_change() hands a change to the handler: the local one applies
 * it through the apply functions; a ring's commits it first. Either way
 * the requester's done callback never runs inside the request, nor inside
 * a walk of the director's tables: it is queued, like a held login's
 * resume and a flush's next step, and the queue runs from its own loop
 * event (B1 of the December review: a completion that ran inline started
 * a second walk that freed what the first one held). */
#include <event2/event.h>
#include <stdlib.h>

#include "common/xmalloc.h"
#include "director/director_private.h"

enum director_completion_kind {
	COMPLETION_RESUME,	/* a held login may route again */
	COMPLETION_DONE,	/* a change request is answered */
	COMPLETION_CALL,	/* internal: the next step of a flush */
};

struct director_completion {
	struct list_node node;
	enum director_completion_kind kind;
	uint64_t waiter;
	director_change_done_cb *done;
	void (*fn)(void *ctx);
	void *ctx;
	struct director_change_result result;
};

static void director_completion_queue(struct director *d, struct director_completion *c)
{
	list_append(&d->completions, &c->node);
	if (d->dispatch_ev != NULL)
		event_active(d->dispatch_ev, EV_TIMEOUT, 1);
}

void director_defer_resume(struct director *d, uint64_t waiter)
{
	struct director_completion *c = xcalloc(1, sizeof(*c));
	c->kind = COMPLETION_RESUME;
	c->waiter = waiter;
	director_completion_queue(d, c);
}

void director_defer_call(struct director *d, void (*fn)(void *ctx), void *ctx)
{
	struct director_completion *c = xcalloc(1, sizeof(*c));
	c->kind = COMPLETION_CALL;
	c->fn = fn;
	c->ctx = ctx;
	director_completion_queue(d, c);
}

static void director_defer_done(struct director *d, director_change_done_cb *done,
				void *ctx, const struct director_change_result *r)
{
	struct director_completion *c = xcalloc(1, sizeof(*c));
	c->kind = COMPLETION_DONE;
	c->done = done;
	c->ctx = ctx;
	c->result = *r;
	director_completion_queue(d, c);
}

static void director_completion_run(struct director *d, struct director_completion *c)
{
	switch (c->kind) {
	case COMPLETION_RESUME:
		if (d->cb.resume != NULL)
			d->cb.resume(d->cb_ctx, c->waiter);
		break;
	case COMPLETION_DONE:
		c->done(c->ctx, &c->result);
		break;
	case COMPLETION_CALL:
		c->fn(c->ctx);
		break;
	}
}

void director_dispatch(struct director *d)
{
	/* what runs now may queue more: that waits for the next round, so
	 * one burst cannot keep the loop to itself */
	size_t n = d->completions.count;
	struct list_node *ln;
	while (n-- > 0 && (ln = list_pop_head(&d->completions)) != NULL) {
		struct director_completion *c =
			CONTAINER_OF(ln, struct director_completion, node);
		director_completion_run(d, c);
		free(c);
	}
	if (!list_is_empty(&d->completions) && d->dispatch_ev != NULL)
		event_active(d->dispatch_ev, EV_TIMEOUT, 1);
}

void director_completions_free(struct director *d)
{
	struct list_node *ln;
	while ((ln = list_pop_head(&d->completions)) != NULL) {
		struct director_completion *c =
			CONTAINER_OF(ln, struct director_completion, node);
		/* a requester still gets its answer (it may own memory for
		 * it); held logins and flush steps have nobody left */
		if (c->kind == COMPLETION_DONE)
			c->done(c->ctx, &c->result);
		free(c);
	}
}

/* ---- the local handler ------------------------------------------------- */

struct director_reset_request {
	struct director *d;
	director_change_done_cb *done;
	void *ctx;
};

/* A flush is over: it runs from the queue already. */
static void director_reset_request_done(void *ctx)
{
	struct director_reset_request *rr = ctx;
	struct director_change_result r = { .result = DIRECTOR_OK };
	rr->done(rr->ctx, &r);
	free(rr);
}

static enum director_result director_change_apply(struct director *d,
						  const struct director_change *c,
						  struct director_change_result *r)
{
	const struct ipaddr *ip = c->all_hosts ? NULL : &c->ip;
	switch (c->type) {
	case DIRECTOR_CHANGE_HOST_SET:
		return director_host_set(d, &c->ip, c->tag, c->vhosts, c->now, &r->error);
	case DIRECTOR_CHANGE_HOST_UPDATE:
		return director_host_update(d, &c->ip, c->vhosts, &r->error);
	case DIRECTOR_CHANGE_HOST_UP:
	case DIRECTOR_CHANGE_HOST_DOWN:
		return director_host_set_down(d, &c->ip,
					      c->type == DIRECTOR_CHANGE_HOST_DOWN, c->now);
	case DIRECTOR_CHANGE_HOST_REMOVE:
		return director_host_remove(d, &c->ip);
	case DIRECTOR_CHANGE_HOST_FLUSH:
		return director_host_flush(d, ip);
	case DIRECTOR_CHANGE_USER_MOVE:
		return director_user_move(d, c->user_hash, &c->ip, c->now);
	case DIRECTOR_CHANGE_USER_KICK:
		if (d->cb.kick != NULL)
			r->kicked = d->cb.kick(d->cb_ctx, c->kick_field, c->kick_value);
		return DIRECTOR_OK;
	case DIRECTOR_CHANGE_HOST_RESET:
		break;
	}
	return DIRECTOR_INVALID;
}

void director_change_apply_local(struct director *d, const struct director_change *c,
				 director_change_done_cb *done, void *done_ctx)
{
	struct director_change_result r = { .result = DIRECTOR_OK };

	if (c->type == DIRECTOR_CHANGE_HOST_RESET) {
		struct director_reset_request *rr = xcalloc(1, sizeof(*rr));
		rr->d = d;
		rr->done = done;
		rr->ctx = done_ctx;
		r.result = director_reset_users(d, c->all_hosts ? NULL : &c->ip,
						c->max_parallel, c->now,
						director_reset_request_done, rr);
		if (r.result == DIRECTOR_OK)
			return;	/* answered when the flush is over */
		free(rr);
	} else {
		r.result = director_change_apply(d, c, &r);
		if (r.result == DIRECTOR_INVALID && r.error == NULL)
			r.error = "invalid change";
	}
	director_defer_done(d, done, done_ctx, &r);
}

void director_change_answer(struct director *d, director_change_done_cb *done,
			    void *done_ctx, enum director_result result,
			    const char *error)
{
	struct director_change_result r = { .result = result, .error = error };
	director_defer_done(d, done, done_ctx, &r);
}

void director_set_change_handler(struct director *d, director_change_handler_fn *fn,
				 void *ctx)
{
	d->change_fn = fn;
	d->change_ctx = ctx;
}

void director_change(struct director *d, const struct director_change *c,
		     director_change_done_cb *done, void *ctx)
{
	if (d->change_fn != NULL)
		d->change_fn(d->change_ctx, c, done, ctx);
	else
		director_change_apply_local(d, c, done, ctx);
}
