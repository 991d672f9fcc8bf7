/* Unit tests for the SQL passdb: the query template rewriting (whole,
 * and its edge cases: %% escapes, unknown variables, variables in
 * strings, quoted identifiers and comments, parameters of the query's
 * own), the column -> field mapping against a real SQLite file, and the
 * PostgreSQL engine's asynchronous flow against a server that never
 * answers (a socket that listens and never accepts) or is not there:
 * the loop and the other passdbs go on meanwhile, the caller may leave,
 * the queue is bounded, and shutdown answers what is in flight. The
 * lookups against a real PostgreSQL are in
 * tests/integration/test_passdb_sql.py. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>
#include <cmocka.h>
#include <event2/event.h>
#include <sqlite3.h>

#include "auth/auth.h"
#include "common/sqltemplate.h"
#include "conf/config.h"

/* ---- the template --------------------------------------------------- */

struct template_case {
	const char *tmpl;
	const char *pg;		/* the PostgreSQL query */
	size_t params;
	const char *values;	/* for "Jane.Doe@Example.org", '|'-joined */
};

static const struct template_case template_cases[] = {
	{ "SELECT password FROM users WHERE username = %u",
	  "SELECT password FROM users WHERE username = $1", 1, "Jane.Doe@Example.org" },
	/* Dovecot's quoted form: the whole string is the parameter */
	{ "SELECT password FROM users WHERE username = '%n' AND domain = '%d'",
	  "SELECT password FROM users WHERE username = $1 AND domain = $2", 2,
	  "Jane.Doe|Example.org" },
	/* the same variable twice is one parameter; another modifier not */
	{ "SELECT 1 FROM u WHERE a = %u OR b = %{user} OR c = %Lu",
	  "SELECT 1 FROM u WHERE a = $1 OR b = $1 OR c = $2", 2,
	  "Jane.Doe@Example.org|jane.doe@example.org" },
	/* a variable with text around it in a string: a concatenation */
	{ "SELECT 1 FROM u WHERE mail = '%Ln@example.org'",
	  "SELECT 1 FROM u WHERE mail = (CAST($1 AS TEXT) || '@example.org')", 1, "jane.doe" },
	{ "SELECT 1 FROM u WHERE k = 'x''%n''y%%z'",
	  "SELECT 1 FROM u WHERE k = ('x''' || CAST($1 AS TEXT) || '''y%z')", 1, "Jane.Doe" },
	{ "SELECT 1 FROM u WHERE k = '%n%d'",
	  "SELECT 1 FROM u WHERE k = (CAST($1 AS TEXT) || CAST($2 AS TEXT))", 2,
	  "Jane.Doe|Example.org" },
	/* %% is a '%' everywhere; strings without variables stay as they are */
	{ "SELECT 1 FROM u WHERE a LIKE 'x%%' AND b = %u AND c = 'it''s' AND d = 5 %% 3",
	  "SELECT 1 FROM u WHERE a LIKE 'x%' AND b = $1 AND c = 'it''s' AND d = 5 % 3", 1,
	  "Jane.Doe@Example.org" },
	/* quotes, identifiers, comments, casts and dollar signs around */
	{ "SELECT \"user\" AS \"pass\"\"word\" FROM u -- a 'comment\nWHERE x = %u::text",
	  "SELECT \"user\" AS \"pass\"\"word\" FROM u -- a 'comment\nWHERE x = $1::text", 1,
	  "Jane.Doe@Example.org" },
	{ "SELECT /* 'x' */ a$b, $$lit'%%$$, $t$ it's $t$ FROM u WHERE x = %u -- end",
	  "SELECT /* 'x' */ a$b, $$lit'%$$, $t$ it's $t$ FROM u WHERE x = $1 -- end", 1,
	  "Jane.Doe@Example.org" },
	{ "SELECT E'a\\n', X'00' FROM u WHERE x = %d",
	  "SELECT E'a\\n', X'00' FROM u WHERE x = $1", 1, "Example.org" },
};

static void values_check(const struct sql_template *t, const char *want)
{
	char **values = sql_template_values(t, "Jane.Doe@Example.org");
	char joined[256] = "";
	for (size_t i = 0; i < t->params_count; i++) {
		if (i > 0)
			strcat(joined, "|");
		strcat(joined, values[i]);
	}
	assert_string_equal(joined, want);
	sql_template_values_free(t, &values);
	assert_null(values);
}

