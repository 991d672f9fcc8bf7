/* Unit tests for src/auth: password schemes against hashes made by
 * Debian's `doveadm pw` and libxcrypt, the passwd-file parser (whole
 * file, fields, errors), and the lookup flow with real worker threads. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <crypt.h>
#include <fcntl.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>
#include <cmocka.h>
#include <event2/event.h>

#include "auth/auth.h"
#include "auth/auth_cache.h"
#include "common/clock.h"
#include "auth/passwd_file.h"
#include "auth/worker.h"
#include "auth/penalty.h"
#include "auth/password.h"
#include "common/log.h"
#include "common/xmalloc.h"
#include "conf/config.h"

#define PW "S\xc3\xa9" "cret pw"

/* `doveadm pw -s SCHEME -p 'Sécret pw'` (Dovecot 2.3.19.1) and
 * crypt_gensalt()+crypt() of libxcrypt 4.4.33 */
static const char *const good_hashes[] = {
	"{PLAIN}" PW,
	"{CRYPT}$2y$05$w2fyyX5rsEM.2msbtNDH5uDqwPTuCjNz64G1ubm9rhdInKRgPAe7u",
	"{SHA512-CRYPT}$6$zboADi9aOlejwhPw$/Mlm46i0ZX/1b18r/16BfNIc.EmyAugxd6.pDloRIDhrjYXjuJRCoJFDj/uKjJgIFEzHhNpxgEAeNTyyaKVP/1",
	"{SHA256-CRYPT}$5$rUNhlGQh/KZ4MKkP$AArlAUVOW9cq8d89M44VZKSXli5/PTZvtp4cN42WI9C",
	"{BLF-CRYPT}$2y$05$5P87me4SPpk4XDQ56sNkseTNkcmLh1lfBdDDyoecYvkQ0S1aDbQZ.",
	"{ARGON2I}$argon2i$v=19$m=32768,t=4,p=1$5vutW0VT0y/iSAiVnEE2hA$bZ9vcE0Wfrpfb8uTRCeKJ3jAXGsf4z66qmgBrolBkRE",
	"{ARGON2ID}$argon2id$v=19$m=65536,t=3,p=1$+EoHbshk6fACa4EtEdJnxQ$55P2NCNfL/KyoDkGO9oZMRrxQw9hmPSltojPPnPxzTg",
	"{SHA512}5UuAjXLwMctztlRFVNrwWGdhv8vszGbCkC8xMznXd3c1xEH9V+jxImeGvRPHkIoN9yjIzbePoqAZu3gewISGDA==",
	"{SSHA512}26PU+1drYoPbYe2dRqh2SlpnaCjiv4VBj8heC3TmafctaZmuXDHiywvYLal5S/QQN5dT1voAB2Twhf83bogpJCDD/mU=",
	"{SHA256}1Bfaq7iaWk8zT42+YXiqWmEFnlMVwSgEM3asnAJuRf8=",
	"{SSHA256}+/MH4GvzJRkqaMD42V7w8iqIk0QQIQvzpvPG08U1nApMDM+b",
	"{SHA}poW5kLQYhghMfm7WmYlAabfSF2o=",
	"{SSHA}iMiLtEnaFDDloX5371AsEFkp/a8zKdLD",
	"{SHA256.HEX}d417daabb89a5a4f334f8dbe6178aa5a61059e5315c128043376ac9c026e45ff",
	"{SSHA256.HEX}3da36a9b90e5345676e19a4d100b228d0041637fbd89d0f67982f39228a612db7cd93a76",
	/* a hex digest without .HEX is accepted too, as Dovecot does */
	"{SHA256}d417daabb89a5a4f334f8dbe6178aa5a61059e5315c128043376ac9c026e45ff",
	"{MD5-CRYPT}$1$Z00DV6XC$AJimqHsJYcS2myDE94cSO1",
	/* bare crypt strings in the default scheme CRYPT */
	"$y$j9T$RQSyA2VoWMXULqB/LP2YJ1$iAY.GUuI9VggcHKMkdFIJRAcQsAkmnG60SnzsKkmID.",
	"$2b$05$w.7s9GwvgQpG/yMi9votju5PvlbiXJNnYDD1aHKmtvIR3fKUGNaDi",
	"$6$ha28OqyrF2Kpce4x$SCAMSD94oUCHfV0JvQzval8X7pLr7Q.Lls5Z.VI0dI1EmWn2JqHsTK941rez7l0Q1yUOP2kbUZ5MUKfB6Jbqj0",
	"$5$44mcw39xjYXSFRxF$nO8Jr7we1hI2TDqGsEfhLkt1OjqBMhishvzisEsyz.D",
	"{sha512-crypt}$6$ha28OqyrF2Kpce4x$SCAMSD94oUCHfV0JvQzval8X7pLr7Q.Lls5Z.VI0dI1EmWn2JqHsTK941rez7l0Q1yUOP2kbUZ5MUKfB6Jbqj0",
};

