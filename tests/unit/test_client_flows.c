/*
 * test_client_flows.c - libtern's protocol state machines against a scripted
 * broker (client_fake_broker.h): CONNECT contents, CONNACK outcomes, the
 * QoS 1 and QoS 2 flows in both directions, session resume with DUP resend,
 * and the server's Receive Maximum. Spec statements are cited by their
 * [MQTT-x.x.x-y] numbers.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include "client_fake_broker.h"

/* ---- CONNECT and CONNACK ---- */

static void test_connect_v311_carries_options(void **state)
{
	(void)state;
	struct tern_will will = {
	        .topic = "last/will", .payload = "bye", .payload_len = 3, .qos = 1, .retain = true};
	struct tern_connect_opts o = fb_opts(TERN_V311, "cid-1");
	o.keep_alive = 42;
	o.clean_start = false;
	o.username = "user";
	o.password = "pw\0x";
	o.password_len = 4;
	o.will = &will;
	struct fb *f = fb_new(&o, false);

	struct tern_packet p;
	fb_expect(f, &p, TERN_CONNECT);
	const struct tern_connect *c = &p.u.connect;
	assert_int_equal(c->version, TERN_V311);
	assert_false(c->clean_start);
	assert_int_equal(c->keep_alive, 42);
	assert_memory_equal(c->client_id.data, "cid-1", 5);
	assert_true(c->has_username && c->has_password);
	assert_int_equal(c->password.len, 4);
	assert_memory_equal(c->password.data, "pw\0x", 4);
	assert_true(c->will && c->will_retain);
	assert_int_equal(c->will_qos, 1);
	assert_memory_equal(c->will_topic.data, "last/will", 9);
	assert_memory_equal(c->will_payload.data, "bye", 3);
	assert_string_equal(tern_client_id(f->c), "cid-1");
	fb_free(f);
}

static void test_connect_v31_and_empty_id_forces_clean_session_MQTT_3_1_3_7(void **state)
{
	(void)state;
	struct tern_connect_opts o = fb_opts(TERN_V31, "old");
	struct fb *f = fb_new(&o, false);
	struct tern_packet p;
	fb_expect(f, &p, TERN_CONNECT);
	assert_int_equal(p.u.connect.version, TERN_V31);
	fb_free(f);

	o = fb_opts(TERN_V311, NULL);
	o.clean_start = false;
	f = fb_new(&o, false);
	fb_expect(f, &p, TERN_CONNECT);
	assert_int_equal(p.u.connect.client_id.len, 0);
	assert_true(p.u.connect.clean_start);
	fb_free(f);
}

static void test_connect_v5_properties_copied(void **state)
{
	(void)state;
	uint8_t user[64];
	size_t ulen = 0;
	assert_int_equal(tern_user_prop_encode(user, sizeof(user), &ulen, B("k"), B("v")), TERN_OK);
	struct tern_props props = {0};
	props.present = TERN_PROP_BIT(TERN_PROP_SESSION_EXPIRY);
	props.session_expiry = 3600;
	props.user_raw = (struct tern_bytes){user, (uint32_t)ulen};
	struct tern_connect_opts o = fb_opts(TERN_V5, "v5c");
	o.props = &props;
	struct fb *f = fb_new(&o, false);
	/* The library copied the props: the caller's memory may change. */
	memset(user, 0, sizeof(user));
	props.session_expiry = 1;

	struct tern_packet p;
	fb_expect(f, &p, TERN_CONNECT);
	assert_int_equal(p.u.connect.version, TERN_V5);
	assert_true(p.u.connect.props.present & TERN_PROP_BIT(TERN_PROP_SESSION_EXPIRY));
	assert_int_equal(p.u.connect.props.session_expiry, 3600);
	assert_int_equal(p.u.connect.props.n_user, 1);
	size_t cur = 0;
	struct tern_bytes k, v;
	assert_true(tern_props_next_user(&p.u.connect.props, &cur, &k, &v));
	assert_memory_equal(k.data, "k", 1);
	fb_free(f);
}

static void test_connack_refused_reports_and_closes(void **state)
{
	(void)state;
	struct tern_connect_opts o = fb_opts(TERN_V311, "x");
	o.auto_reconnect = true; /* a refusal is not retried */
	struct fb *f = fb_new(&o, false);
	fb_handshake(f, TERN_V3_NOT_AUTHORIZED, false, NULL);
	assert_int_equal(f->n_connect, 1);
	assert_int_equal(f->connect_reason, TERN_V3_NOT_AUTHORIZED);
	assert_int_equal(f->n_disconnect, 1);
	assert_int_equal(f->disc_err, TERN_E_PROTOCOL);
	assert_int_equal(f->disc_reason, TERN_V3_NOT_AUTHORIZED);
	assert_false(tern_client_is_connected(f->c));
	assert_int_equal(tern_client_fd(f->c), -1);
	assert_int_equal(tern_client_timeout_ms(f->c), -1); /* no reconnect */
	assert_string_equal(tern_reason_string(TERN_V3_NOT_AUTHORIZED, true), "not authorized");
	fb_free(f);
}

