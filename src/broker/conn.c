/*
 * conn.c - one network connection: framing, dispatch, output, closing.
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
 * Output is appended to the connection's buffer and written once before
 * the loop sleeps (worker.c); EPOLLOUT is registered only after EAGAIN.
 * Buffers are freed when empty, so an idle connection holds none.
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
#include "util/buf.h"
#include "util/log.h"
#include "util/msg.h"

#define READ_CHUNK 16384

/* Bounds of a graceful close (conn_reap()): long enough for a client to
 * read a DISCONNECT, short enough that nobody can hold a socket open this
 * way. */
#define CONN_LINGER_MS    2000u
#define CONN_LINGER_BYTES (1u << 20)

/* Payloads at least this large go out by reference to the shared message
 * (a gather write), not copied into the connection's buffer: a large
 * message fanned out to many subscribers is never copied. Smaller ones are
 * cheaper to copy than to track. */
#define BYREF_MIN 2048

/* The pending output is a stream: wbuf bytes, with message payloads
 * spliced in. refs[i].gap counts the wbuf bytes that go before payload i
 * (after payload i-1); sum_gap is their total, so a new payload's gap is
 * the wbuf bytes not yet claimed. */
struct out_ref {
	struct msg *msg; /* a reference */
	uint32_t gap;
	uint32_t done; /* payload bytes already written */
};

struct conn_out {
	struct out_ref *v;
	uint32_t head, n, cap;
	size_t sum_gap;
	size_t bytes; /* payload bytes still to write */
};

static bool has_refs(const struct conn *c)
{
	return c->out && c->out->n;
}

size_t conn_pending_out(const struct conn *c)
{
	return buf_used(&c->wbuf) + (c->out ? c->out->bytes : 0);
}

static void out_free(struct conn *c)
{
	struct conn_out *o = c->out;
	if (!o)
		return;
	for (uint32_t i = 0; i < o->n; i++)
		msg_unref(o->v[(o->head + i) % o->cap].msg);
	free(o->v);
	free(o);
	c->out = NULL;
}

/* Queues m's payload after the wbuf bytes written so far. */
static enum tern_err out_push(struct conn *c, struct msg *m)
{
	struct conn_out *o = c->out;
	if (!o && !(o = c->out = calloc(1, sizeof(*o))))
		return TERN_E_NOMEM;
	if (o->n == o->cap) {
		uint32_t cap = o->cap ? o->cap * 2 : 8;
		struct out_ref *v = malloc(cap * sizeof(*v));
		if (!v)
			return TERN_E_NOMEM;
		for (uint32_t i = 0; i < o->n; i++)
			v[i] = o->v[(o->head + i) % o->cap];
		free(o->v);
		o->v = v;
		o->head = 0;
		o->cap = cap;
	}
	size_t gap = buf_used(&c->wbuf) - o->sum_gap;
	o->v[(o->head + o->n) % o->cap] =
	        (struct out_ref){.msg = msg_ref(m), .gap = (uint32_t)gap, .done = 0};
	o->n++;
	o->sum_gap += gap;
	o->bytes += m->payload.len;
	return TERN_OK;
}

const char *conn_peer(const struct conn *c, char out[64])
{
	size_t len = 64;
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
	c->fd = fd;
	c->w = w;
	c->state = CONN_NEW;
	c->last_rx = w->now;
	c->deadline = w->now + (uint64_t)b->cfg.connect_timeout * 1000u;
	c->counted = true;
	atomic_fetch_add(&b->n_conns, 1);
	return c;
}

static void free_aliases(struct conn *c)
{
	if (!c->alias_topic)
		return;
	for (size_t i = 0; i <= c->sink.alias_max; i++)
		free(c->alias_topic[i]);
	free(c->alias_topic);
	c->alias_topic = NULL;
}

