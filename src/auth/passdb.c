/* The passdb driver table and the meaning of extra fields. */
#include "auth/passdb.h"

#include <stdlib.h>
#include <string.h>

#include "common/net.h"
#include "common/xmalloc.h"

extern const struct passdb_driver passdb_passwd_file;
extern const struct passdb_driver passdb_backend;
extern const struct passdb_driver passdb_ldap;
extern const struct passdb_driver passdb_sql;

static const struct passdb_driver *const passdb_drivers[] = {
	[CONF_PASSDB_PASSWD_FILE] = &passdb_passwd_file,
	[CONF_PASSDB_BACKEND] = &passdb_backend,
	[CONF_PASSDB_LDAP] = &passdb_ldap,
	[CONF_PASSDB_SQL] = &passdb_sql,
};

const struct passdb_driver *passdb_driver_get(unsigned int driver)
{
	return driver < ARRAY_SIZE(passdb_drivers) ? passdb_drivers[driver] : NULL;
}

static void passdb_set_string(char **dst, const char *value)
{
	free(*dst);
	*dst = xstrdup(value);
}

void passdb_apply_field(struct auth_result *r, const char *key, const char *value)
{
	if (strcmp(key, "host") == 0 || strcmp(key, "hostip") == 0) {
		/* hostip wins over host: it is the address to connect to */
		if (r->host == NULL || strcmp(key, "hostip") == 0)
			passdb_set_string(&r->host, value);
	} else if (strcmp(key, "port") == 0) {
		uint16_t port;
		if (port_parse(value, &port) == 0)
			r->port = port;
	} else if (strcmp(key, "destuser") == 0) {
		passdb_set_string(&r->destuser, value);
	} else if (strcmp(key, "director_tag") == 0) {
		passdb_set_string(&r->director_tag, value);
	} else if (strcmp(key, "reason") == 0) {
		passdb_set_string(&r->reason, value);
	} else if (strcmp(key, "nopassword") == 0) {
		r->password_unchecked = true;
	} else if (strncmp(key, "user_", 5) == 0 && key[5] != '\0') {
		r->alt = xrealloc(r->alt, (r->alt_count + 1) * sizeof(*r->alt));
		r->alt[r->alt_count].field = xstrdup(key);
		r->alt[r->alt_count].value = xstrdup(value);
		r->alt_count++;
	}
	/* "proxy", "nologin" and unknown fields: nologin is read by the
	 * caller; loft always proxies; the rest are Dovecot's and ignored */
}

void passdb_lookup_done_record(struct passdb_lookup *lookup, const char *const *names,
			       char **values, size_t count, bool checked)
{
	struct auth_result *result = lookup->result;
	char **password = NULL;

	for (size_t i = 0; i < count; i++) {
		if (values[i] == NULL)
			continue;
		if (strcmp(names[i], "password") == 0) {
			password = &values[i];
		} else if (strcmp(names[i], "user") == 0) {
			passdb_set_string(&result->user, values[i]);
		} else {
			if (strcmp(names[i], "nologin") == 0)
				result->status = AUTH_STATUS_NOLOGIN;
			passdb_apply_field(result, names[i], values[i]);
		}
	}
	if (checked || result->password_unchecked || lookup->password == NULL) {
		passdb_lookup_done(lookup, PASSDB_FOUND, NULL, NULL);
	} else if (password == NULL) {
		/* a password to read that is not there cannot be checked */
		passdb_lookup_done(lookup, PASSDB_MISMATCH, NULL, NULL);
	} else {
		char *stored = *password;
		*password = NULL;
		passdb_lookup_done(lookup, PASSDB_FOUND, stored, NULL);
	}
}
