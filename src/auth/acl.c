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
 * ACL_SUBSCRIBE asks whether any topic name the filter matches is
 * readable. That is a search over topic names, not a comparison of the
 * filter with each rule on its own: "a/#" minus the denies "a" and
 * "a/+/#" is empty although neither deny covers it alone. The search and
 * why it is exact are described at check_subscribe()'s helpers below.
 */
#include "auth/acl.h"

#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "proto/topic.h"
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

/* Appends r to l (l owns r.f then). TERN_E_NOMEM leaves l as it was. */
static TERN_MUST_CHECK enum tern_err rlist_push(struct rlist *l, struct rule r)
{
	if (l->n == l->cap) {
		size_t ncap = l->cap ? 2 * l->cap : 8;
		struct rule *nr = realloc(l->r, ncap * sizeof(*nr));
		if (!nr)
			return TERN_E_NOMEM;
		l->r = nr;
		l->cap = ncap;
	}
	l->r[l->n++] = r;
	return TERN_OK;
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
 * into the first one. TERN_E_NOMEM when a merged list cannot grow. */
static TERN_MUST_CHECK enum tern_err users_finish(struct acl_db *db)
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
				if (rlist_push(dst, u->l.r[k]) != TERN_OK)
					return TERN_E_NOMEM;
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
	return TERN_OK;
}

/* mosquitto_sub_topic_check(): '+' and '#' only as whole levels, '#' only
 * last; here also non-empty and not longer than an MQTT string. */