void conn_free(struct conn *c)
{
	if (!c)
		return;
	if (c->auth == CONN_AUTH_WAIT)
		conn_auth_forget(c);
	c->tp->close(c);
	if (c->fd >= 0)
		close(c->fd);
	if (c->counted)
		atomic_fetch_sub(&c->w->broker->n_conns, 1);
	if (c->flow)
		flow_forget(c);
	buf_free(&c->rbuf);
	buf_free(&c->wbuf);
	out_free(c);
	msg_unref(c->sink.will);
	free_aliases(c);
	topic_alias_free(&c->alias_out);
	free(c);
}

static void mark_flush(struct conn *c)
{
	if (c->in_flush || c->state >= CONN_CLOSING)
		return;
	c->in_flush = true;
	c->flush_next = c->w->flush;
	c->w->flush = c;
}

/* Encodes p into the output buffer. Never closes the connection, so that
 * conn_close() can use it for its DISCONNECT: TERN_E_NOMEM tells the caller
 * the buffer could not grow. */
static enum tern_err queue_packet(struct conn *c, const struct tern_packet *p)
{
	size_t size = tern_packet_size(p, c->sink.version);
	if (size == 0)
		return TERN_E_INVALID;
	if (c->sink.client_max_packet && size > c->sink.client_max_packet &&
	    c->sink.version == TERN_V5) {
		/* Reason strings and user properties are the first to go
		 * [MQTT-3.1.2-25] [MQTT-3.2.2-19] [MQTT-3.14.2-3]. */
		struct tern_packet slim = *p;
		struct tern_props *pr = NULL;
		switch (p->type) {
		case TERN_CONNACK:
			pr = &slim.u.connack.props;
			break;
		case TERN_PUBACK:
		case TERN_PUBREC:
		case TERN_PUBREL:
		case TERN_PUBCOMP:
			pr = &slim.u.ack.props;
			break;
		case TERN_SUBACK:
		case TERN_UNSUBACK:
			pr = &slim.u.subres.props;
			break;
		case TERN_DISCONNECT:
		case TERN_AUTH:
			pr = &slim.u.reasoned.props;
			break;
		default:
			break;
		}
		if (pr) {
			pr->present &= ~TERN_PROP_BIT(TERN_PROP_REASON_STRING);
			pr->n_user = 0;
			pr->user_raw = (struct tern_bytes){0};
			if (tern_packet_size(&slim, c->sink.version) <= c->sink.client_max_packet)
				return queue_packet(c, &slim);
		}
		return TERN_E_TOO_LARGE;
	}
	enum tern_err err = buf_reserve(&c->wbuf, size, 0);
	if (err)
		return TERN_E_NOMEM;
	size_t n = 0;
	err = tern_encode_packet(p, c->sink.version, c->wbuf.data + c->wbuf.len,
	                         c->wbuf.cap - c->wbuf.len, &n);
	if (err)
		return err;
	c->wbuf.len += n;
	stat_add(&c->w->stats, STAT_PKT_OUT, 1);
	mark_flush(c);
	return TERN_OK;
}

enum tern_err conn_send(struct conn *c, const struct tern_packet *p)
{
	if (c->state >= CONN_CLOSING)
		return TERN_E_CLOSED;
	enum tern_err err = queue_packet(c, p);
	if (err == TERN_E_NOMEM)
		conn_close(c, TERN_RC_UNSPECIFIED, "out of memory");
	return err;
}

enum tern_err conn_send_ack(struct conn *c, enum tern_packet_type type, uint16_t packet_id,
                            uint8_t reason)
{
	struct tern_packet p = {.type = type};
	p.u.ack.packet_id = packet_id;
	p.u.ack.reason = c->sink.version == TERN_V5 ? reason : 0;
	return conn_send(c, &p);
}

