/* Unit tests for the etcd client's logic (src/ring/etcd.c, etcd_http.c,
 * etcd_watch.c) against scripted gateways: libevent HTTP servers on
 * loopback, in the test's own loop, that answer as etcd does in
 * reference/etcd-gateway.md, including the answers that are hard to
 * provoke from a real cluster on cue (no leader, request timed out, an
 * expired token, a stream that ends mid-way or goes silent). The real
 * thing is tests/integration/test_etcd_client.py. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <cmocka.h>
#include <arpa/inet.h>
#include <event2/buffer.h>
#include <event2/event.h>
#include <event2/http.h>
#include <event2/keyvalq_struct.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include "common/sbuf.h"
#include "common/xmalloc.h"
#include "ring/etcd.h"

#define HDR "\"header\":{\"cluster_id\":\"1\",\"member_id\":\"2\",\"revision\":\"5\",\"raft_term\":\"2\"}"
#define NO_LEADER "{\"error\":\"etcdserver: no leader\",\"message\":\"etcdserver: no leader\",\"code\":14}"

/* ---- a scripted gateway ---- */

struct fake_reply {
	const char *path;	/* NULL: any */
	int status;
	const char *body;
	bool stream;		/* chunked */
	bool hold;		/* a stream that never ends */
	const char *auth;	/* only for this Authorization header */
};

struct fake {
	struct evhttp *http;
	uint16_t port;
	char url[64];
	const struct fake_reply *replies;
	size_t reply_count;
	bool used[16];
	unsigned int hits;
	char host[64];
	char hasleader[16];
	char content_type[64];
	char auth[64];
	char path[64];
	struct sbuf bodies;	/* every request body, one per line */
	/* streams left open: libevent keeps them (even once the client
	 * has gone) until they are ended */
	struct evhttp_request *held[4];
	unsigned int held_count;
};

static double now_ms(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec * 1000.0 + (double)ts.tv_nsec / 1e6;
}

static void copy_header(struct evhttp_request *req, const char *name, char *out, size_t size)
{
	const char *v = evhttp_find_header(evhttp_request_get_input_headers(req), name);
	snprintf(out, size, "%s", v != NULL ? v : "");
}

static void fake_on_request(struct evhttp_request *req, void *arg)
{
	struct fake *f = arg;
	f->hits++;
	copy_header(req, "Host", f->host, sizeof(f->host));
	copy_header(req, "Grpc-Metadata-hasleader", f->hasleader, sizeof(f->hasleader));
	copy_header(req, "Content-Type", f->content_type, sizeof(f->content_type));
	copy_header(req, "Authorization", f->auth, sizeof(f->auth));
	snprintf(f->path, sizeof(f->path), "%s", evhttp_request_get_uri(req));
	struct evbuffer *in = evhttp_request_get_input_buffer(req);
	size_t len = evbuffer_get_length(in);
	sbuf_append(&f->bodies, evbuffer_pullup(in, -1), len);
	sbuf_appendc(&f->bodies, '\n');

	const struct fake_reply *r = NULL;
	for (size_t i = 0; i < f->reply_count && r == NULL; i++) {
		const struct fake_reply *c = &f->replies[i];
		if (f->used[i] || (c->path != NULL && strcmp(c->path, f->path) != 0) ||
		    (c->auth != NULL && strcmp(c->auth, f->auth) != 0))
			continue;
		f->used[i] = true;
		r = c;
	}
	struct evbuffer *out = evbuffer_new();
	if (r == NULL) {
		evbuffer_add_printf(out, "{\"error\":\"no script\",\"code\":2}");
		evhttp_send_reply(req, 500, "Internal Server Error", out);
	} else if (r->stream) {
		evhttp_send_reply_start(req, r->status, "OK");
		evbuffer_add(out, r->body, strlen(r->body));
		evhttp_send_reply_chunk(req, out);
		if (!r->hold)
			evhttp_send_reply_end(req);
		else if (f->held_count < 4)
			f->held[f->held_count++] = req;
	} else {
		evbuffer_add(out, r->body, strlen(r->body));
		evhttp_send_reply(req, r->status, "X", out);
	}
	evbuffer_free(out);
}

