/*
 * json.c - the admin API's JSON writer (json.h).
 *
 * Strings are escaped per RFC 8259 section 7: '"', '\\' and U+0000..U+001F
 * (as \n, \t ... or \u00XX), and U+007F as \u007f so that a terminal
 * showing the answer is not driven by it. A byte sequence that is not
 * well-formed UTF-8 (RFC 3629: no overlongs, no surrogates, at most
 * U+10FFFF) becomes one U+FFFD per byte it spans, so what comes out is
 * always valid JSON text.
 */
#include <math.h>
#include <stdio.h>
#include <string.h>

#include "http/json.h"

static void put(struct json *j, const void *p, size_t n)
{
	if (j->err == TERN_OK)
		j->err = buf_append(j->out, p, n, 0);
}

static void put_c(struct json *j, const char *s)
{
	put(j, s, strlen(s));
}

/* Length of the well-formed UTF-8 sequence at s (at most n bytes), 0 when
 * the bytes there are not one. */
static size_t utf8_seq(const uint8_t *s, size_t n)
{
	uint8_t c = s[0];
	if (c < 0x80)
		return 1;
	size_t len;
	uint8_t lo = 0x80, hi = 0xBF;
	if (c >= 0xC2 && c <= 0xDF) {
		len = 2;
	} else if (c >= 0xE0 && c <= 0xEF) {
		len = 3;
		if (c == 0xE0)
			lo = 0xA0; /* overlong below */
		else if (c == 0xED)
			hi = 0x9F; /* surrogates above */
	} else if (c >= 0xF0 && c <= 0xF4) {
		len = 4;
		if (c == 0xF0)
			lo = 0x90;
		else if (c == 0xF4)
			hi = 0x8F; /* above U+10FFFF */
	} else {
		return 0;
	}
	if (n < len || s[1] < lo || s[1] > hi)
		return 0;
	for (size_t i = 2; i < len; i++)
		if (s[i] < 0x80 || s[i] > 0xBF)
			return 0;
	return len;
}

enum tern_err json_escape(struct buf *out, const uint8_t *s, size_t len)
{
	if (len == 0)
		return TERN_OK; /* s may be NULL then */
	size_t run = 0;         /* start of the bytes copied as they are */
	enum tern_err err = TERN_OK;
	for (size_t i = 0; i < len && !err;) {
		uint8_t c = s[i];
		size_t seq = utf8_seq(s + i, len - i);
		if (seq > 1 || (seq == 1 && c >= 0x20 && c != '"' && c != '\\' && c != 0x7F)) {
			i += seq;
			continue;
		}
		err = buf_append(out, s + run, i - run, 0);
		char esc[8];
		const char *e = esc;
		switch (c) {
		case '"':
			e = "\\\"";
			break;
		case '\\':
			e = "\\\\";
			break;
		case '\n':
			e = "\\n";
			break;
		case '\r':
			e = "\\r";
			break;
		case '\t':
			e = "\\t";
			break;
		case '\b':
			e = "\\b";
			break;
		case '\f':
			e = "\\f";
			break;
		default:
			if (seq == 0)
				e = "\\ufffd";
			else
				snprintf(esc, sizeof(esc), "\\u%04x", c);
		}
		if (!err)
			err = buf_append(out, e, strlen(e), 0);
		i++;
		run = i;
	}
	if (!err)
		err = buf_append(out, s + run, len - run, 0);
	return err;
}

void json_init(struct json *j, struct buf *out)
{
	memset(j, 0, sizeof(*j));
	j->out = out;
}

/* Writes the comma and the key due before a value at the current level. */
static void lead(struct json *j, const char *key)
{
	if (j->err)
		return;
	uint32_t bit = 1u << j->depth;
	bool in_array = j->depth == 0 || (j->is_array & bit);
	if ((key != NULL) == in_array) {
		j->err = TERN_E_INVALID; /* a key in an array, or none in an object */
		return;
	}
	if (j->has_items & bit)
		put(j, ",", 1);
	j->has_items |= bit;
	if (key) {
		put(j, "\"", 1);
		if (j->err == TERN_OK)
			j->err = json_escape(j->out, (const uint8_t *)key, strlen(key));
		put(j, "\":", 2);
	}
}

static void open_level(struct json *j, const char *key, bool array)
{
	lead(j, key);
	if (j->err)
		return;
	if (j->depth + 1 >= JSON_DEPTH_MAX) {
		j->err = TERN_E_INVALID;
		return;
	}
	j->depth++;
	uint32_t bit = 1u << j->depth;
	j->has_items &= ~bit;
	if (array)
		j->is_array |= bit;
	else
		j->is_array &= ~bit;
	put(j, array ? "[" : "{", 1);
}

static void close_level(struct json *j, bool array)
{
	if (j->err)
		return;
	if (j->depth == 0 || !!(j->is_array & (1u << j->depth)) != array) {
		j->err = TERN_E_INVALID;
		return;
	}
	j->depth--;
	put(j, array ? "]" : "}", 1);
}

void json_obj(struct json *j, const char *key)
{
	open_level(j, key, false);
}

void json_obj_end(struct json *j)
{
	close_level(j, false);
}

void json_arr(struct json *j, const char *key)
{
	open_level(j, key, true);
}

void json_arr_end(struct json *j)
{
	close_level(j, true);
}

void json_str(struct json *j, const char *key, const uint8_t *s, size_t len)
{
	lead(j, key);
	put(j, "\"", 1);
	if (j->err == TERN_OK)
		j->err = json_escape(j->out, s, len);
	put(j, "\"", 1);
}

void json_cstr(struct json *j, const char *key, const char *s)
{
	if (!s)
		json_null(j, key);
	else
		json_str(j, key, (const uint8_t *)s, strlen(s));
}

void json_u64(struct json *j, const char *key, uint64_t v)
{
	char n[24];
	lead(j, key);
	snprintf(n, sizeof(n), "%llu", (unsigned long long)v);
	put_c(j, n);
}

void json_num(struct json *j, const char *key, double v)
{
	if (!isfinite(v)) {
		json_null(j, key);
		return;
	}
	char n[32];
	lead(j, key);
	/* Integral values print without an exponent or fraction. */
	if (v == floor(v) && fabs(v) < 1e15)
		snprintf(n, sizeof(n), "%.0f", v);
	else
		snprintf(n, sizeof(n), "%.6g", v);
	put_c(j, n);
}

void json_bool(struct json *j, const char *key, bool v)
{
	lead(j, key);
	put_c(j, v ? "true" : "false");
}

void json_null(struct json *j, const char *key)
{
	lead(j, key);
	put_c(j, "null");
}

void json_raw(struct json *j, const char *key, const uint8_t *text, size_t len)
{
	lead(j, key);
	put(j, text, len);
}

enum tern_err json_end(const struct json *j)
{
	if (j->err)
		return j->err;
	return j->depth ? TERN_E_INVALID : TERN_OK;
}
