/*
 * test_codec_roundtrip.c - every packet type, encoded then decoded again
 * for MQTT 3.1, 3.1.1 and 5.0 (with every property the packet type allows),
 * and hand-written byte vectors from the specifications decoded and
 * re-encoded byte for byte.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <cmocka.h>

#include "tern/codec.h"

#define B(str)     ((struct tern_bytes){(const uint8_t *)(str), sizeof(str) - 1})
#define ARRAY_N(a) (sizeof(a) / sizeof((a)[0]))
#define PROP_WILL  0 /* pseudo packet type for will properties */
#define ALL_VERSION                                                                                \
	{                                                                                          \
		TERN_V31, TERN_V311, TERN_V5                                                       \
	}

static const uint8_t versions[] = ALL_VERSION;

static void assert_bytes_equal(struct tern_bytes a, struct tern_bytes b)
{
	assert_int_equal(a.len, b.len);
	if (a.len > 0)
		assert_memory_equal(a.data, b.data, a.len);
}

/* ---- properties: the allowed set of each packet type, restated from the
 * table of MQTT 5.0 section 2.2.2.2 independently of the codec ---- */

static const uint8_t allowed_connect[] = {0x11, 0x21, 0x27, 0x22, 0x19, 0x17, 0x26, 0x15, 0x16};
static const uint8_t allowed_connack[] = {0x11, 0x21, 0x24, 0x25, 0x27, 0x12, 0x22, 0x1F, 0x26,
                                          0x28, 0x29, 0x2A, 0x13, 0x1A, 0x1C, 0x15, 0x16};
static const uint8_t allowed_publish[] = {0x01, 0x02, 0x23, 0x08, 0x09, 0x26, 0x0B, 0x03};
static const uint8_t allowed_will[] = {0x18, 0x01, 0x02, 0x03, 0x08, 0x09, 0x26};
static const uint8_t allowed_ack[] = {0x1F, 0x26};
static const uint8_t allowed_subscribe[] = {0x0B, 0x26};
static const uint8_t allowed_unsubscribe[] = {0x26};
static const uint8_t allowed_disconnect[] = {0x11, 0x1F, 0x26, 0x1C};
static const uint8_t allowed_auth[] = {0x15, 0x16, 0x1F, 0x26};

static const uint32_t publish_sub_ids[] = {1, 127, 128, 268435455};
static const uint32_t subscribe_sub_ids[] = {16384};

/* Storage for the user property block of one props struct. */
struct props_buf {
	uint8_t user[128];
};

/* Sets every property in ids[0..n) to a recognisable value. */
static void fill_props(struct tern_props *p, const uint8_t *ids, size_t n, bool publish,
                       struct props_buf *pb)
{
	memset(p, 0, sizeof(*p));
	for (size_t i = 0; i < n; i++) {
		uint8_t id = ids[i];
		if (id == 0x26) {
			size_t len = 0;
			assert_int_equal(tern_user_prop_encode(pb->user, sizeof(pb->user), &len,
			                                       B("k1"), B("v1")),
			                 TERN_OK);
			assert_int_equal(tern_user_prop_encode(pb->user, sizeof(pb->user), &len,
			                                       B("k2"), B("v\xC3\xA9")),
			                 TERN_OK);
			/* the same name twice is allowed (3.3.2.3.7) */
			assert_int_equal(tern_user_prop_encode(pb->user, sizeof(pb->user), &len,
			                                       B("k1"), B("")),
			                 TERN_OK);
			p->user_raw = (struct tern_bytes){pb->user, (uint32_t)len};
			continue;
		}
		if (id == 0x0B) {
			p->sub_ids = publish ? publish_sub_ids : subscribe_sub_ids;
			p->n_sub_ids =
			        publish ? ARRAY_N(publish_sub_ids) : ARRAY_N(subscribe_sub_ids);
			continue;
		}
		p->present |= TERN_PROP_BIT(id);
		switch (id) {
		case 0x01:
			p->payload_format = 1;
			break;
		case 0x02:
			p->message_expiry = 3600;
			break;
		case 0x03:
			p->content_type = B("text/plain");
			break;
		case 0x08:
			p->response_topic = B("resp/topic");
			break;
		case 0x09:
			p->correlation_data = B("\x00\x01\xFF");
			break;
		case 0x11:
			p->session_expiry = 0xFFFFFFFFu;
			break;
		case 0x12:
			p->assigned_client_id = B("auto-123");
			break;
		case 0x13:
			p->server_keep_alive = 30;
			break;
		case 0x15:
			p->auth_method = B("SCRAM-SHA-1");
			break;
		case 0x16:
			p->auth_data = B("\x00\xFE");
			break;
		case 0x17:
			p->request_problem_info = 0;
			break;
		case 0x18:
			p->will_delay = 10;
			break;
		case 0x19:
			p->request_response_info = 1;
			break;
		case 0x1A:
			p->response_info = B("resp");
			break;
		case 0x1C:
			p->server_reference = B("other:1883");
			break;
		case 0x1F:
			p->reason_string = B("because");
			break;
		case 0x21:
			p->receive_maximum = 100;
			break;
		case 0x22:
			p->topic_alias_maximum = 10;
			break;
		case 0x23:
			p->topic_alias = 5;
			break;
		case 0x24:
			p->maximum_qos = 1;
			break;
		case 0x25:
			p->retain_available = 0;
			break;
		case 0x27:
			p->maximum_packet_size = 65536;
			break;
		case 0x28:
			p->wildcard_sub_available = 1;
			break;
		case 0x29:
			p->sub_id_available = 1;
			break;
		case 0x2A:
			p->shared_sub_available = 0;
			break;
		default:
			fail_msg("unknown id %u", id);
		}
	}
}

