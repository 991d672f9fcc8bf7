/* The client side of a protocol until login: a pure state machine the
 * session feeds with bytes. It writes replies to an output buffer and
 * tells the session what to do next through an event. Each protocol
 * (IMAP now; POP3, SMTP, ManageSieve later) provides a struct front_ops;
 * the session code knows only this interface. */
#ifndef LOFT_PROTO_FRONT_H
#define LOFT_PROTO_FRONT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "common/net.h"
#include "common/sbuf.h"
#include "proto/sasl.h"

#define FRONT_PROXY_TTL_DEFAULT 5

struct front_params {
	const char *greeting;
	size_t max_line;
	size_t max_literal;
	unsigned int max_bad_commands;
	bool disable_plaintext_auth;
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
};

struct front {
	const struct front_ops *ops;
	struct front_params params;

	/* connection facts the session keeps current */
	bool tls_active;
	bool starttls_available;
	bool trusted;		/* client in trusted_networks: may forward */
	bool secured_network;	/* trusted, or local address == remote */

	struct front_forward forward;
	struct front_login login;	/* valid after FRONT_EV_AUTH */
	char *helo;			/* Submission: the client's EHLO name */
	const char *close_reason;	/* after FRONT_EV_CLOSE, for the log */
	unsigned int bad_commands;
};

struct front_ops {
	const char *service;	/* "imap", as who/kick show it */
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
};

static inline bool front_plaintext_allowed(const struct front *f)
{
	return !f->params.disable_plaintext_auth || f->tls_active ||
		f->secured_network;
}

/* A SASL exchange as every protocol runs it; only the framing differs. */
enum front_sasl_result {
	FRONT_SASL_CONTINUE,	/* send the challenge (base64, maybe empty) */
	FRONT_SASL_DONE,	/* credentials are in f->login */
	FRONT_SASL_FAIL,	/* the exchange is malformed */
	FRONT_SASL_BAD_BASE64,	/* the response was not base64 */
};

/* Starts mech; the first challenge (base64) goes to challenge_b64. */
void front_sasl_start(struct sasl_server *s, const struct sasl_mech *mech,
		      struct sbuf *challenge_b64);
/* One client response: base64, or "=" for an empty one. Ends the
 * exchange (deinit) unless it continues. */
enum front_sasl_result front_sasl_input(struct front *f, struct sasl_server *s,
					const unsigned char *data, size_t len,
					struct sbuf *challenge_b64);

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
void front_deinit(struct front *f);
/* Applies one forwarded attribute from a trusted client ("x-originating-ip"
 * style names, with or without the "x-" prefix of IMAP ID). Ignores
 * unknown names and invalid values. */
void front_forward_apply(struct front_forward *fw, const char *name, const char *value);
/* No forwarded address yet, the default TTL. */
void front_forward_init(struct front_forward *fw);

#endif
