/* Director commands of the admin socket (reference §4.2), answering as a
 * Dovecot 2.3 director in a ring of one: doveadm director ... works
 * against them. Unlike Dovecot, invalid parameters get an "ERROR" line
 * instead of a hang-up, and no pipelined line is ever dropped.
 *
 * loft's own additions, for loftadm: USER-HASH and USER-LIST-NAMES
 * (admin_wire.h). */
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "admin/admin_private.h"
#include "admin/admin_wire.h"
#include "common/tabescape.h"
#include "director/director.h"
#include "ring/ring.h"

static const char *const director_result_replies[] = {
	[DIRECTOR_OK] = "OK",
	[DIRECTOR_NOTFOUND] = "NOTFOUND",
	[DIRECTOR_TRYAGAIN] = "TRYAGAIN",
};

static void director_change_replied(void *ctx, const struct director_change_result *r)
{
	struct admin_pending *pending = ctx;
	admin_pending_reply(&pending, r->result == DIRECTOR_INVALID ? r->error :
			    director_result_replies[r->result]);
}

/* Every change goes through the director's request layer, which answers
 * on a later turn (a ring: once every node applied it); this client's
 * next line waits for the answer. */
static void director_request(struct admin_request *req, struct director_change *c)
{
	c->now = time(NULL);
	director_change(req->ctx->director, c, director_change_replied,
			admin_request_defer(req));
}

/* "ip" or "ip@tag"; tag_r is NULL without '@'. */
static int director_parse_host(char *arg, struct ipaddr *ip_r, const char **tag_r)
{
	char *at = strchr(arg, '@');
	*tag_r = NULL;
	if (at != NULL) {
		*at = '\0';
		*tag_r = at + 1;
	}
	return ipaddr_parse(arg, ip_r);
}

static int director_parse_uint(const char *s, unsigned int max, unsigned int *v_r)
{
	char *end;
	if (*s < '0' || *s > '9')
		return -1;
	unsigned long v = strtoul(s, &end, 10);
	if (*end != '\0' || v > max)
		return -1;
	*v_r = (unsigned int)v;
	return 0;
}

/* A user given by name, or by hash when purely numeric (§4.2). */
static uint32_t director_parse_user(struct director *d, const char *arg)
{
	unsigned int hash;
	if (director_parse_uint(arg, UINT32_MAX, &hash) == 0)
		return hash;
	return director_user_hash(d, arg);
}

/* ip vhost_count user_count tag U|D last_updown_change, then "" */
static void cmd_host_list(struct admin_request *req, char **args, int nargs)
{
	const struct director_host_list *hosts = director_hosts(req->ctx->director);
	(void)args;
	(void)nargs;

	for (size_t i = 0; i < hosts->count; i++) {
		const struct director_host *h = hosts->hosts[i];
		sbuf_appendf(req->out, "%s\t%u\t%u\t", h->ip_str, h->vhost_count,
			     h->user_count);
		tabescape_append(req->out, h->tag);
		sbuf_appendf(req->out, "\t%c\t%lld\n", h->down ? 'D' : 'U',
			     (long long)h->last_updown);
	}
	sbuf_appendc(req->out, '\n');
}

static const char *const director_health_names[] = {
	[DIRECTOR_HEALTH_UNKNOWN] = "unknown",
	[DIRECTOR_HEALTH_OK] = "ok",
	[DIRECTOR_HEALTH_FAILING] = "failing",
};

static void cmd_host_health(struct admin_request *req, char **args, int nargs)
{
	const struct director_host_list *hosts = director_hosts(req->ctx->director);
	(void)args;
	(void)nargs;
	for (size_t i = 0; director_health_enabled(req->ctx->director) &&
	     i < hosts->count; i++) {
		const struct director_host *h = hosts->hosts[i];
		sbuf_appendf(req->out, "%s\t%s\t%lld\t", h->ip_str,
			     director_health_names[h->health], (long long)h->health_changed);
		tabescape_append(req->out, h->health_error != NULL ? h->health_error : "");
		sbuf_appendc(req->out, '\n');
	}
	sbuf_appendc(req->out, '\n');
}

static void host_list_removed_one(const struct director_host *h, void *ctx)
{
	sbuf_appendf(ctx, "%s\n", h->ip_str);
}

static void cmd_host_list_removed(struct admin_request *req, char **args, int nargs)
{
	(void)args;
	(void)nargs;
	director_removed_hosts(req->ctx->director, host_list_removed_one, req->out);
	sbuf_appendc(req->out, '\n');
}

