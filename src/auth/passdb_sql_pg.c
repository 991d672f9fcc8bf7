/* The SQL passdb's PostgreSQL engine: libpq's asynchronous API driven by
 * libevent on the loop thread, so that no call ever waits for the
 * server (PQconnectStart/PQconnectPoll, PQsendQueryParams, PQflush,
 * PQconsumeInput/PQisBusy/PQgetResult, each when PQsocket is ready).
 * A host name in `connect` (one host, no hostaddr) would be resolved by
 * PQconnectStart itself, which blocks: each connection resolves it first
 * with evdns (the resolver's configuration and /etc/hosts as read at
 * start), then opens with its addresses as hostaddr, tried in the
 * resolver's order as libpq would (which still checks a server
 * certificate against the name). A list of hosts is left to libpq.
 *
 * pool_size connections, each DOWN, CONNECTING, IDLE or BUSY (one query
 * at a time). Lookups wait in a FIFO queue for an idle connection; the
 * queue and the queries under way together are bounded by auth.max_queue
 * (beyond it: PASSDB_BUSY). Every lookup has `timeout` from the moment
 * it arrives: a queued one that reaches it is answered as an error, a
 * query under way too, and its connection is closed (a cancel request
 * would need a blocking PQcancel) and opened again.
 *
 * A connection that fails or is lost answers its query as an error and
 * is opened again, at once the first time, then after a delay doubling
 * from SQLDB_PG_BACKOFF_MIN_MS to reconnect_max. While no connection is
 * up or on its way up, lookups fail at once (a temporary failure) rather
 * than wait for the next attempt, and the queue is answered the same
 * way when the last attempt fails. */
#include <arpa/inet.h>
#include <event2/dns.h>
#include <event2/event.h>
#include <libpq-fe.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "auth/passdb_sql.h"
#include "common/clock.h"
#include "common/list.h"
#include "common/sbuf.h"
#include "common/xmalloc.h"

#define SQLDB_PG_BACKOFF_MIN_MS 250
/* a resolved host name's addresses tried, at most */
#define SQLDB_PG_MAX_ADDRS 8

enum pgconn_state {
	PGCONN_DOWN,		/* conn NULL; timer: the next attempt */
	PGCONN_CONNECTING,	/* resolving (dns_req) or opening (conn);
				 * timer: the connect timeout */
	PGCONN_IDLE,		/* read events: the server going away */
	PGCONN_BUSY,		/* query; timer: its deadline */
};

struct pgquery {
	struct list_node node;		/* in pgdb.queue while queued */
	struct passdb_lookup *lookup;	/* NULL: cancelled while under way */
	char **values;			/* the parameters */
	uint64_t deadline_ms;		/* monotonic */
	bool queued;
};

struct pgconn {
	struct pgdb *pg;
	PGconn *conn;
	enum pgconn_state state;
	struct event *io;		/* on PQsocket, what libpq waits for */
	evutil_socket_t io_fd;
	short io_what;
	struct event *timer;
	uint64_t backoff_ms;		/* before the attempt after a failed one */
	struct pgquery *query;		/* BUSY */
	PGresult *result;		/* its first result */
	struct evdns_getaddrinfo_request *dns_req;	/* resolving */
	bool resolving;
};

struct pgdb {
	struct sqldb sql;		/* first: passdb_sql.c's part */
	struct passdb *db;
	char *conninfo;
	/* a host name to resolve first: connect's settings as keywords and
	 * values (NULL-terminated), the last pair "hostaddr" and the addresses,
	 * "host" the name as often as there are addresses */
	char *resolve_host;
	struct evdns_base *dns;
	char **keywords;
	char **values;
	size_t host_index, hostaddr_index;
	struct pgconn *conns;
	unsigned int conns_count;
	struct list queue;
	struct event *queue_timer;	/* the head's deadline */
	unsigned int busy;		/* connections with a query */
	bool reported_down;		/* said once, until one connects again */
	char last_error[256];
};

static void pgdb_dispatch(struct pgdb *pg);
static void pgconn_start(struct pgconn *c);

