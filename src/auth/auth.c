/* The authentication flow. Passdbs are tried in order until one accepts
 * the user (Dovecot's default result_failure=continue): a user unknown to
 * a passdb or with a password it rejects goes on to the next one.
 * Verification runs in the worker pool; results that need no verifying
 * are completed through a deferred event (or auth_run_completed(), if
 * the caller asks sooner), so the caller's callback never runs inside
 * auth_request_start().
 *
 * The queue is bounded (auth.max_queue): a request that would wait
 * beyond it fails at once with a temporary failure, so a flood of logins
 * cannot build up minutes of hashing. A caller that goes away aborts its
 * request (Dovecot's auth_request_abort): still queued, it leaves the
 * queue unverified; being verified, it finishes and only a failure is
 * kept, as a penalty for the client's address.
 *
 * With auth.cache (auth_cache.h), a login first asks the cache: a fresh
 * entry whose password matches, or a fresh negative one, answers without
 * any passdb; otherwise the passdbs answer and their verdict is cached
 * (a success with the password's hash; "unknown" when every passdb said
 * so, not when one found the password wrong). When a passdb cannot
 * answer, the user's entry is served even if expired; without one the
 * login fails temporarily, which raises no penalty. */
#include "auth/auth.h"

#include <event2/event.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "auth/auth_cache.h"
#include "auth/passdb.h"
#include "auth/password.h"
#include "auth/penalty.h"
#include "auth/worker.h"
#include "common/clock.h"
#include "common/log.h"
#include "common/sbuf.h"
#include "common/varexpand.h"
#include "common/xmalloc.h"

struct auth_request {
	struct worker_job base;
	struct auth *auth;
	struct list_node deferred_node;
	uint64_t cookie;
	uint32_t tag;
	auth_callback *callback;
	void *ctx;
	size_t passdb_idx;
	struct passdb_lookup lookup;
	bool looking_up;	/* a passdb's answer is due */
	bool aborted;		/* the caller went away: no callback */
	bool has_client_ip;	/* a failure after an abort counts there */
	bool master;		/* only master passdbs; else none of them */
	bool from_cache;	/* answered by the cache: nothing to add to it */
	bool mismatch;		/* a passdb knew the user: not "unknown" */
	struct ipaddr client_ip;
	char *login_user;	/* the name as given, for the penalty */
	char *password;		/* wiped when freed */
	char *stored;		/* the hash being verified */
	const char *scheme;
	int verdict;		/* password_verify()'s result */
	const char *verify_error;
	struct auth_result result;
	char error[256];	/* result.error, when composed here */
	char name[];		/* the normalised name: the cache's key */
};

struct auth {
	struct config *cfg;	/* a reference: the passdbs point into it */
	struct passdb *passdbs;
	size_t passdbs_count;
	struct worker_pool *pool;
	char *username_format;
	struct event *deferred_ev;
	struct list deferred;	/* completed jobs whose callbacks are due */
	auth_notice_cb *notice_cb;
	void *notice_ctx;
	struct penalty *penalty;	/* for failures after an abort; NULL: none */
	unsigned int max_queue;		/* jobs waiting or being verified */
	struct auth_cache *cache;	/* NULL: auth.cache.size is 0 */
	bool closing;		/* auth_free(): no new lookups or jobs */
};

/* auth.max_queue's default: per worker thread */
#define AUTH_QUEUE_PER_WORKER 16

void auth_set_notice_callback(struct auth *auth, auth_notice_cb *cb, void *ctx)
{
	auth->notice_cb = cb;
	auth->notice_ctx = ctx;
}

void auth_notice(struct auth *auth, enum log_level level, const char *fmt, ...)
{
	if (auth->notice_cb == NULL)
		return;
	char text[1024];
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(text, sizeof(text), fmt, ap);
	va_end(ap);
	auth->notice_cb(auth->notice_ctx, level, text);
}

