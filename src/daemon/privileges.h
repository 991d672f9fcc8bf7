/* Leaving root after start-up. Listeners are bound, keys read and the
 * state directory locked as root; then loftd becomes the configured user
 * and group, so whoever takes over the network-facing process does not
 * get root. Running on as root needs allow_root = true. */
#ifndef LOFT_DAEMON_PRIVILEGES_H
#define LOFT_DAEMON_PRIVILEGES_H

#include <stdbool.h>
#include <sys/types.h>

struct config;

struct privileges {
	bool change;		/* false: stay who we are */
	uid_t uid;
	gid_t gid;
	char *user;
};

/* Resolves user and group and checks the choice against who runs loftd;
 * on a refusal returns -1 with the reason (caller frees). */
int privileges_prepare(const struct config *cfg, struct privileges *p,
		       char **error_r);
/* Gives the directories loftd writes at run time to the user ("" skipped). */
int privileges_own_dir(const struct privileges *p, const char *dir,
		       char **error_r);
/* setgroups/setgid/setuid, and proof that root cannot come back. */
int privileges_drop(const struct privileges *p, char **error_r);
void privileges_free(struct privileges *p);

#endif
