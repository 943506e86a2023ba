/*
 * test_handle_subscribe.c - unit tests of handle_subscribe() and
 * handle_unsubscribe() (handle_subscribe.c), driven through a fake sink
 * (handler_fake.h) with no socket: SUBACK / UNSUBACK and their reason
 * codes, the session's table and the router replicas, retained messages,
 * and the answer that waits for every replica. MQTT 5.0 numbering.
 */
#include "handler_fake.h"

#include "broker/retain.h"
#include "broker/route.h"
#include "broker/router.h"

/* Sends SUBSCRIBE (packet id pid, entries e[0..n)) from f's session. */
static void subscribe(struct fake_sink *f, uint16_t pid, const struct tern_sub_entry *e, size_t n)
{
	struct tern_packet p = {.type = TERN_SUBSCRIBE};
	p.u.subscribe.packet_id = pid;
	p.u.subscribe.count = (uint32_t)n;
	p.u.subscribe.entries = e;
	uint8_t buf[1024];
	struct tern_packet d = fake_decode(&p, f->sink.version, buf, sizeof(buf));
	handle_subscribe(&f->sink, f->sink.session, &d.u.subscribe);
}

/* Sends UNSUBSCRIBE (packet id pid, filters t[0..n)) from f's session. */
static void unsubscribe(struct fake_sink *f, uint16_t pid, const struct tern_bytes *t, size_t n)
{
	struct tern_packet p = {.type = TERN_UNSUBSCRIBE};
	p.u.unsubscribe.packet_id = pid;
	p.u.unsubscribe.count = (uint32_t)n;
	p.u.unsubscribe.filters = t;
	uint8_t buf[1024];
	struct tern_packet d = fake_decode(&p, f->sink.version, buf, sizeof(buf));
	handle_unsubscribe(&f->sink, f->sink.session, &d.u.unsubscribe);
}

/* Publishes a message on topic (QoS qos) from worker w, as a PUBLISH
 * would, and settles the broker. */
static void publish(struct broker *b, struct worker *w, const char *topic, uint8_t qos)
{
	struct msg *m = msg_new(fake_bytes(topic), fake_bytes("x"), qos, false, NULL, 0, w->now);
	assert_non_null(m);
	assert_int_equal(route_publish(w, m, NULL, NULL), TERN_OK);
	msg_unref(m);
	fake_settle(b, 3);
}

/* [MQTT-3.8.4-1] [MQTT-3.8.4-2] [MQTT-3.9.3-1]: a SUBSCRIBE is answered by
 * a SUBACK with its packet id and one reason per filter, in order; each
 * grants the QoS asked for (we support all three, 3.9.3). The session and
 * the router have the subscriptions. */
static void subscribe_grants_each_filter(void **state)
{
	(void)state;
	struct broker *b = fake_broker(1, NULL);
	struct worker *w = b->workers[0];
	struct fake_sink *f = fake_connect(w, TERN_V5, "a", true, NULL);
	struct tern_sub_entry e[3] = {
	        {.filter = fake_bytes("q/0"), .qos = 0},
	        {.filter = fake_bytes("q/1"), .qos = 1},
	        {.filter = fake_bytes("q/+"), .qos = 2},
	};
	subscribe(f, 7, e, 3);
	struct tern_packet p = fake_last(f, TERN_SUBACK);
	assert_int_equal(p.u.subres.packet_id, 7);
	assert_int_equal(p.u.subres.count, 3);
	assert_int_equal(p.u.subres.reasons[0], 0);
	assert_int_equal(p.u.subres.reasons[1], 1);
	assert_int_equal(p.u.subres.reasons[2], 2);
	assert_int_equal(f->sink.session->subs.count, 3);
	assert_int_equal(router_count(w->router), 3);
	/* Routed: a message on q/1 matches two of them, delivered once with
	 * the highest QoS. */
	publish(b, w, "q/1", 2);
	assert_int_equal(f->n_pubs, 1);
	assert_string_equal(f->pubs[0].topic, "q/1");
	assert_int_equal(f->pubs[0].qos, 2);
	fake_free(f);
	fake_broker_free(b);
}

