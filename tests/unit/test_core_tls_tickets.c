/* Unit tests for src/core/tls_tickets.c: real OpenSSL handshakes in
 * memory (a BIO pair) between a server context with loft's ticket keys
 * and a plain OpenSSL client, with the server's clock moved across
 * ticket periods: which tickets resume, and how many a handshake
 * issues. */
#include <setjmp.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <cmocka.h>

#include <openssl/evp.h>
#include <openssl/ssl.h>
#include <openssl/x509.h>

#include "core/tls_tickets.h"

#define LIFETIME 60

/* the server's clock: a period starts at every multiple of LIFETIME */
static time_t test_now;

static time_t test_clock(time_t *t)
{
	if (t != NULL)
		*t = test_now;
	return test_now;
}

/* the tickets the client received, and the last one */
static int tickets_received;
static SSL_SESSION *last_ticket;

static int test_new_session(SSL *ssl, SSL_SESSION *session)
{
	(void)ssl;
	tickets_received++;
	SSL_SESSION_free(last_ticket);
	last_ticket = session;
	return 1;	/* kept: freed with the next one */
}

/* A server context with a fresh self-signed P-256 certificate and loft's
 * tickets on test_clock. */
static SSL_CTX *server_ctx_new(void)
{
	EVP_PKEY *key = EVP_EC_gen("P-256");
	X509 *cert = X509_new();
	assert_non_null(key);
	assert_non_null(cert);
	ASN1_INTEGER_set(X509_get_serialNumber(cert), 1);
	X509_gmtime_adj(X509_getm_notBefore(cert), 0);
	X509_gmtime_adj(X509_getm_notAfter(cert), 3600);
	X509_NAME *name = X509_get_subject_name(cert);
	X509_NAME_add_entry_by_txt(name, "CN", MBSTRING_ASC,
				   (const unsigned char *)"loft.test", -1, -1, 0);
	X509_set_issuer_name(cert, name);
	X509_set_pubkey(cert, key);
	assert_true(X509_sign(cert, key, EVP_sha256()) > 0);

	SSL_CTX *ctx = SSL_CTX_new(TLS_server_method());
	assert_non_null(ctx);
	assert_int_equal(SSL_CTX_use_certificate(ctx, cert), 1);
	assert_int_equal(SSL_CTX_use_PrivateKey(ctx, key), 1);
	X509_free(cert);
	EVP_PKEY_free(key);
	char *error = NULL;
	assert_int_equal(tls_tickets_attach(ctx, NULL, LIFETIME, &error), 0);
	tls_tickets_set_clock(ctx, test_clock);
	return ctx;
}

static SSL_CTX *client_ctx_new(int version)
{
	SSL_CTX *ctx = SSL_CTX_new(TLS_client_method());
	assert_non_null(ctx);
	SSL_CTX_set_min_proto_version(ctx, version);
	SSL_CTX_set_max_proto_version(ctx, version);
	SSL_CTX_set_verify(ctx, SSL_VERIFY_NONE, NULL);
	SSL_CTX_set_session_cache_mode(ctx, SSL_SESS_CACHE_CLIENT |
				       SSL_SESS_CACHE_NO_INTERNAL_STORE);
	SSL_CTX_sess_set_new_cb(ctx, test_new_session);
	return ctx;
}

/* One connection, offering session if not NULL, until the client has read
 * the server's first data (and with it the tickets that come after a
 * TLS 1.3 handshake). Whether it resumed; tickets_received and
 * last_ticket say what the client got. */
static bool tls_connect(SSL_CTX *server_ctx, SSL_CTX *client_ctx, SSL_SESSION *session)
{
	SSL *server = SSL_new(server_ctx), *client = SSL_new(client_ctx);
	BIO *server_bio, *client_bio;
	assert_int_equal(BIO_new_bio_pair(&server_bio, 0, &client_bio, 0), 1);
	SSL_set_bio(server, server_bio, server_bio);
	SSL_set_bio(client, client_bio, client_bio);
	SSL_set_accept_state(server);
	SSL_set_connect_state(client);
	/* a copy: OpenSSL's client offers a TLS 1.3 session it has resumed
	 * no more, where other clients (and this test) offer it again */
	SSL_SESSION *offered = session != NULL ? SSL_SESSION_dup(session) : NULL;
	if (session != NULL) {
		assert_non_null(offered);
		assert_int_equal(SSL_set_session(client, offered), 1);
		SSL_SESSION_free(offered);
	}
	tickets_received = 0;

	bool server_done = false, client_done = false;
	for (int i = 0; i < 20 && !(server_done && client_done); i++) {
		if (!client_done)
			client_done = SSL_do_handshake(client) == 1;
		if (!server_done)
			server_done = SSL_do_handshake(server) == 1;
	}
	assert_true(server_done && client_done);
	assert_int_equal(SSL_write(server, "x", 1), 1);
	char c = 0;
	assert_int_equal(SSL_read(client, &c, 1), 1);
	bool reused = SSL_session_reused(client) == 1;
	assert_int_equal(SSL_session_reused(server), reused);
	/* a clean end: OpenSSL makes the session of a connection freed
	 * without one not resumable */
	SSL_set_shutdown(client, SSL_SENT_SHUTDOWN | SSL_RECEIVED_SHUTDOWN);
	SSL_set_shutdown(server, SSL_SENT_SHUTDOWN | SSL_RECEIVED_SHUTDOWN);
	SSL_free(client);
	SSL_free(server);
	return reused;
}

/* the ticket the client holds now, its own reference */
static SSL_SESSION *ticket_taken(void)
{
	assert_non_null(last_ticket);
	SSL_SESSION *s = last_ticket;
	SSL_SESSION_up_ref(s);
	return s;
}

