/*
 * conn_internal.h - what conn.c (lifecycle, input, closing) and conn_out.c
 * (output) share of a connection, and nobody else uses.
 */
#ifndef TERN_BROKER_CONN_INTERNAL_H
#define TERN_BROKER_CONN_INTERNAL_H

#include <stdbool.h>

#include "tern/codec.h"
#include "tern/error.h"
#include "util/map.h"

struct conn;

/* The connection module's state of a worker (w->conn_state), made by
 * conn_worker_new(): what conn.c, conn_out.c and conn_sink.c keep per
 * worker. */
struct conn_worker {
	struct conn *conns;      /* every live conn, doubly linked */
	struct conn *flush;      /* conns with output to write */
	struct conn *closing;    /* conns to reap before sleeping */
	struct conn *lingering;  /* reaped conns closing gracefully */
	struct conn *handed_off; /* conn just handed to another worker */
	struct map auth_wait;    /* conn id -> conn waiting for a password verdict */
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
