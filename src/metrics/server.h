/* The metrics endpoint: GET /metrics over HTTP/1.x on one TCP address,
 * served from loftd's event loop by libevent's evhttp. Nothing blocks:
 * a scrape renders the exposition into memory at once (the caller's
 * render callback) and evhttp writes it out as the client reads.
 *
 * Bounds: a connection is served one request at a time (evhttp reads the
 * next one only once the answer is written), its unread input is capped
 * (METRICS_SERVER_INPUT_MAX: a client that pipelines without reading
 * stops being read), so it holds at most one answer; request headers
 * (8 KiB) and bodies (1 KiB) are limited, and a connection idle, or not
 * reading its answer, for the timeout is closed. Other paths get 404,
 * other methods than GET and HEAD 405. */
#ifndef LOFT_METRICS_SERVER_H
#define LOFT_METRICS_SERVER_H

#include <stdint.h>

#include "common/sbuf.h"

struct event_base;
struct metrics_server;

/* Appends the whole exposition to out. */
typedef void metrics_render_cb(void *ctx, struct sbuf *out);

struct metrics_server_settings {
	const char *address;	/* an IP address */
	uint16_t port;
	uint64_t timeout_ms;	/* a connection idle this long is closed */
	metrics_render_cb *render;
	void *ctx;
};

/* Binds and listens at once (NULL with the reason when it cannot). */
struct metrics_server *metrics_server_new(struct event_base *base,
					  const struct metrics_server_settings *set,
					  char **error_r);
void metrics_server_free(struct metrics_server **server);

#endif
