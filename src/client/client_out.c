/*
 * client_out.c - what the client sends on the application's behalf:
 * PUBLISH, SUBSCRIBE, UNSUBSCRIBE, and the outbound QoS 1/2 state.
 *
 * A QoS 1/2 publish is encoded once, when the application calls
 * tern_client_publish(), into a struct tern__out that lives until the flow
 * completes (PUBACK, PUBCOMP, or a PUBREC with a failure reason). The
 * packet id is taken then, so it can be returned to the caller, and is
 * never handed out again while the message lives (nor while a SUBSCRIBE or
 * UNSUBSCRIBE waits for its answer): ids are taken round-robin from 1 to
 * 65535, skipping those in use.
 *
 * The messages form one list in publish order. A message is QUEUED until it
 * is first written on the current session, which happens only while the
 * number in flight is below the server's Receive Maximum (v5 CONNACK;
 * 65535 otherwise). Since queued messages are sent strictly in order, the
 * sent ones always precede the queued ones, and `out_next` marks the first
 * queued one. When a session is resumed the sent prefix is written again,
 * in order: PUBLISH with DUP set, or PUBREL for those whose PUBREC came
 * [MQTT-4.4.0-1]. When the broker has no session for us, the sent prefix
 * is forgotten and each is reported through on_publish; queued messages
 * were never seen by the broker and are simply sent now.
 *
 * An application with a store of its own (a bridge) may name the packet
 * id of a publish itself, so that after its own restart it resends with
 * the id the broker knows, and may release (PUBREL) an id the library has
 * never seen: the broker answered PUBREC in the application's earlier run.
 * Such a release is a "bare" entry of the same list, without a PUBLISH: it
 * waits its turn as a queued message does, is written as a PUBREL, and is
 * then in the RELEASE state as any other until PUBCOMP. With on_pubrec set
 * a PUBREC leaves the message SENT (marked `rec`) until the application
 * releases it, so that its own record of the PUBREC can be made durable
 * before the broker is allowed to forget the id.
 */
#include <stdlib.h>
#include <string.h>

#include "client/client_internal.h"

/* ---- packet ids ---- */

/* Whether id is taken by an outbound message or a request. */
static bool id_in_use(const struct tern_client *c, uint16_t id)
{
	return map64_get(&c->ids, id) != NULL || map64_get(&c->reqs, id) != NULL;
}

/* Takes the next free packet id (not used by an outbound message or a
 * request). TERN_E_LIMIT when all 65535 are in use. */
static TERN_MUST_CHECK enum tern_err id_take(struct tern_client *c, uint16_t *id)
{
	for (uint32_t i = 0; i < 65535u; i++) {
		uint16_t cand = c->next_id;
		c->next_id = cand == 65535 ? 1 : (uint16_t)(cand + 1);
		if (!id_in_use(c, cand)) {
			*id = cand;
			return TERN_OK;
		}
	}
	return TERN_E_LIMIT;
}

/* ---- the list of outbound messages ---- */

struct tern__out *tern__out_find(struct tern_client *c, uint16_t id)
{
	return map64_get(&c->ids, id);
}

static void out_unlink(struct tern_client *c, struct tern__out *o)
{
	if (c->out_next == o)
		c->out_next = o->next;
	if (o->prev != NULL)
		o->prev->next = o->next;
	else
		c->out_head = o->next;
	if (o->next != NULL)
		o->next->prev = o->prev;
	else
		c->out_tail = o->prev;
	map64_del(&c->ids, o->packet_id);
	c->n_out--;
	if (o->state != TERN__OUT_QUEUED)
		c->n_inflight--;
}

void tern__out_complete(struct tern_client *c, struct tern__out *o, uint8_t reason,
                        const struct tern_props *props)
{
	uint16_t id = o->packet_id;
	out_unlink(c, o);
	free(o);
	if (c->wait.type == TERN_PUBLISH && c->wait.packet_id == id) {
		c->wait.done = true;
		c->wait.reason = reason;
	}
	if (c->cb.on_publish != NULL)
		c->cb.on_publish(c, c->ud, id, reason, props);
	tern__pump(c);
}

/* Appends o's bytes to the output. A message over the server's Maximum
 * Packet Size (learned after it was queued) fails instead. Returns false
 * when o was completed (and freed). */
