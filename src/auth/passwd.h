/*
 * auth/passwd.h - mosquitto's password file: load, check, hash.
 *
 * The file is mosquitto's (mosquitto_passwd(1), mosquitto.conf(5)
 * password_file), one user a line:
 *
 *   user:$7$ITERATIONS$SALT$HASH   PBKDF2-HMAC-SHA512 (mosquitto >= 2.0)
 *   user:$6$SALT$HASH              SHA-512(password || salt) (mosquitto <= 1.6)
 *
 * SALT is 12 bytes and HASH 64 bytes, both in standard base64 with padding
 * ("+/="). mosquitto_passwd writes 101 iterations by default. Lines that
 * are empty (or only blanks) and lines whose first character is '#' are
 * ignored, as the broker does. Anything else that does not parse - no ':',
 * an empty user name, an unknown hash type, bad base64, a salt or hash of
 * the wrong size, a user listed twice - makes passwd_load() fail with
 * "FILE:LINE: why", where mosquitto would log a warning and drop the entry:
 * a half-loaded password file is a configuration error, not a degraded mode.
 *
 * A loaded struct passwd_db is immutable, so any number of threads may call
 * passwd_check() on it at once. Reloading (SIGHUP) is passwd_load() of a new
 * db and a swap; the old one is freed once no thread uses it.
 */
#ifndef TERN_AUTH_PASSWD_H
#define TERN_AUTH_PASSWD_H

#include <stddef.h>
#include <stdint.h>

#include "tern/error.h"

/* mosquitto_passwd's default PBKDF2 iteration count (PW_DEFAULT_ITERATIONS
 * in mosquitto 2.0; checked against the real tool). */
#define PASSWD_DEFAULT_ITERATIONS 101

/* Salt and hash sizes of both formats, in bytes (before base64). */
#define PASSWD_SALT_LEN 12
#define PASSWD_HASH_LEN 64

/* Room for one "$7$ITER$SALT$HASH" string with its NUL: 3 + 10 + 1 + 16 +
 * 1 + 88 + 1, rounded up. */
#define PASSWD_HASH_STR_MAX 128

/* Longest user name accepted in a file (an MQTT string's limit). */
#define PASSWD_USER_MAX 65535

/* An immutable set of users and their password hashes. */
struct passwd_db;

/*
 * Reads the password file at path into a new db, stored in *out (which the
 * caller then owns and frees with passwd_free()). On failure *out is set
 * to NULL and, when err is not NULL, a NUL-terminated message of at most
 * errlen bytes is written to err: "path: why" when the file cannot be read,
 * "path:LINE: why" for a bad line. An empty file (or one with only comments)
 * is a valid db with no users.
 * Returns TERN_OK, TERN_E_CONFIG (bad content), TERN_E_SYS (open/read
 * failed; errno is kept) or TERN_E_NOMEM.
 */
TERN_MUST_CHECK enum tern_err passwd_load(const char *path, struct passwd_db **out, char *err,
                                          size_t errlen);

/* Frees db and everything in it (the hashes are wiped first). NULL is a
 * no-op. */
void passwd_free(struct passwd_db *db);

/* Number of users in db. */
size_t passwd_count(const struct passwd_db *db);

/*
 * Checks the user name and password a client sent in CONNECT against db
 * (NULL: every check fails with TERN_E_INVALID). Neither
 * buffer needs to be NUL-terminated nor outlive the call; pw == NULL means
 * the CONNECT had no password field, which never authenticates (as in
 * mosquitto: a user needs a password), while pw != NULL with pwlen == 0 is
 * the empty password.
 * The hash comparison runs in constant time, and an unknown user costs the
 * same hashing as a known one (a dummy entry with the db's largest
 * iteration count is hashed), so the answer time does not tell which user
 * names exist.
 * Returns TERN_OK when the password is right, TERN_E_NOT_FOUND when there
 * is no such user, TERN_E_INVALID when the password is wrong (or missing),
 * TERN_E_SYS if the hash could not be computed. Anything but TERN_OK means
 * "refuse".
 */
TERN_MUST_CHECK enum tern_err passwd_check(const struct passwd_db *db, const uint8_t *user,
                                           size_t ulen, const uint8_t *pw, size_t pwlen);

/*
 * Hashes pw (len bytes) with PBKDF2-HMAC-SHA512, iterations rounds and a
 * fresh random 12-byte salt (RAND_bytes), and writes the NUL-terminated
 * "$7$ITERATIONS$SALT$HASH" string - the part after "user:" of a password
 * file line - to out. PASSWD_HASH_STR_MAX bytes of out are always enough.
 * Returns TERN_OK, TERN_E_INVALID (iterations < 1), TERN_E_BUFFER (outlen
 * too small; out is then an empty string if outlen > 0) or TERN_E_SYS (no
 * randomness or the hash failed).
 */
TERN_MUST_CHECK enum tern_err passwd_hash(const uint8_t *pw, size_t len, int iterations, char *out,
                                          size_t outlen);

/*
 * As passwd_hash() but in the old "$6$SALT$HASH" format (one round of
 * SHA-512 over password and salt), for `tern passwd -H sha512`: only for
 * brokers that predate mosquitto 2.0, as it is fast to brute-force.
 * Returns as passwd_hash() (without TERN_E_INVALID).
 */
TERN_MUST_CHECK enum tern_err passwd_hash_sha512(const uint8_t *pw, size_t len, char *out,
                                                 size_t outlen);

/*
 * Parses one hash string ("$7$..." or "$6$...", the part after "user:")
 * and checks pw against it, as passwd_check() does for a user's entry.
 * For tools and tests; the broker uses passwd_check().
 * Returns TERN_OK (match), TERN_E_INVALID (no match), TERN_E_CONFIG (the
 * string is not a valid hash; a reason is written to err if not NULL) or
 * TERN_E_SYS (the hash could not be computed; err says so too).
 */
TERN_MUST_CHECK enum tern_err passwd_verify_string(const char *hash, const uint8_t *pw,
                                                   size_t pwlen, char *err, size_t errlen);

#endif
