/* The configuration keys: name, type, default and documentation. This
 * table is the single source of truth; doc/loft.conf.5.scd and
 * etc/loft.conf are checked against it by the test suite. */
#include <stddef.h>

#include "conf/config.h"
#include "conf/config_table.h"

#define MS(x) ((uint64_t)(x))
#define SEC(x) ((uint64_t)(x) * 1000)
#define KIB(x) ((uint64_t)(x) * 1024)

#define KEY(name_, type_, field_, def_, doc_) \
	{ .name = name_, .type = type_, \
	  .offset = offsetof(struct config, field_), .def = def_, .doc = doc_ }
#define KEY_SECRET(name_, field_, doc_) \
	{ .name = name_, .type = CONF_TYPE_STRING, \
	  .offset = offsetof(struct config, field_), .def = "", .doc = doc_, \
	  .secret = true }
#define KEY_RANGE(name_, type_, field_, def_, min_, max_, doc_) \
	{ .name = name_, .type = type_, \
	  .offset = offsetof(struct config, field_), .def = def_, .doc = doc_, \
	  .min = min_, .max = max_ }
#define KEY_ENUM(name_, field_, def_, values_, doc_) \
	{ .name = name_, .type = CONF_TYPE_ENUM, \
	  .offset = offsetof(struct config, field_), .def = def_, .doc = doc_, \
	  .values = values_ }
#define ELEM(st, name_, type_, field_, def_, doc_) \
	{ .name = name_, .type = type_, .offset = offsetof(st, field_), \
	  .def = def_, .doc = doc_ }
#define ELEM_ENUM(st, name_, field_, def_, values_, doc_) \
	{ .name = name_, .type = CONF_TYPE_ENUM, .offset = offsetof(st, field_), \
	  .def = def_, .doc = doc_, .values = values_ }
#define ELEM_RANGE(st, name_, type_, field_, def_, min_, max_, doc_) \
	{ .name = name_, .type = type_, .offset = offsetof(st, field_), \
	  .def = def_, .doc = doc_, .min = min_, .max = max_ }
#define ELEM_SECRET(st, name_, field_, doc_) \
	{ .name = name_, .type = CONF_TYPE_STRING, .offset = offsetof(st, field_), \
	  .def = "", .doc = doc_, .secret = true }
#define GROUP(name_, sub_, doc_) \
	{ .name = name_, .type = CONF_TYPE_GROUP, .offset = 0, .doc = doc_, \
	  .sub = sub_ }
#define LIST(name_, st, ptr_, count_, sub_, doc_) \
	{ .name = name_, .type = CONF_TYPE_LIST, \
	  .offset = offsetof(struct config, ptr_), \
	  .count_offset = offsetof(struct config, count_), \
	  .elem_size = sizeof(st), .source_offset = offsetof(st, source), \
	  .sub = sub_, .doc = doc_ }
#define END { .name = NULL }

/* Forward secrecy and AEAD only: the TLS 1.2 part of Mozilla's
 * "intermediate" profile without finite-field DHE. */
#define TLS_CIPHERS "ECDHE+AESGCM:ECDHE+CHACHA20"

const char *const conf_protocol_names[] = {
	"imap", "pop3", "managesieve", "submission", "lmtp", NULL
};
const char *const conf_tls_protocol_names[] = { "TLSv1.2", "TLSv1.3", NULL };
static const char *const backend_ssl_names[] = { "no", "yes", "starttls", NULL };
static const char *const passdb_driver_names[] = {
	"passwd-file", "backend", "ldap", "sql", NULL
};
static const char *const ldap_scope_names[] = { "base", "onelevel", "subtree", NULL };
static const char *const log_level_names[] = {
	"debug", "info", "warning", "error", NULL
};
static const char *const log_target_names[] = { "stderr", "syslog", NULL };

