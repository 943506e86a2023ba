/*
 * opts.c - the command line of `tern pub` and `tern sub`.
 *
 * The options are mosquitto_pub's and mosquitto_sub's, with their meaning
 * and, mostly, their error messages, so that scripts and fingers trained on
 * mosquitto work unchanged. The parser is hand-written rather than
 * getopt_long() because -D takes three or four words and the order of the
 * words matters; each option is one branch below, found by its short or
 * long name.
 *
 * Every error names the option and ends with a hint to --help; the caller
 * exits with status 1. Checks that need the whole command line (-c without
 * an id, -R with --retained-only, ...) run after the loop, in
 * opts_finish().
 *
 * TLS takes mosquitto's flags and rules: --cafile, --capath or
 * --tls-use-os-certs turn it on (so do an mqtts:// URL and -p 8883 without
 * other TLS options), --cert and --key go together, and without -p the
 * port is 8883 rather than 1883.
 *
 * Options of mosquitto's that tern does not have (--ciphers, --tls-version,
 * ALPN, engines, PSK, SOCKS proxies, SRV lookups, unix sockets, config
 * files) are rejected with a message saying so, never silently ignored.
 */
#include <errno.h>
#include <limits.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include <unistd.h>

#include "tools.h"

void opts_error(const struct tool_opts *o, const char *fmt, ...)
{
	va_list ap;

	fputs("Error: ", stderr);
	va_start(ap, fmt);
	vfprintf(stderr, fmt, ap);
	va_end(ap);
	fprintf(stderr, "\nUse '%s --help' to see usage.\n", o->prog);
}

/* Parses an unsigned decimal number no larger than max. */
static bool parse_ulong(const char *s, unsigned long max, unsigned long *out)
{
	char *end;
	unsigned long v;

	if (s[0] < '0' || s[0] > '9')
		return false;
	errno = 0;
	v = strtoul(s, &end, 10);
	if (errno != 0 || *end != '\0' || v > max)
		return false;
	*out = v;
	return true;
}

static bool parse_double(const char *s, double *out)
{
	char *end;

	errno = 0;
	*out = strtod(s, &end);
	return errno == 0 && end != s && *end == '\0' && *out >= 0;
}

/* Appends s to a growing array of strings. */
static bool push(const char ***arr, size_t *n, const char *s)
{
	const char **p = realloc(*arr, (*n + 1) * sizeof(*p));

	if (p == NULL)
		return false;
	p[(*n)++] = s;
	*arr = p;
	return true;
}

static bool is(const char *arg, const char *short_name, const char *long_name)
{
	return (short_name != NULL && strcmp(arg, short_name) == 0) ||
	       (long_name != NULL && strcmp(arg, long_name) == 0);
}

/* Options of mosquitto's clients that tern does not implement. */
static const char *const unsupported[] = {
        "--ciphers",  "--tls-version",
        "--tls-alpn", "--tls-engine",
        "--keyform",  "--tls-engine-kpass-sha1",
        "--psk",      "--psk-identity",
        "--proxy",    "--unix",
        "-S",         NULL,
};

static bool set_version(struct tool_opts *o, const char *v)
{
	if (strcmp(v, "mqttv5") == 0 || strcmp(v, "5") == 0)
		o->version = TERN_V5;
	else if (strcmp(v, "mqttv311") == 0 || strcmp(v, "311") == 0)
		o->version = TERN_V311;
	else if (strcmp(v, "mqttv31") == 0 || strcmp(v, "31") == 0)
		o->version = TERN_V31;
	else
		return false;
	return true;
}

/* -x: 0..4294967294 seconds, or -1 / 4294967295 / "∞" for never. */
static bool set_session_expiry(struct tool_opts *o, const char *v)
{
	unsigned long n;

	if (strcmp(v, "-1") == 0 || strcmp(v, "\xe2\x88\x9e") == 0) {
		n = UINT32_MAX;
	} else if (!parse_ulong(v, UINT32_MAX, &n)) {
		return false;
	}
	o->session_expiry = (uint32_t)n;
	o->session_expiry_set = true;
	return true;
}

