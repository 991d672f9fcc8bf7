/* The imap front: commands before login, SASL and its base64 included. */
#include "proto/imap_front.h"

#define FUZZ_FRONT_OPS imap_front_ops
#include "fuzz_front.h"
