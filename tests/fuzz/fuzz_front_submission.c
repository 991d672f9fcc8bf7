/* The submission front: commands before login, SASL and its base64 included. */
#include "proto/submission_front.h"

#define FUZZ_FRONT_OPS submission_front_ops
#include "fuzz_front.h"
