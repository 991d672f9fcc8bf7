/* Waiting for PROXY protocol headers. */
#include "proxy/header_wait.h"

#include <errno.h>
#include <event2/event.h>
#include <stdlib.h>
#include <sys/socket.h>
#include <unistd.h>

#include "common/clock.h"
#include "common/log.h"
#include "common/xmalloc.h"
#include "proto/proxy_protocol.h"
#include "proxy/protocols.h"

struct header_wait {
	struct list_node node;		/* in proxy->header_waits */
	struct proxy_listener *pl;
	struct listener_accept acc;
	struct event *ev;
	uint64_t deadline;		/* monotonic ms: login.timeout from accept */
	unsigned char buf[PROXY_PROTOCOL_MAX];
	size_t have;			/* header bytes read so far */
};

/* Waits for more bytes, within what is left of the deadline. */
static void header_wait_arm(struct header_wait *w)
{
	uint64_t now = clock_monotonic_ms();
	uint64_t ms = w->deadline > now ? w->deadline - now : 0;
	struct timeval tv = { (time_t)(ms / 1000), (suseconds_t)(ms % 1000) * 1000 };
	event_add(w->ev, &tv);
}

static void header_wait_free(struct header_wait *w, bool close_fd)
{
	list_unlink(&w->pl->proxy->header_waits, &w->node);
	event_free(w->ev);
	if (close_fd)
		close(w->acc.fd);
	free(w);
}

static void header_wait_fail(struct header_wait *w, const char *why)
{
	char ip[IPADDR_STRLEN];
	log_info("PROXY protocol from %s:%u: %s: connection closed",
		 ipaddr_to_str(&w->acc.peer_ip, ip), w->acc.peer_port, why);
	header_wait_free(w, true);
}

/* The header is in: start the session as the client it names. */
static void header_wait_done(struct header_wait *w, const struct proxy_protocol_header *h)
{
	struct listener_accept acc = w->acc;
	struct proxy_listener *pl = w->pl;
	char lb[IPADDR_STRLEN], ip[IPADDR_STRLEN];
	log_debug("PROXY v%u from %s:%u: the client is %s:%u", h->version,
		  ipaddr_to_str(&acc.peer_ip, lb), acc.peer_port,
		  h->have_addresses ? ipaddr_to_str(&h->src_ip, ip) : "the balancer itself",
		  h->have_addresses ? h->src_port : acc.peer_port);
	if (h->have_addresses) {
		acc.peer_ip = h->src_ip;
		acc.peer_port = h->src_port;
		acc.local_ip = h->dst_ip;
		acc.local_port = h->dst_port;
	}
	header_wait_free(w, false);
	pl->protocol->start(pl, &acc);
}

/* Peeks at what arrived and reads only bytes that belong to the header:
 * while it is incomplete everything seen is header (a v1 line has no LF
 * yet, a v2 header is longer); once complete, exactly its length. */
static void header_wait_event(evutil_socket_t fd, short what, void *ctx)
{
	struct header_wait *w = ctx;
	if ((what & EV_TIMEOUT) != 0) {
		header_wait_fail(w, "no header before login.timeout");
		return;
	}
	ssize_t n = recv(fd, w->buf + w->have, sizeof(w->buf) - w->have, MSG_PEEK);
	if (n < 0 && (errno == EAGAIN || errno == EINTR)) {
		header_wait_arm(w);
		return;
	}
	if (n <= 0) {
		header_wait_fail(w, n == 0 ? "disconnected before the header" :
				 "read failed");
		return;
	}
	struct proxy_protocol_header h;
	size_t hlen;
	const char *error;
	switch (proxy_protocol_parse(w->buf, w->have + (size_t)n, &h, &hlen, &error)) {
	case PARSE_ERROR:
		header_wait_fail(w, error);
		return;
	case PARSE_MORE:
		hlen = w->have + (size_t)n;
		break;
	case PARSE_OK:
		break;
	}
	/* peeked bytes are there: this read takes exactly them */
	if (recv(fd, w->buf + w->have, hlen - w->have, 0) != (ssize_t)(hlen - w->have)) {
		header_wait_fail(w, "read failed");
		return;
	}
	w->have = hlen;
	if (proxy_protocol_parse(w->buf, w->have, &h, &hlen, &error) == PARSE_OK)
		header_wait_done(w, &h);
	else
		header_wait_arm(w);
}

void header_wait_start(struct proxy_listener *pl, const struct listener_accept *acc)
{
	struct proxy *p = pl->proxy;
	struct header_wait *w = xcalloc(1, sizeof(*w));
	w->pl = pl;
	w->acc = *acc;
	/* one deadline for the whole header: a trickle cannot stretch it */
	w->deadline = clock_monotonic_ms() + p->cfg->login.timeout_ms;
	w->ev = event_new(p->base, acc->fd, EV_READ, header_wait_event, w);
	list_append(&p->header_waits, &w->node);
	header_wait_arm(w);
}

void header_waits_free(struct proxy *p)
{
	while (!list_is_empty(&p->header_waits))
		header_wait_free(CONTAINER_OF(p->header_waits.head, struct header_wait, node),
				 true);
}
