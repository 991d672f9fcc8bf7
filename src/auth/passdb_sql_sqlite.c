/* The SQL passdb's SQLite engine (connect = "sqlite:<path>"), for small
 * sites: the file is read, never written (opened read-only), in the auth
 * worker pool, where passwords are verified, so that a query never runs
 * on the loop; auth.max_queue bounds the jobs there as for hashing.
 *
 * Each worker that runs a lookup takes an idle connection (with the
 * query prepared) or opens one; the parameters are bound, never pasted.
 * Every lookup stat()s the file, as passwd-file does: when it was
 * replaced (another inode) or changed (mtime, size), connections opened
 * before are closed as they come back and new ones open the new file.
 * A lookup may take `timeout` (waiting for a writer's lock included);
 * then it is interrupted and fails temporarily. */
#include <errno.h>
#include <pthread.h>
#include <sqlite3.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "auth/passdb_sql.h"
#include "auth/worker.h"
#include "common/clock.h"
#include "common/xmalloc.h"

/* sqlite3_progress_handler's period, in virtual machine steps */
#define SQLDB_LITE_PROGRESS_STEPS 1000

struct litedb_conn {
	sqlite3 *handle;
	sqlite3_stmt *stmt;
	unsigned int generation;	/* of the file it opened */
};

struct litedb {
	struct sqldb sql;		/* first: passdb_sql.c's part */
	struct passdb *db;
	char *path;
	pthread_mutex_t lock;		/* for what follows */
	struct litedb_conn **idle;
	size_t idle_count;
	struct stat st;			/* the file as last seen */
	unsigned int generation;	/* bumped when st changes */
	unsigned int told_generation;	/* loop thread: the last one noticed */
};

struct litedb_job {
	struct worker_job base;
	struct passdb_lookup *lookup;
	struct litedb *lite;
	char **values;
	uint64_t deadline_ms;
	unsigned int opened_generation;	/* a connection was opened: of this */
	struct sqldb_result result;
};

/* ---- connections (any thread) --------------------------------------- */

static void litedb_conn_close(struct litedb_conn **connp)
{
	struct litedb_conn *conn = *connp;
	if (conn == NULL)
		return;
	sqlite3_finalize(conn->stmt);
	sqlite3_close(conn->handle);
	free(conn);
	*connp = NULL;
}

static int litedb_conn_open(struct litedb *lite, unsigned int generation,
			    struct litedb_conn **conn_r, char *error, size_t error_size)
{
	struct litedb_conn *conn = xcalloc(1, sizeof(*conn));
	const char *tail;
	int ret;

	conn->generation = generation;
	ret = sqlite3_open_v2(lite->path, &conn->handle,
			      SQLITE_OPEN_READONLY | SQLITE_OPEN_NOMUTEX, NULL);
	if (ret == SQLITE_OK) {
		sqlite3_busy_timeout(conn->handle, (int)lite->db->set->timeout_ms);
		ret = sqlite3_prepare_v2(conn->handle, lite->sql.query.query, -1,
					 &conn->stmt, &tail);
	}
	if (ret != SQLITE_OK) {
		snprintf(error, error_size, "%s: %s", lite->path, conn->handle == NULL ?
			 sqlite3_errstr(ret) : sqlite3_errmsg(conn->handle));
		litedb_conn_close(&conn);
		return -1;
	}
	tail += strspn(tail, " \t\r\n;");
	if (*tail != '\0') {
		snprintf(error, error_size, "password_query: one statement only, "
			 "not \"%.40s\"", tail);
		litedb_conn_close(&conn);
		return -1;
	}
	/* ?, :name, @name or $name of the query's own would stay NULL */
	if ((size_t)sqlite3_bind_parameter_count(conn->stmt) !=
	    lite->sql.query.params_count) {
		snprintf(error, error_size, "password_query: parameters of its own "
			 "(?, :name, @name, $name): use %%u, %%n or %%d");
		litedb_conn_close(&conn);
		return -1;
	}
	*conn_r = conn;
	return 0;
}