static void fake_start(struct fake *f, struct event_base *base,
		       const struct fake_reply *replies, size_t n)
{
	memset(f, 0, sizeof(*f));
	assert_true(n <= 16);
	f->replies = replies;
	f->reply_count = n;
	f->http = evhttp_new(base);
	struct evhttp_bound_socket *s = evhttp_bind_socket_with_handle(f->http, "127.0.0.1", 0);
	assert_non_null(s);
	struct sockaddr_in sin;
	socklen_t len = sizeof(sin);
	assert_int_equal(getsockname(evhttp_bound_socket_get_fd(s), (struct sockaddr *)&sin,
				     &len), 0);
	f->port = ntohs(sin.sin_port);
	snprintf(f->url, sizeof(f->url), "http://127.0.0.1:%u", f->port);
	evhttp_set_gencb(f->http, fake_on_request, f);
}

static void fake_stop(struct fake *f)
{
	for (unsigned int i = 0; i < f->held_count; i++)
		evhttp_send_reply_end(f->held[i]);
	evhttp_free(f->http);
	sbuf_free(&f->bodies);
}

/* A port that refuses connections: bound, never listening. */
static int refusing_port(char *url, size_t size)
{
	int fd = socket(AF_INET, SOCK_STREAM, 0);
	struct sockaddr_in sin = { .sin_family = AF_INET };
	sin.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	assert_int_equal(bind(fd, (struct sockaddr *)&sin, sizeof(sin)), 0);
	socklen_t len = sizeof(sin);
	getsockname(fd, (struct sockaddr *)&sin, &len);
	snprintf(url, size, "http://127.0.0.1:%u", ntohs(sin.sin_port));
	return fd;
}

/* ---- running the loop ---- */

struct got {
	unsigned int calls;
	struct etcd_result r;	/* the last result's scalars */
	char endpoint[64];
	char error[256];
	int64_t revision;
	int64_t ttl;
	bool done;
	struct etcd_client **free_client;	/* free it inside the callback */
};

static void on_result(const struct etcd_result *r, void *ctx)
{
	struct got *g = ctx;
	g->calls++;
	g->r = *r;
	g->r.error = NULL;
	g->r.endpoint = NULL;
	snprintf(g->endpoint, sizeof(g->endpoint), "%s", r->endpoint);
	snprintf(g->error, sizeof(g->error), "%s", r->error != NULL ? r->error : "");
	g->revision = r->header.revision;
	g->ttl = r->lease.ttl;
	g->done = true;
	if (g->free_client != NULL)
		etcd_client_free(g->free_client);
}

static void run_until(struct event_base *base, const bool *flag, int max_ms)
{
	double end = now_ms() + max_ms;
	while (!*flag && now_ms() < end) {
		struct timeval tv = { 0, 10000 };
		event_base_loopexit(base, &tv);
		event_base_dispatch(base);
	}
	if (!*flag)
		fail_msg("nothing came within %d ms", max_ms);
}

/* runs the loop for a while whatever happens */
static void run_for(struct event_base *base, int ms)
{
	struct timeval tv = { ms / 1000, (ms % 1000) * 1000 };
	event_base_loopexit(base, &tv);
	event_base_dispatch(base);
}

static struct etcd_client *client_new(struct event_base *base, const char *const *eps,
				      unsigned int n, const char *user, const char *password)
{
	struct etcd_settings set = {
		.endpoints = eps, .endpoint_count = n, .user = user, .password = password,
		.request_timeout_msecs = 300, .watch_idle_timeout_msecs = 200,
	};
	char *error = NULL;
	struct etcd_client *c = etcd_client_new(base, &set, &error);
	if (c == NULL)
		fail_msg("etcd_client_new: %s", error);
	return c;
}

/* Two scripted gateways, A and B, and a client with both as endpoints. */
struct pair {
	struct event_base *base;
	struct fake a, b;
	struct etcd_client *c;
};

static void pair_start(struct pair *p, const struct fake_reply *ra, size_t na,
		       const struct fake_reply *rb, size_t nb)
{
	p->base = event_base_new();
	fake_start(&p->a, p->base, ra, na);
	fake_start(&p->b, p->base, rb, nb);
	const char *eps[] = { p->a.url, p->b.url };
	p->c = client_new(p->base, eps, 2, NULL, NULL);
}