static void test_connack_v5_properties_applied(void **state)
{
	(void)state;
	struct tern_connect_opts o = fb_opts(TERN_V5, NULL);
	o.keep_alive = 60;
	struct fb *f = fb_new(&o, false);
	struct tern_props props = {0};
	props.present = TERN_PROP_BIT(TERN_PROP_ASSIGNED_CLIENT_ID) |
	                TERN_PROP_BIT(TERN_PROP_SERVER_KEEP_ALIVE);
	props.assigned_client_id = B("auto-42");
	props.server_keep_alive = 7;
	fb_handshake(f, 0, false, &props);
	assert_int_equal(f->n_connect, 1);
	assert_int_equal(f->connect_reason, 0);
	assert_string_equal(f->connect_assigned, "auto-42");
	assert_true(tern_client_is_connected(f->c));
	assert_string_equal(tern_client_id(f->c), "auto-42");
	/* Server Keep Alive overrides ours [MQTT-3.2.2-21]. */
	assert_int_equal(f->c->keep_alive, 7);
	assert_true(tern_client_timeout_ms(f->c) <= 7000);
	fb_free(f);
}

static void test_session_present_with_clean_start_is_protocol_error_MQTT_3_2_2_4(void **state)
{
	(void)state;
	struct tern_connect_opts o = fb_opts(TERN_V5, "c");
	struct fb *f = fb_new(&o, false);
	fb_handshake(f, 0, true, NULL);
	assert_int_equal(f->n_disconnect, 1);
	assert_int_equal(f->disc_err, TERN_E_PROTOCOL);
	struct tern_packet p;
	fb_expect(f, &p, TERN_DISCONNECT);
	assert_int_equal(p.u.reasoned.reason, TERN_RC_PROTOCOL_ERROR);
	fb_free(f);
}

/* ---- outbound QoS 1 and 2 ---- */

static void test_qos1_publish_completes_on_puback(void **state)
{
	(void)state;
	struct tern_connect_opts o = fb_opts(TERN_V5, "c");
	struct fb *f = fb_new(&o, false);
	fb_handshake(f, 0, false, NULL);
	uint16_t id = fb_publish(f, "a/b", "hello", 1);
	assert_int_not_equal(id, 0);
	assert_int_equal(tern_client_pending(f->c), 1);

	struct tern_packet p;
	fb_expect(f, &p, TERN_PUBLISH);
	assert_int_equal(p.u.publish.qos, 1);
	assert_false(p.u.publish.dup);
	assert_int_equal(p.u.publish.packet_id, id);
	assert_memory_equal(p.u.publish.topic.data, "a/b", 3);
	assert_memory_equal(p.u.publish.payload.data, "hello", 5);

	/* The PUBACK's reason string reaches on_publish. */
	struct tern_packet ack = {.type = TERN_PUBACK};
	ack.u.ack.packet_id = id;
	ack.u.ack.reason = TERN_RC_NO_MATCHING_SUBSCRIBERS;
	ack.u.ack.props.present = TERN_PROP_BIT(TERN_PROP_REASON_STRING);
	ack.u.ack.props.reason_string = B("nobody listens");
	fb_send(f, &ack);
	assert_int_equal(f->n_pub, 1);
	assert_int_equal(f->pub_ids[0], id);
	assert_int_equal(f->pub_reasons[0], TERN_RC_NO_MATCHING_SUBSCRIBERS);
	assert_string_equal(f->pub_reason_string, "nobody listens");
	assert_int_equal(tern_client_pending(f->c), 0);
	fb_free(f);
}

static void test_qos2_publish_pubrec_pubrel_pubcomp(void **state)
{
	(void)state;
	struct tern_connect_opts o = fb_opts(TERN_V311, "c");
	struct fb *f = fb_new(&o, false);
	fb_handshake(f, 0, false, NULL);
	uint16_t id = fb_publish(f, "q2", "x", 2);
	struct tern_packet p;
	fb_expect(f, &p, TERN_PUBLISH);
	assert_int_equal(p.u.publish.qos, 2);
	fb_send_ack(f, TERN_PUBREC, id, 0);
	assert_int_equal(f->n_pub, 0); /* not complete before PUBCOMP */
	fb_expect(f, &p, TERN_PUBREL);
	assert_int_equal(p.u.ack.packet_id, id);
	fb_send_ack(f, TERN_PUBCOMP, id, 0);
	assert_int_equal(f->n_pub, 1);
	assert_int_equal(f->pub_reasons[0], 0);
	assert_int_equal(tern_client_pending(f->c), 0);
	fb_expect_silence(f);
	fb_free(f);
}

