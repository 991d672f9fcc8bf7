/* Unit tests for src/proto/sasl_identity: the user of XOAUTH2,
 * OAUTHBEARER and SCRAM client-first messages, whole, every prefix of
 * them (nothing crashes; what is cut short names nobody where the
 * format ends in a terminator), and what must be refused. */
#include <setjmp.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <stdlib.h>
#include <string.h>

#include "proto/sasl_identity.h"

/* The user, or NULL when refused (len: strlen unless given). */
static char *user_of(const char *mech, const char *msg, size_t len)
{
	const struct sasl_identity_mech *m = sasl_identity_find(mech);
	assert_non_null(m);
	char *user;
	const char *error = NULL;
	if (sasl_identity_user(m, (const unsigned char *)msg, len, &user, &error) < 0) {
		assert_non_null(error);
		assert_null(user);
		return NULL;
	}
	assert_non_null(user);
	assert_true(user[0] != '\0');
	return user;
}

static void expect(const char *mech, const char *msg, const char *want)
{
	char *user = user_of(mech, msg, strlen(msg));
	if (want == NULL) {
		assert_null(user);
		return;
	}
	assert_non_null(user);
	assert_string_equal(user, want);
	free(user);
}

/* Every prefix parses without harm; with terminated, none but the whole
 * message names anyone. */
static void prefixes(const char *mech, const char *msg, bool terminated)
{
	size_t len = strlen(msg);
	for (size_t i = 0; i < len; i++) {
		char *user = user_of(mech, msg, i);
		if (terminated)
			assert_null(user);
		free(user);
	}
}

static void test_xoauth2(void **state)
{
	(void)state;
	static const char msg[] = "user=jane@example.org\001auth=Bearer ya29.abc\001\001";
	expect("XOAUTH2", msg, "jane@example.org");
	expect("xoauth2", "auth=Bearer t\001user=bob\001\001", "bob");
	prefixes("XOAUTH2", msg, true);
	expect("XOAUTH2", "user=jane\001\001", NULL);			/* no token */
	expect("XOAUTH2", "auth=Bearer t\001\001", NULL);		/* no user */
	expect("XOAUTH2", "user=\001auth=Bearer t\001\001", NULL);	/* empty user */
	expect("XOAUTH2", "user=jane\001auth=Bearer t\001", NULL);	/* unterminated */
	expect("XOAUTH2", "user=jane\001auth=Bearer t\001\001x", NULL);	/* trailing */
	expect("XOAUTH2", "=jane\001auth=Bearer t\001\001", NULL);	/* no key */
	expect("XOAUTH2", "us3r=jane\001auth=Bearer t\001\001", NULL);	/* key not ALPHA */
	/* a NUL anywhere */
	static const char nul[] = "user=ja\0ne\001auth=Bearer t\001\001";
	assert_null(user_of("XOAUTH2", nul, sizeof(nul) - 1));
}

static void test_oauthbearer(void **state)
{
	(void)state;
	static const char msg[] = "n,a=jane@example.org,\001host=imap.example.org\001"
				  "port=993\001auth=Bearer vF9dft4qmT\001\001";
	expect("OAUTHBEARER", msg, "jane@example.org");
	prefixes("OAUTHBEARER", msg, true);
	/* the authzid's escapes */
	expect("OAUTHBEARER", "n,a=a=2Cb=3Dc,\001auth=Bearer t\001\001", "a,b=c");
	expect("OAUTHBEARER", "y,a=jane,\001auth=Bearer t\001\001", "jane");
	/* nobody to route by, or not a first message */
	expect("OAUTHBEARER", "n,,\001auth=Bearer t\001\001", NULL);
	expect("OAUTHBEARER", "\001", NULL);
	/* channel binding, a bad escape, no token, no separator */
	expect("OAUTHBEARER", "p=tls-unique,a=jane,\001auth=Bearer t\001\001", NULL);
	expect("OAUTHBEARER", "n,a=ja=2Xne,\001auth=Bearer t\001\001", NULL);
	expect("OAUTHBEARER", "n,a=jane,\001host=x\001\001", NULL);
	expect("OAUTHBEARER", "n,a=jane,auth=Bearer t\001\001", NULL);
	expect("OAUTHBEARER", "n,u=jane,\001auth=Bearer t\001\001", NULL);
}

static void test_scram(void **state)
{
	(void)state;
	static const char msg[] = "n,,n=user,r=fyko+d2lbbFgONRv9qkxdawL";
	expect("SCRAM-SHA-1", msg, "user");
	expect("SCRAM-SHA-256", msg, "user");
	prefixes("SCRAM-SHA-256", msg, false);
	/* an authzid wins; escapes; extensions after the nonce */
	expect("SCRAM-SHA-256", "n,a=jane,n=admin,r=abc", "jane");
	expect("SCRAM-SHA-256", "y,,n=a=2Cb=3D,r=abc,x=ext", "a,b=");
	/* a mandatory extension, no nonce, an empty one, a bad name */
	expect("SCRAM-SHA-256", "n,,m=x,n=user,r=abc", NULL);
	expect("SCRAM-SHA-256", "n,,n=user", NULL);
	expect("SCRAM-SHA-256", "n,,n=user,r=", NULL);
	expect("SCRAM-SHA-256", "n,,n=us=er,r=abc", NULL);
	expect("SCRAM-SHA-256", "n,,n=,r=abc", NULL);
	expect("SCRAM-SHA-256", "n,,r=abc,n=user", NULL);
	expect("SCRAM-SHA-256", "p=tls-unique,,n=user,r=abc", NULL);
	expect("SCRAM-SHA-256", "n,,n=user,r=a b", NULL);
	expect("SCRAM-SHA-256", "n=user,r=abc", NULL);
	/* RFC 5802 allows control characters in a saslname; loft does not */
	expect("SCRAM-SHA-256", "n,,n=us\001er,r=abc", NULL);
	expect("SCRAM-SHA-256", "n,,n=us\ter,r=abc", NULL);
}

static void test_mechanisms(void **state)
{
	(void)state;
	assert_null(sasl_identity_find("PLAIN"));
	assert_null(sasl_identity_find("SCRAM-SHA-256-PLUS"));
	assert_string_equal(sasl_identity_name(sasl_identity_find("scram-sha-1")),
			    "SCRAM-SHA-1");
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_xoauth2),
		cmocka_unit_test(test_oauthbearer),
		cmocka_unit_test(test_scram),
		cmocka_unit_test(test_mechanisms),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
