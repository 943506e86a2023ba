/*
 * test_conn.c - unit tests of a connection's life on a worker (conn.c,
 * worker.c): closing, and the hand-over to the session's home worker.
 *
 * Each test builds a broker in-process (memory storage, no listener, no
 * thread) and drives its workers with worker_iterate(w, 0), as fuzz_conn
 * does; clients are socketpairs whose broker end is a plain TCP connection.
 *
 * The program is linked with -Wl,--wrap=malloc,--wrap=calloc,--wrap=realloc
 * (tests/CMakeLists.txt): every such call of the broker code goes through the
 * __wrap_ functions below, which count it, and malloc() fails while
 * fail_malloc is set, so a test can make one step run out of memory.
 */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <unistd.h>

#include "broker/broker.h"
#include "broker/config.h"
#include "broker/conn.h"
#include "broker/conn_internal.h"
#include "broker/session.h"
#include "broker/transport.h"
#include "broker/worker.h"
#include "tern/codec.h"
#include "util/buf.h"
#include "util/clock.h"

void *__real_malloc(size_t n);
void *__wrap_malloc(size_t n);
void *__real_calloc(size_t n, size_t size);
void *__wrap_calloc(size_t n, size_t size);
void *__real_realloc(void *p, size_t n);
void *__wrap_realloc(void *p, size_t n);

static bool fail_malloc;
static size_t n_allocs; /* malloc, calloc and realloc calls so far */

void *__wrap_malloc(size_t n)
{
	n_allocs++;
	return fail_malloc ? NULL : __real_malloc(n);
}

void *__wrap_calloc(size_t n, size_t size)
{
	n_allocs++;
	return __real_calloc(n, size);
}

void *__wrap_realloc(void *p, size_t n)
{
	n_allocs++;
	return __real_realloc(p, n);
}

static struct listener_cfg listener_cfg; /* zero: plain TCP */
static const struct listener listener = {
        .cfg = &listener_cfg,
        .tp = &transport_tcp,
        .base = &transport_tcp,
};

static struct broker *start_broker(unsigned workers)
{
	static struct config cfg;
	config_defaults(&cfg);
	cfg.storage = STORAGE_MEMORY;
	cfg.workers = workers;
	cfg.n_listeners = 0;
	cfg.log_dest = LOG_DEST_NONE;
	cfg.sys_interval = 0;
	struct broker *b = calloc(1, sizeof(*b));
	assert_non_null(b);
	assert_int_equal(broker_init(b, &cfg), TERN_OK);
	for (unsigned i = 0; i < workers; i++) {
		b->workers[i]->now = mono_ms();
		b->workers[i]->util_at = b->workers[i]->now;
	}
	return b;
}

static void stop_broker(struct broker *b)
{
	/* No thread was started: broker_stop() only raises the flag. */
	broker_stop(b);
	broker_free(b);
	free(b);
}

/* A client connected to worker w; *out gets the broker's conn. Returns the
 * client's end of the socket. */
static int connect_client(struct worker *w, struct conn **out)
{
	int sv[2];
	assert_int_equal(socketpair(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK, 0, sv), 0);
	struct conn *c = conn_new(w, sv[0], &listener);
	assert_non_null(c);
	assert_int_equal(conn_adopt(w, c), TERN_OK);
	*out = c;
	return sv[1];
}

static void send_packet(int fd, const struct tern_packet *p, uint8_t version)
{
	uint8_t buf[512];
	size_t n = 0;
	assert_int_equal(tern_encode_packet(p, version, buf, sizeof(buf), &n), TERN_OK);
	assert_int_equal(send(fd, buf, n, MSG_NOSIGNAL), (ssize_t)n);
}

static void send_connect(int fd, const char *cid)
{
	struct tern_packet p = {.type = TERN_CONNECT};
	p.u.connect.version = TERN_V5;
	p.u.connect.clean_start = true;
	p.u.connect.client_id = (struct tern_bytes){(const uint8_t *)cid, (uint32_t)strlen(cid)};
	send_packet(fd, &p, TERN_V5);
}

/* Everything the broker wrote to fd so far, decoded into types[] (at most
 * max); returns how many packets, and sets *eof when the broker closed. */
