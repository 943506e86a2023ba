/*
 * test_cluster_pubrel.c - unit tests of the subjects of PUBREL entries
 * (pubrel_subject(), pubrel_subject_id(), src/cluster/pubrel.c).
 *
 * A session's entries are found by any node from the client id alone: one
 * subject per (client id, packet id), "<cluster>.pr.<clients_key(client
 * id)>.<packet id>", and "...<key>.*" matching exactly one client's. So the
 * subject must be NATS-valid for any client id, different for different
 * client ids and packet ids, within NATS' subject limit for the longest
 * client id that has a key, and its packet id must read back exactly (a
 * subject that is not one of ours reads as 0). The rest of pubrel.c talks
 * to JetStream and is checked against a real nats-server
 * (tests/interop/test_cluster_pubrel.py).
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include <cmocka.h>

#include "cluster/cluster_int.h"

static struct tern_bytes B(const char *s) {
	return (struct tern_bytes){(const uint8_t *)s, (uint32_t)strlen(s)};
}

/* Tokens NATS takes in a subject: no empty token, no space, no '*' or
 * '>' but as a whole token. */
static void
assert_nats_subject(const char *s)
{
	assert_true(strlen(s) > 0 && strlen(s) < PUBREL_SUBJECT_MAX);
	assert_true(strlen(s) <= SUBJECT_MAX);
	const char *tok = s;
	for (const char *p = s;; p++) {
		if (*p == '.' || *p == '\0') {
			assert_true(p > tok);
			if (p - tok > 1)
				for (const char *q = tok; q < p; q++)
					assert_true(*q != '*' && *q != '>');
			if (!*p)
				break;
			tok = p + 1;
			continue;
		}
		assert_true(*p > ' ' && *p < 0x7f);
	}
}

static void test_subject_of_an_entry(void **state)
{
	(void)state;
	char s[PUBREL_SUBJECT_MAX];
	/* "c1" is "YzE" in unpadded base64url (clients.c). */
	assert_int_equal(pubrel_subject("tern", B("c1"), 7, s), TERN_OK);
	assert_string_equal(s, "tern.pr.YzE.7");
	assert_int_equal(pubrel_subject_id(s), 7);
	assert_int_equal(pubrel_subject("tern", B("c1"), 65535, s), TERN_OK);
	assert_string_equal(s, "tern.pr.YzE.65535");
	assert_int_equal(pubrel_subject_id(s), 65535);
	/* The filter of one client's entries. */
	assert_int_equal(pubrel_subject("tern", B("c1"), -1, s), TERN_OK);
	assert_string_equal(s, "tern.pr.YzE.*");
	assert_int_equal(pubrel_subject_id(s), 0);
}

static void test_every_packet_id_reads_back(void **state)
{
	(void)state;
	char s[PUBREL_SUBJECT_MAX];
	for (int id = 1; id <= 65535; id++) {
		assert_int_equal(pubrel_subject("tern", B("some/client id.*>"), id, s), TERN_OK);
		assert_int_equal(pubrel_subject_id(s), id);
	}
	assert_nats_subject(s);
}

static void test_what_is_not_an_entry_reads_as_zero(void **state)
{
	(void)state;
	const char *bad[] = {"tern.pr.YzE.0",     "tern.pr.YzE.65536",  "tern.pr.YzE.007",
	                     "tern.pr.YzE.",      "tern.pr.YzE.1a",     "tern.pr.YzE.-1",
	                     "tern.pr.YzE.99999", "tern.pr.YzE.123456", "no-dot-at-all"};
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
		assert_int_equal(pubrel_subject_id(bad[i]), 0);
}

static void test_different_clients_have_different_subjects(void **state)
{
	(void)state;
	char a[PUBREL_SUBJECT_MAX], b[PUBREL_SUBJECT_MAX];
	/* Ids that differ in bytes a subject could not hold as they are, and
	 * one that is a prefix of the other (the filter "<key>.*" must not
	 * match another client's). */
	const char *ids[] = {"a.b", "a*b", "a>b", "a b", "a/b", "a", "ab", "a\x7f", "\xc3\xa9"};
	size_t n = sizeof(ids) / sizeof(ids[0]);
	for (size_t i = 0; i < n; i++) {
		assert_int_equal(pubrel_subject("c", B(ids[i]), 1, a), TERN_OK);
		assert_nats_subject(a);
		for (size_t j = i + 1; j < n; j++) {
			assert_int_equal(pubrel_subject("c", B(ids[j]), 1, b), TERN_OK);
			assert_string_not_equal(a, b);
		}
	}
	/* The same client, two packet ids. */
	assert_int_equal(pubrel_subject("c", B("x"), 1, a), TERN_OK);
	assert_int_equal(pubrel_subject("c", B("x"), 11, b), TERN_OK);
	assert_string_not_equal(a, b);
}

static void test_longest_client_id_fits(void **state)
{
	(void)state;
	static uint8_t id[CLIENT_ID_KEY_MAX + 1];
	memset(id, 0xff, sizeof(id));
	char cluster[SUBJECT_CLUSTER_MAX + 1];
	memset(cluster, 'k', SUBJECT_CLUSTER_MAX);
	cluster[SUBJECT_CLUSTER_MAX] = '\0';
	char s[PUBREL_SUBJECT_MAX];
	assert_int_equal(
	        pubrel_subject(cluster, (struct tern_bytes){id, CLIENT_ID_KEY_MAX}, 65535, s),
	        TERN_OK);
	assert_nats_subject(s);
	assert_int_equal(pubrel_subject_id(s), 65535);
	/* Longer ids have no key, hence no entry (the message then stays in
	 * its queue until PUBCOMP). */
	assert_int_equal(
	        pubrel_subject(cluster, (struct tern_bytes){id, CLIENT_ID_KEY_MAX + 1}, 1, s),
	        TERN_E_TOO_LARGE);
	assert_int_equal(pubrel_subject("c", (struct tern_bytes){id, 0}, 1, s), TERN_E_INVALID);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	        cmocka_unit_test(test_subject_of_an_entry),
	        cmocka_unit_test(test_every_packet_id_reads_back),
	        cmocka_unit_test(test_what_is_not_an_entry_reads_as_zero),
	        cmocka_unit_test(test_different_clients_have_different_subjects),
	        cmocka_unit_test(test_longest_client_id_fits),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
