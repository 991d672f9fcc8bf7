/* The ring's life on one node (ring.h, doc/ring.md):
 *
 *   SETTINGS  create-if-absent P/settings; else they must equal this
 *             node's, or the node cannot join
 *   LEASE     grant this node's lease
 *   REGISTER  P/members/<name> on the lease; the first node of a ring
 *             also seeds P/hosts with its own host list
 *   LOAD      one range read of P/ at one revision, then a watch from
 *             the next; the node serves from here on (ready)
 *
 * Every step that etcd does not answer is retried after a second, so a
 * node started before etcd waits for it. The lease is renewed every
 * lease_ttl/3 (ring_lease.c); a node that cannot renew it in time fences
 * itself and, once etcd answers again, goes back through LEASE (when its
 * lease is gone) or LOAD. */
#include "ring/ring.h"

#include <event2/event.h>
#include <jansson.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/clock.h"
#include "common/xmalloc.h"
#include "director/director.h"
#include "ring/etcd.h"
#include "ring/ring_peer.h"
#include "ring/ring_private.h"

#define RING_RETRY_MS 1000
/* consecutive failures double the wait up to this: a join whose full read
 * etcd cannot answer in time must not pile ever more reads on it (each
 * abandoned one still costs etcd its whole work) */
#define RING_RETRY_MAX_MS 8000
/* The full read of the ring's state goes through a client of its own: a
 * large state takes etcd seconds to send (bench-ring: 1.2 s for 100,000
 * pins, 24 s and 197 MB for 1,000,000), longer than any other request may
 * take, and on the same connection it would hold up the lease renewals
 * behind it. */
#define RING_LOAD_TIMEOUT_MS 60000
#define RING_LOAD_MAX_MESSAGE (512u * 1024 * 1024)

static const char *const ring_phase_names[] = {
	[RING_SETTINGS] = "checking settings",
	[RING_LEASE] = "taking a lease",
	[RING_REGISTER] = "registering",
	[RING_LOAD] = "loading the ring's state",
	[RING_SERVING] = "serving",
	[RING_REMOVED] = "removed by an admin",
	[RING_STOPPING] = "leaving",
};

void ring_report(struct ring *r, enum log_level level, const char *fmt, ...)
{
	char text[512];
	va_list ap;
	if (r->cb.report == NULL)
		return;
	va_start(ap, fmt);
	vsnprintf(text, sizeof(text), fmt, ap);
	va_end(ap);
	r->cb.report(r->ctx, level, text);
}

void ring_ignore_result(const struct etcd_result *res, void *ctx)
{
	(void)res;
	(void)ctx;
}

char *ring_key(const struct ring *r, const char *fmt, ...)
{
	char rest[512];
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(rest, sizeof(rest), fmt, ap);
	va_end(ap);
	return xasprintf("%s%s", r->prefix, rest);
}

void ring_ops_put(struct ring_ops *o, char *key, char *value, int64_t lease)
{
	o->ops = xgrow(o->ops, &o->cap, o->count + 1, sizeof(*o->ops));
	o->owned = xgrow(o->owned, &o->owned_cap, o->owned_count + 2, sizeof(*o->owned));
	o->owned[o->owned_count++] = key;
	o->owned[o->owned_count++] = value;
	o->ops[o->count++] = (struct etcd_op){ .type = ETCD_OP_PUT, .u.put = {
		.key = key, .key_len = strlen(key), .value = value,
		.value_len = strlen(value), .lease = lease } };
}

void ring_ops_free(struct ring_ops *o)
{
	for (size_t i = 0; i < o->owned_count; i++)
		free(o->owned[i]);
	free(o->owned);
	free(o->ops);
	memset(o, 0, sizeof(*o));
}

/* A step etcd did not answer: say so (once per kind of trouble), try
 * again in a second, then after twice as long each time. */
