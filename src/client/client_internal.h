/*
 * client_internal.h - the state of a libtern client, shared by the files of
 * src/client. Nothing here is part of the public API.
 *
 * The files split the client by concern:
 *   client.c          lifetime, options, property copies, public accessors
 *   client_io.c       socket, non-blocking connect, read/write, step, timers,
 *                     reconnect with back-off
 *   client_proto.c    what to do with each decoded packet from the broker
 *   client_out.c      PUBLISH / SUBSCRIBE / UNSUBSCRIBE out, packet ids, the
 *                     outbound QoS state (in-flight window, local queue,
 *                     resend on session resume)
 *   client_blocking.c the blocking API, a poll() loop around step
 *   client_tls.c      TLS with OpenSSL: the context made from the options,
 *                     the handshake, reads and writes; client_io.c calls it
 *                     through the tern__tls_* functions below
 *   client_ocsp.c     the check of a stapled OCSP response, for
 *                     tls_require_ocsp (client_ocsp.h)
 *
 * The connection goes through these states:
 *
 *   IDLE --connect_start--> TCP --connected--> CONNACK --accepted--> UP
 *     ^                      |   \                 ^  |                 |
 *     |                      |    +--> TLS --------+  |                 |
 *     |                      | (TLS on)  | handshake  |                 |
 *     |                      |           |   done     |                 |
 *     |                      +-----------+------------+---- error ------+
 *     |                                  v
 *     +---- no reconnect ---- closed ----+---- auto_reconnect --> BACKOFF
 *
 * UP --tern_client_disconnect--> CLOSING (DISCONNECT queued) --written--> IDLE.
 * BACKOFF goes back to TCP when its timer fires.
 *
 * Re-entrancy: callbacks run inside tern_client_step() and may call the
 * public functions again. So nothing closes the connection while a packet is
 * being handled: handlers record the error in `fail` and the step closes the
 * connection once the input loop has stopped.
 */
#ifndef TERN_CLIENT_INTERNAL_H
#define TERN_CLIENT_INTERNAL_H

#include <stdbool.h>
#include <stdint.h>

#include "tern/tern.h"
#include "util/alias_in.h"
#include "util/buf.h"
#include "util/map.h"

struct addrinfo;
struct tern__tls;

enum tern__state {
	TERN__IDLE,    /* no connection, none scheduled */
	TERN__TCP,     /* non-blocking TCP connect in progress, CONNECT queued */
	TERN__TLS,     /* TLS handshake in progress, CONNECT queued */
	TERN__CONNACK, /* TCP up, waiting for CONNACK */
	TERN__UP,      /* CONNACK accepted the connection */
	TERN__CLOSING, /* our DISCONNECT queued; close once it is written */
	TERN__BACKOFF, /* waiting to reconnect */
};

/* Where an outbound QoS 1/2 message is in its flow. */
enum tern__out_state {
	TERN__OUT_QUEUED,  /* never sent on the current session */
	TERN__OUT_SENT,    /* PUBLISH sent, waiting for PUBACK / PUBREC */
	TERN__OUT_RELEASE, /* PUBREC received, PUBREL sent, waiting for PUBCOMP */
};

/* One outbound QoS 1/2 PUBLISH, kept encoded until it completes. The list
 * of them is in publish order; since queued messages are sent in order, the
 * sent ones always come before the queued ones. */
struct tern__out {
	struct tern__out *prev, *next;
	uint16_t packet_id;
	uint8_t qos;
	uint8_t state; /* enum tern__out_state */
	/* SENT, and its PUBREC came: on_pubrec is set and the application's
	 * tern_client_release() has not come yet. */
	bool rec;
	/* A release without its PUBLISH (tern_client_release() of an id the
	 * library had no record of): len 0, and QUEUED means its PUBREL is
	 * still to be written. */
	bool bare;
	size_t len;
	uint8_t pkt[]; /* the encoded PUBLISH; pkt[0] bit 3 is DUP */
};

/* A SUBSCRIBE or UNSUBSCRIBE waiting for its answer. */
struct tern__req {
	enum tern_packet_type type; /* TERN_SUBSCRIBE or TERN_UNSUBSCRIBE */
	uint16_t packet_id;
	uint32_t count; /* entries sent */
};

/* A received message queued for tern_client_receive(). */
struct tern__rx {
	struct tern__rx *next;
	void *props_mem;         /* msg.props point here */
	struct tern_message msg; /* topic and payload follow in the allocation */
};

/* A deep copy of a struct tern_props: p's pointers lead into mem. */
struct tern__props_copy {
	struct tern_props p;
	void *mem;
};

/* What a blocking call waits for; filled by client_proto.c. */
struct tern__wait {
	enum tern_packet_type type; /* 0: nothing; PUBLISH, SUBSCRIBE, ... */
	uint16_t packet_id;
	bool done;
	uint8_t reason;      /* PUBACK/PUBCOMP/PUBREC reason */
	uint8_t *reasons;    /* SUBACK/UNSUBACK reasons go here */
	size_t n;            /* room in reasons */
	bool count_mismatch; /* the answer had another count than asked */
};

