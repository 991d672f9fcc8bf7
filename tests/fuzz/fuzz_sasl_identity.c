/* The user of a pass-through SASL first message (XOAUTH2, OAUTHBEARER,
 * SCRAM): any bytes are refused or name a non-empty user without control
 * characters, and that user, written back into a well-formed message of the
 * same mechanism, is read again as the same user. */
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "common/sbuf.h"
#include "proto/sasl_identity.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

/* RFC 5802 saslname: "," and "=" escaped */
static void fuzz_saslname(struct sbuf *out, const char *user)
{
	for (; *user != '\0'; user++) {
		if (*user == ',')
			sbuf_appends(out, "=2C");
		else if (*user == '=')
			sbuf_appends(out, "=3D");
		else
			sbuf_appendc(out, *user);
	}
}

static void fuzz_again(const struct sasl_identity_mech *mech, const char *user)
{
	struct sbuf msg = SBUF_INIT;
	const char *name = sasl_identity_name(mech);
	if (strcmp(name, "XOAUTH2") == 0) {
		sbuf_appendf(&msg, "user=%s\001auth=Bearer t\001\001", user);
	} else if (strcmp(name, "OAUTHBEARER") == 0) {
		sbuf_appends(&msg, "n,a=");
		fuzz_saslname(&msg, user);
		sbuf_appends(&msg, ",\001auth=Bearer t\001\001");
	} else {
		sbuf_appends(&msg, "n,a=");
		fuzz_saslname(&msg, user);
		sbuf_appends(&msg, ",n=x,r=nonce");
	}
	char *again;
	const char *error;
	if (sasl_identity_user(mech, (const unsigned char *)sbuf_data(&msg), sbuf_len(&msg),
			       &again, &error) < 0 || strcmp(again, user) != 0)
		abort();
	free(again);
	sbuf_free(&msg);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static const char *const mechs[] = { "XOAUTH2", "OAUTHBEARER", "SCRAM-SHA-256" };
	for (size_t i = 0; i < sizeof(mechs) / sizeof(mechs[0]); i++) {
		const struct sasl_identity_mech *mech = sasl_identity_find(mechs[i]);
		char *user;
		const char *error = NULL;
		if (sasl_identity_user(mech, data, size, &user, &error) < 0) {
			if (error == NULL || user != NULL)
				abort();
			continue;
		}
		if (user[0] == '\0')
			abort();
		for (const char *p = user; *p != '\0'; p++) {
			if ((unsigned char)*p < 0x20 || *p == 0x7f)
				abort();
		}
		fuzz_again(mech, user);
		free(user);
	}
	return 0;
}
