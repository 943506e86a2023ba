/*
 * test_handle_publish.c - unit tests of handle_publish() and the four
 * acknowledgements (handle_publish.c), driven through fake sinks
 * (handler_fake.h) with no socket: QoS 0, 1 and 2 in both directions
 * (a client's PUBLISH answered PUBACK / PUBREC, PUBREL answered PUBCOMP;
 * what a subscriber is sent, moved on by its PUBACK / PUBREC / PUBCOMP),
 * the protocol errors of a mixed-up flow, flow control's hold on the
 * acknowledgements, and whether an acknowledgement waits for the store
 * (a message that reaches only clean sessions is written nowhere and its
 * PUBACK goes out at once; one that reaches a stored session is acked after
 * the commit). MQTT 5.0 numbering.
 */
#include "handler_fake.h"

#include <unistd.h>

#include "broker/persist.h"

/* Sends PUBLISH (topic, qos, packet id pid, dup) from f's session. */
static void publish(struct fake_sink *f, const char *topic, uint8_t qos, uint16_t pid, bool dup)
{
	struct tern_packet p = {.type = TERN_PUBLISH};
	p.u.publish.topic = fake_bytes(topic);
	p.u.publish.payload = fake_bytes("payload");
	p.u.publish.qos = qos;
	p.u.publish.dup = dup;
	p.u.publish.packet_id = qos ? pid : 0;
	uint8_t buf[512];
	struct tern_packet d = fake_decode(&p, f->sink.version, buf, sizeof(buf));
	handle_publish(&f->sink, f->sink.session, &d.u.publish);
}

/* Sends an ack-type packet (PUBACK, PUBREC, PUBREL, PUBCOMP) from f's
 * session, with reason (v5). */
static void send_ack(struct fake_sink *f, enum tern_packet_type type, uint16_t pid, uint8_t reason)
{
	struct tern_packet p = {.type = type};
	p.u.ack.packet_id = pid;
	p.u.ack.reason = reason;
	uint8_t buf[64];
	struct tern_packet d = fake_decode(&p, f->sink.version, buf, sizeof(buf));
	struct session *s = f->sink.session;
	switch (type) {
	case TERN_PUBACK:
		handle_puback(&f->sink, s, &d.u.ack);
		break;
	case TERN_PUBREC:
		handle_pubrec(&f->sink, s, &d.u.ack);
		break;
	case TERN_PUBREL:
		handle_pubrel(&f->sink, s, &d.u.ack);
		break;
	case TERN_PUBCOMP:
		handle_pubcomp(&f->sink, s, &d.u.ack);
		break;
	default:
		fail_msg("not an ack type: %d", type);
	}
}

/* Asserts that the last packet f was sent is an ack of type with pid and
 * reason. */
static void assert_ack(struct fake_sink *f, enum tern_packet_type type, uint16_t pid,
                       uint8_t reason)
{
	struct tern_packet p = fake_last(f, type);
	assert_int_equal(p.u.ack.packet_id, pid);
	assert_int_equal(p.u.ack.reason, reason);
}

/* A publisher and a subscriber (filter at qos) on one worker, both v5 with
 * clean start. */
struct pair {
	struct broker *b;
	struct worker *w;
	struct fake_sink *pub, *sub;
};

static struct pair pair_new(uint8_t qos)
{
	struct pair x;
	x.b = fake_broker(1, NULL);
	x.w = x.b->workers[0];
	x.pub = fake_connect(x.w, TERN_V5, "pub", true, NULL);
	x.sub = fake_connect(x.w, TERN_V5, "sub", true, NULL);
	fake_subscribe(x.b, x.sub, "t/#", qos);
	return x;
}

static void pair_free(struct pair *x)
{
	fake_free(x->pub);
	fake_free(x->sub);
	fake_broker_free(x->b);
}

/* [MQTT-4.3.1-1]: QoS 0 is sent on with QoS 0, DUP 0 and no packet id;
 * the publisher gets no acknowledgement (there is none at QoS 0). */
