/*
 * test_acl.c - unit tests of mosquitto's acl_file (src/auth/acl.c).
 *
 * The expectations marked "mosquitto 2.0.11" were observed on the real
 * broker (Debian's /usr/sbin/mosquitto) with the file of
 * test_semantics_observed_on_mosquitto: a writer allowed `topic write #`
 * published one message to each topic and paho-mqtt subscribers on "#"
 * recorded what was delivered. SUBSCRIBE was granted in every case, also
 * for filters no rule grants and for a denied one; tern refuses a filter
 * only when nothing under it is readable (see acl.h), which for a filter
 * without wildcards means exactly when its one topic is not readable.
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
#include "tern/codec.h"

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
#define S ACL_SUBSCRIBE

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
			/* A filter without wildcards: granted exactly when its
			 * topic is readable. */
			assert_int_equal(ok(db, subs[s].cid, subs[s].user, topics[t], S), want);
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

/* The acl_file of the Paho interoperability tests' broker (issue 10): deny
 * a few topics, allow the rest. */
static void test_subscribe_granted_when_some_topic_of_the_filter_is_readable(void **state)
{
	(void)state;
	struct acl_db *db = load("topic deny test/nosubscribe\ntopic readwrite #\n");
	assert_true(ok(db, "c", NULL, "#", S));
	assert_true(ok(db, "c", NULL, "test/#", S));
	assert_true(ok(db, "c", NULL, "+/+", S));
	assert_true(ok(db, "c", NULL, "test/+", S));
	/* "test/nosubscribe/#" also matches test/nosubscribe/x. */
	assert_true(ok(db, "c", NULL, "test/nosubscribe/#", S));
	assert_false(ok(db, "c", NULL, "test/nosubscribe", S));
	assert_false(ok(db, "c", NULL, "$share/g/test/nosubscribe", S));
	assert_true(ok(db, "c", NULL, "$share/g/#", S));
	/* "#" matches no topic starting with '$' [MQTT-4.7.2-1]. */
	assert_false(ok(db, "c", NULL, "$SYS/#", S));
	assert_false(ok(db, "c", NULL, "$SYS/broker/uptime", S));
	/* What is delivered is decided per topic. */
	assert_false(ok(db, "c", NULL, "test/nosubscribe", R));
	assert_true(ok(db, "c", NULL, "test/other", R));
	acl_free(db);
}

static void test_subscribe_refused_when_denies_cover_the_filter(void **state)
{
	(void)state;
	struct acl_db *db = load("topic read a/#\n"
	                         "topic read b/+/c\n"
	                         "topic write w/#\n"
	                         "topic read $SYS/broker/#\n"
	                         "topic deny a/secret/#\n"
	                         "topic read e/#\n"
	                         "topic deny e/+/x\n"
	                         "topic read f/#\n"
	                         "topic deny f\n"
	                         "topic deny f/+/#\n");
	assert_true(ok(db, "c", NULL, "#", S));
	assert_true(ok(db, "c", NULL, "+/x", S));
	assert_true(ok(db, "c", NULL, "b/#", S));
	assert_true(ok(db, "c", NULL, "b/+/+", S));
	assert_true(ok(db, "c", NULL, "$SYS/#", S));
	assert_true(ok(db, "c", NULL, "$SYS/+/x", S));
	assert_true(ok(db, "c", NULL, "a/#", S));
	assert_true(ok(db, "c", NULL, "a/+/y", S));
	assert_true(ok(db, "c", NULL, "e/1/+", S));
	assert_true(ok(db, "c", NULL, "e/+/x/deeper", S));
	/* No rule reads there. */
	assert_false(ok(db, "c", NULL, "b/+/c/d", S));
	assert_false(ok(db, "c", NULL, "zzz/#", S));
	assert_false(ok(db, "c", NULL, "$SYS/other/#", S));
	/* A write grant does not allow subscribing. */
	assert_false(ok(db, "c", NULL, "w/x", S));
	assert_false(ok(db, "c", NULL, "w/#", S));
	/* Inside a deny. */
	assert_false(ok(db, "c", NULL, "a/secret", S));
	assert_false(ok(db, "c", NULL, "a/secret/#", S));
	assert_false(ok(db, "c", NULL, "a/secret/+/z", S));
	assert_false(ok(db, "c", NULL, "e/+/x", S));
	/* f/# is covered by two denies together, by neither alone. */
	assert_false(ok(db, "c", NULL, "f/#", S));
	assert_false(ok(db, "c", NULL, "f/+", S));
	/* Invalid filters are refused. */
	assert_false(ok(db, "c", NULL, "a/x#", S));
	assert_false(ok(db, "c", NULL, "a/#/b", S));
	assert_false(ok(db, "c", NULL, "", S));
	acl_free(db);
}

