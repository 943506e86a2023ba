/*
 * options.c - the one table of options of `tern pub`, `tern sub` and
 * `tern bench`, the loop that reads a command line with it, and the help
 * text printed from it; see options.h.
 *
 * A row says everything about an option: its names, the subcommands that
 * take it, its kind (a flag, a string, a number in a range, or a setter),
 * the field it fills, what its value is called in "-p argument given but
 * no port specified.", the message for a bad value ({opt} is the option as
 * typed, {val} the value), and its help line. The options of mosquitto's
 * clients keep their names, meanings and, mostly, their messages, so that
 * scripts and fingers trained on mosquitto work unchanged; a subcommand's
 * own option may reuse a letter another subcommand uses otherwise (-c is
 * "keep the session" for pub and sub, "clients" for bench): the first row
 * for the subcommand wins.
 *
 * The parser is not getopt_long() because -D takes three or four words
 * and the order of the words matters. Every error names the option and
 * ends with a hint to --help; the caller exits with status 1. Options of
 * mosquitto's that tern does not have (--ciphers, --tls-version, ALPN,
 * engines, PSK, proxies, unix sockets) are rows of their own, rejected
 * with a message saying so, never silently ignored.
 *
 * Adding an option is one row: for example
 *   {"-X", "--max-foo", OK_UINT, CMD_PUB, TOOL(max_foo), .what = "count",
 *    .min = 1, .max = 100, .bad = "Invalid -X count: {val}", .sec = SEC_PUB,
 *    .arg = "N", .help = "send at most N foos."},
 * and, when the value needs more than a range, a setter of a few lines.
 */
#include "options.h"

#include <arpa/inet.h>
#include <ctype.h>
#include <errno.h>
#include <float.h>
#include <limits.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdlib.h>
#include <string.h>

#include "bench.h"
#include "tools.h"

void tool_error(const char *prog, const char *fmt, ...)
{
	va_list ap;

	fputs("Error: ", stderr);
	va_start(ap, fmt);
	vfprintf(stderr, fmt, ap);
	va_end(ap);
	fprintf(stderr, "\nUse '%s --help' to see usage.\n", prog);
}

enum opt_kind {
	OK_FLAG,        /* no value: the bool field becomes true */
	OK_FLAG_OFF,    /* no value: the bool field becomes false */
	OK_STR,         /* the field points at the value; .max: longest length */
	OK_UINT,        /* a whole number in [.min, .max] into an unsigned field */
	OK_DOUBLE,      /* a number in [.lo, .hi] into a double */
	OK_FUNC,        /* .set parses the value */
	OK_ACTION,      /* no value: .set does what the option says */
	OK_PROPERTY,    /* -D: three or four words, props_parse() */
	OK_HELP,        /* --help */
	OK_UNSUPPORTED, /* mosquitto's, not ours: an error saying so */
};

enum opt_target { T_COMMON, T_TOOL, T_BENCH };

/* Sections of the help text, in the order they are printed. */
enum opt_section {
	SEC_NONE, /* not listed */
	SEC_PUB,
	SEC_SUB,
	SEC_CONN,
	SEC_CLIENT,
	SEC_WILL,
	SEC_TLS,
	SEC_BENCH_CLIENTS,
	SEC_BENCH_MSG,
	SEC_BENCH_BOUNDS,
	SEC_OUTPUT,
	SEC_COUNT,
};

static const char *const section_title[SEC_COUNT] = {
        [SEC_PUB] = "Message:",
        [SEC_SUB] = "Subscription and output:",
        [SEC_CONN] = "Connection:",
        [SEC_CLIENT] = "Client and session:",
        [SEC_WILL] = "Will (sent by the broker if the connection is lost without DISCONNECT):",
        [SEC_TLS] = "TLS (TLS 1.2 or later; the broker's certificate and name are always "
                    "checked):",
        [SEC_BENCH_CLIENTS] = "Clients and threads:",
        [SEC_BENCH_MSG] = "Messages:",
        [SEC_BENCH_BOUNDS] = "Bounds and measurement:",
        [SEC_OUTPUT] = "Output:",
};

struct tool_option;

/* Parses and stores v (NULL for OK_ACTION); opt_bad() or its own message
 * on error, then false. */
typedef bool (*opt_setter)(struct optparse *p, const struct tool_option *opt, const char *a,
                           const char *v);

struct tool_option {
	const char *short_name, *long_name; /* either may be NULL */
	enum opt_kind kind;
	unsigned cmds; /* enum tool_cmd bits */
	enum opt_target target;
	size_t off, size;  /* the field */
	const char *what;  /* the value, in "... but no <what> specified." */
	uint64_t min, max; /* OK_UINT; OK_STR: .max is the longest length (0: any) */
	double lo, hi;     /* OK_DOUBLE */
	const char *bad;   /* message for a bad value: {opt}, {val} */
	opt_setter set;    /* OK_FUNC, OK_ACTION */
	enum opt_section sec;
	const char *arg;  /* the value in the help text (bench's layout) */
	const char *help; /* one paragraph; the printer wraps it */
};

#define MEMBER_SIZE(type, m) sizeof(((type *)0)->m)
#define FIELD(t, type, m)    .target = (t), .off = offsetof(type, m), .size = MEMBER_SIZE(type, m)
#define COMMON(m)            FIELD(T_COMMON, struct common_opts, m)
#define TOOL(m)              FIELD(T_TOOL, struct tool_opts, m)
#define BENCH(m)             FIELD(T_BENCH, struct bench_opts, m)

#define PS  (CMD_PUB | CMD_SUB)
#define ALL (CMD_PUB | CMD_SUB | CMD_BENCH)

/* Stores v into an unsigned integer field of `size` bytes (the row's
 * bounds keep v within the field's width). */
