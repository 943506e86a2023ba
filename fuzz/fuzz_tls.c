/*
 * fuzz_tls.c - libFuzzer target for the TLS listener path: transport_tls.c
 * (and transport_ws.c over it) in front of the whole broker.
 *
 * Each input runs against a fresh in-process broker (fuzz_broker.h) whose
 * clients are accepted on a TLS listener built by tls_listener_init(), as
 * ternd builds one, from a certificate made at start-up (an Ed25519 CA,
 * a server and a client certificate, written to memfds whose
 * /proc/self/fd paths are the certfile, keyfile and cafile; nothing on
 * disk, nothing that expires in the repository).
 *
 * Which bytes the fuzzer supplies. Raw ClientHello bytes alone would
 * mostly fuzz OpenSSL, which is not built with coverage here, so libFuzzer
 * would be blind; our code would only see the first failing SSL_read().
 * The target therefore gives every client slot an in-process OpenSSL
 * client that completes a real handshake, and the fuzzer chooses the
 * plaintext (MQTT, or WebSocket frames carrying MQTT) and how it travels:
 * how it is cut into records, how the ciphertext is cut into socket writes
 * (the client's SSL sits on a BIO pair, so the target decides what reaches
 * the socket and when), several records in one read, close_notify, a TLS
 * 1.3 KeyUpdate that makes the broker write while it reads, a TLS 1.2
 * renegotiation the broker refuses, a client that stops reading (the
 * broker's send buffer is the kernel's smallest, so its SSL_write soon
 * waits), raw bytes injected into the stream, and abrupt closes. That
 * runs tls_read/tls_write through every outcome (data, want-read,
 * want-write, zero return, unexpected EOF, protocol error), tls_pending,
 * the handshake-done hook and its certificate identity, tls_close's
 * close_notify, and everything behind them. Raw bytes on a fresh slot are
 * still the fuzzer's own ClientHello (op 0x9 below), so the other mode is
 * there too, for what it is worth.
 *
 * Input: one mode byte, then segments as in fuzz_ws
 *
 *   [mode] ([op] [len] [len bytes])...
 *
 * mode bit 0: the listener speaks WebSockets over TLS; bit 1: it requires
 * a client certificate and uses its CN as the username
 * (require_certificate, use_identity_as_username), and the clients
 * present one; bit 2: the clients offer TLS 1.2 at most (else 1.3).
 * (op & 0x0f) % 3 picks one of three client slots, op >> 4 what to do;
 * "send" means: the bytes are written by the slot's TLS client (a
 * handshake first, the first time), and its pending ciphertext is written
 * to the socket:
 *
 *   0x0-0x6  send, iterate the worker once, read what came back
 *   0x7      send, but write only part of the ciphertext (the first
 *            payload byte / 256 of it): a record split across reads
 *   0x8      a TLS 1.3 KeyUpdate (update_requested; TLS 1.2: a
 *            renegotiation), then send
 *   0x9      write the bytes raw to the socket, after any pending
 *            ciphertext (on a fresh slot: a ClientHello of the fuzzer's)
 *   0xa      send, then the client's close_notify
 *   0xb      send, then shut down the client's writing side
 *   0xc      toggle whether the slot's replies are read, then send
 *   0xd      send without iterating (several records in one read)
 *   0xe      send the bytes as one masked binary WebSocket frame
 *   0xf      close the slot and connect a new client there, then send
 *
 * Speed: after the first full handshake of each mode, its clients resume
 * that session (our code runs the same either way; OpenSSL does about half
 * the work), and OpenSSL allocates outside ASan (see
 * LLVMFuzzerInitialize). A finding that needs a resumed session shows with
 * an input that reconnects a slot.
 *
 * A client whose TLS fails (the broker refused it, or raw bytes broke the
 * stream), and every client after an input's first 64 handshakes, writes
 * its bytes raw. At the end the worker iterates a few more times with
 * every client reading, then every client closes and fuzz_broker_stop()
 * frees the rest.
 *
 * Seeds: fuzz/gen_conn_seeds.py tls writes fuzz_conn's and fuzz_ws's
 * sessions in every mode, and real ClientHellos, to fuzz/corpus/fuzz_tls/.
 * Dictionary: fuzz/tls.dict.
 */