static const struct conf_key listener_keys[] = {
	ELEM_ENUM(struct config_listener, "protocol", protocol, NULL,
		  conf_protocol_names, "protocol spoken on this listener (required)"),
	ELEM(struct config_listener, "address", CONF_TYPE_STRING, address,
	     "0.0.0.0", "IPv4 or IPv6 address to bind"),
	ELEM(struct config_listener, "port", CONF_TYPE_PORT, port, "0",
	     "TCP port; 0: the standard port (imap 143/993, pop3 110/995, managesieve 4190, submission 587/465, lmtp 24)"),
	ELEM(struct config_listener, "tls", CONF_TYPE_BOOL, tls, "false",
	     "implicit TLS from the first byte (needs tls.cert and tls.key)"),
	ELEM(struct config_listener, "proxy_protocol", CONF_TYPE_BOOL, proxy_protocol,
	     "false", "a PROXY protocol v1/v2 header comes first (from trusted_networks only)"),
	END
};

static const struct conf_key tls_keys[] = {
	KEY("cert", CONF_TYPE_STRING, tls.cert, NULL,
	    "PEM certificate chain for TLS listeners and STARTTLS"),
	KEY("key", CONF_TYPE_STRING, tls.key, NULL, "PEM private key of tls.cert"),
	KEY_ENUM("min_protocol", tls.min_protocol, "TLSv1.2",
		 conf_tls_protocol_names, "oldest TLS version accepted from clients"),
	KEY("ciphers", CONF_TYPE_STRING, tls.ciphers, TLS_CIPHERS,
	    "OpenSSL cipher list for TLS 1.2 (TLS 1.3 suites are OpenSSL's, all AEAD)"),
	KEY("ticket_key_file", CONF_TYPE_STRING, tls.ticket_key_file, "",
	    "secret session ticket keys derive from (the same on every node); \"\": random"),
	KEY_RANGE("ticket_lifetime", CONF_TYPE_DURATION, tls.ticket_lifetime_ms, "1h",
		  SEC(60), SEC(86400 * 7), "a ticket key is used this long, accepted as long again"),
	END
};

static const struct conf_key login_keys[] = {
	KEY("trusted_networks", CONF_TYPE_CIDRLIST, login.trusted_networks, "",
	    "networks whose clients may forward their own client address and count as secure"),
	KEY("disable_plaintext_auth", CONF_TYPE_BOOL, login.disable_plaintext_auth,
	    "true", "refuse LOGIN and plaintext SASL unless TLS is on or the client is trusted"),
	KEY_RANGE("timeout", CONF_TYPE_DURATION, login.timeout_ms, "60s",
		  SEC(1), SEC(86400), "time a client has to log in before it is disconnected"),
	KEY_RANGE("max_line_length", CONF_TYPE_SIZE, login.max_line_length, "9k",
		  256, KIB(1024), "longest command line accepted before login"),
	KEY_RANGE("max_literal_size", CONF_TYPE_SIZE, login.max_literal_size, "8k",
		  1, KIB(1024), "largest IMAP literal accepted before login"),
	KEY_RANGE("max_bad_commands", CONF_TYPE_UINT, login.max_bad_commands, "3",
		  1, 1000, "invalid commands before the client is disconnected"),
	KEY_RANGE("max_userip_connections", CONF_TYPE_UINT,
		  login.max_userip_connections, "10", 0, 1000000,
		  "sessions one user may have from one client address; 0: no limit"),
	KEY("imap_id_retain", CONF_TYPE_BOOL, login.imap_id_retain, "false",
	    "send the IMAP client's own ID fields to the backend with loft's (Dovecot's imap_id_retain)"),
	KEY("greeting", CONF_TYPE_STRING, login.greeting, "loft ready.",
	    "text of the protocol greeting"),
	KEY("hostname", CONF_TYPE_STRING, login.hostname, "",
	    "this server's name in Submission greetings and EHLO; \"\": the system's"),
	END
};