static void test_password_schemes(void **state)
{
	(void)state;
	assert_int_equal(password_init(), 0);
	for (size_t i = 0; i < ARRAY_SIZE(good_hashes); i++) {
		const char *error = NULL;
		int r = password_verify(PW, good_hashes[i], "CRYPT", &error);
		if (r != 1)
			fail_msg("%s: %d %s", good_hashes[i], r, error ? error : "");
		r = password_verify("Secret pw", good_hashes[i], "CRYPT", &error);
		if (r != 0)
			fail_msg("wrong password accepted by %s", good_hashes[i]);
		r = password_verify("", good_hashes[i], "CRYPT", &error);
		assert_int_equal(r, 0);
	}
	const char *error;
	assert_int_equal(password_verify(PW, "{NOPE}x", "CRYPT", &error), -1);
	assert_string_equal(error, "unknown password scheme");
	assert_int_equal(password_verify(PW, "{SHA256}!!!", "CRYPT", &error), -1);
	assert_int_equal(password_verify(PW, "{SHA256}Zm9v", "CRYPT", &error), -1);
	assert_int_equal(password_verify(PW, "{ARGON2ID}$6$x", "CRYPT", &error), -1);
	assert_int_equal(password_verify(PW, "{CRYPT}", "CRYPT", &error), -1);
	/* bare text in the PLAIN default scheme */
	assert_int_equal(password_verify(PW, PW, "PLAIN", &error), 1);
	assert_int_equal(password_verify(PW, PW "x", "PLAIN", &error), 0);
	assert_true(password_scheme_is_known("SHA512-CRYPT"));
	assert_true(password_scheme_is_known("ssha256.hex"));
	assert_false(password_scheme_is_known("SHA256.ROT13"));
}

static void test_passwd_file_parse(void **state)
{
	(void)state;
	static const char data[] =
		"# a comment\n"
		"jane:{PLAIN}pw:1000:1000::/home/jane::user_group=staff host=10.0.0.5 nologin reason=Moved\n"
		"\n"
		"bob:{SHA256}x\r\n"
		"carol::::::\n"
		"dave:pw:1:2:Dave D:/h:/bin/sh:destuser=dave@backend director_tag=gold port=1143\n"
		"jane:{PLAIN}other\n"
		"eve:pw:::::: x=a:b";
	struct passwd_table t;
	char *error = NULL;
	assert_int_equal(passwd_table_parse(&t, data, sizeof(data) - 1, &error), 0);
	assert_int_equal(t.count, 5);
	const struct passwd_entry *e = passwd_table_lookup(&t, "jane");
	assert_non_null(e);
	assert_string_equal(e->password, "{PLAIN}pw");
	assert_int_equal(e->fields_count, 4);
	assert_string_equal(passwd_entry_field(e, "user_group"), "staff");
	assert_string_equal(passwd_entry_field(e, "host"), "10.0.0.5");
	assert_string_equal(passwd_entry_field(e, "nologin"), "");
	assert_string_equal(passwd_entry_field(e, "reason"), "Moved");
	assert_null(passwd_entry_field(e, "port"));
	e = passwd_table_lookup(&t, "bob");
	assert_string_equal(e->password, "{SHA256}x");
	assert_int_equal(e->fields_count, 0);
	e = passwd_table_lookup(&t, "carol");
	assert_string_equal(e->password, "");
	e = passwd_table_lookup(&t, "dave");
	assert_string_equal(passwd_entry_field(e, "destuser"), "dave@backend");
	assert_string_equal(passwd_entry_field(e, "director_tag"), "gold");
	/* extra fields may contain ':' */
	e = passwd_table_lookup(&t, "eve");
	assert_string_equal(passwd_entry_field(e, "x"), "a:b");
	assert_null(passwd_table_lookup(&t, "JANE"));
	assert_null(passwd_table_lookup(&t, "nobody"));
	passwd_table_free(&t);

	assert_int_equal(passwd_table_parse(&t, "ok:x\n:nouser\n", 13, &error), -1);
	assert_string_equal(error, "line 2: empty username");
	free(error);
	assert_int_equal(passwd_table_parse(&t, "a:b\0c\n", 6, &error), -1);
	assert_string_equal(error, "line 1: NUL byte");
	free(error);
	/* every prefix of the data parses or fails cleanly */
	for (size_t n = 0; n <= sizeof(data) - 1; n++) {
		if (passwd_table_parse(&t, data, n, &error) == 0)
			passwd_table_free(&t);
		else
			free(error);
	}
}

/* ---- the lookup flow ------------------------------------------------ */

static char tmpdir[] = "/tmp/loft-test-auth-XXXXXX";
static struct event_base *base;
static int results_seen;
static struct {
	uint64_t cookie;
	enum auth_status status;
	char user[64];
	char host[64];
	char reason[64];
	char destuser[64];
	bool unchecked;
	bool busy;
	size_t alt_count;
	uint32_t tag;
} last;

static void on_result(void *ctx, uint64_t cookie, const struct auth_result *r)
{
	assert_ptr_equal(ctx, &results_seen);
	results_seen++;
	last.cookie = cookie;
	last.status = r->status;
	snprintf(last.user, sizeof(last.user), "%s", r->user ? r->user : "");
	snprintf(last.host, sizeof(last.host), "%s", r->host ? r->host : "");
	snprintf(last.reason, sizeof(last.reason), "%s", r->reason ? r->reason : "");
	snprintf(last.destuser, sizeof(last.destuser), "%s", r->destuser ? r->destuser : "");
	last.unchecked = r->password_unchecked;
	last.busy = r->busy;
	last.alt_count = r->alt_count;
	last.tag = r->tag;
}

static int notices_seen;
static enum log_level last_notice_level;
static char last_notice[512];

static void on_notice(void *ctx, enum log_level level, const char *text)
{
	assert_ptr_equal(ctx, &notices_seen);
	notices_seen++;
	last_notice_level = level;
	snprintf(last_notice, sizeof(last_notice), "%s", text);
}

