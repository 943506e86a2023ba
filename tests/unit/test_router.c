/*
 * test_router.c - unit tests of the subscription router (src/broker/router.c).
 *
 * Each test starts from an empty router (setup) and a reused match array.
 * Matching rules are checked against the specification's statements; the
 * heap tests check that removal frees the trie nodes it leaves empty, by
 * watching the allocator (ASan's counter when built with it, else
 * mallinfo2()).
 */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <malloc.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "broker/router.h"

/* Present only in sanitizer builds. */
extern size_t __sanitizer_get_current_allocated_bytes(void) __attribute__((weak));

/* Any key will do: these tests are about matching, not about hashing. */
static const struct hash_key KEY = {UINT64_C(0x0123456789abcdef), UINT64_C(0xfedcba9876543210)};

struct fix {
	struct router *r;
	struct route_matches m;
};

static int setup(void **state)
{
	struct fix *f = calloc(1, sizeof(*f));
	if (!f)
		return -1;
	f->r = router_new(&KEY);
	if (!f->r) {
		free(f);
		return -1;
	}
	*state = f;
	return 0;
}

static int teardown(void **state)
{
	struct fix *f = *state;
	router_free(f->r);
	free(f->m.v);
	free(f);
	return 0;
}

static struct tern_bytes B(const char *s) {
	return (struct tern_bytes){(const uint8_t *)s, (uint32_t)strlen(s)};
}

static const struct tern_bytes NOGROUP = {NULL, 0};

static struct route R(uint64_t session, uint8_t qos) {
	return (struct route){.session = session, .qos = qos};
}

static void
add(struct fix *f, const char *filter, const char *group, uint64_t session)
{
	struct route rt = R(session, 1);
	assert_int_equal(router_add(f->r, B(filter), group ? B(group) : NOGROUP, &rt), TERN_OK);
}

static void del(struct fix *f, const char *filter, const char *group, uint64_t session)
{
	assert_int_equal(router_remove(f->r, B(filter), group ? B(group) : NOGROUP, session),
	                 TERN_OK);
}

/* Matches topic; returns the number of routes found. */
static size_t match(struct fix *f, const char *topic)
{
	assert_int_equal(router_match(f->r, (const uint8_t *)topic, strlen(topic), &f->m), TERN_OK);
	return f->m.n;
}

static size_t times(const struct fix *f, uint64_t session)
{
	size_t k = 0;
	for (size_t i = 0; i < f->m.n; i++)
		k += f->m.v[i].session == session;
	return k;
}

/* True when topic is delivered to the one subscriber of filter. */
static bool matches(const char *filter, const char *topic)
{
	struct fix *f;
	void *st = NULL;
	assert_int_equal(setup(&st), 0);
	f = st;
	add(f, filter, NULL, 7);
	size_t n = match(f, topic);
	/* The trie and the codec's reference matcher must agree. */
	bool ref = tern_topic_matches((const uint8_t *)filter, strlen(filter),
	                              (const uint8_t *)topic, strlen(topic));
	if ((n == 1) != ref)
		fail_msg("filter \"%s\" topic \"%s\": router %zu, codec %d", filter, topic, n, ref);
	teardown(&st);
	return n == 1;
}

static size_t heap_bytes(void)
{
	if (__sanitizer_get_current_allocated_bytes)
		return __sanitizer_get_current_allocated_bytes();
	return mallinfo2().uordblks;
}

/* The heap is back to before: exactly under ASan; within a tenth of what was
 * allocated meanwhile under glibc, whose tcache counts as in use. */
static void assert_heap_back(size_t before, size_t peak)
{
	size_t now = heap_bytes();
	if (__sanitizer_get_current_allocated_bytes)
		assert_int_equal(now, before);
	else
		assert_true(now <= before || now - before < (peak - before) / 10);
}

/* ---- matching ---- */

static void test_exact_filter_matches_only_the_identical_topic(void **state)
{
	(void)state;
	assert_true(matches("a/b/c", "a/b/c"));
	assert_false(matches("a/b/c", "a/b"));
	assert_false(matches("a/b/c", "a/b/c/d"));
	assert_false(matches("a/b/c", "a/b/C"));
	assert_true(matches("a", "a"));
	/* [MQTT-4.7.3-4] no normalisation: "a/b" is not "a//b". */
	assert_false(matches("a/b", "a//b"));
}

