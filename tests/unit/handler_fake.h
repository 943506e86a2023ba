/*
 * handler_fake.h - what the handler tests (test_handle_*.c) share: a broker
 * built in-process (memory storage, no listener, no thread), and a fake
 * sink (src/broker/sink.h) that records what a handler sends instead of
 * writing it to a socket.
 *
 * A fake sink encodes every packet it is given (so what a handler sends
 * must be encodable, as on a real connection) and keeps the bytes; a test
 * reads them back decoded with fake_packet(). PUBLISHes of deliveries are
 * kept as their topic, QoS, packet id and flags. close() and end() are
 * recorded, and later sends are refused with TERN_E_CLOSED, as a real
 * connection does. What a real connection does when it is reaped (the
 * session detached: will, expiry) a test does with fake_reap().
 *
 * Driving: handlers are called directly with a decoded packet (made with
 * fake_decode(): encoded, then decoded, so the handler gets what conn.c
 * would give it). With more than one worker, what goes through inboxes
 * (router changes and their acks) moves with fake_settle().
 *
 * The handler tests are the session module's tests too: they check what a
 * handler did to the session's state (its in-flight window, its
 * subscriptions, whether it is stored), so they see struct session
 * through the module's internal header, as test_conn.c sees struct conn.
 */
#ifndef TERN_TEST_HANDLER_FAKE_H
#define TERN_TEST_HANDLER_FAKE_H

#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "broker/broker.h"
#include "broker/config.h"
#include "broker/delivery.h"
#include "broker/handlers.h"
#include "broker/session.h"
#include "broker/session_int.h"
#include "broker/sink.h"
#include "broker/worker.h"
#include "tern/codec.h"
#include "util/alias_in.h"
#include "util/clock.h"
#include "util/map.h"
#include "util/msg.h"

#define FAKE_MAX_PACKETS  32
#define FAKE_PACKET_BYTES 1024
#define FAKE_TOPIC_MAX    128

/* One PUBLISH of a delivery. */
struct fake_publish {
	char topic[FAKE_TOPIC_MAX];
	uint8_t qos;
	bool retain;
	bool dup;
	uint16_t packet_id;
	unsigned seq; /* order among everything f was sent */
};

struct fake_sink {
	struct sink sink; /* first: the ops find the fake from it */
	/* Packets sent, encoded for sink.version. */
	uint8_t bytes[FAKE_MAX_PACKETS][FAKE_PACKET_BYTES];
	size_t len[FAKE_MAX_PACKETS];
	unsigned seq[FAKE_MAX_PACKETS]; /* order among everything f was sent */
	size_t n_packets;
	unsigned n_sent; /* packets and PUBLISHes */
	struct fake_publish pubs[FAKE_MAX_PACKETS];
	size_t n_pubs;
	/* close() / end() */
	bool closed;
	bool ended; /* end(): the client sent DISCONNECT */
	uint8_t close_reason;
	char close_why[128];
	/* What authenticate() answers: auth_rc (0: success) with auth_why. */
	uint8_t auth_rc;
	const char *auth_why;
	/* hand_over(): the worker asked for, or -1. */
	int handed_to;
	bool accepted;
	size_t pending_out; /* what pending_out() reports */
	/* flow_ack(): when flow_paused, every acknowledgement is taken and
	 * kept here, as flow control holds those of a paused publisher. */
	bool flow_paused;
	struct fake_ack {
		uint8_t type;
		uint16_t packet_id;
		uint8_t reason;
	} flow_held[FAKE_MAX_PACKETS];
	size_t n_flow_held;
};

static inline struct fake_sink *fake_of(const struct sink *k)
{
	return (struct fake_sink *)k;
}

static inline enum tern_err fake_send(struct sink *k, const struct tern_packet *p)
{
	struct fake_sink *f = fake_of(k);
	if (f->closed)
		return TERN_E_CLOSED;
	assert_true(f->n_packets < FAKE_MAX_PACKETS);
	size_t n = 0;
	uint8_t version = k->version ? k->version : TERN_V5;
	assert_int_equal(
	        tern_encode_packet(p, version, f->bytes[f->n_packets], FAKE_PACKET_BYTES, &n),
	        TERN_OK);
	f->seq[f->n_packets] = f->n_sent++;
	f->len[f->n_packets++] = n;
	return TERN_OK;
}

