/*
 * decode.c - the decoders: fixed header, then one function per packet type
 * (sections 2 and 3 of MQTT 3.1.1 and MQTT 5.0; 3.1 is 3.1.1 with the
 * protocol name "MQIsdp" and level 3).
 *
 * Decoding is in two steps so that the caller never buffers a packet it
 * will refuse: tern_decode_fixed_header() needs at most 5 bytes and rejects
 * bad flags or an oversized length at once; tern_decode_packet() then gets
 * the whole body. Decoded strings point into the body; nothing is copied.
 *
 * Errors follow the specifications' own classification: bytes that break
 * the grammar (a field running past the end, bytes left over, reserved bits
 * set, QoS 3, bad UTF-8, a control character in a client id, username,
 * topic name or filter) are TERN_E_MALFORMED; well-formed values a rule
 * forbids (packet identifier 0, empty SUBSCRIBE, duplicated property, a
 * reason code the packet type cannot carry) are TERN_E_PROTOCOL. Invalid
 * topics get their own errors so the broker can answer with 0x90 / 0x8F. A
 * SUBSCRIBE or UNSUBSCRIBE is read to its end before an invalid filter is
 * reported, so a packet that is also malformed is reported as malformed.
 */
#include "proto/proto_internal.h"

/*
 * True if the low nibble of the first byte is what the packet type
 * requires in version: 0x2 for PUBREL, SUBSCRIBE, UNSUBSCRIBE, 0 for all
 * others but PUBLISH [MQTT-2.2.2-1] [MQTT-2.2.2-2]. PUBLISH may not have
 * QoS 3 [MQTT-3.3.1-4] nor DUP with QoS 0 [MQTT-3.3.1-2] (a 5.0 rule that
 * is applied to 3.1.1 as well: a QoS 0 message is never redelivered).
 *
 * Those reserved-bit rules are 3.1.1's. MQTT 3.1 gives every packet DUP,
 * QoS and RETAIN bits and only says which are "not used": PUBREL,
 * SUBSCRIBE and UNSUBSCRIBE travel at QoS 1 and set DUP when re-sent, and
 * the flags of the other types are ignored, as mosquitto ignores them for
 * 3.1 clients. version 0 (not known yet: the first packet) applies the
 * 3.1.1 rules, except to CONNECT, whose body names its version:
 * decode_connect() checks those flags once it knows it.
 */
static inline bool flags_ok(unsigned type, uint8_t flags, uint8_t version)
{
	if (type == TERN_PUBLISH) {
		unsigned qos = (flags >> 1) & 3u;
		return qos != 3 && !(qos == 0 && (flags & 0x8u));
	}
	if (version == TERN_V31) {
		if (type == TERN_PUBREL || type == TERN_SUBSCRIBE || type == TERN_UNSUBSCRIBE)
			return (flags & 0x6u) == 0x2u;
		return true;
	}
	switch (type) {
	case TERN_CONNECT:
		return version == 0 || flags == 0;
	case TERN_PUBREL:
	case TERN_SUBSCRIBE:
	case TERN_UNSUBSCRIBE:
		return flags == 0x2;
	default:
		return flags == 0;
	}
}

enum tern_err tern_decode_fixed_header_v(const uint8_t *buf, size_t len, uint32_t max_size,
                                         uint8_t version, struct tern_fixed_header *fh)
{
	uint32_t remaining, used;

	if (len < 1)
		return TERN_E_INCOMPLETE;
	unsigned type = buf[0] >> 4;
	uint8_t flags = buf[0] & 0x0Fu;
	/* Checked before the length arrives: one bad byte is enough. */
	if (type == 0 || !flags_ok(type, flags, version))
		return TERN_E_MALFORMED;
	if (len >= 2 && buf[1] < 0x80u) {
		/* A one-byte length (below 128 bytes), the common case. */
		remaining = buf[1];
		used = 1;
	} else {
		enum tern_err e = tern__vbi_decode(buf + 1, len - 1, &remaining, &used);
		if (e != TERN_OK)
			return e;
	}
	uint64_t total = 1u + (uint64_t)used + remaining;
	if (max_size != 0 && total > max_size)
		return TERN_E_TOO_LARGE;
	fh->type = (enum tern_packet_type)type;
	fh->flags = flags;
	fh->remaining = remaining;
	fh->header_len = 1u + used;
	return TERN_OK;
}

