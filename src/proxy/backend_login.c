/* One attempt to reach and log in to a backend (backend_login.h).
 *
 *   CONNECT --fail--> RETRY --delay--> CONNECT ...   (within connect_deadline)
 *   CONNECT --ok--> [TLS] --> LOGIN (the back machine) --> done
 *                               \--STARTTLS--> TLS --> LOGIN
 *
 * Every verdict is delivered by backend_login_finish(): the owner hears it
 * from the loop, never from inside its own call. */
#include "proxy/backend_login.h"

#include <event2/event.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/clock.h"
#include "common/macros.h"
#include "common/xmalloc.h"
#include "core/connect.h"

#define BACKEND_LOGIN_READ_CHUNK 4096
/* a retry needs at least this much time left to be worth it */
#define BACKEND_LOGIN_RETRY_MIN_LEFT_MS 1100
#define BACKEND_LOGIN_ERROR_MAX 512

enum backend_login_step {
	STEP_CONNECT,
	STEP_RETRY,		/* waiting to connect again */
	STEP_TLS,
	STEP_LOGIN,
	STEP_DONE,		/* the verdict is set; waiting to tell it */
	STEP_TOLD,
};

static const char *const backend_login_step_names[] = {
	[STEP_CONNECT] = "backend-connect",
	[STEP_RETRY] = "backend-retry",
	[STEP_TLS] = "backend-tls",
	[STEP_LOGIN] = "backend-login",
	[STEP_DONE] = "done",
	[STEP_TOLD] = "done",
};

struct backend_login {
	struct backend_login_settings set;
	struct net_keepalive keepalive;	/* copies: the settings' pointers are */
	struct back_params back_params;	/* the caller's, for the call only */
	enum backend_login_step step;
	struct conn *conn;		/* the owner's */
	bool taken;
	struct event *timer;
	struct back *back;
	struct sbuf in;			/* what the backend sent */
	struct sbuf out;		/* the login line: secret */
	unsigned int attempts;
	/* a plain backend that speaks first: the connect is awaited by
	 * its greeting (readable) rather than by writability, which saves
	 * the loop a turn per login (and an interest change) */
	bool greeting_first;
	bool starting;			/* inside backend_login_start() */
	enum backend_login_result result;
	char error[BACKEND_LOGIN_ERROR_MAX];
	char *reply;
	backend_login_done_cb *done;
	void *ctx;
};

static void backend_login_event(struct conn *c, void *ctx);
static void backend_login_connect(struct backend_login *bl);

static void backend_login_timer_at(struct backend_login *bl, uint64_t at)
{
	uint64_t now = clock_monotonic_ms();
	uint64_t ms = at > now ? at - now : 0;
	struct timeval tv = { (time_t)(ms / 1000), (suseconds_t)(ms % 1000) * 1000 };
	evtimer_add(bl->timer, &tv);
}

/* Tells the owner, from the loop: at once from one of this object's
 * events, on the next turn from inside backend_login_start(). The owner
 * may free the object in its callback, so nothing touches it after. */
static void backend_login_finish(struct backend_login *bl,
				 enum backend_login_result result)
{
	bl->result = result;
	if (result != BACKEND_LOGIN_OK)
		conn_close(bl->conn);
	evtimer_del(bl->timer);
	if (bl->starting) {
		bl->step = STEP_DONE;
		event_active(bl->timer, EV_TIMEOUT, 1);
		return;
	}
	bl->step = STEP_TOLD;
	bl->done(bl->ctx, bl, result);
}

static void backend_login_fail(struct backend_login *bl, const char *fmt, ...)
	ATTR_FORMAT(2, 3);

static void backend_login_fail(struct backend_login *bl, const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(bl->error, sizeof(bl->error), fmt, ap);
	va_end(ap);
	backend_login_finish(bl, BACKEND_LOGIN_FAILED);
}

/* ---- the login dialogue ------------------------------------------------ */

static void backend_login_back_start(struct backend_login *bl)
{
	if (bl->set.back == NULL) {
		backend_login_finish(bl, BACKEND_LOGIN_OK);
		return;
	}
	struct back_params p = bl->back_params;
	p.tls_active = conn_is_tls(bl->conn);
	bl->back = bl->set.back->create(&p);
	bl->step = STEP_LOGIN;
	conn_set_interest(bl->conn, true, false);
}

static void backend_login_tls_start(struct backend_login *bl)
{
	char ip[IPADDR_STRLEN];
	if (bl->set.tls == NULL) {
		backend_login_fail(bl, "TLS is not configured (backend.ssl)");
		return;
	}
	if (conn_tls_start(bl->conn, bl->set.tls, false,
			   ipaddr_to_str(&bl->set.ip, ip)) < 0) {
		backend_login_fail(bl, "TLS setup failed: %s", bl->conn->error);
		return;
	}
	bl->step = STEP_TLS;
	backend_login_event(bl->conn, bl);
}

