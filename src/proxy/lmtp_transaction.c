/* An LMTP transaction's backends, its recipients and their verdicts. */
#include "proxy/lmtp_transaction.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "common/xmalloc.h"
#include "proxy/lmtp_backend.h"
#include "proxy/proxy.h"

/* A backend of this transaction. */
struct lmtp_route {
	struct lmtp_backend *backend;
	struct ipaddr ip;
	uint16_t port;
	bool mail_sent, mail_done, mail_ok, failed;
	bool reused;			/* an idle connection, silent since */
	bool retried;			/* a new one replaced it */
	unsigned int inflight;		/* RCPTs sent, replies due */
	unsigned int discard;		/* replies to RCPTs after a refused MAIL */
	char *refusal;			/* the refused MAIL's reply */
	const char *error;
	unsigned int accepted;		/* recipients it took */
};

void lmtp_transaction_init(struct lmtp_transaction *t, struct proxy *proxy,
			   void (*wake)(void *ctx), void *ctx)
{
	memset(t, 0, sizeof(*t));
	t->proxy = proxy;
	t->wake = wake;
	t->ctx = ctx;
}

static void lmtp_transaction_asks_clear(struct lmtp_transaction *t)
{
	for (size_t i = 0; i < t->nasks; i++) {
		free(t->asks[i].dest);
		free(t->asks[i].reply);
	}
	t->nasks = t->asks_done = 0;
}

static void lmtp_transaction_free_dead(struct lmtp_transaction *t)
{
	for (size_t i = 0; i < t->ndead; i++)
		lmtp_backend_free(&t->dead[i]);
	t->ndead = 0;
}

/* Keeps an idle connection for the session's next transactions, up to
 * lmtp.max_idle_backends; closes any other. */
static void lmtp_transaction_keep(struct lmtp_transaction *t, struct lmtp_backend **b)
{
	if (*b != NULL && lmtp_backend_is_idle(*b) &&
	    t->nidle < t->proxy->cfg->lmtp.max_idle_backends) {
		t->idle = xgrow(t->idle, &t->idle_cap, t->nidle + 1, sizeof(*t->idle));
		t->idle[t->nidle++] = *b;
		*b = NULL;
		return;
	}
	lmtp_backend_free(b);
}

void lmtp_transaction_reset(struct lmtp_transaction *t)
{
	time_t now = time(NULL);
	for (size_t i = 0; i < t->nrcpts; i++) {
		director_release(t->proxy->director, &t->rcpts[i].ticket, now);
		free(t->rcpts[i].address);
		free(t->rcpts[i].reply);
	}
	t->nrcpts = 0;
	for (size_t i = 0; i < t->nroutes; i++) {
		lmtp_transaction_keep(t, &t->routes[i].backend);
		free(t->routes[i].refusal);
	}
	t->nroutes = 0;
	lmtp_transaction_free_dead(t);
	t->missing = 0;
	t->delivering = false;
	lmtp_transaction_asks_clear(t);
}

void lmtp_transaction_close_idle(struct lmtp_transaction *t)
{
	for (size_t i = 0; i < t->nidle; i++)
		lmtp_backend_free(&t->idle[i]);
	t->nidle = 0;
}

void lmtp_transaction_deinit(struct lmtp_transaction *t)
{
	lmtp_transaction_reset(t);
	lmtp_transaction_close_idle(t);
	free(t->routes);
	free(t->rcpts);
	free(t->asks);
	free(t->idle);
	free(t->dead);
}

static void lmtp_transaction_answer(struct lmtp_transaction *t, struct lmtp_ask *a,
				    const char *line, bool accepted)
{
	a->reply = xstrdup(line);
	a->accepted = accepted;
	t->wake(t->ctx);
}

/* The route's oldest unanswered ask, sent or not (NULL: none). */
static struct lmtp_ask *lmtp_transaction_ask_of(struct lmtp_transaction *t, size_t route,
						bool sent)
{
	for (size_t i = t->asks_done; i < t->nasks; i++) {
		struct lmtp_ask *a = &t->asks[i];
		if (a->route == route && a->reply == NULL && a->sent == sent)
			return a;
	}
	return NULL;
}

