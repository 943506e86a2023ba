/*
 * history.c - `tern history`: read an archive back (docs/archive.md).
 *
 *   tern history (--sink URL [--table NAME] | -c TERND.CONF [--archive NAME])
 *                [-t FILTER]... [--since AGE] [-C COUNT] [-F FORMAT | -v] [-N]
 *                [--pretty]
 *
 * The archive is named by its sink URL and table, or found in ternd's
 * config file: the `archive NAME` block (the first one without --archive)
 * and its archive_sink, read with a scan of that file's lines (the tool
 * does not link the broker; include_dir is not followed).
 *
 * It opens the archive's database through the same sinks ternd writes with
 * (src/archive/sink.h, any of them), reads the rows received since AGE
 * (30s, 15m, 1h, 2d, 1w; all without --since), oldest first, keeps those
 * whose topic matches a -t filter (all without -t), and prints each as
 * `tern sub` would have printed it when it arrived (format.c): the payload,
 * -v "topic payload", or -F with mosquitto_sub's format sequences, whose
 * time stamps (@-sequences, %j's tst, %I, %U) are the time ternd received
 * the message. The database is only read: a table that is missing is an
 * error, never created.
 *
 * One filter narrows the query to its literal prefix (the index on
 * (topic, received_at) can serve it); every filter is then matched here,
 * exactly as MQTT matches it, so $-topics stay out of wildcard filters.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "archive/record.h"
#include "archive/sink.h"
#include "tools.h"

struct history {
	struct tool_opts o;
	const char *sink;
	const char *table;
	bool table_set;      /* --table given */
	const char *conf;    /* -c */
	const char *archive; /* --archive */
	char conf_sink[1024];
	char conf_table[64];
	const char **filters;
	size_t n_filters;
	int64_t since_ms; /* INT64_MIN: all */
	unsigned long count;
	unsigned long printed;
	char *topic; /* the current record's topic, NUL-terminated */
	size_t topic_cap;
};

static void usage(FILE *f)
{
	fputs("Usage: tern history (--sink URL [--table NAME] | -c TERND.CONF [--archive NAME])\n"
	      "                    [-t FILTER]... [--since AGE] [-C COUNT] [-F FORMAT | -v] [-N]\n"
	      "                    [--pretty]\n"
	      "Prints the messages an archive of ternd holds (docs/archive.md), oldest first.\n"
	      "  --sink URL     the archive's database: sqlite:PATH, postgresql://... or\n"
	      "                 mongodb://...\n"
	      "  --table NAME   the table (collection) of the archive (history)\n"
	      "  -c FILE        or take the sink and table from ternd's config file\n"
	      "  --archive NAME   its archive block NAME (the first one by default)\n"
	      "  -t FILTER      only topics matching FILTER (repeatable; all without -t)\n"
	      "  --since AGE    only messages received in the last AGE: 30s, 15m, 1h, 2d, 1w\n"
	      "  -C COUNT       stop after COUNT messages\n"
	      "  -F FORMAT      print as tern sub -F does (times: when ternd received them)\n"
	      "  -v             print \"topic payload\"\n"
	      "  -N             no newline after each message\n"
	      "  --pretty       lay out %j / %J JSON over several lines\n",
	      f);
}

/* "30s", "15m", "1h", "2d", "1w" (a bare number: seconds) as ms; -1 when
 * it is none of those. */
static int64_t parse_age(const char *s)
{
	char *end = NULL;
	unsigned long long n = strtoull(s, &end, 10);
	if (end == s || *s == '-' || *s == '+')
		return -1;
	int64_t unit = !*end                   ? 1
	               : strcmp(end, "s") == 0 ? 1
	               : strcmp(end, "m") == 0 ? 60
	               : strcmp(end, "h") == 0 ? 3600
	               : strcmp(end, "d") == 0 ? 86400
	               : strcmp(end, "w") == 0 ? 7 * 86400
	                                       : 0;
	if (!unit || n > (unsigned long long)(INT64_MAX / 1000 / unit))
		return -1;
	return (int64_t)n * unit * 1000;
}

/* Finds the archive block in h->conf (h->archive, or the first) and takes
 * its archive_sink and name; false after printing why not. Lines are
 * words as ternd reads them: a # word after the first argument starts a
 * comment. */