/* [MQTT-3.8.4-3]: a filter the session has already replaces its
 * subscription (no second one), with the new options. */
static void subscribe_same_filter_replaces(void **state)
{
	(void)state;
	struct broker *b = fake_broker(1, NULL);
	struct worker *w = b->workers[0];
	struct fake_sink *f = fake_connect(w, TERN_V5, "a", true, NULL);
	fake_subscribe(b, f, "t/#", 0);
	fake_subscribe(b, f, "t/#", 2);
	struct session *s = f->sink.session;
	assert_int_equal(s->subs.count, 1);
	assert_int_equal(router_count(w->router), 1);
	struct sub *sub = map_get(&s->subs, &b->hash_key, "t/#", 3);
	assert_non_null(sub);
	assert_int_equal(sub->qos, 2);
	publish(b, w, "t/x", 2);
	assert_int_equal(f->n_pubs, 1);
	assert_int_equal(f->pubs[0].qos, 2);
	fake_free(f);
	fake_broker_free(b);
}

static void retain(struct broker *b, const char *topic, uint8_t qos)
{
	struct msg *m =
	        msg_new(fake_bytes(topic), fake_bytes("r"), qos, true, NULL, 0, b->workers[0]->now);
	assert_non_null(m);
	assert_int_equal(retain_set(b->retain, m), TERN_OK);
	msg_unref(m);
}

/* [MQTT-3.3.1-9]: with Retain Handling 0 the retained messages matching a
 * new subscription are sent, after the SUBACK, with RETAIN 1 and at most
 * the subscription's QoS. */
static void subscribe_sends_retained_after_suback(void **state)
{
	(void)state;
	struct broker *b = fake_broker(1, NULL);
	struct worker *w = b->workers[0];
	retain(b, "r/1", 1);
	retain(b, "other", 1);
	struct fake_sink *f = fake_connect(w, TERN_V5, "a", true, NULL);
	size_t before = f->n_packets;
	struct tern_sub_entry e = {.filter = fake_bytes("r/#"), .qos = 0};
	subscribe(f, 1, &e, 1);
	assert_int_equal(f->n_packets, before + 1);
	fake_last(f, TERN_SUBACK);
	assert_int_equal(f->n_pubs, 1);
	assert_string_equal(f->pubs[0].topic, "r/1");
	assert_true(f->pubs[0].retain);
	assert_int_equal(f->pubs[0].qos, 0);
	assert_true(f->pubs[0].seq > f->seq[f->n_packets - 1]);
	fake_free(f);
	fake_broker_free(b);
}

/* [MQTT-3.3.1-10] [MQTT-3.3.1-11]: Retain Handling 1 sends retained
 * messages only for a subscription that did not exist; 2 never. */
static void subscribe_retain_handling(void **state)
{
	(void)state;
	struct broker *b = fake_broker(1, NULL);
	struct worker *w = b->workers[0];
	retain(b, "r/1", 0);
	struct fake_sink *f = fake_connect(w, TERN_V5, "a", true, NULL);
	struct tern_sub_entry e = {.filter = fake_bytes("r/#"), .retain_handling = 2};
	subscribe(f, 1, &e, 1);
	fake_last(f, TERN_SUBACK);
	assert_int_equal(f->n_pubs, 0);
	/* Exists now: 1 sends nothing either. */
	e.retain_handling = 1;
	subscribe(f, 2, &e, 1);
	fake_last(f, TERN_SUBACK);
	assert_int_equal(f->n_pubs, 0);
	/* A new filter with 1: sent. */
	e.filter = fake_bytes("r/+");
	subscribe(f, 3, &e, 1);
	fake_last(f, TERN_SUBACK);
	assert_int_equal(f->n_pubs, 1);
	assert_string_equal(f->pubs[0].topic, "r/1");
	fake_free(f);
	fake_broker_free(b);
}

