/* A watch: one POST /v3/watch stream on a connection of its own, resumed
 * on the next endpoint whenever it breaks, from the revision after the
 * last one delivered, so no event is lost or repeated.
 *
 * The message flow (reference/etcd-gateway.md §2, "Watch"): the create
 * request goes whole (etcd answers only once the request body has ended,
 * so a watch is canceled by closing its connection); then come
 * {"result":...} lines: "created", events, progress notifications (with
 * --experimental-watch-progress-notify-interval), "canceled" (with
 * compact_revision when the start revision was compacted); the stream
 * may end with an error object without a newline ("no leader" on an
 * isolated member, "transport is closing" when a member stops).
 *
 * A frozen or black-holed member keeps the stream open and silent, so an
 * idle timer, reset by every byte, declares a stream dead when nothing,
 * not even a progress notification, came for watch_idle_timeout_msecs.
 *
 * Bytes are only recorded from inside evhttp; messages are decoded and
 * delivered from the watch's own event. */
#include <event2/event.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/macros.h"
#include "common/xmalloc.h"
#include "ring/etcd.h"
#include "ring/etcd_json.h"
#include "ring/etcd_private.h"
#include "ring/etcd_stream.h"

/* after a round of endpoints whose streams all failed before "created",
 * wait this long before the next, doubling up to the maximum */
#define ETCD_WATCH_BACKOFF_MIN_MSECS 100
#define ETCD_WATCH_BACKOFF_MAX_MSECS 2000

const char *const etcd_watch_kind_names[] = {
	[ETCD_WATCH_CREATED] = "CREATED",
	[ETCD_WATCH_EVENTS] = "EVENTS",
	[ETCD_WATCH_PROGRESS] = "PROGRESS",
	[ETCD_WATCH_LOST] = "LOST",
	[ETCD_WATCH_COMPACTED] = "COMPACTED",
	[ETCD_WATCH_CANCELED] = "CANCELED",
};

enum etcd_watch_state {
	ETCD_WATCH_IDLE,	/* between streams; the retry timer runs */
	ETCD_WATCH_WAITING,	/* for a token */
	ETCD_WATCH_STREAMING,
	ETCD_WATCH_STOPPED,	/* compacted or canceled: final */
};

struct etcd_watch {
	struct list_node node;		/* client->watches */
	struct etcd_client *client;
	unsigned char *key;
	size_t key_len;
	unsigned char *range_end;	/* NULL: none */
	size_t range_end_len;
	bool prefix;
	/* the first revision not delivered yet; 0: "from now" until the
	 * first stream is created */
	int64_t next_revision;
	etcd_watch_cb *cb;
	void *ctx;
	enum etcd_watch_state state;

	/* the current stream */
	struct etcd_http *http;
	unsigned int endpoint;
	struct etcd_stream stream;
	int status;			/* its HTTP status, once known */
	bool ended;			/* its body ended, or it failed */
	char *end_error;		/* why, if it failed */
	bool overflow;			/* a line beyond max_message_size */
	bool created;
	unsigned int token_generation;	/* of the token it was sent with */

	unsigned int failures;		/* streams in a row never created */
	bool auth_retried;		/* a token was refused since then */
	char *auth_error;		/* authentication failed meanwhile */
	bool auth_definite;
	struct event *idle_timer;
	struct event *retry_timer;
	struct event *process_event;
	bool in_callback;
	bool free_pending;
};

static void etcd_watch_connect(struct etcd_watch *w);
static void etcd_watch_destroy(struct etcd_watch *w);

/* The machine's one transition point. (This code never logs; an owner
 * sees the transitions that matter as updates.) */
static void etcd_watch_set_state(struct etcd_watch *w, enum etcd_watch_state state)
{
	w->state = state;
}

/* Hands an update to the owner. false when the watch, or the whole
 * client, was freed meanwhile: the caller returns at once. */
static bool etcd_watch_emit(struct etcd_watch *w, struct etcd_watch_update *u)
{
	struct etcd_client *client = w->client;
	u->endpoint = client->endpoints[w->endpoint].url;
	w->in_callback = true;
	client->callback_depth++;
	w->cb(u, w->ctx);
	w->in_callback = false;
	if (w->free_pending) {
		etcd_watch_destroy(w);
		(void)etcd_client_leave_callback(client);
		return false;
	}
	return !etcd_client_leave_callback(client);
}

/* Ends the current stream, if any. */
static void etcd_watch_close_stream(struct etcd_watch *w)
{
	etcd_http_discard(&w->http);
	evtimer_del(w->idle_timer);
	etcd_stream_reset(&w->stream);
}

