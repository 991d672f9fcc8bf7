/* Writes the effective configuration (loftd -n) in libconfig syntax, with
 * each key's documentation as a comment, by walking the key table. */
#include <inttypes.h>
#include <stdbool.h>
#include <stdio.h>

#include "common/units.h"
#include "conf/config.h"
#include "conf/config_table.h"

static void conf_print_string(FILE *out, const char *s)
{
	fputc('"', out);
	for (; s != NULL && *s != '\0'; s++) {
		switch (*s) {
		case '"': fputs("\\\"", out); break;
		case '\\': fputs("\\\\", out); break;
		case '\n': fputs("\\n", out); break;
		case '\t': fputs("\\t", out); break;
		default: fputc(*s, out); break;
		}
	}
	fputc('"', out);
}

void conf_print_value(FILE *out, const struct conf_key *k, const void *field)
{
	char buf[32];

	switch (k->type) {
	case CONF_TYPE_STRING:
		conf_print_string(out, *(char *const *)field);
		break;
	case CONF_TYPE_BOOL:
		fputs(*(const bool *)field ? "true" : "false", out);
		break;
	case CONF_TYPE_UINT:
	case CONF_TYPE_PORT:
		fprintf(out, "%u", *(const unsigned int *)field);
		break;
	case CONF_TYPE_DURATION:
		conf_print_string(out, duration_format(*(const uint64_t *)field, buf));
		break;
	case CONF_TYPE_SIZE:
		conf_print_string(out, size_format(*(const uint64_t *)field, buf));
		break;
	case CONF_TYPE_ENUM:
		conf_print_string(out, k->values[*(const unsigned int *)field]);
		break;
	case CONF_TYPE_STRLIST: {
		const struct conf_strlist *l = field;
		fputs("[", out);
		for (size_t i = 0; i < l->count; i++) {
			fputs(i == 0 ? " " : ", ", out);
			conf_print_string(out, l->items[i]);
		}
		fputs(l->count > 0 ? " ]" : "]", out);
		break;
	}
	case CONF_TYPE_CIDRLIST: {
		const struct conf_cidrlist *l = field;
		fputs("[", out);
		for (size_t i = 0; i < l->count; i++) {
			char ip[IPADDR_STRLEN], text[IPADDR_STRLEN + 8];
			snprintf(text, sizeof(text), "%s/%u",
				 ipaddr_to_str(&l->items[i].net, ip), l->items[i].bits);
			fputs(i == 0 ? " " : ", ", out);
			conf_print_string(out, text);
		}
		fputs(l->count > 0 ? " ]" : "]", out);
		break;
	}
	case CONF_TYPE_STRMAP: {
		const struct conf_strmap *m = field;
		fputs("{", out);
		for (size_t i = 0; i < m->names.count; i++) {
			fprintf(out, " %s = ", m->names.items[i]);
			conf_print_string(out, m->values.items[i]);
			fputs(";", out);
		}
		fputs(" }", out);
		break;
	}
	case CONF_TYPE_GROUP:
	case CONF_TYPE_LIST:
		break;
	}
}

static void conf_print_keys(FILE *out, const struct conf_key *keys,
			    const void *base, int indent);

static void conf_print_key(FILE *out, const struct conf_key *k,
			   const void *base, int indent)
{
	const void *field = (const char *)base + k->offset;

	if (k->type == CONF_TYPE_GROUP) {
		fprintf(out, "\n%*s# %s\n%*s%s = {\n", indent, "", k->doc, indent, "",
			k->name);
		conf_print_keys(out, k->sub, base, indent + 2);
		fprintf(out, "%*s};\n", indent, "");
		return;
	}
	if (k->type == CONF_TYPE_LIST) {
		const char *elems = *(char *const *)field;
		size_t count = *(const size_t *)(const void *)
			((const char *)base + k->count_offset);
		fprintf(out, "\n%*s# %s\n%*s%s = (\n", indent, "", k->doc, indent, "",
			k->name);
		for (size_t i = 0; i < count; i++) {
			fprintf(out, "%*s{\n", indent + 2, "");
			conf_print_keys(out, k->sub, elems + i * k->elem_size,
					indent + 4);
			fprintf(out, "%*s}%s\n", indent + 2, "", i + 1 < count ? "," : "");
		}
		fprintf(out, "%*s);\n", indent, "");
		return;
	}
	/* unset optional strings are left out: libconfig has no null */
	if (k->type == CONF_TYPE_STRING && *(char *const *)field == NULL) {
		fprintf(out, "%*s# %s = ...;  (not set) %s\n", indent, "", k->name,
			k->doc);
		return;
	}
	if (k->secret && **(char *const *)field != '\0') {
		fprintf(out, "%*s# %s = (hidden);  %s\n", indent, "", k->name, k->doc);
		return;
	}
	fprintf(out, "%*s%s = ", indent, "", k->name);
	conf_print_value(out, k, field);
	fprintf(out, ";  # %s\n", k->doc);
}

static void conf_print_keys(FILE *out, const struct conf_key *keys,
			    const void *base, int indent)
{
	for (const struct conf_key *k = keys; k->name != NULL; k++)
		conf_print_key(out, k, base, indent);
}

void config_print(const struct config *cfg, FILE *out)
{
	fprintf(out, "# effective configuration of %s\n", cfg->path);
	conf_print_keys(out, config_root_keys, cfg, 0);
}

static void conf_print_key_paths(FILE *out, const struct conf_key *keys,
				 const char *prefix)
{
	for (const struct conf_key *k = keys; k->name != NULL; k++) {
		char path[128];
		snprintf(path, sizeof(path), "%s%s%s", prefix, *prefix ? "." : "",
			 k->name);
		fprintf(out, "%s\n", path);
		if (k->type == CONF_TYPE_GROUP || k->type == CONF_TYPE_LIST)
			conf_print_key_paths(out, k->sub, path);
	}
}

void config_print_keys(FILE *out)
{
	conf_print_key_paths(out, config_root_keys, "");
}
