/* The director's durable state: the host list as admins changed it at run
 * time (add, update, up, down, remove), so that a restart of loftd does
 * not undo them. Dovecot's director had no such file; its host changes
 * lived only in the ring.
 *
 * <state_dir>/director.state is a text file written whole: to a temporary
 * file, fsync, rename over the old one, fsync the directory. A reader
 * therefore sees the old file or the new one, never a mix:
 *
 *   loft-director-state<TAB>1
 *   host<TAB><ip><TAB><vhosts><TAB>U|D<TAB><last up/down change><TAB><tag>
 *   removed<TAB><ip>          a configured host an admin removed
 *   end<TAB><number of host and removed lines>
 *
 * The tag is tab-escaped. Anything else (an unknown line, a bad field, no
 * end line, a wrong count) makes the whole file invalid: loftd refuses to
 * start rather than guess which hosts the admins meant. */
#ifndef LOFT_DIRECTOR_STATE_H
#define LOFT_DIRECTOR_STATE_H

#include <stddef.h>

#include "common/sbuf.h"
#include "director/director.h"
#include "director/hosts.h"

#define DIRECTOR_STATE_FILE "director.state"
/* held (flock) while a loftd uses the state_dir: two would overwrite
 * each other's changes */
#define DIRECTOR_STATE_LOCK "director.lock"

/* Parses a whole state file into hosts and removed (whose entries carry
 * only an address). Returns -1 with "line N: reason". */
int director_state_parse(const char *data, size_t len, struct director_host_list *hosts,
			 struct director_host_list *removed, char **error_r);

/* Formats hosts, and as removed every host of initial missing from hosts. */
void director_state_format(const struct director_host_list *hosts,
			   const struct director_host_list *initial, struct sbuf *out);

/* The state file of state_dir as the director's store (director.h),
 * holding DIRECTOR_STATE_LOCK while it lives. NULL with the reason when
 * the lock cannot be had. lock_fd >= 0 is that lock already held, as
 * inherited from the loftd this one replaces (-1: take it). */
struct director_store *director_state_store_open(const char *state_dir, int lock_fd,
						char **error_r);
/* The descriptor holding the lock, to hand to a successor. */
int director_state_store_lock_fd(const struct director_store *store);

#endif