static void ring_retry(struct ring *r, const struct etcd_result *res)
{
	if (r->retry_logged != (int)r->phase) {
		ring_report(r, LOG_LEVEL_WARNING, "ring: etcd %s: %s while %s; retrying",
			    res->endpoint != NULL ? res->endpoint : "-",
			    res->error != NULL ? res->error : "no answer",
			    ring_phase_names[r->phase]);
		r->retry_logged = (int)r->phase;
	}
	uint64_t ms = (uint64_t)RING_RETRY_MS << (r->retries < 3 ? r->retries : 3);
	if (ms > RING_RETRY_MAX_MS)
		ms = RING_RETRY_MAX_MS;
	r->retries++;
	struct timeval tv = { (time_t)(ms / 1000), (suseconds_t)(ms % 1000) * 1000 };
	evtimer_add(r->retry_timer, &tv);
}

/* ---- SETTINGS ------------------------------------------------------- */

static const char *const ring_setting_names[] = {
	"director.username_hash", "auth.username_format", "director.user_expire",
};

/* The settings every node must share, as the JSON object P/settings. */
static char *ring_settings_json(const struct config *cfg)
{
	json_t *o = json_pack("{s:s, s:s, s:I}",
			      ring_setting_names[0], cfg->director.username_hash,
			      ring_setting_names[1], cfg->auth.username_format,
			      ring_setting_names[2], (json_int_t)cfg->director.user_expire_ms);
	char *text = json_dumps(o, JSON_COMPACT | JSON_SORT_KEYS);
	json_decref(o);
	return text;
}

/* NULL when the ring's settings equal this node's; else why not. */
static char *ring_settings_differ(const struct ring *r, const unsigned char *value,
				  size_t len)
{
	json_error_t jerr;
	json_t *theirs = json_loadb((const char *)value, len, 0, &jerr);
	json_t *mine = json_loads(r->settings, 0, &jerr);
	char *error = NULL;
	if (theirs == NULL || !json_is_object(theirs)) {
		error = xasprintf("the ring's %ssettings are not JSON: %s", r->prefix, jerr.text);
		goto out;
	}
	for (size_t i = 0; i < ARRAY_SIZE(ring_setting_names) && error == NULL; i++) {
		const char *name = ring_setting_names[i];
		json_t *a = json_object_get(theirs, name), *b = json_object_get(mine, name);
		if (a != NULL && json_equal(a, b))
			continue;
		char *ta = a != NULL ? json_dumps(a, JSON_ENCODE_ANY) : xstrdup("(none)");
		char *tb = json_dumps(b, JSON_ENCODE_ANY);
		error = xasprintf("the ring's %s is %s, this node's is %s: every node of a "
				  "ring must route alike (set it the same, or use another "
				  "ring.prefix)", name, ta, tb);
		free(ta);
		free(tb);
	}
out:
	json_decref(theirs);
	json_decref(mine);
	return error;
}

static void ring_register(struct ring *r);
static void ring_lease_grant_start(struct ring *r);

static void ring_settings_done(const struct etcd_result *res, void *ctx)
{
	struct ring *r = ctx;
	r->req = NULL;
	if (res->outcome != ETCD_OK) {
		ring_retry(r, res);
		return;
	}
	if (!res->succeeded) {
		const struct etcd_op_result *op =
			res->response_count > 0 ? &res->responses[0] : NULL;
		char *error = op == NULL || op->kv_count == 0 ?
			xstrdup("the ring's settings vanished while read") :
			ring_settings_differ(r, op->kvs[0].value, op->kvs[0].value_len);
		if (error != NULL) {
			r->cb.failed(r->ctx, error);
			free(error);
			return;
		}
	}
	ring_lease_grant_start(r);
}

