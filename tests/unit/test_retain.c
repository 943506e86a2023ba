/*
 * test_retain.c - unit tests of the retained-message store
 * (src/broker/retain.c).
 *
 * Messages are real msg objects, so the tests can check reference
 * counts: the store holds one reference per retained message and hands out
 * one per hit; under ASan/LSan a forgotten unref shows up as a leak. The
 * heap tests check that clearing and expiry free the trie nodes left empty.
 */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <malloc.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "broker/retain.h"

/* Present only in sanitizer builds. */
extern size_t __sanitizer_get_current_allocated_bytes(void) __attribute__((weak));

/* Any key will do: these tests are about matching, not about hashing. */
static const struct hash_key KEY = {UINT64_C(0x0123456789abcdef), UINT64_C(0xfedcba9876543210)};

struct fix {
	struct retain_store *s;
	struct retain_hits h;
};

static int setup(void **state)
{
	struct fix *f = calloc(1, sizeof(*f));
	if (!f)
		return -1;
	f->s = retain_new(&KEY);
	if (!f->s) {
		free(f);
		return -1;
	}
	*state = f;
	return 0;
}

static int teardown(void **state)
{
	struct fix *f = *state;
	retain_hits_free(&f->h);
	retain_free(f->s);
	free(f);
	return 0;
}

static struct tern_bytes B(const char *s) {
	return (struct tern_bytes){(const uint8_t *)s, (uint32_t)strlen(s)};
}

static size_t
heap_bytes(void)
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

static unsigned refs(struct msg *m)
{
	return atomic_load(&m->refs);
}

/* A retained message; expiry_s > 0 gives it a v5 Message Expiry Interval
 * counted from now_ms. */
static struct msg *retained_msg(const char *topic, const char *payload, uint32_t expiry_s,
                                uint64_t now_ms)
{
	struct tern_props p = {0};
	if (expiry_s) {
		p.present = TERN_PROP_BIT(TERN_PROP_MESSAGE_EXPIRY);
		p.message_expiry = expiry_s;
	}
	struct msg *m = msg_new(B(topic), B(payload), 1, true, &p, 0, now_ms);
	assert_non_null(m);
	return m;
}

/* Stores a new message and drops the caller's reference. */
static void put(struct fix *f, const char *topic, const char *payload)
{
	struct msg *m = retained_msg(topic, payload, 0, 0);
	assert_int_equal(retain_set(f->s, m), TERN_OK);
	msg_unref(m);
}

/* Looks filter up at time now; returns the number of hits. */
static size_t lookup_at(struct fix *f, const char *filter, uint64_t now)
{
	retain_hits_free(&f->h);
	assert_int_equal(retain_match(f->s, (const uint8_t *)filter, strlen(filter), now, &f->h),
	                 TERN_OK);
	return f->h.n;
}

static size_t lookup(struct fix *f, const char *filter)
{
	return lookup_at(f, filter, 1);
}

/* True when the last lookup returned the message of topic. */
static bool got(const struct fix *f, const char *topic)
{
	size_t len = strlen(topic), k = 0;
	for (size_t i = 0; i < f->h.n; i++)
		k += f->h.v[i]->topic.len == len && memcmp(f->h.v[i]->topic.data, topic, len) == 0;
	assert_true(k <= 1);
	return k == 1;
}

static void test_set_then_exact_lookup_returns_a_new_reference(void **state)
{
	struct fix *f = *state;
	/* [MQTT-3.3.1-5]: the message is stored for future subscribers. */
	struct msg *m = retained_msg("a/b", "v", 0, 0);
	assert_int_equal(retain_set(f->s, m), TERN_OK);
	assert_int_equal(refs(m), 2);
	assert_int_equal(retain_count(f->s), 1);
	assert_int_equal(lookup(f, "a/b"), 1);
	assert_ptr_equal(f->h.v[0], m);
	assert_int_equal(refs(m), 3);
	retain_hits_free(&f->h);
	assert_int_equal(refs(m), 2);
	assert_null(f->h.v);
	assert_int_equal(f->h.n, 0);
	assert_int_equal(f->h.cap, 0);
	assert_int_equal(lookup(f, "a"), 0);
	assert_int_equal(lookup(f, "a/b/c"), 0);
	assert_int_equal(lookup(f, "a/c"), 0);
	msg_unref(m);
}

