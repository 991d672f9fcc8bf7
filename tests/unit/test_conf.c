/* Unit tests for src/conf: loading, defaults, errors with file:line,
 * overrides, and that -n output loads back to the same configuration. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <cmocka.h>

#include "conf/config.h"
#include "common/xmalloc.h"

static char tmpdir[] = "/tmp/loft-test-conf-XXXXXX";

static const char *write_conf(const char *name, const char *text)
{
	static char path[256];
	snprintf(path, sizeof(path), "%s/%s", tmpdir, name);
	FILE *f = fopen(path, "w");
	assert_non_null(f);
	fputs(text, f);
	fclose(f);
	return path;
}

#define MINIMAL \
	"listeners = ( { protocol = \"imap\"; address = \"127.0.0.1\"; port = 10143; } );\n" \
	"passdb = ( { driver = \"backend\"; } );\n" \
	"director = { mail_servers = [ \"127.0.0.11\" ]; };\n"

static void test_issue_shape(void **state)
{
	(void)state;
	const char *path = write_conf("shape.conf",
		"base_dir = \"/run/loft\";\n"
		"listeners = (\n"
		"  { protocol = \"imap\"; address = \"127.0.0.1\"; port = 10143; },\n"
		"  { protocol = \"imap\"; address = \"127.0.0.1\"; port = 10993; tls = true; }\n"
		");\n"
		"tls = { cert = \"/etc/loft/cert.pem\"; key = \"/etc/loft/key.pem\"; };\n"
		"login = { trusted_networks = [ \"127.0.0.0/8\" ]; disable_plaintext_auth = false; timeout = \"60s\"; };\n"
		"passdb = ( { driver = \"passwd-file\"; path = \"/etc/loft/users\"; } );\n"
		"director = { mail_servers = [ \"127.0.0.11\", \"127.0.0.12\", \"127.0.0.13@tag1\" ];\n"
		"             user_expire = \"15m\"; username_hash = \"%Lu\"; };\n"
		"backend = { imap_port = 143; pop3_port = 110; lmtp_port = 24; ssl = \"no\"; };\n");
	char *error = NULL;
	struct config *cfg = config_load(path, NULL, 0, &error);
	assert_null(error);
	assert_non_null(cfg);
	assert_string_equal(cfg->base_dir, "/run/loft");
	assert_int_equal(cfg->listeners_count, 2);
	assert_int_equal(cfg->listeners[1].port, 10993);
	assert_true(cfg->listeners[1].tls);
	assert_false(cfg->listeners[0].tls);
	assert_int_equal(cfg->login.trusted_networks.count, 1);
	assert_int_equal(cfg->login.trusted_networks.items[0].bits, 8);
	assert_false(cfg->login.disable_plaintext_auth);
	assert_int_equal(cfg->login.timeout_ms, 60000);
	assert_int_equal(cfg->passdbs_count, 1);
	assert_int_equal(cfg->passdbs[0].driver, CONF_PASSDB_PASSWD_FILE);
	assert_string_equal(cfg->passdbs[0].path, "/etc/loft/users");
	assert_string_equal(cfg->passdbs[0].scheme, "CRYPT");
	assert_int_equal(cfg->director.mail_servers.count, 3);
	assert_string_equal(cfg->director.mail_servers.items[2], "127.0.0.13@tag1");
	assert_int_equal(cfg->director.user_expire_ms, 900000);
	assert_int_equal(cfg->backend.ssl, CONF_BACKEND_SSL_NO);
	assert_int_equal(cfg->backend.imap_port, 143);
	assert_true(cfg->backend.ssl_verify);
	/* where keys came from, for later error messages */
	const char *src = config_source(cfg, "director.mail_servers");
	if (strstr(src, "shape.conf:9") == NULL)
		fail_msg("source %s", src);
	config_free(&cfg);
	assert_null(cfg);
}

