/* passdb driver "ldap": users kept in an LDAP directory (OpenLDAP's
 * libldap). A lookup searches `base` with `filter` (the user name
 * escaped, RFC 4515/4514) for exactly one entry and reads the attributes
 * `fields` maps to passdb fields. The password is either read (and
 * verified by auth's workers like a passwd-file one) or, with auth_bind,
 * checked by binding as the entry's DN.
 *
 * Threads: libldap's calls are made synchronously on pool_size threads
 * of this passdb's own worker pool, each holding one connection of the
 * pool below while it runs a lookup, every call bounded by `timeout`.
 * The loop thread only queues a job and applies its answer, so a slow or
 * stopped server delays the logins waiting for it and nothing else; a
 * full queue (auth.max_queue) fails new logins at once as busy. A
 * connection that fails is closed and opened again by the next lookup
 * (once at once, if it was an old one the server may have dropped), so
 * the passdb recovers when the server does, without a restart. */
#include <errno.h>
#include <fcntl.h>
#include <ldap.h>
#include <poll.h>
#include <pthread.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>

#include "auth/ldap_escape.h"
#include "auth/passdb.h"
#include "auth/worker.h"
#include "common/macros.h"
#include "common/sbuf.h"
#include "common/xmalloc.h"

struct ldapdb_conn {
	LDAP *ld;		/* NULL: closed */
	bool bound;		/* as bind_dn (an auth_bind leaves it bound as a user) */
	bool busy;		/* a thread holds it (ctx->lock) */
};

struct ldapdb_ctx {
	struct worker_pool *pool;
	char *uris;		/* space-separated, as ldap_initialize() takes them */
	char **attrs;		/* the mapped attributes, NULL-terminated */
	char **names;		/* their passdb fields */
	int nopassword_idx;	/* the field holding it, or -1 */
	pthread_mutex_t lock;
	struct ldapdb_conn *conns;	/* pool_size: one is free for each thread */
	struct ldap_conncb conncb;	/* adds the timeout layer (arg: the set) */
};

struct ldapdb_job {
	struct worker_job base;
	struct passdb_lookup *lookup;
	const struct passdb *db;	/* read-only in the thread */
	char *user;
	char *password;			/* for auth_bind; wiped */
	/* the answer, from the thread */
	enum passdb_result res;
	int ldap_ret;			/* libldap's code of a failure */
	char **values;			/* per field; NULL: not in the entry */
	char error[256];
};

/* Default fields, Dovecot's pass_attrs default. */
static const char *const ldapdb_default_names[] = { "user", "password" };
static const char *const ldapdb_default_attrs[] = { "uid", "userPassword" };

static size_t ldapdb_fields_count(const struct config_passdb *set)
{
	return set->fields.names.count != 0 ? set->fields.names.count :
		ARRAY_SIZE(ldapdb_default_names);
}

static const char *ldapdb_field_name(const struct config_passdb *set, size_t i)
{
	return set->fields.names.count != 0 ? set->fields.names.items[i] :
		ldapdb_default_names[i];
}

static const char *ldapdb_field_attr(const struct config_passdb *set, size_t i)
{
	return set->fields.names.count != 0 ? set->fields.values.items[i] :
		ldapdb_default_attrs[i];
}

static int ldapdb_field_index(const struct config_passdb *set, const char *name)
{
	for (size_t i = 0; i < ldapdb_fields_count(set); i++) {
		if (strcmp(ldapdb_field_name(set, i), name) == 0)
			return (int)i;
	}
	return -1;
}

/* ---- connections (worker threads) ---------------------------------- */

static struct ldapdb_conn *ldapdb_conn_take(struct ldapdb_ctx *ctx, unsigned int count)
{
	struct ldapdb_conn *conn = NULL;
	pthread_mutex_lock(&ctx->lock);
	for (unsigned int i = 0; i < count && conn == NULL; i++) {
		if (!ctx->conns[i].busy)
			conn = &ctx->conns[i];
	}
	/* as many connections as threads: one is always free */
	if (conn == NULL)
		abort();
	conn->busy = true;
	pthread_mutex_unlock(&ctx->lock);
	return conn;
}

