/* Submission (RFC 6409 over SMTP, RFC 5321 + 4954) before login, as
 * Dovecot's submission-login speaks it:
 *
 *   S: 220 <hostname> loft ready.
 *   C: EHLO name | HELO name | STARTTLS | AUTH mech [initial] | NOOP | RSET
 *      | QUIT | XCLIENT ...    (trusted clients)
 *   S: 250-<hostname> / 250-8BITMIME / 250-AUTH PLAIN LOGIN / ... ; AUTH
 *      continues with "334 <base64>"; mail commands before login get
 *      "530 5.7.0 Authentication required."
 *
 * The EHLO name is kept for XCLIENT HELO= towards the backend. */
#ifndef LOFT_PROTO_SUBMISSION_FRONT_H
#define LOFT_PROTO_SUBMISSION_FRONT_H

#include "proto/front.h"

extern const struct front_ops submission_front_ops;

#endif
