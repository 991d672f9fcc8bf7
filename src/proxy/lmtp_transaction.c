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
		lmtp_backend_free(&t->routes[i].backend);
	t->nroutes = 0;
	t->missing = 0;
	t->delivering = false;
	lmtp_transaction_rcpt_clear(t);
}

void lmtp_transaction_deinit(struct lmtp_transaction *t)
{
	lmtp_transaction_reset(t);
	free(t->routes);
	free(t->rcpts);
}

void lmtp_transaction_answer(struct lmtp_transaction *t, const char *line, bool accepted)
{
	free(t->rcpt_reply);
	t->rcpt_reply = xstrdup(line);
	t->rcpt_accepted = accepted;
	t->wake(t->ctx);
}

/* ---- backend callbacks: record, then wake the owner -------------------- */

static size_t lmtp_transaction_route_of(struct lmtp_transaction *t, struct lmtp_backend *b)
{
	size_t i = 0;
	while (t->routes[i].backend != b)
		i++;
	return i;
}

static void lmtp_transaction_ready(void *ctx, struct lmtp_backend *b)
{
	struct lmtp_transaction *t = ctx;
	lmtp_backend_mail(b, t->mail_from, t->mail_body);
}

static void lmtp_transaction_reply(void *ctx, struct lmtp_backend *b, int code,
				   const char *line)
{
	struct lmtp_transaction *t = ctx;
	struct lmtp_route *r = &t->routes[lmtp_transaction_route_of(t, b)];
	if (!r->mail_done) {
		r->mail_done = true;
		r->mail_ok = code / 100 == 2;
		if (r->mail_ok)
			lmtp_backend_rcpt(b, t->rcpt_dest);
		else
			lmtp_transaction_answer(t, line, false);	/* the MAIL refusal */
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

static void lmtp_transaction_failed(void *ctx, struct lmtp_backend *b, const char *error)
{
	struct lmtp_transaction *t = ctx;
	size_t route = lmtp_transaction_route_of(t, b);
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

void lmtp_transaction_ask(struct lmtp_transaction *t, const struct ipaddr *ip,
			  uint16_t port, const char *dest,
			  const struct lmtp_client_params *params)
{
	free(t->rcpt_dest);
	t->rcpt_dest = xstrdup(dest);
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
	r->backend = lmtp_backend_new(t->proxy, ip, port, params,
				      &lmtp_transaction_backend_cb, t);
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
