/*
 * conn.c - one network connection: its life, input, dispatch, closing.
 *
 * Input: bytes are read into the connection's buffer; the fixed header is
 * decoded first and a packet over the maximum size is refused as soon as
 * its length is known, before its body is buffered. A whole packet is
 * decoded into structs that point into the buffer and dispatched to its
 * handle_*() function; no handler sees raw bytes. The buffer grows only as
 * bytes actually arrive, so a client that announces a huge packet costs
 * nothing until it sends it.
 *
 * Errors become reason codes in one place: a decode error goes through
 * tern_err_reason() to conn_close(), which sends a v5 DISCONNECT where the
 * spec names a reason and simply closes for 3.1 / 3.1.1 ([MQTT-4.8.0-1]).
 *
 * Input of a connection past CONNECT is read into the worker's scratch
 * buffer (Redis's per-thread query buffer): whole packets are handled from
 * there and only a partial packet is kept in the connection's own buffer,
 * so an idle connection holds no input buffer. Output is conn_out.c's.
 *
 * Closing: conn_close() marks, the reaper (conn_reap()) detaches the
 * session and then closes gracefully unless the peer ended the stream:
 * flush, transport goodbye, shutdown(SHUT_WR), then input is dropped until
 * the peer closes or a bound (time, bytes) is reached, so that a client
 * still sending can read our DISCONNECT instead of meeting a reset.
 *
 * Flow control (flow.h) can stop reading a publisher that goes on while
 * its acknowledgements are held: its socket is then taken out of the read
 * interest set and what it has buffered waits, unhandled, until
 * flow_resume() runs it again.
 */
#include "broker/conn.h"

#include <arpa/inet.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <unistd.h>

#include "broker/broker.h"
#include "broker/conn_internal.h"
#include "broker/delivery.h"
#include "broker/flow.h"
#include "broker/handlers.h"
#include "broker/session.h"
#include "broker/stats.h"
#include "broker/topic_alias.h"
#include "broker/transport.h"
#include "broker/worker.h"
#include "store/store.h"
#include "tern/codec.h"
#include "util/alias_in.h"
#include "util/buf.h"
#include "util/clock.h"
#include "util/log.h"
#include "util/msg.h"

/* What a connection's own buffer reads at a time (before CONNECT, and
 * while a large packet arrives); the others read into the worker's
 * scratch (WORKER_SCRATCH_SIZE). */
#define READ_CHUNK 16384

/* Bounds of a graceful close (conn_reap()): long enough for a client to
 * read a DISCONNECT, short enough that nobody can hold a socket open this
 * way. */
#define CONN_LINGER_MS    2000u
#define CONN_LINGER_BYTES (1u << 20)

const char *conn_peer(const struct conn *c, char out[64])
{
	size_t len = 64;
	const char *proxied = conn_proxy_peer(c);
	if (proxied) {
		snprintf(out, len, "%s", proxied);
		return out;
	}
	int fd = c->fd;
	struct sockaddr_storage ss;
	socklen_t sl = sizeof(ss);
	char host[INET6_ADDRSTRLEN] = "?";
	unsigned port = 0;
	if (getpeername(fd, (struct sockaddr *)&ss, &sl) == 0) {
		if (ss.ss_family == AF_INET) {
			struct sockaddr_in *a = (struct sockaddr_in *)&ss;
			inet_ntop(AF_INET, &a->sin_addr, host, sizeof(host));
			port = ntohs(a->sin_port);
		} else if (ss.ss_family == AF_INET6) {
			struct sockaddr_in6 *a = (struct sockaddr_in6 *)&ss;
			inet_ntop(AF_INET6, &a->sin6_addr, host, sizeof(host));
			port = ntohs(a->sin6_port);
		}
	}
	snprintf(out, len, "%s:%u", host, port);
	return out;
}

enum tern_err conn_worker_new(struct worker *w)
{
	w->conn_state = calloc(1, sizeof(*w->conn_state));
	if (!w->conn_state)
		return TERN_E_NOMEM;
	w->conn_state->scratch = malloc(WORKER_SCRATCH_SIZE);
	return w->conn_state->scratch ? TERN_OK : TERN_E_NOMEM;
}