static void store_uint(void *field, size_t size, uint64_t v)
{
	uint8_t u8 = (uint8_t)v;
	uint16_t u16 = (uint16_t)v;
	uint32_t u32 = (uint32_t)v;

	if (size == 1)
		memcpy(field, &u8, 1);
	else if (size == 2)
		memcpy(field, &u16, 2);
	else if (size == 4)
		memcpy(field, &u32, 4);
	else if (size == 8)
		memcpy(field, &v, 8);
}

/* A whole decimal number in [min, max] (no sign, no blanks). */
static bool parse_uint(const char *s, uint64_t min, uint64_t max, uint64_t *out)
{
	char *end;
	unsigned long long v;

	if (s[0] < '0' || s[0] > '9')
		return false;
	errno = 0;
	v = strtoull(s, &end, 10);
	if (errno != 0 || *end != '\0' || v < min || v > max)
		return false;
	*out = v;
	return true;
}

/* A number in [lo, hi]; NaN is in no range. */
static bool parse_double(const char *s, double lo, double hi, double *out)
{
	char *end;
	double v;

	errno = 0;
	v = strtod(s, &end);
	if (errno != 0 || end == s || *end != '\0' || !(v >= lo && v <= hi))
		return false;
	*out = v;
	return true;
}

/* Prints the row's message for a bad value, {opt} and {val} filled in. */
static bool opt_bad(const struct optparse *p, const struct tool_option *opt, const char *a,
                    const char *v)
{
	char msg[512];
	size_t w = 0;

	for (const char *s = opt->bad; *s && w + 1 < sizeof(msg); s++) {
		const char *put = NULL;
		if (strncmp(s, "{opt}", 5) == 0)
			put = a;
		else if (strncmp(s, "{val}", 5) == 0)
			put = v;
		if (put == NULL) {
			msg[w++] = *s;
			continue;
		}
		w += (size_t)snprintf(msg + w, sizeof(msg) - w, "%s", put);
		if (w >= sizeof(msg))
			w = sizeof(msg) - 1;
		s += 4;
	}
	msg[w] = '\0';
	tool_error(p->prog, "%s", msg);
	return false;
}

/* Appends s to a growing array of strings. */
static bool push(const char ***arr, size_t *n, const char *s)
{
	const char **q = realloc(*arr, (*n + 1) * sizeof(*q));

	if (q == NULL) {
		fprintf(stderr, "Error: out of memory.\n");
		return false;
	}
	q[(*n)++] = s;
	*arr = q;
	return true;
}

/* ---- Setters: options that are more than a field ---- */

static bool set_port(struct optparse *p, const struct tool_option *opt, const char *a,
                     const char *v)
{
	uint64_t n;

	if (!parse_uint(v, 1, 65535, &n))
		return opt_bad(p, opt, a, v);
	p->common->port = (uint16_t)n;
	p->common->port_given = true;
	return true;
}

static bool set_version(struct optparse *p, const struct tool_option *opt, const char *a,
                        const char *v)
{
	if (strcmp(v, "mqttv5") == 0 || strcmp(v, "5") == 0)
		p->common->version = TERN_V5;
	else if (strcmp(v, "mqttv311") == 0 || strcmp(v, "311") == 0)
		p->common->version = TERN_V311;
	else if (strcmp(v, "mqttv31") == 0 || strcmp(v, "31") == 0)
		p->common->version = TERN_V31;
	else
		return opt_bad(p, opt, a, v);
	return true;
}

/* -x: 0..4294967294 seconds, or -1 / 4294967295 / "∞" for never. */
static bool set_session_expiry(struct optparse *p, const struct tool_option *opt, const char *a,
                               const char *v)
{
	uint64_t n;

	if (strcmp(v, "-1") == 0 || strcmp(v, "\xe2\x88\x9e") == 0)
		n = UINT32_MAX;
	else if (!parse_uint(v, 0, UINT32_MAX, &n))
		return opt_bad(p, opt, a, v);
	p->tool->session_expiry = (uint32_t)n;
	p->tool->session_expiry_set = true;
	return true;
}

/* -L mqtt://[user[:password]@]host[:port]/topic. The parts are copied out
 * of the URL into strings that live until opts_free(). */
static bool set_url(struct optparse *p, const struct tool_option *opt, const char *a,
                    const char *url)
{
	struct tool_opts *o = p->tool;
	const char *s;
	char *copy, *at, *slash, *colon, *host;

	(void)opt;
	(void)a;
	if (strncmp(url, "mqtts://", 8) == 0) {
		o->common.tls = true;
		s = url + 8;
	} else if (strncmp(url, "mqtt://", 7) == 0) {
		s = url + 7;
	} else {
		opts_error(o, "-L: unsupported URL scheme (use mqtt:// or mqtts://).");
		return false;
	}
	copy = strdup(s);
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
		uint64_t port;

		*colon = '\0';
		if (!parse_uint(colon + 1, 1, 65535, &port)) {
			opts_error(o, "-L: invalid port in URL.");
			return false;
		}
		o->common.port = (uint16_t)port;
		o->common.port_given = true;
	}
	if (host[0] == '[' && host[strlen(host) - 1] == ']') {
		host[strlen(host) - 1] = '\0';
		host++;
	}
	o->common.host = host;
	return true;
}

static bool add_topic(struct optparse *p, const struct tool_option *opt, const char *a,
                      const char *v)
{
	struct tool_opts *o = p->tool;

	(void)opt;
	(void)a;
	if (o->mode == TOOL_PUB && o->n_topics > 0) {
		opts_error(o, "Only one topic can be given to %s (-t).", o->prog);
		return false;
	}
	return push(&o->topics, &o->n_topics, v);
}

static bool add_filter_out(struct optparse *p, const struct tool_option *opt, const char *a,
                           const char *v)
{
	(void)opt;
	(void)a;
	return push(&p->tool->filter_out, &p->tool->n_filter_out, v);
}

