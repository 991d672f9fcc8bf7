/* passdb driver "backend": every user exists and the password is passed
 * to the backend, which decides (Dovecot's proxy=y nopassword=y). */
#include "auth/passdb.h"

static int backend_init(struct passdb *db, char **error_r)
{
	(void)db;
	(void)error_r;
	return 0;
}

static void backend_deinit(struct passdb *db)
{
	(void)db;
}

static enum passdb_result backend_lookup(struct passdb *db, const char *user,
					 struct auth_result *result, char **stored_r,
					 const char **error_r)
{
	(void)db;
	(void)user;
	(void)error_r;
	result->password_unchecked = true;
	*stored_r = NULL;
	return PASSDB_FOUND;
}

const struct passdb_driver passdb_backend = {
	.name = "backend",
	.init = backend_init,
	.deinit = backend_deinit,
	.lookup = backend_lookup,
};
