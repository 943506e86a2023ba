/*
 * test_archive_record.c - unit tests of the archive's pure helpers
 * (src/archive/record.c) and of a sink written and read back without a
 * broker (src/archive/sink_sqlite.c on a temporary file).
 *
 * User properties go to the databases as JSON pairs: names may repeat and
 * keep their order [MQTT-3.3.2-18], and any valid MQTT string (quotes,
 * backslashes, control characters, characters beyond the BMP) must come
 * back as it was. The parser also takes what a person may write by hand
 * (other spacing, \u escapes, surrogate pairs) and refuses what is not
 * such an array, or a string that is not a valid MQTT string (U+0000,
 * a lone surrogate [MQTT-1.5.4-1] [MQTT-1.5.4-2]).
 */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "archive/record.h"
#include "archive/sink.h"
#include "tern/codec.h"
#include "util/buf.h"

static struct tern_bytes B(const char *s) {
	return (struct tern_bytes){(const uint8_t *)s, (uint32_t)strlen(s)};
}

/* Encodes pairs[0..2n) as a user property block into out. */
static void
encode(struct buf *out, const char *const *pairs, size_t n)
{
	uint8_t tmp[4096];
	size_t len = 0;
	for (size_t i = 0; i < n; i++)
		assert_int_equal(tern_user_prop_encode(tmp, sizeof(tmp), &len, B(pairs[2 * i]),
		                                       B(pairs[2 * i + 1])),
		                 TERN_OK);
	assert_int_equal(buf_append(out, tmp, len, 0), TERN_OK);
}

static char *json_of(struct buf *raw)
{
	struct buf j = {0};
	assert_int_equal(archive_user_json(&j, (struct tern_bytes){raw->data, (uint32_t)raw->len}),
	                 TERN_OK);
	char *s = calloc(1, j.len + 1);
	memcpy(s, j.data, j.len);
	buf_free(&j);
	return s;
}

static void test_key_is_boot_in_hex_and_sequence(void **state)
{
	(void)state;
	char k[ARCHIVE_KEY_MAX];
	archive_key_format(k, UINT64_C(0xfcb52f85aadbe822), 1);
	assert_string_equal(k, "fcb52f85aadbe822-1");
	archive_key_format(k, UINT64_MAX, UINT64_MAX);
	assert_string_equal(k, "ffffffffffffffff-18446744073709551615");
	archive_key_format(k, 0, 7);
	assert_string_equal(k, "0000000000000000-7");
}

static void test_user_properties_as_json_pairs_in_order(void **state)
{
	(void)state;
	const char *pairs[] = {"unit", "C", "unit", "K", "q\"b\\", "tab\there\x01", "", ""};
	struct buf raw = {0};
	encode(&raw, pairs, 4);
	char *s = json_of(&raw);
	assert_string_equal(s, "[[\"unit\",\"C\"],[\"unit\",\"K\"],[\"q\\\"b\\\\\","
	                       "\"tab\\u0009here\\u0001\"],[\"\",\"\"]]");
	struct buf back = {0};
	assert_int_equal(archive_user_parse(&back, s, strlen(s)), TERN_OK);
	assert_int_equal(back.len, raw.len);
	assert_memory_equal(back.data, raw.data, raw.len);
	free(s);
	buf_free(&raw);
	buf_free(&back);
}

static void test_no_user_properties_writes_nothing(void **state)
{
	(void)state;
	struct buf j = {0};
	assert_int_equal(archive_user_json(&j, (struct tern_bytes){NULL, 0}), TERN_OK);
	assert_int_equal(j.len, 0);
	struct buf back = {0};
	assert_int_equal(archive_user_parse(&back, " [ ] ", 5), TERN_OK);
	assert_int_equal(back.len, 0);
}

static void test_parser_takes_hand_written_json(void **state)
{
	(void)state;
	/* Spacing, \u escapes of BMP characters and a surrogate pair. */
	const char *s = " [ [ \"caf\\u00e9\" , \"\\ud83d\\ude00\\/\" ] ]\n";
	struct buf got = {0};
	assert_int_equal(archive_user_parse(&got, s, strlen(s)), TERN_OK);
	struct buf want = {0};
	const char *pairs[] = {"caf\xc3\xa9", "\xf0\x9f\x98\x80/"};
	encode(&want, pairs, 1);
	assert_int_equal(got.len, want.len);
	assert_memory_equal(got.data, want.data, want.len);
	buf_free(&got);
	buf_free(&want);
}