static bool out_write(struct tern_client *c, struct tern__out *o)
{
	if (c->max_packet != 0 && o->len > c->max_packet) {
		tern__out_complete(c, o, TERN_RC_PACKET_TOO_LARGE, NULL);
		return false;
	}
	if (buf_append(&c->out, o->pkt, o->len, 0) != TERN_OK) {
		tern__fail(c, TERN_E_NOMEM);
		return false;
	}
	return true;
}

/* Writes a PUBREL for id (reason 0). */
static void send_pubrel(struct tern_client *c, uint16_t id)
{
	struct tern_packet p = {.type = TERN_PUBREL};
	p.u.ack.packet_id = id;
	if (tern__send_packet(c, &p) != TERN_OK)
		tern__fail(c, TERN_E_NOMEM);
}

/* Appends o (QUEUED, its id in c->ids) to the list. */
static void out_append(struct tern_client *c, struct tern__out *o)
{
	o->next = NULL;
	o->prev = c->out_tail;
	if (c->out_tail != NULL)
		c->out_tail->next = o;
	else
		c->out_head = o;
	c->out_tail = o;
	if (c->out_next == NULL)
		c->out_next = o;
	c->n_out++;
}

void tern__pump(struct tern_client *c)
{
	while (c->state == TERN__UP && c->fail == TERN_OK && c->out_next != NULL &&
	       c->n_inflight < c->recv_max) {
		struct tern__out *o = c->out_next;
		if (o->bare) {
			send_pubrel(c, o->packet_id);
			o->state = TERN__OUT_RELEASE;
		} else if (out_write(c, o)) {
			o->state = TERN__OUT_SENT;
		} else {
			continue; /* completed (out_next moved on) or failed */
		}
		c->n_inflight++;
		c->out_next = o->next;
	}
}

void tern__session_start(struct tern_client *c, bool session_present)
{
	struct tern__out *o = c->out_head, *next;
	for (; o != NULL && o != c->out_next && c->state == TERN__CONNACK; o = next) {
		next = o->next;
		if (!session_present) {
			/* A PUBREC means the broker had taken the message: only
			 * the release is lost with the session. */
			bool had = o->state == TERN__OUT_RELEASE || o->rec;
			tern__out_complete(c, o, had ? TERN_RC_SUCCESS : TERN_RC_UNSPECIFIED, NULL);
			continue;
		}
		if (o->state == TERN__OUT_RELEASE) {
			send_pubrel(c, o->packet_id);
		} else {
			o->pkt[0] |= 0x08; /* DUP [MQTT-3.3.1-1] */
			out_write(c, o);
		}
	}
	/* A release still queued is for a session the broker no longer has:
	 * nothing is left to release there. */
	for (o = c->out_next; !session_present && o != NULL && c->state == TERN__CONNACK;
	     o = next) {
		next = o->next;
		if (o->bare)
			tern__out_complete(c, o, TERN_RC_SUCCESS, NULL);
	}
}

void tern__out_free_all(struct tern_client *c)
{
	struct tern__out *o = c->out_head, *next;
	for (; o != NULL; o = next) {
		next = o->next;
		free(o);
	}
	c->out_head = c->out_tail = c->out_next = NULL;
	c->n_out = c->n_inflight = 0;
	map_free(&c->ids);
	size_t pos = 0;
	struct tern__req *r;
	while ((r = map_next(&c->reqs, &pos)) != NULL)
		free(r);
	map_free(&c->reqs);
}

/* ---- PUBLISH ---- */

/* Checks args against the protocol and what the broker said it supports. */
static TERN_MUST_CHECK enum tern_err publish_check(const struct tern_client *c,
                                                   const struct tern_publish_args *a)
{
	if (a->topic == NULL || a->qos > 2 || (a->payload == NULL && a->payload_len > 0))
		return TERN_E_INVALID;
	size_t tlen = strlen(a->topic);
	if (tlen == 0) {
		/* Only a v5 topic alias may stand for the topic. */
		if (c->opts.version != TERN_V5 || a->props == NULL ||
		    !(a->props->present & TERN_PROP_BIT(TERN_PROP_TOPIC_ALIAS)))
			return TERN_E_INVALID;
	} else if (tlen > 65535 ||
	           tern_topic_name_check((const uint8_t *)a->topic, tlen) != TERN_OK) {
		return TERN_E_INVALID;
	}
	if (c->state == TERN__UP && (a->qos > c->max_qos || (a->retain && !c->retain_ok)))
		return TERN_E_INVALID;
	return TERN_OK;
}

