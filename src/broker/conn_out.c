/*
 * conn_out.c - a connection's output: encoding, the shared PUBLISH headers,
 * payloads by reference, writing and flushing.
 *
 * Output is appended to the connection's buffer (wbuf) and written once
 * before the loop sleeps (worker.c); EPOLLOUT is registered only after a
 * write would block. The buffer's memory comes from the worker's bins and
 * goes back there when it empties (util/buf.h), so an idle connection holds
 * none and a busy one does not allocate per message.
 *
 * A PUBLISH is the hot path: its header is encoded once per message and
 * kind of subscriber and copied, with its packet id, for the others of that
 * kind (the worker's pub_cache); a header without properties is written
 * directly (plain_header()); a payload of BYREF_MIN bytes or more goes out
 * by reference to the shared message in a gather write, never copied.
 * Acknowledgements without a reason or properties are four bytes written
 * in place.
 *
 * conn.c (lifecycle, input, closing) uses the helpers of conn_internal.h.
 */
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/uio.h>

#include "broker/conn.h"
#include "broker/conn_internal.h"
#include "broker/delivery.h"
#include "broker/mount.h"
#include "broker/stats.h"
#include "broker/topic_alias.h"
#include "broker/transport.h"
#include "broker/worker.h"
#include "tern/codec.h"
#include "util/buf.h"
#include "util/msg.h"
#include "util/ring.h"

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
	struct ring refs; /* of struct out_ref, in stream order */
	size_t sum_gap;
	size_t bytes; /* payload bytes still to write */
};

static bool has_refs(const struct conn *c)
{
	return c->out && c->out->refs.n;
}

/* The first payload waiting. */
static struct out_ref *front_ref(struct conn_out *o)
{
	return RING_FRONT(&o->refs, struct out_ref);
}

/* Drops the first payload, written whole. */
static void pop_ref(struct conn_out *o)
{
	msg_unref(front_ref(o)->msg);
	ring_pop(&o->refs);
}

size_t conn_pending_out(const struct conn *c)
{
	return buf_used(&c->wbuf) + (c->out ? c->out->bytes : 0);
}

void conn_out_free(struct conn *c)
{
	struct conn_out *o = c->out;
	if (!o)
		return;
	for (uint32_t i = 0; i < o->refs.n; i++)
		msg_unref(RING_AT(&o->refs, struct out_ref, i)->msg);
	ring_free(&o->refs);
	free(o);
	c->out = NULL;
}

/* Queues m's payload after the wbuf bytes written so far. */
static TERN_MUST_CHECK enum tern_err out_push(struct conn *c, struct msg *m)
{
	struct conn_out *o = c->out;
	if (!o && !(o = c->out = calloc(1, sizeof(*o))))
		return TERN_E_NOMEM;
	struct out_ref *r = RING_PUSH(&o->refs, struct out_ref);
	if (!r)
		return TERN_E_NOMEM;
	size_t gap = buf_used(&c->wbuf) - o->sum_gap;
	*r = (struct out_ref){.msg = msg_ref(m), .gap = (uint32_t)gap, .done = 0};
	o->sum_gap += gap;
	o->bytes += m->payload.len;
	return TERN_OK;
}

void conn_mark_flush(struct conn *c)
{
	if (c->in_flush || c->state >= CONN_CLOSING)
		return;
	c->in_flush = true;
	struct conn_worker *cw = c->w->conn_state;
	c->flush_next = cw->flush;
	cw->flush = c;
}

void conn_flush_all(struct worker *w)
{
	struct conn_worker *cw = w->conn_state;
	while (cw->flush) {
		struct conn *c = cw->flush;
		cw->flush = c->flush_next;
		c->flush_next = NULL;
		c->in_flush = false;
		conn_flush(c);
	}
}

/* Whether p is an ack (PUBACK, PUBREC, PUBREL, PUBCOMP) that is four
 * bytes on the wire: in 3.1 / 3.1.1 always, in 5.0 with reason 0 and no
 * properties, whose Reason Code and Property Length are then omitted
 * (3.4.2.1), as tern_encode_packet() writes it. The ack of nearly every
 * QoS 1/2 message. */
