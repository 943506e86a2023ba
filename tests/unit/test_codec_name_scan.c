/*
 * test_codec_name_scan.c - the one-pass check of a topic name's bytes
 * (tern__topic_name_scan(), used by the PUBLISH and will-topic decoders,
 * tern_topic_name_check() and the PUBLISH encoder), and what
 * tern_decode_packet() clears.
 *
 * The scan replaced four walks over a topic (UTF-8, control characters,
 * wildcards, control characters again). To show that it changed no
 * behaviour, every string of up to three bytes of an alphabet holding each
 * byte with a meaning (ASCII, '/', the wildcards, NUL, C0 and C1 controls,
 * DEL, every kind of lead and continuation byte, overlong and surrogate
 * leads) is put in a PUBLISH and decoded, and the result is compared with a
 * reference written the way the code before was: a byte-loop UTF-8
 * validator (RFC 3629 and [MQTT-1.5.4-1] [MQTT-1.5.4-2]), a control
 * character loop, then the wildcard rule [MQTT-3.3.2-2], with ill-formed
 * bytes reported as malformed before a wildcard is.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "tern/codec.h"

/* ---- the reference: the checks as they were written before ---- */

static bool ref_utf8_valid(const uint8_t *s, size_t len)
{
	size_t i = 0;
	while (i < len) {
		uint8_t c = s[i];
		if (c < 0x80u) {
			if (c == 0)
				return false;
			i++;
			continue;
		}
		size_t n;
		uint32_t cp, min;
		if (c >= 0xC2u && c <= 0xDFu) {
			n = 1;
			cp = c & 0x1Fu;
			min = 0x80u;
		} else if ((c & 0xF0u) == 0xE0u) {
			n = 2;
			cp = c & 0x0Fu;
			min = 0x800u;
		} else if (c >= 0xF0u && c <= 0xF4u) {
			n = 3;
			cp = c & 0x07u;
			min = 0x10000u;
		} else {
			return false;
		}
		if (n > len - i - 1)
			return false;
		for (size_t k = 1; k <= n; k++) {
			uint8_t cc = s[i + k];
			if ((cc & 0xC0u) != 0x80u)
				return false;
			cp = (cp << 6) | (cc & 0x3Fu);
		}
		if (cp < min || cp > 0x10FFFFu || (cp >= 0xD800u && cp <= 0xDFFFu))
			return false;
		i += n + 1;
	}
	return true;
}

static bool ref_no_controls(const uint8_t *s, size_t len)
{
	for (size_t i = 0; i < len; i++) {
		if (s[i] < 0x20u || s[i] == 0x7Fu)
			return false;
		if (s[i] == 0xC2u && i + 1 < len && s[i + 1] <= 0x9Fu)
			return false;
	}
	return true;
}

static bool ref_wildcard(const uint8_t *s, size_t len)
{
	for (size_t i = 0; i < len; i++)
		if (s[i] == '+' || s[i] == '#')
			return true;
	return false;
}

/* What decoding a PUBLISH with topic t (no alias) should give. */
static enum tern_err ref_decode(const uint8_t *t, size_t len, uint8_t version)
{
	if (!ref_utf8_valid(t, len) || !ref_no_controls(t, len))
		return TERN_E_MALFORMED;
	if (len == 0)
		return version == TERN_V5 ? TERN_E_PROTOCOL : TERN_E_TOPIC_NAME;
	return ref_wildcard(t, len) ? TERN_E_TOPIC_NAME : TERN_OK;
}

/* ---- helpers ---- */

/* Builds a PUBLISH with topic t: QoS qos (packet id 7 unless truncated),
 * an empty v5 property block, payload "p". Returns the body length. */
static size_t publish_body(uint8_t *b, const uint8_t *t, size_t len, uint8_t qos, uint8_t version,
                           bool truncated)
{
	size_t n = 0;
	b[n++] = (uint8_t)(len >> 8);
	b[n++] = (uint8_t)len;
	memcpy(b + n, t, len);
	n += len;
	if (truncated)
		return n + (qos > 0 ? 1 : 0); /* half a packet id */
	if (qos > 0) {
		b[n++] = 0;
		b[n++] = 7;
	}
	if (version == TERN_V5)
		b[n++] = 0;
	b[n++] = 'p';
	return n;
}

