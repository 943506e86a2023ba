/*
 * test_client_robust.c - libtern against a scripted broker
 * (client_fake_broker.h) where things go wrong or run long: malformed and
 * forbidden packets, server DISCONNECT, keep-alive and dead connections,
 * connect timeout, reconnect back-off, packet id wraparound and exhaustion,
 * Maximum Packet Size, SUBSCRIBE/UNSUBSCRIBE answers, topic aliases and
 * argument checks.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include "client_fake_broker.h"
#include "util/clock.h"

/* ---- what the broker sends wrong ---- */

/* A decode error closes the connection; a v5 broker is first told why
 * (4.13: DISCONNECT 0x81 Malformed Packet). */
static void test_malformed_input_v5_disconnects_with_0x81(void **state)
{
	(void)state;
	struct tern_connect_opts o = fb_opts(TERN_V5, "c");
	struct fb *f = fb_new(&o, false);
	fb_handshake(f, 0, false, NULL);
	/* PUBLISH QoS 1 whose body ends inside the topic. */
	static const uint8_t bad[] = {0x32, 0x03, 0x00, 0x05, 'a'};
	fb_send_raw(f, bad, sizeof(bad));
	assert_int_equal(f->n_disconnect, 1);
	assert_int_equal(f->disc_err, TERN_E_MALFORMED);
	assert_false(tern_client_is_connected(f->c));
	struct tern_packet p;
	fb_expect(f, &p, TERN_DISCONNECT);
	assert_int_equal(p.u.reasoned.reason, TERN_RC_MALFORMED_PACKET);
	fb_free(f);
}

static void test_malformed_input_v311_just_closes(void **state)
{
	(void)state;
	struct tern_connect_opts o = fb_opts(TERN_V311, "c");
	struct fb *f = fb_new(&o, false);
	fb_handshake(f, 0, false, NULL);
	/* A five-byte remaining length [MQTT-1.5.5-1]. */
	static const uint8_t bad[] = {0x30, 0xFF, 0xFF, 0xFF, 0xFF, 0x7F};
	fb_send_raw(f, bad, sizeof(bad));
	assert_int_equal(f->n_disconnect, 1);
	assert_int_equal(f->disc_err, TERN_E_MALFORMED);
	char buf[16];
	assert_int_equal(read(f->fd, buf, sizeof(buf)), 0); /* closed, nothing sent */
	fb_free(f);
}

static void test_garbage_before_connack_and_packet_type_0(void **state)
{
	(void)state;
	struct tern_connect_opts o = fb_opts(TERN_V311, "c");
	struct fb *f = fb_new(&o, false);
	struct tern_packet p;
	fb_expect(f, &p, TERN_CONNECT);
	/* A PINGRESP before CONNACK breaks [MQTT-3.2.0-1]. */
	static const uint8_t early[] = {0xD0, 0x00};
	fb_send_raw(f, early, sizeof(early));
	assert_int_equal(f->disc_err, TERN_E_PROTOCOL);
	fb_free(f);

	f = fb_new(&o, false);
	fb_handshake(f, 0, false, NULL);
	static const uint8_t zero[] = {0x00, 0x00};
	fb_send_raw(f, zero, sizeof(zero));
	assert_int_equal(f->disc_err, TERN_E_MALFORMED);
	fb_free(f);
}

static void test_random_input_after_connack_never_crashes(void **state)
{
	(void)state;
	/* A bounded deterministic stream of pseudo-random bytes after a
	 * valid CONNACK: the client must end the connection, not crash. */
	uint64_t x = 0x12345678u;
	for (int round = 0; round < 50; round++) {
		struct tern_connect_opts o = fb_opts(round % 2 ? TERN_V5 : TERN_V311, "c");
		struct fb *f = fb_new(&o, false);
		fb_handshake(f, 0, false, NULL);
		uint8_t junk[64];
		for (size_t i = 0; i < sizeof(junk); i++) {
			x ^= x << 13, x ^= x >> 7, x ^= x << 17;
			junk[i] = (uint8_t)x;
		}
		(void)!write(f->fd, junk, sizeof(junk));
		fb_hangup(f);
		fb_wait_disconnect(f, FB_WAIT_MS);
		assert_int_not_equal(f->disc_err, TERN_OK);
		fb_free(f);
	}
}

