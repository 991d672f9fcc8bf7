/* Parsing of single values from their text form. Defaults, file values and
 * -o overrides all pass through here, so they are checked the same way.
 * Also what a value owns: freeing it, and copying it (for a reload). */
#include <errno.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "common/units.h"
#include "common/xmalloc.h"
#include "conf/config.h"
#include "conf/config_table.h"

static int conf_parse_bool(const char *text, bool *b_r)
{
	static const char *const yes[] = { "true", "yes", "on", "1" };
	static const char *const no[] = { "false", "no", "off", "0" };
	for (size_t i = 0; i < 4; i++) {
		if (strcasecmp(text, yes[i]) == 0) {
			*b_r = true;
			return 0;
		}
		if (strcasecmp(text, no[i]) == 0) {
			*b_r = false;
			return 0;
		}
	}
	return -1;
}

static int conf_parse_uint(const char *text, uint64_t *v_r)
{
	char *end;
	if (*text < '0' || *text > '9')
		return -1;
	errno = 0;
	unsigned long long v = strtoull(text, &end, 10);
	if (errno != 0 || *end != '\0')
		return -1;
	*v_r = v;
	return 0;
}

static int conf_check_range(const struct conf_key *key, uint64_t v,
			    const char **error_r)
{
	if (key->max != 0 && (v < key->min || v > key->max)) {
		*error_r = "value out of range";
		return -1;
	}
	return 0;
}

int conf_parse_scalar(const struct conf_key *key, const char *text,
		      void *dst, const char **error_r)
{
	uint64_t v;

	switch (key->type) {
	case CONF_TYPE_STRING:
		free(*(char **)dst);
		*(char **)dst = xstrdup(text);
		return 0;
	case CONF_TYPE_BOOL:
		if (conf_parse_bool(text, dst) < 0) {
			*error_r = "expected true or false";
			return -1;
		}
		return 0;
	case CONF_TYPE_UINT:
		if (conf_parse_uint(text, &v) < 0 || v > UINT32_MAX) {
			*error_r = "expected a non-negative integer";
			return -1;
		}
		if (conf_check_range(key, v, error_r) < 0)
			return -1;
		*(unsigned int *)dst = (unsigned int)v;
		return 0;
	case CONF_TYPE_PORT:
		if (conf_parse_uint(text, &v) < 0 || v > 65535) {
			*error_r = "expected a port number 0..65535";
			return -1;
		}
		*(unsigned int *)dst = (unsigned int)v;
		return 0;
	case CONF_TYPE_DURATION:
		if (duration_parse_ms(text, &v) < 0) {
			*error_r = "expected a duration such as 30s, 15m or 1h";
			return -1;
		}
		if (conf_check_range(key, v, error_r) < 0)
			return -1;
		*(uint64_t *)dst = v;
		return 0;
	case CONF_TYPE_SIZE:
		if (size_parse(text, &v) < 0) {
			*error_r = "expected a size such as 8192, 64k or 1M";
			return -1;
		}
		if (conf_check_range(key, v, error_r) < 0)
			return -1;
		*(uint64_t *)dst = v;
		return 0;
	case CONF_TYPE_ENUM:
		for (unsigned int i = 0; key->values[i] != NULL; i++) {
			if (strcasecmp(text, key->values[i]) == 0) {
				*(unsigned int *)dst = i;
				return 0;
			}
		}
		*error_r = "not one of the allowed values";
		return -1;
	case CONF_TYPE_STRLIST:
	case CONF_TYPE_CIDRLIST: {
		/* a single string: items separated by spaces or commas */
		char *copy = xstrdup(text), *save = NULL;
		int ret = 0;
		for (char *tok = strtok_r(copy, " ,", &save); tok != NULL;
		     tok = strtok_r(NULL, " ,", &save)) {
			if ((ret = conf_parse_list_item(key, tok, dst, error_r)) < 0)
				break;
		}
		free(copy);
		return ret;
	}
	case CONF_TYPE_STRMAP:
	case CONF_TYPE_GROUP:
	case CONF_TYPE_LIST:
		break;
	}
	*error_r = "expected a group";
	return -1;
}

static void conf_strlist_free(struct conf_strlist *l)
{
	for (size_t i = 0; i < l->count; i++)
		free(l->items[i]);
	free(l->items);
	l->items = NULL;
	l->count = 0;
}

static void conf_strlist_copy(struct conf_strlist *dst, const struct conf_strlist *src)
{
	dst->items = xcalloc(src->count + 1, sizeof(*dst->items));
	for (size_t i = 0; i < src->count; i++)
		dst->items[i] = xstrdup(src->items[i]);
	dst->count = src->count;
}

static void conf_strlist_append(struct conf_strlist *l, const char *text)
{
	l->items = xrealloc(l->items, (l->count + 1) * sizeof(*l->items));
	l->items[l->count++] = xstrdup(text);
}

void conf_strmap_add(struct conf_strmap *map, const char *name, const char *value)
{
	conf_strlist_append(&map->names, name);
	conf_strlist_append(&map->values, value);
}

