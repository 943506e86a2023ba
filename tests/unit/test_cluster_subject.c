/*
 * test_cluster_subject.c - unit tests of the topic <-> NATS subject mapping
 * and the queue group names (src/cluster/subject.c).
 *
 * Each rule of the mapping (subject.h) is checked on its edge cases: empty
 * levels, a leading or trailing '/', '$' topics, the bytes NATS gives a
 * meaning, non-ASCII UTF-8, the filters' wildcards and the length limit.
 * Then two exhaustive checks over every topic and filter of up to five
 * bytes of an alphabet with each byte that matters ('/', '+', '#', '$',
 * '.', '*', a letter): every topic's subject maps back to it and no two
 * topics share a subject; and NATS' matching of the filter's subjects
 * against the topic's subject (done here by a reference matcher of NATS'
 * rules: '*' one token, '>' one or more) gives exactly MQTT's answer,
 * tern_topic_matches(), '$' topics included [MQTT-4.7.2-1].
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "cluster/subject.h"
#include "tern/codec.h"

#define MAX 4096

static struct tern_bytes B(const char *s) {
	return (struct tern_bytes){(const uint8_t *)s, (uint32_t)strlen(s)};
}

/* The subject of topic t for cluster "tern" (asserts success). */
static const char *
subj(const char *t)
{
	static char out[MAX + 1];
	size_t len;
	assert_int_equal(subject_of_topic("tern", B(t), out, MAX, &len), TERN_OK);
	assert_int_equal(len, strlen(out));
	return out;
}

/* Maps t to its subject and back, and checks both directions. */
static void round_trip(const uint8_t *t, size_t n, const char *want)
{
	char s[MAX + 1];
	uint8_t back[MAX];
	size_t len, blen;
	assert_int_equal(
	        subject_of_topic("tern", (struct tern_bytes){t, (uint32_t)n}, s, MAX, &len),
	        TERN_OK);
	if (want)
		assert_string_equal(s, want);
	assert_int_equal(subject_to_topic("tern", s, len, back, sizeof(back), &blen), TERN_OK);
	assert_int_equal(blen, n);
	if (n)
		assert_memory_equal(back, t, n);
}

static void rt(const char *t, const char *want)
{
	round_trip((const uint8_t *)t, strlen(t), want);
}

static void test_topic_levels_become_tokens(void **state)
{
	(void)state;
	rt("a", "tern.m.a");
	rt("a/b/c", "tern.m.a.b.c");
	/* Empty levels, leading and trailing '/' (section 4.7.1). */
	rt("/", "tern.m.%.%");
	rt("/a", "tern.m.%.a");
	rt("a/", "tern.m.a.%");
	rt("a//b", "tern.m.a.%.b");
	rt("//", "tern.m.%.%.%");
	rt("", "tern.m.%");
}

static void test_dollar_topics_go_under_d_MQTT_4_7_2_1(void **state)
{
	(void)state;
	rt("$SYS/broker/uptime", "tern.d.$SYS.broker.uptime");
	rt("$", "tern.d.$");
	rt("$/", "tern.d.$.%");
	/* Only a first '$' counts. */
	rt("a/$SYS", "tern.m.a.$SYS");
}

static void test_bytes_with_a_meaning_are_escaped(void **state)
{
	(void)state;
	rt("a.b", "tern.m.a%2Eb");
	rt("*", "tern.m.%2A");
	rt(">", "tern.m.%3E");
	rt("a*b/>x", "tern.m.a%2Ab.%3Ex");
	rt("%", "tern.m.%25");
	rt("%25", "tern.m.%2525");
	rt("a b", "tern.m.a%20b");
	rt("a\tb", "tern.m.a%09b");
	rt("\r\n", "tern.m.%0D%0A");
	rt("x\x7f", "tern.m.x%7F");
	/* Bytes NATS does not care about stay as they are. */
	rt("+#$!~,:;=?@[]{}|\\\"'", "tern.m.+#$!~,:;=?@[]{}|\\\"'");
	/* Non-ASCII UTF-8 (e, e acute, CJK, an emoji) byte for byte. */
	rt("caf\xc3\xa9/\xe6\x97\xa5/\xf0\x9f\x98\x80",
	   "tern.m.caf\xc3\xa9.\xe6\x97\xa5.\xf0\x9f\x98\x80");
	/* Every byte value, NUL included, maps and maps back. */
	uint8_t all[256];
	for (int i = 0; i < 256; i++)
		all[i] = (uint8_t)i;
	round_trip(all, sizeof(all), NULL);
}