static void pair_stop(struct pair *p)
{
	etcd_client_free(&p->c);
	fake_stop(&p->a);
	fake_stop(&p->b);
	event_base_free(p->base);
}

static const struct etcd_put_params put_kv = { "k", 1, "v", 1, 0, false };
static const struct etcd_range_params range_k = { .key = "k", .key_len = 1 };

/* ---- settings ---- */

static void expect_settings_error(const struct etcd_settings *set, const char *part)
{
	struct event_base *base = event_base_new();
	char *error = NULL;
	assert_null(etcd_client_new(base, set, &error));
	if (error == NULL || strstr(error, part) == NULL)
		fail_msg("error \"%s\" lacks \"%s\"", error != NULL ? error : "", part);
	free(error);
	event_base_free(base);
}

static void test_client_settings(void **state)
{
	(void)state;
	struct etcd_settings set = { 0 };
	expect_settings_error(&set, "between 1 and");
	const char *bad[][2] = {
		{ "ftp://127.0.0.1:2379", "not http:// or https://" },
		{ "http://127.0.0.1:99999", "bad port" },
		{ "http://127.0.0.1:", "bad port" },
		{ "http://127.0.0.1:2379/v3", "a path is not allowed" },
		{ "http://[::1:2379", "no ]" },
		{ "http://[::1]x", "junk after ]" },
		{ "http://", "no host" },
	};
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		const char *eps[] = { "http://127.0.0.1:2379", bad[i][0] };
		set.endpoints = eps;
		set.endpoint_count = 2;
		expect_settings_error(&set, bad[i][1]);
	}
	const char *eps[] = { "http://127.0.0.1:2379/", "http://[::1]:2379", "http://localhost" };
	set.endpoints = eps;
	set.endpoint_count = 3;
	set.user = "loft";
	expect_settings_error(&set, "a user needs a password");
	set.user = NULL;
	set.source_address = "nowhere";
	expect_settings_error(&set, "not an IP address");
	set.source_address = "127.0.0.1";

	struct event_base *base = event_base_new();
	char *error = NULL;
	struct etcd_client *c = etcd_client_new(base, &set, &error);
	assert_non_null(c);
	assert_string_equal(etcd_client_get_endpoint(c), "http://127.0.0.1:2379/");
	etcd_client_free(&c);
	assert_null(c);
	event_base_free(base);

	const char *tls[] = { "https://127.0.0.1:2379" };
	set.endpoints = tls;
	set.endpoint_count = 1;
	set.tls_cert_file = "/nonexistent.pem";
	expect_settings_error(&set, "go together");
	set.tls_key_file = "/nonexistent.key";
	expect_settings_error(&set, "etcd client certificate /nonexistent.pem");
	set.tls_ca_file = "/nonexistent-ca.pem";
	expect_settings_error(&set, "etcd CA /nonexistent-ca.pem");
}

/* ---- unary requests ---- */

static void test_request_headers(void **state)
{
	(void)state;
	struct event_base *base = event_base_new();
	const struct fake_reply replies[] = {
		{ "/v3/kv/put", 200, "{" HDR "}", false, false, NULL },
	};
	struct fake f;
	fake_start(&f, base, replies, 1);
	const char *eps[] = { f.url };
	struct etcd_client *c = client_new(base, eps, 1, NULL, NULL);
	struct got g = { 0 };
	etcd_kv_put(c, &put_kv, on_result, &g);
	assert_false(g.done);	/* never inside the call */
	run_until(base, &g.done, 2000);
	assert_int_equal(g.r.outcome, ETCD_OK);
	assert_string_equal(g.endpoint, f.url);
	assert_int_equal(g.revision, 5);
	char host[64];
	snprintf(host, sizeof(host), "127.0.0.1:%u", f.port);
	assert_string_equal(f.host, host);
	assert_string_equal(f.hasleader, "true");
	assert_string_equal(f.content_type, "application/json");
	assert_string_equal(f.path, "/v3/kv/put");
	assert_string_equal(f.auth, "");
	assert_string_equal(sbuf_cstr(&f.bodies), "{\"key\":\"aw==\",\"value\":\"dg==\"}\n");
	etcd_client_free(&c);
	fake_stop(&f);
	event_base_free(base);
}