#include <openssl/err.h>
#include <openssl/pem.h>
#include <openssl/ssl.h>
#include <openssl/x509v3.h>
#include <signal.h>
#include <sys/mman.h>

#include "fuzz_broker.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#define N_SLOTS 3
/* Handshake round trips before a client gives up (TLS 1.2 with a client
 * certificate needs two). */
#define HANDSHAKE_ROUNDS 8
/* Ciphertext a client holds before it reaches the socket: far more than
 * an input of libFuzzer's default size makes. */
#define CLIENT_OUT_MAX 65536
/* TLS handshakes an input may begin; later clients speak raw bytes, so
 * that an input of reconnects stays within libFuzzer's time limit. */
#define MAX_HANDSHAKES 64
/* Iterations with every client reading, at the end of an input. */
#define FINAL_ROUNDS 3

enum mode_bit { MODE_WS = 1, MODE_CLIENT_CERT = 2, MODE_TLS12 = 4 };

enum op_kind {
	OP_SPLIT = 0x7,
	OP_KEY_UPDATE = 0x8,
	OP_RAW = 0x9,
	OP_CLOSE_NOTIFY = 0xa,
	OP_HALF_CLOSE = 0xb,
	OP_PAUSE = 0xc,
	OP_NO_ITERATE = 0xd,
	OP_FRAME = 0xe,
	OP_RECONNECT = 0xf,
};

/* What a process sets up once: the four listeners (mode bits 0 and 1) and
 * the clients' context. */
struct tls_setup {
	struct listener_cfg cfg[4];
	struct listener l[4];
	SSL_CTX *client_ctx;
	/* A session per mode (listener and TLS version) to resume. */
	SSL_SESSION *session[8];
};

struct client {
	int fd;
	SSL *ssl;             /* NULL until the slot first speaks TLS */
	BIO *net;             /* our end of the SSL's BIO pair */
	bool hs_done;         /* handshake finished on the client's side */
	bool dead;            /* TLS failed: the slot writes raw bytes */
	bool paused;          /* replies are left unread */
	bool kept;            /* its session is kept for resumption, or resumed one */
	SSL_SESSION **resume; /* where its mode's session is kept */
	size_t out_len;
	uint8_t out[CLIENT_OUT_MAX]; /* ciphertext not yet written */
};

/* OpenSSL 3 allocates thousands of small blocks per handshake; through
 * ASan's allocator (quarantine, stack traces, fills) they cost most of a
 * run. OpenSSL is not what this target tests, so its allocations go to
 * glibc's allocator directly: ASan still checks every access our code
 * makes, and LeakSanitizer still sees our structures (a leaked SSL shows
 * as the leaked tls_conn that holds it). Set before OpenSSL's first
 * allocation, in LLVMFuzzerInitialize(). */
void *__libc_malloc(size_t n);
void *__libc_realloc(void *p, size_t n);
void __libc_free(void *p);

static void *ossl_malloc(size_t n, const char *file, int line)
{
	(void)file, (void)line;
	return __libc_malloc(n);
}

static void *ossl_realloc(void *p, size_t n, const char *file, int line)
{
	(void)file, (void)line;
	return __libc_realloc(p, n);
}

static void ossl_free(void *p, const char *file, int line)
{
	(void)file, (void)line;
	__libc_free(p);
}

int LLVMFuzzerInitialize(int *argc, char ***argv);

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
	(void)argc, (void)argv;
	if (!CRYPTO_set_mem_functions(ossl_malloc, ossl_realloc, ossl_free))
		fuzz_fatal("CRYPTO_set_mem_functions");
	return 0;
}

