/*
 * transport_ws.c - MQTT over WebSockets (RFC 6455), over TCP or TLS.
 *
 * Written here rather than taken from libwebsockets: that library wants to
 * own the event loop and the connection buffers, while our transport table
 * only needs a byte stream on our own epoll loop, and the server side of
 * the protocol is small (an HTTP/1.1 upgrade, then frames).
 *
 * Reading: the HTTP upgrade request is collected (at most 8 KiB) and
 * answered with 101 and the "mqtt" subprotocol; afterwards frame headers
 * are decoded and the (unmasked) payload of binary and continuation frames
 * is handed to conn.c as one continuous byte stream, so an MQTT packet may
 * span frames and a frame may carry several packets, with no frame ever
 * buffered whole. Control frames are answered (PING with PONG, CLOSE with
 * CLOSE). Text frames, unmasked client frames and reserved bits end the
 * connection, as RFC 6455 and MQTT 5.0 section 6 require.
 *
 * Writing: each write becomes one binary frame, kept in the layer's own
 * buffer until the socket takes it; conn.c flushes that buffer through
 * write(c, NULL, 0) when out_pending() says so, and no new frame is taken
 * while one waits. A PING read while output waits is answered once that
 * output is gone, and only the latest of several (RFC 6455 5.5.3 allows
 * it), so a client that sends PINGs and never reads cannot make the layer
 * hold more than one data frame and one PONG. While the layer's own output
 * waits, a read asks for writability (tp_read_wants_write), so that the
 * 101 answer or a PONG goes out even if conn.c has nothing to write.
 *
 * With enable_proxy_protocol, the PROXY header is read before the HTTP
 * request (conn_proxy.c), so the client's address is the one logged.
 *
 * With http_dir, a request that is not an upgrade is answered as a web
 * server would, as mosquitto's libwebsockets listeners do: GET or HEAD of
 * a file beneath the directory (ws_http.c reads the path), sent from the
 * file 64 KiB at a time as the socket takes it, then the connection ends
 * (Connection: close: one request per connection).
 */
#include <errno.h>
#include <fcntl.h>
#include <linux/openat2.h>
#include <openssl/evp.h>
#include <openssl/sha.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <unistd.h>

#include "broker/broker.h"
#include "broker/conn.h"
#include "broker/conn_internal.h"
#include "broker/transport.h"
#include "broker/worker.h"
#include "broker/ws_http.h"
#include "util/buf.h"
#include "util/log.h"

#define WS_HANDSHAKE_MAX 8192
#define WS_IN_CHUNK      16384
#define WS_FILE_CHUNK    65536

/* WS_HTTP: answering a plain HTTP request (http_dir), then closed. */
enum ws_phase { WS_HANDSHAKE, WS_OPEN, WS_HTTP, WS_CLOSED };

struct ws_conn {
	enum ws_phase phase;
	struct buf hs;  /* the upgrade request, while in WS_HANDSHAKE */
	struct buf in;  /* raw bytes not yet decoded */
	struct buf out; /* framed bytes not yet written */
	uint64_t left;  /* payload bytes left in the current data frame */
	uint8_t mask[4];
	uint8_t mask_pos;
	uint8_t pong_len;
	uint8_t pong[125]; /* payload of the latest PING not answered yet */
	bool pong_due;
	bool in_data;    /* inside a data frame's payload */
	bool fragmented; /* a data message is open (continuations allowed) */
	bool close_seen;
	bool file_open; /* WS_HTTP: file is what is left to send */
	int file;
};

static const struct transport *base(const struct conn *c)
{
	return c->listener->base;
}

static TERN_MUST_CHECK enum tern_err ws_open(struct conn *c, const struct listener *l)
{
	struct ws_conn *ws = calloc(1, sizeof(*ws));
	if (!ws)
		return TERN_E_NOMEM;
	enum tern_err err = l->base->open(c, l);
	if (err) {
		free(ws);
		return err;
	}
	c->ws = ws;
	return TERN_OK;
}

