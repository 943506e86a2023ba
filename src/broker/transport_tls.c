/*
 * transport_tls.c - TLS with OpenSSL 3, on non-blocking sockets.
 *
 * The handshake runs inside the first reads: SSL_read() drives it, and
 * whenever OpenSSL needs the socket writable (or, for a write, readable)
 * the conn's tp_read_wants_write / tp_write_wants_read flag tells conn.c
 * which readiness to wait for. One SSL_CTX per listener is shared by all
 * workers (OpenSSL's contexts are safe to share once configured); each
 * connection has its own SSL object.
 *
 * Settings follow mosquitto's listener options: certfile, keyfile, cafile,
 * capath, crlfile, dhparamfile, require_certificate,
 * use_identity_as_username, use_subject_as_username, tls_version (the
 * minimum; TLS 1.2 unless raised), ciphers (TLS 1.2) and ciphers_tls1.3.
 * Renegotiation is refused and buffers are released while idle.
 *
 * TLS-PSK (psk_hint, with psk_file's keys, psk.h): OpenSSL's PSK server
 * callback, which serves TLS 1.3 (the key used with SHA-256) and TLS 1.2's
 * PSK cipher suites (added to the default list when `ciphers` does not
 * say). A listener may have a certificate too; a client then picks. With
 * use_identity_as_username the PSK identity is the username, as in
 * mosquitto.
 */
#include <errno.h>
#include <openssl/err.h>
#include <openssl/pem.h>
#include <openssl/ssl.h>
#include <openssl/x509.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "broker/config.h"
#include "broker/broker.h"
#include "broker/conn.h"
#include "broker/conn_internal.h"
#include "broker/psk.h"
#include "broker/transport.h"
#include "broker/worker.h"
#include "util/log.h"

struct tls_conn {
	SSL *ssl;
	char *identity; /* the username its client certificate stands for */
	/* The TLS-PSK identity the handshake took (the callback keeps it:
	 * OpenSSL does not say it after a TLS 1.3 handshake); owned. */
	char *psk_identity;
	bool handshaken;
	bool goodbye_sent; /* our close_notify is written */
};

static void ssl_error_text(char *out, size_t len)
{
	unsigned long e = ERR_get_error();
	if (!e) {
		snprintf(out, len, "unknown error");
		return;
	}
	ERR_error_string_n(e, out, len);
	ERR_clear_error();
}

/* dhparamfile: DH parameters (PEM) for the DHE ciphers of TLS 1.2, which
 * OpenSSL offers only with them. */
static TERN_MUST_CHECK bool load_dhparams(SSL_CTX *ctx, const char *path)
{
	BIO *bio = BIO_new_file(path, "r");
	if (!bio)
		return false;
	EVP_PKEY *dh = PEM_read_bio_Parameters(bio, NULL);
	BIO_free(bio);
	if (!dh || EVP_PKEY_base_id(dh) != EVP_PKEY_DH) {
		EVP_PKEY_free(dh);
		return false;
	}
	if (SSL_CTX_set0_tmp_dh_pkey(ctx, dh) != 1) {
		EVP_PKEY_free(dh);
		return false;
	}
	return true; /* the context owns dh now */
}

/* crlfile: revoked client certificates; every chain is checked against
 * it, as mosquitto does (X509_V_FLAG_CRL_CHECK). */
static TERN_MUST_CHECK bool load_crl(SSL_CTX *ctx, const char *path)
{
	X509_STORE *store = SSL_CTX_get_cert_store(ctx);
	X509_LOOKUP *lookup = store ? X509_STORE_add_lookup(store, X509_LOOKUP_file()) : NULL;
	if (!lookup || X509_load_crl_file(lookup, path, X509_FILETYPE_PEM) < 1)
		return false;
	X509_STORE_set_flags(store, X509_V_FLAG_CRL_CHECK);
	return true;
}

/* OpenSSL's PSK server callback: the key of identity from the listener's
 * table (the context's app data), or 0 to fail the handshake. */
static unsigned int psk_server_cb(SSL *ssl, const char *identity, unsigned char *psk,
                                  unsigned int max_psk_len)
{
	struct listener *l = SSL_CTX_get_app_data(SSL_get_SSL_CTX(ssl));
	struct tls_conn *t = SSL_get_app_data(ssl);
	if (!l || !t)
		return 0;
	pthread_mutex_lock(&l->psk_lock);
	size_t n = psk_key(l->psk, identity, psk, max_psk_len);
	pthread_mutex_unlock(&l->psk_lock);
	if (n) {
		free(t->psk_identity);
		t->psk_identity = strdup(identity);
		if (!t->psk_identity)
			return 0;
	}
	return (unsigned int)n;
}

