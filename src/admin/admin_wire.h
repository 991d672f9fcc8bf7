/* The wire format shared by loftd's admin socket and loftadm: the
 * handshake lines and the names and fields of loft's own commands. */
#ifndef LOFT_ADMIN_WIRE_H
#define LOFT_ADMIN_WIRE_H

#define ADMIN_VERSION_LINE "VERSION\tdirector-doveadm\t1\t0\n"
#define ADMIN_VERSION_PREFIX "VERSION\tdirector-doveadm\t1\t"
#define ADMIN_MAX_LINE 65536
#define ADMIN_MAX_ARGS 64	/* fields of one command line, its name included */

/* SESSION-LIST: one line per session, then an empty line:
 *   id service user state client_ip client_port backend_ip backend_port
 *   start_unix pid [user_field=value ...]
 * (TAB-separated, each field tab-escaped; empty when unknown; the id in
 * the 16-hex-digit form the logs use) */
#define ADMIN_CMD_SESSION_LIST "SESSION-LIST"
/* SESSION-KICK: kicks the matching sessions; replies one "user\tcount"
 * line per kicked user (sorted), then an empty line. Both commands take
 * filter fields: user=<mask> (repeatable), alt=<user_* field>,
 * net=<ip[/bits]>, dest=<ip> and desthost=<name or mask> (repeatable),
 * logged-in, proxied. */
#define ADMIN_CMD_SESSION_KICK "SESSION-KICK"

/* RING-ALL\t<command>[\t<arg>...]: SESSION-LIST or SESSION-KICK run on
 * every node of the ring (doc/ring.md §14): one block per node, this
 * node's first,
 *   NODE\t<name>\t<why it has no answer, or "">
 * followed, when it answered, by its reply as that command gives it
 * (ending in an empty line); after the last block an empty line. A
 * lone loftd answers one block named "". */
#define ADMIN_CMD_RING_ALL "RING-ALL"

/* USER-HASH\t<user>: the user's hash under loftd's director.username_hash
 * (so that loftadm never hashes differently from the daemon, unlike
 * doveadm, reference §4.6). */
#define ADMIN_CMD_USER_HASH "USER-HASH"
/* USER-LIST-NAMES[\t<ip>]: USER-LIST's lines with the username and the
 * tag appended: hash expire ip user tag (user "" when only the hash is
 * known), then an empty line. */
#define ADMIN_CMD_USER_LIST_NAMES "USER-LIST-NAMES"

/* USER-KICK-NODES\t[<user_* field>\t]<value>: a director kick (USER-KICK,
 * USER-KICK-ALT) answered, in a ring, "OK\t<node>\t<count>[...]": how many
 * sessions each node closed; on a single loftd "OK"; otherwise as
 * USER-KICK answers. */
#define ADMIN_CMD_USER_KICK_NODES "USER-KICK-NODES"

/* HOST-HEALTH: with health checks running, one line per host:
 *   ip ok|failing|unknown changed_unix last_error
 * then an empty line; without checks only the empty line. */
#define ADMIN_CMD_HOST_HEALTH "HOST-HEALTH"

/* RELOAD: the configuration read again, as on SIGHUP: "OK", or
 * "ERROR\t<why>" when the running one stays. */
#define ADMIN_CMD_RELOAD "RELOAD"
/* UPGRADE: the binary replaced, as on SIGUSR2 (loftd(8)), answered once
 * the new loftd serves, "OK\t<its pid>", or with "ERROR\t<why>" when it
 * was refused or failed (the old one serves on). */
#define ADMIN_CMD_UPGRADE "UPGRADE"
/* AUTH-CACHE-FLUSH[\t<user>...]: forgets the auth cache's entries of
 * the users (names normalised as logins' are), or all of them; replies
 * "OK\t<entries flushed>" (0 without a cache). This node's cache only. */
#define ADMIN_CMD_AUTH_CACHE_FLUSH "AUTH-CACHE-FLUSH"

enum admin_session_field {
	ADMIN_SESSION_ID,
	ADMIN_SESSION_SERVICE,
	ADMIN_SESSION_USER,
	ADMIN_SESSION_STATE,
	ADMIN_SESSION_CLIENT_IP,
	ADMIN_SESSION_CLIENT_PORT,
	ADMIN_SESSION_BACKEND_IP,
	ADMIN_SESSION_BACKEND_PORT,
	ADMIN_SESSION_START,
	ADMIN_SESSION_PID,
	ADMIN_SESSION_FIXED_FIELDS,	/* alternative usernames follow */
};

#endif
