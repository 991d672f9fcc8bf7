/* The loaded configuration: one immutable struct, built from a libconfig
 * file by the key table in config_keys.c. Every key, its type, default
 * and one-line documentation live in that table; loading, -o overrides,
 * -n printing and the documentation check all walk it.
 *
 * Nothing changes a configuration once it is loaded. It is reference-
 * counted (loop thread only): config_load() returns the first reference;
 * whoever keeps it beyond the caller's (a session, the auth module) takes
 * its own with config_ref() and drops it with config_unref(), and the
 * last one frees it. A reload builds a new configuration and hands it
 * out in place of the old one, which lives as long as a holder does. */
#ifndef LOFT_CONF_CONFIG_H
#define LOFT_CONF_CONFIG_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#include "common/net.h"

struct conf_strlist {
	char **items;
	size_t count;
};

/* Names and their string values, in the file's order ("fields = { user =
 * "uid"; host = "mailHost"; };"): names[i] maps to values[i]. */
struct conf_strmap {
	struct conf_strlist names;
	struct conf_strlist values;
};

struct conf_cidrlist {
	struct cidr *items;
	size_t count;
};

/* Protocols loftd can front. The order matches conf_protocol_names. */
enum conf_protocol {
	CONF_PROTOCOL_IMAP,
	CONF_PROTOCOL_POP3,
	CONF_PROTOCOL_MANAGESIEVE,
	CONF_PROTOCOL_SUBMISSION,
	CONF_PROTOCOL_LMTP,
};
#define CONF_PROTOCOLS (CONF_PROTOCOL_LMTP + 1)

enum conf_backend_ssl {
	CONF_BACKEND_SSL_NO,
	CONF_BACKEND_SSL_YES,
	CONF_BACKEND_SSL_STARTTLS,
};

enum conf_passdb_driver {
	CONF_PASSDB_PASSWD_FILE,
	CONF_PASSDB_BACKEND,
	CONF_PASSDB_LDAP,
	CONF_PASSDB_SQL,
};

enum conf_ldap_scope {
	CONF_LDAP_SCOPE_BASE,
	CONF_LDAP_SCOPE_ONELEVEL,
	CONF_LDAP_SCOPE_SUBTREE,
};

struct config_listener {
	unsigned int protocol;		/* enum conf_protocol */
	char *address;
	unsigned int port;		/* 0: the protocol's default */
	bool tls;
	bool proxy_protocol;		/* a PROXY header comes first */
	char *source;			/* "file:line" of the entry */
};

struct config_passdb {
	unsigned int driver;		/* enum conf_passdb_driver */
	char *path;
	char *scheme;
	/* ldap */
	struct conf_strlist uris;
	bool starttls;
	char *tls_ca_file;
	char *base;
	unsigned int scope;		/* enum conf_ldap_scope */
	char *filter;
	char *bind_dn;
	char *bind_password;
	bool auth_bind;
	struct conf_strmap fields;	/* passdb field -> LDAP attribute */
	/* sql */
	char *connect;			/* libpq conninfo, or "sqlite:<path>" */
	char *password_query;
	uint64_t reconnect_max_ms;
	/* ldap, sql */
	uint64_t timeout_ms;
	unsigned int pool_size;
	bool master;			/* checks master users, and only them */
	char *source;
};

struct config {
	char *path;			/* the file that was loaded */
	char *base_dir;
	char *state_dir;		/* "" when nothing is kept */
	char *user;			/* "": stay who started loftd */
	char *group;			/* "": the user's primary group */
	bool allow_root;

	struct config_listener *listeners;
	size_t listeners_count;

	struct {
		char *cert;
		char *key;
		unsigned int min_protocol;	/* index into tls protocol names */
		char *ciphers;			/* TLS 1.2 cipher list */
		char *ticket_key_file;		/* "": a random secret per process */
		uint64_t ticket_lifetime_ms;
	} tls;

