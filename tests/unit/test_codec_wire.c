/*
 * test_codec_wire.c - unit tests of the codec's primitive layer: variable
 * byte integers (through the fixed header and the PUBLISH header encoder),
 * UTF-8 validation, topic names and filters, topic matching, and the error
 * tables.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <cmocka.h>

#include "tern/codec.h"

#define S(str) ((const uint8_t *)(str)), (sizeof(str) - 1)

/* ---- variable byte integers [MQTT-1.5.5-1] ---- */

/* Decodes a fixed header of PINGREQ-less type PUBLISH QoS 0 with the given
 * length bytes. */
static enum tern_err fh_len(const uint8_t *len_bytes, size_t n, struct tern_fixed_header *fh)
{
	uint8_t buf[8] = {0x30};
	memcpy(buf + 1, len_bytes, n);
	return tern_decode_fixed_header(buf, 1 + n, 0, fh);
}

static void test_vbi_decode_boundaries(void **state)
{
	(void)state;
	static const struct {
		uint8_t b[4];
		size_t n;
		uint32_t v;
	} cases[] = {
	        {{0x00}, 1, 0},
	        {{0x7F}, 1, 127},
	        {{0x80, 0x01}, 2, 128},
	        {{0xFF, 0x7F}, 2, 16383},
	        {{0x80, 0x80, 0x01}, 3, 16384},
	        {{0xFF, 0xFF, 0x7F}, 3, 2097151},
	        {{0x80, 0x80, 0x80, 0x01}, 4, 2097152},
	        {{0xFF, 0xFF, 0xFF, 0x7F}, 4, 268435455},
	};
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		struct tern_fixed_header fh;
		assert_int_equal(fh_len(cases[i].b, cases[i].n, &fh), TERN_OK);
		assert_int_equal(fh.remaining, cases[i].v);
		assert_int_equal(fh.header_len, 1 + cases[i].n);
		assert_int_equal(fh.type, TERN_PUBLISH);
	}
}

static void test_vbi_five_bytes_is_malformed_MQTT_1_5_5_1(void **state)
{
	(void)state;
	struct tern_fixed_header fh;
	static const uint8_t five[] = {0x80, 0x80, 0x80, 0x80, 0x01};
	static const uint8_t four_cont[] = {0xFF, 0xFF, 0xFF, 0xFF};
	assert_int_equal(fh_len(five, sizeof(five), &fh), TERN_E_MALFORMED);
	/* Four continuation bytes already prove a fifth would be needed. */
	assert_int_equal(fh_len(four_cont, sizeof(four_cont), &fh), TERN_E_MALFORMED);
}

static void test_vbi_not_minimal_is_malformed_MQTT_1_5_5_1(void **state)
{
	(void)state;
	struct tern_fixed_header fh;
	static const uint8_t a[] = {0x80, 0x00};
	static const uint8_t b[] = {0xFF, 0x80, 0x00};
	static const uint8_t c[] = {0x80, 0x80, 0x80, 0x00};
	assert_int_equal(fh_len(a, sizeof(a), &fh), TERN_E_MALFORMED);
	assert_int_equal(fh_len(b, sizeof(b), &fh), TERN_E_MALFORMED);
	assert_int_equal(fh_len(c, sizeof(c), &fh), TERN_E_MALFORMED);
}

static void test_vbi_incomplete(void **state)
{
	(void)state;
	struct tern_fixed_header fh;
	static const uint8_t a[] = {0x80};
	static const uint8_t b[] = {0xFF, 0xFF, 0xFF};
	assert_int_equal(tern_decode_fixed_header((const uint8_t *)"", 0, 0, &fh),
	                 TERN_E_INCOMPLETE);
	assert_int_equal(fh_len(a, 0, &fh), TERN_E_INCOMPLETE);
	assert_int_equal(fh_len(a, sizeof(a), &fh), TERN_E_INCOMPLETE);
	assert_int_equal(fh_len(b, sizeof(b), &fh), TERN_E_INCOMPLETE);
}

/* The encoder writes the same boundaries; tern_encode_publish_header()
 * never reads the payload, so huge lengths need no memory. */
