/* SIGHUP: the configuration and TLS certificates again, without touching
 * established sessions. */
#ifndef LOFT_DAEMON_RELOAD_H
#define LOFT_DAEMON_RELOAD_H

struct loftd;

/* Loads the file again (with the same -o overrides). A broken file, or
 * certificates that do not load, change nothing and say why (logged, and
 * in *error_r, which the caller frees: -1); otherwise every changed key
 * is applied or, if only a restart can apply it, logged as such. why
 * names what asked ("SIGHUP", "loftadm reload"). */
int loftd_reload(struct loftd *d, const char *why, char **error_r);

#endif