static void test_auth_from_broker_is_protocol_error(void **state)
{
	(void)state;
	struct tern_connect_opts o = fb_opts(TERN_V5, "c");
	struct fb *f = fb_new(&o, false);
	fb_handshake(f, 0, false, NULL);
	struct tern_packet a = {.type = TERN_AUTH};
	a.u.reasoned.reason = TERN_RC_CONTINUE_AUTHENTICATION;
	a.u.reasoned.props.present = TERN_PROP_BIT(TERN_PROP_AUTH_METHOD);
	a.u.reasoned.props.auth_method = B("SCRAM");
	fb_send(f, &a);
	assert_int_equal(f->disc_err, TERN_E_PROTOCOL);
	struct tern_packet p;
	fb_expect(f, &p, TERN_DISCONNECT);
	assert_int_equal(p.u.reasoned.reason, TERN_RC_PROTOCOL_ERROR);
	fb_free(f);
}

static void test_server_disconnect_reason_and_string_surfaced(void **state)
{
	(void)state;
	struct tern_connect_opts o = fb_opts(TERN_V5, "c");
	struct fb *f = fb_new(&o, false);
	fb_handshake(f, 0, false, NULL);
	struct tern_packet d = {.type = TERN_DISCONNECT};
	d.u.reasoned.reason = TERN_RC_SERVER_SHUTTING_DOWN;
	d.u.reasoned.props.present = TERN_PROP_BIT(TERN_PROP_REASON_STRING);
	d.u.reasoned.props.reason_string = B("maintenance");
	fb_send(f, &d);
	assert_int_equal(f->n_disconnect, 1);
	assert_int_equal(f->disc_err, TERN_E_CLOSED);
	assert_int_equal(f->disc_reason, TERN_RC_SERVER_SHUTTING_DOWN);
	assert_string_equal(f->disc_reason_string, "maintenance");
	assert_string_equal(tern_reason_string(TERN_RC_SERVER_SHUTTING_DOWN, false),
	                    "server shutting down");
	fb_free(f);
}

static void test_oversized_packet_rejected_with_0x95(void **state)
{
	(void)state;
	struct tern_props props = {0};
	props.present = TERN_PROP_BIT(TERN_PROP_MAXIMUM_PACKET_SIZE);
	props.maximum_packet_size = 64;
	struct tern_connect_opts o = fb_opts(TERN_V5, "c");
	o.props = &props;
	struct fb *f = fb_new(&o, false);
	fb_handshake(f, 0, false, NULL);
	/* Only the header is sent: the client must refuse on the length. */
	static const uint8_t big[] = {0x30, 0x80, 0x01};
	fb_send_raw(f, big, sizeof(big));
	assert_int_equal(f->disc_err, TERN_E_TOO_LARGE);
	struct tern_packet p;
	fb_expect(f, &p, TERN_DISCONNECT);
	assert_int_equal(p.u.reasoned.reason, TERN_RC_PACKET_TOO_LARGE);
	fb_free(f);
}

/* ---- keep-alive and timers ---- */

static void test_keepalive_pingreq_and_dead_connection(void **state)
{
	(void)state;
	struct tern_connect_opts o = fb_opts(TERN_V311, "ka");
	o.keep_alive = 1;
	struct fb *f = fb_new(&o, false);
	fb_handshake(f, 0, false, NULL);
	assert_true(tern_client_timeout_ms(f->c) <= 1000);

	/* Nothing sent for keep_alive seconds: PINGREQ [MQTT-3.1.2-23]. */
	uint64_t t0 = mono_ms();
	struct tern_packet p;
	fb_read_within(f, &p, 1500);
	assert_int_equal(p.type, TERN_PINGREQ);
	uint64_t waited = mono_ms() - t0;
	assert_true(waited >= 900 && waited <= 1500);
	static const uint8_t pingresp[] = {0xD0, 0x00};
	fb_send_raw(f, pingresp, sizeof(pingresp));
	assert_int_equal(f->n_disconnect, 0);

	/* The next PINGREQ is not answered: dead after keep_alive more. */
	fb_read_within(f, &p, 1500);
	assert_int_equal(p.type, TERN_PINGREQ);
	fb_wait_disconnect(f, 1500);
	assert_int_equal(f->disc_err, TERN_E_TIMEOUT);
	fb_free(f);
}

