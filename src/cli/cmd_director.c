/* loftadm director add|update|up|down|remove|move|kick|flush and ring
 * add|remove: the changes, with doveadm 2.3's messages and exit codes
 * (reference §4.5, §5.6). Commands that take a host send one line per
 * address it resolves to, then read every reply.
 *
 * Unlike doveadm: the hash for move comes from loftd (USER-HASH), so that
 * it is always the one loftd routes by (§4.6); a flush waits for as long as
 * its moves take instead of timing out. */
#include <getopt.h>
#include <inttypes.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "admin/admin_wire.h"
#include "cli/director_client.h"
#include "common/tabescape.h"
#include "common/xmalloc.h"

#define DOVEADM_EX_NOTFOUND 68

/* The positional arguments after the options: at least min, at most max. */
static bool director_args(int argc, int min, int max)
{
	int n = argc - optind;
	return n >= min && n <= max;
}

/* ---- add, update ------------------------------------------------------ */

static int director_add_or_update(struct cli *cli, const struct cli_cmd *cmd, int argc,
				  char **argv, bool update)
{
	const char *socket_arg = NULL, *tag = NULL;
	uint64_t vhosts = UINT64_MAX;
	int c;
	while ((c = getopt(argc, argv, update ? "a:" : "a:t:")) != -1) {
		if (c == 'a')
			socket_arg = optarg;
		else if (c == 't')
			tag = optarg;
		else
			return cli_usage(cmd);
	}
	if (!director_args(argc, update ? 2 : 1, 2))
		return cli_usage(cmd);
	const char *host_arg = argv[optind];
	if (optind + 1 < argc &&
	    !director_parse_uint(argv[optind + 1], UINT_MAX - 1, &vhosts))
		return cli_usage(cmd);
	uint64_t number;
	if (director_parse_uint(host_arg, UINT_MAX, &number)) {
		/* a number would be taken as an IPv4 address: a mistake */
		cli_error("Invalid host '%s'", host_arg);
		return cli_usage(cmd);
	}
	char *host = xstrdup(host_arg);
	if (tag != NULL && tag[0] == '\0')
		tag = NULL;
	char *at = strchr(host, '@');
	if (tag == NULL && at != NULL) {
		*at = '\0';
		tag = at + 1;
	}

	struct director_client dc;
	struct ipaddr *ips = NULL;
	size_t n = 0;
	int ret = director_client_open(&dc, cli, socket_arg);
	if (ret == 0 && director_client_get_host(&dc, host, &ips, &n) == 0) {
		char vh[24] = "";
		if (vhosts != UINT64_MAX)
			snprintf(vh, sizeof(vh), "%" PRIu64, vhosts);
		for (size_t i = 0; i < n; i++) {
			char text[IPADDR_STRLEN], *arg;
			ipaddr_to_str(&ips[i], text);
			arg = tag != NULL ? xasprintf("%s@%s", text, tag) : xstrdup(text);
			director_client_send(&dc, update ? "HOST-UPDATE" : "HOST-SET", arg,
					     vh[0] != '\0' ? vh : NULL, NULL);
			free(arg);
		}
		for (size_t i = 0; i < n; i++) {
			char text[IPADDR_STRLEN];
			const char *line = director_client_read(&dc);
			ipaddr_to_str(&ips[i], text);
			if (line == NULL)
				break;
			if (strcmp(line, "OK") != 0) {
				cli_error("%s: %s", text, strcmp(line, "NOTFOUND") == 0 ?
					  "doesn't exist" : line);
				dc.exit_code = EX_TEMPFAIL;
			} else if (cli->verbose) {
				cli_info("%s: OK", text);
			}
		}
		ret = dc.exit_code;
	} else if (ret == 0) {
		ret = dc.exit_code;
	}
	director_client_close(&dc);
	free(ips);
	free(host);
	return ret;
}

int cmd_director_add(struct cli *cli, const struct cli_cmd *cmd, int argc, char **argv)
{
	return director_add_or_update(cli, cmd, argc, argv, false);
}