static void ws_close(struct conn *c)
{
	struct ws_conn *ws = c->ws;
	if (ws) {
		buf_free(&ws->hs);
		buf_free(&ws->in);
		buf_free(&ws->out);
		if (ws->file_open)
			close(ws->file);
		free(ws);
		c->ws = NULL;
	}
	base(c)->close(c);
}

static TERN_MUST_CHECK enum tern_err frame(struct ws_conn *ws, uint8_t opcode, const void *p,
                                           size_t len);

static bool out_waiting(const struct ws_conn *ws)
{
	return buf_used(&ws->out) || ws->pong_due;
}

/* Writes the layer's own output, then the PONG that waited for it;
 * TERN_E_INCOMPLETE while some is left. */
static TERN_MUST_CHECK enum tern_err flush_out(struct conn *c)
{
	struct ws_conn *ws = c->ws;
	for (;;) {
		while (buf_used(&ws->out)) {
			size_t n = 0;
			enum tern_err e = base(c)->write(c, ws->out.data + ws->out.off,
			                                 buf_used(&ws->out), &n);
			if (e)
				return e;
			if (n == 0)
				return TERN_E_INCOMPLETE;
			buf_consume(&ws->out, n);
		}
		if (!ws->pong_due)
			break;
		ws->pong_due = false;
		if (ws->phase == WS_CLOSED)
			break; /* nothing follows a close frame (RFC 6455 5.5.1) */
		enum tern_err e = frame(ws, 0xA, ws->pong, ws->pong_len);
		if (e != TERN_OK)
			return e;
	}
	buf_free_in(&ws->out, &c->w->bins);
	return TERN_OK;
}

/* Appends one frame (FIN set, server frames unmasked). TERN_E_NOMEM. */
static enum tern_err frame(struct ws_conn *ws, uint8_t opcode, const void *p, size_t len)
{
	uint8_t h[10];
	size_t hl = 2;
	h[0] = (uint8_t)(0x80 | opcode);
	if (len < 126) {
		h[1] = (uint8_t)len;
	} else if (len <= 0xffff) {
		h[1] = 126;
		h[2] = (uint8_t)(len >> 8);
		h[3] = (uint8_t)len;
		hl = 4;
	} else {
		h[1] = 127;
		for (int i = 0; i < 8; i++)
			h[2 + i] = (uint8_t)((uint64_t)len >> (56 - 8 * i));
		hl = 10;
	}
	enum tern_err e = buf_append(&ws->out, h, hl, 0);
	return e != TERN_OK ? e : buf_append(&ws->out, p, len, 0);
}

/* Case-insensitive search for a header's value in the request; copies it
 * (trimmed) into out. */
static bool header(const char *req, const char *name, char *out, size_t cap)
{
	size_t nl = strlen(name);
	for (const char *line = strstr(req, "\r\n"); line; line = strstr(line + 2, "\r\n")) {
		const char *h = line + 2;
		if (strncasecmp(h, name, nl) != 0 || h[nl] != ':')
			continue;
		const char *v = h + nl + 1;
		while (*v == ' ' || *v == '\t')
			v++;
		const char *end = strstr(v, "\r\n");
		size_t len = end ? (size_t)(end - v) : strlen(v);
		while (len && (v[len - 1] == ' ' || v[len - 1] == '\t'))
			len--;
		if (len >= cap)
			return false;
		memcpy(out, v, len);
		out[len] = 0;
		return true;
	}
	return false;
}

/* True if the comma-separated list has token (case-insensitive). */
static bool has_token(const char *list, const char *token)
{
	size_t tl = strlen(token);
	for (const char *p = list; *p;) {
		while (*p == ' ' || *p == ',')
			p++;
		const char *e = p;
		while (*e && *e != ',')
			e++;
		size_t l = (size_t)(e - p);
		while (l && p[l - 1] == ' ')
			l--;
		if (l == tl && strncasecmp(p, token, tl) == 0)
			return true;
		p = e;
	}
	return false;
}

/* Whether origin is one of the lines of list (exactly, as mosquitto
 * compares it). */
static bool listed(const char *list, const char *origin)
{
	size_t ol = strlen(origin);
	for (const char *p = list; *p;) {
		const char *e = strchr(p, '\n');
		size_t l = e ? (size_t)(e - p) : strlen(p);
		if (l == ol && memcmp(p, origin, l) == 0)
			return true;
		p += l + (e ? 1 : 0);
	}
	return false;
}

