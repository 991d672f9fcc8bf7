/* The metrics endpoint over evhttp (server.h). */
#include "metrics/server.h"

#include <errno.h>
#include <event2/buffer.h>
#include <event2/bufferevent.h>
#include <event2/event.h>
#include <event2/http.h>
#include <event2/keyvalq_struct.h>
#include <event2/listener.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/net.h"
#include "common/xmalloc.h"

#define METRICS_SERVER_PATH "/metrics"
#define METRICS_SERVER_CONTENT_TYPE "text/plain; version=0.0.4; charset=utf-8"
#define METRICS_SERVER_HEADERS_MAX 8192
#define METRICS_SERVER_BODY_MAX 1024
/* unread input a connection may hold: more than one request's headers,
 * so that one always fits, and no more */
#define METRICS_SERVER_INPUT_MAX (2 * METRICS_SERVER_HEADERS_MAX)
#define METRICS_SERVER_BACKLOG 16
/* out of descriptors: accepting pauses this long instead of spinning */
#define METRICS_SERVER_PAUSE_MS 1000

struct metrics_server {
	struct event_base *base;
	struct evhttp *http;
	struct evconnlistener *listener;	/* owned by http once bound */
	struct event *resume;
	metrics_render_cb *render;
	void *ctx;
};

static struct evbuffer *metrics_server_body(const void *data, size_t len)
{
	struct evbuffer *body = evbuffer_new();
	if (body == NULL)
		abort();	/* out of memory, as xmalloc */
	evbuffer_add(body, data, len);
	return body;
}

static void metrics_server_send(struct evhttp_request *req, int code, const char *reason,
				const char *content_type, struct evbuffer *body)
{
	evhttp_add_header(evhttp_request_get_output_headers(req), "Content-Type",
			  content_type);
	evhttp_send_reply(req, code, reason, body);
	evbuffer_free(body);
}

/* A short text answer (evhttp_send_error() would drop the headers set
 * here and close the connection). */
static void metrics_server_refuse(struct evhttp_request *req, int code, const char *reason)
{
	char text[64];
	int n = snprintf(text, sizeof(text), "%d %s\n", code, reason);
	metrics_server_send(req, code, reason, "text/plain; charset=utf-8",
			    metrics_server_body(text, (size_t)n));
}

static void metrics_server_reply(struct evhttp_request *req, void *arg)
{
	struct metrics_server *srv = arg;
	const struct evhttp_uri *uri = evhttp_request_get_evhttp_uri(req);
	const char *path = uri != NULL ? evhttp_uri_get_path(uri) : NULL;

	if (path == NULL || strcmp(path, METRICS_SERVER_PATH) != 0) {
		metrics_server_refuse(req, HTTP_NOTFOUND, "Not Found");
		return;
	}
	enum evhttp_cmd_type cmd = evhttp_request_get_command(req);
	if (cmd != EVHTTP_REQ_GET && cmd != EVHTTP_REQ_HEAD) {
		evhttp_add_header(evhttp_request_get_output_headers(req), "Allow", "GET, HEAD");
		metrics_server_refuse(req, HTTP_BADMETHOD, "Method Not Allowed");
		return;
	}
	struct sbuf text = SBUF_INIT;
	srv->render(srv->ctx, &text);
	struct evbuffer *body = metrics_server_body(sbuf_data(&text), sbuf_len(&text));
	sbuf_free(&text);
	metrics_server_send(req, HTTP_OK, "OK", METRICS_SERVER_CONTENT_TYPE, body);
}

/* Every connection's bufferevent: reading stops while its unread input
 * is at the cap (evhttp sets no watermark of its own). */
static struct bufferevent *metrics_server_bufferevent(struct event_base *base, void *arg)
{
	(void)arg;
	struct bufferevent *bev = bufferevent_socket_new(base, -1, BEV_OPT_CLOSE_ON_FREE);
	if (bev != NULL)
		bufferevent_setwatermark(bev, EV_READ, 0, METRICS_SERVER_INPUT_MAX);
	return bev;
}

static void metrics_server_resume(evutil_socket_t fd, short what, void *arg)
{
	struct metrics_server *srv = arg;
	(void)fd;
	(void)what;
	evconnlistener_enable(srv->listener);
}

/* accept() failed, e.g. for want of descriptors (libevent retries the
 * transient errors itself): pause rather than spin on a listening socket
 * that stays readable. */
static void metrics_server_accept_error(struct evconnlistener *listener, void *arg)
{
	struct metrics_server *srv = arg;
	struct timeval tv = { METRICS_SERVER_PAUSE_MS / 1000,
			      (METRICS_SERVER_PAUSE_MS % 1000) * 1000 };
	evconnlistener_disable(listener);
	evtimer_add(srv->resume, &tv);
}

struct metrics_server *metrics_server_new(struct event_base *base,
					  const struct metrics_server_settings *set,
					  char **error_r)
{
	struct ipaddr ip;
	struct sockaddr_storage ss;
	if (ipaddr_parse(set->address, &ip) < 0) {
		*error_r = xasprintf("invalid metrics address '%s'", set->address);
		return NULL;
	}
	socklen_t len = ipaddr_to_sockaddr(&ip, set->port, &ss);
	struct metrics_server *srv = xcalloc(1, sizeof(*srv));
	srv->base = base;
	srv->render = set->render;
	srv->ctx = set->ctx;
	srv->listener = evconnlistener_new_bind(base, NULL, NULL,
		LEV_OPT_CLOSE_ON_FREE | LEV_OPT_CLOSE_ON_EXEC | LEV_OPT_REUSEABLE,
		METRICS_SERVER_BACKLOG, (struct sockaddr *)&ss, (int)len);
	if (srv->listener == NULL) {
		*error_r = xasprintf("cannot listen on %s port %u: %s", set->address,
				     set->port, strerror(errno));
		free(srv);
		return NULL;
	}
	srv->http = evhttp_new(base);
	if (srv->http == NULL || evhttp_bind_listener(srv->http, srv->listener) == NULL)
		abort();	/* out of memory */
	srv->resume = evtimer_new(base, metrics_server_resume, srv);
	evconnlistener_set_error_cb(srv->listener, metrics_server_accept_error);
	/* every method reaches the callback, which answers 405 itself
	 * (evhttp would say 501) */
	evhttp_set_allowed_methods(srv->http, EVHTTP_REQ_GET | EVHTTP_REQ_HEAD |
				   EVHTTP_REQ_POST | EVHTTP_REQ_PUT | EVHTTP_REQ_DELETE |
				   EVHTTP_REQ_OPTIONS | EVHTTP_REQ_TRACE |
				   EVHTTP_REQ_CONNECT | EVHTTP_REQ_PATCH);
	evhttp_set_max_headers_size(srv->http, METRICS_SERVER_HEADERS_MAX);
	evhttp_set_max_body_size(srv->http, METRICS_SERVER_BODY_MAX);
	struct timeval tv = { (time_t)(set->timeout_ms / 1000),
			      (suseconds_t)(set->timeout_ms % 1000) * 1000 };
	evhttp_set_timeout_tv(srv->http, &tv);
	evhttp_set_bevcb(srv->http, metrics_server_bufferevent, NULL);
	evhttp_set_gencb(srv->http, metrics_server_reply, srv);
	return srv;
}

void metrics_server_free(struct metrics_server **sp)
{
	struct metrics_server *srv = *sp;
	if (srv == NULL)
		return;
	/* also closes its connections and the listener */
	evhttp_free(srv->http);
	event_free(srv->resume);
	free(srv);
	*sp = NULL;
}
