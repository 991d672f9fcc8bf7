/* Between upgrade.c (starting the successor, the handover, the drain)
 * and upgrade_overlap.c (what the two processes tell each other). */
#ifndef LOFT_DAEMON_UPGRADE_PRIVATE_H
#define LOFT_DAEMON_UPGRADE_PRIVATE_H

#include "daemon/upgrade.h"

/* ---- upgrade.c, for the overlap's links ---- */

/* The successor serves: this loftd stops accepting and drains. */
void upgrade_handover(struct loftd *d);
/* The successor failed before it served (why: what happened to it). */
void upgrade_failed(struct loftd *d, const char *why);

/* ---- upgrade_overlap.c ---- */

/* The old loftd: the link to the successor on fd, the assignments sent
 * ("USER" lines, then "END"), every session taken or given back from now
 * on told. */
void upgrade_overlap_start_succ(struct loftd *d, int fd);
/* The old loftd: the successor failed or is gone; nothing is told any
 * more. */
void upgrade_overlap_end_succ(struct loftd *d);
/* The new loftd serves: the link to the old one, from what it sent
 * beyond the assignments on. */
void upgrade_overlap_start_pred(struct loftd *d);
/* Gives back every session of the old loftd still counted, and closes
 * the links. */
void upgrade_overlap_free(struct loftd *d);

#endif