int conf_parse_list_item(const struct conf_key *key, const char *text,
			 void *dst, const char **error_r)
{
	if (key->type == CONF_TYPE_STRLIST) {
		conf_strlist_append(dst, text);
		return 0;
	}
	struct conf_cidrlist *l = dst;
	struct cidr c;
	if (cidr_parse(text, &c) < 0) {
		*error_r = "expected an IP address or network (ip/bits)";
		return -1;
	}
	l->items = xrealloc(l->items, (l->count + 1) * sizeof(*l->items));
	l->items[l->count++] = c;
	return 0;
}

void conf_free_key(const struct conf_key *key, void *base)
{
	void *field = (char *)base + key->offset;

	switch (key->type) {
	case CONF_TYPE_STRING:
		free(*(char **)field);
		*(char **)field = NULL;
		break;
	case CONF_TYPE_STRLIST:
		conf_strlist_free(field);
		break;
	case CONF_TYPE_STRMAP: {
		struct conf_strmap *m = field;
		conf_strlist_free(&m->names);
		conf_strlist_free(&m->values);
		break;
	}
	case CONF_TYPE_CIDRLIST: {
		struct conf_cidrlist *l = field;
		free(l->items);
		l->items = NULL;
		l->count = 0;
		break;
	}
	case CONF_TYPE_GROUP:
		for (const struct conf_key *k = key->sub; k->name != NULL; k++)
			conf_free_key(k, base);
		break;
	case CONF_TYPE_LIST: {
		char **elems = field;
		size_t *count = (size_t *)(void *)((char *)base + key->count_offset);
		for (size_t i = 0; i < *count; i++) {
			char *elem = *elems + i * key->elem_size;
			for (const struct conf_key *k = key->sub; k->name != NULL; k++)
				conf_free_key(k, elem);
			free(*(char **)(void *)(elem + key->source_offset));
		}
		free(*elems);
		*elems = NULL;
		*count = 0;
		break;
	}
	case CONF_TYPE_BOOL:
	case CONF_TYPE_UINT:
	case CONF_TYPE_PORT:
	case CONF_TYPE_DURATION:
	case CONF_TYPE_SIZE:
	case CONF_TYPE_ENUM:
		break;
	}
}

static size_t conf_field_size(enum conf_type type)
{
	static const size_t sizes[] = {
		[CONF_TYPE_STRING] = sizeof(char *),
		[CONF_TYPE_BOOL] = sizeof(bool),
		[CONF_TYPE_UINT] = sizeof(unsigned int),
		[CONF_TYPE_PORT] = sizeof(unsigned int),
		[CONF_TYPE_DURATION] = sizeof(uint64_t),
		[CONF_TYPE_SIZE] = sizeof(uint64_t),
		[CONF_TYPE_ENUM] = sizeof(unsigned int),
		[CONF_TYPE_STRLIST] = sizeof(struct conf_strlist),
		[CONF_TYPE_CIDRLIST] = sizeof(struct conf_cidrlist),
		[CONF_TYPE_STRMAP] = sizeof(struct conf_strmap),
	};
	return sizes[type];
}

static char *conf_strdup_or_null(const char *s)
{
	return s == NULL ? NULL : xstrdup(s);
}

void conf_copy_key(const struct conf_key *key, void *dst, const void *src)
{
	void *to = (char *)dst + key->offset;
	const void *from = (const char *)src + key->offset;

	conf_free_key(key, dst);
	switch (key->type) {
	case CONF_TYPE_STRING:
		*(char **)to = conf_strdup_or_null(*(char *const *)from);
		break;
	case CONF_TYPE_STRLIST:
		conf_strlist_copy(to, from);
		break;
	case CONF_TYPE_STRMAP: {
		const struct conf_strmap *a = from;
		struct conf_strmap *b = to;
		conf_strlist_copy(&b->names, &a->names);
		conf_strlist_copy(&b->values, &a->values);
		break;
	}
	case CONF_TYPE_CIDRLIST: {
		const struct conf_cidrlist *a = from;
		struct conf_cidrlist *b = to;
		b->items = xcalloc(a->count + 1, sizeof(*b->items));
		memcpy(b->items, a->items, a->count * sizeof(*a->items));
		b->count = a->count;
		break;
	}
	case CONF_TYPE_GROUP:
		for (const struct conf_key *k = key->sub; k->name != NULL; k++)
			conf_copy_key(k, dst, src);
		break;
	case CONF_TYPE_LIST: {
		const char *elems = *(char *const *)from;
		size_t count = *(const size_t *)(const void *)
			((const char *)src + key->count_offset);
		char *copy = xcalloc(count == 0 ? 1 : count, key->elem_size);
		for (size_t i = 0; i < count; i++) {
			const char *a = elems + i * key->elem_size;
			char *b = copy + i * key->elem_size;
			for (const struct conf_key *k = key->sub; k->name != NULL; k++)
				conf_copy_key(k, b, a);
			*(char **)(void *)(b + key->source_offset) = conf_strdup_or_null(
				*(char *const *)(const void *)(a + key->source_offset));
		}
		*(char **)to = copy;
		*(size_t *)(void *)((char *)dst + key->count_offset) = count;
		break;
	}
	case CONF_TYPE_BOOL:
	case CONF_TYPE_UINT:
	case CONF_TYPE_PORT:
	case CONF_TYPE_DURATION:
	case CONF_TYPE_SIZE:
	case CONF_TYPE_ENUM:
		memcpy(to, from, conf_field_size(key->type));
		break;
	}
}