static void ssl_fatal(const char *what)
{
	ERR_print_errors_fp(stderr);
	fuzz_fatal(what);
}

/* ------------------------------------------------------------------ */
/* certificates, made once per process                                */

static EVP_PKEY *keygen(void)
{
	EVP_PKEY *k = EVP_PKEY_Q_keygen(NULL, NULL, "ED25519");
	if (!k)
		ssl_fatal("keygen");
	return k;
}

/* A certificate for cn's key, signed by the issuer (itself when NULL). */
static X509 *make_cert(const char *cn, EVP_PKEY *key, X509 *issuer, EVP_PKEY *issuer_key)
{
	static long serial;
	X509 *x = X509_new();
	if (!x || !X509_set_version(x, X509_VERSION_3) ||
	    !ASN1_INTEGER_set(X509_get_serialNumber(x), ++serial) ||
	    !X509_gmtime_adj(X509_getm_notBefore(x), -3600) ||
	    !X509_gmtime_adj(X509_getm_notAfter(x), 30L * 24 * 3600) || !X509_set_pubkey(x, key))
		ssl_fatal("X509");
	X509_NAME *name = X509_get_subject_name(x);
	if (!X509_NAME_add_entry_by_txt(name, "CN", MBSTRING_ASC, (const unsigned char *)cn, -1, -1,
	                                0) ||
	    !X509_set_issuer_name(x, issuer ? X509_get_subject_name(issuer) : name))
		ssl_fatal("X509 name");
	if (!issuer) {
		X509V3_CTX v3;
		X509V3_set_ctx_nodb(&v3);
		X509V3_set_ctx(&v3, x, x, NULL, NULL, 0);
		X509_EXTENSION *e =
		        X509V3_EXT_conf_nid(NULL, &v3, NID_basic_constraints, "critical,CA:TRUE");
		if (!e || !X509_add_ext(x, e, -1))
			ssl_fatal("X509 extension");
		X509_EXTENSION_free(e);
	}
	if (!X509_sign(x, issuer_key ? issuer_key : key, NULL))
		ssl_fatal("X509_sign");
	return x;
}

/* Writes PEM objects to a new memfd; its path goes to path[0..256). The fd
 * stays open for the life of the process. */
static void pem_file(char *path, X509 *cert, X509 *chain, EVP_PKEY *key)
{
	int fd = memfd_create("fuzz-tls", MFD_CLOEXEC);
	if (fd < 0)
		fuzz_fatal("memfd_create");
	BIO *b = BIO_new_fd(fd, BIO_NOCLOSE);
	if (!b || (cert && !PEM_write_bio_X509(b, cert)) ||
	    (chain && !PEM_write_bio_X509(b, chain)) ||
	    (key && !PEM_write_bio_PrivateKey(b, key, NULL, NULL, 0, NULL, NULL)))
		ssl_fatal("PEM");
	BIO_free(b);
	snprintf(path, 256, "/proc/self/fd/%d", fd);
}

