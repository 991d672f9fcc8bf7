/* passdb driver "passwd-file": the file is read into memory at start and
 * read again when it changes. Like Dovecot, every lookup stat()s the file
 * (one cheap syscall); a file that fails to parse on reload keeps the
 * previous contents. */
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "auth/passdb.h"
#include "auth/passwd_file.h"
#include "common/file.h"
#include "common/log.h"
#include "common/xmalloc.h"

struct passwd_file_ctx {
	struct passwd_table table;
	struct stat st;
};

#define PASSWD_FILE_MAX_SIZE (1024u * 1024 * 1024)

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
	passwd_table_free(&ctx->table);
	free(ctx);
	db->ctx = NULL;
}

static void passwd_file_refresh(struct passdb *db)
{
	struct passwd_file_ctx *ctx = db->ctx;
	struct stat st;

	if (stat(db->set->path, &st) < 0) {
		log_error("passwd-file %s: stat() failed, keeping the loaded users: %m",
			  db->set->path);
		return;
	}
	if (st.st_mtim.tv_sec == ctx->st.st_mtim.tv_sec &&
	    st.st_mtim.tv_nsec == ctx->st.st_mtim.tv_nsec &&
	    st.st_size == ctx->st.st_size && st.st_ino == ctx->st.st_ino)
		return;
	struct passwd_table table;
	char *error;
	if (passwd_file_read(db->set->path, &table, &st, &error) < 0) {
		log_error("passwd-file reload failed, keeping the loaded users: %s", error);
		free(error);
		ctx->st = st; /* do not retry until it changes again */
		return;
	}
	passwd_table_free(&ctx->table);
	ctx->table = table;
	ctx->st = st;
	log_info("passwd-file %s reloaded: %zu users", db->set->path, table.count);
}

static enum passdb_result passwd_file_lookup(struct passdb *db, const char *user,
					     struct auth_result *result,
					     char **stored_r, const char **error_r)
{
	struct passwd_file_ctx *ctx = db->ctx;
	(void)error_r;

	passwd_file_refresh(db);
	const struct passwd_entry *e = passwd_table_lookup(&ctx->table, user);
	if (e == NULL)
		return PASSDB_NOT_FOUND;
	for (size_t i = 0; i < e->fields_count; i++)
		passdb_apply_field(result, e->fields[i].key, e->fields[i].value);
	if (passwd_entry_field(e, "nologin") != NULL)
		result->status = AUTH_STATUS_NOLOGIN;
	*stored_r = result->password_unchecked ? NULL : xstrdup(e->password);
	return PASSDB_FOUND;
}

const struct passdb_driver passdb_passwd_file = {
	.name = "passwd-file",
	.init = passwd_file_init,
	.deinit = passwd_file_deinit,
	.lookup = passwd_file_lookup,
};
