/* POP3 before login, as Dovecot's pop3-login speaks it (reference §10.3):
 *
 *   S: +OK [XCLIENT] loft ready.          ([XCLIENT] to trusted clients)
 *   C: CAPA | USER name | PASS secret | AUTH [mech [initial]] | STLS | QUIT
 *      | XCLIENT ADDR=.. PORT=.. SESSION=.. TTL=..   (trusted clients only)
 *   S: "+OK ..." or "-ERR [AUTH] ..."; AUTH continues with "+ <base64>"
 *
 * Replies and error texts are Dovecot 2.3's. NOOP and every other command
 * are unknown before login; the max_bad_commands-th unknown command ends
 * the connection. */
#ifndef LOFT_PROTO_POP3_FRONT_H
#define LOFT_PROTO_POP3_FRONT_H

#include "proto/front.h"

extern const struct front_ops pop3_front_ops;

#endif
