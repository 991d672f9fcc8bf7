/* IMAP before login (RFC 3501 §6.1–6.2, RFC 4959 SASL-IR, RFC 2971 ID,
 * RFC 7888 LITERAL+), the way Dovecot's imap-login answers:
 *
 *   S: * OK [CAPABILITY ...] greeting
 *   C: a CAPABILITY | NOOP | ID (...) | STARTTLS | LOGOUT
 *   C: a LOGIN user pass            -> FRONT_EV_AUTH
 *   C: a AUTHENTICATE PLAIN [ir]    -> "+ " challenges -> FRONT_EV_AUTH
 *   S: a OK [CAPABILITY ...] ...    (the backend's reply, via logged_in)
 *
 * Limits: line and literal sizes, and max_bad_commands invalid commands
 * before "* BYE Too many invalid IMAP commands.". */
#ifndef LOFT_PROTO_IMAP_FRONT_H
#define LOFT_PROTO_IMAP_FRONT_H

#include "proto/front.h"

extern const struct front_ops imap_front_ops;

#endif