static void qos0_is_sent_on_without_ack(void **state)
{
	(void)state;
	struct pair x = pair_new(2);
	size_t before = x.pub->n_packets;
	publish(x.pub, "t/0", 0, 0, false);
	assert_int_equal(x.pub->n_packets, before);
	assert_int_equal(x.sub->n_pubs, 1);
	assert_string_equal(x.sub->pubs[0].topic, "t/0");
	assert_int_equal(x.sub->pubs[0].qos, 0);
	assert_false(x.sub->pubs[0].dup);
	assert_int_equal(x.sub->pubs[0].packet_id, 0);
	pair_free(&x);
}

/* [MQTT-4.3.2-4]: a QoS 1 PUBLISH is answered by a PUBACK with its packet
 * id once the message is routed; 0x10 (No matching subscribers, 3.4.2.1)
 * when nobody subscribed. [MQTT-4.3.2-5]: the same id after the PUBACK is a
 * new message. */
static void qos1_publish_is_acknowledged(void **state)
{
	(void)state;
	struct pair x = pair_new(1);
	publish(x.pub, "t/1", 1, 7, false);
	assert_ack(x.pub, TERN_PUBACK, 7, TERN_RC_SUCCESS);
	assert_int_equal(x.sub->n_pubs, 1);
	publish(x.pub, "t/1", 1, 7, true);
	assert_ack(x.pub, TERN_PUBACK, 7, TERN_RC_SUCCESS);
	assert_int_equal(x.sub->n_pubs, 2);
	publish(x.pub, "nobody/here", 1, 8, false);
	assert_ack(x.pub, TERN_PUBACK, 8, TERN_RC_NO_MATCHING_SUBSCRIBERS);
	pair_free(&x);
}

/* [MQTT-4.3.2-1] [MQTT-4.3.2-2] [MQTT-4.3.2-3]: what the broker sends at
 * QoS 1 has an unused packet id, QoS 1 and DUP 0, and stays unacknowledged
 * (in flight) until the subscriber's PUBACK with that id. */
static void qos1_delivery_waits_for_puback(void **state)
{
	(void)state;
	struct pair x = pair_new(1);
	publish(x.pub, "t/a", 1, 1, false);
	publish(x.pub, "t/b", 1, 2, false);
	assert_int_equal(x.sub->n_pubs, 2);
	struct fake_publish *a = &x.sub->pubs[0], *b2 = &x.sub->pubs[1];
	assert_int_equal(a->qos, 1);
	assert_false(a->dup);
	assert_int_not_equal(a->packet_id, 0);
	assert_int_not_equal(a->packet_id, b2->packet_id);
	struct session *s = x.sub->sink.session;
	assert_int_equal(s->n_inflight, 2);
	send_ack(x.sub, TERN_PUBACK, a->packet_id, 0);
	assert_int_equal(s->n_inflight, 1);
	assert_int_equal(s->inflight[0].packet_id, b2->packet_id);
	/* A duplicate PUBACK is ignored. */
	send_ack(x.sub, TERN_PUBACK, a->packet_id, 0);
	assert_false(x.sub->closed);
	send_ack(x.sub, TERN_PUBACK, b2->packet_id, 0);
	assert_int_equal(s->n_inflight, 0);
	pair_free(&x);
}

static void receive_maximum_1(struct tern_connect *p)
{
	p->props.present |= TERN_PROP_BIT(TERN_PROP_RECEIVE_MAXIMUM);
	p->props.receive_maximum = 1;
}

/* What waits behind a full window (the subscriber's Receive Maximum, 1
 * here) is queued and sent in the order it was published (as
 * [MQTT-4.6.0-6] asks within a topic; one topic per message here, so that
 * the fake can tell them apart), one PUBACK at a time, also when the ring has
 * wrapped around and then grown while wrapped (14 messages through a ring
 * of 8 that is drained and refilled). */