/* Compares decoded props d with what was encoded, e. */
static void assert_props_equal(const struct tern_props *e, const struct tern_props *d)
{
	assert_int_equal(d->present, e->present);
	uint64_t pr = e->present;
#define CMP_INT(id, f)                                                                             \
	if (pr & TERN_PROP_BIT(id))                                                                \
	assert_int_equal(d->f, e->f)
#define CMP_BYTES(id, f)                                                                           \
	if (pr & TERN_PROP_BIT(id))                                                                \
	assert_bytes_equal(d->f, e->f)
	CMP_INT(0x01, payload_format);
	CMP_INT(0x02, message_expiry);
	CMP_BYTES(0x03, content_type);
	CMP_BYTES(0x08, response_topic);
	CMP_BYTES(0x09, correlation_data);
	CMP_INT(0x11, session_expiry);
	CMP_BYTES(0x12, assigned_client_id);
	CMP_INT(0x13, server_keep_alive);
	CMP_BYTES(0x15, auth_method);
	CMP_BYTES(0x16, auth_data);
	CMP_INT(0x17, request_problem_info);
	CMP_INT(0x18, will_delay);
	CMP_INT(0x19, request_response_info);
	CMP_BYTES(0x1A, response_info);
	CMP_BYTES(0x1C, server_reference);
	CMP_BYTES(0x1F, reason_string);
	CMP_INT(0x21, receive_maximum);
	CMP_INT(0x22, topic_alias_maximum);
	CMP_INT(0x23, topic_alias);
	CMP_INT(0x24, maximum_qos);
	CMP_INT(0x25, retain_available);
	CMP_INT(0x27, maximum_packet_size);
	CMP_INT(0x28, wildcard_sub_available);
	CMP_INT(0x29, sub_id_available);
	CMP_INT(0x2A, shared_sub_available);
#undef CMP_INT
#undef CMP_BYTES
	assert_int_equal(d->n_sub_ids, e->n_sub_ids);
	size_t cur = 0;
	uint32_t id;
	for (uint32_t i = 0; i < e->n_sub_ids; i++) {
		assert_true(tern_props_next_sub_id(d, &cur, &id));
		assert_int_equal(id, e->sub_ids[i]);
	}
	assert_false(tern_props_next_sub_id(d, &cur, &id));

	/* Walk the user properties of both: the encoded block is itself a
	 * valid property block for the iterator. */
	struct tern_props eu = {0};
	eu.raw = e->user_raw;
	size_t ce = 0, cd = 0;
	uint32_t n = 0;
	struct tern_bytes en, ev, dn, dv;
	while (tern_props_next_user(&eu, &ce, &en, &ev)) {
		assert_true(tern_props_next_user(d, &cd, &dn, &dv));
		assert_bytes_equal(dn, en);
		assert_bytes_equal(dv, ev);
		n++;
	}
	assert_false(tern_props_next_user(d, &cd, &dn, &dv));
	assert_int_equal(d->n_user, n);
}

/* Encodes p for version, checks the size functions agree, decodes it
 * back into *out. buf must outlive *out. */
static void roundtrip(const struct tern_packet *p, uint8_t version, uint8_t *buf, size_t cap,
                      struct tern_packet *out, size_t *len)
{
	size_t n = 0;
	enum tern_err e = tern_encode_packet(p, version, buf, cap, &n);
	if (e != TERN_OK)
		fail_msg("encode %s v%u: %s", tern_packet_name(p->type), version, tern_strerror(e));
	assert_int_equal(tern_packet_size(p, version), n);
	/* One byte less does not fit. */
	size_t dummy;
	assert_int_equal(tern_encode_packet(p, version, buf, n - 1, &dummy), TERN_E_BUFFER);
	assert_int_equal(tern_encode_packet(p, version, buf, cap, &n), TERN_OK);

	struct tern_fixed_header fh;
	assert_int_equal(tern_decode_fixed_header(buf, n, (uint32_t)n, &fh), TERN_OK);
	assert_int_equal(fh.type, p->type);
	assert_int_equal(fh.header_len + fh.remaining, n);
	e = tern_decode_packet(&fh, buf + fh.header_len, version, out);
	if (e != TERN_OK)
		fail_msg("decode %s v%u: %s", tern_packet_name(p->type), version, tern_strerror(e));
	assert_int_equal(out->type, p->type);
	if (len != NULL)
		*len = n;
}

/* ---- CONNECT ---- */

static void test_roundtrip_connect_all_versions(void **state)
{
	(void)state;
	for (size_t v = 0; v < ARRAY_N(versions); v++) {
		uint8_t ver = versions[v];
		struct props_buf pb1, pb2;
		struct tern_packet p = {.type = TERN_CONNECT};
		struct tern_connect *c = &p.u.connect;
		c->version = ver;
		c->clean_start = true;
		c->keep_alive = 60;
		c->client_id = B("client-1");
		c->will = true;
		c->will_qos = 2;
		c->will_retain = true;
		c->will_topic = B("last/will");
		c->will_payload = B("\x00gone\xFF");
		c->has_username = true;
		c->username = B("user");
		c->has_password = true;
		c->password = B("\x01\x02secret");
		if (ver == TERN_V5) {
			fill_props(&c->props, allowed_connect, ARRAY_N(allowed_connect), false,
			           &pb1);
			fill_props(&c->will_props, allowed_will, ARRAY_N(allowed_will), false,
			           &pb2);
		}
		uint8_t buf[1024];
		struct tern_packet d;
		roundtrip(&p, ver, buf, sizeof(buf), &d, NULL);
		const struct tern_connect *dc = &d.u.connect;
		assert_int_equal(dc->version, ver);
		assert_true(dc->clean_start);
		assert_int_equal(dc->keep_alive, 60);
		assert_bytes_equal(dc->client_id, c->client_id);
		assert_true(dc->will);
		assert_int_equal(dc->will_qos, 2);
		assert_true(dc->will_retain);
		assert_bytes_equal(dc->will_topic, c->will_topic);
		assert_bytes_equal(dc->will_payload, c->will_payload);
		assert_true(dc->has_username);
		assert_bytes_equal(dc->username, c->username);
		assert_true(dc->has_password);
		assert_bytes_equal(dc->password, c->password);
		if (ver == TERN_V5) {
			assert_props_equal(&c->props, &dc->props);
			assert_props_equal(&c->will_props, &dc->will_props);
		}
		/* The protocol name and level of each version (3.1.2.1). */
		const uint8_t *vh = buf + ((buf[1] & 0x80) ? 3 : 2);
		if (ver == TERN_V31)
			assert_memory_equal(vh, "\x00\x06MQIsdp\x03", 9);
		else
			assert_memory_equal(
			        vh, ver == TERN_V5 ? "\x00\x04MQTT\x05" : "\x00\x04MQTT\x04", 7);
	}
}

