/*
 * test_session_pubrel.c - unit tests of a session's PUBREL entries from
 * the cluster (session_durable.c, session_out.c; docs/cluster.md,
 * "PUBREL state"): what the first bind of a session on a node reads back
 * becomes in-flight entries waiting for PUBCOMP, with PUBREL sent, and
 * what waits for them; driven through fake sinks (handler_fake.h).
 *
 * The cluster's side (the stream, the reads) is checked against a real
 * nats-server by tests/interop/test_cluster_pubrel.py. Here the handles are
 * detached ones, as every handle is once cluster_close() ran (c NULL: ending
 * or dropping one only frees it), each with the queue sequence of the
 * message its entry stands for: the session's logic is what is tested.
 * MQTT 5.0 numbering.
 */
#include "handler_fake.h"

#include "broker/router.h"
#include "cluster/cluster_int.h"

/* A detached handle of a PUBREL entry for the queue message of sequence
 * seq (freed by whoever ends or drops it). */
static struct cluster_ack *entry_handle(uint64_t seq)
{
	struct cluster_ack *a = calloc(1, sizeof(*a) + 1);
	assert_non_null(a);
	a->seq = seq;
	a->delivered = 1;
	a->acked = true;
	a->entry_seq = seq + 1000;
	return a;
}

/* The packet id the cluster gives the queue message of sequence seq. */
static uint16_t id_of(uint64_t seq)
{
	return (uint16_t)(seq % 65535u + 1u);
}

static void v5_expiry_100(struct tern_connect *c)
{
	c->props.present |= TERN_PROP_BIT(TERN_PROP_SESSION_EXPIRY);
	c->props.session_expiry = 100;
}

/* Hands s the entries (packet id, handle) of ids[0..n), as the cluster's
 * answer to its first bind. */
static void give_entries(struct session *s, const uint16_t *ids, const uint64_t *seqs, size_t n)
{
	struct cluster_pubrel *v = calloc(n ? n : 1, sizeof(*v));
	assert_non_null(v);
	for (size_t i = 0; i < n; i++) {
		v[i].packet_id = ids[i];
		v[i].ack = entry_handle(seqs[i]);
	}
	session_durable_pubrels(s, v, n, TERN_OK);
}

static void send_ack(struct fake_sink *f, enum tern_packet_type type, uint16_t pid)
{
	struct tern_packet p = {.type = type};
	p.u.ack.packet_id = pid;
	uint8_t buf[64];
	struct tern_packet d = fake_decode(&p, f->sink.version, buf, sizeof(buf));
	if (type == TERN_PUBREC)
		handle_pubrec(&f->sink, f->sink.session, &d.u.ack);
	else
		handle_pubcomp(&f->sink, f->sink.session, &d.u.ack);
}

/* The packet ids of the PUBRELs f was sent, in order, into out. */
static size_t pubrels_sent(struct fake_sink *f, uint16_t *out, size_t cap)
{
	size_t n = 0;
	for (size_t i = 0; i < f->n_packets && n < cap; i++) {
		struct tern_packet p = fake_packet(f, i);
		if (p.type == TERN_PUBREL)
			out[n++] = p.u.ack.packet_id;
	}
	return n;
}

/* A QoS 2 message on topic, as a durable queue hands it (sequence seq). */
static void queue_delivers(struct session *s, const char *filter, const char *topic, uint64_t seq)
{
	struct msg *m = msg_new(fake_bytes(topic), fake_bytes("x"), 2, false, NULL, 0, s->w->now);
	assert_non_null(m);
	struct cluster_ack *a = entry_handle(seq);
	a->acked = false; /* a queue message, not an entry */
	a->entry_seq = 0;
	session_durable_take(s, fake_bytes(filter), m, a);
}

/* The subscription filter of s fed by a durable queue, as in a cluster. */
static void make_durable(struct broker *b, struct session *s, const char *filter)
{
	struct sub *sub = map_get(&s->subs, &b->hash_key, filter, strlen(filter));
	assert_non_null(sub);
	sub->flags |= ROUTE_DURABLE;
}

