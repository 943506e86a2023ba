/*
 * test_codec_reject.c - every rejection the decoder (and the encoder)
 * promises, one test per rule, each naming the normative statement it
 * checks. Packets are written as the first byte and the body; the remaining
 * length is computed by the helper so the vectors stay readable.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <cmocka.h>

#include "tern/codec.h"

#define B(str) ((struct tern_bytes){(const uint8_t *)(str), sizeof(str) - 1})

/* Decodes first byte b0 followed by body[0..n) (remaining length added
 * here) for version and returns the result; the decoded packet goes to
 * *out when it is not NULL. */
static enum tern_err decode_body(uint8_t version, uint8_t b0, const uint8_t *body, size_t n,
                                 struct tern_packet *out)
{
	static uint8_t buf[1024];
	struct tern_packet tmp;
	size_t len = 0;
	assert_true(n < 16384);
	buf[len++] = b0;
	if (n < 128) {
		buf[len++] = (uint8_t)n;
	} else {
		buf[len++] = (uint8_t)(0x80 | (n & 0x7F));
		buf[len++] = (uint8_t)(n >> 7);
	}
	memcpy(buf + len, body, n);
	len += n;
	struct tern_fixed_header fh;
	enum tern_err e = tern_decode_fixed_header_v(buf, len, 0, version, &fh);
	if (e != TERN_OK)
		return e;
	assert_int_equal(fh.header_len + fh.remaining, len);
	return tern_decode_packet(&fh, buf + fh.header_len, version, out != NULL ? out : &tmp);
}

static void expect_at(int line, uint8_t version, uint8_t b0, const uint8_t *body, size_t n,
                      enum tern_err want)
{
	enum tern_err got = decode_body(version, b0, body, n, NULL);
	if (got != want)
		fail_msg("line %d: got %s (%d), want %s (%d)", line, tern_strerror(got), got,
		         tern_strerror(want), want);
}

/* EXPECT(version, first byte, wanted error, body bytes...) */
#define EXPECT(ver, b0, want, ...)                                                                 \
	do {                                                                                       \
		static const uint8_t body_[] = {__VA_ARGS__};                                      \
		expect_at(__LINE__, ver, b0, body_, sizeof(body_), want);                          \
	} while (0)

/* A CONNECT variable header: protocol name, level, flags, keep alive. */
#define VH311(flags) 0x00, 0x04, 'M', 'Q', 'T', 'T', 0x04, (flags), 0x00, 0x3C
#define VH31(flags)  0x00, 0x06, 'M', 'Q', 'I', 's', 'd', 'p', 0x03, (flags), 0x00, 0x3C
#define VH5(flags)   0x00, 0x04, 'M', 'Q', 'T', 'T', 0x05, (flags), 0x00, 0x3C
#define CID          0x00, 0x01, 'c'

/* ---- CONNECT ---- */

static void test_connect_valid_baselines(void **state)
{
	(void)state;
	EXPECT(0, 0x10, TERN_OK, VH311(0x02), CID);
	EXPECT(0, 0x10, TERN_OK, VH31(0x02), CID);
	EXPECT(0, 0x10, TERN_OK, VH5(0x02), 0x00, CID);
}

static void test_connect_unknown_protocol_is_unsupported_version_MQTT_3_1_2_2(void **state)
{
	(void)state;
	struct tern_packet p;
	static const uint8_t level6[] = {0x00, 0x04, 'M', 'Q', 'T', 'T', 0x06, 0x02, 0x00, 0x3C};
	assert_int_equal(decode_body(0, 0x10, level6, sizeof(level6), &p),
	                 TERN_E_UNSUPPORTED_VERSION);
	assert_int_equal(p.u.connect.version, 6);
	/* The name and level must agree. */
	static const uint8_t mqtt3[] = {0x00, 0x04, 'M', 'Q', 'T', 'T', 0x03, 0x02, 0x00, 0x3C};
	assert_int_equal(decode_body(0, 0x10, mqtt3, sizeof(mqtt3), &p),
	                 TERN_E_UNSUPPORTED_VERSION);
	assert_int_equal(p.u.connect.version, 3);
	static const uint8_t isdp4[] = {0x00, 0x06, 'M',  'Q',  'I',  's',
	                                'd',  'p',  0x04, 0x02, 0x00, 0x3C};
	assert_int_equal(decode_body(0, 0x10, isdp4, sizeof(isdp4), &p),
	                 TERN_E_UNSUPPORTED_VERSION);
	assert_int_equal(p.u.connect.version, 4);
	/* [MQTT-3.1.2-1]: another protocol name. */
	static const uint8_t other[] = {0x00, 0x04, 'H', 'T', 'T', 'P', 0x04, 0x02, 0x00, 0x3C};
	assert_int_equal(decode_body(0, 0x10, other, sizeof(other), &p),
	                 TERN_E_UNSUPPORTED_VERSION);
	assert_int_equal(p.u.connect.version, 4);
	/* Too short to hold a level: malformed, version 0. */
	static const uint8_t cut[] = {0x00, 0x04, 'M', 'Q', 'T'};
	assert_int_equal(decode_body(0, 0x10, cut, sizeof(cut), &p), TERN_E_MALFORMED);
	assert_int_equal(p.u.connect.version, 0);
}

static void test_connect_reserved_flag_is_malformed_MQTT_3_1_2_3(void **state)
{
	(void)state;
	EXPECT(0, 0x10, TERN_E_MALFORMED, VH311(0x03), CID);
	EXPECT(0, 0x10, TERN_E_MALFORMED, VH5(0x03), 0x00, CID);
}

/* The reserved bit and the fixed-header flags are 3.1.1's rules: MQTT 3.1
 * left them unused, and mosquitto accepts old 3.1 clients that set them. */
static void test_connect_v31_reserved_and_fixed_flags_are_accepted(void **state)
{
	(void)state;
	EXPECT(0, 0x10, TERN_OK, VH31(0x03), CID);
	EXPECT(0, 0x14, TERN_OK, VH31(0x02), CID); /* "QoS 1" on CONNECT */
	EXPECT(0, 0x1F, TERN_OK, VH31(0x02), CID);
	/* [MQTT-2.2.2-2]: the same flags on a 3.1.1 or 5.0 CONNECT. */
	EXPECT(0, 0x14, TERN_E_MALFORMED, VH311(0x02), CID);
	EXPECT(0, 0x11, TERN_E_MALFORMED, VH5(0x02), 0x00, CID);
}

/* A re-sent 3.1 PUBREL carries DUP (3.1 gives it QoS 1 and DUP bits);
 * 3.1.1 fixes its flags to 0010 [MQTT-3.6.1-1]. */
static void test_pubrel_dup_is_accepted_for_v31_only(void **state)
{
	(void)state;
	EXPECT(TERN_V31, 0x6A, TERN_OK, 0x00, 0x07);
	EXPECT(TERN_V31, 0x62, TERN_OK, 0x00, 0x07);
	EXPECT(TERN_V31, 0x8A, TERN_OK, 0x00, 0x07, 0x00, 0x01, 'a', 0x00); /* SUBSCRIBE */
	EXPECT(TERN_V31, 0x40, TERN_OK, 0x00, 0x07);
	EXPECT(TERN_V31, 0x60, TERN_E_MALFORMED, 0x00, 0x07); /* QoS 0 PUBREL */
	EXPECT(TERN_V311, 0x6A, TERN_E_MALFORMED, 0x00, 0x07);
	EXPECT(TERN_V5, 0x6A, TERN_E_MALFORMED, 0x00, 0x07);
}