static void test_roundtrip_connect_minimal(void **state)
{
	(void)state;
	for (size_t v = 0; v < ARRAY_N(versions); v++) {
		struct tern_packet p = {.type = TERN_CONNECT};
		uint8_t buf[64];
		struct tern_packet d;
		size_t n;
		roundtrip(&p, versions[v], buf, sizeof(buf), &d, &n);
		assert_int_equal(d.u.connect.client_id.len, 0);
		assert_false(d.u.connect.will);
		assert_false(d.u.connect.has_username);
		assert_false(d.u.connect.clean_start);
	}
}

static void test_roundtrip_connect_v5_password_without_username(void **state)
{
	(void)state;
	struct tern_packet p = {.type = TERN_CONNECT};
	p.u.connect.client_id = B("c");
	p.u.connect.has_password = true;
	p.u.connect.password = B("token");
	uint8_t buf[64];
	struct tern_packet d;
	roundtrip(&p, TERN_V5, buf, sizeof(buf), &d, NULL);
	assert_false(d.u.connect.has_username);
	assert_true(d.u.connect.has_password);
	assert_bytes_equal(d.u.connect.password, B("token"));
}

/* ---- CONNACK ---- */

static void test_roundtrip_connack(void **state)
{
	(void)state;
	for (size_t v = 0; v < ARRAY_N(versions); v++) {
		uint8_t ver = versions[v];
		struct props_buf pb;
		struct tern_packet p = {.type = TERN_CONNACK};
		p.u.connack.session_present = true;
		if (ver == TERN_V5)
			fill_props(&p.u.connack.props, allowed_connack, ARRAY_N(allowed_connack),
			           false, &pb);
		uint8_t buf[512];
		struct tern_packet d;
		roundtrip(&p, ver, buf, sizeof(buf), &d, NULL);
		assert_true(d.u.connack.session_present);
		assert_int_equal(d.u.connack.reason, 0);
		if (ver == TERN_V5)
			assert_props_equal(&p.u.connack.props, &d.u.connack.props);

		/* A refusal. */
		struct tern_packet r = {.type = TERN_CONNACK};
		r.u.connack.reason = ver == TERN_V5 ? TERN_RC_BAD_USERNAME_OR_PASSWORD
		                                    : TERN_V3_BAD_USERNAME_OR_PASSWORD;
		size_t n;
		roundtrip(&r, ver, buf, sizeof(buf), &d, &n);
		assert_int_equal(d.u.connack.reason, r.u.connack.reason);
		assert_int_equal(n, ver == TERN_V5 ? 5 : 4);
	}
}

/* ---- PUBLISH ---- */

static void test_roundtrip_publish_all_qos(void **state)
{
	(void)state;
	for (size_t v = 0; v < ARRAY_N(versions); v++) {
		uint8_t ver = versions[v];
		for (uint8_t qos = 0; qos <= 2; qos++) {
			struct props_buf pb;
			struct tern_packet p = {.type = TERN_PUBLISH};
			struct tern_publish *pub = &p.u.publish;
			pub->qos = qos;
			pub->dup = qos > 0;
			pub->retain = qos != 1;
			pub->topic = B("sensors/\xC3\xA9t\xC3\xA9/temp");
			pub->packet_id = qos > 0 ? (uint16_t)(0xFFFF - qos) : 0;
			pub->payload = B("\x00\x01 payload \xFF");
			if (ver == TERN_V5)
				fill_props(&pub->props, allowed_publish, ARRAY_N(allowed_publish),
				           true, &pb);
			uint8_t buf[512];
			struct tern_packet d;
			size_t n;
			roundtrip(&p, ver, buf, sizeof(buf), &d, &n);
			const struct tern_publish *dp = &d.u.publish;
			assert_int_equal(dp->qos, qos);
			assert_int_equal(dp->dup, pub->dup);
			assert_int_equal(dp->retain, pub->retain);
			assert_bytes_equal(dp->topic, pub->topic);
			assert_int_equal(dp->packet_id, pub->packet_id);
			assert_bytes_equal(dp->payload, pub->payload);
			if (ver == TERN_V5)
				assert_props_equal(&pub->props, &dp->props);

			/* The header encoder writes the same bytes but the
			 * payload. */
			uint8_t hdr[512];
			size_t hn;
			assert_int_equal(
			        tern_encode_publish_header(pub, ver, hdr, sizeof(hdr), &hn),
			        TERN_OK);
			assert_int_equal(tern_publish_header_size(pub, ver), hn);
			assert_int_equal(hn + pub->payload.len, n);
			assert_memory_equal(hdr, buf, hn);
			assert_int_equal(tern_encode_publish_header(pub, ver, hdr, hn - 1, &hn),
			                 TERN_E_BUFFER);
		}
	}
}

static void test_roundtrip_publish_v5_empty_topic_with_alias(void **state)
{
	(void)state;
	struct tern_packet p = {.type = TERN_PUBLISH};
	p.u.publish.props.present = TERN_PROP_BIT(TERN_PROP_TOPIC_ALIAS);
	p.u.publish.props.topic_alias = 7;
	p.u.publish.payload = B("x");
	uint8_t buf[64];
	struct tern_packet d;
	roundtrip(&p, TERN_V5, buf, sizeof(buf), &d, NULL);
	assert_int_equal(d.u.publish.topic.len, 0);
	assert_int_equal(d.u.publish.props.topic_alias, 7);
}

static void test_roundtrip_publish_empty_payload(void **state)
{
	(void)state;
	for (size_t v = 0; v < ARRAY_N(versions); v++) {
		struct tern_packet p = {.type = TERN_PUBLISH};
		p.u.publish.topic = B("a");
		uint8_t buf[64];
		struct tern_packet d;
		size_t n;
		roundtrip(&p, versions[v], buf, sizeof(buf), &d, &n);
		assert_int_equal(d.u.publish.payload.len, 0);
		assert_int_equal(n, versions[v] == TERN_V5 ? 6 : 5);
	}
}

