/*
 * test_handle_connect.c - unit tests of handle_connect() (handle_connect.c):
 * CONNACK, refusals, the hand-over to the home worker, session resume,
 * clean start and takeover, driven through a fake sink (handler_fake.h)
 * with no socket. The spec statements checked are cited per test (MQTT
 * 5.0 numbering unless a test says 3.1.1).
 */
#include "handler_fake.h"

#include "broker/router.h"

static void v5_expiry_100(struct tern_connect *c)
{
	c->props.present |= TERN_PROP_BIT(TERN_PROP_SESSION_EXPIRY);
	c->props.session_expiry = 100;
}

static void v5_problem_info(struct tern_connect *c)
{
	c->props.present |= TERN_PROP_BIT(TERN_PROP_REQUEST_PROBLEM_INFO);
	c->props.request_problem_info = 1;
}

static void will_on_will_a(struct tern_connect *c)
{
	v5_expiry_100(c);
	c->will = true;
	c->will_qos = 0;
	c->will_topic = fake_bytes("will/a");
	c->will_payload = fake_bytes("gone");
}

/* [MQTT-3.2.2-2]: Clean Start 1 accepted: CONNACK 0x00 with Session
 * Present 0; the session is made and attached to the sink. */
static void connect_new_session_is_accepted(void **state)
{
	(void)state;
	struct broker *b = fake_broker(1, NULL);
	struct worker *w = b->workers[0];
	struct fake_sink *f = fake_connect(w, TERN_V5, "a", true, NULL);
	struct tern_packet p = fake_last(f, TERN_CONNACK);
	assert_int_equal(p.u.connack.reason, TERN_RC_SUCCESS);
	assert_false(p.u.connack.session_present);
	assert_true(f->accepted);
	assert_false(f->closed);
	struct session *s = fake_session(w, "a");
	assert_non_null(s);
	assert_ptr_equal(f->sink.session, s);
	assert_ptr_equal(s->conn, &f->sink);
	assert_int_equal(f->sink.version, TERN_V5);
	assert_int_equal(f->sink.keep_alive, 60);
	fake_free(f);
	/* Expiry 0: the session ended with its connection. */
	assert_null(fake_session(w, "a"));
	fake_broker_free(b);
}

/* [MQTT-3.2.2-3]: Clean Start 0 with session state: Session Present 1, and
 * the subscriptions are still there. */
static void connect_resumes_session(void **state)
{
	(void)state;
	struct broker *b = fake_broker(1, NULL);
	struct worker *w = b->workers[0];
	struct fake_sink *f = fake_connect(w, TERN_V5, "a", false, v5_expiry_100);
	fake_subscribe(b, f, "t/#", 1);
	fake_free(f);
	struct session *s = fake_session(w, "a");
	assert_non_null(s);
	assert_null(s->conn);

	f = fake_connect(w, TERN_V5, "a", false, v5_expiry_100);
	struct tern_packet p = fake_last(f, TERN_CONNACK);
	assert_int_equal(p.u.connack.reason, TERN_RC_SUCCESS);
	assert_true(p.u.connack.session_present);
	assert_ptr_equal(fake_session(w, "a"), s);
	assert_int_equal(s->subs.count, 1);
	fake_free(f);
	fake_broker_free(b);
}

/* The registry of sessions (session.c): a session is found by client id
 * and by id, counted and iterated while it lives, and gone from all of them
 * once a clean session's connection ends; an id of another worker's session
 * is not found here. */
static void connect_sessions_registry(void **state)
{
	(void)state;
	struct broker *b = fake_broker(2, NULL);
	struct worker *w = b->workers[1];
	const char *cid = fake_cid_on(b, 1, "reg", (char[64]){0});
	struct fake_sink *f = fake_connect(w, TERN_V5, cid, true, NULL);
	struct session *s = fake_session(w, cid);
	assert_non_null(s);
	assert_ptr_equal(f->sink.session, s);
	assert_ptr_equal(session_by_id(w, s->id), s);
	assert_null(session_by_id(b->workers[0], s->id));
	assert_null(session_find(b->workers[0], (const uint8_t *)cid, strlen(cid)));
	assert_int_equal(session_count(w), 1);
	size_t pos = 0;
	assert_ptr_equal(session_next(w, &pos), s);
	assert_null(session_next(w, &pos));
	uint64_t id = s->id;
	fake_free(f); /* expiry 0: the session ends with its connection */
	assert_null(fake_session(w, cid));
	assert_null(session_by_id(w, id));
	assert_int_equal(session_count(w), 0);
	pos = 0;
	assert_null(session_next(w, &pos));
	fake_broker_free(b);
}

