/*
 * config_archive.c - the archive directives; see config_archive.h and
 * docs/archive.md.
 *
 * Like config_bridge.c, kept out of config.c's tables because a directive
 * writes into the block the last `archive` line opened. config_load.c
 * hands it every line no table knows before it calls the directive
 * unknown. The sink URL is checked here (its scheme and form, by the
 * sink's own check, no I/O), so that a URL that cannot be parsed stops
 * ternd naming its line; whether the database takes the schema is known
 * only when ternd connects at start (src/archive).
 */
#include "broker/config_archive.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "archive/sink.h"
#include "broker/config.h"
#include "broker/config_int.h"
#include "tern/codec.h"

/* "50ms", "2s", "1m": milliseconds into *out, at most max. */
static TERN_MUST_CHECK enum tern_err parse_ms(struct config_ctx *c, const char *key, const char *v,
                                              uint64_t max, uint32_t *out)
{
	char *end = NULL;
	errno = 0;
	unsigned long long n = v && *v != '-' && *v != '+' ? strtoull(v, &end, 10) : 0;
	uint64_t mult = 0;
	if (v && end && end != v && !errno) {
		if (strcmp(end, "ms") == 0)
			mult = 1;
		else if (strcmp(end, "s") == 0)
			mult = 1000;
		else if (strcmp(end, "m") == 0)
			mult = 60000;
	}
	if (!mult || n > max / mult)
		return config_fail(c, "%s: '%s' is not a time like 50ms, 2s or 1m (at most %llus)",
		                   key, v ? v : "", (unsigned long long)(max / 1000));
	*out = (uint32_t)(n * mult);
	return TERN_OK;
}

/* "65536", "512k", "64M", "1G" (KiB, MiB, GiB; a trailing B allowed). */
static TERN_MUST_CHECK enum tern_err parse_bytes(struct config_ctx *c, const char *key,
                                                 const char *v, uint64_t *out)
{
	char *end = NULL;
	errno = 0;
	unsigned long long n = v && *v != '-' && *v != '+' ? strtoull(v, &end, 10) : 0;
	uint64_t mult = 0;
	if (v && end && end != v && !errno) {
		char u = *end;
		const char *rest = u ? end + 1 : end;
		if (*rest == 'B' || *rest == 'b')
			rest++;
		if (!*rest) {
			mult = u == 0 || u == 'B' || u == 'b' ? 1
			       : u == 'k' || u == 'K'         ? 1u << 10
			       : u == 'M' || u == 'm'         ? 1u << 20
			       : u == 'G' || u == 'g'         ? 1u << 30
			                                      : 0;
			if ((u == 'B' || u == 'b') && end[1])
				mult = 0;
		}
	}
	if (!mult || n == 0 || n > UINT64_MAX / 2 / mult)
		return config_fail(c, "%s: '%s' is not a size like 65536, 512k, 64M or 1G", key,
		                   v ? v : "");
	*out = n * mult;
	return TERN_OK;
}

static TERN_MUST_CHECK enum tern_err open_archive(struct config_ctx *c, const char *key,
                                                  const char *const *arg, int n)
{
	struct config *cfg = c->cfg;
	if (n != 1)
		return config_fail(c, "%s: expected a name", key);
	if (cfg->n_archives == MAX_ARCHIVES)
		return config_fail(c, "%s: more than %d archives", key, MAX_ARCHIVES);
	if (!archive_name_ok(arg[0]))
		return config_fail(c,
		                   "%s: '%s' is not a name of letters, digits and _ (not first), "
		                   "at most 63 (it names the table or collection)",
		                   key, arg[0]);
	for (size_t i = 0; i < cfg->n_archives; i++)
		if (strcmp(cfg->archives[i].name, arg[0]) == 0)
			return config_fail(c, "%s: %s is defined twice", key, arg[0]);
	struct archive_cfg *a = &cfg->archives[cfg->n_archives];
	memset(a, 0, sizeof(*a));
	snprintf(a->name, sizeof(a->name), "%s", arg[0]);
	a->batch_n = ARCHIVE_BATCH_N;
	a->batch_ms = ARCHIVE_BATCH_MS;
	a->queue_n = ARCHIVE_QUEUE_N;
	a->queue_bytes = ARCHIVE_QUEUE_BYTES;
	snprintf(a->where, sizeof(a->where), "%s:%d", c->file, c->line);
	cfg->n_archives++;
	return TERN_OK;
}

