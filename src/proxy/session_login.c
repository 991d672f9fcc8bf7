/* A session's login, after the front has credentials (session_private.h):
 *
 *   AUTH: the auth penalty's wait (§6.3), then the passdb (worker thread)
 *   route: the passdb's host, or the director (a user being moved waits)
 *   BACKEND_LOGIN: a backend_login object connects, retries, starts TLS and
 *     logs in with the protocol's back machine
 *
 * Every failure answers the client with the protocol's NO and returns to
 * PRELOGIN; a wrong password (the passdb's or the backend's) raises the
 * client address's penalty.
 *
 * A pass-through mechanism (auth.passthrough_mechanisms) has no password:
 * the user its first message names is looked up without one, routed, and
 * the backend gets the mechanism with that message; its challenges go to
 * the client and the client's answers back (front_sasl_relay()) until the
 * backend decides. */
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "auth/auth.h"
#include "auth/penalty.h"
#include "common/clock.h"
#include "common/xmalloc.h"
#include "proxy/backend_login.h"
#include "proxy/protocols.h"
#include "proxy/session_private.h"

#define SESSION_RETRY_DELAY_MS 1000

/* ---- failures ------------------------------------------------------- */

/* A wrong password, from the passdb or the backend: raise the client
 * address's penalty (§6.3). */
static void session_penalise(struct session *s)
{
	/* a pass-through login's "password" is its message: the same token
	 * again is the same mistake */
	const char *secret = s->password != NULL ? s->password : s->sasl_message;
	if (s->proxy->penalty != NULL && s->auth_user != NULL && secret != NULL)
		penalty_failure(s->proxy->penalty, &s->reg.client_ip, s->auth_user,
				secret, time(NULL));
}

void session_forget_secrets(struct session *s)
{
	xfree_secret(&s->password);
	xfree_secret(&s->sasl_message);
	s->passthrough_mech = NULL;
}

void session_release_backend(struct session *s)
{
	backend_login_free(&s->backend_login);
	conn_close(&s->backend);
	director_release(s->proxy->director, &s->ticket, time(NULL));
}

/* The login did not work out: count it, forget the backend, and accept
 * commands again; the client has its answer. */