static bool add_unsub(struct optparse *p, const struct tool_option *opt, const char *a,
                      const char *v)
{
	(void)opt;
	(void)a;
	return push(&p->tool->unsub, &p->tool->n_unsub, v);
}

/* The message source of `tern pub` (-m, -f, -s, -l, -n): only one may be
 * given. */
static bool set_msg(struct optparse *p, const struct tool_option *opt, const char *a, const char *v)
{
	struct tool_opts *o = p->tool;

	(void)a;
	if (o->msg != MSG_NONE) {
		opts_error(o, "Only one type of message can be sent at once.");
		return false;
	}
	o->msg = (enum tool_msg)opt->min;
	if (o->msg == MSG_ARG)
		o->message = v;
	else if (o->msg == MSG_FILE)
		o->file = v;
	return true;
}

/* bench -q 0,1,2: publisher i uses the (i mod n)th. */
static bool set_qos_list(struct optparse *p, const struct tool_option *opt, const char *a,
                         const char *v)
{
	struct bench_opts *o = p->bench;

	o->n_qos = 0;
	for (const char *s = v;; s++) {
		if (*s < '0' || *s > '2' || o->n_qos == BENCH_MAX_QOS_LIST)
			return opt_bad(p, opt, a, v);
		o->qos[o->n_qos++] = (uint8_t)(*s - '0');
		s++;
		if (*s == '\0')
			return true;
		if (*s != ',')
			return opt_bad(p, opt, a, v);
	}
}

#define MAX_SOURCES 65536u

static bool push_source(struct bench_opts *o, const char *addr)
{
	if (o->n_sources >= MAX_SOURCES)
		return false;
	char **n = realloc(o->sources, (o->n_sources + 1) * sizeof(*n));
	if (n == NULL)
		return false;
	o->sources = n;
	if ((n[o->n_sources] = strdup(addr)) == NULL)
		return false;
	o->n_sources++;
	return true;
}

/* bench --sources "A,B,C-D,...": each item an address or an IPv4 range A-B
 * (B may be the last number only: 127.0.0.1-50). */
static bool set_sources(struct optparse *p, const struct tool_option *opt, const char *a,
                        const char *list)
{
	struct bench_opts *o = p->bench;
	char *copy = strdup(list), *save = NULL;
	bool ok = copy != NULL && list[0] != '\0';

	for (char *item = copy ? strtok_r(copy, ",", &save) : NULL; ok && item;
	     item = strtok_r(NULL, ",", &save)) {
		char *dash = strchr(item, '-');
		struct in_addr lo4, hi4;
		if (dash == NULL) {
			struct in6_addr a6;
			ok = (inet_pton(AF_INET, item, &lo4) == 1 ||
			      inet_pton(AF_INET6, item, &a6) == 1) &&
			     push_source(o, item);
			continue;
		}
		*dash = '\0';
		const char *hi = dash + 1;
		char full[INET_ADDRSTRLEN + 8];
		if (strchr(hi, '.') == NULL) {
			/* 127.0.0.1-50: the upper end differs in the last number. */
			const char *dot = strrchr(item, '.');
			if (dot == NULL) {
				ok = false;
				break;
			}
			snprintf(full, sizeof(full), "%.*s.%s", (int)(dot - item), item, hi);
			hi = full;
		}
		if (inet_pton(AF_INET, item, &lo4) != 1 || inet_pton(AF_INET, hi, &hi4) != 1) {
			ok = false;
			break;
		}
		uint32_t lo = ntohl(lo4.s_addr), up = ntohl(hi4.s_addr);
		if (up < lo || up - lo >= MAX_SOURCES) {
			ok = false;
			break;
		}
		for (uint64_t n = lo; ok && n <= up; n++) {
			char buf[INET_ADDRSTRLEN];
			struct in_addr ia = {.s_addr = htonl((uint32_t)n)};
			inet_ntop(AF_INET, &ia, buf, sizeof(buf));
			ok = push_source(o, buf);
		}
	}
	free(copy);
	return ok || opt_bad(p, opt, a, list);
}

/* ---- The table ---- */

#define UNSUPPORTED(name, cmds)                                                                    \
	{                                                                                          \
		NULL, name, OK_UNSUPPORTED, cmds, .sec = SEC_NONE                                  \
	}

