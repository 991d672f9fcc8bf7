/* The director commands' connection and helpers. */
#include "cli/director_client.h"

#include <netdb.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>

#include "admin/admin_wire.h"
#include "common/xmalloc.h"

int director_client_open(struct director_client *dc, struct cli *cli,
			 const char *socket_arg)
{
	char *error;
	memset(dc, 0, sizeof(*dc));
	dc->explicit_path = socket_arg != NULL || cli->socket != NULL;
	dc->path = cli_admin_socket(cli, socket_arg);
	if (dc->path == NULL)
		return EX_TEMPFAIL;
	dc->conn = admin_client_connect(dc->path, &error);
	if (dc->conn == NULL) {
		cli_error("%s", error);
		free(error);
		return EX_TEMPFAIL;
	}
	return 0;
}

void director_client_close(struct director_client *dc)
{
	admin_client_close(&dc->conn);
	free(dc->path);
	dc->path = NULL;
}

void director_client_send(struct director_client *dc, const char *first, ...)
{
	const char *fields[16];
	size_t n = 0;
	va_list ap;
	va_start(ap, first);
	for (const char *f = first; f != NULL && n < ARRAY_SIZE(fields);
	     f = va_arg(ap, const char *))
		fields[n++] = f;
	va_end(ap);
	char *error;
	/* a failed write shows as a disconnection at the next read */
	if (admin_client_send(dc->conn, fields, n, &error) < 0)
		free(error);
}

const char *director_client_read(struct director_client *dc)
{
	char *error;
	const char *line = admin_client_read_line(dc->conn, &error);
	if (line == NULL) {
		cli_error("%s", error);
		free(error);
		dc->exit_code = EX_TEMPFAIL;
	}
	return line;
}

int director_client_get_host(struct director_client *dc, const char *host,
			     struct ipaddr **ips_r, size_t *count_r)
{
	struct ipaddr ip;
	if (ipaddr_parse(host, &ip) == 0) {
		*ips_r = xmalloc(sizeof(ip));
		**ips_r = ip;
		*count_r = 1;
		return 0;
	}
	struct addrinfo hints = { .ai_socktype = SOCK_STREAM }, *res;
	int ret = getaddrinfo(host, NULL, &hints, &res);
	if (ret != 0) {
		cli_error("gethostname(%s) failed: %s", host, gai_strerror(ret));
		dc->exit_code = EX_TEMPFAIL;
		return -1;
	}
	size_t cap = 0;
	*ips_r = NULL;
	*count_r = 0;
	for (struct addrinfo *ai = res; ai != NULL; ai = ai->ai_next) {
		uint16_t port;
		ipaddr_from_sockaddr(ai->ai_addr, &ip, &port);
		*ips_r = xgrow(*ips_r, &cap, *count_r + 1, sizeof(**ips_r));
		(*ips_r)[(*count_r)++] = ip;
	}
	freeaddrinfo(res);
	return 0;
}

bool director_parse_uint(const char *s, uint64_t max, uint64_t *v_r)
{
	uint64_t v = 0;
	if (*s == '\0')
		return false;
	for (; *s != '\0'; s++) {
		if (*s < '0' || *s > '9' || v > (max - (uint64_t)(*s - '0')) / 10)
			return false;
		v = v * 10 + (uint64_t)(*s - '0');
	}
	*v_r = v;
	return true;
}

int director_client_user_hash(struct director_client *dc, const char *user,
			      uint32_t *hash_r)
{
	uint64_t v;
	director_client_send(dc, ADMIN_CMD_USER_HASH, user, NULL);
	const char *line = director_client_read(dc);
	if (line == NULL)
		return -1;
	if (!director_parse_uint(line, UINT32_MAX, &v)) {
		cli_error("Invalid USER-HASH reply: %s", line);
		dc->exit_code = EX_PROTOCOL;
		return -1;
	}
	*hash_r = (uint32_t)v;
	return 0;
}
