/*
 * props.c - MQTT 5.0 properties (section 2.2.2): decoding, validation,
 * encoding and the iterators over repeated properties.
 *
 * One const table, indexed by property identifier, gives each property's
 * data type and the packet types it may appear in (the table of section
 * 2.2.2.2; bit 0 stands for the will properties of a CONNECT). The decoder,
 * the encoder's checks and the iterators all read that table, so a property
 * is described in exactly one place.
 *
 * Error mapping, as section 4.13 and the property sections state it: a
 * property that is unknown or not allowed in the packet, or whose value runs
 * past the block, makes the packet Malformed; a property given twice (other
 * than User Property, and Subscription Identifier in PUBLISH) or a value out
 * of its range (a 0/1 flag of 2, Receive Maximum 0, ...) is a Protocol
 * Error.
 *
 * Repeated properties are not copied out: decoding keeps the raw block and
 * counts them, and tern_props_next_user() / tern_props_next_sub_id() walk
 * the raw block again, so decoding never allocates.
 */
#include "proto/proto_internal.h"

enum prop_kind {
	K_NONE = 0, /* not a property identifier */
	K_BYTE,
	K_U16,
	K_U32,
	K_VBI,
	K_STR,
	K_BIN,
	K_PAIR,
};

#define M(t)  (1u << (t))
#define MW    M(TERN__WILL)
#define MACKS (M(TERN_PUBACK) | M(TERN_PUBREC) | M(TERN_PUBREL) | M(TERN_PUBCOMP))
#define MALL                                                                                       \
	(MW | M(TERN_CONNECT) | M(TERN_CONNACK) | M(TERN_PUBLISH) | MACKS | M(TERN_SUBSCRIBE) |    \
	 M(TERN_SUBACK) | M(TERN_UNSUBSCRIBE) | M(TERN_UNSUBACK) | M(TERN_DISCONNECT) |            \
	 M(TERN_AUTH))

struct prop_def {
	uint8_t kind;
	uint16_t allowed; /* M(packet type), MW for will properties */
};

/* Section 2.2.2.2, "Properties": identifier, type, where it may be used. */
static const struct prop_def prop_defs[] = {
        [TERN_PROP_PAYLOAD_FORMAT] = {K_BYTE, M(TERN_PUBLISH) | MW},
        [TERN_PROP_MESSAGE_EXPIRY] = {K_U32, M(TERN_PUBLISH) | MW},
        [TERN_PROP_CONTENT_TYPE] = {K_STR, M(TERN_PUBLISH) | MW},
        [TERN_PROP_RESPONSE_TOPIC] = {K_STR, M(TERN_PUBLISH) | MW},
        [TERN_PROP_CORRELATION_DATA] = {K_BIN, M(TERN_PUBLISH) | MW},
        [TERN_PROP_SUBSCRIPTION_ID] = {K_VBI, M(TERN_PUBLISH) | M(TERN_SUBSCRIBE)},
        [TERN_PROP_SESSION_EXPIRY] = {K_U32,
                                      M(TERN_CONNECT) | M(TERN_CONNACK) | M(TERN_DISCONNECT)},
        [TERN_PROP_ASSIGNED_CLIENT_ID] = {K_STR, M(TERN_CONNACK)},
        [TERN_PROP_SERVER_KEEP_ALIVE] = {K_U16, M(TERN_CONNACK)},
        [TERN_PROP_AUTH_METHOD] = {K_STR, M(TERN_CONNECT) | M(TERN_CONNACK) | M(TERN_AUTH)},
        [TERN_PROP_AUTH_DATA] = {K_BIN, M(TERN_CONNECT) | M(TERN_CONNACK) | M(TERN_AUTH)},
        [TERN_PROP_REQUEST_PROBLEM_INFO] = {K_BYTE, M(TERN_CONNECT)},
        [TERN_PROP_WILL_DELAY] = {K_U32, MW},
        [TERN_PROP_REQUEST_RESPONSE_INFO] = {K_BYTE, M(TERN_CONNECT)},
        [TERN_PROP_RESPONSE_INFO] = {K_STR, M(TERN_CONNACK)},
        [TERN_PROP_SERVER_REFERENCE] = {K_STR, M(TERN_CONNACK) | M(TERN_DISCONNECT)},
        [TERN_PROP_REASON_STRING] = {K_STR, M(TERN_CONNACK) | MACKS | M(TERN_SUBACK) |
                                                    M(TERN_UNSUBACK) | M(TERN_DISCONNECT) |
                                                    M(TERN_AUTH)},
        [TERN_PROP_RECEIVE_MAXIMUM] = {K_U16, M(TERN_CONNECT) | M(TERN_CONNACK)},
        [TERN_PROP_TOPIC_ALIAS_MAXIMUM] = {K_U16, M(TERN_CONNECT) | M(TERN_CONNACK)},
        [TERN_PROP_TOPIC_ALIAS] = {K_U16, M(TERN_PUBLISH)},
        [TERN_PROP_MAXIMUM_QOS] = {K_BYTE, M(TERN_CONNACK)},
        [TERN_PROP_RETAIN_AVAILABLE] = {K_BYTE, M(TERN_CONNACK)},
        [TERN_PROP_USER_PROPERTY] = {K_PAIR, MALL},
        [TERN_PROP_MAXIMUM_PACKET_SIZE] = {K_U32, M(TERN_CONNECT) | M(TERN_CONNACK)},
        [TERN_PROP_WILDCARD_SUB_AVAILABLE] = {K_BYTE, M(TERN_CONNACK)},
        [TERN_PROP_SUB_ID_AVAILABLE] = {K_BYTE, M(TERN_CONNACK)},
        [TERN_PROP_SHARED_SUB_AVAILABLE] = {K_BYTE, M(TERN_CONNACK)},
};