static void test_qos2_pubrec_failure_ends_flow(void **state)
{
	(void)state;
	struct tern_connect_opts o = fb_opts(TERN_V5, "c");
	struct fb *f = fb_new(&o, false);
	fb_handshake(f, 0, false, NULL);
	uint16_t id = fb_publish(f, "q2", "x", 2);
	struct tern_packet p;
	fb_expect(f, &p, TERN_PUBLISH);
	fb_send_ack(f, TERN_PUBREC, id, TERN_RC_NOT_AUTHORIZED);
	assert_int_equal(f->n_pub, 1);
	assert_int_equal(f->pub_reasons[0], TERN_RC_NOT_AUTHORIZED);
	assert_int_equal(tern_client_pending(f->c), 0);
	fb_expect_silence(f); /* no PUBREL after a failed PUBREC */
	fb_free(f);
}

/* ---- inbound QoS ---- */

static void send_publish(struct fb *f, const char *topic, const char *payload, uint8_t qos,
                         uint16_t id, bool dup)
{
	struct tern_packet p = {.type = TERN_PUBLISH};
	p.u.publish.topic = (struct tern_bytes){(const uint8_t *)topic, (uint32_t)strlen(topic)};
	p.u.publish.payload =
	        (struct tern_bytes){(const uint8_t *)payload, (uint32_t)strlen(payload)};
	p.u.publish.qos = qos;
	p.u.publish.packet_id = id;
	p.u.publish.dup = dup;
	fb_send(f, &p);
}

static void test_inbound_qos1_delivered_and_acked(void **state)
{
	(void)state;
	struct tern_connect_opts o = fb_opts(TERN_V311, "c");
	struct fb *f = fb_new(&o, false);
	fb_handshake(f, 0, false, NULL);
	send_publish(f, "in/1", "payload", 1, 9, false);
	assert_int_equal(f->n_msgs, 1);
	assert_string_equal(f->msgs[0].topic, "in/1");
	assert_string_equal(f->msgs[0].payload, "payload");
	assert_int_equal(f->msgs[0].qos, 1);
	struct tern_packet p;
	fb_expect(f, &p, TERN_PUBACK);
	assert_int_equal(p.u.ack.packet_id, 9);
	fb_free(f);
}

/* Method B of 4.3.3: delivered on the first PUBLISH, the id remembered
 * until PUBREL, so a resend before PUBREL is not delivered again. */
static void test_inbound_qos2_duplicate_before_pubrel_delivered_once(void **state)
{
	(void)state;
	struct tern_connect_opts o = fb_opts(TERN_V5, "c");
	struct fb *f = fb_new(&o, false);
	fb_handshake(f, 0, false, NULL);
	struct tern_packet p;

	send_publish(f, "in/2", "once", 2, 7, false);
	assert_int_equal(f->n_msgs, 1);
	fb_expect(f, &p, TERN_PUBREC);
	assert_int_equal(p.u.ack.packet_id, 7);

	send_publish(f, "in/2", "once", 2, 7, true);
	assert_int_equal(f->n_msgs, 1); /* not delivered again */
	fb_expect(f, &p, TERN_PUBREC);

	fb_send_ack(f, TERN_PUBREL, 7, 0);
	fb_expect(f, &p, TERN_PUBCOMP);
	assert_int_equal(p.u.ack.packet_id, 7);
	assert_int_equal(p.u.ack.reason, 0);

	/* After PUBREL the id is free: a new message with it is new. */
	send_publish(f, "in/2", "again", 2, 7, false);
	assert_int_equal(f->n_msgs, 2);
	assert_string_equal(f->msgs[1].payload, "again");
	fb_expect(f, &p, TERN_PUBREC);

	/* PUBREL for an id we do not hold: PUBCOMP 0x92 (v5). */
	fb_send_ack(f, TERN_PUBREL, 99, 0);
	fb_expect(f, &p, TERN_PUBCOMP);
	assert_int_equal(p.u.ack.reason, TERN_RC_PACKET_ID_NOT_FOUND);
	fb_free(f);
}

/* manual_ack (a bridge): a QoS 1 message is not acknowledged before the
 * application says so, then it is. */
static void test_manual_ack_qos1_waits_for_the_application(void **state)
{
	(void)state;
	struct tern_connect_opts o = fb_opts(TERN_V311, "c");
	o.manual_ack = true;
	struct fb *f = fb_new(&o, false);
	fb_handshake(f, 0, false, NULL);
	send_publish(f, "in/1", "p", 1, 9, false);
	assert_int_equal(f->n_msgs, 1);
	fb_expect_silence(f);
	assert_int_equal(tern_client_ack(f->c, TERN_PUBACK, 9, 0), TERN_OK);
	struct tern_packet p;
	fb_expect(f, &p, TERN_PUBACK);
	assert_int_equal(p.u.ack.packet_id, 9);
	assert_int_equal(tern_client_ack(f->c, TERN_PUBREL, 9, 0), TERN_E_INVALID);
	assert_int_equal(tern_client_ack(f->c, TERN_PUBACK, 0, 0), TERN_E_INVALID);
	fb_free(f);
}

