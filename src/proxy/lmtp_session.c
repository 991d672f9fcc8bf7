/* LMTP sessions: proto/lmtp_front speaks to the client, this file looks
 * each recipient up and routes it, lmtp_transaction.c asks the backends
 * and delivers the message to them:
 *
 *   CLIENT (the front reads commands, or the body)
 *     -> RCPT: lookup -> route -> backend MAIL, RCPT -> its reply -> CLIENT
 *     -> DELIVERING: every backend's verdicts -> one reply each -> CLIENT
 *     -> CLOSING (QUIT, or the client's input is over): flush, close
 *
 * One command at a time, except recipients: the RCPTs a pipelining MTA
 * sends together (up to lmtp.max_parallel_rcpts) are looked up at once,
 * routed and asked in their order (a backend gets its share in one
 * pipelined batch), and answered in their order as the answers come.
 * Other pipelined commands wait in `in`. When the client's
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

/* Where a recipient is, from its RCPT to its reply. */
enum lmtp_pending_stage {
	LMTP_PENDING_LOOKUP,	/* its passdb lookup is under way */
	LMTP_PENDING_ROUTE,	/* looked up: to be routed and asked in turn */
	LMTP_PENDING_ASKED,	/* its backend's answer is the transaction's */
	LMTP_PENDING_ANSWERED,	/* answered here: `reply` */
};

struct lmtp_pending {
	char *address;			/* as the client gave it */
	enum lmtp_pending_stage stage;
	uint32_t lookup;		/* LOOKUP: its tag */
	char *user, *dest, *tag;	/* ROUTE: what the passdb said */
	struct ipaddr ip;
	uint16_t port;
	bool has_host;
	bool waiting;			/* ROUTE: for a user's move */
	struct director_ticket ticket;
	size_t ask;			/* ASKED: the transaction's number */
	char *reply;			/* ANSWERED */
};

enum lmtp_state {
	LMTP_CLIENT,		/* the front has the client's input */
	LMTP_RCPT,		/* recipients are being looked up, routed, asked */
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

	/* the recipients not answered yet, in the client's order; those
	 * before `routed` are asked or answered */
	struct lmtp_pending *pending;
	size_t npending, pending_cap, routed;
	uint32_t lookups;		/* the last lookup's tag */
	bool wake_route;		/* the director's wait is over */

	const char *kick_text;
	const char *end_reason;
	char id_str[PROXY_ID_STRLEN];
};

static void lmtp_settle(struct lmtp_session *s);
static void lmtp_process(struct lmtp_session *s);

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

static void lmtp_pending_free(struct lmtp_session *s, struct lmtp_pending *p)
{
	director_release(s->proxy->director, &p->ticket, time(NULL));
	free(p->address);
	free(p->user);
	free(p->dest);
	free(p->tag);
	free(p->reply);
}

static void lmtp_pending_clear(struct lmtp_session *s)
{
	for (size_t i = 0; i < s->npending; i++)
		lmtp_pending_free(s, &s->pending[i]);
	s->npending = s->routed = 0;
	s->wake_route = false;
}

/* Answered here, not by a backend. */
static void lmtp_pending_answer(struct lmtp_pending *p, const char *line)
{
	p->reply = xstrdup(line);
	p->stage = LMTP_PENDING_ANSWERED;
}

/* Asks the recipient's backend, with the client's address for XCLIENT. */
static void lmtp_pending_ask(struct lmtp_session *s, struct lmtp_pending *p)
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
	p->ask = lmtp_transaction_ask(&s->tx, &p->ip, p->port, p->dest, &params);
	p->stage = LMTP_PENDING_ASKED;
}

/* Asks the director (unless the passdb named the host); false while the
 * user is being moved. */