static enum tern_err decode_publish(const uint8_t *t, size_t len, uint8_t qos, uint8_t version,
                                    bool truncated, struct tern_packet *pkt)
{
	static uint8_t body[32]; /* the decoded fields point into it */
	size_t n = publish_body(body, t, len, qos, version, truncated);
	struct tern_fixed_header fh = {
	        .type = TERN_PUBLISH, .flags = (uint8_t)(qos << 1), .remaining = (uint32_t)n};
	return tern_decode_packet(&fh, body, version, pkt);
}

static const uint8_t alphabet[] = {'a',  '/',  '+',  '#',  '$',  ' ',  0x00, 0x01, 0x1F,
                                   0x7F, 0x80, 0x9F, 0xA0, 0xBF, 0xC1, 0xC2, 0xC3, 0xDF,
                                   0xE0, 0xED, 0xEF, 0xF0, 0xF4, 0xF5, 0xFF};
#define N_ALPHA (sizeof(alphabet) / sizeof(alphabet[0]))

/* Calls fn on every string of up to max bytes of the alphabet. */
static void each_string(size_t max, void (*fn)(const uint8_t *, size_t))
{
	uint8_t s[4];
	size_t idx[4] = {0};
	for (size_t len = 0; len <= max; len++) {
		memset(idx, 0, sizeof(idx));
		for (;;) {
			for (size_t i = 0; i < len; i++)
				s[i] = alphabet[idx[i]];
			fn(s, len);
			size_t k = 0;
			while (k < len && ++idx[k] == N_ALPHA)
				idx[k++] = 0;
			if (k == len)
				break;
		}
	}
}

/* ---- tests ---- */

static void check_decode(const uint8_t *t, size_t len)
{
	static const uint8_t versions[] = {TERN_V311, TERN_V5};
	for (size_t v = 0; v < 2; v++) {
		for (uint8_t qos = 0; qos <= 1; qos++) {
			struct tern_packet pkt;
			enum tern_err want = ref_decode(t, len, versions[v]);
			assert_int_equal(decode_publish(t, len, qos, versions[v], false, &pkt),
			                 want);
			if (want == TERN_OK) {
				assert_int_equal(pkt.u.publish.topic.len, len);
				assert_memory_equal(pkt.u.publish.topic.data, t, len);
			}
			/* Cut inside the packet id: malformed, whatever the
			 * topic holds (the wildcard rule is checked last). */
			if (qos == 1)
				assert_int_equal(
				        decode_publish(t, len, qos, versions[v], true, &pkt),
				        TERN_E_MALFORMED);
		}
	}
}

static void test_publish_topic_decodes_as_before_on_all_short_strings(void **state)
{
	each_string(3, check_decode);
}

static void check_name_check(const uint8_t *t, size_t len)
{
	bool ok = len > 0 && ref_utf8_valid(t, len) && ref_no_controls(t, len) &&
	          !ref_wildcard(t, len);
	assert_int_equal(tern_topic_name_check(t, len), ok ? TERN_OK : TERN_E_TOPIC_NAME);
	assert_int_equal(tern_utf8_valid(t, len), ref_utf8_valid(t, len));
	assert_int_equal(tern_utf8_name_valid(t, len),
	                 ref_utf8_valid(t, len) && ref_no_controls(t, len));
	/* The encoder takes exactly the names the decoder takes. */
	struct tern_packet p = {.type = TERN_PUBLISH};
	p.u.publish.topic = (struct tern_bytes){t, (uint32_t)len};
	p.u.publish.qos = 1;
	p.u.publish.packet_id = 1;
	bool sized = tern_packet_size(&p, TERN_V311) != 0;
	assert_int_equal(sized, ok);
	p.u.publish.props.present = TERN_PROP_BIT(TERN_PROP_MESSAGE_EXPIRY);
	p.u.publish.props.message_expiry = 5;
	assert_int_equal(tern_packet_size(&p, TERN_V5) != 0, ok);
}

static void test_name_check_and_encoder_agree_with_the_reference(void **state)
{
	each_string(3, check_name_check);
}

