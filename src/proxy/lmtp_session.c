/* LMTP sessions:
 *
 *   COMMAND -> (RCPT: lookup -> route -> backend RCPT) -> COMMAND ...
 *   DATA -> BODY (read to ".") -> DELIVERING (every backend) -> COMMAND
 *
 * One command is handled at a time; pipelined ones wait in `in`. Backend
 * callbacks only record what happened and wake the session's timer, so
 * that backends are only freed from the session's own events. Every entry
 * point ends with lmtp_settle(), the one caller of lmtp_close(). */
#include "proxy/lmtp_session.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>

#include "auth/auth.h"
#include "common/clock.h"
#include "common/log.h"
#include "common/sbuf.h"
#include "common/xmalloc.h"
#include "core/conn.h"
#include "director/director.h"
#include "proto/front.h"
#include "proto/line.h"
#include "proto/smtp_command.h"
#include "proxy/lmtp_backend.h"

#define LMTP_READ_CHUNK 16384
#define LMTP_TEMPFAIL "451 4.3.0 Temporary internal error"

enum lmtp_state {
	LMTP_COMMAND,		/* reading commands */
	LMTP_RCPT,		/* a recipient is being looked up, routed, asked */
	LMTP_BODY,		/* reading the message */
	LMTP_DELIVERING,	/* waiting for the backends' verdicts */
	LMTP_CLOSING,		/* sending the last output, then close */
};

/* A backend of this transaction. */
struct lmtp_route {
	struct lmtp_backend *backend;
	struct ipaddr ip;
	uint16_t port;
	bool ready, mail_done, mail_ok, failed;
	const char *error;
	unsigned int accepted;		/* recipients it took */
	unsigned int replied;		/* DATA verdicts so far */
};

struct lmtp_rcpt {
	char *address;
	size_t route;			/* index into routes */
	struct director_ticket ticket;
	char *reply;			/* the DATA verdict */
};

struct lmtp_session {
	struct registry_entry reg;
	struct proxy *proxy;
	enum lmtp_state state;
	struct conn client;
	struct event timer;
	struct sbuf in, out;
	bool trusted;
	struct front_forward forward;	/* what a trusted XCLIENT said */
	struct ipaddr local_ip;
	uint16_t local_port;
	uint64_t idle_deadline;		/* lmtp.client_timeout, while waiting for it */

	char *mail_from;		/* NULL: no transaction */
	const char *mail_body;		/* BODY= given by the client, or NULL */
	struct lmtp_route *routes;
	size_t nroutes, routes_cap;
	struct lmtp_rcpt *rcpts;	/* accepted ones */
	size_t nrcpts, rcpts_cap;

	/* the recipient in progress */
	char *rcpt_address, *rcpt_user, *rcpt_dest, *rcpt_tag;
	struct ipaddr rcpt_ip;
	uint16_t rcpt_port;
	bool rcpt_has_host;
	size_t rcpt_route;
	struct director_ticket rcpt_ticket;
	bool wake_route;		/* the director's wait is over */
	const char *rcpt_reply;		/* set: answer the RCPT (static text) */
	char *rcpt_reply_owned;		/* or this copy of a backend's line */
	bool rcpt_accepted;

	/* the message */
	struct sbuf body;
	bool body_too_big;
	bool body_mid_line;		/* the last piece taken ended no line */
	size_t missing;			/* DATA verdicts still to come */

	const char *kick_text;
	const char *end_reason;
	char id_str[PROXY_ID_STRLEN];
};

static void lmtp_process(struct lmtp_session *s);
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

/* Work for the session's next turn (never from inside a callback). */
static void lmtp_wake(struct lmtp_session *s)
{
	event_active(&s->timer, EV_TIMEOUT, 1);
}

static void lmtp_end(struct lmtp_session *s, const char *reason)
{
	if (s->end_reason == NULL)
		s->end_reason = reason;
}

/* The turn is the client's again: its idle time starts now (the time
 * loft took for a recipient or a delivery is not the client's). */
