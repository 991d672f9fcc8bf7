/* loftadm reload [--upgrade]: SIGHUP's and SIGUSR2's work asked through
 * the admin socket (RELOAD, UPGRADE), so that the admin learns whether it
 * worked from the exit code instead of from loftd's log. Silent on
 * success, as doveadm reload is; -v says what happened. Exit codes: 0,
 * 78 (EX_CONFIG) when the configuration did not load and the running one
 * stays, 75 (EX_TEMPFAIL) when an upgrade was refused or failed and the
 * running loftd serves on. */
#include <getopt.h>
#include <stdlib.h>
#include <string.h>

#include "admin/admin_wire.h"
#include "cli/director_client.h"

int cmd_reload(struct cli *cli, const struct cli_cmd *cmd, int argc, char **argv)
{
	static const struct option longopts[] = {
		{ "upgrade", no_argument, NULL, 'U' },
		{ NULL, 0, NULL, 0 },
	};
	const char *socket_arg = NULL;
	bool upgrade = false;
	int c;
	while ((c = getopt_long(argc, argv, "a:", longopts, NULL)) != -1) {
		if (c == 'a')
			socket_arg = optarg;
		else if (c == 'U')
			upgrade = true;
		else
			return cli_usage(cmd);
	}
	if (optind != argc)
		return cli_usage(cmd);
	struct director_client dc;
	int ret = director_client_open(&dc, cli, socket_arg);
	if (ret != 0)
		return ret;
	director_client_send(&dc, upgrade ? ADMIN_CMD_UPGRADE : ADMIN_CMD_RELOAD, NULL);
	const char *line = director_client_read(&dc);
	if (line != NULL && strncmp(line, "ERROR\t", 6) == 0) {
		cli_error("%s", line + 6);
		dc.exit_code = upgrade ? EX_TEMPFAIL : EX_CONFIG;
	} else if (line != NULL && strcmp(line, "OK") != 0 && strncmp(line, "OK\t", 3) != 0) {
		cli_error("unexpected reply: %s", line);
		dc.exit_code = EX_TEMPFAIL;
	} else if (line != NULL && cli->verbose) {
		if (upgrade)
			cli_info("upgraded: pid %s serves now", line + 3);
		else
			cli_info("reloaded");
	}
	ret = dc.exit_code;
	director_client_close(&dc);
	return ret;
}