static void test_parser_refuses_what_is_no_list_of_string_pairs(void **state)
{
	(void)state;
	static const char *const bad[] = {
	        "",
	        "{}",
	        "[[\"a\"]]",
	        "[[\"a\",\"b\",\"c\"]]",
	        "[[\"a\",1]]",
	        "[[\"a\",\"b\"]",
	        "[[\"a\",\"b\"]] x",
	        "[[\"a\",\"b\"],]",
	        "[[\"\\u0000\",\"b\"]]", /* U+0000 is no MQTT string [MQTT-1.5.4-2] */
	        "[[\"\\ud800\",\"b\"]]", /* a lone surrogate [MQTT-1.5.4-1] */
	        "[[\"\\x\",\"b\"]]",
	        "[[\"a\nb\",\"c\"]]", /* a raw control character */
	};
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		struct buf out = {0};
		assert_int_equal(archive_user_parse(&out, bad[i], strlen(bad[i])),
		                 TERN_E_MALFORMED);
		assert_int_equal(out.len, 0);
		buf_free(&out);
	}
}

static void test_filter_prefix_is_the_literal_levels(void **state)
{
	(void)state;
	static const char *const cases[][2] = {
	        {"sensors/#", "sensors/"},
	        {"a/b/+/c", "a/b/"},
	        {"#", ""},
	        {"+/x", ""},
	        {"a/b", "a/b"},
	        {"a/+", "a/"},
	};
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		struct tern_bytes p = archive_filter_prefix(B(cases[i][0]));
		assert_int_equal(p.len, strlen(cases[i][1]));
		assert_memory_equal(p.data, cases[i][1], p.len);
	}
}

static enum tern_err collect(void *arg, const struct archive_record *r)
{
	int *n = arg;
	if (*n == 0) {
		assert_int_equal(r->payload.len, 3);
		assert_memory_equal(r->payload.data, "\0\1\2", 3);
		assert_true(r->has_correlation_data);
		assert_int_equal(r->correlation_data.len, 0);
		assert_true(r->has_username);
		assert_int_equal(r->username.len, 0);
		assert_false(r->has_content_type);
		assert_int_equal(strncmp(r->key, "0000000000000001-", 17), 0);
	}
	(*n)++;
	return TERN_OK;
}

static void test_sqlite_sink_writes_once_per_key_and_reads_back(void **state)
{
	(void)state;
	char dir[] = "/tmp/tern-archive-XXXXXX";
	assert_non_null(mkdtemp(dir));
	char url[160], path[128];
	snprintf(path, sizeof(path), "%s/a.db", dir);
	snprintf(url, sizeof(url), "sqlite:%s", path);
	char err[512];
	const struct archive_sink_ops *ops = archive_sink_find(url, err, sizeof(err));
	assert_ptr_equal(ops, &archive_sqlite_ops);
	struct archive_db *db = NULL;
	assert_int_equal(ops->open(&db, url, "t", true, err, sizeof(err)), TERN_OK);
	struct archive_record r[3] = {0};
	for (int i = 0; i < 3; i++) {
		archive_key_format(r[i].key, 1, (uint64_t)i + 1);
		r[i].received_at = 1000 + i;
		r[i].topic = B(i == 2 ? "other/x" : "s/x");
		r[i].payload = (struct tern_bytes){(const uint8_t *)"\0\1\2", 3};
		r[i].client_id = B("c");
		r[i].has_username = true;
		r[i].username = B("");
		r[i].has_correlation_data = true;
		r[i].correlation_data = B("");
	}
	assert_int_equal(ops->write(db, r, 3, err, sizeof(err)), TERN_OK);
	/* The same batch again (a retry after a lost answer): nothing new. */
	assert_int_equal(ops->write(db, r, 3, err, sizeof(err)), TERN_OK);
	int n = 0;
	struct archive_query q = {.since_ms = 0, .prefix = B("s/")};
	assert_int_equal(ops->read(db, &q, collect, &n, err, sizeof(err)), TERN_OK);
	assert_int_equal(n, 2);
	n = 0;
	q = (struct archive_query){.since_ms = 1001};
	assert_int_equal(ops->read(db, &q, collect, &n, err, sizeof(err)), TERN_OK);
	assert_int_equal(n, 2);
	ops->close(db);
	char cmd[256];
	snprintf(cmd, sizeof(cmd), "rm -rf %s", dir);
	assert_int_equal(system(cmd), 0);
}

