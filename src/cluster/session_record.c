/*
 * session_record.c - the session record's codec; the layout is in
 * session_record.h.
 *
 * Encoding appends field by field and, on any error, puts the buffer's
 * length back, so it appends everything or nothing. Decoding reads through
 * a bounded cursor (every read checks what is left), validates every
 * field, the subscriptions' filters and the will (through wire_decode(),
 * the cross-node message codec) before it says yes, so that a node that
 * resumes a session from a record, or publishes a dead node's will from
 * it, never acts on half of one.
 */
#include "cluster/session_record.h"

#include <string.h>

#include "cluster/wire.h"
#include "tern/codec.h"

enum { R_ONLINE = 0x01, R_WILL = 0x02 };
enum { O_QOS = 0x03, O_NO_LOCAL = 0x04, O_RAP = 0x08, O_RH_SHIFT = 4, O_RH = 0x30 };
enum { W_EXPIRY = 0x01 };
/* The largest subscription identifier (section 3.8.2.1.2). */
#define SUB_ID_MAX 268435455u

static void be16(uint8_t *p, uint32_t v)
{
	p[0] = (uint8_t)(v >> 8);
	p[1] = (uint8_t)v;
}

static void be32(uint8_t *p, uint32_t v)
{
	p[0] = (uint8_t)(v >> 24);
	p[1] = (uint8_t)(v >> 16);
	p[2] = (uint8_t)(v >> 8);
	p[3] = (uint8_t)v;
}

static void be64(uint8_t *p, uint64_t v)
{
	be32(p, (uint32_t)(v >> 32));
	be32(p + 4, (uint32_t)v);
}

enum tern_err session_record_encode(struct buf *out, const struct session_record *r, size_t max)
{
	if (r->node.len == 0 || r->node.len > SESSION_RECORD_NODE_MAX)
		return TERN_E_INVALID;
	for (uint32_t i = 0; i < r->n_subs; i++) {
		const struct session_record_sub *s = &r->subs[i];
		if (s->filter.len > UINT16_MAX || s->qos > 2 || s->retain_handling > 2 ||
		    s->sub_id > SUB_ID_MAX)
			return TERN_E_INVALID;
	}
	/* The whole size reserved once: max bounds the record, and the
	 * appends below cannot fail on memory halfway. */
	size_t size = 25 + r->node.len + 4;
	for (uint32_t i = 0; i < r->n_subs; i++)
		size += 2 + (size_t)r->subs[i].filter.len + 5;
	if (r->will)
		size += 13 + wire_size(r->will);
	enum tern_err e = buf_reserve(out, size, max);
	if (e)
		return e;
	size_t len0 = out->len;
	uint8_t head[1 + 1 + 1 + 4 + 8 + 8 + 2];
	head[0] = SESSION_RECORD_VERSION;
	head[1] = r->version;
	head[2] = (uint8_t)((r->online ? R_ONLINE : 0) | (r->will ? R_WILL : 0));
	be32(head + 3, r->expiry);
	be64(head + 7, r->claim);
	be64(head + 15, r->online ? 0 : (uint64_t)r->offline_at);
	be16(head + 23, r->node.len);
	e = buf_append(out, head, sizeof(head), max);
	if (!e)
		e = buf_append(out, r->node.data, r->node.len, max);
	uint8_t n[4];
	be32(n, r->n_subs);
	if (!e)
		e = buf_append(out, n, 4, max);
	for (uint32_t i = 0; !e && i < r->n_subs; i++) {
		const struct session_record_sub *s = &r->subs[i];
		uint8_t fl[2], opt[5];
		be16(fl, s->filter.len);
		opt[0] = (uint8_t)(s->qos | (s->no_local ? O_NO_LOCAL : 0) |
		                   (s->retain_as_published ? O_RAP : 0) |
		                   (s->retain_handling << O_RH_SHIFT));
		be32(opt + 1, s->sub_id);
		e = buf_append(out, fl, 2, max);
		if (!e && s->filter.len)
			e = buf_append(out, s->filter.data, s->filter.len, max);
		if (!e)
			e = buf_append(out, opt, 5, max);
	}
	if (!e && r->will) {
		uint8_t w[4 + 1 + 4 + 4];
		be32(w, r->will_delay);
		w[4] = r->will_has_expiry ? W_EXPIRY : 0;
		be32(w + 5, r->will_has_expiry ? r->will_expiry : 0);
		/* No expiry of its own: wire_encode() writes one only when
		 * expire_at is set, which a will's is not until it is
		 * published. */
		struct msg will = *r->will;
		will.expire_at = 0;
		e = buf_append(out, w, sizeof(w), max);
		size_t at = out->len - 4;
		if (!e)
			e = wire_encode(out, &will, 1, max);
		if (!e)
			be32(out->data + at, (uint32_t)(out->len - at - 4));
	}
	if (e)
		out->len = len0;
	return e;
}

/* A bounded read cursor over the input. */
struct rd {
	const uint8_t *p;
	size_t len, pos;
};

static bool rd_bytes(struct rd *r, size_t n, struct tern_bytes *b)
{
	if (r->len - r->pos < n)
		return false;
	*b = (struct tern_bytes){r->p + r->pos, (uint32_t)n};
	r->pos += n;
	return true;
}

static bool rd_u8(struct rd *r, uint8_t *v)
{
	struct tern_bytes b;
	if (!rd_bytes(r, 1, &b))
		return false;
	*v = b.data[0];
	return true;
}

static bool rd_u16(struct rd *r, uint32_t *v)
{
	struct tern_bytes b;
	if (!rd_bytes(r, 2, &b))
		return false;
	*v = (uint32_t)b.data[0] << 8 | b.data[1];
	return true;
}

