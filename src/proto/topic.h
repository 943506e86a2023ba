/*
 * proto/topic.h - the levels of a topic name or filter, one at a time.
 *
 * A topic is a sequence of levels separated by '/' (MQTT 5.0 section 4.7):
 * a string with n slashes has n + 1 levels, any of which may be empty, so
 * "a//b" has three levels ("a", "", "b"), "/a" starts with an empty one,
 * "a/" ends with one, "/" is two empty levels and "" is one. Nothing here
 * knows about wildcards beyond telling whether a level is exactly "+" or
 * "#", nor about '$' topics or "$share/": those rules belong to the callers
 * (topic.c for validation and matching, the broker's router and retained
 * store, the ACL), which all walk topics with this one iterator.
 *
 * The iterator is a cursor of three words, allocates nothing and reads the
 * string without changing it; the string must outlive it. Its position can
 * be saved (it->pos) and a walk resumed from it later (topic_iter_at()):
 * the router's recursion at a '+' and the ACL's search do so. Everything
 * is static inline, because matching a PUBLISH against the subscription
 * trie is the broker's hot path and the iterator is most of its loop.
 *
 * This header is internal to tern (the codec, the broker, auth and the
 * client library), not part of the public API in include/tern/.
 */
#ifndef TERN_PROTO_TOPIC_H
#define TERN_PROTO_TOPIC_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

/* A walk over the levels of s[0..len). */
struct topic_iter {
	const uint8_t *s;
	size_t len;
	size_t pos; /* first byte of the next level; len + 1 once the last
	             * level has been taken */
};

/* One level, as topic_iter_next() gives it: p[0..len) points into the
 * walked string (len may be 0); last is set for the string's last level. */
struct topic_level {
	const uint8_t *p;
	size_t len;
	bool last;
};

/* Starts a walk at byte pos of s[0..len): pos is 0 for the first level, or
 * a value of it->pos saved from an earlier walk over the same string. s may
 * be NULL when len is 0 (one empty level). */
static inline void topic_iter_at(struct topic_iter *it, const uint8_t *s, size_t len, size_t pos)
{
	/* An empty string still has one (empty) level, which must point
	 * somewhere: never compute NULL + 0. */
	it->s = s ? s : (const uint8_t *)"";
	it->len = len;
	it->pos = pos;
}

/* Starts a walk over the levels of s[0..len) (see topic_iter_at()). */
static inline void topic_iter_init(struct topic_iter *it, const uint8_t *s, size_t len)
{
	topic_iter_at(it, s, len, 0);
}

/* True once every level has been taken. */
static inline bool topic_iter_done(const struct topic_iter *it)
{
	return it->pos > it->len;
}

/* Takes the next level into *lv and moves past its '/'. Returns false (and
 * leaves *lv alone) when no level is left. */
static inline bool topic_iter_next(struct topic_iter *it, struct topic_level *lv)
{
	if (it->pos > it->len)
		return false;
	const uint8_t *p = it->s + it->pos, *end = it->s + it->len, *q = p;
	while (q != end && *q != '/')
		q++;
	lv->p = p;
	lv->len = (size_t)(q - p);
	lv->last = q == end;
	it->pos += lv->len + 1;
	return true;
}

/* True if the level is exactly the one byte c (e.g. '+' or '#'). */
static inline bool topic_level_is(const struct topic_level *lv, char c)
{
	return lv->len == 1 && lv->p[0] == (uint8_t)c;
}

/* True if s[0..len) has more than max levels. A walk that stops at level
 * max + 1, and none at all when the string is too short to have that many
 * (len bytes hold at most len + 1 levels). */
static inline bool topic_levels_over(const uint8_t *s, size_t len, size_t max)
{
	if (len < max)
		return false;
	struct topic_iter it;
	struct topic_level lv;
	size_t n = 0;
	topic_iter_init(&it, s, len);
	while (topic_iter_next(&it, &lv))
		if (++n > max)
			return true;
	return false;
}

/* True if the wildcards of filter f[0..len) stand where section 4.7.1 lets
 * them: '+' alone in its level [MQTT-4.7.1-3], '#' alone in the last level
 * [MQTT-4.7.1-2]. Only the wildcard rule: emptiness, length, characters and
 * "$share/" are the caller's. */
static inline bool topic_filter_wildcards_ok(const uint8_t *f, size_t len)
{
	struct topic_iter it;
	struct topic_level lv;
	topic_iter_init(&it, f, len);
	while (topic_iter_next(&it, &lv)) {
		if (topic_level_is(&lv, '+') || (topic_level_is(&lv, '#') && lv.last))
			continue;
		for (size_t i = 0; i < lv.len; i++)
			if (lv.p[i] == '+' || lv.p[i] == '#')
				return false;
	}
	return true;
}

#endif
