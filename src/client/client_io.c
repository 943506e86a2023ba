/*
 * client_io.c - the client's connection: socket, non-blocking connect,
 * reading and writing, tern_client_step(), timers and reconnecting.
 *
 * Connecting: getaddrinfo() resolves the host. It blocks (there is no
 * portable asynchronous resolver, and a thread would break the "no hidden
 * threads" promise); with a numeric address, the common case, it returns at
 * once. Every address it returns is tried in turn with a non-blocking
 * connect (SOCK_NONBLOCK, EINPROGRESS): when one fails, asynchronously or
 * not, the next is tried, so "localhost" works whether the broker listens on
 * ::1 or on 127.0.0.1. With bind_address the socket is bound first, to that
 * address of the same family; the benchmark uses it to spread connections
 * over several source addresses. CONNECT is encoded as soon as the socket
 * exists and goes out when the connect completes; TCP_NODELAY is set, since
 * MQTT packets are small and latency matters more than segment count.
 *
 * TLS (client_tls.c) slots in between: when the options ask for it, the
 * connected socket goes through the TLS state, where step drives the
 * non-blocking handshake (tern_client_want_write() then follows what
 * OpenSSL waits for, not the queued CONNECT), and CONNECT is written once
 * the handshake is done. Reads and writes go through conn_read() /
 * conn_write(), the only places that tell plain TCP from TLS.
 *
 * Input: whatever the socket has is read into `in` and decoded packet by
 * packet with the shared codec (tern_decode_fixed_header() checks our
 * Maximum Packet Size before the body is buffered). A packet that does not
 * decode ends the connection; a v5 broker first gets a DISCONNECT with the
 * reason the codec names (0x81 malformed, 0x82 protocol error, 0x95 too
 * large). Output: packets are encoded into `out`, and written when step runs
 * or, outside a step, right away, so a lone publish does not wait for the
 * application's next loop iteration.
 *
 * Timers are plain deadlines compared against the monotonic clock in step:
 * the connect deadline (TCP connect plus CONNACK), keep-alive (PINGREQ after
 * keep_alive seconds without output; no PINGRESP within keep_alive more
 * seconds means the connection is dead), and the reconnect time. Reconnect
 * waits min * 2^attempt ms, capped at max, of which a random half is jitter
 * so that clients cut off together do not come back together.
 */
#include <errno.h>
#include <netdb.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>
#include <fcntl.h>

#include "client/client_internal.h"
#include "util/clock.h"

/* Bytes read per recv() call, and at most this many calls per step so that
 * a flooding broker cannot starve the application's loop. */
#define READ_CHUNK  16384
#define READ_ROUNDS 16

/* Out buffers larger than this are freed when they drain. */
#define OUT_KEEP 65536

static bool is_v5(const struct tern_client *c)
{
	return c->opts.version == TERN_V5;
}

/* ---- connecting ---- */

/* Encodes CONNECT from the stored options and queues it first in `out`. */
static TERN_MUST_CHECK enum tern_err queue_connect(struct tern_client *c)
{
	const struct tern_connect_opts *o = &c->opts;
	struct tern_packet p = {.type = TERN_CONNECT};
	struct tern_connect *cn = &p.u.connect;

	cn->version = o->version;
	cn->bridge = o->bridge;
	cn->clean_start = o->clean_start;
	/* 3.1.1 accepts an empty client id only with a clean session
	 * [MQTT-3.1.3-7]. */
	if (o->version != TERN_V5 && c->client_id[0] == '\0')
		cn->clean_start = true;
	c->clean_start_now = cn->clean_start;
	cn->keep_alive = o->keep_alive;
	if (o->props != NULL)
		cn->props = *o->props;
	cn->client_id =
	        (struct tern_bytes){(const uint8_t *)c->client_id, (uint32_t)strlen(c->client_id)};
	if (o->will != NULL) {
		cn->will = true;
		cn->will_qos = o->will->qos;
		cn->will_retain = o->will->retain;
		if (o->will->props != NULL)
			cn->will_props = *o->will->props;
		cn->will_topic = (struct tern_bytes){(const uint8_t *)o->will->topic,
		                                     (uint32_t)strlen(o->will->topic)};
		cn->will_payload =
		        (struct tern_bytes){o->will->payload, (uint32_t)o->will->payload_len};
	}
	if (o->username != NULL) {
		cn->has_username = true;
		cn->username = (struct tern_bytes){(const uint8_t *)o->username,
		                                   (uint32_t)strlen(o->username)};
	}
	if (o->password != NULL) {
		cn->has_password = true;
		cn->password = (struct tern_bytes){o->password, (uint32_t)o->password_len};
	}
	return tern__send_packet(c, &p);
}