static bool rd_u32(struct rd *r, uint32_t *v)
{
	struct tern_bytes b;
	if (!rd_bytes(r, 4, &b))
		return false;
	*v = (uint32_t)b.data[0] << 24 | (uint32_t)b.data[1] << 16 | (uint32_t)b.data[2] << 8 |
	     b.data[3];
	return true;
}

static bool rd_u64(struct rd *r, uint64_t *v)
{
	uint32_t hi, lo;
	if (!rd_u32(r, &hi) || !rd_u32(r, &lo))
		return false;
	*v = (uint64_t)hi << 32 | lo;
	return true;
}

/* The head of a record, up to and including the node name. */
static enum tern_err rd_head(struct rd *rd, struct session_record *r, uint8_t *flags)
{
	uint8_t fv;
	uint32_t expiry, nlen;
	uint64_t claim, off;
	if (!rd_u8(rd, &fv))
		return TERN_E_MALFORMED;
	if (fv != SESSION_RECORD_VERSION)
		return TERN_E_UNSUPPORTED_VERSION;
	if (!rd_u8(rd, &r->version) || !rd_u8(rd, flags) || !rd_u32(rd, &expiry) ||
	    !rd_u64(rd, &claim) || !rd_u64(rd, &off) || !rd_u16(rd, &nlen) || nlen == 0 ||
	    nlen > SESSION_RECORD_NODE_MAX || !rd_bytes(rd, nlen, &r->node))
		return TERN_E_MALFORMED;
	if (r->version < TERN_V31 || r->version > TERN_V5 || (*flags & ~(R_ONLINE | R_WILL)) ||
	    off > INT64_MAX || ((*flags & R_ONLINE) && off != 0))
		return TERN_E_MALFORMED;
	r->online = *flags & R_ONLINE;
	r->expiry = expiry;
	r->claim = claim;
	r->offline_at = (int64_t)off;
	return TERN_OK;
}

/* One subscription at the cursor, checked. */
static bool rd_sub(struct rd *rd, struct session_record_sub *s)
{
	uint32_t flen, sub_id;
	uint8_t opt;
	if (!rd_u16(rd, &flen) || !rd_bytes(rd, flen, &s->filter) || !rd_u8(rd, &opt) ||
	    !rd_u32(rd, &sub_id))
		return false;
	if ((opt & O_QOS) == 3 || (opt & O_RH) == O_RH || (opt & 0xc0) || sub_id > SUB_ID_MAX ||
	    tern_topic_filter_check(s->filter.data, s->filter.len) != TERN_OK)
		return false;
	s->qos = opt & O_QOS;
	s->no_local = opt & O_NO_LOCAL;
	s->retain_as_published = opt & O_RAP;
	s->retain_handling = (uint8_t)((opt & O_RH) >> O_RH_SHIFT);
	s->sub_id = sub_id;
	return true;
}

enum tern_err session_record_decode(const uint8_t *p, size_t len, struct session_record *r)
{
	memset(r, 0, sizeof(*r));
	struct rd rd = {p, len, 0};
	uint8_t flags;
	enum tern_err e = rd_head(&rd, r, &flags);
	if (e)
		return e;
	if (!rd_u32(&rd, &r->n_subs))
		return TERN_E_MALFORMED;
	size_t subs_at = rd.pos;
	for (uint32_t i = 0; i < r->n_subs; i++) {
		struct session_record_sub s;
		if (!rd_sub(&rd, &s))
			return TERN_E_MALFORMED;
	}
	r->subs_raw = (struct tern_bytes){p + subs_at, (uint32_t)(rd.pos - subs_at)};
	if (flags & R_WILL) {
		uint8_t wf;
		uint32_t wlen;
		if (!rd_u32(&rd, &r->will_delay) || !rd_u8(&rd, &wf) ||
		    !rd_u32(&rd, &r->will_expiry) || !rd_u32(&rd, &wlen) ||
		    !rd_bytes(&rd, wlen, &r->will_raw) || (wf & ~W_EXPIRY) ||
		    (!(wf & W_EXPIRY) && r->will_expiry))
			return TERN_E_MALFORMED;
		r->has_will = true;
		r->will_has_expiry = wf & W_EXPIRY;
		struct msg *m = NULL;
		/* The will must decode, and carries no expiry of its own. */
		if (wire_decode(r->will_raw.data, r->will_raw.len, 1, &m) != TERN_OK)
			return TERN_E_MALFORMED;
		bool expiring = m->expire_at != 0;
		msg_unref(m);
		if (expiring)
			return TERN_E_MALFORMED;
	}
	if (rd.pos != len)
		return TERN_E_MALFORMED;
	return TERN_OK;
}

bool session_record_next_sub(const struct session_record *r, size_t *cur,
                             struct session_record_sub *out)
{
	struct rd rd = {r->subs_raw.data, r->subs_raw.len, *cur};
	if (rd.pos >= rd.len || !rd_sub(&rd, out))
		return false;
	*cur = rd.pos;
	return true;
}

enum tern_err session_record_will(const struct session_record *r, uint64_t now, struct msg **out)
{
	*out = NULL;
	if (!r->has_will)
		return TERN_E_INVALID;
	enum tern_err e = wire_decode(r->will_raw.data, r->will_raw.len, now, out);
	/* Checked at decode: only memory can fail now. */
	return e == TERN_E_NOMEM ? e : e ? TERN_E_INVALID : TERN_OK;
}

enum tern_err session_record_holder(const uint8_t *p, size_t len, uint64_t *claim,
                                    struct tern_bytes *node)
{
	struct session_record r;
	struct rd rd = {p, len, 0};
	uint8_t flags;
	enum tern_err e = rd_head(&rd, &r, &flags);
	if (e)
		return e;
	*claim = r.claim;
	*node = r.node;
	return TERN_OK;
}