static void ldapdb_conn_put(struct ldapdb_ctx *ctx, struct ldapdb_conn *conn)
{
	pthread_mutex_lock(&ctx->lock);
	conn->busy = false;
	pthread_mutex_unlock(&ctx->lock);
}

static void ldapdb_conn_close(struct ldapdb_conn *conn)
{
	if (conn->ld != NULL)
		ldap_unbind_ext_s(conn->ld, NULL, NULL);
	conn->ld = NULL;
	conn->bound = false;
}

/* Errors after which the connection cannot be trusted (or is gone). */
static bool ldapdb_error_is_connection(int ret)
{
	return ret == LDAP_SERVER_DOWN || ret == LDAP_CONNECT_ERROR ||
		ret == LDAP_TIMEOUT || ret == LDAP_UNAVAILABLE || ret == LDAP_BUSY ||
		ret == LDAP_LOCAL_ERROR || ret == LDAP_PROTOCOL_ERROR;
}

static int ldapdb_simple_bind(LDAP *ld, const char *dn, const char *password)
{
	struct berval cred = {
		.bv_val = (char *)(uintptr_t)password, .bv_len = strlen(password),
	};
	return ldap_sasl_bind_s(ld, dn, LDAP_SASL_SIMPLE, &cred, NULL, NULL, NULL);
}

static struct timeval ldapdb_timeval(uint64_t ms)
{
	return (struct timeval){
		.tv_sec = (time_t)(ms / 1000), .tv_usec = (suseconds_t)(ms % 1000) * 1000,
	};
}

/* libldap (2.5.13) bounds connects and requests with its timeouts, but
 * not a TLS handshake (ldaps://, STARTTLS): it spins on reads that would
 * block, for ever, so a server that accepts and never answers would hold
 * the thread (and loftd's shutdown) and burn a CPU until it dies. This
 * I/O layer, between libldap's TLS and TCP layers, makes such reads wait
 * in poll() and fail (ETIMEDOUT) once the connection has had `timeout`
 * to open; a blocking read or write that its socket's own timeout
 * (SO_RCVTIMEO/SO_SNDTIMEO, also `timeout`) ended fails the same way
 * instead of being tried again. */
struct ldapdb_sb {
	struct timespec deadline;	/* to connect, STARTTLS and handshake */
};

static int64_t ldapdb_ms_until(const struct timespec *t)
{
	struct timespec now;
	clock_gettime(CLOCK_MONOTONIC, &now);
	return (int64_t)(t->tv_sec - now.tv_sec) * 1000 +
		(t->tv_nsec - now.tv_nsec) / 1000000;
}

/* After EAGAIN: 0 when the socket is ready again, -1 (ETIMEDOUT) when
 * the time is up. */
static int ldapdb_sbio_wait(Sockbuf_IO_Desc *sbiod, short events)
{
	const struct ldapdb_sb *state = sbiod->sbiod_pvt;
	ber_socket_t fd;
	int flags;

	if (ber_sockbuf_ctrl(sbiod->sbiod_sb, LBER_SB_OPT_GET_FD, &fd) != 1 ||
	    (flags = fcntl(fd, F_GETFL)) < 0 || (flags & O_NONBLOCK) == 0) {
		errno = ETIMEDOUT;	/* a blocking call: its socket timeout */
		return -1;
	}
	int64_t ms = ldapdb_ms_until(&state->deadline);
	struct pollfd pfd = { .fd = fd, .events = events };
	int ret = ms <= 0 ? 0 : poll(&pfd, 1, (int)ms);
	if (ret == 0) {
		errno = ETIMEDOUT;
		return -1;
	}
	return 0;	/* ready, or interrupted: try again */
}

static ber_slen_t ldapdb_sbio_read(Sockbuf_IO_Desc *sbiod, void *buf, ber_len_t len)
{
	for (;;) {
		ber_slen_t n = LBER_SBIOD_READ_NEXT(sbiod, buf, len);
		if (n >= 0 || (errno != EAGAIN && errno != EWOULDBLOCK) ||
		    ldapdb_sbio_wait(sbiod, POLLIN) < 0)
			return n;
	}
}

static ber_slen_t ldapdb_sbio_write(Sockbuf_IO_Desc *sbiod, void *buf, ber_len_t len)
{
	for (;;) {
		ber_slen_t n = LBER_SBIOD_WRITE_NEXT(sbiod, buf, len);
		if (n >= 0 || (errno != EAGAIN && errno != EWOULDBLOCK) ||
		    ldapdb_sbio_wait(sbiod, POLLOUT) < 0)
			return n;
	}
}

