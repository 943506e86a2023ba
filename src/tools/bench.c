/*
 * bench.c - the command line of `tern bench`, and its entry point.
 *
 *   tern bench conn -c N --duration S      open N connections, hold them
 *   tern bench pub  -c N [--rate R] ...    N publishers
 *   tern bench sub  -c N -t FILTER ...     N subscribers
 *   tern bench run  --pubs P --subs S ...  both, with latency and loss
 *
 * Parsing is a loop over argv with one branch per option (as opts.c does
 * for pub and sub), then checks that need the whole line: every run must be
 * bounded by --count and/or --duration (a load generator left running by
 * mistake is a denial of service), options that make no sense in a mode
 * are refused rather than ignored, and topics are validated with the
 * codec's own checks before anything connects. Errors name the option,
 * print a hint to --help and exit with status 1; a run that could not do
 * what was asked (connections failed or were lost, a subscription was
 * refused) exits with status 2 after its report.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <sched.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "bench.h"

#define MAX_CLIENTS 1000000u
#define MAX_SOURCES 65536u

static const char usage_text[] =
        "Usage: tern bench conn [options]   open connections at a rate and hold them\n"
        "       tern bench pub [options]    publishers (rate-limited or flat out)\n"
        "       tern bench sub [options]    subscribers on a filter\n"
        "       tern bench run [options]    publishers and subscribers in one process:\n"
        "                                   delivered messages/s, end-to-end latency,\n"
        "                                   lost and duplicated messages\n"
        "\n"
        "Every run must be bounded: give --count and/or --duration (conn: --duration).\n"
        "\n"
        "Connection:\n"
        " -h, --host HOST       broker address (default 127.0.0.1; numeric is best)\n"
        " -p, --port PORT       broker port (default 1883, 8883 with TLS)\n"
        " -V, --protocol-version 31|311|5   MQTT version (default 311)\n"
        " -k, --keepalive S     keep alive in seconds (default 60; 0 disables)\n"
        "     --sources LIST    source addresses to bind, dealt round-robin over the\n"
        "                       connections: 127.0.0.1,127.0.0.2 or 127.0.0.1-127.0.0.50\n"
        "     --connect-rate R  connections per second over all threads (default:\n"
        "                       as fast as the broker accepts them)\n"
        "     --id-prefix P     client ids are P + role letter + index\n"
        "                       (default tb<pid>-)\n"
        "TLS (mosquitto_pub's flags; TLS 1.2 or later, certificate and name checked):\n"
        "     --cafile FILE     CA certificates to trust (PEM); turns TLS on\n"
        "     --capath DIR      directory of CA certificates (openssl rehash); TLS on\n"
        "     --cert FILE       client certificate (PEM), with --key\n"
        "     --key FILE        its private key (PEM, unencrypted)\n"
        "     --insecure        do not check the broker's name in its certificate\n"
        "     --tls-use-os-certs  trust the system's CAs too (alone: TLS with those)\n"
        "Clients and threads:\n"
        " -c, --clients N       connections (conn), publishers (pub), subscribers (sub)\n"
        " -P, --pubs N          run: publishers (default 1)\n"
        " -S, --subs N          run: subscribers (default 1)\n"
        " -n, --threads N       worker threads, each with its own epoll loop (default:\n"
        "                       the CPUs this process may use)\n"
        "Messages:\n"
        " -q, --qos Q[,Q...]    publish QoS; a list is dealt over the publishers\n"
        "                       (default 0)\n"
        "     --sub-qos Q       subscription QoS (default: the highest publish QoS)\n"
        " -s, --size BYTES      payload size (default 64; run needs at least 24 for the\n"
        "                       timestamp and sequence number)\n"
        " -t, --topic PATTERN   publish topic, %i = publisher index (default bench/%i);\n"
        "                       sub: the filter\n"
        " -f, --filter PATTERN  subscription filter, %i = subscriber index\n"
        "                       (default bench/#)\n"
        " -r, --rate R          messages per second per publisher (default 0: flat out,\n"
        "                       paced by the socket); conn: connections per second\n"
        "     --inflight N      QoS 1/2 messages pending per publisher (default 20, the\n"
        "                       brokers' default max_inflight_messages: mosquitto\n"
        "                       acknowledges and drops what a 3.1.1 client sends beyond)\n"
        "     --backlog N       run: publishers pause while N deliveries are under way\n"
        "                       (published, not yet received by every matching\n"
        "                       subscriber): a closed loop that measures what the broker\n"
        "                       delivers without overloading it (default 0: open loop)\n"
        "Bounds and measurement:\n"
        " -C, --count N         messages per publisher (sub: per subscriber)\n"
        " -d, --duration S      seconds of publishing (conn: of holding), after connecting\n"
        " -w, --warmup S        seconds at the start left out of rates and latencies\n"
        "     --drain S         at most this long to wait for the last deliveries and\n"
        "                       acknowledgements after publishing stops (default 3)\n"
        "Output:\n"
        "     --json            print one JSON object with all figures on stdout\n"
        "     --quiet           no progress line or events on stderr\n"
        "     --help            this text\n"
        "\n"
        "A progress line (connections, sent/s, received/s, errors) is printed to stderr\n"
        "every second when it is a terminal. Loopback testing is your responsibility:\n"
        "do not point this at a broker you do not own.\n";

static void error(const struct bench_opts *o, const char *fmt, ...)
        __attribute__((format(printf, 2, 3)));

static void error(const struct bench_opts *o, const char *fmt, ...)
{
	va_list ap;
	fputs("Error: ", stderr);
	va_start(ap, fmt);
	vfprintf(stderr, fmt, ap);
	va_end(ap);
	fprintf(stderr, "\nUse '%s --help' to see usage.\n", o->prog);
}

static bool parse_uint(const char *s, unsigned long max, unsigned long *out)
{
	char *end;
	if (s == NULL || s[0] < '0' || s[0] > '9')
		return false;
	errno = 0;
	unsigned long long v = strtoull(s, &end, 10);
	if (errno != 0 || *end != '\0' || v > max)
		return false;
	*out = (unsigned long)v;
	return true;
}

static bool parse_seconds(const char *s, double *out)
{
	char *end;
	if (s == NULL)
		return false;
	errno = 0;
	double v = strtod(s, &end);
	if (errno != 0 || end == s || *end != '\0' || !(v >= 0) || v > 1e7)
		return false;
	*out = v;
	return true;
}

static bool parse_qos_list(struct bench_opts *o, const char *s)
{
	o->n_qos = 0;
	for (const char *p = s;; p++) {
		if (*p < '0' || *p > '2' || o->n_qos == BENCH_MAX_QOS_LIST)
			return false;
		o->qos[o->n_qos++] = (uint8_t)(*p - '0');
		p++;
		if (*p == '\0')
			return true;
		if (*p != ',')
			return false;
	}
}

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

/* Parses "A,B,C-D,..." where each item is an address or an IPv4 range
 * A-B (B may be the last number only: 127.0.0.1-50). */