static const struct tool_option options[] = {
        /* pub: the message. */
        {"-m", "--message", OK_FUNC, CMD_PUB, .what = "message", .min = MSG_ARG, .set = set_msg,
         .sec = SEC_PUB, .help = "message payload to send."},
        {"-f", "--file", OK_FUNC, CMD_PUB, .what = "file", .min = MSG_FILE, .set = set_msg,
         .sec = SEC_PUB, .help = "send the contents of a file as the message."},
        {"-s", "--stdin-file", OK_ACTION, CMD_PUB, .min = MSG_STDIN, .set = set_msg, .sec = SEC_PUB,
         .help = "read message from stdin, sending the entire input as a message."},
        {"-l", "--stdin-line", OK_ACTION, CMD_PUB, .min = MSG_LINES, .set = set_msg, .sec = SEC_PUB,
         .help = "read messages from stdin, sending a separate message for each line."},
        {"-n", "--null-message", OK_ACTION, CMD_PUB, .min = MSG_NULL, .set = set_msg,
         .sec = SEC_PUB, .help = "send a null (zero length) message."},
        {"-r", "--retain", OK_FLAG, CMD_PUB, TOOL(retain), .sec = SEC_PUB,
         .help = "message should be retained."},
        {"-M", NULL, OK_UINT, CMD_PUB, TOOL(max_inflight), .what = "max inflight", .min = 1,
         .max = 65535, .bad = "Invalid -M (max inflight messages): {val}", .sec = SEC_PUB,
         .help = "the maximum number of unacknowledged QoS 1/2 messages with -l. Defaults to "
                 "20."},
        {NULL, "--repeat", OK_UINT, CMD_PUB, TOOL(repeat), .what = "count", .min = 1,
         .max = 1000000000, .bad = "Invalid --repeat count: {val}", .sec = SEC_PUB,
         .help = "send the message (-m, -f, -s, -n) this many times."},
        {NULL, "--repeat-delay", OK_DOUBLE, CMD_PUB, TOOL(repeat_delay), .what = "delay", .lo = 0,
         .hi = 86400, .bad = "Invalid --repeat-delay: {val}", .sec = SEC_PUB,
         .help = "seconds to wait between repeats."},

        /* sub: what to subscribe to and how to print it. */
        {"-C", NULL, OK_UINT, CMD_SUB, TOOL(count), .what = "count", .min = 1, .max = ULONG_MAX,
         .bad = "Invalid message count \"{val}\".", .sec = SEC_SUB,
         .help = "disconnect and exit after receiving msg_count messages."},
        {"-E", NULL, OK_FLAG, CMD_SUB, TOOL(exit_after_sub), .sec = SEC_SUB,
         .help = "exit once all subscriptions have been acknowledged by the broker."},
        {"-F", NULL, OK_STR, CMD_SUB, TOOL(format), .what = "format", .sec = SEC_SUB,
         .help = "output format: %t topic, %p payload, %q QoS, %r retain, %m message id, "
                 "%l length, %x / %X hex payload, %I ISO-8601 time, %U Unix time, %j / %J "
                 "JSON, v5: %A topic alias, %C content type, %D correlation data, %E message "
                 "expiry, %F payload format, %P user properties, %R response topic, %S "
                 "subscription identifier; @X strftime fields, @N nanoseconds; \\n \\t \\0 "
                 "\\a \\e \\r \\v \\\\ escapes. See 'man mosquitto_sub'."},
        {"-N", NULL, OK_FLAG, CMD_SUB, TOOL(no_eol), .sec = SEC_SUB,
         .help = "do not add an end of line character when printing the payload."},
        {"-R", NULL, OK_FLAG, CMD_SUB, TOOL(no_retain), .sec = SEC_SUB,
         .help = "do not print stale messages (those with retain set)."},
        {"-T", "--filter-out", OK_FUNC, CMD_SUB, .what = "topic filter", .set = add_filter_out,
         .sec = SEC_SUB, .help = "topic filter to leave out of the output. May be repeated."},
        {"-U", "--unsubscribe", OK_FUNC, CMD_SUB, .what = "unsubscribe topic", .set = add_unsub,
         .sec = SEC_SUB, .help = "unsubscribe from a topic (after subscribing). May be repeated."},
        {"-v", "--verbose", OK_FLAG, CMD_SUB, TOOL(verbose), .sec = SEC_SUB,
         .help = "print the topic before each payload."},
        {"-W", NULL, OK_UINT, CMD_SUB, TOOL(timeout_s), .what = "timeout", .min = 1,
         .max = 3600ul * 24 * 365, .bad = "Invalid timeout \"{val}\".", .sec = SEC_SUB,
         .help = "exit (status 27) after this many seconds."},
        {NULL, "--pretty", OK_FLAG, CMD_SUB, TOOL(pretty), .sec = SEC_SUB,
         .help = "lay out %j / %J JSON over several lines."},
        {NULL, "--random-filter", OK_DOUBLE, CMD_SUB, TOOL(random_filter), .what = "chance",
         .lo = 0.1, .hi = 100, .bad = "Invalid --random-filter chance {val} (0.1 to 100).",
         .sec = SEC_SUB, .help = "print only this percentage of messages."},
        {NULL, "--retained-only", OK_FLAG, CMD_SUB, TOOL(retained_only), .sec = SEC_SUB,
         .help = "print only retained messages; exit at the first fresh one."},
        {NULL, "--remove-retained", OK_FLAG, CMD_SUB, TOOL(remove_retained), .sec = SEC_SUB,
         .help = "clear every retained message received (except -T ones)."},
        {NULL, "--retain-as-published", OK_FLAG, CMD_SUB, TOOL(retain_as_published), .sec = SEC_SUB,
         .help = "subscribe with the v5 retain-as-published option."},

        /* Every subcommand: the broker. */
        {"-h", "--host", OK_STR, ALL, COMMON(host), .what = "host", .sec = SEC_CONN, .arg = "HOST",
         .help = "broker host to connect to. Defaults to localhost (bench: 127.0.0.1; numeric "
                 "is best)."},
        {"-p", "--port", OK_FUNC, ALL, .what = "port", .bad = "Invalid port given: {val}",
         .set = set_port, .sec = SEC_CONN, .arg = "PORT",
         .help = "network port. Defaults to 1883, or 8883 with TLS."},
        {"-V", "--protocol-version", OK_FUNC, ALL, .what = "protocol version",
         .bad = "Invalid protocol version argument given: {val} (use mqttv5, mqttv311 or "
                "mqttv31).",
         .set = set_version, .sec = SEC_CONN, .arg = "VERSION",
         .help = "MQTT version: mqttv5, mqttv311 or mqttv31 (or 5, 311, 31). Defaults to "
                 "mqttv311."},
        {"-k", "--keepalive", OK_UINT, ALL, COMMON(keepalive), .what = "keepalive", .min = 0,
         .max = 65535, .bad = "Invalid keepalive given, it must be between 0 and 65535 inclusive.",
         .sec = SEC_CONN, .arg = "SECONDS",
         .help = "keep alive in seconds. Defaults to 60; 0 disables it."},
        {"-A", NULL, OK_STR, PS, TOOL(bind_address), .what = "address", .sec = SEC_CONN,
         .help = "bind the outgoing socket to this host/ip address."},
        {"-L", "--url", OK_FUNC, PS, .what = "URL", .set = set_url, .sec = SEC_CONN,
         .help = "mqtt(s)://[username[:password]@]host[:port]/topic (mqtts: TLS)"},
        {NULL, "--nodelay", OK_FLAG, PS, TOOL(nodelay), .sec = SEC_CONN,
         .help = "disable Nagle's algorithm."},
        /* bench: where connections come from. */
        {NULL, "--sources", OK_FUNC, CMD_BENCH, .what = "address list",
         .bad = "{opt}: invalid address list '{val}'.", .set = set_sources, .sec = SEC_CONN,
         .arg = "LIST",
         .help = "source addresses to bind, dealt round-robin over the connections: "
                 "127.0.0.1,127.0.0.2 or 127.0.0.1-127.0.0.50"},
        {NULL, "--connect-rate", OK_DOUBLE, CMD_BENCH, BENCH(conn_rate), .what = "rate", .lo = 0,
         .hi = 1e7, .bad = "{opt}: invalid rate '{val}'.", .sec = SEC_CONN, .arg = "R",
         .help = "connections per second over all threads (default: as fast as the broker "
                 "accepts them)"},
        {NULL, "--id-prefix", OK_STR, CMD_BENCH, BENCH(id_prefix), .what = "id prefix", .max = 64,
         .bad = "{opt}: at most 64 characters.", .sec = SEC_CONN, .arg = "P",
         .help = "client ids are P + role letter + index (default tb<pid>-)"},

        /* pub, sub: the client and its session. */
        {"-i", "--id", OK_STR, PS, TOOL(id), .what = "id", .max = 65535,
         .bad = "-i: client id too long.", .sec = SEC_CLIENT,
         .help = "client id. Defaults to a random id (v3.1/v3.1.1) or one the broker assigns "
                 "(v5)."},
        {"-I", "--id-prefix", OK_STR, PS, TOOL(id_prefix), .what = "id prefix", .sec = SEC_CLIENT,
         .help = "client id prefix; the process id is appended."},
        {"-u", "--username", OK_STR, PS, TOOL(username), .what = "username", .sec = SEC_CLIENT,
         .help = "username."},
        {"-P", "--pw", OK_STR, PS, TOOL(password), .what = "password", .sec = SEC_CLIENT,
         .help = "password."},
        {"-c", "--disable-clean-session", OK_FLAG_OFF, PS, TOOL(clean), .sec = SEC_CLIENT,
         .help = "disable clean session / clean start: keep the session (and, in MQTT v5, let "
                 "it never expire unless -x says otherwise). Needs -i."},
        {"-x", "--session-expiry-interval", OK_FUNC, PS, .what = "expiry interval",
         .bad = "Invalid session expiry interval given: {val}", .set = set_session_expiry,
         .sec = SEC_CLIENT,
         .help = "session expiry interval in seconds (MQTT v5), or -1 for never. Defaults to "
                 "-1 with -c, 0 otherwise."},
        {"-t", "--topic", OK_FUNC, PS, .what = "topic", .set = add_topic, .sec = SEC_CLIENT,
         .help = "topic to publish to (pub), or to subscribe to (sub: may be repeated)."},
        {"-q", "--qos", OK_UINT, PS, TOOL(qos), .what = "QoS", .min = 0, .max = 2,
         .bad = "Invalid QoS given: {val}", .sec = SEC_CLIENT,
         .help = "quality of service: 0, 1 or 2. Defaults to 0."},
        {"-D", "--property", OK_PROPERTY, PS, .sec = SEC_CLIENT,
         .help = "MQTT v5 property: -D command identifier value, or -D command user-property "
                 "name value. Commands: connect, will, disconnect, and publish (pub) or "
                 "subscribe / unsubscribe (sub)."},
        {"-d", "--debug", OK_FLAG, PS, TOOL(debug), .sec = SEC_CLIENT,
         .help = "print debug messages (to stderr)."},
        {NULL, "--will-topic", OK_STR, PS, TOOL(will_topic), .what = "will topic", .sec = SEC_WILL,
         .help = "topic of the will."},
        {NULL, "--will-payload", OK_STR, PS, TOOL(will_payload), .what = "will payload",
         .sec = SEC_WILL, .help = "payload of the will (default: empty)."},
        {NULL, "--will-qos", OK_UINT, PS, TOOL(will_qos), .what = "will QoS", .min = 0, .max = 2,
         .bad = "Invalid will QoS {val}.", .sec = SEC_WILL, .help = "QoS of the will."},
        {NULL, "--will-retain", OK_FLAG, PS, TOOL(will_retain), .sec = SEC_WILL,
         .help = "make the will retained."},

        /* Every subcommand: TLS, with mosquitto_pub's flags. */
        {NULL, "--cafile", OK_STR, ALL, COMMON(cafile), .what = "file", .sec = SEC_TLS,
         .arg = "FILE", .help = "file of PEM encoded CA certificates to trust. Turns TLS on."},
        {NULL, "--capath", OK_STR, ALL, COMMON(capath), .what = "directory", .sec = SEC_TLS,
         .arg = "DIR",
         .help = "directory of PEM encoded CA certificates to trust (prepared with 'openssl "
                 "rehash'). Turns TLS on."},
        {NULL, "--cert", OK_STR, ALL, COMMON(certfile), .what = "file", .sec = SEC_TLS,
         .arg = "FILE",
         .help = "PEM encoded client certificate, for brokers that require one. Needs --key."},
        {NULL, "--key", OK_STR, ALL, COMMON(keyfile), .what = "file", .sec = SEC_TLS, .arg = "FILE",
         .help = "PEM encoded (unencrypted) private key of --cert."},
        {NULL, "--insecure", OK_FLAG, ALL, COMMON(insecure), .sec = SEC_TLS,
         .help = "do not check that the broker's certificate names the host connected to. For "
                 "testing only."},
        {NULL, "--tls-use-os-certs", OK_FLAG, ALL, COMMON(tls_use_os_certs), .sec = SEC_TLS,
         .help = "trust the system's CA certificates too (alone: TLS with those only; pub and "
                 "sub: also the default for -p 8883 without other TLS options and for mqtts:// "
                 "URLs)."},

        {NULL, "--psk", OK_STR, ALL, COMMON(psk_hex), .what = "key", .sec = SEC_TLS, .arg = "HEX",
         .help = "pre-shared key in hexadecimal (no leading 0x), for a TLS-PSK listener "
                 "(psk_hint). Needs --psk-identity; turns TLS on."},
        {NULL, "--psk-identity", OK_STR, ALL, COMMON(psk_identity), .what = "identity",
         .sec = SEC_TLS, .arg = "ID", .help = "the identity of --psk."},

        /* bench: clients, messages, bounds. */
        {"-c", "--clients", OK_UINT, CMD_BENCH, BENCH(clients), .what = "count", .min = 1,
         .max = BENCH_MAX_CLIENTS, .bad = "{opt}: expected 1 to 1000000, got '{val}'.",
         .sec = SEC_BENCH_CLIENTS, .arg = "N",
         .help = "connections (conn), publishers (pub), subscribers (sub)"},
        {"-P", "--pubs", OK_UINT, CMD_BENCH, BENCH(pubs), .what = "count", .min = 1,
         .max = BENCH_MAX_CLIENTS, .bad = "{opt}: expected 1 to 1000000, got '{val}'.",
         .sec = SEC_BENCH_CLIENTS, .arg = "N", .help = "run: publishers (default 1)"},
        {"-S", "--subs", OK_UINT, CMD_BENCH, BENCH(subs), .what = "count", .min = 1,
         .max = BENCH_MAX_CLIENTS, .bad = "{opt}: expected 1 to 1000000, got '{val}'.",
         .sec = SEC_BENCH_CLIENTS, .arg = "N", .help = "run: subscribers (default 1)"},
        {"-n", "--threads", OK_UINT, CMD_BENCH, BENCH(threads), .what = "count", .min = 1,
         .max = 256, .bad = "{opt}: expected 1 to 256, got '{val}'.", .sec = SEC_BENCH_CLIENTS,
         .arg = "N",
         .help = "worker threads, each with its own epoll loop (default: the CPUs this process "
                 "may use)"},
        {"-q", "--qos", OK_FUNC, CMD_BENCH, .what = "QoS",
         .bad = "{opt}: expected QoS values 0, 1 or 2 (a list: 0,1,2), got '{val}'.",
         .set = set_qos_list, .sec = SEC_BENCH_MSG, .arg = "Q[,Q...]",
         .help = "publish QoS; a list is dealt over the publishers (default 0)"},
        {NULL, "--sub-qos", OK_UINT, CMD_BENCH, BENCH(sub_qos), .what = "QoS", .min = 0, .max = 2,
         .bad = "{opt}: expected 0, 1 or 2, got '{val}'.", .sec = SEC_BENCH_MSG, .arg = "Q",
         .help = "subscription QoS (default: the highest publish QoS)"},
        {"-s", "--size", OK_UINT, CMD_BENCH, BENCH(size), .what = "size", .min = 0,
         .max = 256u * 1024 * 1024, .bad = "{opt}: invalid size '{val}'.", .sec = SEC_BENCH_MSG,
         .arg = "BYTES",
         .help = "payload size (default 64; run needs at least 24 for the timestamp and "
                 "sequence number)"},
        {"-t", "--topic", OK_STR, CMD_BENCH, BENCH(topic), .what = "topic", .sec = SEC_BENCH_MSG,
         .arg = "PATTERN",
         .help = "publish topic, %i = publisher index (default bench/%i); sub: the filter"},
        {"-f", "--filter", OK_STR, CMD_BENCH, BENCH(filter), .what = "filter", .sec = SEC_BENCH_MSG,
         .arg = "PATTERN", .help = "subscription filter, %i = subscriber index (default bench/#)"},
        {"-r", "--rate", OK_DOUBLE, CMD_BENCH, BENCH(rate), .what = "rate", .lo = 0, .hi = 1e7,
         .bad = "{opt}: invalid rate '{val}'.", .sec = SEC_BENCH_MSG, .arg = "R",
         .help = "messages per second per publisher (default 0: flat out, paced by the "
                 "socket); conn: connections per second"},
        {NULL, "--inflight", OK_UINT, CMD_BENCH, BENCH(inflight), .what = "count", .min = 1,
         .max = 65535, .bad = "{opt}: expected 1 to 65535, got '{val}'.", .sec = SEC_BENCH_MSG,
         .arg = "N",
         .help = "QoS 1/2 messages pending per publisher (default 20, the brokers' default "
                 "max_inflight_messages: mosquitto acknowledges and drops what a 3.1.1 client "
                 "sends beyond)"},
        {NULL, "--backlog", OK_UINT, CMD_BENCH, BENCH(backlog), .what = "count", .min = 0,
         .max = UINT32_MAX, .bad = "{opt}: invalid number '{val}'.", .sec = SEC_BENCH_MSG,
         .arg = "N",
         .help = "run: publishers pause while N deliveries are under way (published, not yet "
                 "received by every matching subscriber): a closed loop that measures what "
                 "the broker delivers without overloading it (default 0: open loop)"},
        {"-C", "--count", OK_UINT, CMD_BENCH, BENCH(count), .what = "count", .min = 1,
         .max = UINT32_MAX, .bad = "{opt}: expected a positive count, got '{val}'.",
         .sec = SEC_BENCH_BOUNDS, .arg = "N",
         .help = "messages per publisher (sub: per subscriber)"},
        {"-d", "--duration", OK_DOUBLE, CMD_BENCH, BENCH(duration), .what = "seconds",
         .lo = DBL_TRUE_MIN, .hi = 1e7,
         .bad = "{opt}: expected a positive number of seconds, got '{val}'.",
         .sec = SEC_BENCH_BOUNDS, .arg = "S",
         .help = "seconds of publishing (conn: of holding), after connecting"},
        {"-w", "--warmup", OK_DOUBLE, CMD_BENCH, BENCH(warmup), .what = "seconds", .lo = 0,
         .hi = 1e7, .bad = "{opt}: invalid seconds '{val}'.", .sec = SEC_BENCH_BOUNDS, .arg = "S",
         .help = "seconds at the start left out of rates and latencies"},
        {NULL, "--drain", OK_DOUBLE, CMD_BENCH, BENCH(drain), .what = "seconds", .lo = 0, .hi = 1e7,
         .bad = "{opt}: invalid seconds '{val}'.", .sec = SEC_BENCH_BOUNDS, .arg = "S",
         .help = "at most this long to wait for the last deliveries and acknowledgements after "
                 "publishing stops (default 3)"},

        /* Output. */
        {NULL, "--json", OK_FLAG, CMD_BENCH, BENCH(json), .sec = SEC_OUTPUT,
         .help = "print one JSON object with all figures on stdout"},
        {NULL, "--quiet", OK_FLAG, ALL, COMMON(quiet), .sec = SEC_OUTPUT,
         .help = "do not print error messages once connected (bench: no progress line or "
                 "events on stderr)."},
        {NULL, "--help", OK_HELP, ALL, .sec = SEC_OUTPUT, .help = "display this message."},

        /* mosquitto's, not ours. */
        UNSUPPORTED("--ciphers", ALL),
        UNSUPPORTED("--tls-version", ALL),
        UNSUPPORTED("--tls-alpn", ALL),
        UNSUPPORTED("--tls-engine", ALL),
        UNSUPPORTED("--keyform", ALL),
        UNSUPPORTED("--tls-engine-kpass-sha1", ALL),
        UNSUPPORTED("--proxy", ALL),
        UNSUPPORTED("--unix", ALL),
        UNSUPPORTED("-S", PS),
};