static bool short_ack(const struct conn *c, enum tern_packet_type type, uint16_t packet_id,
                      uint8_t reason, const struct tern_props *pr)
{
	if (type < TERN_PUBACK || type > TERN_PUBCOMP || !packet_id)
		return false;
	if (c->sink.client_max_packet && c->sink.client_max_packet < 4)
		return false;
	return c->sink.version != TERN_V5 ||
	       (reason == 0 && (!pr || (!pr->present && !pr->n_user && !pr->user_raw.len)));
}

/* Writes a short_ack() in place, without the generic encoder. TERN_E_NOMEM
 * when the buffer cannot grow (the connection is left open). */
static TERN_MUST_CHECK enum tern_err put_short_ack(struct conn *c, enum tern_packet_type type,
                                                   uint16_t id)
{
	if (buf_reserve_in(&c->wbuf, 4, 0, &c->w->bins))
		return TERN_E_NOMEM;
	uint8_t *o = c->wbuf.data + c->wbuf.len;
	o[0] = (uint8_t)(type << 4 | (type == TERN_PUBREL ? 0x2 : 0));
	o[1] = 2;
	o[2] = (uint8_t)(id >> 8);
	o[3] = (uint8_t)id;
	c->wbuf.len += 4;
	stat_add(&c->w->stats, STAT_PKT_OUT, 1);
	conn_mark_flush(c);
	return TERN_OK;
}

/* Encodes p into the output buffer. Never closes the connection, so that
 * conn_close() can use it for its DISCONNECT: TERN_E_NOMEM tells the caller
 * the buffer could not grow. */
enum tern_err conn_queue_packet(struct conn *c, const struct tern_packet *p)
{
	if (short_ack(c, p->type, p->u.ack.packet_id, p->u.ack.reason, &p->u.ack.props))
		return put_short_ack(c, p->type, p->u.ack.packet_id);
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
				return conn_queue_packet(c, &slim);
		}
		return TERN_E_TOO_LARGE;
	}
	enum tern_err err = buf_reserve_in(&c->wbuf, size, 0, &c->w->bins);
	if (err)
		return TERN_E_NOMEM;
	size_t n = 0;
	err = tern_encode_packet(p, c->sink.version, c->wbuf.data + c->wbuf.len,
	                         c->wbuf.cap - c->wbuf.len, &n);
	if (err)
		return err;
	c->wbuf.len += n;
	stat_add(&c->w->stats, STAT_PKT_OUT, 1);
	conn_mark_flush(c);
	return TERN_OK;
}

enum tern_err conn_send(struct conn *c, const struct tern_packet *p)
{
	if (c->state >= CONN_CLOSING)
		return TERN_E_CLOSED;
	enum tern_err err = conn_queue_packet(c, p);
	if (err == TERN_E_NOMEM)
		conn_close(c, TERN_RC_UNSPECIFIED, "out of memory");
	return err;
}

/* Queues the payload of d after its header (just appended to wbuf, with
 * room reserved for the payload unless it goes by reference) and counts
 * the PUBLISH. */
static TERN_MUST_CHECK enum tern_err publish_commit(struct conn *c, const struct delivery *d,
                                                    bool byref)
{
	const struct msg *m = d->msg;
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
	conn_mark_flush(c);
	return TERN_OK;
}

enum tern_err conn_send_ack(struct conn *c, enum tern_packet_type type, uint16_t packet_id,
                            uint8_t reason)
{
	if (c->state >= CONN_CLOSING)
		return TERN_E_CLOSED;
	if (short_ack(c, type, packet_id, reason, NULL)) {
		/* No struct tern_packet to build: the hot path of QoS 1/2. */
		enum tern_err err = put_short_ack(c, type, packet_id);
		if (err)
			conn_close(c, TERN_RC_UNSPECIFIED, "out of memory");
		return err;
	}
	struct tern_packet p = {.type = type};
	p.u.ack.packet_id = packet_id;
	p.u.ack.reason = c->sink.version == TERN_V5 ? reason : 0;
	return conn_send(c, &p);
}

