/*
 * client.c - the client object: creation and destruction, the copy of the
 * connection options, deep copies of v5 properties, and the small public
 * accessors.
 *
 * The library promises (tern.h) that every pointer handed in is only read
 * during the call. Options are therefore copied when a connect starts: the
 * strings one by one and each property set (CONNECT, will) into one block
 * by tern__props_copy(), which rebases every pointer of the struct into its
 * own allocation. The same copy keeps a server DISCONNECT's properties alive
 * until on_disconnect has seen them.
 */
#include <netdb.h>
#include <stddef.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "client/client_internal.h"

void tern_connect_opts_init(struct tern_connect_opts *opts)
{
	memset(opts, 0, sizeof(*opts));
	opts->host = "127.0.0.1";
	opts->port = 1883;
	opts->version = TERN_V311;
	opts->clean_start = true;
	opts->keep_alive = 60;
	opts->connect_timeout_ms = 10000;
	opts->reconnect_min_ms = 500;
	opts->reconnect_max_ms = 30000;
}

enum tern_err tern_client_new(struct tern_client **out, const struct tern_callbacks *cb, void *ud)
{
	struct tern_client *c = calloc(1, sizeof(*c));
	if (c == NULL)
		return TERN_E_NOMEM;
	if (cb != NULL)
		c->cb = *cb;
	c->ud = ud;
	c->fd = -1;
	c->state = TERN__IDLE;
	c->next_id = 1;
	/* Jitter only has to differ between clients and runs, not be secret:
	 * the clock and the object's address are enough. */
	struct timespec ts;
	clock_gettime(CLOCK_REALTIME, &ts);
	c->rng = ((uint64_t)ts.tv_nsec << 20) ^ (uint64_t)ts.tv_sec ^ (uint64_t)(uintptr_t)c ^
	         ((uint64_t)getpid() << 40);
	if (c->rng == 0)
		c->rng = 0x9E3779B97F4A7C15u;
	*out = c;
	return TERN_OK;
}

/* Frees the copied options. */
static void opts_free(struct tern_client *c)
{
	free(c->host);
	free(c->bind_address);
	free(c->username);
	free(c->password);
	free(c->will_topic);
	free(c->will_payload);
	tern__props_copy_free(&c->props);
	tern__props_copy_free(&c->will_props);
	c->host = c->bind_address = c->username = c->will_topic = NULL;
	c->password = c->will_payload = NULL;
	c->have_opts = false;
}

void tern_client_free(struct tern_client *c)
{
	if (c == NULL)
		return;
	tern__tls_free(c);
	if (c->fd >= 0)
		close(c->fd);
	if (c->ai_list != NULL)
		freeaddrinfo(c->ai_list);
	buf_free(&c->in);
	buf_free(&c->out);
	tern__proto_free(c);
	tern__props_copy_free(&c->server_props);
	opts_free(c);
	free(c->client_id);
	free(c);
}

/* strdup that maps NULL to NULL and reports failure separately:
 * TERN_E_NOMEM (*dst is NULL then). */
static TERN_MUST_CHECK enum tern_err dup_str(char **dst, const char *s)
{
	*dst = NULL;
	if (s == NULL)
		return TERN_OK;
	*dst = strdup(s);
	return *dst != NULL ? TERN_OK : TERN_E_NOMEM;
}

/* malloc + memcpy of n bytes (at least one byte allocated). TERN_E_NOMEM
 * (*dst is NULL then). */
static TERN_MUST_CHECK enum tern_err dup_mem(uint8_t **dst, const void *p, size_t n)
{
	*dst = malloc(n ? n : 1);
	if (*dst == NULL)
		return TERN_E_NOMEM;
	if (n)
		memcpy(*dst, p, n);
	return TERN_OK;
}

