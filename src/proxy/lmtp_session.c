/* LMTP sessions: proto/lmtp_front speaks to the client, this file looks
 * each recipient up and routes it, lmtp_transaction.c asks the backends
 * and delivers the message to them:
 *
 *   CLIENT (the front reads commands, or the body)
 *     -> RCPT: lookup -> route -> backend MAIL, RCPT -> its reply -> CLIENT
 *     -> DELIVERING: every backend's verdicts -> one reply each -> CLIENT
 *     -> CLOSING (QUIT, or the client's input is over): flush, close
 *
 * One command at a time; pipelined ones wait in `in`. When the client's
 * input ends (a half-close), what was read is still finished and
 * answered before the session closes (RFC 2920 §3.2). The client may be
 * idle for lmtp.client_timeout; a backend's time to answer is counted by
 * lmtp_backend.c, only while it owes an answer. What the backends say
 * wakes the session's timer, and the session acts on it from there.
 * Every entry point ends with lmtp_settle(), the one caller of
 * lmtp_close(). */
#include "proxy/lmtp_session.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "auth/auth.h"
#include "common/clock.h"
#include "common/log.h"
#include "common/sbuf.h"
#include "common/xmalloc.h"
#include "core/conn.h"
#include "director/director.h"
#include "proto/lmtp_front.h"
#include "proxy/lmtp_transaction.h"

#define LMTP_READ_CHUNK 16384
#define LMTP_TEMPFAIL "451 4.3.0 Temporary internal error"

enum lmtp_state {
	LMTP_CLIENT,		/* the front has the client's input */
	LMTP_RCPT,		/* a recipient is being looked up, routed, asked */
	LMTP_DELIVERING,	/* waiting for the backends' verdicts */
	LMTP_CLOSING,		/* sending the last output, then close */
};

_Static_assert(LMTP_CLOSING + 1 == PROXY_LMTP_STATES,
	       "proxy_lmtp_state_names has a name per state");

const char *const proxy_lmtp_state_names[PROXY_LMTP_STATES] = {
	[LMTP_CLIENT] = "client", [LMTP_RCPT] = "rcpt",
	[LMTP_DELIVERING] = "delivering", [LMTP_CLOSING] = "closing",
};

struct lmtp_session {
	struct registry_entry reg;
	struct proxy *proxy;
	enum lmtp_state state;
	struct conn client;
	struct event timer;
	struct sbuf in, out;
	struct lmtp_front front;
	bool client_eof;		/* the client sends no more */
	uint64_t deadline;		/* CLIENT: idle; CLOSING: the flush */
	const char *close_reason;	/* CLOSING: the reason once flushed */

	/* the transaction (the front holds MAIL FROM and the message) */
	struct lmtp_transaction tx;

	/* the recipient being looked up and routed (its address is the
	 * front's rcpt; its answer comes in tx.rcpt_reply) */
	char *rcpt_user, *rcpt_dest, *rcpt_tag;
	struct ipaddr rcpt_ip;
	uint16_t rcpt_port;
	bool rcpt_has_host;
	struct director_ticket rcpt_ticket;
	bool wake_route;		/* the director's wait is over */

	const char *kick_text;
	const char *end_reason;
	char id_str[PROXY_ID_STRLEN];
};

static void lmtp_settle(struct lmtp_session *s);

static void lmtp_log(struct lmtp_session *s, enum log_level level, const char *fmt, ...)
	ATTR_FORMAT(3, 4);

static void lmtp_log(struct lmtp_session *s, enum log_level level, const char *fmt, ...)
{
	char ip[IPADDR_STRLEN], text[1024];
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(text, sizeof(text), fmt, ap);
	va_end(ap);
	log_msg(level, "session %s lmtp %s:%u: %s", s->id_str,
		ipaddr_to_str(&s->reg.client_ip, ip), s->reg.client_port, text);
}

static void lmtp_reply(struct lmtp_session *s, const char *fmt, ...) ATTR_FORMAT(2, 3);

static void lmtp_reply(struct lmtp_session *s, const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	sbuf_vappendf(&s->out, fmt, ap);
	va_end(ap);
	sbuf_appends(&s->out, "\r\n");
}

