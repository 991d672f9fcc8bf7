/* The pop3 back: a backend's banner, capabilities and login replies. */
#include "proto/pop3_back.h"

#define FUZZ_BACK_OPS pop3_back_ops
#include "fuzz_back.h"
