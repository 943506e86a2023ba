/*
 * auth/acl.c - mosquitto's acl_file (see acl.h for the format and the
 * semantics, which follow mosquitto 2.0.11 line by line).
 *
 * Layout. A db holds three rule lists: the anonymous list (`topic` lines
 * before any `user` line), one list per user name (sections with the same
 * name merged, kept in an array sorted by name for binary search), and the
 * patterns. Within a list the rules are ordered deny-first, as mosquitto
 * orders them, so one pass decides: the first matching `deny` refuses, the
 * first matching grant that carries the wanted access allows.
 *
 * Patterns are expanded per check (%c, %u) into a stack buffer (or the heap
 * when long); they are expected to be few. A client id or user name
 * containing '+', '#' or '/' fails the whole pattern phase before any
 * expansion, so substitution can never produce a wildcard or a level
 * boundary the file's author did not write.
 *
 * ACL_SUBSCRIBE_STRICT compares filters with filters. "G covers F" holds
 * when every topic name F matches is matched by G; "D may overlap F" when
 * some topic name could be matched by both. Both work level by level on the
 * '/'-separated strings; the '$' rule of [MQTT-4.7.2-1] (a filter starting
 * with a wildcard matches no topic starting with '$') is applied at the
 * first level. The overlap test errs on the side of "yes", which only ever
 * denies more.
 */
#include "auth/acl.h"

#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "tern/codec.h"

/* Access bits of a rule; a rule with none is a `deny`. */
#define ACC_READ  1u
#define ACC_WRITE 2u

/* Longest filter accepted in the file (an MQTT string's limit). */
#define ACL_FILTER_MAX 65535

struct rule {
	uint8_t *f; /* filter (or pattern), not NUL-terminated; owned */
	size_t len;
	unsigned access; /* ACC_* bits; 0: deny */
	bool has_u;      /* pattern uses %u: skipped for anonymous clients */
	size_t line;
};

struct rlist {
	struct rule *r; /* deny rules first, then grants, each in file order */
	size_t n, cap;
};

struct user {
	uint8_t *name; /* owned */
	size_t len;
	size_t seq; /* order of the section in the file, for a stable merge */
	struct rlist l;
};

struct acl_db {
	struct rlist anon;
	struct user *users; /* sorted by name, unique after loading */
	size_t nusers, ucap;
	struct rlist patterns;
	size_t nrules;
};

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

static void rlist_free(struct rlist *l)
{
	for (size_t i = 0; i < l->n; i++)
		free(l->r[i].f);
	free(l->r);
	l->r = NULL;
	l->n = l->cap = 0;
}

void acl_free(struct acl_db *db)
{
	if (!db)
		return;
	rlist_free(&db->anon);
	rlist_free(&db->patterns);
	for (size_t i = 0; i < db->nusers; i++) {
		free(db->users[i].name);
		rlist_free(&db->users[i].l);
	}
	free(db->users);
	free(db);
}

size_t acl_rule_count(const struct acl_db *db)
{
	return db ? db->nrules : 0;
}

/* ---- loading ---- */

static bool rlist_push(struct rlist *l, struct rule r)
{
	if (l->n == l->cap) {
		size_t ncap = l->cap ? 2 * l->cap : 8;
		struct rule *nr = realloc(l->r, ncap * sizeof(*nr));
		if (!nr)
			return false;
		l->r = nr;
		l->cap = ncap;
	}
	l->r[l->n++] = r;
	return true;
}

/* Deny rules first, then by line: mosquitto's order (it pushes a deny to
 * the front of its list; the order among denies does not matter). */
static int rule_order(const void *pa, const void *pb)
{
	const struct rule *a = pa, *b = pb;
	bool ga = a->access != 0, gb = b->access != 0;
	if (ga != gb)
		return ga ? 1 : -1;
	return a->line < b->line ? -1 : a->line > b->line;
}

static void rlist_sort(struct rlist *l)
{
	if (l->n > 1)
		qsort(l->r, l->n, sizeof(*l->r), rule_order);
}

static int bytes_cmp(const uint8_t *a, size_t alen, const uint8_t *b, size_t blen)
{
	size_t n = alen < blen ? alen : blen;
	int c = n ? memcmp(a, b, n) : 0;
	if (c)
		return c;
	return alen < blen ? -1 : alen > blen;
}