static void etcd_watch_schedule(struct etcd_watch *w, unsigned int msecs)
{
	struct timeval tv = { msecs / 1000, (msecs % 1000) * 1000 };
	evtimer_add(w->retry_timer, &tv);
}

/* The stream broke: tell the owner and resume. */
static bool etcd_watch_lost(struct etcd_watch *w, bool endpoint_failed,
			    const char *reason)
{
	struct etcd_client *client = w->client;
	etcd_watch_close_stream(w);
	if (endpoint_failed)
		etcd_client_endpoint_failed(client, w->endpoint);
	if (!w->created)
		w->failures++;
	/* each endpoint at once, then a pause between rounds */
	unsigned int delay = 0;
	if (w->failures > client->endpoint_count) {
		unsigned int shift = MIN(w->failures - client->endpoint_count - 1, 5u);
		delay = MIN(ETCD_WATCH_BACKOFF_MIN_MSECS << shift,
			    ETCD_WATCH_BACKOFF_MAX_MSECS);
	}
	etcd_watch_set_state(w, ETCD_WATCH_IDLE);
	etcd_watch_schedule(w, delay);
	struct etcd_watch_update u = { .kind = ETCD_WATCH_LOST, .reason = reason };
	return etcd_watch_emit(w, &u);
}

/* Compacted or canceled: final. */
static bool etcd_watch_stop(struct etcd_watch *w, enum etcd_watch_kind kind,
			    int64_t compact_revision, const char *reason)
{
	etcd_watch_close_stream(w);
	evtimer_del(w->retry_timer);
	etcd_watch_set_state(w, ETCD_WATCH_STOPPED);
	struct etcd_watch_update u = { .kind = kind, .reason = reason,
				       .compact_revision = compact_revision };
	(void)etcd_watch_emit(w, &u);
	return false;
}

/* The token was refused: once per healthy stream, get a new one. */
static bool etcd_watch_retry_token(struct etcd_watch *w)
{
	if (w->client->user == NULL || w->auth_retried)
		return false;
	w->auth_retried = true;
	etcd_client_drop_token(w->client, w->token_generation);
	etcd_watch_close_stream(w);
	etcd_watch_set_state(w, ETCD_WATCH_IDLE);
	etcd_watch_schedule(w, 0);
	return true;
}

static bool etcd_watch_reason_is_auth(const char *reason)
{
	return strstr(reason, "user name is empty") != NULL ||
		strstr(reason, "invalid auth token") != NULL;
}

/* One message of the stream. false: stop reading this stream. */
static bool etcd_watch_handle(struct etcd_watch *w, const struct etcd_watch_message *m)
{
	struct etcd_watch_update u = { .revision = m->header.revision };
	if (m->is_error) {
		char *reason = xasprintf("etcd: %s", m->message);
		(void)etcd_watch_lost(w, true, reason);
		free(reason);
		return false;
	}
	if (m->canceled) {
		if (m->compact_revision > 0)
			return etcd_watch_stop(w, ETCD_WATCH_COMPACTED,
					       m->compact_revision, NULL);
		const char *reason = m->cancel_reason != NULL ?
			m->cancel_reason : "canceled by etcd";
		if (etcd_watch_reason_is_auth(reason) && etcd_watch_retry_token(w))
			return false;
		return etcd_watch_stop(w, ETCD_WATCH_CANCELED, 0, reason);
	}
	if (m->created) {
		w->created = true;
		w->failures = 0;
		w->auth_retried = false;
		if (w->next_revision == 0)
			w->next_revision = m->header.revision + 1;
		u.kind = ETCD_WATCH_CREATED;
		return etcd_watch_emit(w, &u);
	}
	if (m->event_count > 0) {
		/* a resumed stream may replay what was delivered: skip it */
		size_t skip = 0;
		while (skip < m->event_count &&
		       m->events[skip].kv.mod_revision < w->next_revision)
			skip++;
		if (skip == m->event_count)
			return true;
		w->next_revision = m->events[m->event_count - 1].kv.mod_revision + 1;
		u.kind = ETCD_WATCH_EVENTS;
		u.events = m->events + skip;
		u.event_count = m->event_count - skip;
		return etcd_watch_emit(w, &u);
	}
	/* a progress notification: etcd sends them only to watchers that
	 * have every event up to the revision */
	if (m->header.revision >= w->next_revision)
		w->next_revision = m->header.revision + 1;
	u.kind = ETCD_WATCH_PROGRESS;
	return etcd_watch_emit(w, &u);
}