static void test_subscribe_with_patterns(void **state)
{
	(void)state;
	struct acl_db *db = load("user u\n"
	                         "topic read mine/#\n"
	                         "pattern read dev/%c/#\n"
	                         "pattern deny dev/%c/private\n"
	                         "pattern deny mine/x\n"
	                         "pattern read any/#\n"
	                         "pattern read home/%u/#\n");
	assert_true(ok(db, "c1", NULL, "dev/c1/status", S));
	assert_true(ok(db, "c1", NULL, "dev/c1/#", S));
	assert_true(ok(db, "c1", NULL, "dev/+/status", S));
	assert_true(ok(db, "c1", NULL, "dev/#", S));
	assert_false(ok(db, "c1", NULL, "dev/c2/#", S));
	assert_false(ok(db, "c1", NULL, "dev/c1/private", S));
	assert_false(ok(db, "c1", NULL, "dev/+/private", S));
	/* A wildcard or '/' in the client id: no pattern access. */
	assert_false(ok(db, "c+", NULL, "any/x", S));
	assert_false(ok(db, "a/b", NULL, "any/#", S));
	assert_true(ok(db, "c1", NULL, "any/#", S));
	/* %u: for the named user only, never for anonymous clients. */
	assert_true(ok(db, "c1", "v", "home/v/#", S));
	assert_true(ok(db, "c1", "v", "home/+/x", S));
	assert_false(ok(db, "c1", "v", "home/w/#", S));
	assert_false(ok(db, "c1", NULL, "home/#", S));
	/* As for single topics: the user's grant comes before pattern denies. */
	assert_true(ok(db, "c1", "u", "mine/x", S));
	assert_false(ok(db, "c1", NULL, "mine/x", S));
	acl_free(db);
}

/* A tiny deterministic generator (xorshift32), so failures reproduce. */
static uint32_t rnd(uint32_t *st)
{
	uint32_t x = *st;
	x ^= x << 13;
	x ^= x >> 17;
	x ^= x << 5;
	return *st = x;
}

/* Levels rules and filters are built of; topic names also use "zz", which
 * no rule names. */
static const char *const lit[] = {"a", "b", "$s", ""};

static void random_filter(uint32_t *st, char *out, size_t cap, size_t max_levels, bool pct)
{
	size_t levels = 1 + rnd(st) % max_levels, n = 0;
	out[0] = '\0';
	for (size_t i = 0; i < levels; i++) {
		uint32_t k = rnd(st) % (pct ? 8 : 7);
		const char *l = k < 4 ? lit[k] : k == 4 || k == 5 ? "+" : k == 6 ? "#" : "%c";
		if (strcmp(l, "#") == 0)
			i = levels - 1;
		n += (size_t)snprintf(out + n, cap - n, "%s%s", i ? "/" : "", l);
	}
	/* A one-level empty filter is not a filter. */
	if (out[0] == '\0')
		snprintf(out, cap, "a");
}

/* Calls fn on every topic name of up to max_levels levels from lit[] and
 * "zz"; stops when fn returns true. */
static bool each_topic(bool (*fn)(const char *, void *), void *arg, size_t max_levels)
{
	static const char *const vals[] = {"a", "b", "$s", "", "zz"};
	size_t idx[8] = {0};
	for (size_t depth = 1; depth <= max_levels; depth++) {
		memset(idx, 0, sizeof(idx));
		for (;;) {
			char t[64];
			size_t n = 0;
			for (size_t i = 0; i < depth; i++)
				n += (size_t)snprintf(t + n, sizeof(t) - n, "%s%s", i ? "/" : "",
				                      vals[idx[i]]);
			if (n > 0 && fn(t, arg))
				return true;
			size_t i = 0;
			while (i < depth && ++idx[i] == 5)
				idx[i++] = 0;
			if (i == depth)
				break;
		}
	}
	return false;
}

struct oracle {
	const struct acl_db *db;
	const char *cid, *user, *filter;
};

static bool readable_under(const char *topic, void *arg)
{
	const struct oracle *o = arg;
	return tern_topic_matches((const uint8_t *)o->filter, strlen(o->filter),
	                          (const uint8_t *)topic, strlen(topic)) &&
	       ok(o->db, o->cid, o->user, topic, R);
}