static size_t read_packets(int fd, enum tern_packet_type *types, uint8_t *reasons, size_t max,
                           bool *eof)
{
	static uint8_t buf[65536];
	size_t len = 0;
	ssize_t n;
	*eof = false;
	while ((n = read(fd, buf + len, sizeof(buf) - len)) > 0)
		len += (size_t)n;
	if (n == 0)
		*eof = true;
	size_t count = 0, off = 0;
	while (off < len && count < max) {
		struct tern_fixed_header fh;
		assert_int_equal(tern_decode_fixed_header(buf + off, len - off, 0, &fh), TERN_OK);
		struct tern_packet p;
		assert_int_equal(tern_decode_packet(&fh, buf + off + fh.header_len, TERN_V5, &p),
		                 TERN_OK);
		types[count] = p.type;
		reasons[count] = p.type == TERN_DISCONNECT ? p.u.reasoned.reason : 0;
		count++;
		off += fh.header_len + fh.remaining;
	}
	return count;
}

/* A v5 client connected and past CONNACK on a one-worker broker. */
static int connected_client(struct broker *b, struct conn **c)
{
	struct worker *w = b->workers[0];
	int fd = connect_client(w, c);
	send_connect(fd, "closing");
	worker_iterate(w, 0);
	enum tern_packet_type t[4];
	uint8_t r[4];
	bool eof;
	assert_int_equal(read_packets(fd, t, r, 4, &eof), 1);
	assert_int_equal(t[0], TERN_CONNACK);
	assert_int_equal((*c)->state, CONN_ACTIVE);
	return fd;
}

/* Closing with a reason sends the DISCONNECT once, however often the
 * connection is closed before it is reaped [MQTT-4.13.2-1]. */
static void test_close_is_idempotent(void **state)
{
	(void)state;
	struct broker *b = start_broker(1);
	struct worker *w = b->workers[0];
	struct conn *c;
	int fd = connected_client(b, &c);
	conn_close(c, TERN_RC_RECEIVE_MAXIMUM_EXCEEDED, "first");
	conn_close(c, TERN_RC_PROTOCOL_ERROR, "second");
	assert_ptr_equal(w->conn_state->closing, c);
	assert_null(c->closing_next);
	worker_iterate(w, 0);
	enum tern_packet_type t[4];
	uint8_t r[4];
	bool eof;
	assert_int_equal(read_packets(fd, t, r, 4, &eof), 1);
	assert_int_equal(t[0], TERN_DISCONNECT);
	assert_int_equal(r[0], TERN_RC_RECEIVE_MAXIMUM_EXCEEDED);
	assert_true(eof);
	close(fd);
	stop_broker(b);
}

/* When the DISCONNECT cannot be buffered (out of memory), closing neither
 * recurses (the failed send closes the connection again) nor queues the
 * connection twice: it is closed once, without the DISCONNECT. */
static void test_close_out_of_memory_does_not_recurse(void **state)
{
	(void)state;
	struct broker *b = start_broker(1);
	struct worker *w = b->workers[0];
	struct conn *c;
	int fd = connected_client(b, &c);
	assert_int_equal(buf_used(&c->wbuf), 0);
	/* The CONNACK's buffer went back to the worker's bins: without
	 * them, the DISCONNECT needs malloc. */
	buf_bins_drain(&w->bins);
	fail_malloc = true;
	conn_close(c, TERN_RC_RECEIVE_MAXIMUM_EXCEEDED, "quota");
	fail_malloc = false;
	assert_int_equal(c->state, CONN_CLOSING);
	assert_ptr_equal(w->conn_state->closing, c);
	assert_null(c->closing_next);
	worker_iterate(w, 0);
	assert_null(w->conn_state->conns);
	enum tern_packet_type t[4];
	uint8_t r[4];
	bool eof;
	assert_int_equal(read_packets(fd, t, r, 4, &eof), 0);
	assert_true(eof);
	close(fd);
	stop_broker(b);
}

/* A failed send (out of memory while queueing a PINGRESP) closes the
 * connection once; the close's own DISCONNECT fails the same way and must
 * not close again. */
