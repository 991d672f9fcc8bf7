/* SQL query templates (common/sqltemplate.c) from any text: parsing
 * never fails on memory, leaks or reads past the end; a template is
 * accepted for PostgreSQL exactly when it is for SQLite, with the same
 * parameters; and the values for a user name made of SQL are
 * that name (or a part of it, case-mapped), apart from the query. */
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "common/sqltemplate.h"
#include "common/xmalloc.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	char *tmpl = xstrndup((const char *)data, size);
	struct sql_template pg, lite;
	char *pg_error = NULL, *lite_error = NULL;
	int pg_ret = sql_template_parse(&pg, tmpl, SQL_PARAMS_DOLLAR, &pg_error);
	int lite_ret = sql_template_parse(&lite, tmpl, SQL_PARAMS_QUESTION, &lite_error);

	if (pg_ret != lite_ret)
		abort();
	if (pg_ret < 0) {
		if (pg_error == NULL || lite_error == NULL || pg.query != NULL)
			abort();
		free(pg_error);
		free(lite_error);
		free(tmpl);
		return 0;
	}
	if (pg.params_count == 0 || pg.params_count != lite.params_count ||
	    strlen(pg.query) != strlen(lite.query))
		abort();
	char **values = sql_template_values(&pg, "x'; DROP TABLE users; --@%u");
	for (size_t i = 0; i < pg.params_count; i++) {
		if (strstr("x'; DROP TABLE users; --@%u", values[i]) == NULL &&
		    strstr("x'; drop table users; --@%u", values[i]) == NULL &&
		    strstr("X'; DROP TABLE USERS; --@%U", values[i]) == NULL)
			abort();
	}
	sql_template_values_free(&pg, &values);
	sql_template_free(&pg);
	sql_template_free(&lite);
	free(tmpl);
	return 0;
}
