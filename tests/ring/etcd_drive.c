/* etcd_drive: runs src/ring's etcd client on one event loop for the
 * integration tests and the latency measurements. It reads commands as
 * JSON lines on stdin and writes JSON lines to stdout: one result per
 * command (with its "id"), and every update of every watch (with its
 * "watch" name), as they come, so a test can run chaos between commands
 * while watches stay open.
 *
 *   etcd_drive --endpoints URL[,URL...] [--timeout MS] [--idle MS]
 *              [--user U --password P] [--ca F] [--cert F --key F]
 *              [--source ADDR]
 *
 * Commands ({"op": ..., "id": N, ...}): put, range, delete, txn, compact,
 * grant, keepalive, revoke, ttl, status, endpoint, watch, unwatch,
 * bench, quit. Keys and values are strings. A request with "cancel":
 * true is canceled at once (its callback must never come). */
#include <errno.h>
#include <event2/event.h>
#include <getopt.h>
#include <jansson.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "common/list.h"
#include "common/macros.h"
#include "common/sbuf.h"
#include "common/xmalloc.h"
#include "ring/etcd.h"

struct drive_watch {
	struct list_node node;
	struct drive *d;
	char *name;
	struct etcd_watch *watch;
};

struct bench;

struct drive {
	struct event_base *base;
	struct etcd_settings set;
	struct etcd_client *client;
	struct event *stdin_event;
	struct sbuf in;
	struct list watches;
	struct bench *bench;
	struct op *canceled;	/* kept: a callback after the cancel says so */
	bool quitting;
};

struct op {
	struct drive *d;
	json_int_t id;
	double t0;
	bool canceled;
	struct op *next_canceled;
};

static double drive_now_ms(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec * 1000.0 + (double)ts.tv_nsec / 1e6;
}

static void drive_print(json_t *o)
{
	char *s = json_dumps(o, JSON_COMPACT);
	if (s == NULL)
		abort();
	printf("%s\n", s);
	fflush(stdout);
	free(s);
	json_decref(o);
}

static json_t *drive_string(const void *data, size_t len)
{
	json_t *s = json_stringn(data, len);
	return s != NULL ? s : json_string("<not UTF-8>");
}

static json_t *drive_kv(const struct etcd_kv *kv)
{
	return json_pack("{s:o,s:o,s:I,s:I,s:I,s:I}",
			 "key", drive_string(kv->key, kv->key_len),
			 "value", drive_string(kv->value, kv->value_len),
			 "create_revision", (json_int_t)kv->create_revision,
			 "mod_revision", (json_int_t)kv->mod_revision,
			 "version", (json_int_t)kv->version,
			 "lease", (json_int_t)kv->lease);
}

static json_t *drive_kvs(const struct etcd_kv *kvs, size_t n)
{
	json_t *a = json_array();
	for (size_t i = 0; i < n; i++)
		json_array_append_new(a, drive_kv(&kvs[i]));
	return a;
}

static const char *const drive_op_types[] = { "range", "put", "delete" };

static json_t *drive_op_result(const struct etcd_op_result *op)
{
	return json_pack("{s:s,s:I,s:o,s:I,s:b,s:I}",
			 "type", drive_op_types[op->type],
			 "revision", (json_int_t)op->revision,
			 "kvs", drive_kvs(op->kvs, op->kv_count),
			 "count", (json_int_t)op->count,
			 "more", op->more,
			 "deleted", (json_int_t)op->deleted);
}

