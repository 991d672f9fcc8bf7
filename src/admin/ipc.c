/* The ipc socket: a command table over the shared filter and kick. */
#include "admin/ipc.h"

#include <stdlib.h>
#include <string.h>

#include "admin/admin_private.h"
#include "admin/line_server.h"
#include "common/tabescape.h"
#include "common/xmalloc.h"
#include "registry/filter.h"
#include "registry/registry.h"

#define IPC_MAX_LINE 65536
#define IPC_MAX_ARGS 1024
#define IPC_KICK_TEXT "Kicked by admin."
#define IPC_DIRECTOR_KICK_TEXT "Kicked via director."

struct ipc {
	struct line_server *server;
	struct registry *registry;
};

struct ipc_cmd {
	const char *name;
	int min_args;
	void (*handler)(struct ipc *ipc, struct sbuf *out, char **args, int nargs);
};

static void ipc_field(struct sbuf *out, const char *value, bool first)
{
	if (!first)
		sbuf_appendc(out, '\t');
	tabescape_append(out, value);
}

/* The distinct user_* field names of the listed sessions, in order. */
struct ipc_alt_names {
	const char **names;
	size_t count, cap;
};

static void ipc_collect_alt(struct registry_entry *e, void *ctx)
{
	struct ipc_alt_names *a = ctx;
	for (size_t i = 0; i < e->alt_count; i++) {
		bool known = false;
		for (size_t j = 0; j < a->count && !known; j++)
			known = strcmp(a->names[j], e->alt[i].field) == 0;
		if (!known) {
			a->names = xgrow(a->names, &a->cap, a->count + 1, sizeof(*a->names));
			a->names[a->count++] = e->alt[i].field;
		}
	}
}

struct ipc_list_ctx {
	struct sbuf *out;
	const struct ipc_alt_names *alt;
};

static void ipc_list_one(struct registry_entry *e, void *ctx)
{
	struct ipc_list_ctx *l = ctx;
	char ip[IPADDR_STRLEN];

	sbuf_appendc(l->out, ':');
	ipc_field(l->out, e->user, true);
	for (size_t i = 0; i < l->alt->count; i++) {
		const char *v = registry_alt_value(e, l->alt->names[i]);
		ipc_field(l->out, v != NULL ? v : "", false);
	}
	ipc_field(l->out, e->service, false);
	ipc_field(l->out, ipaddr_to_str(&e->client_ip, ip), false);
	ipc_field(l->out, ipaddr_to_str(&e->backend_ip, ip), false);
	sbuf_appendf(l->out, "\t%u\n", e->backend_port);
}

/* One header line (§8.2) even when several sessions answer: doveadm
 * prints later headers as data, so loft never sends more than one. */
static void ipc_cmd_list_full(struct ipc *ipc, struct sbuf *out, char **args, int nargs)
{
	struct registry_filter f = { .logged_in = true, .proxied = true };
	struct ipc_alt_names alt = { 0 };
	(void)args;
	(void)nargs;

	registry_match(ipc->registry, &f, ipc_collect_alt, &alt);
	sbuf_appendc(out, ':');
	ipc_field(out, "username", true);
	for (size_t i = 0; i < alt.count; i++)
		ipc_field(out, alt.names[i], false);
	sbuf_appends(out, "\tservice\tsrc-ip\tdest-ip\tdest-port\n");
	struct ipc_list_ctx l = { out, &alt };
	registry_match(ipc->registry, &f, ipc_list_one, &l);
	sbuf_appends(out, "+\n");
	free(alt.names);
}

static void ipc_kick(struct ipc *ipc, struct sbuf *out, struct registry_filter *f,
		     const char *text)
{
	f->logged_in = true;
	f->proxied = true;
	sbuf_appendf(out, "+%zu\n", admin_kick(ipc->registry, f, text, NULL));
}

static void ipc_cmd_kick(struct ipc *ipc, struct sbuf *out, char **args, int nargs)
{
	struct registry_filter f = {
		.user_masks = (const char *const *)args,
		.user_masks_count = (size_t)nargs,
	};
	ipc_kick(ipc, out, &f, IPC_KICK_TEXT);
}

