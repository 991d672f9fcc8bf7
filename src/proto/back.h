/* The backend side of a protocol until login: a pure state machine that
 * reads the backend's lines, writes commands to it, and ends with the
 * backend's verdict. The session moves bytes and TLS; each protocol
 * provides a struct back_ops. */
#ifndef LOFT_PROTO_BACK_H
#define LOFT_PROTO_BACK_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "common/net.h"
#include "common/sbuf.h"

/* Longest line a backend may send during login. */
#define BACK_MAX_LINE 65536

struct back_params {
	const char *user;		/* login name at the backend */
	const char *password;
	/* a master user's login: PLAIN with authcid master_user and
	 * authzid user (Dovecot's master= field, reference §10.1); NULL:
	 * none */
	const char *master_user;
	bool use_sasl;			/* log in with AUTHENTICATE/AUTH PLAIN */
	/* a pass-through mechanism (sasl.h): log in with it, its first
	 * message sasl_ir (decoded), and relay the backend's challenges
	 * (BACK_EV_CHALLENGE); NULL: PLAIN with user and password */
	const char *sasl_mech;
	const unsigned char *sasl_ir;
	size_t sasl_ir_len;
	bool starttls;			/* upgrade with STARTTLS/STLS first */
	bool tls_active;		/* the connection is already TLS */
	bool forward;			/* send the client's address (ID/XCLIENT) */
	struct ipaddr client_ip;
	uint16_t client_port;
	struct ipaddr local_ip;
	uint16_t local_port;
	const char *session_id;
	/* IMAP: the client's own ID fields (IMAP strings) to send before
	 * loft's x-* fields (imap_id_retain); NULL or "" for none */
	const char *client_id;
	const char *helo;		/* Submission: the client's EHLO name */
	const char *hostname;		/* Submission: loft's EHLO name */
	unsigned int ttl;		/* this hop's TTL; the backend gets ttl-1 */
};

enum back_event {
	BACK_EV_NONE,		/* send the output, wait for more input */
	BACK_EV_STARTTLS,	/* send the output, start TLS, call tls_started */
	BACK_EV_OK,		/* logged in: back->reply is the success text */
	BACK_EV_FAIL,		/* back->fail says how, back->reply / error why */
	/* a pass-through exchange: send the output, give back->challenge
	 * (base64 as the backend sent it) to the client, and its answer to
	 * back_sasl_respond() */
	BACK_EV_CHALLENGE,
};

enum back_fail {
	BACK_FAIL_AUTH,		/* wrong credentials: the generic failure */
	BACK_FAIL_REPLY,	/* a NO with its own code: pass it through */
	BACK_FAIL_TEMP,		/* the backend cannot serve now */
};

struct back {
	const struct back_ops *ops;
	struct back_params params;	/* strings borrowed from the session */
	char *reply;			/* BACK_EV_OK / BACK_FAIL_REPLY text */
	enum back_fail fail;
	const char *error;		/* for the log: what went wrong */
	struct sbuf challenge;		/* after BACK_EV_CHALLENGE */
	bool done;			/* BACK_EV_OK or BACK_EV_FAIL was returned */
};

struct back_ops {
	struct back *(*create)(const struct back_params *params);
	void (*destroy)(struct back *back);
	enum back_event (*feed)(struct back *back, const unsigned char *buf,
				size_t len, size_t *consumed_r, struct sbuf *out);
	/* one complete line (without its line end), for back_feed_lines */
	enum back_event (*line)(struct back *back, const char *line, size_t len,
				struct sbuf *out);
	/* TLS is up after BACK_EV_STARTTLS; may write the next commands */
	void (*tls_started)(struct back *back, struct sbuf *out);
	/* a client's answer to a relayed challenge, framed as the protocol
	 * wants it; NULL: the base64 and CRLF */
	void (*sasl_respond)(struct back *back, const char *b64, size_t len,
			     struct sbuf *out);
};

/* The mechanism the login uses: params' pass-through one, or PLAIN. */
const char *back_sasl_mech(const struct back_params *p);
/* Its initial response, base64: the client's first message, or the SASL
 * PLAIN message for params' user and password. */
void back_append_sasl_ir(const struct back_params *p, struct sbuf *out);
/* A challenge after the initial response: BACK_EV_CHALLENGE with text
 * kept in b->challenge for a pass-through mechanism, else a failure (PLAIN
 * has no second step). */
enum back_event back_sasl_challenge(struct back *b, const char *text, size_t len);
/* Writes the client's answer (base64, as it sent it) for the backend. */
void back_sasl_respond(struct back *b, const char *b64, size_t len, struct sbuf *out);

void back_init(struct back *b, const struct back_ops *ops,
	       const struct back_params *params);
void back_deinit(struct back *b);

/* Finds the next complete line in buf (without CRLF). Returns its length
 * and sets *consumed_r past the LF, or -1 when no LF yet (*consumed_r 0),
 * or -2 when the line exceeds BACK_MAX_LINE. */
long back_next_line(const unsigned char *buf, size_t len, size_t *consumed_r);

/* The feed of every line-based back machine (its ops->feed): hands each
 * complete line to ops->line while that returns BACK_EV_NONE. A line
 * longer than BACK_MAX_LINE fails the login as temporary. Once the
 * machine is done (OK or FAIL), nothing more is read. */
enum back_event back_feed_lines(struct back *b, const unsigned char *buf, size_t len,
				size_t *consumed_r, struct sbuf *out);

#endif