void conn_worker_free(struct worker *w)
{
	if (!w->conn_state)
		return;
	pub_cache_clear(w);
	map_free(&w->conn_state->auth_wait);
	size_t pos = 0;
	void *a;
	while ((a = map_next(&w->conn_state->lookup_done, &pos)))
		free(a);
	map_free(&w->conn_state->lookup_done);
	map_free(&w->conn_state->lookup_wait);
	pos = 0;
	while ((a = map_next(&w->conn_state->proxied, &pos)))
		free(a);
	map_free(&w->conn_state->proxied);
	free(w->conn_state->scratch);
	free(w->conn_state);
	w->conn_state = NULL;
}

struct conn *conn_new(struct worker *w, int fd, const struct listener *l)
{
	struct conn *c = calloc(1, sizeof(*c));
	if (!c)
		return NULL;
	c->listener = l;
	c->tp = l->tp;
	c->fd = fd;
	if (c->tp->open(c, l)) {
		free(c);
		return NULL;
	}
	struct broker *b = w->broker;
	c->sink.ops = &conn_sink_ops;
	c->sink.id = broker_new_id(b);
	c->sink.listener = l->index;
	c->fd = fd;
	c->w = w;
	c->state = CONN_NEW;
	c->last_rx = w->now;
	c->since_ms = wall_ms();
	c->deadline = w->now + (uint64_t)b->cfg.connect_timeout * 1000u;
	c->counted = true;
	atomic_fetch_add(&b->n_conns, 1);
	return c;
}

void conn_free(struct conn *c)
{
	if (!c)
		return;
	if (c->auth == CONN_AUTH_WAIT)
		conn_auth_forget(c);
	if (c->lookup != CONN_LOOKUP_NONE)
		conn_lookup_forget(c);
	c->tp->close(c);
	if (c->fd >= 0)
		close(c->fd);
	if (c->counted)
		atomic_fetch_sub(&c->w->broker->n_conns, 1);
	if (c->flow)
		flow_forget(c);
	conn_proxy_forget(c);
	buf_free(&c->rbuf);
	buf_free(&c->wbuf);
	conn_out_free(c);
	msg_unref(c->sink.will);
	alias_in_free(&c->sink.alias_in);
	topic_alias_free(&c->alias_out);
	free(c);
}

void conn_pause_input(struct conn *c, bool paused)
{
	if (c->input_paused == paused)
		return;
	c->input_paused = paused;
	struct epoll_event ev = {.events = (paused ? 0 : EPOLLIN | EPOLLRDHUP) |
	                                   (c->epollout ? EPOLLOUT : 0),
	                         .data.ptr = c};
	if (epoll_ctl(c->w->epfd, EPOLL_CTL_MOD, c->fd, &ev) < 0)
		conn_close(c, TERN_RC_UNSPECIFIED, "epoll_ctl failed");
}

bool conn_on_writable(struct conn *c)
{
	conn_flush(c);
	if (c->state != CONN_CLOSING && c->tp_read_wants_write && !c->input_paused)
		return conn_on_readable(c);
	return true;
}

void conn_close(struct conn *c, uint8_t reason, const char *why)
{
	if (c->state == CONN_CLOSING)
		return;
	/* Marked first: whatever runs below (the DISCONNECT, the log line)
	 * may fail, and a failure that closes again must find the connection
	 * closed already, not recurse. */
	bool active = c->state == CONN_ACTIVE;
	c->state = CONN_CLOSING;
	c->closing_next = c->w->conn_state->closing;
	c->w->conn_state->closing = c;
	struct broker *b = c->w->broker;
	if (active && c->sink.version == TERN_V5 && reason >= 0x80) {
		/* The server may send DISCONNECT with a reason before closing
		 * [MQTT-4.13.2-1]; a reason string is allowed on DISCONNECT
		 * whatever Request Problem Information says [MQTT-3.1.2-29],
		 * and is sent when the client asked for it (handle_connect).
		 * It is written when the connection is reaped; if it does not
		 * fit in memory the connection closes without it. */
		struct tern_packet p = {.type = TERN_DISCONNECT};
		p.u.reasoned.reason = reason;
		sink_reason_string(&c->sink, &p.u.reasoned.props, why);
		enum tern_err best_effort = conn_queue_packet(c, &p);
		(void)best_effort;
	}
	if (why && b->cfg.connection_messages) {
		const struct session *s = c->sink.session;
		struct tern_bytes cid =
		        s ? session_client_id(s) : (struct tern_bytes){(const uint8_t *)"?", 1};
		log_write(&b->log, LOG_TYPE_NOTICE, "Client %.*s [%s] disconnected: %s.",
		          (int)cid.len, (const char *)cid.data, conn_peer(c, (char[64]){0}), why);
	}
}

