/* LMTP from the MTA (RFC 2033), the side loft serves, as a pure machine:
 * bytes in, replies out, and events for its owner (proxy/lmtp_session.c),
 * which looks recipients up, routes them and delivers:
 *
 *   S: 220 <hostname> <greeting>
 *   C: LHLO name     S: 250-<hostname> 8BITMIME ENHANCEDSTATUSCODES SIZE
 *                       PIPELINING [XCLIENT]      -> LMTP_FRONT_EV_RESET
 *   C: MAIL FROM:<path> [SIZE=n] [BODY=7BIT|8BITMIME]   S: 250 | 5xx
 *   C: RCPT TO:<path> -> LMTP_FRONT_EV_RCPT; the owner answers it with
 *                       lmtp_front_rcpt_done(), maybe many turns later
 *   C: DATA          S: 354 (once a recipient was accepted)
 *   C: the body, dot-stuffed, up to "." -> LMTP_FRONT_EV_MESSAGE; the
 *                       owner writes one reply per accepted recipient,
 *                       then calls lmtp_front_data_done()
 *   C: RSET -> EV_RESET | NOOP | QUIT -> EV_CLOSE
 *   C: XCLIENT ADDR= PORT= SESSION= TTL= (trusted) -> LMTP_FRONT_EV_XCLIENT
 *
 * One command at a time, except recipients: while the owner has a message,
 * feed() takes nothing, and while it has recipients to answer (`asking`)
 * it takes only more RCPTs, so that a pipelining MTA's recipients are
 * looked up and asked together; other pipelined commands wait in the
 * owner's buffer. Replies stay in the commands' order: an RCPT the front
 * refuses itself while the owner is asking is handed to the owner too
 * (rcpt_refusal), to be answered in its turn.
 * A command line longer than max_line is answered "500 5.5.2 Line too
 * long" as soon as it is seen, and the rest of it is dropped as it comes,
 * however long, as Dovecot's lmtp does; the session goes on.
 *
 * The body is kept as sent, dot-stuffed, with ".\r\n" at its end: that is
 * what every backend is sent, so it is neither unstuffed nor copied
 * again. Its size is counted unstuffed and without the final dot (RFC
 * 1870), as the SIZE announced in LHLO means. */
#ifndef LOFT_PROTO_LMTP_FRONT_H
#define LOFT_PROTO_LMTP_FRONT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "common/sbuf.h"
#include "proto/front.h"

enum lmtp_front_event {
	LMTP_FRONT_EV_NONE,	/* send the output; feed more input */
	LMTP_FRONT_EV_RESET,	/* the transaction is over (LHLO, RSET, a
				 * refused message): drop its recipients */
	LMTP_FRONT_EV_XCLIENT,	/* a trusted relay named the client in
				 * `forward`; the transaction is over too */
	LMTP_FRONT_EV_RCPT,	/* route `rcpt`, or pass `rcpt_refusal` back;
				 * either way the owner takes the pointer and
				 * answers lmtp_front_rcpt_done() in order */
	LMTP_FRONT_EV_MESSAGE,	/* deliver `body`; answer lmtp_front_data_done() */
	LMTP_FRONT_EV_CLOSE,	/* QUIT: send the output, then close */
};

struct lmtp_front_params {
	const char *hostname;
	const char *greeting;
	size_t max_line;		/* longest command line, without CRLF */
	uint64_t max_message_size;	/* SIZE; larger messages are refused */
	bool trusted;			/* may say XCLIENT */
};

struct lmtp_front {
	struct lmtp_front_params params;
	int state;			/* enum lmtp_front_state, in the .c */
	bool skipping;			/* dropping the rest of a long line */
	struct front_forward forward;	/* what a trusted XCLIENT said */

	/* the transaction: mail_from NULL when there is none */
	char *mail_from;		/* the reverse path, "" for <> */
	const char *mail_body;		/* BODY= as given, or NULL */
	char *rcpt;			/* EV_RCPT: the recipient, for the owner */
	char *rcpt_refusal;		/* EV_RCPT: or the reply refusing it */
	unsigned int asking;		/* recipients the owner has not answered */
	unsigned int accepted;		/* recipients accepted so far */

	/* the message, after DATA */
	struct sbuf body;		/* as sent, ".\r\n" at its end */
	uint64_t body_size;		/* unstuffed, without the final dot */
	bool body_mid_line;		/* the last piece ended no line */
	bool body_too_big;		/* counted on, no longer kept */
};

void lmtp_front_init(struct lmtp_front *f, const struct lmtp_front_params *params);
void lmtp_front_deinit(struct lmtp_front *f);
void lmtp_front_greet(struct lmtp_front *f, struct sbuf *out);

/* Handles what buf holds until an event or until it needs more input
 * (*consumed_r says how far it got; the rest must be offered again with
 * what follows). Lines are parsed in place, so buf is modified. */
enum lmtp_front_event lmtp_front_feed(struct lmtp_front *f, unsigned char *buf,
				      size_t len, size_t *consumed_r, struct sbuf *out);

/* The answer to the oldest unanswered recipient of LMTP_FRONT_EV_RCPT:
 * its reply line (without CRLF), and whether it counts as accepted. */
void lmtp_front_rcpt_done(struct lmtp_front *f, const char *reply, bool accepted,
			  struct sbuf *out);
/* Every accepted recipient's verdict on the message has been written:
 * the transaction is over and commands go on. */
void lmtp_front_data_done(struct lmtp_front *f);

#endif
