/*
 * conn_internal.h - what the connection module shares of a connection
 * (struct conn) and of its worker (struct conn_worker), and nobody else
 * uses (but the module's unit test, tests/unit/test_conn.c): conn.c
 * (lifecycle, input, closing), conn_out.c (output), conn_sink.c (the
 * handlers' view), flow_pause.c (acks held by flow control) and the
 * transports (transport_*.c), which read and write its socket.
 */
#ifndef TERN_BROKER_CONN_INTERNAL_H
#define TERN_BROKER_CONN_INTERNAL_H

#include <stdbool.h>
#include <stdint.h>

#include "broker/sink.h"
#include "tern/codec.h"
#include "tern/error.h"
#include "util/buf.h"
#include "util/map.h"

struct conn_out;
struct flow_pause;
struct listener;
struct msg;
struct tls_conn;
struct topic_alias;
struct transport;
struct worker;
struct ws_conn;

enum conn_state {
	CONN_NEW,     /* waiting for CONNECT */
	CONN_ACTIVE,  /* CONNACK sent */
	CONN_CLOSING, /* marked; reaped before the loop sleeps */
	CONN_LINGER,  /* reaped, closing gracefully: see conn_reap() */
};

struct conn {
	/* What the handlers and the session see of it (sink.h); its ops are
	 * conn_sink.c's. */
	struct sink sink;
	/* Ordered by size to keep an idle connection small. */
	struct worker *w;
	const struct listener *listener;
	const struct transport *tp;
	struct tls_conn *tls;      /* TLS layer state, or NULL */
	struct ws_conn *ws;        /* WebSocket layer state, or NULL */
	struct conn *prev, *next;  /* conn_worker's conns, or lingering */
	struct conn *flush_next;   /* conn_worker's flush */
	struct conn *closing_next; /* conn_worker's closing */
	uint64_t last_rx;          /* monotonic ms of the last packet */
	uint64_t rx_bytes;         /* read from the socket, for the admin API */
	uint64_t tx_bytes;         /* written to it */
	int64_t since_ms;          /* wall ms when accepted */
	uint64_t deadline;         /* CONNECT deadline while CONN_NEW; linger end */
	struct buf rbuf;
	struct buf wbuf;
	struct topic_alias *alias_out; /* aliases we assigned (v5); NULL: none */
	struct conn_out *out;          /* payloads sent by reference; NULL when none */
	struct flow_pause *flow;       /* acks held by flow control (flow.c); NULL: none */
	int fd;
	enum conn_state state;
	bool tp_read_wants_write; /* a read waits for the socket to be writable */
	bool tp_write_wants_read; /* a write waits for the socket to be readable */
	bool in_flush;
	bool epollout;      /* EPOLLOUT is registered */
	bool counted;       /* counted in broker->n_conns */
	bool input_paused;  /* EPOLLIN off: see conn_pause_input() */
	uint8_t auth;       /* enum conn_auth */
	uint8_t auth_rc;    /* the verdict, once auth is CONN_AUTH_DONE */
	uint8_t lookup;     /* enum conn_lookup */
	bool no_linger : 1; /* the peer ended the stream: close at once */
	bool shut_wr : 1;   /* lingering: our write side is shut down */
	/* enable_proxy_protocol: the PROXY header was read (the client's
	 * address is then in conn_worker.proxied, see conn_proxy.c). */
	bool proxy_done : 1;
	uint32_t discarded; /* lingering: input bytes read and dropped */
};

/* Where a connection's password check is (conn_sink.c). */
enum conn_auth {
	CONN_AUTH_NONE, /* not asked off the loop */
	CONN_AUTH_WAIT, /* asked; the CONNECT waits in rbuf, input paused */
	CONN_AUTH_DONE, /* the verdict is in auth_rc */
};

/* Where a connection's session lookup in the cluster is (conn_sink.c). */
enum conn_lookup {
	CONN_LOOKUP_NONE, /* not asked */
	CONN_LOOKUP_WAIT, /* asked; the CONNECT waits in rbuf, input paused */
	CONN_LOOKUP_DONE, /* the answer is in conn_worker.lookup_done */
};

/* The answer of a session lookup, kept until the CONNECT takes it. */
struct lookup_answer {
	enum tern_err err;
	size_t len;
	uint8_t rec[]; /* the record; len 0: none */
};

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
	struct conn *conns;      /* every live conn, doubly linked */
	struct conn *flush;      /* conns with output to write */
	struct conn *closing;    /* conns to reap before sleeping */
	struct conn *lingering;  /* reaped conns closing gracefully */
	struct conn *handed_off; /* conn just handed to another worker */
	struct map auth_wait;    /* conn id -> conn waiting for a password verdict */
	struct map lookup_wait;  /* conn id -> conn waiting for its session's record */
	struct map lookup_done;  /* conn id -> struct lookup_answer (owned) */
	/* struct conn pointer -> what its PROXY header said (struct
	 * conn_proxied, owned), for the conns of enable_proxy_protocol
	 * listeners only, so that struct conn stays small. */
	struct map proxied;
	uint8_t *scratch;           /* the read scratch, WORKER_SCRATCH_SIZE bytes */
	bool scratch_busy;          /* its bytes are being handled */
	struct pub_cache pub_cache; /* headers of the message being fanned out */
};

/* What ternd keeps of a connection's PROXY header: one allocation (free()
 * frees it all), in the worker's map (conn_worker.proxied) or, while the
 * connection is handed over, in its inbox item. */
struct conn_proxied {
	/* The CN of the client certificate the proxy verified, kept on a
	 * listener with use_identity_as_username only; NULL: none. Points
	 * into text. */
	const char *cn;
	/* The client's address ("1.2.3.4:5678"; "" when the header gave
	 * none), its NUL, then the CN's bytes and NUL when there is one. */
	char text[];
};

/* conn_proxy.c: with enable_proxy_protocol, reads the PROXY header at the
 * start of c's input data[0..avail): *used bytes of it, 0 while it is
 * incomplete. False when c was closed: not a valid header, no TLS where
 * proxy_protocol_v2_require_tls wants it, or no verified client
 * certificate where require_certificate does (the log line says which). */
bool conn_proxy_header(struct conn *c, const uint8_t *data, size_t avail, size_t *used);

/* The client's address from c's PROXY header, or NULL (none, or not such
 * a listener). */
const char *conn_proxy_peer(const struct conn *c);

/* On a listener with enable_proxy_protocol 2 and use_identity_as_username:
 * the CN of the client certificate that c's PROXY header says the proxy
 * verified, owned by c; NULL when there is none (or not such a listener). */
const char *conn_proxy_identity(const struct conn *c);

/* c leaves its worker (hand-over): what its header said, taken out of the
 * worker's map (NULL: none); conn_proxy_arrive() (conn.h) puts it into the
 * new worker's. */
struct conn_proxied *conn_proxy_take(struct conn *c);

/* c is freed: its entry goes. */
void conn_proxy_forget(struct conn *c);

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