enum tern_err tern_client_publish(struct tern_client *c, const struct tern_publish_args *args,
                                  uint16_t *packet_id)
{
	if (c == NULL || args == NULL)
		return TERN_E_INVALID;
	if (!c->have_opts)
		return TERN_E_CLOSED;
	enum tern_err e = publish_check(c, args);
	if (e != TERN_OK)
		return e;

	if (args->qos == 0 && (args->packet_id != 0 || args->dup))
		return TERN_E_INVALID; /* [MQTT-2.3.1-5], [MQTT-3.3.1-2] */

	struct tern_packet p = {.type = TERN_PUBLISH};
	struct tern_publish *pub = &p.u.publish;
	pub->qos = args->qos;
	pub->dup = args->dup;
	pub->retain = args->retain;
	pub->topic =
	        (struct tern_bytes){(const uint8_t *)args->topic, (uint32_t)strlen(args->topic)};
	pub->payload = (struct tern_bytes){args->payload, (uint32_t)args->payload_len};
	if (args->props != NULL)
		pub->props = *args->props;
	pub->packet_id = args->qos > 0 ? 1 : 0; /* the real id is taken below */
	if (args->payload_len > TERN_VBI_MAX)
		return TERN_E_TOO_LARGE;

	if (args->qos == 0) {
		if (c->state != TERN__UP)
			return TERN_E_CLOSED;
		e = tern__send_packet(c, &p);
		if (e == TERN_OK && c->in_step == 0 && !c->corked)
			tern__flush(c);
		if (packet_id != NULL)
			*packet_id = 0;
		return e;
	}

	size_t size = tern_packet_size(&p, c->opts.version);
	if (size == 0)
		return TERN_E_INVALID;
	if (c->max_packet != 0 && size > c->max_packet)
		return TERN_E_TOO_LARGE;
	uint16_t id = args->packet_id;
	if (id != 0 && id_in_use(c, id))
		return TERN_E_BUSY;
	if (id == 0 && (e = id_take(c, &id)) != TERN_OK)
		return e;
	struct tern__out *o = malloc(sizeof(*o) + size);
	if (o == NULL)
		return TERN_E_NOMEM;
	pub->packet_id = id;
	size_t n = 0;
	e = tern_encode_packet(&p, c->opts.version, o->pkt, size, &n);
	if (e == TERN_OK && map64_put(&c->ids, id, o) != TERN_OK)
		e = TERN_E_NOMEM;
	if (e != TERN_OK) {
		free(o);
		return e;
	}
	o->packet_id = id;
	o->qos = args->qos;
	o->state = TERN__OUT_QUEUED;
	o->rec = o->bare = false;
	o->len = n;
	out_append(c, o);
	if (packet_id != NULL)
		*packet_id = id;
	tern__pump(c);
	if (c->in_step == 0 && !c->corked)
		tern__flush(c);
	return TERN_OK;
}

/* ---- PUBREL of the application's ---- */

enum tern_err tern_client_release(struct tern_client *c, uint16_t packet_id)
{
	if (c == NULL || packet_id == 0)
		return TERN_E_INVALID;
	if (!c->have_opts)
		return TERN_E_CLOSED;
	if (map64_get(&c->reqs, packet_id) != NULL)
		return TERN_E_BUSY;
	struct tern__out *o = tern__out_find(c, packet_id);
	if (o != NULL) {
		if (o->qos != 2 || (o->state == TERN__OUT_QUEUED && !o->bare))
			return TERN_E_BUSY;
		if (o->state != TERN__OUT_SENT)
			return TERN_OK; /* released already */
		o->rec = false;
		o->state = TERN__OUT_RELEASE;
		if (c->state == TERN__UP)
			send_pubrel(c, packet_id);
		/* Otherwise the resumed session's resend sends it. */
	} else {
		o = malloc(sizeof(*o));
		if (o == NULL)
			return TERN_E_NOMEM;
		if (map64_put(&c->ids, packet_id, o) != TERN_OK) {
			free(o);
			return TERN_E_NOMEM;
		}
		o->packet_id = packet_id;
		o->qos = 2;
		o->state = TERN__OUT_QUEUED;
		o->rec = false;
		o->bare = true;
		o->len = 0;
		out_append(c, o);
		tern__pump(c);
	}
	/* Recorded: a write that failed closes the connection, and the
	 * resumed session's resend carries it. */
	if (c->in_step == 0 && !c->corked)
		tern__flush(c);
	return TERN_OK;
}

