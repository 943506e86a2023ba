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

struct proxy_info {
	/* The client's address as "1.2.3.4:5678" or "[::1]:5678"; "" when
	 * the header names none (v1 UNKNOWN, v2 LOCAL or an unspecified
	 * family): the socket's own address stands. */
	char peer[64];
	bool tls; /* v2: a PP2_TYPE_SSL TLV says the client used TLS */
};

/* What proxy_parse() found. */
enum proxy_result {
	PROXY_OK,         /* a header of *used bytes; out is filled */
	PROXY_INCOMPLETE, /* a header's start: wait for more bytes */
	PROXY_BAD,        /* not a valid header of that version */
};

/* Decodes the version (1 or 2) header at the start of buf[0..len). */
enum proxy_result proxy_parse(const uint8_t *buf, size_t len, int version, size_t *used,
                              struct proxy_info *out);

#endif
