/* Reaching a backend, and logging in there on someone's behalf:
 *
 *   connect (retried after a failure, within the connect deadline)
 *     -> [TLS at once, backend.ssl = yes]
 *     -> the protocol's back machine: greeting, [STARTTLS], ID/XCLIENT,
 *        LOGIN/AUTHENTICATE/USER+PASS/AUTH
 *
 * Without a back machine it stops once connected (and TLS is up): LMTP
 * talks to its backend itself. One object per attempt, working on a
 * connection the owner embeds (so that, logged in, the connection is
 * simply the owner's: no re-registration on the loop). The owner hears
 * the verdict once, through `done`, always from the loop (never inside
 * backend_login_start()), and then takes the connection or frees the
 * object. Whatever carried credentials (the login line) is wiped when
 * let go. */
#ifndef LOFT_PROXY_BACKEND_LOGIN_H
#define LOFT_PROXY_BACKEND_LOGIN_H

#include <openssl/ssl.h>
#include <stdint.h>

#include "common/bench_trace.h"
#include "common/net.h"
#include "common/sbuf.h"
#include "core/conn.h"
#include "proto/back.h"

struct event_base;
struct backend_login;

enum backend_login_result {
	BACKEND_LOGIN_OK,		/* logged in (or connected, without a back) */
	BACKEND_LOGIN_AUTH_FAILED,	/* the backend refused the credentials */
	BACKEND_LOGIN_REFUSED,		/* the backend refused with its own reply */
	BACKEND_LOGIN_FAILED,		/* connect, TLS, the protocol, a timeout */
};

typedef void backend_login_done_cb(void *ctx, struct backend_login *bl,
				   enum backend_login_result result);
/* A pass-through mechanism's challenge from the backend (base64, as sent)
 * for the client; its answer goes to backend_login_respond(). */
typedef void backend_login_challenge_cb(void *ctx, struct backend_login *bl,
					const char *b64, size_t len);

struct backend_login_settings {
	struct event_base *base;
	struct ipaddr ip;
	uint16_t port;
	uint64_t connect_deadline;	/* monotonic ms: no new attempt after */
	uint64_t deadline;		/* monotonic ms: the whole login */
	unsigned int max_reconnects;	/* attempts after the first */
	uint64_t retry_delay_ms;
	SSL_CTX *tls;			/* TLS at once (backend.ssl = yes), or for
					 * a back machine's STARTTLS; may be NULL */
	bool implicit_tls;
	const struct net_keepalive *keepalive;	/* may be NULL */
	/* the login; NULL back: done once connected. The settings are copied;
	 * the strings back_params points to must live until the verdict. */
	const struct back_ops *back;
	const struct back_params *back_params;
	/* the back machine's challenges (back_params.sasl_mech), with the
	 * done callback's ctx; NULL: a challenge fails the login */
	backend_login_challenge_cb *challenge;
#ifdef LOFT_BENCH_HOOKS
	struct bench_trace *bench;	/* a session's timeline, or NULL */
#endif
};

/* conn: a closed connection of the owner's, which the attempt opens. */
struct backend_login *backend_login_start(const struct backend_login_settings *set,
					  struct conn *conn, backend_login_done_cb *done,
					  void *ctx);
/* Cancels an attempt still running (nothing more is heard) or frees one
 * that is done; closes the connection unless it was taken. */
void backend_login_free(struct backend_login **bl);

/* After a challenge: the client's answer (base64, as it sent it), for the
 * backend; the dialogue goes on from the loop. */
void backend_login_respond(struct backend_login *bl, const char *b64, size_t len);

/* After BACKEND_LOGIN_OK: the connection's events go to cb from now on,
 * and what the backend sent after its OK goes to leftover. */
void backend_login_take(struct backend_login *bl, conn_event_cb *cb, void *ctx,
			struct sbuf *leftover);
/* FAILED: why, with the step ("timed out (backend-tls)"); REFUSED: the
 * backend's reply; OK: its success reply (may be ""). Valid until free. */
const char *backend_login_error(const struct backend_login *bl);
const char *backend_login_reply(const struct backend_login *bl);
/* The step it is at, for logs: "backend-connect" ... "backend-login". */
const char *backend_login_step(const struct backend_login *bl);

#endif
