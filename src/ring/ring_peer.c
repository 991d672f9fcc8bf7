/* The links between the nodes of a ring: their settings and what both
 * ends of a link share (ring_peer.h). */
#include "ring/ring_peer.h"

#include <errno.h>
#include <event2/buffer.h>
#include <event2/bufferevent.h>
#include <event2/bufferevent_ssl.h>
#include <openssl/err.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "common/xmalloc.h"
#include "core/tls.h"
#include "ring/ring_peer_auth.h"
#include "ring/ring_private.h"

bool ring_peers_enabled(const struct ring *r)
{
	return r->peers->secret != NULL || r->peers->tls_server != NULL;
}

int ring_peers_init(struct ring *r, const struct config *cfg, int peer_fd, char **error_r)
{
	struct ring_peers *p = xcalloc(1, sizeof(*p));
	r->peers = p;
	list_init(&p->conns);
	list_init(&p->calls);
	p->timeout_ms = cfg->ring.peer_timeout_ms;
	p->max_conns = cfg->ring.peer_max_connections;
	if (cfg->ring.secret[0] != '\0')
		p->secret = xstrdup(cfg->ring.secret);
	if (cfg->ring.tls_cert[0] != '\0') {
		char *error;
		p->tls_server = peer_auth_tls_ctx_new(true, cfg->ring.tls_cert, cfg->ring.tls_key,
						      cfg->ring.tls_ca_file, &error);
		if (p->tls_server != NULL)
			p->tls_client = peer_auth_tls_ctx_new(false, cfg->ring.tls_cert,
							      cfg->ring.tls_key,
							      cfg->ring.tls_ca_file, &error);
		if (p->tls_client == NULL) {
			*error_r = xasprintf("%s: ring.tls_cert: %s",
					     config_source(cfg, "ring.tls_cert"), error);
			free(error);
			if (peer_fd >= 0)
				close(peer_fd);
			return -1;
		}
	}
	if (!ring_peers_enabled(r)) {
		if (peer_fd >= 0)
			close(peer_fd);
		ring_report(r, LOG_LEVEL_WARNING, "ring: no links to the other nodes "
			    "(ring.secret and ring.tls_cert are unset): who, kick and proxy "
			    "list cannot cover the ring");
		return 0;
	}
	return ring_peer_server_start(r, peer_fd, error_r);
}

void ring_peers_deinit(struct ring *r)
{
	struct ring_peers *p = r->peers;
	if (p == NULL)
		return;
	ring_peer_calls_stop(r);
	ring_peer_server_stop(r);
	if (p->secret != NULL) {
		explicit_bzero(p->secret, strlen(p->secret));
		free(p->secret);
	}
	SSL_CTX_free(p->tls_server);
	SSL_CTX_free(p->tls_client);
	free(p);
	r->peers = NULL;
}

void ring_set_peer_commands(struct ring *r, ring_peer_command_cb *cb, void *ctx)
{
	r->peers->command = cb;
	r->peers->command_ctx = ctx;
}

const char *ring_self_name(const struct ring *r)
{
	return r->name;
}

struct bufferevent *ring_peer_bev_new(struct ring *r, int fd, bool server)
{
	struct ring_peers *p = r->peers;
	int opts = BEV_OPT_CLOSE_ON_FREE | BEV_OPT_DEFER_CALLBACKS;
	if (p->tls_server == NULL)
		return bufferevent_socket_new(r->base, fd, opts);
	SSL *ssl = SSL_new(server ? p->tls_server : p->tls_client);
	struct bufferevent *bev = ssl == NULL ? NULL :
		bufferevent_openssl_socket_new(r->base, fd, ssl,
					       server ? BUFFEREVENT_SSL_ACCEPTING :
					       BUFFEREVENT_SSL_CONNECTING, opts);
	if (bev == NULL) {
		SSL_free(ssl);
		close(fd);
	}
	return bev;
}

char *ring_peer_read_line(struct bufferevent *bev, bool *too_long)
{
	struct evbuffer *in = bufferevent_get_input(bev);
	size_t len;
	char *line = evbuffer_readln(in, &len, EVBUFFER_EOL_LF);
	*too_long = line == NULL ? evbuffer_get_length(in) > RING_PEER_MAX_LINE :
		len > RING_PEER_MAX_LINE;
	if (*too_long) {
		free(line);
		return NULL;
	}
	return line;
}

const char *ring_peer_bev_error(struct bufferevent *bev, char *buf, size_t size)
{
	unsigned long e = bufferevent_get_openssl_error(bev);
	if (e != 0) {
		ERR_error_string_n(e, buf, size);
		return buf;
	}
	return errno != 0 ? strerror(errno) : "connection closed";
}