static void lmtp_await_client(struct lmtp_session *s)
{
	s->state = LMTP_COMMAND;
	s->idle_deadline = clock_monotonic_ms() + s->proxy->cfg->lmtp.client_timeout_ms;
}

/* ---- transactions ---------------------------------------------------- */

static void lmtp_rcpt_clear(struct lmtp_session *s)
{
	director_release(s->proxy->director, &s->rcpt_ticket, time(NULL));
	free(s->rcpt_address);
	free(s->rcpt_user);
	free(s->rcpt_dest);
	free(s->rcpt_tag);
	free(s->rcpt_reply_owned);
	s->rcpt_address = s->rcpt_user = s->rcpt_dest = s->rcpt_tag = NULL;
	s->rcpt_reply_owned = NULL;
	s->rcpt_reply = NULL;
	s->rcpt_accepted = false;
	s->wake_route = false;
}

/* Ends the transaction: backends closed, assignments released. */
static void lmtp_transaction_reset(struct lmtp_session *s)
{
	time_t now = time(NULL);
	for (size_t i = 0; i < s->nrcpts; i++) {
		director_release(s->proxy->director, &s->rcpts[i].ticket, now);
		free(s->rcpts[i].address);
		free(s->rcpts[i].reply);
	}
	s->nrcpts = 0;
	for (size_t i = 0; i < s->nroutes; i++)
		lmtp_backend_free(&s->routes[i].backend);
	s->nroutes = 0;
	free(s->mail_from);
	s->mail_from = NULL;
	s->mail_body = NULL;
	sbuf_free(&s->body);
	s->body_too_big = false;
	s->body_mid_line = false;
	s->missing = 0;
}

/* ---- backend callbacks: record, then wake the session ----------------- */

static struct lmtp_route *lmtp_route_of(struct lmtp_session *s, struct lmtp_backend *b)
{
	for (size_t i = 0; i < s->nroutes; i++) {
		if (s->routes[i].backend == b)
			return &s->routes[i];
	}
	return NULL;
}

/* The recipient in progress is answered (the session writes it). */
static void lmtp_rcpt_answer(struct lmtp_session *s, const char *line, bool accepted)
{
	free(s->rcpt_reply_owned);
	s->rcpt_reply_owned = xstrdup(line);
	s->rcpt_reply = s->rcpt_reply_owned;
	s->rcpt_accepted = accepted;
	lmtp_wake(s);
}

static void lmtp_backend_ready(void *ctx, struct lmtp_backend *b)
{
	struct lmtp_session *s = ctx;
	struct lmtp_route *r = lmtp_route_of(s, b);
	r->ready = true;
	lmtp_backend_mail(b, s->mail_from, s->mail_body);
}

static void lmtp_backend_reply(void *ctx, struct lmtp_backend *b, int code, const char *line)
{
	struct lmtp_session *s = ctx;
	struct lmtp_route *r = lmtp_route_of(s, b);
	if (!r->mail_done) {
		r->mail_done = true;
		r->mail_ok = code / 100 == 2;
		if (r->mail_ok)
			lmtp_backend_rcpt(b, s->rcpt_dest);
		else
			lmtp_rcpt_answer(s, line, false);	/* the MAIL refusal */
		return;
	}
	lmtp_rcpt_answer(s, line, code / 100 == 2);
}

/* The k-th verdict belongs to the route's k-th accepted recipient. */
static void lmtp_backend_data_reply(void *ctx, struct lmtp_backend *b, int code,
				    const char *line, bool all)
{
	struct lmtp_session *s = ctx;
	struct lmtp_route *r = lmtp_route_of(s, b);
	size_t route = (size_t)(r - s->routes);
	unsigned int seen = 0;
	(void)code;
	for (size_t i = 0; i < s->nrcpts; i++) {
		struct lmtp_rcpt *rc = &s->rcpts[i];
		if (rc->route != route || rc->reply != NULL)
			continue;
		if (!all && seen++ != 0)
			break;
		rc->reply = xstrdup(line);
		s->missing--;
	}
	r->replied++;
	lmtp_wake(s);
}

