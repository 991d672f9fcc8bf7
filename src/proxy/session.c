/* A proxied session (DESIGN.md §3):
 *
 *   accept -> [TLS] -> PRELOGIN (front) -> AUTH (passdb, worker thread)
 *     -> route (passdb host or director) -> BACKEND_CONNECT (retries)
 *     -> [BACKEND_TLS] -> BACKEND_LOGIN (back) -> PROXYING (relay) -> close
 *
 * A failed login at any step after AUTH answers the client with the
 * protocol's NO and returns to PRELOGIN, as Dovecot's login proxy does.
 *
 * Closing: helpers never free the session under their callers. They call
 * session_end(), which records the first reason; every entry point (a
 * connection event, the timer, the auth callback, accept) finishes with
 * session_settle(), the only caller of session_close(), which logs the
 * one line per session. Other modules reach a session only by its id. */
#include "proxy/session.h"

#include <errno.h>
#include <netinet/tcp.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include "auth/auth.h"
#include "auth/penalty.h"
#include "common/clock.h"
#include "common/log.h"
#include "common/sbuf.h"
#include "common/xmalloc.h"
#include "core/conn.h"
#include "core/relay.h"
#include "director/director.h"
#include "proxy/protocols.h"

#define SESSION_RETRY_DELAY_MS 1000
#define SESSION_RETRY_MIN_LEFT_MS 1100
#define SESSION_READ_CHUNK 4096

#define SESSION_TEMPFAIL_TEXT "Account is temporarily unavailable."

enum session_state {
	SESSION_TLS_HANDSHAKE,	/* client TLS: implicit, or after STARTTLS */
	SESSION_PRELOGIN,
	SESSION_AUTH,
	SESSION_DIRECTOR_WAIT,	/* the user is being moved: wait, then route */
	SESSION_BACKEND_CONNECT,
	SESSION_BACKEND_RETRY,	/* waiting to connect again */
	SESSION_BACKEND_TLS,
	SESSION_BACKEND_LOGIN,
	SESSION_PROXYING,
	SESSION_CLOSING,	/* sending the last output, then close */
};

static const char *const session_state_names[] = {
	[SESSION_TLS_HANDSHAKE] = "tls-handshake",
	[SESSION_PRELOGIN] = "pre-login",
	[SESSION_AUTH] = "auth",
	[SESSION_DIRECTOR_WAIT] = "director-wait",
	[SESSION_BACKEND_CONNECT] = "backend-connect",
	[SESSION_BACKEND_RETRY] = "backend-retry",
	[SESSION_BACKEND_TLS] = "backend-tls",
	[SESSION_BACKEND_LOGIN] = "backend-login",
	[SESSION_PROXYING] = "proxying",
	[SESSION_CLOSING] = "closing",
};

struct session {
	struct registry_entry reg;	/* id, user, addresses: what admins see */
	struct proxy *proxy;
	struct config *cfg;		/* a reference: what it started with */
	const struct proxy_listener *listener;
	enum session_state state;
	struct conn client;
	struct conn backend;
	struct event timer;
	struct front *front;
	struct back *back;
	struct sbuf in;			/* client input not yet handled (secret) */
	struct sbuf out;		/* output for the client */
	struct sbuf bin;		/* backend input during its login */
	struct sbuf bout;		/* output for the backend during its login (secret) */
	struct relay relay;
	struct director_ticket ticket;

	struct ipaddr local_ip;		/* where the client connected to */
	uint16_t local_port;
	char *auth_user;		/* the name the client gave */
	char *login_user;		/* the name sent to the backend */
	char *route_tag;		/* director_tag, kept for a retry */
	unsigned int route_port;
	bool route_again;		/* the director said a wait is over */
	char *password;			/* wiped when done */
	struct auth_request *auth_req;	/* the lookup in flight, or NULL */
	uint64_t auth_start;		/* monotonic ms: penalty delay ends */
	bool use_sasl;
	uint64_t start_mono;
	uint64_t login_deadline;	/* monotonic ms */
	uint64_t backend_deadline;
	unsigned int connect_attempts;
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
	uint64_t last_traffic;		/* monotonic ms, while proxying */
	uint64_t traffic_bytes;		/* client bytes in + out at that time */
	char id_str[PROXY_ID_STRLEN];
};

static void session_process_input(struct session *s);
static void session_client_event(struct conn *c, void *ctx);
static void session_backend_event(struct conn *c, void *ctx);
static void session_backend_io(struct session *s);
static void session_backend_dispatch(struct session *s);
static void session_settle(struct session *s);

/* ---- helpers ------------------------------------------------------ */

static void session_log(struct session *s, enum log_level level,
			const char *fmt, ...) ATTR_FORMAT(3, 4);

static void session_log(struct session *s, enum log_level level,
			const char *fmt, ...)
{
	char msg[1024], ip[IPADDR_STRLEN];
	va_list ap;

	if (!log_level_enabled(level))
		return;
	va_start(ap, fmt);
	vsnprintf(msg, sizeof(msg), fmt, ap);
	va_end(ap);
	log_msg(level, "session %s %s %s %s:%u: %s", s->id_str, s->reg.service,
		s->reg.user != NULL ? s->reg.user : "-",
		ipaddr_to_str(&s->reg.client_ip, ip), s->reg.client_port, msg);
}

static void session_set_state(struct session *s, enum session_state state)
{
	if (s->state != state)
		session_log(s, LOG_LEVEL_DEBUG, "state %s -> %s",
			    session_state_names[s->state], session_state_names[state]);
	s->state = state;
}

