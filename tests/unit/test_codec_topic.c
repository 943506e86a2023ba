/*
 * test_codec_topic.c - unit tests of the topic-level iterator and its
 * helpers (src/proto/topic.h), which validation, tern_topic_matches(), the
 * router, the retained store, the ACL and the broker's max_topic_levels all
 * walk topics with.
 *
 * The edge cases of section 4.7 are checked one by one (empty levels, a
 * leading or trailing '/', wildcards, '$' topics, long topics). Then the
 * helpers are compared, over every string of up to six bytes of an alphabet
 * holding each byte with a meaning ('/', '+', '#', '$', a letter), with
 * reference implementations that are plain byte loops written the way the
 * code before the iterator was: the same answer for every string shows that
 * moving to the iterator changed no behaviour.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "proto/topic.h"
#include "tern/codec.h"

/* Walks s and renders its levels as "[a][][b]", with a '*' after the level
 * the iterator flags as last; checks that the levels point into s, that
 * only the final one is flagged last, and that the walk stays done. */
static const char *levels(const char *s)
{
	static char out[256];
	size_t len = strlen(s), o = 0, n = 0;
	struct topic_iter it;
	struct topic_level lv;
	topic_iter_init(&it, (const uint8_t *)s, len);
	out[0] = '\0';
	bool saw_last = false;
	while (topic_iter_next(&it, &lv)) {
		assert_false(saw_last);
		assert_true(lv.p >= (const uint8_t *)s &&
		            lv.p + lv.len <= (const uint8_t *)s + len);
		assert_true(o + lv.len + 4 < sizeof(out));
		out[o++] = '[';
		memcpy(out + o, lv.p, lv.len);
		o += lv.len;
		out[o++] = ']';
		if (lv.last) {
			out[o++] = '*';
			saw_last = true;
		}
		out[o] = '\0';
		n++;
	}
	assert_true(saw_last);
	assert_true(topic_iter_done(&it));
	struct topic_level untouched = {NULL, 12345, false};
	assert_false(topic_iter_next(&it, &untouched));
	assert_null(untouched.p);
	assert_int_equal(untouched.len, 12345);
	return out;
}

static void test_levels_of_the_edge_cases_MQTT_4_7_1_1(void **state)
{
	(void)state;
	/* "" is one empty level: n slashes make n + 1 levels. */
	assert_string_equal(levels(""), "[]*");
	assert_string_equal(levels("/"), "[][]*");
	assert_string_equal(levels("a//b"), "[a][][b]*");
	assert_string_equal(levels("/a"), "[][a]*");
	assert_string_equal(levels("a/"), "[a][]*");
	assert_string_equal(levels("//"), "[][][]*");
	assert_string_equal(levels("a"), "[a]*");
	assert_string_equal(levels("#"), "[#]*");
	assert_string_equal(levels("+/+"), "[+][+]*");
	assert_string_equal(levels("a/+/#"), "[a][+][#]*");
	assert_string_equal(levels("$SYS/x"), "[$SYS][x]*");
	assert_string_equal(levels("$share/g/a/#"), "[$share][g][a][#]*");
	assert_string_equal(levels("sport/tennis/player1"), "[sport][tennis][player1]*");
}

static void test_level_is_names_exactly_one_byte(void **state)
{
	(void)state;
	struct topic_iter it;
	struct topic_level lv;
	topic_iter_init(&it, (const uint8_t *)"#/+/++/a#//$", 12);
	static const struct {
		bool hash, plus;
	} want[] = {{true, false},  {false, true},  {false, false},
	            {false, false}, {false, false}, {false, false}};
	for (size_t i = 0; i < sizeof(want) / sizeof(want[0]); i++) {
		assert_true(topic_iter_next(&it, &lv));
		assert_int_equal(topic_level_is(&lv, '#'), want[i].hash);
		assert_int_equal(topic_level_is(&lv, '+'), want[i].plus);
	}
	assert_true(topic_level_is(&lv, '$'));
	assert_false(topic_iter_next(&it, &lv));
}

static void test_null_string_of_length_zero_is_one_empty_level(void **state)
{
	(void)state;
	struct topic_iter it;
	struct topic_level lv;
	topic_iter_init(&it, NULL, 0);
	assert_false(topic_iter_done(&it));
	assert_true(topic_iter_next(&it, &lv));
	assert_non_null(lv.p);
	assert_int_equal(lv.len, 0);
	assert_true(lv.last);
	assert_true(topic_iter_done(&it));
	assert_false(topic_iter_next(&it, &lv));
}