/* [MQTT-3.1.2-4]: Clean Start 1 discards the existing session: Session
 * Present 0 and no subscription left, in the session or in the router. */
static void connect_clean_start_discards_session(void **state)
{
	(void)state;
	struct broker *b = fake_broker(1, NULL);
	struct worker *w = b->workers[0];
	struct fake_sink *f = fake_connect(w, TERN_V5, "a", false, v5_expiry_100);
	fake_subscribe(b, f, "t/#", 1);
	fake_free(f);
	assert_int_equal(router_count(w->router), 1);

	f = fake_connect(w, TERN_V5, "a", true, v5_expiry_100);
	struct tern_packet p = fake_last(f, TERN_CONNACK);
	assert_false(p.u.connack.session_present);
	assert_int_equal(f->sink.session->subs.count, 0);
	assert_int_equal(router_count(w->router), 0);
	fake_free(f);
	fake_broker_free(b);
}

/* 3.1.1 [MQTT-3.1.3-8]: a zero-byte client id with CleanSession 0 gets
 * CONNACK 0x02 (identifier rejected) and the connection is closed; Session
 * Present is 0 in a refusal (3.1.1 [MQTT-3.2.2-4]). */
static void connect_empty_id_needs_clean_session_v311(void **state)
{
	(void)state;
	struct broker *b = fake_broker(1, NULL);
	struct worker *w = b->workers[0];
	struct fake_sink *f = fake_connect(w, TERN_V311, "", false, NULL);
	struct tern_packet p = fake_last(f, TERN_CONNACK);
	assert_int_equal(p.u.connack.reason, TERN_V3_IDENTIFIER_REJECTED);
	assert_false(p.u.connack.session_present);
	assert_true(f->closed);
	assert_false(f->accepted);
	assert_null(f->sink.session);
	assert_int_equal(session_count(w), 0);
	fake_free(f);
	fake_broker_free(b);
}

/* [MQTT-3.2.2-16]: a zero-length client id gets an Assigned Client
 * Identifier in CONNACK, not used by any other session; ours is drawn to be
 * home on the worker it arrived at, so it needs no hand-over. */
static void connect_empty_id_is_assigned_v5(void **state)
{
	(void)state;
	struct broker *b = fake_broker(2, NULL);
	for (unsigned i = 0; i < 2; i++) {
		struct worker *w = b->workers[i];
		struct fake_sink *f = fake_connect(w, TERN_V5, "", true, NULL);
		assert_int_equal(f->handed_to, -1);
		struct tern_packet p = fake_last(f, TERN_CONNACK);
		assert_int_equal(p.u.connack.reason, TERN_RC_SUCCESS);
		assert_true(p.u.connack.props.present &
		            TERN_PROP_BIT(TERN_PROP_ASSIGNED_CLIENT_ID));
		struct tern_bytes id = p.u.connack.props.assigned_client_id;
		assert_true(id.len > 0);
		assert_int_equal(broker_home_of(b, id.data, id.len), i);
		struct session *s = f->sink.session;
		assert_non_null(s);
		assert_int_equal(s->client_id_len, id.len);
		assert_memory_equal(s->client_id, id.data, id.len);
		fake_free(f);
	}
	fake_broker_free(b);
}

/* [MQTT-4.12.0-1]: an Authentication Method the server does not support
 * gets CONNACK 0x8C (bad authentication method) and a close. */