/* The back machine's verdict on what it read. */
static void backend_login_verdict(struct backend_login *bl, enum back_event ev)
{
	switch (ev) {
	case BACK_EV_NONE:
		return;
	case BACK_EV_STARTTLS:
		/* the STARTTLS command is out; nothing may follow it in
		 * plaintext, nor be read from before the handshake */
		sbuf_reset(&bl->in);
		backend_login_tls_start(bl);
		return;
	case BACK_EV_OK:
		bl->reply = xstrdup(bl->back->reply != NULL ? bl->back->reply : "");
		backend_login_finish(bl, BACKEND_LOGIN_OK);
		return;
	case BACK_EV_CHALLENGE:
		if (bl->set.challenge == NULL) {
			backend_login_fail(bl, "unexpected authentication challenge");
			return;
		}
		bl->set.challenge(bl->ctx, bl, sbuf_data(&bl->back->challenge),
				  sbuf_len(&bl->back->challenge));
		return;
	case BACK_EV_FAIL:
		break;
	}
	switch (bl->back->fail) {
	case BACK_FAIL_AUTH:
		backend_login_finish(bl, BACKEND_LOGIN_AUTH_FAILED);
		return;
	case BACK_FAIL_REPLY:
		bl->reply = xstrdup(bl->back->reply);
		backend_login_finish(bl, BACKEND_LOGIN_REFUSED);
		return;
	case BACK_FAIL_TEMP:
		backend_login_fail(bl, "%s", bl->back->error);
		return;
	}
}

static void backend_login_io(struct backend_login *bl)
{
	if (conn_write_sbuf(bl->conn, &bl->out) < 0) {
		backend_login_fail(bl, "write failed: %s", bl->conn->error);
		return;
	}
	for (;;) {
		ssize_t n = conn_read_sbuf(bl->conn, &bl->in, BACKEND_LOGIN_READ_CHUNK);
		if (n == CONN_AGAIN)
			break;
		if (n <= 0) {
			backend_login_fail(bl, "%s while logging in",
					   n == 0 ? "disconnected" : bl->conn->error);
			return;
		}
		BENCH_MARK(bl->set.bench, BENCH_BACKEND_GREETING);
		size_t consumed;
		enum back_event ev = bl->back->ops->feed(bl->back,
			(const unsigned char *)sbuf_data(&bl->in), sbuf_len(&bl->in),
			&consumed, &bl->out);
		sbuf_consume(&bl->in, consumed);
		if (conn_write_sbuf(bl->conn, &bl->out) < 0) {
			backend_login_fail(bl, "write failed: %s", bl->conn->error);
			return;
		}
		if (ev != BACK_EV_NONE) {
			/* the owner may have freed the object in its callback */
			backend_login_verdict(bl, ev);
			return;
		}
	}
	conn_set_interest(bl->conn, true, sbuf_len(&bl->out) > 0);
}

void backend_login_respond(struct backend_login *bl, const char *b64, size_t len)
{
	back_sasl_respond(bl->back, b64, len, &bl->out);
	/* written, and any failure told, from the connection's event */
	conn_set_interest(bl->conn, true, true);
}

/* ---- connecting ------------------------------------------------------------- */

static void backend_login_retry(struct backend_login *bl, const char *error)
{
	uint64_t now = clock_monotonic_ms();
	conn_close(bl->conn);
	bl->attempts++;
	if (bl->attempts > bl->set.max_reconnects ||
	    now + BACKEND_LOGIN_RETRY_MIN_LEFT_MS > bl->set.connect_deadline) {
		backend_login_fail(bl, "connect failed: %s", error);
		return;
	}
	bl->step = STEP_RETRY;
	/* the retry never outlasts the deadline */
	backend_login_timer_at(bl, MIN(now + bl->set.retry_delay_ms, bl->set.deadline));
}

static void backend_login_connected(struct backend_login *bl)
{
	if (bl->set.implicit_tls)
		backend_login_tls_start(bl);
	else
		backend_login_back_start(bl);
}

static void backend_login_connect(struct backend_login *bl)
{
	const char *error;
	int fd;
	enum connect_result r = connect_start(&bl->set.ip, bl->set.port,
					      bl->set.keepalive != NULL ? &bl->keepalive : NULL,
					      &fd, &error);
	if (r == CONNECT_FAILED) {
		backend_login_retry(bl, error);
		return;
	}
	conn_attach(bl->conn, bl->set.base, fd, backend_login_event, bl);
	bl->step = STEP_CONNECT;
	bl->greeting_first = !bl->set.implicit_tls && bl->set.back != NULL;
	backend_login_timer_at(bl, MIN(bl->set.connect_deadline, bl->set.deadline));
	if (r == CONNECT_DONE) {
		BENCH_MARK(bl->set.bench, BENCH_BACKEND_CONNECTED);
		backend_login_connected(bl);
	} else {
		conn_set_interest(bl->conn, bl->greeting_first, !bl->greeting_first);
	}
}

