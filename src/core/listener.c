/* TCP listener with accept4(). */
#include "core/listener.h"

#include <errno.h>
#include <event2/event.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "common/log.h"
#include "common/xmalloc.h"

#define LISTENER_BACKLOG 1024
#define LISTENER_ACCEPTS_PER_EVENT 64
#define LISTENER_EMFILE_PAUSE_MS 100

struct listener {
	int fd;
	struct event *ev;
	struct event *pause_ev;
	listener_accept_cb *cb;
	void *ctx;
	/* the bound address; a wildcard one asks the kernel per connection */
	struct ipaddr local_ip;
	uint16_t local_port;
	bool wildcard;
	char name[IPADDR_STRLEN + 8];
};

static bool ipaddr_is_wildcard(const struct ipaddr *ip)
{
	static const struct in6_addr any6 = IN6ADDR_ANY_INIT;
	return ip->family == AF_INET ? ip->u.v4.s_addr == htonl(INADDR_ANY) :
		memcmp(&ip->u.v6, &any6, sizeof(any6)) == 0;
}

static void listener_resume(evutil_socket_t fd, short what, void *arg)
{
	struct listener *l = arg;
	(void)fd;
	(void)what;
	event_add(l->ev, NULL);
}

static void listener_accept(evutil_socket_t fd, short what, void *arg)
{
	struct listener *l = arg;
	(void)what;

	for (int i = 0; i < LISTENER_ACCEPTS_PER_EVENT; i++) {
		struct sockaddr_storage peer;
		socklen_t plen = sizeof(peer);
		int cfd = accept4(fd, (struct sockaddr *)&peer, &plen,
				  SOCK_NONBLOCK | SOCK_CLOEXEC);
		if (cfd < 0) {
			if (errno == EAGAIN || errno == EINTR || errno == ECONNABORTED)
				return;
			if (errno == EMFILE || errno == ENFILE || errno == ENOBUFS ||
			    errno == ENOMEM) {
				log_error("listener %s: accept() failed, pausing: %m", l->name);
				struct timeval tv = { 0, LISTENER_EMFILE_PAUSE_MS * 1000 };
				event_del(l->ev);
				evtimer_add(l->pause_ev, &tv);
				return;
			}
			log_error("listener %s: accept() failed: %m", l->name);
			return;
		}
		/* TCP_NODELAY is inherited from the listening socket */
		struct listener_accept acc = {
			.fd = cfd, .local_ip = l->local_ip, .local_port = l->local_port,
		};
		ipaddr_from_sockaddr((struct sockaddr *)&peer, &acc.peer_ip, &acc.peer_port);
		if (l->wildcard) {
			struct sockaddr_storage local;
			socklen_t llen = sizeof(local);
			if (getsockname(cfd, (struct sockaddr *)&local, &llen) == 0)
				ipaddr_from_sockaddr((struct sockaddr *)&local,
						     &acc.local_ip, &acc.local_port);
		}
		l->cb(&acc, l->ctx);
	}
}

/* Wraps a bound, listening socket (ours or inherited). */
static struct listener *listener_wrap(struct event_base *base, int fd, const char *address,
				      uint16_t port, listener_accept_cb *cb, void *ctx,
				      const struct sockaddr_storage *ss)
{
	struct listener *l = xcalloc(1, sizeof(*l));
	l->fd = fd;
	l->cb = cb;
	l->ctx = ctx;
	ipaddr_from_sockaddr((const struct sockaddr *)ss, &l->local_ip, &l->local_port);
	l->wildcard = ipaddr_is_wildcard(&l->local_ip);
	snprintf(l->name, sizeof(l->name), "%s:%u", address, port);
	l->ev = event_new(base, fd, EV_READ | EV_PERSIST, listener_accept, l);
	l->pause_ev = evtimer_new(base, listener_resume, l);
	return l;
}