/* ---- queries -------------------------------------------------------- */

static void pgquery_free(struct pgdb *pg, struct pgquery *q)
{
	sql_template_values_free(&pg->sql.query, &q->values);
	free(q);
}

static void pgquery_fail(struct pgdb *pg, struct pgquery *q, const char *error)
{
	struct passdb_lookup *lookup = q->lookup;
	pgquery_free(pg, q);
	if (lookup != NULL) {
		lookup->job = NULL;
		passdb_lookup_done(lookup, PASSDB_ERROR, NULL, error);
	}
}

static void pgdb_queue_timer_update(struct pgdb *pg)
{
	if (list_is_empty(&pg->queue)) {
		evtimer_del(pg->queue_timer);
		return;
	}
	const struct pgquery *head = CONTAINER_OF(pg->queue.head, struct pgquery, node);
	uint64_t now = clock_monotonic_ms();
	uint64_t ms = head->deadline_ms > now ? head->deadline_ms - now : 0;
	struct timeval tv = { .tv_sec = (time_t)(ms / 1000),
			      .tv_usec = (suseconds_t)(ms % 1000) * 1000 };
	evtimer_add(pg->queue_timer, &tv);
}

static struct pgquery *pgdb_queue_pop(struct pgdb *pg)
{
	struct list_node *n = list_pop_head(&pg->queue);
	if (n == NULL)
		return NULL;
	struct pgquery *q = CONTAINER_OF(n, struct pgquery, node);
	q->queued = false;
	return q;
}

/* Answers every queued lookup as an error (taken off the queue first:
 * an answer may bring a new lookup). */
static void pgdb_queue_fail(struct pgdb *pg, const char *error)
{
	struct list_node *n = list_take_all(&pg->queue);
	evtimer_del(pg->queue_timer);
	while (n != NULL) {
		struct pgquery *q = CONTAINER_OF(n, struct pgquery, node);
		n = n->next;
		q->queued = false;
		pgquery_fail(pg, q, error);
	}
}

static void pgdb_queue_expired(evutil_socket_t fd, short what, void *arg)
{
	struct pgdb *pg = arg;
	uint64_t now = clock_monotonic_ms();
	char error[64];
	(void)fd;
	(void)what;

	snprintf(error, sizeof(error), "no connection free within %llums",
		 (unsigned long long)pg->db->set->timeout_ms);
	while (!list_is_empty(&pg->queue) &&
	       CONTAINER_OF(pg->queue.head, struct pgquery, node)->deadline_ms <= now)
		pgquery_fail(pg, pgdb_queue_pop(pg), error);
	pgdb_queue_timer_update(pg);
}

/* ---- connections ---------------------------------------------------- */

static void pgconn_timer_set(struct pgconn *c, uint64_t ms)
{
	struct timeval tv = { .tv_sec = (time_t)(ms / 1000),
			      .tv_usec = (suseconds_t)(ms % 1000) * 1000 };
	evtimer_add(c->timer, &tv);
}

static void pgconn_on_io(evutil_socket_t fd, short what, void *arg);

/* Waits for what on the connection's socket (0: nothing). force: even
 * if it looks the same (while connecting, libpq may have closed the
 * socket and opened another under the same number). */
static void pgconn_io_wait(struct pgconn *c, short what, bool force)
{
	evutil_socket_t fd = c->conn == NULL ? -1 : PQsocket(c->conn);
	if (!force && fd == c->io_fd && what == c->io_what)
		return;
	if (c->io_what != 0)
		event_del(c->io);
	c->io_fd = fd;
	c->io_what = what;
	if (what == 0 || fd < 0)
		return;
	event_assign(c->io, c->pg->db->base, fd, what | EV_PERSIST, pgconn_on_io, c);
	event_add(c->io, NULL);
}

static void pgconn_io_set(struct pgconn *c, short what)
{
	pgconn_io_wait(c, what, false);
}

/* Gives up a resolution under way (before the connection is failed or
 * freed). */
static void pgconn_resolve_cancel(struct pgconn *c)
{
	if (c->dns_req != NULL)
		evdns_getaddrinfo_cancel(c->dns_req);
	c->dns_req = NULL;
	c->resolving = false;
}

