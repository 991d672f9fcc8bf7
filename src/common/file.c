/* Whole-file reads and atomic writes. */
#include "common/file.h"

#include <errno.h>
#include <fcntl.h>
#include <libgen.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "common/xmalloc.h"

int file_read_all(const char *path, size_t max_size, char **data_r, size_t *len_r,
		  struct stat *st_r, char **error_r)
{
	struct stat st;
	int fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0) {
		if (errno == ENOENT)
			return 0;
		*error_r = xasprintf("open(%s) failed: %s", path, strerror(errno));
		return -1;
	}
	if (fstat(fd, &st) < 0) {
		*error_r = xasprintf("fstat(%s) failed: %s", path, strerror(errno));
		close(fd);
		return -1;
	}
	if ((unsigned long long)st.st_size > max_size) {
		*error_r = xasprintf("%s: larger than %zu bytes", path, max_size);
		close(fd);
		return -1;
	}
	size_t size = (size_t)st.st_size;
	char *data = xmalloc(size + 1);
	size_t got = 0;
	while (got < size) {
		ssize_t n = read(fd, data + got, size - got);
		if (n <= 0) {
			*error_r = xasprintf("read(%s) failed: %s", path,
					     n == 0 ? "file shrank" : strerror(errno));
			close(fd);
			free(data);
			return -1;
		}
		got += (size_t)n;
	}
	close(fd);
	data[size] = '\0';
	*data_r = data;
	*len_r = size;
	if (st_r != NULL)
		*st_r = st;
	return 1;
}

static int file_write_fd(int fd, const char *data, size_t len)
{
	while (len > 0) {
		ssize_t n = write(fd, data, len);
		if (n < 0) {
			if (errno == EINTR)
				continue;
			return -1;
		}
		data += n;
		len -= (size_t)n;
	}
	return fsync(fd);
}

/* The rename is only durable once the directory entry is. */
static int file_fsync_dir(const char *path)
{
	char *copy = xstrdup(path);
	int fd = open(dirname(copy), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	free(copy);
	if (fd < 0)
		return -1;
	int ret = fsync(fd);
	close(fd);
	return ret;
}

int file_write_atomic(const char *path, const char *data, size_t len, mode_t mode,
		      char **error_r)
{
	char *tmp = xasprintf("%s.tmp", path);
	const char *step = "open";
	int fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, mode);
	if (fd >= 0) {
		step = "write";
		int ret = file_write_fd(fd, data, len);
		if (close(fd) < 0)
			ret = -1;
		if (ret == 0) {
			step = "rename";
			if (rename(tmp, path) == 0) {
				free(tmp);
				if (file_fsync_dir(path) < 0) {
					*error_r = xasprintf("fsync of the directory of %s failed: %s",
							     path, strerror(errno));
					return -1;
				}
				return 0;
			}
		}
	}
	*error_r = xasprintf("%s(%s) failed: %s", step, tmp, strerror(errno));
	if (fd >= 0)
		(void)unlink(tmp);
	free(tmp);
	return -1;
}
