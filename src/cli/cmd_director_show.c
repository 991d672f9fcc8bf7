/* loftadm director status|map|dump|ring status: what the director holds,
 * printed as doveadm 2.3 prints it, column for column (reference §5).
 *
 * Unlike doveadm: map without -f lists the users loftd has assigned, by
 * the name they logged in with (USER-LIST-NAMES), instead of iterating a
 * userdb; hashes come from loftd (USER-HASH), so map -u needs loftd. */
#include <errno.h>
#include <getopt.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "admin/admin_wire.h"
#include "cli/director_client.h"
#include "common/tabescape.h"
#include "common/xmalloc.h"

#define DIRECTOR_REPLY_MAX_FIELDS 16
/* USER-HASH lines sent before their replies are read */
#define DIRECTOR_HASH_BATCH 256

/* Dovecot's str_to_time(): an optional '-', then digits. */
static bool director_parse_time(const char *s, time_t *t_r)
{
	uint64_t v;
	bool neg = *s == '-';
	if (!director_parse_uint(s + neg, INT64_MAX, &v))
		return false;
	*t_r = neg ? -(time_t)v : (time_t)v;
	return true;
}

/* Splits a reply line (copied) into tab-unescaped fields. */
static int director_split(const char *line, char **copy_r,
			  char *fields[DIRECTOR_REPLY_MAX_FIELDS + 1])
{
	*copy_r = xstrdup(line);
	int n = tabsplit_inplace(*copy_r, fields, DIRECTOR_REPLY_MAX_FIELDS);
	fields[n < 0 ? 0 : n] = NULL;
	return n < 0 ? DIRECTOR_REPLY_MAX_FIELDS : n;
}

/* Calls row() for each line of a list reply until its empty line. */
static void director_read_list(struct director_client *dc,
			       void (*row)(char **f, int n, const char *line, void *ctx),
			       void *ctx)
{
	const char *line;
	while ((line = director_client_read(dc)) != NULL && line[0] != '\0') {
		char *copy, *f[DIRECTOR_REPLY_MAX_FIELDS + 1];
		int n = director_split(line, &copy, f);
		row(f, n, line, ctx);
		free(copy);
	}
}

/* ---- status -------------------------------------------------------------- */

/* §5.2: Current / Hashed / Initial config */
static void director_status_user(struct director_client *dc, struct cli *cli,
				 const char *user, const char *tag)
{
	director_client_send(dc, "USER-LOOKUP", user, tag != NULL ? tag : "", NULL);
	const char *line = director_client_read(dc);
	if (line == NULL)
		return;
	char *copy, *f[DIRECTOR_REPLY_MAX_FIELDS + 1];
	time_t expires;
	if (director_split(line, &copy, f) != 4 || !director_parse_time(f[1], &expires)) {
		cli_error("Invalid reply from director");
		dc->exit_code = EX_PROTOCOL;
		free(copy);
		return;
	}
	struct printer *p = cli_printer(cli, "formatted",
					"Current: %{status} (expires %{expires})\n"
					"Hashed: %{hashed}\n"
					"Initial config: %{initial-config}\n");
	if (p == NULL) {
		dc->exit_code = EX_TEMPFAIL;
		free(copy);
		return;
	}
	static const char *const keys[] = { "status", "expires", "hashed",
					    "initial-config" };
	for (size_t i = 0; i < ARRAY_SIZE(keys); i++)
		print_header(p, keys[i], keys[i], 0);
	char date[CLI_DATE_LEN];
	print_value(p, f[0][0] != '\0' ? f[0] : "n/a");
	print_value(p, f[0][0] != '\0' ? cli_unixdate(expires, date) : "-1");
	print_value(p, f[2]);
	print_value(p, f[3]);
	print_flush(p);
	print_free(&p);
	free(copy);
}

/* A list reply kept whole, to be printed once another one is known. */
struct director_rows {
	char **lines;
	size_t count, cap;
};

static void director_rows_add(char **f, int n, const char *line, void *ctx)
{
	struct director_rows *r = ctx;
	(void)f;
	(void)n;
	r->lines = xgrow(r->lines, &r->cap, r->count + 1, sizeof(*r->lines));
	r->lines[r->count++] = xstrdup(line);
}

static void director_rows_free(struct director_rows *r)
{
	for (size_t i = 0; i < r->count; i++)
		free(r->lines[i]);
	free(r->lines);
}

