/* What loftadm's session commands share: turning doveadm-style arguments
 * into the admin socket's filter fields, and calling SESSION-LIST and
 * SESSION-KICK. */
#ifndef LOFT_CLI_SESSIONS_H
#define LOFT_CLI_SESSIONS_H

#include <stdbool.h>
#include <stddef.h>

#include "admin/admin_wire.h"
#include "cli/cli.h"

#define CLI_SESSION_MAX_FIELDS 64

/* The request being built: command name, then filter fields. */
struct cli_request {
	char **fields;
	size_t count, cap;
};

void cli_request_init(struct cli_request *r, const char *command);
void cli_request_add(struct cli_request *r, const char *key, const char *value);
void cli_request_free(struct cli_request *r);

/* §7.1: each argument that is not purely numeric and parses as ip[/bits]
 * is the network (one at most), every other one a username mask. Prints
 * the usage error and returns EX_USAGE on misuse, else 0. */
int cli_request_add_masks(struct cli_request *r, const struct cli_cmd *cmd,
			  int argc, char **argv, const char *alt_field,
			  size_t *masks_r, bool *net_r);
/* -h: an address, or a name that stands for every address it resolves to
 * (and for backends configured under that name). Returns 0, or EX_NOHOST
 * after an error when the name does not resolve and must. */
int cli_request_add_host(struct cli_request *r, const char *host, bool must_resolve);

struct cli_session {
	char *fields[CLI_SESSION_MAX_FIELDS];
	int nfields;
	char *line;	/* owns what fields point into */
};

/* Runs SESSION-LIST; returns 0 or an exit code after printing why. */
int cli_sessions_list(struct cli *cli, const char *socket_arg,
		      const struct cli_request *req, struct cli_session **list_r,
		      size_t *count_r);
void cli_sessions_free(struct cli_session *list, size_t count);
const char *cli_session_alt(const struct cli_session *s, const char *field);
/* The distinct user_* field names of the sessions, in order of
 * appearance: one column each. Free with cli_alt_fields_free(). */
char **cli_alt_fields(const struct cli_session *list, size_t n, size_t *count_r);
void cli_alt_fields_free(char **fields, size_t count);

struct cli_kicked {
	char *user;
	size_t count;
};
/* Runs SESSION-KICK; the kicked users come sorted. */
int cli_sessions_kick(struct cli *cli, const char *socket_arg,
		      const struct cli_request *req, struct cli_kicked **users_r,
		      size_t *count_r);
void cli_kicked_free(struct cli_kicked *users, size_t count);

#endif
