/* While an upgrade's two loftds both relay sessions: what they tell each
 * other over the socketpair (upgrade.h). Lines are tab-separated, the
 * text fields tab-escaped.
 *
 * old -> new
 *   USER <hash> <host> <tag> <username> <sessions>
 *                     an assignment, with how many sessions it has (a
 *                     loftd from before the overlap protocol sends no
 *                     sessions field); then
 *   END               the new loftd serves after reading this far
 *   HOLD <hash> <host> <tag> <username>
 *                     a login of the old loftd took a session of the user
 *                     (one that was finishing its login at the handover)
 *   RELEASE <hash> <tag>
 *                     one of its sessions of the user ended
 * new -> old
 *   READY             the new loftd serves (upgrade.c)
 *   KILL <hash> <tag> a move: close the user's sessions
 *   KICK <field> <value>
 *                     a director kick (field empty: the user name)
 * and "EXEC <errno>" from the child when the binary could not be run.
 *
 * The new loftd counts each of the old one's sessions as a session
 * reference in its director (director_user_hold), so a move waits until
 * the old one's sessions of the user are gone too, after it sent the kill,
 * and the user's record does not expire under them. A HOLD of a user the
 * new loftd routes elsewhere, or is moving, gets a KILL back. When the
 * old loftd exits (its last session ended) the link closes and every count
 * left is given back. */
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "common/clock.h"
#include "common/log.h"
#include "common/net.h"
#include "common/tabescape.h"
#include "common/xmalloc.h"
#include "daemon/loftd.h"
#include "daemon/upgrade_link.h"
#include "daemon/upgrade_private.h"
#include "director/director.h"
#include "proxy/proxy.h"
#include "registry/registry.h"

#define UPGRADE_READ_SIZE 65536
#define UPGRADE_MAX_FIELDS 7

/* The old loftd's sessions of one user, as the new one counts them. */
struct upgrade_hold {
	struct hmap_node node;		/* in upgrade.holds by (tag, hash) */
	struct director_ticket ticket;	/* copied for each one given back */
	uint32_t count;
};

static uint64_t upgrade_hold_key(uint16_t tag, uint32_t hash)
{
	return hash_u64((uint64_t)tag << 32 | hash);
}

static struct upgrade_hold *upgrade_hold_find(struct upgrade *u, uint16_t tag, uint32_t hash)
{
	struct hmap_node *n;
	HMAP_FOR_EACH_WITH_HASH(n, upgrade_hold_key(tag, hash), &u->holds) {
		struct upgrade_hold *h = CONTAINER_OF(n, struct upgrade_hold, node);
		if (h->ticket.tag == tag && h->ticket.hash == hash)
			return h;
	}
	return NULL;
}

/* -1 unless s is a whole number up to max. */
static int upgrade_parse_u32(const char *s, uint32_t max, uint32_t *r)
{
	char *end;
	errno = 0;
	unsigned long v = strtoul(s, &end, 10);
	if (*s == '\0' || *end != '\0' || errno != 0 || v > max || *s == '-')
		return -1;
	*r = (uint32_t)v;
	return 0;
}

/* ---- the new loftd ------------------------------------------------------- */

/* Counts one session of the old loftd. */
static void upgrade_hold_count(struct upgrade *u, const struct director_ticket *t)
{
	struct upgrade_hold *h = upgrade_hold_find(u, t->tag, t->hash);
	if (h == NULL) {
		h = xcalloc(1, sizeof(*h));
		h->ticket = *t;
		hmap_insert(&u->holds, &h->node, upgrade_hold_key(t->tag, t->hash));
	}
	h->ticket.gen = t->gen;	/* the newest record's */
	h->count++;
}

/* `sessions` sessions of the old loftd on the user's record (0: the
 * record only). ELSEWHERE: they must close (counted all the same when
 * the user is being moved: the move waits for their end). */
