/* The etcd client: endpoints and failover, unary requests and their
 * outcomes, token authentication.
 *
 * A request's life: it waits for a token if authentication is on and
 * none is at hand, then makes attempts, each on a connection of its own
 * to the current endpoint, until one answers, the endpoints run out, or
 * its deadline (settings.request_timeout_msecs, failover included)
 * passes. An attempt's end is recorded from inside evhttp and handled
 * from the request's own event, which also delivers the result: the
 * owner's callback never runs inside libevent's HTTP code or inside a
 * call into this API.
 *
 * What an attempt's end means:
 * - never connected, or "no leader" (refused by the hasleader check
 *   before anything was done): not executed; try the next endpoint;
 * - connection lost, or a 5xx such as "request timed out" or "leader
 *   changed": perhaps executed; a read tries the next endpoint, a write
 *   ends UNKNOWN;
 * - 401 (the token expired): authenticate again and retry, once;
 * - another 4xx: FAILED, etcd's definite no;
 * - the deadline: UNKNOWN if the connection was up (the request may sit
 *   in a frozen member's socket and commit later), else FAILED.
 * When the endpoints run out the outcome is FAILED if no attempt may
 * have been executed, else UNKNOWN. */
#include "ring/etcd.h"

#include <arpa/inet.h>
#include <event2/dns.h>
#include <event2/event.h>
#include <stdlib.h>
#include <string.h>

#include "common/macros.h"
#include "common/xmalloc.h"
#include "ring/etcd_json.h"
#include "ring/etcd_private.h"

/* gRPC codes the client gives itself */
#define GRPC_DEADLINE_EXCEEDED 4
#define GRPC_NOT_FOUND 5
#define GRPC_UNAVAILABLE 14
#define GRPC_UNAUTHENTICATED 16

enum etcd_request_state {
	ETCD_REQUEST_WAITING,	/* for a token */
	ETCD_REQUEST_SENT,	/* an attempt in flight */
	ETCD_REQUEST_ANSWERED,	/* an attempt ended; the step handles it */
	ETCD_REQUEST_DONE,	/* the step delivers the result */
};

struct etcd_request {
	struct list_node node;		/* client->requests */
	struct list_node wait_node;	/* client->auth_waiters */
	struct etcd_client *client;
	enum etcd_call call;
	enum etcd_request_state state;
	char *body;
	etcd_result_cb *cb;
	void *ctx;
	struct event *deadline;
	struct event *step;
	struct etcd_http *http;
	unsigned int endpoint;		/* of the last attempt */
	uint64_t tried;			/* endpoints tried, one bit each */
	bool maybe_done;		/* an attempt may have been executed */
	bool expired;
	bool reauthenticated;
	bool in_callback;
	unsigned int token_generation;	/* of the token sent */
	/* the last attempt's end, kept for the step */
	enum etcd_http_end end;
	int status;
	struct sbuf answer;
	/* the outcome and why */
	struct etcd_reply reply;
	enum etcd_outcome outcome;
	int http_status;
	int grpc_code;
	char *error;
};

static void etcd_request_attempt(struct etcd_request *req);
static struct etcd_request *etcd_request_new(struct etcd_client *client,
					     enum etcd_call call, char *body,
					     etcd_result_cb *cb, void *ctx);

/* ---- endpoints ---- */

static void etcd_endpoint_clear(struct etcd_endpoint *ep)
{
	free(ep->url);
	free(ep->host);
	free(ep->authority);
}

/* "http[s]://host[:port][/]" with host a name, an IPv4 address or a
 * bracketed IPv6 address */
