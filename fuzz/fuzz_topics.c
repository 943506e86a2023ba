/*
 * fuzz_topics.c - libFuzzer target for the two tries of topic levels: the
 * subscription router (src/broker/router.c) and the retained-message store
 * (src/broker/retain.c), both built on src/broker/trie.c.
 *
 * Input: a sequence of commands, each an op byte, an argument byte and a
 * string (one length byte, at most MAX_STR, then that many bytes; the input
 * may end early). Strings are used as topic filters or names only when the
 * codec accepts them (tern_topic_filter_check() / tern_topic_name_check()),
 * as the broker only stores what the codec validated; a "$share/g/f" filter
 * is split the way the broker splits it.
 *
 *   op % 6 == 0  router_add(filter, session = arg % 8)
 *   op % 6 == 1  router_remove of the model's subscription number arg, or
 *                of a (filter, session) the model does not hold
 *   op % 6 == 2  router_match(name)
 *   op % 6 == 3  retain_set(name), cleared when arg is even
 *   op % 6 == 4  retain_match(filter)
 *   op % 6 == 5  router_match and retain_match of every string seen so far
 *
 * Both are checked against a model: plain arrays of what was added, and
 * tern_topic_matches() (itself checked against the byte loop it replaced in
 * tests/unit/test_codec_topic.c) as the meaning of "matches". A match must
 * return each matching ordinary subscription's session once per matching
 * subscription, and one member of each matching share group, a member of
 * that group; a retained lookup exactly the stored topics the filter
 * matches; the counts must agree; under ASan, nothing may leak or be freed
 * twice. Any disagreement aborts.
 *
 * Dictionary: fuzz/topics.dict.
 */
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>

#include "broker/retain.h"
#include "broker/router.h"
#include "tern/codec.h"
#include "util/msg.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#define MAX_STR  40
#define MAX_SUBS 48
#define MAX_RET  48
#define MAX_SEEN 32

static const struct hash_key KEY = {UINT64_C(0x0123456789abcdef), UINT64_C(0xfedcba9876543210)};

struct str {
	uint8_t b[MAX_STR];
	uint32_t len;
};

struct msub {
	struct str filter; /* plain filter, without "$share/g/" */
	struct str group;  /* len 0: an ordinary subscription */
	uint64_t session;
};

struct model {
	struct msub subs[MAX_SUBS];
	size_t nsubs;
	struct str retained[MAX_RET];
	size_t nret;
	struct str seen[MAX_SEEN];
	size_t nseen;
};

static struct tern_bytes tb(const struct str *s)
{
	return (struct tern_bytes){s->b, s->len};
}

static bool str_eq(const struct str *a, const struct str *b)
{
	return a->len == b->len && memcmp(a->b, b->b, a->len) == 0;
}

static bool matches(const struct str *filter, const struct str *name)
{
	return tern_topic_matches(filter->b, filter->len, name->b, name->len);
}

static void check(bool ok)
{
	if (!ok)
		abort();
}

/* Splits a valid filter into the plain filter and its share group. */
static void split(const struct str *f, struct str *plain, struct str *group)
{
	struct tern_bytes all = tb(f), g, rest;
	group->len = 0;
	if (tern_topic_filter_share(all, &g, &rest)) {
		memcpy(group->b, g.data, g.len);
		group->len = g.len;
		memcpy(plain->b, rest.data, rest.len);
		plain->len = rest.len;
	} else {
		*plain = *f;
	}
}

static void do_add(struct router *r, struct model *m, const struct str *f, uint8_t arg)
{
	if (tern_topic_filter_check(f->b, f->len) != TERN_OK)
		return;
	struct msub s = {.session = (uint64_t)(arg % 8) + 1};
	split(f, &s.filter, &s.group);
	size_t i = 0;
	while (i < m->nsubs &&
	       !(m->subs[i].session == s.session && str_eq(&m->subs[i].filter, &s.filter) &&
	         str_eq(&m->subs[i].group, &s.group)))
		i++;
	if (i == m->nsubs && m->nsubs == MAX_SUBS)
		return;
	struct route rt = {.session = s.session, .qos = 1};
	if (router_add(r, tb(&s.filter), tb(&s.group), &rt) != TERN_OK)
		return; /* out of memory: the router is unchanged */
	if (i == m->nsubs)
		m->subs[m->nsubs++] = s;
	check(router_count(r) == m->nsubs);
}

static void do_remove(struct router *r, struct model *m, const struct str *f, uint8_t arg)
{
	if (m->nsubs > 0 && arg % 2 == 0) {
		size_t i = (size_t)(arg / 2) % m->nsubs;
		struct msub *s = &m->subs[i];
		check(router_remove(r, tb(&s->filter), tb(&s->group), s->session) == TERN_OK);
		m->subs[i] = m->subs[--m->nsubs];
	} else if (tern_topic_filter_check(f->b, f->len) == TERN_OK) {
		struct str plain, group;
		split(f, &plain, &group);
		uint64_t session = (uint64_t)(arg % 8) + 1;
		bool held = false;
		for (size_t i = 0; i < m->nsubs && !held; i++)
			held = m->subs[i].session == session &&
			       str_eq(&m->subs[i].filter, &plain) &&
			       str_eq(&m->subs[i].group, &group);
		if (!held)
			check(router_remove(r, tb(&plain), tb(&group), session) ==
			      TERN_E_NOT_FOUND);
	}
	check(router_count(r) == m->nsubs);
}

