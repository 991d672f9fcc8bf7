/* SIGHUP: the configuration and TLS certificates again, without touching
 * established sessions. */
#ifndef LOFT_DAEMON_RELOAD_H
#define LOFT_DAEMON_RELOAD_H

struct loftd;

/* Loads the file again (with the same -o overrides). A broken file, or
 * certificates that do not load, change nothing and say why; otherwise
 * every changed key is applied or, if only a restart can apply it,
 * logged as such. */
void loftd_reload(struct loftd *d);

#endif
