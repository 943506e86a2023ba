/*
 * format.c - how `tern sub` prints a message: the payload alone, -v
 * ("topic payload"), or a -F format string, each followed by a newline
 * unless -N.
 *
 * -F is mosquitto_sub's format language (man mosquitto_sub, OUTPUT
 * FORMAT): %-sequences for message fields and v5 properties, with
 * printf-like flags ('-' left-align, '0' zero-pad), a minimum field width
 * and, for strings, a maximum width after '.'; @-sequences handed to
 * strftime(3) (@N: nanoseconds); and \-escapes. Where mosquitto's output
 * differs from its own manual we follow the manual: a field width pads
 * %p / %x / %X but never truncates the payload, and the JSON time stamp
 * is "2020-05-06T22:12:00.000000+0100" without mosquitto 2.0's stray 'Z'.
 * Unlike mosquitto, an unknown sequence is an error when the options are
 * read, not silently printed as nothing.
 *
 * %j and %J print the message as one JSON object in the layout of
 * mosquitto_sub built with cJSON: tst, topic, qos, retain, payloadlen, mid
 * (QoS > 0), properties (v5, when there are any), payload. --pretty lays
 * it out as cJSON_Print() does (tabs, one member a line). For %J the
 * payload must itself be JSON: it is checked by a small recursive parser
 * (bounded depth: the payload comes from the network) and copied with
 * insignificant white space removed, or re-indented for --pretty; numbers
 * and strings are copied as written, where cJSON would re-format them.
 *
 * Times are taken once per message, so every field of one line agrees.
 */
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "tools.h"

/* The flags, width and precision of one %-sequence. */
struct spec {
	bool left;
	char pad;
	int width;
	int prec; /* -1: none */
};

/* The message being printed and its time stamp. */
struct fmsg {
	const struct tern_message *m;
	struct timespec now;
	struct tm tm;
};

static const char conversions[] = "%ACDEFIjJlmPpqRrStUxX";
static const char escapes[] = "\\0aenrtv";

/* Reads the flags, width and precision after a '%' at fmt[*i] and returns
 * the conversion character (0 at the end of the string), leaving *i on
 * it. Widths are capped so that a hostile -F cannot ask for gigabytes. */
static char parse_spec(const char *fmt, size_t *i, struct spec *sp)
{
	sp->left = false;
	sp->pad = ' ';
	sp->width = 0;
	sp->prec = -1;
	if (fmt[*i] == '-') {
		sp->left = true;
		(*i)++;
	}
	if (fmt[*i] == '0') {
		if (!sp->left)
			sp->pad = '0';
		(*i)++;
	}
	while (fmt[*i] >= '0' && fmt[*i] <= '9') {
		if (sp->width < 100000)
			sp->width = sp->width * 10 + (fmt[*i] - '0');
		(*i)++;
	}
	if (fmt[*i] == '.') {
		(*i)++;
		sp->prec = 0;
		while (fmt[*i] >= '0' && fmt[*i] <= '9') {
			if (sp->prec < 100000)
				sp->prec = sp->prec * 10 + (fmt[*i] - '0');
			(*i)++;
		}
	}
	return fmt[*i];
}

bool format_check(const struct tool_opts *o, const char *fmt)
{
	struct spec sp;

	for (size_t i = 0; fmt[i] != '\0'; i++) {
		size_t start = i;
		char c;

		if (fmt[i] == '%') {
			i++;
			c = parse_spec(fmt, &i, &sp);
			if (c == '\0' || strchr(conversions, c) == NULL) {
				opts_error(o,
				           "-F: unknown format sequence '%.*s' (see 'man "
				           "mosquitto_sub', OUTPUT FORMAT).",
				           (int)(i - start + (c != '\0')), fmt + start);
				return false;
			}
		} else if (fmt[i] == '@' || fmt[i] == '\\') {
			c = fmt[i + 1];
			if (c == '\0' || (fmt[i] == '\\' && strchr(escapes, c) == NULL)) {
				opts_error(o, "-F: unknown format sequence '%.*s'.", c ? 2 : 1,
				           fmt + i);
				return false;
			}
			i++;
		}
	}
	return true;
}