/* manual_ack, QoS 2: delivered once (method B of 4.3.3); no PUBREC for
 * the first PUBLISH nor for a resend until the application gives it, the
 * resend after that gets it at once; PUBREL goes to on_pubrel and PUBCOMP
 * out only with the application's; a refused PUBREC frees the id. */
static void test_manual_ack_qos2_pubrec_and_pubcomp_from_the_application(void **state)
{
	(void)state;
	struct tern_connect_opts o = fb_opts(TERN_V5, "c");
	o.manual_ack = true;
	struct fb *f = fb_new(&o, false);
	fb_handshake(f, 0, false, NULL);
	struct tern_packet p;

	send_publish(f, "in/2", "once", 2, 7, false);
	assert_int_equal(f->n_msgs, 1);
	send_publish(f, "in/2", "once", 2, 7, true);
	assert_int_equal(f->n_msgs, 1);
	fb_expect_silence(f);

	assert_int_equal(tern_client_ack(f->c, TERN_PUBREC, 7, 0), TERN_OK);
	fb_expect(f, &p, TERN_PUBREC);
	assert_int_equal(p.u.ack.packet_id, 7);
	send_publish(f, "in/2", "once", 2, 7, true);
	assert_int_equal(f->n_msgs, 1);
	fb_expect(f, &p, TERN_PUBREC);

	fb_send_ack(f, TERN_PUBREL, 7, 0);
	assert_int_equal(f->n_pubrel, 1);
	assert_int_equal(f->pubrel_ids[0], 7);
	fb_expect_silence(f);
	assert_int_equal(tern_client_ack(f->c, TERN_PUBCOMP, 7, 0), TERN_OK);
	fb_expect(f, &p, TERN_PUBCOMP);
	assert_int_equal(p.u.ack.packet_id, 7);

	/* Refused: the id is free again, so its next PUBLISH is new. */
	send_publish(f, "in/2", "no", 2, 8, false);
	assert_int_equal(f->n_msgs, 2);
	assert_int_equal(tern_client_ack(f->c, TERN_PUBREC, 8, TERN_RC_NOT_AUTHORIZED), TERN_OK);
	fb_expect(f, &p, TERN_PUBREC);
	assert_int_equal(p.u.ack.reason, TERN_RC_NOT_AUTHORIZED);
	send_publish(f, "in/2", "new", 2, 8, false);
	assert_int_equal(f->n_msgs, 3);
	fb_free(f);
}

/* The bridge option sets bit 0x80 of the protocol level (mosquitto's
 * try_private), nothing else. */
static void test_connect_bridge_bit_in_protocol_level(void **state)
{
	(void)state;
	struct tern_packet p = {.type = TERN_CONNECT};
	p.u.connect.version = TERN_V311;
	p.u.connect.client_id = B("b");
	uint8_t plain[64], bridged[64];
	size_t n1 = 0, n2 = 0;
	assert_int_equal(tern_encode_packet(&p, TERN_V311, plain, sizeof(plain), &n1), TERN_OK);
	p.u.connect.bridge = true;
	assert_int_equal(tern_encode_packet(&p, TERN_V311, bridged, sizeof(bridged), &n2), TERN_OK);
	assert_int_equal(n1, n2);
	/* Fixed header (2), protocol name (2 + 4), then the level. */
	assert_int_equal(plain[8], TERN_V311);
	assert_int_equal(bridged[8], TERN_V311 | 0x80);
	plain[8] = bridged[8];
	assert_memory_equal(plain, bridged, n1);
}

static void test_receive_queue_keeps_message_and_properties(void **state)
{
	(void)state;
	struct tern_connect_opts o = fb_opts(TERN_V5, "c");
	struct fb *f = fb_new(&o, true);
	fb_handshake(f, 0, false, NULL);

	uint8_t user[64];
	size_t ulen = 0;
	assert_int_equal(tern_user_prop_encode(user, sizeof(user), &ulen, B("who"), B("me")),
	                 TERN_OK);
	struct tern_packet p = {.type = TERN_PUBLISH};
	p.u.publish.topic = B("r/q");
	p.u.publish.payload = B("data");
	p.u.publish.props.present = TERN_PROP_BIT(TERN_PROP_CONTENT_TYPE);
	p.u.publish.props.content_type = B("text/plain");
	p.u.publish.props.user_raw = (struct tern_bytes){user, (uint32_t)ulen};
	fb_send(f, &p);

	struct tern_message *m = NULL;
	assert_int_equal(tern_client_receive(f->c, &m, 0), TERN_OK);
	assert_non_null(m);
	assert_string_equal(m->topic, "r/q");
	assert_int_equal(m->payload_len, 4);
	assert_memory_equal(m->payload, "data", 4);
	assert_memory_equal(m->props.content_type.data, "text/plain", 10);
	assert_int_equal(m->props.n_user, 1);
	size_t cur = 0;
	struct tern_bytes k, v;
	assert_true(tern_props_next_user(&m->props, &cur, &k, &v));
	assert_memory_equal(v.data, "me", 2);
	tern_message_free(m);
	assert_int_equal(tern_client_receive(f->c, &m, 0), TERN_E_TIMEOUT);
	fb_free(f);
}