static void test_no_leader_fails_over(void **state)
{
	(void)state;
	const struct fake_reply ra[] = { { NULL, 503, NO_LEADER, false, false, NULL } };
	const struct fake_reply rb[] = { { "/v3/kv/put", 200, "{" HDR "}", false, false, NULL } };
	struct pair p;
	pair_start(&p, ra, 1, rb, 1);
	struct event_base *base = p.base;
	struct etcd_client *c = p.c;
	struct fake *a = &p.a, *b = &p.b;
	struct got g = { 0 };
	etcd_kv_put(c, &put_kv, on_result, &g);
	run_until(base, &g.done, 2000);
	/* "no leader" is refused before anything is done: a write retries */
	assert_int_equal(g.r.outcome, ETCD_OK);
	assert_string_equal(g.endpoint, b->url);
	assert_int_equal(a->hits, 1);
	assert_string_equal(etcd_client_get_endpoint(c), b->url);

	/* no leader anywhere: FAILED, not executed */
	memset(a->used, 0, sizeof(a->used));
	b->replies = ra;
	memset(b->used, 0, sizeof(b->used));
	g = (struct got){ 0 };
	etcd_kv_put(c, &put_kv, on_result, &g);
	run_until(base, &g.done, 2000);
	assert_int_equal(g.r.outcome, ETCD_FAILED);
	assert_int_equal(g.r.http_status, 503);
	assert_int_equal(g.r.grpc_code, 14);
	assert_non_null(strstr(g.error, "no leader"));
	pair_stop(&p);
}

static void test_unknown_writes_retried_reads(void **state)
{
	(void)state;
	const char *timed_out = "{\"error\":\"etcdserver: request timed out\","
		"\"message\":\"etcdserver: request timed out\",\"code\":14}";
	const struct fake_reply ra[] = {
		{ "/v3/kv/range", 503, "{\"error\":\"etcdserver: leader changed\",\"code\":14}",
		  false, false, NULL },
	};
	const struct fake_reply rb[] = {
		{ "/v3/kv/range", 200, "{" HDR ",\"count\":\"1\"}", false, false, NULL },
		{ "/v3/kv/put", 503, timed_out, false, false, NULL },
	};
	struct pair p;
	pair_start(&p, ra, 1, rb, 2);
	struct event_base *base = p.base;
	struct etcd_client *c = p.c;
	struct fake *a = &p.a, *b = &p.b;
	struct got g = { 0 };
	etcd_kv_range(c, &range_k, on_result, &g);
	run_until(base, &g.done, 2000);
	/* a read is retried elsewhere */
	assert_int_equal(g.r.outcome, ETCD_OK);
	assert_string_equal(g.endpoint, b->url);

	/* a write that may have been done is not */
	g = (struct got){ 0 };
	etcd_kv_put(c, &put_kv, on_result, &g);
	run_until(base, &g.done, 2000);
	assert_int_equal(g.r.outcome, ETCD_UNKNOWN);
	assert_int_equal(g.r.http_status, 503);
	assert_non_null(strstr(g.error, "request timed out"));
	assert_string_equal(g.endpoint, b->url);
	assert_int_equal(a->hits, 1);
	pair_stop(&p);
}

