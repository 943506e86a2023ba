/*
 * encode.c - the encoders: one function per packet type writes the
 * variable header and payload; tern_encode_packet() puts the fixed header
 * in front.
 *
 * Each body writer runs twice: first with a counting writer (buf == NULL),
 * which validates the struct and measures the body, then for real once the
 * remaining length is known and the caller's buffer is known to be large
 * enough. So tern_packet_size() is exactly the encoder's output, and an
 * encoder never leaves half a packet behind on TERN_E_BUFFER.
 *
 * The encoder refuses (TERN_E_INVALID) what the decoder would refuse, so
 * whatever tern_encode_packet() accepts decodes again: the fuzzer checks
 * that. For 3.1 / 3.1.1 properties and v5-only fields are ignored. The 5.0
 * short forms are used whenever they say the same thing: an acknowledgement
 * with reason 0 and no properties is just its packet identifier, a
 * DISCONNECT or AUTH with reason 0 and no properties is empty.
 */
#include "proto/proto_internal.h"

/* True if b may be written as an MQTT string. */
static bool str_ok(struct tern_bytes b)
{
	return (b.len == 0 || b.data != NULL) && tern_utf8_valid(b.data, b.len);
}

/* True if b may be written as a string that names something: no control
 * characters either, as the decoder requires (tern_utf8_name_valid()). */
static bool name_ok(struct tern_bytes b)
{
	return (b.len == 0 || b.data != NULL) && tern_utf8_name_valid(b.data, b.len);
}

/* True if b may be written as MQTT binary data. */
static bool bin_ok(struct tern_bytes b)
{
	return b.len <= 65535u && (b.len == 0 || b.data != NULL);
}

/* Checks and writes a 5.0 property block for packet type ptype. */
static TERN_MUST_CHECK enum tern_err wr_props(struct tern__wr *w, const struct tern_props *p,
                                              int ptype)
{
	enum tern_err e = tern__props_check(p, ptype);
	if (e != TERN_OK)
		return e;
	tern__props_write(w, p);
	return TERN_OK;
}

/* CONNECT (3.1): the version written is `version`; c->version may be 0 or
 * must agree with it. */
static TERN_MUST_CHECK enum tern_err body_connect(struct tern__wr *w, const struct tern_connect *c,
                                                  uint8_t version)
{
	bool v5 = version == TERN_V5;
	enum tern_err e;

	if (c->version != 0 && c->version != version)
		return TERN_E_INVALID;
	if (c->will_qos > 2 || (!c->will && (c->will_qos != 0 || c->will_retain)))
		return TERN_E_INVALID;
	if (!v5 && c->has_password && !c->has_username)
		return TERN_E_INVALID;
	if (!name_ok(c->client_id) || (c->has_username && !name_ok(c->username)) ||
	    (c->has_password && !bin_ok(c->password)))
		return TERN_E_INVALID;
	if (c->will && (!bin_ok(c->will_payload) ||
	                !tern__topic_name_ok(c->will_topic.data, c->will_topic.len)))
		return TERN_E_INVALID;

	if (version == TERN_V31)
		tern__wr_bin(w, (struct tern_bytes){(const uint8_t *)"MQIsdp", 6});
	else
		tern__wr_bin(w, (struct tern_bytes){(const uint8_t *)"MQTT", 4});
	tern__wr_u8(w, (uint8_t)(version | (c->bridge ? 0x80u : 0)));
	uint8_t flags = (uint8_t)((c->clean_start ? 0x02u : 0) | (c->will ? 0x04u : 0) |
	                          (uint8_t)(c->will_qos << 3) | (c->will_retain ? 0x20u : 0) |
	                          (c->has_password ? 0x40u : 0) | (c->has_username ? 0x80u : 0));
	tern__wr_u8(w, flags);
	tern__wr_u16(w, c->keep_alive);
	if (v5 && (e = wr_props(w, &c->props, TERN_CONNECT)) != TERN_OK)
		return e;
	tern__wr_bin(w, c->client_id);
	if (c->will) {
		if (v5 && (e = wr_props(w, &c->will_props, TERN__WILL)) != TERN_OK)
			return e;
		tern__wr_bin(w, c->will_topic);
		tern__wr_bin(w, c->will_payload);
	}
	if (c->has_username)
		tern__wr_bin(w, c->username);
	if (c->has_password)
		tern__wr_bin(w, c->password);
	return TERN_OK;
}