static void test_walk_resumes_from_a_saved_position(void **state)
{
	(void)state;
	const uint8_t *t = (const uint8_t *)"a/bc//d";
	struct topic_iter it, again;
	struct topic_level lv, lv2 = {0};
	topic_iter_init(&it, t, 7);
	assert_true(topic_iter_next(&it, &lv));
	size_t saved = it.pos;
	assert_int_equal(saved, 2);
	/* Two walks from the saved position see the same levels. */
	topic_iter_at(&again, t, 7, saved);
	while (topic_iter_next(&it, &lv)) {
		assert_true(topic_iter_next(&again, &lv2));
		assert_ptr_equal(lv.p, lv2.p);
		assert_int_equal(lv.len, lv2.len);
		assert_int_equal(lv.last, lv2.last);
	}
	assert_false(topic_iter_next(&again, &lv2));
	/* A position past the end is a finished walk. */
	topic_iter_at(&again, t, 7, 8);
	assert_true(topic_iter_done(&again));
	assert_false(topic_iter_next(&again, &lv2));
}

static void test_long_topics(void **state)
{
	(void)state;
	/* The longest MQTT string: 32,768 levels "a/a/.../a", and one level of
	 * 65,535 bytes. */
	size_t len = 65535;
	uint8_t *t = malloc(len);
	assert_non_null(t);
	for (size_t i = 0; i < len; i++)
		t[i] = i % 2 ? '/' : 'a';
	struct topic_iter it;
	struct topic_level lv;
	size_t n = 0;
	topic_iter_init(&it, t, len);
	while (topic_iter_next(&it, &lv)) {
		assert_int_equal(lv.len, 1);
		assert_int_equal(lv.p[0], 'a');
		assert_int_equal(lv.last, n == 32767);
		n++;
	}
	assert_int_equal(n, 32768);
	assert_false(topic_levels_over(t, len, 32768));
	assert_true(topic_levels_over(t, len, 32767));
	assert_true(topic_filter_wildcards_ok(t, len));

	memset(t, 'x', len);
	topic_iter_init(&it, t, len);
	assert_true(topic_iter_next(&it, &lv));
	assert_int_equal(lv.len, len);
	assert_true(lv.last);
	assert_false(topic_iter_next(&it, &lv));
	assert_false(topic_levels_over(t, len, 1));
	t[len - 1] = '#';
	assert_false(topic_filter_wildcards_ok(t, len));
	free(t);
}

static void test_levels_over_counts_levels_not_bytes(void **state)
{
	(void)state;
	static const struct {
		const char *s;
		size_t max;
		bool over;
	} cases[] = {
	        {"a/b/c", 3, false},   {"a/b/c", 2, true},  {"a", 1, false},    {"", 1, false},
	        {"", 0, true},         {"/", 1, true},      {"/", 2, false},    {"///", 3, true},
	        {"///", 4, false},     {"ab", 3, false},    {"a//b", 3, false}, {"a//b", 2, true},
	        {"$SYS/x/y", 2, true}, {"+/+/#", 3, false}, {"aaaa", 2, false},
	};
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++)
		assert_int_equal(topic_levels_over((const uint8_t *)cases[i].s, strlen(cases[i].s),
		                                   cases[i].max),
		                 cases[i].over);
}

static void test_filter_wildcards_MQTT_4_7_1_2_and_3(void **state)
{
	(void)state;
	static const struct {
		const char *f;
		bool ok;
	} cases[] = {
	        {"#", true},
	        {"+", true},
	        {"a/+", true},
	        {"a/#", true},
	        {"+/+/#", true},
	        {"/#", true},
	        {"+/", true},
	        {"a//b", true},
	        {"$SYS/#", true},
	        {"sport/+/player1", true},
	        {"", true},
	        {"/", true},
	        {"#/", false},
	        {"#/a", false},
	        {"a/#/b", false},
	        {"a#", false},
	        {"a+", false},
	        {"+a/b", false},
	        {"a/b+", false},
	        {"++", false},
	        {"+#", false},
	        {"##", false},
	        {"sport/tennis#", false},
	};
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++)
		assert_int_equal(
		        topic_filter_wildcards_ok((const uint8_t *)cases[i].f, strlen(cases[i].f)),
		        cases[i].ok);
}

/* ---- against reference byte loops, exhaustively over short strings ---- */

static const char ALPHABET[] = {'a', '/', '+', '#', '$'};
#define NALPHA (sizeof(ALPHABET))
#define MAXLEN 6

/* The wildcard check as the validation in topic.c and acl.c was written
 * before the iterator. */
