/*
 * client_proto.c - what the client does with each packet from the broker.
 *
 * client_io.c decodes a whole packet with the shared codec and hands the
 * struct here: one function per packet type, as the broker's handle_*.c
 * files do, and none of them touches raw bytes. A handler never closes the
 * connection itself (callbacks are running, and the input buffer is still
 * being walked); it records the failure with tern__fail() and the step
 * closes once the input loop stops.
 *
 * Inbound QoS: QoS 1 is delivered, then PUBACK'd. QoS 2 is delivered once,
 * on the first PUBLISH, and its packet id remembered until PUBREL (method B
 * of [MQTT-4.3.3]): a PUBLISH with a remembered id is a resend and only gets
 * its PUBREC again. The ids outlive a connection, since a resumed session
 * may resend such PUBLISH; they are forgotten when the broker has no session.
 * With manual_ack the application sends those acknowledgements itself
 * (tern_client_ack()), once it has passed the message on: a QoS 2 id is then
 * remembered as PENDING until it does, and a resend of a pending one gets
 * no PUBREC yet (the application's own answer is still to come).
 *
 * Packets a broker must never send to a client (CONNECT, SUBSCRIBE,
 * UNSUBSCRIBE, PINGREQ), anything but CONNACK before CONNACK, and AUTH
 * (we offer no enhanced authentication) are protocol errors.
 */
#include <stdlib.h>
#include <string.h>

#include "client/client_internal.h"

static bool is_v5(const struct tern_client *c)
{
	return c->opts.version == TERN_V5;
}

/* Marks id in the inbound QoS 2 set (the map needs a non-NULL value):
 * PUBREC'd, or (manual_ack) delivered and waiting for the application's
 * PUBREC. */
static void *const MARK = (void *)1;
static void *const PENDING = (void *)2;

/* ---- CONNACK ---- */

/* Takes the limits and the assigned client id from v5 CONNACK properties. */
static void connack_props(struct tern_client *c, const struct tern_props *pr)
{
	if (pr->present & TERN_PROP_BIT(TERN_PROP_RECEIVE_MAXIMUM))
		c->recv_max = pr->receive_maximum;
	if (pr->present & TERN_PROP_BIT(TERN_PROP_MAXIMUM_PACKET_SIZE))
		c->max_packet = pr->maximum_packet_size;
	if (pr->present & TERN_PROP_BIT(TERN_PROP_SERVER_KEEP_ALIVE))
		c->keep_alive = pr->server_keep_alive; /* [MQTT-3.2.2-21] */
	if (pr->present & TERN_PROP_BIT(TERN_PROP_MAXIMUM_QOS))
		c->max_qos = pr->maximum_qos;
	if (pr->present & TERN_PROP_BIT(TERN_PROP_RETAIN_AVAILABLE))
		c->retain_ok = pr->retain_available != 0;
	if (pr->present & TERN_PROP_BIT(TERN_PROP_ASSIGNED_CLIENT_ID)) {
		char *id = malloc((size_t)pr->assigned_client_id.len + 1);
		if (id == NULL) {
			tern__fail(c, TERN_E_NOMEM);
			return;
		}
		memcpy(id, pr->assigned_client_id.data, pr->assigned_client_id.len);
		id[pr->assigned_client_id.len] = '\0';
		free(c->client_id);
		c->client_id = id;
	}
}

/* The Topic Alias Maximum our CONNECT offered (0: none). */
static uint16_t our_alias_max(const struct tern_client *c)
{
	const struct tern_props *p = c->opts.props;
	if (!is_v5(c) || p == NULL || !(p->present & TERN_PROP_BIT(TERN_PROP_TOPIC_ALIAS_MAXIMUM)))
		return 0;
	return p->topic_alias_maximum;
}

static void handle_connack(struct tern_client *c, const struct tern_connack *ca)
{
	if (c->state != TERN__CONNACK) {
		tern__fail(c, TERN_E_PROTOCOL); /* a second CONNACK [MQTT-3.2.0-2] */
		return;
	}
	c->ev_connack = true;
	c->ev_reason = ca->reason;
	c->ev_session = ca->session_present;
	if (ca->reason != 0) {
		/* Refused: the broker closes the connection [MQTT-3.2.2-7]. */
		c->refused = true;
		if (c->cb.on_connect != NULL)
			c->cb.on_connect(c, c->ud, ca->reason, false, &ca->props);
		if (c->fail == TERN_OK) {
			c->fail = TERN_E_PROTOCOL;
			c->fail_reason = 0;
		}
		return;
	}
	if (ca->session_present && c->clean_start_now) {
		/* We asked for a clean start [MQTT-3.2.2-4] (v5: 3.2.2.1.1). */
		tern__fail(c, TERN_E_PROTOCOL);
		return;
	}
	if (is_v5(c))
		connack_props(c, &ca->props);
	if (c->fail != TERN_OK)
		return;
	c->attempt = 0;
	if (!ca->session_present)
		map_free(&c->in_qos2);
	c->alias_max = our_alias_max(c);
	/* Resends first, in their original order, before anything new. */
	tern__session_start(c, ca->session_present);
	if (c->state != TERN__CONNACK || c->fail != TERN_OK)
		return;
	c->state = TERN__UP;
	if (c->cb.on_connect != NULL)
		c->cb.on_connect(c, c->ud, 0, ca->session_present, &ca->props);
	tern__pump(c);
}

