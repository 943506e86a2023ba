/*
 * fuzz_broker.h - the in-process broker the network fuzz targets talk to
 * (fuzz_conn over plain TCP, fuzz_ws over WebSockets, fuzz_tls over TLS).
 *
 * Each input runs against a fresh broker (memory storage, one worker, no
 * listening socket, no thread): the target drives the worker itself with
 * fuzz_iterate(), which handles what is readable, runs the timers and
 * flushes, without ever sleeping. Clients are socketpairs: the broker owns
 * one end as a connection accepted on a listener the target chooses
 * (conn_new() and conn_adopt(), as accept_all() does), the target talks
 * through the other. So the real transport, read path, decoder, handlers,
 * router, sessions, retained messages, wills and reaper all run.
 *
 * Limits are small (4 KiB packets, a few in-flight and queued messages,
 * subscriptions, topic levels and aliases) so that inputs of a few hundred
 * bytes reach the paths that enforce them. The timers run at every
 * iteration; they only act on intervals of a second or more, which an
 * input never lasts, so a run depends on its bytes alone. Everything the
 * broker logs is formatted (every log type, written to /dev/null), since
 * log lines quote client ids and topics. At the end fuzz_broker_stop()
 * releases everything, and LeakSanitizer then checks that nothing of the
 * input outlived the broker.
 *
 * Static inline functions in a header: each target is one translation
 * unit and uses what it needs.
 */
#ifndef TERN_FUZZ_BROKER_H
#define TERN_FUZZ_BROKER_H

#include <errno.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "broker/broker.h"
#include "broker/config.h"
#include "broker/conn.h"
#include "broker/worker.h"
#include "util/clock.h"
#include "util/log.h"

/* Iterations at the end: closing is seen by the first; wills published
 * while reaping can need a few more. */
#define FUZZ_FINAL_ITERATIONS 4

/* Reports a harness failure (not a finding) and aborts. */
static inline void fuzz_fatal(const char *what)
{
	fprintf(stderr, "fuzz: %s: %s\n", what, strerror(errno));
	abort();
}

/* Set from FUZZ_TRACE=1 (FUZZ_CONN_TRACE=1 too, its older name): print
 * what the broker writes, to check what a seed does (fuzz_X -runs=0 SEED). */
static inline bool fuzz_trace(void)
{
	return getenv("FUZZ_TRACE") || getenv("FUZZ_CONN_TRACE");
}

/* One broker and what it needs; large, so callers keep it static. */
struct fuzz_broker {
	struct config cfg;
	struct broker b;
	FILE *devnull;
};

