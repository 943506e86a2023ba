/*
 * subject.c - topics, filters and queue groups as NATS subjects; the
 * mapping is described in subject.h.
 *
 * Every output goes through a `struct out`, a bounded writer over the
 * caller's buffer that stops counting room at max and remembers that it
 * did, so each function writes straight through and checks once at the
 * end; the buffer is always NUL-terminated, and on error holds the empty
 * string rather than a truncated subject someone could subscribe to.
 */
#include "cluster/subject.h"

#include <stdbool.h>
#include <stdint.h>
#include <string.h>

#include "proto/topic.h"

/* A bounded writer: buf has room for max + 1 bytes. */
struct out {
	char *buf;
	size_t max;
	size_t len;
	bool over;
};

static void put(struct out *o, char c)
{
	if (o->len >= o->max) {
		o->over = true;
		return;
	}
	o->buf[o->len++] = c;
}

static void put_str(struct out *o, const char *s)
{
	while (*s)
		put(o, *s++);
}

/* True for the bytes a token holds as %XX. */
static bool must_escape(uint8_t c)
{
	return c <= 0x20 || c == 0x7f || c == '.' || c == '*' || c == '>' || c == '%';
}

static const char hex[] = "0123456789ABCDEF";

/* Writes p[0..n) as one token: "%" when empty, else byte for byte with the
 * bytes of must_escape() as %XX. */
static void put_token(struct out *o, const uint8_t *p, size_t n)
{
	if (n == 0) {
		put(o, '%');
		return;
	}
	for (size_t i = 0; i < n && !o->over; i++) {
		if (must_escape(p[i])) {
			put(o, '%');
			put(o, hex[p[i] >> 4]);
			put(o, hex[p[i] & 15]);
		} else {
			put(o, (char)p[i]);
		}
	}
}

/* NUL-terminates; on overflow leaves the empty string. */
static enum tern_err finish(struct out *o, size_t *len)
{
	if (o->over) {
		o->buf[0] = '\0';
		return TERN_E_LIMIT;
	}
	o->buf[o->len] = '\0';
	*len = o->len;
	return TERN_OK;
}

enum tern_err subject_cluster_check(const char *cluster)
{
	if (cluster == NULL)
		return TERN_E_INVALID;
	size_t n = 0;
	for (; cluster[n]; n++) {
		char c = cluster[n];
		bool ok = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') ||
		          (c >= '0' && c <= '9') || c == '_' || c == '-';
		if (!ok || n >= SUBJECT_CLUSTER_MAX)
			return TERN_E_INVALID;
	}
	return n > 0 ? TERN_OK : TERN_E_INVALID;
}

/* "<cluster>.m" or "<cluster>.d", by the first byte of the topic or
 * filter. */
static void put_prefix(struct out *o, const char *cluster, struct tern_bytes t)
{
	put_str(o, cluster);
	put_str(o, t.len > 0 && t.data[0] == '$' ? ".d" : ".m");
}

/* The levels of t, each as ".token"; with wild, a level "+" is ".*" and a
 * last level "#" is ".>". */
static void put_levels(struct out *o, struct tern_bytes t, bool wild)
{
	struct topic_iter it;
	struct topic_level lv;
	topic_iter_init(&it, t.data, t.len);
	while (!o->over && topic_iter_next(&it, &lv)) {
		put(o, '.');
		if (wild && topic_level_is(&lv, '+'))
			put(o, '*');
		else if (wild && lv.last && topic_level_is(&lv, '#'))
			put(o, '>');
		else
			put_token(o, lv.p, lv.len);
	}
}

enum tern_err subject_of_topic(const char *cluster, struct tern_bytes topic, char *out, size_t max,
                               size_t *len)
{
	out[0] = '\0';
	if (subject_cluster_check(cluster) != TERN_OK)
		return TERN_E_INVALID;
	struct out o = {out, max, 0, false};
	put_prefix(&o, cluster, topic);
	put_levels(&o, topic, false);
	return finish(&o, len);
}