enum tern_err tern_decode_fixed_header(const uint8_t *buf, size_t len, uint32_t max_size,
                                       struct tern_fixed_header *fh)
{
	return tern_decode_fixed_header_v(buf, len, max_size, 0, fh);
}

/* Reads a packet identifier, which must not be 0 [MQTT-2.3.1-1]. */
static TERN_MUST_CHECK enum tern_err rd_packet_id(struct tern__rd *r, uint16_t *id)
{
	enum tern_err e = tern__rd_u16(r, id);
	if (e != TERN_OK)
		return e;
	return *id == 0 ? TERN_E_PROTOCOL : TERN_OK;
}

/* Bytes left after the last field make the packet malformed. */
static TERN_MUST_CHECK enum tern_err rd_end(const struct tern__rd *r)
{
	return tern__rd_left(r) == 0 ? TERN_OK : TERN_E_MALFORMED;
}

/* Reads the protocol name and level and, when the pair is one we speak,
 * sets c->version; TERN_E_UNSUPPORTED_VERSION otherwise, with the level
 * read (3.1.2.1, 3.1.2.2). */
static TERN_MUST_CHECK enum tern_err rd_protocol(struct tern__rd *r, struct tern_connect *c)
{
	struct tern_bytes name;
	uint8_t level;
	enum tern_err e;

	if ((e = tern__rd_bin(r, &name)) != TERN_OK || (e = tern__rd_u8(r, &level)) != TERN_OK)
		return e;
	/* Bit 0x80 of a 3.1 / 3.1.1 level: a bridge (mosquitto's
	 * try_private, which ternd's bridges send too). mosquitto takes such
	 * a CONNECT as from a bridge rather than refuse an unknown level, and
	 * its bridges retry without the bit only after a refusal: taken so
	 * (handle_subscribe.c gives its subscriptions No Local and Retain As
	 * Published). Not for 5.0, whose bridges ask for those per
	 * subscription. */
	uint8_t plain = level & 0x7fu;
	c->bridge = (level & 0x80u) && (plain == TERN_V31 || plain == TERN_V311);
	if (c->bridge)
		level = plain;
	c->version = level;
	if (name.len == 6 && memcmp(name.data, "MQIsdp", 6) == 0 && level == TERN_V31)
		return TERN_OK;
	if (name.len == 4 && memcmp(name.data, "MQTT", 4) == 0 &&
	    (level == TERN_V311 || level == TERN_V5))
		return TERN_OK;
	return TERN_E_UNSUPPORTED_VERSION;
}

/* CONNECT (3.1). */
static TERN_MUST_CHECK enum tern_err decode_connect(struct tern__rd *r, uint8_t fh_flags,
                                                    struct tern_connect *c)
{
	uint8_t flags;
	enum tern_err e;
	enum tern__topic_scan will_scan = TERN__TOPIC_OK;