/* Checks opts for what the encoder cannot catch (or catches too late). */
static TERN_MUST_CHECK enum tern_err opts_check(const struct tern_connect_opts *o)
{
	if (o->host == NULL || o->host[0] == '\0' || o->port == 0)
		return TERN_E_INVALID;
	if (o->version != TERN_V31 && o->version != TERN_V311 && o->version != TERN_V5)
		return TERN_E_INVALID;
	if (o->password != NULL && o->username == NULL && o->version != TERN_V5)
		return TERN_E_INVALID;
	if (o->will != NULL && (o->will->topic == NULL || o->will->qos > 2 ||
	                        (o->will->payload == NULL && o->will->payload_len > 0) ||
	                        o->will->payload_len > 65535))
		return TERN_E_INVALID;
	if (o->will != NULL && tern_topic_name_check((const uint8_t *)o->will->topic,
	                                             strlen(o->will->topic)) != TERN_OK)
		return TERN_E_INVALID;
	if (o->password_len > 65535 || (o->password == NULL && o->password_len > 0))
		return TERN_E_INVALID;
	/* A certificate needs its key; either without TLS on would be
	 * silently unused. */
	bool tls = o->tls || o->tls_cafile != NULL || o->tls_capath != NULL ||
	           o->tls_use_os_certs || o->tls_psk_identity != NULL;
	if ((o->tls_psk_identity == NULL) != (o->tls_psk == NULL) ||
	    (o->tls_psk != NULL &&
	     (o->tls_psk_len == 0 || o->tls_psk_len > 256 || o->tls_psk_identity[0] == '\0' ||
	      strlen(o->tls_psk_identity) > 128)))
		return TERN_E_INVALID;
	if ((o->tls_certfile == NULL) != (o->tls_keyfile == NULL) ||
	    (!tls && o->tls_certfile != NULL))
		return TERN_E_INVALID;
	if (o->tls_min_version != 0 && o->tls_min_version != 0x0303 && o->tls_min_version != 0x0304)
		return TERN_E_INVALID;
	if (o->tls_alpn != NULL && (!tls || o->tls_alpn[0] == '\0' || strlen(o->tls_alpn) > 255))
		return TERN_E_INVALID;
	if (o->tls_require_ocsp && !tls)
		return TERN_E_INVALID;
	return TERN_OK;
}

/* Copies opts into c (replacing earlier ones). */
static TERN_MUST_CHECK enum tern_err opts_store(struct tern_client *c,
                                                const struct tern_connect_opts *o)
{
	enum tern_err e = opts_check(o);
	if (e != TERN_OK)
		return e;
	/* Queued messages were encoded for the earlier version. */
	if (c->have_opts && c->opts.version != o->version && c->n_out > 0)
		return TERN_E_INVALID;
	opts_free(c);
	e = tern__tls_configure(c, o);
	if (e != TERN_OK)
		return e;
	c->opts = *o;
	c->opts.will = NULL;
	c->opts.props = NULL;
	bool ok = dup_str(&c->host, o->host) == TERN_OK &&
	          dup_str(&c->bind_address, o->bind_address) == TERN_OK &&
	          dup_str(&c->username, o->username) == TERN_OK;
	if (ok && o->password != NULL)
		ok = dup_mem(&c->password, o->password, o->password_len) == TERN_OK;
	if (ok && o->will != NULL) {
		c->will = *o->will;
		ok = dup_str(&c->will_topic, o->will->topic) == TERN_OK &&
		     dup_mem(&c->will_payload, o->will->payload, o->will->payload_len) == TERN_OK;
		c->will.topic = c->will_topic;
		c->will.payload = c->will_payload;
		c->will.props = &c->will_props.p;
		c->opts.will = &c->will;
	}
	if (ok && tern__props_copy(&c->props, o->props) != TERN_OK)
		ok = false;
	if (ok && o->will != NULL && tern__props_copy(&c->will_props, o->will->props) != TERN_OK)
		ok = false;
	if (!ok) {
		opts_free(c);
		return TERN_E_NOMEM;
	}
	c->opts.host = c->host;
	c->opts.bind_address = c->bind_address;
	c->opts.username = c->username;
	c->opts.password = c->password;
	c->opts.props = &c->props.p;
	c->opts.client_id = NULL; /* c->client_id holds it */
	/* c->tls holds what TLS needs; the files are read. */
	c->opts.tls_cafile = c->opts.tls_capath = NULL;
	c->opts.tls_certfile = c->opts.tls_keyfile = NULL;
	c->opts.tls_server_name = NULL;
	c->opts.tls_alpn = NULL;
	c->opts.tls_psk_identity = NULL;
	c->opts.tls_psk = NULL;
	c->opts.tls_psk_len = 0;
	c->local_max_packet = 0;
	if (o->version == TERN_V5 && o->props != NULL &&
	    (o->props->present & TERN_PROP_BIT(TERN_PROP_MAXIMUM_PACKET_SIZE)))
		c->local_max_packet = o->props->maximum_packet_size;
	if (c->opts.connect_timeout_ms == 0)
		c->opts.connect_timeout_ms = 10000;
	if (c->opts.reconnect_min_ms == 0)
		c->opts.reconnect_min_ms = 500;
	if (c->opts.reconnect_max_ms < c->opts.reconnect_min_ms)
		c->opts.reconnect_max_ms = c->opts.reconnect_min_ms;
	c->have_opts = true;

	char *id = strdup(o->client_id != NULL ? o->client_id : "");
	if (id == NULL) {
		opts_free(c);
		return TERN_E_NOMEM;
	}
	free(c->client_id);
	c->client_id = id;
	return TERN_OK;
}

