/* The asking end of the links between nodes (ring_peer.h): one command
 * sent to every other node of the ring at once, each answer handed over
 * as it comes, and a node that has not answered by ring.peer_timeout
 * reported missing, so that no dead or stopped node can hang an admin. */
#include <errno.h>
#include <event2/buffer.h>
#include <event2/bufferevent.h>
#include <event2/bufferevent_ssl.h>
#include <event2/event.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "common/macros.h"
#include "common/sbuf.h"
#include "common/tabescape.h"
#include "common/xmalloc.h"
#include "ring/ring_peer.h"
#include "ring/ring_peer_auth.h"
#include "ring/ring_private.h"

#define RING_CALL_MAX_FIELDS 8
#define RING_CALL_READ_CHUNK (256 * 1024)	/* the least room a payload read gets */

enum ring_call_state {
	RING_CALL_CONNECTING,
	RING_CALL_GREETING,		/* waits for the server's nonce */
	RING_CALL_PROOF,		/* waits for the server's proof */
	RING_CALL_HEADER,		/* waits for OK <length> or ERROR */
	RING_CALL_PAYLOAD,
	RING_CALL_DONE,
};

struct ring_call;

/* One node asked. */
struct ring_call_node {
	struct ring_call *call;
	char *name;
	char *address;
	unsigned int port;
	struct bufferevent *bev;
	enum ring_call_state state;
	char nonce[PEER_NONCE_HEX + 1];
	char server_nonce[PEER_NONCE_HEX + 1];
	size_t payload_len;
	char *payload;		/* a plain link's payload, as it is read */
	size_t payload_have, payload_cap;
};

struct ring_call {
	struct list_node node;		/* in peers->calls */
	struct ring *ring;
	struct sbuf command;		/* the line, LF included */
	struct ring_call_node *nodes;
	size_t count, cap, pending;
	struct event *timer;		/* the start, then the deadline */
	ring_call_answer_cb *answer;
	ring_call_done_cb *done;
	void *ctx;
};

static void ring_call_node_close(struct ring_call_node *n)
{
	if (n->bev != NULL)
		bufferevent_free(n->bev);
	n->bev = NULL;
	free(n->payload);
	n->payload = NULL;
}

static void ring_call_free(struct ring_call *call)
{
	list_unlink(&call->ring->peers->calls, &call->node);
	for (size_t i = 0; i < call->count; i++) {
		ring_call_node_close(&call->nodes[i]);
		free(call->nodes[i].name);
		free(call->nodes[i].address);
	}
	free(call->nodes);
	if (call->timer != NULL)
		event_free(call->timer);
	sbuf_free(&call->command);
	free(call);
}

/* The node's answer (error NULL: payload), once; the call ends with its
 * last node, on the timer's turn so that done() never runs inside
 * ring_call_all() or a bufferevent callback that still uses the node. */
static void ring_call_node_answer(struct ring_call_node *n, const char *error,
				  const char *payload, size_t len)
{
	struct ring_call *call = n->call;
	if (n->state == RING_CALL_DONE)
		return;
	n->state = RING_CALL_DONE;
	call->answer(call->ctx, n->name, error, payload, len);
	ring_call_node_close(n);
	if (--call->pending == 0) {
		struct timeval now = { 0, 0 };
		evtimer_add(call->timer, &now);
	}
}

static void ring_call_node_failf(struct ring_call_node *n, const char *fmt, ...)
	ATTR_FORMAT(2, 3);

static void ring_call_node_failf(struct ring_call_node *n, const char *fmt, ...)
{
	char text[512];
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(text, sizeof(text), fmt, ap);
	va_end(ap);
	ring_call_node_answer(n, text, NULL, 0);
}

/* OK <name> <MAC>: the node it should be, and it knows the secret. */
static bool ring_call_node_proof_ok(struct ring_call_node *n, char **f, int nf)
{
	struct ring_peers *p = n->call->ring->peers;
	if (nf != 3 || strcmp(f[0], "OK") != 0) {
		ring_call_node_failf(n, "refused this node (see its log)");
		return false;
	}
	if (strcmp(f[1], n->name) != 0) {
		ring_call_node_failf(n, "%s:%u answers as '%s'", n->address, n->port, f[1]);
		return false;
	}
	if (p->secret != NULL &&
	    !peer_auth_mac_ok(p->secret, PEER_ROLE_SERVER, n->server_nonce, n->nonce,
			      n->name, f[2])) {
		ring_call_node_failf(n, "does not prove ring.secret");
		return false;
	}
	return true;
}

