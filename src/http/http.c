/*
 * http.c - the HTTP listener (http.h) on libmicrohttpd.
 *
 * Why a library: an HTTP/1.1 server that is safe to put on a network has
 * to get request framing, keep-alive, pipelining, header limits, slow
 * clients, TLS and basic-auth decoding right, and Debian's libmicrohttpd
 * (GNU, maintained since 2007, fuzzed upstream and in OSS-Fuzz) does all of
 * it on threads of its own, which is where ternd wants its HTTP: off the
 * workers' loops. docs/http-api.md records what else was looked at.
 *
 * What stays ours is small and pure, so it is fuzzed
 * (fuzz/fuzz_http.c): the request-target parser and router (api_route.c,
 * fed the raw target that libmicrohttpd's URI-log callback hands us before
 * it unescapes anything, so an id holding "%2F" stays one path segment) and
 * the JSON writer (json.c).
 *
 * Limits: a request's line and headers must fit in HTTP_CONN_MEMORY
 * (libmicrohttpd answers 414 / 431 otherwise), its body in HTTP_BODY_MAX
 * (413; no endpoint takes a body, a small one is read and ignored), at most
 * HTTP_MAX_CONNS connections at a time, each closed after
 * HTTP_IDLE_TIMEOUT_S idle.
 *
 * Access: with http_password_file every request needs HTTP basic
 * authentication against it (401 and WWW-Authenticate otherwise); every
 * request that changes something is logged with who asked, and every
 * refused login.
 */
#include <errno.h>
#include <microhttpd.h>
#include <netdb.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "auth/passwd.h"
#include "broker/auth.h"
#include "broker/broker.h"
#include "http/http.h"
#include "http/http_int.h"
#include "http/json.h"
#include "util/clock.h"
#include "util/log.h"

#define HTTP_CONN_MEMORY    (32u * 1024u)
#define HTTP_BODY_MAX       4096u
#define HTTP_MAX_CONNS      64u
#define HTTP_IDLE_TIMEOUT_S 15u
/* Threads serving requests: a request waits for the workers (up to
 * API_CALL_TIMEOUT_MS), and a scrape of /metrics should not wait behind
 * it. */
#define HTTP_THREADS 2u

/* One request, from its request line to the answer sent. */
struct http_req {
	char *target; /* the raw request-target; owned */
	size_t target_len;
	size_t body; /* bytes of body read so far */
	bool started;
};

void api_error(struct api_reply *r, int status, const char *why)
{
	r->status = status;
	r->ctype = NULL;
	r->csp = NULL;
	r->body.off = r->body.len = 0;
	struct json j;
	json_init(&j, &r->body);
	json_obj(&j, NULL);
	json_cstr(&j, "error", why);
	json_obj_end(&j);
	if (json_end(&j)) {
		r->status = 500;
		r->body.off = r->body.len = 0;
	}
}

static void *on_uri(void *cls, const char *uri, struct MHD_Connection *c)
{
	(void)cls;
	(void)c;
	struct http_req *r = calloc(1, sizeof(*r));
	if (r) {
		r->target_len = strlen(uri);
		r->target = strdup(uri);
		if (!r->target) {
			free(r);
			r = NULL;
		}
	}
	return r; /* NULL: on_request answers 500 */
}

static void on_done(void *cls, struct MHD_Connection *c, void **con_cls,
                    enum MHD_RequestTerminationCode toe)
{
	(void)cls;
	(void)c;
	(void)toe;
	struct http_req *r = *con_cls;
	if (r) {
		free(r->target);
		free(r);
	}
	*con_cls = NULL;
}

/* The peer's "host:port" into out, and its host alone into host. */
static void peer_name(struct MHD_Connection *c, char *out, size_t len, char host[64])
{
	const union MHD_ConnectionInfo *ci =
	        MHD_get_connection_info(c, MHD_CONNECTION_INFO_CLIENT_ADDRESS);
	char port[8] = "?";
	strcpy(host, "?");
	if (ci && ci->client_addr) {
		socklen_t sl = ci->client_addr->sa_family == AF_INET6 ? sizeof(struct sockaddr_in6)
		                                                      : sizeof(struct sockaddr_in);
		if (getnameinfo(ci->client_addr, sl, host, 64, port, sizeof(port),
		                NI_NUMERICHOST | NI_NUMERICSERV))
			strcpy(host, "?");
	}
	snprintf(out, len, "%s:%s", host, port);
}