static enum director_hold_result upgrade_hold(struct loftd *d, const char *tag,
					      uint32_t hash, const struct ipaddr *ip,
					      const char *username, uint32_t sessions)
{
	time_t now = time(NULL);
	if (sessions == 0)
		return director_user_hold(d->director, tag, hash, ip, username, now, NULL);
	enum director_hold_result r = DIRECTOR_HOLD_OK;
	for (uint32_t i = 0; i < sessions && r != DIRECTOR_HOLD_UNKNOWN; i++) {
		struct director_ticket t;
		r = director_user_hold(d->director, tag, hash, ip, username, now, &t);
		if (t.held)
			upgrade_hold_count(&d->upgrade, &t);
	}
	return r;
}

static void upgrade_release(struct loftd *d, uint16_t tag, uint32_t hash)
{
	struct upgrade *u = &d->upgrade;
	struct upgrade_hold *h = upgrade_hold_find(u, tag, hash);
	if (h == NULL)
		return;	/* a session the count never had (its host unknown here) */
	struct director_ticket t = h->ticket;
	if (--h->count == 0) {
		hmap_remove(&u->holds, &h->node);
		free(h);
	}
	director_release(d->director, &t, time(NULL));
}

static void upgrade_release_all(struct loftd *d)
{
	struct upgrade *u = &d->upgrade;
	struct hmap_node *n, *next;
	HMAP_FOR_EACH_SAFE(n, next, &u->holds) {
		struct upgrade_hold *h = CONTAINER_OF(n, struct upgrade_hold, node);
		hmap_remove(&u->holds, n);
		for (uint32_t i = 0; i < h->count; i++) {
			struct director_ticket t = h->ticket;
			director_release(d->director, &t, time(NULL));
		}
		free(h);
	}
	hmap_destroy(&u->holds);
}

/* Where lines for the old loftd go: the link, or, before this loftd
 * serves, what the link sends first. NULL: no old loftd relays. */
static struct sbuf *upgrade_to_pred(struct upgrade *u)
{
	if (u->pred != NULL)
		return upgrade_link_output(u->pred);
	return u->parent_fd >= 0 ? &u->to_pred : NULL;
}

static void upgrade_to_pred_send(struct upgrade *u)
{
	if (u->pred != NULL)
		upgrade_link_send(u->pred);
}

static void upgrade_send_kill(struct upgrade *u, const char *tag, uint32_t hash)
{
	struct sbuf *out = upgrade_to_pred(u);
	if (out == NULL)
		return;
	sbuf_appendf(out, "KILL\t%u\t", hash);
	tabescape_append(out, tag);
	sbuf_appendc(out, '\n');
	upgrade_to_pred_send(u);
}

/* USER (with or without its sessions field) or HOLD: checked, and with
 * d, applied (a session the new loftd's view puts elsewhere gets a
 * KILL). NULL, or what is wrong with it. */
static const char *upgrade_take_user(struct loftd *d, char **f, int n, bool hold)
{
	uint32_t hash, sessions = hold ? 1 : 0;
	struct ipaddr ip;
	if (n != 5 && !(n == 6 && !hold))
		return "wrong field count";
	if (upgrade_parse_u32(f[1], UINT32_MAX, &hash) < 0)
		return "invalid user hash";
	if (ipaddr_parse(f[2], &ip) < 0)
		return "invalid host address";
	if (n == 6 && upgrade_parse_u32(f[5], UINT32_MAX, &sessions) < 0)
		return "invalid session count";
	if (d != NULL && sessions > 0 &&
	    upgrade_hold(d, f[3], hash, &ip, f[4], sessions) == DIRECTOR_HOLD_ELSEWHERE)
		upgrade_send_kill(&d->upgrade, f[3], hash);
	else if (d != NULL && sessions == 0)
		(void)upgrade_hold(d, f[3], hash, &ip, f[4], 0);
	return NULL;
}

/* The USER lines of buf up to END, each checked, and with d applied;
 * *lines_r counts on. -1 with *error_r; 0 with *end_r past END; 1 when
 * END has not come yet, *end_r past the last whole line. */