/* ---- session resume ---- */

/* [MQTT-4.4.0-1]: on a resumed session unacknowledged PUBLISH are resent
 * with DUP, and PUBREL for those whose PUBREC came, in the original order. */
static void test_resume_resends_dup_and_pubrel_in_order(void **state)
{
	(void)state;
	struct tern_connect_opts o = fb_opts(TERN_V311, "persist");
	o.clean_start = false;
	struct fb *f = fb_new(&o, false);
	fb_handshake(f, 0, false, NULL);
	uint16_t a = fb_publish(f, "t", "A", 1);
	uint16_t b = fb_publish(f, "t", "B", 2);
	uint16_t c = fb_publish(f, "t", "C", 1);
	struct tern_packet p;
	fb_expect(f, &p, TERN_PUBLISH);
	fb_expect(f, &p, TERN_PUBLISH);
	fb_expect(f, &p, TERN_PUBLISH);
	fb_send_ack(f, TERN_PUBREC, b, 0);
	fb_expect(f, &p, TERN_PUBREL);

	fb_hangup(f);
	fb_wait_disconnect(f, FB_WAIT_MS);
	assert_int_equal(f->disc_err, TERN_E_CLOSED);
	assert_int_equal(tern_client_pending(f->c), 3);

	fb_attach(f, &o);
	fb_handshake(f, 0, true, NULL);
	assert_true(f->connect_session);
	fb_expect(f, &p, TERN_PUBLISH);
	assert_int_equal(p.u.publish.packet_id, a);
	assert_true(p.u.publish.dup);
	assert_memory_equal(p.u.publish.payload.data, "A", 1);
	fb_expect(f, &p, TERN_PUBREL);
	assert_int_equal(p.u.ack.packet_id, b);
	fb_expect(f, &p, TERN_PUBLISH);
	assert_int_equal(p.u.publish.packet_id, c);
	assert_true(p.u.publish.dup);

	fb_send_ack(f, TERN_PUBACK, a, 0);
	fb_send_ack(f, TERN_PUBCOMP, b, 0);
	fb_send_ack(f, TERN_PUBACK, c, 0);
	assert_int_equal(f->n_pub, 3);
	assert_int_equal(tern_client_pending(f->c), 0);
	fb_free(f);
}

/* Without a session on the broker the in-flight messages are forgotten
 * (reported with 0x80), but a message never sent still goes out, fresh. */
static void test_no_session_discards_inflight_sends_queued(void **state)
{
	(void)state;
	struct tern_connect_opts o = fb_opts(TERN_V311, "lost");
	o.clean_start = false;
	struct fb *f = fb_new(&o, false);
	fb_handshake(f, 0, false, NULL);
	uint16_t a = fb_publish(f, "t", "A", 1);
	struct tern_packet p;
	fb_expect(f, &p, TERN_PUBLISH);
	fb_hangup(f);
	fb_wait_disconnect(f, FB_WAIT_MS);

	/* Queued while disconnected. QoS 0 cannot be. */
	uint16_t b = fb_publish(f, "t", "B", 1);
	struct tern_publish_args q0 = {.topic = "t", .payload = "z", .payload_len = 1};
	assert_int_equal(tern_client_publish(f->c, &q0, NULL), TERN_E_CLOSED);
	assert_int_equal(tern_client_pending(f->c), 2);

	fb_attach(f, &o);
	fb_handshake(f, 0, false, NULL);
	assert_int_equal(f->n_pub, 1);
	assert_int_equal(f->pub_ids[0], a);
	assert_int_equal(f->pub_reasons[0], TERN_RC_UNSPECIFIED);
	fb_expect(f, &p, TERN_PUBLISH);
	assert_int_equal(p.u.publish.packet_id, b);
	assert_false(p.u.publish.dup);
	assert_memory_equal(p.u.publish.payload.data, "B", 1);
	fb_expect_silence(f);
	assert_int_equal(tern_client_pending(f->c), 1);
	fb_free(f);
}

/* ---- packet ids and PUBREL of the application's (a bridge) ---- */

/* A caller's packet id goes out as given, with DUP when asked; an id in use
 * by a publish or a request is refused (TERN_E_BUSY) until that ends
 * [MQTT-2.3.1-2]; QoS 0 takes neither id nor DUP [MQTT-2.3.1-5],
 * [MQTT-3.3.1-2]. */
