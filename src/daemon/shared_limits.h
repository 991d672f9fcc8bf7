/* Limits counted over a director ring: the registry, the proxy and the
 * ring wired together (shared_limits.c). */
#ifndef LOFT_DAEMON_SHARED_LIMITS_H
#define LOFT_DAEMON_SHARED_LIMITS_H

#include "daemon/loftd.h"

/* Once d->ring and d->proxy exist. */
void loftd_share_limits(struct loftd *d);
/* Before d->ring goes. */
void loftd_unshare_limits(struct loftd *d);

#endif