static void ring_call_node_hello(struct ring_call_node *n, const char *greeting)
{
	struct ring *r = n->call->ring;
	struct ring_peers *p = r->peers;
	const char *nonce = greeting + strlen(RING_PEER_GREETING);
	if (strncmp(greeting, RING_PEER_GREETING, strlen(RING_PEER_GREETING)) != 0 ||
	    strlen(nonce) != PEER_NONCE_HEX) {
		ring_call_node_failf(n, "%s:%u is not a loft node's ring port",
				     n->address, n->port);
		return;
	}
	memcpy(n->server_nonce, nonce, sizeof(n->server_nonce));
	if (peer_auth_nonce(n->nonce) < 0) {
		ring_call_node_failf(n, "no randomness for a nonce");
		return;
	}
	struct sbuf out = SBUF_INIT;
	sbuf_appends(&out, "HELLO\t");
	tabescape_append(&out, r->name);
	sbuf_appendf(&out, "\t%s\t", n->nonce);
	if (p->secret != NULL) {
		char mac[PEER_MAC_HEX + 1];
		peer_auth_mac(p->secret, PEER_ROLE_CLIENT, n->server_nonce, n->nonce,
			      r->name, mac);
		sbuf_appends(&out, mac);
	} else {
		sbuf_appendc(&out, '-');
	}
	sbuf_appendc(&out, '\n');
	bufferevent_write(n->bev, sbuf_data(&out), sbuf_len(&out));
	sbuf_free(&out);
	n->state = RING_CALL_PROOF;
}

/* OK <length> or ERROR <text>. */
static void ring_call_node_header(struct ring_call_node *n, char **f, int nf)
{
	char *end;
	if (nf == 2 && strcmp(f[0], "ERROR") == 0) {
		ring_call_node_failf(n, "%s", f[1]);
		return;
	}
	unsigned long long len = nf == 2 && strcmp(f[0], "OK") == 0 ?
		strtoull(f[1], &end, 10) : 0;
	if (nf != 2 || strcmp(f[0], "OK") != 0 || *end != '\0' || len > RING_PEER_MAX_REPLY) {
		ring_call_node_failf(n, "an answer that is not loft's");
		return;
	}
	n->payload_len = (size_t)len;
	n->state = RING_CALL_PAYLOAD;
	bufferevent_setwatermark(n->bev, EV_READ, 0, 0);
}

/* Room for want more bytes of the payload (as far as its length): the
 * buffer grows with what arrives, not with what the header announced. */
static void ring_call_node_payload_room(struct ring_call_node *n, size_t want)
{
	size_t need = MIN(n->payload_len, n->payload_have + want);
	if (n->payload != NULL && need <= n->payload_cap)
		return;
	size_t cap = MAX(need, MIN(n->payload_len, n->payload_cap * 2));
	n->payload = xrealloc(n->payload, cap + 1);
	n->payload_cap = cap;
}

/* A plain link's payload goes into a buffer of its own, read straight
 * from the socket as far as it holds. A bufferevent reads at most 4 KB a
 * loop turn (libevent 2.1's EVBUFFER_MAX_READ) and a ring's who brings
 * some 6 MB from each node (issue 14): 1,500 turns each, and a copy to
 * make it contiguous. What the bufferevent has read is taken first; its
 * own next read finds the socket empty (EAGAIN, nothing lost) or sees
 * its end or error. True once the payload is whole. */
static bool ring_call_node_read_payload(struct ring_call_node *n, struct evbuffer *in)
{
	ring_call_node_payload_room(n, evbuffer_get_length(in));
	int took = evbuffer_remove(in, n->payload + n->payload_have,
				  n->payload_len - n->payload_have);
	if (took > 0)
		n->payload_have += (size_t)took;
	evutil_socket_t fd = bufferevent_getfd(n->bev);
	while (n->payload_have < n->payload_len) {
		ring_call_node_payload_room(n, RING_CALL_READ_CHUNK);
		ssize_t got = recv(fd, n->payload + n->payload_have,
				   n->payload_cap - n->payload_have, MSG_DONTWAIT);
		if (got <= 0)
			break;
		n->payload_have += (size_t)got;
	}
	return n->payload_have == n->payload_len;
}

