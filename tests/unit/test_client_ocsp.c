/*
 * test_client_ocsp.c - the check of a stapled OCSP response
 * (client_ocsp.c, libtern's tls_require_ocsp) against responses made here
 * in memory: a CA, a server certificate it issued, responders, and
 * responses with every status, signer and update time the check must tell
 * apart (RFC 6960 sections 3.2 and 4.2.2). The handshake around it is
 * tested end to end in tests/interop/test_bridge_ocsp.py.
 */
#include <limits.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include <openssl/evp.h>
#include <openssl/ocsp.h>
#include <openssl/x509v3.h>

#include "client/client_ocsp.h"

#define NO_NEXT LONG_MIN /* a response without nextUpdate */

struct pki {
	EVP_PKEY *ca_key, *leaf_key, *resp_key, *stranger_key;
	X509 *ca, *leaf, *other_leaf;
	X509 *responder;        /* issued by ca for OCSP signing */
	X509 *plain;            /* issued by ca, without OCSP signing */
	X509 *stranger;         /* a CA that is not trusted */
	STACK_OF(X509) * chain; /* leaf, ca: the verified chain */
	X509_STORE *store;      /* ca */
	char why[256];
};

static void add_ext(X509 *x, X509 *issuer, int nid, const char *value)
{
	X509V3_CTX ctx;
	X509V3_set_ctx(&ctx, issuer, x, NULL, NULL, 0);
	X509_EXTENSION *ext = X509V3_EXT_conf_nid(NULL, &ctx, nid, value);
	assert_non_null(ext);
	assert_int_equal(X509_add_ext(x, ext, -1), 1);
	X509_EXTENSION_free(ext);
}

/* A certificate for key named cn, issued by issuer (NULL: self-signed)
 * with issuer_key; ca makes it a CA, eku (or NULL) is its extended key
 * usage. */
static X509 *make_cert(const char *cn, EVP_PKEY *key, X509 *issuer, EVP_PKEY *issuer_key,
                       long serial, bool ca, const char *eku)
{
	X509 *x = X509_new();
	assert_non_null(x);
	assert_int_equal(X509_set_version(x, 2), 1);
	assert_int_equal(ASN1_INTEGER_set(X509_get_serialNumber(x), serial), 1);
	assert_non_null(X509_gmtime_adj(X509_getm_notBefore(x), -3600));
	assert_non_null(X509_gmtime_adj(X509_getm_notAfter(x), 86400));
	assert_int_equal(X509_set_pubkey(x, key), 1);
	X509_NAME *name = X509_get_subject_name(x);
	assert_int_equal(X509_NAME_add_entry_by_txt(name, "CN", MBSTRING_ASC,
	                                            (const unsigned char *)cn, -1, -1, 0),
	                 1);
	assert_int_equal(X509_set_issuer_name(x, issuer ? X509_get_subject_name(issuer) : name), 1);
	X509 *iss = issuer ? issuer : x;
	add_ext(x, iss, NID_basic_constraints, ca ? "critical,CA:TRUE" : "CA:FALSE");
	add_ext(x, iss, NID_subject_key_identifier, "hash");
	if (eku != NULL)
		add_ext(x, iss, NID_ext_key_usage, eku);
	assert_true(X509_sign(x, issuer_key, EVP_sha256()) > 0);
	return x;
}

static int setup(void **state)
{
	struct pki *p = calloc(1, sizeof(*p));
	assert_non_null(p);
	p->ca_key = EVP_EC_gen("P-256");
	p->leaf_key = EVP_EC_gen("P-256");
	p->resp_key = EVP_EC_gen("P-256");
	p->stranger_key = EVP_EC_gen("P-256");
	assert_true(p->ca_key && p->leaf_key && p->resp_key && p->stranger_key);
	p->ca = make_cert("ca", p->ca_key, NULL, p->ca_key, 1, true, NULL);
	p->leaf = make_cert("server", p->leaf_key, p->ca, p->ca_key, 2, false, "serverAuth");
	p->other_leaf = make_cert("other", p->leaf_key, p->ca, p->ca_key, 3, false, "serverAuth");
	p->responder =
	        make_cert("responder", p->resp_key, p->ca, p->ca_key, 4, false, "OCSPSigning");
	p->plain = make_cert("plain", p->resp_key, p->ca, p->ca_key, 5, false, "serverAuth");
	p->stranger = make_cert("stranger", p->stranger_key, NULL, p->stranger_key, 1, true, NULL);
	p->chain = sk_X509_new_null();
	assert_non_null(p->chain);
	assert_true(sk_X509_push(p->chain, p->leaf) > 0);
	assert_true(sk_X509_push(p->chain, p->ca) > 0);
	p->store = X509_STORE_new();
	assert_non_null(p->store);
	assert_int_equal(X509_STORE_add_cert(p->store, p->ca), 1);
	*state = p;
	return 0;
}