static void lmtp_set_state(struct lmtp_session *s, enum lmtp_state state)
{
	if (s->state == state)
		return;
	lmtp_log(s, LOG_LEVEL_DEBUG, "state %s -> %s", proxy_lmtp_state_names[s->state],
		 proxy_lmtp_state_names[state]);
	s->proxy->stats.lmtp_sessions[s->state]--;
	s->proxy->stats.lmtp_sessions[state]++;
	s->state = state;
}

/* Work for the session's next turn (never from inside a callback). */
static void lmtp_wake(void *ctx)
{
	struct lmtp_session *s = ctx;
	event_active(&s->timer, EV_TIMEOUT, 1);
}

static void lmtp_end(struct lmtp_session *s, const char *reason)
{
	if (s->end_reason == NULL)
		s->end_reason = reason;
}

/* The turn is the client's again: its idle time starts now. */
static void lmtp_await_client(struct lmtp_session *s)
{
	lmtp_set_state(s, LMTP_CLIENT);
	s->deadline = clock_monotonic_ms() + s->proxy->cfg->lmtp.client_timeout_ms;
}

/* Ends the session once its output is sent, which a client that does
 * not read gets lmtp.client_timeout for. */
static void lmtp_finish(struct lmtp_session *s, const char *reason)
{
	lmtp_set_state(s, LMTP_CLOSING);
	s->close_reason = reason;
	s->deadline = clock_monotonic_ms() + s->proxy->cfg->lmtp.client_timeout_ms;
}

/* ---- recipients ------------------------------------------------------- */

static void lmtp_rcpt_clear(struct lmtp_session *s)
{
	director_release(s->proxy->director, &s->rcpt_ticket, time(NULL));
	free(s->rcpt_user);
	free(s->rcpt_dest);
	free(s->rcpt_tag);
	s->rcpt_user = s->rcpt_dest = s->rcpt_tag = NULL;
	s->wake_route = false;
}

/* Asks the recipient's backend, with the client's address for XCLIENT. */
static void lmtp_rcpt_to_backend(struct lmtp_session *s)
{
	const struct front_forward *fw = &s->front.forward;
	const struct lmtp_client_params params = {
		.hostname = s->proxy->hostname,
		.forward = true,
		.client_ip = s->reg.client_ip,
		.client_port = s->reg.client_port,
		.session_id = fw->session_id[0] != '\0' ? fw->session_id : s->id_str,
		.ttl = fw->ttl,
	};
	s->tx.mail_from = s->front.mail_from;
	s->tx.mail_body = s->front.mail_body;
	lmtp_transaction_ask(&s->tx, &s->rcpt_ip, s->rcpt_port, s->rcpt_dest, &params);
}

/* Asks the director (unless the passdb named the host). */
static void lmtp_rcpt_route(struct lmtp_session *s)
{
	const struct director_host *h;
	const char *error;
	if (!s->proxy->serving) {
		/* fenced: another director of the ring takes the mail */
		lmtp_log(s, LOG_LEVEL_INFO, "%s: not routed: this director is fenced",
			 s->front.rcpt);
		lmtp_transaction_answer(&s->tx, LMTP_TEMPFAIL, false);
		return;
	}
	if (s->rcpt_has_host) {
		lmtp_rcpt_to_backend(s);
		return;
	}
	switch (director_route(s->proxy->director, s->rcpt_user, s->rcpt_tag, time(NULL),
			       s->reg.id, &h, &s->rcpt_ticket, &error)) {
	case DIRECTOR_ROUTE_OK:
		s->rcpt_ip = h->ip;
		lmtp_rcpt_to_backend(s);
		return;
	case DIRECTOR_ROUTE_WAIT:
		lmtp_log(s, LOG_LEVEL_DEBUG, "%s: waiting, the user is being moved",
			 s->front.rcpt);
		return;
	case DIRECTOR_ROUTE_FAIL:
		lmtp_log(s, LOG_LEVEL_INFO, "%s: cannot route: %s", s->front.rcpt, error);
		lmtp_transaction_answer(&s->tx, LMTP_TEMPFAIL, false);
		return;
	}
}

