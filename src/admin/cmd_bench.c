/* Benchmark hooks on the admin socket, compiled only into a bench build
 * (make BENCH_HOOKS=1, -DLOFT_BENCH_HOOKS): a normal loftd has neither the
 * command nor this code. bench/ring.py fills the registries of real ring
 * nodes with synthetic sessions through it, to time ring-wide who and
 * kick at counts that real TCP sessions cannot reach on one machine.
 *
 *   BENCH-FAKE-SESSIONS\t<count>\t<user prefix>[\t<backend a>\t<backend b>]
 *     -> "OK\t<sessions now registered>"
 *
 * Session i is user "<prefix>a-<i/4>" for i%4 in 0,1 and "<prefix>b-<i/4>"
 * for 2,3 (two sessions per user, as bench/registry_kick.c registers),
 * state proxying, from 10.<i> spread over a /8, routed to backend a
 * (default 10.255.0.1) or b (10.255.0.2) by its letter: a kick by -h a
 * or by the mask "*a-*" selects half of them. Their ids have the top bit
 * set, out of reach of loftd's own (below 2^62, proxy_id_seed()), so nothing that finds a
 * session by id can take one of these for a real one.
 *
 * A kick marks the session and queues it; the queue is emptied on a later
 * loop turn (never inside the registry walk that kicked), as real
 * sessions close. A shutdown (loftd stopping) removes it at once. */
#ifdef LOFT_BENCH_HOOKS

#include <stdlib.h>
#include <string.h>

#include <event2/event.h>

#include "admin/admin_private.h"
#include "common/clock.h"
#include "common/list.h"
#include "common/xmalloc.h"
#include "registry/registry.h"

#define ADMIN_BENCH_ID_BASE (UINT64_C(1) << 63)
#define ADMIN_BENCH_MAX_COUNT 10000000UL

struct admin_bench {
	struct registry *registry;
	struct event *reap;	/* removes the kicked sessions */
	struct list kicked;	/* struct admin_bench_session through kicked_node */
	uint64_t next_id;
};

struct admin_bench_session {
	struct registry_entry reg;
	struct admin_bench *bench;
	struct list_node kicked_node;
};

static struct admin_bench_session *admin_bench_session_of(struct registry_entry *e)
{
	return CONTAINER_OF(e, struct admin_bench_session, reg);
}

static void admin_bench_session_free(struct admin_bench_session *s)
{
	registry_remove(s->bench->registry, &s->reg);
	free(s);
}

static void admin_bench_reap(evutil_socket_t fd, short what, void *arg)
{
	struct admin_bench *b = arg;
	struct list_node *n;
	(void)fd;
	(void)what;
	while ((n = list_pop_head(&b->kicked)) != NULL)
		admin_bench_session_free(CONTAINER_OF(n, struct admin_bench_session,
						      kicked_node));
}

static void admin_bench_kick(struct registry_entry *e, const char *text)
{
	struct admin_bench_session *s = admin_bench_session_of(e);
	(void)text;
	list_append(&s->bench->kicked, &s->kicked_node);
	event_active(s->bench->reap, EV_TIMEOUT, 0);
}

/* Closes at once: loftd is stopping. */
static void admin_bench_shutdown(struct registry_entry *e, const char *text)
{
	struct admin_bench_session *s = admin_bench_session_of(e);
	(void)text;
	if (e->kicked)
		list_unlink(&s->bench->kicked, &s->kicked_node);
	admin_bench_session_free(s);
}

static struct admin_bench *admin_bench_get(struct admin_ctx *ctx)
{
	if (ctx->bench == NULL) {
		struct admin_bench *b = xcalloc(1, sizeof(*b));
		b->registry = ctx->registry;
		b->reap = event_new(ctx->base, -1, 0, admin_bench_reap, b);
		list_init(&b->kicked);
		b->next_id = ADMIN_BENCH_ID_BASE;
		ctx->bench = b;
	}
	return ctx->bench;
}

void admin_bench_free(struct admin_ctx *ctx)
{
	struct admin_bench *b = ctx->bench;
	if (b == NULL)
		return;
	admin_bench_reap(-1, 0, b);
	struct registry_entry *e = registry_first(b->registry), *next;
	for (; e != NULL; e = next) {
		next = registry_entry_of(e->node.next);
		if (e->kick == admin_bench_kick)
			admin_bench_session_free(admin_bench_session_of(e));
	}
	event_free(b->reap);
	free(b);
	ctx->bench = NULL;
}

static void admin_bench_add(struct admin_bench *b, const char *prefix, size_t i,
			    const struct ipaddr backends[2], uint64_t start_ms)
{
	struct admin_bench_session *s = xcalloc(1, sizeof(*s));
	size_t half = (i / 2) % 2;
	char *user = xasprintf("%s%c-%zu", prefix, half == 0 ? 'a' : 'b', i / 4);
	s->bench = b;
	s->reg.id = ++b->next_id;
	s->reg.service = "imap";
	s->reg.state = REGISTRY_STATE_PROXYING;
	s->reg.director_tag = REGISTRY_TAG_NONE;
	s->reg.start_ms = start_ms;
	s->reg.kick = admin_bench_kick;
	s->reg.shutdown = admin_bench_shutdown;
	s->reg.client_ip.family = AF_INET;
	s->reg.client_ip.u.v4.s_addr = htonl(0x0a000000u | (uint32_t)(i % 0xffffff));
	s->reg.client_port = (uint16_t)(1024 + i % 60000);
	registry_add(b->registry, &s->reg);
	registry_set_user(b->registry, &s->reg, user, 0);
	free(user);
	registry_set_backend(b->registry, &s->reg, &backends[half], 143, NULL);
}

static void cmd_bench_fake_sessions(struct admin_request *req, char **args, int nargs)
{
	char *end;
	unsigned long count = strtoul(args[0], &end, 10);
	if (args[0][0] == '\0' || *end != '\0' || count > ADMIN_BENCH_MAX_COUNT) {
		admin_reply_error(req->out, "BENCH-FAKE-SESSIONS: invalid count");
		return;
	}
	struct ipaddr backends[2];
	const char *names[2] = { "10.255.0.1", "10.255.0.2" };
	if (nargs == 4) {
		names[0] = args[2];
		names[1] = args[3];
	} else if (nargs != 2) {
		admin_reply_error(req->out, "BENCH-FAKE-SESSIONS: two backends or none");
		return;
	}
	for (size_t i = 0; i < 2; i++) {
		if (ipaddr_parse(names[i], &backends[i]) < 0) {
			admin_reply_error(req->out, "BENCH-FAKE-SESSIONS: invalid backend");
			return;
		}
	}
	struct admin_bench *b = admin_bench_get(req->ctx);
	uint64_t start_ms = clock_wall_ms();
	for (size_t i = 0; i < count; i++)
		admin_bench_add(b, args[1], i, backends, start_ms);
	sbuf_appendf(req->out, "OK\t%zu\n", registry_count(b->registry));
}

const struct admin_cmd admin_bench_cmds[] = {
	{ "BENCH-FAKE-SESSIONS", 2, 4, cmd_bench_fake_sessions },
	{ NULL, 0, 0, NULL },
};

#endif
