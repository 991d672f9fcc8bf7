/* Unit tests for src/ring/ring_peer_auth: the proofs of the links between
 * the nodes of a ring (doc/ring.md §14), against a MAC computed outside
 * loft (Python's hmac), and what must not pass. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <cmocka.h>

#include "ring/ring_peer_auth.h"

#define SECRET "0123456789abcdef"
#define NS "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa"
#define NC "bbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbb"
/* hmac.new(SECRET, "loft-ring-peer 1 client\n" NS "\n" NC "\nn1:9090",
 * sha256).hexdigest() */
#define CLIENT_MAC "3327168d3e6dda1f261f5f0f8b455626693356c68e4868e582f1fb9ceebfad99"

static void test_mac_matches_the_spec(void **state)
{
	(void)state;
	char mac[PEER_MAC_HEX + 1];
	peer_auth_mac(SECRET, PEER_ROLE_CLIENT, NS, NC, "n1:9090", mac);
	assert_string_equal(mac, CLIENT_MAC);
	assert_true(peer_auth_mac_ok(SECRET, PEER_ROLE_CLIENT, NS, NC, "n1:9090", CLIENT_MAC));
}

static void test_mac_binds_everything(void **state)
{
	(void)state;
	/* another role, name, nonce or secret: refused */
	assert_false(peer_auth_mac_ok(SECRET, PEER_ROLE_SERVER, NS, NC, "n1:9090", CLIENT_MAC));
	assert_false(peer_auth_mac_ok(SECRET, PEER_ROLE_CLIENT, NS, NC, "n2:9090", CLIENT_MAC));
	assert_false(peer_auth_mac_ok(SECRET, PEER_ROLE_CLIENT, NC, NS, "n1:9090", CLIENT_MAC));
	assert_false(peer_auth_mac_ok("0123456789abcdeF", PEER_ROLE_CLIENT, NS, NC, "n1:9090",
				      CLIENT_MAC));
	/* a prefix, an empty or an over-long MAC */
	char cut[PEER_MAC_HEX];
	memcpy(cut, CLIENT_MAC, PEER_MAC_HEX - 1);
	cut[PEER_MAC_HEX - 1] = '\0';
	assert_false(peer_auth_mac_ok(SECRET, PEER_ROLE_CLIENT, NS, NC, "n1:9090", cut));
	assert_false(peer_auth_mac_ok(SECRET, PEER_ROLE_CLIENT, NS, NC, "n1:9090", ""));
	assert_false(peer_auth_mac_ok(SECRET, PEER_ROLE_CLIENT, NS, NC, "n1:9090",
				      CLIENT_MAC "0"));
	assert_false(peer_auth_mac_ok(SECRET, PEER_ROLE_CLIENT, NS, NC, "n1:9090", "-"));
}

static void test_nonces_are_fresh_hex(void **state)
{
	(void)state;
	char a[PEER_NONCE_HEX + 1], b[PEER_NONCE_HEX + 1];
	assert_int_equal(peer_auth_nonce(a), 0);
	assert_int_equal(peer_auth_nonce(b), 0);
	assert_int_equal(strlen(a), PEER_NONCE_HEX);
	assert_int_equal(strspn(a, "0123456789abcdef"), PEER_NONCE_HEX);
	assert_string_not_equal(a, b);
}

static void test_tls_settings_that_cannot_work_say_why(void **state)
{
	(void)state;
	char *error = NULL;
	SSL_CTX *ctx = peer_auth_tls_ctx_new(true, "/nonexistent/cert.pem",
					     "/nonexistent/key.pem", "/nonexistent/ca.pem",
					     &error);
	assert_null(ctx);
	assert_non_null(strstr(error, "cannot read the CA file /nonexistent/ca.pem"));
	free(error);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_mac_matches_the_spec),
		cmocka_unit_test(test_mac_binds_everything),
		cmocka_unit_test(test_nonces_are_fresh_hex),
		cmocka_unit_test(test_tls_settings_that_cannot_work_say_why),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