/* CONNACK (3.2). */
static TERN_MUST_CHECK enum tern_err body_connack(struct tern__wr *w, const struct tern_connack *c,
                                                  uint8_t version)
{
	if (!tern__reason_valid(TERN_CONNACK, version, c->reason) ||
	    (c->session_present && c->reason != 0))
		return TERN_E_INVALID;
	tern__wr_u8(w, c->session_present ? 1 : 0);
	tern__wr_u8(w, c->reason);
	if (version == TERN_V5)
		return wr_props(w, &c->props, TERN_CONNACK);
	return TERN_OK;
}

/* True when a PUBLISH's QoS, DUP and packet id can be sent together. */
static bool publish_flags_ok(const struct tern_publish *p)
{
	return p->qos <= 2 && !(p->dup && p->qos == 0) && !(p->qos > 0 && p->packet_id == 0);
}

/* The fixed-header flags of a PUBLISH that publish_flags_ok() accepted. */
static uint8_t publish_flags(const struct tern_publish *p)
{
	return (uint8_t)((p->dup ? 0x8 : 0) | p->qos << 1 | (p->retain ? 1 : 0));
}

/* PUBLISH (3.3) variable header; the payload is written by the caller. */
static TERN_MUST_CHECK enum tern_err
body_publish_header(struct tern__wr *w, const struct tern_publish *p, uint8_t version)
{
	if (!publish_flags_ok(p))
		return TERN_E_INVALID;
	if (p->payload.len > 0 && p->payload.data == NULL)
		return TERN_E_INVALID;
	if (p->topic.len == 0) {
		if (version != TERN_V5 ||
		    !(p->props.present & TERN_PROP_BIT(TERN_PROP_TOPIC_ALIAS)))
			return TERN_E_INVALID;
	} else if (!tern__topic_name_ok(p->topic.data, p->topic.len)) {
		return TERN_E_INVALID; /* an MQTT string and a topic name, one pass */
	}
	tern__wr_bin(w, p->topic);
	if (p->qos > 0)
		tern__wr_u16(w, p->packet_id);
	if (version == TERN_V5)
		return wr_props(w, &p->props, TERN_PUBLISH);
	return TERN_OK;
}

/* PUBACK, PUBREC, PUBREL, PUBCOMP (3.4 - 3.7). */
static TERN_MUST_CHECK enum tern_err body_ack(struct tern__wr *w, int type,
                                              const struct tern_ack *a, uint8_t version)
{
	if (a->packet_id == 0)
		return TERN_E_INVALID;
	tern__wr_u16(w, a->packet_id);
	if (version != TERN_V5)
		return TERN_OK;
	if (!tern__reason_valid(type, version, a->reason))
		return TERN_E_INVALID;
	bool no_props = tern_props_size(&a->props) == 0;
	if (a->reason == 0 && no_props)
		return TERN_OK;
	tern__wr_u8(w, a->reason);
	if (no_props)
		return TERN_OK;
	return wr_props(w, &a->props, type);
}