static void setup(struct tls_setup *s)
{
	EVP_PKEY *ca_key = keygen(), *srv_key = keygen(), *cli_key = keygen();
	X509 *ca = make_cert("tern fuzz CA", ca_key, NULL, NULL);
	X509 *srv = make_cert("localhost", srv_key, ca, ca_key);
	X509 *cli = make_cert("fuzz-client", cli_key, ca, ca_key);
	char certfile[256], keyfile[256], cafile[256];
	pem_file(certfile, srv, ca, NULL);
	pem_file(keyfile, NULL, NULL, srv_key);
	pem_file(cafile, ca, NULL, NULL);
	for (int m = 0; m < 4; m++) {
		struct listener_cfg *cfg = &s->cfg[m];
		snprintf(cfg->certfile, sizeof(cfg->certfile), "%s", certfile);
		snprintf(cfg->keyfile, sizeof(cfg->keyfile), "%s", keyfile);
		snprintf(cfg->tls_version, sizeof(cfg->tls_version), "tlsv1.2");
		cfg->websockets = m & MODE_WS;
		if (m & MODE_CLIENT_CERT) {
			snprintf(cfg->cafile, sizeof(cfg->cafile), "%s", cafile);
			cfg->require_certificate = true;
			cfg->use_identity_as_username = true;
		}
		struct listener *l = &s->l[m];
		l->cfg = cfg;
		l->base = &transport_tls;
		l->tp = cfg->websockets ? &transport_ws : &transport_tls;
		char why[512];
		if (tls_listener_init(l, NULL, why, sizeof(why)) != TERN_OK) {
			fprintf(stderr, "fuzz_tls: %s\n", why);
			abort();
		}
	}
	SSL_CTX *ctx = SSL_CTX_new(TLS_client_method());
	if (!ctx || SSL_CTX_use_certificate(ctx, cli) != 1 ||
	    SSL_CTX_use_PrivateKey(ctx, cli_key) != 1)
		ssl_fatal("client context");
	SSL_CTX_set_verify(ctx, SSL_VERIFY_NONE, NULL);
	s->client_ctx = ctx;
	X509_free(ca);
	X509_free(srv);
	X509_free(cli);
	EVP_PKEY_free(ca_key);
	EVP_PKEY_free(srv_key);
	EVP_PKEY_free(cli_key);
}

/* ------------------------------------------------------------------ */
/* the clients                                                         */

static void client_open(struct client *cl, struct worker *w, const struct listener *l,
                        SSL_SESSION **resume)
{
	cl->fd = fuzz_connect(w, l, true);
	cl->resume = resume;
	cl->ssl = NULL;
	cl->net = NULL;
	cl->hs_done = cl->dead = cl->paused = cl->kept = false;
	cl->out_len = 0;
}

static void client_close(struct client *cl)
{
	SSL_free(cl->ssl); /* and the BIO pair's other end */
	BIO_free(cl->net);
	close(cl->fd);
	cl->ssl = NULL;
	cl->net = NULL;
}

/* Takes the ciphertext the SSL produced into cl->out. */
static void pull(struct client *cl)
{
	if (!cl->net)
		return;
	size_t n;
	while ((n = BIO_ctrl_pending(cl->net)) > 0) {
		if (n > sizeof(cl->out) - cl->out_len) {
			cl->dead = true; /* never with inputs of sane size */
			return;
		}
		int r = BIO_read(cl->net, cl->out + cl->out_len, (int)n);
		if (r <= 0)
			return;
		cl->out_len += (size_t)r;
	}
}

/* Writes up to limit bytes of cl->out to the socket. */
static void push(struct client *cl, size_t limit)
{
	size_t n = cl->out_len < limit ? cl->out_len : limit;
	if (n == 0)
		return;
	ssize_t w = send(cl->fd, cl->out, n, MSG_NOSIGNAL);
	if (w < 0) {
		if (errno != EAGAIN)
			cl->out_len = 0; /* the broker has gone: drop it */
		return;
	}
	memmove(cl->out, cl->out + w, cl->out_len - (size_t)w);
	cl->out_len -= (size_t)w;
}

/* True for the SSL results that only mean "later". */
static bool retry(SSL *ssl, int r)
{
	int e = SSL_get_error(ssl, r);
	return e == SSL_ERROR_WANT_READ || e == SSL_ERROR_WANT_WRITE;
}

/* Keeps the session of a full handshake for the next clients of its
 * mode, once it can be resumed (TLS 1.3: after the broker's ticket). */
static void keep_session(struct client *cl)
{
	if (SSL_session_reused(cl->ssl)) {
		cl->kept = true;
		return;
	}
	if (!SSL_SESSION_is_resumable(SSL_get0_session(cl->ssl)))
		return;
	/* A copy: OpenSSL marks a session unresumable when the connection
	 * using it ends without close_notify, as most of ours do. */
	SSL_SESSION *copy = SSL_SESSION_dup(SSL_get0_session(cl->ssl));
	if (!copy)
		ssl_fatal("SSL_SESSION_dup");
	SSL_SESSION_free(*cl->resume);
	*cl->resume = copy;
	cl->kept = true;
}