static void session_login_reset(struct session *s, enum proxy_login_result result,
				const char *why)
{
	session_count_login(s, result);
	session_log(s, LOG_LEVEL_INFO, "login failed: %s", why);
	session_release_backend(s);
	session_forget_secrets(s);
	free(s->auth_user);
	s->auth_user = NULL;
	free(s->master_user);
	s->master_user = NULL;
	s->master_checked = false;
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

/* ... and tell the client first. */
static void session_login_failed(struct session *s, enum proxy_login_result result,
				 enum front_auth_status status, const char *text,
				 const char *why)
{
	s->front->ops->auth_failed(s->front, status, text, &s->out);
	session_login_reset(s, result, why);
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
	proxy_count_backend(s->proxy, &s->reg.backend_ip, true);
	session_login_failed(s, PROXY_LOGIN_BACKEND_FAILED, FRONT_AUTH_TEMPFAIL,
			     SESSION_TEMPFAIL_TEXT, why);
}

/* ---- the backend login ------------------------------------------------- */

static void session_backend_done(void *ctx, struct backend_login *bl,
				 enum backend_login_result result)
{
	struct session *s = ctx;
	switch (result) {
	case BACKEND_LOGIN_OK:
		histogram_observe(&s->proxy->stats.backend_login_latency,
				  clock_monotonic_us() - s->backend_start_us);
		session_logged_in(s);
		BENCH_MARK(&s->bench, BENCH_BACKEND_OK);
		break;
	case BACKEND_LOGIN_AUTH_FAILED:
		session_penalise(s);
		session_login_failed(s, PROXY_LOGIN_AUTH_FAILED, FRONT_AUTH_FAILED, NULL,
				     "the backend rejected the credentials");
		break;
	case BACKEND_LOGIN_REFUSED: {
		/* the object and its reply go with the failure */
		char *reply = xstrdup(backend_login_reply(bl));
		proxy_count_backend(s->proxy, &s->reg.backend_ip, true);
		session_login_failed(s, PROXY_LOGIN_BACKEND_FAILED, FRONT_AUTH_BACKEND_REPLY,
				     reply, "the backend refused the login");
		free(reply);
		break;
	}
	case BACKEND_LOGIN_FAILED: {
		char *error = xstrdup(backend_login_error(bl));
		session_backend_failed(s, "%s", error);
		free(error);
		break;
	}
	}
	session_settle(s);
}

/* A pass-through mechanism's next step: the backend's challenge to the
 * client, whose answer session_sasl_relay_event() takes back. */
static void session_backend_challenge(void *ctx, struct backend_login *bl,
				      const char *b64, size_t len)
{
	struct session *s = ctx;
	(void)bl;
	if (s->front->state != FRONT_AUTH_WAIT ||
	    front_sasl_relay(s->front, b64, len, &s->out) < 0) {
		session_backend_failed(s, "an authentication challenge that is not base64, "
				       "or one the client was not waiting for");
	} else {
		session_client_flush(s);
		/* an answer the client sent ahead */
		session_process_input(s);
	}
	session_settle(s);
}

void session_sasl_relay_event(struct session *s, enum front_event ev)
{
	struct front *f = s->front;
	if (ev == FRONT_EV_SASL_ABORT) {
		/* the front answered the client: no failure reply, no penalty */
		session_login_reset(s, PROXY_LOGIN_AUTH_FAILED,
				    "the client ended the authentication exchange");
		return;
	}
	backend_login_respond(s->backend_login, sbuf_data(&f->login.response),
			      sbuf_len(&f->login.response));
	sbuf_free_secret(&f->login.response);
}

/* Logs in at the chosen backend unless that would loop back to us.
 * host: the director's host it was routed to (counted there at once), or
 * NULL for a passdb's host. */
static void session_backend_begin(struct session *s, const struct ipaddr *ip,
				  const char *name, const struct director_host *host)
{
	const struct config *cfg = s->cfg;
	char text[IPADDR_STRLEN];

	registry_set_backend(&s->proxy->registry, &s->reg, ip, (uint16_t)s->route_port,
			     name);
	if (ipaddr_equal(ip, &s->local_ip) && s->route_port == s->local_port) {
		session_login_failed(s, PROXY_LOGIN_ERROR, FRONT_AUTH_TEMPFAIL,
				     SESSION_TEMPFAIL_TEXT, "Proxying loops to itself");
		return;
	}
	if (host != NULL)
		host->stats->connections++;
	else
		proxy_count_backend(s->proxy, ip, false);
	session_log(s, LOG_LEVEL_DEBUG, "routed to %s:%u", ipaddr_to_str(ip, text),
		    s->route_port);
	struct back_params bp = {
		.user = s->login_user,
		.password = s->password,
		.master_user = s->master_user,
		.use_sasl = s->use_sasl || s->master_user != NULL,
		.sasl_mech = s->passthrough_mech,
		.sasl_ir = (const unsigned char *)s->sasl_message,
		.sasl_ir_len = s->sasl_message == NULL ? 0 : strlen(s->sasl_message),
		.starttls = cfg->backend.ssl == CONF_BACKEND_SSL_STARTTLS,
		.forward = true,
		.client_ip = s->reg.client_ip,
		.client_port = s->reg.client_port,
		.local_ip = s->local_ip,
		.local_port = s->local_port,
		.session_id = s->front->forward.session_id[0] != '\0' ?
			s->front->forward.session_id : s->id_str,
		.ttl = s->front->forward.ttl,
		.client_id = cfg->login.imap_id_retain ?
			sbuf_cstr(&s->front->client_id) : NULL,
		.helo = s->front->helo,
		.hostname = s->proxy->hostname,
	};
	struct net_keepalive ka;
	proxy_keepalive(cfg, &ka);
	struct backend_login_settings set = {
		.base = s->proxy->base,
		.ip = *ip,
		.port = (uint16_t)s->route_port,
		.connect_deadline = clock_monotonic_ms() + cfg->backend.connect_timeout_ms,
		.deadline = s->login_deadline,
		.max_reconnects = cfg->backend.max_reconnects,
		.retry_delay_ms = SESSION_RETRY_DELAY_MS,
		.tls = s->proxy->backend_tls,
		.implicit_tls = cfg->backend.ssl == CONF_BACKEND_SSL_YES,
		.keepalive = &ka,
		.back = s->listener->protocol->back,
		.back_params = &bp,
		.challenge = session_backend_challenge,
#ifdef LOFT_BENCH_HOOKS
		.bench = &s->bench,
#endif
	};
	session_set_state(s, SESSION_BACKEND_LOGIN);
	s->backend_start_us = clock_monotonic_us();
	s->backend_login = backend_login_start(&set, &s->backend, session_backend_done, s);
}

/* ---- routing ------------------------------------------------------------- */

/* Cut off from its ring: clients go to another director. */
static bool session_refused_fenced(struct session *s)
{
	if (s->proxy->serving)
		return false;
	session_login_failed(s, PROXY_LOGIN_ERROR, FRONT_AUTH_TEMPFAIL, SESSION_TEMPFAIL_TEXT,
			     "this director is fenced (cut off from its ring)");
	return true;
}

/* Asks the director; a user being moved waits for the move (§2.6). */
void session_route_director(struct session *s)
{
	const struct director_host *h;
	const char *error;

	s->route_again = false;
	/* also after a wait (a move, a host change): fenced meanwhile, the
	 * ring may have moved on */
	if (session_refused_fenced(s))
		return;
	switch (director_route(s->proxy->director, s->login_user, s->route_tag,
			       time(NULL), s->reg.id, &h, &s->ticket, &error)) {
	case DIRECTOR_ROUTE_OK:
		registry_set_director(&s->reg, s->ticket.hash, s->ticket.tag);
		session_backend_begin(s, &h->ip, h->hostname, h);
		return;
	case DIRECTOR_ROUTE_WAIT:
		session_log(s, LOG_LEVEL_DEBUG, "waiting: the user is being moved");
		session_set_state(s, SESSION_DIRECTOR_WAIT);
		session_timer_set(s, s->login_deadline);
		return;
	case DIRECTOR_ROUTE_FAIL:
		session_login_failed(s, PROXY_LOGIN_ERROR, FRONT_AUTH_TEMPFAIL,
				     SESSION_TEMPFAIL_TEXT, error);
		return;
	}
}

static void session_route(struct session *s, const struct auth_result *r)
{
	const struct config *cfg = s->cfg;
	struct registry *reg = &s->proxy->registry;

	registry_set_user(reg, &s->reg, r->user, 0);
	if (session_refused_fenced(s))
		return;
	for (size_t i = 0; i < r->alt_count; i++)
		registry_add_alt(&s->reg, r->alt[i].field, r->alt[i].value);
	s->login_user = xstrdup(r->destuser != NULL ? r->destuser : r->user);

	unsigned int limit = cfg->login.max_userip_connections;
	const struct proxy_shared_limits *shared = &s->proxy->shared;
	if (limit > 0 && registry_user_ip_count(reg, r->user, &s->reg.client_ip) +
	    (shared->user_ip_sessions == NULL ? 0 :
	     shared->user_ip_sessions(shared->ctx, r->user, &s->reg.client_ip)) > limit) {
		char text[160];
		/* Dovecot's refusal text, naming Dovecot's setting */
		snprintf(text, sizeof(text), "Maximum number of connections from user+IP "
			 "exceeded (mail_max_userip_connections=%u)", limit);
		session_login_failed(s, PROXY_LOGIN_LIMIT, FRONT_AUTH_LIMIT, text,
				     "too many sessions from this user and address");
		return;
	}
	/* §10.5: a TTL that reached the floor means proxies loop */
	if (s->front->forward.ttl <= 1) {
		session_login_failed(s, PROXY_LOGIN_ERROR, FRONT_AUTH_TEMPFAIL,
				     SESSION_TEMPFAIL_TEXT,
				     "TTL reached zero - proxies appear to be looping?");
		return;
	}
	s->route_port = r->port != 0 ? r->port :
		proxy_protocol_backend_port(s->listener->protocol, cfg);
	if (r->host != NULL) {
		struct ipaddr ip;
		if (ipaddr_parse(r->host, &ip) < 0) {
			session_login_failed(s, PROXY_LOGIN_ERROR, FRONT_AUTH_TEMPFAIL,
					     SESSION_TEMPFAIL_TEXT,
					     "passdb host is not an IP address");
			return;
		}
		/* the hash still identifies the user for director kicks */
		registry_set_director(&s->reg,
				      director_user_hash(s->proxy->director, s->login_user),
				      REGISTRY_TAG_NONE);
		session_backend_begin(s, &ip, r->host, NULL);
		return;
	}
	/* Dovecot hashes destuser when the passdb gives one (§4.7) */
	s->route_tag = r->director_tag != NULL ? xstrdup(r->director_tag) : NULL;
	session_route_director(s);
}

/* ---- auth -------------------------------------------------------------- */

static void session_auth_done(void *ctx, uint64_t id, const struct auth_result *r)
{
	struct proxy *proxy = ctx;
	/* the session may be gone by now: find it by id */
	struct registry_entry *e = registry_find(&proxy->registry, id);
	if (e == NULL)
		return;
	struct session *s = CONTAINER_OF(e, struct session, reg);
	s->auth_req = NULL; /* done: the handle is no longer ours */
	BENCH_MARK(&s->bench, BENCH_AUTH_DONE);
	if (s->state != SESSION_AUTH)
		return;
	switch (r->status) {
	case AUTH_STATUS_OK:
		if (s->master_user != NULL && !s->master_checked) {
			/* the master's password was right: now the user */
			s->master_checked = true;
			session_log(s, LOG_LEVEL_DEBUG, "master user %s logs in as %s",
				    s->master_user, s->auth_user);
			session_auth_lookup(s);
			return;
		}
		session_route(s, r);
		break;
	case AUTH_STATUS_FAILED:
		session_penalise(s);
		session_login_failed(s, PROXY_LOGIN_AUTH_FAILED, FRONT_AUTH_FAILED, NULL,
				     r->error);
		break;
	case AUTH_STATUS_NOLOGIN:
		session_login_failed(s, PROXY_LOGIN_AUTH_FAILED, FRONT_AUTH_FAILED_REASON,
				     r->reason != NULL ? r->reason : "Login disabled.",
				     "nologin");
		break;
	case AUTH_STATUS_TEMPFAIL:
		/* a full queue is load, not a fault: the login line says it */
		if (!r->busy)
			session_log(s, LOG_LEVEL_ERROR, "auth failed: %s", r->error);
		/* the client gets the generic text; the reason is logged */
		session_login_failed(s, r->busy ? PROXY_LOGIN_LIMIT : PROXY_LOGIN_ERROR,
				     FRONT_AUTH_TEMPFAIL, NULL, r->error);
		break;
	}
	session_settle(s);
}

void session_auth_lookup(struct session *s)
{
	bool master = s->master_user != NULL && !s->master_checked;
	/* a master login: the master and its password, then the user alone */
	const struct auth_request_params params = {
		.user = master ? s->master_user : s->auth_user,
		.password = s->master_user != NULL && !master ? NULL : s->password,
		.callback = session_auth_done, .ctx = s->proxy, .cookie = s->reg.id,
		.client_ip = &s->reg.client_ip, .master = master,
	};
	s->auth_start = 0;
	s->auth_req = auth_request_start(s->proxy->auth, &params);
}

/* A master user's login, as Dovecot's: SASL PLAIN with an authzid other
 * than the authcid (the authcid is the master), or, with
 * auth.master_user_separator, a name "user*master". Sets auth_user and
 * master_user; -1 for an empty part. */
static int session_take_master(struct session *s, const struct sasl_credentials *c)
{
	const char *sep = s->cfg->auth.master_user_separator, *p;
	if (c->authzid[0] != '\0' && strcmp(c->authzid, c->authcid) != 0) {
		s->auth_user = xstrdup(c->authzid);
		s->master_user = xstrdup(c->authcid);
	} else if (sep[0] != '\0' && (p = strchr(c->authcid, sep[0])) != NULL) {
		s->auth_user = xstrndup(c->authcid, (size_t)(p - c->authcid));
		s->master_user = xstrdup(p + 1);
	} else {
		return 0;
	}
	return s->auth_user[0] == '\0' || s->master_user[0] == '\0' ? -1 : 0;
}

void session_start_auth(struct session *s)
{
	struct front *f = s->front;
	const struct sasl_credentials *c = &f->login.creds;
	bool passthrough = f->login.mech != NULL && sasl_mech_is_passthrough(f->login.mech);

	BENCH_MARK(&s->bench, BENCH_LOGIN_READ);
	/* a pass-through message's authorization identity is for the
	 * backend to judge: no master login is read from it */
	if (!passthrough && session_take_master(s, c) < 0) {
		session_login_failed(s, PROXY_LOGIN_AUTH_FAILED, FRONT_AUTH_FAILED, NULL,
				     "an empty user or master user name");
		return;
	}
	/* from here on the client is who a trusted proxy says it is */
	if (f->forward.have_ip) {
		s->reg.client_ip = f->forward.ip;
		s->reg.client_port = f->forward.port;
	}
	s->use_sasl = f->login.mech != NULL;
	if (passthrough) {
		/* taken over: front_login_clear() below wipes the rest */
		s->passthrough_mech = sasl_mech_name(f->login.mech);
		s->sasl_message = f->login.creds.message;
		f->login.creds.message = NULL;
	} else {
		s->password = xstrdup(c->password);
	}
	if (s->auth_user == NULL)
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