static void put_pad(FILE *f, char c, int n)
{
	while (n-- > 0)
		fputc(c, f);
}

static void put_int(FILE *f, const struct spec *sp, unsigned long v)
{
	char buf[32];
	int n = snprintf(buf, sizeof(buf), "%lu", v);

	if (!sp->left)
		put_pad(f, sp->pad, sp->width - n);
	fputs(buf, f);
	if (sp->left)
		put_pad(f, ' ', sp->width - n);
}

/* A string field: precision is the maximum width; padding is blanks. */
static void put_str(FILE *f, const struct spec *sp, const void *s, size_t len)
{
	int n;

	if (sp->prec >= 0 && len > (size_t)sp->prec)
		len = (size_t)sp->prec;
	n = len > 100000 ? 100000 : (int)len;
	if (!sp->left)
		put_pad(f, ' ', sp->width - n);
	fwrite(s, 1, len, f);
	if (sp->left)
		put_pad(f, ' ', sp->width - n);
}

/* A missing property: only the padding. */
static void put_blank(FILE *f, const struct spec *sp, bool numeric)
{
	put_pad(f, numeric && !sp->left ? sp->pad : ' ', sp->width);
}

/* The payload, raw (hex 0) or as lower (1) or upper (2) case hex. */
static void put_payload(FILE *f, const struct spec *sp, const uint8_t *p, size_t len, int hex)
{
	static const char *const digits[] = {"0123456789abcdef", "0123456789ABCDEF"};
	size_t shown = hex ? len * 2 : len;
	int n = shown > 100000 ? 100000 : (int)shown;
	char pad = hex && !sp->left ? sp->pad : ' ';

	if (!sp->left)
		put_pad(f, pad, sp->width - n);
	if (hex == 0) {
		fwrite(p, 1, len, f);
	} else {
		for (size_t i = 0; i < len; i++) {
			fputc(digits[hex - 1][p[i] >> 4], f);
			fputc(digits[hex - 1][p[i] & 15], f);
		}
	}
	if (sp->left)
		put_pad(f, ' ', sp->width - n);
}

static bool has(const struct tern_props *p, uint8_t id)
{
	return (p->present & TERN_PROP_BIT(id)) != 0;
}

/* ---- JSON output ---- */

#define JSON_MAX_DEPTH 256

/* A streaming JSON writer; f NULL writes nothing (validation only). */
struct jw {
	FILE *f;
	bool pretty;
	int depth;
	bool first[JSON_MAX_DEPTH + 2];
};

static void jw_putc(struct jw *w, char c)
{
	if (w->f != NULL)
		fputc(c, w->f);
}

static void jw_write(struct jw *w, const void *s, size_t n)
{
	if (w->f != NULL)
		fwrite(s, 1, n, w->f);
}

static void jw_indent(struct jw *w, int n)
{
	while (n-- > 0)
		jw_putc(w, '\t');
}

static void jw_open(struct jw *w, char c)
{
	jw_putc(w, c);
	w->depth++;
	w->first[w->depth] = true;
	if (c == '{' && w->pretty)
		jw_putc(w, '\n');
}

static void jw_close(struct jw *w, char c)
{
	if (c == '}' && w->pretty) {
		if (!w->first[w->depth])
			jw_putc(w, '\n');
		jw_indent(w, w->depth - 1);
	}
	jw_putc(w, c);
	w->depth--;
}

/* Before an array element. */
static void jw_elem(struct jw *w)
{
	if (!w->first[w->depth]) {
		jw_putc(w, ',');
		if (w->pretty)
			jw_putc(w, ' ');
	}
	w->first[w->depth] = false;
}

/* A JSON string with cJSON's escaping; NUL bytes become \u0000. */
static void jw_string(struct jw *w, const void *data, size_t len)
{
	const uint8_t *s = data;
	char buf[8];

	jw_putc(w, '"');
	for (size_t i = 0; i < len; i++) {
		switch (s[i]) {
		case '"':
			jw_write(w, "\\\"", 2);
			break;
		case '\\':
			jw_write(w, "\\\\", 2);
			break;
		case '\b':
			jw_write(w, "\\b", 2);
			break;
		case '\f':
			jw_write(w, "\\f", 2);
			break;
		case '\n':
			jw_write(w, "\\n", 2);
			break;
		case '\r':
			jw_write(w, "\\r", 2);
			break;
		case '\t':
			jw_write(w, "\\t", 2);
			break;
		default:
			if (s[i] < 0x20) {
				snprintf(buf, sizeof(buf), "\\u%04x", s[i]);
				jw_write(w, buf, 6);
			} else {
				jw_putc(w, (char)s[i]);
			}
		}
	}
	jw_putc(w, '"');
}

