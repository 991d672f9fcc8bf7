/* The key table that drives loading, printing and documentation of the
 * configuration. Internal to src/conf. */
#ifndef LOFT_CONF_CONFIG_TABLE_H
#define LOFT_CONF_CONFIG_TABLE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdio.h>
#include <stdint.h>

#include "conf/config.h"

enum conf_type {
	CONF_TYPE_STRING,	/* char * */
	CONF_TYPE_BOOL,		/* bool */
	CONF_TYPE_UINT,		/* unsigned int, within [min, max] */
	CONF_TYPE_PORT,		/* unsigned int, 0..65535 */
	CONF_TYPE_DURATION,	/* uint64_t milliseconds, within [min, max] */
	CONF_TYPE_SIZE,		/* uint64_t bytes, within [min, max] */
	CONF_TYPE_ENUM,		/* unsigned int index into values */
	CONF_TYPE_STRLIST,	/* struct conf_strlist */
	CONF_TYPE_CIDRLIST,	/* struct conf_cidrlist */
	CONF_TYPE_STRMAP,	/* struct conf_strmap: a group of any names */
	CONF_TYPE_GROUP,	/* sub-keys; offsets relative to the parent */
	CONF_TYPE_LIST,		/* a list of groups: pointer + count */
};

struct conf_key {
	const char *name;
	enum conf_type type;
	size_t offset;
	const char *def;	/* default, in config text form; NULL: unset */
	const char *doc;	/* one line for -n comments and the man page */
	uint64_t min, max;	/* UINT, DURATION, SIZE */
	const char *const *values;	/* ENUM: NULL-terminated */
	bool secret;		/* loftd -n does not print a value that is set */
	/* GROUP and LIST */
	const struct conf_key *sub;
	size_t count_offset;	/* LIST: where the element count lives */
	size_t elem_size;	/* LIST: size of one element */
	size_t source_offset;	/* LIST: char *source in the element */
};

extern const struct conf_key config_root_keys[];

/* Parses a scalar from its text form into dst (the field the key names).
 * Returns 0, or -1 with a static reason. */
int conf_parse_scalar(const struct conf_key *key, const char *text,
		      void *dst, const char **error_r);
/* Parses one list item (STRLIST / CIDRLIST) and appends it. */
int conf_parse_list_item(const struct conf_key *key, const char *text,
			 void *dst, const char **error_r);
/* Appends name = value to a map. */
void conf_strmap_add(struct conf_strmap *map, const char *name, const char *value);
/* Writes a scalar or list value in config syntax (not GROUP or LIST). */
void conf_print_value(FILE *out, const struct conf_key *k, const void *field);
/* Frees what a key owns inside the struct at base. */
void conf_free_key(const struct conf_key *key, void *base);
/* Replaces the key's value in the struct at dst with a deep copy of its
 * value in the struct at src (any type, lists of groups too). */
void conf_copy_key(const struct conf_key *key, void *dst, const void *src);

#endif
