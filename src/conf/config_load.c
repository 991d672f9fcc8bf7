/* Loads a libconfig file through the key table: defaults first, then the
 * file (unknown keys are errors, so typos never pass silently), then -o
 * overrides, then the cross-key checks of config_validate.c. */
#include <libconfig.h>
#include <libgen.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/sbuf.h"
#include "common/xmalloc.h"
#include "conf/config.h"
#include "conf/config_table.h"
#include "conf/config_validate.h"

struct conf_loader {
	struct config *cfg;
	char *error;
};

static void conf_error(struct conf_loader *ld, const config_setting_t *s,
		       const char *key, const char *fmt, ...) ATTR_FORMAT(4, 5);

static void conf_error(struct conf_loader *ld, const config_setting_t *s,
		       const char *key, const char *fmt, ...)
{
	struct sbuf sb = SBUF_INIT;
	va_list ap;

	if (ld->error != NULL)
		return;
	const char *file = s == NULL ? NULL : config_setting_source_file(s);
	sbuf_appendf(&sb, "%s:%u: ", file != NULL ? file : ld->cfg->path,
		       s == NULL ? 0 : config_setting_source_line(s));
	if (key != NULL)
		sbuf_appendf(&sb, "%s: ", key);
	va_start(ap, fmt);
	sbuf_vappendf(&sb, fmt, ap);
	va_end(ap);
	ld->error = xstrdup(sbuf_cstr(&sb));
	sbuf_free(&sb);
}

static char *conf_where(const struct config *cfg, const config_setting_t *s)
{
	const char *file = config_setting_source_file(s);
	return xasprintf("%s:%u", file != NULL ? file : cfg->path,
			 config_setting_source_line(s));
}

static void conf_record_source(struct config *cfg, const char *key,
			       const config_setting_t *s)
{
	cfg->sources = xrealloc(cfg->sources,
				(cfg->sources_count + 1) * sizeof(*cfg->sources));
	cfg->sources[cfg->sources_count].key = xstrdup(key);
	cfg->sources[cfg->sources_count].where = conf_where(cfg, s);
	cfg->sources_count++;
}

static void conf_apply_defaults(const struct conf_key *keys, void *base)
{
	for (const struct conf_key *k = keys; k->name != NULL; k++) {
		const char *error;
		if (k->type == CONF_TYPE_GROUP) {
			conf_apply_defaults(k->sub, base);
			continue;
		}
		if (k->def == NULL || k->type == CONF_TYPE_LIST)
			continue;
		if (conf_parse_scalar(k, k->def, (char *)base + k->offset, &error) < 0)
			abort(); /* a default that does not parse is a table bug */
	}
}

/* The text form of a scalar setting, as the value parsers take it. */
static const char *conf_setting_text(const struct conf_key *key,
				     const config_setting_t *s, char buf[32],
				     const char **error_r)
{
	switch (config_setting_type(s)) {
	case CONFIG_TYPE_STRING:
		return config_setting_get_string(s);
	case CONFIG_TYPE_INT:
	case CONFIG_TYPE_INT64:
		if (key->type == CONF_TYPE_STRING || key->type == CONF_TYPE_ENUM)
			break;
		snprintf(buf, 32, "%lld", config_setting_get_int64(s));
		return buf;
	case CONFIG_TYPE_BOOL:
		if (key->type != CONF_TYPE_BOOL)
			break;
		return config_setting_get_bool(s) ? "true" : "false";
	default:
		break;
	}
	*error_r = key->type == CONF_TYPE_BOOL ? "expected true or false" :
		key->type == CONF_TYPE_STRING || key->type == CONF_TYPE_ENUM ?
		"expected a string" : "expected a number or a string with a unit";
	return NULL;
}