static void test_plus_matches_exactly_one_level(void **state)
{
	(void)state;
	/* [MQTT-4.7.1-2] (v5 numbering): '+' stands for one whole level. */
	assert_true(matches("+", "a"));
	assert_false(matches("+", "a/b"));
	assert_true(matches("a/+", "a/b"));
	assert_false(matches("a/+", "a"));
	assert_false(matches("a/+", "a/b/c"));
	assert_true(matches("a/+/c", "a/x/c"));
	assert_false(matches("a/+/c", "a/x/d"));
	assert_true(matches("+/+", "a/b"));
	assert_true(matches("a/+/+/d", "a/b/c/d"));
}

static void test_hash_matches_every_level_below(void **state)
{
	(void)state;
	assert_true(matches("#", "a"));
	assert_true(matches("#", "a/b/c"));
	assert_true(matches("a/#", "a/b"));
	assert_true(matches("a/#", "a/b/c/d"));
	assert_false(matches("a/#", "b/a"));
	assert_true(matches("a/+/#", "a/b/c"));
	assert_false(matches("a/b/#", "a/c/d"));
}

static void test_hash_also_matches_the_parent_level(void **state)
{
	(void)state;
	/* Section 4.7.1.2: "sport/tennis/player1/#" matches
	 * "sport/tennis/player1", and "sport/#" matches "sport". */
	assert_true(matches("sport/#", "sport"));
	assert_true(matches("sport/tennis/player1/#", "sport/tennis/player1"));
	assert_true(matches("+/#", "a"));
	assert_false(matches("sport/tennis/#", "sport"));
}

static void test_dollar_topics_are_not_matched_by_leading_wildcards(void **state)
{
	(void)state;
	/* [MQTT-4.7.2-1] */
	assert_false(matches("#", "$SYS/broker/uptime"));
	assert_false(matches("+/broker/uptime", "$SYS/broker/uptime"));
	assert_false(matches("+/#", "$SYS/broker"));
	assert_false(matches("+", "$SYS"));
	assert_true(matches("$SYS/#", "$SYS/broker/uptime"));
	assert_true(matches("$SYS/+/uptime", "$SYS/broker/uptime"));
	assert_true(matches("$SYS", "$SYS"));
	/* Only the first level counts. */
	assert_true(matches("a/+", "a/$x"));
	assert_true(matches("a/#", "a/$x"));
	assert_true(matches("#", "x$"));
}

static void test_empty_levels_are_ordinary_levels(void **state)
{
	(void)state;
	assert_true(matches("a//b", "a//b"));
	assert_true(matches("a/+/b", "a//b"));
	assert_true(matches("+/+/+", "a//b"));
	assert_false(matches("a/+", "a//b"));
	assert_true(matches("/a", "/a"));
	assert_true(matches("+/a", "/a"));
	assert_true(matches("/+", "/a"));
	assert_true(matches("/#", "/a"));
	assert_true(matches("#", "/a"));
	assert_false(matches("a", "/a"));
	assert_true(matches("a/", "a/"));
	assert_true(matches("a/+", "a/"));
	assert_true(matches("a/#", "a/"));
	assert_false(matches("a/", "a"));
	assert_false(matches("a", "a/"));
	assert_true(matches("/", "/"));
	assert_true(matches("+/+", "/"));
}

static void test_overlapping_filters_return_the_session_once_per_filter(void **state)
{
	struct fix *f = *state;
	/* [MQTT-3.3.4-2]: the caller needs every matching subscription (its
	 * QoS and identifier) to merge them. */
	struct route a = {.session = 1, .qos = 0, .sub_id = 10};
	struct route b = {.session = 1, .qos = 2, .sub_id = 20};
	assert_int_equal(router_add(f->r, B("a/+"), NOGROUP, &a), TERN_OK);
	assert_int_equal(router_add(f->r, B("a/#"), NOGROUP, &b), TERN_OK);
	add(f, "a/b", NULL, 2);
	assert_int_equal(match(f, "a/b"), 3);
	assert_int_equal(times(f, 1), 2);
	assert_int_equal(times(f, 2), 1);
	uint32_t ids = 0;
	for (size_t i = 0; i < f->m.n; i++) {
		if (f->m.v[i].session == 1) {
			ids += f->m.v[i].sub_id;
			assert_int_equal(f->m.v[i].qos, f->m.v[i].sub_id == 10 ? 0 : 2);
		}
	}
	assert_int_equal(ids, 30);
	assert_int_equal(router_count(f->r), 3);
}

