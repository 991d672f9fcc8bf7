/* loftadm proxy list and proxy kick (reference §8.3-8.4): the proxied
 * sessions, as doveadm's ipc commands show them.
 *
 *   proxy list   username [user_* ...] proto src ip dest ip port
 *   proxy kick [-f field] [-h host [...]] | <user mask> [...]
 *                -> "<N> connections kicked", the true total
 *
 * Unlike doveadm: one title row however loftd is run, wildcards work, the
 * count is the total, and an unreachable socket exits 75. In a ring, the
 * sessions of every node (doc/ring.md §14) unless --local, with a
 * director column naming the node; a node that does not answer is named
 * on stderr and the exit code is 75. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "cli/sessions.h"
#include "common/xmalloc.h"

int cmd_proxy_list(struct cli *cli, const struct cli_cmd *cmd, int argc, char **argv)
{
	const char *socket_arg;
	bool local = cli_take_local(&argc, argv);
	int ret = cli_getopt_socket(cmd, argc, argv, &socket_arg);
	if (ret != 0)
		return ret;
	if (optind != argc)
		return cli_usage(cmd);
	struct printer *p = cli_printer(cli, "table", NULL);
	if (p == NULL)
		return EX_TEMPFAIL;
	struct cli_request req;
	cli_request_init(&req, ADMIN_CMD_SESSION_LIST);
	req.local = local;
	cli_request_add(&req, "logged-in", NULL);
	cli_request_add(&req, "proxied", NULL);
	struct cli_sessions s;
	ret = cli_sessions_list(cli, socket_arg, &req, &s);
	struct cli_session *list = s.list;
	size_t n = s.count;
	if (ret == 0) {
		/* every user_* field seen becomes a column after username */
		size_t nalt;
		char **alt = cli_alt_fields(list, n, &nalt);
		print_header(p, "username", "username", PRINT_EXPAND);
		for (size_t k = 0; k < nalt; k++)
			print_header(p, alt[k], alt[k], PRINT_EXPAND);
		print_header(p, "service", "proto", 0);
		print_header(p, "src-ip", "src ip", 0);
		print_header(p, "dest-ip", "dest ip", 0);
		print_header(p, "dest-port", "port", 0);
		if (s.nodes.named)
			print_header(p, "director", "director", 0);
		for (size_t i = 0; i < n; i++) {
			char *const *f = list[i].fields;
			print_value(p, f[ADMIN_SESSION_USER]);
			for (size_t k = 0; k < nalt; k++) {
				const char *v = cli_session_alt(&list[i], alt[k]);
				print_value(p, v != NULL ? v : "");
			}
			print_value(p, f[ADMIN_SESSION_SERVICE]);
			print_value(p, f[ADMIN_SESSION_CLIENT_IP]);
			print_value(p, f[ADMIN_SESSION_BACKEND_IP]);
			print_value(p, f[ADMIN_SESSION_BACKEND_PORT]);
			if (s.nodes.named)
				print_value(p, list[i].node);
		}
		print_flush(p);
		cli_alt_fields_free(alt, nalt);
		ret = cli_nodes_report(&s.nodes);
	}
	cli_sessions_free(&s);
	cli_request_free(&req);
	print_free(&p);
	return ret;
}

int cmd_proxy_kick(struct cli *cli, const struct cli_cmd *cmd, int argc, char **argv)
{
	const char *socket_arg = NULL, *alt_field = NULL;
	bool hosts = false;
	int c, ret = 0;
	bool local = cli_take_local(&argc, argv);

	while ((c = getopt(argc, argv, "a:f:h")) != -1) {
		switch (c) {
		case 'a':
			socket_arg = optarg;
			break;
		case 'f':
			alt_field = optarg;
			break;
		case 'h':
			hosts = true;
			break;
		default:
			return cli_usage(cmd);
		}
	}
	if (optind == argc || (hosts && alt_field != NULL))
		return cli_usage(cmd);
	struct cli_request req;
	cli_request_init(&req, ADMIN_CMD_SESSION_KICK);
	req.local = local;
	cli_request_add(&req, "logged-in", NULL);
	cli_request_add(&req, "proxied", NULL);
	/* doveadm: with -h every argument is a host, else a user */
	for (int i = optind; i < argc && ret == 0; i++) {
		if (hosts)
			ret = cli_request_add_host(&req, argv[i], false);
		else
			cli_request_add(&req, "user", argv[i]);
	}
	if (alt_field != NULL)
		cli_request_add(&req, "alt", alt_field);
	struct printer *p = ret != 0 ? NULL :
		cli_printer(cli, "formatted", "%{count} connections kicked\n");
	if (p == NULL && ret == 0)
		ret = EX_TEMPFAIL;
	struct cli_kicked k = { 0 };
	if (ret == 0)
		ret = cli_sessions_kick(cli, socket_arg, &req, &k);
	if (ret == 0) {
		char count[32];
		snprintf(count, sizeof(count), "%zu", k.total);
		print_header(p, "count", "count", 0);
		print_value(p, count);
		print_flush(p);
		ret = cli_nodes_report(&k.nodes);
	}
	cli_kicked_free(&k);
	cli_request_free(&req);
	print_free(&p);
	return ret;
}
