/*
 * config_load.c - reading mosquitto.conf files; see config.h and
 * config_int.h.
 *
 * The parser is a set of directive tables, one per file of the module
 * (`tables[]` below): one row per directive names it, says what kind of
 * value it takes, how many words may follow it on the line, which struct
 * the value goes into (the broker's struct config, or the listener the line
 * belongs to) and where (a field offset and size), with the bounds of a
 * number. apply() is the one loop over them: it finds the row, refuses a
 * line with more words than the row allows, and hands the words to the
 * kind's parser (config_value.c), which checks the value as strictly as
 * mosquitto does and stores it. Every error names the file and the line; a
 * directive in no table is an error naming it, never silently ignored.
 *
 * Adding a directive is one row in most cases, in the file of its concern:
 *
 *   {"max_foo", K_UINT, 1, G(max_foo), RANGE(0, 65535)},      number into struct config
 *   {"foo_file", K_STR, 1, G(foo_file)},               string (a char array)
 *   {"use_foo", K_BOOL, 1, L(use_foo)},                boolean of the current listener
 *   {"foo_mode", K_ENUM, 1, G(foo_mode), .choices = foo_modes},   one of some names
 *   {"foo_expiry", K_DURATION, 1, G(foo_expiry)},      2h, 14d, 1w, 6m, 1y (uint32_t)
 *   {"foo_interval", K_UINT, 1, NO_FIELD, RANGE(0, 60)},      accepted and checked, not used
 *
 * G(member) is a member of struct config, L(member) one of struct
 * listener_cfg (the last `listener`, or the default listener, which such a
 * line opens as mosquitto does), SEC(member) one of struct security_cfg
 * (the broker's, or the current listener's with per_listener_settings
 * true); the field's size comes from the member, so
 * the parser writes exactly its width. A directive whose value needs more
 * than a range check (several arguments, a side effect, a special value
 * such as -1) gets kind K_FUNC and a setter of a few lines, `.set = ...`.
 * The words of a line are split on blanks; a word starting with '#' after
 * the first argument begins a comment; ARGS_REST hands the setter the rest
 * of the line verbatim (free text with spaces).
 */
#include "broker/config_int.h"

#include <dirent.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static TERN_MUST_CHECK enum tern_err set_include_dir(struct config_ctx *c,
                                                     const struct directive *d, void *field,
                                                     const char *const *arg);

static const struct directive rows[] = {
        {"include_dir", K_FUNC, 1, NO_FIELD, .set = set_include_dir},
};

const struct directive_table config_load_table = TABLE(rows);

const struct directive_table *const config_tables[] = {
        &config_listener_table,
        &config_broker_table,
        &config_load_table,
        NULL,
};

/* The row of the directive named key; NULL when no table has it. */
static const struct directive *find(const char *key)
{
	for (const struct directive_table *const *t = config_tables; *t; t++)
		for (size_t i = 0; i < (*t)->n; i++)
			if (strcmp(key, (*t)->rows[i].name) == 0)
				return &(*t)->rows[i];
	return NULL;
}

/* Applies one directive: finds its row, checks the number of words, then
 * parses and stores the value as the row's kind says. arg[0..n) are the
 * words after the name (arg[n..MAX_ARGS] NULL). */