static bool pgdb_is_reachable(const struct pgdb *pg)
{
	for (unsigned int i = 0; i < pg->conns_count; i++) {
		if (pg->conns[i].state != PGCONN_DOWN)
			return true;
	}
	return false;
}

/* The connection failed or was lost: its query (if any) is answered as
 * an error, and it is opened again, at once the first time. */
static void pgconn_fail(struct pgconn *c, const char *error)
{
	struct pgdb *pg = c->pg;
	struct pgquery *q = c->query;
	bool was_up = c->state == PGCONN_IDLE || c->state == PGCONN_BUSY;

	/* libpq's messages end in a newline */
	size_t len = strcspn(error, "\n");
	snprintf(pg->last_error, sizeof(pg->last_error), "%.*s", (int)len, error);
	auth_notice(pg->db->auth, pg->reported_down ? LOG_LEVEL_DEBUG : LOG_LEVEL_WARNING,
		    "sql: PostgreSQL connection %u %s: %s", (unsigned int)(c - pg->conns),
		    was_up ? "lost" : "failed", pg->last_error);
	pg->reported_down = true;
	if (c->state == PGCONN_BUSY)
		pg->busy--;
	pgconn_resolve_cancel(c);
	pgconn_io_set(c, 0);
	evtimer_del(c->timer);
	PQclear(c->result);
	c->result = NULL;
	PQfinish(c->conn);
	c->conn = NULL;
	c->query = NULL;
	c->state = PGCONN_DOWN;
	if (q != NULL)
		pgquery_fail(pg, q, pg->last_error);
	/* a connection that was up: again at once; one that could not be
	 * opened: after a delay that doubles each time */
	if (was_up) {
		c->backoff_ms = SQLDB_PG_BACKOFF_MIN_MS;
		pgconn_start(c);
	} else {
		uint64_t delay = c->backoff_ms != 0 ? c->backoff_ms : SQLDB_PG_BACKOFF_MIN_MS;
		c->backoff_ms = MIN(delay * 2, pg->db->set->reconnect_max_ms);
		pgconn_timer_set(c, delay);
	}
	/* nothing on its way up: the waiting lookups would only wait */
	if (!pgdb_is_reachable(pg))
		pgdb_queue_fail(pg, pg->last_error);
}

static void pgconn_connected(struct pgconn *c)
{
	struct pgdb *pg = c->pg;

	if (PQsetnonblocking(c->conn, 1) != 0) {
		pgconn_fail(c, PQerrorMessage(c->conn));
		return;
	}
	evtimer_del(c->timer);
	c->state = PGCONN_IDLE;
	c->backoff_ms = 0;
	pgconn_io_set(c, EV_READ);
	if (pg->reported_down) {
		auth_notice(pg->db->auth, LOG_LEVEL_INFO,
			    "sql: PostgreSQL connection %u is up again",
			    (unsigned int)(c - pg->conns));
		pg->reported_down = false;
	}
	pgdb_dispatch(pg);
}

/* One step of the connection's opening, when its socket is ready. */
static void pgconn_connect_poll(struct pgconn *c)
{
	switch (PQconnectPoll(c->conn)) {
	case PGRES_POLLING_READING:
		pgconn_io_wait(c, EV_READ, true);
		break;
	case PGRES_POLLING_WRITING:
		pgconn_io_wait(c, EV_WRITE, true);
		break;
	case PGRES_POLLING_OK:
		pgconn_connected(c);
		break;
	case PGRES_POLLING_FAILED:
	default:
		pgconn_fail(c, PQerrorMessage(c->conn));
		break;
	}
}

/* Opens the connection: with connect as given, or with res (the host
 * name's addresses) as hostaddr. The connect timeout is running. */