static bool lmtp_pending_route(struct lmtp_session *s, struct lmtp_pending *p)
{
	const struct director_host *h;
	const char *error;
	if (!s->proxy->serving) {
		/* fenced: another director of the ring takes the mail */
		lmtp_log(s, LOG_LEVEL_INFO, "%s: not routed: this director is fenced",
			 p->address);
		lmtp_pending_answer(p, LMTP_TEMPFAIL);
		return true;
	}
	if (p->has_host) {
		lmtp_pending_ask(s, p);
		return true;
	}
	switch (director_route(s->proxy->director, p->user, p->tag, time(NULL),
			       s->reg.id, &h, &p->ticket, &error)) {
	case DIRECTOR_ROUTE_OK:
		p->ip = h->ip;
		lmtp_pending_ask(s, p);
		return true;
	case DIRECTOR_ROUTE_WAIT:
		lmtp_log(s, LOG_LEVEL_DEBUG, "%s: waiting, the user is being moved",
			 p->address);
		return false;
	case DIRECTOR_ROUTE_FAIL:
		lmtp_log(s, LOG_LEVEL_INFO, "%s: cannot route: %s", p->address, error);
		lmtp_pending_answer(p, LMTP_TEMPFAIL);
		return true;
	}
	return true;
}

/* Routes and asks the recipients looked up, in their order: a backend
 * gets its recipients in the order the client gave them, which is the
 * order of its verdicts on the message. One that waits for a move holds
 * those behind it (until the director resumes the session). */
static void lmtp_pending_route_all(struct lmtp_session *s)
{
	bool retry = s->wake_route;
	s->wake_route = false;
	while (s->routed < s->npending) {
		struct lmtp_pending *p = &s->pending[s->routed];
		if (p->stage == LMTP_PENDING_LOOKUP)
			return;
		if (p->stage == LMTP_PENDING_ROUTE) {
			if (p->waiting && !retry)
				return;	/* the move is not over */
			p->waiting = !lmtp_pending_route(s, p);
			if (p->waiting)
				return;
		}
		s->routed++;
	}
}

static void lmtp_auth_done(void *ctx, uint64_t id, const struct auth_result *r)
{
	struct proxy *proxy = ctx;
	struct registry_entry *e = registry_find(&proxy->registry, id);
	if (e == NULL)
		return;
	struct lmtp_session *s = CONTAINER_OF(e, struct lmtp_session, reg);
	struct lmtp_pending *p = NULL;
	for (size_t i = s->routed; p == NULL && i < s->npending; i++) {
		if (s->pending[i].stage == LMTP_PENDING_LOOKUP && s->pending[i].lookup == r->tag)
			p = &s->pending[i];
	}
	if (p == NULL)
		return;
	char text[512];
	switch (r->status) {
	case AUTH_STATUS_FAILED:
		snprintf(text, sizeof(text), "550 5.1.1 <%s> User doesn't exist: %s",
			 p->address, p->address);
		lmtp_pending_answer(p, text);
		break;
	case AUTH_STATUS_TEMPFAIL:
		lmtp_log(s, LOG_LEVEL_ERROR, "%s: passdb lookup failed: %s", p->address,
			 r->error);
		lmtp_pending_answer(p, LMTP_TEMPFAIL);
		break;
	case AUTH_STATUS_OK:
	case AUTH_STATUS_NOLOGIN:	/* may not log in, may receive mail */
		p->has_host = r->host != NULL;
		if (p->has_host && ipaddr_parse(r->host, &p->ip) < 0) {
			lmtp_log(s, LOG_LEVEL_ERROR, "%s: passdb host is not an IP address",
				 p->address);
			lmtp_pending_answer(p, LMTP_TEMPFAIL);
			break;
		}
		p->user = xstrdup(r->destuser != NULL ? r->destuser : r->user);
		p->dest = xstrdup(r->destuser != NULL ? r->destuser : p->address);
		p->tag = r->director_tag != NULL ? xstrdup(r->director_tag) : NULL;
		p->port = r->port != 0 ? r->port : (uint16_t)proxy->cfg->backend.lmtp_port;
		p->stage = LMTP_PENDING_ROUTE;
		break;
	}
	lmtp_process(s);
	lmtp_settle(s);
}

