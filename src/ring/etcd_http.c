/* HTTP connections to etcd members: evhttp connections, plain or over
 * bufferevent_openssl, from an optional local address, one request at a
 * time each. Every request gets the headers the gateway needs: Host
 * (evhttp sends none and Go refuses requests without it) and
 * "Grpc-Metadata-hasleader: true" (an isolated member answers "no leader"
 * instead of stale data and ends its watches).
 *
 * Whether a failed request may have reached etcd is what its outcome
 * hangs on, and evhttp does not say. It is known here from how evhttp
 * fails: a connection that never came up ends in evhttp's cleanup path
 * (or with an error before the close callback ever ran); a connection
 * that was up runs the close callback when evhttp resets it. So a
 * connection is used until it closes and never reconnected.
 *
 * evhttp must not free a connection from inside its own callbacks, so a
 * dropped connection is freed on the next loop turn. */
#include "ring/etcd_private.h"

#include <arpa/inet.h>
#include <event2/bufferevent.h>
#include <event2/bufferevent_ssl.h>
#include <event2/buffer.h>
#include <event2/dns.h>
#include <event2/event.h>
#include <event2/http.h>
#include <openssl/err.h>
#include <openssl/x509v3.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>

#include "common/macros.h"
#include "common/xmalloc.h"
#include "core/tls.h"

/* kept-alive connections per client, all endpoints together: enough for
 * the few requests a ring has in flight at once */
#define ETCD_IDLE_HTTP_MAX 4
/* a stream has no evhttp timeout (its owner's idle timer watches it);
 * evhttp has no "none", so a day */
#define ETCD_STREAM_TIMEOUT_SECS (24 * 3600)

static const char *const etcd_http_errors[] = {
	[EVREQ_HTTP_TIMEOUT] = "timed out",
	[EVREQ_HTTP_EOF] = "connection closed",
	[EVREQ_HTTP_INVALID_HEADER] = "invalid HTTP header",
	[EVREQ_HTTP_BUFFER_ERROR] = "connection error",
	[EVREQ_HTTP_REQUEST_CANCEL] = "canceled",
	[EVREQ_HTTP_DATA_TOO_LONG] = "reply larger than the limit",
};

static void etcd_http_on_close(struct evhttp_connection *evcon, void *arg)
{
	struct etcd_http *h = arg;
	(void)evcon;
	/* evhttp calls this only for a connection that was up */
	h->up = true;
	h->closed = true;
}

static void etcd_http_on_error(enum evhttp_request_error error, void *arg)
{
	struct etcd_http *h = arg;
	h->error = (int)error;
}

static void etcd_http_on_chunk(struct evhttp_request *req, void *arg)
{
	struct etcd_http *h = arg;
	if (h->owner == NULL)
		return;
	struct evbuffer *in = evhttp_request_get_input_buffer(req);
	size_t len = evbuffer_get_length(in);
	const char *data = (const char *)evbuffer_pullup(in, -1);
	h->chunk_cb(h->owner, evhttp_request_get_response_code(req), data, len);
}

/* TLS alerts by which a server refuses the client's certificate (or its
 * lack of one). TLS 1.3 delivers them after the client has finished its
 * side of the handshake, when evhttp has already written the request;
 * but a server that refused the peer never read it. */
static const int etcd_tls_refusals[] = {
	SSL_R_SSLV3_ALERT_BAD_CERTIFICATE,
	SSL_R_SSLV3_ALERT_CERTIFICATE_UNKNOWN,
	SSL_R_SSLV3_ALERT_CERTIFICATE_EXPIRED,
	SSL_R_SSLV3_ALERT_CERTIFICATE_REVOKED,
	SSL_R_SSLV3_ALERT_UNSUPPORTED_CERTIFICATE,
	SSL_R_SSLV3_ALERT_HANDSHAKE_FAILURE,
	SSL_R_TLSV1_ALERT_UNKNOWN_CA,
	SSL_R_TLSV1_ALERT_ACCESS_DENIED,
	SSL_R_TLSV13_ALERT_CERTIFICATE_REQUIRED,
};

/* Why a TLS connection failed, if it was TLS that failed; *refused_r
 * when the server refused the client's certificate. */