static void test_vbi_encode_boundaries(void **state)
{
	(void)state;
	static const uint32_t rem[] = {3, 127, 128, 16383, 16384, 2097151, 2097152, 268435455};
	static const size_t vlen[] = {1, 1, 2, 2, 3, 3, 4, 4};
	static const uint8_t dummy[1];
	for (size_t i = 0; i < sizeof(rem) / sizeof(rem[0]); i++) {
		struct tern_publish pub = {0};
		pub.topic = (struct tern_bytes){(const uint8_t *)"t", 1};
		pub.payload = (struct tern_bytes){dummy, rem[i] - 3};
		uint8_t out[16];
		size_t n = 0;
		assert_int_equal(tern_encode_publish_header(&pub, TERN_V311, out, sizeof(out), &n),
		                 TERN_OK);
		assert_int_equal(n, 1 + vlen[i] + 3);
		assert_int_equal(tern_publish_header_size(&pub, TERN_V311), n);
		struct tern_fixed_header fh;
		assert_int_equal(tern_decode_fixed_header(out, n, 0, &fh), TERN_OK);
		assert_int_equal(fh.remaining, rem[i]);
		assert_int_equal(fh.header_len, 1 + vlen[i]);
	}
	/* One more than the 4-byte maximum cannot be carried. */
	struct tern_publish big = {0};
	big.topic = (struct tern_bytes){(const uint8_t *)"t", 1};
	big.payload = (struct tern_bytes){dummy, TERN_VBI_MAX - 3 + 1};
	uint8_t out[16];
	size_t n;
	assert_int_equal(tern_encode_publish_header(&big, TERN_V311, out, sizeof(out), &n),
	                 TERN_E_INVALID);
	assert_int_equal(tern_publish_header_size(&big, TERN_V311), 0);
}

/* ---- fixed header ---- */

static void test_fixed_header_too_large_before_body(void **state)
{
	(void)state;
	struct tern_fixed_header fh;
	/* PUBLISH announcing 2097151 bytes: refused from its 4 header bytes. */
	static const uint8_t hdr[] = {0x30, 0xFF, 0xFF, 0x7F};
	assert_int_equal(tern_decode_fixed_header(hdr, sizeof(hdr), 1024, &fh), TERN_E_TOO_LARGE);
	/* Exactly at the limit is fine: 1 + 1 + 126 = 128. */
	static const uint8_t ok[] = {0x30, 0x7E};
	assert_int_equal(tern_decode_fixed_header(ok, sizeof(ok), 128, &fh), TERN_OK);
	assert_int_equal(tern_decode_fixed_header(ok, sizeof(ok), 127, &fh), TERN_E_TOO_LARGE);
	/* 0 means the protocol limit only. */
	static const uint8_t max[] = {0x30, 0xFF, 0xFF, 0xFF, 0x7F};
	assert_int_equal(tern_decode_fixed_header(max, sizeof(max), 0, &fh), TERN_OK);
	assert_int_equal(fh.remaining, TERN_VBI_MAX);
}

static void test_fixed_header_type_0_is_malformed(void **state)
{
	(void)state;
	struct tern_fixed_header fh;
	static const uint8_t b[] = {0x00, 0x00};
	assert_int_equal(tern_decode_fixed_header(b, sizeof(b), 0, &fh), TERN_E_MALFORMED);
	/* Rejected from the first byte alone. */
	assert_int_equal(tern_decode_fixed_header(b, 1, 0, &fh), TERN_E_MALFORMED);
}

