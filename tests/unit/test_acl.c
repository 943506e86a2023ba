/*
 * test_acl.c - unit tests of mosquitto's acl_file (src/auth/acl.c).
 *
 * The expectations marked "mosquitto 2.0.11" were observed on the real
 * broker (Debian's /usr/sbin/mosquitto) with the file of
 * test_semantics_observed_on_mosquitto: a writer allowed `topic write #`
 * published one message to each topic and paho-mqtt subscribers on "#"
 * recorded what was delivered. SUBSCRIBE was granted in every case, also
 * for filters no rule grants and for a denied one.
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

#include "auth/acl.h"

static const char *write_tmp(const char *content, size_t len)
{
	static char path[64];
	snprintf(path, sizeof(path), "/tmp/tern_test_acl_XXXXXX");
	int fd = mkstemp(path);
	assert_true(fd >= 0);
	assert_int_equal(write(fd, content, len), (ssize_t)len);
	close(fd);
	return path;
}

static struct acl_db *load(const char *content)
{
	const char *path = write_tmp(content, strlen(content));
	struct acl_db *db = NULL;
	char err[256] = "";
	enum tern_err rc = acl_load(path, &db, err, sizeof(err));
	unlink(path);
	if (rc != TERN_OK)
		fail_msg("acl_load: %d %s", rc, err);
	return db;
}

/* user NULL: anonymous. */
static bool ok(const struct acl_db *db, const char *cid, const char *user, const char *topic,
               enum acl_access a)
{
	return acl_allowed(db, (const uint8_t *)cid, strlen(cid), (const uint8_t *)user,
	                   user ? strlen(user) : 0, (const uint8_t *)topic, strlen(topic), a);
}

#define R ACL_READ
#define W ACL_WRITE
#define S ACL_SUBSCRIBE_STRICT

static const char observed[] = "topic read anon/#\n"
                               "topic read pub/#\n"
                               "user alice\n"
                               "topic readwrite alice/#\n"
                               "topic deny alice/secret/#\n"
                               "topic read shared/#\n"
                               "user writer\n"
                               "topic write #\n"
                               "user bob\n"
                               "topic read bob/#\n"
                               "pattern deny bob/private/#\n"
                               "pattern read p/%c/#\n"
                               "pattern read u/%u/#\n"
                               "pattern deny shared/x\n";

/* What each subscriber on "#" received, on mosquitto 2.0.11. */
static void test_semantics_observed_on_mosquitto(void **state)
{
	(void)state;
	struct acl_db *db = load(observed);
	static const char *topics[] = {"anon/1",   "pub/1",     "alice/1", "alice/secret/1",
	                               "shared/1", "shared/x",  "bob/1",   "bob/private/1",
	                               "p/c1/1",   "p/e/vil/1", "u/bob/1", "u/alice/1",
	                               "other",    "p/c+x/1"};
	static const struct {
		const char *user, *cid, *got;
	} subs[] = {
	        {NULL, "c1", "anon/1 pub/1 p/c1/1"},
	        {"alice", "c1", "alice/1 shared/1 shared/x p/c1/1 u/alice/1"},
	        {"bob", "c1", "bob/1 bob/private/1 p/c1/1 u/bob/1"},
	        /* '+' in the client id: no pattern access at all. */
	        {"bob", "c+x", "bob/1 bob/private/1"},
	        /* '/' in the client id: mosquitto 2.0.11 delivered p/e/vil/1 and
	         * u/bob/1 here; tern refuses the patterns (see acl.h). */
	        {"bob", "e/vil", "bob/1 bob/private/1"},
	        {"e/vil", "zz", ""},
	};
	for (size_t s = 0; s < sizeof(subs) / sizeof(subs[0]); s++) {
		for (size_t t = 0; t < sizeof(topics) / sizeof(topics[0]); t++) {
			char padded[64];
			snprintf(padded, sizeof(padded), " %s ", topics[t]);
			char list[128];
			snprintf(list, sizeof(list), " %s ", subs[s].got);
			bool want = strstr(list, padded) != NULL;
			bool got = ok(db, subs[s].cid, subs[s].user, topics[t], R);
			if (want != got)
				fail_msg("user %s cid %s topic %s: got %d want %d",
				         subs[s].user ? subs[s].user : "(anon)", subs[s].cid,
				         topics[t], got, want);
			/* mosquitto 2.0.11 granted every SUBSCRIBE. */
			assert_true(ok(db, subs[s].cid, subs[s].user, topics[t], ACL_SUBSCRIBE));
		}
	}
	acl_free(db);
}

