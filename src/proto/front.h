/* The client side of a protocol until login: a pure state machine the
 * session feeds with bytes. It writes replies to an output buffer and
 * tells the session what to do next through an event. Each protocol
 * (IMAP, POP3, ManageSieve, Submission) provides a struct front_ops; the
 * session code knows only this interface. What the protocols share lives
 * here: the states, the SASL exchange, the count of invalid commands and
 * the feed of the line-based protocols, each framed by the protocol's
 * texts (struct front_texts). */
#ifndef LOFT_PROTO_FRONT_H
#define LOFT_PROTO_FRONT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "common/net.h"
#include "common/sbuf.h"
#include "proto/sasl.h"

#define FRONT_PROXY_TTL_DEFAULT 5
/* The client's ID fields kept for the backend stay below this, as in
 * Dovecot (LOGIN_MAX_CLIENT_ID_LEN) */
#define FRONT_CLIENT_ID_MAX 256

struct front_params {
	const char *greeting;
	size_t max_line;
	size_t max_literal;
	unsigned int max_bad_commands;
	bool disable_plaintext_auth;
	/* the pass-through mechanisms offered (sasl_passthrough_mask()) */
	unsigned int passthrough_mechs;
	const char *hostname;		/* Submission: this server's name */
	const char *sieve_capability;	/* ManageSieve: SIEVE extensions */
	const char *notify_capability;	/* ManageSieve: NOTIFY methods */
};

/* What a trusted client (another proxy) told us about the real client
 * (reference §10.2, §10.5). Only honoured from trusted networks. */
struct front_forward {
	bool have_ip;
	struct ipaddr ip;
	uint16_t port;
	bool have_local;
	struct ipaddr local_ip;
	uint16_t local_port;
	unsigned int ttl;
	char session_id[64];
};

enum front_event {
	FRONT_EV_NONE,		/* nothing to do but send the output */
	FRONT_EV_STARTTLS,	/* send the output, then start TLS */
	FRONT_EV_AUTH,		/* credentials are in front->login */
	FRONT_EV_CLOSE,		/* send the output, then close (close_reason) */
	/* a pass-through exchange (front_sasl_relay()): the client's answer
	 * to the backend's challenge is in front->login.response */
	FRONT_EV_SASL_RESPONSE,
	/* the client ended a pass-through exchange ("*", or not base64);
	 * its reply is in the output, and the front reads commands again */
	FRONT_EV_SASL_ABORT,
};

enum front_auth_status {
	FRONT_AUTH_FAILED,	/* the generic failure: nothing to enumerate */
	FRONT_AUTH_FAILED_REASON, /* a passdb reason (nologin) shown as given */
	FRONT_AUTH_TEMPFAIL,	/* try again later */
	FRONT_AUTH_BACKEND_REPLY, /* a backend's NO [code] text, passed through */
	FRONT_AUTH_LIMIT,	/* too many sessions (IMAP: NO [LIMIT]) */
};

struct front_login {
	const struct sasl_mech *mech;	/* NULL for a plain LOGIN/USER+PASS */
	struct sasl_credentials creds;
	/* a pass-through exchange after FRONT_EV_AUTH: the backend's
	 * challenges are relayed to the client, and its answers, base64 as
	 * sent, come back here one at a time (FRONT_EV_SASL_RESPONSE) */
	bool relaying;
	struct sbuf response;
};

enum front_state {
	FRONT_COMMAND,		/* reading commands */
	FRONT_SASL,		/* reading a response of the SASL exchange */
	FRONT_AUTH_WAIT,	/* credentials handed over, awaiting a verdict */
	FRONT_DONE,		/* logged in or leaving: no more input */
};

struct front {
	const struct front_ops *ops;
	struct front_params params;
	enum front_state state;

	/* connection facts the session keeps current */
	bool tls_active;
	bool starttls_available;
	bool trusted;		/* client in trusted_networks: may forward */
	bool secured_network;	/* trusted, or local address == remote */

	struct front_forward forward;
	struct front_login login;	/* valid after FRONT_EV_AUTH */
	struct sasl_server sasl;	/* in FRONT_SASL */
	/* IMAP: the tag of the pending LOGIN or AUTHENTICATE, which its
	 * replies carry; empty in the protocols without tags */
	struct sbuf tag;
	/* IMAP: the client's own ID fields as IMAP strings ("name" "x" ...),
	 * shorter than FRONT_CLIENT_ID_MAX; empty when it sent none */
	struct sbuf client_id;
	char *helo;			/* Submission: the client's EHLO name */
	const char *close_reason;	/* after FRONT_EV_CLOSE, for the log */
	/* a SASL exchange refused here, for the log (the client gets the
	 * generic failure): its mechanism and why; the reader clears them */
	const char *sasl_refused_mech, *sasl_refused_why;
	unsigned int bad_commands;
};

/* The lines (without CRLF) a protocol answers with where the shared code
 * does the work; in IMAP they follow the pending command's tag. */
struct front_texts {
	/* a challenge is prefix, base64, suffix */
	const char *challenge_prefix, *challenge_suffix;
	const char *sasl_failed;	/* the mechanism refused the exchange */
	const char *sasl_aborted;	/* the client answered "*" */
	const char *bad_initial_base64;	/* the initial response was not base64 */
	const char *bad_continued_base64; /* a later response was not base64 */
	bool bad_base64_counts;		/* which is an invalid command (IMAP) */
	/* the goodbye to the max_bad_commands-th invalid command, a format
	 * that may name the server (%s, params.hostname) */
	const char *too_many_bad;
	bool last_bad_answered;		/* POP3: the goodbye follows its reply */
	/* front_feed_lines: the goodbye to an over-long line, and the reply
	 * to a line with a NUL in it */
	const char *line_too_long;
	const char *invalid_chars;
};