static void test_set_replaces_the_previous_message_of_the_topic(void **state)
{
	struct fix *f = *state;
	/* [MQTT-3.3.1-5] */
	struct msg *old = retained_msg("t", "old", 0, 0);
	struct msg *new = retained_msg("t", "new", 0, 0);
	assert_int_equal(retain_set(f->s, old), TERN_OK);
	assert_int_equal(retain_set(f->s, new), TERN_OK);
	assert_int_equal(refs(old), 1);
	assert_int_equal(refs(new), 2);
	assert_int_equal(retain_count(f->s), 1);
	assert_int_equal(lookup(f, "t"), 1);
	assert_ptr_equal(f->h.v[0], new);
	/* Setting the stored message again changes nothing. */
	assert_int_equal(retain_set(f->s, new), TERN_OK);
	assert_int_equal(refs(new), 3); /* store + caller + hit */
	assert_int_equal(retain_count(f->s), 1);
	msg_unref(old);
	msg_unref(new);
}

static void test_empty_payload_clears_and_is_not_stored(void **state)
{
	struct fix *f = *state;
	put(f, "a", "1");
	put(f, "a/b", "2");
	/* [MQTT-3.3.1-6] [MQTT-3.3.1-7] */
	struct msg *empty = retained_msg("a", "", 0, 0);
	assert_int_equal(retain_set(f->s, empty), TERN_OK);
	assert_int_equal(refs(empty), 1);
	assert_int_equal(retain_count(f->s), 1);
	assert_int_equal(lookup(f, "a"), 0);
	assert_int_equal(lookup(f, "a/b"), 1);
	/* Clearing a topic without a message, or an unknown one, is fine. */
	assert_int_equal(retain_set(f->s, empty), TERN_OK);
	struct msg *other = retained_msg("x/y/z", "", 0, 0);
	assert_int_equal(retain_set(f->s, other), TERN_OK);
	assert_int_equal(retain_count(f->s), 1);
	assert_int_equal(lookup(f, "#"), 1);
	msg_unref(empty);
	msg_unref(other);
}

static void test_plus_filter_finds_one_level_of_retained_topics(void **state)
{
	struct fix *f = *state;
	put(f, "s/1/t", "x");
	put(f, "s/2/t", "x");
	put(f, "s/2/h", "x");
	put(f, "s/3", "x");
	put(f, "s//t", "x");
	assert_int_equal(lookup(f, "s/+/t"), 3);
	assert_true(got(f, "s/1/t") && got(f, "s/2/t") && got(f, "s//t"));
	assert_int_equal(lookup(f, "s/+"), 1);
	assert_true(got(f, "s/3"));
	assert_int_equal(lookup(f, "+/+/+"), 4);
	assert_int_equal(lookup(f, "+"), 0);
	assert_int_equal(lookup(f, "s/+/+/+"), 0);
}

static void test_hash_filter_finds_the_subtree_and_its_parent(void **state)
{
	struct fix *f = *state;
	put(f, "sport", "x");
	put(f, "sport/tennis", "x");
	put(f, "sport/tennis/p1", "x");
	put(f, "sport/golf/p2/q", "x");
	put(f, "news", "x");
	/* Section 4.7.1.2: "sport/#" also matches "sport". */
	assert_int_equal(lookup(f, "sport/#"), 4);
	assert_true(got(f, "sport"));
	assert_int_equal(lookup(f, "sport/tennis/#"), 2);
	assert_true(got(f, "sport/tennis") && got(f, "sport/tennis/p1"));
	assert_int_equal(lookup(f, "sport/+/#"), 3);
	assert_false(got(f, "sport"));
	assert_int_equal(lookup(f, "#"), 5);
	assert_int_equal(lookup(f, "+/#"), 5);
	assert_int_equal(lookup(f, "golf/#"), 0);
}

static void test_wildcard_lookup_skips_dollar_topics(void **state)
{
	struct fix *f = *state;
	put(f, "$SYS/uptime", "x");
	put(f, "$share", "x");
	put(f, "a/$b", "x");
	/* [MQTT-4.7.2-1] */
	assert_int_equal(lookup(f, "#"), 1);
	assert_true(got(f, "a/$b"));
	assert_int_equal(lookup(f, "+/uptime"), 0);
	assert_int_equal(lookup(f, "+"), 0);
	assert_int_equal(lookup(f, "+/#"), 1);
	assert_int_equal(lookup(f, "$SYS/#"), 1);
	assert_int_equal(lookup(f, "$SYS/+"), 1);
	assert_int_equal(lookup(f, "a/+"), 1);
}