static bool from_conf(struct history *h)
{
	FILE *f = fopen(h->conf, "r");
	if (!f) {
		fprintf(stderr, "Error: cannot read %s.\n", h->conf);
		return false;
	}
	char line[2048];
	bool in = false, found = false;
	while (fgets(line, sizeof(line), f)) {
		char *save = NULL;
		char *key = strtok_r(line, " \t\r\n", &save);
		char *arg = key ? strtok_r(NULL, " \t\r\n", &save) : NULL;
		if (!key || key[0] == '#' || !arg)
			continue;
		if (strcmp(key, "archive") == 0) {
			if (found)
				break;
			in = !h->archive || strcmp(arg, h->archive) == 0;
			if (in) {
				snprintf(h->conf_table, sizeof(h->conf_table), "%s", arg);
				found = true;
			}
		} else if (in && strcmp(key, "archive_sink") == 0) {
			snprintf(h->conf_sink, sizeof(h->conf_sink), "%s", arg);
		}
	}
	fclose(f);
	if (!found || !h->conf_sink[0]) {
		fprintf(stderr, "Error: %s has no archive%s%s%s.\n", h->conf, h->archive ? " " : "",
		        h->archive ? h->archive : "", found ? " with an archive_sink" : "");
		return false;
	}
	h->sink = h->conf_sink;
	if (!h->table_set)
		h->table = h->conf_table;
	return true;
}

/* Parses argv; returns -1 to go on, else the exit status. */
static int parse(struct history *h, int argc, char **argv)
{
	for (int i = 1; i < argc; i++) {
		const char *a = argv[i];
		const char *v = i + 1 < argc ? argv[i + 1] : NULL;
		bool takes = strcmp(a, "--sink") == 0 || strcmp(a, "--table") == 0 ||
		             strcmp(a, "-c") == 0 || strcmp(a, "--archive") == 0 ||
		             strcmp(a, "-t") == 0 || strcmp(a, "--since") == 0 ||
		             strcmp(a, "-C") == 0 || strcmp(a, "-F") == 0;
		if (strcmp(a, "-h") == 0 || strcmp(a, "--help") == 0) {
			usage(stdout);
			return 0;
		}
		if (takes && !v) {
			opts_error(&h->o, "%s needs a value.", a);
			return TOOL_EXIT_USAGE;
		}
		if (takes)
			i++;
		if (strcmp(a, "--sink") == 0) {
			h->sink = v;
		} else if (strcmp(a, "-c") == 0) {
			h->conf = v;
		} else if (strcmp(a, "--archive") == 0) {
			h->archive = v;
		} else if (strcmp(a, "--table") == 0) {
			if (!archive_name_ok(v)) {
				opts_error(&h->o, "--table: '%s' cannot name a table.", v);
				return TOOL_EXIT_USAGE;
			}
			h->table = v;
			h->table_set = true;
		} else if (strcmp(a, "-t") == 0) {
			if (tern_topic_filter_check((const uint8_t *)v, strlen(v)) != TERN_OK) {
				opts_error(&h->o, "-t: '%s' is not a valid topic filter.", v);
				return TOOL_EXIT_USAGE;
			}
			const char **f = realloc(h->filters, (h->n_filters + 1) * sizeof(*f));
			if (!f) {
				fprintf(stderr, "Error: out of memory.\n");
				return 1;
			}
			h->filters = f;
			h->filters[h->n_filters++] = v;
		} else if (strcmp(a, "--since") == 0) {
			int64_t age = parse_age(v);
			if (age < 0) {
				opts_error(&h->o,
				           "--since: '%s' is not an age like 30s, 15m, 1h, 2d, 1w.",
				           v);
				return TOOL_EXIT_USAGE;
			}
			struct timespec now;
			clock_gettime(CLOCK_REALTIME, &now);
			h->since_ms = (int64_t)now.tv_sec * 1000 + now.tv_nsec / 1000000 - age;
		} else if (strcmp(a, "-C") == 0) {
			char *end = NULL;
			h->count = strtoul(v, &end, 10);
			if (!*v || *end || *v == '-' || h->count == 0) {
				opts_error(&h->o, "-C: '%s' is not a count above 0.", v);
				return TOOL_EXIT_USAGE;
			}
		} else if (strcmp(a, "-F") == 0) {
			if (!format_check(&h->o, v))
				return TOOL_EXIT_USAGE;
			h->o.format = v;
		} else if (strcmp(a, "-v") == 0) {
			h->o.verbose = true;
		} else if (strcmp(a, "-N") == 0) {
			h->o.no_eol = true;
		} else if (strcmp(a, "--pretty") == 0) {
			h->o.pretty = true;
		} else {
			opts_error(&h->o, "unknown option '%s'.", a);
			return TOOL_EXIT_USAGE;
		}
	}
	if (h->conf && !h->sink && !from_conf(h))
		return 1;
	if (!h->sink) {
		opts_error(&h->o, "--sink URL (or -c TERND.CONF) is needed.");
		return TOOL_EXIT_USAGE;
	}
	return -1;
}