/* ---- SUBSCRIBE and UNSUBSCRIBE ---- */

/* Takes an id for a request and sends p (whose packet id it sets). */
static TERN_MUST_CHECK enum tern_err send_request(struct tern_client *c, struct tern_packet *p,
                                                  uint16_t *idp, uint32_t count,
                                                  uint16_t *packet_id)
{
	if (c->state != TERN__TCP && c->state != TERN__TLS && c->state != TERN__CONNACK &&
	    c->state != TERN__UP)
		return TERN_E_CLOSED;
	struct tern__req *r = malloc(sizeof(*r));
	if (r == NULL)
		return TERN_E_NOMEM;
	enum tern_err e = id_take(c, idp);
	if (e == TERN_OK && (e = map64_put(&c->reqs, *idp, r)) == TERN_OK) {
		r->type = p->type;
		r->packet_id = *idp;
		r->count = count;
		e = tern__send_packet(c, p);
		if (e != TERN_OK)
			map64_del(&c->reqs, *idp);
	}
	if (e != TERN_OK) {
		free(r);
		return e;
	}
	if (packet_id != NULL)
		*packet_id = *idp;
	if (c->in_step == 0 && !c->corked)
		tern__flush(c);
	return TERN_OK;
}

enum tern_err tern_client_subscribe(struct tern_client *c, const struct tern_sub_entry *entries,
                                    size_t n, const struct tern_props *props, uint16_t *packet_id)
{
	if (c == NULL || entries == NULL || n == 0 || n > 65535)
		return TERN_E_INVALID;
	for (size_t i = 0; i < n; i++)
		if (entries[i].qos > 2 || entries[i].filter.data == NULL ||
		    tern_topic_filter_check(entries[i].filter.data, entries[i].filter.len) !=
		            TERN_OK)
			return TERN_E_INVALID;
	struct tern_packet p = {.type = TERN_SUBSCRIBE};
	p.u.subscribe.count = (uint32_t)n;
	p.u.subscribe.entries = entries;
	if (props != NULL)
		p.u.subscribe.props = *props;
	return send_request(c, &p, &p.u.subscribe.packet_id, (uint32_t)n, packet_id);
}

enum tern_err tern_client_unsubscribe(struct tern_client *c, const char *const *filters, size_t n,
                                      const struct tern_props *props, uint16_t *packet_id)
{
	struct tern_bytes small[16];
	if (c == NULL || filters == NULL || n == 0 || n > 65535)
		return TERN_E_INVALID;
	struct tern_bytes *fs = n <= 16 ? small : malloc(n * sizeof(*fs));
	if (fs == NULL)
		return TERN_E_NOMEM;
	enum tern_err e = TERN_OK;
	for (size_t i = 0; i < n && e == TERN_OK; i++) {
		size_t len = filters[i] != NULL ? strlen(filters[i]) : 0;
		fs[i] = (struct tern_bytes){(const uint8_t *)filters[i], (uint32_t)len};
		if (filters[i] == NULL || len > 65535 ||
		    tern_topic_filter_check(fs[i].data, len) != TERN_OK)
			e = TERN_E_INVALID;
	}
	if (e == TERN_OK) {
		struct tern_packet p = {.type = TERN_UNSUBSCRIBE};
		p.u.unsubscribe.count = (uint32_t)n;
		p.u.unsubscribe.filters = fs;
		if (props != NULL)
			p.u.unsubscribe.props = *props;
		e = send_request(c, &p, &p.u.unsubscribe.packet_id, (uint32_t)n, packet_id);
	}
	if (fs != small)
		free(fs);
	return e;
}

void tern_client_cork(struct tern_client *c, bool on)
{
	c->corked = on;
	if (!on && c->in_step == 0)
		tern__flush(c);
}
