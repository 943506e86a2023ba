/*
 * test_cluster_durable.c - unit tests of the names of durable queues
 * (durable_names(), src/cluster/durable.c).
 *
 * Every node finds a persistent session's durable consumers by name, so
 * the name must be a function of (cluster, client id, filter) only, the
 * same in every version (a pinned value: changing the hash would orphan
 * the queues of every session when a cluster is upgraded), different for
 * different sessions and filters, and a name NATS accepts for a consumer
 * (no '.', '*', '>', white space or path separators, bounded length),
 * whatever bytes the client id and the filter hold. The rest of durable.c
 * talks to JetStream and is checked against a real nats-server.
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

/* The names of ("tern", "client-1", "a/#"): they must never change once
 * released (a node of another version would orphan every queue). The
 * client's part comes first (durable_client_prefix()). */
#define PINNED_0 "tern_d_c06174a6791bbd3b_fe2b38dd900563c9_0"
#define PINNED_1 "tern_d_c06174a6791bbd3b_fe2b38dd900563c9_1"

static struct tern_bytes B(const char *s) {
	return (struct tern_bytes){(const uint8_t *)s, (uint32_t)strlen(s)};
}

static size_t
names_of(const char *cluster, struct tern_bytes id, const char *filter,
         char names[2][DURABLE_NAME_MAX])
{
	size_t n = 0;
	assert_int_equal(durable_names(cluster, id, B(filter), names, &n), TERN_OK);
	return n;
}

/* A name NATS takes for a consumer: letters, digits, '_' and '-'. */
static void assert_nats_name(const char *name)
{
	assert_true(strlen(name) > 0 && strlen(name) < DURABLE_NAME_MAX);
	for (const char *p = name; *p; p++)
		assert_true((*p >= 'a' && *p <= 'z') || (*p >= 'A' && *p <= 'Z') ||
		            (*p >= '0' && *p <= '9') || *p == '_' || *p == '-');
}

static void test_one_name_per_subject(void **state)
{
	(void)state;
	char n1[2][DURABLE_NAME_MAX], n2[2][DURABLE_NAME_MAX];
	assert_int_equal(names_of("tern", B("c1"), "a/b", n1), 1);
	assert_int_equal(names_of("tern", B("c1"), "a/+", n1), 1);
	assert_int_equal(names_of("tern", B("c1"), "#", n1), 1);
	/* "a/#" matches "a" too [MQTT-4.7.1-2]: two subjects, two consumers. */
	assert_int_equal(names_of("tern", B("c1"), "a/#", n2), 2);
	assert_string_not_equal(n2[0], n2[1]);
	assert_nats_name(n2[0]);
	assert_nats_name(n2[1]);
}

static void test_names_are_pinned(void **state)
{
	(void)state;
	char n[2][DURABLE_NAME_MAX];
	assert_int_equal(names_of("tern", B("client-1"), "a/#", n), 2);
	assert_string_equal(n[0], PINNED_0);
	assert_string_equal(n[1], PINNED_1);
	/* The same inputs give the same names every time. */
	char again[2][DURABLE_NAME_MAX];
	assert_int_equal(names_of("tern", B("client-1"), "a/#", again), 2);
	assert_string_equal(again[0], n[0]);
	assert_string_equal(again[1], n[1]);
}

static void test_names_differ(void **state)
{
	(void)state;
	char base[2][DURABLE_NAME_MAX], other[2][DURABLE_NAME_MAX];
	names_of("tern", B("ab"), "c", base);
	names_of("tern", B("abc"), "c", other);
	assert_string_not_equal(base[0], other[0]);
	names_of("tern", B("ab"), "d", other);
	assert_string_not_equal(base[0], other[0]);
	names_of("tern2", B("ab"), "c", other);
	assert_string_not_equal(base[0], other[0]);
	/* The client id is length-prefixed: ("ab", "c/x") and ("abc", "/x")
	 * are different sessions' queues though their bytes run together. */
	names_of("tern", B("ab"), "c/x", base);
	names_of("tern", B("abc"), "/x", other);
	assert_string_not_equal(base[0], other[0]);
	/* An empty client id (a v5 server-assigned one never is, but the
	 * name must still be one). */
	names_of("tern", B(""), "x", other);
	assert_nats_name(other[0]);
}