static json_t *drive_result(const struct etcd_result *r)
{
	char member[24], leader[24];
	snprintf(member, sizeof(member), "%llu", (unsigned long long)r->header.member_id);
	snprintf(leader, sizeof(leader), "%llu", (unsigned long long)r->status.leader);
	json_t *o = json_pack("{s:s,s:s,s:i,s:i,s:o}",
			      "outcome", etcd_outcome_names[r->outcome],
			      "endpoint", r->endpoint,
			      "http", r->http_status,
			      "grpc", r->grpc_code,
			      "error", r->error != NULL ? json_string(r->error) : json_null());
	json_object_set_new(o, "header", json_pack("{s:I,s:s,s:I}",
		"revision", (json_int_t)r->header.revision, "member_id", member,
		"raft_term", (json_int_t)r->header.raft_term));
	json_object_update_new(o, drive_op_result(&r->op));
	json_object_set_new(o, "succeeded", json_boolean(r->succeeded));
	json_t *resp = json_array();
	for (size_t i = 0; i < r->response_count; i++)
		json_array_append_new(resp, drive_op_result(&r->responses[i]));
	json_object_set_new(o, "responses", resp);
	json_t *keys = json_array();
	for (size_t i = 0; i < r->lease.key_count; i++)
		json_array_append_new(keys, drive_string(r->lease.keys[i].key,
							 r->lease.keys[i].key_len));
	json_object_set_new(o, "lease", json_pack("{s:I,s:I,s:I,s:o}",
		"id", (json_int_t)r->lease.id, "ttl", (json_int_t)r->lease.ttl,
		"granted_ttl", (json_int_t)r->lease.granted_ttl, "keys", keys));
	json_object_set_new(o, "status", json_pack("{s:s?,s:s,s:I}",
		"version", r->status.version, "leader", leader,
		"raft_term", (json_int_t)r->status.raft_term));
	return o;
}

static void drive_on_result(const struct etcd_result *r, void *ctx)
{
	struct op *op = ctx;
	json_t *o = drive_result(r);
	json_object_set_new(o, "id", json_integer(op->id));
	json_object_set_new(o, "ms", json_real(drive_now_ms() - op->t0));
	if (op->canceled)
		json_object_set_new(o, "bug", json_string("callback after cancel"));
	drive_print(o);
	if (!op->canceled)
		free(op);
}

/* ---- commands ---- */

static const char *drive_str(json_t *cmd, const char *name, size_t *len_r)
{
	json_t *v = json_object_get(cmd, name);
	if (!json_is_string(v)) {
		*len_r = 0;
		return NULL;
	}
	*len_r = json_string_length(v);
	return json_string_value(v);
}

static int64_t drive_int(json_t *cmd, const char *name)
{
	json_t *v = json_object_get(cmd, name);
	if (json_is_integer(v))
		return json_integer_value(v);
	if (json_is_string(v))
		return strtoll(json_string_value(v), NULL, 10);
	return 0;
}

static bool drive_bool(json_t *cmd, const char *name)
{
	return json_is_true(json_object_get(cmd, name));
}

static void drive_range_params(json_t *c, struct etcd_range_params *p)
{
	memset(p, 0, sizeof(*p));
	p->key = drive_str(c, "key", &p->key_len);
	p->range_end = drive_str(c, "range_end", &p->range_end_len);
	p->prefix = drive_bool(c, "prefix");
	p->revision = drive_int(c, "revision");
	p->limit = drive_int(c, "limit");
	p->keys_only = drive_bool(c, "keys_only");
	p->count_only = drive_bool(c, "count_only");
	p->serializable = drive_bool(c, "serializable");
}

static void drive_put_params(json_t *c, struct etcd_put_params *p)
{
	memset(p, 0, sizeof(*p));
	p->key = drive_str(c, "key", &p->key_len);
	p->value = drive_str(c, "value", &p->value_len);
	if (p->value == NULL)
		p->value = "";
	p->lease = drive_int(c, "lease");
	p->prev_kv = drive_bool(c, "prev_kv");
}

static void drive_delete_params(json_t *c, struct etcd_delete_params *p)
{
	memset(p, 0, sizeof(*p));
	p->key = drive_str(c, "key", &p->key_len);
	p->range_end = drive_str(c, "range_end", &p->range_end_len);
	p->prefix = drive_bool(c, "prefix");
	p->prev_kv = drive_bool(c, "prev_kv");
}

