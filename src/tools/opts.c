/*
 * opts.c - the command line of `tern pub` and `tern sub`: defaults, and
 * the checks that need the whole line.
 *
 * The options themselves are rows of the table in options.c, shared with
 * `tern bench`; they are mosquitto_pub's and mosquitto_sub's, with their
 * meaning and, mostly, their error messages. What is left here runs after
 * the table has read every word: -c without an id, -R with
 * --retained-only, topics checked with the codec's own validators, a
 * client id made up for MQTT 3.1 / 3.1.1, and the TLS rules of
 * common_finish() (--cafile, --capath or --tls-use-os-certs turn TLS on, so
 * do an mqtts:// URL and -p 8883 without other TLS options; --cert and
 * --key go together; without -p the port is 8883 rather than 1883).
 *
 * Every error names the option and ends with a hint to --help; the caller
 * exits with status 1.
 */
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include <unistd.h>

#include "tools.h"

void opts_error(const struct tool_opts *o, const char *fmt, ...)
{
	va_list ap;
	char msg[1024];

	va_start(ap, fmt);
	vsnprintf(msg, sizeof(msg), fmt, ap);
	va_end(ap);
	tool_error(o->prog, "%s", msg);
}

/* A random client id for MQTT 3.1 / 3.1.1, which needs one (v5 lets the
 * broker assign it). 21 characters: 3.1 allows at most 23. */
static void make_client_id(struct tool_opts *o)
{
	static const char alnum[] = "abcdefghijklmnopqrstuvwxyz0123456789";
	uint8_t rnd[16];
	size_t i;
	const char *pre = o->mode == TOOL_PUB ? "tpub-" : "tsub-";

	if (getrandom(rnd, sizeof(rnd), 0) != (ssize_t)sizeof(rnd)) {
		for (i = 0; i < sizeof(rnd); i++)
			rnd[i] = (uint8_t)((unsigned)getpid() >> (i % 4 * 8)) ^ (uint8_t)(i * 37);
	}
	memcpy(o->id_buf, pre, 5);
	for (i = 0; i < sizeof(rnd); i++)
		o->id_buf[5 + i] = alnum[rnd[i] % (sizeof(alnum) - 1)];
	o->id_buf[5 + sizeof(rnd)] = '\0';
	o->id = o->id_buf;
}

