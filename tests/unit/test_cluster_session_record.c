/*
 * test_cluster_session_record.c - unit tests of the session record codec
 * (src/cluster/session_record.c), the value of the cluster's sessions
 * bucket that another node resumes a session from, or publishes a dead
 * node's will from.
 *
 * The bytes of a small record checked one by one against the layout of
 * session_record.h; round trips of records with and without subscriptions
 * (every option, shared filters, subscription identifiers) and with and
 * without a will (delay, its own expiry, v5 properties), decoded field by
 * field and encoded again to the same bytes; the holder read alone; then
 * every malformed input we can name, every truncation and every single
 * bit flip of a full record refused or decoded to a record that encodes
 * back to the same bytes (so nothing is half-read).
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "cluster/session_record.h"
#include "tern/codec.h"
#include "util/buf.h"
#include "util/msg.h"

#define NOW 1000000u

static struct tern_bytes B(const char *s) {
	return (struct tern_bytes){(const uint8_t *)s, (uint32_t)strlen(s)};
}

static void
same_bytes(struct tern_bytes a, struct tern_bytes b)
{
	assert_int_equal(a.len, b.len);
	if (a.len)
		assert_memory_equal(a.data, b.data, a.len);
}

static const struct session_record_sub SUBS[] = {
        {.filter = {(const uint8_t *)"a/+/c", 5}, .qos = 1},
        {.filter = {(const uint8_t *)"$share/g/x/#", 12}, .qos = 2, .sub_id = 7},
        {.filter = {(const uint8_t *)"#", 1},
         .qos = 0,
         .no_local = true,
         .retain_as_published = true,
         .retain_handling = 2,
         .sub_id = 268435455},
        {.filter = {(const uint8_t *)"x/y", 3}, .qos = 2, .retain_handling = 1},
};
#define N_SUBS 4

/* A v5 will with properties, as handle_connect makes it. */
static struct msg *make_will(void)
{
	struct tern_props p = {0};
	p.present |= TERN_PROP_BIT(TERN_PROP_CONTENT_TYPE) |
	             TERN_PROP_BIT(TERN_PROP_RESPONSE_TOPIC) |
	             TERN_PROP_BIT(TERN_PROP_PAYLOAD_FORMAT);
	p.content_type = B("text/plain");
	p.response_topic = B("r/t");
	p.payload_format = 1;
	struct msg *m = msg_new(B("will/topic"), B("gone"), 1, true, &p, 9, NOW);
	assert_non_null(m);
	m->expire_at = 0;
	return m;
}

static struct session_record full_record(const struct msg *will)
{
	return (struct session_record){.version = TERN_V5,
	                               .online = false,
	                               .expiry = 3600,
	                               .claim = 0x0102030405060708ull,
	                               .offline_at = 1764670000123,
	                               .node = B("node-a"),
	                               .n_subs = N_SUBS,
	                               .subs = SUBS,
	                               .will = will,
	                               .will_delay = 30,
	                               .will_has_expiry = true,
	                               .will_expiry = 60};
}

static void test_small_record_bytes(void **state)
{
	(void)state;
	struct session_record r = {.version = TERN_V311,
	                           .online = true,
	                           .expiry = UINT32_MAX,
	                           .claim = 5,
	                           .node = B("n1"),
	                           .n_subs = 1,
	                           .subs = SUBS};
	struct buf enc = {0};
	assert_int_equal(session_record_encode(&enc, &r, 0), TERN_OK);
	static const uint8_t want[] = {1,   4,   0x01, 0xff, 0xff, 0xff, 0xff, 0, 0, 0, 0,
	                               0,   0,   0,    5,    0,    0,    0,    0, 0, 0, 0,
	                               0,   0,   2,    'n',  '1',  0,    0,    0, 1, 0, 5,
	                               'a', '/', '+',  '/',  'c',  0x01, 0,    0, 0, 0};
	assert_int_equal(enc.len, sizeof(want));
	assert_memory_equal(enc.data, want, sizeof(want));
	struct session_record d;
	assert_int_equal(session_record_decode(enc.data, enc.len, &d), TERN_OK);
	assert_int_equal(d.version, TERN_V311);
	assert_true(d.online);
	assert_int_equal(d.expiry, UINT32_MAX);
	assert_int_equal(d.claim, 5);
	assert_int_equal(d.offline_at, 0);
	same_bytes(d.node, B("n1"));
	assert_int_equal(d.n_subs, 1);
	assert_false(d.has_will);
	buf_free(&enc);
}

