/* Health checks: one probe per backend, run once per interval. A probe
 * is a backend_login as a user's login would make it (backend.imap_port,
 * backend.ssl): connect, TLS if configured, then with health.user a real
 * login with the IMAP back machine (STARTTLS included when backend.ssl
 * says so), or without a user the "* OK" greeting alone. A probe that
 * does not finish within health.timeout fails. Results are counted in a
 * row; every result goes to the verdict callback, whose verdict changes
 * when `fall` failures or `rise` passes have been seen. */
#include "proxy/health.h"

#include <event2/event.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/clock.h"
#include "common/log.h"
#include "common/net.h"
#include "common/xmalloc.h"
#include "director/director.h"
#include "proto/back.h"
#include "proto/imap_back.h"
#include "proxy/backend_login.h"

#define HEALTH_GREETING "* OK"
#define HEALTH_ERROR_MAX 200

struct health_probe {
	struct health *health;
	struct ipaddr ip;
	char ip_str[IPADDR_STRLEN];
	struct backend_login *login;	/* NULL while idle */
	struct conn conn;		/* the login's connection */
	unsigned int passes, fails;	/* in a row */
	uint64_t passed, failed;	/* in all */
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

/* ---- the greeting alone, as a back machine ------------------------------ */

static struct back *health_greeting_create(const struct back_params *params);

static void health_greeting_destroy(struct back *b)
{
	back_deinit(b);
	free(b);
}

static enum back_event health_greeting_feed(struct back *b, const unsigned char *buf,
					    size_t len, size_t *consumed_r,
					    struct sbuf *out)
{
	(void)out;
	long n = back_next_line(buf, len, consumed_r);
	if (n == -1)
		return BACK_EV_NONE;
	if (n >= (long)strlen(HEALTH_GREETING) &&
	    memcmp(buf, HEALTH_GREETING, strlen(HEALTH_GREETING)) == 0)
		return BACK_EV_OK;
	b->fail = BACK_FAIL_TEMP;
	b->error = n < 0 ? "the greeting is too long" : "unexpected greeting";
	return BACK_EV_FAIL;
}

static void health_greeting_tls_started(struct back *b, struct sbuf *out)
{
	(void)b;
	(void)out;
}

static const struct back_ops health_greeting_ops = {
	.create = health_greeting_create,
	.destroy = health_greeting_destroy,
	.feed = health_greeting_feed,
	.tls_started = health_greeting_tls_started,
};

static struct back *health_greeting_create(const struct back_params *params)
{
	struct back *b = xcalloc(1, sizeof(*b));
	back_init(b, &health_greeting_ops, params);
	return b;
}

/* ---- results --------------------------------------------------------- */

/* Counts the result, tells the verdict callback, logs a change of verdict. */
static void probe_done(struct health_probe *p, const char *error)
{
	const struct config *cfg = p->health->cfg;
	enum director_health verdict = p->verdict;

	if (error == NULL) {
		p->passed++;
		p->passes++;
		p->fails = 0;
		if (p->verdict == DIRECTOR_HEALTH_UNKNOWN ||
		    (p->verdict == DIRECTOR_HEALTH_FAILING &&
		     p->passes >= cfg->director.health.rise))
			verdict = DIRECTOR_HEALTH_OK;
	} else {
		p->failed++;
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

static void probe_login_done(void *ctx, struct backend_login *bl,
			     enum backend_login_result result)
{
	struct health_probe *p = ctx;
	const struct config *cfg = p->health->cfg;
	char error[HEALTH_ERROR_MAX];

	switch (result) {
	case BACKEND_LOGIN_OK:
		error[0] = '\0';
		break;
	case BACKEND_LOGIN_AUTH_FAILED:
	case BACKEND_LOGIN_REFUSED:
		snprintf(error, sizeof(error), "login as %s refused: %s",
			 cfg->director.health.user,
			 result == BACKEND_LOGIN_REFUSED ? backend_login_reply(bl) :
			 "authentication failed");
		break;
	case BACKEND_LOGIN_FAILED:
		snprintf(error, sizeof(error), "%s", backend_login_error(bl));
		break;
	}
	backend_login_free(&p->login);
	probe_done(p, error[0] != '\0' ? error : NULL);
}

static void probe_start(struct health_probe *p)
{
	const struct config *cfg = p->health->cfg;
	bool login = cfg->director.health.user[0] != '\0';
	struct back_params params = {
		.user = cfg->director.health.user,
		.password = cfg->director.health.password,
		.starttls = login && cfg->backend.ssl == CONF_BACKEND_SSL_STARTTLS,
		.session_id = "health-check",
		.ttl = 1,
	};
	uint64_t deadline = clock_monotonic_ms() + cfg->director.health.timeout_ms;
	struct backend_login_settings set = {
		.base = p->health->base,
		.ip = p->ip,
		.port = (uint16_t)cfg->backend.imap_port,
		.connect_deadline = deadline,
		.deadline = deadline,
		.max_reconnects = 0,	/* a check that fails is a verdict */
		.tls = p->health->backend_tls,
		.implicit_tls = cfg->backend.ssl == CONF_BACKEND_SSL_YES,
		.back = login ? &imap_back_ops : &health_greeting_ops,
		.back_params = &params,
	};
	p->login = backend_login_start(&set, &p->conn, probe_login_done, p);
}

/* ---- rounds ------------------------------------------------------------- */

static void probe_free(struct health_probe *p)
{
	backend_login_free(&p->login);
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
	/* a probe's verdict comes from the loop, never inside its start */
	for (size_t i = 0; i < kept; i++) {
		if (h->probes[i]->login == NULL)
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

void health_foreach_results(const struct health *h,
			    void (*cb)(const struct health_results *r, void *ctx),
			    void *ctx)
{
	for (size_t i = 0; h != NULL && i < h->count; i++) {
		const struct health_probe *p = h->probes[i];
		const struct health_results r = { p->ip_str, p->passed, p->failed };
		cb(&r, ctx);
	}
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