static void test_definite_answers(void **state)
{
	(void)state;
	const struct fake_reply ra[] = {
		{ "/v3/lease/revoke", 404, "{\"error\":\"etcdserver: requested lease not found\","
		  "\"message\":\"etcdserver: requested lease not found\",\"code\":5}",
		  true, false, NULL },
		{ "/v3/lease/keepalive", 200, "{\"result\":{" HDR ",\"ID\":\"7\"}}\n", true, false, NULL },
		{ "/v3/lease/keepalive", 200, "{\"error\":{\"grpc_code\":14,\"http_code\":503,"
		  "\"message\":\"etcdserver: no leader\",\"http_status\":\"Service Unavailable\"}}",
		  true, false, NULL },
	};
	const struct fake_reply rb[] = {
		{ "/v3/lease/keepalive", 200, "{\"result\":{" HDR ",\"ID\":\"7\",\"TTL\":\"6\"}}\n",
		  true, false, NULL },
	};
	struct pair p;
	pair_start(&p, ra, 3, rb, 1);
	struct event_base *base = p.base;
	struct etcd_client *c = p.c;
	struct fake *b = &p.b;

	struct got g = { 0 };
	etcd_lease_revoke(c, 7, on_result, &g);
	run_until(base, &g.done, 2000);
	assert_int_equal(g.r.outcome, ETCD_FAILED);
	assert_int_equal(g.r.http_status, 404);
	assert_int_equal(g.r.grpc_code, 5);
	assert_int_equal(b->hits, 0);

	/* a gone lease: 200 without TTL */
	g = (struct got){ 0 };
	etcd_lease_keepalive(c, 7, on_result, &g);
	run_until(base, &g.done, 2000);
	assert_int_equal(g.r.outcome, ETCD_FAILED);
	assert_int_equal(g.r.grpc_code, 5);
	assert_non_null(strstr(g.error, "lease not found"));

	/* a stream's error object: "no leader", so elsewhere */
	g = (struct got){ 0 };
	etcd_lease_keepalive(c, 7, on_result, &g);
	run_until(base, &g.done, 2000);
	assert_int_equal(g.r.outcome, ETCD_OK);
	assert_int_equal(g.ttl, 6);
	assert_string_equal(g.endpoint, b->url);
	pair_stop(&p);
}

static void test_refused_everywhere(void **state)
{
	(void)state;
	struct event_base *base = event_base_new();
	char u1[64], u2[64];
	int fd1 = refusing_port(u1, sizeof(u1)), fd2 = refusing_port(u2, sizeof(u2));
	const char *eps[] = { u1, u2 };
	struct etcd_client *c = client_new(base, eps, 2, NULL, NULL);
	struct got g = { 0 };
	double t0 = now_ms();
	etcd_kv_put(c, &put_kv, on_result, &g);
	run_until(base, &g.done, 2000);
	/* never sent anywhere: a definite no, at once */
	assert_int_equal(g.r.outcome, ETCD_FAILED);
	assert_int_equal(g.r.grpc_code, 14);
	assert_int_equal(g.r.http_status, 0);
	assert_non_null(strstr(g.error, "cannot connect"));
	assert_true(now_ms() - t0 < 250);
	etcd_client_free(&c);
	close(fd1);
	close(fd2);
	event_base_free(base);
}

static void test_timeout_after_connect_is_unknown(void **state)
{
	(void)state;
	struct event_base *base = event_base_new();
	/* the kernel accepts, nobody answers: a frozen member */
	int fd = socket(AF_INET, SOCK_STREAM, 0);
	struct sockaddr_in sin = { .sin_family = AF_INET };
	sin.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	assert_int_equal(bind(fd, (struct sockaddr *)&sin, sizeof(sin)), 0);
	assert_int_equal(listen(fd, 8), 0);
	socklen_t len = sizeof(sin);
	getsockname(fd, (struct sockaddr *)&sin, &len);
	char url[64];
	snprintf(url, sizeof(url), "http://127.0.0.1:%u", ntohs(sin.sin_port));
	const char *eps[] = { url };
	struct etcd_client *c = client_new(base, eps, 1, NULL, NULL);
	struct got g = { 0 };
	double t0 = now_ms();
	etcd_kv_put(c, &put_kv, on_result, &g);
	run_until(base, &g.done, 2000);
	double took = now_ms() - t0;
	assert_int_equal(g.r.outcome, ETCD_UNKNOWN);
	assert_int_equal(g.r.grpc_code, 4);
	assert_non_null(strstr(g.error, "no answer within 300 ms"));
	assert_true(took >= 290 && took < 800);
	etcd_client_free(&c);
	close(fd);
	event_base_free(base);
}