static int drive_lookup(const char *const *names, size_t n, const char *name)
{
	for (size_t i = 0; i < n; i++) {
		if (name != NULL && strcmp(names[i], name) == 0)
			return (int)i;
	}
	return -1;
}

static struct etcd_op *drive_ops(json_t *a, size_t *n_r)
{
	*n_r = json_array_size(a);
	struct etcd_op *ops = xcalloc(*n_r + 1, sizeof(*ops));
	for (size_t i = 0; i < *n_r; i++) {
		json_t *o = json_array_get(a, i);
		int t = drive_lookup(drive_op_types, 3,
				     json_string_value(json_object_get(o, "op")));
		ops[i].type = t < 0 ? ETCD_OP_RANGE : (enum etcd_op_type)t;
		if (ops[i].type == ETCD_OP_RANGE)
			drive_range_params(o, &ops[i].u.range);
		else if (ops[i].type == ETCD_OP_PUT)
			drive_put_params(o, &ops[i].u.put);
		else
			drive_delete_params(o, &ops[i].u.del);
	}
	return ops;
}

static struct etcd_request *drive_txn(struct drive *d, json_t *c, struct op *op)
{
	static const char *const targets[] = { "VERSION", "CREATE", "MOD", "VALUE", "LEASE" };
	static const char *const results[] = { "EQUAL", "GREATER", "LESS", "NOT_EQUAL" };
	json_t *ca = json_object_get(c, "compare");
	size_t ncmp = json_array_size(ca);
	struct etcd_compare *cmps = xcalloc(ncmp + 1, sizeof(*cmps));
	for (size_t i = 0; i < ncmp; i++) {
		json_t *o = json_array_get(ca, i);
		cmps[i].key = drive_str(o, "key", &cmps[i].key_len);
		int t = drive_lookup(targets, 5, json_string_value(json_object_get(o, "target")));
		int r = drive_lookup(results, 4, json_string_value(json_object_get(o, "result")));
		cmps[i].target = t < 0 ? ETCD_TARGET_VERSION : (enum etcd_compare_target)t;
		cmps[i].result = r < 0 ? ETCD_CMP_EQUAL : (enum etcd_compare_result)r;
		cmps[i].number = drive_int(o, "number");
		cmps[i].value = drive_str(o, "value", &cmps[i].value_len);
	}
	struct etcd_txn_params t = { .compares = cmps, .compare_count = ncmp };
	struct etcd_op *succ = drive_ops(json_object_get(c, "success"), &t.success_count);
	struct etcd_op *fail = drive_ops(json_object_get(c, "failure"), &t.failure_count);
	t.success = succ;
	t.failure = fail;
	struct etcd_request *req = etcd_kv_txn(d->client, &t, drive_on_result, op);
	free(cmps);
	free(succ);
	free(fail);
	return req;
}

static const char *drive_kind_name(enum etcd_event_type t)
{
	return t == ETCD_EVENT_PUT ? "PUT" : "DELETE";
}

static void drive_on_watch(const struct etcd_watch_update *u, void *ctx)
{
	struct drive_watch *dw = ctx;
	json_t *events = json_array();
	for (size_t i = 0; i < u->event_count; i++) {
		const struct etcd_event *ev = &u->events[i];
		json_t *e = drive_kv(&ev->kv);
		json_object_set_new(e, "type", json_string(drive_kind_name(ev->type)));
		json_object_set_new(e, "prev", ev->has_prev_kv ? drive_kv(&ev->prev_kv) :
				    json_null());
		json_array_append_new(events, e);
	}
	drive_print(json_pack("{s:s,s:s,s:s,s:I,s:I,s:I,s:o,s:o,s:f}",
		"watch", dw->name, "kind", etcd_watch_kind_names[u->kind],
		"endpoint", u->endpoint, "revision", (json_int_t)u->revision,
		"watch_revision", (json_int_t)etcd_watch_get_revision(dw->watch),
		"compact_revision", (json_int_t)u->compact_revision,
		"reason", u->reason != NULL ? json_string(u->reason) : json_null(),
		"events", events, "t", drive_now_ms()));
}

