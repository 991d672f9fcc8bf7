/* The links between the nodes of a ring (doc/ring.md §14), shared by the
 * side that answers (ring_peer_server.c) and the side that asks
 * (ring_peer_call.c). Internal to src/ring.
 *
 * One TCP connection per question, TLS when ring.tls_* are set:
 *
 *   server: LOFT-RING-PEER 1 <server nonce>
 *   client: HELLO <client name> <client nonce> <client MAC or ->
 *   server: OK <server name> <server MAC or ->        (or it hangs up)
 *   client: <command> [<arg> ...]
 *   server: OK <length> LF <length bytes>  |  ERROR <text>
 *   (more commands, or the client hangs up)
 *
 * Fields are TAB-separated and tab-escaped; the MACs are ring_peer_auth.h's
 * ("-" without ring.secret). The server answers nobody who has not
 * proved the secret and named a live member; the client believes no
 * answer from a node that has not proved it in turn. */
#ifndef LOFT_RING_PEER_H
#define LOFT_RING_PEER_H

#include <openssl/ssl.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "common/list.h"
#include "ring/ring.h"

struct bufferevent;
struct evconnlistener;
struct ring;

#define RING_PEER_GREETING "LOFT-RING-PEER\t1\t"
/* a command, or a handshake line */
#define RING_PEER_MAX_LINE 65536
/* an answer: far more than a million sessions' listing */
#define RING_PEER_MAX_REPLY ((size_t)1 << 30)

struct ring_peers {
	char *secret;			/* NULL: none */
	SSL_CTX *tls_server, *tls_client;	/* NULL: plain TCP */
	uint64_t timeout_ms;
	unsigned int max_conns;
	struct evconnlistener *listener;	/* NULL: no links */
	struct list conns;		/* answering (ring_peer_server.c) */
	struct list calls;		/* asking (ring_peer_call.c) */
	ring_peer_command_cb *command;
	void *command_ctx;
};

/* Whether the node has links at all (a secret or certificates). */
bool ring_peers_enabled(const struct ring *r);

/* A buffered connection over fd, TLS when the ring says so; NULL (fd
 * closed) when OpenSSL fails. */
struct bufferevent *ring_peer_bev_new(struct ring *r, int fd, bool server);
/* The next line without its LF (allocated), NULL when none is complete;
 * *too_long when what waits is longer than a line may be. */
char *ring_peer_read_line(struct bufferevent *bev, bool *too_long);
/* Why a link's connection failed: its TLS error, else errno's text. */
const char *ring_peer_bev_error(struct bufferevent *bev, char *buf, size_t size);

/* ring_limits.c: the peer commands of the shared limits (doc/ring.md
 * §15), from the node `peer`: quiet lines, then END (answered). */
#define RING_LIMITS_BEGIN "LIMITS"
#define RING_LIMITS_USER_IP "U"
#define RING_LIMITS_FAILURES "F"
#define RING_LIMITS_END "LIMITS-END"
struct sbuf;
void ring_limits_cmd_begin(struct ring *r, const char *peer, char **args, int nargs,
			   struct sbuf *out);
void ring_limits_cmd_user_ip(struct ring *r, const char *peer, char **args, int nargs,
			     struct sbuf *out);
void ring_limits_cmd_failures(struct ring *r, const char *peer, char **args, int nargs,
			      struct sbuf *out);
void ring_limits_cmd_end(struct ring *r, const char *peer, char **args, int nargs,
			 struct sbuf *out);

/* ring_failsafe.c: CONFIRM? <seq> (answered YES or NO) and INTOUCH
 * <seq>, from the node `peer` (doc/ring.md §13). */
void ring_failsafe_cmd_confirm(struct ring *r, const char *peer, char **args, int nargs,
			       struct sbuf *out);
void ring_failsafe_cmd_intouch(struct ring *r, const char *peer, char **args, int nargs,
			       struct sbuf *out);

/* ring_peer_server.c */
int ring_peer_server_start(struct ring *r, int fd, char **error_r);
/* The listening socket (-1: none). */
int ring_peer_server_fd(const struct ring *r);
void ring_peer_server_stop(struct ring *r);

/* ring_peer_call.c */
/* A call of ring_call_all()'s kind to chosen nodes: made, given its
 * nodes (port 0: known down) and its text (LF-terminated lines; the
 * last one's answer is the node's answer, the lines before it must be
 * quiet ones), then sent. */
struct ring_call;
struct ring_call *ring_call_new(struct ring *r, ring_call_answer_cb *answer,
				ring_call_done_cb *done, void *ctx);
void ring_call_add_node(struct ring_call *call, const char *name, const char *address,
			unsigned int port);
struct sbuf *ring_call_text(struct ring_call *call);
void ring_call_go(struct ring_call *call);
/* Every call ends now, its nodes missing. */
void ring_peer_calls_stop(struct ring *r);

#endif
