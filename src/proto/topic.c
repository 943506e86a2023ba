/*
 * topic.c - topic names, topic filters and matching (section 4.7, and
 * shared subscriptions, 4.8.2, of MQTT 5.0).
 *
 * A topic is a sequence of levels separated by '/'; a level may be empty
 * ("a//b" has three levels, "/a" starts with an empty one). A topic name
 * (what PUBLISH carries) holds no wildcard. A topic filter (what SUBSCRIBE
 * carries) may use '+' for exactly one level and '#', last and alone in its
 * level, for any number of levels including none: "a/#" matches "a". A
 * filter "$share/{name}/{filter}" subscribes a group; its name is a
 * non-empty level without wildcards.
 *
 * Control characters (U+0001..U+001F, U+007F..U+009F) are refused in
 * names and filters alike: the specifications let a receiver treat them as
 * malformed, and tern does (tern_utf8_name_valid()), so an encoder, a
 * store loader or an ACL file never accepts a topic the decoder refuses.
 *
 * A topic name's bytes are checked in one pass (tern__topic_name_scan():
 * UTF-8, control characters and wildcards together), so a PUBLISH's topic
 * is walked once on its way in, not once per rule.
 *
 * These functions are used by the decoder, the broker's router and the
 * client alike, so they allocate nothing. They walk levels with the
 * iterator of proto/topic.h, as the router, the retained store and the
 * ACL do, so the rules above are applied to the same levels everywhere.
 */
#include "proto/proto_internal.h"
#include "proto/topic.h"

#define SHARE_PREFIX     "$share/"
#define SHARE_PREFIX_LEN 7u

/* Byte classes for tern__topic_name_scan(): P printable ASCII, W a
 * wildcard, C a control character (U+0000..U+001F, U+007F), M the lead or
 * a continuation byte of a multi-byte character. */
enum { NC_P, NC_W, NC_C, NC_M };
#define NC_ROW(k) k, k, k, k, k, k, k, k, k, k, k, k, k, k, k, k
/* One row of 16 (or two of 8) per line. */
/* clang-format off */
static const uint8_t name_class[256] = {
        NC_ROW(NC_C), /* 0x00 */
        NC_ROW(NC_C), /* 0x10 */
        NC_P, NC_P, NC_P, NC_W, NC_P, NC_P, NC_P, NC_P, /* 0x20: '#' is 0x23 */
        NC_P, NC_P, NC_P, NC_W, NC_P, NC_P, NC_P, NC_P, /* 0x28: '+' is 0x2B */
        NC_ROW(NC_P), /* 0x30 */
        NC_ROW(NC_P), /* 0x40 */
        NC_ROW(NC_P), /* 0x50 */
        NC_ROW(NC_P), /* 0x60 */
        NC_P, NC_P, NC_P, NC_P, NC_P, NC_P, NC_P, NC_P, /* 0x70 */
        NC_P, NC_P, NC_P, NC_P, NC_P, NC_P, NC_P, NC_C, /* 0x78: DEL is 0x7F */
        NC_ROW(NC_M), NC_ROW(NC_M), NC_ROW(NC_M), NC_ROW(NC_M), /* 0x80..0xBF */
        NC_ROW(NC_M), NC_ROW(NC_M), NC_ROW(NC_M), NC_ROW(NC_M), /* 0xC0..0xFF */
};
/* clang-format on */
#undef NC_ROW

enum tern__topic_scan tern__topic_name_scan(const uint8_t *t, size_t len)
{
	bool wild = false;
	if (len > 65535u)
		return TERN__TOPIC_MALFORMED;
	const uint8_t *p = t, *end = t + len;
	for (;;) {
		/* The common bytes in a tight loop; the rest one by one. */
		while (p < end && name_class[*p] == NC_P)
			p++;
		if (p == end)
			break;
		uint8_t k = name_class[*p];
		if (k == NC_W) {
			wild = true;
			p++;
		} else if (k == NC_C) {
			return TERN__TOPIC_MALFORMED;
		} else {
			/* U+0080..U+009F are the C1 controls. */
			uint32_t cp;
			size_t n = tern__utf8_multi(p, (size_t)(end - p), &cp);
			if (n == 0 || cp <= 0x9Fu)
				return TERN__TOPIC_MALFORMED;
			p += n;
		}
	}
	return wild ? TERN__TOPIC_WILDCARD : TERN__TOPIC_OK;
}