void auth_result_clear(struct auth_result *r)
{
	free(r->user);
	free(r->reason);
	free(r->host);
	free(r->destuser);
	free(r->director_tag);
	for (size_t i = 0; i < r->alt_count; i++) {
		free(r->alt[i].field);
		free(r->alt[i].value);
	}
	free(r->alt);
	memset(r, 0, sizeof(*r));
}

static void auth_request_free(struct auth_request *req)
{
	free(req->login_user);
	xfree_secret(&req->password);
	xfree_secret(&req->stored);
	auth_result_clear(&req->result);
	free(req);
}

/* The verdict of a request whose caller went away: a failure still
 * counts against the client's address, whatever its caller did next. */
static void auth_request_abandoned(struct auth_request *req)
{
	struct auth *auth = req->auth;
	bool penalise = req->result.status == AUTH_STATUS_FAILED &&
		req->has_client_ip && req->password != NULL && auth->penalty != NULL;
	if (penalise)
		penalty_failure(auth->penalty, &req->client_ip, req->login_user,
				req->password, time(NULL));
	auth_notice(auth, LOG_LEVEL_DEBUG, "auth: verification of %s finished after "
		    "its client left: verdict dropped%s", req->result.user,
		    penalise ? ", failure penalty raised" : "");
}

/* Remembers what the passdbs answered a login: a success (or nologin)
 * with its password, or that nobody knows the user. */
static void auth_request_cache_verdict(struct auth_request *req)
{
	struct auth_cache *cache = req->auth->cache;
	enum auth_status status = req->result.status;

	/* a master's check is no login of a user of that name: never kept */
	if (cache == NULL || req->from_cache || req->master)
		return;
	if ((status == AUTH_STATUS_OK || status == AUTH_STATUS_NOLOGIN) &&
	    req->password != NULL)
		auth_cache_add(cache, req->name, req->password, &req->result,
			       clock_monotonic_ms());
	else if (status == AUTH_STATUS_FAILED && !req->mismatch)
		auth_cache_add_negative(cache, req->name, clock_monotonic_ms());
}

static void auth_request_finish(struct auth_request *req)
{
	auth_request_cache_verdict(req);
	if (req->aborted)
		auth_request_abandoned(req);
	else {
		req->result.tag = req->tag;
		req->callback(req->ctx, req->cookie, &req->result);
	}
	auth_request_free(req);
}

static void auth_deferred_run(evutil_socket_t fd, short what, void *arg)
{
	struct auth *auth = arg;
	struct list_node *n;
	(void)fd;
	(void)what;

	while ((n = list_pop_head(&auth->deferred)) != NULL)
		auth_request_finish(CONTAINER_OF(n, struct auth_request, deferred_node));
}

void auth_run_completed(struct auth *auth)
{
	auth_deferred_run(-1, 0, auth);
}

static void auth_request_defer(struct auth_request *req)
{
	list_append(&req->auth->deferred, &req->deferred_node);
	event_active(req->auth->deferred_ev, EV_TIMEOUT, 0);
}

/* Forgets a previous passdb's fields; the normalised name stays. */
static void auth_request_reset_result(struct auth_request *req)
{
	char *user = req->result.user;
	req->result.user = NULL;
	auth_result_clear(&req->result);
	req->result.user = user;
}

static void auth_request_fail(struct auth_request *req, enum auth_status status,
			  const char *error)
{
	auth_request_reset_result(req);
	req->result.status = status;
	req->result.error = error;
}

static void auth_request_work(struct worker_job *wjob)
{
	struct auth_request *req = (struct auth_request *)wjob;
	req->verdict = password_verify(req->password, req->stored, req->scheme,
				       &req->verify_error);
}

static void auth_request_step(struct auth_request *req);

