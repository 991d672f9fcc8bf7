/* passwd-file parsing into a hash table of entries. */
#include "auth/passwd_file.h"

#include <stdlib.h>
#include <string.h>

#include "common/xmalloc.h"

#define PASSWD_FIELD_COUNT 8	/* user .. extra_fields */

/* Splits the extra fields in place; spaces separate items. */
static void passwd_parse_extra(struct passwd_entry *e, char *extra)
{
	size_t cap = 0;
	for (char *save = NULL, *item = strtok_r(extra, " \t", &save); item != NULL;
	     item = strtok_r(NULL, " \t", &save)) {
		char *eq = strchr(item, '=');
		e->fields = xgrow(e->fields, &cap, e->fields_count + 1, sizeof(*e->fields));
		struct passwd_field *f = &e->fields[e->fields_count++];
		if (eq != NULL) {
			*eq = '\0';
			f->value = eq + 1;
		} else {
			f->value = "";
		}
		f->key = item;
	}
}

static void passwd_entry_free(struct passwd_entry *e)
{
	explicit_bzero(e->storage, e->storage_len); /* it holds hashes */
	free(e->storage);
	free(e->fields);
	free(e);
}

static int passwd_parse_line(struct passwd_table *table, const char *line,
			     size_t len, unsigned int lineno, char **error_r)
{
	char *copy = xstrndup(line, len);
	char *field[PASSWD_FIELD_COUNT] = { 0 };
	char *p = copy;

	/* the last field (extra_fields) may itself contain ':' */
	for (int i = 0; i < PASSWD_FIELD_COUNT; i++) {
		field[i] = p;
		char *colon = i + 1 < PASSWD_FIELD_COUNT ? strchr(p, ':') : NULL;
		if (colon == NULL) {
			for (int j = i + 1; j < PASSWD_FIELD_COUNT; j++)
				field[j] = copy + strlen(copy); /* "" */
			break;
		}
		*colon = '\0';
		p = colon + 1;
	}
	if (field[0][0] == '\0') {
		*error_r = xasprintf("line %u: empty username", lineno);
		free(copy);
		return -1;
	}
	if (passwd_table_lookup(table, field[0]) != NULL) {
		free(copy);
		return 0;
	}
	struct passwd_entry *e = xcalloc(1, sizeof(*e));
	e->storage = copy;
	e->storage_len = len;
	e->user = field[0];
	e->password = field[1];
	passwd_parse_extra(e, field[7]);
	hmap_insert(&table->entries, &e->node, hash_string(e->user));
	table->count++;
	return 0;
}

int passwd_table_parse(struct passwd_table *table, const char *data, size_t len,
		       char **error_r)
{
	unsigned int lineno = 0;

	hmap_init(&table->entries);
	table->count = 0;
	for (size_t off = 0; off < len; ) {
		const char *nl = memchr(data + off, '\n', len - off);
		size_t end = nl == NULL ? len : (size_t)(nl - data);
		size_t llen = end - off;
		lineno++;
		if (llen > 0 && data[off + llen - 1] == '\r')
			llen--;
		if (memchr(data + off, '\0', llen) != NULL) {
			*error_r = xasprintf("line %u: NUL byte", lineno);
			passwd_table_free(table);
			return -1;
		}
		if (llen > 0 && data[off] != '#' &&
		    passwd_parse_line(table, data + off, llen, lineno, error_r) < 0) {
			passwd_table_free(table);
			return -1;
		}
		off = end + 1;
	}
	return 0;
}

void passwd_table_free(struct passwd_table *table)
{
	struct hmap_node *n, *next;
	HMAP_FOR_EACH_SAFE(n, next, &table->entries) {
		hmap_remove(&table->entries, n);
		passwd_entry_free(CONTAINER_OF(n, struct passwd_entry, node));
	}
	hmap_destroy(&table->entries);
	table->count = 0;
}

const struct passwd_entry *passwd_table_lookup(const struct passwd_table *table,
					       const char *user)
{
	struct hmap_node *n;
	HMAP_FOR_EACH_WITH_HASH(n, hash_string(user), &table->entries) {
		const struct passwd_entry *e = CONTAINER_OF(n, struct passwd_entry, node);
		if (strcmp(e->user, user) == 0)
			return e;
	}
	return NULL;
}

const char *passwd_entry_field(const struct passwd_entry *e, const char *key)
{
	for (size_t i = 0; i < e->fields_count; i++) {
		if (strcmp(e->fields[i].key, key) == 0)
			return e->fields[i].value;
	}
	return NULL;
}
