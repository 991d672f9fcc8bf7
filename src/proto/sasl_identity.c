/* The user of a pass-through SASL exchange (sasl_identity.h), one parser
 * per message format, picked from a table by mechanism name. */
#include "proto/sasl_identity.h"

#include <stdbool.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "common/macros.h"
#include "common/xmalloc.h"

typedef int sasl_identity_fn(const unsigned char *msg, size_t len, char **user_r,
			     const char **error_r);

struct sasl_identity_mech {
	const char *name;
	sasl_identity_fn *parse;
};

/* A span of the message. */
struct span {
	const unsigned char *p;
	size_t len;
};

static bool span_starts(struct span s, const char *prefix)
{
	size_t n = strlen(prefix);
	return s.len >= n && memcmp(s.p, prefix, n) == 0;
}

/* Up to the next sep (not included) and past it; false when none. */
static bool span_next(struct span *rest, unsigned char sep, struct span *field_r)
{
	const unsigned char *end = memchr(rest->p, sep, rest->len);
	if (end == NULL)
		return false;
	field_r->p = rest->p;
	field_r->len = (size_t)(end - rest->p);
	rest->len -= field_r->len + 1;
	rest->p = end + 1;
	return true;
}

/* RFC 5802 §7 saslname ("=2C" for ",", "=3D" for "="; no other "=",
 * no ","), decoded. NULL when it is not one, or empty. */
static char *saslname_decode(struct span s)
{
	char *out = xmalloc(s.len + 1);
	size_t n = 0;
	for (size_t i = 0; i < s.len; i++) {
		if (s.p[i] == ',')
			goto bad;
		if (s.p[i] != '=') {
			out[n++] = (char)s.p[i];
		} else if (i + 2 < s.len && s.p[i + 1] == '2' &&
			   (s.p[i + 2] == 'C' || s.p[i + 2] == 'c')) {
			out[n++] = ',';
			i += 2;
		} else if (i + 2 < s.len && s.p[i + 1] == '3' &&
			   (s.p[i + 2] == 'D' || s.p[i + 2] == 'd')) {
			out[n++] = '=';
			i += 2;
		} else {
			goto bad;
		}
	}
	if (n == 0)
		goto bad;
	out[n] = '\0';
	return out;
bad:
	free(out);
	return NULL;
}

/* RFC 5802 / RFC 7628 gs2-header: cbind-flag "," [ "a=" saslname ] ",";
 * *authzid_r NULL when none. "p=" (channel binding) is refused: loft
 * offers no SCRAM-*-PLUS, and OAUTHBEARER has none. */
static int gs2_header(struct span *rest, char **authzid_r, const char **error_r)
{
	struct span flag, authzid;
	*authzid_r = NULL;
	if (!span_next(rest, ',', &flag) || !span_next(rest, ',', &authzid)) {
		*error_r = "no GS2 header";
		return -1;
	}
	if (flag.len != 1 || (flag.p[0] != 'n' && flag.p[0] != 'y')) {
		*error_r = "channel binding is not offered";
		return -1;
	}
	if (authzid.len == 0)
		return 0;
	if (!span_starts(authzid, "a=")) {
		*error_r = "invalid GS2 authzid";
		return -1;
	}
	authzid.p += 2;
	authzid.len -= 2;
	if ((*authzid_r = saslname_decode(authzid)) == NULL) {
		*error_r = "invalid GS2 authzid";
		return -1;
	}
	return 0;
}

/* RFC 7628 §3.1 kvpairs up to the final kvsep: key=value pairs, keys
 * ALPHA only, values VCHAR / SP / HTAB / CR / LF; "auth" must be one. */
static int oauth_kvpairs(struct span rest, const char *user_key, char **user_r,
			 const char **error_r)
{
	struct span kv;
	bool auth = false;
	while (rest.len > 0 && rest.p[0] != 0x01) {
		if (!span_next(&rest, 0x01, &kv)) {
			*error_r = "unterminated key-value pair";
			return -1;
		}
		const unsigned char *eq = memchr(kv.p, '=', kv.len);
		size_t klen = eq == NULL ? 0 : (size_t)(eq - kv.p);
		if (klen == 0) {
			*error_r = "invalid key-value pair";
			return -1;
		}
		for (size_t i = 0; i < kv.len; i++) {
			unsigned char c = kv.p[i];
			bool ok = i < klen ? ((c | 0x20) >= 'a' && (c | 0x20) <= 'z') :
				(c >= 0x20 && c < 0x7f) || c == '\t' || c == '\r' || c == '\n';
			if (!ok) {
				*error_r = "invalid key-value pair";
				return -1;
			}
		}
		if (klen == 4 && memcmp(kv.p, "auth", 4) == 0)
			auth = true;
		if (user_key != NULL && klen == strlen(user_key) &&
		    memcmp(kv.p, user_key, klen) == 0 && kv.len > klen + 1) {
			free(*user_r);
			*user_r = xstrndup((const char *)eq + 1, kv.len - klen - 1);
		}
	}
	if (rest.len != 1) {
		*error_r = "no final separator";
		return -1;
	}
	if (!auth) {
		*error_r = "no auth= token";
		return -1;
	}
	return 0;
}