static void test_subjects_hold_no_whitespace_or_empty_token(void **state)
{
	(void)state;
	const char *s = subj("a b/\t/ /./*/>/");
	assert_string_equal(s, "tern.m.a%20b.%09.%20.%2E.%2A.%3E.%");
	assert_null(strpbrk(s, " \t\r\n"));
	assert_null(strstr(s, ".."));
}

/* The subjects of filter f: *n of them in out[0..n). */
static void filt(const char *f, const char *want1, const char *want2)
{
	char s[MAX + 1], p[MAX + 1];
	size_t n = 0;
	assert_int_equal(subject_of_filter("tern", B(f), s, p, MAX, &n), TERN_OK);
	assert_string_equal(s, want1);
	assert_int_equal(n, want2 ? 2 : 1);
	if (want2)
		assert_string_equal(p, want2);
}

static void test_filter_wildcards_MQTT_4_7_1(void **state)
{
	(void)state;
	filt("a/b", "tern.m.a.b", NULL);
	filt("+", "tern.m.*", NULL);
	filt("+/+", "tern.m.*.*", NULL);
	filt("a/+/c", "tern.m.a.*.c", NULL);
	/* '#' alone: a topic has at least one level, so no parent. */
	filt("#", "tern.m.>", NULL);
	/* "a/#" also matches "a" [MQTT-4.7.1-2]. */
	filt("a/#", "tern.m.a.>", "tern.m.a");
	filt("+/#", "tern.m.*.>", "tern.m.*");
	filt("/#", "tern.m.%.>", "tern.m.%");
	filt("$SYS/#", "tern.d.$SYS.>", "tern.d.$SYS");
	filt("$SYS/+/x", "tern.d.$SYS.*.x", NULL);
	/* Literal bytes of a filter are escaped as in a topic. */
	filt("a.b/*/ /#", "tern.m.a%2Eb.%2A.%20.>", "tern.m.a%2Eb.%2A.%20");
}

/* A reference of NATS' matching (nats-server's sublist): tokens split on
 * '.', '*' matches one token, '>' as the last token one or more. */
static bool nats_match(const char *filter, const char *subject)
{
	const char *f = filter, *s = subject;
	for (;;) {
		const char *fe = strchr(f, '.'), *se = strchr(s, '.');
		size_t fl = fe ? (size_t)(fe - f) : strlen(f);
		size_t sl = se ? (size_t)(se - s) : strlen(s);
		if (fl == 1 && f[0] == '>')
			return true;
		if (!(fl == 1 && f[0] == '*') && (fl != sl || memcmp(f, s, fl) != 0))
			return false;
		if (!fe || !se)
			return !fe && !se;
		f = fe + 1;
		s = se + 1;
	}
}

static void test_hash_never_matches_dollar_topics_MQTT_4_7_2_1(void **state)
{
	(void)state;
	char hash[MAX + 1], plus[MAX + 1], p[MAX + 1];
	size_t n;
	assert_int_equal(subject_of_filter("tern", B("#"), hash, p, MAX, &n), TERN_OK);
	assert_int_equal(subject_of_filter("tern", B("+/uptime"), plus, p, MAX, &n), TERN_OK);
	const char *dollar[] = {"$SYS/uptime", "$SYS", "$", "$a/b/c"};
	for (size_t i = 0; i < sizeof(dollar) / sizeof(dollar[0]); i++) {
		const char *s = subj(dollar[i]);
		/* The prefix of '#' without its '>' is not a prefix of s. */
		assert_int_not_equal(strncmp(s, hash, strlen(hash) - 1), 0);
		assert_false(nats_match(hash, s));
		assert_false(nats_match(plus, s));
	}
	assert_true(nats_match(hash, subj("a/uptime")));
	assert_true(nats_match(plus, subj("a/uptime")));
}