static const char *etcd_http_tls_error(struct etcd_http *h, char *buf, size_t size,
				       bool *refused_r)
{
	*refused_r = false;
	struct bufferevent *bev = evhttp_connection_get_bufferevent(h->evcon);
	SSL *ssl = bev == NULL ? NULL : bufferevent_openssl_get_ssl(bev);
	if (ssl == NULL)
		return NULL;
	long verify = SSL_get_verify_result(ssl);
	if (verify != X509_V_OK) {
		snprintf(buf, size, "TLS: certificate verify failed: %s",
			 X509_verify_cert_error_string(verify));
		return buf;
	}
	unsigned long e = bufferevent_get_openssl_error(bev);
	if (e == 0)
		return NULL;
	for (size_t i = 0; i < ARRAY_SIZE(etcd_tls_refusals); i++) {
		if (ERR_GET_LIB(e) == ERR_LIB_SSL &&
		    ERR_GET_REASON(e) == etcd_tls_refusals[i])
			*refused_r = true;
	}
	char text[200];
	ERR_error_string_n(e, text, sizeof(text));
	snprintf(buf, size, "TLS: %s", text);
	return buf;
}

static void etcd_http_on_done(struct evhttp_request *req, void *arg)
{
	struct etcd_http *h = arg;
	if (h->owner == NULL)
		return;
	void *owner = h->owner;
	h->owner = NULL;

	struct etcd_http_end_info info = { ETCD_HTTP_REPLY, 0, NULL, 0, NULL };
	char tls[300];
	if (req != NULL && evhttp_request_get_response_code(req) != 0) {
		struct evbuffer *in = evhttp_request_get_input_buffer(req);
		size_t len = evbuffer_get_length(in);
		sbuf_reset(&h->body);
		if (len > 0)
			sbuf_append(&h->body, evbuffer_pullup(in, -1), len);
		info.status = evhttp_request_get_response_code(req);
		info.body = sbuf_data(&h->body);
		info.body_len = sbuf_len(&h->body);
	} else {
		bool refused;
		info.error = etcd_http_tls_error(h, tls, sizeof(tls), &refused);
		info.end = h->up && !refused ? ETCD_HTTP_LOST : ETCD_HTTP_NOT_SENT;
		if (info.error == NULL && h->error >= 0 &&
		    (size_t)h->error < ARRAY_SIZE(etcd_http_errors))
			info.error = etcd_http_errors[h->error];
		if (info.error == NULL)
			info.error = "cannot connect";
		h->closed = true;
	}
	h->done_cb(owner, &info);
}

static struct etcd_http *etcd_http_new(struct etcd_client *client,
				       unsigned int endpoint, bool stream)
{
	const struct etcd_endpoint *ep = &client->endpoints[endpoint];
	struct bufferevent *bev = NULL;
	if (ep->tls) {
		SSL *ssl = SSL_new(client->ssl_ctx);
		if (ssl == NULL)
			abort();	/* out of memory */
		struct in6_addr addr;
		if (inet_pton(AF_INET, ep->host, &addr) == 1 ||
		    inet_pton(AF_INET6, ep->host, &addr) == 1) {
			X509_VERIFY_PARAM_set1_ip_asc(SSL_get0_param(ssl), ep->host);
		} else {
			/* a copy: the macro casts const away (-Wcast-qual) */
			char name[256];
			snprintf(name, sizeof(name), "%s", ep->host);
			SSL_set_tlsext_host_name(ssl, name);
			SSL_set1_host(ssl, ep->host);
		}
		bev = bufferevent_openssl_socket_new(client->base, -1, ssl,
			BUFFEREVENT_SSL_CONNECTING,
			BEV_OPT_CLOSE_ON_FREE | BEV_OPT_DEFER_CALLBACKS);
		if (bev == NULL)
			abort();
		/* etcd (Go) closes without close_notify at times */
		bufferevent_openssl_set_allow_dirty_shutdown(bev, 1);
	}
	struct evhttp_connection *evcon = evhttp_connection_base_bufferevent_new(
		client->base, client->dns, bev, ep->host, ep->port);
	if (evcon == NULL)
		abort();
	struct etcd_http *h = xcalloc(1, sizeof(*h));
	h->client = client;
	h->evcon = evcon;
	h->endpoint = endpoint;
	h->error = -1;
	if (client->source_address != NULL)
		evhttp_connection_set_local_address(evcon, client->source_address);
	/* no retries: a failure goes back to the owner, who fails over */
	evhttp_connection_set_retries(evcon, 0);
	if (stream) {
		evhttp_connection_set_timeout(evcon, ETCD_STREAM_TIMEOUT_SECS);
	} else {
		/* the request's own deadline comes first; this only bounds a
		 * connection nobody waits on any more */
		unsigned int ms = client->request_timeout_msecs + 500;
		struct timeval tv = { ms / 1000, (ms % 1000) * 1000 };
		evhttp_connection_set_timeout_tv(evcon, &tv);
		evhttp_connection_set_max_body_size(evcon,
			(ev_ssize_t)client->max_message_size);
	}
	evhttp_connection_set_closecb(evcon, etcd_http_on_close, h);
	return h;
}

