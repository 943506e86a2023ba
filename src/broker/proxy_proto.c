/*
 * proxy_proto.c - the PROXY protocol header decoder; see proxy_proto.h.
 *
 * Nothing in the header is trusted beyond its syntax: v1 addresses go
 * through inet_pton and ports through a strict decimal parse, v2 lengths
 * are checked against the address family's size and the buffer before a
 * byte is read, and a TLV that runs past the header ends the parse. Only
 * what ternd uses is kept: the client's address, whether it came over TLS
 * and, from the SSL TLV, the verdict on its certificate and the
 * certificate's CN.
 *
 * The SSL TLV decides who a client is on a listener with
 * use_identity_as_username, so it is read more strictly than the
 * specification asks and than mosquitto 2.1 reads it (whose sub-TLVs may
 * run past the SSL TLV, up to the header's end, and whose second SSL TLV
 * or CN replaces the first): each sub-TLV must lie within the SSL TLV,
 * which must hold its 5 fixed bytes, and a header with two SSL TLVs or two
 * CNs is bad rather than read one way or the other.
 */
#include "broker/proxy_proto.h"

#include <arpa/inet.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "tern/codec.h"

static const uint8_t v2_sig[12] = {0x0D, 0x0A, 0x0D, 0x0A, 0x00, 0x0D,
                                   0x0A, 0x51, 0x55, 0x49, 0x54, 0x0A};

#define V1_MAX               107
#define PP2_TYPE_SSL         0x20
#define PP2_SUBTYPE_SSL_CN   0x22
#define PP2_CLIENT_SSL       0x01
#define PP2_CLIENT_CERT_CONN 0x02
#define PP2_CLIENT_CERT_SESS 0x04

/* A decimal port, 0..65535, no sign, no leading garbage. */
static bool parse_port(const char *s, unsigned *out)
{
	if (!*s || strlen(s) > 5)
		return false;
	unsigned v = 0;
	for (const char *p = s; *p; p++) {
		if (*p < '0' || *p > '9')
			return false;
		v = v * 10 + (unsigned)(*p - '0');
	}
	if (v > 65535)
		return false;
	*out = v;
	return true;
}

static void info_clear(struct proxy_info *out)
{
	out->peer[0] = '\0';
	out->tls = false;
	out->cert_verified = false;
	out->verify = 0;
	out->cn[0] = '\0';
}

static enum proxy_result parse_v1(const uint8_t *buf, size_t len, size_t *used,
                                  struct proxy_info *out)
{
	static const char head[] = "PROXY ";
	size_t cmp = len < 6 ? len : 6;
	if (memcmp(buf, head, cmp) != 0)
		return PROXY_BAD;
	const uint8_t *nl = memchr(buf, '\n', len < V1_MAX ? len : V1_MAX);
	if (!nl)
		return len >= V1_MAX ? PROXY_BAD : PROXY_INCOMPLETE;
	size_t n = (size_t)(nl - buf) + 1;
	if (n < 8 || buf[n - 2] != '\r')
		return PROXY_BAD;
	char line[V1_MAX + 1];
	memcpy(line, buf, n - 2);
	line[n - 2] = '\0';
	info_clear(out);
	char *save = NULL;
	char *w[7] = {0};
	int k = 0;
	for (char *t = strtok_r(line, " ", &save); t && k < 7; t = strtok_r(NULL, " ", &save))
		w[k++] = t;
	if (k >= 2 && strcmp(w[1], "UNKNOWN") == 0) {
		/* The rest of the line is to be ignored (section 2.1). */
		*used = n;
		return PROXY_OK;
	}
	if (k != 6 || (strcmp(w[1], "TCP4") != 0 && strcmp(w[1], "TCP6") != 0))
		return PROXY_BAD;
	bool v6 = w[1][3] == '6';
	uint8_t addr[16];
	unsigned sport = 0, dport = 0;
	if (inet_pton(v6 ? AF_INET6 : AF_INET, w[2], addr) != 1 ||
	    inet_pton(v6 ? AF_INET6 : AF_INET, w[3], addr) != 1 || !parse_port(w[4], &sport) ||
	    !parse_port(w[5], &dport))
		return PROXY_BAD;
	snprintf(out->peer, sizeof(out->peer), v6 ? "[%s]:%u" : "%s:%u", w[2], sport);
	*used = n;
	return PROXY_OK;
}

/* The value v[0..len) of a PP2_TYPE_SSL TLV: client (1 byte), verify (4,
 * big-endian), then sub-TLVs within it. False when it is bad. */