struct tern_client {
	struct tern_callbacks cb;
	void *ud;

	/* Options, deep-copied by connect_start (strings and props owned). */
	bool have_opts;
	struct tern_connect_opts opts;
	char *host, *bind_address, *username;
	uint8_t *password;
	struct tern__props_copy props;
	struct tern_will will;
	char *will_topic;
	uint8_t *will_payload;
	struct tern__props_copy will_props;
	uint32_t local_max_packet; /* our Maximum Packet Size, 0: none */
	/* TLS context made from the options (client_tls.c), NULL for plain
	 * TCP; it holds the session of the current connection too. */
	struct tern__tls *tls;
	char tls_err[256]; /* tern_client_tls_error() */

	/* The client id in use: the user's or the one the broker assigned. */
	char *client_id;

	/* Connection. */
	enum tern__state state;
	int fd;
	struct addrinfo *ai_list, *ai_next; /* addresses still to try */
	struct buf in, out;
	uint64_t now;       /* ms, refreshed by step */
	uint64_t deadline;  /* TCP connect + CONNACK deadline */
	uint64_t last_tx;   /* last time bytes went out */
	uint64_t ping_sent; /* 0: no PINGREQ outstanding */
	uint64_t reconnect_at;
	uint32_t attempt;     /* reconnects since the last CONNACK */
	uint64_t rng;         /* xorshift state for back-off jitter */
	bool clean_start_now; /* clean start flag of the current CONNECT */
	bool refused;         /* CONNACK refused: no automatic reconnect */
	bool user_close;      /* tern_client_disconnect() was called */
	int in_step;          /* > 0 while inside step (callbacks running) */
	bool corked;          /* tern_client_cork(): output waits for uncorking */
	bool more_input;      /* step stopped reading with input left */

	/* A failure recorded by a handler, acted on after the input loop. */
	enum tern_err fail;
	uint8_t fail_reason; /* v5 DISCONNECT reason to send, 0: none */
	/* Set by a server DISCONNECT: reported through on_disconnect. */
	bool server_disconnect;
	uint8_t server_reason;
	struct tern__props_copy server_props;

	/* Limits from CONNACK (v5) for the current connection. */
	uint16_t keep_alive; /* seconds in effect */
	uint16_t recv_max;   /* server's Receive Maximum */
	uint32_t max_packet; /* server's Maximum Packet Size, 0: none */
	uint8_t max_qos;
	bool retain_ok;

	/* Outbound QoS 1/2 state. */
	struct tern__out *out_head, *out_tail;
	struct tern__out *out_next; /* first QUEUED one, or NULL */
	size_t n_out;               /* messages in the list */
	size_t n_inflight;          /* SENT + RELEASE */
	struct map ids;             /* packet id -> struct tern__out */
	struct map reqs;            /* packet id -> struct tern__req */
	uint16_t next_id;

	/* Inbound QoS 2 ids delivered, waiting for PUBREL (value: (void *)1). */
	struct map in_qos2;

	/* Inbound topic aliases (v5, only when our CONNECT allowed them):
	 * the aliases the server set on this connection, and the Topic Alias
	 * Maximum our CONNECT offered (0 outside a connection). The table
	 * keeps its storage from one connection to the next. */
	struct alias_in *alias;
	uint16_t alias_max;

	/* Received messages for tern_client_receive() (on_message NULL). */
	struct tern__rx *rx_head, *rx_tail;
	size_t n_rx;

	/* Blocking API. */
	struct tern__wait wait;
	bool ev_connack; /* a CONNACK arrived since ev_* were cleared */
	uint8_t ev_reason;
	bool ev_session;
	bool ev_closed; /* the connection ended since it was cleared */
	enum tern_err ev_err;
};

/* ---- client.c ---- */

/* Deep-copies src (may be NULL: an empty copy) into dst, which owns the
 * copy until tern__props_copy_free(). TERN_E_NOMEM on failure. */
TERN_MUST_CHECK enum tern_err tern__props_copy(struct tern__props_copy *dst,
                                               const struct tern_props *src);

/* Frees a copy; it is then empty. */
void tern__props_copy_free(struct tern__props_copy *pc);

/* ---- client_io.c ---- */

/* Opens the socket and starts the TCP connect for the stored options;
 * CONNECT is queued. TERN_E_SYS when no address could be tried. */
TERN_MUST_CHECK enum tern_err tern__io_start(struct tern_client *c);

/* Uses fd as an already connected socket (see tern__client_attach_fd_take).
 * On TERN_OK c owns fd; on failure the caller still does. */
TERN_MUST_CHECK enum tern_err tern__io_attach(struct tern_client *c, int fd);

/* Encodes p for the connection's version and appends it to the output.
 * TERN_E_INVALID when p cannot be encoded, TERN_E_TOO_LARGE beyond the
 * server's Maximum Packet Size, TERN_E_NOMEM; nothing is queued then. */
