/* ManageSieve (RFC 5804) before login, as Dovecot's managesieve-login
 * speaks it:
 *
 *   S: "IMPLEMENTATION" "loft" / "SIEVE" "..." / "NOTIFY" "..." /
 *      "SASL" "PLAIN LOGIN" / "STARTTLS" / "VERSION" "1.0"
 *      OK "loft ready."
 *   C: CAPABILITY | NOOP ["tag"] | STARTTLS | LOGOUT
 *      | AUTHENTICATE "mech" ["initial"]      (strings: quoted or {n+})
 *      | XCLIENT ADDR=.. PORT=.. SESSION=.. TTL=..   (trusted clients)
 *   S: continuations as quoted base64 strings; OK / NO / BYE
 *
 * After STARTTLS the capabilities are sent again (RFC 5804 §2.2). The
 * SIEVE and NOTIFY lists come from the configuration: a proxy cannot know
 * them before the user's backend is chosen. */
#ifndef LOFT_PROTO_MANAGESIEVE_FRONT_H
#define LOFT_PROTO_MANAGESIEVE_FRONT_H

#include "proto/front.h"

extern const struct front_ops managesieve_front_ops;

/* Appends s as a quoted string: \ and " escaped, CR and LF as spaces. */
void managesieve_append_quoted(struct sbuf *out, const char *s);

#endif