/* The file as it is now: a new generation if it changed. Lock held. */
static void litedb_file_check(struct litedb *lite)
{
	struct stat st;
	if (stat(lite->path, &st) < 0)
		return;		/* gone: the connections open keep serving */
	if (st.st_ino != lite->st.st_ino || st.st_dev != lite->st.st_dev ||
	    st.st_size != lite->st.st_size ||
	    st.st_mtim.tv_sec != lite->st.st_mtim.tv_sec ||
	    st.st_mtim.tv_nsec != lite->st.st_mtim.tv_nsec) {
		lite->st = st;
		lite->generation++;
	}
}

static struct litedb_conn *litedb_conn_take(struct litedb *lite, unsigned int *generation_r)
{
	struct litedb_conn *conn = NULL;

	pthread_mutex_lock(&lite->lock);
	litedb_file_check(lite);
	*generation_r = lite->generation;
	while (lite->idle_count > 0 && conn == NULL) {
		conn = lite->idle[--lite->idle_count];
		if (conn->generation != lite->generation)
			litedb_conn_close(&conn);	/* of a file replaced since */
	}
	pthread_mutex_unlock(&lite->lock);
	return conn;
}

static void litedb_conn_put(struct litedb *lite, struct litedb_conn *conn)
{
	pthread_mutex_lock(&lite->lock);
	lite->idle = xrealloc(lite->idle, (lite->idle_count + 1) * sizeof(*lite->idle));
	lite->idle[lite->idle_count++] = conn;
	pthread_mutex_unlock(&lite->lock);
}

/* ---- one lookup (worker thread) ------------------------------------- */

static int litedb_progress(void *arg)
{
	const struct litedb_job *job = arg;
	return clock_monotonic_ms() >= job->deadline_ms;	/* non-zero: interrupt */
}

/* Runs the query; false if the connection is not to be kept. */
static bool litedb_job_query(struct litedb_job *job, struct litedb_conn *conn)
{
	const struct sql_template *t = &job->lite->sql.query;
	struct sqldb_result *r = &job->result;
	sqlite3_stmt *stmt = conn->stmt;
	int ret;

	for (size_t i = 0; i < t->params_count; i++)
		sqlite3_bind_text(stmt, (int)i + 1, job->values[i], -1, SQLITE_STATIC);
	sqlite3_progress_handler(conn->handle, SQLDB_LITE_PROGRESS_STEPS,
				 litedb_progress, job);
	ret = sqlite3_step(stmt);
	if (ret == SQLITE_ROW) {
		int columns = sqlite3_column_count(stmt);
		sqldb_result_columns(r, (size_t)columns);
		for (int i = 0; i < columns; i++) {
			r->names[i] = xstrdup(sqlite3_column_name(stmt, i));
			if (sqlite3_column_type(stmt, i) != SQLITE_NULL)
				r->values[i] = xstrdup((const char *)sqlite3_column_text(stmt, i));
		}
		r->rows = 1;
		ret = sqlite3_step(stmt);
		if (ret == SQLITE_ROW)
			r->rows = 2;
	}
	if (ret != SQLITE_ROW && ret != SQLITE_DONE) {
		sqldb_result_clear(r);
		if (ret == SQLITE_INTERRUPT)
			sqldb_result_fail(r, "query timed out after %llums",
					  (unsigned long long)job->lite->db->set->timeout_ms);
		else
			sqldb_result_fail(r, "%s: %s", job->lite->path,
					  sqlite3_errmsg(conn->handle));
	}
	sqlite3_progress_handler(conn->handle, 0, NULL, NULL);
	sqlite3_reset(stmt);
	sqlite3_clear_bindings(stmt);
	/* a file that broke under it is opened again by the next lookup */
	return ret == SQLITE_ROW || ret == SQLITE_DONE || ret == SQLITE_BUSY ||
		ret == SQLITE_INTERRUPT;
}