static void test_token_auth_and_renewal(void **state)
{
	(void)state;
	struct event_base *base = event_base_new();
	const char *expired = "{\"error\":\"etcdserver: invalid auth token\","
		"\"message\":\"etcdserver: invalid auth token\",\"code\":16}";
	const struct fake_reply replies[] = {
		{ "/v3/auth/authenticate", 200, "{" HDR ",\"token\":\"t1.1\"}", false, false, NULL },
		{ "/v3/auth/authenticate", 200, "{" HDR ",\"token\":\"t2.2\"}", false, false, NULL },
		{ "/v3/kv/put", 401, expired, false, false, "t1.1" },
		{ "/v3/kv/put", 200, "{" HDR "}", false, false, "t2.2" },
		{ "/v3/auth/authenticate", 400, "{\"error\":\"etcdserver: authentication failed, "
		  "invalid user ID or password\",\"code\":3}", false, false, NULL },
	};
	struct fake f;
	fake_start(&f, base, replies, 5);
	const char *eps[] = { f.url };
	struct etcd_client *c = client_new(base, eps, 1, "loft", "pw \"x\"");
	struct got g = { 0 };
	etcd_kv_put(c, &put_kv, on_result, &g);
	run_until(base, &g.done, 2000);
	/* the expired token was replaced and the put sent once more */
	assert_int_equal(g.r.outcome, ETCD_OK);
	assert_string_equal(f.auth, "t2.2");
	assert_int_equal(f.hits, 4);
	assert_non_null(strstr(sbuf_cstr(&f.bodies),
			       "{\"name\":\"loft\",\"password\":\"pw \\\"x\\\"\"}"));
	etcd_client_free(&c);

	/* a refused password fails what waited for it */
	c = client_new(base, eps, 1, "loft", "wrong");
	g = (struct got){ 0 };
	etcd_kv_put(c, &put_kv, on_result, &g);
	run_until(base, &g.done, 2000);
	assert_int_equal(g.r.outcome, ETCD_FAILED);
	assert_int_equal(g.r.http_status, 400);
	assert_non_null(strstr(g.error, "authenticate at"));
	assert_non_null(strstr(g.error, "invalid user ID or password"));
	etcd_client_free(&c);
	fake_stop(&f);
	event_base_free(base);
}

static void test_cancel_and_free_inside_callback(void **state)
{
	(void)state;
	struct event_base *base = event_base_new();
	const struct fake_reply replies[] = {
		{ NULL, 200, "{" HDR "}", false, false, NULL },
		{ NULL, 200, "{" HDR "}", false, false, NULL },
		{ NULL, 200, "{" HDR "}", false, false, NULL },
	};
	struct fake f;
	fake_start(&f, base, replies, 3);
	const char *eps[] = { f.url };
	struct etcd_client *c = client_new(base, eps, 1, NULL, NULL);
	struct got canceled = { 0 }, first = { 0 }, last = { 0 };
	struct etcd_request *req = etcd_kv_put(c, &put_kv, on_result, &canceled);
	etcd_request_cancel(&req);
	assert_null(req);
	first.free_client = &c;
	etcd_kv_put(c, &put_kv, on_result, &first);
	etcd_kv_range(c, &range_k, on_result, &last);
	run_until(base, &first.done, 2000);
	/* the client went in the first callback, the rest with it */
	assert_null(c);
	run_for(base, 100);
	assert_int_equal(canceled.calls, 0);
	assert_int_equal(first.calls, 1);
	assert_int_equal(last.calls, 0);
	fake_stop(&f);
	event_base_free(base);
}

/* ---- watches ---- */

struct updates {
	unsigned int count;
	enum etcd_watch_kind kinds[32];
	int64_t revisions[32];
	char reasons[32][96];
	int64_t events[64];	/* mod_revision of each event */
	unsigned int event_count;
	int64_t compact_revision;
	struct etcd_watch **free_on_final;
	unsigned int free_after;	/* free the watch at this many updates */
	bool final;
};

