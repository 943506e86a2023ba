/*
 * test_topic_rate.c - unit tests of the admin API's published-topic table
 * (src/broker/topic_rate.h): rates estimated from one publish in
 * TOPIC_RATE_SAMPLE, heaviest first, a heavy topic kept among many light
 * ones, counts that fade when publishing stops, long topics kept cut.
 */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <stdio.h>
#include <string.h>

#include "broker/topic_rate.h"
#include "util/hash.h"

static struct tern_bytes B(const char *s) {
	return (struct tern_bytes){(uint8_t *)s, strlen(s)};
}

static struct topic_rates *
table(void)
{
	struct hash_key k;
	memset(&k, 7, sizeof(k));
	struct topic_rates *t = topic_rates_new(&k);
	assert_non_null(t);
	return t;
}

/* 20 s of "a" at 1000/s and "b" at 100/s, interleaved, 1 ms apart. */
static void test_rates_heaviest_first(void **state)
{
	(void)state;
	struct topic_rates *t = table();
	uint64_t now = 1000000;
	for (int i = 0; i < 20000; i++, now++) {
		topic_rate_note(t, B("a"), now);
		if (i % 10 == 0)
			topic_rate_note(t, B("b/c"), now);
	}
	struct topic_rate_view v[8];
	size_t n = topic_rates_read(t, now, v, 8);
	assert_int_equal(n, 2);
	assert_int_equal(v[0].topic.len, 1);
	assert_memory_equal(v[0].topic.data, "a", 1);
	assert_memory_equal(v[1].topic.data, "b/c", 3);
	assert_false(v[0].cut);
	assert_true(v[0].per_second > 800 && v[0].per_second < 1200);
	assert_true(v[1].per_second > 50 && v[1].per_second < 150);
	topic_rates_free(t);
}

/* A heavy topic among thousands of topics published once each. */
static void test_a_heavy_topic_is_kept_among_light_ones(void **state)
{
	(void)state;
	struct topic_rates *t = table();
	uint64_t now = 5000;
	char name[32];
	for (int i = 0; i < 50000; i++, now++) {
		snprintf(name, sizeof(name), "light/%d", i);
		topic_rate_note(t, B(name), now);
		if (i % 4 == 0)
			topic_rate_note(t, B("heavy"), now);
	}
	struct topic_rate_view v[4];
	assert_true(topic_rates_read(t, now, v, 4) >= 1);
	assert_memory_equal(v[0].topic.data, "heavy", 5);
	topic_rates_free(t);
}

/* No publish for minutes: the estimates fade away. */
static void test_rates_fade_when_publishing_stops(void **state)
{
	(void)state;
	struct topic_rates *t = table();
	uint64_t now = 1;
	for (int i = 0; i < 10000; i++, now++)
		topic_rate_note(t, B("a"), now);
	struct topic_rate_view v[2];
	assert_int_equal(topic_rates_read(t, now, v, 2), 1);
	double busy = v[0].per_second;
	size_t n = topic_rates_read(t, now + 120000, v, 2);
	assert_true(n == 0 || v[0].per_second < busy / 50);
	assert_int_equal(topic_rates_read(t, now + 3600000, v, 2), 0);
	topic_rates_free(t);
}

static void test_long_topics_are_kept_cut(void **state)
{
	(void)state;
	struct topic_rates *t = table();
	char longer[300];
	memset(longer, 'x', sizeof(longer) - 1);
	longer[sizeof(longer) - 1] = 0;
	for (uint64_t now = 1; now < 5000; now++)
		topic_rate_note(t, B(longer), now);
	struct topic_rate_view v[2];
	assert_int_equal(topic_rates_read(t, 5000, v, 2), 1);
	assert_true(v[0].cut);
	assert_int_equal(v[0].topic.len, TOPIC_RATE_KEEP);
	topic_rates_free(t);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	        cmocka_unit_test(test_rates_heaviest_first),
	        cmocka_unit_test(test_a_heavy_topic_is_kept_among_light_ones),
	        cmocka_unit_test(test_rates_fade_when_publishing_stops),
	        cmocka_unit_test(test_long_topics_are_kept_cut),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