static void test_defaults(void **state)
{
	(void)state;
	char *error = NULL;
	struct config *cfg = config_load(write_conf("min.conf", MINIMAL), NULL, 0, &error);
	assert_non_null(cfg);
	assert_string_equal(cfg->base_dir, "/run/loft");
	assert_true(cfg->login.disable_plaintext_auth);
	/* room for a tag and AUTHENTICATE before an 8 KiB SASL response */
	assert_int_equal(cfg->login.max_line_length, 9216);
	assert_int_equal(cfg->login.max_literal_size, 8192);
	assert_int_equal(cfg->login.max_bad_commands, 3);
	assert_int_equal(cfg->auth.workers, 2);
	assert_string_equal(cfg->director.username_hash, "%Lu");
	assert_int_equal(cfg->backend.connect_timeout_ms, 30000);
	assert_int_equal(cfg->backend.max_reconnects, 3);
	assert_null(cfg->tls.cert);
	struct config_listener l = { .protocol = CONF_PROTOCOL_IMAP, .port = 0 };
	assert_int_equal(config_listener_port(&l), 143);
	l.tls = true;
	assert_int_equal(config_listener_port(&l), 993);
	l = (struct config_listener){ .protocol = CONF_PROTOCOL_LMTP };
	assert_int_equal(config_listener_port(&l), 24);
	assert_int_equal(cfg->lmtp.max_message_size, 50 * 1024 * 1024);
	assert_int_equal(cfg->lmtp.proxy_timeout_ms, 125000);
	assert_int_equal(cfg->backend.lmtp_port, 24);
	config_free(&cfg);
}

static void expect_error(const char *text, const char *needle)
{
	char *error = NULL;
	struct config *cfg = config_load(write_conf("bad.conf", text), NULL, 0, &error);
	assert_null(cfg);
	assert_non_null(error);
	if (strstr(error, needle) == NULL)
		fail_msg("error '%s' does not contain '%s'", error, needle);
	free(error);
}