static void test_adding_the_same_subscription_replaces_its_options(void **state)
{
	struct fix *f = *state;
	/* [MQTT-3.8.4-3] */
	struct route rt = {.session = 5, .qos = 0, .sub_id = 1, .home = 3};
	assert_int_equal(router_add(f->r, B("x/y"), NOGROUP, &rt), TERN_OK);
	rt.qos = 2;
	rt.sub_id = 9;
	rt.flags = ROUTE_NO_LOCAL | ROUTE_RAP | ROUTE_SHARED;
	assert_int_equal(router_add(f->r, B("x/y"), NOGROUP, &rt), TERN_OK);
	assert_int_equal(router_count(f->r), 1);
	assert_int_equal(match(f, "x/y"), 1);
	assert_int_equal(f->m.v[0].qos, 2);
	assert_int_equal(f->m.v[0].sub_id, 9);
	assert_int_equal(f->m.v[0].home, 3);
	/* ROUTE_SHARED is the router's to set, not the caller's. */
	assert_int_equal(f->m.v[0].flags, ROUTE_NO_LOCAL | ROUTE_RAP);

	/* Same in a share group: still one member. */
	rt.qos = 1;
	assert_int_equal(router_add(f->r, B("x/y"), B("g"), &rt), TERN_OK);
	rt.qos = 0;
	assert_int_equal(router_add(f->r, B("x/y"), B("g"), &rt), TERN_OK);
	assert_int_equal(router_count(f->r), 2);
	assert_int_equal(match(f, "x/y"), 2);
	for (size_t i = 0; i < 2; i++) {
		if (f->m.v[i].flags & ROUTE_SHARED)
			assert_int_equal(f->m.v[i].qos, 0);
	}
}

static void test_match_resets_the_result_array(void **state)
{
	struct fix *f = *state;
	add(f, "a", NULL, 1);
	assert_int_equal(match(f, "a"), 1);
	assert_int_equal(match(f, "a"), 1);
	assert_int_equal(match(f, "b"), 0);
	assert_int_equal(match(f, "a/"), 0);
}

/* ---- removal ---- */

static void test_remove_of_an_absent_subscription_is_not_found(void **state)
{
	struct fix *f = *state;
	add(f, "a/b", NULL, 1);
	add(f, "a/b", "g", 2);
	assert_int_equal(router_remove(f->r, B("a/b"), NOGROUP, 2), TERN_E_NOT_FOUND);
	assert_int_equal(router_remove(f->r, B("a/b"), B("g"), 1), TERN_E_NOT_FOUND);
	assert_int_equal(router_remove(f->r, B("a/b"), B("h"), 2), TERN_E_NOT_FOUND);
	assert_int_equal(router_remove(f->r, B("a"), NOGROUP, 1), TERN_E_NOT_FOUND);
	assert_int_equal(router_remove(f->r, B("a/b/c"), NOGROUP, 1), TERN_E_NOT_FOUND);
	assert_int_equal(router_remove(f->r, B("a/+"), NOGROUP, 1), TERN_E_NOT_FOUND);
	assert_int_equal(router_count(f->r), 2);
	del(f, "a/b", NULL, 1);
	assert_int_equal(router_remove(f->r, B("a/b"), NOGROUP, 1), TERN_E_NOT_FOUND);
	assert_int_equal(router_count(f->r), 1);
}

static void test_remove_keeps_the_other_subscriptions_on_the_path(void **state)
{
	struct fix *f = *state;
	add(f, "a/b/c", NULL, 1);
	add(f, "a/b", NULL, 2);
	add(f, "a/+/c", NULL, 3);
	add(f, "a/#", NULL, 4);
	add(f, "a/b/c", NULL, 5);
	assert_int_equal(router_count(f->r), 5);
	del(f, "a/b/c", NULL, 1);
	assert_int_equal(router_count(f->r), 4);
	assert_int_equal(match(f, "a/b/c"), 3);
	assert_int_equal(times(f, 1), 0);
	del(f, "a/b/c", NULL, 5);
	del(f, "a/#", NULL, 4);
	assert_int_equal(match(f, "a/b/c"), 1);
	assert_int_equal(times(f, 3), 1);
	assert_int_equal(match(f, "a/b"), 1);
	assert_int_equal(times(f, 2), 1);
	del(f, "a/+/c", NULL, 3);
	del(f, "a/b", NULL, 2);
	assert_int_equal(router_count(f->r), 0);
	assert_int_equal(match(f, "a/b"), 0);
	/* The pruned path can be built again. */
	add(f, "a/b/c", NULL, 1);
	assert_int_equal(match(f, "a/b/c"), 1);
}