int cmd_director_update(struct cli *cli, const struct cli_cmd *cmd, int argc, char **argv)
{
	return director_add_or_update(cli, cmd, argc, argv, true);
}

/* ---- up, down, remove, flush: one line per address -------------------- */

struct director_ipcmd {
	const char *command;
	const char *done;		/* what -v says for each address */
	bool warn;			/* flush: problems are warnings */
	const char *max_parallel;	/* flush: appended when set */
	bool wait;			/* flush: answered when its moves are done */
};

static int director_ipcmd(struct cli *cli, const char *socket_arg, const char *host,
			  const struct director_ipcmd *ic)
{
	struct director_client dc;
	struct ipaddr *ips = NULL;
	size_t n = 0;
	int ret = director_client_open(&dc, cli, socket_arg);
	if (ret != 0 || director_client_get_host(&dc, host, &ips, &n) < 0) {
		ret = ret != 0 ? ret : dc.exit_code;
		director_client_close(&dc);
		return ret;
	}
	void (*report)(const char *fmt, ...) = ic->warn ? cli_warning : cli_error;
	if (ic->wait)
		admin_client_set_timeout(dc.conn, 0);
	for (size_t i = 0; i < n; i++) {
		char text[IPADDR_STRLEN];
		director_client_send(&dc, ic->command, ipaddr_to_str(&ips[i], text),
				     ic->max_parallel, NULL);
	}
	for (size_t i = 0; i < n; i++) {
		char text[IPADDR_STRLEN];
		const char *line = director_client_read(&dc);
		ipaddr_to_str(&ips[i], text);
		if (line == NULL)
			break;
		if (strcmp(line, "NOTFOUND") == 0) {
			report("%s: doesn't exist", text);
			if (dc.exit_code == 0)
				dc.exit_code = DOVEADM_EX_NOTFOUND;
		} else if (strcmp(line, "OK") != 0) {
			report("%s: %s", text, line);
			dc.exit_code = EX_TEMPFAIL;
		} else if (cli->verbose) {
			cli_info("%s: %s", text, ic->done);
		}
	}
	ret = dc.exit_code;
	director_client_close(&dc);
	free(ips);
	return ret;
}

static int director_simple_ipcmd(struct cli *cli, const struct cli_cmd *cmd, int argc,
				 char **argv, const struct director_ipcmd *ic)
{
	const char *socket_arg;
	int ret = cli_getopt_socket(cmd, argc, argv, &socket_arg);
	if (ret != 0)
		return ret;
	if (!director_args(argc, 1, 1))
		return cli_usage(cmd);
	return director_ipcmd(cli, socket_arg, argv[optind], ic);
}

int cmd_director_up(struct cli *cli, const struct cli_cmd *cmd, int argc, char **argv)
{
	static const struct director_ipcmd ic = { "HOST-UP", "up", false, NULL, false };
	return director_simple_ipcmd(cli, cmd, argc, argv, &ic);
}

int cmd_director_down(struct cli *cli, const struct cli_cmd *cmd, int argc, char **argv)
{
	static const struct director_ipcmd ic = { "HOST-DOWN", "down", false, NULL, false };
	return director_simple_ipcmd(cli, cmd, argc, argv, &ic);
}

int cmd_director_remove(struct cli *cli, const struct cli_cmd *cmd, int argc, char **argv)
{
	static const struct director_ipcmd ic = { "HOST-REMOVE", "removed", false, NULL, false };
	return director_simple_ipcmd(cli, cmd, argc, argv, &ic);
}

