/*
 * test_passwd.c - unit tests of mosquitto's password file
 * (src/auth/passwd.c).
 *
 * tests/unit/data/mosquitto.passwd was written by the real mosquitto_passwd
 * 2.0.11 (Debian), with the passwords listed in fixture_users below:
 *   mosquitto_passwd -c -b F alice 'alice-secret'
 *   mosquitto_passwd -b F bob 'p@ss:word with spaces'
 *   mosquitto_passwd -H sha512 -b F carol 'old-style'          ($6$)
 *   mosquitto_passwd -b F dave ''                               (empty)
 *   mosquitto_passwd -I 1000 -b F erin 'thousand'
 *   mosquitto_passwd -b F 'frank ünïcode' 'пароль'
 * The hash vectors were computed independently with Python's hashlib
 * (pbkdf2_hmac('sha512', pw, salt, n, 64) and sha512(pw + salt)) for the
 * salt 00 01 .. 0b. When mosquitto_passwd is installed, one test also runs
 * it at test time.
 */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <openssl/evp.h>

#include "auth/passwd.h"

#define FIXTURE TERN_TEST_DATA "/mosquitto.passwd"

struct user_pw {
	const char *user;
	const char *pw;
};

static const struct user_pw fixture_users[] = {
        {"alice", "alice-secret"},
        {"bob", "p@ss:word with spaces"},
        {"carol", "old-style"},
        {"dave", ""},
        {"erin", "thousand"},
        {"frank \xc3\xbc"
         "n\xc3\xaf"
         "code",
         "\xd0\xbf\xd0\xb0\xd1\x80\xd0\xbe\xd0\xbb\xd1\x8c"},
};

static const uint8_t *U(const char *s)
{
	return (const uint8_t *)s;
}

static enum tern_err check(const struct passwd_db *db, const char *user, const char *pw)
{
	return passwd_check(db, U(user), strlen(user), pw ? U(pw) : NULL, pw ? strlen(pw) : 0);
}

/* Writes content (len bytes) to a new temporary file; returns its path
 * (static buffer, one at a time). */
static const char *write_tmp(const char *content, size_t len)
{
	static char path[64];
	snprintf(path, sizeof(path), "/tmp/tern_test_passwd_XXXXXX");
	int fd = mkstemp(path);
	assert_true(fd >= 0);
	assert_int_equal(write(fd, content, len), (ssize_t)len);
	close(fd);
	return path;
}

static enum tern_err load_str(const char *content, struct passwd_db **db, char *err, size_t errlen)
{
	const char *path = write_tmp(content, strlen(content));
	enum tern_err rc = passwd_load(path, db, err, errlen);
	unlink(path);
	return rc;
}

static void test_mosquitto_passwd_fixture_is_accepted(void **state)
{
	(void)state;
	struct passwd_db *db = NULL;
	char err[256] = "";
	assert_int_equal(passwd_load(FIXTURE, &db, err, sizeof(err)), TERN_OK);
	assert_non_null(db);
	assert_int_equal(passwd_count(db), 6);
	for (size_t i = 0; i < sizeof(fixture_users) / sizeof(fixture_users[0]); i++)
		assert_int_equal(check(db, fixture_users[i].user, fixture_users[i].pw), TERN_OK);
	passwd_free(db);
}

static void test_wrong_password_is_invalid(void **state)
{
	(void)state;
	struct passwd_db *db = NULL;
	assert_int_equal(passwd_load(FIXTURE, &db, NULL, 0), TERN_OK);
	assert_int_equal(check(db, "alice", "alice-secreT"), TERN_E_INVALID);
	assert_int_equal(check(db, "alice", "alice-secret "), TERN_E_INVALID);
	assert_int_equal(check(db, "alice", ""), TERN_E_INVALID);
	/* mosquitto's broker would stop at the ':' only when reading a
	 * plain-text file; a hashed password keeps it. */
	assert_int_equal(check(db, "bob", "p@ss"), TERN_E_INVALID);
	assert_int_equal(check(db, "carol", "old-stylE"), TERN_E_INVALID);
	assert_int_equal(check(db, "dave", "x"), TERN_E_INVALID);
	assert_int_equal(check(db, "erin", "thousand\n"), TERN_E_INVALID);
	/* Another user's password. */
	assert_int_equal(check(db, "bob", "alice-secret"), TERN_E_INVALID);
	/* A password with an embedded NUL is not cut at the NUL. */
	assert_int_equal(passwd_check(db, U("alice"), 5, U("alice-secret\0x"), 14), TERN_E_INVALID);
	passwd_free(db);
}

