/* The director's state file (see state.h): its format, and the store
 * that loads it at start and saves it after every host change. */
#include "director/state.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <unistd.h>

#include "common/file.h"
#include "common/tabescape.h"
#include "common/xmalloc.h"

#define STATE_MAGIC "loft-director-state"
#define STATE_VERSION "1"
#define STATE_MAX_SIZE (64u * 1024 * 1024)
#define STATE_MAX_FIELDS 7

static int state_parse_uint(const char *s, unsigned long long max,
			    unsigned long long *v_r)
{
	char *end;
	if (*s < '0' || *s > '9')
		return -1;
	errno = 0;
	unsigned long long v = strtoull(s, &end, 10);
	if (*end != '\0' || errno != 0 || v > max)
		return -1;
	*v_r = v;
	return 0;
}

/* host <ip> <vhosts> U|D <last_updown> <tag> */
static const char *state_parse_host(char **f, int n, struct director_host_list *hosts)
{
	struct ipaddr ip;
	unsigned long long vhosts, updown;
	if (n != 6)
		return "a host line has 6 fields";
	if (ipaddr_parse(f[1], &ip) < 0)
		return "invalid host address";
	if (state_parse_uint(f[2], DIRECTOR_VHOST_MAX, &vhosts) < 0)
		return "invalid vhost count";
	if (strcmp(f[3], "U") != 0 && strcmp(f[3], "D") != 0)
		return "the state is not U or D";
	if (state_parse_uint(f[4], (unsigned long long)INT64_MAX, &updown) < 0)
		return "invalid time of the last up/down change";
	struct director_host *h = director_host_list_add(hosts, &ip, NULL, f[5]);
	if (h == NULL)
		return "host listed twice";
	h->vhost_count = (unsigned int)vhosts;
	h->down = f[3][0] == 'D';
	h->last_updown = (time_t)updown;
	return NULL;
}

/* removed <ip> */
static const char *state_parse_removed(char **f, int n, struct director_host_list *removed)
{
	struct ipaddr ip;
	if (n != 2)
		return "a removed line has 2 fields";
	if (ipaddr_parse(f[1], &ip) < 0)
		return "invalid host address";
	if (director_host_list_add(removed, &ip, NULL, "") == NULL)
		return "host listed twice";
	return NULL;
}

/* One line; *ended is set by the end line, after which nothing may come. */
static const char *state_parse_line(char *line, unsigned int lineno, size_t *entries,
				    bool *ended, struct director_host_list *hosts,
				    struct director_host_list *removed)
{
	char *f[STATE_MAX_FIELDS + 1];
	int n = tabsplit_inplace(line, f, STATE_MAX_FIELDS + 1);
	if (*ended)
		return "text after the end line";
	if (lineno == 1) {
		if (n != 2 || strcmp(f[0], STATE_MAGIC) != 0)
			return "not a loft director state file";
		if (strcmp(f[1], STATE_VERSION) != 0)
			return "unsupported version";
		return NULL;
	}
	if (n < 1)
		return "empty line";
	const char *error;
	if (strcmp(f[0], "host") == 0) {
		error = state_parse_host(f, n, hosts);
	} else if (strcmp(f[0], "removed") == 0) {
		error = state_parse_removed(f, n, removed);
	} else if (strcmp(f[0], "end") == 0) {
		unsigned long long count;
		*ended = true;
		if (n != 2 || state_parse_uint(f[1], SIZE_MAX, &count) < 0)
			return "invalid end line";
		return count == *entries ? NULL : "the entry count does not match";
	} else {
		return "unknown line";
	}
	(*entries)++;
	return error;
}

int director_state_parse(const char *data, size_t len, struct director_host_list *hosts,
			 struct director_host_list *removed, char **error_r)
{
	char *copy = xmalloc(len + 1);
	memcpy(copy, data, len);
	copy[len] = '\0';
	unsigned int lineno = 0;
	size_t entries = 0;
	bool ended = false;
	const char *error = NULL;
	char *p = copy, *end = copy + len;

	if (memchr(copy, '\0', len) != NULL)
		error = "NUL byte in the file";
	while (error == NULL && p < end) {
		char *lf = memchr(p, '\n', (size_t)(end - p));
		lineno++;
		if (lf == NULL) {
			error = "the last line is cut short";
			break;
		}
		*lf = '\0';
		error = state_parse_line(p, lineno, &entries, &ended, hosts, removed);
		p = lf + 1;
	}
	if (error == NULL && !ended)
		error = lineno == 0 ? "empty file" : "no end line: the file is cut short";
	free(copy);
	if (error != NULL) {
		*error_r = xasprintf("line %u: %s", lineno, error);
		return -1;
	}
	return 0;
}

