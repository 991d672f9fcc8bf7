/* Health checks: one probe per backend, run once per interval.
 *
 *   idle -> connect -> [tls] -> talk -> idle
 *
 * "talk" reads the greeting, and with health.user logs in with the IMAP
 * backend machine (STARTTLS included when backend.ssl says so). A probe
 * that does not finish within health.timeout fails. Results are counted in
 * a row; every result goes to the verdict callback, whose verdict changes
 * when `fall` failures or `rise` passes have been seen. */
#include "proxy/health.h"

#include <errno.h>
#include <event2/event.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>

#include "common/log.h"
#include "common/net.h"
#include "common/sbuf.h"
#include "common/xmalloc.h"
#include "core/conn.h"
#include "director/director.h"
#include "proto/back.h"
#include "proto/imap_back.h"

#define HEALTH_READ_CHUNK 4096
#define HEALTH_GREETING "* OK"
#define HEALTH_ERROR_MAX 200

enum probe_state {
	PROBE_IDLE,
	PROBE_CONNECT,
	PROBE_TLS,
	PROBE_TALK,
};

static const char *const probe_state_names[] = {
	[PROBE_IDLE] = "idle",
	[PROBE_CONNECT] = "connecting",
	[PROBE_TLS] = "TLS handshake",
	[PROBE_TALK] = "waiting for the backend",
};

struct health_probe {
	struct health *health;
	struct ipaddr ip;
	char ip_str[IPADDR_STRLEN];
	enum probe_state state;
	struct conn conn;
	struct event *timer;
	struct back *back;		/* a login check */
	struct sbuf in, out;
	unsigned int passes, fails;	/* in a row */
	enum director_health verdict;
	bool listed;			/* still in the director's list */
};

struct health {
	struct event_base *base;
	const struct config *cfg;
	struct director *director;	/* read only: the host list */
	health_verdict_cb *verdict;
	void *verdict_ctx;
	SSL_CTX *backend_tls;
	struct event *round;
	struct health_probe **probes;
	size_t count, cap;
};

static void probe_event(struct conn *c, void *ctx);

/* ---- results --------------------------------------------------------- */

static void probe_reset(struct health_probe *p)
{
	conn_close(&p->conn);
	if (p->back != NULL) {
		p->back->ops->destroy(p->back);
		p->back = NULL;
	}
	sbuf_free(&p->in);
	sbuf_free(&p->out);
	evtimer_del(p->timer);
	p->state = PROBE_IDLE;
}

/* Counts the result, tells the director, logs a change of verdict. */
static void probe_done(struct health_probe *p, const char *error)
{
	const struct config *cfg = p->health->cfg;
	enum director_health verdict = p->verdict;

	probe_reset(p);
	if (error == NULL) {
		p->passes++;
		p->fails = 0;
		if (p->verdict == DIRECTOR_HEALTH_UNKNOWN ||
		    (p->verdict == DIRECTOR_HEALTH_FAILING &&
		     p->passes >= cfg->director.health.rise))
			verdict = DIRECTOR_HEALTH_OK;
	} else {
		p->fails++;
		p->passes = 0;
		log_debug("director: health check of %s failed: %s", p->ip_str, error);
		if (p->verdict != DIRECTOR_HEALTH_FAILING &&
		    p->fails >= cfg->director.health.fall)
			verdict = DIRECTOR_HEALTH_FAILING;
	}
	if (verdict == DIRECTOR_HEALTH_FAILING && p->verdict != verdict)
		log_warning("director: backend %s failed %u health checks in a row (%s): "
			    "no logins go there until it passes %u", p->ip_str, p->fails,
			    error, cfg->director.health.rise);
	else if (verdict == DIRECTOR_HEALTH_OK && p->verdict == DIRECTOR_HEALTH_FAILING)
		log_info("director: backend %s passed %u health checks in a row: "
			 "logins go there again", p->ip_str, p->passes);
	p->verdict = verdict;
	p->health->verdict(p->health->verdict_ctx, &p->ip, verdict,
			   verdict == DIRECTOR_HEALTH_OK ? NULL : error);
}

static void probe_failed(struct health_probe *p, const char *fmt, ...) ATTR_FORMAT(2, 3);

static void probe_failed(struct health_probe *p, const char *fmt, ...)
{
	char error[HEALTH_ERROR_MAX];
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(error, sizeof(error), fmt, ap);
	va_end(ap);
	probe_done(p, error);
}

static void probe_timeout(evutil_socket_t fd, short what, void *ctx)
{
	struct health_probe *p = ctx;
	(void)fd;
	(void)what;
	probe_failed(p, "timed out after %llu ms (%s)",
		     (unsigned long long)p->health->cfg->director.health.timeout_ms,
		     probe_state_names[p->state]);
}

/* ---- talking --------------------------------------------------------- */