static void on_watch(const struct etcd_watch_update *u, void *ctx)
{
	struct updates *w = ctx;
	unsigned int i = w->count++;
	assert_true(i < 32);
	w->kinds[i] = u->kind;
	w->revisions[i] = u->revision;
	snprintf(w->reasons[i], sizeof(w->reasons[i]), "%s", u->reason != NULL ? u->reason : "");
	for (size_t e = 0; e < u->event_count; e++)
		w->events[w->event_count++] = u->events[e].kv.mod_revision;
	if (u->kind == ETCD_WATCH_COMPACTED) {
		w->compact_revision = u->compact_revision;
		w->final = true;
	}
	if (w->free_on_final != NULL &&
	    (u->kind == ETCD_WATCH_COMPACTED || w->count == w->free_after)) {
		etcd_watch_free(w->free_on_final);
		w->final = true;
	}
}

#define EV(rev, val) "{\"kv\":{\"key\":\"L3cvaw==\",\"mod_revision\":\"" #rev "\"," \
	"\"value\":\"" val "\"}}"

static void test_watch_resumes_without_loss_or_repeat(void **state)
{
	(void)state;
	/* A: created at 10, events 11 and 12, then "no leader" without a
	 * newline; B: created, 12 again (a replay), 13 */
	const struct fake_reply ra[] = {
		{ "/v3/watch", 200,
		  "{\"result\":{\"header\":{\"revision\":\"10\"},\"created\":true}}\n"
		  "{\"result\":{\"header\":{\"revision\":\"12\"},\"events\":[" EV(11, "MQ==") "]}}\n"
		  "{\"result\":{\"header\":{\"revision\":\"12\"},\"events\":[" EV(12, "Mg==") "]}}\n"
		  "{\"error\":{\"grpc_code\":14,\"http_code\":503,\"message\":\"etcdserver: no leader\","
		  "\"http_status\":\"Service Unavailable\"}}", true, false, NULL },
	};
	const struct fake_reply rb[] = {
		{ "/v3/watch", 200,
		  "{\"result\":{\"header\":{\"revision\":\"12\"},\"created\":true}}\n"
		  "{\"result\":{\"header\":{\"revision\":\"13\"},\"events\":[" EV(12, "Mg==") ","
		  EV(13, "Mw==") "]}}\n"
		  "{\"result\":{\"header\":{\"revision\":\"20\"}}}\n", true, true, NULL },
	};
	struct pair p;
	pair_start(&p, ra, 1, rb, 1);
	struct event_base *base = p.base;
	struct etcd_client *c = p.c;
	struct fake *a = &p.a, *b = &p.b;
	struct updates w = { 0 };
	struct etcd_watch_params wp = { .key = "/w/", .key_len = 3, .prefix = true };
	struct etcd_watch *watch = etcd_watch_start(c, &wp, on_watch, &w);
	assert_int_equal(w.count, 0);
	double end = now_ms() + 2000;
	while (w.count < 7 && now_ms() < end)
		run_for(base, 10);
	const enum etcd_watch_kind want[] = {
		ETCD_WATCH_CREATED, ETCD_WATCH_EVENTS, ETCD_WATCH_EVENTS, ETCD_WATCH_LOST,
		ETCD_WATCH_CREATED, ETCD_WATCH_EVENTS, ETCD_WATCH_PROGRESS,
	};
	assert_int_equal(w.count, 7);
	for (unsigned int i = 0; i < 7; i++)
		assert_int_equal(w.kinds[i], want[i]);
	assert_string_equal(w.reasons[3], "etcd: etcdserver: no leader");
	assert_int_equal(w.event_count, 3);
	assert_int_equal(w.events[0], 11);
	assert_int_equal(w.events[1], 12);
	assert_int_equal(w.events[2], 13);
	assert_int_equal(w.revisions[6], 20);
	assert_int_equal(etcd_watch_get_revision(watch), 20);
	/* the first from now, the second from after the last delivered */
	assert_string_equal(sbuf_cstr(&a->bodies),
			    "{\"create_request\":{\"key\":\"L3cv\",\"range_end\":\"L3cw\","
			    "\"prev_kv\":true,\"progress_notify\":true}}\n");
	assert_non_null(strstr(sbuf_cstr(&b->bodies), "\"start_revision\":\"13\""));
	assert_string_equal(b->hasleader, "true");
	etcd_watch_free(&watch);
	pair_stop(&p);
}

