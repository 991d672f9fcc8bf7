/* Server side of the SASL mechanisms loft accepts from clients: PLAIN
 * (RFC 4616) and LOGIN. Pure: it takes decoded client responses and
 * returns raw challenges; each protocol does its own framing and base64.
 * Every protocol front (IMAP, POP3, SMTP, ManageSieve) shares it. */
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
	char *authcid;
	char *password;
};

struct sasl_server {
	const struct sasl_mech *mech;
	unsigned int step;
	struct sasl_credentials creds;
};

/* Looks a mechanism up by name (case-insensitive); NULL if unsupported. */
const struct sasl_mech *sasl_mech_find(const char *name);
const char *sasl_mech_name(const struct sasl_mech *mech);
/* Both mechanisms send the password in the clear. */
bool sasl_mech_is_plaintext(const struct sasl_mech *mech);
/* Appends the names, each between prefix and suffix: " AUTH=PLAIN
 * AUTH=LOGIN" (IMAP) or "PLAIN\r\nLOGIN\r\n" (POP3). */
void sasl_mechs_append(struct sbuf *out, const char *prefix, const char *suffix);

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
