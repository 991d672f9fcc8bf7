/* What loftadm's director commands share (reference §4-5): a connection
 * to the admin socket that remembers its path, replies read the way
 * doveadm reads them, and host names resolved the way doveadm resolves
 * them. */
#ifndef LOFT_CLI_DIRECTOR_CLIENT_H
#define LOFT_CLI_DIRECTOR_CLIENT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "cli/admin_client.h"
#include "cli/cli.h"
#include "common/net.h"

struct director_client {
	struct admin_client *conn;
	char *path;
	bool explicit_path;	/* -a was given (director dump prints it) */
	int exit_code;		/* what the command exits with so far */
};

/* Connects to -a (the command's or the global one) or the configured
 * socket. Returns 0, or an exit code after printing why. */
int director_client_open(struct director_client *dc, struct cli *cli,
			 const char *socket_arg);
void director_client_close(struct director_client *dc);

/* Sends one line of fields (tab-escaped); NULL fields end the list. */
void director_client_send(struct director_client *dc, const char *first, ...)
	ATTR_SENTINEL;
/* The next reply line, or NULL when loftd closed the connection or did
 * not answer: then the error is printed and exit_code is 75, as doveadm
 * does ("<socket> unexpectedly disconnected"). */
const char *director_client_read(struct director_client *dc);

/* doveadm's director_get_host(): an address, or every address a name
 * resolves to. Returns 0, or prints "gethostname(...) failed" and sets
 * exit_code to 75. */
int director_client_get_host(struct director_client *dc, const char *host,
			     struct ipaddr **ips_r, size_t *count_r);

/* The user's hash as loftd computes it (USER-HASH). */
int director_client_user_hash(struct director_client *dc, const char *user,
			      uint32_t *hash_r);

/* Dovecot's str_to_uint(): digits only, no sign, no overflow. */
bool director_parse_uint(const char *s, uint64_t max, uint64_t *v_r);

#endif
