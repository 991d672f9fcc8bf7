/* An LMTP backend connection. */
#include "proxy/lmtp_backend.h"

#include <event2/event.h>
#include <stdlib.h>
#include <string.h>

#include "common/clock.h"
#include "common/sbuf.h"
#include "common/xmalloc.h"
#include "core/conn.h"
#include "proxy/backend_login.h"
#include "proxy/proxy.h"

#define LMTP_BACKEND_READ_CHUNK 4096

struct lmtp_backend {
	struct proxy *proxy;
	struct ipaddr ip;
	uint16_t port;
	struct conn conn;
	struct backend_login *connecting;	/* until connected */
	bool failed;
	struct lmtp_client client;
	struct sbuf in, out;
	const char *body;		/* being sent after 354 */
	size_t body_len, body_sent;
	bool body_go;
	struct event *timer;		/* each step within lmtp.proxy_timeout,
					 * only while a reply is due */
	char *error;			/* why the connection failed */
	const struct lmtp_backend_callbacks *cb;
	void *ctx;
};

/* Progress on a step: the step's time starts again. */
static void lmtp_backend_arm(struct lmtp_backend *b)
{
	uint64_t ms = b->proxy->cfg->lmtp.proxy_timeout_ms;
	struct timeval tv = { (time_t)(ms / 1000), (suseconds_t)(ms % 1000) * 1000 };
	evtimer_add(b->timer, &tv);
}

/* A backend that has answered everything waits for the session, which
 * waits for its client (the MTA may pause for minutes between commands,
 * RFC 5321 §4.5.3.2): that is no step of the backend's to time. */
static void lmtp_backend_disarm_if_idle(struct lmtp_backend *b)
{
	if (!lmtp_client_owes_reply(&b->client))
		evtimer_del(b->timer);
}

/* The connection is given up; the session hears it last. */
static void lmtp_backend_fail(struct lmtp_backend *b, const char *error)
{
	backend_login_free(&b->connecting);
	conn_close(&b->conn);
	evtimer_del(b->timer);
	if (!b->failed)
		proxy_count_backend(b->proxy, &b->ip, true);
	b->failed = true;
	b->cb->failed(b->ctx, b, error);
}

static void lmtp_backend_interest(struct lmtp_backend *b)
{
	bool writing = sbuf_len(&b->out) > 0 || (b->body_go && b->body_sent < b->body_len);
	conn_set_interest(&b->conn, true, writing);
}

/* Output first, then the body once the backend asked for it. */
static int lmtp_backend_write(struct lmtp_backend *b)
{
	if (conn_write_sbuf(&b->conn, &b->out) < 0)
		return -1;
	while (sbuf_len(&b->out) == 0 && b->body_go && b->body_sent < b->body_len) {
		ssize_t n = conn_write(&b->conn, b->body + b->body_sent,
				       b->body_len - b->body_sent);
		if (n == CONN_AGAIN)
			break;
		if (n < 0)
			return -1;
		b->body_sent += (size_t)n;
		lmtp_backend_arm(b);
	}
	return 0;
}

/* One protocol event to the session. */
static void lmtp_backend_event(struct lmtp_backend *b, enum lmtp_client_event ev)
{
	const char *line = sbuf_cstr(&b->client.reply);
	switch (ev) {
	case LMTP_EV_NONE:
		break;
	case LMTP_EV_READY:
		b->cb->ready(b->ctx, b);
		break;
	case LMTP_EV_REPLY:
		b->cb->reply(b->ctx, b, b->client.code, line);
		break;
	case LMTP_EV_DATA_GO:
		b->body_go = true;
		break;
	case LMTP_EV_DATA_REPLY:
		b->cb->data_reply(b->ctx, b, b->client.code, line, b->client.data_replies == 0 &&
				  !b->body_go);
		break;
	case LMTP_EV_FAIL:
		break;
	}
}

static void lmtp_backend_read(struct lmtp_backend *b)
{
	for (;;) {
		char *buf = sbuf_reserve(&b->in, LMTP_BACKEND_READ_CHUNK);
		ssize_t n = conn_read(&b->conn, buf, LMTP_BACKEND_READ_CHUNK);
		if (n == CONN_AGAIN)
			return;
		if (n <= 0) {
			lmtp_backend_fail(b, n == 0 ? "disconnected" : b->conn.error);
			return;
		}
		sbuf_commit(&b->in, (size_t)n);
		lmtp_backend_arm(b);
		for (;;) {
			size_t consumed;
			enum lmtp_client_event ev = lmtp_client_feed(&b->client,
				(const unsigned char *)sbuf_data(&b->in), sbuf_len(&b->in),
				&consumed, &b->out);
			sbuf_consume(&b->in, consumed);
			if (ev == LMTP_EV_FAIL) {
				lmtp_backend_fail(b, b->client.error);
				return;
			}
			if (ev == LMTP_EV_NONE)
				break;
			lmtp_backend_event(b, ev);
			if (b->failed)
				return;
		}
		/* a short plain read drained the socket, and the level-
		 * triggered event reports more: no read just for EAGAIN */
		if ((size_t)n < LMTP_BACKEND_READ_CHUNK && !conn_is_tls(&b->conn))
			return;
	}
}

