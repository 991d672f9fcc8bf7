/* What the SQL passdb's two engines share (passdb_sql.c): the parsed
 * query and the way a result answers a lookup. The engines are
 * PostgreSQL on the loop (passdb_sql_pg.c) and SQLite in the auth
 * workers (passdb_sql_sqlite.c). Private to src/auth. */
#ifndef LOFT_AUTH_PASSDB_SQL_H
#define LOFT_AUTH_PASSDB_SQL_H

#include <stdbool.h>
#include <stddef.h>

#include "auth/passdb.h"
#include "common/sqltemplate.h"

/* One engine: the passdb driver's calls. Its db->ctx starts with a
 * struct sqldb, which passdb_sql.c fills and frees. */
struct sqldb_engine {
	/* target: the connection string, or the SQLite file's path; query:
	 * what sqldb.query will hold, once init() has made db->ctx */
	int (*init)(struct passdb *db, const char *target,
		    const struct sql_template *query, char **error_r);
	void (*deinit)(struct passdb *db);
	void (*lookup)(struct passdb_lookup *lookup);
	bool (*cancel)(struct passdb_lookup *lookup);
};

struct sqldb {
	const struct sqldb_engine *engine;
	struct sql_template query;	/* read-only once made: threads share it */
};

extern const struct sqldb_engine sqldb_pg;
extern const struct sqldb_engine sqldb_sqlite;

/* What a query returned, built by an engine (on any thread). */
struct sqldb_result {
	bool failed;		/* error says why */
	size_t rows;		/* 0, 1, or 2 for "more than one" */
	size_t columns;		/* of the first row: */
	char **names;
	char **values;		/* NULL: SQL NULL, an absent field */
	char error[256];
};

/* Room for a row of count columns. */
void sqldb_result_columns(struct sqldb_result *r, size_t count);
void sqldb_result_fail(struct sqldb_result *r, const char *fmt, ...) ATTR_FORMAT(2, 3);
/* Answers the lookup with it (loop thread): no row is an unknown user,
 * more than one an error (as Dovecot), one row its columns as fields. */
void sqldb_result_answer(struct passdb_lookup *lookup, struct sqldb_result *r);
/* Frees what it holds (values wiped: one may be a password hash). */
void sqldb_result_clear(struct sqldb_result *r);

#endif
