/*
 * client_ocsp.c - the check of a stapled OCSP response (see client_ocsp.h).
 *
 * The order of the checks follows what each failure tells the operator:
 * first whether there is a usable answer at all (stapled, SUCCESSFUL, a
 * BasicOCSPResponse), then whether it can be believed (its signature and
 * the signer's authority, OCSP_basic_verify), then what it says of our
 * server (revoked comes before "too old", since a revocation stays true),
 * then whether it is current, then whether it says GOOD.
 *
 * The single response for the server's certificate is found by building
 * the server's CertID with the hash each single response uses: responders
 * differ (SHA-1 is the usual one, SHA-256 the newer), and
 * OCSP_resp_find_status() alone would match only the one hash it is given.
 */
#include <stdarg.h>
#include <stdio.h>

#include <openssl/err.h>
#include <openssl/ocsp.h>

#include "client/client_ocsp.h"

static enum tern_err why_fail(char *why, size_t len, const char *fmt, ...)
        __attribute__((format(printf, 3, 4)));

/* Writes the reason, with OpenSSL's first queued reason appended when
 * there is one (and its text, which for a signer that does not verify says
 * why: "Verify error:unable to get local issuer certificate"), and clears
 * OpenSSL's queue. Returns TERN_E_TLS. */
static enum tern_err why_fail(char *why, size_t len, const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	int n = vsnprintf(why, len, fmt, ap);
	va_end(ap);
	const char *data = NULL;
	int flags = 0;
	unsigned long e = ERR_get_error_all(NULL, NULL, NULL, &data, &flags);
	const char *r = e != 0 ? ERR_reason_error_string(e) : NULL;
	if (r != NULL && n >= 0 && (size_t)n < len) {
		if ((flags & ERR_TXT_STRING) && data != NULL && data[0] != '\0')
			snprintf(why + n, len - (size_t)n, ": %s (%s)", r, data);
		else
			snprintf(why + n, len - (size_t)n, ": %s", r);
	}
	ERR_clear_error();
	return TERN_E_TLS;
}

/* The single response of bs about leaf (issued by issuer) in *out: 1,
 * none: 0, -1 when OpenSSL could not allocate. */
static int find_single(OCSP_BASICRESP *bs, X509 *leaf, X509 *issuer, OCSP_SINGLERESP **out)
{
	int n = OCSP_resp_count(bs);
	for (int i = 0; i < n; i++) {
		OCSP_SINGLERESP *s = OCSP_resp_get0(bs, i);
		const OCSP_CERTID *cid = OCSP_SINGLERESP_get0_id(s);
		ASN1_OBJECT *md_oid = NULL;
		/* get0_info only reads, whatever its prototype says. */
		if (OCSP_id_get0_info(NULL, &md_oid, NULL, NULL, (OCSP_CERTID *)cid) != 1)
			continue;
		const EVP_MD *md = EVP_get_digestbyobj(md_oid);
		if (md == NULL)
			continue; /* a hash we do not have cannot name our server */
		OCSP_CERTID *ours = OCSP_cert_to_id(md, leaf, issuer);
		if (ours == NULL)
			return -1;
		int same = OCSP_id_cmp(ours, cid) == 0;
		OCSP_CERTID_free(ours);
		if (same) {
			*out = s;
			return 1;
		}
	}
	return 0;
}

/* The part that needs the decoded response; rsp is freed by the caller. */
static enum tern_err check_basic(OCSP_BASICRESP *bs, STACK_OF(X509) * chain, X509_STORE *store,
                                 char *why, size_t whylen)
{
	X509 *leaf = sk_X509_value(chain, 0);
	X509 *issuer = sk_X509_num(chain) > 1 ? sk_X509_value(chain, 1) : leaf;
	if (sk_X509_num(chain) < 2 && X509_check_issued(leaf, leaf) != X509_V_OK)
		return why_fail(why, whylen,
		                "cannot check OCSP: the server certificate's issuer "
		                "is not in its verified chain");
	/* The verified chain holds the leaf's issuer (the usual signer) and
	 * everything above it; a delegated responder's certificate comes in
	 * the response itself. */
	ERR_clear_error();
	if (OCSP_basic_verify(bs, chain, store, 0) != 1)
		return why_fail(why, whylen, "OCSP response does not verify");
	OCSP_SINGLERESP *single = NULL;
	int found = find_single(bs, leaf, issuer, &single);
	if (found < 0) {
		ERR_clear_error();
		return TERN_E_NOMEM;
	}
	if (found == 0)
		return why_fail(why, whylen, "OCSP response does not name the server certificate");
	int reason = -1;
	ASN1_GENERALIZEDTIME *thisupd = NULL, *nextupd = NULL, *revtime = NULL;
	int status = OCSP_single_get0_status(single, &reason, &revtime, &thisupd, &nextupd);
	if (status == V_OCSP_CERTSTATUS_REVOKED) {
		if (reason >= 0)
			return why_fail(why, whylen, "server certificate revoked (%s)",
			                OCSP_crl_reason_str(reason));
		return why_fail(why, whylen, "server certificate revoked");
	}
	ERR_clear_error();
	if (OCSP_check_validity(thisupd, nextupd, TERN__OCSP_SKEW_S, -1) != 1) {
		unsigned long e = ERR_peek_error();
		if (ERR_GET_LIB(e) == ERR_LIB_OCSP && ERR_GET_REASON(e) == OCSP_R_STATUS_EXPIRED) {
			ERR_clear_error();
			return why_fail(why, whylen,
			                "OCSP response too old (its nextUpdate has passed)");
		}
		if (ERR_GET_LIB(e) == ERR_LIB_OCSP &&
		    ERR_GET_REASON(e) == OCSP_R_STATUS_NOT_YET_VALID) {
			ERR_clear_error();
			return why_fail(why, whylen,
			                "OCSP response not yet valid (its thisUpdate is ahead)");
		}
		return why_fail(why, whylen, "OCSP response has bad update times");
	}
	if (status != V_OCSP_CERTSTATUS_GOOD)
		return why_fail(why, whylen, "OCSP status of the server certificate is %s",
		                OCSP_cert_status_str(status));
	return TERN_OK;
}

enum tern_err tern__ocsp_check(const unsigned char *der, long len, STACK_OF(X509) * chain,
                               X509_STORE *store, char *why, size_t whylen)
{
	if (der == NULL || len <= 0)
		return why_fail(why, whylen, "no OCSP response stapled");
	if (chain == NULL || sk_X509_num(chain) < 1)
		return why_fail(why, whylen, "no server certificate to check OCSP for");
	ERR_clear_error();
	const unsigned char *p = der;
	OCSP_RESPONSE *rsp = d2i_OCSP_RESPONSE(NULL, &p, len);
	if (rsp == NULL)
		return why_fail(why, whylen, "stapled OCSP response is malformed");
	enum tern_err e = TERN_E_TLS;
	OCSP_BASICRESP *bs = NULL;
	int rs = OCSP_response_status(rsp);
	if (rs != OCSP_RESPONSE_STATUS_SUCCESSFUL)
		why_fail(why, whylen, "OCSP response not successful (%s)",
		         OCSP_response_status_str(rs));
	else if ((bs = OCSP_response_get1_basic(rsp)) == NULL)
		why_fail(why, whylen, "stapled OCSP response is not a basic one");
	else
		e = check_basic(bs, chain, store, why, whylen);
	OCSP_BASICRESP_free(bs);
	OCSP_RESPONSE_free(rsp);
	return e;
}
