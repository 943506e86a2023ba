/*
 * test_alias_in.c - unit tests of the inbound topic alias table
 * (src/util/alias_in.c), the one the broker and libtern both resolve the
 * Topic Alias of a received PUBLISH with (MQTT 5.0 section 3.3.2.3.4).
 *
 * Every edge of the rules: alias 0 [MQTT-3.3.2-8], the maximum and one
 * above it [MQTT-3.3.2-9] [MQTT-3.3.2-10] [MQTT-3.3.2-12], a maximum of 0,
 * an alias used before it is set, set and replaced, an empty topic with a
 * set alias, reset at the end of a connection [MQTT-3.3.2-7]. The storage
 * claims (a topic re-set to the same or a shorter length, and the aliases
 * of the next connection, reuse the slot's memory) are checked by the
 * address the resolved topic points to, which only changes when the slot
 * was allocated again.
 */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <stdio.h>
#include <string.h>

#include "util/alias_in.h"

static struct tern_bytes B(const char *s) {
	return (struct tern_bytes){(const uint8_t *)s, (uint32_t)strlen(s)};
}

static const struct tern_bytes EMPTY = {NULL, 0};

/* Resolves alias with topic, expecting TERN_OK and the topic want. Returns
 * where the resolved topic is. */
static const uint8_t *ok(struct alias_in **t, uint16_t max, uint16_t alias, struct tern_bytes topic,
                         const char *want)
{
	struct tern_bytes out = {NULL, 0};
	assert_int_equal(alias_in_resolve(t, max, alias, topic, &out), TERN_OK);
	assert_int_equal(out.len, strlen(want));
	assert_memory_equal(out.data, want, out.len);
	return out.data;
}

static enum tern_err resolve(struct alias_in **t, uint16_t max, uint16_t alias,
                             struct tern_bytes topic)
{
	struct tern_bytes out = {(const uint8_t *)"untouched", 9};
	enum tern_err err = alias_in_resolve(t, max, alias, topic, &out);
	if (err != TERN_OK)
		assert_int_equal(out.len, 9);
	return err;
}

/* [MQTT-3.3.2-8]: 0 is never an alias, set or used, whatever the maximum. */
static void test_alias_zero_is_invalid(void **state)
{
	(void)state;
	struct alias_in *t = NULL;
	assert_int_equal(resolve(&t, 10, 0, B("a/b")), TERN_E_INVALID);
	assert_int_equal(resolve(&t, 10, 0, EMPTY), TERN_E_INVALID);
	assert_int_equal(resolve(&t, 65535, 0, B("a/b")), TERN_E_INVALID);
	assert_null(t); /* nothing allocated for a refused alias */
}

/* [MQTT-3.3.2-10] [MQTT-3.3.2-12]: every alias from 1 to the maximum is
 * accepted; [MQTT-3.3.2-9] [MQTT-3.3.2-11]: the maximum + 1 is not. */
static void test_alias_up_to_max(void **state)
{
	(void)state;
	struct alias_in *t = NULL;
	char topic[16];
	for (uint16_t a = 1; a <= 10; a++) {
		snprintf(topic, sizeof(topic), "t/%u", a);
		ok(&t, 10, a, B(topic), topic);
	}
	for (uint16_t a = 1; a <= 10; a++) {
		snprintf(topic, sizeof(topic), "t/%u", a);
		ok(&t, 10, a, EMPTY, topic);
	}
	assert_int_equal(resolve(&t, 10, 11, B("t/11")), TERN_E_INVALID);
	assert_int_equal(resolve(&t, 10, 11, EMPTY), TERN_E_INVALID);
	assert_int_equal(resolve(&t, 10, 65535, EMPTY), TERN_E_INVALID);
	alias_in_free(&t);
	assert_null(t);
}

/* The highest alias of the largest maximum, with nothing below it set. */
static void test_alias_max_65535(void **state)
{
	(void)state;
	struct alias_in *t = NULL;
	ok(&t, 65535, 65535, B("top"), "top");
	ok(&t, 65535, 65535, EMPTY, "top");
	assert_int_equal(resolve(&t, 65535, 65534, EMPTY), TERN_E_NOT_FOUND);
	ok(&t, 65535, 1, B("low"), "low");
	ok(&t, 65535, 65535, EMPTY, "top");
	alias_in_free(&t);
}

/* A receiver that announced no maximum (0) accepts no alias at all. */
static void test_max_zero_accepts_none(void **state)
{
	(void)state;
	struct alias_in *t = NULL;
	assert_int_equal(resolve(&t, 0, 1, B("a")), TERN_E_INVALID);
	assert_int_equal(resolve(&t, 0, 1, EMPTY), TERN_E_INVALID);
	assert_null(t);
}

/* An empty topic with an alias that maps to nothing: a Protocol Error,
 * on an empty table and on one where other aliases are set. */
static void test_unset_alias_not_found(void **state)
{
	(void)state;
	struct alias_in *t = NULL;
	assert_int_equal(resolve(&t, 10, 1, EMPTY), TERN_E_NOT_FOUND);
	assert_null(t);
	ok(&t, 10, 2, B("two"), "two");
	assert_int_equal(resolve(&t, 10, 1, EMPTY), TERN_E_NOT_FOUND);
	assert_int_equal(resolve(&t, 10, 3, EMPTY), TERN_E_NOT_FOUND);
	assert_int_equal(resolve(&t, 10, 10, EMPTY), TERN_E_NOT_FOUND);
	ok(&t, 10, 2, EMPTY, "two");
	alias_in_free(&t);
}

/* A topic with an alias sets the mapping and the packet uses its own topic
 * (not a copy); an empty topic then uses the mapping's copy, which does not
 * depend on the packet's bytes. */