static void linger_want_out(struct conn *c, bool on)
{
	/* A write that waits for readability is retried on input, as in
	 * conn_flush(): EPOLLOUT would fire at once, again and again. */
	on = on && !c->tp_write_wants_read;
	if (c->epollout == on)
		return;
	struct epoll_event ev = {.events = EPOLLIN | EPOLLRDHUP | (on ? EPOLLOUT : 0),
	                         .data.ptr = c};
	if (epoll_ctl(c->w->epfd, EPOLL_CTL_MOD, c->fd, &ev) == 0)
		c->epollout = on;
}

static void linger_end(struct conn *c)
{
	struct worker *w = c->w;
	if (c->prev)
		c->prev->next = c->next;
	else
		w->conn_state->lingering = c->next;
	if (c->next)
		c->next->prev = c->prev;
	conn_free(c); /* closing the fd takes it out of epoll */
}

/* Moves a lingering connection on: our output, then the transport's
 * goodbye and shutdown(SHUT_WR), while input is read and dropped. Frees c
 * when the peer has closed, on an error, or past CONN_LINGER_BYTES. */
static void linger_progress(struct conn *c, bool readable)
{
	if (!c->shut_wr) {
		if (conn_write_some(c) != TERN_OK) {
			linger_end(c);
			return;
		}
		enum tern_err g = TERN_OK;
		if (!conn_pending_out(c) && !c->tp->out_pending(c) && c->tp->goodbye)
			g = c->tp->goodbye(c);
		if (g != TERN_OK && g != TERN_E_INCOMPLETE) {
			linger_end(c);
			return;
		}
		if (g == TERN_E_INCOMPLETE || conn_pending_out(c) || c->tp->out_pending(c)) {
			linger_want_out(c, true);
		} else {
			/* The peer reads our last words, then end of stream. */
			shutdown(c->fd, SHUT_WR);
			c->shut_wr = true;
			linger_want_out(c, false);
			buf_free_in(&c->wbuf, &c->w->bins);
			conn_out_free(c);
		}
	}
	if (!readable)
		return;
	/* Straight from the socket, past the transport: these bytes are
	 * dropped, and after our goodbye nothing in them matters. */
	uint8_t scratch[4096];
	for (;;) {
		ssize_t n = recv(c->fd, scratch, sizeof(scratch), 0);
		if (n > 0) {
			c->discarded += (uint32_t)n;
			if (c->discarded > CONN_LINGER_BYTES)
				break;
			continue;
		}
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK))
			return;
		break; /* end of stream or error: the peer is done */
	}
	linger_end(c);
}

void conn_linger_event(struct conn *c, uint32_t events)
{
	linger_progress(c, events & (EPOLLIN | EPOLLRDHUP | EPOLLHUP | EPOLLERR));
}

void conn_linger_expire(struct worker *w, uint64_t now)
{
	struct conn *c = w->conn_state->lingering;
	while (c) {
		struct conn *next = c->next;
		if (now >= c->deadline)
			linger_end(c);
		c = next;
	}
}

enum tern_err conn_adopt(struct worker *w, struct conn *c)
{
	c->w = w;
	/* A connection handed over keeps the write interest it had (a
	 * handshake's reply still going out). */
	struct epoll_event ev = {.events = EPOLLIN | EPOLLRDHUP | (c->epollout ? EPOLLOUT : 0),
	                         .data.ptr = c};
	if (epoll_ctl(w->epfd, EPOLL_CTL_ADD, c->fd, &ev) < 0)
		return TERN_E_SYS;
	struct conn_worker *cw = w->conn_state;
	c->prev = NULL;
	c->next = cw->conns;
	if (cw->conns)
		cw->conns->prev = c;
	cw->conns = c;
	return TERN_OK;
}

void conn_arrive(struct worker *w, struct conn *c)
{
	if (conn_adopt(w, c)) {
		conn_free(c);
		return;
	}
	/* What the old worker had not written yet (a handshake's reply)
	 * goes out from here. */
	if (conn_pending_out(c) || c->tp->out_pending(c))
		conn_flush(c);
	/* Home already: a second hand-over cannot happen. */
	(void)conn_process(c);
}