static const struct conf_key auth_cache_keys[] = {
	KEY_RANGE("size", CONF_TYPE_SIZE, auth.cache.size, "0", 0, (uint64_t)1 << 40,
		  "bytes of cached passdb answers at most, least recently used evicted "
		  "first; 0: no cache"),
	KEY_RANGE("ttl", CONF_TYPE_DURATION, auth.cache.ttl_ms, "1h", SEC(1), SEC(86400 * 30),
		  "a cached login is answered without the passdb this long (longer while "
		  "the passdb fails)"),
	KEY_RANGE("negative_ttl", CONF_TYPE_DURATION, auth.cache.negative_ttl_ms, "1h", 0,
		  SEC(86400 * 30), "an unknown user is remembered this long; 0: not at all"),
	END
};

static const struct conf_key auth_keys[] = {
	KEY_RANGE("workers", CONF_TYPE_UINT, auth.workers, "2", 1, 64,
		  "threads that verify password hashes off the event loop"),
	KEY_RANGE("max_queue", CONF_TYPE_UINT, auth.max_queue, "0", 0, 1000000,
		  "logins waiting for or holding a worker, at most (and per LDAP or "
		  "SQL passdb, its lookups); more get a temporary failure (0: 16 per "
		  "auth.workers thread)"),
	KEY("username_format", CONF_TYPE_STRING, auth.username_format, "%Lu",
	    "how the login name is normalised before lookup (%u, %Lu, %n, %d)"),
	KEY("penalty", CONF_TYPE_BOOL, auth.penalty, "true",
	    "delay authentication from addresses with recent failures (4s, 8s, 15s)"),
	KEY("master_user_separator", CONF_TYPE_STRING, auth.master_user_separator, "",
	    "one character: a login name \"user*master\" logs in as user with the "
	    "master user's password (\"\": only SASL PLAIN's authzid does)"),
	KEY("passthrough_mechanisms", CONF_TYPE_STRLIST, auth.passthrough_mechanisms, "",
	    "SASL mechanisms offered whose exchange the backend verifies (XOAUTH2, "
	    "OAUTHBEARER, SCRAM-SHA-1, SCRAM-SHA-256): the user their first message "
	    "names is looked up without a password and routed"),
	GROUP("cache", auth_cache_keys, "passdb answers kept in memory (Dovecot's auth_cache_*)"),
	END
};

