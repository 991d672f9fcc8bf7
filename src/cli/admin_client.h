/* loftadm's side of the admin socket: connect, the director-doveadm
 * handshake (reference §4.1), one command, reply lines. Blocking I/O with
 * deadlines: a CLI has nothing else to do meanwhile. */
#ifndef LOFT_CLI_ADMIN_CLIENT_H
#define LOFT_CLI_ADMIN_CLIENT_H

#include <stddef.h>

struct admin_client;

/* path is a UNIX socket, or host:port for TCP (doveadm's rule: a path
 * without '/' is a TCP address). NULL and a message on failure. */
struct admin_client *admin_client_connect(const char *path, char **error_r);
void admin_client_close(struct admin_client **c);

/* How long a reply may take (default 2 minutes); 0 waits for ever, for
 * commands that end when the work is done (a flush of many users). */
void admin_client_set_timeout(struct admin_client *c, int timeout_ms);

/* Sends fields as one TAB-separated, tab-escaped line. */
int admin_client_send(struct admin_client *c, const char *const *fields,
		      size_t count, char **error_r);
/* The next reply line without its LF (valid until the next call), or
 * NULL at EOF or on error (*error_r says which). */
char *admin_client_read_line(struct admin_client *c, char **error_r);

#endif