/* Answers every ask of the route not answered yet. */
static void lmtp_transaction_answer_route(struct lmtp_transaction *t, size_t route,
					  const char *line)
{
	for (size_t i = t->asks_done; i < t->nasks; i++) {
		struct lmtp_ask *a = &t->asks[i];
		if (a->route == route && a->reply == NULL)
			lmtp_transaction_answer(t, a, line, false);
	}
}

/* ---- backend callbacks: record, then wake the owner -------------------- */

/* The route of a backend; nroutes for one kept idle. */
static size_t lmtp_transaction_route_of(struct lmtp_transaction *t, struct lmtp_backend *b)
{
	size_t i = 0;
	while (i < t->nroutes && t->routes[i].backend != b)
		i++;
	return i;
}

/* Sends the route's waiting RCPTs: all of them behind MAIL when the
 * backend takes pipelined commands (a round trip for the lot), else the
 * next one once MAIL and the one before are answered. */
static void lmtp_transaction_route_pump(struct lmtp_transaction *t, size_t route)
{
	struct lmtp_route *r = &t->routes[route];
	bool pipelining = r->mail_sent && lmtp_backend_can_pipeline(r->backend);
	struct lmtp_ask *a;
	while ((pipelining || (r->mail_ok && r->inflight == 0)) &&
	       (a = lmtp_transaction_ask_of(t, route, false)) != NULL) {
		lmtp_backend_rcpt(r->backend, a->dest);
		a->sent = true;
		r->inflight++;
	}
}

/* MAIL to a route's connection, and its recipients. */
static void lmtp_transaction_route_start(struct lmtp_transaction *t, size_t route)
{
	struct lmtp_route *r = &t->routes[route];
	lmtp_backend_mail(r->backend, t->mail_from, t->mail_body);
	r->mail_sent = true;
	lmtp_transaction_route_pump(t, route);
}

static const struct lmtp_backend_callbacks lmtp_transaction_backend_cb;

/* A new connection for the route, which starts over at MAIL. */
static void lmtp_transaction_route_connect(struct lmtp_transaction *t, struct lmtp_route *r)
{
	r->backend = lmtp_backend_new(t->proxy, &r->ip, r->port, &t->params,
				      &lmtp_transaction_backend_cb, t);
}

static void lmtp_transaction_ready(void *ctx, struct lmtp_backend *b)
{
	struct lmtp_transaction *t = ctx;
	lmtp_transaction_route_start(t, lmtp_transaction_route_of(t, b));
}

/* Replies come in the order of the commands: MAIL's, then each RCPT's.
 * A refused MAIL answers every recipient of the backend; the replies to
 * RCPTs pipelined behind it are dropped. */
static void lmtp_transaction_reply(void *ctx, struct lmtp_backend *b, int code,
				   const char *line)
{
	struct lmtp_transaction *t = ctx;
	size_t route = lmtp_transaction_route_of(t, b);
	if (route == t->nroutes)
		return;	/* (none is due from a kept one) */
	struct lmtp_route *r = &t->routes[route];
	struct lmtp_ask *a;
	r->reused = false;	/* it answered: it was alive */
	if (!r->mail_done) {
		r->mail_done = true;
		r->mail_ok = code / 100 == 2;
		if (!r->mail_ok) {
			r->refusal = xstrdup(line);
			r->discard = r->inflight;
			r->inflight = 0;
			lmtp_transaction_answer_route(t, route, line);
		}
		lmtp_transaction_route_pump(t, route);
		return;
	}
	if (r->discard > 0) {
		r->discard--;
		return;
	}
	if (r->inflight == 0 || (a = lmtp_transaction_ask_of(t, route, true)) == NULL)
		return;	/* (lmtp_client sends no event for a reply it did not expect) */
	r->inflight--;
	lmtp_transaction_answer(t, a, line, code / 100 == 2);
	lmtp_transaction_route_pump(t, route);
}