static const struct conf_key passdb_keys[] = {
	ELEM_ENUM(struct config_passdb, "driver", driver, NULL,
		  passdb_driver_names, "passwd-file, backend, ldap or sql (required)"),
	ELEM(struct config_passdb, "path", CONF_TYPE_STRING, path, NULL,
	     "passwd-file: the file, in Dovecot's passwd-file format"),
	ELEM(struct config_passdb, "scheme", CONF_TYPE_STRING, scheme, "CRYPT",
	     "passwd-file, ldap, sql: scheme of passwords without a {SCHEME} prefix"),
	ELEM(struct config_passdb, "master", CONF_TYPE_BOOL, master, "false",
	     "a passdb of master users: asked only for master logins (user*master, "
	     "SASL PLAIN with an authzid), never for others"),
	ELEM(struct config_passdb, "uris", CONF_TYPE_STRLIST, uris, "",
	     "ldap: servers, tried in order (\"ldap://host:port\", \"ldaps://...\", \"ldapi://...\")"),
	ELEM(struct config_passdb, "starttls", CONF_TYPE_BOOL, starttls, "false",
	     "ldap: STARTTLS on ldap:// connections, required to succeed"),
	ELEM(struct config_passdb, "tls_ca_file", CONF_TYPE_STRING, tls_ca_file, "",
	     "ldap: CA bundle for the servers' certificates; \"\": libldap's default"),
	ELEM(struct config_passdb, "base", CONF_TYPE_STRING, base, "",
	     "ldap: where users are searched (%u %n %d, DN-escaped)"),
	ELEM_ENUM(struct config_passdb, "scope", scope, "subtree", ldap_scope_names,
		  "ldap: search scope: base, onelevel or subtree"),
	ELEM(struct config_passdb, "filter", CONF_TYPE_STRING, filter,
	     "(&(objectClass=posixAccount)(uid=%u))",
	     "ldap: search filter (%u %n %d, filter-escaped); one entry must match"),
	ELEM(struct config_passdb, "bind_dn", CONF_TYPE_STRING, bind_dn, "",
	     "ldap: DN loft binds as to search; \"\": anonymous"),
	ELEM_SECRET(struct config_passdb, "bind_password", bind_password,
		    "ldap: the password of bind_dn"),
	ELEM(struct config_passdb, "auth_bind", CONF_TYPE_BOOL, auth_bind, "false",
	     "ldap: check the password by binding as the user's DN, not by reading it"),
	ELEM(struct config_passdb, "fields", CONF_TYPE_STRMAP, fields, NULL,
	     "ldap: passdb field = LDAP attribute; empty: { user = \"uid\"; password = \"userPassword\"; }"),
	ELEM_SECRET(struct config_passdb, "connect", connect,
		    "sql: a libpq connection string (\"host=... dbname=... user=...\"), "
		    "or \"sqlite:<path>\" for an SQLite file"),
	ELEM(struct config_passdb, "password_query", CONF_TYPE_STRING, password_query, "",
	     "sql: the query (%u %n %d, bound as parameters); one row, its columns are passdb fields"),
	ELEM_RANGE(struct config_passdb, "reconnect_max", CONF_TYPE_DURATION, reconnect_max_ms,
		   "10s", SEC(1), SEC(3600),
		   "sql: longest wait between attempts to reconnect to PostgreSQL"),
	ELEM_RANGE(struct config_passdb, "timeout", CONF_TYPE_DURATION, timeout_ms, "5s",
		   MS(100), SEC(300), "ldap, sql: time for a connect or one lookup; then a temporary failure"),
	ELEM_RANGE(struct config_passdb, "pool_size", CONF_TYPE_UINT, pool_size, "4",
		   1, 64, "ldap: connections, each with its own thread; sql: PostgreSQL connections "
		   "(lookups at once)"),
	END
};

static const struct conf_key director_health_keys[] = {
	KEY_RANGE("interval", CONF_TYPE_DURATION, director.health.interval_ms, "0",
		  0, SEC(3600), "time between health checks of each backend; 0: no checks"),
	KEY_RANGE("timeout", CONF_TYPE_DURATION, director.health.timeout_ms, "5s",
		  MS(100), SEC(600), "time for one check (connect, TLS, banner, login)"),
	KEY_RANGE("fall", CONF_TYPE_UINT, director.health.fall, "3", 1, 1000,
		  "failed checks in a row that take a backend off the ring"),
	KEY_RANGE("rise", CONF_TYPE_UINT, director.health.rise, "2", 1, 1000,
		  "passed checks in a row that put it back"),
	KEY("user", CONF_TYPE_STRING, director.health.user, "",
	    "log in as this user in each check; \"\": the banner is enough"),
	KEY_SECRET("password", director.health.password, "the password of health.user"),
	END
};