void conn_on_event(struct conn *c, uint32_t events)
{
	if (c->state == CONN_LINGER) {
		conn_linger_event(c, events);
		return;
	}
	if (c->state == CONN_CLOSING)
		return;
	/* A handler that hands c to its home worker ends the event: c is
	 * that worker's from then on. */
	if ((events & EPOLLOUT) && !conn_on_writable(c))
		return;
	if (events & (EPOLLIN | EPOLLRDHUP | EPOLLHUP | EPOLLERR))
		conn_on_readable(c);
}

void conn_check_timeouts(struct worker *w, uint64_t now)
{
	for (struct conn *c = w->conn_state->conns; c; c = c->next) {
		if (c->state == CONN_NEW && now >= c->deadline) {
			conn_close(c, 0, "no CONNECT in time");
		} else if (c->state == CONN_ACTIVE && c->sink.keep_alive && !c->input_paused &&
		           now - c->last_rx > (uint64_t)c->sink.keep_alive * 1500u) {
			/* One and a half keep-alive periods without a packet
			 * [MQTT-3.1.2-24]. A connection paused by flow
			 * control is not read: that silence is ours. */
			conn_close(c, TERN_RC_KEEP_ALIVE_TIMEOUT, "keep-alive timeout");
		}
	}
}

void conn_reap_closing(struct worker *w)
{
	/* Reap from a detached list: a connection closed while another is
	 * reaped (a will it could not take) may still be in the flush list,
	 * and is reaped in the next round, after that list is flushed. */
	struct conn *closing = w->conn_state->closing;
	w->conn_state->closing = NULL;
	while (closing) {
		struct conn *c = closing;
		closing = c->closing_next;
		conn_reap(c);
	}
}

bool conn_work_left(const struct worker *w)
{
	return w->conn_state->flush || w->conn_state->closing;
}

void conn_close_all(struct worker *w)
{
	struct conn_worker *cw = w->conn_state;
	while (cw->conns) {
		struct conn *c = cw->conns;
		c->sink.will_suppressed = true;
		c->no_linger = true; /* nobody is left to linger for */
		conn_close(c, TERN_RC_SERVER_SHUTTING_DOWN, NULL);
		conn_reap(c);
	}
}

void conn_reap(struct conn *c)
{
	/* Last words (a DISCONNECT, a CONNACK refusal) go out now if the
	 * socket takes them; the rest while lingering. */
	bool ok = conn_write_some(c) == TERN_OK;
	struct worker *w = c->w;
	conn_unlink(c);
	/* No longer the session's connection, whatever the linger does: a
	 * new connection of the client resumes or takes over at once. */
	handle_detach(&c->sink);
	if (c->auth == CONN_AUTH_WAIT)
		conn_auth_forget(c);
	if (c->lookup != CONN_LOOKUP_NONE)
		conn_lookup_forget(c);
	if (c->flow)
		flow_forget(c); /* its held acknowledgements have nobody to go to */
	struct epoll_event ev = {.events = EPOLLIN | EPOLLRDHUP, .data.ptr = c};
	if (!ok || c->no_linger || epoll_ctl(w->epfd, EPOLL_CTL_ADD, c->fd, &ev) < 0) {
		conn_free(c);
		return;
	}
	c->state = CONN_LINGER;
	c->epollout = false;
	c->deadline = w->now + CONN_LINGER_MS;
	c->discarded = 0;
	if (c->counted) {
		atomic_fetch_sub(&w->broker->n_conns, 1);
		c->counted = false;
	}
	buf_free_in(&c->rbuf, &w->bins);
	msg_unref(c->sink.will);
	c->sink.will = NULL;
	alias_in_free(&c->sink.alias_in);
	topic_alias_free(&c->alias_out);
	c->prev = NULL;
	c->next = w->conn_state->lingering;
	if (w->conn_state->lingering)
		w->conn_state->lingering->prev = c;
	w->conn_state->lingering = c;
	linger_progress(c, false);
}