/* Control characters U+0001..U+001F and U+007F..U+009F in a client id,
 * username, will topic, topic name or filter make the packet malformed:
 * 3.1.1 section 1.5.3 and 5.0 section 1.5.4 let a receiver treat them so
 * (MAY), and mosquitto does. Passwords and payloads are binary; reason
 * strings and user properties are data and may hold them. */
static void test_control_characters_in_names_are_malformed(void **state)
{
	(void)state;
	/* Client id "a\x01", "a\x1F", "a\x7F", "a" U+009F (C2 9F). */
	EXPECT(0, 0x10, TERN_E_MALFORMED, VH311(0x02), 0x00, 0x02, 'a', 0x01);
	EXPECT(0, 0x10, TERN_E_MALFORMED, VH311(0x02), 0x00, 0x02, 'a', 0x1F);
	EXPECT(0, 0x10, TERN_E_MALFORMED, VH311(0x02), 0x00, 0x02, 'a', 0x7F);
	EXPECT(0, 0x10, TERN_E_MALFORMED, VH311(0x02), 0x00, 0x03, 'a', 0xC2, 0x9F);
	EXPECT(0, 0x10, TERN_E_MALFORMED, VH5(0x02), 0x00, 0x00, 0x02, 'a', 0x01);
	EXPECT(0, 0x10, TERN_E_MALFORMED, VH31(0x02), 0x00, 0x02, 'a', 0x09);
	/* U+00A0 (C2 A0) and U+0080 neighbours outside the ranges are fine. */
	EXPECT(0, 0x10, TERN_OK, VH311(0x02), 0x00, 0x03, 'a', 0xC2, 0xA0);
	EXPECT(0, 0x10, TERN_OK, VH311(0x02), 0x00, 0x02, 'a', 0x7E);
	/* Username. */
	EXPECT(0, 0x10, TERN_E_MALFORMED, VH311(0x82), CID, 0x00, 0x02, 'u', 0x01);
	EXPECT(0, 0x10, TERN_OK, VH311(0x82), CID, 0x00, 0x02, 'u', 'v');
	/* Will topic, and a will payload and password that hold 0x01. */
	EXPECT(0, 0x10, TERN_E_MALFORMED, VH311(0x06), CID, 0x00, 0x02, 't', 0x01, 0x00, 0x00);
	EXPECT(0, 0x10, TERN_OK, VH311(0xC6), CID, 0x00, 0x01, 't', 0x00, 0x01, 0x01, 0x00, 0x01,
	       'u', 0x00, 0x01, 0x01);
	/* PUBLISH topic, v3 and v5. */
	EXPECT(TERN_V311, 0x30, TERN_E_MALFORMED, 0x00, 0x02, 't', 0x1F, 'x');
	EXPECT(TERN_V5, 0x30, TERN_E_MALFORMED, 0x00, 0x03, 't', 0xC2, 0x80, 0x00, 'x');
	EXPECT(TERN_V311, 0x30, TERN_OK, 0x00, 0x02, 't', 'u', 0x01);
	/* SUBSCRIBE and UNSUBSCRIBE filters. */
	EXPECT(TERN_V311, 0x82, TERN_E_MALFORMED, 0x00, 0x01, 0x00, 0x02, 't', 0x7F, 0x00);
	EXPECT(TERN_V5, 0x82, TERN_E_MALFORMED, 0x00, 0x01, 0x00, 0x00, 0x02, 't', 0x01, 0x00);
	EXPECT(TERN_V311, 0xA2, TERN_E_MALFORMED, 0x00, 0x01, 0x00, 0x02, 't', 0x01);
	/* A user property value with a control character is data. */
	EXPECT(TERN_V5, 0x30, TERN_OK, 0x00, 0x01, 't', 0x07, 0x26, 0x00, 0x01, 'k', 0x00, 0x01,
	       0x01);
}

/* The checks that encoders, the store loader and the ACL use agree with the
 * decoder, so libtern never sends what ternd refuses. */
static void test_control_characters_refused_by_checks_and_encoder(void **state)
{
	(void)state;
	assert_false(tern_utf8_name_valid((const uint8_t *)"a\x01", 2));
	assert_false(tern_utf8_name_valid((const uint8_t *)"a\xC2\x85", 3));
	assert_true(tern_utf8_name_valid((const uint8_t *)"a\xC2\xA0", 3));
	assert_true(tern_utf8_valid((const uint8_t *)"a\x01", 2));
	assert_int_equal(tern_topic_name_check((const uint8_t *)"a\x1F", 2), TERN_E_TOPIC_NAME);
	assert_int_equal(tern_topic_filter_check((const uint8_t *)"a/\x7F", 3),
	                 TERN_E_TOPIC_FILTER);
	assert_int_equal(tern_topic_filter_check((const uint8_t *)"$share/g\x01/a", 11),
	                 TERN_E_TOPIC_FILTER);
	uint8_t out[64];
	size_t n;
	struct tern_packet p = {.type = TERN_CONNECT};
	p.u.connect.client_id = B("c\x02");
	assert_int_equal(tern_encode_packet(&p, TERN_V311, out, sizeof(out), &n), TERN_E_INVALID);
	struct tern_packet q = {.type = TERN_PUBLISH};
	q.u.publish.topic = B("t\x02");
	assert_int_equal(tern_encode_packet(&q, TERN_V311, out, sizeof(out), &n), TERN_E_INVALID);
}

static void test_connect_will_qos_without_will_is_malformed_MQTT_3_1_2_11_13(void **state)
{
	(void)state;
	EXPECT(0, 0x10, TERN_E_MALFORMED, VH311(0x0A), CID); /* will QoS 1 */
	EXPECT(0, 0x10, TERN_E_MALFORMED, VH311(0x12), CID); /* will QoS 2 */
	EXPECT(0, 0x10, TERN_E_MALFORMED, VH5(0x0A), 0x00, CID);
}

static void test_connect_will_retain_without_will_is_malformed_MQTT_3_1_2_15(void **state)
{
	(void)state;
	EXPECT(0, 0x10, TERN_E_MALFORMED, VH311(0x22), CID);
	EXPECT(0, 0x10, TERN_E_MALFORMED, VH5(0x22), 0x00, CID);
}

static void test_connect_will_qos3_is_malformed_MQTT_3_1_2_14(void **state)
{
	(void)state;
	EXPECT(0, 0x10, TERN_E_MALFORMED, VH311(0x1E), CID, 0x00, 0x01, 't', 0x00, 0x00);
	EXPECT(0, 0x10, TERN_E_MALFORMED, VH5(0x1E), 0x00, CID, 0x00, 0x00, 0x01, 't', 0x00, 0x00);
}