static void test_missing_password_field_never_authenticates(void **state)
{
	(void)state;
	struct passwd_db *db = NULL;
	assert_int_equal(passwd_load(FIXTURE, &db, NULL, 0), TERN_OK);
	/* dave's password is empty, but a CONNECT without the password field
	 * is still refused (mosquitto: a user needs a password). */
	assert_int_equal(check(db, "dave", NULL), TERN_E_INVALID);
	assert_int_equal(check(db, "dave", ""), TERN_OK);
	assert_int_equal(check(db, "alice", NULL), TERN_E_INVALID);
	assert_int_equal(check(db, "nobody", NULL), TERN_E_NOT_FOUND);
	passwd_free(db);
}

static void test_unknown_user_is_not_found(void **state)
{
	(void)state;
	struct passwd_db *db = NULL;
	assert_int_equal(passwd_load(FIXTURE, &db, NULL, 0), TERN_OK);
	assert_int_equal(check(db, "mallory", "alice-secret"), TERN_E_NOT_FOUND);
	assert_int_equal(check(db, "alic", "alice-secret"), TERN_E_NOT_FOUND);
	assert_int_equal(check(db, "alice2", "alice-secret"), TERN_E_NOT_FOUND);
	assert_int_equal(check(db, "Alice", "alice-secret"), TERN_E_NOT_FOUND);
	assert_int_equal(check(db, "", ""), TERN_E_NOT_FOUND);
	assert_int_equal(check(db, "frank", "\xd0\xbf"), TERN_E_NOT_FOUND);
	passwd_free(db);
}

/* Every PBKDF2 the module runs, seen through the linker (--wrap, see
 * tests/CMakeLists.txt): how many, and the iteration count of the last. A
 * count, not a clock, so the test says the same on a loaded machine. */
static int pbkdf2_calls;
static int pbkdf2_last_iter;

int __real_PKCS5_PBKDF2_HMAC(const char *pass, int passlen, const unsigned char *salt, int saltlen,
                             int iter, const EVP_MD *digest, int keylen, unsigned char *out);
int __wrap_PKCS5_PBKDF2_HMAC(const char *pass, int passlen, const unsigned char *salt, int saltlen,
                             int iter, const EVP_MD *digest, int keylen, unsigned char *out);
int __wrap_PKCS5_PBKDF2_HMAC(const char *pass, int passlen, const unsigned char *salt, int saltlen,
                             int iter, const EVP_MD *digest, int keylen, unsigned char *out)
{
	pbkdf2_calls++;
	pbkdf2_last_iter = iter;
	return __real_PKCS5_PBKDF2_HMAC(pass, passlen, salt, saltlen, iter, digest, keylen, out);
}

