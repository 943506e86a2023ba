/*
 * wire.c - the cross-node message format; the layout is in wire.h.
 *
 * Encoding reserves the whole size once (wire_size()) and writes straight
 * into the buffer, so it either appends everything or nothing. Decoding
 * reads through a bounded cursor (every read checks what is left, as the
 * codec's does), validates every field, and only then builds the message
 * with msg_new() from a struct tern_props pointing into the input: the
 * user properties are already in MQTT's encoding, so they serve as the
 * property block msg_new() walks. What is allocated is the struct plus
 * bytes of the input, never a length read from it.
 */
#include "cluster/wire.h"

#include <string.h>

#include "tern/codec.h"

enum {
	F_QOS = 0x03,
	F_RETAIN = 0x04,
	F_PAYLOAD_FORMAT = 0x08,
	F_EXPIRY = 0x10,
	F_CONTENT_TYPE = 0x20,
	F_RESPONSE_TOPIC = 0x40,
	F_CORRELATION = 0x80,
};

/* The flags byte of m. */
static uint8_t flags_of(const struct msg *m)
{
	return (uint8_t)((m->qos & F_QOS) | (m->retain ? F_RETAIN : 0) |
	                 (m->has_payload_format ? F_PAYLOAD_FORMAT : 0) |
	                 (m->expire_at ? F_EXPIRY : 0) |
	                 (m->has_content_type ? F_CONTENT_TYPE : 0) |
	                 (m->response_topic.len ? F_RESPONSE_TOPIC : 0) |
	                 (m->correlation_data.data ? F_CORRELATION : 0));
}

size_t wire_size(const struct msg *m)
{
	uint8_t f = flags_of(m);
	size_t n = 1 + 1 + 2 + (size_t)m->topic.len + 4 + m->user_raw.len + m->payload.len;
	if (f & F_PAYLOAD_FORMAT)
		n += 1;
	if (f & F_EXPIRY)
		n += 4;
	if (f & F_CONTENT_TYPE)
		n += 2 + (size_t)m->content_type.len;
	if (f & F_RESPONSE_TOPIC)
		n += 2 + (size_t)m->response_topic.len;
	if (f & F_CORRELATION)
		n += 2 + (size_t)m->correlation_data.len;
	return n;
}

static uint8_t *put_u16(uint8_t *p, uint32_t v)
{
	p[0] = (uint8_t)(v >> 8);
	p[1] = (uint8_t)v;
	return p + 2;
}

static uint8_t *put_u32(uint8_t *p, uint32_t v)
{
	p[0] = (uint8_t)(v >> 24);
	p[1] = (uint8_t)(v >> 16);
	p[2] = (uint8_t)(v >> 8);
	p[3] = (uint8_t)v;
	return p + 4;
}

static uint8_t *put_bytes(uint8_t *p, struct tern_bytes b)
{
	if (b.len)
		memcpy(p, b.data, b.len);
	return p + b.len;
}

/* A u16 length, then the bytes. */
static uint8_t *put_str(uint8_t *p, struct tern_bytes b)
{
	return put_bytes(put_u16(p, b.len), b);
}

enum tern_err wire_encode(struct buf *out, const struct msg *m, uint64_t now, size_t max)
{
	uint8_t f = flags_of(m);
	if (m->qos > 2 || m->payload_format > 1 || m->topic.len > UINT16_MAX ||
	    m->content_type.len > UINT16_MAX || m->response_topic.len > UINT16_MAX ||
	    m->correlation_data.len > UINT16_MAX)
		return TERN_E_INVALID;
	size_t n = wire_size(m);
	enum tern_err e = buf_reserve(out, n, max);
	if (e != TERN_OK)
		return e;
	uint8_t *p = out->data + out->len;
	*p++ = WIRE_VERSION;
	*p++ = f;
	p = put_str(p, m->topic);
	if (f & F_PAYLOAD_FORMAT)
		*p++ = m->payload_format;
	if (f & F_EXPIRY) {
		bool expired;
		p = put_u32(p, msg_expiry_left(m, now, &expired));
	}
	if (f & F_CONTENT_TYPE)
		p = put_str(p, m->content_type);
	if (f & F_RESPONSE_TOPIC)
		p = put_str(p, m->response_topic);
	if (f & F_CORRELATION)
		p = put_str(p, m->correlation_data);
	p = put_u32(p, m->user_raw.len);
	p = put_bytes(p, m->user_raw);
	p = put_bytes(p, m->payload);
	out->len += n;
	return TERN_OK;
}

/* A bounded read cursor over the input. */
struct rd {
	const uint8_t *p;
	size_t len, pos;
};

static bool rd_u8(struct rd *r, uint8_t *v)
{
	if (r->len - r->pos < 1)
		return false;
	*v = r->p[r->pos++];
	return true;
}

