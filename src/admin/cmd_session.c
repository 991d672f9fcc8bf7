/* loft's session commands on the admin socket, the filter they share with
 * the ipc socket, and kicking.
 *
 *   SESSION-LIST[\t<filter>...]  -> one line per session (admin_wire.h), ""
 *   SESSION-KICK[\t<filter>...]  -> "user\tcount" per kicked user, ""
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "admin/admin_private.h"
#include "admin/admin_wire.h"
#include "common/hmap.h"
#include "common/tabescape.h"
#include "common/xmalloc.h"
#include "registry/filter.h"
#include "registry/registry.h"

#define ADMIN_KICK_TEXT "Kicked by admin."

int admin_filter_parse(struct admin_filter *af, char *const *fields, int count,
		       const char **error_r)
{
	size_t nmasks = 0, ndests = 0, nhosts = 0;

	memset(af, 0, sizeof(*af));
	af->masks = xcalloc((size_t)count + 1, sizeof(*af->masks));
	af->dests = xcalloc((size_t)count + 1, sizeof(*af->dests));
	af->hosts = xcalloc((size_t)count + 1, sizeof(*af->hosts));
	for (int i = 0; i < count; i++) {
		const char *field = fields[i];
		const char *eq = strchr(field, '=');
		size_t klen = eq == NULL ? strlen(field) : (size_t)(eq - field);
		const char *value = eq == NULL ? NULL : eq + 1;
#define IS(key) (klen == strlen(key) && strncmp(field, key, klen) == 0)
		if (IS("user") && value != NULL) {
			af->masks[nmasks++] = value;
		} else if (IS("alt") && value != NULL) {
			af->f.alt_field = value;
		} else if (IS("net") && value != NULL) {
			if (cidr_parse(value, &af->f.net) < 0) {
				*error_r = "invalid network";
				return -1;
			}
			af->f.have_net = true;
		} else if (IS("dest") && value != NULL) {
			if (ipaddr_parse(value, &af->dests[ndests++]) < 0) {
				*error_r = "invalid backend address";
				return -1;
			}
		} else if (IS("desthost") && value != NULL) {
			af->hosts[nhosts++] = value;
		} else if (IS("logged-in") && value == NULL) {
			af->f.logged_in = true;
		} else if (IS("proxied") && value == NULL) {
			af->f.proxied = true;
		} else {
			*error_r = "unknown filter";
			return -1;
		}
#undef IS
	}
	af->f.user_masks = af->masks;
	af->f.user_masks_count = nmasks;
	af->f.dests = af->dests;
	af->f.dests_count = ndests;
	af->f.dest_hosts = af->hosts;
	af->f.dest_hosts_count = nhosts;
	return 0;
}

void admin_filter_free(struct admin_filter *af)
{
	free(af->masks);
	free(af->dests);
	free(af->hosts);
}

/* ---- kicking ------------------------------------------------------- */

struct admin_kicked_user {
	struct hmap_node node;
	size_t count;
	char name[];
};

struct admin_kicked {
	struct hmap users;
	size_t distinct;
};

struct admin_kick_ctx {
	const char *text;
	size_t count;
	struct admin_kicked *names;
};

static void admin_kicked_add(struct admin_kicked *k, const char *name)
{
	struct hmap_node *n;
	uint64_t hash = hash_string(name);
	HMAP_FOR_EACH_WITH_HASH(n, hash, &k->users) {
		struct admin_kicked_user *u = CONTAINER_OF(n, struct admin_kicked_user, node);
		if (strcmp(u->name, name) == 0) {
			u->count++;
			return;
		}
	}
	size_t len = strlen(name);
	struct admin_kicked_user *u = xcalloc(1, sizeof(*u) + len + 1);
	memcpy(u->name, name, len + 1);
	u->count = 1;
	hmap_insert(&k->users, &u->node, hash);
	k->distinct++;
}

static void admin_kick_one(struct registry_entry *e, void *ctx)
{
	struct admin_kick_ctx *k = ctx;
	if (!registry_kick(e, k->text))
		return;
	k->count++;
	if (k->names != NULL)
		admin_kicked_add(k->names, e->user != NULL ? e->user : "");
}

size_t admin_kick(struct registry *reg, const struct registry_filter *f,
		  const char *text, struct admin_kicked **names_r)
{
	struct admin_kick_ctx k = { .text = text };
	if (names_r != NULL) {
		k.names = xcalloc(1, sizeof(*k.names));
		hmap_init(&k.names->users);
		*names_r = k.names;
	}
	registry_match(reg, f, admin_kick_one, &k);
	return k.count;
}

