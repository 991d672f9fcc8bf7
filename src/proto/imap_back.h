/* Logging in to an IMAP backend on the user's behalf (reference §10.2):
 *
 *   S: * OK [CAPABILITY ... ID ...] ready        (must start "* OK ")
 *   C: I ID ([client's own fields] "x-session-id" .. "x-originating-ip" ..
 *           "x-proxy-ttl" ..)        (client_id: imap_id_retain)
 *   C: S STARTTLS                                (backend.ssl = starttls)
 *   C: C CAPABILITY                              (when not yet known)
 *   C: L LOGIN user pass | L AUTHENTICATE PLAIN <ir>
 *   S: L OK [CAPABILITY ...] Logged in           -> BACK_EV_OK
 *
 * NO [AUTHENTICATIONFAILED] and a NO without a code become the generic
 * failure; other NO [code] replies pass through. */
#ifndef LOFT_PROTO_IMAP_BACK_H
#define LOFT_PROTO_IMAP_BACK_H

#include "proto/back.h"

extern const struct back_ops imap_back_ops;

#endif
