/* loftadm who (reference §7.1, §7.4): the logged-in sessions from
 * SESSION-LIST, grouped by user and service, or one per line with -1.
 *
 * Grouped columns: username # service (pids) (ips)
 * -1 columns: username service pid ip dest_ip [user_* ...], then loft's
 * own: dest_port session since. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "admin/admin_wire.h"
#include "cli/admin_client.h"
#include "cli/cli.h"
#include "common/net.h"
#include "common/sbuf.h"
#include "common/tabescape.h"
#include "common/wildcard.h"
#include "common/xmalloc.h"

#define WHO_MAX_FIELDS 64

struct who_session {
	char *fields[WHO_MAX_FIELDS];
	int nfields;
	char *line;		/* owns what fields point into */
};

struct who_filter {
	char **masks;
	int nmasks;
	bool have_net;
	struct cidr net;
	const char *alt_field;	/* -f: match masks against this user_* field */
};

struct who_group {
	const char *user;
	const char *service;
	unsigned int count;
	struct sbuf pids;
	struct sbuf ips;
};

static const char *who_alt_value(const struct who_session *s, const char *field)
{
	size_t flen = strlen(field);
	for (int i = ADMIN_SESSION_FIXED_FIELDS; i < s->nfields; i++) {
		if (strncmp(s->fields[i], field, flen) == 0 && s->fields[i][flen] == '=')
			return s->fields[i] + flen + 1;
	}
	return NULL;
}

static bool who_matches(const struct who_filter *f, const struct who_session *s)
{
	if (f->have_net) {
		struct ipaddr ip;
		if (ipaddr_parse(s->fields[ADMIN_SESSION_CLIENT_IP], &ip) < 0 ||
		    !cidr_match(&f->net, &ip))
			return false;
	}
	if (f->nmasks == 0)
		return true;
	const char *name = f->alt_field != NULL ? who_alt_value(s, f->alt_field) :
		s->fields[ADMIN_SESSION_USER];
	if (name == NULL)
		return false;
	for (int i = 0; i < f->nmasks; i++) {
		if (wildcard_match_icase(name, f->masks[i]))
			return true;
	}
	return false;
}

/* Reads SESSION-LIST; keeps logged-in sessions that match. */
static int who_fetch(struct admin_client *c, const struct who_filter *f,
		     struct who_session **list_r, size_t *count_r)
{
	static const char *const cmd[] = { ADMIN_CMD_SESSION_LIST };
	char *error;
	size_t cap = 0;

	*list_r = NULL;
	*count_r = 0;
	if (admin_client_send(c, cmd, 1, &error) < 0) {
		cli_error("%s", error);
		free(error);
		return EX_TEMPFAIL;
	}
	for (;;) {
		char *line = admin_client_read_line(c, &error);
		if (line == NULL) {
			cli_error("%s", error);
			free(error);
			return EX_TEMPFAIL;
		}
		if (line[0] == '\0')
			return 0;
		struct who_session s = { .line = xstrdup(line) };
		s.nfields = tabsplit_inplace(s.line, s.fields, WHO_MAX_FIELDS);
		if (s.nfields < ADMIN_SESSION_FIXED_FIELDS) {
			cli_error("Invalid SESSION-LIST reply: %s", line);
			free(s.line);
			return EX_PROTOCOL;
		}
		if (s.fields[ADMIN_SESSION_USER][0] == '\0' || !who_matches(f, &s)) {
			free(s.line);
			continue;
		}
		*list_r = xgrow(*list_r, &cap, *count_r + 1, sizeof(**list_r));
		(*list_r)[(*count_r)++] = s;
	}
}

/* Appends "x" to a "(a b)" style list unless it is already there. */
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

static void who_print_grouped(struct printer *p, struct who_session *list, size_t n)
{
	struct who_group *groups = NULL;
	size_t ngroups = 0, cap = 0;

	for (size_t i = 0; i < n; i++) {
		const char *user = list[i].fields[ADMIN_SESSION_USER];
		const char *service = list[i].fields[ADMIN_SESSION_SERVICE];
		struct who_group *g = NULL;
		for (size_t j = 0; j < ngroups && g == NULL; j++) {
			if (strcmp(groups[j].user, user) == 0 &&
			    strcmp(groups[j].service, service) == 0)
				g = &groups[j];
		}
		if (g == NULL) {
			groups = xgrow(groups, &cap, ngroups + 1, sizeof(*groups));
			g = &groups[ngroups++];
			memset(g, 0, sizeof(*g));
			g->user = user;
			g->service = service;
		}
		g->count++;
		who_list_add(&g->pids, list[i].fields[ADMIN_SESSION_PID]);
		who_list_add(&g->ips, list[i].fields[ADMIN_SESSION_CLIENT_IP]);
	}
	print_header(p, "username", "username", 0);
	print_header(p, "connections", "#", PRINT_RIGHT);
	print_header(p, "service", "service", 0);
	print_header(p, "pids", "(pids)", 0);
	print_header(p, "ips", "(ips)", 0);
	for (size_t i = 0; i < ngroups; i++) {
		char count[16], *pids, *ips;
		snprintf(count, sizeof(count), "%u", groups[i].count);
		pids = xasprintf("(%s)", sbuf_cstr(&groups[i].pids));
		ips = xasprintf("(%s)", sbuf_cstr(&groups[i].ips));
		print_value(p, groups[i].user);
		print_value(p, count);
		print_value(p, groups[i].service);
		print_value(p, pids);
		print_value(p, ips);
		free(pids);
		free(ips);
		sbuf_free(&groups[i].pids);
		sbuf_free(&groups[i].ips);
	}
	free(groups);
}