static void test_publish_with_the_callers_packet_id_and_dup(void **state)
{
	(void)state;
	struct tern_connect_opts o = fb_opts(TERN_V311, "ids");
	struct fb *f = fb_new(&o, false);
	fb_handshake(f, 0, false, NULL);
	struct tern_packet p;

	assert_int_equal(fb_publish_id(f, "t", "A", 2, 77, true), TERN_OK);
	fb_expect(f, &p, TERN_PUBLISH);
	assert_int_equal(p.u.publish.packet_id, 77);
	assert_true(p.u.publish.dup);
	assert_int_equal(fb_publish_id(f, "t", "B", 1, 78, false), TERN_OK);
	fb_expect(f, &p, TERN_PUBLISH);
	assert_int_equal(p.u.publish.packet_id, 78);
	assert_false(p.u.publish.dup);

	assert_int_equal(fb_publish_id(f, "t", "C", 1, 77, false), TERN_E_BUSY);
	assert_int_equal(fb_publish_id(f, "t", "C", 0, 79, false), TERN_E_INVALID);
	struct tern_publish_args q0 = {.topic = "t", .payload = "z", .payload_len = 1, .dup = true};
	assert_int_equal(tern_client_publish(f->c, &q0, NULL), TERN_E_INVALID);

	struct tern_sub_entry e = {.filter = B("s/#"), .qos = 1};
	uint16_t sid = 0;
	assert_int_equal(tern_client_subscribe(f->c, &e, 1, NULL, &sid), TERN_OK);
	fb_expect(f, &p, TERN_SUBSCRIBE);
	assert_int_equal(fb_publish_id(f, "t", "C", 1, sid, false), TERN_E_BUSY);
	assert_int_equal(tern_client_release(f->c, sid), TERN_E_BUSY);

	/* The library's own ids go round the caller's. */
	uint16_t next = sid + 1;
	assert_int_equal(fb_publish_id(f, "t", "D", 1, next, false), TERN_OK);
	fb_expect(f, &p, TERN_PUBLISH);
	uint16_t own = fb_publish(f, "t", "E", 1);
	assert_true(own != next && own != 77 && own != 78 && own != sid);

	fb_send_ack(f, TERN_PUBCOMP, 77, 0); /* before PUBREC: not the end */
	assert_int_equal(f->n_pub, 0);
	fb_send_ack(f, TERN_PUBREC, 77, 0);
	fb_send_ack(f, TERN_PUBACK, 78, 0);
	assert_int_equal(f->n_pub, 1);
	assert_int_equal(fb_publish_id(f, "t", "again", 1, 78, false), TERN_OK);
	fb_free(f);
}

/* With on_pubrec the library sends no PUBREL of its own: the message stays
 * SENT (resent with DUP on a resumed session, its PUBREC reported again)
 * until the application releases it. */
static void test_on_pubrec_leaves_the_pubrel_to_the_application(void **state)
{
	(void)state;
	struct tern_connect_opts o = fb_opts(TERN_V311, "rec");
	o.clean_start = false;
	struct fb *f = fb_new(&o, false);
	f->c->cb.on_pubrec = fb_on_pubrec;
	fb_handshake(f, 0, false, NULL);
	struct tern_packet p;
	uint16_t id = fb_publish(f, "q2", "x", 2);
	fb_expect(f, &p, TERN_PUBLISH);
	fb_send_ack(f, TERN_PUBREC, id, 0);
	assert_int_equal(f->n_pubrec, 1);
	assert_int_equal(f->pubrec_ids[0], id);
	fb_expect_silence(f);
	assert_int_equal(tern_client_pending(f->c), 1);

	fb_hangup(f);
	fb_wait_disconnect(f, FB_WAIT_MS);
	fb_attach(f, &o);
	fb_handshake(f, 0, true, NULL);
	fb_expect(f, &p, TERN_PUBLISH);
	assert_int_equal(p.u.publish.packet_id, id);
	assert_true(p.u.publish.dup);
	fb_expect_silence(f);
	fb_send_ack(f, TERN_PUBREC, id, 0);
	assert_int_equal(f->n_pubrec, 2);

	assert_int_equal(tern_client_release(f->c, id), TERN_OK);
	fb_expect(f, &p, TERN_PUBREL);
	assert_int_equal(p.u.ack.packet_id, id);
	assert_int_equal(tern_client_release(f->c, id), TERN_OK); /* released already */
	fb_expect_silence(f);
	fb_send_ack(f, TERN_PUBCOMP, id, 0);
	assert_int_equal(f->n_pub, 1);
	assert_int_equal(f->pub_reasons[0], 0);

	/* Released from inside the callback, as a bridge without a store
	 * does. */
	f->release_in_callback = true;
	id = fb_publish(f, "q2", "y", 2);
	fb_expect(f, &p, TERN_PUBLISH);
	fb_send_ack(f, TERN_PUBREC, id, 0);
	fb_expect(f, &p, TERN_PUBREL);
	fb_send_ack(f, TERN_PUBCOMP, id, 0);
	assert_int_equal(f->n_pub, 2);
	assert_int_equal(tern_client_pending(f->c), 0);
	fb_free(f);
}

