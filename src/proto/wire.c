/*
 * wire.c - the primitive data types of MQTT (section 1.5 of both
 * specifications): big-endian integers, variable byte integers, binary data
 * and UTF-8 strings, with the bounded readers and counting writers the
 * packet decoders and encoders are built from.
 *
 * Every reader checks the bounds of the packet body before it touches a
 * byte, and reports a value that runs past the end as TERN_E_MALFORMED: the
 * body is always complete when it is decoded (tern_decode_fixed_header()
 * said how long it is), so "more bytes" can never help.
 */
#include "proto/proto_internal.h"

size_t tern__vbi_size(uint32_t v)
{
	if (v < 128u)
		return 1;
	if (v < 16384u)
		return 2;
	if (v < 2097152u)
		return 3;
	return 4;
}

enum tern_err tern__vbi_decode(const uint8_t *buf, size_t len, uint32_t *v, uint32_t *used)
{
	uint32_t value = 0;

	for (uint32_t i = 0; i < 4; i++) {
		if (i >= len)
			return TERN_E_INCOMPLETE;
		uint8_t b = buf[i];
		value |= (uint32_t)(b & 0x7Fu) << (7u * i);
		if ((b & 0x80u) == 0) {
			/* A last byte of 0 after a continuation byte adds
			 * nothing: a shorter encoding exists [MQTT-1.5.5-1]. */
			if (i > 0 && b == 0)
				return TERN_E_MALFORMED;
			*v = value;
			*used = i + 1;
			return TERN_OK;
		}
	}
	return TERN_E_MALFORMED;
}

/*
 * Validates UTF-8 as RFC 3629 defines it, plus the MQTT rules: no U+0000
 * [MQTT-1.5.4-2], no UTF-16 surrogates U+D800..U+DFFF [MQTT-1.5.4-1] (RFC
 * 3629 forbids them too), no overlong forms, nothing above U+10FFFF.
 * Control characters and non-characters are allowed here: the
 * specifications only say a receiver MAY reject them, and tern does so only
 * for the strings that name things (tern_utf8_name_valid()).
 */
bool tern_utf8_valid(const uint8_t *s, size_t len)
{
	return len <= 65535u && tern_utf8_data_valid(s, len);
}

bool tern_utf8_data_valid(const uint8_t *s, size_t len)
{
	size_t i = 0;
	while (i < len) {
		uint8_t c = s[i];
		if (c < 0x80u) {
			if (c == 0)
				return false;
			i++;
			continue;
		}
		uint32_t cp;
		size_t n = tern__utf8_multi(s + i, len - i, &cp);
		if (n == 0)
			return false;
		i += n;
	}
	return true;
}

bool tern__utf8_no_controls(const uint8_t *s, size_t len)
{
	/* Well-formed already, so a byte below 0x80 is a whole character and
	 * U+0080..U+009F is exactly C2 80..C2 9F. */
	for (size_t i = 0; i < len; i++) {
		uint8_t c = s[i];
		if (c < 0x20u || c == 0x7Fu)
			return false;
		if (c == 0xC2u && i + 1 < len && s[i + 1] <= 0x9Fu)
			return false;
	}
	return true;
}

bool tern_utf8_name_valid(const uint8_t *s, size_t len)
{
	return tern_utf8_valid(s, len) && tern__utf8_no_controls(s, len);
}

enum tern_err tern__rd_u8(struct tern__rd *r, uint8_t *v)
{
	if (tern__rd_left(r) < 1)
		return TERN_E_MALFORMED;
	*v = r->p[r->pos++];
	return TERN_OK;
}

enum tern_err tern__rd_u16(struct tern__rd *r, uint16_t *v)
{
	if (tern__rd_left(r) < 2)
		return TERN_E_MALFORMED;
	*v = (uint16_t)((uint16_t)r->p[r->pos] << 8 | r->p[r->pos + 1]);
	r->pos += 2;
	return TERN_OK;
}

enum tern_err tern__rd_u32(struct tern__rd *r, uint32_t *v)
{
	if (tern__rd_left(r) < 4)
		return TERN_E_MALFORMED;
	const uint8_t *p = r->p + r->pos;
	*v = (uint32_t)p[0] << 24 | (uint32_t)p[1] << 16 | (uint32_t)p[2] << 8 | p[3];
	r->pos += 4;
	return TERN_OK;
}

enum tern_err tern__rd_vbi(struct tern__rd *r, uint32_t *v)
{
	uint32_t used;
	enum tern_err e = tern__vbi_decode(r->p + r->pos, tern__rd_left(r), v, &used);
	if (e == TERN_E_INCOMPLETE)
		return TERN_E_MALFORMED;
	if (e != TERN_OK)
		return e;
	r->pos += used;
	return TERN_OK;
}

enum tern_err tern__rd_bin(struct tern__rd *r, struct tern_bytes *b)
{
	uint16_t n;
	enum tern_err e = tern__rd_u16(r, &n);
	if (e != TERN_OK)
		return e;
	if (tern__rd_left(r) < n)
		return TERN_E_MALFORMED;
	b->data = r->p + r->pos;
	b->len = n;
	r->pos += n;
	return TERN_OK;
}

enum tern_err tern__rd_str(struct tern__rd *r, struct tern_bytes *b)
{
	enum tern_err e = tern__rd_bin(r, b);
	if (e != TERN_OK)
		return e;
	return tern_utf8_valid(b->data, b->len) ? TERN_OK : TERN_E_MALFORMED;
}

enum tern_err tern__rd_name(struct tern__rd *r, struct tern_bytes *b)
{
	enum tern_err e = tern__rd_bin(r, b);
	if (e != TERN_OK)
		return e;
	return tern_utf8_name_valid(b->data, b->len) ? TERN_OK : TERN_E_MALFORMED;
}

void tern__wr_bytes(struct tern__wr *w, const void *src, size_t n)
{
	if (w->buf != NULL && !w->overflow) {
		if (n > w->cap - w->len)
			w->overflow = true;
		else if (n > 0)
			memcpy(w->buf + w->len, src, n);
	}
	w->len += n;
}

void tern__wr_u8(struct tern__wr *w, uint8_t v)
{
	tern__wr_bytes(w, &v, 1);
}

void tern__wr_u16(struct tern__wr *w, uint16_t v)
{
	uint8_t b[2] = {(uint8_t)(v >> 8), (uint8_t)v};
	tern__wr_bytes(w, b, 2);
}

void tern__wr_u32(struct tern__wr *w, uint32_t v)
{
	uint8_t b[4] = {(uint8_t)(v >> 24), (uint8_t)(v >> 16), (uint8_t)(v >> 8), (uint8_t)v};
	tern__wr_bytes(w, b, 4);
}

void tern__wr_vbi(struct tern__wr *w, uint32_t v)
{
	uint8_t b[4];
	size_t n = 0;
	do {
		uint8_t d = (uint8_t)(v & 0x7Fu);
		v >>= 7;
		if (v > 0)
			d |= 0x80u;
		b[n++] = d;
	} while (v > 0 && n < 4);
	tern__wr_bytes(w, b, n);
}

void tern__wr_bin(struct tern__wr *w, struct tern_bytes b)
{
	tern__wr_u16(w, (uint16_t)b.len);
	tern__wr_bytes(w, b.data, b.len);
}