static void test_remove_frees_the_nodes_it_leaves_empty(void **state)
{
	struct fix *f = *state;
	char buf[64];
	/* Warm up: the root's child map exists before the baseline. */
	add(f, "keep/x", NULL, 1);
	add(f, "keep2", NULL, 1);
	size_t before = heap_bytes();
	for (int i = 0; i < 1000; i++) {
		snprintf(buf, sizeof(buf), "d/%d/x/+/y//#", i);
		add(f, buf, NULL, (uint64_t)i);
		add(f, buf, "g", (uint64_t)i);
		snprintf(buf, sizeof(buf), "keep/x/%d", i);
		add(f, buf, NULL, (uint64_t)i);
	}
	assert_int_equal(router_count(f->r), 3002);
	size_t peak = heap_bytes();
	assert_true(peak > before);
	for (int i = 0; i < 1000; i++) {
		snprintf(buf, sizeof(buf), "d/%d/x/+/y//#", i);
		del(f, buf, "g", (uint64_t)i);
		del(f, buf, NULL, (uint64_t)i);
		snprintf(buf, sizeof(buf), "keep/x/%d", i);
		del(f, buf, NULL, (uint64_t)i);
	}
	assert_int_equal(router_count(f->r), 2);
	assert_heap_back(before, peak);
}

/* ---- shared subscriptions ---- */

/* The one shared route of the last match. */
static uint64_t shared_pick(struct fix *f, const char *topic)
{
	match(f, topic);
	uint64_t s = 0;
	size_t k = 0;
	for (size_t i = 0; i < f->m.n; i++) {
		if (f->m.v[i].flags & ROUTE_SHARED) {
			s = f->m.v[i].session;
			k++;
		}
	}
	assert_int_equal(k, 1);
	return s;
}

static void test_share_group_picks_each_member_in_turn(void **state)
{
	struct fix *f = *state;
	/* Section 4.8.2: one member of the group receives each message. */
	add(f, "jobs/+", "workers", 1);
	add(f, "jobs/+", "workers", 2);
	add(f, "jobs/+", "workers", 3);
	assert_int_equal(router_count(f->r), 3);
	uint64_t p[9];
	for (int i = 0; i < 9; i++) {
		p[i] = shared_pick(f, "jobs/a");
		assert_int_equal(f->m.n, 1);
	}
	/* Each round of three is a permutation, repeated. */
	assert_int_equal(p[0] + p[1] + p[2], 6);
	assert_true(p[0] != p[1] && p[1] != p[2] && p[0] != p[2]);
	for (int i = 3; i < 9; i++)
		assert_int_equal(p[i], p[i - 3]);
}

static void test_share_group_removal_mid_round_skips_no_member(void **state)
{
	(void)state;
	/* For every point in the round and every member removed: the members
	 * not yet picked in this round are picked next, each once, and the
	 * removed one never again. */
	for (int k = 0; k < 3; k++) {
		for (int victim = 0; victim < 3; victim++) {
			void *st = NULL;
			assert_int_equal(setup(&st), 0);
			struct fix *f = st;
			add(f, "t", "g", 1);
			add(f, "t", "g", 2);
			add(f, "t", "g", 3);
			bool picked[4] = {false};
			for (int i = 0; i < k; i++)
				picked[shared_pick(f, "t")] = true;
			/* Remove a picked or an unpicked member. */
			uint64_t gone = 0;
			int seen = 0;
			for (uint64_t s = 1; s <= 3; s++) {
				if (seen++ == victim)
					gone = s;
			}
			del(f, "t", "g", gone);
			picked[gone] = true;
			int pending = !picked[1] + !picked[2] + !picked[3];
			for (int i = 0; i < pending; i++) {
				uint64_t s = shared_pick(f, "t");
				assert_false(picked[s]);
				picked[s] = true;
			}
			/* Then rounds of the two that are left. */
			uint64_t a = shared_pick(f, "t"), b = shared_pick(f, "t");
			assert_true(a != b && a != gone && b != gone);
			for (int i = 0; i < 4; i++)
				assert_int_equal(shared_pick(f, "t"), i % 2 ? b : a);
			teardown(&st);
		}
	}
}

