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
#include <stdint.h>

#include "common/sbuf.h"
#include "core/conn.h"

/* What a pipe grows to when one read fills it. */
#define RELAY_PIPE_BULK_SIZE (1024 * 1024)

/* Sees the bytes of a direction that copies (a watched direction copies
 * whenever its source is not streaming: see relay_watch()). */
typedef void relay_watch_cb(void *ctx, const char *data, size_t len);

struct relay_dir {
	struct conn *src;
	struct conn *dst;
	relay_watch_cb *watch;
	void *watch_ctx;
	struct sbuf head;	/* sent before anything else */
	int pipe_r, pipe_w;	/* -1 without a pipe */
	size_t pipe_len;
	size_t pipe_size;	/* its capacity */
	char *buf;		/* NULL without a buffer */
	size_t buf_off, buf_len;
	bool splice;
	bool drained;		/* the last splice from src came up short */
	bool eof;
	bool shut;		/* eof passed on: dst's write side is shut */
	bool want_src_read;
	bool want_dst_write;
};

/* Idle pipes and buffers, kept for reuse by the relays of one event
 * loop (thread). */
struct relay_pools;
struct relay_pools *relay_pools_new(void);
void relay_pools_free(struct relay_pools **pools);
/* The bytes the relays of these pools delivered each way since they were
 * made (for metrics: two additions per relay_pump(), nothing per byte). */
void relay_pools_bytes(const struct relay_pools *pools, uint64_t *to_backend_r,
		       uint64_t *to_client_r);

struct relay {
	struct relay_pools *pools;
	struct relay_dir up;
	struct relay_dir down;
};

/* Takes the contents of the two sbufs (they are left empty); pipes and
 * buffers come from pools, which must outlive the relay. */
void relay_start(struct relay *r, struct relay_pools *pools, struct conn *client,
		 struct conn *backend, struct sbuf *to_client, struct sbuf *to_backend);
/* The client's commands go through watch() too: the client->backend
 * direction then reads into a buffer instead of splicing whenever the
 * client is not streaming (its last read came up short), which costs the
 * same syscalls for the small writes commands are; a bulk upload that
 * fills a read splices until it drains. */
void relay_watch(struct relay *r, relay_watch_cb *watch, void *ctx);

enum relay_end {
	RELAY_END_NONE,
	RELAY_END_CLIENT,	/* the client closed (after the backend's rest) */
	RELAY_END_BACKEND,	/* the backend closed (its last bytes sent) */
	RELAY_END_ERROR,	/* a read or write failed: see the reason */
};

/* Moves what can move now and sets both conns' interest. Returns 0 to
 * wait for events, 1 when it stopped only to let other sessions run (call
 * it again on the next loop turn: TLS may hold decrypted bytes no socket
 * event will announce), or -1 when the session is over, with how it ended
 * and, for an error, the reason.
 *
 * When the client ends its input (EOF, possibly a half-close after its
 * last command), that is passed on to the backend (conn_shutdown_write)
 * and the backend's answer still flows to the client until the backend
 * closes too; relay_client_done() tells the owner, which bounds the wait. */
int relay_pump(struct relay *r, enum relay_end *end_r, const char **reason_r);
/* The client ended its input and the backend was told. */
static inline bool relay_client_done(const struct relay *r)
{
	return r->up.shut;
}
/* Gives pipes and buffers back to the pools. */
void relay_stop(struct relay *r);
/* Whether bytes towards the client wait in loft (a pipe, a buffer, a
 * partly written TLS record): a goodbye written now would cut into them. */
bool relay_client_pending(const struct relay *r);

#endif