static void ring_settings_start(struct ring *r)
{
	char *key = ring_key(r, "settings");
	struct etcd_compare cmp = {
		.key = key, .key_len = strlen(key),
		.target = ETCD_TARGET_CREATE, .result = ETCD_CMP_EQUAL, .number = 0,
	};
	struct etcd_op put = { .type = ETCD_OP_PUT, .u.put = {
		.key = key, .key_len = strlen(key),
		.value = r->settings, .value_len = strlen(r->settings) } };
	struct etcd_op get = { .type = ETCD_OP_RANGE, .u.range = {
		.key = key, .key_len = strlen(key) } };
	struct etcd_txn_params txn = {
		.compares = &cmp, .compare_count = 1,
		.success = &put, .success_count = 1,
		.failure = &get, .failure_count = 1,
	};
	r->phase = RING_SETTINGS;
	r->req = etcd_kv_txn(r->etcd, &txn, ring_settings_done, r);
	free(key);
}

/* ---- LEASE, REGISTER ----------------------------------------------------- */

static void ring_lease_granted(const struct etcd_result *res, void *ctx)
{
	struct ring *r = ctx;
	r->req = NULL;
	if (res->outcome != ETCD_OK || res->lease.id == 0) {
		ring_retry(r, res);
		return;
	}
	ring_lease_set(r, res->lease.id, r->lease_sent_ms, res->lease.ttl);
	ring_register(r);
}

/* An upgrade's lease: renewed at once, so that this loftd and the one it
 * replaces hold the same membership; if etcd let it go meanwhile, a new
 * one is taken as on any start. */
static void ring_lease_adopted(const struct etcd_result *res, void *ctx)
{
	struct ring *r = ctx;
	r->req = NULL;
	if (res->outcome == ETCD_OK && res->lease.ttl > 0) {
		ring_lease_set(r, r->adopt_lease, r->lease_sent_ms, res->lease.ttl);
		ring_report(r, LOG_LEVEL_INFO, "ring: took over lease %llx from the loftd "
			    "this one replaces", (unsigned long long)r->adopt_lease);
		r->adopt_lease = 0;
		ring_register(r);
		return;
	}
	if (res->outcome == ETCD_OK || (res->outcome == ETCD_FAILED &&
					 res->grpc_code == RING_GRPC_NOT_FOUND)) {
		ring_report(r, LOG_LEVEL_WARNING, "ring: the lease of the loftd this one "
			    "replaces is gone: taking a new one");
		r->adopt_lease = 0;
		ring_lease_grant_start(r);
		return;
	}
	ring_retry(r, res);
}

static void ring_lease_grant_start(struct ring *r)
{
	r->phase = RING_LEASE;
	if (r->adopt_lease != 0) {
		r->lease_sent_ms = clock_monotonic_ms();
		r->req = etcd_lease_keepalive(r->etcd, r->adopt_lease, ring_lease_adopted, r);
		return;
	}
	r->lease_sent_ms = clock_monotonic_ms();
	r->req = etcd_lease_grant(r->etcd, (int64_t)(r->ttl_ms / 1000), 0,
				  ring_lease_granted, r);
}

static void ring_load_start(struct ring *r);

static void ring_registered(const struct etcd_result *res, void *ctx)
{
	struct ring *r = ctx;
	r->req = NULL;
	if (res->outcome != ETCD_OK) {
		/* a put may be repeated: it names this node's own key */
		ring_retry(r, res);
		return;
	}
	ring_load_start(r);
}

/* The member's key, and P/hosts from this node's list if the ring has
 * none yet (create-if-absent: the first node's list is the ring's; every
 * later node takes the ring's when it loads). */