/* "all": one line for every host, answered once. */
static int director_flush_all(struct cli *cli, const char *socket_arg, bool force,
			      const char *max_parallel)
{
	struct director_client dc;
	int ret = director_client_open(&dc, cli, socket_arg);
	if (ret != 0) {
		director_client_close(&dc);
		return ret;
	}
	admin_client_set_timeout(dc.conn, 0);
	if (force)
		director_client_send(&dc, "HOST-FLUSH", NULL);
	else if (max_parallel != NULL)
		director_client_send(&dc, "HOST-RESET-USERS", "", max_parallel, NULL);
	else
		director_client_send(&dc, "HOST-RESET-USERS", NULL);
	const char *line = director_client_read(&dc);
	if (line != NULL && strcmp(line, "OK") != 0) {
		cli_error("failed: %s", line);
		dc.exit_code = EX_TEMPFAIL;
	} else if (line != NULL && cli->verbose) {
		cli_info("flushed");
	}
	ret = dc.exit_code;
	director_client_close(&dc);
	return ret;
}

int cmd_director_flush(struct cli *cli, const struct cli_cmd *cmd, int argc, char **argv)
{
	static const struct option longopts[] = {
		{ "max-parallel", required_argument, NULL, 'm' },
		{ NULL, 0, NULL, 0 },
	};
	const char *socket_arg = NULL;
	bool force = false;
	uint64_t max_parallel = 0;
	int c;
	while ((c = getopt_long(argc, argv, "a:F", longopts, NULL)) != -1) {
		if (c == 'a')
			socket_arg = optarg;
		else if (c == 'F')
			force = true;
		else if (c != 'm' || !director_parse_uint(optarg, INT64_MAX, &max_parallel))
			return cli_usage(cmd);
	}
	if (!director_args(argc, 1, 1))
		return cli_usage(cmd);
	char mp[24];
	snprintf(mp, sizeof(mp), "%" PRIu64, max_parallel);
	/* 0 means the server's default: nothing is sent (§2.7) */
	const char *mp_arg = max_parallel > 0 ? mp : NULL;
	if (strcmp(argv[optind], "all") == 0)
		return director_flush_all(cli, socket_arg, force, mp_arg);
	struct director_ipcmd ic = {
		force ? "HOST-FLUSH" : "HOST-RESET-USERS", "flushed", true,
		force ? NULL : mp_arg, true,
	};
	return director_ipcmd(cli, socket_arg, argv[optind], &ic);
}

/* ---- move, kick ---------------------------------------------------------- */

int cmd_director_move(struct cli *cli, const struct cli_cmd *cmd, int argc, char **argv)
{
	const char *socket_arg;
	int ret = cli_getopt_socket(cmd, argc, argv, &socket_arg);
	if (ret != 0)
		return ret;
	if (!director_args(argc, 2, 2))
		return cli_usage(cmd);
	struct director_client dc;
	struct ipaddr *ips = NULL;
	size_t n;
	uint32_t hash;
	ret = director_client_open(&dc, cli, socket_arg);
	if (ret == 0 && director_client_user_hash(&dc, argv[optind], &hash) == 0 &&
	    director_client_get_host(&dc, argv[optind + 1], &ips, &n) == 0) {
		char text[IPADDR_STRLEN], hash_text[16];
		/* doveadm moves to the first address of a name */
		ipaddr_to_str(&ips[0], text);
		snprintf(hash_text, sizeof(hash_text), "%" PRIu32, hash);
		director_client_send(&dc, "USER-MOVE", hash_text, text, NULL);
		const char *line = director_client_read(&dc);
		if (line == NULL) {
			/* reported */
		} else if (strcmp(line, "OK") == 0) {
			if (cli->verbose)
				cli_info("User hash %" PRIu32 " moved to %s", hash, text);
		} else if (strcmp(line, "NOTFOUND") == 0) {
			cli_error("Host '%s' doesn't exist", text);
			dc.exit_code = DOVEADM_EX_NOTFOUND;
		} else if (strcmp(line, "TRYAGAIN") == 0) {
			cli_error("User is already being moved, wait a while for it to be "
				  "finished");
			dc.exit_code = EX_TEMPFAIL;
		} else {
			cli_error("failed: %s", line);
			dc.exit_code = EX_TEMPFAIL;
		}
	}
	if (ret == 0)
		ret = dc.exit_code;
	director_client_close(&dc);
	free(ips);
	return ret;
}

/* loft's -v addition: "<node>: <n> sessions closed" per node of the
 * answer "OK\t<node>\t<n>...". */