static void do_match(struct router *r, const struct model *m, const struct str *t,
                     struct route_matches *out)
{
	if (tern_topic_name_check(t->b, t->len) != TERN_OK)
		return;
	if (router_match(r, t->b, t->len, out) != TERN_OK)
		return;
	/* Each ordinary subscription that matches is found once; each share
	 * group (a plain filter and a group name) with a matching filter
	 * gives one route, from one of its members. */
	size_t want_plain = 0, want_groups = 0, got_shared = 0;
	bool used[MAX_SUBS] = {false};
	for (size_t i = 0; i < m->nsubs; i++) {
		const struct msub *s = &m->subs[i];
		if (!matches(&s->filter, t))
			continue;
		if (s->group.len == 0) {
			want_plain++;
			continue;
		}
		bool first = true;
		for (size_t j = 0; j < i && first; j++)
			first = !(str_eq(&m->subs[j].filter, &s->filter) &&
			          str_eq(&m->subs[j].group, &s->group));
		want_groups += first;
	}
	for (size_t k = 0; k < out->n; k++) {
		const struct route *rt = &out->v[k];
		bool shared = (rt->flags & ROUTE_SHARED) != 0;
		got_shared += shared;
		/* A model subscription of this session and kind, matching, not
		 * yet accounted for. */
		size_t i = 0;
		while (i < m->nsubs &&
		       (used[i] || m->subs[i].session != rt->session ||
		        (m->subs[i].group.len != 0) != shared || !matches(&m->subs[i].filter, t)))
			i++;
		check(i < m->nsubs);
		if (!shared)
			used[i] = true;
	}
	check(out->n - got_shared == want_plain);
	check(got_shared == want_groups);
}

static void do_retain_set(struct retain_store *rs, struct model *m, const struct str *t,
                          uint8_t arg)
{
	if (tern_topic_name_check(t->b, t->len) != TERN_OK)
		return;
	bool clear = arg % 2 == 0;
	size_t i = 0;
	while (i < m->nret && !str_eq(&m->retained[i], t))
		i++;
	if (!clear && i == m->nret && m->nret == MAX_RET)
		return;
	struct tern_bytes payload = {(const uint8_t *)"p", clear ? 0u : 1u};
	struct msg *msg = msg_new(tb(t), payload, 0, true, NULL, 0, 0);
	if (!msg)
		return;
	enum tern_err err = retain_set(rs, msg);
	msg_unref(msg);
	if (err != TERN_OK)
		return;
	if (clear && i < m->nret)
		m->retained[i] = m->retained[--m->nret];
	else if (!clear && i == m->nret)
		m->retained[m->nret++] = *t;
	check(retain_count(rs) == m->nret);
}

static void do_retain_match(struct retain_store *rs, const struct model *m, const struct str *f,
                            struct retain_hits *hits)
{
	if (tern_topic_filter_check(f->b, f->len) != TERN_OK)
		return;
	struct str plain, group;
	split(f, &plain, &group);
	if (retain_match(rs, plain.b, plain.len, 1, hits) != TERN_OK)
		return;
	size_t want = 0;
	for (size_t i = 0; i < m->nret; i++)
		want += matches(&plain, &m->retained[i]);
	check(hits->n == want);
	for (size_t k = 0; k < hits->n; k++) {
		struct msg *msg = hits->v[k];
		struct str t = {.len = msg->topic.len};
		check(t.len <= MAX_STR);
		memcpy(t.b, msg->topic.data, t.len);
		check(matches(&plain, &t));
		/* Each topic once. */
		for (size_t j = 0; j < k; j++)
			check(hits->v[j] != msg);
		msg_unref(msg);
	}
	hits->n = 0;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct router *r = router_new(&KEY);
	struct retain_store *rs = retain_new(&KEY);
	struct model *m = calloc(1, sizeof(*m));
	struct route_matches out = {0};
	struct retain_hits hits = {0};
	if (!r || !rs || !m)
		goto done;
	size_t i = 0;
	while (i + 3 <= size) {
		uint8_t op = data[i], arg = data[i + 1];
		size_t len = data[i + 2] % (MAX_STR + 1);
		i += 3;
		if (len > size - i)
			len = size - i;
		struct str s = {.len = (uint32_t)len};
		memcpy(s.b, data + i, len);
		i += len;
		if (m->nseen < MAX_SEEN)
			m->seen[m->nseen++] = s;
		switch (op % 6) {
		case 0:
			do_add(r, m, &s, arg);
			break;
		case 1:
			do_remove(r, m, &s, arg);
			break;
		case 2:
			do_match(r, m, &s, &out);
			break;
		case 3:
			do_retain_set(rs, m, &s, arg);
			break;
		case 4:
			do_retain_match(rs, m, &s, &hits);
			break;
		default:
			for (size_t k = 0; k < m->nseen; k++) {
				do_match(r, m, &m->seen[k], &out);
				do_retain_match(rs, m, &m->seen[k], &hits);
			}
			break;
		}
	}
done:
	free(out.v);
	retain_hits_free(&hits);
	retain_free(rs);
	router_free(r);
	free(m);
	return 0;
}
