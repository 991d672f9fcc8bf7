/* SASL PLAIN and LOGIN, as a table of mechanisms with step functions. */
#include "proto/sasl.h"

#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "common/xmalloc.h"

typedef enum sasl_result sasl_step_fn(struct sasl_server *s,
				      const unsigned char *resp, size_t len,
				      struct sbuf *challenge, const char **error_r);

struct sasl_mech {
	const char *name;
	bool plaintext;
	const char *first_challenge;	/* sent when there is no initial response */
	sasl_step_fn *step;
};

static char *sasl_dup_field(const unsigned char *p, size_t len)
{
	return xstrndup((const char *)p, len);
}

/* RFC 4616: [authzid] NUL authcid NUL passwd */
static enum sasl_result sasl_plain_step(struct sasl_server *s,
					const unsigned char *resp, size_t len,
					struct sbuf *challenge, const char **error_r)
{
	(void)challenge;
	const unsigned char *nul1 = memchr(resp, '\0', len);
	const unsigned char *nul2 = nul1 == NULL ? NULL :
		memchr(nul1 + 1, '\0', len - (size_t)(nul1 + 1 - resp));
	if (nul2 == NULL ||
	    memchr(nul2 + 1, '\0', len - (size_t)(nul2 + 1 - resp)) != NULL) {
		*error_r = "Invalid PLAIN message.";
		return SASL_FAIL;
	}
	if (nul2 == nul1 + 1) {
		*error_r = "Empty username.";
		return SASL_FAIL;
	}
	s->creds.authzid = sasl_dup_field(resp, (size_t)(nul1 - resp));
	s->creds.authcid = sasl_dup_field(nul1 + 1, (size_t)(nul2 - nul1 - 1));
	s->creds.password = sasl_dup_field(nul2 + 1, len - (size_t)(nul2 + 1 - resp));
	return SASL_DONE;
}

/* LOGIN: "Username:" -> name, "Password:" -> password */
static enum sasl_result sasl_login_step(struct sasl_server *s,
					const unsigned char *resp, size_t len,
					struct sbuf *challenge, const char **error_r)
{
	if (memchr(resp, '\0', len) != NULL) {
		*error_r = "NUL in LOGIN response.";
		return SASL_FAIL;
	}
	if (s->step == 0) {
		if (len == 0) {
			*error_r = "Empty username.";
			return SASL_FAIL;
		}
		s->creds.authcid = sasl_dup_field(resp, len);
		sbuf_appends(challenge, "Password:");
		s->step++;
		return SASL_CONTINUE;
	}
	s->creds.authzid = xstrdup("");
	s->creds.password = sasl_dup_field(resp, len);
	return SASL_DONE;
}

static const struct sasl_mech sasl_mechs[] = {
	{ "PLAIN", true, "", sasl_plain_step },
	{ "LOGIN", true, "Username:", sasl_login_step },
};

const struct sasl_mech *sasl_mech_find(const char *name)
{
	for (size_t i = 0; i < ARRAY_SIZE(sasl_mechs); i++) {
		if (strcasecmp(sasl_mechs[i].name, name) == 0)
			return &sasl_mechs[i];
	}
	return NULL;
}

const char *sasl_mech_name(const struct sasl_mech *mech)
{
	return mech->name;
}

bool sasl_mech_is_plaintext(const struct sasl_mech *mech)
{
	return mech->plaintext;
}

void sasl_mechs_append(struct sbuf *out, const char *prefix, const char *suffix)
{
	for (size_t i = 0; i < ARRAY_SIZE(sasl_mechs); i++) {
		sbuf_appends(out, prefix);
		sbuf_appends(out, sasl_mechs[i].name);
		sbuf_appends(out, suffix);
	}
}

void sasl_server_init(struct sasl_server *s, const struct sasl_mech *mech)
{
	memset(s, 0, sizeof(*s));
	s->mech = mech;
}

void sasl_credentials_clear(struct sasl_credentials *creds)
{
	xfree_secret(&creds->password);
	free(creds->authzid);
	free(creds->authcid);
	creds->authzid = creds->authcid = NULL;
}

void sasl_server_take_credentials(struct sasl_server *s,
				  struct sasl_credentials *creds_r)
{
	*creds_r = s->creds;
	memset(&s->creds, 0, sizeof(s->creds));
}

void sasl_server_deinit(struct sasl_server *s)
{
	sasl_credentials_clear(&s->creds);
	memset(s, 0, sizeof(*s));
}

void sasl_server_initial_challenge(struct sasl_server *s, struct sbuf *challenge)
{
	sbuf_appends(challenge, s->mech->first_challenge);
}

enum sasl_result sasl_server_step(struct sasl_server *s, const unsigned char *resp,
				  size_t len, struct sbuf *challenge,
				  const char **error_r)
{
	return s->mech->step(s, resp, len, challenge, error_r);
}
