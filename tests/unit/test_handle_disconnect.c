/*
 * test_handle_disconnect.c - unit tests of handle_disconnect(),
 * handle_pingreq(), handle_auth() and handle_detach()
 * (handle_disconnect.c): DISCONNECT and the will, the Will Delay Interval,
 * session expiry at disconnect, driven through a fake sink
 * (handler_fake.h) with no socket. A subscriber on "will/#" on the same
 * worker shows whether a will was published. MQTT 5.0 numbering.
 */
#include "handler_fake.h"

struct fixture {
	struct broker *b;
	struct worker *w;
	struct fake_sink *sub; /* subscribed to will/# */
};

static int setup(void **state)
{
	static struct fixture fx;
	fx.b = fake_broker(1, NULL);
	fx.w = fx.b->workers[0];
	fx.sub = fake_connect(fx.w, TERN_V5, "sub", true, NULL);
	fake_subscribe(fx.b, fx.sub, "will/#", 0);
	*state = &fx;
	return 0;
}

static int teardown(void **state)
{
	struct fixture *fx = *state;
	fake_free(fx->sub);
	fake_broker_free(fx->b);
	return 0;
}

static void expiry_100(struct tern_connect *c)
{
	c->props.present |= TERN_PROP_BIT(TERN_PROP_SESSION_EXPIRY);
	c->props.session_expiry = 100;
}

static void with_will(struct tern_connect *c)
{
	expiry_100(c);
	c->will = true;
	c->will_topic = fake_bytes("will/a");
	c->will_payload = fake_bytes("gone");
}

static void with_delayed_will(struct tern_connect *c)
{
	with_will(c);
	c->will_props.present |= TERN_PROP_BIT(TERN_PROP_WILL_DELAY);
	c->will_props.will_delay = 5;
}

/* Sends DISCONNECT with reason (and, when expiry >= 0, a Session Expiry
 * Interval) from f's session. */
static void disconnect(struct fake_sink *f, uint8_t reason, int64_t expiry)
{
	struct tern_packet p = {.type = TERN_DISCONNECT};
	p.u.reasoned.reason = reason;
	if (expiry >= 0) {
		p.u.reasoned.props.present |= TERN_PROP_BIT(TERN_PROP_SESSION_EXPIRY);
		p.u.reasoned.props.session_expiry = (uint32_t)expiry;
	}
	uint8_t buf[128];
	struct tern_packet d = fake_decode(&p, f->sink.version, buf, sizeof(buf));
	handle_disconnect(&f->sink, f->sink.session, &d.u.reasoned);
}

/* [MQTT-3.12.4-1]: PINGREQ is answered with PINGRESP. */
static void pingreq_gets_pingresp(void **state)
{
	struct fixture *fx = *state;
	struct fake_sink *f = fake_connect(fx->w, TERN_V311, "a", true, NULL);
	size_t before = f->n_packets;
	handle_pingreq(&f->sink);
	assert_int_equal(f->n_packets, before + 1);
	fake_last(f, TERN_PINGRESP);
	assert_false(f->closed);
	fake_free(f);
}

/* [MQTT-3.14.4-3]: a DISCONNECT with reason 0x00 discards the will; the
 * connection ends without a DISCONNECT of ours. */
static void disconnect_normal_discards_will(void **state)
{
	struct fixture *fx = *state;
	struct fake_sink *f = fake_connect(fx->w, TERN_V5, "a", true, with_will);
	size_t before = f->n_packets;
	disconnect(f, TERN_RC_SUCCESS, -1);
	assert_true(f->ended);
	assert_int_equal(f->n_packets, before);
	fake_reap(f);
	assert_int_equal(fx->sub->n_pubs, 0);
	fake_free(f);
	assert_int_equal(fx->sub->n_pubs, 0);
}

/* 3.1.1: every DISCONNECT discards the will (3.1.1 [MQTT-3.1.2-10]). */
static void disconnect_v311_discards_will(void **state)
{
	struct fixture *fx = *state;
	struct fake_sink *f = fake_connect(fx->w, TERN_V311, "a", true, with_will);
	disconnect(f, 0, -1);
	fake_free(f);
	assert_int_equal(fx->sub->n_pubs, 0);
	assert_null(fake_session(fx->w, "a"));
}

/* [MQTT-3.1.2-8]: DISCONNECT with 0x04 (disconnect with will message)
 * keeps the will, published when the connection closes. */
static void disconnect_with_will_reason_publishes(void **state)
{
	struct fixture *fx = *state;
	struct fake_sink *f = fake_connect(fx->w, TERN_V5, "a", true, with_will);
	disconnect(f, 0x04, -1);
	assert_true(f->ended);
	assert_int_equal(fx->sub->n_pubs, 0);
	fake_reap(f);
	assert_int_equal(fx->sub->n_pubs, 1);
	assert_string_equal(fx->sub->pubs[0].topic, "will/a");
	fake_free(f);
	assert_int_equal(fx->sub->n_pubs, 1);
}

/* [MQTT-3.1.2-8]: a connection that closes without DISCONNECT has its
 * will published. */
static void connection_lost_publishes_will(void **state)
{
	struct fixture *fx = *state;
	struct fake_sink *f = fake_connect(fx->w, TERN_V311, "a", true, with_will);
	fake_free(f);
	assert_int_equal(fx->sub->n_pubs, 1);
	assert_string_equal(fx->sub->pubs[0].topic, "will/a");
}