static void test_long_and_four_byte_names(void **state)
{
	/* U+1F600 (F0 9F 98 80) is fine; U+110000 (F4 90 80 80) is not. */
	static const uint8_t smile[] = {'a', '/', 0xF0, 0x9F, 0x98, 0x80};
	static const uint8_t above[] = {'a', 0xF4, 0x90, 0x80, 0x80};
	assert_int_equal(tern_topic_name_check(smile, sizeof(smile)), TERN_OK);
	assert_int_equal(tern_topic_name_check(above, sizeof(above)), TERN_E_TOPIC_NAME);
	/* A malformed byte after a wildcard still makes the packet
	 * malformed. */
	static const uint8_t wild_then_bad[] = {'a', '+', 'b', 0x80};
	struct tern_packet pkt;
	assert_int_equal(decode_publish(wild_then_bad, 4, 0, TERN_V311, false, &pkt),
	                 TERN_E_MALFORMED);
	/* The longest string there is, and one byte more. */
	uint8_t *big = malloc(65536);
	assert_non_null(big);
	memset(big, 'x', 65536);
	assert_int_equal(tern_topic_name_check(big, 65535), TERN_OK);
	assert_int_equal(tern_topic_name_check(big, 65536), TERN_E_TOPIC_NAME);
	big[40000] = '#';
	assert_int_equal(tern_topic_name_check(big, 65535), TERN_E_TOPIC_NAME);
	free(big);
}

static void test_will_topic_rules_unchanged(void **state)
{
	/* CONNECT 3.1.1 with a will: client id "c", will topic t, will
	 * payload "w". */
	struct {
		const char *topic;
		size_t len;
		enum tern_err want;
	} cases[] = {
	        {"a/b", 3, TERN_OK},
	        {"a/+", 3, TERN_E_TOPIC_NAME},
	        {"", 0, TERN_E_TOPIC_NAME},
	        {"a\x01", 2, TERN_E_MALFORMED},
	        {"a\xC2\x85", 3, TERN_E_MALFORMED},
	        {"#\xFF", 2, TERN_E_MALFORMED},
	};
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		uint8_t b[64];
		size_t n = 0;
		static const uint8_t head[] = {0, 4, 'M', 'Q', 'T', 'T', 4, 0x06, 0, 60, 0, 1, 'c'};
		memcpy(b, head, sizeof(head));
		n = sizeof(head);
		b[n++] = 0;
		b[n++] = (uint8_t)cases[i].len;
		memcpy(b + n, cases[i].topic, cases[i].len);
		n += cases[i].len;
		b[n++] = 0;
		b[n++] = 1;
		b[n++] = 'w';
		struct tern_fixed_header fh = {.type = TERN_CONNECT, .remaining = (uint32_t)n};
		struct tern_packet pkt;
		assert_int_equal(tern_decode_packet(&fh, b, 0, &pkt), cases[i].want);
	}
}

/* The decoder clears what the packet's type fills, so nothing of an
 * earlier use of the struct shows through. */
static void test_decode_clears_the_member_of_the_type(void **state)
{
	struct tern_packet pkt;
	struct tern_props zero;
	memset(&zero, 0, sizeof(zero));

	memset(&pkt, 0xAA, sizeof(pkt));
	assert_int_equal(decode_publish((const uint8_t *)"a/b", 3, 0, TERN_V311, false, &pkt),
	                 TERN_OK);
	assert_int_equal(pkt.type, TERN_PUBLISH);
	assert_int_equal(pkt.u.publish.packet_id, 0);
	assert_false(pkt.u.publish.dup);
	assert_false(pkt.u.publish.retain);
	assert_memory_equal(&pkt.u.publish.props, &zero, sizeof(zero));
	assert_int_equal(pkt.u.publish.payload.len, 1);

	memset(&pkt, 0xAA, sizeof(pkt));
	static const uint8_t ack[] = {0, 9};
	struct tern_fixed_header fh = {.type = TERN_PUBACK, .remaining = 2};
	assert_int_equal(tern_decode_packet(&fh, ack, TERN_V311, &pkt), TERN_OK);
	assert_int_equal(pkt.u.ack.packet_id, 9);
	assert_int_equal(pkt.u.ack.reason, 0);
	assert_memory_equal(&pkt.u.ack.props, &zero, sizeof(zero));

	memset(&pkt, 0xAA, sizeof(pkt));
	fh = (struct tern_fixed_header){.type = TERN_PINGREQ, .remaining = 0};
	assert_int_equal(tern_decode_packet(&fh, NULL, TERN_V311, &pkt), TERN_OK);
	assert_int_equal(pkt.type, TERN_PINGREQ);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	        cmocka_unit_test(test_publish_topic_decodes_as_before_on_all_short_strings),
	        cmocka_unit_test(test_name_check_and_encoder_agree_with_the_reference),
	        cmocka_unit_test(test_long_and_four_byte_names),
	        cmocka_unit_test(test_will_topic_rules_unchanged),
	        cmocka_unit_test(test_decode_clears_the_member_of_the_type),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