static void auth_request_verified(struct worker_job *wjob)
{
	struct auth_request *req = (struct auth_request *)wjob;

	if (req->base.work == NULL) {
		/* never verified (shutting down): no verdict to keep */
		if (req->aborted) {
			auth_request_free(req);
			return;
		}
		auth_request_fail(req, AUTH_STATUS_TEMPFAIL, "shutting down");
		auth_request_finish(req);
		return;
	}
	xfree_secret(&req->stored);
	if (req->verdict > 0) {
		auth_request_finish(req);
		return;
	}
	if (req->verdict < 0) {
		/* the caller logs it: a broken hash in the passdb */
		snprintf(req->error, sizeof(req->error),
			 "passdb %s: cannot verify the password of %s: %s",
			 req->auth->passdbs[req->passdb_idx].driver->name,
			 req->result.user, req->verify_error);
		auth_request_fail(req, AUTH_STATUS_TEMPFAIL, req->error);
		auth_request_finish(req);
		return;
	}
	req->mismatch = true;
	req->passdb_idx++;
	auth_request_step(req);
}

/* Asks the passdb at req->passdb_idx; its answer comes through
 * passdb_lookup_done(), at once or later. */
static void auth_request_step(struct auth_request *req)
{
	struct auth *auth = req->auth;

	while (req->passdb_idx < auth->passdbs_count &&
	       auth->passdbs[req->passdb_idx].set->master != req->master)
		req->passdb_idx++;
	if (req->passdb_idx >= auth->passdbs_count) {
		auth_request_fail(req, AUTH_STATUS_FAILED, req->mismatch ?
				  "wrong password" : "unknown user");
		auth_request_defer(req);
		return;
	}
	if (auth->closing) {
		auth_request_fail(req, AUTH_STATUS_TEMPFAIL, "shutting down");
		auth_request_defer(req);
		return;
	}
	struct passdb *db = &auth->passdbs[req->passdb_idx];
	auth_request_reset_result(req);
	req->lookup = (struct passdb_lookup){
		.db = db, .user = req->result.user, .password = req->password,
		.result = &req->result,
	};
	req->looking_up = true;
	db->driver->lookup(&req->lookup);
}

/* The user's cache entry answers the request (a fresh one only unless
 * expired_ok): true if one did. A master's check never asks the cache. */
static bool auth_request_from_cache(struct auth_request *req, bool expired_ok)
{
	if (req->auth->cache == NULL || req->master)
		return false;
	switch (auth_cache_lookup(req->auth->cache, req->name, req->password,
				  clock_monotonic_ms(), expired_ok, &req->result)) {
	case AUTH_CACHE_MISS:
		return false;
	case AUTH_CACHE_HIT:
		break;
	case AUTH_CACHE_NEGATIVE:
		auth_request_fail(req, AUTH_STATUS_FAILED, "unknown user (cached)");
		break;
	}
	req->from_cache = true;
	auth_request_defer(req);
	return true;
}

/* The passdb failed (req->error says how): the user's cache entry, even
 * an expired one, answers instead, as Dovecot's does. true if it did. */
static bool auth_request_from_expired(struct auth_request *req)
{
	if (!auth_request_from_cache(req, true))
		return false;
	auth_notice(req->auth, LOG_LEVEL_WARNING, "auth: %s: %s: answered from the auth cache",
		    req->name, req->error);
	return true;
}