/* ---- PUBACK PUBREC PUBREL PUBCOMP ---- */

static void test_roundtrip_acks(void **state)
{
	(void)state;
	static const enum tern_packet_type types[] = {TERN_PUBACK, TERN_PUBREC, TERN_PUBREL,
	                                              TERN_PUBCOMP};
	for (size_t t = 0; t < ARRAY_N(types); t++) {
		bool rel = types[t] == TERN_PUBREL || types[t] == TERN_PUBCOMP;
		for (size_t v = 0; v < ARRAY_N(versions); v++) {
			uint8_t ver = versions[v];
			struct tern_packet p = {.type = types[t]};
			p.u.ack.packet_id = 0x1234;
			uint8_t buf[256];
			struct tern_packet d;
			size_t n;
			roundtrip(&p, ver, buf, sizeof(buf), &d, &n);
			assert_int_equal(d.u.ack.packet_id, 0x1234);
			assert_int_equal(d.u.ack.reason, 0);
			/* v5 short form: reason 0 and no properties (3.4.2.1). */
			assert_int_equal(n, 4);
			assert_int_equal(buf[0], types[t] << 4 | (types[t] == TERN_PUBREL ? 2 : 0));
			if (ver != TERN_V5)
				continue;
			/* Reason without properties: remaining length 3. */
			p.u.ack.reason =
			        rel ? TERN_RC_PACKET_ID_NOT_FOUND : TERN_RC_NO_MATCHING_SUBSCRIBERS;
			roundtrip(&p, ver, buf, sizeof(buf), &d, &n);
			assert_int_equal(n, 5);
			assert_int_equal(d.u.ack.reason, p.u.ack.reason);
			/* With every allowed property. */
			struct props_buf pb;
			fill_props(&p.u.ack.props, allowed_ack, ARRAY_N(allowed_ack), false, &pb);
			roundtrip(&p, ver, buf, sizeof(buf), &d, &n);
			assert_int_equal(d.u.ack.reason, p.u.ack.reason);
			assert_props_equal(&p.u.ack.props, &d.u.ack.props);
			/* Reason 0 with properties keeps the reason byte. */
			p.u.ack.reason = 0;
			roundtrip(&p, ver, buf, sizeof(buf), &d, &n);
			assert_int_equal(buf[4], 0);
			assert_props_equal(&p.u.ack.props, &d.u.ack.props);
		}
	}
}

/* ---- SUBSCRIBE SUBACK UNSUBSCRIBE UNSUBACK ---- */

static void test_roundtrip_subscribe(void **state)
{
	(void)state;
	static const struct tern_sub_entry entries[] = {
	        {.filter = {(const uint8_t *)"a/+/c", 5}, .qos = 0},
	        {.filter = {(const uint8_t *)"#", 1},
	         .qos = 1,
	         .no_local = true,
	         .retain_as_published = true,
	         .retain_handling = 2},
	        {.filter = {(const uint8_t *)"$share/grp/x/#", 14}, .qos = 2, .retain_handling = 1},
	};
	for (size_t v = 0; v < ARRAY_N(versions); v++) {
		uint8_t ver = versions[v];
		struct props_buf pb;
		struct tern_packet p = {.type = TERN_SUBSCRIBE};
		p.u.subscribe.packet_id = 1;
		p.u.subscribe.count = ARRAY_N(entries);
		p.u.subscribe.entries = entries;
		if (ver == TERN_V5)
			fill_props(&p.u.subscribe.props, allowed_subscribe,
			           ARRAY_N(allowed_subscribe), false, &pb);
		uint8_t buf[256];
		struct tern_packet d;
		roundtrip(&p, ver, buf, sizeof(buf), &d, NULL);
		assert_int_equal(buf[0], 0x82);
		assert_int_equal(d.u.subscribe.packet_id, 1);
		assert_int_equal(d.u.subscribe.count, ARRAY_N(entries));
		size_t cur = 0;
		struct tern_sub_entry e;
		for (size_t i = 0; i < ARRAY_N(entries); i++) {
			assert_true(tern_subscribe_next(&d.u.subscribe, &cur, &e));
			assert_bytes_equal(e.filter, entries[i].filter);
			assert_int_equal(e.qos, entries[i].qos);
			/* 3.1 / 3.1.1 carry only the QoS. */
			bool v5 = ver == TERN_V5;
			assert_int_equal(e.no_local, v5 && entries[i].no_local);
			assert_int_equal(e.retain_as_published,
			                 v5 && entries[i].retain_as_published);
			assert_int_equal(e.retain_handling, v5 ? entries[i].retain_handling : 0);
		}
		assert_false(tern_subscribe_next(&d.u.subscribe, &cur, &e));
		if (ver == TERN_V5)
			assert_props_equal(&p.u.subscribe.props, &d.u.subscribe.props);
	}
}

static void test_roundtrip_suback(void **state)
{
	(void)state;
	static const uint8_t v3_reasons[] = {0x00, 0x01, 0x02, 0x80};
	static const uint8_t v5_reasons[] = {0x00, 0x01, 0x02, 0x80, 0x83, 0x87,
	                                     0x8F, 0x91, 0x97, 0x9E, 0xA1, 0xA2};
	for (size_t v = 0; v < ARRAY_N(versions); v++) {
		uint8_t ver = versions[v];
		struct props_buf pb;
		struct tern_packet p = {.type = TERN_SUBACK};
		p.u.subres.packet_id = 65535;
		p.u.subres.reasons = ver == TERN_V5 ? v5_reasons : v3_reasons;
		p.u.subres.count = ver == TERN_V5 ? ARRAY_N(v5_reasons) : ARRAY_N(v3_reasons);
		if (ver == TERN_V5)
			fill_props(&p.u.subres.props, allowed_ack, ARRAY_N(allowed_ack), false,
			           &pb);
		uint8_t buf[256];
		struct tern_packet d;
		roundtrip(&p, ver, buf, sizeof(buf), &d, NULL);
		assert_int_equal(d.u.subres.packet_id, 65535);
		assert_int_equal(d.u.subres.count, p.u.subres.count);
		assert_memory_equal(d.u.subres.reasons, p.u.subres.reasons, p.u.subres.count);
		if (ver == TERN_V5)
			assert_props_equal(&p.u.subres.props, &d.u.subres.props);
	}
}