static void queued_deliveries_keep_their_order(void **state)
{
	(void)state;
	struct broker *b = fake_broker(1, NULL);
	struct worker *w = b->workers[0];
	struct fake_sink *pub = fake_connect(w, TERN_V5, "pub", true, NULL);
	struct fake_sink *sub = fake_connect(w, TERN_V5, "sub", true, receive_maximum_1);
	fake_subscribe(b, sub, "t/#", 1);
	struct session *s = sub->sink.session;
	char topic[16];
	unsigned published = 0;
	for (; published < 6; published++) {
		snprintf(topic, sizeof(topic), "t/%u", published);
		publish(pub, topic, 1, (uint16_t)(published + 1), false);
	}
	assert_int_equal(sub->n_pubs, 1);
	assert_int_equal(s->queue.n, 5);
	for (size_t i = 0; i < 4; i++)
		send_ack(sub, TERN_PUBACK, sub->pubs[sub->n_pubs - 1].packet_id, 0);
	assert_int_equal(sub->n_pubs, 5);
	assert_int_equal(s->queue.n, 1);
	for (; published < 14; published++) {
		snprintf(topic, sizeof(topic), "t/%u", published);
		publish(pub, topic, 1, (uint16_t)(published + 1), false);
	}
	assert_int_equal(s->queue.n, 9);
	while (sub->n_pubs < published && s->n_inflight == 1)
		send_ack(sub, TERN_PUBACK, sub->pubs[sub->n_pubs - 1].packet_id, 0);
	send_ack(sub, TERN_PUBACK, sub->pubs[sub->n_pubs - 1].packet_id, 0);
	assert_int_equal(s->queue.n, 0);
	assert_int_equal(s->n_inflight, 0);
	assert_int_equal(sub->n_pubs, published);
	for (unsigned i = 0; i < published; i++) {
		snprintf(topic, sizeof(topic), "t/%u", i);
		assert_string_equal(sub->pubs[i].topic, topic);
	}
	assert_false(sub->closed);
	fake_free(pub);
	fake_free(sub);
	fake_broker_free(b);
}

/* [MQTT-4.3.3-8] [MQTT-4.3.3-10] [MQTT-4.3.3-11] [MQTT-4.3.3-12]: a QoS 2
 * PUBLISH is answered PUBREC; until its PUBREL the same id is answered
 * PUBREC again without a second delivery (method B); PUBREL is answered
 * PUBCOMP with the same id; after that the id is a new message. */
static void qos2_publish_exactly_once(void **state)
{
	(void)state;
	struct pair x = pair_new(2);
	struct session *ps = x.pub->sink.session;
	publish(x.pub, "t/2", 2, 5, false);
	assert_ack(x.pub, TERN_PUBREC, 5, TERN_RC_SUCCESS);
	assert_int_equal(x.sub->n_pubs, 1);
	assert_true(session_qos2_pending(ps, 5));
	publish(x.pub, "t/2", 2, 5, true);
	assert_ack(x.pub, TERN_PUBREC, 5, TERN_RC_SUCCESS);
	assert_int_equal(x.sub->n_pubs, 1);
	send_ack(x.pub, TERN_PUBREL, 5, 0);
	assert_ack(x.pub, TERN_PUBCOMP, 5, TERN_RC_SUCCESS);
	assert_false(session_qos2_pending(ps, 5));
	publish(x.pub, "t/2", 2, 5, false);
	assert_ack(x.pub, TERN_PUBREC, 5, TERN_RC_SUCCESS);
	assert_int_equal(x.sub->n_pubs, 2);
	pair_free(&x);
}

/* [MQTT-4.3.3-11]: a PUBREL for an id the broker does not know is still
 * answered PUBCOMP, with 0x92 (Packet Identifier not found). */
static void pubrel_of_unknown_id(void **state)
{
	(void)state;
	struct pair x = pair_new(2);
	send_ack(x.pub, TERN_PUBREL, 44, 0);
	assert_ack(x.pub, TERN_PUBCOMP, 44, TERN_RC_PACKET_ID_NOT_FOUND);
	pair_free(&x);
}

static void small_messages(struct config *cfg)
{
	cfg->message_size_limit = 4;
}

