/*
 * test_conn.c - unit tests of a connection's life on a worker (conn.c,
 * worker.c): closing, and the hand-over to the session's home worker.
 *
 * Each test builds a broker in-process (memory storage, no listener, no
 * thread) and drives its workers with worker_iterate(w, 0), as fuzz_conn
 * does; clients are socketpairs whose broker end is a plain TCP connection.
 *
 * The program is linked with -Wl,--wrap=malloc (tests/CMakeLists.txt): every
 * malloc() of the broker code goes through __wrap_malloc() below, which fails
 * while fail_malloc is set, so a test can make one step run out of memory.
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
#include "broker/transport.h"
#include "broker/worker.h"
#include "tern/codec.h"
#include "util/buf.h"
#include "util/clock.h"

void *__real_malloc(size_t n);
void *__wrap_malloc(size_t n);

static bool fail_malloc;

void *__wrap_malloc(size_t n)
{
	return fail_malloc ? NULL : __real_malloc(n);
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
	assert_int_equal(worker_adopt(w, c), TERN_OK);
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
	assert_ptr_equal(w->closing, c);
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
	fail_malloc = true;
	conn_close(c, TERN_RC_RECEIVE_MAXIMUM_EXCEEDED, "quota");
	fail_malloc = false;
	assert_int_equal(c->state, CONN_CLOSING);
	assert_ptr_equal(w->closing, c);
	assert_null(c->closing_next);
	worker_iterate(w, 0);
	assert_null(w->conns);
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
	fail_malloc = true;
	assert_int_equal(conn_send(c, &ping), TERN_E_NOMEM);
	fail_malloc = false;
	assert_int_equal(c->state, CONN_CLOSING);
	assert_ptr_equal(w->closing, c);
	assert_null(c->closing_next);
	worker_iterate(w, 0);
	assert_null(w->conns);
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
	assert_null(w0->conns);
	assert_int_equal(w1->sessions.count, 0);
	assert_null(w1->flush);
	assert_int_equal(c->state, CONN_NEW);
	/* The transport's wait is over once the home worker has it. */
	c->tp_read_wants_write = false;
	worker_iterate(w1, 0);
	assert_int_equal(w1->sessions.count, 1);
	assert_ptr_equal(w1->conns, c);
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

int main(void)
{
	const struct CMUnitTest tests[] = {
	        cmocka_unit_test(test_close_is_idempotent),
	        cmocka_unit_test(test_close_out_of_memory_does_not_recurse),
	        cmocka_unit_test(test_send_out_of_memory_closes_once),
	        cmocka_unit_test(test_handed_over_conn_is_not_touched_by_the_same_event),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
