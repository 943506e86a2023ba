/*
 * client_fake_broker.h - a scripted broker for the client unit tests.
 *
 * The client gets one end of a socketpair() through the internal seam
 * tern__client_attach_fd_take(), as if its TCP connect had completed. The test
 * holds the other end: it reads what the client sent, decoded with the
 * shared codec (fb_read), and writes packets encoded with it (fb_send), then
 * lets the client step. The callbacks record what the application would
 * see in struct fb. Everything is bounded: every read waits at most
 * FB_WAIT_MS, so a missing packet fails the test instead of hanging it.
 */
#ifndef TERN_TEST_CLIENT_FAKE_BROKER_H
#define TERN_TEST_CLIENT_FAKE_BROKER_H

#include <errno.h>
#include <poll.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "client/client_internal.h"

#define FB_WAIT_MS    2000
#define FB_MAX_EVENTS 64

#define B(s) ((struct tern_bytes){(const uint8_t *)(s), (uint32_t)(sizeof(s) - 1)})

struct fb_msg {
	char topic[128];
	char payload[128];
	size_t payload_len;
	uint8_t qos;
	bool dup;
	uint32_t n_user;
};

struct fb {
	struct tern_client *c;
	int fd; /* the broker's end */
	uint8_t version;
	/* Bytes read from the client, not yet decoded. */
	uint8_t in[1 << 17];
	size_t in_len;
	/* The last packet read: its bytes, which fb_read's result points into. */
	uint8_t pkt[1 << 17];
	size_t pkt_len;

	/* What the callbacks saw. */
	int n_connect;
	uint8_t connect_reason;
	bool connect_session;
	char connect_assigned[64];
	int n_disconnect;
	enum tern_err disc_err;
	/* tern_client_timeout_ms() when the disconnect was reported: the
	 * back-off just scheduled, read before the test's own delays. */
	int disc_timeout_ms;
	/* What the last tern_client_step() returned (fb_step). */
	enum tern_err step_err;
	uint8_t disc_reason;
	char disc_reason_string[64];
	int n_msgs;
	struct fb_msg msgs[FB_MAX_EVENTS];
	int n_pub;
	uint16_t pub_ids[FB_MAX_EVENTS];
	uint8_t pub_reasons[FB_MAX_EVENTS];
	char pub_reason_string[64];
	int n_sub;
	uint8_t sub_reasons[8];
	size_t sub_n;
	int n_unsub;
	int n_pubrel; /* on_pubrel calls (manual_ack) */
	uint16_t pubrel_ids[FB_MAX_EVENTS];
	int n_pubrec; /* on_pubrec calls (fb_on_pubrec, set by the test) */
	uint16_t pubrec_ids[FB_MAX_EVENTS];
	/* fb_on_pubrec releases at once (tern_client_release()) */
	bool release_in_callback;
};

static inline void fb_copy_str(char *dst, size_t cap, struct tern_bytes b)
{
	size_t n = b.len < cap - 1 ? b.len : cap - 1;
	if (n)
		memcpy(dst, b.data, n);
	dst[n] = '\0';
}

static inline void fb_on_connect(struct tern_client *c, void *ud, uint8_t reason,
                                 bool session_present, const struct tern_props *props)
{
	struct fb *f = ud;
	(void)c;
	f->n_connect++;
	f->connect_reason = reason;
	f->connect_session = session_present;
	if (props->present & TERN_PROP_BIT(TERN_PROP_ASSIGNED_CLIENT_ID))
		fb_copy_str(f->connect_assigned, sizeof(f->connect_assigned),
		            props->assigned_client_id);
}

static inline void fb_on_disconnect(struct tern_client *c, void *ud, enum tern_err err,
                                    uint8_t reason, const struct tern_props *props)
{
	struct fb *f = ud;
	f->n_disconnect++;
	f->disc_err = err;
	f->disc_timeout_ms = tern_client_timeout_ms(c);
	f->disc_reason = reason;
	f->disc_reason_string[0] = '\0';
	if (props != NULL && (props->present & TERN_PROP_BIT(TERN_PROP_REASON_STRING)))
		fb_copy_str(f->disc_reason_string, sizeof(f->disc_reason_string),
		            props->reason_string);
}

static inline void fb_on_message(struct tern_client *c, void *ud, const struct tern_message *m)
{
	struct fb *f = ud;
	(void)c;
	if (f->n_msgs >= FB_MAX_EVENTS)
		return;
	struct fb_msg *r = &f->msgs[f->n_msgs++];
	fb_copy_str(r->topic, sizeof(r->topic),
	            (struct tern_bytes){(const uint8_t *)m->topic, (uint32_t)m->topic_len});
	fb_copy_str(r->payload, sizeof(r->payload),
	            (struct tern_bytes){m->payload, (uint32_t)m->payload_len});
	r->payload_len = m->payload_len;
	r->qos = m->qos;
	r->dup = m->dup;
	r->n_user = m->props.n_user;
}