static void lmtp_auth_done(void *ctx, uint64_t id, const struct auth_result *r)
{
	struct proxy *proxy = ctx;
	struct registry_entry *e = registry_find(&proxy->registry, id);
	if (e == NULL)
		return;
	struct lmtp_session *s = CONTAINER_OF(e, struct lmtp_session, reg);
	const char *address = s->front.rcpt;
	char text[512];
	if (s->state != LMTP_RCPT)
		return;
	switch (r->status) {
	case AUTH_STATUS_FAILED:
		snprintf(text, sizeof(text), "550 5.1.1 <%s> User doesn't exist: %s",
			 address, address);
		lmtp_transaction_answer(&s->tx, text, false);
		break;
	case AUTH_STATUS_TEMPFAIL:
		lmtp_log(s, LOG_LEVEL_ERROR, "%s: passdb lookup failed: %s", address, r->error);
		lmtp_transaction_answer(&s->tx, LMTP_TEMPFAIL, false);
		break;
	case AUTH_STATUS_OK:
	case AUTH_STATUS_NOLOGIN:	/* may not log in, may receive mail */
		s->rcpt_user = xstrdup(r->destuser != NULL ? r->destuser : r->user);
		s->rcpt_dest = xstrdup(r->destuser != NULL ? r->destuser : address);
		s->rcpt_tag = r->director_tag != NULL ? xstrdup(r->director_tag) : NULL;
		s->rcpt_port = r->port != 0 ? r->port : (uint16_t)proxy->cfg->backend.lmtp_port;
		s->rcpt_has_host = r->host != NULL;
		if (s->rcpt_has_host && ipaddr_parse(r->host, &s->rcpt_ip) < 0) {
			lmtp_log(s, LOG_LEVEL_ERROR, "%s: passdb host is not an IP address",
				 address);
			lmtp_transaction_answer(&s->tx, LMTP_TEMPFAIL, false);
			break;
		}
		lmtp_rcpt_route(s);
		break;
	}
	lmtp_settle(s);
}

static void lmtp_rcpt_start(struct lmtp_session *s)
{
	lmtp_set_state(s, LMTP_RCPT);
	auth_lookup_user(s->proxy->auth, s->front.rcpt, lmtp_auth_done, s->proxy, s->reg.id);
}

/* The recipient's answer is known: tell the client, keep an accepted one. */
static void lmtp_rcpt_finish(struct lmtp_session *s)
{
	bool accepted = s->tx.rcpt_accepted;
	char *reply = lmtp_transaction_rcpt_done(&s->tx, s->front.rcpt, &s->rcpt_ticket);
	lmtp_front_rcpt_done(&s->front, reply, accepted, &s->out);
	free(reply);
	lmtp_rcpt_clear(s);
	lmtp_await_client(s);
}

/* ---- the message ------------------------------------------------------- */

/* Every verdict is in: one reply per accepted recipient, in order. */
static void lmtp_delivered(struct lmtp_session *s)
{
	for (size_t i = 0; i < s->tx.nrcpts; i++) {
		const struct lmtp_rcpt *rc = &s->tx.rcpts[i];
		char ip[IPADDR_STRLEN];
		struct ipaddr addr;
		uint16_t port;
		lmtp_transaction_route_addr(&s->tx, i, &addr, &port);
		lmtp_log(s, LOG_LEVEL_INFO, "%s: delivered via %s:%u: %s", rc->address,
			 ipaddr_to_str(&addr, ip), port, rc->reply);
		lmtp_reply(s, "%s", rc->reply);
	}
	lmtp_front_data_done(&s->front);
	lmtp_transaction_reset(&s->tx);
	/* the message may have grown the input buffer to the input limit: a
	 * session waiting for its next message holds none */
	sbuf_release_if_empty(&s->in);
	lmtp_await_client(s);
	if (s->kick_text != NULL)
		lmtp_wake(s);	/* the kick that waited for this */
}

/* ---- the client side --------------------------------------------------- */

/* Replies the client has not read yet fill limits.session_buffer: its
 * commands wait (in the kernel's buffers) until it reads. */
static bool lmtp_output_full(const struct lmtp_session *s)
{
	return sbuf_len(&s->out) >= s->proxy->cfg->limits.session_buffer;
}

/* Feeds the front what the client sent and acts on its event; false when
 * it needs more input (or the session is closing). */
