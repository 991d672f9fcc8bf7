/* loftadm auth cache flush [-a <socket>] [<user> ...]: doveadm's command,
 * through loft's admin socket (loft has no auth-master socket). Without
 * users every entry goes. Output as doveadm 2.3 prints it:
 *
 *   3 cache entries flushed
 *
 * with exit 0, also when there was nothing to flush (or no cache). When
 * loftd cannot be asked, doveadm 2.3.19 prints its error and still "0
 * cache entries flushed" with exit 0; loftadm prints "Error: Cache flush
 * failed" after the reason and exits 75 (EX_TEMPFAIL), as doveadm meant
 * to. Users go in lines of AUTH_FLUSH_BATCH (a line has at most
 * ADMIN_MAX_ARGS fields), their counts added up. */
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "admin/admin_wire.h"
#include "cli/director_client.h"

#define AUTH_FLUSH_BATCH 32

/* Sends one AUTH-CACHE-FLUSH line with users [0, count) and adds its
 * count to *total_r. 0, or -1 after printing why. */
static int auth_cache_flush_batch(struct director_client *dc, char **users, size_t count,
				  uint64_t *total_r)
{
	const char *fields[AUTH_FLUSH_BATCH + 1] = { ADMIN_CMD_AUTH_CACHE_FLUSH };
	char *error;
	uint64_t n;
	for (size_t i = 0; i < count; i++)
		fields[i + 1] = users[i];
	if (admin_client_send(dc->conn, fields, count + 1, &error) < 0) {
		cli_error("%s", error);
		free(error);
		return -1;
	}
	const char *line = director_client_read(dc);
	if (line == NULL)
		return -1;
	if (strncmp(line, "OK\t", 3) != 0 || !director_parse_uint(line + 3, UINT32_MAX, &n)) {
		cli_error("%s", line);
		return -1;
	}
	*total_r += n;
	return 0;
}

int cmd_auth_cache_flush(struct cli *cli, const struct cli_cmd *cmd, int argc, char **argv)
{
	const char *socket_arg;
	struct director_client dc;
	uint64_t total = 0;
	int ret = cli_getopt_socket(cmd, argc, argv, &socket_arg);
	if (ret != 0)
		return ret;
	char **users = argv + optind;
	size_t count = (size_t)(argc - optind);
	ret = director_client_open(&dc, cli, socket_arg);
	size_t i = 0;
	do {
		size_t n = count - i < AUTH_FLUSH_BATCH ? count - i : AUTH_FLUSH_BATCH;
		if (ret == 0 && auth_cache_flush_batch(&dc, users + i, n, &total) < 0)
			ret = EX_TEMPFAIL;
		i += n;
	} while (ret == 0 && i < count);
	if (ret != 0) {
		cli_error("Cache flush failed");
		director_client_close(&dc);
		return EX_TEMPFAIL;
	}
	printf("%" PRIu64 " cache entries flushed\n", total);
	director_client_close(&dc);
	return 0;
}
