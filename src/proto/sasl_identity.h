/* Who a SASL exchange loft cannot verify is for, from the client's first
 * message: XOAUTH2 (Google's format), OAUTHBEARER (RFC 7628) and
 * SCRAM-SHA-1/-256 (RFC 5802's client-first-message), for a login that is
 * routed by that user and whose exchange the backend decides
 * (auth.passthrough_mechanisms, sasl.c). Pure: decoded bytes in,
 * the user out; nothing is verified here, and a message that is not well
 * formed names nobody. */
#ifndef LOFT_PROTO_SASL_IDENTITY_H
#define LOFT_PROTO_SASL_IDENTITY_H

#include <stddef.h>

struct sasl_identity_mech;

/* By name, case-insensitively; NULL for any other mechanism. */
const struct sasl_identity_mech *sasl_identity_find(const char *name);
const char *sasl_identity_name(const struct sasl_identity_mech *mech);

/* The user the client's first message (decoded, len bytes) names: the
 * authorization identity when it gives one (OAUTHBEARER's and SCRAM's
 * "a=", XOAUTH2's "user="), else SCRAM's "n=" username. 0 with *user_r
 * (caller frees; never empty, no control character), or -1 with why the
 * message is refused. */
int sasl_identity_user(const struct sasl_identity_mech *mech, const unsigned char *msg,
		       size_t len, char **user_r, const char **error_r);

#endif