/* Answers the upgrade request with an HTTP error (status: "400 Bad
 * Request", ...) and ends the layer. */
static void refuse_upgrade(struct conn *c, const char *status, const char *why)
{
	struct ws_conn *ws = c->ws;
	char resp[256];
	int n = snprintf(resp, sizeof(resp),
	                 "HTTP/1.1 %s\r\nConnection: close\r\nContent-Length: 0\r\n"
	                 "X-Tern-Reason: %s\r\n\r\n",
	                 status, why);
	if (buf_append(&ws->out, resp, (size_t)n, 0) == TERN_OK) {
		/* Best effort: the connection ends here whether the answer
		 * goes out or not. */
		enum tern_err best_effort = flush_out(c);
		(void)best_effort;
	}
	ws->phase = WS_CLOSED;
	log_write(&c->w->broker->log, LOG_TYPE_WEBSOCKETS, "WebSocket upgrade from %s refused: %s.",
	          conn_peer(c, (char[64]){0}), why);
}

static void bad_request(struct conn *c, const char *why)
{
	refuse_upgrade(c, "400 Bad Request", why);
}

/* Opens path beneath directory dir, following no link out of it (openat2's
 * RESOLVE_BENEATH); on a kernel without openat2 (before 5.6), with no
 * link followed at all. -1 with errno when it cannot. */
static int open_beneath(int dir, const char *path)
{
	struct open_how how = {.flags = O_RDONLY | O_CLOEXEC | O_NOCTTY | O_NONBLOCK,
	                       .resolve = RESOLVE_BENEATH | RESOLVE_NO_MAGICLINKS};
	long fd = syscall(SYS_openat2, dir, path, &how, sizeof(how));
	if (fd < 0 && errno == ENOSYS)
		fd = openat(dir, path, O_RDONLY | O_CLOEXEC | O_NOCTTY | O_NONBLOCK | O_NOFOLLOW);
	return (int)fd;
}

static const char *status_text(int status)
{
	switch (status) {
	case 200:
		return "OK";
	case 400:
		return "Bad Request";
	case 405:
		return "Method Not Allowed";
	case 414:
		return "URI Too Long";
	default:
		return "Not Found";
	}
}

/* Answers a request that is not an upgrade from http_dir: the file's
 * headers now, its bytes as http_drain() sends them. TERN_E_NOMEM. */
static TERN_MUST_CHECK enum tern_err serve_http(struct conn *c, const char *req)
{
	struct ws_conn *ws = c->ws;
	char path[WS_HTTP_PATH_MAX + 16];
	bool head = false;
	int status = ws_http_target(req, path, &head);
	/* The path is the request's only when it was read whole. */
	bool named = status == 0;
	int fd = -1;
	struct stat st;
	if (!status) {
		fd = open_beneath(c->listener->http_dir, path);
		if (fd >= 0 && fstat(fd, &st) == 0 && S_ISDIR(st.st_mode)) {
			/* A directory named without its '/': its index. */
			int in = open_beneath(fd, "index.html");
			close(fd);
			fd = in;
			strcat(path, "/index.html");
		}
		/* Whatever the reason (none there, a link out of the
		 * directory, no right to read it), nothing more is said. */
		if (fd < 0 || fstat(fd, &st) != 0 || !S_ISREG(st.st_mode))
			status = 404;
	}
	char hdr[512];
	int n;
	if (status) {
		if (fd >= 0)
			close(fd);
		fd = -1;
		char body[64];
		int blen = snprintf(body, sizeof(body), "%d %s\n", status, status_text(status));
		n = snprintf(hdr, sizeof(hdr),
		             "HTTP/1.1 %d %s\r\nContent-Type: text/plain; charset=utf-8\r\n"
		             "Content-Length: %d\r\n%sConnection: close\r\n\r\n%s",
		             status, status_text(status), blen,
		             status == 405 ? "Allow: GET, HEAD\r\n" : "", head ? "" : body);
	} else {
		n = snprintf(hdr, sizeof(hdr),
		             "HTTP/1.1 200 OK\r\nContent-Type: %s\r\nContent-Length: %lld\r\n"
		             "Connection: close\r\n\r\n",
		             ws_http_type(path), (long long)st.st_size);
	}
	log_write(&c->w->broker->log, LOG_TYPE_WEBSOCKETS, "HTTP %s /%s from %s: %d.",
	          head ? "HEAD" : "GET", named ? path : "", conn_peer(c, (char[64]){0}),
	          status ? status : 200);
	buf_free(&ws->hs);
	ws->phase = WS_HTTP;
	if (buf_append(&ws->out, hdr, (size_t)n, 0)) {
		if (fd >= 0)
			close(fd);
		ws->phase = WS_CLOSED;
		return TERN_E_NOMEM;
	}
	if (fd >= 0 && !head) {
		ws->file = fd;
		ws->file_open = true;
	} else if (fd >= 0) {
		close(fd);
	}
	return TERN_OK;
}