/* [MQTT-4.3.3-4] [MQTT-4.4.0-1]: each entry is in flight waiting for
 * PUBCOMP and its PUBREL goes at once to an online client, in the order
 * the entries came (the PUBRECs' order [MQTT-4.6.0-3]); the client's
 * PUBCOMP ends each [MQTT-4.3.3-6]. */
static void entries_send_pubrel_and_end_at_pubcomp(void **state)
{
	(void)state;
	struct broker *b = fake_broker(1, NULL);
	struct fake_sink *f = fake_connect(b->workers[0], TERN_V5, "rel", false, v5_expiry_100);
	struct session *s = f->sink.session;
	give_entries(s, (uint16_t[]){7, 9}, (uint64_t[]){6, 8}, 2);
	uint16_t rel[4];
	assert_int_equal(pubrels_sent(f, rel, 4), 2);
	assert_int_equal(rel[0], 7);
	assert_int_equal(rel[1], 9);
	assert_int_equal(s->n_inflight, 2);
	assert_int_equal(s->inflight[0].state, INFLIGHT_WAIT_PUBCOMP);
	assert_null(s->inflight[0].d.msg);
	send_ack(f, TERN_PUBCOMP, 7);
	assert_int_equal(s->n_inflight, 1);
	send_ack(f, TERN_PUBCOMP, 9);
	assert_int_equal(s->n_inflight, 0);
	assert_int_equal(f->n_pubs, 0); /* never the PUBLISH again [MQTT-4.3.3-5] */
	assert_false(f->closed);
	fake_free(f);
	fake_broker_free(b);
}

/* An offline session keeps its entries for its client, who gets the PUBREL
 * when it resumes the session (Session Present 1) [MQTT-4.4.0-1]. */
static void entries_of_an_offline_session_go_at_resume(void **state)
{
	(void)state;
	struct broker *b = fake_broker(1, NULL);
	struct worker *w = b->workers[0];
	struct fake_sink *f = fake_connect(w, TERN_V5, "away", false, v5_expiry_100);
	fake_reap(f);
	struct session *s = fake_session(w, "away");
	assert_non_null(s);
	give_entries(s, (uint16_t[]){300}, (uint64_t[]){299}, 1);
	assert_int_equal(s->n_inflight, 1);
	struct fake_sink *g = fake_connect(w, TERN_V5, "away", false, v5_expiry_100);
	uint16_t rel[2];
	assert_int_equal(pubrels_sent(g, rel, 2), 1);
	assert_int_equal(rel[0], 300);
	send_ack(g, TERN_PUBCOMP, 300);
	assert_int_equal(s->n_inflight, 0);
	fake_free(f);
	fake_free(g);
	fake_broker_free(b);
}

/* While the entries are on their way (a first bind asked for them), no
 * new packet id goes out: one of them may hold it, and a PUBLISH with an
 * id the client holds for PUBREL would be taken for a duplicate and not
 * delivered [MQTT-4.3.3-9]. Once they are in, what waited goes, with
 * another id. */
static void no_new_packet_id_until_the_entries_are_in(void **state)
{
	(void)state;
	struct broker *b = fake_broker(1, NULL);
	struct fake_sink *f = fake_connect(b->workers[0], TERN_V5, "wait", false, v5_expiry_100);
	fake_subscribe(b, f, "w/#", 2);
	struct session *s = f->sink.session;
	s->pubrel_loaded = s->pubrel_wait = true; /* as session_durable_bind() */
	uint16_t next = s->next_packet_id;
	struct fake_sink *p = fake_connect(b->workers[0], TERN_V5, "pub", true, NULL);
	struct tern_packet pk = {.type = TERN_PUBLISH};
	pk.u.publish.topic = fake_bytes("w/1");
	pk.u.publish.payload = fake_bytes("x");
	pk.u.publish.qos = 1;
	pk.u.publish.packet_id = 1;
	uint8_t buf[128];
	struct tern_packet d = fake_decode(&pk, TERN_V5, buf, sizeof(buf));
	handle_publish(&p->sink, p->sink.session, &d.u.publish);
	assert_int_equal(f->n_pubs, 0);
	assert_int_equal(s->queue.n, 1);
	give_entries(s, (uint16_t[]){next}, (uint64_t[]){next - 1}, 1);
	assert_false(s->pubrel_wait);
	assert_int_equal(f->n_pubs, 1);
	assert_int_not_equal(f->pubs[0].packet_id, next);
	uint16_t rel[2];
	assert_int_equal(pubrels_sent(f, rel, 2), 1);
	assert_int_equal(rel[0], next);
	fake_free(p);
	fake_free(f);
	fake_broker_free(b);
}

