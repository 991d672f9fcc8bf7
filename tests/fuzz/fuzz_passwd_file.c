/* passwd-file contents: lines, fields and extra fields (Dovecot's
 * format); every parsed user is looked up again with its fields. */
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>

#include "auth/passwd_file.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct passwd_table t;
	char *error = NULL;
	if (passwd_table_parse(&t, (const char *)data, size, &error) < 0) {
		free(error);
		return 0;
	}
	struct hmap_node *n;
	HMAP_FOR_EACH(n, &t.entries) {
		const struct passwd_entry *e = CONTAINER_OF(n, struct passwd_entry, node);
		if (passwd_table_lookup(&t, e->user) == NULL)
			abort();
		for (size_t i = 0; i < e->fields_count; i++)
			(void)passwd_entry_field(e, e->fields[i].key);
		(void)passwd_entry_field(e, "host");
	}
	(void)passwd_table_lookup(&t, "nosuchuser");
	passwd_table_free(&t);
	return 0;
}