static void test_errors(void **state)
{
	(void)state;
	expect_error(MINIMAL "login = { timeout = \"soon\"; };\n",
		     "bad.conf:4: login.timeout: 'soon': expected a duration");
	expect_error(MINIMAL "auth = { passthrough_mechanisms = [ \"scram-sha-1\", "
		     "\"PLAIN\" ]; };\n", "bad.conf:4: auth.passthrough_mechanisms: unknown "
		     "mechanism \"PLAIN\"");
	expect_error(MINIMAL "login = { timout = \"5s\"; };\n",
		     "bad.conf:4: unknown setting 'login.timout'");
	expect_error(MINIMAL "login = { trusted_networks = [ \"10.0.0.0/40\" ]; };\n",
		     "bad.conf:4: login.trusted_networks: '10.0.0.0/40'");
	expect_error(MINIMAL "backend = { ssl = \"maybe\"; };\n",
		     "backend.ssl: 'maybe': not one of the allowed values");
	expect_error(MINIMAL "lmtp = { max_message_size = \"10\"; };\n",
		     "bad.conf:4: lmtp.max_message_size");
	expect_error(MINIMAL "login = { max_bad_commands = 0; };\n",
		     "login.max_bad_commands: '0': value out of range");
	expect_error("listeners = ( { protocol = \"imap\"; } );\n"
		     "passdb = ( { driver = \"backend\"; } );\n"
		     "director = { mail_servers = [ \"127.0.0.11\" ];\n"
		     "  user_expire = \"5s\"; };\n",
		     "bad.conf:4: director.user_expire: '5s': value out of range");
	expect_error("listeners = ( { protocol = \"imap\"; } ;\n",
		     "bad.conf:1: syntax error");
	expect_error("passdb = ( { driver = \"backend\"; } );\n"
		     "director = { mail_servers = [ \"127.0.0.11\" ]; };\n",
		     "listeners: at least one listener is needed");
	expect_error("listeners = ( { address = \"127.0.0.1\"; } );\n"
		     "passdb = ( { driver = \"backend\"; } );\n"
		     "director = { mail_servers = [ \"127.0.0.11\" ]; };\n",
		     "bad.conf:1: listeners[0].protocol: missing");
	expect_error("listeners = ( { protocol = \"imap\"; tls = true; } );\n"
		     "passdb = ( { driver = \"backend\"; } );\n"
		     "director = { mail_servers = [ \"127.0.0.11\" ]; };\n",
		     "a TLS listener needs tls.cert and tls.key");
	expect_error("listeners = ( { protocol = \"lmtp\"; tls = true; } );\n"
		     "passdb = ( { driver = \"backend\"; } );\n"
		     "director = { mail_servers = [ \"127.0.0.11\" ]; };\n",
		     "bad.conf:1: tls: LMTP listeners are plain TCP (tls = false)");
	expect_error("listeners = ( { protocol = \"imap\"; },\n"
		     "  { protocol = \"imap\"; port = 143; } );\n"
		     "passdb = ( { driver = \"backend\"; } );\n"
		     "director = { mail_servers = [ \"127.0.0.11\" ]; };\n",
		     "bad.conf:2: port: 0.0.0.0 port 143 is already used");
	expect_error("listeners = ( { protocol = \"pop5\"; } );\n",
		     "listeners[0].protocol: 'pop5': not one of the allowed values");
	expect_error("listeners = ( { protocol = \"imap\"; } );\n"
		     "passdb = ( { driver = \"passwd-file\"; } );\n"
		     "director = { mail_servers = [ \"127.0.0.11\" ]; };\n",
		     "bad.conf:2: path: the passwd-file driver needs a path");
	expect_error("listeners = ( { protocol = \"imap\"; } );\n"
		     "passdb = ( { driver = \"backend\"; } );\n"
		     "director = { mail_servers = [ \"127.0.0.11\" ]; username_hash = \"%x\"; };\n",
		     "director.username_hash: '%x': unknown variable");
	expect_error(MINIMAL "base_dir = 5;\n", "base_dir: expected a string");
	expect_error(MINIMAL "log = { level = true; };\n", "log.level: expected a string");
	/* the links between a ring's nodes (doc/ring.md §14) */
	expect_error(MINIMAL "ring = { secret = \"short\"; };\n",
		     "ring.secret: too short: at least 16 characters");
	expect_error(MINIMAL "ring = { tls_cert = \"/c.pem\"; tls_key = \"/k.pem\"; };\n",
		     "ring: tls_cert, tls_key and tls_ca_file must be set together");
	expect_error(MINIMAL "ring = { peer_timeout = \"10ms\"; };\n", "ring.peer_timeout");
	/* failsafe mode (doc/ring.md §13) */
	expect_error(MINIMAL "ring = { partition = \"failsafe\"; secret = \"0123456789abcdef\";"
		     " failsafe_confirm = \"5s\"; failsafe_bind = \"5s\"; };\n",
		     "ring.failsafe_bind: must exceed failsafe_confirm");
	char *error = NULL;
	assert_null(config_load("/nonexistent/loft.conf", NULL, 0, &error));
	assert_string_equal(error, "/nonexistent/loft.conf: cannot read the file");
	free(error);
}

static void test_overrides(void **state)
{
	(void)state;
	struct config_override o[] = {
		{ "login.timeout", "30s" },
		{ "base_dir", "/tmp/x" },
		{ "login.trusted_networks", "10.0.0.0/8, 192.168.0.0/16" },
	};
	char *error = NULL;
	struct config *cfg = config_load(write_conf("o.conf", MINIMAL), o, 3, &error);
	assert_non_null(cfg);
	assert_int_equal(cfg->login.timeout_ms, 30000);
	assert_string_equal(cfg->base_dir, "/tmp/x");
	assert_int_equal(cfg->login.trusted_networks.count, 2);
	config_free(&cfg);
	struct config_override bad[] = { { "login.nope", "1" } };
	assert_null(config_load(write_conf("o.conf", MINIMAL), bad, 1, &error));
	assert_string_equal(error, "-o login.nope: unknown or non-scalar setting");
	free(error);
	struct config_override bad2[] = { { "login.timeout", "x" } };
	assert_null(config_load(write_conf("o.conf", MINIMAL), bad2, 1, &error));
	assert_non_null(strstr(error, "-o login.timeout: 'x'"));
	free(error);
}

static char *print_to_string(const struct config *cfg)
{
	char *buf = NULL;
	size_t len = 0;
	FILE *f = open_memstream(&buf, &len);
	config_print(cfg, f);
	fclose(f);
	return buf;
}