static void test_roundtrip_unsubscribe(void **state)
{
	(void)state;
	static const struct tern_bytes filters[] = {
	        {(const uint8_t *)"a/b", 3},
	        {(const uint8_t *)"+/#", 3},
	        {(const uint8_t *)"$share/g/t", 10},
	};
	for (size_t v = 0; v < ARRAY_N(versions); v++) {
		uint8_t ver = versions[v];
		struct props_buf pb;
		struct tern_packet p = {.type = TERN_UNSUBSCRIBE};
		p.u.unsubscribe.packet_id = 9;
		p.u.unsubscribe.count = ARRAY_N(filters);
		p.u.unsubscribe.filters = filters;
		if (ver == TERN_V5)
			fill_props(&p.u.unsubscribe.props, allowed_unsubscribe,
			           ARRAY_N(allowed_unsubscribe), false, &pb);
		uint8_t buf[256];
		struct tern_packet d;
		roundtrip(&p, ver, buf, sizeof(buf), &d, NULL);
		assert_int_equal(buf[0], 0xA2);
		assert_int_equal(d.u.unsubscribe.packet_id, 9);
		assert_int_equal(d.u.unsubscribe.count, ARRAY_N(filters));
		size_t cur = 0;
		struct tern_bytes f;
		for (size_t i = 0; i < ARRAY_N(filters); i++) {
			assert_true(tern_unsubscribe_next(&d.u.unsubscribe, &cur, &f));
			assert_bytes_equal(f, filters[i]);
		}
		assert_false(tern_unsubscribe_next(&d.u.unsubscribe, &cur, &f));
		if (ver == TERN_V5)
			assert_props_equal(&p.u.unsubscribe.props, &d.u.unsubscribe.props);
	}
}

static void test_roundtrip_unsuback(void **state)
{
	(void)state;
	static const uint8_t reasons[] = {0x00, 0x11, 0x80, 0x83, 0x87, 0x8F, 0x91};
	for (size_t v = 0; v < ARRAY_N(versions); v++) {
		uint8_t ver = versions[v];
		struct props_buf pb;
		struct tern_packet p = {.type = TERN_UNSUBACK};
		p.u.subres.packet_id = 300;
		p.u.subres.reasons = reasons;
		p.u.subres.count = ARRAY_N(reasons);
		if (ver == TERN_V5)
			fill_props(&p.u.subres.props, allowed_ack, ARRAY_N(allowed_ack), false,
			           &pb);
		uint8_t buf[256];
		struct tern_packet d;
		size_t n;
		roundtrip(&p, ver, buf, sizeof(buf), &d, &n);
		assert_int_equal(d.u.subres.packet_id, 300);
		if (ver != TERN_V5) {
			/* A 3.1.1 UNSUBACK is its packet identifier only. */
			assert_int_equal(n, 4);
			assert_int_equal(d.u.subres.count, 0);
			continue;
		}
		assert_int_equal(d.u.subres.count, ARRAY_N(reasons));
		assert_memory_equal(d.u.subres.reasons, reasons, ARRAY_N(reasons));
		assert_props_equal(&p.u.subres.props, &d.u.subres.props);
	}
}

/* ---- PINGREQ PINGRESP DISCONNECT AUTH ---- */

static void test_roundtrip_ping(void **state)
{
	(void)state;
	for (size_t v = 0; v < ARRAY_N(versions); v++) {
		for (int t = TERN_PINGREQ; t <= TERN_PINGRESP; t++) {
			struct tern_packet p = {.type = (enum tern_packet_type)t};
			uint8_t buf[8];
			struct tern_packet d;
			size_t n;
			roundtrip(&p, versions[v], buf, sizeof(buf), &d, &n);
			assert_int_equal(n, 2);
			assert_int_equal(buf[0], t << 4);
			assert_int_equal(buf[1], 0);
		}
	}
}

static void test_roundtrip_disconnect(void **state)
{
	(void)state;
	uint8_t buf[256];
	struct tern_packet d;
	size_t n;
	for (size_t v = 0; v < ARRAY_N(versions); v++) {
		struct tern_packet p = {.type = TERN_DISCONNECT};
		roundtrip(&p, versions[v], buf, sizeof(buf), &d, &n);
		assert_int_equal(n, 2); /* 3.14.2.1: the short form */
	}
	struct tern_packet p = {.type = TERN_DISCONNECT};
	p.u.reasoned.reason = TERN_RC_DISCONNECT_WITH_WILL;
	roundtrip(&p, TERN_V5, buf, sizeof(buf), &d, &n);
	assert_int_equal(n, 3);
	assert_int_equal(d.u.reasoned.reason, TERN_RC_DISCONNECT_WITH_WILL);
	struct props_buf pb;
	fill_props(&p.u.reasoned.props, allowed_disconnect, ARRAY_N(allowed_disconnect), false,
	           &pb);
	roundtrip(&p, TERN_V5, buf, sizeof(buf), &d, &n);
	assert_int_equal(d.u.reasoned.reason, TERN_RC_DISCONNECT_WITH_WILL);
	assert_props_equal(&p.u.reasoned.props, &d.u.reasoned.props);
}

static void test_roundtrip_auth_v5_only(void **state)
{
	(void)state;
	uint8_t buf[256];
	struct tern_packet d;
	size_t n;
	struct tern_packet p = {.type = TERN_AUTH};
	roundtrip(&p, TERN_V5, buf, sizeof(buf), &d, &n);
	assert_int_equal(n, 2);
	p.u.reasoned.reason = TERN_RC_CONTINUE_AUTHENTICATION;
	struct props_buf pb;
	fill_props(&p.u.reasoned.props, allowed_auth, ARRAY_N(allowed_auth), false, &pb);
	roundtrip(&p, TERN_V5, buf, sizeof(buf), &d, &n);
	assert_int_equal(d.u.reasoned.reason, TERN_RC_CONTINUE_AUTHENTICATION);
	assert_props_equal(&p.u.reasoned.props, &d.u.reasoned.props);
	/* AUTH does not exist before 5.0. */
	assert_int_equal(tern_encode_packet(&p, TERN_V311, buf, sizeof(buf), &n), TERN_E_INVALID);
	assert_int_equal(tern_packet_size(&p, TERN_V31), 0);
}