static void ipc_cmd_kick_alt(struct ipc *ipc, struct sbuf *out, char **args, int nargs)
{
	struct registry_filter f = {
		.alt_field = args[0],
		.user_masks = (const char *const *)args + 1,
		.user_masks_count = (size_t)nargs - 1,
	};
	ipc_kick(ipc, out, &f, IPC_KICK_TEXT);
}

static void ipc_cmd_kick_host(struct ipc *ipc, struct sbuf *out, char **args, int nargs)
{
	struct registry_filter f = {
		.dest_hosts = (const char *const *)args,
		.dest_hosts_count = (size_t)nargs,
	};
	ipc_kick(ipc, out, &f, IPC_KICK_TEXT);
}

static void ipc_cmd_kick_hash(struct ipc *ipc, struct sbuf *out, char **args, int nargs)
{
	struct registry_filter f = { .have_hash = true };
	char *end;
	unsigned long hash = strtoul(args[0], &end, 10);
	if (args[0][0] == '\0' || *end != '\0' || hash > UINT32_MAX ||
	    (nargs > 1 && args[1][0] != '\0' && ipaddr_parse(args[1], &f.except) < 0)) {
		sbuf_appends(out, "-Invalid parameters\n");
		return;
	}
	f.hash = (uint32_t)hash;
	f.have_except = nargs > 1 && args[1][0] != '\0';
	ipc_kick(ipc, out, &f, IPC_DIRECTOR_KICK_TEXT);
}

static const struct ipc_cmd ipc_cmds[] = {
	{ "LIST-FULL", 0, ipc_cmd_list_full },
	{ "KICK", 1, ipc_cmd_kick },
	{ "KICK-ALT", 2, ipc_cmd_kick_alt },
	{ "KICK-HOST", 1, ipc_cmd_kick_host },
	{ "KICK-DIRECTOR-HASH", 1, ipc_cmd_kick_hash },
};

/* "<group>\t<*|id>\t<command>[\t<args>]" */
static void ipc_line(struct line_client *c, char *line, void *ctx)
{
	struct ipc *ipc = ctx;
	struct sbuf *out = line_client_output(c);
	char *args[IPC_MAX_ARGS];

	if (line[0] == '\0')
		return;
	int n = tabsplit_inplace(line, args, IPC_MAX_ARGS);
	if (n < 3) {
		sbuf_appends(out, "-Invalid input\n");
		return;
	}
	if (strcmp(args[0], "proxy") != 0) {
		sbuf_appends(out, "-Unknown IPC group: ");
		tabescape_append(out, args[0]);
		sbuf_appendc(out, '\n');
		return;
	}
	if (strcmp(args[1], "*") != 0) {
		/* loftd is one "login process": no other connection ids */
		sbuf_appends(out, "-Unknown IPC connection id: ");
		tabescape_append(out, args[1]);
		sbuf_appendc(out, '\n');
		return;
	}
	for (size_t i = 0; i < ARRAY_SIZE(ipc_cmds); i++) {
		if (strcmp(ipc_cmds[i].name, args[2]) != 0)
			continue;
		if (n - 3 < ipc_cmds[i].min_args) {
			sbuf_appends(out, "-Missing parameter\n");
			return;
		}
		ipc_cmds[i].handler(ipc, out, args + 3, n - 3);
		return;
	}
	sbuf_appends(out, "-Unknown command\n");
}

static const struct line_server_ops ipc_ops = {
	.line = ipc_line,
};

struct ipc *ipc_new(struct event_base *base, const char *path,
		    struct registry *registry, const struct line_server_access *access,
		    char **error_r)
{
	struct ipc *ipc = xcalloc(1, sizeof(*ipc));
	ipc->registry = registry;
	ipc->server = line_server_new(base, path, IPC_MAX_LINE, access, &ipc_ops, ipc,
				      error_r);
	if (ipc->server == NULL) {
		free(ipc);
		return NULL;
	}
	return ipc;
}

struct line_server *ipc_server(struct ipc *ipc)
{
	return ipc->server;
}

void ipc_free(struct ipc **ip)
{
	struct ipc *ipc = *ip;
	if (ipc == NULL)
		return;
	line_server_free(&ipc->server);
	free(ipc);
	*ip = NULL;
}