static struct drive_watch *drive_find_watch(struct drive *d, const char *name)
{
	for (struct list_node *n = d->watches.head; n != NULL; n = n->next) {
		struct drive_watch *dw = CONTAINER_OF(n, struct drive_watch, node);
		if (name != NULL && strcmp(dw->name, name) == 0)
			return dw;
	}
	return NULL;
}

static void drive_free_watch(struct drive *d, struct drive_watch *dw)
{
	list_unlink(&d->watches, &dw->node);
	etcd_watch_free(&dw->watch);
	free(dw->name);
	free(dw);
}

/* ---- bench: sequential requests, latency percentiles ---- */

struct bench {
	struct drive *d;
	json_int_t id;
	char kind[16];
	char key[128];
	unsigned int n, done;
	double *samples;
	double t0;
	struct etcd_client *watch_client;	/* the watch, on another endpoint */
	struct etcd_watch *watch;
	bool put_answered, event_seen, created;
	unsigned int failures;
};

static void bench_next(struct bench *b);
static void bench_free(struct bench *b);

static int bench_cmp(const void *a, const void *b)
{
	double x = *(const double *)a, y = *(const double *)b;
	return x < y ? -1 : x > y;
}

static double bench_pct(const double *s, unsigned int n, double p)
{
	size_t i = (size_t)ceil(p / 100.0 * n);
	return s[i == 0 ? 0 : i - 1];
}

static void bench_finish(struct bench *b)
{
	struct drive *d = b->d;
	qsort(b->samples, b->n, sizeof(double), bench_cmp);
	double sum = 0;
	for (unsigned int i = 0; i < b->n; i++)
		sum += b->samples[i];
	drive_print(json_pack("{s:I,s:s,s:i,s:i,s:f,s:f,s:f,s:f,s:s}",
		"id", b->id, "bench", b->kind, "n", b->n, "failures", b->failures,
		"p50", bench_pct(b->samples, b->n, 50), "p99", bench_pct(b->samples, b->n, 99),
		"mean", sum / b->n, "max", b->samples[b->n - 1],
		"endpoint", etcd_client_get_endpoint(d->client)));
	bench_free(b);
}

static void bench_free(struct bench *b)
{
	b->d->bench = NULL;
	etcd_watch_free(&b->watch);
	etcd_client_free(&b->watch_client);
	free(b->samples);
	free(b);
}

static void bench_advance(struct bench *b)
{
	b->done++;
	if (b->done == b->n)
		bench_finish(b);
	else
		bench_next(b);
}

static void bench_on_result(const struct etcd_result *r, void *ctx)
{
	struct bench *b = ctx;
	if (r->outcome != ETCD_OK || (strcmp(b->kind, "txn") == 0 && !r->succeeded))
		b->failures++;
	if (strcmp(b->kind, "watch") == 0) {
		/* the sample is the event's; the next put waits for both */
		b->put_answered = true;
		if (b->event_seen)
			bench_advance(b);
		return;
	}
	b->samples[b->done] = drive_now_ms() - b->t0;
	bench_advance(b);
}

static void bench_on_watch(const struct etcd_watch_update *u, void *ctx)
{
	struct bench *b = ctx;
	if (u->kind == ETCD_WATCH_CREATED && !b->created) {
		b->created = true;
		bench_next(b);
		return;
	}
	if (u->kind != ETCD_WATCH_EVENTS || b->event_seen)
		return;
	b->samples[b->done] = drive_now_ms() - b->t0;
	b->event_seen = true;
	if (b->put_answered)
		bench_advance(b);
}