/* Rows checked one by one: the payload, the user property and the key's
 * sequence of each row name the same i. */
static enum tern_err check_row(void *arg, const struct archive_record *r)
{
	bool *seen = arg;
	int i = atoi((const char *)r->payload.data + 4);
	assert_true(i >= 0 && i < 80);
	assert_false(seen[i]);
	seen[i] = true;
	char want[16];
	snprintf(want, sizeof(want), "row-%d", i);
	assert_int_equal(r->payload.len, strlen(want));
	assert_memory_equal(r->payload.data, want, r->payload.len);
	char key[ARCHIVE_KEY_MAX];
	archive_key_format(key, 7, (uint64_t)i);
	assert_string_equal(r->key, key);
	struct buf j = {0};
	assert_int_equal(archive_user_json(&j, r->user_raw), TERN_OK);
	char pj[48];
	snprintf(pj, sizeof(pj), "[[\"i\",\"%d\"]]", i);
	assert_int_equal(j.len, strlen(pj));
	assert_memory_equal(j.data, pj, j.len);
	buf_free(&j);
	return TERN_OK;
}

/* The sink writes a batch 32 rows per statement and the rest one by one:
 * batches across both, each row with properties of its own, and a retried
 * batch that overlaps the first, give every row once and as written. */
static void test_sqlite_sink_writes_long_batches_row_by_row_exactly(void **state)
{
	(void)state;
	char dir[] = "/tmp/tern-archive-XXXXXX";
	assert_non_null(mkdtemp(dir));
	char url[160];
	snprintf(url, sizeof(url), "sqlite:%s/b.db", dir);
	char err[512];
	struct archive_db *db = NULL;
	assert_int_equal(archive_sqlite_ops.open(&db, url, "t", true, err, sizeof(err)), TERN_OK);
	struct archive_record r[80] = {0};
	struct buf raw[80] = {{0}};
	char payload[80][16], num[80][8];
	for (int i = 0; i < 80; i++) {
		archive_key_format(r[i].key, 7, (uint64_t)i);
		snprintf(payload[i], sizeof(payload[i]), "row-%d", i);
		snprintf(num[i], sizeof(num[i]), "%d", i);
		const char *pairs[] = {"i", num[i]};
		encode(&raw[i], pairs, 1);
		r[i].received_at = 5000 + i;
		r[i].topic = B("s/long");
		r[i].payload = B(payload[i]);
		r[i].client_id = B("c");
		r[i].user_raw = (struct tern_bytes){raw[i].data, (uint32_t)raw[i].len};
	}
	assert_int_equal(archive_sqlite_ops.write(db, r, 70, err, sizeof(err)), TERN_OK);
	assert_int_equal(archive_sqlite_ops.write(db, r + 10, 70, err, sizeof(err)), TERN_OK);
	bool seen[80] = {false};
	struct archive_query q = {.since_ms = 0, .prefix = B("s/")};
	assert_int_equal(archive_sqlite_ops.read(db, &q, check_row, seen, err, sizeof(err)),
	                 TERN_OK);
	for (int i = 0; i < 80; i++)
		assert_true(seen[i]);
	archive_sqlite_ops.close(db);
	for (int i = 0; i < 80; i++)
		buf_free(&raw[i]);
	char cmd[256];
	snprintf(cmd, sizeof(cmd), "rm -rf %s", dir);
	assert_int_equal(system(cmd), 0);
}

/* The prepared filters decide as tern_topic_matches() does, on every
 * pair of a set of filters of each kind and of topics at their edges:
 * [MQTT-4.7.1-2] ("sport/#" matches "sport"), [MQTT-4.7.2-1] ($-topics
 * and a first-level wildcard), empty levels and leading '/'. */