/* [MQTT-4.3.3-9]: a PUBREC of 0x80 or more ends the flow: the id is not
 * remembered, and the next PUBLISH with it is a new message. (The refusal
 * here is message_size_limit's 0x97.) */
static void qos2_refused_leaves_no_id(void **state)
{
	(void)state;
	struct broker *b = fake_broker(1, small_messages);
	struct worker *w = b->workers[0];
	struct fake_sink *pub = fake_connect(w, TERN_V5, "pub", true, NULL);
	publish(pub, "t/2", 2, 9, false);
	assert_ack(pub, TERN_PUBREC, 9, TERN_RC_QUOTA_EXCEEDED);
	assert_false(session_qos2_pending(pub->sink.session, 9));
	assert_int_equal(session_qos2_count(pub->sink.session), 0);
	fake_free(pub);
	fake_broker_free(b);
}

/* [MQTT-4.3.3-1] .. [MQTT-4.3.3-6]: what the broker sends at QoS 2 has an
 * unused id, QoS 2 and DUP 0; a PUBREC < 0x80 is answered by a PUBREL with
 * the same id, after which the message is no longer held (only its id,
 * until PUBCOMP); the PUBCOMP ends the flow. */
static void qos2_delivery_pubrec_pubrel_pubcomp(void **state)
{
	(void)state;
	struct pair x = pair_new(2);
	publish(x.pub, "t/q2", 2, 1, false);
	assert_int_equal(x.sub->n_pubs, 1);
	struct fake_publish *d = &x.sub->pubs[0];
	assert_int_equal(d->qos, 2);
	assert_false(d->dup);
	assert_int_not_equal(d->packet_id, 0);
	struct session *s = x.sub->sink.session;
	assert_int_equal(s->n_inflight, 1);
	assert_int_equal(s->inflight[0].state, INFLIGHT_WAIT_PUBREC);
	send_ack(x.sub, TERN_PUBREC, d->packet_id, 0);
	assert_ack(x.sub, TERN_PUBREL, d->packet_id, TERN_RC_SUCCESS);
	assert_int_equal(s->n_inflight, 1);
	assert_int_equal(s->inflight[0].state, INFLIGHT_WAIT_PUBCOMP);
	assert_null(s->inflight[0].d.msg);
	send_ack(x.sub, TERN_PUBCOMP, d->packet_id, 0);
	assert_int_equal(s->n_inflight, 0);
	assert_false(x.sub->closed);
	pair_free(&x);
}

/* [MQTT-4.4.0-2]: a PUBREC of 0x80 or more acknowledges the message, which
 * is not sent again and gets no PUBREL; a PUBREC for an unknown id is
 * answered PUBREL 0x92 so the client can finish (section 4.3.3). */
static void qos2_delivery_refused_by_the_client(void **state)
{
	(void)state;
	struct pair x = pair_new(2);
	publish(x.pub, "t/q2", 2, 1, false);
	uint16_t id = x.sub->pubs[0].packet_id;
	size_t before = x.sub->n_packets;
	send_ack(x.sub, TERN_PUBREC, id, TERN_RC_UNSPECIFIED);
	assert_int_equal(x.sub->n_packets, before);
	assert_int_equal(x.sub->sink.session->n_inflight, 0);
	send_ack(x.sub, TERN_PUBREC, 999, 0);
	assert_ack(x.sub, TERN_PUBREL, 999, TERN_RC_PACKET_ID_NOT_FOUND);
	pair_free(&x);
}

/* Section 4.13: an acknowledgement of the other QoS's flow, or a PUBCOMP
 * before the PUBREC it would answer, is a Protocol Error (0x82). */