/* Traffic both ways, answers written during the step that handled the
 * PUBLISH: only the PUBACKs go out, no PINGREQ. */
static void test_no_pingreq_while_traffic_flows(void **state)
{
	(void)state;
	struct tern_connect_opts o = fb_opts(TERN_V311, "ka2");
	o.keep_alive = 2;
	struct fb *f = fb_new(&o, false);
	fb_handshake(f, 0, false, NULL);
	struct tern_packet p;
	for (int i = 0; i < 5; i++) {
		static const uint8_t pub[] = {0x32, 0x06, 0x00, 0x01, 't', 0x00, 0x05, 'x'};
		fb_send_raw(f, pub, sizeof(pub));
		fb_expect(f, &p, TERN_PUBACK);
		fb_expect_silence(f);
	}
	assert_int_equal(f->n_msgs, 5);
	fb_free(f);
}

static void test_connack_timeout(void **state)
{
	(void)state;
	struct tern_connect_opts o = fb_opts(TERN_V311, "slow");
	o.connect_timeout_ms = 100;
	struct fb *f = fb_new(&o, false);
	struct tern_packet p;
	fb_expect(f, &p, TERN_CONNECT);
	fb_wait_disconnect(f, 1000);
	assert_int_equal(f->disc_err, TERN_E_TIMEOUT);
	assert_int_equal(f->n_connect, 0);
	fb_free(f);
}

/* Back-off doubles from reconnect_min_ms, with up to half of it jitter. */
static void test_reconnect_backoff_grows_with_jitter(void **state)
{
	(void)state;
	struct tern_connect_opts o = fb_opts(TERN_V311, "rc");
	o.auto_reconnect = true;
	o.reconnect_min_ms = 40;
	o.reconnect_max_ms = 100;
	o.port = 9; /* discard: nothing listens on loopback */
	struct fb *f = fb_new(&o, false);
	fb_handshake(f, 0, false, NULL);
	fb_hangup(f);
	fb_wait_disconnect(f, FB_WAIT_MS);
	assert_int_equal(f->c->state, TERN__BACKOFF);
	int t = tern_client_timeout_ms(f->c);
	assert_true(t >= 0 && t <= 40);
	assert_int_equal(tern_client_fd(f->c), -1);

	/* Each failed attempt is reported and waits longer, up to max. */
	uint64_t bound[] = {80, 100, 100};
	for (int i = 0; i < 3; i++) {
		int before = f->n_disconnect;
		for (int w = 0; f->n_disconnect == before; w += 5) {
			assert_true(w < 2000);
			fb_step(f);
			poll(NULL, 0, 5);
		}
		assert_int_not_equal(f->disc_err, TERN_OK);
		assert_int_equal(f->c->state, TERN__BACKOFF);
		/* Read where the back-off is scheduled (the disconnect
		 * callback), not after this loop's own sleeps: on a loaded
		 * machine those would eat into it. */
		t = f->disc_timeout_ms;
		assert_true(t >= 0 && (uint64_t)t <= bound[i]);
		assert_true((uint64_t)t + 5 >= bound[i] / 2);
	}
	/* disconnect stops reconnecting. */
	assert_int_equal(tern_client_disconnect(f->c, 0, NULL), TERN_OK);
	assert_int_equal(tern_client_timeout_ms(f->c), -1);
	fb_free(f);
}

static void test_user_disconnect_sends_disconnect_and_reports_ok(void **state)
{
	(void)state;
	struct tern_connect_opts o = fb_opts(TERN_V5, "c");
	o.auto_reconnect = true;
	struct fb *f = fb_new(&o, false);
	fb_handshake(f, 0, false, NULL);
	assert_int_equal(tern_client_disconnect(f->c, TERN_RC_DISCONNECT_WITH_WILL, NULL), TERN_OK);
	assert_int_equal(f->n_disconnect, 1);
	assert_int_equal(f->disc_err, TERN_OK);
	assert_int_equal(tern_client_timeout_ms(f->c), -1); /* no reconnect */
	struct tern_packet p;
	fb_expect(f, &p, TERN_DISCONNECT);
	assert_int_equal(p.u.reasoned.reason, TERN_RC_DISCONNECT_WITH_WILL);
	fb_free(f);
}