bool tern__topic_name_ok(const uint8_t *t, size_t len)
{
	return len > 0 && t != NULL && tern__topic_name_scan(t, len) == TERN__TOPIC_OK;
}

enum tern_err tern_topic_name_check(const uint8_t *t, size_t len)
{
	return tern__topic_name_ok(t, len) ? TERN_OK : TERN_E_TOPIC_NAME;
}

/* Checks the wildcards of a filter that is not a shared subscription:
 * '+' fills a whole level [MQTT-4.7.1-3]; '#' fills the last level
 * [MQTT-4.7.1-2]. */
static bool plain_filter_ok(const uint8_t *f, size_t len)
{
	return len > 0 && topic_filter_wildcards_ok(f, len);
}

bool tern_topic_filter_share(struct tern_bytes filter, struct tern_bytes *group,
                             struct tern_bytes *rest)
{
	if (filter.data == NULL || filter.len < SHARE_PREFIX_LEN ||
	    memcmp(filter.data, SHARE_PREFIX, SHARE_PREFIX_LEN) != 0)
		return false;
	const uint8_t *name = filter.data + SHARE_PREFIX_LEN;
	size_t left = filter.len - SHARE_PREFIX_LEN;
	const uint8_t *slash = memchr(name, '/', left);
	if (slash == NULL)
		return false;
	group->data = name;
	group->len = (uint32_t)(slash - name);
	rest->data = slash + 1;
	rest->len = (uint32_t)(left - group->len - 1);
	return true;
}

bool tern__topic_filter_ok(const uint8_t *f, size_t len)
{
	if (len == 0 || f == NULL || len > 65535u || !tern__utf8_no_controls(f, len))
		return false;
	struct tern_bytes all = {f, (uint32_t)len}, group, rest;
	if (len >= SHARE_PREFIX_LEN && memcmp(f, SHARE_PREFIX, SHARE_PREFIX_LEN) == 0) {
		/* "$share/name" without a filter part is not a valid filter
		 * [MQTT-4.8.2-1]. */
		if (!tern_topic_filter_share(all, &group, &rest) || group.len == 0)
			return false;
		for (uint32_t i = 0; i < group.len; i++)
			if (group.data[i] == '+' || group.data[i] == '#')
				return false;
		return plain_filter_ok(rest.data, rest.len);
	}
	return plain_filter_ok(f, len);
}

bool tern__topic_filter_share_misshaped(const uint8_t *f, size_t len)
{
	return f != NULL && len >= SHARE_PREFIX_LEN && len <= 65535u &&
	       memcmp(f, SHARE_PREFIX, SHARE_PREFIX_LEN) == 0 && tern__utf8_no_controls(f, len) &&
	       plain_filter_ok(f, len) && !tern__topic_filter_ok(f, len);
}

enum tern_err tern_topic_filter_check(const uint8_t *f, size_t len)
{
	if (!tern__topic_filter_ok(f, len) || !tern_utf8_valid(f, len))
		return TERN_E_TOPIC_FILTER;
	return TERN_OK;
}

bool tern_topic_matches(const uint8_t *filter, size_t flen, const uint8_t *topic, size_t tlen)
{
	/* Neither a filter nor a topic name can be empty [MQTT-4.7.3-1]. */
	if (flen == 0 || filter == NULL || tlen == 0 || topic == NULL)
		return false;
	/* [MQTT-4.7.2-1]: topics starting with '$' are not matched by a
	 * filter starting with a wildcard. */
	if (topic[0] == '$' && (filter[0] == '+' || filter[0] == '#'))
		return false;

	struct topic_iter fi, ti;
	struct topic_level fl, tl;
	topic_iter_init(&fi, filter, flen);
	topic_iter_init(&ti, topic, tlen);
	while (topic_iter_next(&fi, &fl)) {
		if (topic_level_is(&fl, '#'))
			return true; /* this level and everything under it */
		if (!topic_iter_next(&ti, &tl))
			return false;
		if (topic_level_is(&fl, '+'))
			continue;
		if (fl.len != tl.len || (fl.len > 0 && memcmp(fl.p, tl.p, fl.len) != 0))
			return false;
	}
	/* The filter is used up: a match only if the topic is too. */
	return topic_iter_done(&ti);
}