static void lmtp_backend_failed(void *ctx, struct lmtp_backend *b, const char *error)
{
	struct lmtp_session *s = ctx;
	struct lmtp_route *r = lmtp_route_of(s, b);
	char text[256];
	r->failed = true;
	r->error = error;
	snprintf(text, sizeof(text), "451 4.4.0 Remote server not answering (%s)", error);
	if (s->state == LMTP_RCPT && s->rcpt_route == (size_t)(r - s->routes) &&
	    s->rcpt_reply == NULL)
		lmtp_rcpt_answer(s, text, false);
	if (s->state == LMTP_DELIVERING) {
		size_t route = (size_t)(r - s->routes);
		for (size_t i = 0; i < s->nrcpts; i++) {
			if (s->rcpts[i].route == route && s->rcpts[i].reply == NULL) {
				s->rcpts[i].reply = xstrdup(text);
				s->missing--;
			}
		}
	}
	lmtp_wake(s);
}

static const struct lmtp_backend_callbacks lmtp_backend_cb = {
	.ready = lmtp_backend_ready,
	.reply = lmtp_backend_reply,
	.data_reply = lmtp_backend_data_reply,
	.failed = lmtp_backend_failed,
};

/* ---- recipients ------------------------------------------------------- */

/* The recipient's backend: an open one of this transaction, or a new one
 * (which sends MAIL first). */
static void lmtp_rcpt_to_backend(struct lmtp_session *s)
{
	for (size_t i = 0; i < s->nroutes; i++) {
		struct lmtp_route *r = &s->routes[i];
		if (r->backend != NULL && !r->failed &&
		    lmtp_backend_is(r->backend, &s->rcpt_ip, s->rcpt_port)) {
			s->rcpt_route = i;
			if (!r->mail_ok) {
				lmtp_rcpt_answer(s, "451 4.4.0 The backend refused the sender", false);
				return;
			}
			lmtp_backend_rcpt(r->backend, s->rcpt_dest);
			return;
		}
	}
	const struct lmtp_client_params params = {
		.hostname = s->proxy->hostname,
		.forward = true,
		.client_ip = s->reg.client_ip,
		.client_port = s->reg.client_port,
		.session_id = s->forward.session_id[0] != '\0' ? s->forward.session_id :
			s->id_str,
		.ttl = s->forward.ttl,
	};
	s->routes = xgrow(s->routes, &s->routes_cap, s->nroutes + 1, sizeof(*s->routes));
	struct lmtp_route *r = &s->routes[s->nroutes];
	memset(r, 0, sizeof(*r));
	r->ip = s->rcpt_ip;
	r->port = s->rcpt_port;
	s->rcpt_route = s->nroutes++;
	r->backend = lmtp_backend_new(s->proxy, &s->rcpt_ip, s->rcpt_port, &params,
				      &lmtp_backend_cb, s);
}

/* Asks the director (unless the passdb named the host). */
static void lmtp_rcpt_route(struct lmtp_session *s)
{
	const struct director_host *h;
	const char *error;
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
			 s->rcpt_address);
		return;
	case DIRECTOR_ROUTE_FAIL:
		lmtp_log(s, LOG_LEVEL_INFO, "%s: cannot route: %s", s->rcpt_address, error);
		lmtp_rcpt_answer(s, LMTP_TEMPFAIL, false);
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
	char text[512];
	if (s->state != LMTP_RCPT)
		return;
	switch (r->status) {
	case AUTH_STATUS_FAILED:
		snprintf(text, sizeof(text), "550 5.1.1 <%s> User doesn't exist: %s",
			 s->rcpt_address, s->rcpt_address);
		lmtp_rcpt_answer(s, text, false);
		break;
	case AUTH_STATUS_TEMPFAIL:
		lmtp_log(s, LOG_LEVEL_ERROR, "%s: passdb lookup failed: %s", s->rcpt_address,
			 r->error);
		lmtp_rcpt_answer(s, LMTP_TEMPFAIL, false);
		break;
	case AUTH_STATUS_OK:
	case AUTH_STATUS_NOLOGIN:	/* may not log in, may receive mail */
		s->rcpt_user = xstrdup(r->destuser != NULL ? r->destuser : r->user);
		s->rcpt_dest = xstrdup(r->destuser != NULL ? r->destuser : s->rcpt_address);
		s->rcpt_tag = r->director_tag != NULL ? xstrdup(r->director_tag) : NULL;
		s->rcpt_port = r->port != 0 ? r->port : (uint16_t)proxy->cfg->backend.lmtp_port;
		s->rcpt_has_host = r->host != NULL;
		if (s->rcpt_has_host && ipaddr_parse(r->host, &s->rcpt_ip) < 0) {
			lmtp_log(s, LOG_LEVEL_ERROR, "%s: passdb host is not an IP address",
				 s->rcpt_address);
			lmtp_rcpt_answer(s, LMTP_TEMPFAIL, false);
			break;
		}
		lmtp_rcpt_route(s);
		break;
	}
	lmtp_settle(s);
}