static void test_set_then_use(void **state)
{
	(void)state;
	struct alias_in *t = NULL;
	char packet[] = "sensors/a";
	struct tern_bytes out;
	assert_int_equal(alias_in_resolve(&t, 10, 1, B(packet), &out), TERN_OK);
	assert_ptr_equal(out.data, packet);
	memset(packet, 'x', strlen(packet)); /* the next packet reuses the buffer */
	const uint8_t *copy = ok(&t, 10, 1, EMPTY, "sensors/a");
	assert_ptr_not_equal(copy, packet);
	alias_in_free(&t);
}

/* Re-setting an alias replaces the mapping: to a longer topic (the slot
 * grows), a shorter one and one of the same length (the slot's memory is
 * reused: the resolved topic stays where it was). */
static void test_reset_longer_shorter_same(void **state)
{
	(void)state;
	struct alias_in *t = NULL;
	ok(&t, 10, 1, B("a/b"), "a/b");
	ok(&t, 10, 1, EMPTY, "a/b");
	ok(&t, 10, 1, B("a/much/longer/topic"), "a/much/longer/topic");
	const uint8_t *longer = ok(&t, 10, 1, EMPTY, "a/much/longer/topic");
	ok(&t, 10, 1, B("short"), "short");
	assert_ptr_equal(ok(&t, 10, 1, EMPTY, "short"), longer);
	ok(&t, 10, 1, B("a/much/longer/other"), "a/much/longer/other");
	assert_ptr_equal(ok(&t, 10, 1, EMPTY, "a/much/longer/other"), longer);
	ok(&t, 10, 1, B("x"), "x");
	assert_ptr_equal(ok(&t, 10, 1, EMPTY, "x"), longer);
	/* Other aliases are untouched by the re-sets. */
	ok(&t, 10, 2, B("two"), "two");
	ok(&t, 10, 1, B("one again"), "one again");
	ok(&t, 10, 2, EMPTY, "two");
	alias_in_free(&t);
}

/* A higher alias set after lower ones grows the table; the lower mappings
 * survive the growth. */
static void test_growth_keeps_mappings(void **state)
{
	(void)state;
	struct alias_in *t = NULL;
	ok(&t, 1000, 1, B("one"), "one");
	ok(&t, 1000, 9, B("nine"), "nine");
	ok(&t, 1000, 17, B("seventeen"), "seventeen");
	ok(&t, 1000, 1000, B("thousand"), "thousand");
	ok(&t, 1000, 1, EMPTY, "one");
	ok(&t, 1000, 9, EMPTY, "nine");
	ok(&t, 1000, 17, EMPTY, "seventeen");
	ok(&t, 1000, 1000, EMPTY, "thousand");
	assert_int_equal(resolve(&t, 1000, 500, EMPTY), TERN_E_NOT_FOUND);
	alias_in_free(&t);
}

/* A refused PUBLISH leaves the mappings as they were. */
static void test_error_leaves_table(void **state)
{
	(void)state;
	struct alias_in *t = NULL;
	ok(&t, 5, 3, B("three"), "three");
	assert_int_equal(resolve(&t, 5, 6, B("six")), TERN_E_INVALID);
	assert_int_equal(resolve(&t, 5, 0, B("zero")), TERN_E_INVALID);
	assert_int_equal(resolve(&t, 5, 4, EMPTY), TERN_E_NOT_FOUND);
	ok(&t, 5, 3, EMPTY, "three");
	assert_int_equal(resolve(&t, 5, 4, EMPTY), TERN_E_NOT_FOUND);
	alias_in_free(&t);
}

/* [MQTT-3.3.2-7]: after a reset (the connection ended) no alias maps to
 * anything; the next connection's aliases reuse the storage, and it may
 * announce another maximum. */
static void test_reset_forgets_all(void **state)
{
	(void)state;
	struct alias_in *t = NULL;
	alias_in_reset(t); /* an empty table */
	ok(&t, 10, 1, B("first/connection"), "first/connection");
	const uint8_t *slot = ok(&t, 10, 1, EMPTY, "first/connection");
	ok(&t, 10, 10, B("ten"), "ten");
	alias_in_reset(t);
	assert_non_null(t);
	assert_int_equal(resolve(&t, 10, 1, EMPTY), TERN_E_NOT_FOUND);
	assert_int_equal(resolve(&t, 10, 10, EMPTY), TERN_E_NOT_FOUND);
	ok(&t, 10, 1, B("second"), "second");
	assert_ptr_equal(ok(&t, 10, 1, EMPTY, "second"), slot);
	/* A smaller maximum on the next connection bounds the aliases even
	 * where the table has slots; a larger one grows it. */
	alias_in_reset(t);
	assert_int_equal(resolve(&t, 2, 10, B("ten")), TERN_E_INVALID);
	ok(&t, 20, 20, B("twenty"), "twenty");
	ok(&t, 20, 20, EMPTY, "twenty");
	alias_in_free(&t);
	assert_null(t);
	alias_in_free(&t); /* freeing an empty table is a no-op */
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	        cmocka_unit_test(test_alias_zero_is_invalid),
	        cmocka_unit_test(test_alias_up_to_max),
	        cmocka_unit_test(test_alias_max_65535),
	        cmocka_unit_test(test_max_zero_accepts_none),
	        cmocka_unit_test(test_unset_alias_not_found),
	        cmocka_unit_test(test_set_then_use),
	        cmocka_unit_test(test_reset_longer_shorter_same),
	        cmocka_unit_test(test_growth_keeps_mappings),
	        cmocka_unit_test(test_error_leaves_table),
	        cmocka_unit_test(test_reset_forgets_all),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
