/*
 * test_cluster_clients.c - unit tests of the clients bucket's keys
 * (src/cluster/clients.c: clients_key(), clients_id()).
 *
 * A key stands for one client id in the KV bucket "<cluster>_clients", so
 * the mapping must be injective and use only what NATS allows in a key
 * ([-/_=.A-Za-z0-9], not starting with '.'): known base64url vectors, then
 * every id of up to 3 bytes over an alphabet with the bytes that matter
 * (NUL, '.', '*', '>', space, 0xff, UTF-8 lead bytes) round-trips and keeps
 * to the allowed characters, the length limits, and every key clients_key()
 * cannot have made is refused.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "cluster/cluster_int.h"
#include "tern/codec.h"
#include "tern/error.h"

static struct tern_bytes B(const char *s, size_t len) {
	return (struct tern_bytes){(const uint8_t *)s, (uint32_t)len};
}

static void
check_vector(const char *id, size_t len, const char *want)
{
	char key[CLIENT_KEY_LEN(CLIENT_ID_KEY_MAX) + 1];
	size_t klen = 0;
	assert_int_equal(clients_key(B(id, len), key, &klen), TERN_OK);
	assert_string_equal(key, want);
	assert_int_equal(klen, strlen(want));
	assert_int_equal(klen, CLIENT_KEY_LEN(len));
	uint8_t out[CLIENT_ID_KEY_MAX];
	size_t olen = 0;
	assert_int_equal(clients_id(key, klen, out, &olen), TERN_OK);
	assert_int_equal(olen, len);
	assert_memory_equal(out, id, len);
}

static void test_base64url_vectors(void **state)
{
	(void)state;
	check_vector("a", 1, "YQ");
	check_vector("ab", 2, "YWI");
	check_vector("abc", 3, "YWJj");
	check_vector("abcd", 4, "YWJjZA");
	check_vector("\xff\xfe", 2, "__4");
	check_vector("\xfb\xef", 2, "--8");
	check_vector("\0", 1, "AA");
	check_vector("sensor/1.temp", 13, "c2Vuc29yLzEudGVtcA");
}

static bool key_char_ok(char ch)
{
	return (ch >= 'a' && ch <= 'z') || (ch >= 'A' && ch <= 'Z') || (ch >= '0' && ch <= '9') ||
	       ch == '-' || ch == '_' || ch == '/' || ch == '=' || ch == '.';
}

static void test_every_short_id_round_trips_in_key_characters(void **state)
{
	(void)state;
	static const uint8_t alpha[] = {0x00, 0x01, ' ',  '.',  '*',  '>',  '/',
	                                '+',  '#',  '$',  '%',  'a',  'Z',  '0',
	                                '~',  0x7f, 0x80, 0xbf, 0xc3, 0xe2, 0xff};
	const size_t n = sizeof(alpha);
	size_t total = 0;
	for (size_t len = 1; len <= 3; len++) {
		size_t count = 1;
		for (size_t i = 0; i < len; i++)
			count *= n;
		for (size_t v = 0; v < count; v++) {
			uint8_t id[3];
			size_t x = v;
			for (size_t i = 0; i < len; i++) {
				id[i] = alpha[x % n];
				x /= n;
			}
			char key[8];
			size_t klen = 0;
			assert_int_equal(
			        clients_key((struct tern_bytes){id, (uint32_t)len}, key, &klen),
			        TERN_OK);
			assert_int_equal(klen, CLIENT_KEY_LEN(len));
			assert_true(key[0] != '.');
			for (size_t i = 0; i < klen; i++)
				assert_true(key_char_ok(key[i]));
			uint8_t out[CLIENT_ID_KEY_MAX];
			size_t olen = 0;
			/* Decoding gives the id back: no two ids share a key. */
			assert_int_equal(clients_id(key, klen, out, &olen), TERN_OK);
			assert_int_equal(olen, len);
			assert_memory_equal(out, id, len);
			total++;
		}
	}
	assert_int_equal(total, 21 + 21 * 21 + 21 * 21 * 21);
}

static void test_length_limits(void **state)
{
	(void)state;
	static char id[CLIENT_ID_KEY_MAX + 1];
	memset(id, 'x', sizeof(id));
	char *key = malloc(CLIENT_KEY_LEN(CLIENT_ID_KEY_MAX + 1) + 1);
	assert_non_null(key);
	size_t klen = 0;
	assert_int_equal(clients_key(B(id, 0), key, &klen), TERN_E_INVALID);
	assert_int_equal(clients_key(B(id, CLIENT_ID_KEY_MAX), key, &klen), TERN_OK);
	assert_int_equal(klen, 2731);
	uint8_t out[CLIENT_ID_KEY_MAX];
	size_t olen = 0;
	assert_int_equal(clients_id(key, klen, out, &olen), TERN_OK);
	assert_int_equal(olen, CLIENT_ID_KEY_MAX);
	assert_int_equal(clients_key(B(id, CLIENT_ID_KEY_MAX + 1), key, &klen), TERN_E_TOO_LARGE);
	/* A key longer than the longest id's is refused without decoding. */
	memset(key, 'A', 2733);
	assert_int_equal(clients_id(key, 2732, out, &olen), TERN_E_INVALID);
	free(key);
}

static void test_keys_not_made_by_clients_key_are_refused(void **state)
{
	(void)state;
	uint8_t out[CLIENT_ID_KEY_MAX];
	size_t olen = 0;
	static const char *bad[] = {
	        "",      /* no id is empty */
	        "Y",     /* a lone character encodes no byte */
	        "YWJjZ", /* 4k + 1 characters */
	        "YR",    /* 'a' with a trailing bit set: another spelling of "YQ" */
	        "YWJ",   /* "ab" spelt with a trailing bit set */
	        "YQ==",  /* padding is never written */
	        "Y.Q",   /* '.' is a key character but not base64url */
	        "YQ/",   /* '/' neither */
	        "Y+Q",   /* standard base64, not base64url */
	        "Y Q",
	};
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
		assert_int_equal(clients_id(bad[i], strlen(bad[i]), out, &olen), TERN_E_INVALID);
	/* The good spellings next to them decode. */
	assert_int_equal(clients_id("YQ", 2, out, &olen), TERN_OK);
	assert_int_equal(olen, 1);
	assert_int_equal(out[0], 'a');
	assert_int_equal(clients_id("YWI", 3, out, &olen), TERN_OK);
	assert_int_equal(olen, 2);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	        cmocka_unit_test(test_base64url_vectors),
	        cmocka_unit_test(test_every_short_id_round_trips_in_key_characters),
	        cmocka_unit_test(test_length_limits),
	        cmocka_unit_test(test_keys_not_made_by_clients_key_are_refused),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