static void litedb_job_work(struct worker_job *wjob)
{
	struct litedb_job *job = (struct litedb_job *)wjob;
	struct litedb *lite = job->lite;
	unsigned int generation;
	struct litedb_conn *conn = litedb_conn_take(lite, &generation);

	if (conn == NULL) {
		if (litedb_conn_open(lite, generation, &conn, job->result.error,
				     sizeof(job->result.error)) < 0) {
			job->result.failed = true;
			return;
		}
		job->opened_generation = generation;
	}
	if (litedb_job_query(job, conn))
		litedb_conn_put(lite, conn);
	else
		litedb_conn_close(&conn);
}

/* ---- the loop thread ------------------------------------------------ */

static void litedb_job_free(struct litedb_job *job)
{
	sql_template_values_free(&job->lite->sql.query, &job->values);
	sqldb_result_clear(&job->result);
	free(job);
}

static void litedb_job_done(struct worker_job *wjob)
{
	struct litedb_job *job = (struct litedb_job *)wjob;
	struct litedb *lite = job->lite;
	struct passdb_lookup *lookup = job->lookup;

	lookup->job = NULL;
	if (wjob->work == NULL) {
		passdb_lookup_done(lookup, PASSDB_ERROR, NULL, "shutting down");
		litedb_job_free(job);
		return;
	}
	if (job->opened_generation > lite->told_generation) {
		lite->told_generation = job->opened_generation;
		auth_notice(lite->db->auth, LOG_LEVEL_INFO,
			    "sql: %s changed, opened again", lite->path);
	}
	sqldb_result_answer(lookup, &job->result);
	litedb_job_free(job);
}

static void litedb_lookup(struct passdb_lookup *lookup)
{
	struct passdb *db = lookup->db;
	struct litedb *lite = db->ctx;

	if (worker_pool_pending(db->pool) >= auth_max_queue(db->auth)) {
		passdb_lookup_done(lookup, PASSDB_BUSY, NULL, "auth queue full");
		return;
	}
	struct litedb_job *job = xcalloc(1, sizeof(*job));
	job->lookup = lookup;
	job->lite = lite;
	job->values = sql_template_values(&lite->sql.query, lookup->user);
	job->deadline_ms = clock_monotonic_ms() + db->set->timeout_ms;
	job->base.work = litedb_job_work;
	job->base.done = litedb_job_done;
	lookup->job = job;
	worker_pool_submit(db->pool, &job->base);
}

static bool litedb_cancel(struct passdb_lookup *lookup)
{
	struct litedb_job *job = lookup->job;

	if (job == NULL || !worker_pool_cancel(lookup->db->pool, &job->base))
		return false;
	lookup->job = NULL;
	litedb_job_free(job);
	return true;
}

static int litedb_init(struct passdb *db, const char *target,
		       const struct sql_template *query, char **error_r)
{
	struct litedb *lite = xcalloc(1, sizeof(*lite));
	struct litedb_conn *conn;
	char error[512];

	lite->db = db;
	lite->path = xstrdup(target);
	lite->sql.query = *query;	/* passdb_sql.c sets it again */
	pthread_mutex_init(&lite->lock, NULL);
	if (stat(lite->path, &lite->st) < 0) {
		*error_r = xasprintf("connect: %s: %s", lite->path, strerror(errno));
	} else if (litedb_conn_open(lite, 0, &conn, error, sizeof(error)) < 0) {
		*error_r = xstrdup(error);
	} else {
		/* the query is sound: this connection serves the first lookup */
		litedb_conn_put(lite, conn);
		db->ctx = lite;
		return 0;
	}
	pthread_mutex_destroy(&lite->lock);
	free(lite->path);
	free(lite);
	return -1;
}

static void litedb_deinit(struct passdb *db)
{
	struct litedb *lite = db->ctx;

	/* auth's pool, where the lookups ran, is gone: nothing is in use */
	for (size_t i = 0; i < lite->idle_count; i++)
		litedb_conn_close(&lite->idle[i]);
	free(lite->idle);
	pthread_mutex_destroy(&lite->lock);
	free(lite->path);
	free(lite);
	db->ctx = NULL;
}

const struct sqldb_engine sqldb_sqlite = {
	.init = litedb_init,
	.deinit = litedb_deinit,
	.lookup = litedb_lookup,
	.cancel = litedb_cancel,
};
