/* Merging a re-read configuration with the running one, key by key,
 * through the key table: values are compared in their printed form, and
 * the fresh configuration takes a copy of the running value of each key
 * only a restart can apply. The running configuration is not touched:
 * sessions may still hold it. */
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/macros.h"
#include "conf/config.h"
#include "conf/config_table.h"

/* What a running loftd cannot change: sockets it bound, directories and
 * the user it switched to, threads it started, passdbs it built, the
 * director's ring (changed at run time with loftadm director ...), the
 * TLS context towards backends, the admin sockets, the metrics endpoint,
 * where the log goes (worker threads log too). A prefix covers a group. */
static const char *const config_restart_keys[] = {
	"base_dir", "state_dir", "user", "group", "allow_root", "listeners",
	"passdb", "auth.workers", "auth.username_format", "director",
	"backend.ssl", "backend.ssl_verify", "backend.ssl_ca_file",
	"backend.ssl_ciphers", "admin", "metrics", "ring", "log.target",
};

bool config_key_reloadable(const char *key)
{
	for (size_t i = 0; i < ARRAY_SIZE(config_restart_keys); i++) {
		size_t n = strlen(config_restart_keys[i]);
		if (strncmp(key, config_restart_keys[i], n) == 0 &&
		    (key[n] == '\0' || key[n] == '.'))
			return false;
	}
	return true;
}

/* A value, or a whole list of groups, as text ("" for an unset string). */
static char *conf_value_text(const struct conf_key *k, const void *base)
{
	char *text = NULL;
	size_t len = 0;
	FILE *f = open_memstream(&text, &len);
	const void *field = (const char *)base + k->offset;
	if (k->type == CONF_TYPE_LIST) {
		const char *elems = *(char *const *)field;
		size_t count = *(const size_t *)(const void *)
			((const char *)base + k->count_offset);
		for (size_t i = 0; i < count; i++) {
			for (const struct conf_key *sub = k->sub; sub->name != NULL; sub++) {
				const void *elem = elems + i * k->elem_size;
				if (sub->type != CONF_TYPE_STRING ||
				    *(char *const *)(const void *)((const char *)elem + sub->offset) != NULL)
					conf_print_value(f, sub, (const char *)elem + sub->offset);
				fputc(';', f);
			}
			fputc('|', f);
		}
	} else if (k->type != CONF_TYPE_STRING || *(char *const *)field != NULL) {
		conf_print_value(f, k, field);
	}
	fclose(f);
	return text;
}

struct conf_reload {
	const struct config *running;
	struct config *fresh;
	config_change_cb *cb;
	void *ctx;
	size_t applied;
};

static void conf_reload_keys(struct conf_reload *r, const struct conf_key *keys,
			     const char *prefix)
{
	for (const struct conf_key *k = keys; k->name != NULL; k++) {
		char path[128];
		snprintf(path, sizeof(path), "%s%s%s", prefix, *prefix ? "." : "", k->name);
		if (k->type == CONF_TYPE_GROUP) {
			conf_reload_keys(r, k->sub, path);
			continue;
		}
		char *old = conf_value_text(k, r->running);
		char *new = conf_value_text(k, r->fresh);
		bool same = strcmp(old, new) == 0;
		free(old);
		free(new);
		if (same)
			continue;
		bool apply = k->type != CONF_TYPE_LIST && config_key_reloadable(path);
		if (apply)
			r->applied++;
		else
			conf_copy_key(k, r->fresh, r->running);
		r->cb(path, apply, r->ctx);
	}
}

size_t config_reload_merge(const struct config *running, struct config *fresh,
			   config_change_cb *cb, void *ctx)
{
	struct conf_reload r = { running, fresh, cb, ctx, 0 };
	conf_reload_keys(&r, config_root_keys, "");
	return r.applied;
}