/* Runs the loop until the passdbs have said n things in all. */
static void wait_notices(int n)
{
	while (notices_seen < n)
		event_base_loop(base, EVLOOP_ONCE);
}

static struct config *load(const char *text)
{
	char path[128];
	snprintf(path, sizeof(path), "%s/loft.conf", tmpdir);
	FILE *f = fopen(path, "w");
	fputs(text, f);
	fclose(f);
	char *error = NULL;
	struct config *cfg = config_load(path, NULL, 0, &error);
	if (cfg == NULL)
		fail_msg("%s", error);
	return cfg;
}

static void run_lookup(struct auth *a, uint64_t cookie, const char *user,
		       const char *pw)
{
	int before = results_seen;
	if (pw == NULL)
		auth_lookup_user(a, user, on_result, &results_seen, cookie);
	else
		auth_lookup(a, user, pw, on_result, &results_seen, cookie);
	/* the callback never runs inside auth_lookup() */
	assert_int_equal(results_seen, before);
	while (results_seen == before)
		event_base_loop(base, EVLOOP_ONCE);
	assert_int_equal(last.cookie, cookie);
}

/* Each write gets its own mtime, so a rewrite within one clock tick is
 * still seen as a change. */
static void write_users(const char *text)
{
	static time_t mtime = 1000000000;
	char path[128];
	snprintf(path, sizeof(path), "%s/users", tmpdir);
	FILE *f = fopen(path, "w");
	fputs(text, f);
	fclose(f);
	struct timespec ts[2] = { { mtime, 0 }, { mtime, 0 } };
	mtime++;
	assert_int_equal(utimensat(AT_FDCWD, path, ts, 0), 0);
}

static void test_auth_flow(void **state)
{
	(void)state;
	char conf[1024];
	write_users("jane:{PLAIN}secret::::::user_group=staff host=10.0.0.5\n"
		    "bob:{SHA512-CRYPT}$6$ha28OqyrF2Kpce4x$SCAMSD94oUCHfV0JvQzval8X7pLr7Q.Lls5Z.VI0dI1EmWn2JqHsTK941rez7l0Q1yUOP2kbUZ5MUKfB6Jbqj0\n"
		    "gone:{PLAIN}pw::::::nologin reason=Moved.to.elsewhere\n"
		    "proxied:::::::nopassword destuser=p@backend\n"
		    "broken:{NOSUCH}x\n");
	snprintf(conf, sizeof(conf),
		 "listeners = ( { protocol = \"imap\"; } );\n"
		 "passdb = ( { driver = \"passwd-file\"; path = \"%s/users\"; } );\n"
		 "director = { mail_servers = [ \"127.0.0.11\" ]; };\n", tmpdir);
	struct config *cfg = load(conf);
	char *error = NULL;
	struct auth *a = auth_new(cfg, base, &error);
	assert_non_null(a);
	auth_set_notice_callback(a, on_notice, &notices_seen);

	run_lookup(a, 1, "Jane", "secret");	/* %Lu lower-cases */
	assert_int_equal(last.status, AUTH_STATUS_OK);
	assert_string_equal(last.user, "jane");
	assert_string_equal(last.host, "10.0.0.5");
	assert_int_equal(last.alt_count, 1);
	assert_false(last.unchecked);
	run_lookup(a, 2, "jane", "wrong");
	assert_int_equal(last.status, AUTH_STATUS_FAILED);
	assert_string_equal(last.host, "");	/* no fields leak on failure */
	run_lookup(a, 3, "bob", PW);
	assert_int_equal(last.status, AUTH_STATUS_OK);
	run_lookup(a, 4, "nobody", "x");
	assert_int_equal(last.status, AUTH_STATUS_FAILED);
	/* nologin answers with the reason only after the right password */
	run_lookup(a, 5, "gone", "nope");
	assert_int_equal(last.status, AUTH_STATUS_FAILED);
	run_lookup(a, 6, "gone", "pw");
	assert_int_equal(last.status, AUTH_STATUS_NOLOGIN);
	assert_string_equal(last.reason, "Moved.to.elsewhere");
	run_lookup(a, 7, "proxied", "anything");
	assert_int_equal(last.status, AUTH_STATUS_OK);
	assert_true(last.unchecked);
	assert_string_equal(last.destuser, "p@backend");
	run_lookup(a, 8, "broken", "x");
	assert_int_equal(last.status, AUTH_STATUS_TEMPFAIL);
	/* a user lookup (LMTP) checks no password: fields for a known user,
	 * a failure for an unknown one */
	run_lookup(a, 81, "Jane", NULL);
	assert_int_equal(last.status, AUTH_STATUS_OK);
	assert_string_equal(last.host, "10.0.0.5");
	run_lookup(a, 82, "broken", NULL);
	assert_int_equal(last.status, AUTH_STATUS_OK);
	run_lookup(a, 83, "nobody", NULL);
	assert_int_equal(last.status, AUTH_STATUS_FAILED);

	/* a changed file is read again off the loop: lookups meanwhile use
	 * the users loaded before, and the passdb says when the new ones are
	 * in (to the caller: it logs nothing itself) */
	assert_int_equal(notices_seen, 0);
	write_users("newbie:{PLAIN}n\n");
	run_lookup(a, 9, "jane", "secret");
	assert_int_equal(last.status, AUTH_STATUS_OK);
	wait_notices(1);
	assert_int_equal(last_notice_level, LOG_LEVEL_INFO);
	assert_non_null(strstr(last_notice, "/users reloaded: 1 users"));
	run_lookup(a, 10, "newbie", "n");
	assert_int_equal(last.status, AUTH_STATUS_OK);
	run_lookup(a, 11, "jane", "secret");
	assert_int_equal(last.status, AUTH_STATUS_FAILED);
	/* a broken one keeps the old users, once said */
	write_users("newbie:{PLAIN}n\n:broken line\n");
	run_lookup(a, 12, "newbie", "n");
	assert_int_equal(last.status, AUTH_STATUS_OK);
	wait_notices(2);
	assert_int_equal(last_notice_level, LOG_LEVEL_ERROR);
	assert_non_null(strstr(last_notice, "keeping the loaded users"));
	assert_non_null(strstr(last_notice, "line 2: empty username"));
	run_lookup(a, 13, "newbie", "n");
	assert_int_equal(last.status, AUTH_STATUS_OK);
	assert_int_equal(notices_seen, 2);

	/* lookups pending at shutdown are answered, not lost; a reload in
	 * flight is dropped */
	write_users("late:{PLAIN}l\n");
	int before = results_seen;
	auth_lookup(a, "newbie", "n", on_result, &results_seen, 14);
	auth_free(&a);
	assert_int_equal(results_seen, before + 1);
	config_free(&cfg);
}

