/*
 * client_tls.c - TLS for libtern with OpenSSL 3: the context made from the
 * connection options, the non-blocking handshake, reads and writes.
 *
 * client_io.c knows TLS only as a handful of calls (client_internal.h):
 * tern__tls_begin() once the TCP connect is done, tern__tls_handshake()
 * from step while the state is TLS, then tern__tls_read() / _write() in
 * place of recv() / send(), and tern__tls_end() before the fd is closed.
 * Everything OpenSSL is here.
 *
 * The context (SSL_CTX) is made when a connect starts, from the options, so
 * that a CA file that cannot be read fails tern_client_connect_start() at
 * once rather than every reconnect; the files are read then and not again.
 * Each connection gets its own SSL object from it. Verification follows
 * what every TLS client should do and what mosquitto's clients do: the
 * chain must lead to a trusted CA (tls_cafile / tls_capath, else the
 * system's store) and the certificate must name the host we connect to,
 * checked by OpenSSL itself (SSL_set1_host for a DNS name,
 * X509_VERIFY_PARAM_set1_ip_asc for an IP address) during the handshake.
 * tls_insecure drops the name check only, as mosquitto's --insecure does.
 *
 * tls_require_ocsp asks the server for a stapled OCSP response
 * (status_request) and fails the handshake unless one comes that
 * client_ocsp.c accepts. OpenSSL calls our status callback once the
 * server's certificate has been verified (after ServerHelloDone in TLS 1.2,
 * after CertificateVerify in 1.3), so the verified chain is there to name
 * the issuer; the callback's verdict is kept in the struct tern__tls,
 * since OpenSSL reports only "invalid status response" for it.
 *
 * I/O goes through a small BIO of our own rather than OpenSSL's socket
 * BIO, because that one writes with write(2): a broker that has gone away
 * would raise SIGPIPE and kill the application, and a library must not
 * install signal handlers. Ours uses send(MSG_NOSIGNAL) and recv() on the
 * non-blocking fd, and tells OpenSSL to retry on EAGAIN.
 *
 * Partial writes are enabled (SSL_MODE_ENABLE_PARTIAL_WRITE) so that the
 * output buffer drains like a plain socket's, and the buffer may move
 * between a write that would block and its retry
 * (SSL_MODE_ACCEPT_MOVING_WRITE_BUFFER): client_io.c compacts and grows
 * it. OpenSSL decrypts whole records, so input can wait inside it while the
 * fd is not readable; tern__tls_pending() lets the caller's loop know
 * (tern_client_timeout_ms() returns 0 then).
 *
 * Errors become TERN_E_TLS with a sentence in c->tls_err (the X.509 verify
 * result when the certificate check failed, else OpenSSL's reason), except
 * an orderly or abrupt close by the peer after the handshake, which is
 * TERN_E_CLOSED as it is on plain TCP.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <limits.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>

#include <openssl/err.h>
#include <openssl/ssl.h>
#include <openssl/x509v3.h>

#include "client/client_internal.h"
#include "client/client_ocsp.h"

struct tern__tls {
	SSL_CTX *ctx;
	BIO_METHOD *bio_meth; /* our socket BIO (see above) */
	SSL *ssl;             /* the current connection's session, or NULL */
	char *server_name;    /* tls_server_name, or NULL: the host */
	bool insecure;        /* no name check */
	bool want_write;      /* the last operation waits for POLLOUT */
	bool handshake_done;
	/* tls_require_ocsp: why the stapled response was refused ("" when it
	 * was not), set by the status callback. */
	char ocsp_err[192];
	/* TLS-PSK: the identity and the key, copied from the options. */
	char psk_identity[129];
	unsigned char psk[256];
	size_t psk_len;
};

/* ---- error messages ---- */

/* Writes "<prefix>: <OpenSSL's reason>" (or the prefix alone when OpenSSL
 * has nothing queued) to c->tls_err and clears OpenSSL's error queue. The
 * first queued error is the root cause (a missing file, a bad PEM line). */
static void tls_error(struct tern_client *c, const char *fmt, ...)
        __attribute__((format(printf, 2, 3)));