/* Sends what is left of the answer: TERN_E_INCOMPLETE while the socket
 * does not take it (conn.c then waits for writability, since output
 * waits), TERN_E_CLOSED once all of it went. */
static TERN_MUST_CHECK enum tern_err http_drain(struct conn *c)
{
	struct ws_conn *ws = c->ws;
	for (;;) {
		enum tern_err e = flush_out(c);
		if (e)
			return e;
		if (!ws->file_open) {
			ws->phase = WS_CLOSED;
			return TERN_E_CLOSED;
		}
		if (buf_reserve_in(&ws->out, WS_FILE_CHUNK, 0, &c->w->bins))
			return TERN_E_NOMEM;
		ssize_t got = read(ws->file, ws->out.data + ws->out.len, ws->out.cap - ws->out.len);
		if (got <= 0) {
			/* The end (or a read error: the client sees a short
			 * body against Content-Length). */
			close(ws->file);
			ws->file_open = false;
			continue;
		}
		ws->out.len += (size_t)got;
	}
}

/* Answers a complete upgrade request. TERN_E_PROTOCOL when it is refused
 * (after a 400 answer), TERN_E_TLS when OpenSSL cannot hash the key,
 * TERN_E_NOMEM; the layer is closed then. */
static TERN_MUST_CHECK enum tern_err upgrade(struct conn *c)
{
	struct ws_conn *ws = c->ws;
	const char *req = (const char *)ws->hs.data + ws->hs.off;
	char key[128], version[16], upg[64], conn_hdr[128], proto[256] = "";
	if (c->listener->http_dir_open &&
	    !(header(req, "Upgrade", upg, sizeof(upg)) && has_token(upg, "websocket")))
		return serve_http(c, req);
	if (strncmp(req, "GET ", 4) != 0) {
		bad_request(c, "not a GET request");
		return TERN_E_PROTOCOL;
	}
	if (!header(req, "Upgrade", upg, sizeof(upg)) || !has_token(upg, "websocket") ||
	    !header(req, "Connection", conn_hdr, sizeof(conn_hdr)) ||
	    !has_token(conn_hdr, "upgrade")) {
		bad_request(c, "not a WebSocket upgrade");
		return TERN_E_PROTOCOL;
	}
	if (!header(req, "Sec-WebSocket-Version", version, sizeof(version)) ||
	    strcmp(version, "13") != 0) {
		bad_request(c, "unsupported WebSocket version");
		return TERN_E_PROTOCOL;
	}
	if (!header(req, "Sec-WebSocket-Key", key, sizeof(key)) || !key[0]) {
		bad_request(c, "no Sec-WebSocket-Key");
		return TERN_E_PROTOCOL;
	}
	const char *origins = c->listener->cfg->websockets_origins;
	if (origins[0]) {
		/* websockets_origin: a browser says where the page that opens
		 * the socket came from; only the listed ones are let in. */
		char origin[256];
		if (!header(req, "Origin", origin, sizeof(origin)) || !listed(origins, origin)) {
			refuse_upgrade(c, "403 Forbidden",
			               "origin not allowed (websockets_origin)");
			return TERN_E_PROTOCOL;
		}
	}
	/* MQTT 5.0 section 6: the subprotocol is "mqtt"; old clients say
	 * "mqttv3.1". A client that names none is let in, as mosquitto does. */
	header(req, "Sec-WebSocket-Protocol", proto, sizeof(proto));
	const char *chosen = has_token(proto, "mqtt")       ? "mqtt"
	                     : has_token(proto, "mqttv3.1") ? "mqttv3.1"
	                                                    : NULL;
	if (proto[0] && !chosen) {
		bad_request(c, "subprotocol is not mqtt");
		return TERN_E_PROTOCOL;
	}
	char cat[200];
	snprintf(cat, sizeof(cat), "%s258EAFA5-E914-47DA-95CA-C5AB0DC85B11", key);
	unsigned char sha[SHA_DIGEST_LENGTH];
	if (!EVP_Digest(cat, strlen(cat), sha, NULL, EVP_sha1(), NULL)) {
		ws->phase = WS_CLOSED;
		return TERN_E_TLS;
	}
	char accept[64];
	EVP_EncodeBlock((unsigned char *)accept, sha, SHA_DIGEST_LENGTH);
	char resp[512];
	int n = snprintf(resp, sizeof(resp),
	                 "HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\n"
	                 "Connection: Upgrade\r\nSec-WebSocket-Accept: %s\r\n%s%s%s\r\n",
	                 accept, chosen ? "Sec-WebSocket-Protocol: " : "", chosen ? chosen : "",
	                 chosen ? "\r\n" : "");
	if (buf_append(&ws->out, resp, (size_t)n, 0)) {
		ws->phase = WS_CLOSED;
		return TERN_E_NOMEM;
	}
	/* Bytes after the request are already WebSocket frames. */
	const char *end = strstr(req, "\r\n\r\n") + 4;
	size_t extra = buf_used(&ws->hs) - (size_t)(end - req);
	if (extra && buf_append(&ws->in, end, extra, 0)) {
		ws->phase = WS_CLOSED;
		return TERN_E_NOMEM;
	}
	buf_free(&ws->hs);
	ws->phase = WS_OPEN;
	log_write(&c->w->broker->log, LOG_TYPE_WEBSOCKETS, "WebSocket connection from %s.",
	          conn_peer(c, (char[64]){0}));
	return TERN_OK;
}

