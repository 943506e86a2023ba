/*
 * tern/tern.h - libtern, the tern MQTT client library.
 *
 * One client object speaks MQTT 3.1, 3.1.1 or 5.0 to one broker over TCP,
 * or over TLS (see the tls_* connection options). It can be driven two
 * ways, which can be mixed:
 *
 *   Non-blocking: tern_client_connect_start() opens the socket and queues
 *   CONNECT; the application watches tern_client_fd() for readability (and
 *   for writability while tern_client_want_write() is true) in its own loop
 *   (epoll, libuv, select) and calls tern_client_step() when the fd is ready
 *   or tern_client_timeout_ms() has passed. Results arrive through the
 *   callbacks in struct tern_callbacks.
 *
 *   Blocking: tern_client_connect(), tern_client_publish_wait(),
 *   tern_client_subscribe_wait(), tern_client_receive() and friends run that
 *   loop internally (poll) until their answer arrives or the timeout ends.
 *
 * The library handles keep-alive (PINGREQ), packet identifiers, the QoS 1
 * and QoS 2 flows in both directions (inbound QoS 2 is delivered once, on
 * the first PUBLISH, and its packet id remembered until PUBREL), the
 * server's Receive Maximum, resending unacknowledged PUBLISH (with DUP) and
 * PUBREL when a session is resumed, and, when asked, reconnecting with
 * exponential back-off.
 *
 * Threads: a client is not thread-safe. All calls on one client must come
 * from one thread at a time (callbacks run inside the caller's call, on
 * the caller's thread). Different clients are independent.
 *
 * Ownership: every pointer handed to a tern_client_* function is only read
 * during the call; the library copies what it keeps (topics, payloads,
 * options, properties). Pointers handed to callbacks are valid only during
 * the callback. A message returned by tern_client_receive() belongs to the
 * caller until tern_message_free().
 *
 * Errors: enum tern_err (tern/error.h); every function that returns one is
 * marked TERN_MUST_CHECK, so a compiler warns when a result is dropped.
 * Reason codes from the broker are passed on as enum tern_reason values
 * (v5) or v3 return codes, and tern_reason_string() names them.
 */
#ifndef TERN_TERN_H
#define TERN_TERN_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "tern/codec.h"
#include "tern/error.h"
#include "tern/export.h"