/* Before an object member: separator, indentation, key. */
static void jw_key(struct jw *w, const void *key, size_t len)
{
	if (!w->first[w->depth]) {
		jw_putc(w, ',');
		if (w->pretty)
			jw_putc(w, '\n');
	}
	w->first[w->depth] = false;
	if (w->pretty)
		jw_indent(w, w->depth);
	jw_string(w, key, len);
	jw_putc(w, ':');
	if (w->pretty)
		jw_putc(w, '\t');
}

static void jw_ckey(struct jw *w, const char *key)
{
	jw_key(w, key, strlen(key));
}

static void jw_uint(struct jw *w, unsigned long v)
{
	if (w->f != NULL)
		fprintf(w->f, "%lu", v);
}

/* ---- JSON payload check and copy (%J) ---- */

struct jp {
	const uint8_t *s;
	size_t len;
	size_t pos;
};

static void jp_ws(struct jp *p)
{
	while (p->pos < p->len && (p->s[p->pos] == ' ' || p->s[p->pos] == '\t' ||
	                           p->s[p->pos] == '\n' || p->s[p->pos] == '\r'))
		p->pos++;
}

static bool jp_lit(struct jp *p, struct jw *w, const char *lit)
{
	size_t n = strlen(lit);

	if (p->len - p->pos < n || memcmp(p->s + p->pos, lit, n) != 0)
		return false;
	jw_write(w, lit, n);
	p->pos += n;
	return true;
}

static bool is_digit(uint8_t c)
{
	return c >= '0' && c <= '9';
}

static bool is_hex(uint8_t c)
{
	return is_digit(c) || (c >= 'a' && c <= 'f') || (c >= 'A' && c <= 'F');
}

/* A string token, copied as written (it is valid JSON already). Returns
 * its extent through *start / *end for use as a key. */
static bool jp_string(struct jp *p, size_t *start, size_t *end)
{
	*start = p->pos;
	if (p->pos >= p->len || p->s[p->pos] != '"')
		return false;
	p->pos++;
	while (p->pos < p->len) {
		uint8_t c = p->s[p->pos++];

		if (c == '"') {
			*end = p->pos;
			return true;
		}
		if (c < 0x20)
			return false;
		if (c == '\\') {
			if (p->pos >= p->len)
				return false;
			c = p->s[p->pos++];
			if (c == 'u') {
				for (int k = 0; k < 4; k++) {
					if (p->pos >= p->len || !is_hex(p->s[p->pos]))
						return false;
					p->pos++;
				}
			} else if (strchr("\"\\/bfnrt", c) == NULL || c == '\0') {
				return false;
			}
		}
	}
	return false;
}

static bool jp_number(struct jp *p, struct jw *w)
{
	size_t start = p->pos;

	if (p->pos < p->len && p->s[p->pos] == '-')
		p->pos++;
	if (p->pos >= p->len || !is_digit(p->s[p->pos]))
		return false;
	if (p->s[p->pos] == '0') {
		p->pos++;
	} else {
		while (p->pos < p->len && is_digit(p->s[p->pos]))
			p->pos++;
	}
	if (p->pos < p->len && p->s[p->pos] == '.') {
		p->pos++;
		if (p->pos >= p->len || !is_digit(p->s[p->pos]))
			return false;
		while (p->pos < p->len && is_digit(p->s[p->pos]))
			p->pos++;
	}
	if (p->pos < p->len && (p->s[p->pos] == 'e' || p->s[p->pos] == 'E')) {
		p->pos++;
		if (p->pos < p->len && (p->s[p->pos] == '+' || p->s[p->pos] == '-'))
			p->pos++;
		if (p->pos >= p->len || !is_digit(p->s[p->pos]))
			return false;
		while (p->pos < p->len && is_digit(p->s[p->pos]))
			p->pos++;
	}
	jw_write(w, p->s + start, p->pos - start);
	return true;
}

