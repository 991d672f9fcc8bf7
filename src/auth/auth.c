/* The authentication flow. Passdbs are tried in order until one accepts
 * the user (Dovecot's default result_failure=continue): a user unknown to
 * a passdb or with a password it rejects goes on to the next one.
 * Verification runs in the worker pool; results that need no verifying
 * are completed through a deferred event, so the caller's callback never
 * runs inside auth_lookup(). */
#include "auth/auth.h"

#include <event2/event.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "auth/passdb.h"
#include "auth/password.h"
#include "auth/worker.h"
#include "common/log.h"
#include "common/sbuf.h"
#include "common/varexpand.h"
#include "common/xmalloc.h"

struct auth_job {
	struct worker_job base;
	struct auth *auth;
	struct list_node deferred_node;
	uint64_t cookie;
	auth_callback *callback;
	void *ctx;
	size_t passdb_idx;
	char *password;		/* wiped when freed */
	char *stored;		/* the hash being verified */
	const char *scheme;
	int verdict;		/* password_verify()'s result */
	const char *verify_error;
	struct auth_result result;
	char error[256];	/* result.error, when composed here */
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
};

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

static void auth_job_free(struct auth_job *job)
{
	xfree_secret(&job->password);
	xfree_secret(&job->stored);
	auth_result_clear(&job->result);
	free(job);
}

static void auth_job_finish(struct auth_job *job)
{
	job->callback(job->ctx, job->cookie, &job->result);
	auth_job_free(job);
}

static void auth_deferred_run(evutil_socket_t fd, short what, void *arg)
{
	struct auth *auth = arg;
	struct list_node *n;
	(void)fd;
	(void)what;

	while ((n = list_pop_head(&auth->deferred)) != NULL)
		auth_job_finish(CONTAINER_OF(n, struct auth_job, deferred_node));
}

static void auth_job_defer(struct auth_job *job)
{
	list_append(&job->auth->deferred, &job->deferred_node);
	event_active(job->auth->deferred_ev, EV_TIMEOUT, 0);
}

/* Forgets a previous passdb's fields; the normalised name stays. */
static void auth_job_reset_result(struct auth_job *job)
{
	char *user = job->result.user;
	job->result.user = NULL;
	auth_result_clear(&job->result);
	job->result.user = user;
}

static void auth_job_fail(struct auth_job *job, enum auth_status status,
			  const char *error)
{
	auth_job_reset_result(job);
	job->result.status = status;
	job->result.error = error;
}

static void auth_job_work(struct worker_job *wjob)
{
	struct auth_job *job = (struct auth_job *)wjob;
	job->verdict = password_verify(job->password, job->stored, job->scheme,
				       &job->verify_error);
}

static void auth_job_step(struct auth_job *job);

static void auth_job_verified(struct worker_job *wjob)
{
	struct auth_job *job = (struct auth_job *)wjob;

	if (job->base.work == NULL) {
		auth_job_fail(job, AUTH_STATUS_TEMPFAIL, "shutting down");
		auth_job_finish(job);
		return;
	}
	xfree_secret(&job->stored);
	if (job->verdict > 0) {
		auth_job_finish(job);
		return;
	}
	if (job->verdict < 0) {
		/* the caller logs it: a broken hash in the passdb */
		snprintf(job->error, sizeof(job->error),
			 "passdb %s: cannot verify the password of %s: %s",
			 job->auth->passdbs[job->passdb_idx].driver->name,
			 job->result.user, job->verify_error);
		auth_job_fail(job, AUTH_STATUS_TEMPFAIL, job->error);
		auth_job_finish(job);
		return;
	}
	job->passdb_idx++;
	auth_job_step(job);
}

/* Asks passdbs from job->passdb_idx on; ends in a deferred completion or
 * a worker job. */
static void auth_job_step(struct auth_job *job)
{
	struct auth *auth = job->auth;

	for (; job->passdb_idx < auth->passdbs_count; job->passdb_idx++) {
		struct passdb *db = &auth->passdbs[job->passdb_idx];
		const char *error = NULL;
		char *stored = NULL;
		auth_job_reset_result(job);
		switch (db->driver->lookup(db, job->result.user, &job->result,
					   &stored, &error)) {
		case PASSDB_NOT_FOUND:
			continue;
		case PASSDB_ERROR:
			auth_job_fail(job, AUTH_STATUS_TEMPFAIL, error);
			auth_job_defer(job);
			return;
		case PASSDB_FOUND:
			break;
		}
		if (stored == NULL || job->password == NULL) {
			/* nothing to verify, or a lookup that checks none */
			free(stored);
			auth_job_defer(job);
			return;
		}
		job->stored = stored;
		job->scheme = db->set->scheme;
		job->base.work = auth_job_work;
		job->base.done = auth_job_verified;
		worker_pool_submit(auth->pool, &job->base);
		return;
	}
	auth_job_fail(job, AUTH_STATUS_FAILED, "unknown user or wrong password");
	auth_job_defer(job);
}

void auth_lookup(struct auth *auth, const char *user, const char *password,
		 auth_callback *callback, void *ctx, uint64_t cookie)
{
	struct auth_job *job = xcalloc(1, sizeof(*job));
	struct sbuf name = SBUF_INIT;

	job->auth = auth;
	job->cookie = cookie;
	job->callback = callback;
	job->ctx = ctx;
	job->password = password == NULL ? NULL : xstrdup(password);
	varexpand_user(&name, auth->username_format, user);
	job->result.user = xstrdup(sbuf_cstr(&name));
	sbuf_free(&name);
	auth_job_step(job);
}

void auth_lookup_user(struct auth *auth, const char *user, auth_callback *callback,
		      void *ctx, uint64_t cookie)
{
	auth_lookup(auth, user, NULL, callback, ctx, cookie);
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
	auth->passdbs = xcalloc(cfg->passdbs_count, sizeof(*auth->passdbs));
	for (size_t i = 0; i < cfg->passdbs_count; i++) {
		struct passdb *db = &auth->passdbs[i];
		char *error;
		db->driver = passdb_driver_get(cfg->passdbs[i].driver);
		db->set = &cfg->passdbs[i];
		db->auth = auth;
		db->pool = auth->pool;
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
	worker_pool_free(&auth->pool);
	if (auth->deferred_ev != NULL) {
		auth_deferred_run(-1, 0, auth);
		event_free(auth->deferred_ev);
	}
	for (size_t i = 0; i < auth->passdbs_count; i++)
		auth->passdbs[i].driver->deinit(&auth->passdbs[i]);
	free(auth->passdbs);
	free(auth->username_format);
	config_unref(&auth->cfg);
	free(auth);
	*authp = NULL;
}