enum tern_err subject_of_filter(const char *cluster, struct tern_bytes filter, char *out,
                                char *parent, size_t max, size_t *n)
{
	out[0] = '\0';
	if (subject_cluster_check(cluster) != TERN_OK)
		return TERN_E_INVALID;
	struct out o = {out, max, 0, false};
	size_t len;
	put_prefix(&o, cluster, filter);
	put_levels(&o, filter, true);
	enum tern_err e = finish(&o, &len);
	if (e != TERN_OK)
		return e;
	*n = 1;
	/* "x/#" (not "#" alone): the subject ends in ".>" after at least one
	 * token of the filter, and the parent is the subject without it. */
	bool parent_too = filter.len >= 2 && filter.data[filter.len - 1] == '#' &&
	                  filter.data[filter.len - 2] == '/';
	if (parent_too) {
		memcpy(parent, out, len - 2);
		parent[len - 2] = '\0';
		*n = 2;
	}
	return TERN_OK;
}

/* The value of hex digit c (upper case only, as put_token() writes), or
 * -1. */
static int hex_value(char c)
{
	if (c >= '0' && c <= '9')
		return c - '0';
	if (c >= 'A' && c <= 'F')
		return c - 'A' + 10;
	return -1;
}

/* Decodes token s[0..n) into out at *pos; false unless it is exactly what
 * put_token() writes for some level. */
static bool get_token(const char *s, size_t n, uint8_t *out, size_t cap, size_t *pos)
{
	if (n == 1 && s[0] == '%')
		return true;
	for (size_t i = 0; i < n; i++) {
		uint8_t c = (uint8_t)s[i];
		if (c == '%') {
			int hi = i + 2 < n ? hex_value(s[i + 1]) : -1;
			int lo = i + 2 < n ? hex_value(s[i + 2]) : -1;
			if (hi < 0 || lo < 0 || !must_escape((uint8_t)(hi << 4 | lo)))
				return false;
			c = (uint8_t)(hi << 4 | lo);
			i += 2;
		} else if (must_escape(c)) {
			return false;
		}
		if (*pos >= cap)
			return false;
		out[(*pos)++] = c;
	}
	return true;
}

enum tern_err subject_to_topic(const char *cluster, const char *subject, size_t len, uint8_t *out,
                               size_t cap, size_t *out_len)
{
	if (subject_cluster_check(cluster) != TERN_OK)
		return TERN_E_INVALID;
	size_t cl = strlen(cluster);
	if (len < cl + 4 || memcmp(subject, cluster, cl) != 0 || subject[cl] != '.' ||
	    (subject[cl + 1] != 'm' && subject[cl + 1] != 'd') || subject[cl + 2] != '.')
		return TERN_E_INVALID;
	bool dollar = subject[cl + 1] == 'd';
	/* A topic is never longer than its subject's levels, so a buffer of
	 * that size always fits; a smaller one is refused up front rather than
	 * half written. */
	size_t i = cl + 3, pos = 0;
	if (cap < len - i)
		return TERN_E_BUFFER;
	for (bool first = true;; first = false) {
		size_t j = i;
		while (j < len && subject[j] != '.')
			j++;
		if (j == i)
			return TERN_E_INVALID; /* an empty token */
		if (!first)
			out[pos++] = '/';
		if (!get_token(subject + i, j - i, out, cap, &pos))
			return TERN_E_INVALID;
		if (j == len)
			break;
		i = j + 1;
	}
	if ((pos > 0 && out[0] == '$') != dollar)
		return TERN_E_INVALID;
	*out_len = pos;
	return TERN_OK;
}

enum tern_err subject_queue_shared(const char *cluster, struct tern_bytes group,
                                   struct tern_bytes filter, char *out, size_t max, size_t *len)
{
	out[0] = '\0';
	if (subject_cluster_check(cluster) != TERN_OK)
		return TERN_E_INVALID;
	struct out o = {out, max, 0, false};
	put_str(&o, cluster);
	put_str(&o, ".s.");
	put_token(&o, group.data, group.len);
	/* The filter's subject without the cluster token: "m..." or "d...". */
	put(&o, '.');
	put(&o, filter.len > 0 && filter.data[0] == '$' ? 'd' : 'm');
	put_levels(&o, filter, true);
	return finish(&o, len);
}

enum tern_err subject_queue_node(const char *cluster, struct tern_bytes node, char *out, size_t max,
                                 size_t *len)
{
	out[0] = '\0';
	if (subject_cluster_check(cluster) != TERN_OK)
		return TERN_E_INVALID;
	struct out o = {out, max, 0, false};
	put_str(&o, cluster);
	put_str(&o, ".n.");
	put_token(&o, node.data, node.len);
	return finish(&o, len);
}
