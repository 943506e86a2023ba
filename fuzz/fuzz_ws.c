/*
 * fuzz_ws.c - libFuzzer target for MQTT over WebSockets: the HTTP upgrade
 * and RFC 6455 framing of transport_ws.c, in front of the whole broker.
 *
 * Each input runs against a fresh in-process broker (fuzz_broker.h) whose
 * clients are accepted on a `protocol websockets` listener over plain TCP,
 * so a client's bytes go through the upgrade request parser, the 101 (or
 * 400) answer, the frame decoder (masks, fragments, 7/16/64-bit lengths,
 * PING/PONG, CLOSE, and the text, unmasked and reserved frames that end a
 * connection), and then as an MQTT byte stream into the same read path,
 * handlers and router as fuzz_conn. What the broker writes back goes out
 * framed by ws_write(); the broker's send buffer is as small as the kernel
 * allows, so a client that stops reading soon makes those frames wait in
 * the layer's own buffer.
 *
 * Input: a sequence of segments, as fuzz_conn's with more operations
 *
 *   [op] [len] [len bytes]
 *
 * (op & 0x0f) % 3 picks one of three client slots, op >> 4 what to do:
 *
 *   0x0-0xa  write the bytes, iterate the worker once, read what came back
 *   0xb      the same, then shut down the client's writing side (the
 *            broker reads end of stream)
 *   0xc      toggle whether the slot's replies are read (a client that
 *            stops reading), then as 0x0
 *   0xd      write the bytes without iterating: several writes reach the
 *            broker as one read
 *   0xe      send the bytes as the payload of one masked binary frame
 *            (fuzz_ws_frame()), so that MQTT-level mutations keep a valid
 *            frame around them
 *   0xf      close the slot's socket and connect a new client there first
 *            (wills fire, sessions go offline or are taken over), then as
 *            0x0
 *
 * The third slot's listener has http_dir (a directory made once, with an
 * index.html, a file larger than one send chunk and a link out of it), so
 * a request that is not an upgrade is served as a file, 404 or 400 there.
 *
 * So fuzz_conn's inputs read the same here (ops 0-2 and 0xf0-0xf2); at the
 * end every client closes and fuzz_broker_stop() frees the rest.
 *
 * Seeds: fuzz/gen_conn_seeds.py ws writes upgrades and framed sessions to
 * fuzz/corpus/fuzz_ws/. Dictionary: fuzz/ws.dict (HTTP and WebSocket
 * tokens, with fuzz/mqtt.dict's).
 */
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "fuzz_broker.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#define N_SLOTS 3

enum op_kind {
	OP_HALF_CLOSE = 0xb,
	OP_PAUSE = 0xc,
	OP_NO_ITERATE = 0xd,
	OP_FRAME = 0xe,
	OP_RECONNECT = 0xf,
};

static struct listener_cfg listener_cfg = {.websockets = true};
static const struct listener listener = {
        .cfg = &listener_cfg,
        .tp = &transport_ws,
        .base = &transport_tcp,
};
static struct listener http_listener = {
        .cfg = &listener_cfg,
        .tp = &transport_ws,
        .base = &transport_tcp,
};

static void write_file(const char *dir, const char *name, size_t size)
{
	char path[256];
	snprintf(path, sizeof(path), "%s/%s", dir, name);
	FILE *f = fopen(path, "w");
	if (!f)
		fuzz_fatal("http_dir file");
	for (size_t i = 0; i < size; i++)
		fputc('a' + (int)(i % 26), f);
	fclose(f);
}

/* The http_dir of the third slot's listener, made once per process. */
static void http_dir_once(void)
{
	if (http_listener.http_dir_open)
		return;
	static char dir[] = "/tmp/tern-fuzz-ws-XXXXXX";
	if (!mkdtemp(dir))
		fuzz_fatal("mkdtemp");
	write_file(dir, "index.html", 100);
	write_file(dir, "big.js", 200000);
	char link[300];
	snprintf(link, sizeof(link), "%s/out", dir);
	if (symlink("/etc/hostname", link) != 0)
		fuzz_fatal("symlink");
	http_listener.http_dir = open(dir, O_PATH | O_DIRECTORY | O_CLOEXEC);
	if (http_listener.http_dir < 0)
		fuzz_fatal("http_dir");
	http_listener.http_dir_open = true;
}

static const struct listener *listener_of(int slot)
{
	return slot == N_SLOTS - 1 ? &http_listener : &listener;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static struct fuzz_broker fb; /* large: keep it off the stack */
	static int trace = -1;
	if (trace < 0)
		trace = fuzz_trace();
	struct worker *w = fuzz_broker_start(&fb);
	http_dir_once();

	int peer[N_SLOTS];
	bool paused[N_SLOTS] = {false};
	for (int i = 0; i < N_SLOTS; i++)
		peer[i] = fuzz_connect(w, listener_of(i), true);

	size_t pos = 0;
	while (pos < size) {
		uint8_t op = data[pos++];
		int slot = (op & 0x0f) % N_SLOTS;
		enum op_kind kind = (enum op_kind)(op >> 4);
		if (kind == OP_RECONNECT) {
			close(peer[slot]);
			fuzz_iterate(w); /* the broker sees the close */
			peer[slot] = fuzz_connect(w, listener_of(slot), true);
			paused[slot] = false;
		} else if (kind == OP_PAUSE) {
			paused[slot] = !paused[slot];
		}
		size_t len = pos < size ? data[pos++] : 0;
		if (len > size - pos)
			len = size - pos;
		if (kind == OP_FRAME) {
			uint8_t f[FUZZ_WS_FRAME_MAX];
			fuzz_send(peer[slot], f, fuzz_ws_frame(f, data + pos, len));
		} else {
			fuzz_send(peer[slot], data + pos, len);
		}
		pos += len;
		if (kind == OP_HALF_CLOSE)
			shutdown(peer[slot], SHUT_WR);
		if (kind == OP_NO_ITERATE)
			continue;
		fuzz_iterate(w);
		for (int i = 0; i < N_SLOTS; i++)
			if (!paused[i])
				fuzz_drain(peer[i], i, trace);
	}

	for (int i = 0; i < N_SLOTS; i++) {
		fuzz_drain(peer[i], i, trace);
		close(peer[i]);
	}
	fuzz_broker_stop(&fb);
	return 0;
}
