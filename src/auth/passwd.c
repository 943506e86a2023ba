/*
 * auth/passwd.c - mosquitto's password file (see passwd.h for the format).
 *
 * Loading reads the file line by line (getline, so no line length limit
 * other than memory), decodes every entry up front - type, iterations,
 * salt and hash as bytes - and keeps the entries in an array sorted by user
 * name, so a check is a binary search plus one hash computation, with no
 * parsing or allocation on the CONNECT path.
 *
 * Timing. A check must not tell an attacker which user names exist, nor
 * how much of a hash matched. The comparison is CRYPTO_memcmp over the
 * full 64 bytes. For an unknown user the same work is done against a dummy
 * entry (random salt and hash, the largest iteration count in the file),
 * whose result is thrown away. What remains observable is the iteration
 * count of the user's own entry, which the file's author chose.
 *
 * The broker (mosquitto 2.0.11, src/security_default.c) is lenient: it skips
 * lines without ':' and drops entries it cannot decode with a log line.
 * Here both are load errors naming file and line, so a typo can never lock
 * a user out (or keep one in) silently. Comment lines ('#' first) and blank
 * lines are accepted as the broker accepts them (mosquitto_passwd itself
 * refuses them, but keeps working on files it wrote).
 */
#include "auth/passwd.h"

#include <errno.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/rand.h>

enum pw_type {
	PW_SHA512 = 6,        /* $6$ */
	PW_SHA512_PBKDF2 = 7, /* $7$ */
};

struct pw_entry {
	uint8_t *user; /* not NUL-terminated; owned */
	size_t ulen;
	enum pw_type type;
	int iterations; /* $7$ only */
	uint8_t salt[PASSWD_SALT_LEN];
	uint8_t hash[PASSWD_HASH_LEN];
	size_t line; /* for duplicate reports */
};

struct passwd_db {
	struct pw_entry *e; /* sorted by user name */
	size_t n;
	struct pw_entry dummy; /* hashed for unknown users; user == NULL */
};

/* ---- errors ---- */

static void set_err(char *err, size_t errlen, const char *fmt, ...)
        __attribute__((format(printf, 3, 4)));

static void set_err(char *err, size_t errlen, const char *fmt, ...)
{
	if (!err || errlen == 0)
		return;
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(err, errlen, fmt, ap);
	va_end(ap);
}

/* Copies at most 64 bytes of a user name into out (>= 68 bytes) for an
 * error message, with control bytes shown as '?'. */
static const char *printable(const uint8_t *s, size_t len, char *out)
{
	size_t n = len > 64 ? 64 : len, i;
	for (i = 0; i < n; i++)
		out[i] = (s[i] < 0x20 || s[i] == 0x7f) ? '?' : (char)s[i];
	if (len > n) {
		memcpy(out + n, "...", 3);
		n += 3;
	}
	out[n] = '\0';
	return out;
}

/* ---- base64 (RFC 4648, standard alphabet, padded), strict ---- */

