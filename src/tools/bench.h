/*
 * bench.h - what the files of `tern bench` share.
 *
 * `tern bench` is a load generator in the spirit of emqtt-bench, built only
 * on libtern's public non-blocking API, so that one process drives
 * thousands of MQTT connections. The files split it by concern:
 *
 *   bench.c         the command line: modes, defaults, the checks that need
 *                   the whole line (the options are rows of options.c's
 *                   table, shared with pub and sub; usage.c prints --help),
 *                   and bench_main(), which wires the rest together
 *   bench_loop.c    the run: worker threads, each with its own epoll loop
 *                   over its share of the clients; connecting at a rate,
 *                   subscribing, pacing publishers, the phases of a run
 *   bench_stats.c   latency histograms and per-(subscriber, publisher)
 *                   sequence tracking (loss, duplicates, reordering)
 *   bench_report.c  the live progress line, the final summary, --json
 *
 * Threads: every client belongs to exactly one worker thread, which alone
 * calls libtern on it (libtern clients are not thread-safe, and need not
 * be). The main thread only reads the workers' counters (atomics written by
 * their one owner) to drive the phases and print progress, and reads the
 * rest (histograms, tracking tables) after the workers have been joined.
 *
 * The payload: every published message that is big enough starts with a
 * struct bench_stamp (magic, publisher index, sequence number, QoS,
 * CLOCK_MONOTONIC nanoseconds at publish time). CLOCK_MONOTONIC is one
 * clock for the whole machine, so `tern bench sub` in one process measures
 * the latency of `tern bench pub` in another, as `tern bench run` does
 * within one. The rest of the payload is filler.
 */
#ifndef TERN_BENCH_H
#define TERN_BENCH_H

#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "options.h"
#include "tern/tern.h"

/* The header at the start of every stamped payload (host byte order: the
 * publisher and the subscriber run on the same machine). */
#define BENCH_MAGIC 0x54424e31u /* "1NBT" in memory; just a recogniser */
struct bench_stamp {
	uint32_t magic;
	uint32_t pub;   /* publisher index */
	uint32_t seq;   /* 0, 1, 2, ... per publisher */
	uint32_t qos;   /* the publisher's QoS */
	uint64_t ts_ns; /* CLOCK_MONOTONIC at tern_client_publish() */
};
#define BENCH_STAMP_SIZE ((size_t)sizeof(struct bench_stamp)) /* 24 */

enum bench_mode {
	BENCH_CONN, /* open connections at a rate and hold them */
	BENCH_PUB,  /* publishers only */
	BENCH_SUB,  /* subscribers only */
	BENCH_RUN,  /* publishers and subscribers, latency and loss */
};

#define BENCH_MAX_QOS_LIST 16
#define BENCH_MAX_CLIENTS  1000000u /* in all, and per -c, -P, -S */

/* The parsed command line. Strings point into argv unless noted. */
struct bench_opts {
	enum bench_mode mode;
	const char *prog; /* "tern bench run", for messages */

	/* The broker, protocol, TLS and --quiet, parsed as pub and sub parse
	 * them (options.h). */
	struct common_opts common;

	unsigned clients;           /* -c as given (conn, pub, sub) */
	unsigned pubs, subs, conns; /* clients of each role */
	unsigned threads;

	/* Publisher i uses qos[i % n_qos]. */
	uint8_t qos[BENCH_MAX_QOS_LIST];
	size_t n_qos;
	uint8_t sub_qos; /* subscription QoS; defaults to the highest of qos */

	size_t size;        /* payload bytes */
	const char *topic;  /* publish topic pattern, %i = publisher index */
	const char *filter; /* subscription filter pattern, %i = subscriber index */
	double rate;        /* messages/s per publisher; 0: flat out */
	double conn_rate;   /* connections/s over all threads; 0: unlimited */
	uint64_t count;     /* per publisher (sub: per subscriber); 0: none */
	double duration;    /* seconds of publishing (conn: of holding); 0: none */
	double warmup;      /* seconds excluded from rates and latencies */
	double drain;       /* at most this long to wait for the last messages */
	unsigned inflight;  /* QoS 1/2 publishes pending per publisher */
	uint64_t backlog;   /* run: deliveries under way at most; 0: no limit */
	const char *id_prefix;