static bool parse_sources(struct bench_opts *o, const char *list)
{
	char *copy = strdup(list), *save = NULL;
	bool ok = copy != NULL && list[0] != '\0';
	for (char *item = copy ? strtok_r(copy, ",", &save) : NULL; ok && item;
	     item = strtok_r(NULL, ",", &save)) {
		char *dash = strchr(item, '-');
		struct in_addr a, z;
		if (dash == NULL) {
			struct in6_addr a6;
			ok = (inet_pton(AF_INET, item, &a) == 1 ||
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
			if (dot == NULL)
				return free(copy), false;
			snprintf(full, sizeof(full), "%.*s.%s", (int)(dot - item), item, hi);
			hi = full;
		}
		if (inet_pton(AF_INET, item, &a) != 1 || inet_pton(AF_INET, hi, &z) != 1) {
			ok = false;
			break;
		}
		uint32_t lo = ntohl(a.s_addr), up = ntohl(z.s_addr);
		if (up < lo || up - lo >= MAX_SOURCES) {
			ok = false;
			break;
		}
		for (uint64_t v = lo; ok && v <= up; v++) {
			char buf[INET_ADDRSTRLEN];
			struct in_addr ia = {.s_addr = htonl((uint32_t)v)};
			inet_ntop(AF_INET, &ia, buf, sizeof(buf));
			ok = push_source(o, buf);
		}
	}
	free(copy);
	return ok;
}

static void opts_release(struct bench_opts *o)
{
	for (size_t i = 0; i < o->n_sources; i++)
		free(o->sources[i]);
	free(o->sources);
	o->sources = NULL;
	o->n_sources = 0;
}

/* The CPUs this process may run on (taskset), at least 1. */
static unsigned cpus_allowed(void)
{
	cpu_set_t set;
	if (sched_getaffinity(0, sizeof(set), &set) == 0 && CPU_COUNT(&set) > 0)
		return (unsigned)CPU_COUNT(&set);
	long n = sysconf(_SC_NPROCESSORS_ONLN);
	return n > 0 ? (unsigned)n : 1;
}

static bool is(const char *a, const char *s, const char *l)
{
	return (s != NULL && strcmp(a, s) == 0) || (l != NULL && strcmp(a, l) == 0);
}

/* Checks the pattern expanded for index 0 with the codec's validators. */
static bool pattern_ok(const char *pattern, bool filter)
{
	char buf[1024];
	size_t w = 0;
	for (const char *p = pattern; *p && w + 12 < sizeof(buf); p++) {
		if (p[0] == '%' && p[1] == 'i') {
			buf[w++] = '0';
			p++;
		} else if (p[0] == '%' && p[1] == '%') {
			buf[w++] = '%';
			p++;
		} else {
			buf[w++] = *p;
		}
	}
	if (w + 12 >= sizeof(buf))
		return false;
	return filter ? tern_topic_filter_check((const uint8_t *)buf, w) == TERN_OK
	              : tern_topic_name_check((const uint8_t *)buf, w) == TERN_OK;
}

enum parse_result { PARSED, PARSE_HELP_SHOWN, PARSE_FAILED };

static enum parse_result parse(struct bench_opts *o, int argc, char **argv, char *idbuf,
                               size_t idlen)
{
	unsigned long n;
	bool have_clients = false, have_pubs = false, have_subs = false, have_filter = false,
	     have_topic = false, have_sub_qos = false, have_rate = false, have_conn_rate = false,
	     have_backlog = false, have_port = false;
	unsigned long clients = 1;

	o->host = "127.0.0.1";
	o->port = 1883;
	o->version = TERN_V311;
	o->keepalive = 60;
	o->pubs = o->subs = 1;
	o->qos[0] = 0;
	o->n_qos = 1;
	o->size = 64;
	o->topic = "bench/%i";
	o->filter = "bench/#";
	o->drain = 3;
	o->inflight = 20;
	o->threads = cpus_allowed();
	if (o->threads > 16)
		o->threads = 16;
	snprintf(idbuf, idlen, "tb%ld-", (long)getpid());
	o->id_prefix = idbuf;

	for (int i = 1; i < argc; i++) {
		const char *a = argv[i];
		const char *v = i + 1 < argc ? argv[i + 1] : NULL;
		if (is(a, NULL, "--help")) {
			fputs(usage_text, stdout);
			return PARSE_HELP_SHOWN;
		}
		if (is(a, NULL, "--json")) {
			o->json = true;
			continue;
		}
		if (is(a, NULL, "--quiet")) {
			o->quiet = true;
			continue;
		}
		if (is(a, NULL, "--insecure")) {
			o->insecure = true;
			continue;
		}
		if (is(a, NULL, "--tls-use-os-certs")) {
			o->tls_use_os_certs = true;
			continue;
		}
		if (v == NULL) {
			if (a[0] == '-')
				error(o, "%s: unknown option or missing argument.", a);
			else
				error(o, "unexpected argument '%s'.", a);
			return PARSE_FAILED;
		}
		i++;
		if (is(a, "-h", "--host")) {
			o->host = v;
		} else if (is(a, "-p", "--port")) {
			if (!parse_uint(v, 65535, &n) || n == 0)
				return error(o, "%s: invalid port '%s'.", a, v), PARSE_FAILED;
			o->port = (uint16_t)n;
			have_port = true;
		} else if (is(a, NULL, "--cafile")) {
			o->cafile = v;
		} else if (is(a, NULL, "--capath")) {
			o->capath = v;
		} else if (is(a, NULL, "--cert")) {
			o->certfile = v;
		} else if (is(a, NULL, "--key")) {
			o->keyfile = v;
		} else if (is(a, "-V", "--protocol-version")) {
			if (!strcmp(v, "5") || !strcmp(v, "mqttv5"))
				o->version = TERN_V5;
			else if (!strcmp(v, "311") || !strcmp(v, "mqttv311"))
				o->version = TERN_V311;
			else if (!strcmp(v, "31") || !strcmp(v, "mqttv31"))
				o->version = TERN_V31;
			else
				return error(o, "%s: unknown protocol version '%s' (31, 311 or 5).",
				             a, v),
				       PARSE_FAILED;
		} else if (is(a, "-k", "--keepalive")) {
			if (!parse_uint(v, 65535, &n))
				return error(o, "%s: invalid keep alive '%s'.", a, v), PARSE_FAILED;
			o->keepalive = (uint16_t)n;
		} else if (is(a, "-c", "--clients")) {
			if (!parse_uint(v, MAX_CLIENTS, &clients) || clients == 0)
				return error(o, "%s: expected 1 to %u, got '%s'.", a, MAX_CLIENTS,
				             v),
				       PARSE_FAILED;
			have_clients = true;
		} else if (is(a, "-P", "--pubs")) {
			if (!parse_uint(v, MAX_CLIENTS, &n) || n == 0)
				return error(o, "%s: expected 1 to %u, got '%s'.", a, MAX_CLIENTS,
				             v),
				       PARSE_FAILED;
			o->pubs = (unsigned)n;
			have_pubs = true;
		} else if (is(a, "-S", "--subs")) {
			if (!parse_uint(v, MAX_CLIENTS, &n) || n == 0)
				return error(o, "%s: expected 1 to %u, got '%s'.", a, MAX_CLIENTS,
				             v),
				       PARSE_FAILED;
			o->subs = (unsigned)n;
			have_subs = true;
		} else if (is(a, "-n", "--threads")) {
			if (!parse_uint(v, 256, &n) || n == 0)
				return error(o, "%s: expected 1 to 256, got '%s'.", a, v),
				       PARSE_FAILED;
			o->threads = (unsigned)n;
		} else if (is(a, "-q", "--qos")) {
			if (!parse_qos_list(o, v))
				return error(o,
				             "%s: expected QoS values 0, 1 or 2 (a list: 0,1,2), "
				             "got "
				             "'%s'.",
				             a, v),
				       PARSE_FAILED;
		} else if (is(a, NULL, "--sub-qos")) {
			if (!parse_uint(v, 2, &n))
				return error(o, "%s: expected 0, 1 or 2, got '%s'.", a, v),
				       PARSE_FAILED;
			o->sub_qos = (uint8_t)n;
			have_sub_qos = true;
		} else if (is(a, "-s", "--size")) {
			if (!parse_uint(v, 256u * 1024 * 1024, &n))
				return error(o, "%s: invalid size '%s'.", a, v), PARSE_FAILED;
			o->size = n;
		} else if (is(a, "-t", "--topic")) {
			o->topic = v;
			have_topic = true;
		} else if (is(a, "-f", "--filter")) {
			o->filter = v;
			have_filter = true;
		} else if (is(a, "-r", "--rate")) {
			if (!parse_seconds(v, &o->rate))
				return error(o, "%s: invalid rate '%s'.", a, v), PARSE_FAILED;
			have_rate = true;
		} else if (is(a, NULL, "--connect-rate")) {
			if (!parse_seconds(v, &o->conn_rate))
				return error(o, "%s: invalid rate '%s'.", a, v), PARSE_FAILED;
			have_conn_rate = true;
		} else if (is(a, NULL, "--inflight")) {
			if (!parse_uint(v, 65535, &n) || n == 0)
				return error(o, "%s: expected 1 to 65535, got '%s'.", a, v),
				       PARSE_FAILED;
			o->inflight = (unsigned)n;
		} else if (is(a, NULL, "--backlog")) {
			if (!parse_uint(v, UINT32_MAX, &n))
				return error(o, "%s: invalid number '%s'.", a, v), PARSE_FAILED;
			o->backlog = n;
			have_backlog = true;
		} else if (is(a, "-C", "--count")) {
			if (!parse_uint(v, UINT32_MAX, &n) || n == 0)
				return error(o, "%s: expected a positive count, got '%s'.", a, v),
				       PARSE_FAILED;
			o->count = n;
		} else if (is(a, "-d", "--duration")) {
			if (!parse_seconds(v, &o->duration) || o->duration <= 0)
				return error(o,
				             "%s: expected a positive number of seconds, got '%s'.",
				             a, v),
				       PARSE_FAILED;
		} else if (is(a, "-w", "--warmup")) {
			if (!parse_seconds(v, &o->warmup))
				return error(o, "%s: invalid seconds '%s'.", a, v), PARSE_FAILED;
		} else if (is(a, NULL, "--drain")) {
			if (!parse_seconds(v, &o->drain))
				return error(o, "%s: invalid seconds '%s'.", a, v), PARSE_FAILED;
		} else if (is(a, NULL, "--sources")) {
			if (!parse_sources(o, v))
				return error(o, "%s: invalid address list '%s'.", a, v),
				       PARSE_FAILED;
		} else if (is(a, NULL, "--id-prefix")) {
			if (strlen(v) > 64)
				return error(o, "%s: at most 64 characters.", a), PARSE_FAILED;
			o->id_prefix = v;
		} else {
			error(o, "unknown option '%s'.", a);
			return PARSE_FAILED;
		}
	}

	/* Checks that need the whole command line. */
	if ((o->certfile == NULL) != (o->keyfile == NULL))
		return error(o, "--cert and --key must be given together."), PARSE_FAILED;
	o->tls = o->cafile != NULL || o->capath != NULL || o->tls_use_os_certs;
	if (!o->tls && (o->certfile != NULL || o->insecure))
		return error(o, "--cert, --key and --insecure need TLS: give --cafile, --capath "
		                "or --tls-use-os-certs."),
		       PARSE_FAILED;
	if (o->tls && !have_port)
		o->port = 8883;
	if (o->mode == BENCH_RUN && have_clients)
		return error(o, "-c: run takes --pubs and --subs."), PARSE_FAILED;
	if (o->mode != BENCH_RUN && (have_pubs || have_subs))
		return error(o, "--pubs / --subs: only for 'tern bench run'; use -c."),
		       PARSE_FAILED;
	o->pubs = o->mode == BENCH_PUB ? (unsigned)clients : o->mode == BENCH_RUN ? o->pubs : 0;
	o->subs = o->mode == BENCH_SUB ? (unsigned)clients : o->mode == BENCH_RUN ? o->subs : 0;
	o->conns = o->mode == BENCH_CONN ? (unsigned)clients : 0;
	if ((uint64_t)o->pubs + o->subs > MAX_CLIENTS)
		return error(o, "at most %u clients in all.", MAX_CLIENTS), PARSE_FAILED;
	if (o->mode == BENCH_SUB) {
		/* mosquitto_sub's -t is the filter. */
		if (have_topic && have_filter)
			return error(o, "sub: give the filter with -t or -f, not both."),
			       PARSE_FAILED;
		if (have_topic)
			o->filter = o->topic;
		else if (!have_filter)
			o->filter = "bench/#";
	}
	if (o->mode == BENCH_CONN) {
		if (o->count != 0)
			return error(o,
			             "--count: conn holds connections; bound it with --duration."),
			       PARSE_FAILED;
		if (o->duration <= 0)
			return error(o,
			             "refusing to run unbounded: give --duration (seconds to hold "
			             "the connections)."),
			       PARSE_FAILED;
		if (have_rate && have_conn_rate)
			return error(o, "conn: --rate and --connect-rate mean the same; give one."),
			       PARSE_FAILED;
		if (have_rate)
			o->conn_rate = o->rate;
		o->rate = 0;
	} else if (o->count == 0 && o->duration <= 0) {
		return error(o, "refusing to run unbounded: give --count and/or --duration."),
		       PARSE_FAILED;
	}
	if (o->mode != BENCH_RUN && have_backlog)
		return error(o, "--backlog: only for 'tern bench run'."), PARSE_FAILED;
	if (o->mode == BENCH_RUN && o->size < BENCH_STAMP_SIZE)
		return error(o,
		             "-s: run needs payloads of at least %zu bytes (timestamp and "
		             "sequence number).",
		             BENCH_STAMP_SIZE),
		       PARSE_FAILED;
	if ((o->mode == BENCH_PUB || o->mode == BENCH_RUN) && !pattern_ok(o->topic, false))
		return error(o, "-t: '%s' is not a valid topic name.", o->topic), PARSE_FAILED;
	if ((o->mode == BENCH_SUB || o->mode == BENCH_RUN) && !pattern_ok(o->filter, true))
		return error(o, "'%s' is not a valid topic filter.", o->filter), PARSE_FAILED;
	if (!have_sub_qos) {
		o->sub_qos = 0;
		for (size_t i = 0; i < o->n_qos; i++)
			if (o->qos[i] > o->sub_qos)
				o->sub_qos = o->qos[i];
	}
	if (o->mode == BENCH_SUB && o->n_qos > 1 && !have_sub_qos)
		return error(o, "sub: give one QoS (-q or --sub-qos)."), PARSE_FAILED;
	o->progress = !o->quiet && isatty(STDERR_FILENO);
	return PARSED;
}

/* The flag the SIGINT handler sets: the one piece of process-wide state,
 * since a signal handler has nowhere else to write. */
static volatile sig_atomic_t interrupted;

static void on_sigint(int sig)
{
	(void)sig;
	interrupted = 1;
}

int bench_main(int argc, char **argv)
{
	static const struct {
		const char *name;
		enum bench_mode mode;
		const char *prog;
	} modes[] = {
	        {"conn", BENCH_CONN, "tern bench conn"},
	        {"pub", BENCH_PUB, "tern bench pub"},
	        {"sub", BENCH_SUB, "tern bench sub"},
	        {"run", BENCH_RUN, "tern bench run"},
	};
	struct bench_opts o = {.prog = "tern bench"};
	char idbuf[48];

	if (argc < 2) {
		fputs(usage_text, stderr);
		return 1;
	}
	if (is(argv[1], "help", "--help") || strcmp(argv[1], "-h") == 0) {
		fputs(usage_text, stdout);
		return 0;
	}
	size_t m = 0;
	while (m < sizeof(modes) / sizeof(modes[0]) && strcmp(argv[1], modes[m].name) != 0)
		m++;
	if (m == sizeof(modes) / sizeof(modes[0])) {
		error(&o, "unknown bench mode '%s' (conn, pub, sub or run).", argv[1]);
		return 1;
	}
	o.mode = modes[m].mode;
	o.prog = modes[m].prog;
	enum parse_result pr = parse(&o, argc - 1, argv + 1, idbuf, sizeof(idbuf));
	if (pr != PARSED) {
		opts_release(&o);
		return pr == PARSE_HELP_SHOWN ? 0 : 1;
	}

	struct sigaction sa = {.sa_handler = on_sigint};
	sigemptyset(&sa.sa_mask);
	sigaction(SIGINT, &sa, NULL);
	sigaction(SIGTERM, &sa, NULL);
	signal(SIGPIPE, SIG_IGN);

	struct bench b = {0};
	int rc = bench_run(&b, &o, &interrupted);
	if (rc == 0) {
		bench_report(&b);
		if (b.aborted || BENCH_CTR(&b, conn_failed) > 0 || BENCH_CTR(&b, lost) > 0 ||
		    BENCH_CTR(&b, errors) > 0)
			rc = 2;
	}
	bench_free(&b);
	opts_release(&o);
	return rc;
}