static int admin_kicked_cmp(const void *a, const void *b)
{
	const struct admin_kicked_user *const *ua = a, *const *ub = b;
	return strcmp((*ua)->name, (*ub)->name);
}

void admin_kicked_write(struct admin_kicked **kp, struct sbuf *out)
{
	struct admin_kicked *k = *kp;
	struct admin_kicked_user **sorted = xcalloc(k->distinct + 1, sizeof(*sorted));
	struct hmap_node *n, *next;
	size_t i = 0;
	HMAP_FOR_EACH(n, &k->users)
		sorted[i++] = CONTAINER_OF(n, struct admin_kicked_user, node);
	qsort(sorted, k->distinct, sizeof(*sorted), admin_kicked_cmp);
	for (i = 0; i < k->distinct; i++) {
		tabescape_append(out, sorted[i]->name);
		sbuf_appendf(out, "\t%zu\n", sorted[i]->count);
	}
	sbuf_appendc(out, '\n');
	free(sorted);
	HMAP_FOR_EACH_SAFE(n, next, &k->users) {
		hmap_remove(&k->users, n);
		free(CONTAINER_OF(n, struct admin_kicked_user, node));
	}
	hmap_destroy(&k->users);
	free(k);
	*kp = NULL;
}

/* ---- commands -------------------------------------------------------- */

static void admin_field(struct sbuf *out, const char *value)
{
	sbuf_appendc(out, '\t');
	tabescape_append(out, value);
}

struct session_list_ctx {
	struct sbuf *out;
	long pid;	/* getpid() once per list: a system call per line cost
			 * a quarter of a 66,667-session list (issue 14) */
};

static void session_list_one(struct registry_entry *e, void *ctx)
{
	struct session_list_ctx *l = ctx;
	struct sbuf *o = l->out;
	char ip[IPADDR_STRLEN], num[32];

	sbuf_appendf(o, "%016llx", (unsigned long long)e->id);
	admin_field(o, e->service);
	admin_field(o, e->user != NULL ? e->user : "");
	admin_field(o, registry_state_name(e->state));
	admin_field(o, ipaddr_to_str(&e->client_ip, ip));
	sbuf_appendf(o, "\t%u", e->client_port);
	admin_field(o, ipaddr_to_str(&e->backend_ip, ip));
	num[0] = '\0';
	if (e->backend_port != 0)
		snprintf(num, sizeof(num), "%u", e->backend_port);
	admin_field(o, num);
	sbuf_appendf(o, "\t%llu\t%ld", (unsigned long long)(e->start_ms / 1000), l->pid);
	for (size_t i = 0; i < e->alt_count; i++) {
		sbuf_appendc(o, '\t');
		tabescape_append(o, e->alt[i].field);
		sbuf_appendc(o, '=');
		tabescape_append(o, e->alt[i].value);
	}
	sbuf_appendc(o, '\n');
}

static void cmd_session_list(struct admin_request *req, char **args, int nargs)
{
	struct admin_ctx *ctx = req->ctx;
	struct sbuf *out = req->out;
	struct admin_filter af;
	const char *error;
	if (admin_filter_parse(&af, args, nargs, &error) < 0) {
		admin_reply_error(out, "SESSION-LIST: %s", error);
	} else {
		struct session_list_ctx l = { out, (long)getpid() };
		registry_match(ctx->registry, &af.f, session_list_one, &l);
		sbuf_appendc(out, '\n');
	}
	admin_filter_free(&af);
}

static void cmd_session_kick(struct admin_request *req, char **args, int nargs)
{
	struct admin_ctx *ctx = req->ctx;
	struct sbuf *out = req->out;
	struct admin_filter af;
	struct admin_kicked *names;
	const char *error;
	if (admin_filter_parse(&af, args, nargs, &error) < 0) {
		admin_reply_error(out, "SESSION-KICK: %s", error);
	} else {
		admin_kick(ctx->registry, &af.f, ADMIN_KICK_TEXT, &names);
		admin_kicked_write(&names, out);
	}
	admin_filter_free(&af);
}

const struct admin_cmd admin_session_cmds[] = {
	{ ADMIN_CMD_SESSION_LIST, 0, 62, cmd_session_list },
	{ ADMIN_CMD_SESSION_KICK, 0, 62, cmd_session_kick },
	{ NULL, 0, 0, NULL },
};