/* HOST-HEALTH's state for this address, or NULL. */
static const char *director_health_of(const struct director_rows *health,
				      const char *ip, char **copy_r)
{
	for (size_t i = 0; i < health->count; i++) {
		char *f[DIRECTOR_REPLY_MAX_FIELDS + 1];
		if (director_split(health->lines[i], copy_r, f) >= 2 &&
		    strcmp(f[0], ip) == 0)
			return f[1];
		free(*copy_r);
	}
	*copy_r = NULL;
	return NULL;
}

/* §5.1, and loft's "health" column after doveadm's while checks run */
static void director_status_hosts(struct director_client *dc, struct printer *p)
{
	struct director_rows hosts = { 0 }, health = { 0 };
	director_client_send(dc, "HOST-LIST", NULL);
	director_read_list(dc, director_rows_add, &hosts);
	if (dc->exit_code == 0) {
		director_client_send(dc, ADMIN_CMD_HOST_HEALTH, NULL);
		director_read_list(dc, director_rows_add, &health);
	}
	print_header(p, "mail server ip", "mail server ip", 0);
	print_header(p, "tag", "tag", 0);
	print_header(p, "vhosts", "vhosts", 0);
	print_header(p, "state", "state", 0);
	print_header(p, "state-changed", "state changed", 0);
	print_header(p, "users", "users", 0);
	if (health.count > 0)
		print_header(p, "health", "health", 0);
	for (size_t i = 0; i < hosts.count; i++) {
		/* ip vhosts users tag U|D changed */
		char *copy, *f[DIRECTOR_REPLY_MAX_FIELDS + 1], date[CLI_DATE_LEN];
		time_t ts;
		if (director_split(hosts.lines[i], &copy, f) >= 6) {
			print_value(p, f[0]);
			print_value(p, f[3]);
			print_value(p, f[1]);
			print_value(p, f[4][0] == 'D' ? "down" : "up");
			print_value(p, !director_parse_time(f[5], &ts) || ts <= 0 ? "-" :
				    cli_unixdate(ts, date));
			print_value(p, f[2]);
			if (health.count > 0) {
				char *hcopy;
				const char *state = director_health_of(&health, f[0], &hcopy);
				print_value(p, state != NULL ? state : "-");
				free(hcopy);
			}
		}
		free(copy);
	}
	print_flush(p);
	director_rows_free(&hosts);
	director_rows_free(&health);
}

int cmd_director_status(struct cli *cli, const struct cli_cmd *cmd, int argc, char **argv)
{
	const char *socket_arg;
	int ret = cli_getopt_socket(cmd, argc, argv, &socket_arg);
	if (ret != 0)
		return ret;
	if (argc - optind > 2)
		return cli_usage(cmd);
	struct director_client dc;
	ret = director_client_open(&dc, cli, socket_arg);
	if (ret != 0) {
		director_client_close(&dc);
		return ret;
	}
	if (optind < argc) {
		director_status_user(&dc, cli, argv[optind],
				     optind + 1 < argc ? argv[optind + 1] : NULL);
	} else {
		struct printer *p = cli_printer(cli, "table", NULL);
		if (p == NULL) {
			director_client_close(&dc);
			return EX_TEMPFAIL;
		}
		director_status_hosts(&dc, p);
		print_free(&p);
	}
	ret = dc.exit_code;
	director_client_close(&dc);
	return ret;
}

/* ---- map ----------------------------------------------------------------- */

struct director_map_user {
	uint32_t hash;
	size_t order;		/* later lines of the file come first, as in doveadm */
	char *name;
};

struct director_map {
	struct director_client *dc;
	struct printer *p;
	struct director_map_user *users;
	size_t count, cap;
	const struct ipaddr *ips;	/* filter; NULL: every host */
	size_t nips;
	bool names;			/* rows carry loftd's usernames */
};

static int director_map_user_cmp(const void *a, const void *b)
{
	const struct director_map_user *ua = a, *ub = b;
	if (ua->hash != ub->hash)
		return ua->hash < ub->hash ? -1 : 1;
	return ua->order > ub->order ? -1 : (ua->order < ub->order);
}

/* The first user with this hash, or NULL. */
static const struct director_map_user *director_map_find(const struct director_map *m,
							 uint32_t hash)
{
	size_t lo = 0, hi = m->count;
	while (lo < hi) {
		size_t mid = lo + (hi - lo) / 2;
		if (m->users[mid].hash < hash)
			lo = mid + 1;
		else
			hi = mid;
	}
	return lo < m->count && m->users[lo].hash == hash ? &m->users[lo] : NULL;
}