static void test_general_topic_lines_apply_only_to_anonymous_clients(void **state)
{
	(void)state;
	struct acl_db *db = load("topic readwrite public/#\nuser alice\ntopic read alice/#\n");
	assert_true(ok(db, "c", NULL, "public/x", R));
	assert_true(ok(db, "c", NULL, "public/x", W));
	/* A user, listed or not, does not get the anonymous lines. */
	assert_false(ok(db, "c", "alice", "public/x", R));
	assert_false(ok(db, "c", "carol", "public/x", R));
	assert_true(ok(db, "c", "alice", "alice/1", R));
	assert_false(ok(db, "c", NULL, "alice/1", R));
	assert_false(ok(db, "c", "carol", "alice/1", R));
	/* The empty user name is a user name, not anonymous. */
	assert_false(ok(db, "c", "", "public/x", R));
	acl_free(db);
}

static void test_read_write_readwrite_and_default_access(void **state)
{
	(void)state;
	struct acl_db *db = load("user u\n"
	                         "topic read r/#\n"
	                         "topic write w/#\n"
	                         "topic readwrite rw/#\n"
	                         "topic both/#\n"
	                         "topic read\n");
	assert_true(ok(db, "c", "u", "r/1", R));
	assert_false(ok(db, "c", "u", "r/1", W));
	assert_false(ok(db, "c", "u", "w/1", R));
	assert_true(ok(db, "c", "u", "w/1", W));
	assert_true(ok(db, "c", "u", "rw/1", R));
	assert_true(ok(db, "c", "u", "rw/1", W));
	assert_true(ok(db, "c", "u", "both/1", R));
	assert_true(ok(db, "c", "u", "both/1", W));
	/* "topic read": one word, so it is the topic, readwrite (mosquitto). */
	assert_true(ok(db, "c", "u", "read", W));
	assert_false(ok(db, "c", "u", "x", R));
	assert_int_equal(acl_rule_count(db), 5);
	acl_free(db);
}

static void test_deny_wins_within_a_list_in_any_order(void **state)
{
	(void)state;
	struct acl_db *db = load("user u\n"
	                         "topic readwrite a/#\n"
	                         "topic deny a/secret/#\n"
	                         "topic deny b/x\n"
	                         "topic readwrite b/#\n"
	                         "pattern readwrite p/%u/#\n"
	                         "pattern deny p/%u/hidden\n");
	assert_true(ok(db, "c", "u", "a/open", R));
	assert_false(ok(db, "c", "u", "a/secret", R));
	assert_false(ok(db, "c", "u", "a/secret/deep", W));
	assert_true(ok(db, "c", "u", "b/y", W));
	assert_false(ok(db, "c", "u", "b/x", W));
	assert_true(ok(db, "c", "u", "p/u/shown", R));
	assert_false(ok(db, "c", "u", "p/u/hidden", R));
	acl_free(db);
}

static void test_user_grant_is_decided_before_pattern_deny(void **state)
{
	(void)state;
	/* mosquitto 2.0.11: the user's list is consulted first, so a pattern
	 * deny does not take back what the user section grants; a deny in the
	 * user's list does beat a pattern grant. */
	struct acl_db *db = load("user u\n"
	                         "topic read shared/#\n"
	                         "topic deny mine/secret\n"
	                         "pattern deny shared/x\n"
	                         "pattern read mine/#\n");
	assert_true(ok(db, "c", "u", "shared/x", R));
	assert_false(ok(db, "c", "u", "mine/secret", R));
	assert_true(ok(db, "c", "u", "mine/other", R));
	/* Another user only has the patterns. */
	assert_false(ok(db, "c", "v", "shared/x", R));
	assert_true(ok(db, "c", "v", "mine/secret", R));
	acl_free(db);
}

static void test_wildcards_in_rules(void **state)
{
	(void)state;
	struct acl_db *db = load("topic read a/+/c\n"
	                         "topic read h/#\n"
	                         "topic read +\n"
	                         "topic read $SYS/broker/#\n"
	                         "topic read e//x\n");
	assert_true(ok(db, "c", NULL, "a/b/c", R));
	assert_true(ok(db, "c", NULL, "a//c", R));
	assert_false(ok(db, "c", NULL, "a/b/c/d", R));
	assert_false(ok(db, "c", NULL, "a/c", R));
	/* "h/#" covers its parent too. */
	assert_true(ok(db, "c", NULL, "h", R));
	assert_true(ok(db, "c", NULL, "h/1/2/3", R));
	assert_true(ok(db, "c", NULL, "single", R));
	assert_false(ok(db, "c", NULL, "two/levels", R));
	/* Wildcards at the first level do not reach $ topics. */
	assert_false(ok(db, "c", NULL, "$SYS", R));
	assert_true(ok(db, "c", NULL, "$SYS/broker/uptime", R));
	assert_false(ok(db, "c", NULL, "$SYS/other", R));
	assert_true(ok(db, "c", NULL, "e//x", R));
	assert_false(ok(db, "c", NULL, "e/x", R));
	/* A topic name never contains wildcards; an empty one is refused. */
	assert_false(ok(db, "c", NULL, "a/+/c", R));
	assert_false(ok(db, "c", NULL, "h/#", R));
	assert_false(ok(db, "c", NULL, "", R));
	acl_free(db);

	db = load("user root\ntopic readwrite #\n");
	assert_true(ok(db, "c", "root", "anything/at/all", W));
	assert_false(ok(db, "c", "root", "$SYS/x", R));
	acl_free(db);
}