static void mixed_up_acks_are_protocol_errors(void **state)
{
	(void)state;
	struct pair x = pair_new(2);
	publish(x.pub, "t/q2", 2, 1, false);
	send_ack(x.sub, TERN_PUBACK, x.sub->pubs[0].packet_id, 0);
	assert_true(x.sub->closed);
	assert_int_equal(x.sub->close_reason, TERN_RC_PROTOCOL_ERROR);
	pair_free(&x);

	x = pair_new(2);
	publish(x.pub, "t/q2", 2, 1, false);
	send_ack(x.sub, TERN_PUBCOMP, x.sub->pubs[0].packet_id, 0);
	assert_true(x.sub->closed);
	assert_int_equal(x.sub->close_reason, TERN_RC_PROTOCOL_ERROR);
	pair_free(&x);

	x = pair_new(1);
	publish(x.pub, "t/q1", 1, 1, false);
	send_ack(x.sub, TERN_PUBREC, x.sub->pubs[0].packet_id, 0);
	assert_true(x.sub->closed);
	assert_int_equal(x.sub->close_reason, TERN_RC_PROTOCOL_ERROR);
	pair_free(&x);
}

/* Flow control holds a paused publisher's acknowledgements (sink_ops
 * .flow_ack), every one of them in order [MQTT-4.6.0-2] [MQTT-4.6.0-3]:
 * none goes out on the sink directly. */
static void flow_control_holds_acks_in_order(void **state)
{
	(void)state;
	struct pair x = pair_new(2);
	x.pub->flow_paused = true;
	size_t before = x.pub->n_packets;
	publish(x.pub, "t/x", 1, 1, false);
	publish(x.pub, "t/x", 2, 2, false);
	publish(x.pub, "nobody", 1, 3, false);
	assert_int_equal(x.pub->n_packets, before);
	assert_int_equal(x.pub->n_flow_held, 3);
	assert_int_equal(x.pub->flow_held[0].type, TERN_PUBACK);
	assert_int_equal(x.pub->flow_held[0].packet_id, 1);
	assert_int_equal(x.pub->flow_held[1].type, TERN_PUBREC);
	assert_int_equal(x.pub->flow_held[1].packet_id, 2);
	assert_int_equal(x.pub->flow_held[2].packet_id, 3);
	assert_int_equal(x.pub->flow_held[2].reason, TERN_RC_NO_MATCHING_SUBSCRIBERS);
	assert_int_equal(x.sub->n_pubs, 2);
	pair_free(&x);
}

/* Sends PUBLISH QoS 0 on topic (may be empty) with Topic Alias alias. */
static void publish_alias(struct fake_sink *f, const char *topic, uint16_t alias)
{
	struct tern_packet p = {.type = TERN_PUBLISH};
	p.u.publish.topic = fake_bytes(topic);
	p.u.publish.payload = fake_bytes("a");
	p.u.publish.props.present = TERN_PROP_BIT(TERN_PROP_TOPIC_ALIAS);
	p.u.publish.props.topic_alias = alias;
	uint8_t buf[256];
	struct tern_packet d = fake_decode(&p, TERN_V5, buf, sizeof(buf));
	handle_publish(&f->sink, f->sink.session, &d.u.publish);
}

/* [MQTT-3.3.2-12]: a Topic Alias set with a topic stands for it in later
 * PUBLISHes with an empty topic (the table is the sink's); an alias above
 * our Topic Alias Maximum is DISCONNECT 0x94 [MQTT-3.3.2-9]. */
static void topic_alias_stands_for_its_topic(void **state)
{
	(void)state;
	struct pair x = pair_new(0);
	assert_true(x.pub->sink.alias_max > 0);
	publish_alias(x.pub, "t/aliased", 1);
	publish_alias(x.pub, "", 1);
	assert_int_equal(x.sub->n_pubs, 2);
	assert_string_equal(x.sub->pubs[1].topic, "t/aliased");
	assert_false(x.pub->closed);
	publish_alias(x.pub, "t/x", (uint16_t)(x.pub->sink.alias_max + 1));
	assert_true(x.pub->closed);
	assert_int_equal(x.pub->close_reason, TERN_RC_TOPIC_ALIAS_INVALID);
	pair_free(&x);
}

/* ---- with the SQLite store ---- */

static char store_dir[64];

static void sqlite_store(struct config *cfg)
{
	cfg->storage = STORAGE_SQLITE;
	snprintf(cfg->persistence_location, sizeof(cfg->persistence_location), "%s", store_dir);
}