static int ldapdb_sbio_setup(Sockbuf_IO_Desc *sbiod, void *arg)
{
	sbiod->sbiod_pvt = arg;
	return 0;
}

static int ldapdb_sbio_remove(Sockbuf_IO_Desc *sbiod)
{
	free(sbiod->sbiod_pvt);
	sbiod->sbiod_pvt = NULL;
	return 0;
}

static int ldapdb_sbio_ctrl(Sockbuf_IO_Desc *sbiod, int opt, void *arg)
{
	return LBER_SBIOD_CTRL_NEXT(sbiod, opt, arg);
}

static Sockbuf_IO ldapdb_sbio = {
	.sbi_setup = ldapdb_sbio_setup,
	.sbi_remove = ldapdb_sbio_remove,
	.sbi_ctrl = ldapdb_sbio_ctrl,
	.sbi_read = ldapdb_sbio_read,
	.sbi_write = ldapdb_sbio_write,
};

/* Called by libldap once a connection is made, before any TLS. */
static int ldapdb_conn_added(LDAP *ld, Sockbuf *sb, LDAPURLDesc *srv,
			     struct sockaddr *addr, struct ldap_conncb *cb)
{
	const struct config_passdb *set = cb->lc_arg;
	struct timeval tv = ldapdb_timeval(set->timeout_ms);
	ber_socket_t fd;
	(void)ld;
	(void)srv;
	(void)addr;
	if (ber_sockbuf_ctrl(sb, LBER_SB_OPT_GET_FD, &fd) != 1 ||
	    setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv)) < 0 ||
	    setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof(tv)) < 0)
		return -1;
	struct ldapdb_sb *state = xcalloc(1, sizeof(*state));
	clock_gettime(CLOCK_MONOTONIC, &state->deadline);
	state->deadline.tv_sec += (time_t)(set->timeout_ms / 1000);
	state->deadline.tv_nsec += (long)(set->timeout_ms % 1000) * 1000000;
	if (state->deadline.tv_nsec >= 1000000000) {
		state->deadline.tv_sec++;
		state->deadline.tv_nsec -= 1000000000;
	}
	/* above the TCP layer libldap adds next, below TLS */
	if (ber_sockbuf_add_io(sb, &ldapdb_sbio, LBER_SBIOD_LEVEL_PROVIDER + 1, state) < 0) {
		free(state);
		return -1;
	}
	return 0;
}

static void ldapdb_conn_deleted(LDAP *ld, Sockbuf *sb, struct ldap_conncb *cb)
{
	(void)ld;
	(void)sb;
	(void)cb;
}

/* Opens the connection if closed, and binds it as bind_dn (anonymously
 * without one) unless it is. */
static int ldapdb_conn_ready(struct ldapdb_job *job, struct ldapdb_conn *conn)
{
	const struct config_passdb *set = job->db->set;
	struct ldapdb_ctx *ctx = job->db->ctx;
	int ret;

	if (conn->ld == NULL) {
		LDAP *ld;
		ret = ldap_initialize(&ld, ctx->uris);
		if (ret != LDAP_SUCCESS) {
			job->ldap_ret = ret;
			snprintf(job->error, sizeof(job->error), "ldap_initialize(%s): %s",
				 ctx->uris, ldap_err2string(ret));
			return -1;
		}
		int version = LDAP_VERSION3, zero = 0;
		struct timeval tv = ldapdb_timeval(set->timeout_ms);
		ldap_set_option(ld, LDAP_OPT_PROTOCOL_VERSION, &version);
		ldap_set_option(ld, LDAP_OPT_CONNECT_CB, &ctx->conncb);
		ldap_set_option(ld, LDAP_OPT_REFERRALS, LDAP_OPT_OFF);
		ldap_set_option(ld, LDAP_OPT_NETWORK_TIMEOUT, &tv);
		ldap_set_option(ld, LDAP_OPT_TIMEOUT, &tv);
		if (set->tls_ca_file[0] != '\0') {
			ldap_set_option(ld, LDAP_OPT_X_TLS_CACERTFILE, set->tls_ca_file);
			ldap_set_option(ld, LDAP_OPT_X_TLS_NEWCTX, &zero);
		}
		conn->ld = ld;
		if (set->starttls &&
		    (ret = ldap_start_tls_s(ld, NULL, NULL)) != LDAP_SUCCESS) {
			job->ldap_ret = ret;
			snprintf(job->error, sizeof(job->error), "STARTTLS: %s",
				 ldap_err2string(ret));
			ldapdb_conn_close(conn);
			return -1;
		}
	}
	if (conn->bound)
		return 0;
	ret = ldapdb_simple_bind(conn->ld, set->bind_dn[0] == '\0' ? NULL : set->bind_dn,
			       set->bind_password);
	if (ret != LDAP_SUCCESS) {
		job->ldap_ret = ret;
		snprintf(job->error, sizeof(job->error), "bind as %s: %s",
			 set->bind_dn[0] == '\0' ? "anonymous" : set->bind_dn,
			 ldap_err2string(ret));
		ldapdb_conn_close(conn);
		return -1;
	}
	conn->bound = true;
	return 0;
}

