/*
 * record.c - the pure helpers of record.h: message keys, user properties
 * to and from JSON, a filter's literal prefix. No I/O, no state, so
 * tests/unit/test_archive_record.c checks them alone.
 *
 * User properties are stored as JSON because every database here can query
 * JSON (SQLite's json_each, PostgreSQL's jsonb operators, MongoDB natively)
 * and because a list of pairs keeps what MQTT allows: repeated names and
 * their order [MQTT-3.3.2-18].
 */
#include "archive/record.h"

#include <stdio.h>
#include <string.h>

/* "%016" PRIx64 "-%" PRIu64, by hand: the archive's thread formats one
 * key per row, and snprintf() was some 5 % of its instructions. */
void archive_key_format(char key[ARCHIVE_KEY_MAX], uint64_t boot, uint64_t seq)
{
	static const char hex[] = "0123456789abcdef";
	for (int i = 15; i >= 0; i--, boot >>= 4)
		key[i] = hex[boot & 0xf];
	key[16] = '-';
	char digits[20];
	int n = 0;
	do
		digits[n++] = (char)('0' + seq % 10);
	while ((seq /= 10) != 0);
	for (int i = 0; i < n; i++)
		key[17 + i] = digits[n - 1 - i];
	key[17 + n] = '\0';
}

static TERN_MUST_CHECK enum tern_err put(struct buf *out, const void *p, size_t n)
{
	return buf_append(out, p, n, 0);
}

/* A JSON string of s (valid UTF-8: only quotes, backslashes and control
 * characters need escapes). */
static TERN_MUST_CHECK enum tern_err json_string(struct buf *out, struct tern_bytes s)
{
	enum tern_err e = put(out, "\"", 1);
	size_t run = 0;
	for (size_t i = 0; !e && i <= s.len; i++) {
		uint8_t c = i < s.len ? s.data[i] : 0;
		if (i < s.len && c >= 0x20 && c != '"' && c != '\\')
			continue;
		if (i > run)
			e = put(out, s.data + run, i - run);
		run = i + 1;
		if (e || i == s.len)
			break;
		char esc[8];
		if (c == '"' || c == '\\')
			snprintf(esc, sizeof(esc), "\\%c", c);
		else
			snprintf(esc, sizeof(esc), "\\u%04x", c);
		e = put(out, esc, strlen(esc));
	}
	return e ? e : put(out, "\"", 1);
}

enum tern_err archive_user_json(struct buf *out, struct tern_bytes user_raw)
{
	if (user_raw.len == 0)
		return TERN_OK;
	struct tern_props props = {.raw = user_raw};
	size_t cur = 0, n = 0;
	struct tern_bytes k, v;
	enum tern_err e = put(out, "[", 1);
	while (!e && tern_props_next_user(&props, &cur, &k, &v)) {
		e = put(out, n ? ",[" : "[", n ? 2 : 1);
		if (!e)
			e = json_string(out, k);
		if (!e)
			e = put(out, ",", 1);
		if (!e)
			e = json_string(out, v);
		if (!e)
			e = put(out, "]", 1);
		n++;
	}
	if (!e && n == 0)
		return TERN_E_MALFORMED;
	return e ? e : put(out, "]", 1);
}

/* ---- the reverse: a small parser for exactly [[str, str], ...] ---- */

struct cursor {
	const char *p, *end;
};

static void skip_ws(struct cursor *c)
{
	while (c->p < c->end && (*c->p == ' ' || *c->p == '\t' || *c->p == '\n' || *c->p == '\r'))
		c->p++;
}

static bool eat(struct cursor *c, char ch)
{
	skip_ws(c);
	if (c->p < c->end && *c->p == ch) {
		c->p++;
		return true;
	}
	return false;
}

static int hex4(const char *p)
{
	int v = 0;
	for (int i = 0; i < 4; i++) {
		char ch = p[i];
		v <<= 4;
		if (ch >= '0' && ch <= '9')
			v |= ch - '0';
		else if (ch >= 'a' && ch <= 'f')
			v |= ch - 'a' + 10;
		else if (ch >= 'A' && ch <= 'F')
			v |= ch - 'A' + 10;
		else
			return -1;
	}
	return v;
}

/* Encodes code point cp as UTF-8 into o (4 bytes room); returns bytes. */
static size_t utf8_put(uint8_t *o, uint32_t cp)
{
	if (cp < 0x80) {
		o[0] = (uint8_t)cp;
		return 1;
	}
	if (cp < 0x800) {
		o[0] = (uint8_t)(0xc0 | cp >> 6);
		o[1] = (uint8_t)(0x80 | (cp & 0x3f));
		return 2;
	}
	if (cp < 0x10000) {
		o[0] = (uint8_t)(0xe0 | cp >> 12);
		o[1] = (uint8_t)(0x80 | ((cp >> 6) & 0x3f));
		o[2] = (uint8_t)(0x80 | (cp & 0x3f));
		return 3;
	}
	o[0] = (uint8_t)(0xf0 | cp >> 18);
	o[1] = (uint8_t)(0x80 | ((cp >> 12) & 0x3f));
	o[2] = (uint8_t)(0x80 | ((cp >> 6) & 0x3f));
	o[3] = (uint8_t)(0x80 | (cp & 0x3f));
	return 4;
}

/* A JSON string, unescaped, appended to out as an MQTT string (two bytes
 * of length, then the bytes); false when malformed, not valid UTF-8, too
 * long for an MQTT string, or out of memory (*e says which). */