static void test_unknown_user_costs_a_hash_too(void **state)
{
	(void)state;
	/* An unknown user must cost what the most expensive entry costs (the
	 * dummy uses the largest iteration count), not return at once, so the
	 * answer's timing does not tell which user names exist. */
	char slow[PASSWD_HASH_STR_MAX + 16] = "slow:";
	assert_int_equal(passwd_hash(U("pw"), 2, 20000, slow + 5, sizeof(slow) - 5), TERN_OK);
	char fast[PASSWD_HASH_STR_MAX + 16] = "fast:";
	assert_int_equal(passwd_hash(U("pw"), 2, 1000, fast + 5, sizeof(fast) - 5), TERN_OK);
	char text[2 * PASSWD_HASH_STR_MAX + 40];
	snprintf(text, sizeof(text), "%s\n%s\n", fast, slow);
	struct passwd_db *db = NULL;
	assert_int_equal(load_str(text, &db, NULL, 0), TERN_OK);

	pbkdf2_calls = 0;
	assert_int_equal(check(db, "slow", "wrong"), TERN_E_INVALID);
	assert_int_equal(pbkdf2_calls, 1);
	assert_int_equal(pbkdf2_last_iter, 20000);

	pbkdf2_calls = 0;
	assert_int_equal(check(db, "ghost", "wrong"), TERN_E_NOT_FOUND);
	assert_int_equal(pbkdf2_calls, 1);
	assert_int_equal(pbkdf2_last_iter, 20000);

	pbkdf2_calls = 0;
	assert_int_equal(check(db, "fast", "pw"), TERN_OK);
	assert_int_equal(pbkdf2_calls, 1);
	assert_int_equal(pbkdf2_last_iter, 1000);
	passwd_free(db);
}

static void test_independent_hash_vectors(void **state)
{
	(void)state;
	static const char *v7_101 =
	        "$7$101$AAECAwQFBgcICQoL$lp0Cm29zl+CI/RXyXDKvLye7OxM3OuE6RMzgXTX/"
	        "f3imS/pFh2Ur7yarLDpKRUKpB0tOj6l0UrRv41zqxmD4tg==";
	static const char *v7_1 = "$7$1$AAECAwQFBgcICQoL$CYfNG9gXTtMjRdqwXMqr1YhW73fSe+"
	                          "XbZq8ppCdFyJ9eyAL+sEilQGrc+a4l4SUjcJll7hpdFanmbV0dYFlRkA==";
	static const char *v6 =
	        "$6$AAECAwQFBgcICQoL$5W8GCQ9GLgmhmQvoa8jmRaPnsh82mRigdSv6mQsK0sMIII/"
	        "WznlQb1g+RWddfoAKTMzBJP1deJU+Rp/1QZ0zZg==";
	const uint8_t *pw = U("correct horse");
	assert_int_equal(passwd_verify_string(v7_101, pw, 13, NULL, 0), TERN_OK);
	assert_int_equal(passwd_verify_string(v7_1, pw, 13, NULL, 0), TERN_OK);
	assert_int_equal(passwd_verify_string(v6, pw, 13, NULL, 0), TERN_OK);
	assert_int_equal(passwd_verify_string(v7_101, pw, 12, NULL, 0), TERN_E_INVALID);
	assert_int_equal(passwd_verify_string(v6, U("correct horsE"), 13, NULL, 0), TERN_E_INVALID);
	/* The iteration count is part of the hash. */
	char swapped[200];
	snprintf(swapped, sizeof(swapped), "$7$102%s", v7_101 + 6);
	assert_int_equal(passwd_verify_string(swapped, pw, 13, NULL, 0), TERN_E_INVALID);
}

static void test_comments_blank_lines_crlf_and_blanks_are_accepted(void **state)
{
	(void)state;
	char hash[PASSWD_HASH_STR_MAX];
	assert_int_equal(passwd_hash(U("pw"), 2, 3, hash, sizeof(hash)), TERN_OK);
	char content[1024];
	snprintf(content, sizeof(content),
	         "# a comment\n"
	         "\n"
	         "   \t\n"
	         "#alice:not-a-hash\n"
	         "  spaced  : %s  \r\n"
	         "crlf:%s\r\n"
	         "last:%s",
	         hash, hash, hash);
	struct passwd_db *db = NULL;
	char err[256] = "";
	assert_int_equal(load_str(content, &db, err, sizeof(err)), TERN_OK);
	assert_int_equal(passwd_count(db), 3);
	assert_int_equal(check(db, "spaced", "pw"), TERN_OK);
	assert_int_equal(check(db, "crlf", "pw"), TERN_OK);
	assert_int_equal(check(db, "last", "pw"), TERN_OK);
	assert_int_equal(check(db, "#alice", "pw"), TERN_E_NOT_FOUND);
	passwd_free(db);
}