/* -L mqtt://[user[:password]@]host[:port]/topic. The parts are copied out
 * of the URL into strings that live until opts_free(). */
static bool set_url(struct tool_opts *o, const char *url)
{
	const char *p;
	char *copy, *at, *slash, *colon, *host;

	if (strncmp(url, "mqtts://", 8) == 0) {
		o->tls = true;
		p = url + 8;
	} else if (strncmp(url, "mqtt://", 7) == 0) {
		p = url + 7;
	} else {
		opts_error(o, "-L: unsupported URL scheme (use mqtt:// or mqtts://).");
		return false;
	}
	copy = strdup(p);
	if (copy == NULL)
		return false;
	free(o->url_copy);
	o->url_copy = copy;
	slash = strchr(copy, '/');
	if (slash == NULL || slash[1] == '\0') {
		opts_error(o, "-L: the URL must end in /topic.");
		return false;
	}
	*slash = '\0';
	if (o->mode == TOOL_PUB && o->n_topics > 0) {
		opts_error(o, "-L: only one topic can be given to %s.", o->prog);
		return false;
	}
	if (!push(&o->topics, &o->n_topics, slash + 1))
		return false;
	host = copy;
	at = strrchr(copy, '@');
	if (at != NULL) {
		*at = '\0';
		host = at + 1;
		colon = strchr(copy, ':');
		if (colon != NULL) {
			*colon = '\0';
			o->password = colon + 1;
		}
		o->username = copy;
	}
	colon = strrchr(host, ':');
	if (colon != NULL && strchr(host, ']') < colon) {
		unsigned long port;

		*colon = '\0';
		if (!parse_ulong(colon + 1, 65535, &port) || port == 0) {
			opts_error(o, "-L: invalid port in URL.");
			return false;
		}
		o->port = (uint16_t)port;
		o->port_given = true;
	}
	if (host[0] == '[' && host[strlen(host) - 1] == ']') {
		host[strlen(host) - 1] = '\0';
		host++;
	}
	o->host = host;
	return true;
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

/* TLS: what turns it on, what needs it, and the port it implies. */
static bool tls_finish(struct tool_opts *o)
{
	bool any = o->cafile != NULL || o->capath != NULL || o->certfile != NULL ||
	           o->keyfile != NULL || o->insecure || o->tls_use_os_certs;

	if ((o->certfile == NULL) != (o->keyfile == NULL)) {
		opts_error(o, "--cert and --key must be given together (both certfile and "
		              "keyfile).");
		return false;
	}
	/* mosquitto: port 8883 with no certificate options means TLS with the
	 * system's CAs. */
	if (o->port_given && o->port == 8883 && !any)
		o->tls_use_os_certs = true;
	if (o->cafile != NULL || o->capath != NULL || o->tls_use_os_certs)
		o->tls = true;
	if (!o->tls && any) {
		opts_error(o, "--cert, --key and --insecure need TLS: give --cafile, --capath or "
		              "--tls-use-os-certs.");
		return false;
	}
	if (o->tls && !o->port_given)
		o->port = 8883;
	return true;
}

/* Checks that need the whole command line. */
static bool opts_finish(struct tool_opts *o)
{
	if (!tls_finish(o))
		return false;
	if (o->id != NULL && o->id_prefix != NULL) {
		opts_error(o, "-i and -I argument cannot be used together.");
		return false;
	}
	if (o->id_prefix != NULL) {
		snprintf(o->id_buf, sizeof(o->id_buf), "%.80s%ld", o->id_prefix, (long)getpid());
		o->id = o->id_buf;
	}
	if (o->id != NULL && o->id[0] == '\0' && o->version != TERN_V5 && !o->clean) {
		opts_error(o, "an empty client id (-i \"\") needs a clean session (no -c).");
		return false;
	}
	if (o->id == NULL && (!o->clean || (o->session_expiry_set && o->session_expiry != 0))) {
		opts_error(o, "You must provide a client id if you are using the -c option%s.",
		           o->clean ? " or a session expiry interval (-x)" : "");
		return false;
	}
	if (o->id == NULL && o->version != TERN_V5)
		make_client_id(o);
	if (o->password != NULL && o->username == NULL && o->version != TERN_V5) {
		opts_error(o, "-P: a password needs a username (-u) in MQTT 3.1 / 3.1.1.");
		return false;
	}
	if (o->will_opts_seen && o->will_topic == NULL) {
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

/* The message source of `tern pub`: only one may be given. */
static bool set_msg(struct tool_opts *o, enum tool_msg m)
{
	if (o->msg != MSG_NONE) {
		opts_error(o, "Only one type of message can be sent at once.");
		return false;
	}
	o->msg = m;
	return true;
}

enum tool_parse opts_parse(struct tool_opts *o, enum tool_mode mode, int argc, char **argv)
{
	unsigned long n;
	int i;

	memset(o, 0, sizeof(*o));
	o->mode = mode;
	o->prog = mode == TOOL_PUB ? "tern pub" : "tern sub";
	o->host = "localhost";
	o->port = 1883;
	o->keepalive = 60;
	o->clean = true;
	o->version = TERN_V311;
	o->repeat = 1;
	o->max_inflight = 20;
	o->random_filter = 100.0;

	for (i = 1; i < argc; i++) {
		const char *a = argv[i];
		/* The option's value, when it takes one. */
		const char *v = i + 1 < argc ? argv[i + 1] : NULL;
		bool takes_value = true;

#define NEED_VALUE(what)                                                                           \
	do {                                                                                       \
		if (v == NULL) {                                                                   \
			opts_error(o, "%s argument given but no %s specified.", a, what);          \
			goto fail;                                                                 \
		}                                                                                  \
	} while (0)

		if (is(a, NULL, "--help")) {
			if (mode == TOOL_PUB)
				usage_pub(stdout);
			else
				usage_sub(stdout);
			opts_free(o);
			return PARSE_HELP;
		} else if (is(a, "-h", "--host")) {
			NEED_VALUE("host");
			o->host = v;
		} else if (is(a, "-p", "--port")) {
			NEED_VALUE("port");
			if (!parse_ulong(v, 65535, &n) || n == 0) {
				opts_error(o, "Invalid port given: %s", v);
				goto fail;
			}
			o->port = (uint16_t)n;
			o->port_given = true;
		} else if (is(a, NULL, "--cafile")) {
			NEED_VALUE("file");
			o->cafile = v;
		} else if (is(a, NULL, "--capath")) {
			NEED_VALUE("directory");
			o->capath = v;
		} else if (is(a, NULL, "--cert")) {
			NEED_VALUE("file");
			o->certfile = v;
		} else if (is(a, NULL, "--key")) {
			NEED_VALUE("file");
			o->keyfile = v;
		} else if (is(a, NULL, "--insecure")) {
			o->insecure = true;
			takes_value = false;
		} else if (is(a, NULL, "--tls-use-os-certs")) {
			o->tls_use_os_certs = true;
			takes_value = false;
		} else if (is(a, "-A", NULL)) {
			NEED_VALUE("address");
			o->bind_address = v;
		} else if (is(a, "-L", "--url")) {
			NEED_VALUE("URL");
			if (!set_url(o, v))
				goto fail;
		} else if (is(a, "-i", "--id")) {
			NEED_VALUE("id");
			if (strlen(v) > 65535) {
				opts_error(o, "-i: client id too long.");
				goto fail;
			}
			o->id = v;
		} else if (is(a, "-I", "--id-prefix")) {
			NEED_VALUE("id prefix");
			o->id_prefix = v;
		} else if (is(a, "-u", "--username")) {
			NEED_VALUE("username");
			o->username = v;
		} else if (is(a, "-P", "--pw")) {
			NEED_VALUE("password");
			o->password = v;
		} else if (is(a, "-k", "--keepalive")) {
			NEED_VALUE("keepalive");
			if (!parse_ulong(v, 65535, &n)) {
				opts_error(
				        o,
				        "Invalid keepalive given, it must be between 0 and 65535 "
				        "inclusive.");
				goto fail;
			}
			o->keepalive = (uint16_t)n;
		} else if (is(a, "-q", "--qos")) {
			NEED_VALUE("QoS");
			if (!parse_ulong(v, 2, &n)) {
				opts_error(o, "Invalid QoS given: %s", v);
				goto fail;
			}
			o->qos = (uint8_t)n;
		} else if (is(a, "-V", "--protocol-version")) {
			NEED_VALUE("protocol version");
			if (!set_version(o, v)) {
				opts_error(
				        o,
				        "Invalid protocol version argument given: %s (use mqttv5, "
				        "mqttv311 or mqttv31).",
				        v);
				goto fail;
			}
		} else if (is(a, "-x", "--session-expiry-interval")) {
			NEED_VALUE("expiry interval");
			if (!set_session_expiry(o, v)) {
				opts_error(o, "Invalid session expiry interval given: %s", v);
				goto fail;
			}
		} else if (is(a, "-D", "--property")) {
			i++;
			if (!props_parse(o, argc, argv, &i))
				goto fail;
			takes_value = false; /* i is on the last word -D used */
		} else if (is(a, "-c", "--disable-clean-session")) {
			o->clean = false;
			takes_value = false;
		} else if (is(a, "-d", "--debug")) {
			o->debug = true;
			takes_value = false;
		} else if (is(a, NULL, "--quiet")) {
			o->quiet = true;
			takes_value = false;
		} else if (is(a, NULL, "--nodelay")) {
			o->nodelay = true;
			takes_value = false;
		} else if (is(a, NULL, "--will-topic")) {
			NEED_VALUE("will topic");
			o->will_topic = v;
		} else if (is(a, NULL, "--will-payload")) {
			NEED_VALUE("will payload");
			o->will_payload = v;
			o->will_opts_seen = true;
		} else if (is(a, NULL, "--will-qos")) {
			NEED_VALUE("will QoS");
			if (!parse_ulong(v, 2, &n)) {
				opts_error(o, "Invalid will QoS %s.", v);
				goto fail;
			}
			o->will_qos = (uint8_t)n;
			o->will_opts_seen = true;
		} else if (is(a, NULL, "--will-retain")) {
			o->will_retain = true;
			o->will_opts_seen = true;
			takes_value = false;
		} else if (is(a, "-t", "--topic")) {
			NEED_VALUE("topic");
			if (mode == TOOL_PUB && o->n_topics > 0) {
				opts_error(o, "Only one topic can be given to %s (-t).", o->prog);
				goto fail;
			}
			if (!push(&o->topics, &o->n_topics, v))
				goto nomem;
		} else if (mode == TOOL_PUB && is(a, "-m", "--message")) {
			NEED_VALUE("message");
			if (!set_msg(o, MSG_ARG))
				goto fail;
			o->message = v;
		} else if (mode == TOOL_PUB && is(a, "-f", "--file")) {
			NEED_VALUE("file");
			if (!set_msg(o, MSG_FILE))
				goto fail;
			o->file = v;
		} else if (mode == TOOL_PUB && is(a, "-s", "--stdin-file")) {
			if (!set_msg(o, MSG_STDIN))
				goto fail;
			takes_value = false;
		} else if (mode == TOOL_PUB && is(a, "-l", "--stdin-line")) {
			if (!set_msg(o, MSG_LINES))
				goto fail;
			takes_value = false;
		} else if (mode == TOOL_PUB && is(a, "-n", "--null-message")) {
			if (!set_msg(o, MSG_NULL))
				goto fail;
			takes_value = false;
		} else if (mode == TOOL_PUB && is(a, "-r", "--retain")) {
			o->retain = true;
			takes_value = false;
		} else if (mode == TOOL_PUB && is(a, NULL, "--repeat")) {
			NEED_VALUE("count");
			if (!parse_ulong(v, 1000000000ul, &n) || n == 0) {
				opts_error(o, "Invalid --repeat count: %s", v);
				goto fail;
			}
			o->repeat = n;
		} else if (mode == TOOL_PUB && is(a, NULL, "--repeat-delay")) {
			NEED_VALUE("delay");
			if (!parse_double(v, &o->repeat_delay) || o->repeat_delay > 86400.0) {
				opts_error(o, "Invalid --repeat-delay: %s", v);
				goto fail;
			}
		} else if (mode == TOOL_PUB && is(a, "-M", NULL)) {
			NEED_VALUE("max inflight");
			if (!parse_ulong(v, 65535, &n) || n == 0) {
				opts_error(o, "Invalid -M (max inflight messages): %s", v);
				goto fail;
			}
			o->max_inflight = (unsigned)n;
		} else if (mode == TOOL_SUB && is(a, "-T", "--filter-out")) {
			NEED_VALUE("topic filter");
			if (!push(&o->filter_out, &o->n_filter_out, v))
				goto nomem;
		} else if (mode == TOOL_SUB && is(a, "-U", "--unsubscribe")) {
			NEED_VALUE("unsubscribe topic");
			if (!push(&o->unsub, &o->n_unsub, v))
				goto nomem;
		} else if (mode == TOOL_SUB && is(a, "-v", "--verbose")) {
			o->verbose = true;
			takes_value = false;
		} else if (mode == TOOL_SUB && is(a, "-N", NULL)) {
			o->no_eol = true;
			takes_value = false;
		} else if (mode == TOOL_SUB && is(a, "-R", NULL)) {
			o->no_retain = true;
			takes_value = false;
		} else if (mode == TOOL_SUB && is(a, "-E", NULL)) {
			o->exit_after_sub = true;
			takes_value = false;
		} else if (mode == TOOL_SUB && is(a, NULL, "--retained-only")) {
			o->retained_only = true;
			takes_value = false;
		} else if (mode == TOOL_SUB && is(a, NULL, "--remove-retained")) {
			o->remove_retained = true;
			takes_value = false;
		} else if (mode == TOOL_SUB && is(a, NULL, "--retain-as-published")) {
			o->retain_as_published = true;
			takes_value = false;
		} else if (mode == TOOL_SUB && is(a, NULL, "--pretty")) {
			o->pretty = true;
			takes_value = false;
		} else if (mode == TOOL_SUB && is(a, "-F", NULL)) {
			NEED_VALUE("format");
			o->format = v;
		} else if (mode == TOOL_SUB && is(a, "-C", NULL)) {
			NEED_VALUE("count");
			if (!parse_ulong(v, ULONG_MAX, &n) || n == 0) {
				opts_error(o, "Invalid message count \"%s\".", v);
				goto fail;
			}
			o->count = n;
		} else if (mode == TOOL_SUB && is(a, "-W", NULL)) {
			NEED_VALUE("timeout");
			if (!parse_ulong(v, 3600ul * 24 * 365, &n) || n == 0) {
				opts_error(o, "Invalid timeout \"%s\".", v);
				goto fail;
			}
			o->timeout_s = n;
		} else if (mode == TOOL_SUB && is(a, NULL, "--random-filter")) {
			NEED_VALUE("chance");
			if (!parse_double(v, &o->random_filter) || o->random_filter < 0.1 ||
			    o->random_filter > 100.0) {
				opts_error(o, "Invalid --random-filter chance %s (0.1 to 100).", v);
				goto fail;
			}
		} else {
			for (size_t k = 0; unsupported[k] != NULL; k++) {
				if (strcmp(a, unsupported[k]) == 0) {
					opts_error(
					        o,
					        "'%s' is not supported by %s (no TLS cipher, "
					        "version, ALPN, engine or PSK options; no proxy, "
					        "SRV or unix socket support).",
					        a, o->prog);
					goto fail;
				}
			}
			opts_error(o, "Unknown option '%s'.", a);
			goto fail;
		}
#undef NEED_VALUE
		if (takes_value)
			i++;
	}
	if (!opts_finish(o))
		goto fail;
	return PARSE_OK;

nomem:
	fprintf(stderr, "Error: out of memory.\n");
fail:
	opts_free(o);
	return PARSE_ERROR;
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