static void who_print_each(struct printer *p, struct who_session *list, size_t n)
{
	char **alt = NULL;
	size_t nalt = 0, cap = 0;

	/* one column per alternative-username field, in order of appearance */
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
	for (size_t i = 0; i < n; i++) {
		char *const *f = list[i].fields;
		print_value(p, f[ADMIN_SESSION_USER]);
		print_value(p, f[ADMIN_SESSION_SERVICE]);
		print_value(p, f[ADMIN_SESSION_PID]);
		print_value(p, f[ADMIN_SESSION_CLIENT_IP]);
		print_value(p, f[ADMIN_SESSION_BACKEND_IP]);
		for (size_t k = 0; k < nalt; k++) {
			const char *v = who_alt_value(&list[i], alt[k]);
			print_value(p, v != NULL ? v : "");
		}
		print_value(p, f[ADMIN_SESSION_BACKEND_PORT]);
		print_value(p, f[ADMIN_SESSION_ID]);
		char since[32];
		time_t t = (time_t)strtoll(f[ADMIN_SESSION_START], NULL, 10);
		struct tm tm;
		localtime_r(&t, &tm);
		strftime(since, sizeof(since), "%Y-%m-%d %H:%M:%S", &tm);
		print_value(p, since);
	}
	for (size_t k = 0; k < nalt; k++)
		free(alt[k]);
	free(alt);
}

/* §7.1: a non-numeric argument that parses as ip[/bits] is the network
 * filter, anything else a username mask. */
static int who_parse_args(const struct cli_cmd *cmd, int argc, char **argv,
			  struct who_filter *f)
{
	for (int i = 0; i < argc; i++) {
		struct cidr net;
		if (cidr_parse(argv[i], &net) == 0) {
			if (f->have_net) {
				cli_error("Multiple network masks not supported");
				return cli_usage(cmd);
			}
			f->have_net = true;
			f->net = net;
		} else {
			f->masks = xrealloc(f->masks, (size_t)(f->nmasks + 1) * sizeof(char *));
			f->masks[f->nmasks++] = argv[i];
		}
	}
	if (f->alt_field != NULL && f->nmasks == 0) {
		cli_error("Username must be given with passdb-field parameter");
		return cli_usage(cmd);
	}
	return 0;
}

int cmd_who(struct cli *cli, const struct cli_cmd *cmd, int argc, char **argv)
{
	struct who_filter filter = { 0 };
	const char *socket_arg = NULL;
	bool one_per_line = false;
	int c, ret;

	while ((c = getopt(argc, argv, "a:1f:")) != -1) {
		switch (c) {
		case 'a':
			socket_arg = optarg;
			break;
		case '1':
			one_per_line = true;
			break;
		case 'f':
			filter.alt_field = optarg;
			break;
		default:
			return cli_usage(cmd);
		}
	}
	if ((ret = who_parse_args(cmd, argc - optind, argv + optind, &filter)) != 0) {
		free(filter.masks);
		return ret;
	}
	char *path = cli_admin_socket(cli, socket_arg), *error;
	struct printer *p = path == NULL ? NULL : cli_printer(cli, "table");
	struct admin_client *ac = p == NULL ? NULL : admin_client_connect(path, &error);
	if (ac == NULL) {
		if (p != NULL) {
			cli_error("%s", error);
			free(error);
		}
		print_free(&p);
		free(path);
		free(filter.masks);
		return EX_TEMPFAIL;
	}
	struct who_session *list;
	size_t n;
	ret = who_fetch(ac, &filter, &list, &n);
	if (ret == 0) {
		if (one_per_line)
			who_print_each(p, list, n);
		else
			who_print_grouped(p, list, n);
		print_flush(p);
	}
	for (size_t i = 0; i < n; i++)
		free(list[i].line);
	free(list);
	admin_client_close(&ac);
	print_free(&p);
	free(path);
	free(filter.masks);
	return ret;
}
