/* The daemon's own commands on the admin socket (admin_wire.h): RELOAD,
 * SIGHUP's work, and UPGRADE, SIGUSR2's, for `loftadm reload
 * [--upgrade]`, which then says whether it worked instead of leaving the
 * admin to read the log. The admin module does not know loftd: the daemon
 * hands in what to do (admin_set_daemon_ops). */
#include <stdio.h>
#include <stdlib.h>

#include "admin/admin.h"
#include "admin/admin_private.h"
#include "admin/admin_wire.h"

static void admin_cmd_reload(struct admin_request *req, char **args, int nargs)
{
	struct admin_ctx *ctx = req->ctx;
	char *error = NULL;
	(void)args;
	(void)nargs;
	if (ctx->daemon == NULL)
		admin_reply_error(req->out, "this loftd cannot reload from here");
	else if (ctx->daemon->reload(ctx->daemon_ctx, &error) < 0)
		admin_reply_error(req->out, "%s", error);
	else
		sbuf_appends(req->out, "OK\n");
	free(error);
}

/* admin_upgrade_done_fn: the answer, if the admin is still there. */
static void admin_upgrade_done(void *ctx, int pid, const char *error)
{
	struct admin_pending *pending = ctx;
	struct sbuf *out = admin_pending_output(pending);
	if (out != NULL && error != NULL)
		admin_reply_error(out, "%s", error);
	else if (out != NULL)
		sbuf_appendf(out, "OK\t%d\n", pid);
	admin_pending_finish(&pending);
}

static void admin_cmd_upgrade(struct admin_request *req, char **args, int nargs)
{
	struct admin_ctx *ctx = req->ctx;
	(void)args;
	(void)nargs;
	if (ctx->daemon == NULL) {
		admin_reply_error(req->out, "this loftd cannot upgrade from here");
		return;
	}
	/* the answer may come at once (a refusal) or after the handover */
	ctx->daemon->upgrade(ctx->daemon_ctx, admin_upgrade_done, admin_request_defer(req));
}

const struct admin_cmd admin_daemon_cmds[] = {
	{ ADMIN_CMD_RELOAD, 0, 0, admin_cmd_reload },
	{ ADMIN_CMD_UPGRADE, 0, 0, admin_cmd_upgrade },
	{ NULL, 0, 0, NULL },
};
