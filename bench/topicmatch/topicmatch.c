/*
 * topicmatch.c - the topic-level code of the broker under a fixed load, for
 * counting instructions with callgrind (bench/topicmatch/run).
 *
 * Each scenario repeats one kind of call ITERS times in one noinline
 * function (match_loop() for the router scenarios, run_NAME() for the
 * others) on a table built before it: bench/topicmatch/run collects only
 * inside that function (callgrind --toggle-collect), so the setup is not
 * counted, and divides the instructions by the number of calls. Instruction
 * counts do not depend on the machine's load, unlike times, which is why
 * this program prints no times at all: it prints the scenario names and a
 * checksum of the results (which also keeps the compiler from dropping the
 * calls).
 *
 * Scenarios (router_match unless said otherwise):
 *   bench      one subscription "bench/#", topic "bench/3" (bench/compare's
 *              fan-in)
 *   devices    10,000 "dev/<id>/temp" plus "dev/+/temp", "dev/#" and
 *              "$SYS/#"; topics "dev/<id>/temp" over all ids
 *   deep       "a/b/c/d/e/f/g/h/i/j", "a/+/c/+/e/#" and "+/+/+/+/+/+/+/+/+/j";
 *              topic "a/b/c/d/e/f/g/h/i/j"
 *   shared     "$share/g/bench/+" with 8 members; topic "bench/1"
 *   dollar     "#", "+/x" and "$SYS/broker/#"; topic "$SYS/broker/load"
 *   acl        acl_allowed(ACL_READ, "dev/1234/temp") and
 *              acl_allowed(ACL_SUBSCRIBE, "dev/+/temp") under four topic
 *              rules and a pattern
 *   retain     retain_match of "dev/+/temp" over 1,000 retained messages
 *   validate   tern_topic_filter_check("dev/+/temp/#") and
 *              tern_topic_name_check("dev/1234/temp")
 *   matches    tern_topic_matches("dev/+/temp/#", "dev/1234/temp/x")
 *
 * Usage: topicmatch [SCENARIO...] (default: all).
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "auth/acl.h"
#include "broker/retain.h"
#include "broker/router.h"
#include "tern/codec.h"

#define ITERS   100000
#define DEVICES 10000

/* The key does not matter for instruction counts. */
static const struct hash_key KEY = {UINT64_C(0x0123456789abcdef), UINT64_C(0xfedcba9876543210)};

static struct tern_bytes bs(const char *s)
{
	return (struct tern_bytes){(const uint8_t *)s, (uint32_t)strlen(s)};
}

static void add(struct router *r, const char *filter, const char *group, uint64_t session)
{
	struct route rt = {.session = session, .qos = 1};
	if (router_add(r, bs(filter), bs(group), &rt) != TERN_OK) {
		fprintf(stderr, "topicmatch: router_add failed\n");
		exit(1);
	}
}

/* Matches topics[i % ntopics] ITERS times; returns the routes found. */
__attribute__((noinline)) static size_t match_loop(struct router *r, char (*topics)[32],
                                                   size_t ntopics)
{
	struct route_matches out = {0};
	size_t found = 0;
	for (size_t i = 0; i < ITERS; i++) {
		const char *t = topics[i % ntopics];
		if (router_match(r, (const uint8_t *)t, strlen(t), &out) != TERN_OK)
			exit(1);
		found += out.n;
	}
	free(out.v);
	return found;
}

static size_t scenario_router(const char *name)
{
	static char topics[DEVICES][32];
	struct router *r = router_new(&KEY);
	size_t n = 1, found = 0;
	if (!r)
		exit(1);
	if (strcmp(name, "bench") == 0) {
		add(r, "bench/#", "", 1);
		strcpy(topics[0], "bench/3");
		found = match_loop(r, topics, n);
	} else if (strcmp(name, "devices") == 0) {
		for (int i = 0; i < DEVICES; i++) {
			char f[32];
			snprintf(f, sizeof(f), "dev/%d/temp", i);
			add(r, f, "", (uint64_t)i + 1);
			strcpy(topics[i], f);
		}
		add(r, "dev/+/temp", "", DEVICES + 1);
		add(r, "dev/#", "", DEVICES + 2);
		add(r, "$SYS/#", "", DEVICES + 3);
		found = match_loop(r, topics, DEVICES);
	} else if (strcmp(name, "deep") == 0) {
		add(r, "a/b/c/d/e/f/g/h/i/j", "", 1);
		add(r, "a/+/c/+/e/#", "", 2);
		add(r, "+/+/+/+/+/+/+/+/+/j", "", 3);
		strcpy(topics[0], "a/b/c/d/e/f/g/h/i/j");
		found = match_loop(r, topics, n);
	} else if (strcmp(name, "shared") == 0) {
		for (uint64_t s = 1; s <= 8; s++)
			add(r, "bench/+", "g", s);
		strcpy(topics[0], "bench/1");
		found = match_loop(r, topics, n);
	} else if (strcmp(name, "dollar") == 0) {
		add(r, "#", "", 1);
		add(r, "+/x", "", 2);
		add(r, "$SYS/broker/#", "", 3);
		strcpy(topics[0], "$SYS/broker/load");
		found = match_loop(r, topics, n);
	}
	router_free(r);
	return found;
}