static void ring_call_node_read(struct bufferevent *bev, void *ctx)
{
	struct ring_call_node *n = ctx;
	struct evbuffer *in = bufferevent_get_input(bev);
	while (n->state != RING_CALL_DONE) {
		if (n->state == RING_CALL_PAYLOAD &&
		    bufferevent_openssl_get_ssl(bev) == NULL) {
			/* plain: read here; TLS: the bufferevent decrypts */
			if (ring_call_node_read_payload(n, in))
				ring_call_node_answer(n, NULL, n->payload, n->payload_len);
			return;
		}
		if (n->state == RING_CALL_PAYLOAD) {
			if (evbuffer_get_length(in) < n->payload_len)
				return;
			const char *data = (const char *)evbuffer_pullup(in, (ssize_t)n->payload_len);
			ring_call_node_answer(n, NULL, data, n->payload_len);
			return;
		}
		bool too_long;
		char *line = ring_peer_read_line(bev, &too_long);
		if (line == NULL) {
			if (too_long)
				ring_call_node_failf(n, "an answer that is not loft's");
			return;
		}
		char *f[RING_CALL_MAX_FIELDS];
		int nf = n->state == RING_CALL_GREETING ? 0 :
			tabsplit_inplace(line, f, RING_CALL_MAX_FIELDS);
		if (n->state == RING_CALL_GREETING) {
			ring_call_node_hello(n, line);
		} else if (n->state == RING_CALL_PROOF) {
			if (ring_call_node_proof_ok(n, f, nf)) {
				bufferevent_write(bev, sbuf_data(&n->call->command),
						  sbuf_len(&n->call->command));
				n->state = RING_CALL_HEADER;
			}
		} else {
			ring_call_node_header(n, f, nf);
		}
		free(line);
	}
}

static void ring_call_node_event(struct bufferevent *bev, short what, void *ctx)
{
	struct ring_call_node *n = ctx;
	char buf[256];
	if (what & BEV_EVENT_CONNECTED) {
		n->state = RING_CALL_GREETING;
		return;
	}
	const char *why = ring_peer_bev_error(bev, buf, sizeof(buf));
	if (n->state == RING_CALL_CONNECTING)
		ring_call_node_failf(n, "cannot connect to %s:%u: %s", n->address, n->port, why);
	else
		ring_call_node_failf(n, "connection to %s:%u lost: %s", n->address, n->port,
				     n->state == RING_CALL_PROOF ?
				     "refused this node (see its log)" : why);
}

/* A socket from ring.address (so that the other node sees where the
 * ring says this one is), connecting. */
