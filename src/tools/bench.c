/*
 * bench.c - the command line of `tern bench`, and its entry point.
 *
 *   tern bench conn -c N --duration S      open N connections, hold them
 *   tern bench pub  -c N [--rate R] ...    N publishers
 *   tern bench sub  -c N -t FILTER ...     N subscribers
 *   tern bench run  --pubs P --subs S ...  both, with latency and loss
 *
 * The options are rows of the table in options.c, which pub and sub share
 * (so -h, -p, -V, -k and the TLS flags parse and fail the same way
 * everywhere); what is here are the defaults and the checks that need the
 * whole line: every run must be bounded by --count and/or --duration (a
 * load generator left running by mistake is a denial of service), options
 * that make no sense in a mode
 * are refused rather than ignored, and topics are validated with the
 * codec's own checks before anything connects. Errors name the option,
 * print a hint to --help and exit with status 1; a run that could not do
 * what was asked (connections failed or were lost, a subscription was
 * refused) exits with status 2 after its report.
 */
#include <sched.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "bench.h"

static void error(const struct bench_opts *o, const char *fmt, ...)
        __attribute__((format(printf, 2, 3)));

static void error(const struct bench_opts *o, const char *fmt, ...)
{
	va_list ap;
	char msg[512];

	va_start(ap, fmt);
	vsnprintf(msg, sizeof(msg), fmt, ap);
	va_end(ap);
	tool_error(o->prog, "%s", msg);
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

/* Sets the defaults, reads the options with the shared table, then checks
 * what needs the whole line. */
static enum tool_parse parse(struct bench_opts *o, int argc, char **argv, char *idbuf, size_t idlen)
{
	struct optparse p = {
	        .cmd = CMD_BENCH,
	        .prog = o->prog,
	        .common = &o->common,
	        .bench = o,
	        .usage = usage_bench,
	};

	o->common.host = "127.0.0.1";
	o->common.port = 1883;
	o->common.version = TERN_V311;
	o->common.keepalive = 60;
	o->clients = 1;
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

	enum tool_parse rc = options_parse(&p, argc, argv);
	if (rc != PARSE_OK)
		return rc;

	/* Checks that need the whole command line. */
	if (!common_finish(&p, false))
		return PARSE_ERROR;
	if (o->mode == BENCH_RUN && option_given(&p, "--clients"))
		return error(o, "-c: run takes --pubs and --subs."), PARSE_ERROR;
	if (o->mode != BENCH_RUN && (option_given(&p, "--pubs") || option_given(&p, "--subs")))
		return error(o, "--pubs / --subs: only for 'tern bench run'; use -c."), PARSE_ERROR;
	o->pubs = o->mode == BENCH_PUB ? o->clients : o->mode == BENCH_RUN ? o->pubs : 0;
	o->subs = o->mode == BENCH_SUB ? o->clients : o->mode == BENCH_RUN ? o->subs : 0;
	o->conns = o->mode == BENCH_CONN ? o->clients : 0;
	if ((uint64_t)o->pubs + o->subs > BENCH_MAX_CLIENTS)
		return error(o, "at most %u clients in all.", BENCH_MAX_CLIENTS), PARSE_ERROR;
	if (o->mode == BENCH_SUB) {
		/* mosquitto_sub's -t is the filter. */
		if (option_given(&p, "--topic") && option_given(&p, "--filter"))
			return error(o, "sub: give the filter with -t or -f, not both."),
			       PARSE_ERROR;
		if (option_given(&p, "--topic"))
			o->filter = o->topic;
		else if (!option_given(&p, "--filter"))
			o->filter = "bench/#";
	}
	if (o->mode == BENCH_CONN) {
		if (o->count != 0)
			return error(o,
			             "--count: conn holds connections; bound it with --duration."),
			       PARSE_ERROR;
		if (o->duration <= 0)
			return error(o,
			             "refusing to run unbounded: give --duration (seconds to hold "
			             "the connections)."),
			       PARSE_ERROR;
		if (option_given(&p, "--rate") && option_given(&p, "--connect-rate"))
			return error(o, "conn: --rate and --connect-rate mean the same; give one."),
			       PARSE_ERROR;
		if (option_given(&p, "--rate"))
			o->conn_rate = o->rate;
		o->rate = 0;
	} else if (o->count == 0 && o->duration <= 0) {
		return error(o, "refusing to run unbounded: give --count and/or --duration."),
		       PARSE_ERROR;
	}
	if (o->mode != BENCH_RUN && option_given(&p, "--backlog"))
		return error(o, "--backlog: only for 'tern bench run'."), PARSE_ERROR;
	if (o->mode == BENCH_RUN && o->size < BENCH_STAMP_SIZE)
		return error(o,
		             "-s: run needs payloads of at least %zu bytes (timestamp and "
		             "sequence number).",
		             BENCH_STAMP_SIZE),
		       PARSE_ERROR;
	if ((o->mode == BENCH_PUB || o->mode == BENCH_RUN) && !pattern_ok(o->topic, false))
		return error(o, "-t: '%s' is not a valid topic name.", o->topic), PARSE_ERROR;
	if ((o->mode == BENCH_SUB || o->mode == BENCH_RUN) && !pattern_ok(o->filter, true))
		return error(o, "'%s' is not a valid topic filter.", o->filter), PARSE_ERROR;
	if (!option_given(&p, "--sub-qos")) {
		o->sub_qos = 0;
		for (size_t i = 0; i < o->n_qos; i++)
			if (o->qos[i] > o->sub_qos)
				o->sub_qos = o->qos[i];
	}
	if (o->mode == BENCH_SUB && o->n_qos > 1 && !option_given(&p, "--sub-qos"))
		return error(o, "sub: give one QoS (-q or --sub-qos)."), PARSE_ERROR;
	o->progress = !o->common.quiet && isatty(STDERR_FILENO);
	return PARSE_OK;
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
		usage_bench(stderr);
		return 1;
	}
	if (strcmp(argv[1], "help") == 0 || strcmp(argv[1], "--help") == 0 ||
	    strcmp(argv[1], "-h") == 0) {
		usage_bench(stdout);
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
	enum tool_parse pr = parse(&o, argc - 1, argv + 1, idbuf, sizeof(idbuf));
	if (pr != PARSE_OK) {
		opts_release(&o);
		return pr == PARSE_HELP ? 0 : 1;
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