static enum MHD_Result send_reply(struct MHD_Connection *c, struct api_reply *rep,
                                  const char *allow, bool challenge)
{
	struct MHD_Response *resp = MHD_create_response_from_buffer(
	        buf_used(&rep->body), rep->body.data + rep->body.off, MHD_RESPMEM_MUST_COPY);
	if (!resp)
		return MHD_NO;
	enum MHD_Result ok = MHD_add_response_header(
	        resp, MHD_HTTP_HEADER_CONTENT_TYPE,
	        rep->ctype ? rep->ctype : "application/json; charset=utf-8");
	if (ok == MHD_YES)
		ok = MHD_add_response_header(resp, MHD_HTTP_HEADER_CACHE_CONTROL, "no-store");
	if (ok == MHD_YES && allow)
		ok = MHD_add_response_header(resp, MHD_HTTP_HEADER_ALLOW, allow);
	if (ok == MHD_YES && rep->csp)
		ok = MHD_add_response_header(resp, "Content-Security-Policy", rep->csp);
	if (ok == MHD_YES && challenge)
		ok = MHD_add_response_header(resp, MHD_HTTP_HEADER_WWW_AUTHENTICATE,
		                             "Basic realm=\"ternd\", charset=\"UTF-8\"");
	if (ok == MHD_YES)
		ok = MHD_queue_response(c, (unsigned)rep->status, resp);
	MHD_destroy_response(resp);
	return ok;
}

static enum MHD_Result reply_error(struct MHD_Connection *c, int status, const char *why,
                                   const char *allow, bool challenge)
{
	struct api_reply rep = {0};
	api_error(&rep, status, why);
	enum MHD_Result ok = send_reply(c, &rep, allow, challenge);
	buf_free(&rep.body);
	return ok;
}

/* Checks the request's basic authentication against http_password_file;
 * true when it passes (or there is no file). The user's name into user. */
static bool authorised(struct http_server *h, struct MHD_Connection *c, char *user, size_t ulen)
{
	user[0] = 0;
	pthread_rwlock_rdlock(&h->pw_lock);
	if (!h->pw) {
		pthread_rwlock_unlock(&h->pw_lock);
		return true;
	}
	char *pass = NULL;
	char *name = MHD_basic_auth_get_username_password(c, &pass);
	bool ok = false;
	if (name) {
		snprintf(user, ulen, "%s", name);
		ok = pass && passwd_check(h->pw, (const uint8_t *)name, strlen(name),
		                          (const uint8_t *)pass, strlen(pass)) == TERN_OK;
	}
	pthread_rwlock_unlock(&h->pw_lock);
	if (pass) {
		/* The password does not outlive the check. */
		memset(pass, 0, strlen(pass));
		MHD_free(pass);
	}
	if (name)
		MHD_free(name);
	return ok;
}

/* The slot of host in h->fails (under fail_mu), or NULL; with make, a
 * free, expired or else the oldest slot, taken for host. */
static struct auth_fail *fail_slot(struct http_server *h, const char *host, uint64_t now, bool make)
{
	/* Looking for host, and meanwhile for the slot to take: a free one,
	 * else a stale one, else the oldest. */
	struct auth_fail *pick = NULL;
	int pick_rank = 3;
	for (size_t i = 0; i < AUTH_FAIL_SLOTS; i++) {
		struct auth_fail *f = &h->fails[i];
		if (f->host[0] && strcmp(f->host, host) == 0)
			return f;
		int rank = !f->host[0]                                                       ? 0
		           : now - f->since > AUTH_FAIL_WINDOW_MS && now >= f->blocked_until ? 1
		                                                                             : 2;
		if (rank < pick_rank || (rank == pick_rank && f->since < pick->since)) {
			pick = f;
			pick_rank = rank;
		}
	}
	if (!make)
		return NULL;
	memset(pick, 0, sizeof(*pick));
	snprintf(pick->host, sizeof(pick->host), "%s", host);
	pick->since = now;
	return pick;
}