#define N_PROP_DEFS (sizeof(prop_defs) / sizeof(prop_defs[0]))

/* Properties that have a field in struct tern_props and a `present` bit,
 * in the order the encoder writes them. The specification leaves the order
 * free; the CONNACK ones follow mosquitto's (Server Keep Alive, Topic Alias
 * Maximum, Assigned Client Identifier, authentication, Retain Available,
 * Maximum Packet Size, Receive Maximum, Maximum QoS) so that tools and
 * tests that compare a broker's packets byte for byte see the same bytes. */
static const uint8_t flagged_ids[] = {
        TERN_PROP_PAYLOAD_FORMAT,
        TERN_PROP_MESSAGE_EXPIRY,
        TERN_PROP_CONTENT_TYPE,
        TERN_PROP_RESPONSE_TOPIC,
        TERN_PROP_CORRELATION_DATA,
        TERN_PROP_SESSION_EXPIRY,
        TERN_PROP_SERVER_KEEP_ALIVE,
        TERN_PROP_TOPIC_ALIAS_MAXIMUM,
        TERN_PROP_ASSIGNED_CLIENT_ID,
        TERN_PROP_AUTH_METHOD,
        TERN_PROP_AUTH_DATA,
        TERN_PROP_REQUEST_PROBLEM_INFO,
        TERN_PROP_WILL_DELAY,
        TERN_PROP_REQUEST_RESPONSE_INFO,
        TERN_PROP_RESPONSE_INFO,
        TERN_PROP_SERVER_REFERENCE,
        TERN_PROP_REASON_STRING,
        TERN_PROP_RETAIN_AVAILABLE,
        TERN_PROP_MAXIMUM_PACKET_SIZE,
        TERN_PROP_RECEIVE_MAXIMUM,
        TERN_PROP_TOPIC_ALIAS,
        TERN_PROP_MAXIMUM_QOS,
        TERN_PROP_WILDCARD_SUB_AVAILABLE,
        TERN_PROP_SUB_ID_AVAILABLE,
        TERN_PROP_SHARED_SUB_AVAILABLE,
};

#define N_FLAGGED (sizeof(flagged_ids) / sizeof(flagged_ids[0]))