static const struct conf_key director_keys[] = {
	KEY("mail_servers", CONF_TYPE_STRLIST, director.mail_servers, NULL,
	    "backends: \"ip\", \"ip@tag\" or \"ip1-ip2[@tag]\" (required)"),
	KEY_RANGE("user_expire", CONF_TYPE_DURATION, director.user_expire_ms, "15m",
		  SEC(10), SEC(86400 * 7), "how long a user stays on its backend after its last session"),
	KEY("username_hash", CONF_TYPE_STRING, director.username_hash, "%Lu",
	    "what of the username is hashed to pick a backend (%u, %Lu, %n, %d)"),
	KEY_RANGE("user_kick_delay", CONF_TYPE_DURATION, director.user_kick_delay_ms,
		  "2s", 0, SEC(60), "after a move closed a user's sessions, time before it logs in again"),
	KEY_RANGE("max_parallel_moves", CONF_TYPE_UINT, director.max_parallel_moves,
		  "100", 1, 100000, "users a flush moves at the same time (flush --max-parallel)"),
	KEY_RANGE("user_move_timeout", CONF_TYPE_DURATION, director.user_move_timeout_ms,
		  "30s", SEC(1), SEC(3600), "a move still waiting for the user's sessions to close gives up after this"),
	GROUP("health", director_health_keys, "built-in health checks of the backends"),
	END
};

static const struct conf_key backend_keys[] = {
	KEY("imap_port", CONF_TYPE_PORT, backend.imap_port, "143",
	    "backend port for IMAP"),
	KEY("pop3_port", CONF_TYPE_PORT, backend.pop3_port, "110",
	    "backend port for POP3"),
	KEY("managesieve_port", CONF_TYPE_PORT, backend.managesieve_port, "4190",
	    "backend port for ManageSieve"),
	KEY("submission_port", CONF_TYPE_PORT, backend.submission_port, "587",
	    "backend port for Submission"),
	KEY("lmtp_port", CONF_TYPE_PORT, backend.lmtp_port, "24",
	    "backend port for LMTP (unless a passdb names one)"),
	KEY_ENUM("ssl", backend.ssl, "no", backend_ssl_names,
		 "TLS to backends: no, yes (implicit TLS) or starttls"),
	KEY("ssl_verify", CONF_TYPE_BOOL, backend.ssl_verify, "true",
	    "verify backend certificates against ssl_ca_file and the backend address"),
	KEY("ssl_ca_file", CONF_TYPE_STRING, backend.ssl_ca_file, "",
	    "CA bundle for backend certificates; empty: the system store"),
	KEY("ssl_ciphers", CONF_TYPE_STRING, backend.ssl_ciphers, TLS_CIPHERS,
	    "OpenSSL cipher list for TLS 1.2 towards backends"),
	KEY_RANGE("connect_timeout", CONF_TYPE_DURATION, backend.connect_timeout_ms,
		  "30s", MS(100), SEC(3600), "time to connect and log in to a backend, over all retries"),
	KEY_RANGE("max_reconnects", CONF_TYPE_UINT, backend.max_reconnects, "3", 0, 100,
		  "connection retries to a backend, one second apart"),
	END
};

/* Pigeonhole 0.5's defaults (Debian 12) */
#define SIEVE_EXTENSIONS "fileinto reject envelope encoded-character vacation " \
	"subaddress comparator-i;ascii-numeric relational regex imap4flags copy " \
	"include variables body enotify environment mailbox date index ihave " \
	"duplicate mime foreverypart extracttext"

static const struct conf_key managesieve_keys[] = {
	KEY("sieve_capability", CONF_TYPE_STRING, managesieve.sieve_capability,
	    SIEVE_EXTENSIONS, "SIEVE extensions announced before login (as the backends')"),
	KEY("notify_capability", CONF_TYPE_STRING, managesieve.notify_capability,
	    "mailto", "NOTIFY methods announced before login; \"\": none"),
	END
};

static const struct conf_key lmtp_keys[] = {
	KEY_RANGE("max_message_size", CONF_TYPE_SIZE, lmtp.max_message_size, "50M",
		  KIB(1), (uint64_t)4 << 30, "largest message delivered (RFC 1870 SIZE: without dot-stuffing)"),
	KEY_RANGE("proxy_timeout", CONF_TYPE_DURATION, lmtp.proxy_timeout_ms, "125s",
		  SEC(1), SEC(3600), "time a backend may take for each step of a delivery"),
	KEY_RANGE("client_timeout", CONF_TYPE_DURATION, lmtp.client_timeout_ms, "5m",
		  SEC(1), SEC(86400), "time the MTA may leave an LMTP session without input"),
	KEY_RANGE("max_idle_backends", CONF_TYPE_UINT, lmtp.max_idle_backends, "16", 0, 1024,
		  "backend connections an LMTP session keeps between transactions; 0: none"),
	KEY_RANGE("max_parallel_rcpts", CONF_TYPE_UINT, lmtp.max_parallel_rcpts, "50", 1, 1000,
		  "pipelined recipients of an LMTP session looked up and asked at once; 1: one by one"),
	END
};

