/*
 * proto_internal.h - helpers shared by the files of the codec (src/proto).
 *
 * Decoding reads through a `struct tern__rd`, a bounded cursor over one
 * packet body: every read checks the bounds, so a decoder function never
 * indexes the buffer itself. Encoding writes through a `struct tern__wr`,
 * which either writes into a caller buffer or, with buf == NULL, only
 * counts. Every encoder runs once in counting mode (which also validates)
 * to learn the body size and once for real, so the size functions and the
 * encoders can never disagree. Nothing here is visible outside the codec.
 */
#ifndef TERN_PROTO_INTERNAL_H
#define TERN_PROTO_INTERNAL_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include "tern/codec.h"

/* A bounded read cursor over p[0..len). */
struct tern__rd {
	const uint8_t *p;
	uint32_t len;
	uint32_t pos;
};

/* A write cursor. buf == NULL counts only; otherwise bytes past cap set
 * overflow and are not written, while len keeps counting. */
struct tern__wr {
	uint8_t *buf;
	size_t cap;
	size_t len;
	bool overflow;
};

/* Pseudo packet type used for the will properties of a CONNECT. */
#define TERN__WILL 0

/* ---- wire.c: primitive types ---- */

/* Number of bytes the VBI encoding of v takes (1..4); v <= TERN_VBI_MAX. */
size_t tern__vbi_size(uint32_t v);

/* Decodes a variable byte integer at buf[0..len). Sets *v and *used.
 * TERN_E_INCOMPLETE if len ends inside it, TERN_E_MALFORMED if it is longer
 * than 4 bytes or not minimally encoded [MQTT-1.5.5-1]. */
TERN_MUST_CHECK enum tern_err tern__vbi_decode(const uint8_t *buf, size_t len, uint32_t *v,
                                               uint32_t *used);

/* Bytes left to read. */
static inline uint32_t tern__rd_left(const struct tern__rd *r)
{
	return r->len - r->pos;
}

/* True if s[0..len), known to be valid UTF-8, holds no control character
 * U+0001..U+001F, U+007F..U+009F (the disallowed code points of 3.1.1
 * section 1.5.3 and 5.0 section 1.5.4 that are not non-characters). */
bool tern__utf8_no_controls(const uint8_t *s, size_t len);

/* Decodes the character at s[0..left) whose lead byte s[0] is 0x80 or
 * more, by RFC 3629 and the MQTT rules (tern_utf8_data_valid()): no
 * overlong form, no UTF-16 surrogate, nothing above U+10FFFF. Returns its
 * length (2..4) and sets *cp, or returns 0 if the bytes are not one
 * well-formed character. Inline: the UTF-8 walks call it per character. */
static inline size_t tern__utf8_multi(const uint8_t *s, size_t left, uint32_t *cp)
{
	uint8_t c = s[0];
	size_t n;
	uint32_t v, min;
	if (c >= 0xC2u && c <= 0xDFu) {
		n = 1;
		v = c & 0x1Fu;
		min = 0x80u;
	} else if ((c & 0xF0u) == 0xE0u) {
		n = 2;
		v = c & 0x0Fu;
		min = 0x800u;
	} else if (c >= 0xF0u && c <= 0xF4u) {
		n = 3;
		v = c & 0x07u;
		min = 0x10000u;
	} else {
		/* 0x80..0xC1 (continuation, overlong lead) or 0xF5.. */
		return 0;
	}
	if (n > left - 1)
		return 0;
	for (size_t k = 1; k <= n; k++) {
		uint8_t cc = s[k];
		if ((cc & 0xC0u) != 0x80u)
			return 0;
		v = (v << 6) | (cc & 0x3Fu);
	}
	if (v < min || v > 0x10FFFFu || (v >= 0xD800u && v <= 0xDFFFu))
		return 0;
	*cp = v;
	return n + 1;
}

/* Each reader returns TERN_OK, or TERN_E_MALFORMED when the body ends
 * before the value does. Strings (rd_str) are also checked to be valid
 * UTF-8 [MQTT-1.5.4-1] [MQTT-1.5.4-2] (TERN_E_MALFORMED otherwise); binary
 * data (rd_bin) is not. */