/* A passdb's answer: the next passdb, a verdict, or a worker job. */
void passdb_lookup_done(struct passdb_lookup *lookup, enum passdb_result res,
			char *stored, const char *error)
{
	struct auth_request *req = CONTAINER_OF(lookup, struct auth_request, lookup);
	struct auth *auth = req->auth;

	req->looking_up = false;
	if (req->aborted) {
		/* nobody waits: no later passdb, no verification; a password
		 * the driver found wrong still counts (the penalty) */
		free(stored);
		if (res == PASSDB_MISMATCH) {
			auth_request_fail(req, AUTH_STATUS_FAILED, "wrong password");
			auth_request_finish(req);
		} else {
			auth_request_free(req);
		}
		return;
	}
	switch (res) {
	case PASSDB_NOT_FOUND:
	case PASSDB_MISMATCH:
		free(stored);
		if (res == PASSDB_MISMATCH)
			req->mismatch = true;
		req->passdb_idx++;
		auth_request_step(req);
		return;
	case PASSDB_ERROR:
	case PASSDB_BUSY:
		free(stored);
		snprintf(req->error, sizeof(req->error), "passdb %s: %s",
			 lookup->db->driver->name, error);
		if (auth_request_from_expired(req))
			return;
		auth_request_fail(req, AUTH_STATUS_TEMPFAIL, req->error);
		req->result.busy = res == PASSDB_BUSY;
		auth_request_defer(req);
		return;
	case PASSDB_FOUND:
		break;
	}
	if (stored == NULL || req->password == NULL) {
		/* nothing to verify, or a lookup that checks none */
		free(stored);
		auth_request_defer(req);
		return;
	}
	if (auth->closing) {
		free(stored);
		auth_request_fail(req, AUTH_STATUS_TEMPFAIL, "shutting down");
		auth_request_defer(req);
		return;
	}
	if (worker_pool_pending(auth->pool) >= auth->max_queue) {
		free(stored);
		snprintf(req->error, sizeof(req->error),
			 "auth queue full (auth.max_queue = %u)", auth->max_queue);
		auth_request_fail(req, AUTH_STATUS_TEMPFAIL, req->error);
		req->result.busy = true;
		auth_request_defer(req);
		return;
	}
	req->stored = stored;
	req->scheme = lookup->db->set->scheme;
	req->base.work = auth_request_work;
	req->base.done = auth_request_verified;
	worker_pool_submit(auth->pool, &req->base);
}

struct auth_request *auth_request_start(struct auth *auth,
					const struct auth_request_params *params)
{
	struct sbuf name = SBUF_INIT;
	varexpand_user(&name, auth->username_format, params->user);
	size_t name_len = sbuf_len(&name);
	struct auth_request *req = xcalloc(1, sizeof(*req) + name_len + 1);

	memcpy(req->name, sbuf_cstr(&name), name_len + 1);
	sbuf_free(&name);
	req->auth = auth;
	req->cookie = params->cookie;
	req->tag = params->tag;
	req->callback = params->callback;
	req->ctx = params->ctx;
	if (params->client_ip != NULL) {
		req->has_client_ip = true;
		req->client_ip = *params->client_ip;
		req->login_user = xstrdup(params->user);
	}
	req->password = params->password == NULL ? NULL : xstrdup(params->password);
	req->master = params->master;
	req->result.user = xstrdup(req->name);
	/* a fresh cache entry answers without any passdb */
	if (auth_request_from_cache(req, false))
		return req;
	auth_request_step(req);
	return req;
}

void auth_request_abort(struct auth *auth, struct auth_request **reqp)
{
	struct auth_request *req = *reqp;
	if (req == NULL)
		return;
	*reqp = NULL;
	if (req->looking_up) {
		const struct passdb_driver *driver = req->lookup.db->driver;
		if (driver->cancel != NULL && driver->cancel(&req->lookup)) {
			auth_notice(auth, LOG_LEVEL_DEBUG, "auth: %s: passdb lookup "
				    "cancelled, the client left", req->result.user);
			auth_request_free(req);
			return;
		}
		/* its answer comes and finds the request aborted */
		req->aborted = true;
		return;
	}
	if (worker_pool_cancel(auth->pool, &req->base)) {
		/* no thread started it: no verdict, no cost */
		auth_notice(auth, LOG_LEVEL_DEBUG, "auth: %s: verification cancelled, "
			    "the client left", req->result.user);
		auth_request_free(req);
		return;
	}
	/* being verified, or its result is due on the deferred list */
	req->aborted = true;
}

void auth_lookup(struct auth *auth, const char *user, const char *password,
		 auth_callback *callback, void *ctx, uint64_t cookie)
{
	const struct auth_request_params params = {
		.user = user, .password = password,
		.callback = callback, .ctx = ctx, .cookie = cookie,
	};
	(void)auth_request_start(auth, &params);
}

void auth_lookup_user(struct auth *auth, const char *user, auth_callback *callback,
		      void *ctx, uint64_t cookie)
{
	auth_lookup(auth, user, NULL, callback, ctx, cookie);
}

