/*
 * test_proxy_proto.c - the PROXY protocol header decoder (proxy_proto.h):
 * v1 lines and v2 headers as HAProxy writes them, incomplete input, and
 * what is not a header, following the specification's sections 2.1 and
 * 2.2 (haproxy.org/download/2.9/doc/proxy-protocol.txt), and the SSL TLV
 * of section 2.2.5 that a proxy ending the client's TLS sends (HAProxy's
 * send-proxy-v2-ssl-cn): the verdict on the client certificate and its CN.
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

/* A PP2_TYPE_SSL TLV into o: client, verify, then the sub-TLVs sub[0..n). */
static size_t ssl_tlv(uint8_t *o, uint8_t client, uint32_t verify, const uint8_t *sub, size_t n)
{
	size_t len = 5 + n;
	o[0] = 0x20;
	o[1] = (uint8_t)(len >> 8);
	o[2] = (uint8_t)len;
	o[3] = client;
	o[4] = (uint8_t)(verify >> 24);
	o[5] = (uint8_t)(verify >> 16);
	o[6] = (uint8_t)(verify >> 8);
	o[7] = (uint8_t)verify;
	if (n)
		memcpy(o + 8, sub, n);
	return 3 + len;
}

/* A sub-TLV (or TLV) of type t with value v[0..n) into o. */
static size_t sub_tlv(uint8_t *o, uint8_t t, const void *v, size_t n)
{
	o[0] = t;
	o[1] = (uint8_t)(n >> 8);
	o[2] = (uint8_t)n;
	memcpy(o + 3, v, n);
	return 3 + n;
}

/* Parses a v2 IPv4 header whose TLVs are the SSL TLV of client, verify and
 * the sub-TLVs VERSION "TLSv1.3" then CN cn[0..cn_len) (none when cn is
 * NULL). */
static enum proxy_result parse_ssl(uint8_t client, uint32_t verify, const void *cn, size_t cn_len,
                                   struct proxy_info *i)
{
	uint8_t sub[600], tlv[700], h[800];
	size_t n = sub_tlv(sub, 0x21, "TLSv1.3", 7);
	if (cn)
		n += sub_tlv(sub + n, 0x22, cn, cn_len);
	size_t t = ssl_tlv(tlv, client, verify, sub, n);
	size_t hn = v2_ipv4(h, tlv, t);
	size_t used = 0;
	enum proxy_result r = parse(h, hn, 2, &used, i);
	if (r == PROXY_OK)
		assert_int_equal(used, hn);
	return r;
}

static void test_v2_ssl_verified_certificate_and_cn(void **state)
{
	(void)state;
	struct proxy_info i;
	/* As HAProxy writes it for a client whose certificate it verified:
	 * SSL | CERT_CONN | CERT_SESS, verify 0, VERSION, CN. */
	assert_int_equal(parse_ssl(0x07, 0, "sensor-1", 8, &i), PROXY_OK);
	assert_true(i.tls);
	assert_true(i.cert_verified);
	assert_int_equal(i.verify, 0);
	assert_string_equal(i.cn, "sensor-1");
	assert_string_equal(i.peer, "203.0.113.7:50000");
	/* Either flag says a certificate was presented. */
	assert_int_equal(parse_ssl(0x03, 0, "a", 1, &i), PROXY_OK);
	assert_true(i.cert_verified);
	assert_int_equal(parse_ssl(0x05, 0, "a", 1, &i), PROXY_OK);
	assert_true(i.cert_verified);
	/* A CN in UTF-8 beyond ASCII is a name like any other. */
	assert_int_equal(parse_ssl(0x07, 0, "Jos\xc3\xa9", 5, &i), PROXY_OK);
	assert_string_equal(i.cn, "Jos\xc3\xa9");
	/* The longest CN taken, and other TLVs and sub-TLVs around it. */
	char longest[PROXY_CN_MAX];
	memset(longest, 'c', sizeof(longest));
	assert_int_equal(parse_ssl(0x07, 0, longest, sizeof(longest), &i), PROXY_OK);
	assert_int_equal(strlen(i.cn), PROXY_CN_MAX);
	uint8_t sub[64], tlvs[128], h[256];
	size_t n = sub_tlv(sub, 0x23, "TLS_AES_256_GCM_SHA384", 22);
	n += sub_tlv(sub + n, 0x22, "bob", 3);
	n += sub_tlv(sub + n, 0x25, "RSA2048", 7);
	size_t t = sub_tlv(tlvs, 0x01, "mqtt", 4); /* ALPN */
	t += ssl_tlv(tlvs + t, 0x07, 0, sub, n);
	t += sub_tlv(tlvs + t, 0x04, "\0\0\0", 3); /* NOOP */
	size_t hn = v2_ipv4(h, tlvs, t), used = 0;
	assert_int_equal(parse(h, hn, 2, &used, &i), PROXY_OK);
	assert_string_equal(i.cn, "bob");
	assert_true(i.cert_verified);
	for (size_t k = 1; k < hn; k++)
		assert_int_equal(parse(h, k, 2, &used, &i), PROXY_INCOMPLETE);
}

