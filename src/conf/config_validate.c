/* Cross-key validation. The director checks its own host list when it is
 * built (director_new), because parsing it belongs to the director. */
#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "common/macros.h"
#include "common/sbuf.h"
#include "common/sqltemplate.h"
#include "common/varexpand.h"
#include "common/xmalloc.h"
#include "conf/config.h"
#include "conf/config_validate.h"

static bool config_key_set(const struct config *cfg, const char *key)
{
	for (size_t i = 0; i < cfg->sources_count; i++) {
		if (strcmp(cfg->sources[i].key, key) == 0)
			return true;
	}
	return false;
}

static char *config_fail(const char *where, const char *key, const char *fmt,
			 ...) ATTR_FORMAT(3, 4);

static char *config_fail(const char *where, const char *key, const char *fmt, ...)
{
	struct sbuf sb = SBUF_INIT;
	va_list ap;
	sbuf_appendf(&sb, "%s: %s: ", where, key);
	va_start(ap, fmt);
	sbuf_vappendf(&sb, fmt, ap);
	va_end(ap);
	char *r = xstrdup(sbuf_cstr(&sb));
	sbuf_free(&sb);
	return r;
}

static char *config_validate_listeners(const struct config *cfg)
{
	char key[64];

	if (cfg->listeners_count == 0)
		return config_fail(cfg->path, "listeners", "at least one listener is needed");
	for (size_t i = 0; i < cfg->listeners_count; i++) {
		const struct config_listener *l = &cfg->listeners[i];
		struct ipaddr ip;
		snprintf(key, sizeof(key), "listeners[%zu].protocol", i);
		if (!config_key_set(cfg, key))
			return config_fail(l->source, key, "missing (e.g. protocol = \"imap\";)");
		if (ipaddr_parse(l->address, &ip) < 0)
			return config_fail(l->source, "address",
					   "'%s' is not an IP address", l->address);
		/* LMTP comes from the local MTA; Dovecot's lmtp has no
		 * implicit TLS either */
		if (l->tls && l->protocol == CONF_PROTOCOL_LMTP)
			return config_fail(l->source, "tls",
					   "LMTP listeners are plain TCP (tls = false)");
		if (l->tls && (cfg->tls.cert == NULL || cfg->tls.key == NULL))
			return config_fail(l->source, "tls",
					   "a TLS listener needs tls.cert and tls.key");
		for (size_t j = 0; j < i; j++) {
			const struct config_listener *o = &cfg->listeners[j];
			if (strcmp(o->address, l->address) == 0 &&
			    config_listener_port(o) == config_listener_port(l))
				return config_fail(l->source, "port",
						   "%s port %u is already used by %s",
						   l->address, config_listener_port(l),
						   o->source);
		}
	}
	return NULL;
}

/* The passdb fields an LDAP attribute may become (passdb.c gives them
 * their meaning); "proxy" is Dovecot's and always true here. */
static bool config_ldap_field_is_known(const char *name)
{
	static const char *const names[] = {
		"user", "password", "nopassword", "nologin", "reason", "host",
		"hostip", "port", "destuser", "director_tag", "proxy",
	};
	for (size_t i = 0; i < ARRAY_SIZE(names); i++) {
		if (strcmp(name, names[i]) == 0)
			return true;
	}
	return strncmp(name, "user_", 5) == 0 && name[5] != '\0';
}

static char *config_validate_ldap(const struct config_passdb *p)
{
	const char *error;

	if (p->uris.count == 0)
		return config_fail(p->source, "uris", "the ldap driver needs a server");
	if (varexpand_user_validate(p->filter, &error) < 0)
		return config_fail(p->source, "filter", "'%s': %s", p->filter, error);
	if (varexpand_user_validate(p->base, &error) < 0)
		return config_fail(p->source, "base", "'%s': %s", p->base, error);
	for (size_t i = 0; i < p->fields.names.count; i++) {
		if (!config_ldap_field_is_known(p->fields.names.items[i]))
			return config_fail(p->source, "fields", "'%s': not a passdb field "
					   "(user, password, host, hostip, port, destuser, "
					   "director_tag, nologin, reason, nopassword, user_*)",
					   p->fields.names.items[i]);
		if (p->fields.values.items[i][0] == '\0')
			return config_fail(p->source, "fields", "%s: an empty attribute name",
					   p->fields.names.items[i]);
	}
	if (p->starttls) {
		for (size_t i = 0; i < p->uris.count; i++) {
			if (strncasecmp(p->uris.items[i], "ldap://", 7) != 0)
				return config_fail(p->source, "starttls", "'%s': STARTTLS "
						   "is for ldap:// servers only", p->uris.items[i]);
		}
	}
	return NULL;
}

static char *config_validate_sql(const struct config_passdb *p)
{
	struct sql_template t;
	bool sqlite = strncmp(p->connect, "sqlite:", 7) == 0;
	char *error;

	if (p->connect[0] == '\0' || (sqlite && p->connect[7] == '\0'))
		return config_fail(p->source, "connect", "the sql driver needs a database "
				   "(\"host=... dbname=...\" or \"sqlite:<path>\")");
	if (sql_template_parse(&t, p->password_query, sqlite ? SQL_PARAMS_QUESTION :
			       SQL_PARAMS_DOLLAR, &error) < 0) {
		char *r = config_fail(p->source, "password_query", "%s", error);
		free(error);
		return r;
	}
	sql_template_free(&t);
	return NULL;
}

/* The mechanisms whose first message src/proto/sasl_identity.c reads
 * (conf may not use proto: the names are repeated here). */