static void test_template_cases(void **state)
{
	(void)state;
	for (size_t i = 0; i < sizeof(template_cases) / sizeof(template_cases[0]); i++) {
		const struct template_case *c = &template_cases[i];
		struct sql_template t;
		char *error = NULL;
		if (sql_template_parse(&t, c->tmpl, SQL_PARAMS_DOLLAR, &error) < 0)
			fail_msg("%s: %s", c->tmpl, error);
		assert_string_equal(t.query, c->pg);
		assert_int_equal(t.params_count, c->params);
		values_check(&t, c->values);
		sql_template_free(&t);

		/* SQLite: the same with ?N */
		assert_int_equal(sql_template_parse(&t, c->tmpl, SQL_PARAMS_QUESTION, &error), 0);
		char want[256];
		size_t o = 0;
		for (const char *p = c->pg; *p != '\0'; p++) {
			bool param = *p == '$' && p[1] >= '1' && p[1] <= '9' &&
				(p == c->pg || p[-1] == ' ' || p[-1] == '(');
			want[o++] = param ? '?' : *p;
		}
		want[o] = '\0';
		assert_string_equal(t.query, want);
		sql_template_free(&t);
	}
}

static const struct {
	const char *tmpl;
	const char *error;	/* a part of the message */
} template_errors[] = {
	{ "", "an empty query" },
	{ "  \n", "an empty query" },
	{ "SELECT password FROM users", "uses no variable" },
	{ "SELECT 1 FROM u WHERE a = %x", "unknown variable" },
	{ "SELECT 1 FROM u WHERE a = %{nope}", "unknown variable" },
	{ "SELECT 1 FROM u WHERE a = %{user", "unterminated %{" },
	{ "SELECT 1 FROM u WHERE a = '%z'", "unknown variable" },
	{ "SELECT 1 FROM u WHERE a = '%u", "unterminated string at offset 26" },
	{ "SELECT 1 FROM u WHERE a = 'it''s %u", "unterminated string" },
	{ "SELECT \"%u\" FROM u", "a variable inside a quoted identifier at offset 8" },
	{ "SELECT %u, \"a FROM u", "unterminated quoted identifier at offset 12" },
	{ "SELECT 1 FROM u WHERE a = E'%u'", "a variable inside a prefixed string" },
	{ "SELECT 1 FROM u /* %u */ WHERE a = %u", "a variable inside a comment" },
	{ "SELECT 1 FROM u WHERE a = %u -- %n", "a variable inside a comment" },
	{ "SELECT 1 FROM u WHERE a = %u /* the end", "unterminated comment" },
	{ "SELECT 1 FROM u WHERE a = $$%u$$", "a variable inside a dollar-quoted string" },
	{ "SELECT 1 FROM u WHERE a = %u AND b = $1", "a parameter of the query's own" },
};

static void test_template_errors(void **state)
{
	(void)state;
	for (size_t i = 0; i < sizeof(template_errors) / sizeof(template_errors[0]); i++) {
		struct sql_template t;
		char *error = NULL;
		if (sql_template_parse(&t, template_errors[i].tmpl, SQL_PARAMS_DOLLAR,
				       &error) == 0)
			fail_msg("accepted: %s -> %s", template_errors[i].tmpl, t.query);
		if (strstr(error, template_errors[i].error) == NULL)
			fail_msg("%s: %s", template_errors[i].tmpl, error);
		assert_null(t.query);
		free(error);
	}
}

/* Whatever the user name, it is a value, never SQL: no byte of it
 * reaches the query text. */
static void test_template_values_are_not_sql(void **state)
{
	(void)state;
	struct sql_template t;
	char *error;
	assert_int_equal(sql_template_parse(&t, "SELECT 1 FROM u WHERE a = '%u'",
					    SQL_PARAMS_DOLLAR, &error), 0);
	static const char *const names[] = {
		"' OR '1'='1", "x'; DROP TABLE users; --", "%u", "$1", "\\'",
	};
	for (size_t i = 0; i < sizeof(names) / sizeof(names[0]); i++) {
		char **values = sql_template_values(&t, names[i]);
		assert_string_equal(values[0], names[i]);
		sql_template_values_free(&t, &values);
	}
	assert_string_equal(t.query, "SELECT 1 FROM u WHERE a = $1");
	sql_template_free(&t);
}