static void test_connect_password_without_username_MQTT_3_1_2_22(void **state)
{
	(void)state;
	EXPECT(0, 0x10, TERN_E_MALFORMED, VH311(0x42), CID, 0x00, 0x01, 'p');
	EXPECT(0, 0x10, TERN_E_MALFORMED, VH31(0x42), CID, 0x00, 0x01, 'p');
	/* 5.0 allows a password without a user name (3.1.2.9). */
	EXPECT(0, 0x10, TERN_OK, VH5(0x42), 0x00, CID, 0x00, 0x01, 'p');
}

static void test_connect_will_topic_must_be_topic_name_MQTT_3_1_3_11(void **state)
{
	(void)state;
	EXPECT(0, 0x10, TERN_OK, VH311(0x06), CID, 0x00, 0x01, 't', 0x00, 0x00);
	EXPECT(0, 0x10, TERN_E_TOPIC_NAME, VH311(0x06), CID, 0x00, 0x01, '#', 0x00, 0x00);
	EXPECT(0, 0x10, TERN_E_TOPIC_NAME, VH311(0x06), CID, 0x00, 0x03, 'a', '/', '+', 0x00, 0x00);
	EXPECT(0, 0x10, TERN_E_TOPIC_NAME, VH311(0x06), CID, 0x00, 0x00, 0x00, 0x00);
	EXPECT(0, 0x10, TERN_E_TOPIC_NAME, VH5(0x06), 0x00, CID, 0x00, 0x00, 0x01, '+', 0x00, 0x00);
	/* Bad UTF-8 in the will topic is malformed [MQTT-1.5.4-1]. */
	EXPECT(0, 0x10, TERN_E_MALFORMED, VH311(0x06), CID, 0x00, 0x01, 0xFF, 0x00, 0x00);
}

static void test_connect_strings_must_be_utf8_MQTT_1_5_4_1(void **state)
{
	(void)state;
	/* client id with U+0000 [MQTT-1.5.4-2], with a surrogate, bad user name */
	EXPECT(0, 0x10, TERN_E_MALFORMED, VH311(0x02), 0x00, 0x02, 'a', 0x00);
	EXPECT(0, 0x10, TERN_E_MALFORMED, VH311(0x02), 0x00, 0x03, 0xED, 0xA0, 0x80);
	EXPECT(0, 0x10, TERN_E_MALFORMED, VH311(0x82), CID, 0x00, 0x02, 0xC0, 0x80);
	/* the password is binary: anything goes */
	EXPECT(0, 0x10, TERN_OK, VH311(0xC2), CID, 0x00, 0x01, 'u', 0x00, 0x02, 0x00, 0xFF);
}

static void test_connect_truncated_or_trailing_is_malformed(void **state)
{
	(void)state;
	EXPECT(0, 0x10, TERN_E_MALFORMED, VH311(0x02), 0x00, 0x05, 'c');
	EXPECT(0, 0x10, TERN_E_MALFORMED, VH311(0x02), CID, 0x00);
	EXPECT(0, 0x10, TERN_E_MALFORMED, VH311(0x82), CID); /* user name missing */
	EXPECT(0, 0x10, TERN_E_MALFORMED, VH311(0x06), CID, 0x00, 0x01, 't'); /* payload */
	EXPECT(0, 0x10, TERN_E_MALFORMED, 0x00, 0x04, 'M', 'Q', 'T', 'T', 0x04, 0x02, 0x00);
}

/* ---- v5 properties (2.2.2.2) ---- */

static void test_property_not_allowed_in_packet_is_malformed(void **state)
{
	(void)state;
	/* Topic Alias in CONNECT, Will Delay in CONNECT properties. */
	EXPECT(0, 0x10, TERN_E_MALFORMED, VH5(0x02), 0x03, 0x23, 0x00, 0x01, CID);
	EXPECT(0, 0x10, TERN_E_MALFORMED, VH5(0x02), 0x05, 0x18, 0x00, 0x00, 0x00, 0x01, CID);
	/* Session Expiry in will properties, Receive Maximum in PUBLISH. */
	EXPECT(0, 0x10, TERN_E_MALFORMED, VH5(0x06), 0x00, CID, 0x05, 0x11, 0x00, 0x00, 0x00, 0x01,
	       0x00, 0x01, 't', 0x00, 0x00);
	EXPECT(TERN_V5, 0x30, TERN_E_MALFORMED, 0x00, 0x01, 't', 0x03, 0x21, 0x00, 0x01);
	/* Topic Alias in PUBACK, Subscription Identifier in UNSUBSCRIBE,
	 * Reason String in SUBSCRIBE, Receive Maximum in DISCONNECT. */
	EXPECT(TERN_V5, 0x40, TERN_E_MALFORMED, 0x00, 0x01, 0x00, 0x03, 0x23, 0x00, 0x01);
	EXPECT(TERN_V5, 0xA2, TERN_E_MALFORMED, 0x00, 0x01, 0x02, 0x0B, 0x01, 0x00, 0x01, 'a');
	EXPECT(TERN_V5, 0x82, TERN_E_MALFORMED, 0x00, 0x01, 0x04, 0x1F, 0x00, 0x01, 'r', 0x00, 0x01,
	       'a', 0x00);
	EXPECT(TERN_V5, 0xE0, TERN_E_MALFORMED, 0x00, 0x03, 0x21, 0x00, 0x01);
	/* Server Keep Alive in AUTH. */
	EXPECT(TERN_V5, 0xF0, TERN_E_MALFORMED, 0x18, 0x03, 0x13, 0x00, 0x01);
}

static void test_property_unknown_id_is_malformed(void **state)
{
	(void)state;
	EXPECT(TERN_V5, 0x30, TERN_E_MALFORMED, 0x00, 0x01, 't', 0x02, 0x04, 0x00);
	EXPECT(TERN_V5, 0x30, TERN_E_MALFORMED, 0x00, 0x01, 't', 0x02, 0x00, 0x00);
	/* a 2-byte identifier VBI names no property */
	EXPECT(TERN_V5, 0x30, TERN_E_MALFORMED, 0x00, 0x01, 't', 0x03, 0x81, 0x00, 0x01);
}

static void test_property_duplicate_is_protocol_error(void **state)
{
	(void)state;
	/* Session Expiry twice in CONNECT (3.1.2.11.2). */
	EXPECT(0, 0x10, TERN_E_PROTOCOL, VH5(0x02), 0x0A, 0x11, 0, 0, 0, 1, 0x11, 0, 0, 0, 2, CID);
	/* Topic Alias twice, Payload Format twice in PUBLISH. */
	EXPECT(TERN_V5, 0x30, TERN_E_PROTOCOL, 0x00, 0x01, 't', 0x06, 0x23, 0x00, 0x01, 0x23, 0x00,
	       0x02);
	EXPECT(TERN_V5, 0x30, TERN_E_PROTOCOL, 0x00, 0x01, 't', 0x04, 0x01, 0x00, 0x01, 0x00);
	/* Reason String twice in PUBACK. */
	EXPECT(TERN_V5, 0x40, TERN_E_PROTOCOL, 0x00, 0x01, 0x00, 0x08, 0x1F, 0x00, 0x01, 'a', 0x1F,
	       0x00, 0x01, 'b');
	/* Subscription Identifier twice in SUBSCRIBE (3.8.2.1.2). */
	EXPECT(TERN_V5, 0x82, TERN_E_PROTOCOL, 0x00, 0x01, 0x04, 0x0B, 0x01, 0x0B, 0x02, 0x00, 0x01,
	       'a', 0x00);
}

