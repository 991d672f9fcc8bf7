/* One LMTP mail transaction at the backends (MAIL, RCPTs, DATA): a
 * connection per backend that has recipients, shared by all of them and
 * kept, when it ends idle, for the session's next transactions (up to
 * lmtp.max_idle_backends; a kept one the backend closed meanwhile is
 * replaced by a new one, once); the recipients being asked, several at
 * once (each backend's in one pipelined batch when it offers
 * PIPELINING, else one after another); the accepted recipients, whose
 * director tickets it holds until the delivery is over; and the
 * backends' verdicts on the message, kept in RCPT order. Driven by lmtp_session.c: backend events
 * are only recorded here, and the owner is woken to look at them on its
 * own turn, so backends are freed only from the owner's events.
 * Embedded in the session. Internal to src/proxy. */
#ifndef LOFT_PROXY_LMTP_TRANSACTION_H
#define LOFT_PROXY_LMTP_TRANSACTION_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "common/net.h"
#include "director/director.h"
#include "proto/lmtp_client.h"

struct proxy;
struct lmtp_route;

/* A recipient being asked, in the order of the asks. */
struct lmtp_ask {
	char *dest;			/* as the backend is to see it */
	size_t route;			/* its backend */
	bool sent;			/* its RCPT went out */
	bool accepted;
	char *reply;			/* NULL until answered */
};

/* An accepted recipient. */
struct lmtp_rcpt {
	char *address;
	size_t route;			/* its backend */
	struct director_ticket ticket;
	char *reply;			/* the verdict on the message */
};

struct lmtp_transaction {
	struct proxy *proxy;
	void (*wake)(void *ctx);	/* something was recorded */
	void *ctx;
	const char *mail_from;		/* MAIL FROM and BODY=, borrowed */
	const char *mail_body;

	struct lmtp_client_params params;	/* the last ask's, borrowed */
	struct lmtp_route *routes;
	size_t nroutes, routes_cap;
	struct lmtp_backend **idle;	/* kept from earlier transactions */
	size_t nidle, idle_cap;
	struct lmtp_backend **dead;	/* replaced, freed at the reset */
	size_t ndead, dead_cap;
	struct lmtp_rcpt *rcpts;
	size_t nrcpts, rcpts_cap;
	size_t missing;			/* verdicts still to come */
	bool delivering;

	/* the recipients being asked; the owner takes their answers in
	 * order, and the last one taken empties the list */
	struct lmtp_ask *asks;
	size_t nasks, asks_cap, asks_done;
};

void lmtp_transaction_init(struct lmtp_transaction *t, struct proxy *proxy,
			   void (*wake)(void *ctx), void *ctx);
/* Idle backends kept, the others closed, tickets released, verdicts
 * dropped: ready for the next transaction. */
void lmtp_transaction_reset(struct lmtp_transaction *t);
/* Closes the kept connections (they carry the client's old XCLIENT). */
void lmtp_transaction_close_idle(struct lmtp_transaction *t);
void lmtp_transaction_deinit(struct lmtp_transaction *t);

/* Asks the backend at ip:port about a recipient (dest: the name it is to
 * see): the connection this transaction has there, or a new one made
 * with params (a kept one if there is), which sends MAIL first. Returns
 * the ask's number, for lmtp_transaction_answer_of(); the owner asks in
 * the order it answers its client, and a backend gets its recipients in
 * that order. */
size_t lmtp_transaction_ask(struct lmtp_transaction *t, const struct ipaddr *ip,
			    uint16_t port, const char *dest,
			    const struct lmtp_client_params *params);
/* The ask's answer, NULL until there is one. */
const char *lmtp_transaction_answer_of(const struct lmtp_transaction *t, size_t ask,
				       bool *accepted_r);
/* The oldest ask is answered and its answer written: an accepted one is
 * kept, with the ticket (which is taken over), until the delivery is
 * over. */
void lmtp_transaction_rcpt_done(struct lmtp_transaction *t, size_t ask,
				const char *address, struct director_ticket *ticket);

/* Writes what was queued for the backends (lmtp_backend_flush()). */
void lmtp_transaction_flush(struct lmtp_transaction *t);
/* Sends the message (dot-stuffed, ".\r\n" at its end, borrowed until the
 * verdicts are in) to every backend with recipients. */
void lmtp_transaction_deliver(struct lmtp_transaction *t, const char *body, size_t len);
static inline bool lmtp_transaction_is_delivered(const struct lmtp_transaction *t)
{
	return t->delivering && t->missing == 0;
}
/* Where the i-th accepted recipient went, for the log. */
void lmtp_transaction_route_addr(const struct lmtp_transaction *t, size_t i,
				 struct ipaddr *ip_r, uint16_t *port_r);

#endif