/* The k-th verdict belongs to the route's k-th accepted recipient; one
 * that stands for `all` (a refused DATA) to each of them. */
static void lmtp_transaction_data_reply(void *ctx, struct lmtp_backend *b, int code,
					const char *line, bool all)
{
	struct lmtp_transaction *t = ctx;
	size_t route = lmtp_transaction_route_of(t, b);
	unsigned int seen = 0;
	(void)code;
	for (size_t i = 0; i < t->nrcpts; i++) {
		struct lmtp_rcpt *rc = &t->rcpts[i];
		if (rc->route != route || rc->reply != NULL)
			continue;
		if (!all && seen++ != 0)
			break;
		rc->reply = xstrdup(line);
		t->missing--;
	}
	t->wake(t->ctx);
}

/* A backend given up answers for the recipients being asked of it, and
 * during the delivery for each of its recipients. */
static void lmtp_transaction_route_failed(struct lmtp_transaction *t, size_t route)
{
	char text[256];
	snprintf(text, sizeof(text), "451 4.4.0 Remote server not answering (%s)",
		 t->routes[route].error);
	lmtp_transaction_answer_route(t, route, text);
	for (size_t i = 0; t->delivering && i < t->nrcpts; i++) {
		if (t->rcpts[i].route == route && t->rcpts[i].reply == NULL) {
			t->rcpts[i].reply = xstrdup(text);
			t->missing--;
		}
	}
	t->wake(t->ctx);
}

/* A kept connection that fails before its first answer was most likely
 * closed by the backend while it was idle (its idle timeout, a restart):
 * a new one takes its place, once. One that fails while kept is only
 * marked failed, and closed when it is looked at next. */
static void lmtp_transaction_failed(void *ctx, struct lmtp_backend *b, const char *error)
{
	struct lmtp_transaction *t = ctx;
	size_t route = lmtp_transaction_route_of(t, b);
	if (route == t->nroutes)
		return;
	struct lmtp_route *r = &t->routes[route];
	if (r->reused && !r->retried) {
		/* freed later: the backend is still on the stack */
		t->dead = xgrow(t->dead, &t->dead_cap, t->ndead + 1, sizeof(*t->dead));
		t->dead[t->ndead++] = b;
		r->reused = false;
		r->retried = true;
		r->mail_sent = false;
		r->inflight = 0;
		for (size_t i = t->asks_done; i < t->nasks; i++) {
			if (t->asks[i].route == route)
				t->asks[i].sent = false;	/* asked again */
		}
		lmtp_transaction_route_connect(t, r);
		return;
	}
	t->routes[route].failed = true;
	t->routes[route].error = error;
	lmtp_transaction_route_failed(t, route);
}

static const struct lmtp_backend_callbacks lmtp_transaction_backend_cb = {
	.ready = lmtp_transaction_ready,
	.reply = lmtp_transaction_reply,
	.data_reply = lmtp_transaction_data_reply,
	.failed = lmtp_transaction_failed,
};

/* ---- the owner's steps ------------------------------------------------- */

/* A kept connection to ip:port, taken out of the idle ones; those that
 * failed while kept are closed on the way. */
static struct lmtp_backend *lmtp_transaction_take_idle(struct lmtp_transaction *t,
							const struct ipaddr *ip, uint16_t port)
{
	struct lmtp_backend *found = NULL;
	size_t kept = 0;
	for (size_t i = 0; i < t->nidle; i++) {
		struct lmtp_backend *b = t->idle[i];
		if (found == NULL && lmtp_backend_is(b, ip, port) && lmtp_backend_is_idle(b))
			found = b;
		else if (!lmtp_backend_is_idle(b))
			lmtp_backend_free(&b);
		else
			t->idle[kept++] = b;
	}
	t->nidle = kept;
	return found;
}