static bool jp_value(struct jp *p, struct jw *w)
{
	size_t a, b;

	jp_ws(p);
	if (p->pos >= p->len)
		return false;
	switch (p->s[p->pos]) {
	case '{':
		if (w->depth >= JSON_MAX_DEPTH)
			return false;
		p->pos++;
		jw_open(w, '{');
		jp_ws(p);
		if (p->pos < p->len && p->s[p->pos] == '}') {
			p->pos++;
			jw_close(w, '}');
			return true;
		}
		for (;;) {
			jp_ws(p);
			if (!jp_string(p, &a, &b))
				return false;
			/* The key is copied as written, escapes and all. */
			if (!w->first[w->depth]) {
				jw_putc(w, ',');
				if (w->pretty)
					jw_putc(w, '\n');
			}
			w->first[w->depth] = false;
			if (w->pretty)
				jw_indent(w, w->depth);
			jw_write(w, p->s + a, b - a);
			jw_putc(w, ':');
			if (w->pretty)
				jw_putc(w, '\t');
			jp_ws(p);
			if (p->pos >= p->len || p->s[p->pos] != ':')
				return false;
			p->pos++;
			if (!jp_value(p, w))
				return false;
			jp_ws(p);
			if (p->pos < p->len && p->s[p->pos] == ',') {
				p->pos++;
				continue;
			}
			if (p->pos < p->len && p->s[p->pos] == '}') {
				p->pos++;
				jw_close(w, '}');
				return true;
			}
			return false;
		}
	case '[':
		if (w->depth >= JSON_MAX_DEPTH)
			return false;
		p->pos++;
		jw_open(w, '[');
		jp_ws(p);
		if (p->pos < p->len && p->s[p->pos] == ']') {
			p->pos++;
			jw_close(w, ']');
			return true;
		}
		for (;;) {
			jw_elem(w);
			if (!jp_value(p, w))
				return false;
			jp_ws(p);
			if (p->pos < p->len && p->s[p->pos] == ',') {
				p->pos++;
				continue;
			}
			if (p->pos < p->len && p->s[p->pos] == ']') {
				p->pos++;
				jw_close(w, ']');
				return true;
			}
			return false;
		}
	case '"':
		if (!jp_string(p, &a, &b))
			return false;
		jw_write(w, p->s + a, b - a);
		return true;
	case 't':
		return jp_lit(p, w, "true");
	case 'f':
		return jp_lit(p, w, "false");
	case 'n':
		return jp_lit(p, w, "null");
	default:
		return jp_number(p, w);
	}
}

/* True if the whole of s[0..len) is one JSON value (white space around it
 * allowed); with w writing, copies it. */
static bool json_copy(const uint8_t *s, size_t len, struct jw *w)
{
	struct jp p = {s, len, 0};

	if (!jp_value(&p, w))
		return false;
	jp_ws(&p);
	return p.pos == p.len;
}

/* The v5 properties of a message, in the order mosquitto_sub prints them. */
static void json_props(struct jw *w, const struct tern_props *p)
{
	struct tern_bytes name, value;
	size_t cur = 0;
	uint32_t id;

	if (p->present == 0 && p->n_user == 0 && p->n_sub_ids == 0)
		return;
	jw_ckey(w, "properties");
	jw_open(w, '{');
	while (tern_props_next_sub_id(p, &cur, &id)) {
		jw_ckey(w, "subscription-identifier");
		jw_uint(w, id);
	}
	if (p->n_user > 0) {
		jw_ckey(w, "user-properties");
		jw_open(w, '{');
		cur = 0;
		while (tern_props_next_user(p, &cur, &name, &value)) {
			jw_key(w, name.data, name.len);
			jw_string(w, value.data, value.len);
		}
		jw_close(w, '}');
	}
	if (has(p, TERN_PROP_CONTENT_TYPE)) {
		jw_ckey(w, "content-type");
		jw_string(w, p->content_type.data, p->content_type.len);
	}
	if (has(p, TERN_PROP_RESPONSE_TOPIC)) {
		jw_ckey(w, "response-topic");
		jw_string(w, p->response_topic.data, p->response_topic.len);
	}
	if (has(p, TERN_PROP_CORRELATION_DATA)) {
		jw_ckey(w, "correlation-data");
		jw_string(w, p->correlation_data.data, p->correlation_data.len);
	}
	if (has(p, TERN_PROP_PAYLOAD_FORMAT)) {
		jw_ckey(w, "payload-format-indicator");
		jw_uint(w, p->payload_format);
	}
	if (has(p, TERN_PROP_MESSAGE_EXPIRY)) {
		jw_ckey(w, "message-expiry-interval");
		jw_uint(w, p->message_expiry);
	}
	if (has(p, TERN_PROP_TOPIC_ALIAS)) {
		jw_ckey(w, "topic-alias");
		jw_uint(w, p->topic_alias);
	}
	jw_close(w, '}');
}