void director_state_format(const struct director_host_list *hosts,
			   const struct director_host_list *initial, struct sbuf *out)
{
	size_t entries = 0;
	sbuf_appends(out, STATE_MAGIC "\t" STATE_VERSION "\n");
	for (size_t i = 0; i < hosts->count; i++, entries++) {
		const struct director_host *h = hosts->hosts[i];
		sbuf_appendf(out, "host\t%s\t%u\t%c\t%lld\t", h->ip_str, h->vhost_count,
			     h->down ? 'D' : 'U', (long long)h->last_updown);
		tabescape_append(out, h->tag);
		sbuf_appendc(out, '\n');
	}
	for (size_t i = 0; i < initial->count; i++) {
		const struct director_host *h = initial->hosts[i];
		if (director_host_list_find(hosts, &h->ip) == NULL) {
			sbuf_appendf(out, "removed\t%s\n", h->ip_str);
			entries++;
		}
	}
	sbuf_appendf(out, "end\t%zu\n", entries);
}

/* ---- the state file as the director's store ----------------------------- */

struct state_store {
	struct director_store store;	/* first: the director holds this */
	char *path;
	int lock_fd;
};

static int state_store_load(struct director_store *store, struct director_host_list *hosts,
			    struct director_host_list *removed, bool *found_r,
			    char **error_r)
{
	struct state_store *st = (struct state_store *)store;
	char *data, *error;
	size_t len;
	int ret = file_read_all(st->path, STATE_MAX_SIZE, &data, &len, NULL, &error);
	*found_r = ret > 0;
	if (ret == 0)
		return 0;
	if (ret < 0) {
		*error_r = xasprintf("director state: %s", error);
		free(error);
		return -1;
	}
	ret = director_state_parse(data, len, hosts, removed, &error);
	free(data);
	if (ret < 0) {
		*error_r = xasprintf("director state file %s is invalid (%s): loftd will "
				     "not guess which backends to use; repair the file, or "
				     "remove it to start from director.mail_servers",
				     st->path, error);
		free(error);
	}
	return ret;
}

static int state_store_save(struct director_store *store,
			    const struct director_host_list *hosts,
			    const struct director_host_list *initial, char **error_r)
{
	struct state_store *st = (struct state_store *)store;
	struct sbuf buf = SBUF_INIT;
	director_state_format(hosts, initial, &buf);
	int ret = file_write_atomic(st->path, sbuf_data(&buf), sbuf_len(&buf), 0640,
				    error_r);
	sbuf_free(&buf);
	return ret;
}

static void state_store_free(struct director_store *store)
{
	struct state_store *st = (struct state_store *)store;
	if (st->lock_fd >= 0)
		close(st->lock_fd);
	free(st->path);
	free(st);
}

struct director_store *director_state_store_open(const char *state_dir, int lock_fd,
						char **error_r)
{
	char *path = xasprintf("%s/" DIRECTOR_STATE_LOCK, state_dir);
	/* an inherited lock_fd shares the lock of the loftd that passed it */
	int fd = lock_fd >= 0 ? lock_fd : open(path, O_RDWR | O_CREAT | O_CLOEXEC, 0640);
	if (lock_fd >= 0)
		fcntl(fd, F_SETFD, FD_CLOEXEC);
	else if (fd < 0 || flock(fd, LOCK_EX | LOCK_NB) < 0) {
		*error_r = errno == EWOULDBLOCK ?
			xasprintf("state_dir %s is in use by another loftd (%s is locked)",
				  state_dir, path) :
			xasprintf("cannot lock %s: %s", path, strerror(errno));
		if (fd >= 0)
			close(fd);
		free(path);
		return NULL;
	}
	free(path);
	struct state_store *st = xcalloc(1, sizeof(*st));
	st->lock_fd = fd;
	st->path = xasprintf("%s/" DIRECTOR_STATE_FILE, state_dir);
	st->store.load = state_store_load;
	st->store.save_hosts = state_store_save;
	st->store.free = state_store_free;
	st->store.name = st->path;
	return &st->store;
}

int director_state_store_lock_fd(const struct director_store *store)
{
	return ((const struct state_store *)store)->lock_fd;
}