/* Google's XOAUTH2: "user=" user ^A "auth=Bearer " token ^A ^A, with the
 * pairs in any order. */
static int xoauth2_user(const unsigned char *msg, size_t len, char **user_r,
			const char **error_r)
{
	struct span rest = { msg, len };
	*user_r = NULL;
	if (oauth_kvpairs(rest, "user", user_r, error_r) < 0) {
		free(*user_r);
		*user_r = NULL;
		return -1;
	}
	if (*user_r == NULL) {
		*error_r = "no user=";
		return -1;
	}
	return 0;
}

/* RFC 7628: gs2-header ^A kvpairs ^A; the user is the GS2 authzid. (A
 * lone ^A answers an error challenge: no first message.) */
static int oauthbearer_user(const unsigned char *msg, size_t len, char **user_r,
			    const char **error_r)
{
	struct span rest = { msg, len };
	char *authzid;
	if (gs2_header(&rest, &authzid, error_r) < 0)
		return -1;
	if (rest.len == 0 || rest.p[0] != 0x01) {
		*error_r = "no separator after the GS2 header";
		free(authzid);
		return -1;
	}
	rest.p++;
	rest.len--;
	char *none = NULL;	/* (no key is the user here) */
	if (oauth_kvpairs(rest, NULL, &none, error_r) < 0) {
		free(authzid);
		return -1;
	}
	if (authzid == NULL) {
		*error_r = "no user (GS2 authzid) to route by";
		return -1;
	}
	*user_r = authzid;
	return 0;
}

/* RFC 5802 §7 client-first-message: gs2-header "n=" saslname ",r="
 * nonce ["," extensions]; "m=" first is a mandatory extension nobody
 * knows, which must fail. */
static int scram_user(const unsigned char *msg, size_t len, char **user_r,
		      const char **error_r)
{
	struct span rest = { msg, len }, name, nonce;
	char *authzid;
	if (gs2_header(&rest, &authzid, error_r) < 0)
		return -1;
	if (!span_next(&rest, ',', &name)) {
		*error_r = "no nonce";
		free(authzid);
		return -1;
	}
	/* the nonce runs to the next "," or the end */
	if (!span_next(&rest, ',', &nonce)) {
		nonce = rest;
		rest.len = 0;
	}
	char *user = NULL;
	if (!span_starts(name, "n=") || !span_starts(nonce, "r=") || nonce.len == 2) {
		*error_r = span_starts(name, "m=") ? "unknown mandatory extension" :
			"no username and nonce";
	} else {
		name.p += 2;
		name.len -= 2;
		if ((user = saslname_decode(name)) == NULL)
			*error_r = "invalid username";
	}
	for (size_t i = 0; user != NULL && i < nonce.len; i++) {
		/* printable but ",": RFC 5802 c-nonce */
		if (nonce.p[i] < 0x21 || nonce.p[i] > 0x7e) {
			*error_r = "invalid nonce";
			free(user);
			user = NULL;
		}
	}
	if (user == NULL) {
		free(authzid);
		return -1;
	}
	if (authzid != NULL) {
		free(user);
		user = authzid;
	}
	*user_r = user;
	return 0;
}

static const struct sasl_identity_mech sasl_identity_mechs[] = {
	{ "XOAUTH2", xoauth2_user },
	{ "OAUTHBEARER", oauthbearer_user },
	{ "SCRAM-SHA-1", scram_user },
	{ "SCRAM-SHA-256", scram_user },
};

const struct sasl_identity_mech *sasl_identity_find(const char *name)
{
	for (size_t i = 0; i < ARRAY_SIZE(sasl_identity_mechs); i++) {
		if (strcasecmp(sasl_identity_mechs[i].name, name) == 0)
			return &sasl_identity_mechs[i];
	}
	return NULL;
}

const char *sasl_identity_name(const struct sasl_identity_mech *mech)
{
	return mech->name;
}

int sasl_identity_user(const struct sasl_identity_mech *mech, const unsigned char *msg,
		       size_t len, char **user_r, const char **error_r)
{
	*user_r = NULL;
	if (memchr(msg, '\0', len) != NULL) {
		*error_r = "a NUL byte";
		return -1;
	}
	if (mech->parse(msg, len, user_r, error_r) < 0)
		return -1;
	/* the formats allow them (SCRAM's saslname: any but NUL): no user
	 * name that is routed, logged and listed needs one */
	for (const unsigned char *p = (const unsigned char *)*user_r; *p != '\0'; p++) {
		if (*p < 0x20 || *p == 0x7f) {
			*error_r = "a control character in the user name";
			free(*user_r);
			*user_r = NULL;
			return -1;
		}
	}
	return 0;
}