static inline void fuzz_broker_config(struct config *cfg)
{
	config_defaults(cfg);
	cfg->storage = STORAGE_MEMORY;
	cfg->workers = 1;
	cfg->n_listeners = 0;
	cfg->log_dest = LOG_DEST_NONE;
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

/* Starts a fresh broker in fb; returns its only worker. */
static inline struct worker *fuzz_broker_start(struct fuzz_broker *fb)
{
	if (!fb->devnull) {
		fb->devnull = fopen("/dev/null", "w");
		if (!fb->devnull)
			fuzz_fatal("/dev/null");
		fuzz_broker_config(&fb->cfg);
	}
	if (broker_init(&fb->b, &fb->cfg) != TERN_OK)
		fuzz_fatal("broker_init");
	/* Tracing shows the log too. */
	fb->b.log.out = fuzz_trace() ? stderr : fb->devnull;
	fb->b.log.mask = LOG_TYPE_ALL;
	fb->b.log.timestamps = false;
	struct worker *w = fb->b.workers[0];
	/* What worker_main() does before its first iteration: connections
	 * take their CONNECT deadline from w->now. */
	w->now = mono_ms();
	w->util_at = w->now;
	return w;
}

static inline void fuzz_iterate(struct worker *w)
{
	/* Run the timers every time (see the top comment). */
	w->next_tick = 0;
	worker_iterate(w, 0);
}

/* Reaps what is left and frees the broker; the caller has closed its
 * client sockets. */
static inline void fuzz_broker_stop(struct fuzz_broker *fb)
{
	for (int i = 0; i < FUZZ_FINAL_ITERATIONS; i++)
		fuzz_iterate(fb->b.workers[0]);
	/* broker_free() wants a stopped broker; with no thread started,
	 * broker_stop() only raises the flag. */
	broker_stop(&fb->b);
	broker_free(&fb->b);
}

/* Connects a new client to w as if accepted on listener l; returns the
 * client's end of the socket (non-blocking). With small_buffer the
 * broker's send buffer is the smallest the kernel allows (a few KiB), so
 * that a client which stops reading soon makes the broker's writes wait. */
static inline int fuzz_connect(struct worker *w, const struct listener *l, bool small_buffer)
{
	int sv[2];
	if (socketpair(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0, sv) < 0)
		fuzz_fatal("socketpair");
	if (small_buffer) {
		int one = 1; /* the kernel rounds it up to its minimum */
		if (setsockopt(sv[0], SOL_SOCKET, SO_SNDBUF, &one, sizeof(one)) < 0)
			fuzz_fatal("SO_SNDBUF");
	}
	struct conn *c = conn_new(w, sv[0], l);
	if (!c)
		fuzz_fatal("conn_new");
	if (conn_adopt(w, c) != TERN_OK)
		fuzz_fatal("conn_adopt");
	return sv[1];
}

/* Writes data to a client's socket. A write to a socket whose broker end
 * is closed fails (EPIPE is not a signal with MSG_NOSIGNAL), and a full
 * socket takes less: that is part of the game. */
static inline void fuzz_send(int fd, const uint8_t *data, size_t len)
{
	if (len > 0 && send(fd, data, len, MSG_NOSIGNAL) < 0 && errno != EPIPE &&
	    errno != ECONNRESET && errno != EAGAIN)
		fuzz_fatal("send");
}

/* Prints up to 64 bytes of what slot received, when tracing. */
static inline void fuzz_trace_bytes(bool trace, int slot, const char *dir, const uint8_t *p,
                                    size_t n)
{
	if (!trace)
		return;
	fprintf(stderr, "slot %d %s", slot, dir);
	for (size_t i = 0; i < n && i < 64; i++)
		fprintf(stderr, " %02x", p[i]);
	fprintf(stderr, "%s\n", n > 64 ? " ..." : "");
}

/* The largest WebSocket frame fuzz_ws_frame() makes: a segment's 255 bytes
 * and a 2 + 2 + 4 byte header. */
#define FUZZ_WS_FRAME_MAX (255 + 8)

/* Writes into out (FUZZ_WS_FRAME_MAX bytes) a final binary frame whose
 * payload is p[0..len), masked as a client must (RFC 6455 5.3) with a
 * fixed non-zero key, its length in the shortest form; returns its size. */
static inline size_t fuzz_ws_frame(uint8_t *out, const uint8_t *p, size_t len)
{
	static const uint8_t key[4] = {0x37, 0xfa, 0x21, 0x3d};
	size_t n = 0;
	out[n++] = 0x82;
	if (len < 126) {
		out[n++] = (uint8_t)(0x80 | len);
	} else {
		out[n++] = 0x80 | 126;
		out[n++] = (uint8_t)(len >> 8);
		out[n++] = (uint8_t)len;
	}
	memcpy(out + n, key, 4);
	n += 4;
	for (size_t i = 0; i < len; i++)
		out[n + i] = p[i] ^ key[i & 3];
	return n + len;
}

/* Reads and drops everything the broker wrote to the client fd. */
static inline void fuzz_drain(int fd, int slot, bool trace)
{
	uint8_t buf[16384];
	ssize_t n;
	while ((n = read(fd, buf, sizeof(buf))) > 0)
		fuzz_trace_bytes(trace, slot, "<-", buf, (size_t)n);
}

#endif