/* ---- packet identifiers ---- */

static void test_packet_id_wraps_without_reuse(void **state)
{
	(void)state;
	struct tern_connect_opts o = fb_opts(TERN_V311, "ids");
	struct fb *f = fb_new(&o, false);
	fb_handshake(f, 0, false, NULL);
	struct tern_packet p;

	uint16_t one = fb_publish(f, "t", "held", 1);
	assert_int_equal(one, 1);
	fb_expect(f, &p, TERN_PUBLISH);
	/* A SUBSCRIBE waiting for SUBACK holds its id too. */
	struct tern_sub_entry e = {.filter = B("s/#"), .qos = 1};
	uint16_t sid = 0;
	assert_int_equal(tern_client_subscribe(f->c, &e, 1, NULL, &sid), TERN_OK);
	assert_int_equal(sid, 2);
	fb_expect(f, &p, TERN_SUBSCRIBE);

	f->c->next_id = 65534;
	assert_int_equal(fb_publish(f, "t", "x", 1), 65534);
	assert_int_equal(fb_publish(f, "t", "y", 2), 65535);
	/* Wraps to 1 and 2, both in use: 3 is next [MQTT-2.2.1-3]. */
	assert_int_equal(fb_publish(f, "t", "z", 1), 3);
	fb_send_ack(f, TERN_PUBACK, 1, 0);
	f->c->next_id = 65535;
	uint16_t id = fb_publish(f, "t", "w", 1);
	assert_int_equal(id, 1); /* free again after its PUBACK */
	fb_free(f);
}

static void test_packet_ids_exhausted_is_limit(void **state)
{
	(void)state;
	struct tern_connect_opts o = fb_opts(TERN_V311, "many");
	struct fb *f = fb_new(&o, false);
	fb_handshake(f, 0, false, NULL);
	fb_hangup(f);
	fb_wait_disconnect(f, FB_WAIT_MS);
	struct tern_publish_args a = {.topic = "t", .payload = "p", .payload_len = 1, .qos = 1};
	for (uint32_t i = 1; i <= 65535; i++) {
		uint16_t id = 0;
		assert_int_equal(tern_client_publish(f->c, &a, &id), TERN_OK);
		assert_int_equal(id, i);
	}
	assert_int_equal(tern_client_publish(f->c, &a, NULL), TERN_E_LIMIT);
	assert_int_equal(tern_client_pending(f->c), 65535);
	fb_free(f);
}

/* ---- limits and arguments ---- */

static void test_server_maximum_packet_size_is_too_large(void **state)
{
	(void)state;
	struct tern_connect_opts o = fb_opts(TERN_V5, "c");
	struct fb *f = fb_new(&o, false);
	struct tern_props props = {0};
	props.present = TERN_PROP_BIT(TERN_PROP_MAXIMUM_PACKET_SIZE) |
	                TERN_PROP_BIT(TERN_PROP_MAXIMUM_QOS) |
	                TERN_PROP_BIT(TERN_PROP_RETAIN_AVAILABLE);
	props.maximum_packet_size = 100;
	props.maximum_qos = 1;
	props.retain_available = 0;
	fb_handshake(f, 0, false, &props);
	char payload[200];
	memset(payload, 'x', sizeof(payload));
	struct tern_publish_args a = {.topic = "t", .payload = payload, .payload_len = 200};
	assert_int_equal(tern_client_publish(f->c, &a, NULL), TERN_E_TOO_LARGE);
	a.qos = 1;
	assert_int_equal(tern_client_publish(f->c, &a, NULL), TERN_E_TOO_LARGE);
	a.payload_len = 10;
	a.qos = 2; /* above Maximum QoS */
	assert_int_equal(tern_client_publish(f->c, &a, NULL), TERN_E_INVALID);
	a.qos = 0;
	a.retain = true; /* Retain Available 0 */
	assert_int_equal(tern_client_publish(f->c, &a, NULL), TERN_E_INVALID);
	a.retain = false;
	assert_int_equal(tern_client_publish(f->c, &a, NULL), TERN_OK);
	assert_int_equal(tern_client_pending(f->c), 0);
	fb_free(f);
}