static void test_print_round_trip(void **state)
{
	(void)state;
	char *error = NULL;
	struct config *cfg = config_load(write_conf("rt.conf", MINIMAL
		"login = { trusted_networks = [ \"127.0.0.0/8\", \"::1\" ]; greeting = \"say \\\"hi\\\"\"; };\n"
		"backend = { ssl = \"starttls\"; connect_timeout = 5; };\n"), NULL, 0, &error);
	assert_non_null(cfg);
	char *first = print_to_string(cfg);
	/* the printed form is itself a valid config with the same values */
	const char *path2 = write_conf("rt2.conf", first);
	struct config *cfg2 = config_load(path2, NULL, 0, &error);
	if (cfg2 == NULL)
		fail_msg("reload failed: %s\n%s", error, first);
	char *second = print_to_string(cfg2);
	/* only the header line (the file name) differs */
	assert_string_equal(strchr(first, '\n'), strchr(second, '\n'));
	assert_non_null(strstr(first, "ssl = \"starttls\";"));
	assert_non_null(strstr(first, "connect_timeout = \"5s\";"));
	assert_non_null(strstr(first, "\"::1/128\""));
	free(first);
	free(second);
	config_free(&cfg);
	config_free(&cfg2);

	/* a secret that is set is not printed; nested groups print nested */
	cfg = config_load(write_conf("secret.conf",
		"listeners = ( { protocol = \"imap\"; } );\n"
		"passdb = ( { driver = \"backend\"; } );\n"
		"director = { mail_servers = [ \"10.0.0.1\" ]; health = { interval = \"10s\";"
		" user = \"probe\"; password = \"s3cret\"; }; };\n"), NULL, 0, &error);
	if (cfg == NULL)
		fail_msg("%s", error);
	assert_int_equal(cfg->director.health.interval_ms, 10000);
	assert_string_equal(cfg->director.health.password, "s3cret");
	first = print_to_string(cfg);
	assert_null(strstr(first, "s3cret"));
	assert_non_null(strstr(first, "# password = (hidden);"));
	assert_non_null(strstr(first, "  health = {\n    interval = \"10s\";"));
	free(first);
	config_free(&cfg);
}

struct reload_log {
	char applied[512], kept[512];
};

static void reload_log_key(const char *key, bool applied, void *ctx)
{
	struct reload_log *log = ctx;
	char *dst = applied ? log->applied : log->kept;
	size_t len = strlen(dst);
	snprintf(dst + len, sizeof(log->applied) - len, "%s ", key);
}

/* A reload keeps the running configuration as it is and gives the fresh
 * one the running values of the keys only a restart applies, lists of
 * groups included; both stay whole (freed separately, under ASan). */