static void test_fixed_header_reserved_flags_MQTT_2_2_2_1_and_2(void **state)
{
	(void)state;
	struct tern_fixed_header fh;
	for (unsigned type = 1; type <= 15; type++) {
		for (unsigned flags = 0; flags < 16; flags++) {
			uint8_t b[2] = {(uint8_t)(type << 4 | flags), 0};
			enum tern_err e = tern_decode_fixed_header(b, 2, 0, &fh);
			bool want;
			if (type == TERN_PUBLISH) {
				unsigned qos = (flags >> 1) & 3;
				want = qos != 3 && !(qos == 0 && (flags & 8));
			} else if (type == TERN_PUBREL || type == TERN_SUBSCRIBE ||
			           type == TERN_UNSUBSCRIBE) {
				want = flags == 2;
			} else {
				/* A first packet's version is not known: the
				 * flags of a CONNECT are checked with its body
				 * (3.1 leaves them unused). */
				want = flags == 0 || type == TERN_CONNECT;
			}
			assert_int_equal(e, want ? TERN_OK : TERN_E_MALFORMED);
			if (want) {
				assert_int_equal(fh.type, type);
				assert_int_equal(fh.flags, flags);
			}
			/* Once the version is known, 3.1.1 and 5.0 check
			 * CONNECT's flags too. */
			e = tern_decode_fixed_header_v(b, 2, 0, TERN_V311, &fh);
			if (type == TERN_CONNECT)
				want = flags == 0;
			assert_int_equal(e, want ? TERN_OK : TERN_E_MALFORMED);
		}
	}
}

/* MQTT 3.1 gives every packet DUP, QoS and RETAIN bits: PUBREL, SUBSCRIBE
 * and UNSUBSCRIBE are QoS 1 and set DUP when re-sent; the other types do
 * not use them, so they are ignored (as mosquitto does for 3.1 clients). */
static void test_fixed_header_flags_v31(void **state)
{
	(void)state;
	struct tern_fixed_header fh;
	for (unsigned type = 1; type <= 15; type++) {
		for (unsigned flags = 0; flags < 16; flags++) {
			uint8_t b[2] = {(uint8_t)(type << 4 | flags), 0};
			enum tern_err e = tern_decode_fixed_header_v(b, 2, 0, TERN_V31, &fh);
			bool want;
			if (type == TERN_PUBLISH) {
				unsigned qos = (flags >> 1) & 3;
				want = qos != 3 && !(qos == 0 && (flags & 8));
			} else if (type == TERN_PUBREL || type == TERN_SUBSCRIBE ||
			           type == TERN_UNSUBSCRIBE) {
				want = (flags & 6) == 2;
			} else {
				want = true;
			}
			assert_int_equal(e, want ? TERN_OK : TERN_E_MALFORMED);
		}
	}
}

static void test_publish_qos3_is_malformed_MQTT_3_3_1_4(void **state)
{
	(void)state;
	struct tern_fixed_header fh;
	static const uint8_t b[] = {0x36, 0x00};
	assert_int_equal(tern_decode_fixed_header(b, 1, 0, &fh), TERN_E_MALFORMED);
}

static void test_publish_dup_on_qos0_is_malformed_MQTT_3_3_1_2(void **state)
{
	(void)state;
	struct tern_fixed_header fh;
	static const uint8_t b[] = {0x38, 0x00};
	assert_int_equal(tern_decode_fixed_header(b, 2, 0, &fh), TERN_E_MALFORMED);
	static const uint8_t ok[] = {0x3A, 0x00}; /* DUP with QoS 1 */
	assert_int_equal(tern_decode_fixed_header(ok, 2, 0, &fh), TERN_OK);
}

/* ---- UTF-8 [MQTT-1.5.4-1] [MQTT-1.5.4-2] ---- */

static void test_utf8_valid_strings(void **state)
{
	(void)state;
	assert_true(tern_utf8_valid(S("")));
	assert_true(tern_utf8_valid(S("hello/world")));
	assert_true(tern_utf8_valid(S("\xC2\x80")));          /* U+0080 */
	assert_true(tern_utf8_valid(S("\xDF\xBF")));          /* U+07FF */
	assert_true(tern_utf8_valid(S("\xE0\xA0\x80")));      /* U+0800 */
	assert_true(tern_utf8_valid(S("\xED\x9F\xBF")));      /* U+D7FF */
	assert_true(tern_utf8_valid(S("\xEE\x80\x80")));      /* U+E000 */
	assert_true(tern_utf8_valid(S("\xEF\xBB\xBF")));      /* BOM, kept */
	assert_true(tern_utf8_valid(S("\xEF\xBF\xBF")));      /* U+FFFF */
	assert_true(tern_utf8_valid(S("\xF0\x90\x80\x80")));  /* U+10000 */
	assert_true(tern_utf8_valid(S("\xF4\x8F\xBF\xBF")));  /* U+10FFFF */
	assert_true(tern_utf8_valid(S("\x01\x1F\x7F")));      /* controls: MAY reject */
	assert_true(tern_utf8_valid(S("A\xF0\xAA\x9B\x94"))); /* the 1.5.4 example */
}