	char **sources; /* bind addresses, expanded from ranges; owned */
	size_t n_sources;

	bool json;
	bool progress; /* stderr is a terminal and not --quiet */
};

/* ---- bench_stats.c ---- */

/* A log-linear histogram of nanosecond values: 64 linear sub-buckets per
 * power of two, so any value is recorded within 1/64 (1.6 %) of itself,
 * in fixed memory, without allocation on the hot path. */
#define BENCH_HIST_SUB_BITS 6
#define BENCH_HIST_BUCKETS  ((64 - BENCH_HIST_SUB_BITS + 1) << BENCH_HIST_SUB_BITS)
struct bench_hist {
	uint64_t count;
	uint64_t sum;
	uint64_t min, max;
	uint64_t b[BENCH_HIST_BUCKETS];
};

/* Adds one value. */
void bench_hist_add(struct bench_hist *h, uint64_t v);

/* Adds everything in src to dst. */
void bench_hist_merge(struct bench_hist *dst, const struct bench_hist *src);

/* The value at quantile q (0..1); 0 for an empty histogram. */
uint64_t bench_hist_quantile(const struct bench_hist *h, double q);

/* What one subscriber saw of one publisher. Sequence numbers arrive in
 * order (MQTT orders the messages of one publisher on one topic); a number
 * below the next expected one is a duplicate, unless it is within the
 * 64-message window and not seen yet: then it is a late (reordered)
 * message, counted once. */
struct bench_pair {
	uint32_t next;   /* next expected sequence number */
	uint8_t qos;     /* publisher's QoS, from the stamp */
	bool seen;       /* anything received from this publisher */
	uint64_t window; /* bit k: next-1-k was received */
	uint64_t unique; /* distinct messages received */
	uint64_t dup;
	uint64_t reordered;
};

/* Records sequence number seq in p. */
void bench_pair_add(struct bench_pair *p, uint32_t seq);

/* ---- bench_loop.c ---- */

/* Counters of one worker thread, written by that thread only (relaxed
 * atomics, so the main thread may read them any time). */
struct bench_ctr {
	_Atomic uint64_t connected;
	_Atomic uint64_t conn_failed;
	_Atomic uint64_t subscribed;
	_Atomic uint64_t lost;   /* connections that ended unasked */
	_Atomic uint64_t errors; /* refused subscriptions, failed publishes, ... */
	_Atomic uint64_t sent;   /* messages handed to libtern */
	_Atomic uint64_t acked;  /* QoS 1/2 publishes completed with success */
	_Atomic uint64_t received;
	_Atomic uint64_t pubs_done; /* publishers that sent their --count */
	_Atomic uint64_t subs_done; /* subscribers that received their --count */
	_Atomic uint64_t pending;   /* QoS 1/2 publishes not yet completed */
	_Atomic uint64_t closed;    /* clients closed in the final phase */
};

/* What a worker thread measured, read by the main thread after join. */
struct bench_tstats {
	struct bench_hist lat[3]; /* publish -> delivery, by publisher QoS */
	struct bench_hist conn;   /* connect_start -> CONNACK */
	uint64_t sent_win;        /* sent inside the measurement window */
	uint64_t recv_win;        /* received inside [t_measure, t_stop) */
	uint64_t recv_win_all;    /* received after t_measure, drain included */
	uint64_t recv_qos[3];     /* received, by publisher QoS */
	uint64_t sent_qos[3];
	int64_t last_recv_ns;
	char first_error[160]; /* the first error seen, in words */
};

struct bench;

/* One connection of the run. */
struct bench_client {
	struct tern_client *c;
	struct bench_thread *t;
	uint8_t role;  /* enum bench_role */
	uint8_t state; /* enum bench_cstate */
	uint8_t qos;   /* publishers: publish QoS */
	bool done;     /* sent / received its --count */
	uint32_t idx;  /* index within its role */
	int fd;        /* registered with epoll, or -1 */
	uint32_t ev;   /* registered events */
	int64_t t_connect;
	int64_t next_due; /* publishers with --rate: next send time, ns */
	uint32_t seq;
	char *topic;           /* publish topic or filter; owned */
	_Atomic uint64_t sent; /* read by the main thread */
	uint64_t received;
	struct bench_pair *pairs; /* subscribers: by publisher index; owned */
	uint32_t n_pairs;
};

