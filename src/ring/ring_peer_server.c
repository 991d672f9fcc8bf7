/* The answering end of the links between nodes (ring_peer.h): listens on
 * ring.address:ring.port, proves nothing to a stranger, and answers the
 * commands of nodes that proved themselves, one at a time: the next line
 * is read only once the answer to the last one is sent, so a node that
 * does not read cannot make this one buffer without bound. */
#include <errno.h>
#include <event2/buffer.h>
#include <event2/bufferevent.h>
#include <event2/listener.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "common/macros.h"
#include "common/sbuf.h"
#include "common/tabescape.h"
#include "common/xmalloc.h"
#include "ring/ring_peer.h"
#include "ring/ring_peer_auth.h"
#include "ring/ring_private.h"

#define RING_PEER_BACKLOG 64
#define RING_PEER_MAX_ARGS 64
#define RING_PEER_MAX_WRITE (4 * 1024 * 1024)

enum ring_peer_conn_state {
	RING_PEER_CONN_HELLO,		/* waits for the other node's proof */
	RING_PEER_CONN_READY,		/* answers commands */
};

struct ring_peer_conn {
	struct list_node node;		/* in peers->conns */
	struct ring *ring;
	struct bufferevent *bev;
	enum ring_peer_conn_state state;
	char ip[IPADDR_STRLEN];
	char nonce[PEER_NONCE_HEX + 1];
	char *name;			/* once proved */
};

/* A command of the ring's own (none of the admin's): from the node
 * `peer`. A quiet one gets no answer (a line of a longer message). */
struct ring_peer_cmd {
	const char *name;
	bool quiet;
	void (*run)(struct ring *r, const char *peer, char **args, int nargs,
		    struct sbuf *out);
};

static void ring_peer_cmd_ping(struct ring *r, const char *peer, char **args, int nargs,
			       struct sbuf *out)
{
	(void)r;
	(void)peer;
	(void)args;
	(void)nargs;
	(void)out;
}

static const struct ring_peer_cmd ring_peer_cmds[] = {
	{ "PING", false, ring_peer_cmd_ping },
	/* failsafe mode's confirmations (ring_failsafe.c) */
	{ "CONFIRM?", false, ring_failsafe_cmd_confirm },
	{ "INTOUCH", false, ring_failsafe_cmd_intouch },
	/* the limits' counts (ring_limits.c) */
	{ RING_LIMITS_BEGIN, true, ring_limits_cmd_begin },
	{ RING_LIMITS_USER_IP, true, ring_limits_cmd_user_ip },
	{ RING_LIMITS_FAILURES, true, ring_limits_cmd_failures },
	{ RING_LIMITS_END, false, ring_limits_cmd_end },
};

static void ring_peer_conn_free(struct ring_peer_conn *c)
{
	list_unlink(&c->ring->peers->conns, &c->node);
	bufferevent_free(c->bev);
	free(c->name);
	free(c);
}

static void ring_peer_conn_refuse(struct ring_peer_conn *c, const char *why)
{
	ring_report(c->ring, LOG_LEVEL_WARNING,
		    "ring: connection from %s refused: %s", c->ip, why);
	ring_peer_conn_free(c);
}

/* HELLO <name> <nonce> <MAC or ->: a live member that knows the secret. */
static const char *ring_peer_conn_hello(struct ring_peer_conn *c, char **f, int n)
{
	struct ring *r = c->ring;
	struct ring_peers *p = r->peers;
	if (n != 4 || strcmp(f[0], "HELLO") != 0 || strlen(f[2]) != PEER_NONCE_HEX)
		return "not a loft node's greeting";
	if (p->secret != NULL &&
	    !peer_auth_mac_ok(p->secret, PEER_ROLE_CLIENT, c->nonce, f[2], f[1], f[3]))
		return "wrong ring.secret";
	/* a member, or a director (one that starts again, or a failsafe
	 * peer whose member key is gone); a node that has not read the ring
	 * yet knows neither, and hears those that prove the secret */
	if (strcmp(f[1], r->name) == 0 ||
	    (ring_member_get(r, f[1]) == NULL && !ring_director_named(r, f[1]) &&
	     r->ever_served))
		return "not a member of the ring";
	c->name = xstrdup(f[1]);
	struct sbuf out = SBUF_INIT;
	sbuf_appends(&out, "OK\t");
	tabescape_append(&out, r->name);
	sbuf_appendc(&out, '\t');
	if (p->secret != NULL) {
		char mac[PEER_MAC_HEX + 1];
		peer_auth_mac(p->secret, PEER_ROLE_SERVER, c->nonce, f[2], r->name, mac);
		sbuf_appends(&out, mac);
	} else {
		sbuf_appendc(&out, '-');
	}
	sbuf_appendc(&out, '\n');
	bufferevent_write(c->bev, sbuf_data(&out), sbuf_len(&out));
	sbuf_free(&out);
	c->state = RING_PEER_CONN_READY;
	return NULL;
}