/* After the application's own restart: a PUBREL for an id the library
 * never saw and a PUBLISH with its original id and DUP, made before the
 * connection is up, go out in that order on the resumed session
 * [MQTT-4.4.0-1]; the release completes at PUBCOMP, whose reason (0x92:
 * the broker had finished) reaches on_publish; it is resent when the
 * session is resumed again before PUBCOMP. */
static void test_release_of_an_unknown_id_on_a_resumed_session_MQTT_4_4_0_1(void **state)
{
	(void)state;
	struct tern_connect_opts o = fb_opts(TERN_V5, "restart");
	o.clean_start = false;
	struct fb *f = fb_new(&o, false);
	assert_int_equal(tern_client_release(f->c, 0), TERN_E_INVALID);
	assert_int_equal(tern_client_release(f->c, 5), TERN_OK);
	assert_int_equal(fb_publish_id(f, "t", "six", 2, 6, true), TERN_OK);
	assert_int_equal(fb_publish_id(f, "t", "seven", 1, 7, true), TERN_OK);
	assert_int_equal(tern_client_release(f->c, 6), TERN_E_BUSY); /* not sent yet */
	assert_int_equal(tern_client_release(f->c, 7), TERN_E_BUSY); /* QoS 1 */
	assert_int_equal(fb_publish_id(f, "t", "x", 2, 5, false), TERN_E_BUSY);
	assert_int_equal(tern_client_pending(f->c), 3);

	fb_handshake(f, 0, true, NULL);
	struct tern_packet p;
	fb_expect(f, &p, TERN_PUBREL);
	assert_int_equal(p.u.ack.packet_id, 5);
	fb_expect(f, &p, TERN_PUBLISH);
	assert_int_equal(p.u.publish.packet_id, 6);
	assert_true(p.u.publish.dup);
	assert_memory_equal(p.u.publish.payload.data, "six", 3);
	fb_expect(f, &p, TERN_PUBLISH);
	assert_int_equal(p.u.publish.packet_id, 7);
	assert_true(p.u.publish.dup);

	fb_hangup(f);
	fb_wait_disconnect(f, FB_WAIT_MS);
	fb_attach(f, &o);
	fb_handshake(f, 0, true, NULL);
	fb_expect(f, &p, TERN_PUBREL);
	assert_int_equal(p.u.ack.packet_id, 5);
	fb_expect(f, &p, TERN_PUBLISH);
	assert_int_equal(p.u.publish.packet_id, 6);
	fb_expect(f, &p, TERN_PUBLISH);
	assert_int_equal(p.u.publish.packet_id, 7);

	fb_send_ack(f, TERN_PUBCOMP, 5, TERN_RC_PACKET_ID_NOT_FOUND);
	assert_int_equal(f->n_pub, 1);
	assert_int_equal(f->pub_ids[0], 5);
	assert_int_equal(f->pub_reasons[0], TERN_RC_PACKET_ID_NOT_FOUND);
	fb_send_ack(f, TERN_PUBREC, 6, 0);
	fb_expect(f, &p, TERN_PUBREL); /* no on_pubrec: released at once */
	fb_send_ack(f, TERN_PUBCOMP, 6, 0);
	fb_send_ack(f, TERN_PUBACK, 7, 0);
	assert_int_equal(f->n_pub, 3);
	assert_int_equal(tern_client_pending(f->c), 0);
	fb_free(f);
}

/* A broker that lost the session has nothing to release: a release, sent
 * or still queued, and a message whose PUBREC came (not yet released)
 * complete with 0x00 and no PUBREL goes; a message never answered is
 * reported 0x80 (its fate unknown). */