/* ---- byte vectors from the specifications ---- */

/* Decodes a whole packet from bytes; returns the decoder's result. */
static enum tern_err decode_bytes(const uint8_t *b, size_t n, uint8_t version,
                                  struct tern_packet *out)
{
	struct tern_fixed_header fh;
	enum tern_err e = tern_decode_fixed_header(b, n, 0, &fh);
	if (e != TERN_OK)
		return e;
	assert_int_equal(fh.header_len + fh.remaining, n);
	return tern_decode_packet(&fh, b + fh.header_len, version, out);
}

/* Re-encodes p and checks the bytes are exactly b. */
static void assert_encodes_to(const struct tern_packet *p, uint8_t version, const uint8_t *b,
                              size_t n)
{
	uint8_t out[256];
	size_t w;
	assert_int_equal(tern_encode_packet(p, version, out, sizeof(out), &w), TERN_OK);
	assert_int_equal(w, n);
	assert_memory_equal(out, b, n);
}

/* 3.1.1 section 3.1.2.10 example variable header (flags 0xCE, keep alive
 * 10) with a payload in the order of 3.1.3. */
static void test_vector_connect_v311_spec_example(void **state)
{
	(void)state;
	static const uint8_t b[] = {0x10, 0x1C, 0x00, 0x04, 'M',  'Q',  'T', 'T',  0x04, 0xCE,
	                            0x00, 0x0A, 0x00, 0x03, 'c',  'i',  'd', 0x00, 0x01, 'w',
	                            0x00, 0x02, 'h',  'i',  0x00, 0x01, 'u', 0x00, 0x01, 'p'};
	struct tern_packet p;
	assert_int_equal(decode_bytes(b, sizeof(b), 0, &p), TERN_OK);
	const struct tern_connect *c = &p.u.connect;
	assert_int_equal(c->version, TERN_V311);
	assert_true(c->clean_start);
	assert_true(c->will);
	assert_int_equal(c->will_qos, 1);
	assert_false(c->will_retain);
	assert_true(c->has_username);
	assert_true(c->has_password);
	assert_int_equal(c->keep_alive, 10);
	assert_bytes_equal(c->client_id, B("cid"));
	assert_bytes_equal(c->will_topic, B("w"));
	assert_bytes_equal(c->will_payload, B("hi"));
	assert_bytes_equal(c->username, B("u"));
	assert_bytes_equal(c->password, B("p"));
	assert_encodes_to(&p, TERN_V311, b, sizeof(b));
}

/* 5.0 section 3.1.2.11 example: properties length 5, Session Expiry
 * Interval 10. */
static void test_vector_connect_v5_spec_example(void **state)
{
	(void)state;
	static const uint8_t b[] = {0x10, 0x12, 0x00, 0x04, 'M',  'Q',  'T',  'T',  0x05, 0x02,
	                            0x00, 0x0A, 0x05, 0x11, 0x00, 0x00, 0x00, 0x0A, 0x00, 0x00};
	struct tern_packet p;
	assert_int_equal(decode_bytes(b, sizeof(b), 0, &p), TERN_OK);
	assert_int_equal(p.u.connect.version, TERN_V5);
	assert_true(p.u.connect.clean_start);
	assert_int_equal(p.u.connect.keep_alive, 10);
	assert_int_equal(p.u.connect.props.present, TERN_PROP_BIT(TERN_PROP_SESSION_EXPIRY));
	assert_int_equal(p.u.connect.props.session_expiry, 10);
	assert_int_equal(p.u.connect.client_id.len, 0);
	assert_encodes_to(&p, TERN_V5, b, sizeof(b));
}

/* MQTT 3.1 CONNECT ("MQIsdp", level 3). */
static void test_vector_connect_v31(void **state)
{
	(void)state;
	static const uint8_t b[] = {0x10, 0x12, 0x00, 0x06, 'M',  'Q',  'I', 's', 'd', 'p',
	                            0x03, 0x02, 0x00, 0x3C, 0x00, 0x04, 'a', 'b', 'c', 'd'};
	struct tern_packet p;
	assert_int_equal(decode_bytes(b, sizeof(b), 0, &p), TERN_OK);
	assert_int_equal(p.u.connect.version, TERN_V31);
	assert_int_equal(p.u.connect.keep_alive, 60);
	assert_bytes_equal(p.u.connect.client_id, B("abcd"));
	assert_encodes_to(&p, TERN_V31, b, sizeof(b));
}

/* The bridge bit on a 3.1.1 / 3.1 level (mosquitto's try_private, which
 * ternd's bridges send): decoded as that level with bridge set, encoded
 * back with the bit; not a 5.0 level. */
static void test_vector_connect_bridge_bit(void **state)
{
	(void)state;
	static const uint8_t v311[] = {0x10, 0x10, 0x00, 0x04, 'M',  'Q', 'T', 'T', 0x84,
	                               0x02, 0x00, 0x3C, 0x00, 0x04, 'b', 'r', 'd', 'g'};
	struct tern_packet p;
	assert_int_equal(decode_bytes(v311, sizeof(v311), 0, &p), TERN_OK);
	assert_int_equal(p.u.connect.version, TERN_V311);
	assert_true(p.u.connect.bridge);
	assert_encodes_to(&p, TERN_V311, v311, sizeof(v311));
	static const uint8_t v31[] = {0x10, 0x12, 0x00, 0x06, 'M',  'Q',  'I', 's', 'd', 'p',
	                              0x83, 0x02, 0x00, 0x3C, 0x00, 0x04, 'b', 'r', 'd', 'g'};
	assert_int_equal(decode_bytes(v31, sizeof(v31), 0, &p), TERN_OK);
	assert_int_equal(p.u.connect.version, TERN_V31);
	assert_true(p.u.connect.bridge);
	static const uint8_t plain[] = {0x10, 0x10, 0x00, 0x04, 'M',  'Q', 'T', 'T', 0x04,
	                                0x02, 0x00, 0x3C, 0x00, 0x04, 'b', 'r', 'd', 'g'};
	assert_int_equal(decode_bytes(plain, sizeof(plain), 0, &p), TERN_OK);
	assert_false(p.u.connect.bridge);
	/* [MQTT-3.1.2-2]: 0x85 is no level ternd knows. */
	static const uint8_t v5[] = {0x10, 0x11, 0x00, 0x04, 'M',  'Q', 'T', 'T', 0x85, 0x02,
	                             0x00, 0x3C, 0x00, 0x00, 0x04, 'b', 'r', 'd', 'g'};
	assert_int_equal(decode_bytes(v5, sizeof(v5), 0, &p), TERN_E_UNSUPPORTED_VERSION);
}

