/*
 * conn.h - one network connection (conn.c): its transport, its buffers, the
 * framing of packets in and out, its lifetime (close, reap, linger) and the
 * connection-level state the handlers read (protocol version, limits,
 * aliases, will) through its sink (sink.h). struct conn itself is private to
 * the connection module (conn_internal.h).
 */
#ifndef TERN_BROKER_CONN_H
#define TERN_BROKER_CONN_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "broker/sink.h"
#include "tern/codec.h"
#include "tern/error.h"
#include "util/buf.h"

struct conn_out;
struct conn_proxied;
struct delivery;
struct flow_pause;
struct listener;
struct msg;
struct session;
struct tls_conn;
struct topic_alias;
struct transport;
struct worker;
struct ws_conn;

struct conn; /* private to the connection module (conn_internal.h) */

/* The peer's address ("1.2.3.4:5678") of c, written into buf. */
const char *conn_peer(const struct conn *c, char buf[64]);

/* Creates a connection for a socket accepted on listener l (it then owns
 * the socket); NULL when out of memory or the transport cannot start. */
struct conn *conn_new(struct worker *w, int fd, const struct listener *l);

/* Handles write readiness: flushes output, and lets a transport that was
 * waiting for it (a TLS handshake) go on reading. Returns false when that
 * read handed c to another worker (see conn_process): the caller must not
 * touch c any more. */
bool conn_on_writable(struct conn *c);

/* Frees a connection that is no longer in any list (used by the reaper). */
void conn_free(struct conn *c);

/* Reads what the socket has and handles every whole packet. Returns false
 * when c was handed to another worker (see conn_process). */
bool conn_on_readable(struct conn *c);

/* Handles packets already buffered (also after a hand-over). Returns false
 * when a CONNECT handed c to its session's home worker: c then belongs to
 * that thread, which may already be running it, so the caller must not
 * touch c any more (not even to read its state). True otherwise, closing
 * or not. */
bool conn_process(struct conn *c);

/* Writes buffered output; registers for EPOLLOUT on a partial write. */
void conn_flush(struct conn *c);

/*
 * Ends the connection. For v5 connections in CONN_ACTIVE a reason >= 0x80
 * is first sent in a DISCONNECT (with a reason string when the client asked
 * for problem information). Idempotent. The will is published unless the
 * client sent a normal DISCONNECT.
 */
void conn_close(struct conn *c, uint8_t reason, const char *why);

/*
 * Reaps a closing connection: detaches the session at once, then closes.
 * Unless the peer ended the stream itself (c->no_linger), the close is
 * graceful, so that the client can read our last words (a DISCONNECT with
 * its reason, a refusing CONNACK) even while it is still sending: closing a
 * socket with unread input makes the kernel send a reset, and the client's
 * next send or read fails before it sees them. So c lingers (CONN_LINGER,
 * on its worker's lingering list): its output is flushed, the transport says goodbye (TLS
 * close_notify, WebSocket close frame), the write side is shut down, and
 * input is read and dropped until the peer closes, for at most
 * CONN_LINGER_MS and CONN_LINGER_BYTES. A lingering connection belongs to
 * no session and no longer counts against max_connections.
 */
void conn_reap(struct conn *c);

/* Handles an epoll event of a lingering connection (may free it). */
void conn_linger_event(struct conn *c, uint32_t events);

/* Registers c (accepted on w, or handed over to it) with w's loop (epoll)
 * and links it into w's live connections. TERN_E_SYS when epoll refuses
 * it (the caller frees c). */
TERN_MUST_CHECK enum tern_err conn_adopt(struct worker *w, struct conn *c);

/* A conn handed over arrives with what its PROXY header said (the
 * client's address, the certificate's CN: conn_proxy_take()), owned from
 * now on (NULL: none), before conn_arrive(). */
void conn_proxy_arrive(struct conn *c, struct conn_proxied *proxied);

/* INBOX_CONN: c, handed over to its session's home worker w, is adopted
 * (freed when it cannot be), its pending output flushed, and its buffered
 * packets handled. */
void conn_arrive(struct worker *w, struct conn *c);

/* An epoll event of c (its events mask): lingering, closing, writable,
 * readable. c may be freed, or handed to another worker. */