/* %j (escaped) and %J (raw JSON payload). Returns false, printing
 * nothing, when %J's payload is not JSON. */
static bool json_message(FILE *f, const struct tool_opts *o, const struct fmsg *fm, bool raw)
{
	const struct tern_message *m = fm->m;
	struct jw w = {.f = f, .pretty = o->pretty};
	char tst[64], zone[16];

	if (raw && m->payload_len > 0) {
		struct jw check = {.f = NULL};

		if (!json_copy(m->payload, m->payload_len, &check))
			return false;
	}
	strftime(tst, sizeof(tst), "%Y-%m-%dT%H:%M:%S", &fm->tm);
	strftime(zone, sizeof(zone), "%z", &fm->tm);
	snprintf(tst + strlen(tst), sizeof(tst) - strlen(tst), ".%06ld%s", fm->now.tv_nsec / 1000,
	         zone);

	jw_open(&w, '{');
	jw_ckey(&w, "tst");
	jw_string(&w, tst, strlen(tst));
	jw_ckey(&w, "topic");
	jw_string(&w, m->topic, m->topic_len);
	jw_ckey(&w, "qos");
	jw_uint(&w, m->qos);
	jw_ckey(&w, "retain");
	jw_uint(&w, m->retain);
	jw_ckey(&w, "payloadlen");
	jw_uint(&w, m->payload_len);
	if (m->qos > 0) {
		jw_ckey(&w, "mid");
		jw_uint(&w, m->packet_id);
	}
	json_props(&w, &m->props);
	jw_ckey(&w, "payload");
	if (m->payload_len == 0)
		fputs("null", f);
	else if (raw)
		json_copy(m->payload, m->payload_len, &w);
	else
		jw_string(&w, m->payload, m->payload_len);
	jw_close(&w, '}');
	return true;
}

/* ---- -F ---- */