/* A recipient the front handed over: looked up at once (a refused one
 * only waits for its turn to be answered). */
static void lmtp_pending_add(struct lmtp_session *s)
{
	s->pending = xgrow(s->pending, &s->pending_cap, s->npending + 1, sizeof(*s->pending));
	struct lmtp_pending *p = &s->pending[s->npending++];
	memset(p, 0, sizeof(*p));
	lmtp_set_state(s, LMTP_RCPT);
	if (s->front.rcpt_refusal != NULL) {
		p->reply = s->front.rcpt_refusal;
		s->front.rcpt_refusal = NULL;
		p->stage = LMTP_PENDING_ANSWERED;
		return;
	}
	p->address = s->front.rcpt;
	s->front.rcpt = NULL;
	p->lookup = ++s->lookups;
	const struct auth_request_params params = {
		.user = p->address, .callback = lmtp_auth_done, .ctx = s->proxy,
		.cookie = s->reg.id, .tag = p->lookup,
	};
	(void)auth_request_start(s->proxy->auth, &params);
}

/* The client gets the answers that are in, in its order. */
static void lmtp_pending_reply(struct lmtp_session *s)
{
	size_t done = 0;
	for (; done < s->npending; done++) {
		struct lmtp_pending *p = &s->pending[done];
		const char *reply = p->reply;
		bool accepted = false;
		if (p->stage == LMTP_PENDING_ASKED)
			reply = lmtp_transaction_answer_of(&s->tx, p->ask, &accepted);
		else if (p->stage != LMTP_PENDING_ANSWERED)
			break;
		if (reply == NULL)
			break;
		lmtp_front_rcpt_done(&s->front, reply, accepted, &s->out);
		if (p->stage == LMTP_PENDING_ASKED)
			lmtp_transaction_rcpt_done(&s->tx, p->ask, p->address, &p->ticket);
		lmtp_pending_free(s, p);
	}
	if (done == 0)
		return;
	memmove(s->pending, s->pending + done, (s->npending - done) * sizeof(*s->pending));
	s->npending -= done;
	s->routed -= done;
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
		if (s->client_eof && s->state == LMTP_CLIENT)
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
		lmtp_pending_add(s);
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
			lmtp_pending_route_all(s);
			lmtp_pending_reply(s);
			if (s->npending == 0) {
				lmtp_await_client(s);
				break;
			}
			/* more of a pipelined batch, while there is room */
			if (s->npending >= s->proxy->cfg->lmtp.max_parallel_rcpts ||
			    lmtp_output_full(s) || !lmtp_feed(s))
				return;
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
		/* a short plain read drained the socket, and the level-
		 * triggered event reports more: no read just for EAGAIN */
		if ((size_t)n < LMTP_READ_CHUNK && !conn_is_tls(&s->client))
			return;
	}
}

static void lmtp_client_event(struct conn *c, void *ctx)
{
	struct lmtp_session *s = ctx;
	struct auth *auth = s->proxy->auth;
	(void)c;
	if (conn_write_sbuf(&s->client, &s->out) < 0) {
		lmtp_end(s, "client connection failed");
	} else if (s->state != LMTP_CLOSING) {
		lmtp_client_read(s);
		lmtp_process(s);
	}
	lmtp_settle(s);
	/* the lookups answered at once (a users file, the cache) route and
	 * ask their backends in this turn, not behind the turn's others */
	auth_run_completed(auth);
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
	lmtp_pending_clear(s);
	free(s->pending);
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
	/* what this event queued goes now, not on a later turn's
	 * writability (an epoll_ctl pair and a loop turn each); a write
	 * that would block leaves the rest to the write interest */
	lmtp_transaction_flush(&s->tx);
	if (s->end_reason == NULL && sbuf_len(&s->out) > 0 &&
	    conn_write_sbuf(&s->client, &s->out) < 0)
		lmtp_end(s, "client connection failed");
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