enum tern_err config_archive_apply(struct config_ctx *c, const char *key, const char *const *arg,
                                   int n)
{
	if (strncmp(key, "archive", 7) != 0 || (key[7] && key[7] != '_'))
		return TERN_E_NOT_FOUND;
	static const char *const known[] = {"archive_sink", "archive_topic", "archive_qos",
	                                    "archive_batch", "archive_queue"};
	if (strcmp(key, "archive") == 0)
		return open_archive(c, key, arg, n);
	bool is_known = false;
	for (size_t i = 0; i < sizeof(known) / sizeof(known[0]); i++)
		is_known |= strcmp(key, known[i]) == 0;
	if (!is_known)
		return TERN_E_NOT_FOUND;
	struct config *cfg = c->cfg;
	if (cfg->n_archives == 0)
		return config_fail(c, "%s: only allowed after an archive line", key);
	struct archive_cfg *a = &cfg->archives[cfg->n_archives - 1];
	enum tern_err err;
	uint64_t v = 0;
	if (strcmp(key, "archive_sink") == 0) {
		if (n != 1)
			return config_fail(c, "%s: expected one URL", key);
		if (a->url[0])
			return config_fail(c, "%s: archive %s has a sink already", key, a->name);
		if (strlen(arg[0]) >= sizeof(a->url))
			return config_fail(c, "%s: a URL longer than %zu bytes", key,
			                   sizeof(a->url) - 1);
		char why[512];
		const struct archive_sink_ops *ops = archive_sink_find(arg[0], why, sizeof(why));
		if (!ops || ops->check(arg[0], why, sizeof(why)))
			return config_fail(c, "%s: %s", key, why);
		snprintf(a->url, sizeof(a->url), "%s", arg[0]);
		return TERN_OK;
	}
	if (strcmp(key, "archive_topic") == 0) {
		if (n != 1)
			return config_fail(c, "%s: expected one topic filter", key);
		if (a->n_topics == MAX_ARCHIVE_TOPICS)
			return config_fail(c, "%s: more than %d topics in archive %s", key,
			                   MAX_ARCHIVE_TOPICS, a->name);
		size_t len = strlen(arg[0]);
		if (len >= ARCHIVE_TOPIC_MAX ||
		    tern_topic_filter_check((const uint8_t *)arg[0], len) != TERN_OK ||
		    strncmp(arg[0], "$share/", 7) == 0)
			return config_fail(c, "%s: '%s' is not a valid topic filter", key, arg[0]);
		snprintf(a->topics[a->n_topics++], ARCHIVE_TOPIC_MAX, "%s", arg[0]);
		return TERN_OK;
	}
	if (strcmp(key, "archive_qos") == 0) {
		if (n != 1)
			return config_fail(c, "%s: expected 0, 1 or 2", key);
		if ((err = config_parse_u64(c, key, arg[0], 0, 2, &v)))
			return err;
		a->qos = (uint8_t)v;
		return TERN_OK;
	}
	if (strcmp(key, "archive_batch") == 0) {
		if (n < 1 || n > 2)
			return config_fail(c, "%s: expected N [TIME]", key);
		if ((err = config_parse_u64(c, key, arg[0], 1, ARCHIVE_BATCH_N_MAX, &v)))
			return err;
		uint32_t ms = a->batch_ms;
		if (n == 2 && (err = parse_ms(c, key, arg[1], ARCHIVE_BATCH_MS_MAX, &ms)))
			return err;
		a->batch_n = (uint32_t)v;
		a->batch_ms = ms;
		return TERN_OK;
	}
	/* archive_queue N [BYTES] */
	if (n < 1 || n > 2)
		return config_fail(c, "%s: expected N [BYTES]", key);
	if ((err = config_parse_u64(c, key, arg[0], 1, UINT32_MAX, &v)))
		return err;
	uint64_t bytes = a->queue_bytes;
	if (n == 2 && (err = parse_bytes(c, key, arg[1], &bytes)))
		return err;
	a->queue_n = v;
	a->queue_bytes = bytes;
	return TERN_OK;
}

enum tern_err config_archive_check(const struct archive_cfg *archives, size_t n, char *err,
                                   size_t errlen)
{
	for (size_t i = 0; i < n; i++) {
		const struct archive_cfg *a = &archives[i];
		if (!a->url[0]) {
			snprintf(err, errlen, "%s: archive %s: no archive_sink", a->where, a->name);
			return TERN_E_CONFIG;
		}
		if (!a->n_topics) {
			snprintf(err, errlen, "%s: archive %s: no archive_topic", a->where,
			         a->name);
			return TERN_E_CONFIG;
		}
	}
	return TERN_OK;
}