/* ---- the auth cache in the flow (auth_cache.h) --------------------- */

static struct auth_cache_stats cache_stats(struct auth *a)
{
	struct auth_cache_stats st;
	auth_get_cache_stats(a, &st);
	return st;
}

/* Rewrites the users file and waits until the passdb has read it (a
 * lookup of a user the cache cannot answer starts the reload). */
static void write_users_loaded(struct auth *a, const char *text)
{
	static int n;
	char user[32];
	int before = notices_seen;
	write_users(text);
	/* a new name each time: a negative entry would answer an old one */
	snprintf(user, sizeof(user), "reload-trigger-%d", n++);
	run_lookup(a, 900, user, "x");
	wait_notices(before + 1);
}

static struct auth *cache_auth_new(struct config **cfg_r, const char *cache,
				   const char *more_passdbs)
{
	char conf[1024];
	snprintf(conf, sizeof(conf),
		 "listeners = ( { protocol = \"imap\"; } );\n"
		 "auth = { cache = { %s }; };\n"
		 "passdb = ( { driver = \"passwd-file\"; path = \"%s/users\"; }%s );\n"
		 "director = { mail_servers = [ \"127.0.0.11\" ]; };\n",
		 cache, tmpdir, more_passdbs);
	*cfg_r = load(conf);
	char *error = NULL;
	struct auth *a = auth_new(*cfg_r, base, &error);
	assert_non_null(a);
	notices_seen = 0;
	auth_set_notice_callback(a, on_notice, &notices_seen);
	return a;
}

static void test_auth_cache_flow(void **state)
{
	(void)state;
	struct config *cfg;
	write_users("jane:{PLAIN}secret::::::host=10.0.0.5 user_group=staff\n"
		    "gone:{PLAIN}pw::::::nologin reason=Moved.\n");
	struct auth *a = cache_auth_new(&cfg, "size = \"1M\";", "");

	/* a miss, then a hit with the passdb's fields */
	run_lookup(a, 1, "Jane", "secret");
	assert_int_equal(last.status, AUTH_STATUS_OK);
	assert_int_equal(cache_stats(a).misses, 1);
	run_lookup(a, 2, "jane", "secret");
	assert_int_equal(last.status, AUTH_STATUS_OK);
	assert_string_equal(last.host, "10.0.0.5");
	assert_int_equal(last.alt_count, 1);
	assert_int_equal(cache_stats(a).hits, 1);
	/* a wrong password goes to the passdb, which says no; the entry stays
	 * and no negative one is made for a user who exists */
	run_lookup(a, 3, "jane", "wrong");
	assert_int_equal(last.status, AUTH_STATUS_FAILED);
	assert_int_equal(cache_stats(a).entries, 1);
	run_lookup(a, 4, "jane", "secret");
	assert_int_equal(cache_stats(a).hits, 2);
	/* nologin is cached as the passdb said it, with its reason */
	run_lookup(a, 5, "gone", "pw");
	run_lookup(a, 6, "gone", "pw");
	assert_int_equal(last.status, AUTH_STATUS_NOLOGIN);
	assert_string_equal(last.reason, "Moved.");
	assert_int_equal(cache_stats(a).hits, 3);
	/* a user lookup (LMTP) is answered by a positive entry too */
	run_lookup(a, 7, "jane", NULL);
	assert_int_equal(last.status, AUTH_STATUS_OK);
	assert_int_equal(cache_stats(a).hits, 4);

	/* a changed password works at once; then the old one fails */
	write_users_loaded(a, "jane:{PLAIN}new::::::host=10.0.0.6\n");
	run_lookup(a, 8, "jane", "new");
	assert_int_equal(last.status, AUTH_STATUS_OK);
	assert_string_equal(last.host, "10.0.0.6");
	run_lookup(a, 9, "jane", "secret");
	assert_int_equal(last.status, AUTH_STATUS_FAILED);

	/* an unknown user is remembered: it stays unknown until flushed */
	run_lookup(a, 10, "ghost", "g");
	assert_int_equal(last.status, AUTH_STATUS_FAILED);
	write_users_loaded(a, "jane:{PLAIN}new\nghost:{PLAIN}g\n");
	run_lookup(a, 11, "ghost", "g");
	assert_int_equal(last.status, AUTH_STATUS_FAILED);
	assert_int_equal(cache_stats(a).negative_hits, 1);
	/* flushing one user, by the name a login gives */
	assert_int_equal(auth_flush_cache(a, (const char *const[]){ "GHOST" }, 1), 1);
	run_lookup(a, 12, "ghost", "g");
	assert_int_equal(last.status, AUTH_STATUS_OK);
	/* and all of them */
	uint64_t entries = cache_stats(a).entries;
	assert_true(entries >= 2);
	assert_int_equal(auth_flush_cache(a, NULL, 0), entries);
	assert_int_equal(cache_stats(a).entries, 0);

	/* a reload that sets the size to 0 drops the cache */
	run_lookup(a, 13, "ghost", "g");
	char conf[512];
	snprintf(conf, sizeof(conf), "listeners = ( { protocol = \"imap\"; } );\n"
		 "passdb = ( { driver = \"passwd-file\"; path = \"%s/users\"; } );\n"
		 "director = { mail_servers = [ \"127.0.0.11\" ]; };\n", tmpdir);
	struct config *off = load(conf);
	auth_apply_config(a, off);
	assert_int_equal(cache_stats(a).entries, 0);
	run_lookup(a, 14, "ghost", "g");
	assert_int_equal(last.status, AUTH_STATUS_OK);
	assert_int_equal(cache_stats(a).hits, 0);
	config_free(&off);
	auth_free(&a);
	config_free(&cfg);
}

