/* Unit tests for the PROXY protocol header parser: v1 and v2, every
 * header also fed as each of its prefixes (always "more") and followed by
 * the client's own bytes (never consumed), and the malformed ones. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <cmocka.h>

#include "proto/proxy_protocol.h"

static const unsigned char v2_tcp4[] = {
	'\r', '\n', '\r', '\n', 0, '\r', '\n', 'Q', 'U', 'I', 'T', '\n',
	0x21, 0x11, 0x00, 0x0c,
	192, 0, 2, 7,  10, 0, 0, 1,  0xc3, 0x50,  0x00, 0x8f,
};

static const unsigned char v2_tcp6_tlv[] = {
	'\r', '\n', '\r', '\n', 0, '\r', '\n', 'Q', 'U', 'I', 'T', '\n',
	0x21, 0x21, 0x00, 0x2a,
	0x20, 0x01, 0x0d, 0xb8, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0x07,
	0x20, 0x01, 0x0d, 0xb8, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0x01,
	0x12, 0x34,  0x00, 0x6e,
	0x04, 0x00, 0x03, 'a', 'b', 'c',	/* a TLV, ignored */
};

static const unsigned char v2_local[] = {
	'\r', '\n', '\r', '\n', 0, '\r', '\n', 'Q', 'U', 'I', 'T', '\n',
	0x20, 0x00, 0x00, 0x00,
};

struct good {
	const unsigned char *data;
	size_t len;
	bool addresses;
	const char *src, *dst;
	uint16_t sport, dport;
};

/* Whole, then every prefix, then with the client's bytes behind it. */
static void expect_good(const struct good *g)
{
	struct proxy_protocol_header h;
	size_t hlen;
	const char *error = NULL;
	char ip[IPADDR_STRLEN];

	for (size_t n = 0; n < g->len; n++) {
		if (proxy_protocol_parse(g->data, n, &h, &hlen, &error) != PARSE_MORE)
			fail_msg("a prefix of %zu bytes was not 'more' (%s)", n, error);
	}
	unsigned char buf[700];
	memcpy(buf, g->data, g->len);
	memcpy(buf + g->len, "a1 LOGIN x y\r\n", 14);
	for (size_t extra = 0; extra <= 14; extra += 14) {
		assert_int_equal(proxy_protocol_parse(buf, g->len + extra, &h, &hlen, &error),
				 PARSE_OK);
		assert_int_equal(hlen, g->len);
		assert_int_equal(h.have_addresses, g->addresses);
		if (!g->addresses)
			continue;
		assert_string_equal(ipaddr_to_str(&h.src_ip, ip), g->src);
		assert_string_equal(ipaddr_to_str(&h.dst_ip, ip), g->dst);
		assert_int_equal(h.src_port, g->sport);
		assert_int_equal(h.dst_port, g->dport);
	}
}

#define TEXT(s) (const unsigned char *)(s), sizeof(s) - 1

static void test_good_headers(void **state)
{
	(void)state;
	const struct good cases[] = {
		{ TEXT("PROXY TCP4 192.0.2.7 10.0.0.1 50000 143\r\n"), true,
		  "192.0.2.7", "10.0.0.1", 50000, 143 },
		{ TEXT("PROXY TCP6 2001:db8::7 2001:db8::1 4660 110\r\n"), true,
		  "2001:db8::7", "2001:db8::1", 4660, 110 },
		{ TEXT("PROXY UNKNOWN\r\n"), false, NULL, NULL, 0, 0 },
		{ TEXT("PROXY UNKNOWN ffff:f...f:ffff ffff:f...f:ffff 65535 65535\r\n"),
		  false, NULL, NULL, 0, 0 },
		{ v2_tcp4, sizeof(v2_tcp4), true, "192.0.2.7", "10.0.0.1", 50000, 143 },
		{ v2_tcp6_tlv, sizeof(v2_tcp6_tlv), true, "2001:db8::7", "2001:db8::1",
		  4660, 110 },
		{ v2_local, sizeof(v2_local), false, NULL, NULL, 0, 0 },
	};
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++)
		expect_good(&cases[i]);
}

static void expect_error(const unsigned char *data, size_t len, const char *error)
{
	struct proxy_protocol_header h;
	size_t hlen;
	const char *got = NULL;
	if (proxy_protocol_parse(data, len, &h, &hlen, &got) != PARSE_ERROR)
		fail_msg("accepted: %.*s", (int)len, data);
	assert_string_equal(got, error);
}

static void test_bad_headers(void **state)
{
	(void)state;
	expect_error(TEXT("a1 LOGIN x y\r\n"), "not a PROXY protocol header");
	expect_error(TEXT("PROXX TCP4"), "not a PROXY protocol header");
	expect_error(TEXT("\r\n\r\n\0\r\nQUIX\n"), "not a PROXY protocol header");
	expect_error(TEXT("PROXY TCP4 192.0.2.7 10.0.0.1 50000 143\n"),
		     "PROXY v1 line does not end in CRLF");
	expect_error(TEXT("PROXY TCP4 192.0.2.7 10.0.0.1 50000\r\n"), "invalid PROXY v1 line");
	expect_error(TEXT("PROXY TCP4 192.0.2.7 10.0.0.1 50000 143 9\r\n"),
		     "invalid PROXY v1 line");
	expect_error(TEXT("PROXY TCP4 2001:db8::7 10.0.0.1 50000 143\r\n"),
		     "invalid PROXY v1 line");
	expect_error(TEXT("PROXY TCP6 192.0.2.7 10.0.0.1 50000 143\r\n"),
		     "invalid PROXY v1 line");
	expect_error(TEXT("PROXY TCP4 192.0.2.7 10.0.0.1 70000 143\r\n"),
		     "invalid PROXY v1 line");
	expect_error(TEXT("PROXY TCP4 192.0.2.7 10.0.0.1 +5 143\r\n"), "invalid PROXY v1 line");
	expect_error(TEXT("PROXY UDP4 192.0.2.7 10.0.0.1 5 143\r\n"), "invalid PROXY v1 line");
	char longline[200];
	memset(longline, 'x', sizeof(longline));
	memcpy(longline, "PROXY TCP4 ", 11);
	expect_error((const unsigned char *)longline, sizeof(longline),
		     "PROXY v1 line too long");

	unsigned char v2[sizeof(v2_tcp4)];
	memcpy(v2, v2_tcp4, sizeof(v2));
	v2[12] = 0x31;
	expect_error(v2, sizeof(v2), "unsupported PROXY protocol version");
	v2[12] = 0x22;
	expect_error(v2, sizeof(v2), "invalid PROXY v2 command");
	v2[12] = 0x21;
	v2[15] = 0x08;	/* says 8 bytes: too few for two IPv4 addresses and ports */
	expect_error(v2, sizeof(v2), "PROXY v2 addresses cut short");
	v2[14] = 0x10;	/* 4 KiB of TLVs */
	expect_error(v2, sizeof(v2), "PROXY v2 header too long");
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_good_headers),
		cmocka_unit_test(test_bad_headers),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
