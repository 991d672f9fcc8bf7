/* loftadm kick (reference §7.3-7.4): the four forms of the man page,
 *
 *   kick <user mask>...            kick <ip/bits>
 *   kick <user mask> <ip/bits>     kick -h <dest host> [...]
 *
 * with -f matching the masks against a user_* field. Unlike doveadm,
 * exactly the matching sessions are closed (loftd kicks sessions, not
 * processes), so there is no "force". Output as doveadm 2.3 prints it:
 *
 *   kicked connections from the following users:
 *   user23 user24
 *
 * or "no users kicked" and exit 68. In a ring, the sessions of every node
 * (doc/ring.md §14) unless --local; -v adds each node's count. A node that
 * does not answer is named on stderr and the exit code is 75. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "cli/sessions.h"

int cmd_kick(struct cli *cli, const struct cli_cmd *cmd, int argc, char **argv)
{
	const char *socket_arg = NULL, *alt_field = NULL;
	struct cli_request req;
	bool have_net, have_host = false;
	size_t nmasks;
	int c, ret = 0;
	bool local = cli_take_local(&argc, argv);

	cli_request_init(&req, ADMIN_CMD_SESSION_KICK);
	req.local = local;
	cli_request_add(&req, "logged-in", NULL);
	while ((c = getopt(argc, argv, "a:f:h:")) != -1 && ret == 0) {
		switch (c) {
		case 'a':
			socket_arg = optarg;
			break;
		case 'f':
			alt_field = optarg;
			break;
		case 'h':
			have_host = true;
			ret = cli_request_add_host(&req, optarg, true);
			break;
		default:
			ret = cli_usage(cmd);
			break;
		}
	}
	if (ret == 0)
		ret = cli_request_add_masks(&req, cmd, argc - optind, argv + optind,
					    alt_field, &nmasks, &have_net);
	if (ret == 0 && nmasks == 0 && !have_net && !have_host) {
		cli_error("user and/or ip[/bits] must be specified.");
		ret = cli_usage(cmd);
	}
	struct printer *p = ret != 0 ? NULL : cli_printer(cli, "formatted", "%{result} ");
	if (p == NULL && ret == 0)
		ret = EX_TEMPFAIL;
	struct cli_kicked k = { 0 };
	if (ret == 0)
		ret = cli_sessions_kick(cli, socket_arg, &req, &k);
	if (ret == 0) {
		/* the prose belongs to the default output; other formatters
		 * print only the names */
		bool prose = strcmp(print_formatter_name(p), "formatted") == 0;
		if (k.count == 0 && prose)
			printf("no users kicked\n");
		else if (prose)
			printf("kicked connections from the following users:\n");
		print_header(p, "result", "result", 0);
		for (size_t i = 0; i < k.count; i++)
			print_value(p, k.users[i].user);
		print_flush(p);
		if (k.count > 0 && prose)
			printf("\n");
		if (cli->verbose)
			cli_kicked_print_nodes(&k);
		ret = cli_nodes_report(&k.nodes);
		if (ret == 0 && k.count == 0)
			ret = EX_NOHOST;
	}
	cli_kicked_free(&k);
	cli_request_free(&req);
	print_free(&p);
	return ret;
}
