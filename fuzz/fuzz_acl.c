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
 * Read and write checks get topic names and SUBSCRIBE gets topic filters,
 * as the broker only asks with what the codec validated: words that are
 * not valid for the kind are skipped. Two invariants are checked, per
 * client: a filter without wildcards (and without "$share/") is granted
 * exactly when its topic is readable; and a filter that matches any
 * readable topic name among the words is granted (SUBSCRIBE never refuses
 * a filter under which something can be read).
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

struct word {
	const uint8_t *t;
	size_t len;
};

static void check_client(const struct acl_db *db, const struct client *c, const struct word *w,
                         size_t n)
{
	const uint8_t *cid = (const uint8_t *)c->cid;
	const uint8_t *user = (const uint8_t *)c->user;
	size_t clen = strlen(c->cid), ulen = user ? strlen(c->user) : 0;
	bool readable[MAX_WORDS + 16];
	for (size_t i = 0; i < n; i++) {
		readable[i] = false;
		if (tern_topic_name_check(w[i].t, w[i].len) == TERN_OK) {
			readable[i] =
			        acl_allowed(db, cid, clen, user, ulen, w[i].t, w[i].len, ACL_READ);
			(void)acl_allowed(db, cid, clen, user, ulen, w[i].t, w[i].len, ACL_WRITE);
		}
	}
	for (size_t i = 0; i < n; i++) {
		if (tern_topic_filter_check(w[i].t, w[i].len) != TERN_OK)
			continue;
		bool sub = acl_allowed(db, cid, clen, user, ulen, w[i].t, w[i].len, ACL_SUBSCRIBE);
		struct tern_bytes fb = {w[i].t, (uint32_t)w[i].len}, group, rest = fb;
		bool shared = tern_topic_filter_share(fb, &group, &rest);
		bool wild = memchr(w[i].t, '+', w[i].len) || memchr(w[i].t, '#', w[i].len);
		if (!shared && !wild && sub != readable[i])
			abort();
		for (size_t j = 0; j < n && !sub; j++)
			if (readable[j] &&
			    tern_topic_matches(rest.data, rest.len, w[j].t, w[j].len))
				abort();
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
	struct word w[MAX_WORDS + 16];
	size_t n = 0;
	for (size_t i = 0; i < sizeof(fixed) / sizeof(fixed[0]); i++)
		w[n++] = (struct word){(const uint8_t *)fixed[i], strlen(fixed[i])};
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
			w[n++] = (struct word){data + start, i - start};
			words++;
		}
	}
	for (size_t k = 0; k < sizeof(clients) / sizeof(clients[0]); k++)
		check_client(db, &clients[k], w, n);
	acl_free(db);
	return 0;
}
