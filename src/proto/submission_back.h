/* Logging in to a Submission backend on the user's behalf (reference
 * §10.4), as Dovecot's submission-login proxy does:
 *
 *   S: 220 greeting
 *   C: EHLO <loft>                      S: 250 extensions
 *   C: STARTTLS, then EHLO again        (backend.ssl = starttls)
 *   C: XCLIENT <the attributes the backend lists of ADDR PORT SESSION TTL
 *      HELO PROTO>                      S: 220 greeting; C: EHLO again
 *   C: AUTH PLAIN <base64>              S: 235 -> BACK_EV_OK, relayed
 *
 * The backend must offer AUTH. A 535 becomes the generic failure; other
 * refusals pass through. */
#ifndef LOFT_PROTO_SUBMISSION_BACK_H
#define LOFT_PROTO_SUBMISSION_BACK_H

#include "proto/back.h"

extern const struct back_ops submission_back_ops;

#endif
