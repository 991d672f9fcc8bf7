/* Session requests to the admin socket. */
#include "cli/sessions.h"

#include <glob.h>
#include <netdb.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli/admin_client.h"
#include "common/net.h"
#include "common/tabescape.h"
#include "common/xmalloc.h"

void cli_request_init(struct cli_request *r, const char *command)
{
	memset(r, 0, sizeof(*r));
	r->fields = xgrow(r->fields, &r->cap, 1, sizeof(*r->fields));
	r->fields[r->count++] = xstrdup(command);
}

void cli_request_add(struct cli_request *r, const char *key, const char *value)
{
	r->fields = xgrow(r->fields, &r->cap, r->count + 1, sizeof(*r->fields));
	r->fields[r->count++] = value == NULL ? xstrdup(key) :
		xasprintf("%s=%s", key, value);
}

void cli_request_free(struct cli_request *r)
{
	for (size_t i = 0; i < r->count; i++)
		free(r->fields[i]);
	free(r->fields);
	memset(r, 0, sizeof(*r));
}

int cli_request_add_masks(struct cli_request *r, const struct cli_cmd *cmd,
			  int argc, char **argv, const char *alt_field,
			  size_t *masks_r, bool *net_r)
{
	*masks_r = 0;
	*net_r = false;
	for (int i = 0; i < argc; i++) {
		struct cidr net;
		if (cidr_parse(argv[i], &net) == 0) {
			if (*net_r) {
				cli_error("Multiple network masks not supported");
				return cli_usage(cmd);
			}
			*net_r = true;
			cli_request_add(r, "net", argv[i]);
		} else {
			(*masks_r)++;
			cli_request_add(r, "user", argv[i]);
		}
	}
	if (alt_field != NULL) {
		if (*masks_r == 0) {
			cli_error("Username must be given with passdb-field parameter");
			return cli_usage(cmd);
		}
		cli_request_add(r, "alt", alt_field);
	}
	return 0;
}

int cli_request_add_host(struct cli_request *r, const char *host, bool must_resolve)
{
	struct ipaddr ip;
	if (ipaddr_parse(host, &ip) == 0) {
		cli_request_add(r, "dest", host);
		return 0;
	}
	/* a backend configured under this name matches too */
	cli_request_add(r, "desthost", host);
	struct addrinfo hints = { .ai_socktype = SOCK_STREAM }, *res;
	int ret = getaddrinfo(host, NULL, &hints, &res);
	if (ret != 0) {
		if (!must_resolve)
			return 0;
		cli_error("%s: %s", host, gai_strerror(ret));
		return EX_NOHOST;
	}
	for (struct addrinfo *ai = res; ai != NULL; ai = ai->ai_next) {
		char text[IPADDR_STRLEN];
		uint16_t port;
		ipaddr_from_sockaddr(ai->ai_addr, &ip, &port);
		if (ipaddr_is_set(&ip))
			cli_request_add(r, "dest", ipaddr_to_str(&ip, text));
	}
	freeaddrinfo(res);
	return 0;
}

bool cli_take_local(int *argc, char **argv)
{
	bool local = false, options = true;
	int out = 0;
	for (int i = 0; i < *argc; i++) {
		if (options && strcmp(argv[i], "--local") == 0) {
			local = true;
			continue;
		}
		if (strcmp(argv[i], "--") == 0)
			options = false;	/* a user named --local */
		argv[out++] = argv[i];
	}
	*argc = out;
	argv[out] = NULL;
	return local;
}

/* Connects and sends the request; NULL after printing why (a socket
 * that is gone: silently, when gone_ok). */
static struct admin_client *cli_request_send(const char *path, const struct cli_request *req,
					     bool gone_ok)
{
	char *error;
	struct admin_client *c = admin_client_connect(path, &error);
	if (c == NULL && gone_ok) {
		free(error);
		return NULL;
	}
	const char **fields = xcalloc(req->count + 1, sizeof(*fields));
	size_t n = 0;
	if (!req->local)
		fields[n++] = ADMIN_CMD_RING_ALL;
	for (size_t i = 0; i < req->count; i++)
		fields[n++] = req->fields[i];
	if (c == NULL || admin_client_send(c, fields, n, &error) < 0) {
		cli_error("%s", error);
		free(error);
		admin_client_close(&c);
	}
	free(fields);
	return c;
}