static void test_patterns_substitute_client_id_and_user_name(void **state)
{
	(void)state;
	struct acl_db *db = load("pattern readwrite dev/%c/#\n"
	                         "pattern read users/%u/in\n"
	                         "pattern write both/%u/%c\n"
	                         "pattern read pre%cpost\n"
	                         "pattern read lit/%x/%%c\n");
	assert_true(ok(db, "c1", NULL, "dev/c1/status", W));
	assert_true(ok(db, "c1", "bob", "dev/c1", R));
	assert_false(ok(db, "c1", NULL, "dev/c2/status", W));
	assert_true(ok(db, "c1", "bob", "users/bob/in", R));
	assert_false(ok(db, "c1", "bob", "users/bob/in", W));
	assert_false(ok(db, "c1", "bob", "users/alice/in", R));
	/* %u patterns are skipped for anonymous clients. */
	assert_false(ok(db, "c1", NULL, "users//in", R));
	assert_false(ok(db, "c1", NULL, "users/%u/in", R));
	assert_true(ok(db, "c1", "bob", "both/bob/c1", W));
	assert_false(ok(db, "c1", "bob", "both/c1/bob", W));
	/* mosquitto substitutes inside a level too. */
	assert_true(ok(db, "xy", NULL, "prexypost", R));
	/* Unknown escapes stay; "%%c" is '%' then %c. */
	assert_true(ok(db, "q", NULL, "lit/%x/%q", R));
	/* An empty client id substitutes as empty. */
	assert_true(ok(db, "", NULL, "dev//x", W));
	acl_free(db);
}

static void test_wildcards_or_slash_in_client_id_or_user_name_get_no_pattern_access(void **state)
{
	(void)state;
	struct acl_db *db = load("user bob\n"
	                         "topic read bob/#\n"
	                         "pattern readwrite dev/%c/#\n"
	                         "pattern read users/%u/#\n"
	                         "pattern read open/#\n");
	static const char *bad[] = {"#", "+", "a/#", "x+", "a/b", "/", "dev/+"};
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		/* Without the check "dev/#/#" or "dev/+/#" would be a valid
		 * filter matching every device. */
		assert_false(ok(db, bad[i], NULL, "dev/other/x", W));
		assert_false(ok(db, bad[i], NULL, "dev/other/x", R));
		/* The whole pattern phase is refused, as in mosquitto... */
		assert_false(ok(db, bad[i], NULL, "open/x", R));
		/* ...but the user's own section still applies. */
		assert_true(ok(db, bad[i], "bob", "bob/1", R));
		assert_false(ok(db, "good", bad[i], "open/x", R));
		assert_false(ok(db, "good", bad[i], "users/x/y", R));
	}
	/* A "/" client id cannot reach into another client's space. */
	assert_true(ok(db, "a", NULL, "dev/a/b/x", W));
	assert_false(ok(db, "a/b", NULL, "dev/a/b/x", W));
	/* Not passing a client id at all only loses %c. */
	assert_true(acl_allowed(db, NULL, 0, NULL, 0, (const uint8_t *)"open/x", 6, R));
	acl_free(db);
}

static void test_long_pattern_expansion(void **state)
{
	(void)state;
	struct acl_db *db = load("pattern readwrite %c/%c/%c/x\n");
	char cid[400], topic[1300];
	memset(cid, 'k', sizeof(cid) - 1);
	cid[sizeof(cid) - 1] = '\0';
	snprintf(topic, sizeof(topic), "%s/%s/%s/x", cid, cid, cid);
	assert_true(ok(db, cid, NULL, topic, W));
	topic[strlen(topic) - 1] = 'y';
	assert_false(ok(db, cid, NULL, topic, W));
	acl_free(db);
}