static inline enum tern_err fake_send_publish(struct sink *k, const struct delivery *d,
                                              uint16_t packet_id, bool dup)
{
	struct fake_sink *f = fake_of(k);
	if (f->closed)
		return TERN_E_CLOSED;
	assert_true(f->n_pubs < FAKE_MAX_PACKETS);
	struct fake_publish *pub = &f->pubs[f->n_pubs++];
	size_t tl = d->msg->topic.len < FAKE_TOPIC_MAX - 1 ? d->msg->topic.len : FAKE_TOPIC_MAX - 1;
	memcpy(pub->topic, d->msg->topic.data, tl);
	pub->topic[tl] = 0;
	pub->qos = d->qos;
	pub->retain = d->retain;
	pub->dup = dup;
	pub->packet_id = packet_id;
	pub->seq = f->n_sent++;
	return TERN_OK;
}

static inline void fake_close(struct sink *k, uint8_t reason, const char *why)
{
	struct fake_sink *f = fake_of(k);
	if (f->closed)
		return;
	f->closed = true;
	f->close_reason = reason;
	snprintf(f->close_why, sizeof(f->close_why), "%s", why ? why : "");
}

static inline void fake_end(struct sink *k, const char *why)
{
	fake_of(k)->ended = true;
	fake_close(k, 0, why);
}

static inline enum tern_err fake_authenticate(struct sink *k, const struct tern_connect *p,
                                              struct tern_bytes *user, uint8_t *rc,
                                              const char **why)
{
	struct fake_sink *f = fake_of(k);
	*user = p->has_username ? p->username : (struct tern_bytes){0};
	*rc = f->auth_rc;
	*why = f->auth_why;
	return TERN_OK;
}

static inline void fake_hand_over(struct sink *k, unsigned home)
{
	fake_of(k)->handed_to = (int)home;
}

static inline void fake_accept(struct sink *k)
{
	fake_of(k)->accepted = true;
}

static inline size_t fake_pending_out(const struct sink *k)
{
	return fake_of(k)->pending_out;
}

static inline const char *fake_name(const struct sink *k, char buf[64])
{
	snprintf(buf, 64, "fake#%llu", (unsigned long long)k->id);
	return buf;
}

static inline bool fake_flow_ack(struct sink *k, const struct flow_hit *hit, uint8_t type,
                                 uint16_t packet_id, uint8_t reason)
{
	(void)hit;
	struct fake_sink *f = fake_of(k);
	if (!f->flow_paused)
		return false;
	assert_true(f->n_flow_held < FAKE_MAX_PACKETS);
	f->flow_held[f->n_flow_held++] = (struct fake_ack){type, packet_id, reason};
	return true;
}

static const struct sink_ops fake_sink_ops = {
        .send = fake_send,
        .send_publish = fake_send_publish,
        .close = fake_close,
        .end = fake_end,
        .authenticate = fake_authenticate,
        .hand_over = fake_hand_over,
        .accept = fake_accept,
        .pending_out = fake_pending_out,
        .name = fake_name,
        .flow_ack = fake_flow_ack,
};

/* A new fake sink of broker b (its id drawn as a connection's is). */
static inline struct fake_sink *fake_new(struct broker *b)
{
	struct fake_sink *f = calloc(1, sizeof(*f));
	assert_non_null(f);
	f->sink.ops = &fake_sink_ops;
	f->sink.id = broker_new_id(b);
	f->handed_to = -1;
	return f;
}

/* What a real connection does when it is reaped: the session is detached
 * (handle_detach), and the sink's will is dropped if still there. */
static inline void fake_reap(struct fake_sink *f)
{
	handle_detach(&f->sink);
	msg_unref(f->sink.will);
	f->sink.will = NULL;
}

/* Reaps (if still attached) and frees f. */
static inline void fake_free(struct fake_sink *f)
{
	if (!f)
		return;
	fake_reap(f);
	alias_in_free(&f->sink.alias_in);
	free(f);
}

/* Packet i that f was sent, decoded (pointing into f). */
static inline struct tern_packet fake_packet(struct fake_sink *f, size_t i)
{
	assert_true(i < f->n_packets);
	struct tern_fixed_header fh;
	assert_int_equal(tern_decode_fixed_header(f->bytes[i], f->len[i], 0, &fh), TERN_OK);
	struct tern_packet p;
	uint8_t version = f->sink.version ? f->sink.version : TERN_V5;
	assert_int_equal(tern_decode_packet(&fh, f->bytes[i] + fh.header_len, version, &p),
	                 TERN_OK);
	return p;
}

/* The last packet f was sent, which must be of type. */
static inline struct tern_packet fake_last(struct fake_sink *f, enum tern_packet_type type)
{
	assert_true(f->n_packets > 0);
	struct tern_packet p = fake_packet(f, f->n_packets - 1);
	assert_int_equal(p.type, type);
	return p;
}

/* p as conn.c would hand it to a handler: encoded for version into buf
 * (which must outlive the result), then decoded. */
