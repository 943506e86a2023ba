/*
 * test_http_json.c - unit tests of the admin API's JSON writer
 * (src/http/json.h): commas and nesting, escaping of whatever bytes a
 * client chose for its id or topic (RFC 8259 section 7), invalid UTF-8 made
 * U+FFFD, numbers, and misuse reported by json_end().
 */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <string.h>
#include <cmocka.h>

#include "http/json.h"

static char *text(struct buf *b)
{
	assert_int_equal(buf_append(b, "", 1, 0), TERN_OK);
	return (char *)b->data + b->off;
}

/* Escapes s[0..len) as a whole JSON string value and compares. */
static void escaped_as(const char *s, size_t len, const char *want)
{
	struct buf b = {0};
	struct json j;
	json_init(&j, &b);
	json_str(&j, NULL, (const uint8_t *)s, len);
	assert_int_equal(json_end(&j), TERN_OK);
	assert_string_equal(text(&b), want);
	buf_free(&b);
}

static void test_nesting_and_commas(void **state)
{
	(void)state;
	struct buf b = {0};
	struct json j;
	json_init(&j, &b);
	json_obj(&j, NULL);
	json_cstr(&j, "a", "x");
	json_u64(&j, "n", 18446744073709551615ull);
	json_arr(&j, "list");
	json_u64(&j, NULL, 1);
	json_obj(&j, NULL);
	json_obj_end(&j);
	json_arr(&j, NULL);
	json_arr_end(&j);
	json_bool(&j, NULL, false);
	json_arr_end(&j);
	json_null(&j, "nothing");
	json_cstr(&j, "none", NULL);
	json_obj_end(&j);
	assert_int_equal(json_end(&j), TERN_OK);
	assert_string_equal(text(&b), "{\"a\":\"x\",\"n\":18446744073709551615,\"list\":[1,{},[],"
	                              "false],\"nothing\":null,\"none\":null}");
	buf_free(&b);
}

static void test_escapes_quotes_backslashes_and_controls(void **state)
{
	(void)state;
	escaped_as("a\"b\\c", 5, "\"a\\\"b\\\\c\"");
	escaped_as("\n\r\t\b\f", 5, "\"\\n\\r\\t\\b\\f\"");
	escaped_as("\x01\x1f\x7f", 3, "\"\\u0001\\u001f\\u007f\"");
	escaped_as("nul\0in", 6, "\"nul\\u0000in\"");
	escaped_as("/", 1, "\"/\"");
	escaped_as("", 0, "\"\"");
}

static void test_utf8_kept_and_invalid_bytes_replaced(void **state)
{
	(void)state;
	/* é, €, 𝄞: well-formed, kept as they are. */
	escaped_as("\xc3\xa9\xe2\x82\xac\xf0\x9d\x84\x9e", 9,
	           "\"\xc3\xa9\xe2\x82\xac\xf0\x9d\x84\x9e\"");
	/* A lone continuation byte, a truncated sequence, an overlong '/', a
	 * surrogate, a code point over U+10FFFF, 0xFF: one U+FFFD per byte
	 * that starts no well-formed sequence. */
	escaped_as("\x80", 1, "\"\\ufffd\"");
	escaped_as("a\xe2\x82", 3, "\"a\\ufffd\\ufffd\"");
	escaped_as("\xc0\xaf", 2, "\"\\ufffd\\ufffd\"");
	escaped_as("\xed\xa0\x80", 3, "\"\\ufffd\\ufffd\\ufffd\"");
	escaped_as("\xf4\x90\x80\x80", 4, "\"\\ufffd\\ufffd\\ufffd\\ufffd\"");
	escaped_as("\xff"
	           "ok",
	           3, "\"\\ufffdok\"");
}

static void test_keys_are_escaped_too(void **state)
{
	(void)state;
	struct buf b = {0};
	struct json j;
	json_init(&j, &b);
	json_obj(&j, NULL);
	json_u64(&j, "k\"", 1);
	json_obj_end(&j);
	assert_int_equal(json_end(&j), TERN_OK);
	assert_string_equal(text(&b), "{\"k\\\"\":1}");
	buf_free(&b);
}

/* A value rendered by another writer (a worker's, in the admin API) goes
 * in as it is, with the comma it needs. */
static void test_raw_values_are_copied(void **state)
{
	(void)state;
	struct buf b = {0};
	struct json j;
	json_init(&j, &b);
	json_arr(&j, NULL);
	json_raw(&j, NULL, (const uint8_t *)"{\"a\":1}", 7);
	json_raw(&j, NULL, (const uint8_t *)"[]", 2);
	json_arr_end(&j);
	assert_int_equal(json_end(&j), TERN_OK);
	assert_string_equal(text(&b), "[{\"a\":1},[]]");
	buf_free(&b);
}

static void test_numbers(void **state)
{
	(void)state;
	struct buf b = {0};
	struct json j;
	json_init(&j, &b);
	json_arr(&j, NULL);
	json_num(&j, NULL, 3.0);
	json_num(&j, NULL, 0.25);
	json_num(&j, NULL, -2.5e-7);
	json_num(&j, NULL, 1.0 / 0.0);
	json_num(&j, NULL, 0.0 / 0.0);
	json_arr_end(&j);
	assert_int_equal(json_end(&j), TERN_OK);
	assert_string_equal(text(&b), "[3,0.25,-2.5e-07,null,null]");
	buf_free(&b);
}

static void test_misuse_is_reported(void **state)
{
	(void)state;
	struct buf b = {0};
	struct json j;
	/* Unclosed. */
	json_init(&j, &b);
	json_obj(&j, NULL);
	assert_int_equal(json_end(&j), TERN_E_INVALID);
	/* A value without a key in an object. */
	json_init(&j, &b);
	json_obj(&j, NULL);
	json_u64(&j, NULL, 1);
	json_obj_end(&j);
	assert_int_equal(json_end(&j), TERN_E_INVALID);
	/* A close of the wrong kind. */
	json_init(&j, &b);
	json_arr(&j, NULL);
	json_obj_end(&j);
	assert_int_equal(json_end(&j), TERN_E_INVALID);
	/* Too deep: refused, not overflowing the level bits. */
	json_init(&j, &b);
	for (int i = 0; i < 40; i++)
		json_arr(&j, NULL);
	for (int i = 0; i < 40; i++)
		json_arr_end(&j);
	assert_int_equal(json_end(&j), TERN_E_INVALID);
	buf_free(&b);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	        cmocka_unit_test(test_nesting_and_commas),
	        cmocka_unit_test(test_escapes_quotes_backslashes_and_controls),
	        cmocka_unit_test(test_utf8_kept_and_invalid_bytes_replaced),
	        cmocka_unit_test(test_keys_are_escaped_too),
	        cmocka_unit_test(test_raw_values_are_copied),
	        cmocka_unit_test(test_numbers),
	        cmocka_unit_test(test_misuse_is_reported),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