/* The passdbs fail: an LDAP passdb nobody listens for comes after the
 * file, so a user the file does not know makes them fail. */
static void test_auth_cache_passdb_down(void **state)
{
	(void)state;
	struct config *cfg;
	write_users("jane:{PLAIN}secret::::::host=10.0.0.5\n");
	struct auth *a = cache_auth_new(&cfg, "size = \"1M\"; ttl = \"1s\";",
		", { driver = \"ldap\"; uris = [ \"ldap://127.0.0.1:1\" ]; timeout = \"1s\"; }");
	run_lookup(a, 1, "jane", "secret");
	assert_int_equal(last.status, AUTH_STATUS_OK);
	write_users_loaded(a, "zed:{PLAIN}z\n");
	/* no entry: a temporary failure */
	run_lookup(a, 2, "nobody", "x");
	assert_int_equal(last.status, AUTH_STATUS_TEMPFAIL);
	/* jane's entry answers while fresh, and once expired too */
	uint64_t deadline = clock_monotonic_ms() + 10000;
	while (cache_stats(a).expired_hits == 0) {
		assert_true(clock_monotonic_ms() < deadline);
		run_lookup(a, 3, "jane", "secret");
		assert_int_equal(last.status, AUTH_STATUS_OK);
		assert_string_equal(last.host, "10.0.0.5");
		usleep(50000);
	}
	assert_int_equal(last_notice_level, LOG_LEVEL_WARNING);
	assert_non_null(strstr(last_notice, "answered from the auth cache"));
	/* but only with its password */
	run_lookup(a, 4, "jane", "wrong");
	assert_int_equal(last.status, AUTH_STATUS_TEMPFAIL);
	/* flushed, jane fails temporarily like any user without an entry */
	assert_int_equal(auth_flush_cache(a, (const char *const[]){ "jane" }, 1), 1);
	run_lookup(a, 5, "jane", "secret");
	assert_int_equal(last.status, AUTH_STATUS_TEMPFAIL);
	auth_free(&a);
	config_free(&cfg);
}

/* ---- the queue: bound, cancel, abort ------------------------------- */

struct blocking_job {
	struct worker_job base;
	int *gate;		/* the work waits until *gate != 0 */
	int *done_count;
};

static void blocking_work(struct worker_job *job)
{
	struct blocking_job *b = (struct blocking_job *)job;
	while (!__atomic_load_n(b->gate, __ATOMIC_ACQUIRE))
		usleep(1000);
}

static void blocking_done(struct worker_job *job)
{
	struct blocking_job *b = (struct blocking_job *)job;
	(*b->done_count)++;
}

/* A job no thread took can be taken back; one running cannot. */
/* A passdb that answers at once (passdb "backend") still answers after
 * auth_lookup() has returned; auth_run_completed() gives that answer
 * without waiting for the loop's turn to end, once, and the loop then
 * has nothing left to give. */
static void test_auth_run_completed(void **state)
{
	(void)state;
	struct config *cfg = load("listeners = ( { protocol = \"imap\"; } );\n"
				  "passdb = ( { driver = \"backend\"; } );\n"
				  "director = { mail_servers = [ \"127.0.0.11\" ]; };\n");
	char *error = NULL;
	struct auth *a = auth_new(cfg, base, &error);
	assert_non_null(a);
	int before = results_seen;
	auth_lookup(a, "jane", "secret", on_result, &results_seen, 31);
	/* several requests under one cookie tell their answers by tag (an
	 * LMTP session's recipients) */
	const struct auth_request_params params = {
		.user = "bob", .callback = on_result, .ctx = &results_seen,
		.cookie = 32, .tag = 7,
	};
	(void)auth_request_start(a, &params);
	assert_int_equal(results_seen, before);
	auth_run_completed(a);
	assert_int_equal(results_seen, before + 2);
	assert_int_equal(last.cookie, 32);
	assert_int_equal(last.tag, 7);
	assert_string_equal(last.user, "bob");
	assert_int_equal(last.status, AUTH_STATUS_OK);
	assert_true(last.unchecked);
	auth_run_completed(a);
	event_base_loop(base, EVLOOP_NONBLOCK);
	assert_int_equal(results_seen, before + 2);
	auth_free(&a);
	config_unref(&cfg);
}