static void ring_peer_conn_command(struct ring_peer_conn *c, char **f, int n)
{
	struct ring *r = c->ring;
	struct sbuf out = SBUF_INIT;
	bool done = false;
	for (size_t i = 0; i < ARRAY_SIZE(ring_peer_cmds) && !done; i++) {
		if (strcmp(f[0], ring_peer_cmds[i].name) == 0) {
			ring_peer_cmds[i].run(r, c->name, f + 1, n - 1, &out);
			if (ring_peer_cmds[i].quiet)
				return;
			done = true;
		}
	}
	if (!done && r->peers->command != NULL) {
		r->peers->command(r->peers->command_ctx, f, n, &out);
		done = true;
	}
	struct evbuffer *o = bufferevent_get_output(c->bev);
	if (done) {
		evbuffer_add_printf(o, "OK\t%zu\n", sbuf_len(&out));
		evbuffer_add(o, sbuf_data(&out), sbuf_len(&out));
	} else {
		evbuffer_add_printf(o, "ERROR\tunknown command\n");
	}
	sbuf_free(&out);
}

/* Lines, one at a time, while nothing waits to be sent. Returns false
 * once c is freed. */
static bool ring_peer_conn_process(struct ring_peer_conn *c)
{
	while (evbuffer_get_length(bufferevent_get_output(c->bev)) == 0) {
		bool too_long;
		char *line = ring_peer_read_line(c->bev, &too_long);
		if (line == NULL) {
			if (too_long)
				ring_peer_conn_refuse(c, "line too long");
			return !too_long;
		}
		char *f[RING_PEER_MAX_ARGS + 1];
		int n = tabsplit_inplace(line, f, RING_PEER_MAX_ARGS + 1);
		const char *error = NULL;
		if (n <= 0)
			error = n == 0 ? "empty line" : "too many fields";
		else if (c->state == RING_PEER_CONN_HELLO)
			error = ring_peer_conn_hello(c, f, n);
		else
			ring_peer_conn_command(c, f, n);
		free(line);
		if (error != NULL) {
			ring_peer_conn_refuse(c, error);
			return false;
		}
	}
	return true;
}

static void ring_peer_conn_read(struct bufferevent *bev, void *ctx)
{
	(void)bev;
	(void)ring_peer_conn_process(ctx);
}

/* the output drained: the next line may be answered */
static void ring_peer_conn_written(struct bufferevent *bev, void *ctx)
{
	(void)bev;
	(void)ring_peer_conn_process(ctx);
}

static void ring_peer_conn_event(struct bufferevent *bev, short what, void *ctx)
{
	struct ring_peer_conn *c = ctx;
	char buf[256];
	if (what & BEV_EVENT_CONNECTED)
		return;
	if (c->state == RING_PEER_CONN_HELLO) {
		/* a stranger's TLS handshake or silence: say why */
		ring_peer_conn_refuse(c, (what & BEV_EVENT_TIMEOUT) ? "no greeting in time" :
				      ring_peer_bev_error(bev, buf, sizeof(buf)));
		return;
	}
	ring_peer_conn_free(c);
}