/* TLS-PSK on ctx: the hint, the callback and the keys of psk_file. */
static TERN_MUST_CHECK enum tern_err psk_setup(struct listener *l, SSL_CTX *ctx,
                                               const char *psk_file, char *err, size_t errlen)
{
	const struct listener_cfg *cfg = l->cfg;
	char why[512];
	enum tern_err rc = psk_load(psk_file, &l->psk, why, sizeof(why));
	if (rc) {
		snprintf(err, errlen, "listener %u: psk_file %s", cfg->port, why);
		return TERN_E_CONFIG;
	}
	if (pthread_mutex_init(&l->psk_lock, NULL) != 0) {
		snprintf(err, errlen, "listener %u: cannot make a mutex", cfg->port);
		return TERN_E_CONFIG;
	}
	l->psk_lock_made = true;
	if (SSL_CTX_use_psk_identity_hint(ctx, cfg->psk_hint) != 1) {
		snprintf(err, errlen, "listener %u: psk_hint refused by OpenSSL", cfg->port);
		return TERN_E_CONFIG;
	}
	SSL_CTX_set_app_data(ctx, l);
	SSL_CTX_set_psk_server_callback(ctx, psk_server_cb);
	/* TLS 1.2 PSK suites are not in OpenSSL's default list. */
	if (!cfg->ciphers[0] && SSL_CTX_set_cipher_list(ctx, "DEFAULT:PSK") != 1) {
		snprintf(err, errlen, "listener %u: cannot offer the PSK cipher suites", cfg->port);
		return TERN_E_CONFIG;
	}
	return TERN_OK;
}

enum tern_err tls_listener_init(struct listener *l, const char *psk_file, char *err, size_t errlen)
{
	const struct listener_cfg *cfg = l->cfg;
	char why[256];
	SSL_CTX *ctx = SSL_CTX_new(TLS_server_method());
	if (!ctx) {
		snprintf(err, errlen, "cannot create a TLS context");
		return TERN_E_CONFIG;
	}
	int min = TLS1_2_VERSION;
	if (strcmp(cfg->tls_version, "tlsv1.3") == 0)
		min = TLS1_3_VERSION;
	SSL_CTX_set_min_proto_version(ctx, min);
	SSL_CTX_set_options(ctx, SSL_OP_NO_RENEGOTIATION | SSL_OP_CIPHER_SERVER_PREFERENCE);
	SSL_CTX_set_mode(ctx, SSL_MODE_ENABLE_PARTIAL_WRITE | SSL_MODE_ACCEPT_MOVING_WRITE_BUFFER |
	                              SSL_MODE_RELEASE_BUFFERS);
	const char *step = NULL;
	if (cfg->certfile[0] && SSL_CTX_use_certificate_chain_file(ctx, cfg->certfile) != 1)
		step = "certfile";
	else if (cfg->certfile[0] &&
	         SSL_CTX_use_PrivateKey_file(ctx, cfg->keyfile, SSL_FILETYPE_PEM) != 1)
		step = "keyfile";
	else if (cfg->certfile[0] && SSL_CTX_check_private_key(ctx) != 1)
		step = "keyfile does not match certfile";
	else if ((cfg->cafile[0] || cfg->capath[0]) &&
	         SSL_CTX_load_verify_locations(ctx, cfg->cafile[0] ? cfg->cafile : NULL,
	                                       cfg->capath[0] ? cfg->capath : NULL) != 1)
		step = "cafile/capath";
	else if (cfg->ciphers[0] && SSL_CTX_set_cipher_list(ctx, cfg->ciphers) != 1)
		step = "ciphers";
	else if (cfg->ciphers_tls13[0] && SSL_CTX_set_ciphersuites(ctx, cfg->ciphers_tls13) != 1)
		step = "ciphers_tls1.3";
	else if (cfg->crlfile[0] && !load_crl(ctx, cfg->crlfile))
		step = "crlfile";
	else if (cfg->dhparamfile[0] && !load_dhparams(ctx, cfg->dhparamfile))
		step = "dhparamfile (DH parameters in PEM)";
	if (step) {
		ssl_error_text(why, sizeof(why));
		snprintf(err, errlen, "listener %u: %s: %s", cfg->port, step, why);
		SSL_CTX_free(ctx);
		return TERN_E_CONFIG;
	}
	if (cfg->psk_hint[0] && psk_setup(l, ctx, psk_file, err, errlen)) {
		SSL_CTX_free(ctx);
		tls_listener_free(l);
		return TERN_E_CONFIG;
	}
	/* Sessions are resumed only where they were made. Without a session
	 * id context OpenSSL fails the handshake of every client that
	 * resumes a session on a listener that verifies certificates
	 * ("session id context uninitialized"), since it cannot tell whether
	 * the session was verified the same way. Mosquitto sets one too. */
	char sid[SSL_MAX_SID_CTX_LENGTH]; /* "ternd:65535:verify" at most */
	int sid_len = snprintf(sid, sizeof(sid), "ternd:%u:%s", cfg->port,
	                       cfg->require_certificate ? "verify" : "any");
	SSL_CTX_set_session_id_context(ctx, (const unsigned char *)sid, (unsigned)sid_len);
	if (cfg->require_certificate) {
		if (!cfg->cafile[0] && !cfg->capath[0]) {
			snprintf(err, errlen,
			         "listener %u: require_certificate needs cafile or capath",
			         cfg->port);
			SSL_CTX_free(ctx);
			return TERN_E_CONFIG;
		}
		SSL_CTX_set_verify(ctx, SSL_VERIFY_PEER | SSL_VERIFY_FAIL_IF_NO_PEER_CERT, NULL);
	} else if ((cfg->use_identity_as_username || cfg->use_subject_as_username) &&
	           (cfg->cafile[0] || cfg->capath[0])) {
		/* The username comes from a certificate that need not be
		 * there: it is asked for, and checked when shown; a client
		 * without one is refused at CONNECT (conn_sink.c). mosquitto
		 * 2.0 does not ask, and so refuses every client. */
		SSL_CTX_set_verify(ctx, SSL_VERIFY_PEER, NULL);
	}
	l->tls_ctx = ctx;
	return TERN_OK;
}