static void test_publish_argument_checks(void **state)
{
	(void)state;
	struct tern_client *c;
	assert_int_equal(tern_client_new(&c, NULL, NULL), TERN_OK);
	struct tern_publish_args a = {.topic = "t", .qos = 1};
	assert_int_equal(tern_client_publish(c, &a, NULL), TERN_E_CLOSED); /* no options yet */
	assert_string_equal(tern_client_id(c), "");
	assert_int_equal(tern_client_fd(c), -1);
	assert_int_equal(tern_client_timeout_ms(c), -1);
	tern_client_free(c);

	struct tern_connect_opts o = fb_opts(TERN_V311, "c");
	struct fb *f = fb_new(&o, false);
	fb_handshake(f, 0, false, NULL);
	a.topic = "a/+";
	assert_int_equal(tern_client_publish(f->c, &a, NULL), TERN_E_INVALID);
	a.topic = "";
	assert_int_equal(tern_client_publish(f->c, &a, NULL), TERN_E_INVALID);
	a.topic = "ok";
	a.qos = 3;
	assert_int_equal(tern_client_publish(f->c, &a, NULL), TERN_E_INVALID);
	struct tern_sub_entry bad = {.filter = B("a/#/b")};
	assert_int_equal(tern_client_subscribe(f->c, &bad, 1, NULL, NULL), TERN_E_INVALID);
	assert_int_equal(tern_client_connect_start(f->c, &o), TERN_E_INVALID); /* connected */
	fb_free(f);
}

/* ---- SUBSCRIBE, UNSUBSCRIBE ---- */

static void test_suback_and_unsuback_reach_callbacks(void **state)
{
	(void)state;
	struct tern_connect_opts o = fb_opts(TERN_V311, "c");
	struct fb *f = fb_new(&o, false);
	fb_handshake(f, 0, false, NULL);
	struct tern_sub_entry es[2] = {{.filter = B("a/+"), .qos = 1},
	                               {.filter = B("b"), .qos = 2}};
	uint16_t id = 0;
	assert_int_equal(tern_client_subscribe(f->c, es, 2, NULL, &id), TERN_OK);
	struct tern_packet p;
	fb_expect(f, &p, TERN_SUBSCRIBE);
	assert_int_equal(p.u.subscribe.packet_id, id);
	assert_int_equal(p.u.subscribe.count, 2);

	uint8_t reasons[2] = {1, 0x80};
	struct tern_packet s = {.type = TERN_SUBACK};
	s.u.subres.packet_id = id;
	s.u.subres.count = 2;
	s.u.subres.reasons = reasons;
	fb_send(f, &s);
	assert_int_equal(f->n_sub, 1);
	assert_int_equal(f->sub_n, 2);
	assert_int_equal(f->sub_reasons[0], 1);
	assert_int_equal(f->sub_reasons[1], 0x80);

	const char *filters[] = {"a/+"};
	assert_int_equal(tern_client_unsubscribe(f->c, filters, 1, NULL, &id), TERN_OK);
	fb_expect(f, &p, TERN_UNSUBSCRIBE);
	struct tern_packet u = {.type = TERN_UNSUBACK};
	u.u.subres.packet_id = id;
	fb_send(f, &u);
	assert_int_equal(f->n_unsub, 1);
	fb_free(f);
}

static void test_suback_with_wrong_count_is_protocol_error_MQTT_3_9_3_1(void **state)
{
	(void)state;
	struct tern_connect_opts o = fb_opts(TERN_V5, "c");
	struct fb *f = fb_new(&o, false);
	fb_handshake(f, 0, false, NULL);
	struct tern_sub_entry es[2] = {{.filter = B("a"), .qos = 0}, {.filter = B("b"), .qos = 0}};
	uint16_t id = 0;
	assert_int_equal(tern_client_subscribe(f->c, es, 2, NULL, &id), TERN_OK);
	struct tern_packet p;
	fb_expect(f, &p, TERN_SUBSCRIBE);
	uint8_t reasons[1] = {0};
	struct tern_packet s = {.type = TERN_SUBACK};
	s.u.subres.packet_id = id;
	s.u.subres.count = 1;
	s.u.subres.reasons = reasons;
	fb_send(f, &s);
	assert_int_equal(f->n_sub, 0);
	assert_int_equal(f->disc_err, TERN_E_PROTOCOL);
	fb_free(f);
}

