/* The metric families of loftd (metrics.h): the table, and a writer per
 * family that reads what the modules counted. */
#include "metrics/metrics.h"

#include <dirent.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <unistd.h>

#include "auth/auth.h"
#include "auth/auth_cache.h"
#include "common/macros.h"
#include "common/xmalloc.h"
#include "core/relay.h"
#include "director/director.h"
#include "metrics/expo.h"
#include "proxy/health.h"
#include "proxy/proxy.h"
#include "registry/registry.h"
#include "ring/ring.h"

/* backend="other": connections to, and sessions on, addresses outside
 * the director's host list (a passdb's host) */
#define METRICS_OTHER_BACKEND "other"

struct metrics_family {
	const char *name;
	enum metrics_type type;
	const char *help;
	void (*write)(const struct metrics_sources *src, const char *name,
		      struct sbuf *out);
	bool ring;		/* only on a node of a ring */
};

static void metrics_one(struct sbuf *out, const char *name, uint64_t value)
{
	metrics_expo_sample(out, name, NULL, 0, value, 0);
}

static void metrics_labelled(struct sbuf *out, const char *name, const char *label,
			     const char *value, uint64_t n)
{
	const struct metrics_label l[] = { { label, value } };
	metrics_expo_sample(out, name, l, 1, n, 0);
}

static void metrics_labelled2(struct sbuf *out, const char *name, const char *label1,
			      const char *value1, const char *label2,
			      const char *value2, uint64_t n)
{
	const struct metrics_label l[] = { { label1, value1 }, { label2, value2 } };
	metrics_expo_sample(out, name, l, 2, n, 0);
}

/* ---- sessions and logins (struct proxy_stats) ------------------------- */

/* A protocol's row of a table of counts: {protocol, label=names[i]}. */
static void metrics_protocol_row(struct sbuf *out, const char *name, size_t protocol,
				 const char *label, const char *const *names,
				 const uint64_t *values, size_t count)
{
	for (size_t i = 0; i < count; i++)
		metrics_labelled2(out, name, "protocol", conf_protocol_names[protocol],
				  label, names[i], values[i]);
}

/* LMTP has deliveries, not logins */
static bool metrics_protocol_logs_in(size_t protocol)
{
	return protocol != CONF_PROTOCOL_LMTP;
}

static void metrics_write_connections(const struct metrics_sources *src,
				      const char *name, struct sbuf *out)
{
	const struct proxy_stats *st = &src->proxy->stats;
	for (size_t p = 0; p < CONF_PROTOCOLS; p++)
		metrics_protocol_row(out, name, p, "result", proxy_conn_result_names,
				     st->connections[p], PROXY_CONN_RESULTS);
}

static void metrics_write_logins(const struct metrics_sources *src, const char *name,
				 struct sbuf *out)
{
	const struct proxy_stats *st = &src->proxy->stats;
	for (size_t p = 0; p < CONF_PROTOCOLS; p++) {
		if (metrics_protocol_logs_in(p))
			metrics_protocol_row(out, name, p, "result", proxy_login_result_names,
					     st->logins[p], PROXY_LOGIN_RESULTS);
	}
}

static void metrics_write_sessions(const struct metrics_sources *src, const char *name,
				   struct sbuf *out)
{
	const struct proxy_stats *st = &src->proxy->stats;
	for (size_t p = 0; p < CONF_PROTOCOLS; p++) {
		if (metrics_protocol_logs_in(p))
			metrics_protocol_row(out, name, p, "state", proxy_session_state_names,
					     st->sessions[p], PROXY_SESSION_STATES);
	}
	metrics_protocol_row(out, name, CONF_PROTOCOL_LMTP, "state", proxy_lmtp_state_names,
			     st->lmtp_sessions, PROXY_LMTP_STATES);
}

static void metrics_write_kicks(const struct metrics_sources *src, const char *name,
				struct sbuf *out)
{
	metrics_one(out, name, src->proxy->stats.kicks);
}