/* Writes the variable-byte integer v at o; returns its length. */
static size_t put_vbi(uint8_t *o, uint32_t v)
{
	size_t n = 0;
	do {
		uint8_t b = (uint8_t)(v & 0x7f);
		v >>= 7;
		o[n++] = (uint8_t)(b | (v ? 0x80 : 0));
	} while (v);
	return n;
}

/* The fixed-header fields of a PUBLISH to send. */
struct pub_head {
	uint8_t qos;
	bool dup, retain;
	uint16_t packet_id; /* 0 for QoS 0 */
};

/*
 * The header of a PUBLISH of m without properties (3.1 / 3.1.1, or 5.0 when
 * neither the message nor the subscriber adds any), written at o (room
 * for topic.len + 10 bytes). The bytes are tern_encode_publish_header()'s;
 * the topic is not checked again, since every message's topic was checked
 * when the message was made (a decoded PUBLISH or will, $SYS, the store
 * loader). Returns the length, 0 when the generic encoder must decide (a
 * packet id missing, a length over the limit).
 */
static size_t plain_header(uint8_t *o, const struct msg *m, const struct pub_head *h,
                           uint8_t version)
{
	size_t tl = m->topic.len;
	size_t body = 2u + tl + (h->qos ? 2u : 0u) + (version == TERN_V5 ? 1u : 0u);
	if (tl == 0 || h->qos > 2 || (h->qos && !h->packet_id) ||
	    m->payload.len > TERN_VBI_MAX - body)
		return 0;
	size_t n = 0;
	o[n++] = (uint8_t)(TERN_PUBLISH << 4 | (h->dup ? 0x8 : 0) | h->qos << 1 |
	                   (h->retain ? 1 : 0));
	n += put_vbi(o + n, (uint32_t)(body + m->payload.len));
	o[n++] = (uint8_t)(tl >> 8);
	o[n++] = (uint8_t)tl;
	memcpy(o + n, m->topic.data, tl);
	n += tl;
	if (h->qos) {
		o[n++] = (uint8_t)(h->packet_id >> 8);
		o[n++] = (uint8_t)h->packet_id;
	}
	if (version == TERN_V5)
		o[n++] = 0; /* property length */
	return n;
}

/* True when m carries none of the properties a v5 PUBLISH forwards. */
static bool msg_plain(const struct msg *m)
{
	return !m->has_payload_format && !m->expire_at && !m->has_content_type &&
	       !m->response_topic.len && !m->correlation_data.data && !m->n_user;
}

/* Whether the cache holds headers of another message than m, or of m with
 * an expiry counted at another time. */
static inline bool pub_cache_stale(const struct pub_cache *pc, const struct worker *w,
                                   const struct msg *m)
{
	return pc->msg != m || (m->expire_at && pc->now != w->now);
}

/* The cached header of m for this connection's kind of subscriber, or
 * NULL. */
static struct pub_slot *pub_cache_find(struct worker *w, const struct msg *m, uint8_t version,
                                       uint8_t qos, bool retain, bool dup)
{
	struct pub_cache *pc = &w->conn_state->pub_cache;
	if (pub_cache_stale(pc, w, m))
		return NULL;
	for (unsigned i = 0; i < PUB_CACHE_SLOTS; i++) {
		struct pub_slot *sl = &pc->slot[i];
		if (sl->len && sl->version == version && sl->qos == qos && sl->retain == retain &&
		    sl->dup == dup)
			return sl;
	}
	return NULL;
}

/* Keeps the header hdr[0..n) of m (its packet id, if any, at pid_at) for
 * the next subscriber of the same kind. */