static struct session *session_from_entry(struct registry_entry *e)
{
	return CONTAINER_OF(e, struct session, reg);
}

static void session_timer_set(struct session *s, uint64_t deadline_mono)
{
	uint64_t now = clock_monotonic_ms();
	uint64_t ms = deadline_mono > now ? deadline_mono - now : 0;
	struct timeval tv = { (time_t)(ms / 1000), (suseconds_t)(ms % 1000) * 1000 };
	evtimer_add(&s->timer, &tv);
}

/* Marks the session for closing; the first reason wins. */
static void session_end(struct session *s, const char *reason)
{
	if (s->end_reason == NULL)
		s->end_reason = reason;
}

/* Sends what it can of buf to c; -1 when the connection failed. */
static void session_client_flush(struct session *s)
{
	if (conn_write_sbuf(&s->client, &s->out) < 0)
		session_end(s, "client connection failed");
}

/* Replies a client has not read fill at most limits.session_buffer:
 * beyond it, its commands wait (unread, then in the kernel's buffers). */
static bool session_output_full(const struct session *s)
{
	return sbuf_len(&s->out) >= s->cfg->limits.session_buffer;
}

/* Client interest outside the relay: read while the input buffer has
 * room and the output is not full (also during auth, to notice a client
 * that leaves), write while output is pending. */
static void session_client_interest(struct session *s)
{
	/* a closing session reads and drops what the client still sends, so
	 * that closing with it unread does not reset the connection (and
	 * lose the goodbye): nginx's lingering close */
	bool reading = !s->client_eof && (s->state == SESSION_CLOSING ||
		(!session_output_full(s) && sbuf_len(&s->in) < s->proxy->input_limit));
	conn_set_interest(&s->client, reading, sbuf_len(&s->out) > 0);
}

static void session_release_prelogin(struct session *s)
{
	if (s->prelogin_slot) {
		proxy_prelogin_release(s->proxy, &s->slot_ip);
		s->prelogin_slot = false;
	}
}

static void session_release_backend(struct session *s)
{
	if (s->back != NULL) {
		s->back->ops->destroy(s->back);
		s->back = NULL;
	}
	conn_close(&s->backend);
	sbuf_free(&s->bin);
	sbuf_free_secret(&s->bout);
	director_release(s->proxy->director, &s->ticket, time(NULL));
}

/* Ends the session after sending what is still queued for the client
 * (a goodbye), for at most limits.close_timeout. */
static void session_finish(struct session *s, const char *reason)
{
	session_release_backend(s);
	session_client_flush(s);
	if (sbuf_len(&s->out) == 0) {
		session_end(s, reason);
		return;
	}
	session_set_state(s, SESSION_CLOSING);
	s->finish_reason = reason;
	sbuf_free(&s->in);
	s->close_deadline = clock_monotonic_ms() + s->cfg->limits.close_timeout_ms;
	session_timer_set(s, s->close_deadline);
}

/* ---- login failures ---------------------------------------------- */

/* A wrong password, from the passdb or the backend: raise the client
 * address's penalty (§6.3). */
static void session_penalise(struct session *s)
{
	if (s->proxy->penalty != NULL && s->auth_user != NULL && s->password != NULL)
		penalty_failure(s->proxy->penalty, &s->reg.client_ip, s->auth_user,
				s->password, time(NULL));
}

/* The login did not work out: tell the client, forget the backend, and
 * accept commands again. */
static void session_login_failed(struct session *s, enum front_auth_status status,
				 const char *text, const char *why)
{
	session_log(s, LOG_LEVEL_INFO, "login failed: %s", why);
	s->front->ops->auth_failed(s->front, status, text, &s->out);
	session_release_backend(s);
	xfree_secret(&s->password);
	free(s->auth_user);
	s->auth_user = NULL;
	free(s->login_user);
	s->login_user = NULL;
	free(s->route_tag);
	s->route_tag = NULL;
	registry_clear_login(&s->proxy->registry, &s->reg);
	s->reg.state = REGISTRY_STATE_PRELOGIN;
	session_set_state(s, SESSION_PRELOGIN);
	session_timer_set(s, s->login_deadline);
	session_client_flush(s);
	/* commands the client pipelined behind the failed login */
	session_process_input(s);
}

static void session_backend_failed(struct session *s, const char *fmt, ...)
	ATTR_FORMAT(2, 3);

static void session_backend_failed(struct session *s, const char *fmt, ...)
{
	char why[512], ip[IPADDR_STRLEN];
	va_list ap;
	va_start(ap, fmt);
	int n = snprintf(why, sizeof(why), "backend %s:%u: ",
			 ipaddr_to_str(&s->reg.backend_ip, ip), s->reg.backend_port);
	vsnprintf(why + n, sizeof(why) - (size_t)n, fmt, ap);
	va_end(ap);
	session_login_failed(s, FRONT_AUTH_TEMPFAIL, SESSION_TEMPFAIL_TEXT, why);
}

/* ---- relay ---------------------------------------------------------- */

/* The relay's next wake-up: the idle deadline, or the end of the wait for
 * the backend's rest after the client ended. */
static void session_relay_timer(struct session *s)
{
	uint64_t at = s->idle_ms > 0 ? s->last_traffic + s->idle_ms : 0;
	if (s->drain_deadline != 0 && (at == 0 || s->drain_deadline < at))
		at = s->drain_deadline;
	if (at != 0)
		session_timer_set(s, at);
}