static void metrics_write_relayed(const struct metrics_sources *src, const char *name,
				  struct sbuf *out)
{
	uint64_t to_backend, to_client;
	relay_pools_bytes(src->proxy->relay_pools, &to_backend, &to_client);
	metrics_labelled(out, name, "direction", "to_backend", to_backend);
	metrics_labelled(out, name, "direction", "to_client", to_client);
}

static void metrics_write_login_latency(const struct metrics_sources *src,
					const char *name, struct sbuf *out)
{
	metrics_expo_histogram(out, name, NULL, 0, &src->proxy->stats.login_latency);
}

static void metrics_write_backend_login_latency(const struct metrics_sources *src,
						const char *name, struct sbuf *out)
{
	metrics_expo_histogram(out, name, NULL, 0, &src->proxy->stats.backend_login_latency);
}

/* ---- the director --------------------------------------------------------- */

static void metrics_write_moves(const struct metrics_sources *src, const char *name,
				struct sbuf *out)
{
	metrics_one(out, name, director_get_stats(src->director)->moves);
}

static void metrics_write_flushes(const struct metrics_sources *src, const char *name,
				  struct sbuf *out)
{
	metrics_one(out, name, director_get_stats(src->director)->flushes);
}

static void metrics_write_backend_connections(const struct metrics_sources *src,
					      const char *name, struct sbuf *out)
{
	const struct director_host_list *hosts = director_hosts(src->director);
	for (size_t i = 0; i < hosts->count; i++)
		metrics_labelled(out, name, "backend", hosts->hosts[i]->ip_str,
				 hosts->hosts[i]->stats->connections);
	metrics_labelled(out, name, "backend", METRICS_OTHER_BACKEND,
			 src->proxy->stats.other_backend_connections);
}

static void metrics_write_backend_failures(const struct metrics_sources *src,
					   const char *name, struct sbuf *out)
{
	const struct director_host_list *hosts = director_hosts(src->director);
	for (size_t i = 0; i < hosts->count; i++)
		metrics_labelled(out, name, "backend", hosts->hosts[i]->ip_str,
				 hosts->hosts[i]->stats->failures);
	metrics_labelled(out, name, "backend", METRICS_OTHER_BACKEND,
			 src->proxy->stats.other_backend_failures);
}

struct metrics_backend_count {
	const struct director_host_list *hosts;
	uint64_t *sessions;	/* per host of the list */
	uint64_t other;
};

static void metrics_count_backend(const struct ipaddr *ip, size_t sessions, void *ctx)
{
	struct metrics_backend_count *c = ctx;
	for (size_t i = 0; i < c->hosts->count; i++) {
		if (ipaddr_equal(&c->hosts->hosts[i]->ip, ip)) {
			c->sessions[i] += sessions;
			return;
		}
	}
	c->other += sessions;
}

static void metrics_write_backend_sessions(const struct metrics_sources *src,
					   const char *name, struct sbuf *out)
{
	const struct director_host_list *hosts = director_hosts(src->director);
	struct metrics_backend_count c = {
		.hosts = hosts, .sessions = xcalloc(hosts->count + 1, sizeof(uint64_t)),
	};
	registry_foreach_backend(&src->proxy->registry, metrics_count_backend, &c);
	for (size_t i = 0; i < hosts->count; i++)
		metrics_labelled(out, name, "backend", hosts->hosts[i]->ip_str, c.sessions[i]);
	metrics_labelled(out, name, "backend", METRICS_OTHER_BACKEND, c.other);
	free(c.sessions);
}

static void metrics_write_backend_users(const struct metrics_sources *src,
					const char *name, struct sbuf *out)
{
	const struct director_host_list *hosts = director_hosts(src->director);
	for (size_t i = 0; i < hosts->count; i++)
		metrics_labelled2(out, name, "backend", hosts->hosts[i]->ip_str, "tag",
				  hosts->hosts[i]->tag, hosts->hosts[i]->user_count);
}