static void connect_auth_method_is_refused(void **state)
{
	(void)state;
	struct broker *b = fake_broker(1, NULL);
	struct worker *w = b->workers[0];
	struct fake_sink *f = fake_new(b);
	struct tern_packet c = {.type = TERN_CONNECT};
	c.u.connect.version = TERN_V5;
	c.u.connect.clean_start = true;
	c.u.connect.client_id = fake_bytes("a");
	c.u.connect.props.present |= TERN_PROP_BIT(TERN_PROP_AUTH_METHOD);
	c.u.connect.props.auth_method = fake_bytes("SCRAM-SHA-1");
	uint8_t buf[256];
	struct tern_packet d = fake_decode(&c, TERN_V5, buf, sizeof(buf));
	handle_connect(w, &f->sink, &d.u.connect);
	struct tern_packet p = fake_last(f, TERN_CONNACK);
	assert_int_equal(p.u.connack.reason, TERN_RC_BAD_AUTHENTICATION_METHOD);
	assert_true(f->closed);
	assert_null(fake_session(w, "a"));
	fake_free(f);
	fake_broker_free(b);
}

/* A refusal by authentication: v5 says 0x86, 3.1.1 says 5 (not
 * authorized: its 4 is for malformed credentials, table 3.1); the reason
 * string goes out only when the client asked for problem information
 * (the Server MAY send it otherwise [MQTT-3.1.2-29]; we do not). */
static void connect_auth_refusal_codes(void **state)
{
	(void)state;
	struct broker *b = fake_broker(1, NULL);
	struct worker *w = b->workers[0];
	static const struct {
		uint8_t version;
		bool ask;
		uint8_t code;
	} cases[] = {
	        {TERN_V311, false, TERN_V3_NOT_AUTHORIZED},
	        {TERN_V5, false, TERN_RC_BAD_USERNAME_OR_PASSWORD},
	        {TERN_V5, true, TERN_RC_BAD_USERNAME_OR_PASSWORD},
	};
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		struct fake_sink *f = fake_new(b);
		f->auth_rc = TERN_RC_BAD_USERNAME_OR_PASSWORD;
		struct tern_packet c = {.type = TERN_CONNECT};
		c.u.connect.version = cases[i].version;
		c.u.connect.clean_start = true;
		c.u.connect.client_id = fake_bytes("a");
		c.u.connect.has_username = true;
		c.u.connect.username = fake_bytes("u");
		if (cases[i].ask)
			v5_problem_info(&c.u.connect);
		uint8_t buf[256];
		struct tern_packet d = fake_decode(&c, cases[i].version, buf, sizeof(buf));
		handle_connect(w, &f->sink, &d.u.connect);
		struct tern_packet p = fake_last(f, TERN_CONNACK);
		assert_int_equal(p.u.connack.reason, cases[i].code);
		bool has_reason =
		        p.u.connack.props.present & TERN_PROP_BIT(TERN_PROP_REASON_STRING);
		assert_int_equal(has_reason, cases[i].ask);
		if (has_reason)
			assert_memory_equal(p.u.connack.props.reason_string.data, "bad username",
			                    12);
		assert_true(f->closed);
		assert_null(fake_session(w, "a"));
		fake_free(f);
	}
	fake_broker_free(b);
}

/* A client id whose home is another worker: the CONNECT is handed over
 * before anything is answered or any session made, and nothing is sent. */
static void connect_hands_over_to_home_worker(void **state)
{
	(void)state;
	struct broker *b = fake_broker(2, NULL);
	char cid[64];
	fake_cid_on(b, 1, "c", cid);
	struct fake_sink *f = fake_connect(b->workers[0], TERN_V5, cid, true, NULL);
	assert_int_equal(f->handed_to, 1);
	assert_int_equal(f->n_packets, 0);
	assert_false(f->accepted);
	assert_null(f->sink.session);
	assert_int_equal(session_count(b->workers[0]), 0);
	assert_int_equal(session_count(b->workers[1]), 0);
	/* On the home worker the same CONNECT is accepted. */
	f->handed_to = -1;
	struct fake_sink *g = fake_connect(b->workers[1], TERN_V5, cid, true, NULL);
	assert_int_equal(g->handed_to, -1);
	assert_int_equal(fake_last(g, TERN_CONNACK).u.connack.reason, TERN_RC_SUCCESS);
	assert_non_null(fake_session(b->workers[1], cid));
	fake_free(g);
	fake_free(f);
	fake_broker_free(b);
}

static void max_keepalive_30(struct config *cfg)
{
	cfg->max_keepalive = 30;
}