static bool json_str(struct cursor *c, struct buf *out, enum tern_err *e)
{
	*e = TERN_E_MALFORMED;
	if (!eat(c, '"'))
		return false;
	size_t at = out->len;
	uint8_t zero[2] = {0, 0};
	if ((*e = put(out, zero, 2)))
		return false;
	*e = TERN_E_MALFORMED;
	while (c->p < c->end && *c->p != '"') {
		uint8_t tmp[4];
		size_t k = 1;
		unsigned char ch = (unsigned char)*c->p++;
		if (ch < 0x20)
			return false;
		tmp[0] = ch;
		if (ch == '\\') {
			if (c->p >= c->end)
				return false;
			char esc = *c->p++;
			const char *from = "\"\\/bfnrt", *to = "\"\\/\b\f\n\r\t";
			const char *hit = esc ? strchr(from, esc) : NULL;
			if (hit) {
				tmp[0] = (uint8_t)to[hit - from];
			} else if (esc == 'u') {
				if (c->end - c->p < 4)
					return false;
				int cp = hex4(c->p);
				c->p += 4;
				if (cp < 0 || (cp >= 0xdc00 && cp < 0xe000))
					return false;
				uint32_t u = (uint32_t)cp;
				if (cp >= 0xd800 && cp < 0xdc00) {
					/* A surrogate pair. */
					if (c->end - c->p < 6 || c->p[0] != '\\' || c->p[1] != 'u')
						return false;
					int lo = hex4(c->p + 2);
					if (lo < 0xdc00 || lo > 0xdfff)
						return false;
					c->p += 6;
					u = 0x10000u + (((uint32_t)cp - 0xd800u) << 10) +
					    ((uint32_t)lo - 0xdc00u);
				}
				k = utf8_put(tmp, u);
			} else {
				return false;
			}
		}
		if (out->len - at - 2 + k > 65535)
			return false;
		if (put(out, tmp, k)) {
			*e = TERN_E_NOMEM;
			return false;
		}
	}
	if (c->p >= c->end)
		return false;
	c->p++;
	size_t n = out->len - at - 2;
	uint8_t *d = out->data + out->off + at;
	if (!tern_utf8_valid(d + 2, n))
		return false;
	d[0] = (uint8_t)(n >> 8);
	d[1] = (uint8_t)n;
	*e = TERN_OK;
	return true;
}

enum tern_err archive_user_parse(struct buf *out, const char *json, size_t len)
{
	struct cursor c = {json, json + len};
	size_t mark = out->len;
	enum tern_err e = TERN_E_MALFORMED;
	if (!eat(&c, '['))
		return TERN_E_MALFORMED;
	bool first = true;
	for (;;) {
		if (first && eat(&c, ']'))
			break;
		if (!first && !eat(&c, ',')) {
			if (eat(&c, ']'))
				break;
			goto bad;
		}
		first = false;
		uint8_t tag = TERN_PROP_USER_PROPERTY;
		if (!eat(&c, '['))
			goto bad;
		if ((e = put(out, &tag, 1)))
			goto bad;
		if (!json_str(&c, out, &e))
			goto bad;
		e = TERN_E_MALFORMED;
		if (!eat(&c, ','))
			goto bad;
		if (!json_str(&c, out, &e))
			goto bad;
		e = TERN_E_MALFORMED;
		if (!eat(&c, ']'))
			goto bad;
	}
	skip_ws(&c);
	if (c.p == c.end)
		return TERN_OK;
	e = TERN_E_MALFORMED;
bad:
	out->len = mark;
	return e;
}

struct tern_bytes archive_filter_prefix(struct tern_bytes filter)
{
	uint32_t end = 0;
	for (uint32_t i = 0; i < filter.len; i++) {
		if ((filter.data[i] == '+' || filter.data[i] == '#') &&
		    (i == 0 || filter.data[i - 1] == '/'))
			break;
		if (filter.data[i] == '/' || i + 1 == filter.len)
			end = i + 1;
	}
	/* No wildcard at all: the whole filter is one topic. */
	return (struct tern_bytes){filter.data, end};
}

void archive_filter_init(struct archive_filter *af, struct tern_bytes filter)
{
	af->f = filter;
	bool plus = memchr(filter.data, '+', filter.len) != NULL;
	const uint8_t *hash = memchr(filter.data, '#', filter.len);
	if (!plus && !hash)
		af->kind = AF_EXACT;
	else if (!plus && filter.len == 1)
		af->kind = AF_ALL;
	else if (!plus && hash == filter.data + filter.len - 1 && filter.len >= 2 &&
	         filter.data[filter.len - 2] == '/')
		af->kind = AF_PREFIX;
	else
		af->kind = AF_GENERAL;
}

bool archive_filter_matches(const struct archive_filter *af, struct tern_bytes topic)
{
	const struct tern_bytes f = af->f;
	if (topic.len == 0)
		return false; /* [MQTT-4.7.3-1] */
	switch (af->kind) {
	case AF_EXACT:
		return f.len == topic.len && memcmp(f.data, topic.data, f.len) == 0;
	case AF_ALL:
		/* [MQTT-4.7.2-1]: not the $-topics. */
		return topic.data[0] != '$';
	case AF_PREFIX: {
		/* "a/b/#" is "a/b" and everything under it [MQTT-4.7.1-2]. */
		size_t n = f.len - 2;
		return topic.len >= n && memcmp(f.data, topic.data, n) == 0 &&
		       (topic.len == n || topic.data[n] == '/');
	}
	case AF_GENERAL:
	default:
		return tern_topic_matches(f.data, f.len, topic.data, topic.len);
	}
}
