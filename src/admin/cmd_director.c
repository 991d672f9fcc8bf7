/* Director commands of the admin socket (reference §4.2). */
#include "admin/admin_private.h"
#include "common/tabescape.h"
#include "director/director.h"

/* ip vhost_count user_count tag U|D last_updown_change, then "" */
static void cmd_host_list(struct admin_ctx *ctx, struct sbuf *out, char **args,
			  int nargs)
{
	const struct director_host_list *hosts = director_hosts(ctx->director);
	(void)args;
	(void)nargs;

	for (size_t i = 0; i < hosts->count; i++) {
		const struct director_host *h = hosts->hosts[i];
		sbuf_appendf(out, "%s\t%u\t%u\t", h->ip_str, h->vhost_count, h->user_count);
		tabescape_append(out, h->tag);
		sbuf_appendf(out, "\t%c\t%lld\n", h->down ? 'D' : 'U',
			     (long long)h->last_updown);
	}
	sbuf_appendc(out, '\n');
}

const struct admin_cmd admin_director_cmds[] = {
	{ "HOST-LIST", 0, 0, cmd_host_list },
	{ NULL, 0, 0, NULL },
};