/* ACL_SUBSCRIBE against its definition, on random files and filters: the
 * filter is granted exactly when some topic name it matches is readable.
 * Topic names of one level more than any rule stand for all deeper ones,
 * and "zz" for every level value no rule names. */
static void test_subscribe_decision_matches_brute_force(void **state)
{
	(void)state;
	static const char *const acc[] = {"read", "write", "readwrite", "deny"};
	uint32_t st = 0x7e4a11u;
	for (int file = 0; file < 150; file++) {
		char text[2048];
		size_t n = 0;
		size_t rules = 1 + rnd(&st) % 6;
		for (size_t i = 0; i < rules; i++) {
			char f[64];
			bool pattern = rnd(&st) % 3 == 0;
			random_filter(&st, f, sizeof(f), 3, pattern);
			n += (size_t)snprintf(text + n, sizeof(text) - n, "%s %s %s\n",
			                      pattern ? "pattern" : "topic", acc[rnd(&st) % 4], f);
			if (i == rules / 2 && rnd(&st) % 2)
				n += (size_t)snprintf(text + n, sizeof(text) - n, "user u\n");
		}
		struct acl_db *db = load(text);
		for (int q = 0; q < 40; q++) {
			char f[64];
			random_filter(&st, f, sizeof(f), 4, false);
			struct oracle o = {db, "a", q % 2 ? "u" : NULL, f};
			bool want = each_topic(readable_under, &o, 4);
			bool got = ok(db, o.cid, o.user, f, S);
			if (got != want)
				fail_msg("acl:\n%sfilter %s user %s: got %d want %d", text, f,
				         o.user ? o.user : "(anon)", got, want);
		}
		acl_free(db);
	}
}

/* A file built to make the search branch at every level: read grants name
 * ten literals at each of six levels, and all-'+' denies refuse every topic
 * name. The exact answer for "#" is "refuse", but the search stops at its
 * bound long before trying the 11^6 prefixes, and then grants: safe, since
 * each delivery is still checked (no topic is readable). */
static void test_subscribe_search_is_bounded(void **state)
{
	(void)state;
	char text[8192];
	size_t n = 0;
	for (int pos = 0; pos < 6; pos++)
		for (int k = 0; k < 10; k++) {
			n += (size_t)snprintf(text + n, sizeof(text) - n, "topic read ");
			for (int l = 0; l < 6; l++) {
				const char *sep = l ? "/" : "";
				if (l == pos)
					n += (size_t)snprintf(text + n, sizeof(text) - n, "%sl%d",
					                      sep, k + 1);
				else
					n += (size_t)snprintf(text + n, sizeof(text) - n, "%s+",
					                      sep);
			}
			n += (size_t)snprintf(text + n, sizeof(text) - n, "\n");
		}
	n += (size_t)snprintf(text + n, sizeof(text) - n, "topic deny +/+/+/+/+/+/#\n");
	for (int d = 1; d < 6; d++) {
		n += (size_t)snprintf(text + n, sizeof(text) - n, "topic deny +");
		for (int l = 1; l < d; l++)
			n += (size_t)snprintf(text + n, sizeof(text) - n, "/+");
		n += (size_t)snprintf(text + n, sizeof(text) - n, "\n");
	}
	struct acl_db *db = load(text);
	assert_false(ok(db, "c", NULL, "l1/l1/l1/l1/l1/l1", R));
	assert_true(ok(db, "c", NULL, "#", S));
	/* Small enough to be decided exactly. */
	assert_false(ok(db, "c", NULL, "l1/l2/l3/l4/l5/+", S));
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
	        cmocka_unit_test(test_subscribe_granted_when_some_topic_of_the_filter_is_readable),
	        cmocka_unit_test(test_subscribe_refused_when_denies_cover_the_filter),
	        cmocka_unit_test(test_subscribe_with_patterns),
	        cmocka_unit_test(test_subscribe_decision_matches_brute_force),
	        cmocka_unit_test(test_subscribe_search_is_bounded),
	        cmocka_unit_test(test_empty_file_denies_everything),
	        cmocka_unit_test(test_user_sections_of_the_same_name_merge),
	        cmocka_unit_test(test_lines_are_read_like_mosquitto),
	        cmocka_unit_test(test_malformed_lines_fail_with_file_and_line),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