/* ---- PUBLISH in ---- */

/* Resolves the topic of pub (v5 aliases, util/alias_in.h): *topic and
 * *tlen. Returns false after failing the connection. */
static bool publish_topic(struct tern_client *c, const struct tern_publish *pub,
                          const uint8_t **topic, size_t *tlen)
{
	*topic = pub->topic.data;
	*tlen = pub->topic.len;
	if (!is_v5(c) || !(pub->props.present & TERN_PROP_BIT(TERN_PROP_TOPIC_ALIAS)))
		return true;
	struct tern_bytes t;
	enum tern_err err =
	        alias_in_resolve(&c->alias, c->alias_max, pub->props.topic_alias, pub->topic, &t);
	switch (err) {
	case TERN_OK:
		*topic = t.data;
		*tlen = t.len;
		return true;
	case TERN_E_INVALID:
		/* 0 or above the maximum we offered: DISCONNECT 0x94. */
		c->fail = TERN_E_PROTOCOL;
		c->fail_reason = TERN_RC_TOPIC_ALIAS_INVALID;
		return false;
	case TERN_E_NOT_FOUND:
		tern__fail(c, TERN_E_PROTOCOL); /* an alias never set */
		return false;
	default:
		tern__fail(c, err);
		return false;
	}
}

/* Queues a copy of msg for tern_client_receive(). */
static void rx_queue(struct tern_client *c, const struct tern_message *m)
{
	struct tern__rx *rx = malloc(sizeof(*rx) + m->topic_len + 1 + m->payload_len);
	struct tern__props_copy pc = {0};
	if (rx == NULL || tern__props_copy(&pc, &m->props) != TERN_OK) {
		free(rx);
		tern__fail(c, TERN_E_NOMEM);
		return;
	}
	char *topic = (char *)(rx + 1);
	memcpy(topic, m->topic, m->topic_len + 1);
	uint8_t *payload = (uint8_t *)topic + m->topic_len + 1;
	if (m->payload_len)
		memcpy(payload, m->payload, m->payload_len);
	rx->next = NULL;
	rx->props_mem = pc.mem;
	rx->msg = *m;
	rx->msg.topic = topic;
	rx->msg.payload = payload;
	rx->msg.props = pc.p;
	if (c->rx_tail != NULL)
		c->rx_tail->next = rx;
	else
		c->rx_head = rx;
	c->rx_tail = rx;
	c->n_rx++;
}

/* Hands a received message to on_message, or queues it. */
static void deliver(struct tern_client *c, const struct tern_publish *pub, const uint8_t *topic,
                    size_t tlen)
{
	char small[256];
	char *t = tlen < sizeof(small) ? small : malloc(tlen + 1);
	if (t == NULL) {
		tern__fail(c, TERN_E_NOMEM);
		return;
	}
	memcpy(t, topic, tlen);
	t[tlen] = '\0';
	struct tern_message m = {
	        .topic = t,
	        .topic_len = tlen,
	        .payload = pub->payload.data,
	        .payload_len = pub->payload.len,
	        .qos = pub->qos,
	        .retain = pub->retain,
	        .dup = pub->dup,
	        .packet_id = pub->packet_id,
	        .props = pub->props,
	};
	if (c->cb.on_message != NULL)
		c->cb.on_message(c, c->ud, &m);
	else
		rx_queue(c, &m);
	if (t != small)
		free(t);
}

/* Sends PUBACK / PUBREC / PUBCOMP for id, unless we are closing. */
static void send_ack(struct tern_client *c, enum tern_packet_type type, uint16_t id, uint8_t reason)
{
	if (c->state != TERN__UP || c->fail != TERN_OK)
		return;
	struct tern_packet p = {.type = type};
	p.u.ack.packet_id = id;
	p.u.ack.reason = is_v5(c) ? reason : 0;
	enum tern_err e = tern__send_packet(c, &p);
	if (e != TERN_OK)
		tern__fail(c, e);
}