struct listener *listener_new(struct event_base *base, const char *address,
			      uint16_t port, listener_accept_cb *cb, void *ctx,
			      char **error_r)
{
	struct ipaddr ip;
	struct sockaddr_storage ss;
	int one = 1;

	if (ipaddr_parse(address, &ip) < 0) {
		*error_r = xasprintf("invalid listen address '%s'", address);
		return NULL;
	}
	socklen_t len = ipaddr_to_sockaddr(&ip, port, &ss);
	int fd = socket(ss.ss_family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
	if (fd < 0) {
		*error_r = xasprintf("socket() failed: %s", strerror(errno));
		return NULL;
	}
	setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
	if (ss.ss_family == AF_INET6)
		setsockopt(fd, IPPROTO_IPV6, IPV6_V6ONLY, &one, sizeof(one));
	/* accepted sockets inherit it: one syscall per listener, not per
	 * connection */
	setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
	if (bind(fd, (struct sockaddr *)&ss, len) < 0 ||
	    listen(fd, LISTENER_BACKLOG) < 0 ||
	    getsockname(fd, (struct sockaddr *)&ss, &len) < 0) {
		*error_r = xasprintf("cannot listen on %s port %u: %s", address, port,
				     strerror(errno));
		close(fd);
		return NULL;
	}
	return listener_wrap(base, fd, address, port, cb, ctx, &ss);
}

int listener_take_fd(int *fds, size_t fds_count, const char *address, uint16_t port,
		     struct sockaddr_storage *ss_r)
{
	struct ipaddr want;
	if (ipaddr_parse(address, &want) < 0)
		return -1;
	for (size_t i = 0; i < fds_count; i++) {
		socklen_t len = sizeof(*ss_r);
		struct ipaddr ip;
		uint16_t p;
		int listening = 0;
		socklen_t olen = sizeof(listening);
		if (fds[i] < 0 || getsockname(fds[i], (struct sockaddr *)ss_r, &len) < 0 ||
		    getsockopt(fds[i], SOL_SOCKET, SO_ACCEPTCONN, &listening, &olen) < 0 ||
		    !listening)
			continue;
		ipaddr_from_sockaddr((struct sockaddr *)ss_r, &ip, &p);
		if (p != port || !ipaddr_equal(&ip, &want))
			continue;
		int fd = fds[i];
		fds[i] = -1;
		/* the exec cleared it for the handover; no later exec may inherit it */
		fcntl(fd, F_SETFD, FD_CLOEXEC);
		fcntl(fd, F_SETFL, fcntl(fd, F_GETFL) | O_NONBLOCK);
		return fd;
	}
	return -1;
}

struct listener *listener_adopt(struct event_base *base, int *fds, size_t fds_count,
				const char *address, uint16_t port,
				listener_accept_cb *cb, void *ctx)
{
	struct sockaddr_storage ss;
	int fd = listener_take_fd(fds, fds_count, address, port, &ss);
	return fd < 0 ? NULL : listener_wrap(base, fd, address, port, cb, ctx, &ss);
}

int listener_fd(const struct listener *l)
{
	return l->fd;
}

void listener_start(struct listener *l)
{
	event_add(l->ev, NULL);
}

int listener_set_keepalive(struct listener *l, const struct net_keepalive *ka)
{
	return net_set_keepalive(l->fd, ka);
}

void listener_stop(struct listener *l)
{
	event_del(l->ev);
	event_del(l->pause_ev);
	/* closed, not just ignored: new clients are refused at once (and go
	 * elsewhere) instead of waiting in the backlog */
	if (l->fd >= 0) {
		close(l->fd);
		l->fd = -1;
	}
}

void listener_free(struct listener **lp)
{
	struct listener *l = *lp;
	if (l == NULL)
		return;
	event_free(l->ev);
	event_free(l->pause_ev);
	if (l->fd >= 0)
		close(l->fd);
	free(l);
	*lp = NULL;
}