/* ---- lookups -------------------------------------------------------- */

#define PASSDB_FIXTURE_TMPDIR "/tmp/loft-test-sql-XXXXXX"
#include "passdb_fixture.h"

static struct config *sql_config(const char *auth_extra, const char *connect,
				 const char *query, const char *extra, char **error_r)
{
	char path[128], text[2048];
	snprintf(path, sizeof(path), "%s/users", tmpdir);
	FILE *f = fopen(path, "w");
	fputs("jane:{PLAIN}secret::::::\n", f);
	fclose(f);
	snprintf(text, sizeof(text),
		 "listeners = ( { protocol = \"imap\"; } );\n"
		 "auth = { workers = 1; %s };\n"
		 "passdb = ( { driver = \"passwd-file\"; path = \"%s\"; },\n"
		 "  { driver = \"sql\"; connect = \"%s\";\n"
		 "    password_query = \"%s\"; %s } );\n"
		 "director = { mail_servers = [ \"10.0.0.1\" ]; };\n",
		 auth_extra, path, connect, query, extra);
	snprintf(path, sizeof(path), "%s/loft.conf", tmpdir);
	f = fopen(path, "w");
	fputs(text, f);
	fclose(f);
	return config_load(path, NULL, 0, error_r);
}

static struct auth *sql_auth(const char *auth_extra, const char *connect,
			     const char *query, const char *extra)
{
	char *error = NULL;
	struct config *cfg = sql_config(auth_extra, connect, query, extra, &error);
	if (cfg == NULL)
		fail_msg("%s", error);
	struct auth *a = auth_new(cfg, base, &error);
	if (a == NULL)
		fail_msg("%s", error);
	config_unref(&cfg);
	return a;
}

static void sqlite_exec(const char *path, const char *sql)
{
	sqlite3 *db;
	char *error = NULL;
	assert_int_equal(sqlite3_open(path, &db), SQLITE_OK);
	if (sqlite3_exec(db, sql, NULL, NULL, &error) != SQLITE_OK)
		fail_msg("%s: %s", sql, error);
	sqlite3_close(db);
}

#define USERS_QUERY \
	"SELECT name AS user, password, host, port, destuser, director_tag, " \
	"nologin, reason, nopassword, mail AS user_email, proxy, extra FROM users " \
	"WHERE name = '%n'"

static void sqlite_users(const char *path)
{
	unlink(path);
	sqlite_exec(path,
		    "CREATE TABLE users (name TEXT, password TEXT, host TEXT, port INT, "
		    "destuser TEXT, director_tag TEXT, nologin TEXT, reason TEXT, "
		    "nopassword TEXT, mail TEXT, proxy TEXT, extra TEXT);"
		    "INSERT INTO users VALUES ('ann', '{PLAIN}pw', NULL, NULL, NULL, NULL,"
		    "  NULL, NULL, NULL, NULL, 'Y', NULL);"
		    "INSERT INTO users VALUES ('bob', '{PLAIN}pw', '10.1.2.3', 1143, 'robert',"
		    "  'tag1', NULL, NULL, NULL, 'bob@example.org', 'Y', 'x');"
		    "INSERT INTO users VALUES ('cat', '{PLAIN}pw', NULL, NULL, NULL, NULL,"
		    "  'Y', 'Moved to the new server.', NULL, NULL, NULL, NULL);"
		    "INSERT INTO users VALUES ('dan', NULL, '10.9.9.9', NULL, NULL, NULL,"
		    "  NULL, NULL, 'Y', NULL, 'Y', NULL);"
		    "INSERT INTO users VALUES ('eve', NULL, NULL, NULL, NULL, NULL,"
		    "  NULL, NULL, NULL, NULL, NULL, NULL);"
		    "INSERT INTO users VALUES ('two', '{PLAIN}pw', NULL, NULL, NULL, NULL,"
		    "  NULL, NULL, NULL, NULL, NULL, NULL);"
		    "INSERT INTO users VALUES ('two', '{PLAIN}pw', NULL, NULL, NULL, NULL,"
		    "  NULL, NULL, NULL, NULL, NULL, NULL);");
}