/* ---- topic aliases ---- */

static void test_topic_alias_out_encoded_and_in_resolved(void **state)
{
	(void)state;
	struct tern_props cp = {0};
	cp.present = TERN_PROP_BIT(TERN_PROP_TOPIC_ALIAS_MAXIMUM);
	cp.topic_alias_maximum = 4;
	struct tern_connect_opts o = fb_opts(TERN_V5, "c");
	o.props = &cp;
	struct fb *f = fb_new(&o, false);
	fb_handshake(f, 0, false, NULL);

	/* Out: the user's Topic Alias is encoded; "" may stand for the topic. */
	struct tern_props pp = {0};
	pp.present = TERN_PROP_BIT(TERN_PROP_TOPIC_ALIAS);
	pp.topic_alias = 3;
	struct tern_publish_args a = {.topic = "", .payload = "p", .payload_len = 1, .props = &pp};
	assert_int_equal(tern_client_publish(f->c, &a, NULL), TERN_OK);
	struct tern_packet p;
	fb_expect(f, &p, TERN_PUBLISH);
	assert_int_equal(p.u.publish.topic.len, 0);
	assert_int_equal(p.u.publish.props.topic_alias, 3);

	/* In: alias 2 set with a topic, then used alone. */
	struct tern_packet in = {.type = TERN_PUBLISH};
	in.u.publish.topic = B("long/topic/name");
	in.u.publish.payload = B("1");
	in.u.publish.props.present = TERN_PROP_BIT(TERN_PROP_TOPIC_ALIAS);
	in.u.publish.props.topic_alias = 2;
	fb_send(f, &in);
	in.u.publish.topic = B("");
	in.u.publish.payload = B("2");
	fb_send(f, &in);
	assert_int_equal(f->n_msgs, 2);
	assert_string_equal(f->msgs[1].topic, "long/topic/name");
	assert_string_equal(f->msgs[1].payload, "2");

	/* Above our Topic Alias Maximum: DISCONNECT 0x94 [MQTT-3.3.2-9]. */
	in.u.publish.props.topic_alias = 5;
	in.u.publish.topic = B("x");
	fb_send(f, &in);
	assert_int_equal(f->disc_err, TERN_E_PROTOCOL);
	fb_expect(f, &p, TERN_DISCONNECT);
	assert_int_equal(p.u.reasoned.reason, TERN_RC_TOPIC_ALIAS_INVALID);
	fb_free(f);
}

/* An empty topic with an alias the server never set is a Protocol Error
 * (section 3.3.4): DISCONNECT 0x82, and nothing is delivered. */
static void test_topic_alias_never_set_is_protocol_error(void **state)
{
	(void)state;
	struct tern_props cp = {0};
	cp.present = TERN_PROP_BIT(TERN_PROP_TOPIC_ALIAS_MAXIMUM);
	cp.topic_alias_maximum = 4;
	struct tern_connect_opts o = fb_opts(TERN_V5, "c");
	o.props = &cp;
	struct fb *f = fb_new(&o, false);
	fb_handshake(f, 0, false, NULL);
	struct tern_packet in = {.type = TERN_PUBLISH};
	in.u.publish.topic = B("a");
	in.u.publish.payload = B("1");
	in.u.publish.props.present = TERN_PROP_BIT(TERN_PROP_TOPIC_ALIAS);
	in.u.publish.props.topic_alias = 1;
	fb_send(f, &in);
	assert_int_equal(f->n_msgs, 1);
	in.u.publish.topic = B("");
	in.u.publish.props.topic_alias = 4; /* within the maximum, never set */
	fb_send(f, &in);
	assert_int_equal(f->n_msgs, 1);
	assert_int_equal(f->disc_err, TERN_E_PROTOCOL);
	struct tern_packet p;
	fb_expect(f, &p, TERN_DISCONNECT);
	assert_int_equal(p.u.reasoned.reason, TERN_RC_PROTOCOL_ERROR);
	fb_free(f);
}