static void max_subscriptions_1(struct config *cfg)
{
	cfg->max_subscriptions = 1;
}

/* max_subscriptions: a subscription beyond it is refused with 0x97 (quota
 * exceeded) in v5, 0x80 in 3.1.1, while a replaced one still counts as
 * one; the other filters of the packet are answered on their own
 * [MQTT-3.9.3-1]. */
static void subscribe_over_max_subscriptions(void **state)
{
	(void)state;
	struct broker *b = fake_broker(1, max_subscriptions_1);
	struct worker *w = b->workers[0];
	static const uint8_t versions[] = {TERN_V5, TERN_V311};
	static const uint8_t refused[] = {TERN_RC_QUOTA_EXCEEDED, TERN_RC_UNSPECIFIED};
	for (size_t i = 0; i < 2; i++) {
		struct fake_sink *f = fake_connect(w, versions[i], "a", true, NULL);
		struct tern_sub_entry e[3] = {
		        {.filter = fake_bytes("a"), .qos = 1},
		        {.filter = fake_bytes("b"), .qos = 1},
		        {.filter = fake_bytes("a"), .qos = 2},
		};
		subscribe(f, 1, e, 3);
		struct tern_packet p = fake_last(f, TERN_SUBACK);
		assert_int_equal(p.u.subres.count, 3);
		assert_int_equal(p.u.subres.reasons[0], 1);
		assert_int_equal(p.u.subres.reasons[1], refused[i]);
		assert_int_equal(p.u.subres.reasons[2], 2);
		assert_int_equal(f->sink.session->subs.count, 1);
		fake_free(f);
	}
	fake_broker_free(b);
}

/* With two workers the SUBACK waits until the other replica has the
 * subscription, so a message published anywhere after the SUBACK is
 * routed to it. */
static void subscribe_answer_waits_for_replicas(void **state)
{
	(void)state;
	struct broker *b = fake_broker(2, NULL);
	char cid[64];
	struct worker *w = b->workers[0];
	struct fake_sink *f = fake_connect(w, TERN_V5, fake_cid_on(b, 0, "s", cid), true, NULL);
	size_t before = f->n_packets;
	struct tern_sub_entry e = {.filter = fake_bytes("t"), .qos = 1};
	subscribe(f, 1, &e, 1);
	assert_int_equal(f->n_packets, before);
	assert_int_equal(router_count(w->router), 1);
	assert_int_equal(router_count(b->workers[1]->router), 0);
	fake_settle(b, 3);
	assert_int_equal(router_count(b->workers[1]->router), 1);
	fake_last(f, TERN_SUBACK);
	/* Published on the other worker: delivered here. */
	publish(b, b->workers[1], "t", 1);
	assert_int_equal(f->n_pubs, 1);
	fake_free(f);
	fake_broker_free(b);
}

/* A connection that closes before its SUBACK is ready gets neither the
 * SUBACK nor retained messages; the subscription stays with the session. */
static void subscribe_answer_dropped_after_close(void **state)
{
	(void)state;
	struct broker *b = fake_broker(2, NULL);
	char cid[64];
	struct worker *w = b->workers[0];
	retain(b, "t", 0);
	struct fake_sink *f = fake_connect(w, TERN_V5, fake_cid_on(b, 0, "s", cid), true, NULL);
	size_t before = f->n_packets;
	struct tern_sub_entry e = {.filter = fake_bytes("t"), .qos = 1};
	subscribe(f, 1, &e, 1);
	f->closed = true;
	fake_settle(b, 3);
	assert_int_equal(f->n_packets, before);
	assert_int_equal(f->n_pubs, 0);
	assert_int_equal(f->sink.session->subs.count, 1);
	fake_free(f);
	fake_broker_free(b);
}