static void ring_call_node_connect(struct ring_call_node *n)
{
	struct ring *r = n->call->ring;
	struct ipaddr ip, self;
	struct sockaddr_storage ss, src;
	if (ipaddr_parse(n->address, &ip) < 0) {
		ring_call_node_failf(n, "'%s' is not an address", n->address);
		return;
	}
	socklen_t len = ipaddr_to_sockaddr(&ip, (uint16_t)n->port, &ss);
	int fd = socket(ss.ss_family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
	if (fd < 0) {
		ring_call_node_failf(n, "socket() failed: %s", strerror(errno));
		return;
	}
	if (ipaddr_parse(r->address, &self) == 0 && self.family == ip.family) {
		socklen_t slen = ipaddr_to_sockaddr(&self, 0, &src);
		(void)bind(fd, (struct sockaddr *)&src, slen);	/* else the kernel's choice */
	}
	n->bev = ring_peer_bev_new(r, fd, false);
	if (n->bev == NULL) {
		ring_call_node_failf(n, "no TLS state");
		return;
	}
	bufferevent_setcb(n->bev, ring_call_node_read, NULL, ring_call_node_event, n);
	bufferevent_setwatermark(n->bev, EV_READ, 0, RING_PEER_MAX_LINE + 2);
	bufferevent_enable(n->bev, EV_READ | EV_WRITE);
	if (bufferevent_socket_connect(n->bev, (struct sockaddr *)&ss, (int)len) < 0)
		ring_call_node_failf(n, "cannot connect to %s:%u: %s", n->address, n->port,
				     strerror(errno));
}

/* The deadline, or the last answer: every node still silent is missing,
 * then done. */
static void ring_call_timer(evutil_socket_t fd, short what, void *ctx)
{
	struct ring_call *call = ctx;
	(void)fd;
	(void)what;
	char text[96];
	uint64_t ms = call->ring->peers->timeout_ms;
	if (ms % 1000 == 0)
		snprintf(text, sizeof(text), "did not answer within %llus",
			 (unsigned long long)(ms / 1000));
	else
		snprintf(text, sizeof(text), "did not answer within %llums",
			 (unsigned long long)ms);
	for (size_t i = 0; i < call->count; i++)
		ring_call_node_answer(&call->nodes[i], text, NULL, 0);
	evtimer_del(call->timer);
	call->done(call->ctx);
	ring_call_free(call);
}

/* The call's first turn: the nodes known down answer, the others are
 * asked. */
static void ring_call_start(evutil_socket_t fd, short what, void *ctx)
{
	struct ring_call *call = ctx;
	struct ring *r = call->ring;
	(void)fd;
	(void)what;
	struct timeval tv = { (time_t)(r->peers->timeout_ms / 1000),
			      (suseconds_t)(r->peers->timeout_ms % 1000) * 1000 };
	evtimer_assign(call->timer, r->base, ring_call_timer, call);
	evtimer_add(call->timer, &tv);
	for (size_t i = 0; i < call->count; i++) {
		struct ring_call_node *n = &call->nodes[i];
		if (n->port == 0)
			ring_call_node_answer(n, "down (not a live member of the ring)", NULL, 0);
		else if (!ring_peers_enabled(r))
			ring_call_node_answer(n, "this node has no links to the others "
					      "(set ring.secret or ring.tls_cert)", NULL, 0);
		else
			ring_call_node_connect(n);
	}
	if (call->count == 0) {
		struct timeval now = { 0, 0 };
		evtimer_add(call->timer, &now);
	}
}

struct ring_call *ring_call_new(struct ring *r, ring_call_answer_cb *answer,
				ring_call_done_cb *done, void *ctx)
{
	struct ring_call *call = xcalloc(1, sizeof(*call));
	call->ring = r;
	call->answer = answer;
	call->done = done;
	call->ctx = ctx;
	list_append(&r->peers->calls, &call->node);
	return call;
}

void ring_call_add_node(struct ring_call *call, const char *name, const char *address,
			unsigned int port)
{
	call->nodes = xgrow(call->nodes, &call->cap, call->count + 1, sizeof(*call->nodes));
	struct ring_call_node *n = &call->nodes[call->count++];
	memset(n, 0, sizeof(*n));
	n->call = call;
	n->name = xstrdup(name);
	n->address = xstrdup(address);
	n->port = port;
	call->pending++;
}

struct sbuf *ring_call_text(struct ring_call *call)
{
	return &call->command;
}

void ring_call_go(struct ring_call *call)
{
	/* the nodes' back pointers are final now that the array is */
	for (size_t i = 0; i < call->count; i++)
		call->nodes[i].call = call;
	call->timer = evtimer_new(call->ring->base, ring_call_start, call);
	struct timeval now = { 0, 0 };
	evtimer_add(call->timer, &now);
}

void ring_call_all(struct ring *r, const char *const *fields, size_t count,
		   ring_call_answer_cb *answer, ring_call_done_cb *done, void *ctx)
{
	struct ring_call *call = ring_call_new(r, answer, done, ctx);
	for (size_t i = 0; i < count; i++) {
		if (i > 0)
			sbuf_appendc(&call->command, '\t');
		tabescape_append(&call->command, fields[i]);
	}
	sbuf_appendc(&call->command, '\n');
	/* the live members, then the directors that have none (port 0) */
	for (size_t i = 0; i < r->members_count; i++) {
		const struct ring_member *m = &r->members[i];
		if (strcmp(m->name, r->name) != 0)
			ring_call_add_node(call, m->name, m->address, m->port);
	}
	char name[256];
	for (size_t i = 0; ring_director_down(r, i, name, sizeof(name)); i++)
		ring_call_add_node(call, name, "", 0);
	ring_call_go(call);
}

void ring_peer_calls_stop(struct ring *r)
{
	struct ring_peers *p = r->peers;
	while (!list_is_empty(&p->calls)) {
		struct ring_call *call = CONTAINER_OF(p->calls.head, struct ring_call, node);
		for (size_t i = 0; i < call->count; i++)
			ring_call_node_answer(&call->nodes[i], "this node is stopping", NULL, 0);
		call->done(call->ctx);
		ring_call_free(call);
	}
}