static bool ref_wildcards_ok(const uint8_t *f, size_t len)
{
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

/* The level count as topic_too_deep() was written before the iterator. */
static bool ref_levels_over(const uint8_t *t, size_t len, size_t max)
{
	size_t levels = 1;
	for (size_t i = 0; i < len; i++)
		if (t[i] == '/')
			levels++;
	return levels > max;
}

/* Fills s with the string number k of length len over ALPHABET. */
static void nth_string(uint8_t *s, size_t len, size_t k)
{
	for (size_t i = 0; i < len; i++) {
		s[i] = (uint8_t)ALPHABET[k % NALPHA];
		k /= NALPHA;
	}
}

static void test_helpers_agree_with_byte_loops_on_all_short_strings(void **state)
{
	(void)state;
	uint8_t s[MAXLEN], back[MAXLEN + 1];
	size_t total = 0;
	for (size_t len = 0; len <= MAXLEN; len++) {
		size_t count = 1;
		for (size_t i = 0; i < len; i++)
			count *= NALPHA;
		for (size_t k = 0; k < count; k++, total++) {
			nth_string(s, len, k);
			assert_int_equal(topic_filter_wildcards_ok(s, len),
			                 ref_wildcards_ok(s, len));
			for (size_t max = 0; max <= MAXLEN + 2; max++)
				assert_int_equal(topic_levels_over(s, len, max),
				                 ref_levels_over(s, len, max));
			/* The levels joined with '/' give the string back. */
			struct topic_iter it;
			struct topic_level lv;
			size_t o = 0;
			topic_iter_init(&it, s, len);
			while (topic_iter_next(&it, &lv)) {
				assert_null(memchr(lv.p, '/', lv.len));
				memcpy(back + o, lv.p, lv.len);
				o += lv.len;
				if (!lv.last)
					back[o++] = '/';
			}
			assert_int_equal(o, len);
			assert_memory_equal(back, s, len);
		}
	}
	assert_int_equal(total, 1 + 5 + 25 + 125 + 625 + 3125 + 15625);
}

/* tern_topic_matches() as it was written before the iterator. */
static bool ref_next_level(const uint8_t *s, size_t len, size_t *pos, size_t *start, size_t *end)
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

static bool ref_matches(const uint8_t *filter, size_t flen, const uint8_t *topic, size_t tlen)
{
	if (flen == 0 || tlen == 0)
		return false;
	if (topic[0] == '$' && (filter[0] == '+' || filter[0] == '#'))
		return false;
	size_t fp = 0, tp = 0, fs, fe, ts, te;
	while (ref_next_level(filter, flen, &fp, &fs, &fe)) {
		size_t fl = fe - fs;
		if (fl == 1 && filter[fs] == '#')
			return true;
		if (!ref_next_level(topic, tlen, &tp, &ts, &te))
			return false;
		if (fl == 1 && filter[fs] == '+')
			continue;
		if (fl != te - ts || (fl > 0 && memcmp(filter + fs, topic + ts, fl) != 0))
			return false;
	}
	return tp > tlen;
}

static void test_topic_matches_agrees_with_the_byte_loop_MQTT_4_7(void **state)
{
	(void)state;
	/* Every filter and topic of up to four bytes, wildcards in the topic
	 * included (the function must not care what a name holds). */
	enum { L = 4 };
	uint8_t f[L], t[L];
	size_t pairs = 0, matched = 0;
	for (size_t flen = 0; flen <= L; flen++) {
		size_t fc = 1;
		for (size_t i = 0; i < flen; i++)
			fc *= NALPHA;
		for (size_t fk = 0; fk < fc; fk++) {
			nth_string(f, flen, fk);
			for (size_t tlen = 0; tlen <= L; tlen++) {
				size_t tc = 1;
				for (size_t i = 0; i < tlen; i++)
					tc *= NALPHA;
				for (size_t tk = 0; tk < tc; tk++, pairs++) {
					nth_string(t, tlen, tk);
					bool want = ref_matches(f, flen, t, tlen);
					assert_int_equal(tern_topic_matches(f, flen, t, tlen),
					                 want);
					matched += want;
				}
			}
		}
	}
	assert_int_equal(pairs, 781 * 781);
	/* Enough of them match for the comparison to mean something. */
	assert_true(matched > 10000);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	        cmocka_unit_test(test_levels_of_the_edge_cases_MQTT_4_7_1_1),
	        cmocka_unit_test(test_level_is_names_exactly_one_byte),
	        cmocka_unit_test(test_null_string_of_length_zero_is_one_empty_level),
	        cmocka_unit_test(test_walk_resumes_from_a_saved_position),
	        cmocka_unit_test(test_long_topics),
	        cmocka_unit_test(test_levels_over_counts_levels_not_bytes),
	        cmocka_unit_test(test_filter_wildcards_MQTT_4_7_1_2_and_3),
	        cmocka_unit_test(test_helpers_agree_with_byte_loops_on_all_short_strings),
	        cmocka_unit_test(test_topic_matches_agrees_with_the_byte_loop_MQTT_4_7),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