/* Reads what the broker sent: decrypts and drops it, or drops it raw when
 * the slot speaks no TLS. */
static void client_read(struct client *cl, int slot, bool trace)
{
	if (!cl->ssl || cl->dead) {
		fuzz_drain(cl->fd, slot, trace);
		return;
	}
	uint8_t buf[16384];
	for (;;) {
		size_t room = BIO_ctrl_get_write_guarantee(cl->net);
		ssize_t n = room ? read(cl->fd, buf, room < sizeof(buf) ? room : sizeof(buf)) : 0;
		if (n > 0 && BIO_write(cl->net, buf, (int)n) != n)
			fuzz_fatal("BIO_write");
		ERR_clear_error();
		if (!cl->hs_done) {
			int r = SSL_do_handshake(cl->ssl);
			if (r == 1)
				cl->hs_done = true;
			else if (!retry(cl->ssl, r))
				cl->dead = true;
		}
		int r = 0;
		while (cl->hs_done && !cl->dead && (r = SSL_read(cl->ssl, buf, sizeof(buf))) > 0)
			fuzz_trace_bytes(trace, slot, "<-", buf, (size_t)r);
		if (cl->hs_done && !cl->dead && !retry(cl->ssl, r) &&
		    SSL_get_error(cl->ssl, r) != SSL_ERROR_ZERO_RETURN)
			cl->dead = true;
		if (cl->hs_done && !cl->dead && !cl->kept)
			keep_session(cl);
		pull(cl);
		push(cl, SIZE_MAX);
		if (n <= 0 || cl->dead)
			break;
	}
	if (cl->dead)
		fuzz_drain(cl->fd, slot, trace);
}

/* What one input runs with. */
struct run {
	struct tls_setup *s;
	struct worker *w;
	bool tls12;
	bool trace;
	unsigned handshakes; /* begun so far */
};

/* Makes sure the slot's TLS session is up; false when it failed. */
static bool handshake(struct run *run, struct client *cl, int slot)
{
	if (!cl->ssl && !cl->dead && run->handshakes++ >= MAX_HANDSHAKES)
		cl->dead = true;
	if (!cl->ssl && !cl->dead) {
		BIO *inner = NULL;
		cl->ssl = SSL_new(run->s->client_ctx);
		if (!cl->ssl || !BIO_new_bio_pair(&inner, 0, &cl->net, 0))
			ssl_fatal("client SSL");
		SSL_set_bio(cl->ssl, inner, inner);
		SSL_set_connect_state(cl->ssl);
		if (run->tls12)
			SSL_set_max_proto_version(cl->ssl, TLS1_2_VERSION);
		if (*cl->resume && SSL_set_session(cl->ssl, *cl->resume) != 1)
			ssl_fatal("SSL_set_session");
	}
	for (int i = 0; i < HANDSHAKE_ROUNDS && !cl->hs_done && !cl->dead; i++) {
		client_read(cl, slot, run->trace);
		if (!cl->hs_done)
			fuzz_iterate(run->w);
	}
	if (!cl->hs_done)
		cl->dead = true;
	return !cl->dead;
}

