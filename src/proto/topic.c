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
 * These functions are used by the decoder, the broker's router and the
 * client alike, so they are plain loops over bytes with no allocation.
 */
#include "proto/proto_internal.h"

#define SHARE_PREFIX     "$share/"
#define SHARE_PREFIX_LEN 7u

bool tern__topic_name_ok(const uint8_t *t, size_t len)
{
	if (len == 0 || t == NULL)
		return false;
	for (size_t i = 0; i < len; i++)
		if (t[i] == '+' || t[i] == '#')
			return false;
	return tern__utf8_no_controls(t, len);
}

enum tern_err tern_topic_name_check(const uint8_t *t, size_t len)
{
	if (!tern__topic_name_ok(t, len) || !tern_utf8_valid(t, len))
		return TERN_E_TOPIC_NAME;
	return TERN_OK;
}

/* Checks the wildcards of a filter that is not a shared subscription:
 * '+' fills a whole level [MQTT-4.7.1-3]; '#' fills the last level
 * [MQTT-4.7.1-2]. */
static bool plain_filter_ok(const uint8_t *f, size_t len)
{
	if (len == 0)
		return false;
	for (size_t i = 0; i < len; i++) {
		bool level_start = i == 0 || f[i - 1] == '/';
		if (f[i] == '+') {
			if (!level_start || (i + 1 < len && f[i + 1] != '/'))
				return false;
		} else if (f[i] == '#') {
			if (!level_start || i + 1 != len)
				return false;
		}
	}
	return true;
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

/* Takes the next level of s[0..len) starting at *pos into [*start, *end)
 * and moves *pos past its '/'. Returns false when no level is left; a
 * string of n slashes has n + 1 levels, so *pos runs to len + 1. */
static bool next_level(const uint8_t *s, size_t len, size_t *pos, size_t *start, size_t *end)
{
	if (*pos > len)
		return false;
	size_t i = *pos;
	while (i < len && s[i] != '/')
		i++;
	*start = *pos;
	*end = i;
	*pos = i + 1;
	return true;
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

	size_t fp = 0, tp = 0, fs, fe, ts, te;
	while (next_level(filter, flen, &fp, &fs, &fe)) {
		size_t fl = fe - fs;
		if (fl == 1 && filter[fs] == '#')
			return true; /* this level and everything under it */
		if (!next_level(topic, tlen, &tp, &ts, &te))
			return false;
		if (fl == 1 && filter[fs] == '+')
			continue;
		if (fl != te - ts || (fl > 0 && memcmp(filter + fs, topic + ts, fl) != 0))
			return false;
	}
	/* The filter is used up: a match only if the topic is too. */
	return tp > tlen;
}