static void pgconn_open(struct pgconn *c, const struct evutil_addrinfo *res)
{
	struct pgdb *pg = c->pg;

	if (res == NULL) {
		c->conn = PQconnectStart(pg->conninfo);
	} else {
		struct sbuf addrs = SBUF_INIT, hosts = SBUF_INIT;
		for (unsigned int n = 0; res != NULL && n < SQLDB_PG_MAX_ADDRS;
		     res = res->ai_next, n++) {
			char addr[INET6_ADDRSTRLEN];
			const void *in = res->ai_family == AF_INET6 ?
				(const void *)&((const struct sockaddr_in6 *)res->ai_addr)->sin6_addr :
				(const void *)&((const struct sockaddr_in *)res->ai_addr)->sin_addr;
			evutil_inet_ntop(res->ai_family, in, addr, sizeof(addr));
			sbuf_appendf(&addrs, "%s%s", n == 0 ? "" : ",", addr);
			sbuf_appendf(&hosts, "%s%s", n == 0 ? "" : ",", pg->resolve_host);
		}
		free(pg->values[pg->hostaddr_index]);
		free(pg->values[pg->host_index]);
		pg->values[pg->hostaddr_index] = xstrdup(sbuf_cstr(&addrs));
		pg->values[pg->host_index] = xstrdup(sbuf_cstr(&hosts));
		sbuf_free(&addrs);
		sbuf_free(&hosts);
		c->conn = PQconnectStartParams((const char *const *)pg->keywords,
					       (const char *const *)pg->values, 0);
	}
	if (c->conn == NULL)
		abort();	/* out of memory, as xmalloc */
	if (PQstatus(c->conn) == CONNECTION_BAD) {
		pgconn_fail(c, PQerrorMessage(c->conn));
		return;
	}
	/* as if PQconnectPoll had asked to write, as libpq documents */
	pgconn_io_set(c, EV_WRITE);
}

static void pgconn_resolved(int err, struct evutil_addrinfo *res, void *arg)
{
	/* cancelled: the connection gave up on it (it may be gone) */
	if (err == EVUTIL_EAI_CANCEL)
		return;
	struct pgconn *c = arg;
	c->dns_req = NULL;
	c->resolving = false;
	if (err != 0 || res == NULL) {
		char error[320];
		snprintf(error, sizeof(error), "cannot resolve host %s: %s", c->pg->resolve_host,
			 err != 0 ? evutil_gai_strerror(err) : "no address");
		pgconn_fail(c, error);
		return;
	}
	pgconn_open(c, res);
	evutil_freeaddrinfo(res);
}

static void pgconn_start(struct pgconn *c)
{
	struct pgdb *pg = c->pg;

	c->state = PGCONN_CONNECTING;
	pgconn_timer_set(c, pg->db->set->timeout_ms);
	if (pg->resolve_host == NULL) {
		pgconn_open(c, NULL);
		return;
	}
	struct evutil_addrinfo hints = {
		.ai_family = AF_UNSPEC, .ai_socktype = SOCK_STREAM,
		.ai_protocol = IPPROTO_TCP,
	};
	/* the answer may come at once (/etc/hosts), inside this call */
	c->resolving = true;
	struct evdns_getaddrinfo_request *req =
		evdns_getaddrinfo(pg->dns, pg->resolve_host, NULL, &hints, pgconn_resolved, c);
	if (c->resolving)
		c->dns_req = req;
}