	struct {
		struct conf_cidrlist trusted_networks;
		bool disable_plaintext_auth;
		uint64_t timeout_ms;
		uint64_t max_line_length;
		uint64_t max_literal_size;
		unsigned int max_bad_commands;
		unsigned int max_userip_connections;
		bool imap_id_retain;		/* the client's ID to the backend */
		char *greeting;
		char *hostname;			/* "": the system's */
	} login;

	struct {
		unsigned int workers;
		unsigned int max_queue;		/* 0: 16 per worker */
		char *username_format;
		bool penalty;
		char *master_user_separator;	/* "": no "user*master" logins */
		/* SASL mechanisms offered whose exchange the backend runs */
		struct conf_strlist passthrough_mechanisms;
		struct {
			uint64_t size;		/* bytes; 0: no cache */
			uint64_t ttl_ms;
			uint64_t negative_ttl_ms;	/* 0: no negative entries */
		} cache;
	} auth;

	struct config_passdb *passdbs;
	size_t passdbs_count;

	struct {
		struct conf_strlist mail_servers;
		uint64_t user_expire_ms;
		char *username_hash;
		uint64_t user_kick_delay_ms;
		unsigned int max_parallel_moves;
		uint64_t user_move_timeout_ms;
		struct {
			uint64_t interval_ms;	/* 0: no checks */
			uint64_t timeout_ms;
			unsigned int fall;
			unsigned int rise;
			char *user;		/* "": banner only */
			char *password;
		} health;
	} director;

	struct {
		unsigned int imap_port;
		unsigned int pop3_port;
		unsigned int managesieve_port;
		unsigned int submission_port;
		unsigned int lmtp_port;
		unsigned int ssl;		/* enum conf_backend_ssl */
		bool ssl_verify;
		char *ssl_ca_file;
		char *ssl_ciphers;
		uint64_t connect_timeout_ms;
		unsigned int max_reconnects;
	} backend;

	struct {
		char *sieve_capability;
		char *notify_capability;
	} managesieve;

	struct {
		uint64_t max_message_size;
		uint64_t proxy_timeout_ms;
		uint64_t client_timeout_ms;
		unsigned int max_idle_backends;
		unsigned int max_parallel_rcpts;
	} lmtp;

	struct {
		unsigned int level;		/* enum log_level */
		unsigned int target;		/* enum conf_log_target */
	} log;

	struct {
		unsigned int max_connections;	/* 0: no limit */
		unsigned int max_prelogin_per_ip;	/* 0: no limit */
		uint64_t session_buffer;
		uint64_t close_timeout_ms;	/* a closing session's last output */
		struct {			/* 0 idle: no keepalive */
			uint64_t idle_ms;
			uint64_t interval_ms;
			unsigned int count;
		} keepalive;
		uint64_t tcp_user_timeout_ms;	/* 0: the kernel's */
		struct {			/* after login; 0: none */
			uint64_t imap_ms;
			uint64_t pop3_ms;
			uint64_t managesieve_ms;
			uint64_t submission_ms;
		} idle;
	} limits;

	struct {
		uint64_t max_disconnect_delay_ms;	/* 0: all at once */
		uint64_t max_drain_ms;		/* the old loftd after an upgrade */
		uint64_t upgrade_timeout_ms;	/* for the new loftd to serve */
	} shutdown;

	struct {
		struct conf_strlist allow_users;	/* besides root and loftd's user */
		unsigned int max_clients;
	} admin;

	/* the Prometheus endpoint (doc/loftd.8.scd, METRICS) */
	struct {
		char *address;
		unsigned int port;	/* 0: none */
		uint64_t timeout_ms;
	} metrics;