static void test_send_out_of_memory_closes_once(void **state)
{
	(void)state;
	struct broker *b = start_broker(1);
	struct worker *w = b->workers[0];
	struct conn *c;
	int fd = connected_client(b, &c);
	struct tern_packet ping = {.type = TERN_PINGRESP};
	buf_bins_drain(&w->bins); /* as above: the send must need malloc */
	fail_malloc = true;
	assert_int_equal(conn_send(c, &ping), TERN_E_NOMEM);
	fail_malloc = false;
	assert_int_equal(c->state, CONN_CLOSING);
	assert_ptr_equal(w->conn_state->closing, c);
	assert_null(c->closing_next);
	worker_iterate(w, 0);
	assert_null(w->conn_state->conns);
	close(fd);
	stop_broker(b);
}

/* A client id whose home is worker `home` of b. */
static void cid_of_home(const struct broker *b, unsigned home, char out[32])
{
	for (unsigned i = 0;; i++) {
		snprintf(out, 32, "handed-%u", i);
		if (broker_home_of(b, (const uint8_t *)out, strlen(out)) == home)
			return;
	}
}

/* One epoll event reports a connection both writable and readable; the
 * writable handler lets a transport that waited for writability read (as a
 * TLS handshake does), which decodes the CONNECT and hands the connection
 * to its home worker. From then on the connection is the home worker's: the
 * readable handler of the same event must not run on it. The transport's
 * wait is simulated on a TCP connection (tp_read_wants_write, with EPOLLOUT
 * registered, as set_epollout() does for TLS). Worker 1 does not iterate
 * until the end, so anything of it that changed before was changed by
 * worker 0. */
static void test_handed_over_conn_is_not_touched_by_the_same_event(void **state)
{
	(void)state;
	struct broker *b = start_broker(2);
	struct worker *w0 = b->workers[0], *w1 = b->workers[1];
	struct conn *c;
	int fd = connect_client(w0, &c);
	c->tp_read_wants_write = true;
	struct epoll_event ev = {.events = EPOLLIN | EPOLLRDHUP | EPOLLOUT, .data.ptr = c};
	assert_int_equal(epoll_ctl(w0->epfd, EPOLL_CTL_MOD, c->fd, &ev), 0);
	c->epollout = true;
	char cid[32];
	cid_of_home(b, 1, cid);
	send_connect(fd, cid);
	worker_iterate(w0, 0);
	/* Handed over, not yet adopted: worker 0 made no session on worker 1
	 * and queued nothing there but the connection itself. */
	assert_null(w0->conn_state->conns);
	assert_int_equal(session_count(w1), 0);
	assert_null(w1->conn_state->flush);
	assert_int_equal(c->state, CONN_NEW);
	/* The transport's wait is over once the home worker has it. */
	c->tp_read_wants_write = false;
	worker_iterate(w1, 0);
	assert_int_equal(session_count(w1), 1);
	assert_ptr_equal(w1->conn_state->conns, c);
	assert_int_equal(c->state, CONN_ACTIVE);
	enum tern_packet_type t[4];
	uint8_t r[4];
	bool eof;
	assert_int_equal(read_packets(fd, t, r, 4, &eof), 1);
	assert_int_equal(t[0], TERN_CONNACK);
	assert_false(eof);
	close(fd);
	for (int i = 0; i < 3; i++) {
		worker_iterate(w0, 0);
		worker_iterate(w1, 0);
	}
	stop_broker(b);
}

/* Reads what fd has (the broker wrote) and returns how many PUBLISH
 * packets it held; the packet id of each goes to ids[] (QoS 1). */
static size_t read_publishes(int fd, uint16_t *ids, size_t max)
{
	static uint8_t buf[1 << 16];
	size_t len = 0, count = 0;
	ssize_t n;
	while (len < sizeof(buf) && (n = read(fd, buf + len, sizeof(buf) - len)) > 0)
		len += (size_t)n;
	for (size_t off = 0; off < len;) {
		struct tern_fixed_header fh;
		assert_int_equal(tern_decode_fixed_header(buf + off, len - off, 0, &fh), TERN_OK);
		assert_true(off + fh.header_len + fh.remaining <= len);
		struct tern_packet p;
		assert_int_equal(tern_decode_packet(&fh, buf + off + fh.header_len, TERN_V5, &p),
		                 TERN_OK);
		if (p.type == TERN_PUBLISH) {
			assert_int_equal(p.u.publish.payload.len, 64);
			if (count < max)
				ids[count] = p.u.publish.packet_id;
			count++;
		}
		off += fh.header_len + fh.remaining;
	}
	return count;
}

