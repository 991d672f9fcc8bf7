/* TCP listeners: bind, accept without blocking, hand each new socket to
 * the owner. When the process runs out of descriptors, accepting pauses
 * for a moment instead of spinning. */
#ifndef LOFT_CORE_LISTENER_H
#define LOFT_CORE_LISTENER_H

#include <stdint.h>
#include <sys/socket.h>

#include "common/net.h"

struct event_base;
struct listener;

struct listener_accept {
	int fd;
	struct ipaddr peer_ip;
	uint16_t peer_port;
	struct ipaddr local_ip;
	uint16_t local_port;
};

typedef void listener_accept_cb(const struct listener_accept *acc, void *ctx);

/* Binds address:port and listens (the kernel queues connections); on
 * failure returns NULL and an error text. Nothing is accepted before
 * listener_start(): a ring node first loads the ring's state. */
struct listener *listener_new(struct event_base *base, const char *address,
			      uint16_t port, listener_accept_cb *cb, void *ctx,
			      char **error_r);
/* The listening socket among fds (inherited from the loftd this one
 * replaces, loftd(8) SIGNALS) that is bound to address:port, made
 * non-blocking and close-on-exec, with its address in ss_r; its slot in
 * fds becomes -1. -1 when none is. */
struct sockaddr_storage;
int listener_take_fd(int *fds, size_t fds_count, const char *address, uint16_t port,
		     struct sockaddr_storage *ss_r);
/* listener_take_fd() made a listener: NULL when no socket is there. */
struct listener *listener_adopt(struct event_base *base, int *fds, size_t fds_count,
				const char *address, uint16_t port,
				listener_accept_cb *cb, void *ctx);
/* The listening socket, to hand to a successor; -1 once stopped. */
int listener_fd(const struct listener *l);
void listener_start(struct listener *l);
void listener_free(struct listener **l);
/* Keepalive for every connection accepted from now on (inherited from
 * the listening socket: no syscall per connection). -1 with errno. */
int listener_set_keepalive(struct listener *l, const struct net_keepalive *ka);
/* Stops accepting and closes the socket (shutdown): new connections are
 * refused from now on. */
void listener_stop(struct listener *l);

#endif