static void metrics_write_backend_up(const struct metrics_sources *src,
				     const char *name, struct sbuf *out)
{
	const struct director_host_list *hosts = director_hosts(src->director);
	for (size_t i = 0; i < hosts->count; i++)
		metrics_labelled(out, name, "backend", hosts->hosts[i]->ip_str,
				 hosts->hosts[i]->down ? 0 : 1);
}

static const char *const metrics_health_names[] = {
	[DIRECTOR_HEALTH_UNKNOWN] = "unknown",
	[DIRECTOR_HEALTH_OK] = "ok",
	[DIRECTOR_HEALTH_FAILING] = "failing",
};

static void metrics_write_backend_health(const struct metrics_sources *src,
					 const char *name, struct sbuf *out)
{
	const struct director_host_list *hosts = director_hosts(src->director);
	for (size_t i = 0; i < hosts->count; i++) {
		const struct director_host *h = hosts->hosts[i];
		for (size_t s = 0; s < ARRAY_SIZE(metrics_health_names); s++)
			metrics_labelled2(out, name, "backend", h->ip_str, "state",
					  metrics_health_names[s], h->health == s ? 1 : 0);
	}
}

struct metrics_health_ctx {
	const char *name;
	struct sbuf *out;
};

static void metrics_write_probe(const struct health_results *r, void *ctx)
{
	struct metrics_health_ctx *c = ctx;
	metrics_labelled2(c->out, c->name, "backend", r->ip_str, "result", "passed",
			  r->passed);
	metrics_labelled2(c->out, c->name, "backend", r->ip_str, "result", "failed",
			  r->failed);
}

static void metrics_write_health_checks(const struct metrics_sources *src,
					const char *name, struct sbuf *out)
{
	struct metrics_health_ctx c = { name, out };
	health_foreach_results(src->health, metrics_write_probe, &c);
}

/* ---- the auth cache (auth_cache.h) ------------------------------------------ */

/* zeros without a cache (or without auth, in tests) */
static void metrics_auth_cache_stats(const struct metrics_sources *src,
				     struct auth_cache_stats *st)
{
	if (src->auth != NULL)
		auth_get_cache_stats(src->auth, st);
	else
		memset(st, 0, sizeof(*st));
}

static void metrics_write_auth_cache_hits(const struct metrics_sources *src,
					  const char *name, struct sbuf *out)
{
	struct auth_cache_stats st;
	metrics_auth_cache_stats(src, &st);
	metrics_labelled(out, name, "entry", "positive", st.hits);
	metrics_labelled(out, name, "entry", "negative", st.negative_hits);
	metrics_labelled(out, name, "entry", "expired", st.expired_hits);
}

static void metrics_write_auth_cache_misses(const struct metrics_sources *src,
					    const char *name, struct sbuf *out)
{
	struct auth_cache_stats st;
	metrics_auth_cache_stats(src, &st);
	metrics_one(out, name, st.misses);
}

static void metrics_write_auth_cache_entries(const struct metrics_sources *src,
					     const char *name, struct sbuf *out)
{
	struct auth_cache_stats st;
	metrics_auth_cache_stats(src, &st);
	metrics_one(out, name, st.entries);
}

static void metrics_write_auth_cache_bytes(const struct metrics_sources *src,
					   const char *name, struct sbuf *out)
{
	struct auth_cache_stats st;
	metrics_auth_cache_stats(src, &st);
	metrics_one(out, name, st.bytes);
}

/* ---- the ring (ring.h's ring_members_foreach) ----------------------------- */

/* This node's state, and the others' statuses, as ring status shows them;
 * "ring synced" is this node's word for "synced". */
static const char *const metrics_ring_states[] = {
	"syncing", "synced", "fenced", "removed", "down",
};
#define METRICS_RING_SELF_STATES 4	/* a node is never "down" to itself */