static void test_property_repeatable_ones_are_accepted(void **state)
{
	(void)state;
	struct tern_packet p;
	/* User Property twice, same name (3.3.2.3.7); two Subscription
	 * Identifiers in a PUBLISH (3.3.4). */
	static const uint8_t body[] = {0x00, 0x01, 't',  0x11, 0x26, 0x00, 0x01,
	                               'k',  0x00, 0x01, 'v',  0x26, 0x00, 0x01,
	                               'k',  0x00, 0x00, 0x0B, 0x05, 0x0B, 0x06};
	assert_int_equal(decode_body(TERN_V5, 0x30, body, sizeof(body), &p), TERN_OK);
	assert_int_equal(p.u.publish.props.n_user, 2);
	assert_int_equal(p.u.publish.props.n_sub_ids, 2);
}

static void test_property_out_of_range_is_protocol_error(void **state)
{
	(void)state;
	/* Receive Maximum 0 (3.1.2.11.3), Maximum Packet Size 0 (3.1.2.11.4),
	 * Request Problem / Response Information 2 (3.1.2.11.6-7). */
	EXPECT(0, 0x10, TERN_E_PROTOCOL, VH5(0x02), 0x03, 0x21, 0x00, 0x00, CID);
	EXPECT(0, 0x10, TERN_E_PROTOCOL, VH5(0x02), 0x05, 0x27, 0, 0, 0, 0, CID);
	EXPECT(0, 0x10, TERN_E_PROTOCOL, VH5(0x02), 0x02, 0x17, 0x02, CID);
	EXPECT(0, 0x10, TERN_E_PROTOCOL, VH5(0x02), 0x02, 0x19, 0x02, CID);
	/* Payload Format 2 (3.3.2.3.2), Topic Alias 0 (3.3.2.3.4),
	 * Subscription Identifier 0 (3.3.2.3.8). */
	EXPECT(TERN_V5, 0x30, TERN_E_PROTOCOL, 0x00, 0x01, 't', 0x02, 0x01, 0x02);
	EXPECT(TERN_V5, 0x30, TERN_E_PROTOCOL, 0x00, 0x01, 't', 0x03, 0x23, 0x00, 0x00);
	EXPECT(TERN_V5, 0x30, TERN_E_PROTOCOL, 0x00, 0x01, 't', 0x02, 0x0B, 0x00);
	/* Payload Format 2 in will properties. */
	EXPECT(0, 0x10, TERN_E_PROTOCOL, VH5(0x06), 0x00, CID, 0x02, 0x01, 0x02, 0x00, 0x01, 't',
	       0x00, 0x00);
	/* CONNACK: Maximum QoS 2, Retain Available 2, Wildcard / Sub Id /
	 * Shared Subscription Available 2 (3.2.2.3). */
	EXPECT(TERN_V5, 0x20, TERN_E_PROTOCOL, 0x00, 0x00, 0x02, 0x24, 0x02);
	EXPECT(TERN_V5, 0x20, TERN_E_PROTOCOL, 0x00, 0x00, 0x02, 0x25, 0x02);
	EXPECT(TERN_V5, 0x20, TERN_E_PROTOCOL, 0x00, 0x00, 0x02, 0x28, 0x02);
	EXPECT(TERN_V5, 0x20, TERN_E_PROTOCOL, 0x00, 0x00, 0x02, 0x29, 0x02);
	EXPECT(TERN_V5, 0x20, TERN_E_PROTOCOL, 0x00, 0x00, 0x02, 0x2A, 0x02);
	/* SUBSCRIBE: Subscription Identifier 0 (3.8.2.1.2). */
	EXPECT(TERN_V5, 0x82, TERN_E_PROTOCOL, 0x00, 0x01, 0x02, 0x0B, 0x00, 0x00, 0x01, 'a', 0x00);
	/* A Response Topic is a topic name [MQTT-3.3.2-14]. */
	EXPECT(TERN_V5, 0x30, TERN_E_PROTOCOL, 0x00, 0x01, 't', 0x04, 0x08, 0x00, 0x01, '#');
}

static void test_property_auth_data_without_method_is_protocol_error(void **state)
{
	(void)state;
	EXPECT(0, 0x10, TERN_E_PROTOCOL, VH5(0x02), 0x04, 0x16, 0x00, 0x01, 'x', CID);
	EXPECT(TERN_V5, 0xF0, TERN_E_PROTOCOL, 0x18, 0x04, 0x16, 0x00, 0x01, 'x');
	EXPECT(TERN_V5, 0xF0, TERN_OK, 0x18, 0x08, 0x15, 0x00, 0x01, 'm', 0x16, 0x00, 0x01, 'x');
}

static void test_property_length_past_end_is_malformed(void **state)
{
	(void)state;
	EXPECT(TERN_V5, 0x30, TERN_E_MALFORMED, 0x00, 0x01, 't', 0x05, 0x01, 0x01);
	EXPECT(TERN_V5, 0x40, TERN_E_MALFORMED, 0x00, 0x01, 0x00, 0x04, 0x1F, 0x00);
	/* A value running past the property block, though not past the
	 * packet. */
	EXPECT(TERN_V5, 0x30, TERN_E_MALFORMED, 0x00, 0x01, 't', 0x02, 0x23, 0x00, 0x01, 'x');
	/* A property length VBI that is not minimal [MQTT-1.5.5-1]. */
	EXPECT(TERN_V5, 0x30, TERN_E_MALFORMED, 0x00, 0x01, 't', 0x80, 0x00);
	/* A user property whose value has bad UTF-8. */
	EXPECT(TERN_V5, 0x30, TERN_E_MALFORMED, 0x00, 0x01, 't', 0x07, 0x26, 0x00, 0x01, 'k', 0x00,
	       0x01, 0xFF);
}

/* ---- CONNACK ---- */

static void test_connack_reserved_flags_are_malformed_MQTT_3_2_2_1(void **state)
{
	(void)state;
	EXPECT(TERN_V311, 0x20, TERN_E_MALFORMED, 0x02, 0x00);
	EXPECT(TERN_V5, 0x20, TERN_E_MALFORMED, 0x80, 0x00, 0x00);
}

static void test_connack_session_present_with_error_MQTT_3_2_2_4_and_6(void **state)
{
	(void)state;
	EXPECT(TERN_V311, 0x20, TERN_E_PROTOCOL, 0x01, 0x05);
	EXPECT(TERN_V5, 0x20, TERN_E_PROTOCOL, 0x01, 0x87, 0x00);
}

static void test_connack_unknown_return_code(void **state)
{
	(void)state;
	EXPECT(TERN_V311, 0x20, TERN_E_PROTOCOL, 0x00, 0x06);
	EXPECT(TERN_V5, 0x20, TERN_E_PROTOCOL, 0x00, 0x04, 0x00);
	EXPECT(TERN_V5, 0x20, TERN_E_PROTOCOL, 0x00, 0x8E, 0x00);
	EXPECT(TERN_V311, 0x20, TERN_E_MALFORMED, 0x00, 0x00, 0x00);
	EXPECT(TERN_V5, 0x20, TERN_E_MALFORMED, 0x00, 0x00); /* properties required */
}