/* SUBSCRIBE (3.8). */
static TERN_MUST_CHECK enum tern_err body_subscribe(struct tern__wr *w,
                                                    const struct tern_subscribe *s, uint8_t version)
{
	bool v5 = version == TERN_V5;
	enum tern_err e;

	if (s->packet_id == 0 || s->count == 0 || s->entries == NULL)
		return TERN_E_INVALID;
	tern__wr_u16(w, s->packet_id);
	if (v5 && (e = wr_props(w, &s->props, TERN_SUBSCRIBE)) != TERN_OK)
		return e;
	for (uint32_t i = 0; i < s->count; i++) {
		const struct tern_sub_entry *en = &s->entries[i];
		struct tern_bytes group, rest;
		if (!str_ok(en->filter) ||
		    !tern__topic_filter_ok(en->filter.data, en->filter.len) || en->qos > 2)
			return TERN_E_INVALID;
		uint8_t opts = en->qos;
		if (v5) {
			if (en->retain_handling > 2 ||
			    (en->no_local && tern_topic_filter_share(en->filter, &group, &rest)))
				return TERN_E_INVALID;
			opts |= (uint8_t)((en->no_local ? 0x04u : 0) |
			                  (en->retain_as_published ? 0x08u : 0) |
			                  (unsigned)(en->retain_handling << 4));
		}
		tern__wr_bin(w, en->filter);
		tern__wr_u8(w, opts);
	}
	return TERN_OK;
}

/* UNSUBSCRIBE (3.10). */
static TERN_MUST_CHECK enum tern_err
body_unsubscribe(struct tern__wr *w, const struct tern_unsubscribe *u, uint8_t version)
{
	enum tern_err e;

	if (u->packet_id == 0 || u->count == 0 || u->filters == NULL)
		return TERN_E_INVALID;
	tern__wr_u16(w, u->packet_id);
	if (version == TERN_V5 && (e = wr_props(w, &u->props, TERN_UNSUBSCRIBE)) != TERN_OK)
		return e;
	for (uint32_t i = 0; i < u->count; i++) {
		struct tern_bytes f = u->filters[i];
		if (!str_ok(f) || !tern__topic_filter_ok(f.data, f.len))
			return TERN_E_INVALID;
		tern__wr_bin(w, f);
	}
	return TERN_OK;
}

/* SUBACK (3.9) and UNSUBACK (3.11); a 3.1.1 UNSUBACK has no reasons. */
static TERN_MUST_CHECK enum tern_err body_subres(struct tern__wr *w, int type,
                                                 const struct tern_subres *s, uint8_t version)
{
	enum tern_err e;

	if (s->packet_id == 0)
		return TERN_E_INVALID;
	tern__wr_u16(w, s->packet_id);
	if (version == TERN_V5 && (e = wr_props(w, &s->props, type)) != TERN_OK)
		return e;
	if (type == TERN_UNSUBACK && version != TERN_V5)
		return TERN_OK;
	if (s->count == 0 || s->reasons == NULL)
		return TERN_E_INVALID;
	for (uint32_t i = 0; i < s->count; i++)
		if (!tern__reason_valid(type, version, s->reasons[i]))
			return TERN_E_INVALID;
	tern__wr_bytes(w, s->reasons, s->count);
	return TERN_OK;
}

/* DISCONNECT (3.14) and AUTH (3.15). */
static TERN_MUST_CHECK enum tern_err body_reasoned(struct tern__wr *w, int type,
                                                   const struct tern_reasoned *d, uint8_t version)
{
	if (version != TERN_V5)
		return type == TERN_AUTH ? TERN_E_INVALID : TERN_OK;
	if (!tern__reason_valid(type, version, d->reason))
		return TERN_E_INVALID;
	bool no_props = tern_props_size(&d->props) == 0;
	if (d->reason == 0 && no_props)
		return TERN_OK;
	tern__wr_u8(w, d->reason);
	if (no_props)
		return TERN_OK;
	return wr_props(w, &d->props, type);
}

/* Writes (or counts) the body of p, including a PUBLISH payload, and sets
 * *flags to the low nibble of the first byte. */