static void ring_register(struct ring *r)
{
	json_t *o = json_pack("{s:s, s:i, s:I}", "address", r->address, "port",
			      (int)r->port, "started", (json_int_t)r->started);
	struct ring_ops member = { 0 }, seed = { 0 };
	ring_ops_put(&member, ring_key(r, "members/%s", r->name),
		     json_dumps(o, JSON_COMPACT | JSON_SORT_KEYS), r->lease);
	json_decref(o);
	if (!r->ever_served && !r->inherited) {
		/* the process's first join declares this director (a removed
		 * node's later joins must not: ring_directors.c; nor a
		 * successor's, whose predecessor joined) */
		ring_ops_put(&member, ring_key(r, "directors/%s:%u", r->address, r->port),
			     ring_directors_own_value(r), 0);
	}
	struct ring_hosts own;
	ring_hosts_from_director(&own, director_hosts(r->director));
	for (size_t i = 0; i < member.count; i++)
		ring_ops_put(&seed, xstrdup(member.ops[i].u.put.key),
			     xstrdup(member.ops[i].u.put.value), member.ops[i].u.put.lease);
	ring_ops_put(&seed, ring_key(r, "hosts"), ring_hosts_to_json(&own), 0);
	ring_hosts_free(&own);
	struct etcd_compare cmp = {
		.key = seed.ops[seed.count - 1].u.put.key,
		.key_len = seed.ops[seed.count - 1].u.put.key_len,
		.target = ETCD_TARGET_CREATE, .result = ETCD_CMP_EQUAL, .number = 0,
	};
	struct etcd_txn_params txn = {
		.compares = &cmp, .compare_count = 1,
		.success = seed.ops, .success_count = seed.count,
		.failure = member.ops, .failure_count = member.count,
	};
	r->phase = RING_REGISTER;
	r->req = etcd_kv_txn(r->etcd, &txn, ring_registered, r);
	ring_ops_free(&member);
	ring_ops_free(&seed);
}

/* ---- LOAD and the watch ----------------------------------------------------- */

static void ring_watch_start(struct ring *r, int64_t from);

static void ring_watch_update(const struct etcd_watch_update *u, void *ctx)
{
	struct ring *r = ctx;
	switch (u->kind) {
	case ETCD_WATCH_CREATED:
	case ETCD_WATCH_LOST:
		return;
	case ETCD_WATCH_PROGRESS:
		/* every event up to it has come: pin requests waiting for
		 * this node's view to reach a revision may end */
		r->revision = u->revision > r->revision ? u->revision : r->revision;
		ring_pins_settle(r);
		return;
	case ETCD_WATCH_EVENTS:
		for (size_t i = 0; i < u->event_count; i++) {
			const struct etcd_event *e = &u->events[i];
			ring_state_apply(r, &e->kv, e->type == ETCD_EVENT_DELETE);
			if (e->kv.mod_revision > r->revision)
				r->revision = e->kv.mod_revision;
		}
		ring_change_settle(r);
		return;
	case ETCD_WATCH_COMPACTED:
	case ETCD_WATCH_CANCELED:
		/* never guess what was missed: read everything again */
		ring_report(r, LOG_LEVEL_WARNING, "ring: the watch ended (%s): reading "
			    "the ring's state again", etcd_watch_kind_names[u->kind]);
		etcd_watch_free(&r->watch);
		ring_load_start(r);
		return;
	}
}

static void ring_watch_start(struct ring *r, int64_t from)
{
	struct etcd_watch_params p = {
		.key = r->prefix, .key_len = strlen(r->prefix), .prefix = true,
		.start_revision = from,
	};
	etcd_watch_free(&r->watch);
	r->watch = etcd_watch_start(r->etcd, &p, ring_watch_update, r);
}