static bool rd_u16(struct rd *r, uint32_t *v)
{
	if (r->len - r->pos < 2)
		return false;
	*v = (uint32_t)r->p[r->pos] << 8 | r->p[r->pos + 1];
	r->pos += 2;
	return true;
}

static bool rd_u32(struct rd *r, uint32_t *v)
{
	if (r->len - r->pos < 4)
		return false;
	const uint8_t *p = r->p + r->pos;
	*v = (uint32_t)p[0] << 24 | (uint32_t)p[1] << 16 | (uint32_t)p[2] << 8 | p[3];
	r->pos += 4;
	return true;
}

/* n bytes into *b; false if fewer are left. */
static bool rd_bytes(struct rd *r, size_t n, struct tern_bytes *b)
{
	if (r->len - r->pos < n)
		return false;
	b->data = r->p + r->pos;
	b->len = (uint32_t)n;
	r->pos += n;
	return true;
}

/* A u16 length, then the bytes. */
static bool rd_str(struct rd *r, struct tern_bytes *b)
{
	uint32_t n;
	return rd_u16(r, &n) && rd_bytes(r, n, b);
}

/* Checks that b is a run of MQTT user properties (0x26, name, value, both
 * valid MQTT strings) and counts them. */
static bool users_ok(struct tern_bytes b, uint32_t *count)
{
	struct rd r = {b.data, b.len, 0};
	uint32_t n = 0;
	while (r.pos < r.len) {
		uint8_t id;
		struct tern_bytes k, v;
		if (!rd_u8(&r, &id) || id != TERN_PROP_USER_PROPERTY || !rd_str(&r, &k) ||
		    !rd_str(&r, &v) || !tern_utf8_valid(k.data, k.len) ||
		    !tern_utf8_valid(v.data, v.len))
			return false;
		n++;
	}
	*count = n;
	return true;
}

enum tern_err wire_decode(const uint8_t *p, size_t len, uint64_t now, struct msg **out)
{
	*out = NULL;
	struct rd r = {p, len, 0};
	struct tern_props props = {0};
	struct tern_bytes topic, payload;
	uint8_t version, f;
	uint32_t ulen;

	if (!rd_u8(&r, &version))
		return TERN_E_MALFORMED;
	if (version != WIRE_VERSION)
		return TERN_E_UNSUPPORTED_VERSION;
	if (!rd_u8(&r, &f) || (f & F_QOS) == 3 || !rd_str(&r, &topic) ||
	    tern_topic_name_check(topic.data, topic.len) != TERN_OK)
		return TERN_E_MALFORMED;
	if (f & F_PAYLOAD_FORMAT) {
		if (!rd_u8(&r, &props.payload_format) || props.payload_format > 1)
			return TERN_E_MALFORMED;
		props.present |= TERN_PROP_BIT(TERN_PROP_PAYLOAD_FORMAT);
	}
	if (f & F_EXPIRY) {
		if (!rd_u32(&r, &props.message_expiry))
			return TERN_E_MALFORMED;
		props.present |= TERN_PROP_BIT(TERN_PROP_MESSAGE_EXPIRY);
	}
	if (f & F_CONTENT_TYPE) {
		if (!rd_str(&r, &props.content_type) ||
		    !tern_utf8_valid(props.content_type.data, props.content_type.len))
			return TERN_E_MALFORMED;
		props.present |= TERN_PROP_BIT(TERN_PROP_CONTENT_TYPE);
	}
	if (f & F_RESPONSE_TOPIC) {
		/* A topic name without wildcards [MQTT-3.3.2-14], so not empty. */
		if (!rd_str(&r, &props.response_topic) ||
		    tern_topic_name_check(props.response_topic.data, props.response_topic.len) !=
		            TERN_OK)
			return TERN_E_MALFORMED;
		props.present |= TERN_PROP_BIT(TERN_PROP_RESPONSE_TOPIC);
	}
	if (f & F_CORRELATION) {
		if (!rd_str(&r, &props.correlation_data))
			return TERN_E_MALFORMED;
		props.present |= TERN_PROP_BIT(TERN_PROP_CORRELATION_DATA);
	}
	if (!rd_u32(&r, &ulen) || !rd_bytes(&r, ulen, &props.raw) ||
	    !users_ok(props.raw, &props.n_user))
		return TERN_E_MALFORMED;
	props.user_raw = props.raw;
	/* The payload is the rest; a message larger than 4 GiB is not one an
	 * MQTT packet could have carried. */
	if (r.len - r.pos > UINT32_MAX || !rd_bytes(&r, r.len - r.pos, &payload))
		return TERN_E_MALFORMED;
	struct msg *m = msg_new(topic, payload, f & F_QOS, f & F_RETAIN, &props, 0, now);
	if (!m)
		return TERN_E_NOMEM;
	*out = m;
	return TERN_OK;
}