static void percent(FILE *f, const struct tool_opts *o, const struct fmsg *fm, char c,
                    const struct spec *sp)
{
	const struct tern_message *m = fm->m;
	const struct tern_props *p = &m->props;
	struct tern_bytes name, value;
	size_t cur = 0;
	uint32_t id;
	char buf[64];

	switch (c) {
	case '%':
		fputc('%', f);
		break;
	case 'A':
		if (has(p, TERN_PROP_TOPIC_ALIAS))
			put_int(f, sp, p->topic_alias);
		else
			put_blank(f, sp, true);
		break;
	case 'C':
		if (has(p, TERN_PROP_CONTENT_TYPE))
			put_str(f, sp, p->content_type.data, p->content_type.len);
		else
			put_blank(f, sp, false);
		break;
	case 'D':
		if (has(p, TERN_PROP_CORRELATION_DATA))
			fwrite(p->correlation_data.data, 1, p->correlation_data.len, f);
		break;
	case 'E':
		if (has(p, TERN_PROP_MESSAGE_EXPIRY))
			put_int(f, sp, p->message_expiry);
		else
			put_blank(f, sp, true);
		break;
	case 'F':
		if (has(p, TERN_PROP_PAYLOAD_FORMAT))
			put_int(f, sp, p->payload_format);
		else
			put_blank(f, sp, true);
		break;
	case 'I':
		strftime(buf, sizeof(buf), "%Y-%m-%dT%H:%M:%S%z", &fm->tm);
		put_str(f, sp, buf, strlen(buf));
		break;
	case 'j':
	case 'J':
		if (!json_message(f, o, fm, c == 'J') && !o->common.quiet)
			fprintf(stderr, "Error: Message payload is not valid JSON on topic %s.\n",
			        m->topic);
		break;
	case 'l':
		put_int(f, sp, m->payload_len);
		break;
	case 'm':
		put_int(f, sp, m->packet_id);
		break;
	case 'P': {
		bool first = true;

		while (tern_props_next_user(p, &cur, &name, &value)) {
			if (!first)
				fputc(' ', f);
			first = false;
			fwrite(name.data, 1, name.len, f);
			fputc(':', f);
			fwrite(value.data, 1, value.len, f);
		}
		break;
	}
	case 'p':
		put_payload(f, sp, m->payload, m->payload_len, 0);
		break;
	case 'q':
		fputc('0' + m->qos, f);
		break;
	case 'R':
		if (has(p, TERN_PROP_RESPONSE_TOPIC))
			put_str(f, sp, p->response_topic.data, p->response_topic.len);
		else
			put_blank(f, sp, false);
		break;
	case 'r':
		fputc(m->retain ? '1' : '0', f);
		break;
	case 'S':
		if (tern_props_next_sub_id(p, &cur, &id))
			put_int(f, sp, id);
		else
			put_blank(f, sp, true);
		break;
	case 't':
		put_str(f, sp, m->topic, m->topic_len);
		break;
	case 'U':
		fprintf(f, "%lld.%09ld", (long long)fm->now.tv_sec, fm->now.tv_nsec);
		break;
	case 'x':
		put_payload(f, sp, m->payload, m->payload_len, 1);
		break;
	case 'X':
		put_payload(f, sp, m->payload, m->payload_len, 2);
		break;
	}
}

static void formatted(FILE *f, const struct tool_opts *o, const struct fmsg *fm)
{
	const char *fmt = o->format;
	struct spec sp;
	char buf[256];
	char strf[3] = {'%', 0, 0};

	for (size_t i = 0; fmt[i] != '\0'; i++) {
		if (fmt[i] == '%') {
			i++;
			percent(f, o, fm, parse_spec(fmt, &i, &sp), &sp);
		} else if (fmt[i] == '@') {
			i++;
			if (fmt[i] == '@') {
				fputc('@', f);
			} else if (fmt[i] == 'N') {
				fprintf(f, "%09ld", fm->now.tv_nsec);
			} else {
				strf[1] = fmt[i];
				if (strftime(buf, sizeof(buf), strf, &fm->tm) > 0)
					fputs(buf, f);
			}
		} else if (fmt[i] == '\\') {
			static const char out[] = "\\\0\a\033\n\r\t\v";

			i++;
			fputc(out[strchr(escapes, fmt[i]) - escapes], f);
		} else {
			fputc(fmt[i], f);
		}
	}
}

void format_message(FILE *out, const struct tool_opts *o, const struct tern_message *msg)
{
	format_message_at(out, o, msg, NULL);
}

void format_message_at(FILE *out, const struct tool_opts *o, const struct tern_message *msg,
                       const struct timespec *at)
{
	struct fmsg fm = {.m = msg};

	if (o->format != NULL) {
		if (at)
			fm.now = *at;
		else
			clock_gettime(CLOCK_REALTIME, &fm.now);
		localtime_r(&fm.now.tv_sec, &fm.tm);
		formatted(out, o, &fm);
		if (!o->no_eol)
			fputc('\n', out);
	} else if (o->verbose) {
		/* mosquitto_sub prints "topic (null)" for an empty payload. */
		if (msg->payload_len > 0) {
			fprintf(out, "%s ", msg->topic);
			fwrite(msg->payload, 1, msg->payload_len, out);
			if (!o->no_eol)
				fputc('\n', out);
		} else if (!o->no_eol) {
			fprintf(out, "%s (null)\n", msg->topic);
		}
	} else if (msg->payload_len > 0) {
		/* An empty payload prints nothing at all, as in mosquitto_sub. */
		fwrite(msg->payload, 1, msg->payload_len, out);
		if (!o->no_eol)
			fputc('\n', out);
	}
	fflush(out);
}