	if ((e = rd_protocol(r, c)) != TERN_OK)
		return e;
	bool v5 = c->version == TERN_V5;
	if (!flags_ok(TERN_CONNECT, fh_flags, c->version))
		return TERN_E_MALFORMED; /* [MQTT-2.2.2-2], not for 3.1 */
	if ((e = tern__rd_u8(r, &flags)) != TERN_OK ||
	    (e = tern__rd_u16(r, &c->keep_alive)) != TERN_OK)
		return e;
	/* Reserved since 3.1.1 [MQTT-3.1.2-3]; 3.1 left it unused, and old
	 * 3.1 clients send it set. */
	if ((flags & 0x01u) && c->version != TERN_V31)
		return TERN_E_MALFORMED;
	c->clean_start = flags & 0x02u;
	c->will = flags & 0x04u;
	c->will_qos = (flags >> 3) & 3u;
	c->will_retain = flags & 0x20u;
	c->has_password = flags & 0x40u;
	c->has_username = flags & 0x80u;
	if (c->will_qos == 3)
		return TERN_E_MALFORMED; /* [MQTT-3.1.2-14] */
	if (!c->will && (c->will_qos != 0 || c->will_retain))
		return TERN_E_MALFORMED; /* [MQTT-3.1.2-11] [MQTT-3.1.2-13] [MQTT-3.1.2-15] */
	if (!v5 && c->has_password && !c->has_username)
		return TERN_E_MALFORMED; /* 3.1.1 [MQTT-3.1.2-22]; 5.0 allows it */
	if (v5 && (e = tern__props_decode(r, TERN_CONNECT, &c->props)) != TERN_OK)
		return e;
	/* Client id, will topic and username name things: no control
	 * characters (3.1.1 section 1.5.3, 5.0 section 1.5.4). The will
	 * payload and the password are binary. */
	if ((e = tern__rd_name(r, &c->client_id)) != TERN_OK)
		return e;
	if (c->will) {
		if (v5 && (e = tern__props_decode(r, TERN__WILL, &c->will_props)) != TERN_OK)
			return e;
		if ((e = tern__rd_bin(r, &c->will_topic)) != TERN_OK)
			return e;
		will_scan = tern__topic_name_scan(c->will_topic.data, c->will_topic.len);
		if (will_scan == TERN__TOPIC_MALFORMED)
			return TERN_E_MALFORMED;
		if ((e = tern__rd_bin(r, &c->will_payload)) != TERN_OK)
			return e;
	}
	if (c->has_username && (e = tern__rd_name(r, &c->username)) != TERN_OK)
		return e;
	if (c->has_password && (e = tern__rd_bin(r, &c->password)) != TERN_OK)
		return e;
	if ((e = rd_end(r)) != TERN_OK)
		return e;
	/* The will topic is a topic name [MQTT-3.1.3-11]; checked last so
	 * that a malformed packet is reported as such. */
	if (c->will && (c->will_topic.len == 0 || will_scan == TERN__TOPIC_WILDCARD))
		return TERN_E_TOPIC_NAME;
	return TERN_OK;
}

/* CONNACK (3.2). */
static TERN_MUST_CHECK enum tern_err decode_connack(struct tern__rd *r, uint8_t version,
                                                    struct tern_connack *c)
{
	uint8_t flags;
	enum tern_err e;

	if ((e = tern__rd_u8(r, &flags)) != TERN_OK || (e = tern__rd_u8(r, &c->reason)) != TERN_OK)
		return e;
	if (flags & 0xFEu)
		return TERN_E_MALFORMED; /* reserved [MQTT-3.2.2-1] */
	c->session_present = flags & 1u;
	if (version == TERN_V5 && (e = tern__props_decode(r, TERN_CONNACK, &c->props)) != TERN_OK)
		return e;
	if ((e = rd_end(r)) != TERN_OK)
		return e;
	if (!tern__reason_valid(TERN_CONNACK, version, c->reason))
		return TERN_E_PROTOCOL;
	/* A refused connection has no session [MQTT-3.2.2-4] (3.1.1),
	 * [MQTT-3.2.2-6] (5.0). */
	if (c->session_present && c->reason != 0)
		return TERN_E_PROTOCOL;
	return TERN_OK;
}

/* PUBLISH (3.3). */
static TERN_MUST_CHECK enum tern_err decode_publish(struct tern__rd *r, uint8_t flags,
                                                    uint8_t version, struct tern_publish *p)
{
	enum tern_err e;

	p->retain = flags & 1u;
	p->qos = (flags >> 1) & 3u;
	p->dup = flags & 0x8u;
	/* The topic's bytes in one pass: ill-formed UTF-8 [MQTT-1.5.4-1], a
	 * U+0000 [MQTT-1.5.4-2] or a control character is a Malformed Packet
	 * at once; a wildcard [MQTT-3.3.2-2] is reported below, once the
	 * rest has been read. */
	if ((e = tern__rd_bin(r, &p->topic)) != TERN_OK)
		return e;
	enum tern__topic_scan scan = tern__topic_name_scan(p->topic.data, p->topic.len);
	if (scan == TERN__TOPIC_MALFORMED)
		return TERN_E_MALFORMED;
	if (p->qos > 0 && (e = rd_packet_id(r, &p->packet_id)) != TERN_OK)
		return e;
	if (version == TERN_V5 && (e = tern__props_decode(r, TERN_PUBLISH, &p->props)) != TERN_OK)
		return e;
	p->payload.data = r->p + r->pos;
	p->payload.len = tern__rd_left(r);
	r->pos = r->len;
	if (p->topic.len == 0) {
		/* 5.0 sends an empty topic with a Topic Alias (3.3.2.3.4); it
		 * is a Protocol Error without one. 3.1.1: [MQTT-4.7.3-1]. */
		if (version != TERN_V5)
			return TERN_E_TOPIC_NAME;
		if (!(p->props.present & TERN_PROP_BIT(TERN_PROP_TOPIC_ALIAS)))
			return TERN_E_PROTOCOL;
		return TERN_OK;
	}
	/* No wildcards in a topic name [MQTT-3.3.2-2]. */
	return scan == TERN__TOPIC_WILDCARD ? TERN_E_TOPIC_NAME : TERN_OK;
}