static bool filter_valid(const char *f, size_t len)
{
	return len > 0 && len <= ACL_FILTER_MAX &&
	       topic_filter_wildcards_ok((const uint8_t *)f, len);
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
static TERN_MUST_CHECK enum tern_err parse_line(struct acl_db *db, char *line, size_t lineno,
                                                struct user **cur, size_t *seq, char *why,
                                                size_t whylen)
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
	if (rlist_push(l, r) != TERN_OK) {
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
	if ((rc = users_finish(db)) != TERN_OK)
		goto out;
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

/* ---- checking one topic name ---- */

enum verdict {
	V_NONE,
	V_ALLOW,
	V_DENY,
};

/* Does rule filter g (already expanded) decide topic name t? */
static enum verdict rule_verdict(const uint8_t *g, size_t glen, unsigned rule_access,
                                 const uint8_t *t, size_t tlen, enum acl_access access)
{
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

/* Writes the expansion of pattern r (%c: cid, %u: user when not NULL) to o
 * when o is not NULL, and returns its length either way. */
static size_t expand_to(const struct rule *r, const uint8_t *cid, size_t cid_len,
                        const uint8_t *user, size_t ulen, uint8_t *o)
{
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
	return n;
}

/* Do the patterns apply to this client at all? Not when there are none, and
 * not when its client id or user name could change a pattern's structure
 * (then the pattern phase refuses, whatever the patterns say). */
static bool patterns_apply(const struct acl_db *db, const uint8_t *cid, size_t cid_len,
                           const uint8_t *user, size_t ulen)
{
	if (db->patterns.n == 0)
		return false;
	return !(cid && dangerous(cid, cid_len)) && !(user && dangerous(user, ulen));
}

/* ACL_READ / ACL_WRITE on topic name t: the client's own list, then the
 * patterns (see acl.h). */
static bool check_topic(const struct acl_db *db, const uint8_t *cid, size_t cid_len,
                        const uint8_t *user, size_t ulen, const uint8_t *t, size_t tlen,
                        enum acl_access access)
{
	const struct rlist *own = user ? user_list(db, user, ulen) : &db->anon;
	if (own) {
		enum verdict v = check_list(own, t, tlen, access);
		if (v != V_NONE)
			return v == V_ALLOW;
	}
	if (!patterns_apply(db, cid, cid_len, user, ulen))
		return false;
	const struct rlist *pl = &db->patterns;
	for (size_t i = 0; i < pl->n; i++) {
		const struct rule *r = &pl->r[i];
		if (r->has_u && !user)
			continue;
		uint8_t buf[512], *heap = NULL;
		size_t glen = expand_to(r, cid, cid_len, user, ulen, NULL);
		uint8_t *g = buf;
		if (glen > sizeof(buf)) {
			g = heap = malloc(glen);
			if (!g)
				return false;
		}
		expand_to(r, cid, cid_len, user, ulen, g);
		enum verdict v = rule_verdict(g, glen, r->access, t, tlen, access);
		free(heap);
		if (v != V_NONE)
			return v == V_ALLOW;
	}
	return false;
}

/* ---- SUBSCRIBE: could any topic name of the filter be read? ----
 *
 * The question is whether some topic name T exists that the filter F
 * matches and check_topic(T, ACL_READ) allows. The search builds T level by
 * level, in the order of F's levels, and carries along every rule that
 * could still match some topic beginning with the levels chosen so far
 * (the "live" rules, each with its position in its own filter). A literal
 * level of F is taken as it is. Where F has '+' (or '#', which may also end
 * T or add further levels), T's level can be anything; but rules tell
 * level values apart only by equality with their literal levels (and by a
 * leading '$' at the first level, [MQTT-4.7.2-1]), so it is enough to try
 * each literal that a live rule has at that position, plus one "fresh"
 * value that equals none of them and does not start with '$'. T is then
 * decided the way check_topic() decides it: own denies, own read grants,
 * pattern denies, pattern read grants.
 *
 * A branch is cut as soon as its answer is known for every extension: no
 * live read grant is left (nothing below can be read), an own deny has
 * matched up to its '#' (everything below is denied), or a read grant has
 * matched up to its '#' with no live deny that comes before it. Once T is
 * deeper than every rule, all live rules are in that last state, so the
 * search always ends. It is bounded all the same (SEARCH_STEPS,
 * SEARCH_DEPTH): a search that would go beyond them grants the filter,
 * which is safe because every delivery is checked with ACL_READ anyway; the
 * refusal at SUBSCRIBE only tells the client early. */

#define SEARCH_STEPS 100000
#define SEARCH_DEPTH 256

/* A rule of the search: a filter of the client's own list or an expanded
 * pattern. */
struct srule {
	const uint8_t *f;
	size_t len;
	unsigned access;
	bool pattern;
};

/* Position of a live rule: the offset of its next level in f; len + 1 when
 * all its levels are used; POS_ALL when its '#' has matched (it matches
 * every extension). */
#define POS_ALL  SIZE_MAX
#define POS_DEAD (SIZE_MAX - 1)

struct live {
	size_t rule;
	size_t pos;
};

struct search {
	const struct srule *rules;
	struct live *stack; /* the live lists of the open levels, one after the other */
	size_t used, cap;
	size_t steps;
	bool gave_up; /* out of steps, depth or memory: the filter is granted */
};

/* A level value of T: a literal of some rule, or fresh (none of them). */
struct value {
	const uint8_t *s;
	size_t len;
	bool fresh;
};

static bool value_dollar(struct value v)
{
	return !v.fresh && v.len > 0 && v.s[0] == '$';
}

/* The level of rule r at pos (neither POS_ALL nor past its end); *next is
 * the position after it. */
static struct topic_level rule_level(const struct srule *r, size_t pos, size_t *next)
{
	struct topic_iter it;
	struct topic_level lv;
	topic_iter_at(&it, r->f, r->len, pos);
	(void)topic_iter_next(&it, &lv); /* pos <= r->len: there is one */
	*next = it.pos;
	return lv;
}

/* Where rule r goes when T's level number depth is v. */
static size_t rule_step(const struct srule *r, size_t pos, struct value v, size_t depth)
{
	if (pos == POS_ALL)
		return POS_ALL;
	if (pos > r->len)
		return POS_DEAD; /* T is longer than the rule */
	size_t next;
	struct topic_level lv = rule_level(r, pos, &next);
	bool hash = topic_level_is(&lv, '#');
	if (hash || topic_level_is(&lv, '+')) {
		if (depth == 0 && value_dollar(v))
			return POS_DEAD; /* [MQTT-4.7.2-1] */
		return hash ? POS_ALL : next;
	}
	if (v.fresh || v.len != lv.len || (v.len && memcmp(v.s, lv.p, v.len) != 0))
		return POS_DEAD;
	return next;
}

/* Does rule r, at pos, match T if T ends here? Used up exactly, or its '#'
 * matched, or only a last '#' is left ("a/#" matches "a"). */
static bool rule_ends(const struct srule *r, size_t pos)
{
	if (pos == POS_ALL || pos > r->len)
		return true;
	size_t next;
	struct topic_level lv = rule_level(r, pos, &next);
	return lv.last && topic_level_is(&lv, '#');
}

/* check_topic()'s verdict for a T that ends here. */
static bool ends_readable(const struct search *S, const struct live *l, size_t n)
{
	bool od = false, og = false, pd = false, pg = false;
	for (size_t i = 0; i < n; i++) {
		const struct srule *r = &S->rules[l[i].rule];
		if (!rule_ends(r, l[i].pos))
			continue;
		bool deny = r->access == 0, grant = (r->access & ACC_READ) != 0;
		if (r->pattern) {
			pd |= deny;
			pg |= grant;
		} else {
			od |= deny;
			og |= grant;
		}
	}
	return !od && (og || (!pd && pg));
}

/* Pushes the live list of the next level (the rules of l0 that survive
 * value v at level number depth). Returns its length; SIZE_MAX when out
 * of memory. l0 is an offset into S->stack, which may move. */
static size_t push_level(struct search *S, size_t l0, size_t n, struct value v, size_t depth)
{
	if (S->cap - S->used < n) {
		size_t ncap = S->cap ? 2 * S->cap : 64;
		while (ncap - S->used < n)
			ncap *= 2;
		struct live *ns = realloc(S->stack, ncap * sizeof(*ns));
		if (!ns)
			return SIZE_MAX;
		S->stack = ns;
		S->cap = ncap;
	}
	size_t k = 0;
	for (size_t i = 0; i < n; i++) {
		const struct live *in = &S->stack[l0 + i];
		size_t pos = rule_step(&S->rules[in->rule], in->pos, v, depth);
		if (pos != POS_DEAD)
			S->stack[S->used + k++] = (struct live){in->rule, pos};
	}
	S->used += k;
	return k;
}

/* The literal level at the position of live rule l, if it has one. */
static bool live_literal(const struct search *S, const struct live *l, struct value *v)
{
	const struct srule *r = &S->rules[l->rule];
	if (l->pos == POS_ALL || l->pos > r->len)
		return false;
	size_t next;
	struct topic_level lv = rule_level(r, l->pos, &next);
	if (topic_level_is(&lv, '#') || topic_level_is(&lv, '+'))
		return false;
	*v = (struct value){lv.p, lv.len, false};
	return true;
}

static bool search_level(struct search *S, size_t l0, size_t n, struct topic_iter f, size_t depth,
                         bool empty_topic);

/* Tries T's next level = v, then the levels of F left in f. */
static bool search_value(struct search *S, size_t l0, size_t n, struct topic_iter f, size_t depth,
                         struct value v)
{
	size_t mark = S->used;
	S->steps += n;
	size_t k = push_level(S, l0, n, v, depth);
	if (k == SIZE_MAX) {
		S->gave_up = true;
		return true;
	}
	bool empty = depth == 0 && !v.fresh && v.len == 0;
	bool found = search_level(S, mark, k, f, depth + 1, empty);
	S->used = mark;
	return found;
}

/* Can T, whose first `depth` levels are chosen (the rules still live are
 * S->stack[l0..l0+n)), be completed with the levels of F left in f into a
 * readable topic name? empty_topic: T is so far the empty string, which is
 * not a topic name. */
static bool search_level(struct search *S, size_t l0, size_t n, struct topic_iter f, size_t depth,
                         bool empty_topic)
{
	S->steps++;
	if (S->steps > SEARCH_STEPS || depth > SEARCH_DEPTH) {
		S->gave_up = true;
		return true;
	}
	bool od_live = false, od_all = false, og_live = false, og_all = false;
	bool pd_live = false, pd_all = false, pg_all = false, any_grant = false;
	for (size_t i = 0; i < n; i++) {
		const struct srule *r = &S->rules[S->stack[l0 + i].rule];
		bool all = S->stack[l0 + i].pos == POS_ALL;
		bool deny = r->access == 0, grant = (r->access & ACC_READ) != 0;
		any_grant |= grant;
		if (r->pattern) {
			pd_live |= deny;
			pd_all |= deny && all;
			pg_all |= grant && all;
		} else {
			od_live |= deny;
			od_all |= deny && all;
			og_live |= grant;
			og_all |= grant && all;
		}
	}
	if (!any_grant || od_all || (pd_all && !og_live))
		return false;
	if ((og_all && !od_live) || (pg_all && !od_live && !pd_live))
		return !empty_topic || !topic_iter_done(&f);

	struct topic_iter after = f;
	struct topic_level fl;
	if (!topic_iter_next(&after, &fl))
		return !empty_topic && ends_readable(S, &S->stack[l0], n);
	bool hash = topic_level_is(&fl, '#');
	if (!hash && !topic_level_is(&fl, '+'))
		return search_value(S, l0, n, after, depth, (struct value){fl.p, fl.len, false});
	/* '#' also matches T ending here ("a/#" matches "a"), and stays for
	 * the levels after this one. */
	if (hash && depth > 0 && !empty_topic && ends_readable(S, &S->stack[l0], n))
		return true;
	struct topic_iter fnext = hash ? f : after;
	if (search_value(S, l0, n, fnext, depth, (struct value){NULL, 0, true}))
		return true;
	for (size_t i = 0; i < n; i++) {
		struct value v;
		if (!live_literal(S, &S->stack[l0 + i], &v))
			continue;
		/* A wildcard first level never matches a '$' topic. */
		if (depth == 0 && value_dollar(v))
			continue;
		/* Each literal once; the duplicate check counts as work. */
		S->steps += i;
		if (S->steps > SEARCH_STEPS) {
			S->gave_up = true;
			return true;
		}
		bool seen = false;
		for (size_t j = 0; j < i && !seen; j++) {
			struct value u;
			seen = live_literal(S, &S->stack[l0 + j], &u) && u.len == v.len &&
			       (v.len == 0 || memcmp(u.s, v.s, v.len) == 0);
		}
		if (!seen && search_value(S, l0, n, fnext, depth, v))
			return true;
	}
	return false;
}

/* ACL_SUBSCRIBE on filter f (valid, without a $share prefix). */
static bool check_subscribe(const struct acl_db *db, const uint8_t *cid, size_t cid_len,
                            const uint8_t *user, size_t ulen, const uint8_t *f, size_t flen)
{
	const struct rlist *own = user ? user_list(db, user, ulen) : &db->anon;
	size_t n_own = own ? own->n : 0, n_pat = 0, xlen = 0;
	bool pats = patterns_apply(db, cid, cid_len, user, ulen);
	if (pats) {
		for (size_t i = 0; i < db->patterns.n; i++) {
			const struct rule *r = &db->patterns.r[i];
			if (r->has_u && !user)
				continue;
			n_pat++;
			xlen += expand_to(r, cid, cid_len, user, ulen, NULL);
		}
	}
	size_t n = n_own + n_pat;
	if (n == 0)
		return false;
	struct srule *rules = malloc(n * sizeof(*rules));
	uint8_t *xbuf = malloc(xlen ? xlen : 1);
	struct search S = {.rules = rules};
	bool found = false;
	if (!rules || !xbuf)
		goto out;
	size_t k = 0, xo = 0;
	for (size_t i = 0; i < n_own; i++)
		rules[k++] = (struct srule){own->r[i].f, own->r[i].len, own->r[i].access, false};
	for (size_t i = 0; pats && i < db->patterns.n; i++) {
		const struct rule *r = &db->patterns.r[i];
		if (r->has_u && !user)
			continue;
		size_t gl = expand_to(r, cid, cid_len, user, ulen, xbuf + xo);
		rules[k++] = (struct srule){xbuf + xo, gl, r->access, true};
		xo += gl;
	}
	S.stack = malloc(n * sizeof(*S.stack));
	if (!S.stack)
		goto out;
	S.cap = S.used = n;
	for (size_t i = 0; i < n; i++)
		S.stack[i] = (struct live){i, 0};
	struct topic_iter fi;
	topic_iter_init(&fi, f, flen);
	found = search_level(&S, 0, n, fi, 0, false);
out:
	free(S.stack);
	free(xbuf);
	free(rules);
	return found;
}

bool acl_allowed(const struct acl_db *db, const uint8_t *client_id, size_t cid_len,
                 const uint8_t *username, size_t ulen, const uint8_t *topic, size_t tlen,
                 enum acl_access access)
{
	if (!db || !topic || tlen == 0)
		return false;
	if (!client_id)
		cid_len = 0;
	switch (access) {
	case ACL_SUBSCRIBE: {
		struct tern_bytes fb = {topic, (uint32_t)tlen}, group, rest;
		if (tlen > ACL_FILTER_MAX || tern_topic_filter_check(topic, tlen) != TERN_OK)
			return false;
		if (tern_topic_filter_share(fb, &group, &rest)) {
			topic = rest.data;
			tlen = rest.len;
		}
		return check_subscribe(db, client_id, cid_len, username, ulen, topic, tlen);
	}
	case ACL_READ:
	case ACL_WRITE:
		/* A topic name has no wildcards; never let one match as a name. */
		if (memchr(topic, '+', tlen) || memchr(topic, '#', tlen))
			return false;
		return check_topic(db, client_id, cid_len, username, ulen, topic, tlen, access);
	default:
		return false;
	}
}