static void cmd_host_set(struct admin_request *req, char **args, int nargs)
{
	struct director_change c = { .type = DIRECTOR_CHANGE_HOST_SET, .vhosts = -1 };
	unsigned int vhosts = 0;
	if (director_parse_host(args[0], &c.ip, &c.tag) < 0 ||
	    (nargs > 1 && director_parse_uint(args[1], INT_MAX, &vhosts) < 0)) {
		admin_reply_error(req->out, "HOST-SET: invalid parameters");
		return;
	}
	if (nargs > 1)
		c.vhosts = (int)vhosts;
	director_request(req, &c);
}

static void cmd_host_update(struct admin_request *req, char **args, int nargs)
{
	struct director_change c = { .type = DIRECTOR_CHANGE_HOST_UPDATE };
	unsigned int vhosts;
	(void)nargs;
	if (ipaddr_parse(args[0], &c.ip) < 0 ||
	    director_parse_uint(args[1], INT_MAX, &vhosts) < 0) {
		admin_reply_error(req->out, "HOST-UPDATE: invalid parameters");
		return;
	}
	c.vhosts = (int)vhosts;
	director_request(req, &c);
}

/* HOST-UP, HOST-DOWN, HOST-REMOVE: one address. */
static void director_cmd_host(struct admin_request *req, char **args,
			      enum director_change_type type)
{
	struct director_change c = { .type = type };
	if (ipaddr_parse(args[0], &c.ip) < 0) {
		admin_reply_error(req->out, "invalid host address");
		return;
	}
	director_request(req, &c);
}

static void cmd_host_up(struct admin_request *req, char **args, int nargs)
{
	(void)nargs;
	director_cmd_host(req, args, DIRECTOR_CHANGE_HOST_UP);
}

static void cmd_host_down(struct admin_request *req, char **args, int nargs)
{
	(void)nargs;
	director_cmd_host(req, args, DIRECTOR_CHANGE_HOST_DOWN);
}

static void cmd_host_remove(struct admin_request *req, char **args, int nargs)
{
	(void)nargs;
	director_cmd_host(req, args, DIRECTOR_CHANGE_HOST_REMOVE);
}

/* An optional host argument: absent or empty means every host. */
static int director_parse_optional_host(char **args, int nargs, struct ipaddr *ip,
					bool *all_r)
{
	*all_r = nargs == 0 || args[0][0] == '\0';
	return *all_r ? 0 : ipaddr_parse(args[0], ip);
}

static void cmd_host_flush(struct admin_request *req, char **args, int nargs)
{
	struct director_change c = { .type = DIRECTOR_CHANGE_HOST_FLUSH };
	if (director_parse_optional_host(args, nargs, &c.ip, &c.all_hosts) < 0) {
		admin_reply_error(req->out, "invalid host address");
		return;
	}
	director_request(req, &c);
}

/* Answers "OK" only when every move finished (§2.7). */
static void cmd_host_reset_users(struct admin_request *req, char **args, int nargs)
{
	struct director_change c = { .type = DIRECTOR_CHANGE_HOST_RESET };
	if (director_parse_optional_host(args, nargs, &c.ip, &c.all_hosts) < 0 ||
	    (nargs > 1 && (director_parse_uint(args[1], 1000000, &c.max_parallel) < 0 ||
			   c.max_parallel == 0))) {
		admin_reply_error(req->out, "HOST-RESET-USERS: invalid parameters");
		return;
	}
	director_request(req, &c);
}

static void cmd_user_lookup(struct admin_request *req, char **args, int nargs)
{
	struct director *d = req->ctx->director;
	struct director_lookup r;
	char cur[IPADDR_STRLEN] = "", hashed[IPADDR_STRLEN] = "",
		initial[IPADDR_STRLEN] = "";

	director_user_lookup(d, director_parse_user(d, args[0]),
			     nargs > 1 ? args[1] : "", time(NULL), &r);
	if (r.assigned)
		ipaddr_to_str(&r.current, cur);
	if (r.have_hashed)
		ipaddr_to_str(&r.hashed, hashed);
	if (r.have_initial)
		ipaddr_to_str(&r.initial, initial);
	sbuf_appendf(req->out, "%s\t%lld\t%s\t%s\n", cur,
		     (long long)(r.assigned ? r.expires : 0), hashed, initial);
}