static int etcd_endpoint_parse(const char *url, struct etcd_endpoint *ep,
			       char **error_r)
{
	const char *p;
	memset(ep, 0, sizeof(*ep));
	if (strncmp(url, "http://", 7) == 0) {
		p = url + 7;
	} else if (strncmp(url, "https://", 8) == 0) {
		p = url + 8;
		ep->tls = true;
	} else {
		*error_r = xasprintf("etcd endpoint %s: not http:// or https://", url);
		return -1;
	}
	size_t auth_len = strcspn(p, "/");
	if (p[auth_len] != '\0' && strcmp(p + auth_len, "/") != 0) {
		*error_r = xasprintf("etcd endpoint %s: a path is not allowed", url);
		return -1;
	}
	const char *host = p, *host_end, *port = NULL;
	if (*p == '[') {
		host = p + 1;
		host_end = memchr(p, ']', auth_len);
		if (host_end == NULL) {
			*error_r = xasprintf("etcd endpoint %s: no ] after the address", url);
			return -1;
		}
		if (host_end + 1 < p + auth_len) {
			if (host_end[1] != ':') {
				*error_r = xasprintf("etcd endpoint %s: junk after ]", url);
				return -1;
			}
			port = host_end + 2;
		}
	} else {
		host_end = memchr(p, ':', auth_len);
		if (host_end != NULL)
			port = host_end + 1;
		else
			host_end = p + auth_len;
	}
	unsigned long port_num = 2379;
	if (port != NULL) {
		char *end;
		port_num = strtoul(port, &end, 10);
		if (end != p + auth_len || end == port || port_num == 0 ||
		    port_num > 65535) {
			*error_r = xasprintf("etcd endpoint %s: bad port", url);
			return -1;
		}
	}
	if (host_end == host) {
		*error_r = xasprintf("etcd endpoint %s: no host", url);
		return -1;
	}
	ep->url = xstrdup(url);
	ep->host = xstrndup(host, (size_t)(host_end - host));
	ep->authority = xstrndup(p, auth_len);
	ep->port = (uint16_t)port_num;
	return 0;
}

void etcd_client_endpoint_failed(struct etcd_client *client, unsigned int endpoint)
{
	/* several requests may fail on the same endpoint: move once */
	if (endpoint == client->current)
		client->current = (client->current + 1) % client->endpoint_count;
}

const char *etcd_client_get_endpoint(const struct etcd_client *client)
{
	return client->endpoints[client->current].url;
}

/* The first endpoint not tried yet, from the current one on; -1 if none. */
static int etcd_client_pick_endpoint(const struct etcd_client *client, uint64_t tried)
{
	for (unsigned int i = 0; i < client->endpoint_count; i++) {
		unsigned int e = (client->current + i) % client->endpoint_count;
		if ((tried & (UINT64_C(1) << e)) == 0)
			return (int)e;
	}
	return -1;
}

/* ---- the client ---- */

static void etcd_client_destroy(struct etcd_client *client);

struct etcd_client *etcd_client_new(struct event_base *base,
				    const struct etcd_settings *set,
				    char **error_r)
{
	if (set->endpoint_count == 0 || set->endpoint_count > ETCD_MAX_ENDPOINTS) {
		*error_r = xasprintf("etcd: between 1 and %d endpoints, not %u",
				     ETCD_MAX_ENDPOINTS, set->endpoint_count);
		return NULL;
	}
	if (set->user != NULL && set->user[0] != '\0' && set->password == NULL) {
		*error_r = xstrdup("etcd: a user needs a password");
		return NULL;
	}
	if (set->source_address != NULL) {
		struct in6_addr addr;
		if (inet_pton(AF_INET, set->source_address, &addr) != 1 &&
		    inet_pton(AF_INET6, set->source_address, &addr) != 1) {
			*error_r = xasprintf("etcd source address %s: not an IP address",
					     set->source_address);
			return NULL;
		}
	}
	struct etcd_client *client = xcalloc(1, sizeof(*client));
	client->base = base;
	client->endpoints = xcalloc(set->endpoint_count, sizeof(*client->endpoints));
	bool tls = false;
	for (unsigned int i = 0; i < set->endpoint_count; i++) {
		if (etcd_endpoint_parse(set->endpoints[i], &client->endpoints[i],
					error_r) < 0)
			goto fail;
		client->endpoint_count++;
		tls = tls || client->endpoints[i].tls;
	}
	if (tls) {
		client->ssl_ctx = etcd_http_ssl_ctx_new(set, error_r);
		if (client->ssl_ctx == NULL)
			goto fail;
	}
	client->request_timeout_msecs = set->request_timeout_msecs != 0 ?
		set->request_timeout_msecs : ETCD_DEFAULT_REQUEST_TIMEOUT_MSECS;
	client->watch_idle_msecs = set->watch_idle_timeout_msecs != 0 ?
		set->watch_idle_timeout_msecs : ETCD_DEFAULT_WATCH_IDLE_MSECS;
	client->max_message_size = set->max_message_size != 0 ?
		set->max_message_size : ETCD_DEFAULT_MAX_MESSAGE_SIZE;
	if (set->source_address != NULL)
		client->source_address = xstrdup(set->source_address);
	if (set->user != NULL && set->user[0] != '\0') {
		client->user = xstrdup(set->user);
		client->password = xstrdup(set->password);
	}
	list_init(&client->auth_waiters);
	list_init(&client->requests);
	list_init(&client->watches);
	list_init(&client->idle_http);
	list_init(&client->dead_http);
	if (etcd_http_init(client, error_r) < 0)
		goto fail;
	return client;
fail:
	etcd_client_destroy(client);
	return NULL;
}