/* Reads what the socket has into ws->in (or ws->hs), its memory from the
 * worker's bins (util/buf.h). */
static TERN_MUST_CHECK enum tern_err fill(struct conn *c, struct buf *b)
{
	if (buf_reserve_in(b, WS_IN_CHUNK, 0, &c->w->bins))
		return TERN_E_NOMEM;
	size_t n = 0;
	enum tern_err e = base(c)->read(c, b->data + b->len, b->cap - b->len, &n);
	if (e)
		return e;
	b->len += n;
	return TERN_OK;
}

/* Decodes frames from ws->in into out; TERN_OK with *got > 0 bytes
 * produced, TERN_E_CLOSED for a close (with nothing produced before it),
 * TERN_E_INCOMPLETE when more input is needed, TERN_E_PROTOCOL on a
 * violation. */
static TERN_MUST_CHECK enum tern_err decode(struct conn *c, uint8_t *out, size_t cap, size_t *got)
{
	struct ws_conn *ws = c->ws;
	size_t produced = 0;
	*got = 0;
	while (produced < cap) {
		size_t avail = buf_used(&ws->in);
		/* An empty buffer may own no memory: NULL + 0 is undefined. */
		const uint8_t *p = avail ? ws->in.data + ws->in.off : NULL;
		if (ws->in_data) {
			if (ws->left == 0) {
				ws->in_data = false;
				continue;
			}
			size_t n = avail < cap - produced ? avail : cap - produced;
			if (n > ws->left)
				n = (size_t)ws->left;
			if (n == 0)
				break;
			for (size_t i = 0; i < n; i++)
				out[produced + i] = p[i] ^ ws->mask[(ws->mask_pos + i) & 3];
			ws->mask_pos = (uint8_t)((ws->mask_pos + n) & 3);
			ws->left -= n;
			produced += n;
			buf_consume(&ws->in, n);
			continue;
		}
		if (avail < 2)
			break;
		uint8_t b0 = p[0], b1 = p[1];
		size_t hl = 2;
		uint64_t len = b1 & 0x7f;
		if (len == 126)
			hl = 4;
		else if (len == 127)
			hl = 10;
		hl += 4; /* client frames are masked */
		if (avail < hl)
			break;
		if (len == 126)
			len = ((uint64_t)p[2] << 8) | p[3];
		else if (len == 127) {
			len = 0;
			for (int i = 0; i < 8; i++)
				len = (len << 8) | p[2 + i];
		}
		uint8_t opcode = b0 & 0x0f;
		bool fin = b0 & 0x80;
		if ((b0 & 0x70) || !(b1 & 0x80) || (len >> 63)) {
			/* Reserved bits, an unmasked client frame (RFC 6455
			 * 5.1), or a length with the top bit set. */
			return TERN_E_PROTOCOL;
		}
		const uint8_t *mask = p + hl - 4;
		if (opcode >= 8) {
			/* Control frames: at most 125 bytes, never fragmented. */
			if (len > 125 || !fin)
				return TERN_E_PROTOCOL;
			if (avail < hl + len)
				break;
			uint8_t body[125];
			for (size_t i = 0; i < len; i++)
				body[i] = p[hl + i] ^ mask[i & 3];
			buf_consume(&ws->in, hl + (size_t)len);
			if (opcode == 0x8) {
				/* Echo the close, best effort: the stream ends
				 * here whether the echo goes out or not. */
				enum tern_err best_effort = frame(ws, 0x8, body, len >= 2 ? 2 : 0);
				ws->phase = WS_CLOSED;
				if (best_effort == TERN_OK)
					best_effort = flush_out(c);
				(void)best_effort;
				*got = produced;
				return produced ? TERN_OK : TERN_E_CLOSED;
			}
			if (opcode == 0x9) {
				/* Answered by flush_out(), after what waits. */
				memcpy(ws->pong, body, (size_t)len);
				ws->pong_len = (uint8_t)len;
				ws->pong_due = true;
				continue;
			}
			if (opcode != 0xA)
				return TERN_E_PROTOCOL;
			continue;
		}
		/* MQTT travels in binary frames only (MQTT 5.0 [MQTT-6.0.0-1]). */
		if (opcode == 0x1 || opcode > 0x2)
			return TERN_E_PROTOCOL;
		if (opcode == 0x0 && !ws->fragmented)
			return TERN_E_PROTOCOL;
		if (opcode == 0x2 && ws->fragmented)
			return TERN_E_PROTOCOL;
		ws->fragmented = !fin;
		memcpy(ws->mask, mask, 4);
		ws->mask_pos = 0;
		ws->left = len;
		ws->in_data = true;
		buf_consume(&ws->in, hl);
	}
	if (!buf_used(&ws->in))
		buf_free_in(&ws->in, &c->w->bins);
	*got = produced;
	return produced ? TERN_OK : TERN_E_INCOMPLETE;
}