static void test_length_limit(void **state)
{
	(void)state;
	char out[32], p[32];
	size_t len = 99, n = 99;
	/* "tern.m.abc" is 10 bytes: fits in 10, not in 9. */
	assert_int_equal(subject_of_topic("tern", B("abc"), out, 10, &len), TERN_OK);
	assert_int_equal(len, 10);
	assert_string_equal(out, "tern.m.abc");
	len = 99;
	assert_int_equal(subject_of_topic("tern", B("abc"), out, 9, &len), TERN_E_LIMIT);
	assert_int_equal(len, 99);
	assert_string_equal(out, "");
	/* Escapes count three bytes: "tern.m.%2E" is 10. */
	assert_int_equal(subject_of_topic("tern", B("."), out, 10, &len), TERN_OK);
	assert_int_equal(subject_of_topic("tern", B("."), out, 9, &len), TERN_E_LIMIT);
	/* A filter: the longer subject decides. */
	assert_int_equal(subject_of_filter("tern", B("ab/#"), out, p, 11, &n), TERN_OK);
	assert_int_equal(n, 2);
	assert_string_equal(out, "tern.m.ab.>");
	assert_string_equal(p, "tern.m.ab");
	assert_int_equal(subject_of_filter("tern", B("ab/#"), out, p, 10, &n), TERN_E_LIMIT);
	assert_string_equal(out, "");
	/* Queue names too. */
	assert_int_equal(subject_queue_node("tern", B("n1"), out, 9, &len), TERN_OK);
	assert_string_equal(out, "tern.n.n1");
	assert_int_equal(subject_queue_node("tern", B("n1"), out, 8, &len), TERN_E_LIMIT);
	assert_int_equal(subject_queue_shared("tern", B("g"), B("a"), out, 12, &len), TERN_OK);
	assert_string_equal(out, "tern.s.g.m.a");
	assert_int_equal(subject_queue_shared("tern", B("g"), B("a"), out, 11, &len), TERN_E_LIMIT);
	/* A long topic: 3 bytes per escaped byte. */
	static uint8_t big[3000];
	static char sbig[MAX + 1];
	memset(big, '.', sizeof(big));
	assert_int_equal(
	        subject_of_topic("tern", (struct tern_bytes){big, sizeof(big)}, sbig, MAX, &len),
	        TERN_E_LIMIT);
	assert_int_equal(subject_of_topic("tern", (struct tern_bytes){big, 1363}, sbig, MAX, &len),
	                 TERN_OK);
	assert_int_equal(len, MAX);
	assert_int_equal(subject_of_topic("tern", (struct tern_bytes){big, 1364}, sbig, MAX, &len),
	                 TERN_E_LIMIT);
}

static void test_cluster_name_rules(void **state)
{
	(void)state;
	char out[64];
	size_t len;
	assert_int_equal(subject_cluster_check("tern"), TERN_OK);
	assert_int_equal(subject_cluster_check("my_cluster-2"), TERN_OK);
	assert_int_equal(subject_cluster_check(""), TERN_E_INVALID);
	assert_int_equal(subject_cluster_check(NULL), TERN_E_INVALID);
	const char *bad[] = {"a.b", "a*", ">", "a b", "a/b", "a%", "caf\xc3\xa9", "$SYS"};
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		assert_int_equal(subject_cluster_check(bad[i]), TERN_E_INVALID);
		assert_int_equal(subject_of_topic(bad[i], B("a"), out, 63, &len), TERN_E_INVALID);
	}
	char name[SUBJECT_CLUSTER_MAX + 2];
	memset(name, 'c', sizeof(name));
	name[SUBJECT_CLUSTER_MAX] = '\0';
	assert_int_equal(subject_cluster_check(name), TERN_OK);
	name[SUBJECT_CLUSTER_MAX] = 'c';
	name[SUBJECT_CLUSTER_MAX + 1] = '\0';
	assert_int_equal(subject_cluster_check(name), TERN_E_INVALID);
	/* The cluster name is the first token. */
	assert_int_equal(subject_of_topic("prod-1", B("a/b"), out, 63, &len), TERN_OK);
	assert_string_equal(out, "prod-1.m.a.b");
}

