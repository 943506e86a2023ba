/*
 * client_ocsp.h - the check of a stapled OCSP response (RFC 6960, stapled
 * by TLS's status_request, RFC 6066 section 8), for tls_require_ocsp.
 *
 * Kept apart from client_tls.c because it is a pure function of the bytes
 * the server stapled, the certificates and the trust store: a unit test can
 * hand it responses made in memory (revoked, expired, signed by a stranger)
 * without a handshake.
 */
#ifndef TERN_CLIENT_OCSP_H
#define TERN_CLIENT_OCSP_H

#include <stddef.h>

#include <openssl/x509.h>

#include "tern/tern.h"

/* How far thisUpdate may lie in the future and nextUpdate in the past, in
 * seconds: clocks of a responder and a client are rarely equal (OpenSSL's
 * own `openssl ocsp` allows the same five minutes). */
#define TERN__OCSP_SKEW_S 300

/*
 * Checks the OCSP response der[0..len) (len <= 0 or der NULL: none was
 * stapled) for the server certificate chain[0], where chain is its verified
 * chain (leaf first, the trust anchor last, as SSL_get0_verified_chain()
 * gives it; chain[1] is the leaf's issuer, the leaf itself when it is a
 * self-signed trust anchor). The response must be SUCCESSFUL and signed by
 * the leaf's issuer or by a responder that issuer delegated to
 * (id-kp-OCSPSigning; its certificate in the response), the signer's chain
 * verified against store; it must hold a status for the leaf that is GOOD,
 * and be current: thisUpdate not after now and nextUpdate, when present,
 * not before now, each give or take TERN__OCSP_SKEW_S (no nextUpdate:
 * "newer information is always available", RFC 6960 section 4.2.2.1, so
 * no age limit). Nothing is kept or freed of the arguments. TERN_OK, or
 * TERN_E_TLS with a sentence in why[0..whylen) ("no OCSP response
 * stapled", "server certificate revoked (keyCompromise)", ...), or
 * TERN_E_NOMEM when OpenSSL could not allocate.
 */
TERN_MUST_CHECK enum tern_err tern__ocsp_check(const unsigned char *der, long len,
                                               STACK_OF(X509) * chain, X509_STORE *store, char *why,
                                               size_t whylen);

#endif