enum tern_err tls_listener_reload_psk(struct listener *l, const char *psk_file, char *err,
                                      size_t errlen)
{
	if (!l->psk_lock_made)
		return TERN_OK;
	struct psk_table *fresh = NULL;
	char why[512];
	if (psk_load(psk_file, &fresh, why, sizeof(why)) != TERN_OK) {
		snprintf(err, errlen, "listener %u: psk_file %s", l->cfg->port, why);
		return TERN_E_CONFIG;
	}
	pthread_mutex_lock(&l->psk_lock);
	struct psk_table *old = l->psk;
	l->psk = fresh;
	pthread_mutex_unlock(&l->psk_lock);
	psk_free(old);
	return TERN_OK;
}

void tls_listener_free(struct listener *l)
{
	SSL_CTX_free(l->tls_ctx);
	l->tls_ctx = NULL;
	psk_free(l->psk);
	l->psk = NULL;
	if (l->psk_lock_made)
		pthread_mutex_destroy(&l->psk_lock);
	l->psk_lock_made = false;
}

static TERN_MUST_CHECK enum tern_err tls_open(struct conn *c, const struct listener *l)
{
	struct tls_conn *t = calloc(1, sizeof(*t));
	if (!t)
		return TERN_E_NOMEM;
	t->ssl = SSL_new(l->tls_ctx);
	if (!t->ssl || SSL_set_fd(t->ssl, c->fd) != 1) {
		SSL_free(t->ssl);
		free(t);
		return TERN_E_NOMEM;
	}
	SSL_set_accept_state(t->ssl);
	SSL_set_app_data(t->ssl, t);
	c->tls = t;
	return TERN_OK;
}

/* The subject of cert as RFC 2253 text ("CN=alice,O=Example"), as
 * mosquitto's use_subject_as_username writes it; NULL out of memory. */
static char *subject_text(X509 *cert)
{
	BIO *bio = BIO_new(BIO_s_mem());
	if (!bio)
		return NULL;
	char *out = NULL;
	if (X509_NAME_print_ex(bio, X509_get_subject_name(cert), 0, XN_FLAG_RFC2253) >= 0) {
		char *data = NULL;
		long len = BIO_get_mem_data(bio, &data);
		if (len >= 0 && (out = malloc((size_t)len + 1))) {
			memcpy(out, data, (size_t)len);
			out[len] = 0;
		}
	}
	BIO_free(bio);
	return out;
}

/* Keeps the username the client certificate stands for once the
 * handshake is done: its CN, or its whole subject. */
static void handshake_done(struct conn *c, struct tls_conn *t)
{
	t->handshaken = true;
	const struct listener_cfg *cfg = c->listener->cfg;
	if (!cfg->use_identity_as_username && !cfg->use_subject_as_username)
		return;
	if (t->psk_identity && cfg->use_identity_as_username) {
		t->identity = strdup(t->psk_identity);
		return;
	}
	X509 *cert = SSL_get1_peer_certificate(t->ssl);
	if (!cert)
		return;
	if (cfg->use_identity_as_username) {
		char cn[256];
		int n = X509_NAME_get_text_by_NID(X509_get_subject_name(cert), NID_commonName, cn,
		                                  sizeof(cn));
		if (n > 0 && (size_t)n < sizeof(cn))
			t->identity = strdup(cn);
	} else {
		t->identity = subject_text(cert);
	}
	X509_free(cert);
}

