/* The byte relay after login: client -> backend ("up") and backend ->
 * client ("down") until either side closes. Plain<->plain directions move
 * data with splice() through a pipe, never copying it to user space; any
 * TLS end uses a user-space buffer. A splice direction reads only when
 * its socket reported data or its last read filled the pipe, and a pipe
 * that a read fills grows (bulk transfers take fewer, larger splices). Pipes and buffers come from pools and
 * go back as soon as a direction is drained, so an idle session holds
 * neither. Bytes the login phase left over (the client's pipelined
 * commands, the backend's reply) are sent first. */
#ifndef LOFT_CORE_RELAY_H
#define LOFT_CORE_RELAY_H

#include <stdbool.h>
#include <stddef.h>

#include "common/sbuf.h"
#include "core/conn.h"

/* What a pipe grows to when one read fills it. */
#define RELAY_PIPE_BULK_SIZE (1024 * 1024)

struct relay_dir {
	struct conn *src;
	struct conn *dst;
	struct sbuf head;	/* sent before anything else */
	int pipe_r, pipe_w;	/* -1 without a pipe */
	size_t pipe_len;
	size_t pipe_size;	/* its capacity */
	char *buf;		/* NULL without a buffer */
	size_t buf_off, buf_len;
	bool splice;
	bool drained;		/* the last splice from src came up short */
	bool eof;
	bool want_src_read;
	bool want_dst_write;
};

struct relay {
	struct relay_dir up;
	struct relay_dir down;
};

/* Takes the contents of the two sbufs (they are left empty). */
void relay_start(struct relay *r, struct conn *client, struct conn *backend,
		 struct sbuf *to_client, struct sbuf *to_backend);
/* Moves what can move now and sets both conns' interest. Returns 0 to
 * wait for events, 1 when it stopped only to let other sessions run (call
 * it again on the next loop turn: TLS may hold decrypted bytes no socket
 * event will announce), or -1 when the session is over, with the reason. */
int relay_pump(struct relay *r, const char **reason_r);
/* Gives pipes and buffers back to the pools. */
void relay_stop(struct relay *r);
/* Whether bytes towards the client wait in loft (a pipe, a buffer, a
 * partly written TLS record): a goodbye written now would cut into them. */
bool relay_client_pending(const struct relay *r);
/* Frees the pools (at exit). */
void relay_pools_free(void);

#endif
