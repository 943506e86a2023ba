/*
 * tern/error.h - the one error type of tern.
 *
 * Every function that can fail returns an enum tern_err: TERN_OK (0) on
 * success, a negative value on failure. There are no positive "magic"
 * results; a function that also returns a count or a size does so through
 * an out-parameter. tern_strerror() gives a short static description that is
 * safe to put in a log line.
 */
#ifndef TERN_ERROR_H
#define TERN_ERROR_H

#include "tern/export.h"

#ifdef __cplusplus
extern "C" {
#endif

enum tern_err {
	TERN_OK = 0,
	/* The decoder needs more bytes; not a failure of the input. */
	TERN_E_INCOMPLETE = -1,
	/* The bytes do not follow the packet grammar (v5 reason 0x81). */
	TERN_E_MALFORMED = -2,
	/* Well-formed bytes that break a protocol rule (v5 reason 0x82). */
	TERN_E_PROTOCOL = -3,
	/* A packet larger than the maximum packet size (v5 reason 0x95). */
	TERN_E_TOO_LARGE = -4,
	/* A topic name that is not valid in a PUBLISH or will (v5 0x90). */
	TERN_E_TOPIC_NAME = -5,
	/* A topic filter that is not valid in SUBSCRIBE/UNSUBSCRIBE (0x8F). */
	TERN_E_TOPIC_FILTER = -6,
	/* CONNECT names a protocol name or level we do not speak (0x84). */
	TERN_E_UNSUPPORTED_VERSION = -7,
	/* The output buffer handed to an encoder is too small. */
	TERN_E_BUFFER = -8,
	/* Memory allocation failed. */
	TERN_E_NOMEM = -9,
	/* A system call failed; errno tells more. */
	TERN_E_SYS = -10,
	/* The peer closed the connection, or it was closed locally. */
	TERN_E_CLOSED = -11,
	/* A configuration file or flag is invalid. */
	TERN_E_CONFIG = -12,
	/* An argument is outside what the function accepts. */
	TERN_E_INVALID = -13,
	/* A configured limit was reached (queue, connections, ...). */
	TERN_E_LIMIT = -14,
	/* Something looked for was not there. */
	TERN_E_NOT_FOUND = -15,
	/* The operation did not finish in time. */
	TERN_E_TIMEOUT = -16,
	/* TLS failed: a certificate, key or CA file could not be used, the
	 * handshake or the broker's certificate check failed, or the peer sent
	 * a TLS alert (tern_client_tls_error() says which). */
	TERN_E_TLS = -17,
	/* What was asked for is taken for now (a packet identifier still in
	 * use); it may be asked again once that use ends. */
	TERN_E_BUSY = -18,
};

/* Returns a short static description of err; never NULL. */
TERN_API const char *tern_strerror(enum tern_err err);

#ifdef __cplusplus
}
#endif

#endif