static char *config_validate_passthrough(const struct config *cfg)
{
	static const char *const names[] = {
		"XOAUTH2", "OAUTHBEARER", "SCRAM-SHA-1", "SCRAM-SHA-256",
	};
	const struct conf_strlist *l = &cfg->auth.passthrough_mechanisms;
	for (size_t i = 0; i < l->count; i++) {
		size_t n = 0;
		while (n < ARRAY_SIZE(names) && strcasecmp(names[n], l->items[i]) != 0)
			n++;
		if (n == ARRAY_SIZE(names))
			return config_fail(config_source(cfg, "auth.passthrough_mechanisms"),
					   "auth.passthrough_mechanisms",
					   "unknown mechanism \"%s\" (XOAUTH2, OAUTHBEARER, "
					   "SCRAM-SHA-1 or SCRAM-SHA-256)", l->items[i]);
	}
	return NULL;
}

static char *config_validate_passdbs(const struct config *cfg)
{
	char key[64];
	char *r;

	size_t masters = 0;
	if (cfg->passdbs_count == 0)
		return config_fail(cfg->path, "passdb", "at least one passdb is needed");
	for (size_t i = 0; i < cfg->passdbs_count; i++)
		masters += cfg->passdbs[i].master ? 1 : 0;
	if (masters == cfg->passdbs_count)
		return config_fail(cfg->path, "passdb", "every passdb is a master one: the "
				   "users themselves need one without master = true");
	if (strlen(cfg->auth.master_user_separator) > 1)
		return config_fail(config_source(cfg, "auth.master_user_separator"),
				   "auth.master_user_separator", "one character, or \"\"");
	if ((r = config_validate_passthrough(cfg)) != NULL)
		return r;
	for (size_t i = 0; i < cfg->passdbs_count; i++) {
		const struct config_passdb *p = &cfg->passdbs[i];
		snprintf(key, sizeof(key), "passdb[%zu].driver", i);
		if (!config_key_set(cfg, key))
			return config_fail(p->source, key,
					   "missing (passwd-file, backend, ldap or sql)");
		if (p->driver == CONF_PASSDB_PASSWD_FILE &&
		    (p->path == NULL || p->path[0] == '\0'))
			return config_fail(p->source, "path",
					   "the passwd-file driver needs a path");
		if (p->driver == CONF_PASSDB_LDAP && (r = config_validate_ldap(p)) != NULL)
			return r;
		if (p->driver == CONF_PASSDB_SQL && (r = config_validate_sql(p)) != NULL)
			return r;
	}
	return NULL;
}

/* The links between the nodes of a ring (doc/ring.md §14). */
static char *config_validate_ring_links(const struct config *cfg)
{
	const char *cert = cfg->ring.tls_cert, *key = cfg->ring.tls_key;
	const char *ca = cfg->ring.tls_ca_file;
	if (cfg->ring.secret[0] != '\0' && strlen(cfg->ring.secret) < 16)
		return config_fail(config_source(cfg, "ring.secret"), "ring.secret",
				   "too short: at least 16 characters");
	if ((cert[0] == '\0') != (key[0] == '\0') || (cert[0] == '\0') != (ca[0] == '\0'))
		return config_fail(config_source(cfg, "ring.tls_cert"), "ring",
				   "tls_cert, tls_key and tls_ca_file must be set together");
	if (cfg->ring.partition != CONF_RING_PARTITION_FAILSAFE)
		return NULL;
	/* doc/ring.md §13: a binding must outlast its holder's copy (the
	 * nodes confirm over the links; without them the node fences
	 * instead, and says so: ring_failsafe_init) */
	uint64_t confirm = config_failsafe_confirm_ms(cfg), bind = config_failsafe_bind_ms(cfg);
	if (bind < confirm + confirm / 50 + 100)
		return config_fail(config_source(cfg, "ring.failsafe_bind"), "ring.failsafe_bind",
				   "must exceed failsafe_confirm by 2%% and 100ms at least "
				   "(%llums, %llums)", (unsigned long long)bind,
				   (unsigned long long)confirm);
	return NULL;
}

char *config_validate(const struct config *cfg)
{
	const char *error;
	char *r;

	if ((r = config_validate_listeners(cfg)) != NULL)
		return r;
	if ((r = config_validate_passdbs(cfg)) != NULL)
		return r;
	if ((cfg->tls.cert == NULL) != (cfg->tls.key == NULL))
		return config_fail(config_source(cfg, cfg->tls.cert ? "tls.cert" : "tls.key"),
				   "tls", "cert and key must be set together");
	if (cfg->director.mail_servers.count == 0)
		return config_fail(config_source(cfg, "director.mail_servers"),
				   "director.mail_servers", "at least one backend is needed");
	if (varexpand_user_validate(cfg->director.username_hash, &error) < 0)
		return config_fail(config_source(cfg, "director.username_hash"),
				   "director.username_hash", "'%s': %s",
				   cfg->director.username_hash, error);
	if (varexpand_user_validate(cfg->auth.username_format, &error) < 0)
		return config_fail(config_source(cfg, "auth.username_format"),
				   "auth.username_format", "'%s': %s",
				   cfg->auth.username_format, error);
	struct ipaddr ip;
	if (cfg->metrics.port != 0 && ipaddr_parse(cfg->metrics.address, &ip) < 0)
		return config_fail(config_source(cfg, "metrics.address"), "metrics.address",
				   "'%s' is not an IP address", cfg->metrics.address);
	if ((r = config_validate_ring_links(cfg)) != NULL)
		return r;
	if (cfg->base_dir[0] != '/')
		return config_fail(config_source(cfg, "base_dir"), "base_dir",
				   "must be an absolute path");
	if (cfg->state_dir[0] != '\0' && cfg->state_dir[0] != '/')
		return config_fail(config_source(cfg, "state_dir"), "state_dir",
				   "must be an absolute path, or \"\" to keep nothing");
	return NULL;
}
