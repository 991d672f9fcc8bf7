/* What every loftadm command gets: the global options (doveadm's
 * `[-Dv] [-f formatter] [-h] [-c config] [-o k=v] [-i instance]`, plus
 * loft's global `-a socket`) and helpers to reach loftd and to print. */
#ifndef LOFT_CLI_CLI_H
#define LOFT_CLI_CLI_H

#include <stdbool.h>
#include <stddef.h>
#include <sysexits.h>
#include <time.h>

#include "cli/print.h"
#include "common/macros.h"
#include "conf/config.h"

#define CLI_MAX_OVERRIDES 32

struct cli {
	const char *formatter;	/* NULL: the command's default */
	bool hide_titles;
	bool verbose;
	bool debug;
	const char *config_path;
	bool config_given;
	struct config_override overrides[CLI_MAX_OVERRIDES];
	size_t noverrides;
	const char *socket;	/* global -a */
	const char *instance;
	const char *argv0;
};

struct cli_cmd {
	const char *name;
	const char *usage;	/* after the name */
	int (*run)(struct cli *cli, const struct cli_cmd *cmd, int argc, char **argv);
};

/* The admin socket: -a (the command's or the global one), else the
 * base_dir of the configuration. NULL after printing an error. */
char *cli_admin_socket(struct cli *cli, const char *cmd_socket);
/* A printer with the global formatter or the command's default, and the
 * command's format for the formatted formatter (NULL: it has none, and
 * -f formatted is refused as doveadm refuses it). NULL after printing
 * why. */
struct printer *cli_printer(struct cli *cli, const char *default_formatter,
			    const char *format);
/* Prints "usage: loftadm <name> <usage>" to stderr; returns EX_USAGE. */
int cli_usage(const struct cli_cmd *cmd);
/* Options of the commands whose only one is "-a <socket>": 0 with
 * *socket_r set (NULL when not given), or cli_usage()'s code. */
int cli_getopt_socket(const struct cli_cmd *cmd, int argc, char **argv,
		      const char **socket_r);
/* doveadm's log lines on stderr: "Error: ...", "Warning: ...", "Info: ...",
 * "Fatal: ..." */
void cli_error(const char *fmt, ...) ATTR_FORMAT(1, 2);
void cli_warning(const char *fmt, ...) ATTR_FORMAT(1, 2);
void cli_info(const char *fmt, ...) ATTR_FORMAT(1, 2);
void cli_fatal(const char *fmt, ...) ATTR_FORMAT(1, 2);

/* doveadm's unixdate2str(): local time "YYYY-MM-DD HH:MM:SS". */
#define CLI_DATE_LEN 32
const char *cli_unixdate(time_t t, char buf[CLI_DATE_LEN]);

int cmd_who(struct cli *cli, const struct cli_cmd *cmd, int argc, char **argv);
int cmd_kick(struct cli *cli, const struct cli_cmd *cmd, int argc, char **argv);
int cmd_proxy_list(struct cli *cli, const struct cli_cmd *cmd, int argc, char **argv);
int cmd_proxy_kick(struct cli *cli, const struct cli_cmd *cmd, int argc, char **argv);
/* reload [--upgrade]: cmd_reload.c */
int cmd_reload(struct cli *cli, const struct cli_cmd *cmd, int argc, char **argv);
int cmd_auth_cache_flush(struct cli *cli, const struct cli_cmd *cmd, int argc, char **argv);

/* director: cmd_director.c changes hosts and users, cmd_director_show.c
 * shows them */
int cmd_director_add(struct cli *cli, const struct cli_cmd *cmd, int argc, char **argv);
int cmd_director_update(struct cli *cli, const struct cli_cmd *cmd, int argc, char **argv);
int cmd_director_up(struct cli *cli, const struct cli_cmd *cmd, int argc, char **argv);
int cmd_director_down(struct cli *cli, const struct cli_cmd *cmd, int argc, char **argv);
int cmd_director_remove(struct cli *cli, const struct cli_cmd *cmd, int argc, char **argv);
int cmd_director_move(struct cli *cli, const struct cli_cmd *cmd, int argc, char **argv);
int cmd_director_kick(struct cli *cli, const struct cli_cmd *cmd, int argc, char **argv);
int cmd_director_flush(struct cli *cli, const struct cli_cmd *cmd, int argc, char **argv);
int cmd_director_ring_add(struct cli *cli, const struct cli_cmd *cmd, int argc,
			  char **argv);
int cmd_director_ring_remove(struct cli *cli, const struct cli_cmd *cmd, int argc,
			     char **argv);
int cmd_director_status(struct cli *cli, const struct cli_cmd *cmd, int argc, char **argv);
int cmd_director_map(struct cli *cli, const struct cli_cmd *cmd, int argc, char **argv);
int cmd_director_dump(struct cli *cli, const struct cli_cmd *cmd, int argc, char **argv);
int cmd_director_ring_status(struct cli *cli, const struct cli_cmd *cmd, int argc,
			     char **argv);

#endif