static int user_order(const void *pa, const void *pb)
{
	const struct user *a = pa, *b = pb;
	int c = bytes_cmp(a->name, a->len, b->name, b->len);
	if (c)
		return c;
	return a->seq < b->seq ? -1 : a->seq > b->seq;
}

/* Sorts the user sections by name and merges sections of the same name
 * into the first one. */
static bool users_finish(struct acl_db *db)
{
	if (db->nusers > 1)
		qsort(db->users, db->nusers, sizeof(*db->users), user_order);
	size_t w = 0;
	for (size_t i = 0; i < db->nusers; i++) {
		struct user *u = &db->users[i];
		if (w > 0 &&
		    bytes_cmp(db->users[w - 1].name, db->users[w - 1].len, u->name, u->len) == 0) {
			struct rlist *dst = &db->users[w - 1].l;
			for (size_t k = 0; k < u->l.n; k++) {
				if (!rlist_push(dst, u->l.r[k]))
					return false;
				u->l.r[k].f = NULL; /* moved */
			}
			free(u->name);
			rlist_free(&u->l);
			continue;
		}
		db->users[w++] = *u;
	}
	db->nusers = w;
	for (size_t i = 0; i < db->nusers; i++)
		rlist_sort(&db->users[i].l);
	return true;
}

/* mosquitto_sub_topic_check(): '+' and '#' only as whole levels, '#' only
 * last; here also non-empty and not longer than an MQTT string. */
static bool filter_valid(const char *f, size_t len)
{
	if (len == 0 || len > ACL_FILTER_MAX)
		return false;
	for (size_t i = 0; i < len; i++) {
		if (f[i] != '+' && f[i] != '#')
			continue;
		if (i > 0 && f[i - 1] != '/')
			return false;
		if (f[i] == '+' && i + 1 < len && f[i + 1] != '/')
			return false;
		if (f[i] == '#' && i + 1 != len)
			return false;
	}
	return true;
}

static bool is_space(char c)
{
	return c == ' ' || c == '\t' || c == '\n' || c == '\v' || c == '\f' || c == '\r';
}

/* Cuts the next ' '-delimited word from *p (as strtok_r(.., " ", ..)):
 * skips leading spaces, NUL-terminates the word, leaves *p after the one
 * space that ended it (or at the end). Returns NULL when no word is left. */
static char *next_word(char **p)
{
	char *s = *p;
	while (*s == ' ')
		s++;
	if (*s == '\0') {
		*p = s;
		return NULL;
	}
	char *w = s;
	while (*s && *s != ' ')
		s++;
	if (*s == ' ')
		*s++ = '\0';
	*p = s;
	return w;
}

/* The rest of the line after the last word (strtok_r(.., "", ..)), with
 * blanks trimmed at both ends (misc__trimblanks); NULL when nothing is
 * left. */
static char *rest_trimmed(char *p)
{
	if (*p == '\0')
		return NULL;
	while (*p && is_space(*p))
		p++;
	size_t n = strlen(p);
	while (n > 0 && is_space(p[n - 1]))
		p[--n] = '\0';
	return p;
}

/* Applies one line (NUL-terminated, trailing blanks removed). *cur is the
 * current user section (NULL: anonymous). */
