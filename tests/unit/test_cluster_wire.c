/*
 * test_cluster_wire.c - unit tests of the cross-node message format
 * (src/cluster/wire.c).
 *
 * Round trips first: the bytes of a plain message, checked one by one
 * against the layout of wire.h; then every combination of QoS, retain and
 * the forwarded properties, each present or absent (the empty content
 * type and correlation data of MQTT 5.0 section 3.3.2.3 stay present),
 * with the decoded message compared field by field and encoded again to
 * the same bytes; the expiry as seconds left. Then every malformed input
 * we can name, and every truncation of a full message, each refused.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "cluster/wire.h"
#include "tern/codec.h"
#include "util/buf.h"
#include "util/msg.h"

#define NOW 1000000u

static struct tern_bytes B(const char *s) {
	return (struct tern_bytes){(const uint8_t *)s, (uint32_t)strlen(s)};
}

/* What a test message carries. */
struct spec {
	uint8_t qos;
	bool retain;
	bool pfi, expiry, ct, rt, cd, users;
	const char *topic, *payload, *content_type, *response_topic, *correlation;
	uint32_t expiry_s;
};

/* The user properties of spec messages: a repeated name, an empty value,
 * and non-ASCII UTF-8, in this order. */
static const char *const user_kv[][2] = {{"k", "v1"}, {"k", ""}, {"\xc3\xa9t\xc3\xa9", "x y"}};
#define N_USER 3

static size_t users_block(uint8_t *out, size_t cap)
{
	size_t len = 0;
	for (int i = 0; i < N_USER; i++)
		assert_int_equal(
		        tern_user_prop_encode(out, cap, &len, B(user_kv[i][0]), B(user_kv[i][1])),
		        TERN_OK);
	return len;
}

static struct msg *make(const struct spec *s)
{
	struct tern_props p = {0};
	static uint8_t users[256];
	if (s->pfi) {
		p.present |= TERN_PROP_BIT(TERN_PROP_PAYLOAD_FORMAT);
		p.payload_format = 1;
	}
	if (s->expiry) {
		p.present |= TERN_PROP_BIT(TERN_PROP_MESSAGE_EXPIRY);
		p.message_expiry = s->expiry_s;
	}
	if (s->ct) {
		p.present |= TERN_PROP_BIT(TERN_PROP_CONTENT_TYPE);
		p.content_type = B(s->content_type);
	}
	if (s->rt) {
		p.present |= TERN_PROP_BIT(TERN_PROP_RESPONSE_TOPIC);
		p.response_topic = B(s->response_topic);
	}
	if (s->cd) {
		p.present |= TERN_PROP_BIT(TERN_PROP_CORRELATION_DATA);
		p.correlation_data = B(s->correlation);
	}
	if (s->users) {
		/* msg_new() walks the decoded property block (raw). */
		p.raw = (struct tern_bytes){users, (uint32_t)users_block(users, sizeof(users))};
		p.user_raw = p.raw;
		p.n_user = N_USER;
	}
	struct msg *m = msg_new(B(s->topic), B(s->payload), s->qos, s->retain, &p, 42, NOW);
	assert_non_null(m);
	return m;
}

static void same_bytes(struct tern_bytes a, struct tern_bytes b)
{
	assert_int_equal(a.len, b.len);
	if (a.len)
		assert_memory_equal(a.data, b.data, a.len);
}

/* Encodes m at now, checks the size, decodes at now2, and encodes the
 * result again (at now2) to the same bytes. Returns the decoded message. */
static struct msg *trip(const struct msg *m, uint64_t now, uint64_t now2, struct buf *enc)
{
	*enc = (struct buf){0};
	assert_int_equal(wire_encode(enc, m, now, 0), TERN_OK);
	assert_int_equal(buf_used(enc), wire_size(m));
	assert_int_equal(enc->data[0], WIRE_VERSION);
	struct msg *d = NULL;
	assert_int_equal(wire_decode(enc->data, enc->len, now2, &d), TERN_OK);
	assert_non_null(d);
	struct buf again = {0};
	assert_int_equal(wire_encode(&again, d, now2, 0), TERN_OK);
	assert_int_equal(again.len, enc->len);
	assert_memory_equal(again.data, enc->data, enc->len);
	buf_free(&again);
	return d;
}