struct user_list_ctx {
	struct sbuf *out;
	bool names;
};

static void user_list_one(const struct director_user_info *info, void *ctx)
{
	struct user_list_ctx *l = ctx;
	sbuf_appendf(l->out, "%u\t%lld\t%s", info->hash, (long long)info->expires,
		     info->host->ip_str);
	if (l->names) {
		sbuf_appendc(l->out, '\t');
		tabescape_append(l->out, info->username);
		sbuf_appendc(l->out, '\t');
		tabescape_append(l->out, info->tag);
	}
	sbuf_appendc(l->out, '\n');
}

static void director_user_list(struct admin_request *req, char **args, int nargs,
			       bool names)
{
	struct ipaddr ip;
	bool all;
	if (director_parse_optional_host(args, nargs, &ip, &all) < 0) {
		admin_reply_error(req->out, "invalid host address");
		return;
	}
	struct user_list_ctx l = { req->out, names };
	director_users_foreach(req->ctx->director, all ? NULL : &ip, time(NULL),
			       user_list_one, &l);
	sbuf_appendc(req->out, '\n');
}

static void cmd_user_list(struct admin_request *req, char **args, int nargs)
{
	director_user_list(req, args, nargs, false);
}

static void cmd_user_list_names(struct admin_request *req, char **args, int nargs)
{
	director_user_list(req, args, nargs, true);
}

static void cmd_user_hash(struct admin_request *req, char **args, int nargs)
{
	(void)nargs;
	sbuf_appendf(req->out, "%u\n", director_user_hash(req->ctx->director, args[0]));
}

static void cmd_user_move(struct admin_request *req, char **args, int nargs)
{
	struct director_change c = { .type = DIRECTOR_CHANGE_USER_MOVE };
	(void)nargs;
	if (ipaddr_parse(args[1], &c.ip) < 0) {
		admin_reply_error(req->out, "USER-MOVE: invalid host address");
		return;
	}
	c.user_hash = director_parse_user(req->ctx->director, args[0]);
	director_request(req, &c);
}

/* §2.9: exact names, no wildcards; OK when the kick started. */
static void director_cmd_kick(struct admin_request *req, const char *field,
			      const char *value)
{
	struct director_change c = {
		.type = DIRECTOR_CHANGE_USER_KICK,
		.kick_field = field,
		.kick_value = value,
	};
	director_request(req, &c);
}

/* USER-KICK-NODES: OK, then in a ring each node's name and how many
 * sessions it closed. */
static void director_kick_replied(void *ctx, const struct director_change_result *r)
{
	struct admin_pending *pending = ctx;
	if (r->result != DIRECTOR_OK) {
		director_change_replied(ctx, r);
		return;
	}
	struct sbuf line = SBUF_INIT;
	sbuf_appends(&line, "OK");
	for (size_t i = 0; i < r->kick_nodes; i++) {
		sbuf_appendc(&line, '\t');
		tabescape_append(&line, r->kick_node_names[i]);
		sbuf_appendf(&line, "\t%zu", r->kick_node_counts[i]);
	}
	admin_pending_reply(&pending, sbuf_cstr(&line));
	sbuf_free(&line);
}

static void cmd_user_kick_nodes(struct admin_request *req, char **args, int nargs)
{
	struct director_change c = {
		.type = DIRECTOR_CHANGE_USER_KICK,
		.kick_field = nargs > 1 ? args[0] : NULL,
		.kick_value = args[nargs - 1],
		.now = time(NULL),
	};
	director_change(req->ctx->director, &c, director_kick_replied,
			admin_request_defer(req));
}

static void cmd_user_kick(struct admin_request *req, char **args, int nargs)
{
	(void)nargs;	/* "nowait": kicks never wait here */
	director_cmd_kick(req, NULL, args[0]);
}

static void cmd_user_kick_alt(struct admin_request *req, char **args, int nargs)
{
	(void)nargs;
	director_cmd_kick(req, args[0], args[1]);
}

/* §4.4: a ring of one: this director, synced */
/* ip port type last_failed status ping_ms (§4.4): every node of the
 * ring, this one typed "self" */