static void handle_publish(struct tern_client *c, const struct tern_publish *pub)
{
	const uint8_t *topic;
	size_t tlen;
	if (!publish_topic(c, pub, &topic, &tlen))
		return;
	switch (pub->qos) {
	case 0:
		deliver(c, pub, topic, tlen);
		break;
	case 1:
		deliver(c, pub, topic, tlen);
		if (!c->opts.manual_ack)
			send_ack(c, TERN_PUBACK, pub->packet_id, 0);
		break;
	default: {
		void *mark = map64_get(&c->in_qos2, pub->packet_id);
		if (mark == NULL) {
			mark = c->opts.manual_ack ? PENDING : MARK;
			if (map64_put(&c->in_qos2, pub->packet_id, mark) != TERN_OK) {
				tern__fail(c, TERN_E_NOMEM);
				return;
			}
			deliver(c, pub, topic, tlen);
			/* The callback may have acknowledged it already. */
			mark = map64_get(&c->in_qos2, pub->packet_id);
			if (c->opts.manual_ack)
				break;
		}
		if (mark == MARK)
			send_ack(c, TERN_PUBREC, pub->packet_id, 0);
		break;
	}
	}
}

static void handle_pubrel(struct tern_client *c, const struct tern_ack *a)
{
	if (c->opts.manual_ack && c->cb.on_pubrel != NULL) {
		c->cb.on_pubrel(c, c->ud, a->packet_id);
		return;
	}
	bool known = map64_del(&c->in_qos2, a->packet_id) != NULL;
	send_ack(c, TERN_PUBCOMP, a->packet_id, known ? 0 : TERN_RC_PACKET_ID_NOT_FOUND);
}

enum tern_err tern_client_ack(struct tern_client *c, enum tern_packet_type type, uint16_t packet_id,
                              uint8_t reason)
{
	if (c == NULL || packet_id == 0)
		return TERN_E_INVALID;
	switch (type) {
	case TERN_PUBACK:
		break;
	case TERN_PUBREC:
		if (reason >= 0x80) {
			/* Refused: the flow ends here [MQTT-4.3.3], so a
			 * later PUBLISH with this id is a new message. */
			map64_del(&c->in_qos2, packet_id);
		} else if (map64_get(&c->in_qos2, packet_id) != NULL) {
			if (map64_put(&c->in_qos2, packet_id, MARK) != TERN_OK)
				return TERN_E_NOMEM;
		}
		break;
	case TERN_PUBCOMP:
		map64_del(&c->in_qos2, packet_id);
		break;
	default:
		return TERN_E_INVALID;
	}
	if (c->state != TERN__UP || c->fail != TERN_OK)
		return TERN_E_CLOSED;
	send_ack(c, type, packet_id, reason);
	if (c->fail != TERN_OK)
		return c->fail;
	if (c->in_step == 0 && !c->corked)
		tern__flush(c);
	return TERN_OK;
}

/* ---- acknowledgements of our publishes ---- */

static void handle_puback(struct tern_client *c, const struct tern_ack *a)
{
	struct tern__out *o = tern__out_find(c, a->packet_id);
	/* An unknown id is ignored: after a session was lost it may be a
	 * late answer to a message we have already given up on. */
	if (o == NULL || o->qos != 1 || o->state != TERN__OUT_SENT)
		return;
	tern__out_complete(c, o, a->reason, &a->props);
}

static void handle_pubrec(struct tern_client *c, const struct tern_ack *a)
{
	struct tern__out *o = tern__out_find(c, a->packet_id);
	if (o == NULL || o->qos != 2 || o->state == TERN__OUT_QUEUED) {
		/* Release it anyway so the broker can forget the id. */
		if (c->state == TERN__UP && a->reason < 0x80) {
			struct tern_packet p = {.type = TERN_PUBREL};
			p.u.ack.packet_id = a->packet_id;
			p.u.ack.reason = is_v5(c) ? TERN_RC_PACKET_ID_NOT_FOUND : 0;
			if (tern__send_packet(c, &p) != TERN_OK)
				tern__fail(c, TERN_E_NOMEM);
		}
		return;
	}
	if (a->reason >= 0x80) {
		/* The broker refused the message; the flow ends here. */
		tern__out_complete(c, o, a->reason, &a->props);
		return;
	}
	if (c->cb.on_pubrec != NULL && o->state == TERN__OUT_SENT) {
		/* The application releases it (tern_client_release()), maybe
		 * from inside the callback: o is not touched after it. */
		o->rec = true;
		c->cb.on_pubrec(c, c->ud, a->packet_id, a->reason, &a->props);
		return;
	}
	o->state = TERN__OUT_RELEASE;
	if (c->state != TERN__UP)
		return;
	struct tern_packet p = {.type = TERN_PUBREL};
	p.u.ack.packet_id = a->packet_id;
	if (tern__send_packet(c, &p) != TERN_OK)
		tern__fail(c, TERN_E_NOMEM);
}

