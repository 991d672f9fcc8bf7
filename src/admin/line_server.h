/* A UNIX-socket server for line protocols: check the peer, accept, buffer
 * each client's input, hand over complete lines one at a time, and send
 * the replies. A client's next line is handed over only once the reply to
 * the previous one is written, so no pipelined line is ever dropped and a
 * client that does not read cannot make the daemon buffer without bound.
 * The admin socket and the ipc socket are two users of it. */
#ifndef LOFT_ADMIN_LINE_SERVER_H
#define LOFT_ADMIN_LINE_SERVER_H

#include <stddef.h>
#include <sys/types.h>

#include "common/sbuf.h"

struct event_base;
struct line_server;
struct line_client;

struct line_server_ops {
	/* optional: a new client; may queue a greeting */
	void (*connected)(struct line_client *c, void *ctx);
	/* one line without its LF; may modify it; replies go to output */
	void (*line)(struct line_client *c, char *line, void *ctx);
	/* optional: the client is gone; free what client data holds */
	void (*disconnected)(struct line_client *c, void *ctx);
};

/* Who may connect: root, loftd's own uid and uids[] (the peer's uid as
 * SO_PEERCRED reports it), at most max_clients at once; others are closed
 * at once and logged. Without uids the socket is mode 0600, so only its
 * owner (root) gets that far; with uids it is 0666 and the uid check is
 * the gate. */
struct line_server_access {
	const uid_t *uids;
	size_t uids_count;
	unsigned int max_clients;
};

/* Refuses a path whose socket still accepts connections (another daemon
 * owns it), and replaces a stale one. access is copied. */
struct line_server *line_server_new(struct event_base *base, const char *path,
				    size_t max_line, const struct line_server_access *access,
				    const struct line_server_ops *ops, void *ctx,
				    char **error_r);
void line_server_free(struct line_server **server);
/* Renames the socket file (the socket keeps serving under the new name,
 * and line_server_free() unlinks that one): an upgraded loftd makes the
 * old name anew. -1 with the reason (caller frees). */
int line_server_move(struct line_server *s, const char *path, char **error_r);

struct sbuf *line_client_output(struct line_client *c);
/* The reply to the current line comes later: no further line is handed
 * over until line_client_resume(). */
void line_client_suspend(struct line_client *c);
/* The reply is in the output: send it and go on with the next lines. */
void line_client_resume(struct line_client *c);
/* Closes the client once its output is sent. */
void line_client_close_after_output(struct line_client *c);
void line_client_set_data(struct line_client *c, void *data);
void *line_client_get_data(struct line_client *c);

#endif