/* The query's results are all in: answers it, the connection is idle. */
static void pgconn_query_done(struct pgconn *c)
{
	struct pgdb *pg = c->pg;
	struct pgquery *q = c->query;
	PGresult *res = c->result;
	struct sqldb_result r = { 0 };

	c->query = NULL;
	c->result = NULL;
	c->state = PGCONN_IDLE;
	pg->busy--;
	evtimer_del(c->timer);
	pgconn_io_set(c, EV_READ);

	ExecStatusType status = res == NULL ? PGRES_FATAL_ERROR : PQresultStatus(res);
	if (status == PGRES_TUPLES_OK) {
		int rows = PQntuples(res), columns = PQnfields(res);
		r.rows = (size_t)(rows > 2 ? 2 : rows);
		if (rows == 1) {
			sqldb_result_columns(&r, (size_t)columns);
			for (int i = 0; i < columns; i++) {
				r.names[i] = xstrdup(PQfname(res, i));
				if (!PQgetisnull(res, 0, i))
					r.values[i] = xstrdup(PQgetvalue(res, 0, i));
			}
		}
	} else if (status == PGRES_COMMAND_OK) {
		sqldb_result_fail(&r, "password_query returned no rows at all (not a SELECT?)");
	} else {
		sqldb_result_fail(&r, "%s", res == NULL ? "no result" :
				  PQresultErrorMessage(res));
	}
	PQclear(res);
	if (q->lookup != NULL) {
		q->lookup->job = NULL;
		sqldb_result_answer(q->lookup, &r);
	}
	sqldb_result_clear(&r);
	pgquery_free(pg, q);
	if (c->state == PGCONN_IDLE && PQstatus(c->conn) == CONNECTION_BAD)
		pgconn_fail(c, PQerrorMessage(c->conn));
	pgdb_dispatch(pg);
}

/* BUSY and the socket is ready: sends what is left, reads what came. */
static void pgconn_busy_io(struct pgconn *c, short what)
{
	if ((what & EV_READ) != 0 && PQconsumeInput(c->conn) == 0) {
		pgconn_fail(c, PQerrorMessage(c->conn));
		return;
	}
	int flushed = PQflush(c->conn);
	if (flushed < 0) {
		pgconn_fail(c, PQerrorMessage(c->conn));
		return;
	}
	pgconn_io_set(c, flushed == 1 ? EV_READ | EV_WRITE : EV_READ);
	while (!PQisBusy(c->conn)) {
		PGresult *res = PQgetResult(c->conn);
		if (res == NULL) {
			pgconn_query_done(c);
			return;
		}
		if (c->result == NULL)
			c->result = res;
		else
			PQclear(res);
	}
}

/* IDLE and readable: the server has something to say, most likely that
 * it is going away. */
static void pgconn_idle_read(struct pgconn *c)
{
	PGnotify *note;
	if (PQconsumeInput(c->conn) == 0 || PQstatus(c->conn) == CONNECTION_BAD) {
		pgconn_fail(c, PQerrorMessage(c->conn));
		return;
	}
	while ((note = PQnotifies(c->conn)) != NULL)
		PQfreemem(note);
}

static void pgconn_on_io(evutil_socket_t fd, short what, void *arg)
{
	struct pgconn *c = arg;
	(void)fd;

	switch (c->state) {
	case PGCONN_CONNECTING:
		pgconn_connect_poll(c);
		break;
	case PGCONN_IDLE:
		pgconn_idle_read(c);
		break;
	case PGCONN_BUSY:
		pgconn_busy_io(c, what);
		break;
	case PGCONN_DOWN:
		pgconn_io_set(c, 0);
		break;
	}
}

static void pgconn_on_timer(evutil_socket_t fd, short what, void *arg)
{
	struct pgconn *c = arg;
	char error[96];
	(void)fd;
	(void)what;

	switch (c->state) {
	case PGCONN_DOWN:
		pgconn_start(c);
		break;
	case PGCONN_CONNECTING:
		snprintf(error, sizeof(error), "connect timed out after %llums",
			 (unsigned long long)c->pg->db->set->timeout_ms);
		pgconn_fail(c, error);
		break;
	case PGCONN_BUSY:
		snprintf(error, sizeof(error), "query timed out after %llums",
			 (unsigned long long)c->pg->db->set->timeout_ms);
		/* the connection's state is unknown now: a new one */
		pgconn_fail(c, error);
		break;
	case PGCONN_IDLE:
		break;
	}
}

/* Sends the query on an idle connection. */
static void pgconn_send(struct pgconn *c, struct pgquery *q)
{
	struct pgdb *pg = c->pg;
	const struct sql_template *t = &pg->sql.query;
	uint64_t now = clock_monotonic_ms();

	c->query = q;
	c->state = PGCONN_BUSY;
	pg->busy++;
	pgconn_timer_set(c, q->deadline_ms > now ? q->deadline_ms - now : 0);
	if (PQsendQueryParams(c->conn, t->query, (int)t->params_count, NULL,
			      (const char *const *)q->values, NULL, NULL, 0) == 0) {
		/* whatever was sent: a new connection */
		pgconn_fail(c, PQerrorMessage(c->conn));
		return;
	}
	pgconn_busy_io(c, 0);
}