/* Returns the definition of id, or NULL for an unknown identifier. */
static const struct prop_def *prop_def(uint32_t id)
{
	if (id >= N_PROP_DEFS || prop_defs[id].kind == K_NONE)
		return NULL;
	return &prop_defs[id];
}

/* Pointers to the fields of p that hold the value of property id; exactly
 * one of the out pointers is set (by kind). */
struct prop_ref {
	uint8_t *u8;
	uint16_t *u16;
	uint32_t *u32;
	struct tern_bytes *bytes;
};

/* Returns where in p the value of flagged property id lives. */
static struct prop_ref prop_field(struct tern_props *p, uint32_t id)
{
	struct prop_ref f = {0};
	switch (id) {
	case TERN_PROP_PAYLOAD_FORMAT:
		f.u8 = &p->payload_format;
		break;
	case TERN_PROP_MESSAGE_EXPIRY:
		f.u32 = &p->message_expiry;
		break;
	case TERN_PROP_CONTENT_TYPE:
		f.bytes = &p->content_type;
		break;
	case TERN_PROP_RESPONSE_TOPIC:
		f.bytes = &p->response_topic;
		break;
	case TERN_PROP_CORRELATION_DATA:
		f.bytes = &p->correlation_data;
		break;
	case TERN_PROP_SESSION_EXPIRY:
		f.u32 = &p->session_expiry;
		break;
	case TERN_PROP_ASSIGNED_CLIENT_ID:
		f.bytes = &p->assigned_client_id;
		break;
	case TERN_PROP_SERVER_KEEP_ALIVE:
		f.u16 = &p->server_keep_alive;
		break;
	case TERN_PROP_AUTH_METHOD:
		f.bytes = &p->auth_method;
		break;
	case TERN_PROP_AUTH_DATA:
		f.bytes = &p->auth_data;
		break;
	case TERN_PROP_REQUEST_PROBLEM_INFO:
		f.u8 = &p->request_problem_info;
		break;
	case TERN_PROP_WILL_DELAY:
		f.u32 = &p->will_delay;
		break;
	case TERN_PROP_REQUEST_RESPONSE_INFO:
		f.u8 = &p->request_response_info;
		break;
	case TERN_PROP_RESPONSE_INFO:
		f.bytes = &p->response_info;
		break;
	case TERN_PROP_SERVER_REFERENCE:
		f.bytes = &p->server_reference;
		break;
	case TERN_PROP_REASON_STRING:
		f.bytes = &p->reason_string;
		break;
	case TERN_PROP_RECEIVE_MAXIMUM:
		f.u16 = &p->receive_maximum;
		break;
	case TERN_PROP_TOPIC_ALIAS_MAXIMUM:
		f.u16 = &p->topic_alias_maximum;
		break;
	case TERN_PROP_TOPIC_ALIAS:
		f.u16 = &p->topic_alias;
		break;
	case TERN_PROP_MAXIMUM_QOS:
		f.u8 = &p->maximum_qos;
		break;
	case TERN_PROP_RETAIN_AVAILABLE:
		f.u8 = &p->retain_available;
		break;
	case TERN_PROP_MAXIMUM_PACKET_SIZE:
		f.u32 = &p->maximum_packet_size;
		break;
	case TERN_PROP_WILDCARD_SUB_AVAILABLE:
		f.u8 = &p->wildcard_sub_available;
		break;
	case TERN_PROP_SUB_ID_AVAILABLE:
		f.u8 = &p->sub_id_available;
		break;
	case TERN_PROP_SHARED_SUB_AVAILABLE:
		f.u8 = &p->shared_sub_available;
		break;
	default:
		break;
	}
	return f;
}

/*
 * True if the value of flagged property id is in the range its section
 * allows. Single-byte properties are all 0/1 flags (Maximum QoS included,
 * 3.2.2.3.4); Receive Maximum, Maximum Packet Size and Topic Alias must not
 * be 0 (3.1.2.11.3, 3.1.2.11.4, 3.3.2.3.4); a Response Topic is a topic
 * name without wildcards [MQTT-3.3.2-14].
 */
