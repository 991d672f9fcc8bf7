/* loftadm: global options, the command table, and the shared helpers. */
#include <getopt.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "cli/cli.h"
#include "common/xmalloc.h"

#define LOFTADM_DEFAULT_CONFIG "/etc/loft/loft.conf"
#define LOFTADM_DEFAULT_SOCKET "/run/loft/admin"

#define DIRECTOR_SOCKET "[-a <director socket path>] "

static const struct cli_cmd cli_cmds[] = {
	{ "who", "[--local] [-a <socket>] [-1] [-f <passdb field>] [<user mask>...] [<ip/bits>]",
	  cmd_who },
	{ "kick", "[--local] [-a <socket>] [-f <passdb field>] [-h <dest host>]... "
	  "<user mask>[...]|<ip/bits>", cmd_kick },
	{ "proxy list", "[--local] [-a <socket>]", cmd_proxy_list },
	{ "proxy kick", "[--local] [-a <socket>] [-f <passdb field>] [-h <host> [...] | <user> [...]]",
	  cmd_proxy_kick },
	{ "auth cache flush", "[-a <socket>] [<user> [...]]", cmd_auth_cache_flush },
	{ "director status", DIRECTOR_SOCKET "[<user>] [<tag>]", cmd_director_status },
	{ "director map", DIRECTOR_SOCKET "[-f <users file>] [-h | -u] [<host>]",
	  cmd_director_map },
	{ "director add", DIRECTOR_SOCKET "[-t <tag>] <host> [<vhost count>]",
	  cmd_director_add },
	{ "director update", DIRECTOR_SOCKET "<host> <vhost count>", cmd_director_update },
	{ "director up", DIRECTOR_SOCKET "<host>", cmd_director_up },
	{ "director down", DIRECTOR_SOCKET "<host>", cmd_director_down },
	{ "director remove", DIRECTOR_SOCKET "<host>", cmd_director_remove },
	{ "director move", DIRECTOR_SOCKET "<user> <host>", cmd_director_move },
	{ "director kick", DIRECTOR_SOCKET "[-f <passdb field>] <user>", cmd_director_kick },
	{ "director flush", DIRECTOR_SOCKET "[-F] [--max-parallel <n>] <host>|all",
	  cmd_director_flush },
	{ "director dump", "[-a <director socket path>]", cmd_director_dump },
	{ "director ring add", DIRECTOR_SOCKET "<ip> [<port>]", cmd_director_ring_add },
	{ "director ring remove", DIRECTOR_SOCKET "<ip> [<port>]", cmd_director_ring_remove },
	{ "director ring status", "[-a <director socket path>]", cmd_director_ring_status },
	{ "reload", "[-a <socket>] [--upgrade]", cmd_reload },
};

static void cli_vlog(const char *prefix, const char *fmt, va_list ap)
{
	fputs(prefix, stderr);
	vfprintf(stderr, fmt, ap);
	fputc('\n', stderr);
}

#define CLI_LOG_FUNC(name, prefix) \
	void name(const char *fmt, ...) \
	{ \
		va_list ap; \
		va_start(ap, fmt); \
		cli_vlog(prefix, fmt, ap); \
		va_end(ap); \
	}

CLI_LOG_FUNC(cli_error, "Error: ")
CLI_LOG_FUNC(cli_warning, "Warning: ")
CLI_LOG_FUNC(cli_info, "Info: ")
CLI_LOG_FUNC(cli_fatal, "Fatal: ")

const char *cli_unixdate(time_t t, char buf[CLI_DATE_LEN])
{
	struct tm tm;
	localtime_r(&t, &tm);
	strftime(buf, CLI_DATE_LEN, "%Y-%m-%d %H:%M:%S", &tm);
	return buf;
}

int cli_usage(const struct cli_cmd *cmd)
{
	fprintf(stderr, "usage: loftadm %s %s\n", cmd->name, cmd->usage);
	return EX_USAGE;
}

int cli_getopt_socket(const struct cli_cmd *cmd, int argc, char **argv,
		      const char **socket_r)
{
	int c;
	*socket_r = NULL;
	while ((c = getopt(argc, argv, "a:")) != -1) {
		if (c != 'a')
			return cli_usage(cmd);
		*socket_r = optarg;
	}
	return 0;
}

char *cli_admin_socket(struct cli *cli, const char *cmd_socket)
{
	if (cmd_socket != NULL)
		return xstrdup(cmd_socket);
	if (cli->socket != NULL)
		return xstrdup(cli->socket);
	/* without -c, a missing default config means the default base_dir */
	if (!cli->config_given && access(cli->config_path, F_OK) != 0 &&
	    cli->noverrides == 0)
		return xstrdup(LOFTADM_DEFAULT_SOCKET);
	char *error;
	struct config *cfg = config_load(cli->config_path, cli->overrides,
					 cli->noverrides, &error);
	if (cfg == NULL) {
		cli_error("%s", error);
		free(error);
		return NULL;
	}
	char *path = xasprintf("%s/admin", cfg->base_dir);
	config_free(&cfg);
	return path;
}