static void bench_next(struct bench *b)
{
	struct drive *d = b->d;
	char key[160], value[32];
	snprintf(value, sizeof(value), "%u", b->done);
	b->t0 = drive_now_ms();
	if (strcmp(b->kind, "range") == 0) {
		struct etcd_range_params p = { .key = b->key, .key_len = strlen(b->key) };
		etcd_kv_range(d->client, &p, bench_on_result, b);
	} else if (strcmp(b->kind, "txn") == 0) {
		snprintf(key, sizeof(key), "%s/%u", b->key, b->done);
		struct etcd_compare c = { .key = key, .key_len = strlen(key),
					  .target = ETCD_TARGET_CREATE };
		struct etcd_op put = { .type = ETCD_OP_PUT, .u.put = {
			.key = key, .key_len = strlen(key), .value = value,
			.value_len = strlen(value) } };
		struct etcd_txn_params t = { &c, 1, &put, 1, NULL, 0 };
		etcd_kv_txn(d->client, &t, bench_on_result, b);
	} else {
		b->put_answered = false;
		b->event_seen = false;
		struct etcd_put_params p = { .key = b->key, .key_len = strlen(b->key),
					     .value = value, .value_len = strlen(value) };
		etcd_kv_put(d->client, &p, bench_on_result, b);
	}
}

/* The watch bench: puts through the first endpoint, the watch on the
 * second, each sample from sending the put to receiving its event. */
static void bench_start(struct drive *d, json_t *c, json_int_t id)
{
	struct bench *b = xcalloc(1, sizeof(*b));
	size_t len;
	const char *kind = drive_str(c, "kind", &len);
	const char *key = drive_str(c, "key", &len);
	b->d = d;
	b->id = id;
	snprintf(b->kind, sizeof(b->kind), "%s", kind != NULL ? kind : "put");
	snprintf(b->key, sizeof(b->key), "%s", key != NULL ? key : "/bench/k");
	b->n = (unsigned int)MAX(drive_int(c, "n"), 1);
	b->samples = xcalloc(b->n, sizeof(double));
	d->bench = b;
	if (strcmp(b->kind, "watch") != 0) {
		bench_next(b);
		return;
	}
	struct etcd_settings ws = d->set;
	const char **eps = xcalloc(ws.endpoint_count, sizeof(*eps));
	for (unsigned int i = 0; i < ws.endpoint_count; i++)
		eps[i] = ws.endpoints[(i + 1) % ws.endpoint_count];
	ws.endpoints = eps;
	char *error = NULL;
	b->watch_client = etcd_client_new(d->base, &ws, &error);
	free(eps);
	if (b->watch_client == NULL) {
		fprintf(stderr, "etcd_drive: %s\n", error);
		exit(1);
	}
	struct etcd_watch_params wp = { .key = b->key, .key_len = strlen(b->key) };
	b->watch = etcd_watch_start(b->watch_client, &wp, bench_on_watch, b);
}

/* ---- the command loop ---- */

static void drive_quit(struct drive *d)
{
	d->quitting = true;
	if (d->bench != NULL)
		bench_free(d->bench);
	while (!list_is_empty(&d->watches))
		drive_free_watch(d, CONTAINER_OF(d->watches.head, struct drive_watch, node));
	etcd_client_free(&d->client);
	while (d->canceled != NULL) {
		struct op *op = d->canceled;
		d->canceled = op->next_canceled;
		free(op);
	}
	event_del(d->stdin_event);
	event_base_loopexit(d->base, NULL);
}

