/*
 * fuzz_acl.c - libFuzzer target for the acl_file (src/auth).
 *
 * Input: the bytes of an acl_file, written to a memfd (fuzz_util.h) and
 * read with acl_load(). When it loads, acl_allowed() answers every kind of
 * access for a few fixed clients (anonymous, with a user name, with the
 * '/' '+' '#' characters patterns must refuse) on fixed topics and on up
 * to MAX_WORDS words of the input itself, so that the topics the rules
 * name (and %c / %u substitutions of them) are actually asked about.
 *
 * Read and write checks get topic names and the SUBSCRIBE kinds get topic
 * filters, as the broker only asks with what the codec validated: words
 * that are not valid for the kind are skipped. Two invariants are checked:
 * ACL_SUBSCRIBE (mosquitto 2.0.11 semantics) allows every filter, and a
 * topic name allowed by ACL_SUBSCRIBE_STRICT as a filter is allowed by
 * ACL_READ (strict is conservative; "$share/..." words are left out, as
 * strict removes that prefix and a read check does not).
 *
 * Dictionary: fuzz/acl.dict.
 */
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>

#include "auth/acl.h"
#include "fuzz_util.h"
#include "tern/codec.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#define MAX_WORDS 12

struct client {
	const char *cid;
	const char *user; /* NULL: anonymous */
};

static const struct client clients[] = {
        {"c1", NULL}, {"c1", "alice"}, {"bob", "bob"}, {"a/b", "a/b"}, {"+", "#"}, {"", ""},
};

static void check_topic(const struct acl_db *db, const uint8_t *t, size_t len)
{
	bool name = tern_topic_name_check(t, len) == TERN_OK;
	bool filter = tern_topic_filter_check(t, len) == TERN_OK;
	/* Strict checks remove "$share/G/" first; a name does not. */
	bool shared = len >= 7 && memcmp(t, "$share/", 7) == 0;
	for (size_t i = 0; i < sizeof(clients) / sizeof(clients[0]); i++) {
		const struct client *c = &clients[i];
		const uint8_t *cid = (const uint8_t *)c->cid;
		const uint8_t *user = (const uint8_t *)c->user;
		size_t clen = strlen(c->cid), ulen = user ? strlen(c->user) : 0;
		bool read = false;
		if (name) {
			read = acl_allowed(db, cid, clen, user, ulen, t, len, ACL_READ);
			(void)acl_allowed(db, cid, clen, user, ulen, t, len, ACL_WRITE);
		}
		if (filter) {
			if (!acl_allowed(db, cid, clen, user, ulen, t, len, ACL_SUBSCRIBE))
				abort();
			bool strict = acl_allowed(db, cid, clen, user, ulen, t, len,
			                          ACL_SUBSCRIBE_STRICT);
			if (name && !shared && strict && !read)
				abort();
		}
	}
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	char path[64];
	fuzz_memfd_path(data, size, path, sizeof(path));

	struct acl_db *db = (struct acl_db *)1;
	char err[256];
	enum tern_err rc = acl_load(path, &db, err, sizeof(err));
	if (rc != TERN_OK) {
		if (db != NULL || strlen(err) >= sizeof(err))
			abort();
		return 0;
	}
	(void)acl_rule_count(db);
	static const char *fixed[] = {"a/b", "c1/x", "alice/x", "$SYS/broker", "#", "a/+", "x"};
	for (size_t i = 0; i < sizeof(fixed) / sizeof(fixed[0]); i++)
		check_topic(db, (const uint8_t *)fixed[i], strlen(fixed[i]));
	/* Whitespace-separated words of the input. */
	size_t i = 0, words = 0;
	while (i < size && words < MAX_WORDS) {
		while (i < size &&
		       (data[i] == ' ' || data[i] == '\t' || data[i] == '\n' || data[i] == '\r'))
			i++;
		size_t start = i;
		while (i < size && data[i] != ' ' && data[i] != '\t' && data[i] != '\n' &&
		       data[i] != '\r')
			i++;
		if (i > start) {
			check_topic(db, data + start, i - start);
			words++;
		}
	}
	acl_free(db);
	return 0;
}