struct printer *cli_printer(struct cli *cli, const char *default_formatter,
			    const char *format)
{
	const char *name = cli->formatter != NULL ? cli->formatter : default_formatter;
	if (strcmp(name, "formatted") == 0 && format == NULL) {
		cli_fatal("formatted formatter cannot be used without a format.");
		return NULL;
	}
	struct printer *p = print_new(name, cli->hide_titles, stdout);
	if (p == NULL)
		cli_error("Unknown print formatter: %s", name);
	else if (format != NULL)
		print_set_format(p, format);
	return p;
}

/* Commands are one word ("who") or more ("director ring status"); the
 * number of words is returned in words_r. */
static const struct cli_cmd *loftadm_find_cmd(int argc, char **argv, int *words_r)
{
	for (size_t i = 0; i < ARRAY_SIZE(cli_cmds); i++) {
		const char *name = cli_cmds[i].name;
		int w = 0;
		while (w < argc) {
			size_t len = strcspn(name, " ");
			if (strlen(argv[w]) != len || strncmp(name, argv[w], len) != 0)
				break;
			w++;
			if (name[len] == '\0') {
				*words_r = w;
				return &cli_cmds[i];
			}
			name += len + 1;
		}
	}
	return NULL;
}

static void loftadm_usage(FILE *out)
{
	fprintf(out, "usage: loftadm [-Dv] [-f <formatter>] [-h] [-c <config>] "
		"[-o <key>=<value>] [-i <instance>] [-a <socket>] <command> [<args>]\n\n"
		"commands:\n");
	for (size_t i = 0; i < ARRAY_SIZE(cli_cmds); i++)
		fprintf(out, "  %s %s\n", cli_cmds[i].name, cli_cmds[i].usage);
}

int main(int argc, char **argv)
{
	struct cli cli = { .config_path = LOFTADM_DEFAULT_CONFIG, .argv0 = argv[0] };
	char *instance_config = NULL;
	int c;

	/* --help alone prints the usage (-h is doveadm's "hide titles") */
	if (argc == 2 && strcmp(argv[1], "--help") == 0) {
		loftadm_usage(stdout);
		return EXIT_SUCCESS;
	}
	/* '+': options after the command name belong to the command */
	while ((c = getopt(argc, argv, "+Dvf:hc:o:i:a:")) != -1) {
		switch (c) {
		case 'D':
			cli.debug = cli.verbose = true;
			break;
		case 'v':
			cli.verbose = true;
			break;
		case 'f':
			/* doveadm: the first selection wins */
			if (cli.formatter == NULL)
				cli.formatter = optarg;
			break;
		case 'h':
			cli.hide_titles = true;
			break;
		case 'c':
			cli.config_path = optarg;
			cli.config_given = true;
			break;
		case 'o': {
			char *eq = strchr(optarg, '=');
			if (eq == NULL || cli.noverrides == CLI_MAX_OVERRIDES) {
				cli_error("-o needs <key>=<value>");
				return EX_USAGE;
			}
			*eq = '\0';
			cli.overrides[cli.noverrides++] =
				(struct config_override){ optarg, eq + 1 };
			break;
		}
		case 'i':
			cli.instance = optarg;
			break;
		case 'a':
			cli.socket = optarg;
			break;
		default:
			loftadm_usage(stderr);
			return EX_USAGE;
		}
	}
	if (cli.instance != NULL && !cli.config_given) {
		/* an instance is a config of its own: /etc/loft/<name>.conf */
		instance_config = xasprintf("/etc/loft/%s.conf", cli.instance);
		cli.config_path = instance_config;
		cli.config_given = true;
	}
	if (cli.formatter != NULL && !print_formatter_exists(cli.formatter)) {
		cli_error("Unknown print formatter: %s", cli.formatter);
		free(instance_config);
		return EX_TEMPFAIL;
	}
	if (optind >= argc) {
		loftadm_usage(stderr);
		free(instance_config);
		return EX_USAGE;
	}
	int ret = -1;
	int words;
	const struct cli_cmd *cmd = loftadm_find_cmd(argc - optind, argv + optind, &words);
	if (cmd != NULL) {
		/* the command parses its own options; its name is argv[0] */
		int cargc = argc - optind - words + 1;
		char **cargv = argv + optind + words - 1;
		optind = 0;	/* glibc: start afresh, permuting again */
		ret = cmd->run(&cli, cmd, cargc, cargv);
	} else {
		cli_error("Unknown command '%s'", argv[optind]);
		loftadm_usage(stderr);
		ret = EX_USAGE;
	}
	free(instance_config);
	return ret;
}