#ifdef __cplusplus
extern "C" {
#endif

#define TERN_LIB_VERSION "0.1.0"

struct tern_client;

/* The last will, sent by the broker if the connection ends abnormally. */
struct tern_will {
	const char *topic; /* NUL-terminated topic name */
	const void *payload;
	size_t payload_len;
	uint8_t qos;
	bool retain;
	const struct tern_props *props; /* v5 will properties (delay, ...), or NULL */
};

/* Connection options. Zero-initialise, then set what you need:
 * tern_connect_opts_init() fills the defaults shown. */
struct tern_connect_opts {
	const char *host;         /* "127.0.0.1"; a name, IPv4 or IPv6 */
	uint16_t port;            /* 1883 */
	const char *bind_address; /* local source address, or NULL */
	uint8_t version;          /* TERN_V311; or TERN_V31, TERN_V5 */
	const char *client_id;    /* NULL or "": let the broker assign one
				    * (v5), or a clean session (v3.1.1) */
	bool clean_start;         /* true */
	uint16_t keep_alive;      /* 60 seconds; 0 disables */
	const char *username;     /* or NULL */
	const void *password;     /* or NULL; binary allowed */
	size_t password_len;
	const struct tern_will *will; /* or NULL */
	/* v5 CONNECT properties (session expiry, receive maximum, maximum
	 * packet size, user properties, ...), or NULL. */
	const struct tern_props *props;
	uint32_t connect_timeout_ms; /* 10000: TCP connect and CONNACK */
	bool auto_reconnect;         /* false */
	uint32_t reconnect_min_ms;   /* 500 */
	uint32_t reconnect_max_ms;   /* 30000 */

	/* TLS (OpenSSL 3). All zero: plain TCP. TLS is on when tls is true or
	 * tls_cafile, tls_capath or tls_use_os_certs is set. The broker's
	 * certificate is always verified: against tls_cafile (a PEM bundle)
	 * and/or tls_capath (a directory prepared with `openssl rehash`), or,
	 * when neither is given or tls_use_os_certs is true, against the
	 * system's default store too. Its name is checked against host (or
	 * tls_server_name when set): a DNS name against the certificate's
	 * subjectAltName DNS entries (or CN), an IP address against its IP
	 * entries. TLS 1.2 is the minimum; Server Name Indication is sent for
	 * names (not for IP addresses). Files are read by connect_start (a bad
	 * one fails it with TERN_E_TLS); the paths are copied. A failed
	 * handshake or certificate check ends the attempt with TERN_E_TLS, and
	 * tern_client_tls_error() says why. */
	const char *tls_cafile;   /* trusted CA certificates (PEM), or NULL */
	const char *tls_capath;   /* directory of trusted CAs, or NULL */
	const char *tls_certfile; /* our certificate chain (PEM), or NULL; with keyfile */
	const char *tls_keyfile;  /* its private key (PEM, unencrypted), or NULL */
	bool tls;                 /* use TLS even without cafile / capath */
	/* Do not check the broker's name against its certificate (the chain
	 * is still verified), like mosquitto's --insecure. For tests only: it
	 * lets anyone with a certificate from a trusted CA impersonate the
	 * broker. */
	bool tls_insecure;
	const char *tls_server_name; /* name to send (SNI) and verify, or NULL: host */
	bool tls_use_os_certs;       /* also trust the system store with cafile / capath */
	/* The lowest TLS version offered, as OpenSSL numbers them: 0x0303
	 * (TLS 1.2, also what 0 means) or 0x0304 (TLS 1.3 only); anything else
	 * fails connect_start with TERN_E_INVALID. */
	uint16_t tls_min_version;
	/* One protocol name to offer by ALPN (RFC 7301), e.g. "mqtt" for a
	 * port that also serves WebSockets, or NULL: none. A broker that
	 * selects none is still accepted (OpenSSL leaves that to us, and
	 * mosquitto's clients accept it too). */
	const char *tls_alpn;
	/* TLS-PSK (RFC 4279; TLS 1.3 external PSK): the identity and the key
	 * (bytes, 1 to 256), as mosquitto's --psk-identity / --psk; turns TLS
	 * on. The broker's certificate, if it sends one, is still verified.
	 * Both or neither (else TERN_E_INVALID); copied. */
	const char *tls_psk_identity;
	const void *tls_psk;
	size_t tls_psk_len;
	/* Require OCSP stapling, as mosquitto's bridge_require_ocsp: the
	 * handshake asks the broker for its certificate's status
	 * (status_request, RFC 6066) and fails with TERN_E_TLS unless the
	 * broker staples an OCSP response (RFC 6960) that is SUCCESSFUL, is
	 * signed by the broker certificate's issuer or a responder it
	 * delegated to (verified against the same CAs as the certificate),
	 * says GOOD of that certificate, and is current (thisUpdate not in the
	 * future, nextUpdate, if any, not past; 5 minutes of clock skew
	 * allowed). tern_client_tls_error() then says why: "no OCSP response
	 * stapled", "OCSP response does not verify: ...", "server certificate
	 * revoked (keyCompromise)", "OCSP response too old ...". Needs TLS on
	 * (else connect_start fails with TERN_E_INVALID). false. */
	bool tls_require_ocsp;

	/* Announce a bridge: the protocol level carries bit 0x80, as
	 * mosquitto's bridges send it with try_private (see struct
	 * tern_connect in codec.h). false. */
	bool bridge;
	/* The application acknowledges received QoS 1/2 messages itself,
	 * with tern_client_ack(), once it has taken them over (a bridge or a
	 * gateway that must not acknowledge what it has not yet passed on).
	 * The library sends no PUBACK, PUBREC or PUBCOMP of its own then; a
	 * resent QoS 2 PUBLISH is still delivered once, and gets its PUBREC
	 * again only once the application gave it. A PUBREL is reported
	 * through on_pubrel when that callback is set (the application then
	 * sends PUBCOMP), else answered at once. false. */
	bool manual_ack;
};

/* A received application message. The topic is NUL-terminated. For v5,
 * props holds the message's properties (response topic, correlation data,
 * user properties, subscription identifiers, ...) and can be walked with
 * the codec's iterators. */
struct tern_message {
	const char *topic;
	size_t topic_len;
	const uint8_t *payload;
	size_t payload_len;
	uint8_t qos;
	bool retain;
	bool dup;
	uint16_t packet_id;
	struct tern_props props;
};

/* Callbacks; any may be NULL. They run on the thread calling into the
 * library; they may call tern_client_* on the same client, except
 * tern_client_free() and the blocking functions. */
struct tern_callbacks {
	/* CONNACK received. reason 0 means accepted; otherwise the
	 * connection is closed after this call. props: v5 CONNACK
	 * properties (assigned client id, server keep alive, ...). */
	void (*on_connect)(struct tern_client *c, void *ud, uint8_t reason, bool session_present,
	                   const struct tern_props *props);
	/* The connection ended. err is TERN_OK after our own DISCONNECT,
	 * TERN_E_CLOSED when the broker closed it, TERN_E_TLS when TLS
	 * failed (tern_client_tls_error()); reason is the v5
	 * DISCONNECT reason the broker sent (0 if none). */
	void (*on_disconnect)(struct tern_client *c, void *ud, enum tern_err err, uint8_t reason,
	                      const struct tern_props *props);
	/* An application message arrived. When NULL, messages are queued for
	 * tern_client_receive() instead (without bound: the queue holds what
	 * the broker sends until the application takes it). */
	void (*on_message)(struct tern_client *c, void *ud, const struct tern_message *msg);
	/* A QoS 1/2 publish of ours completed: PUBACK or PUBCOMP received, or
	 * PUBREC with a failure reason (>= 0x80). The library also ends a
	 * flow itself, with props NULL: reason 0x80 (Unspecified error) when
	 * the broker did not resume the session and the message had been sent
	 * but not acknowledged (its fate is unknown; 0x00 if its PUBREC had
	 * come, the broker then had it), 0x95 (Packet too large) when a queued
	 * message exceeds the Maximum Packet Size the broker announced later. */
	void (*on_publish)(struct tern_client *c, void *ud, uint16_t packet_id, uint8_t reason,
	                   const struct tern_props *props);
	/* SUBACK: one reason (granted QoS or failure) per filter. */
	void (*on_subscribe)(struct tern_client *c, void *ud, uint16_t packet_id,
	                     const uint8_t *reasons, size_t n, const struct tern_props *props);
	/* UNSUBACK: one reason per filter (v5; n is 0 for v3.1.1). */
	void (*on_unsubscribe)(struct tern_client *c, void *ud, uint16_t packet_id,
	                       const uint8_t *reasons, size_t n, const struct tern_props *props);
	/* With manual_ack only: the broker released the QoS 2 message with
	 * this id (PUBREL); answer it with tern_client_ack(TERN_PUBCOMP).
	 * Also called for an id the library does not know (after a restart
	 * of the application, the broker resends PUBREL of what it was
	 * PUBREC'd before). */
	void (*on_pubrel)(struct tern_client *c, void *ud, uint16_t packet_id);
	/* A QoS 2 publish of ours got a PUBREC with a success reason (a
	 * failing one ends the flow through on_publish). When this callback
	 * is set the library sends no PUBREL of its own: the application
	 * releases the message with tern_client_release() once it has
	 * recorded that the broker has it -- a bridge or gateway that keeps
	 * its own store, where "PUBREL sent" must be durable before the
	 * broker may forget the packet id, or a restart would resend the
	 * PUBLISH and the broker deliver it twice. Until released the message
	 * counts as sent: a resumed session resends the PUBLISH with DUP (the
	 * broker answers PUBREC again, reported again), and one the broker did
	 * not resume completes with 0x00 (the broker had it). NULL: PUBREL
	 * goes at once. */
	void (*on_pubrec)(struct tern_client *c, void *ud, uint16_t packet_id, uint8_t reason,
	                  const struct tern_props *props);
};

/* What a publish carries. */
struct tern_publish_args {
	const char *topic; /* NUL-terminated; may be "" with a v5 topic alias */
	const void *payload;
	size_t payload_len;
	uint8_t qos;
	bool retain;
	const struct tern_props *props; /* v5 properties, or NULL */
	/* QoS 1/2 only (else TERN_E_INVALID): the packet identifier to send
	 * with, instead of one the library takes (0). For an application
	 * that keeps its own record of what it published on a persistent
	 * session (a bridge, a gateway with a store): after its own restart
	 * it resends an unacknowledged message with the identifier it had
	 * [MQTT-4.4.0-1], and a broker that kept the session then knows it
	 * (a QoS 2 message is not delivered twice). An identifier in use by
	 * another publish or release of this client, or by a SUBSCRIBE /
	 * UNSUBSCRIBE waiting for its answer, fails with TERN_E_BUSY: ask
	 * again once that one completed. */
	uint16_t packet_id;
	/* QoS 1/2 only: DUP on the first sending too, for such a resend of a
	 * message that went out before with packet_id [MQTT-3.3.1-1]. */
	bool dup;
};

/* ---- lifetime ---- */

/* Fills opts with the defaults documented in struct tern_connect_opts. */
TERN_API void tern_connect_opts_init(struct tern_connect_opts *opts);

/* Creates a client. cb may be NULL (blocking use only); it is copied. ud is
 * passed to every callback. Returns TERN_OK and *out, or TERN_E_NOMEM. */
TERN_API TERN_MUST_CHECK enum tern_err tern_client_new(struct tern_client **out,
                                                       const struct tern_callbacks *cb, void *ud);

/* Closes the socket (without DISCONNECT: the broker then sends the will)
 * and frees everything. NULL is allowed. */
TERN_API void tern_client_free(struct tern_client *c);

/* ---- non-blocking use ---- */

/* Starts connecting: resolves host, starts a non-blocking TCP connect and
 * queues CONNECT. Options are copied. Returns TERN_E_INVALID for bad
 * options (or while connected or connecting), TERN_E_SYS when the socket
 * cannot be created or the name not resolved, TERN_E_TLS when a TLS file
 * cannot be used (tern_client_tls_error()). With TLS the handshake follows
 * the TCP connect and CONNECT goes out once it is done; while it runs,
 * tern_client_want_write() and tern_client_timeout_ms() say what it
 * waits for. The outcome arrives through
 * on_connect / on_disconnect. Name resolution (getaddrinfo) blocks; give a
 * numeric address where that matters. Every resolved address is tried in
 * turn. Reconnects (auto_reconnect) reuse the client id the broker
 * assigned, so that a v5 session can be resumed. */
TERN_API TERN_MUST_CHECK enum tern_err
tern_client_connect_start(struct tern_client *c, const struct tern_connect_opts *opts);

/* The socket to watch, or -1 while there is none. It can change across
 * reconnects. */
TERN_API int tern_client_fd(const struct tern_client *c);

/* True when the library has output waiting for the socket to be writable
 * (or a TCP connect in progress). */
TERN_API bool tern_client_want_write(const struct tern_client *c);

/* Milliseconds until tern_client_step() must be called even without I/O
 * (keep-alive, timeouts, reconnect); -1 for no deadline. 0 also when the
 * last step left input unread (it reads a bounded amount per call so that
 * a busy broker cannot starve the caller's loop); edge-triggered loops
 * rely on that. */
TERN_API int tern_client_timeout_ms(const struct tern_client *c);

/* Does the pending work: reads and handles incoming packets, writes queued
 * output, runs timers, reconnects. Call it when the fd is ready or the
 * timeout passed (calling it more often is harmless). Returns TERN_OK, or
 * the error that ended the connection (it is then also reported through
 * on_disconnect; with auto_reconnect a new attempt is scheduled). */
TERN_API TERN_MUST_CHECK enum tern_err tern_client_step(struct tern_client *c);

/* Queues a PUBLISH. For QoS 1/2 a packet id is assigned, or the one given
 * in args taken (returned in *packet_id when not NULL; TERN_E_BUSY when the
 * given one is in use), and the message kept until acknowledged,
 * resent with DUP after a reconnect of a persistent session. QoS 1/2
 * messages beyond the broker's Receive Maximum wait in the library.
 * Allowed while not connected for QoS 1/2 (sent once connected), once
 * tern_client_connect_start() has been called (before: TERN_E_CLOSED);
 * QoS 0 then fails with TERN_E_CLOSED. TERN_E_INVALID for an invalid topic
 * or QoS, or a QoS / retain the broker said it does not support (v5
 * CONNACK); TERN_E_TOO_LARGE beyond the broker's Maximum Packet Size;
 * TERN_E_LIMIT when all 65535 packet ids are in use. A Topic Alias in
 * props is sent as given (topic "" then uses it); the library does not
 * re-establish aliases after a reconnect. Outside callbacks the packet is
 * written at once when the socket takes it; what it does not take waits
 * in an output buffer that has no bound of its own (for QoS 0 as well). */
TERN_API TERN_MUST_CHECK enum tern_err tern_client_publish(struct tern_client *c,
                                                           const struct tern_publish_args *args,
                                                           uint16_t *packet_id);

/* Queues a SUBSCRIBE of n entries (struct tern_sub_entry from the codec;
 * filters need not be NUL-terminated). props: v5 (subscription identifier,
 * user properties) or NULL. The answer comes through on_subscribe.
 * Allowed while connecting (it follows CONNECT); TERN_E_CLOSED without a
 * connection. A request still unanswered when the connection ends is
 * dropped (MQTT does not resend it); TERN_E_INVALID for a bad filter. */
TERN_API TERN_MUST_CHECK enum tern_err
tern_client_subscribe(struct tern_client *c, const struct tern_sub_entry *entries, size_t n,
                      const struct tern_props *props, uint16_t *packet_id);

/* Queues an UNSUBSCRIBE of n NUL-terminated filters. */
TERN_API TERN_MUST_CHECK enum tern_err tern_client_unsubscribe(struct tern_client *c,
                                                               const char *const *filters, size_t n,
                                                               const struct tern_props *props,
                                                               uint16_t *packet_id);

/* Sends DISCONNECT (v5: with reason and props) and closes once it is
 * written; no reconnect follows. on_disconnect reports TERN_OK. Outside
 * callbacks this happens within the call when the socket takes the bytes;
 * otherwise in a later tern_client_step(). While waiting to reconnect it
 * just cancels the reconnect. TERN_E_CLOSED when there is no connection. */
TERN_API TERN_MUST_CHECK enum tern_err tern_client_disconnect(struct tern_client *c, uint8_t reason,
                                                              const struct tern_props *props);

/* With manual_ack: acknowledges a received message. type TERN_PUBACK (a
 * QoS 1 message), TERN_PUBREC (QoS 2: a reason >= 0x80 refuses it and ends
 * its flow) or TERN_PUBCOMP (a PUBREL reported by on_pubrel); reason is
 * sent in v5 only. The acknowledgement is recorded even when there is no
 * connection: a resent QoS 2 PUBLISH then gets its PUBREC at once.
 * TERN_E_CLOSED when it could not be sent for want of a connection (the
 * broker resends the message on a resumed session), TERN_E_INVALID for
 * another type or packet id 0, TERN_E_NOMEM. */
TERN_API TERN_MUST_CHECK enum tern_err tern_client_ack(struct tern_client *c,
                                                       enum tern_packet_type type,
                                                       uint16_t packet_id, uint8_t reason);

/* Sends PUBREL for packet_id [MQTT-4.3.3-3]: the application's release of
 * a QoS 2 publish of ours whose PUBREC on_pubrec reported (or that was
 * sent on this session and is known to have reached the broker), or of a
 * packet id the library has no record of: a QoS 2 publish of an earlier
 * run of the application whose PUBREC had come (the application kept
 * that), to be released on the session the broker resumed
 * [MQTT-4.4.0-1]. Either way the release is kept as a publish is: in
 * flight until PUBCOMP (counted against the Receive Maximum; one made
 * while not connected, or beyond it, waits in order behind the publishes
 * queued before it), sent again when the session is resumed, reported
 * through on_publish with the PUBCOMP's reason (v5: 0x92 when the broker
 * no longer knew the id, so it had completed the flow already), and
 * completed with 0x00 and props NULL when the broker did not resume the
 * session (nothing is left to release there). Releasing a message already
 * released does nothing. Allowed while not connected, once
 * tern_client_connect_start() has been called (before: TERN_E_CLOSED).
 * TERN_E_INVALID for packet id 0; TERN_E_BUSY when the id belongs to a QoS
 * 1 publish, to a QoS 2 one not sent yet, or to a SUBSCRIBE / UNSUBSCRIBE;
 * TERN_E_NOMEM. */
TERN_API TERN_MUST_CHECK enum tern_err tern_client_release(struct tern_client *c,
                                                           uint16_t packet_id);

/* Corks (on) or uncorks (off) the client's output: while corked, publish,
 * subscribe and unsubscribe only queue their packets, and uncorking writes
 * them all in one go. A program that sends a burst (a benchmark, a
 * gateway relaying a batch) saves a system call per packet. Output is also
 * written by tern_client_step() whatever the cork says. */
TERN_API void tern_client_cork(struct tern_client *c, bool on);

/* True while CONNACK has accepted the connection and it is still up. */
TERN_API bool tern_client_is_connected(const struct tern_client *c);

/* The client id in use (the broker-assigned one for v5 when it assigned
 * one); "" before connecting. Valid until the next call on c. */
TERN_API const char *tern_client_id(const struct tern_client *c);

/* Why the last TLS operation of c failed, in words ("certificate
 * verification failed (unable to get local issuer certificate)", "cannot
 * load CA file ca.pem: No such file or directory", ...), for an error message after
 * TERN_E_TLS; "" when nothing failed. Valid until the next call on c. */
TERN_API const char *tern_client_tls_error(const struct tern_client *c);

/* QoS 1/2 publishes of ours not yet completed (in flight or waiting). */
TERN_API size_t tern_client_pending(const struct tern_client *c);

/* ---- blocking use ---- */

/* Connects and waits for CONNACK, at most timeout_ms (-1: the options'
 * connect_timeout_ms). *reason (may be NULL) gets the CONNACK reason.
 * Returns TERN_OK when accepted; TERN_E_PROTOCOL when refused (see
 * *reason); TERN_E_TIMEOUT; TERN_E_SYS / TERN_E_CLOSED on network errors;
 * TERN_E_TLS when TLS failed (tern_client_tls_error() says why).
 * After a failure with auto_reconnect a new attempt is scheduled (run it
 * with tern_client_loop(), or stop it with tern_client_disconnect()). */
TERN_API TERN_MUST_CHECK enum tern_err tern_client_connect(struct tern_client *c,
                                                           const struct tern_connect_opts *opts,
                                                           int timeout_ms, uint8_t *reason,
                                                           bool *session_present);

/* Runs the loop (poll, then tern_client_step()) until timeout_ms passes
 * (-1: forever, 0: one step without waiting), an error ends the connection
 * (that error is returned, as by tern_client_step(); with auto_reconnect
 * call it again to go on), or nothing is left to do: the client is idle,
 * with no connection and no reconnect pending (e.g. once the DISCONNECT of
 * tern_client_disconnect() is written). Returns TERN_OK otherwise. */
TERN_API TERN_MUST_CHECK enum tern_err tern_client_loop(struct tern_client *c, int timeout_ms);

/* Publishes and, for QoS 1/2, waits for the acknowledgement (PUBACK or
 * PUBCOMP). *reason (may be NULL) gets the broker's reason. Returns
 * TERN_OK, TERN_E_PROTOCOL when the reason is a failure, TERN_E_TIMEOUT
 * (the message stays queued), or the connection's error (TERN_E_CLOSED
 * when there is no connection and none coming: the message stays queued
 * too). With auto_reconnect a lost connection does not end the wait. */
TERN_API TERN_MUST_CHECK enum tern_err
tern_client_publish_wait(struct tern_client *c, const struct tern_publish_args *args,
                         int timeout_ms, uint8_t *reason);

/* Subscribes and waits for SUBACK; reasons[0..n) get the per-filter
 * results (granted QoS, or >= 0x80 for a failure: the call still returns
 * TERN_OK, check reasons). TERN_E_TIMEOUT, or the connection's error. */
TERN_API TERN_MUST_CHECK enum tern_err
tern_client_subscribe_wait(struct tern_client *c, const struct tern_sub_entry *entries, size_t n,
                           const struct tern_props *props, int timeout_ms, uint8_t *reasons);

/* Unsubscribes and waits for UNSUBACK. */
TERN_API TERN_MUST_CHECK enum tern_err
tern_client_unsubscribe_wait(struct tern_client *c, const char *const *filters, size_t n,
                             const struct tern_props *props, int timeout_ms);

/* Waits for the next received message (only when on_message is NULL):
 * TERN_OK and *msg (free it with tern_message_free()), TERN_E_TIMEOUT, or
 * the connection's error. timeout_ms -1 waits forever. */
TERN_API TERN_MUST_CHECK enum tern_err
tern_client_receive(struct tern_client *c, struct tern_message **msg, int timeout_ms);

/* Frees a message from tern_client_receive(); NULL is allowed. */
TERN_API void tern_message_free(struct tern_message *msg);

/* ---- helpers ---- */

/* A short English description of a v5 reason code (or, with v3 true, of a
 * 3.1/3.1.1 CONNACK return code); never NULL. */
TERN_API const char *tern_reason_string(uint8_t reason, bool v3);

#ifdef __cplusplus
}
#endif

#endif
