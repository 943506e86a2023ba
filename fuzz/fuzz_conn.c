/*
 * fuzz_conn.c - libFuzzer target for a whole broker fed bytes in-process.
 *
 * Each input runs against a fresh broker (memory storage, one worker, no
 * listener, no thread): the target drives the worker itself with
 * worker_iterate(w, 0), which handles what is readable, runs the timers
 * and flushes, without ever sleeping. Clients are socketpairs: the broker
 * owns one end as a plain TCP connection (conn_new() on a static listener
 * and worker_adopt(), as accept_all() does), the target writes to the
 * other. So the real read path, framing, decoder, every handler, the
 * router, sessions, retained messages, wills and the reaper all run, and
 * two or three clients can talk to each other through the broker.
 *
 * Input: a sequence of segments
 *
 *   [op] [len] [len bytes]
 *
 * op % 3 picks one of three client slots; op >= 0xF0 first closes that
 * slot's socket (an abrupt disconnect: wills fire, sessions go offline)
 * and opens a new connection in its place (takeover and resume). Then the
 * len bytes (fewer if the input ends) are written to the slot and the
 * worker iterates once; whatever the broker wrote back is read and
 * discarded, so its output never blocks. At the end every client closes,
 * the worker iterates until the connections are reaped, and broker_stop()
 * and broker_free() release the rest: LeakSanitizer then checks that
 * nothing of the input outlived the broker.
 *
 * Limits are small (4 KiB packets, a few in-flight and queued messages,
 * subscriptions, topic levels and aliases) so that inputs of a few hundred
 * bytes reach the paths that enforce them. The timers run at every
 * iteration; they only act on intervals of a second or more, which an
 * input never lasts, so a run depends on its bytes alone. Everything the
 * broker logs is formatted (every log type, written to /dev/null), since
 * log lines quote client ids and topics.
 *
 * Seeds: fuzz/gen_conn_seeds.py writes realistic sessions (v3.1.1 and v5,
 * every QoS, acks, two clients, wills, retained, reconnects) to
 * fuzz/corpus/fuzz_conn/. Dictionary: fuzz/mqtt.dict.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "broker/broker.h"
#include "util/clock.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#define N_SLOTS      3
#define OP_RECONNECT 0xF0
/* Iterations at the end: closing is seen by the first; wills published
 * while reaping can need a few more. */
#define FINAL_ITERATIONS 4

static struct tern_listener_cfg listener_cfg; /* zero: plain TCP */
static const struct listener listener = {
        .cfg = &listener_cfg,
        .tp = &transport_tcp,
        .base = &transport_tcp,
};

static void fatal(const char *what)
{
	fprintf(stderr, "fuzz_conn: %s: %s\n", what, strerror(errno));
	abort();
}

/* Connects a new client to w; returns the client's end of the socket. */
static int connect_client(struct worker *w)
{
	int sv[2];
	if (socketpair(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0, sv) < 0)
		fatal("socketpair");
	struct conn *c = conn_new(w, sv[0], &listener);
	if (!c)
		fatal("conn_new");
	if (worker_adopt(w, c) != TERN_OK)
		fatal("worker_adopt");
	return sv[1];
}

/* Set from FUZZ_CONN_TRACE=1: print what the broker writes, to check
 * what a seed does (fuzz_conn -runs=0 SEED). */
static bool trace;

/* Reads and drops everything the broker wrote to the client fd. */
static void drain(int fd, int slot)
{
	uint8_t buf[16384];
	ssize_t n;
	while ((n = read(fd, buf, sizeof(buf))) > 0) {
		if (!trace)
			continue;
		fprintf(stderr, "slot %d <-", slot);
		for (ssize_t i = 0; i < n && i < 64; i++)
			fprintf(stderr, " %02x", buf[i]);
		fprintf(stderr, "%s\n", n > 64 ? " ..." : "");
	}
}

static void iterate(struct worker *w)
{
	/* Run the timers every time (see the top comment). */
	w->next_tick = 0;
	worker_iterate(w, 0);
}

static void config(struct tern_config *cfg)
{
	config_defaults(cfg);
	cfg->storage = TERN_STORAGE_MEMORY;
	cfg->workers = 1;
	cfg->n_listeners = 0;
	cfg->log_dest = TERN_LOG_DEST_NONE;
	cfg->sys_interval = 0;
	cfg->max_packet_size = 4096;
	cfg->message_size_limit = 2048;
	cfg->max_inflight_messages = 3;
	cfg->max_queued_messages = 5;
	cfg->max_queued_bytes = 4096;
	cfg->max_subscriptions = 8;
	cfg->max_topic_levels = 8;
	cfg->max_topic_alias = 4;
	cfg->max_keepalive = 120;
	cfg->max_output_bytes = 65536;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static struct tern_config cfg;
	static struct broker b; /* large: keep it off the stack */
	static FILE *devnull;
	if (!devnull) {
		devnull = fopen("/dev/null", "w");
		if (!devnull)
			fatal("/dev/null");
		config(&cfg);
		trace = getenv("FUZZ_CONN_TRACE") != NULL;
	}
	if (broker_init(&b, &cfg) != TERN_OK)
		fatal("broker_init");
	b.log.out = devnull;
	b.log.mask = TERN_LOG_ALL;
	b.log.timestamps = false;

	struct worker *w = b.workers[0];
	/* What worker_main() does before its first iteration: connections
	 * take their CONNECT deadline from w->now. */
	w->now = tern_now_ms();
	w->util_at = w->now;

	int peer[N_SLOTS];
	for (int i = 0; i < N_SLOTS; i++)
		peer[i] = connect_client(w);

	size_t pos = 0;
	while (pos < size) {
		uint8_t op = data[pos++];
		int slot = op % N_SLOTS;
		if (op >= OP_RECONNECT) {
			close(peer[slot]);
			iterate(w); /* the broker sees the close */
			peer[slot] = connect_client(w);
		}
		size_t len = pos < size ? data[pos++] : 0;
		if (len > size - pos)
			len = size - pos;
		/* A write to a socket whose broker end is closed fails
		 * (EPIPE is not a signal: SOCK_STREAM send with MSG_NOSIGNAL);
		 * that is part of the game. */
		if (len > 0 && send(peer[slot], data + pos, len, MSG_NOSIGNAL) < 0 &&
		    errno != EPIPE && errno != ECONNRESET && errno != EAGAIN)
			fatal("send");
		pos += len;
		iterate(w);
		for (int i = 0; i < N_SLOTS; i++)
			drain(peer[i], i);
	}

	for (int i = 0; i < N_SLOTS; i++) {
		drain(peer[i], i);
		close(peer[i]);
	}
	for (int i = 0; i < FINAL_ITERATIONS; i++)
		iterate(w);
	/* broker_free() wants a stopped broker; with no thread started,
	 * broker_stop() only raises the flag. */
	broker_stop(&b);
	broker_free(&b);
	return 0;
}