/* Common part of connect_start and the test seam. */
static TERN_MUST_CHECK enum tern_err connect_prepare(struct tern_client *c,
                                                     const struct tern_connect_opts *opts)
{
	if (c == NULL || opts == NULL)
		return TERN_E_INVALID;
	if (c->state != TERN__IDLE && c->state != TERN__BACKOFF)
		return TERN_E_INVALID;
	enum tern_err e = opts_store(c, opts);
	if (e != TERN_OK) {
		/* A pending reconnect must not go on with what is left of the
		 * earlier options (freed, or without the TLS asked for now). */
		if (e != TERN_E_INVALID)
			c->state = TERN__IDLE;
		return e;
	}
	c->state = TERN__IDLE;
	c->attempt = 0;
	c->refused = false;
	c->user_close = false;
	return TERN_OK;
}

enum tern_err tern_client_connect_start(struct tern_client *c, const struct tern_connect_opts *opts)
{
	enum tern_err e = connect_prepare(c, opts);
	if (e != TERN_OK)
		return e;
	return tern__io_start(c);
}

enum tern_err tern__client_attach_fd_take(struct tern_client *c,
                                          const struct tern_connect_opts *opts, int fd)
{
	enum tern_err e = connect_prepare(c, opts);
	if (e == TERN_OK)
		e = tern__io_attach(c, fd);
	if (e != TERN_OK && c->fd != fd)
		close(fd);
	return e;
}

int tern_client_fd(const struct tern_client *c)
{
	return c->fd;
}

bool tern_client_is_connected(const struct tern_client *c)
{
	return c->state == TERN__UP;
}

const char *tern_client_id(const struct tern_client *c)
{
	return c->client_id != NULL ? c->client_id : "";
}

const char *tern_client_tls_error(const struct tern_client *c)
{
	return c->tls_err;
}

size_t tern_client_pending(const struct tern_client *c)
{
	return c->n_out;
}

void tern_message_free(struct tern_message *msg)
{
	if (msg == NULL)
		return;
	/* The message lives in its queue entry. */
	struct tern__rx *rx =
	        (struct tern__rx *)(void *)((char *)msg - offsetof(struct tern__rx, msg));
	free(rx->props_mem);
	free(rx);
}

/* ---- property copies ---- */

/* The byte fields of struct tern_props, for the copy loop. */
static struct tern_bytes *props_field(struct tern_props *p, int i)
{
	struct tern_bytes *f[] = {
	        &p->content_type,
	        &p->response_topic,
	        &p->correlation_data,
	        &p->assigned_client_id,
	        &p->auth_method,
	        &p->auth_data,
	        &p->response_info,
	        &p->server_reference,
	        &p->reason_string,
	        &p->user_raw,
	        &p->raw,
	};
	return i < (int)(sizeof(f) / sizeof(f[0])) ? f[i] : NULL;
}

enum tern_err tern__props_copy(struct tern__props_copy *dst, const struct tern_props *src)
{
	tern__props_copy_free(dst);
	if (src == NULL)
		return TERN_OK;
	struct tern_props p = *src;
	size_t total = (size_t)p.n_sub_ids * sizeof(uint32_t);
	if (p.sub_ids == NULL)
		total = 0;
	struct tern_bytes *f;
	for (int i = 0; (f = props_field(&p, i)) != NULL; i++)
		if (f->data != NULL)
			total += f->len;
	uint8_t *mem = malloc(total ? total : 1);
	if (mem == NULL)
		return TERN_E_NOMEM;
	size_t off = 0;
	if (p.sub_ids != NULL && p.n_sub_ids > 0) {
		memcpy(mem, p.sub_ids, (size_t)p.n_sub_ids * sizeof(uint32_t));
		p.sub_ids = (const uint32_t *)(void *)mem;
		off = (size_t)p.n_sub_ids * sizeof(uint32_t);
	}
	for (int i = 0; (f = props_field(&p, i)) != NULL; i++) {
		if (f->data == NULL)
			continue;
		if (f->len)
			memcpy(mem + off, f->data, f->len);
		f->data = mem + off;
		off += f->len;
	}
	dst->p = p;
	dst->mem = mem;
	return TERN_OK;
}

void tern__props_copy_free(struct tern__props_copy *pc)
{
	free(pc->mem);
	memset(pc, 0, sizeof(*pc));
}

/* ---- reason codes in words ---- */

