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
#include "ring/ring.h"

struct admin {
	struct line_server *server;
	struct admin_ctx ctx;
};

/* Per connection: the handshake, and a reply still being worked on. */
struct admin_conn {
	bool handshaked;
	struct admin_pending *pending;
};

struct admin_pending {
	struct line_client *client;	/* NULL once the client left */
	struct admin_conn *conn;
};

struct admin_pending *admin_request_defer(struct admin_request *req)
{
	struct admin_pending *p = xcalloc(1, sizeof(*p));
	p->client = req->client;
	p->conn = req->conn;
	req->conn->pending = p;
	line_client_suspend(req->client);
	return p;
}

struct sbuf *admin_pending_output(struct admin_pending *p)
{
	return p->client != NULL ? line_client_output(p->client) : NULL;
}

void admin_pending_finish(struct admin_pending **pp)
{
	struct admin_pending *p = *pp;
	if (p->client != NULL) {
		p->conn->pending = NULL;
		line_client_resume(p->client);
	}
	free(p);
	*pp = NULL;
}

void admin_pending_reply(struct admin_pending **pp, const char *line)
{
	struct sbuf *out = admin_pending_output(*pp);
	if (out != NULL) {
		sbuf_appends(out, line);
		sbuf_appendc(out, '\n');
	}
	admin_pending_finish(pp);
}

static const struct admin_cmd *const admin_cmd_tables[] = {
	admin_director_cmds,
	admin_session_cmds,
	admin_ring_cmds,
	admin_daemon_cmds,
	admin_auth_cmds,
#ifdef LOFT_BENCH_HOOKS
	admin_bench_cmds,
#endif
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

static void admin_connected(struct line_client *c, void *ctx)
{
	(void)ctx;
	line_client_set_data(c, xcalloc(1, sizeof(struct admin_conn)));
	sbuf_appends(line_client_output(c), ADMIN_VERSION_LINE);
}

static void admin_disconnected(struct line_client *c, void *ctx)
{
	struct admin_conn *conn = line_client_get_data(c);
	(void)ctx;
	if (conn->pending != NULL)
		conn->pending->client = NULL;	/* the work goes on; no reply */
	free(conn);
}

static void admin_line(struct line_client *c, char *line, void *ctx)
{
	struct admin *a = ctx;
	struct sbuf *out = line_client_output(c);
	struct admin_conn *conn = line_client_get_data(c);

	if (!conn->handshaked) {
		if (strncmp(line, ADMIN_VERSION_PREFIX, strlen(ADMIN_VERSION_PREFIX)) != 0) {
			log_warning("admin: client is not a director-doveadm v1 client");
			line_client_close_after_output(c);
			return;
		}
		conn->handshaked = true;
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
	struct admin_request req = { &a->ctx, out, c, conn };
	cmd->handler(&req, args + 1, n - 1);
}

static const struct line_server_ops admin_ops = {
	.connected = admin_connected,
	.line = admin_line,
	.disconnected = admin_disconnected,
};

struct admin *admin_new(struct event_base *base, const char *path,
			struct registry *registry, struct director *director,
			const char *self_ip, const struct line_server_access *access,
			char **error_r)
{
	struct admin *a = xcalloc(1, sizeof(*a));
	a->ctx.base = base;
	a->ctx.registry = registry;
	a->ctx.director = director;
	a->ctx.self_ip = xstrdup(self_ip);
	a->server = line_server_new(base, path, ADMIN_MAX_LINE, access, &admin_ops, a,
				    error_r);
	if (a->server == NULL) {
		free(a->ctx.self_ip);
		free(a);
		return NULL;
	}
	return a;
}

void admin_set_ring(struct admin *a, struct ring *ring)
{
	a->ctx.ring = ring;
	if (ring != NULL)
		ring_set_peer_commands(ring, admin_peer_command, &a->ctx);
}

void admin_set_daemon_ops(struct admin *a, const struct admin_daemon_ops *ops, void *ctx)
{
	a->ctx.daemon = ops;
	a->ctx.daemon_ctx = ctx;
}

void admin_set_auth_cache_flush(struct admin *a, admin_cache_flush_cb *cb, void *ctx)
{
	a->ctx.cache_flush = cb;
	a->ctx.cache_flush_ctx = ctx;
}

struct line_server *admin_server(struct admin *a)
{
	return a->server;
}

void admin_free(struct admin **ap)
{
	struct admin *a = *ap;
	if (a == NULL)
		return;
	if (a->ctx.ring != NULL)
		ring_set_peer_commands(a->ctx.ring, NULL, NULL);
	line_server_free(&a->server);
#ifdef LOFT_BENCH_HOOKS
	admin_bench_free(&a->ctx);
#endif
	free(a->ctx.self_ip);
	free(a);
	*ap = NULL;
}
