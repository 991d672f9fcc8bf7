/* The auth commands on the admin socket (doveadm auth cache flush's,
 * through loft's admin socket: loft has no auth-master socket):
 *
 *   AUTH-CACHE-FLUSH[\t<user>...]  -> "OK\t<entries flushed>"
 *
 * The cache belongs to auth, which admin does not reach: the daemon
 * hands in the function that flushes it (admin_set_auth_cache_flush). */
#include <inttypes.h>
#include <stdio.h>

#include "admin/admin.h"
#include "admin/admin_private.h"
#include "admin/admin_wire.h"

static void cmd_auth_cache_flush(struct admin_request *req, char **args, int nargs)
{
	const struct admin_ctx *ctx = req->ctx;
	size_t count = ctx->cache_flush == NULL ? 0 :
		ctx->cache_flush(ctx->cache_flush_ctx, (const char *const *)args,
				 (size_t)nargs);
	sbuf_appendf(req->out, "OK\t%zu\n", count);
}

const struct admin_cmd admin_auth_cmds[] = {
	{ ADMIN_CMD_AUTH_CACHE_FLUSH, 0, ADMIN_MAX_ARGS - 1, cmd_auth_cache_flush },
	{ NULL, 0, 0, NULL },
};