static const struct conf_key log_keys[] = {
	KEY_ENUM("level", log.level, "info", log_level_names,
		 "least severe level logged: debug, info, warning, error"),
	KEY_ENUM("target", log.target, "stderr", log_target_names,
		 "where lines go: \"stderr\" (under systemd: the journal) or \"syslog\" (/dev/log, facility mail)"),
	END
};

static const struct conf_key limits_idle_keys[] = {
	KEY_RANGE("imap", CONF_TYPE_DURATION, limits.idle.imap_ms, "0", 0, SEC(86400 * 7),
		  "IMAP session without traffic after login; 0: no limit (clients IDLE for hours)"),
	KEY_RANGE("pop3", CONF_TYPE_DURATION, limits.idle.pop3_ms, "10m", 0, SEC(86400 * 7),
		  "POP3 session without traffic after login (RFC 1939: at least 10 minutes)"),
	KEY_RANGE("managesieve", CONF_TYPE_DURATION, limits.idle.managesieve_ms, "30m", 0,
		  SEC(86400 * 7), "ManageSieve session without traffic after login"),
	KEY_RANGE("submission", CONF_TYPE_DURATION, limits.idle.submission_ms, "5m", 0,
		  SEC(86400 * 7), "Submission session without traffic after login (RFC 5321: 5 minutes)"),
	END
};

static const struct conf_key limits_keepalive_keys[] = {
	KEY_RANGE("idle", CONF_TYPE_DURATION, limits.keepalive.idle_ms, "5m", 0, SEC(86400),
		  "a connection without traffic this long gets TCP keepalive probes; 0: none"),
	KEY_RANGE("interval", CONF_TYPE_DURATION, limits.keepalive.interval_ms, "0", 0,
		  SEC(3600), "between keepalive probes; 0: the kernel's (75 s)"),
	KEY_RANGE("count", CONF_TYPE_UINT, limits.keepalive.count, "0", 0, 100,
		  "unanswered keepalive probes before the connection is given up; 0: the kernel's (9)"),
	END
};

static const struct conf_key limits_keys[] = {
	KEY_RANGE("max_connections", CONF_TYPE_UINT, limits.max_connections, "100000",
		  0, 10000000, "client connections at once, every protocol; 0: no limit"),
	KEY_RANGE("max_prelogin_per_ip", CONF_TYPE_UINT, limits.max_prelogin_per_ip, "100",
		  0, 10000000, "connections one client address may have before login; 0: no limit"),
	KEY_RANGE("session_buffer", CONF_TYPE_SIZE, limits.session_buffer, "64k",
		  KIB(4), KIB(16384), "replies held for a client that does not read, before login and in LMTP"),
	GROUP("idle", limits_idle_keys, "time a logged-in session may pass without traffic"),
	KEY_RANGE("close_timeout", CONF_TYPE_DURATION, limits.close_timeout_ms, "5s", SEC(1),
		  SEC(600), "a closing session's last output (a goodbye, a backend's answer "
		  "after the client's half-close) may take this long"),
	GROUP("keepalive", limits_keepalive_keys,
	      "TCP keepalive on client and backend connections: a peer gone without a word"),
	KEY_RANGE("tcp_user_timeout", CONF_TYPE_DURATION, limits.tcp_user_timeout_ms, "5m", 0,
		  SEC(86400), "sent data unacknowledged this long fails the connection "
		  "(TCP_USER_TIMEOUT); 0: the kernel's"),
	END
};