static TERN_MUST_CHECK enum tern_err apply(struct config_ctx *c, const char *key,
                                           const char *const *arg, int n)
{
	const struct directive *d = find(key);
	if (!d) {
		/* In no table: a bridge directive (config_bridge.c), which
		 * writes into the bridge the last `connection` opened, or
		 * unknown. */
		char why[512];
		enum tern_err berr = config_bridge_apply(c->cfg->bridges, &c->cfg->n_bridges, key,
		                                         arg, n, why, sizeof(why));
		if (berr == TERN_E_NOT_FOUND) {
			/* Or an archive directive (config_archive.c), which
			 * writes into the last `archive` block. */
			enum tern_err aerr = config_archive_apply(c, key, arg, n);
			if (aerr == TERN_E_NOT_FOUND)
				return config_fail(c, "unknown or unsupported directive '%s'", key);
			return aerr;
		}
		return berr ? config_fail(c, "%s", why) : TERN_OK;
	}
	const char *rest[MAX_ARGS + 1] = {c->rest};
	if (d->args == ARGS_REST)
		arg = rest;
	else if (n > d->args)
		return config_fail(c, "%s: too many arguments", key);

	void *field = NULL;
	if (d->size > 0) {
		void *base = c->cfg;
		if (d->scope == S_LISTENER && !(base = config_current_listener(c)))
			return TERN_E_CONFIG;
		if (d->scope == S_SECURITY && !(base = config_current_security(c)))
			return TERN_E_CONFIG;
		field = (char *)base + d->off;
	}
	uint64_t v = 0;
	bool b = false;
	enum tern_err err;
	const struct config_choice *ch;
	switch (d->kind) {
	case K_UINT:
		if ((err = config_parse_u64(c, key, arg[0], d->min, d->max, &v)))
			return err;
		config_store_uint(field, d->size, v);
		return TERN_OK;
	case K_BOOL:
		if ((err = config_parse_bool(c, key, arg[0], &b)))
			return err;
		config_store_uint(field, d->size, b);
		return TERN_OK;
	case K_STR:
		return config_copy_value(c, key, arg[0], field, d->size);
	case K_DURATION:
		return config_parse_duration(c, key, arg[0], field);
	case K_ENUM:
		if ((ch = config_choice_find(d->choices, arg[0]))) {
			config_store_uint(field, d->size, ch->value);
			return TERN_OK;
		}
		/* "expected a, b or c", from the table. */
		char names[256] = "";
		size_t len = 0;
		for (ch = d->choices; ch->name; ch++) {
			const char *sep = ch == d->choices ? "" : ch[1].name ? ", " : " or ";
			int w = snprintf(names + len, sizeof(names) - len, "%s%s", sep, ch->name);
			if (w > 0 && (size_t)w < sizeof(names) - len)
				len += (size_t)w;
		}
		return config_fail(c, "%s: expected %s", key, names);
	case K_FUNC:
		return d->set(c, d, field, arg);
	}
	return config_fail(c, "%s: unknown kind of directive", key);
}

/* ---- Files ---- */

static TERN_MUST_CHECK enum tern_err parse_line(struct config_ctx *c, char *line);

/* A problem of the line at hand: the end of the reading, or, when every
 * problem is to be reported (config_load_all), one more reported, and the
 * reading goes on (TERN_OK). */
static TERN_MUST_CHECK enum tern_err problem(struct config_ctx *c, enum tern_err rc)
{
	if (!rc || !c->report)
		return rc;
	c->report(c->report_arg, c->err);
	(*c->problems)++;
	c->err[0] = 0;
	return TERN_OK;
}

/* Applies every line of f; a line too long for the buffer is an error,
 * never split into two directives (its rest is skipped, not read as
 * lines of its own). */
static TERN_MUST_CHECK enum tern_err parse_file(struct config_ctx *c, FILE *f)
{
	char line[4096];
	bool skip = false; /* the rest of a line too long */
	while (fgets(line, sizeof(line), f)) {
		bool whole = strchr(line, '\n') || feof(f);
		if (skip) {
			skip = !whole;
			continue;
		}
		c->line++;
		enum tern_err rc;
		if (!whole) {
			skip = true;
			rc = config_fail(c, "line too long");
		} else {
			rc = parse_line(c, line);
		}
		if ((rc = problem(c, rc)))
			return rc;
	}
	return TERN_OK;
}

/* include_dir: every *.conf file of the directory, in alphabetical order,
 * as mosquitto reads them. */