struct metrics_ring {
	size_t self;			/* index in metrics_ring_states */
	unsigned int ping_ms;
	uint64_t members[ARRAY_SIZE(metrics_ring_states)];
};

static size_t metrics_ring_state_index(const char *status)
{
	if (strcmp(status, "ring synced") == 0)
		status = "synced";
	for (size_t i = 0; i < ARRAY_SIZE(metrics_ring_states); i++) {
		if (strcmp(status, metrics_ring_states[i]) == 0)
			return i;
	}
	return 0;	/* a status this table does not know yet */
}

static void metrics_ring_member(const struct ring_member_info *m, void *ctx)
{
	struct metrics_ring *r = ctx;
	size_t state = metrics_ring_state_index(m->status);
	r->members[state]++;
	if (m->self) {
		r->self = state;
		r->ping_ms = m->ping_ms;
	}
}

static void metrics_ring_read(const struct metrics_sources *src, struct metrics_ring *r)
{
	memset(r, 0, sizeof(*r));
	ring_members_foreach(src->ring, metrics_ring_member, r);
}

static void metrics_write_ring_state(const struct metrics_sources *src,
				     const char *name, struct sbuf *out)
{
	struct metrics_ring r;
	metrics_ring_read(src, &r);
	for (size_t i = 0; i < METRICS_RING_SELF_STATES; i++)
		metrics_labelled(out, name, "state", metrics_ring_states[i], r.self == i);
}

static void metrics_write_ring_members(const struct metrics_sources *src,
				       const char *name, struct sbuf *out)
{
	struct metrics_ring r;
	metrics_ring_read(src, &r);
	for (size_t i = 0; i < ARRAY_SIZE(metrics_ring_states); i++)
		metrics_labelled(out, name, "status", metrics_ring_states[i], r.members[i]);
}

static void metrics_write_ring_ping(const struct metrics_sources *src,
				    const char *name, struct sbuf *out)
{
	struct metrics_ring r;
	metrics_ring_read(src, &r);
	metrics_expo_sample(out, name, NULL, 0, r.ping_ms, 3);
}

/* ---- the process (the names every Prometheus client library uses) ------- */

/* The size of the process's descriptor table (FDSize in /proc/self/status),
 * or 0. */
static uint64_t metrics_fd_table_size(void)
{
	FILE *f = fopen("/proc/self/status", "re");
	if (f == NULL)
		return 0;
	char line[256];
	unsigned long long size = 0;
	while (fgets(line, sizeof(line), f) != NULL) {
		if (sscanf(line, "FDSize: %llu", &size) == 1)
			break;
	}
	fclose(f);
	return size;
}

/* Since Linux 6.2 the size of /proc/self/fd is the number of open
 * descriptors: one stat(). Older kernels (Debian 12's 6.1) say 0, and the
 * entries must be counted, which takes time in proportion to them (about
 * half a microsecond each): a scrape must not stall the loop for long, so
 * beyond METRICS_FD_COUNT_MAX descriptors' worth of table there is no
 * sample rather than a stall. */
#define METRICS_FD_COUNT_MAX 65536

static void metrics_write_open_fds(const struct metrics_sources *src,
				   const char *name, struct sbuf *out)
{
	(void)src;
	struct stat st;
	if (stat("/proc/self/fd", &st) == 0 && st.st_size > 0) {
		metrics_one(out, name, (uint64_t)st.st_size);
		return;
	}
	if (metrics_fd_table_size() > METRICS_FD_COUNT_MAX)
		return;
	DIR *dir = opendir("/proc/self/fd");
	if (dir == NULL)
		return;
	uint64_t n = 0;
	const struct dirent *de;
	while ((de = readdir(dir)) != NULL) {
		if (de->d_name[0] != '.')
			n++;
	}
	closedir(dir);
	/* less the one reading it */
	metrics_one(out, name, n > 0 ? n - 1 : 0);
}

