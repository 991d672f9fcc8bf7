/* LMTP towards a backend (RFC 2033), one command at a time:
 *
 *   S: 220 greeting           C: LHLO <loft>          S: 250 extensions
 *   C: XCLIENT ADDR= PORT= SESSION= TTL=   (offered)   S: 220; LHLO again
 *   -> LMTP_EV_READY
 *   C: MAIL FROM:<..>  -> LMTP_EV_REPLY      C: RCPT TO:<..>  -> LMTP_EV_REPLY
 *      (MAIL and RCPT may be pipelined when the backend offers PIPELINING:
 *      one REPLY each, in order; a MAIL while the last one's transaction
 *      was never delivered goes after an RSET, whose reply is no event)
 *   C: DATA  -> LMTP_EV_DATA_GO (354: the caller sends the dot-stuffed body)
 *   S: one reply per accepted recipient -> LMTP_EV_DATA_REPLY each (a
 *      refused DATA comes as one DATA_REPLY with data_replies 0: it stands
 *      for every recipient)
 *
 * After the last verdict the connection may serve the next transaction.
 * A pure state machine: bytes in, commands out, events for the owner. */
#ifndef LOFT_PROTO_LMTP_CLIENT_H
#define LOFT_PROTO_LMTP_CLIENT_H

#include <stdbool.h>
#include <stddef.h>

#include "common/net.h"
#include "common/sbuf.h"

enum lmtp_client_event {
	LMTP_EV_NONE,		/* send the output, wait for more input */
	LMTP_EV_READY,		/* greeted and LHLO done: MAIL may follow */
	LMTP_EV_REPLY,		/* the reply to MAIL or RCPT is in code/reply */
	LMTP_EV_DATA_GO,	/* 354: send the body now */
	LMTP_EV_DATA_REPLY,	/* one recipient's verdict is in code/reply */
	LMTP_EV_FAIL,		/* the backend cannot be used: error says why */
};

struct lmtp_client_params {
	const char *hostname;		/* loft's LHLO name */
	bool forward;			/* XCLIENT with the client's address */
	struct ipaddr client_ip;
	uint16_t client_port;
	const char *session_id;
	unsigned int ttl;		/* this hop's; the backend gets ttl-1 */
};

struct lmtp_client {
	struct lmtp_client_params params;
	int state;
	bool xclient, xclient_done;
	bool eightbitmime;		/* offered: BODY= may be sent */
	bool pipelining;		/* offered: RCPT may follow MAIL unanswered */
	bool in_transaction;		/* MAIL sent, its DATA not answered */
	unsigned int pending;		/* MAIL and RCPT replies to come */
	unsigned int rset_replies;	/* RSET replies to come */
	unsigned int data_replies;	/* still to come after the body */
	int code;			/* the last reply's code */
	struct sbuf reply;		/* its last line */
	const char *error;
};

void lmtp_client_init(struct lmtp_client *c, const struct lmtp_client_params *params);
void lmtp_client_deinit(struct lmtp_client *c);
/* Handles complete reply lines; stops at the first event. */
enum lmtp_client_event lmtp_client_feed(struct lmtp_client *c, const unsigned char *buf,
					size_t len, size_t *consumed_r, struct sbuf *out);
/* True while a reply is due: from the greeting to READY, and from each
 * command until its reply (after DATA, until the last verdict). */
bool lmtp_client_owes_reply(const struct lmtp_client *c);
/* True when no reply is due and no DATA was refused: READY. */
bool lmtp_client_is_idle(const struct lmtp_client *c);
/* Commands, once READY and each after the previous one's reply (RCPT
 * after an unanswered MAIL or RCPT when pipelining is offered). body is
 * the client's BODY= value or NULL; it is passed on only when the backend
 * offered 8BITMIME. */
void lmtp_client_mail(struct lmtp_client *c, const char *from, const char *body,
		      struct sbuf *out);
void lmtp_client_rcpt(struct lmtp_client *c, const char *to, struct sbuf *out);
/* DATA for `accepted` recipients: one DATA_REPLY each after the body. */
void lmtp_client_data(struct lmtp_client *c, unsigned int accepted, struct sbuf *out);

#endif