static const struct conf_key shutdown_keys[] = {
	KEY_RANGE("max_disconnect_delay", CONF_TYPE_DURATION,
		  shutdown.max_disconnect_delay_ms, "0", 0, SEC(3600),
		  "on SIGTERM, close proxied sessions spread over this time; 0: all at once"),
	KEY_RANGE("max_drain", CONF_TYPE_DURATION, shutdown.max_drain_ms, "1h", 0,
		  SEC(7 * 86400), "after an upgrade (SIGUSR2), the old loftd relays its "
		  "sessions this long at most, then stops as on SIGTERM"),
	KEY_RANGE("upgrade_timeout", CONF_TYPE_DURATION, shutdown.upgrade_timeout_ms,
		  "30s", SEC(1), SEC(3600), "on SIGUSR2, the new loftd must be serving "
		  "within this time, or the old one keeps serving"),
	END
};

static const struct conf_key admin_keys[] = {
	KEY("allow_users", CONF_TYPE_STRLIST, admin.allow_users, "",
	    "users (names or uids) besides root and loftd's own user who may use the admin and ipc sockets"),
	KEY_RANGE("max_clients", CONF_TYPE_UINT, admin.max_clients, "16", 1, 10000,
		  "connections the admin and ipc sockets each serve at once"),
	END
};

static const struct conf_key metrics_keys[] = {
	KEY("address", CONF_TYPE_STRING, metrics.address, "127.0.0.1",
	    "IP address the Prometheus endpoint (GET /metrics) listens on"),
	KEY("port", CONF_TYPE_PORT, metrics.port, "0",
	    "its TCP port; 0: no metrics endpoint"),
	KEY_RANGE("timeout", CONF_TYPE_DURATION, metrics.timeout_ms, "10s", SEC(1), SEC(3600),
		  "a metrics connection idle, or not reading its answer, this long is closed"),
	END
};

static const char *const ring_partition_names[] = { "fence", "serve", "failsafe", NULL };

