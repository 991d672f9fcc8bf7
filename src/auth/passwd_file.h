/* Dovecot's passwd-file format (reference §10.1):
 *
 *   user:password:uid:gid:gecos:home:shell:extra_fields
 *
 * Only user is required; missing trailing fields are empty. extra_fields
 * are space-separated "key=value" or bare "key" items (nologin, proxy).
 * Lines starting with '#' and empty lines are ignored. This module
 * parses a whole file into a lookup table; it does no I/O of its own. */
#ifndef LOFT_AUTH_PASSWD_FILE_H
#define LOFT_AUTH_PASSWD_FILE_H

#include <stddef.h>

#include "common/hmap.h"

struct passwd_field {
	const char *key;
	const char *value;	/* "" for a bare key */
};

struct passwd_entry {
	struct hmap_node node;
	const char *user;
	const char *password;	/* "" when the field is empty */
	struct passwd_field *fields;
	size_t fields_count;
	char *storage;		/* the line copy all strings point into */
	size_t storage_len;
};

struct passwd_table {
	struct hmap entries;
	size_t count;
};

/* Parses file contents; on a malformed line returns -1 with
 * "line N: reason". Duplicate users: the first entry wins (Dovecot). */
int passwd_table_parse(struct passwd_table *table, const char *data, size_t len,
		       char **error_r);
void passwd_table_free(struct passwd_table *table);

const struct passwd_entry *passwd_table_lookup(const struct passwd_table *table,
					       const char *user);
const char *passwd_entry_field(const struct passwd_entry *e, const char *key);

#endif