static void lookup_wait(struct auth *a, const char *user, const char *password)
{
	int seen = results_seen;
	auth_lookup(a, user, password, on_result, &results_seen, 0);
	wait_results(seen + 1);
}

/* Each column is the field its name says; NULL is absent. */
static void test_sqlite_fields(void **state)
{
	(void)state;
	char path[128], connect[160];
	snprintf(path, sizeof(path), "%s/users.db", tmpdir);
	snprintf(connect, sizeof(connect), "sqlite:%s", path);
	sqlite_users(path);
	struct auth *a = sql_auth("", connect, USERS_QUERY, "");
	results_seen = 0;

	lookup_wait(a, "ann", "pw");
	assert_int_equal(last.status, AUTH_STATUS_OK);
	assert_string_equal(last.fields, "user=ann host=- port=0 destuser=- "
			    "director_tag=- reason=-");
	lookup_wait(a, "ann", "wrong");
	assert_int_equal(last.status, AUTH_STATUS_FAILED);

	lookup_wait(a, "bob@example.org", "pw");
	assert_int_equal(last.status, AUTH_STATUS_OK);
	assert_false(last.unchecked);
	assert_string_equal(last.fields, "user=bob host=10.1.2.3 port=1143 "
			    "destuser=robert director_tag=tag1 reason=- "
			    "user_email=bob@example.org");

	lookup_wait(a, "cat", "pw");
	assert_int_equal(last.status, AUTH_STATUS_NOLOGIN);
	assert_string_equal(last.fields, "user=cat host=- port=0 destuser=- "
			    "director_tag=- reason=Moved to the new server.");
	lookup_wait(a, "cat", "wrong");
	assert_int_equal(last.status, AUTH_STATUS_FAILED);

	/* nopassword: any password, the backend checks it */
	lookup_wait(a, "dan", "anything");
	assert_int_equal(last.status, AUTH_STATUS_OK);
	assert_true(last.unchecked);
	assert_string_equal(last.fields, "user=dan host=10.9.9.9 port=0 destuser=- "
			    "director_tag=- reason=-");

	/* no password and no nopassword: nothing can be checked */
	lookup_wait(a, "eve", "");
	assert_int_equal(last.status, AUTH_STATUS_FAILED);
	/* a user lookup (LMTP) needs none */
	int seen = results_seen;
	auth_lookup_user(a, "eve", on_result, &results_seen, 0);
	wait_results(seen + 1);
	assert_int_equal(last.status, AUTH_STATUS_OK);

	/* no row: unknown; two rows: an error, as Dovecot */
	lookup_wait(a, "nobody", "pw");
	assert_int_equal(last.status, AUTH_STATUS_FAILED);
	lookup_wait(a, "two", "pw");
	assert_int_equal(last.status, AUTH_STATUS_TEMPFAIL);
	assert_non_null(strstr(last.error, "more than one row"));

	/* the passwd-file before it still answers */
	lookup_wait(a, "jane", "secret");
	assert_int_equal(last.status, AUTH_STATUS_OK);

	/* names that would be SQL find nobody, and harm nothing */
	lookup_wait(a, "' OR '1'='1", "pw");
	assert_int_equal(last.status, AUTH_STATUS_FAILED);
	lookup_wait(a, "x'; DROP TABLE users; --", "pw");
	assert_int_equal(last.status, AUTH_STATUS_FAILED);
	lookup_wait(a, "ann", "pw");
	assert_int_equal(last.status, AUTH_STATUS_OK);
	auth_free(&a);
}