/* Reads the users file and has loftd hash each name, a batch at a time
 * so that neither side's buffers fill up. */
static int director_map_read_users(struct director_map *m, const char *path)
{
	FILE *f = fopen(path, "r");
	if (f == NULL) {
		cli_fatal("open(%s) failed: %s", path, strerror(errno));
		return EX_TEMPFAIL;
	}
	char *line = NULL;
	size_t cap = 0;
	ssize_t n;
	while ((n = getline(&line, &cap, f)) >= 0) {
		if (n > 0 && line[n - 1] == '\n')
			line[n - 1] = '\0';
		m->users = xgrow(m->users, &m->cap, m->count + 1, sizeof(*m->users));
		m->users[m->count].name = xstrdup(line);
		m->users[m->count].order = m->count;
		m->count++;
	}
	free(line);
	fclose(f);
	for (size_t start = 0; start < m->count; start += DIRECTOR_HASH_BATCH) {
		size_t end = start + DIRECTOR_HASH_BATCH < m->count ?
			start + DIRECTOR_HASH_BATCH : m->count;
		for (size_t i = start; i < end; i++)
			director_client_send(m->dc, ADMIN_CMD_USER_HASH, m->users[i].name, NULL);
		for (size_t i = start; i < end; i++) {
			uint64_t v;
			const char *reply = director_client_read(m->dc);
			if (reply == NULL)
				return m->dc->exit_code;
			if (!director_parse_uint(reply, UINT32_MAX, &v)) {
				cli_error("Invalid USER-HASH reply: %s", reply);
				return EX_PROTOCOL;
			}
			m->users[i].hash = (uint32_t)v;
		}
	}
	qsort(m->users, m->count, sizeof(*m->users), director_map_user_cmp);
	return 0;
}

static bool director_map_wanted(const struct director_map *m, const char *ip_text)
{
	struct ipaddr ip;
	if (m->nips <= 1)
		return true;	/* none, or one: loftd filtered */
	if (ipaddr_parse(ip_text, &ip) < 0)
		return false;
	for (size_t i = 0; i < m->nips; i++) {
		if (ipaddr_equal(&m->ips[i], &ip))
			return true;
	}
	return false;
}

static void director_map_print(struct director_map *m, const char *user, const char *hash,
			       const char *ip, time_t expires)
{
	char date[CLI_DATE_LEN];
	print_value(m->p, user);
	print_value(m->p, hash);
	print_value(m->p, ip);
	print_value(m->p, cli_unixdate(expires, date));
}

/* USER-LIST (with a users file) or USER-LIST-NAMES: hash expire ip [user tag] */
static void director_map_row(char **f, int n, const char *line, void *ctx)
{
	struct director_map *m = ctx;
	uint64_t hash;
	time_t expires;
	struct ipaddr ip;
	if (n < 3 || !director_parse_uint(f[0], UINT32_MAX, &hash) ||
	    !director_parse_time(f[1], &expires) || ipaddr_parse(f[2], &ip) < 0) {
		cli_error("Invalid USER-LIST reply: %s", line);
		m->dc->exit_code = EX_PROTOCOL;
		return;
	}
	if (!director_map_wanted(m, f[2]))
		return;
	if (m->names) {
		/* loftd knows the name the user logged in with */
		director_map_print(m, n > 3 && f[3][0] != '\0' ? f[3] : "<unknown>", f[0],
				   f[2], expires);
		return;
	}
	const struct director_map_user *u = director_map_find(m, (uint32_t)hash);
	if (u == NULL)
		director_map_print(m, "<unknown>", f[0], f[2], expires);
	for (; u != NULL && u < m->users + m->count && u->hash == hash; u++)
		director_map_print(m, u->name, f[0], f[2], expires);
}

/* The names known for a hash: from the file, or those loftd assigned. */
static void director_map_names_row(char **f, int n, const char *line, void *ctx)
{
	struct director_map *m = ctx;
	(void)line;
	if (n < 4 || f[3][0] == '\0')
		return;
	m->users = xgrow(m->users, &m->cap, m->count + 1, sizeof(*m->users));
	m->users[m->count].name = xstrdup(f[3]);
	m->users[m->count].hash = (uint32_t)strtoul(f[0], NULL, 10);
	m->users[m->count].order = m->count;
	m->count++;
}

