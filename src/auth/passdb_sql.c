/* passdb driver "sql": users in an SQL database, as Dovecot's sql passdb.
 * password_query is turned into a parameterised query once (the user
 * name is bound, never pasted into the SQL, common/sqltemplate.h); the
 * one row it returns gives the passdb fields, each column by its name.
 * `connect` picks the engine: a libpq connection string for PostgreSQL
 * (asynchronous on the loop), "sqlite:<path>" for an SQLite file (read
 * in the auth workers). */
#include "auth/passdb_sql.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/xmalloc.h"

#define SQLDB_SQLITE_PREFIX "sqlite:"

void sqldb_result_columns(struct sqldb_result *r, size_t count)
{
	r->columns = count;
	r->names = xcalloc(count, sizeof(*r->names));
	r->values = xcalloc(count, sizeof(*r->values));
}

void sqldb_result_fail(struct sqldb_result *r, const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(r->error, sizeof(r->error), fmt, ap);
	va_end(ap);
	/* the first line: libpq's messages go on with the query's text */
	r->error[strcspn(r->error, "\n")] = '\0';
	r->failed = true;
}

void sqldb_result_clear(struct sqldb_result *r)
{
	for (size_t i = 0; i < r->columns; i++) {
		free(r->names[i]);
		xfree_secret(&r->values[i]);
	}
	free(r->names);
	free(r->values);
	memset(r, 0, sizeof(*r));
}

void sqldb_result_answer(struct passdb_lookup *lookup, struct sqldb_result *r)
{
	if (r->failed)
		passdb_lookup_done(lookup, PASSDB_ERROR, NULL, r->error);
	else if (r->rows == 0)
		passdb_lookup_done(lookup, PASSDB_NOT_FOUND, NULL, NULL);
	else if (r->rows > 1)
		passdb_lookup_done(lookup, PASSDB_ERROR, NULL,
				   "password_query returned more than one row");
	else
		passdb_lookup_done_record(lookup, (const char *const *)r->names,
					  r->values, r->columns, false);
}

static int sqldb_init(struct passdb *db, char **error_r)
{
	const char *connect = db->set->connect;
	size_t prefix = strlen(SQLDB_SQLITE_PREFIX);
	bool sqlite = strncmp(connect, SQLDB_SQLITE_PREFIX, prefix) == 0;
	const struct sqldb_engine *engine = sqlite ? &sqldb_sqlite : &sqldb_pg;
	struct sql_template query;

	if (sql_template_parse(&query, db->set->password_query, sqlite ?
			       SQL_PARAMS_QUESTION : SQL_PARAMS_DOLLAR, error_r) < 0)
		return -1;
	if (engine->init(db, sqlite ? connect + prefix : connect, &query, error_r) < 0) {
		sql_template_free(&query);
		return -1;
	}
	struct sqldb *sql = db->ctx;
	sql->engine = engine;
	sql->query = query;
	return 0;
}

static void sqldb_deinit(struct passdb *db)
{
	struct sqldb *sql = db->ctx;
	struct sql_template query = sql->query;
	sql->engine->deinit(db);
	sql_template_free(&query);
}

static void sqldb_lookup(struct passdb_lookup *lookup)
{
	const struct sqldb *sql = lookup->db->ctx;
	sql->engine->lookup(lookup);
}

static bool sqldb_cancel(struct passdb_lookup *lookup)
{
	const struct sqldb *sql = lookup->db->ctx;
	return sql->engine->cancel(lookup);
}

const struct passdb_driver passdb_sql = {
	.name = "sql",
	.init = sqldb_init,
	.deinit = sqldb_deinit,
	.lookup = sqldb_lookup,
	.cancel = sqldb_cancel,
};