static void test_subscribe_is_always_granted_like_mosquitto(void **state)
{
	(void)state;
	struct acl_db *db = load("topic read a/#\ntopic deny a/secret\n");
	assert_true(ok(db, "c", NULL, "#", ACL_SUBSCRIBE));
	assert_true(ok(db, "c", NULL, "a/secret", ACL_SUBSCRIBE));
	assert_true(ok(db, "c", "nobody", "zzz/#", ACL_SUBSCRIBE));
	assert_true(ok(db, "c+", "nobody", "$share/g/x", ACL_SUBSCRIBE));
	acl_free(db);
}

static void test_strict_subscribe_needs_a_grant_covering_the_whole_filter(void **state)
{
	(void)state;
	struct acl_db *db = load("topic read a/#\n"
	                         "topic read b/+/c\n"
	                         "topic write w/#\n"
	                         "topic read $SYS/broker/#\n"
	                         "topic deny a/secret/#\n"
	                         "topic read e/#\n"
	                         "topic deny e/+/x\n");
	assert_true(ok(db, "c", NULL, "a/x", S));
	assert_true(ok(db, "c", NULL, "a/x/+", S));
	assert_true(ok(db, "c", NULL, "b/+/c", S));
	assert_true(ok(db, "c", NULL, "b/q/c", S));
	assert_true(ok(db, "c", NULL, "$SYS/broker/+", S));
	/* Wider than any grant. */
	assert_false(ok(db, "c", NULL, "#", S));
	assert_false(ok(db, "c", NULL, "+/x", S));
	assert_false(ok(db, "c", NULL, "b/#", S));
	assert_false(ok(db, "c", NULL, "b/+/+", S));
	assert_false(ok(db, "c", NULL, "b/+/c/d", S));
	assert_false(ok(db, "c", NULL, "$SYS/#", S));
	/* A write grant does not allow subscribing. */
	assert_false(ok(db, "c", NULL, "w/x", S));
	/* A deny that could match some topic of the filter refuses it. */
	assert_false(ok(db, "c", NULL, "a/#", S));
	assert_false(ok(db, "c", NULL, "a/+", S));
	/* "a/secret/y" is in "a/+/y" and denied. */
	assert_false(ok(db, "c", NULL, "a/+/y", S));
	assert_false(ok(db, "c", NULL, "a/secret", S));
	assert_false(ok(db, "c", NULL, "a/secret/+/z", S));
	assert_true(ok(db, "c", NULL, "a/public/#", S));
	assert_false(ok(db, "c", NULL, "e/#", S));
	assert_false(ok(db, "c", NULL, "e/1/+", S));
	assert_true(ok(db, "c", NULL, "e/1/y", S));
	assert_true(ok(db, "c", NULL, "e/1/x/deeper", S));
	/* $share: the filter after the group is what is checked. */
	assert_true(ok(db, "c", NULL, "$share/g/a/x", S));
	assert_false(ok(db, "c", NULL, "$share/g/#", S));
	/* Invalid filters are refused. */
	assert_false(ok(db, "c", NULL, "a/x#", S));
	assert_false(ok(db, "c", NULL, "", S));
	acl_free(db);
}

static void test_strict_subscribe_with_patterns(void **state)
{
	(void)state;
	struct acl_db *db = load("user u\n"
	                         "topic read mine/#\n"
	                         "pattern read dev/%c/#\n"
	                         "pattern deny dev/%c/private\n"
	                         "pattern deny mine/x\n"
	                         "pattern read any/#\n");
	assert_true(ok(db, "c1", NULL, "dev/c1/status", S));
	assert_false(ok(db, "c1", NULL, "dev/c1/#", S));
	assert_false(ok(db, "c1", NULL, "dev/+/status", S));
	assert_false(ok(db, "c+", NULL, "any/x", S));
	assert_true(ok(db, "c1", NULL, "any/#", S));
	/* As for single topics: the user's grant comes before pattern denies. */
	assert_true(ok(db, "c1", "u", "mine/#", S));
	acl_free(db);
}

static void test_empty_file_denies_everything(void **state)
{
	(void)state;
	struct acl_db *db = load("# only a comment\n\n");
	assert_int_equal(acl_rule_count(db), 0);
	assert_false(ok(db, "c", NULL, "a", R));
	assert_false(ok(db, "c", "u", "a", W));
	assert_false(ok(db, "c", "u", "a", S));
	acl_free(db);
	acl_free(NULL);
}