static void director_map_hash(struct director_map *m, struct cli *cli, uint32_t hash)
{
	m->p = cli_printer(cli, "table", NULL);
	if (m->p == NULL) {
		m->dc->exit_code = EX_TEMPFAIL;
		return;
	}
	print_header(m->p, "user", "user", PRINT_HIDE_TITLE);
	for (const struct director_map_user *u = director_map_find(m, hash);
	     u != NULL && u < m->users + m->count && u->hash == hash; u++)
		print_value(m->p, u->name);
	print_flush(m->p);
}

static void director_map_list(struct director_map *m, struct cli *cli)
{
	m->p = cli_printer(cli, "table", NULL);
	if (m->p == NULL) {
		m->dc->exit_code = EX_TEMPFAIL;
		return;
	}
	print_header(m->p, "user", "user", PRINT_EXPAND);
	print_header(m->p, "hash", "hash", 0);
	print_header(m->p, "mail server ip", "mail server ip", 0);
	print_header(m->p, "expire time", "expire time", 0);
	char ip[IPADDR_STRLEN];
	if (m->nips == 1)
		ipaddr_to_str(&m->ips[0], ip);
	director_client_send(m->dc, m->names ? ADMIN_CMD_USER_LIST_NAMES : "USER-LIST",
			     m->nips == 1 ? ip : NULL, NULL);
	director_read_list(m->dc, director_map_row, m);
	print_flush(m->p);
}

static int director_map_run(struct director_map *m, struct cli *cli, const char *file,
			    bool hash_map, const char *host)
{
	uint64_t hash = 0;
	struct ipaddr *ips = NULL;
	if (host != NULL && !hash_map) {
		if (director_client_get_host(m->dc, host, &ips, &m->nips) < 0)
			return m->dc->exit_code;
		m->ips = ips;
	}
	int ret = 0;
	if (file != NULL)
		ret = director_map_read_users(m, file);
	if (ret == 0 && hash_map) {
		if (!director_parse_uint(host, UINT32_MAX, &hash)) {
			cli_fatal("Invalid username hash: %s", host);
			ret = EX_TEMPFAIL;
		} else {
			if (file == NULL) {
				director_client_send(m->dc, ADMIN_CMD_USER_LIST_NAMES, NULL);
				director_read_list(m->dc, director_map_names_row, m);
				qsort(m->users, m->count, sizeof(*m->users),
				      director_map_user_cmp);
			}
			director_map_hash(m, cli, (uint32_t)hash);
		}
	} else if (ret == 0) {
		m->names = file == NULL;
		director_map_list(m, cli);
	}
	free(ips);
	return ret != 0 ? ret : m->dc->exit_code;
}

/* -u: the hash alone, in a table without a title */
static void director_map_user_hash(struct director_client *dc, struct cli *cli,
				   const char *user)
{
	uint32_t hash;
	if (director_client_user_hash(dc, user, &hash) < 0)
		return;
	struct printer *p = cli_printer(cli, "table", NULL);
	if (p == NULL) {
		dc->exit_code = EX_TEMPFAIL;
		return;
	}
	char text[16];
	snprintf(text, sizeof(text), "%" PRIu32, hash);
	print_header(p, "hash", "hash", PRINT_HIDE_TITLE);
	print_value(p, text);
	print_flush(p);
	print_free(&p);
}

int cmd_director_map(struct cli *cli, const struct cli_cmd *cmd, int argc, char **argv)
{
	const char *socket_arg = NULL, *file = NULL;
	bool hash_map = false, user_map = false;
	int c;
	while ((c = getopt(argc, argv, "a:f:hu")) != -1) {
		switch (c) {
		case 'a':
			socket_arg = optarg;
			break;
		case 'f':
			file = optarg;
			break;
		case 'h':
			hash_map = true;
			break;
		case 'u':
			user_map = true;
			break;
		default:
			return cli_usage(cmd);
		}
	}
	const char *host = optind < argc ? argv[optind] : NULL;
	if (argc - optind > 1 || ((hash_map || user_map) && host == NULL))
		return cli_usage(cmd);
	struct director_client dc;
	int ret = director_client_open(&dc, cli, socket_arg);
	if (ret == 0 && user_map) {
		director_map_user_hash(&dc, cli, host);
		ret = dc.exit_code;
	} else if (ret == 0) {
		struct director_map m = { .dc = &dc };
		ret = director_map_run(&m, cli, file, hash_map, host);
		for (size_t i = 0; i < m.count; i++)
			free(m.users[i].name);
		free(m.users);
		print_free(&m.p);
	}
	director_client_close(&dc);
	return ret;
}

/* ---- dump ---------------------------------------------------------------- */