static void handle_pubcomp(struct tern_client *c, const struct tern_ack *a)
{
	struct tern__out *o = tern__out_find(c, a->packet_id);
	if (o == NULL || o->qos != 2 || o->state != TERN__OUT_RELEASE)
		return;
	tern__out_complete(c, o, a->reason, &a->props);
}

/* ---- SUBACK, UNSUBACK ---- */

static void handle_subres(struct tern_client *c, enum tern_packet_type type,
                          const struct tern_subres *s)
{
	enum tern_packet_type want = type == TERN_SUBACK ? TERN_SUBSCRIBE : TERN_UNSUBSCRIBE;
	struct tern__req *r = map64_get(&c->reqs, s->packet_id);
	if (r == NULL || r->type != want)
		return; /* not ours (any more): ignore */
	/* One reason per filter [MQTT-3.9.3-1]; a 3.1.1 UNSUBACK has none. */
	bool v3_unsuback = type == TERN_UNSUBACK && !is_v5(c);
	if (!v3_unsuback && s->count != r->count) {
		tern__fail(c, TERN_E_PROTOCOL);
		return;
	}
	map64_del(&c->reqs, s->packet_id);
	free(r);
	if (c->wait.type == want && c->wait.packet_id == s->packet_id) {
		c->wait.done = true;
		size_t n = s->count < c->wait.n ? s->count : c->wait.n;
		if (c->wait.reasons != NULL && n > 0)
			memcpy(c->wait.reasons, s->reasons, n);
	}
	if (type == TERN_SUBACK && c->cb.on_subscribe != NULL)
		c->cb.on_subscribe(c, c->ud, s->packet_id, s->reasons, s->count, &s->props);
	if (type == TERN_UNSUBACK && c->cb.on_unsubscribe != NULL)
		c->cb.on_unsubscribe(c, c->ud, s->packet_id, s->reasons, s->count, &s->props);
}

/* ---- DISCONNECT from the broker ---- */

static void handle_disconnect(struct tern_client *c, const struct tern_reasoned *d)
{
	if (tern__props_copy(&c->server_props, &d->props) != TERN_OK) {
		tern__fail(c, TERN_E_NOMEM);
		return;
	}
	c->server_disconnect = true;
	c->server_reason = d->reason;
	c->fail = TERN_E_CLOSED;
	c->fail_reason = 0;
}

void tern__handle(struct tern_client *c, const struct tern_packet *p)
{
	if (c->state == TERN__CONNACK && p->type != TERN_CONNACK &&
	    !(p->type == TERN_DISCONNECT && is_v5(c))) {
		tern__fail(c, TERN_E_PROTOCOL); /* CONNACK comes first [MQTT-3.2.0-1] */
		return;
	}
	switch (p->type) {
	case TERN_CONNACK:
		handle_connack(c, &p->u.connack);
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
	case TERN_SUBACK:
	case TERN_UNSUBACK:
		handle_subres(c, p->type, &p->u.subres);
		return;
	case TERN_PINGRESP:
		c->ping_sent = 0;
		return;
	case TERN_DISCONNECT:
		if (is_v5(c)) {
			handle_disconnect(c, &p->u.reasoned);
			return;
		}
		break; /* a 3.1.1 server never sends DISCONNECT */
	case TERN_CONNECT:
	case TERN_SUBSCRIBE:
	case TERN_UNSUBSCRIBE:
	case TERN_PINGREQ:
	case TERN_AUTH:
		break;
	}
	tern__fail(c, TERN_E_PROTOCOL);
}

/* ---- lifetime of the protocol state ---- */

void tern__proto_conn_lost(struct tern_client *c)
{
	size_t pos = 0;
	struct tern__req *r;
	while ((r = map_next(&c->reqs, &pos)) != NULL)
		free(r);
	map_free(&c->reqs);
	/* The next connection starts with no aliases [MQTT-3.3.2-7]. */
	alias_in_reset(c->alias);
	c->alias_max = 0;
}

void tern__proto_free(struct tern_client *c)
{
	alias_in_free(&c->alias);
	c->alias_max = 0;
	tern__out_free_all(c);
	map_free(&c->in_qos2);
	struct tern__rx *rx = c->rx_head, *next;
	for (; rx != NULL; rx = next) {
		next = rx->next;
		tern_message_free(&rx->msg);
	}
	c->rx_head = c->rx_tail = NULL;
	c->n_rx = 0;
}