static int upgrade_users_scan(struct loftd *d, char *buf, size_t len, size_t *end_r,
			      size_t *lines_r, const char **error_r)
{
	char *start = buf, *stop = buf + len, *lf;
	*end_r = 0;
	while ((lf = memchr(start, '\n', (size_t)(stop - start))) != NULL) {
		char *f[UPGRADE_MAX_FIELDS];
		/* a copy: the lines stay as they came until they are applied */
		char *line = d == NULL ? xstrndup(start, (size_t)(lf - start)) : start;
		if (d != NULL)
			*lf = '\0';
		int nf = tabsplit_inplace(line, f, UPGRADE_MAX_FIELDS);
		bool end = nf == 1 && strcmp(f[0], "END") == 0;
		*error_r = end ? NULL : nf >= 1 && strcmp(f[0], "USER") == 0 ?
			upgrade_take_user(d, f, nf, false) : "not a USER line";
		if (d == NULL)
			free(line);
		(*lines_r)++;
		start = lf + 1;
		*end_r = (size_t)(start - buf);
		if (*error_r != NULL)
			return -1;
		if (end)
			return 0;
	}
	return 1;
}

int upgrade_take_users(struct loftd *d)
{
	struct upgrade *u = &d->upgrade;
	if (u->parent_fd < 0)
		return 0;
	uint64_t ms = d->cfg->shutdown.upgrade_timeout_ms;
	struct timeval tv = { (time_t)(ms / 1000), (suseconds_t)(ms % 1000) * 1000 };
	setsockopt(u->parent_fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
	struct sbuf *in = &u->pending;
	size_t lines = 0, scanned = 0, end;
	const char *error = NULL;
	int ret = 1;
	/* read up to END, each line checked; they are applied when this
	 * loftd is about to serve (upgrade_apply_users), once a ring has
	 * given the director its hosts */
	while (ret == 1) {
		char *p = sbuf_reserve(in, UPGRADE_READ_SIZE);
		ssize_t n = read(u->parent_fd, p, UPGRADE_READ_SIZE);
		if (n <= 0) {
			error = n == 0 ? "the old loftd closed the connection" :
				errno == EAGAIN ? "the old loftd sent nothing within "
				"shutdown.upgrade_timeout" : strerror(errno);
			break;
		}
		sbuf_commit(in, (size_t)n);
		/* the whole lines that came since the last read */
		ret = upgrade_users_scan(NULL, sbuf_mdata(in) + scanned, sbuf_len(in) - scanned,
					 &end, &lines, &error);
		scanned += end;
	}
	if (error != NULL) {
		log_error("upgrade: user assignments from the old loftd, line %zu: %s",
			  lines, error);
		return -1;
	}
	return 0;
}

void upgrade_apply_users(struct loftd *d)
{
	struct upgrade *u = &d->upgrade;
	size_t lines = 0, end = 0;
	const char *error;
	if (u->parent_fd < 0)
		return;
	/* checked as they came: nothing fails now */
	if (upgrade_users_scan(d, sbuf_mdata(&u->pending), sbuf_len(&u->pending), &end,
			       &lines, &error) == 0)
		sbuf_consume(&u->pending, end);
	log_info("upgrade: %zu user assignments taken over from the old loftd",
		 lines > 0 ? lines - 1 : 0);
}

static void upgrade_pred_line(void *ctx, char *line)
{
	struct loftd *d = ctx;
	char *f[UPGRADE_MAX_FIELDS];
	uint32_t hash;
	const char *error = NULL;
	int n = tabsplit_inplace(line, f, UPGRADE_MAX_FIELDS);
	if (n >= 1 && strcmp(f[0], "HOLD") == 0) {
		error = upgrade_take_user(d, f, n, true);
	} else if (n == 3 && strcmp(f[0], "RELEASE") == 0 &&
		   upgrade_parse_u32(f[1], UINT32_MAX, &hash) == 0) {
		uint16_t tag = director_tag_index(d->director, f[2]);
		if (tag != DIRECTOR_TAG_NONE)
			upgrade_release(d, tag, hash);
	} else {
		error = "unknown line";
	}
	if (error != NULL)
		log_warning("upgrade: from the old loftd (pid %d): %s: %s",
			    (int)d->upgrade.pred_pid, error, n >= 1 ? f[0] : "");
}

static void upgrade_pred_closed(void *ctx, const char *why)
{
	struct loftd *d = ctx;
	struct upgrade *u = &d->upgrade;
	size_t left = hmap_count(&u->holds);
	upgrade_link_free(&u->pred);
	upgrade_release_all(d);
	if (left == 0)
		log_info("upgrade: the old loftd (pid %d) has ended", (int)u->pred_pid);
	else
		log_warning("upgrade: the link to the old loftd (pid %d) %s with sessions "
			    "of %zu users counted; they count no more", (int)u->pred_pid,
			    why, left);
}

void upgrade_overlap_start_pred(struct loftd *d)
{
	static const struct upgrade_link_ops ops = {
		.line = upgrade_pred_line,
		.closed = upgrade_pred_closed,
	};
	struct upgrade *u = &d->upgrade;
	u->pred_pid = getppid();
	u->pred = upgrade_link_new(d->base, u->parent_fd, &ops, d, sbuf_data(&u->pending),
				   sbuf_len(&u->pending));
	u->parent_fd = -1;
	sbuf_free(&u->pending);
	/* what the director told the old loftd before this one served */
	sbuf_append(upgrade_link_output(u->pred), sbuf_data(&u->to_pred), sbuf_len(&u->to_pred));
	sbuf_free(&u->to_pred);
	upgrade_link_send(u->pred);
}

/* ---- the old loftd ------------------------------------------------------- */

static void upgrade_user_line(const struct director_user_info *info, void *ctx)
{
	struct sbuf *out = ctx;
	sbuf_appendf(out, "USER\t%u\t%s\t", info->hash, info->host->ip_str);
	tabescape_append(out, info->tag);
	sbuf_appendc(out, '\t');
	tabescape_append(out, info->username);
	sbuf_appendf(out, "\t%u\n", info->sessions);
}

/* director_session_watch_fn: every session taken or given back here
 * from the snapshot on. */
static void upgrade_session_watch(void *ctx, const char *tag, uint32_t hash,
				  const struct director_host *host, const char *username,
				  bool taken)
{
	struct loftd *d = ctx;
	struct sbuf *out = upgrade_link_output(d->upgrade.succ);
	if (taken) {
		sbuf_appendf(out, "HOLD\t%u\t%s\t", hash, host->ip_str);
		tabescape_append(out, tag);
		sbuf_appendc(out, '\t');
		tabescape_append(out, username);
	} else {
		sbuf_appendf(out, "RELEASE\t%u\t", hash);
		tabescape_append(out, tag);
	}
	sbuf_appendc(out, '\n');
	upgrade_link_send(d->upgrade.succ);
}

/* A ring's fence, as the successor that holds the node's lease now has
 * it: this loftd's sessions relay nothing past its deadline, and close
 * when it fences (doc/ring.md §6). Before the handover this loftd's own
 * ring decides. */
static void upgrade_fence(struct loftd *d, bool serving, uint64_t relay_until_ms)
{
	if (!d->upgrade.ring_detached)
		return;
	d->proxy->relay_until_ms = relay_until_ms;
	if (!serving)
		proxy_set_serving(d->proxy, false);
	upgrade_forward_fence(d, serving, relay_until_ms);
}

/* The successor's KILL or KICK: as this loftd's own director would (and
 * on to the loftd this one replaced, if it still relays). */
static void upgrade_succ_command(struct loftd *d, char **f, int n)
{
	uint32_t hash;
	if (n == 3 && strcmp(f[0], "KILL") == 0 &&
	    upgrade_parse_u32(f[1], UINT32_MAX, &hash) == 0) {
		uint16_t tag = director_tag_index(d->director, f[2]);
		if (tag != DIRECTOR_TAG_NONE) {
			proxy_director_kill(d->proxy, tag, hash);
			upgrade_forward_kill(d, tag, hash);
		}
	} else if (n == 3 && strcmp(f[0], "KICK") == 0) {
		const char *field = *f[1] == '\0' ? NULL : f[1];
		proxy_director_kick(d->proxy, field, f[2]);
		upgrade_forward_kick(d, field, f[2]);
	} else if (n == 3 && strcmp(f[0], "FENCE") == 0) {
		upgrade_fence(d, strcmp(f[1], "0") == 0, strtoull(f[2], NULL, 10));
	} else {
		log_warning("upgrade: from the new loftd: unknown line: %s",
			    n >= 1 ? f[0] : "");
	}
}

static void upgrade_succ_line(void *ctx, char *line)
{
	struct loftd *d = ctx;
	struct upgrade *u = &d->upgrade;
	if (strcmp(line, "READY") == 0 && u->child != 0) {
		upgrade_handover(d);
	} else if (strncmp(line, "EXEC ", 5) == 0 && u->child != 0) {
		char why[96];
		snprintf(why, sizeof(why), "could not be executed: %s", strerror(atoi(line + 5)));
		upgrade_failed(d, why);
	} else {
		char *f[UPGRADE_MAX_FIELDS];
		upgrade_succ_command(d, f, tabsplit_inplace(line, f, UPGRADE_MAX_FIELDS));
	}
}

static void upgrade_succ_closed(void *ctx, const char *why)
{
	struct loftd *d = ctx;
	if (d->upgrade.child != 0) {
		upgrade_failed(d, "exited before it served");
		return;
	}
	upgrade_overlap_end_succ(d);
	if (d->upgrade.ring_detached) {
		/* nobody may renew the node's lease any more: its sessions
		 * go before the ring can give their users to another node */
		log_error("upgrade: the link to the new loftd %s: closing this loftd's %zu "
			  "sessions (the ring's lease is the new loftd's)", why,
			  registry_count(&d->proxy->registry));
		upgrade_fence(d, false, clock_monotonic_ms());
		return;
	}
	log_warning("upgrade: the link to the new loftd %s: this loftd relays its %zu "
		    "sessions on, and a move made there no longer closes them", why,
		    registry_count(&d->proxy->registry));
}

void upgrade_overlap_start_succ(struct loftd *d, int fd)
{
	static const struct upgrade_link_ops ops = {
		.line = upgrade_succ_line,
		.closed = upgrade_succ_closed,
	};
	struct upgrade *u = &d->upgrade;
	u->succ = upgrade_link_new(d->base, fd, &ops, d, NULL, 0);
	struct sbuf *out = upgrade_link_output(u->succ);
	director_users_foreach(d->director, NULL, time(NULL), upgrade_user_line, out);
	sbuf_appends(out, "END\n");
	upgrade_link_send(u->succ);
	director_set_session_watch(d->director, upgrade_session_watch, d);
}

void upgrade_overlap_end_succ(struct loftd *d)
{
	if (d->upgrade.succ == NULL)
		return;
	director_set_session_watch(d->director, NULL, NULL);
	upgrade_link_free(&d->upgrade.succ);
}

/* ---- both ---------------------------------------------------------------- */

void upgrade_forward_kill(struct loftd *d, uint16_t tag, uint32_t hash)
{
	const char *name = director_tag_name(d->director, tag);
	if (name != NULL)
		upgrade_send_kill(&d->upgrade, name, hash);
}

void upgrade_forward_kick(struct loftd *d, const char *field, const char *value)
{
	struct sbuf *out = upgrade_to_pred(&d->upgrade);
	if (out == NULL)
		return;
	sbuf_appends(out, "KICK\t");
	tabescape_append(out, field == NULL ? "" : field);
	sbuf_appendc(out, '\t');
	tabescape_append(out, value);
	sbuf_appendc(out, '\n');
	upgrade_to_pred_send(&d->upgrade);
}

void upgrade_forward_fence(struct loftd *d, bool serving, uint64_t relay_until_ms)
{
	struct sbuf *out = upgrade_to_pred(&d->upgrade);
	if (out == NULL)
		return;
	sbuf_appendf(out, "FENCE\t%d\t%llu\n", serving ? 0 : 1,
		     (unsigned long long)relay_until_ms);
	upgrade_to_pred_send(&d->upgrade);
}

void upgrade_overlap_free(struct loftd *d)
{
	struct upgrade *u = &d->upgrade;
	upgrade_link_free(&u->pred);
	if (d->director != NULL)
		upgrade_release_all(d);
	upgrade_overlap_end_succ(d);
	sbuf_free(&u->pending);
	sbuf_free(&u->to_pred);
}
