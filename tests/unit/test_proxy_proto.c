/*
 * test_proxy_proto.c - the PROXY protocol header decoder (proxy_proto.h):
 * v1 lines and v2 headers as HAProxy writes them, incomplete input, and
 * what is not a header, following the specification's sections 2.1 and
 * 2.2 (haproxy.org/download/2.9/doc/proxy-protocol.txt).
 */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <string.h>

#include "broker/proxy_proto.h"

static enum proxy_result parse(const void *b, size_t n, int v, size_t *used, struct proxy_info *out)
{
	return proxy_parse(b, n, v, used, out);
}

static void test_v1_tcp4_and_tcp6(void **state)
{
	(void)state;
	struct proxy_info i;
	size_t used = 0;
	/* The header, then the first bytes of a CONNECT: only the header is
	 * taken. */
	const char *l = "PROXY TCP4 192.0.2.10 198.51.100.1 56324 1883\r\n";
	char buf[80];
	size_t n = strlen(l);
	memcpy(buf, l, n);
	memcpy(buf + n, "\x10\x0c", 2);
	assert_int_equal(parse(buf, n + 2, 1, &used, &i), PROXY_OK);
	assert_int_equal(used, n);
	assert_string_equal(i.peer, "192.0.2.10:56324");
	const char *l6 = "PROXY TCP6 2001:db8::1 2001:db8::2 4000 1883\r\n";
	assert_int_equal(parse(l6, strlen(l6), 1, &used, &i), PROXY_OK);
	assert_string_equal(i.peer, "[2001:db8::1]:4000");
	const char *u = "PROXY UNKNOWN ffff::1 whatever\r\n";
	assert_int_equal(parse(u, strlen(u), 1, &used, &i), PROXY_OK);
	assert_string_equal(i.peer, "");
}

static void test_v1_incomplete_and_bad(void **state)
{
	(void)state;
	struct proxy_info i;
	size_t used = 0;
	const char *l = "PROXY TCP4 192.0.2.10 198.51.100.1 56324 1883\r\n";
	for (size_t n = 1; n < strlen(l); n++)
		assert_int_equal(parse(l, n, 1, &used, &i), PROXY_INCOMPLETE);
	const char *bad[] = {
	        "\x10\x0c\x00\x04MQTT",                          /* MQTT, no header */
	        "PROXY TCP4 192.0.2.10 198.51.100.1 56324\r\n",  /* a word short */
	        "PROXY TCP4 192.0.2.300 198.51.100.1 1 2\r\n",   /* not an address */
	        "PROXY TCP4 192.0.2.1 198.51.100.1 65536 2\r\n", /* port range */
	        "PROXY TCP4 192.0.2.1 198.51.100.1 -1 2\r\n",
	        "PROXY TCP5 192.0.2.1 198.51.100.1 1 2\r\n",
	        "PROXY TCP4 192.0.2.1 198.51.100.1 1 2\n", /* no CR */
	};
	for (size_t k = 0; k < sizeof(bad) / sizeof(bad[0]); k++)
		assert_int_equal(parse(bad[k], strlen(bad[k]), 1, &used, &i), PROXY_BAD);
	/* No line end within 107 bytes. */
	char longl[200];
	memset(longl, 'x', sizeof(longl));
	memcpy(longl, "PROXY ", 6);
	assert_int_equal(parse(longl, sizeof(longl), 1, &used, &i), PROXY_BAD);
	/* A v2 header where v1 is configured, and the other way round. */
	const uint8_t v2[16] = {0x0D, 0x0A, 0x0D, 0x0A, 0x00, 0x0D, 0x0A, 0x51,
	                        0x55, 0x49, 0x54, 0x0A, 0x20, 0x00, 0x00, 0x00};
	assert_int_equal(parse(v2, sizeof(v2), 1, &used, &i), PROXY_BAD);
	assert_int_equal(parse(l, strlen(l), 2, &used, &i), PROXY_BAD);
}

/* A v2 PROXY header: TCP over IPv4, then TLVs. */
static size_t v2_ipv4(uint8_t *o, const uint8_t *tlv, size_t tlv_len)
{
	static const uint8_t sig[12] = {0x0D, 0x0A, 0x0D, 0x0A, 0x00, 0x0D,
	                                0x0A, 0x51, 0x55, 0x49, 0x54, 0x0A};
	memcpy(o, sig, 12);
	o[12] = 0x21; /* version 2, PROXY */
	o[13] = 0x11; /* AF_INET, STREAM */
	size_t body = 12 + tlv_len;
	o[14] = (uint8_t)(body >> 8);
	o[15] = (uint8_t)body;
	const uint8_t a[12] = {203, 0, 113, 7, 10, 0, 0, 1, 0xC3, 0x50, 0x07, 0x5B};
	memcpy(o + 16, a, 12);
	if (tlv_len)
		memcpy(o + 28, tlv, tlv_len);
	return 16 + body;
}

static void test_v2_address_tls_and_limits(void **state)
{
	(void)state;
	uint8_t h[128];
	struct proxy_info i;
	size_t used = 0;
	size_t n = v2_ipv4(h, NULL, 0);
	assert_int_equal(parse(h, n, 2, &used, &i), PROXY_OK);
	assert_int_equal(used, n);
	assert_string_equal(i.peer, "203.0.113.7:50000");
	assert_false(i.tls);
	for (size_t k = 1; k < n; k++)
		assert_int_equal(parse(h, k, 2, &used, &i), PROXY_INCOMPLETE);
	/* PP2_TYPE_SSL with PP2_CLIENT_SSL: the client came over TLS. */
	const uint8_t ssl[] = {0x20, 0x00, 0x05, 0x01, 0, 0, 0, 0};
	n = v2_ipv4(h, ssl, sizeof(ssl));
	assert_int_equal(parse(h, n, 2, &used, &i), PROXY_OK);
	assert_true(i.tls);
	/* A TLV running past the header. */
	const uint8_t over[] = {0x20, 0x00, 0x09, 0x01, 0, 0, 0, 0};
	n = v2_ipv4(h, over, sizeof(over));
	assert_int_equal(parse(h, n, 2, &used, &i), PROXY_BAD);
	/* LOCAL: the connection's own address stands. */
	n = v2_ipv4(h, NULL, 0);
	h[12] = 0x20;
	assert_int_equal(parse(h, n, 2, &used, &i), PROXY_OK);
	assert_string_equal(i.peer, "");
	/* Version 3, command 2, a body too short for IPv4, one too long. */
	n = v2_ipv4(h, NULL, 0);
	h[12] = 0x31;
	assert_int_equal(parse(h, n, 2, &used, &i), PROXY_BAD);
	h[12] = 0x22;
	assert_int_equal(parse(h, n, 2, &used, &i), PROXY_BAD);
	h[12] = 0x21;
	h[15] = 4;
	assert_int_equal(parse(h, n, 2, &used, &i), PROXY_BAD);
	h[14] = 0x10; /* 4100 bytes: over PROXY_V2_MAX_BODY */
	assert_int_equal(parse(h, n, 2, &used, &i), PROXY_BAD);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	        cmocka_unit_test(test_v1_tcp4_and_tcp6),
	        cmocka_unit_test(test_v1_incomplete_and_bad),
	        cmocka_unit_test(test_v2_address_tls_and_limits),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