static void test_to_topic_refuses_what_of_topic_never_makes(void **state)
{
	(void)state;
	uint8_t t[64];
	size_t n;
	const char *bad[] = {
	        "tern",         "tern.m",      "tern.m.",    "tern.x.a",     "other.m.a",
	        "ter.m.a",      "tern.m.a..b", "tern.m.a.",  "tern.m.*",     "tern.m.a.>",
	        "tern.m.%2e",   "tern.m.%41",  "tern.m.%2",  "tern.m.%%",    "tern.m.a%",
	        "tern.m.a b",   "tern.m.$SYS", "tern.d.SYS", "tern.d.%",     "tern.m.%.%%",
	        "tern.m.a%2Gb", "ternx.m.a",   "tern.mm.a",  "tern.m.a\x7f",
	};
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
		assert_int_equal(subject_to_topic("tern", bad[i], strlen(bad[i]), t, sizeof(t), &n),
		                 TERN_E_INVALID);
	/* Too small an output buffer. */
	assert_int_equal(subject_to_topic("tern", "tern.m.abc", 10, t, 2, &n), TERN_E_BUFFER);
	assert_int_equal(subject_to_topic("tern", "tern.m.abc", 10, t, 3, &n), TERN_OK);
	assert_int_equal(n, 3);
}

static void test_queue_names(void **state)
{
	(void)state;
	char out[256];
	size_t len;
	assert_int_equal(subject_queue_node("tern", B("node-1"), out, 255, &len), TERN_OK);
	assert_string_equal(out, "tern.n.node-1");
	assert_int_equal(subject_queue_node("tern", B("my host.x"), out, 255, &len), TERN_OK);
	assert_string_equal(out, "tern.n.my%20host%2Ex");
	assert_int_equal(subject_queue_shared("tern", B("g1"), B("a/+/#"), out, 255, &len),
	                 TERN_OK);
	assert_string_equal(out, "tern.s.g1.m.a.*.>");
	assert_int_equal(subject_queue_shared("tern", B("g"), B("$SYS/#"), out, 255, &len),
	                 TERN_OK);
	assert_string_equal(out, "tern.s.g.d.$SYS.>");
	/* A '.' or space in the group or filter cannot shift the split
	 * between them: "a.b"+"c" and "a"+"b/c" differ. */
	char other[256];
	assert_int_equal(subject_queue_shared("tern", B("a.b"), B("c"), out, 255, &len), TERN_OK);
	assert_int_equal(subject_queue_shared("tern", B("a"), B("b/c"), other, 255, &len), TERN_OK);
	assert_string_not_equal(out, other);
	assert_int_equal(subject_queue_shared("tern", B("a b"), B("c d"), out, 255, &len), TERN_OK);
	assert_string_equal(out, "tern.s.a%20b.m.c%20d");
	assert_null(strpbrk(out, " \t\r\n"));
}

/* Every string of up to LEN bytes of ALPHA, by index (the matching test
 * takes every pair of them, some 17 million: about a second). */
#define ALPHA "/+#$.*a"
#define NA    7
#define LEN   5

static size_t count_upto(size_t maxlen)
{
	size_t total = 0, c = 1;
	for (size_t len = 0; len <= maxlen; len++, c *= NA)
		total += c;
	return total;
}

/* The k-th string (by length, then index) into s; returns its length. */
static size_t nth(size_t k, uint8_t *s)
{
	size_t c = 1;
	for (size_t len = 0; len <= LEN; len++, c *= NA) {
		if (k < c) {
			for (size_t i = 0; i < len; i++, k /= NA)
				s[i] = (uint8_t)ALPHA[k % NA];
			return len;
		}
		k -= c;
	}
	fail();
	return 0;
}

/* Subjects of every short string, topics and filters. */
struct table {
	char (*topic)[64];
	char (*filt)[2][64];
	size_t *nf;
	bool *is_topic, *is_filter;
};

static int cmp_str(const void *a, const void *b)
{
	return strcmp(*(char *const *)a, *(char *const *)b);
}