static void test_empty_levels_are_ordinary_levels(void **state)
{
	struct fix *f = *state;
	put(f, "/a", "x");
	put(f, "a/", "x");
	put(f, "a//b", "x");
	assert_int_equal(lookup(f, "/a"), 1);
	assert_int_equal(lookup(f, "+/a"), 1);
	assert_int_equal(lookup(f, "/+"), 1);
	assert_int_equal(lookup(f, "a/+"), 1);
	assert_true(got(f, "a/"));
	assert_int_equal(lookup(f, "a/+/b"), 1);
	assert_int_equal(lookup(f, "a/b"), 0);
	assert_int_equal(lookup(f, "a"), 0);
	assert_int_equal(lookup(f, "a/#"), 2);
	assert_int_equal(lookup(f, "#"), 3);
}

static void test_expired_message_is_removed_instead_of_returned(void **state)
{
	struct fix *f = *state;
	/* [MQTT-3.3.2-5]: 10 s expiry, stored at t = 1000 ms. */
	struct msg *m = retained_msg("e/x", "v", 10, 1000);
	assert_int_equal(m->expire_at, 11000);
	assert_int_equal(retain_set(f->s, m), TERN_OK);
	put(f, "e/y", "forever");
	assert_int_equal(lookup_at(f, "e/x", 10999), 1);
	retain_hits_free(&f->h);
	assert_int_equal(lookup_at(f, "e/#", 11000), 1);
	assert_true(got(f, "e/y"));
	assert_int_equal(retain_count(f->s), 1);
	assert_int_equal(refs(m), 1); /* the store let go */
	assert_int_equal(lookup_at(f, "e/x", 0), 0);
	msg_unref(m);
}

static void test_expired_message_above_a_live_one_keeps_the_live_one(void **state)
{
	struct fix *f = *state;
	struct msg *m = retained_msg("a", "v", 1, 0);
	assert_int_equal(retain_set(f->s, m), TERN_OK);
	msg_unref(m);
	struct msg *n = retained_msg("a/b/c", "v", 1, 0);
	assert_int_equal(retain_set(f->s, n), TERN_OK);
	msg_unref(n);
	put(f, "a/b", "forever");
	assert_int_equal(lookup_at(f, "#", 5000), 1);
	assert_true(got(f, "a/b"));
	assert_int_equal(retain_count(f->s), 1);
	assert_int_equal(lookup_at(f, "a/b", 5000), 1);
	assert_int_equal(lookup_at(f, "+/+", 5000), 1);
}

static void test_expire_sweeps_every_topic_dollar_ones_too(void **state)
{
	/* retain_expiry_interval's sweep: what nobody looks up again goes
	 * too, '$' topics included, and the live ones stay. */
	struct fix *f = *state;
	const char *topics[] = {"s/a", "s/a/b", "$SYS/x", "t"};
	for (size_t i = 0; i < 4; i++) {
		struct msg *m = retained_msg(topics[i], "v", 2, 0);
		assert_int_equal(retain_set(f->s, m), TERN_OK);
		msg_unref(m);
	}
	put(f, "s/a/b/c", "forever");
	put(f, "$SYS/y", "forever");
	assert_int_equal(retain_expire(f->s, 1999), 0);
	assert_int_equal(retain_count(f->s), 6);
	assert_int_equal(retain_expire(f->s, 2000), 4);
	assert_int_equal(retain_count(f->s), 2);
	assert_int_equal(retain_expire(f->s, 9000), 0);
	assert_int_equal(lookup(f, "s/#"), 1);
	assert_true(got(f, "s/a/b/c"));
	assert_int_equal(lookup(f, "$SYS/#"), 1);
	assert_true(got(f, "$SYS/y"));
}

static void test_expiry_and_clearing_free_the_nodes_left_empty(void **state)
{
	struct fix *f = *state;
	char buf[64];
	put(f, "keep", "x");
	put(f, "keep2", "x");
	size_t before = heap_bytes();
	for (int i = 0; i < 500; i++) {
		snprintf(buf, sizeof(buf), "d/%d/x//y", i);
		struct msg *m = retained_msg(buf, "v", 1, 0);
		assert_int_equal(retain_set(f->s, m), TERN_OK);
		msg_unref(m);
		snprintf(buf, sizeof(buf), "c/%d/z", i);
		put(f, buf, "v");
		snprintf(buf, sizeof(buf), "c/%d", i);
		put(f, buf, "v");
	}
	assert_int_equal(retain_count(f->s), 1502);
	size_t peak = heap_bytes();
	assert_true(peak > before);
	/* Expiry prunes: nothing is returned, so no hit array is allocated. */
	assert_int_equal(lookup_at(f, "d/#", 1000), 0);
	for (int i = 0; i < 500; i++) {
		snprintf(buf, sizeof(buf), "c/%d", i);
		struct msg *m = retained_msg(buf, "", 0, 0);
		assert_int_equal(retain_set(f->s, m), TERN_OK);
		msg_unref(m);
		snprintf(buf, sizeof(buf), "c/%d/z", i);
		m = retained_msg(buf, "", 0, 0);
		assert_int_equal(retain_set(f->s, m), TERN_OK);
		msg_unref(m);
	}
	assert_int_equal(retain_count(f->s), 2);
	assert_heap_back(before, peak);
}

