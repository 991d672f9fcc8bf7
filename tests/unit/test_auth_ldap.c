/* Unit tests for the LDAP passdb's pieces that need no directory: the
 * RFC 4515/4514 escaping of user names (whole and byte by byte), and the
 * asynchronous lookup flow against a server that never answers (a socket
 * that listens and never accepts) or is not there: the loop and the
 * other passdbs go on meanwhile, the caller may leave, the queue is
 * bounded, and shutdown answers what is in flight. The lookups against
 * a real slapd are in tests/integration/test_passdb_ldap.py. */
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

#include "auth/auth.h"
#include "auth/ldap_escape.h"
#include "common/sbuf.h"
#include "conf/config.h"

/* ---- escaping ------------------------------------------------------- */

struct escape_case {
	const char *in;
	size_t len;
	const char *filter;
	const char *dn;
};

#define CASE(in_, f_, d_) { in_, sizeof(in_) - 1, f_, d_ }
static const struct escape_case escape_cases[] = {
	CASE("jane", "jane", "jane"),
	CASE("jane@example.org", "jane@example.org", "jane@example.org"),
	CASE("*)(uid=*", "\\2a\\29\\28uid=\\2a", "*)(uid\\3d*"),
	CASE("*", "\\2a", "*"),
	CASE("a\\b", "a\\5cb", "a\\5cb"),
	CASE("a\0b", "a\\00b", "a\\00b"),
	CASE("x)(|(uid=*))", "x\\29\\28|\\28uid=\\2a\\29\\29", "x)(|(uid\\3d*))"),
	CASE("cn=admin,dc=org", "cn=admin,dc=org", "cn\\3dadmin\\2cdc\\3dorg"),
	CASE(" #lead, trail ", " #lead, trail ", "\\20\\23lead\\2c\\20trail\\20"),
	CASE("\"q\"+<a>;", "\"q\"+<a>;", "\\22q\\22\\2b\\3ca\\3e\\3b"),
	CASE("S\xc3\xa9" "cret\n", "S\xc3\xa9" "cret\n", "S\xc3\xa9" "cret\\0a"),
};

static void escape_check(void (*escape)(struct sbuf *, const char *, size_t),
			 const char *in, size_t len, const char *want)
{
	struct sbuf whole = SBUF_INIT, bytes = SBUF_INIT;
	escape(&whole, in, len);
	assert_string_equal(sbuf_cstr(&whole), want);
	/* one byte at a time gives the same text */
	for (size_t i = 0; i < len; i++)
		escape(&bytes, in + i, 1);
	assert_string_equal(sbuf_cstr(&bytes), want);
	sbuf_free(&whole);
	sbuf_free(&bytes);
}

static void test_escape_cases(void **state)
{
	(void)state;
	for (size_t i = 0; i < sizeof(escape_cases) / sizeof(escape_cases[0]); i++) {
		const struct escape_case *c = &escape_cases[i];
		escape_check(ldap_escape_filter, c->in, c->len, c->filter);
		escape_check(ldap_escape_dn, c->in, c->len, c->dn);
	}
}

/* Every byte value: what comes out has no byte that means anything in a
 * filter (or DN) except a backslash starting a hex pair. */
static void test_escape_every_byte(void **state)
{
	(void)state;
	for (int c = 0; c < 256; c++) {
		char in = (char)c;
		struct sbuf f = SBUF_INIT, d = SBUF_INIT;
		ldap_escape_filter(&f, &in, 1);
		ldap_escape_dn(&d, &in, 1);
		const char *fs = sbuf_data(&f), *ds = sbuf_data(&d);
		if (strchr("*()\\", c) != NULL || c == 0) {
			char want[4];
			snprintf(want, sizeof(want), "\\%02x", c);
			assert_int_equal(sbuf_len(&f), 3);
			assert_memory_equal(fs, want, 3);
		} else {
			assert_int_equal(sbuf_len(&f), 1);
			assert_int_equal((unsigned char)fs[0], c);
		}
		if (sbuf_len(&d) == 1) {
			assert_int_equal((unsigned char)ds[0], c);
			assert_null(strchr("\"+,;<=>\\# ", c));
			assert_true(c >= 0x20 && c != 0x7f);
		} else {
			char want[4];
			snprintf(want, sizeof(want), "\\%02x", c);
			assert_int_equal(sbuf_len(&d), 3);
			assert_memory_equal(ds, want, 3);
		}
		sbuf_free(&f);
		sbuf_free(&d);
	}
}

static void template_check(const char *tmpl, const char *user,
			   void (*escape)(struct sbuf *, const char *, size_t),
			   const char *want)
{
	struct sbuf sb = SBUF_INIT;
	ldap_escape_template(&sb, tmpl, user, escape);
	assert_string_equal(sbuf_cstr(&sb), want);
	sbuf_free(&sb);
}

static void test_escape_template(void **state)
{
	(void)state;
	template_check("(&(objectClass=posixAccount)(uid=%u))", "*)(uid=*",
		       ldap_escape_filter,
		       "(&(objectClass=posixAccount)(uid=\\2a\\29\\28uid=\\2a))");
	template_check("(&(uid=%n)(mailDomain=%d))", "a*b@ex(a)mple.org",
		       ldap_escape_filter, "(&(uid=a\\2ab)(mailDomain=ex\\28a\\29mple.org))");
	template_check("(uid=%Lu)", "JANE*", ldap_escape_filter, "(uid=jane\\2a)");
	template_check("ou=people,dc=%d,dc=org", "jane@x,dc=evil",
		       ldap_escape_dn, "ou=people,dc=x\\2cdc\\3devil,dc=org");
	template_check("ou=people,dc=%d,dc=org", "jane", ldap_escape_dn,
		       "ou=people,dc=,dc=org");
}