/* Whether host is refused for its failed logins now. */
static bool fail_blocked(struct http_server *h, const char *host, uint64_t now)
{
	pthread_mutex_lock(&h->fail_mu);
	struct auth_fail *f = fail_slot(h, host, now, false);
	bool blocked = f && now < f->blocked_until;
	pthread_mutex_unlock(&h->fail_mu);
	return blocked;
}

/* Counts a failed login of host (ok false) or forgets its failures. */
static void fail_note(struct http_server *h, const char *host, uint64_t now, bool ok)
{
	pthread_mutex_lock(&h->fail_mu);
	struct auth_fail *f = fail_slot(h, host, now, !ok);
	if (ok) {
		if (f)
			memset(f, 0, sizeof(*f));
	} else {
		if (now - f->since > AUTH_FAIL_WINDOW_MS) {
			f->since = now;
			f->count = 0;
		}
		if (++f->count >= AUTH_FAIL_MAX) {
			f->blocked_until = now + AUTH_BLOCK_MS;
			f->count = 0;
			f->since = now;
			log_write(&h->b->log, LOG_TYPE_WARNING,
			          "HTTP: %u failed logins from %s within %u s: refused for %u s.",
			          AUTH_FAIL_MAX, host, AUTH_FAIL_WINDOW_MS / 1000,
			          AUTH_BLOCK_MS / 1000);
		}
	}
	pthread_mutex_unlock(&h->fail_mu);
}

/* Whether a request that changes something may come from where it comes
 * from. Basic-auth credentials are sent by a browser with any request to
 * their origin, a cross-site form POST included; such a request carries an
 * Origin header (RFC 6454) naming the other site, and is refused. No Origin
 * (curl, scripts) or this very origin (the dashboard) passes. */
static bool same_origin(struct http_server *h, struct MHD_Connection *c)
{
	const char *origin = MHD_lookup_connection_value(c, MHD_HEADER_KIND, "Origin");
	if (!origin)
		return true;
	const char *host = MHD_lookup_connection_value(c, MHD_HEADER_KIND, MHD_HTTP_HEADER_HOST);
	const char *scheme = h->cert ? "https://" : "http://";
	size_t sl = strlen(scheme);
	return host && strncmp(origin, scheme, sl) == 0 && strcmp(origin + sl, host) == 0;
}

/* Copies s into out (at most len - 1 bytes, "..." when cut) with every
 * control character made '?': a user name (any bytes, base64-decoded) or a
 * request-target goes into the log, where a newline would forge a line. */
static void log_safe(char *out, size_t len, const char *s)
{
	size_t n = 0;
	for (; s[n] && n + 1 < len; n++)
		out[n] = (unsigned char)s[n] < 0x20 || s[n] == 0x7f ? '?' : s[n];
	out[n] = 0;
	if (s[n] && len > 4)
		memcpy(out + len - 4, "...", 4);
}