static void test_share_group_disappears_with_its_last_member(void **state)
{
	struct fix *f = *state;
	add(f, "t", "g", 1);
	add(f, "t", "g", 2);
	del(f, "t", "g", 1);
	assert_int_equal(shared_pick(f, "t"), 2);
	assert_int_equal(shared_pick(f, "t"), 2);
	del(f, "t", "g", 2);
	assert_int_equal(match(f, "t"), 0);
	assert_int_equal(router_count(f->r), 0);
	assert_int_equal(router_remove(f->r, B("t"), B("g"), 2), TERN_E_NOT_FOUND);
}

static void test_each_matching_group_and_ordinary_subscription_gets_the_message(void **state)
{
	struct fix *f = *state;
	add(f, "s/+", NULL, 9);
	add(f, "s/+", "g", 1);
	add(f, "s/+", "g", 2);
	add(f, "s/+", "h", 3);
	add(f, "s/#", "g", 4); /* same name, other filter: another group */
	add(f, "s/x", "g", 9); /* a session can also be a member */
	for (int i = 0; i < 4; i++) {
		assert_int_equal(match(f, "s/x"), 5);
		size_t shared = 0;
		for (size_t j = 0; j < f->m.n; j++)
			shared += (f->m.v[j].flags & ROUTE_SHARED) != 0;
		assert_int_equal(shared, 4);
		assert_int_equal(times(f, 1) + times(f, 2), 1);
		assert_int_equal(times(f, 3), 1);
		assert_int_equal(times(f, 4), 1);
		assert_int_equal(times(f, 9), 2);
	}
	/* A removal in one group leaves the other groups alone. */
	del(f, "s/#", "g", 4);
	assert_int_equal(match(f, "s/x"), 4);
	assert_int_equal(times(f, 3), 1);
}

static void test_shared_subscriptions_follow_the_dollar_rule(void **state)
{
	struct fix *f = *state;
	/* [MQTT-4.7.2-1] applies to the filter after "$share/g/". */
	add(f, "#", "g", 1);
	add(f, "$SYS/#", "g", 2);
	assert_int_equal(match(f, "$SYS/x"), 1);
	assert_int_equal(f->m.v[0].session, 2);
}

/* ---- scale ---- */

static void test_fifty_thousand_distinct_filters_match_one_topic(void **state)
{
	struct fix *f = *state;
	char buf[64];
	for (uint64_t i = 0; i < 50000; i++) {
		snprintf(buf, sizeof(buf), "dev/%llu/temp", (unsigned long long)i);
		add(f, buf, NULL, i);
	}
	add(f, "dev/+/temp", NULL, 99999);
	assert_int_equal(router_count(f->r), 50001);
	assert_int_equal(match(f, "dev/31337/temp"), 2);
	assert_int_equal(times(f, 31337), 1);
	assert_int_equal(times(f, 99999), 1);
	assert_int_equal(match(f, "dev/31337/hum"), 0);
	assert_int_equal(match(f, "dev/50000/temp"), 1);
	for (uint64_t i = 0; i < 50000; i += 2) {
		snprintf(buf, sizeof(buf), "dev/%llu/temp", (unsigned long long)i);
		del(f, buf, NULL, i);
	}
	assert_int_equal(match(f, "dev/31336/temp"), 1);
	assert_int_equal(match(f, "dev/31337/temp"), 2);
	assert_int_equal(router_count(f->r), 25001);
}