/* PUBACK, PUBREC, PUBREL, PUBCOMP (3.4 - 3.7). In 5.0 the reason code and
 * the properties may be left out: remaining length 2 means success and no
 * properties, 3 means no properties (3.4.2.1, 3.4.2.2.1). */
static TERN_MUST_CHECK enum tern_err decode_ack(struct tern__rd *r, int type, uint8_t version,
                                                struct tern_ack *a)
{
	enum tern_err e;

	if ((e = rd_packet_id(r, &a->packet_id)) != TERN_OK)
		return e;
	if (version == TERN_V5) {
		if (tern__rd_left(r) > 0 && (e = tern__rd_u8(r, &a->reason)) != TERN_OK)
			return e;
		if (tern__rd_left(r) > 0 && (e = tern__props_decode(r, type, &a->props)) != TERN_OK)
			return e;
	}
	if ((e = rd_end(r)) != TERN_OK)
		return e;
	return tern__reason_valid(type, version, a->reason) ? TERN_OK : TERN_E_PROTOCOL;
}

/* What a topic filter that tern__topic_filter_ok() refused is: a
 * "$share/..." filter that is well-formed as a filter but not shaped as a
 * shared subscription, "$share/{ShareName}/{filter}" [MQTT-4.8.2-1]
 * [MQTT-4.8.2-2], breaks a rule of the protocol, not the grammar: a
 * Protocol Error (mosquitto reports it so). Any other is TERN_E_TOPIC_FILTER,
 * which the broker reports as malformed. */
static TERN_MUST_CHECK enum tern_err filter_error(struct tern_bytes f)
{
	return tern__topic_filter_share_misshaped(f.data, f.len) ? TERN_E_PROTOCOL
	                                                         : TERN_E_TOPIC_FILTER;
}

/* SUBSCRIBE (3.8). The entries are validated here and walked later by
 * tern_subscribe_next(). */
static TERN_MUST_CHECK enum tern_err decode_subscribe(struct tern__rd *r, uint8_t version,
                                                      struct tern_subscribe *s)
{
	enum tern_err e, deferred = TERN_OK;
	bool v5 = version == TERN_V5;

	if ((e = rd_packet_id(r, &s->packet_id)) != TERN_OK)
		return e;
	if (v5 && (e = tern__props_decode(r, TERN_SUBSCRIBE, &s->props)) != TERN_OK)
		return e;
	s->raw.data = r->p + r->pos;
	s->raw.len = tern__rd_left(r);
	while (tern__rd_left(r) > 0) {
		struct tern_bytes f;
		uint8_t opts;
		if ((e = tern__rd_name(r, &f)) != TERN_OK || (e = tern__rd_u8(r, &opts)) != TERN_OK)
			return e;
		if (!v5) {
			/* Upper 6 bits reserved, QoS 0..2 [MQTT-3-8.3-4]. */
			if ((opts & 0xFCu) || (opts & 3u) == 3)
				return TERN_E_MALFORMED;
		} else {
			if (opts & 0xC0u)
				return TERN_E_MALFORMED; /* reserved [MQTT-3.8.3-5] */
			/* Maximum QoS 3 and Retain Handling 3 are Protocol
			 * Errors (3.8.3.1). */
			if ((opts & 3u) == 3 || ((opts >> 4) & 3u) == 3)
				return TERN_E_PROTOCOL;
		}
		struct tern_bytes group, rest;
		if (!tern__topic_filter_ok(f.data, f.len)) {
			if (deferred == TERN_OK)
				deferred = filter_error(f);
		} else if (v5 && (opts & 0x04u) && tern_topic_filter_share(f, &group, &rest)) {
			return TERN_E_PROTOCOL; /* No Local on a shared sub [MQTT-3.8.3-4] */
		}
		s->count++;
	}
	if (s->count == 0)
		return TERN_E_PROTOCOL; /* [MQTT-3.8.3-3] */
	return deferred;
}

