/* The managesieve back: a backend's banner, capabilities and login replies. */
#include "proto/managesieve_back.h"

#define FUZZ_BACK_OPS managesieve_back_ops
#include "fuzz_back.h"