/* [MQTT-3.2.2-21]: a keep-alive over max_keepalive is lowered and the
 * CONNACK carries Server Keep Alive, which the client must use. */
static void connect_keep_alive_is_capped_v5(void **state)
{
	(void)state;
	struct broker *b = fake_broker(1, max_keepalive_30);
	struct fake_sink *f = fake_connect(b->workers[0], TERN_V5, "a", true, NULL);
	struct tern_packet p = fake_last(f, TERN_CONNACK);
	assert_int_equal(p.u.connack.reason, TERN_RC_SUCCESS);
	assert_true(p.u.connack.props.present & TERN_PROP_BIT(TERN_PROP_SERVER_KEEP_ALIVE));
	assert_int_equal(p.u.connack.props.server_keep_alive, 30);
	assert_int_equal(f->sink.keep_alive, 30);
	fake_free(f);
	fake_broker_free(b);
}

/* [MQTT-3.1.4-3]: a CONNECT with the client id of a connected client takes
 * the session over: the old connection is closed with 0x8E (session taken
 * over), the session continues on the new one (Session Present 1
 * [MQTT-3.2.2-3]). */
static void takeover_closes_old_connection(void **state)
{
	(void)state;
	struct broker *b = fake_broker(1, NULL);
	struct worker *w = b->workers[0];
	struct fake_sink *old = fake_connect(w, TERN_V5, "a", false, v5_expiry_100);
	fake_subscribe(b, old, "t/#", 1);
	struct session *s = old->sink.session;

	struct fake_sink *f = fake_connect(w, TERN_V5, "a", false, v5_expiry_100);
	assert_true(old->closed);
	assert_int_equal(old->close_reason, TERN_RC_SESSION_TAKEN_OVER);
	assert_null(old->sink.session);
	struct tern_packet p = fake_last(f, TERN_CONNACK);
	assert_int_equal(p.u.connack.reason, TERN_RC_SUCCESS);
	assert_true(p.u.connack.session_present);
	assert_ptr_equal(fake_session(w, "a"), s);
	assert_ptr_equal(s->conn, &f->sink);
	assert_int_equal(s->subs.count, 1);
	/* Reaping the old connection later leaves the session alone. */
	fake_free(old);
	assert_ptr_equal(s->conn, &f->sink);
	fake_free(f);
	fake_broker_free(b);
}

/* Takeover of a session that ends with its connection (expiry 0): it ends,
 * and the new connection starts a new one (Session Present 0). */
static void takeover_of_clean_session_starts_new(void **state)
{
	(void)state;
	struct broker *b = fake_broker(1, NULL);
	struct worker *w = b->workers[0];
	struct fake_sink *old = fake_connect(w, TERN_V5, "a", false, NULL);
	struct session *s = old->sink.session;
	fake_subscribe(b, old, "t/#", 1);
	struct fake_sink *f = fake_connect(w, TERN_V5, "a", false, NULL);
	assert_true(old->closed);
	assert_int_equal(old->close_reason, TERN_RC_SESSION_TAKEN_OVER);
	assert_false(fake_last(f, TERN_CONNACK).u.connack.session_present);
	assert_non_null(f->sink.session);
	assert_int_equal(f->sink.session->subs.count, 0);
	assert_int_equal(router_count(w->router), 0);
	(void)s;
	fake_free(old);
	fake_free(f);
	fake_broker_free(b);
}

/* [MQTT-3.1.2-8]: the old connection did not send DISCONNECT, so its will
 * is published when the takeover closes it (no Will Delay: at once). */
static void takeover_publishes_old_will(void **state)
{
	(void)state;
	struct broker *b = fake_broker(1, NULL);
	struct worker *w = b->workers[0];
	struct fake_sink *sub = fake_connect(w, TERN_V5, "sub", true, NULL);
	fake_subscribe(b, sub, "will/#", 0);
	struct fake_sink *old = fake_connect(w, TERN_V5, "a", false, will_on_will_a);
	assert_int_equal(sub->n_pubs, 0);
	struct fake_sink *f = fake_connect(w, TERN_V5, "a", false, v5_expiry_100);
	assert_true(old->closed);
	assert_int_equal(sub->n_pubs, 1);
	assert_string_equal(sub->pubs[0].topic, "will/a");
	fake_free(old);
	fake_free(f);
	assert_int_equal(sub->n_pubs, 1);
	fake_free(sub);
	fake_broker_free(b);
}