static void etcd_request_free(struct etcd_request *req);

static void etcd_client_destroy(struct etcd_client *client)
{
	while (!list_is_empty(&client->requests)) {
		struct etcd_request *req = CONTAINER_OF(client->requests.head,
							struct etcd_request, node);
		etcd_request_free(req);
	}
	etcd_watches_free_all(client);
	if (client->reap_event != NULL)
		etcd_http_free_all(client);
	if (client->dns != NULL)
		evdns_base_free(client->dns, 0);
	if (client->ssl_ctx != NULL)
		SSL_CTX_free(client->ssl_ctx);
	for (unsigned int i = 0; i < client->endpoint_count; i++)
		etcd_endpoint_clear(&client->endpoints[i]);
	free(client->endpoints);
	free(client->source_address);
	free(client->frozen);
	free(client->user);
	xfree_secret(&client->password);
	xfree_secret(&client->token);
	free(client);
}

void etcd_client_free(struct etcd_client **clientp)
{
	struct etcd_client *client = *clientp;
	if (client == NULL)
		return;
	*clientp = NULL;
	if (client->callback_depth > 0) {
		/* inside one of its callbacks: when it returns */
		client->free_pending = true;
		return;
	}
	etcd_client_destroy(client);
}

bool etcd_client_leave_callback(struct etcd_client *client)
{
	client->callback_depth--;
	if (client->callback_depth == 0 && client->free_pending) {
		etcd_client_destroy(client);
		return true;
	}
	return false;
}

/* ---- authentication ---- */

bool etcd_client_needs_token(const struct etcd_client *client)
{
	return client->user != NULL && client->token == NULL;
}

void etcd_client_drop_token(struct etcd_client *client, unsigned int generation)
{
	if (generation == client->token_generation)
		xfree_secret(&client->token);
}

static void etcd_request_finish(struct etcd_request *req, enum etcd_outcome outcome,
				int http_status, int grpc_code, const char *error);

static void etcd_client_on_auth(const struct etcd_result *r, void *ctx)
{
	struct etcd_client *client = ctx;
	/* the token is in the request's reply, beside r */
	struct etcd_reply *reply = &client->auth_request->reply;
	client->auth_request = NULL;
	char *error = NULL;
	if (r->outcome == ETCD_OK) {
		xfree_secret(&client->token);
		client->token = reply->token;
		reply->token = NULL;
		client->token_generation++;
	} else {
		error = xstrdup(r->error);	/* "authenticate at <url>: ..." */
	}
	while (!list_is_empty(&client->auth_waiters)) {
		struct etcd_request *req = CONTAINER_OF(client->auth_waiters.head,
							struct etcd_request, wait_node);
		list_unlink(&client->auth_waiters, &req->wait_node);
		if (error == NULL) {
			etcd_request_attempt(req);
		} else {
			/* never sent with a token: not executed */
			etcd_request_finish(req, req->maybe_done ? ETCD_UNKNOWN : ETCD_FAILED,
					    r->http_status, r->grpc_code, error);
		}
	}
	/* definite: etcd refused the credentials (not merely unreachable) */
	etcd_watches_on_token(client, error == NULL,
			      r->outcome == ETCD_FAILED && r->http_status >= 400 &&
			      r->http_status < 500, error);
	free(error);
}