struct front_ops {
	const char *service;	/* "imap", as who/kick show it */
	struct front_texts texts;
	struct front *(*create)(const struct front_params *params);
	void (*destroy)(struct front *front);
	void (*greet)(struct front *front, struct sbuf *out);
	/* STARTTLS is done (may be NULL): ManageSieve repeats its
	 * capabilities here */
	void (*tls_started)(struct front *front, struct sbuf *out);
	enum front_event (*feed)(struct front *front, unsigned char *buf,
				 size_t len, size_t *consumed_r, struct sbuf *out);
	void (*auth_failed)(struct front *front, enum front_auth_status status,
			    const char *text, struct sbuf *out);
	/* the backend accepted the login; text is its success reply */
	void (*logged_in)(struct front *front, const char *text, struct sbuf *out);
	/* an unsolicited goodbye (kick, timeout, shutdown) */
	void (*disconnect)(struct front *front, const char *text, struct sbuf *out);
	/* front_feed_lines: one command line (NUL-terminated over its line
	 * end, len bytes) in FRONT_COMMAND */
	enum front_event (*command_line)(struct front *front, char *line, size_t len,
					 struct sbuf *out);
};

static inline bool front_plaintext_allowed(const struct front *f)
{
	return !f->params.disable_plaintext_auth || f->tls_active ||
		f->secured_network;
}

void front_set_state(struct front *f, enum front_state state);

/* A reply line: the pending command's tag (IMAP), text, CRLF. */
void front_reply(struct front *f, struct sbuf *out, const char *text);

/* Counts an invalid command whose reply is in out from reply_start. The
 * max_bad_commands-th ends the connection: texts.too_many_bad replaces
 * its reply (IMAP, ManageSieve, Submission) or follows it (POP3), as in
 * Dovecot's login processes. */
enum front_event front_count_bad(struct front *f, struct sbuf *out, size_t reply_start);

/* A SASL exchange as every protocol runs it (AUTHENTICATE, AUTH); the
 * texts frame it. Starts mech with the client's initial response (base64
 * or "=" for an empty one) when ir is not NULL, else sends the first
 * challenge. FRONT_EV_AUTH when the credentials are complete. */
enum front_event front_sasl_begin(struct front *f, const struct sasl_mech *mech,
				  const unsigned char *ir, size_t ir_len,
				  struct sbuf *out);
/* The mechanism a client asked for by name, if this front offers it
 * (the pass-through ones only as params.passthrough_mechs says). */
const struct sasl_mech *front_sasl_mech_find(const struct front *f, const char *name);
/* The mechanisms offered now, each between prefix and suffix (the
 * plaintext ones only where front_plaintext_allowed()); how many. */
size_t front_append_mechs(const struct front *f, struct sbuf *out, const char *prefix,
			  const char *suffix);
/* A pass-through exchange goes on: sends the backend's challenge (base64,
 * len bytes, as the backend sent it) to the client and reads its answer
 * (FRONT_EV_SASL_RESPONSE). -1 when the challenge is not base64. */
int front_sasl_relay(struct front *f, const char *b64, size_t len, struct sbuf *out);
/* One response line in FRONT_SASL: base64, "=" for empty, "*" cancels. */
enum front_event front_sasl_continue(struct front *f, const unsigned char *line,
				     size_t len, struct sbuf *out);

/* The feed of the line-based protocols (POP3, Submission): each line goes
 * to ops->command_line or to the SASL exchange; a line with a NUL is an
 * invalid command; a line longer than max_line ends the connection. */
enum front_event front_feed_lines(struct front *f, unsigned char *buf, size_t len,
				  size_t *consumed_r, struct sbuf *out);

/* logged_in as every protocol does it: the backend's reply after the tag. */
void front_logged_in(struct front *f, const char *text, struct sbuf *out);

/* XCLIENT from a trusted proxy (POP3, ManageSieve, Submission): one
 * "ATTR=value" token, or a line of them; ADDR, PORT, SESSION and TTL are
 * applied, others ignored. The token is modified. */
void front_xclient_attr(struct front_forward *fw, char *token);
void front_xclient_line(struct front_forward *fw, char *args);

/* Text from elsewhere (a passdb, a backend) as part of one reply line: a
 * CR or LF becomes a space, so nothing can be injected. */
void front_append_sanitized(struct sbuf *out, const char *text);

/* A failed login's reply line, without CRLF: the protocol's prefix for the
 * status (indexed by enum front_auth_status), then the text, sanitized; a
 * temporary failure without text gets a generic one, and the generic
 * FRONT_AUTH_FAILED none (its prefix is the whole message). */
void front_append_auth_failure(struct sbuf *out, const char *const prefixes[],
			       enum front_auth_status status, const char *text);

void front_init(struct front *f, const struct front_ops *ops,
		const struct front_params *params);
/* Wipes the credentials after auth has used them. */
void front_login_clear(struct front *f);
/* Frees what struct front owns (the SASL exchange included). */
void front_deinit(struct front *f);
/* Applies one forwarded attribute from a trusted client ("x-originating-ip"
 * style names, with or without the "x-" prefix of IMAP ID). Ignores
 * unknown names and invalid values; a session id may hold only
 * [A-Za-z0-9+/=_-]. */
void front_forward_apply(struct front_forward *fw, const char *name, const char *value);
/* No forwarded address yet, the default TTL. */
void front_forward_init(struct front_forward *fw);

#endif