static bool lmtp_feed(struct lmtp_session *s)
{
	enum lmtp_front_event ev = LMTP_FRONT_EV_NONE;
	if (sbuf_len(&s->in) > 0) {
		size_t consumed;
		ev = lmtp_front_feed(&s->front, (unsigned char *)sbuf_mdata(&s->in),
				     sbuf_len(&s->in), &consumed, &s->out);
		sbuf_consume(&s->in, consumed);
	}
	switch (ev) {
	case LMTP_FRONT_EV_NONE:
		/* all that was read is answered: the rest never comes */
		if (s->client_eof)
			lmtp_finish(s, "disconnected");
		return false;
	case LMTP_FRONT_EV_XCLIENT:
		if (s->front.forward.have_ip) {
			s->reg.client_ip = s->front.forward.ip;
			s->reg.client_port = s->front.forward.port;
		}
		lmtp_transaction_reset(&s->tx);
		lmtp_transaction_close_idle(&s->tx);
		return true;
	case LMTP_FRONT_EV_RESET:
		lmtp_transaction_reset(&s->tx);
		return true;
	case LMTP_FRONT_EV_RCPT:
		lmtp_rcpt_start(s);
		return true;
	case LMTP_FRONT_EV_MESSAGE:
		lmtp_set_state(s, LMTP_DELIVERING);
		lmtp_transaction_deliver(&s->tx, sbuf_data(&s->front.body),
					 sbuf_len(&s->front.body));
		return true;
	case LMTP_FRONT_EV_CLOSE:
		lmtp_finish(s, "logged out");
		return false;
	}
	return false;
}

/* Handles what the client sent, as far as the state allows. */
static void lmtp_process(struct lmtp_session *s)
{
	while (s->end_reason == NULL) {
		switch (s->state) {
		case LMTP_RCPT:
			if (s->wake_route && s->tx.rcpt_reply == NULL) {
				s->wake_route = false;
				lmtp_rcpt_route(s);
			}
			if (s->tx.rcpt_reply == NULL)
				return;
			lmtp_rcpt_finish(s);
			break;
		case LMTP_DELIVERING:
			if (!lmtp_transaction_is_delivered(&s->tx))
				return;
			lmtp_delivered(s);
			break;
		case LMTP_CLIENT:
			if (lmtp_output_full(s) || !lmtp_feed(s))
				return;
			break;
		case LMTP_CLOSING:
			return;
		}
	}
}

/* Reads while there is room; pipelined commands wait their turn, and the
 * front takes a body (emptying `in`) before more is read. */
static void lmtp_client_read(struct lmtp_session *s)
{
	while (!s->client_eof && sbuf_len(&s->in) <= s->proxy->input_limit) {
		char *buf = sbuf_reserve(&s->in, LMTP_READ_CHUNK);
		ssize_t n = conn_read(&s->client, buf, LMTP_READ_CHUNK);
		if (n == CONN_AGAIN)
			return;
		if (n == 0) {
			s->client_eof = true;
			return;
		}
		if (n < 0) {
			lmtp_end(s, "client connection failed");
			return;
		}
		sbuf_commit(&s->in, (size_t)n);
		s->deadline = clock_monotonic_ms() + s->proxy->cfg->lmtp.client_timeout_ms;
	}
}

static void lmtp_client_event(struct conn *c, void *ctx)
{
	struct lmtp_session *s = ctx;
	(void)c;
	if (conn_write_sbuf(&s->client, &s->out) < 0) {
		lmtp_end(s, "client connection failed");
	} else if (s->state != LMTP_CLOSING) {
		lmtp_client_read(s);
		lmtp_process(s);
	}
	lmtp_settle(s);
}

static void lmtp_timer(evutil_socket_t fd, short what, void *arg)
{
	struct lmtp_session *s = arg;
	bool expired = clock_monotonic_ms() >= s->deadline;
	(void)fd;
	(void)what;
	/* a kick waits for the verdicts of a delivery under way: the client
	 * must learn what was delivered, or it would send it again */
	if (s->kick_text != NULL && s->state != LMTP_DELIVERING && s->state != LMTP_CLOSING) {
		lmtp_reply(s, "421 4.3.2 %s", s->kick_text);
		lmtp_finish(s, "kicked");
	} else if (s->state == LMTP_CLIENT && expired) {
		lmtp_reply(s, "421 4.4.2 Disconnected for inactivity");
		lmtp_finish(s, "idle timeout");
	} else if (s->state == LMTP_CLOSING && expired) {
		lmtp_end(s, s->close_reason);
	} else {
		lmtp_process(s);
	}
	lmtp_settle(s);
}

/* ---- lifecycle ----------------------------------------------------------------- */