TERN_MUST_CHECK enum tern_err tern__rd_u8(struct tern__rd *r, uint8_t *v);
TERN_MUST_CHECK enum tern_err tern__rd_u16(struct tern__rd *r, uint16_t *v);
TERN_MUST_CHECK enum tern_err tern__rd_u32(struct tern__rd *r, uint32_t *v);
TERN_MUST_CHECK enum tern_err tern__rd_vbi(struct tern__rd *r, uint32_t *v);
TERN_MUST_CHECK enum tern_err tern__rd_bin(struct tern__rd *r, struct tern_bytes *b);
TERN_MUST_CHECK enum tern_err tern__rd_str(struct tern__rd *r, struct tern_bytes *b);
/* A string that names something (client identifier, username, topic name
 * or filter): also free of control characters (tern_utf8_name_valid()),
 * TERN_E_MALFORMED otherwise. */
TERN_MUST_CHECK enum tern_err tern__rd_name(struct tern__rd *r, struct tern_bytes *b);

/* Writers never fail; check w->overflow at the end. */
void tern__wr_bytes(struct tern__wr *w, const void *src, size_t n);
void tern__wr_u8(struct tern__wr *w, uint8_t v);
void tern__wr_u16(struct tern__wr *w, uint16_t v);
void tern__wr_u32(struct tern__wr *w, uint32_t v);
void tern__wr_vbi(struct tern__wr *w, uint32_t v);
/* Two-byte length then the bytes; the caller has checked len <= 65535. */
void tern__wr_bin(struct tern__wr *w, struct tern_bytes b);

/* ---- props.c: MQTT 5.0 properties ---- */

/* Decodes a property block (length VBI, then properties) at r for packet
 * type ptype (TERN__WILL for will properties), enforcing the allowed-
 * property table of section 2.2.2.2, duplicates and value ranges. */
TERN_MUST_CHECK enum tern_err tern__props_decode(struct tern__rd *r, int ptype,
                                                 struct tern_props *out);

/* Checks that p can be encoded for packet type ptype: only allowed
 * properties, values in range, strings valid. TERN_E_INVALID otherwise. */
TERN_MUST_CHECK enum tern_err tern__props_check(const struct tern_props *p, int ptype);

/* Writes the property block of p (length VBI, then the properties). The
 * caller has run tern__props_check(). */
void tern__props_write(struct tern__wr *w, const struct tern_props *p);

/* ---- error.c: reason codes ---- */

/* True if code is a reason code the packet type may carry in version. */
bool tern__reason_valid(int ptype, uint8_t version, uint8_t code);

/* ---- topic.c ---- */

/* What one pass over a topic name found (tern__topic_name_scan()). */
enum tern__topic_scan {
	TERN__TOPIC_OK,
	TERN__TOPIC_WILDCARD,  /* well-formed, but holds '+' or '#' */
	TERN__TOPIC_MALFORMED, /* ill-formed UTF-8 or a control character */
};

/* Checks t[0..len) in one pass for everything a topic name's bytes must
 * be: a valid MQTT string (tern_utf8_valid(): well-formed UTF-8, no
 * U+0000, at most 65535 bytes), free of control characters
 * (tern_utf8_name_valid()) and of wildcards [MQTT-3.3.2-2]. MALFORMED
 * wins over WILDCARD wherever the bytes are. An empty name is OK here: the
 * callers decide what it means. */
enum tern__topic_scan tern__topic_name_scan(const uint8_t *t, size_t len);

/* tern_topic_name_check() as a bool: non-empty, and the scan above OK
 * (so the bytes are a valid MQTT string as well). */
bool tern__topic_name_ok(const uint8_t *t, size_t len);
/* The rules of tern_topic_filter_check() for a string already known to be
 * valid UTF-8. */
bool tern__topic_filter_ok(const uint8_t *f, size_t len);
/* True if f, which tern__topic_filter_ok() refused, is a well-formed Topic
 * Filter by the wildcard rules (4.7.1) that starts with "$share/" but lacks
 * a ShareName or the Topic Filter after it (4.8.2): a Protocol Error, not a
 * Malformed Packet. */
bool tern__topic_filter_share_misshaped(const uint8_t *f, size_t len);

#endif