static void ring_peer_accept(struct evconnlistener *l, evutil_socket_t fd,
			     struct sockaddr *sa, int socklen, void *ctx)
{
	struct ring *r = ctx;
	struct ring_peers *p = r->peers;
	struct ipaddr ip;
	uint16_t port;
	char ipbuf[IPADDR_STRLEN];
	(void)l;
	(void)socklen;
	ipaddr_from_sockaddr(sa, &ip, &port);
	ipaddr_to_str(&ip, ipbuf);
	if (p->conns.count >= p->max_conns) {
		ring_report(r, LOG_LEVEL_WARNING, "ring: connection from %s refused: "
			    "ring.peer_max_connections (%u) reached", ipbuf, p->max_conns);
		evutil_closesocket(fd);
		return;
	}
	struct bufferevent *bev = ring_peer_bev_new(r, fd, true);
	if (bev == NULL) {
		ring_report(r, LOG_LEVEL_WARNING, "ring: connection from %s: no TLS state",
			    ipbuf);
		return;
	}
	struct ring_peer_conn *c = xcalloc(1, sizeof(*c));
	c->ring = r;
	c->bev = bev;
	memcpy(c->ip, ipbuf, sizeof(c->ip));
	list_append(&p->conns, &c->node);
	if (peer_auth_nonce(c->nonce) < 0) {
		ring_peer_conn_refuse(c, "no randomness for a nonce");
		return;
	}
	struct timeval tv = { (time_t)(p->timeout_ms / 1000),
			      (suseconds_t)(p->timeout_ms % 1000) * 1000 };
	bufferevent_set_timeouts(bev, &tv, &tv);
	bufferevent_setwatermark(bev, EV_READ, 0, RING_PEER_MAX_LINE + 2);
	/* an answer of a ring's who is some 6 MB (issue 14): in writes as
	 * large as the socket takes, not libevent's 16 KB a loop turn */
	bufferevent_set_max_single_write(bev, RING_PEER_MAX_WRITE);
	bufferevent_setcb(bev, ring_peer_conn_read, ring_peer_conn_written,
			  ring_peer_conn_event, c);
	evbuffer_add_printf(bufferevent_get_output(bev), RING_PEER_GREETING "%s\n", c->nonce);
	bufferevent_enable(bev, EV_READ | EV_WRITE);
}

int ring_peer_server_fd(const struct ring *r)
{
	return r->peers == NULL || r->peers->listener == NULL ? -1 :
		evconnlistener_get_fd(r->peers->listener);
}

int ring_peer_server_start(struct ring *r, int fd, char **error_r)
{
	struct ipaddr ip;
	struct sockaddr_storage ss;
	if (fd >= 0) {
		/* an upgrade's: the links from the other nodes never miss */
		r->peers->listener = evconnlistener_new(r->base, ring_peer_accept, r,
			LEV_OPT_CLOSE_ON_FREE | LEV_OPT_CLOSE_ON_EXEC, RING_PEER_BACKLOG, fd);
		if (r->peers->listener == NULL) {
			*error_r = xasprintf("ring: cannot listen for the other nodes on the "
					     "inherited socket: %s", strerror(errno));
			close(fd);
			return -1;
		}
		return 0;
	}
	if (ipaddr_parse(r->address, &ip) < 0) {
		*error_r = xasprintf("ring.address: '%s' is not an address the other nodes "
				     "can reach this one at", r->address);
		return -1;
	}
	socklen_t len = ipaddr_to_sockaddr(&ip, (uint16_t)r->port, &ss);
	r->peers->listener = evconnlistener_new_bind(r->base, ring_peer_accept, r,
		LEV_OPT_CLOSE_ON_FREE | LEV_OPT_CLOSE_ON_EXEC | LEV_OPT_REUSEABLE,
		RING_PEER_BACKLOG, (struct sockaddr *)&ss, (int)len);
	if (r->peers->listener == NULL) {
		*error_r = xasprintf("ring: cannot listen for the other nodes on %s port %u: %s",
				     r->address, r->port, strerror(errno));
		return -1;
	}
	return 0;
}

void ring_peer_server_stop(struct ring *r)
{
	struct ring_peers *p = r->peers;
	if (p->listener != NULL)
		evconnlistener_free(p->listener);
	p->listener = NULL;
	while (!list_is_empty(&p->conns))
		ring_peer_conn_free(CONTAINER_OF(p->conns.head, struct ring_peer_conn, node));
}