static bool prop_value_ok(struct tern_props *p, uint32_t id)
{
	struct prop_ref f = prop_field(p, id);
	if (f.u8 != NULL)
		return *f.u8 <= 1;
	switch (id) {
	case TERN_PROP_RECEIVE_MAXIMUM:
	case TERN_PROP_TOPIC_ALIAS:
		return *f.u16 != 0;
	case TERN_PROP_MAXIMUM_PACKET_SIZE:
		return *f.u32 != 0;
	case TERN_PROP_RESPONSE_TOPIC:
		return tern__topic_name_ok(f.bytes->data, f.bytes->len);
	default:
		return true;
	}
}

/* Skips the value of a property of the given kind; used by the iterators
 * over a block the decoder already validated. */
static TERN_MUST_CHECK enum tern_err skip_value(struct tern__rd *r, uint8_t kind, uint32_t *vbi)
{
	struct tern_bytes b;
	uint8_t u8;
	uint16_t u16;
	uint32_t u32;
	enum tern_err e;

	switch (kind) {
	case K_BYTE:
		return tern__rd_u8(r, &u8);
	case K_U16:
		return tern__rd_u16(r, &u16);
	case K_U32:
		return tern__rd_u32(r, &u32);
	case K_VBI:
		return tern__rd_vbi(r, vbi);
	case K_STR:
	case K_BIN:
		return tern__rd_bin(r, &b);
	case K_PAIR:
		e = tern__rd_bin(r, &b);
		return e != TERN_OK ? e : tern__rd_bin(r, &b);
	default:
		return TERN_E_MALFORMED;
	}
}

/* Reads the value of flagged property id into its field of out. */
static TERN_MUST_CHECK enum tern_err read_flagged(struct tern__rd *r, uint8_t kind,
                                                  struct tern_props *out, uint32_t id)
{
	struct prop_ref f = prop_field(out, id);
	switch (kind) {
	case K_BYTE:
		return tern__rd_u8(r, f.u8);
	case K_U16:
		return tern__rd_u16(r, f.u16);
	case K_U32:
		return tern__rd_u32(r, f.u32);
	case K_STR:
		return tern__rd_str(r, f.bytes);
	case K_BIN:
		return tern__rd_bin(r, f.bytes);
	default:
		return TERN_E_MALFORMED;
	}
}

enum tern_err tern__props_decode(struct tern__rd *r, int ptype, struct tern_props *out)
{
	uint32_t plen, id;
	enum tern_err e;

	memset(out, 0, sizeof(*out));
	e = tern__rd_vbi(r, &plen);
	if (e != TERN_OK)
		return e;
	if (plen > tern__rd_left(r))
		return TERN_E_MALFORMED;
	struct tern__rd pr = {r->p + r->pos, plen, 0};
	out->raw.data = pr.p;
	out->raw.len = plen;
	r->pos += plen;

	while (tern__rd_left(&pr) > 0) {
		e = tern__rd_vbi(&pr, &id);
		if (e != TERN_OK)
			return e;
		const struct prop_def *d = prop_def(id);
		if (d == NULL || (d->allowed & M(ptype)) == 0)
			return TERN_E_MALFORMED;
		if (id == TERN_PROP_USER_PROPERTY) {
			struct tern_bytes name, value;
			if ((e = tern__rd_str(&pr, &name)) != TERN_OK ||
			    (e = tern__rd_str(&pr, &value)) != TERN_OK)
				return e;
			out->n_user++;
			continue;
		}
		if (id == TERN_PROP_SUBSCRIPTION_ID) {
			uint32_t v;
			if ((e = tern__rd_vbi(&pr, &v)) != TERN_OK)
				return e;
			/* Only PUBLISH may carry several [MQTT-3.3.4-3]; 0 is
			 * a Protocol Error (3.3.2.3.8, 3.8.2.1.2). */
			if (v == 0 || (ptype != TERN_PUBLISH && out->n_sub_ids > 0))
				return TERN_E_PROTOCOL;
			out->n_sub_ids++;
			continue;
		}
		if (out->present & TERN_PROP_BIT(id))
			return TERN_E_PROTOCOL;
		if ((e = read_flagged(&pr, d->kind, out, id)) != TERN_OK)
			return e;
		out->present |= TERN_PROP_BIT(id);
		if (!prop_value_ok(out, id))
			return TERN_E_PROTOCOL;
	}
	/* Authentication Data without an Authentication Method is a Protocol
	 * Error (3.1.2.11.10, 3.2.2.3.18, 3.15.2.2.3). */
	if ((out->present & TERN_PROP_BIT(TERN_PROP_AUTH_DATA)) &&
	    !(out->present & TERN_PROP_BIT(TERN_PROP_AUTH_METHOD)))
		return TERN_E_PROTOCOL;
	return TERN_OK;
}