static void test_every_short_topic_round_trips_and_subjects_are_distinct(void **state)
{
	(void)state;
	size_t total = count_upto(LEN);
	char(*subs)[64] = calloc(total, sizeof(*subs));
	char **ptrs = calloc(total, sizeof(*ptrs));
	assert_non_null(subs);
	assert_non_null(ptrs);
	uint8_t t[LEN], back[64];
	for (size_t k = 0; k < total; k++) {
		size_t n = nth(k, t), len, blen;
		assert_int_equal(subject_of_topic("tern", (struct tern_bytes){t, (uint32_t)n},
		                                  subs[k], 63, &len),
		                 TERN_OK);
		assert_int_equal(subject_to_topic("tern", subs[k], len, back, sizeof(back), &blen),
		                 TERN_OK);
		assert_int_equal(blen, n);
		if (n)
			assert_memory_equal(back, t, n);
		ptrs[k] = subs[k];
	}
	qsort(ptrs, total, sizeof(*ptrs), cmp_str);
	for (size_t k = 1; k < total; k++)
		assert_string_not_equal(ptrs[k - 1], ptrs[k]);
	free(ptrs);
	free(subs);
}

static void test_nats_matching_of_the_subjects_is_mqtt_matching_MQTT_4_7(void **state)
{
	(void)state;
	size_t total = count_upto(LEN);
	struct table tb = {calloc(total, 64), calloc(total, 128), calloc(total, sizeof(size_t)),
	                   calloc(total, 1), calloc(total, 1)};
	assert_true(tb.topic && tb.filt && tb.nf && tb.is_topic && tb.is_filter);
	uint8_t s[LEN];
	for (size_t k = 0; k < total; k++) {
		size_t n = nth(k, s), len;
		struct tern_bytes b = {s, (uint32_t)n};
		tb.is_topic[k] = n > 0 && tern_topic_name_check(s, n) == TERN_OK;
		/* No "$share/" in five bytes: every valid filter is a plain one. */
		tb.is_filter[k] = n > 0 && tern_topic_filter_check(s, n) == TERN_OK;
		if (tb.is_topic[k])
			assert_int_equal(subject_of_topic("tern", b, tb.topic[k], 63, &len),
			                 TERN_OK);
		if (tb.is_filter[k])
			assert_int_equal(subject_of_filter("tern", b, tb.filt[k][0], tb.filt[k][1],
			                                   63, &tb.nf[k]),
			                 TERN_OK);
	}
	size_t pairs = 0, matched = 0;
	uint8_t f[LEN], t[LEN];
	for (size_t i = 0; i < total; i++) {
		if (!tb.is_filter[i])
			continue;
		size_t fl = nth(i, f);
		for (size_t j = 0; j < total; j++) {
			if (!tb.is_topic[j])
				continue;
			size_t tl = nth(j, t);
			bool want = tern_topic_matches(f, fl, t, tl);
			bool got = nats_match(tb.filt[i][0], tb.topic[j]) ||
			           (tb.nf[i] == 2 && nats_match(tb.filt[i][1], tb.topic[j]));
			if (want != got)
				fail_msg("filter %.*s topic %.*s: mqtt %d nats %d", (int)fl, f,
				         (int)tl, t, want, got);
			pairs++;
			matched += want;
		}
	}
	/* Enough pairs, and enough matches among them, to mean something. */
	assert_true(pairs > 10000000);
	assert_true(matched > 20000);
	free(tb.topic);
	free(tb.filt);
	free(tb.nf);
	free(tb.is_topic);
	free(tb.is_filter);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	        cmocka_unit_test(test_topic_levels_become_tokens),
	        cmocka_unit_test(test_dollar_topics_go_under_d_MQTT_4_7_2_1),
	        cmocka_unit_test(test_bytes_with_a_meaning_are_escaped),
	        cmocka_unit_test(test_subjects_hold_no_whitespace_or_empty_token),
	        cmocka_unit_test(test_filter_wildcards_MQTT_4_7_1),
	        cmocka_unit_test(test_hash_never_matches_dollar_topics_MQTT_4_7_2_1),
	        cmocka_unit_test(test_length_limit),
	        cmocka_unit_test(test_cluster_name_rules),
	        cmocka_unit_test(test_to_topic_refuses_what_of_topic_never_makes),
	        cmocka_unit_test(test_queue_names),
	        cmocka_unit_test(test_every_short_topic_round_trips_and_subjects_are_distinct),
	        cmocka_unit_test(test_nats_matching_of_the_subjects_is_mqtt_matching_MQTT_4_7),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
