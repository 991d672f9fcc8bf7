/* The pop3 front: commands before login, SASL and its base64 included. */
#include "proto/pop3_front.h"

#define FUZZ_FRONT_OPS pop3_front_ops
#include "fuzz_front.h"
