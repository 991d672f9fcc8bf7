/* The submission back: a backend's banner, capabilities and login replies. */
#include "proto/submission_back.h"

#define FUZZ_BACK_OPS submission_back_ops
#include "fuzz_back.h"
