/* Line splitting. */
#include "proto/line.h"

#include <string.h>

#include "common/macros.h"

long line_next(const unsigned char *buf, size_t len, size_t max, size_t *consumed_r)
{
	const unsigned char *lf = memchr(buf, '\n', MIN(len, max + 2));
	*consumed_r = 0;
	if (lf == NULL)
		return len > max + 1 ? -2 : -1;
	size_t end = (size_t)(lf - buf);
	*consumed_r = end + 1;
	if (end > 0 && buf[end - 1] == '\r')
		end--;
	return (long)end;
}