	/* the director ring (doc/ring.md); no etcd endpoints: a ring of one */
	struct {
		struct conf_strlist etcd;
		char *prefix;
		char *name;		/* "": the address */
		char *address;		/* "": the first listener's */
		unsigned int port;
		uint64_t lease_ttl_ms;
		unsigned int partition;	/* enum conf_ring_partition */
		char *etcd_user;
		char *etcd_password;
		char *etcd_ca_file;
		char *etcd_cert;
		char *etcd_key;
		char *etcd_source_address;	/* "": the kernel's choice */
		/* the links between nodes (doc/ring.md §14): a shared secret,
		 * certificates both ways, or both; neither: no links */
		char *secret;
		char *tls_cert;
		char *tls_key;
		char *tls_ca_file;
		uint64_t peer_timeout_ms;
		unsigned int peer_max_connections;
		uint64_t limits_interval_ms;	/* shared limits' period */
		uint64_t failsafe_confirm_ms;	/* 0: lease_ttl / 2 */
		uint64_t failsafe_bind_ms;	/* 0: lease_ttl */
	} ring;

	/* "file:line" of each key set in the file, for later error messages */
	struct config_source *sources;
	size_t sources_count;

	/* references beyond the first (see the top of this file), so that
	 * a struct config made by hand (tests) holds one */
	unsigned int extra_refs;
};

enum conf_log_target {
	CONF_LOG_TARGET_STDERR,
	CONF_LOG_TARGET_SYSLOG,
};

enum conf_ring_partition {
	CONF_RING_PARTITION_FENCE,	/* cut off from etcd: stop serving */
	CONF_RING_PARTITION_SERVE,	/* keep routing on the last state */
	CONF_RING_PARTITION_FAILSAFE,	/* serve while every peer confirms
					 * etcd is down for it too */
};

struct config_source {
	char *key;
	char *where;
};

/* An override from the command line: "login.timeout=30s". */
struct config_override {
	const char *key;
	const char *value;
};

/* Loads and validates a file: the first reference. On error returns
 * NULL and a message "file:line: key: reason" in *error_r (caller frees). */
struct config *config_load(const char *path,
			   const struct config_override *overrides,
			   size_t overrides_count, char **error_r);
/* Another reference to cfg; returns cfg. */
struct config *config_ref(struct config *cfg);
/* Drops a reference (NULLs *cfg); the last one frees the configuration. */
void config_unref(struct config **cfg);
/* The same as config_unref(), for an owner that never shared it. */
void config_free(struct config **cfg);

/* Where a key was set ("loft.conf:12"), or the file name if it was not. */
const char *config_source(const struct config *cfg, const char *key);

/* Writes the effective configuration in libconfig syntax. */
void config_print(const struct config *cfg, FILE *out);

/* Every key path the table knows, for documentation checks. */
void config_print_keys(FILE *out);

/* A reload (SIGHUP): `fresh`, loaded and not yet shared, takes from
 * `running` the value of every key only a restart can apply (bound
 * listeners, directories, the user, worker threads, passdbs, the
 * director's ring, TLS towards backends, the admin sockets, the metrics
 * endpoint), so that it describes what runs; `running` is not changed.
 * cb hears of every key whose value differs and whether the new value
 * applies. Returns how many keys apply. */
typedef void config_change_cb(const char *key, bool applied, void *ctx);
size_t config_reload_merge(const struct config *running, struct config *fresh,
			   config_change_cb *cb, void *ctx);
/* Whether `key` ("director.user_expire") can change at run time. */
bool config_key_reloadable(const char *key);

extern const char *const conf_protocol_names[];
extern const char *const conf_tls_protocol_names[];
unsigned int config_listener_port(const struct config_listener *l);

/* ring.failsafe_confirm and _bind with their defaults applied. */
static inline uint64_t config_failsafe_confirm_ms(const struct config *cfg)
{
	return cfg->ring.failsafe_confirm_ms != 0 ? cfg->ring.failsafe_confirm_ms :
		cfg->ring.lease_ttl_ms / 2;
}

static inline uint64_t config_failsafe_bind_ms(const struct config *cfg)
{
	return cfg->ring.failsafe_bind_ms != 0 ? cfg->ring.failsafe_bind_ms :
		cfg->ring.lease_ttl_ms;
}

#endif
