/* <base_dir>/ipc: Dovecot 2.3's ipc protocol (reference §8.1-8.2), so that
 * Debian's `doveadm proxy list|kick -a <base_dir>/ipc` works against
 * loftd. No handshake; a request is "proxy\t*\t<command>[\t<args>]", the
 * reply ":<data>" lines and a final "+<data>" or "-<error>".
 *
 *   LIST-FULL                    header, then one line per proxied session
 *   KICK\t<user>...              (wildcards honoured, unlike Dovecot)
 *   KICK-ALT\t<field>\t<value>...
 *   KICK-HOST\t<host>...         the backend's address or name
 *   KICK-DIRECTOR-HASH\t<hash>[\t<except ip>]
 *
 * Every kick answers "+<count>" with the true number of sessions. */
#ifndef LOFT_ADMIN_IPC_H
#define LOFT_ADMIN_IPC_H

#include "admin/line_server.h"

struct event_base;
struct registry;
struct ipc;

struct ipc *ipc_new(struct event_base *base, const char *path,
		    struct registry *registry, const struct line_server_access *access,
		    char **error_r);
/* Its socket, for a loftd upgrade to rename (line_server_move()). */
struct line_server *ipc_server(struct ipc *ipc);
void ipc_free(struct ipc **ipc);

#endif