static enum MHD_Result on_request(void *cls, struct MHD_Connection *c, const char *url,
                                  const char *method, const char *version, const char *upload_data,
                                  size_t *upload_size, void **con_cls)
{
	(void)url; /* already unescaped by libmicrohttpd: r->target is the raw one */
	(void)version;
	(void)upload_data;
	struct http_server *h = cls;
	struct http_req *r = *con_cls;
	if (!r)
		return reply_error(c, 500, "out of memory", NULL, false);
	if (!r->started) {
		r->started = true;
		const char *cl = MHD_lookup_connection_value(c, MHD_HEADER_KIND,
		                                             MHD_HTTP_HEADER_CONTENT_LENGTH);
		if (cl && strtoull(cl, NULL, 10) > HTTP_BODY_MAX)
			return reply_error(c, 413, "no endpoint takes a request body", NULL, false);
		return MHD_YES; /* the body, if any, comes next */
	}
	if (*upload_size) {
		r->body += *upload_size;
		*upload_size = 0;
		/* A chunked body over the limit: no answer can be queued in
		 * the middle of it, so the connection is closed. */
		return r->body > HTTP_BODY_MAX ? MHD_NO : MHD_YES;
	}

	char peer[80], host[64], user[128], who[256], target[256], verb[16];
	peer_name(c, peer, sizeof(peer), host);
	log_safe(target, sizeof(target), r->target);
	log_safe(verb, sizeof(verb), method);
	uint64_t now = mono_ms();
	/* The configuration says whether there are logins (h->pw is the
	 * reload's, read under pw_lock only). */
	if (h->b->cfg.http_password_file[0] && fail_blocked(h, host, now)) {
		struct api_reply rep = {0};
		api_error(&rep, 429, "too many failed logins from this address: try again later");
		enum MHD_Result ok = send_reply(c, &rep, NULL, false);
		buf_free(&rep.body);
		return ok;
	}
	bool authed = authorised(h, c, user, sizeof(user));
	log_safe(user, sizeof(user), user);
	if (!authed) {
		/* A request without credentials (a browser's first) is no
		 * failed login. */
		if (user[0]) {
			log_write(&h->b->log, LOG_TYPE_NOTICE,
			          "HTTP: refused user %s from %s: wrong password (%s %s).", user,
			          peer, verb, target);
			fail_note(h, host, now, false);
		}
		return reply_error(c, 401, "authentication required", NULL, true);
	}
	if (user[0]) {
		fail_note(h, host, now, true);
		snprintf(who, sizeof(who), "user %s from %s", user, peer);
	} else {
		snprintf(who, sizeof(who), "%s", peer);
	}

	struct api_route route;
	const char *why = NULL, *allow = NULL;
	int status = api_route(method, r->target, r->target_len, &route, &why, &allow);
	struct api_reply rep = {0};
	if (status != 200)
		api_error(&rep, status, why);
	else if (route.write && !same_origin(h, c))
		api_error(&rep, 403, "a request from another origin may not change anything");
	else
		api_dispatch(h, &route, &rep);
	if (route.write ||
	    (status != 200 && strcmp(method, "GET") != 0 && strcmp(method, "HEAD") != 0))
		log_write(&h->b->log, LOG_TYPE_NOTICE, "HTTP: %s: %s %s: %d.", who, verb, target,
		          rep.status);
	else
		log_write(&h->b->log, LOG_TYPE_DEBUG, "HTTP: %s: %s %s: %d.", who, verb, target,
		          rep.status);
	api_route_free(&route);
	enum MHD_Result ok = send_reply(c, &rep, status == 405 ? allow : NULL, false);
	buf_free(&rep.body);
	return ok;
}

static void on_mhd_log(void *cls, const char *fmt, va_list ap)
{
	struct http_server *h = cls;
	char line[512];
	vsnprintf(line, sizeof(line), fmt, ap);
	size_t n = strlen(line);
	while (n && (line[n - 1] == '\n' || line[n - 1] == '\r'))
		line[--n] = 0;
	/* libmicrohttpd's own complaints are about clients (a bad request,
	 * a failed TLS handshake): not errors of ternd. */
	log_write(&h->b->log, LOG_TYPE_INFO, "HTTP: %s", line);
}

/* No unescaping by libmicrohttpd: the router decodes the raw target. */
static size_t no_unescape(void *cls, struct MHD_Connection *c, char *s)
{
	(void)cls;
	(void)c;
	return strlen(s);
}

/* Reads the whole of path (a PEM file) into a NUL-terminated string. */
static char *read_pem(struct broker *b, const char *what, const char *path)
{
	FILE *f = fopen(path, "rb");
	if (!f) {
		log_write(&b->log, LOG_TYPE_ERR, "Error: %s %s: %s", what, path, strerror(errno));
		return NULL;
	}
	struct buf data = {0};
	char chunk[4096];
	size_t n;
	enum tern_err err = TERN_OK;
	while (!err && (n = fread(chunk, 1, sizeof(chunk), f)) > 0)
		err = buf_append(&data, chunk, n, 1u << 20);
	bool bad = ferror(f) || err;
	fclose(f);
	if (!bad)
		bad = buf_append(&data, "", 1, 0) != TERN_OK;
	if (bad) {
		log_write(&b->log, LOG_TYPE_ERR, "Error: %s %s: cannot read it (over 1 MiB?)", what,
		          path);
		if (data.data)
			memset(data.data, 0, data.cap);
		buf_free(&data);
		return NULL;
	}
	return (char *)data.data;
}

