/* loftadm who (reference §7.1, §7.4): logged-in sessions, filtered in
 * loftd, grouped by user and service or one per line with -1.
 *
 * Grouped columns: username # service (pids) (ips)
 * -1 columns: username service pid ip dest_ip [user_* ...], then loft's
 * own: dest_port session since, and in a ring director (the node).
 *
 * In a ring, the sessions of every node (doc/ring.md §14) unless --local;
 * a node that does not answer is named on stderr and the exit code is
 * 75 (EX_TEMPFAIL) after what the others answered is printed. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "cli/sessions.h"
#include "common/hmap.h"
#include "common/sbuf.h"
#include "common/xmalloc.h"

struct who_group {
	struct hmap_node node;		/* by user and service */
	const char *user;		/* both in the group's own block */
	const char *service;
	unsigned int count;
	struct sbuf pids;
	struct sbuf ips;
};

/* The groups so far, in the order they first appear: sessions are
 * grouped as they are read and not kept (a ring's who reads 200,000). */
struct who_groups {
	struct hmap index;
	struct who_group **list;
	size_t count, cap;
};

/* Appends item to a space-separated list unless it is already there. */
static void who_list_add(struct sbuf *list, const char *item)
{
	if (item[0] == '\0')
		return;
	const char *data = sbuf_cstr(list);
	size_t ilen = strlen(item);
	for (const char *p = data; (p = strstr(p, item)) != NULL; p += ilen) {
		if ((p == data || p[-1] == ' ') && (p[ilen] == '\0' || p[ilen] == ' '))
			return;
	}
	if (sbuf_len(list) > 0)
		sbuf_appendc(list, ' ');
	sbuf_appends(list, item);
}

/* The group of the session's user and service, made on first sight. */
static struct who_group *who_group_get(struct who_groups *gs, const char *user,
				       const char *service)
{
	uint64_t hash = hash_string(user) * 31 + hash_string(service);
	struct hmap_node *n;
	HMAP_FOR_EACH_WITH_HASH(n, hash, &gs->index) {
		struct who_group *g = CONTAINER_OF(n, struct who_group, node);
		if (strcmp(g->user, user) == 0 && strcmp(g->service, service) == 0)
			return g;
	}
	size_t ulen = strlen(user), slen = strlen(service);
	struct who_group *g = xcalloc(1, sizeof(*g) + ulen + slen + 2);
	char *names = (char *)(g + 1);
	g->user = memcpy(names, user, ulen + 1);
	g->service = memcpy(names + ulen + 1, service, slen + 1);
	hmap_insert(&gs->index, &g->node, hash);
	gs->list = xgrow(gs->list, &gs->cap, gs->count + 1, sizeof(*gs->list));
	gs->list[gs->count++] = g;
	return g;
}

static int who_group_session(const struct cli_session *s, void *ctx)
{
	struct who_groups *gs = ctx;
	struct who_group *g = who_group_get(gs, s->fields[ADMIN_SESSION_USER],
					    s->fields[ADMIN_SESSION_SERVICE]);
	g->count++;
	who_list_add(&g->pids, s->fields[ADMIN_SESSION_PID]);
	who_list_add(&g->ips, s->fields[ADMIN_SESSION_CLIENT_IP]);
	return 0;
}

/* Counts over the whole ring: one row per user and service, in the order
 * they first appear. */
static void who_print_grouped(struct printer *p, const struct who_groups *gs)
{
	print_header(p, "username", "username", 0);
	print_header(p, "connections", "#", PRINT_RIGHT);
	print_header(p, "service", "service", 0);
	print_header(p, "pids", "(pids)", 0);
	print_header(p, "ips", "(ips)", 0);
	for (size_t i = 0; i < gs->count; i++) {
		struct who_group *g = gs->list[i];
		char count[16];
		snprintf(count, sizeof(count), "%u", g->count);
		char *pids = xasprintf("(%s)", sbuf_cstr(&g->pids));
		char *ips = xasprintf("(%s)", sbuf_cstr(&g->ips));
		print_value(p, g->user);
		print_value(p, count);
		print_value(p, g->service);
		print_value(p, pids);
		print_value(p, ips);
		free(pids);
		free(ips);
	}
}