void etcd_client_request_token(struct etcd_client *client)
{
	if (client->auth_request != NULL)
		return;
	char *body = etcd_json_encode_authenticate(client->user, client->password);
	client->auth_request = etcd_request_new(client, ETCD_CALL_AUTHENTICATE, body,
						etcd_client_on_auth, client);
	etcd_request_attempt(client->auth_request);
}

/* ---- requests ---- */

static void etcd_request_on_step(evutil_socket_t fd, short what, void *arg);
static void etcd_request_on_deadline(evutil_socket_t fd, short what, void *arg);

/* The machine's one transition point. (This code never logs; the owner
 * sees the end, with why.) */
static void etcd_request_set_state(struct etcd_request *req,
				   enum etcd_request_state state)
{
	req->state = state;
}

static struct etcd_request *etcd_request_new(struct etcd_client *client,
					     enum etcd_call call, char *body,
					     etcd_result_cb *cb, void *ctx)
{
	struct etcd_request *req = xcalloc(1, sizeof(*req));
	req->client = client;
	req->call = call;
	req->body = body;
	req->cb = cb;
	req->ctx = ctx;
	req->endpoint = client->current;
	req->step = event_new(client->base, -1, 0, etcd_request_on_step, req);
	req->deadline = evtimer_new(client->base, etcd_request_on_deadline, req);
	if (req->step == NULL || req->deadline == NULL)
		abort();
	unsigned int ms = client->request_timeout_msecs;
	struct timeval tv = { ms / 1000, (ms % 1000) * 1000 };
	evtimer_add(req->deadline, &tv);
	list_append(&client->requests, &req->node);
	return req;
}

static void etcd_request_free(struct etcd_request *req)
{
	struct etcd_client *client = req->client;
	list_unlink(&client->requests, &req->node);
	if (req->state == ETCD_REQUEST_WAITING)
		list_unlink(&client->auth_waiters, &req->wait_node);
	if (client->auth_request == req)
		client->auth_request = NULL;
	etcd_http_discard(&req->http);
	event_free(req->step);
	event_free(req->deadline);
	if (req->call == ETCD_CALL_AUTHENTICATE)
		xfree_secret(&req->body);
	else
		free(req->body);
	sbuf_free(&req->answer);
	etcd_reply_clear(&req->reply);
	free(req->error);
	free(req);
}

/* Ends the request with this outcome; the step delivers it. */
static void etcd_request_finish(struct etcd_request *req, enum etcd_outcome outcome,
				int http_status, int grpc_code, const char *error)
{
	etcd_request_set_state(req, ETCD_REQUEST_DONE);
	req->outcome = outcome;
	req->http_status = http_status;
	req->grpc_code = grpc_code;
	free(req->error);
	req->error = error == NULL ? NULL : xstrdup(error);
	etcd_http_discard(&req->http);
	evtimer_del(req->deadline);
	event_active(req->step, 0, 0);
}

/* Remembers why the last attempt failed, for when nothing better comes. */
static void etcd_request_note(struct etcd_request *req, int http_status,
			      int grpc_code, const char *what)
{
	req->http_status = http_status;
	req->grpc_code = grpc_code;
	free(req->error);
	req->error = xasprintf("%s at %s: %s", etcd_calls[req->call].name,
			       req->client->endpoints[req->endpoint].url, what);
}

/* No endpoint left, or no time: the last failure is the answer. */
static void etcd_request_give_up(struct etcd_request *req)
{
	char *error = req->error;
	req->error = NULL;
	etcd_request_finish(req, req->maybe_done ? ETCD_UNKNOWN : ETCD_FAILED,
			    req->http_status,
			    req->grpc_code != 0 ? req->grpc_code : GRPC_UNAVAILABLE,
			    error != NULL ? error : "no endpoint left");
	free(error);
}