static void test_plain_message_bytes(void **state)
{
	(void)state;
	struct spec s = {.qos = 1, .topic = "a/b", .payload = "hi"};
	struct msg *m = make(&s);
	struct buf enc;
	struct msg *d = trip(m, NOW, NOW, &enc);
	static const uint8_t want[] = {1, 0x01, 0, 3, 'a', '/', 'b', 0, 0, 0, 0, 'h', 'i'};
	assert_int_equal(enc.len, sizeof(want));
	assert_memory_equal(enc.data, want, sizeof(want));
	same_bytes(d->topic, m->topic);
	same_bytes(d->payload, m->payload);
	assert_int_equal(d->qos, 1);
	assert_false(d->retain);
	/* The receiver builds its own message: no publishing session there. */
	assert_int_equal(d->origin, 0);
	assert_int_equal(d->expire_at, 0);
	assert_false(d->has_content_type);
	assert_false(d->has_payload_format);
	assert_int_equal(d->response_topic.len, 0);
	assert_null(d->correlation_data.data);
	assert_int_equal(d->n_user, 0);
	buf_free(&enc);
	msg_unref(d);
	msg_unref(m);
}

static void test_zero_length_payload(void **state)
{
	(void)state;
	struct spec s = {.qos = 0, .retain = true, .topic = "t", .payload = ""};
	struct msg *m = make(&s);
	struct buf enc;
	struct msg *d = trip(m, NOW, NOW, &enc);
	assert_int_equal(enc.len, 9);
	assert_int_equal(enc.data[1], 0x04);
	assert_int_equal(d->payload.len, 0);
	assert_true(d->retain);
	buf_free(&enc);
	msg_unref(d);
	msg_unref(m);
}

/* Every QoS, retain and forwarded property on and off: 3 * 2^7 messages. */
static void test_every_property_with_and_without_MQTT_3_3_2_3(void **state)
{
	(void)state;
	for (unsigned combo = 0; combo < 3u * 128u; combo++) {
		unsigned bits = combo % 128;
		struct spec s = {
		        .qos = (uint8_t)(combo / 128),
		        .retain = bits & 1,
		        .pfi = bits & 2,
		        .expiry = bits & 4,
		        .ct = bits & 8,
		        .rt = bits & 16,
		        .cd = bits & 32,
		        .users = bits & 64,
		        .topic = "sensors/\xe6\x97\xa5/t.1 *",
		        .payload = "{\"v\":1}",
		        .content_type = "application/json",
		        .response_topic = "reply/to/me",
		        .correlation = "\x01\x02\x00\xff",
		        .expiry_s = 60,
		};
		struct msg *m = make(&s);
		struct buf enc;
		struct msg *d = trip(m, NOW, NOW, &enc);
		same_bytes(d->topic, m->topic);
		same_bytes(d->payload, m->payload);
		assert_int_equal(d->qos, s.qos);
		assert_int_equal(d->retain, s.retain);
		assert_int_equal(d->has_payload_format, s.pfi);
		assert_int_equal(d->payload_format, s.pfi ? 1 : 0);
		assert_int_equal(d->expire_at, s.expiry ? NOW + 60000u : 0);
		assert_int_equal(d->has_content_type, s.ct);
		same_bytes(d->content_type, m->content_type);
		same_bytes(d->response_topic, m->response_topic);
		assert_int_equal(d->correlation_data.data != NULL, s.cd);
		same_bytes(d->correlation_data, m->correlation_data);
		assert_int_equal(d->n_user, s.users ? N_USER : 0);
		same_bytes(d->user_raw, m->user_raw);
		/* The user properties in order, repeated names kept. */
		if (s.users) {
			struct tern_props p = {.raw = d->user_raw};
			struct tern_bytes k, v;
			size_t cur = 0;
			for (int i = 0; i < N_USER; i++) {
				assert_true(tern_props_next_user(&p, &cur, &k, &v));
				same_bytes(k, B(user_kv[i][0]));
				same_bytes(v, B(user_kv[i][1]));
			}
			assert_false(tern_props_next_user(&p, &cur, &k, &v));
		}
		buf_free(&enc);
		msg_unref(d);
		msg_unref(m);
	}
}

