/* The managesieve front: commands before login, SASL and its base64 included. */
#include "proto/managesieve_front.h"

#define FUZZ_FRONT_OPS managesieve_front_ops
#include "fuzz_front.h"