TERN_MUST_CHECK enum tern_err tern__send_packet(struct tern_client *c, const struct tern_packet *p);

/* Writes as much queued output as the socket takes. Sets c->fail on a
 * write error. */
void tern__flush(struct tern_client *c);

/* Closes the connection: reports on_disconnect(err, reason, props) and
 * schedules a reconnect when that is wanted. */
void tern__close(struct tern_client *c, enum tern_err err, uint8_t reason,
                 const struct tern_props *props);

/* Records a failure of the connection, acted on by step: v5 gets a
 * DISCONNECT with the reason tern_err_reason(err). */
void tern__fail(struct tern_client *c, enum tern_err err);

/* Test seam: uses fd (e.g. one end of a socketpair) as an already
 * connected socket for opts, instead of resolving and connecting; CONNECT
 * is queued. Takes fd in every case: the client closes it, or it is closed
 * here at once when the call fails. */
TERN_MUST_CHECK enum tern_err
tern__client_attach_fd_take(struct tern_client *c, const struct tern_connect_opts *opts, int fd);

/* ---- client_tls.c ---- */

/* Makes c->tls from the TLS options of o (replacing an earlier one), or
 * frees it when o does not ask for TLS. Reads the CA, certificate and key
 * files now. TERN_E_TLS (why in c->tls_err) or TERN_E_NOMEM; c->tls is
 * then NULL. */
TERN_MUST_CHECK enum tern_err tern__tls_configure(struct tern_client *c,
                                                  const struct tern_connect_opts *o);

/* Ends the session (tern__tls_end) and frees c->tls; NULL is allowed. */
void tern__tls_free(struct tern_client *c);

/* Starts a client session on c->fd, which is connected; the handshake is
 * then driven by tern__tls_handshake(). TERN_E_NOMEM or TERN_E_TLS. */
TERN_MUST_CHECK enum tern_err tern__tls_begin(struct tern_client *c);

/* Goes on with the handshake as far as the socket allows: TERN_OK once it
 * is done (the certificate checked), TERN_E_INCOMPLETE while it waits for
 * the socket (tern__tls_want_write() says for what), TERN_E_TLS or
 * TERN_E_CLOSED when it failed. */
TERN_MUST_CHECK enum tern_err tern__tls_handshake(struct tern_client *c);

/* Reads up to n decrypted bytes into buf: TERN_OK and *got > 0,
 * TERN_E_INCOMPLETE when nothing is available now, TERN_E_CLOSED when the
 * peer closed, TERN_E_TLS / TERN_E_SYS on errors. */
TERN_MUST_CHECK enum tern_err tern__tls_read(struct tern_client *c, void *buf, size_t n,
                                             size_t *got);

/* Writes up to n bytes of buf (a partial write is fine; after
 * TERN_E_INCOMPLETE the same bytes must be offered again, possibly from a
 * moved buffer and with more after them): TERN_OK and *put > 0,
 * TERN_E_INCOMPLETE, TERN_E_CLOSED, TERN_E_TLS or TERN_E_SYS. */
TERN_MUST_CHECK enum tern_err tern__tls_write(struct tern_client *c, const void *buf, size_t n,
                                              size_t *put);

/* True when the last TLS operation waits for the socket to be writable. */
bool tern__tls_want_write(const struct tern_client *c);

/* True when OpenSSL holds decrypted input not yet read (so the fd may not
 * signal readable although there is input). */
bool tern__tls_pending(const struct tern_client *c);

/* Ends the session of the current connection (before its fd is closed):
 * with graceful, a close_notify is attempted once, without blocking.
 * Harmless when there is none. */
void tern__tls_end(struct tern_client *c, bool graceful);

/* ---- client_proto.c: what comes in ---- */

/* Handles one decoded packet from the broker. */
void tern__handle(struct tern_client *c, const struct tern_packet *p);

/* Connection lost: drops pending SUBSCRIBE/UNSUBSCRIBE requests and the
 * topic aliases; keeps the outbound QoS state for a resumed session. */
void tern__proto_conn_lost(struct tern_client *c);

/* Frees all protocol state (outbound messages, requests, received queue). */
void tern__proto_free(struct tern_client *c);

/* ---- client_out.c: what goes out ---- */

/* Sends queued QoS 1/2 messages while the Receive Maximum allows. */
void tern__pump(struct tern_client *c);

/* The broker accepted the connection: resends the in-flight messages
 * (DUP PUBLISH, PUBREL) in order when it kept the session, else forgets
 * them (reported through on_publish, see tern.h). */
void tern__session_start(struct tern_client *c, bool session_present);

/* The outbound message with this id, or NULL. */
struct tern__out *tern__out_find(struct tern_client *c, uint16_t id);

/* Ends the flow of o: removes and frees it, tells a waiting blocking call
 * and on_publish (reason, props), then sends what the window now allows. */
void tern__out_complete(struct tern_client *c, struct tern__out *o, uint8_t reason,
                        const struct tern_props *props);

/* Frees every outbound message and request without reporting. */
void tern__out_free_all(struct tern_client *c);

#endif
