/* A proxied session's state, shared by its files (internal to them):
 *
 *   session.c        lifecycle, the client side before login, the timer, kicks
 *   session_login.c  auth, routing, the backend login and its failures
 *   session_relay.c  after login: the relay, its watch, goodbyes, idle time
 *
 *   accept -> [TLS] -> PRELOGIN (front) -> AUTH (passdb, worker thread)
 *     -> route (passdb host or director) -> BACKEND_LOGIN (backend_login:
 *        connect, retries, TLS, the back machine) -> PROXYING (relay) -> close
 *
 * A failed login at any step after AUTH answers the client with the
 * protocol's NO and returns to PRELOGIN, as Dovecot's login proxy does.
 *
 * Closing: helpers never free the session under their callers. They call
 * session_end(), which records the first reason; every entry point (a
 * connection event, the timer, the auth and backend callbacks, accept)
 * finishes with session_settle(), the only caller of session_close(),
 * which logs the one line per session. Other modules reach a session
 * only by its id. */
#ifndef LOFT_PROXY_SESSION_PRIVATE_H
#define LOFT_PROXY_SESSION_PRIVATE_H

#include <event2/event.h>
#include <event2/event_struct.h>
#include <stdbool.h>
#include <stdint.h>

#include "common/bench_trace.h"
#include "common/log.h"
#include "common/sbuf.h"
#include "core/conn.h"
#include "core/relay.h"
#include "director/director.h"
#include "proto/front.h"
#include "proxy/proxy.h"
#include "proxy/session.h"

#define SESSION_TEMPFAIL_TEXT "Account is temporarily unavailable."

enum session_state {
	SESSION_TLS_HANDSHAKE,	/* client TLS: implicit, or after STARTTLS */
	SESSION_PRELOGIN,
	SESSION_AUTH,
	SESSION_DIRECTOR_WAIT,	/* the user is being moved: wait, then route */
	SESSION_BACKEND_LOGIN,	/* a backend_login is under way */
	SESSION_PROXYING,
	SESSION_CLOSING,	/* sending the last output, then close */
};
_Static_assert(SESSION_CLOSING + 1 == PROXY_SESSION_STATES,
	       "proxy_session_state_names has a name per state");

struct backend_login;
struct auth_request;

struct session {
	struct registry_entry reg;	/* id, user, addresses: what admins see */
	struct proxy *proxy;
	struct config *cfg;		/* a reference: what it started with */
	const struct proxy_listener *listener;
	enum session_state state;
	struct conn client;
	struct conn backend;		/* after login: the relay's backend end */
	struct event timer;
	struct front *front;
	struct backend_login *backend_login;	/* while logging in there */
	struct sbuf in;			/* client input not yet handled (secret) */
	struct sbuf out;		/* output for the client */
	struct relay relay;
	struct director_ticket ticket;

	struct ipaddr local_ip;		/* where the client connected to */
	uint16_t local_port;
	char *auth_user;		/* the name the client gave */
	/* a master user's login (user*master, SASL PLAIN's authzid): the
	 * master, whose password the client gave, checked first (by the
	 * master passdbs), then auth_user looked up without a password */
	char *master_user;
	bool master_checked;
	char *login_user;		/* the name sent to the backend */
	char *route_tag;		/* director_tag, kept for a retry */
	unsigned int route_port;
	bool route_again;		/* the director said a wait is over */
	char *password;			/* wiped when done */
	/* a pass-through mechanism's login (auth.passthrough_mechanisms):
	 * its name, and the client's first message for the backend (no NUL
	 * in it; secret, wiped when done). password is NULL. */
	const char *passthrough_mech;
	char *sasl_message;
	struct auth_request *auth_req;	/* the lookup in flight, or NULL */
	uint64_t auth_start;		/* monotonic ms: penalty delay ends */
	bool use_sasl;
	uint64_t start_mono;
	uint64_t start_us;		/* monotonic: the login latency's start */
	uint64_t backend_start_us;	/* the backend login's start */
	uint64_t login_deadline;	/* monotonic ms */
	bool starttls_pending;		/* TLS starts once `out` is sent */
	bool greet_after_tls;		/* implicit TLS: greet after handshake */
	bool processing;		/* inside session_process_input() */
	const char *end_reason;		/* set: close at the next settle */
	const char *finish_reason;	/* CLOSING: the reason once flushed */
	uint64_t close_deadline;	/* CLOSING: monotonic ms */
	const char *kick_text;		/* set: say goodbye, close next turn */
	bool prelogin_slot;		/* holds one of slot_ip's pre-login slots */
	struct ipaddr slot_ip;
	uint64_t idle_ms;		/* after login; 0: no limit */
	uint64_t drain_deadline;	/* the client ended: the backend's rest
					 * may come until then; 0: not yet */
	bool client_quit;		/* its last command was its logout */
	bool stream_opaque;		/* compressed: loft may not write into it */
	bool client_eof;		/* CLOSING: the client sends nothing more */
	bool lingering;			/* CLOSING: goodbye sent, write side shut */
	uint64_t last_traffic;		/* monotonic ms, while proxying */
	uint64_t traffic_bytes;		/* client bytes in + out at that time */
	char id_str[PROXY_ID_STRLEN];
#ifdef LOFT_BENCH_HOOKS
	struct bench_trace bench;	/* the login's timeline */
#endif
};

/* session.c */
void session_log(struct session *s, enum log_level level, const char *fmt, ...)
	ATTR_FORMAT(3, 4);
void session_set_state(struct session *s, enum session_state state);
void session_timer_set(struct session *s, uint64_t deadline_mono);
/* Marks the session for closing; the first reason wins. */
void session_end(struct session *s, const char *reason);
/* Sends what it can of `out`; on failure marks the session to end. */
void session_client_flush(struct session *s);
/* Feeds buffered input to the front while it is taking commands. */
void session_process_input(struct session *s);
/* Ends the session after sending what is still queued for the client
 * (a goodbye), for at most limits.close_timeout. */
void session_end_after_flush(struct session *s, const char *reason);
void session_release_prelogin(struct session *s);
/* The end of every entry point: close if ended, else set the interest. */
void session_settle(struct session *s);
/* Counts how a login ended (loft_logins_total). */
void session_count_login(struct session *s, enum proxy_login_result result);

/* session_login.c */
/* The front has credentials: penalty wait, then the passdb. */
void session_start_auth(struct session *s);
void session_auth_lookup(struct session *s);
/* Asks the director again (a move it waited for is over). */
void session_route_director(struct session *s);
/* Gives up the backend side: its login, connection and ticket. */
void session_release_backend(struct session *s);
/* Wipes and frees what the client proved itself with: the password, a
 * pass-through mechanism's message. */
void session_forget_secrets(struct session *s);
/* The front's answer in a pass-through exchange (FRONT_EV_SASL_RESPONSE)
 * or its end (FRONT_EV_SASL_ABORT). */
void session_sasl_relay_event(struct session *s, enum front_event ev);

/* session_relay.c */
/* The backend accepted the login: the client gets its OK, then bytes
 * flow both ways. */
void session_logged_in(struct session *s);
void session_relay(struct session *s);
/* The protocol's goodbye, then close (a kick, an idle or login timeout). */
void session_goodbye(struct session *s, const char *text, const char *reason);
/* One attempt at a proxied session's goodbye, if it can be written. */
void session_relayed_goodbye(struct session *s, const char *text);
void session_proxying_timer(struct session *s, uint64_t now);
void session_backend_event(struct conn *c, void *ctx);

#endif
