/* Replacing the running loftd by a new binary without dropping a session
 * (loftd(8) SIGNALS, SIGUSR2). The old loftd starts the binary it was
 * started from (its path as /proc/self/exe named it at start, so a package
 * that replaced the file starts the new one) with the same command line.
 * The new process inherits the listening sockets, the state_dir lock and
 * one end of a socketpair, named in the environment (LOFTD_UPGRADE_FD,
 * LOFTD_LISTEN_FDS, LOFTD_STATE_LOCK_FD); it makes the admin and ipc
 * sockets anew (the old ones were renamed to <name>.old-<pid>), takes
 * the old one's user assignments from the socketpair, accepts on the
 * inherited sockets and writes "READY" back. Then the old one stops
 * accepting, tells systemd the new MAINPID, and relays its sessions until
 * they end or shutdown.max_drain passes. A new process that exits or does
 * not serve within shutdown.upgrade_timeout is killed and the old one
 * serves on as before.
 *
 * The socketpair stays open while both relay sessions (upgrade_overlap.c
 * has the protocol): the new loftd counts the old one's sessions in its
 * director, so a move waits for them as for its own and sends the old one
 * the kill; so no user is on two backends during the overlap. A ring's
 * node hands over its lease and its ring.port socket too, and the old
 * process follows the new one's fence (doc/ring.md §16). */
#ifndef LOFT_DAEMON_UPGRADE_H
#define LOFT_DAEMON_UPGRADE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>
#include <time.h>

#include "common/hmap.h"
#include "common/sbuf.h"

struct loftd;
struct event;
struct upgrade_link;

/* How an upgrade asked for ended: the new loftd serves (error NULL, pid
 * its process), or it failed or was refused (error says why). */
typedef void upgrade_done_fn(void *ctx, pid_t pid, const char *error);

struct upgrade {
	/* what to start: saved at start, before getopt() touched argv */
	char *exe;			/* NULL: /proc/self/exe unreadable */
	char **argv;
	/* as the new loftd: what the old one handed over (-1: nothing) */
	int parent_fd;
	int *fds;
	size_t fds_count;
	int lock_fd;
	/* as the new loftd, until the old one's last session ended: its
	 * sessions, counted (struct upgrade_hold), and the link to it */
	struct upgrade_link *pred;
	pid_t pred_pid;
	struct hmap holds;
	struct sbuf pending;		/* its assignments, and what came after */
	struct sbuf to_pred;		/* for it, until this loftd serves */
	/* a ring's node: the lease and join time it handed over (0: none) */
	int64_t ring_lease;
	time_t ring_started;
	/* as the old loftd: the new one starting, and then serving */
	pid_t child;
	upgrade_done_fn *done;		/* who asked, until it ended */
	void *done_ctx;
	struct upgrade_link *succ;
	struct event *timeout_ev;
	/* as the old loftd after the handover */
	bool ring_detached;		/* it was a ring's node: the new one is */
	struct event *drain_ev;
	uint64_t drain_start;		/* monotonic ms */
};

/* Saves the executable's path and argv, and takes what a replaced loftd
 * handed over from the environment (removing it from there). */
void upgrade_init(struct upgrade *u, int argc, char **argv);
/* True in a loftd started by an upgrade. */
bool upgrade_is_successor(const struct upgrade *u);
/* Reads the director's user assignments the old loftd sends (so that
 * users with sessions there go to the same backend here), each checked.
 * -1 after logging why: the start fails, and the old loftd serves on. */
int upgrade_take_users(struct loftd *d);
/* Applies them, and counts the old loftd's sessions: when the director
 * has its hosts (a ring's too), before this loftd routes anyone. */
void upgrade_apply_users(struct loftd *d);
/* Closes inherited descriptors no listener took (the configuration no
 * longer names them). */
void upgrade_close_unused(struct upgrade *u);
/* The new loftd serves: tells the old one. */
void upgrade_serving(struct loftd *d);
/* SIGUSR2 (why "SIGUSR2") or loftadm reload --upgrade: starts the new
 * binary, or logs why not; done (optional) is called once with the end. */
void upgrade_start(struct loftd *d, const char *why, upgrade_done_fn *done, void *ctx);
/* The director closes a user's sessions (a move) or kicks: the loftd
 * this one replaced, still relaying sessions, closes its too. */
void upgrade_forward_kill(struct loftd *d, uint16_t tag, uint32_t hash);
void upgrade_forward_kick(struct loftd *d, const char *field, const char *value);
/* A ring's node: the fence state (serving, and until when it may relay),
 * which the old loftd's sessions follow once it left the ring to this
 * one. */
void upgrade_forward_fence(struct loftd *d, bool serving, uint64_t relay_until_ms);
/* A stop begins: a new loftd not serving yet is killed. */
void upgrade_cancel(struct loftd *d);
/* Gives back what the other loftd's sessions held here and closes the
 * links to it; before the director and the loop are freed. */
void upgrade_free(struct loftd *d);

#endif
