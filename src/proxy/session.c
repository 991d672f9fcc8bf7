/* A proxied session's lifecycle and its client side before login
 * (session_private.h has the whole picture): accept, the client's TLS,
 * the front fed with the client's commands, the one timer, kicks, and
 * the one close path. */
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "auth/auth.h"
#include "common/clock.h"
#include "common/xmalloc.h"
#include "proxy/protocols.h"
#include "proxy/session_private.h"

#define SESSION_READ_CHUNK 4096

const char *const proxy_session_state_names[PROXY_SESSION_STATES] = {
	[SESSION_TLS_HANDSHAKE] = "tls-handshake",
	[SESSION_PRELOGIN] = "pre-login",
	[SESSION_AUTH] = "auth",
	[SESSION_DIRECTOR_WAIT] = "director-wait",
	[SESSION_BACKEND_LOGIN] = "backend-login",
	[SESSION_PROXYING] = "proxying",
	[SESSION_CLOSING] = "closing",
};

/* ---- helpers ------------------------------------------------------ */

void session_log(struct session *s, enum log_level level, const char *fmt, ...)
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

void session_set_state(struct session *s, enum session_state state)
{
	if (s->state == state)
		return;
	session_log(s, LOG_LEVEL_DEBUG, "state %s -> %s",
		    proxy_session_state_names[s->state], proxy_session_state_names[state]);
	uint64_t *gauge = s->proxy->stats.sessions[s->listener->set->protocol];
	gauge[s->state]--;
	gauge[state]++;
	s->state = state;
}

void session_count_login(struct session *s, enum proxy_login_result result)
{
	s->proxy->stats.logins[s->listener->set->protocol][result]++;
}

static struct session *session_from_entry(struct registry_entry *e)
{
	return CONTAINER_OF(e, struct session, reg);
}

void session_timer_set(struct session *s, uint64_t deadline_mono)
{
	uint64_t now = clock_monotonic_ms();
	uint64_t ms = deadline_mono > now ? deadline_mono - now : 0;
	struct timeval tv = { (time_t)(ms / 1000), (suseconds_t)(ms % 1000) * 1000 };
	evtimer_add(&s->timer, &tv);
}

void session_end(struct session *s, const char *reason)
{
	if (s->end_reason == NULL)
		s->end_reason = reason;
}

void session_client_flush(struct session *s)
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

void session_release_prelogin(struct session *s)
{
	if (s->prelogin_slot) {
		proxy_prelogin_release(s->proxy, &s->slot_ip);
		s->prelogin_slot = false;
	}
}

void session_end_after_flush(struct session *s, const char *reason)
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

/* A pass-through login's backend waits for the client's answer. */
static bool session_relaying_sasl(const struct session *s)
{
	return s->state == SESSION_BACKEND_LOGIN && s->front->state == FRONT_SASL;
}