#define N_OPTIONS (sizeof(options) / sizeof(options[0]))
_Static_assert(N_OPTIONS <= OPT_MAX_ROWS, "raise OPT_MAX_ROWS");

static bool names(const struct tool_option *opt, const char *a)
{
	return (opt->short_name != NULL && strcmp(a, opt->short_name) == 0) ||
	       (opt->long_name != NULL && strcmp(a, opt->long_name) == 0);
}

/* The row of option a for cmd, or -1. */
static int find(enum tool_cmd cmd, const char *a)
{
	for (size_t r = 0; r < N_OPTIONS; r++)
		if ((options[r].cmds & cmd) && names(&options[r], a))
			return (int)r;
	return -1;
}

bool option_given(const struct optparse *p, const char *name)
{
	int r = find(p->cmd, name);

	return r >= 0 && (p->seen[r / 64] >> (r % 64) & 1);
}

static void *field_of(const struct optparse *p, const struct tool_option *opt)
{
	char *base = opt->target == T_COMMON ? (char *)p->common
	             : opt->target == T_TOOL ? (char *)p->tool
	                                     : (char *)p->bench;
	return base + opt->off;
}

/* Parses and stores the value of one option (v is NULL for those that
 * take none). */
static bool apply(struct optparse *p, const struct tool_option *opt, const char *a, const char *v)
{
	uint64_t n;
	double d;

	switch (opt->kind) {
	case OK_FLAG:
	case OK_FLAG_OFF:
		*(bool *)field_of(p, opt) = opt->kind == OK_FLAG;
		return true;
	case OK_STR:
		if (opt->max > 0 && strlen(v) > opt->max)
			return opt_bad(p, opt, a, v);
		*(const char **)field_of(p, opt) = v;
		return true;
	case OK_UINT:
		if (!parse_uint(v, opt->min, opt->max, &n))
			return opt_bad(p, opt, a, v);
		store_uint(field_of(p, opt), opt->size, n);
		return true;
	case OK_DOUBLE:
		if (!parse_double(v, opt->lo, opt->hi, &d))
			return opt_bad(p, opt, a, v);
		*(double *)field_of(p, opt) = d;
		return true;
	case OK_FUNC:
	case OK_ACTION:
		return opt->set(p, opt, a, v);
	case OK_PROPERTY:
	case OK_HELP:
	case OK_UNSUPPORTED:
		break;
	}
	return false;
}