/* The recipient's answer is known: tell the client, keep an accepted one. */
static void lmtp_rcpt_finish(struct lmtp_session *s)
{
	lmtp_reply(s, "%s", s->rcpt_reply);
	if (s->rcpt_accepted) {
		s->rcpts = xgrow(s->rcpts, &s->rcpts_cap, s->nrcpts + 1, sizeof(*s->rcpts));
		struct lmtp_rcpt *rc = &s->rcpts[s->nrcpts++];
		memset(rc, 0, sizeof(*rc));
		rc->address = xstrdup(s->rcpt_address);
		rc->route = s->rcpt_route;
		rc->ticket = s->rcpt_ticket;	/* held until the delivery is done */
		s->rcpt_ticket.held = false;
		s->routes[s->rcpt_route].accepted++;
	}
	lmtp_rcpt_clear(s);
	lmtp_await_client(s);
}

/* ---- commands ------------------------------------------------------------ */

static void cmd_lhlo(struct lmtp_session *s, char *args)
{
	if (args[0] == '\0') {
		lmtp_reply(s, "501 5.5.4 Missing hostname");
		return;
	}
	lmtp_transaction_reset(s);
	lmtp_reply(s, "250-%s\r\n250-8BITMIME\r\n250-ENHANCEDSTATUSCODES\r\n"
		   "250-SIZE %llu%s\r\n250 PIPELINING", s->proxy->hostname,
		   (unsigned long long)s->proxy->cfg->lmtp.max_message_size,
		   s->trusted ? "\r\n250-XCLIENT ADDR PORT SESSION TTL" : "");
}

static void cmd_mail(struct lmtp_session *s, char *args)
{
	char *path, *params;
	if (s->mail_from != NULL) {
		lmtp_reply(s, "503 5.5.1 MAIL already given");
		return;
	}
	if (smtp_command_path(args, "FROM:", &path, &params) < 0) {
		lmtp_reply(s, "501 5.5.4 Invalid FROM: parameter");
		return;
	}
	/* SIZE is checked here and BODY handed on; neither is sent blindly,
	 * since a backend may not offer them (Dovecot's LMTP has no SIZE) */
	struct smtp_mail_params mp;
	switch (smtp_command_mail_params(params, &mp)) {
	case SMTP_PARAMS_OK:
		break;
	case SMTP_PARAMS_INVALID:
		lmtp_reply(s, "501 5.5.4 Invalid parameters");
		return;
	case SMTP_PARAMS_UNSUPPORTED:
		lmtp_reply(s, "555 5.5.4 Unsupported parameters");
		return;
	}
	if (mp.has_size && mp.size > s->proxy->cfg->lmtp.max_message_size) {
		lmtp_reply(s, "552 5.3.4 Message size exceeds fixed maximum message size");
		return;
	}
	s->mail_from = xstrdup(path);
	s->mail_body = mp.body;
	lmtp_reply(s, "250 2.1.0 OK");
}

