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

/* The request being built: command name, then filter fields. Sent to
 * every node of the ring (RING-ALL) unless local. */
struct cli_request {
	char **fields;
	size_t count, cap;
	bool local;
};

/* Takes loft's --local out of argv (before getopt sees it): true when it
 * was there. Only this node's sessions are then asked for. */
bool cli_take_local(int *argc, char **argv);

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

/* The nodes that answered a request, and those that did not. */
struct cli_nodes {
	char **names;		/* every node that answered, in order */
	size_t count, cap;
	char **missing;		/* "<name> <why>" */
	size_t missing_count, missing_cap;
	bool named;		/* a ring: the output names the nodes */
};
/* Warns of each node missing from the answer; EX_TEMPFAIL if any, else 0. */
int cli_nodes_report(const struct cli_nodes *nodes);
void cli_nodes_free(struct cli_nodes *nodes);

/* 200,000 of these make a ring's who (issue 14): kept small, one
 * allocation each, so that reading and walking them stays in cache. */
struct cli_session {
	char **fields;	/* nfields, then the line they point into: one block */
	int nfields;
	const char *node;	/* which node it is on ("" on a lone loftd) */
};

struct cli_sessions {
	struct cli_session *list;
	size_t count, cap;
	struct cli_nodes nodes;
};

/* Runs SESSION-LIST; returns 0 or an exit code after printing why. */
int cli_sessions_list(struct cli *cli, const char *socket_arg,
		      const struct cli_request *req, struct cli_sessions *sessions);
void cli_sessions_free(struct cli_sessions *sessions);
/* Runs SESSION-LIST and hands over each session as it is read, keeping
 * none: its fields are valid only during the call. Returns 0, cb's
 * non-zero return, or an exit code after printing why. */
typedef int cli_session_cb(const struct cli_session *s, void *ctx);
int cli_sessions_each(struct cli *cli, const char *socket_arg,
		      const struct cli_request *req, struct cli_nodes *nodes,
		      cli_session_cb *cb, void *ctx);
const char *cli_session_alt(const struct cli_session *s, const char *field);
/* The distinct user_* field names of the sessions, in order of
 * appearance: one column each. Free with cli_alt_fields_free(). */
char **cli_alt_fields(const struct cli_session *list, size_t n, size_t *count_r);
void cli_alt_fields_free(char **fields, size_t count);

struct cli_kicked_user {
	char *user;
	size_t count;
};

struct cli_kicked {
	struct cli_kicked_user *users;	/* sorted, each user once */
	size_t count, cap;
	size_t *node_totals;		/* sessions kicked on nodes.names[i] */
	size_t totals_count;
	size_t total;
	struct cli_nodes nodes;
};
/* Runs SESSION-KICK. */
int cli_sessions_kick(struct cli *cli, const char *socket_arg,
		      const struct cli_request *req, struct cli_kicked *kicked);
void cli_kicked_free(struct cli_kicked *kicked);
/* -v: "<node>: N connections kicked" for each node of a ring, then
 * "N connections kicked". */
void cli_kicked_print_nodes(const struct cli_kicked *kicked);

#endif