/* The file replaced by another (a new inode) is the one read next. */
static void test_sqlite_replaced(void **state)
{
	(void)state;
	char path[128], next[140], connect[160];
	snprintf(path, sizeof(path), "%s/users.db", tmpdir);
	snprintf(next, sizeof(next), "%s/users.db.new", tmpdir);
	snprintf(connect, sizeof(connect), "sqlite:%s", path);
	sqlite_users(path);
	struct auth *a = sql_auth("", connect, USERS_QUERY, "");
	results_seen = 0;

	lookup_wait(a, "ann", "pw");
	assert_int_equal(last.status, AUTH_STATUS_OK);
	unlink(next);
	sqlite_exec(next, "CREATE TABLE users (name TEXT, password TEXT, host TEXT, "
		    "port INT, destuser TEXT, director_tag TEXT, nologin TEXT, reason TEXT, "
		    "nopassword TEXT, mail TEXT, proxy TEXT, extra TEXT);"
		    "INSERT INTO users (name, password) VALUES ('ann', '{PLAIN}new');");
	assert_int_equal(rename(next, path), 0);
	lookup_wait(a, "ann", "pw");
	assert_int_equal(last.status, AUTH_STATUS_FAILED);
	lookup_wait(a, "ann", "new");
	assert_int_equal(last.status, AUTH_STATUS_OK);
	lookup_wait(a, "bob", "pw");
	assert_int_equal(last.status, AUTH_STATUS_FAILED);
	auth_free(&a);
}

/* A bad file or query fails at start, saying why. */
static void test_sqlite_init_errors(void **state)
{
	(void)state;
	char path[128], connect[160];
	snprintf(path, sizeof(path), "%s/users.db", tmpdir);
	snprintf(connect, sizeof(connect), "sqlite:%s", path);
	sqlite_users(path);
	static const struct {
		const char *connect_suffix;
		const char *query;
		const char *error;
	} cases[] = {
		{ ".missing", USERS_QUERY, "No such file" },
		{ "", "SELECT password FROM nosuchtable WHERE name = %u", "no such table" },
		{ "", "SELECT password FROM users WHERE name = %u AND name = ?",
		  "parameters of its own" },
		{ "", "SELECT password FROM users WHERE name = %u AND name = :n",
		  "parameters of its own" },
		{ "", "SELECT password FROM users WHERE name = %u; DELETE FROM users",
		  "one statement only" },
	};
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		char c[200], *error = NULL;
		snprintf(c, sizeof(c), "%s%s", connect, cases[i].connect_suffix);
		struct config *cfg = sql_config("", c, cases[i].query, "", &error);
		if (cfg == NULL)
			fail_msg("%s", error);
		struct auth *a = auth_new(cfg, base, &error);
		assert_null(a);
		if (strstr(error, cases[i].error) == NULL)
			fail_msg("%s: %s", cases[i].query, error);
		free(error);
		config_unref(&cfg);
	}
	/* the template and the connection string, already when loading */
	static const struct {
		const char *connect;
		const char *query;
		const char *error;
	} load_cases[] = {
		{ "sqlite:/x", "SELECT password FROM users WHERE name = %q", "unknown variable" },
		{ "sqlite:", "SELECT password FROM users WHERE name = %u", "needs a database" },
		{ "", "SELECT password FROM users WHERE name = %u", "needs a database" },
		{ "host=x", "SELECT password FROM users", "uses no variable" },
	};
	for (size_t i = 0; i < sizeof(load_cases) / sizeof(load_cases[0]); i++) {
		char *error = NULL;
		struct config *cfg = sql_config("", load_cases[i].connect, load_cases[i].query,
						"", &error);
		assert_null(cfg);
		if (strstr(error, load_cases[i].error) == NULL)
			fail_msg("%s", error);
		free(error);
	}
	/* a libpq connection string that libpq cannot parse */
	char *error = NULL;
	struct config *cfg = sql_config("", "host=127.0.0.1 nonsense=1",
					"SELECT password FROM users WHERE name = %u", "", &error);
	assert_non_null(cfg);
	assert_null(auth_new(cfg, base, &error));
	assert_non_null(strstr(error, "nonsense"));
	free(error);
	config_unref(&cfg);
}

/* ---- PostgreSQL, without a server ----------------------------------- */

static struct auth *pg_auth(unsigned int port, const char *auth_extra)
{
	char connect[128];
	snprintf(connect, sizeof(connect), "hostaddr=127.0.0.1 port=%u dbname=x user=x "
		 "sslmode=disable", port);
	return sql_auth(auth_extra, connect, "SELECT password FROM users WHERE name = %u",
			"timeout = \"300ms\"; pool_size = 1;");
}