void conn_unlink(struct conn *c)
{
	struct worker *w = c->w;
	epoll_ctl(w->epfd, EPOLL_CTL_DEL, c->fd, NULL);
	if (c->in_flush) {
		/* Output marked for this worker's flush (a handshake's
		 * reply) is flushed by whoever adopts c next. */
		struct conn **pp = &w->conn_state->flush;
		while (*pp && *pp != c)
			pp = &(*pp)->flush_next;
		if (*pp)
			*pp = c->flush_next;
		c->flush_next = NULL;
		c->in_flush = false;
	}
	if (c->prev)
		c->prev->next = c->next;
	else if (w->conn_state->conns == c)
		w->conn_state->conns = c->next;
	if (c->next)
		c->next->prev = c->prev;
	c->prev = c->next = NULL;
}

static void dispatch(struct conn *c, struct tern_packet *p)
{
	/* conn_process() has made sure the first packet is CONNECT. */
	switch (p->type) {
	case TERN_CONNECT:
		if (c->state != CONN_NEW) {
			/* A second CONNECT is a protocol violation
			 * [MQTT-3.1.0-2]. */
			conn_close(c, TERN_RC_PROTOCOL_ERROR, "second CONNECT");
			return;
		}
		handle_connect(c->w, &c->sink, &p->u.connect);
		return;
	case TERN_PUBLISH:
		handle_publish(&c->sink, c->sink.session, &p->u.publish);
		return;
	case TERN_PUBACK:
		handle_puback(&c->sink, c->sink.session, &p->u.ack);
		return;
	case TERN_PUBREC:
		handle_pubrec(&c->sink, c->sink.session, &p->u.ack);
		return;
	case TERN_PUBREL:
		handle_pubrel(&c->sink, c->sink.session, &p->u.ack);
		return;
	case TERN_PUBCOMP:
		handle_pubcomp(&c->sink, c->sink.session, &p->u.ack);
		return;
	case TERN_SUBSCRIBE:
		handle_subscribe(&c->sink, c->sink.session, &p->u.subscribe);
		return;
	case TERN_UNSUBSCRIBE:
		handle_unsubscribe(&c->sink, c->sink.session, &p->u.unsubscribe);
		return;
	case TERN_PINGREQ:
		handle_pingreq(&c->sink);
		return;
	case TERN_DISCONNECT:
		handle_disconnect(&c->sink, c->sink.session, &p->u.reasoned);
		return;
	case TERN_AUTH:
		handle_auth(&c->sink, &p->u.reasoned);
		return;
	case TERN_CONNACK:
	case TERN_SUBACK:
	case TERN_UNSUBACK:
	case TERN_PINGRESP:
		/* Only a server sends these (conn_process() refuses them
		 * before decoding; this keeps dispatch whole). */
		conn_close(c, TERN_RC_PROTOCOL_ERROR, "client sent a server-only packet");
		return;
	}
	conn_close(c, TERN_RC_MALFORMED_PACKET, "unknown packet type");
}

/* Largest CONNECT we buffer from a client not yet connected: every field
 * of a CONNECT is at most 64 KiB, so this is generous, and it keeps an
 * unauthenticated socket from making us buffer hundreds of megabytes. */
#define CONNECT_MAX (1u << 20)

/* The reason a decode error is reported with. A topic filter with
 * misplaced wildcards, or a topic name with any [MQTT-3.3.2-2], is a
 * malformed packet: 0x8F and 0x90 are for filters and names that are
 * "not malformed, but not accepted" (their definitions in 2.4), and
 * mosquitto reports both as 0x81. */
static uint8_t decode_reason(enum tern_err err)
{
	return err == TERN_E_TOPIC_FILTER || err == TERN_E_TOPIC_NAME ? TERN_RC_MALFORMED_PACKET
	                                                              : tern_err_reason(err);
}

/* Handles the whole packets at the front of data[0..avail) and sets *used
 * to the bytes they took. Returns false when a CONNECT handed c to its
 * home worker (see conn_process). */