static void metrics_write_max_fds(const struct metrics_sources *src,
				  const char *name, struct sbuf *out)
{
	(void)src;
	struct rlimit rl;
	if (getrlimit(RLIMIT_NOFILE, &rl) == 0)
		metrics_one(out, name, (uint64_t)rl.rlim_cur);
}

/* /proc/self/statm: sizes in pages, the whole first, the resident next */
static bool metrics_statm(uint64_t *virtual_r, uint64_t *resident_r)
{
	FILE *f = fopen("/proc/self/statm", "re");
	if (f == NULL)
		return false;
	unsigned long long size, resident;
	int n = fscanf(f, "%llu %llu", &size, &resident);
	fclose(f);
	if (n != 2)
		return false;
	uint64_t page = (uint64_t)sysconf(_SC_PAGESIZE);
	*virtual_r = size * page;
	*resident_r = resident * page;
	return true;
}

static void metrics_write_rss(const struct metrics_sources *src, const char *name,
			      struct sbuf *out)
{
	uint64_t virt, rss;
	(void)src;
	if (metrics_statm(&virt, &rss))
		metrics_one(out, name, rss);
}

static void metrics_write_vsz(const struct metrics_sources *src, const char *name,
			      struct sbuf *out)
{
	uint64_t virt, rss;
	(void)src;
	if (metrics_statm(&virt, &rss))
		metrics_one(out, name, virt);
}

static void metrics_write_cpu(const struct metrics_sources *src, const char *name,
			      struct sbuf *out)
{
	(void)src;
	struct rusage ru;
	if (getrusage(RUSAGE_SELF, &ru) < 0)
		return;
	uint64_t us = (uint64_t)ru.ru_utime.tv_sec * 1000000 + (uint64_t)ru.ru_utime.tv_usec +
		(uint64_t)ru.ru_stime.tv_sec * 1000000 + (uint64_t)ru.ru_stime.tv_usec;
	metrics_expo_sample(out, name, NULL, 0, us, 6);
}

static void metrics_write_start_time(const struct metrics_sources *src,
				     const char *name, struct sbuf *out)
{
	metrics_one(out, name, (uint64_t)src->start_time);
}

/* ---- the table ------------------------------------------------------------ */

