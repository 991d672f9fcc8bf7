/* SQL query templates (a passdb's password_query) turned, once at
 * configuration time, into a parameterised query: each %-variable (%u %n
 * %d and the L/U modifiers, see common/varexpand.h) becomes a query
 * parameter ($1 for PostgreSQL, ?1 for SQLite) whose value is bound per
 * lookup, so that no byte of a user name is ever part of the SQL text.
 *
 * Where a variable may stand:
 *   - in the SQL itself: "WHERE username = %u" -> "WHERE username = $1";
 *   - inside a plain '...' string, as Dovecot's templates write it:
 *     "'%u'" -> "$1", and "'%n@example.org'" ->
 *     "(CAST($1 AS TEXT) || '@example.org')".
 * Anywhere else (a "quoted identifier", an E'' or other prefixed string,
 * a $$dollar-quoted$$ string, a comment) a variable is refused, as is a
 * $N parameter of the template's own. "%%" is a '%' everywhere. The same
 * variable with the same modifier is one parameter however often it is
 * used. Pure; the parsed template is read-only and may be shared by
 * threads. */
#ifndef LOFT_COMMON_SQLTEMPLATE_H
#define LOFT_COMMON_SQLTEMPLATE_H

#include <stddef.h>

#include "common/varexpand.h"

enum sql_param_style {
	SQL_PARAMS_DOLLAR,	/* $1, $2 ... (PostgreSQL) */
	SQL_PARAMS_QUESTION,	/* ?1, ?2 ... (SQLite) */
};

struct sql_template {
	char *query;			/* the parameterised SQL */
	struct varexpand_token *params;	/* params[i] is parameter i + 1 */
	size_t params_count;
};

/* 0, or -1 with an allocated message saying what and where (t is then
 * empty). */
int sql_template_parse(struct sql_template *t, const char *tmpl,
		       enum sql_param_style style, char **error_r);
void sql_template_free(struct sql_template *t);

/* The parameters' values for user: params_count allocated strings, freed
 * with sql_template_values_free(). */
char **sql_template_values(const struct sql_template *t, const char *user);
void sql_template_values_free(const struct sql_template *t, char ***values);

#endif
