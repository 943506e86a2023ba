/*
 * passwd.c - `tern passwd`: manage a mosquitto password file, like
 * mosquitto_passwd(1).
 *
 *   tern passwd [-H hash] [-I iterations] [-c] passwordfile username
 *   tern passwd [-H hash] [-I iterations] [-c] -b passwordfile username password
 *   tern passwd -D passwordfile username
 *   tern passwd [-H hash] [-I iterations] -U passwordfile
 *
 * The options, messages and exit statuses are mosquitto_passwd's (2.0.11):
 * -c creates (or overwrites) the file with one user, no -c adds or updates
 * a user in an existing file, -D deletes one (status 1 with a warning when
 * it is not there), -U hashes a file of "user:plaintext" lines. Without -b
 * the password is read twice from the terminal with echo off.
 *
 * Where tern differs, it is safer: the new file is written to a temporary
 * file in the same directory, flushed, and renamed over the old one, so a
 * crash never leaves a half-written password file and the broker never
 * reads one; the file is created with mode 0600. Comment and blank lines,
 * which the broker accepts but mosquitto_passwd calls corrupt, are kept.
 * -U refuses (and changes nothing) when a line already holds a hash,
 * rather than hashing the hash as mosquitto_passwd warns it would.
 * The hashing itself is src/auth/passwd.c, the broker's own code.
 */
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <termios.h>
#include <unistd.h>

#include "tools.h"

#include "auth/passwd.h"

#define PW_MAX 65535

enum pw_hash {
	HASH_PBKDF2,
	HASH_SHA512,
};

struct pw_opts {
	enum pw_hash hash;
	int iterations;
	bool create, batch, del, upgrade;
	const char *file;
	const char *user;
	const char *password;
};

static void usage_passwd(FILE *f)
{
	fputs("tern passwd manages password files for the tern broker (and mosquitto).\n"
	      "tern version " TERN_LIB_VERSION ".\n"
	      "\n"
	      "Usage: tern passwd [-H sha512 | -H sha512-pbkdf2] [-I iterations] [-c | -D] "
	      "passwordfile username\n"
	      "       tern passwd [-H sha512 | -H sha512-pbkdf2] [-I iterations] [-c] -b "
	      "passwordfile username password\n"
	      "       tern passwd [-I iterations] -U passwordfile\n"
	      " -b : run in batch mode to allow passing passwords on the command line.\n"
	      " -c : create a new password file. This will overwrite existing files.\n"
	      " -D : delete the username rather than adding/updating its password.\n"
	      " -H : specify the hashing algorithm. Defaults to sha512-pbkdf2, which is "
	      "recommended.\n"
	      "      Mosquitto 1.6 and earlier defaulted to sha512.\n"
	      " -I : PBKDF2 iterations (default 101).\n"
	      " -U : update a plain text password file to use hashed passwords.\n"
	      "\n"
	      "The file is replaced atomically (temporary file + rename), mode 0600.\n",
	      f);
}

/* ---- terminal ---- */

/* The terminal settings to restore if SIGINT/SIGTERM arrives while echo
 * is off. Process-wide by nature (a signal handler cannot be handed an
 * object), set only around the prompt. */
static struct termios saved_tty;
static volatile sig_atomic_t tty_changed;

static void restore_tty_and_exit(int sig)
{
	if (tty_changed)
		tcsetattr(STDIN_FILENO, TCSANOW, &saved_tty);
	signal(sig, SIG_DFL);
	raise(sig);
}

/* Prints prompt and reads one line from stdin (echo off when it is a
 * terminal) into buf. Returns false on EOF or a line too long. */
static bool read_secret(const char *prompt, char *buf, size_t cap)
{
	bool tty = isatty(STDIN_FILENO);
	fputs(prompt, stdout);
	fflush(stdout);
	if (tty && tcgetattr(STDIN_FILENO, &saved_tty) == 0) {
		struct termios t = saved_tty;
		t.c_lflag &= ~(tcflag_t)ECHO;
		signal(SIGINT, restore_tty_and_exit);
		signal(SIGTERM, restore_tty_and_exit);
		tty_changed = 1;
		tcsetattr(STDIN_FILENO, TCSAFLUSH, &t);
	}
	bool ok = fgets(buf, (int)cap, stdin) != NULL;
	if (tty_changed) {
		tcsetattr(STDIN_FILENO, TCSANOW, &saved_tty);
		tty_changed = 0;
		signal(SIGINT, SIG_DFL);
		signal(SIGTERM, SIG_DFL);
	}
	if (tty)
		fputc('\n', stdout);
	if (!ok)
		return false;
	size_t n = strlen(buf);
	if (n > 0 && buf[n - 1] == '\n')
		buf[--n] = '\0';
	else if (n + 1 >= cap)
		return false; /* longer than we accept */
	if (n > 0 && buf[n - 1] == '\r')
		buf[--n] = '\0';
	return true;
}