static const char b64_chars[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";

static int b64_val(unsigned char c)
{
	if (c >= 'A' && c <= 'Z')
		return c - 'A';
	if (c >= 'a' && c <= 'z')
		return c - 'a' + 26;
	if (c >= '0' && c <= '9')
		return c - '0' + 52;
	if (c == '+')
		return 62;
	if (c == '/')
		return 63;
	return -1;
}

/* Decodes exactly want bytes from s[0..len); false if s is not the
 * canonical padded encoding of want bytes. */
static bool b64_decode_exact(const char *s, size_t len, uint8_t *out, size_t want)
{
	if (len != 4 * ((want + 2) / 3))
		return false;
	size_t o = 0;
	for (size_t i = 0; i < len; i += 4) {
		int v[4];
		int pad = 0;
		for (int k = 0; k < 4; k++) {
			unsigned char c = (unsigned char)s[i + k];
			if (c == '=' && i + 4 == len && k >= 2) {
				v[k] = 0;
				pad++;
				continue;
			}
			if (pad)
				return false; /* data after '=' */
			v[k] = b64_val(c);
			if (v[k] < 0)
				return false;
		}
		uint32_t w = ((uint32_t)v[0] << 18) | ((uint32_t)v[1] << 12) |
		             ((uint32_t)v[2] << 6) | (uint32_t)v[3];
		uint8_t b[3] = {(uint8_t)(w >> 16), (uint8_t)(w >> 8), (uint8_t)w};
		int nb = 3 - pad;
		for (int k = 0; k < nb; k++) {
			if (o == want)
				return false;
			out[o++] = b[k];
		}
		/* Non-canonical: bits below the padding must be zero. */
		if ((pad == 1 && (w & 0xff)) || (pad == 2 && (w & 0xffff)))
			return false;
	}
	return o == want;
}

/* Writes the padded encoding of in[0..len) and a NUL; out must hold
 * 4 * ((len + 2) / 3) + 1 bytes. */
static void b64_encode(const uint8_t *in, size_t len, char *out)
{
	size_t o = 0;
	for (size_t i = 0; i < len; i += 3) {
		uint32_t w = (uint32_t)in[i] << 16;
		if (i + 1 < len)
			w |= (uint32_t)in[i + 1] << 8;
		if (i + 2 < len)
			w |= in[i + 2];
		out[o++] = b64_chars[(w >> 18) & 63];
		out[o++] = b64_chars[(w >> 12) & 63];
		out[o++] = i + 1 < len ? b64_chars[(w >> 6) & 63] : '=';
		out[o++] = i + 2 < len ? b64_chars[w & 63] : '=';
	}
	out[o] = '\0';
}

/* ---- hashing ---- */

/* Computes the 64-byte hash of pw under e's type, salt and iterations.
 * TERN_E_SYS when OpenSSL fails (or pw is longer than it takes). */
static TERN_MUST_CHECK enum tern_err compute(const struct pw_entry *e, const uint8_t *pw,
                                             size_t len, uint8_t out[PASSWD_HASH_LEN])
{
	static const uint8_t empty[1] = {0};
	if (len > (size_t)INT32_MAX)
		return TERN_E_SYS;
	if (!pw)
		pw = empty;
	if (e->type == PW_SHA512_PBKDF2)
		return PKCS5_PBKDF2_HMAC((const char *)pw, (int)len, e->salt, PASSWD_SALT_LEN,
		                         e->iterations, EVP_sha512(), PASSWD_HASH_LEN, out) == 1
		               ? TERN_OK
		               : TERN_E_SYS;

	EVP_MD_CTX *ctx = EVP_MD_CTX_new();
	unsigned int n = 0;
	bool ok = ctx && EVP_DigestInit_ex(ctx, EVP_sha512(), NULL) == 1 &&
	          EVP_DigestUpdate(ctx, pw, len) == 1 &&
	          EVP_DigestUpdate(ctx, e->salt, PASSWD_SALT_LEN) == 1 &&
	          EVP_DigestFinal_ex(ctx, out, &n) == 1 && n == PASSWD_HASH_LEN;
	EVP_MD_CTX_free(ctx);
	return ok ? TERN_OK : TERN_E_SYS;
}

/*
 * Parses "$7$ITER$SALT$HASH" or "$6$SALT$HASH" (s[0..len), no NUL needed)
 * into e's type, iterations, salt and hash. On failure writes why to
 * why[0..whylen) and returns false.
 */
static bool parse_hash(const char *s, size_t len, struct pw_entry *e, char *why, size_t whylen)
{
	const char *end = s + len, *p;
	if (len < 3 || s[0] != '$' || (s[1] != '6' && s[1] != '7') || s[2] != '$') {
		set_err(why, whylen, "unknown password hash type (expected $7$ or $6$)");
		return false;
	}
	e->type = s[1] == '7' ? PW_SHA512_PBKDF2 : PW_SHA512;
	p = s + 3;
	e->iterations = 0;
	if (e->type == PW_SHA512_PBKDF2) {
		long long it = 0;
		const char *d = p;
		while (p < end && *p >= '0' && *p <= '9') {
			it = it * 10 + (*p - '0');
			if (it > INT32_MAX) {
				set_err(why, whylen, "iteration count too large");
				return false;
			}
			p++;
		}
		if (p == d || p == end || *p != '$' || it < 1) {
			set_err(why, whylen, "bad iteration count (a number >= 1 expected)");
			return false;
		}
		e->iterations = (int)it;
		p++;
	}
	const char *salt = p;
	const char *dollar = memchr(p, '$', (size_t)(end - p));
	if (!dollar) {
		set_err(why, whylen, "missing '$' between salt and hash");
		return false;
	}
	if (!b64_decode_exact(salt, (size_t)(dollar - salt), e->salt, PASSWD_SALT_LEN)) {
		set_err(why, whylen, "salt is not %d bytes of base64", PASSWD_SALT_LEN);
		return false;
	}
	const char *hash = dollar + 1;
	if (memchr(hash, '$', (size_t)(end - hash)) ||
	    !b64_decode_exact(hash, (size_t)(end - hash), e->hash, PASSWD_HASH_LEN)) {
		set_err(why, whylen, "hash is not %d bytes of base64", PASSWD_HASH_LEN);
		return false;
	}
	return true;
}

/* ---- loading ---- */

static int entry_cmp_key(const uint8_t *a, size_t alen, const uint8_t *b, size_t blen)
{
	size_t n = alen < blen ? alen : blen;
	int c = n ? memcmp(a, b, n) : 0;
	if (c)
		return c;
	return alen < blen ? -1 : alen > blen;
}

static int entry_cmp(const void *pa, const void *pb)
{
	const struct pw_entry *a = pa, *b = pb;
	int c = entry_cmp_key(a->user, a->ulen, b->user, b->ulen);
	if (c)
		return c;
	return a->line < b->line ? -1 : a->line > b->line;
}

static bool is_blank(char c)
{
	return c == ' ' || c == '\t' || c == '\r' || c == '\n' || c == '\v' || c == '\f';
}

void passwd_free(struct passwd_db *db)
{
	if (!db)
		return;
	for (size_t i = 0; i < db->n; i++) {
		free(db->e[i].user);
		OPENSSL_cleanse(db->e[i].hash, sizeof(db->e[i].hash));
	}
	free(db->e);
	OPENSSL_cleanse(db, sizeof(*db));
	free(db);
}

size_t passwd_count(const struct passwd_db *db)
{
	return db ? db->n : 0;
}

/* Parses one line (NUL-terminated, newline removed) into e; *skip is set
 * for comments and blank lines. */
static TERN_MUST_CHECK enum tern_err parse_line(char *line, size_t len, struct pw_entry *e,
                                                bool *skip, char *why, size_t whylen)
{
	*skip = false;
	if (strlen(line) != len) {
		set_err(why, whylen, "NUL byte in line");
		return TERN_E_CONFIG;
	}
	if (line[0] == '#') {
		*skip = true;
		return TERN_OK;
	}
	size_t i = 0;
	while (i < len && is_blank(line[i]))
		i++;
	if (i == len) {
		*skip = true;
		return TERN_OK;
	}
	char *colon = strchr(line, ':');
	if (!colon) {
		set_err(why, whylen, "expected 'user:hash' (no ':')");
		return TERN_E_CONFIG;
	}
	/* User name and hash are trimmed of blanks, as mosquitto does. */
	char *u = line, *ue = colon;
	while (u < ue && is_blank(*u))
		u++;
	while (ue > u && is_blank(ue[-1]))
		ue--;
	if (ue == u) {
		set_err(why, whylen, "empty user name");
		return TERN_E_CONFIG;
	}
	if ((size_t)(ue - u) > PASSWD_USER_MAX) {
		set_err(why, whylen, "user name longer than %d bytes", PASSWD_USER_MAX);
		return TERN_E_CONFIG;
	}
	char *h = colon + 1, *he = line + len;
	while (h < he && is_blank(*h))
		h++;
	while (he > h && is_blank(he[-1]))
		he--;
	if (h == he) {
		set_err(why, whylen, "no password hash after ':'");
		return TERN_E_CONFIG;
	}
	if (memchr(h, ':', (size_t)(he - h))) {
		set_err(why, whylen, "unexpected ':' in password hash");
		return TERN_E_CONFIG;
	}
	if (!parse_hash(h, (size_t)(he - h), e, why, whylen))
		return TERN_E_CONFIG;
	e->ulen = (size_t)(ue - u);
	e->user = malloc(e->ulen);
	if (!e->user)
		return TERN_E_NOMEM;
	memcpy(e->user, u, e->ulen);
	return TERN_OK;
}

/* Fills the dummy entry hashed for unknown users. */
static TERN_MUST_CHECK enum tern_err make_dummy(struct passwd_db *db)
{
	int iterations = 0;
	bool any_sha512 = false;
	for (size_t i = 0; i < db->n; i++) {
		if (db->e[i].type == PW_SHA512_PBKDF2 && db->e[i].iterations > iterations)
			iterations = db->e[i].iterations;
		if (db->e[i].type == PW_SHA512)
			any_sha512 = true;
	}
	/* A file of only $6$ entries: pretend with $6$ (same cost). */
	db->dummy.type = (iterations == 0 && any_sha512) ? PW_SHA512 : PW_SHA512_PBKDF2;
	db->dummy.iterations = iterations ? iterations : PASSWD_DEFAULT_ITERATIONS;
	if (RAND_bytes(db->dummy.salt, PASSWD_SALT_LEN) != 1 ||
	    RAND_bytes(db->dummy.hash, PASSWD_HASH_LEN) != 1)
		return TERN_E_SYS;
	return TERN_OK;
}

enum tern_err passwd_load(const char *path, struct passwd_db **out, char *err, size_t errlen)
{
	*out = NULL;
	FILE *f = fopen(path, "r");
	if (!f) {
		int e = errno;
		set_err(err, errlen, "%s: %s", path, strerror(e));
		errno = e;
		return TERN_E_SYS;
	}
	struct passwd_db *db = calloc(1, sizeof(*db));
	char *line = NULL;
	size_t cap = 0, ecap = 0, lineno = 0;
	ssize_t got;
	enum tern_err rc = TERN_OK;
	char why[160];
	if (!db) {
		rc = TERN_E_NOMEM;
		goto out;
	}
	while ((got = getline(&line, &cap, f)) >= 0) {
		size_t len = (size_t)got;
		lineno++;
		if (len > 0 && line[len - 1] == '\n')
			line[--len] = '\0';
		struct pw_entry e = {0};
		bool skip;
		e.line = lineno;
		rc = parse_line(line, len, &e, &skip, why, sizeof(why));
		if (rc == TERN_E_CONFIG) {
			set_err(err, errlen, "%s:%zu: %s", path, lineno, why);
			goto out;
		}
		if (rc != TERN_OK)
			goto out;
		if (skip)
			continue;
		if (db->n == ecap) {
			size_t ncap = ecap ? 2 * ecap : 16;
			struct pw_entry *ne = realloc(db->e, ncap * sizeof(*ne));
			if (!ne) {
				free(e.user);
				rc = TERN_E_NOMEM;
				goto out;
			}
			db->e = ne;
			ecap = ncap;
		}
		db->e[db->n++] = e;
	}
	if (ferror(f)) {
		int e = errno;
		set_err(err, errlen, "%s: read error: %s", path, strerror(e));
		errno = e;
		rc = TERN_E_SYS;
		goto out;
	}
	if (db->n > 1)
		qsort(db->e, db->n, sizeof(*db->e), entry_cmp);
	for (size_t i = 1; i < db->n; i++) {
		const struct pw_entry *a = &db->e[i - 1], *b = &db->e[i];
		if (entry_cmp_key(a->user, a->ulen, b->user, b->ulen) == 0) {
			char name[72];
			set_err(err, errlen, "%s:%zu: user '%s' is already defined at line %zu",
			        path, b->line, printable(b->user, b->ulen, name), a->line);
			rc = TERN_E_CONFIG;
			goto out;
		}
	}
	rc = make_dummy(db);
	if (rc != TERN_OK)
		set_err(err, errlen, "%s: no randomness for the dummy entry", path);
out:
	if (line) {
		OPENSSL_cleanse(line, cap);
		free(line);
	}
	fclose(f);
	if (rc != TERN_OK) {
		if (rc == TERN_E_NOMEM)
			set_err(err, errlen, "%s: out of memory", path);
		passwd_free(db);
		return rc;
	}
	*out = db;
	return TERN_OK;
}

/* ---- checking ---- */

enum tern_err passwd_check(const struct passwd_db *db, const uint8_t *user, size_t ulen,
                           const uint8_t *pw, size_t pwlen)
{
	if (!db)
		return TERN_E_INVALID;
	const struct pw_entry *e = NULL;
	size_t lo = 0, hi = db->n;
	while (lo < hi) {
		size_t mid = lo + (hi - lo) / 2;
		int c = entry_cmp_key(user, ulen, db->e[mid].user, db->e[mid].ulen);
		if (c == 0) {
			e = &db->e[mid];
			break;
		}
		if (c < 0)
			hi = mid;
		else
			lo = mid + 1;
	}
	const struct pw_entry *use = e ? e : &db->dummy;
	uint8_t h[PASSWD_HASH_LEN] = {0};
	/* The hash is computed even without a password so that a missing
	 * password costs what a wrong one costs. */
	enum tern_err ce = compute(use, pw, pw ? pwlen : 0, h);
	int diff = CRYPTO_memcmp(h, use->hash, PASSWD_HASH_LEN);
	OPENSSL_cleanse(h, sizeof(h));
	if (ce != TERN_OK)
		return ce;
	if (!e)
		return TERN_E_NOT_FOUND;
	if (!pw || diff != 0)
		return TERN_E_INVALID;
	return TERN_OK;
}

enum tern_err passwd_verify_string(const char *hash, const uint8_t *pw, size_t pwlen, char *err,
                                   size_t errlen)
{
	struct pw_entry e = {0};
	if (!parse_hash(hash, strlen(hash), &e, err, errlen))
		return TERN_E_CONFIG;
	uint8_t h[PASSWD_HASH_LEN] = {0};
	enum tern_err ce = compute(&e, pw, pwlen, h);
	int diff = CRYPTO_memcmp(h, e.hash, PASSWD_HASH_LEN);
	OPENSSL_cleanse(h, sizeof(h));
	if (ce != TERN_OK) {
		set_err(err, errlen, "hash computation failed");
		return ce;
	}
	return diff == 0 ? TERN_OK : TERN_E_INVALID;
}

/* ---- hashing new passwords ---- */

static TERN_MUST_CHECK enum tern_err hash_format(struct pw_entry *e, const uint8_t *pw, size_t len,
                                                 char *out, size_t outlen)
{
	if (outlen > 0)
		out[0] = '\0';
	if (RAND_bytes(e->salt, PASSWD_SALT_LEN) != 1)
		return TERN_E_SYS;
	enum tern_err ce = compute(e, pw, len, e->hash);
	if (ce != TERN_OK)
		return ce;
	char salt64[4 * ((PASSWD_SALT_LEN + 2) / 3) + 1];
	char hash64[4 * ((PASSWD_HASH_LEN + 2) / 3) + 1];
	b64_encode(e->salt, PASSWD_SALT_LEN, salt64);
	b64_encode(e->hash, PASSWD_HASH_LEN, hash64);
	OPENSSL_cleanse(e->hash, sizeof(e->hash));
	int n;
	if (e->type == PW_SHA512_PBKDF2)
		n = snprintf(out, outlen, "$7$%d$%s$%s", e->iterations, salt64, hash64);
	else
		n = snprintf(out, outlen, "$6$%s$%s", salt64, hash64);
	if (n < 0 || (size_t)n >= outlen) {
		if (outlen > 0)
			out[0] = '\0';
		return TERN_E_BUFFER;
	}
	return TERN_OK;
}

enum tern_err passwd_hash(const uint8_t *pw, size_t len, int iterations, char *out, size_t outlen)
{
	if (iterations < 1) {
		if (outlen > 0)
			out[0] = '\0';
		return TERN_E_INVALID;
	}
	struct pw_entry e = {.type = PW_SHA512_PBKDF2, .iterations = iterations};
	return hash_format(&e, pw, len, out, outlen);
}

enum tern_err passwd_hash_sha512(const uint8_t *pw, size_t len, char *out, size_t outlen)
{
	struct pw_entry e = {.type = PW_SHA512};
	return hash_format(&e, pw, len, out, outlen);
}