static void ring_loaded(const struct etcd_result *res, void *ctx)
{
	struct ring *r = ctx;
	r->req = NULL;
	if (res->outcome != ETCD_OK) {
		ring_retry(r, res);
		return;
	}
	r->revision = res->header.revision;	/* (ring_pins_load_end's) */
	/* one range of everything, or a txn of the ranges around the pins
	 * and the first pins: all of them, or too many to wait for */
	bool light = res->response_count == 3 && res->responses[2].more;
	if (res->response_count == 3)
		ring_state_load(r, res->responses, light ? 2 : 3, !light);
	else
		ring_state_load(r, &res->op, 1, true);
	/* a full read has every pin; else logins ask until they are read */
	ring_pins_partial(r, light);
	ring_failsafe_loaded(r);
	r->applied_sent = 0;
	ring_watch_start(r, r->revision + 1);
	r->retry_logged = -1;
	r->retries = 0;
	bool first = !r->ever_served;
	r->phase = RING_SERVING;
	r->ever_served = true;
	ring_report(r, LOG_LEVEL_INFO, "ring: joined as %s at revision %lld (%zu members)",
		    r->name, (long long)r->revision, r->members_count);
	if (first)
		r->cb.ready(r->ctx);
	ring_directors_loaded(r);
	if (r->phase == RING_REMOVED)
		return;
	if (light)
		ring_pins_loader_start(r);
	ring_lease_check(r);
	ring_change_settle(r);
}

/* Pins a node that knows none reads with the rest of the state; beyond
 * them it reads them while it serves. */
#define RING_PINS_AT_ONCE 10000

/* The whole state in one read; or, when this node knows no pin yet (it
 * joins, or forgot them), everything but the pins and the first
 * RING_PINS_AT_ONCE of them: if there are more, it serves at once and
 * reads them afterwards (ring_pins_load.c): a ring of a million pins
 * takes etcd tens of seconds to send. */
static void ring_load_start(struct ring *r)
{
	r->phase = RING_LOAD;
	ring_pins_loader_free(r);
	if (hmap_count(&r->pins) > 0) {
		struct etcd_range_params p = {
			.key = r->prefix, .key_len = strlen(r->prefix), .prefix = true,
		};
		r->req = etcd_kv_range(r->etcd_load, &p, ring_loaded, r);
		return;
	}
	char *pins = ring_key(r, "pins/"), *after = ring_key(r, "pins0");
	struct etcd_op ops[3] = {
		{ .type = ETCD_OP_RANGE, .u.range = { .key = r->prefix,
		  .key_len = strlen(r->prefix), .range_end = pins, .range_end_len = strlen(pins) } },
		{ .type = ETCD_OP_RANGE, .u.range = { .key = after, .key_len = strlen(after) } },
		{ .type = ETCD_OP_RANGE, .u.range = { .key = pins, .key_len = strlen(pins),
		  .range_end = after, .range_end_len = strlen(after),
		  .limit = RING_PINS_AT_ONCE } },
	};
	/* the second range runs to the prefix's end */
	unsigned char *end = xmalloc(strlen(r->prefix));
	size_t end_len = etcd_prefix_end(r->prefix, strlen(r->prefix), end);
	ops[1].u.range.range_end = end;
	ops[1].u.range.range_end_len = end_len;
	struct etcd_txn_params txn = { .success = ops, .success_count = 3 };
	r->req = etcd_kv_txn(r->etcd_load, &txn, ring_loaded, r);
	free(end);
	free(pins);
	free(after);
}

/* The lease is gone (expired while cut off, or revoked by an admin):
 * take a new one and go through the whole join again. */
void ring_rejoin(struct ring *r, bool new_lease)
{
	if (r->phase == RING_STOPPING || r->req != NULL)
		return;
	etcd_watch_free(&r->watch);
	/* the ring went on without this node: its records are not the
	 * ring's (a user it had may be on another backend now), and the
	 * fence closed their sessions; it learns them again from etcd
	 * (doc/ring.md §11, R1). In serve mode its sessions still run on
	 * them: kept. */
	if (new_lease && !r->serve_cut_off)
		ring_pins_forget(r);
	if (new_lease)
		ring_lease_grant_start(r);
	else
		ring_load_start(r);
}