static struct broker *store_broker(void)
{
	snprintf(store_dir, sizeof(store_dir), "/tmp/tern-test-publish-XXXXXX");
	assert_non_null(mkdtemp(store_dir));
	struct broker *b = fake_broker(1, sqlite_store);
	assert_non_null(b->store);
	return b;
}

static void store_broker_free(struct broker *b)
{
	fake_broker_free(b);
	char path[128];
	snprintf(path, sizeof(path), "%s/%s", store_dir, "ternd.db");
	unlink(path);
	snprintf(path, sizeof(path), "%s/%s", store_dir, "ternd.db-wal");
	unlink(path);
	snprintf(path, sizeof(path), "%s/%s", store_dir, "ternd.db-shm");
	unlink(path);
	rmdir(store_dir);
}

/* Runs w's loop (which submits its batch, and takes the store's answer
 * from its inbox) until f has been sent a packet of type, at most a few
 * hundred rounds of 10 ms: the storage thread's commit is on its way. */
static bool wait_for(struct worker *w, struct fake_sink *f, enum tern_packet_type type)
{
	for (int i = 0; i < 500; i++) {
		for (size_t k = 0; k < f->n_packets; k++)
			if (fake_packet(f, k).type == type)
				return true;
		worker_iterate(w, 10);
	}
	return false;
}

static void with_expiry(struct tern_connect *p)
{
	p->props.present |= TERN_PROP_BIT(TERN_PROP_SESSION_EXPIRY);
	p->props.session_expiry = 600;
}

/* Subscribes f to filter at qos and waits for the SUBACK (which waits for
 * the commit when f's session is stored). */
static void subscribe_stored(struct worker *w, struct fake_sink *f, const char *filter, uint8_t qos)
{
	struct tern_sub_entry e = {.filter = fake_bytes(filter), .qos = qos};
	struct tern_packet p = {.type = TERN_SUBSCRIBE};
	p.u.subscribe.packet_id = 1;
	p.u.subscribe.count = 1;
	p.u.subscribe.entries = &e;
	uint8_t buf[256];
	struct tern_packet d = fake_decode(&p, f->sink.version, buf, sizeof(buf));
	handle_subscribe(&f->sink, f->sink.session, &d.u.subscribe);
	assert_true(wait_for(w, f, TERN_SUBACK));
}

/* Clean sessions write nothing and wait for nothing: with a store, a QoS 1
 * or 2 message between sessions that end with their connection records no
 * store operation, and its PUBACK / PUBREC is sent by handle_publish()
 * itself, before any commit. */
static void clean_session_acks_wait_for_no_commit(void **state)
{
	(void)state;
	struct broker *b = store_broker();
	struct worker *w = b->workers[0];
	struct fake_sink *pub = fake_connect(w, TERN_V5, "pub", true, NULL);
	struct fake_sink *sub = fake_connect(w, TERN_V5, "sub", true, NULL);
	subscribe_stored(w, sub, "t/#", 2);
	assert_false(sub->sink.session->stored);
	worker_iterate(w, 0);
	size_t ops = persist_ops(w);
	publish(pub, "t/1", 1, 3, false);
	assert_ack(pub, TERN_PUBACK, 3, TERN_RC_SUCCESS);
	publish(pub, "t/2", 2, 4, false);
	assert_ack(pub, TERN_PUBREC, 4, TERN_RC_SUCCESS);
	send_ack(pub, TERN_PUBREL, 4, 0);
	assert_ack(pub, TERN_PUBCOMP, 4, TERN_RC_SUCCESS);
	assert_int_equal(sub->n_pubs, 2);
	send_ack(sub, TERN_PUBACK, sub->pubs[0].packet_id, 0);
	assert_int_equal(persist_ops(w), ops);
	fake_free(pub);
	fake_free(sub);
	store_broker_free(b);
}