void auth_set_penalty(struct auth *auth, struct penalty *penalty)
{
	auth->penalty = penalty;
}

unsigned int auth_max_queue(const struct auth *auth)
{
	return auth->max_queue;
}

void auth_apply_config(struct auth *auth, const struct config *cfg)
{
	auth->max_queue = cfg->auth.max_queue != 0 ? cfg->auth.max_queue :
		AUTH_QUEUE_PER_WORKER * auth->cfg->auth.workers;
	const struct auth_cache_settings set = {
		.size = cfg->auth.cache.size, .ttl_ms = cfg->auth.cache.ttl_ms,
		.negative_ttl_ms = cfg->auth.cache.negative_ttl_ms,
	};
	if (set.size == 0)
		auth_cache_free(&auth->cache);
	else if (auth->cache == NULL)
		auth->cache = auth_cache_new(&set);
	else
		auth_cache_set_settings(auth->cache, &set);
}

size_t auth_flush_cache(struct auth *auth, const char *const *users, size_t count)
{
	if (auth->cache == NULL)
		return 0;
	if (count == 0)
		return auth_cache_flush_all(auth->cache);
	size_t flushed = 0;
	struct sbuf name = SBUF_INIT;
	for (size_t i = 0; i < count; i++) {
		/* the names as a login gives them: normalised the same way */
		sbuf_reset(&name);
		varexpand_user(&name, auth->username_format, users[i]);
		flushed += auth_cache_flush_user(auth->cache, sbuf_cstr(&name));
	}
	sbuf_free(&name);
	return flushed;
}

void auth_get_cache_stats(const struct auth *auth, struct auth_cache_stats *stats_r)
{
	if (auth->cache == NULL)
		memset(stats_r, 0, sizeof(*stats_r));
	else
		auth_cache_get_stats(auth->cache, stats_r);
}

struct auth *auth_new(struct config *cfg, struct event_base *base,
		      char **error_r)
{
	struct auth *auth = xcalloc(1, sizeof(*auth));

	if (password_init() < 0) {
		*error_r = xstrdup("libsodium initialisation failed");
		free(auth);
		return NULL;
	}
	auth->cfg = config_ref(cfg);
	auth->username_format = xstrdup(cfg->auth.username_format);
	auth->deferred_ev = event_new(base, -1, 0, auth_deferred_run, auth);
	auth->pool = worker_pool_new(base, cfg->auth.workers);
	auth_apply_config(auth, cfg);
	auth->passdbs = xcalloc(cfg->passdbs_count, sizeof(*auth->passdbs));
	for (size_t i = 0; i < cfg->passdbs_count; i++) {
		struct passdb *db = &auth->passdbs[i];
		char *error;
		db->driver = passdb_driver_get(cfg->passdbs[i].driver);
		db->set = &cfg->passdbs[i];
		db->auth = auth;
		db->pool = auth->pool;
		db->base = base;
		if (db->driver->init(db, &error) < 0) {
			*error_r = xasprintf("%s: passdb %s: %s", cfg->passdbs[i].source,
					     db->driver->name, error);
			free(error);
			auth->passdbs_count = i;
			auth_free(&auth);
			return NULL;
		}
		auth->passdbs_count = i + 1;
	}
	return auth;
}

void auth_free(struct auth **authp)
{
	struct auth *auth = *authp;
	if (auth == NULL)
		return;
	/* verifications first (passwd-file reloads run in the same pool and
	 * must be over before its deinit), then the passdbs, whose lookups
	 * still in flight are answered and go no further */
	auth->closing = true;
	worker_pool_free(&auth->pool);
	for (size_t i = 0; i < auth->passdbs_count; i++)
		auth->passdbs[i].driver->deinit(&auth->passdbs[i]);
	if (auth->deferred_ev != NULL) {
		auth_deferred_run(-1, 0, auth);
		event_free(auth->deferred_ev);
	}
	free(auth->passdbs);
	auth_cache_free(&auth->cache);
	free(auth->username_format);
	config_unref(&auth->cfg);
	free(auth);
	*authp = NULL;
}