/* Each line of one node's reply, up to its empty line. */
typedef int cli_got_line_cb(char *line, const char *node, void *ctx);

/* Reads lines until the empty one; calls got() for each. 0 or an exit code. */
/* The next line of a list: 0 with *line_r (NULL at the empty line that
 * ends it), or the exit code after printing why (no answer, ERROR). */
static int cli_read_next(struct admin_client *c, char **line_r)
{
	char *error;
	char *line = admin_client_read_line(c, &error);
	*line_r = NULL;
	if (line == NULL) {
		cli_error("%s", error);
		free(error);
		return EX_TEMPFAIL;
	}
	if (strncmp(line, "ERROR\t", 6) == 0) {
		cli_error("%s", line + 6);
		return EX_TEMPFAIL;
	}
	if (line[0] != '\0')
		*line_r = line;
	return 0;
}

static int cli_read_list(struct admin_client *c, const char *node, cli_got_line_cb *got,
			 void *ctx)
{
	char *line;
	int ret;
	while ((ret = cli_read_next(c, &line)) == 0 && line != NULL) {
		if ((ret = got(line, node, ctx)) != 0)
			return ret;
	}
	return ret;
}

/* A RING-ALL reply: "NODE <name> <why missing>" blocks up to an empty
 * line (admin_wire.h). */
static int cli_read_nodes(struct admin_client *c, struct cli_nodes *nodes,
			  cli_got_line_cb *got, void *ctx)
{
	char *line, *f[4];
	int ret;
	while ((ret = cli_read_next(c, &line)) == 0 && line != NULL) {
		if (tabsplit_inplace(line, f, 4) != 3 || strcmp(f[0], "NODE") != 0) {
			cli_error("Invalid %s reply: %s", ADMIN_CMD_RING_ALL, line);
			return EX_PROTOCOL;
		}
		if (f[1][0] != '\0')
			nodes->named = true;
		if (f[2][0] != '\0') {
			nodes->missing = xgrow(nodes->missing, &nodes->missing_cap,
					       nodes->missing_count + 1, sizeof(*nodes->missing));
			nodes->missing[nodes->missing_count++] = xasprintf("%s %s", f[1], f[2]);
			continue;
		}
		nodes->names = xgrow(nodes->names, &nodes->cap, nodes->count + 1,
				     sizeof(*nodes->names));
		const char *node = nodes->names[nodes->count++] = xstrdup(f[1]);
		if ((ret = cli_read_list(c, node, got, ctx)) != 0)
			return ret;
	}
	return ret;
}

/* Sends the request to one socket and reads its reply, from one node or
 * from all. */
static int cli_request_run_one(const char *path, const struct cli_request *req,
			       bool gone_ok, struct cli_nodes *nodes, cli_got_line_cb *got,
			       void *ctx)
{
	struct admin_client *c = cli_request_send(path, req, gone_ok);
	int ret;
	if (c == NULL) {
		ret = gone_ok ? 0 : EX_TEMPFAIL;
	} else if (req->local) {
		nodes->names = xgrow(nodes->names, &nodes->cap, nodes->count + 1,
				     sizeof(*nodes->names));
		const char *node = nodes->names[nodes->count++] = xstrdup("");
		ret = cli_read_list(c, node, got, ctx);
	} else {
		ret = cli_read_nodes(c, nodes, got, ctx);
	}
	admin_client_close(&c);
	return ret;
}

/* The socket's, then those of loftds an upgrade replaced that still relay
 * their sessions (<socket>.old-<pid>, loftd(8) SIGNALS): who and kick
 * see every session of the host. */
static int cli_request_run(struct cli *cli, const char *socket_arg,
			   const struct cli_request *req, struct cli_nodes *nodes,
			   cli_got_line_cb *got, void *ctx)
{
	char *path = cli_admin_socket(cli, socket_arg);
	if (path == NULL)
		return EX_TEMPFAIL;
	int ret = cli_request_run_one(path, req, false, nodes, got, ctx);
	char *pattern = xasprintf("%s.old-*", path);
	glob_t g;
	if (ret == 0 && glob(pattern, 0, NULL, &g) == 0) {
		for (size_t i = 0; i < g.gl_pathc && ret == 0; i++)
			/* a replaced loftd exits as its last session ends */
			ret = cli_request_run_one(g.gl_pathv[i], req, true, nodes, got, ctx);
		globfree(&g);
	}
	free(pattern);
	free(path);
	return ret;
}