static void lmtp_backend_io(struct conn *c, void *ctx)
{
	struct lmtp_backend *b = ctx;
	(void)c;
	if (lmtp_backend_write(b) < 0) {
		lmtp_backend_fail(b, b->conn.error);
		return;
	}
	lmtp_backend_read(b);
	if (b->failed)
		return;
	if (lmtp_backend_write(b) < 0) {
		lmtp_backend_fail(b, b->conn.error);
		return;
	}
	lmtp_backend_interest(b);
	lmtp_backend_disarm_if_idle(b);
}

static void lmtp_backend_timeout(evutil_socket_t fd, short what, void *ctx)
{
	struct lmtp_backend *b = ctx;
	(void)fd;
	(void)what;
	lmtp_backend_fail(b, "timed out");
}

/* Connected (backend_login, without a login: LMTP speaks for itself). */
static void lmtp_backend_connected(void *ctx, struct backend_login *bl,
				   enum backend_login_result result)
{
	struct lmtp_backend *b = ctx;
	if (result != BACKEND_LOGIN_OK) {
		b->error = xstrdup(backend_login_error(bl));
		backend_login_free(&b->connecting);
		lmtp_backend_fail(b, b->error);
		return;
	}
	struct sbuf greeting = SBUF_INIT;
	backend_login_take(bl, lmtp_backend_io, b, &greeting);
	backend_login_free(&b->connecting);
	sbuf_free(&greeting);	/* nothing is read before connected */
	lmtp_backend_io(&b->conn, b);
}

static void lmtp_backend_connect(struct lmtp_backend *b)
{
	struct backend_login_settings set = {
		.base = b->proxy->base,
		.ip = b->ip,
		.port = b->port,
		.connect_deadline = clock_monotonic_ms() + b->proxy->cfg->lmtp.proxy_timeout_ms,
		.deadline = clock_monotonic_ms() + b->proxy->cfg->lmtp.proxy_timeout_ms,
	};
	proxy_count_backend(b->proxy, &b->ip, false);
	b->connecting = backend_login_start(&set, &b->conn, lmtp_backend_connected, b);
}

struct lmtp_backend *lmtp_backend_new(struct proxy *proxy, const struct ipaddr *ip,
				      uint16_t port, const struct lmtp_client_params *params,
				      const struct lmtp_backend_callbacks *cb, void *ctx)
{
	struct lmtp_backend *b = xcalloc(1, sizeof(*b));
	b->proxy = proxy;
	b->ip = *ip;
	b->port = port;
	b->cb = cb;
	b->ctx = ctx;
	conn_init(&b->conn);
	lmtp_client_init(&b->client, params);
	b->timer = evtimer_new(proxy->base, lmtp_backend_timeout, b);
	lmtp_backend_arm(b);
	lmtp_backend_connect(b);
	return b;
}

void lmtp_backend_free(struct lmtp_backend **bp)
{
	struct lmtp_backend *b = *bp;
	if (b == NULL)
		return;
	if (conn_is_open(&b->conn)) {
		sbuf_appends(&b->out, "QUIT\r\n");
		(void)conn_write_sbuf(&b->conn, &b->out);
	}
	backend_login_free(&b->connecting);
	conn_close(&b->conn);
	free(b->error);
	event_free(b->timer);
	lmtp_client_deinit(&b->client);
	sbuf_free(&b->in);
	sbuf_free(&b->out);
	free(b);
	*bp = NULL;
}

bool lmtp_backend_is(const struct lmtp_backend *b, const struct ipaddr *ip, uint16_t port)
{
	return !b->failed && b->port == port && ipaddr_equal(&b->ip, ip);
}

bool lmtp_backend_is_idle(const struct lmtp_backend *b)
{
	return !b->failed && b->connecting == NULL && conn_is_open(&b->conn) &&
		lmtp_client_is_idle(&b->client) && sbuf_len(&b->out) == 0;
}

bool lmtp_backend_can_pipeline(const struct lmtp_backend *b)
{
	return b->client.pipelining;
}

/* A command is queued: it goes out with the owner's flush, or with the
 * connection's own event when a callback of it queued it. */
static void lmtp_backend_sent(struct lmtp_backend *b)
{
	lmtp_backend_arm(b);
}

void lmtp_backend_flush(struct lmtp_backend *b)
{
	if (b->failed || b->connecting != NULL || sbuf_len(&b->out) == 0)
		return;
	if (lmtp_backend_write(b) < 0) {
		lmtp_backend_fail(b, b->conn.error);
		return;
	}
	lmtp_backend_interest(b);
}

void lmtp_backend_mail(struct lmtp_backend *b, const char *from, const char *body)
{
	lmtp_client_mail(&b->client, from, body, &b->out);
	lmtp_backend_sent(b);
}

void lmtp_backend_rcpt(struct lmtp_backend *b, const char *to)
{
	lmtp_client_rcpt(&b->client, to, &b->out);
	lmtp_backend_sent(b);
}

void lmtp_backend_data(struct lmtp_backend *b, unsigned int accepted, const char *body,
		       size_t len)
{
	b->body = body;
	b->body_len = len;
	b->body_sent = 0;
	b->body_go = false;
	lmtp_client_data(&b->client, accepted, &b->out);
	lmtp_backend_sent(b);
}