/* Has the slot's client write p[0..len): through TLS, else raw. */
static void client_send(struct run *run, struct client *cl, int slot, const uint8_t *p, size_t len)
{
	if (!handshake(run, cl, slot)) {
		push(cl, SIZE_MAX);
		fuzz_send(cl->fd, p, len);
		return;
	}
	ERR_clear_error();
	if (len > 0) {
		int r = SSL_write(cl->ssl, p, (int)len);
		if (r <= 0 && !retry(cl->ssl, r))
			cl->dead = true;
	}
	pull(cl);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static struct tls_setup s;
	static struct fuzz_broker fb; /* large: keep it off the stack */
	static struct client cl[N_SLOTS];
	static int trace = -1;
	if (trace < 0) {
		trace = fuzz_trace();
		/* As ternd does (main.c): OpenSSL writes close_notify with
		 * write(), to clients that may have gone. */
		signal(SIGPIPE, SIG_IGN);
		setup(&s);
	}
	if (size == 0)
		return 0;
	uint8_t mode = data[0];
	const struct listener *l = &s.l[mode & (MODE_WS | MODE_CLIENT_CERT)];
	struct worker *w = fuzz_broker_start(&fb);
	struct run run = {.s = &s, .w = w, .tls12 = mode & MODE_TLS12, .trace = trace};
	for (int i = 0; i < N_SLOTS; i++)
		client_open(&cl[i], w, l, &s.session[mode & 7]);

	size_t pos = 1;
	while (pos < size) {
		uint8_t op = data[pos++];
		int slot = (op & 0x0f) % N_SLOTS;
		struct client *c = &cl[slot];
		enum op_kind kind = (enum op_kind)(op >> 4);
		size_t len = pos < size ? data[pos++] : 0;
		if (len > size - pos)
			len = size - pos;
		const uint8_t *p = data + pos;
		pos += len;
		size_t limit = SIZE_MAX;
		uint8_t frame[FUZZ_WS_FRAME_MAX];
		switch (kind) {
		case OP_RECONNECT:
			client_close(c);
			fuzz_iterate(w); /* the broker sees the close */
			client_open(c, w, l, &s.session[mode & 7]);
			break;
		case OP_PAUSE:
			c->paused = !c->paused;
			break;
		case OP_SPLIT:
			limit = len ? p[0] : 128;
			break;
		case OP_KEY_UPDATE:
			if (handshake(&run, c, slot)) {
				ERR_clear_error();
				if (SSL_version(c->ssl) >= TLS1_3_VERSION)
					(void)SSL_key_update(c->ssl, SSL_KEY_UPDATE_REQUESTED);
				else
					(void)SSL_renegotiate(c->ssl);
				int r = SSL_do_handshake(c->ssl);
				if (r <= 0 && !retry(c->ssl, r))
					c->dead = true;
			}
			break;
		case OP_RAW:
			break;
		case OP_FRAME:
			len = fuzz_ws_frame(frame, p, len);
			p = frame;
			break;
		default:
			break;
		}
		if (kind == OP_RAW) {
			push(c, SIZE_MAX);
			fuzz_send(c->fd, p, len);
		} else {
			client_send(&run, c, slot, p, len);
		}
		if (limit != SIZE_MAX)
			limit = c->out_len * limit / 256;
		push(c, limit);
		if (kind == OP_CLOSE_NOTIFY && c->hs_done && !c->dead) {
			ERR_clear_error();
			(void)SSL_shutdown(c->ssl);
			pull(c);
			push(c, SIZE_MAX);
		}
		if (kind == OP_HALF_CLOSE)
			shutdown(c->fd, SHUT_WR);
		if (kind == OP_NO_ITERATE)
			continue;
		fuzz_iterate(w);
		for (int i = 0; i < N_SLOTS; i++)
			if (!cl[i].paused)
				client_read(&cl[i], i, trace);
	}

	/* The broker takes one record per read and per iteration (OpenSSL
	 * reads no further ahead): let it take what is still queued, and
	 * its answers come back, before everything closes. */
	for (int round = 0; round < FINAL_ROUNDS; round++) {
		fuzz_iterate(w);
		for (int i = 0; i < N_SLOTS; i++)
			client_read(&cl[i], i, trace);
	}
	for (int i = 0; i < N_SLOTS; i++)
		client_close(&cl[i]);
	fuzz_broker_stop(&fb);
	ERR_clear_error();
	return 0;
}