static int teardown(void **state)
{
	struct pki *p = *state;
	sk_X509_free(p->chain);
	X509_STORE_free(p->store);
	X509 *certs[] = {p->ca, p->leaf, p->other_leaf, p->responder, p->plain, p->stranger};
	for (size_t i = 0; i < sizeof(certs) / sizeof(certs[0]); i++)
		X509_free(certs[i]);
	EVP_PKEY *keys[] = {p->ca_key, p->leaf_key, p->resp_key, p->stranger_key};
	for (size_t i = 0; i < sizeof(keys) / sizeof(keys[0]); i++)
		EVP_PKEY_free(keys[i]);
	free(p);
	return 0;
}

struct resp_spec {
	int status;       /* V_OCSP_CERTSTATUS_* */
	int reason;       /* OCSP_REVOKED_STATUS_*, for revoked */
	long this_off;    /* thisUpdate, seconds from now */
	long next_off;    /* nextUpdate, seconds from now, or NO_NEXT */
	const EVP_MD *md; /* the CertID's hash; NULL: SHA-1 */
	X509 *about;      /* the certificate it speaks of; NULL: the leaf */
	X509 *signer;     /* NULL: the CA */
	EVP_PKEY *signer_key;
};

/* A DER OCSPResponse (SUCCESSFUL) made from s; *len its length; free()
 * it with OPENSSL_free(). */
static unsigned char *make_resp(struct pki *p, struct resp_spec s, long *len)
{
	OCSP_BASICRESP *bs = OCSP_BASICRESP_new();
	assert_non_null(bs);
	OCSP_CERTID *id =
	        OCSP_cert_to_id(s.md ? s.md : EVP_sha1(), s.about ? s.about : p->leaf, p->ca);
	assert_non_null(id);
	ASN1_TIME *thisupd = X509_gmtime_adj(NULL, s.this_off);
	ASN1_TIME *nextupd = s.next_off == NO_NEXT ? NULL : X509_gmtime_adj(NULL, s.next_off);
	ASN1_TIME *revtime =
	        s.status == V_OCSP_CERTSTATUS_REVOKED ? X509_gmtime_adj(NULL, -7200) : NULL;
	assert_non_null(
	        OCSP_basic_add1_status(bs, id, s.status, s.reason, revtime, thisupd, nextupd));
	/* The signer's certificate goes into the response (flags 0), as
	 * responders send it. */
	assert_int_equal(OCSP_basic_sign(bs, s.signer ? s.signer : p->ca,
	                                 s.signer_key ? s.signer_key : p->ca_key, EVP_sha256(),
	                                 NULL, 0),
	                 1);
	OCSP_RESPONSE *r = OCSP_response_create(OCSP_RESPONSE_STATUS_SUCCESSFUL, bs);
	assert_non_null(r);
	unsigned char *der = NULL;
	int n = i2d_OCSP_RESPONSE(r, &der);
	assert_true(n > 0);
	*len = n;
	OCSP_RESPONSE_free(r);
	OCSP_BASICRESP_free(bs);
	OCSP_CERTID_free(id);
	ASN1_TIME_free(thisupd);
	ASN1_TIME_free(nextupd);
	ASN1_TIME_free(revtime);
	return der;
}

static struct resp_spec good(void)
{
	return (struct resp_spec){
	        .status = V_OCSP_CERTSTATUS_GOOD, .reason = -1, .this_off = -60, .next_off = 3600};
}

/* Runs the check on s: its result, and p->why. */
static enum tern_err check(struct pki *p, struct resp_spec s)
{
	long len = 0;
	unsigned char *der = make_resp(p, s, &len);
	p->why[0] = '\0';
	enum tern_err e = tern__ocsp_check(der, len, p->chain, p->store, p->why, sizeof(p->why));
	OPENSSL_free(der);
	return e;
}

static void assert_refused(struct pki *p, enum tern_err e, const char *words)
{
	assert_int_equal(e, TERN_E_TLS);
	if (strstr(p->why, words) == NULL)
		fail_msg("expected \"%s\" in \"%s\"", words, p->why);
}

static void test_good_response_signed_by_the_issuer_is_accepted(void **state)
{
	struct pki *p = *state;
	assert_int_equal(check(p, good()), TERN_OK);
}

/* RFC 6960 4.2.1: the CertID may use any hash; responders that answer
 * SHA-256 CertIDs name our server as well as SHA-1 ones. */
static void test_sha256_certid_names_the_server_too(void **state)
{
	struct pki *p = *state;
	struct resp_spec s = good();
	s.md = EVP_sha256();
	assert_int_equal(check(p, s), TERN_OK);
}

/* RFC 6960 4.2.2.2: a responder the CA delegated to, with
 * id-kp-OCSPSigning, may sign. */
static void test_delegated_responder_is_accepted(void **state)
{
	struct pki *p = *state;
	struct resp_spec s = good();
	s.signer = p->responder;
	s.signer_key = p->resp_key;
	assert_int_equal(check(p, s), TERN_OK);
}

/* The same CA's certificate without id-kp-OCSPSigning may not. */
static void test_certificate_without_ocsp_signing_may_not_sign(void **state)
{
	struct pki *p = *state;
	struct resp_spec s = good();
	s.signer = p->plain;
	s.signer_key = p->resp_key;
	assert_refused(p, check(p, s), "OCSP response does not verify");
}

