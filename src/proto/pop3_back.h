/* Logging in to a POP3 backend on the user's behalf (reference §10.3):
 *
 *   S: +OK [XCLIENT] ready            (must start "+OK")
 *   C: STLS                           (backend.ssl = starttls) -> +OK, TLS
 *   C: XCLIENT ADDR=.. PORT=.. SESSION=.. TTL=..   (advertised, trusted)
 *   C: USER name / PASS secret        or AUTH PLAIN <base64>
 *   S: +OK Logged in.                 -> BACK_EV_OK, the line is relayed
 *
 * "-ERR [AUTH] ..." and a -ERR without a response code become the generic
 * failure, so that a backend cannot tell a client which users exist;
 * other codes ([SYS/TEMP], [IN-USE], ...) pass through. */
#ifndef LOFT_PROTO_POP3_BACK_H
#define LOFT_PROTO_POP3_BACK_H

#include "proto/back.h"

extern const struct back_ops pop3_back_ops;

#endif