static TERN_MUST_CHECK enum tern_err body(struct tern__wr *w, const struct tern_packet *p,
                                          uint8_t version, uint8_t *flags)
{
	enum tern_err e;

	if (version < TERN_V31 || version > TERN_V5)
		return TERN_E_INVALID;
	*flags = 0;
	switch (p->type) {
	case TERN_CONNECT:
		return body_connect(w, &p->u.connect, version);
	case TERN_CONNACK:
		return body_connack(w, &p->u.connack, version);
	case TERN_PUBLISH:
		if ((e = body_publish_header(w, &p->u.publish, version)) != TERN_OK)
			return e;
		*flags = publish_flags(&p->u.publish);
		tern__wr_bytes(w, p->u.publish.payload.data, p->u.publish.payload.len);
		return TERN_OK;
	case TERN_PUBACK:
	case TERN_PUBREC:
	case TERN_PUBCOMP:
		return body_ack(w, p->type, &p->u.ack, version);
	case TERN_PUBREL:
		*flags = 0x2;
		return body_ack(w, p->type, &p->u.ack, version);
	case TERN_SUBSCRIBE:
		*flags = 0x2;
		return body_subscribe(w, &p->u.subscribe, version);
	case TERN_UNSUBSCRIBE:
		*flags = 0x2;
		return body_unsubscribe(w, &p->u.unsubscribe, version);
	case TERN_SUBACK:
	case TERN_UNSUBACK:
		return body_subres(w, p->type, &p->u.subres, version);
	case TERN_PINGREQ:
	case TERN_PINGRESP:
		return TERN_OK;
	case TERN_DISCONNECT:
	case TERN_AUTH:
		return body_reasoned(w, p->type, &p->u.reasoned, version);
	}
	return TERN_E_INVALID;
}

/* Measures the body of p; TERN_E_INVALID also when it is too long for the
 * remaining length. */
static TERN_MUST_CHECK enum tern_err measure(const struct tern_packet *p, uint8_t version,
                                             size_t *body_len, uint8_t *flags)
{
	struct tern__wr w = {0};
	enum tern_err e = body(&w, p, version, flags);
	if (e != TERN_OK)
		return e;
	if (w.len > TERN_VBI_MAX)
		return TERN_E_INVALID;
	*body_len = w.len;
	return TERN_OK;
}

size_t tern_packet_size(const struct tern_packet *p, uint8_t version)
{
	size_t n;
	uint8_t flags;
	if (measure(p, version, &n, &flags) != TERN_OK)
		return 0;
	return 1u + tern__vbi_size((uint32_t)n) + n;
}

/* tern_encode_packet() for a PUBLISH: the header as
 * tern_encode_publish_header() writes it (a plain one checked and measured
 * in one pass, not once to measure and once to write), then the payload.
 * The same bytes and errors as the generic path. */
static TERN_MUST_CHECK enum tern_err encode_publish(const struct tern_publish *pub, uint8_t version,
                                                    uint8_t *out, size_t cap, size_t *written);

enum tern_err tern_encode_packet(const struct tern_packet *p, uint8_t version, uint8_t *out,
                                 size_t cap, size_t *written)
{
	size_t n;
	uint8_t flags;
	if (p->type == TERN_PUBLISH)
		return encode_publish(&p->u.publish, version, out, cap, written);
	enum tern_err e = measure(p, version, &n, &flags);
	if (e != TERN_OK)
		return e;
	size_t total = 1u + tern__vbi_size((uint32_t)n) + n;
	if (out == NULL || total > cap)
		return TERN_E_BUFFER;
	struct tern__wr w = {out, cap, 0, false};
	tern__wr_u8(&w, (uint8_t)(p->type << 4 | flags));
	tern__wr_vbi(&w, (uint32_t)n);
	if ((e = body(&w, p, version, &flags)) != TERN_OK)
		return e;
	if (w.overflow || w.len != total)
		return TERN_E_BUFFER; /* cannot happen: measured above */
	*written = w.len;
	return TERN_OK;
}

/* Measures the PUBLISH variable header; the remaining length adds the
 * payload. */
static TERN_MUST_CHECK enum tern_err measure_publish(const struct tern_publish *pub,
                                                     uint8_t version, size_t *hdr_body,
                                                     uint32_t *remaining)
{
	struct tern__wr w = {0};
	if (version < TERN_V31 || version > TERN_V5)
		return TERN_E_INVALID;
	enum tern_err e = body_publish_header(&w, pub, version);
	if (e != TERN_OK)
		return e;
	if (w.len > TERN_VBI_MAX || pub->payload.len > TERN_VBI_MAX - w.len)
		return TERN_E_INVALID;
	*hdr_body = w.len;
	*remaining = (uint32_t)(w.len + pub->payload.len);
	return TERN_OK;
}