enum tern_err conn_send_publish(struct conn *c, const struct delivery *d, uint16_t packet_id,
                                bool dup)
{
	if (c->state >= CONN_CLOSING)
		return TERN_E_CLOSED;
	const struct msg *m = d->msg;
	struct tern_publish pub = {
	        .qos = d->qos,
	        .dup = dup && d->qos > 0,
	        .retain = d->retain,
	        .topic = m->topic,
	        .packet_id = d->qos ? packet_id : 0,
	        .payload = m->payload,
	};
	uint16_t alias = 0;
	bool alias_known = false;
	if (c->sink.version == TERN_V5) {
		struct tern_props *pr = &pub.props;
		/* Forwarded unchanged to every subscriber [MQTT-3.3.2-4]
		 * [MQTT-3.3.2-15] [MQTT-3.3.2-16] [MQTT-3.3.2-17] [MQTT-3.3.2-20]. */
		if (m->has_payload_format) {
			pr->present |= TERN_PROP_BIT(TERN_PROP_PAYLOAD_FORMAT);
			pr->payload_format = m->payload_format;
		}
		if (m->expire_at) {
			/* The interval left, not the one received
			 * [MQTT-3.3.2-6]. */
			bool gone;
			pr->present |= TERN_PROP_BIT(TERN_PROP_MESSAGE_EXPIRY);
			pr->message_expiry = msg_expiry_left(m, c->w->now, &gone);
		}
		if (m->has_content_type) {
			pr->present |= TERN_PROP_BIT(TERN_PROP_CONTENT_TYPE);
			pr->content_type = m->content_type;
		}
		if (m->response_topic.len) {
			pr->present |= TERN_PROP_BIT(TERN_PROP_RESPONSE_TOPIC);
			pr->response_topic = m->response_topic;
		}
		if (m->correlation_data.data) {
			pr->present |= TERN_PROP_BIT(TERN_PROP_CORRELATION_DATA);
			pr->correlation_data = m->correlation_data;
		}
		pr->n_sub_ids = d->n_sub_ids;
		pr->sub_ids = d->n_sub_ids > 1 ? d->sub_ids : &d->sub_id;
		pr->n_user = m->n_user;
		pr->user_raw = m->user_raw;
		if (c->sink.alias_out_max) {
			alias = topic_alias_pick(c->alias_out, c->sink.alias_out_max, m->topic,
			                         &alias_known);
			if (alias) {
				pr->present |= TERN_PROP_BIT(TERN_PROP_TOPIC_ALIAS);
				pr->topic_alias = alias;
				if (alias_known)
					pub.topic = (struct tern_bytes){m->topic.data, 0};
			}
		}
	}
	/* Without properties the header is at most type, 4 length bytes,
	 * topic, packet id and an empty property length: no need to measure
	 * it first (the hot path of fan-out). */
	const struct tern_props *pr = &pub.props;
	bool plain = c->sink.version != TERN_V5 || (!pr->present && !pr->n_sub_ids && !pr->n_user);
	size_t hmax = plain ? pub.topic.len + 10u : tern_publish_header_size(&pub, c->sink.version);
	if (hmax == 0)
		return TERN_E_INVALID;
	bool byref = m->payload.len >= BYREF_MIN;
	enum tern_err err = buf_reserve(&c->wbuf, byref ? hmax : hmax + m->payload.len, 0);
	if (err) {
		conn_close(c, TERN_RC_UNSPECIFIED, "out of memory");
		return err;
	}
	size_t n = 0;
	err = tern_encode_publish_header(&pub, c->sink.version, c->wbuf.data + c->wbuf.len,
	                                 c->wbuf.cap - c->wbuf.len, &n);
	if (err)
		return err;
	if (c->sink.client_max_packet && n + m->payload.len > c->sink.client_max_packet) {
		if (alias && !alias_known) {
			/* The alias property made it too large: the message
			 * still goes out, without one (hmax covered that). */
			pub.props.present &= ~TERN_PROP_BIT(TERN_PROP_TOPIC_ALIAS);
			alias = 0;
			err = tern_encode_publish_header(&pub, c->sink.version,
			                                 c->wbuf.data + c->wbuf.len,
			                                 c->wbuf.cap - c->wbuf.len, &n);
			if (err)
				return err;
		}
		if (n + m->payload.len > c->sink.client_max_packet)
			return TERN_E_TOO_LARGE; /* nothing was committed */
	}
	if (alias && !alias_known &&
	    topic_alias_set(&c->alias_out, c->sink.alias_out_max, alias, m->topic) != TERN_OK) {
		/* The client learns a mapping only from a PUBLISH we send,
		 * so the table and what was sent must agree. */
		conn_close(c, TERN_RC_UNSPECIFIED, "out of memory");
		return TERN_E_NOMEM;
	}
	c->wbuf.len += n;
	if (byref) {
		if (out_push(c, d->msg)) {
			conn_close(c, TERN_RC_UNSPECIFIED, "out of memory");
			return TERN_E_NOMEM;
		}
	} else {
		if (m->payload.len)
			memcpy(c->wbuf.data + c->wbuf.len, m->payload.data, m->payload.len);
		c->wbuf.len += m->payload.len;
	}
	stat_add(&c->w->stats, STAT_PKT_OUT, 1);
	stat_add(&c->w->stats, (enum stat_id)(STAT_PUB_OUT_Q0 + d->qos), 1);
	mark_flush(c);
	return TERN_OK;
}