/* [MQTT-3.1.3-9]: with a Will Delay Interval the will waits; it is
 * published once the delay passed (the session outlives it). */
static void will_delay_waits(void **state)
{
	struct fixture *fx = *state;
	struct fake_sink *f = fake_connect(fx->w, TERN_V5, "a", true, with_delayed_will);
	fake_free(f);
	struct session *s = fake_session(fx->w, "a");
	assert_non_null(s);
	assert_non_null(s->will);
	assert_int_equal(fx->sub->n_pubs, 0);
	assert_false(session_tick(s, fx->w->now + 4000));
	assert_int_equal(fx->sub->n_pubs, 0);
	assert_false(session_tick(s, fx->w->now + 5000));
	assert_int_equal(fx->sub->n_pubs, 1);
	assert_null(s->will);
}

/* [MQTT-3.1.3-9]: a new connection of the session before the delay ends
 * cancels the will. */
static void reconnect_cancels_delayed_will(void **state)
{
	struct fixture *fx = *state;
	struct fake_sink *f = fake_connect(fx->w, TERN_V5, "a", true, with_delayed_will);
	fake_free(f);
	struct fake_sink *g = fake_connect(fx->w, TERN_V5, "a", false, expiry_100);
	assert_true(fake_last(g, TERN_CONNACK).u.connack.session_present);
	struct session *s = fake_session(fx->w, "a");
	assert_null(s->will);
	fx->w->now += 10000;
	fake_free(g);
	assert_int_equal(fx->sub->n_pubs, 0);
}

/* [MQTT-3.14.2-2]: a session that ends at disconnect (expiry 0 in CONNECT)
 * cannot be given an expiry on DISCONNECT: protocol error 0x82. */
static void disconnect_cannot_set_expiry_of_clean_session(void **state)
{
	struct fixture *fx = *state;
	struct fake_sink *f = fake_connect(fx->w, TERN_V5, "a", true, NULL);
	disconnect(f, TERN_RC_SUCCESS, 10);
	assert_true(f->closed);
	assert_false(f->ended);
	assert_int_equal(f->close_reason, TERN_RC_PROTOCOL_ERROR);
	assert_int_equal(f->sink.session->expiry, 0);
	fake_free(f);
	assert_null(fake_session(fx->w, "a"));
}

/* A DISCONNECT may lower a session's expiry to 0: the session ends when
 * the connection closes (3.14.2.2.2). */
static void disconnect_sets_expiry_zero_ends_session(void **state)
{
	struct fixture *fx = *state;
	struct fake_sink *f = fake_connect(fx->w, TERN_V5, "a", true, expiry_100);
	disconnect(f, TERN_RC_SUCCESS, 0);
	assert_true(f->ended);
	fake_free(f);
	assert_null(fake_session(fx->w, "a"));
}

/* A session with an expiry stays after its connection, offline, with its
 * expiry running. */
static void detach_keeps_session_with_expiry(void **state)
{
	struct fixture *fx = *state;
	struct fake_sink *f = fake_connect(fx->w, TERN_V5, "a", true, expiry_100);
	disconnect(f, TERN_RC_SUCCESS, -1);
	fake_free(f);
	struct session *s = fake_session(fx->w, "a");
	assert_non_null(s);
	assert_null(s->conn);
	assert_int_equal(s->expire_at, fx->w->now + 100000);
}

/* [MQTT-3.15.0-1] [MQTT-4.12.0-6]: no authentication method was agreed, so
 * AUTH is a protocol error (v5 0x82); in 3.1.1 packet type 15 is reserved:
 * malformed. */
static void auth_is_refused(void **state)
{
	struct fixture *fx = *state;
	struct fake_sink *f = fake_connect(fx->w, TERN_V5, "a", true, NULL);
	struct tern_reasoned r = {.reason = 0x19};
	handle_auth(&f->sink, &r);
	assert_true(f->closed);
	assert_int_equal(f->close_reason, TERN_RC_PROTOCOL_ERROR);
	fake_free(f);
	f = fake_connect(fx->w, TERN_V311, "a", true, NULL);
	handle_auth(&f->sink, &r);
	assert_true(f->closed);
	assert_int_equal(f->close_reason, TERN_RC_MALFORMED_PACKET);
	fake_free(f);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	        cmocka_unit_test_setup_teardown(pingreq_gets_pingresp, setup, teardown),
	        cmocka_unit_test_setup_teardown(disconnect_normal_discards_will, setup, teardown),
	        cmocka_unit_test_setup_teardown(disconnect_v311_discards_will, setup, teardown),
	        cmocka_unit_test_setup_teardown(disconnect_with_will_reason_publishes, setup,
	                                        teardown),
	        cmocka_unit_test_setup_teardown(connection_lost_publishes_will, setup, teardown),
	        cmocka_unit_test_setup_teardown(will_delay_waits, setup, teardown),
	        cmocka_unit_test_setup_teardown(reconnect_cancels_delayed_will, setup, teardown),
	        cmocka_unit_test_setup_teardown(disconnect_cannot_set_expiry_of_clean_session,
	                                        setup, teardown),
	        cmocka_unit_test_setup_teardown(disconnect_sets_expiry_zero_ends_session, setup,
	                                        teardown),
	        cmocka_unit_test_setup_teardown(detach_keeps_session_with_expiry, setup, teardown),
	        cmocka_unit_test_setup_teardown(auth_is_refused, setup, teardown),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