/* The stream was answered with an HTTP error status. */
static void etcd_watch_handle_http_error(struct etcd_watch *w)
{
	const char *body = "";
	size_t len = 0;
	if (etcd_stream_next(&w->stream, true, &body, &len) != PARSE_OK)
		len = 0;
	int grpc, http;
	char *message;
	if (!etcd_json_decode_error(body, len, &grpc, &http, &message))
		message = xasprintf("HTTP %d", w->status);
	if (w->status == 401 && etcd_watch_retry_token(w)) {
		free(message);
		return;
	}
	char *reason = xasprintf("HTTP %d: %s", w->status, message);
	free(message);
	if (w->status >= 500)
		(void)etcd_watch_lost(w, true, reason);
	else
		(void)etcd_watch_stop(w, ETCD_WATCH_CANCELED, 0, reason);
	free(reason);
}

static void etcd_watch_process(struct etcd_watch *w)
{
	if (w->state == ETCD_WATCH_WAITING && w->auth_error != NULL) {
		char *error = w->auth_error;
		w->auth_error = NULL;
		if (w->auth_definite)
			(void)etcd_watch_stop(w, ETCD_WATCH_CANCELED, 0, error);
		else
			(void)etcd_watch_lost(w, false, error);
		free(error);
		return;
	}
	if (w->state != ETCD_WATCH_STREAMING)
		return;
	if (w->status != 0 && w->status != 200) {
		if (w->ended)
			etcd_watch_handle_http_error(w);
		return;
	}
	if (w->overflow) {
		char reason[96];
		snprintf(reason, sizeof(reason), "a watch message exceeds %zu bytes",
			 w->client->max_message_size);
		(void)etcd_watch_stop(w, ETCD_WATCH_CANCELED, 0, reason);
		return;
	}
	const char *line;
	size_t len;
	while (etcd_stream_next(&w->stream, w->ended, &line, &len) == PARSE_OK) {
		struct etcd_watch_message m;
		char *error = NULL;
		if (etcd_json_decode_watch(line, len, &m, &error) == ETCD_DECODE_ERROR) {
			char *reason = xasprintf("bad message: %s", error);
			free(error);
			(void)etcd_watch_lost(w, true, reason);
			free(reason);
			return;
		}
		bool go_on = etcd_watch_handle(w, &m);
		etcd_watch_message_clear(&m);
		if (!go_on)
			return;
	}
	if (w->ended) {
		(void)etcd_watch_lost(w, true, w->end_error != NULL ?
				      w->end_error : "the stream ended");
	}
}

static void etcd_watch_on_chunk(void *owner, int status, const char *data, size_t len)
{
	struct etcd_watch *w = owner;
	w->status = status;
	if (etcd_stream_feed(&w->stream, data, len) < 0)
		w->overflow = true;
	/* any byte shows the stream is alive */
	struct timeval tv = { w->client->watch_idle_msecs / 1000,
			      (w->client->watch_idle_msecs % 1000) * 1000 };
	evtimer_add(w->idle_timer, &tv);
	event_active(w->process_event, 0, 0);
}

static void etcd_watch_on_done(void *owner, const struct etcd_http_end_info *info)
{
	struct etcd_watch *w = owner;
	if (info->end == ETCD_HTTP_REPLY) {
		w->status = info->status;
		if (info->body_len > 0 &&
		    etcd_stream_feed(&w->stream, info->body, info->body_len) < 0)
			w->overflow = true;
	} else {
		free(w->end_error);
		w->end_error = xstrdup(info->error);
	}
	w->ended = true;
	/* a stream's connection is never reused */
	etcd_http_discard(&w->http);
	event_active(w->process_event, 0, 0);
}

static void etcd_watch_on_process(evutil_socket_t fd, short what, void *arg)
{
	(void)fd;
	(void)what;
	etcd_watch_process(arg);
}

static void etcd_watch_on_idle(evutil_socket_t fd, short what, void *arg)
{
	struct etcd_watch *w = arg;
	(void)fd;
	(void)what;
	if (w->state != ETCD_WATCH_STREAMING)
		return;
	char reason[64];
	snprintf(reason, sizeof(reason), "nothing received for %u ms",
		 w->client->watch_idle_msecs);
	(void)etcd_watch_lost(w, true, reason);
}

static void etcd_watch_on_retry(evutil_socket_t fd, short what, void *arg)
{
	struct etcd_watch *w = arg;
	(void)fd;
	(void)what;
	if (w->state == ETCD_WATCH_IDLE)
		etcd_watch_connect(w);
}