/* ---- PUBLISH ---- */

static void test_publish_topic_with_wildcard_MQTT_3_3_2_2(void **state)
{
	(void)state;
	EXPECT(TERN_V311, 0x30, TERN_E_TOPIC_NAME, 0x00, 0x03, 'a', '/', '+');
	EXPECT(TERN_V31, 0x30, TERN_E_TOPIC_NAME, 0x00, 0x01, '#');
	EXPECT(TERN_V5, 0x30, TERN_E_TOPIC_NAME, 0x00, 0x02, 'a', '#', 0x00);
}

static void test_publish_empty_topic_MQTT_4_7_3_1(void **state)
{
	(void)state;
	EXPECT(TERN_V311, 0x30, TERN_E_TOPIC_NAME, 0x00, 0x00, 'x');
	/* 5.0: only with a Topic Alias (3.3.2.3.4). */
	EXPECT(TERN_V5, 0x30, TERN_E_PROTOCOL, 0x00, 0x00, 0x00, 'x');
	EXPECT(TERN_V5, 0x30, TERN_OK, 0x00, 0x00, 0x03, 0x23, 0x00, 0x01, 'x');
}

static void test_publish_topic_bad_utf8_is_malformed_MQTT_1_5_4_1(void **state)
{
	(void)state;
	EXPECT(TERN_V311, 0x30, TERN_E_MALFORMED, 0x00, 0x02, 0xC3, 0x28);
	EXPECT(TERN_V311, 0x30, TERN_E_MALFORMED, 0x00, 0x01, 0x00);
	EXPECT(TERN_V5, 0x30, TERN_E_MALFORMED, 0x00, 0x03, 0xED, 0xB0, 0x80, 0x00);
}

static void test_publish_packet_id_zero_MQTT_2_3_1_1(void **state)
{
	(void)state;
	EXPECT(TERN_V311, 0x32, TERN_E_PROTOCOL, 0x00, 0x01, 't', 0x00, 0x00);
	EXPECT(TERN_V5, 0x34, TERN_E_PROTOCOL, 0x00, 0x01, 't', 0x00, 0x00, 0x00);
	/* QoS 0 has no packet identifier: those bytes are payload. */
	EXPECT(TERN_V311, 0x30, TERN_OK, 0x00, 0x01, 't', 0x00, 0x00);
}

static void test_publish_truncated_is_malformed(void **state)
{
	(void)state;
	EXPECT(TERN_V311, 0x30, TERN_E_MALFORMED, 0x00);
	EXPECT(TERN_V311, 0x30, TERN_E_MALFORMED, 0x00, 0x05, 'a');
	EXPECT(TERN_V311, 0x32, TERN_E_MALFORMED, 0x00, 0x01, 't', 0x00);
	EXPECT(TERN_V5, 0x30, TERN_E_MALFORMED, 0x00, 0x01, 't'); /* no property length */
}

/* ---- PUBACK PUBREC PUBREL PUBCOMP ---- */

static void test_ack_packet_id_zero_is_protocol_error_MQTT_2_3_1_1(void **state)
{
	(void)state;
	static const uint8_t b0[] = {0x40, 0x50, 0x62, 0x70};
	for (size_t i = 0; i < sizeof(b0); i++) {
		EXPECT(TERN_V311, b0[i], TERN_E_PROTOCOL, 0x00, 0x00);
		EXPECT(TERN_V5, b0[i], TERN_E_PROTOCOL, 0x00, 0x00);
		EXPECT(TERN_V311, b0[i], TERN_OK, 0x00, 0x01);
	}
}

static void test_ack_wrong_length_is_malformed(void **state)
{
	(void)state;
	EXPECT(TERN_V311, 0x40, TERN_E_MALFORMED, 0x00, 0x01, 0x00);
	EXPECT(TERN_V311, 0x40, TERN_E_MALFORMED, 0x00);
	EXPECT(TERN_V5, 0x40, TERN_E_MALFORMED, 0x00);
	EXPECT(TERN_V5, 0x50, TERN_E_MALFORMED, 0x00, 0x01, 0x00, 0x00, 0x00);
}

static void test_ack_reason_not_allowed_is_protocol_error(void **state)
{
	(void)state;
	EXPECT(TERN_V5, 0x40, TERN_E_PROTOCOL, 0x00, 0x01, 0x92); /* 3.4.2.1 */
	EXPECT(TERN_V5, 0x50, TERN_E_PROTOCOL, 0x00, 0x01, 0x01); /* 3.5.2.1 */
	EXPECT(TERN_V5, 0x62, TERN_E_PROTOCOL, 0x00, 0x01, 0x10); /* 3.6.2.1 */
	EXPECT(TERN_V5, 0x70, TERN_E_PROTOCOL, 0x00, 0x01, 0x80); /* 3.7.2.1 */
	EXPECT(TERN_V5, 0x70, TERN_OK, 0x00, 0x01, 0x92);
}

/* ---- SUBSCRIBE ---- */

static void test_subscribe_without_entries_MQTT_3_8_3_3(void **state)
{
	(void)state;
	EXPECT(TERN_V311, 0x82, TERN_E_PROTOCOL, 0x00, 0x01);
	EXPECT(TERN_V5, 0x82, TERN_E_PROTOCOL, 0x00, 0x01, 0x00);
}

static void test_subscribe_packet_id_zero_MQTT_2_3_1_1(void **state)
{
	(void)state;
	EXPECT(TERN_V311, 0x82, TERN_E_PROTOCOL, 0x00, 0x00, 0x00, 0x01, 'a', 0x00);
}

static void test_subscribe_v311_reserved_bits_MQTT_3_8_3_4(void **state)
{
	(void)state;
	EXPECT(TERN_V311, 0x82, TERN_E_MALFORMED, 0x00, 0x01, 0x00, 0x01, 'a', 0x04);
	EXPECT(TERN_V311, 0x82, TERN_E_MALFORMED, 0x00, 0x01, 0x00, 0x01, 'a', 0x80);
	EXPECT(TERN_V31, 0x82, TERN_E_MALFORMED, 0x00, 0x01, 0x00, 0x01, 'a', 0x10);
	/* QoS 3 [MQTT-3-8.3-4] */
	EXPECT(TERN_V311, 0x82, TERN_E_MALFORMED, 0x00, 0x01, 0x00, 0x01, 'a', 0x03);
}

static void test_subscribe_v5_reserved_bits_MQTT_3_8_3_5(void **state)
{
	(void)state;
	EXPECT(TERN_V5, 0x82, TERN_E_MALFORMED, 0x00, 0x01, 0x00, 0x00, 0x01, 'a', 0x40);
	EXPECT(TERN_V5, 0x82, TERN_E_MALFORMED, 0x00, 0x01, 0x00, 0x00, 0x01, 'a', 0x80);
	EXPECT(TERN_V5, 0x82, TERN_OK, 0x00, 0x01, 0x00, 0x00, 0x01, 'a', 0x2E);
}