static void etcd_request_on_http_done(void *owner, const struct etcd_http_end_info *info)
{
	struct etcd_request *req = owner;
	req->end = info->end;
	req->status = info->status;
	sbuf_reset(&req->answer);
	if (info->end == ETCD_HTTP_REPLY) {
		sbuf_append(&req->answer, info->body, info->body_len);
		etcd_http_release(&req->http);
	} else {
		sbuf_appends(&req->answer, info->error);
		etcd_http_discard(&req->http);
	}
	etcd_request_set_state(req, ETCD_REQUEST_ANSWERED);
	event_active(req->step, 0, 0);
}

static void etcd_request_attempt(struct etcd_request *req)
{
	struct etcd_client *client = req->client;
	int endpoint = etcd_client_pick_endpoint(client, req->tried);
	if (endpoint < 0 || req->expired) {
		etcd_request_give_up(req);
		return;
	}
	if (!etcd_calls[req->call].no_auth && etcd_client_needs_token(client)) {
		etcd_request_set_state(req, ETCD_REQUEST_WAITING);
		list_append(&client->auth_waiters, &req->wait_node);
		etcd_client_request_token(client);
		return;
	}
	req->endpoint = (unsigned int)endpoint;
	req->tried |= UINT64_C(1) << endpoint;
	etcd_request_set_state(req, ETCD_REQUEST_SENT);
	req->token_generation = client->token_generation;
	req->http = etcd_http_get(client, req->endpoint);
	/* the answer may come before this returns (a refused connect) */
	/* a token goes with everything but authenticating, even where it
	 * is not waited for */
	etcd_http_send(req->http, etcd_calls[req->call].path, req->body,
		       req->call == ETCD_CALL_AUTHENTICATE ? NULL : client->token,
		       req, NULL, etcd_request_on_http_done);
}

static bool etcd_error_is_no_leader(int status, const char *message)
{
	return status == 503 && strstr(message, "no leader") != NULL;
}

/* etcd said no, or could not say yes. */
static void etcd_request_refused(struct etcd_request *req, int status, int grpc,
				 const char *message)
{
	struct etcd_client *client = req->client;
	etcd_request_note(req, status, grpc, message);
	if ((status == 401 || grpc == GRPC_UNAUTHENTICATED) && client->user != NULL &&
	    !req->reauthenticated) {
		/* the token expired: not executed; once more with a new one */
		req->reauthenticated = true;
		etcd_client_drop_token(client, req->token_generation);
		req->tried &= ~(UINT64_C(1) << req->endpoint);
		etcd_request_attempt(req);
		return;
	}
	if (etcd_error_is_no_leader(status, message)) {
		/* refused before anything was done: elsewhere */
		etcd_client_endpoint_failed(client, req->endpoint);
		etcd_request_attempt(req);
		return;
	}
	if (status >= 500) {
		/* "request timed out", "leader changed": maybe done */
		etcd_client_endpoint_failed(client, req->endpoint);
		req->maybe_done = true;
		if (etcd_calls[req->call].idempotent)
			etcd_request_attempt(req);
		else
			etcd_request_give_up(req);
		return;
	}
	char *error = req->error;
	req->error = NULL;
	etcd_request_finish(req, ETCD_FAILED, status, grpc, error);
	free(error);
}

static void etcd_request_handle_reply(struct etcd_request *req)
{
	const char *body = sbuf_data(&req->answer);
	size_t len = sbuf_len(&req->answer);
	if (req->status != 200) {
		int grpc, http;
		char *message;
		if (!etcd_json_decode_error(body, len, &grpc, &http, &message)) {
			/* not etcd's JSON (a proxy, "404 page not found") */
			size_t n = strcspn(body, "\r\n");
			message = xasprintf("HTTP %d %.*s", req->status,
					    (int)MIN(n, 200), body);
		}
		etcd_request_refused(req, req->status, grpc, message);
		free(message);
		return;
	}
	char *error = NULL;
	etcd_reply_clear(&req->reply);
	switch (etcd_json_decode_reply(req->call, body, len, &req->reply, &error)) {
	case ETCD_DECODE_OK:
		break;
	case ETCD_DECODE_STREAM_ERROR: {
		/* a stream's 200 header came before its error */
		char *message = xstrdup(req->reply.result.error);
		int status = req->reply.result.http_status;
		int grpc = req->reply.result.grpc_code;
		etcd_reply_clear(&req->reply);
		etcd_request_refused(req, status, grpc, message);
		free(message);
		return;
	}
	case ETCD_DECODE_ERROR:
		/* etcd answered 200, but what? */
		req->maybe_done = true;
		etcd_request_note(req, 200, 0, error);
		free(error);
		etcd_request_give_up(req);
		return;
	}
	if (req->call == ETCD_CALL_LEASE_KEEPALIVE && req->reply.result.lease.ttl <= 0) {
		/* etcd answers a gone lease with 200 and no TTL */
		etcd_request_note(req, 200, GRPC_NOT_FOUND, "lease not found");
		error = req->error;
		req->error = NULL;
		etcd_request_finish(req, ETCD_FAILED, 200, GRPC_NOT_FOUND, error);
		free(error);
		return;
	}
	etcd_request_finish(req, ETCD_OK, 200, 0, NULL);
}