/* An empty content type and empty correlation data are still present
 * (a zero-length property is a property). */
static void test_empty_content_type_and_correlation_data_kept(void **state)
{
	(void)state;
	struct spec s = {.topic = "t",
	                 .payload = "p",
	                 .ct = true,
	                 .content_type = "",
	                 .cd = true,
	                 .correlation = ""};
	struct msg *m = make(&s);
	assert_true(m->has_content_type);
	assert_non_null(m->correlation_data.data);
	struct buf enc;
	struct msg *d = trip(m, NOW, NOW, &enc);
	assert_int_equal(enc.data[1], 0xA0);
	assert_true(d->has_content_type);
	assert_int_equal(d->content_type.len, 0);
	assert_non_null(d->correlation_data.data);
	assert_int_equal(d->correlation_data.len, 0);
	buf_free(&enc);
	msg_unref(d);
	msg_unref(m);
}

/* The expiry goes as seconds left when sent [MQTT-3.3.2-6], rounded up,
 * and restarts from the receiver's clock. */
static void test_expiry_travels_as_seconds_left(void **state)
{
	(void)state;
	struct spec s = {.topic = "t", .payload = "p", .expiry = true, .expiry_s = 10};
	struct msg *m = make(&s);
	assert_int_equal(m->expire_at, NOW + 10000u);
	/* 6.5 s left at send: 7 s on the wire. */
	struct buf enc = {0};
	assert_int_equal(wire_encode(&enc, m, NOW + 3500u, 0), TERN_OK);
	static const uint8_t want[] = {1, 0x10, 0, 1, 't', 0, 0, 0, 7, 0, 0, 0, 0, 'p'};
	assert_int_equal(enc.len, sizeof(want));
	assert_memory_equal(enc.data, want, sizeof(want));
	/* The receiver's monotonic clock is another machine's. */
	struct msg *d = NULL;
	assert_int_equal(wire_decode(enc.data, enc.len, 5u, &d), TERN_OK);
	assert_int_equal(d->expire_at, 5u + 7000u);
	bool expired;
	assert_int_equal(msg_expiry_left(d, 5u, &expired), 7);
	assert_false(expired);
	msg_unref(d);
	buf_free(&enc);
	/* Expired before it was sent: 0 left, expired on arrival. */
	assert_int_equal(wire_encode(&enc, m, NOW + 10000u, 0), TERN_OK);
	assert_int_equal(enc.data[5] | enc.data[6] | enc.data[7] | enc.data[8], 0);
	assert_int_equal(wire_decode(enc.data, enc.len, NOW, &d), TERN_OK);
	msg_expiry_left(d, NOW, &expired);
	assert_true(expired);
	msg_unref(d);
	buf_free(&enc);
	msg_unref(m);
}

static void test_encode_appends_or_leaves_the_buffer_alone(void **state)
{
	(void)state;
	struct spec s = {.topic = "t", .payload = "payload"};
	struct msg *m = make(&s);
	struct buf b = {0};
	assert_int_equal(buf_append(&b, "xy", 2, 0), TERN_OK);
	assert_int_equal(wire_encode(&b, m, NOW, 0), TERN_OK);
	assert_int_equal(b.len, 2 + wire_size(m));
	assert_memory_equal(b.data, "xy", 2);
	struct msg *d = NULL;
	assert_int_equal(wire_decode(b.data + 2, b.len - 2, NOW, &d), TERN_OK);
	same_bytes(d->payload, B("payload"));
	msg_unref(d);
	buf_free(&b);
	/* A buffer that would grow past its bound: refused, nothing written. */
	assert_int_equal(wire_encode(&b, m, NOW, wire_size(m) - 1), TERN_E_LIMIT);
	assert_int_equal(b.len, 0);
	assert_int_equal(wire_encode(&b, m, NOW, wire_size(m)), TERN_OK);
	buf_free(&b);
	/* A message no MQTT packet can carry. */
	struct msg bad = *m;
	bad.qos = 3;
	assert_int_equal(wire_encode(&b, &bad, NOW, 0), TERN_E_INVALID);
	bad = *m;
	bad.has_payload_format = true;
	bad.payload_format = 2;
	assert_int_equal(wire_encode(&b, &bad, NOW, 0), TERN_E_INVALID);
	static uint8_t big[70000];
	bad = *m;
	bad.topic = (struct tern_bytes){big, sizeof(big)};
	assert_int_equal(wire_encode(&b, &bad, NOW, 0), TERN_E_INVALID);
	assert_int_equal(b.len, 0);
	msg_unref(m);
}