static void test_subscribe_v5_qos3_and_retain_handling3_3_8_3_1(void **state)
{
	(void)state;
	/* 5.0 3.8.3.1: "It is a Protocol Error if the Maximum QoS field has
	 * the value 3" and "to send a Retain Handling value of 3". */
	EXPECT(TERN_V5, 0x82, TERN_E_PROTOCOL, 0x00, 0x01, 0x00, 0x00, 0x01, 'a', 0x03);
	EXPECT(TERN_V5, 0x82, TERN_E_PROTOCOL, 0x00, 0x01, 0x00, 0x00, 0x01, 'a', 0x30);
}

static void test_subscribe_no_local_on_shared_MQTT_3_8_3_4(void **state)
{
	(void)state;
	EXPECT(TERN_V5, 0x82, TERN_E_PROTOCOL, 0x00, 0x01, 0x00, 0x00, 0x0A, '$', 's', 'h', 'a',
	       'r', 'e', '/', 'g', '/', 'x', 0x04);
	EXPECT(TERN_V5, 0x82, TERN_OK, 0x00, 0x01, 0x00, 0x00, 0x0A, '$', 's', 'h', 'a', 'r', 'e',
	       '/', 'g', '/', 'x', 0x00);
}

static void test_subscribe_invalid_filter_MQTT_4_7_1_2_and_3(void **state)
{
	(void)state;
	EXPECT(TERN_V311, 0x82, TERN_E_TOPIC_FILTER, 0x00, 0x01, 0x00, 0x02, 'a', '#', 0x00);
	EXPECT(TERN_V311, 0x82, TERN_E_TOPIC_FILTER, 0x00, 0x01, 0x00, 0x01, 'a', 0x00, 0x00, 0x00,
	       0x00); /* [MQTT-4.7.3-1] empty filter */
	EXPECT(TERN_V5, 0x82, TERN_E_TOPIC_FILTER, 0x00, 0x01, 0x00, 0x00, 0x03, 'a', '+', 'b',
	       0x00);
	/* Misplaced wildcards in a shared subscription's filter part break
	 * the filter grammar (4.7.1) as they do elsewhere. */
	EXPECT(TERN_V5, 0x82, TERN_E_TOPIC_FILTER, 0x00, 0x01, 0x00, 0x00, 0x0B, '$', 's', 'h', 'a',
	       'r', 'e', '/', 'p', '/', 'a', '#', 0x00);
	/* A bad filter followed by a broken entry: reported as malformed. */
	EXPECT(TERN_V311, 0x82, TERN_E_MALFORMED, 0x00, 0x01, 0x00, 0x01, '#', 0x00, 0x00, 0x01,
	       '+', 0x00, 0x00, 0x02, 'a');
	EXPECT(TERN_V311, 0x82, TERN_E_MALFORMED, 0x00, 0x01, 0x00, 0x02, 'a', '#', 0x00, 0x00,
	       0x01, 'b', 0x07);
}

/* A well-formed filter (4.7.1) that starts with "$share/" but is not
 * "$share/{ShareName}/{filter}" with a ShareName of one character or more and
 * no '+' or '#' in it breaks a rule of the protocol, not the grammar
 * [MQTT-4.8.2-1] [MQTT-4.8.2-2]: a Protocol Error (mosquitto 2.0.20's
 * sequences "shared sub with no topic part" expect 0x82), in SUBSCRIBE and
 * UNSUBSCRIBE alike. */
static void test_misshaped_shared_filter_is_protocol_error_MQTT_4_8_2_1(void **state)
{
	(void)state;
	/* "$share/+/": a ShareName of "+" */
	EXPECT(TERN_V5, 0x82, TERN_E_PROTOCOL, 0x00, 0x01, 0x00, 0x00, 0x09, '$', 's', 'h', 'a',
	       'r', 'e', '/', '+', '/', 0x00);
	/* "$share/p/": no filter after the ShareName */
	EXPECT(TERN_V5, 0x82, TERN_E_PROTOCOL, 0x00, 0x01, 0x00, 0x00, 0x09, '$', 's', 'h', 'a',
	       'r', 'e', '/', 'p', '/', 0x00);
	/* "$share/p": no "/" after the ShareName */
	EXPECT(TERN_V5, 0x82, TERN_E_PROTOCOL, 0x00, 0x01, 0x00, 0x00, 0x08, '$', 's', 'h', 'a',
	       'r', 'e', '/', 'p', 0x00);
	/* "$share//t": an empty ShareName */
	EXPECT(TERN_V5, 0x82, TERN_E_PROTOCOL, 0x00, 0x01, 0x00, 0x00, 0x09, '$', 's', 'h', 'a',
	       'r', 'e', '/', '/', 't', 0x00);
	/* UNSUBSCRIBE "$share/p/" */
	EXPECT(TERN_V5, 0xA2, TERN_E_PROTOCOL, 0x00, 0x01, 0x00, 0x00, 0x09, '$', 's', 'h', 'a',
	       'r', 'e', '/', 'p', '/');
	/* A malformed entry after it still makes the packet malformed. */
	EXPECT(TERN_V5, 0x82, TERN_E_MALFORMED, 0x00, 0x01, 0x00, 0x00, 0x08, '$', 's', 'h', 'a',
	       'r', 'e', '/', 'p', 0x00, 0x00, 0x01, 'a');
}

static void test_subscribe_truncated_or_bad_utf8_is_malformed(void **state)
{
	(void)state;
	EXPECT(TERN_V311, 0x82, TERN_E_MALFORMED, 0x00, 0x01, 0x00, 0x01, 'a'); /* no options */
	EXPECT(TERN_V311, 0x82, TERN_E_MALFORMED, 0x00, 0x01, 0x00, 0x03, 'a');
	EXPECT(TERN_V311, 0x82, TERN_E_MALFORMED, 0x00, 0x01, 0x00, 0x01, 0xFE, 0x00);
	EXPECT(TERN_V311, 0x82, TERN_E_MALFORMED, 0x00);
}

/* ---- UNSUBSCRIBE ---- */

static void test_unsubscribe_without_filters_MQTT_3_10_3_2(void **state)
{
	(void)state;
	EXPECT(TERN_V311, 0xA2, TERN_E_PROTOCOL, 0x00, 0x01);
	EXPECT(TERN_V5, 0xA2, TERN_E_PROTOCOL, 0x00, 0x01, 0x00);
}

static void test_unsubscribe_packet_id_zero_and_bad_filter(void **state)
{
	(void)state;
	EXPECT(TERN_V311, 0xA2, TERN_E_PROTOCOL, 0x00, 0x00, 0x00, 0x01, 'a');
	EXPECT(TERN_V311, 0xA2, TERN_E_TOPIC_FILTER, 0x00, 0x01, 0x00, 0x02, '#', 'a');
	EXPECT(TERN_V5, 0xA2, TERN_E_TOPIC_FILTER, 0x00, 0x01, 0x00, 0x00, 0x00);
	EXPECT(TERN_V311, 0xA2, TERN_E_MALFORMED, 0x00, 0x01, 0x00, 0x02, 'a');
}

/* ---- SUBACK UNSUBACK ---- */

