/* Session requests to the admin socket. */
#include "cli/sessions.h"

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

/* Connects and sends the request; NULL after printing why. */
static struct admin_client *cli_request_send(struct cli *cli, const char *socket_arg,
					     const struct cli_request *req)
{
	char *path = cli_admin_socket(cli, socket_arg), *error;
	if (path == NULL)
		return NULL;
	struct admin_client *c = admin_client_connect(path, &error);
	free(path);
	if (c == NULL || admin_client_send(c, (const char *const *)req->fields,
					   req->count, &error) < 0) {
		cli_error("%s", error);
		free(error);
		admin_client_close(&c);
		return NULL;
	}
	return c;
}

/* Reads lines until the empty one; calls got() for each. 0 or an exit code. */
static int cli_read_list(struct admin_client *c, int (*got)(char *line, void *ctx),
			 void *ctx)
{
	char *error;
	for (;;) {
		char *line = admin_client_read_line(c, &error);
		if (line == NULL) {
			cli_error("%s", error);
			free(error);
			return EX_TEMPFAIL;
		}
		if (line[0] == '\0')
			return 0;
		if (strncmp(line, "ERROR\t", 6) == 0) {
			cli_error("%s", line + 6);
			return EX_TEMPFAIL;
		}
		int ret = got(line, ctx);
		if (ret != 0)
			return ret;
	}
}

struct cli_list_ctx {
	struct cli_session *list;
	size_t count, cap;
};

static int cli_got_session(char *line, void *ctx)
{
	struct cli_list_ctx *l = ctx;
	struct cli_session s = { .line = xstrdup(line) };
	s.nfields = tabsplit_inplace(s.line, s.fields, CLI_SESSION_MAX_FIELDS);
	if (s.nfields < ADMIN_SESSION_FIXED_FIELDS) {
		cli_error("Invalid SESSION-LIST reply: %s", line);
		free(s.line);
		return EX_PROTOCOL;
	}
	l->list = xgrow(l->list, &l->cap, l->count + 1, sizeof(*l->list));
	l->list[l->count++] = s;
	return 0;
}

int cli_sessions_list(struct cli *cli, const char *socket_arg,
		      const struct cli_request *req, struct cli_session **list_r,
		      size_t *count_r)
{
	struct cli_list_ctx l = { 0 };
	struct admin_client *c = cli_request_send(cli, socket_arg, req);
	int ret = c == NULL ? EX_TEMPFAIL : cli_read_list(c, cli_got_session, &l);
	admin_client_close(&c);
	*list_r = l.list;
	*count_r = l.count;
	return ret;
}

void cli_sessions_free(struct cli_session *list, size_t count)
{
	for (size_t i = 0; i < count; i++)
		free(list[i].line);
	free(list);
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

struct cli_kick_ctx {
	struct cli_kicked *users;
	size_t count, cap;
};

static int cli_got_kicked(char *line, void *ctx)
{
	struct cli_kick_ctx *k = ctx;
	char *f[3];
	char *end;
	if (tabsplit_inplace(line, f, 3) != 2) {
		cli_error("Invalid SESSION-KICK reply");
		return EX_PROTOCOL;
	}
	unsigned long n = strtoul(f[1], &end, 10);
	if (*end != '\0') {
		cli_error("Invalid SESSION-KICK reply");
		return EX_PROTOCOL;
	}
	k->users = xgrow(k->users, &k->cap, k->count + 1, sizeof(*k->users));
	k->users[k->count].user = xstrdup(f[0]);
	k->users[k->count].count = n;
	k->count++;
	return 0;
}

int cli_sessions_kick(struct cli *cli, const char *socket_arg,
		      const struct cli_request *req, struct cli_kicked **users_r,
		      size_t *count_r)
{
	struct cli_kick_ctx k = { 0 };
	struct admin_client *c = cli_request_send(cli, socket_arg, req);
	int ret = c == NULL ? EX_TEMPFAIL : cli_read_list(c, cli_got_kicked, &k);
	admin_client_close(&c);
	*users_r = k.users;
	*count_r = k.count;
	return ret;
}

void cli_kicked_free(struct cli_kicked *users, size_t count)
{
	for (size_t i = 0; i < count; i++)
		free(users[i].user);
	free(users);
}