static void pub_cache_put(struct worker *w, struct msg *m, const struct pub_head *h,
                          uint8_t version, const uint8_t *hdr, size_t n)
{
	struct pub_cache *pc = &w->conn_state->pub_cache;
	if (n > PUB_CACHE_HDR)
		return;
	if (pc->seen != m) {
		/* Kept from the second subscriber of a message on: a message
		 * that goes to one subscriber (fan-in) is not worth copying.
		 * seen is only a hint, compared, never followed. */
		pc->seen = m;
		return;
	}
	if (pub_cache_stale(pc, w, m)) {
		pub_cache_clear(w);
		pc->msg = msg_ref(m);
		pc->now = w->now;
	}
	struct pub_slot *sl = &pc->slot[pc->next];
	pc->next = (pc->next + 1) % PUB_CACHE_SLOTS;
	size_t k = 1;
	while (hdr[k] & 0x80)
		k++;
	/* A cached header has the message's own topic: no alias
	 * (shareable). */
	sl->pid_at = h->qos ? (uint16_t)(k + 1 + 2 + m->topic.len) : 0;
	sl->version = version;
	sl->qos = h->qos;
	sl->retain = h->retain;
	sl->dup = h->dup;
	sl->len = (uint16_t)n;
	memcpy(sl->bytes, hdr, n);
}

void pub_cache_clear(struct worker *w)
{
	struct pub_cache *pc = &w->conn_state->pub_cache;
	if (!pc->msg)
		return;
	msg_unref(pc->msg);
	pc->msg = NULL;
	for (unsigned i = 0; i < PUB_CACHE_SLOTS; i++)
		pc->slot[i].len = 0;
}

/* Sends the header o[0..n) just written (or copied) at the end of wbuf,
 * and the payload, unless the client's Maximum Packet Size refuses them. */
static TERN_MUST_CHECK enum tern_err publish_finish(struct conn *c, const struct delivery *d,
                                                    size_t n, bool byref)
{
	if (c->sink.client_max_packet && n + d->msg->payload.len > c->sink.client_max_packet)
		return TERN_E_TOO_LARGE; /* nothing was committed */
	c->wbuf.len += n;
	return publish_commit(c, d, byref);
}