/* No acknowledged message is lost: a QoS 1 message that reaches a stored
 * session (Session Expiry Interval 600) is written, and its PUBACK waits
 * for that commit: handle_publish() sends none itself, the worker's loop
 * does once the store has answered. */
static void stored_session_ack_waits_for_the_commit(void **state)
{
	(void)state;
	struct broker *b = store_broker();
	struct worker *w = b->workers[0];
	struct fake_sink *pub = fake_connect(w, TERN_V5, "pub", true, NULL);
	struct fake_sink *sub = fake_connect(w, TERN_V5, "durable", false, with_expiry);
	assert_true(sub->sink.session->stored);
	subscribe_stored(w, sub, "t/#", 1);
	size_t before = pub->n_packets;
	size_t ops = persist_ops(w);
	publish(pub, "t/1", 1, 3, false);
	assert_true(persist_ops(w) > ops);
	assert_int_equal(pub->n_packets, before);
	assert_int_equal(sub->n_pubs, 1);
	assert_true(wait_for(w, pub, TERN_PUBACK));
	assert_ack(pub, TERN_PUBACK, 3, TERN_RC_SUCCESS);
	fake_free(pub);
	fake_free(sub);
	store_broker_free(b);
}

/* The PUBACKs f was sent, their packet ids in order into ids (at most
 * max); returns how many. */
static size_t pubacks(struct fake_sink *f, uint16_t *ids, size_t max)
{
	size_t n = 0;
	for (size_t k = 0; k < f->n_packets; k++) {
		struct tern_packet p = fake_packet(f, k);
		if (p.type == TERN_PUBACK && n < max)
			ids[n++] = p.u.ack.packet_id;
	}
	return n;
}

/* Acknowledgements held for a commit (persist.c) go out in the order they
 * were held, all of them: 6 held and released, then 12 more, so that the
 * worker's ring of held answers wraps around and grows while wrapped. */
static void held_acks_are_released_in_order(void **state)
{
	(void)state;
	struct broker *b = store_broker();
	struct worker *w = b->workers[0];
	struct fake_sink *pub = fake_connect(w, TERN_V5, "pub", true, NULL);
	struct fake_sink *sub = fake_connect(w, TERN_V5, "durable", false, with_expiry);
	subscribe_stored(w, sub, "t/#", 1);
	uint16_t ids[24];
	uint16_t pid = 1;
	size_t want = 0;
	for (size_t round = 0, count = 6; round < 2; round++, count = 12) {
		for (size_t i = 0; i < count; i++, pid++)
			publish(pub, "t/1", 1, pid, false);
		assert_int_equal(pubacks(pub, ids, 24), want);
		want += count;
		for (int i = 0; i < 500 && pubacks(pub, ids, 24) < want; i++)
			worker_iterate(w, 10);
		assert_int_equal(pubacks(pub, ids, 24), want);
	}
	for (size_t i = 0; i < want; i++)
		assert_int_equal(ids[i], i + 1);
	fake_free(pub);
	fake_free(sub);
	store_broker_free(b);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	        cmocka_unit_test(qos0_is_sent_on_without_ack),
	        cmocka_unit_test(qos1_publish_is_acknowledged),
	        cmocka_unit_test(qos1_delivery_waits_for_puback),
	        cmocka_unit_test(queued_deliveries_keep_their_order),
	        cmocka_unit_test(qos2_publish_exactly_once),
	        cmocka_unit_test(pubrel_of_unknown_id),
	        cmocka_unit_test(qos2_refused_leaves_no_id),
	        cmocka_unit_test(qos2_delivery_pubrec_pubrel_pubcomp),
	        cmocka_unit_test(qos2_delivery_refused_by_the_client),
	        cmocka_unit_test(mixed_up_acks_are_protocol_errors),
	        cmocka_unit_test(flow_control_holds_acks_in_order),
	        cmocka_unit_test(topic_alias_stands_for_its_topic),
	        cmocka_unit_test(clean_session_acks_wait_for_no_commit),
	        cmocka_unit_test(stored_session_ack_waits_for_the_commit),
	        cmocka_unit_test(held_acks_are_released_in_order),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