static void test_utf8_null_character_is_invalid_MQTT_1_5_4_2(void **state)
{
	(void)state;
	assert_false(tern_utf8_valid((const uint8_t *)"a\0b", 3));
	assert_false(tern_utf8_valid((const uint8_t *)"\0", 1));
	assert_false(tern_utf8_valid(S("\xC0\x80"))); /* overlong U+0000 */
}

static void test_utf8_surrogates_are_invalid_MQTT_1_5_4_1(void **state)
{
	(void)state;
	assert_false(tern_utf8_valid(S("\xED\xA0\x80"))); /* U+D800 */
	assert_false(tern_utf8_valid(S("\xED\xBF\xBF"))); /* U+DFFF */
	assert_false(tern_utf8_valid(S("\xED\xA0\x80\xED\xB0\x80")));
}

static void test_utf8_ill_formed_is_invalid(void **state)
{
	(void)state;
	assert_false(tern_utf8_valid(S("\x80")));             /* lone continuation */
	assert_false(tern_utf8_valid(S("\xC1\xBF")));         /* overlong 2-byte */
	assert_false(tern_utf8_valid(S("\xE0\x9F\xBF")));     /* overlong 3-byte */
	assert_false(tern_utf8_valid(S("\xF0\x8F\xBF\xBF"))); /* overlong 4-byte */
	assert_false(tern_utf8_valid(S("\xF4\x90\x80\x80"))); /* > U+10FFFF */
	assert_false(tern_utf8_valid(S("\xF5\x80\x80\x80")));
	assert_false(tern_utf8_valid(S("\xFF")));
	assert_false(tern_utf8_valid(S("\xC3")));           /* truncated */
	assert_false(tern_utf8_valid(S("\xE2\x82")));       /* truncated */
	assert_false(tern_utf8_valid(S("\xE2\x28\xA1")));   /* bad continuation */
	assert_false(tern_utf8_valid(S("ab\xF0\x90\x80"))); /* truncated at end */
}

static void test_utf8_max_length_65535(void **state)
{
	(void)state;
	static uint8_t big[65536];
	memset(big, 'a', sizeof(big));
	assert_true(tern_utf8_valid(big, 65535));
	assert_false(tern_utf8_valid(big, 65536));
}

/* ---- topic names and filters (4.7) ---- */

static void test_topic_name_check(void **state)
{
	(void)state;
	assert_int_equal(tern_topic_name_check(S("a")), TERN_OK);
	assert_int_equal(tern_topic_name_check(S("/")), TERN_OK);
	assert_int_equal(tern_topic_name_check(S("a//b/")), TERN_OK);
	assert_int_equal(tern_topic_name_check(S("$SYS/x")), TERN_OK);
	assert_int_equal(tern_topic_name_check(S("sport/tennis player1")), TERN_OK);
	/* [MQTT-4.7.3-1] */
	assert_int_equal(tern_topic_name_check(S("")), TERN_E_TOPIC_NAME);
	/* [MQTT-3.3.2-2] [MQTT-4.7.1-1] */
	assert_int_equal(tern_topic_name_check(S("a/+")), TERN_E_TOPIC_NAME);
	assert_int_equal(tern_topic_name_check(S("#")), TERN_E_TOPIC_NAME);
	assert_int_equal(tern_topic_name_check(S("a#b")), TERN_E_TOPIC_NAME);
	assert_int_equal(tern_topic_name_check(S("a\xED\xA0\x80")), TERN_E_TOPIC_NAME);
	assert_int_equal(tern_topic_name_check((const uint8_t *)"a\0", 2), TERN_E_TOPIC_NAME);
}

