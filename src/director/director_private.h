/* Shared by director.c and director_move.c. Internal to src/director. */
#ifndef LOFT_DIRECTOR_PRIVATE_H
#define LOFT_DIRECTOR_PRIVATE_H

#include "common/hmap.h"
#include "common/list.h"
#include "director/chash.h"
#include "director/director.h"
#include "director/user_hash.h"
#include "director/users.h"

struct director_tag {
	char *name;
	struct chash ring;		/* the current hosts */
	struct chash initial_ring;	/* director.mail_servers as configured */
	struct user_directory users;
};

struct director {
	struct event_base *base;
	struct user_hasher *hasher;
	struct director_host_list hosts;
	struct director_host_list initial;
	struct director_tag *tags;	/* append-only: tickets hold indexes */
	size_t tags_count;
	time_t expire_secs;
	uint64_t kick_delay_ms;
	unsigned int max_parallel_moves;
	struct director_callbacks cb;
	void *cb_ctx;
	struct hmap moves;		/* struct director_move by (tag, hash) */
	struct list resets;		/* running HOST-RESET-USERS jobs */
	char *state_path;		/* NULL: host changes are not saved */
	int state_lock_fd;		/* -1 until the state_dir is locked */
	bool health_checks;		/* hosts' health is being checked */
};

struct director_tag *director_tag_get(struct director *d, const char *name,
				      bool create, uint16_t *idx_r);
/* After any change to hosts or vhosts: the rings and the callback. */
void director_hosts_changed(struct director *d);

/* state.c: the saved host list replaces the configured one (0 also when
 * there is no file yet); saving writes the current one. */
int director_state_lock(struct director *d, const char *state_dir, char **error_r);
int director_state_load(struct director *d, char **error_r);
int director_state_save(struct director *d, char **error_r);

/* director_move.c */
bool director_user_moving(struct director *d, uint16_t tag, uint32_t hash);
/* A login for a user being moved waits for the move. */
void director_move_add_waiter(struct director *d, uint16_t tag, uint32_t hash,
			      uint64_t waiter);
/* The user's last session ended: a kill waiting for it may go on. */
void director_move_sessions_gone(struct director *d, uint16_t tag, uint32_t hash);
/* Starts a move of user to host (no kill if the host stays the same unless
 * forced). done() is called when it is over. */
void director_move_start(struct director *d, uint16_t tag, struct director_user *user,
			 struct director_host *host, bool force_kill, time_t now,
			 void (*done)(void *ctx), void *ctx);
/* Ends any move of a user that is about to be forgotten. */
void director_move_abort(struct director *d, uint16_t tag, uint32_t hash);
void director_moves_free(struct director *d);

#endif