static void drive_command(struct drive *d, json_t *c)
{
	const char *name = json_string_value(json_object_get(c, "op"));
	json_int_t id = (json_int_t)drive_int(c, "id");
	if (name == NULL) {
		drive_print(json_pack("{s:I,s:s}", "id", id, "bug", "no op"));
		return;
	}
	struct op *op = xcalloc(1, sizeof(*op));
	op->d = d;
	op->id = id;
	op->t0 = drive_now_ms();
	struct etcd_request *req = NULL;
	int64_t lease = drive_int(c, "lease");
	if (strcmp(name, "put") == 0) {
		struct etcd_put_params p;
		drive_put_params(c, &p);
		req = etcd_kv_put(d->client, &p, drive_on_result, op);
	} else if (strcmp(name, "range") == 0) {
		struct etcd_range_params p;
		drive_range_params(c, &p);
		req = etcd_kv_range(d->client, &p, drive_on_result, op);
	} else if (strcmp(name, "delete") == 0) {
		struct etcd_delete_params p;
		drive_delete_params(c, &p);
		req = etcd_kv_delete(d->client, &p, drive_on_result, op);
	} else if (strcmp(name, "txn") == 0) {
		req = drive_txn(d, c, op);
	} else if (strcmp(name, "compact") == 0) {
		req = etcd_kv_compact(d->client, drive_int(c, "revision"), drive_on_result, op);
	} else if (strcmp(name, "grant") == 0) {
		req = etcd_lease_grant(d->client, drive_int(c, "ttl"), lease,
				       drive_on_result, op);
	} else if (strcmp(name, "keepalive") == 0) {
		req = etcd_lease_keepalive(d->client, lease, drive_on_result, op);
	} else if (strcmp(name, "revoke") == 0) {
		req = etcd_lease_revoke(d->client, lease, drive_on_result, op);
	} else if (strcmp(name, "ttl") == 0) {
		req = etcd_lease_timetolive(d->client, lease, drive_bool(c, "keys"),
					    drive_on_result, op);
	} else if (strcmp(name, "status") == 0) {
		req = etcd_maintenance_status(d->client, drive_on_result, op);
	} else {
		free(op);
		size_t len;
		const char *wname = drive_str(c, "watch", &len);
		if (strcmp(name, "watch") == 0 && wname != NULL) {
			struct drive_watch *dw = xcalloc(1, sizeof(*dw));
			dw->d = d;
			dw->name = xstrdup(wname);
			struct etcd_watch_params p = { .prefix = drive_bool(c, "prefix"),
				.start_revision = drive_int(c, "start_revision") };
			p.key = drive_str(c, "key", &p.key_len);
			p.range_end = drive_str(c, "range_end", &p.range_end_len);
			list_append(&d->watches, &dw->node);
			dw->watch = etcd_watch_start(d->client, &p, drive_on_watch, dw);
			drive_print(json_pack("{s:I,s:s}", "id", id, "outcome", "OK"));
		} else if (strcmp(name, "unwatch") == 0) {
			struct drive_watch *dw = drive_find_watch(d, wname);
			if (dw != NULL)
				drive_free_watch(d, dw);
			drive_print(json_pack("{s:I,s:s}", "id", id,
					      "outcome", dw != NULL ? "OK" : "FAILED"));
		} else if (strcmp(name, "endpoint") == 0) {
			drive_print(json_pack("{s:I,s:s,s:s}", "id", id, "outcome", "OK",
					      "endpoint", etcd_client_get_endpoint(d->client)));
		} else if (strcmp(name, "bench") == 0 && d->bench == NULL) {
			bench_start(d, c, id);
		} else if (strcmp(name, "quit") == 0) {
			drive_quit(d);
		} else {
			drive_print(json_pack("{s:I,s:s,s:s}", "id", id, "bug", "bad op",
					      "op", name));
		}
		return;
	}
	if (drive_bool(c, "cancel")) {
		op->canceled = true;
		op->next_canceled = d->canceled;
		d->canceled = op;
		etcd_request_cancel(&req);
		drive_print(json_pack("{s:I,s:b}", "id", id, "canceled", true));
	}
}