static void test_reload_merge(void **state)
{
	(void)state;
	char *error = NULL;
	struct config *running = config_load(write_conf("run.conf", MINIMAL
		"login = { greeting = \"old\"; trusted_networks = [ \"10.0.0.0/8\" ]; };\n"),
		NULL, 0, &error);
	assert_non_null(running);
	static const char fresh_text[] =
		"listeners = ( { protocol = \"imap\"; address = \"127.0.0.1\"; port = 10144; },\n"
		"              { protocol = \"pop3\"; address = \"127.0.0.1\"; } );\n"
		"passdb = ( { driver = \"backend\"; } );\n"
		"director = { mail_servers = [ \"127.0.0.12\" ]; user_expire = \"1h\"; };\n"
		"login = { greeting = \"new\"; trusted_networks = [ \"10.0.0.0/8\" ]; timeout = \"5s\"; };\n"
		"limits = { idle = { imap = \"1m\"; }; };\n"
		"auth = { workers = 4; penalty = false; };\n"
		"base_dir = \"/elsewhere\";\n";
	struct config *fresh = config_load(write_conf("fresh.conf", fresh_text),
					   NULL, 0, &error);
	assert_non_null(fresh);
	struct reload_log log = { "", "" };
	size_t applied = config_reload_merge(running, fresh, reload_log_key, &log);
	assert_string_equal(log.applied,
			    "login.timeout login.greeting auth.penalty limits.idle.imap ");
	assert_string_equal(log.kept, "base_dir listeners auth.workers "
			    "director.mail_servers director.user_expire ");
	assert_int_equal(applied, 4);
	/* fresh: the new values that apply ... */
	assert_string_equal(fresh->login.greeting, "new");
	assert_int_equal(fresh->login.timeout_ms, 5000);
	assert_int_equal(fresh->limits.idle.imap_ms, 60000);
	assert_false(fresh->auth.penalty);
	/* ... and the running values of the others */
	assert_string_equal(fresh->base_dir, running->base_dir);
	assert_int_equal(fresh->listeners_count, 1);
	assert_int_equal(fresh->listeners[0].port, 10143);
	assert_string_equal(fresh->listeners[0].address, running->listeners[0].address);
	assert_string_equal(fresh->listeners[0].source, running->listeners[0].source);
	assert_ptr_not_equal(fresh->listeners, running->listeners);
	assert_int_equal(fresh->auth.workers, 2);
	assert_int_equal(fresh->director.mail_servers.count, 1);
	assert_string_equal(fresh->director.mail_servers.items[0], "127.0.0.11");
	assert_int_equal(fresh->director.user_expire_ms, running->director.user_expire_ms);
	/* running: untouched */
	assert_string_equal(running->login.greeting, "old");
	assert_true(running->auth.penalty);
	/* merged again: nothing differs any more but what only a restart
	 * applies, which is kept again */
	struct reload_log again = { "", "" };
	struct config *third = config_load(write_conf("fresh.conf", fresh_text),
					   NULL, 0, &error);
	assert_non_null(third);
	assert_int_equal(config_reload_merge(fresh, third, reload_log_key, &again), 0);
	assert_string_equal(again.applied, "");
	assert_string_equal(again.kept, "base_dir listeners auth.workers "
			    "director.mail_servers director.user_expire ");
	assert_true(config_key_reloadable("login.greeting"));
	assert_false(config_key_reloadable("director.health.interval"));
	assert_true(config_key_reloadable("backend.connect_timeout"));
	assert_false(config_key_reloadable("backend.ssl_verify"));
	config_unref(&third);
	config_unref(&running);
	config_unref(&fresh);
}

/* The LDAP passdb's keys: the fields map keeps its order, prints as a
 * group that loads back, and is checked. */