static inline void fb_on_publish(struct tern_client *c, void *ud, uint16_t id, uint8_t reason,
                                 const struct tern_props *props)
{
	struct fb *f = ud;
	(void)c;
	if (f->n_pub >= FB_MAX_EVENTS)
		return;
	f->pub_ids[f->n_pub] = id;
	f->pub_reasons[f->n_pub++] = reason;
	if (props != NULL && (props->present & TERN_PROP_BIT(TERN_PROP_REASON_STRING)))
		fb_copy_str(f->pub_reason_string, sizeof(f->pub_reason_string),
		            props->reason_string);
}

static inline void fb_on_subscribe(struct tern_client *c, void *ud, uint16_t id,
                                   const uint8_t *reasons, size_t n, const struct tern_props *props)
{
	struct fb *f = ud;
	(void)c, (void)id, (void)props;
	f->n_sub++;
	f->sub_n = n;
	memcpy(f->sub_reasons, reasons, n < 8 ? n : 8);
}

static inline void fb_on_unsubscribe(struct tern_client *c, void *ud, uint16_t id,
                                     const uint8_t *reasons, size_t n,
                                     const struct tern_props *props)
{
	struct fb *f = ud;
	(void)c, (void)id, (void)reasons, (void)n, (void)props;
	f->n_unsub++;
}

static inline void fb_on_pubrel(struct tern_client *c, void *ud, uint16_t id)
{
	(void)c;
	struct fb *f = ud;
	if (f->n_pubrel < FB_MAX_EVENTS)
		f->pubrel_ids[f->n_pubrel] = id;
	f->n_pubrel++;
}

/* Not set by fb_new: a test that leaves PUBREL to the application sets
 * f->c->cb.on_pubrec to it. */
static inline void fb_on_pubrec(struct tern_client *c, void *ud, uint16_t id, uint8_t reason,
                                const struct tern_props *props)
{
	(void)reason, (void)props;
	struct fb *f = ud;
	if (f->n_pubrec < FB_MAX_EVENTS)
		f->pubrec_ids[f->n_pubrec] = id;
	f->n_pubrec++;
	if (f->release_in_callback)
		assert_int_equal(tern_client_release(c, id), TERN_OK);
}

/* Publishes through the client with a packet id and DUP of the caller's;
 * returns tern_client_publish()'s result. */
static inline enum tern_err fb_publish_id(struct fb *f, const char *topic, const char *payload,
                                          uint8_t qos, uint16_t id, bool dup)
{
	struct tern_publish_args a = {.topic = topic,
	                              .payload = payload,
	                              .payload_len = strlen(payload),
	                              .qos = qos,
	                              .packet_id = id,
	                              .dup = dup};
	uint16_t got = 0;
	enum tern_err e = tern_client_publish(f->c, &a, &got);
	if (e == TERN_OK)
		assert_int_equal(got, id);
	return e;
}

/* Options for a test: version, client id, no keep-alive unless asked. */
static inline struct tern_connect_opts fb_opts(uint8_t version, const char *client_id)
{
	struct tern_connect_opts o;
	tern_connect_opts_init(&o);
	o.version = version;
	o.client_id = client_id;
	o.keep_alive = 0;
	return o;
}

/* Connects a fresh socketpair to f->c (which must exist) with opts. */
static inline void fb_attach(struct fb *f, const struct tern_connect_opts *o)
{
	int sv[2];
	assert_int_equal(socketpair(AF_UNIX, SOCK_STREAM, 0, sv), 0);
	f->fd = sv[1];
	f->version = o->version;
	f->in_len = 0;
	assert_int_equal(tern__client_attach_fd_take(f->c, o, sv[0]), TERN_OK);
}

/* Creates f (heap: it holds large buffers) with a client using on_message
 * (or, with queue true, the receive queue) and attaches it. */
static inline struct fb *fb_new(const struct tern_connect_opts *o, bool queue)
{
	struct fb *f = calloc(1, sizeof(*f));
	assert_non_null(f);
	struct tern_callbacks cb = {
	        .on_connect = fb_on_connect,
	        .on_disconnect = fb_on_disconnect,
	        .on_message = queue ? NULL : fb_on_message,
	        .on_publish = fb_on_publish,
	        .on_subscribe = fb_on_subscribe,
	        .on_unsubscribe = fb_on_unsubscribe,
	        .on_pubrel = fb_on_pubrel,
	};
	assert_int_equal(tern_client_new(&f->c, &cb, f), TERN_OK);
	fb_attach(f, o);
	return f;
}

static inline void fb_free(struct fb *f)
{
	tern_client_free(f->c);
	if (f->fd >= 0)
		close(f->fd);
	free(f);
}

/* Closes the broker's end (the client sees EOF on its next read). */
static inline void fb_hangup(struct fb *f)
{
	close(f->fd);
	f->fd = -1;
}

