/* Authentication of a login: normalise the name (auth.username_format),
 * ask the passdbs in order, verify the password in a worker thread, and
 * report the verdict with the passdb's extra fields. The callback always
 * runs later on the loop thread, never from inside auth_request_start().
 * It gets a context that must outlive the auth object (the proxy) and the
 * caller's cookie (a session id), never a pointer to a session. A caller
 * that goes away first aborts its request with auth_request_abort(), so
 * that no worker spends time on a login nobody waits for. */
#ifndef LOFT_AUTH_AUTH_H
#define LOFT_AUTH_AUTH_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "common/log.h"
#include "conf/config.h"

struct event_base;
struct auth;
struct auth_request;
struct penalty;

enum auth_status {
	AUTH_STATUS_OK,
	AUTH_STATUS_FAILED,	/* unknown user or wrong password */
	AUTH_STATUS_NOLOGIN,	/* right password, but the account may not log in */
	AUTH_STATUS_TEMPFAIL,	/* the passdb could not answer */
};

struct auth_alt_user {
	char *field;		/* "user_group" */
	char *value;
};

struct auth_result {
	enum auth_status status;
	char *user;		/* the name the passdb knows */
	char *reason;		/* nologin "reason" for the client, or NULL */
	const char *error;	/* for the log */
	/* passdb extra fields (§10.1) */
	char *host;		/* route here instead of asking the director */
	uint16_t port;
	char *destuser;		/* login name at the backend */
	char *director_tag;
	struct auth_alt_user *alt;
	size_t alt_count;
	bool password_unchecked; /* nobody checked it: the backend must */
	bool busy;		/* TEMPFAIL because auth.max_queue was reached */
	uint32_t tag;		/* the request's params.tag, given back */
};

typedef void auth_callback(void *ctx, uint64_t cookie,
			   const struct auth_result *result);

/* What the passdbs have to say on their own, outside any lookup (a users
 * file reloaded, or one that failed to): the caller logs it. Runs on the
 * loop thread. */
typedef void auth_notice_cb(void *ctx, enum log_level level, const char *text);

/* Keeps a reference to cfg (its passdb settings) until auth_free(). */
struct auth *auth_new(struct config *cfg, struct event_base *base,
		      char **error_r);
/* Lookups still in flight get their callback before this returns
 * (TEMPFAIL if no worker verified them); aborted ones do not. */
void auth_free(struct auth **auth);
/* Where notices go (without a callback they are dropped). */
void auth_set_notice_callback(struct auth *auth, auth_notice_cb *cb, void *ctx);
/* The penalty that the failures of aborted requests raise (NULL: none);
 * it must outlive auth or be replaced first. */
void auth_set_penalty(struct auth *auth, struct penalty *penalty);
/* The settings auth takes from a reloaded configuration (auth.max_queue,
 * auth.cache: a size of 0 drops the cache, a smaller one evicts); the
 * others stay as auth_new() found them. */
void auth_apply_config(struct auth *auth, const struct config *cfg);

struct auth_cache_stats;
/* Forgets the cached answers for users (names normalised as a login's
 * are), or every one when count is 0 (`loftadm auth cache flush`).
 * Returns how many entries went; 0 without a cache. */
size_t auth_flush_cache(struct auth *auth, const char *const *users, size_t count);
/* The cache's counters (auth_cache.h); zeros without a cache. */
void auth_get_cache_stats(const struct auth *auth, struct auth_cache_stats *stats_r);

struct auth_request_params {
	const char *user;	/* as the client gave it */
	const char *password;	/* NULL: only a user lookup, nothing checked */
	auth_callback *callback;
	void *ctx;
	uint64_t cookie;
	/* given back in the result: which of a caller's requests under one
	 * cookie this is (an LMTP session's recipients) */
	uint32_t tag;
	/* where a wrong password counts if the caller aborts before the
	 * verdict (auth_set_penalty()); NULL: nowhere */
	const struct ipaddr *client_ip;
	/* a master user's login (user*master, SASL PLAIN's authzid): only
	 * the passdbs with master = true are asked, which no other request
	 * asks */
	bool master;
};

/* Starts a lookup. The handle is the caller's until its callback has
 * returned or it called auth_request_abort(), whichever comes first.
 * When auth.max_queue jobs already wait for or hold a worker (or an
 * LDAP passdb's thread), a request that needs one fails at once with
 * AUTH_STATUS_TEMPFAIL and `busy`. */
struct auth_request *auth_request_start(struct auth *auth,
					const struct auth_request_params *params);
/* The caller goes away (Dovecot's auth_request_abort): its callback will
 * not run. A request still waiting for a worker (or for a passdb's
 * thread) leaves the queue unverified; one whose passdb lookup is under
 * way asks no further passdb; one being verified runs to its end and
 * its verdict is dropped, except that a wrong password (or a failed
 * LDAP auth_bind) still raises the client address's penalty: leaving
 * before the verdict does not dodge it.
 * NULLs *req; a NULL request is fine. */
void auth_request_abort(struct auth *auth, struct auth_request **req);

/* Runs the callbacks of the requests completed at once now, rather than
 * from the deferred event at the end of the loop's turn, behind every
 * other ready descriptor. For the caller of auth_request_start() once
 * its own event callback is done with its objects: a callback still
 * never runs inside auth_request_start(). */
void auth_run_completed(struct auth *auth);

/* auth_request_start() without a handle or client address. */
void auth_lookup(struct auth *auth, const char *user, const char *password,
		 auth_callback *callback, void *ctx, uint64_t cookie);
/* Only whether the user exists, and its extra fields: no password is
 * checked (LMTP recipients). Same callback rules. */
void auth_lookup_user(struct auth *auth, const char *user, auth_callback *callback,
		      void *ctx, uint64_t cookie);

/* Exposed for the passdb drivers. */
void auth_result_clear(struct auth_result *result);

#endif