static void free_secret(char *s)
{
	if (s) {
		memset(s, 0, strlen(s));
		free(s);
	}
}

static int bind_listener(struct broker *b, char *where, size_t wlen, bool tls)
{
	const struct config *cfg = &b->cfg;
	struct addrinfo hints = {0}, *res = NULL;
	hints.ai_family = AF_UNSPEC;
	hints.ai_socktype = SOCK_STREAM;
	hints.ai_flags = AI_NUMERICSERV | AI_PASSIVE;
	char port[8];
	snprintf(port, sizeof(port), "%u", cfg->http_port);
	const char *host = cfg->http_bind[0] ? cfg->http_bind : "127.0.0.1";
	int rc = getaddrinfo(host, port, &hints, &res);
	if (rc) {
		log_write(&b->log, LOG_TYPE_ERR, "Error: http_listener: %s", gai_strerror(rc));
		return -1;
	}
	int fd = socket(res->ai_family, SOCK_STREAM | SOCK_CLOEXEC, 0);
	int one = 1;
	if (fd >= 0)
		setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
	if (fd < 0 || bind(fd, res->ai_addr, res->ai_addrlen) < 0 || listen(fd, 64) < 0) {
		log_write(&b->log, LOG_TYPE_ERR, "Error: http_listener %s:%u: %s", host,
		          cfg->http_port, strerror(errno));
		if (fd >= 0)
			close(fd);
		freeaddrinfo(res);
		return -1;
	}
	freeaddrinfo(res);
	snprintf(where, wlen, "%s://%s%s%s:%u", tls ? "https" : "http",
	         strchr(host, ':') ? "[" : "", host, strchr(host, ':') ? "]" : "", cfg->http_port);
	return fd;
}

static enum tern_err load_passwords(struct broker *b, struct passwd_db **out)
{
	char err[512];
	*out = NULL;
	if (!b->cfg.http_password_file[0])
		return TERN_OK;
	enum tern_err e = passwd_load(b->cfg.http_password_file, out, err, sizeof(err));
	if (e)
		log_write(&b->log, LOG_TYPE_ERR, "Error: http_password_file: %s", err);
	return e;
}

enum tern_err http_open(struct broker *b, struct http_server **out)
{
	*out = NULL;
	const struct config *cfg = &b->cfg;
	if (!cfg->http_port)
		return TERN_OK;
	struct http_server *h = calloc(1, sizeof(*h));
	if (!h)
		return TERN_E_NOMEM;
	h->b = b;
	h->fd = -1;
	pthread_rwlock_init(&h->pw_lock, NULL);
	pthread_mutex_init(&h->reload_mu, NULL);
	pthread_mutex_init(&h->fail_mu, NULL);
	enum tern_err err = TERN_OK;
	if (cfg->http_certfile[0]) {
		if (!MHD_is_feature_supported(MHD_FEATURE_TLS)) {
			log_write(&b->log, LOG_TYPE_ERR,
			          "Error: http_certfile: this libmicrohttpd has no TLS");
			err = TERN_E_CONFIG;
		} else if (!(h->cert = read_pem(b, "http_certfile", cfg->http_certfile)) ||
		           !(h->key = read_pem(b, "http_keyfile", cfg->http_keyfile))) {
			err = TERN_E_SYS;
		}
	}
	if (!err)
		err = load_passwords(b, &h->pw);
	if (!err && (h->fd = bind_listener(b, h->where, sizeof(h->where), h->cert != NULL)) < 0)
		err = TERN_E_SYS;
	if (err) {
		http_close(h);
		return err;
	}
	*out = h;
	return TERN_OK;
}