static void pgdb_dispatch(struct pgdb *pg)
{
	for (unsigned int i = 0; i < pg->conns_count && !list_is_empty(&pg->queue); i++) {
		struct pgconn *c = &pg->conns[i];
		if (c->state == PGCONN_IDLE)
			pgconn_send(c, pgdb_queue_pop(pg));
	}
	pgdb_queue_timer_update(pg);
}

/* ---- the engine ----------------------------------------------------- */

static void pgdb_lookup(struct passdb_lookup *lookup)
{
	struct passdb *db = lookup->db;
	struct pgdb *pg = db->ctx;

	if (pg->queue.count + pg->busy >= auth_max_queue(db->auth)) {
		passdb_lookup_done(lookup, PASSDB_BUSY, NULL, "sql queue full");
		return;
	}
	if (!pgdb_is_reachable(pg)) {
		passdb_lookup_done(lookup, PASSDB_ERROR, NULL, pg->last_error);
		return;
	}
	struct pgquery *q = xcalloc(1, sizeof(*q));
	q->lookup = lookup;
	q->values = sql_template_values(&pg->sql.query, lookup->user);
	q->deadline_ms = clock_monotonic_ms() + db->set->timeout_ms;
	q->queued = true;
	lookup->job = q;
	list_append(&pg->queue, &q->node);
	pgdb_dispatch(pg);
}

static bool pgdb_cancel(struct passdb_lookup *lookup)
{
	struct pgdb *pg = lookup->db->ctx;
	struct pgquery *q = lookup->job;

	if (q == NULL)
		return false;
	lookup->job = NULL;
	if (q->queued) {
		list_unlink(&pg->queue, &q->node);
		pgquery_free(pg, q);
		pgdb_queue_timer_update(pg);
	} else {
		q->lookup = NULL;	/* under way: its answer is dropped */
	}
	return true;
}

static void pgdb_params_free(struct pgdb *pg)
{
	if (pg->dns != NULL)
		evdns_base_free(pg->dns, 0);
	pg->dns = NULL;
	for (size_t i = 0; pg->keywords != NULL && pg->keywords[i] != NULL; i++) {
		free(pg->keywords[i]);
		xfree_secret(&pg->values[i]);	/* the password is among them */
	}
	free(pg->keywords);
	free(pg->values);
	free(pg->resolve_host);
	pg->keywords = NULL;
	pg->values = NULL;
	pg->resolve_host = NULL;
}

/* One host given by name and no hostaddr: a name to resolve on the loop. */
static const char *pgdb_host_to_resolve(const PQconninfoOption *opts)
{
	const char *host = NULL, *hostaddr = NULL;
	for (const PQconninfoOption *o = opts; o->keyword != NULL; o++) {
		if (o->val != NULL && strcmp(o->keyword, "host") == 0)
			host = o->val;
		else if (o->val != NULL && strcmp(o->keyword, "hostaddr") == 0)
			hostaddr = o->val;
	}
	struct in6_addr addr;
	if (host == NULL || host[0] == '\0' || host[0] == '/' || host[0] == '@' ||
	    strchr(host, ',') != NULL || (hostaddr != NULL && hostaddr[0] != '\0') ||
	    inet_pton(AF_INET, host, &addr) == 1 || inet_pton(AF_INET6, host, &addr) == 1)
		return NULL;
	return host;
}

/* connect's settings as PQconnectStartParams takes them, hostaddr last;
 * the resolver. -1 when the resolver cannot be set up. */
