/* Whole-file reads and atomic whole-file writes. Both block: call them at
 * start-up, or for small files on rare admin actions. */
#ifndef LOFT_COMMON_FILE_H
#define LOFT_COMMON_FILE_H

#include <stddef.h>
#include <sys/stat.h>

/* Reads the whole file (at most max_size bytes) into a NUL-terminated
 * buffer. Returns 1, 0 when the file does not exist, or -1 with a reason.
 * st_r (may be NULL) receives the file's status. */
int file_read_all(const char *path, size_t max_size, char **data_r, size_t *len_r,
		  struct stat *st_r, char **error_r);

/* Replaces path with data so that a reader, or the file after a crash, is
 * the old contents or the new, never a mix: writes path.tmp, fsyncs it,
 * renames it over path, fsyncs the directory. Returns -1 with a reason. */
int file_write_atomic(const char *path, const char *data, size_t len, mode_t mode,
		      char **error_r);

#endif