static void test_pg_stalled(void **state)
{
	(void)state;
	unsigned int port;
	int fd = listen_silent(&port);
	struct auth *a = pg_auth(port, "");

	/* a user only SQL can answer waits for it; one in the passwd-file
	 * before it is answered meanwhile */
	results_seen = 0;
	double start = now_s();
	auth_lookup(a, "sqluser", "pw", on_result, &results_seen, 1);
	auth_lookup(a, "jane", "secret", on_result, &results_seen, 2);
	wait_results(1);
	assert_int_equal(last.cookie, 2);
	assert_int_equal(last.status, AUTH_STATUS_OK);
	assert_true(now_s() - start < 0.25);
	/* the stalled one ends in a temporary failure after its timeout */
	wait_results(2);
	assert_int_equal(last.cookie, 1);
	assert_int_equal(last.status, AUTH_STATUS_TEMPFAIL);
	assert_false(last.busy);
	assert_non_null(strstr(last.error, "passdb sql: "));
	assert_true(now_s() - start >= 0.25);
	assert_true(now_s() - start < 1);

	auth_free(&a);
	close(fd);
}

static void test_pg_abort_and_shutdown(void **state)
{
	(void)state;
	unsigned int port;
	int fd = listen_silent(&port);
	struct auth *a = pg_auth(port, "");

	/* a caller that leaves gets no callback, waiting or under way */
	results_seen = 0;
	const struct auth_request_params p = {
		.user = "sqluser", .password = "pw", .callback = on_result,
		.ctx = &results_seen, .cookie = 3,
	};
	struct auth_request *r1 = auth_request_start(a, &p);
	struct auth_request *r2 = auth_request_start(a, &p);
	auth_request_abort(a, &r2);
	assert_null(r2);
	event_base_loop(base, EVLOOP_NONBLOCK);
	auth_request_abort(a, &r1);
	double start = now_s();
	while (now_s() - start < 0.5)
		event_base_loop(base, EVLOOP_NONBLOCK);
	assert_int_equal(results_seen, 0);
	auth_free(&a);

	/* shutdown answers a lookup in flight before it returns */
	a = pg_auth(port, "");
	auth_lookup(a, "sqluser", "pw", on_result, &results_seen, 4);
	auth_free(&a);
	assert_int_equal(results_seen, 1);
	assert_int_equal(last.cookie, 4);
	assert_int_equal(last.status, AUTH_STATUS_TEMPFAIL);
	close(fd);
}

/* auth.max_queue bounds the SQL lookups waiting or under way too. */
static void test_pg_queue(void **state)
{
	(void)state;
	unsigned int port;
	int fd = listen_silent(&port);
	passdb_queue_check(pg_auth(port, "max_queue = 1;"), "sqluser", "sqluser2");
	close(fd);
}

/* Nobody listens: a temporary failure at once, not after the timeout. */
static void test_pg_refused(void **state)
{
	(void)state;
	unsigned int port;
	int fd = listen_silent(&port);
	close(fd);
	struct auth *a = pg_auth(port, "");

	results_seen = 0;
	double start = now_s();
	auth_lookup(a, "sqluser", "pw", on_result, &results_seen, 1);
	wait_results(1);
	assert_int_equal(last.status, AUTH_STATUS_TEMPFAIL);
	assert_true(now_s() - start < 0.25);
	/* and again, while the connection waits to be tried again */
	auth_lookup(a, "sqluser", "pw", on_result, &results_seen, 2);
	wait_results(2);
	assert_int_equal(last.status, AUTH_STATUS_TEMPFAIL);
	assert_non_null(strstr(last.error, "passdb sql: "));
	assert_true(now_s() - start < 0.25);
	auth_free(&a);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_template_cases),
		cmocka_unit_test(test_template_errors),
		cmocka_unit_test(test_template_values_are_not_sql),
		cmocka_unit_test(test_sqlite_fields),
		cmocka_unit_test(test_sqlite_replaced),
		cmocka_unit_test(test_sqlite_init_errors),
		cmocka_unit_test(test_pg_stalled),
		cmocka_unit_test(test_pg_abort_and_shutdown),
		cmocka_unit_test(test_pg_queue),
		cmocka_unit_test(test_pg_refused),
	};
	return cmocka_run_group_tests_name("auth_sql", tests, setup, teardown);
}