/* Resets the per-connection state and queues CONNECT. */
static TERN_MUST_CHECK enum tern_err conn_begin(struct tern_client *c)
{
	c->now = mono_ms();
	buf_free(&c->in);
	buf_free(&c->out);
	c->fail = TERN_OK;
	c->fail_reason = 0;
	c->ping_sent = 0;
	c->last_tx = c->now;
	c->deadline = c->now + c->opts.connect_timeout_ms;
	c->keep_alive = c->opts.keep_alive;
	c->recv_max = 65535;
	c->max_packet = 0;
	c->max_qos = 2;
	c->retain_ok = true;
	return queue_connect(c);
}

/* The TCP connection is up: from now on we wait for the TLS handshake,
 * or for CONNACK. */
static void tcp_up(struct tern_client *c)
{
	int one = 1;
	setsockopt(c->fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
	c->state = TERN__CONNACK;
	if (c->tls != NULL) {
		c->state = TERN__TLS;
		enum tern_err e = tern__tls_begin(c);
		if (e != TERN_OK)
			tern__fail(c, e);
	}
	if (c->ai_list != NULL) {
		freeaddrinfo(c->ai_list);
		c->ai_list = c->ai_next = NULL;
	}
}

/* Binds fd to the configured source address of the given family.
 * TERN_E_SYS with errno set when the address does not resolve
 * (EADDRNOTAVAIL) or bind() fails. */
static TERN_MUST_CHECK enum tern_err bind_source(struct tern_client *c, int fd, int family)
{
	struct addrinfo hints = {
	        .ai_family = family, .ai_socktype = SOCK_STREAM, .ai_flags = AI_PASSIVE};
	struct addrinfo *res = NULL;
	if (getaddrinfo(c->opts.bind_address, NULL, &hints, &res) != 0 || res == NULL) {
		errno = EADDRNOTAVAIL;
		return TERN_E_SYS;
	}
	int r = bind(fd, res->ai_addr, res->ai_addrlen);
	int e = errno;
	freeaddrinfo(res);
	errno = e;
	return r == 0 ? TERN_OK : TERN_E_SYS;
}

/* Starts a connect to the next untried address. TERN_OK when one is in
 * progress (state TCP) or done (state CONNACK); TERN_E_SYS when none is
 * left, with errno from the last failure. */
static TERN_MUST_CHECK enum tern_err try_next_addr(struct tern_client *c)
{
	int err = EHOSTUNREACH;
	for (; c->ai_next != NULL; c->ai_next = c->ai_next->ai_next) {
		struct addrinfo *ai = c->ai_next;
		int fd = socket(ai->ai_family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC,
		                ai->ai_protocol);
		if (fd < 0) {
			err = errno;
			continue;
		}
		if (c->opts.bind_address != NULL && bind_source(c, fd, ai->ai_family) != TERN_OK) {
			err = errno;
			close(fd);
			continue;
		}
		int r = connect(fd, ai->ai_addr, ai->ai_addrlen);
		if (r < 0 && errno != EINPROGRESS) {
			err = errno;
			close(fd);
			continue;
		}
		c->fd = fd;
		c->ai_next = ai->ai_next;
		if (r == 0)
			tcp_up(c);
		else
			c->state = TERN__TCP;
		return TERN_OK;
	}
	errno = err;
	return TERN_E_SYS;
}

enum tern_err tern__io_start(struct tern_client *c)
{
	char port[8];
	struct addrinfo hints = {
	        .ai_family = AF_UNSPEC, .ai_socktype = SOCK_STREAM, .ai_flags = AI_ADDRCONFIG};

	enum tern_err e = conn_begin(c);
	if (e != TERN_OK)
		return e;
	snprintf(port, sizeof(port), "%u", (unsigned)c->opts.port);
	if (c->ai_list != NULL)
		freeaddrinfo(c->ai_list);
	c->ai_list = c->ai_next = NULL;
	if (getaddrinfo(c->opts.host, port, &hints, &c->ai_list) != 0) {
		c->ai_list = NULL;
		errno = EHOSTUNREACH;
		return TERN_E_SYS;
	}
	c->ai_next = c->ai_list;
	e = try_next_addr(c);
	if (e != TERN_OK) {
		int saved = errno;
		freeaddrinfo(c->ai_list);
		c->ai_list = c->ai_next = NULL;
		buf_free(&c->out);
		c->state = TERN__IDLE;
		errno = saved;
	}
	return e;
}

enum tern_err tern__io_attach(struct tern_client *c, int fd)
{
	int fl = fcntl(fd, F_GETFL);
	if (fl < 0 || fcntl(fd, F_SETFL, fl | O_NONBLOCK) < 0)
		return TERN_E_SYS;
	enum tern_err e = conn_begin(c);
	if (e != TERN_OK)
		return e;
	c->fd = fd;
	c->state = TERN__CONNACK;
	if (c->tls != NULL) {
		c->state = TERN__TLS;
		e = tern__tls_begin(c);
	}
	return e;
}

/* Checks a connect in progress; moves on to CONNACK, or to the next
 * address, or fails. */
static void check_tcp(struct tern_client *c)
{
	struct pollfd pfd = {.fd = c->fd, .events = POLLOUT};
	if (poll(&pfd, 1, 0) <= 0)
		return;
	int soerr = 0;
	socklen_t sl = sizeof(soerr);
	if (getsockopt(c->fd, SOL_SOCKET, SO_ERROR, &soerr, &sl) < 0)
		soerr = errno;
	if (soerr == 0 && !(pfd.revents & (POLLERR | POLLHUP))) {
		tcp_up(c);
		return;
	}
	close(c->fd);
	c->fd = -1;
	if (try_next_addr(c) != TERN_OK) {
		errno = soerr ? soerr : errno;
		tern__fail(c, TERN_E_SYS);
	}
}

/* Goes on with the TLS handshake; CONNECT goes out once it is done. */
static void check_tls(struct tern_client *c)
{
	enum tern_err e = tern__tls_handshake(c);
	if (e == TERN_OK)
		c->state = TERN__CONNACK;
	else if (e != TERN_E_INCOMPLETE)
		tern__fail(c, e);
}

/* ---- the transport: plain TCP or TLS ---- */

/* Reads up to n bytes: TERN_OK and *got > 0, TERN_E_INCOMPLETE when
 * nothing is there now, or the error that ends the connection. */
static TERN_MUST_CHECK enum tern_err conn_read(struct tern_client *c, void *buf, size_t n,
                                               size_t *got)
{
	if (c->tls != NULL)
		return tern__tls_read(c, buf, n, got);
	for (;;) {
		ssize_t r = recv(c->fd, buf, n, MSG_DONTWAIT);
		if (r > 0) {
			*got = (size_t)r;
			return TERN_OK;
		}
		if (r == 0)
			return TERN_E_CLOSED;
		if (errno == EINTR)
			continue;
		if (errno == EAGAIN || errno == EWOULDBLOCK)
			return TERN_E_INCOMPLETE;
		return errno == ECONNRESET ? TERN_E_CLOSED : TERN_E_SYS;
	}
}

/* Writes up to n bytes: TERN_OK and *put > 0, TERN_E_INCOMPLETE when the
 * socket takes nothing now, or the error that ends the connection. */
static TERN_MUST_CHECK enum tern_err conn_write(struct tern_client *c, const void *buf, size_t n,
                                                size_t *put)
{
	if (c->tls != NULL)
		return tern__tls_write(c, buf, n, put);
	for (;;) {
		ssize_t r = send(c->fd, buf, n, MSG_NOSIGNAL | MSG_DONTWAIT);
		if (r > 0) {
			*put = (size_t)r;
			return TERN_OK;
		}
		if (r < 0 && errno == EINTR)
			continue;
		if (r < 0 && (errno == EAGAIN || errno == EWOULDBLOCK))
			return TERN_E_INCOMPLETE;
		return (errno == EPIPE || errno == ECONNRESET) ? TERN_E_CLOSED : TERN_E_SYS;
	}
}

/* ---- output ---- */

enum tern_err tern__send_packet(struct tern_client *c, const struct tern_packet *p)
{
	/* Encoded straight into the room `out` has (the encoder checks and
	 * measures as it goes); only a packet that does not fit is measured
	 * first, to make room. Bytes past out.len count only once committed,
	 * so a packet over the broker's maximum is dropped unsent. */
	size_t n = 0, room = c->out.cap - c->out.len;
	uint8_t *at = c->out.data != NULL ? c->out.data + c->out.len : NULL;
	enum tern_err e = tern_encode_packet(p, c->opts.version, at, room, &n);
	if (e == TERN_E_BUFFER) {
		size_t size = tern_packet_size(p, c->opts.version);
		if (size == 0)
			return TERN_E_INVALID;
		if (c->max_packet != 0 && size > c->max_packet)
			return TERN_E_TOO_LARGE;
		if ((e = buf_reserve(&c->out, size, 0)) != TERN_OK)
			return e;
		e = tern_encode_packet(p, c->opts.version, c->out.data + c->out.len, size, &n);
	}
	if (e != TERN_OK)
		return TERN_E_INVALID;
	if (c->max_packet != 0 && n > c->max_packet)
		return TERN_E_TOO_LARGE;
	c->out.len += n;
	return TERN_OK;
}

void tern__flush(struct tern_client *c)
{
	if (c->fd < 0 || c->state == TERN__TCP || c->state == TERN__TLS || c->fail != TERN_OK)
		return;
	while (buf_used(&c->out) > 0) {
		size_t n = 0;
		enum tern_err e = conn_write(c, c->out.data + c->out.off, buf_used(&c->out), &n);
		if (e == TERN_E_INCOMPLETE)
			return;
		if (e != TERN_OK) {
			tern__fail(c, e);
			return;
		}
		buf_consume(&c->out, n);
		c->last_tx = mono_ms();
	}
	if (c->out.cap > OUT_KEEP)
		buf_free(&c->out);
}

/* ---- input ---- */

/* Decodes and handles the complete packets in `in`. */
static void process_input(struct tern_client *c)
{
	while (c->fail == TERN_OK && (c->state == TERN__CONNACK || c->state == TERN__UP)) {
		struct tern_fixed_header fh;
		const uint8_t *p = c->in.data + c->in.off;
		size_t have = buf_used(&c->in);
		enum tern_err e = tern_decode_fixed_header_v(p, have, c->local_max_packet,
		                                             c->opts.version, &fh);
		if (e == TERN_E_INCOMPLETE)
			break;
		if (e != TERN_OK) {
			tern__fail(c, e);
			break;
		}
		size_t total = (size_t)fh.header_len + fh.remaining;
		if (have < total) {
			/* Room for the whole packet, so the next reads fill it. */
			if (buf_reserve(&c->in, total - have, 0) != TERN_OK)
				tern__fail(c, TERN_E_NOMEM);
			break;
		}
		struct tern_packet pkt;
		e = tern_decode_packet(&fh, p + fh.header_len, c->opts.version, &pkt);
		if (e != TERN_OK) {
			tern__fail(c, e);
			break;
		}
		tern__handle(c, &pkt);
		buf_consume(&c->in, total);
	}
	if (buf_used(&c->in) == 0)
		buf_free(&c->in); /* idle clients hold no input buffer */
}

/* Reads what the socket has and handles it. */
static void read_input(struct tern_client *c)
{
	/* Assume more is waiting unless the socket says it is drained, so that
	 * an edge-triggered caller is told (timeout 0) to step again. */
	c->more_input = true;
	for (int round = 0; round < READ_ROUNDS && c->fail == TERN_OK; round++) {
		if (c->state != TERN__CONNACK && c->state != TERN__UP) {
			c->more_input = false; /* closing: input no longer matters */
			return;
		}
		if (buf_reserve(&c->in, READ_CHUNK, 0) != TERN_OK) {
			tern__fail(c, TERN_E_NOMEM);
			return;
		}
		size_t room = c->in.cap - c->in.len, n = 0;
		enum tern_err e = conn_read(c, c->in.data + c->in.len, room, &n);
		if (e == TERN_E_INCOMPLETE) {
			c->more_input = false; /* drained */
			return;
		}
		if (e != TERN_OK) {
			tern__fail(c, e);
			return;
		}
		c->in.len += n;
		process_input(c);
		/* A short read drains a plain socket. TLS hands out one record
		 * at a time, so there only "would block" says drained. */
		if (n < room && c->tls == NULL) {
			c->more_input = false;
			return;
		}
	}
}

/* ---- failing and closing ---- */

/* Errors caused by what the broker sent; v5 tells the broker why. */
static bool err_is_peer_fault(enum tern_err e)
{
	return e == TERN_E_MALFORMED || e == TERN_E_PROTOCOL || e == TERN_E_TOO_LARGE ||
	       e == TERN_E_TOPIC_NAME || e == TERN_E_TOPIC_FILTER;
}

void tern__fail(struct tern_client *c, enum tern_err err)
{
	if (c->fail != TERN_OK)
		return;
	c->fail = err;
	c->fail_reason = 0;
	if (is_v5(c) && err_is_peer_fault(err))
		c->fail_reason = tern_err_reason(err);
}

/* The back-off before reconnect attempt number c->attempt. */
static uint64_t backoff_ms(struct tern_client *c)
{
	uint32_t shift = c->attempt < 20 ? c->attempt : 20;
	uint64_t d = (uint64_t)c->opts.reconnect_min_ms << shift;
	if (d > c->opts.reconnect_max_ms)
		d = c->opts.reconnect_max_ms;
	/* xorshift64 */
	c->rng ^= c->rng << 13;
	c->rng ^= c->rng >> 7;
	c->rng ^= c->rng << 17;
	uint64_t half = d / 2;
	return d - half + (half ? c->rng % (half + 1) : 0);
}

void tern__close(struct tern_client *c, enum tern_err err, uint8_t reason,
                 const struct tern_props *props)
{
	int saved_errno = errno;
	tern__tls_end(c, err == TERN_OK);
	if (c->fd >= 0)
		close(c->fd);
	c->fd = -1;
	if (c->ai_list != NULL)
		freeaddrinfo(c->ai_list);
	c->ai_list = c->ai_next = NULL;
	buf_free(&c->in);
	buf_free(&c->out);
	c->more_input = false;
	c->ping_sent = 0;
	c->fail = TERN_OK;
	c->fail_reason = 0;
	tern__proto_conn_lost(c);

	bool again = c->opts.auto_reconnect && !c->user_close && !c->refused && err != TERN_OK;
	if (again) {
		c->state = TERN__BACKOFF;
		c->reconnect_at = mono_ms() + backoff_ms(c);
		c->attempt++;
	} else {
		c->state = TERN__IDLE;
	}
	c->ev_closed = true;
	c->ev_err = err;
	errno = saved_errno;
	if (c->cb.on_disconnect != NULL)
		c->cb.on_disconnect(c, c->ud, err, reason, props);
}

/* Acts on c->fail: tells a v5 broker why, then closes. */
static void close_failed(struct tern_client *c)
{
	enum tern_err err = c->fail;
	if (c->fail_reason != 0 && c->fd >= 0 &&
	    (c->state == TERN__CONNACK || c->state == TERN__UP)) {
		struct tern_packet d = {.type = TERN_DISCONNECT};
		d.u.reasoned.reason = c->fail_reason;
		c->fail = TERN_OK;
		/* Best effort: one non-blocking write, then close. */
		if (tern__send_packet(c, &d) == TERN_OK)
			tern__flush(c);
	}
	if (c->server_disconnect) {
		/* The copy outlives the callback, which may reconnect. */
		struct tern__props_copy pc = c->server_props;
		uint8_t reason = c->server_reason;
		c->server_props = (struct tern__props_copy){0};
		c->server_disconnect = false;
		tern__close(c, err, reason, &pc.p);
		tern__props_copy_free(&pc);
		return;
	}
	tern__close(c, err, c->refused ? c->ev_reason : 0, NULL);
}

/* ---- timers ---- */

/* Milliseconds from t to now; 0 when t is later (it may be: a write
 * during this step stamps last_tx after the step read the clock). */
static uint64_t since(uint64_t now, uint64_t t)
{
	return now > t ? now - t : 0;
}

static void run_timers(struct tern_client *c)
{
	uint64_t now = c->now = mono_ms();
	if ((c->state == TERN__TCP || c->state == TERN__TLS || c->state == TERN__CONNACK ||
	     c->state == TERN__CLOSING) &&
	    now >= c->deadline) {
		tern__fail(c, TERN_E_TIMEOUT);
		return;
	}
	if (c->state != TERN__UP || c->keep_alive == 0)
		return;
	uint64_t ka = (uint64_t)c->keep_alive * 1000u;
	if (c->ping_sent != 0) {
		if (since(now, c->ping_sent) >= ka)
			tern__fail(c, TERN_E_TIMEOUT);
		return;
	}
	if (since(now, c->last_tx) >= ka) {
		struct tern_packet p = {.type = TERN_PINGREQ};
		if (tern__send_packet(c, &p) == TERN_OK)
			c->ping_sent = now;
	}
}

/* ---- the public driving functions ---- */

enum tern_err tern_client_step(struct tern_client *c)
{
	enum tern_err ret = TERN_OK;

	c->in_step++;
	c->now = mono_ms();
	if (c->state == TERN__BACKOFF && c->now >= c->reconnect_at) {
		c->state = TERN__IDLE;
		enum tern_err e = tern__io_start(c);
		if (e != TERN_OK) {
			c->in_step--;
			tern__close(c, e, 0, NULL);
			return e;
		}
	}
	if (c->state == TERN__TCP)
		check_tcp(c);
	if (c->state == TERN__TLS && c->fail == TERN_OK)
		check_tls(c);
	if (c->fail == TERN_OK && c->fd >= 0 && c->state != TERN__TCP && c->state != TERN__TLS)
		read_input(c);
	tern__flush(c);
	if (c->fail == TERN_OK) {
		run_timers(c);
		tern__flush(c);
	}
	c->in_step--;
	if (c->fail != TERN_OK) {
		ret = c->fail;
		close_failed(c);
	} else if (c->state == TERN__CLOSING && buf_used(&c->out) == 0) {
		tern__close(c, TERN_OK, 0, NULL);
	}
	return ret;
}

bool tern_client_want_write(const struct tern_client *c)
{
	if (c->state == TERN__TCP)
		return true;
	if (c->state == TERN__TLS) /* CONNECT waits; the handshake decides */
		return tern__tls_want_write(c);
	return c->fd >= 0 && (buf_used(&c->out) > 0 || tern__tls_want_write(c));
}

/* ms from now to t, at least 0, at most INT32_MAX. */
static int until(uint64_t now, uint64_t t)
{
	if (t <= now)
		return 0;
	return t - now > 0x7fffffff ? 0x7fffffff : (int)(t - now);
}

int tern_client_timeout_ms(const struct tern_client *c)
{
	uint64_t now = mono_ms();
	if (c->fail != TERN_OK || (c->more_input && c->fd >= 0))
		return 0;
	/* Input decrypted inside OpenSSL does not make the fd readable. */
	if ((c->state == TERN__CONNACK || c->state == TERN__UP) && tern__tls_pending(c))
		return 0;
	switch (c->state) {
	case TERN__IDLE:
		return -1;
	case TERN__BACKOFF:
		return until(now, c->reconnect_at);
	case TERN__TCP:
	case TERN__TLS:
	case TERN__CONNACK:
		return until(now, c->deadline);
	case TERN__CLOSING:
		return buf_used(&c->out) == 0 ? 0 : until(now, c->deadline);
	case TERN__UP:
		break;
	}
	if (c->keep_alive == 0)
		return -1;
	uint64_t ka = (uint64_t)c->keep_alive * 1000u;
	return until(now, (c->ping_sent ? c->ping_sent : c->last_tx) + ka);
}

enum tern_err tern_client_disconnect(struct tern_client *c, uint8_t reason,
                                     const struct tern_props *props)
{
	switch (c->state) {
	case TERN__IDLE:
		return TERN_E_CLOSED;
	case TERN__CLOSING:
		return TERN_OK;
	case TERN__BACKOFF:
		/* The connection was already reported lost: just stop. */
		c->state = TERN__IDLE;
		c->user_close = true;
		return TERN_OK;
	case TERN__TCP:
	case TERN__TLS:
		c->user_close = true;
		tern__close(c, TERN_OK, 0, NULL);
		return TERN_OK;
	case TERN__CONNACK:
	case TERN__UP:
		break;
	}
	struct tern_packet p = {.type = TERN_DISCONNECT};
	p.u.reasoned.reason = reason;
	if (props != NULL)
		p.u.reasoned.props = *props;
	enum tern_err e = tern__send_packet(c, &p);
	if (e != TERN_OK)
		return e;
	c->user_close = true;
	c->state = TERN__CLOSING;
	c->deadline = mono_ms() + c->opts.connect_timeout_ms;
	if (c->in_step == 0) {
		tern__flush(c);
		if (c->fail != TERN_OK) {
			enum tern_err f = c->fail;
			c->fail = TERN_OK;
			tern__close(c, f, 0, NULL);
		} else if (buf_used(&c->out) == 0) {
			tern__close(c, TERN_OK, 0, NULL);
		}
	}
	return TERN_OK;
}