static void probe_tls_start(struct health_probe *p)
{
	if (conn_tls_start(&p->conn, p->health->backend_tls, false, p->ip_str) < 0) {
		probe_failed(p, "TLS setup failed: %s", p->conn.error);
		return;
	}
	p->state = PROBE_TLS;
	probe_event(&p->conn, p);
}

static void probe_talk_start(struct health_probe *p)
{
	const struct config *cfg = p->health->cfg;
	p->state = PROBE_TALK;
	if (cfg->director.health.user[0] != '\0' && p->back == NULL) {
		struct back_params params = {
			.user = cfg->director.health.user,
			.password = cfg->director.health.password,
			.starttls = cfg->backend.ssl == CONF_BACKEND_SSL_STARTTLS,
			.tls_active = conn_is_tls(&p->conn),
			.session_id = "health-check",
			.ttl = 1,
		};
		p->back = imap_back_ops.create(&params);
	}
	conn_set_interest(&p->conn, true, false);
}

/* Without a login: the greeting alone decides. */
static bool probe_greeting(struct health_probe *p)
{
	size_t consumed;
	long len = back_next_line((const unsigned char *)sbuf_data(&p->in),
				  sbuf_len(&p->in), &consumed);
	if (len == -1)
		return false;
	if (len >= (long)strlen(HEALTH_GREETING) &&
	    strncmp(sbuf_data(&p->in), HEALTH_GREETING, strlen(HEALTH_GREETING)) == 0) {
		probe_done(p, NULL);
		return true;
	}
	probe_failed(p, "unexpected greeting: %.*s", len < 0 ? 80 : (int)MIN(len, 80),
		     sbuf_data(&p->in));
	return true;
}

/* With a login: the backend machine decides. Returns true when done. */
static bool probe_login(struct health_probe *p)
{
	size_t consumed;
	enum back_event ev = p->back->ops->feed(p->back,
		(const unsigned char *)sbuf_data(&p->in), sbuf_len(&p->in), &consumed,
		&p->out);
	sbuf_consume(&p->in, consumed);
	switch (ev) {
	case BACK_EV_NONE:
		if (conn_write_sbuf(&p->conn, &p->out) < 0) {
			probe_failed(p, "write failed: %s", p->conn.error);
			return true;
		}
		return false;
	case BACK_EV_STARTTLS:
		if (conn_write_sbuf(&p->conn, &p->out) < 0) {
			probe_failed(p, "write failed: %s", p->conn.error);
			return true;
		}
		sbuf_reset(&p->in);
		probe_tls_start(p);
		return true;
	case BACK_EV_OK:
		probe_done(p, NULL);
		return true;
	case BACK_EV_FAIL:
		break;
	}
	if (p->back->fail == BACK_FAIL_TEMP)
		probe_failed(p, "%s", p->back->error);
	else
		probe_failed(p, "login as %s refused: %s", p->health->cfg->director.health.user,
			     p->back->reply != NULL ? p->back->reply : "authentication failed");
	return true;
}

static void probe_talk(struct health_probe *p)
{
	if (conn_write_sbuf(&p->conn, &p->out) < 0) {
		probe_failed(p, "write failed: %s", p->conn.error);
		return;
	}
	for (;;) {
		char *buf = sbuf_reserve(&p->in, HEALTH_READ_CHUNK);
		ssize_t n = conn_read(&p->conn, buf, HEALTH_READ_CHUNK);
		if (n == CONN_AGAIN)
			break;
		if (n <= 0) {
			probe_failed(p, "%s", n == 0 ? "disconnected" : p->conn.error);
			return;
		}
		sbuf_commit(&p->in, (size_t)n);
		if (sbuf_len(&p->in) > BACK_MAX_LINE) {
			probe_failed(p, "the backend sent an overlong line");
			return;
		}
		if (p->back == NULL ? probe_greeting(p) : probe_login(p))
			return;
	}
	conn_set_interest(&p->conn, true, sbuf_len(&p->out) > 0);
}

/* ---- connecting ------------------------------------------------------- */