static void test_topic_filter_check_MQTT_4_7_1_2_and_3(void **state)
{
	(void)state;
	static const char *const good[] = {
	        "#",
	        "+",
	        "a",
	        "a/b",
	        "a/#",
	        "+/+",
	        "/+",
	        "+/",
	        "a/+/c",
	        "/",
	        "sport/tennis/#",
	        "+/tennis/#",
	        "$SYS/#",
	        "a//b",
	        "$share/g/a",
	        "$share/g/#",
	        "$share/g/+/x",
	        "$share/g//",
	        "$share",
	        "$sharex/+",
	        "$share/g/$SYS/#",
	};
	static const char *const bad[] = {
	        "",          "a#",         "#/a",        "a/#/b",       "a+",          "+a",
	        "a/b+/c",    "++",         "##",         "$share/",     "$share//a",   "$share/g",
	        "$share/g/", "$share/+/a", "$share/#/a", "$share/g+/a", "$share/g/a#",
	};
	for (size_t i = 0; i < sizeof(good) / sizeof(good[0]); i++) {
		if (tern_topic_filter_check((const uint8_t *)good[i], strlen(good[i])) != TERN_OK)
			fail_msg("good filter rejected: '%s'", good[i]);
	}
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		if (tern_topic_filter_check((const uint8_t *)bad[i], strlen(bad[i])) !=
		    TERN_E_TOPIC_FILTER)
			fail_msg("bad filter accepted: '%s'", bad[i]);
	}
	assert_int_equal(tern_topic_filter_check(S("a/\xC0\x80")), TERN_E_TOPIC_FILTER);
}

static void test_topic_filter_share_split(void **state)
{
	(void)state;
	struct tern_bytes f = {(const uint8_t *)"$share/grp/a/+/c", 16}, g, r;
	assert_true(tern_topic_filter_share(f, &g, &r));
	assert_int_equal(g.len, 3);
	assert_memory_equal(g.data, "grp", 3);
	assert_int_equal(r.len, 5);
	assert_memory_equal(r.data, "a/+/c", 5);
	struct tern_bytes plain = {(const uint8_t *)"a/b", 3};
	assert_false(tern_topic_filter_share(plain, &g, &r));
	struct tern_bytes noslash = {(const uint8_t *)"$share/grp", 10};
	assert_false(tern_topic_filter_share(noslash, &g, &r));
	struct tern_bytes emptyname = {(const uint8_t *)"$share//x", 9};
	assert_true(tern_topic_filter_share(emptyname, &g, &r)); /* does not validate */
	assert_int_equal(g.len, 0);
}

/* ---- matching (4.7.1, 4.7.2) ---- */

static void test_topic_matches_table(void **state)
{
	(void)state;
	static const struct {
		const char *filter, *topic;
		bool match;
	} cases[] = {
	        /* 4.7.1.2 examples */
	        {"sport/tennis/player1/#", "sport/tennis/player1", true},
	        {"sport/tennis/player1/#", "sport/tennis/player1/ranking", true},
	        {"sport/tennis/player1/#", "sport/tennis/player1/score/wimbledon", true},
	        {"sport/#", "sport", true},
	        {"#", "sport/tennis", true},
	        {"#", "/", true},
	        {"a/#", "a", true},
	        {"a/#", "a/", true},
	        {"a/#", "ab", false},
	        {"a/b/#", "a", false},
	        /* 4.7.1.3 examples */
	        {"sport/tennis/+", "sport/tennis/player1", true},
	        {"sport/tennis/+", "sport/tennis/player2", true},
	        {"sport/tennis/+", "sport/tennis/player1/ranking", false},
	        {"sport/+", "sport", false},
	        {"sport/+", "sport/", true},
	        {"+/+", "/finance", true},
	        {"/+", "/finance", true},
	        {"+", "/finance", false},
	        {"+", "a", true},
	        {"+/#", "a", true},
	        {"+/b/#", "a/b", true},
	        {"a/+/c", "a/x/c", true},
	        {"a/+/c", "a//c", true},
	        {"a/+/c", "a/x/d", false},
	        /* plain levels */
	        {"a/b", "a/b", true},
	        {"a/b", "a/b/", false},
	        {"a/b", "a", false},
	        {"a", "a/b", false},
	        {"a//b", "a//b", true},
	        {"A", "a", false},
	        /* [MQTT-4.7.2-1] */
	        {"#", "$SYS/broker", false},
	        {"+/monitor/Clients", "$SYS/monitor/Clients", false},
	        {"$SYS/#", "$SYS/monitor/Clients", true},
	        {"$SYS/monitor/+", "$SYS/monitor/Clients", true},
	        {"$SYS/#", "$SYS", true},
	        {"a/#", "a/$b", true},
	};
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		bool m = tern_topic_matches(
		        (const uint8_t *)cases[i].filter, strlen(cases[i].filter),
		        (const uint8_t *)cases[i].topic, strlen(cases[i].topic));
		if (m != cases[i].match)
			fail_msg("'%s' vs '%s': got %d", cases[i].filter, cases[i].topic, m);
	}
}