int cli_nodes_report(const struct cli_nodes *nodes)
{
	for (size_t i = 0; i < nodes->missing_count; i++)
		cli_warning("director %s: its sessions are not included", nodes->missing[i]);
	return nodes->missing_count > 0 ? EX_TEMPFAIL : 0;
}

void cli_nodes_free(struct cli_nodes *nodes)
{
	for (size_t i = 0; i < nodes->count; i++)
		free(nodes->names[i]);
	free(nodes->names);
	for (size_t i = 0; i < nodes->missing_count; i++)
		free(nodes->missing[i]);
	free(nodes->missing);
	memset(nodes, 0, sizeof(*nodes));
}

/* How many fields a SESSION-LIST line has, or 0 after saying it is not
 * one. */
static size_t cli_session_count_fields(const char *line, size_t len)
{
	size_t n = 1;
	for (const char *t = line; (t = memchr(t, '\t', len - (size_t)(t - line))) != NULL; t++)
		n++;
	if (n < ADMIN_SESSION_FIXED_FIELDS || n > CLI_SESSION_MAX_FIELDS) {
		cli_error("Invalid SESSION-LIST reply: %s", line);
		return 0;
	}
	return n;
}

static int cli_got_session(char *line, const char *node, void *ctx)
{
	struct cli_sessions *l = ctx;
	size_t len = strlen(line), n = cli_session_count_fields(line, len);
	if (n == 0)
		return EX_PROTOCOL;
	struct cli_session s = { .fields = xmalloc(n * sizeof(char *) + len + 1), .node = node };
	char *copy = memcpy(s.fields + n, line, len + 1);
	s.nfields = tabsplit_inplace(copy, s.fields, (int)n);
	l->list = xgrow(l->list, &l->cap, l->count + 1, sizeof(*l->list));
	l->list[l->count++] = s;
	return 0;
}

int cli_sessions_list(struct cli *cli, const char *socket_arg,
		      const struct cli_request *req, struct cli_sessions *sessions)
{
	memset(sessions, 0, sizeof(*sessions));
	return cli_request_run(cli, socket_arg, req, &sessions->nodes, cli_got_session,
			       sessions);
}

struct cli_sessions_each {
	cli_session_cb *cb;
	void *ctx;
};

static int cli_got_session_each(char *line, const char *node, void *ctx)
{
	struct cli_sessions_each *each = ctx;
	char *fields[CLI_SESSION_MAX_FIELDS];
	size_t n = cli_session_count_fields(line, strlen(line));
	if (n == 0)
		return EX_PROTOCOL;
	struct cli_session s = { .fields = fields, .node = node };
	s.nfields = tabsplit_inplace(line, fields, (int)n);
	return each->cb(&s, each->ctx);
}

int cli_sessions_each(struct cli *cli, const char *socket_arg,
		      const struct cli_request *req, struct cli_nodes *nodes,
		      cli_session_cb *cb, void *ctx)
{
	struct cli_sessions_each each = { cb, ctx };
	memset(nodes, 0, sizeof(*nodes));
	return cli_request_run(cli, socket_arg, req, nodes, cli_got_session_each, &each);
}

void cli_sessions_free(struct cli_sessions *sessions)
{
	for (size_t i = 0; i < sessions->count; i++)
		free(sessions->list[i].fields);
	free(sessions->list);
	cli_nodes_free(&sessions->nodes);
	memset(sessions, 0, sizeof(*sessions));
}

const char *cli_session_alt(const struct cli_session *s, const char *field)
{
	size_t flen = strlen(field);
	for (int i = ADMIN_SESSION_FIXED_FIELDS; i < s->nfields; i++) {
		if (strncmp(s->fields[i], field, flen) == 0 && s->fields[i][flen] == '=')
			return s->fields[i] + flen + 1;
	}
	return NULL;
}

