/* Password databases: a driver table (passwd-file, backend). A lookup
 * runs on the loop thread and must be cheap (in memory); it fills the
 * result's fields and returns the stored password to verify, if any.
 * Slow work (reading a file) goes to the worker pool; what a driver has
 * to report outside a lookup goes through auth_notice(), never a log. */
#ifndef LOFT_AUTH_PASSDB_H
#define LOFT_AUTH_PASSDB_H

#include "auth/auth.h"
#include "conf/config.h"

enum passdb_result {
	PASSDB_FOUND,
	PASSDB_NOT_FOUND,
	PASSDB_ERROR,
};

struct worker_pool;

struct passdb {
	const struct passdb_driver *driver;
	const struct config_passdb *set;
	void *ctx;
	struct auth *auth;		/* for auth_notice() */
	struct worker_pool *pool;	/* for work off the loop */
};

struct passdb_driver {
	const char *name;
	int (*init)(struct passdb *db, char **error_r);
	void (*deinit)(struct passdb *db);
	/* On PASSDB_FOUND: *stored_r is an allocated "{SCHEME}data" (or
	 * NULL when no password is to be checked here). */
	enum passdb_result (*lookup)(struct passdb *db, const char *user,
				     struct auth_result *result, char **stored_r,
				     const char **error_r);
};

/* The driver for a configured passdb (indexed by enum conf_passdb_driver). */
const struct passdb_driver *passdb_driver_get(unsigned int driver);

/* For the drivers: a notice to the auth object's callback. */
void auth_notice(struct auth *auth, enum log_level level, const char *fmt, ...)
	ATTR_FORMAT(3, 4);

/* Applies passwd-file style extra fields to a result. */
void passdb_apply_field(struct auth_result *result, const char *key,
			const char *value);

#endif