static void test_response_signed_by_an_untrusted_ca_does_not_verify(void **state)
{
	struct pki *p = *state;
	struct resp_spec s = good();
	s.signer = p->stranger;
	s.signer_key = p->stranger_key;
	assert_refused(p, check(p, s), "OCSP response does not verify");
}

static void test_nothing_stapled_is_refused(void **state)
{
	struct pki *p = *state;
	assert_int_equal(tern__ocsp_check(NULL, -1, p->chain, p->store, p->why, sizeof(p->why)),
	                 TERN_E_TLS);
	assert_string_equal(p->why, "no OCSP response stapled");
}

static void test_revoked_is_refused_with_its_reason(void **state)
{
	struct pki *p = *state;
	struct resp_spec s = good();
	s.status = V_OCSP_CERTSTATUS_REVOKED;
	s.reason = OCSP_REVOKED_STATUS_KEYCOMPROMISE;
	assert_refused(p, check(p, s), "server certificate revoked (keyCompromise)");
}

static void test_unknown_is_refused(void **state)
{
	struct pki *p = *state;
	struct resp_spec s = good();
	s.status = V_OCSP_CERTSTATUS_UNKNOWN;
	assert_refused(p, check(p, s), "is unknown");
}

static void test_past_next_update_is_too_old(void **state)
{
	struct pki *p = *state;
	struct resp_spec s = good();
	s.this_off = -7200;
	s.next_off = -3600;
	assert_refused(p, check(p, s), "OCSP response too old");
}

/* Clock skew: within TERN__OCSP_SKEW_S either way it still counts. */
static void test_times_within_the_skew_are_accepted(void **state)
{
	struct pki *p = *state;
	struct resp_spec s = good();
	s.this_off = -7200;
	s.next_off = -(TERN__OCSP_SKEW_S - 60);
	assert_int_equal(check(p, s), TERN_OK);
	s = good();
	s.this_off = TERN__OCSP_SKEW_S - 60;
	assert_int_equal(check(p, s), TERN_OK);
}

static void test_future_this_update_is_not_yet_valid(void **state)
{
	struct pki *p = *state;
	struct resp_spec s = good();
	s.this_off = 3600;
	s.next_off = 7200;
	assert_refused(p, check(p, s), "not yet valid");
}

/* RFC 6960 4.2.2.1: without nextUpdate newer information is always
 * available; an old thisUpdate alone does not refuse it. */
static void test_no_next_update_has_no_age_limit(void **state)
{
	struct pki *p = *state;
	struct resp_spec s = good();
	s.this_off = -86400;
	s.next_off = NO_NEXT;
	assert_int_equal(check(p, s), TERN_OK);
}

static void test_response_about_another_certificate_is_refused(void **state)
{
	struct pki *p = *state;
	struct resp_spec s = good();
	s.about = p->other_leaf;
	assert_refused(p, check(p, s), "does not name the server certificate");
}

/* RFC 6960 4.2.1: only a successful response carries a status. */
static void test_unsuccessful_response_is_refused(void **state)
{
	struct pki *p = *state;
	OCSP_RESPONSE *r = OCSP_response_create(OCSP_RESPONSE_STATUS_TRYLATER, NULL);
	assert_non_null(r);
	unsigned char *der = NULL;
	int n = i2d_OCSP_RESPONSE(r, &der);
	assert_true(n > 0);
	enum tern_err e = tern__ocsp_check(der, n, p->chain, p->store, p->why, sizeof(p->why));
	OPENSSL_free(der);
	OCSP_RESPONSE_free(r);
	assert_refused(p, e, "OCSP response not successful (trylater)");
}

static void test_garbage_is_malformed(void **state)
{
	struct pki *p = *state;
	static const unsigned char junk[] = {0x30, 0x82, 0xff, 0xff, 0x01};
	assert_refused(
	        p, tern__ocsp_check(junk, sizeof(junk), p->chain, p->store, p->why, sizeof(p->why)),
	        "malformed");
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	        cmocka_unit_test(test_good_response_signed_by_the_issuer_is_accepted),
	        cmocka_unit_test(test_sha256_certid_names_the_server_too),
	        cmocka_unit_test(test_delegated_responder_is_accepted),
	        cmocka_unit_test(test_certificate_without_ocsp_signing_may_not_sign),
	        cmocka_unit_test(test_response_signed_by_an_untrusted_ca_does_not_verify),
	        cmocka_unit_test(test_nothing_stapled_is_refused),
	        cmocka_unit_test(test_revoked_is_refused_with_its_reason),
	        cmocka_unit_test(test_unknown_is_refused),
	        cmocka_unit_test(test_past_next_update_is_too_old),
	        cmocka_unit_test(test_times_within_the_skew_are_accepted),
	        cmocka_unit_test(test_future_this_update_is_not_yet_valid),
	        cmocka_unit_test(test_no_next_update_has_no_age_limit),
	        cmocka_unit_test(test_response_about_another_certificate_is_refused),
	        cmocka_unit_test(test_unsuccessful_response_is_refused),
	        cmocka_unit_test(test_garbage_is_malformed),
	};
	return cmocka_run_group_tests(tests, setup, teardown);
}