static const struct metrics_family metrics_families[] = {
	{ "loft_connections_total", METRICS_COUNTER,
	  "Client connections by protocol: accepted, or refused by limits.max_connections "
	  "or limits.max_prelogin_per_ip.", metrics_write_connections, false },
	{ "loft_logins_total", METRICS_COUNTER,
	  "Logins by protocol and result: ok, auth_failed, backend_failed, limit, timeout, error.",
	  metrics_write_logins, false },
	{ "loft_sessions", METRICS_GAUGE,
	  "Sessions now, by protocol and state.", metrics_write_sessions, false },
	{ "loft_login_duration_seconds", METRICS_HISTOGRAM,
	  "Time from accepting a connection to proxying it, of the logins that succeeded.",
	  metrics_write_login_latency, false },
	{ "loft_backend_login_duration_seconds", METRICS_HISTOGRAM,
	  "Time from connecting to a backend to being logged in there, of the logins that succeeded.",
	  metrics_write_backend_login_latency, false },
	{ "loft_relayed_bytes_total", METRICS_COUNTER,
	  "Bytes relayed after login, by direction.", metrics_write_relayed, false },
	{ "loft_kicks_total", METRICS_COUNTER,
	  "Sessions kicked: kick, proxy kick, director kick, a move, fencing.",
	  metrics_write_kicks, false },
	{ "loft_moves_total", METRICS_COUNTER,
	  "Users moved to another backend (director move, here or on another node of the ring).",
	  metrics_write_moves, false },
	{ "loft_flushes_total", METRICS_COUNTER,
	  "Director flushes, with or without -F.", metrics_write_flushes, false },
	{ "loft_backend_connections_total", METRICS_COUNTER,
	  "Connections to backends (logins and LMTP deliveries), by backend.",
	  metrics_write_backend_connections, false },
	{ "loft_backend_failures_total", METRICS_COUNTER,
	  "Backend connections that failed: unreachable, TLS, protocol, timeout, or refused "
	  "by the backend (not wrong passwords).", metrics_write_backend_failures, false },
	{ "loft_backend_sessions", METRICS_GAUGE,
	  "Sessions routed to each backend now (logging in there, or proxying).",
	  metrics_write_backend_sessions, false },
	{ "loft_backend_users", METRICS_GAUGE,
	  "Users assigned to each backend, by backend and tag.",
	  metrics_write_backend_users, false },
	{ "loft_backend_up", METRICS_GAUGE,
	  "1 unless an admin set the backend down.", metrics_write_backend_up, false },
	{ "loft_backend_health", METRICS_GAUGE,
	  "The backend's health check verdict: 1 for its state (unknown, ok, failing).",
	  metrics_write_backend_health, false },
	{ "loft_health_checks_total", METRICS_COUNTER,
	  "Health checks by backend and result (passed, failed).",
	  metrics_write_health_checks, false },
	{ "loft_auth_cache_hits_total", METRICS_COUNTER,
	  "Logins answered by the auth cache, by entry: positive (a matching password), "
	  "negative (an unknown user), expired (served while the passdb failed).",
	  metrics_write_auth_cache_hits, false },
	{ "loft_auth_cache_misses_total", METRICS_COUNTER,
	  "Logins the auth cache could not answer, which went to the passdbs.",
	  metrics_write_auth_cache_misses, false },
	{ "loft_auth_cache_entries", METRICS_GAUGE,
	  "Entries in the auth cache, expired ones included.",
	  metrics_write_auth_cache_entries, false },
	{ "loft_auth_cache_bytes", METRICS_GAUGE,
	  "Bytes the auth cache's entries take (auth.cache.size bounds them).",
	  metrics_write_auth_cache_bytes, false },
	{ "loft_ring_state", METRICS_GAUGE,
	  "This node in its ring: 1 for its state (syncing, synced, fenced, removed).",
	  metrics_write_ring_state, true },
	{ "loft_ring_members", METRICS_GAUGE,
	  "Directors of the ring, this node included, by status as ring status shows it.",
	  metrics_write_ring_members, true },
	{ "loft_ring_etcd_ping_seconds", METRICS_GAUGE,
	  "The round trip of this node's last etcd lease renewal.",
	  metrics_write_ring_ping, true },
	{ "process_open_fds", METRICS_GAUGE, "Open file descriptors.",
	  metrics_write_open_fds, false },
	{ "process_max_fds", METRICS_GAUGE, "The limit of open file descriptors (RLIMIT_NOFILE).",
	  metrics_write_max_fds, false },
	{ "process_resident_memory_bytes", METRICS_GAUGE, "Resident memory.",
	  metrics_write_rss, false },
	{ "process_virtual_memory_bytes", METRICS_GAUGE, "Virtual memory.",
	  metrics_write_vsz, false },
	{ "process_cpu_seconds_total", METRICS_COUNTER, "CPU time, user and system.",
	  metrics_write_cpu, false },
	{ "process_start_time_seconds", METRICS_GAUGE,
	  "When loftd started, in seconds since the epoch.", metrics_write_start_time, false },
};

void metrics_render(const struct metrics_sources *src, struct sbuf *out)
{
	for (size_t i = 0; i < ARRAY_SIZE(metrics_families); i++) {
		const struct metrics_family *f = &metrics_families[i];
		if (f->ring && src->ring == NULL)
			continue;
		metrics_expo_family(out, f->name, f->type, f->help);
		f->write(src, f->name, out);
	}
}

void metrics_foreach_family(void (*cb)(const char *name, void *ctx), void *ctx)
{
	for (size_t i = 0; i < ARRAY_SIZE(metrics_families); i++)
		cb(metrics_families[i].name, ctx);
}