static TERN_MUST_CHECK enum tern_err set_include_dir(struct config_ctx *c,
                                                     const struct directive *d, void *field,
                                                     const char *const *arg)
{
	(void)d;
	(void)field;
	const char *dir = arg[0];
	if (!dir)
		return config_fail(c, "include_dir needs a directory");
	/* As in mosquitto: only the main file may include, so a directory
	 * cannot include itself (endless recursion). */
	if (c->included)
		return config_fail(c, "include_dir is only allowed in the main configuration file");
	struct dirent **names = NULL;
	int n = scandir(dir, &names, NULL, alphasort);
	if (n < 0)
		return config_fail(c, "include_dir %s: %s", dir, strerror(errno));
	enum tern_err rc = TERN_OK;
	for (int i = 0; i < n; i++) {
		size_t len = strlen(names[i]->d_name);
		if (!rc && len > 5 && strcmp(names[i]->d_name + len - 5, ".conf") == 0) {
			char path[1024];
			snprintf(path, sizeof(path), "%s/%s", dir, names[i]->d_name);
			FILE *f = fopen(path, "r");
			if (!f) {
				rc = problem(c, config_fail(c, "include_dir: cannot open %s: %s",
				                            path, strerror(errno)));
			} else {
				struct config_ctx sub = *c;
				sub.file = path;
				sub.line = 0;
				sub.included = true;
				rc = parse_file(&sub, f);
				fclose(f);
				c->log_type_seen = sub.log_type_seen;
				c->security_seen = sub.security_seen;
			}
		}
		free(names[i]);
	}
	free(names);
	return rc;
}

/* Splits a line into the directive and its words. A word starting with
 * '#' after the first argument starts a comment (the first argument may
 * be '#' itself, e.g. a topic filter). */
static TERN_MUST_CHECK enum tern_err parse_line(struct config_ctx *c, char *line)
{
	char *save = NULL;
	char copy[4096];
	snprintf(copy, sizeof(copy), "%s", line);
	char *key = strtok_r(line, " \t\r\n", &save);
	if (!key || key[0] == '#')
		return TERN_OK;
	/* The raw remainder of the line, trimmed, for free-text values. */
	char *rest = copy + (key - line) + strlen(key);
	while (*rest == ' ' || *rest == '\t')
		rest++;
	rest[strcspn(rest, "\r\n")] = 0;
	c->rest = rest;
	/* Every word is kept, up to MAX_WORDS (a bridge's `address` takes
	 * several); one more is an error, not a word dropped unread. */
	const char *arg[MAX_WORDS + 1] = {NULL};
	int n = 0;
	for (char *w; (w = strtok_r(NULL, " \t\r\n", &save)); n++) {
		if (n > 0 && w[0] == '#')
			break;
		if (n == MAX_WORDS)
			return config_fail(c, "%s: more than %d values", key, MAX_WORDS);
		arg[n] = w;
	}
	return apply(c, key, arg, n);
}

static TERN_MUST_CHECK enum tern_err load(struct config_ctx *c, const char *path)
{
	FILE *f = fopen(path, "r");
	if (!f) {
		snprintf(c->err, c->errlen, "%s: cannot open: %s", path, strerror(errno));
		return TERN_E_SYS;
	}
	enum tern_err rc = parse_file(c, f);
	fclose(f);
	return rc;
}

enum tern_err config_load(struct config *cfg, const char *path, char *err, size_t errlen)
{
	struct config_ctx c = {.cfg = cfg, .file = path, .err = err, .errlen = errlen};
	return load(&c, path);
}

enum tern_err config_load_all(struct config *cfg, const char *path, config_report_fn report,
                              void *arg, unsigned *problems, char *err, size_t errlen)
{
	unsigned before = *problems;
	struct config_ctx c = {.cfg = cfg,
	                       .file = path,
	                       .err = err,
	                       .errlen = errlen,
	                       .report = report,
	                       .report_arg = arg,
	                       .problems = problems};
	enum tern_err rc = load(&c, path);
	if (rc)
		return rc;
	if (*problems == before)
		return TERN_OK;
	snprintf(err, errlen, "%s: %u problem%s", path, *problems - before,
	         *problems - before == 1 ? "" : "s");
	return TERN_E_CONFIG;
}