static void test_worker_cancel(void **state)
{
	(void)state;
	struct worker_pool *pool = worker_pool_new(base, 1);
	int gate = 0, done = 0;
	struct blocking_job jobs[3];
	for (size_t i = 0; i < ARRAY_SIZE(jobs); i++) {
		jobs[i] = (struct blocking_job){ .gate = &gate, .done_count = &done };
		jobs[i].base.work = blocking_work;
		jobs[i].base.done = blocking_done;
		worker_pool_submit(pool, &jobs[i].base);
	}
	/* the thread takes the first and blocks on it (10 s at most) */
	for (int i = 0; __atomic_load_n(&jobs[0].base.queued, __ATOMIC_ACQUIRE); i++) {
		assert_true(i < 10000);
		usleep(1000);
	}
	assert_int_equal(worker_pool_pending(pool), 3);
	assert_true(worker_pool_cancel(pool, &jobs[1].base));
	assert_false(worker_pool_cancel(pool, &jobs[1].base));
	assert_false(worker_pool_cancel(pool, &jobs[0].base));
	assert_int_equal(worker_pool_pending(pool), 2);
	__atomic_store_n(&gate, 1, __ATOMIC_RELEASE);
	while (done < 2)
		event_base_loop(base, EVLOOP_ONCE);
	assert_int_equal(worker_pool_pending(pool), 0);
	assert_false(worker_pool_cancel(pool, &jobs[2].base));	/* finished */
	worker_pool_free(&pool);
	assert_int_equal(done, 2);	/* never the cancelled one's */
}

static void test_auth_queue(void **state)
{
	(void)state;
	char conf[1024], users[512];
	/* a hash that takes a while, made here */
	struct crypt_data cd = { 0 };
	const char *slow = crypt_r("pw", "$6$rounds=400000$abcdefghijklmnop$", &cd);
	assert_non_null(slow);
	snprintf(users, sizeof(users), "slow:{CRYPT}%s\njane:{PLAIN}secret\n", slow);
	write_users(users);
	snprintf(conf, sizeof(conf),
		 "listeners = ( { protocol = \"imap\"; } );\n"
		 "passdb = ( { driver = \"passwd-file\"; path = \"%s/users\"; } );\n"
		 "auth = { workers = 1; max_queue = 2; };\n"
		 "director = { mail_servers = [ \"127.0.0.11\" ]; };\n", tmpdir);
	struct config *cfg = load(conf);
	char *error = NULL;
	struct auth *a = auth_new(cfg, base, &error);
	assert_non_null(a);
	auth_set_notice_callback(a, on_notice, &notices_seen);
	struct penalty *p = penalty_new();
	auth_set_penalty(a, p);
	struct ipaddr ip;
	ipaddr_parse("192.0.2.9", &ip);
	struct auth_request_params params = {
		.user = "slow", .password = "pw", .callback = on_result,
		.ctx = &results_seen, .client_ip = &ip,
	};
	int notices = notices_seen, results = results_seen;

	/* two jobs fill the queue: the third login gets a tempfail at once */
	params.cookie = 1;
	(void)auth_request_start(a, &params);	/* answered: no handle kept */
	params.cookie = 2;
	struct auth_request *r2 = auth_request_start(a, &params);
	run_lookup(a, 3, "jane", "secret");
	assert_int_equal(last.status, AUTH_STATUS_TEMPFAIL);
	assert_true(last.busy);
	assert_int_equal(results_seen, results + 1);
	/* the second leaves: taken out of the queue, never answered */
	auth_request_abort(a, &r2);
	assert_null(r2);
	assert_int_equal(notices_seen, notices + 1);
	assert_non_null(strstr(last_notice, "slow: verification cancelled"));
	while (results_seen < results + 2)
		event_base_loop(base, EVLOOP_ONCE);
	assert_int_equal(last.cookie, 1);
	assert_int_equal(last.status, AUTH_STATUS_OK);
	/* room again */
	run_lookup(a, 4, "jane", "secret");
	assert_int_equal(last.status, AUTH_STATUS_OK);

	/* a failure whose caller left still raises the address's penalty */
	params.user = "nobody";
	params.cookie = 5;
	struct auth_request *r5 = auth_request_start(a, &params);
	auth_request_abort(a, &r5);
	wait_notices(notices + 2);
	assert_non_null(strstr(last_notice, "verdict dropped, failure penalty raised"));
	assert_int_equal(penalty_delay_ms(p, &ip, time(NULL)), 4000);
	assert_int_equal(results_seen, results + 3);

	/* a slow one left at any time: never answered, and freed (ASan) */
	params.user = "slow";
	params.cookie = 6;
	struct auth_request *r6 = auth_request_start(a, &params);
	auth_request_abort(a, &r6);
	wait_notices(notices + 3);
	assert_int_equal(results_seen, results + 3);
	/* and one still queued when auth stops */
	params.cookie = 7;
	struct auth_request *r7 = auth_request_start(a, &params);
	params.cookie = 8;
	struct auth_request *r8 = auth_request_start(a, &params);
	auth_request_abort(a, &r8);
	auth_request_abort(a, &r7);
	auth_free(&a);
	assert_int_equal(results_seen, results + 3);
	penalty_free(&p);
	config_free(&cfg);
}