static void tls_error(struct tern_client *c, const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	int n = vsnprintf(c->tls_err, sizeof(c->tls_err), fmt, ap);
	va_end(ap);
	unsigned long e = ERR_get_error();
	if (e != 0 && n >= 0 && (size_t)n < sizeof(c->tls_err)) {
		const char *why = ERR_SYSTEM_ERROR(e) ? strerror(ERR_GET_REASON(e))
		                                      : ERR_reason_error_string(e);
		char buf[128];
		if (why == NULL) {
			ERR_error_string_n(e, buf, sizeof(buf));
			why = buf;
		}
		snprintf(c->tls_err + n, sizeof(c->tls_err) - (size_t)n, ": %s", why);
	}
	ERR_clear_error();
}

/* ---- our socket BIO ---- */

static int bio_fd(BIO *b)
{
	return (int)(intptr_t)BIO_get_data(b);
}

static int bio_write(BIO *b, const char *buf, int len)
{
	ssize_t n;
	BIO_clear_retry_flags(b);
	do
		n = send(bio_fd(b), buf, (size_t)len, MSG_NOSIGNAL | MSG_DONTWAIT);
	while (n < 0 && errno == EINTR);
	if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK))
		BIO_set_retry_write(b);
	return (int)n;
}

static int bio_read(BIO *b, char *buf, int len)
{
	ssize_t n;
	BIO_clear_retry_flags(b);
	do
		n = recv(bio_fd(b), buf, (size_t)len, MSG_DONTWAIT);
	while (n < 0 && errno == EINTR);
	if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK))
		BIO_set_retry_read(b);
	return (int)n;
}

static long bio_ctrl(BIO *b, int cmd, long num, void *ptr)
{
	(void)b;
	(void)num;
	(void)ptr;
	/* Nothing is buffered here: a flush has nothing to do. Everything
	 * else (kTLS, fd queries, ...) is unsupported, which OpenSSL
	 * handles. */
	return cmd == BIO_CTRL_FLUSH ? 1 : 0;
}

static BIO_METHOD *bio_method_new(void)
{
	BIO_METHOD *m = BIO_meth_new(BIO_get_new_index() | BIO_TYPE_SOURCE_SINK, "tern socket");
	if (m == NULL)
		return NULL;
	if (BIO_meth_set_write(m, bio_write) != 1 || BIO_meth_set_read(m, bio_read) != 1 ||
	    BIO_meth_set_ctrl(m, bio_ctrl) != 1) {
		BIO_meth_free(m);
		return NULL;
	}
	return m;
}

/* ---- the context ---- */

/* Refuses to prompt for a key's passphrase on the terminal (OpenSSL's
 * default): an encrypted key then fails to load, with an error. */
static int no_passphrase(char *buf, int size, int rwflag, void *ud)
{
	(void)buf;
	(void)size;
	(void)rwflag;
	(void)ud;
	return 0;
}

/* OpenSSL's PSK client callback: our identity and key (the context's app
 * data is the struct tern__tls). */
static unsigned int psk_client_cb(SSL *ssl, const char *hint, char *identity,
                                  unsigned int max_identity_len, unsigned char *psk,
                                  unsigned int max_psk_len)
{
	(void)hint;
	const struct tern__tls *t = SSL_CTX_get_app_data(SSL_get_SSL_CTX(ssl));
	size_t id_len = strlen(t->psk_identity);
	if (t->psk_len == 0 || id_len + 1 > max_identity_len || t->psk_len > max_psk_len)
		return 0;
	memcpy(identity, t->psk_identity, id_len + 1);
	memcpy(psk, t->psk, t->psk_len);
	return (unsigned int)t->psk_len;
}

/* OpenSSL's status callback (the context's status arg is the struct
 * tern__tls): 1 accepts the handshake, 0 fails it with the alert
 * bad_certificate_status_response, -1 fails it as an internal error. */
static int ocsp_status_cb(SSL *ssl, void *arg)
{
	struct tern__tls *t = arg;
	const unsigned char *der = NULL;
	long len = SSL_get_tlsext_status_ocsp_resp(ssl, &der);
	X509_STORE *store = SSL_CTX_get_cert_store(SSL_get_SSL_CTX(ssl));
	enum tern_err e = tern__ocsp_check(der, len, SSL_get0_verified_chain(ssl), store,
	                                   t->ocsp_err, sizeof(t->ocsp_err));
	if (e == TERN_OK)
		return 1;
	if (e == TERN_E_NOMEM)
		snprintf(t->ocsp_err, sizeof(t->ocsp_err), "out of memory checking OCSP");
	return e == TERN_E_NOMEM ? -1 : 0;
}