static void etcd_request_handle_answer(struct etcd_request *req)
{
	struct etcd_client *client = req->client;
	switch (req->end) {
	case ETCD_HTTP_REPLY:
		etcd_request_handle_reply(req);
		return;
	case ETCD_HTTP_NOT_SENT:
		etcd_request_note(req, 0, GRPC_UNAVAILABLE, sbuf_cstr(&req->answer));
		etcd_client_endpoint_failed(client, req->endpoint);
		etcd_request_attempt(req);
		return;
	case ETCD_HTTP_LOST:
		etcd_request_note(req, 0, GRPC_UNAVAILABLE, sbuf_cstr(&req->answer));
		etcd_client_endpoint_failed(client, req->endpoint);
		req->maybe_done = true;
		if (etcd_calls[req->call].idempotent)
			etcd_request_attempt(req);
		else
			etcd_request_give_up(req);
		return;
	}
}

static void etcd_request_deliver(struct etcd_request *req)
{
	struct etcd_client *client = req->client;
	struct etcd_result *r = &req->reply.result;
	if (req->outcome != ETCD_OK) {
		/* nothing of a failed answer is kept */
		etcd_reply_clear(&req->reply);
		r->error = req->error;
	}
	r->outcome = req->outcome;
	r->endpoint = client->endpoints[req->endpoint].url;
	r->http_status = req->http_status;
	r->grpc_code = req->grpc_code;
	req->in_callback = true;
	client->callback_depth++;
	req->cb(r, req->ctx);
	r->error = NULL;	/* req->error's, freed below */
	etcd_request_free(req);
	(void)etcd_client_leave_callback(client);
}

static void etcd_request_on_step(evutil_socket_t fd, short what, void *arg)
{
	struct etcd_request *req = arg;
	(void)fd;
	(void)what;
	if (req->state == ETCD_REQUEST_ANSWERED)
		etcd_request_handle_answer(req);
	if (req->state == ETCD_REQUEST_DONE)
		etcd_request_deliver(req);
}

static void etcd_request_on_deadline(evutil_socket_t fd, short what, void *arg)
{
	struct etcd_request *req = arg;
	struct etcd_client *client = req->client;
	(void)fd;
	(void)what;
	req->expired = true;
	char what_text[64];
	snprintf(what_text, sizeof(what_text), "no answer within %u ms",
		 client->request_timeout_msecs);
	switch (req->state) {
	case ETCD_REQUEST_SENT:
		/* connected: it may sit in a frozen member's socket and
		 * commit later */
		if (etcd_http_is_up(req->http))
			req->maybe_done = true;
		etcd_request_note(req, 0, GRPC_DEADLINE_EXCEEDED, what_text);
		etcd_client_endpoint_failed(client, req->endpoint);
		etcd_request_give_up(req);
		return;
	case ETCD_REQUEST_WAITING:
		list_unlink(&client->auth_waiters, &req->wait_node);
		etcd_request_note(req, 0, GRPC_DEADLINE_EXCEEDED,
				  "no token within the deadline");
		etcd_request_give_up(req);
		return;
	case ETCD_REQUEST_ANSWERED:
	case ETCD_REQUEST_DONE:
		/* the step is due; with expired set it tries no further */
		return;
	}
}