static void test_auth_chain(void **state)
{
	(void)state;
	char conf[1024];
	write_users("jane:{PLAIN}secret\n");
	/* passwd-file first, then the backend decides for everyone else */
	snprintf(conf, sizeof(conf),
		 "listeners = ( { protocol = \"imap\"; } );\n"
		 "passdb = ( { driver = \"passwd-file\"; path = \"%s/users\"; },\n"
		 "           { driver = \"backend\"; } );\n"
		 "auth = { username_format = \"%%u\"; };\n"
		 "director = { mail_servers = [ \"127.0.0.11\" ]; };\n", tmpdir);
	struct config *cfg = load(conf);
	char *error = NULL;
	struct auth *a = auth_new(cfg, base, &error);
	run_lookup(a, 1, "jane", "secret");
	assert_int_equal(last.status, AUTH_STATUS_OK);
	assert_false(last.unchecked);
	run_lookup(a, 2, "Other", "x");
	assert_int_equal(last.status, AUTH_STATUS_OK);
	assert_string_equal(last.user, "Other");
	assert_true(last.unchecked);
	auth_free(&a);
	config_free(&cfg);

	/* a passdb that cannot start is a start-up error with its source */
	snprintf(conf, sizeof(conf),
		 "listeners = ( { protocol = \"imap\"; } );\n"
		 "passdb = ( { driver = \"passwd-file\"; path = \"%s/missing\"; } );\n"
		 "director = { mail_servers = [ \"127.0.0.11\" ]; };\n", tmpdir);
	cfg = load(conf);
	assert_null(auth_new(cfg, base, &error));
	assert_non_null(strstr(error, "loft.conf:2: passdb passwd-file: open("));
	free(error);
	config_free(&cfg);
}

/* A master login's request asks the master passdbs only; every other
 * request asks all but them (Dovecot's master = yes). */
static void run_master_lookup(struct auth *a, uint64_t cookie, const char *user,
			      const char *pw)
{
	int before = results_seen;
	const struct auth_request_params params = {
		.user = user, .password = pw, .callback = on_result, .ctx = &results_seen,
		.cookie = cookie, .master = true,
	};
	(void)auth_request_start(a, &params);
	while (results_seen == before)
		event_base_loop(base, EVLOOP_ONCE);
	assert_int_equal(last.cookie, cookie);
}

static void test_auth_master_passdbs(void **state)
{
	(void)state;
	char conf[1024], masters[128];
	write_users("jane:{PLAIN}secret\n");
	snprintf(masters, sizeof(masters), "%s/masters", tmpdir);
	FILE *f = fopen(masters, "w");
	fputs("boss:{PLAIN}master\njane:{PLAIN}other\n", f);
	fclose(f);
	snprintf(conf, sizeof(conf),
		 "listeners = ( { protocol = \"imap\"; } );\n"
		 "passdb = ( { driver = \"passwd-file\"; path = \"%s\"; master = true; },\n"
		 "           { driver = \"passwd-file\"; path = \"%s/users\"; } );\n"
		 "auth = { username_format = \"%%u\"; };\n"
		 "director = { mail_servers = [ \"127.0.0.11\" ]; };\n", masters, tmpdir);
	struct config *cfg = load(conf);
	char *error = NULL;
	struct auth *a = auth_new(cfg, base, &error);
	run_master_lookup(a, 1, "boss", "master");
	assert_int_equal(last.status, AUTH_STATUS_OK);
	/* the master passdb's jane, not the users' */
	run_master_lookup(a, 2, "jane", "other");
	assert_int_equal(last.status, AUTH_STATUS_OK);
	run_master_lookup(a, 3, "jane", "secret");
	assert_int_equal(last.status, AUTH_STATUS_FAILED);
	/* other requests never ask the master passdb */
	run_lookup(a, 4, "boss", "master");
	assert_int_equal(last.status, AUTH_STATUS_FAILED);
	run_lookup(a, 5, "jane", "secret");
	assert_int_equal(last.status, AUTH_STATUS_OK);
	run_lookup(a, 6, "jane", "other");
	assert_int_equal(last.status, AUTH_STATUS_FAILED);
	run_lookup(a, 7, "boss", NULL);
	assert_int_equal(last.status, AUTH_STATUS_FAILED);
	auth_free(&a);
	config_free(&cfg);

	/* with the auth cache: a master's check is never kept, so it cannot
	 * answer a login of a user of the same name */
	snprintf(conf, sizeof(conf),
		 "listeners = ( { protocol = \"imap\"; } );\n"
		 "passdb = ( { driver = \"passwd-file\"; path = \"%s\"; master = true; },\n"
		 "           { driver = \"passwd-file\"; path = \"%s/users\"; } );\n"
		 "auth = { username_format = \"%%u\"; cache = { size = \"1M\"; }; };\n"
		 "director = { mail_servers = [ \"127.0.0.11\" ]; };\n", masters, tmpdir);
	cfg = load(conf);
	a = auth_new(cfg, base, &error);
	run_master_lookup(a, 8, "jane", "other");
	assert_int_equal(last.status, AUTH_STATUS_OK);
	run_lookup(a, 9, "jane", "other");
	assert_int_equal(last.status, AUTH_STATUS_FAILED);
	run_lookup(a, 10, "jane", "secret");
	assert_int_equal(last.status, AUTH_STATUS_OK);
	/* and a user's cached login answers no master's check */
	run_master_lookup(a, 11, "jane", "secret");
	assert_int_equal(last.status, AUTH_STATUS_FAILED);
	auth_free(&a);
	config_free(&cfg);
}