static void ring_retry_timer(evutil_socket_t fd, short what, void *arg)
{
	struct ring *r = arg;
	(void)fd;
	(void)what;
	switch (r->phase) {
	case RING_SETTINGS:
		ring_settings_start(r);
		break;
	case RING_LEASE:
		ring_lease_grant_start(r);
		break;
	case RING_REGISTER:
		ring_register(r);
		break;
	case RING_LOAD:
		ring_load_start(r);
		break;
	case RING_SERVING:
		/* a step of a host change to try again */
		ring_change_settle(r);
		break;
	case RING_REMOVED:
	case RING_STOPPING:
		break;
	}
}

/* ---- admin changes ------------------------------------------------------------- */

/* Every admin change goes through the ring: host changes (ring_change.c),
 * moves (ring_moves.c), flushes (ring_flush.c), kicks (ring_kicks.c). */
static void ring_director_change(void *ctx, const struct director_change *c,
				 director_change_done_cb *done, void *done_ctx)
{
	struct ring *r = ctx;
	switch (c->type) {
	case DIRECTOR_CHANGE_USER_KICK:
		ring_kick_request(r, c, done, done_ctx);
		return;
	case DIRECTOR_CHANGE_HOST_SET:
	case DIRECTOR_CHANGE_HOST_UPDATE:
	case DIRECTOR_CHANGE_HOST_UP:
	case DIRECTOR_CHANGE_HOST_DOWN:
	case DIRECTOR_CHANGE_HOST_REMOVE:
		ring_change_request(r, c, done, done_ctx);
		return;
	case DIRECTOR_CHANGE_USER_MOVE:
		ring_move_request(r, c, done, done_ctx);
		return;
	case DIRECTOR_CHANGE_HOST_FLUSH:
	case DIRECTOR_CHANGE_HOST_RESET:
		ring_flush_request(r, c, done, done_ctx);
		return;
	}
}

/* ---- the object ---------------------------------------------------------------- */

const char *ring_config_address(const struct config *cfg)
{
	return cfg->ring.address[0] != '\0' ? cfg->ring.address :
		cfg->listeners_count > 0 ? cfg->listeners[0].address : "";
}

void ring_handover_info(const struct ring *r, struct ring_handover *h)
{
	h->lease = r->lease;
	h->started = r->started;
	h->peer_fd = ring_peer_server_fd(r);
}