/* A v5 client past CONNACK (with client id cid) on worker w. */
static int client_on(struct worker *w, const char *cid)
{
	struct conn *c;
	int fd = connect_client(w, &c);
	send_connect(fd, cid);
	worker_iterate(w, 0);
	enum tern_packet_type t[4];
	uint8_t r[4];
	bool eof;
	assert_int_equal(read_packets(fd, t, r, 4, &eof), 1);
	assert_int_equal(t[0], TERN_CONNACK);
	return fd;
}

/* Runs `rounds` publishes of one publisher to `subs` subscribers of
 * "load/#" at QoS qos (publisher and subscribers answer every PUBACK), one
 * loop iteration each, and returns the allocator calls they cost. */
static size_t publish_rounds(struct worker *w, int pub, const int *subs, size_t n_subs, uint8_t qos,
                             unsigned rounds, uint16_t *next_id)
{
	static const uint8_t payload[64] = {1, 2, 3};
	size_t before = n_allocs;
	for (unsigned i = 0; i < rounds; i++) {
		struct tern_packet p = {.type = TERN_PUBLISH};
		p.u.publish.qos = qos;
		p.u.publish.topic = (struct tern_bytes){(const uint8_t *)"load/1", 6};
		p.u.publish.packet_id = qos ? (*next_id)++ : 0;
		if (*next_id == 0)
			*next_id = 1;
		p.u.publish.payload = (struct tern_bytes){payload, sizeof(payload)};
		send_packet(pub, &p, TERN_V5);
		worker_iterate(w, 0);
		for (size_t k = 0; k < n_subs; k++) {
			uint16_t ids[8];
			assert_int_equal(read_publishes(subs[k], ids, 8), 1);
			if (qos) {
				struct tern_packet ack = {.type = TERN_PUBACK};
				ack.u.ack.packet_id = ids[0];
				send_packet(subs[k], &ack, TERN_V5);
			}
		}
		if (qos) {
			/* The publisher's PUBACK; the subscribers' PUBACKs are
			 * read in the next iteration. */
			char drain[64];
			assert_true(read(pub, drain, sizeof(drain)) > 0);
		}
	}
	worker_iterate(w, 0);
	return n_allocs - before;
}

/* In steady state a message costs the broker no allocation (DESIGN.md's
 * target): not the message (a block of the worker's msg_pool), no input
 * buffer (the worker's scratch), no output buffer (the worker's bins), no
 * matching or delivery scratch, for QoS 0 and QoS 1, one and eight
 * subscribers, one loop iteration per message (the moderate rate at which
 * buffers empty between messages). */
static void test_steady_state_allocates_nothing(void **state)
{
	(void)state;
	static const uint8_t qos_of[] = {0, 1};
	static const size_t subs_of[] = {1, 8};
	for (size_t q = 0; q < 2; q++) {
		for (size_t k = 0; k < 2; k++) {
			struct broker *b = start_broker(1);
			struct worker *w = b->workers[0];
			int subs[8];
			for (size_t i = 0; i < subs_of[k]; i++) {
				char cid[32];
				snprintf(cid, sizeof(cid), "sub-%zu", i);
				subs[i] = client_on(w, cid);
				struct tern_sub_entry e = {
				        .filter = {(const uint8_t *)"load/#", 6},
				        .qos = qos_of[q],
				};
				struct tern_packet sp = {.type = TERN_SUBSCRIBE};
				sp.u.subscribe.packet_id = 1;
				sp.u.subscribe.count = 1;
				sp.u.subscribe.entries = &e;
				send_packet(subs[i], &sp, TERN_V5);
				worker_iterate(w, 0);
				enum tern_packet_type t[4];
				uint8_t r[4];
				bool eof;
				assert_int_equal(read_packets(subs[i], t, r, 4, &eof), 1);
				assert_int_equal(t[0], TERN_SUBACK);
			}
			int pub = client_on(w, "pub");
			uint16_t id = 1;
			/* Warm-up: the bins, scratch arrays and queues reach
			 * their working size. */
			(void)publish_rounds(w, pub, subs, subs_of[k], qos_of[q], 50, &id);
			size_t allocs =
			        publish_rounds(w, pub, subs, subs_of[k], qos_of[q], 200, &id);
			assert_int_equal(allocs, 0);
			close(pub);
			for (size_t i = 0; i < subs_of[k]; i++)
				close(subs[i]);
			for (int i = 0; i < 3; i++)
				worker_iterate(w, 0);
			stop_broker(b);
		}
	}
}