struct director_dump {
	struct printer *p;
	const char *path;
	const char *command;
};

/* HOST-LIST: "add" ip[@tag] vhosts; HOST-LIST-REMOVED: "remove" ip "" */
static void director_dump_row(char **f, int n, const char *line, void *ctx)
{
	struct director_dump *d = ctx;
	if (strcmp(d->command, "remove") == 0) {
		print_value(d->p, "remove");
		print_value(d->p, d->path);
		print_value(d->p, line);
		print_value(d->p, "");
		return;
	}
	if (n < 2)
		return;
	char *host = n > 3 && f[3][0] != '\0' ? xasprintf("%s@%s", f[0], f[3]) :
		xstrdup(f[0]);
	print_value(d->p, "add");
	print_value(d->p, d->path);
	print_value(d->p, host);
	print_value(d->p, f[1]);
	free(host);
}

int cmd_director_dump(struct cli *cli, const struct cli_cmd *cmd, int argc, char **argv)
{
	const char *socket_arg;
	int ret = cli_getopt_socket(cmd, argc, argv, &socket_arg);
	if (ret != 0)
		return ret;
	if (optind != argc)
		return cli_usage(cmd);
	struct director_client dc;
	ret = director_client_open(&dc, cli, socket_arg);
	if (ret != 0) {
		director_client_close(&dc);
		return ret;
	}
	/* the commands replay the state with the same socket */
	struct director_dump d = {
		cli_printer(cli, "formatted", dc.explicit_path ?
			    "doveadm director %{command} -a %{socket-path} %{host} "
			    "%{vhost_count}\n" :
			    "doveadm director %{command} %{host} %{vhost_count}\n"),
		dc.path, "add",
	};
	if (d.p == NULL) {
		director_client_close(&dc);
		return EX_TEMPFAIL;
	}
	static const char *const keys[] = { "command", "socket-path", "host", "vhost_count" };
	for (size_t i = 0; i < ARRAY_SIZE(keys); i++)
		print_header(d.p, keys[i], keys[i], 0);
	director_client_send(&dc, "HOST-LIST", NULL);
	director_read_list(&dc, director_dump_row, &d);
	if (dc.exit_code == 0) {
		d.command = "remove";
		director_client_send(&dc, "HOST-LIST-REMOVED", NULL);
		director_read_list(&dc, director_dump_row, &d);
	}
	print_flush(d.p);
	print_free(&d.p);
	ret = dc.exit_code;
	director_client_close(&dc);
	return ret;
}

/* ---- ring status ---------------------------------------------------------- */

#define RING_STATUS_COLUMNS 12

/* §5.5: 12 columns, times as dates ("never" for 0), "-" where missing */
static void director_ring_row(char **f, int n, const char *line, void *ctx)
{
	struct printer *p = ctx;
	int i;
	(void)line;
	for (i = 0; i < RING_STATUS_COLUMNS && i < n; i++) {
		time_t ts;
		char date[CLI_DATE_LEN];
		if ((i == 3 || i == 10 || i == 11) && director_parse_time(f[i], &ts))
			print_value(p, ts == 0 ? "never" : cli_unixdate(ts, date));
		else
			print_value(p, f[i]);
	}
	for (; i < RING_STATUS_COLUMNS; i++)
		print_value(p, "-");
}

int cmd_director_ring_status(struct cli *cli, const struct cli_cmd *cmd, int argc,
			     char **argv)
{
	static const char *const titles[RING_STATUS_COLUMNS] = {
		"director ip", "port", "type", "last failed", "status", "ping ms",
		"input", "output", "buffered", "buffered peak", "last read", "last write",
	};
	const char *socket_arg;
	int ret = cli_getopt_socket(cmd, argc, argv, &socket_arg);
	if (ret != 0)
		return ret;
	if (optind != argc)
		return cli_usage(cmd);
	struct director_client dc;
	ret = director_client_open(&dc, cli, socket_arg);
	struct printer *p = ret == 0 ? cli_printer(cli, "table", NULL) : NULL;
	if (p != NULL) {
		for (size_t i = 0; i < RING_STATUS_COLUMNS; i++)
			print_header(p, titles[i], titles[i], 0);
		director_client_send(&dc, "DIRECTOR-LIST", NULL);
		director_read_list(&dc, director_ring_row, p);
		print_flush(p);
		print_free(&p);
		ret = dc.exit_code;
	} else if (ret == 0) {
		ret = EX_TEMPFAIL;
	}
	director_client_close(&dc);
	return ret;
}
