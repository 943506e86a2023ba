/*
 * transport.h - how bytes get to and from a connection's socket.
 *
 * The broker core reads and writes through one small ops table per
 * transport (plain TCP, TLS, and WebSockets over either), as Redis does
 * with its ConnectionType, so conn.c never asks which one it has. A
 * listener picks the transport of the connections it accepts.
 *
 * Reads and writes return an enum tern_err and the size through *n, as the
 * rest of tern does (tern/error.h): TERN_OK with *n > 0 bytes moved (a
 * write of len 0 moves none), TERN_E_INCOMPLETE when the socket must
 * become ready first, TERN_E_CLOSED when the peer ended the stream (read
 * only), or another error (TERN_E_SYS, TERN_E_TLS, TERN_E_PROTOCOL for a
 * framing violation). A transport may need the socket writable to make
 * progress on a read (a TLS handshake) or readable to finish a write (TLS
 * renegotiation): it says so through the conn's tp_want_* flags, which
 * conn.c turns into epoll interest.
 */
#ifndef TERN_BROKER_TRANSPORT_H
#define TERN_BROKER_TRANSPORT_H

#include <pthread.h>
#include <stdbool.h>
#include <stddef.h>
#include <sys/types.h>
#include <sys/uio.h>

#include "tern/error.h"

struct conn;
struct listener;

struct transport {
	const char *name;
	/* Prepares a freshly accepted connection (c->fd is set). */
	TERN_MUST_CHECK enum tern_err (*open)(struct conn *c, const struct listener *l);
	/* Reads at most len bytes into buf (len > 0). */
	TERN_MUST_CHECK enum tern_err (*read)(struct conn *c, void *buf, size_t len, size_t *n);
	/* Writes from buf; a transport that keeps output of its own (framing)
	 * flushes it when called with len 0, and says so through
	 * out_pending. */
	TERN_MUST_CHECK enum tern_err (*write)(struct conn *c, const void *buf, size_t len,
	                                       size_t *n);
	bool (*out_pending)(const struct conn *c);
	/* Optional gather write (NULL: conn.c writes piece by piece). */
	TERN_MUST_CHECK enum tern_err (*writev)(struct conn *c, const struct iovec *iov, int iovcnt,
	                                        size_t *n);
	/* True when bytes were taken off the socket but not returned yet, so
	 * epoll will not report them: read again before sleeping. */
	bool (*pending)(const struct conn *c);
	/* Optional: writes the transport's own farewell before the write
	 * side is shut down (TLS close_notify, a WebSocket close frame).
	 * Returns TERN_OK once it is written (or there is none),
	 * TERN_E_INCOMPLETE while the socket must become ready first, or an
	 * error. NULL: none. */
	TERN_MUST_CHECK enum tern_err (*goodbye)(struct conn *c);
	/* Releases the transport's state (not the fd). */
	void (*close)(struct conn *c);
};

extern const struct transport transport_tcp;
extern const struct transport transport_tls;
extern const struct transport transport_ws;

/* A listening endpoint as the broker runs it: its configuration and, for
 * TLS, its OpenSSL context (an SSL_CTX *, shared read-only by all
 * workers; OpenSSL makes that safe). */
struct listener_cfg;
struct psk_table;
struct listener {
	const struct listener_cfg *cfg;
	const struct transport *tp;   /* what conn.c calls */
	const struct transport *base; /* under WebSockets: TCP or TLS */
	void *tls_ctx;
	/* Its psk_file's keys, with psk_hint (NULL: none), read by the
	 * handshakes of every worker and replaced by a reload: under
	 * psk_lock. */
	struct psk_table *psk;
	pthread_mutex_t psk_lock;
	bool psk_lock_made;
	uint8_t index; /* in the broker's listeners[] (and cfg.listeners[]) */
	/* http_dir opened (O_PATH), which files are opened beneath. */
	int http_dir;
	bool http_dir_open;
};

/* Builds the TLS context of a listener from its certfile, keyfile, cafile /
 * capath, require_certificate, tls_version and ciphers, and with psk_hint
 * TLS-PSK with the keys of psk_file (read now). On error writes why into
 * err and returns TERN_E_CONFIG. */
TERN_MUST_CHECK enum tern_err tls_listener_init(struct listener *l, const char *psk_file, char *err,
                                                size_t errlen);

/* SIGHUP: reads the listener's psk_file again (psk_hint listeners only;
 * TERN_OK for others); the keys read before stay when it fails
 * (TERN_E_CONFIG, why in err). Handshakes under way use one set or the
 * other, whole. */
TERN_MUST_CHECK enum tern_err tls_listener_reload_psk(struct listener *l, const char *psk_file,
                                                      char *err, size_t errlen);

/* Frees a listener's TLS context. */
void tls_listener_free(struct listener *l);

/* The username the client certificate of c stands for: its subject CN
 * (or the TLS-PSK identity it connected with) with use_identity_as_username, its whole subject (RFC 2253) with
 * use_subject_as_username; NULL when there is none or the transport is not
 * TLS. Owned by c. */
const char *tls_peer_identity(const struct conn *c);

#endif
