/* passdb driver "passwd-file": the file is read into memory at start and
 * read again when it changes. Like Dovecot, every lookup stat()s the file
 * (one cheap syscall). A changed file is read and parsed by a worker
 * thread, since it may be large (up to PASSWD_FILE_MAX_SIZE); lookups go
 * on with the loaded users meanwhile, and the new table replaces them on
 * the loop thread. A file that fails to parse keeps the loaded users
 * until it changes again. What happens is told through auth_notice(). */
#include <errno.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "auth/passdb.h"
#include "auth/passwd_file.h"
#include "auth/worker.h"
#include "common/file.h"
#include "common/macros.h"
#include "common/xmalloc.h"

struct passwd_file_ctx {
	struct passwd_table table;
	struct stat st;			/* of the file the table came from */
	bool reading;			/* a reload job is on its way */
	bool stat_failed;		/* said once, until stat() works again */
};

/* One reload: work() in a worker thread, done() on the loop. */
struct passwd_file_reload {
	struct worker_job base;
	struct passdb *db;
	struct stat seen;		/* what made the lookup start it */
	struct passwd_table table;
	struct stat st;			/* of what was read */
	int ret;
	char *error;
};

#define PASSWD_FILE_MAX_SIZE (1024u * 1024 * 1024)

/* Reads and parses the whole file; touches nothing else (thread-safe). */
static int passwd_file_read(const char *path, struct passwd_table *table,
			    struct stat *st_r, char **error_r)
{
	char *data;
	size_t size;
	int ret = file_read_all(path, PASSWD_FILE_MAX_SIZE, &data, &size, st_r, error_r);
	if (ret <= 0) {
		if (ret == 0)
			*error_r = xasprintf("open(%s) failed: %s", path, strerror(ENOENT));
		return -1;
	}
	char *perror;
	ret = passwd_table_parse(table, data, size, &perror);
	explicit_bzero(data, size);
	free(data);
	if (ret < 0) {
		*error_r = xasprintf("%s: %s", path, perror);
		free(perror);
	}
	return ret;
}

static int passwd_file_init(struct passdb *db, char **error_r)
{
	struct passwd_file_ctx *ctx = xcalloc(1, sizeof(*ctx));
	if (passwd_file_read(db->set->path, &ctx->table, &ctx->st, error_r) < 0) {
		free(ctx);
		return -1;
	}
	db->ctx = ctx;
	return 0;
}

static void passwd_file_deinit(struct passdb *db)
{
	struct passwd_file_ctx *ctx = db->ctx;
	/* no reload is left: the pool finished or cancelled them first */
	passwd_table_free(&ctx->table);
	free(ctx);
	db->ctx = NULL;
}

static void passwd_file_reload_work(struct worker_job *wjob)
{
	struct passwd_file_reload *r = (struct passwd_file_reload *)wjob;
	r->ret = passwd_file_read(r->db->set->path, &r->table, &r->st, &r->error);
}

static void passwd_file_free_work(struct worker_job *wjob)
{
	struct passwd_file_reload *r = (struct passwd_file_reload *)wjob;
	passwd_table_free(&r->table);
}

static void passwd_file_freed(struct worker_job *wjob)
{
	struct passwd_file_reload *r = (struct passwd_file_reload *)wjob;
	if (r->base.work == NULL)
		passwd_table_free(&r->table); /* cancelled: shutting down */
	free(r);
}

static void passwd_file_reload_done(struct worker_job *wjob)
{
	struct passwd_file_reload *r = (struct passwd_file_reload *)wjob;
	struct passdb *db = r->db;
	struct passwd_file_ctx *ctx = db->ctx;

	ctx->reading = false;
	if (r->base.work == NULL) {
		/* cancelled (shutting down): it never ran */
	} else if (r->ret < 0) {
		auth_notice(db->auth, LOG_LEVEL_ERROR,
			    "passwd-file reload failed, keeping the loaded users: %s",
			    r->error);
		ctx->st = r->seen; /* do not retry until it changes again */
	} else {
		SWAP(ctx->table, r->table);
		ctx->st = r->st;
		auth_notice(db->auth, LOG_LEVEL_INFO, "passwd-file %s reloaded: %zu users",
			    db->set->path, ctx->table.count);
		/* freeing a large table takes as long as a good part of the
		 * parse: the old one goes back to a worker */
		free(r->error);
		r->error = NULL;
		r->base.work = passwd_file_free_work;
		r->base.done = passwd_file_freed;
		worker_pool_submit(db->pool, &r->base);
		return;
	}
	free(r->error);
	free(r);
}

static bool passwd_file_changed(const struct stat *a, const struct stat *b)
{
	return a->st_mtim.tv_sec != b->st_mtim.tv_sec ||
		a->st_mtim.tv_nsec != b->st_mtim.tv_nsec ||
		a->st_size != b->st_size || a->st_ino != b->st_ino;
}

/* Starts a reload when the file changed and none is on its way. */
static void passwd_file_refresh(struct passdb *db)
{
	struct passwd_file_ctx *ctx = db->ctx;
	struct stat st;

	if (ctx->reading)
		return;
	if (stat(db->set->path, &st) < 0) {
		if (!ctx->stat_failed)
			auth_notice(db->auth, LOG_LEVEL_ERROR, "passwd-file %s: stat() "
				    "failed, keeping the loaded users: %s", db->set->path,
				    strerror(errno));
		ctx->stat_failed = true;
		return;
	}
	ctx->stat_failed = false;
	if (!passwd_file_changed(&st, &ctx->st))
		return;
	struct passwd_file_reload *r = xcalloc(1, sizeof(*r));
	r->db = db;
	r->seen = st;
	r->base.work = passwd_file_reload_work;
	r->base.done = passwd_file_reload_done;
	ctx->reading = true;
	worker_pool_submit(db->pool, &r->base);
}

/* In memory: answers at once. */
static void passwd_file_lookup(struct passdb_lookup *lookup)
{
	struct passdb *db = lookup->db;
	struct passwd_file_ctx *ctx = db->ctx;
	struct auth_result *result = lookup->result;

	passwd_file_refresh(db);
	const struct passwd_entry *e = passwd_table_lookup(&ctx->table, lookup->user);
	if (e == NULL) {
		passdb_lookup_done(lookup, PASSDB_NOT_FOUND, NULL, NULL);
		return;
	}
	for (size_t i = 0; i < e->fields_count; i++)
		passdb_apply_field(result, e->fields[i].key, e->fields[i].value);
	if (passwd_entry_field(e, "nologin") != NULL)
		result->status = AUTH_STATUS_NOLOGIN;
	passdb_lookup_done(lookup, PASSDB_FOUND, result->password_unchecked ? NULL :
			   xstrdup(e->password), NULL);
}

const struct passdb_driver passdb_passwd_file = {
	.name = "passwd-file",
	.init = passwd_file_init,
	.deinit = passwd_file_deinit,
	.lookup = passwd_file_lookup,
};