static void test_full_record_round_trips(void **state)
{
	(void)state;
	struct msg *will = make_will();
	struct session_record r = full_record(will);
	struct buf enc = {0};
	assert_int_equal(session_record_encode(&enc, &r, 0), TERN_OK);
	struct session_record d;
	assert_int_equal(session_record_decode(enc.data, enc.len, &d), TERN_OK);
	assert_int_equal(d.version, TERN_V5);
	assert_false(d.online);
	assert_int_equal(d.expiry, 3600);
	assert_int_equal(d.claim, 0x0102030405060708ull);
	assert_int_equal(d.offline_at, 1764670000123);
	same_bytes(d.node, B("node-a"));
	assert_int_equal(d.n_subs, N_SUBS);
	size_t cur = 0, i = 0;
	struct session_record_sub s;
	struct session_record_sub subs[N_SUBS];
	while (session_record_next_sub(&d, &cur, &s)) {
		assert_true(i < N_SUBS);
		same_bytes(s.filter, SUBS[i].filter);
		assert_int_equal(s.qos, SUBS[i].qos);
		assert_int_equal(s.no_local, SUBS[i].no_local);
		assert_int_equal(s.retain_as_published, SUBS[i].retain_as_published);
		assert_int_equal(s.retain_handling, SUBS[i].retain_handling);
		assert_int_equal(s.sub_id, SUBS[i].sub_id);
		subs[i++] = s;
	}
	assert_int_equal(i, N_SUBS);
	assert_true(d.has_will);
	assert_int_equal(d.will_delay, 30);
	assert_true(d.will_has_expiry);
	assert_int_equal(d.will_expiry, 60);
	struct msg *w = NULL;
	assert_int_equal(session_record_will(&d, NOW, &w), TERN_OK);
	same_bytes(w->topic, will->topic);
	same_bytes(w->payload, will->payload);
	same_bytes(w->content_type, will->content_type);
	same_bytes(w->response_topic, will->response_topic);
	assert_int_equal(w->qos, 1);
	assert_true(w->retain);
	assert_true(w->has_payload_format);
	/* Its expiry counts from when it is published (3.1.3.2.4). */
	assert_int_equal(w->expire_at, 0);
	uint64_t claim;
	struct tern_bytes node;
	assert_int_equal(session_record_holder(enc.data, enc.len, &claim, &node), TERN_OK);
	assert_int_equal(claim, 0x0102030405060708ull);
	same_bytes(node, B("node-a"));
	/* Encoded again from the decoded record: the same bytes. */
	struct session_record again = d;
	again.subs = subs;
	again.will = w;
	struct buf enc2 = {0};
	assert_int_equal(session_record_encode(&enc2, &again, 0), TERN_OK);
	assert_int_equal(enc2.len, enc.len);
	assert_memory_equal(enc2.data, enc.data, enc.len);
	buf_free(&enc2);
	msg_unref(w);
	buf_free(&enc);
	msg_unref(will);
}

static void test_will_with_expiry_set_is_encoded_without_it(void **state)
{
	(void)state;
	struct msg *will = make_will();
	will->expire_at = NOW + 5000;
	struct session_record r = full_record(will);
	struct buf enc = {0};
	assert_int_equal(session_record_encode(&enc, &r, 0), TERN_OK);
	struct session_record d;
	assert_int_equal(session_record_decode(enc.data, enc.len, &d), TERN_OK);
	struct msg *w = NULL;
	assert_int_equal(session_record_will(&d, NOW, &w), TERN_OK);
	assert_int_equal(w->expire_at, 0);
	msg_unref(w);
	buf_free(&enc);
	msg_unref(will);
	struct session_record none = {0};
	assert_int_equal(session_record_will(&none, NOW, &w), TERN_E_INVALID);
	assert_null(w);
}