static void session_relay(struct session *s)
{
	const char *reason;
	enum relay_end end;
	int r = relay_pump(&s->relay, &end, &reason);
	uint64_t bytes = s->client.bytes_in + s->client.bytes_out;
	if (s->idle_ms > 0 && bytes != s->traffic_bytes) {
		s->traffic_bytes = bytes;
		s->last_traffic = clock_monotonic_ms();
	}
	if (r < 0) {
		/* whoever closed first, a client that logged out did */
		if (end != RELAY_END_ERROR && s->client_quit)
			reason = "logged out";
		session_end(s, reason);
		return;
	}
	if (s->drain_deadline == 0 && relay_client_done(&s->relay)) {
		/* the client ended (perhaps a half-close after its last
		 * command): its answer may still come, for a while */
		s->drain_deadline = clock_monotonic_ms() +
			s->cfg->limits.close_timeout_ms;
		session_relay_timer(s);
	}
	if (r > 0)
		event_active(&s->timer, EV_TIMEOUT, 1); /* the timer is free now */
}

/* The client's commands seen in passing (proto/command_watch.h). */
static void session_relay_watch(void *ctx, const char *data, size_t len)
{
	struct session *s = ctx;
	unsigned int flags = command_watch_last_line(s->listener->protocol->watch,
						     data, len);
	s->client_quit = (flags & COMMAND_WATCH_LOGOUT) != 0;
	if ((flags & COMMAND_WATCH_OPAQUE) != 0)
		s->stream_opaque = true;
}

static void session_logged_in(struct session *s)
{
	char ip[IPADDR_STRLEN];

	s->front->ops->logged_in(s->front, s->back->reply, &s->out);
	/* anything the backend sent after its OK follows the OK; commands
	 * the client pipelined after its login go to the backend first */
	sbuf_append(&s->out, sbuf_data(&s->bin), sbuf_len(&s->bin));
	/* they are the first the relay's watch would have seen */
	if (sbuf_len(&s->in) > 0 && s->listener->protocol->watch != NULL)
		session_relay_watch(s, sbuf_data(&s->in), sbuf_len(&s->in));
	sbuf_append(&s->bout, sbuf_data(&s->in), sbuf_len(&s->in));
	sbuf_free(&s->bin);
	sbuf_free(&s->in);
	s->back->ops->destroy(s->back);
	s->back = NULL;
	if (s->proxy->penalty != NULL)
		penalty_success(s->proxy->penalty, &s->reg.client_ip, time(NULL));
	xfree_secret(&s->password);
	free(s->auth_user);
	s->auth_user = NULL;
	evtimer_del(&s->timer);
	session_release_prelogin(s);
	session_set_state(s, SESSION_PROXYING);
	s->reg.state = REGISTRY_STATE_PROXYING;
	s->idle_ms = proxy_protocol_idle_ms(s->listener->protocol, s->cfg);
	s->last_traffic = clock_monotonic_ms();
	session_relay_timer(s);
	session_log(s, LOG_LEVEL_INFO, "proxying to %s:%u",
		    ipaddr_to_str(&s->reg.backend_ip, ip), s->reg.backend_port);
	relay_start(&s->relay, s->proxy->relay_pools, &s->client, &s->backend, &s->out,
		    &s->bout);
	if (s->listener->protocol->watch != NULL)
		relay_watch(&s->relay, session_relay_watch, s);
	session_relay(s);
}

/* ---- backend login ------------------------------------------------ */

static void session_back_start(struct session *s)
{
	const struct config *cfg = s->cfg;
	struct back_params p = {
		.user = s->login_user,
		.password = s->password,
		.use_sasl = s->use_sasl,
		.starttls = cfg->backend.ssl == CONF_BACKEND_SSL_STARTTLS,
		.tls_active = conn_is_tls(&s->backend),
		.forward = true,
		.client_ip = s->reg.client_ip,
		.client_port = s->reg.client_port,
		.local_ip = s->local_ip,
		.local_port = s->local_port,
		.session_id = s->front->forward.session_id[0] != '\0' ?
			s->front->forward.session_id : s->id_str,
		.ttl = s->front->forward.ttl,
		.helo = s->front->helo,
		.hostname = s->proxy->hostname,
	};
	s->back = s->listener->protocol->back->create(&p);
	session_set_state(s, SESSION_BACKEND_LOGIN);
	conn_set_interest(&s->backend, true, false);
}

static void session_backend_tls_start(struct session *s)
{
	char ip[IPADDR_STRLEN];
	if (conn_tls_start(&s->backend, s->proxy->backend_tls, false,
			   ipaddr_to_str(&s->reg.backend_ip, ip)) < 0) {
		session_backend_failed(s, "TLS setup failed: %s", s->backend.error);
		return;
	}
	session_set_state(s, SESSION_BACKEND_TLS);
	session_backend_dispatch(s);
}