char **cli_alt_fields(const struct cli_session *list, size_t n, size_t *count_r)
{
	char **alt = NULL;
	size_t nalt = 0, cap = 0;
	for (size_t i = 0; i < n; i++) {
		for (int j = ADMIN_SESSION_FIXED_FIELDS; j < list[i].nfields; j++) {
			size_t klen = strcspn(list[i].fields[j], "=");
			bool known = false;
			for (size_t k = 0; k < nalt && !known; k++)
				known = strlen(alt[k]) == klen &&
					strncmp(alt[k], list[i].fields[j], klen) == 0;
			if (!known) {
				alt = xgrow(alt, &cap, nalt + 1, sizeof(*alt));
				alt[nalt++] = xstrndup(list[i].fields[j], klen);
			}
		}
	}
	*count_r = nalt;
	return alt;
}

void cli_alt_fields_free(char **fields, size_t count)
{
	for (size_t i = 0; i < count; i++)
		free(fields[i]);
	free(fields);
}

/* A total, zero so far, for each node that answered. */
static void cli_kicked_fit_totals(struct cli_kicked *k)
{
	k->node_totals = xrealloc(k->node_totals, (k->nodes.count + 1) * sizeof(*k->node_totals));
	for (; k->totals_count < k->nodes.count; k->totals_count++)
		k->node_totals[k->totals_count] = 0;
}

static int cli_got_kicked(char *line, const char *node, void *ctx)
{
	struct cli_kicked *k = ctx;
	char *f[3];
	char *end;
	(void)node;
	if (tabsplit_inplace(line, f, 3) != 2) {
		cli_error("Invalid SESSION-KICK reply");
		return EX_PROTOCOL;
	}
	unsigned long n = strtoul(f[1], &end, 10);
	if (*end != '\0') {
		cli_error("Invalid SESSION-KICK reply");
		return EX_PROTOCOL;
	}
	/* the nodes answer in turn: the node is the newest */
	cli_kicked_fit_totals(k);
	k->node_totals[k->nodes.count - 1] += n;
	k->total += n;
	k->users = xgrow(k->users, &k->cap, k->count + 1, sizeof(*k->users));
	k->users[k->count].user = xstrdup(f[0]);
	k->users[k->count].count = n;
	k->count++;
	return 0;
}

static int cli_kicked_cmp(const void *a, const void *b)
{
	const struct cli_kicked_user *ua = a, *ub = b;
	return strcmp(ua->user, ub->user);
}

/* Each node's users come sorted; over the ring each user once. */
static void cli_kicked_merge(struct cli_kicked *k)
{
	size_t out = 0;
	if (k->count > 1)
		qsort(k->users, k->count, sizeof(*k->users), cli_kicked_cmp);
	for (size_t i = 0; i < k->count; i++) {
		if (out > 0 && strcmp(k->users[out - 1].user, k->users[i].user) == 0) {
			k->users[out - 1].count += k->users[i].count;
			free(k->users[i].user);
		} else {
			k->users[out++] = k->users[i];
		}
	}
	k->count = out;
}

int cli_sessions_kick(struct cli *cli, const char *socket_arg,
		      const struct cli_request *req, struct cli_kicked *kicked)
{
	memset(kicked, 0, sizeof(*kicked));
	int ret = cli_request_run(cli, socket_arg, req, &kicked->nodes, cli_got_kicked,
				  kicked);
	cli_kicked_fit_totals(kicked);	/* nodes that kicked nobody too */
	cli_kicked_merge(kicked);
	return ret;
}

void cli_kicked_free(struct cli_kicked *kicked)
{
	for (size_t i = 0; i < kicked->count; i++)
		free(kicked->users[i].user);
	free(kicked->users);
	free(kicked->node_totals);
	cli_nodes_free(&kicked->nodes);
	memset(kicked, 0, sizeof(*kicked));
}

void cli_kicked_print_nodes(const struct cli_kicked *k)
{
	for (size_t i = 0; k->nodes.named && i < k->nodes.count; i++)
		printf("%s: %zu connections kicked\n", k->nodes.names[i], k->node_totals[i]);
	printf("%zu connections kicked\n", k->total);
}