static void test_free_releases_the_store_references(void **state)
{
	(void)state;
	struct retain_store *s = retain_new(&KEY);
	assert_non_null(s);
	struct msg *a = retained_msg("a", "1", 0, 0);
	struct msg *b = retained_msg("a/b/c", "2", 0, 0);
	assert_int_equal(retain_set(s, a), TERN_OK);
	assert_int_equal(retain_set(s, b), TERN_OK);
	struct retain_hits h = {0};
	assert_int_equal(retain_match(s, (const uint8_t *)"#", 1, 0, &h), TERN_OK);
	assert_int_equal(h.n, 2);
	retain_free(s);
	/* The hits outlive the store. */
	assert_int_equal(refs(a), 2);
	assert_int_equal(refs(b), 2);
	retain_hits_free(&h);
	assert_int_equal(refs(a), 1);
	assert_int_equal(refs(b), 1);
	/* The last references: LSan reports a leak if anything else held one. */
	msg_unref(a);
	msg_unref(b);
	retain_free(NULL);
}

static void test_many_retained_topics_under_one_level(void **state)
{
	struct fix *f = *state;
	char buf[64];
	for (int i = 0; i < 20000; i++) {
		snprintf(buf, sizeof(buf), "dev/%d/state", i);
		put(f, buf, "on");
	}
	assert_int_equal(retain_count(f->s), 20000);
	assert_int_equal(lookup(f, "dev/12345/state"), 1);
	assert_int_equal(lookup(f, "dev/+/state"), 20000);
	assert_int_equal(lookup(f, "dev/+/other"), 0);
}

struct worker_arg {
	struct retain_store *s;
	int id;
};

static void *hammer(void *p)
{
	struct worker_arg *a = p;
	char buf[32];
	for (int i = 0; i < 2000; i++) {
		snprintf(buf, sizeof(buf), "w%d/%d", a->id, i % 50);
		struct msg *m = retained_msg(buf, i % 3 ? "v" : "", 0, 0);
		if (retain_set(a->s, m) != TERN_OK)
			abort();
		msg_unref(m);
		struct retain_hits h = {0};
		if (retain_match(a->s, (const uint8_t *)"#", 1, 0, &h) != TERN_OK)
			abort();
		retain_hits_free(&h);
	}
	return NULL;
}

static void test_concurrent_set_and_match_are_serialised(void **state)
{
	struct fix *f = *state;
	pthread_t t[2];
	struct worker_arg a[2] = {{f->s, 0}, {f->s, 1}};
	for (int i = 0; i < 2; i++)
		assert_int_equal(pthread_create(&t[i], NULL, hammer, &a[i]), 0);
	for (int i = 0; i < 2; i++)
		assert_int_equal(pthread_join(t[i], NULL), 0);
	assert_int_equal(retain_count(f->s), lookup(f, "#"));
}

/* check_retain_source's callback sees each match's publisher as
 * retain_set_source() kept it (a copy), NULL after a plain retain_set(),
 * the new one after a replacement; a false answer leaves the match out. */
struct seen {
	char cid[32], user[32];
	bool had_user, had_src;
	int listener, calls;
};

static bool keep_not_mallory(void *arg, const struct msg *m, const struct retain_source *src)
{
	(void)m;
	struct seen *s = arg;
	s->calls++;
	s->had_src = src != NULL;
	if (!src)
		return true;
	snprintf(s->cid, sizeof(s->cid), "%.*s", (int)src->client_id.len,
	         (const char *)src->client_id.data);
	s->had_user = src->username.data != NULL;
	snprintf(s->user, sizeof(s->user), "%.*s", (int)src->username.len,
	         s->had_user ? (const char *)src->username.data : "");
	s->listener = src->listener;
	return strcmp(s->user, "mallory") != 0;
}