static bool process_packets(struct conn *c, const uint8_t *data, size_t avail, size_t *used)
{
	struct worker *w = c->w;
	*used = 0;
	if (!c->proxy_done && c->listener && c->listener->cfg->proxy_protocol) {
		/* Before the CONNECT, input is in c->rbuf (use_scratch() is
		 * for active conns), so the header leaves the buffer at once:
		 * a CONNECT handed to another worker takes only what follows
		 * it. */
		size_t n = 0;
		if (!conn_proxy_header(c, data, avail, &n))
			return true;
		buf_consume(&c->rbuf, n);
		data += n;
		avail -= n;
	}
	/* Input paused by flow control (flow_hold()) stops handling too:
	 * what is buffered waits for flow_resume(). */
	while (c->state != CONN_CLOSING && !c->input_paused && avail) {
		uint32_t max = w->broker->cfg.max_packet_size;
		if (c->state == CONN_NEW && (max == 0 || max > CONNECT_MAX))
			max = CONNECT_MAX;
		unsigned type = data[0] >> 4;
		if (c->state == CONN_ACTIVE && (type == TERN_CONNACK || type == TERN_SUBACK ||
		                                type == TERN_UNSUBACK || type == TERN_PINGRESP)) {
			/* Only a server sends these: refused by the type
			 * alone, whatever flags or body follow, as a
			 * Protocol Error (as mosquitto reports it). */
			conn_close(c, TERN_RC_PROTOCOL_ERROR, "client sent a server-only packet");
			break;
		}
		if (c->state == CONN_ACTIVE && c->sink.version == TERN_V5 &&
		    (type == 0 || type == TERN_AUTH)) {
			/* Neither can come in this session, by its type alone:
			 * type 0 is forbidden (2.1.2), and AUTH needs an
			 * Authentication Method agreed in CONNECT, which ternd
			 * never agrees [MQTT-4.12.0-7]. A Protocol Error
			 * whatever flags or body follow (the specification
			 * does not order the two checks; mosquitto reports
			 * these so). In 3.1.1 both types are reserved, and the
			 * decoder closes for them. */
			conn_close(c, TERN_RC_PROTOCOL_ERROR,
			           type == 0 ? "reserved packet type 0"
			                     : "AUTH without an authentication method");
			break;
		}
		struct tern_fixed_header fh;
		enum tern_err err =
		        tern_decode_fixed_header_v(data, avail, max, c->sink.version, &fh);
		if (err == TERN_E_INCOMPLETE)
			break;
		if (err) {
			conn_close(c, decode_reason(err), tern_strerror(err));
			break;
		}
		if (c->state == CONN_NEW && fh.type != TERN_CONNECT) {
			/* The first packet must be CONNECT [MQTT-3.1.0-1]:
			 * no need to wait for the rest of it. */
			conn_close(c, 0, "first packet was not CONNECT");
			break;
		}
		if (avail - fh.header_len < fh.remaining)
			break;
		struct tern_packet p;
		err = tern_decode_packet(&fh, data + fh.header_len, c->sink.version, &p);
		if (err) {
			if (fh.type == TERN_CONNECT && c->state == CONN_NEW)
				connect_refuse_decoded(c->w, &c->sink, err, data + fh.header_len,
				                       fh.remaining);
			else
				conn_close(c, decode_reason(err), tern_strerror(err));
			break;
		}
		c->last_rx = w->now;
		stat_add(&w->stats, STAT_PKT_IN, 1);
		dispatch(c, &p);
		if (w->conn_state->handed_off == c) {
			/* c now belongs to its home worker, which may already
			 * be using it: touch nothing of it here, and tell the
			 * caller so. */
			w->conn_state->handed_off = NULL;
			return false;
		}
		if (c->auth == CONN_AUTH_WAIT || c->lookup == CONN_LOOKUP_WAIT) {
			/* The CONNECT stays buffered until its password
			 * verdict (or its session's record) is in, and
			 * nothing behind it is handled before CONNACK
			 * [MQTT-3.1.4-5]. */
			break;
		}
		size_t n = fh.header_len + fh.remaining;
		data += n;
		avail -= n;
		*used += n;
	}
	return true;
}

bool conn_process(struct conn *c)
{
	size_t used;
	/* An empty buffer may own no memory: NULL + 0 is undefined. */
	const uint8_t *data = buf_used(&c->rbuf) ? c->rbuf.data + c->rbuf.off : NULL;
	if (!process_packets(c, data, buf_used(&c->rbuf), &used))
		return false;
	buf_consume(&c->rbuf, used);
	buf_compact(&c->rbuf, &c->w->bins);
	return true;
}

/* Whether the next read goes to the worker's scratch buffer rather than to
 * c's own: for a connection past CONNECT (one that can no longer move to
 * another worker, so its unhandled bytes can be copied back to it once its
 * packets are handled), when the scratch is free (not already being
 * handled further up the stack) and c keeps no more than a small partial
 * packet (a large one grows in c's buffer until it is whole). */
