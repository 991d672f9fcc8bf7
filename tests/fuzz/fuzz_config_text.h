/* Loading configuration text through the real loader (which takes a
 * path): a memfd named by /proc/self/fd. */
#ifndef LOFT_FUZZ_CONFIG_TEXT_H
#define LOFT_FUZZ_CONFIG_TEXT_H

#include <stdio.h>
#include <stdlib.h>
#include <sys/mman.h>
#include <unistd.h>

#include "conf/config.h"

static struct config *fuzz_config_load(const void *text, size_t len, char **error_r)
{
	int fd = memfd_create("loft-fuzz.conf", MFD_CLOEXEC);
	if (fd < 0 || write(fd, text, len) != (ssize_t)len)
		abort();
	char path[64];
	snprintf(path, sizeof(path), "/proc/self/fd/%d", fd);
	struct config *cfg = config_load(path, NULL, 0, error_r);
	close(fd);
	return cfg;
}

#endif
