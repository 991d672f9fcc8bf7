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

static void backend_lookup(struct passdb_lookup *lookup)
{
	lookup->result->password_unchecked = true;
	passdb_lookup_done(lookup, PASSDB_FOUND, NULL, NULL);
}

const struct passdb_driver passdb_backend = {
	.name = "backend",
	.init = backend_init,
	.deinit = backend_deinit,
	.lookup = backend_lookup,
};