/* Decodes n bytes and expects err (and no message). */
static void refused(const uint8_t *p, size_t n, enum tern_err err)
{
	struct msg *d = (struct msg *)1;
	/* A copy of exactly n bytes, so ASan sees any read past them. */
	uint8_t *c = malloc(n ? n : 1);
	assert_non_null(c);
	if (n)
		memcpy(c, p, n);
	assert_int_equal(wire_decode(c, n, NOW, &d), err);
	assert_null(d);
	free(c);
}

#define REFUSED(...)                                                                               \
	do {                                                                                       \
		static const uint8_t in_[] = {__VA_ARGS__};                                        \
		refused(in_, sizeof(in_), TERN_E_MALFORMED);                                       \
	} while (0)

static void test_malformed_inputs_are_refused(void **state)
{
	(void)state;
	refused(NULL, 0, TERN_E_MALFORMED);
	/* Versions we do not know. */
	static const uint8_t v0[] = {0, 0, 0, 1, 't', 0, 0, 0, 0};
	static const uint8_t v2[] = {2, 0, 0, 1, 't', 0, 0, 0, 0};
	refused(v0, sizeof(v0), TERN_E_UNSUPPORTED_VERSION);
	refused(v2, sizeof(v2), TERN_E_UNSUPPORTED_VERSION);
	/* QoS 3, with and without retain. */
	REFUSED(1, 0x03, 0, 1, 't', 0, 0, 0, 0);
	REFUSED(1, 0x07, 0, 1, 't', 0, 0, 0, 0);
	/* The topic: empty, wildcards, bad UTF-8, a control character, NUL, a
	 * surrogate, a length past the end. */
	REFUSED(1, 0, 0, 0, 0, 0, 0, 0);
	REFUSED(1, 0, 0, 1, '+', 0, 0, 0, 0);
	REFUSED(1, 0, 0, 3, 'a', '/', '#', 0, 0, 0, 0);
	REFUSED(1, 0, 0, 1, 0xff, 0, 0, 0, 0);
	REFUSED(1, 0, 0, 2, 0xc3, 'x', 0, 0, 0, 0);
	REFUSED(1, 0, 0, 1, 0x01, 0, 0, 0, 0);
	REFUSED(1, 0, 0, 1, 0x00, 0, 0, 0, 0);
	REFUSED(1, 0, 0, 3, 0xed, 0xa0, 0x80, 0, 0, 0, 0);
	REFUSED(1, 0, 0, 9, 't', 0, 0, 0, 0);
	REFUSED(1, 0, 0xff, 0xff, 't');
	/* Payload format indicator 2. */
	REFUSED(1, 0x08, 0, 1, 't', 2, 0, 0, 0, 0);
	/* Content type: bad UTF-8, NUL, length past the end. */
	REFUSED(1, 0x20, 0, 1, 't', 0, 1, 0xfe, 0, 0, 0, 0);
	REFUSED(1, 0x20, 0, 1, 't', 0, 1, 0x00, 0, 0, 0, 0);
	REFUSED(1, 0x20, 0, 1, 't', 0, 9, 'x', 0, 0, 0, 0);
	/* Response topic: empty, a wildcard [MQTT-3.3.2-14], bad UTF-8. */
	REFUSED(1, 0x40, 0, 1, 't', 0, 0, 0, 0, 0, 0);
	REFUSED(1, 0x40, 0, 1, 't', 0, 1, '#', 0, 0, 0, 0);
	REFUSED(1, 0x40, 0, 1, 't', 0, 1, 0x80, 0, 0, 0, 0);
	/* Correlation data past the end. */
	REFUSED(1, 0x80, 0, 1, 't', 0, 9, 1, 2, 0, 0, 0, 0);
	/* User properties: length past the end, another property id, an entry
	 * cut short, a value past the block, bad UTF-8 in name or value. */
	REFUSED(1, 0, 0, 1, 't', 0, 0, 0, 9, 0x26, 0, 0, 0, 0);
	REFUSED(1, 0, 0, 1, 't', 0, 0, 0, 5, 0x03, 0, 0, 0, 0);
	REFUSED(1, 0, 0, 1, 't', 0, 0, 0, 3, 0x26, 0, 0);
	REFUSED(1, 0, 0, 1, 't', 0, 0, 0, 5, 0x26, 0, 0, 0, 1, 'p', 'a', 'y');
	REFUSED(1, 0, 0, 1, 't', 0, 0, 0, 6, 0x26, 0, 1, 0xff, 0, 0);
	REFUSED(1, 0, 0, 1, 't', 0, 0, 0, 6, 0x26, 0, 0, 0, 1, 0xc0);
	REFUSED(1, 0, 0, 1, 't', 0, 0, 0, 6, 0x26, 0, 0, 0, 1, 0x00);
	/* The user properties length is four bytes, cut short. */
	REFUSED(1, 0, 0, 1, 't', 0, 0, 0);
}