static void session_backend_io(struct session *s)
{
	if (conn_write_sbuf(&s->backend, &s->bout) < 0) {
		session_backend_failed(s, "write failed: %s", s->backend.error);
		return;
	}
	for (;;) {
		char *buf = sbuf_reserve(&s->bin, SESSION_READ_CHUNK);
		ssize_t n = conn_read(&s->backend, buf, SESSION_READ_CHUNK);
		if (n == CONN_AGAIN)
			break;
		if (n <= 0) {
			session_backend_failed(s, "%s while logging in",
					       n == 0 ? "disconnected" : s->backend.error);
			return;
		}
		sbuf_commit(&s->bin, (size_t)n);
		size_t consumed;
		enum back_event ev = s->back->ops->feed(s->back,
			(const unsigned char *)sbuf_data(&s->bin), sbuf_len(&s->bin),
			&consumed, &s->bout);
		sbuf_consume(&s->bin, consumed);
		switch (ev) {
		case BACK_EV_NONE:
			if (conn_write_sbuf(&s->backend, &s->bout) < 0) {
				session_backend_failed(s, "write failed: %s",
						       s->backend.error);
				return;
			}
			continue;
		case BACK_EV_STARTTLS:
			/* the STARTTLS command is already out; nothing may
			 * follow it in plaintext */
			sbuf_reset(&s->bin);
			session_backend_tls_start(s);
			return;
		case BACK_EV_OK:
			session_logged_in(s);
			return;
		case BACK_EV_FAIL:
			break;
		}
		switch (s->back->fail) {
		case BACK_FAIL_AUTH:
			session_penalise(s);
			session_login_failed(s, FRONT_AUTH_FAILED, NULL,
					     "the backend rejected the credentials");
			return;
		case BACK_FAIL_REPLY: {
			char *reply = xstrdup(s->back->reply);
			session_login_failed(s, FRONT_AUTH_BACKEND_REPLY, reply,
					     "the backend refused the login");
			free(reply);
			return;
		}
		case BACK_FAIL_TEMP:
			session_backend_failed(s, "%s", s->back->error);
			return;
		}
	}
	conn_set_interest(&s->backend, true, sbuf_len(&s->bout) > 0);
}

/* ---- backend connection -------------------------------------------- */

static void session_backend_connect(struct session *s);

static void session_backend_retry(struct session *s, const char *error)
{
	uint64_t now = clock_monotonic_ms();

	conn_close(&s->backend);
	s->connect_attempts++;
	if (s->connect_attempts > s->cfg->backend.max_reconnects ||
	    now + SESSION_RETRY_MIN_LEFT_MS > s->backend_deadline) {
		session_backend_failed(s, "connect failed: %s", error);
		return;
	}
	session_log(s, LOG_LEVEL_DEBUG, "connect failed (%s), retrying", error);
	session_set_state(s, SESSION_BACKEND_RETRY);
	/* the retry never outlasts the login's deadline */
	session_timer_set(s, MIN(now + SESSION_RETRY_DELAY_MS, s->login_deadline));
}

