/*
 * fuzz_conn.c - libFuzzer target for a whole broker fed bytes in-process.
 *
 * Each input runs against a fresh in-process broker (fuzz_broker.h: one
 * worker driven by the target, memory storage, small limits). Clients are
 * socketpairs whose broker end is a plain TCP connection, so the real read
 * path, framing, decoder, every handler, the router, sessions, retained
 * messages, wills and the reaper all run, and two or three clients can
 * talk to each other through the broker.
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
 * discarded, so its output never blocks. At the end every client closes
 * and fuzz_broker_stop() reaps and frees the rest.
 *
 * Seeds: fuzz/gen_conn_seeds.py writes realistic sessions (v3.1.1 and v5,
 * every QoS, acks, two clients, wills, retained, reconnects) to
 * fuzz/corpus/fuzz_conn/. Dictionary: fuzz/mqtt.dict.
 */
#include "fuzz_broker.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#define N_SLOTS      3
#define OP_RECONNECT 0xF0

static struct listener_cfg listener_cfg; /* zero: plain TCP */
static const struct listener listener = {
        .cfg = &listener_cfg,
        .tp = &transport_tcp,
        .base = &transport_tcp,
};

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static struct fuzz_broker fb; /* large: keep it off the stack */
	static int trace = -1;
	if (trace < 0)
		trace = fuzz_trace();
	struct worker *w = fuzz_broker_start(&fb);

	int peer[N_SLOTS];
	for (int i = 0; i < N_SLOTS; i++)
		peer[i] = fuzz_connect(w, &listener, false);

	size_t pos = 0;
	while (pos < size) {
		uint8_t op = data[pos++];
		int slot = op % N_SLOTS;
		if (op >= OP_RECONNECT) {
			close(peer[slot]);
			fuzz_iterate(w); /* the broker sees the close */
			peer[slot] = fuzz_connect(w, &listener, false);
		}
		size_t len = pos < size ? data[pos++] : 0;
		if (len > size - pos)
			len = size - pos;
		fuzz_send(peer[slot], data + pos, len);
		pos += len;
		fuzz_iterate(w);
		for (int i = 0; i < N_SLOTS; i++)
			fuzz_drain(peer[i], i, trace);
	}

	for (int i = 0; i < N_SLOTS; i++) {
		fuzz_drain(peer[i], i, trace);
		close(peer[i]);
	}
	fuzz_broker_stop(&fb);
	return 0;
}