const char *tern_reason_string(uint8_t reason, bool v3)
{
	if (v3) {
		switch (reason) {
		case TERN_V3_ACCEPTED:
			return "connection accepted";
		case TERN_V3_UNACCEPTABLE_VERSION:
			return "unacceptable protocol version";
		case TERN_V3_IDENTIFIER_REJECTED:
			return "identifier rejected";
		case TERN_V3_SERVER_UNAVAILABLE:
			return "server unavailable";
		case TERN_V3_BAD_USERNAME_OR_PASSWORD:
			return "bad user name or password";
		case TERN_V3_NOT_AUTHORIZED:
			return "not authorized";
		}
		return "unknown return code";
	}
	switch (reason) {
	case TERN_RC_SUCCESS:
		return "success";
	case TERN_RC_GRANTED_QOS1:
		return "granted QoS 1";
	case TERN_RC_GRANTED_QOS2:
		return "granted QoS 2";
	case TERN_RC_DISCONNECT_WITH_WILL:
		return "disconnect with will message";
	case TERN_RC_NO_MATCHING_SUBSCRIBERS:
		return "no matching subscribers";
	case TERN_RC_NO_SUBSCRIPTION_EXISTED:
		return "no subscription existed";
	case TERN_RC_CONTINUE_AUTHENTICATION:
		return "continue authentication";
	case TERN_RC_REAUTHENTICATE:
		return "re-authenticate";
	case TERN_RC_UNSPECIFIED:
		return "unspecified error";
	case TERN_RC_MALFORMED_PACKET:
		return "malformed packet";
	case TERN_RC_PROTOCOL_ERROR:
		return "protocol error";
	case TERN_RC_IMPLEMENTATION_SPECIFIC:
		return "implementation specific error";
	case TERN_RC_UNSUPPORTED_PROTOCOL_VERSION:
		return "unsupported protocol version";
	case TERN_RC_CLIENT_ID_NOT_VALID:
		return "client identifier not valid";
	case TERN_RC_BAD_USERNAME_OR_PASSWORD:
		return "bad user name or password";
	case TERN_RC_NOT_AUTHORIZED:
		return "not authorized";
	case TERN_RC_SERVER_UNAVAILABLE:
		return "server unavailable";
	case TERN_RC_SERVER_BUSY:
		return "server busy";
	case TERN_RC_BANNED:
		return "banned";
	case TERN_RC_SERVER_SHUTTING_DOWN:
		return "server shutting down";
	case TERN_RC_BAD_AUTHENTICATION_METHOD:
		return "bad authentication method";
	case TERN_RC_KEEP_ALIVE_TIMEOUT:
		return "keep alive timeout";
	case TERN_RC_SESSION_TAKEN_OVER:
		return "session taken over";
	case TERN_RC_TOPIC_FILTER_INVALID:
		return "topic filter invalid";
	case TERN_RC_TOPIC_NAME_INVALID:
		return "topic name invalid";
	case TERN_RC_PACKET_ID_IN_USE:
		return "packet identifier in use";
	case TERN_RC_PACKET_ID_NOT_FOUND:
		return "packet identifier not found";
	case TERN_RC_RECEIVE_MAXIMUM_EXCEEDED:
		return "receive maximum exceeded";
	case TERN_RC_TOPIC_ALIAS_INVALID:
		return "topic alias invalid";
	case TERN_RC_PACKET_TOO_LARGE:
		return "packet too large";
	case TERN_RC_MESSAGE_RATE_TOO_HIGH:
		return "message rate too high";
	case TERN_RC_QUOTA_EXCEEDED:
		return "quota exceeded";
	case TERN_RC_ADMINISTRATIVE_ACTION:
		return "administrative action";
	case TERN_RC_PAYLOAD_FORMAT_INVALID:
		return "payload format invalid";
	case TERN_RC_RETAIN_NOT_SUPPORTED:
		return "retain not supported";
	case TERN_RC_QOS_NOT_SUPPORTED:
		return "QoS not supported";
	case TERN_RC_USE_ANOTHER_SERVER:
		return "use another server";
	case TERN_RC_SERVER_MOVED:
		return "server moved";
	case TERN_RC_SHARED_SUBS_NOT_SUPPORTED:
		return "shared subscriptions not supported";
	case TERN_RC_CONNECTION_RATE_EXCEEDED:
		return "connection rate exceeded";
	case TERN_RC_MAXIMUM_CONNECT_TIME:
		return "maximum connect time";
	case TERN_RC_SUB_IDS_NOT_SUPPORTED:
		return "subscription identifiers not supported";
	case TERN_RC_WILDCARD_SUBS_NOT_SUPPORTED:
		return "wildcard subscriptions not supported";
	}
	return "unknown reason code";
}