struct etcd_http *etcd_http_get(struct etcd_client *client, unsigned int endpoint)
{
	struct list_node *n = client->idle_http.head;
	while (n != NULL) {
		struct etcd_http *h = CONTAINER_OF(n, struct etcd_http, node);
		n = n->next;
		if (h->closed) {
			list_unlink(&client->idle_http, &h->node);
			etcd_http_discard(&h);
		} else if (h->endpoint == endpoint) {
			list_unlink(&client->idle_http, &h->node);
			return h;
		}
	}
	return etcd_http_new(client, endpoint, false);
}

struct etcd_http *etcd_http_get_stream(struct etcd_client *client,
				       unsigned int endpoint)
{
	return etcd_http_new(client, endpoint, true);
}

void etcd_http_send(struct etcd_http *h, const char *path, const char *body,
		    const char *token, void *owner, etcd_http_chunk_cb *chunk_cb,
		    etcd_http_done_cb *done_cb)
{
	const struct etcd_endpoint *ep = &h->client->endpoints[h->endpoint];
	h->owner = owner;
	h->chunk_cb = chunk_cb;
	h->done_cb = done_cb;
	h->error = -1;

	struct evhttp_request *req = evhttp_request_new(etcd_http_on_done, h);
	if (req == NULL)
		abort();
	evhttp_request_set_error_cb(req, etcd_http_on_error);
	if (chunk_cb != NULL)
		evhttp_request_set_chunked_cb(req, etcd_http_on_chunk);
	struct evkeyvalq *hdrs = evhttp_request_get_output_headers(req);
	evhttp_add_header(hdrs, "Host", ep->authority);
	evhttp_add_header(hdrs, "Content-Type", "application/json");
	evhttp_add_header(hdrs, "Grpc-Metadata-hasleader", "true");
	if (token != NULL)
		evhttp_add_header(hdrs, "Authorization", token);
	/* whole, with a Content-Length: etcd answers a stream only once
	 * the request body has ended */
	evbuffer_add(evhttp_request_get_output_buffer(req), body, strlen(body));
	if (evhttp_make_request(h->evcon, req, EVHTTP_REQ_POST, path) != 0) {
		/* binding the source address failed; evhttp left req to us */
		evhttp_request_free(req);
		h->closed = true;
		h->owner = NULL;
		struct etcd_http_end_info info = {
			ETCD_HTTP_NOT_SENT, 0, NULL, 0,
			"cannot connect (from the source address?)",
		};
		done_cb(owner, &info);
	}
}

bool etcd_http_is_up(const struct etcd_http *h)
{
	if (h->up)
		return true;
	struct bufferevent *bev = evhttp_connection_get_bufferevent(h->evcon);
	evutil_socket_t fd = bev == NULL ? -1 : bufferevent_getfd(bev);
	struct sockaddr_storage ss;
	socklen_t len = sizeof(ss);
	return fd >= 0 && getpeername(fd, (struct sockaddr *)&ss, &len) == 0;
}

static void etcd_http_on_reap(evutil_socket_t fd, short what, void *arg)
{
	struct etcd_client *client = arg;
	(void)fd;
	(void)what;
	while (!list_is_empty(&client->dead_http)) {
		struct etcd_http *h = CONTAINER_OF(client->dead_http.head,
						   struct etcd_http, node);
		list_unlink(&client->dead_http, &h->node);
		/* frees the request in flight without calling back */
		evhttp_connection_free(h->evcon);
		sbuf_free(&h->body);
		free(h);
	}
}