static bool takes_value(const struct tool_option *opt)
{
	return opt->kind == OK_STR || opt->kind == OK_UINT || opt->kind == OK_DOUBLE ||
	       opt->kind == OK_FUNC;
}

enum tool_parse options_parse(struct optparse *p, int argc, char **argv)
{
	for (int i = 1; i < argc; i++) {
		const char *a = argv[i];
		int r = find(p->cmd, a);
		if (r < 0) {
			tool_error(p->prog, "Unknown option '%s'.", a);
			return PARSE_ERROR;
		}
		const struct tool_option *opt = &options[r];
		p->seen[r / 64] |= (uint64_t)1 << (r % 64);
		switch (opt->kind) {
		case OK_HELP:
			p->usage(stdout);
			return PARSE_HELP;
		case OK_UNSUPPORTED:
			tool_error(p->prog,
			           "'%s' is not supported by %s (no TLS cipher, version, ALPN, "
			           "engine or PSK options; no proxy, SRV or unix socket support).",
			           a, p->prog);
			return PARSE_ERROR;
		case OK_PROPERTY:
			/* -D's words: props_parse() leaves i on the last it used. */
			i++;
			if (!props_parse(p->tool, argc, argv, &i))
				return PARSE_ERROR;
			continue;
		default:
			break;
		}
		const char *v = NULL;
		if (takes_value(opt)) {
			if (i + 1 >= argc) {
				tool_error(p->prog, "%s argument given but no %s specified.", a,
				           opt->what);
				return PARSE_ERROR;
			}
			v = argv[++i];
		}
		if (!apply(p, opt, a, v))
			return PARSE_ERROR;
	}
	return PARSE_OK;
}