void session_process_input(struct session *s)
{
	if (s->processing)
		return;	/* the caller's loop goes on */
	s->processing = true;
	while ((s->state == SESSION_PRELOGIN || session_relaying_sasl(s)) &&
	       s->end_reason == NULL && sbuf_len(&s->in) > 0 && !session_output_full(s)) {
		size_t consumed;
		enum front_event ev = s->front->ops->feed(s->front,
			(unsigned char *)sbuf_mdata(&s->in), sbuf_len(&s->in),
			&consumed, &s->out);
		sbuf_consume(&s->in, consumed);
		if (s->front->sasl_refused_why != NULL) {
			/* the client got the generic failure; the log says why */
			session_log(s, LOG_LEVEL_INFO, "login failed: %s: %s",
				    s->front->sasl_refused_mech, s->front->sasl_refused_why);
			s->front->sasl_refused_mech = s->front->sasl_refused_why = NULL;
		}
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
			session_end_after_flush(s, s->front->close_reason);
		} else if (ev == FRONT_EV_SASL_RESPONSE || ev == FRONT_EV_SASL_ABORT) {
			session_sasl_relay_event(s, ev);
		}
	}
	s->processing = false;
	if (s->state == SESSION_PRELOGIN && s->end_reason == NULL &&
	    sbuf_len(&s->in) >= s->proxy->input_limit) {
		s->front->ops->disconnect(s->front, "Input buffer full, aborting.", &s->out);
		session_end_after_flush(s, "input buffer full before login");
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

/* CLOSING: the goodbye goes out while the client's input is dropped;
 * once it is out, the write side is shut (a FIN after the goodbye) and
 * the input still dropped until the client closes too (nginx's lingering
 * close): a close with unread input would reset the connection, and the
 * client could lose the goodbye. limits.close_timeout bounds it all. */
static void session_client_closing(struct session *s)
{
	session_client_discard(s);
	if (s->end_reason != NULL)
		return;
	session_client_flush(s);
	if (sbuf_len(&s->out) > 0)
		return;
	if (s->client_eof) {
		session_end(s, s->finish_reason);
		return;
	}
	if (!s->lingering) {
		s->lingering = true;
		conn_shutdown_write(&s->client);
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
		session_client_closing(s);
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
	struct auth *auth = s->proxy->auth;
	(void)c;
	session_client_dispatch(s);
	session_settle(s);
	/* an answer given at once (passdb "backend", an auth cache hit,
	 * an unknown user): the login goes on to its backend now, not at
	 * the end of this loop turn, behind every other ready descriptor
	 * (at 256 clients that was 3-11 ms per login, make bench-tail) */
	auth_run_completed(auth);
}

/* ---- timer, kick ---------------------------------------------------- */

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
			/* fall through */
		case SESSION_BACKEND_LOGIN:
			/* the backend login has its own timer for its steps;
			 * this one is the whole login's */
			if (s->state == SESSION_BACKEND_LOGIN && now < s->login_deadline) {
				session_timer_set(s, s->login_deadline);
				break;
			}
			/* the login took too long (auth, a move's wait
			 * or the backend login) */
			session_count_login(s, PROXY_LOGIN_TIMEOUT);
			/* fall through */
		default:
			s->front->ops->disconnect(s->front, "Disconnected for inactivity.",
						  &s->out);
			session_end_after_flush(s, "login timeout");
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
	s->proxy->stats.kicks++;
	s->kick_text = text;
	event_active(&s->timer, EV_TIMEOUT, 1);
}

/* ---- lifecycle ------------------------------------------------------ */

static void session_close(struct session *s)
{
	char ip[IPADDR_STRLEN];
	uint64_t ms = clock_monotonic_ms() - s->start_mono;
	BENCH_MARK(&s->bench, BENCH_CLOSE);
	BENCH_KEEP(&s->bench);

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
	s->proxy->stats.sessions[s->listener->set->protocol][s->state]--;
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
	session_forget_secrets(s);
	free(s->auth_user);
	free(s->master_user);
	free(s->login_user);
	free(s->route_tag);
	config_unref(&s->cfg);
	free(s);
}

void session_settle(struct session *s)
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
	s->start_us = clock_monotonic_us();
	s->login_deadline = s->start_mono + s->cfg->login.timeout_ms;
	/* the client's LOGIN carries the password: every copy of it is
	 * wiped when let go (backend_login does the same for its login line) */
	sbuf_set_secret(&s->in);
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
	s->state = pl->set->tls ? SESSION_TLS_HANDSHAKE : SESSION_PRELOGIN;
	p->stats.connections[pl->set->protocol][PROXY_CONN_ACCEPTED]++;
	p->stats.sessions[pl->set->protocol][s->state]++;
	if (pl->set->tls) {
		s->greet_after_tls = true;
		if (conn_tls_start(&s->client, p->client_tls, true, NULL) < 0)
			session_end(s, "TLS setup failed");
	} else {
		s->front->ops->greet(s->front, &s->out);
		session_client_flush(s);
	}
	BENCH_MARK(&s->bench, BENCH_ACCEPT);
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