static void test_tickets_resume_for_two_periods_only(void **state)
{
	(void)state;
	SSL_CTX *server = server_ctx_new();
	SSL_CTX *client = client_ctx_new(TLS1_3_VERSION);
	test_now = 1000 * LIFETIME + 5;		/* period 1000 */
	assert_false(tls_connect(server, client, NULL));
	SSL_SESSION *of_1000 = ticket_taken();
	assert_true(tls_connect(server, client, of_1000));

	/* period 1001: the keys are derived again; the previous period's
	 * ticket still resumes, and the new one the client got too */
	test_now += LIFETIME;
	assert_true(tls_connect(server, client, of_1000));
	assert_int_equal(tickets_received, 1);
	SSL_SESSION *of_1001 = ticket_taken();
	assert_true(tls_connect(server, client, of_1001));
	assert_true(tls_connect(server, client, of_1000));

	/* period 1002: a ticket of two periods ago no longer resumes, one of
	 * the period before does */
	test_now += LIFETIME;
	assert_false(tls_connect(server, client, of_1000));
	assert_true(tls_connect(server, client, of_1001));
	/* the last of period 1002 at once, then the first of 1003 */
	test_now += LIFETIME - 1 - test_now % LIFETIME;
	SSL_SESSION *of_1002 = ticket_taken();
	assert_true(tls_connect(server, client, of_1002));
	test_now++;
	assert_false(tls_connect(server, client, of_1001));
	assert_true(tls_connect(server, client, of_1002));

	/* a clock set back: the keys of the period it is in again */
	test_now -= 3 * LIFETIME;			/* period 1000 */
	assert_false(tls_connect(server, client, of_1002));
	assert_true(tls_connect(server, client, of_1000));

	SSL_SESSION_free(of_1000);
	SSL_SESSION_free(of_1001);
	SSL_SESSION_free(of_1002);
	SSL_SESSION_free(last_ticket);
	last_ticket = NULL;
	SSL_CTX_free(client);
	SSL_CTX_free(server);
}

/* A mail client reconnects with one ticket: a full TLS 1.3 handshake
 * issues one (OpenSSL's default is two), and so does a TLS 1.2 one. */
static void test_a_full_handshake_issues_one_ticket(void **state)
{
	(void)state;
	SSL_CTX *server = server_ctx_new();
	test_now = 1000 * LIFETIME;
	static const int versions[] = { TLS1_3_VERSION, TLS1_2_VERSION };
	for (size_t i = 0; i < sizeof(versions) / sizeof(versions[0]); i++) {
		SSL_CTX *client = client_ctx_new(versions[i]);
		assert_false(tls_connect(server, client, NULL));
		assert_int_equal(tickets_received, 1);
		SSL_SESSION *ticket = ticket_taken();
		assert_true(tls_connect(server, client, ticket));
		SSL_SESSION_free(ticket);
		SSL_CTX_free(client);
	}
	SSL_SESSION_free(last_ticket);
	last_ticket = NULL;
	SSL_CTX_free(server);
}

/* A TLS 1.3 resumption brings a new ticket: clients that use a ticket
 * once (RFC 8446 C.4) resume again with it. TLS 1.2 keeps its ticket
 * for the period. */
static void test_a_resumption_brings_a_new_tls13_ticket(void **state)
{
	(void)state;
	SSL_CTX *server = server_ctx_new();
	SSL_CTX *client = client_ctx_new(TLS1_3_VERSION);
	test_now = 1000 * LIFETIME;
	assert_false(tls_connect(server, client, NULL));
	SSL_SESSION *first = ticket_taken();
	for (int i = 0; i < 3; i++) {
		SSL_SESSION *used = ticket_taken();
		assert_true(tls_connect(server, client, used));
		assert_int_equal(tickets_received, 1);
		assert_ptr_not_equal(last_ticket, used);
		SSL_SESSION_free(used);
	}
	SSL_SESSION_free(first);
	SSL_CTX_free(client);

	client = client_ctx_new(TLS1_2_VERSION);
	assert_false(tls_connect(server, client, NULL));
	SSL_SESSION *ticket = ticket_taken();
	assert_true(SSL_SESSION_has_ticket(ticket));
	assert_true(tls_connect(server, client, ticket));
	assert_int_equal(tickets_received, 0);
	SSL_SESSION_free(ticket);
	SSL_SESSION_free(last_ticket);
	last_ticket = NULL;
	SSL_CTX_free(client);
	SSL_CTX_free(server);
}

/* Contexts of one process share its random secret (a reload's new one
 * resumes the old one's tickets), each with its own key cache. */
static void test_a_new_context_resumes_the_tickets_of_the_old(void **state)
{
	(void)state;
	SSL_CTX *old = server_ctx_new();
	SSL_CTX *client = client_ctx_new(TLS1_3_VERSION);
	test_now = 2000 * LIFETIME;
	assert_false(tls_connect(old, client, NULL));
	SSL_SESSION *ticket = ticket_taken();
	test_now += LIFETIME;
	SSL_CTX *reloaded = server_ctx_new();
	assert_true(tls_connect(reloaded, client, ticket));
	assert_true(tls_connect(old, client, ticket));
	SSL_SESSION_free(ticket);
	SSL_SESSION_free(last_ticket);
	last_ticket = NULL;
	SSL_CTX_free(client);
	SSL_CTX_free(old);
	SSL_CTX_free(reloaded);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_tickets_resume_for_two_periods_only),
		cmocka_unit_test(test_a_full_handshake_issues_one_ticket),
		cmocka_unit_test(test_a_resumption_brings_a_new_tls13_ticket),
		cmocka_unit_test(test_a_new_context_resumes_the_tickets_of_the_old),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