static void cmd_rcpt(struct lmtp_session *s, char *args)
{
	char *path, *params;
	if (s->mail_from == NULL) {
		lmtp_reply(s, "503 5.5.1 MAIL needed first");
		return;
	}
	if (smtp_command_path(args, "TO:", &path, &params) < 0 || path[0] == '\0') {
		lmtp_reply(s, "501 5.5.4 Invalid TO: parameter");
		return;
	}
	if (params[0] != '\0') {
		/* no RCPT extension (DSN) is offered */
		lmtp_reply(s, "555 5.5.4 Unsupported parameters");
		return;
	}
	/* §10.5: a TTL at the floor means proxies loop */
	if (s->forward.ttl <= 1) {
		lmtp_reply(s, "554 5.4.6 <%s> Proxying appears to be looping (TTL=0)", path);
		return;
	}
	s->state = LMTP_RCPT;
	s->rcpt_address = xstrdup(path);
	auth_lookup_user(s->proxy->auth, path, lmtp_auth_done, s->proxy, s->reg.id);
}

static void cmd_data(struct lmtp_session *s, char *args)
{
	(void)args;
	if (s->mail_from == NULL) {
		lmtp_reply(s, "503 5.5.1 MAIL needed first");
		return;
	}
	if (s->nrcpts == 0) {
		lmtp_reply(s, "554 5.5.1 No valid recipients");
		return;
	}
	lmtp_reply(s, "354 OK");
	s->state = LMTP_BODY;
}

static void cmd_rset(struct lmtp_session *s, char *args)
{
	(void)args;
	lmtp_transaction_reset(s);
	lmtp_reply(s, "250 2.0.0 OK");
}

static void cmd_noop(struct lmtp_session *s, char *args)
{
	(void)args;
	lmtp_reply(s, "250 2.0.0 OK");
}

static void cmd_quit(struct lmtp_session *s, char *args)
{
	(void)args;
	lmtp_reply(s, "221 2.0.0 Bye");
	s->state = LMTP_CLOSING;
}

/* XCLIENT from a trusted relay: who the client is; the session starts
 * over with a greeting. */
static void cmd_xclient(struct lmtp_session *s, char *args)
{
	if (!s->trusted) {
		lmtp_reply(s, "550 5.7.0 You are not from trusted IP");
		return;
	}
	front_xclient_line(&s->forward, args);
	if (s->forward.have_ip) {
		s->reg.client_ip = s->forward.ip;
		s->reg.client_port = s->forward.port;
	}
	lmtp_transaction_reset(s);
	lmtp_reply(s, "220 %s %s", s->proxy->hostname, s->proxy->cfg->login.greeting);
}

static const struct {
	const char *name;
	void (*fn)(struct lmtp_session *s, char *args);
} lmtp_cmds[] = {
	{ "LHLO", cmd_lhlo }, { "MAIL", cmd_mail }, { "RCPT", cmd_rcpt },
	{ "DATA", cmd_data }, { "RSET", cmd_rset }, { "NOOP", cmd_noop },
	{ "QUIT", cmd_quit }, { "XCLIENT", cmd_xclient },
};

static void lmtp_command(struct lmtp_session *s, char *line)
{
	char *args = strchr(line, ' ');
	if (args != NULL)
		*args++ = '\0';
	else
		args = line + strlen(line);
	for (size_t i = 0; i < ARRAY_SIZE(lmtp_cmds); i++) {
		if (strcasecmp(line, lmtp_cmds[i].name) == 0) {
			lmtp_cmds[i].fn(s, args);
			return;
		}
	}
	lmtp_reply(s, "500 5.5.1 Unknown command");
}

/* ---- the message ------------------------------------------------------------ */

/* Takes the body from `in` up to the "." line; returns true once it has
 * been seen. The body is kept dot-stuffed, as the backends want it, with
 * the terminator appended. A line is taken in pieces as it comes, so a
 * long one never piles up in `in`; only a line's first bytes wait, as
 * they may be the terminator. */