static void test_ldap_passdb(void **state)
{
	(void)state;
	char *error = NULL;
	struct config *cfg = config_load(write_conf("ldap.conf",
		"listeners = ( { protocol = \"imap\"; } );\n"
		"passdb = ( { driver = \"ldap\"; uris = [ \"ldap://a\", \"ldaps://b:636\" ];\n"
		"  base = \"ou=people,dc=%d\"; bind_password = \"pw1\"; auth_bind = true;\n"
		"  fields = { user = \"uid\"; host = \"mailHost\"; user_email = \"mail\"; }; } );\n"
		"director = { mail_servers = [ \"10.0.0.1\" ]; };\n"), NULL, 0, &error);
	if (cfg == NULL)
		fail_msg("%s", error);
	const struct config_passdb *p = &cfg->passdbs[0];
	assert_int_equal(p->driver, CONF_PASSDB_LDAP);
	assert_int_equal(p->uris.count, 2);
	assert_true(p->auth_bind);
	assert_false(p->starttls);
	assert_int_equal(p->scope, CONF_LDAP_SCOPE_SUBTREE);
	assert_string_equal(p->filter, "(&(objectClass=posixAccount)(uid=%u))");
	assert_int_equal(p->timeout_ms, 5000);
	assert_int_equal(p->pool_size, 4);
	assert_int_equal(p->fields.names.count, 3);
	assert_string_equal(p->fields.names.items[2], "user_email");
	assert_string_equal(p->fields.values.items[2], "mail");
	char *text = print_to_string(cfg);
	assert_non_null(strstr(text, "fields = { user = \"uid\"; host = \"mailHost\"; "
			       "user_email = \"mail\"; };"));
	assert_null(strstr(text, "pw1"));
	struct config *cfg2 = config_load(write_conf("ldap2.conf", text), NULL, 0, &error);
	if (cfg2 == NULL)
		fail_msg("reload failed: %s\n%s", error, text);
	assert_int_equal(cfg2->passdbs[0].fields.names.count, 3);
	free(text);
	config_free(&cfg2);

	/* a reload keeps the running passdb, its map copied whole */
	cfg2 = config_load(write_conf("ldap3.conf",
		"listeners = ( { protocol = \"imap\"; } );\n"
		"passdb = ( { driver = \"ldap\"; uris = \"ldap://c\"; fields = { user = \"cn\"; }; } );\n"
		"director = { mail_servers = [ \"10.0.0.1\" ]; };\n"), NULL, 0, &error);
	if (cfg2 == NULL)
		fail_msg("%s", error);
	struct reload_log log = { "", "" };
	assert_int_equal(config_reload_merge(cfg, cfg2, reload_log_key, &log), 0);
	assert_string_equal(log.kept, "passdb ");
	assert_int_equal(cfg2->passdbs[0].fields.names.count, 3);
	assert_string_equal(cfg2->passdbs[0].fields.values.items[1], "mailHost");
	assert_ptr_not_equal(cfg2->passdbs[0].fields.values.items,
			     cfg->passdbs[0].fields.values.items);
	config_free(&cfg);
	config_free(&cfg2);

#define LDAP_CONF(settings) "listeners = ( { protocol = \"imap\"; } );\n" \
	"passdb = ( { driver = \"ldap\"; " settings " } );\n" \
	"director = { mail_servers = [ \"10.0.0.1\" ]; };\n"
	expect_error(LDAP_CONF(""), "bad.conf:2: uris: the ldap driver needs a server");
	expect_error(LDAP_CONF("uris = \"ldap://a\"; fields = { pasword = \"userPassword\"; };"),
		     "bad.conf:2: fields: 'pasword': not a passdb field");
	expect_error(LDAP_CONF("uris = \"ldap://a\"; fields = { host = 5; };"),
		     "passdb[0].fields: host: expected a string");
	expect_error(LDAP_CONF("uris = \"ldap://a\"; fields = [ \"uid\" ];"),
		     "passdb[0].fields: expected a group");
	expect_error(LDAP_CONF("uris = \"ldap://a\"; fields = { host = \"\"; };"),
		     "fields: host: an empty attribute name");
	expect_error(LDAP_CONF("uris = \"ldaps://a\"; starttls = true;"),
		     "starttls: 'ldaps://a': STARTTLS is for ldap:// servers only");
	expect_error(LDAP_CONF("uris = \"ldap://a\"; filter = \"(uid=%x)\";"),
		     "filter: '(uid=%x)': unknown variable");
	expect_error(LDAP_CONF("uris = \"ldap://a\"; scope = \"tree\";"),
		     "scope: 'tree': not one of the allowed values");
#undef LDAP_CONF
}

/* The last reference frees the configuration (LeakSanitizer and ASan
 * check the two ends). */
static void test_refcount(void **state)
{
	(void)state;
	char *error = NULL;
	struct config *cfg = config_load(write_conf("ref.conf", MINIMAL), NULL, 0, &error);
	assert_non_null(cfg);
	struct config *a = config_ref(cfg), *b = config_ref(cfg);
	assert_ptr_equal(a, cfg);
	config_unref(&cfg);
	assert_null(cfg);
	config_unref(&a);
	assert_string_equal(b->login.greeting, "loft ready.");
	config_unref(&b);
	assert_null(b);
	config_unref(&b);	/* NULL: nothing */
}

static int setup(void **state)
{
	(void)state;
	return mkdtemp(tmpdir) == NULL ? -1 : 0;
}

static int teardown(void **state)
{
	(void)state;
	char cmd[300];
	snprintf(cmd, sizeof(cmd), "rm -rf '%s'", tmpdir);
	return system(cmd) == 0 ? 0 : -1;
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_issue_shape),
		cmocka_unit_test(test_defaults),
		cmocka_unit_test(test_errors),
		cmocka_unit_test(test_ldap_passdb),
		cmocka_unit_test(test_overrides),
		cmocka_unit_test(test_print_round_trip),
		cmocka_unit_test(test_reload_merge),
		cmocka_unit_test(test_refcount),
	};
	return cmocka_run_group_tests_name("conf", tests, setup, teardown);
}