bool common_finish(struct optparse *p, bool port_8883_means_tls)
{
	struct common_opts *c = p->common;
	bool any = c->cafile != NULL || c->capath != NULL || c->certfile != NULL ||
	           c->keyfile != NULL || c->insecure || c->tls_use_os_certs;

	if ((c->certfile == NULL) != (c->keyfile == NULL)) {
		tool_error(p->prog, "--cert and --key must be given together (both certfile and "
		                    "keyfile).");
		return false;
	}
	if ((c->psk_hex == NULL) != (c->psk_identity == NULL)) {
		tool_error(p->prog, "--psk and --psk-identity must be given together.");
		return false;
	}
	if (c->psk_hex != NULL) {
		size_t n = strlen(c->psk_hex);
		bool ok = n > 0 && n % 2 == 0 && n / 2 <= sizeof(c->psk) &&
		          strlen(c->psk_identity) > 0 && strlen(c->psk_identity) <= 128;
		for (size_t i = 0; ok && i < n; i += 2) {
			char byte[3] = {c->psk_hex[i], c->psk_hex[i + 1], 0};
			char *end = NULL;
			ok = isxdigit((unsigned char)byte[0]) && isxdigit((unsigned char)byte[1]);
			c->psk[i / 2] = (uint8_t)strtoul(byte, &end, 16);
		}
		if (!ok) {
			tool_error(p->prog,
			           "--psk: expected 1 to 256 bytes in hexadecimal (no 0x) and "
			           "--psk-identity of 1 to 128 bytes.");
			return false;
		}
		c->psk_len = n / 2;
		c->tls = true;
	}
	/* mosquitto: port 8883 with no certificate options means TLS with the
	 * system's CAs. */
	if (port_8883_means_tls && c->port_given && c->port == 8883 && !any)
		c->tls_use_os_certs = true;
	if (c->cafile != NULL || c->capath != NULL || c->tls_use_os_certs)
		c->tls = true;
	if (!c->tls && any) {
		tool_error(p->prog,
		           "--cert, --key and --insecure need TLS: give --cafile, --capath "
		           "or --tls-use-os-certs.");
		return false;
	}
	if (c->tls && !c->port_given)
		c->port = 8883;
	return true;
}