static void test_suback_rules(void **state)
{
	(void)state;
	EXPECT(TERN_V311, 0x90, TERN_E_PROTOCOL, 0x00, 0x01);       /* no codes */
	EXPECT(TERN_V311, 0x90, TERN_E_PROTOCOL, 0x00, 0x00, 0x00); /* id 0 */
	EXPECT(TERN_V311, 0x90, TERN_E_PROTOCOL, 0x00, 0x01, 0x03); /* 3.9.3 */
	EXPECT(TERN_V311, 0x90, TERN_E_PROTOCOL, 0x00, 0x01, 0x87);
	EXPECT(TERN_V5, 0x90, TERN_E_PROTOCOL, 0x00, 0x01, 0x00, 0x04);
	EXPECT(TERN_V5, 0x90, TERN_OK, 0x00, 0x01, 0x00, 0x87, 0xA2);
	EXPECT(TERN_V5, 0x90, TERN_E_PROTOCOL, 0x00, 0x01, 0x00);
}

static void test_unsuback_rules(void **state)
{
	(void)state;
	EXPECT(TERN_V311, 0xB0, TERN_E_MALFORMED, 0x00, 0x01, 0x00);
	EXPECT(TERN_V311, 0xB0, TERN_E_PROTOCOL, 0x00, 0x00);
	EXPECT(TERN_V5, 0xB0, TERN_E_PROTOCOL, 0x00, 0x01, 0x00);       /* no codes */
	EXPECT(TERN_V5, 0xB0, TERN_E_PROTOCOL, 0x00, 0x01, 0x00, 0x01); /* 3.11.3 */
	EXPECT(TERN_V5, 0xB0, TERN_OK, 0x00, 0x01, 0x00, 0x11);
}

/* ---- PINGREQ PINGRESP DISCONNECT AUTH ---- */

static void test_ping_with_body_is_malformed(void **state)
{
	(void)state;
	EXPECT(TERN_V311, 0xC0, TERN_E_MALFORMED, 0x00);
	EXPECT(TERN_V5, 0xD0, TERN_E_MALFORMED, 0x00);
}

static void test_disconnect_rules(void **state)
{
	(void)state;
	EXPECT(TERN_V311, 0xE0, TERN_E_MALFORMED, 0x00);
	EXPECT(TERN_V5, 0xE0, TERN_E_PROTOCOL, 0x01);              /* 3.14.2.1 */
	EXPECT(TERN_V5, 0xE0, TERN_E_MALFORMED, 0x00, 0x05, 0x11); /* props cut */
	EXPECT(TERN_V5, 0xE0, TERN_E_MALFORMED, 0x00, 0x00, 0x00); /* trailing */
	EXPECT(TERN_V5, 0xE0, TERN_OK, 0x00, 0x05, 0x11, 0x00, 0x00, 0x00, 0x00);
}

static void test_auth_rules(void **state)
{
	(void)state;
	/* Packet type 15 is reserved before 5.0. */
	static const uint8_t none[1];
	expect_at(__LINE__, TERN_V311, 0xF0, none, 0, TERN_E_MALFORMED);
	expect_at(__LINE__, TERN_V31, 0xF0, none, 0, TERN_E_MALFORMED);
	EXPECT(TERN_V5, 0xF0, TERN_E_PROTOCOL, 0x01); /* 3.15.2.1 */
	EXPECT(TERN_V5, 0xF0, TERN_E_PROTOCOL, 0x87);
}

/* ---- the decoder checks a caller-built fixed header too ---- */

static void test_decode_packet_checks_fixed_header_flags(void **state)
{
	(void)state;
	struct tern_packet p;
	static const uint8_t body[] = {0x00, 0x01};
	struct tern_fixed_header fh = {TERN_PUBREL, 0, 2, 2};
	assert_int_equal(tern_decode_packet(&fh, body, TERN_V311, &p), TERN_E_MALFORMED);
	fh.flags = 2;
	assert_int_equal(tern_decode_packet(&fh, body, TERN_V311, &p), TERN_OK);
	fh.type = (enum tern_packet_type)0;
	assert_int_equal(tern_decode_packet(&fh, body, TERN_V311, &p), TERN_E_MALFORMED);
	struct tern_fixed_header pub = {TERN_PUBLISH, 0x06, 2, 2};
	assert_int_equal(tern_decode_packet(&pub, body, TERN_V311, &p), TERN_E_MALFORMED);
}

/* ---- the encoder refuses what cannot be carried ---- */

static void test_encode_rejects_invalid_packets(void **state)
{
	(void)state;
	uint8_t buf[256];
	size_t n;
	struct tern_packet p = {.type = TERN_PUBLISH};
	p.u.publish.topic = B("t");
	p.u.publish.qos = 3;
	assert_int_equal(tern_encode_packet(&p, TERN_V311, buf, sizeof(buf), &n), TERN_E_INVALID);
	p.u.publish.qos = 1; /* packet id 0 */
	assert_int_equal(tern_encode_packet(&p, TERN_V311, buf, sizeof(buf), &n), TERN_E_INVALID);
	assert_int_equal(tern_packet_size(&p, TERN_V311), 0);
	p.u.publish.qos = 0;
	p.u.publish.dup = true;
	assert_int_equal(tern_encode_packet(&p, TERN_V311, buf, sizeof(buf), &n), TERN_E_INVALID);
	p.u.publish.dup = false;
	p.u.publish.topic = B("a/+");
	assert_int_equal(tern_encode_packet(&p, TERN_V311, buf, sizeof(buf), &n), TERN_E_INVALID);
	p.u.publish.topic = B("");
	assert_int_equal(tern_encode_packet(&p, TERN_V5, buf, sizeof(buf), &n), TERN_E_INVALID);
	p.u.publish.topic = B("t");
	/* A property PUBLISH may not carry, and a bad user property block. */
	p.u.publish.props.present = TERN_PROP_BIT(TERN_PROP_SESSION_EXPIRY);
	assert_int_equal(tern_encode_packet(&p, TERN_V5, buf, sizeof(buf), &n), TERN_E_INVALID);
	/* ... which a v3 encoding ignores. */
	assert_int_equal(tern_encode_packet(&p, TERN_V311, buf, sizeof(buf), &n), TERN_OK);
	p.u.publish.props.present = 0;
	p.u.publish.props.user_raw = B("\x26\x00\x01");
	assert_int_equal(tern_encode_packet(&p, TERN_V5, buf, sizeof(buf), &n), TERN_E_INVALID);
	p.u.publish.props.user_raw = B("");
	p.u.publish.props.present = TERN_PROP_BIT(TERN_PROP_TOPIC_ALIAS); /* alias 0 */
	assert_int_equal(tern_encode_packet(&p, TERN_V5, buf, sizeof(buf), &n), TERN_E_INVALID);
	/* An unknown protocol level. */
	assert_int_equal(tern_encode_packet(&p, 6, buf, sizeof(buf), &n), TERN_E_INVALID);

	struct tern_packet s = {.type = TERN_SUBSCRIBE};
	s.u.subscribe.packet_id = 1;
	assert_int_equal(tern_encode_packet(&s, TERN_V5, buf, sizeof(buf), &n), TERN_E_INVALID);
	struct tern_sub_entry e = {.filter = B("$share/g/t"), .no_local = true};
	s.u.subscribe.entries = &e;
	s.u.subscribe.count = 1;
	assert_int_equal(tern_encode_packet(&s, TERN_V5, buf, sizeof(buf), &n), TERN_E_INVALID);
	e.no_local = false;
	e.retain_handling = 3;
	assert_int_equal(tern_encode_packet(&s, TERN_V5, buf, sizeof(buf), &n), TERN_E_INVALID);
	e.retain_handling = 0;
	e.filter = B("a#");
	assert_int_equal(tern_encode_packet(&s, TERN_V5, buf, sizeof(buf), &n), TERN_E_INVALID);

	struct tern_packet a = {.type = TERN_PUBACK};
	assert_int_equal(tern_encode_packet(&a, TERN_V5, buf, sizeof(buf), &n), TERN_E_INVALID);
	a.u.ack.packet_id = 1;
	a.u.ack.reason = 0x92;
	assert_int_equal(tern_encode_packet(&a, TERN_V5, buf, sizeof(buf), &n), TERN_E_INVALID);

	struct tern_packet c = {.type = TERN_CONNECT};
	c.u.connect.has_password = true;
	assert_int_equal(tern_encode_packet(&c, TERN_V311, buf, sizeof(buf), &n), TERN_E_INVALID);
	c.u.connect.has_password = false;
	c.u.connect.version = TERN_V5; /* disagrees with the level asked for */
	assert_int_equal(tern_encode_packet(&c, TERN_V311, buf, sizeof(buf), &n), TERN_E_INVALID);
	c.u.connect.version = 0;
	c.u.connect.will_qos = 1; /* without a will */
	assert_int_equal(tern_encode_packet(&c, TERN_V311, buf, sizeof(buf), &n), TERN_E_INVALID);
}