static void test_any_bytes_make_a_valid_name(void **state)
{
	(void)state;
	char n[2][DURABLE_NAME_MAX];
	/* Bytes NATS gives a meaning, white space, UTF-8, a NUL. */
	const uint8_t id[] = {'.', '*', '>', ' ', '\t', '/', '\\', 0, 0xc3, 0xa9};
	struct tern_bytes bid = {id, sizeof(id)};
	assert_int_equal(names_of("my-cluster_1", bid, "a.b/* x/>/#", n), 2);
	assert_nats_name(n[0]);
	assert_nats_name(n[1]);
	assert_true(strncmp(n[0], "my-cluster_1_d_", 15) == 0);
	/* The longest cluster name still fits. */
	char cluster[SUBJECT_CLUSTER_MAX + 1];
	memset(cluster, 'c', SUBJECT_CLUSTER_MAX);
	cluster[SUBJECT_CLUSTER_MAX] = 0;
	assert_int_equal(names_of(cluster, bid, "#", n), 1);
	assert_nats_name(n[0]);
	/* A long client id and filter do not make a long name. */
	static char longf[3000];
	memset(longf, 'f', sizeof(longf) - 1);
	assert_int_equal(names_of("tern", B(longf), longf, n), 1);
	assert_nats_name(n[0]);
}

static void test_refused(void **state)
{
	(void)state;
	char n[2][DURABLE_NAME_MAX];
	size_t k = 9;
	/* A filter whose subject is over NATS' control line (the caller
	 * validated its syntax). */
	static char longf[SUBJECT_MAX + 100];
	memset(longf, 'f', sizeof(longf) - 1);
	assert_int_equal(durable_names("tern", B("c"), B(longf), n, &k), TERN_E_INVALID);
	assert_int_equal(k, 0);
	assert_int_equal(durable_names("bad.name", B("c"), B("a"), n, &k), TERN_E_INVALID);
	static uint8_t big[70000];
	struct tern_bytes id = {big, sizeof(big)};
	assert_int_equal(durable_names("tern", id, B("a"), n, &k), TERN_E_INVALID);
}

/* Every queue of a client id starts with its prefix, and another client
 * id's queues do not: a clean start deletes by prefix. */
static void test_client_prefix_covers_its_queues_only(void **state)
{
	(void)state;
	char p1[DURABLE_NAME_MAX], p2[DURABLE_NAME_MAX], n[2][DURABLE_NAME_MAX];
	size_t k;
	assert_int_equal(durable_client_prefix("tern", B("client-1"), p1), TERN_OK);
	assert_int_equal(durable_client_prefix("tern", B("client-2"), p2), TERN_OK);
	assert_string_not_equal(p1, p2);
	const char *filters[] = {"a/#", "b", "+/x/#", "$SYS/#"};
	for (size_t i = 0; i < 4; i++) {
		assert_int_equal(durable_names("tern", B("client-1"), B(filters[i]), n, &k),
		                 TERN_OK);
		for (size_t j = 0; j < k; j++) {
			assert_true(strncmp(n[j], p1, strlen(p1)) == 0);
			assert_false(strncmp(n[j], p2, strlen(p2)) == 0);
		}
	}
	/* "client-1" and "client-1x" must not share a prefix by accident. */
	assert_int_equal(durable_client_prefix("tern", B("client-1x"), p2), TERN_OK);
	assert_false(strncmp(p1, p2, strlen(p1)) == 0);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	        cmocka_unit_test(test_client_prefix_covers_its_queues_only),
	        cmocka_unit_test(test_one_name_per_subject),
	        cmocka_unit_test(test_names_are_pinned),
	        cmocka_unit_test(test_names_differ),
	        cmocka_unit_test(test_any_bytes_make_a_valid_name),
	        cmocka_unit_test(test_refused),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
