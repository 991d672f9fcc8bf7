/* A session after its login (session_private.h): the client gets the
 * backend's OK, then the relay moves bytes both ways until either side
 * ends; the client's commands are watched in passing (a logout, the start
 * of COMPRESS); the idle limit; goodbyes that must not cut into the
 * backend's output or a compressed stream. */
#include <time.h>

#include "auth/penalty.h"
#include "common/clock.h"
#include "common/xmalloc.h"
#include "proxy/backend_login.h"
#include "proxy/protocols.h"
#include "proxy/session_private.h"

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

void session_relay(struct session *s)
{
	const char *reason;
	enum relay_end end;
	uint64_t until = s->proxy->relay_until_ms;
	if (until != 0 && clock_monotonic_ms() >= until) {
		/* past the ring's fence deadline: what the client sent must
		 * not reach a backend the ring may have given its user's
		 * successor. Fenced: the session goes; not yet (the loop
		 * stalled): the fence is due first in the next loop pass. */
		if (!s->proxy->serving)
			session_goodbye(s, PROXY_FENCED_TEXT, "kicked");
		return;
	}
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

void session_backend_event(struct conn *c, void *ctx)
{
	struct session *s = ctx;
	(void)c;
	if (s->state == SESSION_PROXYING)
		session_relay(s);
	else
		conn_set_interest(&s->backend, false, false);
	session_settle(s);
}

/* The client's commands seen in passing (proto/command_watch.h). */
static void session_relay_watch(void *ctx, const char *data, size_t len)
{
	struct session *s = ctx;
	BENCH_MARK(&s->bench, BENCH_LOGOUT_READ);
	unsigned int flags = command_watch_last_line(s->listener->protocol->watch,
						     data, len);
	s->client_quit = (flags & COMMAND_WATCH_LOGOUT) != 0;
	if ((flags & COMMAND_WATCH_OPAQUE) != 0)
		s->stream_opaque = true;
}

void session_logged_in(struct session *s)
{
	char ip[IPADDR_STRLEN];

	s->front->ops->logged_in(s->front, backend_login_reply(s->backend_login), &s->out);
	/* anything the backend sent after its OK follows the OK */
	backend_login_take(s->backend_login, session_backend_event, s, &s->out);
	backend_login_free(&s->backend_login);
	/* commands the client pipelined after its login go to the backend
	 * first: they are the first the relay's watch would have seen */
	if (sbuf_len(&s->in) > 0 && s->listener->protocol->watch != NULL)
		session_relay_watch(s, sbuf_data(&s->in), sbuf_len(&s->in));
	if (s->proxy->penalty != NULL)
		penalty_success(s->proxy->penalty, &s->reg.client_ip, time(NULL));
	session_forget_secrets(s);
	free(s->auth_user);
	s->auth_user = NULL;
	free(s->master_user);
	s->master_user = NULL;
	evtimer_del(&s->timer);
	session_release_prelogin(s);
	session_set_state(s, SESSION_PROXYING);
	s->reg.state = REGISTRY_STATE_PROXYING;
	session_count_login(s, PROXY_LOGIN_OK);
	histogram_observe(&s->proxy->stats.login_latency,
			  clock_monotonic_us() - s->start_us);
	s->idle_ms = proxy_protocol_idle_ms(s->listener->protocol, s->cfg);
	s->last_traffic = clock_monotonic_ms();
	session_relay_timer(s);
	session_log(s, LOG_LEVEL_INFO, "proxying to %s:%u",
		    ipaddr_to_str(&s->reg.backend_ip, ip), s->reg.backend_port);
	relay_start(&s->relay, s->proxy->relay_pools, &s->client, &s->backend, &s->out,
		    &s->in);
	if (s->listener->protocol->watch != NULL)
		relay_watch(&s->relay, session_relay_watch, s);
	session_relay(s);
}

/* ---- goodbyes, idle time ----------------------------------------------- */

void session_relayed_goodbye(struct session *s, const char *text)
{
	/* loft holds part of the backend's output (the goodbye would cut
	 * into it), or the stream is compressed (COMPRESS) and cannot take
	 * plain text: close without a word rather than break the client */
	if (relay_client_pending(&s->relay) || s->stream_opaque)
		return;
	struct sbuf bye = SBUF_INIT;
	s->front->ops->disconnect(s->front, text, &bye);
	(void)conn_write(&s->client, sbuf_data(&bye), sbuf_len(&bye));
	sbuf_free(&bye);
}

void session_goodbye(struct session *s, const char *text, const char *reason)
{
	if (s->state == SESSION_PROXYING) {
		session_relayed_goodbye(s, text);
		session_end(s, reason);
	} else {
		s->front->ops->disconnect(s->front, text, &s->out);
		session_end_after_flush(s, reason);
	}
}

/* While proxying the timer is the idle deadline (or the end of the wait
 * for the backend's rest after the client ended), and the relay's way to
 * run again after yielding (which cancels the deadline: it is set anew). */
void session_proxying_timer(struct session *s, uint64_t now)
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