static void test_twenty_thousand_subscribers_on_one_filter(void **state)
{
	struct fix *f = *state;
	enum { N = 20000 };
	for (uint64_t i = 1; i <= N; i++) {
		struct route rt = R(i, 0);
		assert_int_equal(router_add(f->r, B("news"), NOGROUP, &rt), TERN_OK);
	}
	assert_int_equal(match(f, "news"), N);
	uint64_t sum = 0;
	for (size_t i = 0; i < f->m.n; i++)
		sum += f->m.v[i].session;
	assert_true(sum == (uint64_t)N * (N + 1) / 2);
	/* Re-adding replaces in place. */
	struct route rt = R(777, 2);
	assert_int_equal(router_add(f->r, B("news"), NOGROUP, &rt), TERN_OK);
	assert_int_equal(router_count(f->r), N);
	assert_int_equal(match(f, "news"), N);
	for (size_t i = 0; i < f->m.n; i++)
		assert_int_equal(f->m.v[i].qos, f->m.v[i].session == 777 ? 2 : 0);
	/* Remove the even ones, in an order that moves routes around. */
	for (uint64_t i = N; i >= 2; i -= 2)
		del(f, "news", NULL, i);
	assert_int_equal(router_count(f->r), N / 2);
	assert_int_equal(match(f, "news"), N / 2);
	for (size_t i = 0; i < f->m.n; i++)
		assert_int_equal(f->m.v[i].session % 2, 1);
	for (uint64_t i = 1; i < N; i += 2)
		del(f, "news", NULL, i);
	assert_int_equal(router_count(f->r), 0);
	assert_int_equal(match(f, "news"), 0);
}

static void test_large_share_group_still_picks_each_member_once_per_round(void **state)
{
	struct fix *f = *state;
	enum { N = 100 };
	for (uint64_t i = 1; i <= N; i++)
		add(f, "q", "g", i);
	/* Remove a few members, some already picked in this round. */
	bool seen[N + 1] = {false};
	for (int i = 0; i < 40; i++)
		seen[shared_pick(f, "q")] = true;
	for (uint64_t i = 1; i <= N; i += 10)
		del(f, "q", "g", i);
	for (uint64_t i = 1; i <= N; i += 10)
		seen[i] = true;
	size_t pending = 0;
	for (int i = 1; i <= N; i++)
		pending += !seen[i];
	for (size_t i = 0; i < pending; i++) {
		uint64_t s = shared_pick(f, "q");
		assert_false(seen[s]);
		seen[s] = true;
	}
	assert_int_equal(router_count(f->r), N - N / 10);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	        cmocka_unit_test(test_exact_filter_matches_only_the_identical_topic),
	        cmocka_unit_test(test_plus_matches_exactly_one_level),
	        cmocka_unit_test(test_hash_matches_every_level_below),
	        cmocka_unit_test(test_hash_also_matches_the_parent_level),
	        cmocka_unit_test(test_dollar_topics_are_not_matched_by_leading_wildcards),
	        cmocka_unit_test(test_empty_levels_are_ordinary_levels),
	        cmocka_unit_test_setup_teardown(
	                test_overlapping_filters_return_the_session_once_per_filter, setup,
	                teardown),
	        cmocka_unit_test_setup_teardown(
	                test_adding_the_same_subscription_replaces_its_options, setup, teardown),
	        cmocka_unit_test_setup_teardown(test_match_resets_the_result_array, setup,
	                                        teardown),
	        cmocka_unit_test_setup_teardown(test_remove_of_an_absent_subscription_is_not_found,
	                                        setup, teardown),
	        cmocka_unit_test_setup_teardown(
	                test_remove_keeps_the_other_subscriptions_on_the_path, setup, teardown),
	        cmocka_unit_test_setup_teardown(test_remove_frees_the_nodes_it_leaves_empty, setup,
	                                        teardown),
	        cmocka_unit_test_setup_teardown(test_share_group_picks_each_member_in_turn, setup,
	                                        teardown),
	        cmocka_unit_test(test_share_group_removal_mid_round_skips_no_member),
	        cmocka_unit_test_setup_teardown(test_share_group_disappears_with_its_last_member,
	                                        setup, teardown),
	        cmocka_unit_test_setup_teardown(
	                test_each_matching_group_and_ordinary_subscription_gets_the_message, setup,
	                teardown),
	        cmocka_unit_test_setup_teardown(test_shared_subscriptions_follow_the_dollar_rule,
	                                        setup, teardown),
	        cmocka_unit_test_setup_teardown(
	                test_fifty_thousand_distinct_filters_match_one_topic, setup, teardown),
	        cmocka_unit_test_setup_teardown(test_twenty_thousand_subscribers_on_one_filter,
	                                        setup, teardown),
	        cmocka_unit_test_setup_teardown(
	                test_large_share_group_still_picks_each_member_once_per_round, setup,
	                teardown),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