/* An entry whose packet id is in flight already (this session's own
 * PUBREC here, read back by a later bind) keeps what holds the id: no
 * second entry, no second PUBREL. */
static void an_entry_of_an_id_in_flight_is_not_taken_twice(void **state)
{
	(void)state;
	struct broker *b = fake_broker(1, NULL);
	struct fake_sink *f = fake_connect(b->workers[0], TERN_V5, "twice", false, v5_expiry_100);
	struct session *s = f->sink.session;
	give_entries(s, (uint16_t[]){42}, (uint64_t[]){41}, 1);
	give_entries(s, (uint16_t[]){42}, (uint64_t[]){41}, 1);
	assert_int_equal(s->n_inflight, 1);
	uint16_t rel[4];
	assert_int_equal(pubrels_sent(f, rel, 4), 1);
	fake_free(f);
	fake_broker_free(b);
}

/* The queue delivers again a message whose entry is in flight (the node
 * that stored the entry died before the queue had its ack): the client
 * gave its PUBREC already, so it is not sent [MQTT-4.3.3-5]. Another
 * message whose id the entry holds takes the next free one, as a PUBLISH
 * under an id the client holds for PUBREL would not be delivered. */
static void the_queue_message_of_an_entry_is_not_sent_again(void **state)
{
	(void)state;
	struct broker *b = fake_broker(1, NULL);
	struct fake_sink *f = fake_connect(b->workers[0], TERN_V5, "seq", false, v5_expiry_100);
	fake_subscribe(b, f, "q/#", 2);
	struct session *s = f->sink.session;
	make_durable(b, s, "q/#");
	give_entries(s, (uint16_t[]){id_of(500)}, (uint64_t[]){500}, 1);
	queue_delivers(s, "q/#", "q/again", 500);
	assert_int_equal(f->n_pubs, 0);
	assert_int_equal(s->n_inflight, 1);
	/* 65535 sequences on, the same packet id. */
	queue_delivers(s, "q/#", "q/other", 500 + 65535);
	assert_int_equal(f->n_pubs, 1);
	assert_string_equal(f->pubs[0].topic, "q/other");
	assert_int_not_equal(f->pubs[0].packet_id, id_of(500));
	/* Its own flow: PUBREC, then PUBCOMP; the entry's goes on. */
	uint16_t pid = f->pubs[0].packet_id;
	send_ack(f, TERN_PUBREC, pid);
	send_ack(f, TERN_PUBCOMP, pid);
	assert_int_equal(s->n_inflight, 1);
	send_ack(f, TERN_PUBCOMP, id_of(500));
	assert_int_equal(s->n_inflight, 0);
	fake_free(f);
	fake_broker_free(b);
}

/* Entries that could not be read leave the session waiting for nothing:
 * it goes on, and the next bind asks again. */
static void a_failed_read_is_asked_again(void **state)
{
	(void)state;
	struct broker *b = fake_broker(1, NULL);
	struct fake_sink *f = fake_connect(b->workers[0], TERN_V5, "fail", false, v5_expiry_100);
	struct session *s = f->sink.session;
	s->pubrel_loaded = s->pubrel_wait = true;
	session_durable_pubrels(s, NULL, 0, TERN_E_SYS);
	assert_false(s->pubrel_wait);
	assert_false(s->pubrel_loaded);
	assert_int_equal(s->n_inflight, 0);
	fake_free(f);
	fake_broker_free(b);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	        cmocka_unit_test(entries_send_pubrel_and_end_at_pubcomp),
	        cmocka_unit_test(entries_of_an_offline_session_go_at_resume),
	        cmocka_unit_test(no_new_packet_id_until_the_entries_are_in),
	        cmocka_unit_test(an_entry_of_an_id_in_flight_is_not_taken_twice),
	        cmocka_unit_test(the_queue_message_of_an_entry_is_not_sent_again),
	        cmocka_unit_test(a_failed_read_is_asked_again),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