/* The PUBLISH a broker sends most: no properties (3.1 / 3.1.1, or 5.0 with
 * none). Checked and measured in one pass, without the generic writer;
 * anything else, valid or not, takes the generic path. */
static bool publish_plain(const struct tern_publish *p, uint8_t version, size_t *hdr_body,
                          uint32_t *remaining)
{
	if (version < TERN_V31 || version > TERN_V5 ||
	    (version == TERN_V5 &&
	     (p->props.present || p->props.n_sub_ids || p->props.n_user || p->props.user_raw.len)))
		return false;
	if (!publish_flags_ok(p) || (p->payload.len && !p->payload.data) ||
	    !tern__topic_name_ok(p->topic.data, p->topic.len))
		return false;
	size_t n = 2u + p->topic.len + (p->qos ? 2u : 0u) + (version == TERN_V5 ? 1u : 0u);
	if (p->payload.len > TERN_VBI_MAX - n)
		return false;
	*hdr_body = n;
	*remaining = (uint32_t)(n + p->payload.len);
	return true;
}

size_t tern_publish_header_size(const struct tern_publish *pub, uint8_t version)
{
	size_t n;
	uint32_t remaining;
	if (!publish_plain(pub, version, &n, &remaining) &&
	    measure_publish(pub, version, &n, &remaining) != TERN_OK)
		return 0;
	return 1u + tern__vbi_size(remaining) + n;
}

enum tern_err tern_encode_publish_header(const struct tern_publish *pub, uint8_t version,
                                         uint8_t *out, size_t cap, size_t *written)
{
	size_t n;
	uint32_t remaining;
	if (publish_plain(pub, version, &n, &remaining)) {
		size_t total = 1u + tern__vbi_size(remaining) + n;
		if (out == NULL || total > cap)
			return TERN_E_BUFFER;
		struct tern__wr w = {out, cap, 0, false};
		tern__wr_u8(&w, (uint8_t)(TERN_PUBLISH << 4 | publish_flags(pub)));
		tern__wr_vbi(&w, remaining);
		tern__wr_u16(&w, (uint16_t)pub->topic.len);
		memcpy(out + w.len, pub->topic.data, pub->topic.len);
		w.len += pub->topic.len;
		if (pub->qos > 0)
			tern__wr_u16(&w, pub->packet_id);
		if (version == TERN_V5)
			tern__wr_u8(&w, 0); /* property length */
		*written = w.len;
		return TERN_OK;
	}
	enum tern_err e = measure_publish(pub, version, &n, &remaining);
	if (e != TERN_OK)
		return e;
	size_t total = 1u + tern__vbi_size(remaining) + n;
	if (out == NULL || total > cap)
		return TERN_E_BUFFER;
	struct tern__wr w = {out, cap, 0, false};
	tern__wr_u8(&w, (uint8_t)(TERN_PUBLISH << 4 | publish_flags(pub)));
	tern__wr_vbi(&w, remaining);
	if ((e = body_publish_header(&w, pub, version)) != TERN_OK)
		return e;
	if (w.overflow || w.len != total)
		return TERN_E_BUFFER;
	*written = w.len;
	return TERN_OK;
}

static enum tern_err encode_publish(const struct tern_publish *pub, uint8_t version, uint8_t *out,
                                    size_t cap, size_t *written)
{
	size_t h = 0;
	enum tern_err e = tern_encode_publish_header(pub, version, out, cap, &h);
	if (e != TERN_OK)
		return e;
	if (pub->payload.len > cap - h)
		return TERN_E_BUFFER;
	if (pub->payload.len > 0)
		memcpy(out + h, pub->payload.data, pub->payload.len);
	*written = h + pub->payload.len;
	return TERN_OK;
}