static void probe_connected(struct health_probe *p)
{
	int one = 1;
	setsockopt(p->conn.fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
	if (p->health->cfg->backend.ssl == CONF_BACKEND_SSL_YES)
		probe_tls_start(p);
	else
		probe_talk_start(p);
}

static void probe_event(struct conn *c, void *ctx)
{
	struct health_probe *p = ctx;
	(void)c;
	switch (p->state) {
	case PROBE_CONNECT: {
		int err = 0;
		socklen_t len = sizeof(err);
		if (getsockopt(p->conn.fd, SOL_SOCKET, SO_ERROR, &err, &len) < 0)
			err = errno;
		if (err != 0)
			probe_failed(p, "connect failed: %s", strerror(err));
		else
			probe_connected(p);
		return;
	}
	case PROBE_TLS: {
		int r = conn_handshake(&p->conn);
		if (r == CONN_AGAIN) {
			conn_set_interest(&p->conn, true, false);
			return;
		}
		if (r < 0) {
			probe_failed(p, "TLS handshake failed: %s", p->conn.error);
			return;
		}
		if (p->back != NULL) {
			/* after STARTTLS the login goes on */
			p->back->ops->tls_started(p->back, &p->out);
			p->state = PROBE_TALK;
			probe_talk(p);
		} else {
			probe_talk_start(p);
		}
		return;
	}
	case PROBE_TALK:
		probe_talk(p);
		return;
	case PROBE_IDLE:
		conn_set_interest(&p->conn, false, false);
		return;
	}
}

static void probe_start(struct health_probe *p)
{
	const struct config *cfg = p->health->cfg;
	struct sockaddr_storage ss;
	socklen_t len = ipaddr_to_sockaddr(&p->ip, (uint16_t)cfg->backend.imap_port, &ss);
	uint64_t ms = cfg->director.health.timeout_ms;
	struct timeval tv = { (time_t)(ms / 1000), (suseconds_t)(ms % 1000) * 1000 };

	int fd = socket(ss.ss_family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
	if (fd < 0) {
		probe_failed(p, "socket() failed: %s", strerror(errno));
		return;
	}
	conn_attach(&p->conn, p->health->base, fd, probe_event, p);
	p->state = PROBE_CONNECT;
	evtimer_add(p->timer, &tv);
	if (connect(fd, (struct sockaddr *)&ss, len) == 0) {
		probe_connected(p);
		return;
	}
	if (errno != EINPROGRESS) {
		probe_failed(p, "connect failed: %s", strerror(errno));
		return;
	}
	conn_set_interest(&p->conn, false, true);
}

/* ---- rounds ------------------------------------------------------------- */

static void probe_free(struct health_probe *p)
{
	probe_reset(p);
	event_free(p->timer);
	free(p);
}

static struct health_probe *health_probe_get(struct health *h, const struct ipaddr *ip)
{
	for (size_t i = 0; i < h->count; i++) {
		if (ipaddr_equal(&h->probes[i]->ip, ip))
			return h->probes[i];
	}
	struct health_probe *p = xcalloc(1, sizeof(*p));
	p->health = h;
	p->ip = *ip;
	ipaddr_to_str(ip, p->ip_str);
	conn_init(&p->conn);
	p->timer = evtimer_new(h->base, probe_timeout, p);
	h->probes = xgrow(h->probes, &h->cap, h->count + 1, sizeof(*h->probes));
	h->probes[h->count++] = p;
	return p;
}

/* Follows the director's list (admins add and remove hosts), then starts
 * every probe that is not still running. */
static void health_round(evutil_socket_t fd, short what, void *ctx)
{
	struct health *h = ctx;
	const struct director_host_list *hosts = director_hosts(h->director);
	(void)fd;
	(void)what;
	for (size_t i = 0; i < h->count; i++)
		h->probes[i]->listed = false;
	for (size_t i = 0; i < hosts->count; i++)
		health_probe_get(h, &hosts->hosts[i]->ip)->listed = true;
	size_t kept = 0;
	for (size_t i = 0; i < h->count; i++) {
		if (h->probes[i]->listed)
			h->probes[kept++] = h->probes[i];
		else
			probe_free(h->probes[i]);
	}
	h->count = kept;
	/* starting a probe may finish it at once: iterate over a count that
	 * no callback changes */
	for (size_t i = 0; i < kept; i++) {
		if (h->probes[i]->state == PROBE_IDLE)
			probe_start(h->probes[i]);
	}
}

struct health *health_new(struct event_base *base, const struct config *cfg,
			  struct director *director, SSL_CTX *backend_tls,
			  health_verdict_cb *verdict, void *verdict_ctx)
{
	uint64_t ms = cfg->director.health.interval_ms;
	if (ms == 0)
		return NULL;
	struct health *h = xcalloc(1, sizeof(*h));
	h->base = base;
	h->cfg = cfg;
	h->director = director;
	h->verdict = verdict;
	h->verdict_ctx = verdict_ctx;
	h->backend_tls = backend_tls;
	h->round = event_new(base, -1, EV_PERSIST, health_round, h);
	struct timeval tv = { (time_t)(ms / 1000), (suseconds_t)(ms % 1000) * 1000 };
	event_add(h->round, &tv);
	/* the first round at once: a dead backend shows within fall rounds */
	event_active(h->round, EV_TIMEOUT, 0);
	return h;
}

void health_set_config(struct health *h, const struct config *cfg)
{
	if (h != NULL)
		h->cfg = cfg;
}

void health_free(struct health **hp)
{
	struct health *h = *hp;
	if (h == NULL)
		return;
	for (size_t i = 0; i < h->count; i++)
		probe_free(h->probes[i]);
	free(h->probes);
	event_free(h->round);
	free(h);
	*hp = NULL;
}