static void test_source_is_kept_and_checked(void **state)
{
	struct fix *f = *state;
	char cid[] = "pub-1", user[] = "alice";
	struct retain_source src = {{(const uint8_t *)cid, 5}, {(const uint8_t *)user, 5}, 3};
	struct msg *m = retained_msg("s/1", "v", 0, 0);
	assert_int_equal(retain_set_source(f->s, m, &src), TERN_OK);
	msg_unref(m);
	memset(cid, 'x', 5); /* copied, not pointed at */
	memset(user, 'y', 5);
	struct seen seen = {0};
	retain_hits_free(&f->h);
	assert_int_equal(retain_match_checked(f->s, (const uint8_t *)"s/#", 3, 1, keep_not_mallory,
	                                      &seen, &f->h),
	                 TERN_OK);
	assert_int_equal(f->h.n, 1);
	assert_int_equal(seen.calls, 1);
	assert_string_equal(seen.cid, "pub-1");
	assert_string_equal(seen.user, "alice");
	assert_int_equal(seen.listener, 3);

	struct retain_source bad = {
	        {(const uint8_t *)"pub-2", 5}, {(const uint8_t *)"mallory", 7}, 0};
	m = retained_msg("s/1", "w", 0, 0);
	assert_int_equal(retain_set_source(f->s, m, &bad), TERN_OK);
	msg_unref(m);
	retain_hits_free(&f->h);
	assert_int_equal(retain_match_checked(f->s, (const uint8_t *)"s/1", 3, 1, keep_not_mallory,
	                                      &seen, &f->h),
	                 TERN_OK);
	assert_int_equal(f->h.n, 0);
	assert_string_equal(seen.cid, "pub-2");

	/* No username, then no source at all. */
	struct retain_source anon = {{(const uint8_t *)"pub-3", 5}, {NULL, 0}, 1};
	m = retained_msg("s/1", "x", 0, 0);
	assert_int_equal(retain_set_source(f->s, m, &anon), TERN_OK);
	msg_unref(m);
	retain_hits_free(&f->h);
	assert_int_equal(retain_match_checked(f->s, (const uint8_t *)"s/1", 3, 1, keep_not_mallory,
	                                      &seen, &f->h),
	                 TERN_OK);
	assert_int_equal(f->h.n, 1);
	assert_false(seen.had_user);
	put(f, "s/1", "y");
	retain_hits_free(&f->h);
	assert_int_equal(retain_match_checked(f->s, (const uint8_t *)"s/1", 3, 1, keep_not_mallory,
	                                      &seen, &f->h),
	                 TERN_OK);
	assert_int_equal(f->h.n, 1);
	assert_false(seen.had_src);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	        cmocka_unit_test_setup_teardown(test_set_then_exact_lookup_returns_a_new_reference,
	                                        setup, teardown),
	        cmocka_unit_test_setup_teardown(test_source_is_kept_and_checked, setup, teardown),
	        cmocka_unit_test_setup_teardown(test_set_replaces_the_previous_message_of_the_topic,
	                                        setup, teardown),
	        cmocka_unit_test_setup_teardown(test_empty_payload_clears_and_is_not_stored, setup,
	                                        teardown),
	        cmocka_unit_test_setup_teardown(test_plus_filter_finds_one_level_of_retained_topics,
	                                        setup, teardown),
	        cmocka_unit_test_setup_teardown(test_hash_filter_finds_the_subtree_and_its_parent,
	                                        setup, teardown),
	        cmocka_unit_test_setup_teardown(test_wildcard_lookup_skips_dollar_topics, setup,
	                                        teardown),
	        cmocka_unit_test_setup_teardown(test_empty_levels_are_ordinary_levels, setup,
	                                        teardown),
	        cmocka_unit_test_setup_teardown(test_expired_message_is_removed_instead_of_returned,
	                                        setup, teardown),
	        cmocka_unit_test_setup_teardown(
	                test_expired_message_above_a_live_one_keeps_the_live_one, setup, teardown),
	        cmocka_unit_test_setup_teardown(test_expire_sweeps_every_topic_dollar_ones_too,
	                                        setup, teardown),
	        cmocka_unit_test_setup_teardown(test_expiry_and_clearing_free_the_nodes_left_empty,
	                                        setup, teardown),
	        cmocka_unit_test(test_free_releases_the_store_references),
	        cmocka_unit_test_setup_teardown(test_many_retained_topics_under_one_level, setup,
	                                        teardown),
	        cmocka_unit_test_setup_teardown(test_concurrent_set_and_match_are_serialised, setup,
	                                        teardown),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