static void test_user_sections_of_the_same_name_merge(void **state)
{
	(void)state;
	struct acl_db *db = load("user zed\ntopic read z1\n"
	                         "user amy\ntopic read a1\n"
	                         "user zed\ntopic read z2\n"
	                         "user   spaced name  \ntopic read s\n"
	                         "user mid\n"
	                         "user amy\ntopic deny a1\n");
	assert_true(ok(db, "c", "zed", "z1", R));
	assert_true(ok(db, "c", "zed", "z2", R));
	assert_false(ok(db, "c", "amy", "a1", R));
	assert_true(ok(db, "c", "spaced name", "s", R));
	assert_false(ok(db, "c", "mid", "s", R));
	acl_free(db);
}

static void test_lines_are_read_like_mosquitto(void **state)
{
	(void)state;
	/* CRLF and trailing blanks are trimmed; filters may hold spaces;
	 * extra spaces between words are skipped. */
	struct acl_db *db = load("topic   read   with space/#   \r\n"
	                         "user u\r\n"
	                         "topic write x\t\r\n");
	assert_true(ok(db, "c", NULL, "with space/1", R));
	assert_true(ok(db, "c", "u", "x", W));
	acl_free(db);
}

static void test_malformed_lines_fail_with_file_and_line(void **state)
{
	(void)state;
	static const struct {
		const char *line;
		const char *why;
	} cases[] = {
	        {"topics read a", "unknown directive 'topics'"},
	        {"Topic read a", "unknown directive"},
	        {"  # indented comment", "unknown directive '#'"},
	        {"topic\tread\ta", "unknown directive"},
	        {"topic", "without a topic"},
	        {"pattern", "without a topic"},
	        {"topic rw a", "invalid access type 'rw'"},
	        {"topic read a b#", "invalid topic filter"},
	        {"topic read a/b#", "invalid topic filter"},
	        {"topic read a/+b", "invalid topic filter"},
	        {"pattern deny #/a", "invalid topic filter"},
	        {"topic read a+", "invalid topic filter"},
	        {"user", "missing user name"},
	        {"user   ", "missing user name"},
	};
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		char content[256];
		snprintf(content, sizeof(content), "# header\ntopic read ok\n%s\ntopic read b\n",
		         cases[i].line);
		const char *path = write_tmp(content, strlen(content));
		struct acl_db *db = (struct acl_db *)0x1;
		char err[256] = "";
		enum tern_err rc = acl_load(path, &db, err, sizeof(err));
		char want[96];
		snprintf(want, sizeof(want), "%s:3: ", path);
		if (rc != TERN_E_CONFIG || strncmp(err, want, strlen(want)) != 0 ||
		    !strstr(err, cases[i].why))
			fail_msg("line '%s': rc %d, err '%s' (want '%s...%s')", cases[i].line, rc,
			         err, want, cases[i].why);
		assert_null(db);
		unlink(path);
	}

	char content[] = "topic read a\ntopic read b!c\n";
	*strchr(content, '!') = '\0';
	const char *path = write_tmp(content, sizeof(content) - 1);
	struct acl_db *db = NULL;
	char err[256] = "";
	assert_int_equal(acl_load(path, &db, err, sizeof(err)), TERN_E_CONFIG);
	assert_non_null(strstr(err, ":2: NUL byte"));
	unlink(path);

	assert_int_equal(acl_load("/nonexistent/tern/acl", &db, err, sizeof(err)), TERN_E_SYS);
	assert_non_null(strstr(err, "/nonexistent/tern/acl: "));
	assert_null(db);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	        cmocka_unit_test(test_semantics_observed_on_mosquitto),
	        cmocka_unit_test(test_general_topic_lines_apply_only_to_anonymous_clients),
	        cmocka_unit_test(test_read_write_readwrite_and_default_access),
	        cmocka_unit_test(test_deny_wins_within_a_list_in_any_order),
	        cmocka_unit_test(test_user_grant_is_decided_before_pattern_deny),
	        cmocka_unit_test(test_wildcards_in_rules),
	        cmocka_unit_test(test_patterns_substitute_client_id_and_user_name),
	        cmocka_unit_test(
	                test_wildcards_or_slash_in_client_id_or_user_name_get_no_pattern_access),
	        cmocka_unit_test(test_long_pattern_expansion),
	        cmocka_unit_test(test_subscribe_is_always_granted_like_mosquitto),
	        cmocka_unit_test(test_strict_subscribe_needs_a_grant_covering_the_whole_filter),
	        cmocka_unit_test(test_strict_subscribe_with_patterns),
	        cmocka_unit_test(test_empty_file_denies_everything),
	        cmocka_unit_test(test_user_sections_of_the_same_name_merge),
	        cmocka_unit_test(test_lines_are_read_like_mosquitto),
	        cmocka_unit_test(test_malformed_lines_fail_with_file_and_line),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
