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
	bool mail_done, mail_ok, failed;
	bool rcpt_sent;			/* the first RCPT went with MAIL */
	bool reused;			/* an idle connection, silent since */
	bool retried;			/* a new one replaced it */
	unsigned int discard;		/* replies to RCPTs after a refused MAIL */
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

static void lmtp_transaction_rcpt_clear(struct lmtp_transaction *t)
{
	free(t->rcpt_dest);
	free(t->rcpt_reply);
	t->rcpt_dest = t->rcpt_reply = NULL;
	t->rcpt_accepted = false;
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
	for (size_t i = 0; i < t->nroutes; i++)
		lmtp_transaction_keep(t, &t->routes[i].backend);
	t->nroutes = 0;
	lmtp_transaction_free_dead(t);
	t->missing = 0;
	t->delivering = false;
	lmtp_transaction_rcpt_clear(t);
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
	free(t->idle);
	free(t->dead);
}

void lmtp_transaction_answer(struct lmtp_transaction *t, const char *line, bool accepted)
{
	free(t->rcpt_reply);
	t->rcpt_reply = xstrdup(line);
	t->rcpt_accepted = accepted;
	t->wake(t->ctx);
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

/* MAIL to a route's connection, and the recipient being asked with it
 * when the backend takes pipelined commands: a round trip less. */
static void lmtp_transaction_route_start(struct lmtp_transaction *t, struct lmtp_route *r)
{
	lmtp_backend_mail(r->backend, t->mail_from, t->mail_body);
	r->rcpt_sent = lmtp_backend_can_pipeline(r->backend);
	if (r->rcpt_sent)
		lmtp_backend_rcpt(r->backend, t->rcpt_dest);
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
	lmtp_transaction_route_start(t, &t->routes[lmtp_transaction_route_of(t, b)]);
}

static void lmtp_transaction_reply(void *ctx, struct lmtp_backend *b, int code,
				   const char *line)
{
	struct lmtp_transaction *t = ctx;
	struct lmtp_route *r = &t->routes[lmtp_transaction_route_of(t, b)];
	r->reused = false;	/* it answered: it was alive */
	if (!r->mail_done) {
		r->mail_done = true;
		r->mail_ok = code / 100 == 2;
		if (r->mail_ok && !r->rcpt_sent)
			lmtp_backend_rcpt(b, t->rcpt_dest);
		if (!r->mail_ok) {
			if (r->rcpt_sent)
				r->discard++;	/* the pipelined RCPT's reply */
			lmtp_transaction_answer(t, line, false);	/* the MAIL refusal */
		}
		return;
	}
	if (r->discard > 0) {
		r->discard--;
		return;
	}
	lmtp_transaction_answer(t, line, code / 100 == 2);
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

/* A backend given up answers for the recipient being asked of it, and
 * during the delivery for each of its recipients. */
static void lmtp_transaction_route_failed(struct lmtp_transaction *t, size_t route)
{
	char text[256];
	snprintf(text, sizeof(text), "451 4.4.0 Remote server not answering (%s)",
		 t->routes[route].error);
	if (t->rcpt_dest != NULL && t->rcpt_route == route && t->rcpt_reply == NULL)
		lmtp_transaction_answer(t, text, false);
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
		r->rcpt_sent = false;
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

void lmtp_transaction_ask(struct lmtp_transaction *t, const struct ipaddr *ip,
			  uint16_t port, const char *dest,
			  const struct lmtp_client_params *params)
{
	free(t->rcpt_dest);
	t->rcpt_dest = xstrdup(dest);
	t->params = *params;
	for (size_t i = 0; i < t->nroutes; i++) {
		struct lmtp_route *r = &t->routes[i];
		if (r->failed || !lmtp_backend_is(r->backend, ip, port))
			continue;
		t->rcpt_route = i;
		if (!r->mail_ok)
			lmtp_transaction_answer(t, "451 4.4.0 The backend refused the sender",
						false);
		else
			lmtp_backend_rcpt(r->backend, dest);
		return;
	}
	t->routes = xgrow(t->routes, &t->routes_cap, t->nroutes + 1, sizeof(*t->routes));
	struct lmtp_route *r = &t->routes[t->nroutes];
	memset(r, 0, sizeof(*r));
	r->ip = *ip;
	r->port = port;
	t->rcpt_route = t->nroutes++;
	r->backend = lmtp_transaction_take_idle(t, ip, port);
	if (r->backend == NULL) {
		lmtp_transaction_route_connect(t, r);
		return;
	}
	r->reused = true;
	lmtp_transaction_route_start(t, r);
}

char *lmtp_transaction_rcpt_done(struct lmtp_transaction *t, const char *address,
				 struct director_ticket *ticket)
{
	char *reply = t->rcpt_reply;
	if (t->rcpt_accepted) {
		t->rcpts = xgrow(t->rcpts, &t->rcpts_cap, t->nrcpts + 1, sizeof(*t->rcpts));
		struct lmtp_rcpt *rc = &t->rcpts[t->nrcpts++];
		memset(rc, 0, sizeof(*rc));
		rc->address = xstrdup(address);
		rc->route = t->rcpt_route;
		rc->ticket = *ticket;	/* held until the delivery is over */
		ticket->held = false;
		t->routes[t->rcpt_route].accepted++;
	}
	t->rcpt_reply = NULL;
	lmtp_transaction_rcpt_clear(t);
	return reply;
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

void lmtp_transaction_route_addr(const struct lmtp_transaction *t, size_t i,
				 struct ipaddr *ip_r, uint16_t *port_r)
{
	const struct lmtp_route *r = &t->routes[t->rcpts[i].route];
	*ip_r = r->ip;
	*port_r = r->port;
}