static void director_list_one(const struct ring_member_info *m, void *ctx)
{
	struct sbuf *out = ctx;
	tabescape_append(out, m->address);
	/* the others are no connections of this node: typed "peer", never
	 * empty (doveadm's table does not pad an empty field) */
	sbuf_appendf(out, "\t%u\t%s\t%lld\t", m->port, m->self ? "self" : "peer",
		     (long long)m->last_failed);
	tabescape_append(out, m->status);
	sbuf_appendf(out, "\t%u\n", m->ping_ms);
}

static void cmd_director_list(struct admin_request *req, char **args, int nargs)
{
	(void)args;
	(void)nargs;
	if (req->ctx->ring != NULL) {
		ring_members_foreach(req->ctx->ring, director_list_one, req->out);
		sbuf_appendc(req->out, '\n');
		return;
	}
	/* a ring of one: this director, synced */
	sbuf_appends(req->out, req->ctx->self_ip);
	sbuf_appends(req->out, "\t0\tself\t0\tring synced\t0\n\n");
}

static void director_ring_replied(void *ctx, const char *line)
{
	struct admin_pending *pending = ctx;
	admin_pending_reply(&pending, line);
}

/* DIRECTOR-ADD and DIRECTOR-REMOVE <ip> [<port>] (reference §3.7): the
 * ring's (doc/ring.md §8); a ring of one has no other directors. */
static void director_ring_cmd(struct admin_request *req, char **args, int nargs,
			      void (*ring_fn)(struct ring *, const struct ipaddr *,
					      unsigned int, ring_director_reply_cb *, void *))
{
	struct ipaddr ip, self;
	unsigned int port = 0;
	if (ipaddr_parse(args[0], &ip) < 0) {
		admin_reply_error(req->out, "invalid director address");
		return;
	}
	if (nargs > 1 && (director_parse_uint(args[1], 65535, &port) < 0 || port == 0)) {
		admin_reply_error(req->out, "invalid director port");
		return;
	}
	if (req->ctx->ring != NULL) {
		ring_fn(req->ctx->ring, &ip, port, director_ring_replied,
			admin_request_defer(req));
	} else if (ring_fn == ring_director_add) {
		admin_reply_error(req->out, "this loftd is a director ring of one "
				  "(ring.etcd is empty): it has no other directors");
	} else if (ipaddr_parse(req->ctx->self_ip, &self) == 0 && ipaddr_equal(&ip, &self)) {
		admin_reply_error(req->out, "a director cannot remove itself");
	} else {
		sbuf_appends(req->out, "NOTFOUND\n");
	}
}

static void cmd_director_add(struct admin_request *req, char **args, int nargs)
{
	director_ring_cmd(req, args, nargs, ring_director_add);
}

static void cmd_director_remove(struct admin_request *req, char **args, int nargs)
{
	director_ring_cmd(req, args, nargs, ring_director_remove);
}

const struct admin_cmd admin_director_cmds[] = {
	{ "HOST-LIST", 0, 0, cmd_host_list },
	{ "HOST-LIST-REMOVED", 0, 0, cmd_host_list_removed },
	{ "HOST-SET", 1, 2, cmd_host_set },
	{ "HOST-UPDATE", 2, 2, cmd_host_update },
	{ "HOST-UP", 1, 1, cmd_host_up },
	{ "HOST-DOWN", 1, 1, cmd_host_down },
	{ "HOST-REMOVE", 1, 1, cmd_host_remove },
	{ "HOST-FLUSH", 0, 1, cmd_host_flush },
	{ "HOST-RESET-USERS", 0, 2, cmd_host_reset_users },
	{ "USER-LOOKUP", 1, 2, cmd_user_lookup },
	{ "USER-LIST", 0, 1, cmd_user_list },
	{ ADMIN_CMD_USER_LIST_NAMES, 0, 1, cmd_user_list_names },
	{ ADMIN_CMD_HOST_HEALTH, 0, 0, cmd_host_health },
	{ ADMIN_CMD_USER_HASH, 1, 1, cmd_user_hash },
	{ "USER-MOVE", 2, 2, cmd_user_move },
	{ "USER-KICK", 1, 2, cmd_user_kick },
	{ "USER-KICK-ALT", 2, 3, cmd_user_kick_alt },
	{ ADMIN_CMD_USER_KICK_NODES, 1, 2, cmd_user_kick_nodes },
	{ "DIRECTOR-LIST", 0, 0, cmd_director_list },
	{ "DIRECTOR-ADD", 1, 2, cmd_director_add },
	{ "DIRECTOR-REMOVE", 1, 2, cmd_director_remove },
	{ NULL, 0, 0, NULL },
};