static void session_backend_connected(struct session *s)
{
	int one = 1;
	struct net_keepalive ka;
	setsockopt(s->backend.fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
	proxy_keepalive(s->cfg, &ka);
	(void)net_set_keepalive(s->backend.fd, &ka);
	if (s->cfg->backend.ssl == CONF_BACKEND_SSL_YES)
		session_backend_tls_start(s);
	else
		session_back_start(s);
}

static void session_backend_connect(struct session *s)
{
	struct sockaddr_storage ss;
	socklen_t len = ipaddr_to_sockaddr(&s->reg.backend_ip, s->reg.backend_port, &ss);

	int fd = socket(ss.ss_family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
	if (fd < 0) {
		session_backend_retry(s, strerror(errno));
		return;
	}
	conn_attach(&s->backend, s->proxy->base, fd, session_backend_event, s);
	session_set_state(s, SESSION_BACKEND_CONNECT);
	uint64_t deadline = MIN(s->backend_deadline, s->login_deadline);
	session_timer_set(s, deadline);
	if (connect(fd, (struct sockaddr *)&ss, len) == 0) {
		session_backend_connected(s);
		return;
	}
	if (errno != EINPROGRESS) {
		session_backend_retry(s, strerror(errno));
		return;
	}
	conn_set_interest(&s->backend, false, true);
}

static void session_backend_dispatch(struct session *s)
{
	switch (s->state) {
	case SESSION_BACKEND_CONNECT: {
		int err = 0;
		socklen_t len = sizeof(err);
		if (getsockopt(s->backend.fd, SOL_SOCKET, SO_ERROR, &err, &len) < 0)
			err = errno;
		if (err != 0)
			session_backend_retry(s, strerror(err));
		else
			session_backend_connected(s);
		return;
	}
	case SESSION_BACKEND_TLS: {
		int r = conn_handshake(&s->backend);
		if (r == CONN_AGAIN) {
			conn_set_interest(&s->backend, true, false);
			return;
		}
		if (r < 0) {
			session_backend_failed(s, "TLS handshake failed: %s",
					       s->backend.error);
			return;
		}
		if (s->back != NULL) {
			/* after STARTTLS: the login continues */
			s->back->ops->tls_started(s->back, &s->bout);
			session_set_state(s, SESSION_BACKEND_LOGIN);
			session_backend_io(s);
		} else {
			session_back_start(s);
		}
		return;
	}
	case SESSION_BACKEND_LOGIN:
		session_backend_io(s);
		return;
	case SESSION_PROXYING:
		session_relay(s);
		return;
	default:
		/* a stale event after the backend was given up */
		conn_set_interest(&s->backend, false, false);
		return;
	}
}

static void session_backend_event(struct conn *c, void *ctx)
{
	struct session *s = ctx;
	(void)c;
	session_backend_dispatch(s);
	session_settle(s);
}

/* ---- auth and routing ---------------------------------------------- */

/* Connects to the chosen backend unless that would loop back to us. */
static void session_backend_begin(struct session *s, const struct ipaddr *ip,
				  const char *name)
{
	char text[IPADDR_STRLEN];

	registry_set_backend(&s->proxy->registry, &s->reg, ip, (uint16_t)s->route_port,
			     name);
	if (ipaddr_equal(ip, &s->local_ip) && s->route_port == s->local_port) {
		session_login_failed(s, FRONT_AUTH_TEMPFAIL, SESSION_TEMPFAIL_TEXT,
				     "Proxying loops to itself");
		return;
	}
	session_log(s, LOG_LEVEL_DEBUG, "routed to %s:%u", ipaddr_to_str(ip, text),
		    s->route_port);
	s->connect_attempts = 0;
	s->backend_deadline = clock_monotonic_ms() + s->cfg->backend.connect_timeout_ms;
	session_backend_connect(s);
}

/* Asks the director; a user being moved waits for the move (§2.6). */
static void session_route_director(struct session *s)
{
	const struct director_host *h;
	const char *error;

	s->route_again = false;
	switch (director_route(s->proxy->director, s->login_user, s->route_tag,
			       time(NULL), s->reg.id, &h, &s->ticket, &error)) {
	case DIRECTOR_ROUTE_OK:
		registry_set_director(&s->reg, s->ticket.hash, s->ticket.tag);
		session_backend_begin(s, &h->ip, h->hostname);
		return;
	case DIRECTOR_ROUTE_WAIT:
		session_log(s, LOG_LEVEL_DEBUG, "waiting: the user is being moved");
		session_set_state(s, SESSION_DIRECTOR_WAIT);
		session_timer_set(s, s->login_deadline);
		return;
	case DIRECTOR_ROUTE_FAIL:
		session_login_failed(s, FRONT_AUTH_TEMPFAIL, SESSION_TEMPFAIL_TEXT, error);
		return;
	}
}

static void session_route(struct session *s, const struct auth_result *r)
{
	const struct config *cfg = s->cfg;
	struct registry *reg = &s->proxy->registry;

	registry_set_user(reg, &s->reg, r->user, 0);
	for (size_t i = 0; i < r->alt_count; i++)
		registry_add_alt(&s->reg, r->alt[i].field, r->alt[i].value);
	s->login_user = xstrdup(r->destuser != NULL ? r->destuser : r->user);

	unsigned int limit = cfg->login.max_userip_connections;
	if (limit > 0 && registry_user_ip_count(reg, r->user, &s->reg.client_ip) > limit) {
		char text[160];
		/* Dovecot's refusal text, naming Dovecot's setting */
		snprintf(text, sizeof(text), "Maximum number of connections from user+IP "
			 "exceeded (mail_max_userip_connections=%u)", limit);
		session_login_failed(s, FRONT_AUTH_LIMIT, text,
				     "too many sessions from this user and address");
		return;
	}
	/* §10.5: a TTL that reached the floor means proxies loop */
	if (s->front->forward.ttl <= 1) {
		session_login_failed(s, FRONT_AUTH_TEMPFAIL, SESSION_TEMPFAIL_TEXT,
				     "TTL reached zero - proxies appear to be looping?");
		return;
	}
	s->route_port = r->port != 0 ? r->port :
		proxy_protocol_backend_port(s->listener->protocol, cfg);
	if (r->host != NULL) {
		struct ipaddr ip;
		if (ipaddr_parse(r->host, &ip) < 0) {
			session_login_failed(s, FRONT_AUTH_TEMPFAIL, SESSION_TEMPFAIL_TEXT,
					     "passdb host is not an IP address");
			return;
		}
		/* the hash still identifies the user for director kicks */
		registry_set_director(&s->reg,
				      director_user_hash(s->proxy->director, s->login_user),
				      REGISTRY_TAG_NONE);
		session_backend_begin(s, &ip, r->host);
		return;
	}
	/* Dovecot hashes destuser when the passdb gives one (§4.7) */
	s->route_tag = r->director_tag != NULL ? xstrdup(r->director_tag) : NULL;
	session_route_director(s);
}

static void session_auth_done(void *ctx, uint64_t id, const struct auth_result *r)
{
	struct proxy *proxy = ctx;
	/* the session may be gone by now: find it by id */
	struct registry_entry *e = registry_find(&proxy->registry, id);
	if (e == NULL)
		return;
	struct session *s = session_from_entry(e);
	s->auth_req = NULL; /* done: the handle is no longer ours */
	if (s->state != SESSION_AUTH)
		return;
	switch (r->status) {
	case AUTH_STATUS_OK:
		session_route(s, r);
		break;
	case AUTH_STATUS_FAILED:
		session_penalise(s);
		session_login_failed(s, FRONT_AUTH_FAILED, NULL, r->error);
		break;
	case AUTH_STATUS_NOLOGIN:
		session_login_failed(s, FRONT_AUTH_FAILED_REASON,
				     r->reason != NULL ? r->reason : "Login disabled.",
				     "nologin");
		break;
	case AUTH_STATUS_TEMPFAIL:
		/* a full queue is load, not a fault: the login line says it */
		if (!r->busy)
			session_log(s, LOG_LEVEL_ERROR, "auth failed: %s", r->error);
		/* the client gets the generic text; the reason is logged */
		session_login_failed(s, FRONT_AUTH_TEMPFAIL, NULL, r->error);
		break;
	}
	session_settle(s);
}

/* ---- client side ---------------------------------------------------- */

static void session_auth_lookup(struct session *s)
{
	const struct auth_request_params params = {
		.user = s->auth_user, .password = s->password,
		.callback = session_auth_done, .ctx = s->proxy, .cookie = s->reg.id,
		.client_ip = &s->reg.client_ip,
	};
	s->auth_start = 0;
	s->auth_req = auth_request_start(s->proxy->auth, &params);
}

static void session_start_auth(struct session *s)
{
	struct front *f = s->front;
	const struct sasl_credentials *c = &f->login.creds;

	if (c->authzid[0] != '\0' && strcmp(c->authzid, c->authcid) != 0) {
		session_login_failed(s, FRONT_AUTH_FAILED, NULL,
				     "logging in as another user (SASL authzid) is not supported");
		return;
	}
	/* from here on the client is who a trusted proxy says it is */
	if (f->forward.have_ip) {
		s->reg.client_ip = f->forward.ip;
		s->reg.client_port = f->forward.port;
	}
	s->use_sasl = f->login.mech != NULL;
	s->password = xstrdup(c->password);
	s->auth_user = xstrdup(c->authcid);
	front_login_clear(f);
	session_set_state(s, SESSION_AUTH);
	s->reg.state = REGISTRY_STATE_LOGIN;
	/* an address with recent failures waits first (§6.3) */
	unsigned int delay = s->proxy->penalty == NULL ? 0 :
		penalty_delay_ms(s->proxy->penalty, &s->reg.client_ip, time(NULL));
	s->auth_start = clock_monotonic_ms() + delay;
	if (delay > 0) {
		session_log(s, LOG_LEVEL_DEBUG, "auth delayed %ums by failure penalty", delay);
		session_timer_set(s, MIN(s->auth_start, s->login_deadline));
		return;
	}
	session_auth_lookup(s);
}

static void session_client_tls_start(struct session *s)
{
	s->starttls_pending = false;
	if (conn_tls_start(&s->client, s->proxy->client_tls, true, NULL) < 0) {
		session_log(s, LOG_LEVEL_INFO, "TLS setup failed: %s", s->client.error);
		session_end(s, "TLS setup failed");
		return;
	}
	session_set_state(s, SESSION_TLS_HANDSHAKE);
}

/* Feeds buffered input to the front while it is taking commands. */
static void session_process_input(struct session *s)
{
	if (s->processing)
		return;	/* the caller's loop goes on */
	s->processing = true;
	while (s->state == SESSION_PRELOGIN && s->end_reason == NULL &&
	       sbuf_len(&s->in) > 0 && !session_output_full(s)) {
		size_t consumed;
		enum front_event ev = s->front->ops->feed(s->front,
			(unsigned char *)sbuf_mdata(&s->in), sbuf_len(&s->in),
			&consumed, &s->out);
		sbuf_consume(&s->in, consumed);
		if (ev == FRONT_EV_NONE && consumed == 0)
			break;
		if (ev == FRONT_EV_STARTTLS) {
			/* bytes sent behind STARTTLS were not protected: drop
			 * them (the CVE-2011-0411 class of injection) */
			if (sbuf_len(&s->in) > 0)
				session_log(s, LOG_LEVEL_INFO,
					    "dropped %zu bytes pipelined after STARTTLS",
					    sbuf_len(&s->in));
			sbuf_free(&s->in);
			s->starttls_pending = true;
		} else if (ev == FRONT_EV_AUTH) {
			session_start_auth(s);
		} else if (ev == FRONT_EV_CLOSE) {
			session_finish(s, s->front->close_reason);
		}
	}
	s->processing = false;
	if (s->state == SESSION_PRELOGIN && s->end_reason == NULL &&
	    sbuf_len(&s->in) >= s->proxy->input_limit) {
		s->front->ops->disconnect(s->front, "Input buffer full, aborting.", &s->out);
		session_finish(s, "input buffer full before login");
	}
}

/* Reads client input while there is room; notices a client that left. */
static void session_client_read(struct session *s)
{
	while (sbuf_len(&s->in) < s->proxy->input_limit && !session_output_full(s)) {
		size_t room = MIN(SESSION_READ_CHUNK, s->proxy->input_limit - sbuf_len(&s->in));
		char *buf = sbuf_reserve(&s->in, room);
		ssize_t n = conn_read(&s->client, buf, room);
		if (n == CONN_AGAIN)
			break;
		if (n == 0) {
			session_end(s, s->state == SESSION_PRELOGIN ?
				    "disconnected before login" :
				    "disconnected during login");
			return;
		}
		if (n < 0) {
			session_log(s, LOG_LEVEL_DEBUG, "read failed: %s", s->client.error);
			session_end(s, "client connection failed");
			return;
		}
		sbuf_commit(&s->in, (size_t)n);
		/* a short plain read drained the socket, and the level-
		 * triggered event reports more; TLS may hold decrypted
		 * records no event announces */
		if ((size_t)n < room && !conn_is_tls(&s->client))
			break;
	}
	sbuf_release_if_empty(&s->in);
}

/* CLOSING: reads and drops the client's input, a bounded amount per
 * event (the close timeout bounds the whole). */
static void session_client_discard(struct session *s)
{
	char buf[SESSION_READ_CHUNK];
	for (int i = 0; i < 16; i++) {
		ssize_t n = conn_read(&s->client, buf, sizeof(buf));
		if (n == CONN_AGAIN)
			return;
		if (n == 0) {
			/* a half-close: it may still read its goodbye */
			s->client_eof = true;
			return;
		}
		if (n < 0) {
			session_end(s, s->finish_reason);
			return;
		}
	}
}

static void session_client_handshake(struct session *s)
{
	int r = conn_handshake(&s->client);
	if (r == CONN_AGAIN)
		return;
	if (r < 0) {
		session_log(s, LOG_LEVEL_INFO, "TLS handshake failed: %s", s->client.error);
		session_end(s, "TLS handshake failed");
		return;
	}
	s->front->tls_active = true;
	session_set_state(s, SESSION_PRELOGIN);
	if (s->greet_after_tls) {
		s->greet_after_tls = false;
		s->front->ops->greet(s->front, &s->out);
	} else if (s->front->ops->tls_started != NULL) {
		s->front->ops->tls_started(s->front, &s->out);
	}
}

static void session_client_dispatch(struct session *s)
{
	switch (s->state) {
	case SESSION_TLS_HANDSHAKE:
		session_client_handshake(s);
		if (s->state != SESSION_PRELOGIN)
			return;
		break;
	case SESSION_PROXYING:
		session_relay(s);
		return;
	case SESSION_CLOSING:
		session_client_discard(s);
		session_client_flush(s);
		if (sbuf_len(&s->out) == 0)
			session_end(s, s->finish_reason);
		return;
	default:
		break;
	}
	session_client_flush(s);
	if (s->starttls_pending) {
		if (sbuf_len(&s->out) == 0)
			session_client_tls_start(s);
		return;
	}
	session_client_read(s);
	session_process_input(s);
	session_client_flush(s);
	if (s->starttls_pending && sbuf_len(&s->out) == 0 && s->end_reason == NULL) {
		session_client_tls_start(s);
		session_client_handshake(s);
	}
}

static void session_client_event(struct conn *c, void *ctx)
{
	struct session *s = ctx;
	(void)c;
	session_client_dispatch(s);
	session_settle(s);
}

/* ---- timer, kick ---------------------------------------------------- */

/* One attempt at the goodbye of a proxied session (plain or TLS), unless
 * loft holds part of the backend's output (the goodbye would cut into it)
 * or the stream is compressed. */
static void session_relayed_goodbye(struct session *s, const char *text)
{
	/* a compressed stream (COMPRESS) cannot take plain text: close
	 * without a word rather than break the client's inflater */
	if (relay_client_pending(&s->relay) || s->stream_opaque)
		return;
	struct sbuf bye = SBUF_INIT;
	s->front->ops->disconnect(s->front, text, &bye);
	(void)conn_write(&s->client, sbuf_data(&bye), sbuf_len(&bye));
	sbuf_free(&bye);
}

/* The protocol's goodbye, then close. */
static void session_goodbye(struct session *s, const char *text, const char *reason)
{
	if (s->state == SESSION_PROXYING) {
		session_relayed_goodbye(s, text);
		session_end(s, reason);
	} else {
		s->front->ops->disconnect(s->front, text, &s->out);
		session_finish(s, reason);
	}
}

/* While proxying the timer is the idle deadline (or the end of the wait
 * for the backend's rest after the client ended), and the relay's way to
 * run again after yielding (which cancels the deadline: it is set anew). */
static void session_proxying_timer(struct session *s, uint64_t now)
{
	if (s->drain_deadline != 0 && now >= s->drain_deadline) {
		session_end(s, "disconnected by client");
		return;
	}
	if (s->idle_ms > 0 && now >= s->last_traffic + s->idle_ms) {
		session_goodbye(s, "Disconnected for inactivity.", "idle timeout");
		return;
	}
	session_relay(s);
	if (s->end_reason == NULL)
		session_relay_timer(s);
}

static void session_timer(evutil_socket_t fd, short what, void *arg)
{
	struct session *s = arg;
	uint64_t now = clock_monotonic_ms();
	(void)fd;
	(void)what;

	if (s->kick_text != NULL && s->state == SESSION_TLS_HANDSHAKE) {
		/* no protocol yet to say goodbye in */
		session_end(s, "kicked");
	} else if (s->kick_text != NULL && s->state != SESSION_CLOSING) {
		session_goodbye(s, s->kick_text, "kicked");
	} else {
		switch (s->state) {
		case SESSION_BACKEND_RETRY:
			if (now >= s->login_deadline) {
				session_backend_failed(s, "login timeout");
				break;
			}
			session_backend_connect(s);
			break;
		case SESSION_BACKEND_CONNECT:
		case SESSION_BACKEND_TLS:
		case SESSION_BACKEND_LOGIN:
			if (now >= s->backend_deadline || now >= s->login_deadline)
				session_backend_failed(s, "timed out (%s)",
						       session_state_names[s->state]);
			else
				session_timer_set(s, MIN(s->backend_deadline,
							 s->login_deadline));
			break;
		case SESSION_CLOSING:
			/* a kick does not cut a goodbye short */
			if (now >= s->close_deadline)
				session_end(s, s->finish_reason);
			else
				session_timer_set(s, s->close_deadline);
			break;
		case SESSION_PROXYING:
			session_proxying_timer(s, now);
			break;
		case SESSION_TLS_HANDSHAKE:
			session_end(s, "TLS handshake timeout");
			break;
		case SESSION_DIRECTOR_WAIT:
			if (s->route_again && now < s->login_deadline) {
				session_route_director(s);
				break;
			}
			/* the move outlasted the login timeout */
			/* fall through */
		case SESSION_AUTH:
			if (s->state == SESSION_AUTH && s->auth_start != 0 &&
			    now < s->login_deadline) {
				session_auth_lookup(s);
				/* the deadline holds through the lookup too */
				session_timer_set(s, s->login_deadline);
				break;
			}
			/* the login took too long */
			/* fall through */
		default:
			s->front->ops->disconnect(s->front, "Disconnected for inactivity.",
						  &s->out);
			session_finish(s, "login timeout");
			break;
		}
	}
	session_settle(s);
}

/* Registry kick callback: never closes inline (the caller iterates). */
static void session_kick(struct registry_entry *e, const char *text)
{
	struct session *s = session_from_entry(e);
	if (s->kick_text != NULL)
		return;
	s->kick_text = text;
	event_active(&s->timer, EV_TIMEOUT, 1);
}

/* ---- lifecycle ------------------------------------------------------ */

static void session_close(struct session *s)
{
	char ip[IPADDR_STRLEN];
	uint64_t ms = clock_monotonic_ms() - s->start_mono;

	char backend[IPADDR_STRLEN + 8] = "-";
	if (ipaddr_is_set(&s->reg.backend_ip))
		snprintf(backend, sizeof(backend), "%s:%u",
			 ipaddr_to_str(&s->reg.backend_ip, ip), s->reg.backend_port);
	session_log(s, LOG_LEVEL_INFO,
		    "closed: backend=%s duration=%llu.%03llus in=%llu out=%llu reason=\"%s\"",
		    backend,
		    (unsigned long long)(ms / 1000), (unsigned long long)(ms % 1000),
		    (unsigned long long)s->client.bytes_in,
		    (unsigned long long)s->client.bytes_out, s->end_reason);
	registry_remove(&s->proxy->registry, &s->reg);
	/* a verification nobody waits for: out of the queue, or dropped */
	auth_request_abort(s->proxy->auth, &s->auth_req);
	session_release_prelogin(s);
	if (s->state == SESSION_PROXYING)
		relay_stop(&s->relay);
	session_release_backend(s);
	conn_close(&s->client);
	evtimer_del(&s->timer);
	s->front->ops->destroy(s->front);
	sbuf_free_secret(&s->in);
	sbuf_free(&s->out);
	xfree_secret(&s->password);
	free(s->auth_user);
	free(s->login_user);
	free(s->route_tag);
	config_unref(&s->cfg);
	free(s);
}

/* The end of every entry point: close if the session ended, else make
 * sure the client connection waits for the right things. */
static void session_settle(struct session *s)
{
	if (s->end_reason != NULL) {
		session_close(s);
		return;
	}
	if (s->state == SESSION_PROXYING)
		return; /* the relay keeps both interests current */
	if (s->state == SESSION_TLS_HANDSHAKE) {
		conn_set_interest(&s->client, true, false);
		return;
	}
	session_client_interest(s);
}

void session_new(struct proxy_listener *pl, const struct listener_accept *acc)
{
	struct proxy *p = pl->proxy;
	bool trusted = proxy_trusted(p->cfg, &acc->peer_ip), slot;
	if (!proxy_prelogin_admit(pl, acc, trusted, &slot))
		return;
	struct session *s = xcalloc(1, sizeof(*s));
	s->prelogin_slot = slot;
	s->slot_ip = acc->peer_ip;

	s->proxy = p;
	s->cfg = config_ref(p->cfg);
	s->listener = pl;
	proxy_entry_init(p, &s->reg, s->id_str, pl->protocol->name, acc);
	s->reg.kick = session_kick;
	s->reg.shutdown = session_shutdown;
	s->reg.resume = session_director_resume;
	s->local_ip = acc->local_ip;
	s->local_port = acc->local_port;
	s->start_mono = clock_monotonic_ms();
	s->login_deadline = s->start_mono + s->cfg->login.timeout_ms;
	/* the client's LOGIN and the backend login line carry the password:
	 * every copy of them is wiped when let go (the relay inherits bout) */
	sbuf_set_secret(&s->in);
	sbuf_set_secret(&s->bout);
	conn_init(&s->backend);
	conn_attach(&s->client, p->base, acc->fd, session_client_event, s);
	evtimer_assign(&s->timer, p->base, session_timer, s);
	registry_add(&p->registry, &s->reg);

	s->front = pl->protocol->front->create(&p->front_params);
	s->front->trusted = trusted;
	/* like Dovecot, a client on the server's own address is secured */
	s->front->secured_network = s->front->trusted ||
		ipaddr_equal(&acc->peer_ip, &acc->local_ip);
	s->front->starttls_available = p->client_tls != NULL && !pl->set->tls;
	session_log(s, LOG_LEVEL_DEBUG, "connected to %s port %u", pl->protocol->name,
		    acc->local_port);
	session_timer_set(s, s->login_deadline);
	if (pl->set->tls) {
		s->state = SESSION_TLS_HANDSHAKE;
		s->greet_after_tls = true;
		if (conn_tls_start(&s->client, p->client_tls, true, NULL) < 0)
			session_end(s, "TLS setup failed");
	} else {
		s->state = SESSION_PRELOGIN;
		s->front->ops->greet(s->front, &s->out);
		session_client_flush(s);
	}
	session_settle(s);
}

void session_director_resume(struct registry_entry *e)
{
	struct session *s = session_from_entry(e);
	if (s->state != SESSION_DIRECTOR_WAIT)
		return;
	/* not from inside the director's callback: on the next loop turn */
	s->route_again = true;
	event_active(&s->timer, EV_TIMEOUT, 1);
}

void session_shutdown(struct registry_entry *e, const char *text)
{
	struct session *s = session_from_entry(e);

	/* one attempt to say goodbye: the session closes now */
	if (s->state == SESSION_PROXYING) {
		session_relayed_goodbye(s, text);
	} else if (s->state != SESSION_TLS_HANDSHAKE && s->state != SESSION_CLOSING) {
		s->front->ops->disconnect(s->front, text, &s->out);
		(void)conn_write_sbuf(&s->client, &s->out);
	}
	session_end(s, "shutdown");
	session_close(s);
}
