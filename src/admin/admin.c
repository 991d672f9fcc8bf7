/* The admin socket: the director-admin v1 handshake (reference §4.1),
 * then one command per line through the command tables. */
#include "admin/admin.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "admin/admin_private.h"
#include "admin/admin_wire.h"
#include "admin/line_server.h"
#include "common/log.h"
#include "common/tabescape.h"
#include "common/xmalloc.h"

#define ADMIN_MAX_ARGS 64

struct admin {
	struct line_server *server;
	struct admin_ctx ctx;
};

static const struct admin_cmd *const admin_cmd_tables[] = {
	admin_director_cmds,
	admin_session_cmds,
};

void admin_reply_error(struct sbuf *out, const char *fmt, ...)
{
	char text[512];
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(text, sizeof(text), fmt, ap);
	va_end(ap);
	sbuf_appends(out, "ERROR\t");
	tabescape_append(out, text);
	sbuf_appendc(out, '\n');
}

static const struct admin_cmd *admin_cmd_find(const char *name)
{
	for (size_t t = 0; t < ARRAY_SIZE(admin_cmd_tables); t++) {
		for (const struct admin_cmd *c = admin_cmd_tables[t]; c->name != NULL; c++) {
			if (strcmp(c->name, name) == 0)
				return c;
		}
	}
	return NULL;
}

/* The client data is non-NULL once the client's VERSION line arrived. */
static void admin_connected(struct line_client *c, void *ctx)
{
	(void)ctx;
	sbuf_appends(line_client_output(c), ADMIN_VERSION_LINE);
}

static void admin_line(struct line_client *c, char *line, void *ctx)
{
	struct admin *a = ctx;
	struct sbuf *out = line_client_output(c);

	if (line_client_get_data(c) == NULL) {
		if (strncmp(line, ADMIN_VERSION_PREFIX, strlen(ADMIN_VERSION_PREFIX)) != 0) {
			log_warning("admin: client is not a director-doveadm v1 client");
			line_client_close_after_output(c);
			return;
		}
		line_client_set_data(c, a);
		return;
	}
	char *args[ADMIN_MAX_ARGS + 1];
	int n = tabsplit_inplace(line, args, ADMIN_MAX_ARGS + 1);
	if (n <= 0) {
		admin_reply_error(out, n == 0 ? "empty command" : "too many parameters");
		return;
	}
	const struct admin_cmd *cmd = admin_cmd_find(args[0]);
	if (cmd == NULL) {
		admin_reply_error(out, "unknown command: %s", args[0]);
		return;
	}
	if (n - 1 < cmd->min_args || n - 1 > cmd->max_args) {
		admin_reply_error(out, "%s: wrong number of parameters", cmd->name);
		return;
	}
	cmd->handler(&a->ctx, out, args + 1, n - 1);
}

static const struct line_server_ops admin_ops = {
	.connected = admin_connected,
	.line = admin_line,
};

struct admin *admin_new(struct event_base *base, const char *path,
			struct registry *registry, struct director *director,
			char **error_r)
{
	struct admin *a = xcalloc(1, sizeof(*a));
	a->ctx.registry = registry;
	a->ctx.director = director;
	a->server = line_server_new(base, path, ADMIN_MAX_LINE, &admin_ops, a, error_r);
	if (a->server == NULL) {
		free(a);
		return NULL;
	}
	return a;
}

void admin_free(struct admin **ap)
{
	struct admin *a = *ap;
	if (a == NULL)
		return;
	line_server_free(&a->server);
	free(a);
	*ap = NULL;
}
