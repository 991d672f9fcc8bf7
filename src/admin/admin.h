/* The admin socket <base_dir>/admin: a UNIX socket (mode 0600, or 0666 with admin.allow_users: line_server.h) speaking
 * the director-admin protocol v1 of Dovecot (reference §4.1), so that
 * `doveadm director ... -a <socket>` and loftadm both work against it.
 * Commands are rows of a table; loft's own commands (SESSION-LIST) live
 * beside Dovecot's. Unlike Dovecot, an unknown or malformed command is
 * answered with an error line and the connection stays usable. */
#ifndef LOFT_ADMIN_ADMIN_H
#define LOFT_ADMIN_ADMIN_H

#include <stddef.h>

#include "admin/line_server.h"

struct event_base;
struct registry;
struct director;
struct admin;

/* self_ip: what DIRECTOR-LIST calls this director in its ring of one. */
struct ring;
/* The director ring this node is part of (DIRECTOR-LIST lists it); the
 * other nodes' session commands are answered from then on. */
void admin_set_ring(struct admin *admin, struct ring *ring);
struct admin *admin_new(struct event_base *base, const char *path,
			struct registry *registry, struct director *director,
			const char *self_ip, const struct line_server_access *access,
			char **error_r);
/* What only the daemon can do, for RELOAD and UPGRADE (loftadm reload):
 * without them those commands answer an error. */
typedef void admin_upgrade_done_fn(void *ctx, int pid, const char *error);
struct admin_daemon_ops {
	/* the configuration read again: 0, or -1 with why (caller frees) */
	int (*reload)(void *ctx, char **error_r);
	/* starts an upgrade; done() follows once, when the new loftd serves
	 * (pid) or with why it did not */
	void (*upgrade)(void *ctx, admin_upgrade_done_fn *done, void *done_ctx);
};
void admin_set_daemon_ops(struct admin *admin, const struct admin_daemon_ops *ops,
			  void *ctx);
/* AUTH-CACHE-FLUSH: flushes users' entries (all when count is 0) and
 * returns how many went. */
typedef size_t admin_cache_flush_cb(void *ctx, const char *const *users, size_t count);
void admin_set_auth_cache_flush(struct admin *admin, admin_cache_flush_cb *cb, void *ctx);
/* Its socket, for a loftd upgrade to rename (line_server_move()). */
struct line_server *admin_server(struct admin *a);
void admin_free(struct admin **admin);

#endif