static void test_v2_ssl_without_a_verified_certificate(void **state)
{
	(void)state;
	struct proxy_info i;
	/* TLS, no certificate: HAProxy leaves verify 0 then. */
	assert_int_equal(parse_ssl(0x01, 0, NULL, 0, &i), PROXY_OK);
	assert_true(i.tls);
	assert_false(i.cert_verified);
	assert_string_equal(i.cn, "");
	/* A certificate that failed verification: its CN is read, but it is
	 * not verified. */
	assert_int_equal(parse_ssl(0x07, 20, "mallory", 7, &i), PROXY_OK);
	assert_false(i.cert_verified);
	assert_int_equal(i.verify, 20);
	assert_string_equal(i.cn, "mallory");
	/* The certificate flags without PP2_CLIENT_SSL say no TLS. */
	assert_int_equal(parse_ssl(0x06, 0, "x", 1, &i), PROXY_OK);
	assert_false(i.tls);
	assert_false(i.cert_verified);
	/* No SSL TLV at all, and a v1 line: nothing of TLS. */
	uint8_t h[64];
	size_t used = 0, hn = v2_ipv4(h, NULL, 0);
	assert_int_equal(parse(h, hn, 2, &used, &i), PROXY_OK);
	assert_false(i.tls);
	assert_false(i.cert_verified);
	assert_string_equal(i.cn, "");
	const char *l = "PROXY TCP4 192.0.2.10 198.51.100.1 56324 1883\r\n";
	assert_int_equal(parse(l, strlen(l), 1, &used, &i), PROXY_OK);
	assert_false(i.tls);
	assert_string_equal(i.cn, "");
	/* An empty CN names nobody. */
	assert_int_equal(parse_ssl(0x07, 0, "", 0, &i), PROXY_OK);
	assert_string_equal(i.cn, "");
}

static void test_v2_ssl_malformed_is_bad(void **state)
{
	(void)state;
	struct proxy_info i;
	/* A CN that is not a valid username: a NUL inside, ill-formed UTF-8,
	 * a surrogate, a control character; one too long. */
	assert_int_equal(parse_ssl(0x07, 0, "ali\0ce", 6, &i), PROXY_BAD);
	assert_int_equal(parse_ssl(0x07, 0, "\xc3\x28", 2, &i), PROXY_BAD);
	assert_int_equal(parse_ssl(0x07, 0, "\xed\xa0\x80", 3, &i), PROXY_BAD);
	assert_int_equal(parse_ssl(0x07, 0, "a\nb", 3, &i), PROXY_BAD);
	char toolong[PROXY_CN_MAX + 1];
	memset(toolong, 'c', sizeof(toolong));
	assert_int_equal(parse_ssl(0x07, 0, toolong, sizeof(toolong), &i), PROXY_BAD);
	/* The CN's length runs past the SSL TLV, though not past the
	 * header: an ALPN TLV follows, whose bytes it would take. */
	uint8_t sub[16], tlvs[64], h[128];
	size_t n = sub_tlv(sub, 0x22, "eve", 3);
	sub[2] = 9; /* 9 bytes claimed, 3 in the SSL TLV */
	size_t t = ssl_tlv(tlvs, 0x07, 0, sub, n);
	t += sub_tlv(tlvs + t, 0x01, "mqtt", 4);
	size_t used = 0, hn = v2_ipv4(h, tlvs, t);
	assert_int_equal(parse(h, hn, 2, &used, &i), PROXY_BAD);
	/* A sub-TLV cut short: 2 bytes left in the SSL TLV. */
	t = ssl_tlv(tlvs, 0x07, 0, (const uint8_t *)"\x22\x00", 2);
	hn = v2_ipv4(h, tlvs, t);
	assert_int_equal(parse(h, hn, 2, &used, &i), PROXY_BAD);
	/* An SSL TLV shorter than its client and verify fields. */
	const uint8_t short_ssl[] = {0x20, 0x00, 0x04, 0x07, 0, 0, 0};
	hn = v2_ipv4(h, short_ssl, sizeof(short_ssl));
	assert_int_equal(parse(h, hn, 2, &used, &i), PROXY_BAD);
	/* Two SSL TLVs, and two CNs in one: which would be the client? */
	t = ssl_tlv(tlvs, 0x07, 0, NULL, 0);
	t += ssl_tlv(tlvs + t, 0x07, 0, NULL, 0);
	hn = v2_ipv4(h, tlvs, t);
	assert_int_equal(parse(h, hn, 2, &used, &i), PROXY_BAD);
	n = sub_tlv(sub, 0x22, "a", 1);
	n += sub_tlv(sub + n, 0x22, "b", 1);
	t = ssl_tlv(tlvs, 0x07, 0, sub, n);
	hn = v2_ipv4(h, tlvs, t);
	assert_int_equal(parse(h, hn, 2, &used, &i), PROXY_BAD);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	        cmocka_unit_test(test_v1_tcp4_and_tcp6),
	        cmocka_unit_test(test_v1_incomplete_and_bad),
	        cmocka_unit_test(test_v2_address_tls_and_limits),
	        cmocka_unit_test(test_v2_ssl_verified_certificate_and_cn),
	        cmocka_unit_test(test_v2_ssl_without_a_verified_certificate),
	        cmocka_unit_test(test_v2_ssl_malformed_is_bad),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