/* UNSUBSCRIBE (3.10). */
static TERN_MUST_CHECK enum tern_err decode_unsubscribe(struct tern__rd *r, uint8_t version,
                                                        struct tern_unsubscribe *u)
{
	enum tern_err e, deferred = TERN_OK;

	if ((e = rd_packet_id(r, &u->packet_id)) != TERN_OK)
		return e;
	if (version == TERN_V5 &&
	    (e = tern__props_decode(r, TERN_UNSUBSCRIBE, &u->props)) != TERN_OK)
		return e;
	u->raw.data = r->p + r->pos;
	u->raw.len = tern__rd_left(r);
	while (tern__rd_left(r) > 0) {
		struct tern_bytes f;
		if ((e = tern__rd_name(r, &f)) != TERN_OK)
			return e;
		if (!tern__topic_filter_ok(f.data, f.len) && deferred == TERN_OK)
			deferred = filter_error(f);
		u->count++;
	}
	if (u->count == 0)
		return TERN_E_PROTOCOL; /* [MQTT-3.10.3-2] */
	return deferred;
}

/* SUBACK (3.9) and UNSUBACK (3.11). A 3.1.1 UNSUBACK is only a packet
 * identifier; the others carry one reason code per filter, at least one. */
static TERN_MUST_CHECK enum tern_err decode_subres(struct tern__rd *r, int type, uint8_t version,
                                                   struct tern_subres *s)
{
	enum tern_err e;

	if ((e = rd_packet_id(r, &s->packet_id)) != TERN_OK)
		return e;
	if (version == TERN_V5 && (e = tern__props_decode(r, type, &s->props)) != TERN_OK)
		return e;
	if (type == TERN_UNSUBACK && version != TERN_V5)
		return rd_end(r);
	s->reasons = r->p + r->pos;
	s->count = tern__rd_left(r);
	r->pos = r->len;
	if (s->count == 0)
		return TERN_E_PROTOCOL;
	for (uint32_t i = 0; i < s->count; i++)
		if (!tern__reason_valid(type, version, s->reasons[i]))
			return TERN_E_PROTOCOL;
	return TERN_OK;
}

/* DISCONNECT (3.14) and AUTH (3.15). In 5.0 an empty body means reason 0
 * and no properties, one byte means no properties (3.14.2.1, 3.15.2.1).
 * A 3.1.1 DISCONNECT is empty. */
static TERN_MUST_CHECK enum tern_err decode_reasoned(struct tern__rd *r, int type, uint8_t version,
                                                     struct tern_reasoned *d)
{
	enum tern_err e;

	if (version == TERN_V5) {
		if (tern__rd_left(r) > 0 && (e = tern__rd_u8(r, &d->reason)) != TERN_OK)
			return e;
		if (tern__rd_left(r) > 0 && (e = tern__props_decode(r, type, &d->props)) != TERN_OK)
			return e;
	}
	if ((e = rd_end(r)) != TERN_OK)
		return e;
	return tern__reason_valid(type, version, d->reason) ? TERN_OK : TERN_E_PROTOCOL;
}

/* Bytes of struct tern_packet's union that a packet of this type fills
 * (all of it for a type that is not one). */
static size_t union_member_size(enum tern_packet_type type)
{
	struct tern_packet *p = NULL;
	switch (type) {
	case TERN_CONNECT:
		return sizeof(p->u.connect);
	case TERN_CONNACK:
		return sizeof(p->u.connack);
	case TERN_PUBLISH:
		return sizeof(p->u.publish);
	case TERN_PUBACK:
	case TERN_PUBREC:
	case TERN_PUBREL:
	case TERN_PUBCOMP:
		return sizeof(p->u.ack);
	case TERN_SUBSCRIBE:
		return sizeof(p->u.subscribe);
	case TERN_SUBACK:
	case TERN_UNSUBACK:
		return sizeof(p->u.subres);
	case TERN_UNSUBSCRIBE:
		return sizeof(p->u.unsubscribe);
	case TERN_PINGREQ:
	case TERN_PINGRESP:
		return 0;
	case TERN_DISCONNECT:
	case TERN_AUTH:
		return sizeof(p->u.reasoned);
	}
	return sizeof(p->u);
}