enum tern_err conn_send_publish(struct conn *c, const struct delivery *d, uint16_t packet_id,
                                bool dup)
{
	if (c->state >= CONN_CLOSING)
		return TERN_E_CLOSED;
	struct worker *w = c->w;
	struct msg *m = d->msg;
	struct pub_head h = {
	        .qos = d->qos,
	        .dup = dup && d->qos > 0,
	        .retain = d->retain,
	        .packet_id = d->qos ? packet_id : 0,
	};
	bool byref = m->payload.len >= BYREF_MIN;
	/* mount_point: the client sees the topic without its listener's
	 * prefix (mount.h); such a header is its own, never shared. Every
	 * filter of such a client has the prefix, so a topic without it does
	 * not come here: if it did, it is dropped as if sent, as mosquitto
	 * does. */
	struct tern_bytes topic = m->topic;
	const char *mount = mount_of(w, &c->sink);
	if (mount && (!mount_strip(mount, m->topic, &topic) || topic.len == 0))
		return TERN_E_TOO_LARGE;
	/* Subscribers of one kind (protocol version, QoS, RETAIN and DUP
	 * flags) get the same header but for the packet id, unless a v5
	 * subscriber adds properties of its own (subscription identifiers, a
	 * topic alias): the header is encoded once per message and kind
	 * (DESIGN.md, "How a message flows" 4), and copied for the others. */
	bool shareable = !mount && (c->sink.version != TERN_V5 ||
	                            (d->n_sub_ids == 0 && !c->sink.alias_out_max));
	struct pub_slot *sl =
	        shareable ? pub_cache_find(w, m, c->sink.version, h.qos, h.retain, h.dup) : NULL;
	if (sl) {
		size_t n = sl->len;
		if (buf_reserve_in(&c->wbuf, byref ? n : n + m->payload.len, 0, &w->bins)) {
			conn_close(c, TERN_RC_UNSPECIFIED, "out of memory");
			return TERN_E_NOMEM;
		}
		uint8_t *o = c->wbuf.data + c->wbuf.len;
		memcpy(o, sl->bytes, n);
		if (sl->pid_at) {
			o[sl->pid_at] = (uint8_t)(packet_id >> 8);
			o[sl->pid_at + 1] = (uint8_t)packet_id;
		}
		return publish_finish(c, d, n, byref);
	}
	if (shareable && (c->sink.version != TERN_V5 || msg_plain(m))) {
		/* No properties at all: the header is at most type, 4 length
		 * bytes, topic, packet id and an empty property length. */
		size_t hmax = m->topic.len + 10u;
		if (buf_reserve_in(&c->wbuf, byref ? hmax : hmax + m->payload.len, 0, &w->bins)) {
			conn_close(c, TERN_RC_UNSPECIFIED, "out of memory");
			return TERN_E_NOMEM;
		}
		uint8_t *o = c->wbuf.data + c->wbuf.len;
		size_t n = plain_header(o, m, &h, c->sink.version);
		if (n) {
			pub_cache_put(w, m, &h, c->sink.version, o, n);
			return publish_finish(c, d, n, byref);
		}
	}
	struct tern_publish pub = {
	        .qos = h.qos,
	        .dup = h.dup,
	        .retain = h.retain,
	        .topic = topic,
	        .packet_id = h.packet_id,
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
			pr->message_expiry = msg_expiry_left(m, w->now, &gone);
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
			alias = topic_alias_pick(c->alias_out, c->sink.alias_out_max, topic,
			                         &alias_known);
			if (alias) {
				pr->present |= TERN_PROP_BIT(TERN_PROP_TOPIC_ALIAS);
				pr->topic_alias = alias;
				if (alias_known)
					pub.topic = (struct tern_bytes){topic.data, 0};
			}
		}
	}
	/* The generic encoder: v5 properties, or what plain_header() left to
	 * it to judge. */
	size_t hmax = tern_publish_header_size(&pub, c->sink.version);
	if (hmax == 0)
		return TERN_E_INVALID;
	enum tern_err err =
	        buf_reserve_in(&c->wbuf, byref ? hmax : hmax + m->payload.len, 0, &w->bins);
	if (err) {
		conn_close(c, TERN_RC_UNSPECIFIED, "out of memory");
		return err;
	}
	uint8_t *o = c->wbuf.data + c->wbuf.len;
	size_t n = 0;
	err = tern_encode_publish_header(&pub, c->sink.version, o, c->wbuf.cap - c->wbuf.len, &n);
	if (err)
		return err;
	if (c->sink.client_max_packet && n + m->payload.len > c->sink.client_max_packet) {
		if (alias && !alias_known) {
			/* The alias property made it too large: the message
			 * still goes out, without one (hmax covered that). */
			pub.props.present &= ~TERN_PROP_BIT(TERN_PROP_TOPIC_ALIAS);
			alias = 0;
			err = tern_encode_publish_header(&pub, c->sink.version, o,
			                                 c->wbuf.cap - c->wbuf.len, &n);
			if (err)
				return err;
		}
		if (n + m->payload.len > c->sink.client_max_packet)
			return TERN_E_TOO_LARGE; /* nothing was committed */
	}
	if (alias && !alias_known &&
	    topic_alias_set(&c->alias_out, c->sink.alias_out_max, alias, topic) != TERN_OK) {
		/* The client learns a mapping only from a PUBLISH we send,
		 * so the table and what was sent must agree. */
		conn_close(c, TERN_RC_UNSPECIFIED, "out of memory");
		return TERN_E_NOMEM;
	}
	if (shareable)
		pub_cache_put(w, m, &h, c->sink.version, o, n);
	c->wbuf.len += n;
	return publish_commit(c, d, byref);
}

void conn_set_epollout(struct conn *c, bool on)
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

