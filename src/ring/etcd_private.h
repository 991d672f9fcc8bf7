/* What etcd.c (the client, endpoints, unary requests, authentication),
 * etcd_http.c (HTTP connections) and etcd_watch.c (watch streams) share.
 * Private to src/ring. */
#ifndef LOFT_RING_ETCD_PRIVATE_H
#define LOFT_RING_ETCD_PRIVATE_H

#include <openssl/ssl.h>
#include <stdbool.h>
#include <stdint.h>

#include "common/list.h"
#include "common/sbuf.h"
#include "ring/etcd.h"

struct event;
struct evdns_base;
struct evhttp_connection;

struct etcd_endpoint {
	char *url;		/* as configured: results name it */
	char *host;		/* to connect to (an IPv6 address without []) */
	char *authority;	/* the Host header: "host:port" as written */
	uint16_t port;
	bool tls;
};

struct etcd_client {
	struct event_base *base;
	char *frozen;			/* set: every request but a lease
					 * renewal fails at once, with this */
	struct evdns_base *dns;		/* only when an endpoint is a name */
	SSL_CTX *ssl_ctx;		/* only with https endpoints */
	struct etcd_endpoint *endpoints;
	unsigned int endpoint_count;
	unsigned int current;		/* where the next request goes */
	char *source_address;
	unsigned int request_timeout_msecs;
	unsigned int watch_idle_msecs;
	size_t max_message_size;

	/* token authentication */
	char *user;
	char *password;
	char *token;
	unsigned int token_generation;	/* counts tokens obtained */
	struct etcd_request *auth_request;	/* in flight */
	struct list auth_waiters;	/* requests waiting for a token */

	struct list requests;		/* every request not yet delivered */
	struct list watches;
	struct list idle_http;		/* kept-alive connections */
	struct list dead_http;		/* to be freed on the next loop turn */
	struct event *reap_event;

	/* callbacks in progress; etcd_client_free() inside one waits */
	unsigned int callback_depth;
	bool free_pending;
};

/* ---- etcd.c ---- */

/* A connection to endpoint failed, timed out or found no leader: the
 * next requests go to the next endpoint. */
void etcd_client_endpoint_failed(struct etcd_client *client, unsigned int endpoint);
/* Authentication is on and no token is at hand. */
bool etcd_client_needs_token(const struct etcd_client *client);
/* Starts authenticating unless that is under way; waiting watches are
 * told through etcd_watches_on_token(). */
void etcd_client_request_token(struct etcd_client *client);
/* A request made with token generation was refused for its token. */
void etcd_client_drop_token(struct etcd_client *client, unsigned int generation);
/* After an owner's callback: frees the client if that was asked for
 * inside it. true when it is gone: the caller returns at once. */
bool etcd_client_leave_callback(struct etcd_client *client);

/* ---- etcd_http.c ---- */

enum etcd_http_end {
	ETCD_HTTP_REPLY,	/* an HTTP answer, of any status */
	ETCD_HTTP_NOT_SENT,	/* never connected: the request did not leave */
	ETCD_HTTP_LOST,		/* failed once connected: it may have arrived */
};

struct etcd_http_end_info {
	enum etcd_http_end end;
	int status;
	/* the body not yet handed to a chunk callback */
	const char *body;
	size_t body_len;
	const char *error;	/* NOT_SENT, LOST: why */
};

/* Both run inside libevent's HTTP code: they must only record what
 * happened and wake their owner's own event. */
typedef void etcd_http_chunk_cb(void *owner, int status, const char *data,
				size_t len);
typedef void etcd_http_done_cb(void *owner, const struct etcd_http_end_info *info);

/* One evhttp connection carrying one request at a time. It is never
 * reconnected: once closed it is replaced (a TLS connection cannot be
 * reconnected with evhttp, and a fresh one keeps "did it connect" exact). */
struct etcd_http {
	struct list_node node;	/* client->idle_http or dead_http */
	struct etcd_client *client;
	struct evhttp_connection *evcon;
	unsigned int endpoint;
	void *owner;		/* NULL while idle, after the end, discarded */
	etcd_http_chunk_cb *chunk_cb;
	etcd_http_done_cb *done_cb;
	bool up;		/* was connected (it carried a request before,
				 * or evhttp reported its close) */
	bool closed;		/* evhttp closed it: never reuse */
	int error;		/* the evhttp_request_error seen, or -1 */
	struct sbuf body;
};

/* A kept-alive connection to endpoint, or a new one. */
struct etcd_http *etcd_http_get(struct etcd_client *client, unsigned int endpoint);
/* A new connection for a long-lived stream (no pooling, no timeout: the
 * owner watches it). */
struct etcd_http *etcd_http_get_stream(struct etcd_client *client,
				       unsigned int endpoint);
/* POSTs body to path with the Host, hasleader and (if token is set)
 * Authorization headers. chunk_cb may be NULL (then the body arrives
 * whole at the end). done_cb is always called, possibly before this
 * returns. */
void etcd_http_send(struct etcd_http *h, const char *path, const char *body,
		    const char *token, void *owner, etcd_http_chunk_cb *chunk_cb,
		    etcd_http_done_cb *done_cb);
/* Whether the request in flight may have reached etcd. */
bool etcd_http_is_up(const struct etcd_http *h);
/* After a complete reply: keep the connection for the next request. */
void etcd_http_release(struct etcd_http **h);
/* Drops the connection and whatever it carries; no more callbacks. */
void etcd_http_discard(struct etcd_http **h);
/* Frees every connection at once (the client goes away). */
void etcd_http_free_all(struct etcd_client *client);
int etcd_http_init(struct etcd_client *client, char **error_r);
SSL_CTX *etcd_http_ssl_ctx_new(const struct etcd_settings *settings,
			       char **error_r);

/* ---- etcd_watch.c ---- */

/* Authentication ended: the watches waiting for a token start (ok), or
 * retry later, or are canceled when etcd refused the credentials
 * (definite). */
void etcd_watches_on_token(struct etcd_client *client, bool ok, bool definite,
			   const char *error);
void etcd_watches_free_all(struct etcd_client *client);

#endif