static void etcd_watch_connect(struct etcd_watch *w)
{
	struct etcd_client *client = w->client;
	if (etcd_client_needs_token(client)) {
		etcd_watch_set_state(w, ETCD_WATCH_WAITING);
		etcd_client_request_token(client);
		return;
	}
	etcd_watch_close_stream(w);
	w->endpoint = client->current;
	w->status = 0;
	w->ended = false;
	w->overflow = false;
	w->created = false;
	free(w->end_error);
	w->end_error = NULL;
	w->token_generation = client->token_generation;
	struct etcd_watch_params p = {
		.key = w->key, .key_len = w->key_len,
		.range_end = w->range_end, .range_end_len = w->range_end_len,
		.prefix = w->prefix,
	};
	char *body = etcd_json_encode_watch(&p, w->next_revision);
	etcd_watch_set_state(w, ETCD_WATCH_STREAMING);
	/* the idle timer also bounds connecting and etcd's first answer */
	struct timeval tv = { client->watch_idle_msecs / 1000,
			      (client->watch_idle_msecs % 1000) * 1000 };
	evtimer_add(w->idle_timer, &tv);
	w->http = etcd_http_get_stream(client, w->endpoint);
	etcd_http_send(w->http, "/v3/watch", body, client->token, w,
		       etcd_watch_on_chunk, etcd_watch_on_done);
	free(body);
}

/* keys may be empty (and then NULL) */
static unsigned char *etcd_watch_copy(const void *data, size_t len)
{
	unsigned char *r = xmalloc(len + 1);
	if (len > 0)
		memcpy(r, data, len);
	r[len] = '\0';
	return r;
}

struct etcd_watch *etcd_watch_start(struct etcd_client *client,
				    const struct etcd_watch_params *params,
				    etcd_watch_cb *cb, void *ctx)
{
	struct etcd_watch *w = xcalloc(1, sizeof(*w));
	w->client = client;
	w->key = etcd_watch_copy(params->key, params->key_len);
	w->key_len = params->key_len;
	if (params->range_end != NULL) {
		w->range_end = etcd_watch_copy(params->range_end, params->range_end_len);
		w->range_end_len = params->range_end_len;
	}
	w->prefix = params->prefix;
	w->next_revision = params->start_revision;
	w->cb = cb;
	w->ctx = ctx;
	etcd_stream_init(&w->stream, client->max_message_size);
	w->idle_timer = evtimer_new(client->base, etcd_watch_on_idle, w);
	w->retry_timer = evtimer_new(client->base, etcd_watch_on_retry, w);
	w->process_event = event_new(client->base, -1, 0, etcd_watch_on_process, w);
	if (w->idle_timer == NULL || w->retry_timer == NULL || w->process_event == NULL)
		abort();
	list_append(&client->watches, &w->node);
	etcd_watch_connect(w);
	return w;
}

int64_t etcd_watch_get_revision(const struct etcd_watch *w)
{
	return w->next_revision > 0 ? w->next_revision - 1 : 0;
}

static void etcd_watch_destroy(struct etcd_watch *w)
{
	list_unlink(&w->client->watches, &w->node);
	etcd_http_discard(&w->http);
	event_free(w->idle_timer);
	event_free(w->retry_timer);
	event_free(w->process_event);
	etcd_stream_free(&w->stream);
	free(w->key);
	free(w->range_end);
	free(w->end_error);
	free(w->auth_error);
	free(w);
}

void etcd_watch_free(struct etcd_watch **wp)
{
	struct etcd_watch *w = *wp;
	if (w == NULL)
		return;
	*wp = NULL;
	if (w->in_callback) {
		w->free_pending = true;
		return;
	}
	etcd_watch_destroy(w);
}

void etcd_watches_on_token(struct etcd_client *client, bool ok, bool definite,
			   const char *error)
{
	for (struct list_node *n = client->watches.head; n != NULL; n = n->next) {
		struct etcd_watch *w = CONTAINER_OF(n, struct etcd_watch, node);
		if (w->state != ETCD_WATCH_WAITING)
			continue;
		if (ok) {
			etcd_watch_connect(w);
		} else {
			/* told from the watch's own event, not from inside
			 * the authentication's callback */
			free(w->auth_error);
			w->auth_error = xstrdup(error);
			w->auth_definite = definite;
			event_active(w->process_event, 0, 0);
		}
	}
}

void etcd_watches_free_all(struct etcd_client *client)
{
	while (!list_is_empty(&client->watches))
		etcd_watch_destroy(CONTAINER_OF(client->watches.head,
						struct etcd_watch, node));
}