/* A client of protocol version `version` past CONNACK on w, subscribed
 * to filter with qos (and subscription identifier sub_id when not 0). */
static int subscriber_on(struct worker *w, const char *cid, uint8_t version, const char *filter,
                         uint8_t qos, uint32_t sub_id)
{
	struct conn *c;
	int fd = connect_client(w, &c);
	struct tern_packet p = {.type = TERN_CONNECT};
	p.u.connect.version = version;
	p.u.connect.clean_start = true;
	p.u.connect.client_id = (struct tern_bytes){(const uint8_t *)cid, (uint32_t)strlen(cid)};
	send_packet(fd, &p, version);
	worker_iterate(w, 0);
	uint8_t buf[256];
	assert_true(read(fd, buf, sizeof(buf)) > 0); /* CONNACK */
	struct tern_sub_entry e = {
	        .filter = {(const uint8_t *)filter, (uint32_t)strlen(filter)},
	        .qos = qos,
	};
	struct tern_packet sp = {.type = TERN_SUBSCRIBE};
	sp.u.subscribe.packet_id = 1;
	sp.u.subscribe.count = 1;
	sp.u.subscribe.entries = &e;
	if (sub_id) {
		sp.u.subscribe.props.n_sub_ids = 1;
		sp.u.subscribe.props.sub_ids = &sub_id;
	}
	send_packet(fd, &sp, version);
	worker_iterate(w, 0);
	assert_true(read(fd, buf, sizeof(buf)) > 0); /* SUBACK */
	return fd;
}

/* The one PUBLISH fd has received, decoded for version into *p (its bytes
 * in buf). */
static void read_one_publish(int fd, uint8_t version, uint8_t *buf, size_t cap,
                             struct tern_publish *p)
{
	ssize_t n = read(fd, buf, cap);
	assert_true(n > 0);
	struct tern_fixed_header fh;
	assert_int_equal(tern_decode_fixed_header(buf, (size_t)n, 0, &fh), TERN_OK);
	assert_int_equal(fh.header_len + fh.remaining, (size_t)n);
	struct tern_packet pk;
	assert_int_equal(tern_decode_packet(&fh, buf + fh.header_len, version, &pk), TERN_OK);
	assert_int_equal(pk.type, TERN_PUBLISH);
	*p = pk.u.publish;
}

/* One message to subscribers of several kinds: those of one kind (version,
 * QoS) share its encoded header, each with its own packet id; a v5
 * subscriber with a subscription identifier gets it, the others none; the
 * v5 Message Expiry Interval reaches every v5 subscriber, QoS 0 ones get no
 * packet id, v3.1.1 ones no properties [MQTT-3.3.2-6] [MQTT-3.3.4-3]. */