/* ---- one lookup (worker thread) ------------------------------------ */

static char *ldapdb_first_value(LDAP *ld, LDAPMessage *entry, const char *attr)
{
	struct berval **vals = ldap_get_values_len(ld, entry, attr);
	char *value = NULL;
	if (vals != NULL && vals[0] != NULL)
		value = xstrndup(vals[0]->bv_val, vals[0]->bv_len);
	ldap_value_free_len(vals);
	return value;
}

/* Checks the password by binding as dn. */
static void ldapdb_job_auth_bind(struct ldapdb_job *job, struct ldapdb_conn *conn,
			       const char *dn)
{
	/* an empty password would be an unauthenticated bind, which
	 * succeeds (RFC 4513 5.1.2): never a login */
	if (job->password[0] == '\0') {
		job->res = PASSDB_MISMATCH;
		return;
	}
	int ret = ldapdb_simple_bind(conn->ld, dn, job->password);
	conn->bound = false;	/* as the user now, or as nobody */
	if (ret == LDAP_SUCCESS) {
		job->res = PASSDB_FOUND;
	} else if (ret == LDAP_INVALID_CREDENTIALS) {
		job->res = PASSDB_MISMATCH;
	} else {
		snprintf(job->error, sizeof(job->error), "bind as %s: %s", dn,
			 ldap_err2string(ret));
		job->res = PASSDB_ERROR;
		if (ldapdb_error_is_connection(ret))
			ldapdb_conn_close(conn);
	}
}

/* Reads the one entry into job->values (and binds as it for auth_bind). */
static void ldapdb_job_read_entry(struct ldapdb_job *job, struct ldapdb_conn *conn,
				LDAPMessage *entry)
{
	const struct config_passdb *set = job->db->set;
	const struct ldapdb_ctx *ctx = job->db->ctx;
	size_t n = ldapdb_fields_count(set);

	job->values = xcalloc(n, sizeof(*job->values));
	for (size_t i = 0; i < n; i++)
		job->values[i] = ldapdb_first_value(conn->ld, entry, ldapdb_field_attr(set, i));
	job->res = PASSDB_FOUND;
	bool unchecked = ctx->nopassword_idx >= 0 &&
		job->values[ctx->nopassword_idx] != NULL;
	if (!set->auth_bind || job->password == NULL || unchecked)
		return;
	char *dn = ldap_get_dn(conn->ld, entry);
	if (dn == NULL) {
		snprintf(job->error, sizeof(job->error), "the entry has no DN");
		job->res = PASSDB_ERROR;
		return;
	}
	ldapdb_job_auth_bind(job, conn, dn);
	ldap_memfree(dn);
}

