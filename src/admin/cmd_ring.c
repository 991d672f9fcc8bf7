/* Session commands run on every node of the ring at once (doc/ring.md
 * §14), and the other nodes' side of them:
 *
 *   RING-ALL\t<SESSION-LIST|SESSION-KICK>[\t<filter>...]
 *     -> one block per node, this node's first (admin_wire.h), then ""
 *
 * The other nodes run the same command table through the ring's links
 * (admin_peer_command); a node that does not answer in time is named
 * with the reason, so an admin sees what the answer lacks. */
#include <stdlib.h>
#include <string.h>

#include "admin/admin.h"
#include "admin/admin_private.h"
#include "admin/admin_wire.h"
#include "common/tabescape.h"
#include "common/xmalloc.h"
#include "ring/ring.h"

/* What another node may ask: session commands, no director changes. */
static const struct admin_cmd *admin_peer_cmd_find(const char *name)
{
	for (const struct admin_cmd *c = admin_session_cmds; c->name != NULL; c++) {
		if (strcmp(c->name, name) == 0)
			return c;
	}
	return NULL;
}

/* Runs the command into out; false (and an ERROR line) when it cannot. */
static bool admin_peer_run(struct admin_ctx *ctx, char **args, int nargs, struct sbuf *out)
{
	const struct admin_cmd *cmd = admin_peer_cmd_find(args[0]);
	if (cmd == NULL) {
		admin_reply_error(out, "not a ring-wide command: %s", args[0]);
		return false;
	}
	if (nargs - 1 < cmd->min_args || nargs - 1 > cmd->max_args) {
		admin_reply_error(out, "%s: wrong number of parameters", cmd->name);
		return false;
	}
	struct admin_request req = { ctx, out, NULL, NULL };
	cmd->handler(&req, args + 1, nargs - 1);
	return true;
}

void admin_peer_command(void *ctx, char **args, int nargs, struct sbuf *out)
{
	(void)admin_peer_run(ctx, args, nargs, out);
}

static void admin_node_block(struct sbuf *out, const char *node, const char *error)
{
	sbuf_appends(out, "NODE\t");
	tabescape_append(out, node);
	sbuf_appendc(out, '\t');
	tabescape_append(out, error != NULL ? error : "");
	sbuf_appendc(out, '\n');
}

/* A RING-ALL waiting for the other nodes. */
struct admin_ring_all {
	struct admin_pending *pending;
};

static void admin_ring_all_answer(void *ctx, const char *node, const char *error,
				  const char *payload, size_t len)
{
	struct admin_ring_all *ra = ctx;
	struct sbuf *out = admin_pending_output(ra->pending);
	if (out == NULL)
		return;		/* the admin left */
	/* the command failed there (an older loftd): its reason */
	char *text = NULL;
	if (error == NULL && len > 6 && memcmp(payload, "ERROR\t", 6) == 0) {
		const char *lf = memchr(payload, '\n', len);
		text = xstrndup(payload + 6, (size_t)((lf != NULL ? lf : payload + len) -
						      (payload + 6)));
		tabunescape_inplace(text, strlen(text));
		error = text;
	}
	admin_node_block(out, node, error);
	if (error == NULL)
		sbuf_append(out, payload, len);
	free(text);
}

static void admin_ring_all_done(void *ctx)
{
	struct admin_ring_all *ra = ctx;
	struct sbuf *out = admin_pending_output(ra->pending);
	if (out != NULL)
		sbuf_appendc(out, '\n');
	admin_pending_finish(&ra->pending);
	free(ra);
}

static void cmd_ring_all(struct admin_request *req, char **args, int nargs)
{
	struct admin_ctx *ctx = req->ctx;
	struct sbuf *out = req->out;
	/* this node's block goes straight into the reply, not through a
	 * copy (a ring's who is some 6 MB a node, issue 14) */
	size_t mark = sbuf_len(out);
	admin_node_block(out, ctx->ring != NULL ? ring_self_name(ctx->ring) : "", NULL);
	size_t body = sbuf_len(out);
	bool ran = admin_peer_run(ctx, args, nargs, out);
	/* a command or filter this node refuses, every node refuses: the
	 * error alone is the reply */
	if (!ran || (sbuf_len(out) - body >= 6 &&
		     memcmp(sbuf_data(out) + body, "ERROR\t", 6) == 0)) {
		char *error = xstrndup(sbuf_data(out) + body, sbuf_len(out) - body);
		sbuf_truncate(out, mark);
		sbuf_appends(out, error);
		free(error);
		return;
	}
	if (ctx->ring == NULL) {
		sbuf_appendc(out, '\n');
		return;
	}
	struct admin_ring_all *ra = xcalloc(1, sizeof(*ra));
	ra->pending = admin_request_defer(req);
	ring_call_all(ctx->ring, (const char *const *)args, (size_t)nargs,
		      admin_ring_all_answer, admin_ring_all_done, ra);
}

const struct admin_cmd admin_ring_cmds[] = {
	{ ADMIN_CMD_RING_ALL, 1, 63, cmd_ring_all },
	{ NULL, 0, 0, NULL },
};