static void max_topic_levels_2(struct config *cfg)
{
	cfg->max_topic_levels = 2;
}

/* A filter deeper than max_topic_levels is refused, 0x8F (topic filter
 * invalid) in v5, and not subscribed. */
static void subscribe_too_deep_filter(void **state)
{
	(void)state;
	struct broker *b = fake_broker(1, max_topic_levels_2);
	struct fake_sink *f = fake_connect(b->workers[0], TERN_V5, "a", true, NULL);
	struct tern_sub_entry e[2] = {
	        {.filter = fake_bytes("a/b/c"), .qos = 1},
	        {.filter = fake_bytes("a/b"), .qos = 1},
	};
	subscribe(f, 1, e, 2);
	struct tern_packet p = fake_last(f, TERN_SUBACK);
	assert_int_equal(p.u.subres.reasons[0], TERN_RC_TOPIC_FILTER_INVALID);
	assert_int_equal(p.u.subres.reasons[1], 1);
	assert_int_equal(f->sink.session->subs.count, 1);
	fake_free(f);
	fake_broker_free(b);
}

/* [MQTT-3.10.4-4] [MQTT-3.10.4-5]: an UNSUBSCRIBE is answered by an
 * UNSUBACK with its packet id, also where nothing was subscribed; v5 gives
 * 0x00 per removed filter and 0x11 (no subscription existed) otherwise.
 * After it no new message is delivered for the filter [MQTT-3.10.4-2]. */
static void unsubscribe_removes_and_answers(void **state)
{
	(void)state;
	struct broker *b = fake_broker(1, NULL);
	struct worker *w = b->workers[0];
	struct fake_sink *f = fake_connect(w, TERN_V5, "a", true, NULL);
	fake_subscribe(b, f, "t/#", 1);
	struct tern_bytes t[2] = {fake_bytes("t/#"), fake_bytes("none")};
	unsubscribe(f, 9, t, 2);
	struct tern_packet p = fake_last(f, TERN_UNSUBACK);
	assert_int_equal(p.u.subres.packet_id, 9);
	assert_int_equal(p.u.subres.count, 2);
	assert_int_equal(p.u.subres.reasons[0], TERN_RC_SUCCESS);
	assert_int_equal(p.u.subres.reasons[1], TERN_RC_NO_SUBSCRIPTION_EXISTED);
	assert_int_equal(f->sink.session->subs.count, 0);
	assert_int_equal(router_count(w->router), 0);
	publish(b, w, "t/x", 1);
	assert_int_equal(f->n_pubs, 0);
	fake_free(f);
	fake_broker_free(b);
}

/* 3.1.1: UNSUBACK carries the packet id and no reason codes. */
static void unsubscribe_v311_has_no_reasons(void **state)
{
	(void)state;
	struct broker *b = fake_broker(1, NULL);
	struct fake_sink *f = fake_connect(b->workers[0], TERN_V311, "a", true, NULL);
	struct tern_bytes t = fake_bytes("t");
	unsubscribe(f, 3, &t, 1);
	struct tern_packet p = fake_last(f, TERN_UNSUBACK);
	assert_int_equal(p.u.subres.packet_id, 3);
	assert_int_equal(p.u.subres.count, 0);
	fake_free(f);
	fake_broker_free(b);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	        cmocka_unit_test(subscribe_grants_each_filter),
	        cmocka_unit_test(subscribe_same_filter_replaces),
	        cmocka_unit_test(subscribe_sends_retained_after_suback),
	        cmocka_unit_test(subscribe_retain_handling),
	        cmocka_unit_test(subscribe_over_max_subscriptions),
	        cmocka_unit_test(subscribe_answer_waits_for_replicas),
	        cmocka_unit_test(subscribe_answer_dropped_after_close),
	        cmocka_unit_test(subscribe_too_deep_filter),
	        cmocka_unit_test(unsubscribe_removes_and_answers),
	        cmocka_unit_test(unsubscribe_v311_has_no_reasons),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