/* 0: answered (job->res); -1: the connection failed (closed, error set). */
static int ldapdb_job_search(struct ldapdb_job *job, struct ldapdb_conn *conn)
{
	const struct config_passdb *set = job->db->set;
	const struct ldapdb_ctx *ctx = job->db->ctx;
	static const int scopes[] = {
		[CONF_LDAP_SCOPE_BASE] = LDAP_SCOPE_BASE,
		[CONF_LDAP_SCOPE_ONELEVEL] = LDAP_SCOPE_ONELEVEL,
		[CONF_LDAP_SCOPE_SUBTREE] = LDAP_SCOPE_SUBTREE,
	};
	struct sbuf base = SBUF_INIT, filter = SBUF_INIT;
	LDAPMessage *msg = NULL;

	if (ldapdb_conn_ready(job, conn) < 0)
		return -1;
	ldap_escape_template(&base, set->base, job->user, ldap_escape_dn);
	ldap_escape_template(&filter, set->filter, job->user, ldap_escape_filter);
	struct timeval tv = ldapdb_timeval(set->timeout_ms);
	/* a size limit of 2 tells one entry from several */
	int ret = ldap_search_ext_s(conn->ld, sbuf_cstr(&base), scopes[set->scope],
				    sbuf_cstr(&filter), ctx->attrs, 0, NULL, NULL,
				    &tv, 2, &msg);
	int entries = msg == NULL ? 0 : ldap_count_entries(conn->ld, msg);
	if (ret == LDAP_NO_SUCH_OBJECT || (ret == LDAP_SUCCESS && entries <= 0)) {
		job->res = PASSDB_NOT_FOUND;
	} else if ((ret == LDAP_SUCCESS || ret == LDAP_SIZELIMIT_EXCEEDED) &&
		   entries > 1) {
		snprintf(job->error, sizeof(job->error),
			 "filter %s under %s matched more than one entry",
			 sbuf_cstr(&filter), sbuf_cstr(&base));
		job->res = PASSDB_ERROR;
	} else if (ret == LDAP_SUCCESS) {
		ldapdb_job_read_entry(job, conn, ldap_first_entry(conn->ld, msg));
	} else {
		job->ldap_ret = ret;
		snprintf(job->error, sizeof(job->error), "search %s under %s: %s",
			 sbuf_cstr(&filter), sbuf_cstr(&base), ldap_err2string(ret));
		job->res = PASSDB_ERROR;
		if (ldapdb_error_is_connection(ret)) {
			ldap_msgfree(msg);
			ldapdb_conn_close(conn);
			sbuf_free(&base);
			sbuf_free(&filter);
			return -1;
		}
	}
	ldap_msgfree(msg);
	sbuf_free(&base);
	sbuf_free(&filter);
	return 0;
}

static void ldapdb_job_work(struct worker_job *wjob)
{
	struct ldapdb_job *job = (struct ldapdb_job *)wjob;
	struct ldapdb_ctx *ctx = job->db->ctx;
	struct ldapdb_conn *conn = ldapdb_conn_take(ctx, job->db->set->pool_size);
	bool reused = conn->ld != NULL;

	/* an old connection may have been dropped by the server while idle
	 * (or before it restarted): one more try on a new one, but not
	 * after a timeout, which would only double the wait */
	if (ldapdb_job_search(job, conn) < 0 && !(reused && job->ldap_ret == LDAP_SERVER_DOWN &&
						 ldapdb_job_search(job, conn) == 0))
		job->res = PASSDB_ERROR;
	ldapdb_conn_put(ctx, conn);
}

/* ---- the loop thread ----------------------------------------------- */

static void ldapdb_job_free(struct ldapdb_job *job)
{
	if (job->values != NULL) {
		for (size_t i = 0; i < ldapdb_fields_count(job->db->set); i++)
			xfree_secret(&job->values[i]);
		free(job->values);
	}
	free(job->user);
	xfree_secret(&job->password);
	free(job);
}

static void ldapdb_job_done(struct worker_job *wjob)
{
	struct ldapdb_job *job = (struct ldapdb_job *)wjob;
	struct passdb_lookup *lookup = job->lookup;
	const struct ldapdb_ctx *ctx = job->db->ctx;

	lookup->job = NULL;
	if (wjob->work == NULL)
		passdb_lookup_done(lookup, PASSDB_ERROR, NULL, "shutting down");
	else if (job->res == PASSDB_FOUND)
		passdb_lookup_done_record(lookup, (const char *const *)ctx->names, job->values,
					  ldapdb_fields_count(job->db->set),
					  job->db->set->auth_bind);
	else
		passdb_lookup_done(lookup, job->res, NULL, job->error);
	ldapdb_job_free(job);
}