static void test_vector_connack(void **state)
{
	(void)state;
	static const uint8_t ok[] = {0x20, 0x02, 0x01, 0x00};
	static const uint8_t refused[] = {0x20, 0x02, 0x00, 0x05};
	static const uint8_t v5[] = {0x20, 0x03, 0x00, 0x00, 0x00};
	struct tern_packet p;
	assert_int_equal(decode_bytes(ok, sizeof(ok), TERN_V311, &p), TERN_OK);
	assert_true(p.u.connack.session_present);
	assert_int_equal(decode_bytes(refused, sizeof(refused), TERN_V31, &p), TERN_OK);
	assert_int_equal(p.u.connack.reason, TERN_V3_NOT_AUTHORIZED);
	assert_int_equal(decode_bytes(v5, sizeof(v5), TERN_V5, &p), TERN_OK);
	assert_encodes_to(&p, TERN_V5, v5, sizeof(v5));
}

/* 3.1.1 section 3.3.2.3: topic "a/b", packet identifier 10. */
static void test_vector_publish_v311_spec_example(void **state)
{
	(void)state;
	static const uint8_t b[] = {0x32, 0x07, 0x00, 0x03, 'a', '/', 'b', 0x00, 0x0A};
	struct tern_packet p;
	assert_int_equal(decode_bytes(b, sizeof(b), TERN_V311, &p), TERN_OK);
	assert_int_equal(p.u.publish.qos, 1);
	assert_bytes_equal(p.u.publish.topic, B("a/b"));
	assert_int_equal(p.u.publish.packet_id, 10);
	assert_int_equal(p.u.publish.payload.len, 0);
	assert_encodes_to(&p, TERN_V311, b, sizeof(b));
}

static void test_vector_publish_v5_with_props(void **state)
{
	(void)state;
	/* QoS 0, retain, topic "t", props: payload format 1, topic alias 3,
	 * user property ("a","b"), subscription ids 1 and 2; payload "hi". */
	static const uint8_t b[] = {0x31, 0x16, 0x00, 0x01, 't',  0x10, 0x01, 0x01,
	                            0x23, 0x00, 0x03, 0x0B, 0x01, 0x0B, 0x02, 0x26,
	                            0x00, 0x01, 'a',  0x00, 0x01, 'b',  'h',  'i'};
	struct tern_packet p;
	assert_int_equal(decode_bytes(b, sizeof(b), TERN_V5, &p), TERN_OK);
	const struct tern_publish *pub = &p.u.publish;
	assert_true(pub->retain);
	assert_int_equal(pub->props.payload_format, 1);
	assert_int_equal(pub->props.topic_alias, 3);
	assert_int_equal(pub->props.n_sub_ids, 2);
	assert_int_equal(pub->props.n_user, 1);
	assert_bytes_equal(pub->payload, B("hi"));
	size_t cur = 0;
	uint32_t id;
	assert_true(tern_props_next_sub_id(&pub->props, &cur, &id));
	assert_int_equal(id, 1);
	assert_true(tern_props_next_sub_id(&pub->props, &cur, &id));
	assert_int_equal(id, 2);
	assert_false(tern_props_next_sub_id(&pub->props, &cur, &id));
	struct tern_bytes n, v;
	cur = 0;
	assert_true(tern_props_next_user(&pub->props, &cur, &n, &v));
	assert_bytes_equal(n, B("a"));
	assert_bytes_equal(v, B("b"));
	assert_false(tern_props_next_user(&pub->props, &cur, &n, &v));
}

/* 3.1.1 section 3.8.3.1 example: "a/b" QoS 1, "c/d" QoS 2. */
static void test_vector_subscribe_v311_spec_example(void **state)
{
	(void)state;
	static const uint8_t b[] = {0x82, 0x0E, 0x00, 0x0A, 0x00, 0x03, 'a', '/',
	                            'b',  0x01, 0x00, 0x03, 'c',  '/',  'd', 0x02};
	struct tern_packet p;
	assert_int_equal(decode_bytes(b, sizeof(b), TERN_V311, &p), TERN_OK);
	assert_int_equal(p.u.subscribe.packet_id, 10);
	assert_int_equal(p.u.subscribe.count, 2);
	struct tern_sub_entry e[2];
	size_t cur = 0;
	assert_true(tern_subscribe_next(&p.u.subscribe, &cur, &e[0]));
	assert_true(tern_subscribe_next(&p.u.subscribe, &cur, &e[1]));
	assert_bytes_equal(e[0].filter, B("a/b"));
	assert_int_equal(e[0].qos, 1);
	assert_bytes_equal(e[1].filter, B("c/d"));
	assert_int_equal(e[1].qos, 2);
	struct tern_packet q = {.type = TERN_SUBSCRIBE};
	q.u.subscribe.packet_id = 10;
	q.u.subscribe.count = 2;
	q.u.subscribe.entries = e;
	assert_encodes_to(&q, TERN_V311, b, sizeof(b));
}

/* 3.1.1 section 3.9.3 example: granted QoS 0, granted QoS 2, failure. */
static void test_vector_suback_v311_spec_example(void **state)
{
	(void)state;
	static const uint8_t b[] = {0x90, 0x05, 0x00, 0x0A, 0x00, 0x02, 0x80};
	struct tern_packet p;
	assert_int_equal(decode_bytes(b, sizeof(b), TERN_V311, &p), TERN_OK);
	assert_int_equal(p.u.subres.count, 3);
	assert_memory_equal(p.u.subres.reasons, "\x00\x02\x80", 3);
	assert_encodes_to(&p, TERN_V311, b, sizeof(b));
}