static void lmtp_close(struct lmtp_session *s)
{
	(void)conn_write_sbuf(&s->client, &s->out);
	lmtp_log(s, LOG_LEVEL_INFO, "closed: duration=%.3fs in=%llu out=%llu reason=\"%s\"",
		 (double)(clock_wall_ms() - s->reg.start_ms) / 1000.0,
		 (unsigned long long)s->client.bytes_in,
		 (unsigned long long)s->client.bytes_out, s->end_reason);
	registry_remove(&s->proxy->registry, &s->reg);
	s->proxy->stats.lmtp_sessions[s->state]--;
	lmtp_rcpt_clear(s);
	lmtp_transaction_deinit(&s->tx);
	lmtp_front_deinit(&s->front);
	conn_close(&s->client);
	evtimer_del(&s->timer);
	sbuf_free(&s->in);
	sbuf_free(&s->out);
	free(s);
}

static void lmtp_settle(struct lmtp_session *s)
{
	if (s->state == LMTP_CLOSING && sbuf_len(&s->out) == 0)
		lmtp_end(s, s->close_reason);
	if (s->end_reason != NULL) {
		lmtp_close(s);
		return;
	}
	/* reading pauses while a command is being handled and the buffer of
	 * pipelined commands is full, while the client does not read its
	 * replies, and for good at the client's EOF */
	bool reading = s->state != LMTP_CLOSING && !s->client_eof &&
		!lmtp_output_full(s) && sbuf_len(&s->in) <= s->proxy->input_limit;
	conn_set_interest(&s->client, reading, sbuf_len(&s->out) > 0);
	/* the deadline runs while the session waits for its client */
	if (s->state == LMTP_CLIENT || s->state == LMTP_CLOSING) {
		uint64_t now = clock_monotonic_ms(), left = s->deadline > now ?
			s->deadline - now : 0;
		struct timeval tv = { (time_t)(left / 1000), (suseconds_t)(left % 1000) * 1000 };
		evtimer_add(&s->timer, &tv);
	}
}

static void lmtp_kick(struct registry_entry *e, const char *text)
{
	struct lmtp_session *s = CONTAINER_OF(e, struct lmtp_session, reg);
	if (s->kick_text == NULL) {
		s->proxy->stats.kicks++;
		s->kick_text = text;
		lmtp_wake(s);
	}
}

static void lmtp_shutdown(struct registry_entry *e, const char *text)
{
	struct lmtp_session *s = CONTAINER_OF(e, struct lmtp_session, reg);
	lmtp_reply(s, "421 4.3.2 %s", text);
	lmtp_end(s, "shutdown");
	lmtp_close(s);
}

static void lmtp_resume(struct registry_entry *e)
{
	struct lmtp_session *s = CONTAINER_OF(e, struct lmtp_session, reg);
	s->wake_route = true;
	lmtp_wake(s);
}

void lmtp_session_new(struct proxy_listener *pl, const struct listener_accept *acc)
{
	struct proxy *p = pl->proxy;
	struct lmtp_session *s = xcalloc(1, sizeof(*s));
	const struct lmtp_front_params params = {
		.hostname = p->hostname,
		.greeting = p->cfg->login.greeting,
		.max_line = p->cfg->login.max_line_length,
		.max_message_size = p->cfg->lmtp.max_message_size,
		.trusted = proxy_trusted(p->cfg, &acc->peer_ip),
	};

	s->proxy = p;
	s->state = LMTP_CLIENT;
	p->stats.lmtp_sessions[s->state]++;
	p->stats.connections[CONF_PROTOCOL_LMTP][PROXY_CONN_ACCEPTED]++;
	proxy_entry_init(p, &s->reg, s->id_str, "lmtp", acc);
	s->reg.kick = lmtp_kick;
	s->reg.shutdown = lmtp_shutdown;
	s->reg.resume = lmtp_resume;
	lmtp_front_init(&s->front, &params);
	lmtp_transaction_init(&s->tx, p, lmtp_wake, s);
	conn_init(&s->client);
	conn_attach(&s->client, p->base, acc->fd, lmtp_client_event, s);
	evtimer_assign(&s->timer, p->base, lmtp_timer, s);
	registry_add(&p->registry, &s->reg);
	lmtp_front_greet(&s->front, &s->out);
	lmtp_await_client(s);
	lmtp_settle(s);
}