static void conf_load_list_values(struct conf_loader *ld,
				  const struct conf_key *key, const char *path,
				  const config_setting_t *s, void *field)
{
	const char *error;
	int type = config_setting_type(s);

	conf_free_key(key, (char *)field - key->offset);
	if (type == CONFIG_TYPE_STRING) {
		if (conf_parse_scalar(key, config_setting_get_string(s), field,
				      &error) < 0)
			conf_error(ld, s, path, "%s", error);
		return;
	}
	if (type != CONFIG_TYPE_ARRAY && type != CONFIG_TYPE_LIST) {
		conf_error(ld, s, path, "expected a list of strings [ \"...\", ... ]");
		return;
	}
	for (int i = 0; i < config_setting_length(s); i++) {
		const config_setting_t *e = config_setting_get_elem(s, (unsigned)i);
		if (config_setting_type(e) != CONFIG_TYPE_STRING) {
			conf_error(ld, e, path, "expected a list of strings");
			return;
		}
		const char *text = config_setting_get_string(e);
		if (conf_parse_list_item(key, text, field, &error) < 0) {
			conf_error(ld, e, path, "'%s': %s", text, error);
			return;
		}
	}
}

static void conf_load_group(struct conf_loader *ld, const struct conf_key *keys,
			    const char *prefix, const config_setting_t *group,
			    void *base);

/* A group of any names, each with a string value. */
static void conf_load_strmap(struct conf_loader *ld, const struct conf_key *key,
			     const char *path, const config_setting_t *s, void *base)
{
	struct conf_strmap *m = (void *)((char *)base + key->offset);

	if (config_setting_type(s) != CONFIG_TYPE_GROUP) {
		conf_error(ld, s, path, "expected a group { name = \"value\"; ... }");
		return;
	}
	conf_free_key(key, base);
	for (int i = 0; i < config_setting_length(s); i++) {
		const config_setting_t *e = config_setting_get_elem(s, (unsigned)i);
		if (config_setting_type(e) != CONFIG_TYPE_STRING) {
			conf_error(ld, e, path, "%s: expected a string",
				   config_setting_name(e));
			return;
		}
		conf_strmap_add(m, config_setting_name(e), config_setting_get_string(e));
	}
}

static void conf_load_list(struct conf_loader *ld, const struct conf_key *key,
			   const char *path, const config_setting_t *s, void *base)
{
	char **elems = (char **)(void *)((char *)base + key->offset);
	size_t *count = (size_t *)(void *)((char *)base + key->count_offset);
	int n = 1;

	if (config_setting_type(s) == CONFIG_TYPE_LIST)
		n = config_setting_length(s);
	else if (config_setting_type(s) != CONFIG_TYPE_GROUP) {
		conf_error(ld, s, path, "expected a list of groups ( { ... }, ... )");
		return;
	}
	conf_free_key(key, base);
	*elems = xcalloc((size_t)(n == 0 ? 1 : n), key->elem_size);
	for (int i = 0; i < n && ld->error == NULL; i++) {
		const config_setting_t *e = config_setting_type(s) == CONFIG_TYPE_LIST ?
			config_setting_get_elem(s, (unsigned)i) : s;
		char *elem = *elems + (size_t)i * key->elem_size;
		*count = (size_t)i + 1;
		conf_apply_defaults(key->sub, elem);
		*(char **)(void *)(elem + key->source_offset) = conf_where(ld->cfg, e);
		if (config_setting_type(e) != CONFIG_TYPE_GROUP) {
			conf_error(ld, e, path, "expected a group { ... }");
			return;
		}
		char *epath = xasprintf("%s[%d]", path, i);
		conf_load_group(ld, key->sub, epath, e, elem);
		free(epath);
	}
}

static const struct conf_key *conf_find_key(const struct conf_key *keys,
					    const char *name)
{
	for (const struct conf_key *k = keys; k->name != NULL; k++) {
		if (strcmp(k->name, name) == 0)
			return k;
	}
	return NULL;
}

static void conf_load_setting(struct conf_loader *ld, const struct conf_key *k,
			      const char *path, const config_setting_t *s,
			      void *base)
{
	void *field = (char *)base + k->offset;
	const char *error = NULL;
	char buf[32];

	switch (k->type) {
	case CONF_TYPE_GROUP:
		if (config_setting_type(s) != CONFIG_TYPE_GROUP) {
			conf_error(ld, s, path, "expected a group { ... }");
			return;
		}
		conf_load_group(ld, k->sub, path, s, base);
		return;
	case CONF_TYPE_LIST:
		conf_load_list(ld, k, path, s, base);
		return;
	case CONF_TYPE_STRMAP:
		conf_load_strmap(ld, k, path, s, base);
		break;
	case CONF_TYPE_STRLIST:
	case CONF_TYPE_CIDRLIST:
		conf_load_list_values(ld, k, path, s, field);
		break;
	default: {
		const char *text = conf_setting_text(k, s, buf, &error);
		if (text == NULL) {
			conf_error(ld, s, path, "%s", error);
			return;
		}
		if (conf_parse_scalar(k, text, field, &error) < 0) {
			conf_error(ld, s, path, "'%s': %s", text, error);
			return;
		}
		break;
	}
	}
	conf_record_source(ld->cfg, path, s);
}