/* An error of flush_out() that ends the connection (not a wait). */
static bool failed(enum tern_err e)
{
	return e != TERN_OK && e != TERN_E_INCOMPLETE;
}

static TERN_MUST_CHECK enum tern_err read_frames(struct conn *c, void *buf, size_t len, size_t *n)
{
	struct ws_conn *ws = c->ws;
	enum tern_err e;
	if (ws->phase == WS_CLOSED)
		return TERN_E_CLOSED;
	if (ws->phase == WS_HTTP)
		return http_drain(c);
	if (out_waiting(ws) && failed(e = flush_out(c)))
		return e;
	while (ws->phase == WS_HANDSHAKE) {
		if ((e = fill(c, &ws->hs)))
			return e;
		if (c->listener->cfg->proxy_protocol && !c->proxy_done) {
			/* enable_proxy_protocol (mosquitto 2.1 takes it on
			 * websockets listeners too): the load balancer's
			 * header comes before the HTTP request. A bad one
			 * closes the connection (conn_proxy.c). */
			size_t used = 0;
			if (!conn_proxy_header(c, ws->hs.data + ws->hs.off, buf_used(&ws->hs),
			                       &used)) {
				if (c->state == CONN_CLOSING)
					return TERN_E_CLOSED;
				continue;
			}
			buf_consume(&ws->hs, used);
		}
		uint32_t max = c->w->broker->cfg.websockets_headers_size;
		if (buf_used(&ws->hs) > (max ? max : WS_HANDSHAKE_MAX)) {
			bad_request(c, "request too large");
			return TERN_E_CLOSED;
		}
		/* Terminate for the string functions; the byte is not kept. */
		if (buf_reserve(&ws->hs, 1, 0))
			return TERN_E_NOMEM;
		ws->hs.data[ws->hs.len] = 0;
		if (!strstr((const char *)ws->hs.data + ws->hs.off, "\r\n\r\n"))
			continue;
		/* Refused (answered 400) or unable to answer: the stream
		 * ends here, quietly, as the peer's end of it would. */
		if (upgrade(c) != TERN_OK)
			return TERN_E_CLOSED;
		if (ws->phase == WS_HTTP)
			return http_drain(c);
		if (failed(e = flush_out(c)))
			return e;
	}
	for (;;) {
		e = decode(c, buf, len, n);
		if (out_waiting(ws)) {
			/* A PONG or close echo goes out as soon as it can;
			 * what stops it also fails the next write, which
			 * ends the connection there. */
			enum tern_err next_write_tells = flush_out(c);
			(void)next_write_tells;
		}
		if (e != TERN_E_INCOMPLETE)
			return e;
		if ((e = fill(c, &ws->in)))
			return e;
	}
}