static void drive_on_stdin(evutil_socket_t fd, short what, void *arg)
{
	struct drive *d = arg;
	(void)what;
	char buf[65536];
	ssize_t n = read(fd, buf, sizeof(buf));
	if (n < 0 && (errno == EAGAIN || errno == EINTR))
		return;
	if (n <= 0) {
		drive_quit(d);
		return;
	}
	sbuf_append(&d->in, buf, (size_t)n);
	for (;;) {
		const char *data = sbuf_data(&d->in);
		const char *nl = memchr(data, '\n', sbuf_len(&d->in));
		if (nl == NULL)
			break;
		json_error_t jerr;
		json_t *c = json_loadb(data, (size_t)(nl - data), 0, &jerr);
		sbuf_consume(&d->in, (size_t)(nl - data) + 1);
		if (c == NULL) {
			drive_print(json_pack("{s:s,s:s}", "bug", "bad JSON", "error", jerr.text));
			continue;
		}
		drive_command(d, c);
		json_decref(c);
		if (d->quitting)
			return;
	}
}

static char **drive_split(const char *list, unsigned int *n_r)
{
	char **out = xcalloc(ETCD_MAX_ENDPOINTS + 1, sizeof(*out));
	char *copy = xstrdup(list), *save = NULL;
	unsigned int n = 0;
	for (char *t = strtok_r(copy, ",", &save); t != NULL && n <= ETCD_MAX_ENDPOINTS;
	     t = strtok_r(NULL, ",", &save))
		out[n++] = xstrdup(t);
	free(copy);
	*n_r = n;
	return out;
}

int main(int argc, char **argv)
{
	static const struct option options[] = {
		{ "endpoints", required_argument, NULL, 'e' },
		{ "timeout", required_argument, NULL, 't' },
		{ "idle", required_argument, NULL, 'i' },
		{ "user", required_argument, NULL, 'u' },
		{ "password", required_argument, NULL, 'p' },
		{ "ca", required_argument, NULL, 'a' },
		{ "cert", required_argument, NULL, 'c' },
		{ "key", required_argument, NULL, 'k' },
		{ "source", required_argument, NULL, 's' },
		{ NULL, 0, NULL, 0 },
	};
	struct drive d;
	memset(&d, 0, sizeof(d));
	char **endpoints = NULL;
	int opt;
	while ((opt = getopt_long(argc, argv, "", options, NULL)) != -1) {
		switch (opt) {
		case 'e':
			endpoints = drive_split(optarg, &d.set.endpoint_count);
			d.set.endpoints = (const char *const *)endpoints;
			break;
		case 't':
			d.set.request_timeout_msecs = (unsigned int)atoi(optarg);
			break;
		case 'i':
			d.set.watch_idle_timeout_msecs = (unsigned int)atoi(optarg);
			break;
		case 'u': d.set.user = optarg; break;
		case 'p': d.set.password = optarg; break;
		case 'a': d.set.tls_ca_file = optarg; break;
		case 'c': d.set.tls_cert_file = optarg; break;
		case 'k': d.set.tls_key_file = optarg; break;
		case 's': d.set.source_address = optarg; break;
		default:
			fprintf(stderr, "usage: etcd_drive --endpoints URL[,URL...] [options]\n");
			return 2;
		}
	}
	d.base = event_base_new();
	list_init(&d.watches);
	char *error = NULL;
	d.client = etcd_client_new(d.base, &d.set, &error);
	if (d.client == NULL) {
		drive_print(json_pack("{s:s}", "fatal", error));
		free(error);
		return 1;
	}
	d.stdin_event = event_new(d.base, 0, EV_READ | EV_PERSIST, drive_on_stdin, &d);
	event_add(d.stdin_event, NULL);
	drive_print(json_pack("{s:b}", "ready", true));
	event_base_dispatch(d.base);
	/* the client's deferred frees run on the loop: give them a turn */
	event_base_loop(d.base, EVLOOP_NONBLOCK);
	event_free(d.stdin_event);
	event_base_free(d.base);
	sbuf_free(&d.in);
	for (unsigned int i = 0; endpoints != NULL && endpoints[i] != NULL; i++)
		free(endpoints[i]);
	free(endpoints);
	drive_print(json_pack("{s:b}", "bye", true));
	return 0;
}