void common_connect_opts(const struct common_opts *c, struct tern_connect_opts *co)
{
	co->host = c->host;
	co->port = c->port;
	co->version = c->version;
	co->keep_alive = c->keepalive;
	co->tls = c->tls;
	co->tls_cafile = c->cafile;
	co->tls_capath = c->capath;
	co->tls_certfile = c->certfile;
	co->tls_keyfile = c->keyfile;
	co->tls_insecure = c->insecure;
	co->tls_use_os_certs = c->tls_use_os_certs;
	if (c->psk_len) {
		co->tls_psk_identity = c->psk_identity;
		co->tls_psk = c->psk;
		co->tls_psk_len = c->psk_len;
	}
}

/* ---- Help ---- */

#define HELP_WIDTH 79

/* Prints text from column `col` (the cursor is there), wrapped at
 * HELP_WIDTH, continuation lines indented to col. */
static void print_wrapped(FILE *f, const char *text, size_t col)
{
	size_t at = col;

	while (*text) {
		size_t word = strcspn(text, " ");
		if (at > col && at + 1 + word > HELP_WIDTH) {
			fprintf(f, "\n%*s", (int)col, "");
			at = col;
		} else if (at > col) {
			fputc(' ', f);
			at++;
		}
		fwrite(text, 1, word, f);
		at += word;
		text += word;
		while (*text == ' ')
			text++;
	}
	fputc('\n', f);
}

/* One row: " -q : text" (mosquitto's layout, the short name when there is
 * one), or " -q, --qos Q          text" in columns (bench). */
static void print_option(FILE *f, const struct tool_option *opt, bool columns)
{
	char head[64];
	int w;

	if (!columns) {
		w = snprintf(head, sizeof(head),
		             " %s : ", opt->short_name != NULL ? opt->short_name : opt->long_name);
		fputs(head, f);
		print_wrapped(f, opt->help, (size_t)w);
		return;
	}
	w = snprintf(head, sizeof(head), " %s%s%s%s%s", opt->short_name ? opt->short_name : "   ",
	             opt->short_name && opt->long_name ? ", "
	             : opt->long_name                  ? " "
	                                               : "",
	             opt->long_name ? opt->long_name : "", opt->arg ? " " : "",
	             opt->arg ? opt->arg : "");
	fputs(head, f);
	if (w + 2 > 23) {
		fputs("\n", f);
		w = 0;
	}
	fprintf(f, "%*s", 23 - w, "");
	print_wrapped(f, opt->help, 23);
}

void options_usage(FILE *f, enum tool_cmd cmd)
{
	char none[512] = "Not supported:";
	size_t len = strlen(none);
	bool first = true;

	for (int sec = SEC_NONE + 1; sec < SEC_COUNT; sec++) {
		bool titled = false;
		for (size_t r = 0; r < N_OPTIONS; r++) {
			const struct tool_option *opt = &options[r];
			if ((int)opt->sec != sec || !(opt->cmds & cmd))
				continue;
			if (!titled) {
				fprintf(f, "\n%s\n", section_title[sec]);
				titled = true;
			}
			print_option(f, opt, cmd == CMD_BENCH);
		}
	}
	/* mosquitto's options that are not ours, from their rows. */
	for (size_t r = 0; r < N_OPTIONS; r++) {
		if (options[r].kind != OK_UNSUPPORTED || !(options[r].cmds & cmd))
			continue;
		len += (size_t)snprintf(none + len, sizeof(none) - len, "%s %s", first ? "" : ",",
		                        options[r].long_name);
		first = false;
	}
	snprintf(none + len, sizeof(none) - len, ".");
	fputc('\n', f);
	print_wrapped(f, none, 0);
}
