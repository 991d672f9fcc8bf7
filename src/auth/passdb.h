/* Password databases: a driver table (passwd-file, backend, ldap). A
 * lookup is asynchronous: the driver answers through passdb_lookup_done()
 * on the loop thread, either at once from inside its lookup() (data in
 * memory: passwd-file, backend) or later (a database asked from the
 * driver's own threads: ldap), so that a slow database delays only the
 * logins waiting for it and never the loop. A driver fills the result's
 * fields on the loop thread only. Slow work goes to a worker pool; what a
 * driver has to report outside a lookup goes through auth_notice(), never
 * a log. */
#ifndef LOFT_AUTH_PASSDB_H
#define LOFT_AUTH_PASSDB_H

#include "auth/auth.h"
#include "conf/config.h"

enum passdb_result {
	PASSDB_FOUND,
	PASSDB_NOT_FOUND,
	/* the user exists, and the driver itself found the password wrong
	 * (ldap's auth_bind): the next passdb is asked, as for a mismatch */
	PASSDB_MISMATCH,
	PASSDB_ERROR,		/* the passdb could not answer: a temporary failure */
	PASSDB_BUSY,		/* its queue is full (auth.max_queue): the same, `busy` */
};

struct event_base;
struct worker_pool;

struct passdb {
	const struct passdb_driver *driver;
	const struct config_passdb *set;
	void *ctx;
	struct auth *auth;		/* for auth_notice() */
	struct worker_pool *pool;	/* for work off the loop */
	struct event_base *base;	/* for a driver's own threads or events */
};

/* One lookup, owned by auth; valid until the driver answered it or
 * cancel() took it back. */
struct passdb_lookup {
	struct passdb *db;
	const char *user;		/* normalised (auth.username_format) */
	const char *password;		/* NULL: a user lookup, nothing checked */
	struct auth_result *result;	/* fields to fill; loop thread only */
	void *job;			/* the driver's, while it is in flight */
};

struct passdb_driver {
	const char *name;
	int (*init)(struct passdb *db, char **error_r);
	/* Lookups still in flight are answered (PASSDB_ERROR) before this
	 * returns. */
	void (*deinit)(struct passdb *db);
	/* Answers exactly once through passdb_lookup_done(), now or later. */
	void (*lookup)(struct passdb_lookup *lookup);
	/* Optional, for drivers that answer later: takes back a lookup whose
	 * caller left. true: it is gone and no answer comes; false: it is
	 * under way and its answer still comes. */
	bool (*cancel)(struct passdb_lookup *lookup);
};

/* The driver's answer, on the loop thread. On PASSDB_FOUND, stored is an
 * allocated "{SCHEME}data" to verify (taken over), or NULL when nothing
 * is to be checked here (the driver checked it, or password_unchecked).
 * error (PASSDB_ERROR) is copied. The lookup is auth's again after this. */
void passdb_lookup_done(struct passdb_lookup *lookup, enum passdb_result res,
			char *stored, const char *error);

/* The driver for a configured passdb (indexed by enum conf_passdb_driver). */
const struct passdb_driver *passdb_driver_get(unsigned int driver);

/* For the drivers: a notice to the auth object's callback. */
void auth_notice(struct auth *auth, enum log_level level, const char *fmt, ...)
	ATTR_FORMAT(3, 4);
/* For the drivers: jobs a pool may hold (auth.max_queue) before a login
 * that needs one fails at once as busy. */
unsigned int auth_max_queue(const struct auth *auth);

/* Applies passwd-file style extra fields to a result. */
void passdb_apply_field(struct auth_result *result, const char *key,
			const char *value);

/* For drivers that read one record of named values (an LDAP entry's
 * mapped attributes, an SQL row's columns), on the loop thread: applies
 * it as Dovecot does and answers the lookup (PASSDB_FOUND). A NULL value
 * is an absent field; "user" renames the user, "nologin" refuses the
 * login (once the password is right), "password" is the one to verify
 * (taken out of values), the rest go through passdb_apply_field(). A
 * password to check that the record does not hold is PASSDB_MISMATCH.
 * checked: the driver checked the password itself (ldap's auth_bind),
 * none is read. */
void passdb_lookup_done_record(struct passdb_lookup *lookup, const char *const *names,
			       char **values, size_t count, bool checked);

#endif