/* Asks for the password twice; buf holds PW_MAX + 2 bytes. */
static bool prompt_password(char *buf, size_t cap)
{
	char *again = malloc(cap);
	bool ok = false;
	if (!again) {
		fprintf(stderr, "Error: Out of memory.\n");
		return false;
	}
	if (!read_secret("Password: ", buf, cap) ||
	    !read_secret("Reenter password: ", again, cap)) {
		fprintf(stderr, "Error: Unable to read the password.\n");
	} else if (strcmp(buf, again) != 0) {
		fprintf(stderr, "Error: Passwords do not match.\n");
	} else if (buf[0] == '\0') {
		fprintf(stderr, "Error: Empty password.\n");
	} else {
		ok = true;
	}
	memset(again, 0, cap);
	free(again);
	return ok;
}

/* ---- the file ---- */

/* The new file's contents, built in memory. */
struct out_buf {
	char *p;
	size_t len, cap;
};

static bool out_add(struct out_buf *o, const char *s, size_t n)
{
	if (o->len + n + 1 > o->cap) {
		size_t ncap = o->cap ? o->cap : 1024;
		while (ncap < o->len + n + 1)
			ncap *= 2;
		char *np = realloc(o->p, ncap);
		if (!np)
			return false;
		o->p = np;
		o->cap = ncap;
	}
	memcpy(o->p + o->len, s, n);
	o->len += n;
	o->p[o->len] = '\0';
	return true;
}

/* Appends "user:HASH\n" for password pw. */
static bool out_entry(struct out_buf *o, const struct pw_opts *po, const char *user, const char *pw)
{
	char hash[PASSWD_HASH_STR_MAX];
	enum tern_err rc;
	if (po->hash == HASH_SHA512)
		rc = passwd_hash_sha512((const uint8_t *)pw, strlen(pw), hash, sizeof(hash));
	else
		rc = passwd_hash((const uint8_t *)pw, strlen(pw), po->iterations, hash,
		                 sizeof(hash));
	if (rc != TERN_OK) {
		fprintf(stderr, "Error: Unable to hash password (%s).\n", tern_strerror(rc));
		return false;
	}
	bool ok = out_add(o, user, strlen(user)) && out_add(o, ":", 1) &&
	          out_add(o, hash, strlen(hash)) && out_add(o, "\n", 1);
	if (!ok)
		fprintf(stderr, "Error: Out of memory.\n");
	return ok;
}

/* Writes o to path atomically: a temporary file next to it, fsync,
 * rename. */
static bool write_atomic(const char *path, const struct out_buf *o)
{
	size_t plen = strlen(path);
	char *tmp = malloc(plen + sizeof(".XXXXXX"));
	if (!tmp) {
		fprintf(stderr, "Error: Out of memory.\n");
		return false;
	}
	memcpy(tmp, path, plen);
	memcpy(tmp + plen, ".XXXXXX", sizeof(".XXXXXX"));
	int fd = mkstemp(tmp);
	if (fd < 0) {
		fprintf(stderr, "Error: Unable to create a temporary file next to %s: %s.\n", path,
		        strerror(errno));
		free(tmp);
		return false;
	}
	bool ok = fchmod(fd, 0600) == 0;
	size_t off = 0;
	while (ok && off < o->len) {
		ssize_t w = write(fd, o->p + off, o->len - off);
		if (w < 0 && errno == EINTR)
			continue;
		if (w <= 0)
			ok = false;
		else
			off += (size_t)w;
	}
	ok = ok && fsync(fd) == 0;
	int e = errno;
	if (close(fd) != 0 && ok) {
		ok = false;
		e = errno;
	}
	if (ok && rename(tmp, path) != 0) {
		ok = false;
		e = errno;
	}
	if (!ok) {
		fprintf(stderr, "Error: Unable to write password file %s: %s.\n", path,
		        strerror(e));
		unlink(tmp);
	}
	free(tmp);
	return ok;
}

/* Reads the whole file at path into *data (NUL-terminated). */
static bool read_all(const char *path, char **data, size_t *len)
{
	FILE *f = fopen(path, "r");
	if (!f) {
		fprintf(stderr, "Error: Unable to open password file %s. %s.\n", path,
		        strerror(errno));
		return false;
	}
	struct out_buf b = {0};
	char chunk[4096];
	size_t n;
	bool ok = true;
	while ((n = fread(chunk, 1, sizeof(chunk), f)) > 0)
		if (!out_add(&b, chunk, n)) {
			ok = false;
			break;
		}
	if (ferror(f) || !ok || !out_add(&b, "", 0)) {
		fprintf(stderr, "Error: Unable to read password file %s.\n", path);
		fclose(f);
		free(b.p);
		return false;
	}
	fclose(f);
	*data = b.p;
	*len = b.len;
	return true;
}