static const struct conf_key ring_keys[] = {
	KEY("etcd", CONF_TYPE_STRLIST, ring.etcd, "",
	    "etcd endpoints (\"http://ip:port\", \"https://host:port\"); none: a ring of one"),
	KEY("prefix", CONF_TYPE_STRING, ring.prefix, "/loft/",
	    "every key of this ring lives under it (several rings may share one etcd)"),
	KEY("name", CONF_TYPE_STRING, ring.name, "",
	    "this director's name in the ring; \"\": its address and port"),
	KEY("address", CONF_TYPE_STRING, ring.address, "",
	    "this director's address in ring status; \"\": the first listener's"),
	KEY("port", CONF_TYPE_PORT, ring.port, "9090", "this director's port in ring status"),
	KEY_RANGE("lease_ttl", CONF_TYPE_DURATION, ring.lease_ttl_ms, "10s", SEC(3), SEC(600),
		  "a node that cannot renew its etcd lease this long is out of the ring"),
	KEY_ENUM("partition", ring.partition, "failsafe", ring_partition_names,
		 "cut off from etcd: \"fence\" stops serving, \"serve\" routes on the last state, "
		 "\"failsafe\" routes on it while every other director confirms etcd is down"),
	KEY("etcd_user", CONF_TYPE_STRING, ring.etcd_user, "", "etcd user, when etcd authenticates"),
	KEY_SECRET("etcd_password", ring.etcd_password, "its password"),
	KEY("etcd_ca_file", CONF_TYPE_STRING, ring.etcd_ca_file, "",
	    "CA that signed etcd's certificates (https:// endpoints); \"\": the system's"),
	KEY("etcd_cert", CONF_TYPE_STRING, ring.etcd_cert, "",
	    "client certificate for etcd (--client-cert-auth)"),
	KEY("etcd_key", CONF_TYPE_STRING, ring.etcd_key, "", "its key"),
	KEY("etcd_source_address", CONF_TYPE_STRING, ring.etcd_source_address, "",
	    "local address connections to etcd come from; \"\": the kernel's choice"),
	KEY_SECRET("secret", ring.secret,
		   "shared secret the nodes prove to each other (at least 16 characters); "
		   "\"\": none"),
	KEY("tls_cert", CONF_TYPE_STRING, ring.tls_cert, "",
	    "this node's certificate towards the other nodes (both ways)"),
	KEY("tls_key", CONF_TYPE_STRING, ring.tls_key, "", "its key"),
	KEY("tls_ca_file", CONF_TYPE_STRING, ring.tls_ca_file, "",
	    "CA that signed every node's certificate (and nothing else's)"),
	KEY_RANGE("peer_timeout", CONF_TYPE_DURATION, ring.peer_timeout_ms, "5s", 100, SEC(300),
		  "a node that has not answered a ring-wide command this long is reported missing"),
	KEY_RANGE("peer_max_connections", CONF_TYPE_UINT, ring.peer_max_connections, "64",
		  1, 10000, "connections from other nodes served at once (more are closed)"),
	KEY_RANGE("failsafe_confirm", CONF_TYPE_DURATION, ring.failsafe_confirm_ms, "0", 0,
		  SEC(600), "failsafe: how long a peer's confirmation counts; 0: lease_ttl/2"),
	KEY_RANGE("failsafe_bind", CONF_TYPE_DURATION, ring.failsafe_bind_ms, "0", 0, SEC(1200),
		  "failsafe: how long giving one binds a node; 0: lease_ttl"),
	KEY_RANGE("limits_interval", CONF_TYPE_DURATION, ring.limits_interval_ms, "1s", 100,
		  SEC(60), "how often the nodes share the counts of ring-wide limits"),
	END
};

const struct conf_key config_root_keys[] = {
	KEY("base_dir", CONF_TYPE_STRING, base_dir, "/run/loft",
	    "runtime directory; the admin socket is <base_dir>/admin"),
	KEY("state_dir", CONF_TYPE_STRING, state_dir, "/var/lib/loft",
	    "durable state: the director's host list as admins changed it; \"\": not kept"),
	KEY("user", CONF_TYPE_STRING, user, "",
	    "account loftd switches to after binding listeners and reading keys; \"\": stay"),
	KEY("group", CONF_TYPE_STRING, group, "",
	    "group it switches to; \"\": the user's primary group"),
	KEY("allow_root", CONF_TYPE_BOOL, allow_root, "false",
	    "let loftd keep running as root (without user, or with user = root)"),
	LIST("listeners", struct config_listener, listeners, listeners_count,
	     listener_keys, "where clients connect (at least one)"),
	GROUP("tls", tls_keys, "TLS towards clients"),
	GROUP("login", login_keys, "the client side until login"),
	GROUP("auth", auth_keys, "authentication"),
	LIST("passdb", struct config_passdb, passdbs, passdbs_count, passdb_keys,
	     "password databases, tried in order until one knows the user"),
	GROUP("director", director_keys, "choosing a user's backend"),
	GROUP("backend", backend_keys, "connections to backends"),
	GROUP("managesieve", managesieve_keys, "ManageSieve before login"),
	GROUP("lmtp", lmtp_keys, "LMTP deliveries"),
	GROUP("log", log_keys, "logging"),
	GROUP("limits", limits_keys, "bounds on connections, buffers and idle time"),
	GROUP("shutdown", shutdown_keys, "stopping on SIGTERM"),
	GROUP("admin", admin_keys, "the admin and ipc sockets"),
	GROUP("metrics", metrics_keys, "the Prometheus metrics endpoint"),
	GROUP("ring", ring_keys, "the director ring: several loftd sharing one routing state in etcd"),
	END
};
