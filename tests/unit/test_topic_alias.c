/*
 * test_topic_alias.c - unit tests of the outbound topic alias table
 * (src/broker/topic_alias.c): aliases 1..max [MQTT-3.3.2-8]
 * [MQTT-3.3.2-11], nothing recorded until the PUBLISH that sets a mapping
 * is sent, least recently used alias reassigned when the table is full.
 */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <stdio.h>
#include <string.h>

#include "broker/topic_alias.h"

#define T(s) ((struct tern_bytes){(const uint8_t *)(s), (uint32_t)strlen(s)})

/* Picks the alias for topic and, as conn_send_publish() does once the
 * PUBLISH is queued, records a new mapping. */
static uint16_t send(struct topic_alias **t, uint16_t max, const char *topic, bool *known)
{
	uint16_t a = topic_alias_pick(*t, max, T(topic), known);
	if (a && !*known)
		assert_int_equal(topic_alias_set(t, max, a, T(topic)), TERN_OK);
	return a;
}

static void test_no_aliases_when_max_is_0(void **state)
{
	(void)state;
	bool known = true;
	assert_int_equal(topic_alias_pick(NULL, 0, T("a"), &known), 0);
	assert_false(known);
}

static void test_first_use_sets_then_reuses(void **state)
{
	(void)state;
	struct topic_alias *t = NULL;
	bool known;
	assert_int_equal(send(&t, 3, "a", &known), 1);
	assert_false(known);
	assert_non_null(t); /* allocated on first use only */
	assert_int_equal(send(&t, 3, "b", &known), 2);
	assert_false(known);
	assert_int_equal(send(&t, 3, "a", &known), 1);
	assert_true(known);
	/* Same length, other bytes: another topic. */
	assert_int_equal(send(&t, 3, "c", &known), 3);
	assert_false(known);
	topic_alias_free(&t);
	assert_null(t);
}

static void test_pick_records_nothing(void **state)
{
	(void)state;
	struct topic_alias *t = NULL;
	bool known;
	/* A PUBLISH that was not sent (too large) leaves no mapping. */
	assert_int_equal(topic_alias_pick(t, 2, T("a"), &known), 1);
	assert_int_equal(topic_alias_pick(t, 2, T("a"), &known), 1);
	assert_false(known);
	assert_int_equal(send(&t, 2, "b", &known), 1);
	assert_int_equal(topic_alias_pick(t, 2, T("a"), &known), 2);
	assert_false(known);
	topic_alias_free(&t);
}

static void test_full_table_reassigns_least_recently_used(void **state)
{
	(void)state;
	struct topic_alias *t = NULL;
	bool known;
	assert_int_equal(send(&t, 2, "a", &known), 1);
	assert_int_equal(send(&t, 2, "b", &known), 2);
	assert_int_equal(send(&t, 2, "a", &known), 1); /* b is now the oldest */
	assert_int_equal(send(&t, 2, "c", &known), 2);
	assert_false(known);
	assert_int_equal(send(&t, 2, "c", &known), 2);
	assert_true(known);
	assert_int_equal(send(&t, 2, "b", &known), 1); /* a was the oldest */
	assert_false(known);
	assert_int_equal(send(&t, 2, "a", &known), 2);
	assert_false(known);
	topic_alias_free(&t);
}

static void test_set_refuses_aliases_pick_cannot_give(void **state)
{
	(void)state;
	struct topic_alias *t = NULL;
	assert_int_equal(topic_alias_set(&t, 2, 0, T("a")), TERN_E_INVALID);
	assert_int_equal(topic_alias_set(&t, 2, 3, T("a")), TERN_E_INVALID);
	assert_int_equal(topic_alias_set(&t, 2, 2, T("a")), TERN_E_INVALID); /* gap */
	topic_alias_free(&t);
}

static void test_grows_to_a_large_bound(void **state)
{
	(void)state;
	struct topic_alias *t = NULL;
	bool known;
	char name[16];
	for (int i = 0; i < 1000; i++) {
		snprintf(name, sizeof(name), "t/%d", i);
		assert_int_equal(send(&t, 1000, name, &known), i + 1);
	}
	assert_int_equal(send(&t, 1000, "t/500", &known), 501);
	assert_true(known);
	topic_alias_free(&t);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	        cmocka_unit_test(test_no_aliases_when_max_is_0),
	        cmocka_unit_test(test_first_use_sets_then_reuses),
	        cmocka_unit_test(test_pick_records_nothing),
	        cmocka_unit_test(test_full_table_reassigns_least_recently_used),
	        cmocka_unit_test(test_set_refuses_aliases_pick_cannot_give),
	        cmocka_unit_test(test_grows_to_a_large_bound),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