/* Writes the next piece of the output stream: wbuf bytes up to the next
 * spliced payload, or that payload. As a transport's write: TERN_OK with
 * the bytes written in *n, TERN_E_INCOMPLETE, or an error. */
static TERN_MUST_CHECK enum tern_err write_piece(struct conn *c, size_t *n)
{
	struct conn_out *o = c->out;
	enum tern_err e;
	if (has_refs(c)) {
		struct out_ref *r = front_ref(o);
		if (r->gap == 0) {
			const struct tern_bytes *p = &r->msg->payload;
			e = c->tp->write(c, p->data + r->done, p->len - r->done, n);
			if (e == TERN_OK) {
				r->done += (uint32_t)*n;
				o->bytes -= *n;
				if (r->done == p->len)
					pop_ref(o);
			}
			return e;
		}
		e = c->tp->write(c, c->wbuf.data + c->wbuf.off, r->gap, n);
		if (e == TERN_OK) {
			buf_consume(&c->wbuf, *n);
			r->gap -= (uint32_t)*n;
			o->sum_gap -= *n;
		}
		return e;
	}
	e = c->tp->write(c, c->wbuf.data + c->wbuf.off, buf_used(&c->wbuf), n);
	if (e == TERN_OK)
		buf_consume(&c->wbuf, *n);
	return e;
}

/* With a gather-capable transport: the whole pending stream (up to 64
 * pieces) in one system call. Results as write_piece(). */
static TERN_MUST_CHECK enum tern_err write_gather(struct conn *c, size_t *written)
{
	struct conn_out *o = c->out;
	struct iovec iov[64];
	int n = 0;
	size_t woff = c->wbuf.off;
	for (uint32_t i = 0; i < o->refs.n && n < 62; i++) {
		struct out_ref *r = RING_AT(&o->refs, struct out_ref, i);
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
	enum tern_err e = c->tp->writev(c, iov, n, written);
	if (e)
		return e;
	/* Account the bytes written across the pieces, in order. */
	size_t left = *written;
	while (left && has_refs(c)) {
		struct out_ref *r = front_ref(o);
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
		pop_ref(o);
	}
	if (left)
		buf_consume(&c->wbuf, left);
	return TERN_OK;
}

/* Writes as much as the socket takes, including what the transport keeps
 * of its own (WebSocket framing). TERN_OK when the rest waits for the
 * socket (or nothing is left); the transport's fatal error otherwise. */
enum tern_err conn_write_some(struct conn *c)
{
	size_t n = 0;
	while (buf_used(&c->wbuf) || has_refs(c)) {
		enum tern_err e =
		        has_refs(c) && c->tp->writev ? write_gather(c, &n) : write_piece(c, &n);
		if (e == TERN_OK && n > 0) {
			stat_add(&c->w->stats, STAT_BYTES_OUT, (uint64_t)n);
			c->tx_bytes += n;
			continue;
		}
		return e == TERN_E_INCOMPLETE ? TERN_OK : e;
	}
	if (c->tp->out_pending(c)) {
		enum tern_err e = c->tp->write(c, NULL, 0, &n);
		return e == TERN_E_INCOMPLETE ? TERN_OK : e;
	}
	return TERN_OK;
}

void conn_flush(struct conn *c)
{
	if (c->state >= CONN_CLOSING)
		return;
	if (conn_write_some(c) != TERN_OK) {
		c->no_linger = true;
		conn_close(c, 0, "write failed");
		return;
	}
	bool pending = conn_pending_out(c) || c->tp->out_pending(c);
	if (pending) {
		/* A write that waits for readability is retried when data
		 * arrives, not on EPOLLOUT, which would fire at once. */
		conn_set_epollout(c, !c->tp_write_wants_read);
	} else {
		conn_set_epollout(c, false);
	}
	/* Back to the worker's bins, not to malloc: the next message
	 * takes the same memory (buf.h). */
	buf_release(&c->wbuf, &c->w->bins);
	if (c->out && !c->out->refs.n)
		conn_out_free(c);
}