static bool use_scratch(const struct conn *c)
{
	const struct worker *w = c->w;
	return c->state == CONN_ACTIVE && w->conn_state->scratch && !w->conn_state->scratch_busy &&
	       buf_used(&c->rbuf) <= WORKER_SCRATCH_SIZE / 4;
}

/* Handles the packets of the scratch buffer (the partial packet c kept,
 * then have bytes just read); what is left, a partial packet or input held
 * by flow control, goes into c's own buffer. */
static void process_scratch(struct conn *c, size_t have)
{
	struct worker *w = c->w;
	size_t used;
	w->conn_state->scratch_busy = true;
	bool home = process_packets(c, w->conn_state->scratch, have, &used);
	w->conn_state->scratch_busy = false;
	/* An active connection is home already: no hand-over (use_scratch). */
	(void)home;
	size_t left = have - used;
	buf_consume(&c->rbuf, buf_used(&c->rbuf));
	if (left && c->state != CONN_CLOSING) {
		if (buf_reserve_in(&c->rbuf, left, 0, &w->bins)) {
			conn_close(c, TERN_RC_UNSPECIFIED, "out of memory");
			return;
		}
		memcpy(c->rbuf.data + c->rbuf.len, w->conn_state->scratch + used, left);
		c->rbuf.len += left;
	}
	buf_release(&c->rbuf, &w->bins);
}

/* After reading: a write that waited for readability (tp_write_wants_read)
 * is due now, and EPOLLOUT follows what output waits. */
static void after_read(struct conn *c)
{
	conn_set_epollout(c, conn_pending_out(c) && !c->tp_write_wants_read);
	if (c->tp_write_wants_read && conn_pending_out(c))
		conn_mark_flush(c);
}

bool conn_on_readable(struct conn *c)
{
	if (c->state == CONN_CLOSING)
		return true;
	if (c->input_paused) {
		/* Without EPOLLIN, epoll reports only a hang-up or an error:
		 * the client is gone. */
		c->no_linger = true;
		conn_close(c, 0, NULL);
		return true;
	}
	struct worker *w = c->w;
	bool synced = false, handled = false;
	/* A transport may hold bytes it took off the socket (a TLS record,
	 * undecoded WebSocket frames): read until it holds none, since epoll
	 * will not report them. That data is already in memory, so the loop
	 * ends. */
	for (;;) {
		/* Redis's per-thread query buffer: a connection past CONNECT
		 * reads into the worker's scratch, behind the partial packet
		 * it kept, and keeps only what is left of a partial packet
		 * once the whole ones are handled. So an idle connection holds
		 * no input buffer and a busy one does not allocate one per
		 * read. */
		bool scratch = use_scratch(c);
		size_t have = 0;
		uint8_t *dst;
		size_t room;
		if (scratch) {
			have = buf_used(&c->rbuf);
			if (have)
				memcpy(w->conn_state->scratch, c->rbuf.data + c->rbuf.off, have);
			dst = w->conn_state->scratch + have;
			room = WORKER_SCRATCH_SIZE - have;
		} else {
			if (buf_reserve_in(&c->rbuf, READ_CHUNK, 0, &w->bins)) {
				conn_close(c, TERN_RC_UNSPECIFIED, "out of memory");
				return true;
			}
			dst = c->rbuf.data + c->rbuf.len;
			room = c->rbuf.cap - c->rbuf.len;
		}
		size_t n = 0;
		enum tern_err e = c->tp->read(c, dst, room, &n);
		if (e == TERN_E_INCOMPLETE)
			break;
		if (e == TERN_E_CLOSED) {
			c->no_linger = true;
			conn_close(c, 0, c->state == CONN_NEW ? NULL : "connection closed by peer");
			return true;
		}
		if (e) {
			c->no_linger = true;
			conn_close(c, 0, "read error");
			return true;
		}
		stat_add(&w->stats, STAT_BYTES_IN, (uint64_t)n);
		c->rx_bytes += n;
		handled = scratch;
		if (!scratch) {
			c->rbuf.len += n;
		} else {
			if (!synced) {
				after_read(c);
				synced = true;
			}
			process_scratch(c, have + n);
			if (c->state == CONN_CLOSING || c->input_paused)
				return true;
		}
		if (!c->tp->pending(c))
			break;
	}
	if (!synced)
		after_read(c);
	if (!handled && buf_used(&c->rbuf))
		return conn_process(c);
	buf_release(&c->rbuf, &w->bins);
	return true;
}