/* The route to ip:port: the transaction's connection there, else a new
 * one (a kept one if there is) that sends MAIL once it is ready. */
static size_t lmtp_transaction_route(struct lmtp_transaction *t, const struct ipaddr *ip,
				     uint16_t port)
{
	for (size_t i = 0; i < t->nroutes; i++) {
		struct lmtp_route *r = &t->routes[i];
		if (!r->failed && lmtp_backend_is(r->backend, ip, port))
			return i;
	}
	t->routes = xgrow(t->routes, &t->routes_cap, t->nroutes + 1, sizeof(*t->routes));
	size_t route = t->nroutes++;
	struct lmtp_route *r = &t->routes[route];
	memset(r, 0, sizeof(*r));
	r->ip = *ip;
	r->port = port;
	r->backend = lmtp_transaction_take_idle(t, ip, port);
	if (r->backend == NULL)
		lmtp_transaction_route_connect(t, r);
	else
		r->reused = true;	/* MAIL goes now, with this ask */
	return route;
}

size_t lmtp_transaction_ask(struct lmtp_transaction *t, const struct ipaddr *ip,
			    uint16_t port, const char *dest,
			    const struct lmtp_client_params *params)
{
	t->params = *params;
	size_t route = lmtp_transaction_route(t, ip, port);
	struct lmtp_route *r = &t->routes[route];
	t->asks = xgrow(t->asks, &t->asks_cap, t->nasks + 1, sizeof(*t->asks));
	size_t k = t->nasks++;
	struct lmtp_ask *a = &t->asks[k];
	memset(a, 0, sizeof(*a));
	a->dest = xstrdup(dest);
	a->route = route;
	if (r->refusal != NULL)
		lmtp_transaction_answer(t, a, r->refusal, false);
	else if (r->reused && !r->mail_sent)
		lmtp_transaction_route_start(t, route);
	else
		lmtp_transaction_route_pump(t, route);
	return k;
}

const char *lmtp_transaction_answer_of(const struct lmtp_transaction *t, size_t ask,
				       bool *accepted_r)
{
	*accepted_r = t->asks[ask].accepted;
	return t->asks[ask].reply;
}

void lmtp_transaction_rcpt_done(struct lmtp_transaction *t, size_t ask,
				const char *address, struct director_ticket *ticket)
{
	const struct lmtp_ask *a = &t->asks[ask];
	if (a->accepted) {
		t->rcpts = xgrow(t->rcpts, &t->rcpts_cap, t->nrcpts + 1, sizeof(*t->rcpts));
		struct lmtp_rcpt *rc = &t->rcpts[t->nrcpts++];
		memset(rc, 0, sizeof(*rc));
		rc->address = xstrdup(address);
		rc->route = a->route;
		rc->ticket = *ticket;	/* held until the delivery is over */
		ticket->held = false;
		t->routes[a->route].accepted++;
	}
	if (++t->asks_done == t->nasks)
		lmtp_transaction_asks_clear(t);
}

void lmtp_transaction_deliver(struct lmtp_transaction *t, const char *body, size_t len)
{
	t->delivering = true;
	t->missing = t->nrcpts;
	for (size_t i = 0; t->missing > 0 && i < t->nroutes; i++) {
		struct lmtp_route *r = &t->routes[i];
		if (r->accepted == 0)
			continue;
		if (r->failed)
			lmtp_transaction_route_failed(t, i);
		else
			lmtp_backend_data(r->backend, r->accepted, body, len);
	}
}

void lmtp_transaction_flush(struct lmtp_transaction *t)
{
	for (size_t i = 0; i < t->nroutes; i++) {
		if (t->routes[i].backend != NULL)
			lmtp_backend_flush(t->routes[i].backend);
	}
}

void lmtp_transaction_route_addr(const struct lmtp_transaction *t, size_t i,
				 struct ipaddr *ip_r, uint16_t *port_r)
{
	const struct lmtp_route *r = &t->routes[t->rcpts[i].route];
	*ip_r = r->ip;
	*port_r = r->port;
}
