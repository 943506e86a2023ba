/*
 * proxy_proto.h - the HAProxy PROXY protocol header, versions 1 (text) and
 * 2 (binary), as a listener with enable_proxy_protocol reads it at the start
 * of every connection (mosquitto 2.1's option): a load balancer in front of
 * ternd says there who the client is.
 *
 * A pure decoder over bytes, as src/proto's are: proxy_parse() says how
 * much of the buffer the header took, that it needs more, or that the bytes
 * are not a header of that version. Specification:
 * https://www.haproxy.org/download/2.9/doc/proxy-protocol.txt
 *
 * A v2 header from a proxy that ended the client's TLS (HAProxy's
 * send-proxy-v2-ssl, send-proxy-v2-ssl-cn) says in its PP2_TYPE_SSL TLV
 * (section 2.2.5) whether the client came over TLS, whether it presented a
 * certificate and whether the proxy verified it, and the certificate's CN:
 * what require_certificate and use_identity_as_username read on such a
 * listener (conn_proxy.c).
 */
#ifndef TERN_BROKER_PROXY_PROTO_H
#define TERN_BROKER_PROXY_PROTO_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* The longest header taken: a v1 line is at most 107 bytes; a v2 header is
 * its 16 bytes and at most this much more (addresses and TLVs), well above
 * the 536 bytes the specification asks a receiver to take. */
#define PROXY_V2_MAX_BODY 2048

/* The longest client certificate CN taken, in bytes: RFC 5280's
 * ub-common-name is 64 characters, at most 4 bytes each in UTF-8. A longer
 * one makes the header bad. */
#define PROXY_CN_MAX 256

struct proxy_info {
	/* The client's address as "1.2.3.4:5678" or "[::1]:5678"; "" when
	 * the header names none (v1 UNKNOWN, v2 LOCAL or an unspecified
	 * family): the socket's own address stands. */
	char peer[64];
	/* v2 only; false, 0 and "" when the header has no PP2_TYPE_SSL
	 * TLV (v1 carries none of this). */
	bool tls;           /* PP2_CLIENT_SSL: the client used TLS */
	bool cert_verified; /* ...and presented a certificate (on this
	                     * connection or its TLS session:
	                     * PP2_CLIENT_CERT_CONN or _SESS) that the proxy
	                     * verified (verify 0) */
	uint32_t verify;    /* the TLV's verify field: 0 verified */
	/* The certificate's CN (PP2_SUBTYPE_SSL_CN), NUL-terminated: valid
	 * UTF-8 without NUL or control characters (as a username must be),
	 * 1..PROXY_CN_MAX bytes; "" when the header names none, whether or
	 * not the certificate was verified. */
	char cn[PROXY_CN_MAX + 1];
};

/* What proxy_parse() found. */
enum proxy_result {
	PROXY_OK,         /* a header of *used bytes; out is filled */
	PROXY_INCOMPLETE, /* a header's start: wait for more bytes */
	PROXY_BAD,        /* not a valid header of that version */
};

/* Decodes the version (1 or 2) header at the start of buf[0..len). A v2
 * header is bad, besides its syntax, when a TLV or a PP2_TYPE_SSL sub-TLV
 * runs past the one around it, the SSL TLV is shorter than its 5 fixed
 * bytes, or comes twice, or holds two CNs or a CN that is not a valid
 * name (above). out is filled with PROXY_OK only. */
enum proxy_result proxy_parse(const uint8_t *buf, size_t len, int version, size_t *used,
                              struct proxy_info *out);

#endif