/* 3.1.1 section 3.10.3.1 example: "a/b", "c/d". */
static void test_vector_unsubscribe_v311_spec_example(void **state)
{
	(void)state;
	static const uint8_t b[] = {0xA2, 0x0C, 0x00, 0x0A, 0x00, 0x03, 'a',
	                            '/',  'b',  0x00, 0x03, 'c',  '/',  'd'};
	struct tern_packet p;
	assert_int_equal(decode_bytes(b, sizeof(b), TERN_V311, &p), TERN_OK);
	assert_int_equal(p.u.unsubscribe.count, 2);
	static const uint8_t ub[] = {0xB0, 0x02, 0x00, 0x0A};
	assert_int_equal(decode_bytes(ub, sizeof(ub), TERN_V311, &p), TERN_OK);
	assert_int_equal(p.u.subres.packet_id, 10);
	assert_int_equal(p.u.subres.count, 0);
}

/* 5.0 short forms (3.4.2.1, 3.14.2.1, 3.15.2.1). */
static void test_vector_v5_short_forms(void **state)
{
	(void)state;
	struct tern_packet p;
	static const uint8_t puback2[] = {0x40, 0x02, 0x00, 0x01};
	static const uint8_t puback3[] = {0x40, 0x03, 0x00, 0x01, 0x10};
	static const uint8_t pubrel3[] = {0x62, 0x03, 0x00, 0x01, 0x92};
	static const uint8_t pubcomp4[] = {0x70, 0x04, 0x00, 0x01, 0x00, 0x00};
	static const uint8_t disc0[] = {0xE0, 0x00};
	static const uint8_t disc1[] = {0xE0, 0x01, 0x8E};
	static const uint8_t auth0[] = {0xF0, 0x00};
	static const uint8_t auth1[] = {0xF0, 0x01, 0x19};
	assert_int_equal(decode_bytes(puback2, sizeof(puback2), TERN_V5, &p), TERN_OK);
	assert_int_equal(p.u.ack.reason, 0);
	assert_int_equal(decode_bytes(puback3, sizeof(puback3), TERN_V5, &p), TERN_OK);
	assert_int_equal(p.u.ack.reason, 0x10);
	assert_encodes_to(&p, TERN_V5, puback3, sizeof(puback3));
	assert_int_equal(decode_bytes(pubrel3, sizeof(pubrel3), TERN_V5, &p), TERN_OK);
	assert_int_equal(p.u.ack.reason, 0x92);
	assert_int_equal(decode_bytes(pubcomp4, sizeof(pubcomp4), TERN_V5, &p), TERN_OK);
	assert_int_equal(p.u.ack.reason, 0);
	assert_int_equal(decode_bytes(disc0, sizeof(disc0), TERN_V5, &p), TERN_OK);
	assert_int_equal(p.u.reasoned.reason, 0);
	assert_int_equal(decode_bytes(disc1, sizeof(disc1), TERN_V5, &p), TERN_OK);
	assert_int_equal(p.u.reasoned.reason, TERN_RC_SESSION_TAKEN_OVER);
	assert_encodes_to(&p, TERN_V5, disc1, sizeof(disc1));
	assert_int_equal(decode_bytes(auth0, sizeof(auth0), TERN_V5, &p), TERN_OK);
	assert_int_equal(decode_bytes(auth1, sizeof(auth1), TERN_V5, &p), TERN_OK);
	assert_int_equal(p.u.reasoned.reason, TERN_RC_REAUTHENTICATE);
}

static void test_vector_ping_and_disconnect_v311(void **state)
{
	(void)state;
	struct tern_packet p;
	static const uint8_t ping[] = {0xC0, 0x00};
	static const uint8_t pong[] = {0xD0, 0x00};
	static const uint8_t disc[] = {0xE0, 0x00};
	assert_int_equal(decode_bytes(ping, 2, TERN_V311, &p), TERN_OK);
	assert_int_equal(p.type, TERN_PINGREQ);
	assert_int_equal(decode_bytes(pong, 2, TERN_V311, &p), TERN_OK);
	assert_int_equal(p.type, TERN_PINGRESP);
	assert_int_equal(decode_bytes(disc, 2, TERN_V31, &p), TERN_OK);
	assert_int_equal(p.type, TERN_DISCONNECT);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	        cmocka_unit_test(test_roundtrip_connect_all_versions),
	        cmocka_unit_test(test_roundtrip_connect_minimal),
	        cmocka_unit_test(test_roundtrip_connect_v5_password_without_username),
	        cmocka_unit_test(test_roundtrip_connack),
	        cmocka_unit_test(test_roundtrip_publish_all_qos),
	        cmocka_unit_test(test_roundtrip_publish_v5_empty_topic_with_alias),
	        cmocka_unit_test(test_roundtrip_publish_empty_payload),
	        cmocka_unit_test(test_roundtrip_acks),
	        cmocka_unit_test(test_roundtrip_subscribe),
	        cmocka_unit_test(test_roundtrip_suback),
	        cmocka_unit_test(test_roundtrip_unsubscribe),
	        cmocka_unit_test(test_roundtrip_unsuback),
	        cmocka_unit_test(test_roundtrip_ping),
	        cmocka_unit_test(test_roundtrip_disconnect),
	        cmocka_unit_test(test_roundtrip_auth_v5_only),
	        cmocka_unit_test(test_vector_connect_v311_spec_example),
	        cmocka_unit_test(test_vector_connect_v5_spec_example),
	        cmocka_unit_test(test_vector_connect_v31),
	        cmocka_unit_test(test_vector_connect_bridge_bit),
	        cmocka_unit_test(test_vector_connack),
	        cmocka_unit_test(test_vector_publish_v311_spec_example),
	        cmocka_unit_test(test_vector_publish_v5_with_props),
	        cmocka_unit_test(test_vector_subscribe_v311_spec_example),
	        cmocka_unit_test(test_vector_suback_v311_spec_example),
	        cmocka_unit_test(test_vector_unsubscribe_v311_spec_example),
	        cmocka_unit_test(test_vector_v5_short_forms),
	        cmocka_unit_test(test_vector_ping_and_disconnect_v311),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