/* [MQTT-3.1.2-2]: a CONNECT under MQTT's protocol name with a level we do
 * not speak gets CONNACK 0x01 (unacceptable protocol version) in the 3.1.1
 * form, then a close; an unknown protocol name is closed without a CONNACK
 * (the Server MAY, [MQTT-3.1.2-1]). */
static void connect_undecodable_version_refusals(void **state)
{
	(void)state;
	struct broker *b = fake_broker(1, NULL);
	struct worker *w = b->workers[0];
	static const uint8_t level6[] = {0, 4, 'M', 'Q', 'T', 'T', 6, 2, 0, 60};
	struct fake_sink *f = fake_new(b);
	connect_refuse_decoded(w, &f->sink, TERN_E_UNSUPPORTED_VERSION, level6, sizeof(level6));
	assert_int_equal(f->n_packets, 1);
	assert_int_equal(fake_last(f, TERN_CONNACK).u.connack.reason, TERN_V3_UNACCEPTABLE_VERSION);
	assert_true(f->closed);
	fake_free(f);

	static const uint8_t other[] = {0, 4, 'M', 'Q', 'T', 'X', 4, 2, 0, 60};
	f = fake_new(b);
	connect_refuse_decoded(w, &f->sink, TERN_E_UNSUPPORTED_VERSION, other, sizeof(other));
	assert_int_equal(f->n_packets, 0);
	assert_true(f->closed);
	fake_free(f);
	fake_broker_free(b);
}

static void no_retain_small_messages(struct config *cfg)
{
	cfg->retain_available = false;
	cfg->message_size_limit = 3;
}

static void retained_will(struct tern_connect *c)
{
	will_on_will_a(c);
	c->will_retain = true;
	c->will_payload = fake_bytes("x");
}

static void will_of_4_bytes(struct tern_connect *c)
{
	will_on_will_a(c);
	c->will_payload = fake_bytes("four");
}

/* A will the broker could not publish refuses the CONNECT: a retained will
 * when retain is not available (v5 0x9A, [MQTT-3.2.2-12]), a will payload
 * over message_size_limit (v5 0x95, as mosquitto answers). No session is
 * made. */
static void connect_refuses_unpublishable_will(void **state)
{
	(void)state;
	struct broker *b = fake_broker(1, no_retain_small_messages);
	struct worker *w = b->workers[0];
	struct fake_sink *f = fake_connect(w, TERN_V5, "a", true, retained_will);
	assert_int_equal(fake_last(f, TERN_CONNACK).u.connack.reason, TERN_RC_RETAIN_NOT_SUPPORTED);
	assert_true(f->closed);
	fake_free(f);
	f = fake_connect(w, TERN_V5, "a", true, will_of_4_bytes);
	assert_int_equal(fake_last(f, TERN_CONNACK).u.connack.reason, TERN_RC_PACKET_TOO_LARGE);
	assert_true(f->closed);
	assert_null(fake_session(w, "a"));
	fake_free(f);
	fake_broker_free(b);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	        cmocka_unit_test(connect_new_session_is_accepted),
	        cmocka_unit_test(connect_resumes_session),
	        cmocka_unit_test(connect_sessions_registry),
	        cmocka_unit_test(connect_clean_start_discards_session),
	        cmocka_unit_test(connect_empty_id_needs_clean_session_v311),
	        cmocka_unit_test(connect_empty_id_is_assigned_v5),
	        cmocka_unit_test(connect_auth_method_is_refused),
	        cmocka_unit_test(connect_auth_refusal_codes),
	        cmocka_unit_test(connect_hands_over_to_home_worker),
	        cmocka_unit_test(connect_keep_alive_is_capped_v5),
	        cmocka_unit_test(connect_undecodable_version_refusals),
	        cmocka_unit_test(connect_refuses_unpublishable_will),
	        cmocka_unit_test(takeover_closes_old_connection),
	        cmocka_unit_test(takeover_of_clean_session_starts_new),
	        cmocka_unit_test(takeover_publishes_old_will),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