enum tern_err tern_decode_packet(const struct tern_fixed_header *fh, const uint8_t *body,
                                 uint8_t version, struct tern_packet *out)
{
	static const uint8_t empty[1];

	if (fh == NULL || (body == NULL && fh->remaining > 0)) {
		memset(out, 0, sizeof(*out));
		return TERN_E_INVALID;
	}
	/* Only what the type uses is cleared: a PUBACK need not clear the
	 * bytes a CONNECT takes. */
	out->type = fh->type;
	memset(&out->u, 0, union_member_size(fh->type));
	if ((int)fh->type < TERN_CONNECT || (int)fh->type > TERN_AUTH || fh->flags > 0xF ||
	    !flags_ok(fh->type, fh->flags, fh->type == TERN_CONNECT ? 0 : version))
		return TERN_E_MALFORMED;
	if (fh->type != TERN_CONNECT && (version < TERN_V31 || version > TERN_V5))
		return TERN_E_INVALID;
	if (fh->type == TERN_AUTH && version != TERN_V5)
		return TERN_E_MALFORMED; /* packet type 15 is reserved before 5.0 */

	struct tern__rd r = {body != NULL ? body : empty, fh->remaining, 0};
	switch (fh->type) {
	case TERN_CONNECT:
		return decode_connect(&r, fh->flags, &out->u.connect);
	case TERN_CONNACK:
		return decode_connack(&r, version, &out->u.connack);
	case TERN_PUBLISH:
		return decode_publish(&r, fh->flags, version, &out->u.publish);
	case TERN_PUBACK:
	case TERN_PUBREC:
	case TERN_PUBREL:
	case TERN_PUBCOMP:
		return decode_ack(&r, fh->type, version, &out->u.ack);
	case TERN_SUBSCRIBE:
		return decode_subscribe(&r, version, &out->u.subscribe);
	case TERN_SUBACK:
	case TERN_UNSUBACK:
		return decode_subres(&r, fh->type, version, &out->u.subres);
	case TERN_UNSUBSCRIBE:
		return decode_unsubscribe(&r, version, &out->u.unsubscribe);
	case TERN_PINGREQ:
	case TERN_PINGRESP:
		return rd_end(&r);
	case TERN_DISCONNECT:
	case TERN_AUTH:
		return decode_reasoned(&r, fh->type, version, &out->u.reasoned);
	}
	return TERN_E_MALFORMED;
}

/* Walks entries validated by decode_subscribe(); the option bits are read
 * with the 5.0 layout, which leaves no_local etc. 0 for a 3.1.1 packet
 * (whose upper bits were checked to be 0). */
bool tern_subscribe_next(const struct tern_subscribe *s, size_t *cursor, struct tern_sub_entry *e)
{
	if (s->raw.data == NULL || *cursor >= s->raw.len)
		return false;
	struct tern__rd r = {s->raw.data, s->raw.len, (uint32_t)*cursor};
	uint8_t opts;
	if (tern__rd_bin(&r, &e->filter) != TERN_OK || tern__rd_u8(&r, &opts) != TERN_OK)
		return false;
	e->qos = opts & 3u;
	e->no_local = opts & 0x04u;
	e->retain_as_published = opts & 0x08u;
	e->retain_handling = (opts >> 4) & 3u;
	*cursor = r.pos;
	return true;
}

bool tern_unsubscribe_next(const struct tern_unsubscribe *u, size_t *cursor, struct tern_bytes *f)
{
	if (u->raw.data == NULL || *cursor >= u->raw.len)
		return false;
	struct tern__rd r = {u->raw.data, u->raw.len, (uint32_t)*cursor};
	if (tern__rd_bin(&r, f) != TERN_OK)
		return false;
	*cursor = r.pos;
	return true;
}
