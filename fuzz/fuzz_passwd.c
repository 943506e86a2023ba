/*
 * fuzz_passwd.c - libFuzzer target for the password file (src/auth).
 *
 * Input: the bytes of a mosquitto password file, written to a memfd
 * (fuzz_util.h) and read with passwd_load(). When it loads, passwd_check()
 * runs for a few fixed users and for every user name of the input (the
 * text before the first ':' of each line), with a password, the empty
 * password and no password, so the lookup, the dummy entry for unknown
 * users and both hash formats run on whatever the parser accepted.
 *
 * PBKDF2 costs time linear in the iteration count of a "$7$N$" entry, and
 * the file may name up to 2^31-1: a configuration choice of the operator,
 * not a bug. So the checks are skipped when the input names more than
 * MAX_ITERATIONS anywhere (the parser still runs); otherwise libFuzzer
 * would report slow units instead of exploring.
 *
 * Dictionary: fuzz/passwd.dict.
 */
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>

#include "auth/passwd.h"
#include "fuzz_util.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#define MAX_ITERATIONS 2000
#define MAX_USERS      8

/* True when every "$7$DIGITS" in data names at most MAX_ITERATIONS. */
static bool cheap_to_check(const uint8_t *data, size_t size)
{
	for (size_t i = 0; i + 3 <= size; i++) {
		if (data[i] != '$' || data[i + 1] != '7' || data[i + 2] != '$')
			continue;
		unsigned long long it = 0;
		for (size_t k = i + 3; k < size && data[k] >= '0' && data[k] <= '9'; k++) {
			it = it * 10 + (data[k] - '0');
			if (it > MAX_ITERATIONS)
				return false;
		}
	}
	return true;
}

static void check_user(const struct passwd_db *db, const uint8_t *user, size_t ulen)
{
	static const uint8_t pw[] = "secret";
	enum tern_err rc[3];
	rc[0] = passwd_check(db, user, ulen, pw, sizeof(pw) - 1);
	rc[1] = passwd_check(db, user, ulen, pw, 0);
	rc[2] = passwd_check(db, user, ulen, NULL, 0);
	for (int i = 0; i < 3; i++)
		if (rc[i] != TERN_OK && rc[i] != TERN_E_INVALID && rc[i] != TERN_E_NOT_FOUND &&
		    rc[i] != TERN_E_SYS)
			abort();
	/* No password never authenticates; an unknown user is unknown
	 * whatever the password. */
	if (rc[2] == TERN_OK || (rc[0] == TERN_E_NOT_FOUND) != (rc[2] == TERN_E_NOT_FOUND))
		abort();
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	char path[64];
	fuzz_memfd_path(data, size, path, sizeof(path));

	struct passwd_db *db = (struct passwd_db *)1;
	char err[256];
	enum tern_err rc = passwd_load(path, &db, err, sizeof(err));
	if (rc != TERN_OK) {
		if (db != NULL || strlen(err) >= sizeof(err))
			abort();
		return 0;
	}
	(void)passwd_count(db);
	if (cheap_to_check(data, size)) {
		static const char *fixed[] = {"alice", "bob", ""};
		for (size_t i = 0; i < sizeof(fixed) / sizeof(fixed[0]); i++)
			check_user(db, (const uint8_t *)fixed[i], strlen(fixed[i]));
		/* The user names of the input, one per line. */
		size_t line = 0, users = 0;
		while (line < size && users < MAX_USERS) {
			const uint8_t *nl = memchr(data + line, '\n', size - line);
			size_t end = nl ? (size_t)(nl - data) : size;
			const uint8_t *colon = memchr(data + line, ':', end - line);
			if (colon) {
				check_user(db, data + line, (size_t)(colon - (data + line)));
				users++;
			}
			line = end + 1;
		}
	}
	passwd_free(db);
	return 0;
}