static void backend_login_event(struct conn *c, void *ctx)
{
	struct backend_login *bl = ctx;
	const char *error;
	(void)c;
	switch (bl->step) {
	case STEP_CONNECT:
		if (connect_finish(bl->conn->fd, &error) < 0) {
			backend_login_retry(bl, error);
			return;
		}
		BENCH_MARK(bl->set.bench, BENCH_BACKEND_CONNECTED);
		if (!bl->greeting_first) {
			backend_login_connected(bl);
			return;
		}
		/* woken by the greeting (or the backend's close): read it
		 * now; a back machine never finishes on starting */
		backend_login_back_start(bl);
		backend_login_io(bl);
		return;
	case STEP_TLS: {
		int r = conn_handshake(bl->conn);
		if (r == CONN_AGAIN) {
			conn_set_interest(bl->conn, true, false);
			return;
		}
		if (r < 0) {
			backend_login_fail(bl, "TLS handshake failed: %s", bl->conn->error);
			return;
		}
		if (bl->back == NULL) {
			backend_login_back_start(bl);
			return;
		}
		/* after STARTTLS the login goes on */
		bl->back->ops->tls_started(bl->back, &bl->out);
		bl->step = STEP_LOGIN;
		backend_login_io(bl);
		return;
	}
	case STEP_LOGIN:
		backend_login_io(bl);
		return;
	default:
		/* a stale event */
		conn_set_interest(bl->conn, false, false);
		return;
	}
}

static void backend_login_timeout(evutil_socket_t fd, short what, void *arg)
{
	struct backend_login *bl = arg;
	uint64_t now = clock_monotonic_ms();
	(void)fd;
	(void)what;
	switch (bl->step) {
	case STEP_DONE:
		bl->step = STEP_TOLD;
		bl->done(bl->ctx, bl, bl->result);
		return;
	case STEP_TOLD:
		return;
	case STEP_RETRY:
		if (now >= bl->set.deadline) {
			backend_login_fail(bl, "timed out (%s)", backend_login_step_names[bl->step]);
			return;
		}
		backend_login_connect(bl);
		return;
	default:
		if (now >= bl->set.connect_deadline || now >= bl->set.deadline)
			backend_login_fail(bl, "timed out (%s)", backend_login_step(bl));
		else
			backend_login_timer_at(bl, MIN(bl->set.connect_deadline,
						       bl->set.deadline));
		return;
	}
}

/* ---- the object ---------------------------------------------------------------- */

struct backend_login *backend_login_start(const struct backend_login_settings *set,
					  struct conn *conn, backend_login_done_cb *done,
					  void *ctx)
{
	struct backend_login *bl = xcalloc(1, sizeof(*bl));
	bl->set = *set;
	if (set->keepalive != NULL)
		bl->keepalive = *set->keepalive;
	if (set->back_params != NULL)
		bl->back_params = *set->back_params;
	bl->done = done;
	bl->ctx = ctx;
	bl->conn = conn;
	sbuf_set_secret(&bl->out);
	bl->timer = evtimer_new(set->base, backend_login_timeout, bl);
	bl->starting = true;
	backend_login_connect(bl);
	bl->starting = false;
	return bl;
}

void backend_login_take(struct backend_login *bl, conn_event_cb *cb, void *ctx,
			struct sbuf *leftover)
{
	sbuf_append(leftover, sbuf_data(&bl->in), sbuf_len(&bl->in));
	sbuf_reset(&bl->in);
	bl->conn->cb = cb;
	bl->conn->ctx = ctx;
	bl->taken = true;
}

const char *backend_login_error(const struct backend_login *bl)
{
	return bl->error;
}

const char *backend_login_reply(const struct backend_login *bl)
{
	return bl->reply != NULL ? bl->reply : "";
}

/* A connect awaited by the greeting may be done already and the backend
 * silent: that is its login step, as if awaited by writability. */
const char *backend_login_step(const struct backend_login *bl)
{
	if (bl->step == STEP_CONNECT && bl->greeting_first && connect_established(bl->conn->fd))
		return backend_login_step_names[STEP_LOGIN];
	return backend_login_step_names[bl->step];
}

void backend_login_free(struct backend_login **blp)
{
	struct backend_login *bl = *blp;
	if (bl == NULL)
		return;
	if (bl->back != NULL)
		bl->back->ops->destroy(bl->back);
	if (!bl->taken)
		conn_close(bl->conn);
	event_free(bl->timer);
	sbuf_free(&bl->in);
	sbuf_free(&bl->out);
	free(bl->reply);
	free(bl);
	*blp = NULL;
}