void etcd_request_cancel(struct etcd_request **reqp)
{
	struct etcd_request *req = *reqp;
	if (req == NULL)
		return;
	*reqp = NULL;
	if (req->in_callback)
		return;	/* freed when its callback returns */
	if (req == req->client->auth_request)
		return;	/* internal; never handed out */
	etcd_request_free(req);
}

/* Takes body; the request starts at once. */
static struct etcd_request *etcd_request_start(struct etcd_client *client,
					       enum etcd_call call, char *body,
					       etcd_result_cb *cb, void *ctx)
{
	struct etcd_request *req = etcd_request_new(client, call, body, cb, ctx);
	if (client->frozen != NULL && call != ETCD_CALL_LEASE_KEEPALIVE)
		etcd_request_finish(req, ETCD_FAILED, 0, 14 /* unavailable */, client->frozen);
	else
		etcd_request_attempt(req);
	return req;
}

void etcd_client_set_frozen(struct etcd_client *client, const char *reason)
{
	free(client->frozen);
	client->frozen = reason != NULL ? xstrdup(reason) : NULL;
}

struct etcd_request *etcd_kv_range(struct etcd_client *client,
				   const struct etcd_range_params *params,
				   etcd_result_cb *cb, void *ctx)
{
	return etcd_request_start(client, ETCD_CALL_RANGE,
				  etcd_json_encode_range(params), cb, ctx);
}

struct etcd_request *etcd_kv_put(struct etcd_client *client,
				 const struct etcd_put_params *params,
				 etcd_result_cb *cb, void *ctx)
{
	return etcd_request_start(client, ETCD_CALL_PUT,
				  etcd_json_encode_put(params), cb, ctx);
}

struct etcd_request *etcd_kv_delete(struct etcd_client *client,
				    const struct etcd_delete_params *params,
				    etcd_result_cb *cb, void *ctx)
{
	return etcd_request_start(client, ETCD_CALL_DELETE,
				  etcd_json_encode_delete(params), cb, ctx);
}

struct etcd_request *etcd_kv_txn(struct etcd_client *client,
				 const struct etcd_txn_params *params,
				 etcd_result_cb *cb, void *ctx)
{
	return etcd_request_start(client, ETCD_CALL_TXN,
				  etcd_json_encode_txn(params), cb, ctx);
}

struct etcd_request *etcd_kv_compact(struct etcd_client *client, int64_t revision,
				     etcd_result_cb *cb, void *ctx)
{
	return etcd_request_start(client, ETCD_CALL_COMPACT,
				  etcd_json_encode_compact(revision), cb, ctx);
}

struct etcd_request *etcd_lease_grant(struct etcd_client *client, int64_t ttl,
				      int64_t id, etcd_result_cb *cb, void *ctx)
{
	return etcd_request_start(client, ETCD_CALL_LEASE_GRANT,
				  etcd_json_encode_lease_grant(ttl, id), cb, ctx);
}

struct etcd_request *etcd_lease_keepalive(struct etcd_client *client, int64_t id,
					  etcd_result_cb *cb, void *ctx)
{
	return etcd_request_start(client, ETCD_CALL_LEASE_KEEPALIVE,
				  etcd_json_encode_lease_id(id), cb, ctx);
}

struct etcd_request *etcd_lease_revoke(struct etcd_client *client, int64_t id,
				       etcd_result_cb *cb, void *ctx)
{
	return etcd_request_start(client, ETCD_CALL_LEASE_REVOKE,
				  etcd_json_encode_lease_id(id), cb, ctx);
}

struct etcd_request *etcd_lease_timetolive(struct etcd_client *client, int64_t id,
					   bool keys, etcd_result_cb *cb, void *ctx)
{
	return etcd_request_start(client, ETCD_CALL_LEASE_TIMETOLIVE,
				  etcd_json_encode_lease_timetolive(id, keys), cb, ctx);
}

struct etcd_request *etcd_maintenance_status(struct etcd_client *client,
					     etcd_result_cb *cb, void *ctx)
{
	return etcd_request_start(client, ETCD_CALL_STATUS,
				  etcd_json_encode_status(), cb, ctx);
}