static bool wanted(const struct history *h, const struct archive_record *r)
{
	if (!h->n_filters)
		return true;
	for (size_t i = 0; i < h->n_filters; i++)
		if (tern_topic_matches((const uint8_t *)h->filters[i], strlen(h->filters[i]),
		                       r->topic.data, r->topic.len))
			return true;
	return false;
}

static enum tern_err print_record(void *arg, const struct archive_record *r)
{
	struct history *h = arg;
	if (!wanted(h, r))
		return TERN_OK;
	if (r->topic.len + 1 > h->topic_cap) {
		char *t = realloc(h->topic, r->topic.len + 1);
		if (!t)
			return TERN_E_NOMEM;
		h->topic = t;
		h->topic_cap = r->topic.len + 1;
	}
	memcpy(h->topic, r->topic.data, r->topic.len);
	h->topic[r->topic.len] = '\0';
	struct tern_message m = {
	        .topic = h->topic,
	        .topic_len = r->topic.len,
	        .payload = r->payload.data,
	        .payload_len = r->payload.len,
	        .qos = r->qos,
	        .retain = r->retain,
	};
	struct tern_props *p = &m.props;
	if (r->has_payload_format) {
		p->present |= TERN_PROP_BIT(TERN_PROP_PAYLOAD_FORMAT);
		p->payload_format = r->payload_format;
	}
	if (r->has_content_type) {
		p->present |= TERN_PROP_BIT(TERN_PROP_CONTENT_TYPE);
		p->content_type = r->content_type;
	}
	if (r->has_response_topic) {
		p->present |= TERN_PROP_BIT(TERN_PROP_RESPONSE_TOPIC);
		p->response_topic = r->response_topic;
	}
	if (r->has_correlation_data) {
		p->present |= TERN_PROP_BIT(TERN_PROP_CORRELATION_DATA);
		p->correlation_data = r->correlation_data;
	}
	if (r->user_raw.len) {
		p->raw = r->user_raw;
		size_t cur = 0;
		struct tern_bytes k, v;
		while (tern_props_next_user(p, &cur, &k, &v))
			p->n_user++;
	}
	struct timespec at = {.tv_sec = (time_t)(r->received_at / 1000),
	                      .tv_nsec = (long)(r->received_at % 1000) * 1000000L};
	format_message_at(stdout, &h->o, &m, &at);
	if (h->count && ++h->printed >= h->count)
		return TERN_E_LIMIT; /* enough: stops the read */
	return TERN_OK;
}

int history_main(int argc, char **argv)
{
	struct history h = {.table = "history", .since_ms = INT64_MIN};
	h.o.prog = "tern history";
	h.o.mode = TOOL_SUB;
	int rc = parse(&h, argc, argv);
	if (rc >= 0) {
		free(h.filters);
		return rc;
	}
	char err[1024];
	const struct archive_sink_ops *ops = archive_sink_find(h.sink, err, sizeof(err));
	struct archive_db *db = NULL;
	enum tern_err e = ops ? ops->check(h.sink, err, sizeof(err)) : TERN_E_CONFIG;
	if (!e)
		e = ops->open(&db, h.sink, h.table, false, err, sizeof(err));
	if (!e) {
		struct archive_query q = {.since_ms = h.since_ms == INT64_MIN ? 0 : h.since_ms};
		if (h.n_filters == 1)
			q.prefix = archive_filter_prefix((struct tern_bytes){
			        (const uint8_t *)h.filters[0], (uint32_t)strlen(h.filters[0])});
		e = ops->read(db, &q, print_record, &h, err, sizeof(err));
		if (e == TERN_E_LIMIT)
			e = TERN_OK;
		else if (e == TERN_E_NOMEM)
			snprintf(err, sizeof(err), "out of memory");
		ops->close(db);
	}
	if (e)
		fprintf(stderr, "Error: %s\n", err);
	fflush(stdout);
	free(h.filters);
	free(h.topic);
	return e ? 1 : 0;
}