/* Maps an OpenSSL result to ours. */
static TERN_MUST_CHECK enum tern_err outcome(struct conn *c, struct tls_conn *t, int n,
                                             bool reading)
{
	int e = SSL_get_error(t->ssl, n);
	switch (e) {
	case SSL_ERROR_WANT_READ:
		if (!reading)
			c->tp_write_wants_read = true;
		return TERN_E_INCOMPLETE;
	case SSL_ERROR_WANT_WRITE:
		if (reading)
			c->tp_read_wants_write = true;
		return TERN_E_INCOMPLETE;
	case SSL_ERROR_ZERO_RETURN:
		return TERN_E_CLOSED;
	case SSL_ERROR_SYSCALL:
		ERR_clear_error();
		if (n == 0 || errno == 0)
			return TERN_E_CLOSED; /* closed without close_notify */
		if (errno == EAGAIN || errno == EINTR)
			return TERN_E_INCOMPLETE;
		return TERN_E_SYS;
	default: {
		char why[256];
		ssl_error_text(why, sizeof(why));
		/* "certificate verify failed" says little: the log says why
		 * (revoked, expired, unknown issuer, ...). */
		long v = SSL_get_verify_result(t->ssl);
		log_write(&c->w->broker->log, LOG_TYPE_NOTICE, "TLS error from %s: %s%s%s%s",
		          conn_peer(c, (char[64]){0}), why, v != X509_V_OK ? " (" : "",
		          v != X509_V_OK ? X509_verify_cert_error_string(v) : "",
		          v != X509_V_OK ? ")" : "");
		return TERN_E_TLS;
	}
	}
}

static TERN_MUST_CHECK enum tern_err tls_read(struct conn *c, void *buf, size_t len, size_t *got)
{
	struct tls_conn *t = c->tls;
	*got = 0;
	c->tp_read_wants_write = false;
	ERR_clear_error();
	int n = SSL_read(t->ssl, buf, len > INT32_MAX ? INT32_MAX : (int)len);
	if (!t->handshaken && SSL_is_init_finished(t->ssl))
		handshake_done(c, t);
	if (n > 0) {
		*got = (size_t)n;
		return TERN_OK;
	}
	return outcome(c, t, n, true);
}

static TERN_MUST_CHECK enum tern_err tls_write(struct conn *c, const void *buf, size_t len,
                                               size_t *put)
{
	struct tls_conn *t = c->tls;
	*put = 0;
	if (len == 0)
		return TERN_OK;
	c->tp_write_wants_read = false;
	ERR_clear_error();
	int n = SSL_write(t->ssl, buf, len > INT32_MAX ? INT32_MAX : (int)len);
	if (n > 0) {
		*put = (size_t)n;
		return TERN_OK;
	}
	return outcome(c, t, n, false);
}

static bool tls_out_pending(const struct conn *c)
{
	(void)c;
	return false;
}

static bool tls_pending(const struct conn *c)
{
	const struct tls_conn *t = c->tls;
	return t && SSL_pending(t->ssl) > 0;
}

/* Our close_notify: the peer learns the stream ended here, not that it
 * was cut (the peer's own close_notify is not waited for). */
static TERN_MUST_CHECK enum tern_err tls_goodbye(struct conn *c)
{
	struct tls_conn *t = c->tls;
	if (!t || !t->handshaken || t->goodbye_sent)
		return TERN_OK;
	ERR_clear_error();
	int r = SSL_shutdown(t->ssl);
	if (r >= 0) {
		t->goodbye_sent = true;
		return TERN_OK;
	}
	int e = SSL_get_error(t->ssl, r);
	ERR_clear_error();
	return e == SSL_ERROR_WANT_WRITE || e == SSL_ERROR_WANT_READ ? TERN_E_INCOMPLETE
	                                                             : TERN_E_TLS;
}

static void tls_close(struct conn *c)
{
	struct tls_conn *t = c->tls;
	if (!t)
		return;
	if (t->handshaken && !t->goodbye_sent) {
		/* One non-blocking try at close_notify; nobody waits for it. */
		ERR_clear_error();
		SSL_shutdown(t->ssl);
		ERR_clear_error();
	}
	SSL_free(t->ssl);
	free(t->identity);
	free(t->psk_identity);
	free(t);
	c->tls = NULL;
}

const char *tls_peer_identity(const struct conn *c)
{
	if (!c->tls)
		return NULL;
	return ((const struct tls_conn *)c->tls)->identity;
}

const struct transport transport_tls = {
        .name = "tls",
        .open = tls_open,
        .read = tls_read,
        .write = tls_write,
        .out_pending = tls_out_pending,
        .pending = tls_pending,
        .goodbye = tls_goodbye,
        .close = tls_close,
};