static void ldapdb_lookup(struct passdb_lookup *lookup)
{
	struct passdb *db = lookup->db;
	struct ldapdb_ctx *ctx = db->ctx;

	if (worker_pool_pending(ctx->pool) >= auth_max_queue(db->auth)) {
		passdb_lookup_done(lookup, PASSDB_BUSY, NULL, "ldap queue full");
		return;
	}
	struct ldapdb_job *job = xcalloc(1, sizeof(*job));
	job->lookup = lookup;
	job->db = db;
	job->user = xstrdup(lookup->user);
	if (lookup->password != NULL && db->set->auth_bind)
		job->password = xstrdup(lookup->password);
	job->base.work = ldapdb_job_work;
	job->base.done = ldapdb_job_done;
	lookup->job = job;
	worker_pool_submit(ctx->pool, &job->base);
}

static bool ldapdb_cancel(struct passdb_lookup *lookup)
{
	struct ldapdb_ctx *ctx = lookup->db->ctx;
	struct ldapdb_job *job = lookup->job;

	if (job == NULL || !worker_pool_cancel(ctx->pool, &job->base))
		return false;
	lookup->job = NULL;
	ldapdb_job_free(job);
	return true;
}

static int ldapdb_init(struct passdb *db, char **error_r)
{
	const struct config_passdb *set = db->set;
	struct sbuf uris = SBUF_INIT;
	LDAP *ld;

	for (size_t i = 0; i < set->uris.count; i++) {
		if (i > 0)
			sbuf_appendc(&uris, ' ');
		sbuf_appends(&uris, set->uris.items[i]);
	}
	/* parses the URIs (connects to nothing) on this thread, which also
	 * sets up libldap's global state before any worker uses it */
	int ret = ldap_initialize(&ld, sbuf_cstr(&uris));
	if (ret != LDAP_SUCCESS) {
		*error_r = xasprintf("uris: %s: %s", sbuf_cstr(&uris),
				     ldap_err2string(ret));
		sbuf_free(&uris);
		return -1;
	}
	ldap_unbind_ext_s(ld, NULL, NULL);

	struct ldapdb_ctx *ctx = xcalloc(1, sizeof(*ctx));
	ctx->uris = xstrdup(sbuf_cstr(&uris));
	sbuf_free(&uris);
	size_t n = ldapdb_fields_count(set);
	ctx->attrs = xcalloc(n + 1, sizeof(*ctx->attrs));
	ctx->names = xcalloc(n, sizeof(*ctx->names));
	for (size_t i = 0; i < n; i++) {
		ctx->attrs[i] = xstrdup(ldapdb_field_attr(set, i));
		ctx->names[i] = xstrdup(ldapdb_field_name(set, i));
	}
	ctx->nopassword_idx = ldapdb_field_index(set, "nopassword");
	pthread_mutex_init(&ctx->lock, NULL);
	ctx->conns = xcalloc(set->pool_size, sizeof(*ctx->conns));
	ctx->conncb = (struct ldap_conncb){
		.lc_add = ldapdb_conn_added, .lc_del = ldapdb_conn_deleted,
		.lc_arg = (void *)(uintptr_t)set,
	};
	db->ctx = ctx;
	ctx->pool = worker_pool_new(db->base, set->pool_size);
	return 0;
}

static void ldapdb_deinit(struct passdb *db)
{
	struct ldapdb_ctx *ctx = db->ctx;

	/* waits for lookups under way (each bounded by timeout); the queued
	 * ones are answered as cancelled */
	worker_pool_free(&ctx->pool);
	for (unsigned int i = 0; i < db->set->pool_size; i++)
		ldapdb_conn_close(&ctx->conns[i]);
	free(ctx->conns);
	pthread_mutex_destroy(&ctx->lock);
	for (size_t i = 0; ctx->attrs[i] != NULL; i++) {
		free(ctx->attrs[i]);
		free(ctx->names[i]);
	}
	free(ctx->attrs);
	free(ctx->names);
	free(ctx->uris);
	free(ctx);
	db->ctx = NULL;
}

const struct passdb_driver passdb_ldap = {
	.name = "ldap",
	.init = ldapdb_init,
	.deinit = ldapdb_deinit,
	.lookup = ldapdb_lookup,
	.cancel = ldapdb_cancel,
};