static void test_encode_refuses_what_the_layout_cannot_carry(void **state)
{
	(void)state;
	struct buf enc = {0};
	assert_int_equal(buf_append(&enc, "xy", 2, 0), TERN_OK);
	struct session_record r = full_record(NULL);
	r.node = B("");
	assert_int_equal(session_record_encode(&enc, &r, 0), TERN_E_INVALID);
	char big[300];
	memset(big, 'n', sizeof(big) - 1);
	big[sizeof(big) - 1] = 0;
	r.node = B(big);
	assert_int_equal(session_record_encode(&enc, &r, 0), TERN_E_INVALID);
	r = full_record(NULL);
	struct session_record_sub bad = SUBS[0];
	bad.qos = 3;
	r.subs = &bad;
	r.n_subs = 1;
	assert_int_equal(session_record_encode(&enc, &r, 0), TERN_E_INVALID);
	bad = SUBS[0];
	bad.retain_handling = 3;
	assert_int_equal(session_record_encode(&enc, &r, 0), TERN_E_INVALID);
	bad = SUBS[0];
	bad.sub_id = 268435456;
	assert_int_equal(session_record_encode(&enc, &r, 0), TERN_E_INVALID);
	assert_int_equal(enc.len, 2);
	assert_memory_equal(enc.data, "xy", 2);
	buf_free(&enc);
	/* Over the buffer's bound, halfway through: nothing appended. */
	r = full_record(NULL);
	struct buf small = {0};
	assert_int_equal(session_record_encode(&small, &r, 40), TERN_E_LIMIT);
	assert_int_equal(small.len, 0);
	buf_free(&small);
}

/* A copy of enc with byte at changed to v. */
static enum tern_err decode_with(const struct buf *enc, size_t at, uint8_t v)
{
	uint8_t *c = malloc(enc->len);
	memcpy(c, enc->data, enc->len);
	c[at] = v;
	struct session_record d;
	enum tern_err e = session_record_decode(c, enc->len, &d);
	free(c);
	return e;
}

static void test_malformed_inputs_are_refused(void **state)
{
	(void)state;
	struct session_record r = {.version = TERN_V5,
	                           .online = false,
	                           .expiry = 10,
	                           .claim = 1,
	                           .offline_at = 2,
	                           .node = B("n"),
	                           .n_subs = 1,
	                           .subs = SUBS};
	struct buf enc = {0};
	assert_int_equal(session_record_encode(&enc, &r, 0), TERN_OK);
	struct session_record d;
	assert_int_equal(session_record_decode(enc.data, enc.len, &d), TERN_OK);
	/* Offsets: 0 format, 1 protocol, 2 flags, 3 expiry, 7 claim,
	 * 15 offline at, 23 node length, 25 node, 26 subscriptions count,
	 * 30 filter length, 32 filter, 37 options, 38 sub id. */
	assert_int_equal(decode_with(&enc, 0, 2), TERN_E_UNSUPPORTED_VERSION);
	assert_int_equal(decode_with(&enc, 0, 0), TERN_E_UNSUPPORTED_VERSION);
	assert_int_equal(decode_with(&enc, 1, 2), TERN_E_MALFORMED);
	assert_int_equal(decode_with(&enc, 1, 6), TERN_E_MALFORMED);
	assert_int_equal(decode_with(&enc, 2, 0x04), TERN_E_MALFORMED);  /* unknown flag */
	assert_int_equal(decode_with(&enc, 2, 0x02), TERN_E_MALFORMED);  /* a will, missing */
	assert_int_equal(decode_with(&enc, 2, 0x01), TERN_E_MALFORMED);  /* online, offline at */
	assert_int_equal(decode_with(&enc, 15, 0x80), TERN_E_MALFORMED); /* negative time */
	assert_int_equal(decode_with(&enc, 24, 0), TERN_E_MALFORMED);    /* empty node */
	assert_int_equal(decode_with(&enc, 24, 2), TERN_E_MALFORMED);
	assert_int_equal(decode_with(&enc, 29, 2), TERN_E_MALFORMED);    /* count past the end */
	assert_int_equal(decode_with(&enc, 29, 0), TERN_E_MALFORMED);    /* bytes left over */
	assert_int_equal(decode_with(&enc, 33, '#'), TERN_E_MALFORMED);  /* "a#+/c" */
	assert_int_equal(decode_with(&enc, 37, 0x03), TERN_E_MALFORMED); /* QoS 3 */
	assert_int_equal(decode_with(&enc, 37, 0x31), TERN_E_MALFORMED); /* retain handling 3 */
	assert_int_equal(decode_with(&enc, 37, 0x41), TERN_E_MALFORMED); /* unknown bit */
	assert_int_equal(decode_with(&enc, 38, 0x10), TERN_E_MALFORMED); /* sub id too big */
	buf_free(&enc);

	/* The will's own fields. */
	struct msg *will = make_will();
	r.will = will;
	r.will_has_expiry = false;
	assert_int_equal(session_record_encode(&enc, &r, 0), TERN_OK);
	assert_int_equal(session_record_decode(enc.data, enc.len, &d), TERN_OK);
	size_t w = 42; /* after the subscription */
	assert_int_equal(decode_with(&enc, w + 4, 0x02), TERN_E_MALFORMED); /* unknown bit */
	assert_int_equal(decode_with(&enc, w + 8, 1), TERN_E_MALFORMED);    /* expiry without bit */
	/* A will in the wrong wire version, or with an expiry of its own. */
	assert_int_equal(decode_with(&enc, w + 13, 2), TERN_E_MALFORMED);
	assert_int_equal(decode_with(&enc, w + 14, 0x10 | enc.data[w + 14]), TERN_E_MALFORMED);
	buf_free(&enc);
	msg_unref(will);
}