static bool parse_ssl(const uint8_t *v, size_t len, struct proxy_info *out)
{
	if (len < 5)
		return false;
	uint8_t client = v[0];
	out->verify = (uint32_t)v[1] << 24 | (uint32_t)v[2] << 16 | (uint32_t)v[3] << 8 | v[4];
	out->tls = (client & PP2_CLIENT_SSL) != 0;
	/* HAProxy leaves verify 0 for a client that presented no
	 * certificate, so a zero alone verifies nothing: the flags must say
	 * one was presented. */
	out->cert_verified = out->tls &&
	                     (client & (PP2_CLIENT_CERT_CONN | PP2_CLIENT_CERT_SESS)) != 0 &&
	                     out->verify == 0;
	bool cn_seen = false;
	for (size_t at = 5; at < len;) {
		if (len - at < 3)
			return false;
		uint8_t type = v[at];
		size_t slen = (size_t)v[at + 1] << 8 | v[at + 2];
		if (slen > len - at - 3)
			return false;
		const uint8_t *sv = v + at + 3;
		if (type == PP2_SUBTYPE_SSL_CN) {
			/* It may become the username: the rules of a CONNECT's
			 * username apply (tern_utf8_name_valid(): no NUL, no
			 * control characters). An empty one names nobody. */
			if (cn_seen || slen > PROXY_CN_MAX || !tern_utf8_name_valid(sv, slen))
				return false;
			cn_seen = true;
			memcpy(out->cn, sv, slen);
			out->cn[slen] = '\0';
		}
		at += 3 + slen;
	}
	return true;
}

static enum proxy_result parse_v2(const uint8_t *buf, size_t len, size_t *used,
                                  struct proxy_info *out)
{
	size_t cmp = len < sizeof(v2_sig) ? len : sizeof(v2_sig);
	if (memcmp(buf, v2_sig, cmp) != 0)
		return PROXY_BAD;
	if (len < 16)
		return PROXY_INCOMPLETE;
	uint8_t ver_cmd = buf[12], fam = buf[13];
	size_t body = (size_t)buf[14] << 8 | buf[15];
	if ((ver_cmd >> 4) != 2 || (ver_cmd & 0x0F) > 1 || body > PROXY_V2_MAX_BODY)
		return PROXY_BAD;
	if (len < 16 + body)
		return PROXY_INCOMPLETE;
	const uint8_t *b = buf + 16;
	info_clear(out);
	size_t alen = 0;
	char host[INET6_ADDRSTRLEN];
	bool local = (ver_cmd & 0x0F) == 0;
	switch (fam >> 4) {
	case 1: /* AF_INET */
		alen = 12;
		if (body < alen)
			return PROXY_BAD;
		if (!local && (fam & 0x0F) == 1) {
			inet_ntop(AF_INET, b, host, sizeof(host));
			snprintf(out->peer, sizeof(out->peer), "%s:%u", host,
			         (unsigned)(b[8] << 8 | b[9]));
		}
		break;
	case 2: /* AF_INET6 */
		alen = 36;
		if (body < alen)
			return PROXY_BAD;
		if (!local && (fam & 0x0F) == 1) {
			inet_ntop(AF_INET6, b, host, sizeof(host));
			snprintf(out->peer, sizeof(out->peer), "[%s]:%u", host,
			         (unsigned)(b[32] << 8 | b[33]));
		}
		break;
	case 3: /* AF_UNIX: two 108-byte paths; no address to log */
		alen = 216;
		if (body < alen)
			return PROXY_BAD;
		break;
	case 0: /* AF_UNSPEC: the socket's address stands */
		break;
	default:
		return PROXY_BAD;
	}
	/* TLVs: type, 16-bit length, value. */
	bool ssl_seen = false;
	for (size_t at = alen; at < body;) {
		if (body - at < 3)
			return PROXY_BAD;
		uint8_t type = b[at];
		size_t vlen = (size_t)b[at + 1] << 8 | b[at + 2];
		if (vlen > body - at - 3)
			return PROXY_BAD;
		if (type == PP2_TYPE_SSL) {
			if (ssl_seen || !parse_ssl(b + at + 3, vlen, out))
				return PROXY_BAD;
			ssl_seen = true;
		}
		at += 3 + vlen;
	}
	*used = 16 + body;
	return PROXY_OK;
}

enum proxy_result proxy_parse(const uint8_t *buf, size_t len, int version, size_t *used,
                              struct proxy_info *out)
{
	*used = 0;
	if (len == 0)
		return PROXY_INCOMPLETE;
	return version == 2 ? parse_v2(buf, len, used, out) : parse_v1(buf, len, used, out);
}