/* Loads the trust store and our certificate into t->ctx. */
static TERN_MUST_CHECK enum tern_err ctx_setup(struct tern_client *c, struct tern__tls *t,
                                               const struct tern_connect_opts *o)
{
	SSL_CTX *ctx = t->ctx;
	int min = o->tls_min_version == TLS1_3_VERSION ? TLS1_3_VERSION : TLS1_2_VERSION;
	if (SSL_CTX_set_min_proto_version(ctx, min) != 1) {
		tls_error(c, "cannot require TLS %s", min == TLS1_3_VERSION ? "1.3" : "1.2");
		return TERN_E_TLS;
	}
	if (o->tls_alpn != NULL) {
		/* The wire format: a length byte, then the name. */
		size_t n = strlen(o->tls_alpn);
		unsigned char wire[256];
		wire[0] = (unsigned char)n;
		memcpy(wire + 1, o->tls_alpn, n);
		/* 0 is success here, unlike the rest of OpenSSL. */
		if (SSL_CTX_set_alpn_protos(ctx, wire, (unsigned)n + 1) != 0) {
			tls_error(c, "cannot offer ALPN %s", o->tls_alpn);
			return TERN_E_TLS;
		}
	}
	SSL_CTX_set_mode(ctx, SSL_MODE_ENABLE_PARTIAL_WRITE | SSL_MODE_ACCEPT_MOVING_WRITE_BUFFER);
	SSL_CTX_set_options(ctx, SSL_OP_NO_RENEGOTIATION);
	SSL_CTX_set_verify(ctx, SSL_VERIFY_PEER, NULL);
	SSL_CTX_set_default_passwd_cb(ctx, no_passphrase);
	if (o->tls_psk != NULL) {
		snprintf(t->psk_identity, sizeof(t->psk_identity), "%s", o->tls_psk_identity);
		memcpy(t->psk, o->tls_psk, o->tls_psk_len);
		t->psk_len = o->tls_psk_len;
		SSL_CTX_set_app_data(ctx, t);
		SSL_CTX_set_psk_client_callback(ctx, psk_client_cb);
		/* TLS 1.2's PSK suites are not in OpenSSL's default list. */
		if (SSL_CTX_set_cipher_list(ctx, "DEFAULT:PSK") != 1) {
			tls_error(c, "cannot offer the PSK cipher suites");
			return TERN_E_TLS;
		}
	}
	if (o->tls_require_ocsp) {
		if (SSL_CTX_set_tlsext_status_type(ctx, TLSEXT_STATUSTYPE_ocsp) != 1 ||
		    SSL_CTX_set_tlsext_status_cb(ctx, ocsp_status_cb) != 1 ||
		    SSL_CTX_set_tlsext_status_arg(ctx, t) != 1) {
			tls_error(c, "cannot ask for OCSP stapling");
			return TERN_E_TLS;
		}
	}
	if (o->tls_cafile != NULL || o->tls_capath != NULL) {
		if (SSL_CTX_load_verify_locations(ctx, o->tls_cafile, o->tls_capath) != 1) {
			if (o->tls_cafile != NULL)
				tls_error(c, "cannot load CA file %s", o->tls_cafile);
			else
				tls_error(c, "cannot use CA directory %s", o->tls_capath);
			return TERN_E_TLS;
		}
	}
	if ((o->tls_cafile == NULL && o->tls_capath == NULL) || o->tls_use_os_certs) {
		if (SSL_CTX_set_default_verify_paths(ctx) != 1) {
			tls_error(c, "cannot load the system's CA certificates");
			return TERN_E_TLS;
		}
	}
	if (o->tls_certfile != NULL) {
		if (SSL_CTX_use_certificate_chain_file(ctx, o->tls_certfile) != 1) {
			tls_error(c, "cannot load certificate file %s", o->tls_certfile);
			return TERN_E_TLS;
		}
		if (SSL_CTX_use_PrivateKey_file(ctx, o->tls_keyfile, SSL_FILETYPE_PEM) != 1) {
			tls_error(c, "cannot load key file %s", o->tls_keyfile);
			return TERN_E_TLS;
		}
		if (SSL_CTX_check_private_key(ctx) != 1) {
			tls_error(c, "key file %s does not match certificate file %s",
			          o->tls_keyfile, o->tls_certfile);
			return TERN_E_TLS;
		}
	}
	return TERN_OK;
}