static bool blank(char c)
{
	return c == ' ' || c == '\t' || c == '\r' || c == '\v' || c == '\f';
}

/* Rewrites the existing file line by line for update, delete or -U. */
static int edit_file(const struct pw_opts *po, const char *path)
{
	char *data = NULL;
	size_t len = 0;
	if (!read_all(path, &data, &len))
		return 1;
	if (memchr(data, '\0', len)) {
		fprintf(stderr, "Error: Corrupt password file (NUL byte).\n");
		free(data);
		return 1;
	}
	struct out_buf o = {0};
	bool found = false, ok = true;
	int lineno = 0;
	char *p = data;
	while (ok && *p) {
		char *nl = strchr(p, '\n');
		char *end = nl ? nl : p + strlen(p);
		char *next = nl ? nl + 1 : end;
		size_t llen = (size_t)(end - p);
		lineno++;
		char *s = p;
		while (s < end && blank(*s))
			s++;
		if (p[0] == '#' || s == end) {
			/* Comment or blank: kept as it is. */
			ok = out_add(&o, p, llen) && out_add(&o, "\n", 1);
			p = next;
			continue;
		}
		char *colon = memchr(p, ':', llen);
		char *ue = colon;
		while (colon && ue > s && blank(ue[-1]))
			ue--;
		if (!colon || ue == s) {
			fprintf(stderr, "Error: Corrupt password file at line %d.\n", lineno);
			ok = false;
			break;
		}
		size_t ulen = (size_t)(ue - s);
		bool match = po->user && ulen == strlen(po->user) && memcmp(s, po->user, ulen) == 0;
		if (po->upgrade) {
			char *v = colon + 1, *ve = end;
			while (v < ve && blank(*v))
				v++;
			while (ve > v && blank(ve[-1]))
				ve--;
			*ue = '\0';
			*ve = '\0';
			if (strncmp(v, "$6$", 3) == 0 || strncmp(v, "$7$", 3) == 0) {
				char why[8];
				if (passwd_verify_string(v, (const uint8_t *)"", 0, why,
				                         sizeof(why)) != TERN_E_CONFIG) {
					fprintf(stderr,
					        "Error: Line %d (user %s) already holds a password "
					        "hash; not hashing it again. Nothing changed.\n",
					        lineno, s);
					ok = false;
					break;
				}
			}
			ok = out_entry(&o, po, s, v);
		} else if (match && po->del) {
			found = true; /* dropped */
		} else if (match) {
			if (!found)
				ok = out_entry(&o, po, po->user, po->password);
			found = true;
		} else {
			ok = out_add(&o, p, llen) && out_add(&o, "\n", 1);
		}
		p = next;
	}
	free(data);
	if (ok && po->del && !found) {
		fprintf(stderr, "Warning: User %s not found in password file.\n", po->user);
		ok = false;
	}
	if (ok && !po->del && !po->upgrade && !found)
		ok = out_entry(&o, po, po->user, po->password);
	if (ok)
		ok = write_atomic(path, &o);
	if (o.p) {
		memset(o.p, 0, o.cap);
		free(o.p);
	}
	return ok ? 0 : 1;
}

/* ---- arguments ---- */

static bool user_valid(const char *u)
{
	size_t n = strlen(u);
	if (n == 0) {
		fprintf(stderr, "Error: Username must not be empty.\n");
		return false;
	}
	if (n > PW_MAX) {
		fprintf(stderr, "Error: Username must be less than 65536 characters long.\n");
		return false;
	}
	for (size_t i = 0; i < n; i++) {
		unsigned char c = (unsigned char)u[i];
		if (c < 0x20 || c == 0x7f) {
			fprintf(stderr, "Error: Username must not contain control characters.\n");
			return false;
		}
	}
	if (strchr(u, ':')) {
		fprintf(stderr, "Error: Username must not contain the ':' character.\n");
		return false;
	}
	return true;
}

/* Parses argv as mosquitto_passwd does; returns -1 to go on, else the exit
 * status. */