/* Tries to decode one packet from f->in; true when one was taken. */
static inline bool fb_take(struct fb *f, struct tern_packet *p)
{
	struct tern_fixed_header fh;
	enum tern_err e = tern_decode_fixed_header(f->in, f->in_len, 0, &fh);
	if (e == TERN_E_INCOMPLETE)
		return false;
	assert_int_equal(e, TERN_OK);
	size_t total = fh.header_len + fh.remaining;
	if (f->in_len < total)
		return false;
	memcpy(f->pkt, f->in, total);
	f->pkt_len = total;
	memmove(f->in, f->in + total, f->in_len - total);
	f->in_len -= total;
	/* The client's packets always decode with our codec. */
	assert_int_equal(tern_decode_packet(&fh, f->pkt + fh.header_len, f->version, p), TERN_OK);
	return true;
}

/* Steps the client and keeps its result in f->step_err: a step that ends
 * the connection also reports it through on_disconnect, which is what the
 * tests check (disc_err, n_disconnect). */
static inline void fb_step(struct fb *f)
{
	f->step_err = tern_client_step(f->c);
}

/* Steps the client and reads the next packet it sent into *p (valid until
 * the next fb_read); fails the test after wait_ms without one. */
static inline void fb_read_within(struct fb *f, struct tern_packet *p, int wait_ms)
{
	for (int waited = 0;; waited += 10) {
		fb_step(f);
		if (fb_take(f, p))
			return;
		assert_true(waited < wait_ms);
		struct pollfd pfd = {.fd = f->fd, .events = POLLIN};
		if (poll(&pfd, 1, 10) > 0) {
			ssize_t n = read(f->fd, f->in + f->in_len, sizeof(f->in) - f->in_len);
			assert_true(n > 0);
			f->in_len += (size_t)n;
		}
	}
}

static inline void fb_read(struct fb *f, struct tern_packet *p)
{
	fb_read_within(f, p, FB_WAIT_MS);
}

/* Reads the next packet and checks its type. */
static inline void fb_expect(struct fb *f, struct tern_packet *p, enum tern_packet_type type)
{
	fb_read(f, p);
	assert_string_equal(tern_packet_name(p->type), tern_packet_name(type));
}

/* Steps the client a few times and checks it sent nothing more. */
static inline void fb_expect_silence(struct fb *f)
{
	for (int i = 0; i < 3; i++) {
		fb_step(f);
		struct pollfd pfd = {.fd = f->fd, .events = POLLIN};
		if (poll(&pfd, 1, 10) > 0) {
			ssize_t n = read(f->fd, f->in + f->in_len, sizeof(f->in) - f->in_len);
			assert_true(n >= 0);
			f->in_len += (size_t)n;
		}
	}
	assert_int_equal(f->in_len, 0);
}

/* Writes raw bytes to the client and lets it handle them. */
static inline void fb_send_raw(struct fb *f, const void *buf, size_t n)
{
	assert_int_equal(write(f->fd, buf, n), (ssize_t)n);
	fb_step(f);
}

/* Encodes p for the connection's version, sends it and steps the client. */
static inline void fb_send(struct fb *f, const struct tern_packet *p)
{
	uint8_t buf[4096];
	size_t n = 0;
	assert_int_equal(tern_encode_packet(p, f->version, buf, sizeof(buf), &n), TERN_OK);
	fb_send_raw(f, buf, n);
}

/* Reads CONNECT and answers CONNACK(reason, session present, props). */
static inline void fb_handshake(struct fb *f, uint8_t reason, bool sp,
                                const struct tern_props *props)
{
	struct tern_packet p;
	fb_expect(f, &p, TERN_CONNECT);
	struct tern_packet ack = {.type = TERN_CONNACK};
	ack.u.connack.reason = reason;
	ack.u.connack.session_present = sp;
	if (props != NULL)
		ack.u.connack.props = *props;
	fb_send(f, &ack);
}

/* Sends an acknowledgement packet of type for id. */
static inline void fb_send_ack(struct fb *f, enum tern_packet_type type, uint16_t id,
                               uint8_t reason)
{
	struct tern_packet p = {.type = type};
	p.u.ack.packet_id = id;
	p.u.ack.reason = reason;
	fb_send(f, &p);
}

/* Publishes through the client with the given QoS; returns the id. */
static inline uint16_t fb_publish(struct fb *f, const char *topic, const char *payload, uint8_t qos)
{
	struct tern_publish_args a = {
	        .topic = topic, .payload = payload, .payload_len = strlen(payload), .qos = qos};
	uint16_t id = 0;
	assert_int_equal(tern_client_publish(f->c, &a, &id), TERN_OK);
	return id;
}

/* Steps the client until it has reported a disconnect (bounded). */
static inline void fb_wait_disconnect(struct fb *f, int wait_ms)
{
	for (int waited = 0; f->n_disconnect == 0; waited += 10) {
		assert_true(waited < wait_ms);
		fb_step(f);
		if (f->n_disconnect == 0)
			poll(NULL, 0, 10);
	}
}

#endif