__attribute__((noinline)) static size_t run_retain(struct retain_store *s)
{
	struct retain_hits h = {0};
	size_t found = 0;
	for (size_t i = 0; i < ITERS / 100; i++) {
		if (retain_match(s, (const uint8_t *)"dev/+/temp", 10, 0, &h) != TERN_OK)
			exit(1);
		found += h.n;
		for (size_t k = 0; k < h.n; k++)
			msg_unref(h.v[k]);
		h.n = 0;
	}
	retain_hits_free(&h);
	return found;
}

static size_t scenario_retain(void)
{
	struct retain_store *s = retain_new(&KEY);
	if (!s)
		exit(1);
	for (int i = 0; i < 1000; i++) {
		char t[32];
		snprintf(t, sizeof(t), "dev/%d/temp", i);
		struct msg *m = msg_new(bs(t), bs("v"), 0, true, NULL, 0, 0);
		if (!m || retain_set(s, m) != TERN_OK)
			exit(1);
		msg_unref(m);
	}
	size_t found = run_retain(s);
	retain_free(s);
	return found;
}

__attribute__((noinline)) static size_t run_validate(void)
{
	size_t ok = 0;
	for (size_t i = 0; i < ITERS; i++) {
		ok += tern_topic_filter_check((const uint8_t *)"dev/+/temp/#", 12) == TERN_OK;
		ok += tern_topic_name_check((const uint8_t *)"dev/1234/temp", 13) == TERN_OK;
	}
	return ok;
}

__attribute__((noinline)) static size_t run_matches(void)
{
	size_t ok = 0;
	for (size_t i = 0; i < ITERS; i++)
		ok += tern_topic_matches((const uint8_t *)"dev/+/temp/#", 12,
		                         (const uint8_t *)"dev/1234/temp/x", 15);
	return ok;
}

__attribute__((noinline)) static size_t run_acl(const struct acl_db *db)
{
	size_t ok = 0;
	for (size_t i = 0; i < ITERS / 2; i++) {
		ok += acl_allowed(db, (const uint8_t *)"c1", 2, (const uint8_t *)"u", 1,
		                  (const uint8_t *)"dev/1234/temp", 13, ACL_READ);
		ok += acl_allowed(db, (const uint8_t *)"c1", 2, (const uint8_t *)"u", 1,
		                  (const uint8_t *)"dev/+/temp", 10, ACL_SUBSCRIBE);
	}
	return ok;
}

static size_t scenario_acl(void)
{
	char path[] = "/tmp/topicmatch-acl-XXXXXX";
	int fd = mkstemp(path);
	static const char rules[] = "user u\n"
	                            "topic deny dev/secret/#\n"
	                            "topic read dev/+/temp\n"
	                            "topic readwrite cmd/#\n"
	                            "topic write $SYS/x\n"
	                            "pattern readwrite own/%c/#\n";
	FILE *f = fd < 0 ? NULL : fdopen(fd, "w");
	if (!f || fwrite(rules, 1, sizeof(rules) - 1, f) != sizeof(rules) - 1 || fclose(f) != 0)
		exit(1);
	struct acl_db *db = NULL;
	enum tern_err err = acl_load(path, &db, NULL, 0);
	unlink(path);
	if (err != TERN_OK)
		exit(1);
	size_t found = run_acl(db);
	acl_free(db);
	return found;
}

int main(int argc, char **argv)
{
	static const char *const all[] = {"bench", "devices", "deep",     "shared", "dollar",
	                                  "acl",   "retain",  "validate", "matches"};
	const char *const *names = all;
	size_t n = sizeof(all) / sizeof(all[0]);
	if (argc > 1) {
		names = (const char *const *)argv + 1;
		n = (size_t)argc - 1;
	}
	for (size_t i = 0; i < n; i++) {
		size_t found;
		if (strcmp(names[i], "acl") == 0)
			found = scenario_acl();
		else if (strcmp(names[i], "retain") == 0)
			found = scenario_retain();
		else if (strcmp(names[i], "validate") == 0)
			found = run_validate();
		else if (strcmp(names[i], "matches") == 0)
			found = run_matches();
		else
			found = scenario_router(names[i]);
		printf("%s %zu\n", names[i], found);
	}
	return 0;
}