static void who_groups_free(struct who_groups *gs)
{
	for (size_t i = 0; i < gs->count; i++) {
		sbuf_free(&gs->list[i]->pids);
		sbuf_free(&gs->list[i]->ips);
		free(gs->list[i]);
	}
	free(gs->list);
	hmap_destroy(&gs->index);
}

static void who_print_each(struct printer *p, struct cli_session *list, size_t n,
			   bool named)
{
	size_t nalt;
	char **alt = cli_alt_fields(list, n, &nalt);

	print_header(p, "username", "username", PRINT_EXPAND);
	print_header(p, "service", "service", 0);
	print_header(p, "pid", "pid", 0);
	print_header(p, "ip", "ip", 0);
	print_header(p, "dest_ip", "dest_ip", 0);
	for (size_t k = 0; k < nalt; k++)
		print_header(p, alt[k], alt[k], 0);
	print_header(p, "dest_port", "dest_port", 0);
	print_header(p, "session", "session", 0);
	print_header(p, "since", "since", 0);
	if (named)
		print_header(p, "director", "director", 0);
	for (size_t i = 0; i < n; i++) {
		char *const *f = list[i].fields;
		print_value(p, f[ADMIN_SESSION_USER]);
		print_value(p, f[ADMIN_SESSION_SERVICE]);
		print_value(p, f[ADMIN_SESSION_PID]);
		print_value(p, f[ADMIN_SESSION_CLIENT_IP]);
		print_value(p, f[ADMIN_SESSION_BACKEND_IP]);
		for (size_t k = 0; k < nalt; k++) {
			const char *v = cli_session_alt(&list[i], alt[k]);
			print_value(p, v != NULL ? v : "");
		}
		print_value(p, f[ADMIN_SESSION_BACKEND_PORT]);
		print_value(p, f[ADMIN_SESSION_ID]);
		char since[CLI_DATE_LEN];
		time_t t = (time_t)strtoll(f[ADMIN_SESSION_START], NULL, 10);
		print_value(p, cli_unixdate(t, since));
		if (named)
			print_value(p, list[i].node);
	}
	cli_alt_fields_free(alt, nalt);
}

int cmd_who(struct cli *cli, const struct cli_cmd *cmd, int argc, char **argv)
{
	const char *socket_arg = NULL, *alt_field = NULL;
	bool one_per_line = false, have_net;
	size_t nmasks;
	int c, ret;
	bool local = cli_take_local(&argc, argv);

	while ((c = getopt(argc, argv, "a:1f:")) != -1) {
		switch (c) {
		case 'a':
			socket_arg = optarg;
			break;
		case '1':
			one_per_line = true;
			break;
		case 'f':
			alt_field = optarg;
			break;
		default:
			return cli_usage(cmd);
		}
	}
	struct cli_request req;
	cli_request_init(&req, ADMIN_CMD_SESSION_LIST);
	req.local = local;
	cli_request_add(&req, "logged-in", NULL);
	ret = cli_request_add_masks(&req, cmd, argc - optind, argv + optind, alt_field,
				    &nmasks, &have_net);
	struct printer *p = ret != 0 ? NULL : cli_printer(cli, "table", NULL);
	struct cli_sessions s = { 0 };
	struct who_groups groups = { 0 };
	hmap_init(&groups.index);
	if (p == NULL && ret == 0)
		ret = EX_TEMPFAIL;
	if (ret == 0 && one_per_line)
		ret = cli_sessions_list(cli, socket_arg, &req, &s);
	else if (ret == 0)
		ret = cli_sessions_each(cli, socket_arg, &req, &s.nodes, who_group_session,
					&groups);
	if (ret == 0) {
		if (one_per_line)
			who_print_each(p, s.list, s.count, s.nodes.named);
		else
			who_print_grouped(p, &groups);
		print_flush(p);
		ret = cli_nodes_report(&s.nodes);
	}
	who_groups_free(&groups);
	cli_sessions_free(&s);
	cli_request_free(&req);
	print_free(&p);
	return ret;
}