enum tern_err tern__tls_configure(struct tern_client *c, const struct tern_connect_opts *o)
{
	tern__tls_free(c);
	c->tls_err[0] = '\0';
	if (!o->tls && o->tls_cafile == NULL && o->tls_capath == NULL && !o->tls_use_os_certs &&
	    o->tls_psk == NULL)
		return TERN_OK;

	struct tern__tls *t = calloc(1, sizeof(*t));
	if (t == NULL)
		return TERN_E_NOMEM;
	t->insecure = o->tls_insecure;
	enum tern_err e = TERN_E_NOMEM;
	if (o->tls_server_name != NULL && (t->server_name = strdup(o->tls_server_name)) == NULL)
		goto fail;
	ERR_clear_error();
	t->ctx = SSL_CTX_new(TLS_client_method());
	t->bio_meth = bio_method_new();
	if (t->ctx == NULL || t->bio_meth == NULL) {
		tls_error(c, "cannot create the TLS context");
		e = TERN_E_TLS;
		goto fail;
	}
	e = ctx_setup(c, t, o);
	if (e != TERN_OK)
		goto fail;
	c->tls = t;
	return TERN_OK;

fail:
	SSL_CTX_free(t->ctx);
	BIO_meth_free(t->bio_meth);
	free(t->server_name);
	OPENSSL_cleanse(t->psk, sizeof(t->psk));
	free(t);
	return e;
}

void tern__tls_free(struct tern_client *c)
{
	struct tern__tls *t = c->tls;
	if (t == NULL)
		return;
	tern__tls_end(c, false);
	SSL_CTX_free(t->ctx);
	BIO_meth_free(t->bio_meth);
	free(t->server_name);
	OPENSSL_cleanse(t->psk, sizeof(t->psk));
	free(t);
	c->tls = NULL;
}

/* ---- a connection ---- */

/* True when name is a numeric IPv4 or IPv6 address. */
static bool is_ip(const char *name)
{
	unsigned char buf[sizeof(struct in6_addr)];
	return inet_pton(AF_INET, name, buf) == 1 || inet_pton(AF_INET6, name, buf) == 1;
}

enum tern_err tern__tls_begin(struct tern_client *c)
{
	struct tern__tls *t = c->tls;
	tern__tls_end(c, false);
	c->tls_err[0] = '\0';
	ERR_clear_error();
	SSL *ssl = SSL_new(t->ctx);
	BIO *bio = BIO_new(t->bio_meth);
	if (ssl == NULL || bio == NULL) {
		SSL_free(ssl);
		BIO_free(bio);
		ERR_clear_error();
		return TERN_E_NOMEM;
	}
	BIO_set_data(bio, (void *)(intptr_t)c->fd);
	BIO_set_init(bio, 1);
	SSL_set_bio(ssl, bio, bio); /* ssl owns bio now */

	const char *name = t->server_name != NULL ? t->server_name : c->opts.host;
	bool ip = is_ip(name);
	bool ok = true;
	/* SNI carries host names only (RFC 6066, section 3). */
	if (!ip)
		ok = SSL_set_tlsext_host_name(ssl, name) == 1;
	if (ok && !t->insecure) {
		if (ip) {
			ok = X509_VERIFY_PARAM_set1_ip_asc(SSL_get0_param(ssl), name) == 1;
		} else {
			SSL_set_hostflags(ssl, X509_CHECK_FLAG_NO_PARTIAL_WILDCARDS);
			ok = SSL_set1_host(ssl, name) == 1;
		}
	}
	if (!ok) {
		tls_error(c, "cannot verify against the name '%s'", name);
		SSL_free(ssl);
		return TERN_E_TLS;
	}
	SSL_set_connect_state(ssl);
	t->ssl = ssl;
	t->want_write = false;
	t->handshake_done = false;
	t->ocsp_err[0] = '\0';
	return TERN_OK;
}

/* Maps the failure of an SSL call that returned r. what names the
 * operation for the message. */