static enum tern_err parse_line(struct acl_db *db, char *line, size_t lineno, struct user **cur,
                                size_t *seq, char *why, size_t whylen)
{
	if (line[0] == '#')
		return TERN_OK;
	char *p = line;
	char *word = next_word(&p);
	if (!word)
		return TERN_OK;

	if (strcmp(word, "user") == 0) {
		char *name = rest_trimmed(p);
		if (!name || !*name) {
			set_err(why, whylen, "missing user name after 'user'");
			return TERN_E_CONFIG;
		}
		if (db->nusers == db->ucap) {
			size_t ncap = db->ucap ? 2 * db->ucap : 8;
			struct user *nu = realloc(db->users, ncap * sizeof(*nu));
			if (!nu)
				return TERN_E_NOMEM;
			db->users = nu;
			db->ucap = ncap;
		}
		struct user *u = &db->users[db->nusers];
		memset(u, 0, sizeof(*u));
		u->len = strlen(name);
		u->name = malloc(u->len ? u->len : 1);
		if (!u->name)
			return TERN_E_NOMEM;
		memcpy(u->name, name, u->len);
		u->seq = (*seq)++;
		db->nusers++;
		/* The caller turns this back into an index: the array may move. */
		*cur = u;
		return TERN_OK;
	}

	bool pattern = strcmp(word, "pattern") == 0;
	if (!pattern && strcmp(word, "topic") != 0) {
		set_err(why, whylen, "unknown directive '%.40s' (expected topic, pattern or user)",
		        word);
		return TERN_E_CONFIG;
	}
	char *access_s = next_word(&p);
	if (!access_s) {
		set_err(why, whylen, "'%s' without a topic", word);
		return TERN_E_CONFIG;
	}
	char *filter = rest_trimmed(p);
	unsigned access;
	if (!filter) {
		/* One word only: it is the topic, with readwrite access. */
		filter = access_s;
		access = ACC_READ | ACC_WRITE;
	} else if (strcmp(access_s, "read") == 0) {
		access = ACC_READ;
	} else if (strcmp(access_s, "write") == 0) {
		access = ACC_WRITE;
	} else if (strcmp(access_s, "readwrite") == 0) {
		access = ACC_READ | ACC_WRITE;
	} else if (strcmp(access_s, "deny") == 0) {
		access = 0;
	} else {
		set_err(why, whylen,
		        "invalid access type '%.40s' (expected read, write, readwrite or deny)",
		        access_s);
		return TERN_E_CONFIG;
	}
	size_t flen = strlen(filter);
	if (!filter_valid(filter, flen)) {
		set_err(why, whylen, "invalid topic filter '%.80s'", filter);
		return TERN_E_CONFIG;
	}
	struct rule r = {.len = flen, .access = access, .line = lineno};
	for (size_t i = 0; i + 1 < flen; i++) {
		if (filter[i] == '%' && (filter[i + 1] == 'c' || filter[i + 1] == 'u')) {
			if (filter[i + 1] == 'u')
				r.has_u = true;
			i++;
		}
	}
	r.f = malloc(flen);
	if (!r.f)
		return TERN_E_NOMEM;
	memcpy(r.f, filter, flen);
	struct rlist *l = pattern ? &db->patterns : (*cur ? &(*cur)->l : &db->anon);
	if (!rlist_push(l, r)) {
		free(r.f);
		return TERN_E_NOMEM;
	}
	db->nrules++;
	return TERN_OK;
}

enum tern_err acl_load(const char *path, struct acl_db **out, char *err, size_t errlen)
{
	*out = NULL;
	FILE *f = fopen(path, "r");
	if (!f) {
		int e = errno;
		set_err(err, errlen, "%s: %s", path, strerror(e));
		errno = e;
		return TERN_E_SYS;
	}
	struct acl_db *db = calloc(1, sizeof(*db));
	char *line = NULL;
	size_t cap = 0, lineno = 0, seq = 0;
	size_t cur = (size_t)-1; /* index of the current user section */
	ssize_t got;
	enum tern_err rc = TERN_OK;
	char why[200];
	if (!db) {
		rc = TERN_E_NOMEM;
		goto out;
	}
	while ((got = getline(&line, &cap, f)) >= 0) {
		size_t len = (size_t)got;
		lineno++;
		if (strlen(line) != len) {
			set_err(err, errlen, "%s:%zu: NUL byte in line", path, lineno);
			rc = TERN_E_CONFIG;
			goto out;
		}
		while (len > 0 && is_space(line[len - 1]))
			line[--len] = '\0';
		struct user *u = cur == (size_t)-1 ? NULL : &db->users[cur];
		rc = parse_line(db, line, lineno, &u, &seq, why, sizeof(why));
		if (rc == TERN_E_CONFIG) {
			set_err(err, errlen, "%s:%zu: %s", path, lineno, why);
			goto out;
		}
		if (rc != TERN_OK)
			goto out;
		if (u)
			cur = (size_t)(u - db->users);
	}
	if (ferror(f)) {
		int e = errno;
		set_err(err, errlen, "%s: read error: %s", path, strerror(e));
		errno = e;
		rc = TERN_E_SYS;
		goto out;
	}
	if (!users_finish(db)) {
		rc = TERN_E_NOMEM;
		goto out;
	}
	rlist_sort(&db->anon);
	rlist_sort(&db->patterns);
out:
	free(line);
	fclose(f);
	if (rc != TERN_OK) {
		if (rc == TERN_E_NOMEM)
			set_err(err, errlen, "%s: out of memory", path);
		acl_free(db);
		return rc;
	}
	*out = db;
	return TERN_OK;
}