/* Mask of the `present` bits that name a flagged property. */
static uint64_t flagged_mask(void)
{
	uint64_t m = 0;
	for (size_t i = 0; i < N_FLAGGED; i++)
		m |= TERN_PROP_BIT(flagged_ids[i]);
	return m;
}

/* True if block is a run of encoded user properties (0x26, name, value)
 * with valid strings; counts them into *n. */
static bool user_raw_ok(struct tern_bytes block, uint32_t *n)
{
	struct tern__rd r = {block.data, block.len, 0};
	struct tern_bytes a, b;
	uint8_t id;

	*n = 0;
	if (block.len > 0 && block.data == NULL)
		return false;
	while (tern__rd_left(&r) > 0) {
		if (tern__rd_u8(&r, &id) != TERN_OK || id != TERN_PROP_USER_PROPERTY ||
		    tern__rd_str(&r, &a) != TERN_OK || tern__rd_str(&r, &b) != TERN_OK)
			return false;
		(*n)++;
	}
	return true;
}

enum tern_err tern__props_check(const struct tern_props *p, int ptype)
{
	/* The bits of the counted properties are tolerated and ignored. */
	uint64_t ignored =
	        TERN_PROP_BIT(TERN_PROP_SUBSCRIPTION_ID) | TERN_PROP_BIT(TERN_PROP_USER_PROPERTY);
	uint64_t present = p->present & ~ignored;
	struct tern_props tmp = *p;
	uint32_t n;

	if (present & ~flagged_mask())
		return TERN_E_INVALID;
	for (size_t i = 0; i < N_FLAGGED; i++) {
		uint32_t id = flagged_ids[i];
		if (!(present & TERN_PROP_BIT(id)))
			continue;
		const struct prop_def *d = prop_def(id);
		if ((d->allowed & M(ptype)) == 0)
			return TERN_E_INVALID;
		struct prop_ref f = prop_field(&tmp, id);
		if (f.bytes != NULL &&
		    (f.bytes->len > 65535u || (f.bytes->len > 0 && f.bytes->data == NULL)))
			return TERN_E_INVALID;
		if (d->kind == K_STR && !tern_utf8_valid(f.bytes->data, f.bytes->len))
			return TERN_E_INVALID;
		if (!prop_value_ok(&tmp, id))
			return TERN_E_INVALID;
	}
	if ((present & TERN_PROP_BIT(TERN_PROP_AUTH_DATA)) &&
	    !(present & TERN_PROP_BIT(TERN_PROP_AUTH_METHOD)))
		return TERN_E_INVALID;
	if (p->n_sub_ids > 0) {
		if (p->sub_ids == NULL ||
		    (prop_defs[TERN_PROP_SUBSCRIPTION_ID].allowed & M(ptype)) == 0)
			return TERN_E_INVALID;
		if (ptype != TERN_PUBLISH && p->n_sub_ids > 1)
			return TERN_E_INVALID;
		for (uint32_t i = 0; i < p->n_sub_ids; i++)
			if (p->sub_ids[i] == 0 || p->sub_ids[i] > TERN_SUB_ID_MAX)
				return TERN_E_INVALID;
	}
	if (!user_raw_ok(p->user_raw, &n))
		return TERN_E_INVALID;
	if (tern_props_size(p) > TERN_VBI_MAX)
		return TERN_E_INVALID;
	return TERN_OK;
}