static void conf_load_group(struct conf_loader *ld, const struct conf_key *keys,
			    const char *prefix, const config_setting_t *group,
			    void *base)
{
	for (int i = 0; i < config_setting_length(group) && ld->error == NULL; i++) {
		const config_setting_t *s = config_setting_get_elem(group, (unsigned)i);
		const char *name = config_setting_name(s);
		char *path = prefix == NULL ? xstrdup(name) :
			xasprintf("%s.%s", prefix, name);
		const struct conf_key *k = conf_find_key(keys, name);
		if (k == NULL)
			conf_error(ld, s, NULL, "unknown setting '%s'", path);
		else
			conf_load_setting(ld, k, path, s, base);
		free(path);
	}
}

/* "-o login.timeout=30s": scalar and string-list keys of the root or of a
 * group; list-of-group entries cannot be addressed. */
static void conf_apply_override(struct conf_loader *ld,
				const struct config_override *o)
{
	const struct conf_key *keys = config_root_keys, *k = NULL;
	char *name = xstrdup(o->key), *save = NULL;
	const char *error;

	for (char *part = strtok_r(name, ".", &save); part != NULL;
	     part = strtok_r(NULL, ".", &save)) {
		k = keys == NULL ? NULL : conf_find_key(keys, part);
		if (k == NULL)
			break;
		keys = k->type == CONF_TYPE_GROUP ? k->sub : NULL;
	}
	free(name);
	if (k == NULL || k->type == CONF_TYPE_GROUP || k->type == CONF_TYPE_LIST ||
	    k->type == CONF_TYPE_STRMAP) {
		ld->error = xasprintf("-o %s: unknown or non-scalar setting", o->key);
		return;
	}
	void *field = (char *)ld->cfg + k->offset;
	if (k->type == CONF_TYPE_STRLIST || k->type == CONF_TYPE_CIDRLIST)
		conf_free_key(k, ld->cfg);
	if (conf_parse_scalar(k, o->value, field, &error) < 0)
		ld->error = xasprintf("-o %s: '%s': %s", o->key, o->value, error);
}

struct config *config_load(const char *path,
			   const struct config_override *overrides,
			   size_t overrides_count, char **error_r)
{
	struct conf_loader ld = { .cfg = xcalloc(1, sizeof(struct config)) };
	config_t lc;
	char *dir = xstrdup(path);

	ld.cfg->path = xstrdup(path);
	conf_apply_defaults(config_root_keys, ld.cfg);

	config_init(&lc);
	config_set_include_dir(&lc, dirname(dir));
	if (config_read_file(&lc, path) != CONFIG_TRUE) {
		if (config_error_type(&lc) == CONFIG_ERR_FILE_IO)
			ld.error = xasprintf("%s: cannot read the file", path);
		else
			ld.error = xasprintf("%s:%d: %s",
					     config_error_file(&lc) != NULL ?
					     config_error_file(&lc) : path,
					     config_error_line(&lc),
					     config_error_text(&lc));
	} else {
		conf_load_group(&ld, config_root_keys, NULL,
				config_root_setting(&lc), ld.cfg);
	}
	for (size_t i = 0; i < overrides_count && ld.error == NULL; i++)
		conf_apply_override(&ld, &overrides[i]);
	if (ld.error == NULL)
		ld.error = config_validate(ld.cfg);
	config_destroy(&lc);
	free(dir);
	if (ld.error != NULL) {
		config_free(&ld.cfg);
		*error_r = ld.error;
		return NULL;
	}
	return ld.cfg;
}