static int parse_args(struct pw_opts *po, int argc, char **argv)
{
	int i;
	for (i = 1; i < argc; i++) {
		const char *a = argv[i];
		if (strcmp(a, "-H") == 0) {
			if (i + 1 == argc) {
				fprintf(stderr, "Error: -H argument given but not enough other "
				                "arguments.\n");
				return 1;
			}
			if (strcmp(argv[i + 1], "sha512") == 0) {
				po->hash = HASH_SHA512;
			} else if (strcmp(argv[i + 1], "sha512-pbkdf2") == 0) {
				po->hash = HASH_PBKDF2;
			} else {
				fprintf(stderr, "Error: Unknown hash type '%s'\n", argv[i + 1]);
				return 1;
			}
			i++;
		} else if (strcmp(a, "-I") == 0) {
			if (i + 1 == argc) {
				fprintf(stderr, "Error: -I argument given but not enough other "
				                "arguments.\n");
				return 1;
			}
			char *end;
			errno = 0;
			long v = strtol(argv[i + 1], &end, 10);
			if (errno || *end || end == argv[i + 1] || v < 1 || v > INT_MAX) {
				fprintf(stderr, "Error: Number of iterations must be > 0.\n");
				return 1;
			}
			po->iterations = (int)v;
			i++;
		} else if (strcmp(a, "-b") == 0) {
			po->batch = true;
		} else if (strcmp(a, "-c") == 0) {
			po->create = true;
		} else if (strcmp(a, "-D") == 0) {
			po->del = true;
		} else if (strcmp(a, "-U") == 0) {
			po->upgrade = true;
		} else if (strcmp(a, "--help") == 0 || strcmp(a, "-h") == 0) {
			usage_passwd(stdout);
			return 0;
		} else if (a[0] == '-' && a[1] != '\0' && strcmp(a, "--") != 0) {
			fprintf(stderr, "Error: Unknown option '%s'.\n", a);
			return 1;
		} else {
			if (strcmp(a, "--") == 0)
				i++;
			break;
		}
	}
	if (po->create && po->del) {
		fprintf(stderr, "Error: -c and -D cannot be used together.\n");
		return 1;
	}
	if (po->create && po->upgrade) {
		fprintf(stderr, "Error: -c and -U cannot be used together.\n");
		return 1;
	}
	if (po->del && po->upgrade) {
		fprintf(stderr, "Error: -D and -U cannot be used together.\n");
		return 1;
	}
	if (po->del && po->batch) {
		fprintf(stderr, "Error: -b and -D cannot be used together.\n");
		return 1;
	}
	int left = argc - i;
	if (po->upgrade) {
		if (left != 1) {
			fprintf(stderr, "Error: -U argument given but password file missing.\n");
			return 1;
		}
		po->file = argv[i];
		return -1;
	}
	int want = po->batch ? 3 : 2;
	if (left != want) {
		if (po->create || po->del)
			fprintf(stderr,
			        "Error: %s argument given but password file, username%s "
			        "missing.\n",
			        po->create ? "-c" : "-D", po->batch ? ", or password" : "");
		else
			usage_passwd(stderr);
		return 1;
	}
	po->file = argv[i];
	po->user = argv[i + 1];
	po->password = po->batch ? argv[i + 2] : NULL;
	if (!user_valid(po->user))
		return 1;
	if (po->password && strlen(po->password) > PW_MAX) {
		fprintf(stderr, "Error: Password must be less than 65536 characters long.\n");
		return 1;
	}
	return -1;
}

int passwd_main(int argc, char **argv)
{
	struct pw_opts po = {.hash = HASH_PBKDF2, .iterations = PASSWD_DEFAULT_ITERATIONS};
	if (argc < 2) {
		usage_passwd(stderr);
		return 1;
	}
	int rc = parse_args(&po, argc, argv);
	if (rc >= 0)
		return rc;

	/* Write over the file a symlink points to, not over the link. */
	char *real = realpath(po.file, NULL);
	if (!real && errno != ENOENT) {
		fprintf(stderr, "Error reading password file: %s\n", strerror(errno));
		return 1;
	}
	const char *path = real ? real : po.file;

	char *typed = NULL;
	if (!po.del && !po.upgrade && !po.batch) {
		typed = malloc(PW_MAX + 2);
		if (!typed || !prompt_password(typed, PW_MAX + 2)) {
			free(typed);
			free(real);
			return 1;
		}
		po.password = typed;
	}

	if (po.create) {
		struct out_buf o = {0};
		bool ok = out_entry(&o, &po, po.user, po.password) && write_atomic(path, &o);
		if (o.p) {
			memset(o.p, 0, o.cap);
			free(o.p);
		}
		rc = ok ? 0 : 1;
	} else {
		rc = edit_file(&po, path);
	}
	if (typed) {
		memset(typed, 0, PW_MAX + 2);
		free(typed);
	}
	free(real);
	return rc;
}