/* Writes (or counts, with a counting writer) the properties of p without
 * the length prefix: flagged fields in flagged_ids order, the subscription
 * identifiers, then the user property block. */
static void props_body(struct tern__wr *w, const struct tern_props *p)
{
	struct tern_props tmp = *p;

	for (size_t i = 0; i < N_FLAGGED; i++) {
		uint32_t id = flagged_ids[i];
		if (!(p->present & TERN_PROP_BIT(id)))
			continue;
		struct prop_ref f = prop_field(&tmp, id);
		tern__wr_u8(w, (uint8_t)id);
		switch (prop_defs[id].kind) {
		case K_BYTE:
			tern__wr_u8(w, *f.u8);
			break;
		case K_U16:
			tern__wr_u16(w, *f.u16);
			break;
		case K_U32:
			tern__wr_u32(w, *f.u32);
			break;
		default:
			tern__wr_bin(w, *f.bytes);
			break;
		}
	}
	for (uint32_t i = 0; i < p->n_sub_ids && p->sub_ids != NULL; i++) {
		tern__wr_u8(w, TERN_PROP_SUBSCRIPTION_ID);
		tern__wr_vbi(w, p->sub_ids[i]);
	}
	tern__wr_bytes(w, p->user_raw.data, p->user_raw.len);
}

size_t tern_props_size(const struct tern_props *p)
{
	struct tern__wr w = {0};
	props_body(&w, p);
	return w.len;
}

void tern__props_write(struct tern__wr *w, const struct tern_props *p)
{
	tern__wr_vbi(w, (uint32_t)tern_props_size(p));
	props_body(w, p);
}

/* Advances *cursor over raw to the next property with identifier want and
 * leaves r just after its identifier. */
static bool next_prop(const struct tern_props *p, size_t *cursor, uint32_t want, struct tern__rd *r)
{
	r->p = p->raw.data;
	r->len = p->raw.len;
	if (r->p == NULL || *cursor >= r->len)
		return false;
	r->pos = (uint32_t)*cursor;
	while (tern__rd_left(r) > 0) {
		uint32_t id, vbi;
		if (tern__rd_vbi(r, &id) != TERN_OK)
			return false;
		const struct prop_def *d = prop_def(id);
		if (d == NULL)
			return false;
		if (id == want)
			return true;
		if (skip_value(r, d->kind, &vbi) != TERN_OK)
			return false;
	}
	return false;
}

bool tern_props_next_user(const struct tern_props *p, size_t *cursor, struct tern_bytes *name,
                          struct tern_bytes *value)
{
	struct tern__rd r;
	if (!next_prop(p, cursor, TERN_PROP_USER_PROPERTY, &r))
		return false;
	if (tern__rd_bin(&r, name) != TERN_OK || tern__rd_bin(&r, value) != TERN_OK)
		return false;
	*cursor = r.pos;
	return true;
}

bool tern_props_next_sub_id(const struct tern_props *p, size_t *cursor, uint32_t *id)
{
	struct tern__rd r;
	if (!next_prop(p, cursor, TERN_PROP_SUBSCRIPTION_ID, &r))
		return false;
	if (tern__rd_vbi(&r, id) != TERN_OK)
		return false;
	*cursor = r.pos;
	return true;
}

enum tern_err tern_user_prop_encode(uint8_t *out, size_t cap, size_t *len, struct tern_bytes name,
                                    struct tern_bytes value)
{
	if ((name.len > 0 && name.data == NULL) || (value.len > 0 && value.data == NULL) ||
	    !tern_utf8_valid(name.data, name.len) || !tern_utf8_valid(value.data, value.len))
		return TERN_E_INVALID;
	size_t need = 1u + 2u + name.len + 2u + value.len;
	if (out == NULL || *len > cap || need > cap - *len)
		return TERN_E_BUFFER;
	struct tern__wr w = {out, cap, *len, false};
	tern__wr_u8(&w, TERN_PROP_USER_PROPERTY);
	tern__wr_bin(&w, name);
	tern__wr_bin(&w, value);
	*len = w.len;
	return TERN_OK;
}