static int pgdb_params_init(struct pgdb *pg, const PQconninfoOption *opts, const char *host,
			    char **error_r)
{
	size_t n = 0;
	for (const PQconninfoOption *o = opts; o->keyword != NULL; o++)
		n++;
	pg->keywords = xcalloc(n + 2, sizeof(*pg->keywords));
	pg->values = xcalloc(n + 2, sizeof(*pg->values));
	size_t k = 0;
	for (const PQconninfoOption *o = opts; o->keyword != NULL; o++) {
		if (o->val == NULL || strcmp(o->keyword, "hostaddr") == 0)
			continue;
		if (strcmp(o->keyword, "host") == 0)
			pg->host_index = k;
		pg->keywords[k] = xstrdup(o->keyword);
		pg->values[k++] = xstrdup(o->val);
	}
	pg->hostaddr_index = k;
	pg->keywords[k] = xstrdup("hostaddr");
	pg->values[k] = xstrdup("");
	pg->resolve_host = xstrdup(host);
	pg->dns = evdns_base_new(pg->db->base, EVDNS_BASE_INITIALIZE_NAMESERVERS |
				 EVDNS_BASE_DISABLE_WHEN_INACTIVE);
	if (pg->dns == NULL) {
		*error_r = xasprintf("connect: cannot set up the resolver for host %s "
				     "(/etc/resolv.conf)", host);
		return -1;
	}
	return 0;
}

static int pgdb_init(struct passdb *db, const char *target,
		     const struct sql_template *query, char **error_r)
{
	char *perror = NULL;
	PQconninfoOption *opts = PQconninfoParse(target, &perror);
	(void)query;

	if (opts == NULL) {
		*error_r = xasprintf("connect: %s", perror != NULL ? perror :
				     "out of memory");
		size_t len = strlen(*error_r);
		while (len > 0 && (*error_r)[len - 1] == '\n')
			(*error_r)[--len] = '\0';
		PQfreemem(perror);
		return -1;
	}

	struct pgdb *pg = xcalloc(1, sizeof(*pg));
	pg->db = db;
	pg->conninfo = xstrdup(target);
	const char *host = pgdb_host_to_resolve(opts);
	if (host != NULL && pgdb_params_init(pg, opts, host, error_r) < 0) {
		PQconninfoFree(opts);
		pgdb_params_free(pg);
		free(pg->conninfo);
		free(pg);
		return -1;
	}
	PQconninfoFree(opts);
	snprintf(pg->last_error, sizeof(pg->last_error), "not connected yet");
	pg->queue_timer = evtimer_new(db->base, pgdb_queue_expired, pg);
	pg->conns_count = db->set->pool_size;
	pg->conns = xcalloc(pg->conns_count, sizeof(*pg->conns));
	db->ctx = pg;
	for (unsigned int i = 0; i < pg->conns_count; i++) {
		struct pgconn *c = &pg->conns[i];
		c->pg = pg;
		c->io_fd = -1;
		c->io = event_new(db->base, -1, 0, pgconn_on_io, c);
		c->timer = evtimer_new(db->base, pgconn_on_timer, c);
	}
	/* all open at once, on the loop: lookups queue meanwhile */
	for (unsigned int i = 0; i < pg->conns_count; i++)
		pgconn_start(&pg->conns[i]);
	return 0;
}

static void pgdb_deinit(struct passdb *db)
{
	struct pgdb *pg = db->ctx;

	for (unsigned int i = 0; i < pg->conns_count; i++) {
		struct pgconn *c = &pg->conns[i];
		struct pgquery *q = c->query;
		pgconn_resolve_cancel(c);
		pgconn_io_set(c, 0);
		event_free(c->io);
		event_free(c->timer);
		PQclear(c->result);
		PQfinish(c->conn);
		c->conn = NULL;
		c->query = NULL;
		c->state = PGCONN_DOWN;
		if (q != NULL)
			pgquery_fail(pg, q, "shutting down");
	}
	pgdb_queue_fail(pg, "shutting down");
	event_free(pg->queue_timer);
	free(pg->conns);
	free(pg->conninfo);
	pgdb_params_free(pg);
	free(pg);
	db->ctx = NULL;
}

const struct sqldb_engine sqldb_pg = {
	.init = pgdb_init,
	.deinit = pgdb_deinit,
	.lookup = pgdb_lookup,
	.cancel = pgdb_cancel,
};