void conn_on_event(struct conn *c, uint32_t events);

/* On the timer tick: closes every connection of w that sent no CONNECT in
 * time or was silent past one and a half keep-alive periods. */
void conn_check_timeouts(struct worker *w, uint64_t now);

/* Writes out every connection of w marked for flushing (conn_out.c). */
void conn_flush_all(struct worker *w);

/* Reaps every connection of w closed so far (conn_reap()). */
void conn_reap_closing(struct worker *w);

/* Whether w has connections to flush or to reap: the loop goes round
 * again before sleeping (reaping can publish wills). */
bool conn_work_left(const struct worker *w);

/* At shutdown: closes and reaps every connection of w, without wills and
 * without lingering. */
void conn_close_all(struct worker *w);

/* Ends every lingering connection of w whose time is up at now
 * (UINT64_MAX: all of them, at shutdown). */
void conn_linger_expire(struct worker *w, uint64_t now);

/* Stops (paused true) or resumes reading from c: while paused, epoll
 * reports only a hang-up or an error, upon which c is closed; what the
 * client sends meanwhile waits in the socket. */
void conn_pause_input(struct conn *c, bool paused);

/* Removes c from its worker (epoll, lists) without closing it, so that it
 * can be handed to another worker. */
void conn_unlink(struct conn *c);

/* Encodes and queues a packet. TERN_E_CLOSED when c is closing (nothing is
 * queued), TERN_E_TOO_LARGE when p exceeds the client's Maximum Packet Size
 * even without its optional properties (nothing is sent), TERN_E_NOMEM
 * after closing c. */
TERN_MUST_CHECK enum tern_err conn_send(struct conn *c, const struct tern_packet *p);

/* Encodes and queues a PUBLISH of d with packet_id (0 for QoS 0) and dup.
 * Returns TERN_E_TOO_LARGE when it exceeds the client's Maximum Packet Size
 * (nothing is sent then [MQTT-3.1.2-25]). */
TERN_MUST_CHECK enum tern_err conn_send_publish(struct conn *c, const struct delivery *d,
                                                uint16_t packet_id, bool dup);

/* Sends an ack-type packet (PUBACK..PUBCOMP) with a reason (v5 only).
 * Errors as conn_send(). */
TERN_MUST_CHECK enum tern_err conn_send_ack(struct conn *c, enum tern_packet_type type,
                                            uint16_t packet_id, uint8_t reason);

/* The ops of a connection's sink (conn_sink.c), set by conn_new(). */
extern const struct sink_ops conn_sink_ops;

/* INBOX_AUTH_DONE: the verdict rc for connection conn_id of w (conn_sink.c):
 * its CONNECT is handled again, and takes it. Dropped when that connection
 * is gone or closing. */
void conn_auth_verdict(struct worker *w, uint64_t conn_id, uint8_t rc);

/* A connection that waits for its verdict is freed: forget it, so the
 * verdict finds nothing (conn_sink.c). */
void conn_auth_forget(struct conn *c);

/* INBOX_SESSION_FOUND: the answer of the cluster's session lookup for
 * connection conn_id of w (conn_sink.c): rec[0..len) the record (len 0:
 * none), err as in the cluster's session_found callback. Its CONNECT is
 * handled again and takes it. Dropped when that connection is gone or
 * closing. */
void conn_session_found(struct worker *w, uint64_t conn_id, const uint8_t *rec, size_t len,
                        enum tern_err err);

/* A connection that waits for (or holds) a lookup's answer is freed:
 * forget it (conn_sink.c). */
void conn_lookup_forget(struct conn *c);

/* Creates w's connection state (w->conn_state, conn_internal.h).
 * TERN_E_NOMEM when out of memory. */
TERN_MUST_CHECK enum tern_err conn_worker_new(struct worker *w);

/* Frees w's connection state, once its connections are gone (nothing when
 * there is none). */
void conn_worker_free(struct worker *w);

/* Drops the worker's cached PUBLISH headers and their message reference
 * (before the loop sleeps, so that no message is kept alive by them). */
void pub_cache_clear(struct worker *w);

/* Bytes queued for writing; used to drop QoS 0 to slow consumers. */
size_t conn_pending_out(const struct conn *c);

#endif
