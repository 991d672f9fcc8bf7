/* Shared by the admin socket's command files. Internal to src/admin. */
#ifndef LOFT_ADMIN_PRIVATE_H
#define LOFT_ADMIN_PRIVATE_H

#include "admin/admin.h"
#include "common/macros.h"
#include "common/sbuf.h"
#include "registry/filter.h"

struct admin_daemon_ops;

struct event_base;
struct registry;
struct director;
#ifdef LOFT_BENCH_HOOKS
struct admin_bench;
#endif
struct ring;
struct line_client;

struct admin_ctx {
	struct event_base *base;
	struct registry *registry;
	struct director *director;
	struct ring *ring;		/* NULL: a ring of one */
	char *self_ip;			/* what DIRECTOR-LIST calls this director */
	const struct admin_daemon_ops *daemon;	/* NULL: no RELOAD, UPGRADE */
	void *daemon_ctx;
	admin_cache_flush_cb *cache_flush;	/* NULL: no auth cache to flush */
	void *cache_flush_ctx;
#ifdef LOFT_BENCH_HOOKS
	struct admin_bench *bench;	/* cmd_bench.c's sessions, or NULL */
#endif
};

/* One command being answered. */
struct admin_request {
	struct admin_ctx *ctx;
	struct sbuf *out;		/* the reply */
	struct line_client *client;
	struct admin_conn *conn;
};

/* A reply that comes later (HOST-RESET-USERS answers when done). The
 * client's next line waits meanwhile; if the client leaves, the reply is
 * dropped. */
struct admin_pending;
struct admin_pending *admin_request_defer(struct admin_request *req);
void admin_pending_reply(struct admin_pending **pending, const char *line);
/* For a reply of many lines: where they go (NULL once the client left),
 * then finish to send them and go on with the client's next line. */
struct sbuf *admin_pending_output(struct admin_pending *pending);
void admin_pending_finish(struct admin_pending **pending);

struct admin_cmd {
	const char *name;
	int min_args, max_args;
	void (*handler)(struct admin_request *req, char **args, int nargs);
};

/* NULL-terminated tables, one per command family. */
extern const struct admin_cmd admin_session_cmds[];
extern const struct admin_cmd admin_director_cmds[];
extern const struct admin_cmd admin_ring_cmds[];
extern const struct admin_cmd admin_daemon_cmds[];
extern const struct admin_cmd admin_auth_cmds[];
#ifdef LOFT_BENCH_HOOKS
/* Only in a bench build (make BENCH_HOOKS=1): cmd_bench.c. */
extern const struct admin_cmd admin_bench_cmds[];
/* Removes the synthetic sessions left and frees what they need. */
void admin_bench_free(struct admin_ctx *ctx);
#endif

/* A session command another node of the ring sent (ring_peer_command_cb,
 * ctx: the struct admin_ctx): answered as on the admin socket. */
void admin_peer_command(void *ctx, char **args, int nargs, struct sbuf *out);

/* "ERROR\t<text>\n": loft answers every bad line instead of hanging up. */
void admin_reply_error(struct sbuf *out, const char *fmt, ...) ATTR_FORMAT(2, 3);

/* A session filter read from "key=value" protocol fields. */
struct admin_filter {
	struct registry_filter f;
	const char **masks;
	struct ipaddr *dests;
	const char **hosts;
};

/* Fields: user=<mask> (repeatable), alt=<user_* field>, net=<ip[/bits]>,
 * dest=<ip> and desthost=<name or mask> (repeatable), logged-in, proxied.
 * Returns -1 with a reason for an unknown or invalid field. */
int admin_filter_parse(struct admin_filter *af, char *const *fields, int count,
		       const char **error_r);
void admin_filter_free(struct admin_filter *af);

/* Kicks the matching sessions with the protocol's goodbye `text`. Returns
 * how many; with names, also which users and how many of each. */
struct admin_kicked;
size_t admin_kick(struct registry *reg, const struct registry_filter *f,
		  const char *text, struct admin_kicked **names_r);
/* Writes "user\tcount" lines sorted by user, then frees. */
void admin_kicked_write(struct admin_kicked **names, struct sbuf *out);

#endif