static void test_empty_file_has_no_users(void **state)
{
	(void)state;
	struct passwd_db *db = NULL;
	assert_int_equal(load_str("", &db, NULL, 0), TERN_OK);
	assert_int_equal(passwd_count(db), 0);
	assert_int_equal(check(db, "alice", "x"), TERN_E_NOT_FOUND);
	passwd_free(db);
	passwd_free(NULL);
}

/* Each malformed line must fail the load with "path:LINE: reason". */
static void test_malformed_lines_fail_with_file_and_line(void **state)
{
	(void)state;
	static const char good[] =
	        "$7$101$AAECAwQFBgcICQoL$lp0Cm29zl+CI/RXyXDKvLye7OxM3OuE6RMzgXTX/"
	        "f3imS/pFh2Ur7yarLDpKRUKpB0tOj6l0UrRv41zqxmD4tg==";
	static const struct {
		const char *line;
		const char *why;
	} cases[] = {
	        {"no colon here", "no ':'"},
	        {":$7$1$AAECAwQFBgcICQoL$x", "empty user name"},
	        {"   :abc", "empty user name"},
	        {"user:", "no password hash"},
	        {"user:   ", "no password hash"},
	        {"user:plaintext", "unknown password hash type"},
	        {"user:$5$AAECAwQFBgcICQoL$xx", "unknown password hash type"},
	        {"user:$7$$AAECAwQFBgcICQoL$xx", "iteration"},
	        {"user:$7$0$AAECAwQFBgcICQoL$xx", "iteration"},
	        {"user:$7$-5$AAECAwQFBgcICQoL$xx", "iteration"},
	        {"user:$7$99999999999$AAECAwQFBgcICQoL$xx", "iteration"},
	        {"user:$7$12a$AAECAwQFBgcICQoL$xx", "iteration"},
	        {"user:$7$101$AAECAwQFBgcICQoL", "missing '$'"},
	        {"user:$7$101$AAECAwQFBgc=$lp0C", "salt"},
	        {"user:$7$101$AAECAwQFBgcI*QoL$lp0C", "salt"},
	        {"user:$7$101$AAECAwQFBgcICQoL$lp0Cm29z", "hash"},
	        {"user:$6$AAECAwQFBgcICQoL$abc$def", "hash"},
	        {"user:$6$AAECAwQFBgcICQoL", "missing '$'"},
	        {"user:$6$AAECAwQFBgcICQoL$lp0Cm29z:extra", "unexpected ':'"},
	};
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		char content[512];
		/* The bad line is line 3, after a comment and a good entry. */
		snprintf(content, sizeof(content), "# ok\nfine:%s\n%s\nlater:%s\n", good,
		         cases[i].line, good);
		const char *path = write_tmp(content, strlen(content));
		struct passwd_db *db = (struct passwd_db *)0x1;
		char err[256] = "";
		enum tern_err rc = passwd_load(path, &db, err, sizeof(err));
		char want[128];
		snprintf(want, sizeof(want), "%s:3: ", path);
		if (rc != TERN_E_CONFIG || strncmp(err, want, strlen(want)) != 0 ||
		    !strstr(err, cases[i].why))
			fail_msg("line '%s': rc %d, err '%s' (want '%s...%s')", cases[i].line, rc,
			         err, want, cases[i].why);
		assert_null(db);
		unlink(path);
	}
}

static void test_duplicate_user_and_nul_byte_are_errors(void **state)
{
	(void)state;
	char hash[PASSWD_HASH_STR_MAX];
	assert_int_equal(passwd_hash(U("pw"), 2, 2, hash, sizeof(hash)), TERN_OK);
	char content[1024];
	snprintf(content, sizeof(content), "a:%s\nb:%s\n\na:%s\n", hash, hash, hash);
	struct passwd_db *db = NULL;
	char err[256] = "";
	assert_int_equal(load_str(content, &db, err, sizeof(err)), TERN_E_CONFIG);
	assert_non_null(strstr(err, ":4: user 'a' is already defined at line 1"));
	assert_null(db);

	int n = snprintf(content, sizeof(content), "a:%s\nb!c:%s\n", hash, hash);
	*strchr(content, '!') = '\0';
	const char *path = write_tmp(content, (size_t)n);
	assert_int_equal(passwd_load(path, &db, err, sizeof(err)), TERN_E_CONFIG);
	assert_non_null(strstr(err, ":2: NUL byte"));
	unlink(path);
}