/* One worker thread: an epoll loop over its clients. */
struct bench_thread {
	struct bench *b;
	unsigned id;
	pthread_t th;
	bool started;
	int ep;
	struct bench_client **cl; /* its clients (run order: subs first) */
	size_t n;
	struct bench_client **pubs; /* its publishers */
	size_t n_pubs;
	size_t next_connect; /* next client of cl to connect */
	unsigned connecting;
	int64_t next_conn_ns;
	uint8_t *payload; /* scratch payload, opts.size bytes */
	/* The clock read that received messages share (bench_loop.c,
	 * on_message): 0 until the first message of a step reads it, read
	 * again after every RX_CLOCK_EVERY messages. */
	int64_t rx_now_ns;
	unsigned rx_since_clock;
	struct bench_ctr ctr;
	struct bench_tstats st;
};

enum bench_phase {
	PHASE_CONNECT, /* connecting and subscribing */
	PHASE_RUN,     /* publishing (conn: holding) */
	PHASE_DRAIN,   /* publishing stopped; waiting for the last messages */
	PHASE_CLOSE,   /* disconnecting */
};

/* The whole run. */
struct bench {
	const struct bench_opts *o;
	struct bench_thread *th;
	unsigned n_th;
	struct bench_client *cl; /* all clients: subs, then pubs, then conns */
	size_t n_cl;
	struct bench_client **pub_of; /* publisher index -> client */
	uint32_t *nmatch;             /* publisher index -> matching subscribers */
	/* --backlog: deliveries the publishers have caused so far, and those
	 * the main thread wrote off as lost (no progress while blocked). */
	_Atomic uint64_t expected;
	_Atomic uint64_t written_off;
	_Atomic int phase;
	_Atomic int64_t t_measure_ns; /* start of the measurement window */
	_Atomic int64_t t_stop_ns;    /* end of publishing */
	int64_t t_start_ns;           /* process start of the run */
	int64_t t_connected_ns;       /* all connected (and subscribed) */
	int64_t t_run_ns;             /* publishing started */
	int64_t t_end_ns;             /* drain ended */
	bool interrupted;
	bool count_stop;       /* publishing ended because --count was reached */
	bool aborted;          /* gave up (connect failures, timeout) */
	const char *abort_why; /* static string */
};

/* The monotonic clock in nanoseconds. */
int64_t bench_now_ns(void);

/* Creates the clients and threads for o; runs the phases; joins the
 * threads. Fills *b (zeroed by the caller; free with bench_free()). *stop
 * becoming true (SIGINT) ends the run early. Returns 0, or 1 when the run
 * could not be set up (after printing why). */
int bench_run(struct bench *b, const struct bench_opts *o, volatile sig_atomic_t *stop);

/* Frees the clients and threads of b. */
void bench_free(struct bench *b);

/* Sum of one counter over all threads. */
uint64_t bench_ctr_sum(const struct bench *b, size_t offset);
#define BENCH_CTR(b, field) bench_ctr_sum((b), offsetof(struct bench_ctr, field))

/* ---- bench_report.c ---- */

/* Prints the live progress line (every second while stderr is a
 * terminal). last_* keep the previous counters to compute rates. */
struct bench_progress {
	int64_t last_ns;
	uint64_t last_sent, last_recv;
};
void bench_progress_line(const struct bench *b, struct bench_progress *p);

/* Prints the final figures: a human summary, or one JSON object with
 * --json, to stdout. */
void bench_report(const struct bench *b);

/* ---- bench.c, usage.c ---- */

/* `tern bench`; argv[0] is "bench". Returns the exit status. */
int bench_main(int argc, char **argv);

/* Prints the --help text of `tern bench`. */
void usage_bench(FILE *f);

#endif
