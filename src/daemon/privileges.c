/* Switching from root to the configured user and group. */
#include "daemon/privileges.h"

#include <errno.h>
#include <grp.h>
#include <pwd.h>
#include <stdlib.h>
#include <string.h>
#ifdef LOFT_SANITIZER
#include <sys/prctl.h>
#endif
#include <unistd.h>

#include "common/xmalloc.h"
#include "conf/config.h"

/* After getpwnam()/getgrnam() gave NULL (errno cleared before). */
static char *privileges_lookup_error(const char *what, const char *name)
{
	return errno != 0 ? xasprintf("%s %s: %s", what, name, strerror(errno)) :
		xasprintf("%s %s: no such %s", what, name, what);
}

static int privileges_group(const char *name, gid_t *gid_r, char **error_r)
{
	errno = 0;
	const struct group *gr = getgrnam(name);
	if (gr == NULL) {
		*error_r = privileges_lookup_error("group", name);
		return -1;
	}
	*gid_r = gr->gr_gid;
	return 0;
}

int privileges_prepare(const struct config *cfg, struct privileges *p,
		       char **error_r)
{
	memset(p, 0, sizeof(*p));
	const char *name = cfg->user;
	if (name[0] == '\0') {
		if (geteuid() == 0 && !cfg->allow_root) {
			*error_r = xstrdup("loftd would run as root: set user to the "
					   "account it should switch to after start-up "
					   "(e.g. user = \"loft\";), or allow_root = true");
			return -1;
		}
		return 0;
	}
	errno = 0;
	const struct passwd *pw = getpwnam(name);
	if (pw == NULL) {
		*error_r = privileges_lookup_error("user", name);
		return -1;
	}
	if (pw->pw_uid == 0 && !cfg->allow_root) {
		*error_r = xasprintf("user %s is root: set allow_root = true to run as root",
				     name);
		return -1;
	}
	p->uid = pw->pw_uid;
	p->gid = pw->pw_gid;
	if (cfg->group[0] != '\0' && privileges_group(cfg->group, &p->gid, error_r) < 0)
		return -1;
	if (geteuid() != 0) {
		/* started as the user already (systemd User=): nothing to do */
		if (geteuid() == p->uid)
			return 0;
		*error_r = xasprintf("user %s: switching to it needs loftd to start as "
				     "root (it runs as uid %u)", name, (unsigned int)geteuid());
		return -1;
	}
	p->change = p->uid != 0;
	p->user = xstrdup(name);
	return 0;
}

int privileges_own_dir(const struct privileges *p, const char *dir, char **error_r)
{
	if (!p->change || dir[0] == '\0')
		return 0;
	if (chown(dir, p->uid, p->gid) < 0) {
		*error_r = xasprintf("cannot give %s to user %s: %s", dir, p->user,
				     strerror(errno));
		return -1;
	}
	return 0;
}

int privileges_drop(const struct privileges *p, char **error_r)
{
	if (!p->change)
		return 0;
	/* supplementary groups of the user, e.g. one that may read the key */
	if (initgroups(p->user, p->gid) < 0 || setgid(p->gid) < 0 ||
	    setuid(p->uid) < 0) {
		*error_r = xasprintf("cannot switch to user %s (uid %u, gid %u): %s",
				     p->user, (unsigned int)p->uid,
				     (unsigned int)p->gid, strerror(errno));
		return -1;
	}
	if (setuid(0) == 0 || geteuid() == 0) {
		*error_r = xstrdup("root privileges could be regained after setuid()");
		return -1;
	}
#ifdef LOFT_SANITIZER
	/* setuid() made the process undumpable, and LeakSanitizer cannot
	 * stop the threads of an undumpable process. Only sanitizer builds
	 * turn it back on: elsewhere a core file would hold passwords in
	 * flight and the TLS key. */
	(void)prctl(PR_SET_DUMPABLE, 1, 0, 0, 0);
#endif
	return 0;
}

void privileges_free(struct privileges *p)
{
	free(p->user);
	p->user = NULL;
}