struct ring *ring_new(struct event_base *base, const struct config *cfg,
		      struct director *director, const struct ring_callbacks *cb,
		      void *ctx, const struct ring_handover *inherit, char **error_r)
{
	const struct conf_strlist *eps = &cfg->ring.etcd;
	struct etcd_settings set = {
		.endpoints = (const char *const *)eps->items,
		.endpoint_count = (unsigned int)eps->count,
		.user = cfg->ring.etcd_user[0] != '\0' ? cfg->ring.etcd_user : NULL,
		.password = cfg->ring.etcd_password,
		.tls_ca_file = cfg->ring.etcd_ca_file[0] != '\0' ? cfg->ring.etcd_ca_file : NULL,
		.tls_cert_file = cfg->ring.etcd_cert[0] != '\0' ? cfg->ring.etcd_cert : NULL,
		.tls_key_file = cfg->ring.etcd_key[0] != '\0' ? cfg->ring.etcd_key : NULL,
		.source_address = cfg->ring.etcd_source_address[0] != '\0' ?
			cfg->ring.etcd_source_address : NULL,
	};
	char *error;
	struct etcd_client *etcd = etcd_client_new(base, &set, &error);
	struct etcd_client *load = NULL;
	if (etcd != NULL) {
		set.request_timeout_msecs = RING_LOAD_TIMEOUT_MS;
		set.max_message_size = RING_LOAD_MAX_MESSAGE;
		load = etcd_client_new(base, &set, &error);
	}
	if (load == NULL) {
		*error_r = xasprintf("%s: ring.etcd: %s", config_source(cfg, "ring.etcd"), error);
		free(error);
		etcd_client_free(&etcd);
		return NULL;
	}
	struct ring *r = xcalloc(1, sizeof(*r));
	r->base = base;
	r->director = director;
	r->cb = *cb;
	r->ctx = ctx;
	r->etcd = etcd;
	r->etcd_load = load;
	r->prefix = xstrdup(cfg->ring.prefix);
	r->address = xstrdup(ring_config_address(cfg));
	r->port = cfg->ring.port;
	r->name = cfg->ring.name[0] != '\0' ? xstrdup(cfg->ring.name) :
		xasprintf("%s:%u", r->address, r->port);
	r->ttl_ms = cfg->ring.lease_ttl_ms;
	r->kick_delay_ms = cfg->director.user_kick_delay_ms;
	r->max_parallel_moves = cfg->director.max_parallel_moves;
	r->user_expire_s = (int64_t)(cfg->director.user_expire_ms / 1000);
	if (r->user_expire_s < 1)
		r->user_expire_s = 1;
	r->serve_cut_off = cfg->ring.partition == CONF_RING_PARTITION_SERVE;
	r->settings = ring_settings_json(cfg);
	r->started = time(NULL);
	if (inherit != NULL && inherit->lease != 0) {
		r->adopt_lease = inherit->lease;
		r->started = inherit->started;
		r->inherited = true;
	}
	r->retry_logged = -1;
	r->retry_timer = evtimer_new(base, ring_retry_timer, r);
	ring_lease_init(r);
	ring_pins_init(r);
	ring_limits_init(r, cfg->ring.limits_interval_ms);
	ring_failsafe_init(r, cfg);
	if (ring_peers_init(r, cfg, inherit != NULL ? inherit->peer_fd : -1, error_r) < 0) {
		ring_free(&r);
		return NULL;
	}
	director_set_change_handler(director, ring_director_change, r);
	ring_settings_start(r);
	return r;
}

bool ring_is_serving(const struct ring *r)
{
	return r->phase == RING_SERVING && !r->fenced;
}

static void ring_revoked(const struct etcd_result *res, void *ctx)
{
	struct ring *r = ctx;
	(void)res;
	r->req = NULL;
	void (*done)(void *) = r->stop_done;
	r->stop_done = NULL;
	if (done != NULL)
		done(r->stop_ctx);
}

void ring_stop(struct ring *r, void (*done)(void *ctx), void *ctx)
{
	etcd_request_cancel(&r->req);
	etcd_watch_free(&r->watch);
	evtimer_del(r->retry_timer);
	ring_lease_deinit(r);
	r->phase = RING_STOPPING;
	/* sessions drain on after the lease is revoked */
	if (r->cb.deadline != NULL)
		r->cb.deadline(r->ctx, 0);
	r->stop_done = done;
	r->stop_ctx = ctx;
	if (r->lease == 0) {
		ring_revoked(NULL, r);
		return;
	}
	/* the node's keys go at once: the ring stops waiting for it */
	r->req = etcd_lease_revoke(r->etcd, r->lease, ring_revoked, r);
}

void ring_free(struct ring **rp)
{
	struct ring *r = *rp;
	if (r == NULL)
		return;
	director_set_change_handler(r->director, NULL, NULL);
	ring_peers_deinit(r);
	ring_limits_deinit(r);
	ring_failsafe_deinit(r);
	ring_flushes_free(r);
	ring_kicks_free(r);
	ring_health_free(r);
	ring_directors_free(r);
	ring_change_free(r);
	ring_moves_free(r);
	ring_pins_free(r);
	etcd_request_cancel(&r->req);
	etcd_watch_free(&r->watch);
	ring_lease_deinit(r);
	etcd_client_free(&r->etcd);
	etcd_client_free(&r->etcd_load);
	event_free(r->retry_timer);
	ring_state_free(r);
	free(r->prefix);
	free(r->name);
	free(r->address);
	free(r->settings);
	free(r);
	*rp = NULL;
}