/* [MQTT-3.3.2-7]: an alias set on one connection means nothing on the
 * next, and the next may set it again. */
static void test_topic_alias_not_carried_to_next_connection(void **state)
{
	(void)state;
	struct tern_props cp = {0};
	cp.present = TERN_PROP_BIT(TERN_PROP_TOPIC_ALIAS_MAXIMUM);
	cp.topic_alias_maximum = 4;
	struct tern_connect_opts o = fb_opts(TERN_V5, "c");
	o.props = &cp;
	struct fb *f = fb_new(&o, false);
	fb_handshake(f, 0, false, NULL);
	struct tern_packet in = {.type = TERN_PUBLISH};
	in.u.publish.topic = B("first/topic");
	in.u.publish.payload = B("1");
	in.u.publish.props.present = TERN_PROP_BIT(TERN_PROP_TOPIC_ALIAS);
	in.u.publish.props.topic_alias = 2;
	fb_send(f, &in);
	assert_int_equal(f->n_msgs, 1);
	fb_hangup(f);
	fb_wait_disconnect(f, FB_WAIT_MS);
	assert_int_equal(f->disc_err, TERN_E_CLOSED);

	/* Set again on the second connection: resolved to the new topic. */
	fb_attach(f, &o);
	fb_handshake(f, 0, false, NULL);
	in.u.publish.topic = B("second");
	in.u.publish.payload = B("2");
	fb_send(f, &in);
	in.u.publish.topic = B("");
	in.u.publish.payload = B("3");
	fb_send(f, &in);
	assert_int_equal(f->n_msgs, 3);
	assert_string_equal(f->msgs[2].topic, "second");
	f->n_disconnect = 0; /* fb_wait_disconnect waits for the next one */
	fb_hangup(f);
	fb_wait_disconnect(f, FB_WAIT_MS);
	assert_int_equal(f->disc_err, TERN_E_CLOSED);

	/* Used alone on a third connection: never set there. */
	fb_attach(f, &o);
	fb_handshake(f, 0, false, NULL);
	fb_send(f, &in);
	assert_int_equal(f->n_msgs, 3);
	assert_int_equal(f->disc_err, TERN_E_PROTOCOL);
	struct tern_packet p;
	fb_expect(f, &p, TERN_DISCONNECT);
	assert_int_equal(p.u.reasoned.reason, TERN_RC_PROTOCOL_ERROR);
	fb_free(f);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	        cmocka_unit_test(test_malformed_input_v5_disconnects_with_0x81),
	        cmocka_unit_test(test_malformed_input_v311_just_closes),
	        cmocka_unit_test(test_garbage_before_connack_and_packet_type_0),
	        cmocka_unit_test(test_random_input_after_connack_never_crashes),
	        cmocka_unit_test(test_auth_from_broker_is_protocol_error),
	        cmocka_unit_test(test_server_disconnect_reason_and_string_surfaced),
	        cmocka_unit_test(test_oversized_packet_rejected_with_0x95),
	        cmocka_unit_test(test_keepalive_pingreq_and_dead_connection),
	        cmocka_unit_test(test_no_pingreq_while_traffic_flows),
	        cmocka_unit_test(test_connack_timeout),
	        cmocka_unit_test(test_reconnect_backoff_grows_with_jitter),
	        cmocka_unit_test(test_user_disconnect_sends_disconnect_and_reports_ok),
	        cmocka_unit_test(test_packet_id_wraps_without_reuse),
	        cmocka_unit_test(test_packet_ids_exhausted_is_limit),
	        cmocka_unit_test(test_server_maximum_packet_size_is_too_large),
	        cmocka_unit_test(test_publish_argument_checks),
	        cmocka_unit_test(test_suback_and_unsuback_reach_callbacks),
	        cmocka_unit_test(test_suback_with_wrong_count_is_protocol_error_MQTT_3_9_3_1),
	        cmocka_unit_test(test_topic_alias_out_encoded_and_in_resolved),
	        cmocka_unit_test(test_topic_alias_never_set_is_protocol_error),
	        cmocka_unit_test(test_topic_alias_not_carried_to_next_connection),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