/* ---- the asynchronous flow ------------------------------------------ */

#define PASSDB_FIXTURE_TMPDIR "/tmp/loft-test-ldap-XXXXXX"
#include "passdb_fixture.h"

static struct auth *ldap_auth_scheme(const char *scheme, unsigned int port,
				      const char *auth_extra)
{
	char path[128], text[1024];
	snprintf(path, sizeof(path), "%s/users", tmpdir);
	FILE *f = fopen(path, "w");
	fputs("jane:{PLAIN}secret::::::\n", f);
	fclose(f);
	snprintf(text, sizeof(text),
		 "listeners = ( { protocol = \"imap\"; } );\n"
		 "auth = { workers = 1; %s };\n"
		 "passdb = ( { driver = \"passwd-file\"; path = \"%s\"; },\n"
		 "  { driver = \"ldap\"; uris = [ \"%s://127.0.0.1:%u\" ];\n"
		 "    base = \"dc=example,dc=org\"; timeout = \"300ms\"; pool_size = 1; } );\n"
		 "director = { mail_servers = [ \"10.0.0.1\" ]; };\n",
		 auth_extra, path, scheme, port);
	snprintf(path, sizeof(path), "%s/loft.conf", tmpdir);
	f = fopen(path, "w");
	fputs(text, f);
	fclose(f);
	char *error = NULL;
	struct config *cfg = config_load(path, NULL, 0, &error);
	if (cfg == NULL)
		fail_msg("%s", error);
	struct auth *a = auth_new(cfg, base, &error);
	if (a == NULL)
		fail_msg("%s", error);
	config_unref(&cfg);
	return a;
}

static struct auth *ldap_auth(unsigned int port, const char *auth_extra)
{
	return ldap_auth_scheme("ldap", port, auth_extra);
}

/* ldaps:// to a server that never answers: the TLS handshake is bounded
 * by the timeout too. */
static void test_ldaps_stalled(void **state)
{
	(void)state;
	unsigned int port;
	int fd = listen_silent(&port);
	struct auth *a = ldap_auth_scheme("ldaps", port, "");

	results_seen = 0;
	double start = now_s();
	auth_lookup(a, "ldapuser", "pw", on_result, &results_seen, 1);
	wait_results(1);
	assert_int_equal(last.status, AUTH_STATUS_TEMPFAIL);
	assert_true(now_s() - start < 2);
	auth_free(&a);
	close(fd);
}

static void test_ldap_stalled(void **state)
{
	(void)state;
	unsigned int port;
	int fd = listen_silent(&port);
	struct auth *a = ldap_auth(port, "");

	/* a user only LDAP can answer waits for it; one in the passwd-file
	 * before it is answered meanwhile */
	results_seen = 0;
	double start = now_s();
	auth_lookup(a, "ldapuser", "pw", on_result, &results_seen, 1);
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
	assert_non_null(strstr(last.error, "passdb ldap: "));
	assert_true(now_s() - start >= 0.25);

	/* a caller that leaves gets no callback, waiting or under way */
	const struct auth_request_params p = {
		.user = "ldapuser", .password = "pw", .callback = on_result,
		.ctx = &results_seen, .cookie = 3,
	};
	struct auth_request *r1 = auth_request_start(a, &p);
	struct auth_request *r2 = auth_request_start(a, &p);
	auth_request_abort(a, &r2);	/* still queued: taken back */
	assert_null(r2);
	event_base_loop(base, EVLOOP_NONBLOCK);
	auth_request_abort(a, &r1);	/* under way: its answer is dropped */
	start = now_s();
	while (now_s() - start < 0.5)
		event_base_loop(base, EVLOOP_NONBLOCK);
	assert_int_equal(results_seen, 2);

	/* shutdown answers a lookup in flight before it returns */
	auth_lookup(a, "ldapuser", "pw", on_result, &results_seen, 4);
	auth_free(&a);
	assert_int_equal(results_seen, 3);
	assert_int_equal(last.cookie, 4);
	assert_int_equal(last.status, AUTH_STATUS_TEMPFAIL);
	close(fd);
}

/* auth.max_queue bounds the LDAP lookups waiting or under way too. */
static void test_ldap_queue(void **state)
{
	(void)state;
	unsigned int port;
	int fd = listen_silent(&port);
	passdb_queue_check(ldap_auth(port, "max_queue = 1;"), "ldapuser", "ldapuser2");
	close(fd);
}

/* Nobody listens: a temporary failure at once, not after the timeout. */
static void test_ldap_refused(void **state)
{
	(void)state;
	unsigned int port;
	int fd = listen_silent(&port);
	close(fd);
	struct auth *a = ldap_auth(port, "");

	results_seen = 0;
	double start = now_s();
	auth_lookup(a, "ldapuser", "pw", on_result, &results_seen, 1);
	wait_results(1);
	assert_int_equal(last.status, AUTH_STATUS_TEMPFAIL);
	assert_true(now_s() - start < 0.25);
	auth_free(&a);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_escape_cases),
		cmocka_unit_test(test_escape_every_byte),
		cmocka_unit_test(test_escape_template),
		cmocka_unit_test(test_ldap_stalled),
		cmocka_unit_test(test_ldap_queue),
		cmocka_unit_test(test_ldaps_stalled),
		cmocka_unit_test(test_ldap_refused),
	};
	return cmocka_run_group_tests_name("auth_ldap", tests, setup, teardown);
}