static void test_release_without_a_session_completes_at_once(void **state)
{
	(void)state;
	struct tern_connect_opts o = fb_opts(TERN_V311, "gone");
	o.clean_start = false;
	struct fb *f = fb_new(&o, false);
	f->c->cb.on_pubrec = fb_on_pubrec;
	fb_handshake(f, 0, false, NULL);
	struct tern_packet p;
	uint16_t a = fb_publish(f, "t", "A", 2);
	uint16_t b = fb_publish(f, "t", "B", 2);
	fb_expect(f, &p, TERN_PUBLISH);
	fb_expect(f, &p, TERN_PUBLISH);
	fb_send_ack(f, TERN_PUBREC, a, 0);
	assert_int_equal(tern_client_release(f->c, 900), TERN_OK);
	fb_expect(f, &p, TERN_PUBREL);
	assert_int_equal(p.u.ack.packet_id, 900);
	fb_hangup(f);
	fb_wait_disconnect(f, FB_WAIT_MS);
	assert_int_equal(tern_client_release(f->c, 901), TERN_OK);

	fb_attach(f, &o);
	fb_handshake(f, 0, false, NULL);
	assert_int_equal(f->n_pub, 4);
	assert_int_equal(f->pub_ids[0], a);
	assert_int_equal(f->pub_reasons[0], TERN_RC_SUCCESS);
	assert_int_equal(f->pub_ids[1], b);
	assert_int_equal(f->pub_reasons[1], TERN_RC_UNSPECIFIED);
	assert_int_equal(f->pub_ids[2], 900);
	assert_int_equal(f->pub_reasons[2], TERN_RC_SUCCESS);
	assert_int_equal(f->pub_ids[3], 901);
	assert_int_equal(f->pub_reasons[3], TERN_RC_SUCCESS);
	fb_expect_silence(f);
	assert_int_equal(tern_client_pending(f->c), 0);
	fb_free(f);
}

/* ---- Receive Maximum ---- */

static void test_receive_maximum_queues_excess_publishes(void **state)
{
	(void)state;
	struct tern_connect_opts o = fb_opts(TERN_V5, "rm");
	struct fb *f = fb_new(&o, false);
	struct tern_props props = {0};
	props.present = TERN_PROP_BIT(TERN_PROP_RECEIVE_MAXIMUM);
	props.receive_maximum = 2;
	fb_handshake(f, 0, false, &props);

	uint16_t ids[5];
	for (int i = 0; i < 5; i++)
		ids[i] = fb_publish(f, "rm", i % 2 ? "odd" : "even", (uint8_t)(1 + i % 2));
	assert_int_equal(tern_client_pending(f->c), 5);
	struct tern_packet p;
	fb_expect(f, &p, TERN_PUBLISH);
	assert_int_equal(p.u.publish.packet_id, ids[0]);
	fb_expect(f, &p, TERN_PUBLISH);
	assert_int_equal(p.u.publish.packet_id, ids[1]);
	fb_expect_silence(f); /* two in flight: the rest wait */

	fb_send_ack(f, TERN_PUBACK, ids[0], 0);
	fb_expect(f, &p, TERN_PUBLISH);
	assert_int_equal(p.u.publish.packet_id, ids[2]);
	fb_expect_silence(f);

	/* A QoS 2 message counts until PUBCOMP, not PUBREC. */
	fb_send_ack(f, TERN_PUBREC, ids[1], 0);
	fb_expect(f, &p, TERN_PUBREL);
	fb_expect_silence(f);
	fb_send_ack(f, TERN_PUBCOMP, ids[1], 0);
	fb_expect(f, &p, TERN_PUBLISH);
	assert_int_equal(p.u.publish.packet_id, ids[3]);
	fb_expect_silence(f);
	assert_int_equal(tern_client_pending(f->c), 3);
	fb_free(f);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	        cmocka_unit_test(test_connect_v311_carries_options),
	        cmocka_unit_test(test_connect_v31_and_empty_id_forces_clean_session_MQTT_3_1_3_7),
	        cmocka_unit_test(test_connect_v5_properties_copied),
	        cmocka_unit_test(test_connack_refused_reports_and_closes),
	        cmocka_unit_test(test_connack_v5_properties_applied),
	        cmocka_unit_test(
	                test_session_present_with_clean_start_is_protocol_error_MQTT_3_2_2_4),
	        cmocka_unit_test(test_qos1_publish_completes_on_puback),
	        cmocka_unit_test(test_qos2_publish_pubrec_pubrel_pubcomp),
	        cmocka_unit_test(test_qos2_pubrec_failure_ends_flow),
	        cmocka_unit_test(test_inbound_qos1_delivered_and_acked),
	        cmocka_unit_test(test_inbound_qos2_duplicate_before_pubrel_delivered_once),
	        cmocka_unit_test(test_receive_queue_keeps_message_and_properties),
	        cmocka_unit_test(test_resume_resends_dup_and_pubrel_in_order),
	        cmocka_unit_test(test_no_session_discards_inflight_sends_queued),
	        cmocka_unit_test(test_receive_maximum_queues_excess_publishes),
	        cmocka_unit_test(test_publish_with_the_callers_packet_id_and_dup),
	        cmocka_unit_test(test_on_pubrec_leaves_the_pubrel_to_the_application),
	        cmocka_unit_test(test_release_of_an_unknown_id_on_a_resumed_session_MQTT_4_4_0_1),
	        cmocka_unit_test(test_release_without_a_session_completes_at_once),
	        cmocka_unit_test(test_manual_ack_qos1_waits_for_the_application),
	        cmocka_unit_test(test_manual_ack_qos2_pubrec_and_pubcomp_from_the_application),
	        cmocka_unit_test(test_connect_bridge_bit_in_protocol_level),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
