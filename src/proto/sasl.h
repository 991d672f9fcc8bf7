/* Server side of the SASL mechanisms loft accepts from clients: PLAIN
 * (RFC 4616) and LOGIN, which loft verifies, and the pass-through ones
 * (XOAUTH2, OAUTHBEARER, SCRAM-SHA-1/-256), of which loft reads only the
 * user in the client's first message (sasl_identity.h) and leaves the
 * rest of the exchange to the backend (auth.passthrough_mechanisms).
 * Pure: it takes decoded client responses and returns raw challenges;
 * each protocol does its own framing and base64. Every protocol front
 * (IMAP, POP3, SMTP, ManageSieve) shares it. */
#ifndef LOFT_PROTO_SASL_H
#define LOFT_PROTO_SASL_H

#include <stdbool.h>
#include <stddef.h>

#include "common/sbuf.h"

struct sasl_mech;

enum sasl_result {
	SASL_CONTINUE,	/* send the challenge, wait for a response */
	SASL_DONE,	/* credentials are complete */
	SASL_FAIL,	/* malformed exchange; error says why */
};

struct sasl_credentials {
	char *authzid;	/* "" when not given */
	char *authcid;	/* a pass-through mechanism: the user it names */
	char *password;	/* NULL for a pass-through mechanism */
	/* a pass-through mechanism: the client's first message, decoded,
	 * for the backend (secret: a token, or SCRAM's nonce); NUL-terminated
	 * and without a NUL inside (sasl_identity_user() refuses one) */
	char *message;
};

struct sasl_server {
	const struct sasl_mech *mech;
	unsigned int step;
	struct sasl_credentials creds;
};

/* Looks a mechanism up by name (case-insensitive); NULL if unsupported.
 * A pass-through one only when its bit is in passthrough (below). */
const struct sasl_mech *sasl_mech_find(const char *name, unsigned int passthrough);
const char *sasl_mech_name(const struct sasl_mech *mech);
/* PLAIN and LOGIN send the password in the clear, XOAUTH2 and
 * OAUTHBEARER a bearer token (as Dovecot counts them). */
bool sasl_mech_is_plaintext(const struct sasl_mech *mech);
/* The backend decides: credentials carry a message, not a password. */
bool sasl_mech_is_passthrough(const struct sasl_mech *mech);
/* The bits of the pass-through mechanisms named (case-insensitively);
 * -1 with *bad_r the first name that is not one. */
int sasl_passthrough_mask(char *const *names, size_t count, unsigned int *mask_r,
			  const char **bad_r);
/* Appends the names offered, each between prefix and suffix: " AUTH=PLAIN
 * AUTH=LOGIN" (IMAP) or "PLAIN\r\nLOGIN\r\n" (POP3): the pass-through
 * ones in passthrough, and the plaintext ones only if plaintext. Returns
 * how many. */
size_t sasl_mechs_append(struct sbuf *out, const char *prefix, const char *suffix,
			 unsigned int passthrough, bool plaintext);

/* Wipes the password and frees every field. */
void sasl_credentials_clear(struct sasl_credentials *creds);
/* Moves the credentials out of the server (which keeps none). */
void sasl_server_take_credentials(struct sasl_server *s,
				  struct sasl_credentials *creds_r);

void sasl_server_init(struct sasl_server *s, const struct sasl_mech *mech);
/* Wipes and frees the credentials. */
void sasl_server_deinit(struct sasl_server *s);

/* The first challenge when the client gave no initial response. */
void sasl_server_initial_challenge(struct sasl_server *s, struct sbuf *challenge);
/* Feeds one decoded client response. */
enum sasl_result sasl_server_step(struct sasl_server *s, const unsigned char *resp,
				  size_t len, struct sbuf *challenge,
				  const char **error_r);

#endif