static TERN_MUST_CHECK enum tern_err ws_read(struct conn *c, void *buf, size_t len, size_t *n)
{
	/* Set again below, or by a TLS layer underneath, when still so. */
	c->tp_read_wants_write = false;
	*n = 0;
	enum tern_err e = read_frames(c, buf, len, n);
	if (c->ws->phase != WS_CLOSED && out_waiting(c->ws))
		c->tp_read_wants_write = true;
	return e;
}

static TERN_MUST_CHECK enum tern_err ws_write(struct conn *c, const void *buf, size_t len,
                                              size_t *n)
{
	struct ws_conn *ws = c->ws;
	*n = 0;
	if (ws->phase != WS_OPEN)
		return ws->phase == WS_CLOSED ? TERN_E_CLOSED : TERN_E_INCOMPLETE;
	enum tern_err e = flush_out(c);
	if (e || len == 0)
		return e;
	if ((e = frame(ws, 0x2, buf, len)) != TERN_OK)
		return e;
	e = flush_out(c);
	if (failed(e))
		return e;
	/* The frame is ours now, written or not: the caller's bytes are
	 * consumed. */
	*n = len;
	return TERN_OK;
}

/* A close frame (1000, normal closure: the MQTT DISCONNECT before it says
 * why, RFC 6455 section 7.4.1), then the base transport's farewell. */
static TERN_MUST_CHECK enum tern_err ws_goodbye(struct conn *c)
{
	struct ws_conn *ws = c->ws;
	if (ws && ws->phase == WS_OPEN) {
		static const uint8_t normal[2] = {0x03, 0xE8};
		enum tern_err e = frame(ws, 0x8, normal, sizeof(normal));
		if (e != TERN_OK)
			return e;
		ws->phase = WS_CLOSED;
	}
	if (ws && out_waiting(ws)) {
		enum tern_err e = flush_out(c);
		if (e)
			return e;
	}
	return base(c)->goodbye ? base(c)->goodbye(c) : TERN_OK;
}

static bool ws_pending(const struct conn *c)
{
	const struct ws_conn *ws = c->ws;
	return (ws && buf_used(&ws->in)) || base(c)->pending(c);
}

static bool ws_out_pending(const struct conn *c)
{
	return c->ws && out_waiting(c->ws);
}

const struct transport transport_ws = {
        .name = "websockets",
        .open = ws_open,
        .read = ws_read,
        .write = ws_write,
        .out_pending = ws_out_pending,
        .pending = ws_pending,
        .goodbye = ws_goodbye,
        .close = ws_close,
};