static void test_publish_header_shared_per_kind(void **state)
{
	(void)state;
	struct broker *b = start_broker(1);
	struct worker *w = b->workers[0];
	int a = subscriber_on(w, "a", TERN_V5, "k/#", 1, 0);
	int d = subscriber_on(w, "d", TERN_V5, "k/#", 1, 0);
	int s = subscriber_on(w, "s", TERN_V5, "k/#", 1, 7);
	int z = subscriber_on(w, "z", TERN_V5, "k/#", 0, 0);
	int v3 = subscriber_on(w, "v3", TERN_V311, "k/#", 1, 0);
	/* Two more of a's kind: a header is kept from the second subscriber
	 * of a message on, so whatever the order, some copy it. */
	int e2 = subscriber_on(w, "e", TERN_V5, "k/#", 1, 0);
	int f = subscriber_on(w, "f", TERN_V5, "k/#", 1, 0);
	int pub = client_on(w, "pub");
	/* d's next packet id differs from the others': it had a message of
	 * its own before (on a second filter). */
	struct tern_sub_entry e = {.filter = {(const uint8_t *)"d/only", 6}, .qos = 1};
	struct tern_packet sp = {.type = TERN_SUBSCRIBE};
	sp.u.subscribe.packet_id = 2;
	sp.u.subscribe.count = 1;
	sp.u.subscribe.entries = &e;
	send_packet(d, &sp, TERN_V5);
	worker_iterate(w, 0);
	uint8_t buf[512];
	assert_true(read(d, buf, sizeof(buf)) > 0); /* SUBACK */
	struct tern_packet p = {.type = TERN_PUBLISH};
	p.u.publish.qos = 1;
	p.u.publish.packet_id = 1;
	p.u.publish.topic = (struct tern_bytes){(const uint8_t *)"d/only", 6};
	p.u.publish.payload = (struct tern_bytes){(const uint8_t *)"one", 3};
	send_packet(pub, &p, TERN_V5);
	worker_iterate(w, 0);
	int all[] = {a, d, s, z, v3, e2, f, pub};
	for (size_t i = 0; i < 8; i++)
		while (read(all[i], buf, sizeof(buf)) > 0)
			;

	p.u.publish.topic = (struct tern_bytes){(const uint8_t *)"k/x", 3};
	p.u.publish.payload = (struct tern_bytes){(const uint8_t *)"hello", 5};
	p.u.publish.packet_id = 2;
	p.u.publish.props.present = TERN_PROP_BIT(TERN_PROP_MESSAGE_EXPIRY);
	p.u.publish.props.message_expiry = 100;
	send_packet(pub, &p, TERN_V5);
	worker_iterate(w, 0);
	struct tern_publish got[7];
	static uint8_t bytes[7][512]; /* what got[i] points into */
	int subs[] = {a, d, s, z, v3, e2, f};
	for (size_t i = 0; i < 7; i++) {
		read_one_publish(subs[i], subs[i] == v3 ? TERN_V311 : TERN_V5, bytes[i],
		                 sizeof(bytes[i]), &got[i]);
		assert_int_equal(got[i].topic.len, 3);
		assert_memory_equal(got[i].topic.data, "k/x", 3);
		assert_int_equal(got[i].payload.len, 5);
		assert_memory_equal(got[i].payload.data, "hello", 5);
		bool v5 = subs[i] != v3;
		assert_int_equal(
		        (got[i].props.present & TERN_PROP_BIT(TERN_PROP_MESSAGE_EXPIRY)) != 0, v5);
		if (v5) {
			assert_true(got[i].props.message_expiry >= 99);
			assert_true(got[i].props.message_expiry <= 100);
		}
		assert_int_equal(got[i].props.n_sub_ids, subs[i] == s ? 1 : 0);
	}
	assert_int_equal(got[0].qos, 1);
	assert_int_equal(got[0].packet_id, 1);
	assert_int_equal(got[1].qos, 1);
	assert_int_equal(got[1].packet_id, 2); /* d: after d/only */
	assert_int_equal(got[2].qos, 1);
	assert_int_equal(got[2].packet_id, 1);
	assert_int_equal(got[3].qos, 0);
	assert_int_equal(got[3].packet_id, 0);
	assert_int_equal(got[4].qos, 1);
	assert_int_equal(got[4].packet_id, 1);
	for (size_t i = 5; i < 7; i++) {
		assert_int_equal(got[i].qos, 1);
		assert_int_equal(got[i].packet_id, 1);
	}
	size_t cur = 0;
	uint32_t id = 0;
	assert_true(tern_props_next_sub_id(&got[2].props, &cur, &id));
	assert_int_equal(id, 7);
	for (size_t i = 0; i < 8; i++)
		close(all[i]);
	for (int i = 0; i < 3; i++)
		worker_iterate(w, 0);
	stop_broker(b);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	        cmocka_unit_test(test_close_is_idempotent),
	        cmocka_unit_test(test_close_out_of_memory_does_not_recurse),
	        cmocka_unit_test(test_send_out_of_memory_closes_once),
	        cmocka_unit_test(test_handed_over_conn_is_not_touched_by_the_same_event),
	        cmocka_unit_test(test_steady_state_allocates_nothing),
	        cmocka_unit_test(test_publish_header_shared_per_kind),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
