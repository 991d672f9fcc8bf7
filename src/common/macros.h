/* Small compiler helpers shared by every module. */
#ifndef LOFT_COMMON_MACROS_H
#define LOFT_COMMON_MACROS_H

#include <stddef.h>

#define ARRAY_SIZE(a) (sizeof(a) / sizeof((a)[0]))

#define CONTAINER_OF(ptr, type, member) \
	((type *)(void *)((char *)(ptr) - offsetof(type, member)))

#define ATTR_FORMAT(fmt_idx, arg_idx) \
	__attribute__((format(printf, fmt_idx, arg_idx)))
#define ATTR_NORETURN __attribute__((noreturn))
#define ATTR_UNUSED __attribute__((unused))
#define ATTR_MALLOC __attribute__((malloc))
#define ATTR_WARN_UNUSED __attribute__((warn_unused_result))
#define ATTR_SENTINEL __attribute__((sentinel))

#define LIKELY(x) __builtin_expect(!!(x), 1)
#define UNLIKELY(x) __builtin_expect(!!(x), 0)

#define MIN(a, b) ((a) < (b) ? (a) : (b))
#define MAX(a, b) ((a) > (b) ? (a) : (b))

#define SWAP(a, b) do { \
		__typeof__(a) swap_tmp_ = (a); \
		(a) = (b); \
		(b) = swap_tmp_; \
	} while (0)

#endif