static void test_prepared_filters_match_as_the_codec_does(void **state)
{
	(void)state;
	const char *filters[] = {"#",   "a/#",  "a/b/#", "/#",      "$SYS/#", "a",
	                         "a/b", "/",    "+",     "+/#",     "a/+",    "a/+/c",
	                         "+/b", "a//#", "$SYS",  "a/b/c/#", "//",     "a/"};
	const char *topics[] = {"a",    "a/",   "a/b",    "a/b/c", "ab",     "ab/c", "b/a",
	                        "/",    "/a",   "//",     "$SYS",  "$SYS/x", "$a/b", "a//",
	                        "a//x", "a/b/", "a/bc/d", "x",     "a/b/c/d"};
	int matched = 0, kinds[4] = {0};
	for (size_t i = 0; i < sizeof(filters) / sizeof(filters[0]); i++) {
		struct archive_filter af;
		archive_filter_init(&af, B(filters[i]));
		kinds[af.kind]++;
		for (size_t j = 0; j < sizeof(topics) / sizeof(topics[0]); j++) {
			bool want =
			        tern_topic_matches((const uint8_t *)filters[i], strlen(filters[i]),
			                           (const uint8_t *)topics[j], strlen(topics[j]));
			if (archive_filter_matches(&af, B(topics[j])) != want)
				fail_msg("filter '%s', topic '%s': expected %d", filters[i],
				         topics[j], want);
			matched += want;
		}
	}
	/* Every kind was exercised, and both answers were given. */
	for (int k = 0; k < 4; k++)
		assert_true(kinds[k] > 0);
	assert_true(matched > 20);
}

static void test_sink_urls_and_names(void **state)
{
	(void)state;
	char err[256];
	assert_null(archive_sink_find("mysql://x", err, sizeof(err)));
	assert_ptr_equal(archive_sink_find("postgresql://h/db", err, sizeof(err)), &archive_pg_ops);
	assert_ptr_equal(archive_sink_find("postgres://h/db", err, sizeof(err)), &archive_pg_ops);
	assert_int_equal(archive_pg_ops.check("postgresql://u:p@127.0.0.1:5432/db?sslmode=disable",
	                                      err, sizeof(err)),
	                 TERN_OK);
	assert_ptr_equal(archive_sink_find("mongodb://h/db", err, sizeof(err)), &archive_mongo_ops);
	assert_int_equal(archive_mongo_ops.check("mongodb://127.0.0.1:27017/iot?appname=ternd", err,
	                                         sizeof(err)),
	                 TERN_OK);
	/* A MongoDB URL must name its database. */
	assert_int_equal(archive_mongo_ops.check("mongodb://127.0.0.1:27017", err, sizeof(err)),
	                 TERN_E_CONFIG);
	/* libpq's own parser refuses what it cannot read, with no I/O. */
	assert_int_equal(archive_pg_ops.check("postgresql://h/db?nosuchoption=1", err, sizeof(err)),
	                 TERN_E_CONFIG);
	assert_null(archive_sink_find("no-scheme", err, sizeof(err)));
	assert_int_equal(archive_sqlite_ops.check("sqlite:", err, sizeof(err)), TERN_E_CONFIG);
	assert_int_equal(archive_sqlite_ops.check("sqlite:///var/x.db", err, sizeof(err)), TERN_OK);
	assert_true(archive_name_ok("history_2"));
	assert_false(archive_name_ok("2history"));
	assert_false(archive_name_ok("his-tory"));
	assert_false(archive_name_ok(""));
	char longname[80];
	memset(longname, 'a', 64);
	longname[64] = '\0';
	assert_false(archive_name_ok(longname));
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	        cmocka_unit_test(test_key_is_boot_in_hex_and_sequence),
	        cmocka_unit_test(test_user_properties_as_json_pairs_in_order),
	        cmocka_unit_test(test_no_user_properties_writes_nothing),
	        cmocka_unit_test(test_parser_takes_hand_written_json),
	        cmocka_unit_test(test_parser_refuses_what_is_no_list_of_string_pairs),
	        cmocka_unit_test(test_filter_prefix_is_the_literal_levels),
	        cmocka_unit_test(test_sqlite_sink_writes_once_per_key_and_reads_back),
	        cmocka_unit_test(test_sqlite_sink_writes_long_batches_row_by_row_exactly),
	        cmocka_unit_test(test_prepared_filters_match_as_the_codec_does),
	        cmocka_unit_test(test_sink_urls_and_names),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