static void set_epollout(struct conn *c, bool on)
{
	/* A transport waiting for writability to read (TLS handshake) keeps
	 * EPOLLOUT whatever the output buffer says, unless reading is
	 * paused. */
	on = on || (c->tp_read_wants_write && !c->input_paused);
	if (c->epollout == on)
		return;
	struct epoll_event ev = {.events = (c->input_paused ? 0 : EPOLLIN | EPOLLRDHUP) |
	                                   (on ? EPOLLOUT : 0),
	                         .data.ptr = c};
	if (epoll_ctl(c->w->epfd, EPOLL_CTL_MOD, c->fd, &ev) == 0)
		c->epollout = on;
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

/* Writes the next piece of the output stream: wbuf bytes up to the next
 * spliced payload, or that payload. Returns bytes written, TP_AGAIN or
 * TP_ERROR. */
static ssize_t write_piece(struct conn *c)
{
	struct conn_out *o = c->out;
	if (has_refs(c)) {
		struct out_ref *r = &o->v[o->head];
		if (r->gap == 0) {
			const struct tern_bytes *p = &r->msg->payload;
			ssize_t n = c->tp->write(c, p->data + r->done, p->len - r->done);
			if (n > 0) {
				r->done += (uint32_t)n;
				o->bytes -= (size_t)n;
				if (r->done == p->len) {
					msg_unref(r->msg);
					o->head = (o->head + 1) % o->cap;
					o->n--;
				}
			}
			return n;
		}
		ssize_t n = c->tp->write(c, c->wbuf.data + c->wbuf.off, r->gap);
		if (n > 0) {
			buf_consume(&c->wbuf, (size_t)n);
			r->gap -= (uint32_t)n;
			o->sum_gap -= (size_t)n;
		}
		return n;
	}
	ssize_t n = c->tp->write(c, c->wbuf.data + c->wbuf.off, buf_used(&c->wbuf));
	if (n > 0)
		buf_consume(&c->wbuf, (size_t)n);
	return n;
}

/* With a gather-capable transport: the whole pending stream (up to 64
 * pieces) in one system call. */
static ssize_t write_gather(struct conn *c)
{
	struct conn_out *o = c->out;
	struct iovec iov[64];
	int n = 0;
	size_t woff = c->wbuf.off;
	for (uint32_t i = 0; i < o->n && n < 62; i++) {
		struct out_ref *r = &o->v[(o->head + i) % o->cap];
		if (r->gap) {
			iov[n].iov_base = c->wbuf.data + woff;
			iov[n++].iov_len = r->gap;
			woff += r->gap;
		}
		iov[n].iov_base = (void *)(r->msg->payload.data + r->done);
		iov[n++].iov_len = r->msg->payload.len - r->done;
	}
	if (n < 62 && woff < c->wbuf.len) {
		iov[n].iov_base = c->wbuf.data + woff;
		iov[n++].iov_len = c->wbuf.len - woff;
	}
	ssize_t w = c->tp->writev(c, iov, n);
	if (w <= 0)
		return w;
	/* Account the bytes written across the pieces, in order. */
	size_t left = (size_t)w;
	while (left && has_refs(c)) {
		struct out_ref *r = &o->v[o->head];
		size_t g = r->gap < left ? r->gap : left;
		buf_consume(&c->wbuf, g);
		r->gap -= (uint32_t)g;
		o->sum_gap -= g;
		left -= g;
		if (r->gap)
			break;
		size_t rest = r->msg->payload.len - r->done;
		size_t p = rest < left ? rest : left;
		r->done += (uint32_t)p;
		o->bytes -= p;
		left -= p;
		if (r->done < r->msg->payload.len)
			break;
		msg_unref(r->msg);
		o->head = (o->head + 1) % o->cap;
		o->n--;
	}
	if (left)
		buf_consume(&c->wbuf, left);
	return w;
}

/* Writes as much as the socket takes, including what the transport keeps
 * of its own (WebSocket framing). Returns false on a fatal error. */
static bool write_some(struct conn *c)
{
	while (buf_used(&c->wbuf) || has_refs(c)) {
		ssize_t n = has_refs(c) && c->tp->writev ? write_gather(c) : write_piece(c);
		if (n > 0) {
			stat_add(&c->w->stats, STAT_BYTES_OUT, (uint64_t)n);
			continue;
		}
		return n == TP_AGAIN;
	}
	if (c->tp->out_pending(c))
		return c->tp->write(c, NULL, 0) != TP_ERROR;
	return true;
}

void conn_flush(struct conn *c)
{
	if (c->state >= CONN_CLOSING)
		return;
	if (!write_some(c)) {
		c->no_linger = true;
		conn_close(c, 0, "write failed");
		return;
	}
	bool pending = conn_pending_out(c) || c->tp->out_pending(c);
	if (pending) {
		/* A write that waits for readability is retried when data
		 * arrives, not on EPOLLOUT, which would fire at once. */
		set_epollout(c, !c->tp_write_wants_read);
	} else {
		set_epollout(c, false);
	}
	if (!buf_used(&c->wbuf))
		buf_free(&c->wbuf);
	if (c->out && !c->out->n)
		out_free(c);
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
	c->closing_next = c->w->closing;
	c->w->closing = c;
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
		if (why && c->sink.problem_info) {
			p.u.reasoned.props.present |= TERN_PROP_BIT(TERN_PROP_REASON_STRING);
			p.u.reasoned.props.reason_string =
			        (struct tern_bytes){(const uint8_t *)why, (uint32_t)strlen(why)};
		}
		(void)queue_packet(c, &p);
	}
	if (why && b->cfg.connection_messages) {
		const struct session *s = c->sink.session;
		log_write(&b->log, LOG_TYPE_NOTICE, "Client %.*s [%s] disconnected: %s.",
		          s ? (int)s->client_id_len : 1, s ? (const char *)s->client_id : "?",
		          conn_peer(c, (char[64]){0}), why);
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
		w->lingering = c->next;
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
		if (!write_some(c)) {
			linger_end(c);
			return;
		}
		ssize_t g = 0;
		if (!conn_pending_out(c) && !c->tp->out_pending(c) && c->tp->goodbye)
			g = c->tp->goodbye(c);
		if (g == TP_ERROR) {
			linger_end(c);
			return;
		}
		if (g == TP_AGAIN || conn_pending_out(c) || c->tp->out_pending(c)) {
			linger_want_out(c, true);
		} else {
			/* The peer reads our last words, then end of stream. */
			shutdown(c->fd, SHUT_WR);
			c->shut_wr = true;
			linger_want_out(c, false);
			buf_free(&c->wbuf);
			out_free(c);
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
	struct conn *c = w->lingering;
	while (c) {
		struct conn *next = c->next;
		if (now >= c->deadline)
			linger_end(c);
		c = next;
	}
}

void conn_reap(struct conn *c)
{
	/* Last words (a DISCONNECT, a CONNACK refusal) go out now if the
	 * socket takes them; the rest while lingering. */
	bool ok = write_some(c);
	struct worker *w = c->w;
	conn_unlink(c);
	/* No longer the session's connection, whatever the linger does: a
	 * new connection of the client resumes or takes over at once. */
	handle_detach(&c->sink);
	if (c->auth == CONN_AUTH_WAIT)
		conn_auth_forget(c);
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
	buf_free(&c->rbuf);
	msg_unref(c->sink.will);
	c->sink.will = NULL;
	free_aliases(c);
	topic_alias_free(&c->alias_out);
	c->prev = NULL;
	c->next = w->lingering;
	if (w->lingering)
		w->lingering->prev = c;
	w->lingering = c;
	linger_progress(c, false);
}

void conn_unlink(struct conn *c)
{
	struct worker *w = c->w;
	epoll_ctl(w->epfd, EPOLL_CTL_DEL, c->fd, NULL);
	if (c->in_flush) {
		/* Output marked for this worker's flush (a handshake's
		 * reply) is flushed by whoever adopts c next. */
		struct conn **pp = &w->flush;
		while (*pp && *pp != c)
			pp = &(*pp)->flush_next;
		if (*pp)
			*pp = c->flush_next;
		c->flush_next = NULL;
		c->in_flush = false;
	}
	if (c->prev)
		c->prev->next = c->next;
	else if (w->conns == c)
		w->conns = c->next;
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
		handle_publish(c, &p->u.publish);
		return;
	case TERN_PUBACK:
		handle_puback(c, &p->u.ack);
		return;
	case TERN_PUBREC:
		handle_pubrec(c, &p->u.ack);
		return;
	case TERN_PUBREL:
		handle_pubrel(c, &p->u.ack);
		return;
	case TERN_PUBCOMP:
		handle_pubcomp(c, &p->u.ack);
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

bool conn_process(struct conn *c)
{
	struct worker *w = c->w;
	/* Input paused by flow control (flow_hold()) stops handling too:
	 * what is buffered waits for flow_resume(). */
	while (c->state != CONN_CLOSING && !c->input_paused && buf_used(&c->rbuf)) {
		const uint8_t *data = c->rbuf.data + c->rbuf.off;
		size_t avail = buf_used(&c->rbuf);
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
		if (w->handed_off == c) {
			/* c now belongs to its home worker, which may already
			 * be using it: touch nothing of it here, and tell the
			 * caller so. */
			w->handed_off = NULL;
			return false;
		}
		if (c->auth == CONN_AUTH_WAIT) {
			/* The CONNECT stays buffered until its password
			 * verdict is in, and nothing behind it is handled
			 * before CONNACK [MQTT-3.1.4-5]. */
			break;
		}
		buf_consume(&c->rbuf, fh.header_len + fh.remaining);
	}
	buf_compact(&c->rbuf);
	return true;
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
	/* A transport may hold bytes it took off the socket (a TLS record,
	 * undecoded WebSocket frames): read until it holds none, since epoll
	 * will not report them. That data is already in memory, so the loop
	 * ends. */
	for (;;) {
		if (buf_reserve(&c->rbuf, READ_CHUNK, 0)) {
			conn_close(c, TERN_RC_UNSPECIFIED, "out of memory");
			return true;
		}
		ssize_t n = c->tp->read(c, c->rbuf.data + c->rbuf.len, c->rbuf.cap - c->rbuf.len);
		if (n == 0) {
			c->no_linger = true;
			conn_close(c, 0, c->state == CONN_NEW ? NULL : "connection closed by peer");
			return true;
		}
		if (n == TP_ERROR) {
			c->no_linger = true;
			conn_close(c, 0, "read error");
			return true;
		}
		if (n == TP_AGAIN)
			break;
		c->rbuf.len += (size_t)n;
		stat_add(&c->w->stats, STAT_BYTES_IN, (uint64_t)n);
		if (!c->tp->pending(c))
			break;
	}
	set_epollout(c, conn_pending_out(c) && !c->tp_write_wants_read);
	if (c->tp_write_wants_read && conn_pending_out(c))
		mark_flush(c);
	if (buf_used(&c->rbuf))
		return conn_process(c);
	buf_free(&c->rbuf);
	return true;
}
