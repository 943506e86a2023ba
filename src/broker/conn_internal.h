/*
 * conn_internal.h - what conn.c (lifecycle, input, closing), conn_out.c
 * (output) and conn_sink.c (the handlers' view) share of a connection and
 * of its worker (struct conn_worker), and nobody else uses (but the
 * module's unit test, tests/unit/test_conn.c).
 */
#ifndef TERN_BROKER_CONN_INTERNAL_H
#define TERN_BROKER_CONN_INTERNAL_H

#include <stdbool.h>
#include <stdint.h>

#include "tern/codec.h"
#include "tern/error.h"
#include "util/map.h"

struct conn;
struct msg;

/* The encoded PUBLISH headers of one message, per kind of subscriber
 * (conn.c, conn_send_publish()): encoded for the first subscriber of a
 * kind, copied with its packet id for the next ones. */
#define PUB_CACHE_SLOTS 4
#define PUB_CACHE_HDR   128
struct pub_slot {
	uint16_t len;    /* header bytes; 0: slot unused */
	uint16_t pid_at; /* offset of the packet id; 0: QoS 0, none */
	uint8_t version, qos;
	bool retain, dup;
	uint8_t bytes[PUB_CACHE_HDR];
};
struct pub_cache {
	struct msg *msg;        /* a reference; NULL: nothing cached */
	const struct msg *seen; /* the last message encoded (not a reference) */
	uint64_t now;           /* w->now when cached: the expiry left depends on it */
	unsigned next;          /* slot to fill next */
	struct pub_slot slot[PUB_CACHE_SLOTS];
};

/* Bytes of a worker's scratch read buffer (conn.c, conn_on_readable()). */
#define WORKER_SCRATCH_SIZE (64u * 1024u)

/* The connection module's state of a worker (w->conn_state), made by
 * conn_worker_new(): what conn.c, conn_out.c and conn_sink.c keep per
 * worker. */
struct conn_worker {
	struct conn *conns;         /* every live conn, doubly linked */
	struct conn *flush;         /* conns with output to write */
	struct conn *closing;       /* conns to reap before sleeping */
	struct conn *lingering;     /* reaped conns closing gracefully */
	struct conn *handed_off;    /* conn just handed to another worker */
	struct map auth_wait;       /* conn id -> conn waiting for a password verdict */
	uint8_t *scratch;           /* the read scratch, WORKER_SCRATCH_SIZE bytes */
	bool scratch_busy;          /* its bytes are being handled */
	struct pub_cache pub_cache; /* headers of the message being fanned out */
};

/* Puts c on its worker's flush list (once; not when closing). */
void conn_mark_flush(struct conn *c);

/* Encodes p into the output buffer. Never closes the connection, so that
 * conn_close() can use it for its DISCONNECT: TERN_E_NOMEM tells the caller
 * the buffer could not grow, TERN_E_TOO_LARGE that the client's Maximum
 * Packet Size refuses it even without reason string and user properties. */
TERN_MUST_CHECK enum tern_err conn_queue_packet(struct conn *c, const struct tern_packet *p);

/* Registers (on) or drops EPOLLOUT for c, keeping the read interest as it
 * is; a transport waiting for writability to read keeps it on. */
void conn_set_epollout(struct conn *c, bool on);

/* Writes as much as the socket takes, including what the transport keeps
 * of its own (WebSocket framing). TERN_OK when the rest waits for the
 * socket (or nothing is left); the transport's fatal error otherwise. */
TERN_MUST_CHECK enum tern_err conn_write_some(struct conn *c);

/* Drops the payloads queued by reference (their message references). */
void conn_out_free(struct conn *c);

#endif