static void test_watch_idle_then_compacted(void **state)
{
	(void)state;
	const struct fake_reply ra[] = {
		{ "/v3/watch", 200, "{\"result\":{\"header\":{\"revision\":\"10\"},\"created\":true}}\n",
		  true, true, NULL },
	};
	const struct fake_reply rb[] = {
		{ "/v3/watch", 200, "{\"result\":{\"header\":{\"revision\":\"30\"},\"created\":true}}\n"
		  "{\"result\":{\"header\":{\"raft_term\":\"2\"},\"canceled\":true,"
		  "\"compact_revision\":\"26\"}}\n", true, true, NULL },
	};
	struct pair p;
	pair_start(&p, ra, 1, rb, 1);
	struct event_base *base = p.base;
	struct etcd_client *c = p.c;
	struct fake *a = &p.a, *b = &p.b;
	struct updates w = { 0 };
	struct etcd_watch *watch;
	w.free_on_final = &watch;
	struct etcd_watch_params wp = { .key = "/w/k", .key_len = 4, .start_revision = 3 };
	double t0 = now_ms();
	watch = etcd_watch_start(c, &wp, on_watch, &w);
	run_until(base, &w.final, 2000);
	/* silent for the idle time: lost; then compacted, final, freed
	 * inside its own callback */
	assert_int_equal(w.count, 4);
	assert_int_equal(w.kinds[0], ETCD_WATCH_CREATED);
	assert_int_equal(w.kinds[1], ETCD_WATCH_LOST);
	assert_string_equal(w.reasons[1], "nothing received for 200 ms");
	assert_true(now_ms() - t0 >= 190);
	assert_int_equal(w.kinds[2], ETCD_WATCH_CREATED);
	assert_int_equal(w.kinds[3], ETCD_WATCH_COMPACTED);
	assert_int_equal(w.compact_revision, 26);
	assert_null(watch);
	assert_non_null(strstr(sbuf_cstr(&b->bodies), "\"start_revision\":\"3\""));
	run_for(base, 300);
	assert_int_equal(w.count, 4);
	assert_int_equal(a->hits + b->hits, 2);
	pair_stop(&p);
}

static void test_watch_backs_off(void **state)
{
	(void)state;
	struct event_base *base = event_base_new();
	char u1[64], u2[64];
	int fd1 = refusing_port(u1, sizeof(u1)), fd2 = refusing_port(u2, sizeof(u2));
	const char *eps[] = { u1, u2 };
	struct etcd_client *c = client_new(base, eps, 2, NULL, NULL);
	struct updates w = { 0 };
	struct etcd_watch *watch;
	w.free_on_final = &watch;
	w.free_after = 5;
	struct etcd_watch_params p = { .key = "/w/", .key_len = 3, .prefix = true };
	double t0 = now_ms();
	watch = etcd_watch_start(c, &p, on_watch, &w);
	run_until(base, &w.final, 3000);
	double took = now_ms() - t0;
	/* each endpoint at once, then after 100 ms, then 200 ms */
	assert_int_equal(w.count, 5);
	for (unsigned int i = 0; i < 5; i++) {
		assert_int_equal(w.kinds[i], ETCD_WATCH_LOST);
		assert_string_equal(w.reasons[i], "cannot connect");
	}
	assert_true(took >= 290 && took < 1500);
	assert_null(watch);
	etcd_client_free(&c);
	close(fd1);
	close(fd2);
	event_base_free(base);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_client_settings),
		cmocka_unit_test(test_request_headers),
		cmocka_unit_test(test_no_leader_fails_over),
		cmocka_unit_test(test_unknown_writes_retried_reads),
		cmocka_unit_test(test_definite_answers),
		cmocka_unit_test(test_refused_everywhere),
		cmocka_unit_test(test_timeout_after_connect_is_unknown),
		cmocka_unit_test(test_token_auth_and_renewal),
		cmocka_unit_test(test_cancel_and_free_inside_callback),
		cmocka_unit_test(test_watch_resumes_without_loss_or_repeat),
		cmocka_unit_test(test_watch_idle_then_compacted),
		cmocka_unit_test(test_watch_backs_off),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