/* ---- filter algebra ---- */

/* Walks the '/'-separated levels of s[0..len); false when none is left.
 * "a/" has the levels "a" and "". */
static bool next_level(const uint8_t *s, size_t len, size_t *pos, size_t *start, size_t *end)
{
	if (*pos > len)
		return false;
	size_t i = *pos;
	*start = i;
	while (i < len && s[i] != '/')
		i++;
	*end = i;
	*pos = i + 1;
	return true;
}

static bool level_is(const uint8_t *s, size_t start, size_t end, char c)
{
	return end - start == 1 && s[start] == c;
}

static bool starts_wild(const uint8_t *f, size_t len)
{
	return len > 0 && (f[0] == '+' || f[0] == '#');
}

static bool starts_dollar(const uint8_t *f, size_t len)
{
	return len > 0 && f[0] == '$';
}

/* Does every topic name matched by filter f also match filter g? */
static bool covers(const uint8_t *g, size_t glen, const uint8_t *f, size_t flen)
{
	if (starts_dollar(f, flen) && starts_wild(g, glen))
		return false;
	size_t gp = 0, fp = 0, gs, ge, fs, fe;
	for (;;) {
		bool hg = next_level(g, glen, &gp, &gs, &ge);
		bool hf = next_level(f, flen, &fp, &fs, &fe);
		if (!hg)
			return !hf;
		if (level_is(g, gs, ge, '#'))
			return true;
		if (!hf || level_is(f, fs, fe, '#'))
			return false;
		if (level_is(g, gs, ge, '+'))
			continue;
		if (level_is(f, fs, fe, '+'))
			return false;
		if (ge - gs != fe - fs || (ge > gs && memcmp(g + gs, f + fs, ge - gs) != 0))
			return false;
	}
}

/* Could some topic name be matched by both filters d and f? */
static bool overlaps(const uint8_t *d, size_t dlen, const uint8_t *f, size_t flen)
{
	if ((starts_dollar(f, flen) && starts_wild(d, dlen)) ||
	    (starts_dollar(d, dlen) && starts_wild(f, flen)))
		return false;
	size_t dp = 0, fp = 0, ds, de, fs, fe;
	for (;;) {
		bool hd = next_level(d, dlen, &dp, &ds, &de);
		bool hf = next_level(f, flen, &fp, &fs, &fe);
		if (!hd && !hf)
			return true;
		if ((hd && level_is(d, ds, de, '#')) || (hf && level_is(f, fs, fe, '#')))
			return true;
		if (!hd || !hf)
			return false;
		if (level_is(d, ds, de, '+') || level_is(f, fs, fe, '+'))
			continue;
		if (de - ds != fe - fs || (de > ds && memcmp(d + ds, f + fs, de - ds) != 0))
			return false;
	}
}

/* ---- checking ---- */

enum verdict {
	V_NONE,
	V_ALLOW,
	V_DENY,
};

/* Does rule filter g (already expanded) decide topic/filter t? */
static enum verdict rule_verdict(const uint8_t *g, size_t glen, unsigned rule_access,
                                 const uint8_t *t, size_t tlen, enum acl_access access)
{
	if (access == ACL_SUBSCRIBE_STRICT) {
		if (rule_access == 0)
			return overlaps(g, glen, t, tlen) ? V_DENY : V_NONE;
		if ((rule_access & ACC_READ) && covers(g, glen, t, tlen))
			return V_ALLOW;
		return V_NONE;
	}
	if (!tern_topic_matches(g, glen, t, tlen))
		return V_NONE;
	if (rule_access == 0)
		return V_DENY;
	unsigned want = access == ACL_WRITE ? ACC_WRITE : ACC_READ;
	return (rule_access & want) ? V_ALLOW : V_NONE;
}

static enum verdict check_list(const struct rlist *l, const uint8_t *t, size_t tlen,
                               enum acl_access access)
{
	/* Deny rules come first, so the first verdict is the answer. */
	for (size_t i = 0; i < l->n; i++) {
		enum verdict v =
		        rule_verdict(l->r[i].f, l->r[i].len, l->r[i].access, t, tlen, access);
		if (v != V_NONE)
			return v;
	}
	return V_NONE;
}

