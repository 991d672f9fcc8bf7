/* SASL PLAIN and LOGIN, and the pass-through mechanisms' first step, as
 * a table of mechanisms with step functions. */
#include "proto/sasl.h"

#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "common/xmalloc.h"
#include "proto/sasl_identity.h"

typedef enum sasl_result sasl_step_fn(struct sasl_server *s,
				      const unsigned char *resp, size_t len,
				      struct sbuf *challenge, const char **error_r);

struct sasl_mech {
	const char *name;
	bool plaintext;
	bool passthrough;
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

/* A pass-through mechanism's first message: who it is for, and the
 * message itself for the backend, which runs the rest of the exchange. */
static enum sasl_result sasl_passthrough_step(struct sasl_server *s,
					      const unsigned char *resp, size_t len,
					      struct sbuf *challenge, const char **error_r)
{
	(void)challenge;
	char *user;
	if (sasl_identity_user(sasl_identity_find(s->mech->name), resp, len, &user,
			       error_r) < 0)
		return SASL_FAIL;
	s->creds.authzid = xstrdup("");
	s->creds.authcid = user;
	s->creds.message = xstrndup((const char *)resp, len);
	return SASL_DONE;
}

/* The order is the order offered; a pass-through mechanism's bit in a
 * mask is its index. */
static const struct sasl_mech sasl_mechs[] = {
	{ "PLAIN", true, false, "", sasl_plain_step },
	{ "LOGIN", true, false, "Username:", sasl_login_step },
	{ "SCRAM-SHA-256", false, true, "", sasl_passthrough_step },
	{ "SCRAM-SHA-1", false, true, "", sasl_passthrough_step },
	{ "OAUTHBEARER", true, true, "", sasl_passthrough_step },
	{ "XOAUTH2", true, true, "", sasl_passthrough_step },
};

static bool sasl_mech_offered(size_t i, unsigned int passthrough)
{
	return !sasl_mechs[i].passthrough || (passthrough & (1u << i)) != 0;
}

static const struct sasl_mech *sasl_mech_lookup(const char *name, size_t *index_r)
{
	for (size_t i = 0; i < ARRAY_SIZE(sasl_mechs); i++) {
		if (strcasecmp(sasl_mechs[i].name, name) == 0) {
			*index_r = i;
			return &sasl_mechs[i];
		}
	}
	return NULL;
}

const struct sasl_mech *sasl_mech_find(const char *name, unsigned int passthrough)
{
	size_t i;
	const struct sasl_mech *mech = sasl_mech_lookup(name, &i);
	return mech != NULL && sasl_mech_offered(i, passthrough) ? mech : NULL;
}

int sasl_passthrough_mask(char *const *names, size_t count, unsigned int *mask_r,
			  const char **bad_r)
{
	*mask_r = 0;
	for (size_t n = 0; n < count; n++) {
		size_t i;
		const struct sasl_mech *mech = sasl_mech_lookup(names[n], &i);
		if (mech == NULL || !mech->passthrough) {
			*bad_r = names[n];
			return -1;
		}
		*mask_r |= 1u << i;
	}
	return 0;
}

const char *sasl_mech_name(const struct sasl_mech *mech)
{
	return mech->name;
}

bool sasl_mech_is_plaintext(const struct sasl_mech *mech)
{
	return mech->plaintext;
}

bool sasl_mech_is_passthrough(const struct sasl_mech *mech)
{
	return mech->passthrough;
}

size_t sasl_mechs_append(struct sbuf *out, const char *prefix, const char *suffix,
			 unsigned int passthrough, bool plaintext)
{
	size_t n = 0;
	for (size_t i = 0; i < ARRAY_SIZE(sasl_mechs); i++) {
		if (!sasl_mech_offered(i, passthrough) ||
		    (sasl_mechs[i].plaintext && !plaintext))
			continue;
		sbuf_appends(out, prefix);
		sbuf_appends(out, sasl_mechs[i].name);
		sbuf_appends(out, suffix);
		n++;
	}
	return n;
}

void sasl_server_init(struct sasl_server *s, const struct sasl_mech *mech)
{
	memset(s, 0, sizeof(*s));
	s->mech = mech;
}

void sasl_credentials_clear(struct sasl_credentials *creds)
{
	xfree_secret(&creds->password);
	xfree_secret(&creds->message);
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
