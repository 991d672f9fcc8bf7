/* The imap back: a backend's banner, capabilities and login replies. */
#include "proto/imap_back.h"

#define FUZZ_BACK_OPS imap_back_ops
#include "fuzz_back.h"