static const struct rlist *user_list(const struct acl_db *db, const uint8_t *name, size_t len)
{
	size_t lo = 0, hi = db->nusers;
	while (lo < hi) {
		size_t mid = lo + (hi - lo) / 2;
		int c = bytes_cmp(name, len, db->users[mid].name, db->users[mid].len);
		if (c == 0)
			return &db->users[mid].l;
		if (c < 0)
			hi = mid;
		else
			lo = mid + 1;
	}
	return NULL;
}

/* A client id or user name that could change the structure of a pattern:
 * a wildcard, or a level separator (see acl.h on mosquitto 2.0). */
static bool dangerous(const uint8_t *s, size_t len)
{
	for (size_t i = 0; i < len; i++)
		if (s[i] == '+' || s[i] == '#' || s[i] == '/')
			return true;
	return false;
}

/* Expands %c and %u of pattern r into buf (cap bytes) or, when longer, a
 * malloc'd buffer stored in *heap. Returns the expansion or NULL (no
 * memory); *outlen is its length. */
static const uint8_t *expand(const struct rule *r, const uint8_t *cid, size_t cid_len,
                             const uint8_t *user, size_t ulen, uint8_t *buf, size_t cap,
                             uint8_t **heap, size_t *outlen)
{
	size_t need = 0;
	for (int pass = 0; pass < 2; pass++) {
		uint8_t *o = pass ? (need <= cap ? buf : (*heap = malloc(need ? need : 1))) : NULL;
		if (pass && !o)
			return NULL;
		size_t n = 0;
		for (size_t i = 0; i < r->len; i++) {
			if (i + 1 < r->len && r->f[i] == '%') {
				const uint8_t *s = NULL;
				size_t sl = 0;
				if (r->f[i + 1] == 'c') {
					s = cid;
					sl = cid_len;
				} else if (r->f[i + 1] == 'u' && user) {
					s = user;
					sl = ulen;
				}
				if (s || r->f[i + 1] == 'c') {
					if (o && sl)
						memcpy(o + n, s, sl);
					n += sl;
					i++;
					continue;
				}
			}
			if (o)
				o[n] = r->f[i];
			n++;
		}
		need = n;
		if (pass) {
			*outlen = n;
			return o;
		}
	}
	return NULL;
}

bool acl_allowed(const struct acl_db *db, const uint8_t *client_id, size_t cid_len,
                 const uint8_t *username, size_t ulen, const uint8_t *topic, size_t tlen,
                 enum acl_access access)
{
	if (!db || !topic || tlen == 0)
		return false;
	switch (access) {
	case ACL_SUBSCRIBE:
		/* mosquitto 2.0.11 grants every SUBSCRIBE; see acl.h. */
		return true;
	case ACL_SUBSCRIBE_STRICT: {
		struct tern_bytes fb = {topic, (uint32_t)tlen}, group, rest;
		if (tlen > ACL_FILTER_MAX || tern_topic_filter_check(topic, tlen) != TERN_OK)
			return false;
		if (tern_topic_filter_share(fb, &group, &rest)) {
			topic = rest.data;
			tlen = rest.len;
		}
		break;
	}
	case ACL_READ:
	case ACL_WRITE:
		/* A topic name has no wildcards; never let one match as a name. */
		if (memchr(topic, '+', tlen) || memchr(topic, '#', tlen))
			return false;
		break;
	default:
		return false;
	}

	const struct rlist *own = username ? user_list(db, username, ulen) : &db->anon;
	if (own) {
		enum verdict v = check_list(own, topic, tlen, access);
		if (v != V_NONE)
			return v == V_ALLOW;
	}

	const struct rlist *pl = &db->patterns;
	if (pl->n == 0)
		return false;
	if ((client_id && dangerous(client_id, cid_len)) || (username && dangerous(username, ulen)))
		return false;
	if (!client_id)
		cid_len = 0;
	for (size_t i = 0; i < pl->n; i++) {
		const struct rule *r = &pl->r[i];
		if (r->has_u && !username)
			continue;
		uint8_t buf[512], *heap = NULL;
		size_t glen = 0;
		const uint8_t *g = expand(r, client_id, cid_len, username, ulen, buf, sizeof(buf),
		                          &heap, &glen);
		if (!g)
			return false;
		enum verdict v = rule_verdict(g, glen, r->access, topic, tlen, access);
		free(heap);
		if (v != V_NONE)
			return v == V_ALLOW;
	}
	return false;
}