/* Checks that need the whole command line. */
static bool opts_finish(struct tool_opts *o, struct optparse *p)
{
	if (!common_finish(p, true))
		return false;
	if (o->id != NULL && o->id_prefix != NULL) {
		opts_error(o, "-i and -I argument cannot be used together.");
		return false;
	}
	if (o->id_prefix != NULL) {
		snprintf(o->id_buf, sizeof(o->id_buf), "%.80s%ld", o->id_prefix, (long)getpid());
		o->id = o->id_buf;
	}
	if (o->id != NULL && o->id[0] == '\0' && o->common.version != TERN_V5 && !o->clean) {
		opts_error(o, "an empty client id (-i \"\") needs a clean session (no -c).");
		return false;
	}
	if (o->id == NULL && (!o->clean || (o->session_expiry_set && o->session_expiry != 0))) {
		opts_error(o, "You must provide a client id if you are using the -c option%s.",
		           o->clean ? " or a session expiry interval (-x)" : "");
		return false;
	}
	if (o->id == NULL && o->common.version != TERN_V5)
		make_client_id(o);
	if (o->password != NULL && o->username == NULL && o->common.version != TERN_V5) {
		opts_error(o, "-P: a password needs a username (-u) in MQTT 3.1 / 3.1.1.");
		return false;
	}
	if ((option_given(p, "--will-payload") || option_given(p, "--will-qos") ||
	     option_given(p, "--will-retain")) &&
	    o->will_topic == NULL) {
		opts_error(o, "--will-payload, --will-qos and --will-retain need --will-topic.");
		return false;
	}
	if (o->will_topic != NULL && tern_topic_name_check((const uint8_t *)o->will_topic,
	                                                   strlen(o->will_topic)) != TERN_OK) {
		opts_error(o, "Invalid will topic '%s', does it contain '+' or '#'?",
		           o->will_topic);
		return false;
	}
	if (o->n_topics == 0) {
		if (o->mode == TOOL_PUB)
			opts_error(o, "Both topic and message must be supplied.");
		else if (o->n_unsub == 0)
			opts_error(o, "You must specify a topic to subscribe to.");
		if (o->mode == TOOL_PUB || o->n_unsub == 0)
			return false;
	}
	for (size_t i = 0; i < o->n_topics; i++) {
		const uint8_t *t = (const uint8_t *)o->topics[i];
		size_t len = strlen(o->topics[i]);

		if (o->mode == TOOL_PUB && tern_topic_name_check(t, len) != TERN_OK) {
			opts_error(o, "Invalid publish topic '%s', does it contain '+' or '#'?",
			           o->topics[i]);
			return false;
		}
		if (o->mode == TOOL_SUB && tern_topic_filter_check(t, len) != TERN_OK) {
			opts_error(o,
			           "Invalid subscription topic '%s', are all '+' and '#' "
			           "wildcards correct?",
			           o->topics[i]);
			return false;
		}
	}
	for (size_t i = 0; i < o->n_filter_out; i++) {
		if (tern_topic_filter_check((const uint8_t *)o->filter_out[i],
		                            strlen(o->filter_out[i])) != TERN_OK) {
			opts_error(o,
			           "Invalid filter topic '%s', are all '+' and '#' wildcards "
			           "correct?",
			           o->filter_out[i]);
			return false;
		}
	}
	if (o->mode == TOOL_PUB && o->msg == MSG_NONE) {
		opts_error(o, "Both topic and message must be supplied.");
		return false;
	}
	if (o->mode == TOOL_PUB && o->msg == MSG_LINES && o->repeat > 1) {
		opts_error(o, "--repeat can only be used with -m, -f, -s or -n.");
		return false;
	}
	if (o->no_retain && o->retained_only) {
		opts_error(o, "Combining '-R' and '--retained-only' makes no sense.");
		return false;
	}
	if (o->format != NULL && !format_check(o, o->format))
		return false;
	return true;
}

enum tool_parse opts_parse(struct tool_opts *o, enum tool_mode mode, int argc, char **argv)
{
	struct optparse p = {
	        .cmd = mode == TOOL_PUB ? CMD_PUB : CMD_SUB,
	        .common = &o->common,
	        .tool = o,
	        .usage = mode == TOOL_PUB ? usage_pub : usage_sub,
	};
	enum tool_parse rc;

	memset(o, 0, sizeof(*o));
	o->mode = mode;
	o->prog = p.prog = mode == TOOL_PUB ? "tern pub" : "tern sub";
	o->common.host = "localhost";
	o->common.port = 1883;
	o->common.keepalive = 60;
	o->common.version = TERN_V311;
	o->clean = true;
	o->repeat = 1;
	o->max_inflight = 20;
	o->random_filter = 100.0;

	rc = options_parse(&p, argc, argv);
	if (rc == PARSE_OK && !opts_finish(o, &p))
		rc = PARSE_ERROR;
	if (rc != PARSE_OK)
		opts_free(o);
	return rc;
}

void opts_free(struct tool_opts *o)
{
	free(o->topics);
	o->topics = NULL;
	free(o->filter_out);
	o->filter_out = NULL;
	free(o->unsub);
	o->unsub = NULL;
	free(o->url_copy);
	o->url_copy = NULL;
	props_free(&o->connect_props);
	props_free(&o->publish_props);
	props_free(&o->will_props);
	props_free(&o->subscribe_props);
	props_free(&o->unsubscribe_props);
	props_free(&o->disconnect_props);
}
