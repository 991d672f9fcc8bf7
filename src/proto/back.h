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
};

/* The SASL PLAIN message for params' user and password, base64. */
void back_append_plain(const struct back_params *p, struct sbuf *out);

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