static void test_every_truncation_is_refused(void **state)
{
	(void)state;
	struct msg *will = make_will();
	struct session_record r = full_record(will);
	struct buf enc = {0};
	assert_int_equal(session_record_encode(&enc, &r, 0), TERN_OK);
	for (size_t len = 0; len < enc.len; len++) {
		uint8_t *c = malloc(len ? len : 1);
		memcpy(c, enc.data, len);
		struct session_record d;
		assert_int_not_equal(session_record_decode(c, len, &d), TERN_OK);
		free(c);
	}
	buf_free(&enc);
	msg_unref(will);
}

/* A bit flip anywhere either is refused or decodes to a record that
 * encodes back to exactly the flipped bytes: nothing is read halfway. */
static void test_every_bit_flip_is_refused_or_consistent(void **state)
{
	(void)state;
	struct msg *will = make_will();
	struct session_record r = full_record(will);
	struct buf enc = {0};
	assert_int_equal(session_record_encode(&enc, &r, 0), TERN_OK);
	size_t accepted = 0;
	for (size_t bit = 0; bit < enc.len * 8; bit++) {
		uint8_t *c = malloc(enc.len);
		memcpy(c, enc.data, enc.len);
		c[bit / 8] ^= (uint8_t)(1u << (bit % 8));
		struct session_record d;
		if (session_record_decode(c, enc.len, &d) == TERN_OK) {
			accepted++;
			struct session_record_sub subs[N_SUBS + 1];
			size_t cur = 0, n = 0;
			struct session_record_sub s;
			while (n <= N_SUBS && session_record_next_sub(&d, &cur, &s))
				subs[n++] = s;
			assert_int_equal(n, d.n_subs);
			struct msg *w = NULL;
			if (d.has_will)
				assert_int_equal(session_record_will(&d, NOW, &w), TERN_OK);
			struct session_record again = d;
			again.subs = subs;
			again.will = w;
			struct buf enc2 = {0};
			assert_int_equal(session_record_encode(&enc2, &again, 0), TERN_OK);
			assert_int_equal(enc2.len, enc.len);
			assert_memory_equal(enc2.data, c, enc.len);
			buf_free(&enc2);
			msg_unref(w);
		}
		free(c);
	}
	/* Flips of values (times, ids, payload bytes) are valid records. */
	assert_true(accepted > 0);
	buf_free(&enc);
	msg_unref(will);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	        cmocka_unit_test(test_small_record_bytes),
	        cmocka_unit_test(test_full_record_round_trips),
	        cmocka_unit_test(test_will_with_expiry_set_is_encoded_without_it),
	        cmocka_unit_test(test_encode_refuses_what_the_layout_cannot_carry),
	        cmocka_unit_test(test_malformed_inputs_are_refused),
	        cmocka_unit_test(test_every_truncation_is_refused),
	        cmocka_unit_test(test_every_bit_flip_is_refused_or_consistent),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