/* ---- error tables ---- */

static void test_err_reason_mapping(void **state)
{
	(void)state;
	assert_int_equal(tern_err_reason(TERN_E_MALFORMED), 0x81);
	assert_int_equal(tern_err_reason(TERN_E_PROTOCOL), 0x82);
	assert_int_equal(tern_err_reason(TERN_E_TOO_LARGE), 0x95);
	assert_int_equal(tern_err_reason(TERN_E_TOPIC_NAME), 0x90);
	assert_int_equal(tern_err_reason(TERN_E_TOPIC_FILTER), 0x8F);
	assert_int_equal(tern_err_reason(TERN_E_UNSUPPORTED_VERSION), 0x84);
	assert_int_equal(tern_err_reason(TERN_E_NOMEM), 0x83);
	assert_int_equal(tern_err_reason(TERN_E_SYS), 0x80);
	assert_int_equal(tern_err_reason(TERN_E_INVALID), 0x80);
}

static void test_strerror_and_packet_name_never_null(void **state)
{
	(void)state;
	for (int e = -20; e <= 1; e++) {
		const char *s = tern_strerror((enum tern_err)e);
		assert_non_null(s);
		assert_true(strlen(s) > 0);
	}
	assert_string_equal(tern_strerror(TERN_E_MALFORMED), "malformed packet");
	assert_string_equal(tern_packet_name(TERN_CONNECT), "CONNECT");
	assert_string_equal(tern_packet_name(TERN_AUTH), "AUTH");
	assert_string_equal(tern_packet_name((enum tern_packet_type)0), "UNKNOWN");
	assert_string_equal(tern_packet_name((enum tern_packet_type)16), "UNKNOWN");
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	        cmocka_unit_test(test_vbi_decode_boundaries),
	        cmocka_unit_test(test_vbi_five_bytes_is_malformed_MQTT_1_5_5_1),
	        cmocka_unit_test(test_vbi_not_minimal_is_malformed_MQTT_1_5_5_1),
	        cmocka_unit_test(test_vbi_incomplete),
	        cmocka_unit_test(test_vbi_encode_boundaries),
	        cmocka_unit_test(test_fixed_header_too_large_before_body),
	        cmocka_unit_test(test_fixed_header_type_0_is_malformed),
	        cmocka_unit_test(test_fixed_header_reserved_flags_MQTT_2_2_2_1_and_2),
	        cmocka_unit_test(test_fixed_header_flags_v31),
	        cmocka_unit_test(test_publish_qos3_is_malformed_MQTT_3_3_1_4),
	        cmocka_unit_test(test_publish_dup_on_qos0_is_malformed_MQTT_3_3_1_2),
	        cmocka_unit_test(test_utf8_valid_strings),
	        cmocka_unit_test(test_utf8_null_character_is_invalid_MQTT_1_5_4_2),
	        cmocka_unit_test(test_utf8_surrogates_are_invalid_MQTT_1_5_4_1),
	        cmocka_unit_test(test_utf8_ill_formed_is_invalid),
	        cmocka_unit_test(test_utf8_max_length_65535),
	        cmocka_unit_test(test_topic_name_check),
	        cmocka_unit_test(test_topic_filter_check_MQTT_4_7_1_2_and_3),
	        cmocka_unit_test(test_topic_filter_share_split),
	        cmocka_unit_test(test_topic_matches_table),
	        cmocka_unit_test(test_err_reason_mapping),
	        cmocka_unit_test(test_strerror_and_packet_name_never_null),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