enum tern_err http_start(struct http_server *h)
{
	if (!h)
		return TERN_OK;
	struct broker *b = h->b;
	enum tern_err err = api_rates_start(b, &h->rates);
	if (err)
		return err;
	unsigned flags = MHD_USE_AUTO_INTERNAL_THREAD | MHD_USE_ERROR_LOG;
	if (h->cert)
		flags |= MHD_USE_TLS;
	/* The logger first (libmicrohttpd logs with its own until it has
	 * it); TLS last, only when configured (MHD_OPTION_END ends the list
	 * early otherwise). */
	h->daemon = MHD_start_daemon(
	        flags, 0, NULL, NULL, on_request, h, MHD_OPTION_EXTERNAL_LOGGER, on_mhd_log, h,
	        MHD_OPTION_LISTEN_SOCKET, h->fd, MHD_OPTION_THREAD_POOL_SIZE,
	        (unsigned)HTTP_THREADS, MHD_OPTION_CONNECTION_LIMIT, (unsigned)HTTP_MAX_CONNS,
	        MHD_OPTION_CONNECTION_TIMEOUT, (unsigned)HTTP_IDLE_TIMEOUT_S,
	        MHD_OPTION_CONNECTION_MEMORY_LIMIT, (size_t)HTTP_CONN_MEMORY,
	        MHD_OPTION_URI_LOG_CALLBACK, on_uri, h, MHD_OPTION_NOTIFY_COMPLETED, on_done, h,
	        MHD_OPTION_UNESCAPE_CALLBACK, no_unescape, h, MHD_OPTION_SIGPIPE_HANDLED_BY_APP, 1,
	        h->cert ? MHD_OPTION_HTTPS_MEM_CERT : MHD_OPTION_END, h->cert,
	        MHD_OPTION_HTTPS_MEM_KEY, h->key, MHD_OPTION_END);
	if (!h->daemon) {
		log_write(&b->log, LOG_TYPE_ERR,
		          "Error: http_listener %s: cannot start the HTTP server%s", h->where,
		          h->cert ? " (is http_certfile / http_keyfile a PEM certificate and an "
		                    "unencrypted key?)"
		                  : "");
		api_rates_stop(h->rates);
		h->rates = NULL;
		return TERN_E_SYS;
	}
	h->fd = -1; /* libmicrohttpd's now: MHD_stop_daemon() closes it */
	const char *bind = b->cfg.http_bind;
	bool logins = b->cfg.http_password_file[0] != 0;
	bool open = !logins && bind[0] && strncmp(bind, "127.", 4) != 0 &&
	            strcmp(bind, "::1") != 0 && strcmp(bind, "localhost") != 0;
	log_write(&b->log, LOG_TYPE_NOTICE, "Serving the dashboard, /metrics and /api/v1 on %s%s.",
	          h->where, logins ? " (basic authentication)" : "");
	if (open)
		log_write(&b->log, LOG_TYPE_WARNING,
		          "Warning: http_listener %s is not on loopback and has no "
		          "http_password_file: whoever reaches it can disconnect clients.",
		          h->where);
	return TERN_OK;
}

enum tern_err http_reload(struct broker *b, struct http_server *h)
{
	if (!h)
		return auth_reload(b);
	pthread_mutex_lock(&h->reload_mu);
	enum tern_err err = auth_reload(b);
	struct passwd_db *pw = NULL;
	enum tern_err perr = load_passwords(b, &pw);
	if (perr) {
		log_write(&b->log, LOG_TYPE_ERR,
		          "Reload failed: the previous http_password_file stays in force.");
		if (!err)
			err = perr;
	} else if (b->cfg.http_password_file[0]) {
		pthread_rwlock_wrlock(&h->pw_lock);
		struct passwd_db *old = h->pw;
		h->pw = pw;
		pthread_rwlock_unlock(&h->pw_lock);
		passwd_free(old);
		log_write(&b->log, LOG_TYPE_NOTICE, "Reloaded http_password_file.");
	}
	pthread_mutex_unlock(&h->reload_mu);
	return err;
}

void http_close(struct http_server *h)
{
	if (!h)
		return;
	if (h->daemon)
		MHD_stop_daemon(h->daemon);
	if (h->fd >= 0)
		close(h->fd);
	api_rates_stop(h->rates);
	passwd_free(h->pw);
	free_secret(h->cert);
	free_secret(h->key);
	pthread_rwlock_destroy(&h->pw_lock);
	pthread_mutex_destroy(&h->reload_mu);
	pthread_mutex_destroy(&h->fail_mu);
	free(h);
}