static bool lmtp_body_read(struct lmtp_session *s)
{
	const uint64_t max = s->proxy->cfg->lmtp.max_message_size;
	for (;;) {
		const char *data = sbuf_data(&s->in);
		size_t len = sbuf_len(&s->in);
		const char *lf = memchr(data, '\n', len);
		size_t n = lf != NULL ? (size_t)(lf - data) + 1 : len;
		if (!s->body_mid_line) {
			if (lf == NULL && len < 3)
				return false;
			if ((n == 3 && memcmp(data, ".\r\n", 3) == 0) ||
			    (n == 2 && data[0] == '.')) {
				sbuf_consume(&s->in, n);
				sbuf_appends(&s->body, ".\r\n");
				return true;
			}
		}
		if (n == 0)
			return false;
		if (!s->body_too_big && sbuf_len(&s->body) + n > max) {
			s->body_too_big = true;
			sbuf_free(&s->body);
		}
		if (!s->body_too_big)
			sbuf_append(&s->body, data, n);
		sbuf_consume(&s->in, n);
		s->body_mid_line = lf == NULL;
	}
}

static void lmtp_deliver(struct lmtp_session *s)
{
	s->missing = s->nrcpts;
	if (s->body_too_big) {
		for (size_t i = 0; i < s->nrcpts; i++)
			s->rcpts[i].reply = xstrdup("552 5.3.4 Message size exceeds fixed "
						    "maximum message size");
		s->missing = 0;
	}
	s->state = LMTP_DELIVERING;
	for (size_t i = 0; s->missing > 0 && i < s->nroutes; i++) {
		struct lmtp_route *r = &s->routes[i];
		if (r->accepted == 0)
			continue;
		if (r->failed) {
			lmtp_backend_failed(s, r->backend, r->error);
			continue;
		}
		lmtp_backend_data(r->backend, r->accepted, sbuf_data(&s->body),
				  sbuf_len(&s->body));
	}
}

/* Every verdict is in: one reply per accepted recipient, in order. */
static void lmtp_delivered(struct lmtp_session *s)
{
	for (size_t i = 0; i < s->nrcpts; i++) {
		const struct lmtp_rcpt *rc = &s->rcpts[i];
		const struct lmtp_route *r = &s->routes[rc->route];
		char ip[IPADDR_STRLEN];
		lmtp_log(s, LOG_LEVEL_INFO, "%s: delivered via %s:%u: %s", rc->address,
			 ipaddr_to_str(&r->ip, ip), r->port, rc->reply);
		lmtp_reply(s, "%s", rc->reply);
	}
	lmtp_transaction_reset(s);
	lmtp_await_client(s);
	if (s->kick_text != NULL)
		lmtp_wake(s);	/* the kick that waited for this */
}

/* ---- the client side --------------------------------------------------------- */

/* Handles what the client sent, as far as the state allows. */
static void lmtp_process(struct lmtp_session *s)
{
	for (;;) {
		if (s->end_reason != NULL)
			return;
		if (s->state == LMTP_RCPT) {
			if (s->wake_route && s->rcpt_reply == NULL) {
				s->wake_route = false;
				lmtp_rcpt_route(s);
			}
			if (s->rcpt_reply == NULL)
				return;
			lmtp_rcpt_finish(s);
			continue;
		}
		if (s->state == LMTP_DELIVERING) {
			if (s->missing > 0)
				return;
			lmtp_delivered(s);
			continue;
		}
		if (s->state == LMTP_BODY) {
			if (!lmtp_body_read(s))
				return;
			lmtp_deliver(s);
			continue;
		}
		if (s->state != LMTP_COMMAND)
			return;
		size_t consumed;
		long n = line_next((const unsigned char *)sbuf_data(&s->in), sbuf_len(&s->in),
				   s->proxy->cfg->login.max_line_length, &consumed);
		if (n == -1)
			return;
		if (n == -2) {
			lmtp_reply(s, "500 5.5.2 Line too long, aborting.");
			s->state = LMTP_CLOSING;
			return;
		}
		char *line = xstrndup(sbuf_data(&s->in), (size_t)n);
		sbuf_consume(&s->in, consumed);
		lmtp_command(s, line);
		free(line);
	}
}