/* Every prefix of a full message that ends before its payload is refused;
 * every longer one decodes, with a shorter payload. */
static void test_every_truncation_is_refused(void **state)
{
	(void)state;
	struct spec s = {.qos = 2,
	                 .retain = true,
	                 .pfi = true,
	                 .expiry = true,
	                 .expiry_s = 5,
	                 .ct = true,
	                 .rt = true,
	                 .cd = true,
	                 .users = true,
	                 .topic = "a/b",
	                 .payload = "xyz",
	                 .content_type = "text/plain",
	                 .response_topic = "r",
	                 .correlation = "id"};
	struct msg *m = make(&s);
	struct buf enc = {0};
	assert_int_equal(wire_encode(&enc, m, NOW, 0), TERN_OK);
	size_t header = enc.len - 3;
	for (size_t n = 0; n < header; n++)
		refused(enc.data, n, TERN_E_MALFORMED);
	for (size_t n = header; n <= enc.len; n++) {
		struct msg *d = NULL;
		assert_int_equal(wire_decode(enc.data, n, NOW, &d), TERN_OK);
		assert_int_equal(d->payload.len, n - header);
		msg_unref(d);
	}
	/* Flipping the flag of a property that is there shifts every field
	 * after it; none of those inputs may decode into a message that
	 * encodes to other bytes than its input. */
	for (int bit = 2; bit < 8; bit++) {
		uint8_t *c = malloc(enc.len);
		assert_non_null(c);
		memcpy(c, enc.data, enc.len);
		c[1] ^= (uint8_t)(1u << bit);
		struct msg *d = NULL;
		if (wire_decode(c, enc.len, NOW, &d) == TERN_OK) {
			struct buf again = {0};
			assert_int_equal(wire_encode(&again, d, NOW, 0), TERN_OK);
			assert_int_equal(again.len, enc.len);
			assert_memory_equal(again.data, c, enc.len);
			buf_free(&again);
			msg_unref(d);
		}
		free(c);
	}
	buf_free(&enc);
	msg_unref(m);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	        cmocka_unit_test(test_plain_message_bytes),
	        cmocka_unit_test(test_zero_length_payload),
	        cmocka_unit_test(test_every_property_with_and_without_MQTT_3_3_2_3),
	        cmocka_unit_test(test_empty_content_type_and_correlation_data_kept),
	        cmocka_unit_test(test_expiry_travels_as_seconds_left),
	        cmocka_unit_test(test_encode_appends_or_leaves_the_buffer_alone),
	        cmocka_unit_test(test_malformed_inputs_are_refused),
	        cmocka_unit_test(test_every_truncation_is_refused),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