static TERN_MUST_CHECK enum tern_err io_error(struct tern_client *c, int r, const char *what)
{
	struct tern__tls *t = c->tls;
	int saved = errno;
	int e = SSL_get_error(t->ssl, r);
	switch (e) {
	case SSL_ERROR_WANT_READ:
		return TERN_E_INCOMPLETE;
	case SSL_ERROR_WANT_WRITE:
		t->want_write = true;
		return TERN_E_INCOMPLETE;
	case SSL_ERROR_ZERO_RETURN: /* close_notify */
		if (t->handshake_done)
			return TERN_E_CLOSED;
		snprintf(c->tls_err, sizeof(c->tls_err),
		         "connection closed by the peer during the TLS handshake");
		return TERN_E_TLS;
	case SSL_ERROR_SYSCALL:
		if (ERR_peek_error() != 0)
			break;
		if (!t->handshake_done) {
			snprintf(c->tls_err, sizeof(c->tls_err),
			         "connection %s during the TLS handshake (is the port a TLS one?)",
			         saved == 0 ? "closed" : strerror(saved));
			return TERN_E_TLS;
		}
		if (saved == 0 || saved == EPIPE || saved == ECONNRESET)
			return TERN_E_CLOSED;
		errno = saved;
		return TERN_E_SYS;
	default:
		break;
	}
	unsigned long err = ERR_peek_error();
	if (t->handshake_done && ERR_GET_LIB(err) == ERR_LIB_SSL &&
	    ERR_GET_REASON(err) == SSL_R_UNEXPECTED_EOF_WHILE_READING) {
		/* The broker closed TCP without close_notify: for MQTT, whose
		 * packets carry their own length, that is an ordinary close. */
		ERR_clear_error();
		return TERN_E_CLOSED;
	}
	tls_error(c, "%s", what);
	return TERN_E_TLS;
}

enum tern_err tern__tls_handshake(struct tern_client *c)
{
	struct tern__tls *t = c->tls;
	t->want_write = false;
	ERR_clear_error();
	errno = 0;
	int r = SSL_do_handshake(t->ssl);
	if (r == 1) {
		t->handshake_done = true;
		return TERN_OK;
	}
	long vr = SSL_get_verify_result(t->ssl);
	if (vr != X509_V_OK) {
		snprintf(c->tls_err, sizeof(c->tls_err), "certificate verification failed (%s)",
		         X509_verify_cert_error_string(vr));
		ERR_clear_error();
		return TERN_E_TLS;
	}
	if (t->ocsp_err[0] != '\0') {
		snprintf(c->tls_err, sizeof(c->tls_err), "%s", t->ocsp_err);
		ERR_clear_error();
		return TERN_E_TLS;
	}
	enum tern_err e = io_error(c, r, "TLS handshake failed");
	return e == TERN_E_CLOSED ? TERN_E_TLS : e;
}

enum tern_err tern__tls_read(struct tern_client *c, void *buf, size_t n, size_t *got)
{
	struct tern__tls *t = c->tls;
	t->want_write = false;
	ERR_clear_error();
	errno = 0;
	int r = SSL_read(t->ssl, buf, n > INT_MAX ? INT_MAX : (int)n);
	if (r > 0) {
		*got = (size_t)r;
		return TERN_OK;
	}
	*got = 0;
	return io_error(c, r, "TLS read failed");
}

enum tern_err tern__tls_write(struct tern_client *c, const void *buf, size_t n, size_t *put)
{
	struct tern__tls *t = c->tls;
	t->want_write = false;
	ERR_clear_error();
	errno = 0;
	int r = SSL_write(t->ssl, buf, n > INT_MAX ? INT_MAX : (int)n);
	if (r > 0) {
		*put = (size_t)r;
		return TERN_OK;
	}
	*put = 0;
	return io_error(c, r, "TLS write failed");
}

bool tern__tls_want_write(const struct tern_client *c)
{
	return c->tls != NULL && c->tls->ssl != NULL && c->tls->want_write;
}

bool tern__tls_pending(const struct tern_client *c)
{
	return c->tls != NULL && c->tls->ssl != NULL && SSL_pending(c->tls->ssl) > 0;
}

void tern__tls_end(struct tern_client *c, bool graceful)
{
	struct tern__tls *t = c->tls;
	if (t == NULL || t->ssl == NULL)
		return;
	if (graceful && t->handshake_done) {
		/* One try at close_notify; the fd is closed right after, so
		 * the peer's answer is not waited for. */
		ERR_clear_error();
		SSL_shutdown(t->ssl);
	}
	SSL_free(t->ssl);
	ERR_clear_error();
	t->ssl = NULL;
	t->want_write = false;
	t->handshake_done = false;
}