void etcd_http_release(struct etcd_http **hp)
{
	struct etcd_http *h = *hp;
	*hp = NULL;
	struct etcd_client *client = h->client;
	h->owner = NULL;
	sbuf_free(&h->body);
	if (h->closed || client->idle_http.count >= ETCD_IDLE_HTTP_MAX) {
		etcd_http_discard(&h);
		return;
	}
	/* the next request on it may have arrived even if it fails */
	h->up = true;
	list_append(&client->idle_http, &h->node);
}

void etcd_http_discard(struct etcd_http **hp)
{
	struct etcd_http *h = *hp;
	if (h == NULL)
		return;
	*hp = NULL;
	h->owner = NULL;
	evhttp_connection_set_closecb(h->evcon, NULL, NULL);
	list_append(&h->client->dead_http, &h->node);
	event_active(h->client->reap_event, 0, 0);
}

void etcd_http_free_all(struct etcd_client *client)
{
	while (!list_is_empty(&client->idle_http)) {
		struct etcd_http *h = CONTAINER_OF(client->idle_http.head,
						   struct etcd_http, node);
		list_unlink(&client->idle_http, &h->node);
		etcd_http_discard(&h);
	}
	etcd_http_on_reap(-1, 0, client);
	if (client->reap_event != NULL)
		event_free(client->reap_event);
	client->reap_event = NULL;
}

int etcd_http_init(struct etcd_client *client, char **error_r)
{
	client->reap_event = event_new(client->base, -1, 0, etcd_http_on_reap, client);
	if (client->reap_event == NULL) {
		*error_r = xstrdup("event_new failed");
		return -1;
	}
	for (unsigned int i = 0; i < client->endpoint_count; i++) {
		struct in6_addr addr;
		const char *host = client->endpoints[i].host;
		if (inet_pton(AF_INET, host, &addr) == 1 ||
		    inet_pton(AF_INET6, host, &addr) == 1 || client->dns != NULL)
			continue;
		/* a name: resolve it without blocking the loop */
		client->dns = evdns_base_new(client->base,
					     EVDNS_BASE_INITIALIZE_NAMESERVERS);
		if (client->dns == NULL) {
			*error_r = xasprintf("etcd endpoint %s: cannot set up DNS",
					     client->endpoints[i].url);
			return -1;
		}
	}
	return 0;
}

SSL_CTX *etcd_http_ssl_ctx_new(const struct etcd_settings *set, char **error_r)
{
	SSL_CTX *ctx = SSL_CTX_new(TLS_client_method());
	if (ctx == NULL) {
		*error_r = xasprintf("SSL_CTX_new failed: %s", tls_last_error());
		return NULL;
	}
	SSL_CTX_set_min_proto_version(ctx, TLS1_2_VERSION);
	SSL_CTX_set_verify(ctx, SSL_VERIFY_PEER, NULL);
	const char *ca = set->tls_ca_file;
	int ok = ca != NULL && ca[0] != '\0' ?
		SSL_CTX_load_verify_locations(ctx, ca, NULL) :
		SSL_CTX_set_default_verify_paths(ctx);
	if (ok != 1) {
		*error_r = xasprintf("etcd CA %s: %s",
				     ca != NULL && ca[0] != '\0' ? ca : "(system)",
				     tls_last_error());
		goto fail;
	}
	const char *cert = set->tls_cert_file, *key = set->tls_key_file;
	bool has_cert = cert != NULL && cert[0] != '\0';
	bool has_key = key != NULL && key[0] != '\0';
	if (has_cert != has_key) {
		*error_r = xstrdup("etcd client certificate and key go together");
		goto fail;
	}
	if (has_cert) {
		if (SSL_CTX_use_certificate_chain_file(ctx, cert) != 1) {
			*error_r = xasprintf("etcd client certificate %s: %s", cert,
					     tls_last_error());
			goto fail;
		}
		if (SSL_CTX_use_PrivateKey_file(ctx, key, SSL_FILETYPE_PEM) != 1 ||
		    SSL_CTX_check_private_key(ctx) != 1) {
			*error_r = xasprintf("etcd client key %s: %s", key,
					     tls_last_error());
			goto fail;
		}
	}
	return ctx;
fail:
	SSL_CTX_free(ctx);
	return NULL;
}