static void test_unreadable_file_names_the_path(void **state)
{
	(void)state;
	struct passwd_db *db = (struct passwd_db *)0x1;
	char err[256] = "";
	assert_int_equal(passwd_load("/nonexistent/tern/pw", &db, err, sizeof(err)), TERN_E_SYS);
	assert_null(db);
	assert_non_null(strstr(err, "/nonexistent/tern/pw: "));
	/* No error buffer is fine too. */
	assert_int_equal(passwd_load("/nonexistent/tern/pw", &db, NULL, 0), TERN_E_SYS);
}

static void test_hash_round_trip(void **state)
{
	(void)state;
	char h1[PASSWD_HASH_STR_MAX], h2[PASSWD_HASH_STR_MAX];
	assert_int_equal(passwd_hash(U("s3cret"), 6, PASSWD_DEFAULT_ITERATIONS, h1, sizeof(h1)),
	                 TERN_OK);
	assert_int_equal(passwd_hash(U("s3cret"), 6, PASSWD_DEFAULT_ITERATIONS, h2, sizeof(h2)),
	                 TERN_OK);
	/* mosquitto's shape: $7$101$ + 16 chars of salt + $ + 88 of hash. */
	assert_int_equal(strncmp(h1, "$7$101$", 7), 0);
	assert_int_equal(strlen(h1), 7 + 16 + 1 + 88);
	assert_int_equal(h1[7 + 16], '$');
	/* A fresh salt each time. */
	assert_int_not_equal(memcmp(h1 + 7, h2 + 7, 16), 0);
	assert_int_equal(passwd_verify_string(h1, U("s3cret"), 6, NULL, 0), TERN_OK);
	assert_int_equal(passwd_verify_string(h2, U("s3cret"), 6, NULL, 0), TERN_OK);
	assert_int_equal(passwd_verify_string(h1, U("s3creT"), 6, NULL, 0), TERN_E_INVALID);

	/* Through a file, with other iteration counts and the $6$ format. */
	char h3[PASSWD_HASH_STR_MAX], h4[PASSWD_HASH_STR_MAX], h5[PASSWD_HASH_STR_MAX];
	assert_int_equal(passwd_hash(U(""), 0, 1, h3, sizeof(h3)), TERN_OK);
	assert_int_equal(strncmp(h3, "$7$1$", 5), 0);
	assert_int_equal(passwd_hash_sha512(U("legacy"), 6, h4, sizeof(h4)), TERN_OK);
	assert_int_equal(strncmp(h4, "$6$", 3), 0);
	assert_int_equal(strlen(h4), 3 + 16 + 1 + 88);
	uint8_t bin[256];
	for (size_t i = 0; i < sizeof(bin); i++)
		bin[i] = (uint8_t)i;
	assert_int_equal(passwd_hash(bin, sizeof(bin), 50, h5, sizeof(h5)), TERN_OK);
	char content[1024];
	snprintf(content, sizeof(content), "u1:%s\nu2:%s\nu3:%s\nu4:%s\n", h1, h3, h4, h5);
	struct passwd_db *db = NULL;
	assert_int_equal(load_str(content, &db, NULL, 0), TERN_OK);
	assert_int_equal(check(db, "u1", "s3cret"), TERN_OK);
	assert_int_equal(check(db, "u2", ""), TERN_OK);
	assert_int_equal(check(db, "u2", " "), TERN_E_INVALID);
	assert_int_equal(check(db, "u3", "legacy"), TERN_OK);
	assert_int_equal(check(db, "u3", "legacY"), TERN_E_INVALID);
	assert_int_equal(passwd_check(db, U("u4"), 2, bin, sizeof(bin)), TERN_OK);
	assert_int_equal(passwd_check(db, U("u4"), 2, bin, sizeof(bin) - 1), TERN_E_INVALID);
	passwd_free(db);
}