static inline struct tern_packet fake_decode(const struct tern_packet *p, uint8_t version,
                                             uint8_t *buf, size_t cap)
{
	size_t n = 0;
	assert_int_equal(tern_encode_packet(p, version, buf, cap, &n), TERN_OK);
	struct tern_fixed_header fh;
	assert_int_equal(tern_decode_fixed_header(buf, n, 0, &fh), TERN_OK);
	struct tern_packet out;
	assert_int_equal(tern_decode_packet(&fh, buf + fh.header_len, version, &out), TERN_OK);
	return out;
}

static inline struct tern_bytes fake_bytes(const char *s)
{
	return (struct tern_bytes){(const uint8_t *)s, (uint32_t)strlen(s)};
}

/* A broker of `workers` workers for the handler tests: memory storage, no
 * listener, no thread, no log. cfg_edit (may be NULL) changes the config
 * before the broker is built. */
static inline struct broker *fake_broker(unsigned workers, void (*cfg_edit)(struct config *))
{
	struct config cfg;
	config_defaults(&cfg);
	cfg.storage = STORAGE_MEMORY;
	cfg.workers = workers;
	cfg.n_listeners = 0;
	cfg.log_dest = LOG_DEST_NONE;
	cfg.sys_interval = 0;
	cfg.sec.allow_anonymous = true;
	if (cfg_edit)
		cfg_edit(&cfg);
	struct broker *b = calloc(1, sizeof(*b));
	assert_non_null(b);
	assert_int_equal(broker_init(b, &cfg), TERN_OK);
	for (unsigned i = 0; i < workers; i++) {
		b->workers[i]->now = mono_ms();
		b->workers[i]->util_at = b->workers[i]->now;
	}
	return b;
}

static inline void fake_broker_free(struct broker *b)
{
	broker_stop(b); /* no thread was started: only raises the flag */
	broker_free(b);
	free(b);
}

/* Runs every worker's loop once without waiting, `rounds` times, so that
 * inbox items (router changes, their acks, deliveries) reach their worker. */
static inline void fake_settle(struct broker *b, int rounds)
{
	for (int r = 0; r < rounds; r++)
		for (unsigned i = 0; i < b->n_workers; i++)
			worker_iterate(b->workers[i], 0);
}

/* A client id, "<prefix>N" for the smallest N, whose home is worker home. */
static inline const char *fake_cid_on(struct broker *b, unsigned home, const char *prefix,
                                      char out[64])
{
	for (unsigned n = 0; n < 100000; n++) {
		int len = snprintf(out, 64, "%s%u", prefix, n);
		if (broker_home_of(b, (const uint8_t *)out, (size_t)len) == home)
			return out;
	}
	fail_msg("no client id found for worker %u", home);
	return NULL;
}

/* Sends CONNECT (version, client id, clean start, keep_alive 60) through a
 * new fake sink to worker w and returns the sink. edit (may be NULL) changes
 * the CONNECT first. */
static inline struct fake_sink *fake_connect(struct worker *w, uint8_t version, const char *cid,
                                             bool clean, void (*edit)(struct tern_connect *))
{
	struct fake_sink *f = fake_new(w->broker);
	struct tern_packet p = {.type = TERN_CONNECT};
	p.u.connect.version = version;
	p.u.connect.clean_start = clean;
	p.u.connect.keep_alive = 60;
	p.u.connect.client_id = fake_bytes(cid);
	if (edit)
		edit(&p.u.connect);
	uint8_t buf[512];
	struct tern_packet d = fake_decode(&p, version, buf, sizeof(buf));
	handle_connect(w, &f->sink, &d.u.connect);
	return f;
}

/* The session of client id cid on w, or NULL. */
static inline struct session *fake_session(struct worker *w, const char *cid)
{
	return session_find(w, (const uint8_t *)cid, strlen(cid));
}

/* Subscribes f's session to filter with qos (one entry, packet id 1) and
 * settles the broker so that the SUBACK is out. */
static inline void fake_subscribe(struct broker *b, struct fake_sink *f, const char *filter,
                                  uint8_t qos)
{
	struct tern_sub_entry e = {.filter = fake_bytes(filter), .qos = qos};
	struct tern_packet p = {.type = TERN_SUBSCRIBE};
	p.u.subscribe.packet_id = 1;
	p.u.subscribe.count = 1;
	p.u.subscribe.entries = &e;
	uint8_t buf[512];
	uint8_t version = f->sink.version;
	struct tern_packet d = fake_decode(&p, version, buf, sizeof(buf));
	handle_subscribe(&f->sink, f->sink.session, &d.u.subscribe);
	fake_settle(b, 3);
	fake_last(f, TERN_SUBACK);
}

#endif