static void director_kick_counts(const char *line)
{
	char *copy = xstrdup(line);
	int max = 1;
	for (const char *p = line; *p != '\0'; p++)
		max += *p == '\t';
	char **f = xcalloc((size_t)max, sizeof(*f));
	int n = tabsplit_inplace(copy, f, max);
	for (int i = 1; i + 1 < n; i += 2)
		cli_info("%s: %s session%s closed", f[i], f[i + 1],
			 strcmp(f[i + 1], "1") == 0 ? "" : "s");
	free(f);
	free(copy);
}

int cmd_director_kick(struct cli *cli, const struct cli_cmd *cmd, int argc, char **argv)
{
	const char *socket_arg = NULL, *field = NULL;
	int c;
	while ((c = getopt(argc, argv, "a:f:")) != -1) {
		if (c == 'a')
			socket_arg = optarg;
		else if (c == 'f')
			field = optarg;
		else
			return cli_usage(cmd);
	}
	if (!director_args(argc, 1, 1))
		return cli_usage(cmd);
	const char *user = argv[optind];
	struct director_client dc;
	int ret = director_client_open(&dc, cli, socket_arg);
	if (ret == 0) {
		/* doveadm's USER-KICK, with how many sessions each node closed */
		if (field == NULL)
			director_client_send(&dc, ADMIN_CMD_USER_KICK_NODES, user, NULL);
		else
			director_client_send(&dc, ADMIN_CMD_USER_KICK_NODES, field, user, NULL);
		const char *line = director_client_read(&dc);
		if (line != NULL && strcmp(line, "OK") != 0 && strncmp(line, "OK\t", 3) != 0) {
			cli_error("failed: %s", line);
			dc.exit_code = EX_TEMPFAIL;
		} else if (line != NULL && cli->verbose) {
			cli_info("User %s kicked", user);
			director_kick_counts(line);
		}
		ret = dc.exit_code;
	}
	director_client_close(&dc);
	return ret;
}

/* ---- ring add, ring remove ----------------------------------------------- */

static int director_ring_cmd(struct cli *cli, const struct cli_cmd *cmd, int argc,
			     char **argv, const char *command)
{
	const char *socket_arg;
	int ret = cli_getopt_socket(cmd, argc, argv, &socket_arg);
	if (ret != 0)
		return ret;
	struct ipaddr ip;
	uint64_t port = 0;
	if (!director_args(argc, 1, 2) || ipaddr_parse(argv[optind], &ip) < 0 ||
	    (optind + 1 < argc && (!director_parse_uint(argv[optind + 1], 65535, &port) ||
				   port == 0)))
		return cli_usage(cmd);
	struct director_client dc;
	ret = director_client_open(&dc, cli, socket_arg);
	if (ret == 0) {
		char text[IPADDR_STRLEN], port_text[8];
		snprintf(port_text, sizeof(port_text), "%" PRIu64, port);
		director_client_send(&dc, command, ipaddr_to_str(&ip, text),
				     port != 0 ? port_text : NULL, NULL);
		const char *line = director_client_read(&dc);
		if (line != NULL && strcmp(line, "NOTFOUND") == 0) {
			cli_error("Not found");
			dc.exit_code = DOVEADM_EX_NOTFOUND;
		} else if (line != NULL && strcmp(line, "OK") != 0) {
			cli_error("Failed: %s", line);
			dc.exit_code = EX_TEMPFAIL;
		}
		ret = dc.exit_code;
	}
	director_client_close(&dc);
	return ret;
}

int cmd_director_ring_add(struct cli *cli, const struct cli_cmd *cmd, int argc,
			  char **argv)
{
	return director_ring_cmd(cli, cmd, argc, argv, "DIRECTOR-ADD");
}

int cmd_director_ring_remove(struct cli *cli, const struct cli_cmd *cmd, int argc,
			     char **argv)
{
	return director_ring_cmd(cli, cmd, argc, argv, "DIRECTOR-REMOVE");
}
