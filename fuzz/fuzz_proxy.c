/*
 * fuzz_proxy.c - libFuzzer target for the PROXY protocol header decoder
 * (src/broker/proxy_proto.c), which reads what a listener with
 * enable_proxy_protocol gets first on every connection.
 *
 * Input: one byte for the version (even: 1, odd: 2), then the bytes as a
 * connection would bring them. Every prefix is decoded too, as a header
 * arrives in pieces: a prefix of a complete header must be "incomplete",
 * never "bad" or a different header; the bytes taken never exceed the
 * input; the address and the certificate's CN are NUL-terminated within
 * their arrays, and the CN is a valid name (it may become a username); a
 * verified certificate implies TLS and verify 0. Any disagreement aborts.
 *
 * Seeds: fuzz/corpus/fuzz_proxy/, written by fuzz/gen_proxy_seeds.py (v1
 * lines, v2 headers of every family, and the SSL TLVs HAProxy's
 * send-proxy-v2-ssl-cn writes, well-formed and not).
 */
#include <stdlib.h>
#include <string.h>

#include "broker/proxy_proto.h"
#include "tern/codec.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	if (size < 1)
		return 0;
	int version = (data[0] & 1) ? 2 : 1;
	const uint8_t *b = data + 1;
	size_t n = size - 1;
	struct proxy_info whole;
	size_t used = 0;
	enum proxy_result r = proxy_parse(b, n, version, &used, &whole);
	if (r == PROXY_OK && (used == 0 || used > n))
		abort();
	if (r != PROXY_OK)
		return 0;
	if (memchr(whole.peer, '\0', sizeof(whole.peer)) == NULL)
		abort();
	const char *cn_end = memchr(whole.cn, '\0', sizeof(whole.cn));
	if (!cn_end ||
	    !tern_utf8_name_valid((const uint8_t *)whole.cn, (size_t)(cn_end - whole.cn)))
		abort();
	if (whole.cert_verified && (!whole.tls || whole.verify != 0))
		abort();
	if (version == 1 && (whole.tls || whole.cn[0]))
		abort();
	for (size_t k = 0; k < used; k++) {
		struct proxy_info part;
		size_t u = 0;
		if (proxy_parse(b, k, version, &u, &part) != PROXY_INCOMPLETE)
			abort();
	}
	return 0;
}