static void test_user_prop_encode_errors(void **state)
{
	(void)state;
	uint8_t buf[8];
	size_t len = 0;
	assert_int_equal(tern_user_prop_encode(buf, sizeof(buf), &len, B("k"), B("v")), TERN_OK);
	assert_int_equal(len, 7);
	assert_memory_equal(buf, "\x26\x00\x01k\x00\x01v", 7);
	assert_int_equal(tern_user_prop_encode(buf, sizeof(buf), &len, B("k"), B("v")),
	                 TERN_E_BUFFER);
	assert_int_equal(len, 7);
	len = 0;
	assert_int_equal(tern_user_prop_encode(buf, sizeof(buf), &len, B("\xFF"), B("v")),
	                 TERN_E_INVALID);
	assert_int_equal(tern_user_prop_encode(buf, sizeof(buf), &len, B("k"), B("a\x00")),
	                 TERN_E_INVALID);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	        cmocka_unit_test(test_connect_valid_baselines),
	        cmocka_unit_test(test_connect_unknown_protocol_is_unsupported_version_MQTT_3_1_2_2),
	        cmocka_unit_test(test_connect_reserved_flag_is_malformed_MQTT_3_1_2_3),
	        cmocka_unit_test(test_connect_v31_reserved_and_fixed_flags_are_accepted),
	        cmocka_unit_test(test_pubrel_dup_is_accepted_for_v31_only),
	        cmocka_unit_test(test_control_characters_in_names_are_malformed),
	        cmocka_unit_test(test_control_characters_refused_by_checks_and_encoder),
	        cmocka_unit_test(test_connect_will_qos_without_will_is_malformed_MQTT_3_1_2_11_13),
	        cmocka_unit_test(test_connect_will_retain_without_will_is_malformed_MQTT_3_1_2_15),
	        cmocka_unit_test(test_connect_will_qos3_is_malformed_MQTT_3_1_2_14),
	        cmocka_unit_test(test_connect_password_without_username_MQTT_3_1_2_22),
	        cmocka_unit_test(test_connect_will_topic_must_be_topic_name_MQTT_3_1_3_11),
	        cmocka_unit_test(test_connect_strings_must_be_utf8_MQTT_1_5_4_1),
	        cmocka_unit_test(test_connect_truncated_or_trailing_is_malformed),
	        cmocka_unit_test(test_property_not_allowed_in_packet_is_malformed),
	        cmocka_unit_test(test_property_unknown_id_is_malformed),
	        cmocka_unit_test(test_property_duplicate_is_protocol_error),
	        cmocka_unit_test(test_property_repeatable_ones_are_accepted),
	        cmocka_unit_test(test_property_out_of_range_is_protocol_error),
	        cmocka_unit_test(test_property_auth_data_without_method_is_protocol_error),
	        cmocka_unit_test(test_property_length_past_end_is_malformed),
	        cmocka_unit_test(test_connack_reserved_flags_are_malformed_MQTT_3_2_2_1),
	        cmocka_unit_test(test_connack_session_present_with_error_MQTT_3_2_2_4_and_6),
	        cmocka_unit_test(test_connack_unknown_return_code),
	        cmocka_unit_test(test_publish_topic_with_wildcard_MQTT_3_3_2_2),
	        cmocka_unit_test(test_publish_empty_topic_MQTT_4_7_3_1),
	        cmocka_unit_test(test_publish_topic_bad_utf8_is_malformed_MQTT_1_5_4_1),
	        cmocka_unit_test(test_publish_packet_id_zero_MQTT_2_3_1_1),
	        cmocka_unit_test(test_publish_truncated_is_malformed),
	        cmocka_unit_test(test_ack_packet_id_zero_is_protocol_error_MQTT_2_3_1_1),
	        cmocka_unit_test(test_ack_wrong_length_is_malformed),
	        cmocka_unit_test(test_ack_reason_not_allowed_is_protocol_error),
	        cmocka_unit_test(test_subscribe_without_entries_MQTT_3_8_3_3),
	        cmocka_unit_test(test_subscribe_packet_id_zero_MQTT_2_3_1_1),
	        cmocka_unit_test(test_subscribe_v311_reserved_bits_MQTT_3_8_3_4),
	        cmocka_unit_test(test_subscribe_v5_reserved_bits_MQTT_3_8_3_5),
	        cmocka_unit_test(test_subscribe_v5_qos3_and_retain_handling3_3_8_3_1),
	        cmocka_unit_test(test_subscribe_no_local_on_shared_MQTT_3_8_3_4),
	        cmocka_unit_test(test_subscribe_invalid_filter_MQTT_4_7_1_2_and_3),
	        cmocka_unit_test(test_misshaped_shared_filter_is_protocol_error_MQTT_4_8_2_1),
	        cmocka_unit_test(test_subscribe_truncated_or_bad_utf8_is_malformed),
	        cmocka_unit_test(test_unsubscribe_without_filters_MQTT_3_10_3_2),
	        cmocka_unit_test(test_unsubscribe_packet_id_zero_and_bad_filter),
	        cmocka_unit_test(test_suback_rules),
	        cmocka_unit_test(test_unsuback_rules),
	        cmocka_unit_test(test_ping_with_body_is_malformed),
	        cmocka_unit_test(test_disconnect_rules),
	        cmocka_unit_test(test_auth_rules),
	        cmocka_unit_test(test_decode_packet_checks_fixed_header_flags),
	        cmocka_unit_test(test_encode_rejects_invalid_packets),
	        cmocka_unit_test(test_user_prop_encode_errors),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