static void lmtp_client_read(struct lmtp_session *s)
{
	for (;;) {
		char *buf = sbuf_reserve(&s->in, LMTP_READ_CHUNK);
		ssize_t n = conn_read(&s->client, buf, LMTP_READ_CHUNK);
		if (n == CONN_AGAIN)
			return;
		if (n <= 0) {
			lmtp_end(s, n == 0 ? "disconnected" : "client connection failed");
			return;
		}
		sbuf_commit(&s->in, (size_t)n);
		s->idle_deadline = clock_monotonic_ms() + s->proxy->cfg->lmtp.client_timeout_ms;
		/* pipelined commands wait their turn; a body is taken
		 * (and `in` emptied) by lmtp_process() before more is read */
		if (sbuf_len(&s->in) > s->proxy->input_limit)
			return;
	}
}

static void lmtp_client_event(struct conn *c, void *ctx)
{
	struct lmtp_session *s = ctx;
	(void)c;
	if (conn_write_sbuf(&s->client, &s->out) < 0) {
		lmtp_end(s, "client connection failed");
	} else {
		lmtp_client_read(s);
		lmtp_process(s);
	}
	lmtp_settle(s);
}

static void lmtp_timer(evutil_socket_t fd, short what, void *arg)
{
	struct lmtp_session *s = arg;
	(void)fd;
	(void)what;
	/* a kick waits for the verdicts of a delivery under way: the client
	 * must learn what was delivered, or it would send it again */
	if (s->kick_text != NULL && s->state != LMTP_DELIVERING) {
		lmtp_reply(s, "421 4.3.2 %s", s->kick_text);
		s->state = LMTP_CLOSING;
		lmtp_end(s, "kicked");
	} else if ((s->state == LMTP_COMMAND || s->state == LMTP_BODY) &&
		   clock_monotonic_ms() >= s->idle_deadline) {
		lmtp_reply(s, "421 4.4.2 Disconnected for inactivity");
		lmtp_end(s, "idle timeout");
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
	lmtp_rcpt_clear(s);
	lmtp_transaction_reset(s);
	conn_close(&s->client);
	evtimer_del(&s->timer);
	sbuf_free(&s->in);
	sbuf_free(&s->out);
	free(s->routes);
	free(s->rcpts);
	free(s);
}

static void lmtp_settle(struct lmtp_session *s)
{
	if (s->state == LMTP_CLOSING && sbuf_len(&s->out) == 0)
		lmtp_end(s, s->kick_text != NULL ? "kicked" : "logged out");
	if (s->end_reason != NULL) {
		lmtp_close(s);
		return;
	}
	/* reading pauses while a command is being handled and the buffer of
	 * pipelined commands is full */
	bool reading = s->state == LMTP_BODY || sbuf_len(&s->in) <= s->proxy->input_limit;
	conn_set_interest(&s->client, reading && s->state != LMTP_CLOSING,
			  sbuf_len(&s->out) > 0);
	if (s->state == LMTP_COMMAND || s->state == LMTP_BODY) {
		uint64_t now = clock_monotonic_ms(), left = s->idle_deadline > now ?
			s->idle_deadline - now : 0;
		struct timeval tv = { (time_t)(left / 1000), (suseconds_t)(left % 1000) * 1000 };
		evtimer_add(&s->timer, &tv);
	}
}

static void lmtp_kick(struct registry_entry *e, const char *text)
{
	struct lmtp_session *s = CONTAINER_OF(e, struct lmtp_session, reg);
	if (s->kick_text == NULL) {
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

	s->proxy = p;
	proxy_entry_init(p, &s->reg, s->id_str, "lmtp", acc);
	s->reg.kick = lmtp_kick;
	s->reg.shutdown = lmtp_shutdown;
	s->reg.resume = lmtp_resume;
	s->local_ip = acc->local_ip;
	s->local_port = acc->local_port;
	s->trusted = proxy_trusted(p->cfg, &acc->peer_ip);
	front_forward_init(&s->forward);
	s->idle_deadline = clock_monotonic_ms() + p->cfg->lmtp.client_timeout_ms;
	conn_init(&s->client);
	conn_attach(&s->client, p->base, acc->fd, lmtp_client_event, s);
	evtimer_assign(&s->timer, p->base, lmtp_timer, s);
	registry_add(&p->registry, &s->reg);
	lmtp_reply(s, "220 %s %s", p->hostname, p->cfg->login.greeting);
	lmtp_settle(s);
}