static void test_hash_rejects_bad_arguments(void **state)
{
	(void)state;
	char h[PASSWD_HASH_STR_MAX];
	assert_int_equal(passwd_hash(U("x"), 1, 0, h, sizeof(h)), TERN_E_INVALID);
	assert_int_equal(passwd_hash(U("x"), 1, -3, h, sizeof(h)), TERN_E_INVALID);
	char small[40] = "junk";
	assert_int_equal(passwd_hash(U("x"), 1, 101, small, sizeof(small)), TERN_E_BUFFER);
	assert_string_equal(small, "");
	assert_int_equal(passwd_hash_sha512(U("x"), 1, small, sizeof(small)), TERN_E_BUFFER);
	char err[128] = "";
	assert_int_equal(passwd_verify_string("$7$101$short", U("x"), 1, err, sizeof(err)),
	                 TERN_E_CONFIG);
	assert_true(err[0] != '\0');
	/* The largest iteration count still fits PASSWD_HASH_STR_MAX. */
	assert_int_equal(passwd_hash(U("x"), 1, 1, h, sizeof(h)), TERN_OK);
	assert_true(strlen(h) + 9 < PASSWD_HASH_STR_MAX);
}

static void test_file_from_mosquitto_passwd_at_test_time(void **state)
{
	(void)state;
	const char *tool = "/usr/bin/mosquitto_passwd";
	if (access(tool, X_OK) != 0) {
		print_message("SKIP: %s is not installed (Debian package mosquitto)\n", tool);
		skip();
	}
	char path[] = "/tmp/tern_test_mpw_XXXXXX";
	int fd = mkstemp(path);
	assert_true(fd >= 0);
	close(fd);
	char pw[32];
	snprintf(pw, sizeof(pw), "pw-%ld-%d", (long)time(NULL), (int)getpid());
	char cmd[512];
	snprintf(cmd, sizeof(cmd),
	         "%s -c -b %s runtime '%s' && %s -b %s other 'x y' && "
	         "%s -H sha512 -b %s old '%s'",
	         tool, path, pw, tool, path, tool, path, pw);
	int st = system(cmd);
	assert_true(WIFEXITED(st) && WEXITSTATUS(st) == 0);
	struct passwd_db *db = NULL;
	char err[256] = "";
	assert_int_equal(passwd_load(path, &db, err, sizeof(err)), TERN_OK);
	assert_int_equal(passwd_count(db), 3);
	assert_int_equal(check(db, "runtime", pw), TERN_OK);
	assert_int_equal(check(db, "other", "x y"), TERN_OK);
	assert_int_equal(check(db, "old", pw), TERN_OK);
	assert_int_equal(check(db, "runtime", "x y"), TERN_E_INVALID);
	passwd_free(db);
	unlink(path);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	        cmocka_unit_test(test_mosquitto_passwd_fixture_is_accepted),
	        cmocka_unit_test(test_wrong_password_is_invalid),
	        cmocka_unit_test(test_missing_password_field_never_authenticates),
	        cmocka_unit_test(test_unknown_user_is_not_found),
	        cmocka_unit_test(test_unknown_user_costs_a_hash_too),
	        cmocka_unit_test(test_independent_hash_vectors),
	        cmocka_unit_test(test_comments_blank_lines_crlf_and_blanks_are_accepted),
	        cmocka_unit_test(test_empty_file_has_no_users),
	        cmocka_unit_test(test_malformed_lines_fail_with_file_and_line),
	        cmocka_unit_test(test_duplicate_user_and_nul_byte_are_errors),
	        cmocka_unit_test(test_unreadable_file_names_the_path),
	        cmocka_unit_test(test_hash_round_trip),
	        cmocka_unit_test(test_hash_rejects_bad_arguments),
	        cmocka_unit_test(test_file_from_mosquitto_passwd_at_test_time),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
