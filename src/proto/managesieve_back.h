/* Logging in to a ManageSieve backend on the user's behalf, as Dovecot's
 * managesieve-login proxy does:
 *
 *   S: capability lines, then OK "..."          (must end with OK)
 *   C: STARTTLS -> OK, TLS, capabilities again  (backend.ssl = starttls)
 *   C: XCLIENT ADDR=.. PORT=.. SESSION=.. TTL=..  (advertised, trusted)
 *   C: AUTHENTICATE "PLAIN" "<base64>"
 *   S: OK "Logged in."                          -> BACK_EV_OK, relayed
 *
 * A NO without a response code becomes the generic failure; NO (code) and
 * its text pass through. */
#ifndef LOFT_PROTO_MANAGESIEVE_BACK_H
#define LOFT_PROTO_MANAGESIEVE_BACK_H

#include "proto/back.h"

extern const struct back_ops managesieve_back_ops;

#endif