/* §6.3: 4 s, 8 s, then 15 s; no escalation for a repeated password;
 * decay after 15 s; reset on success; IPv6 per /48; records go after 29 s. */
static void test_penalty(void **state)
{
	(void)state;
	struct penalty *p = penalty_new();
	struct ipaddr a, b, v6a, v6b;
	ipaddr_parse("192.0.2.1", &a);
	ipaddr_parse("192.0.2.2", &b);
	ipaddr_parse("2001:db8:1:2::1", &v6a);
	ipaddr_parse("2001:db8:1:ffff::9", &v6b);

	assert_int_equal(penalty_delay_ms(p, &a, 100), 0);
	penalty_failure(p, &a, "jane", "x1", 100);
	assert_int_equal(penalty_delay_ms(p, &a, 100), 4000);
	assert_int_equal(penalty_delay_ms(p, &b, 100), 0);	/* per address */
	penalty_failure(p, &a, "jane", "x2", 101);
	assert_int_equal(penalty_delay_ms(p, &a, 101), 8000);
	/* the same wrong password again does not escalate */
	penalty_failure(p, &a, "jane", "x2", 102);
	assert_int_equal(penalty_delay_ms(p, &a, 102), 8000);
	penalty_failure(p, &a, "john", "x2", 103);	/* another user: new */
	assert_int_equal(penalty_delay_ms(p, &a, 103), 15000);
	penalty_failure(p, &a, "jane", "x4", 104);
	penalty_failure(p, &a, "jane", "x5", 105);
	assert_int_equal(penalty_delay_ms(p, &a, 105), 15000);	/* capped */
	/* 15 s after the last increase it no longer counts */
	assert_int_equal(penalty_delay_ms(p, &a, 119), 15000);
	assert_int_equal(penalty_delay_ms(p, &a, 120), 0);
	/* a success resets it */
	penalty_failure(p, &b, "bob", "y", 200);
	assert_int_equal(penalty_delay_ms(p, &b, 200), 4000);
	penalty_success(p, &b, 201);
	assert_int_equal(penalty_delay_ms(p, &b, 201), 0);
	/* IPv6 counts per /48 */
	penalty_failure(p, &v6a, "jane", "z", 300);
	assert_int_equal(penalty_delay_ms(p, &v6b, 300), 4000);
	/* records go 29 s after their last change */
	assert_int_equal(penalty_expire(p, 328), 1);	/* the v6 one stays */
	assert_int_equal(penalty_expire(p, 329), 0);
	assert_int_equal(penalty_delay_ms(p, &v6a, 329), 0);
	penalty_free(&p);
	assert_null(p);
}

static unsigned int raised_count;
static void count_raised(void *ctx, const struct ipaddr *ip)
{
	(void)ctx;
	(void)ip;
	raised_count++;
}

/* Across a ring (doc/ring.md §15): only a raise is told, and what other
 * nodes tell raises the penalty here. */
static void test_penalty_shared(void **state)
{
	(void)state;
	struct penalty *p = penalty_new();
	struct ipaddr a;
	ipaddr_parse("192.0.2.1", &a);
	penalty_set_raised_hook(p, count_raised, NULL);
	raised_count = 0;
	assert_true(penalty_failure(p, &a, "jane", "x1", 100));
	assert_false(penalty_failure(p, &a, "jane", "x1", 101));	/* the same again */
	assert_int_equal(raised_count, 1);
	penalty_failure_remote(p, &a, 2, 102);
	assert_int_equal(penalty_delay_ms(p, &a, 102), 15000);	/* 1 + 2: 16 s, capped */
	assert_int_equal(raised_count, 1);	/* not told back */
	struct ipaddr b;
	ipaddr_parse("192.0.2.2", &b);
	penalty_failure_remote(p, &b, 1, 200);
	assert_int_equal(penalty_delay_ms(p, &b, 200), 4000);
	penalty_free(&p);
}

static int setup(void **state)
{
	(void)state;
	base = event_base_new();
	return mkdtemp(tmpdir) == NULL ? -1 : 0;
}

static int teardown(void **state)
{
	(void)state;
	event_base_free(base);
	char cmd[300];
	snprintf(cmd, sizeof(cmd), "rm -rf '%s'", tmpdir);
	return system(cmd) == 0 ? 0 : -1;
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_password_schemes),
		cmocka_unit_test(test_passwd_file_parse),
		cmocka_unit_test(test_auth_flow),
		cmocka_unit_test(test_auth_cache_flow),
		cmocka_unit_test(test_auth_cache_passdb_down),
		cmocka_unit_test(test_auth_run_completed),
		cmocka_unit_test(test_worker_cancel),
		cmocka_unit_test(test_auth_queue),
		cmocka_unit_test(test_auth_chain),
		cmocka_unit_test(test_auth_master_passdbs),
		cmocka_unit_test(test_penalty_shared),
		cmocka_unit_test(test_penalty),
	};
	return cmocka_run_group_tests_name("auth", tests, setup, teardown);
}
